/* Host-side ELF loader (see elf_loader.h). */
#include "elf_loader.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096ull
#define PAGE_DOWN(x) ((x) & ~(PAGE - 1))
#define PAGE_UP(x) (((x) + PAGE - 1) & ~(PAGE - 1))

/* Highest user address a segment may reach (the stack sits above). */
#define USER_LIMIT (SBX_STACK_TOP - SBX_STACK_SIZE - PAGE)

static int noexec(q_error **err, const char *what)
{
  return q_error_make(err, ENOEXEC, "bad ELF: %s", what);
}

int sbx_elf_parse(const uint8_t *buf, size_t len, struct sbx_elf_info *info, q_error **err)
{
  memset(info, 0, sizeof *info);
  if (len < sizeof(Elf64_Ehdr))
    return noexec(err, "shorter than an ELF header");
  Elf64_Ehdr eh;
  memcpy(&eh, buf, sizeof eh);
  if (len >= 2 && buf[0] == '#' && buf[1] == '!')
    return noexec(err, "scripts (#!) are not supported");
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
    return noexec(err, "no ELF magic");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
      eh.e_ident[EI_VERSION] != EV_CURRENT)
    return noexec(err, "not a little-endian ELF64 file");
  if (eh.e_machine != EM_X86_64)
    return noexec(err, "not an x86-64 executable");
  if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
    return noexec(err, "neither ET_EXEC nor ET_DYN");
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 128)
    return noexec(err, "bad program header table size");
  if (eh.e_phoff > len || (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > len - eh.e_phoff)
    return noexec(err, "program headers beyond the end of the file");

  info->type = eh.e_type;
  info->entry = eh.e_entry;
  info->phoff = eh.e_phoff;
  info->phnum = eh.e_phnum;
  info->min_vaddr = UINT64_MAX;
  info->max_align = PAGE;
  uint64_t phdr_from_pt_phdr = 0;
  bool have_pt_phdr = false;
  for (unsigned i = 0; i < eh.e_phnum; i++) {
    Elf64_Phdr ph;
    memcpy(&ph, buf + eh.e_phoff + i * sizeof ph, sizeof ph);
    switch (ph.p_type) {
    case PT_LOAD: {
      if (ph.p_memsz == 0)
        continue;
      if (info->nsegs == SBX_ELF_MAX_SEGMENTS)
        return noexec(err, "too many PT_LOAD segments");
      if (ph.p_filesz > ph.p_memsz)
        return noexec(err, "PT_LOAD filesz > memsz");
      if (ph.p_offset > len || ph.p_filesz > len - ph.p_offset)
        return noexec(err, "PT_LOAD data beyond the end of the file");
      if (ph.p_vaddr >= USER_LIMIT || ph.p_memsz > USER_LIMIT - ph.p_vaddr)
        return noexec(err, "PT_LOAD outside the user address range");
      if ((ph.p_vaddr & (PAGE - 1)) != (ph.p_offset & (PAGE - 1)))
        return noexec(err, "PT_LOAD vaddr and offset not congruent modulo the page size");
      if (ph.p_align > 1 && (ph.p_align & (ph.p_align - 1)))
        return noexec(err, "PT_LOAD alignment not a power of two");
      if (ph.p_align > info->max_align)
        info->max_align = ph.p_align;
      struct sbx_elf_seg *s = &info->segs[info->nsegs++];
      s->vaddr = ph.p_vaddr;
      s->memsz = ph.p_memsz;
      s->offset = ph.p_offset;
      s->filesz = ph.p_filesz;
      s->flags = ph.p_flags;
      if (PAGE_DOWN(ph.p_vaddr) < info->min_vaddr)
        info->min_vaddr = PAGE_DOWN(ph.p_vaddr);
      if (PAGE_UP(ph.p_vaddr + ph.p_memsz) > info->max_vaddr)
        info->max_vaddr = PAGE_UP(ph.p_vaddr + ph.p_memsz);
      break;
    }
    case PT_INTERP:
      if (ph.p_offset > len || ph.p_filesz > len - ph.p_offset)
        return noexec(err, "PT_INTERP beyond the end of the file");
      if (ph.p_filesz < 2 || ph.p_filesz > sizeof info->interp || buf[ph.p_offset + ph.p_filesz - 1] != 0 ||
          memchr(buf + ph.p_offset, 0, ph.p_filesz - 1) != NULL)
        return noexec(err, "PT_INTERP is not a NUL-terminated path");
      memcpy(info->interp, buf + ph.p_offset, ph.p_filesz);
      break;
    case PT_PHDR:
      have_pt_phdr = true;
      phdr_from_pt_phdr = ph.p_vaddr;
      break;
    default:
      break;
    }
  }
  if (info->nsegs == 0)
    return noexec(err, "no PT_LOAD segment");
  if (info->max_align > (2ull << 20))
    info->max_align = 2ull << 20;
  if (info->type == ET_DYN && info->max_vaddr - info->min_vaddr > SBX_INTERP_BASE - SBX_PIE_BASE)
    return noexec(err, "ET_DYN image too large");
  /* AT_PHDR: PT_PHDR when present, else the PT_LOAD that holds the table. */
  if (have_pt_phdr) {
    info->phdr_vaddr = phdr_from_pt_phdr;
  } else {
    for (unsigned i = 0; i < info->nsegs; i++) {
      struct sbx_elf_seg *s = &info->segs[i];
      if (eh.e_phoff >= s->offset && eh.e_phoff - s->offset < s->filesz) {
        info->phdr_vaddr = s->vaddr + (eh.e_phoff - s->offset);
        break;
      }
    }
  }
  return 0;
}

int sbx_read_in_root(int rootfd, const char *path, size_t max, uint8_t **bufp, size_t *lenp, q_error **err)
{
  struct open_how how = {
      .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
      .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
  };
  q_cleanup_close int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
  if (fd < 0)
    return q_error_make(err, errno, "open %s in the rootfs", path);
  struct stat st;
  if (fstat(fd, &st) < 0)
    return q_error_make(err, errno, "stat %s", path);
  if (!S_ISREG(st.st_mode))
    return q_error_make(err, EACCES, "%s is not a regular file", path);
  if ((uint64_t)st.st_size > max)
    return q_error_make(err, EFBIG, "%s is larger than %zu bytes", path, max);
  q_cleanup_free uint8_t *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
  if (!buf)
    return q_error_make(err, ENOMEM, "read %s", path);
  ssize_t n = q_read_all(fd, buf, (size_t)st.st_size);
  if (n < 0)
    return q_error_make(err, errno, "read %s", path);
  *lenp = (size_t)n;
  *bufp = q_steal_ptr(&buf);
  return 0;
}

struct load_ctx {
  struct sbx_mem *mem;
  struct sbx_falloc *fa;
  struct sbx_pt pt;
  struct sbx_proc_image *out;
};

static int add_vma(struct load_ctx *c, uint64_t start, uint64_t end, uint32_t prot, uint32_t kind, q_error **err)
{
  if (c->out->nvmas == QK_MAX_BOOT_VMAS)
    return q_error_make(err, ENOEXEC, "more than %u initial mappings", QK_MAX_BOOT_VMAS);
  c->out->vmas[c->out->nvmas++] = (struct qk_vma_desc){start, end, prot, kind};
  return 0;
}

static uint32_t prot_of(uint32_t pf)
{
  return ((pf & PF_R) ? QK_PROT_READ : 0) | ((pf & PF_W) ? QK_PROT_WRITE : 0) | ((pf & PF_X) ? QK_PROT_EXEC : 0);
}

/* Copies one ELF image into guest frames at bias and maps it. */
static int map_image(struct load_ctx *c, const uint8_t *buf, const struct sbx_elf_info *info, uint64_t bias,
                     q_error **err)
{
  for (unsigned i = 0; i < info->nsegs; i++) {
    const struct sbx_elf_seg *s = &info->segs[i];
    uint64_t va0 = s->vaddr + bias;
    uint64_t start = PAGE_DOWN(va0), end = PAGE_UP(va0 + s->memsz);
    uint64_t want = ((s->flags & PF_W) ? SBX_PTE_W : 0) | ((s->flags & PF_X) ? 0 : SBX_PTE_NX);
    for (uint64_t va = start; va < end; va += PAGE) {
      uint64_t *pte = sbx_pt_leaf(&c->pt, va, true);
      if (!pte)
        return q_error_make(err, ENOMEM, "page table for %#lx", (unsigned long)va);
      uint64_t frame;
      if (*pte & SBX_PTE_P) {
        /* Two segments share this page: keep one frame, widen permissions. */
        frame = *pte & SBX_PTE_ADDR;
        uint64_t nx = (*pte & SBX_PTE_NX) & (want & SBX_PTE_NX);
        *pte = (*pte & ~SBX_PTE_NX) | (want & SBX_PTE_W) | nx;
      } else {
        frame = sbx_falloc_pages(c->fa, 1);
        if (!frame)
          return q_error_make(err, ENOMEM, "guest memory exhausted loading the executable");
        *pte = frame | SBX_PTE_P | SBX_PTE_U | want;
      }
      uint8_t *page = sbx_gpa(c->mem, frame, PAGE);
      if (!page)
        return q_error_make(err, EFAULT, "frame %#lx", (unsigned long)frame);
      /* This segment's bytes inside [va, va+PAGE): file data, then zeros. */
      uint64_t lo = va < va0 ? va0 : va, hi = va + PAGE < va0 + s->memsz ? va + PAGE : va0 + s->memsz;
      for (uint64_t a = lo; a < hi;) {
        uint64_t off = a - va0;
        if (off < s->filesz) {
          uint64_t n = s->filesz - off < hi - a ? s->filesz - off : hi - a;
          memcpy(page + (a - va), buf + s->offset + off, n);
          a += n;
        } else {
          memset(page + (a - va), 0, hi - a);
          a = hi;
        }
      }
    }
    uint64_t file_end = PAGE_UP(va0 + s->filesz);
    if (s->filesz && add_vma(c, start, file_end < end ? file_end : end, prot_of(s->flags), QK_VMA_ELF, err) < 0)
      return -ENOEXEC;
    if (file_end < end && add_vma(c, s->filesz ? file_end : start, end, prot_of(s->flags), QK_VMA_BSS, err) < 0)
      return -ENOEXEC;
  }
  return 0;
}

static uint64_t pick_bias(const struct sbx_elf_info *info, uint64_t base)
{
  if (info->type != ET_DYN)
    return 0;
  uint64_t b = (base + info->max_align - 1) & ~(info->max_align - 1);
  return b - info->min_vaddr;
}

/* Resolves argv[0] like execvp: with a '/' as given (relative to cwd), else
 * through PATH from the environment. Leaves the absolute path in out->exe. */
static int find_exe(int rootfd, const struct sbx_proc_spec *spec, char exe[256], uint8_t **buf, size_t *len,
                    q_error **err)
{
  const char *name = spec->argv[0];
  if (!name || !*name)
    return q_error_make(err, ENOENT, "empty executable name");
  if (strchr(name, '/')) {
    int n = name[0] == '/' ? snprintf(exe, 256, "%s", name)
                           : snprintf(exe, 256, "%s/%s", strcmp(spec->cwd, "/") ? spec->cwd : "", name);
    if (n < 0 || n >= 256)
      return q_error_make(err, ENAMETOOLONG, "executable path %s", name);
    return sbx_read_in_root(rootfd, exe, SBX_ELF_MAX_FILE, buf, len, err);
  }
  const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (size_t i = 0; i < spec->envc; i++)
    if (!strncmp(spec->envp[i], "PATH=", 5))
      path = spec->envp[i] + 5;
  for (const char *p = path; *p;) {
    const char *colon = strchr(p, ':');
    size_t dl = colon ? (size_t)(colon - p) : strlen(p);
    int n = snprintf(exe, 256, "%.*s/%s", (int)dl, dl ? p : ".", name);
    if (n > 0 && n < 256 && exe[0] == '/') {
      q_error *e = NULL;
      if (sbx_read_in_root(rootfd, exe, SBX_ELF_MAX_FILE, buf, len, &e) == 0)
        return 0;
      q_error_free(&e);
    }
    if (!colon)
      break;
    p = colon + 1;
  }
  return q_error_make(err, ENOENT, "%s: not found in PATH %s of the rootfs", name, path);
}

/* Builds the initial stack; see the System V x86-64 ABI, "Process Initialization". */
static int build_stack(struct load_ctx *c, const struct sbx_proc_spec *spec, const struct sbx_elf_info *main_info,
                       uint64_t main_bias, uint64_t interp_bias, uint64_t entry, q_error **err)
{
  uint64_t top = SBX_STACK_TOP, low = top - SBX_STACK_POPULATED;
  for (uint64_t va = low; va < top; va += PAGE) {
    uint64_t f = sbx_falloc_pages(c->fa, 1);
    if (!f)
      return q_error_make(err, ENOMEM, "guest memory exhausted for the stack");
    int r = sbx_pt_map(&c->pt, va, f, PAGE, SBX_PTE_W | SBX_PTE_U | SBX_PTE_NX, false);
    if (r < 0)
      return q_error_make(err, -r, "map the stack");
  }
  if (add_vma(c, top - SBX_STACK_SIZE, top, QK_PROT_READ | QK_PROT_WRITE, QK_VMA_STACK, err) < 0)
    return -ENOEXEC;
  c->out->stack_populated = low;

  size_t bytes = 0;
  for (size_t i = 0; i < spec->argc; i++)
    bytes += strlen(spec->argv[i]) + 1 + 8;
  for (size_t i = 0; i < spec->envc; i++)
    bytes += strlen(spec->envp[i]) + 1 + 8;
  if (bytes > SBX_MAX_ARG_BYTES)
    return q_error_make(err, E2BIG, "arguments and environment exceed %u bytes", SBX_MAX_ARG_BYTES);

  uint64_t sp = top;
#define PUSH_BYTES(ptr, n)                                                   \
  do {                                                                       \
    sp -= (n);                                                               \
    if (sbx_pt_write(&c->pt, sp, (ptr), (n)) < 0)                            \
      return q_error_make(err, EFAULT, "initial stack write");               \
  } while (0)

  uint8_t rnd[16];
  if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
    return q_error_make(err, errno, "getrandom for AT_RANDOM");
  PUSH_BYTES(rnd, sizeof rnd);
  uint64_t at_random = sp;
  PUSH_BYTES("x86_64", 7);
  uint64_t at_platform = sp;
  PUSH_BYTES(c->out->exe, strlen(c->out->exe) + 1);
  uint64_t at_execfn = sp;
  uint64_t *envp = calloc(spec->envc + 1, 8), *argv = calloc(spec->argc + 1, 8);
  if (!envp || !argv) {
    free(envp);
    free(argv);
    return q_error_make(err, ENOMEM, "initial stack");
  }
  for (size_t i = spec->envc; i-- > 0;) {
    sp -= strlen(spec->envp[i]) + 1;
    envp[i] = sp;
    if (sbx_pt_write(&c->pt, sp, spec->envp[i], strlen(spec->envp[i]) + 1) < 0)
      goto fault;
  }
  for (size_t i = spec->argc; i-- > 0;) {
    sp -= strlen(spec->argv[i]) + 1;
    argv[i] = sp;
    if (sbx_pt_write(&c->pt, sp, spec->argv[i], strlen(spec->argv[i]) + 1) < 0)
      goto fault;
  }
  sp &= ~15ull;

  uint64_t auxv[][2] = {
      {AT_PHDR, main_info->phdr_vaddr ? main_info->phdr_vaddr + main_bias : 0},
      {AT_PHENT, sizeof(Elf64_Phdr)},
      {AT_PHNUM, main_info->phnum},
      {AT_PAGESZ, PAGE},
      {AT_BASE, interp_bias},
      {AT_FLAGS, 0},
      {AT_ENTRY, main_info->entry + main_bias},
      {AT_UID, spec->uid},
      {AT_EUID, spec->uid},
      {AT_GID, spec->gid},
      {AT_EGID, spec->gid},
      {AT_SECURE, 0},
      {AT_HWCAP, spec->hwcap},
      {AT_HWCAP2, spec->hwcap2},
      {AT_CLKTCK, 100},
      {AT_RANDOM, at_random},
      {AT_PLATFORM, at_platform},
      {AT_EXECFN, at_execfn},
      /* The guest kernel maps the vDSO and turns this into AT_SYSINFO_EHDR
       * (guestkernel/mm/mm.c boot_vdso); an old kernel leaves it ignored. */
      {AT_IGNORE, 0},
      {AT_NULL, 0},
  };
  size_t words = 1 + (spec->argc + 1) + (spec->envc + 1) + 2 * Q_ARRAY_SIZE(auxv);
  if (words & 1)
    sp -= 8; /* RSP must be 16-byte aligned at argc */
  sp -= sizeof auxv;
  if (sbx_pt_write(&c->pt, sp, auxv, sizeof auxv) < 0)
    goto fault;
  sp -= (spec->envc + 1) * 8;
  if (sbx_pt_write(&c->pt, sp, envp, (spec->envc + 1) * 8) < 0)
    goto fault;
  sp -= (spec->argc + 1) * 8;
  if (sbx_pt_write(&c->pt, sp, argv, (spec->argc + 1) * 8) < 0)
    goto fault;
  uint64_t argc = spec->argc;
  sp -= 8;
  if (sbx_pt_write(&c->pt, sp, &argc, 8) < 0)
    goto fault;
  free(envp);
  free(argv);
  c->out->sp = sp;
  c->out->entry = entry;
  return 0;
fault:
  free(envp);
  free(argv);
  return q_error_make(err, EFAULT, "initial stack write");
#undef PUSH_BYTES
}

/* A static ELF of one read+execute page at 0x400000 whose code is
 * `mov $39, %eax; syscall; 1: mov $34, %eax; syscall; jmp 1b`: getpid(),
 * then pause() forever. The getpid is there for PVM-style hosts, where a
 * task's first syscall is taken in ring 0 (it switches the vCPU to the user
 * syscall entry page of the kernel worker): pause() must park from the worker, or the scheduler would
 * idle, and serve the pod's commands, in emulated ring 0. */
static uint8_t *idle_image(size_t *len)
{
  static const uint8_t code[] = {0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xb8, 34, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7};
  size_t off = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr), n = off + sizeof code;
  uint8_t *buf = calloc(1, n);
  if (!buf)
    return NULL;
  Elf64_Ehdr eh = {.e_ident = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB, EV_CURRENT},
                   .e_type = ET_EXEC,
                   .e_machine = EM_X86_64,
                   .e_version = EV_CURRENT,
                   .e_entry = 0x400000 + off,
                   .e_phoff = sizeof(Elf64_Ehdr),
                   .e_ehsize = sizeof(Elf64_Ehdr),
                   .e_phentsize = sizeof(Elf64_Phdr),
                   .e_phnum = 1};
  Elf64_Phdr ph = {.p_type = PT_LOAD,
                   .p_flags = PF_R | PF_X,
                   .p_offset = 0,
                   .p_vaddr = 0x400000,
                   .p_paddr = 0x400000,
                   .p_filesz = n,
                   .p_memsz = n,
                   .p_align = PAGE};
  memcpy(buf, &eh, sizeof eh);
  memcpy(buf + sizeof eh, &ph, sizeof ph);
  memcpy(buf + off, code, sizeof code);
  *len = n;
  return buf;
}

int sbx_elf_load_process(struct sbx_mem *mem, struct sbx_falloc *fa, const struct sbx_pt *kernel_pt, int rootfd,
                         const struct sbx_proc_spec *spec, struct sbx_proc_image *out, q_error **err)
{
  memset(out, 0, sizeof *out);
  if (spec->argc == 0)
    return q_error_make(err, EINVAL, "no program to run");
  struct load_ctx c = {.mem = mem, .fa = fa, .out = out};
  if (sbx_pt_init(&c.pt, mem, fa) < 0 || sbx_pt_share_upper(&c.pt, kernel_pt) < 0)
    return q_error_make(err, ENOMEM, "process page table");

  q_cleanup_free uint8_t *buf = NULL;
  size_t len = 0;
  if (spec->builtin_idle) {
    /* The pod VM's boot process: pause() in a loop, from an image made here
     * (no file is read, nothing in the rootfs is needed). */
    if (!(buf = idle_image(&len)))
      return q_error_make(err, ENOMEM, "idle image");
    snprintf(out->exe, sizeof out->exe, "/quark-pod-idle");
  } else if (find_exe(rootfd, spec, out->exe, &buf, &len, err) < 0) {
    return -ENOEXEC;
  }
  struct sbx_elf_info info;
  if (sbx_elf_parse(buf, len, &info, err) < 0)
    return q_error_wrap(err, "%s", out->exe);
  uint64_t bias = pick_bias(&info, SBX_PIE_BASE);
  if (map_image(&c, buf, &info, bias, err) < 0)
    return q_error_wrap(err, "%s", out->exe);
  uint64_t entry = info.entry + bias, interp_bias = 0;
  out->brk = info.max_vaddr + bias;

  if (info.interp[0]) {
    q_cleanup_free uint8_t *ibuf = NULL;
    size_t ilen = 0;
    struct sbx_elf_info ii;
    if (sbx_read_in_root(rootfd, info.interp, SBX_ELF_MAX_FILE, &ibuf, &ilen, err) < 0 ||
        sbx_elf_parse(ibuf, ilen, &ii, err) < 0)
      return q_error_wrap(err, "interpreter of %s", out->exe);
    if (ii.type != ET_DYN || ii.interp[0])
      return q_error_make(err, ENOEXEC, "interpreter %s is not a plain ET_DYN image", info.interp);
    interp_bias = pick_bias(&ii, SBX_INTERP_BASE);
    if (map_image(&c, ibuf, &ii, interp_bias, err) < 0)
      return q_error_wrap(err, "interpreter %s", info.interp);
    entry = ii.entry + interp_bias;
  }
  if (add_vma(&c, out->brk, out->brk, QK_PROT_READ | QK_PROT_WRITE, QK_VMA_HEAP, err) < 0)
    return -ENOEXEC;
  if (build_stack(&c, spec, &info, bias, interp_bias, entry, err) < 0)
    return -ENOEXEC;
  out->cr3 = c.pt.root;
  return 0;
}
