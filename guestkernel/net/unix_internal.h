/* AF_UNIX sockets served in the guest: what unix.c (ends, names, file
 * ops), unix_io.c (stream and message transfers) and unix_anc.c
 * (ancillary data and the collection of descriptor cycles) share. Not an
 * interface of the rest of the kernel (net_internal.h is). */
#ifndef QK_UNIX_INTERNAL_H
#define QK_UNIX_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <qk/fs.h>

#define UN_STREAM 1
#define UN_DGRAM 2
#define UN_SEQPACKET 5

#define MSG_PEEK 0x2
#define MSG_CTRUNC 0x8
#define MSG_TRUNC 0x20
#define MSG_DONTWAIT 0x40
#define MSG_NOSIGNAL 0x4000
#define MSG_CMSG_CLOEXEC 0x40000000
#define POLLERR 0x008
#define POLLHUP 0x010

#define NAME_MAX_UN 108 /* sun_path */
#define SCM_MAX_FD 253
#define MQ_MAX (208u * 1024) /* bytes queued per message queue (Linux's default wmem) */
#define DGRAM_QLEN 10        /* net.unix.max_dgram_qlen: datagrams from unconnected senders */
/* Kernel memory a queued message costs beyond its bytes, counted against
 * MQ_MAX as Linux counts an skb's truesize: 1-byte messages cannot pile
 * up by the hundred thousand. */
#define MSG_COST 512

enum { U_UNBOUND, U_LISTEN, U_CONNECTED };

struct ucred_l {
  int32_t pid;
  uint32_t uid, gid;
};

/* Files and credentials sent with the len bytes at stream offset pos (one
 * sendmsg/write), or with one message. */
struct unix_anc {
  struct unix_anc *next;
  uint64_t pos, len;
  bool cred;
  struct ucred_l uc;
  int nfds;
  struct qk_file **fds; /* SCM_MAX_FD slots, allocated with the first file (NULL: none) */
};

/* One direction of a stream connection: shared by the writing and the
 * reading end (refs). */
struct unix_chan {
  uint64_t wpos, rpos; /* bytes written into / read from the pipe */
  struct unix_anc *head, *tail;
  bool passcred; /* the reading end set SO_PASSCRED */
  bool has_cred; /* cred: the writer of the bytes at rpos */
  bool reset;    /* the writing end closed with bytes of its own unread: ECONNRESET once */
  struct ucred_l cred;
  int refs;
};

/* A message (SOCK_DGRAM / SOCK_SEQPACKET) and a receive queue of them.
 * A datagram socket owns its queue; senders hold references. */
struct unix_msg {
  struct unix_msg *next;
  uint64_t len;
  struct unix_anc *anc;
  uint32_t fromlen; /* sockaddr_un length of the sender's name (0: unnamed) */
  uint8_t from[2 + NAME_MAX_UN + 1];
  uint8_t data[];
};
struct unix_mq {
  struct unix_msg *head, *tail;
  uint64_t bytes;  /* payload queued (FIONREAD) */
  uint64_t charge; /* bytes + MSG_COST per message: the limit MQ_MAX applies to this */
  uint32_t count;
  bool closed;            /* the reading end is gone: ECONNREFUSED (datagram) / EPIPE */
  bool shut_rd;           /* the reading end shut down reading: EPIPE */
  bool shut_wr;           /* no more messages will come (seqpacket peer closed or SHUT_WR): EOF */
  bool reset;             /* the seqpacket peer closed with messages of its own unread */
  struct unix_end *owner; /* the reading end (NULL once closed) */
  int refs;
};

/* A bound name: a path (identified by the socket inode's dev/ino once the
 * file exists) or an abstract name (leading NUL). */
struct unix_name {
  uint32_t len; /* sockaddr_un length as Linux reports it (family + bytes [+ NUL]): a
                   108-byte path makes 111, one more than struct sockaddr_un */
  uint8_t addr[2 + NAME_MAX_UN + 1];
};

struct unix_end {
  int type;                /* UN_STREAM, UN_DGRAM, UN_SEQPACKET */
  struct qk_file *file;    /* back pointer (no reference) */
  struct unix_mq *rq, *wq; /* message types: my queue, the peer's (NULL: none) */
  struct qk_file *rx, *tx; /* stream: pipe ends; NULL once shut down */
  struct unix_chan *rxc, *txc;
  struct ucred_l peercred, owncred; /* SO_PEERCRED; owncred: at listen */
  bool passcred_set;                /* SO_PASSCRED on this end */
  bool shut_wr;                     /* message types: SHUT_WR done */
  int sndbuf, rcvbuf;               /* SO_SNDBUF / SO_RCVBUF as reported */
  uint64_t ino;
  int state;
  struct unix_name name, peer; /* len 0: none */
  bool path_bound;             /* name is a filesystem path: dev/ino below */
  uint64_t fs_dev, fs_ino;
  struct unix_end *next_bound;  /* the name table */
  struct unix_end *next, *prev; /* every end (the collector walks them) */
  struct qk_file **queue;       /* listening: connections not accepted yet */
  int qlen, qmax;
  int inflight; /* references held by ancillary records in flight */
  int gc_refs;  /* collector scratch */
  bool gc_cand;
  bool gc_purged; /* collected: its queue counts as empty at release (no ECONNRESET) */
  bool embryo;    /* released by its listener before accept: the peer reads ECONNRESET */
};

struct ucred_l qk_unix_my_cred(void);

/* Ancillary data (unix_anc.c). */
/* Parses a sendmsg's control data (kernel copy): references taken on the
 * SCM_RIGHTS files. *out NULL when there is none. */
int64_t qk_unix_anc_parse(const uint8_t *ctl, uint64_t len, struct unix_anc **out);
void qk_unix_anc_free(struct unix_anc *a);
/* A copy of a's files (new references) and credentials, for MSG_PEEK. */
struct unix_anc *qk_unix_anc_dup(const struct unix_anc *a);
/* Delivers a (may be NULL; consumed) into the user's control buffer. */
int64_t qk_unix_anc_deliver(struct unix_anc *a, bool passcred, uint64_t uctl, uint64_t *room,
                            uint64_t flags, uint32_t *mflags);
/* Every unix end (the collector walks them). */
extern struct unix_end *qk_unix_all;

/* Transfers (unix_io.c). Receiving hands the record that goes with the
 * bytes to *got (NULL: none); from/fromlen: the sender's name (may be
 * NULL). */
int64_t qk_unix_stream_io(struct qk_file *f, const struct qk_uio *u, uint64_t flags, bool send,
                          struct unix_anc *anc, struct unix_anc **got);
int64_t qk_unix_msg_send(struct qk_file *f, const struct qk_uio *u, uint64_t flags,
                         struct unix_anc *anc, const uint8_t *addr, uint32_t alen);
int64_t qk_unix_msg_recv(struct qk_file *f, const struct qk_uio *u, uint64_t flags,
                         struct unix_anc **got, uint32_t *mflags, uint8_t *from, uint32_t *fromlen);
void qk_unix_mq_put(struct unix_mq *q);
void qk_unix_chan_put(struct unix_chan *c);
/* The bound datagram end named by a sockaddr_un (kernel copy), or NULL
 * with *err (unix.c). */
struct unix_end *qk_unix_find(const uint8_t *addr, uint32_t alen, int type, int64_t *err);
/* Autobinds e (abstract name of 5 hex digits) if it has no name. */
int64_t qk_unix_autobind(struct unix_end *e);

#endif
