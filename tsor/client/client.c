/* The TSoR client library: what a sandbox links to carry its pod's TSoR
 * sockets through tsord. Bytes go through the arena's rings (no syscall per
 * send or receive); tsord is told about new bytes only when it may not have
 * seen them (tx_armed), and woken only when it sleeps. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "channel/ring.h"
#include "quark/tsor.h"

#define CLIENT_SPIN_NS 30000

/* Spin budget and yielding, as in tsord (TSOR_SPIN_NS, TSOR_SPIN_YIELD). */
static int64_t spin_ns(void)
{
  static int64_t v = -1;
  if (v < 0) {
    const char *e = getenv("TSOR_SPIN_NS");
    v = e ? atoll(e) : CLIENT_SPIN_NS;
  }
  return v;
}

static bool spin_yield(void)
{
  static int v = -1;
  if (v < 0) {
    const char *e = getenv("TSOR_SPIN_YIELD");
    v = e ? atoi(e) != 0 : 1;
  }
  return v;
}

enum csock_state { CS_FREE = 0, CS_IDLE, CS_CONNECTING, CS_LISTEN, CS_OPEN, CS_CLOSING, CS_DGRAM };

struct pending_accept {
  uint32_t sd, addr;
  uint16_t port;
};

struct csock {
  uint8_t st;
  bool got_answer; /* CONNECTED/LISTENED arrived */
  int res;
  bool shut_wr;
  uint64_t rx_reported;
  struct pending_accept *acc;
  uint32_t acc_head, acc_n, acc_cap;
  uint16_t port; /* datagram: bound port, 0 while unbound */
};

struct tsor_client {
  int fd, kick_daemon, kick_client;
  void *base;
  uint64_t size;
  struct tsor_shm_hdr *h;
  struct tsor_shm_req *req;
  struct tsor_shm_cqe *cqr;
  struct csock *socks;
  int socket_res;
  bool socket_answered;
  bool daemon_gone;
  bool external; /* the caller owns the arena mapping */
};

static struct tsor_shm_slot *slot(tsor_client *c, int sd) { return tsor_shm_slot(c->base, c->h, (uint32_t)sd); }

/* ---- attach ---- */

int tsor_client_open(const struct tsor_client_config *cfg, tsor_client **out, q_error **err)
{
  struct tsor_shm_hdr lay;
  uint32_t nslots = cfg->slots ? cfg->slots : TSOR_DEFAULT_SLOTS;
  uint32_t rs = cfg->ring_size ? cfg->ring_size : TSOR_DEFAULT_RING;
  if (tsor_shm_layout(nslots, rs, &lay) < 0)
    return q_error_make(err, EINVAL, "tsor: %u slots of %u-byte rings is out of bounds", nslots, rs);
  struct in_addr ip;
  if (cfg->pod_ip == NULL || inet_pton(AF_INET, cfg->pod_ip, &ip) != 1)
    return q_error_make(err, EINVAL, "tsor: bad pod IP \"%s\"", cfg->pod_ip ? cfg->pod_ip : "");
  tsor_client *c = calloc(1, sizeof(*c));
  if (c == NULL) return q_error_make(err, ENOMEM, "tsor client");
  c->fd = c->kick_daemon = c->kick_client = -1;
  int memfd = -1, r;
  c->socks = calloc(nslots, sizeof(*c->socks));
  if (c->socks == NULL) {
    r = q_error_make(err, ENOMEM, "tsor client");
    goto fail;
  }
  c->size = lay.size;
  if (cfg->arena_base != NULL) {
    c->external = true;
    c->base = cfg->arena_base;
    memfd = fcntl(cfg->arena_fd, F_DUPFD_CLOEXEC, 0);
    if (memfd < 0) {
      r = q_error_make(err, errno, "tsor: arena fd");
      goto fail;
    }
  } else {
    memfd = memfd_create("tsor-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (memfd < 0 || ftruncate(memfd, (off_t)lay.size) < 0 ||
        fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
      r = q_error_make(err, errno, "tsor: arena memfd");
      goto fail;
    }
    c->base = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (c->base == MAP_FAILED) {
      c->base = NULL;
      r = q_error_make(err, errno, "tsor: map arena");
      goto fail;
    }
  }
  /* A reused arena (a restarted sandbox) must not carry old indices. */
  memset(c->base, 0, lay.data_off);
  memcpy(c->base, &lay, sizeof(lay));
  c->h = c->base;
  c->req = (struct tsor_shm_req *)((char *)c->base + lay.req_off);
  c->cqr = (struct tsor_shm_cqe *)((char *)c->base + lay.cq_off);

  c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", cfg->socket_path);
  if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    r = q_error_make(err, errno, "tsor: connect to tsord at %s", cfg->socket_path);
    goto fail;
  }
  struct tsor_hello hello = {.magic = TSOR_SHM_MAGIC, .version = TSOR_SHM_VERSION, .pod_ip = ip.s_addr,
                             .size = lay.size, .offset = cfg->arena_base ? cfg->arena_offset : 0};
  struct iovec iov = {&hello, sizeof(hello)};
  union {
    char buf[CMSG_SPACE(2 * sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof(u));
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                      .msg_controllen = CMSG_SPACE(sizeof(int))};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &memfd, sizeof(int));
  if (sendmsg(c->fd, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof(hello)) {
    r = q_error_make(err, errno, "tsor: hello to tsord");
    goto fail;
  }
  struct tsor_hello_reply rep;
  iov = (struct iovec){&rep, sizeof(rep)};
  mh = (struct msghdr){.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
  ssize_t n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
  if (n != (ssize_t)sizeof(rep)) {
    r = q_error_make(err, n < 0 ? errno : EPROTO, "tsor: reply from tsord");
    goto fail;
  }
  rep.msg[sizeof(rep.msg) - 1] = '\0';
  if (rep.status < 0) {
    r = q_error_make(err, -rep.status, "tsor: tsord refused pod %s: %s", cfg->pod_ip, rep.msg);
    goto fail;
  }
  for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(2 * sizeof(int))) {
      int fds[2];
      memcpy(fds, CMSG_DATA(cm), sizeof(fds));
      c->kick_daemon = fds[0];
      c->kick_client = fds[1];
    }
  if (c->kick_daemon < 0 || c->kick_client < 0) {
    r = q_error_make(err, EPROTO, "tsor: tsord sent no eventfds");
    goto fail;
  }
  close(memfd);
  *out = c;
  return 0;
fail:
  if (memfd >= 0) close(memfd);
  tsor_client_free(c);
  return r;
}

void tsor_client_free(tsor_client *c)
{
  if (c == NULL) return;
  /* Closing the unix socket is the goodbye: tsord resets whatever is still
   * open and frees the arena once no peer can write into it. */
  if (c->fd >= 0) close(c->fd);
  if (c->kick_daemon >= 0) close(c->kick_daemon);
  if (c->kick_client >= 0) close(c->kick_client);
  if (c->socks && c->h)
    for (uint32_t i = 0; i < c->h->nslots; i++) free(c->socks[i].acc);
  if (c->base && !c->external) munmap(c->base, c->size);
  free(c->socks);
  free(c);
}

int tsor_client_event_fd(const tsor_client *c) { return c->kick_client; }

/* ---- rings ---- */

static void handle_cqe(tsor_client *c, const struct tsor_shm_cqe *e)
{
  if (e->op == TSOR_CQE_SOCKET) {
    c->socket_res = e->res;
    c->socket_answered = true;
    if (e->res >= 0 && (uint32_t)e->res < c->h->nslots) {
      struct csock *s = &c->socks[e->res];
      free(s->acc);
      memset(s, 0, sizeof(*s));
      s->st = CS_IDLE;
    }
    return;
  }
  if (e->sd >= c->h->nslots) return;
  struct csock *s = &c->socks[e->sd];
  switch (e->op) {
  case TSOR_CQE_CONNECTED:
    s->got_answer = true;
    s->res = e->res;
    if (s->st == CS_CONNECTING) s->st = e->res == 0 ? CS_OPEN : CS_IDLE;
    break;
  case TSOR_CQE_LISTENED:
    s->got_answer = true;
    s->res = e->res;
    if (e->res == 0) s->st = CS_LISTEN;
    break;
  case TSOR_CQE_BOUND:
    s->got_answer = true;
    s->res = e->res;
    if (e->res == 0) s->port = e->port;
    break;
  case TSOR_CQE_ACCEPTED:
    if (e->arg >= c->h->nslots) break;
    {
      struct csock *n = &c->socks[e->arg];
      free(n->acc);
      memset(n, 0, sizeof(*n));
      n->st = CS_OPEN;
    }
    if (s->acc_n == s->acc_cap) {
      uint32_t cap = s->acc_cap ? s->acc_cap * 2 : 16;
      struct pending_accept *v = malloc(sizeof(*v) * cap);
      if (v == NULL) break;
      for (uint32_t i = 0; i < s->acc_n; i++) v[i] = s->acc[(s->acc_head + i) % s->acc_cap];
      free(s->acc);
      s->acc = v;
      s->acc_cap = cap;
      s->acc_head = 0;
    }
    s->acc[(s->acc_head + s->acc_n) % s->acc_cap] = (struct pending_accept){e->arg, e->addr, e->port};
    s->acc_n++;
    break;
  case TSOR_CQE_RELEASED:
    free(s->acc);
    memset(s, 0, sizeof(*s));
    break;
  default: break;
  }
}

void tsor_client_process(tsor_client *c)
{
  uint32_t head = c->h->cq.head, tail = tsor_load_acq(&c->h->cq.tail);
  while (head != tail) {
    struct tsor_shm_cqe e = c->cqr[head % c->h->qentries];
    head++;
    handle_cqe(c, &e);
  }
  tsor_store_rel(&c->h->cq.head, head);
}

void tsor_client_sleep_begin(tsor_client *c)
{
  tsor_store_rel(&c->h->client_sleeping, 1);
  tsor_fence();
}

void tsor_client_sleep_end(tsor_client *c)
{
  tsor_store_rel(&c->h->client_sleeping, 0);
  uint64_t v;
  ssize_t r = read(c->kick_client, &v, sizeof(v));
  (void)r; /* EAGAIN: nobody kicked */
}

static void kick(tsor_client *c)
{
  tsor_fence();
  if (tsor_load_acq(&c->h->daemon_sleeping)) {
    uint64_t one = 1;
    ssize_t r = write(c->kick_daemon, &one, sizeof(one));
    (void)r;
  }
}

/* Blocks until ready(c, arg) or the deadline: spin briefly, then announce
 * the sleep, look once more, and sleep on the eventfd. Returns 0 when
 * ready, -ETIMEDOUT, or -ECONNRESET when tsord went away. */
typedef bool (*ready_fn)(tsor_client *c, void *arg);

static bool daemon_alive(tsor_client *c)
{
  if (c->daemon_gone) return false;
  struct pollfd p = {.fd = c->fd, .events = POLLIN};
  if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR | POLLIN))) {
    char b;
    if (recv(c->fd, &b, 1, MSG_DONTWAIT) <= 0) c->daemon_gone = true;
  }
  return !c->daemon_gone;
}

static int wait_for(tsor_client *c, ready_fn ready, void *arg, int timeout_ms)
{
  int64_t start = q_mono_ns();
  int64_t deadline = timeout_ms < 0 ? INT64_MAX : start + (int64_t)timeout_ms * 1000000;
  for (;;) {
    tsor_client_process(c);
    if (ready(c, arg)) return 0;
    int64_t now = q_mono_ns();
    if (now >= deadline) return -ETIMEDOUT;
    if (now - start < spin_ns()) {
      if (spin_yield())
        sched_yield();
      else
        __builtin_ia32_pause();
      continue;
    }
    tsor_store_rel(&c->h->client_sleeping, 1);
    tsor_fence();
    tsor_client_process(c);
    if (ready(c, arg)) {
      tsor_store_rel(&c->h->client_sleeping, 0);
      return 0;
    }
    if (!daemon_alive(c)) {
      tsor_store_rel(&c->h->client_sleeping, 0);
      return -ECONNRESET;
    }
    struct pollfd p[2] = {{.fd = c->kick_client, .events = POLLIN}, {.fd = c->fd, .events = POLLIN}};
    int64_t left = deadline == INT64_MAX ? 1000 : (deadline - now) / 1000000 + 1;
    if (left > 1000) left = 1000;
    poll(p, 2, (int)left);
    uint64_t v;
    ssize_t r = read(c->kick_client, &v, sizeof(v));
    (void)r;
    tsor_store_rel(&c->h->client_sleeping, 0);
  }
}

static bool req_space(tsor_client *c, void *arg)
{
  (void)arg;
  return c->h->req.tail - tsor_load_acq(&c->h->req.head) < c->h->qentries || c->daemon_gone;
}

static int submit_req(tsor_client *c, const struct tsor_shm_req *q)
{
  if (c->daemon_gone) return -ECONNRESET;
  if (!req_space(c, NULL)) {
    kick(c);
    int r = wait_for(c, req_space, NULL, -1);
    if (r < 0) return r;
    if (c->daemon_gone) return -ECONNRESET;
  }
  uint32_t tail = c->h->req.tail;
  c->req[tail % c->h->qentries] = *q;
  tsor_store_rel(&c->h->req.tail, tail + 1);
  kick(c);
  return 0;
}

static int submit(tsor_client *c, uint32_t op, int sd, uint32_t addr, uint16_t port, uint32_t arg)
{
  struct tsor_shm_req q = {.op = op, .sd = (uint32_t)sd, .addr = addr, .port = port, .arg = arg};
  return submit_req(c, &q);
}

/* ---- socket calls ---- */

static struct csock *get(tsor_client *c, int sd)
{
  if (sd < 0 || (uint32_t)sd >= c->h->nslots || c->socks[sd].st == CS_FREE || c->socks[sd].st == CS_CLOSING)
    return NULL;
  return &c->socks[sd];
}

static bool socket_answered(tsor_client *c, void *arg)
{
  (void)arg;
  return c->socket_answered || c->daemon_gone;
}

static int new_socket(tsor_client *c, uint32_t kind)
{
  c->socket_answered = false;
  int r = submit(c, TSOR_REQ_SOCKET, 0, 0, 0, kind);
  if (r < 0) return r;
  r = wait_for(c, socket_answered, NULL, -1);
  if (r < 0) return r;
  if (!c->socket_answered) return -ECONNRESET;
  return c->socket_res;
}

int tsor_client_socket(tsor_client *c) { return new_socket(c, 0); }

int tsor_client_socket_dgram(tsor_client *c)
{
  int sd = new_socket(c, 1);
  if (sd >= 0) c->socks[sd].st = CS_DGRAM;
  return sd;
}

static bool answered(tsor_client *c, void *arg)
{
  return ((struct csock *)arg)->got_answer || c->daemon_gone;
}

static int connect_sd(tsor_client *c, int sd, const struct sockaddr_in *dst, const struct sockaddr_in *src,
                      bool nonblock);

int tsor_client_connect(tsor_client *c, int sd, const struct sockaddr_in *dst)
{
  return connect_sd(c, sd, dst, NULL, false);
}

int tsor_client_connect_from(tsor_client *c, int sd, const struct sockaddr_in *dst, const struct sockaddr_in *src)
{
  return connect_sd(c, sd, dst, src, false);
}

static int connect_sd(tsor_client *c, int sd, const struct sockaddr_in *dst, const struct sockaddr_in *src,
                      bool nonblock)
{
  struct csock *s = get(c, sd);
  if (s == NULL) return -EBADF;
  if (s->st == CS_OPEN) return -EISCONN;
  if (s->st != CS_IDLE) return -EINVAL;
  s->st = CS_CONNECTING;
  s->got_answer = false;
  int r = submit_req(c, &(struct tsor_shm_req){.op = TSOR_REQ_CONNECT, .sd = (uint32_t)sd,
                                              .addr = dst->sin_addr.s_addr, .port = ntohs(dst->sin_port),
                                              .arg = src ? src->sin_addr.s_addr : 0,
                                              .pad = src ? ntohs(src->sin_port) : 0});
  if (r < 0) return r;
  if (nonblock) return -EINPROGRESS;
  r = wait_for(c, answered, s, -1);
  if (r < 0) return r;
  if (!s->got_answer) return -ECONNRESET;
  return s->res;
}

int tsor_client_connect_nb(tsor_client *c, int sd, const struct sockaddr_in *dst)
{
  return connect_sd(c, sd, dst, NULL, true);
}

int tsor_client_connect_status(tsor_client *c, int sd)
{
  if (sd < 0 || (uint32_t)sd >= c->h->nslots) return -EBADF;
  tsor_client_process(c);
  struct csock *s = &c->socks[sd];
  if (s->st == CS_OPEN) return 0;
  if (s->st == CS_CONNECTING) return c->daemon_gone ? -ECONNRESET : -EINPROGRESS;
  if (s->st == CS_IDLE && s->got_answer && s->res < 0) return s->res;
  return -ENOTCONN;
}

int tsor_client_nread(tsor_client *c, int sd)
{
  struct csock *s = get(c, sd);
  if (s == NULL) return -EBADF;
  if (s->st != CS_OPEN) return 0;
  struct tsor_shm_slot *sl = slot(c, sd);
  int64_t n = tsor_bring_used(sl->rx_head, tsor_load_acq(&sl->rx_tail), c->h->ring_size);
  return n > 0 ? (int)n : 0;
}

int tsor_client_control_fd(const tsor_client *c) { return c->fd; }

bool tsor_client_alive(tsor_client *c) { return daemon_alive(c); }

static int listen_flags(tsor_client *c, int sd, uint16_t port, int backlog, uint32_t flags)
{
  struct csock *s = get(c, sd);
  if (s == NULL) return -EBADF;
  if (s->st != CS_IDLE) return -EINVAL;
  s->got_answer = false;
  uint32_t b = backlog > 0 ? (uint32_t)backlog : 1;
  if (b > 65535) b = 65535;
  int r = submit(c, TSOR_REQ_LISTEN, sd, 0, port, b | flags);
  if (r < 0) return r;
  r = wait_for(c, answered, s, -1);
  if (r < 0) return r;
  if (!s->got_answer) return -ECONNRESET;
  return s->res;
}

static bool acceptable(tsor_client *c, void *arg)
{
  return ((struct csock *)arg)->acc_n > 0 || c->daemon_gone;
}

int tsor_client_listen(tsor_client *c, int sd, uint16_t port, int backlog)
{
  return listen_flags(c, sd, port, backlog, 0);
}

int tsor_client_listen_egress(tsor_client *c, int sd, int backlog)
{
  return listen_flags(c, sd, 0, backlog, TSOR_LISTEN_EGRESS);
}

int tsor_client_accept(tsor_client *c, int lsd, struct sockaddr_in *peer, int flags)
{
  struct csock *s = get(c, lsd);
  if (s == NULL) return -EBADF;
  if (s->st != CS_LISTEN) return -EINVAL;
  tsor_client_process(c);
  if (s->acc_n == 0) {
    if (flags & TSOR_NONBLOCK) return -EAGAIN;
    int r = wait_for(c, acceptable, s, -1);
    if (r < 0) return r;
    if (s->acc_n == 0) return -ECONNRESET;
  }
  struct pending_accept a = s->acc[s->acc_head];
  s->acc_head = (s->acc_head + 1) % s->acc_cap;
  s->acc_n--;
  /* Tells tsord the backlog has room again. */
  struct tsor_shm_slot *sl = slot(c, lsd);
  tsor_store_rel(&sl->accepted, sl->accepted + 1);
  if (peer) {
    memset(peer, 0, sizeof(*peer));
    peer->sin_family = AF_INET;
    peer->sin_addr.s_addr = a.addr;
    peer->sin_port = htons(a.port);
  }
  return (int)a.sd;
}

/* Socket state as the application sees it: 1 ready, 0 would block, <0 error. */
static int can_send(tsor_client *c, int sd, struct csock *s)
{
  struct tsor_shm_slot *sl = slot(c, sd);
  uint32_t st = tsor_load_acq(&sl->dstate);
  if (st & TSOR_ST_RESET) return -ECONNRESET;
  if (s->shut_wr || (st & TSOR_ST_PEER_GONE)) return -EPIPE;
  if (s->st != CS_OPEN) return -ENOTCONN;
  if (c->daemon_gone) return -ECONNRESET;
  return sl->tx_tail - tsor_load_acq(&sl->tx_head) < c->h->ring_size;
}

static int can_recv(tsor_client *c, int sd, struct csock *s)
{
  struct tsor_shm_slot *sl = slot(c, sd);
  uint32_t st = tsor_load_acq(&sl->dstate); /* before rx_tail: EOF is published after the last bytes */
  if (tsor_load_acq(&sl->rx_tail) != sl->rx_head) return 1;
  if (st & TSOR_ST_RESET) return -ECONNRESET;
  if (st & TSOR_ST_RX_EOF) return 1;
  if (s->st != CS_OPEN) return -ENOTCONN;
  if (c->daemon_gone) return -ECONNRESET;
  return 0;
}

struct sd_arg {
  int sd;
  struct csock *s;
  bool tx;
};

static bool sd_ready(tsor_client *c, void *arg)
{
  struct sd_arg *a = arg;
  return (a->tx ? can_send(c, a->sd, a->s) : can_recv(c, a->sd, a->s)) != 0;
}

ssize_t tsor_client_send(tsor_client *c, int sd, const void *buf, size_t len, int flags)
{
  struct csock *s = get(c, sd);
  if (s == NULL) return -EBADF;
  struct tsor_shm_slot *sl = slot(c, sd);
  char *ring = (char *)c->base + tsor_shm_tx_off(c->h, (uint32_t)sd);
  size_t done = 0;
  while (done < len) {
    int ok = can_send(c, sd, s);
    if (ok < 0) return done ? (ssize_t)done : ok;
    if (ok == 0) {
      if (flags & TSOR_NONBLOCK) return done ? (ssize_t)done : -EAGAIN;
      struct sd_arg a = {sd, s, true};
      int r = wait_for(c, sd_ready, &a, -1);
      if (r < 0) return done ? (ssize_t)done : r;
      continue;
    }
    uint64_t tail = sl->tx_tail;
    uint64_t room = c->h->ring_size - (tail - tsor_load_acq(&sl->tx_head));
    size_t n = len - done < room ? len - done : (size_t)room;
    tsor_bring_put(ring, c->h->ring_size, tail, (const char *)buf + done, n);
    tsor_store_rel(&sl->tx_tail, tail + n);
    done += n;
    tsor_fence();
    if (!__atomic_exchange_n(&sl->tx_armed, 1, __ATOMIC_ACQ_REL)) {
      int r = submit(c, TSOR_REQ_TX, sd, 0, 0, 0);
      if (r < 0) return done ? (ssize_t)done : r;
    }
  }
  return (ssize_t)done;
}

ssize_t tsor_client_recv(tsor_client *c, int sd, void *buf, size_t len, int flags)
{
  struct csock *s = get(c, sd);
  if (s == NULL) return -EBADF;
  struct tsor_shm_slot *sl = slot(c, sd);
  for (;;) {
    int ok = can_recv(c, sd, s);
    if (ok < 0) return ok;
    if (ok > 0) break;
    if (flags & TSOR_NONBLOCK) return -EAGAIN;
    struct sd_arg a = {sd, s, false};
    int r = wait_for(c, sd_ready, &a, -1);
    if (r < 0) return r;
  }
  uint64_t head = sl->rx_head, tail = tsor_load_acq(&sl->rx_tail);
  int64_t avail = tsor_bring_used(head, tail, c->h->ring_size);
  if (avail <= 0) return 0; /* EOF (or a broken index, which reads as EOF) */
  size_t n = len < (uint64_t)avail ? len : (size_t)avail;
  const char *ring = (const char *)c->base + tsor_shm_rx_off(c->h, (uint32_t)sd);
  tsor_bring_get(ring, c->h->ring_size, head, buf, n);
  tsor_store_rel(&sl->rx_head, head + n);
  if (tsor_credit_should_report(head + n, s->rx_reported, c->h->ring_size)) {
    s->rx_reported = head + n;
    submit(c, TSOR_REQ_RXDONE, sd, 0, 0, 0);
  }
  return (ssize_t)n;
}

/* ---- datagrams ---- */

int tsor_client_bind(tsor_client *c, int sd, uint16_t port)
{
  struct csock *s = get(c, sd);
  if (s == NULL) return -EBADF;
  if (s->st != CS_DGRAM) return -EOPNOTSUPP;
  if (s->port != 0) return -EINVAL;
  s->got_answer = false;
  int r = submit(c, TSOR_REQ_BIND, sd, 0, port, 0);
  if (r < 0) return r;
  r = wait_for(c, answered, s, -1);
  if (r < 0) return r;
  if (!s->got_answer) return -ECONNRESET;
  return s->res;
}

struct room_arg {
  int sd;
  uint64_t need;
};

static bool dgram_room(tsor_client *c, void *arg)
{
  struct room_arg *a = arg;
  struct tsor_shm_slot *sl = slot(c, a->sd);
  return c->h->ring_size - (sl->tx_tail - tsor_load_acq(&sl->tx_head)) >= a->need || c->daemon_gone;
}

ssize_t tsor_client_sendto(tsor_client *c, int sd, const void *buf, size_t len, const struct sockaddr_in *dst, int flags)
{
  struct csock *s = get(c, sd);
  if (s == NULL) return -EBADF;
  if (s->st != CS_DGRAM) return -EOPNOTSUPP;
  uint64_t need = sizeof(struct tsor_dgram_hdr) + len;
  if (len > TSOR_DGRAM_MAX || need > c->h->ring_size) return -EMSGSIZE;
  if (s->port == 0) {
    int r = tsor_client_bind(c, sd, 0);
    if (r < 0) return r;
  }
  struct room_arg a = {sd, need};
  if (!dgram_room(c, &a)) {
    if (flags & TSOR_NONBLOCK) return -EAGAIN;
    int r = wait_for(c, dgram_room, &a, -1);
    if (r < 0) return r;
  }
  if (c->daemon_gone) return -ECONNRESET;
  struct tsor_shm_slot *sl = slot(c, sd);
  char *ring = (char *)c->base + tsor_shm_tx_off(c->h, (uint32_t)sd);
  struct tsor_dgram_hdr h = {.len = (uint32_t)len, .addr = dst->sin_addr.s_addr, .port = ntohs(dst->sin_port)};
  uint64_t tail = sl->tx_tail;
  tsor_bring_put(ring, c->h->ring_size, tail, &h, sizeof(h));
  tsor_bring_put(ring, c->h->ring_size, tail + sizeof(h), buf, len);
  tsor_store_rel(&sl->tx_tail, tail + need);
  tsor_fence();
  if (!__atomic_exchange_n(&sl->tx_armed, 1, __ATOMIC_ACQ_REL)) {
    int r = submit(c, TSOR_REQ_TX, sd, 0, 0, 0);
    if (r < 0) return r;
  }
  return (ssize_t)len;
}

static bool dgram_ready(tsor_client *c, void *arg)
{
  struct tsor_shm_slot *sl = slot(c, *(int *)arg);
  return tsor_load_acq(&sl->rx_tail) != sl->rx_head || c->daemon_gone;
}

ssize_t tsor_client_recvfrom(tsor_client *c, int sd, void *buf, size_t len, struct sockaddr_in *src, int flags)
{
  struct csock *s = get(c, sd);
  if (s == NULL) return -EBADF;
  if (s->st != CS_DGRAM) return -EOPNOTSUPP;
  if (!dgram_ready(c, &sd)) {
    if (flags & TSOR_NONBLOCK) return -EAGAIN;
    int r = wait_for(c, dgram_ready, &sd, -1);
    if (r < 0) return r;
  }
  if (c->daemon_gone) return -ECONNRESET;
  struct tsor_shm_slot *sl = slot(c, sd);
  const char *ring = (const char *)c->base + tsor_shm_rx_off(c->h, (uint32_t)sd);
  uint64_t head = sl->rx_head, tail = tsor_load_acq(&sl->rx_tail);
  struct tsor_dgram_hdr h;
  if (tsor_bring_used(head, tail, c->h->ring_size) < (int64_t)sizeof(h)) return -EPROTO;
  tsor_bring_get(ring, c->h->ring_size, head, &h, sizeof(h));
  if (h.len > TSOR_DGRAM_MAX || tsor_bring_used(head, tail, c->h->ring_size) < (int64_t)(sizeof(h) + h.len))
    return -EPROTO;
  size_t n = len < h.len ? len : h.len;
  tsor_bring_get(ring, c->h->ring_size, head + sizeof(h), buf, n);
  tsor_store_rel(&sl->rx_head, head + sizeof(h) + h.len);
  if (src) {
    memset(src, 0, sizeof(*src));
    src->sin_family = AF_INET;
    src->sin_addr.s_addr = h.addr;
    src->sin_port = htons(h.port);
  }
  return (ssize_t)n;
}

int tsor_client_shutdown(tsor_client *c, int sd)
{
  struct csock *s = get(c, sd);
  if (s == NULL) return -EBADF;
  if (s->st != CS_OPEN) return -ENOTCONN;
  if (s->shut_wr) return 0;
  s->shut_wr = true;
  return submit(c, TSOR_REQ_SHUTDOWN, sd, 0, 0, 0);
}

int tsor_client_abort(tsor_client *c, int sd)
{
  struct csock *s = get(c, sd);
  if (s == NULL) return -EBADF;
  if (s->st == CS_LISTEN) return tsor_client_close(c, sd);
  s->st = CS_CLOSING;
  return submit(c, TSOR_REQ_ABORT, sd, 0, 0, 0);
}

int tsor_client_close(tsor_client *c, int sd)
{
  struct csock *s = get(c, sd);
  if (s == NULL) return -EBADF;
  if (s->st == CS_LISTEN) {
    /* Connections queued for accept() die with the listener, as in TCP. */
    tsor_client_process(c);
    while (s->acc_n > 0) {
      struct pending_accept a = s->acc[s->acc_head];
      s->acc_head = (s->acc_head + 1) % s->acc_cap;
      s->acc_n--;
      tsor_client_close(c, (int)a.sd);
    }
  }
  s->st = CS_CLOSING; /* until tsord says RELEASED */
  return submit(c, TSOR_REQ_CLOSE, sd, 0, 0, 0);
}

struct poll_arg {
  struct tsor_pollsd *p;
  int n, ready;
};

static int poll_scan(tsor_client *c, struct tsor_pollsd *p, int n)
{
  int ready = 0;
  for (int i = 0; i < n; i++) {
    p[i].revents = 0;
    struct csock *s = get(c, p[i].sd);
    if (s == NULL) {
      p[i].revents = TSOR_POLLERR;
    } else if (s->st == CS_LISTEN) {
      if (s->acc_n > 0) p[i].revents |= TSOR_POLLIN;
    } else if (s->st == CS_DGRAM) {
      int sd = p[i].sd;
      struct room_arg ra = {sd, 2048};
      if (dgram_ready(c, &sd)) p[i].revents |= TSOR_POLLIN;
      if (dgram_room(c, &ra)) p[i].revents |= TSOR_POLLOUT;
    } else if (s->st == CS_IDLE && s->got_answer && s->res < 0) {
      p[i].revents |= TSOR_POLLOUT | TSOR_POLLERR; /* a refused non-blocking connect */
    } else if (s->st == CS_CONNECTING) {
      if (c->daemon_gone) p[i].revents |= TSOR_POLLERR | TSOR_POLLHUP;
    } else if (s->st == CS_OPEN) {
      int r = can_recv(c, p[i].sd, s);
      if (r != 0) p[i].revents |= TSOR_POLLIN;
      if (r < 0) p[i].revents |= TSOR_POLLERR | TSOR_POLLHUP;
      int w = can_send(c, p[i].sd, s);
      if (w > 0) p[i].revents |= TSOR_POLLOUT;
      if (w < 0) p[i].revents |= TSOR_POLLERR;
    }
    p[i].revents &= (short)(p[i].events | TSOR_POLLERR | TSOR_POLLHUP);
    if (p[i].revents) ready++;
  }
  return ready;
}

static bool poll_ready(tsor_client *c, void *arg)
{
  struct poll_arg *a = arg;
  a->ready = poll_scan(c, a->p, a->n);
  return a->ready > 0;
}

int tsor_client_poll(tsor_client *c, struct tsor_pollsd *p, int n, int timeout_ms)
{
  struct poll_arg a = {p, n, 0};
  tsor_client_process(c);
  if (poll_ready(c, &a) || timeout_ms == 0) return a.ready;
  int r = wait_for(c, poll_ready, &a, timeout_ms);
  if (r == -ETIMEDOUT) return 0;
  if (r < 0) return r;
  return a.ready;
}
