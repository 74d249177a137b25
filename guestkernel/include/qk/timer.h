/* Kernel timers (task/timer.c): the deadlines behind alarm, setitimer,
 * timer_create and timerfd. The scheduler calls qk_timer_run() when it
 * switches tasks and when it idles, and sleeps no longer than
 * qk_timer_next(); a timer interrupt (where the sandbox gives one) calls it
 * too, so a task that never blocks still gets its SIGALRM. */
#ifndef QK_TIMER_H
#define QK_TIMER_H

#include <stdbool.h>
#include <stdint.h>

/* Fire every timer whose deadline is <= now (monotonic ns). */
void qk_timer_run(uint64_t now);

/* The earliest armed deadline (monotonic ns), ~0 when none is armed. */
uint64_t qk_timer_next(void);

/* One kernel timer, embedded in its owner (a timerfd, a process's alarm, a
 * POSIX timer). Armed timers sit on one unsorted list (a pod has a handful);
 * fire runs from qk_timer_run with the number of expirations since the
 * last call (>= 1, more when the deadline was missed by whole intervals)
 * after the timer was re-armed (interval) or disarmed (one shot). fire may
 * arm or cancel any timer, itself included. */
struct qk_ktimer {
  struct qk_ktimer *next;
  uint64_t expires;  /* monotonic ns */
  uint64_t interval; /* ns, 0: one shot */
  bool armed;
  void (*fire)(struct qk_ktimer *t, uint64_t count);
};

void qk_ktimer_arm(struct qk_ktimer *t, uint64_t expires, uint64_t interval);
void qk_ktimer_cancel(struct qk_ktimer *t);
/* ns left until the next expiry, 0 when disarmed (1 when due). */
uint64_t qk_ktimer_left(const struct qk_ktimer *t, uint64_t now);

/* Clock ids to monotonic deadlines: CLOCK_REALTIME(0), CLOCK_MONOTONIC(1)
 * and CLOCK_BOOTTIME(7) (and their _ALARM forms 8, 9 where the caller allows
 * them). Realtime is the monotonic clock plus a fixed offset here (the guest
 * cannot set the clock), so an absolute realtime deadline converts once. */
bool qk_timer_clock_ok(int clock);
uint64_t qk_timer_abs_to_mono(int clock, uint64_t abs_ns);

#endif
