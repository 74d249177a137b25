/* tsord internals shared by its source files (not part of the public API). */
#ifndef TSOR_DAEMON_H
#define TSOR_DAEMON_H

#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "channel/chan.h"
#include "channel/ring.h"
#include "fabric/fabric.h"
#include "quark/tsor.h"

/* Receives each end posts per node connection: the receive credits. */
#define TSOR_RECV_DEPTH 512
/* Largest single write: keeps one busy stream from holding the loop. */
#define TSOR_MAX_CHUNK (1u << 20)

enum msg_type {
  MSG_HELLO = 1, /* first message each way: the sender's node name */
  MSG_CONNECT,   /* chan: unused; u.connect */
  MSG_ACCEPT,    /* chan: the connector's channel; u.accept */
  MSG_REFUSE,    /* chan: the connector's channel; u.refuse */
  MSG_CREDIT,    /* chan: the writer's channel; u.credit (cumulative bytes consumed) */
  MSG_CLOSE,     /* chan: peer's channel; terminal, graceful */
  MSG_RESET,     /* chan: peer's channel; terminal, abortive */
  MSG_RCREDIT,   /* only returns receive credits */
  MSG_DCREDIT,   /* u.dcredit: datagram landing slots freed */
};

/* One control message; every message returns the receive credits its
 * sender reposted since its last message (rcredits). */
#define MSG_F_EGRESS 0x1 /* CONNECT: to the node's egress, not a pod */

struct tsor_msg {
  uint8_t type;
  uint8_t flags; /* MSG_F_* */
  uint16_t rcredits;
  uint32_t chan;
  union {
    struct {
      char name[32];
      uint64_t boot; /* random per tsord start: tells a restarted peer from a duplicate */
      uint64_t land_addr; /* datagram landing slots (0 slots: none) */
      uint32_t land_key, land_slots;
    } hello;
    struct {
      uint32_t count;
    } dcredit;
    struct {
      uint32_t src_chan;
      uint32_t saddr, daddr; /* network order */
      uint16_t sport, dport;
      uint32_t rkey, ring_size;
      uint64_t raddr; /* where the connector's read ring starts, for the acceptor's writes */
    } connect;
    struct {
      uint32_t src_chan, rkey;
      uint64_t raddr;
      uint32_t ring_size;
    } accept;
    struct {
      int32_t err; /* positive errno */
    } refuse;
    struct {
      uint64_t consumed;
    } credit;
  } u;
};
_Static_assert(sizeof(struct tsor_msg) <= TSOR_FMSG_MAX, "control message fits a receive");

struct tsor_daemon;
struct client;
struct conn;

/* A node of the peer table. The table can change while tsord runs (the
 * Kubernetes source re-lists), so nodes are separate objects that
 * connections point to; a node that leaves the table is freed once its
 * connection is gone. */
struct node {
  char name[32];
  uint32_t cidr_addr; /* network order */
  uint8_t cidr_len;
  struct sockaddr_in addr;
  char address[64];
  struct conn *conn; /* the one connection to that node, once there is one */
  bool gone;         /* left the peer table */
  struct node *next;
};

/* One socket slot of one client, as tsord sees it. */
struct dsock {
  struct client *cl;
  uint32_t sd;
  bool used;
  struct tsor_chan_sm sm;
  uint32_t laddr, raddr; /* network order */
  uint16_t lport, rport;
  bool dgram; /* datagram socket: no channel; records in its rings */
  /* listening */
  int backlog;
  uint32_t delivered; /* connections handed to the client */
  /* channel */
  struct conn *conn;
  uint32_t chan, peer_chan;
  uint64_t peer_raddr;
  uint32_t peer_rkey;
  struct tsor_credit cr; /* towards the peer's read ring */
  uint64_t tx_done;      /* write-ring bytes the fabric is done with */
  uint32_t writes_out;
  bool free_pending; /* channel freed once writes_out drops to 0 */
  uint64_t rx_prod, rx_reported;
  bool waiting;
  struct dsock *wnext;
};

struct outq_ent {
  bool fin; /* a FIN write for chan/peer_chan instead of a message */
  uint32_t chan, peer_chan;
  struct tsor_msg m;
};

struct conn {
  struct tsor_daemon *d;
  struct tsor_fabric *fab;
  struct tsor_fconn *fc;
  struct node *node;
  bool outgoing, up, ready, down;
  struct dsock **chans;
  uint32_t nchans, next_id, live;
  uint32_t *freeids, nfree, capfree;
  int credits;
  uint32_t owed;
  uint64_t peer_boot; /* from the peer's HELLO */
  struct outq_ent *outq;
  uint32_t outhead, outn, outcap;
  struct dsock *whead, *wtail;
  /* Datagrams to a remote node: written from our staging slots into the
   * peer's landing slots (fixed size, used in order, freed by DCREDIT). */
  char *land, *stage;
  struct tsor_region land_reg, stage_reg;
  bool has_land, has_stage;
  uint64_t peer_land_addr;
  uint32_t peer_land_key, peer_land_slots;
  uint32_t dg_credits, dg_next, stage_next, stage_busy;
  struct dg_pending *dg_q; /* datagrams waiting for the connection */
  struct conn *next;
};

#define TSOR_DG_SLOTS 16
#define TSOR_DG_SLOT (64u * 1024u + 2048u) /* header + the largest datagram */
#define TSOR_DG_CHAN 0x7fff0000u           /* immediates from here name landing slots */

/* A datagram on the wire between nodes (landing slot contents). */
struct tsor_dg_wire {
  uint32_t len;
  uint32_t src, dst; /* network order */
  uint16_t sport, dport;
};

struct dg_pending {
  struct tsor_dg_wire h;
  struct dg_pending *next;
  char data[];
};

enum { SRC_UNIX = 1, SRC_CLIENT, SRC_KICK, SRC_FABRIC, SRC_STOP, SRC_PEERS };
struct evsrc {
  int kind;
  void *p;
};

struct client {
  struct tsor_daemon *d;
  uint32_t id;
  int fd, kick_in, kick_out;
  struct evsrc ev_fd, ev_kick;
  void *base;
  uint64_t size;
  struct tsor_shm_hdr h;   /* private copy checked at attach: the one tsord trusts */
  struct tsor_shm_hdr *sh; /* shared: only the indices and flags are read */
  struct tsor_shm_req *req;
  struct tsor_shm_cqe *cqr;
  struct tsor_region reg_local, reg_net;
  bool has_local, has_net;
  uint32_t pod_ip;
  struct dsock *socks;
  uint32_t *freeslots, nfree;
  uint32_t req_head, cq_tail; /* our own indices: never read back from the arena */
  struct tsor_shm_cqe *ovf;
  uint32_t ovf_head, ovf_n, ovf_cap;
  uint32_t live_chans;
  bool dead, wake;
  bool internal; /* tsord's own gateway (same process, SO_PEERCRED) */
  struct client *next;
};

struct listener {
  uint32_t ip;
  uint16_t port;
  struct dsock *ds;
};

struct tsor_daemon {
  struct node *nodes, *self;
  uint64_t boot; /* this tsord's incarnation, sent in HELLO */
  /* kube peer source: a thread lists, the loop applies */
  struct tsor_kube_config kube;
  int refresh_s;
  pthread_t lister;
  bool has_lister;
  pthread_mutex_t plock;
  struct tsor_peers pending;
  bool has_pending;
  int peers_efd;
  struct evsrc ev_peers;
  char *socket_path;
  int ufd, epfd, stop_efd;
  struct evsrc ev_unix, ev_stop, ev_local, ev_net;
  struct tsor_fabric *local, *net;
  struct client *clients;
  uint32_t next_client;
  struct conn *conns;
  struct dsock *egress; /* the gateway's egress listener, if any */
  struct listener *dgs; /* bound datagram sockets */
  uint32_t ndg, capdg;
  struct listener *lst;
  uint32_t nlst, caplst;
  uint16_t next_port;
  volatile sig_atomic_t stop;
};

/* Cross-file functions of tsord (prefix tsor_d_). */
struct node *tsor_d_node_by_addr(struct tsor_daemon *d, uint32_t addr);
struct node *tsor_d_node_by_name(struct tsor_daemon *d, const char *name);
/* Makes the peer table what p says (see peers.c). */
void tsor_d_apply_peers(struct tsor_daemon *d, const struct tsor_peers *p);
void tsor_d_nodes_reap(struct tsor_daemon *d);
void *tsor_d_lister(void *arg);
void tsor_d_take_peers(struct tsor_daemon *d);
/* Accepts one sandbox on the unix socket (attach.c). */
void tsor_d_client_attach(struct tsor_daemon *d);
/* Frees a detached client: only from the loop, once no channel is left. */
void tsor_d_client_destroy(struct client *cl);
void tsor_d_client_kill(struct client *cl, const char *why);
void tsor_d_msg_send(struct conn *c, struct tsor_msg *m);
struct conn *tsor_d_conn_get(struct tsor_daemon *d, struct node *n);
/* Datagrams (dgram.c). */
int tsor_d_dgram_bind(struct dsock *ds, uint16_t port);
void tsor_d_dgram_unbind(struct dsock *ds);
void tsor_d_dgram_tx(struct dsock *ds);
void tsor_d_dgram_conn_up(struct conn *c);
void tsor_d_dgram_conn_free(struct conn *c);
void tsor_d_dgram_hello(struct conn *c, struct tsor_msg *h);
void tsor_d_dgram_peer(struct conn *c, const struct tsor_msg *m);
void tsor_d_dgram_flush(struct conn *c);
void tsor_d_dgram_write_done(struct conn *c);
void tsor_d_dgram_on_imm(struct conn *c, uint32_t slot, uint32_t len);
void tsor_d_dgram_credit(struct conn *c, uint32_t count);

#endif
