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
/* sendmsg/recvmsg of fd with the user's struct msghdr at umsg (mmsg.c
 * sends and receives each message with these). */
int64_t qk_net_sendmsg(uint64_t fd, uint64_t umsg, uint64_t flags);
int64_t qk_net_recvmsg(uint64_t fd, uint64_t umsg, uint64_t flags);

/* Control data of one sendmsg/recvmsg on a host socket (sock_anc.c): a
 * kernel buffer of room bytes; len the bytes of records in it (send: the
 * user's; recv: what the host wrote); flags MSG_CTRUNC after a receive.
 * The host checks and filters the records (QK_OP_SENDMSG_CTL/RECVMSG_CTL). */
struct qk_uiov;
struct qk_anc {
  uint8_t *buf;
  uint32_t room, len, flags;
};
/* sendmsg: the user's control data (ctllen bytes at uctl; -ENOBUFS past
 * QK_NET_CTL_MAX). recvmsg: room for a user buffer of ctllen bytes (none:
 * room 0). Either way qk_anc_free afterwards, also on failure. */
int64_t qk_anc_send_prep(struct qk_anc *anc, uint64_t uctl, uint64_t ctllen);
int64_t qk_anc_recv_prep(struct qk_anc *anc, uint64_t uctl, uint64_t ctllen);
/* After a receive: the records to the user at uctl, *ctllen their bytes,
 * MSG_CTRUNC into *mflags. */
int64_t qk_anc_recv_done(struct qk_anc *anc, uint64_t uctl, uint64_t *ctllen, uint32_t *mflags);
void qk_anc_free(struct qk_anc *anc);
/* One host call as QK_OP_SENDMSG/QK_OP_RECVMSG with the same arguments
 * and answers (recv: | QK_NET_TRUNC), carrying anc's records. */
int64_t qk_anc_host_send(int hfd, const struct qk_uiov *v, uint64_t hflags, const void *addr,
                         uint32_t alen, const struct qk_anc *anc);
int64_t qk_anc_host_recv(int hfd, const struct qk_uiov *v, uint64_t hflags, void *addr,
                         uint32_t *alen, struct qk_anc *anc);

/* Raw ICMP sockets over a host ICMP datagram socket hfd (rawicmp.c).
 * hflags: the QK_OP_SENDMSG/RECVMSG flags; addr/alen: kernel sockaddr
 * buffers as sock_send/sock_recv take them. send records the echo
 * identifier the user wrote in *id; recv gives each echo reply that
 * identifier back and, for IPv4 (!v6), puts an IPv4 header before it. */
int64_t qk_rawicmp_send(int hfd, const struct qk_uio *u, uint64_t hflags, const void *addr,
                        uint32_t alen, uint16_t *id);
int64_t qk_rawicmp_recv(int hfd, const struct qk_uio *u, uint64_t hflags, void *addr,
                        uint32_t *alen, uint32_t *mflags, uint16_t id, bool v6);

/* AF_UNIX sockets served in the guest (unix.c, unix_io.c, unix_anc.c). */
bool qk_unix_is(struct qk_file *f);
/* socketpair(AF_UNIX, SOCK_STREAM): two connected ends, flags L_O_NONBLOCK. */
int qk_unix_pair(uint32_t flags, struct qk_file **a, struct qk_file **b);
/* socketpair(AF_UNIX, SOCK_DGRAM (2) or SOCK_SEQPACKET (5)): message queues
 * of 208 KiB each way, boundaries kept, MSG_TRUNC. */
int qk_unix_pair_msg(int type, uint32_t flags, struct qk_file **a, struct qk_file **b);
/* socket(AF_UNIX, type): SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET (others
 * -ESOCKTNOSUPPORT). */
int qk_unix_socket(int type, uint32_t flags, struct qk_file **out);
int64_t qk_unix_shutdown(struct qk_file *f, uint64_t how);
/* send/sendto/sendmsg: control data ctl (a kernel copy, ctllen bytes:
 * SCM_RIGHTS, SCM_CREDENTIALS; NULL/0: none), destination addr (a kernel
 * copy of a sockaddr_un; NULL: the connected peer). The restart model of
 * pipes. */
int64_t qk_unix_sendmsg(struct qk_file *f, const struct qk_uio *u, uint64_t flags,
                        const uint8_t *ctl, uint64_t ctllen, const uint8_t *addr, uint32_t alen);
/* recv/recvfrom/recvmsg: control data into the user buffer uctl of
 * *ctllen bytes (uctl 0: none; files then closed); *ctllen becomes what
 * was written, *mflags gets MSG_TRUNC/MSG_CTRUNC; the sender's sockaddr_un
 * into from (111 bytes) with *fromlen (0: unnamed). MSG_PEEK, MSG_TRUNC,
 * MSG_WAITALL, MSG_DONTWAIT, MSG_CMSG_CLOEXEC. */
int64_t qk_unix_recvmsg(struct qk_file *f, const struct qk_uio *u, uint64_t flags, uint64_t uctl,
                        uint64_t *ctllen, uint32_t *mflags, uint8_t *from, uint32_t *fromlen);
/* SOL_SOCKET options of unix sockets: SO_SNDBUF/SO_RCVBUF, SO_PASSCRED;
 * get: SO_TYPE, SO_ERROR, SO_SNDBUF, SO_RCVBUF, SO_PASSCRED, SO_PEERCRED,
 * SO_ACCEPTCONN, SO_PROTOCOL, SO_DOMAIN (-QK_ENOPROTOOPT otherwise; val
 * holds 16 bytes). */
int64_t qk_unix_setsockopt(struct qk_file *f, uint64_t level, uint64_t name, const void *val,
                           uint64_t len);
int64_t qk_unix_getsockopt(struct qk_file *f, uint64_t name, void *val, uint32_t *len);
/* bind/listen/connect/accept with sockaddr_un bytes in kernel memory
 * (bind with the family alone: autobind; connect of a datagram socket:
 * its default destination, AF_UNSPEC clears it). Blocking calls park
 * (restart model) and return -QK_ERESTART_WAIT. */
int64_t qk_unix_bind(struct qk_file *f, const uint8_t *addr, uint32_t len);
int64_t qk_unix_listen(struct qk_file *f, int backlog);
int64_t qk_unix_connect(struct qk_file *f, const uint8_t *addr, uint32_t len);
/* 0 with *out (the accepted file, flags L_O_NONBLOCK applied), or -errno. */
int64_t qk_unix_accept(struct qk_file *f, uint32_t flags, struct qk_file **out);
/* Writes this end's (or the peer's) sockaddr_un into buf (111 bytes: a 108-byte path and its NUL);
 * returns its length, 0 for a peer of an unconnected socket (ENOTCONN). */
uint32_t qk_unix_name(struct qk_file *f, bool peer, uint8_t *buf);
/* qk_fput's hook for a reference of a unix socket that was not the last
 * (the collection of descriptor cycles, unix_anc.c). */
void qk_unix_gc_note(struct qk_file *f);

#endif
