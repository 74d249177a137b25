/* The vDSO's data page ("vvar"): filled by the guest kernel (kernel/time.c
 * through qk_vdso_set_clock), mapped read-only into every process one page
 * below the vDSO image. Clocks are the kernel's own formula:
 *   ns = base_ns + ((tsc - tsc_base) * mult) >> 32   (0 if tsc < tsc_base)
 * so a vDSO read and a clock_gettime syscall never disagree. seq is even
 * while the fields are stable (odd during an update); readers retry. */
#ifndef QK_VDSO_VVAR_H
#define QK_VDSO_VVAR_H

#include <stdint.h>

#define QK_VVAR_MAGIC 0x52415656u /* "VVAR": 0 until the kernel filled it */

struct qk_vvar {
  volatile uint32_t seq;
  uint32_t magic;
  uint64_t tsc_base;
  uint64_t mult; /* ns per TSC tick, 32.32 fixed point */
  uint64_t mono_base_ns;
  uint64_t real_base_ns;
};

#endif
