/* Unit tests: the host-side ELF loader (static, static-PIE, PT_INTERP,
 * truncated and hostile headers, the initial stack). */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader/elf_loader.h"

#define MEM (128ull << 20)

static char root[64];
static int rootfd = -1;
static struct sbx_mem mem;
static struct sbx_falloc fa;
static struct sbx_pt kpt;

static void copy_file(const char *src, const char *dst_rel)
{
  char dst[512];
  snprintf(dst, sizeof dst, "%s/%s", root, dst_rel);
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\" && cp -L '%s' '%s'", dst, src, dst);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void setup(void)
{
  snprintf(root, sizeof root, "/tmp/sbx-loader-XXXXXX");
  cr_assert_not_null(mkdtemp(root));
  copy_file("/bin/busybox", "bin/busybox");
  copy_file(SBX_TEST_PIE, "bin/pie");
  copy_file("/usr/bin/true", "bin/dyn");
  copy_file("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2");
  char p[512];
  snprintf(p, sizeof p, "%s/bin/escape", root);
  cr_assert_eq(symlink("../../../../../usr/bin/true", p), 0);
  snprintf(p, sizeof p, "%s/bin/script", root);
  FILE *f = fopen(p, "w");
  fputs("#!/bin/sh\necho hi\n", f);
  fclose(f);
  rootfd = open(root, O_PATH | O_DIRECTORY);
  cr_assert_geq(rootfd, 0);
  mem.size = MEM;
  mem.base = aligned_alloc(4096, MEM);
  cr_assert_not_null(mem.base);
  fa = (struct sbx_falloc){.mem = &mem, .next = 4 << 20, .end = MEM};
  cr_assert_eq(sbx_pt_init(&kpt, &mem, &fa), 0);
  cr_assert_eq(sbx_pt_fill_upper(&kpt), 0);
}

static void teardown(void)
{
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  if (system(cmd) != 0)
    fprintf(stderr, "cleanup of %s failed\n", root);
  close(rootfd);
  free(mem.base);
}

TestSuite(loader, .init = setup, .fini = teardown);

static uint8_t *slurp(const char *rel, size_t *len)
{
  uint8_t *buf = NULL;
  q_error *err = NULL;
  int r = sbx_read_in_root(rootfd, rel, SBX_ELF_MAX_FILE, &buf, len, &err);
  cr_assert_eq(r, 0, "%s", q_error_msg(err));
  return buf;
}

Test(loader, parse_static_pie_dynamic)
{
  struct sbx_elf_info info;
  size_t len;
  uint8_t *b = slurp("/bin/busybox", &len);
  cr_assert_eq(sbx_elf_parse(b, len, &info, NULL), 0);
  cr_assert_eq(info.type, ET_EXEC);
  cr_assert_gt(info.nsegs, 0);
  cr_assert_str_empty(info.interp);
  free(b);
  b = slurp("/bin/pie", &len);
  cr_assert_eq(sbx_elf_parse(b, len, &info, NULL), 0);
  cr_assert_eq(info.type, ET_DYN);
  cr_assert_str_empty(info.interp);
  free(b);
  b = slurp("/bin/dyn", &len);
  cr_assert_eq(sbx_elf_parse(b, len, &info, NULL), 0);
  cr_assert_str_eq(info.interp, "/lib64/ld-linux-x86-64.so.2");
  free(b);
}

Test(loader, truncated_headers)
{
  size_t len;
  uint8_t *b = slurp("/bin/busybox", &len);
  Elf64_Ehdr *eh = (Elf64_Ehdr *)b;
  size_t need = eh->e_phoff + eh->e_phnum * sizeof(Elf64_Phdr);
  struct sbx_elf_info info;
  for (size_t l = 0; l < need; l++) {
    uint8_t *copy = malloc(l ? l : 1); /* exact size: ASan catches any over-read */
    memcpy(copy, b, l);
    q_error *err = NULL;
    cr_assert_eq(sbx_elf_parse(copy, l, &info, &err), -ENOEXEC, "length %zu", l);
    q_error_free(&err);
    free(copy);
  }
  free(b);
}

static int parse_mut(const uint8_t *b, size_t len, void (*mut)(uint8_t *))
{
  uint8_t *c = malloc(len);
  memcpy(c, b, len);
  mut(c);
  struct sbx_elf_info info;
  q_error *err = NULL;
  int r = sbx_elf_parse(c, len, &info, &err);
  q_error_free(&err);
  free(c);
  return r;
}

#define PH(c, i) ((Elf64_Phdr *)((c) + ((Elf64_Ehdr *)(c))->e_phoff) + (i))
static int first_load(uint8_t *c)
{
  for (int i = 0;; i++)
    if (PH(c, i)->p_type == PT_LOAD)
      return i;
}
static void m_machine(uint8_t *c) { ((Elf64_Ehdr *)c)->e_machine = EM_AARCH64; }
static void m_class(uint8_t *c) { c[EI_CLASS] = ELFCLASS32; }
static void m_phnum(uint8_t *c) { ((Elf64_Ehdr *)c)->e_phnum = 0xffff; }
static void m_phoff(uint8_t *c) { ((Elf64_Ehdr *)c)->e_phoff = UINT64_MAX - 8; }
static void m_phentsize(uint8_t *c) { ((Elf64_Ehdr *)c)->e_phentsize = 1; }
static void m_type(uint8_t *c) { ((Elf64_Ehdr *)c)->e_type = ET_CORE; }
static void m_filesz(uint8_t *c) { PH(c, first_load(c))->p_filesz = PH(c, first_load(c))->p_memsz + 1; }
static void m_offset(uint8_t *c) { PH(c, first_load(c))->p_offset = UINT64_MAX - 4095; }
static void m_vaddr(uint8_t *c) { PH(c, first_load(c))->p_vaddr = 0xffff800000000000ull; }
static void m_memsz(uint8_t *c) { PH(c, first_load(c))->p_memsz = UINT64_MAX - 100; }
static void m_congruence(uint8_t *c) { PH(c, first_load(c))->p_vaddr += 1; }
static void m_align(uint8_t *c) { PH(c, first_load(c))->p_align = 3 << 12; }
static void m_noload(uint8_t *c)
{
  for (int i = 0; i < ((Elf64_Ehdr *)c)->e_phnum; i++)
    if (PH(c, i)->p_type == PT_LOAD)
      PH(c, i)->p_type = PT_NOTE;
}

Test(loader, hostile_fields)
{
  size_t len;
  uint8_t *b = slurp("/bin/busybox", &len);
  void (*muts[])(uint8_t *) = {m_machine, m_class,  m_phnum,  m_phoff,  m_phentsize,  m_type, m_filesz,
                               m_offset,  m_vaddr, m_memsz, m_congruence, m_align, m_noload};
  for (size_t i = 0; i < sizeof muts / sizeof muts[0]; i++)
    cr_assert_eq(parse_mut(b, len, muts[i]), -ENOEXEC, "mutation %zu accepted", i);
  free(b);
}

Test(loader, bad_interp)
{
  size_t len;
  uint8_t *b = slurp("/bin/dyn", &len);
  Elf64_Ehdr *eh = (Elf64_Ehdr *)b;
  for (int i = 0; i < eh->e_phnum; i++) {
    Elf64_Phdr *ph = PH(b, i);
    if (ph->p_type == PT_INTERP) {
      b[ph->p_offset + ph->p_filesz - 1] = 'x'; /* no NUL terminator */
      struct sbx_elf_info info;
      cr_assert_eq(sbx_elf_parse(b, len, &info, NULL), -ENOEXEC);
      ph->p_filesz = 1 << 20;
      cr_assert_eq(sbx_elf_parse(b, len, &info, NULL), -ENOEXEC);
    }
  }
  free(b);
}

Test(loader, random_mutations_never_crash)
{
  size_t len;
  uint8_t *b = slurp("/bin/pie", &len);
  size_t hdr = 4096 < len ? 4096 : len;
  uint8_t *orig = malloc(hdr);
  memcpy(orig, b, hdr);
  srand(4);
  for (int it = 0; it < 20000; it++) {
    int flips = 1 + rand() % 8;
    for (int k = 0; k < flips; k++)
      b[rand() % hdr] ^= (uint8_t)(1u << (rand() % 8));
    struct sbx_elf_info info;
    q_error *err = NULL;
    int r = sbx_elf_parse(b, len, &info, &err);
    cr_assert(r == 0 || r == -ENOEXEC);
    if (r == 0)
      for (unsigned s = 0; s < info.nsegs; s++)
        cr_assert_leq(info.segs[s].offset + info.segs[s].filesz, len);
    q_error_free(&err);
    memcpy(b, orig, hdr); /* the whole file stays allocated at its exact size for ASan */
  }
  free(orig);
  free(b);
}

static uint64_t auxv_get(const struct sbx_pt *pt, uint64_t sp, uint64_t type)
{
  uint64_t argc, v;
  cr_assert_eq(sbx_pt_read(pt, sp, &argc, 8), 0);
  uint64_t p = sp + 8 + (argc + 1) * 8;
  do {
    cr_assert_eq(sbx_pt_read(pt, p, &v, 8), 0);
    p += 8;
  } while (v);
  for (;; p += 16) {
    uint64_t kv[2];
    cr_assert_eq(sbx_pt_read(pt, p, kv, 16), 0);
    if (kv[0] == type)
      return kv[1];
    if (kv[0] == AT_NULL)
      return UINT64_MAX;
  }
}

static void load(const char *const *argv, size_t argc, struct sbx_proc_image *img)
{
  const char *env[] = {"A=1", "PATH=/nowhere:/bin"};
  struct sbx_proc_spec spec = {.argv = argv, .argc = argc, .envp = env, .envc = 2, .cwd = "/", .uid = 7, .gid = 8};
  q_error *err = NULL;
  int r = sbx_elf_load_process(&mem, &fa, &kpt, rootfd, &spec, img, &err);
  cr_assert_eq(r, 0, "%s", q_error_msg(err));
}

Test(loader, static_process_image)
{
  const char *argv[] = {"busybox", "echo", "hi"};
  struct sbx_proc_image img;
  load(argv, 3, &img);
  cr_assert_str_eq(img.exe, "/bin/busybox", "found through PATH");
  struct sbx_pt pt = {.mem = &mem, .fa = &fa, .root = img.cr3};
  cr_assert_eq(img.sp % 16, 0);
  uint64_t argc;
  cr_assert_eq(sbx_pt_read(&pt, img.sp, &argc, 8), 0);
  cr_assert_eq(argc, 3);
  uint64_t a1;
  char s[16];
  cr_assert_eq(sbx_pt_read(&pt, img.sp + 16, &a1, 8), 0);
  cr_assert_eq(sbx_pt_read(&pt, a1, s, 5), 0);
  cr_assert_str_eq(s, "echo");
  cr_assert_eq(auxv_get(&pt, img.sp, AT_PAGESZ), 4096);
  cr_assert_eq(auxv_get(&pt, img.sp, AT_UID), 7);
  cr_assert_eq(auxv_get(&pt, img.sp, AT_EGID), 8);
  cr_assert_eq(auxv_get(&pt, img.sp, AT_BASE), 0);
  cr_assert_eq(auxv_get(&pt, img.sp, AT_ENTRY), img.entry);
  cr_assert_eq(auxv_get(&pt, img.sp, AT_CLKTCK), 100);
  char fn[32];
  cr_assert_eq(sbx_pt_read(&pt, auxv_get(&pt, img.sp, AT_EXECFN), fn, 13), 0);
  cr_assert_str_eq(fn, "/bin/busybox");
  cr_assert_eq(sbx_pt_read(&pt, auxv_get(&pt, img.sp, AT_PLATFORM), fn, 7), 0);
  cr_assert_str_eq(fn, "x86_64");
  uint8_t rnd[16];
  cr_assert_eq(sbx_pt_read(&pt, auxv_get(&pt, img.sp, AT_RANDOM), rnd, 16), 0);
  /* AT_PHDR points at the program headers, as loaded. */
  Elf64_Phdr ph0;
  cr_assert_eq(sbx_pt_read(&pt, auxv_get(&pt, img.sp, AT_PHDR), &ph0, sizeof ph0), 0);
  size_t len;
  uint8_t *b = slurp("/bin/busybox", &len);
  Elf64_Ehdr *eh = (Elf64_Ehdr *)b;
  cr_assert_eq(memcmp(&ph0, b + eh->e_phoff, sizeof ph0), 0);
  /* The entry code is the file's, user-accessible, executable. */
  uint8_t code[32];
  cr_assert_eq(sbx_pt_read(&pt, img.entry, code, sizeof code), 0);
  struct sbx_elf_info info;
  cr_assert_eq(sbx_elf_parse(b, len, &info, NULL), 0);
  uint64_t fl;
  cr_assert_eq(sbx_pt_walk(&pt, img.entry, NULL, &fl), 0);
  cr_assert(fl & SBX_PTE_U);
  cr_assert_not(fl & SBX_PTE_NX);
  cr_assert_not(fl & SBX_PTE_W, "text is not writable");
  bool found = false;
  for (unsigned i = 0; i < info.nsegs; i++)
    if (img.entry >= info.segs[i].vaddr && img.entry < info.segs[i].vaddr + info.segs[i].filesz) {
      cr_assert_eq(memcmp(code, b + info.segs[i].offset + (img.entry - info.segs[i].vaddr), sizeof code), 0);
      found = true;
    }
  cr_assert(found);
  free(b);
  bool stack = false, heap = false;
  for (unsigned i = 0; i < img.nvmas; i++) {
    stack |= img.vmas[i].kind == QK_VMA_STACK && img.vmas[i].end == SBX_STACK_TOP;
    heap |= img.vmas[i].kind == QK_VMA_HEAP && img.vmas[i].start == img.brk;
  }
  cr_assert(stack && heap);
  cr_assert_eq(img.brk % 4096, 0);
  /* The kernel half is shared with the kernel's table. */
  uint64_t *proot = (uint64_t *)(mem.base + img.cr3), *kroot = (uint64_t *)(mem.base + kpt.root);
  cr_assert_eq(memcmp(proot + 256, kroot + 256, 256 * 8), 0);
}

Test(loader, static_pie_and_interp)
{
  const char *argv[] = {"/bin/pie"};
  struct sbx_proc_image img;
  load(argv, 1, &img);
  struct sbx_pt pt = {.mem = &mem, .fa = &fa, .root = img.cr3};
  cr_assert_geq(img.entry, SBX_PIE_BASE);
  cr_assert_lt(img.entry, SBX_INTERP_BASE);
  cr_assert_eq(auxv_get(&pt, img.sp, AT_BASE), 0);

  const char *argv2[] = {"/bin/dyn"};
  load(argv2, 1, &img);
  pt.root = img.cr3;
  uint64_t base = auxv_get(&pt, img.sp, AT_BASE);
  cr_assert_geq(base, SBX_INTERP_BASE);
  cr_assert_geq(img.entry, base, "starts in the interpreter");
  cr_assert_lt(auxv_get(&pt, img.sp, AT_ENTRY), SBX_INTERP_BASE);
}

Test(loader, confined_and_refused)
{
  struct sbx_proc_image img;
  struct sbx_proc_spec spec = {.argc = 1, .cwd = "/"};
  const char *a1[] = {"/bin/escape"}; /* ../../../../ resolves inside the rootfs: no /usr/bin/true there */
  spec.argv = a1;
  q_error *err = NULL;
  cr_assert_lt(sbx_elf_load_process(&mem, &fa, &kpt, rootfd, &spec, &img, &err), 0);
  cr_assert_eq(err->status, ENOENT, "%s", q_error_msg(err));
  q_error_free(&err);
  const char *a2[] = {"/bin/script"};
  spec.argv = a2;
  cr_assert_lt(sbx_elf_load_process(&mem, &fa, &kpt, rootfd, &spec, &img, &err), 0);
  cr_assert_eq(err->status, ENOEXEC);
  q_error_free(&err);
  const char *a3[] = {"/bin"};
  spec.argv = a3;
  cr_assert_lt(sbx_elf_load_process(&mem, &fa, &kpt, rootfd, &spec, &img, &err), 0);
  q_error_free(&err);
  spec.argc = 0;
  cr_assert_lt(sbx_elf_load_process(&mem, &fa, &kpt, rootfd, &spec, &img, &err), 0);
  q_error_free(&err);
}
