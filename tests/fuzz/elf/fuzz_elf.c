/* Fuzzer: the VMM's ELF loader (sandbox/loader/) on hostile executables.
 *
 * Input: the executable's bytes, optionally followed by the separator
 * "\0QKINTERP\0" and the bytes of an interpreter, which is then installed as
 * /lib/ld.so (and /lib64/ld-linux-x86-64.so.2 links to it) in a scratch
 * rootfs. Each input goes through:
 *   1. sbx_elf_parse on each part: on success every PT_LOAD lies inside the
 *      file and below the user limit, filesz <= memsz, at most
 *      SBX_ELF_MAX_SEGMENTS, and the interpreter path is NUL-terminated;
 *   2. sbx_elf_load_process of /bin/prog from the scratch rootfs into a host
 *      buffer standing in for guest memory, with a kernel page table made
 *      once at start. On success: the frames used stay inside the buffer,
 *      the kernel's PML4 is untouched and shared (upper half) by the new
 *      one, every initial mapping is in user space and its first page is
 *      mapped user-accessible, and the stack pointer is 16-byte aligned in
 *      the populated, writable stack.
 * The frame allocator is rewound after every input.
 */
#include <elf.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "loader/elf_loader.h"

#define MEM (48ull << 20)
#define SEP "\0QKINTERP\0"
#define SEP_LEN (sizeof(SEP) - 1)

static struct sbx_mem mem;
static struct sbx_falloc fa;
static struct sbx_pt kpt;
static uint64_t fa_start;
static uint8_t kpml4[4096];
static int rootfd;
static bool verbose; /* QUARK_FUZZ_VERBOSE: one line per load */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  q_log_set_level(Q_LOG_OFF);
  verbose = getenv("QUARK_FUZZ_VERBOSE") != NULL;
  const char *root = fuzz_tmpdir("elf");
  rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  FUZZ_CHECK(rootfd >= 0, "open %s", root);
  FUZZ_CHECK(mkdirat(rootfd, "bin", 0755) == 0 && mkdirat(rootfd, "lib", 0755) == 0 &&
                 mkdirat(rootfd, "lib64", 0755) == 0 &&
                 symlinkat("/lib/ld.so", rootfd, "lib64/ld-linux-x86-64.so.2") == 0,
             "rootfs");
  mem.size = MEM;
  mem.base = aligned_alloc(4096, MEM);
  FUZZ_CHECK(mem.base, "guest memory");
  memset(mem.base, 0, MEM);
  fa = (struct sbx_falloc){.mem = &mem, .next = 4ull << 20, .end = MEM};
  FUZZ_CHECK(sbx_pt_init(&kpt, &mem, &fa) == 0 && sbx_pt_fill_upper(&kpt) == 0, "kernel pt");
  fa_start = fa.next;
  memcpy(kpml4, mem.base + kpt.root, sizeof(kpml4));
  return 0;
}

static void check_parse(const uint8_t *buf, size_t len)
{
  struct sbx_elf_info info;
  q_error *err = NULL;
  if (sbx_elf_parse(buf, len, &info, &err) < 0) {
    FUZZ_CHECK(err && err->status == ENOEXEC, "parse failure other than ENOEXEC: %s",
               q_error_msg(err));
    q_error_free(&err);
    return;
  }
  FUZZ_CHECK(info.type == ET_EXEC || info.type == ET_DYN, "type %u", info.type);
  FUZZ_CHECK(info.nsegs >= 1 && info.nsegs <= SBX_ELF_MAX_SEGMENTS, "%u segments", info.nsegs);
  for (unsigned i = 0; i < info.nsegs; i++) {
    const struct sbx_elf_seg *s = &info.segs[i];
    FUZZ_CHECK(s->filesz <= s->memsz, "segment %u filesz > memsz", i);
    FUZZ_CHECK(s->offset <= len && s->filesz <= len - s->offset, "segment %u beyond the file", i);
    FUZZ_CHECK(s->vaddr < QK_USER_TOP && s->memsz <= QK_USER_TOP - s->vaddr,
               "segment %u outside user space", i);
  }
  FUZZ_CHECK(memchr(info.interp, 0, sizeof(info.interp)), "interp not terminated");
  FUZZ_CHECK(info.min_vaddr <= info.max_vaddr && info.max_vaddr <= QK_USER_TOP, "extent");
}

static void check_image(const struct sbx_proc_image *img)
{
  FUZZ_CHECK(fa.next >= fa_start && fa.next <= fa.end, "frame allocator ran off its range");
  FUZZ_CHECK(img->cr3 >= fa_start && img->cr3 < fa.next && !(img->cr3 & 4095), "cr3 %#lx",
             (unsigned long)img->cr3);
  FUZZ_CHECK(memcmp(kpml4, mem.base + kpt.root, sizeof(kpml4)) == 0,
             "the kernel's PML4 changed while loading a process");
  FUZZ_CHECK(memcmp(mem.base + img->cr3 + 256 * 8, mem.base + kpt.root + 256 * 8, 256 * 8) == 0,
             "upper half not shared with the kernel");
  FUZZ_CHECK(img->nvmas <= QK_MAX_BOOT_VMAS, "%u vmas", img->nvmas);
  struct sbx_pt pt = {.mem = &mem, .fa = &fa, .root = img->cr3};
  for (uint32_t i = 0; i < img->nvmas; i++) {
    const struct qk_vma_desc *v = &img->vmas[i];
    FUZZ_CHECK(v->start <= v->end && v->end <= QK_USER_TOP, "vma %u [%#lx, %#lx)", i,
               (unsigned long)v->start, (unsigned long)v->end);
    if (v->kind == QK_VMA_ELF || v->kind == QK_VMA_BSS) {
      uint64_t pa, flags;
      if (v->start < v->end)
        FUZZ_CHECK(sbx_pt_walk(&pt, v->start, &pa, &flags) == 0 && (flags & SBX_PTE_U) &&
                       pa < mem.size,
                   "vma %u start %#lx not mapped for user", i, (unsigned long)v->start);
    }
  }
  uint64_t pa, flags;
  FUZZ_CHECK(img->sp % 16 == 0, "sp %#lx not 16-byte aligned", (unsigned long)img->sp);
  FUZZ_CHECK(img->sp >= img->stack_populated && img->sp < SBX_STACK_TOP, "sp outside the stack");
  FUZZ_CHECK(sbx_pt_walk(&pt, img->sp, &pa, &flags) == 0 && (flags & SBX_PTE_U) &&
                 (flags & SBX_PTE_W),
             "sp not mapped writable");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
  int fds = fuzz_fd_count();
  const uint8_t *interp = NULL;
  size_t exe_len = len, interp_len = 0;
  const uint8_t *sep = memmem(data, len, SEP, SEP_LEN);
  if (sep) {
    exe_len = (size_t)(sep - data);
    interp = sep + SEP_LEN;
    interp_len = len - exe_len - SEP_LEN;
  }
  check_parse(data, exe_len);
  if (interp)
    check_parse(interp, interp_len);

  fuzz_write_file(rootfd, "bin/prog", data, exe_len, 0755);
  if (interp)
    fuzz_write_file(rootfd, "lib/ld.so", interp, interp_len, 0755);
  else
    unlinkat(rootfd, "lib/ld.so", 0);

  const char *argv[] = {"/bin/prog", "arg"};
  const char *envp[] = {"PATH=/bin", "HOME=/"};
  struct sbx_proc_spec spec = {
      .argv = argv, .argc = 2, .envp = envp, .envc = 2, .cwd = "/", .uid = 1000, .gid = 1000};
  struct sbx_proc_image img;
  q_error *err = NULL;
  fa.next = fa_start;
  int rc = sbx_elf_load_process(&mem, &fa, &kpt, rootfd, &spec, &img, &err);
  if (verbose)
    fprintf(stderr, "fuzz: load: %d %s entry %#lx vmas %u\n", rc, rc ? q_error_msg(err) : "",
            (unsigned long)(rc ? 0 : img.entry), rc ? 0 : img.nvmas);
  if (rc == 0)
    check_image(&img);
  else
    FUZZ_CHECK(err, "failure without an error message");
  q_error_free(&err);
  FUZZ_CHECK_FDS(fds);
  return 0;
}
