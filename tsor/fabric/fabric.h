/* The fabric: what tsord needs from a network between nodes (or inside one
 * node), shaped after RDMA reliable connections so that the verbs backend is
 * a thin layer and the others imitate it:
 *
 * - memory is registered as regions; a peer names a place in one of our
 *   regions by (addr, key), which it learned from us in a message;
 * - write_imm copies len bytes of one of our regions into the peer's region
 *   at (addr, key) and then hands the peer a RECV_IMM completion carrying a
 *   32-bit immediate and the length, in order with everything else sent on
 *   that connection; it consumes one of the peer's posted receives;
 * - send delivers a small message (<= TSOR_FMSG_MAX bytes) into one posted
 *   receive of the peer (RECV_MSG);
 * - every write_imm/send produces a local WRITE_DONE/SEND_DONE once the
 *   source may be reused;
 * - connections come up (UP, for ours and for incoming ones, whose ctx is
 *   NULL until set) and go down (DOWN, once; then release them).
 *
 * Threading: all calls from one thread (tsord's loop). A backend may produce
 * completions from its own threads; its event_fd becomes readable then. The
 * poller drains poll() until it returns 0, then calls arm() and sleeps on
 * event_fd only when arm() returns 0.
 * Receiving a write or message with no posted receive is a protocol error
 * that takes the connection down (the RC queue pair would fail the same). */
#ifndef TSOR_FABRIC_H
#define TSOR_FABRIC_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "quark/common.h"

#define TSOR_FMSG_MAX 64

struct tsor_fabric;
struct tsor_fconn;

struct tsor_region {
  void *base;
  uint64_t len;
  uint64_t addr; /* what a peer adds offsets to (virtual address on verbs, 0 elsewhere) */
  uint32_t key;  /* what a peer names the region by (rkey on verbs) */
  void *priv;
};

enum tsor_fc_kind {
  TSOR_FC_UP = 1,
  TSOR_FC_DOWN,
  TSOR_FC_WRITE_DONE,
  TSOR_FC_SEND_DONE,
  TSOR_FC_RECV_IMM,
  TSOR_FC_RECV_MSG,
};

struct tsor_fabric_cqe {
  enum tsor_fc_kind kind;
  int status; /* 0 or -errno (DOWN: why) */
  struct tsor_fconn *conn;
  uint64_t wr_id;
  uint32_t imm, len;
  uint8_t msg[TSOR_FMSG_MAX];
};

struct tsor_fabric_ops {
  const char *name;
  /* listen: where peers reach us (NULL: accept nothing, as for local). A
   * backend whose hardware is absent fails here with a message that says so. */
  int (*open)(const struct sockaddr_in *listen, struct tsor_fabric **out, q_error **err);
  void (*close)(struct tsor_fabric *f);
  int (*event_fd)(struct tsor_fabric *f);
  int (*reg)(struct tsor_fabric *f, void *base, uint64_t len, struct tsor_region *out, q_error **err);
  void (*dereg)(struct tsor_fabric *f, struct tsor_region *r);
  /* Starts a connection; UP or DOWN follows. ctx is returned by conn_ctx. */
  int (*connect)(struct tsor_fabric *f, const struct sockaddr_in *to, void *ctx, struct tsor_fconn **out);
  void (*set_ctx)(struct tsor_fconn *c, void *ctx);
  void *(*conn_ctx)(struct tsor_fconn *c);
  /* Starts tearing down; DOWN follows (also for connections not yet UP). */
  void (*disconnect)(struct tsor_fconn *c);
  /* Frees a connection after its DOWN was polled. */
  void (*release)(struct tsor_fconn *c);
  int (*write_imm)(struct tsor_fconn *c, const struct tsor_region *src, uint64_t src_off, uint32_t len,
                   uint64_t raddr, uint32_t rkey, uint32_t imm, uint64_t wr_id);
  int (*send)(struct tsor_fconn *c, const void *msg, uint32_t len, uint64_t wr_id);
  int (*post_recv)(struct tsor_fconn *c, uint32_t n);
  int (*poll)(struct tsor_fabric *f, struct tsor_fabric_cqe *out, int max);
  /* Before sleeping on event_fd: re-arms it; returns 1 when completions are
   * already pending (poll again instead of sleeping), 0 otherwise. */
  int (*arm)(struct tsor_fabric *f);
};

extern const struct tsor_fabric_ops tsor_fabric_local;
extern const struct tsor_fabric_ops tsor_fabric_tcp;
extern const struct tsor_fabric_ops tsor_fabric_verbs;

/* By name ("local", "tcp", "verbs"), or NULL. */
const struct tsor_fabric_ops *tsor_fabric_by_name(const char *name);

/* Every fabric object starts with this, so generic code can reach its ops. */
struct tsor_fabric {
  const struct tsor_fabric_ops *ops;
};

/* A growable completion queue the local and tcp backends share; thread-safe.
 * push signals efd when the queue was empty and signal is true. */
struct tsor_cq {
  struct tsor_fabric_cqe *v;
  uint32_t cap, head, count;
  int efd;
  pthread_mutex_t lock;
};
int tsor_cq_init(struct tsor_cq *q);
void tsor_cq_destroy(struct tsor_cq *q);
int tsor_cq_push(struct tsor_cq *q, const struct tsor_fabric_cqe *e, bool signal);
int tsor_cq_pop(struct tsor_cq *q, struct tsor_fabric_cqe *out, int max);
int tsor_cq_arm(struct tsor_cq *q);
/* Removes the completions of one connection (before it is freed). */
void tsor_cq_drop_conn(struct tsor_cq *q, const struct tsor_fconn *c);

#endif
