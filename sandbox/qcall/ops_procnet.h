/* Host side of QK_OP_PROCNET_READ (guestkernel/abi/qk_qcall.h): the guest's
 * /proc/net files that show the network (dev, tcp, route, ...), read from
 * the host's view of the sandbox's own network namespace.
 *
 * Contract:
 * - The guest names a file by a small index (enum qk_procnet), never by a
 *   path: the host opens only "/proc/thread-self/net/<name>" of its fixed
 *   table, with openat(AT_FDCWD) (the jail's seccomp filter admits exactly
 *   that form) on the procfs the jail mounts for its pid namespace (or the
 *   node's /proc without a jail). The serving thread is in the pod's netns
 *   (the sandbox enters it before it creates any thread), so the contents
 *   are the pod's view, and a hostNetwork pod's the node's, as with runc.
 * - At most QK_PROCNET_MAX bytes of a file are read; the guest buffer goes
 *   through sbx_gpa() and receives min(its length, the file's length).
 */
#ifndef SBX_QCALL_OPS_PROCNET_H
#define SBX_QCALL_OPS_PROCNET_H

#include <stdint.h>

#include "qcall_host.h"

/* Serves QK_OP_PROCNET_READ with arguments a against guest memory mem. */
int64_t sbx_qcall_procnet(struct sbx_mem *mem, const uint64_t *a);

#endif
