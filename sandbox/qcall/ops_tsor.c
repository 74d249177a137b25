/* Host side of the guest's TSoR opcodes (see ops_tsor.h).
 *
 * The guest kernel routes a TCP socket here when its destination is a TSoR
 * pod (guestkernel/net/tsor.c). Each request is one QCall (a shared-memory
 * ring the worker polls: no VM exit while it spins) served with the TSoR
 * client library: bytes are copied once, guest pages <-> the socket's ring
 * in the arena tsord shares, and tsord moves them ring to ring. */
#include "ops_tsor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <quark/tsor.h>

#include "../../guestkernel/abi/qk_errno.h"

_Static_assert(QK_EAGAIN == EAGAIN && QK_EINPROGRESS == EINPROGRESS &&
                   QK_ECONNREFUSED == ECONNREFUSED && QK_ECONNRESET == ECONNRESET &&
                   QK_EPIPE == EPIPE,
               "guest errno numbers are the host's");

/* How long a waiting QK_OP_TSOR_POLL looks at the rings before it sleeps
 * on tsord's eventfd (a wake-up through the eventfd, the worker and the
 * halted vCPU costs tens of µs here). */
#define TSOR_POLL_SPIN_NS 20000

/* Sockets per pod and bytes per ring: the arena is a sparse memfd (pages
 * are used as rings fill), 2 x 256 KiB per socket slot. */
#define SBX_TSOR_SLOTS 256u

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static tsor_client *client;
static struct qk_tsor_info info;
static struct sbx_qcall **owner; /* per socket slot: the QCall instance using it */
static uint32_t nslots;

static uint64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int sbx_tsor_setup(const char *socket_path, const char *pod_ip, const char *cidrs, q_error **err)
{
  if (client)
    return q_error_make(err, EALREADY, "tsor: already set up");
  struct in_addr ip;
  if (!pod_ip || inet_pton(AF_INET, pod_ip, &ip) != 1)
    return q_error_make(err, EINVAL, "tsor: pod IP %s is not an IPv4 address",
                        pod_ip ? pod_ip : "(none)");
  struct qk_tsor_info in = {.pod_ip = ip.s_addr};
  if (cidrs && *cidrs) {
    char *dup = strdup(cidrs), *save = NULL;
    if (!dup)
      return q_error_make(err, ENOMEM, "tsor");
    for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
      uint32_t a;
      uint8_t len;
      if (in.ncidrs == QK_TSOR_MAX_CIDRS || tsor_parse_cidr(t, &a, &len) < 0) {
        int r = q_error_make(err, EINVAL, "tsor: bad or too many CIDRs (%u at most): %s",
                             QK_TSOR_MAX_CIDRS, t);
        free(dup);
        return r;
      }
      in.cidr[in.ncidrs] = a;
      in.cidr_len[in.ncidrs++] = len;
    }
    free(dup);
  } else {
    in.cidr[0] = ip.s_addr & htonl(0xffff0000u);
    in.cidr_len[0] = 16;
    in.ncidrs = 1;
  }
  struct tsor_client_config cc = {.socket_path = socket_path,
                                  .pod_ip = pod_ip,
                                  .slots = SBX_TSOR_SLOTS,
                                  .ring_size = TSOR_DEFAULT_RING};
  tsor_client *c;
  if (tsor_client_open(&cc, &c, err) < 0)
    return q_error_wrap(err, "tsor (%s)", socket_path);
  owner = calloc(SBX_TSOR_SLOTS, sizeof *owner);
  if (!owner) {
    tsor_client_free(c);
    return q_error_make(err, ENOMEM, "tsor");
  }
  nslots = SBX_TSOR_SLOTS;
  in.ring_size = TSOR_DEFAULT_RING;
  info = in;
  client = c;
  return 0;
}

void sbx_tsor_forget(struct sbx_qcall *q)
{
  if (!client)
    return;
  pthread_mutex_lock(&lock);
  for (uint32_t i = 0; i < nslots; i++)
    if (owner[i] == q) {
      tsor_client_abort(client, (int)i);
      owner[i] = NULL;
    }
  pthread_mutex_unlock(&lock);
}

static bool mine(const struct sbx_net_ctx *c, uint64_t sd)
{
  return sd < nslots && owner[sd] == c->q;
}

/* Copies and checks a guest iovec (like the core's read_iov). */
static int guest_iov(const struct sbx_net_ctx *c, uint64_t gpa, uint64_t cnt, struct qk_iov *g,
                     void **ptr)
{
  if (cnt > QK_QCALL_MAX_IOV)
    return -EINVAL;
  const void *src = sbx_gpa(c->mem, gpa, cnt * sizeof(struct qk_iov));
  if (cnt && !src)
    return -EFAULT;
  if (cnt)
    memcpy(g, src, cnt * sizeof(struct qk_iov));
  uint64_t total = 0;
  for (uint64_t i = 0; i < cnt; i++) {
    if (g[i].len > QK_QCALL_MAX_IO - total)
      return -EINVAL;
    total += g[i].len;
    if (!(ptr[i] = sbx_gpa(c->mem, g[i].gpa, g[i].len)))
      return -EFAULT;
  }
  return 0;
}

static int64_t op_xfer(const struct sbx_net_ctx *c, const uint64_t *a, bool send)
{
  struct qk_iov g[QK_QCALL_MAX_IOV];
  void *ptr[QK_QCALL_MAX_IOV];
  int r = guest_iov(c, a[1], a[2], g, ptr);
  if (r < 0)
    return r;
  int64_t done = 0;
  for (uint64_t i = 0; i < a[2]; i++) {
    if (!g[i].len)
      continue;
    ssize_t n = send ? tsor_client_send(client, (int)a[0], ptr[i], g[i].len, TSOR_NONBLOCK)
                     : tsor_client_recv(client, (int)a[0], ptr[i], g[i].len, TSOR_NONBLOCK);
    if (n < 0)
      return done ? done : n;
    done += n;
    if ((uint64_t)n < g[i].len || (!send && n == 0))
      break;
  }
  return done;
}

/* Ready entries of the TSoR set t (revents written). */
static int scan(const struct sbx_net_ctx *c, struct qk_net_pollfd *t, uint64_t n,
                struct tsor_pollsd *p)
{
  int ready = 0;
  tsor_client_process(client);
  for (uint64_t i = 0; i < n; i++) {
    p[i] = (struct tsor_pollsd){.sd = mine(c, t[i].hfd) ? (int)t[i].hfd : -1,
                                .events = (short)(t[i].events & (POLLIN | POLLOUT))};
  }
  int r = tsor_client_poll(client, p, (int)n, 0);
  (void)r;
  for (uint64_t i = 0; i < n; i++) {
    short ev = p[i].revents;
    int16_t out = (int16_t)((ev & TSOR_POLLIN ? POLLIN : 0) | (ev & TSOR_POLLOUT ? POLLOUT : 0) |
                            (ev & TSOR_POLLERR ? POLLERR : 0) | (ev & TSOR_POLLHUP ? POLLHUP : 0));
    if (p[i].sd < 0)
      out = POLLNVAL;
    t[i].revents = out;
    if (out)
      ready++;
  }
  return ready;
}

/* Waits for readiness of TSoR entries t and host-socket entries h (host
 * memory; revents written) up to tmo ns (~0: none). Returns the ready count
 * or -EINTR when the VM stops. Called without the lock. */
static int64_t wait_ready(const struct sbx_net_ctx *c, struct qk_net_pollfd *t, uint64_t nt,
                          struct qk_net_pollfd *h, uint64_t nh, uint64_t tmo)
{
  static __thread struct tsor_pollsd tp[QK_NET_POLL_MAX];
  static __thread struct pollfd p[QK_NET_POLL_MAX + 3];
  int64_t bad = 0;
  for (uint64_t i = 0; i < nh; i++) {
    int fd = c->hfd_get(c->q, h[i].hfd);
    p[i] = (struct pollfd){.fd = fd < 0 ? -1 : fd, .events = h[i].events};
    if (fd < 0)
      bad++;
  }
  p[nh] = (struct pollfd){.fd = tsor_client_event_fd(client), .events = POLLIN};
  p[nh + 1] = (struct pollfd){.fd = tsor_client_control_fd(client), .events = POLLIN};
  p[nh + 2] = (struct pollfd){.fd = c->stop_fd, .events = POLLIN};
  uint64_t start = now_ns(), deadline = tmo == ~0ull ? ~0ull : start + tmo;
  int64_t ready = 0;
  bool host_checked = false;
  for (;;) {
    pthread_mutex_lock(&lock);
    ready = scan(c, t, nt, tp);
    pthread_mutex_unlock(&lock);
    if (nh && (!host_checked || ready || bad)) {
      /* Host sockets: one look without waiting. */
      int r = poll(p, nh, 0);
      host_checked = true;
      if (r > 0 || bad)
        break;
    }
    uint64_t now = now_ns();
    if (ready || now >= deadline)
      break;
    if (now - start < TSOR_POLL_SPIN_NS) {
      __builtin_ia32_pause();
      continue;
    }
    /* Announce the sleep, look once more, sleep on tsord's eventfd, the
     * host sockets, tsord's socket (it went away) and the VM's stop. */
    pthread_mutex_lock(&lock);
    tsor_client_sleep_begin(client);
    ready = scan(c, t, nt, tp);
    pthread_mutex_unlock(&lock);
    if (ready) {
      tsor_client_sleep_end(client);
      break;
    }
    /* Several VMs of one pod may sleep on the one eventfd: slices keep a
     * wake-up taken by another from being lost for long. */
    uint64_t left = deadline == ~0ull ? 50000000u : deadline - now;
    if (left > 50000000u)
      left = 50000000u;
    struct timespec ts = {(time_t)(left / 1000000000u), (long)(left % 1000000000u)};
    int r = ppoll(p, nh + 3, &ts, NULL);
    tsor_client_sleep_end(client);
    if (r > 0 && p[nh + 2].revents)
      return -EINTR;
    if (r > 0 && p[nh + 1].revents) {
      pthread_mutex_lock(&lock);
      tsor_client_alive(client); /* marks the client dead: its sockets report ECONNRESET */
      pthread_mutex_unlock(&lock);
      p[nh + 1].fd = -1;
    }
    host_checked = false;
  }
  for (uint64_t i = 0; i < nh; i++) {
    h[i].revents = p[i].fd < 0 ? POLLNVAL : p[i].revents;
    if (p[i].fd >= 0 && p[i].revents)
      ready++;
  }
  return ready + bad;
}

static int64_t op_poll(const struct sbx_net_ctx *c, const uint64_t *a)
{
  uint64_t nt = a[1], nh = a[3];
  if (nt > QK_NET_POLL_MAX || nh > QK_NET_POLL_MAX)
    return -EINVAL;
  uint8_t *gt = sbx_gpa(c->mem, a[0], nt * sizeof(struct qk_net_pollfd));
  uint8_t *gh = sbx_gpa(c->mem, a[2], nh * sizeof(struct qk_net_pollfd));
  if ((nt && !gt) || (nh && !gh))
    return -EFAULT;
  static __thread struct qk_net_pollfd t[QK_NET_POLL_MAX], h[QK_NET_POLL_MAX];
  memcpy(t, gt, nt * sizeof t[0]);
  memcpy(h, gh, nh * sizeof h[0]);
  int64_t r = wait_ready(c, t, nt, h, nh, a[4]);
  if (r < 0)
    return r;
  for (uint64_t i = 0; i < nt; i++)
    sbx_pollfd_set_revents(gt, i, t[i].revents);
  for (uint64_t i = 0; i < nh; i++)
    sbx_pollfd_set_revents(gh, i, h[i].revents);
  return r;
}

/* With the lock held: a send, receive or accept that found nothing to do
 * waits up to wait_ns (capped at QK_NET_WAIT_NS; the guest asks only when
 * it has nothing else to run) for its socket, then tries once more. */
static int64_t wait_retry(const struct sbx_net_ctx *c, uint64_t sd, int16_t ev, uint64_t wait_ns)
{
  if (!wait_ns)
    return 0;
  struct qk_net_pollfd t = {(uint32_t)sd, ev, 0};
  pthread_mutex_unlock(&lock);
  int64_t r = wait_ready(c, &t, 1, NULL, 0, wait_ns < QK_NET_WAIT_NS ? wait_ns : QK_NET_WAIT_NS);
  pthread_mutex_lock(&lock);
  return r > 0 && mine(c, sd);
}

int64_t sbx_qcall_tsor(const struct sbx_net_ctx *c, uint32_t op, const uint64_t *a)
{
  if (!client)
    return -ENOSYS;
  if (op == QK_OP_TSOR_INFO) {
    void *g = sbx_gpa(c->mem, a[0], sizeof info);
    if (!g)
      return -EFAULT;
    memcpy(g, &info, sizeof info);
    return 0;
  }
  if (op == QK_OP_TSOR_POLL)
    return op_poll(c, a);
  int64_t r;
  pthread_mutex_lock(&lock);
  if (op == QK_OP_TSOR_CTL && a[0] == QK_TSOR_CTL_SOCKET) {
    r = tsor_client_socket(client);
    if (r >= 0 && (uint32_t)r < nslots)
      owner[r] = c->q;
    goto out;
  }
  if (!mine(c, op == QK_OP_TSOR_CTL ? a[1] : a[0])) {
    r = -EBADF;
    goto out;
  }
  switch (op) {
  case QK_OP_TSOR_CTL: {
    int sd = (int)a[1];
    switch (a[0]) {
    case QK_TSOR_CTL_SHUTDOWN:
      r = tsor_client_shutdown(client, sd);
      break;
    case QK_TSOR_CTL_CLOSE:
    case QK_TSOR_CTL_ABORT:
      r = a[0] == QK_TSOR_CTL_CLOSE ? tsor_client_close(client, sd) : tsor_client_abort(client, sd);
      owner[sd] = NULL;
      break;
    case QK_TSOR_CTL_STATUS:
      r = tsor_client_connect_status(client, sd);
      break;
    case QK_TSOR_CTL_NREAD:
      tsor_client_process(client);
      r = tsor_client_nread(client, sd);
      break;
    default:
      r = -EINVAL;
    }
    break;
  }
  case QK_OP_TSOR_CONNECT: {
    struct sockaddr_in dst = {.sin_family = AF_INET,
                              .sin_addr.s_addr = (uint32_t)a[1],
                              .sin_port = htons((uint16_t)a[2])};
    r = a[2] > 65535 ? -EINVAL : tsor_client_connect_nb(client, (int)a[0], &dst);
    break;
  }
  case QK_OP_TSOR_LISTEN:
    r = a[1] > 65535 ? -EINVAL
                     : tsor_client_listen(client, (int)a[0], (uint16_t)a[1],
                                          (int)(a[2] > 65535 ? 65535 : a[2]));
    break;
  case QK_OP_TSOR_ACCEPT: {
    struct qk_tsor_peer *g = a[1] ? sbx_gpa(c->mem, a[1], sizeof *g) : NULL;
    if (a[1] && !g) {
      r = -EFAULT;
      break;
    }
    struct sockaddr_in peer;
    r = tsor_client_accept(client, (int)a[0], &peer, TSOR_NONBLOCK);
    if (r == -EAGAIN && wait_retry(c, a[0], POLLIN, a[2]))
      r = tsor_client_accept(client, (int)a[0], &peer, TSOR_NONBLOCK);
    if (r >= 0 && (uint32_t)r < nslots) {
      owner[r] = c->q;
      if (g)
        *g = (struct qk_tsor_peer){peer.sin_addr.s_addr, ntohs(peer.sin_port)};
    }
    break;
  }
  case QK_OP_TSOR_SEND:
  case QK_OP_TSOR_RECV:
    r = op_xfer(c, a, op == QK_OP_TSOR_SEND);
    if (r == -EAGAIN && wait_retry(c, a[0], op == QK_OP_TSOR_SEND ? POLLOUT : POLLIN, a[3]))
      r = op_xfer(c, a, op == QK_OP_TSOR_SEND);
    break;
  default:
    r = -ENOSYS;
  }
out:
  pthread_mutex_unlock(&lock);
  return r;
}
