/* Files of the container's rootfs, served by the host over QCall. Data
 * moves straight between the host file and user pages: the guest only
 * builds a scatter list of guest-physical segments (QK_OP_PREADV/PWRITEV);
 * it never copies file data itself. */
#include <qk/fs.h>
#include <qk/task.h>
#include <qk/kernel.h>
#include <qk/mm.h>
#include <qk/qcall.h>

#include "fs_internal.h"

#define KIND_STDIO 1u
#define STDIN_RETRY_NS 2000000ull /* as task/container.c's stdio */

/* Attributes the host sent answer later questions in the guest for a
 * short while (ATTR_FRESH_NS from the request that fetched them), and
 * only while no guest call changed a host file (qk_hostfs_changed bumps
 * hostfs_gen). So a stat or fstat sees every change the guest made, and a
 * change made outside the pod (another container on a shared volume, the
 * node) at most ATTR_FRESH_NS late, as if it had raced with the call.
 * - An open brings the file's attributes (QK_OP_OPENAT a5): they answer
 *   its first fstat (open, fstat, read: nginx, cp, most loaders); later
 *   fstats ask the host.
 * - The last PATH_ATTR_N stat answers and opens by path answer a stat of
 *   the same path (nginx stats the file it then opens, per request). */
#define ATTR_FRESH_NS 2000000ull
struct host_attr {
  struct l_stat st;
  uint64_t until_ns; /* guest monotonic time the attributes expire */
  uint32_t gen;      /* hostfs_gen before the request */
};
static uint32_t hostfs_gen;

void qk_hostfs_changed(void) { __atomic_fetch_add(&hostfs_gen, 1, __ATOMIC_RELAXED); }

int64_t qk_hostfs_change_qcall(uint32_t op, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
                               uint64_t a4, uint64_t a5)
{
  qk_hostfs_changed();
  return qk_qcall(op, a0, a1, a2, a3, a4, a5);
}

static inline uint32_t gen_now(void) { return __atomic_load_n(&hostfs_gen, __ATOMIC_RELAXED); }

static inline bool attr_fresh(const struct host_attr *a, uint64_t now)
{
  return a->gen == gen_now() && now < a->until_ns;
}

#define PATH_ATTR_N 8
#define PATH_ATTR_LEN 112
struct path_attr {
  struct host_attr a;
  uint64_t root;  /* the container root the path resolved beneath */
  bool nofollow;
  char path[PATH_ATTR_LEN];
};
/* The kernel core runs under one lock (qk/smp.h): no lock of its own. */
static struct path_attr path_attrs[PATH_ATTR_N];
static unsigned path_attr_next;

static const struct l_stat *path_attr_find(const char *abs, size_t len, bool nofollow, uint64_t now)
{
  if (len >= PATH_ATTR_LEN)
    return NULL;
  uint64_t root = qk_root_hfd();
  for (unsigned i = 0; i < PATH_ATTR_N; i++) {
    struct path_attr *e = &path_attrs[i];
    if (e->root == root && e->nofollow == nofollow && attr_fresh(&e->a, now) &&
        !memcmp(e->path, abs, len + 1))
      return &e->a.st;
  }
  return NULL;
}

static void path_attr_put(const char *abs, size_t len, bool nofollow, const struct host_attr *a)
{
  if (len >= PATH_ATTR_LEN)
    return;
  uint64_t root = qk_root_hfd();
  struct path_attr *e = NULL;
  for (unsigned i = 0; i < PATH_ATTR_N && !e; i++)
    if (path_attrs[i].root == root && path_attrs[i].nofollow == nofollow &&
        !memcmp(path_attrs[i].path, abs, len + 1))
      e = &path_attrs[i];
  if (!e)
    e = &path_attrs[path_attr_next++ % PATH_ATTR_N];
  e->a = *a;
  e->root = root;
  e->nofollow = nofollow;
  memcpy(e->path, abs, len + 1);
}

/* Run mode's stdin is the sandbox's own fd 0, which the host reads with a
 * blocking call: a read with nothing to read held the vCPU, so no other
 * task ran and no signal came until input or EOF did ((sleep 1; kill -INT
 * $$) & read x). The guest looks first and parks (retrying every 2 ms, a
 * signal ends the wait); files that poll ready (regular files, /dev/null,
 * EOF) are read as before. 0: read now. */
static int64_t stdin_wait(struct qk_file *f)
{
  struct qk_net_pollfd pf = {(uint32_t)f->hfd, 0x001 /* POLLIN */, 0};
  if (qk_qcall(QK_OP_NET_POLL, qk_va_to_pa(&pf), 1, 0, 0, 0, 0) < 0 || pf.revents)
    return 0; /* ready, hung up, or not pollable: the host read answers */
  if (f->flags & L_O_NONBLOCK)
    return -QK_EAGAIN;
  return qk_block(f, qk_time_monotonic_ns() + STDIN_RETRY_NS);
}

static int64_t host_rw(struct qk_file *f, const struct qk_uio *u, int64_t off, bool write)
{
  if (qk_unlikely(f->kind == KIND_STDIO && !write && f->hfd == QK_HFD_STDIN)) {
    int64_t w = stdin_wait(f);
    if (w)
      return w;
  }
  if (write && f->kind != KIND_STDIO)
    qk_hostfs_changed();
  /* Common case first: one buffer inside one page (small reads and
   * writes), no scatter-list building. */
  if (u->cnt == 1) {
    uint64_t pa = qk_user_pa_range(u->iov[0].base, u->iov[0].len, !write);
    if (pa) {
      struct qk_iov one = { pa, u->iov[0].len };
      return qk_qcall(write ? QK_OP_PWRITEV : QK_OP_PREADV, (uint64_t)f->hfd, qk_va_to_pa(&one), 1,
                      off < 0 ? (uint64_t)-1 : (uint64_t)off, 0, 0);
    }
  }
  struct qk_uiov uv; /* ~1 KiB of the 64 KiB kernel stack: no allocation */
  struct qk_uiov *v = &uv;
  int64_t done = 0;
  unsigned i = 0;
  uint64_t in_seg = 0; /* bytes of u->iov[i] already handed out */
  while (i < u->cnt) {
    v->n = 0;
    v->bytes = 0;
    int64_t fault = 0;
    /* Fill one scatter list from as many user segments as fit. */
    while (i < u->cnt) {
      uint64_t left = u->iov[i].len - in_seg;
      if (!left) {
        i++;
        in_seg = 0;
        continue;
      }
      int64_t got = qk_uiov_add(v, u->iov[i].base + in_seg, left, !write);
      if (got < 0) {
        fault = got;
        break;
      }
      in_seg += (uint64_t)got;
      if ((uint64_t)got < left)
        break; /* list full (or a bad page further on: found next round) */
    }
    if (!v->n) {
      if (!done && fault)
        done = fault;
      break;
    }
    int64_t r = qk_qcall(write ? QK_OP_PWRITEV : QK_OP_PREADV, (uint64_t)f->hfd, qk_va_to_pa(v->seg),
                         v->n, off < 0 ? (uint64_t)-1 : (uint64_t)(off + done), 0, 0);
    if (r < 0) {
      if (!done)
        done = r;
      break;
    }
    done += r;
    if ((uint64_t)r < v->bytes || fault)
      break; /* short transfer: EOF, a full pipe, or a bad page next */
  }
  return done;
}

static int64_t host_lseek(struct qk_file *f, int64_t off, int whence)
{
  return qk_qcall(QK_OP_LSEEK, (uint64_t)f->hfd, (uint64_t)off, (uint64_t)whence, 0, 0, 0);
}

static int host_fstat(struct qk_file *f, uint64_t gpa)
{
  struct host_attr *a = f->priv ? __atomic_exchange_n((struct host_attr **)&f->priv, NULL,
                                                      __ATOMIC_ACQ_REL)
                                 : NULL; /* the first fstat only */
  if (a) {
    bool fresh = attr_fresh(a, qk_time_monotonic_ns());
    if (fresh)
      memcpy(qk_pa_to_va(gpa), &a->st, sizeof a->st);
    qk_kfree(a);
    if (fresh)
      return 0;
  }
  return (int)qk_qcall(QK_OP_FSTAT, (uint64_t)f->hfd, gpa, 0, 0, 0, 0);
}

static int64_t host_getdents(struct qk_file *f, uint64_t uva, uint64_t len)
{
  /* Records must land contiguously: the host writes into a kernel bounce
   * buffer unless the user buffer sits in one page. */
  uint64_t pa = qk_user_pa_range(uva, len, true);
  if (pa)
    return qk_qcall(QK_OP_GETDENTS64, (uint64_t)f->hfd, pa, len, 0, 0, 0);
  if (len > QK_PAGE_SIZE)
    len = QK_PAGE_SIZE; /* one page: larger kmallocs need contiguous pages */
  void *buf = qk_kmalloc(len);
  if (!buf)
    return -QK_ENOMEM;
  int64_t r = qk_qcall(QK_OP_GETDENTS64, (uint64_t)f->hfd, qk_va_to_pa(buf), len, 0, 0, 0);
  if (r > 0 && qk_copy_to_user(uva, buf, (size_t)r))
    r = -QK_EFAULT; /* entries consumed: Linux loses them the same way */
  qk_kfree(buf);
  return r;
}

static int64_t host_ioctl(struct qk_file *f, uint64_t cmd, uint64_t arg)
{
  uint64_t size;
  switch (cmd) {
  case L_TCGETS:
    size = 36; /* struct termios (kernel) */
    break;
  case L_TIOCGWINSZ:
    size = 8;
    break;
  default:
    return -QK_ENOTTY;
  }
  if (f->kind != KIND_STDIO)
    return -QK_ENOTTY;
  uint64_t buf[8] = { 0 };
  int64_t r = qk_qcall(QK_OP_IOCTL, (uint64_t)f->hfd, cmd, qk_va_to_pa(buf), 0, 0, 0);
  if (r < 0)
    return r;
  if (qk_copy_to_user(arg, buf, size))
    return -QK_EFAULT;
  return r;
}

static int host_mmap_hfd(struct qk_file *f) { return f->hfd; }

/* Closes a host handle without waiting: close(2) reports nothing from the
 * host (a close on Linux frees the descriptor whatever it answers, and
 * every write has completed by then), and the guest forwards no locks, so
 * the request rides with the next one on this vCPU's ring (one exit fewer
 * per close). The host serves a ring in order: the handle is gone before
 * any later request of this vCPU. */
static void hfd_close(int hfd) { qk_qcall_post(QK_OP_CLOSE, (uint64_t)hfd, 0, 0); }

static void host_release(struct qk_file *f)
{
  qk_kfree(f->priv);
  /* The stdio and root handles belong to the sandbox, not to this file. */
  if (f->hfd > QK_HFD_ROOT && f->kind != KIND_STDIO)
    hfd_close(f->hfd);
}

static const struct qk_file_ops host_ops = {
  .rw = host_rw,
  .lseek = host_lseek,
  .fstat = host_fstat,
  .getdents = host_getdents,
  .ioctl = host_ioctl,
  .mmap_hfd = host_mmap_hfd,
  .release = host_release,
};

struct qk_file *qk_hostfs_stdio(int hfd)
{
  static const char *const names[] = { "/dev/stdin", "/dev/stdout", "/dev/stderr" };
  struct qk_file *f =
      qk_file_new(&host_ops, hfd == QK_HFD_STDIN ? L_O_RDONLY : L_O_WRONLY, names[hfd]);
  if (f) {
    f->hfd = hfd;
    f->kind = KIND_STDIO;
  }
  return f;
}

/* A container's stdio handle (any hfd the host named) as file `which`
 * (0 stdin, 1 stdout, 2 stderr); never closed by the guest. */
struct qk_file *qk_hostfs_stdio_hfd(int which, int hfd)
{
  struct qk_file *f = qk_hostfs_stdio(which);
  if (f)
    f->hfd = hfd;
  return f;
}

/* Paths resolve beneath the calling process's container root. */
uint64_t qk_root_hfd(void)
{
  struct qk_percpu *pc = qk_arch_cpu_private();
  struct qk_task *t = pc ? pc->current : NULL;
  return t && t->proc && t->proc->fs ? t->proc->fs->root_hfd : QK_HFD_ROOT;
}

/* Paths the kernel serves itself (/proc, /sys): decided on the lexically
 * normalised path when ".." is in it. */
static bool proc_route(const char *abs)
{
  if (!qk_proc_path(abs))
    return false;
  bool dots = false;
  for (const char *c = abs; *c && !dots; c++)
    dots = c[0] == '/' && c[1] == '.' && c[2] == '.';
  if (!dots)
    return true;
  char *n = qk_kmalloc(QK_PATH_MAX);
  if (!n)
    return true; /* /proc answers ENOMEM */
  qk_strlcpy(n, abs, QK_PATH_MAX);
  qk_path_normalize(n);
  bool r = qk_proc_path(n);
  qk_kfree(n);
  return r;
}

static uint64_t path_gpa(const char *abs, uint64_t *len)
{
  *len = strlen(abs);
  return qk_va_to_pa(abs);
}

/* A rootfs symlink that leads into /proc or /sys (Debian's /etc/mtab ->
 * ../proc/self/mounts): the host resolves links in the rootfs only and
 * answers ENOENT, so the last component's link is followed here. Returns
 * a kmalloc'd absolute path under /proc or /sys, or NULL. */
static char *link_into_proc(const char *abs)
{
  char *t = qk_kmalloc(QK_PATH_MAX), *out = qk_kmalloc(QK_PATH_MAX);
  int64_t n = -QK_ENOMEM;
  if (t && out) {
    uint64_t plen, gpa = path_gpa(abs, &plen);
    n = qk_qcall(QK_OP_READLINKAT, qk_root_hfd(), gpa, plen, qk_va_to_pa(t), QK_PATH_MAX - 1, 0);
  }
  if (n > 0) {
    t[n] = 0;
    if (t[0] == '/') {
      qk_strlcpy(out, t, QK_PATH_MAX);
    } else {
      qk_strlcpy(out, abs, QK_PATH_MAX);
      char *slash = strrchr(out, '/');
      size_t dl = (size_t)(slash + 1 - out);
      if (dl + (size_t)n + 1 > QK_PATH_MAX)
        n = -1;
      else
        memcpy(slash + 1, t, (size_t)n + 1);
    }
    if (n > 0) {
      qk_path_normalize(out);
      if (qk_proc_path(out)) {
        qk_kfree(t);
        return out;
      }
    }
  }
  qk_kfree(t);
  qk_kfree(out);
  return NULL;
}

/* Runs a tmpfs call; where a link led out of the tmpfs, *abs becomes the
 * path to resolve instead (in *buf, allocated here, freed by the caller)
 * and QK_TMPFS_REDIRECT is returned. */
#define TMPFS_CALL(call, abs, buf)                                                                 \
  ({                                                                                               \
    int r_ = -QK_ENOMEM;                                                                           \
    if (!*(buf))                                                                                   \
      *(buf) = qk_kmalloc(QK_PATH_MAX);                                                            \
    if (*(buf)) {                                                                                  \
      char *redirect = *(buf);                                                                     \
      r_ = (int)(call);                                                                            \
      if (r_ == QK_TMPFS_REDIRECT)                                                                 \
        (abs) = *(buf);                                                                            \
    }                                                                                              \
    r_;                                                                                            \
  })

static int vfs_open(const char *abs, int flags, uint32_t mode, struct qk_file **out);

int qk_vfs_open(const char *abs, int flags, uint32_t mode, struct qk_file **out)
{
  if (qk_tmpfs_path(abs)) {
    char *buf = NULL;
    int r = TMPFS_CALL(qk_tmpfs_open(abs, flags, mode, out, redirect), abs, &buf);
    if (r == QK_TMPFS_REDIRECT)
      r = vfs_open(abs, flags, mode, out);
    qk_kfree(buf);
    return r;
  }
  return vfs_open(abs, flags, mode, out);
}

static int vfs_open(const char *abs, int flags, uint32_t mode, struct qk_file **out)
{
  int r = qk_dev_open(abs, flags, out);
  if (r != -QK_ENOENT)
    return r;
  if (proc_route(abs))
    return qk_proc_open(abs, flags, mode, out);
  /* A read-only root (readOnlyRootFilesystem): no write, create or
   * truncate; O_CREAT alone opens an existing file as Linux does. */
  bool ro_create = false;
  if (!(flags & L_O_PATH) && (flags & (L_O_ACCMODE | L_O_CREAT | L_O_TRUNC)) &&
      (r = qk_sec_fs_write(abs)) < 0) {
    if (flags & (L_O_ACCMODE | L_O_TRUNC | L_O_EXCL))
      return r;
    flags &= ~L_O_CREAT;
    ro_create = true;
  }
  uint64_t len, gpa = path_gpa(abs, &len);
  /* open(2) ignores flags it does not know, openat2 on the host refuses
   * them: send only the meaningful ones (O_LARGEFILE is implied on 64-bit,
   * O_DIRECT/O_ASYNC are not supported on rootfs files). */
  const uint64_t host_flags = L_O_ACCMODE | L_O_CREAT | L_O_EXCL | L_O_NOCTTY | L_O_TRUNC |
                              L_O_APPEND | L_O_NONBLOCK | L_O_DSYNC | L_O_DIRECTORY |
                              L_O_NOFOLLOW | L_O_SYNC | L_O_PATH | L_O_NOATIME | L_O_TMPFILE;
  if (flags & (L_O_CREAT | L_O_TRUNC))
    qk_hostfs_changed(); /* a truncate, or a directory that grows */
  /* The attributes come with the handle (st_mode 0: a host that sent none). */
  struct host_attr *a = (flags & L_O_PATH) ? NULL : qk_kmalloc(sizeof(*a));
  if (a) {
    a->st.st_mode = 0;
    a->gen = gen_now();
    a->until_ns = qk_time_monotonic_ns() + ATTR_FRESH_NS;
  }
  int64_t hfd = qk_qcall(QK_OP_OPENAT, qk_root_hfd(), gpa, len, (uint64_t)flags & host_flags, mode,
                         a ? qk_va_to_pa(&a->st) : 0);
  if (a && (hfd < 0 || !a->st.st_mode)) {
    qk_kfree(a);
    a = NULL;
  }
  if (a && !(flags & L_O_NOFOLLOW))
    path_attr_put(abs, len, false, a); /* what stat(abs) would answer */
  if (hfd == -QK_ENOENT && ro_create)
    return -QK_EROFS;
  if (hfd == -QK_ENOENT && !(flags & L_O_NOFOLLOW)) {
    char *p = link_into_proc(abs);
    if (p) {
      r = qk_proc_open(p, flags, mode, out);
      qk_kfree(p);
      return r;
    }
  }
  if (hfd < 0)
    return (int)hfd;
  struct qk_file *f = qk_file_new(&host_ops, (uint32_t)flags & ~(uint32_t)L_O_CLOEXEC, abs);
  if (!f) {
    qk_kfree(a);
    hfd_close((int)hfd);
    return -QK_ENOMEM;
  }
  f->hfd = (int)hfd;
  f->priv = a;
  *out = f;
  return 0;
}

static int vfs_stat(const char *abs, int nofollow, uint64_t stat_gpa);

int qk_vfs_stat(const char *abs, int nofollow, uint64_t stat_gpa)
{
  if (qk_tmpfs_path(abs)) {
    char *buf = NULL;
    int r = TMPFS_CALL(qk_tmpfs_stat(abs, nofollow, stat_gpa, redirect), abs, &buf);
    if (r == QK_TMPFS_REDIRECT)
      r = vfs_stat(abs, nofollow, stat_gpa);
    qk_kfree(buf);
    return r;
  }
  return vfs_stat(abs, nofollow, stat_gpa);
}

static int vfs_stat(const char *abs, int nofollow, uint64_t stat_gpa)
{
  int r = qk_dev_stat(abs, stat_gpa);
  if (r != -QK_ENOENT)
    return r;
  if (proc_route(abs))
    return qk_proc_stat(abs, nofollow, stat_gpa);
  uint64_t len, gpa = path_gpa(abs, &len);
  /* Attributes land in the kernel first: what the cache keeps must not be
   * user memory that another thread may scribble on. */
  struct host_attr a = { .gen = gen_now(), .until_ns = qk_time_monotonic_ns() };
  const struct l_stat *known = path_attr_find(abs, len, nofollow, a.until_ns);
  if (known) {
    memcpy(qk_pa_to_va(stat_gpa), known, sizeof(*known));
    return 0;
  }
  a.until_ns += ATTR_FRESH_NS;
  r = (int)qk_qcall(QK_OP_FSTATAT, qk_root_hfd(), gpa, len, qk_va_to_pa(&a.st),
                    nofollow ? QK_AT_SYMLINK_NOFOLLOW : 0, 0);
  if (r == 0) {
    memcpy(qk_pa_to_va(stat_gpa), &a.st, sizeof(a.st));
    path_attr_put(abs, len, nofollow, &a);
  }
  if (r == -QK_ENOENT && !nofollow) {
    char *p = link_into_proc(abs);
    if (p) {
      r = qk_proc_stat(p, 0, stat_gpa);
      qk_kfree(p);
    }
  }
  return r;
}

static int vfs_access(const char *abs, int mode, int flags);

int qk_vfs_access(const char *abs, int mode, int flags)
{
  if (qk_tmpfs_path(abs)) {
    char *buf = NULL;
    int r = TMPFS_CALL(qk_tmpfs_access(abs, mode, flags, redirect), abs, &buf);
    if (r == QK_TMPFS_REDIRECT)
      r = vfs_access(abs, mode, flags);
    qk_kfree(buf);
    return r;
  }
  return vfs_access(abs, mode, flags);
}

static int vfs_access(const char *abs, int mode, int flags)
{
  if (proc_route(abs))
    return qk_proc_access(abs, mode, flags);
  uint64_t len, gpa = path_gpa(abs, &len);
  return (int)qk_qcall(QK_OP_FACCESSAT, qk_root_hfd(), gpa, len, (uint64_t)mode, (uint64_t)flags, 0);
}

static int64_t vfs_readlink(const char *abs, char *buf, uint64_t len);

int64_t qk_vfs_readlink(const char *abs, char *out, uint64_t len)
{
  if (qk_tmpfs_path(abs)) {
    char *buf = NULL;
    int64_t r = TMPFS_CALL(qk_tmpfs_readlink(abs, out, len, redirect), abs, &buf);
    if (r == QK_TMPFS_REDIRECT)
      r = vfs_readlink(abs, out, len);
    qk_kfree(buf);
    return r;
  }
  return vfs_readlink(abs, out, len);
}

static int64_t vfs_readlink(const char *abs, char *buf, uint64_t len)
{
  if (proc_route(abs))
    return qk_proc_readlink(abs, buf, len);
  uint64_t plen, gpa = path_gpa(abs, &plen);
  return qk_qcall(QK_OP_READLINKAT, qk_root_hfd(), gpa, plen, qk_va_to_pa(buf), len, 0);
}

int qk_hostfs_hfd(struct qk_file *f)
{
  return f->ops == &host_ops && f->kind != KIND_STDIO && f->hfd > QK_HFD_ROOT ? f->hfd : -1;
}
