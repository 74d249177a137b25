/* The local fabric: both ends of every connection live in this process, so
 * a write with immediate is one memcpy from the source region (one client's
 * write ring) into the destination region (the peer client's read ring).
 * tsord uses it for pods on its own node. Everything runs on the caller's
 * thread, so completions never need the event fd. */
#include "fabric/fabric.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LOCAL_IDX_BITS 20u
#define LOCAL_IDX_MASK ((1u << LOCAL_IDX_BITS) - 1u)

struct local_fabric {
  struct tsor_fabric base;
  struct tsor_cq cq;
  struct tsor_region **regions; /* by key index */
  uint32_t nregions;
  uint32_t gen;
};

struct tsor_fconn {
  struct local_fabric *f;
  struct tsor_fconn *peer;
  void *ctx;
  uint32_t posted; /* receives this end has posted and not yet used */
  bool down;
};

static int local_open(const struct sockaddr_in *listen, struct tsor_fabric **out, q_error **err)
{
  (void)listen;
  struct local_fabric *f = calloc(1, sizeof(*f));
  if (f == NULL) return q_error_make(err, ENOMEM, "local fabric");
  f->base.ops = &tsor_fabric_local;
  int r = tsor_cq_init(&f->cq);
  if (r < 0) {
    free(f);
    return q_error_make(err, -r, "local fabric: eventfd");
  }
  *out = &f->base;
  return 0;
}

static void local_close(struct tsor_fabric *fb)
{
  struct local_fabric *f = (struct local_fabric *)fb;
  tsor_cq_destroy(&f->cq);
  free(f->regions);
  free(f);
}

static int local_event_fd(struct tsor_fabric *fb) { return ((struct local_fabric *)fb)->cq.efd; }

static int local_reg(struct tsor_fabric *fb, void *base, uint64_t len, struct tsor_region *out, q_error **err)
{
  struct local_fabric *f = (struct local_fabric *)fb;
  uint32_t i;
  for (i = 0; i < f->nregions && f->regions[i] != NULL; i++)
    ;
  if (i == f->nregions) {
    if (f->nregions > LOCAL_IDX_MASK) return q_error_make(err, ENOSPC, "local fabric: too many regions");
    uint32_t n = f->nregions ? f->nregions * 2 : 16;
    struct tsor_region **v = realloc(f->regions, sizeof(*v) * n);
    if (v == NULL) return q_error_make(err, ENOMEM, "local fabric: regions");
    memset(v + f->nregions, 0, sizeof(*v) * (n - f->nregions));
    f->regions = v;
    f->nregions = n;
  }
  f->gen++;
  *out = (struct tsor_region){.base = base, .len = len, .addr = 0,
                              .key = (f->gen << LOCAL_IDX_BITS) | i, .priv = NULL};
  f->regions[i] = out;
  return 0;
}

static void local_dereg(struct tsor_fabric *fb, struct tsor_region *r)
{
  struct local_fabric *f = (struct local_fabric *)fb;
  uint32_t i = r->key & LOCAL_IDX_MASK;
  if (i < f->nregions && f->regions[i] == r) f->regions[i] = NULL;
}

static struct tsor_region *local_lookup(struct local_fabric *f, uint32_t key)
{
  uint32_t i = key & LOCAL_IDX_MASK;
  if (i >= f->nregions || f->regions[i] == NULL || f->regions[i]->key != key) return NULL;
  return f->regions[i];
}

static void push(struct local_fabric *f, enum tsor_fc_kind kind, struct tsor_fconn *c, int status)
{
  struct tsor_fabric_cqe e = {.kind = kind, .conn = c, .status = status};
  tsor_cq_push(&f->cq, &e, false);
}

static void local_down(struct tsor_fconn *c, int status)
{
  if (c->down) return;
  c->down = true;
  push(c->f, TSOR_FC_DOWN, c, status);
  if (c->peer != NULL && !c->peer->down) {
    c->peer->down = true;
    push(c->f, TSOR_FC_DOWN, c->peer, status);
  }
}

static int local_connect(struct tsor_fabric *fb, const struct sockaddr_in *to, void *ctx, struct tsor_fconn **out)
{
  (void)to;
  struct local_fabric *f = (struct local_fabric *)fb;
  struct tsor_fconn *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
  if (a == NULL || b == NULL) {
    free(a);
    free(b);
    return -ENOMEM;
  }
  a->f = b->f = f;
  a->peer = b;
  b->peer = a;
  a->ctx = ctx;
  /* The passive end comes up first, so it has posted its receives before
   * the active end's first message (RC would retry on "receiver not
   * ready"; one thread cannot wait, so order the events instead). */
  push(f, TSOR_FC_UP, b, 0);
  push(f, TSOR_FC_UP, a, 0);
  *out = a;
  return 0;
}

static void local_set_ctx(struct tsor_fconn *c, void *ctx) { c->ctx = ctx; }
static void *local_conn_ctx(struct tsor_fconn *c) { return c->ctx; }
static void local_disconnect(struct tsor_fconn *c) { local_down(c, 0); }

static void local_release(struct tsor_fconn *c)
{
  if (c->peer != NULL) c->peer->peer = NULL;
  free(c);
}

static int local_write_imm(struct tsor_fconn *c, const struct tsor_region *src, uint64_t src_off, uint32_t len,
                           uint64_t raddr, uint32_t rkey, uint32_t imm, uint64_t wr_id)
{
  if (c->down || c->peer == NULL) return -ENOTCONN;
  struct tsor_fconn *p = c->peer;
  struct tsor_region *dst = local_lookup(c->f, rkey);
  if (src_off > src->len || len > src->len - src_off) return -EINVAL;
  /* What an RC queue pair would do with a bad rkey or no receive posted:
   * fail the connection, not the process. */
  if ((len > 0 && (dst == NULL || raddr > dst->len || len > dst->len - raddr)) || p->posted == 0) {
    local_down(c, -EPROTO);
    return -EPROTO;
  }
  if (len > 0) memcpy((char *)dst->base + raddr, (const char *)src->base + src_off, len);
  p->posted--;
  struct tsor_fabric_cqe e = {.kind = TSOR_FC_RECV_IMM, .conn = p, .imm = imm, .len = len};
  tsor_cq_push(&c->f->cq, &e, false);
  e = (struct tsor_fabric_cqe){.kind = TSOR_FC_WRITE_DONE, .conn = c, .wr_id = wr_id, .len = len};
  tsor_cq_push(&c->f->cq, &e, false);
  return 0;
}

static int local_send(struct tsor_fconn *c, const void *msg, uint32_t len, uint64_t wr_id)
{
  if (c->down || c->peer == NULL) return -ENOTCONN;
  if (len > TSOR_FMSG_MAX) return -EMSGSIZE;
  struct tsor_fconn *p = c->peer;
  if (p->posted == 0) {
    local_down(c, -EPROTO);
    return -EPROTO;
  }
  p->posted--;
  struct tsor_fabric_cqe e = {.kind = TSOR_FC_RECV_MSG, .conn = p, .len = len};
  memcpy(e.msg, msg, len);
  tsor_cq_push(&c->f->cq, &e, false);
  e = (struct tsor_fabric_cqe){.kind = TSOR_FC_SEND_DONE, .conn = c, .wr_id = wr_id};
  tsor_cq_push(&c->f->cq, &e, false);
  return 0;
}

static int local_post_recv(struct tsor_fconn *c, uint32_t n)
{
  c->posted += n;
  return 0;
}

static int local_poll(struct tsor_fabric *fb, struct tsor_fabric_cqe *out, int max)
{
  return tsor_cq_pop(&((struct local_fabric *)fb)->cq, out, max);
}

static int local_arm(struct tsor_fabric *fb) { return tsor_cq_arm(&((struct local_fabric *)fb)->cq); }

const struct tsor_fabric_ops tsor_fabric_local = {
    .name = "local",
    .open = local_open,
    .close = local_close,
    .event_fd = local_event_fd,
    .reg = local_reg,
    .dereg = local_dereg,
    .connect = local_connect,
    .set_ctx = local_set_ctx,
    .conn_ctx = local_conn_ctx,
    .disconnect = local_disconnect,
    .release = local_release,
    .write_imm = local_write_imm,
    .send = local_send,
    .post_recv = local_post_recv,
    .poll = local_poll,
    .arm = local_arm,
};
