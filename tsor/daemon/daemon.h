/* tsord internals shared by its source files (not part of the public API). */
#ifndef TSOR_DAEMON_H
#define TSOR_DAEMON_H

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
};

/* One control message; every message returns the receive credits its
 * sender reposted since its last message (rcredits). */
struct tsor_msg {
  uint8_t type;
  uint8_t pad;
  uint16_t rcredits;
  uint32_t chan;
  union {
    struct {
      char name[32];
    } hello;
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

#endif
