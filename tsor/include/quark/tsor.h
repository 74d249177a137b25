/* TSoR: TCP sockets of pods carried over RDMA queue pairs (or a fallback
 * fabric) by one node service, tsord. Prefix: tsor_.
 *
 * Pieces and who uses them:
 * - The shared-memory layout (struct tsor_shm_*): what a sandbox and tsord
 *   share. A VMM that wants its guest kernel to drive TSoR sockets directly
 *   maps this arena into guest memory; everything in it is plain indices and
 *   bytes, so the guest needs no host pointer.
 * - The client library (tsor_client_*): what a sandbox process links. It
 *   connects to tsord over a unix socket, creates the arena (memfd) and hands
 *   it over with SCM_RIGHTS, then offers a blocking/non-blocking socket API
 *   over the rings. One client is one pod (one pod IP). A client object is
 *   not thread-safe: one thread at a time (a VMM serialises its vCPUs' calls).
 * - The daemon (tsor_daemon_*): tsord's event loop, usable from tests.
 * - The peer table (tsor_peers_*): pod IP -> node, from a JSON peers file.
 *
 * Trust: tsord never trusts a client. Every index and length it reads from
 * the arena is checked; a client that breaks the protocol is disconnected and
 * its channels are reset, other clients are not affected.
 */
#ifndef QUARK_TSOR_H
#define QUARK_TSOR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "quark/common.h"

#define TSOR_SHM_MAGIC 0x54534f52u /* "TSOR" */
#define TSOR_SHM_VERSION 1u
#define TSOR_CACHELINE 64

/* Defaults and limits a client may ask for. Ring sizes are powers of two. */
#define TSOR_DEFAULT_SLOTS 64u
#define TSOR_DEFAULT_RING (256u * 1024u)
#define TSOR_MIN_RING 4096u
#define TSOR_MAX_RING (16u * 1024u * 1024u)
#define TSOR_MAX_SLOTS 65536u
#define TSOR_QRING_ENTRIES 4096u /* request and completion rings */

/* ---- shared-memory layout (version 1) ----
 * Arena = header | request ring | completion ring | slots[nslots] |
 *         per slot: read ring (ring_size bytes), write ring (ring_size bytes).
 * Byte-ring positions are free-running 64-bit byte counts; the offset in the
 * ring is pos & (ring_size - 1). Each index is written by one side only and
 * sits on its own cache line. */

/* SPSC ring of fixed-size entries: producer writes tail, consumer head. */
struct tsor_shm_qidx {
  _Alignas(TSOR_CACHELINE) volatile uint32_t head;
  _Alignas(TSOR_CACHELINE) volatile uint32_t tail;
};

enum tsor_req_op {
  TSOR_REQ_SOCKET = 1, /* arg 1: datagram -> completion SOCKET with the new sd or -errno */
  TSOR_REQ_CONNECT,    /* sd, addr, port [, arg/pad: source ip/port, gateway only]
                          -> CONNECTED (res 0 or -errno) */
  TSOR_REQ_LISTEN,     /* sd, port, arg=backlog (| TSOR_LISTEN_EGRESS) -> LISTENED */
  TSOR_REQ_TX,         /* sd: write ring has new bytes (sent when tx_armed was 0) */
  TSOR_REQ_RXDONE,     /* sd: reader consumed bytes; return byte credits */
  TSOR_REQ_SHUTDOWN,   /* sd: no more writes (FIN after queued bytes) */
  TSOR_REQ_CLOSE,      /* sd: release; -> RELEASED when the slot may be reused */
  TSOR_REQ_ABORT,      /* sd: release with a reset (SO_LINGER 0); -> RELEASED */
  TSOR_REQ_BIND,       /* datagram sd, port (0: any) -> BOUND (res, port) */
};

/* Listen for the node's egress: connections from pods to addresses no TSoR
 * node owns. Only tsord's own gateway client may (it runs inside tsord);
 * its ACCEPTED completions carry the address the pod dialled. */
#define TSOR_LISTEN_EGRESS 0x80000000u

struct tsor_shm_req {
  uint32_t op;
  uint32_t sd;
  uint32_t addr; /* IPv4, network order */
  uint16_t port; /* host order */
  uint16_t pad;  /* CONNECT from the gateway: source port */
  uint32_t arg;
  uint32_t pad2;
};
_Static_assert(sizeof(struct tsor_shm_req) == 24, "tsor_shm_req layout");

enum tsor_cqe_op {
  TSOR_CQE_SOCKET = 1, /* res: sd or -errno */
  TSOR_CQE_CONNECTED,  /* sd, res 0 or -errno */
  TSOR_CQE_LISTENED,   /* sd, res */
  TSOR_CQE_ACCEPTED,   /* sd = listening sd, arg = new sd, addr/port = peer */
  TSOR_CQE_RELEASED,   /* sd may be reused by a later SOCKET */
  TSOR_CQE_BOUND,      /* sd, res, port */
};

/* Datagram sockets carry records in their rings: this header, then len
 * bytes. Write ring: addr/port = destination; read ring: = source. */
struct tsor_dgram_hdr {
  uint32_t len;
  uint32_t addr; /* network order */
  uint16_t port; /* host order */
  uint16_t pad;
  uint32_t pad2;
};
_Static_assert(sizeof(struct tsor_dgram_hdr) == 16, "tsor_dgram_hdr layout");
#define TSOR_DGRAM_MAX 65507u

struct tsor_shm_cqe {
  uint32_t op;
  uint32_t sd;
  int32_t res;
  uint32_t arg;
  uint32_t addr; /* network order */
  uint16_t port;
  uint16_t pad;
};
_Static_assert(sizeof(struct tsor_shm_cqe) == 24, "tsor_shm_cqe layout");

/* Socket state bits that tsord publishes in tsor_shm_slot.dstate. */
#define TSOR_ST_RX_EOF 0x1u  /* peer sent FIN: recv returns 0 once drained */
#define TSOR_ST_RESET 0x2u   /* connection reset: ECONNRESET */
#define TSOR_ST_PEER_GONE 0x4u /* peer closed fully: send gives EPIPE */

struct tsor_shm_slot {
  /* Written by tsord. */
  _Alignas(TSOR_CACHELINE) volatile uint64_t rx_tail; /* bytes placed in the read ring */
  volatile uint64_t tx_head;                          /* bytes taken from the write ring */
  volatile uint32_t dstate;                           /* TSOR_ST_* */
  /* Written by the client. */
  _Alignas(TSOR_CACHELINE) volatile uint64_t rx_head; /* bytes consumed from the read ring */
  volatile uint64_t tx_tail;                          /* bytes put in the write ring */
  volatile uint32_t accepted;                         /* listening: connections accepted */
  /* Both: set by the client (exchange) before a TX request, cleared by tsord
   * before it reads tx_tail, so a request is posted only when needed. */
  _Alignas(TSOR_CACHELINE) volatile uint32_t tx_armed;
};

struct tsor_shm_hdr {
  uint32_t magic, version;
  uint64_t size;       /* arena bytes */
  uint32_t nslots;     /* socket slots */
  uint32_t ring_size;  /* bytes of each read ring and each write ring */
  uint32_t qentries;   /* entries of the request and completion rings */
  uint32_t pad;
  uint64_t req_off, cq_off, slots_off, data_off; /* from the arena start */
  /* Sleep flags: a side sets its flag, re-checks its rings, then sleeps on
   * its eventfd; the other side kicks only when the flag is set. */
  _Alignas(TSOR_CACHELINE) volatile uint32_t client_sleeping;
  _Alignas(TSOR_CACHELINE) volatile uint32_t daemon_sleeping;
  struct tsor_shm_qidx req;
  struct tsor_shm_qidx cq;
};

/* Computes the arena layout for nslots/ring_size into hdr (magic, sizes,
 * offsets). Returns -EINVAL when the values are out of bounds. */
int tsor_shm_layout(uint32_t nslots, uint32_t ring_size, struct tsor_shm_hdr *hdr);
/* Checks a header read from an arena of `size` bytes (the daemon does this
 * with what a client gave it). */
int tsor_shm_check(const struct tsor_shm_hdr *hdr, uint64_t size);
static inline struct tsor_shm_slot *tsor_shm_slot(void *base, const struct tsor_shm_hdr *h, uint32_t i) {
  return (struct tsor_shm_slot *)((char *)base + h->slots_off) + i;
}
/* Read ring of slot i; its write ring follows it. */
static inline uint64_t tsor_shm_rx_off(const struct tsor_shm_hdr *h, uint32_t i) {
  return h->data_off + (uint64_t)i * 2u * h->ring_size;
}
static inline uint64_t tsor_shm_tx_off(const struct tsor_shm_hdr *h, uint32_t i) {
  return tsor_shm_rx_off(h, i) + h->ring_size;
}

/* ---- the unix-socket handshake ----
 * client -> tsord: struct tsor_hello + SCM_RIGHTS(memfd holding the arena,
 *                  sealed against shrinking)
 * tsord -> client: struct tsor_hello_reply + SCM_RIGHTS(kick_daemon, kick_client)
 * kick_daemon: eventfd the client writes to wake tsord; kick_client: the
 * eventfd tsord writes to wake the client. After that the unix socket only
 * signals death (either side closing it). */
struct tsor_hello {
  uint32_t magic, version;
  uint32_t pod_ip; /* network order; must be inside this node's pod CIDR */
  uint32_t pad;
  uint64_t size;   /* arena size */
  uint64_t offset; /* where the arena starts in the memfd (page-aligned): a
                      VMM passes its guest-memory memfd and places the arena
                      in guest memory, so the guest kernel drives the rings */
};
_Static_assert(sizeof(struct tsor_hello) == 32, "tsor_hello layout");
struct tsor_hello_reply {
  int32_t status; /* 0 or -errno */
  char msg[124];  /* why, when status != 0 */
};

/* ---- immediate data (32 bits): which channel a write lands in, and FIN ---- */
#define TSOR_IMM_FIN 0x80000000u
#define TSOR_CHAN_MAX 0x7fffffffu
static inline uint32_t tsor_imm_make(uint32_t chan, bool fin) {
  return (chan & TSOR_CHAN_MAX) | (fin ? TSOR_IMM_FIN : 0);
}
static inline uint32_t tsor_imm_chan(uint32_t imm) { return imm & TSOR_CHAN_MAX; }
static inline bool tsor_imm_fin(uint32_t imm) { return (imm & TSOR_IMM_FIN) != 0; }

/* ---- client library ---- */

typedef struct tsor_client tsor_client;

struct tsor_client_config {
  const char *socket_path; /* tsord's unix socket */
  const char *pod_ip;      /* this pod's IPv4 address */
  uint32_t slots;          /* 0: TSOR_DEFAULT_SLOTS */
  uint32_t ring_size;      /* 0: TSOR_DEFAULT_RING; power of two */
  /* Optional: an arena the caller owns (a VMM's guest memory). arena_base
   * maps arena_fd at arena_offset (page-aligned) for tsor_shm_arena_size()
   * bytes; the fd must be sealed against shrinking. The library initialises
   * the header there and neither unmaps nor closes it. NULL: the library
   * makes its own memfd. */
  void *arena_base;
  int arena_fd;
  uint64_t arena_offset;
};

/* Bytes of arena a client with these settings needs (0 if out of bounds). */
uint64_t tsor_shm_arena_size(uint32_t slots, uint32_t ring_size);

/* Connects to tsord and sets up the arena. On failure *err says why (tsord
 * down, pod IP not on this node...). */
int tsor_client_open(const struct tsor_client_config *cfg, tsor_client **out, q_error **err);
/* Closes every socket (peers see a reset for unfinished ones) and frees c. */
void tsor_client_free(tsor_client *c);

/* Flags for send/recv/accept/connect. */
#define TSOR_NONBLOCK 0x1

/* Socket calls. sd is a small non-negative integer; they return -errno with
 * the meaning socket(2) calls give them: ECONNREFUSED (nothing listens),
 * ECONNRESET (peer reset or died), EPIPE (write after peer closed or after
 * shutdown), EAGAIN (TSOR_NONBLOCK and nothing to do), ENOBUFS (no slot),
 * ENETUNREACH (no node owns the address), ENOTCONN, EBADF. */
int tsor_client_socket(tsor_client *c);
int tsor_client_connect(tsor_client *c, int sd, const struct sockaddr_in *dst);
/* connect() of a non-blocking socket: sends CONNECT and returns
 * -EINPROGRESS (or -errno at once); tsor_client_poll reports TSOR_POLLOUT
 * when it is done, and tsor_client_connect_status says how it ended (0,
 * -EINPROGRESS while pending, -ECONNREFUSED...). */
int tsor_client_connect_nb(tsor_client *c, int sd, const struct sockaddr_in *dst);
int tsor_client_connect_status(tsor_client *c, int sd);
/* Bytes ready to read on a connected socket (FIONREAD). */
int tsor_client_nread(tsor_client *c, int sd);
/* For a VMM's own event loop: the unix socket to tsord (readable or hung
 * up when tsord goes away), and a check that marks the client dead then
 * (its sockets then report ECONNRESET). */
int tsor_client_control_fd(const tsor_client *c);
bool tsor_client_alive(tsor_client *c);
int tsor_client_listen(tsor_client *c, int sd, uint16_t port, int backlog);
/* tsord's gateway only (see TSOR_LISTEN_EGRESS); accept() then gives the
 * destination the pod dialled instead of the pod's address. */
int tsor_client_listen_egress(tsor_client *c, int sd, int backlog);
/* tsord's gateway only: connect on behalf of src (an outside client), so
 * that the pod's accept() sees who really connected. */
int tsor_client_connect_from(tsor_client *c, int sd, const struct sockaddr_in *dst, const struct sockaddr_in *src);
int tsor_client_accept(tsor_client *c, int lsd, struct sockaddr_in *peer, int flags);
ssize_t tsor_client_send(tsor_client *c, int sd, const void *buf, size_t len, int flags);
ssize_t tsor_client_recv(tsor_client *c, int sd, void *buf, size_t len, int flags);
int tsor_client_shutdown(tsor_client *c, int sd); /* SHUT_WR */
int tsor_client_close(tsor_client *c, int sd);
/* UDP between TSoR pods: a datagram socket, bound to a port of the pod's IP
 * (0: any; sendto binds one when needed). Datagrams may be dropped where a
 * receiver's ring is full, as UDP's are; a datagram longer than the buffer
 * given to recvfrom is truncated. EMSGSIZE beyond TSOR_DGRAM_MAX or the
 * ring. */
int tsor_client_socket_dgram(tsor_client *c);
int tsor_client_bind(tsor_client *c, int sd, uint16_t port);
ssize_t tsor_client_sendto(tsor_client *c, int sd, const void *buf, size_t len, const struct sockaddr_in *dst, int flags);
ssize_t tsor_client_recvfrom(tsor_client *c, int sd, void *buf, size_t len, struct sockaddr_in *src, int flags);
/* close() that resets the connection, as with SO_LINGER {1, 0}. */
int tsor_client_abort(tsor_client *c, int sd);

#define TSOR_POLLIN 0x1
#define TSOR_POLLOUT 0x4
#define TSOR_POLLERR 0x8
#define TSOR_POLLHUP 0x10
struct tsor_pollsd {
  int sd;
  short events, revents;
};
/* poll(2) over TSoR sockets; timeout_ms < 0 waits forever. Returns the
 * number of ready entries, 0 on timeout. */
int tsor_client_poll(tsor_client *c, struct tsor_pollsd *p, int n, int timeout_ms);
/* The eventfd tsord kicks (a VMM adds it to its own event loop), and the
 * call that drains completions after it fired. */
int tsor_client_event_fd(const tsor_client *c);
void tsor_client_process(tsor_client *c);
/* For such an event loop: sleep_begin announces the sleep (tsord kicks the
 * event fd only while it is announced); check your sockets once more after
 * it (tsor_client_poll with timeout 0), then sleep; sleep_end after waking
 * (clears the announcement and the event fd). */
void tsor_client_sleep_begin(tsor_client *c);
void tsor_client_sleep_end(tsor_client *c);

/* ---- peers: pod CIDR -> node ---- */

struct tsor_peer {
  char *name;
  uint32_t cidr_addr; /* network order */
  uint8_t cidr_len;
  char *address; /* tsord's fabric address "ip:port" */
};
struct tsor_peers {
  struct tsor_peer *v;
  size_t n;
};
/* Parses {"Nodes":[{"Name":..,"PodCIDR":"10.1.0.0/24","Address":"10.0.0.1:7470"}]}.
 * Rejects duplicates and overlapping CIDRs with a message saying which. */
int tsor_peers_parse(const char *json, struct tsor_peers *out, q_error **err);
int tsor_peers_load(const char *path, struct tsor_peers *out, q_error **err);
void tsor_peers_free(struct tsor_peers *p);
/* The node whose pod CIDR holds addr (network order), or NULL. */
const struct tsor_peer *tsor_peers_lookup(const struct tsor_peers *p, uint32_t addr);
const struct tsor_peer *tsor_peers_find(const struct tsor_peers *p, const char *name);
/* "a.b.c.d/n" -> addr (network order, host bits must be zero), len. */
int tsor_parse_cidr(const char *s, uint32_t *addr, uint8_t *len);
/* "a.b.c.d:port" -> sockaddr_in. */
int tsor_parse_hostport(const char *s, struct sockaddr_in *out);

/* ---- peers from the Kubernetes API ----
 * A node is a TSoR node when it has spec.podCIDR and this annotation, whose
 * value is its tsord's fabric address "ip:port". */
#define TSOR_KUBE_ANNOTATION "quark.io/tsord-address"
struct tsor_kube_config {
  const char *server;     /* "https://host:port"; NULL: in-cluster (KUBERNETES_SERVICE_HOST/PORT) */
  const char *token_file; /* NULL: the service account's token */
  const char *ca_file;    /* NULL: the service account's ca.crt (https only) */
};
/* A NodeList (GET /api/v1/nodes) -> peers; nodes without a pod CIDR or the
 * annotation are skipped. Same checks as the peers file. */
int tsor_peers_from_nodelist(const char *json, struct tsor_peers *out, q_error **err);
/* Lists the nodes (libcurl, bearer token). */
int tsor_kube_list_peers(const struct tsor_kube_config *cfg, struct tsor_peers *out, q_error **err);
/* List, then watch from the list's resourceVersion; list again when the
 * watch ends (the server closes it after period_s) or fails (retrying every
 * min(period_s, 5) seconds while the list fails, keeping the last table). Each new table goes to
 * on_peers, which owns it. Returns once stop(arg) is true (checked at least
 * every second). Blocking: run it on its own thread. */
void tsor_kube_run(const struct tsor_kube_config *cfg, int period_s, bool (*stop)(void *),
                   void (*on_peers)(void *, struct tsor_peers *), void *arg);

/* ---- the daemon ---- */

typedef struct tsor_daemon tsor_daemon;
struct tsor_daemon_config {
  const char *node;        /* this node's name in the peers table */
  const char *peers_path;  /* JSON peers file; NULL: the Kubernetes API (kube) */
  struct tsor_kube_config kube;
  int refresh_s;           /* kube: watch, and list again every refresh_s seconds (0: 300) */
  const char *socket_path; /* unix socket for sandboxes */
  const char *fabric;      /* "auto" (verbs, else tcp), "verbs" or "tcp" */
};
int tsor_daemon_new(const struct tsor_daemon_config *cfg, tsor_daemon **out, q_error **err);
/* Runs until tsor_daemon_stop (async-signal-safe) is called. */
int tsor_daemon_run(tsor_daemon *d, q_error **err);
void tsor_daemon_stop(tsor_daemon *d);
void tsor_daemon_free(tsor_daemon *d);
/* Name of the node-to-node fabric in use ("verbs", "tcp"). */
const char *tsor_daemon_fabric(const tsor_daemon *d);
/* This node's pod CIDR (network order). */
void tsor_daemon_pod_cidr(const tsor_daemon *d, uint32_t *addr, uint8_t *len);

#endif
