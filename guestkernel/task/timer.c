/* Kernel timers (see qk/timer.h) and the per-process timers built on them:
 * alarm, setitimer/getitimer (ITIMER_REAL, and ITIMER_VIRTUAL/ITIMER_PROF
 * on CPU time) and the POSIX timer_* family (SIGEV_SIGNAL,
 * SIGEV_THREAD_ID, SIGEV_NONE; wall clocks and the caller's CPU-time
 * clocks). timerfd is in fs/timerfd.c.
 *
 * CPU-time timers are not kernel timers: CPU time advances only while a
 * task runs, so they are checked against the clocks of task/cputime.c
 * when the scheduler runs timers (qk_timer_run), and qk_timer_next gives
 * the running task's earliest one as a wall deadline (its clock cannot
 * advance faster than the wall clock on one vCPU): a task that spins
 * without syscalls gets its tick there.
 *
 * Process timers live in a table here keyed by the owning process (pointer,
 * pid and creation time), not in struct qk_process: a child of fork starts
 * with none (as on Linux), exec keeps them, and a timer whose process is gone
 * is dropped when it fires or when the table is next swept. */
#include <qk/cputime.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/task.h>
#include <qk/timer.h>

#define ARGS uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5

static struct qk_ktimer *armed_list;
static uint64_t next_cache = ~0ull;

static void recompute(void)
{
  uint64_t m = ~0ull;
  for (struct qk_ktimer *t = armed_list; t; t = t->next)
    if (t->expires < m)
      m = t->expires;
  next_cache = m;
}

void qk_ktimer_cancel(struct qk_ktimer *t)
{
  if (!t->armed)
    return;
  for (struct qk_ktimer **pp = &armed_list; *pp; pp = &(*pp)->next) {
    if (*pp == t) {
      *pp = t->next;
      break;
    }
  }
  t->armed = false;
  t->next = NULL;
  recompute();
}

void qk_ktimer_arm(struct qk_ktimer *t, uint64_t expires, uint64_t interval)
{
  qk_ktimer_cancel(t);
  t->expires = expires ? expires : 1;
  t->interval = interval;
  t->armed = true;
  t->next = armed_list;
  armed_list = t;
  if (t->expires < next_cache)
    next_cache = t->expires;
}

uint64_t qk_ktimer_left(const struct qk_ktimer *t, uint64_t now)
{
  if (!t->armed)
    return 0;
  return t->expires > now ? t->expires - now : 1;
}

static uint64_t cpu_next(struct qk_task *cur);
static void cpu_check(struct qk_process *p);

static inline bool cpu_timers_run(struct qk_task *c)
{
  return c && c->proc && qk_unlikely(c->proc->cpu_timers) && c->state == QK_TASK_RUNNING;
}

uint64_t qk_timer_next(void)
{
  struct qk_task *c = qk_current();
  if (qk_likely(!cpu_timers_run(c)))
    return next_cache;
  uint64_t m = cpu_next(c);
  return m < next_cache ? m : next_cache;
}

void qk_timer_run(uint64_t now)
{
  struct qk_task *c = qk_current();
  if (cpu_timers_run(c))
    cpu_check(c->proc);
  /* One expired timer at a time, from the head again after each: fire may
   * change the list. Each timer is re-armed past now, so this ends. */
  for (int guard = 0; guard < 4096 && next_cache <= now; guard++) {
    struct qk_ktimer *t = armed_list;
    while (t && t->expires > now)
      t = t->next;
    if (!t) {
      recompute();
      break;
    }
    uint64_t count = 1;
    if (t->interval) {
      count += (now - t->expires) / t->interval;
      t->expires += count * t->interval;
      recompute();
    } else {
      qk_ktimer_cancel(t);
    }
    t->fire(t, count);
  }
}

bool qk_timer_clock_ok(int clock)
{
  return clock == 0 || clock == 1 || clock == 7;
}

uint64_t qk_timer_abs_to_mono(int clock, uint64_t abs_ns)
{
  if (clock != 0 && clock != 8)
    return abs_ns;
  /* Realtime and monotonic advance together here: one offset. */
  int64_t off = (int64_t)(qk_time_realtime_ns() - qk_time_monotonic_ns());
  int64_t m = (int64_t)abs_ns - off;
  return m <= 0 ? 1 : (uint64_t)m;
}

/* ---- process timers ---- */

#define SIGALRM 14
#define SIGVTALRM 26
#define SIGPROF 27
#define SI_TIMER (-2)
#define SIGEV_SIGNAL 0
#define SIGEV_NONE 1
#define SIGEV_THREAD_ID 4
#define KIND_REAL (-1) /* ITIMER_REAL / alarm; POSIX timers have ids >= 0 */
#define KIND_VIRT (-2) /* ITIMER_VIRTUAL */
#define KIND_PROF (-3) /* ITIMER_PROF */
#define PTIMERS_PER_PROC 1024

struct ptimer {
  struct qk_ktimer kt;
  struct ptimer *next;
  struct qk_process *proc;
  int pid;
  uint64_t start_ns;
  int id; /* KIND_REAL or the timer_create id */
  int clock;
  int notify, signo, tid;
  uint64_t value; /* sigev_value */
  /* timer_getoverrun answers for the last signal delivered, as Linux
   * (which updates it at delivery): overrun is that of the signal delivered
   * before the one queued last, queued_ov that of the one queued last
   * (delivered once it is no longer pending). It used to change when the
   * next queued signal overran, so a 5 ms timer's second expiry after a
   * sigtimedwait already changed it (t_events, ring 0 at load 9). */
  int overrun, queued_ov;
  /* On a CPU-time clock: which (QK_CPUCLOCK_*), of one thread (tid) or
   * the process (0); expiry and interval in that clock's ns. */
  bool cpu, cpu_armed;
  int cpu_which, cpu_tid;
  uint64_t cpu_expires, cpu_interval;
};

static struct ptimer *ptimers;

static bool owner_alive(const struct ptimer *pt)
{
  for (struct qk_process *p = qk_all_procs; p; p = p->next_all)
    if (p == pt->proc)
      return p->pid == pt->pid && p->start_ns == pt->start_ns && !p->zombie && !p->exiting;
  return false;
}

static void cpu_disarm(struct ptimer *pt)
{
  if (!pt->cpu_armed)
    return;
  pt->cpu_armed = false;
  if (owner_alive(pt) && pt->proc->cpu_timers)
    pt->proc->cpu_timers--;
}

static void ptimer_free(struct ptimer *pt)
{
  cpu_disarm(pt);
  qk_ktimer_cancel(&pt->kt);
  for (struct ptimer **pp = &ptimers; *pp; pp = &(*pp)->next) {
    if (*pp == pt) {
      *pp = pt->next;
      break;
    }
  }
  qk_kfree(pt);
}

/* Drops the timers of processes that are gone. */
static void sweep(void)
{
  for (struct ptimer *pt = ptimers, *n; pt; pt = n) {
    n = pt->next;
    if (!owner_alive(pt))
      ptimer_free(pt);
  }
}

static bool mine(const struct ptimer *pt)
{
  struct qk_process *p = qk_current()->proc;
  return pt->proc == p && pt->pid == p->pid && pt->start_ns == p->start_ns;
}

static struct ptimer *find(int id)
{
  for (struct ptimer *pt = ptimers; pt; pt = pt->next)
    if (pt->id == id && mine(pt))
      return pt;
  return NULL;
}

static struct qk_task *thread_of(struct qk_process *p, int tid)
{
  for (struct qk_task *t = p->threads; t; t = t->next_in_proc)
    if (t->tid == tid && t->state != QK_TASK_DEAD)
      return t;
  return NULL;
}

/* The siginfo of pt's signal while it is still queued (not delivered), else
 * NULL. */
static struct qk_siginfo_lite *queued_signal(const struct ptimer *pt)
{
  if (pt->id < 0 || pt->notify == SIGEV_NONE)
    return NULL;
  int sig = pt->signo;
  struct qk_task *t = pt->notify == SIGEV_THREAD_ID ? thread_of(pt->proc, pt->tid) : NULL;
  if (pt->notify == SIGEV_THREAD_ID && !t)
    return NULL;
  uint64_t pend = t ? t->sigpending : pt->proc->sigpending;
  struct qk_siginfo_lite *held = t ? &t->siginfo[sig - 1] : &pt->proc->siginfo[sig - 1];
  if (!(pend & (1ull << (sig - 1))) || held->code != SI_TIMER || held->pid != pt->id)
    return NULL;
  return held;
}

static void ptimer_fire(struct qk_ktimer *kt, uint64_t count)
{
  struct ptimer *pt = (struct ptimer *)kt;
  if (!owner_alive(pt)) {
    ptimer_free(pt);
    return;
  }
  if (pt->notify == SIGEV_NONE)
    return;
  struct qk_process *p = pt->proc;
  int sig = pt->signo;
  struct qk_task *t = pt->notify == SIGEV_THREAD_ID ? thread_of(p, pt->tid) : NULL;
  if (pt->notify == SIGEV_THREAD_ID && !t)
    return; /* the thread is gone: nothing to deliver to */
  int ov = count - 1 > 0x7fffffff ? 0x7fffffff : (int)(count - 1);
  struct qk_siginfo_lite *held = queued_signal(pt);
  if (held) {
    /* Still queued: one more overrun instead of a second signal. */
    uint64_t n = (uint64_t)held->uid + count;
    held->uid = n > 0x7fffffff ? 0x7fffffff : (uint32_t)n;
    pt->queued_ov = (int)held->uid;
    return;
  }
  pt->overrun = pt->queued_ov; /* the one queued before was delivered */
  pt->queued_ov = pt->id >= 0 ? ov : 0;
  struct qk_siginfo_lite si = {.code = QK_SI_KERNEL};
  if (pt->id >= 0) {
    si.code = SI_TIMER;
    si.pid = pt->id;
    si.uid = (uint32_t)ov;
    si.addr = pt->value;
  }
  if (t)
    qk_signal_task(t, sig, &si, false);
  else
    qk_signal_proc(p, sig, &si);
}

static struct ptimer *ptimer_new(int id)
{
  struct qk_process *p = qk_current()->proc;
  struct ptimer *pt = qk_kzalloc(sizeof(*pt));
  if (!pt)
    return NULL;
  pt->kt.fire = ptimer_fire;
  pt->proc = p;
  pt->pid = p->pid;
  pt->start_ns = p->start_ns;
  pt->id = id;
  pt->clock = 1;
  pt->notify = SIGEV_SIGNAL;
  pt->signo = SIGALRM;
  pt->next = ptimers;
  ptimers = pt;
  return pt;
}

/* ---- CPU-time timers ---- */

/* The timer's clock now, ~0 when its thread is gone (it never fires). */
static uint64_t cpu_value(const struct ptimer *pt)
{
  struct qk_cpuclock c = {.proc = pt->proc, .task = NULL, .which = pt->cpu_which};
  if (pt->cpu_tid) {
    c.task = thread_of(pt->proc, pt->cpu_tid);
    if (!c.task)
      return ~0ull;
  }
  return qk_cpuclock_ns(&c);
}

static void cpu_arm(struct ptimer *pt, uint64_t expires, uint64_t interval)
{
  if (!pt->cpu_armed)
    pt->proc->cpu_timers++;
  pt->cpu_armed = true;
  pt->cpu_expires = expires;
  pt->cpu_interval = interval;
}

static uint64_t cpu_left(const struct ptimer *pt)
{
  if (!pt->cpu_armed)
    return 0;
  uint64_t v = cpu_value(pt);
  return v == ~0ull ? 0 : pt->cpu_expires > v ? pt->cpu_expires - v : 1;
}

/* Fires p's CPU-time timers whose clock reached their expiry. */
static void cpu_check(struct qk_process *p)
{
  for (struct ptimer *pt = ptimers; pt; pt = pt->next) {
    if (pt->proc != p || !pt->cpu_armed || pt->pid != p->pid || pt->start_ns != p->start_ns)
      continue;
    uint64_t v = cpu_value(pt);
    if (v == ~0ull || v < pt->cpu_expires)
      continue;
    uint64_t count = 1;
    if (pt->cpu_interval) {
      count += (v - pt->cpu_expires) / pt->cpu_interval;
      pt->cpu_expires += count * pt->cpu_interval;
    } else {
      cpu_disarm(pt);
    }
    ptimer_fire(&pt->kt, count);
  }
}

/* The wall time at which cur's earliest CPU-time timer can expire. */
static uint64_t cpu_next(struct qk_task *cur)
{
  uint64_t m = ~0ull, now = qk_time_monotonic_ns();
  for (struct ptimer *pt = ptimers; pt; pt = pt->next) {
    if (pt->proc != cur->proc || !pt->cpu_armed || (pt->cpu_tid && pt->cpu_tid != cur->tid))
      continue;
    uint64_t left = cpu_left(pt);
    if (left && now + left < m)
      m = now + left;
  }
  return m;
}

/* ---- alarm, setitimer, getitimer ---- */

struct l_itimerval {
  struct l_timeval interval, value;
};
struct l_itimerspec {
  struct l_timespec interval, value;
};

static uint64_t tv_ns(const struct l_timeval *tv)
{
  if ((uint64_t)tv->tv_sec > 100ull * 365 * 86400)
    return 100ull * 365 * 86400 * 1000000000ull;
  return (uint64_t)tv->tv_sec * 1000000000ull + (uint64_t)tv->tv_usec * 1000ull;
}

static void ns_tv(uint64_t ns, struct l_timeval *tv)
{
  tv->tv_sec = (int64_t)(ns / 1000000000ull);
  tv->tv_usec = (int64_t)((ns % 1000000000ull + 999) / 1000);
  if (tv->tv_usec == 1000000) {
    tv->tv_sec++;
    tv->tv_usec = 0;
  }
}

static void ns_ts(uint64_t ns, struct l_timespec *ts)
{
  ts->tv_sec = (int64_t)(ns / 1000000000ull);
  ts->tv_nsec = (int64_t)(ns % 1000000000ull);
}

static int ts_ns(const struct l_timespec *ts, uint64_t *ns)
{
  if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)
    return -QK_EINVAL;
  if ((uint64_t)ts->tv_sec > 100ull * 365 * 86400)
    *ns = 100ull * 365 * 86400 * 1000000000ull;
  else
    *ns = (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
  return 0;
}

static struct ptimer *real_timer(bool create)
{
  struct ptimer *pt = find(KIND_REAL);
  if (!pt && create) {
    sweep();
    pt = ptimer_new(KIND_REAL);
  }
  return pt;
}

/* ITIMER_REAL (0), ITIMER_VIRTUAL (1: user time, SIGVTALRM), ITIMER_PROF
 * (2: user and kernel time, SIGPROF). */
static struct ptimer *itimer(int which, bool create)
{
  if (which == 0)
    return real_timer(create);
  int kind = which == 1 ? KIND_VIRT : KIND_PROF;
  struct ptimer *pt = find(kind);
  if (!pt && create) {
    sweep();
    pt = ptimer_new(kind);
    if (pt) {
      pt->cpu = true;
      pt->cpu_which = which == 1 ? QK_CPUCLOCK_VIRT : QK_CPUCLOCK_PROF;
      pt->signo = which == 1 ? SIGVTALRM : SIGPROF;
    }
  }
  return pt;
}

static void itimer_get(struct ptimer *pt, struct l_itimerval *v)
{
  memset(v, 0, sizeof(*v));
  if (pt && pt->cpu && pt->cpu_armed) {
    ns_tv(cpu_left(pt), &v->value);
    ns_tv(pt->cpu_interval, &v->interval);
  } else if (pt && pt->kt.armed) {
    ns_tv(qk_ktimer_left(&pt->kt, qk_time_monotonic_ns()), &v->value);
    ns_tv(pt->kt.interval, &v->interval);
  }
}

int64_t sys_getitimer(ARGS)
{
  if (a0 > 2)
    return -QK_EINVAL;
  struct l_itimerval v;
  itimer_get(itimer((int)a0, false), &v);
  return qk_copy_to_user(a1, &v, sizeof(v)) ? -QK_EFAULT : 0;
}

int64_t sys_setitimer(ARGS)
{
  if (a0 > 2)
    return -QK_EINVAL;
  struct l_itimerval nv;
  memset(&nv, 0, sizeof(nv));
  if (a1 && qk_copy_from_user(&nv, a1, sizeof(nv)))
    return -QK_EFAULT;
  if (nv.value.tv_sec < 0 || nv.value.tv_usec < 0 || nv.value.tv_usec >= 1000000 ||
      nv.interval.tv_sec < 0 || nv.interval.tv_usec < 0 || nv.interval.tv_usec >= 1000000)
    return -QK_EINVAL;
  struct ptimer *pt = itimer((int)a0, a1 != 0);
  if (a1 && !pt)
    return -QK_ENOMEM;
  struct l_itimerval old;
  itimer_get(pt, &old);
  if (a2 && qk_copy_to_user(a2, &old, sizeof(old)))
    return -QK_EFAULT;
  if (!a1)
    return 0;
  uint64_t val = tv_ns(&nv.value), iv = tv_ns(&nv.interval);
  if (pt->cpu) {
    if (!val)
      cpu_disarm(pt);
    else
      cpu_arm(pt, cpu_value(pt) + val, iv);
  } else if (!val) {
    qk_ktimer_cancel(&pt->kt);
  } else {
    qk_ktimer_arm(&pt->kt, qk_time_monotonic_ns() + val, iv);
  }
  return 0;
}

int64_t sys_alarm(ARGS)
{
  unsigned secs = (unsigned)a0;
  struct ptimer *pt = real_timer(secs != 0);
  if (secs && !pt)
    return -QK_ENOMEM;
  uint64_t now = qk_time_monotonic_ns();
  uint64_t left = pt ? qk_ktimer_left(&pt->kt, now) : 0;
  /* Whole seconds, rounded to nearest, and never 0 for an armed alarm. */
  int64_t ret = (int64_t)((left + 500000000ull) / 1000000000ull);
  if (left && !ret)
    ret = 1;
  if (!secs) {
    if (pt)
      qk_ktimer_cancel(&pt->kt);
  } else {
    qk_ktimer_arm(&pt->kt, now + (uint64_t)secs * 1000000000ull, 0);
  }
  return ret;
}

/* ---- timer_create family ---- */

struct l_sigevent {
  uint64_t value;
  int32_t signo, notify;
  int32_t tid;
  int32_t pad[11];
};
_Static_assert(sizeof(struct l_sigevent) == 64, "sigevent");

int64_t sys_timer_create(ARGS)
{
  int clock = (int)a0;
  struct qk_cpuclock cc;
  int cpu = qk_cpuclock_resolve(clock, &cc);
  if (cpu < 0)
    return cpu;
  /* CPU-time clocks of the caller's own process and threads only. */
  if (cpu == 0 && cc.proc != qk_current()->proc)
    return -QK_EINVAL;
  if (cpu != 0 && (clock == 8 || clock == 9))
    return -QK_EPERM; /* the _ALARM clocks need CAP_WAKE_ALARM */
  if (cpu != 0 && !qk_timer_clock_ok(clock))
    return -QK_EINVAL;
  struct l_sigevent ev = {.signo = SIGALRM, .notify = SIGEV_SIGNAL};
  if (a1 && qk_copy_from_user(&ev, a1, sizeof(ev)))
    return -QK_EFAULT;
  if (ev.notify != SIGEV_SIGNAL && ev.notify != SIGEV_NONE && ev.notify != SIGEV_THREAD_ID)
    return -QK_EINVAL;
  if (ev.notify != SIGEV_NONE && (ev.signo < 1 || ev.signo > L_NSIG))
    return -QK_EINVAL;
  struct qk_process *p = qk_current()->proc;
  if (ev.notify == SIGEV_THREAD_ID && !thread_of(p, ev.tid))
    return -QK_EINVAL;
  sweep();
  int id = 0, count = 0;
  for (bool clash = true; clash;) {
    clash = false;
    for (struct ptimer *pt = ptimers; pt; pt = pt->next) {
      if (!mine(pt) || pt->id == KIND_REAL)
        continue;
      if (pt->id == id) {
        id++;
        clash = true;
        count++;
        break;
      }
    }
    if (count > PTIMERS_PER_PROC)
      return -QK_EAGAIN;
  }
  if (qk_copy_to_user(a2, &id, sizeof(id)))
    return -QK_EFAULT;
  struct ptimer *pt = ptimer_new(id);
  if (!pt)
    return -QK_EAGAIN;
  pt->clock = clock;
  if (cpu == 0) {
    pt->cpu = true;
    pt->cpu_which = cc.which;
    pt->cpu_tid = cc.task ? cc.task->tid : 0;
  }
  pt->notify = ev.notify;
  pt->signo = ev.signo;
  pt->tid = ev.tid;
  pt->value = a1 ? ev.value : (uint64_t)id;
  return 0;
}

static void ptimer_get(struct ptimer *pt, struct l_itimerspec *v)
{
  memset(v, 0, sizeof(*v));
  if (pt->cpu && pt->cpu_armed) {
    ns_ts(cpu_left(pt), &v->value);
    ns_ts(pt->cpu_interval, &v->interval);
  } else if (pt->kt.armed) {
    ns_ts(qk_ktimer_left(&pt->kt, qk_time_monotonic_ns()), &v->value);
    ns_ts(pt->kt.interval, &v->interval);
  }
}

int64_t sys_timer_settime(ARGS)
{
  struct ptimer *pt = find((int)a0);
  if (!pt || (int)a0 < 0)
    return -QK_EINVAL;
  if (a1 & ~1ull)
    return -QK_EINVAL;
  struct l_itimerspec nv;
  if (qk_copy_from_user(&nv, a2, sizeof(nv)))
    return -QK_EFAULT;
  uint64_t val, iv;
  if (ts_ns(&nv.value, &val) || ts_ns(&nv.interval, &iv))
    return -QK_EINVAL;
  if (a3) {
    struct l_itimerspec old;
    ptimer_get(pt, &old);
    if (qk_copy_to_user(a3, &old, sizeof(old)))
      return -QK_EFAULT;
  }
  pt->overrun = pt->queued_ov = 0;
  if (pt->cpu) {
    if (!val) {
      cpu_disarm(pt);
      return 0;
    }
    uint64_t v = cpu_value(pt);
    if (v == ~0ull)
      return -QK_EINVAL; /* its thread is gone */
    cpu_arm(pt, (a1 & 1) ? val : v + val, iv);
    cpu_check(pt->proc); /* an absolute time already past fires at once */
    return 0;
  }
  if (!val) {
    qk_ktimer_cancel(&pt->kt);
    return 0;
  }
  uint64_t now = qk_time_monotonic_ns();
  uint64_t at = (a1 & 1) ? qk_timer_abs_to_mono(pt->clock, val) : now + val;
  qk_ktimer_arm(&pt->kt, at, iv);
  if (at <= now)
    qk_timer_run(now); /* an absolute time already past fires at once */
  return 0;
}

int64_t sys_timer_gettime(ARGS)
{
  struct ptimer *pt = find((int)a0);
  if (!pt || (int)a0 < 0)
    return -QK_EINVAL;
  struct l_itimerspec v;
  ptimer_get(pt, &v);
  return qk_copy_to_user(a1, &v, sizeof(v)) ? -QK_EFAULT : 0;
}

int64_t sys_timer_getoverrun(ARGS)
{
  struct ptimer *pt = find((int)a0);
  if (!pt || (int)a0 < 0)
    return -QK_EINVAL;
  return queued_signal(pt) ? pt->overrun : pt->queued_ov;
}

int64_t sys_timer_delete(ARGS)
{
  struct ptimer *pt = find((int)a0);
  if (!pt || (int)a0 < 0)
    return -QK_EINVAL;
  ptimer_free(pt);
  return 0;
}
