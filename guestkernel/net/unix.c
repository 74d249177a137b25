/* AF_UNIX sockets inside the guest: the ends, their names and file ops.
 *
 * A stream connection is two pipes (fs/pipe.c does the buffering, blocking
 * and poll/select wake-ups) with a channel per direction for ancillary
 * data (unix_io.c). Datagram and seqpacket sockets are message queues: a
 * datagram socket owns its receive queue from creation on, and senders
 * (connected or sendto) append to the queue of the end a name leads to; a
 * seqpacket connection is a pair of queues made at connect.
 *
 * Names: an abstract name (leading NUL) lives only in the guest-wide name
 * table. A path bind also creates the socket inode in the filesystem (the
 * rootfs through QK_OP_MKNODAT with S_IFSOCK, or the guest tmpfs), so
 * `stat` shows S_IFSOCK, a second bind sees EADDRINUSE, `unlink` removes
 * the name, and a connect finds the socket by the inode (dev, ino) its
 * path leads to, as on Linux. Autobind gives an abstract name of five hex
 * digits. Ancillary data and the collection of descriptor cycles:
 * unix_anc.c. */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/task.h>

#include "net_internal.h"
#include "unix_internal.h"

#define SNDBUF_DEFAULT 212992 /* net.core.wmem_default */
#define BUF_MAX 212992        /* net.core.wmem_max / rmem_max */

static uint64_t next_ino = 0x30000;
static struct unix_end *bound;
static uint32_t next_auto = 0;

static const struct qk_file_ops unix_ops;

struct ucred_l qk_unix_my_cred(void)
{
  struct qk_process *p = qk_current()->proc;
  return (struct ucred_l){p->pid, p->euid, p->egid};
}

bool qk_unix_is(struct qk_file *f)
{
  return f->ops == &unix_ops;
}

static struct qk_file *end_new(int type, uint32_t flags)
{
  struct unix_end *e = qk_kzalloc(sizeof(*e));
  struct qk_file *f = e ? qk_file_new(&unix_ops, L_O_RDWR | (flags & L_O_NONBLOCK), NULL) : NULL;
  if (!f) {
    qk_kfree(e);
    return NULL;
  }
  e->type = type;
  e->file = f;
  e->ino = next_ino++;
  e->state = U_UNBOUND;
  e->sndbuf = e->rcvbuf = SNDBUF_DEFAULT;
  e->next = qk_unix_all;
  if (qk_unix_all)
    qk_unix_all->prev = e;
  qk_unix_all = e;
  f->priv = e;
  return f;
}

static struct unix_mq *mq_new(struct unix_end *owner)
{
  struct unix_mq *q = qk_kzalloc(sizeof(*q));
  if (q) {
    q->refs = 1;
    q->owner = owner;
  }
  return q;
}

int qk_unix_pair(uint32_t flags, struct qk_file **a, struct qk_file **b)
{
  struct qk_file *r1 = NULL, *w1 = NULL, *r2 = NULL, *w2 = NULL;
  struct qk_file *fa = end_new(UN_STREAM, flags), *fb = end_new(UN_STREAM, flags);
  struct unix_chan *c1 = qk_kzalloc(sizeof(*c1)), *c2 = qk_kzalloc(sizeof(*c2));
  if (!fa || !fb || !c1 || !c2 || qk_pipe_create(0, &r1, &w1) || qk_pipe_create(0, &r2, &w2)) {
    if (r1) {
      qk_fput(r1);
      qk_fput(w1);
    }
    qk_kfree(c1);
    qk_kfree(c2);
    if (fa)
      qk_fput(fa);
    if (fb)
      qk_fput(fb);
    return -QK_ENOMEM;
  }
  c1->refs = c2->refs = 2;
  struct unix_end *ea = fa->priv, *eb = fb->priv;
  /* a writes pipe 1 (channel 1) and reads pipe 2; b the other way round. */
  ea->rx = r2;
  ea->tx = w1;
  ea->rxc = c2;
  ea->txc = c1;
  eb->rx = r1;
  eb->tx = w2;
  eb->rxc = c1;
  eb->txc = c2;
  ea->peercred = eb->peercred = qk_unix_my_cred();
  ea->state = eb->state = U_CONNECTED;
  *a = fa;
  *b = fb;
  return 0;
}

int qk_unix_pair_msg(int type, uint32_t flags, struct qk_file **a, struct qk_file **b)
{
  struct qk_file *fa = end_new(type, flags), *fb = end_new(type, flags);
  struct unix_mq *q1 = mq_new(fa ? fa->priv : NULL), *q2 = mq_new(fb ? fb->priv : NULL);
  if (!fa || !fb || !q1 || !q2) {
    qk_kfree(q1);
    qk_kfree(q2);
    if (fa)
      qk_fput(fa);
    if (fb)
      qk_fput(fb);
    return -QK_ENOMEM;
  }
  q1->refs = q2->refs = 2;
  struct unix_end *ea = fa->priv, *eb = fb->priv;
  /* a reads q1 and writes q2; b the other way round. */
  ea->rq = q1;
  ea->wq = q2;
  eb->rq = q2;
  eb->wq = q1;
  ea->peercred = eb->peercred = qk_unix_my_cred();
  ea->state = eb->state = U_CONNECTED;
  *a = fa;
  *b = fb;
  return 0;
}

int qk_unix_socket(int type, uint32_t flags, struct qk_file **out)
{
  if (type == 3 /* SOCK_RAW */)
    type = UN_DGRAM; /* as Linux does */
  if (type != UN_STREAM && type != UN_DGRAM && type != UN_SEQPACKET)
    return -94; /* ESOCKTNOSUPPORT */
  struct qk_file *f = end_new(type, flags);
  if (!f)
    return -QK_ENOMEM;
  struct unix_end *e = f->priv;
  if (type == UN_DGRAM && !(e->rq = mq_new(e))) {
    qk_fput(f);
    return -QK_ENOMEM;
  }
  *out = f;
  return 0;
}

/* ---- names ---- */

/* A parsed sockaddr_un: the reported name, and for a path the absolute
 * path it resolves to in the caller's cwd. */
struct uaddr {
  struct unix_name n;
  bool path;
  char abs[QK_PATH_MAX];
};

/* 0 or -errno; an empty name (only the family) is autobind (-QK_ENODATA
 * here, for bind to answer). */
static int parse_name(const uint8_t *addr, uint32_t len, struct uaddr *ua)
{
  uint16_t fam;
  if (len < 2 || len > 2 + NAME_MAX_UN)
    return -QK_EINVAL;
  memcpy(&fam, addr, 2);
  if (fam != 1 /* AF_UNIX */)
    return -QK_EINVAL;
  uint32_t n = len - 2;
  if (!n)
    return -QK_ENODATA;
  const uint8_t *p = addr + 2;
  ua->path = p[0] != 0;
  memset(&ua->n, 0, sizeof(ua->n));
  memcpy(ua->n.addr, addr, 2);
  if (!ua->path) {
    memcpy(ua->n.addr + 2, p, n);
    ua->n.len = len;
    return 0;
  }
  uint32_t k = 0;
  while (k < n && p[k])
    k++;
  memcpy(ua->n.addr + 2, p, k);
  ua->n.len = 2 + k + 1; /* Linux reports a path with its NUL */
  char rel[NAME_MAX_UN + 1];
  memcpy(rel, p, k);
  rel[k] = 0;
  int r = qk_path_join(ua->abs, QK_PATH_MAX, qk_current()->proc->fs->cwd, rel);
  if (r < 0)
    return r;
  qk_path_normalize(ua->abs);
  return 0;
}

/* Abstract names are per socket type, as on Linux. */
static struct unix_end *lookup_abstract(const struct unix_name *n, int type)
{
  for (struct unix_end *b = bound; b; b = b->next_bound)
    if (!b->path_bound && b->type == type && b->name.len == n->len &&
        !memcmp(b->name.addr, n->addr, n->len))
      return b;
  return NULL;
}

static struct unix_end *lookup_inode(uint64_t dev, uint64_t ino)
{
  for (struct unix_end *b = bound; b; b = b->next_bound)
    if (b->path_bound && b->fs_dev == dev && b->fs_ino == ino)
      return b;
  return NULL;
}

static void unbind(struct unix_end *e)
{
  for (struct unix_end **pp = &bound; *pp; pp = &(*pp)->next_bound) {
    if (*pp == e) {
      *pp = e->next_bound;
      break;
    }
  }
  e->next_bound = NULL;
}

static void bind_to(struct unix_end *e, const struct unix_name *n)
{
  e->name = *n;
  e->next_bound = bound;
  bound = e;
}

/* The socket a name leads to: ENOENT for a path that does not exist,
 * ECONNREFUSED for a path that is no bound socket or an abstract name
 * nobody holds (of this type), EPROTOTYPE for a path bound by a socket of
 * another type. */
static struct unix_end *find(const struct uaddr *ua, int type, int64_t *err)
{
  struct unix_end *t;
  if (ua->path) {
    struct l_stat st;
    int r = qk_vfs_stat(ua->abs, 0, qk_va_to_pa(&st));
    if (r < 0) {
      *err = r;
      return NULL;
    }
    t = (st.st_mode & L_S_IFMT) == 0140000 ? lookup_inode(st.st_dev, st.st_ino) : NULL;
  } else {
    t = lookup_abstract(&ua->n, type);
  }
  if (!t) {
    *err = -QK_ECONNREFUSED;
    return NULL;
  }
  if (t->type != type) {
    *err = -QK_EPROTOTYPE;
    return NULL;
  }
  return t;
}

struct unix_end *qk_unix_find(const uint8_t *addr, uint32_t alen, int type, int64_t *err)
{
  struct uaddr *ua = qk_kmalloc(sizeof(*ua));
  if (!ua) {
    *err = -QK_ENOMEM;
    return NULL;
  }
  int r = parse_name(addr, alen, ua);
  struct unix_end *t = NULL;
  if (r)
    *err = r == -QK_ENODATA ? -QK_EINVAL : r;
  else
    t = find(ua, type, err);
  qk_kfree(ua);
  return t;
}

int64_t qk_unix_autobind(struct unix_end *e)
{
  if (e->name.len)
    return 0;
  struct unix_name n = {.len = 2 + 1 + 5};
  n.addr[0] = 1; /* AF_UNIX, little-endian */
  for (uint32_t tries = 0; tries < 0x100000; tries++) {
    uint32_t v = next_auto++ & 0xfffff;
    for (int i = 0; i < 5; i++) {
      uint32_t d = (v >> (4 * (4 - i))) & 0xf;
      n.addr[3 + i] = (uint8_t)(d < 10 ? '0' + d : 'a' + d - 10);
    }
    if (!lookup_abstract(&n, e->type)) {
      bind_to(e, &n);
      return 0;
    }
  }
  return -QK_ENOSPC;
}

int64_t qk_unix_bind(struct qk_file *f, const uint8_t *addr, uint32_t len)
{
  struct unix_end *e = f->priv;
  struct uaddr *ua = qk_kmalloc(sizeof(*ua));
  if (!ua)
    return -QK_ENOMEM;
  int64_t r = parse_name(addr, len, ua);
  if (r == -QK_ENODATA) {    /* only the family: autobind */
    r = qk_unix_autobind(e); /* 0 when named already (Linux) */
    qk_kfree(ua);
    return r;
  }
  if (!r && e->name.len)
    r = -QK_EINVAL;
  if (!r && !ua->path && lookup_abstract(&ua->n, e->type))
    r = -QK_EADDRINUSE;
  if (!r && ua->path) {
    struct l_stat st;
    r = qk_vfs_mksock(ua->abs, 0777 & ~qk_current()->proc->fs->umask);
    if (r == -QK_EEXIST)
      r = -QK_EADDRINUSE;
    if (!r)
      r = qk_vfs_stat(ua->abs, 1, qk_va_to_pa(&st));
    if (!r) {
      /* An unlinked socket's inode number may come back: that name is gone. */
      struct unix_end *old = lookup_inode(st.st_dev, st.st_ino);
      if (old)
        unbind(old);
      e->path_bound = true;
      e->fs_dev = st.st_dev;
      e->fs_ino = st.st_ino;
    }
  }
  if (!r)
    bind_to(e, &ua->n);
  qk_kfree(ua);
  return r;
}

int64_t qk_unix_listen(struct qk_file *f, int backlog)
{
  struct unix_end *e = f->priv;
  if (e->type == UN_DGRAM)
    return -QK_EOPNOTSUPP;
  if (e->state == U_CONNECTED || !e->name.len)
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
  e->owncred = qk_unix_my_cred();
  return 0;
}

/* connect() of a datagram socket: sets (or with AF_UNSPEC clears) the
 * default destination; only its datagrams are then received. */
static int64_t dgram_connect(struct unix_end *e, const uint8_t *addr, uint32_t len)
{
  uint16_t fam = 0;
  if (len >= 2)
    memcpy(&fam, addr, 2);
  if (len >= 2 && fam == 0 /* AF_UNSPEC: disconnect */) {
    qk_unix_mq_put(e->wq);
    e->wq = NULL;
    e->peer.len = 0;
    e->state = U_UNBOUND;
    return 0;
  }
  int64_t r;
  struct unix_end *t = qk_unix_find(addr, len, UN_DGRAM, &r);
  if (!t)
    return r;
  if (t->wq && t->wq != e->rq && t != e)
    return -QK_EPERM; /* it receives only from its own peer */
  if (e->passcred_set && (r = qk_unix_autobind(e)))
    return r;
  qk_unix_mq_put(e->wq);
  e->wq = t->rq;
  e->wq->refs++;
  e->peer = t->name;
  e->peercred = (struct ucred_l){0, ~0u, ~0u}; /* Linux keeps none for datagrams */
  e->state = U_CONNECTED;
  return 0;
}

int64_t qk_unix_connect(struct qk_file *f, const uint8_t *addr, uint32_t len)
{
  struct unix_end *e = f->priv;
  if (e->type == UN_DGRAM)
    return dgram_connect(e, addr, len);
  if (e->state == U_CONNECTED)
    return -QK_EISCONN;
  if (e->state == U_LISTEN)
    return -QK_EINVAL;
  int64_t r;
  struct unix_end *l = qk_unix_find(addr, len, e->type, &r);
  if (!l)
    return r;
  if (l->state != U_LISTEN)
    return -QK_ECONNREFUSED;
  if (l->qlen >= l->qmax) {
    if (f->flags & L_O_NONBLOCK)
      return -QK_EAGAIN;
    return qk_block(&l->qlen, ~0ull); /* accept makes room */
  }
  if (e->passcred_set && (r = qk_unix_autobind(e)))
    return r;
  struct qk_file *mine, *theirs;
  r = e->type == UN_STREAM ? qk_unix_pair(0, &mine, &theirs)
                           : qk_unix_pair_msg(e->type, 0, &mine, &theirs);
  if (r)
    return r;
  /* This file takes over the new pair's first end. */
  struct unix_end *m = mine->priv, *t = theirs->priv;
  e->rx = m->rx;
  e->tx = m->tx;
  e->rxc = m->rxc;
  e->txc = m->txc;
  e->rq = m->rq;
  e->wq = m->wq;
  if (e->rq)
    e->rq->owner = e;
  m->rx = m->tx = NULL;
  m->rxc = m->txc = NULL;
  m->rq = m->wq = NULL;
  qk_fput(mine);
  e->state = U_CONNECTED;
  e->peercred = l->owncred;
  if (e->passcred_set && e->rxc)
    e->rxc->passcred = true;
  e->peer = l->name;
  t->peercred = qk_unix_my_cred();
  t->peer = e->name;
  if (l->passcred_set) { /* the accepted socket inherits it */
    t->passcred_set = true;
    if (t->rxc)
      t->rxc->passcred = true;
  }
  t->name = l->name;
  t->sndbuf = l->sndbuf;
  t->rcvbuf = l->rcvbuf;
  l->queue[l->qlen++] = theirs;
  qk_wake(l);
  qk_wake(&qk_poll_wq);
  return 0;
}

int64_t qk_unix_accept(struct qk_file *f, uint32_t flags, struct qk_file **out)
{
  struct unix_end *e = f->priv;
  if (e->type == UN_DGRAM)
    return -QK_EOPNOTSUPP;
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
  if (peer && e->state != U_CONNECTED)
    return 0; /* ENOTCONN */
  const struct unix_name *n = peer ? &e->peer : &e->name;
  if (!n->len) {
    uint16_t fam = 1;
    memcpy(buf, &fam, 2);
    return 2; /* unnamed: the family alone */
  }
  memcpy(buf, n->addr, n->len);
  return n->len;
}

/* ---- options ---- */

int64_t qk_unix_setsockopt(struct qk_file *f, uint64_t level, uint64_t name, const void *val,
                           uint64_t len)
{
  struct unix_end *e = f->priv;
  if (level != 1 /* SOL_SOCKET */)
    return -QK_ENOPROTOOPT;
  int32_t v = 0;
  if (name == 7 || name == 8 || name == 16) {
    if (len < 4)
      return -QK_EINVAL;
    memcpy(&v, val, 4);
  }
  if (name == 7 || name == 8) { /* SO_SNDBUF, SO_RCVBUF: doubled and clamped, as Linux */
    int64_t b = v < 0 ? 0 : v > BUF_MAX ? BUF_MAX : v;
    b *= 2;
    if (name == 7)
      e->sndbuf = b < 4608 ? 4608 : (int)b;
    else
      e->rcvbuf = b < 2304 ? 2304 : (int)b;
    return 0;
  }
  if (name == 16) { /* SO_PASSCRED */
    e->passcred_set = v != 0;
    if (e->rxc)
      e->rxc->passcred = v != 0;
    return 0;
  }
  return -QK_ENOPROTOOPT;
}

int64_t qk_unix_getsockopt(struct qk_file *f, uint64_t name, void *val, uint32_t *len)
{
  struct unix_end *e = f->priv;
  int32_t v;
  switch (name) {
  case 3: /* SO_TYPE */
    v = e->type;
    break;
  case 4: /* SO_ERROR */
    v = 0;
    break;
  case 7: /* SO_SNDBUF */
    v = e->sndbuf;
    break;
  case 8: /* SO_RCVBUF */
    v = e->rcvbuf;
    break;
  case 16: /* SO_PASSCRED */
    v = e->passcred_set;
    break;
  case 30: /* SO_ACCEPTCONN */
    v = e->state == U_LISTEN;
    break;
  case 38: /* SO_PROTOCOL */
    v = 0;
    break;
  case 39: /* SO_DOMAIN */
    v = 1;
    break;
  case 17: { /* SO_PEERCRED */
    struct ucred_l uc = e->state == U_CONNECTED ? e->peercred : (struct ucred_l){0, ~0u, ~0u};
    memcpy(val, &uc, sizeof(uc));
    *len = sizeof(uc);
    return 0;
  }
  default:
    return -QK_ENOPROTOOPT;
  }
  memcpy(val, &v, 4);
  *len = 4;
  return 0;
}

/* ---- file ops ---- */

static int64_t unix_rw(struct qk_file *f, const struct qk_uio *u, int64_t off, bool write)
{
  if (off >= 0)
    return -QK_ESPIPE;
  struct unix_end *e = f->priv;
  if (e->type == UN_STREAM)
    return qk_unix_stream_io(f, u, 0, write, NULL, NULL);
  if (write)
    return qk_unix_msg_send(f, u, 0, NULL, NULL, 0);
  struct unix_anc *a = NULL;
  uint32_t mflags = 0;
  int64_t r = qk_unix_msg_recv(f, u, 0, &a, &mflags, NULL, NULL);
  if (a)
    qk_unix_anc_free(a); /* read() asks for no control data: files closed */
  return r;
}

int64_t qk_unix_shutdown(struct qk_file *f, uint64_t how)
{
  struct unix_end *e = f->priv;
  if (how > 2)
    return -QK_EINVAL;
  if (e->type != UN_STREAM) {
    if (how != 1 && e->rq) { /* SHUT_RD: reads see the end; senders EPIPE */
      e->rq->shut_rd = true;
      qk_wake(e->rq);
    }
    if (how != 0) {
      e->shut_wr = true;
      if (e->wq && e->type == UN_SEQPACKET) {
        e->wq->shut_wr = true; /* the peer reads the end */
        qk_wake(e->wq);
      }
    }
    qk_wake(&qk_poll_wq);
    return 0;
  }
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
  if (cmd >= 0x8910 && cmd <= 0x8942) {
    /* SIOCGIF*: Linux answers interface queries on any socket (glibc's and
     * musl's if_nametoindex ask on an AF_UNIX datagram socket); the host
     * answers them (read-only ones only) on a short-lived UDP socket of
     * the pod's netns. */
    uint8_t ifr[40];
    if (qk_copy_from_user(ifr, arg, sizeof ifr))
      return -QK_EFAULT;
    int64_t h = qk_qcall(QK_OP_SOCKET, 2 /* AF_INET */, 2 /* SOCK_DGRAM */, 0, 0, 0, 0);
    if (h < 0)
      return h;
    int64_t r = qk_qcall(QK_OP_SOCK_IOCTL, (uint64_t)h, cmd, qk_va_to_pa(ifr), 0, 0, 0);
    qk_qcall(QK_OP_CLOSE, (uint64_t)h, 0, 0, 0, 0, 0);
    if (r < 0)
      return r;
    return qk_copy_to_user(arg, ifr, sizeof ifr) ? -QK_EFAULT : 0;
  }
  if (cmd == 0x541b && e->type != UN_STREAM) {
    /* FIONREAD: a datagram socket's next message, a seqpacket's bytes queued (Linux) */
    int32_t n = !e->rq                ? 0
                : e->type == UN_DGRAM ? (e->rq->head ? (int32_t)e->rq->head->len : 0)
                                      : (int32_t)e->rq->bytes;
    return qk_copy_to_user(arg, &n, 4) ? -QK_EFAULT : 0;
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
  if (e->type == UN_DGRAM) {
    int ev = 0;
    if (e->rq->head || e->rq->shut_rd)
      ev |= 0x001;
    /* Writable: unconnected always; connected, when the peer's queue has
     * room (and, unless the peer is connected back, fewer than
     * max_dgram_qlen + 1 datagrams), as Linux's unix_dgram_poll. */
    struct unix_end *t = e->wq ? e->wq->owner : NULL;
    if (!e->shut_wr &&
        (!e->wq || e->wq->closed ||
         (e->wq->charge < MQ_MAX && (!t || t->wq == e->rq || e->wq->count <= DGRAM_QLEN))))
      ev |= 0x004;
    if (e->rq->shut_rd && e->shut_wr)
      ev |= POLLHUP;
    return ev;
  }
  if (e->state == U_UNBOUND)
    return POLLHUP;
  if (e->type == UN_SEQPACKET) {
    int ev = 0;
    bool eof = e->rq->shut_wr || e->rq->shut_rd;
    if (e->rq->head || eof || e->rq->reset)
      ev |= 0x001;
    if (!e->shut_wr && !e->wq->closed && !e->wq->shut_rd && e->wq->charge < MQ_MAX)
      ev |= 0x004;
    if (e->rq->shut_wr && (e->shut_wr || e->wq->closed))
      ev |= POLLHUP;
    if (e->wq->closed)
      ev |= POLLHUP;
    return ev;
  }
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

/* Nobody will read e's queue any more: what waits there goes now (its
 * files closed), though a writer still holds the queue (Linux purges the
 * receive queue at release too). */
static void purge(struct unix_end *e)
{
  struct unix_anc *recs = NULL;
  if (e->rxc) {
    recs = e->rxc->head;
    e->rxc->head = e->rxc->tail = NULL;
  }
  struct unix_msg *msgs = NULL;
  if (e->rq) {
    msgs = e->rq->head;
    e->rq->head = e->rq->tail = NULL;
    e->rq->bytes = 0;
    e->rq->charge = 0;
    e->rq->count = 0;
  }
  while (recs) {
    struct unix_anc *a = recs;
    recs = a->next;
    qk_unix_anc_free(a);
  }
  while (msgs) {
    struct unix_msg *m = msgs;
    msgs = m->next;
    if (m->anc)
      qk_unix_anc_free(m->anc);
    qk_kfree(m);
  }
}

static void unix_release(struct qk_file *f)
{
  struct unix_end *e = f->priv;
  unbind(e);
  if (e->prev)
    e->prev->next = e->next;
  else
    qk_unix_all = e->next;
  if (e->next)
    e->next->prev = e->prev;
  e->file = NULL;
  for (int i = 0; i < e->qlen; i++) {
    ((struct unix_end *)e->queue[i]->priv)->embryo = true;
    qk_fput(e->queue[i]); /* connections never accepted: their peers see ECONNRESET, then EOF */
  }
  qk_kfree(e->queue);
  qk_wake(e);
  qk_wake(&e->qlen);
  if (e->rxc && e->txc && (e->rxc->wpos != e->rxc->rpos || e->embryo) && !e->gc_purged)
    e->txc->reset = true; /* closed with bytes unread: the peer reads ECONNRESET once */
  if (e->rq) {
    if (e->type == UN_SEQPACKET && e->wq && (e->rq->head || e->embryo) && !e->gc_purged)
      e->wq->reset = true;
    e->rq->closed = true;
    e->rq->owner = NULL;
    qk_wake(e->rq);
  }
  if (e->wq && e->type == UN_SEQPACKET) {
    e->wq->shut_wr = true; /* the peer reads what is left, then the end */
    qk_wake(e->wq);
  }
  if (e->rx) {
    qk_fput(e->rx);
    e->rx = NULL;
  }
  if (e->tx) {
    qk_fput(e->tx);
    e->tx = NULL;
  }
  qk_wake(&qk_poll_wq);
  purge(e);
  qk_unix_chan_put(e->rxc);
  qk_unix_chan_put(e->txc);
  qk_unix_mq_put(e->rq);
  qk_unix_mq_put(e->wq);
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
