/* QCall host workers and request handlers (see qcall_host.h). */
#include "qcall_host.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../../guestkernel/abi/qk_errno.h"
#include "ops_fs.h"
#include "ops_net.h"
#include "ops_procnet.h"
#include "ops_tsor.h"

_Static_assert(QK_ENOENT == ENOENT && QK_EFAULT == EFAULT && QK_ENOSYS == ENOSYS && QK_EINVAL == EINVAL &&
                   QK_ENAMETOOLONG == ENAMETOOLONG && QK_ELOOP == ELOOP && QK_EXDEV == EXDEV &&
                   QK_ENOTTY == ENOTTY && QK_EOVERFLOW == EOVERFLOW && QK_ENOTEMPTY == ENOTEMPTY,
               "guest errno numbers are the host's");
_Static_assert(sizeof(struct stat) == 144, "QK_OP_FSTAT copies the x86-64 struct stat");
_Static_assert(QK_AT_SYMLINK_NOFOLLOW == AT_SYMLINK_NOFOLLOW && QK_AT_REMOVEDIR == AT_REMOVEDIR &&
                   QK_AT_EACCESS == AT_EACCESS && QK_AT_EMPTY_PATH == AT_EMPTY_PATH,
               "AT_* flags");

#define KERNEL_TERMIOS_SIZE 36 /* struct termios of the Linux ioctl ABI (not glibc's) */

struct worker {
  struct sbx_qcall *q;
  unsigned idx;
  pthread_t thread;
  bool started;
  int kick_fd;
  int wake_fd; /* guest_sleeping 1: ends a HLT (with an irqchip: its irqfd) */
  int wait_fd; /* guest_sleeping 2: ends a QK_PORT_WAIT in sbx_qcall_wait */
  struct io_uring uring;
  bool uring_ok;
  /* The ring's consumer: the worker, or the vCPU thread serving inline in
   * sbx_qcall_wait (1 while one of them serves). */
  atomic_int serving;
};

struct sbx_qcall {
  struct sbx_qcall_config cfg;
  struct qk_qcall_ring *rings;
  struct worker *workers;
  int stop_fd;
  int sleep_wake_fd; /* sbx_qcall_wake_sleep: ends a QK_OP_SLEEP early */
  atomic_bool stopping;
  atomic_uint_fast64_t served;
  atomic_uint_fast64_t served_inline; /* by the vCPU thread (sbx_qcall_wait) */
  atomic_uint_fast64_t served_op[SBX_QCALL_OPS]; /* per opcode (the last: any higher) */
  bool inline_serve;                  /* QUARK_QCALL_INLINE=0 turns it off (to compare) */
  bool stop_bound;                    /* stop_fd is the VM's (sbx_qcall_bind_stop) */
  /* QK_OP_LOG rate limit: a guest must not flood the node's log. */
  pthread_mutex_t log_lock;
  int64_t log_window_ns;
  unsigned log_lines, log_dropped;
  pthread_mutex_t fd_lock;
  int hfd[SBX_HFD_MAX];
};

/* ---- host fd table ---- */

/* The host fd behind a handle. Requests of one ring are served in order; a
 * guest that closes a handle on one ring while using it on another may
 * have the second request reach a reused fd of its own table, never
 * anything outside it. */
static int hfd_get(struct sbx_qcall *q, uint64_t h)
{
  if (h >= SBX_HFD_MAX)
    return -EBADF;
  pthread_mutex_lock(&q->fd_lock);
  int fd = q->hfd[h];
  pthread_mutex_unlock(&q->fd_lock);
  return fd >= 0 ? fd : -EBADF;
}

static int64_t hfd_install(struct sbx_qcall *q, int fd)
{
  pthread_mutex_lock(&q->fd_lock);
  for (int h = QK_HFD_ROOT + 1; h < SBX_HFD_MAX; h++) {
    if (q->hfd[h] < 0) {
      q->hfd[h] = fd;
      pthread_mutex_unlock(&q->fd_lock);
      return h;
    }
  }
  pthread_mutex_unlock(&q->fd_lock);
  close(fd);
  return -EMFILE;
}

static int64_t hfd_close(struct sbx_qcall *q, uint64_t h)
{
  if (h == QK_HFD_ROOT)
    return -EPERM;
  if (h >= SBX_HFD_MAX)
    return -EBADF;
  pthread_mutex_lock(&q->fd_lock);
  int fd = q->hfd[h];
  q->hfd[h] = -1;
  pthread_mutex_unlock(&q->fd_lock);
  if (fd < 0)
    return -EBADF;
  close(fd);
  return 0;
}

int64_t sbx_qcall_hfd_install(struct sbx_qcall *q, int fd) { return hfd_install(q, fd); }
int64_t sbx_qcall_hfd_close(struct sbx_qcall *q, uint64_t h) { return hfd_close(q, h); }

/* ---- guest memory helpers: everything goes through sbx_gpa ---- */

/* Copies a guest path of len bytes into out (NUL-terminated). */
static int read_path(struct sbx_qcall *q, uint64_t gpa, uint64_t len, char out[QK_QCALL_MAX_PATH + 1])
{
  if (len > QK_QCALL_MAX_PATH)
    return -ENAMETOOLONG;
  const char *p = sbx_gpa(q->cfg.mem, gpa, len);
  if (!p)
    return -EFAULT;
  memcpy(out, p, len);
  out[len] = 0;
  if (memchr(out, 0, len))
    return -EINVAL;
  return 0;
}

/* Copies a guest iovec array and checks every segment. */
static int read_iov(struct sbx_qcall *q, uint64_t gpa, uint64_t cnt, struct iovec *iov, uint64_t max_total)
{
  if (cnt > QK_QCALL_MAX_IOV)
    return -EINVAL;
  const void *src = sbx_gpa(q->cfg.mem, gpa, cnt * sizeof(struct qk_iov));
  if (!src)
    return -EFAULT;
  struct qk_iov g[QK_QCALL_MAX_IOV];
  memcpy(g, src, cnt * sizeof(struct qk_iov));
  uint64_t total = 0;
  for (uint64_t i = 0; i < cnt; i++) {
    void *p = sbx_gpa(q->cfg.mem, g[i].gpa, g[i].len);
    if (!p)
      return -EFAULT;
    if (g[i].len > max_total - total)
      return -EINVAL;
    total += g[i].len;
    iov[i].iov_base = p;
    iov[i].iov_len = g[i].len;
  }
  return 0;
}

static int openat2_in(int dirfd, const char *path, uint64_t flags, uint64_t mode)
{
  struct open_how how = {.flags = flags, .mode = mode, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  return fd < 0 ? -errno : fd;
}

/* O_PATH handle of path beneath dir hfd (the object itself if nofollow). */
static int open_path(struct sbx_qcall *q, uint64_t dirh, uint64_t gpa, uint64_t len, bool nofollow)
{
  int dirfd = hfd_get(q, dirh);
  if (dirfd < 0)
    return dirfd;
  char path[QK_QCALL_MAX_PATH + 1];
  int r = read_path(q, gpa, len, path);
  if (r < 0)
    return r;
  if (!path[0])
    return -ENOENT;
  return openat2_in(dirfd, path, O_PATH | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0), 0);
}

/* Parent directory (O_PATH) and last component of path beneath dir hfd:
 * the file ops' resolver (ops_fs.h), one implementation for every op. */
static int open_parent(struct sbx_qcall *q, uint64_t dirh, uint64_t gpa, uint64_t len, char base[NAME_MAX + 1])
{
  const struct sbx_fs_ctx fc = {q, q->cfg.mem, hfd_get};
  return sbx_fs_open_parent(&fc, dirh, gpa, len, base);
}

static int64_t neg(long r) { return r < 0 ? -errno : r; }

/* ---- handlers ---- */

static int64_t put_stat(struct sbx_qcall *q, uint64_t gpa, const struct stat *st)
{
  void *dst = sbx_gpa(q->cfg.mem, gpa, sizeof *st);
  if (!dst)
    return -EFAULT;
  memcpy(dst, st, sizeof *st);
  return 0;
}

static int64_t op_openat(struct sbx_qcall *q, const uint64_t *a)
{
  const uint64_t allowed = O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | O_NONBLOCK | O_DSYNC |
                           O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_SYNC | O_PATH | O_NOATIME | O_LARGEFILE |
                           O_TMPFILE;
  if (a[3] & ~allowed)
    return -EINVAL;
  int dirfd = hfd_get(q, a[0]);
  if (dirfd < 0)
    return dirfd;
  char path[QK_QCALL_MAX_PATH + 1];
  int r = read_path(q, a[1], a[2], path);
  if (r < 0)
    return r;
  if (!path[0])
    return -ENOENT;
  bool creates = (a[3] & O_CREAT) || (a[3] & O_TMPFILE) == O_TMPFILE;
  /* O_NONBLOCK while opening: a FIFO in the rootfs must not park this
   * worker until some writer appears. */
  /* openat2 refuses O_PATH with flags other than these (EINVAL) */
  uint64_t oflags = (a[3] & O_PATH) ? (a[3] & (O_PATH | O_DIRECTORY | O_NOFOLLOW)) | O_CLOEXEC
                                    : a[3] | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  int fd = openat2_in(dirfd, path, oflags, creates ? (a[4] & 07777) : 0);
  if (fd < 0)
    return fd;
  /* Device nodes are never opened on the host's behalf: the guest serves
   * /dev itself, and a node in an image (or a hostile rootfs) must not reach
   * a host device. Same answer as a nodev mount. */
  struct stat st;
  if (fstat(fd, &st) < 0 || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    close(fd);
    return -EACCES;
  }
  int fl = fcntl(fd, F_GETFL);
  if (!(a[3] & (O_NONBLOCK | O_PATH)) && (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)) {
    close(fd);
    return -errno;
  }
  /* a5: the file's stat with the handle (the guest's fstat after an open
   * needs no second request); the fstat above is the one it gets. */
  if (a[5] && put_stat(q, a[5], &st) < 0) {
    close(fd);
    return -EFAULT;
  }
  return hfd_install(q, fd);
}

static int64_t do_rw(struct worker *w, bool write, const uint64_t *a)
{
  struct sbx_qcall *q = w->q;
  int fd = hfd_get(q, a[0]);
  if (fd < 0)
    return fd;
  if (a[2] == 0)
    return 0;
  struct iovec iov[QK_QCALL_MAX_IOV];
  int r = read_iov(q, a[1], a[2], iov, QK_QCALL_MAX_IO);
  if (r < 0)
    return r;
  int64_t off = (int64_t)a[3];
  if (off < -1)
    return -EINVAL;
  if (write && q->cfg.sink && (a[0] == QK_HFD_STDOUT || a[0] == QK_HFD_STDERR))
    return q->cfg.sink(q->cfg.sink_ctx, (int)a[0], iov, (int)a[2]);
  if (a[4] & QK_RW_NOWAIT) { /* pod stdio: never wait (io_uring would poll and wait) */
    if (off != -1)
      return -EINVAL;
    ssize_t n = write ? pwritev2(fd, iov, (int)a[2], -1, RWF_NOWAIT)
                      : preadv2(fd, iov, (int)a[2], -1, RWF_NOWAIT);
    if (n < 0 &&
        errno == EOPNOTSUPP) /* no NOWAIT support (/dev/null): the pod made it O_NONBLOCK */
      n = write ? writev(fd, iov, (int)a[2]) : readv(fd, iov, (int)a[2]);
    return neg(n);
  }
  if (w && w->uring_ok) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&w->uring);
    if (sqe) {
      if (write)
        io_uring_prep_writev(sqe, fd, iov, (unsigned)a[2], (uint64_t)off);
      else
        io_uring_prep_readv(sqe, fd, iov, (unsigned)a[2], (uint64_t)off);
      struct io_uring_cqe *cqe;
      if (io_uring_submit(&w->uring) == 1 && io_uring_wait_cqe(&w->uring, &cqe) == 0) {
        int64_t res = cqe->res;
        io_uring_cqe_seen(&w->uring, cqe);
        return res;
      }
    }
  }
  if (off == -1)
    return neg(write ? writev(fd, iov, (int)a[2]) : readv(fd, iov, (int)a[2]));
  return neg(write ? pwritev(fd, iov, (int)a[2], off) : preadv(fd, iov, (int)a[2], off));
}

static int64_t op_fstatat(struct sbx_qcall *q, const uint64_t *a)
{
  if (a[4] & ~(uint64_t)(QK_AT_SYMLINK_NOFOLLOW | QK_AT_EMPTY_PATH))
    return -EINVAL;
  struct stat st;
  if (a[2] == 0 && (a[4] & QK_AT_EMPTY_PATH)) {
    int fd = hfd_get(q, a[0]);
    if (fd < 0)
      return fd;
    if (fstat(fd, &st) < 0)
      return -errno;
    return put_stat(q, a[3], &st);
  }
  int fd = open_path(q, a[0], a[1], a[2], a[4] & QK_AT_SYMLINK_NOFOLLOW);
  if (fd < 0)
    return fd;
  int r = fstatat(fd, "", &st, AT_EMPTY_PATH);
  int e = errno;
  close(fd);
  return r < 0 ? -e : put_stat(q, a[3], &st);
}

static int64_t op_readlinkat(struct sbx_qcall *q, const uint64_t *a)
{
  if (a[4] == 0 || a[4] > QK_QCALL_MAX_IO)
    return -EINVAL;
  char *buf = sbx_gpa(q->cfg.mem, a[3], a[4]);
  if (!buf)
    return -EFAULT;
  int fd = open_path(q, a[0], a[1], a[2], true);
  if (fd < 0)
    return fd;
  ssize_t n = readlinkat(fd, "", buf, a[4]);
  int e = errno;
  close(fd);
  return n < 0 ? -e : n;
}

static int64_t op_faccessat(struct sbx_qcall *q, const uint64_t *a)
{
  if (a[3] & ~7ull)
    return -EINVAL;
  if (a[4] & ~(uint64_t)(QK_AT_SYMLINK_NOFOLLOW | QK_AT_EACCESS))
    return -EINVAL;
  int fd = open_path(q, a[0], a[1], a[2], a[4] & QK_AT_SYMLINK_NOFOLLOW);
  if (fd < 0)
    return fd;
  long r = syscall(SYS_faccessat2, fd, "", (int)a[3], AT_EMPTY_PATH | (int)(a[4] & QK_AT_EACCESS));
  int e = errno;
  close(fd);
  return r < 0 ? -e : 0;
}

static int64_t op_mkdirat(struct sbx_qcall *q, const uint64_t *a)
{
  char base[NAME_MAX + 1];
  int pfd = open_parent(q, a[0], a[1], a[2], base);
  if (pfd < 0)
    return pfd;
  int r = (!strcmp(base, ".") || !strcmp(base, "..") || !strcmp(base, "/")) ? -EEXIST
                                                                          : (int)neg(mkdirat(pfd, base, a[3] & 07777));
  close(pfd);
  return r;
}

static int64_t op_unlinkat(struct sbx_qcall *q, const uint64_t *a)
{
  if (a[3] & ~(uint64_t)QK_AT_REMOVEDIR)
    return -EINVAL;
  char base[NAME_MAX + 1];
  int pfd = open_parent(q, a[0], a[1], a[2], base);
  if (pfd < 0)
    return pfd;
  int r = (!strcmp(base, ".") || !strcmp(base, "/")) ? -EINVAL
          : !strcmp(base, "..")                      ? -ENOTEMPTY
                                                     : (int)neg(unlinkat(pfd, base, (int)a[3]));
  close(pfd);
  return r;
}

static int64_t op_ioctl(struct sbx_qcall *q, const uint64_t *a)
{
  int fd = hfd_get(q, a[0]);
  if (fd < 0)
    return fd;
  uint8_t buf[128];
  size_t size;
  if (a[1] == TCGETS)
    size = KERNEL_TERMIOS_SIZE;
  else if (a[1] == TIOCGWINSZ)
    size = sizeof(struct winsize);
  else
    return -ENOTTY;
  void *dst = sbx_gpa(q->cfg.mem, a[2], size);
  if (!dst)
    return -EFAULT;
  memset(buf, 0, sizeof buf);
  if (ioctl(fd, (unsigned long)a[1], buf) < 0)
    return -errno;
  memcpy(dst, buf, size);
  return 0;
}

static int64_t op_clock(const uint64_t *a)
{
  switch (a[0]) {
  case CLOCK_REALTIME:
  case CLOCK_MONOTONIC:
  case CLOCK_MONOTONIC_RAW:
  case CLOCK_REALTIME_COARSE:
  case CLOCK_MONOTONIC_COARSE:
  case CLOCK_BOOTTIME:
    break;
  default:
    return -EINVAL;
  }
  struct timespec ts;
  if (clock_gettime((clockid_t)a[0], &ts) < 0)
    return -errno;
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t op_sleep(struct sbx_qcall *q, const uint64_t *a)
{
  if ((int64_t)a[0] < 0)
    return -EINVAL;
  struct timespec ts = {.tv_sec = (time_t)(a[0] / 1000000000u), .tv_nsec = (long)(a[0] % 1000000000u)};
  struct pollfd p[2] = {{.fd = q->stop_fd, .events = POLLIN}, {.fd = q->sleep_wake_fd, .events = POLLIN}};
  int r = ppoll(p, 2, &ts, NULL);
  if (r > 0 && p[0].revents)
    return -EINTR; /* the VM is stopping */
  if (r > 0) { /* woken early (sbx_qcall_wake_sleep): the guest looks again */
    uint64_t v;
    if (read(q->sleep_wake_fd, &v, sizeof v) < 0 && errno != EAGAIN)
      return -errno;
    return 1;
  }
  return r < 0 && errno != EINTR ? -errno : 0;
}

static int64_t op_zero(struct sbx_qcall *q, const uint64_t *a)
{
  struct iovec iov[QK_QCALL_MAX_IOV];
  int r = read_iov(q, a[0], a[1], iov, UINT64_MAX);
  if (r < 0)
    return r;
  for (uint64_t i = 0; i < a[1]; i++)
    memset(iov[i].iov_base, 0, iov[i].iov_len);
  return 0;
}

static int64_t op_copy(struct sbx_qcall *q, const uint64_t *a)
{
  void *dst = sbx_gpa(q->cfg.mem, a[0], a[2]), *src = sbx_gpa(q->cfg.mem, a[1], a[2]);
  if (!dst || !src)
    return -EFAULT;
  memmove(dst, src, a[2]);
  return 0;
}

static int64_t op_log(struct sbx_qcall *q, const uint64_t *a)
{
  if (a[0] < QK_LOG_ERROR || a[0] > QK_LOG_DEBUG)
    return -EINVAL;
  uint64_t len = a[2] > 4096 ? 4096 : a[2];
  const char *src = sbx_gpa(q->cfg.mem, a[1], len);
  if (!src)
    return -EFAULT;
  char line[4097];
  for (uint64_t i = 0; i < len; i++)
    line[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
  line[len] = 0;
  static const q_log_level levels[] = {Q_LOG_OFF, Q_LOG_ERROR, Q_LOG_WARN, Q_LOG_INFO, Q_LOG_DEBUG};
  if (!q_log_enabled(levels[a[0]]))
    return 0;
  pthread_mutex_lock(&q->log_lock);
  int64_t now = q_mono_ns();
  unsigned dropped = 0;
  if (now - q->log_window_ns > 1000000000) {
    dropped = q->log_dropped;
    q->log_window_ns = now;
    q->log_lines = q->log_dropped = 0;
  }
  bool keep = q->log_lines < SBX_QCALL_LOG_PER_SEC;
  if (keep)
    q->log_lines++;
  else
    q->log_dropped++;
  pthread_mutex_unlock(&q->log_lock);
  if (dropped)
    q_warn(q->cfg.pod_id, "guest: %u log lines dropped (more than %d per second)", dropped, SBX_QCALL_LOG_PER_SEC);
  if (keep)
    q_log(levels[a[0]], q->cfg.pod_id, "guest: %s", line);
  return 0;
}

static int64_t handle(struct sbx_qcall *q, struct worker *w, const struct qk_qcall_req *req)
{
  const uint64_t *a = req->a;
  int fd;
  switch (req->op) {
  case QK_OP_NOP:
    return 0;
  case QK_OP_LOG:
    return op_log(q, a);
  case QK_OP_CTL_EVENT: {
    struct qk_ctl_event ev;
    const void *src = a[1] == sizeof ev ? sbx_gpa(q->cfg.mem, a[0], sizeof ev) : NULL;
    if (!q->cfg.on_ctl_event)
      return -ENOSYS;
    if (!src)
      return -EFAULT;
    memcpy(&ev, src, sizeof ev);
    return q->cfg.on_ctl_event(q->cfg.ctl_ctx, &ev);
  }
  case QK_OP_EXIT:
    if (q->cfg.on_exit)
      q->cfg.on_exit(q->cfg.ctx, (int)(a[0] & 0xff));
    return 0;
  case QK_OP_OPENAT:
    return op_openat(q, a);
  case QK_OP_CLOSE:
    return hfd_close(q, a[0]);
  case QK_OP_PREADV:
  case QK_OP_PWRITEV:
    return do_rw(w, req->op == QK_OP_PWRITEV, a);
  case QK_OP_FSTAT: {
    if ((fd = hfd_get(q, a[0])) < 0)
      return fd;
    struct stat st;
    if (fstat(fd, &st) < 0)
      return -errno;
    return put_stat(q, a[1], &st);
  }
  case QK_OP_FSTATAT:
    return op_fstatat(q, a);
  case QK_OP_GETDENTS64: {
    if ((fd = hfd_get(q, a[0])) < 0)
      return fd;
    if (a[2] > QK_QCALL_MAX_IO)
      return -EINVAL;
    void *buf = sbx_gpa(q->cfg.mem, a[1], a[2]);
    if (!buf)
      return -EFAULT;
    return neg(syscall(SYS_getdents64, fd, buf, (size_t)a[2]));
  }
  case QK_OP_READLINKAT:
    return op_readlinkat(q, a);
  case QK_OP_FACCESSAT:
    return op_faccessat(q, a);
  case QK_OP_LSEEK:
    if ((fd = hfd_get(q, a[0])) < 0)
      return fd;
    if (a[2] > SEEK_HOLE)
      return -EINVAL;
    return neg(lseek(fd, (off_t)a[1], (int)a[2]));
  case QK_OP_FSYNC:
    if ((fd = hfd_get(q, a[0])) < 0)
      return fd;
    return neg(fsync(fd));
  case QK_OP_FTRUNCATE:
    if ((fd = hfd_get(q, a[0])) < 0)
      return fd;
    if ((int64_t)a[1] < 0)
      return -EINVAL;
    return neg(ftruncate(fd, (off_t)a[1]));
  case QK_OP_IOCTL:
    return op_ioctl(q, a);
  case QK_OP_GETRANDOM: {
    if (a[1] > QK_QCALL_MAX_IO)
      return -EINVAL;
    void *buf = sbx_gpa(q->cfg.mem, a[0], a[1]);
    if (!buf)
      return -EFAULT;
    return neg(getrandom(buf, a[1], 0));
  }
  case QK_OP_CLOCK:
    return op_clock(a);
  case QK_OP_SLEEP:
    return op_sleep(q, a);
  case QK_OP_ZERO:
    return op_zero(q, a);
  case QK_OP_COPY:
    return op_copy(q, a);
  case QK_OP_MKDIRAT:
    return op_mkdirat(q, a);
  case QK_OP_UNLINKAT:
    return op_unlinkat(q, a);
  case QK_OP_RENAMEAT ... QK_OP_FALLOCATE: {
    const struct sbx_fs_ctx fc = {q, q->cfg.mem, hfd_get};
    return sbx_qcall_fs(&fc, req->op, a);
  }
  case QK_OP_SENDMSG_CTL:
  case QK_OP_RECVMSG_CTL:
  case QK_OP_SOCKET ... QK_OP_SENDFILE: {
    const struct sbx_net_ctx nc = {q, q->cfg.mem, q->stop_fd, hfd_get, hfd_install};
    return sbx_qcall_net(&nc, req->op, a);
  }
  case QK_OP_TSOR_INFO ... QK_OP_TSOR_POLL: { /* TSoR sockets: ops_tsor.c */
    const struct sbx_net_ctx nc = {q, q->cfg.mem, q->stop_fd, hfd_get, hfd_install};
    return sbx_qcall_tsor(&nc, req->op, a);
  }
  case QK_OP_PROCNET_READ:
    return sbx_qcall_procnet(q->cfg.mem, a);
  default:
    return -ENOSYS;
  }
}

int64_t sbx_qcall_handle(struct sbx_qcall *q, unsigned ring, const struct qk_qcall_req *req)
{
  struct worker *w = ring < q->cfg.ring_count ? &q->workers[ring] : NULL;
  atomic_fetch_add(&q->served, 1);
  atomic_fetch_add(&q->served_op[req->op < SBX_QCALL_OPS ? req->op : SBX_QCALL_OPS - 1], 1);
  if (!w)
    return -EINVAL;
  return handle(q, w, req);
}

uint64_t sbx_qcall_served(const struct sbx_qcall *q) { return atomic_load(&q->served); }

void sbx_qcall_wake_sleep(struct sbx_qcall *q)
{
  uint64_t one = 1;
  if (write(q->sleep_wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
    q_warn(q->cfg.pod_id, "qcall: waking a guest sleep: %s", strerror(errno));
}

uint64_t sbx_qcall_served_inline(const struct sbx_qcall *q) { return atomic_load(&q->served_inline); }

uint64_t sbx_qcall_served_op(const struct sbx_qcall *q, unsigned op)
{
  return op < SBX_QCALL_OPS ? atomic_load(&q->served_op[op]) : 0;
}

/* ---- workers ---- */

static inline void cpu_relax(void) { __builtin_ia32_pause(); }

static uint64_t mono_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool claim(struct worker *w)
{
  int free_ = 0;
  return atomic_compare_exchange_strong(&w->serving, &free_, 1);
}

static void unclaim(struct worker *w) { atomic_store(&w->serving, 0); }

/* Serves the request at the ring's head, if any (the caller holds the
 * claim). from_worker: wake a guest that waits for it. False: nothing
 * served (empty ring, or a full completion ring inline). */
static bool serve_one(struct worker *w, bool from_worker)
{
  struct sbx_qcall *q = w->q;
  struct qk_qcall_ring *ring = &q->rings[w->idx];
  const uint32_t mask = QK_QCALL_ENTRIES - 1;
  uint32_t head = ring->req_head;
  uint32_t tail = __atomic_load_n(&ring->req_tail, __ATOMIC_ACQUIRE);
  if (head == tail)
    return false;
  if (tail - head > QK_QCALL_ENTRIES) {
    /* A guest that corrupts its indices only stalls itself. */
    q_warn(q->cfg.pod_id, "qcall ring %u: bogus req_tail %u (head %u); dropping", w->idx, tail, head);
    __atomic_store_n(&ring->req_head, tail, __ATOMIC_RELEASE);
    return false;
  }
  uint32_t ctail = ring->cpl_tail;
  if (!from_worker && ctail - __atomic_load_n(&ring->cpl_head, __ATOMIC_ACQUIRE) >= QK_QCALL_ENTRIES)
    return false; /* the worker's wait below is no place for the vCPU thread */
  struct qk_qcall_req req;
  memcpy(&req, (const void *)&ring->req[head & mask], sizeof req);
  int64_t res = sbx_qcall_handle(q, w->idx, &req);

  while (ctail - __atomic_load_n(&ring->cpl_head, __ATOMIC_ACQUIRE) >= QK_QCALL_ENTRIES &&
         !atomic_load(&q->stopping))
    usleep(100); /* completion ring full: the guest is not consuming */
  ring->cpl[ctail & mask].tag = req.tag;
  ring->cpl[ctail & mask].result = res;
  __atomic_store_n(&ring->cpl_tail, ctail + 1, __ATOMIC_RELEASE);
  __atomic_store_n(&ring->req_head, head + 1, __ATOMIC_RELEASE);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  uint32_t gs = __atomic_load_n(&ring->guest_sleeping, __ATOMIC_RELAXED);
  if (from_worker && gs) {
    uint64_t one = 1;
    if (write(gs == 2 ? w->wait_fd : w->wake_fd, &one, sizeof one) < 0) {
      /* cannot overflow */
    }
  }
  return true;
}

static void *worker_main(void *arg)
{
  struct worker *w = arg;
  struct sbx_qcall *q = w->q;
  struct qk_qcall_ring *ring = &q->rings[w->idx];
  while (!atomic_load(&q->stopping)) {
    uint32_t head = ring->req_head;
    uint32_t tail = __atomic_load_n(&ring->req_tail, __ATOMIC_ACQUIRE);
    if (head == tail) {
      uint64_t deadline = mono_ns() + SBX_QCALL_SPIN_NS;
      for (unsigned i = 0;; i++) {
        cpu_relax();
        tail = __atomic_load_n(&ring->req_tail, __ATOMIC_ACQUIRE);
        if (tail != head || ((i & 63) == 0 && mono_ns() > deadline))
          break;
      }
    }
    /* Nothing to do, or the vCPU thread serves inline: sleep. With inline
     * serving host_sleeping says so (QK_HOST_SLEEPING_INLINE): a guest that
     * waits with QK_PORT_WAIT then writes it at once, no kick, no polls. */
    if (tail == head || atomic_load(&w->serving)) {
      __atomic_store_n(&ring->host_sleeping, q->inline_serve && q->stop_bound ? QK_HOST_SLEEPING_INLINE : 1,
                       __ATOMIC_RELAXED);
      __atomic_thread_fence(__ATOMIC_SEQ_CST);
      if (__atomic_load_n(&ring->req_tail, __ATOMIC_ACQUIRE) == ring->req_head ||
          atomic_load(&w->serving)) {
        struct pollfd p[2] = {{.fd = w->kick_fd, .events = POLLIN}, {.fd = q->stop_fd, .events = POLLIN}};
        poll(p, 2, 1000);
        uint64_t v;
        if (read(w->kick_fd, &v, sizeof v) < 0) {
          /* EAGAIN: woken by stop or the timeout */
        }
      }
      __atomic_store_n(&ring->host_sleeping, 0, __ATOMIC_RELAXED);
      continue;
    }
    if (!claim(w))
      continue; /* taken since: the check above sleeps */
    serve_one(w, true);
    unclaim(w);
  }
  return NULL;
}

/* The vCPU thread's QK_PORT_WAIT: returns once a completion is there.
 * When the request is still unserved (the worker sleeps, or has not been
 * scheduled since the kick) the vCPU thread serves it itself: on a loaded
 * host each hand-off between the two threads is a wake-up that may wait
 * for a CPU (milliseconds), where the vCPU thread already holds one. */
void sbx_qcall_wait(struct sbx_qcall *q, unsigned idx, int stop_fd)
{
  if (idx >= q->cfg.ring_count) {
    poll(&(struct pollfd){.fd = stop_fd, .events = POLLIN}, 1, 1000);
    return;
  }
  struct qk_qcall_ring *ring = &q->rings[idx];
  struct worker *w = &q->workers[idx];
  for (int rounds = 0; rounds < 10; rounds++) {
    /* Requests the guest posted without waiting (qk_qcall_post: a close)
     * sit before the one it waits for: serve every queued request, then
     * return (one exit for them all). */
    if (q->inline_serve && q->stop_bound && ring->req_head != __atomic_load_n(&ring->req_tail, __ATOMIC_ACQUIRE) &&
        claim(w)) {
      unsigned n = 0;
      while (n < QK_QCALL_ENTRIES && serve_one(w, false))
        n++;
      unclaim(w);
      atomic_fetch_add(&q->served_inline, n);
    }
    if (ring->req_head == __atomic_load_n(&ring->req_tail, __ATOMIC_ACQUIRE) &&
        __atomic_load_n(&ring->cpl_tail, __ATOMIC_ACQUIRE) != __atomic_load_n(&ring->cpl_head, __ATOMIC_ACQUIRE))
      return;
    struct pollfd p[3] = {{.fd = w->wake_fd, .events = POLLIN},
                          {.fd = w->wait_fd, .events = POLLIN},
                          {.fd = stop_fd, .events = POLLIN}};
    int r = poll(p, 3, 100);
    uint64_t v;
    if (r > 0 && (p[0].revents & POLLIN) && read(w->wake_fd, &v, sizeof v) < 0) {
      /* raced with another reader: nothing to do */
    }
    if (r > 0 && (p[1].revents & POLLIN) && read(w->wait_fd, &v, sizeof v) < 0) {
      /* the same */
    }
    if (r > 0 && (p[2].revents & POLLIN))
      return;
  }
}

int sbx_qcall_create(struct sbx_qcall **out, const struct sbx_qcall_config *cfg, q_error **err)
{
  if (cfg->ring_count == 0 || cfg->ring_count > 64)
    return q_error_make(err, EINVAL, "qcall ring count %u", cfg->ring_count);
  struct qk_qcall_ring *rings =
      sbx_gpa(cfg->mem, cfg->rings_gpa, (uint64_t)cfg->ring_count * sizeof(struct qk_qcall_ring));
  if (!rings || (cfg->rings_gpa & 63))
    return q_error_make(err, EINVAL, "qcall rings outside guest memory or misaligned");
  struct sbx_qcall *q = calloc(1, sizeof *q);
  if (!q)
    return q_error_make(err, ENOMEM, "qcall");
  q->cfg = *cfg;
  q->rings = rings;
  const char *in = getenv("QUARK_QCALL_INLINE");
  q->inline_serve = !(in && !strcmp(in, "0"));
  q->stop_fd = -1;
  q->sleep_wake_fd = -1;
  pthread_mutex_init(&q->fd_lock, NULL);
  pthread_mutex_init(&q->log_lock, NULL);
  for (int i = 0; i < SBX_HFD_MAX; i++)
    q->hfd[i] = -1;
  int r;
  q->workers = calloc(cfg->ring_count, sizeof *q->workers);
  if (!q->workers) {
    r = q_error_make(err, ENOMEM, "qcall workers");
    goto fail;
  }
  for (unsigned i = 0; i < cfg->ring_count; i++)
    q->workers[i].kick_fd = q->workers[i].wake_fd = q->workers[i].wait_fd = -1;
  q->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  q->sleep_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (q->stop_fd < 0 || q->sleep_wake_fd < 0) {
    r = q_error_make(err, errno, "eventfd");
    goto fail;
  }
  for (int i = 0; i < 3; i++) {
    int fd = cfg->stdio[i] >= 0 ? fcntl(cfg->stdio[i], F_DUPFD_CLOEXEC, 3)
                                : open("/dev/null", (i ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) {
      r = q_error_make(err, errno, "stdio %d", i);
      goto fail;
    }
    q->hfd[i] = fd;
  }
  q->hfd[QK_HFD_ROOT] = fcntl(cfg->root_fd, F_DUPFD_CLOEXEC, 3);
  if (q->hfd[QK_HFD_ROOT] < 0) {
    r = q_error_make(err, errno, "dup rootfs fd");
    goto fail;
  }
  for (unsigned i = 0; i < cfg->ring_count; i++) {
    struct worker *w = &q->workers[i];
    w->q = q;
    w->idx = i;
    w->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    w->wait_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->kick_fd < 0 || w->wake_fd < 0 || w->wait_fd < 0) {
      r = q_error_make(err, errno, "eventfd");
      goto fail;
    }
    /* io_uring may be refused (seccomp, sysctl kernel.io_uring_disabled): fall back to preadv/pwritev. */
    w->uring_ok = io_uring_queue_init(8, &w->uring, 0) == 0;
  }
  *out = q;
  return 0;
fail:
  sbx_qcall_destroy(q);
  return r;
}

int sbx_qcall_bind_stop(struct sbx_qcall *q, int vm_stop_fd)
{
  int fd = fcntl(vm_stop_fd, F_DUPFD_CLOEXEC, 3);
  if (fd < 0)
    return -errno;
  if (q->stop_fd >= 0)
    close(q->stop_fd);
  q->stop_fd = fd; /* the VM's: sbx_qcall_stop's write comes after the VM stopped */
  q->stop_bound = true;
  return 0;
}

int sbx_qcall_start(struct sbx_qcall *q, q_error **err)
{
  for (unsigned i = 0; i < q->cfg.ring_count; i++) {
    int r = pthread_create(&q->workers[i].thread, NULL, worker_main, &q->workers[i]);
    if (r != 0)
      return q_error_make(err, r, "start qcall worker %u", i);
    q->workers[i].started = true;
  }
  return 0;
}

void sbx_qcall_stop(struct sbx_qcall *q)
{
  if (!q)
    return;
  atomic_store(&q->stopping, true);
  uint64_t one = 1;
  if (q->stop_fd >= 0 && write(q->stop_fd, &one, sizeof one) < 0) {
    /* cannot overflow */
  }
  for (unsigned i = 0; q->workers && i < q->cfg.ring_count; i++) {
    if (q->workers[i].started)
      pthread_join(q->workers[i].thread, NULL);
    q->workers[i].started = false;
  }
}

void sbx_qcall_destroy(struct sbx_qcall *q)
{
  if (!q)
    return;
  sbx_qcall_stop(q);
  sbx_tsor_forget(q); /* TSoR sockets of this VM (ops_tsor.c) */
  for (unsigned i = 0; q->workers && i < q->cfg.ring_count; i++) {
    struct worker *w = &q->workers[i];
    if (w->uring_ok)
      io_uring_queue_exit(&w->uring);
    if (w->kick_fd >= 0)
      close(w->kick_fd);
    if (w->wake_fd >= 0)
      close(w->wake_fd);
    if (w->wait_fd >= 0)
      close(w->wait_fd);
  }
  free(q->workers);
  for (int i = 0; i < SBX_HFD_MAX; i++)
    if (q->hfd[i] >= 0)
      close(q->hfd[i]);
  if (q->stop_fd >= 0)
    close(q->stop_fd);
  if (q->sleep_wake_fd >= 0)
    close(q->sleep_wake_fd);
  pthread_mutex_destroy(&q->fd_lock);
  pthread_mutex_destroy(&q->log_lock);
  free(q);
}

int sbx_qcall_kick_fd(const struct sbx_qcall *q, unsigned ring)
{
  return ring < q->cfg.ring_count ? q->workers[ring].kick_fd : -1;
}

int sbx_qcall_wake_fd(const struct sbx_qcall *q, unsigned ring)
{
  return ring < q->cfg.ring_count ? q->workers[ring].wake_fd : -1;
}
