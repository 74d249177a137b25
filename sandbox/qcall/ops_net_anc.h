/* Control data (ancillary data) of guest messages on host sockets:
 * QK_OP_SENDMSG_CTL / QK_OP_RECVMSG_CTL (guestkernel/abi/qk_qcall.h).
 *
 * Contract:
 * - Both functions work on host copies or checked guest ranges only; they
 *   never follow a pointer found in the records.
 * - Send: the guest's records are checked as Linux checks them (each
 *   cmsg_len at least a header and within the buffer); the allowlisted
 *   types are copied for the host sendmsg. Of the rest, what Linux's UDP
 *   and TCP would refuse is -EINVAL (an unknown type of SOL_SOCKET, of
 *   SOL_UDP, of the socket's own IP level) and what they ignore is left
 *   out (SCM_RIGHTS/SCM_CREDENTIALS, other levels, anything but
 *   SOL_SOCKET on TCP). The host kernel checks each payload itself.
 * - Receive: of the host's records only the allowlisted types reach the
 *   guest (the rest are dropped without using guest space; descriptors in
 *   an SCM_RIGHTS record, which no INET socket yields, are closed), cut for
 *   a short guest buffer the way Linux's put_cmsg cuts them.
 */
#ifndef SBX_QCALL_OPS_NET_ANC_H
#define SBX_QCALL_OPS_NET_ANC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Checks n bytes of guest control data (a host copy) for a socket of
 * domain (AF_INET/AF_INET6; stream: SOCK_STREAM) and writes the records to
 * send into out (at least n bytes). Returns the bytes written or -EINVAL. */
int sbx_anc_send_filter(const uint8_t *in, size_t n, uint8_t *out, int domain, bool stream);

/* Copies the guest-visible records of n bytes a host recvmsg returned
 * into dst (room bytes; may be guest memory, written with memcpy only).
 * Returns the bytes written; *ctrunc becomes true when a record was cut or
 * left out for want of room. */
size_t sbx_anc_recv_filter(const uint8_t *in, size_t n, uint8_t *dst, size_t room, bool *ctrunc);

/* Whether a socket option that enables or sets control data may be set
 * or read (the rest of the allowlist is in ops_net.c). */
bool sbx_anc_opt_allowed(int level, int name);

#endif
