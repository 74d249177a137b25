/* Kernel timers: see qk/timer.h. No timer kinds are armed yet: the area
 * that adds alarm/setitimer/timer_create/timerfd fills this file. */
#include <qk/timer.h>

void qk_timer_run(uint64_t now)
{
  (void)now;
}

uint64_t qk_timer_next(void)
{
  return ~0ull;
}
