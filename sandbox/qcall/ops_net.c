/* Guest sockets on host sockets (see ops_net.h). */
#include "ops_net.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>

#include "../../guestkernel/abi/qk_errno.h"
#include "ops_net_anc.h"

_Static_assert(QK_EAGAIN == EAGAIN && QK_EINPROGRESS == EINPROGRESS &&
                   QK_ECONNREFUSED == ECONNREFUSED && QK_EAFNOSUPPORT == EAFNOSUPPORT &&
                   QK_ENOTSOCK == ENOTSOCK && QK_EPIPE == EPIPE && QK_EALREADY == EALREADY,
               "socket errno numbers are the host's");

#define ADDR_MAX 128 /* sizeof(struct sockaddr_storage) */
#define OPT_MAX 256 /* struct tcp_info is 232 bytes */

/* The address family of host socket fd (-1: not a socket). */
static int sock_domain(int fd)
{
  int d = -1;
  socklen_t l = sizeof d;
  return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &d, &l) < 0 ? -1 : d;
}

/* Copies a guest sockaddr of len bytes into ss. netlink: the socket is an
 * AF_NETLINK one (only AF_NETLINK addresses then). */
static int get_addr_for(const struct sbx_net_ctx *c, uint64_t gpa, uint64_t len,
                        struct sockaddr_storage *ss, bool netlink);
static int get_addr(const struct sbx_net_ctx *c, uint64_t gpa, uint64_t len,
                    struct sockaddr_storage *ss)
{
  return get_addr_for(c, gpa, len, ss, false);
}

static int get_addr_for(const struct sbx_net_ctx *c, uint64_t gpa, uint64_t len,
                        struct sockaddr_storage *ss, bool netlink)
{
  if (len > ADDR_MAX)
    return -EINVAL;
  const void *p = sbx_gpa(c->mem, gpa, len);
  if (!p)
    return -EFAULT;
  memset(ss, 0, sizeof *ss);
  memcpy(ss, p, len);
  if (netlink)
    return len >= sizeof(struct sockaddr_nl) && ss->ss_family == AF_NETLINK ? 0 : -EINVAL;
  /* Only the families the guest may use; AF_UNSPEC dissolves a UDP
   * association (connect). */
  if (len >= sizeof(sa_family_t) && ss->ss_family != AF_INET && ss->ss_family != AF_INET6 &&
      ss->ss_family != AF_UNSPEC)
    return -EAFNOSUPPORT;
  return 0;
}

/* Writes a host sockaddr into a guest buffer whose size is the uint32 at
 * len_gpa; the uint32 becomes the full address length (Linux semantics:
 * a short buffer gets a cut address and the real length). */
static int put_addr(const struct sbx_net_ctx *c, uint64_t gpa, uint64_t len_gpa,
                    const struct sockaddr_storage *ss, socklen_t have)
{
  void *lenp = sbx_gpa(c->mem, len_gpa, sizeof(uint32_t));
  if (!lenp)
    return -EFAULT;
  uint32_t room = sbx_load32(lenp);
  if (room > ADDR_MAX)
    room = ADDR_MAX;
  uint32_t n = have < room ? have : room;
  if (n) {
    void *dst = sbx_gpa(c->mem, gpa, n);
    if (!dst)
      return -EFAULT;
    memcpy(dst, ss, n);
  }
  sbx_store32(lenp, have);
  return 0;
}

/* Copies a guest iovec array (same rules as file I/O). */
static int get_iov(const struct sbx_net_ctx *c, uint64_t gpa, uint64_t cnt, struct iovec *iov)
{
  if (cnt > QK_QCALL_MAX_IOV)
    return -EINVAL;
  const void *src = sbx_gpa(c->mem, gpa, cnt * sizeof(struct qk_iov));
  if (cnt && !src)
    return -EFAULT;
  struct qk_iov g[QK_QCALL_MAX_IOV];
  if (cnt)
    memcpy(g, src, cnt * sizeof(struct qk_iov));
  uint64_t total = 0;
  for (uint64_t i = 0; i < cnt; i++) {
    void *p = sbx_gpa(c->mem, g[i].gpa, g[i].len);
    if (!p)
      return -EFAULT;
    if (g[i].len > QK_QCALL_MAX_IO - total)
      return -EINVAL;
    total += g[i].len;
    iov[i].iov_base = p;
    iov[i].iov_len = g[i].len;
  }
  return 0;
}

static int64_t neg(long r)
{
  return r < 0 ? -errno : r;
}

/* Waits until fd has events, the VM stops or timeout_ns passes (~0: none):
 * 1 ready, 0 timed out, or -EINTR (stopping). */
static int wait_fd(const struct sbx_net_ctx *c, int fd, short events, uint64_t timeout_ns)
{
  struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = c->stop_fd, .events = POLLIN}};
  struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000u),
                        .tv_nsec = (long)(timeout_ns % 1000000000u)};
  for (;;) {
    int r = ppoll(p, 2, timeout_ns == ~0ull ? NULL : &ts, NULL);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -errno;
    if (p[1].revents)
      return -EINTR;
    return r > 0;
  }
}

/* QK_NET_WAIT: one bounded wait for readiness after -EAGAIN. True when the
 * call should be tried again. */
static bool short_wait(const struct sbx_net_ctx *c, int fd, short events, bool *allowed)
{
  if (!*allowed)
    return false;
  *allowed = false;
  return wait_fd(c, fd, events, QK_NET_WAIT_NS) == 1;
}

/* Route netlink requests a guest may send: dumps and gets only, the same
 * that an unprivileged process may send; anything that would change the
 * pod's network (RTM_NEW*, RTM_DEL*, RTM_SET*) is -EPERM, as for a process
 * without CAP_NET_ADMIN. The bytes checked are the bytes sent (a host
 * copy). */
static int netlink_check(const uint8_t *buf, size_t len)
{
  size_t off = 0;
  while (off < len) {
    if (len - off < sizeof(struct nlmsghdr))
      return -EINVAL;
    struct nlmsghdr h;
    memcpy(&h, buf + off, sizeof h);
    if (h.nlmsg_len < sizeof h || h.nlmsg_len > len - off)
      return -EINVAL;
    if (!(h.nlmsg_flags & NLM_F_REQUEST))
      return -EINVAL;
    switch (h.nlmsg_type) {
    case RTM_GETLINK:
    case RTM_GETADDR:
    case RTM_GETROUTE:
    case RTM_GETNEIGH:
    case RTM_GETRULE:
    case RTM_GETNETCONF:
      break;
    default:
      return -EPERM; /* the type decides: flag bits of a GET change nothing */
    }
    off += NLMSG_ALIGN(h.nlmsg_len) < len - off ? NLMSG_ALIGN(h.nlmsg_len) : len - off;
  }
  return 0;
}

/* sendmsg on a route netlink socket: the request is gathered into a host
 * buffer, checked (netlink_check) and sent from there. */
static int64_t netlink_send(const struct sbx_net_ctx *c, int fd, const struct iovec *iov,
                            size_t cnt, uint64_t addr, uint64_t alen, int flags)
{
  static _Thread_local uint8_t buf[65536];
  size_t len = 0;
  for (size_t i = 0; i < cnt; i++) {
    if (iov[i].iov_len > sizeof buf - len)
      return -EMSGSIZE;
    memcpy(buf + len, iov[i].iov_base, iov[i].iov_len);
    len += iov[i].iov_len;
  }
  int r = netlink_check(buf, len);
  if (r < 0)
    return r;
  struct sockaddr_storage ss;
  struct iovec one = {buf, len};
  struct msghdr m = {.msg_iov = &one, .msg_iovlen = 1};
  if (addr) {
    if ((r = get_addr_for(c, addr, alen, &ss, true)) < 0)
      return r;
    if (((struct sockaddr_nl *)&ss)->nl_pid != 0)
      return -EPERM; /* to the kernel only, never to another netlink socket */
    m.msg_name = &ss;
    m.msg_namelen = (socklen_t)alen;
  }
  return neg(sendmsg(fd, &m, flags));
}

static int64_t op_socket(const struct sbx_net_ctx *c, const uint64_t *a)
{
  if (a[0] == AF_NETLINK) {
    /* Route netlink only (getifaddrs, ip addr): requests are checked at
     * sendmsg, so the guest can read the pod's interfaces, addresses and
     * routes but change nothing. */
    if (a[1] != SOCK_RAW && a[1] != SOCK_DGRAM)
      return -ESOCKTNOSUPPORT;
    if (a[2] != NETLINK_ROUTE)
      return -EPROTONOSUPPORT;
    int fd = socket(AF_NETLINK, (int)a[1] | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
      return -errno;
    return c->hfd_install(c->q, fd);
  }
  if (a[0] != AF_INET && a[0] != AF_INET6)
    return -EAFNOSUPPORT;
  int proto = (int)a[2];
  if (a[1] == SOCK_STREAM) {
    if (proto != 0 && proto != IPPROTO_TCP)
      return -EPROTONOSUPPORT;
  } else if (a[1] == SOCK_DGRAM) {
    /* ICMP datagram ("ping") sockets: echo requests only, which the host
     * kernel admits for groups in the pod's net.ipv4.ping_group_range
     * (network/netns.c opens it to all); busybox ping falls back to them
     * when a raw socket is EPERM. */
    bool icmp = (a[0] == AF_INET && proto == IPPROTO_ICMP) ||
                (a[0] == AF_INET6 && proto == IPPROTO_ICMPV6);
    if (proto != 0 && proto != IPPROTO_UDP && !icmp)
      return -EPROTONOSUPPORT;
  } else {
    return -EPROTONOSUPPORT;
  }
  int fd = socket((int)a[0], (int)a[1] | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  if (fd < 0)
    return -errno;
  return c->hfd_install(c->q, fd);
}

static int64_t op_addr_call(const struct sbx_net_ctx *c, const uint64_t *a, bool is_connect)
{
  int fd = c->hfd_get(c->q, a[0]);
  if (fd < 0)
    return fd;
  struct sockaddr_storage ss;
  int r = get_addr_for(c, a[1], a[2], &ss, sock_domain(fd) == AF_NETLINK);
  if (r < 0)
    return r;
  if (is_connect)
    return neg(connect(fd, (struct sockaddr *)&ss, (socklen_t)a[2]));
  return neg(bind(fd, (struct sockaddr *)&ss, (socklen_t)a[2]));
}

static int64_t op_accept(const struct sbx_net_ctx *c, const uint64_t *a)
{
  int fd = c->hfd_get(c->q, a[0]);
  if (fd < 0)
    return fd;
  /* Check the guest's buffers before a connection is taken off the queue. */
  if (a[1] && !sbx_gpa(c->mem, a[2], sizeof(uint32_t)))
    return -EFAULT;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (a[3] & ~QK_NET_WAIT)
    return -EINVAL;
  bool may_wait = a[3] & QK_NET_WAIT;
  int nfd;
  while ((nfd = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0 &&
         errno == EAGAIN && short_wait(c, fd, POLLIN, &may_wait))
    len = sizeof ss;
  if (nfd < 0)
    return -errno;
  int64_t h = c->hfd_install(c->q, nfd);
  if (h >= 0 && a[1] && put_addr(c, a[1], a[2], &ss, len) < 0) {
    /* The guest checked its buffer first; a race that unmapped it loses the
     * address only, as on Linux the connection is still returned. */
  }
  return h;
}

static int64_t op_sockname(const struct sbx_net_ctx *c, const uint64_t *a)
{
  int fd = c->hfd_get(c->q, a[0]);
  if (fd < 0)
    return fd;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int r = a[3] ? getpeername(fd, (struct sockaddr *)&ss, &len)
               : getsockname(fd, (struct sockaddr *)&ss, &len);
  if (r < 0)
    return -errno;
  return put_addr(c, a[1], a[2], &ss, len);
}

/* sendmsg of guest handle h: the guest's iovec (iov gpa, cnt), MSG_*
 * flags | QK_NET_WAIT, a guest address (addr gpa, alen; addr 0: none) and
 * the guest's control data (a host copy of ctllen bytes, checked here). */
static int64_t send_msg(const struct sbx_net_ctx *c, uint64_t h, uint64_t iov_gpa, uint64_t cnt,
                        uint64_t gflags, uint64_t addr, uint64_t alen, const uint8_t *raw,
                        size_t ctllen)
{
  int fd = c->hfd_get(c->q, h);
  if (fd < 0)
    return fd;
  const uint64_t allowed =
      MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE | MSG_OOB | MSG_EOR | MSG_CONFIRM | QK_NET_WAIT;
  if (gflags & ~allowed)
    return -EOPNOTSUPP;
  struct iovec iov[QK_QCALL_MAX_IOV];
  int r = get_iov(c, iov_gpa, cnt, iov);
  if (r < 0)
    return r;
  /* The sandbox must never take SIGPIPE for a guest: the guest raises its
   * own from -EPIPE. */
  bool may_wait = gflags & QK_NET_WAIT;
  int flags = (int)(gflags & ~QK_NET_WAIT) | MSG_NOSIGNAL | MSG_DONTWAIT;
  int domain = sock_domain(fd);
  if (domain == AF_NETLINK)
    return ctllen ? -EOPNOTSUPP : netlink_send(c, fd, iov, cnt, addr, alen, flags);
  struct sockaddr_storage ss;
  struct msghdr m = {.msg_iov = iov, .msg_iovlen = cnt};
  _Alignas(struct cmsghdr) uint8_t ctl[QK_NET_CTL_MAX];
  if (ctllen) {
    int type = 0;
    socklen_t tl = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0)
      return -errno;
    int n = sbx_anc_send_filter(raw, ctllen, ctl, domain, type == SOCK_STREAM);
    if (n < 0)
      return n;
    m.msg_control = n ? ctl : NULL;
    m.msg_controllen = (size_t)n;
  }
  if (addr) {
    if ((r = get_addr(c, addr, alen, &ss)) < 0)
      return r;
    m.msg_name = &ss;
    m.msg_namelen = (socklen_t)alen;
  }
  for (;;) {
    ssize_t n = sendmsg(fd, &m, flags);
    if (n < 0 && errno == EAGAIN && short_wait(c, fd, POLLOUT, &may_wait))
      continue;
    return neg(n);
  }
}

static int64_t op_sendmsg(const struct sbx_net_ctx *c, const uint64_t *a)
{
  return send_msg(c, a[0], a[1], a[2], a[3], a[4], a[5], NULL, 0);
}

/* The guest's struct qk_net_msg at gpa: a host copy in *m, its guest bytes
 * returned (NULL: -EFAULT). */
static uint8_t *get_net_msg(const struct sbx_net_ctx *c, uint64_t gpa, struct qk_net_msg *m)
{
  uint8_t *g = sbx_gpa(c->mem, gpa, sizeof *m);
  if (g)
    memcpy(m, g, sizeof *m);
  return g;
}

static int64_t op_sendmsg_ctl(const struct sbx_net_ctx *c, const uint64_t *a)
{
  struct qk_net_msg m;
  if (!get_net_msg(c, a[1], &m))
    return -EFAULT;
  if (m.ctllen > QK_NET_CTL_MAX)
    return -ENOBUFS;
  /* Checked and sent from host copies: the guest cannot change a record
   * between the check and the send. */
  _Alignas(struct cmsghdr) uint8_t raw[QK_NET_CTL_MAX];
  const void *src = m.ctllen ? sbx_gpa(c->mem, m.ctl, m.ctllen) : NULL;
  if (m.ctllen && !src)
    return -EFAULT;
  if (m.ctllen)
    memcpy(raw, src, m.ctllen);
  return send_msg(c, a[0], m.iov, m.iovcnt, a[2], m.addr, m.addrlen, raw, m.ctllen);
}

/* recvmsg of guest handle h into the guest's iovec (iov gpa, cnt) with
 * MSG_* flags | QK_NET_WAIT; m names the host buffers for the address and
 * the control data and gets the results. */
static int64_t recv_msg(const struct sbx_net_ctx *c, uint64_t h, uint64_t iov_gpa, uint64_t cnt,
                        uint64_t gflags, struct msghdr *m)
{
  int fd = c->hfd_get(c->q, h);
  if (fd < 0)
    return fd;
  const uint64_t allowed =
      MSG_DONTWAIT | MSG_PEEK | MSG_WAITALL | MSG_TRUNC | MSG_OOB | QK_NET_WAIT;
  if (gflags & ~allowed)
    return -EOPNOTSUPP;
  struct iovec iov[QK_QCALL_MAX_IOV];
  int r = get_iov(c, iov_gpa, cnt, iov);
  if (r < 0)
    return r;
  m->msg_iov = iov;
  m->msg_iovlen = cnt;
  bool may_wait = gflags & QK_NET_WAIT;
  /* MSG_DONTWAIT wins over MSG_WAITALL: what is there now (the guest
   * gathers the rest, parking in between). Descriptors never reach the
   * guest (ops_net_anc.c closes any): close-on-exec meanwhile. */
  int flags = (int)(gflags & ~QK_NET_WAIT) | MSG_DONTWAIT | MSG_CMSG_CLOEXEC;
  ssize_t n;
  while ((n = recvmsg(fd, m, flags)) < 0 &&
         (errno == EINTR || (errno == EAGAIN && short_wait(c, fd, POLLIN, &may_wait))))
    ;
  m->msg_iov = NULL;
  return n < 0 ? -errno : n;
}

static int64_t op_recvmsg(const struct sbx_net_ctx *c, const uint64_t *a)
{
  if (a[4] && !sbx_gpa(c->mem, a[5], sizeof(uint32_t)))
    return -EFAULT;
  struct sockaddr_storage ss;
  struct msghdr m = {.msg_name = a[4] ? &ss : NULL, .msg_namelen = a[4] ? sizeof ss : 0};
  int64_t done = recv_msg(c, a[0], a[1], a[2], a[3], &m);
  if (done < 0)
    return done;
  if (a[4] && put_addr(c, a[4], a[5], &ss, m.msg_namelen) < 0)
    return -EFAULT;
  return (m.msg_flags & MSG_TRUNC) && !(a[3] & MSG_TRUNC) ? (done | (int64_t)QK_NET_TRUNC) : done;
}

static int64_t op_recvmsg_ctl(const struct sbx_net_ctx *c, const uint64_t *a)
{
  struct qk_net_msg gm;
  uint8_t *g = get_net_msg(c, a[1], &gm);
  if (!g)
    return -EFAULT;
  if (gm.ctllen > QK_NET_CTL_MAX)
    return -EINVAL;
  uint32_t aroom = gm.addrlen > ADDR_MAX ? ADDR_MAX : gm.addrlen;
  /* Every guest buffer is checked before a message is taken. */
  uint8_t *cdst = gm.ctllen ? sbx_gpa(c->mem, gm.ctl, gm.ctllen) : NULL;
  uint8_t *adst = gm.addr ? sbx_gpa(c->mem, gm.addr, aroom) : NULL;
  if ((gm.ctllen && !cdst) || (gm.addr && aroom && !adst))
    return -EFAULT;
  /* The host buffer holds every record the allowed options can produce,
   * so only the guest's size decides what is cut (as on Linux). */
  _Alignas(struct cmsghdr) uint8_t hc[QK_NET_CTL_MAX];
  struct sockaddr_storage ss;
  struct msghdr m = {.msg_name = gm.addr ? &ss : NULL,
                     .msg_namelen = gm.addr ? sizeof ss : 0,
                     .msg_control = hc,
                     .msg_controllen = sizeof hc};
  int64_t done = recv_msg(c, a[0], gm.iov, gm.iovcnt, a[2], &m);
  if (done < 0)
    return done;
  bool ctrunc = m.msg_flags & MSG_CTRUNC;
  size_t w = sbx_anc_recv_filter(hc, m.msg_controllen, cdst, gm.ctllen, &ctrunc);
  uint32_t alen = gm.addr ? m.msg_namelen : 0;
  if (adst && alen)
    memcpy(adst, &ss, alen < aroom ? alen : aroom);
  sbx_store32(g + offsetof(struct qk_net_msg, addrlen), alen);
  sbx_store32(g + offsetof(struct qk_net_msg, ctllen), (uint32_t)w);
  sbx_store32(g + offsetof(struct qk_net_msg, msg_flags),
              (uint32_t)((m.msg_flags & MSG_TRUNC) | (ctrunc ? MSG_CTRUNC : 0)));
  return done;
}

/* The options a guest may set (set) or read (!set). */
static bool opt_allowed(int level, int name, bool set)
{
  if (sbx_anc_opt_allowed(level, name)) /* those that add control data (ops_net_anc.c) */
    return true;
  switch (level) {
  case SOL_SOCKET:
    switch (name) {
    case SO_REUSEADDR:
    case SO_REUSEPORT:
    case SO_KEEPALIVE:
    case SO_RCVBUF:
    case SO_SNDBUF:
    case SO_LINGER:
    case SO_BROADCAST:
    case SO_RCVLOWAT:
    case SO_OOBINLINE:
    case SO_PRIORITY: /* 0..6 without CAP_NET_ADMIN, which the sandbox lacks */
      return true;
    case SO_ERROR:
    case SO_TYPE:
    case SO_DOMAIN:
    case SO_PROTOCOL:
    case SO_ACCEPTCONN:
      return !set;
    }
    return false;
  case IPPROTO_TCP:
    switch (name) {
    case TCP_NODELAY:
    case TCP_KEEPIDLE:
    case TCP_KEEPINTVL:
    case TCP_KEEPCNT:
    case TCP_QUICKACK:
    case TCP_USER_TIMEOUT:
    case TCP_CORK:
    case TCP_DEFER_ACCEPT:
    case TCP_FASTOPEN:
    case TCP_MAXSEG:
    case TCP_CONGESTION: /* setting: the host's allowed algorithms only */
    case TCP_NOTSENT_LOWAT:
    case TCP_LINGER2:
    case TCP_SYNCNT:
    case TCP_WINDOW_CLAMP:
      return true;
    case TCP_INFO:
      return !set;
    }
    return false;
  case SOL_NETLINK: /* route netlink: extended acks, strict checks, notifications */
    return name == NETLINK_EXT_ACK || name == NETLINK_GET_STRICT_CHK ||
           name == NETLINK_ADD_MEMBERSHIP || name == NETLINK_DROP_MEMBERSHIP ||
           name == NETLINK_CAP_ACK || name == NETLINK_NO_ENOBUFS;
  case IPPROTO_IPV6:
    return name == IPV6_V6ONLY || name == IPV6_TCLASS || name == IPV6_UNICAST_HOPS ||
           name == IPV6_MTU_DISCOVER || (name == IPV6_MTU && !set);
  case IPPROTO_IP:
    /* Path MTU discovery and binding before the address is up (Go, QUIC
     * stacks, Envoy); not IP_RECVERR (no error queue for the guest). */
    return name == IP_TOS || name == IP_TTL || name == IP_MTU_DISCOVER || name == IP_FREEBIND ||
           name == IP_BIND_ADDRESS_NO_PORT || (name == IP_MTU && !set);
  }
  return false;
}

static int64_t op_setsockopt(const struct sbx_net_ctx *c, const uint64_t *a)
{
  int fd = c->hfd_get(c->q, a[0]);
  if (fd < 0)
    return fd;
  if (!opt_allowed((int)a[1], (int)a[2], true))
    return -ENOPROTOOPT;
  if (a[4] > OPT_MAX)
    return -EINVAL;
  uint8_t val[OPT_MAX];
  const void *src = a[4] ? sbx_gpa(c->mem, a[3], a[4]) : NULL;
  if (a[4] && !src)
    return -EFAULT;
  if (a[4])
    memcpy(val, src, a[4]);
  return neg(setsockopt(fd, (int)a[1], (int)a[2], val, (socklen_t)a[4]));
}

static int64_t op_getsockopt(const struct sbx_net_ctx *c, const uint64_t *a)
{
  int fd = c->hfd_get(c->q, a[0]);
  if (fd < 0)
    return fd;
  if (!opt_allowed((int)a[1], (int)a[2], false))
    return -ENOPROTOOPT;
  void *lenp = sbx_gpa(c->mem, a[4], sizeof(uint32_t));
  if (!lenp)
    return -EFAULT;
  uint32_t room = sbx_load32(lenp);
  if (room > OPT_MAX)
    room = OPT_MAX;
  uint8_t val[OPT_MAX] = {0};
  socklen_t len = room;
  if (getsockopt(fd, (int)a[1], (int)a[2], val, &len) < 0)
    return -errno;
  if (len > room)
    len = room;
  if (len) {
    void *dst = sbx_gpa(c->mem, a[3], len);
    if (!dst)
      return -EFAULT;
    memcpy(dst, val, len);
  }
  sbx_store32(lenp, len);
  return 0;
}

static int64_t op_poll(const struct sbx_net_ctx *c, const uint64_t *a)
{
  uint64_t n = a[1];
  if (n > QK_NET_POLL_MAX)
    return -EINVAL;
  uint8_t *g = sbx_gpa(c->mem, a[0], n * sizeof(struct qk_net_pollfd));
  if (n && !g)
    return -EFAULT;
  struct qk_net_pollfd in[QK_NET_POLL_MAX];
  struct pollfd p[QK_NET_POLL_MAX + 1];
  if (n)
    memcpy(in, g, n * sizeof in[0]);
  int64_t bad = 0;
  for (uint64_t i = 0; i < n; i++) {
    int fd = c->hfd_get(c->q, in[i].hfd);
    /* A negative fd is skipped by poll; the guest sees POLLNVAL for it. */
    p[i] = (struct pollfd){.fd = fd < 0 ? -1 : fd, .events = in[i].events};
    in[i].revents = 0;
    if (fd < 0) {
      in[i].revents = POLLNVAL;
      bad++;
    }
  }
  p[n] = (struct pollfd){.fd = c->stop_fd, .events = POLLIN};
  struct timespec ts, *tsp = NULL;
  uint64_t tmo = bad ? 0 : a[2];
  if (tmo != ~0ull) {
    ts.tv_sec = (time_t)(tmo / 1000000000u);
    ts.tv_nsec = (long)(tmo % 1000000000u);
    tsp = &ts;
  }
  int r;
  do
    r = ppoll(p, n + 1, tsp, NULL);
  while (r < 0 && errno == EINTR && !tsp);
  if (r < 0)
    return -errno;
  if (p[n].revents)
    return -EINTR;
  int64_t ready = bad;
  for (uint64_t i = 0; i < n; i++) {
    if (p[i].fd < 0)
      continue;
    sbx_pollfd_set_revents(g, i, p[i].revents);
    if (p[i].revents)
      ready++;
  }
  for (uint64_t i = 0; i < n; i++)
    if (p[i].fd < 0)
      sbx_pollfd_set_revents(g, i, POLLNVAL);
  return ready;
}

static int64_t op_ioctl(const struct sbx_net_ctx *c, const uint64_t *a)
{
  int fd = c->hfd_get(c->q, a[0]);
  if (fd < 0)
    return fd;
  switch (a[1]) {
  case SIOCGIFNAME:
  case SIOCGIFFLAGS:
  case SIOCGIFADDR:
  case SIOCGIFDSTADDR:
  case SIOCGIFBRDADDR:
  case SIOCGIFNETMASK:
  case SIOCGIFMTU:
  case SIOCGIFHWADDR:
  case SIOCGIFINDEX:
  case SIOCGIFTXQLEN: {
    /* Read-only interface queries (ip, ifconfig): a struct ifreq in and
     * out, copied; the name is bounded by the host copy. */
    void *g = sbx_gpa(c->mem, a[2], sizeof(struct ifreq));
    if (!g)
      return -EFAULT;
    struct ifreq r;
    memcpy(&r, g, sizeof r);
    r.ifr_name[IFNAMSIZ - 1] = 0;
    if (ioctl(fd, (unsigned long)a[1], &r) < 0)
      return -errno;
    memcpy(g, &r, sizeof r);
    return 0;
  }
  case SIOCGIFCONF: {
    /* The interface list: a[2] the guest's buffer (0: the size only), a[3]
     * its length; answers the bytes used (or needed). Whole entries only,
     * as Linux fills it. */
    struct ifreq rq[64];
    struct ifconf ic = {.ifc_len = 0, .ifc_req = NULL};
    if (a[2]) {
      if (a[3] > sizeof rq)
        return -EINVAL;
      ic.ifc_len = (int)(a[3] / sizeof(struct ifreq) * sizeof(struct ifreq));
      ic.ifc_req = rq;
    }
    void *g = a[2] ? sbx_gpa(c->mem, a[2], a[3]) : NULL;
    if (a[2] && a[3] && !g)
      return -EFAULT;
    if (ioctl(fd, SIOCGIFCONF, &ic) < 0)
      return -errno;
    if (g && ic.ifc_len > 0)
      memcpy(g, rq, (size_t)ic.ifc_len);
    return ic.ifc_len;
  }
  case SIOCINQ:
  case SIOCOUTQ:
    break;
  default:
    return -ENOTTY;
  }
  int v = 0;
  if (ioctl(fd, (unsigned long)a[1], &v) < 0)
    return -errno;
  return v;
}

/* sendfile(2) refused (a seccomp filter without it): one bounded chunk
 * through a host buffer, with sendfile's semantics (the file position
 * advances by what the socket took). */
static int64_t copy_file(const struct sbx_net_ctx *c, int out, int in, off_t *off, size_t count,
                         bool may_wait)
{
  char buf[65536];
  size_t want = count < sizeof buf ? count : sizeof buf;
  off_t at = off ? *off : lseek(in, 0, SEEK_CUR);
  if (at < 0)
    return -errno;
  ssize_t got = pread(in, buf, want, at);
  if (got <= 0)
    return neg(got);
  /* sendmsg, not send: the jail's seccomp filter allows only the calls
   * the other socket ops use. */
  struct iovec iov = {buf, (size_t)got};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  ssize_t n;
  while ((n = sendmsg(out, &m, MSG_DONTWAIT | MSG_NOSIGNAL)) < 0 && errno == EAGAIN &&
         short_wait(c, out, POLLOUT, &may_wait))
    ;
  if (n < 0)
    return -errno;
  if (off)
    *off = at + n;
  else if (lseek(in, at + n, SEEK_SET) < 0)
    return -errno;
  return n;
}

static int64_t op_sendfile(const struct sbx_net_ctx *c, const uint64_t *a)
{
  int out = c->hfd_get(c->q, a[0]), in = c->hfd_get(c->q, a[1]);
  if (out < 0 || in < 0)
    return -EBADF;
  if (a[4] & ~QK_NET_WAIT)
    return -EINVAL;
  /* Only file -> socket: the guest's other descriptors (stdio sinks, the
   * rootfs directory) must not become either end. */
  struct stat so, si;
  if (fstat(out, &so) < 0 || fstat(in, &si) < 0)
    return -errno;
  if (!S_ISSOCK(so.st_mode) || !S_ISREG(si.st_mode))
    return -EINVAL;
  size_t count = a[3] > QK_QCALL_MAX_IO ? QK_QCALL_MAX_IO : (size_t)a[3];
  off_t off = (off_t)a[2];
  if (a[2] != ~0ull && off < 0)
    return -EINVAL;
  bool may_wait = a[4] & QK_NET_WAIT;
  /* Refused once (the run jail's filter): refused for good, so the copy
   * needs no trap (a SIGSYS per call: nginx sends every file this way). */
  static atomic_bool refused;
  for (;;) {
    if (atomic_load_explicit(&refused, memory_order_relaxed))
      return copy_file(c, out, in, a[2] == ~0ull ? NULL : &off, count, may_wait);
    ssize_t n = sendfile(out, in, a[2] == ~0ull ? NULL : &off, count);
    if (n < 0 && errno == EAGAIN && short_wait(c, out, POLLOUT, &may_wait))
      continue;
    if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
      atomic_store(&refused, true);
      continue;
    }
    return neg(n);
  }
}

int64_t sbx_qcall_net(const struct sbx_net_ctx *c, uint32_t op, const uint64_t *a)
{
  int fd;
  switch (op) {
  case QK_OP_SOCKET:
    return op_socket(c, a);
  case QK_OP_BIND:
  case QK_OP_CONNECT:
    return op_addr_call(c, a, op == QK_OP_CONNECT);
  case QK_OP_LISTEN:
    if ((fd = c->hfd_get(c->q, a[0])) < 0)
      return fd;
    return neg(listen(fd, a[1] > 4096 ? 4096 : (int)a[1]));
  case QK_OP_ACCEPT:
    return op_accept(c, a);
  case QK_OP_SOCKNAME:
    return op_sockname(c, a);
  case QK_OP_SENDMSG:
    return op_sendmsg(c, a);
  case QK_OP_RECVMSG:
    return op_recvmsg(c, a);
  case QK_OP_SHUTDOWN:
    if ((fd = c->hfd_get(c->q, a[0])) < 0)
      return fd;
    if (a[1] > SHUT_RDWR)
      return -EINVAL;
    return neg(shutdown(fd, (int)a[1]));
  case QK_OP_SETSOCKOPT:
    return op_setsockopt(c, a);
  case QK_OP_GETSOCKOPT:
    return op_getsockopt(c, a);
  case QK_OP_NET_POLL:
    return op_poll(c, a);
  case QK_OP_SOCK_IOCTL:
    return op_ioctl(c, a);
  case QK_OP_SENDFILE:
    return op_sendfile(c, a);
  case QK_OP_SENDMSG_CTL:
    return op_sendmsg_ctl(c, a);
  case QK_OP_RECVMSG_CTL:
    return op_recvmsg_ctl(c, a);
  default:
    return -ENOSYS;
  }
}
