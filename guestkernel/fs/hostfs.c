/* Files of the container's rootfs, served by the host over QCall. Data
 * moves straight between the host file and user pages: the guest only
 * builds a scatter list of guest-physical segments (QK_OP_PREADV/PWRITEV);
 * it never copies file data itself. */
#include <qk/fs.h>
#include <qk/task.h>
#include <qk/kernel.h>
#include <qk/mm.h>
#include <qk/qcall.h>

#define KIND_STDIO 1u

static int64_t host_rw(struct qk_file *f, const struct qk_uio *u, int64_t off, bool write)
{
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

static void host_release(struct qk_file *f)
{
  /* The stdio and root handles belong to the sandbox, not to this file. */
  if (f->hfd > QK_HFD_ROOT && f->kind != KIND_STDIO)
    qk_qcall(QK_OP_CLOSE, (uint64_t)f->hfd, 0, 0, 0, 0, 0);
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

static uint64_t path_gpa(const char *abs, uint64_t *len)
{
  *len = strlen(abs);
  return qk_va_to_pa(abs);
}

int qk_vfs_open(const char *abs, int flags, uint32_t mode, struct qk_file **out)
{
  int r = qk_dev_open(abs, flags, out);
  if (r != -QK_ENOENT)
    return r;
  uint64_t len, gpa = path_gpa(abs, &len);
  /* open(2) ignores flags it does not know, openat2 on the host refuses
   * them: send only the meaningful ones (O_LARGEFILE is implied on 64-bit,
   * O_DIRECT/O_ASYNC are not supported on rootfs files). */
  const uint64_t host_flags = L_O_ACCMODE | L_O_CREAT | L_O_EXCL | L_O_NOCTTY | L_O_TRUNC |
                              L_O_APPEND | L_O_NONBLOCK | L_O_DSYNC | L_O_DIRECTORY |
                              L_O_NOFOLLOW | L_O_SYNC | L_O_PATH | L_O_NOATIME | L_O_TMPFILE;
  int64_t hfd = qk_qcall(QK_OP_OPENAT, qk_root_hfd(), gpa, len, (uint64_t)flags & host_flags, mode, 0);
  if (hfd < 0)
    return (int)hfd;
  struct qk_file *f = qk_file_new(&host_ops, (uint32_t)flags & ~(uint32_t)L_O_CLOEXEC, abs);
  if (!f) {
    qk_qcall(QK_OP_CLOSE, (uint64_t)hfd, 0, 0, 0, 0, 0);
    return -QK_ENOMEM;
  }
  f->hfd = (int)hfd;
  *out = f;
  return 0;
}

int qk_vfs_stat(const char *abs, int nofollow, uint64_t stat_gpa)
{
  int r = qk_dev_stat(abs, stat_gpa);
  if (r != -QK_ENOENT)
    return r;
  uint64_t len, gpa = path_gpa(abs, &len);
  return (int)qk_qcall(QK_OP_FSTATAT, qk_root_hfd(), gpa, len, stat_gpa,
                       nofollow ? QK_AT_SYMLINK_NOFOLLOW : 0, 0);
}

int qk_vfs_access(const char *abs, int mode, int flags)
{
  uint64_t len, gpa = path_gpa(abs, &len);
  return (int)qk_qcall(QK_OP_FACCESSAT, qk_root_hfd(), gpa, len, (uint64_t)mode, (uint64_t)flags, 0);
}

int64_t qk_vfs_readlink(const char *abs, char *buf, uint64_t len)
{
  uint64_t plen, gpa = path_gpa(abs, &plen);
  return qk_qcall(QK_OP_READLINKAT, qk_root_hfd(), gpa, plen, qk_va_to_pa(buf), len, 0);
}
