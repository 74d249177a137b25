/* AF_UNIX stream socket pairs inside the guest: each end reads from one
 * pipe and writes to the other (fs/pipe.c does the buffering, blocking and
 * poll/select wake-ups). Named sockets (bind/connect on paths or abstract
 * names), datagram and seqpacket types and SCM_RIGHTS are not served yet
 * (README, Guest sockets). */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>

#include "net_internal.h"

#define MSG_DONTWAIT 0x40
#define MSG_NOSIGNAL 0x4000
#define MSG_CMSG_CLOEXEC 0x40000000
#define POLLERR 0x008
#define POLLHUP 0x010

struct unix_end {
  struct qk_file *rx, *tx; /* pipe ends; NULL once shut down */
  uint64_t ino;
};

static uint64_t next_ino = 0x30000;

static int64_t unix_io(struct qk_file *f, const struct qk_uio *u, uint64_t flags, bool send)
{
  struct unix_end *e = f->priv;
  struct qk_file *p = send ? e->tx : e->rx;
  if (!p)
    return send ? -QK_EPIPE : 0; /* shut down: no more writes, reads see EOF */
  if (send && (flags & MSG_NOSIGNAL) && (p->ops->poll(p) & POLLERR))
    return -QK_EPIPE; /* the pipe would raise SIGPIPE itself */
  /* The pipe end carries this end's O_NONBLOCK (and MSG_DONTWAIT) for the
   * one call. */
  uint32_t saved = p->flags;
  if ((f->flags & L_O_NONBLOCK) || (flags & MSG_DONTWAIT))
    p->flags |= L_O_NONBLOCK;
  else
    p->flags &= ~(uint32_t)L_O_NONBLOCK;
  int64_t r = p->ops->rw(p, u, -1, send);
  p->flags = saved;
  return r;
}

int64_t qk_unix_xfer(struct qk_file *f, const struct qk_uio *u, uint64_t flags, bool send)
{
  if (flags & ~(uint64_t)(MSG_DONTWAIT | MSG_NOSIGNAL | (send ? 0 : MSG_CMSG_CLOEXEC)))
    return -QK_EOPNOTSUPP;
  return unix_io(f, u, flags, send);
}

static int64_t unix_rw(struct qk_file *f, const struct qk_uio *u, int64_t off, bool write)
{
  if (off >= 0)
    return -QK_ESPIPE;
  return unix_io(f, u, 0, write);
}

int64_t qk_unix_shutdown(struct qk_file *f, uint64_t how)
{
  struct unix_end *e = f->priv;
  if (how > 2)
    return -QK_EINVAL;
  if (how != 1 && e->rx) { /* SHUT_RD or SHUT_RDWR */
    qk_fput(e->rx);
    e->rx = NULL;
  }
  if (how != 0 && e->tx) { /* SHUT_WR or SHUT_RDWR: the peer reads EOF */
    qk_fput(e->tx);
    e->tx = NULL;
  }
  return 0;
}

static int64_t unix_lseek(struct qk_file *f, int64_t off, int whence)
{
  return -QK_ESPIPE;
}

static int unix_fstat(struct qk_file *f, uint64_t gpa)
{
  struct unix_end *e = f->priv;
  struct l_stat *st = qk_pa_to_va(gpa);
  memset(st, 0, sizeof(*st));
  st->st_dev = 8;
  st->st_ino = e->ino;
  st->st_nlink = 1;
  st->st_mode = 0140000 | 0777; /* S_IFSOCK */
  st->st_blksize = 4096;
  return 0;
}

static int64_t unix_getdents(struct qk_file *f, uint64_t uva, uint64_t len)
{
  return -QK_ENOTDIR;
}

static int64_t unix_ioctl(struct qk_file *f, uint64_t cmd, uint64_t arg)
{
  struct unix_end *e = f->priv;
  if (cmd == 0x5421) { /* FIONBIO */
    int32_t on;
    if (qk_copy_from_user(&on, arg, 4))
      return -QK_EFAULT;
    f->flags = on ? f->flags | L_O_NONBLOCK : f->flags & ~(uint32_t)L_O_NONBLOCK;
    return 0;
  }
  if (cmd == 0x541b) { /* FIONREAD */
    if (!e->rx) {
      int32_t zero = 0;
      return qk_copy_to_user(arg, &zero, 4) ? -QK_EFAULT : 0;
    }
    return e->rx->ops->ioctl(e->rx, cmd, arg);
  }
  return -QK_ENOTTY;
}

static int unix_poll(struct qk_file *f)
{
  struct unix_end *e = f->priv;
  int ev = 0;
  if (e->rx)
    ev |= e->rx->ops->poll(e->rx);
  else
    ev |= 0x001; /* shut down for reading: reads return 0 at once */
  if (e->tx) {
    int w = e->tx->ops->poll(e->tx);
    /* A peer that is gone is a hang-up on a socket, not just an error. */
    ev |= w & POLLERR ? POLLHUP | POLLERR : w;
  }
  return ev;
}

static int unix_mmap_hfd(struct qk_file *f)
{
  return -QK_ENODEV;
}

static void unix_release(struct qk_file *f)
{
  struct unix_end *e = f->priv;
  qk_unix_shutdown(f, 2);
  qk_kfree(e);
}

static const struct qk_file_ops unix_ops = {
    .rw = unix_rw,
    .lseek = unix_lseek,
    .fstat = unix_fstat,
    .getdents = unix_getdents,
    .ioctl = unix_ioctl,
    .poll = unix_poll,
    .mmap_hfd = unix_mmap_hfd,
    .release = unix_release,
};

bool qk_unix_is(struct qk_file *f)
{
  return f->ops == &unix_ops;
}

int qk_unix_pair(uint32_t flags, struct qk_file **a, struct qk_file **b)
{
  struct qk_file *r1, *w1, *r2, *w2;
  if (qk_pipe_create(0, &r1, &w1))
    return -QK_ENOMEM;
  if (qk_pipe_create(0, &r2, &w2)) {
    qk_fput(r1);
    qk_fput(w1);
    return -QK_ENOMEM;
  }
  struct unix_end *ea = qk_kzalloc(sizeof(*ea)), *eb = qk_kzalloc(sizeof(*eb));
  struct qk_file *fa = qk_file_new(&unix_ops, L_O_RDWR | (flags & L_O_NONBLOCK), NULL);
  struct qk_file *fb = qk_file_new(&unix_ops, L_O_RDWR | (flags & L_O_NONBLOCK), NULL);
  if (!ea || !eb || !fa || !fb) {
    qk_kfree(ea);
    qk_kfree(eb);
    qk_kfree(fa);
    qk_kfree(fb);
    qk_fput(r1);
    qk_fput(w1);
    qk_fput(r2);
    qk_fput(w2);
    return -QK_ENOMEM;
  }
  /* a writes pipe 1 and reads pipe 2; b the other way round. */
  *ea = (struct unix_end){r2, w1, next_ino++};
  *eb = (struct unix_end){r1, w2, next_ino++};
  fa->priv = ea;
  fb->priv = eb;
  *a = fa;
  *b = fb;
  return 0;
}
