/* The scheduler: one list of tasks, round robin over the runnable ones on
 * vCPU 0 (see task.h for the restart model of blocking syscalls). Other
 * vCPUs stay halted: the kernel core has no locks yet.
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
#include <qk/ctl.h>
#include <qk/kernel.h>
#include <qk/net.h>
#include <qk/qcall.h>
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

static uint32_t slice = QK_SLICE_SYSCALLS;
static bool need_resched;
static uint64_t slice_start;         /* when the running task got the vCPU (monotonic ns) */
static uint64_t timer_armed = ~0ull; /* deadline the LAPIC timer is armed for, ~0: none */
static bool timer_off;               /* qk_arch_timer_arm said ENOSYS: no preemption */
static bool tick_keep;               /* the tick wants the running task kept */
static bool rearm;                   /* a task became runnable: look at the timer again */
static bool deadline_seen = true;    /* a blocked task may have a deadline */
/* Address spaces whose last user died: freed once no vCPU runs on them. */
static struct qk_mm *dead_mms[16];
static unsigned nr_dead_mms;

static inline struct qk_percpu *pcpu(void)
{
  return qk_arch_cpu_private();
}

void qk_sched_add(struct qk_task *t)
{
  rearm = true;
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
  if (nr_dead_mms < QK_ARRAY_SIZE(dead_mms)) {
    dead_mms[nr_dead_mms++] = mm;
    return;
  }
  qk_printk(QK_LOG_WARN, "too many dead address spaces pending: one leaked");
}

int64_t qk_block(const void *wchan, uint64_t deadline)
{
  struct qk_task *t = qk_current();
  if (qk_signal_pending(t))
    return -QK_ERESTARTSYS;
  if (t->restart && deadline != ~0ull && qk_time_monotonic_ns() >= deadline)
    return -QK_ETIMEDOUT; /* callers check qk_wait_expired first; a safety net */
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
    rearm = true;
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
  need_resched = true;
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
  if (prev == next)
    return;
  if (prev && prev->state != QK_TASK_DEAD)
    prev->xstate_valid = (uint8_t)qk_arch_xstate_save(xstate_of(prev));
  pcpu()->current = next;
  slice_start = qk_time_monotonic_ns();
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
  rearm = false;
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
        others = true;
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
    if (slice_start + QK_SLICE_NS <= now)
      slice_start = now; /* a fresh slice for the task that keeps running */
    uint64_t end = slice_start + (others ? QK_SLICE_NS : QK_CTL_TICK_NS);
    if (end < want)
      want = end;
  }
  if (want == ~0ull || (timer_armed > now && timer_armed <= want))
    return;
  uint64_t delta = want > now ? want - now : 0;
  if (delta < 20000)
    delta = 20000; /* no storm of interrupts for deadlines just missed */
  if (qk_arch_timer_arm(delta) < 0) {
    timer_off = true;
    return;
  }
  timer_armed = now + delta;
}

/* The timer interrupt. r: it interrupted user mode (qk_interrupt). */
void qk_sched_tick(struct qk_regs *r)
{
  timer_armed = ~0ull; /* one-shot: it fired */
  if (!r) {
    need_resched = true; /* a halt in the kernel: the next return re-arms */
    return;
  }
  uint64_t now = qk_time_monotonic_ns();
  bool preempt = slice_start + QK_SLICE_NS <= now + QK_SLICE_NS / 50;
  for (struct qk_task *t = qk_all_tasks; t; t = t->next_all) {
    if (t->state == QK_TASK_BLOCKED && t->deadline <= now) {
      qk_wake_task(t);
      preempt = true; /* a sleeper's deadline passed: let it run now */
    }
  }
  /* Only a kernel timer, or a tick for the pod channel: the task keeps
   * the vCPU and its slice; qk_sched_return fires the timers and re-arms. */
  tick_keep = !preempt;
  need_resched = true;
  qk_current()->uregs = r;
  qk_sched_return(r, false);
}

static void reap_dead(struct qk_task *keep)
{
  for (struct qk_task *t = qk_all_tasks, *n; t; t = n) {
    n = t->next_all;
    if (t->state == QK_TASK_DEAD && t != keep)
      free_task(t);
  }
  struct qk_mm *curmm = keep ? keep->proc->mm : NULL;
  unsigned j = 0;
  for (unsigned i = 0; i < nr_dead_mms; i++) {
    if (dead_mms[i] == curmm)
      dead_mms[j++] = dead_mms[i];
    else
      qk_mm_destroy(dead_mms[i]);
  }
  nr_dead_mms = j;
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
  if (qk_boot->ctl_gpa && wait > 2000000)
    wait = 2000000; /* see below */
  bool net = qk_net_idle_wait(wait);
  /* With a pod control channel, commands may arrive at any time: sleep in
   * short slices and look at the ring in between (the host's wake-up of a
   * halted vCPU does not end a host sleep). The ring is read on every way
   * out: the caller loops on idle() without polling it, so a command that
   * came after the last poll (idle_prepare sees it) or while tasks wait on
   * sockets (net) was never served, and the vCPU spun until some task's
   * deadline passed. */
  if (qk_boot->ctl_gpa) {
    if (!net && qk_ctl_idle_prepare()) {
      qk_sleep_ns(wait);
      qk_ctl_idle_done();
    }
    qk_ctl_poll();
    return;
  }
  if (net)
    return;
  /* Every task waits with no deadline: a deadlock of the program, which
   * sleeps as it would on Linux. With a LAPIC the vCPU halts until its
   * timer (armed for the earliest deadline) or any interrupt; else the
   * host sleeps for it. */
  if (!timer_off) {
    if (min == ~0ull || (timer_armed > now && timer_armed <= min)) {
      qk_arch_wait_for_interrupt();
      return;
    }
    uint64_t delta = min - now;
    if (qk_arch_timer_arm(delta) == 0) {
      timer_armed = now + delta;
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
    if (t->state == QK_TASK_RUNNING)
      return t;
  for (struct qk_task *t = qk_all_tasks; t; t = t->next_all)
    if (t->state == QK_TASK_RUNNING)
      return t;
  return NULL;
}

void qk_sched_return(struct qk_regs *r, bool in_syscall)
{
  struct qk_task *cur = qk_current();
  if (qk_likely(cur->state == QK_TASK_RUNNING)) {
    if (qk_unlikely(cur->sigpending | cur->proc->sigpending))
      qk_signal_deliver(cur, r, in_syscall);
    /* A fault path that cannot save the task's whole FPU state: switch at
     * the next syscall or tick instead. */
    if (qk_unlikely(cur->state == QK_TASK_RUNNING && !in_syscall && !qk_arch_xstate_full()))
      return;
    if (qk_likely(cur->state == QK_TASK_RUNNING && !need_resched && --slice && !nr_dead_mms)) {
      /* The task keeps the vCPU: the timer needs a look only when another
       * task became runnable or a kernel timer is due before it fires. */
      if (qk_unlikely(rearm) || qk_unlikely(qk_timer_next() < timer_armed))
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
  need_resched = false;
  /* Busy tasks must not starve tasks parked on sockets: a look at socket
   * readiness (no sleep, at most once per ms) on every switch. */
  qk_net_poll_now();
  struct qk_task *prev = cur, *next;
  qk_ctl_poll(); /* pod commands, at every switch (returns at once without a channel) */
  if (qk_timer_next() != ~0ull)
    qk_timer_run(qk_time_monotonic_ns());
  bool keep = tick_keep;
  tick_keep = false;
  for (;;) {
    next = keep && prev->state == QK_TASK_RUNNING ? prev : pick(prev);
    keep = false;
    if (!next) {
      idle();
      continue;
    }
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
  slice = QK_SLICE_SYSCALLS;
  next->uregs = r;
  if (&next->regs != r)
    memcpy(r, &next->regs, sizeof(*r));
  sched_arm(next);
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
    idle();
  }
  switch_to(NULL, next);
  next->uregs = &next->regs;
  sched_arm(next);
  qk_arch_return_to_user(&next->regs);
}
