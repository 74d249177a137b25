/* TSoR sockets in the guest (net/tsor.c), for the socket layer's routing
 * hooks in net/socket.c. Not a public interface.
 *
 * A pod started with TSoR (quark-sandbox --tsor) answers QK_OP_TSOR_INFO
 * with its pod IP and the TSoR pod CIDRs; elsewhere every call here is a
 * no-op and all sockets stay host sockets. In a TSoR pod:
 * - connect() of an AF_INET stream socket to an address inside a TSoR CIDR
 *   turns the socket into a TSoR socket (its host socket is closed) and
 *   connects it through tsord; any other destination stays on the host
 *   socket.
 * - listen() of an AF_INET stream socket also listens on the same port in
 *   TSoR ("dual listener"): accept() hands out TSoR connections first, then
 *   host ones, and poll/select/the idle loop watch both.
 * - Waiting follows the restart model (qk/task.h): TSoR sockets park on
 *   their own state, dual listeners on the host socket's; the idle loop
 *   asks the host once for both kinds of readiness (QK_OP_TSOR_POLL).
 */
#ifndef QK_NET_TSOR_H
#define QK_NET_TSOR_H

#include <stdbool.h>
#include <stdint.h>

#include <qk/fs.h>

#include "../abi/qk_qcall.h"

bool qk_tsor_is(struct qk_file *f);
/* True when the sockaddr (kernel bytes) is an AF_INET address of a TSoR pod
 * and this pod has TSoR. */
bool qk_tsor_routes(const uint8_t *addr, uint32_t len);
/* Turns the unconnected host stream socket f into a TSoR socket (closing
 * its host socket through f's release); 0 or -errno (f unchanged). */
int64_t qk_tsor_convert(struct qk_file *f);
/* connect() on a TSoR socket (also the restart of a blocking one). */
int64_t qk_tsor_connect(struct qk_file *f, uint64_t uaddr, uint64_t len);
/* send/recv with MSG_* flags. */
int64_t qk_tsor_xfer(struct qk_file *f, const struct qk_uio *u, uint64_t flags, bool send);
int64_t qk_tsor_shutdown(struct qk_file *f, uint64_t how);
int64_t qk_tsor_setsockopt(struct qk_file *f, uint64_t level, uint64_t name, uint64_t uval,
                           uint64_t len);
int64_t qk_tsor_getsockopt(struct qk_file *f, uint64_t level, uint64_t name, uint64_t uval,
                           uint64_t ulen);
/* getsockname/getpeername: a sockaddr_in into buf; returns its length. */
uint32_t qk_tsor_name(struct qk_file *f, bool peer, uint8_t *buf);

/* Dual listeners, keyed by the host socket's state (qk_sock). */
void qk_tsor_listen_too(struct qk_file *f, const void *host_sock, int backlog);
/* A TSoR connection waiting on host_sock's TSoR listener as a new file
 * (flags: L_O_NONBLOCK), its peer's sockaddr_in in addr (*alen set), or NULL
 * (none: a blocking caller's idle wait then watches the listener too). */
struct qk_file *qk_tsor_accept(const void *host_sock, uint32_t flags, bool nonblock, uint8_t *addr,
                               uint32_t *alen);
/* POLLIN when host_sock's TSoR listener has a connection waiting. */
int16_t qk_tsor_sock_poll(const void *host_sock);
void qk_tsor_sock_release(const void *host_sock);

/* The idle loop: some TSoR socket or listener has waiters. */
bool qk_tsor_waiting(void);
/* Sleeps on the host until a watched TSoR socket or one of the n host
 * sockets is ready or timeout_ns passes; wakes the TSoR waiters and
 * poll/select sleepers; the host entries get their revents. Returns the
 * ready count (host and TSoR) or -errno. */
int64_t qk_tsor_idle_poll(struct qk_net_pollfd *host, unsigned n, uint64_t timeout_ns);

#endif
