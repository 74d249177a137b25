/* The tcp fabric: one TCP connection per node pair carrying the RDMA-shaped
 * protocol as frames (kind, immediate, length, key, address, payload), so
 * that clusters without RDMA run the same channel protocol.
 *
 * It behaves like a software RC queue pair driven by tsord's own thread:
 * - sends are work requests queued per connection and written with
 *   non-blocking writev straight from the source region (the client's write
 *   ring); the completion comes once the kernel has taken every byte;
 * - received payloads are read straight into the region the frame names
 *   (the peer client's read ring), so the data is copied once by the
 *   kernel, where a NIC would DMA it;
 * - a frame needs a posted receive: without one the connection stops
 *   reading (TCP flow control holds the sender back), like an RC queue pair
 *   retrying "receiver not ready";
 * - poll() does all the work; event_fd is an epoll fd over the sockets.
 * Everything is non-blocking, so two nodes never wait on each other. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fabric/fabric.h"

enum { FRAME_WRITE_IMM = 1, FRAME_SEND = 2 };

struct frame {
  uint32_t kind, imm, len, rkey;
  uint64_t raddr;
};
_Static_assert(sizeof(struct frame) == 24, "tcp fabric frame");

#define IDX_BITS 20u
#define IDX_MASK ((1u << IDX_BITS) - 1u)
#define CONNECT_TIMEOUT_NS (5ll * 1000000000ll)

/* One queued send: header, then payload from a region or inline bytes. */
struct wr {
  struct frame h;
  const char *payload; /* writes: in the source region */
  uint32_t len;
  uint32_t done; /* bytes of header+payload written */
  uint64_t wr_id;
  bool is_write;
  uint8_t msg[TSOR_FMSG_MAX];
};

struct tcp_fabric;

struct tsor_fconn {
  struct tcp_fabric *f;
  int fd;
  void *ctx;
  bool connecting, up, down, want_out, reading;
  int64_t started;
  uint32_t posted;
  /* send queue */
  struct wr *q;
  uint32_t qhead, qn, qcap;
  /* receive state: header, then payload */
  struct frame rh;
  uint32_t rgot; /* bytes of the current frame (header + payload) read */
  uint8_t rmsg[TSOR_FMSG_MAX];
  struct tsor_fconn *next;
};

struct tcp_fabric {
  struct tsor_fabric base;
  struct tsor_cq cq;
  int lfd, epfd;
  struct tsor_region **regions;
  uint32_t nregions, gen;
  struct tsor_fconn *conns;
};

static void push(struct tcp_fabric *f, enum tsor_fc_kind kind, struct tsor_fconn *c, int status)
{
  struct tsor_fabric_cqe e = {.kind = kind, .conn = c, .status = status};
  tsor_cq_push(&f->cq, &e, false);
}

static void conn_down(struct tsor_fconn *c, int status)
{
  if (c->down) return;
  c->down = true;
  if (c->fd >= 0) {
    epoll_ctl(c->f->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    shutdown(c->fd, SHUT_RDWR);
  }
  push(c->f, TSOR_FC_DOWN, c, status);
}

static void set_events(struct tsor_fconn *c)
{
  if (c->down) return;
  /* RDHUP even while not reading: a peer that went away is noticed without
   * posted receives, as a queue pair learns of a disconnect. */
  struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = c};
  if (c->connecting || c->want_out) ev.events |= EPOLLOUT;
  if (!c->connecting && c->posted > 0) ev.events |= EPOLLIN;
  /* Without posted receives we stop reading: TCP holds the sender back. */
  c->reading = (ev.events & EPOLLIN) != 0;
  epoll_ctl(c->f->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static struct tsor_fconn *conn_new(struct tcp_fabric *f, int fd, bool connecting, void *ctx)
{
  struct tsor_fconn *c = calloc(1, sizeof(*c));
  if (c == NULL) return NULL;
  c->f = f;
  c->fd = fd;
  c->ctx = ctx;
  c->connecting = connecting;
  c->started = q_mono_ns();
  int one = 1, idle = 10, intvl = 5, cnt = 3;
  unsigned int user_timeout_ms = 30000;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  /* A node that vanishes without a reset (power loss, partition) is found
   * out in about half a minute, idle or busy, and its channels reset. */
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof(user_timeout_ms));
  struct epoll_event ev = {.events = connecting ? EPOLLOUT : 0, .data.ptr = c};
  if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    free(c);
    return NULL;
  }
  c->next = f->conns;
  f->conns = c;
  return c;
}

static struct tsor_region *region_lookup(struct tcp_fabric *f, uint32_t key)
{
  uint32_t i = key & IDX_MASK;
  if (i >= f->nregions || f->regions[i] == NULL || f->regions[i]->key != key) return NULL;
  return f->regions[i];
}

/* ---- sending ---- */

static void flush(struct tsor_fconn *c)
{
  while (c->qn > 0 && !c->down) {
    struct iovec iov[2 * 16];
    int n = 0;
    /* Gather up to 16 queued requests into one writev. */
    for (uint32_t k = 0; k < c->qn && k < 16; k++) {
      struct wr *w = &c->q[(c->qhead + k) % c->qcap];
      uint32_t off = w->done;
      if (off < sizeof(w->h)) {
        iov[n++] = (struct iovec){(char *)&w->h + off, sizeof(w->h) - off};
        off = sizeof(w->h);
      }
      uint32_t poff = off - (uint32_t)sizeof(w->h);
      /* Messages travel inside their queue entry (which moves as the queue
       * grows); writes straight from the source region. */
      const char *p = w->is_write ? w->payload : (const char *)w->msg;
      if (w->len > poff) iov[n++] = (struct iovec){(char *)p + poff, w->len - poff};
    }
    ssize_t r = writev(c->fd, iov, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      conn_down(c, -errno);
      return;
    }
    /* Retire what was fully written. */
    size_t left = (size_t)r;
    while (left > 0 && c->qn > 0) {
      struct wr *w = &c->q[c->qhead];
      size_t need = sizeof(w->h) + w->len - w->done;
      size_t take = left < need ? left : need;
      w->done += (uint32_t)take;
      left -= take;
      if (w->done == sizeof(w->h) + w->len) {
        struct tsor_fabric_cqe e = {.kind = w->is_write ? TSOR_FC_WRITE_DONE : TSOR_FC_SEND_DONE, .conn = c,
                                    .wr_id = w->wr_id, .len = w->len};
        tsor_cq_push(&c->f->cq, &e, false);
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qn--;
      }
    }
  }
  bool want = c->qn > 0;
  if (want != c->want_out) {
    c->want_out = want;
    set_events(c);
  }
}

static int enqueue(struct tsor_fconn *c, const struct wr *w)
{
  if (c->down || c->connecting) return -ENOTCONN;
  if (c->qn == c->qcap) {
    uint32_t n = c->qcap ? c->qcap * 2 : 64;
    struct wr *v = malloc(sizeof(*v) * n);
    if (v == NULL) return -ENOMEM;
    for (uint32_t i = 0; i < c->qn; i++) v[i] = c->q[(c->qhead + i) % c->qcap];
    free(c->q);
    c->q = v;
    c->qcap = n;
    c->qhead = 0;
  }
  c->q[(c->qhead + c->qn) % c->qcap] = *w;
  c->qn++;
  flush(c);
  return 0;
}

/* ---- receiving ---- */

/* Reads what the socket has; returns false when the connection went down. */
static bool receive(struct tsor_fconn *c)
{
  while (!c->down && c->posted > 0) {
    if (c->rgot < sizeof(c->rh)) {
      ssize_t r = recv(c->fd, (char *)&c->rh + c->rgot, sizeof(c->rh) - c->rgot, 0);
      if (r == 0) {
        conn_down(c, 0);
        return false;
      }
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return true;
        conn_down(c, -errno);
        return false;
      }
      c->rgot += (uint32_t)r;
      if (c->rgot < sizeof(c->rh)) continue;
      struct frame *h = &c->rh;
      h->kind = ntohl(h->kind);
      h->imm = ntohl(h->imm);
      h->len = ntohl(h->len);
      h->rkey = ntohl(h->rkey);
      h->raddr = be64toh(h->raddr);
      bool ok = h->kind == FRAME_SEND ? h->len <= TSOR_FMSG_MAX : h->kind == FRAME_WRITE_IMM;
      if (ok && h->kind == FRAME_WRITE_IMM && h->len > 0) {
        struct tsor_region *reg = region_lookup(c->f, h->rkey);
        ok = reg != NULL && h->raddr <= reg->len && h->len <= reg->len - h->raddr;
      }
      if (!ok) {
        conn_down(c, -EPROTO); /* what a bad rkey does to an RC queue pair */
        return false;
      }
    }
    struct frame *h = &c->rh;
    uint32_t pgot = c->rgot - (uint32_t)sizeof(*h);
    if (pgot < h->len) {
      char *dst;
      if (h->kind == FRAME_SEND) {
        dst = (char *)c->rmsg;
      } else {
        /* Looked up again for every piece: the region must still be there. */
        struct tsor_region *reg = region_lookup(c->f, h->rkey);
        if (reg == NULL) {
          conn_down(c, -EPROTO);
          return false;
        }
        dst = (char *)reg->base + h->raddr;
      }
      ssize_t r = recv(c->fd, dst + pgot, h->len - pgot, 0);
      if (r == 0) {
        conn_down(c, 0);
        return false;
      }
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return true;
        conn_down(c, -errno);
        return false;
      }
      c->rgot += (uint32_t)r;
      if (c->rgot - sizeof(*h) < h->len) continue;
    }
    struct tsor_fabric_cqe e = {.kind = h->kind == FRAME_SEND ? TSOR_FC_RECV_MSG : TSOR_FC_RECV_IMM,
                                .conn = c, .imm = h->imm, .len = h->len};
    if (h->kind == FRAME_SEND) memcpy(e.msg, c->rmsg, h->len);
    tsor_cq_push(&c->f->cq, &e, false);
    c->posted--;
    c->rgot = 0;
  }
  if (c->posted == 0 && c->reading) set_events(c);
  return true;
}

/* ---- connections ---- */

static void finish_connect(struct tsor_fconn *c)
{
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err == EINPROGRESS || err == EALREADY) return;
  c->connecting = false;
  if (err != 0) {
    conn_down(c, -err);
    return;
  }
  c->up = true;
  set_events(c);
  push(c->f, TSOR_FC_UP, c, 0);
}

static void accept_all(struct tcp_fabric *f)
{
  for (;;) {
    int fd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    struct tsor_fconn *c = conn_new(f, fd, false, NULL);
    if (c == NULL) {
      close(fd);
      continue;
    }
    c->up = true;
    set_events(c);
    push(f, TSOR_FC_UP, c, 0);
  }
}

static int tcp_poll(struct tsor_fabric *fb, struct tsor_fabric_cqe *out, int max)
{
  struct tcp_fabric *f = (struct tcp_fabric *)fb;
  struct epoll_event evs[32];
  int n = epoll_wait(f->epfd, evs, 32, 0);
  for (int i = 0; i < n; i++) {
    struct tsor_fconn *c = evs[i].data.ptr;
    if (c == NULL) {
      accept_all(f);
      continue;
    }
    if (c->down) continue;
    if (c->connecting) {
      finish_connect(c);
      continue;
    }
    if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) receive(c);
    if (!c->down && !c->reading && (evs[i].events & (EPOLLRDHUP | EPOLLHUP))) {
      char b;
      if (recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0) conn_down(c, 0);
    }
    if (!c->down && (evs[i].events & (EPOLLOUT | EPOLLERR))) flush(c);
  }
  /* Connects that hang (a node that drops SYNs) fail after a while. */
  int64_t now = q_mono_ns();
  for (struct tsor_fconn *c = f->conns; c; c = c->next)
    if (c->connecting && !c->down && now - c->started > CONNECT_TIMEOUT_NS) conn_down(c, -ETIMEDOUT);
  return tsor_cq_pop(&f->cq, out, max);
}

static int tcp_arm(struct tsor_fabric *fb)
{
  struct tcp_fabric *f = (struct tcp_fabric *)fb;
  /* Socket readiness lives in the epoll fd itself; only completions queued
   * by our own calls need the caller to come back. Connect timeouts are
   * checked on the next poll (tsord wakes at least once a second). */
  return __atomic_load_n(&f->cq.count, __ATOMIC_ACQUIRE) != 0;
}

static int tcp_open(const struct sockaddr_in *listen_addr, struct tsor_fabric **out, q_error **err)
{
  struct tcp_fabric *f = calloc(1, sizeof(*f));
  if (f == NULL) return q_error_make(err, ENOMEM, "tcp fabric");
  f->base.ops = &tsor_fabric_tcp;
  f->lfd = -1;
  int r = tsor_cq_init(&f->cq);
  if (r < 0) {
    free(f);
    return q_error_make(err, -r, "tcp fabric: eventfd");
  }
  f->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (f->epfd < 0) {
    r = errno;
    goto fail;
  }
  if (listen_addr != NULL) {
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (f->lfd < 0) {
      r = errno;
      goto fail;
    }
    setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (bind(f->lfd, (const struct sockaddr *)listen_addr, sizeof(*listen_addr)) < 0 || listen(f->lfd, 64) < 0 ||
        epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->lfd, &ev) < 0) {
      r = errno;
      goto fail;
    }
  }
  *out = &f->base;
  return 0;
fail:
  if (f->lfd >= 0) close(f->lfd);
  if (f->epfd >= 0) close(f->epfd);
  tsor_cq_destroy(&f->cq);
  free(f);
  char a[INET_ADDRSTRLEN] = "?";
  if (listen_addr) inet_ntop(AF_INET, &listen_addr->sin_addr, a, sizeof(a));
  return q_error_make(err, r, "tcp fabric: listen on %s:%u", a, listen_addr ? ntohs(listen_addr->sin_port) : 0);
}

static void tcp_release(struct tsor_fconn *c);

static void tcp_close(struct tsor_fabric *fb)
{
  struct tcp_fabric *f = (struct tcp_fabric *)fb;
  while (f->conns) tcp_release(f->conns);
  if (f->lfd >= 0) close(f->lfd);
  close(f->epfd);
  tsor_cq_destroy(&f->cq);
  free(f->regions);
  free(f);
}

static int tcp_event_fd(struct tsor_fabric *fb) { return ((struct tcp_fabric *)fb)->epfd; }

static int tcp_reg(struct tsor_fabric *fb, void *base, uint64_t len, struct tsor_region *out, q_error **err)
{
  struct tcp_fabric *f = (struct tcp_fabric *)fb;
  uint32_t i;
  for (i = 0; i < f->nregions && f->regions[i] != NULL; i++)
    ;
  if (i == f->nregions) {
    if (f->nregions > IDX_MASK / 2) return q_error_make(err, ENOSPC, "tcp fabric: too many regions");
    uint32_t n = f->nregions ? f->nregions * 2 : 16;
    struct tsor_region **v = realloc(f->regions, sizeof(*v) * n);
    if (v == NULL) return q_error_make(err, ENOMEM, "tcp fabric: regions");
    memset(v + f->nregions, 0, sizeof(*v) * (n - f->nregions));
    f->regions = v;
    f->nregions = n;
  }
  f->gen++;
  *out = (struct tsor_region){.base = base, .len = len, .addr = 0, .key = (f->gen << IDX_BITS) | i};
  f->regions[i] = out;
  return 0;
}

static void tcp_dereg(struct tsor_fabric *fb, struct tsor_region *r)
{
  struct tcp_fabric *f = (struct tcp_fabric *)fb;
  uint32_t i = r->key & IDX_MASK;
  if (i < f->nregions && f->regions[i] == r) f->regions[i] = NULL;
}

static int tcp_connect(struct tsor_fabric *fb, const struct sockaddr_in *to, void *ctx, struct tsor_fconn **out)
{
  struct tcp_fabric *f = (struct tcp_fabric *)fb;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  struct tsor_fconn *c = conn_new(f, fd, true, ctx);
  if (c == NULL) {
    close(fd);
    return -ENOMEM;
  }
  if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) < 0 && errno != EINPROGRESS) conn_down(c, -errno);
  *out = c;
  return 0;
}

static void tcp_set_ctx(struct tsor_fconn *c, void *ctx) { c->ctx = ctx; }
static void *tcp_conn_ctx(struct tsor_fconn *c) { return c->ctx; }
static void tcp_disconnect(struct tsor_fconn *c) { conn_down(c, 0); }

static void tcp_release(struct tsor_fconn *c)
{
  struct tcp_fabric *f = c->f;
  for (struct tsor_fconn **pp = &f->conns; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  if (c->fd >= 0) {
    epoll_ctl(f->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
  }
  free(c->q);
  free(c);
}

static int tcp_write_imm(struct tsor_fconn *c, const struct tsor_region *src, uint64_t src_off, uint32_t len,
                         uint64_t raddr, uint32_t rkey, uint32_t imm, uint64_t wr_id)
{
  if (src_off > src->len || len > src->len - src_off) return -EINVAL;
  struct wr w = {.h = {htonl(FRAME_WRITE_IMM), htonl(imm), htonl(len), htonl(rkey), htobe64(raddr)},
                 .payload = (const char *)src->base + src_off, .len = len, .wr_id = wr_id, .is_write = true};
  return enqueue(c, &w);
}

static int tcp_send(struct tsor_fconn *c, const void *msg, uint32_t len, uint64_t wr_id)
{
  if (len > TSOR_FMSG_MAX) return -EMSGSIZE;
  struct wr w = {.h = {htonl(FRAME_SEND), 0, htonl(len), 0, 0}, .len = len, .wr_id = wr_id};
  memcpy(w.msg, msg, len);
  return enqueue(c, &w);
}

static int tcp_post_recv(struct tsor_fconn *c, uint32_t n)
{
  bool was_blocked = c->posted == 0;
  c->posted += n;
  if (was_blocked && !c->connecting) set_events(c);
  return 0;
}

const struct tsor_fabric_ops tsor_fabric_tcp = {
    .name = "tcp",
    .open = tcp_open,
    .close = tcp_close,
    .event_fd = tcp_event_fd,
    .reg = tcp_reg,
    .dereg = tcp_dereg,
    .connect = tcp_connect,
    .set_ctx = tcp_set_ctx,
    .conn_ctx = tcp_conn_ctx,
    .disconnect = tcp_disconnect,
    .release = tcp_release,
    .write_imm = tcp_write_imm,
    .send = tcp_send,
    .post_recv = tcp_post_recv,
    .poll = tcp_poll,
    .arm = tcp_arm,
};
