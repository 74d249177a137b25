/* AF_UNIX stream sockets inside the guest: a connected end reads from one
 * pipe and writes to the other (fs/pipe.c does the buffering, blocking and
 * poll/select wake-ups). Names (filesystem paths and abstract names) live
 * in a guest-wide table, not in the rootfs: a path-named socket is found
 * by connect in every process of the pod but leaves no file behind.
 * Datagram and seqpacket types and SCM_RIGHTS are not served yet (README,
 * Guest sockets). */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/task.h>

#include "net_internal.h"

#define MSG_DONTWAIT 0x40
#define MSG_NOSIGNAL 0x4000
#define MSG_CMSG_CLOEXEC 0x40000000
#define POLLERR 0x008
#define POLLHUP 0x010

#define NAME_MAX_UN 108 /* sun_path */
enum { U_UNBOUND, U_LISTEN, U_CONNECTED };

struct unix_end {
  struct qk_file *rx, *tx; /* pipe ends; NULL once shut down */
  uint64_t ino;
  int state;
  uint8_t name[NAME_MAX_UN], peer[NAME_MAX_UN]; /* sun_path bytes (abstract: leading NUL) */
  uint32_t namelen, peerlen;                    /* 0: unnamed */
  struct unix_end *next_bound;                  /* the name table */
  struct qk_file **queue;                       /* listening: connections not accepted yet */
  int qlen, qmax;
};

static uint64_t next_ino = 0x30000;
static struct unix_end *bound;

static int64_t unix_io(struct qk_file *f, const struct qk_uio *u, uint64_t flags, bool send)
{
  struct unix_end *e = f->priv;
  if (e->state != U_CONNECTED)
    return -QK_ENOTCONN;
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
  if (e->state == U_LISTEN)
    return e->qlen ? 0x001 : 0;
  if (e->state == U_UNBOUND)
    return POLLHUP;
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
  for (struct unix_end **pp = &bound; *pp; pp = &(*pp)->next_bound) {
    if (*pp == e) {
      *pp = e->next_bound;
      break;
    }
  }
  for (int i = 0; i < e->qlen; i++)
    qk_fput(e->queue[i]); /* connections never accepted: their peers see EOF */
  qk_kfree(e->queue);
  qk_wake(e);
  qk_wake(&e->qlen);
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
  *ea = (struct unix_end){.rx = r2, .tx = w1, .ino = next_ino++, .state = U_CONNECTED};
  *eb = (struct unix_end){.rx = r1, .tx = w2, .ino = next_ino++, .state = U_CONNECTED};
  fa->priv = ea;
  fb->priv = eb;
  *a = fa;
  *b = fb;
  return 0;
}

int qk_unix_socket(uint32_t flags, struct qk_file **out)
{
  struct unix_end *e = qk_kzalloc(sizeof(*e));
  struct qk_file *f = e ? qk_file_new(&unix_ops, L_O_RDWR | (flags & L_O_NONBLOCK), NULL) : NULL;
  if (!f) {
    qk_kfree(e);
    return -QK_ENOMEM;
  }
  e->ino = next_ino++;
  e->state = U_UNBOUND;
  f->priv = e;
  *out = f;
  return 0;
}

/* The significant bytes of a sockaddr_un: a path up to its NUL, or an
 * abstract name (leading NUL) of the given length. 0 or -errno. */
static int parse_name(const uint8_t *addr, uint32_t len, uint8_t *name, uint32_t *namelen)
{
  uint16_t fam;
  if (len < 2)
    return -QK_EINVAL;
  memcpy(&fam, addr, 2);
  if (fam != 1 /* AF_UNIX */)
    return -QK_EINVAL;
  uint32_t n = len - 2;
  if (n > NAME_MAX_UN)
    n = NAME_MAX_UN;
  if (!n)
    return -QK_EINVAL; /* autobind: not served */
  const uint8_t *p = addr + 2;
  if (p[0]) {
    uint32_t k = 0;
    while (k < n && p[k])
      k++;
    n = k;
  }
  memcpy(name, p, n);
  *namelen = n;
  return 0;
}

static struct unix_end *lookup(const uint8_t *name, uint32_t n)
{
  for (struct unix_end *b = bound; b; b = b->next_bound)
    if (b->namelen == n && !memcmp(b->name, name, n))
      return b;
  return NULL;
}

int64_t qk_unix_bind(struct qk_file *f, const uint8_t *addr, uint32_t len)
{
  struct unix_end *e = f->priv;
  uint8_t name[NAME_MAX_UN];
  uint32_t n;
  int r = parse_name(addr, len, name, &n);
  if (r)
    return r;
  if (e->namelen || e->state != U_UNBOUND)
    return -QK_EINVAL;
  if (lookup(name, n))
    return -QK_EADDRINUSE;
  memcpy(e->name, name, n);
  e->namelen = n;
  e->next_bound = bound;
  bound = e;
  return 0;
}

int64_t qk_unix_listen(struct qk_file *f, int backlog)
{
  struct unix_end *e = f->priv;
  if (e->state == U_CONNECTED || !e->namelen)
    return -QK_EINVAL;
  if (backlog <= 0)
    backlog = 1;
  if (backlog > 4096)
    backlog = 4096;
  if (e->state == U_LISTEN && backlog <= e->qmax)
    return 0;
  struct qk_file **q = qk_kmalloc((size_t)backlog * sizeof(*q));
  if (!q)
    return -QK_ENOMEM;
  for (int i = 0; i < e->qlen; i++)
    q[i] = e->queue[i];
  qk_kfree(e->queue);
  e->queue = q;
  e->qmax = backlog;
  e->state = U_LISTEN;
  return 0;
}

int64_t qk_unix_connect(struct qk_file *f, const uint8_t *addr, uint32_t len)
{
  struct unix_end *e = f->priv;
  uint8_t name[NAME_MAX_UN];
  uint32_t n;
  int r = parse_name(addr, len, name, &n);
  if (r)
    return r;
  if (e->state == U_CONNECTED)
    return -QK_EISCONN;
  if (e->state == U_LISTEN)
    return -QK_EINVAL;
  struct unix_end *l = lookup(name, n);
  if (!l)
    return name[0] ? -QK_ENOENT : -QK_ECONNREFUSED;
  if (l->state != U_LISTEN)
    return -QK_ECONNREFUSED;
  if (l->qlen >= l->qmax) {
    if (f->flags & L_O_NONBLOCK)
      return -QK_EAGAIN;
    return qk_block(&l->qlen, ~0ull); /* accept makes room */
  }
  struct qk_file *mine, *theirs;
  if ((r = qk_unix_pair(0, &mine, &theirs)))
    return r;
  /* This file takes over the new pair's first end. */
  struct unix_end *m = mine->priv;
  e->rx = m->rx;
  e->tx = m->tx;
  m->rx = m->tx = NULL;
  qk_fput(mine);
  e->state = U_CONNECTED;
  memcpy(e->peer, l->name, l->namelen);
  e->peerlen = l->namelen;
  struct unix_end *t = theirs->priv;
  memcpy(t->name, l->name, l->namelen);
  t->namelen = l->namelen;
  l->queue[l->qlen++] = theirs;
  qk_wake(l);
  qk_wake(&qk_poll_wq);
  return 0;
}

int64_t qk_unix_accept(struct qk_file *f, uint32_t flags, struct qk_file **out)
{
  struct unix_end *e = f->priv;
  if (e->state != U_LISTEN)
    return -QK_EINVAL;
  if (!e->qlen) {
    if (f->flags & L_O_NONBLOCK)
      return -QK_EAGAIN;
    return qk_block(e, ~0ull);
  }
  struct qk_file *c = e->queue[0];
  for (int i = 1; i < e->qlen; i++)
    e->queue[i - 1] = e->queue[i];
  e->qlen--;
  qk_wake(&e->qlen);
  c->flags = (c->flags & ~(uint32_t)L_O_NONBLOCK) | (flags & L_O_NONBLOCK);
  *out = c;
  return 0;
}

uint32_t qk_unix_name(struct qk_file *f, bool peer, uint8_t *buf)
{
  struct unix_end *e = f->priv;
  uint16_t fam = 1;
  memcpy(buf, &fam, 2);
  uint32_t n = peer ? e->peerlen : e->namelen;
  memcpy(buf + 2, peer ? e->peer : e->name, n);
  /* Path names are reported with their NUL, as Linux does. */
  if (n && buf[2] && n < NAME_MAX_UN) {
    buf[2 + n] = 0;
    return 2 + n + 1;
  }
  return 2 + n;
}
