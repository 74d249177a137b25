/* Guest side of QCall: one ring per vCPU, one waited request in flight per
 * ring (before it, up to QCALL_POSTED_MAX posted ones that nobody waits for).
 *
 * A request is posted with a release store of req_tail; the host worker is
 * kicked through QK_PORT_KICK (a VM exit) only when it said it sleeps. The
 * vCPU then polls cpl_tail for a short while and, if the host is slow,
 * halts with guest_sleeping = 1 (the host's wake-up is QK_VECTOR_QCALL,
 * or the end of a HLT exit without an irqchip) or, where the host asks for
 * it (QK_HOST_QCALL_PORT_WAIT), writes QK_PORT_WAIT with guest_sleeping = 2
 * and the VMM returns once the completion is there: no interrupt.
 * qk_interrupt handlers must not call qk_qcall: the wait below
 * enables interrupts, and a nested request on the same ring would take the
 * outer request's completion.
 */
#include <stdint.h>

#include "../include/qk/arch.h"
#include "../include/qk/qcall.h"
#include "../arch/x86_64/arch_internal.h"

/* Polls before halting. Each poll is a handful of instructions: cheap on
 * hardware KVM, ~3 us on a host that emulates ring 0, where a halt plus
 * wake-up costs ~20 us; 16 polls covers a spinning host worker's answer. */
#define QCALL_POLLS 16

/* With the CPL3 kernel worker the polls run natively: poll for a while
 * (by TSC) before asking ring 0 to halt. */
#define QCALL_WORKER_POLL_CYCLES 100000ull


static struct qk_qcall_ring *qcall_rings[QK_MAX_VCPUS];
static bool port_wait; /* QK_HOST_QCALL_PORT_WAIT: wait in the VMM, no interrupt */
uint8_t qk_qcall_mmio_wait; /* QK_HOST_WORKER_MMIO_WAIT (arch_internal.h) */

void qk_qcall_init(struct qk_boot_info *bi, unsigned cpu)
{
  if (cpu >= QK_MAX_VCPUS || cpu >= bi->qcall_count || bi->qcall_entries != QK_QCALL_ENTRIES)
    return;
  qcall_rings[cpu] = qk_pa_to_va(bi->qcall_gpa + (uint64_t)cpu * sizeof(struct qk_qcall_ring));
  port_wait = (bi->host_flags & QK_HOST_QCALL_PORT_WAIT) != 0;
  qk_qcall_mmio_wait = port_wait && (bi->host_flags & QK_HOST_WORKER_MMIO_WAIT);
}

static inline void kick(unsigned ring) { qk_arch_port_out32(QK_PORT_KICK, ring); }

/* Requests posted without a wait (qk_qcall_post) whose completions the next
 * waited request skips, per ring. The host serves a ring in order, so they
 * complete before it; past QCALL_POSTED_MAX a post waits instead (the
 * completion ring must never fill). */
#define QCALL_POSTED_MAX 16u
static uint32_t qcall_posted[QK_MAX_VCPUS];

static int64_t qcall(uint32_t op, const uint64_t a[6], bool wait);

/* Has the host written completion number `slot` (free-running)? */
static inline bool completed(const struct qk_qcall_ring *ring, uint32_t slot)
{
  return (int32_t)(__atomic_load_n(&ring->cpl_tail, __ATOMIC_ACQUIRE) - slot) > 0;
}

int64_t qk_qcall(uint32_t op, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                 uint64_t a5)
{
  const uint64_t a[6] = { a0, a1, a2, a3, a4, a5 };
  return qcall(op, a, true);
}

void qk_qcall_post(uint32_t op, uint64_t a0, uint64_t a1, uint64_t a2)
{
  const uint64_t a[6] = { a0, a1, a2, 0, 0, 0 };
  qcall(op, a, false);
}

void qk_qcall_flush(void)
{
  unsigned cpu = qk_arch_cpu_id();
  if (cpu < QK_MAX_VCPUS && qcall_posted[cpu])
    qk_qcall(QK_OP_NOP, 0, 0, 0, 0, 0, 0);
}

static int64_t qcall(uint32_t op, const uint64_t a[6], bool wait)
{
  unsigned cpu = qk_arch_cpu_id();
  struct qk_qcall_ring *ring = cpu < QK_MAX_VCPUS ? qcall_rings[cpu] : 0;
  if (!ring)
    return -38; /* -ENOSYS: no ring for this vCPU */
  if (!wait && qcall_posted[cpu] >= QCALL_POSTED_MAX)
    wait = true;

  uint32_t tail = ring->req_tail;
  while (tail - __atomic_load_n(&ring->req_head, __ATOMIC_ACQUIRE) >= QK_QCALL_ENTRIES)
    ; /* full: only possible if the host stalls; it drains in order */
  struct qk_qcall_req *req = &ring->req[tail & (QK_QCALL_ENTRIES - 1)];
  req->tag = tail;
  req->op = op;
  req->flags = 0;
  for (int i = 0; i < 6; i++)
    req->a[i] = a[i];
  __atomic_store_n(&ring->req_tail, tail + 1, __ATOMIC_RELEASE);
  if (!wait) {
    /* Served with the next waited request (or by an awake worker): no
     * kick, no exit now. */
    qcall_posted[cpu]++;
    return 0;
  }
  /* The tail store must be visible before host_sleeping is read (the host
   * sets host_sleeping, fences, then re-reads req_tail). */
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  uint32_t hs = __atomic_load_n(&ring->host_sleeping, __ATOMIC_RELAXED);
  /* A sleeping host whose vCPU thread serves in QK_PORT_WAIT: wait there at
   * once (one exit; a kick would wake a worker thread, then the polls). */
  bool at_once = port_wait && hs == QK_HOST_SLEEPING_INLINE;
  if (hs && !at_once)
    kick(cpu);

  /* Ours is the completion after those of the posted requests. */
  uint32_t head = ring->cpl_head + qcall_posted[cpu];
  qcall_posted[cpu] = 0;
  for (;; at_once = false) {
    for (int i = 0; i < QCALL_POLLS && !at_once; i++)
      if (completed(ring, head))
        goto done;
    if (qk_worker_mode && !at_once) {
      uint64_t t0 = qk_arch_rdtsc();
      while (qk_arch_rdtsc() - t0 < QCALL_WORKER_POLL_CYCLES)
        if (completed(ring, head))
          goto done;
    }
    __atomic_store_n(&ring->guest_sleeping, port_wait ? 2 : 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!completed(ring, head)) {
      if (port_wait)
        qk_arch_port_out32(QK_PORT_WAIT, cpu); /* returns when the VMM saw a completion */
      else
        qk_arch_wait_for_interrupt();
    }
    __atomic_store_n(&ring->guest_sleeping, 0, __ATOMIC_RELAXED);
  }
done:;
  int64_t result = ring->cpl[head & (QK_QCALL_ENTRIES - 1)].result;
  __atomic_store_n(&ring->cpl_head, head + 1, __ATOMIC_RELEASE);
  return result;
}
