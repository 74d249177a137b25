/* Sockets over host sockets (see qk/net.h for the model).
 *
 * Data never passes through a guest copy: user buffers become scatter lists
 * of guest-physical segments that the host hands to sendmsg/recvmsg. Small
 * things (addresses, option values) go through kernel buffers, so user
 * pointers are checked here and the host sees kernel memory only. */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/net.h>
#include <qk/qcall.h>
#include <qk/sec.h>
#include <qk/syscall.h>
#include <qk/task.h>

#include "net_internal.h"
#include "tsor.h" /* TSoR routing hooks: net/tsor.c */

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define AF_NETLINK 16
#define AF_PACKET 17
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_RAW 3
#define SOCK_TYPE_MASK 0xf
#define SOCK_NONBLOCK L_O_NONBLOCK
#define SOCK_CLOEXEC L_O_CLOEXEC

#define MSG_OOB 0x1
#define MSG_PEEK 0x2
#define MSG_TRUNC 0x20
#define MSG_DONTWAIT 0x40
#define MSG_EOR 0x80
#define MSG_WAITALL 0x100
#define MSG_CONFIRM 0x800
#define MSG_NOSIGNAL 0x4000
#define MSG_MORE 0x8000
#define MSG_CMSG_CLOEXEC 0x40000000

#define POLLIN 0x001
#define POLLOUT 0x004
#define POLLERR 0x008
#define POLLHUP 0x010
#define POLLPRI 0x002
#define POLLRDHUP 0x2000

#define SOL_SOCKET 1
#define SO_ERROR 4
#define SO_RCVTIMEO 20
#define SO_SNDTIMEO 21

#define FIONREAD 0x541b
#define FIONBIO 0x5421
#define SIOCOUTQ 0x5411
#define SIOCGIFCONF 0x8912
#define IFCONF_MAX 64 /* interfaces one SIOCGIFCONF lists */

#define ADDR_MAX 128
#define OPT_MAX 256 /* option values: struct tcp_info is 232 bytes */

struct qk_sock {
  struct qk_sock *next, *prev; /* every socket: the idle loop's poll set */
  int domain, type;
  int hfd;                     /* the file's host handle, for the idle poll set */
  int16_t want;                /* POLL* events a parked task or a poll/select waits for */
  bool connecting;             /* a blocking connect is waiting for the handshake */
  uint64_t rcvtimeo, sndtimeo; /* SO_RCVTIMEO/SO_SNDTIMEO in ns, 0: none */
  struct qk_task *tx_owner;    /* a task parked in a send with tx_partial bytes out */
  uint64_t tx_partial;
  struct qk_task *rx_owner; /* a task parked in a MSG_WAITALL receive with rx_partial in */
  uint64_t rx_partial;
  uint64_t ino;     /* the guest's number until sock_fstat read the host's */
  bool ino_host;    /* ino is the host socket's inode (/proc/net/tcp's) */
  bool raw_icmp;    /* SOCK_RAW ICMP/ICMPv6 on a host ping socket (rawicmp.c) */
  uint16_t icmp_id; /* its last echo request's identifier */
};

static struct qk_sock *all_socks;
static uint64_t next_ino = 0x20000;
static struct qk_net_pollfd idle_set[QK_NET_POLL_MAX];
static struct qk_sock *idle_socks[QK_NET_POLL_MAX];

static inline struct qk_process *proc(void)
{
  return qk_current()->proc;
}

static bool nonblocking(struct qk_file *f, uint64_t flags)
{
  return (f->flags & L_O_NONBLOCK) || (flags & MSG_DONTWAIT);
}

/* QK_NET_WAIT for a blocking call when no other task could use the vCPU
 * meanwhile (the host then waits a little instead of answering -EAGAIN). */
static uint64_t host_wait(bool nb)
{
  return nb || qk_net_others_runnable() ? 0 : QK_NET_WAIT;
}

bool qk_net_others_runnable(void)
{
  struct qk_task *cur = qk_current();
  for (struct qk_task *t = qk_all_tasks; t; t = t->next_all)
    if (t != cur && t->state == QK_TASK_RUNNING)
      return true;
  return false;
}

/* Parks the current task until the socket has one of ev (the restart
 * model: the caller returns what this returns). */
static int64_t sock_wait(struct qk_file *f, int16_t ev)
{
  struct qk_sock *s = f->priv;
  uint64_t timeo = ev == POLLIN ? s->rcvtimeo : s->sndtimeo;
  /* Woken by the deadline of SO_RCVTIMEO/SO_SNDTIMEO and still not ready. */
  if (qk_wait_expired())
    return -QK_EAGAIN;
  s->want |= ev;
  return qk_block(s, qk_wait_deadline(timeo ? timeo : ~0ull));
}

/* The host's view of the socket right now. */
static int16_t sock_events(struct qk_file *f, int16_t ev)
{
  struct qk_net_pollfd p = {(uint32_t)f->hfd, ev, 0};
  int64_t r = qk_qcall(QK_OP_NET_POLL, qk_va_to_pa(&p), 1, 0, 0, 0, 0);
  return r < 0 ? POLLERR : p.revents;
}

static uint64_t last_poll_ns;

void qk_net_poll_now(void)
{
  bool any = qk_tsor_waiting(); /* TSoR */
  for (struct qk_sock *s = all_socks; s && !any; s = s->next)
    any = s->want != 0;
  if (!any)
    return;
  uint64_t now = qk_time_monotonic_ns();
  if (now - last_poll_ns < 1000000)
    return;
  qk_net_idle_wait(0);
}

bool qk_net_idle_wait(uint64_t timeout_ns)
{
  unsigned n = 0;
  last_poll_ns = qk_time_monotonic_ns();
  for (struct qk_sock *s = all_socks; s && n < QK_NET_POLL_MAX; s = s->next) {
    if (!s->want)
      continue;
    idle_socks[n] = s;
    idle_set[n] = (struct qk_net_pollfd){(uint32_t)s->hfd, s->want, 0};
    n++;
  }
  if (!n && !qk_tsor_waiting())
    return false;
  int64_t r = qk_tsor_waiting()
                  ? qk_tsor_idle_poll(idle_set, n, timeout_ns) /* TSoR */
                  : qk_qcall(QK_OP_NET_POLL, qk_va_to_pa(idle_set), n, timeout_ns, 0, 0, 0);
  if (r <= 0)
    return true; /* the timeout: the scheduler wakes expired sleepers */
  for (unsigned i = 0; i < n; i++) {
    if (!idle_set[i].revents)
      continue;
    /* Waiters re-register when they still have to wait: a registration
     * fires once. */
    idle_socks[i]->want = 0;
    qk_wake(idle_socks[i]);
  }
  qk_wake(&qk_poll_wq);
  return true;
}

/* ---- data ---- */

/* One scatter list of user memory for one host call. Returns the bytes
 * covered (0 for an empty request) or -QK_EFAULT when the first byte is
 * bad. A request longer than one list moves in part (a short transfer). */
static int64_t build_list(struct qk_uiov *v, const struct qk_uio *u, bool to_user)
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

/* Moves a scatter list's head past n bytes (net_internal.h). */
void qk_net_uio_advance(struct qk_uio *rest, struct l_iovec **cur, uint64_t n)
{
  while (rest->cnt && n >= (*cur)->len) {
    n -= (*cur)->len;
    rest->total -= (*cur)->len;
    (*cur)++;
    rest->cnt--;
  }
  if (rest->cnt) {
    (*cur)->base += n;
    (*cur)->len -= n;
    rest->total -= n;
  }
  rest->iov = *cur;
}

/* Receives into u. addr/alen: kernel buffers for the source address (NULL:
 * not wanted). *mflags gets MSG_TRUNC for a cut datagram. */
/* MSG_WAITALL on a blocking stream socket: gathers until u is full, the
 * stream ends or an error, parking between parts with what arrived so far
 * recorded in the socket (rx_partial); the restart goes on after it. No
 * host call waits for long, so other tasks run meanwhile. */
static int64_t recv_all(struct qk_file *f, const struct qk_uio *u, uint64_t flags)
{
  struct qk_sock *s = f->priv;
  uint64_t skip = 0;
  if (s->rx_owner == qk_current() && qk_restarting())
    skip = s->rx_partial;
  if (s->rx_owner == qk_current())
    s->rx_owner = NULL;
  if (skip >= u->total)
    skip = 0; /* not the call that parked */
  struct l_iovec one, *vec = &one;
  if (u->cnt > 1) {
    vec = qk_kmalloc(u->cnt * sizeof(*vec));
    if (!vec)
      return -QK_ENOMEM;
    memcpy(vec, u->iov, u->cnt * sizeof(*vec));
  } else {
    one = u->iov[0];
  }
  struct qk_uio rest = {vec, u->cnt, u->total};
  struct l_iovec *cur = vec;
  int64_t done = (int64_t)skip, r;
  if (skip)
    qk_net_uio_advance(&rest, &cur, skip);
  flags &= ~(uint64_t)MSG_WAITALL;
  for (;;) {
    struct qk_uiov v;
    r = build_list(&v, &rest, true);
    if (r <= 0) {
      r = done ? done : -QK_EFAULT;
      break;
    }
    r = qk_qcall(QK_OP_RECVMSG, (uint64_t)f->hfd, qk_va_to_pa(v.seg), v.n, flags | host_wait(false),
                 0, 0);
    if (r == -QK_EAGAIN) {
      r = sock_wait(f, POLLIN);
      if (r == -QK_ERESTART_WAIT && done) {
        s->rx_partial = (uint64_t)done;
        s->rx_owner = qk_current();
      } else if (done) {
        r = done; /* a signal or SO_RCVTIMEO: what arrived so far */
      }
      break;
    }
    if (r <= 0) {
      r = done ? done : r; /* the end of the stream, or an error */
      break;
    }
    int64_t got = r;
    done += got;
    r = done;
    if (done == (int64_t)u->total)
      break;
    qk_net_uio_advance(&rest, &cur, (uint64_t)got);
  }
  if (vec != &one)
    qk_kfree(vec);
  return r;
}

/* Receives into u. addr/alen: kernel buffers for the source address (NULL:
 * not wanted). *mflags gets MSG_TRUNC for a cut datagram. anc: room for
 * control data (NULL: none; sock_anc.c), not filled by raw ICMP sockets
 * or a gathering MSG_WAITALL. */
static int64_t sock_recv(struct qk_file *f, const struct qk_uio *u, uint64_t flags, void *addr,
                         uint32_t *alen, uint32_t *mflags, struct qk_anc *anc)
{
  if (flags &
      ~(uint64_t)(MSG_OOB | MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT | MSG_WAITALL | MSG_CMSG_CLOEXEC))
    return -QK_EOPNOTSUPP;
  flags &= ~(uint64_t)MSG_CMSG_CLOEXEC;
  bool nb = nonblocking(f, flags);
  struct qk_sock *s = f->priv;
  if (s->raw_icmp) {
    int64_t r = qk_rawicmp_recv(f->hfd, u, (flags & ~(uint64_t)MSG_WAITALL) | host_wait(nb), addr,
                                alen, mflags, s->icmp_id, s->domain == AF_INET6);
    return r == -QK_EAGAIN && !nb ? sock_wait(f, POLLIN) : r;
  }
  if ((flags & MSG_WAITALL) && !nb && !(flags & MSG_PEEK) && s->type == SOCK_STREAM && u->total) {
    if (mflags)
      *mflags = 0;
    if (alen)
      *alen = ~0u; /* a stream socket has no source address to report */
    return recv_all(f, u, flags);
  }
  flags &= ~(uint64_t)MSG_WAITALL;
  struct qk_uiov v;
  int64_t r = build_list(&v, u, true);
  if (r < 0)
    return r;
  if (r == 0 && u->total)
    return -QK_EFAULT;
  r = anc ? qk_anc_host_recv(f->hfd, &v, flags | host_wait(nb), addr, alen, anc)
          : qk_qcall(QK_OP_RECVMSG, (uint64_t)f->hfd, qk_va_to_pa(v.seg), v.n,
                     flags | host_wait(nb), addr ? qk_va_to_pa(addr) : 0,
                     addr ? qk_va_to_pa(alen) : 0);
  if (r == -QK_EAGAIN && !nb)
    return sock_wait(f, POLLIN);
  if (r < 0)
    return r;
  if (mflags)
    *mflags = (r & (int64_t)QK_NET_TRUNC) ? MSG_TRUNC : 0;
  return r & ~(int64_t)QK_NET_TRUNC;
}

void qk_net_raise_sigpipe(void)
{
  struct qk_siginfo_lite si = {.code = QK_SI_USER, .pid = proc()->pid};
  qk_signal_task(qk_current(), 13 /* SIGPIPE */, &si, false);
}

/* Sends u. A blocking stream send moves everything, as on Linux: when the
 * host buffer fills after part of it went out, the task parks with that
 * part recorded in the socket (tx_partial) and its restart skips it.
 * anc: control data (NULL: none) with the first part (sock_anc.c). */
static int64_t sock_send(struct qk_file *f, const struct qk_uio *u, uint64_t flags,
                         const void *addr, uint32_t alen, const struct qk_anc *anc)
{
  if (flags & ~(uint64_t)(MSG_OOB | MSG_DONTWAIT | MSG_EOR | MSG_CONFIRM | MSG_NOSIGNAL | MSG_MORE))
    return -QK_EOPNOTSUPP;
  struct qk_sock *s = f->priv;
  bool nb = nonblocking(f, flags);
  bool stream = s->type == SOCK_STREAM;
  if (s->raw_icmp) {
    int64_t r = qk_rawicmp_send(f->hfd, u, (flags & ~(uint64_t)MSG_DONTWAIT) | host_wait(nb), addr,
                                alen, &s->icmp_id);
    return r == -QK_EAGAIN && !nb ? sock_wait(f, POLLOUT) : r;
  }
  uint64_t skip = 0;
  if (s->tx_owner == qk_current() && qk_restarting())
    skip = s->tx_partial;
  if (s->tx_owner == qk_current())
    s->tx_owner = NULL;
  if (skip > u->total)
    skip = 0; /* not the call that parked: a different request */
  /* A private copy of the segments: a blocking stream send advances it. */
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
    r = build_list(&v, &rest, false);
    if (r < 0 || (r == 0 && rest.total)) {
      r = done ? done : -QK_EFAULT;
      break;
    }
    uint64_t hflags = (flags & ~(uint64_t)MSG_DONTWAIT) | host_wait(nb);
    r = anc && !done ? qk_anc_host_send(f->hfd, &v, hflags, addr, alen, anc)
                     : qk_qcall(QK_OP_SENDMSG, (uint64_t)f->hfd, qk_va_to_pa(v.seg), v.n, hflags,
                                addr ? qk_va_to_pa(addr) : 0, addr ? alen : 0);
    if (r == -QK_EAGAIN && !nb && (!done || stream)) {
      r = sock_wait(f, POLLOUT);
      if (r == -QK_ERESTART_WAIT && done) {
        s->tx_partial = (uint64_t)done;
        s->tx_owner = qk_current();
      } else if (done) {
        r = done; /* a signal or SO_SNDTIMEO: what went out so far */
      }
      break;
    }
    if (r < 0) {
      if (r == -QK_EPIPE && !(flags & MSG_NOSIGNAL) && !done)
        qk_net_raise_sigpipe();
      r = done ? done : r;
      break;
    }
    int64_t sent = r;
    done += sent;
    r = done;
    if (!stream || done == (int64_t)u->total || (nb && (uint64_t)sent < v.bytes))
      break;
    qk_net_uio_advance(&rest, &cur, (uint64_t)sent);
  }
  if (vec != &one)
    qk_kfree(vec);
  return r;
}

/* ---- the socket file type ---- */

static int64_t sock_rw(struct qk_file *f, const struct qk_uio *u, int64_t off, bool write)
{
  if (off >= 0)
    return -QK_ESPIPE;
  return write ? sock_send(f, u, 0, NULL, 0, NULL) : sock_recv(f, u, 0, NULL, NULL, NULL, NULL);
}

static int64_t sock_lseek(struct qk_file *f, int64_t off, int whence)
{
  return -QK_ESPIPE;
}

static int sock_fstat(struct qk_file *f, uint64_t gpa)
{
  struct qk_sock *s = f->priv;
  struct l_stat *st = qk_pa_to_va(gpa);
  /* The host socket's inode, as /proc/net/tcp and the fd link show it:
   * one FSTAT at the first fstat (none at creation), kept after. */
  if (!s->ino_host && f->hfd >= 0 &&
      qk_qcall(QK_OP_FSTAT, (uint64_t)f->hfd, gpa, 0, 0, 0, 0) == 0 && st->st_ino) {
    s->ino = st->st_ino;
    s->ino_host = true;
  }
  memset(st, 0, sizeof(*st));
  st->st_dev = 8;
  st->st_ino = s->ino;
  st->st_nlink = 1;
  st->st_mode = 0140000 | 0777; /* S_IFSOCK */
  st->st_blksize = 4096;
  return 0;
}

static int64_t sock_getdents(struct qk_file *f, uint64_t uva, uint64_t len)
{
  return -QK_ENOTDIR;
}

static int64_t sock_ioctl(struct qk_file *f, uint64_t cmd, uint64_t arg)
{
  switch (cmd) {
  case FIONBIO: {
    int32_t on;
    if (qk_copy_from_user(&on, arg, 4))
      return -QK_EFAULT;
    if (on)
      f->flags |= L_O_NONBLOCK;
    else
      f->flags &= ~(uint32_t)L_O_NONBLOCK;
    return 0;
  }
  case 0x8910: /* SIOCGIFNAME */
  case 0x8913: /* SIOCGIFFLAGS */
  case 0x8915: /* SIOCGIFADDR */
  case 0x8917: /* SIOCGIFDSTADDR */
  case 0x8919: /* SIOCGIFBRDADDR */
  case 0x891b: /* SIOCGIFNETMASK */
  case 0x8921: /* SIOCGIFMTU */
  case 0x8927: /* SIOCGIFHWADDR */
  case 0x8933: /* SIOCGIFINDEX */
  case 0x8942: /* SIOCGIFTXQLEN */ {
    /* Interface queries of the pod's netns, answered by the host (a
     * struct ifreq, 40 bytes, in and out). */
    uint8_t ifr[40];
    if (qk_copy_from_user(ifr, arg, sizeof ifr))
      return -QK_EFAULT;
    int64_t r = qk_qcall(QK_OP_SOCK_IOCTL, (uint64_t)f->hfd, cmd, qk_va_to_pa(ifr), 0, 0, 0);
    if (r < 0)
      return r;
    return qk_copy_to_user(arg, ifr, sizeof ifr) ? -QK_EFAULT : 0;
  }
  case SIOCGIFCONF: {
    /* The pod's interfaces with IPv4 addresses (busybox ifconfig): a struct
     * ifconf {int len; struct ifreq *buf}; a NULL buf asks for the size.
     * At most IFCONF_MAX entries, through a kernel buffer. */
    struct {
      int32_t len, pad;
      uint64_t buf;
    } ic;
    if (qk_copy_from_user(&ic, arg, sizeof ic))
      return -QK_EFAULT;
    if (ic.len < 0)
      return -QK_EINVAL;
    uint32_t room = ic.len > IFCONF_MAX * 40 ? IFCONF_MAX * 40 : (uint32_t)ic.len;
    uint8_t *kb = ic.buf && room ? qk_kmalloc(room) : NULL;
    if (ic.buf && room && !kb)
      return -QK_ENOMEM;
    int64_t r = qk_qcall(QK_OP_SOCK_IOCTL, (uint64_t)f->hfd, cmd, kb ? qk_va_to_pa(kb) : 0,
                         ic.buf ? room : 0, 0, 0);
    if (r >= 0 && ((kb && r && qk_copy_to_user(ic.buf, kb, (uint64_t)r)) ||
                   qk_copy_to_user(arg, &(int32_t){(int32_t)r}, 4)))
      r = -QK_EFAULT;
    qk_kfree(kb);
    return r < 0 ? r : 0;
  }
  case FIONREAD:
  case SIOCOUTQ: {
    int64_t r = qk_qcall(QK_OP_SOCK_IOCTL, (uint64_t)f->hfd, cmd, 0, 0, 0, 0);
    if (r < 0)
      return r;
    int32_t n = (int32_t)r;
    return qk_copy_to_user(arg, &n, 4) ? -QK_EFAULT : 0;
  }
  }
  return -QK_ENOTTY;
}

static int sock_poll(struct qk_file *f)
{
  struct qk_sock *s = f->priv;
  int16_t ev = sock_events(f, POLLIN | POLLOUT | POLLPRI | POLLRDHUP);
  ev |= qk_tsor_sock_poll(s); /* TSoR: a dual listener's connections */
  /* A poll/select that finds nothing it wants parks on qk_poll_wq: ask the
   * idle loop to watch the events that are not there yet (those that are
   * were not wanted, or the caller would not park). */
  s->want |= (int16_t)((POLLIN | POLLOUT) & ~ev);
  return ev;
}

static int sock_mmap_hfd(struct qk_file *f)
{
  return -QK_ENODEV;
}

static void sock_release(struct qk_file *f)
{
  struct qk_sock *s = f->priv;
  if (s->prev)
    s->prev->next = s->next;
  else
    all_socks = s->next;
  if (s->next)
    s->next->prev = s->prev;
  qk_wake(s);
  qk_tsor_sock_release(s); /* TSoR: its dual listener */
  /* Posted, as rootfs closes are: the host serves this ring in order and
   * hands out handle numbers itself, so nothing on any ring meets this
   * number again before the close is served; the FIN leaves with this
   * vCPU's next QCall, or before it halts idle (qk_qcall_flush). */
  qk_qcall_post(QK_OP_CLOSE, (uint64_t)f->hfd, 0, 0);
  qk_kfree(s);
}

static const struct qk_file_ops sock_ops = {
    .rw = sock_rw,
    .lseek = sock_lseek,
    .fstat = sock_fstat,
    .getdents = sock_getdents,
    .ioctl = sock_ioctl,
    .poll = sock_poll,
    .mmap_hfd = sock_mmap_hfd,
    .release = sock_release,
};

/* epoll (fs/epoll.c) asks the host for all its sockets in one call. */
int qk_sock_host_hfd(struct qk_file *f)
{
  return f->ops == &sock_ops ? f->hfd : -1;
}

int qk_sock_guest_events(struct qk_file *f)
{
  return qk_tsor_sock_poll(f->priv); /* TSoR: a dual listener's connections */
}

void qk_sock_watch(struct qk_file *f, int16_t ev)
{
  ((struct qk_sock *)f->priv)->want |= ev;
}

/* A file for host handle hfd (consumed: closed on failure). */
static struct qk_file *sock_file(int64_t hfd, int domain, int type, uint32_t nonblock)
{
  struct qk_sock *s = qk_kzalloc(sizeof(*s));
  struct qk_file *f = s ? qk_file_new(&sock_ops, L_O_RDWR | nonblock, NULL) : NULL;
  if (!f) {
    qk_kfree(s);
    qk_qcall(QK_OP_CLOSE, (uint64_t)hfd, 0, 0, 0, 0, 0);
    return NULL;
  }
  s->domain = domain;
  s->type = type;
  s->hfd = (int)hfd;
  s->ino = next_ino++;
  s->next = all_socks;
  if (all_socks)
    all_socks->prev = s;
  all_socks = s;
  f->hfd = (int)hfd;
  f->priv = s;
  return f;
}

/* The socket at fd with a reference, or NULL with *err set. Guest AF_UNIX
 * pairs only where the caller serves them (unix_ok). */
static struct qk_file *sget_any(uint64_t fd, int64_t *err, bool unix_ok)
{
  struct qk_file *f = qk_fget_in(proc()->files, (int)fd);
  if (!f) {
    *err = -QK_EBADF;
    return NULL;
  }
  if (f->ops != &sock_ops && !(unix_ok && (qk_unix_is(f) || qk_tsor_is(f)))) {
    qk_fput(f);
    *err = -QK_ENOTSOCK;
    return NULL;
  }
  return f;
}

static struct qk_file *sget(uint64_t fd, int64_t *err)
{
  return sget_any(fd, err, false);
}

static int64_t install(struct qk_file *f, uint64_t flags)
{
  int fd = qk_fd_install(proc()->files, f, 0, flags & SOCK_CLOEXEC);
  if (fd < 0)
    qk_fput(f);
  return fd;
}

/* ---- syscalls ---- */

int64_t sys_socket(uint64_t domain, uint64_t type, uint64_t proto, uint64_t a3, uint64_t a4,
                   uint64_t a5)
{
  if (type & ~(uint64_t)(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC))
    return -QK_EINVAL;
  int t = (int)(type & SOCK_TYPE_MASK);
  switch (domain) {
  case AF_INET:
  case AF_INET6:
    /* Raw sockets: ICMP and ICMPv6 for a process with CAP_NET_RAW, over a
     * host ping socket (rawicmp.c); others EPERM (the sandbox has no
     * CAP_NET_RAW). */
    if (t == SOCK_RAW && (proto != (domain == AF_INET ? 1u : 58u) || !qk_capable(QK_CAP_NET_RAW)))
      return -QK_EPERM;
    break;
  case AF_PACKET:
    return -QK_EPERM;
  case AF_UNIX: {
    if (proto != 0 && proto != AF_UNIX)
      return -QK_EPROTONOSUPPORT;
    struct qk_file *uf;
    int ur = qk_unix_socket(t, (uint32_t)(type & SOCK_NONBLOCK), &uf);
    return ur ? ur : install(uf, type);
  }
  case AF_NETLINK:
    /* Route netlink on a host socket in the pod's netns: reads only (the
     * host checks every request; ops_net.c). */
    if (t != SOCK_RAW && t != SOCK_DGRAM)
      return -94; /* ESOCKTNOSUPPORT */
    if (proto != 0 /* NETLINK_ROUTE */)
      return -QK_EPROTONOSUPPORT;
    break;
  default:
    return -QK_EAFNOSUPPORT;
  }
  bool raw = t == SOCK_RAW && domain != AF_NETLINK;
  int64_t h = qk_qcall(QK_OP_SOCKET, domain, raw ? SOCK_DGRAM : (uint64_t)t, proto, 0, 0, 0);
  if (h == -QK_EPERM && domain == AF_NETLINK)
    return -QK_EAFNOSUPPORT; /* a jailed sandbox (run mode) may not open one */
  if (raw && h == -QK_EACCES)
    return -QK_EPERM; /* outside the netns's ping_group_range */
  if (h < 0)
    return h;
  struct qk_file *f = sock_file(h, (int)domain, t, (uint32_t)(type & SOCK_NONBLOCK));
  if (!f)
    return -QK_ENOMEM;
  ((struct qk_sock *)f->priv)->raw_icmp = raw;
  return install(f, type);
}

int64_t sys_socketpair(uint64_t domain, uint64_t type, uint64_t proto, uint64_t usv, uint64_t a4,
                       uint64_t a5)
{
  if (domain != AF_UNIX)
    return -QK_EOPNOTSUPP;
  if (type & ~(uint64_t)(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC))
    return -QK_EINVAL;
  int t = (int)(type & SOCK_TYPE_MASK);
  if (t == SOCK_RAW)
    t = SOCK_DGRAM; /* as Linux's AF_UNIX does */
  if (t != SOCK_STREAM && t != SOCK_DGRAM && t != 5 /* SOCK_SEQPACKET */)
    return -94; /* ESOCKTNOSUPPORT */
  if (proto != 0)
    return -QK_EPROTONOSUPPORT;
  int32_t fds[2];
  /* Check the result array before anything is created. */
  if (qk_copy_from_user(fds, usv, sizeof(fds)))
    return -QK_EFAULT;
  struct qk_file *a, *b;
  int r = t == SOCK_STREAM ? qk_unix_pair((uint32_t)(type & SOCK_NONBLOCK), &a, &b)
                           : qk_unix_pair_msg(t, (uint32_t)(type & SOCK_NONBLOCK), &a, &b);
  if (r)
    return r;
  int64_t fa = install(a, type);
  if (fa < 0) {
    qk_fput(b);
    return fa;
  }
  int64_t fb = install(b, type);
  if (fb < 0) {
    qk_fd_close(proc()->files, (int)fa);
    return fb;
  }
  fds[0] = (int32_t)fa;
  fds[1] = (int32_t)fb;
  if (qk_copy_to_user(usv, fds, sizeof(fds))) {
    qk_fd_close(proc()->files, (int)fa);
    qk_fd_close(proc()->files, (int)fb);
    return -QK_EFAULT;
  }
  return 0;
}

/* Copies a user sockaddr into buf (ADDR_MAX bytes). */
static int64_t addr_in(uint64_t uaddr, uint64_t len, uint8_t *buf)
{
  if ((int64_t)(int32_t)len < 0 || len > ADDR_MAX)
    return -QK_EINVAL;
  if (len && qk_copy_from_user(buf, uaddr, len))
    return -QK_EFAULT;
  return 0;
}

static int64_t addr_call(uint32_t op, uint64_t fd, uint64_t uaddr, uint64_t len)
{
  int64_t r;
  struct qk_file *f = sget_any(fd, &r, true);
  if (!f)
    return r;
  uint8_t buf[ADDR_MAX];
  r = addr_in(uaddr, len, buf);
  if (!r && qk_tsor_is(f)) /* TSoR: a connected socket */
    r = op == QK_OP_BIND ? -QK_EINVAL : qk_tsor_connect(f, uaddr, len);
  else if (!r && qk_unix_is(f))
    r = op == QK_OP_BIND ? qk_unix_bind(f, buf, (uint32_t)len)
                         : qk_unix_connect(f, buf, (uint32_t)len);
  else if (!r)
    r = qk_qcall(op, (uint64_t)f->hfd, qk_va_to_pa(buf), len, 0, 0, 0);
  qk_fput(f);
  return r;
}

int64_t sys_bind(uint64_t fd, uint64_t uaddr, uint64_t len, uint64_t a3, uint64_t a4, uint64_t a5)
{
  return addr_call(QK_OP_BIND, fd, uaddr, len);
}

int64_t sys_listen(uint64_t fd, uint64_t backlog, uint64_t a2, uint64_t a3, uint64_t a4,
                   uint64_t a5)
{
  int64_t r;
  struct qk_file *f = sget_any(fd, &r, true);
  if (!f)
    return r;
  int b = (int)backlog;
  if (qk_unix_is(f)) {
    r = qk_unix_listen(f, b < 0 ? 4096 : b);
    qk_fput(f);
    return r;
  }
  if (qk_tsor_is(f)) { /* TSoR: a connected socket */
    qk_fput(f);
    return -QK_EINVAL;
  }
  r = qk_qcall(QK_OP_LISTEN, (uint64_t)f->hfd, b < 0 ? 4096 : (uint64_t)b, 0, 0, 0, 0);
  struct qk_sock *ls = f->priv;
  if (!r && ls->domain == AF_INET && ls->type == SOCK_STREAM)
    qk_tsor_listen_too(f, ls, b < 0 ? 4096 : b); /* TSoR: also accept TSoR channels */
  qk_fput(f);
  return r;
}

int64_t sys_connect(uint64_t fd, uint64_t uaddr, uint64_t len, uint64_t a3, uint64_t a4,
                    uint64_t a5)
{
  int64_t r;
  struct qk_file *f = sget_any(fd, &r, true);
  if (f && (qk_unix_is(f) || qk_tsor_is(f))) {
    qk_fput(f);
    return addr_call(QK_OP_CONNECT, fd, uaddr, len);
  }
  if (!f)
    return r;
  struct qk_sock *s = f->priv;
  if (s->connecting && qk_restarting()) {
    /* A blocking connect woken by the idle loop: finished or still on? */
    int16_t ev = sock_events(f, POLLOUT);
    if (!(ev & (POLLOUT | POLLERR | POLLHUP))) {
      r = sock_wait(f, POLLOUT);
      goto out;
    }
    /* Finished: the host connect below reports it (0 or the error) and
     * moves the host socket to connected, so that a later connect is
     * EISCONN as on Linux (SO_ERROR alone left it "connecting"). */
  }
  s->connecting = false;
  uint8_t buf[ADDR_MAX];
  r = addr_in(uaddr, len, buf);
  if (r)
    goto out;
  if (s->domain == AF_INET && s->type == SOCK_STREAM && qk_tsor_routes(buf, (uint32_t)len)) {
    /* TSoR: the destination is a TSoR pod (net/tsor.c) */
    r = qk_tsor_convert(f);
    if (!r)
      r = qk_tsor_connect(f, uaddr, len);
    qk_fput(f);
    return r;
  }
  r = qk_qcall(QK_OP_CONNECT, (uint64_t)f->hfd, qk_va_to_pa(buf), len, 0, 0, 0);
  if (r == -QK_EINPROGRESS && !(f->flags & L_O_NONBLOCK)) {
    s->connecting = true;
    r = sock_wait(f, POLLOUT);
  }
out:
  if (r == -QK_EAGAIN && s->connecting) {
    s->connecting = false; /* SO_SNDTIMEO ran out: Linux says EINPROGRESS */
    r = -QK_EINPROGRESS;
  }
  qk_fput(f);
  return r;
}

/* Reads the user's address-length word, checking the buffer it sizes. */
static int64_t alen_in(uint64_t uaddr, uint64_t ulen, uint32_t *alen)
{
  if (!uaddr)
    return 0;
  int32_t n;
  if (qk_copy_from_user(&n, ulen, 4))
    return -QK_EFAULT;
  if (n < 0)
    return -QK_EINVAL;
  *alen = (uint32_t)n > ADDR_MAX ? ADDR_MAX : (uint32_t)n;
  uint8_t probe[ADDR_MAX];
  if (*alen && qk_copy_from_user(probe, uaddr, *alen))
    return -QK_EFAULT;
  return 0;
}

/* Copies an address the host wrote (full length hlen) back to the user. */
static int64_t alen_out(uint64_t uaddr, uint64_t ulen, const uint8_t *buf, uint32_t room,
                        uint32_t hlen)
{
  if (!uaddr)
    return 0;
  uint32_t n = hlen < room ? hlen : room;
  if ((n && qk_copy_to_user(uaddr, buf, n)) || qk_copy_to_user(ulen, &hlen, 4))
    return -QK_EFAULT;
  return 0;
}

int64_t sys_accept4(uint64_t fd, uint64_t uaddr, uint64_t ulen, uint64_t flags, uint64_t a4,
                    uint64_t a5)
{
  if (flags & ~(uint64_t)(SOCK_NONBLOCK | SOCK_CLOEXEC))
    return -QK_EINVAL;
  int64_t r;
  struct qk_file *f = sget_any(fd, &r, true);
  if (!f)
    return r;
  if (qk_unix_is(f)) {
    uint32_t room = 0;
    struct qk_file *nf;
    r = alen_in(uaddr, ulen, &room);
    if (!r)
      r = qk_unix_accept(f, (uint32_t)(flags & SOCK_NONBLOCK), &nf);
    if (!r) {
      r = install(nf, flags);
      uint8_t name[ADDR_MAX];
      uint32_t n = qk_unix_name(nf, true, name);
      if (r >= 0 && alen_out(uaddr, ulen, name, room, n) < 0) {
        /* as for host sockets: the connection is handed out anyway */
      }
    }
    qk_fput(f);
    return r;
  }
  if (qk_tsor_is(f)) { /* TSoR: a connected socket */
    qk_fput(f);
    return -QK_EINVAL;
  }
  struct qk_sock *s = f->priv;
  uint32_t room = 0, hlen = 0;
  uint8_t buf[ADDR_MAX];
  r = alen_in(uaddr, ulen, &room);
  if (r)
    goto out;
  struct qk_file *tf = qk_tsor_accept(s, (uint32_t)(flags & SOCK_NONBLOCK), f->flags & L_O_NONBLOCK,
                                      buf, &hlen); /* TSoR: a dual listener's connection first */
  if (tf) {
    r = install(tf, flags);
    if (r >= 0 && alen_out(uaddr, ulen, buf, room, hlen) < 0) {
      /* handed out anyway, as below */
    }
    goto out;
  }
  hlen = ADDR_MAX;
  r = qk_qcall(QK_OP_ACCEPT, (uint64_t)f->hfd, uaddr ? qk_va_to_pa(buf) : 0, qk_va_to_pa(&hlen),
               host_wait(f->flags & L_O_NONBLOCK), 0, 0);
  if (r == -QK_EAGAIN && !(f->flags & L_O_NONBLOCK)) {
    r = sock_wait(f, POLLIN);
    goto out;
  }
  if (r < 0)
    goto out;
  struct qk_file *nf = sock_file(r, s->domain, s->type, (uint32_t)(flags & SOCK_NONBLOCK));
  if (!nf) {
    r = -QK_ENOMEM;
    goto out;
  }
  r = install(nf, flags);
  if (r >= 0 && alen_out(uaddr, ulen, buf, room, hlen) < 0) {
    /* Linux also hands out the connection when the address copy fails. */
  }
out:
  qk_fput(f);
  return r;
}

int64_t sys_accept(uint64_t fd, uint64_t uaddr, uint64_t ulen, uint64_t a3, uint64_t a4,
                   uint64_t a5)
{
  return sys_accept4(fd, uaddr, ulen, 0, 0, 0);
}

static int64_t sockname(uint64_t fd, uint64_t uaddr, uint64_t ulen, bool peer)
{
  int64_t r;
  struct qk_file *f = sget_any(fd, &r, true);
  if (!f)
    return r;
  uint32_t room = 0, hlen = ADDR_MAX;
  uint8_t buf[ADDR_MAX];
  r = uaddr ? alen_in(uaddr, ulen, &room) : -QK_EFAULT;
  if (!r && (qk_unix_is(f) || qk_tsor_is(f))) {
    hlen = qk_unix_is(f) ? qk_unix_name(f, peer, buf) : qk_tsor_name(f, peer, buf); /* TSoR */
    r = hlen ? alen_out(uaddr, ulen, buf, room, hlen) : -QK_ENOTCONN;
  } else if (!r)
    r = qk_qcall(QK_OP_SOCKNAME, (uint64_t)f->hfd, qk_va_to_pa(buf), qk_va_to_pa(&hlen), peer, 0,
                 0);
  if (!r && !qk_unix_is(f) && !qk_tsor_is(f))
    r = alen_out(uaddr, ulen, buf, room, hlen);
  qk_fput(f);
  return r;
}

int64_t sys_getsockname(uint64_t fd, uint64_t uaddr, uint64_t ulen, uint64_t a3, uint64_t a4,
                        uint64_t a5)
{
  return sockname(fd, uaddr, ulen, false);
}

int64_t sys_getpeername(uint64_t fd, uint64_t uaddr, uint64_t ulen, uint64_t a3, uint64_t a4,
                        uint64_t a5)
{
  return sockname(fd, uaddr, ulen, true);
}

int64_t sys_shutdown(uint64_t fd, uint64_t how, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  int64_t r;
  struct qk_file *f = sget_any(fd, &r, true);
  if (!f)
    return r;
  if (qk_unix_is(f) || qk_tsor_is(f)) {
    r = qk_unix_is(f) ? qk_unix_shutdown(f, how) : qk_tsor_shutdown(f, how); /* TSoR */
    qk_fput(f);
    return r;
  }
  r = how > 2 ? -QK_EINVAL : qk_qcall(QK_OP_SHUTDOWN, (uint64_t)f->hfd, how, 0, 0, 0, 0);
  qk_wake(f->priv); /* parked readers see the end of the stream */
  qk_fput(f);
  return r;
}

int64_t sys_setsockopt(uint64_t fd, uint64_t level, uint64_t name, uint64_t uval, uint64_t len,
                       uint64_t a5)
{
  int64_t r;
  struct qk_file *f = sget_any(fd, &r, true);
  if (!f)
    return r;
  if (qk_tsor_is(f)) { /* TSoR */
    r = qk_tsor_setsockopt(f, level, name, uval, len);
    qk_fput(f);
    return r;
  }
  if (qk_unix_is(f)) {
    /* Buffer sizes are fixed (64 KiB each way): accepted, as Linux clamps
     * them too; SO_PASSCRED (unix.c); nothing else. */
    int32_t v = 0;
    if ((int32_t)len < 0)
      r = -QK_EINVAL;
    else if (len >= 4 && qk_copy_from_user(&v, uval, 4))
      r = -QK_EFAULT;
    else
      r = qk_unix_setsockopt(f, level, name, &v, len);
    qk_fput(f);
    return r;
  }
  uint8_t buf[OPT_MAX];
  if ((int32_t)len < 0 || len > OPT_MAX) {
    r = -QK_EINVAL;
  } else if (len && qk_copy_from_user(buf, uval, len)) {
    r = -QK_EFAULT;
  } else if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
    /* Guest-side: the host handle never blocks, the guest's waits do. */
    struct {
      int64_t sec, usec;
    } tv;
    memcpy(&tv, buf, sizeof(tv));
    if (len < sizeof(tv)) {
      r = -QK_EINVAL;
    } else if (tv.usec < 0 || tv.usec >= 1000000) {
      r = -QK_EDOM;
    } else {
      uint64_t ns = tv.sec < 0 ? 0
                    : tv.sec > 100ll * 365 * 86400
                        ? 0
                        : (uint64_t)tv.sec * 1000000000ull + (uint64_t)tv.usec * 1000ull;
      struct qk_sock *s = f->priv;
      if (name == SO_RCVTIMEO)
        s->rcvtimeo = ns;
      else
        s->sndtimeo = ns;
      r = 0;
    }
  } else if (((struct qk_sock *)f->priv)->raw_icmp &&
             ((level == 58 && name == 1) /* ICMP6_FILTER */ ||
              (level == 255 && name == 7) /* SOL_RAW IPV6_CHECKSUM */ ||
              (level == 41 && (name == 8 || name == 51)) /* IPV6_(2292|RECV)HOPLIMIT */)) {
    /* busybox ping6's set-up: the host ping socket passes echo replies only
     * and sums itself; hop limits are not reported (no control data). */
    r = 0;
  } else {
    r = qk_qcall(QK_OP_SETSOCKOPT, (uint64_t)f->hfd, level, name, qk_va_to_pa(buf), len, 0);
  }
  qk_fput(f);
  return r;
}

/* The few options of a guest AF_UNIX pair (read-only answers). */
static int64_t unix_getsockopt(struct qk_file *f, uint64_t level, uint64_t name, uint64_t uval,
                               uint64_t ulen)
{
  int32_t v;
  if (level != SOL_SOCKET)
    return -QK_ENOPROTOOPT;
  uint8_t ov[16];
  uint32_t olen;
  if (!qk_unix_getsockopt(f, name, ov, &olen)) { /* SO_PASSCRED, SO_PEERCRED */
    int32_t n;
    if (qk_copy_from_user(&n, ulen, 4))
      return -QK_EFAULT;
    if (n < 0)
      return -QK_EINVAL;
    uint32_t len = (uint32_t)n < olen ? (uint32_t)n : olen;
    if ((len && qk_copy_to_user(uval, ov, len)) || qk_copy_to_user(ulen, &len, 4))
      return -QK_EFAULT;
    return 0;
  }
  switch (name) {
  case 3: /* SO_TYPE */
    v = SOCK_STREAM;
    break;
  case SO_ERROR:
    v = 0;
    break;
  case 39: /* SO_DOMAIN */
    v = AF_UNIX;
    break;
  case 7: /* SO_SNDBUF */
  case 8: /* SO_RCVBUF */
    v = 64 * 1024;
    break;
  default:
    return -QK_ENOPROTOOPT;
  }
  int32_t n;
  if (qk_copy_from_user(&n, ulen, 4))
    return -QK_EFAULT;
  if (n < 0)
    return -QK_EINVAL;
  uint32_t len = n < 4 ? (uint32_t)n : 4;
  if ((len && qk_copy_to_user(uval, &v, len)) || qk_copy_to_user(ulen, &len, 4))
    return -QK_EFAULT;
  return 0;
}

int64_t sys_getsockopt(uint64_t fd, uint64_t level, uint64_t name, uint64_t uval, uint64_t ulen,
                       uint64_t a5)
{
  int64_t r;
  struct qk_file *f = sget_any(fd, &r, true);
  if (!f)
    return r;
  if (qk_unix_is(f)) {
    r = unix_getsockopt(f, level, name, uval, ulen);
    qk_fput(f);
    return r;
  }
  if (qk_tsor_is(f)) { /* TSoR */
    r = qk_tsor_getsockopt(f, level, name, uval, ulen);
    qk_fput(f);
    return r;
  }
  int32_t n;
  uint8_t buf[OPT_MAX];
  memset(buf, 0, sizeof(buf));
  if (qk_copy_from_user(&n, ulen, 4)) {
    r = -QK_EFAULT;
  } else if (n < 0) {
    r = -QK_EINVAL;
  } else {
    uint32_t len = (uint32_t)n > OPT_MAX ? OPT_MAX : (uint32_t)n;
    if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
      struct qk_sock *s = f->priv;
      uint64_t ns = name == SO_RCVTIMEO ? s->rcvtimeo : s->sndtimeo;
      int64_t tv[2] = {(int64_t)(ns / 1000000000ull), (int64_t)(ns % 1000000000ull / 1000ull)};
      memcpy(buf, tv, sizeof(tv));
      len = len < sizeof(tv) ? len : sizeof(tv);
      r = 0;
    } else {
      r = qk_qcall(QK_OP_GETSOCKOPT, (uint64_t)f->hfd, level, name, qk_va_to_pa(buf),
                   qk_va_to_pa(&len), 0);
      if (!r && level == SOL_SOCKET && name == 3 /* SO_TYPE */ && ((struct qk_sock *)f->priv)->raw_icmp)
        buf[0] = SOCK_RAW; /* the host's is a datagram socket */
    }
    if (!r && ((len && qk_copy_to_user(uval, buf, len)) || qk_copy_to_user(ulen, &len, 4)))
      r = -QK_EFAULT;
  }
  qk_fput(f);
  return r;
}

/* sendto/recvfrom/sendmsg/recvmsg share these (anc: control data of a
 * host socket, NULL: none). */
static int64_t do_send(uint64_t fd, const struct l_iovec *iov, unsigned cnt, uint64_t flags,
                       uint64_t uaddr, uint64_t alen, const struct qk_anc *anc)
{
  int64_t r;
  struct qk_file *f = sget_any(fd, &r, true);
  if (!f)
    return r;
  uint8_t buf[ADDR_MAX];
  r = uaddr ? addr_in(uaddr, alen, buf) : 0;
  if (!r) {
    struct qk_uio u = {iov, cnt, 0};
    for (unsigned i = 0; i < cnt; i++)
      u.total += iov[i].len;
    if (qk_tsor_is(f)) /* TSoR */
      r = uaddr ? -QK_EISCONN : qk_tsor_xfer(f, &u, flags, true);
    else if (qk_unix_is(f)) /* sendto: a datagram's destination (unix_io.c) */
      r = qk_unix_sendmsg(f, &u, flags, NULL, 0, uaddr ? buf : NULL, (uint32_t)alen);
    else
      r = sock_send(f, &u, flags, uaddr ? buf : NULL, (uint32_t)alen, anc);
  }
  qk_fput(f);
  return r;
}

static int64_t do_recv(uint64_t fd, const struct l_iovec *iov, unsigned cnt, uint64_t flags,
                       uint64_t uaddr, uint64_t ulen, uint32_t *mflags, struct qk_anc *anc)
{
  int64_t r;
  struct qk_file *f = sget_any(fd, &r, true);
  if (!f)
    return r;
  uint32_t room = 0, hlen = ADDR_MAX;
  uint8_t buf[ADDR_MAX];
  r = alen_in(uaddr, ulen, &room);
  if (!r && qk_unix_is(f)) {
    /* AF_UNIX: the sender's name (unix_io.c); no control data */
    struct qk_uio u = {iov, cnt, 0};
    for (unsigned i = 0; i < cnt; i++)
      u.total += iov[i].len;
    uint64_t noctl = 0;
    uint32_t fl = 0;
    r = qk_unix_recvmsg(f, &u, flags, 0, &noctl, mflags ? mflags : &fl, buf, &hlen);
    if (r >= 0 && alen_out(uaddr, ulen, buf, room, hlen) < 0)
      r = -QK_EFAULT;
  } else if (!r && qk_tsor_is(f)) {
    struct qk_uio u = {iov, cnt, 0};
    for (unsigned i = 0; i < cnt; i++)
      u.total += iov[i].len;
    r = qk_tsor_xfer(f, &u, flags, false); /* TSoR */
    if (r >= 0 && uaddr && qk_copy_to_user(ulen, &(uint32_t){0}, 4))
      r = -QK_EFAULT; /* a pair's peer has no name */
  } else if (!r) {
    struct qk_uio u = {iov, cnt, 0};
    for (unsigned i = 0; i < cnt; i++)
      u.total += iov[i].len;
    r = sock_recv(f, &u, flags, uaddr ? buf : NULL, &hlen, mflags, anc);
    if (r >= 0 && uaddr) {
      /* A connected stream socket reports no source address. */
      if (hlen > ADDR_MAX)
        hlen = 0;
      if (alen_out(uaddr, ulen, buf, room, hlen) < 0)
        r = -QK_EFAULT;
    }
  }
  qk_fput(f);
  return r;
}

#define MAX_RW 0x7ffff000ull

int64_t sys_sendto(uint64_t fd, uint64_t ubuf, uint64_t len, uint64_t flags, uint64_t uaddr,
                   uint64_t alen)
{
  struct l_iovec iov = {ubuf, len > MAX_RW ? MAX_RW : len};
  return do_send(fd, &iov, 1, flags, uaddr, alen, NULL);
}

int64_t sys_recvfrom(uint64_t fd, uint64_t ubuf, uint64_t len, uint64_t flags, uint64_t uaddr,
                     uint64_t ulen)
{
  struct l_iovec iov = {ubuf, len > MAX_RW ? MAX_RW : len};
  return do_recv(fd, &iov, 1, flags, uaddr, ulen, NULL, NULL);
}

struct l_msghdr {
  uint64_t name;
  uint32_t namelen;
  uint32_t pad0;
  uint64_t iov;
  uint64_t iovlen;
  uint64_t control;
  uint64_t controllen;
  int32_t flags;
  uint32_t pad1;
};
_Static_assert(sizeof(struct l_msghdr) == 56, "struct msghdr");

/* Copies a user msghdr and its iovec array (kmalloc'd into *iov). */
static int64_t msg_in(uint64_t umsg, struct l_msghdr *m, struct l_iovec **iov)
{
  if (qk_copy_from_user(m, umsg, sizeof(*m)))
    return -QK_EFAULT;
  if (m->iovlen > QK_UIO_MAX)
    return -QK_EMSGSIZE;
  *iov = qk_kmalloc((m->iovlen ? m->iovlen : 1) * sizeof(**iov));
  if (!*iov)
    return -QK_ENOMEM;
  if (m->iovlen && qk_copy_from_user(*iov, m->iov, m->iovlen * sizeof(**iov)))
    return -QK_EFAULT;
  uint64_t total = 0;
  for (uint64_t i = 0; i < m->iovlen; i++) {
    if ((int64_t)(*iov)[i].len < 0 || (*iov)[i].len > MAX_RW - total)
      return -QK_EINVAL;
    total += (*iov)[i].len;
  }
  return 0;
}

/* The AF_UNIX socket at fd with a reference, or NULL. */
static struct qk_file *unix_get(uint64_t fd)
{
  struct qk_file *f = qk_fget_in(proc()->files, (int)fd);
  if (f && !qk_unix_is(f)) {
    qk_fput(f);
    f = NULL;
  }
  return f;
}

/* sendmsg with control data: AF_UNIX (SCM_RIGHTS, SCM_CREDENTIALS;
 * unix.c), or the records a host socket passes on (sock_anc.c). */
static int64_t unix_ctl_send(uint64_t fd, const struct l_msghdr *m, const struct l_iovec *iov,
                             uint64_t flags)
{
  struct qk_file *f = unix_get(fd);
  if (!f) {
    struct qk_anc anc;
    int64_t r = qk_anc_send_prep(&anc, m->control, m->controllen);
    if (!r)
      r = do_send(fd, iov, (unsigned)m->iovlen, flags, m->name, m->namelen, &anc);
    qk_anc_free(&anc);
    return r;
  }
  int64_t r;
  uint8_t *ctl = NULL;
  if (m->controllen > 4096)
    r = -QK_ENOBUFS;
  else if (!(ctl = qk_kmalloc(m->controllen)))
    r = -QK_ENOMEM;
  else if (qk_copy_from_user(ctl, m->control, m->controllen))
    r = -QK_EFAULT;
  else {
    uint8_t abuf[ADDR_MAX];
    struct qk_uio u = {iov, (unsigned)m->iovlen, 0};
    for (unsigned i = 0; i < u.cnt; i++)
      u.total += iov[i].len;
    r = m->name ? addr_in(m->name, m->namelen, abuf) : 0;
    if (!r)
      r = qk_unix_sendmsg(f, &u, flags, ctl, m->controllen, m->name ? abuf : NULL, m->namelen);
  }
  qk_kfree(ctl);
  qk_fput(f);
  return r;
}

int64_t qk_net_sendmsg(uint64_t fd, uint64_t umsg, uint64_t flags)
{
  struct l_msghdr m;
  struct l_iovec *iov = NULL;
  int64_t r = msg_in(umsg, &m, &iov);
  if (!r && m.controllen)
    r = unix_ctl_send(fd, &m, iov, flags);
  else if (!r)
    r = do_send(fd, iov, (unsigned)m.iovlen, flags, m.name, m.namelen, NULL);
  qk_kfree(iov);
  return r;
}

int64_t qk_net_recvmsg(uint64_t fd, uint64_t umsg, uint64_t flags)
{
  struct l_msghdr m;
  struct l_iovec *iov = NULL;
  int64_t r = msg_in(umsg, &m, &iov);
  uint32_t mflags = 0;
  struct qk_file *uf = r ? NULL : unix_get(fd);
  if (uf) {
    /* AF_UNIX: the data and its ancillary data (unix.c). */
    struct qk_uio u = {iov, (unsigned)m.iovlen, 0};
    for (unsigned i = 0; i < u.cnt; i++)
      u.total += iov[i].len;
    uint64_t room = m.controllen;
    uint8_t from[ADDR_MAX];
    uint32_t fromlen = 0;
    r = qk_unix_recvmsg(uf, &u, flags, m.control, &room, &mflags, from, &fromlen);
    qk_fput(uf);
    if (!m.name)
      fromlen = 0;
    if (r >= 0 && fromlen && qk_copy_to_user(m.name, from, fromlen < m.namelen ? fromlen : m.namelen))
      r = -QK_EFAULT;
    if (r >= 0 && m.name && qk_copy_to_user(umsg + 8, &fromlen, 4))
      r = -QK_EFAULT; /* the sender's name (0: unnamed) */
    if (r >= 0) {
      m.controllen = room;
      m.flags = (int32_t)mflags;
      if (qk_copy_to_user(umsg + 40, &m.controllen, 8) || qk_copy_to_user(umsg + 48, &m.flags, 4))
        r = -QK_EFAULT;
    }
    qk_kfree(iov);
    return r;
  }
  struct qk_anc anc = {0};
  if (!r)
    r = qk_anc_recv_prep(&anc, m.control, m.controllen);
  if (!r) {
    /* namelen is a value here: recvfrom's length word is the field. */
    r = do_recv(fd, iov, (unsigned)m.iovlen, flags, m.name, umsg + 8, &mflags, &anc);
  }
  if (r >= 0 && qk_anc_recv_done(&anc, m.control, &m.controllen, &mflags))
    r = -QK_EFAULT;
  qk_anc_free(&anc);
  if (r >= 0) {
    m.flags = (int32_t)mflags;
    if (qk_copy_to_user(umsg + 40, &m.controllen, 8) || qk_copy_to_user(umsg + 48, &m.flags, 4))
      r = -QK_EFAULT;
  }
  qk_kfree(iov);
  return r;
}

int64_t sys_sendmsg(uint64_t fd, uint64_t umsg, uint64_t flags, uint64_t a3, uint64_t a4,
                    uint64_t a5)
{
  return qk_net_sendmsg(fd, umsg, flags);
}

int64_t sys_recvmsg(uint64_t fd, uint64_t umsg, uint64_t flags, uint64_t a3, uint64_t a4,
                    uint64_t a5)
{
  return qk_net_recvmsg(fd, umsg, flags);
}

/* sendfile from a rootfs file to a host socket: the host's sendfile moves
 * the bytes (no copy through the guest). Other pairs (to files, pipes,
 * guest unix pairs) are -EINVAL, which callers such as busybox and nginx
 * answer with read/write. */
int64_t sys_sendfile(uint64_t out_fd, uint64_t in_fd, uint64_t uoff, uint64_t count, uint64_t a4,
                     uint64_t a5)
{
  int64_t r;
  struct qk_file *out = sget(out_fd, &r);
  if (!out)
    return r == -QK_ENOTSOCK ? -QK_EINVAL : r;
  struct qk_file *in = qk_fget_in(proc()->files, (int)in_fd);
  int64_t off = -1;
  if (!in) {
    r = -QK_EBADF;
  } else if ((in->flags & L_O_ACCMODE) == L_O_WRONLY || (in->flags & L_O_PATH)) {
    r = -QK_EBADF;
  } else if (in->hfd <= QK_HFD_ROOT || in->ops == &sock_ops) {
    r = -QK_EINVAL;
  } else if (uoff && qk_copy_from_user(&off, uoff, 8)) {
    r = -QK_EFAULT;
  } else if (uoff && off < 0) {
    r = -QK_EINVAL;
  } else {
    bool nb = (out->flags & L_O_NONBLOCK) != 0;
    r = qk_qcall(QK_OP_SENDFILE, (uint64_t)out->hfd, (uint64_t)in->hfd,
                 uoff ? (uint64_t)off : ~0ull, count > MAX_RW ? MAX_RW : count, host_wait(nb), 0);
    if (r == -QK_EAGAIN && !nb)
      r = sock_wait(out, POLLOUT); /* nothing went out: the restart sends it */
    if (r > 0 && uoff) {
      off += r;
      if (qk_copy_to_user(uoff, &off, 8))
        r = -QK_EFAULT;
    }
  }
  if (in)
    qk_fput(in);
  qk_fput(out);
  return r;
}
