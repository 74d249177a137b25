/* Guest side of QCall (see ../../abi/qk_qcall.h for the ring protocol). */
#ifndef QK_QCALL_GUEST_H
#define QK_QCALL_GUEST_H

#include <stdint.h>
#include "../../abi/qk_qcall.h"

/* Initialises this vCPU's ring from the boot info. */
void qk_qcall_init(struct qk_boot_info *bi, unsigned cpu);

/* Posts one request on the current vCPU's ring and waits for its completion
 * (spin, then halt until QK_VECTOR_QCALL). Returns the host's result: >= 0 or
 * a negated errno. Buffers named in the request must be guest-physical and
 * stay valid until it returns. */
int64_t qk_qcall(uint32_t op, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                 uint64_t a5);

/* Posts one request and returns at once; its result is dropped. For a
 * request whose answer nobody needs (the close of a host handle): the host
 * serves it, in ring order, with the next waited request or sooner, so a
 * later request on this ring sees its effect. No buffers (a0-a2 only). */
void qk_qcall_post(uint32_t op, uint64_t a0, uint64_t a1, uint64_t a2);

/* Has the host served every request posted on this vCPU's ring? If not,
 * waits for them (one QK_OP_NOP). For a vCPU about to halt without a QCall:
 * a posted socket close must not wait for that vCPU's next request (the
 * peer would see the FIN only then). */
void qk_qcall_flush(void);

/* Kernel VA <-> guest physical through the direct map. */
static inline uint64_t qk_va_to_pa(const void *va)
{
  uint64_t v = (uint64_t)va;
  if (v >= QK_KERNEL_VBASE)
    return v - QK_KERNEL_VBASE + QK_KERNEL_PBASE;
  return v - QK_DIRECT_MAP;
}
static inline void *qk_pa_to_va(uint64_t pa) { return (void *)(pa + QK_DIRECT_MAP); }

#endif
