/* Internals shared by the event files (fs/epoll.c, eventfd.c, signalfd.c,
 * timerfd.c) and the signal code (task/signal.c). */
#ifndef QK_EVENTS_H
#define QK_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "task.h"

/* Takes the lowest pending signal of mask for t (thread-directed first,
 * then process-directed) without running a handler: the signal number with
 * *si filled, or 0 when none is pending. (task/signal.c) */
int qk_signal_dequeue(struct qk_task *t, uint64_t mask, struct qk_siginfo_lite *si);

/* Is some signal of mask pending for t (blocked or not)? */
bool qk_signal_pending_in(struct qk_task *t, uint64_t mask);

#endif
