/* QCall: guest -> host requests through shared-memory rings.
 *
 * One ring per vCPU. Each ring is single producer / single consumer in both
 * directions: the vCPU produces requests and consumes completions, one host
 * worker consumes requests and produces completions. Indices are free-running
 * uint32 (slot = index & (QK_QCALL_ENTRIES - 1)); guest-written and
 * host-written indices live on separate cache lines.
 *
 * Publication order: write the entry, then a release store of the tail; the
 * consumer does an acquire load of the tail, reads the entry, then a release
 * store of its head.
 *
 * Sleeping: a host worker that finds no work spins briefly, sets
 * host_sleeping = 1, re-checks req_tail, then sleeps on an eventfd bound to
 * QK_PORT_KICK (ioeventfd). The guest, after publishing a request, kicks the
 * port only if host_sleeping is 1. host_sleeping = QK_HOST_SLEEPING_INLINE
 * (2) says that the VMM's vCPU thread serves a request itself when the vCPU
 * waits with QK_PORT_WAIT (qk_abi.h): a guest that waits that way then
 * writes QK_PORT_WAIT at once, with no kick and no polls; any other guest
 * kicks as for 1. Symmetrically a vCPU with nothing to run
 * sets guest_sleeping = 1, re-checks cpl_tail and halts; the host wakes the
 * halted vCPU when it publishes a completion and guest_sleeping is 1 (with
 * no in-kernel irqchip HLT exits to the VMM, which simply resumes the vCPU
 * after the hlt; a host may instead inject QK_VECTOR_QCALL, so the guest
 * must tolerate both and re-check cpl_tail after waking).
 *
 * The host serves each ring's requests in order. A guest may post requests
 * it does not wait for ahead of one it waits for (a close); a vCPU that
 * waits in the VMM (QK_PORT_WAIT) returns once every queued request of its
 * ring is served.
 *
 * Addresses in requests are guest-physical (gpa). The host translates each
 * (gpa, len) with one checked translation; a request naming memory outside
 * the memslot fails with -QK_EFAULT and nothing else happens.
 * Results: >= 0 value, < 0 negated Linux errno (see qk_errno.h).
 */
#ifndef QK_QCALL_H
#define QK_QCALL_H

#include <stdint.h>

#define QK_QCALL_ENTRIES 256u
#define QK_QCALL_MAX_IOV 64u          /* segments in one gpa iovec */
#define QK_QCALL_MAX_PATH 4096u       /* bytes, including no NUL requirement */
#define QK_QCALL_MAX_IO (64u << 20)   /* bytes moved by one request */

/* Host file handles: small integers indexing the sandbox's per-pod table of
 * host resources. The guest never sees host fd numbers. */
#define QK_HFD_STDIN 0
#define QK_HFD_STDOUT 1
#define QK_HFD_STDERR 2
#define QK_HFD_ROOT 3   /* the container's rootfs root directory */

enum qk_op {
  QK_OP_NOP = 0,          /* -> 0 */
  QK_OP_LOG = 1,          /* a0 level (QK_LOG_*), a1 gpa, a2 len -> 0 */
  QK_OP_EXIT = 2,         /* a0 exit status: the sandbox stops the VM and exits with it */
  QK_OP_OPENAT = 3,       /* a0 dir hfd (QK_HFD_ROOT), a1 path gpa, a2 path len, a3 Linux open
                             flags, a4 mode, a5 0 or the gpa of a Linux x86-64 struct stat
                             (144 bytes) that receives the new file's attributes -> new hfd.
                             Paths resolve inside the rootfs:
                             openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) */
  QK_OP_CLOSE = 4,        /* a0 hfd -> 0 */
  QK_OP_PREADV = 5,       /* a0 hfd, a1 iov gpa (struct qk_iov[]), a2 iovcnt, a3 offset
                             (-1: stream / current position), a4 0 or QK_RW_NOWAIT -> bytes */
  QK_OP_PWRITEV = 6,      /* same as PREADV -> bytes */
  QK_OP_FSTAT = 7,        /* a0 hfd, a1 gpa of Linux x86-64 struct stat (144 bytes) -> 0 */
  QK_OP_FSTATAT = 8,      /* a0 dir hfd, a1 path gpa, a2 path len, a3 stat gpa, a4 flags
                             (QK_AT_SYMLINK_NOFOLLOW) -> 0 */
  QK_OP_GETDENTS64 = 9,   /* a0 hfd, a1 buf gpa, a2 len -> bytes (Linux dirent64 records) */
  QK_OP_READLINKAT = 10,  /* a0 dir hfd, a1 path gpa, a2 path len, a3 buf gpa, a4 buf len -> bytes */
  QK_OP_FACCESSAT = 11,   /* a0 dir hfd, a1 path gpa, a2 path len, a3 mode, a4 flags -> 0 */
  QK_OP_LSEEK = 12,       /* a0 hfd, a1 offset, a2 whence -> new offset */
  QK_OP_FSYNC = 13,       /* a0 hfd -> 0 */
  QK_OP_FTRUNCATE = 14,   /* a0 hfd, a1 length -> 0 */
  QK_OP_IOCTL = 15,       /* a0 hfd, a1 cmd (TCGETS, TIOCGWINSZ only), a2 arg gpa -> result */
  QK_OP_GETRANDOM = 16,   /* a0 buf gpa, a1 len -> bytes */
  QK_OP_CLOCK = 17,       /* a0 Linux clockid -> nanoseconds */
  QK_OP_SLEEP = 18,       /* a0 nanoseconds: completes after that long -> 0; 1 when the host
                             ended it early (a pod command came, qk_ctl.h) */
  QK_OP_ZERO = 19,        /* a0 iov gpa, a1 iovcnt: host zeroes guest memory -> 0 */
  QK_OP_COPY = 20,        /* a0 dst gpa, a1 src gpa, a2 len: host copies -> 0 */
  QK_OP_MKDIRAT = 21,     /* a0 dir hfd, a1 path gpa, a2 path len, a3 mode -> 0 */
  QK_OP_UNLINKAT = 22,    /* a0 dir hfd, a1 path gpa, a2 path len, a3 flags (QK_AT_REMOVEDIR) -> 0 */
  QK_OP_CTL_EVENT = 23,   /* a0 gpa of struct qk_ctl_event, a1 its size (qk_ctl.h) -> 0, or
                             -ENOSYS when the host drives no pod control channel */
  /* Sockets (host side: sandbox/qcall/ops_net.c). AF_INET/AF_INET6 TCP and
   * UDP sockets opened by the sandbox in the pod's network namespace; the
   * host handle is always non-blocking, the guest decides whether to wait.
   * Addresses are Linux sockaddrs of at most 128 bytes; "len gpa" names a
   * uint32 the host reads (buffer size) and rewrites (address length). */
  QK_OP_SOCKET = 24,      /* a0 domain, a1 type (SOCK_STREAM/DGRAM, no flags), a2 protocol -> hfd */
  QK_OP_BIND = 25,        /* a0 hfd, a1 addr gpa, a2 addr len -> 0 */
  QK_OP_CONNECT = 26,     /* a0 hfd, a1 addr gpa, a2 addr len -> 0 or -EINPROGRESS */
  QK_OP_LISTEN = 27,      /* a0 hfd, a1 backlog -> 0 */
  QK_OP_ACCEPT = 28,      /* a0 hfd, a1 addr gpa (0: none), a2 len gpa, a3 0 or QK_NET_WAIT -> new hfd */
  QK_OP_SOCKNAME = 29,    /* a0 hfd, a1 addr gpa, a2 len gpa, a3 1: peer name -> 0 */
  QK_OP_SENDMSG = 30,     /* a0 hfd, a1 iov gpa, a2 iovcnt, a3 MSG_* flags, a4 addr gpa (0: none),
                             a5 addr len -> bytes */
  QK_OP_RECVMSG = 31,     /* a0 hfd, a1 iov gpa, a2 iovcnt, a3 MSG_* flags, a4 addr gpa (0: none),
                             a5 len gpa -> bytes, or (bytes | QK_NET_TRUNC) for a cut datagram.
                             Never waits beyond QK_NET_WAIT: the guest gathers MSG_WAITALL */
  QK_OP_SHUTDOWN = 32,    /* a0 hfd, a1 how -> 0 */
  QK_OP_SETSOCKOPT = 33,  /* a0 hfd, a1 level, a2 name (host allowlist), a3 val gpa, a4 len -> 0 */
  QK_OP_GETSOCKOPT = 34,  /* a0 hfd, a1 level, a2 name, a3 val gpa, a4 len gpa -> 0 */
  QK_OP_NET_POLL = 35,    /* a0 gpa of struct qk_net_pollfd[], a1 count (<= QK_NET_POLL_MAX),
                             a2 timeout ns (~0: none; 0: just look) -> ready count; ends early
                             with -EINTR when the VM stops */
  QK_OP_SOCK_IOCTL = 36,  /* a0 hfd, a1 FIONREAD or SIOCOUTQ -> count; a1 SIOCGIF* (read-only
                             interface queries), a2 gpa of a struct ifreq (40 bytes, in/out) -> 0 */
  QK_OP_SENDFILE = 37,    /* a0 out hfd (a socket), a1 in hfd (a regular file), a2 offset (~0: the
                             in handle's own position, which advances), a3 count, a4 0 or
                             QK_NET_WAIT -> bytes (the host's sendfile: no copy through the guest) */
  /* Filesystem writes (host side: sandbox/qcall/ops_fs.c). Paths resolve
   * beneath a0 like QK_OP_OPENAT; a call that names a link or entry
   * itself (rename, link, symlink, mknod) resolves only the parent in the
   * root and acts on the last component without following it; "." and
   * ".." as last components are refused. Device nodes are never created
   * and never changed. */
  QK_OP_RENAMEAT = 38,    /* a0 dir hfd, a1 old gpa, a2 old len, a3 new gpa, a4 new len, a5 flags
                             (QK_RENAME_NOREPLACE | QK_RENAME_EXCHANGE) -> 0 */
  QK_OP_LINKAT = 39,      /* a0 dir hfd, a1 old gpa, a2 old len, a3 new gpa, a4 new len, a5 flags
                             (QK_AT_SYMLINK_FOLLOW) -> 0 */
  QK_OP_SYMLINKAT = 40,   /* a0 dir hfd, a1 target gpa, a2 target len, a3 link gpa, a4 link len -> 0 */
  QK_OP_FCHMODAT = 41,    /* a0 hfd, a1 path gpa, a2 path len (0 with QK_AT_EMPTY_PATH: a0 itself),
                             a3 mode (07777), a4 flags (QK_AT_SYMLINK_NOFOLLOW | QK_AT_EMPTY_PATH) -> 0 */
  QK_OP_FCHOWNAT = 42,    /* a0 hfd, a1 path gpa, a2 path len (as FCHMODAT), a3 uid (~0u32: keep),
                             a4 gid (~0u32: keep), a5 flags (as FCHMODAT) -> 0 */
  QK_OP_UTIMENSAT = 43,   /* a0 hfd, a1 path gpa, a2 path len (as FCHMODAT), a3 gpa of two Linux
                             struct timespec (0: both now; UTIME_NOW/UTIME_OMIT allowed), a4 flags
                             (as FCHMODAT) -> 0 */
  QK_OP_SYNCFS = 44,      /* a0 hfd (QK_HFD_ROOT: the rootfs) -> 0 */
  QK_OP_STATFS = 45,      /* a0 hfd, a1 path gpa, a2 path len (0: a0 itself), a3 gpa of Linux
                             x86-64 struct statfs (120 bytes) -> 0 */
  QK_OP_MKNODAT = 46,     /* a0 dir hfd, a1 path gpa, a2 path len, a3 mode (S_IFIFO, S_IFREG or
                             S_IFSOCK (a guest bind) | perms; anything else -EPERM) -> 0 */
  QK_OP_FALLOCATE = 47,   /* a0 hfd, a1 mode (0, FALLOC_FL_KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE,
                             ZERO_RANGE), a2 offset, a3 length -> 0 */
  /* TSoR (host side: sandbox/qcall/ops_tsor.c): the pod's TCP sockets to
   * TSoR pods, carried by the sandbox's TSoR client through tsord's shared
   * rings (tsor/include/quark/tsor.h). "tsd" is a TSoR socket number of this
   * sandbox. Only QK_OP_TSOR_POLL waits long; the others answer -EAGAIN. */
  QK_OP_TSOR_INFO = 48,    /* a0 gpa of struct qk_tsor_info -> 0; -ENOSYS: this pod has no TSoR */
  QK_OP_TSOR_CTL = 49,     /* a0 QK_TSOR_CTL_*, a1 tsd -> new tsd (SOCKET), connect status
                              (STATUS: 0, -EINPROGRESS or -errno), bytes (NREAD), 0, or -errno */
  QK_OP_TSOR_CONNECT = 50, /* a0 tsd, a1 IPv4 address (network order), a2 port -> -EINPROGRESS */
  QK_OP_TSOR_LISTEN = 51,  /* a0 tsd, a1 port, a2 backlog -> 0 */
  QK_OP_TSOR_ACCEPT = 52,  /* a0 listening tsd, a1 gpa of struct qk_tsor_peer (0: none), a2 wait
                              ns -> new tsd */
  QK_OP_TSOR_SEND = 53,    /* a0 tsd, a1 iov gpa (struct qk_iov[]), a2 iovcnt, a3 wait ns -> bytes */
  QK_OP_TSOR_RECV = 54,    /* a0 tsd, a1 iov gpa, a2 iovcnt, a3 wait ns -> bytes (0: end of stream).
                              Wait ns (SEND, RECV, ACCEPT): when there is nothing to do, the
                              host may wait up to that long (at most QK_NET_WAIT_NS) first;
                              the guest asks only when it has nothing else to run */
  QK_OP_TSOR_POLL = 55,    /* a0 gpa of struct qk_net_pollfd[] whose hfd fields are tsds, a1 count,
                              a2 gpa of struct qk_net_pollfd[] of host sockets, a3 count (each <=
                              QK_NET_POLL_MAX), a4 timeout ns (~0: none; 0: just look) -> ready
                              entries of both; -EINTR when the VM stops */
  QK_OP_PROCNET_READ = 56, /* a0 QK_PROCNET_* (a file of the host's /proc/thread-self/net: the
                              pod's netns), a1 buf gpa, a2 buf len (<= QK_PROCNET_MAX) -> the
                              file's whole length (min(len, that) bytes copied; the guest retries
                              with a larger buffer); -ENOENT: the host has no such file.
                              a0 QK_PROCNET_PROBE -> bitmask of the files the host has */
  /* Socket messages with control data (host side: sandbox/qcall/ops_net.c and
   * ops_net_anc.c): a1 the gpa of a struct qk_net_msg, a2 MSG_* flags (| QK_NET_WAIT),
   * on host sockets of the guest (never AF_UNIX, which the guest serves). */
  QK_OP_SENDMSG_CTL = 57,  /* -> bytes. The control records (<= QK_NET_CTL_MAX bytes) are checked
                              as Linux's CMSG_OK; IP_PKTINFO, IP_TOS, IP_TTL, IPV6_PKTINFO,
                              IPV6_TCLASS, IPV6_HOPLIMIT and UDP_SEGMENT go to the host socket;
                              of the rest, what Linux's UDP/TCP refuse is -EINVAL and what they
                              ignore is left out (sandbox/qcall/ops_net_anc.h) */
  QK_OP_RECVMSG_CTL = 58,  /* -> bytes; ctllen becomes the control bytes written, msg_flags
                              MSG_TRUNC/MSG_CTRUNC. Only SO_TIMESTAMP(NS) (old and new),
                              IP_PKTINFO, IP_TOS, IP_TTL, IPV6_PKTINFO, IPV6_TCLASS,
                              IPV6_HOPLIMIT and UDP_GRO records reach the guest, cut as Linux
                              cuts them for a short buffer */
  /* Numbers reserved per area so parallel work does not collide (an area
   * adds its opcodes inside its range, each with its argument comment):
   *   38-47 filesystem (rename, link, symlink, chmod, chown, utimensat, statfs…)
   *   48-55 TSoR     56-63 network     64-71 terminals and streaming
   *   72-79 events and timers          80-87 security and resources
   *   88-95 scheduling, vCPUs and interrupts */
  QK_OP_COUNT = 96
};

#define QK_NET_TRUNC (1ull << 40) /* QK_OP_RECVMSG: datagram longer than the buffers */
/* PREADV/PWRITEV a4: move only what is ready now, else -EAGAIN (pod
 * container stdio: a read of an idle stdin must not hold the QCall worker). */
#define QK_RW_NOWAIT 1ull

/* In the flags of QK_OP_SENDMSG/RECVMSG (a3), QK_OP_ACCEPT (a3) and
 * QK_OP_SENDFILE (a4): the
 * guest has nothing else to run, so the host may wait up to
 * QK_NET_WAIT_NS for the socket before answering -EAGAIN (saves the
 * guest a park, an idle QK_OP_NET_POLL and a retry per blocking call). */
#define QK_NET_WAIT (1ull << 32)
#define QK_NET_WAIT_NS 1000000ull
/* QK_OP_SENDMSG_CTL / QK_OP_RECVMSG_CTL: one message. The control buffer
 * holds Linux struct cmsghdr records (x86-64: 16-byte header, 8-byte
 * alignment), as msg_control. */
#define QK_NET_CTL_MAX 4096u /* control bytes of one message, either way */
struct qk_net_msg {
  uint64_t iov;       /* gpa of struct qk_iov[iovcnt] */
  uint64_t addr;      /* gpa of a sockaddr (0: none) */
  uint64_t ctl;       /* gpa of the control buffer */
  uint32_t iovcnt;    /* <= QK_QCALL_MAX_IOV */
  uint32_t addrlen;   /* send: the address's length; recv: in the buffer's size, out the
                         source's full length (written by the host) */
  uint32_t ctllen;    /* send: the control bytes; recv: in the buffer's size, out the bytes
                         written (both <= QK_NET_CTL_MAX) */
  uint32_t msg_flags; /* recv, out: MSG_TRUNC (0x20), MSG_CTRUNC (0x8) */
};
_Static_assert(sizeof(struct qk_net_msg) == 40, "qk_net_msg layout");
#define QK_NET_POLL_MAX 256u
struct qk_net_pollfd {
  uint32_t hfd;
  int16_t events;  /* Linux POLL* bits */
  int16_t revents; /* written by the host */
};
_Static_assert(sizeof(struct qk_net_pollfd) == 8, "qk_net_pollfd layout");

/* QK_OP_PROCNET_READ files: a name index, never a path (sandbox/qcall/
 * ops_procnet.c holds the names). Append only. */
enum qk_procnet {
  QK_PROCNET_DEV,
  QK_PROCNET_TCP,
  QK_PROCNET_TCP6,
  QK_PROCNET_UDP,
  QK_PROCNET_UDP6,
  QK_PROCNET_RAW,
  QK_PROCNET_RAW6,
  QK_PROCNET_ROUTE,
  QK_PROCNET_IF_INET6,
  QK_PROCNET_SNMP,
  QK_PROCNET_NETSTAT,
  QK_PROCNET_SOCKSTAT,
  QK_PROCNET_SOCKSTAT6,
  QK_PROCNET_COUNT
};
#define QK_PROCNET_PROBE 0xffffu
#define QK_PROCNET_MAX (1u << 20) /* bytes the host reads of one file */

/* QK_OP_TSOR_CTL operations. */
#define QK_TSOR_CTL_SOCKET 1   /* -> new stream tsd */
#define QK_TSOR_CTL_SHUTDOWN 2 /* no more writes (FIN after queued bytes) */
#define QK_TSOR_CTL_CLOSE 3    /* release (reset when unread bytes remain) */
#define QK_TSOR_CTL_ABORT 4    /* release with a reset */
#define QK_TSOR_CTL_STATUS 5   /* result of the connect in progress */
#define QK_TSOR_CTL_NREAD 6    /* bytes ready to read (FIONREAD) */
#define QK_TSOR_MAX_CIDRS 8
struct qk_tsor_info {
  uint32_t pod_ip;                      /* network order */
  uint32_t ring_size;                   /* bytes of each socket ring */
  uint32_t ncidrs;                      /* TSoR pod CIDRs: destinations routed to TSoR */
  uint32_t cidr[QK_TSOR_MAX_CIDRS];     /* network order */
  uint32_t cidr_len[QK_TSOR_MAX_CIDRS]; /* prefix lengths */
};
_Static_assert(sizeof(struct qk_tsor_info) == 76, "qk_tsor_info layout");
struct qk_tsor_peer {
  uint32_t addr; /* network order */
  uint32_t port; /* host order */
};
_Static_assert(sizeof(struct qk_tsor_peer) == 8, "qk_tsor_peer layout");

#define QK_AT_SYMLINK_NOFOLLOW 0x100
#define QK_AT_SYMLINK_FOLLOW 0x400
#define QK_RENAME_NOREPLACE 1
#define QK_RENAME_EXCHANGE 2
#define QK_AT_REMOVEDIR 0x200
#define QK_AT_EACCESS 0x200
#define QK_AT_EMPTY_PATH 0x1000

#define QK_LOG_ERROR 1
#define QK_LOG_WARN 2
#define QK_LOG_INFO 3
#define QK_LOG_DEBUG 4

struct qk_iov {
  uint64_t gpa;
  uint64_t len;
};
_Static_assert(sizeof(struct qk_iov) == 16, "qk_iov layout");

struct qk_qcall_req {
  uint64_t tag;   /* guest cookie, echoed in the completion */
  uint32_t op;    /* enum qk_op */
  uint32_t flags; /* 0 */
  uint64_t a[6];
};
_Static_assert(sizeof(struct qk_qcall_req) == 64, "qk_qcall_req layout");

struct qk_qcall_cpl {
  uint64_t tag;
  int64_t result;
};
_Static_assert(sizeof(struct qk_qcall_cpl) == 16, "qk_qcall_cpl layout");

#define QK_HOST_SLEEPING_INLINE 2u

struct qk_qcall_ring {
  /* guest-written */
  _Alignas(64) uint32_t req_tail;
  _Alignas(64) uint32_t cpl_head;
  uint32_t guest_sleeping;
  /* host-written */
  _Alignas(64) uint32_t req_head;
  _Alignas(64) uint32_t cpl_tail;
  uint32_t host_sleeping;
  _Alignas(64) struct qk_qcall_req req[QK_QCALL_ENTRIES];
  struct qk_qcall_cpl cpl[QK_QCALL_ENTRIES];
};
_Static_assert(sizeof(struct qk_qcall_ring) == 256 + 64 * QK_QCALL_ENTRIES + 16 * QK_QCALL_ENTRIES,
               "qk_qcall_ring layout");
_Static_assert((QK_QCALL_ENTRIES & (QK_QCALL_ENTRIES - 1)) == 0, "ring size is a power of two");

#endif
