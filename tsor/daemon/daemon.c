/* tsord: carries the TSoR sockets of every sandbox on this node.
 *
 * One thread runs everything: the unix socket sandboxes attach to, their
 * request rings, and the completions of two fabrics (local for pods on this
 * node, tcp or verbs for other nodes). It spins briefly while there is work,
 * then sleeps in epoll after telling every client so (daemon_sleeping), so
 * clients kick its eventfd only when it sleeps.
 *
 * Data never passes through tsord's own memory: a channel's bytes go from
 * the writer's write ring (in its arena, registered with the fabric) to the
 * reader's read ring (in the peer's arena) by one fabric write. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"

#define SPIN_NS 50000

/* How long to spin before sleeping, and whether to yield the CPU while
 * spinning (on hosts with fewer cores than busy processes, a spinner that
 * does not yield steals the time slice of the process it waits for).
 * Yielding is the default: it costs a syscall per spin round where a core
 * is free, and saves whole time slices where none is.
 * TSOR_SPIN_NS / TSOR_SPIN_YIELD override them for benchmarking. */
static int64_t spin_ns(void)
{
  static int64_t v = -1;
  if (v < 0) {
    const char *e = getenv("TSOR_SPIN_NS");
    v = e ? atoll(e) : SPIN_NS;
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


static void conn_flush(struct conn *c);
static void tx_try(struct dsock *ds);
static void apply(struct dsock *ds, uint32_t act);

/* ---- clients: completions and wake-ups ---- */

static void client_kill(struct client *cl, const char *why);

static void client_cqe(struct client *cl, const struct tsor_shm_cqe *e)
{
  if (cl->dead) return;
  uint32_t head = tsor_load_acq(&cl->sh->cq.head), tail = cl->cq_tail;
  if (cl->ovf_n == 0 && tail - head < cl->h.qentries) {
    cl->cqr[tail % cl->h.qentries] = *e;
    cl->cq_tail = tail + 1;
    tsor_store_rel(&cl->sh->cq.tail, tail + 1);
  } else {
    if (cl->ovf_n >= TSOR_MAX_SLOTS * 4u) {
      /* A client that stopped reading completions would grow this forever. */
      client_kill(cl, "completion ring not drained");
      return;
    }
    /* The ring is full (or already overflowed, keep the order): park it. */
    if (cl->ovf_n == cl->ovf_cap) {
      uint32_t ncap = cl->ovf_cap ? cl->ovf_cap * 2 : 64;
      struct tsor_shm_cqe *v = malloc(sizeof(*v) * ncap);
      if (v == NULL) return;
      for (uint32_t i = 0; i < cl->ovf_n; i++) v[i] = cl->ovf[(cl->ovf_head + i) % cl->ovf_cap];
      free(cl->ovf);
      cl->ovf = v;
      cl->ovf_cap = ncap;
      cl->ovf_head = 0;
    }
    cl->ovf[(cl->ovf_head + cl->ovf_n) % cl->ovf_cap] = *e;
    cl->ovf_n++;
  }
  cl->wake = true;
}

static void client_flush_ovf(struct client *cl)
{
  while (cl->ovf_n > 0) {
    uint32_t head = tsor_load_acq(&cl->sh->cq.head), tail = cl->cq_tail;
    if (tail - head >= cl->h.qentries) return;
    cl->cqr[tail % cl->h.qentries] = cl->ovf[cl->ovf_head];
    cl->cq_tail = tail + 1;
    tsor_store_rel(&cl->sh->cq.tail, tail + 1);
    cl->ovf_head = (cl->ovf_head + 1) % cl->ovf_cap;
    cl->ovf_n--;
    cl->wake = true;
  }
}

static void client_wake(struct client *cl)
{
  if (!cl->wake || cl->dead) return;
  cl->wake = false;
  tsor_fence();
  if (tsor_load_acq(&cl->sh->client_sleeping)) {
    uint64_t one = 1;
    ssize_t r = write(cl->kick_out, &one, sizeof(one));
    (void)r; /* EAGAIN: the counter is already non-zero, the client will wake */
  }
}

static struct tsor_shm_slot *slot_of(struct dsock *ds) { return tsor_shm_slot(ds->cl->base, &ds->cl->h, ds->sd); }

static void publish(struct dsock *ds)
{
  if (ds->cl->dead) return;
  tsor_store_rel(&slot_of(ds)->dstate, tsor_chan_dstate(&ds->sm));
  ds->cl->wake = true;
}

static struct tsor_region *region_for(struct dsock *ds)
{
  return ds->conn->fab == ds->cl->d->local ? &ds->cl->reg_local : &ds->cl->reg_net;
}

/* ---- node connections: channel ids, receive credits, ordered output ---- */

static int chan_alloc(struct conn *c, struct dsock *ds, uint32_t *out)
{
  uint32_t id;
  if (c->nfree > 0) {
    id = c->freeids[--c->nfree];
  } else {
    if (c->next_id >= TSOR_DG_CHAN) return -ENOSPC; /* the ids above name datagram slots */
    if (c->next_id == c->nchans) {
      uint32_t n = c->nchans ? c->nchans * 2 : 64;
      struct dsock **v = realloc(c->chans, sizeof(*v) * n);
      if (v == NULL) return -ENOMEM;
      memset(v + c->nchans, 0, sizeof(*v) * (n - c->nchans));
      c->chans = v;
      c->nchans = n;
    }
    id = c->next_id++;
  }
  c->chans[id] = ds;
  c->live++;
  ds->cl->live_chans++;
  *out = id;
  return 0;
}

static void chan_free(struct conn *c, uint32_t id)
{
  struct dsock *ds = c->chans[id];
  c->chans[id] = NULL;
  c->live--;
  if (ds != NULL) ds->cl->live_chans--;
  if (c->nfree == c->capfree) {
    uint32_t n = c->capfree ? c->capfree * 2 : 64;
    uint32_t *v = realloc(c->freeids, sizeof(*v) * n);
    if (v == NULL) return; /* the id is lost, not reused: harmless */
    c->freeids = v;
    c->capfree = n;
  }
  c->freeids[c->nfree++] = id;
}

static struct dsock *chan_get(struct conn *c, uint32_t id)
{
  return id < c->nchans ? c->chans[id] : NULL;
}

static void raw_send(struct conn *c, struct tsor_msg *m)
{
  uint32_t give = c->owed > 65535 ? 65535 : c->owed;
  m->rcredits = (uint16_t)give;
  c->owed -= give;
  c->credits--;
  c->fab->ops->send(c->fc, m, sizeof(*m), 0); /* a failure takes the connection down: DOWN follows */
}

static void raw_fin(struct conn *c, uint32_t chan, uint32_t peer_chan)
{
  struct dsock *ds = chan_get(c, chan);
  c->credits--;
  struct tsor_region *r = ds ? region_for(ds) : NULL;
  if (r == NULL) return;
  c->fab->ops->write_imm(c->fc, r, 0, 0, 0, 0, tsor_imm_make(peer_chan, true), (uint64_t)chan << 32);
}

static void outq_push(struct conn *c, const struct outq_ent *e)
{
  if (c->outn == c->outcap) {
    uint32_t n = c->outcap ? c->outcap * 2 : 64;
    struct outq_ent *v = malloc(sizeof(*v) * n);
    if (v == NULL) return;
    for (uint32_t i = 0; i < c->outn; i++) v[i] = c->outq[(c->outhead + i) % c->outcap];
    free(c->outq);
    c->outq = v;
    c->outcap = n;
    c->outhead = 0;
  }
  c->outq[(c->outhead + c->outn) % c->outcap] = *e;
  c->outn++;
}

/* Messages leave in order; the last receive credit is kept for RCREDIT so
 * that two nodes out of credits can always hand each other some back. */
static void msg_send(struct conn *c, struct tsor_msg *m)
{
  if (c->down) return;
  if (c->ready && c->outn == 0 && c->credits >= 2) {
    raw_send(c, m);
    return;
  }
  struct outq_ent e = {.fin = false, .m = *m};
  outq_push(c, &e);
}

static void fin_send(struct conn *c, struct dsock *ds)
{
  if (c->down) return;
  ds->writes_out++;
  if (c->ready && c->outn == 0 && c->credits >= 2) {
    raw_fin(c, ds->chan, ds->peer_chan);
    return;
  }
  struct outq_ent e = {.fin = true, .chan = ds->chan, .peer_chan = ds->peer_chan};
  outq_push(c, &e);
}

static void conn_flush(struct conn *c)
{
  if (!c->ready || c->down) return;
  while (c->outn > 0 && c->credits >= 2) {
    struct outq_ent e = c->outq[c->outhead];
    c->outhead = (c->outhead + 1) % c->outcap;
    c->outn--;
    if (e.fin)
      raw_fin(c, e.chan, e.peer_chan);
    else
      raw_send(c, &e.m);
  }
  while (c->whead != NULL && c->outn == 0 && c->credits >= 2) {
    struct dsock *ds = c->whead;
    c->whead = ds->wnext;
    if (c->whead == NULL) c->wtail = NULL;
    ds->waiting = false;
    tx_try(ds);
  }
  if (c->owed >= TSOR_RECV_DEPTH / 4 && c->credits >= 1) {
    struct tsor_msg m = {.type = MSG_RCREDIT};
    raw_send(c, &m);
  }
  tsor_d_dgram_flush(c);
}

static void wait_credits(struct conn *c, struct dsock *ds)
{
  if (ds->waiting) return;
  ds->waiting = true;
  ds->wnext = NULL;
  if (c->wtail) c->wtail->wnext = ds;
  else c->whead = ds;
  c->wtail = ds;
}

static void wait_remove(struct conn *c, struct dsock *ds)
{
  if (!ds->waiting) return;
  struct dsock **pp = &c->whead, *prev = NULL;
  while (*pp && *pp != ds) {
    prev = *pp;
    pp = &(*pp)->wnext;
  }
  if (*pp) {
    *pp = ds->wnext;
    if (c->wtail == ds) c->wtail = prev;
  }
  ds->waiting = false;
}

static struct conn *conn_new(struct tsor_daemon *d, struct tsor_fabric *fab)
{
  struct conn *c = calloc(1, sizeof(*c));
  if (c == NULL) return NULL;
  c->d = d;
  c->fab = fab;
  c->next = d->conns;
  d->conns = c;
  return c;
}

static struct conn *conn_get(struct tsor_daemon *d, struct node *n)
{
  if (n->conn != NULL) return n->conn;
  struct tsor_fabric *fab = n == d->self ? d->local : d->net;
  if (fab == NULL) return NULL;
  struct conn *c = conn_new(d, fab);
  if (c == NULL) return NULL;
  c->node = n;
  c->outgoing = true;
  if (fab->ops->connect(fab, &n->addr, c, &c->fc) < 0) {
    d->conns = c->next;
    free(c);
    return NULL;
  }
  n->conn = c;
  return c;
}

/* ---- the data path ---- */

static uint64_t client_tx_tail(struct dsock *ds, bool *bad)
{
  uint64_t tail = tsor_load_acq(&slot_of(ds)->tx_tail);
  if (tsor_bring_used(ds->cr.sent, tail, ds->cl->h.ring_size) < 0 || tail - ds->tx_done > ds->cl->h.ring_size) {
    *bad = true;
    return ds->cr.sent;
  }
  return tail;
}

/* Hands as much of the client's write ring to the fabric as byte credits
 * (room in the peer's read ring) and receive credits allow. */
static void tx_try(struct dsock *ds)
{
  struct conn *c = ds->conn;
  if (ds->cl->dead || c == NULL || ds->sm.st != TSOR_CS_OPEN || ds->sm.term_sent || ds->free_pending) return;
  if (!c->ready || c->down) return;
  bool bad = false;
  uint64_t tail = client_tx_tail(ds, &bad);
  if (bad) {
    client_kill(ds->cl, "write ring index out of range");
    return;
  }
  if (ds->sm.shut_wr && ds->sm.fin_sent) return; /* bytes after shutdown are dropped */
  struct tsor_region *r = region_for(ds);
  uint32_t wsize = ds->cl->h.ring_size;
  while (tail > ds->cr.sent) {
    uint64_t n = tail - ds->cr.sent;
    uint64_t room = tsor_credit_avail(&ds->cr);
    if (room == 0) return; /* the peer's CREDIT brings us back */
    if (c->outn > 0 || c->credits < 2) {
      wait_credits(c, ds);
      return;
    }
    if (n > room) n = room;
    uint32_t lc = tsor_bring_contig(wsize, ds->cr.sent);
    uint32_t rc = tsor_bring_contig(ds->cr.window, ds->cr.sent);
    if (n > lc) n = lc;
    if (n > rc) n = rc;
    if (n > TSOR_MAX_CHUNK) n = TSOR_MAX_CHUNK;
    uint64_t src = tsor_shm_tx_off(&ds->cl->h, ds->sd) + (ds->cr.sent & (wsize - 1));
    uint64_t dst = ds->peer_raddr + (ds->cr.sent & (ds->cr.window - 1));
    c->credits--;
    ds->writes_out++;
    tsor_credit_take(&ds->cr, n);
    int e = c->fab->ops->write_imm(c->fc, r, src, (uint32_t)n, dst, ds->peer_rkey, tsor_imm_make(ds->peer_chan, false),
                                   ((uint64_t)ds->chan << 32) | n);
    if (e < 0) {
      ds->writes_out--;
      return; /* the connection is going down */
    }
  }
  if (!ds->sm.drained) apply(ds, tsor_chan_step(&ds->sm, TSOR_EV_TX_DRAINED));
}

static void release_slot(struct dsock *ds);

static void do_free_chan(struct dsock *ds)
{
  struct conn *c = ds->conn;
  if (c != NULL) {
    wait_remove(c, ds);
    chan_free(c, ds->chan);
  }
  ds->conn = NULL;
  ds->free_pending = false;
  if (ds->sm.released) release_slot(ds);
}

static void apply(struct dsock *ds, uint32_t act)
{
  struct conn *c = ds->conn;
  if ((act & TSOR_ACT_SEND_FIN) && c) fin_send(c, ds);
  if ((act & TSOR_ACT_SEND_CLOSE) && c) {
    struct tsor_msg m = {.type = MSG_CLOSE, .chan = ds->peer_chan};
    msg_send(c, &m);
  }
  if ((act & TSOR_ACT_SEND_RESET) && c) {
    struct tsor_msg m = {.type = MSG_RESET, .chan = ds->peer_chan};
    msg_send(c, &m);
  }
  if (act & TSOR_ACT_PUBLISH) publish(ds);
  if (act & TSOR_ACT_FREE_CHAN) {
    if (ds->writes_out > 0 && c && !c->down)
      ds->free_pending = true;
    else
      do_free_chan(ds);
  } else if ((act & TSOR_ACT_RELEASE) && ds->conn == NULL) {
    release_slot(ds);
  }
}

/* ---- slots ---- */


static struct dsock *slot_alloc(struct client *cl)
{
  if (cl->nfree == 0) return NULL;
  uint32_t sd = cl->freeslots[--cl->nfree];
  struct dsock *ds = &cl->socks[sd];
  memset(ds, 0, sizeof(*ds));
  ds->cl = cl;
  ds->sd = sd;
  ds->used = true;
  struct tsor_shm_slot *s = slot_of(ds);
  s->rx_tail = s->tx_head = s->rx_head = s->tx_tail = 0;
  s->dstate = s->accepted = s->tx_armed = 0;
  tsor_fence();
  return ds;
}

static void listener_remove(struct tsor_daemon *d, struct dsock *ds)
{
  if (d->egress == ds) d->egress = NULL;
  for (uint32_t i = 0; i < d->nlst; i++)
    if (d->lst[i].ds == ds) {
      d->lst[i] = d->lst[--d->nlst];
      return;
    }
}

static void release_slot(struct dsock *ds)
{
  struct client *cl = ds->cl;
  if (!ds->used) return;
  ds->used = false;
  if (ds->sm.st == TSOR_CS_LISTEN) listener_remove(cl->d, ds);
  if (ds->dgram) tsor_d_dgram_unbind(ds);
  cl->freeslots[cl->nfree++] = ds->sd;
  if (!cl->dead) {
    struct tsor_shm_cqe e = {.op = TSOR_CQE_RELEASED, .sd = ds->sd};
    client_cqe(cl, &e);
  }
}

/* ---- client requests ---- */

/* Egress connects from tsord's network namespace, so addresses that mean
 * "this host" there must not be reachable through it: a pod's 127.0.0.1 is
 * its own, not the node's. */
static bool egress_allowed(uint32_t addr)
{
  uint32_t a = ntohl(addr);
  uint8_t top = (uint8_t)(a >> 24);
  return top != 127 && top != 0 && top < 224; /* loopback, "this network", multicast and above */
}

static void req_connect(struct client *cl, struct dsock *ds, const struct tsor_shm_req *r)
{
  struct tsor_daemon *d = cl->d;
  struct tsor_shm_cqe e = {.op = TSOR_CQE_CONNECTED, .sd = ds->sd};
  if (ds->sm.st != TSOR_CS_IDLE) {
    e.res = ds->sm.st == TSOR_CS_CONNECTING ? -EALREADY : -EISCONN;
    client_cqe(cl, &e);
    return;
  }
  struct node *n = tsor_d_node_by_addr(d, r->addr);
  /* No TSoR node owns it: out through this node's egress, when there is
   * one (it lives on this node, so the local loop carries it). */
  bool egress = n == NULL && d->egress != NULL && !d->egress->cl->dead && egress_allowed(r->addr);
  if (egress) n = d->self;
  struct conn *c = n ? conn_get(d, n) : NULL;
  if (c == NULL) {
    e.res = -ENETUNREACH;
    client_cqe(cl, &e);
    return;
  }
  ds->conn = c;
  if (chan_alloc(c, ds, &ds->chan) < 0) {
    ds->conn = NULL;
    e.res = -ENOBUFS;
    client_cqe(cl, &e);
    return;
  }
  if (d->next_port < 32768 || d->next_port > 60999) d->next_port = 32768;
  ds->laddr = cl->pod_ip;
  ds->lport = d->next_port++;
  if (cl->internal && r->arg != 0) {
    /* the gateway connects on behalf of an outside client */
    ds->laddr = r->arg;
    ds->lport = r->pad;
  }
  ds->raddr = r->addr;
  ds->rport = r->port;
  tsor_chan_step(&ds->sm, TSOR_EV_CONNECT);
  struct tsor_region *reg = region_for(ds);
  struct tsor_msg m = {.type = MSG_CONNECT, .flags = egress ? MSG_F_EGRESS : 0};
  m.u.connect.src_chan = ds->chan;
  m.u.connect.saddr = ds->laddr;
  m.u.connect.daddr = ds->raddr;
  m.u.connect.sport = ds->lport;
  m.u.connect.dport = ds->rport;
  m.u.connect.rkey = reg->key;
  m.u.connect.raddr = reg->addr + tsor_shm_rx_off(&cl->h, ds->sd);
  m.u.connect.ring_size = cl->h.ring_size;
  msg_send(c, &m);
}

static void req_listen(struct client *cl, struct dsock *ds, const struct tsor_shm_req *r)
{
  struct tsor_daemon *d = cl->d;
  struct tsor_shm_cqe e = {.op = TSOR_CQE_LISTENED, .sd = ds->sd};
  if (ds->sm.st != TSOR_CS_IDLE) {
    e.res = -EINVAL;
  } else if (r->arg & TSOR_LISTEN_EGRESS) {
    if (!cl->internal)
      e.res = -EPERM;
    else if (d->egress != NULL)
      e.res = -EADDRINUSE;
    else {
      d->egress = ds;
      uint32_t b = r->arg & ~TSOR_LISTEN_EGRESS;
      ds->backlog = b == 0 ? 1 : (b > 65535 ? 65535 : (int)b);
      ds->laddr = cl->pod_ip;
      tsor_chan_step(&ds->sm, TSOR_EV_LISTEN);
    }
  } else if (r->port == 0) {
    e.res = -EINVAL;
  } else {
    for (uint32_t i = 0; i < d->nlst; i++)
      if (d->lst[i].ip == cl->pod_ip && d->lst[i].port == r->port) e.res = -EADDRINUSE;
    if (e.res == 0 && d->nlst == d->caplst) {
      uint32_t n = d->caplst ? d->caplst * 2 : 16;
      struct listener *v = realloc(d->lst, sizeof(*v) * n);
      if (v == NULL)
        e.res = -ENOMEM;
      else {
        d->lst = v;
        d->caplst = n;
      }
    }
    if (e.res == 0) {
      d->lst[d->nlst++] = (struct listener){cl->pod_ip, r->port, ds};
      ds->backlog = r->arg == 0 ? 1 : (r->arg > 65535 ? 65535 : (int)r->arg);
      ds->laddr = cl->pod_ip;
      ds->lport = r->port;
      tsor_chan_step(&ds->sm, TSOR_EV_LISTEN);
    }
  }
  client_cqe(cl, &e);
}

static void req_rxdone(struct dsock *ds)
{
  if (ds->conn == NULL || ds->sm.st != TSOR_CS_OPEN || ds->sm.term_sent) return;
  uint64_t head = tsor_load_acq(&slot_of(ds)->rx_head);
  if (head < ds->rx_reported || head > ds->rx_prod) {
    client_kill(ds->cl, "read ring index out of range");
    return;
  }
  if (head == ds->rx_reported) return;
  ds->rx_reported = head;
  struct tsor_msg m = {.type = MSG_CREDIT, .chan = ds->peer_chan};
  m.u.credit.consumed = head;
  msg_send(ds->conn, &m);
}

static void req_close(struct client *cl, struct dsock *ds, bool abort)
{
  if (ds->sm.released) return;
  if (ds->sm.st == TSOR_CS_LISTEN) listener_remove(cl->d, ds);
  if (!abort) tx_try(ds);
  if (cl->dead) return;
  uint64_t head = tsor_load_acq(&slot_of(ds)->rx_head);
  bool unread = abort || head != ds->rx_prod;
  apply(ds, tsor_chan_step(&ds->sm, unread ? TSOR_EV_CLOSE_UNREAD : TSOR_EV_CLOSE));
  if (ds->sm.st == TSOR_CS_IDLE || ds->sm.st == TSOR_CS_LISTEN || (ds->sm.st == TSOR_CS_DONE && ds->conn == NULL))
    release_slot(ds);
}

static int client_requests(struct client *cl)
{
  if (cl->dead) return 0;
  uint32_t head = cl->req_head, tail = tsor_load_acq(&cl->sh->req.tail);
  int used = tsor_q_used(head, tail, cl->h.qentries);
  if (used < 0) {
    client_kill(cl, "request ring index out of range");
    return 1;
  }
  int n = 0;
  while (head != tail && n < 256 && !cl->dead) {
    struct tsor_shm_req r = cl->req[head % cl->h.qentries]; /* one read of guest-writable memory */
    head++;
    n++;
    if (r.op == TSOR_REQ_SOCKET) {
      struct dsock *ds = slot_alloc(cl);
      if (ds) ds->dgram = r.arg == 1;
      struct tsor_shm_cqe e = {.op = TSOR_CQE_SOCKET, .res = ds ? (int32_t)ds->sd : -ENOBUFS};
      client_cqe(cl, &e);
      continue;
    }
    if (r.sd >= cl->h.nslots || !cl->socks[r.sd].used) {
      if (r.op == TSOR_REQ_CONNECT || r.op == TSOR_REQ_LISTEN || r.op == TSOR_REQ_BIND) {
        struct tsor_shm_cqe e = {.op = r.op == TSOR_REQ_CONNECT ? TSOR_CQE_CONNECTED : TSOR_CQE_LISTENED,
                                 .sd = r.sd, .res = -EBADF};
        client_cqe(cl, &e);
      }
      continue;
    }
    struct dsock *ds = &cl->socks[r.sd];
    switch (r.op) {
    case TSOR_REQ_CONNECT: req_connect(cl, ds, &r); break;
    case TSOR_REQ_LISTEN: req_listen(cl, ds, &r); break;
    case TSOR_REQ_TX:
      tsor_store_rel(&slot_of(ds)->tx_armed, 0);
      tsor_fence(); /* clear before reading tx_tail: a later write re-arms */
      if (ds->dgram) {
        tsor_d_dgram_tx(ds);
        break;
      }
      ds->sm.drained = false;
      tx_try(ds);
      break;
    case TSOR_REQ_BIND: {
      struct tsor_shm_cqe e = {.op = TSOR_CQE_BOUND, .sd = ds->sd};
      e.res = ds->dgram ? tsor_d_dgram_bind(ds, r.port) : -EOPNOTSUPP;
      e.port = ds->lport;
      client_cqe(cl, &e);
      break;
    }
    case TSOR_REQ_RXDONE: req_rxdone(ds); break;
    case TSOR_REQ_SHUTDOWN:
      tx_try(ds);
      if (!cl->dead) apply(ds, tsor_chan_step(&ds->sm, TSOR_EV_SHUTDOWN));
      break;
    case TSOR_REQ_CLOSE: req_close(cl, ds, false); break;
    case TSOR_REQ_ABORT: req_close(cl, ds, true); break;
    default: client_kill(cl, "unknown request"); break;
    }
  }
  cl->req_head = head;
  if (!cl->dead) tsor_store_rel(&cl->sh->req.head, head);
  return n;
}

/* ---- messages from the other end of a node connection ---- */

static void refuse(struct conn *c, uint32_t chan, int err)
{
  struct tsor_msg m = {.type = MSG_REFUSE, .chan = chan};
  m.u.refuse.err = err;
  msg_send(c, &m);
}

static void on_connect(struct conn *c, const struct tsor_msg *m)
{
  struct tsor_daemon *d = c->d;
  struct dsock *lds = NULL;
  bool egress = (m->flags & MSG_F_EGRESS) != 0;
  if (egress && c->fab == d->local)
    lds = d->egress; /* only from pods of this node */
  for (uint32_t i = 0; !egress && i < d->nlst; i++)
    if (d->lst[i].ip == m->u.connect.daddr && d->lst[i].port == m->u.connect.dport) lds = d->lst[i].ds;
  if (lds == NULL || lds->cl->dead) {
    refuse(c, m->u.connect.src_chan, ECONNREFUSED);
    return;
  }
  struct client *cl = lds->cl;
  uint32_t accepted = tsor_load_acq(&slot_of(lds)->accepted);
  uint32_t pending = lds->delivered - accepted;
  if (pending > lds->delivered) pending = lds->delivered; /* a client claiming too much only hurts itself */
  uint32_t rs = m->u.connect.ring_size;
  if (!tsor_is_pow2(rs) || rs < TSOR_MIN_RING || rs > TSOR_MAX_RING) {
    refuse(c, m->u.connect.src_chan, EINVAL);
    return;
  }
  if ((int)pending >= lds->backlog) {
    /* Backlog full: refused at once (TCP with tcp_abort_on_overflow), so the
     * connector learns it now instead of after SYN retries. */
    refuse(c, m->u.connect.src_chan, ECONNREFUSED);
    return;
  }
  struct dsock *ds = slot_alloc(cl);
  if (ds == NULL) {
    refuse(c, m->u.connect.src_chan, ENOBUFS);
    return;
  }
  ds->conn = c;
  if (chan_alloc(c, ds, &ds->chan) < 0) {
    ds->conn = NULL;
    ds->used = false;
    cl->freeslots[cl->nfree++] = ds->sd;
    refuse(c, m->u.connect.src_chan, ENOBUFS);
    return;
  }
  tsor_chan_step(&ds->sm, TSOR_EV_INCOMING);
  ds->peer_chan = m->u.connect.src_chan;
  ds->peer_rkey = m->u.connect.rkey;
  ds->peer_raddr = m->u.connect.raddr;
  ds->cr.window = rs;
  ds->laddr = m->u.connect.daddr;
  ds->lport = m->u.connect.dport;
  ds->raddr = m->u.connect.saddr;
  ds->rport = m->u.connect.sport;
  struct tsor_region *reg = region_for(ds);
  struct tsor_msg a = {.type = MSG_ACCEPT, .chan = ds->peer_chan};
  a.u.accept.src_chan = ds->chan;
  a.u.accept.rkey = reg->key;
  a.u.accept.raddr = reg->addr + tsor_shm_rx_off(&cl->h, ds->sd);
  a.u.accept.ring_size = cl->h.ring_size;
  msg_send(c, &a);
  lds->delivered++;
  struct tsor_shm_cqe e = {.op = TSOR_CQE_ACCEPTED, .sd = lds->sd, .arg = ds->sd, .addr = ds->raddr, .port = ds->rport};
  if (egress) {
    /* The gateway needs where the pod wanted to go, not who the pod is. */
    e.addr = m->u.connect.daddr;
    e.port = m->u.connect.dport;
  }
  client_cqe(cl, &e);
}

static void send_hello(struct conn *c)
{
  struct tsor_msg h = {.type = MSG_HELLO};
  snprintf(h.u.hello.name, sizeof(h.u.hello.name), "%s", c->d->self->name);
  h.u.hello.boot = c->d->boot;
  tsor_d_dgram_hello(c, &h);
  raw_send(c, &h);
}

static void on_hello(struct conn *c, const struct tsor_msg *m)
{
  struct tsor_daemon *d = c->d;
  char name[33];
  memcpy(name, m->u.hello.name, 32);
  name[32] = '\0';
  c->peer_boot = m->u.hello.boot;
  tsor_d_dgram_peer(c, m);
  if (c->outgoing && c->node != NULL && c->node != d->self && strcmp(name, c->node->name) != 0) {
    q_warn(NULL, "tsord: %s answers as node \"%s\", not %s: check the peer table", c->node->address, name,
           c->node->name);
    c->fab->ops->disconnect(c->fc);
    return;
  }
  if (c->outgoing || c->fab == d->local) {
    if (!c->outgoing) { /* passive end of a local loop */
      send_hello(c);
      c->node = d->self;
    }
    if (c->outgoing && c->node != d->self) q_info(NULL, "tsord: node %s connected (%s)", name, c->fab->ops->name);
    c->ready = true;
    conn_flush(c);
    return;
  }
  struct node *n = tsor_d_node_by_name(d, name);
  if (n == NULL || n == d->self) {
    q_warn(NULL, "tsord: connection from unknown node \"%s\" dropped", name);
    c->fab->ops->disconnect(c->fc);
    return;
  }
  struct conn *old = n->conn;
  if (old != NULL && old != c && old->ready && old->peer_boot != m->u.hello.boot) {
    /* The peer restarted (its old connection may look alive here for a
     * while): that connection and its channels are dead. */
    q_info(NULL, "tsord: node %s restarted", name);
    old->node = NULL;
    n->conn = NULL;
    old->fab->ops->disconnect(old->fc);
    old = NULL;
  }
  if (old != NULL && old != c) {
    /* Both nodes dialled at once: keep the connection the node with the
     * smaller name started; both ends decide the same. */
    bool keep_old = old->ready || strcmp(d->self->name, name) < 0;
    if (keep_old) {
      c->fab->ops->disconnect(c->fc);
      return;
    }
    /* Adopt the incoming one: nothing was sent on ours yet (not ready), so
     * its channels and queued messages move over unchanged. */
    c->chans = old->chans;
    c->nchans = old->nchans;
    c->next_id = old->next_id;
    c->live = old->live;
    c->freeids = old->freeids;
    c->nfree = old->nfree;
    c->capfree = old->capfree;
    c->outq = old->outq;
    c->outhead = old->outhead;
    c->outn = old->outn;
    c->outcap = old->outcap;
    c->whead = old->whead;
    c->wtail = old->wtail;
    c->dg_q = old->dg_q;
    old->dg_q = NULL;
    for (uint32_t i = 0; i < c->nchans; i++)
      if (c->chans[i]) c->chans[i]->conn = c;
    old->chans = NULL;
    old->nchans = old->live = old->next_id = 0;
    old->freeids = NULL;
    old->nfree = old->capfree = 0;
    old->outq = NULL;
    old->outn = old->outcap = old->outhead = 0;
    old->whead = old->wtail = NULL;
    old->node = NULL;
    old->fab->ops->disconnect(old->fc);
  }
  n->conn = c;
  c->node = n;
  send_hello(c);
  c->ready = true;
  q_info(NULL, "tsord: node %s connected (%s)", name, c->fab->ops->name);
  conn_flush(c);
}

static void on_msg(struct conn *c, const struct tsor_msg *m)
{
  c->credits += m->rcredits;
  if (m->type == MSG_HELLO) {
    on_hello(c, m);
    return;
  }
  if (!c->ready) {
    c->fab->ops->disconnect(c->fc);
    return;
  }
  if (m->type == MSG_RCREDIT) return;
  if (m->type == MSG_DCREDIT) {
    tsor_d_dgram_credit(c, m->u.dcredit.count);
    return;
  }
  if (m->type == MSG_CONNECT) {
    on_connect(c, m);
    return;
  }
  struct dsock *ds = chan_get(c, m->chan);
  if (ds == NULL) {
    q_debug(NULL, "tsord: message %u for unknown channel %u", m->type, m->chan);
    return;
  }
  switch (m->type) {
  case MSG_ACCEPT: {
    uint32_t rs = m->u.accept.ring_size;
    if (ds->sm.st != TSOR_CS_CONNECTING || !tsor_is_pow2(rs) || rs < TSOR_MIN_RING || rs > TSOR_MAX_RING) return;
    ds->peer_chan = m->u.accept.src_chan;
    ds->peer_rkey = m->u.accept.rkey;
    ds->peer_raddr = m->u.accept.raddr;
    ds->cr.window = rs;
    bool released = ds->sm.released;
    apply(ds, tsor_chan_step(&ds->sm, TSOR_EV_ACCEPTED));
    if (!released) {
      struct tsor_shm_cqe e = {.op = TSOR_CQE_CONNECTED, .sd = ds->sd};
      client_cqe(ds->cl, &e);
      tx_try(ds);
    }
    break;
  }
  case MSG_REFUSE: {
    if (ds->sm.st != TSOR_CS_CONNECTING) return;
    bool released = ds->sm.released;
    int err = m->u.refuse.err > 0 && m->u.refuse.err < 4096 ? m->u.refuse.err : ECONNREFUSED;
    uint32_t act = tsor_chan_step(&ds->sm, TSOR_EV_REFUSED);
    if (!released) {
      struct tsor_shm_cqe e = {.op = TSOR_CQE_CONNECTED, .sd = ds->sd, .res = -err};
      client_cqe(ds->cl, &e);
    }
    apply(ds, act);
    break;
  }
  case MSG_CREDIT:
    if (ds->sm.st != TSOR_CS_OPEN || tsor_credit_ack(&ds->cr, m->u.credit.consumed) < 0) return;
    tx_try(ds);
    break;
  case MSG_CLOSE: apply(ds, tsor_chan_step(&ds->sm, TSOR_EV_PEER_CLOSE)); break;
  case MSG_RESET: apply(ds, tsor_chan_step(&ds->sm, TSOR_EV_PEER_RESET)); break;
  default: c->fab->ops->disconnect(c->fc); break;
  }
}

static void on_imm(struct conn *c, uint32_t imm, uint32_t len)
{
  if (tsor_imm_chan(imm) >= TSOR_DG_CHAN) {
    tsor_d_dgram_on_imm(c, tsor_imm_chan(imm) - TSOR_DG_CHAN, len);
    return;
  }
  struct dsock *ds = chan_get(c, tsor_imm_chan(imm));
  if (ds == NULL || ds->sm.st != TSOR_CS_OPEN || ds->sm.term_recv) return;
  if (ds->sm.released || ds->cl->dead) return; /* nobody reads it any more; the slot stays reserved */
  if (ds->rx_prod + len - ds->rx_reported > ds->cl->h.ring_size) {
    q_warn(NULL, "tsord: peer overran a read ring; resetting the connection");
    c->fab->ops->disconnect(c->fc);
    return;
  }
  ds->rx_prod += len;
  tsor_store_rel(&slot_of(ds)->rx_tail, ds->rx_prod);
  ds->cl->wake = true;
  if (tsor_imm_fin(imm)) apply(ds, tsor_chan_step(&ds->sm, TSOR_EV_FIN));
}

static void conn_destroy(struct conn *c)
{
  struct tsor_daemon *d = c->d;
  for (struct conn **pp = &d->conns; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  if (c->node && c->node->conn == c) c->node->conn = NULL;
  tsor_d_dgram_conn_free(c);
  free(c->chans);
  free(c->freeids);
  free(c->outq);
  free(c);
}

static void on_down(struct conn *c, int status)
{
  struct tsor_daemon *c_d = c->d;
  c->down = true;
  if (c->node && c->node->conn == c) c->node->conn = NULL;
  if (c->node && c->node != c->d->self)
    q_info(NULL, "tsord: connection to node %s down (%s)", c->node->name, status ? strerror(-status) : "closed");
  for (uint32_t i = 0; i < c->nchans; i++) {
    struct dsock *ds = c->chans[i];
    if (ds == NULL) continue;
    if (ds->sm.st == TSOR_CS_CONNECTING && !ds->sm.released) {
      struct tsor_shm_cqe e = {.op = TSOR_CQE_CONNECTED, .sd = ds->sd, .res = c->ready ? -ECONNRESET : -EHOSTUNREACH};
      client_cqe(ds->cl, &e);
    }
    ds->writes_out = 0;
    if (ds->free_pending)
      do_free_chan(ds);
    else
      apply(ds, tsor_chan_step(&ds->sm, TSOR_EV_CONN_DOWN));
  }
  c->whead = c->wtail = NULL;
  if (c->fc) c->fab->ops->release(c->fc);
  conn_destroy(c);
  tsor_d_nodes_reap(c_d);
}

static int fabric_poll(struct tsor_daemon *d, struct tsor_fabric *f)
{
  struct tsor_fabric_cqe ev[64];
  int n = f->ops->poll(f, ev, 64), total = n;
  for (int i = 0; i < n; i++) {
    struct tsor_fabric_cqe *e = &ev[i];
    struct conn *c = f->ops->conn_ctx(e->conn);
    if (e->kind == TSOR_FC_UP) {
      if (c == NULL) {
        c = conn_new(d, f);
        if (c == NULL) {
          f->ops->disconnect(e->conn);
          continue;
        }
        c->fc = e->conn;
        f->ops->set_ctx(e->conn, c);
      }
      c->up = true;
      tsor_d_dgram_conn_up(c);
      c->credits = TSOR_RECV_DEPTH;
      f->ops->post_recv(c->fc, TSOR_RECV_DEPTH);
      if (c->outgoing) {
        send_hello(c);
      }
      continue;
    }
    if (c == NULL) {
      if (e->kind == TSOR_FC_DOWN) f->ops->release(e->conn);
      continue;
    }
    switch (e->kind) {
    case TSOR_FC_DOWN: on_down(c, e->status); break;
    case TSOR_FC_RECV_MSG:
    case TSOR_FC_RECV_IMM:
      f->ops->post_recv(c->fc, 1);
      c->owed++;
      if (e->kind == TSOR_FC_RECV_IMM) {
        on_imm(c, e->imm, e->len);
      } else if (e->len >= sizeof(struct tsor_msg)) {
        struct tsor_msg m;
        memcpy(&m, e->msg, sizeof(m));
        on_msg(c, &m);
      }
      if (!c->down) conn_flush(c);
      break;
    case TSOR_FC_WRITE_DONE: {
      if ((uint32_t)(e->wr_id >> 32) >= TSOR_DG_CHAN) {
        tsor_d_dgram_write_done(c);
        break;
      }
      struct dsock *ds = chan_get(c, (uint32_t)(e->wr_id >> 32));
      if (ds == NULL) break;
      uint32_t len = (uint32_t)e->wr_id;
      if (ds->writes_out) ds->writes_out--;
      ds->tx_done += len;
      if (!ds->cl->dead && len) {
        tsor_store_rel(&slot_of(ds)->tx_head, ds->tx_done);
        ds->cl->wake = true;
      }
      if (ds->free_pending && ds->writes_out == 0) do_free_chan(ds);
      break;
    }
    default: break;
    }
  }
  return total;
}

/* ---- attaching and detaching clients ---- */

static void client_kill(struct client *cl, const char *why)
{
  if (cl->dead) return;
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &cl->pod_ip, ip, sizeof(ip));
  q_info(NULL, "tsord: pod %s detached: %s", ip, why);
  cl->dead = true;
  epoll_ctl(cl->d->epfd, EPOLL_CTL_DEL, cl->fd, NULL);
  epoll_ctl(cl->d->epfd, EPOLL_CTL_DEL, cl->kick_in, NULL);
  for (uint32_t i = 0; i < cl->h.nslots; i++) {
    struct dsock *ds = &cl->socks[i];
    if (!ds->used) continue;
    if (ds->sm.st == TSOR_CS_LISTEN) listener_remove(cl->d, ds);
    if (ds->sm.chan)
      apply(ds, tsor_chan_step(&ds->sm, TSOR_EV_ABORT));
    else
      release_slot(ds);
  }
  /* The client is freed by the loop (reap_clients) once no peer can write
   * into its arena any more; callers up the stack may still hold it. */
}

/* ---- set-up and the loop ---- */

int tsor_daemon_new(const struct tsor_daemon_config *cfg, tsor_daemon **out, q_error **err)
{
  struct tsor_daemon *d = calloc(1, sizeof(*d));
  if (d == NULL) return q_error_make(err, ENOMEM, "tsord");
  d->ufd = d->epfd = d->stop_efd = d->peers_efd = -1;
  if (getrandom(&d->boot, sizeof(d->boot), 0) != sizeof(d->boot)) d->boot = (uint64_t)q_now_ns();
  d->next_port = 32768;
  pthread_mutex_init(&d->plock, NULL);
  struct tsor_peers peers = {0};
  const char *source = cfg->peers_path ? cfg->peers_path : "the Kubernetes API";
  int r;
  if (cfg->peers_path) {
    r = tsor_peers_load(cfg->peers_path, &peers, err);
  } else {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    d->kube = cfg->kube;
    d->refresh_s = cfg->refresh_s > 0 ? cfg->refresh_s : 300;
    r = tsor_kube_list_peers(&d->kube, &peers, err);
  }
  if (r < 0) goto fail;
  tsor_d_apply_peers(d, &peers);
  tsor_peers_free(&peers);
  d->self = tsor_d_node_by_name(d, cfg->node);
  if (d->self == NULL) {
    r = q_error_make(err, EINVAL, "node \"%s\" is not in the peer table from %s", cfg->node, source);
    goto fail;
  }
  struct node *self = d->self;
  r = tsor_fabric_local.open(NULL, &d->local, err);
  if (r < 0) goto fail;
  const char *want = cfg->fabric ? cfg->fabric : "auto";
  if (strcmp(want, "auto") == 0 || strcmp(want, "verbs") == 0) {
    q_error *verr = NULL;
    r = tsor_fabric_verbs.open(&d->self->addr, &d->net, &verr);
    if (r < 0) {
      if (strcmp(want, "verbs") == 0) {
        q_error_free(err);
        if (err) *err = verr; else q_error_free(&verr);
        r = q_error_wrap(err, "fabric verbs");
        goto fail;
      }
      q_warn(NULL, "tsord: verbs fabric unavailable (%s); using the tcp fabric", q_error_msg(verr));
      q_error_free(&verr);
      want = "tcp";
    }
  }
  if (strcmp(want, "tcp") == 0) {
    r = tsor_fabric_tcp.open(&d->self->addr, &d->net, err);
    if (r < 0) goto fail;
  } else if (d->net == NULL) {
    r = q_error_make(err, EINVAL, "unknown fabric \"%s\" (auto, verbs, tcp)", want);
    goto fail;
  }
  d->epfd = epoll_create1(EPOLL_CLOEXEC);
  d->stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  d->ufd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(cfg->socket_path) >= sizeof(sa.sun_path)) {
    r = q_error_make(err, ENAMETOOLONG, "socket path %s", cfg->socket_path);
    goto fail;
  }
  strcpy(sa.sun_path, cfg->socket_path);
  unlink(cfg->socket_path);
  if (d->epfd < 0 || d->stop_efd < 0 || d->ufd < 0 || bind(d->ufd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
      listen(d->ufd, 128) < 0) {
    r = q_error_make(err, errno, "unix socket %s", cfg->socket_path);
    goto fail;
  }
  d->socket_path = strdup(cfg->socket_path);
  d->ev_unix = (struct evsrc){SRC_UNIX, d};
  d->ev_stop = (struct evsrc){SRC_STOP, d};
  d->ev_local = (struct evsrc){SRC_FABRIC, d->local};
  d->ev_net = (struct evsrc){SRC_FABRIC, d->net};
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &d->ev_unix};
  epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->ufd, &ev);
  ev.data.ptr = &d->ev_stop;
  epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->stop_efd, &ev);
  ev.data.ptr = &d->ev_local;
  epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->local->ops->event_fd(d->local), &ev);
  ev.data.ptr = &d->ev_net;
  epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->net->ops->event_fd(d->net), &ev);
  char cidr[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &self->cidr_addr, cidr, sizeof(cidr));
  q_info(NULL, "tsord: node %s, pod CIDR %s/%u, fabric %s on %s, sandboxes on %s, peers from %s", self->name, cidr,
         self->cidr_len, d->net->ops->name, self->address, cfg->socket_path, source);
  if (cfg->peers_path == NULL) {
    d->peers_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    d->ev_peers = (struct evsrc){SRC_PEERS, d};
    ev.data.ptr = &d->ev_peers;
    if (d->peers_efd < 0 || epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->peers_efd, &ev) < 0 ||
        pthread_create(&d->lister, NULL, tsor_d_lister, d) != 0) {
      r = q_error_make(err, errno ? errno : EAGAIN, "peer lister");
      goto fail;
    }
    d->has_lister = true;
  }
  *out = d;
  return 0;
fail:
  tsor_daemon_free(d);
  return r;
}

const char *tsor_daemon_fabric(const tsor_daemon *d) { return d->net ? d->net->ops->name : "none"; }

void tsor_daemon_pod_cidr(const tsor_daemon *d, uint32_t *addr, uint8_t *len)
{
  *addr = d->self->cidr_addr;
  *len = d->self->cidr_len;
}

void tsor_daemon_stop(tsor_daemon *d)
{
  /* Async-signal-safe: the lister notices the flag within a second. */
  d->stop = 1;
  uint64_t one = 1;
  ssize_t r = write(d->stop_efd, &one, sizeof(one));
  (void)r;
}

static void reap_clients(struct tsor_daemon *d)
{
  for (struct client *cl = d->clients, *nx; cl; cl = nx) {
    nx = cl->next;
    if (cl->dead && cl->live_chans == 0) tsor_d_client_destroy(cl);
  }
}

static void set_sleeping(struct tsor_daemon *d, uint32_t v)
{
  for (struct client *cl = d->clients; cl; cl = cl->next)
    if (!cl->dead) tsor_store_rel(&cl->sh->daemon_sleeping, v);
}

static bool requests_pending(struct tsor_daemon *d)
{
  for (struct client *cl = d->clients; cl; cl = cl->next)
    if (!cl->dead && tsor_load_acq(&cl->sh->req.tail) != cl->req_head) return true;
  return false;
}

static void handle_events(struct tsor_daemon *d, int timeout)
{
  struct epoll_event evs[32];
  int n = epoll_wait(d->epfd, evs, 32, timeout);
  for (int i = 0; i < n; i++) {
    struct evsrc *s = evs[i].data.ptr;
    uint64_t v;
    ssize_t r;
    switch (s->kind) {
    case SRC_UNIX: tsor_d_client_attach(d); break;
    case SRC_CLIENT: {
      struct client *cl = s->p;
      char b;
      if (evs[i].events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR) || recv(cl->fd, &b, 1, MSG_DONTWAIT) == 0)
        client_kill(cl, "unix socket closed");
      return; /* the kill may have freed other sources of this batch */
    }
    case SRC_KICK: r = read(((struct client *)s->p)->kick_in, &v, sizeof(v)); (void)r; break;
    case SRC_STOP: r = read(d->stop_efd, &v, sizeof(v)); (void)r; break;
    case SRC_PEERS: tsor_d_take_peers(d); break;
    default: break; /* fabrics: polled right after */
    }
  }
}

int tsor_daemon_run(tsor_daemon *d, q_error **err)
{
  int64_t idle_since = q_mono_ns();
  uint32_t spins = 0;
  while (!d->stop) {
    int work = 0;
    for (struct client *cl = d->clients, *nx; cl; cl = nx) {
      nx = cl->next;
      work += client_requests(cl);
    }
    work += fabric_poll(d, d->local);
    work += fabric_poll(d, d->net);
    for (struct client *cl = d->clients; cl; cl = cl->next) {
      client_flush_ovf(cl);
      client_wake(cl);
    }
    reap_clients(d);
    if (work) {
      idle_since = q_mono_ns();
      continue;
    }
    if (q_mono_ns() - idle_since < spin_ns()) {
      /* New sandboxes and hang-ups can wait a few rounds; the rings cannot. */
      if ((++spins & 15) == 0) handle_events(d, 0);
      if (spin_yield())
        sched_yield();
      else
        __builtin_ia32_pause();
      continue;
    }
    set_sleeping(d, 1);
    tsor_fence();
    bool pending = requests_pending(d) || d->local->ops->arm(d->local) || d->net->ops->arm(d->net);
    handle_events(d, pending ? 0 : 1000);
    set_sleeping(d, 0);
    idle_since = q_mono_ns();
  }
  (void)err;
  return 0;
}

void tsor_daemon_free(tsor_daemon *d)
{
  if (d == NULL) return;
  if (d->has_lister) {
    d->stop = 1; /* the lister checks it at least every second */
    pthread_join(d->lister, NULL);
  }
  while (d->clients) {
    struct client *cl = d->clients;
    cl->dead = true;
    tsor_d_client_destroy(cl);
  }
  /* Take every connection down and wait (bounded) for the DOWNs, so that
   * no backend thread still runs when the fabrics close. */
  for (struct conn *c = d->conns; c; c = c->next)
    if (c->fc) c->fab->ops->disconnect(c->fc);
  for (int tries = 0; tries < 3000; tries++) {
    bool left = false;
    for (struct conn *c = d->conns; c; c = c->next) left |= c->fc != NULL;
    if (!left) break;
    struct tsor_fabric *fabs[2] = {d->local, d->net};
    int got = 0;
    for (int i = 0; i < 2; i++) {
      if (fabs[i] == NULL) continue;
      struct tsor_fabric_cqe e;
      while (fabs[i]->ops->poll(fabs[i], &e, 1) == 1) {
        got++;
        struct conn *c = fabs[i]->ops->conn_ctx(e.conn);
        if (e.kind == TSOR_FC_UP && c == NULL) fabs[i]->ops->disconnect(e.conn);
        if (e.kind != TSOR_FC_DOWN) continue;
        fabs[i]->ops->release(e.conn);
        if (c) c->fc = NULL;
      }
    }
    if (!got) usleep(1000);
  }
  while (d->conns) {
    struct conn *c = d->conns;
    c->node = NULL;
    conn_destroy(c);
  }
  if (d->net) d->net->ops->close(d->net);
  if (d->local) d->local->ops->close(d->local);
  if (d->ufd >= 0) close(d->ufd);
  if (d->socket_path) {
    unlink(d->socket_path);
    free(d->socket_path);
  }
  if (d->epfd >= 0) close(d->epfd);
  if (d->stop_efd >= 0) close(d->stop_efd);
  free(d->lst);
  free(d->dgs);
  if (d->has_pending) tsor_peers_free(&d->pending);
  while (d->nodes) {
    struct node *n = d->nodes;
    d->nodes = n->next;
    free(n);
  }
  if (d->peers_efd >= 0) close(d->peers_efd);
  pthread_mutex_destroy(&d->plock);
  free(d);
}

/* Entry points for the other tsord files (dgram.c). */
void tsor_d_client_kill(struct client *cl, const char *why) { client_kill(cl, why); }
void tsor_d_msg_send(struct conn *c, struct tsor_msg *m) { msg_send(c, m); }
struct conn *tsor_d_conn_get(struct tsor_daemon *d, struct node *n) { return conn_get(d, n); }
