/* TSoR sockets in the guest (see tsor.h for the routing rules).
 *
 * A TSoR socket is a qk_file whose priv is a struct qk_tsor naming a socket
 * of the sandbox's TSoR client (tsd). Every call is one QCall to the
 * sandbox (QK_OP_TSOR_*: a shared-memory ring its worker polls, no VM
 * exit): data moves as guest-physical segment lists that the host copies
 * into or out of the socket's ring in tsord's shared memory. The host never
 * waits except in QK_OP_TSOR_POLL, which the idle loop uses. */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/net.h>
#include <qk/qcall.h>
#include <qk/syscall.h>
#include <qk/task.h>

#include "net_internal.h"
#include "tsor.h"

#define AF_INET 2
#define SOCK_STREAM 1
#define POLLIN 0x001
#define POLLOUT 0x004
#define POLLERR 0x008
#define POLLHUP 0x010
#define MSG_OOB 0x1
#define MSG_PEEK 0x2
#define MSG_DONTWAIT 0x40
#define MSG_EOR 0x80
#define MSG_WAITALL 0x100
#define MSG_CONFIRM 0x800
#define MSG_NOSIGNAL 0x4000
#define MSG_MORE 0x8000
#define MSG_CMSG_CLOEXEC 0x40000000
#define SOL_SOCKET 1
#define SOL_TCP 6
#define SO_TYPE 3
#define SO_ERROR 4
#define SO_SNDBUF 7
#define SO_RCVBUF 8
#define SO_RCVTIMEO 20
#define SO_SNDTIMEO 21
#define SO_DOMAIN 39
#define FIONREAD 0x541b
#define FIONBIO 0x5421

struct qk_tsor {
  struct qk_tsor *next, *prev; /* every entry: the idle loop's TSoR set */
  uint32_t tsd;
  int16_t want; /* POLL* events a parked task or a poll/select waits for */
  bool connecting, connected;
  int soerr;             /* SO_ERROR of a finished non-blocking connect */
  const void *host_sock; /* dual listener: the host socket it is part of */
  uint32_t raddr;        /* network order */
  uint16_t rport, lport; /* host order */
  uint64_t rcvtimeo, sndtimeo;
  struct qk_task *tx_owner, *rx_owner; /* parked mid-transfer with *_partial bytes done */
  uint64_t tx_partial, rx_partial;
  uint64_t ino;
};

static int state; /* 0: not asked yet, 1: this pod has TSoR, -1: it has not */
static struct qk_tsor_info info;
static struct qk_tsor *all;
static unsigned nwant; /* entries with want != 0 (approximate: recounted in the idle poll) */
static uint64_t next_ino = 0x7000000;
static struct qk_net_pollfd tset[QK_NET_POLL_MAX];
static struct qk_tsor *tents[QK_NET_POLL_MAX];

static bool on(void)
{
  if (!state)
    state = qk_qcall(QK_OP_TSOR_INFO, qk_va_to_pa(&info), 0, 0, 0, 0, 0) == 0 ? 1 : -1;
  return state > 0;
}

static struct qk_tsor *entry_new(void)
{
  struct qk_tsor *t = qk_kzalloc(sizeof(*t));
  if (!t)
    return NULL;
  t->ino = next_ino++;
  t->next = all;
  if (all)
    all->prev = t;
  all = t;
  return t;
}

static void entry_free(struct qk_tsor *t)
{
  if (t->prev)
    t->prev->next = t->next;
  else
    all = t->next;
  if (t->next)
    t->next->prev = t->prev;
  qk_wake(t);
  qk_kfree(t);
}

static const void *wchan(struct qk_tsor *t)
{
  return t->host_sock ? t->host_sock : t;
}

static void want(struct qk_tsor *t, int16_t ev)
{
  if (!t->want)
    nwant++;
  t->want |= ev;
}

/* Parks the current task until t has one of ev (restart model). */
static int64_t tsor_wait(struct qk_tsor *t, int16_t ev)
{
  uint64_t timeo = ev == POLLIN ? t->rcvtimeo : t->sndtimeo;
  if (qk_wait_expired())
    return -QK_EAGAIN;
  want(t, ev);
  return qk_block(t, qk_wait_deadline(timeo ? timeo : ~0ull));
}

/* QK_NET_WAIT_NS for a blocking call when no other task could use the
 * vCPU meanwhile: the host then waits a little for the socket instead of
 * answering -EAGAIN (saves a park, an idle poll and a retry). */
static uint64_t host_wait(bool nb)
{
  return nb || qk_net_others_runnable() ? 0 : QK_NET_WAIT_NS;
}

static int16_t events_now(struct qk_tsor *t, int16_t ev)
{
  struct qk_net_pollfd p = {t->tsd, ev, 0};
  int64_t r = qk_qcall(QK_OP_TSOR_POLL, qk_va_to_pa(&p), 1, 0, 0, 0, 0);
  return r < 0 ? POLLERR : p.revents;
}

/* Settles a connect in progress: 0 connected, -EINPROGRESS, or -errno. */
static int64_t conn_update(struct qk_tsor *t)
{
  if (!t->connecting)
    return t->connected ? 0 : -QK_ENOTCONN;
  int64_t st = qk_qcall(QK_OP_TSOR_CTL, QK_TSOR_CTL_STATUS, t->tsd, 0, 0, 0, 0);
  if (st == -QK_EINPROGRESS)
    return st;
  t->connecting = false;
  t->connected = st == 0;
  t->soerr = st < 0 ? (int)-st : 0;
  return st;
}

/* ---- the file type ---- */

static int64_t tsor_rw(struct qk_file *f, const struct qk_uio *u, int64_t off, bool write)
{
  if (off >= 0)
    return -QK_ESPIPE;
  return qk_tsor_xfer(f, u, 0, write);
}

static int64_t tsor_lseek(struct qk_file *f, int64_t off, int whence)
{
  return -QK_ESPIPE;
}

static int tsor_fstat(struct qk_file *f, uint64_t gpa)
{
  struct qk_tsor *t = f->priv;
  struct l_stat *st = qk_pa_to_va(gpa);
  memset(st, 0, sizeof(*st));
  st->st_ino = t->ino;
  st->st_nlink = 1;
  st->st_mode = 0140000 | 0777; /* S_IFSOCK */
  st->st_blksize = 4096;
  return 0;
}

static int64_t tsor_getdents(struct qk_file *f, uint64_t uva, uint64_t len)
{
  return -QK_ENOTDIR;
}

static int64_t tsor_ioctl(struct qk_file *f, uint64_t cmd, uint64_t arg)
{
  struct qk_tsor *t = f->priv;
  int32_t v;
  switch (cmd) {
  case FIONBIO:
    if (qk_copy_from_user(&v, arg, 4))
      return -QK_EFAULT;
    if (v)
      f->flags |= L_O_NONBLOCK;
    else
      f->flags &= ~(uint32_t)L_O_NONBLOCK;
    return 0;
  case FIONREAD: {
    int64_t r = qk_qcall(QK_OP_TSOR_CTL, QK_TSOR_CTL_NREAD, t->tsd, 0, 0, 0, 0);
    if (r < 0)
      return r;
    v = (int32_t)r;
    return qk_copy_to_user(arg, &v, 4) ? -QK_EFAULT : 0;
  }
  }
  return -QK_ENOTTY;
}

static int tsor_poll(struct qk_file *f)
{
  struct qk_tsor *t = f->priv;
  int16_t ev = events_now(t, POLLIN | POLLOUT);
  /* A poll/select that finds nothing it wants parks on qk_poll_wq: the
   * idle loop watches what is not there yet. */
  int16_t miss = (int16_t)((POLLIN | POLLOUT) & ~ev);
  if (miss)
    want(t, miss);
  return ev;
}

static int tsor_mmap_hfd(struct qk_file *f)
{
  return -QK_ENODEV;
}

static void tsor_release(struct qk_file *f)
{
  struct qk_tsor *t = f->priv;
  qk_qcall(QK_OP_TSOR_CTL, QK_TSOR_CTL_CLOSE, t->tsd, 0, 0, 0, 0);
  entry_free(t);
}

static const struct qk_file_ops tsor_ops = {
    .rw = tsor_rw,
    .lseek = tsor_lseek,
    .fstat = tsor_fstat,
    .getdents = tsor_getdents,
    .ioctl = tsor_ioctl,
    .poll = tsor_poll,
    .mmap_hfd = tsor_mmap_hfd,
    .release = tsor_release,
};

bool qk_tsor_is(struct qk_file *f)
{
  return f->ops == &tsor_ops;
}

/* ---- routing and connections ---- */

struct l_sockaddr_in {
  uint16_t family;
  uint16_t port; /* network order */
  uint32_t addr; /* network order */
  uint8_t zero[8];
};

static inline uint16_t swap16(uint16_t v)
{
  return (uint16_t)((v >> 8) | (v << 8));
}
static inline uint32_t swap32(uint32_t v)
{
  return __builtin_bswap32(v);
}

bool qk_tsor_routes(const uint8_t *addr, uint32_t len)
{
  if (len < sizeof(struct l_sockaddr_in) || !on())
    return false;
  struct l_sockaddr_in sa;
  memcpy(&sa, addr, sizeof(sa));
  if (sa.family != AF_INET)
    return false;
  uint32_t a = swap32(sa.addr);
  for (uint32_t i = 0; i < info.ncidrs && i < QK_TSOR_MAX_CIDRS; i++) {
    uint32_t l = info.cidr_len[i];
    uint32_t mask = l == 0 ? 0 : l >= 32 ? ~0u : ~0u << (32 - l);
    if ((a & mask) == (swap32(info.cidr[i]) & mask))
      return true;
  }
  return false;
}

int64_t qk_tsor_convert(struct qk_file *f)
{
  struct qk_tsor *t = entry_new();
  if (!t)
    return -QK_ENOMEM;
  int64_t sd = qk_qcall(QK_OP_TSOR_CTL, QK_TSOR_CTL_SOCKET, 0, 0, 0, 0, 0);
  if (sd < 0) {
    entry_free(t);
    return sd;
  }
  t->tsd = (uint32_t)sd;
  f->ops->release(f); /* the host socket goes */
  f->ops = &tsor_ops;
  f->priv = t;
  f->hfd = -1;
  return 0;
}

int64_t qk_tsor_connect(struct qk_file *f, uint64_t uaddr, uint64_t len)
{
  struct qk_tsor *t = f->priv;
  if (t->connecting && qk_restarting()) {
    /* A blocking connect woken by the idle loop: finished or still on? */
    int64_t st = conn_update(t);
    if (st == -QK_EINPROGRESS) {
      st = tsor_wait(t, POLLOUT);
      if (st == -QK_EAGAIN)
        st = -QK_EINPROGRESS; /* SO_SNDTIMEO ran out */
    }
    return st;
  }
  if (t->connecting)
    return conn_update(t) == -QK_EINPROGRESS ? -QK_EALREADY : -QK_EISCONN;
  if (t->connected || t->host_sock)
    return -QK_EISCONN;
  struct l_sockaddr_in sa;
  if (len < sizeof(sa) || len > 128)
    return -QK_EINVAL;
  if (qk_copy_from_user(&sa, uaddr, sizeof(sa)))
    return -QK_EFAULT;
  if (sa.family != AF_INET)
    return -QK_EAFNOSUPPORT;
  int64_t r = qk_qcall(QK_OP_TSOR_CONNECT, t->tsd, sa.addr, swap16(sa.port), 0, 0, 0);
  if (r != -QK_EINPROGRESS)
    return r;
  t->connecting = true;
  t->raddr = sa.addr;
  t->rport = swap16(sa.port);
  if (f->flags & L_O_NONBLOCK)
    return -QK_EINPROGRESS;
  r = tsor_wait(t, POLLOUT);
  return r == -QK_EAGAIN ? -QK_EINPROGRESS : r;
}

/* ---- data ---- */

/* One QCall's worth of u as guest-physical segments; bytes or -EFAULT. */
static int64_t seg_list(struct qk_uiov *v, const struct qk_uio *u, bool to_user)
{
  v->n = 0;
  v->bytes = 0;
  for (unsigned i = 0; i < u->cnt; i++) {
    if (!u->iov[i].len)
      continue;
    int64_t got = qk_uiov_add(v, u->iov[i].base, u->iov[i].len, to_user);
    if (got < 0)
      return v->n ? (int64_t)v->bytes : got;
    if ((uint64_t)got < u->iov[i].len)
      break;
  }
  return (int64_t)v->bytes;
}

int64_t qk_tsor_xfer(struct qk_file *f, const struct qk_uio *u, uint64_t flags, bool send)
{
  struct qk_tsor *t = f->priv;
  uint64_t ok = MSG_DONTWAIT | MSG_NOSIGNAL | MSG_CMSG_CLOEXEC |
                (send ? MSG_EOR | MSG_MORE | MSG_CONFIRM : MSG_WAITALL);
  if (flags & ~ok)
    return -QK_EOPNOTSUPP; /* MSG_PEEK and MSG_OOB are not served on TSoR */
  bool nb = (f->flags & L_O_NONBLOCK) || (flags & MSG_DONTWAIT);
  int64_t st = conn_update(t);
  if (st == -QK_EINPROGRESS)
    return nb ? -QK_EAGAIN : tsor_wait(t, send ? POLLOUT : POLLIN);
  if (st < 0 && !t->connected)
    return t->soerr ? -(int64_t)t->soerr : -QK_ENOTCONN;
  /* A send moves everything unless non-blocking; a receive returns what is
   * there, or gathers all with MSG_WAITALL. A task parked mid-way keeps its
   * progress in the socket and its restart goes on after it. */
  bool all = send || (flags & MSG_WAITALL);
  struct qk_task **owner = send ? &t->tx_owner : &t->rx_owner;
  uint64_t *partial = send ? &t->tx_partial : &t->rx_partial;
  uint64_t skip = 0;
  if (*owner == qk_current() && qk_restarting())
    skip = *partial;
  if (*owner == qk_current())
    *owner = NULL;
  if (skip >= u->total)
    skip = 0;
  struct l_iovec one, *vec = &one;
  if (u->cnt > 1) {
    vec = qk_kmalloc(u->cnt * sizeof(*vec));
    if (!vec)
      return -QK_ENOMEM;
    memcpy(vec, u->iov, u->cnt * sizeof(*vec));
  } else if (u->cnt) {
    one = u->iov[0];
  }
  struct qk_uio rest = {vec, u->cnt, u->total};
  struct l_iovec *cur = vec;
  int64_t done = (int64_t)skip, r;
  if (skip)
    qk_net_uio_advance(&rest, &cur, skip);
  for (;;) {
    struct qk_uiov v;
    r = seg_list(&v, &rest, !send);
    if (r < 0 || (r == 0 && rest.total)) {
      r = done ? done : -QK_EFAULT;
      break;
    }
    if (r == 0) {
      r = done; /* an empty request */
      break;
    }
    r = qk_qcall(send ? QK_OP_TSOR_SEND : QK_OP_TSOR_RECV, t->tsd, qk_va_to_pa(v.seg), v.n,
                 host_wait(nb || (!all && done)), 0, 0);
    if (r == -QK_EAGAIN) {
      if (nb || (!all && done)) {
        r = done ? done : r;
        break;
      }
      r = tsor_wait(t, send ? POLLOUT : POLLIN);
      if (r == -QK_ERESTART_WAIT && done) {
        *partial = (uint64_t)done;
        *owner = qk_current();
      } else if (done) {
        r = done; /* a signal or a timeout: what moved so far */
      }
      break;
    }
    if (r < 0) {
      if (r == -QK_EPIPE && send && !(flags & MSG_NOSIGNAL) && !done)
        qk_net_raise_sigpipe();
      r = done ? done : r;
      break;
    }
    if (r == 0 && !send) {
      r = done; /* end of stream */
      break;
    }
    done += r;
    if (done == (int64_t)u->total || !all) {
      r = done;
      break;
    }
    qk_net_uio_advance(&rest, &cur, (uint64_t)r);
  }
  if (vec != &one)
    qk_kfree(vec);
  return r;
}

int64_t qk_tsor_shutdown(struct qk_file *f, uint64_t how)
{
  struct qk_tsor *t = f->priv;
  if (how > 2)
    return -QK_EINVAL;
  conn_update(t);
  if (!t->connected)
    return -QK_ENOTCONN;
  int64_t r = 0;
  if (how != 0) /* SHUT_WR, SHUT_RDWR: FIN after the queued bytes */
    r = qk_qcall(QK_OP_TSOR_CTL, QK_TSOR_CTL_SHUTDOWN, t->tsd, 0, 0, 0, 0);
  qk_wake(t);
  return r;
}

/* ---- names and options ---- */

uint32_t qk_tsor_name(struct qk_file *f, bool peer, uint8_t *buf)
{
  struct qk_tsor *t = f->priv;
  struct l_sockaddr_in sa = {.family = AF_INET};
  if (peer) {
    sa.addr = t->raddr;
    sa.port = swap16(t->rport);
  } else {
    sa.addr = info.pod_ip;
    sa.port = swap16(t->lport);
  }
  memcpy(buf, &sa, sizeof(sa));
  return sizeof(sa);
}

int64_t qk_tsor_setsockopt(struct qk_file *f, uint64_t level, uint64_t name, uint64_t uval,
                           uint64_t len)
{
  struct qk_tsor *t = f->priv;
  if ((int32_t)len < 0)
    return -QK_EINVAL;
  if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
    int64_t tv[2];
    if (len < sizeof(tv))
      return -QK_EINVAL;
    if (qk_copy_from_user(tv, uval, sizeof(tv)))
      return -QK_EFAULT;
    if (tv[1] < 0 || tv[1] >= 1000000)
      return -QK_EDOM;
    uint64_t ns = tv[0] < 0 || tv[0] > 100ll * 365 * 86400
                      ? 0
                      : (uint64_t)tv[0] * 1000000000ull + (uint64_t)tv[1] * 1000ull;
    if (name == SO_RCVTIMEO)
      t->rcvtimeo = ns;
    else
      t->sndtimeo = ns;
    return 0;
  }
  /* Options that shape a kernel TCP connection (TCP_NODELAY, keep-alive,
   * buffer sizes, SO_REUSEADDR...) have nothing to act on in a channel:
   * accepted, as a kernel accepts options it clamps or ignores. */
  if (level == SOL_SOCKET || level == SOL_TCP)
    return 0;
  return -QK_ENOPROTOOPT;
}

int64_t qk_tsor_getsockopt(struct qk_file *f, uint64_t level, uint64_t name, uint64_t uval,
                           uint64_t ulen)
{
  struct qk_tsor *t = f->priv;
  int64_t v[2] = {0, 0};
  uint32_t size = 4;
  if (level == SOL_SOCKET) {
    switch (name) {
    case SO_TYPE:
      v[0] = SOCK_STREAM;
      break;
    case SO_DOMAIN:
      v[0] = AF_INET;
      break;
    case SO_ERROR:
      conn_update(t);
      v[0] = t->soerr;
      t->soerr = 0;
      break;
    case SO_SNDBUF:
    case SO_RCVBUF:
      v[0] = info.ring_size;
      break;
    case SO_RCVTIMEO:
    case SO_SNDTIMEO: {
      uint64_t ns = name == SO_RCVTIMEO ? t->rcvtimeo : t->sndtimeo;
      v[0] = (int64_t)(ns / 1000000000ull);
      v[1] = (int64_t)(ns % 1000000000ull / 1000ull);
      size = 16;
      break;
    }
    default:
      return -QK_ENOPROTOOPT;
    }
  } else if (level == SOL_TCP && name == 1 /* TCP_NODELAY: channels never delay */) {
    v[0] = 1;
  } else {
    return -QK_ENOPROTOOPT;
  }
  int32_t n;
  if (qk_copy_from_user(&n, ulen, 4))
    return -QK_EFAULT;
  if (n < 0)
    return -QK_EINVAL;
  uint32_t len = (uint32_t)n < size ? (uint32_t)n : size;
  int32_t v32 = (int32_t)v[0];
  const void *src = size == 4 ? (const void *)&v32 : (const void *)v;
  if ((len && qk_copy_to_user(uval, src, len)) || qk_copy_to_user(ulen, &len, 4))
    return -QK_EFAULT;
  return 0;
}

/* ---- dual listeners ---- */

static struct qk_tsor *listener_of(const void *host_sock)
{
  if (state <= 0)
    return NULL;
  for (struct qk_tsor *t = all; t; t = t->next)
    if (t->host_sock == host_sock)
      return t;
  return NULL;
}

void qk_tsor_listen_too(struct qk_file *f, const void *host_sock, int backlog)
{
  if (!on() || listener_of(host_sock))
    return;
  /* The port the host socket listens on, and only for the pod's address
   * or any (a listener on 127.0.0.1 stays local). */
  uint8_t name[128];
  uint32_t nlen = sizeof(name);
  if (qk_qcall(QK_OP_SOCKNAME, (uint64_t)f->hfd, qk_va_to_pa(name), qk_va_to_pa(&nlen), 0, 0, 0) <
          0 ||
      nlen < sizeof(struct l_sockaddr_in))
    return;
  struct l_sockaddr_in sa;
  memcpy(&sa, name, sizeof(sa));
  if (sa.family != AF_INET || (sa.addr != 0 && sa.addr != info.pod_ip))
    return;
  struct qk_tsor *t = entry_new();
  if (!t)
    return;
  int64_t sd = qk_qcall(QK_OP_TSOR_CTL, QK_TSOR_CTL_SOCKET, 0, 0, 0, 0, 0);
  if (sd < 0 ||
      qk_qcall(QK_OP_TSOR_LISTEN, (uint64_t)sd, swap16(sa.port), (uint64_t)backlog, 0, 0, 0) < 0) {
    /* The host listener still works; TSoR peers are refused. */
    if (sd >= 0)
      qk_qcall(QK_OP_TSOR_CTL, QK_TSOR_CTL_CLOSE, (uint64_t)sd, 0, 0, 0, 0);
    entry_free(t);
    return;
  }
  t->tsd = (uint32_t)sd;
  t->host_sock = host_sock;
  t->lport = swap16(sa.port);
}

struct qk_file *qk_tsor_accept(const void *host_sock, uint32_t flags, bool nonblock, uint8_t *addr,
                               uint32_t *alen)
{
  struct qk_tsor *l = listener_of(host_sock);
  if (!l)
    return NULL;
  struct qk_tsor_peer peer;
  int64_t sd =
      qk_qcall(QK_OP_TSOR_ACCEPT, l->tsd, qk_va_to_pa(&peer), host_wait(nonblock), 0, 0, 0);
  if (sd < 0) {
    if (!nonblock)
      want(l, POLLIN); /* the host accept parks on host_sock: watch this too */
    return NULL;
  }
  struct qk_tsor *t = entry_new();
  struct qk_file *f = t ? qk_file_new(&tsor_ops, L_O_RDWR | flags, NULL) : NULL;
  if (!f) {
    qk_qcall(QK_OP_TSOR_CTL, QK_TSOR_CTL_ABORT, (uint64_t)sd, 0, 0, 0, 0);
    if (t)
      entry_free(t);
    return NULL;
  }
  t->tsd = (uint32_t)sd;
  t->connected = true;
  t->raddr = peer.addr;
  t->rport = (uint16_t)peer.port;
  t->lport = l->lport;
  f->priv = t;
  f->hfd = -1;
  *alen = qk_tsor_name(f, true, addr);
  return f;
}

int16_t qk_tsor_sock_poll(const void *host_sock)
{
  struct qk_tsor *l = listener_of(host_sock);
  if (!l)
    return 0;
  int16_t ev = events_now(l, POLLIN) & POLLIN;
  if (!ev)
    want(l, POLLIN);
  return ev;
}

void qk_tsor_sock_release(const void *host_sock)
{
  struct qk_tsor *l = listener_of(host_sock);
  if (!l)
    return;
  qk_qcall(QK_OP_TSOR_CTL, QK_TSOR_CTL_CLOSE, l->tsd, 0, 0, 0, 0);
  entry_free(l);
}

/* ---- the idle loop ---- */

bool qk_tsor_waiting(void)
{
  return nwant != 0;
}

int64_t qk_tsor_idle_poll(struct qk_net_pollfd *host, unsigned n, uint64_t timeout_ns)
{
  unsigned m = 0;
  for (struct qk_tsor *t = all; t && m < QK_NET_POLL_MAX; t = t->next) {
    if (!t->want)
      continue;
    tents[m] = t;
    tset[m] = (struct qk_net_pollfd){t->tsd, t->want, 0};
    m++;
  }
  nwant = m;
  if (!m && !n)
    return 0;
  int64_t r = qk_qcall(QK_OP_TSOR_POLL, qk_va_to_pa(tset), m, qk_va_to_pa(host), n, timeout_ns, 0);
  if (r <= 0)
    return r;
  bool woke = false;
  for (unsigned i = 0; i < m; i++) {
    if (!tset[i].revents)
      continue;
    /* A registration fires once; waiters re-register if they must. */
    tents[i]->want = 0;
    nwant--;
    qk_wake(wchan(tents[i]));
    woke = true;
  }
  if (woke)
    qk_wake(&qk_poll_wq);
  return r;
}
