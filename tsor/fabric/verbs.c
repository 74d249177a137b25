/* The verbs fabric: RDMA reliable-connected queue pairs set up with rdma_cm,
 * data by IBV_WR_RDMA_WRITE_WITH_IMM straight from one client's write ring
 * into the peer client's read ring, control messages by two-sided SEND into
 * posted receive buffers, one completion queue shared by every queue pair
 * with a completion channel for sleeping.
 *
 * open() fails, with a message saying so, when the machine has no RDMA
 * device; tsord then picks another fabric (or stops, when verbs was asked
 * for by name). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fabric/fabric.h"

/* Every queue pair shares one CQ, sized for 32 connections at first and
 * grown (ibv_resize_cq) as connections come, so that it never overruns. */
#define VERBS_CQ_DEPTH (32 * 2 * VERBS_QP_DEPTH)
#define VERBS_QP_DEPTH 1024
#define VERBS_RBUFS 1024 /* > the receives the protocol keeps posted */

struct verbs_fabric {
  struct tsor_fabric base;
  struct rdma_event_channel *ec;
  struct rdma_cm_id *listen_id;
  struct ibv_context *ctx;
  struct ibv_pd *pd;
  struct ibv_comp_channel *cc;
  struct ibv_cq *cq;
  int cq_depth, max_cqe, nqps;
  int epfd;
  struct tsor_cq pending; /* translated completions waiting for poll() */
  struct tsor_fconn *conns;
};

struct rslot {
  struct tsor_fconn *conn;
  uint32_t idx;
};

struct tsor_fconn {
  struct verbs_fabric *f;
  struct rdma_cm_id *id;
  void *ctx;
  bool connected, down;
  uint32_t qp_num;
  char *rbuf;
  struct ibv_mr *rmr;
  struct rslot *rslots;
  uint32_t rnext;
  struct tsor_fconn *next;
};

static void push(struct verbs_fabric *f, enum tsor_fc_kind kind, struct tsor_fconn *c, int status)
{
  struct tsor_fabric_cqe e = {.kind = kind, .conn = c, .status = status};
  tsor_cq_push(&f->pending, &e, false);
}

static void mark_down(struct tsor_fconn *c, int status)
{
  if (c->down) return;
  c->down = true;
  /* Tell the peer too (a local error does not reach it by itself). */
  if (c->connected) rdma_disconnect(c->id);
  push(c->f, TSOR_FC_DOWN, c, status);
}

static void verbs_close(struct tsor_fabric *fb)
{
  struct verbs_fabric *f = (struct verbs_fabric *)fb;
  if (f->listen_id) rdma_destroy_id(f->listen_id);
  if (f->cq) ibv_destroy_cq(f->cq);
  if (f->cc) ibv_destroy_comp_channel(f->cc);
  if (f->pd) ibv_dealloc_pd(f->pd);
  if (f->ec) rdma_destroy_event_channel(f->ec);
  if (f->epfd >= 0) close(f->epfd);
  tsor_cq_destroy(&f->pending);
  free(f);
}

static int set_nonblock(int fd)
{
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int verbs_open(const struct sockaddr_in *listen_addr, struct tsor_fabric **out, q_error **err)
{
  int num = 0;
  struct ibv_device **devs = ibv_get_device_list(&num);
  if (devs) ibv_free_device_list(devs);
  if (devs == NULL || num == 0) {
    struct stat st;
    bool dev_dir = stat("/dev/infiniband", &st) == 0;
    return q_error_make(err, ENODEV, "verbs: no RDMA device found (%s)",
                        dev_dir ? "/dev/infiniband exists but no device is usable"
                                : "no /dev/infiniband: no RDMA NIC or its driver is not loaded");
  }
  struct verbs_fabric *f = calloc(1, sizeof(*f));
  if (f == NULL) return q_error_make(err, ENOMEM, "verbs fabric");
  f->base.ops = &tsor_fabric_verbs;
  f->epfd = -1;
  int r = tsor_cq_init(&f->pending);
  if (r < 0) {
    free(f);
    return q_error_make(err, -r, "verbs fabric");
  }
  f->ec = rdma_create_event_channel();
  if (f->ec == NULL || set_nonblock(f->ec->fd) < 0) {
    r = q_error_make(err, errno, "verbs: rdma_create_event_channel");
    goto fail;
  }
  if (rdma_create_id(f->ec, &f->listen_id, NULL, RDMA_PS_TCP) < 0) {
    r = q_error_make(err, errno, "verbs: rdma_create_id");
    goto fail;
  }
  if (rdma_bind_addr(f->listen_id, (struct sockaddr *)listen_addr) < 0) {
    char a[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &listen_addr->sin_addr, a, sizeof(a));
    r = q_error_make(err, errno, "verbs: bind %s:%u", a, ntohs(listen_addr->sin_port));
    goto fail;
  }
  f->ctx = f->listen_id->verbs;
  if (f->ctx == NULL) {
    char a[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &listen_addr->sin_addr, a, sizeof(a));
    r = q_error_make(err, ENODEV, "verbs: %s is not an address of an RDMA device", a);
    goto fail;
  }
  f->pd = ibv_alloc_pd(f->ctx);
  f->cc = f->pd ? ibv_create_comp_channel(f->ctx) : NULL;
  struct ibv_device_attr da;
  f->max_cqe = ibv_query_device(f->ctx, &da) == 0 ? da.max_cqe : VERBS_CQ_DEPTH;
  f->cq_depth = VERBS_CQ_DEPTH < f->max_cqe ? VERBS_CQ_DEPTH : f->max_cqe;
  f->cq = f->cc ? ibv_create_cq(f->ctx, f->cq_depth, NULL, f->cc, 0) : NULL;
  if (f->cq == NULL || set_nonblock(f->cc->fd) < 0 || ibv_req_notify_cq(f->cq, 0) != 0) {
    r = q_error_make(err, errno ? errno : EIO, "verbs: protection domain / completion queue");
    goto fail;
  }
  if (rdma_listen(f->listen_id, 64) < 0) {
    r = q_error_make(err, errno, "verbs: rdma_listen");
    goto fail;
  }
  /* One fd for tsord's loop: connection events and completions. */
  f->epfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN};
  if (f->epfd < 0 || epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->ec->fd, &ev) < 0 ||
      epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->cc->fd, &ev) < 0) {
    r = q_error_make(err, errno, "verbs: epoll");
    goto fail;
  }
  *out = &f->base;
  return 0;
fail:
  verbs_close(&f->base);
  return r;
}

static int verbs_event_fd(struct tsor_fabric *fb) { return ((struct verbs_fabric *)fb)->epfd; }

static int verbs_reg(struct tsor_fabric *fb, void *base, uint64_t len, struct tsor_region *out, q_error **err)
{
  struct verbs_fabric *f = (struct verbs_fabric *)fb;
  struct ibv_mr *mr = ibv_reg_mr(f->pd, base, len, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
  if (mr == NULL) return q_error_make(err, errno, "verbs: register %llu bytes", (unsigned long long)len);
  *out = (struct tsor_region){.base = base, .len = len, .addr = (uintptr_t)base, .key = mr->rkey, .priv = mr};
  return 0;
}

static void verbs_dereg(struct tsor_fabric *fb, struct tsor_region *r)
{
  (void)fb;
  if (r->priv) ibv_dereg_mr(r->priv);
  r->priv = NULL;
}

static struct tsor_fconn *conn_new(struct verbs_fabric *f, struct rdma_cm_id *id, void *ctx)
{
  struct tsor_fconn *c = calloc(1, sizeof(*c));
  if (c == NULL) return NULL;
  c->f = f;
  c->id = id;
  c->ctx = ctx;
  id->context = c;
  c->next = f->conns;
  f->conns = c;
  return c;
}

static int make_qp(struct tsor_fconn *c)
{
  struct verbs_fabric *f = c->f;
  if (c->id->verbs != f->ctx) return -EXDEV; /* one device per node: the one we listen on */
  int need = (f->nqps + 1) * 2 * VERBS_QP_DEPTH;
  if (need > f->cq_depth) {
    int want = need * 2 < f->max_cqe ? need * 2 : f->max_cqe;
    if (want < need || ibv_resize_cq(f->cq, want) != 0) return -ENOSPC; /* refuse rather than overrun */
    f->cq_depth = want;
  }
  struct ibv_qp_init_attr qa = {
      .send_cq = f->cq,
      .recv_cq = f->cq,
      .qp_type = IBV_QPT_RC,
      .cap = {.max_send_wr = VERBS_QP_DEPTH, .max_recv_wr = VERBS_QP_DEPTH, .max_send_sge = 1,
              .max_recv_sge = 1, .max_inline_data = TSOR_FMSG_MAX},
  };
  if (rdma_create_qp(c->id, f->pd, &qa) < 0) return -errno;
  f->nqps++;
  c->qp_num = c->id->qp->qp_num;
  c->rbuf = calloc(VERBS_RBUFS, TSOR_FMSG_MAX);
  c->rslots = calloc(VERBS_RBUFS, sizeof(*c->rslots));
  if (c->rbuf == NULL || c->rslots == NULL) return -ENOMEM;
  for (uint32_t i = 0; i < VERBS_RBUFS; i++) c->rslots[i] = (struct rslot){c, i};
  c->rmr = ibv_reg_mr(f->pd, c->rbuf, (size_t)VERBS_RBUFS * TSOR_FMSG_MAX, IBV_ACCESS_LOCAL_WRITE);
  return c->rmr ? 0 : -errno;
}

static struct rdma_conn_param conn_param(void)
{
  /* rnr_retry_count 7 retries forever: a message that arrives before the
   * peer posted its receives waits instead of failing the connection. */
  return (struct rdma_conn_param){.responder_resources = 1, .initiator_depth = 1, .retry_count = 7,
                                  .rnr_retry_count = 7};
}

static void cm_events(struct verbs_fabric *f)
{
  struct rdma_cm_event *ev;
  while (rdma_get_cm_event(f->ec, &ev) == 0) {
    struct tsor_fconn *c = ev->id->context;
    struct rdma_conn_param p = conn_param();
    switch (ev->event) {
    case RDMA_CM_EVENT_ADDR_RESOLVED:
      if (rdma_resolve_route(ev->id, 2000) < 0) mark_down(c, -errno);
      break;
    case RDMA_CM_EVENT_ROUTE_RESOLVED: {
      int r = make_qp(c);
      if (r < 0 || rdma_connect(ev->id, &p) < 0) mark_down(c, r < 0 ? r : -errno);
      break;
    }
    case RDMA_CM_EVENT_CONNECT_REQUEST: {
      c = conn_new(f, ev->id, NULL);
      if (c == NULL || make_qp(c) < 0 || rdma_accept(ev->id, &p) < 0) {
        if (c) mark_down(c, -ECONNABORTED);
        else rdma_reject(ev->id, NULL, 0);
      }
      break;
    }
    case RDMA_CM_EVENT_ESTABLISHED:
      if (c) {
        c->connected = true;
        push(f, TSOR_FC_UP, c, 0);
      }
      break;
    case RDMA_CM_EVENT_DISCONNECTED: if (c) mark_down(c, 0); break;
    case RDMA_CM_EVENT_REJECTED: if (c) mark_down(c, -ECONNREFUSED); break;
    case RDMA_CM_EVENT_ADDR_ERROR:
    case RDMA_CM_EVENT_ROUTE_ERROR:
    case RDMA_CM_EVENT_UNREACHABLE:
    case RDMA_CM_EVENT_CONNECT_ERROR:
      if (c) mark_down(c, -EHOSTUNREACH);
      break;
    case RDMA_CM_EVENT_DEVICE_REMOVAL: if (c) mark_down(c, -ENODEV); break;
    default: break;
    }
    rdma_ack_cm_event(ev);
  }
}

static struct tsor_fconn *by_qp(struct verbs_fabric *f, uint32_t qp_num)
{
  for (struct tsor_fconn *c = f->conns; c; c = c->next)
    if (c->qp_num == qp_num && c->id->qp) return c;
  return NULL;
}

static int drain_cq(struct verbs_fabric *f)
{
  struct ibv_wc wc[32];
  int total = 0, n;
  while ((n = ibv_poll_cq(f->cq, 32, wc)) > 0) {
    total += n;
    for (int i = 0; i < n; i++) {
      struct tsor_fconn *c = by_qp(f, wc[i].qp_num);
      if (c == NULL) continue;
      if (wc[i].status != IBV_WC_SUCCESS) {
        mark_down(c, -EIO);
        continue;
      }
      struct tsor_fabric_cqe e = {.conn = c, .wr_id = wc[i].wr_id};
      switch (wc[i].opcode) {
      case IBV_WC_RDMA_WRITE: e.kind = TSOR_FC_WRITE_DONE; break;
      case IBV_WC_SEND: e.kind = TSOR_FC_SEND_DONE; break;
      case IBV_WC_RECV_RDMA_WITH_IMM:
        e.kind = TSOR_FC_RECV_IMM;
        e.imm = ntohl(wc[i].imm_data);
        e.len = wc[i].byte_len;
        break;
      case IBV_WC_RECV: {
        struct rslot *s = (struct rslot *)(uintptr_t)wc[i].wr_id;
        e.kind = TSOR_FC_RECV_MSG;
        e.len = wc[i].byte_len > TSOR_FMSG_MAX ? TSOR_FMSG_MAX : wc[i].byte_len;
        memcpy(e.msg, c->rbuf + (size_t)s->idx * TSOR_FMSG_MAX, e.len);
        break;
      }
      default: continue;
      }
      tsor_cq_push(&f->pending, &e, false);
    }
  }
  return total;
}

static int verbs_poll(struct tsor_fabric *fb, struct tsor_fabric_cqe *out, int max)
{
  struct verbs_fabric *f = (struct verbs_fabric *)fb;
  cm_events(f);
  struct ibv_cq *ev_cq;
  void *ev_ctx;
  while (ibv_get_cq_event(f->cc, &ev_cq, &ev_ctx) == 0) ibv_ack_cq_events(ev_cq, 1);
  drain_cq(f);
  return tsor_cq_pop(&f->pending, out, max);
}

static int verbs_arm(struct tsor_fabric *fb)
{
  struct verbs_fabric *f = (struct verbs_fabric *)fb;
  ibv_req_notify_cq(f->cq, 0);
  /* Completions that landed before the notify request raise no event. */
  drain_cq(f);
  return __atomic_load_n(&f->pending.count, __ATOMIC_ACQUIRE) != 0;
}

static int verbs_connect(struct tsor_fabric *fb, const struct sockaddr_in *to, void *ctx, struct tsor_fconn **out)
{
  struct verbs_fabric *f = (struct verbs_fabric *)fb;
  struct rdma_cm_id *id;
  if (rdma_create_id(f->ec, &id, NULL, RDMA_PS_TCP) < 0) return -errno;
  struct tsor_fconn *c = conn_new(f, id, ctx);
  if (c == NULL) {
    rdma_destroy_id(id);
    return -ENOMEM;
  }
  if (rdma_resolve_addr(id, NULL, (struct sockaddr *)to, 2000) < 0) mark_down(c, -errno);
  *out = c;
  return 0;
}

static void verbs_set_ctx(struct tsor_fconn *c, void *ctx) { c->ctx = ctx; }
static void *verbs_conn_ctx(struct tsor_fconn *c) { return c->ctx; }

static void verbs_disconnect(struct tsor_fconn *c)
{
  if (c->connected && !c->down)
    rdma_disconnect(c->id); /* DISCONNECTED follows */
  else
    mark_down(c, 0);
}

static int drain_cq(struct verbs_fabric *f);

static void verbs_release(struct tsor_fconn *c)
{
  struct verbs_fabric *f = c->f;
  /* Completions of this queue pair still in the CQ or our queue must not
   * outlive it (a later queue pair may get the same number). */
  drain_cq(f);
  tsor_cq_drop_conn(&f->pending, c);
  for (struct tsor_fconn **pp = &f->conns; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  if (c->id->qp) {
    rdma_destroy_qp(c->id);
    f->nqps--;
  }
  if (c->rmr) ibv_dereg_mr(c->rmr);
  rdma_destroy_id(c->id);
  free(c->rbuf);
  free(c->rslots);
  free(c);
}

static int verbs_write_imm(struct tsor_fconn *c, const struct tsor_region *src, uint64_t src_off, uint32_t len,
                           uint64_t raddr, uint32_t rkey, uint32_t imm, uint64_t wr_id)
{
  if (c->down || !c->connected) return -ENOTCONN;
  struct ibv_mr *mr = src->priv;
  struct ibv_sge sge = {.addr = (uintptr_t)src->base + src_off, .length = len, .lkey = mr->lkey};
  struct ibv_send_wr wr = {.wr_id = wr_id, .sg_list = &sge, .num_sge = len ? 1 : 0,
                           .opcode = IBV_WR_RDMA_WRITE_WITH_IMM, .send_flags = IBV_SEND_SIGNALED,
                           .imm_data = htonl(imm)};
  wr.wr.rdma.remote_addr = raddr;
  wr.wr.rdma.rkey = rkey;
  struct ibv_send_wr *bad;
  int r = ibv_post_send(c->id->qp, &wr, &bad);
  return r ? -r : 0;
}

static int verbs_send(struct tsor_fconn *c, const void *msg, uint32_t len, uint64_t wr_id)
{
  if (c->down || !c->connected) return -ENOTCONN;
  if (len > TSOR_FMSG_MAX) return -EMSGSIZE;
  struct ibv_sge sge = {.addr = (uintptr_t)msg, .length = len, .lkey = 0};
  struct ibv_send_wr wr = {.wr_id = wr_id, .sg_list = &sge, .num_sge = 1, .opcode = IBV_WR_SEND,
                           .send_flags = IBV_SEND_SIGNALED | IBV_SEND_INLINE};
  struct ibv_send_wr *bad;
  int r = ibv_post_send(c->id->qp, &wr, &bad);
  return r ? -r : 0;
}

static int verbs_post_recv(struct tsor_fconn *c, uint32_t n)
{
  if (c->id->qp == NULL) return -ENOTCONN;
  for (uint32_t i = 0; i < n; i++) {
    struct rslot *s = &c->rslots[c->rnext++ % VERBS_RBUFS];
    struct ibv_sge sge = {.addr = (uintptr_t)(c->rbuf + (size_t)s->idx * TSOR_FMSG_MAX), .length = TSOR_FMSG_MAX,
                          .lkey = c->rmr->lkey};
    struct ibv_recv_wr wr = {.wr_id = (uintptr_t)s, .sg_list = &sge, .num_sge = 1}, *bad;
    int r = ibv_post_recv(c->id->qp, &wr, &bad);
    if (r) return -r;
  }
  return 0;
}

const struct tsor_fabric_ops tsor_fabric_verbs = {
    .name = "verbs",
    .open = verbs_open,
    .close = verbs_close,
    .event_fd = verbs_event_fd,
    .reg = verbs_reg,
    .dereg = verbs_dereg,
    .connect = verbs_connect,
    .set_ctx = verbs_set_ctx,
    .conn_ctx = verbs_conn_ctx,
    .disconnect = verbs_disconnect,
    .release = verbs_release,
    .write_imm = verbs_write_imm,
    .send = verbs_send,
    .post_recv = verbs_post_recv,
    .poll = verbs_poll,
    .arm = verbs_arm,
};
