/* Clocks from the TSC: ns = boot_ns + (tsc - boot_tsc) * mult >> 32, with
 * mult fixed at boot from the host's calibration. A few instructions, no
 * VM exit, no QCall. The guest TSC equals the host TSC (FINDINGS.md) and is
 * invariant on the machines we run on. */
#include <qk/arch.h>
#include <qk/kernel.h>
#include <qk/qcall.h>
#include <vdso/vdso.h>

static uint64_t boot_tsc, boot_real_ns, boot_mono_ns, mult;

void qk_time_init(const struct qk_boot_info *bi)
{
  uint64_t khz = bi->tsc_khz ? bi->tsc_khz : 1000000; /* 1 GHz if unknown */
  mult = (uint64_t)((1000000ull << 32) / khz);
  boot_tsc = bi->boot_tsc;
  boot_real_ns = bi->boot_realtime_ns;
  boot_mono_ns = bi->boot_monotonic_ns;
  /* User mode reads the same clock through the vDSO (vdso/vvar.h). */
  qk_vdso_set_clock(boot_tsc, mult, boot_mono_ns, boot_real_ns);
}

static inline uint64_t since_boot_ns(void)
{
  uint64_t now = qk_arch_rdtsc();
  uint64_t d = now > boot_tsc ? now - boot_tsc : 0;
  return (uint64_t)(((unsigned __int128)d * mult) >> 32);
}

uint64_t qk_time_monotonic_ns(void) { return boot_mono_ns + since_boot_ns(); }
uint64_t qk_time_realtime_ns(void) { return boot_real_ns + since_boot_ns(); }

void qk_sleep_ns(uint64_t ns)
{
  /* Hour-long requests keep each host timer in range; ~0 never ends, unless
   * the host ends the sleep early (a pod command) or the VM stops. */
  while (ns) {
    uint64_t chunk = ns > 3600ull * 1000000000ull ? 3600ull * 1000000000ull : ns;
    if (qk_qcall(QK_OP_SLEEP, chunk, 0, 0, 0, 0, 0) != 0)
      return;
    if (ns != ~0ull)
      ns -= chunk;
  }
}
