/* Shared between the socket files of guestkernel/net/ (not a public
 * interface: qk/net.h is). */
#ifndef QK_NET_INTERNAL_H
#define QK_NET_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <qk/fs.h>

/* AF_UNIX stream pairs served in the guest (unix.c). */
bool qk_unix_is(struct qk_file *f);
/* socketpair(AF_UNIX, SOCK_STREAM): two connected ends, flags L_O_NONBLOCK. */
int qk_unix_pair(uint32_t flags, struct qk_file **a, struct qk_file **b);
/* send/recv with MSG_* flags (MSG_DONTWAIT, MSG_NOSIGNAL; others
 * -EOPNOTSUPP); the restart model of pipes. */
int64_t qk_unix_xfer(struct qk_file *f, const struct qk_uio *u, uint64_t flags, bool send);
int64_t qk_unix_shutdown(struct qk_file *f, uint64_t how);

#endif
