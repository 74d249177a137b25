/* splice, tee and vmsplice with Linux's semantics (splice(2), tee(2),
 * vmsplice(2)): the bytes move through the pipe's own ring (fs/pipe.c), a
 * copy rather than page moves (the kernel runs natively in the worker, so
 * a copy is cheap), at most one ring (64 KiB) per call.
 *
 * Blocking: the pipe side waits unless SPLICE_F_NONBLOCK or the pipe's
 * O_NONBLOCK (vmsplice: SPLICE_F_NONBLOCK only, as Linux); the other file
 * blocks as its own O_NONBLOCK says (a socket's receive buffer, a full
 * send buffer), except that a read from a unix socket also takes
 * SPLICE_F_NONBLOCK, as Linux's unix sockets do. Files Linux cannot splice
 * (eventfd, epoll, signalfd, timerfd, directories) answer EINVAL. */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/task.h>

#include "fs_internal.h"

#define SPLICE_F_NONBLOCK 0x2u
#define SPLICE_F_ALL 0xfu /* MOVE, NONBLOCK, MORE, GIFT */
#define MAX_RW 0x7ffff000ull /* Linux's MAX_RW_COUNT */
#define S_IFSOCK 0140000u

static struct qk_file *fget(uint64_t fd)
{
  return qk_fget_in(qk_current()->proc->files, (int)fd);
}

static bool readable(const struct qk_file *f)
{
  return !(f->flags & L_O_PATH) && (f->flags & L_O_ACCMODE) != L_O_WRONLY;
}

static bool writable(const struct qk_file *f)
{
  return !(f->flags & L_O_PATH) && (f->flags & L_O_ACCMODE) != L_O_RDONLY;
}

/* The file type bits of an in-guest file (no host handle: its fstat asks
 * nobody), or ~0u for a host-backed one (rootfs files, host sockets,
 * stdio: all spliceable; a host directory's rw answers EISDIR). */
static uint32_t guest_type(struct qk_file *f)
{
  if (f->hfd >= 0)
    return ~0u;
  struct l_stat st;
  if (f->ops->fstat(f, qk_va_to_pa(&st)))
    return ~0u;
  return st.st_mode & L_S_IFMT;
}

/* One end a pipe (pf), the other the file f; uoff: f's user offset (0:
 * its position). */
static int64_t splice_file(struct qk_file *pf, bool into, struct qk_file *f, uint64_t uoff,
                           uint64_t len, bool nonblock)
{
  uint32_t type = guest_type(f);
  if (!type || type == L_S_IFDIR)
    return -QK_EINVAL; /* an anonymous inode or a directory */
  if (!into && (f->flags & L_O_APPEND))
    return -QK_EINVAL;
  int64_t off = -1;
  if (uoff) {
    if (qk_copy_from_user(&off, uoff, 8))
      return -QK_EFAULT;
    if (off < 0)
      return -QK_EINVAL;
  }
  nonblock |= (pf->flags & L_O_NONBLOCK) != 0;
  uint32_t saved = f->flags;
  if (into && nonblock && type == S_IFSOCK)
    f->flags |= L_O_NONBLOCK; /* a unix socket (host ones have a handle) */
  int64_t r = qk_pipe_splice(pf, into, f, off, len, nonblock);
  f->flags = saved;
  if (r == -QK_ESPIPE || r == -QK_EISDIR)
    r = -QK_EINVAL; /* an offset on a file without one; a directory */
  if (r > 0 && uoff) {
    off += r;
    if (qk_copy_to_user(uoff, &off, 8))
      r = -QK_EFAULT;
  }
  return r;
}

static int64_t do_splice(struct qk_file *in, uint64_t uoff_in, struct qk_file *out,
                         uint64_t uoff_out, uint64_t len, uint64_t flags)
{
  bool ip = qk_pipe_file(in), op = qk_pipe_file(out);
  bool nonblock = (flags & SPLICE_F_NONBLOCK) != 0;
  if ((ip && uoff_in) || (op && uoff_out))
    return -QK_ESPIPE;
  if (ip && op) {
    if (in->priv == out->priv)
      return -QK_EINVAL;
    nonblock |= ((in->flags | out->flags) & L_O_NONBLOCK) != 0;
    return qk_pipe_to_pipe(in, out, len, nonblock, false);
  }
  if (ip)
    return splice_file(in, false, out, uoff_out, len, nonblock);
  if (op)
    return splice_file(out, true, in, uoff_in, len, nonblock);
  return -QK_EINVAL; /* neither end is a pipe */
}

int64_t sys_splice(uint64_t in_fd, uint64_t uoff_in, uint64_t out_fd, uint64_t uoff_out,
                   uint64_t len, uint64_t flags)
{
  if (!len)
    return 0;
  if (flags & ~(uint64_t)SPLICE_F_ALL)
    return -QK_EINVAL;
  struct qk_file *in = fget(in_fd), *out = fget(out_fd);
  int64_t r = -QK_EBADF;
  if (in && out && readable(in) && writable(out))
    r = do_splice(in, uoff_in, out, uoff_out, len > MAX_RW ? MAX_RW : len, flags);
  if (in)
    qk_fput(in);
  if (out)
    qk_fput(out);
  return r;
}

int64_t sys_tee(uint64_t in_fd, uint64_t out_fd, uint64_t len, uint64_t flags, uint64_t a4,
                uint64_t a5)
{
  if (flags & ~(uint64_t)SPLICE_F_ALL)
    return -QK_EINVAL;
  if (!len)
    return 0;
  struct qk_file *in = fget(in_fd), *out = fget(out_fd);
  int64_t r = -QK_EBADF;
  if (in && out && readable(in) && writable(out)) {
    r = -QK_EINVAL; /* not two pipes, or one pipe twice */
    if (qk_pipe_file(in) && qk_pipe_file(out) && in->priv != out->priv) {
      bool nonblock = (flags & SPLICE_F_NONBLOCK) || ((in->flags | out->flags) & L_O_NONBLOCK);
      r = qk_pipe_to_pipe(in, out, len > MAX_RW ? MAX_RW : len, nonblock, true);
    }
  }
  if (in)
    qk_fput(in);
  if (out)
    qk_fput(out);
  return r;
}

/* The user iovec of vmsplice (as readv/writev): *iov kmalloc'd (NULL when
 * cnt is 0), lengths clamped to MAX_RW together. 0 or -errno. */
static int64_t import_iov(uint64_t uiov, uint64_t cnt, struct l_iovec **iov, struct qk_uio *u)
{
  *iov = NULL;
  u->iov = NULL;
  u->cnt = 0;
  u->total = 0;
  if (cnt > QK_UIO_MAX)
    return -QK_EINVAL;
  if (!cnt)
    return 0;
  struct l_iovec *v = qk_kmalloc(cnt * sizeof(*v));
  if (!v)
    return -QK_ENOMEM;
  *iov = v;
  if (qk_copy_from_user(v, uiov, cnt * sizeof(*v)))
    return -QK_EFAULT;
  for (unsigned i = 0; i < cnt; i++) {
    if ((int64_t)v[i].len < 0)
      return -QK_EINVAL;
    if (v[i].len > MAX_RW - u->total)
      v[i].len = MAX_RW - u->total;
    u->total += v[i].len;
  }
  u->iov = v;
  u->cnt = (unsigned)cnt;
  return 0;
}

int64_t sys_vmsplice(uint64_t fd, uint64_t uiov, uint64_t cnt, uint64_t flags, uint64_t a4,
                     uint64_t a5)
{
  if (flags & ~(uint64_t)SPLICE_F_ALL)
    return -QK_EINVAL;
  struct qk_file *f = fget(fd);
  if (!f)
    return -QK_EBADF;
  struct l_iovec *iov;
  struct qk_uio u;
  int64_t r = -QK_EBADF; /* neither readable nor writable (O_PATH) */
  if (writable(f) || readable(f))
    r = import_iov(uiov, cnt, &iov, &u);
  else
    iov = NULL;
  if (!r && u.total)
    r = qk_pipe_file(f) ? qk_pipe_user_io(f, &u, (flags & SPLICE_F_NONBLOCK) != 0) : -QK_EBADF;
  qk_kfree(iov);
  qk_fput(f);
  return r;
}
