/* The channel state machine: what tsord does for one TSoR socket when its
 * client or its peer does something. Pure (no I/O) so that the unit tests
 * walk it directly; the daemon turns the returned actions into messages.
 *
 * A channel is freed (its id reusable on the node connection) only after it
 * has both sent and received a terminal message (CLOSE or RESET): the
 * connection is ordered, so after the peer's terminal nothing more can land
 * in this socket's rings, and after ours the peer writes nothing more. The
 * socket's slot goes back to the client only after that, because the peer
 * may write into its read ring until then. */
#ifndef TSOR_CHAN_H
#define TSOR_CHAN_H

#include <stdbool.h>
#include <stdint.h>

enum tsor_cs {
  TSOR_CS_IDLE = 0,   /* socket made, nothing else */
  TSOR_CS_LISTEN,
  TSOR_CS_CONNECTING, /* CONNECT sent, waiting for ACCEPT/REFUSE */
  TSOR_CS_OPEN,       /* channel up (maybe half-closed) */
  TSOR_CS_DONE,       /* channel gone; socket kept for the client to drain */
};

enum tsor_cev {
  TSOR_EV_CONNECT = 1, /* client connect(): CONNECT sent */
  TSOR_EV_LISTEN,
  TSOR_EV_ACCEPTED,    /* our CONNECT was accepted */
  TSOR_EV_REFUSED,     /* our CONNECT was refused */
  TSOR_EV_INCOMING,    /* passive side: channel made for a peer's CONNECT */
  TSOR_EV_SHUTDOWN,    /* client shutdown(SHUT_WR) */
  TSOR_EV_TX_DRAINED,  /* every byte the client wrote was handed to the fabric */
  TSOR_EV_FIN,         /* peer's FIN arrived */
  TSOR_EV_CLOSE,       /* client close(), all read */
  TSOR_EV_CLOSE_UNREAD,/* client close() with unread bytes: reset, as TCP does */
  TSOR_EV_PEER_CLOSE,  /* peer's CLOSE */
  TSOR_EV_PEER_RESET,  /* peer's RESET */
  TSOR_EV_ABORT,       /* our client died */
  TSOR_EV_CONN_DOWN,   /* node connection lost */
};

/* Actions, as bits, in the order the daemon performs them. */
#define TSOR_ACT_SEND_FIN 0x01u   /* zero-length write with FIN after the data */
#define TSOR_ACT_SEND_CLOSE 0x02u
#define TSOR_ACT_SEND_RESET 0x04u
#define TSOR_ACT_PUBLISH 0x08u    /* socket state bits changed: tell the client */
#define TSOR_ACT_FREE_CHAN 0x10u  /* channel id may be reused */
#define TSOR_ACT_RELEASE 0x20u    /* slot goes back to the client */

struct tsor_chan_sm {
  uint8_t st;        /* enum tsor_cs */
  bool released;     /* client closed the socket */
  bool shut_wr;      /* client wants no more writes */
  bool drained;      /* nothing written by the client is waiting */
  bool fin_sent, rx_eof, term_sent, term_recv, reset, peer_gone;
  bool chan;         /* holds a channel id */
};

/* Applies ev; returns TSOR_ACT_* bits. Events that make no sense in the
 * current state change nothing and return 0. */
uint32_t tsor_chan_step(struct tsor_chan_sm *s, enum tsor_cev ev);
/* TSOR_ST_* bits the client should see. */
uint32_t tsor_chan_dstate(const struct tsor_chan_sm *s);
const char *tsor_cs_name(uint8_t st);

#endif
