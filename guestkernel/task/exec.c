/* execve/execveat: a guest-side ELF loader (static, static-PIE, and
 * dynamically linked programs with the image's own PT_INTERP), `#!`
 * scripts, and the initial stack (argv, envp, auxv).
 *
 * Why in the guest: the program's pages are mapped by the address space
 * code that already reads private file mappings straight into fresh frames
 * from the host (one PREADV per run of pages), so the loader only parses
 * headers; a host loader would need the guest's frame allocator. */
#include <qk/arch.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/task.h>
#include <vdso/vdso.h>

#define ARGS uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5

#define ARG_MAX (256u * 1024u)
#define MAX_ARGS 8192
#define STACK_TOP QK_USER_TOP
#define STACK_INIT (256ull << 10)
#define STACK_MAX (8ull << 20)
#define ET_EXEC 2
#define ET_DYN 3
#define PT_LOAD 1
#define PT_INTERP 3
#define PT_PHDR 6
#define PIE_BASE 0x555555554000ull
#define INTERP_BASE 0x7f0000000000ull

struct elf_ehdr {
  uint8_t ident[16];
  uint16_t type, machine;
  uint32_t version;
  uint64_t entry, phoff, shoff;
  uint32_t flags;
  uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};
struct elf_phdr {
  uint32_t type, flags;
  uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

void qk_proc_exec_done(struct qk_process *p);
bool qk_proc_path(const char *abs); /* fs/proc.c */
void qk_mm_put(struct qk_mm *mm);

struct strbuf {
  char *buf;
  uint32_t used;
  uint32_t argc, envc;
};

static int push_user_strings(struct strbuf *sb, uint64_t uarr, uint32_t *count)
{
  *count = 0;
  if (!uarr)
    return 0;
  for (;;) {
    uint64_t p;
    if (qk_copy_from_user(&p, uarr + (uint64_t)*count * 8, 8))
      return -QK_EFAULT;
    if (!p)
      return 0;
    if (*count >= MAX_ARGS)
      return -QK_E2BIG;
    int64_t n = qk_strncpy_from_user(sb->buf + sb->used, p, ARG_MAX - sb->used);
    if (n == -QK_ENAMETOOLONG)
      return -QK_E2BIG;
    if (n < 0)
      return (int)n;
    sb->used += (uint32_t)n + 1;
    (*count)++;
  }
}

/* Reads len bytes at off of a host file into kernel memory (one page). */
static int64_t read_at(int hfd, void *kbuf, uint64_t len, uint64_t off)
{
  struct qk_iov iov = {qk_va_to_pa(kbuf), len};
  return qk_qcall(QK_OP_PREADV, (uint64_t)hfd, qk_va_to_pa(&iov), 1, off, 0, 0);
}

struct loaded {
  uint64_t entry, phdr, phnum, bias, end;
  char interp[256];
};

static int open_exec(const char *path, struct qk_file **out, int *hfd)
{
  /* A regular file with an execute bit (the host's access(X_OK) answers
   * for the sandbox's credentials, not the guest's). */
  struct l_stat st;
  int r = qk_vfs_stat(path, 0, qk_va_to_pa(&st));
  if (r)
    return r;
  if ((st.st_mode & L_S_IFMT) != L_S_IFREG || !(st.st_mode & 0111))
    return -QK_EACCES;
  r = qk_vfs_open(path, L_O_RDONLY, 0, out);
  if (r)
    return r;
  *hfd = (*out)->ops->mmap_hfd(*out);
  if (*hfd < 0) {
    qk_fput(*out);
    return -QK_EACCES;
  }
  return 0;
}

static int check_ehdr(const struct elf_ehdr *e)
{
  if (memcmp(e->ident, "\177ELF", 4) || e->ident[4] != 2 || e->ident[5] != 1 || e->machine != 62 ||
      (e->type != ET_EXEC && e->type != ET_DYN) || e->phentsize != sizeof(struct elf_phdr) ||
      !e->phnum || e->phnum > 64 ||
      e->phoff > QK_PAGE_SIZE - (uint64_t)e->phnum * sizeof(struct elf_phdr))
    return -QK_ENOEXEC;
  return 0;
}

/* Maps the PT_LOAD segments of an ELF whose first page is hdr. */
static int load_elf(struct qk_mm *mm, int hfd, const uint8_t *hdr, uint64_t base,
                    struct loaded *out)
{
  const struct elf_ehdr *e = (const void *)hdr;
  const struct elf_phdr *ph = (const void *)(hdr + e->phoff);
  uint64_t lo = ~0ull, hi = 0;
  out->interp[0] = 0;
  out->phdr = 0;
  for (int i = 0; i < e->phnum; i++) {
    if (ph[i].type == PT_LOAD) {
      if (ph[i].vaddr < lo)
        lo = ph[i].vaddr;
      if (ph[i].vaddr + ph[i].memsz > hi)
        hi = ph[i].vaddr + ph[i].memsz;
    } else if (ph[i].type == PT_INTERP) {
      if (ph[i].filesz < 2 || ph[i].filesz > sizeof(out->interp))
        return -QK_ENOEXEC;
      if (read_at(hfd, out->interp, ph[i].filesz, ph[i].offset) != (int64_t)ph[i].filesz)
        return -QK_EIO;
      out->interp[ph[i].filesz - 1] = 0;
    }
  }
  if (lo == ~0ull || hi <= lo || hi - lo > (1ull << 40))
    return -QK_ENOEXEC;
  uint64_t bias = e->type == ET_DYN ? base - QK_ALIGN_DOWN(lo, QK_PAGE_SIZE) : 0;
  for (int i = 0; i < e->phnum; i++) {
    const struct elf_phdr *p = &ph[i];
    if (p->type == PT_PHDR)
      out->phdr = p->vaddr + bias;
    if (p->type != PT_LOAD || !p->memsz)
      continue;
    if (p->filesz > p->memsz || (p->vaddr & 4095) != (p->offset & 4095))
      return -QK_ENOEXEC;
    uint32_t prot = (p->flags & 4 ? L_PROT_READ : 0) | (p->flags & 2 ? L_PROT_WRITE : 0) |
                    (p->flags & 1 ? L_PROT_EXEC : 0);
    uint64_t start = p->vaddr + bias, pstart = QK_ALIGN_DOWN(start, QK_PAGE_SIZE);
    uint64_t fend = start + p->filesz, mend = start + p->memsz;
    if (!out->phdr && e->phoff >= p->offset && e->phoff < p->offset + p->filesz)
      out->phdr = start + (e->phoff - p->offset);
    int64_t r;
    if (p->filesz) {
      r = qk_mm_map(mm, pstart, QK_ALIGN_UP(fend, QK_PAGE_SIZE) - pstart, prot,
                    L_MAP_PRIVATE | L_MAP_FIXED, hfd, p->offset - (start - pstart));
      if (r < 0)
        return (int)r;
      uint64_t pend = QK_ALIGN_UP(fend, QK_PAGE_SIZE);
      if (mend > fend && pend > fend && (prot & L_PROT_WRITE)) {
        static const uint8_t zeros[4096];
        if (qk_copy_to_user(fend, zeros, pend - fend))
          return -QK_EFAULT;
      }
    }
    uint64_t astart = p->filesz ? QK_ALIGN_UP(fend, QK_PAGE_SIZE) : pstart;
    uint64_t aend = QK_ALIGN_UP(mend, QK_PAGE_SIZE);
    if (aend > astart) {
      r = qk_mm_map(mm, astart, aend - astart, prot, L_MAP_PRIVATE | L_MAP_FIXED | L_MAP_ANONYMOUS,
                    -1, 0);
      if (r < 0)
        return (int)r;
    }
  }
  out->entry = e->entry + bias;
  out->phnum = e->phnum;
  out->bias = bias;
  out->end = QK_ALIGN_UP(hi + bias, QK_PAGE_SIZE);
  return 0;
}

static uint64_t hwcap(void)
{
  static uint64_t v;
  if (!v) {
    uint32_t a = 1, b, c = 0, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    v = d;
  }
  return v;
}

/* Builds the initial stack in the (current) new address space. */
static int build_stack(struct qk_mm *mm, struct strbuf *sb, const char *execfn,
                       const struct loaded *m, uint64_t interp_bias, uint64_t *sp_out)
{
  uint64_t top = STACK_TOP;
  int64_t r = qk_mm_map(mm, top - STACK_INIT, STACK_INIT, L_PROT_READ | L_PROT_WRITE,
                        L_MAP_PRIVATE | L_MAP_FIXED | L_MAP_ANONYMOUS, -1, 0);
  if (r < 0)
    return (int)r;
  struct qk_vma *v = qk_vma_find(&mm->vmas, top - 8);
  if (v)
    v->flags |= QK_VMF_GROWSDOWN;
  mm->stack_limit = top - STACK_MAX;
  mm->mmap_top = INTERP_BASE;
  int64_t vdso = qk_vdso_map(mm); /* AT_SYSINFO_EHDR: libc's clocks without a syscall */
  if (vdso < 0)
    return (int)vdso;
  uint64_t sp = top - 16;
  size_t fl = strlen(execfn) + 1;
  sp -= fl;
  uint64_t u_execfn = sp;
  if (qk_copy_to_user(sp, execfn, fl))
    return -QK_EFAULT;
  sp -= 7;
  uint64_t u_plat = sp;
  if (qk_copy_to_user(sp, "x86_64", 7))
    return -QK_EFAULT;
  sp = (sp - 16) & ~15ull;
  uint64_t u_rand = sp;
  uint8_t rnd[16];
  for (int i = 0; i < 16; i++)
    rnd[i] = (uint8_t)(qk_arch_rdtsc() >> (i % 8));
  qk_qcall(QK_OP_GETRANDOM, qk_va_to_pa(rnd), 16, 0, 0, 0, 0);
  if (qk_copy_to_user(sp, rnd, 16))
    return -QK_EFAULT;
  sp -= sb->used;
  uint64_t u_str = sp;
  if (qk_copy_to_user(sp, sb->buf, sb->used))
    return -QK_EFAULT;
  struct qk_process *p = qk_current()->proc;
  uint64_t aux[][2] = {
      {3, m->phdr},     {4, sizeof(struct elf_phdr)},
      {5, m->phnum},    {6, QK_PAGE_SIZE},
      {7, interp_bias}, {8, 0},
      {9, m->entry},    {11, p->uid},
      {12, p->euid},    {13, p->gid},
      {14, p->egid},    {23, 0},
      {16, hwcap()},    {26, 0},
      {17, 100},        {25, u_rand},
      {15, u_plat},     {31, u_execfn},
      {51, qk_signal_min_stack()}, /* AT_MINSIGSTKSZ: the frame's size (task/signal.c) */
      {33, (uint64_t)vdso}, {0, 0},
  };
  uint64_t words = 1 + (sb->argc + 1) + (sb->envc + 1) + 2 * QK_ARRAY_SIZE(aux);
  sp = (sp - words * 8) & ~15ull;
  uint64_t *w = qk_kmalloc(words * 8);
  if (!w)
    return -QK_ENOMEM;
  uint64_t k = 0, s = u_str;
  w[k++] = sb->argc;
  const char *c = sb->buf;
  /* argv[argc] = NULL and envp's NULL are both written, also when one of
   * the lists is empty. */
  for (uint32_t i = 0; i < sb->argc + sb->envc; i++) {
    if (i == sb->argc)
      w[k++] = 0;
    size_t n = strlen(c) + 1;
    w[k++] = s;
    s += n;
    c += n;
  }
  if (sb->envc == 0)
    w[k++] = 0;
  w[k++] = 0;
  memcpy(&w[k], aux, sizeof(aux));
  int e = qk_copy_to_user(sp, w, words * 8) ? -QK_EFAULT : 0;
  qk_kfree(w);
  *sp_out = sp;
  return e;
}

/* Rewrites the argument strings for an interpreter: interp [arg] path
 * argv[1..] envp. */
static int script_args(struct strbuf *sb, const char *interp, const char *arg, const char *path)
{
  size_t a0 = strlen(sb->buf) + 1; /* argv[0] is replaced by path */
  size_t add = strlen(interp) + 1 + (arg ? strlen(arg) + 1 : 0) + strlen(path) + 1;
  if (!sb->argc)
    a0 = 0;
  if (sb->used - a0 + add > ARG_MAX)
    return -QK_E2BIG;
  memmove(sb->buf + add, sb->buf + a0, sb->used - a0);
  char *o = sb->buf;
  size_t n = strlen(interp) + 1;
  memcpy(o, interp, n);
  o += n;
  if (arg) {
    n = strlen(arg) + 1;
    memcpy(o, arg, n);
    o += n;
  }
  n = strlen(path) + 1;
  memcpy(o, path, n);
  sb->used = (uint32_t)(sb->used - a0 + add);
  sb->argc = (sb->argc ? sb->argc - 1 : 0) + 2 + (arg ? 1 : 0);
  return 0;
}

/* forward */
static int64_t exec_core(struct qk_task *t, char *path, struct strbuf *sb, bool live);

static int64_t do_execve(int64_t dirfd, uint64_t upath, uint64_t uargv, uint64_t uenvp,
                         uint64_t flags)
{
  struct qk_task *t = qk_current();
  struct strbuf sb = {0};
  char *path = qk_kmalloc(QK_PATH_MAX);
  int64_t r = -QK_ENOMEM;
  sb.buf = qk_kmalloc(ARG_MAX);
  if (!path || !sb.buf)
    goto out;
  r = qk_path_at(dirfd, upath, path, flags & L_AT_EMPTY_PATH);
  if (r == 1)
    r = -QK_ENOENT; /* fd-relative exec of an empty path: not offered */
  if (r < 0)
    goto out;
  qk_path_normalize(path);
  r = push_user_strings(&sb, uargv, &sb.argc);
  if (!r)
    r = push_user_strings(&sb, uenvp, &sb.envc);
  if (r)
    goto out;
  r = exec_core(t, path, &sb, true);
out:
  qk_kfree(path);
  qk_kfree(sb.buf);
  return r;
}

/* Loads path (argv/envp in sb) into t, which is the task running this
 * code (live) or, for containers, a task that is not running (its
 * registers, FS base and FPU image are set in the task). The current task
 * of the vCPU is t throughout (user memory is reached through it). */
static int64_t exec_core(struct qk_task *t, char *path, struct strbuf *sb, bool live)
{
  struct qk_process *p = t->proc;
  uint8_t *hdr = qk_kmalloc(QK_PAGE_SIZE), *ihdr = qk_kmalloc(QK_PAGE_SIZE);
  struct qk_file *f = NULL, *fi = NULL;
  int hfd = -1, ihfd = -1;
  int64_t r = -QK_ENOMEM;
  if (!hdr || !ihdr)
    goto out;
  for (int depth = 0;; depth++) {
    r = open_exec(path, &f, &hfd);
    if (r)
      goto out;
    memset(hdr, 0, QK_PAGE_SIZE);
    r = read_at(hfd, hdr, QK_PAGE_SIZE, 0);
    if (r < 0)
      goto out;
    if (r < 2 || hdr[0] != '#' || hdr[1] != '!')
      break;
    if (depth >= 4) {
      r = -QK_ELOOP;
      goto out;
    }
    /* "#!interp [arg]" on the first line. */
    char *line = (char *)hdr + 2, *end = line;
    while (end < (char *)hdr + QK_PAGE_SIZE - 1 && *end && *end != '\n')
      end++;
    *end = 0;
    while (*line == ' ' || *line == '\t')
      line++;
    char *sp = line;
    while (*sp && *sp != ' ' && *sp != '\t')
      sp++;
    char *arg = NULL;
    if (*sp) {
      *sp++ = 0;
      while (*sp == ' ' || *sp == '\t')
        sp++;
      char *e2 = sp + strlen(sp);
      while (e2 > sp && (e2[-1] == ' ' || e2[-1] == '\t' || e2[-1] == '\r'))
        *--e2 = 0;
      if (*sp)
        arg = sp;
    }
    if (!*line) {
      r = -QK_ENOEXEC;
      goto out;
    }
    r = script_args(sb, line, arg, path);
    if (r)
      goto out;
    char *interp = qk_kmalloc(QK_PATH_MAX);
    if (!interp) {
      r = -QK_ENOMEM;
      goto out;
    }
    r = qk_path_join(interp, QK_PATH_MAX, p->fs->cwd, line);
    if (r >= 0) {
      qk_path_normalize(interp);
      memcpy(path, interp, strlen(interp) + 1);
    }
    qk_kfree(interp);
    if (r < 0)
      goto out;
    qk_fput(f);
    f = NULL;
  }
  r = check_ehdr((struct elf_ehdr *)hdr);
  if (r)
    goto out;

  /* Point of no return: the old image goes. */
  struct qk_mm *old = p->mm, *mm = qk_mm_new(old->cr3);
  if (!mm) {
    r = -QK_ENOMEM;
    goto out;
  }
  for (struct qk_task *o = p->threads, *n; o; o = n) {
    n = o->next_in_proc;
    if (o != t)
      o->state = QK_TASK_DEAD;
  }
  p->threads = t;
  t->next_in_proc = NULL;
  p->nr_threads = 1;
  p->mm = mm;
  if (live)
    qk_arch_switch_cr3(mm->cr3);
  qk_uaccess_forget();
  qk_mm_put(old);
  qk_proc_exec_done(p);

  struct loaded m, in = {0};
  const struct elf_ehdr *e = (const void *)hdr;
  r = load_elf(mm, hfd, hdr, e->type == ET_DYN ? PIE_BASE : 0, &m);
  uint64_t entry = m.entry, ibias = 0;
  if (!r && m.interp[0]) {
    r = open_exec(m.interp, &fi, &ihfd);
    if (!r) {
      memset(ihdr, 0, QK_PAGE_SIZE);
      r = read_at(ihfd, ihdr, QK_PAGE_SIZE, 0);
      r = r < 0 ? r : check_ehdr((struct elf_ehdr *)ihdr);
    }
    if (!r)
      r = load_elf(mm, ihfd, ihdr, INTERP_BASE, &in);
    entry = in.entry;
    ibias = in.bias;
  }
  uint64_t sp = 0;
  if (!r) {
    mm->brk_start = mm->brk = m.end;
    r = build_stack(mm, sb, path, &m, ibias, &sp);
  }
  if (r) {
    qk_printk(QK_LOG_INFO, "pid %d: execve of %s failed after the old image went: %ld", p->pid,
              path, r);
    qk_process_exit(p, 11); /* SIGSEGV, as Linux does past the point of no return */
    r = 0;
    goto out;
  }
  qk_fdtable_close_on_exec(p->files);
  qk_signal_exec_reset(p, t);
  qk_sec_exec(p); /* capabilities across exec (task/cred.c) */
  /* /proc/<pid>/exe names the file itself, not the path it came through:
   * an exec of /proc/self/exe (busybox's applets) that stored that path
   * made the next one's /proc/self/exe point at itself. */
  const char *exe = f->path && f->path[0] == '/' && !qk_proc_path(f->path) ? f->path : path;
  qk_strlcpy(p->exe, exe, sizeof(p->exe));
  const char *base = path + strlen(path);
  while (base > path && base[-1] != '/')
    base--;
  qk_strlcpy(t->comm, base, sizeof(t->comm));
  struct qk_regs *u = t->uregs;
  memset(u, 0, sizeof(*u));
  u->rip = entry;
  u->rsp = sp;
  u->cs = QK_SEL_UCODE;
  u->ss = QK_SEL_UDATA;
  u->rflags = 0x202;
  t->fs_base = 0;
  if (live)
    qk_arch_set_fs_base(0);
  t->clear_child_tid = 0;
  t->robust_list = 0;
  {
    /* A fresh FPU state: default control words, nothing else. */
    _Alignas(16) uint8_t fp[512] = {0};
    fp[0] = 0x7f;
    fp[1] = 0x03; /* FCW 0x37f */
    fp[24] = 0x80;
    fp[25] = 0x1f; /* MXCSR 0x1f80 */
    if (live)
      qk_fpu_restore(fp);
    memcpy(t->fpu, fp, sizeof(fp));
    t->fpu_valid = 1;
  }
  r = 0;
out:
  if (f)
    qk_fput(f);
  if (fi)
    qk_fput(fi);
  qk_kfree(hdr);
  qk_kfree(ihdr);
  return r;
}

int64_t sys_execve(ARGS)
{
  return do_execve(L_AT_FDCWD, a0, a1, a2, 0);
}
int64_t sys_execveat(ARGS)
{
  return do_execve((int64_t)(int)a0, a1, a2, a3, a4);
}

int qk_exec_kernel(struct qk_task *t, const char *path, const char *strings, uint32_t len,
                   uint32_t argc, uint32_t envc)
{
  struct strbuf sb = {0};
  char *p = qk_kmalloc(QK_PATH_MAX);
  sb.buf = qk_kmalloc(ARG_MAX);
  int64_t r = -QK_ENOMEM;
  if (!p || !sb.buf)
    goto out;
  r = -QK_E2BIG;
  if (len > ARG_MAX || strlen(path) >= QK_PATH_MAX)
    goto out;
  memcpy(sb.buf, strings, len);
  sb.used = len;
  sb.argc = argc;
  sb.envc = envc;
  r = qk_path_join(p, QK_PATH_MAX, t->proc->fs->cwd, path);
  if (r < 0)
    goto out;
  qk_path_normalize(p);
  struct qk_percpu *pc = qk_arch_cpu_private();
  struct qk_task *saved = pc->current;
  pc->current = t;
  t->uregs = &t->regs;
  qk_uaccess_forget();
  r = exec_core(t, p, &sb, false);
  pc->current = saved;
  qk_uaccess_forget();
out:
  qk_kfree(p);
  qk_kfree(sb.buf);
  return (int)r;
}
