/* The socket layer (guestkernel/net/).
 *
 * AF_INET/AF_INET6 TCP and UDP sockets are host sockets that the sandbox
 * opens in the pod's network namespace (QK_OP_SOCKET..., abi/qk_qcall.h);
 * a socket is a qk_file whose hfd is the host handle. The host handle is
 * always non-blocking: a guest call that must wait parks its task on the
 * socket (restart model, task.h) with the events it needs recorded, and
 * the scheduler's idle loop asks the host for readiness of every socket
 * with waiters in one QK_OP_NET_POLL that sleeps until an event or the
 * next guest deadline (qk_net_idle_wait). Nothing else waits on the host.
 *
 * AF_UNIX stream sockets are served in the guest (unix.c); route netlink
 * (AF_NETLINK, NETLINK_ROUTE) is a host socket whose requests the host
 * passes only when they read (RTM_GET*); raw and packet sockets -EPERM.
 */
#ifndef QK_NET_H
#define QK_NET_H

#include <stdbool.h>
#include <stdint.h>

/* Called by the scheduler with nothing runnable: if some task waits on a
 * socket (or poll/select registered one), sleeps on the host until one of
 * those sockets is ready or timeout_ns passes (~0ull: no timeout), wakes
 * the waiters and poll/select sleepers, and returns true. False (nothing
 * slept) when no socket has waiters: the caller sleeps as before. */
bool qk_net_idle_wait(uint64_t timeout_ns);

/* For the scheduler while tasks are runnable (a slice ran out): looks at
 * the waited-for sockets without sleeping, at most once per millisecond,
 * and wakes the ready ones' waiters, so that busy tasks do not starve
 * tasks parked on sockets. Cheap when no socket has waiters. */
void qk_net_poll_now(void);

/* Readiness hooks for epoll (net/socket.c): the host handle of an
 * AF_INET/AF_INET6 socket file (-1 for any other file), the events the guest
 * adds to the host's for it (a TSoR dual listener's channels), and a request
 * that the idle loop watch ev on it (a registration fires once, as for
 * parked callers). */
struct qk_file;
int qk_sock_host_hfd(struct qk_file *f);
int qk_sock_guest_events(struct qk_file *f);
void qk_sock_watch(struct qk_file *f, int16_t ev);

#endif
