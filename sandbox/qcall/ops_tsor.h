/* Host side of the guest's TSoR opcodes (QK_OP_TSOR_*, guestkernel/abi/qk_qcall.h).
 *
 * Contract:
 * - One TSoR client per sandbox process (one pod, one pod IP), opened by
 *   sbx_tsor_setup before the jail and before any guest runs; without it
 *   every TSoR opcode answers -ENOSYS and the guest keeps all sockets on
 *   host sockets (TSoR is off by default).
 * - The client is shared by every VM of the process (pod mode runs one per
 *   container) under one lock; a socket belongs to the QCall instance that
 *   created or accepted it, others get -EBADF.
 * - No opcode waits except QK_OP_TSOR_POLL (until readiness, its timeout or
 *   the VM's stop); sends and receives copy between guest pages (checked
 *   with sbx_gpa) and the socket's rings in the shared arena.
 */
#ifndef SBX_QCALL_OPS_TSOR_H
#define SBX_QCALL_OPS_TSOR_H

#include <stdint.h>

#include <quark/common.h>

#include "ops_net.h"

/* tsord's unix socket, this pod's IPv4 address and the TSoR pod CIDRs
 * (comma-separated "a.b.c.d/n"; destinations inside them go to TSoR).
 * cidrs NULL: the pod IP's /16. */
int sbx_tsor_setup(const char *socket_path, const char *pod_ip, const char *cidrs, q_error **err);
/* Serves one QK_OP_TSOR_* opcode; -ENOSYS when TSoR is off. */
int64_t sbx_qcall_tsor(const struct sbx_net_ctx *c, uint32_t op, const uint64_t *a);
/* Closes what the QCall instance q still holds (its VM is gone). */
void sbx_tsor_forget(struct sbx_qcall *q);

#endif
