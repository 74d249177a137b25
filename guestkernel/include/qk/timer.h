/* Kernel timers (task/timer.c): the deadlines behind alarm, setitimer,
 * timer_create and timerfd. The scheduler calls qk_timer_run() when it
 * switches tasks and when it idles, and sleeps no longer than
 * qk_timer_next(); a timer interrupt (where the sandbox gives one) calls it
 * too, so a task that never blocks still gets its SIGALRM. */
#ifndef QK_TIMER_H
#define QK_TIMER_H

#include <stdint.h>

/* Fire every timer whose deadline is <= now (monotonic ns). */
void qk_timer_run(uint64_t now);

/* The earliest armed deadline (monotonic ns), ~0 when none is armed. */
uint64_t qk_timer_next(void);

#endif
