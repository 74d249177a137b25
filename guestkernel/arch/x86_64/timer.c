/* qk_arch_timer_arm (include/qk/arch.h). The sandbox does not create an
 * in-kernel irqchip yet, so there is no LAPIC to program: say so, and the
 * scheduler runs without preemption. */
#include <qk/arch.h>

#include "../../abi/qk_errno.h"

int qk_arch_timer_arm(uint64_t ns)
{
  (void)ns;
  return -QK_ENOSYS;
}
