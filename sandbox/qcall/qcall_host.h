/* Host side of QCall: one worker thread per ring serves the guest's
 * requests (see guestkernel/abi/qk_qcall.h for the ring protocol).
 *
 * Contract:
 * - Every guest (gpa, len) goes through sbx_gpa(); a bad address fails that
 *   request with -EFAULT. Request fields are read once into a local copy
 *   before validation (the guest may change the ring at any time).
 * - Files are reached only through the per-pod host fd table: QK_HFD_STDIN,
 *   STDOUT, STDERR (dups of the caller's fds) and QK_HFD_ROOT (the rootfs,
 *   O_PATH). Paths resolve with openat2(RESOLVE_IN_ROOT |
 *   RESOLVE_NO_MAGICLINKS) beneath a directory hfd.
 * - Workers poll their ring for SBX_QCALL_SPIN_NS, then set host_sleeping
 *   and sleep on their kick eventfd (bound to QK_PORT_KICK with the ring
 *   index as datamatch by the caller). A completion published while the
 *   guest sleeps signals that ring's wake eventfd; the vCPU thread waits
 *   on it in sbx_qcall_wait (its HLT handler). A request still unserved
 *   when the vCPU thread gets there is served by that thread itself (one
 *   consumer at a time, a claim flag per ring; QUARK_QCALL_INLINE=0 turns
 *   it off), and a worker woken for a request that is gone sleeps again
 *   without spinning.
 * - QK_OP_EXIT calls cfg->on_exit(ctx, status) and completes with 0.
 */
#ifndef SBX_QCALL_HOST_H
#define SBX_QCALL_HOST_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <quark/common.h>

#include "../../guestkernel/abi/qk_ctl.h"
#include "../../guestkernel/abi/qk_qcall.h"
#include "../mem/guest_mem.h"

#define SBX_QCALL_SPIN_NS 50000
#define SBX_HFD_MAX 4096
#define SBX_QCALL_LOG_PER_SEC 100 /* QK_OP_LOG lines beyond this are counted, not logged */

struct sbx_qcall;

struct sbx_qcall_config {
  struct sbx_mem *mem;
  uint64_t rings_gpa; /* QK ring array: count * sizeof(struct qk_qcall_ring) */
  unsigned ring_count;
  int root_fd;        /* borrowed: duplicated into QK_HFD_ROOT */
  int stdio[3];       /* borrowed: duplicated into QK_HFD_STDIN..STDERR; -1 = /dev/null */
  const char *pod_id; /* for log lines, may be NULL */
  void *ctx;
  void (*on_exit)(void *ctx, int status);
  /* Optional log sink: writes to QK_HFD_STDOUT/STDERR go here instead of
   * to stdio[1]/[2] (called on the worker thread; returns bytes taken or
   * -errno). Pod mode formats them into CRI log records. */
  void *sink_ctx;
  ssize_t (*sink)(void *ctx, int stream, const struct iovec *iov, int cnt);
  /* Optional: QK_OP_CTL_EVENT (pod control channel, qk_ctl.h) hands each
   * event, copied out of guest memory, to this (on the worker thread);
   * without it the op answers -ENOSYS. */
  void *ctl_ctx;
  int (*on_ctl_event)(void *ctx, const struct qk_ctl_event *ev);
};

int sbx_qcall_create(struct sbx_qcall **out, const struct sbx_qcall_config *cfg, q_error **err);
/* Starts the workers. */
int sbx_qcall_start(struct sbx_qcall *q, q_error **err);
/* Stops and joins the workers (idempotent). */
void sbx_qcall_stop(struct sbx_qcall *q);
void sbx_qcall_destroy(struct sbx_qcall *q);
/* Eventfd that the guest's kick on ring i must signal. */
int sbx_qcall_kick_fd(const struct sbx_qcall *q, unsigned ring);
/* Eventfd the worker of ring i writes to wake its halted vCPU (with an
 * irqchip the sandbox binds it as that vCPU's QK_VECTOR_QCALL irqfd). */
int sbx_qcall_wake_fd(const struct sbx_qcall *q, unsigned ring);
/* HLT handler of vCPU ring: returns when the ring has a completion for the
 * guest, when stop_fd is readable, or after a safety timeout. */
void sbx_qcall_wait(struct sbx_qcall *q, unsigned ring, int stop_fd);
/* Before sbx_qcall_start: requests end their host waits (-EINTR) when
 * vm_stop_fd (the VM's stop eventfd) becomes readable, as they do at
 * sbx_qcall_stop. Required for inline serving in sbx_qcall_wait: a vCPU
 * thread that serves a long wait must see the VM stop. */
int sbx_qcall_bind_stop(struct sbx_qcall *q, int vm_stop_fd);
/* Ends the guest's QK_OP_SLEEP in progress early (or the next one, if none
 * is): the pod's control channel posted a command while the guest sleeps
 * idle (qk_ctl.h guest_sleeping). Any thread. */
void sbx_qcall_wake_sleep(struct sbx_qcall *q);
/* Serves one request synchronously (the workers' core; also for tests). */
int64_t sbx_qcall_handle(struct sbx_qcall *q, unsigned ring, const struct qk_qcall_req *req);
/* Host fd table from the host side (pod control channel): installs fd
 * (ownership passes) and returns its handle or -errno; closes a handle. */
int64_t sbx_qcall_hfd_install(struct sbx_qcall *q, int fd);
int64_t sbx_qcall_hfd_close(struct sbx_qcall *q, uint64_t h);
/* Requests served so far (all rings). */
uint64_t sbx_qcall_served(const struct sbx_qcall *q);
/* Of those, served by a vCPU thread in sbx_qcall_wait (inline). */
uint64_t sbx_qcall_served_inline(const struct sbx_qcall *q);
/* Of those, with opcode op (op SBX_QCALL_OPS - 1 also counts higher ones). */
#define SBX_QCALL_OPS 64
uint64_t sbx_qcall_served_op(const struct sbx_qcall *q, unsigned op);

#endif
