/* The scheduler: one list of tasks, round robin over the runnable ones
 * (see task.h for the restart model of blocking syscalls). With several
 * vCPUs (qk_smp_on, task/smp.c) every vCPU picks from the same list under
 * the big kernel lock: a task is on at most one vCPU (qk_percpu.running),
 * an idle vCPU saves its last task's FPU state and halts, and only vCPU 0,
 * once every other vCPU idles, waits on the host (sockets, pod channel).
 * Affinity masks (cpus_allowed) are honoured by pick().
 *
 * Preemption (where the sandbox gives an in-kernel LAPIC, QK_HOST_LAPIC):
 * the x2APIC timer is one-shot, armed only to the next need: the end of
 * the running task's slice (QK_SLICE_NS) while another task is runnable,
 * the earliest kernel timer (qk_timer_next) and the earliest deadline of a
 * blocked task. With one task alone and nothing due there is no tick. The
 * interrupt reaches qk_sched_tick from user mode (in the kernel worker,
 * like a syscall); one that ends a halt inside the kernel only sets
 * need_resched. Without a LAPIC scheduling stays cooperative. */
#include <qk/arch.h>
#include <qk/cputime.h>
#include <qk/ctl.h>
#include <qk/kernel.h>
#include <qk/net.h>
#include <qk/qcall.h>
#include <qk/smp.h>
#include <qk/task.h>
#include <qk/timer.h>

#define QK_SLICE_SYSCALLS 64
#define QK_SLICE_NS 10000000ull /* time slice while another task is runnable */
/* With a pod control channel the ring is read at every switch and every
 * tick: a busy container still gets one then, so commands are not starved. */
#define QK_CTL_TICK_NS 10000000ull

struct qk_task *qk_all_tasks;
struct qk_process *qk_all_procs;
int qk_poll_wq;

/* Per-vCPU state (slice, need_resched, timer_armed ...) is in qk_percpu. */
static bool timer_off;               /* qk_arch_timer_arm said ENOSYS: no preemption */
static bool deadline_seen = true;    /* a blocked task may have a deadline */
/* Address spaces whose last user died: freed once no vCPU runs on them. */
/* Address spaces whose last user went away, destroyed once no vCPU runs
 * on them (a list: killing a container ends many at once; a fixed array of
 * 16 leaked every one past it). */
static struct qk_mm *dead_mms;

static inline struct qk_percpu *pcpu(void)
{
  return qk_arch_cpu_private();
}

/* A task became runnable: this vCPU looks at its timer again (another
 * task wants a slice) and, with SMP, an idle vCPU is woken at the lock's
 * release. */
static inline void note_runnable(void)
{
  pcpu()->rearm = true;
  if (qk_smp_on)
    qk_smp_wake_pending = true;
}

/* SMP: t is the running task of another vCPU, or may not run on this one. */
static bool elsewhere(const struct qk_task *t)
{
  unsigned me = pcpu()->id;
  if (t->cpus_allowed && !(t->cpus_allowed & (1ull << me)))
    return true;
  for (unsigned i = 0; i < qk_nr_cpus; i++)
    if (i != me && qk_percpus[i].running == t)
      return true;
  return false;
}

/* Runnable by this vCPU now. */
static inline bool runnable_here(const struct qk_task *t)
{
  return t->state == QK_TASK_RUNNING && (!qk_smp_on || !elsewhere(t));
}

/* Some vCPU's current or running task: not freed yet. */
static bool on_some_cpu(const struct qk_task *t)
{
  for (unsigned i = 0; i < qk_nr_cpus; i++)
    if (qk_percpus[i].running == t || qk_percpus[i].current == t)
      return true;
  return false;
}

void qk_sched_add(struct qk_task *t)
{
  note_runnable();
  t->state = QK_TASK_RUNNING;
  t->deadline = ~0ull;
  t->next_all = qk_all_tasks;
  qk_all_tasks = t;
}

struct qk_task *qk_task_find(int tid)
{
  struct qk_pidns *ns = qk_current()->proc->ns;
  for (struct qk_task *t = qk_all_tasks; t; t = t->next_all)
    if (t->tid == tid && t->state != QK_TASK_DEAD && t->proc->ns == ns)
      return t;
  return NULL;
}

struct qk_process *qk_proc_find_ns(struct qk_pidns *ns, int pid)
{
  for (struct qk_process *p = qk_all_procs; p; p = p->next_all)
    if (p->pid == pid && p->ns == ns)
      return p;
  return NULL;
}

struct qk_process *qk_proc_find(int pid)
{
  return qk_proc_find_ns(qk_current()->proc->ns, pid);
}

/* Called by proc.c when the last user of an address space went away. */
void qk_sched_defer_mm(struct qk_mm *mm)
{
  mm->dead_next = dead_mms;
  dead_mms = mm;
}

int64_t qk_block(const void *wchan, uint64_t deadline)
{
  struct qk_task *t = qk_current();
  /* A stop signal does not interrupt the wait (job control, signal.c). */
  if (qk_signal_pending(t) && !qk_signal_stop_in_wait(t))
    return -QK_ERESTARTSYS;
  /* A safety net for callers that rerun with their first deadline
   * (qk_wait_deadline) and did not check qk_wait_expired. A fresh "look
   * again in N ms" deadline (stdin, stdio, tty reads) may also have passed
   * by now when the vCPU lost the host CPU since it was computed: that only
   * means look again at once, not -ETIMEDOUT (a read of an idle stdin
   * failed so in ring 0 at load 8). */
  if (t->restart && deadline != ~0ull && deadline == t->deadline &&
      qk_time_monotonic_ns() >= deadline)
    return -QK_ETIMEDOUT;
  t->state = QK_TASK_BLOCKED;
  t->wchan = wchan;
  t->deadline = deadline;
  if (deadline != ~0ull)
    deadline_seen = true;
  t->restart = true;
  t->woken = false;
  return -QK_ERESTART_WAIT;
}

bool qk_restarting(void)
{
  return qk_current()->restart;
}

uint64_t qk_wait_deadline(uint64_t rel_ns)
{
  struct qk_task *t = qk_current();
  if (t->restart)
    return t->deadline;
  if (rel_ns == ~0ull)
    return ~0ull;
  uint64_t now = qk_time_monotonic_ns();
  return rel_ns > ~0ull - now - 1 ? ~0ull : now + rel_ns;
}

bool qk_wait_expired(void)
{
  struct qk_task *t = qk_current();
  return t->restart && t->deadline != ~0ull && qk_time_monotonic_ns() >= t->deadline;
}

bool qk_wait_woken(void)
{
  struct qk_task *t = qk_current();
  return t->restart && t->woken;
}

void qk_wake_task(struct qk_task *t)
{
  if (t->state == QK_TASK_BLOCKED) {
    t->state = QK_TASK_RUNNING;
    t->wchan = NULL;
    note_runnable();
  }
}

int qk_wake_n(const void *wchan, int n)
{
  int woke = 0;
  for (struct qk_task *t = qk_all_tasks; t && woke < n; t = t->next_all) {
    if (t->state == QK_TASK_BLOCKED && t->wchan == wchan) {
      t->woken = true;
      qk_wake_task(t);
      woke++;
    }
  }
  return woke;
}

int qk_wake(const void *wchan)
{
  return qk_wake_n(wchan, 1 << 30);
}

void qk_sched_yield(void)
{
  pcpu()->need_resched = true;
}

uint64_t qk_sched_getaffinity(const struct qk_task *t)
{
  uint64_t online = qk_nr_cpus >= 64 ? ~0ull : (1ull << qk_nr_cpus) - 1;
  return t->cpus_allowed ? t->cpus_allowed & online : online;
}

int qk_sched_setaffinity(struct qk_task *t, uint64_t mask)
{
  uint64_t online = qk_nr_cpus >= 64 ? ~0ull : (1ull << qk_nr_cpus) - 1;
  mask &= online;
  if (!mask)
    return -QK_EINVAL;
  t->cpus_allowed = mask == online ? 0 : mask;
  if (!qk_smp_on)
    return 0;
  /* Off the vCPU it runs on: leave it at the next return, and wake the
   * vCPUs it may use. */
  for (unsigned i = 0; i < qk_nr_cpus; i++) {
    if (qk_percpus[i].running != t || (mask & (1ull << i)))
      continue;
    if (&qk_percpus[i] == pcpu())
      pcpu()->need_resched = true;
    else
      qk_smp_kick(i);
  }
  for (unsigned i = 0; i < qk_nr_cpus; i++)
    if ((mask & (1ull << i)) && &qk_percpus[i] != pcpu())
      qk_smp_kick(i);
  return 0;
}

static void free_task(struct qk_task *t)
{
  struct qk_task **pp = &qk_all_tasks;
  while (*pp && *pp != t)
    pp = &(*pp)->next_all;
  if (*pp)
    *pp = t->next_all;
  qk_sec_task_free(t);
  qk_kfree(t);
}

/* The task's XSAVE image, 64-byte aligned inside xstate_buf. */
static inline uint8_t *xstate_of(struct qk_task *t)
{
  return (uint8_t *)(((uintptr_t)t->xstate_buf + 63) & ~(uintptr_t)63);
}

/* Makes next the running task of this vCPU: address space, TLS, FPU
 * (the full XSAVE state: AVX registers survive preemption). */
static void switch_to(struct qk_task *prev, struct qk_task *next)
{
  /* CPU time (task/cputime.c, state per task): first, also for prev == next. */
  qk_cputime_switch(prev, next);
  if (prev == next)
    return;
  if (prev && prev->state != QK_TASK_DEAD)
    prev->xstate_valid = (uint8_t)qk_arch_xstate_save(xstate_of(prev));
  struct qk_percpu *pc = pcpu();
  pc->current = next;
  pc->running = next;
  pc->mm = next->proc->mm;
  pc->slice_start = qk_time_monotonic_ns();
  if (!prev || prev->state == QK_TASK_DEAD || prev->proc->mm != next->proc->mm)
    qk_arch_switch_cr3(next->proc->mm->cr3);
  qk_uaccess_forget();
  qk_arch_set_fs_base(next->fs_base);
  if (next->xstate_valid) {
    qk_arch_xstate_restore(xstate_of(next), next->xstate_valid);
  } else if (next->fpu_valid) {
    /* New task or execve: its fxsave image, AVX in the init state. */
    uint8_t *x = xstate_of(next);
    memcpy(x, next->fpu, sizeof(next->fpu));
    qk_arch_xstate_restore(x, QK_XSTATE_FX);
  }
}

static inline bool no_slices(void)
{
  return (qk_boot->host_flags & (QK_HOST_RING0_EMULATED | QK_HOST_KERNEL_WORKER)) ==
         QK_HOST_RING0_EMULATED;
}

/* Arms the LAPIC timer for the next thing this vCPU must do while cur
 * runs (see the top of the file). A timer already armed earlier is left:
 * it fires, and the tick arms again. */
static void sched_arm(struct qk_task *cur)
{
  struct qk_percpu *pc = pcpu();
  pc->rearm = false;
  if (timer_off)
    return;
  uint64_t now = qk_time_monotonic_ns();
  uint64_t want = qk_timer_next();
  bool others = false;
  /* Without slices only deadlines matter, and the scan (in emulated ring
   * 0 there, ~5 instructions per task) is skipped while no blocked task
   * has one. */
  if (!no_slices() || deadline_seen) {
    bool any_deadline = false;
    for (struct qk_task *t = qk_all_tasks; t; t = t->next_all) {
      if (t->state == QK_TASK_RUNNING && t != cur) {
        if (!others)
          others = runnable_here(t);
      } else if (t->state == QK_TASK_BLOCKED && t->deadline != ~0ull) {
        any_deadline = true;
        if (t->deadline < want)
          want = t->deadline;
      }
    }
    deadline_seen = any_deadline;
  }
  /* Slices need a cheap tick: not where the scheduler itself would run in
   * emulated ring 0 (a PVM-style host without the kernel worker, which only
   * stands in for hardware KVM there): cooperative slices as before, the
   * timer still serves deadlines. */
  if (others && no_slices())
    others = false;
  if (others || qk_boot->ctl_gpa) {
    if (pc->slice_start + QK_SLICE_NS <= now)
      pc->slice_start = now; /* a fresh slice for the task that keeps running */
    uint64_t end = pc->slice_start + (others ? QK_SLICE_NS : QK_CTL_TICK_NS);
    if (end < want)
      want = end;
  }
  if (want == ~0ull || (pc->timer_armed > now && pc->timer_armed <= want))
    return;
  uint64_t delta = want > now ? want - now : 0;
  if (delta < 20000)
    delta = 20000; /* no storm of interrupts for deadlines just missed */
  if (qk_arch_timer_arm(delta) < 0) {
    timer_off = true;
    return;
  }
  pc->timer_armed = now + delta;
}

/* The timer interrupt. r: it interrupted user mode (qk_interrupt). */
void qk_sched_tick(struct qk_regs *r)
{
  struct qk_percpu *pc = pcpu();
  pc->timer_armed = ~0ull; /* one-shot: it fired */
  if (!r) {
    pc->need_resched = true; /* a halt in the kernel: the next return re-arms */
    return;
  }
  uint64_t now = qk_time_monotonic_ns();
  bool preempt = pc->slice_start + QK_SLICE_NS <= now + QK_SLICE_NS / 50;
  for (struct qk_task *t = qk_all_tasks; t; t = t->next_all) {
    if (t->state == QK_TASK_BLOCKED && t->deadline <= now) {
      qk_wake_task(t);
      preempt = true; /* a sleeper's deadline passed: let it run now */
    }
  }
  /* Only a kernel timer, or a tick for the pod channel: the task keeps
   * the vCPU and its slice; qk_sched_return fires the timers and re-arms. */
  pc->tick_keep = !preempt;
  pc->need_resched = true;
  qk_current()->uregs = r;
  qk_sched_return(r, false);
}

static void reap_dead(struct qk_task *keep)
{
  for (struct qk_task *t = qk_all_tasks, *n; t; t = n) {
    n = t->next_all;
    if (t->state == QK_TASK_DEAD && t != keep && (!qk_smp_on || !on_some_cpu(t)))
      free_task(t);
  }
  struct qk_mm *curmm = keep ? keep->proc->mm : NULL;
  for (struct qk_mm **pp = &dead_mms; *pp;) {
    struct qk_mm *mm = *pp;
    bool live = mm == curmm;
    for (unsigned c = 0; qk_smp_on && c < qk_nr_cpus && !live; c++)
      live = qk_percpus[c].mm == mm;
    if (live) {
      pp = &mm->dead_next;
    } else {
      *pp = mm->dead_next;
      qk_mm_destroy(mm);
    }
  }
}

/* Nothing runnable: wake expired sleepers, else sleep on the host until
 * the earliest deadline. */
static void idle(void)
{
  uint64_t now = qk_time_monotonic_ns(), min = qk_timer_next();
  bool any = false, woke = false;
  if (min <= now) {
    qk_timer_run(now);
    return;
  }
  for (struct qk_task *t = qk_all_tasks; t; t = t->next_all) {
    if (t->state != QK_TASK_BLOCKED)
      continue;
    any = true;
    if (t->deadline == ~0ull)
      continue;
    if (t->deadline <= now) {
      qk_wake_task(t);
      woke = true;
    } else if (t->deadline < min) {
      min = t->deadline;
    }
  }
  if (woke)
    return;
  if (!any && !qk_boot->ctl_gpa)
    qk_kpanic("no task left to run");
  /* Tasks parked on sockets: the host watches those until the earliest
   * deadline (net/socket.c). */
  uint64_t wait = min == ~0ull ? ~0ull : min - now;
  /* With a pod control channel, commands may arrive at any time. A host
   * wait on sockets does not end for them: it looks in 2 ms slices. A
   * plain sleep does (the host ends it when it posts a command while
   * guest_sleeping is set), so an idle pod makes no QCall until its next
   * deadline or command (it made one every 2 ms). */
  bool net = qk_net_idle_wait(qk_boot->ctl_gpa && wait > 2000000 ? 2000000 : wait);
  /* The ring is read on every way
   * out: the caller loops on idle() without polling it, so a command that
   * came after the last poll (idle_prepare sees it) or while tasks wait on
   * sockets (net) was never served, and the vCPU spun until some task's
   * deadline passed. */
  if (qk_boot->ctl_gpa) {
    if (!net && qk_ctl_idle_prepare()) {
      /* With SMP an IPI (a task woken for this vCPU) does not end a host
       * sleep either: several vCPUs keep looking every 2 ms. */
      qk_sleep_ns(qk_smp_on && wait > 2000000 ? 2000000 : wait);
      qk_ctl_idle_done();
    }
    qk_ctl_poll();
    return;
  }
  if (net)
    return;
  qk_qcall_flush(); /* posted closes: served before a halt without a QCall */
  /* Every task waits with no deadline: a deadlock of the program, which
   * sleeps as it would on Linux. With a LAPIC the vCPU halts until its
   * timer (armed for the earliest deadline) or any interrupt; else the
   * host sleeps for it. */
  if (!timer_off) {
    struct qk_percpu *pc = pcpu();
    if (min == ~0ull || (pc->timer_armed > now && pc->timer_armed <= min)) {
      qk_arch_wait_for_interrupt();
      return;
    }
    uint64_t delta = min - now;
    if (qk_arch_timer_arm(delta) == 0) {
      pc->timer_armed = now + delta;
      qk_arch_wait_for_interrupt();
      return;
    }
    timer_off = true;
  }
  qk_sleep_ns(min == ~0ull ? ~0ull : min - now);
}

static struct qk_task *pick(struct qk_task *cur)
{
  struct qk_task *start = cur && cur->state != QK_TASK_DEAD ? cur->next_all : NULL;
  for (struct qk_task *t = start; t; t = t->next_all)
    if (runnable_here(t))
      return t;
  for (struct qk_task *t = qk_all_tasks; t; t = t->next_all)
    if (runnable_here(t))
      return t;
  return NULL;
}

/* SMP: nothing runnable here. The vCPU saves its last task's FPU state
 * (another vCPU may pick that task up), drops its address space, and
 * either waits on the host with the lock held (vCPU 0, when every other
 * vCPU idles: idle() as without SMP, the others halt until it is done) or
 * halts with the lock released until an IPI or its timer: the earliest
 * deadline, at most QK_SMP_IDLE_NS away (sockets and the pod channel get
 * a look then). */
#define QK_SMP_IDLE_NS 10000000ull
#define QK_SMP_IDLE_CTL_NS 2000000ull
static void smp_idle(struct qk_task *prev)
{
  struct qk_percpu *pc = pcpu();
  if (prev && pc->running == prev && prev->state != QK_TASK_DEAD)
    prev->xstate_valid = (uint8_t)qk_arch_xstate_save(xstate_of(prev));
  if (pc->running || pc->mm)
    qk_arch_idle_cr3();
  pc->running = NULL;
  pc->mm = NULL;
  pc->idle = 1;
  uint64_t now = qk_time_monotonic_ns(), want = qk_timer_next();
  if (want <= now) {
    qk_timer_run(now);
    pc->idle = 0;
    return;
  }
  bool woke = false, stranded = false;
  for (struct qk_task *t = qk_all_tasks; t; t = t->next_all) {
    if (t->state == QK_TASK_RUNNING) {
      /* runnable, on no vCPU, and not for this one (affinity) */
      bool on = false;
      for (unsigned i = 0; i < qk_nr_cpus; i++)
        on |= qk_percpus[i].running == t;
      stranded |= !on;
    } else if (t->state == QK_TASK_BLOCKED && t->deadline != ~0ull) {
      if (t->deadline <= now) {
        qk_wake_task(t);
        woke = true;
      } else if (t->deadline < want) {
        want = t->deadline;
      }
    }
  }
  if (woke) {
    pc->idle = 0;
    return;
  }
  if (stranded)
    qk_smp_kick_idle();
  bool others_idle = qk_smp_others_idle();
  if (pc->id == 0 && others_idle && !stranded) {
    /* The others sleep through it; a task made runnable from here on
     * kicks them at the lock's release (an idle pod stays quiet: no
     * wake-up of the others per host wait). */
    qk_smp_host_wait = 1;
    idle();
    qk_smp_host_wait = 0;
    pc->idle = 0;
    return;
  }
  if (pc->id != 0 && others_idle)
    qk_smp_kick(0); /* vCPU 0 takes over the host wait */
  uint64_t cap = now + (qk_boot->ctl_gpa ? QK_SMP_IDLE_CTL_NS : QK_SMP_IDLE_NS);
  if (want > cap)
    want = cap;
  if (pc->timer_armed <= now || pc->timer_armed > want) {
    if (qk_arch_timer_arm(want - now) == 0)
      pc->timer_armed = want;
  }
  uint32_t seen = __atomic_load_n(&pc->kick_seq, __ATOMIC_ACQUIRE);
  qk_smp_unlock();
  qk_arch_wait_for_interrupt();
  qk_smp_lock_idle(seen);
  pc->idle = 0;
  qk_net_poll_now();
  if (pc->id == 0)
    qk_ctl_poll();
}

/* Picks the next task for this vCPU, reruns its parked syscall and
 * delivers its signals; idles until there is one. */
static struct qk_task *sched_loop(struct qk_task *prev, bool keep)
{
  struct qk_task *next;
  for (;;) {
    next = keep && prev && prev->state == QK_TASK_RUNNING ? prev : pick(prev);
    keep = false;
    if (!next) {
      if (qk_smp_on) {
        smp_idle(prev);
        prev = NULL;
      } else {
        idle();
      }
      continue;
    }
    /* A thread of a stopped process parks instead of running (job
     * control, task/signal.c): its syscall reruns once continued. */
    if (qk_unlikely(next->proc->jobctl) && qk_signal_stop_park(next))
      continue;
    switch_to(prev, next);
    prev = next;
    reap_dead(next);
    bool sys = false;
    if (next->restart) {
      next->uregs = &next->regs;
      next->state = QK_TASK_RUNNING;
      int64_t res = qk_syscall_dispatch(&next->regs);
      if (res == -QK_ERESTART_WAIT)
        continue; /* blocked again */
      next->restart = false;
      next->woken = false;
      next->deadline = ~0ull;
      if (next->state == QK_TASK_DEAD)
        continue;
      next->regs.rax = (uint64_t)res;
      sys = true;
      if (next->state != QK_TASK_RUNNING) /* vfork parks with a result */
        continue;
    }
    if (next->sigpending | next->proc->sigpending) {
      qk_signal_deliver(next, &next->regs, sys);
      if (next->state != QK_TASK_RUNNING)
        continue;
    }
    break;
  }
  return next;
}

/* Loads next into the live frame r and arms the timer for it. */
static void sched_finish(struct qk_task *next, struct qk_regs *r)
{
  pcpu()->slice = QK_SLICE_SYSCALLS;
  next->uregs = r;
  if (&next->regs != r)
    memcpy(r, &next->regs, sizeof(*r));
  sched_arm(next);
}

void qk_sched_return(struct qk_regs *r, bool in_syscall)
{
  struct qk_percpu *pc = pcpu();
  struct qk_task *cur = pc->current;
  if (qk_likely(cur->state == QK_TASK_RUNNING)) {
    if (qk_unlikely(cur->sigpending | cur->proc->sigpending))
      qk_signal_deliver(cur, r, in_syscall);
    /* A fault path that cannot save the task's whole FPU state: switch at
     * the next syscall or tick instead. */
    if (qk_unlikely(cur->state == QK_TASK_RUNNING && !in_syscall && !qk_arch_xstate_full()))
      return;
    if (qk_likely(cur->state == QK_TASK_RUNNING && !pc->need_resched && --pc->slice && !dead_mms)) {
      /* The task keeps the vCPU: the timer needs a look only when another
       * task became runnable or a kernel timer is due before it fires. */
      if (qk_unlikely(pc->rearm) || qk_unlikely(qk_timer_next() < pc->timer_armed))
        sched_arm(cur);
      return;
    }
  }
  /* A switch away from a task that died in a fault path that cannot
   * restore the next task's full FPU state: it happens in the worker. */
  if (qk_unlikely(!in_syscall && !qk_arch_xstate_full()))
    qk_arch_resched_in_worker(r);
  if (cur->state != QK_TASK_DEAD && &cur->regs != r)
    memcpy(&cur->regs, r, sizeof(*r));
  pc->need_resched = false;
  /* Busy tasks must not starve tasks parked on sockets: a look at socket
   * readiness (no sleep, at most once per ms) on every switch. */
  qk_net_poll_now();
  qk_ctl_poll(); /* pod commands, at every switch (returns at once without a channel) */
  if (qk_timer_next() != ~0ull)
    qk_timer_run(qk_time_monotonic_ns());
  bool keep = pc->tick_keep;
  pc->tick_keep = false;
  sched_finish(sched_loop(cur, keep), r);
}

/* SMP: an AP's first entry (QK_VECTOR_AP_START), with the lock held: wait
 * for a task and load it into r. */
void qk_sched_ap(struct qk_regs *r)
{
  sched_finish(sched_loop(NULL, false), r);
}

/* Per-vCPU scheduler state at boot. */
void qk_sched_cpu_init(struct qk_percpu *pc)
{
  pc->slice = QK_SLICE_SYSCALLS;
  pc->timer_armed = ~0ull;
}

/* Boot with no boot process (pod mode: init_entry 0, a control channel):
 * wait for the first container, then run it. */
__attribute__((noreturn)) void qk_sched_start(void)
{
  struct qk_task *next;
  for (;;) {
    qk_ctl_poll();
    next = pick(NULL);
    if (next)
      break;
    if (qk_smp_on)
      smp_idle(NULL);
    else
      idle();
  }
  switch_to(NULL, next);
  next->uregs = &next->regs;
  sched_arm(next);
  if (qk_smp_on)
    qk_smp_leave();
  qk_arch_return_to_user(&next->regs);
}
