/* Per-task CPU time (see qk/cputime.h for where it is charged), the
 * CPU-time clocks and the calls that report it: times, getrusage (SELF,
 * CHILDREN, THREAD). wait4's rusage and /proc/<pid>/stat read it through
 * qk_cputime_*; the CPU-time timers (ITIMER_VIRTUAL/PROF, timer_create on
 * CPU clocks) are in task/timer.c.
 *
 * Everything lives in the tasks and processes (no per-vCPU or global
 * "last switch" state), so a vCPU charges only the task it runs. */
#include <qk/arch.h>
#include <qk/cputime.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/task.h>

#define ARGS uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5

void qk_cputime_switch(struct qk_task *prev, struct qk_task *next)
{
  uint64_t now = qk_arch_rdtsc();
  if (prev && !prev->cpu_off && prev->cpu_mark) {
    if (prev->cpu_in_sys)
      prev->cpu_sys += now - prev->cpu_mark;
    else
      prev->cpu_user += now - prev->cpu_mark;
  }
  /* next returns to user mode (after a parked syscall's rerun, if any). */
  next->cpu_mark = now;
  next->cpu_in_sys = 0;
  next->cpu_off = 0;
}

/* The current task's stretch since its last accounting point, charged
 * now (a reader in a syscall sees its own time up to the call). */
static void charge_current(void)
{
  struct qk_task *t = qk_current();
  if (!t || t->cpu_off || !t->cpu_mark)
    return;
  uint64_t now = qk_arch_rdtsc();
  if (t->cpu_in_sys)
    t->cpu_sys += now - t->cpu_mark;
  else
    t->cpu_user += now - t->cpu_mark;
  t->cpu_mark = now;
}

void qk_cputime_thread_exit(struct qk_task *t)
{
  if (t == qk_current())
    charge_current();
  t->cpu_off = 1;
  t->proc->cpu_user_dead += t->cpu_user;
  t->proc->cpu_sys_dead += t->cpu_sys;
  t->cpu_user = t->cpu_sys = 0;
}

void qk_cputime_reap(struct qk_process *parent, struct qk_process *c)
{
  /* A zombie's threads all ended: its time is in the _dead sums. */
  parent->cpu_cuser += c->cpu_user_dead + c->cpu_cuser;
  parent->cpu_csys += c->cpu_sys_dead + c->cpu_csys;
}

static uint64_t to_ns(uint64_t cycles)
{
  uint64_t khz = qk_boot->tsc_khz ? qk_boot->tsc_khz : 1000000;
  return (uint64_t)(((unsigned __int128)cycles * 1000000u) / khz);
}

void qk_cputime_task(struct qk_task *t, uint64_t *u, uint64_t *s)
{
  charge_current();
  *u = to_ns(t->cpu_user);
  *s = to_ns(t->cpu_sys);
}

void qk_cputime_proc(struct qk_process *p, uint64_t *u, uint64_t *s)
{
  charge_current();
  uint64_t cu = p->cpu_user_dead, cs = p->cpu_sys_dead;
  for (struct qk_task *t = p->threads; t; t = t->next_in_proc) {
    cu += t->cpu_user;
    cs += t->cpu_sys;
  }
  *u = to_ns(cu);
  *s = to_ns(cs);
}

void qk_cputime_children(struct qk_process *p, uint64_t *u, uint64_t *s)
{
  *u = to_ns(p->cpu_cuser);
  *s = to_ns(p->cpu_csys);
}

/* ---- CPU-time clocks ---- */

int qk_cpuclock_resolve(int id, struct qk_cpuclock *c)
{
  memset(c, 0, sizeof(*c));
  struct qk_task *self = qk_current();
  if (id == L_CLOCK_PROCESS_CPUTIME_ID || id == L_CLOCK_THREAD_CPUTIME_ID) {
    c->proc = self->proc;
    c->task = id == L_CLOCK_THREAD_CPUTIME_ID ? self : NULL;
    c->which = QK_CPUCLOCK_SCHED;
    return 0;
  }
  if (id >= 0)
    return 1;
  int which = id & 3, pid = ~(id >> 3);
  if (which == 3)
    return -QK_EINVAL;
  c->which = which;
  if (id & 4) { /* a thread: 0 is the caller */
    c->task = pid ? qk_task_find(pid) : self;
    if (!c->task)
      return -QK_EINVAL;
    c->proc = c->task->proc;
    return 0;
  }
  c->proc = pid ? qk_proc_find(pid) : self->proc;
  if (!c->proc || (c->proc->zombie && !c->proc->threads))
    return -QK_EINVAL;
  return 0;
}

uint64_t qk_cpuclock_ns(const struct qk_cpuclock *c)
{
  uint64_t u, s;
  if (c->task)
    qk_cputime_task(c->task, &u, &s);
  else
    qk_cputime_proc(c->proc, &u, &s);
  return c->which == QK_CPUCLOCK_VIRT ? u : u + s;
}

/* ---- times, getrusage ---- */

static uint64_t ticks(uint64_t ns)
{
  return ns / 10000000ull; /* USER_HZ 100 */
}

int64_t sys_times(ARGS)
{
  struct qk_process *p = qk_current()->proc;
  if (a0) {
    uint64_t u, s, cu, cs;
    qk_cputime_proc(p, &u, &s);
    qk_cputime_children(p, &cu, &cs);
    uint64_t t[4] = {ticks(u), ticks(s), ticks(cu), ticks(cs)};
    if (qk_copy_to_user(a0, t, sizeof(t)))
      return -QK_EFAULT;
  }
  return (int64_t)ticks(qk_time_monotonic_ns() - qk_boot->boot_monotonic_ns);
}

/* struct rusage with the two times set (the other counters stay 0). */
int qk_cputime_put_rusage(uint64_t uaddr, uint64_t user_ns, uint64_t sys_ns)
{
  uint64_t ru[18];
  memset(ru, 0, sizeof(ru));
  ru[0] = user_ns / 1000000000ull;
  ru[1] = user_ns % 1000000000ull / 1000;
  ru[2] = sys_ns / 1000000000ull;
  ru[3] = sys_ns % 1000000000ull / 1000;
  return qk_copy_to_user(uaddr, ru, sizeof(ru)) ? -QK_EFAULT : 0;
}

int64_t sys_getrusage(ARGS)
{
  struct qk_task *t = qk_current();
  uint64_t u, s;
  switch ((int)a0) {
  case 0: /* RUSAGE_SELF */
    qk_cputime_proc(t->proc, &u, &s);
    break;
  case -1: /* RUSAGE_CHILDREN */
    qk_cputime_children(t->proc, &u, &s);
    break;
  case 1: /* RUSAGE_THREAD */
    qk_cputime_task(t, &u, &s);
    break;
  default:
    return -QK_EINVAL;
  }
  return qk_cputime_put_rusage(a1, u, s);
}
