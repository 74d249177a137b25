/* The tcp fabric: one TCP connection per node pair carrying the RDMA-shaped
 * protocol as frames (kind, immediate, length, key, address, payload). A
 * receiver thread per connection reads each frame's payload straight into
 * the registered region it names (the peer client's read ring), so the data
 * is copied once by the kernel, as the NIC would with RDMA. Sends are
 * blocking writes from tsord's loop: the peer's receiver never waits on
 * anything but its socket, so it always drains and two nodes cannot
 * deadlock on full socket buffers. */
#include "fabric/fabric.h"

#include <endian.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

enum { FRAME_WRITE_IMM = 1, FRAME_SEND = 2 };

struct frame {
  uint32_t kind, imm, len, rkey;
  uint64_t raddr;
};
_Static_assert(sizeof(struct frame) == 24, "tcp fabric frame");

struct tcp_region {
  struct tsor_region *r;
  int refs;
};

struct tcp_fabric {
  struct tsor_fabric base;
  struct tsor_cq cq;
  int lfd;
  pthread_t acceptor;
  bool has_acceptor;
  pthread_mutex_t lock; /* regions */
  pthread_cond_t unref;
  struct tcp_region *regions;
  uint32_t nregions, gen;
};

struct tsor_fconn {
  struct tcp_fabric *f;
  int fd;
  void *ctx;
  pthread_t thread;
  struct sockaddr_in to;
  int posted; /* receives posted and not yet used, under rlock */
  pthread_mutex_t rlock;
  pthread_cond_t rcond;
  int down;   /* atomic: DOWN pushed */
  int closing; /* atomic: disconnect asked */
};

#define IDX_BITS 20u
#define IDX_MASK ((1u << IDX_BITS) - 1u)

static void push_down(struct tsor_fconn *c, int status)
{
  if (__atomic_exchange_n(&c->down, 1, __ATOMIC_ACQ_REL)) return;
  struct tsor_fabric_cqe e = {.kind = TSOR_FC_DOWN, .conn = c, .status = status};
  tsor_cq_push(&c->f->cq, &e, true);
}

static void tune(int fd)
{
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  /* A peer tsord that stops reading for this long is wedged: fail the send
   * (and the connection) rather than tsord's whole loop forever. */
  struct timeval tv = {.tv_sec = 30};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int read_full(int fd, void *buf, size_t len)
{
  size_t got = 0;
  while (got < len) {
    ssize_t r = recv(fd, (char *)buf + got, len - got, 0);
    if (r == 0) return -ECONNRESET;
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    got += (size_t)r;
  }
  return 0;
}

static struct tsor_region *region_get(struct tcp_fabric *f, uint32_t key, struct tcp_region **ent)
{
  struct tsor_region *r = NULL;
  pthread_mutex_lock(&f->lock);
  uint32_t i = key & IDX_MASK;
  if (i < f->nregions && f->regions[i].r != NULL && f->regions[i].r->key == key) {
    r = f->regions[i].r;
    f->regions[i].refs++;
    *ent = &f->regions[i];
  }
  pthread_mutex_unlock(&f->lock);
  return r;
}

static void region_put(struct tcp_fabric *f, struct tcp_region *ent)
{
  pthread_mutex_lock(&f->lock);
  if (--ent->refs == 0) pthread_cond_broadcast(&f->unref);
  pthread_mutex_unlock(&f->lock);
}

/* A frame needs a posted receive. Like an RC queue pair's "receiver not
 * ready" retries, wait a while for tsord to post one (it does so as soon as
 * it sees the connection up), then fail the connection. */
static int take_receive(struct tsor_fconn *c)
{
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += 5;
  pthread_mutex_lock(&c->rlock);
  int r = 0;
  while (c->posted == 0 && r == 0) r = pthread_cond_timedwait(&c->rcond, &c->rlock, &dl);
  if (c->posted > 0) {
    c->posted--;
    r = 0;
  } else {
    r = -EPROTO;
  }
  pthread_mutex_unlock(&c->rlock);
  return r;
}

static int receive_loop(struct tsor_fconn *c)
{
  for (;;) {
    struct frame h;
    int r = read_full(c->fd, &h, sizeof(h));
    if (r < 0) return r;
    uint32_t kind = ntohl(h.kind), len = ntohl(h.len), imm = ntohl(h.imm), rkey = ntohl(h.rkey);
    uint64_t raddr = be64toh(h.raddr);
    r = take_receive(c);
    if (r < 0) return r;
    struct tsor_fabric_cqe e = {.conn = c, .len = len, .imm = imm};
    if (kind == FRAME_SEND) {
      if (len > TSOR_FMSG_MAX) return -EPROTO;
      r = read_full(c->fd, e.msg, len);
      if (r < 0) return r;
      e.kind = TSOR_FC_RECV_MSG;
    } else if (kind == FRAME_WRITE_IMM && len == 0) {
      e.kind = TSOR_FC_RECV_IMM; /* immediate only (FIN): no memory named */
    } else if (kind == FRAME_WRITE_IMM) {
      struct tcp_region *ent = NULL;
      struct tsor_region *reg = region_get(c->f, rkey, &ent);
      if (reg == NULL) return -EPROTO;
      if (raddr > reg->len || len > reg->len - raddr) {
        region_put(c->f, ent);
        return -EPROTO;
      }
      r = read_full(c->fd, (char *)reg->base + raddr, len);
      region_put(c->f, ent);
      if (r < 0) return r;
      e.kind = TSOR_FC_RECV_IMM;
    } else {
      return -EPROTO;
    }
    tsor_cq_push(&c->f->cq, &e, true);
  }
}

static void *conn_thread(void *arg)
{
  struct tsor_fconn *c = arg;
  if (c->fd < 0) {
    /* Outgoing: connect here so that tsord's loop never waits on it. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      push_down(c, -errno);
      return NULL;
    }
    /* SO_SNDTIMEO bounds connect() too: an unreachable node fails its
     * pending connects in seconds, not after the kernel's SYN retries. */
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&c->to, sizeof(c->to)) < 0) {
      int e = errno;
      close(fd);
      push_down(c, -e);
      return NULL;
    }
    tune(fd);
    __atomic_store_n(&c->fd, fd, __ATOMIC_RELEASE);
    if (__atomic_load_n(&c->closing, __ATOMIC_ACQUIRE)) {
      push_down(c, -ECONNABORTED);
      return NULL;
    }
  }
  struct tsor_fabric_cqe up = {.kind = TSOR_FC_UP, .conn = c};
  tsor_cq_push(&c->f->cq, &up, true);
  int r = receive_loop(c);
  shutdown(c->fd, SHUT_RDWR);
  push_down(c, r == -ECONNRESET ? 0 : r);
  return NULL;
}

static void *accept_thread(void *arg)
{
  struct tcp_fabric *f = arg;
  for (;;) {
    int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) continue;
      return NULL; /* listening socket shut down: fabric closing */
    }
    tune(fd);
    struct tsor_fconn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
      close(fd);
      continue;
    }
    c->f = f;
    c->fd = fd;
    pthread_mutex_init(&c->rlock, NULL);
    pthread_cond_init(&c->rcond, NULL);
    if (pthread_create(&c->thread, NULL, conn_thread, c) != 0) {
      close(fd);
      free(c);
    }
  }
}

static int tcp_open(const struct sockaddr_in *listen_addr, struct tsor_fabric **out, q_error **err)
{
  struct tcp_fabric *f = calloc(1, sizeof(*f));
  if (f == NULL) return q_error_make(err, ENOMEM, "tcp fabric");
  f->base.ops = &tsor_fabric_tcp;
  f->lfd = -1;
  pthread_mutex_init(&f->lock, NULL);
  pthread_cond_init(&f->unref, NULL);
  int r = tsor_cq_init(&f->cq);
  if (r < 0) {
    free(f);
    return q_error_make(err, -r, "tcp fabric: eventfd");
  }
  if (listen_addr != NULL) {
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (f->lfd < 0) goto fail;
    setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(f->lfd, (const struct sockaddr *)listen_addr, sizeof(*listen_addr)) < 0 || listen(f->lfd, 64) < 0)
      goto fail;
    if (pthread_create(&f->acceptor, NULL, accept_thread, f) != 0) goto fail;
    f->has_acceptor = true;
  }
  *out = &f->base;
  return 0;
fail:
  r = errno;
  if (f->lfd >= 0) close(f->lfd);
  tsor_cq_destroy(&f->cq);
  free(f);
  char a[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &listen_addr->sin_addr, a, sizeof(a));
  return q_error_make(err, r, "tcp fabric: listen on %s:%u", a, ntohs(listen_addr->sin_port));
}

static void tcp_close(struct tsor_fabric *fb)
{
  struct tcp_fabric *f = (struct tcp_fabric *)fb;
  if (f->has_acceptor) {
    shutdown(f->lfd, SHUT_RDWR);
    pthread_join(f->acceptor, NULL);
  }
  if (f->lfd >= 0) close(f->lfd);
  tsor_cq_destroy(&f->cq);
  free(f->regions);
  pthread_mutex_destroy(&f->lock);
  pthread_cond_destroy(&f->unref);
  free(f);
}

static int tcp_event_fd(struct tsor_fabric *fb) { return ((struct tcp_fabric *)fb)->cq.efd; }

static int tcp_reg(struct tsor_fabric *fb, void *base, uint64_t len, struct tsor_region *out, q_error **err)
{
  struct tcp_fabric *f = (struct tcp_fabric *)fb;
  pthread_mutex_lock(&f->lock);
  uint32_t i;
  for (i = 0; i < f->nregions && (f->regions[i].r != NULL || f->regions[i].refs != 0); i++)
    ;
  if (i == f->nregions) {
    uint32_t n = f->nregions ? f->nregions * 2 : 16;
    /* Receiver threads hold pointers into this array only under the lock
     * or through refs on entries that never move once found: grow by a new
     * array only while no entry is referenced. */
    bool busy = false;
    for (uint32_t j = 0; j < f->nregions; j++) busy |= f->regions[j].refs != 0;
    while (busy) {
      pthread_cond_wait(&f->unref, &f->lock);
      busy = false;
      for (uint32_t j = 0; j < f->nregions; j++) busy |= f->regions[j].refs != 0;
    }
    struct tcp_region *v = realloc(f->regions, sizeof(*v) * n);
    if (v == NULL || n > IDX_MASK) {
      if (v != NULL) f->regions = v;
      pthread_mutex_unlock(&f->lock);
      return q_error_make(err, ENOMEM, "tcp fabric: regions");
    }
    memset(v + f->nregions, 0, sizeof(*v) * (n - f->nregions));
    f->regions = v;
    f->nregions = n;
  }
  f->gen++;
  *out = (struct tsor_region){.base = base, .len = len, .addr = 0, .key = (f->gen << IDX_BITS) | i};
  f->regions[i].r = out;
  pthread_mutex_unlock(&f->lock);
  return 0;
}

static void tcp_dereg(struct tsor_fabric *fb, struct tsor_region *r)
{
  struct tcp_fabric *f = (struct tcp_fabric *)fb;
  pthread_mutex_lock(&f->lock);
  uint32_t i = r->key & IDX_MASK;
  if (i < f->nregions && f->regions[i].r == r) {
    f->regions[i].r = NULL;
    /* A receiver may be reading into it right now: wait until it is done,
     * after that nobody can find the region any more. */
    while (f->regions[i].refs != 0) pthread_cond_wait(&f->unref, &f->lock);
  }
  pthread_mutex_unlock(&f->lock);
}

static int tcp_connect(struct tsor_fabric *fb, const struct sockaddr_in *to, void *ctx, struct tsor_fconn **out)
{
  struct tsor_fconn *c = calloc(1, sizeof(*c));
  if (c == NULL) return -ENOMEM;
  c->f = (struct tcp_fabric *)fb;
  c->fd = -1;
  c->ctx = ctx;
  c->to = *to;
  pthread_mutex_init(&c->rlock, NULL);
  pthread_cond_init(&c->rcond, NULL);
  int r = pthread_create(&c->thread, NULL, conn_thread, c);
  if (r != 0) {
    free(c);
    return -r;
  }
  *out = c;
  return 0;
}

static void tcp_set_ctx(struct tsor_fconn *c, void *ctx) { c->ctx = ctx; }
static void *tcp_conn_ctx(struct tsor_fconn *c) { return c->ctx; }

static void tcp_disconnect(struct tsor_fconn *c)
{
  __atomic_store_n(&c->closing, 1, __ATOMIC_RELEASE);
  int fd = __atomic_load_n(&c->fd, __ATOMIC_ACQUIRE);
  if (fd >= 0) shutdown(fd, SHUT_RDWR);
}

static void tcp_release(struct tsor_fconn *c)
{
  pthread_join(c->thread, NULL);
  if (c->fd >= 0) close(c->fd);
  pthread_mutex_destroy(&c->rlock);
  pthread_cond_destroy(&c->rcond);
  free(c);
}

static int send_frame(struct tsor_fconn *c, const struct frame *h, const void *payload, uint32_t len)
{
  struct iovec iov[2] = {{(void *)h, sizeof(*h)}, {(void *)payload, len}};
  struct msghdr m = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
  size_t left = sizeof(*h) + len;
  while (left > 0) {
    ssize_t r = sendmsg(c->fd, &m, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      shutdown(c->fd, SHUT_RDWR); /* the receiver thread reports DOWN */
      return -e;
    }
    left -= (size_t)r;
    while (r > 0 && m.msg_iovlen > 0) {
      size_t n = (size_t)r < m.msg_iov[0].iov_len ? (size_t)r : m.msg_iov[0].iov_len;
      m.msg_iov[0].iov_base = (char *)m.msg_iov[0].iov_base + n;
      m.msg_iov[0].iov_len -= n;
      r -= (ssize_t)n;
      if (m.msg_iov[0].iov_len == 0) {
        m.msg_iov++;
        m.msg_iovlen--;
      }
    }
  }
  return 0;
}

static int tcp_write_imm(struct tsor_fconn *c, const struct tsor_region *src, uint64_t src_off, uint32_t len,
                         uint64_t raddr, uint32_t rkey, uint32_t imm, uint64_t wr_id)
{
  if (__atomic_load_n(&c->down, __ATOMIC_ACQUIRE) || c->fd < 0) return -ENOTCONN;
  if (src_off > src->len || len > src->len - src_off) return -EINVAL;
  struct frame h = {htonl(FRAME_WRITE_IMM), htonl(imm), htonl(len), htonl(rkey), htobe64(raddr)};
  int r = send_frame(c, &h, (const char *)src->base + src_off, len);
  if (r < 0) return r;
  struct tsor_fabric_cqe e = {.kind = TSOR_FC_WRITE_DONE, .conn = c, .wr_id = wr_id, .len = len};
  return tsor_cq_push(&c->f->cq, &e, false);
}

static int tcp_send(struct tsor_fconn *c, const void *msg, uint32_t len, uint64_t wr_id)
{
  if (__atomic_load_n(&c->down, __ATOMIC_ACQUIRE) || c->fd < 0) return -ENOTCONN;
  if (len > TSOR_FMSG_MAX) return -EMSGSIZE;
  struct frame h = {htonl(FRAME_SEND), 0, htonl(len), 0, 0};
  int r = send_frame(c, &h, msg, len);
  if (r < 0) return r;
  struct tsor_fabric_cqe e = {.kind = TSOR_FC_SEND_DONE, .conn = c, .wr_id = wr_id};
  return tsor_cq_push(&c->f->cq, &e, false);
}

static int tcp_post_recv(struct tsor_fconn *c, uint32_t n)
{
  pthread_mutex_lock(&c->rlock);
  bool wake = c->posted == 0;
  c->posted += (int)n;
  if (wake) pthread_cond_signal(&c->rcond);
  pthread_mutex_unlock(&c->rlock);
  return 0;
}

static int tcp_poll(struct tsor_fabric *fb, struct tsor_fabric_cqe *out, int max)
{
  return tsor_cq_pop(&((struct tcp_fabric *)fb)->cq, out, max);
}

static int tcp_arm(struct tsor_fabric *fb) { return tsor_cq_arm(&((struct tcp_fabric *)fb)->cq); }

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
