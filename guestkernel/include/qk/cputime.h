/* Per-task CPU time (task/cputime.c). Charged in TSC cycles at cheap
 * points, no VM exit: syscall entry and exit (qk_syscall) and the
 * scheduler's switch (qk_cputime_switch). Time since the last point counts
 * as kernel time between a syscall's entry and exit, else as user time:
 * faults and interrupts mark no boundary, so their (short) kernel time
 * counts as user time. A task that blocked or died in a syscall is not
 * charged again until it is switched in. */
#ifndef QK_CPUTIME_H
#define QK_CPUTIME_H

#include <stdint.h>

#include "arch.h"
#include "kernel.h"
#include "task.h"

static inline void qk_cputime_enter(struct qk_task *t)
{
  uint64_t now = qk_arch_rdtsc();
  if (qk_unlikely(!t->cpu_mark)) /* the boot process: never switched in */
    t->cpu_mark = now;
  t->cpu_user += now - t->cpu_mark;
  t->cpu_mark = now;
  t->cpu_in_sys = 1;
}

static inline void qk_cputime_exit(struct qk_task *t)
{
  uint64_t now = qk_arch_rdtsc();
  t->cpu_sys += now - t->cpu_mark;
  t->cpu_mark = now;
  t->cpu_in_sys = 0;
  t->cpu_off = t->state != QK_TASK_RUNNING;
}

/* The scheduler: prev stops running (NULL: none), next starts (may be prev). */
void qk_cputime_switch(struct qk_task *prev, struct qk_task *next);
/* A thread ends: its time moves to its process. */
void qk_cputime_thread_exit(struct qk_task *t);
/* parent waited for child: the child's time and its children's go to
 * the parent's cutime/cstime. */
void qk_cputime_reap(struct qk_process *parent, struct qk_process *child);
/* Up-to-date times in ns (the running task's current stretch included). */
void qk_cputime_task(struct qk_task *t, uint64_t *user_ns, uint64_t *sys_ns);
void qk_cputime_proc(struct qk_process *p, uint64_t *user_ns, uint64_t *sys_ns);
void qk_cputime_children(struct qk_process *p, uint64_t *user_ns, uint64_t *sys_ns);

/* CPU-time clock ids: CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID
 * and the encodings of clock_getcpuclockid/pthread_getcpuclockid
 * ((~pid << 3) | perthread << 2 | PROF 0 / VIRT 1 / SCHED 2). */
#define QK_CPUCLOCK_PROF 0
#define QK_CPUCLOCK_VIRT 1
#define QK_CPUCLOCK_SCHED 2
struct qk_cpuclock {
  struct qk_process *proc; /* the process, or the thread's */
  struct qk_task *task;    /* a thread clock: the thread, else NULL */
  int which;               /* QK_CPUCLOCK_* */
};
/* Resolves a CPU-time clock id in the caller's pid namespace: 0, -EINVAL
 * (malformed, no such process or thread), 1 when id is no CPU clock. */
int qk_cpuclock_resolve(int id, struct qk_cpuclock *c);
/* The clock's value in ns. */
uint64_t qk_cpuclock_ns(const struct qk_cpuclock *c);
/* Writes a struct rusage with these times (other counters 0). */
int qk_cputime_put_rusage(uint64_t uaddr, uint64_t user_ns, uint64_t sys_ns);

#endif
