/* Shared between the socket files of guestkernel/net/ (not a public
 * interface: qk/net.h is). */
#ifndef QK_NET_INTERNAL_H
#define QK_NET_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <qk/fs.h>

/* Helpers of the socket layer (socket.c) that tsor.c shares. */
/* Another task could use the vCPU (a blocking call then must not make the
 * host wait for its socket). */
bool qk_net_others_runnable(void);
/* Moves a scatter list's head past n bytes (cur: its first segment). */
void qk_net_uio_advance(struct qk_uio *rest, struct l_iovec **cur, uint64_t n);
/* SIGPIPE to the calling thread (a send on a closed stream without MSG_NOSIGNAL). */
void qk_net_raise_sigpipe(void);

/* AF_UNIX stream pairs served in the guest (unix.c). */
bool qk_unix_is(struct qk_file *f);
/* socketpair(AF_UNIX, SOCK_STREAM): two connected ends, flags L_O_NONBLOCK. */
int qk_unix_pair(uint32_t flags, struct qk_file **a, struct qk_file **b);
/* socketpair(AF_UNIX, SOCK_DGRAM (2) or SOCK_SEQPACKET (5)): message queues
 * of 208 KiB each way, boundaries kept, MSG_TRUNC. */
int qk_unix_pair_msg(int type, uint32_t flags, struct qk_file **a, struct qk_file **b);
/* send/recv with MSG_* flags (MSG_DONTWAIT, MSG_NOSIGNAL; others
 * -EOPNOTSUPP); the restart model of pipes. */
int64_t qk_unix_xfer(struct qk_file *f, const struct qk_uio *u, uint64_t flags, bool send);
int64_t qk_unix_shutdown(struct qk_file *f, uint64_t how);
/* sendmsg with control data ctl (a kernel copy, ctllen bytes: SCM_RIGHTS,
 * SCM_CREDENTIALS). */
int64_t qk_unix_sendmsg(struct qk_file *f, const struct qk_uio *u, uint64_t flags,
                        const uint8_t *ctl, uint64_t ctllen);
/* recvmsg: control data into the user buffer uctl of *ctllen bytes;
 * *ctllen becomes what was written, *mflags gets MSG_CTRUNC. */
int64_t qk_unix_recvmsg(struct qk_file *f, const struct qk_uio *u, uint64_t flags, uint64_t uctl,
                        uint64_t *ctllen, uint32_t *mflags);
/* SOL_SOCKET options of unix sockets: SO_SNDBUF/SO_RCVBUF (accepted),
 * SO_PASSCRED; get: SO_PASSCRED, SO_PEERCRED (-QK_ENOPROTOOPT otherwise). */
int64_t qk_unix_setsockopt(struct qk_file *f, uint64_t level, uint64_t name, const void *val,
                           uint64_t len);
int64_t qk_unix_getsockopt(struct qk_file *f, uint64_t name, void *val, uint32_t *len);
/* Named stream sockets: an unbound socket, then bind/listen/connect/accept
 * with sockaddr_un bytes in kernel memory. Blocking calls park (restart
 * model) and return -QK_ERESTART_WAIT. */
int qk_unix_socket(uint32_t flags, struct qk_file **out);
int64_t qk_unix_bind(struct qk_file *f, const uint8_t *addr, uint32_t len);
int64_t qk_unix_listen(struct qk_file *f, int backlog);
int64_t qk_unix_connect(struct qk_file *f, const uint8_t *addr, uint32_t len);
/* 0 with *out (the accepted file, flags L_O_NONBLOCK applied), or -errno. */
int64_t qk_unix_accept(struct qk_file *f, uint32_t flags, struct qk_file **out);
/* Writes this end's (or the peer's) sockaddr_un into buf (110 bytes);
 * returns its length. */
uint32_t qk_unix_name(struct qk_file *f, bool peer, uint8_t *buf);

#endif
