/* Host side of the guest's socket opcodes (QK_OP_SOCKET..QK_OP_SENDFILE,
 * QK_OP_SENDMSG_CTL and QK_OP_RECVMSG_CTL, guestkernel/abi/qk_qcall.h).
 *
 * Contract:
 * - Sockets are AF_INET/AF_INET6 TCP/UDP (and route netlink) host sockets created in the
 *   sandbox's network namespace (the pod's, when it was started in one)
 *   and kept in the per-pod host fd table like files. They are always
 *   O_NONBLOCK on the host: a worker sleeps on a socket only in
 *   QK_OP_NET_POLL (until its timeout or the VM stops, stop_fd) and for at
 *   most QK_NET_WAIT_NS where the guest asked for QK_NET_WAIT.
 * - Every guest (gpa, len) goes through sbx_gpa(); sockaddrs and option
 *   values are copied into host buffers before the call; data moves
 *   straight between the socket and guest memory.
 * - Options are an allowlist; anything else is -ENOPROTOOPT.
 * - Control data: an allowlist of record types each way (ops_net_anc.h),
 *   through host buffers of QK_NET_CTL_MAX bytes.
 * - Route netlink sockets (AF_NETLINK, NETLINK_ROUTE) are read-only: a
 *   sendmsg is gathered into a host buffer and sent only if every message
 *   in it is an RTM_GET* request to the kernel (else -EPERM / -EINVAL).
 *   Interface ioctls are the SIOCGIF* queries only.
 */
#ifndef SBX_QCALL_OPS_NET_H
#define SBX_QCALL_OPS_NET_H

#include <stddef.h>
#include <stdint.h>

#include "qcall_host.h"

/* What the socket ops borrow from the QCall core (its fd table). */
struct sbx_net_ctx {
  struct sbx_qcall *q;
  struct sbx_mem *mem;
  int stop_fd;
  int (*hfd_get)(struct sbx_qcall *q, uint64_t h);
  int64_t (*hfd_install)(struct sbx_qcall *q, int fd); /* consumes fd */
};

/* Writes revents of entry i of a guest struct qk_net_pollfd array (which
 * may sit at any address). */
static inline void sbx_pollfd_set_revents(uint8_t *g, uint64_t i, int16_t revents)
{
  sbx_store16(g + i * sizeof(struct qk_net_pollfd) + offsetof(struct qk_net_pollfd, revents),
              (uint16_t)revents);
}

/* Serves one socket opcode; -ENOSYS for any other op. */
int64_t sbx_qcall_net(const struct sbx_net_ctx *c, uint32_t op, const uint64_t *a);

#endif
