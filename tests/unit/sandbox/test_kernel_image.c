/* Unit tests: the host's check of qkernel.bin (ELF layout, .qk_header magic
 * and ABI version, entry points inside the kernel's text). */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86_64/boot.h"

static uint8_t *kernel;
static size_t klen;

static void setup(void)
{
  int fd = open(SBX_TEST_KERNEL, O_RDONLY);
  cr_assert_geq(fd, 0, "%s", SBX_TEST_KERNEL);
  struct stat st;
  cr_assert_eq(fstat(fd, &st), 0);
  klen = (size_t)st.st_size;
  kernel = aligned_alloc(8, (klen + 7) & ~(size_t)7);
  cr_assert_eq(read(fd, kernel, klen), (ssize_t)klen);
  close(fd);
}

static void teardown(void) { free(kernel); }

TestSuite(kernel_image, .init = setup, .fini = teardown);

/* Offset of the .qk_header section's bytes in the file. */
static size_t header_offset(void)
{
  Elf64_Ehdr *eh = (Elf64_Ehdr *)kernel;
  Elf64_Shdr *sh = (Elf64_Shdr *)(kernel + eh->e_shoff);
  const char *names = (const char *)kernel + sh[eh->e_shstrndx].sh_offset;
  for (int i = 0; i < eh->e_shnum; i++)
    if (!strcmp(names + sh[i].sh_name, ".qk_header"))
      return sh[i].sh_offset;
  cr_assert_fail("no .qk_header");
  return 0;
}

Test(kernel_image, the_built_kernel_passes)
{
  struct qk_kernel_header h;
  q_error *err = NULL;
  cr_assert_eq(sbx_kernel_check(kernel, klen, &h, &err), 0, "%s", q_error_msg(err));
  cr_assert_eq(h.magic, QK_KERNEL_MAGIC);
  cr_assert_eq(h.abi_version, QK_ABI_VERSION);
  cr_assert_eq(h.vector_count, 256);
  cr_assert_geq(h.vector_stubs, QK_KERNEL_VBASE);
  cr_assert_eq(h.syscall_user_stub & 4095, 0, "the user stub is a page of its own");
  cr_assert_neq(h.syscall_entry, 0);
}

Test(kernel_image, wrong_abi_version_or_magic)
{
  size_t off = header_offset();
  struct qk_kernel_header h, *hp = (struct qk_kernel_header *)(kernel + off);
  q_error *err = NULL;
  hp->abi_version = QK_ABI_VERSION + 1;
  cr_assert_eq(sbx_kernel_check(kernel, klen, &h, &err), -ENOEXEC);
  cr_assert(strstr(q_error_msg(err), "ABI version"), "%s", q_error_msg(err));
  q_error_free(&err);
  hp->abi_version = QK_ABI_VERSION;
  hp->magic ^= 1;
  cr_assert_eq(sbx_kernel_check(kernel, klen, &h, NULL), -ENOEXEC);
  hp->magic ^= 1;
  hp->vector_stubs = 0x1000; /* not kernel text */
  cr_assert_eq(sbx_kernel_check(kernel, klen, &h, NULL), -ENOEXEC);
}

Test(kernel_image, truncated_and_mutated_never_crash)
{
  struct qk_kernel_header h;
  for (size_t l = 0; l < klen; l += (l < 4096 ? 1 : 997)) {
    uint8_t *c = malloc(l + 8);
    uint8_t *a = (uint8_t *)(((uintptr_t)c + 7) & ~(uintptr_t)7);
    memcpy(a, kernel, l);
    int r = sbx_kernel_check(a, l, &h, NULL);
    cr_assert(r == 0 || r == -ENOEXEC);
    free(c);
  }
  /* Flip bits in the ELF header, program and section headers. */
  Elf64_Ehdr *eh = (Elf64_Ehdr *)kernel;
  size_t sh_end = eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr);
  uint8_t *copy = malloc(klen);
  memcpy(copy, kernel, klen);
  srand(7);
  for (int it = 0; it < 20000; it++) {
    size_t pos = (it & 1) ? (size_t)rand() % 1024 : eh->e_shoff + (size_t)rand() % (sh_end - eh->e_shoff);
    kernel[pos] ^= (uint8_t)(1u << (rand() % 8));
    int r = sbx_kernel_check(kernel, klen, &h, NULL);
    cr_assert(r == 0 || r == -ENOEXEC);
    memcpy(kernel, copy, klen < 1024 ? klen : 1024);
    memcpy(kernel + eh->e_shoff, copy + ((Elf64_Ehdr *)copy)->e_shoff, sh_end - eh->e_shoff);
  }
  free(copy);
}
