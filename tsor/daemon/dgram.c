/* tsord: UDP between TSoR pods. A datagram socket's write ring holds
 * records (header with the destination, then the bytes); tsord takes each
 * record, checks it, and delivers it into the destination socket's read
 * ring (header with the source), on this node directly, to another node
 * through a landing slot on the node connection. Unlike channels this
 * copies in tsord (datagrams are small, DNS above all) and never blocks: a
 * datagram that finds no room is dropped, as UDP allows. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "daemon/daemon.h"

static struct tsor_shm_slot *slot_of(struct dsock *ds) { return tsor_shm_slot(ds->cl->base, &ds->cl->h, ds->sd); }

static struct dsock *bound(struct tsor_daemon *d, uint32_t ip, uint16_t port)
{
  for (uint32_t i = 0; i < d->ndg; i++)
    if (d->dgs[i].ip == ip && d->dgs[i].port == port) return d->dgs[i].ds;
  return NULL;
}

int tsor_d_dgram_bind(struct dsock *ds, uint16_t port)
{
  struct tsor_daemon *d = ds->cl->d;
  if (ds->lport != 0) return -EINVAL;
  if (port == 0) {
    for (int tries = 0; tries < 28232 && port == 0; tries++) {
      if (d->next_port < 32768 || d->next_port > 60999) d->next_port = 32768;
      uint16_t p = d->next_port++;
      if (bound(d, ds->cl->pod_ip, p) == NULL) port = p;
    }
    if (port == 0) return -EADDRINUSE;
  } else if (bound(d, ds->cl->pod_ip, port) != NULL) {
    return -EADDRINUSE;
  }
  if (d->ndg == d->capdg) {
    uint32_t n = d->capdg ? d->capdg * 2 : 16;
    struct listener *v = realloc(d->dgs, sizeof(*v) * n);
    if (v == NULL) return -ENOMEM;
    d->dgs = v;
    d->capdg = n;
  }
  d->dgs[d->ndg++] = (struct listener){ds->cl->pod_ip, port, ds};
  ds->laddr = ds->cl->pod_ip;
  ds->lport = port;
  return 0;
}

void tsor_d_dgram_unbind(struct dsock *ds)
{
  struct tsor_daemon *d = ds->cl->d;
  for (uint32_t i = 0; i < d->ndg; i++)
    if (d->dgs[i].ds == ds) {
      d->dgs[i] = d->dgs[--d->ndg];
      return;
    }
}

/* Puts one datagram into a bound socket's read ring, or drops it. */
static void deliver(struct tsor_daemon *d, const struct tsor_dg_wire *w, const char *data)
{
  struct dsock *ds = bound(d, w->dst, w->dport);
  if (ds == NULL || ds->cl->dead) return; /* nobody there: dropped (no ICMP to send) */
  struct tsor_shm_slot *sl = slot_of(ds);
  uint32_t size = ds->cl->h.ring_size;
  uint64_t head = tsor_load_acq(&sl->rx_head);
  if (head < ds->rx_reported || head > ds->rx_prod) {
    tsor_d_client_kill(ds->cl, "read ring index out of range");
    return;
  }
  ds->rx_reported = head;
  uint64_t need = sizeof(struct tsor_dgram_hdr) + w->len;
  if (size - (ds->rx_prod - head) < need) return; /* full: dropped */
  char *ring = (char *)ds->cl->base + tsor_shm_rx_off(&ds->cl->h, ds->sd);
  struct tsor_dgram_hdr h = {.len = w->len, .addr = w->src, .port = w->sport};
  tsor_bring_put(ring, size, ds->rx_prod, &h, sizeof(h));
  tsor_bring_put(ring, size, ds->rx_prod + sizeof(h), data, w->len);
  ds->rx_prod += need;
  tsor_store_rel(&sl->rx_tail, ds->rx_prod);
  ds->cl->wake = true;
}

/* ---- between nodes ---- */

static void *map_slots(size_t n)
{
  void *p = mmap(NULL, n * TSOR_DG_SLOT, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

void tsor_d_dgram_conn_up(struct conn *c)
{
  if (c->fab == c->d->local) return; /* this node delivers directly */
  c->land = map_slots(TSOR_DG_SLOTS);
  c->stage = map_slots(TSOR_DG_SLOTS);
  if (c->land == NULL || c->stage == NULL) return;
  q_error *err = NULL;
  if (c->fab->ops->reg(c->fab, c->land, (uint64_t)TSOR_DG_SLOTS * TSOR_DG_SLOT, &c->land_reg, &err) == 0)
    c->has_land = true;
  q_error_free(&err);
  if (c->fab->ops->reg(c->fab, c->stage, (uint64_t)TSOR_DG_SLOTS * TSOR_DG_SLOT, &c->stage_reg, &err) == 0)
    c->has_stage = true;
  q_error_free(&err);
}

void tsor_d_dgram_conn_free(struct conn *c)
{
  if (c->has_land) c->fab->ops->dereg(c->fab, &c->land_reg);
  if (c->has_stage) c->fab->ops->dereg(c->fab, &c->stage_reg);
  if (c->land) munmap(c->land, (size_t)TSOR_DG_SLOTS * TSOR_DG_SLOT);
  if (c->stage) munmap(c->stage, (size_t)TSOR_DG_SLOTS * TSOR_DG_SLOT);
  c->land = c->stage = NULL;
  c->has_land = c->has_stage = false;
  while (c->dg_q) {
    struct dg_pending *p = c->dg_q;
    c->dg_q = p->next;
    free(p);
  }
}

void tsor_d_dgram_hello(struct conn *c, struct tsor_msg *h)
{
  if (!c->has_land) return;
  h->u.hello.land_addr = c->land_reg.addr;
  h->u.hello.land_key = c->land_reg.key;
  h->u.hello.land_slots = TSOR_DG_SLOTS;
}

void tsor_d_dgram_peer(struct conn *c, const struct tsor_msg *m)
{
  c->peer_land_addr = m->u.hello.land_addr;
  c->peer_land_key = m->u.hello.land_key;
  c->peer_land_slots = m->u.hello.land_slots > TSOR_DG_SLOTS ? 0 : m->u.hello.land_slots;
  c->dg_credits = c->peer_land_slots;
}

/* Writes one datagram into the peer's next landing slot; false when it has
 * to wait (no credit, no staging slot, no receive credit). */
static bool remote_send(struct conn *c, const struct tsor_dg_wire *w, const char *data)
{
  if (!c->ready || c->down || !c->has_stage || c->dg_credits == 0 || c->stage_busy == TSOR_DG_SLOTS ||
      c->credits < 2)
    return false;
  uint32_t s = c->stage_next++ % TSOR_DG_SLOTS, p = c->dg_next++ % c->peer_land_slots;
  char *slot = c->stage + (size_t)s * TSOR_DG_SLOT;
  memcpy(slot, w, sizeof(*w));
  memcpy(slot + sizeof(*w), data, w->len);
  c->stage_busy++;
  c->dg_credits--;
  c->credits--;
  c->fab->ops->write_imm(c->fc, &c->stage_reg, (uint64_t)s * TSOR_DG_SLOT, (uint32_t)(sizeof(*w) + w->len),
                         c->peer_land_addr + (uint64_t)p * TSOR_DG_SLOT, c->peer_land_key,
                         tsor_imm_make(TSOR_DG_CHAN + p, false), (uint64_t)(TSOR_DG_CHAN + s) << 32);
  return true;
}

void tsor_d_dgram_flush(struct conn *c)
{
  while (c->dg_q && remote_send(c, &c->dg_q->h, c->dg_q->data)) {
    struct dg_pending *p = c->dg_q;
    c->dg_q = p->next;
    free(p);
  }
}

static void queue(struct conn *c, const struct tsor_dg_wire *w, const char *data)
{
  uint32_t n = 0;
  struct dg_pending **pp = &c->dg_q;
  for (; *pp; pp = &(*pp)->next) n++;
  if (n >= 64) return; /* a bounded wait, then datagrams are dropped */
  struct dg_pending *p = malloc(sizeof(*p) + w->len);
  if (p == NULL) return;
  p->h = *w;
  p->next = NULL;
  memcpy(p->data, data, w->len);
  *pp = p;
}

void tsor_d_dgram_write_done(struct conn *c)
{
  if (c->stage_busy) c->stage_busy--;
  tsor_d_dgram_flush(c);
}

void tsor_d_dgram_on_imm(struct conn *c, uint32_t slot, uint32_t len)
{
  if (!c->has_land || slot >= TSOR_DG_SLOTS) return;
  const char *p = c->land + (size_t)slot * TSOR_DG_SLOT;
  struct tsor_dg_wire w;
  memcpy(&w, p, sizeof(w));
  if (len >= sizeof(w) && w.len <= TSOR_DGRAM_MAX && len == sizeof(w) + w.len) deliver(c->d, &w, p + sizeof(w));
  /* The slot is free again as soon as it is copied out (or dropped). */
  struct tsor_msg m = {.type = MSG_DCREDIT};
  m.u.dcredit.count = 1;
  tsor_d_msg_send(c, &m);
}

void tsor_d_dgram_credit(struct conn *c, uint32_t count)
{
  c->dg_credits += count;
  if (c->dg_credits > c->peer_land_slots) c->dg_credits = c->peer_land_slots;
  tsor_d_dgram_flush(c);
}

/* ---- the sending socket ---- */

void tsor_d_dgram_tx(struct dsock *ds)
{
  struct client *cl = ds->cl;
  struct tsor_daemon *d = cl->d;
  struct tsor_shm_slot *sl = slot_of(ds);
  uint32_t size = cl->h.ring_size;
  uint64_t tail = tsor_load_acq(&sl->tx_tail), pos = ds->tx_done;
  if (tsor_bring_used(pos, tail, size) < 0) {
    tsor_d_client_kill(cl, "write ring index out of range");
    return;
  }
  const char *ring = (const char *)cl->base + tsor_shm_tx_off(&cl->h, ds->sd);
  static char buf[TSOR_DGRAM_MAX];
  while (tail - pos >= sizeof(struct tsor_dgram_hdr)) {
    struct tsor_dgram_hdr h;
    tsor_bring_get(ring, size, pos, &h, sizeof(h));
    if (h.len > TSOR_DGRAM_MAX || tail - pos < sizeof(h) + h.len) {
      tsor_d_client_kill(cl, "bad datagram record");
      return;
    }
    /* One copy out of the client's memory, then only that copy is used:
     * the client cannot change it under us. */
    tsor_bring_get(ring, size, pos + sizeof(h), buf, h.len);
    pos += sizeof(h) + h.len;
    if (ds->lport == 0 && tsor_d_dgram_bind(ds, 0) < 0) continue;
    struct tsor_dg_wire w = {.len = h.len, .src = ds->laddr, .dst = h.addr, .sport = ds->lport, .dport = h.port};
    struct node *n = tsor_d_node_by_addr(d, h.addr);
    if (n == d->self) {
      deliver(d, &w, buf);
    } else if (n != NULL) {
      struct conn *c = tsor_d_conn_get(d, n);
      if (c != NULL && (c->dg_q != NULL || !remote_send(c, &w, buf))) queue(c, &w, buf);
    }
    /* No TSoR node owns it: dropped (no UDP egress). */
  }
  ds->tx_done = pos;
  tsor_store_rel(&sl->tx_head, pos);
  cl->wake = true;
}
