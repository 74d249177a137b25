/* Several vCPUs: the big kernel lock, IPIs, TLB shootdown and the start of
 * the application processors (see include/qk/smp.h and ARCHITECTURE.md).
 *
 * Shootdown protocol (the lock holder H changed or removed PTEs): for each
 * other vCPU C that is not idle, H bumps C.shoot_req, sends QK_VECTOR_TLB if
 * C is in user mode (C.in_user), and waits until C.shoot_ack catches up.
 * C acknowledges in the TLB interrupt (ring 0, after reloading CR3), or,
 * when it is on its way into the core, while it spins for the lock: it
 * then flushes before it returns to user mode (flush_pending). in_user is
 * cleared before the spin and set before the release, both sequentially
 * consistent against H's bump of shoot_req, so a vCPU is always either
 * interrupted in user mode or seen spinning; an idle vCPU has no user
 * address space loaded (qk_arch_idle_cr3) and is skipped. */
#include <qk/arch.h>
#include <qk/kernel.h>
#include <qk/smp.h>
#include <qk/task.h>

uint8_t qk_smp_on;
unsigned qk_nr_cpus = 1;
volatile bool qk_smp_wake_pending;
volatile uint32_t qk_smp_host_wait;

static volatile uint32_t bkl;       /* the big kernel lock */
static volatile uint32_t boot_done; /* vCPU 0 finished booting: APs may schedule */

static inline struct qk_percpu *pcpu(void)
{
  return qk_arch_cpu_private();
}

static inline void cpu_relax(void)
{
  __asm__ volatile("pause" ::: "memory");
}

static inline void ack_shootdown(struct qk_percpu *pc)
{
  uint32_t req = __atomic_load_n(&pc->shoot_req, __ATOMIC_ACQUIRE);
  if (req != pc->shoot_ack) {
    pc->flush_pending = 1;
    __atomic_store_n(&pc->shoot_ack, req, __ATOMIC_RELEASE);
  }
}

void qk_smp_lock(void)
{
  struct qk_percpu *pc = pcpu();
  __atomic_store_n(&pc->in_user, 0, __ATOMIC_SEQ_CST);
  while (__atomic_exchange_n(&bkl, 1, __ATOMIC_ACQUIRE)) {
    do {
      ack_shootdown(pc);
      cpu_relax();
    } while (__atomic_load_n(&bkl, __ATOMIC_RELAXED));
  }
  ack_shootdown(pc);
  pc->kicked = 0;
}

void qk_smp_unlock(void)
{
  __atomic_store_n(&bkl, 0, __ATOMIC_RELEASE);
}

/* An idle vCPU needs the lock only to look for work, and the holder kicks
 * idle vCPUs when it makes a task runnable (deadlines and kernel timers
 * are armed on the holder's timer too): after a short spin where spinning
 * is cheap (the kernel worker, native ring 0), or at once where ring 0 is
 * emulated (~1 us per spin), it halts until kicked. */
#define IDLE_SPINS 2000
void qk_smp_lock_idle(uint32_t seen)
{
  struct qk_percpu *pc = pcpu();
  unsigned spins = qk_arch_spin_cheap() ? IDLE_SPINS : 0;
  bool work = false; /* kicked while the lock was busy: there is work, spin */
  for (unsigned n = 0; __atomic_exchange_n(&bkl, 1, __ATOMIC_ACQUIRE); n++) {
    ack_shootdown(pc);
    if (__atomic_load_n(&pc->kick_seq, __ATOMIC_ACQUIRE) != seen)
      work = true;
    if (!work && (n >= spins || __atomic_load_n(&qk_smp_host_wait, __ATOMIC_ACQUIRE))) {
      qk_arch_wait_for_interrupt(); /* a kick bumps kick_seq before its IPI */
      n = 0;
      continue;
    }
    cpu_relax();
  }
  ack_shootdown(pc);
  pc->kicked = 0;
}

/* QK_VECTOR_IPI, counted first (qk_smp_lock_idle). */
static void kick_cpu(unsigned cpu)
{
  __atomic_add_fetch(&qk_percpus[cpu].kick_seq, 1, __ATOMIC_SEQ_CST);
  qk_arch_send_ipi(cpu, QK_VECTOR_IPI);
}

void qk_smp_kick(unsigned cpu)
{
  if (cpu < qk_nr_cpus)
    kick_cpu(cpu);
}

bool qk_smp_others_idle(void)
{
  struct qk_percpu *me = pcpu();
  for (unsigned i = 0; i < qk_nr_cpus; i++)
    if (&qk_percpus[i] != me && !qk_percpus[i].idle)
      return false;
  return true;
}

void qk_smp_kick_idle(void)
{
  struct qk_percpu *me = pcpu();
  for (unsigned i = 0; i < qk_nr_cpus; i++)
    if (&qk_percpus[i] != me && qk_percpus[i].idle)
      kick_cpu(i);
}

void qk_smp_tlb_ack(void)
{
  struct qk_percpu *pc = pcpu();
  if (pc)
    __atomic_store_n(&pc->shoot_ack, __atomic_load_n(&pc->shoot_req, __ATOMIC_ACQUIRE),
                     __ATOMIC_RELEASE);
}

static void shootdown(struct qk_percpu *me)
{
  uint64_t wait = 0;
  for (unsigned i = 0; i < qk_nr_cpus; i++) {
    struct qk_percpu *c = &qk_percpus[i];
    if (c == me || c->idle || !c->mm)
      continue;
    __atomic_store_n(&c->shoot_req, c->shoot_req + 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&c->in_user, __ATOMIC_SEQ_CST))
      qk_arch_send_ipi(i, QK_VECTOR_TLB);
    wait |= 1ull << i;
  }
  for (unsigned i = 0; wait; i++) {
    if (!(wait & (1ull << i)))
      continue;
    struct qk_percpu *c = &qk_percpus[i];
    while (__atomic_load_n(&c->shoot_ack, __ATOMIC_ACQUIRE) != c->shoot_req)
      cpu_relax();
    wait &= ~(1ull << i);
  }
}

/* Busy vCPUs whose task died or got a deliverable signal enter the kernel
 * (QK_VECTOR_IPI); idle ones look for the task that became runnable. */
static void kick_others(struct qk_percpu *me)
{
  bool wake = qk_smp_wake_pending;
  qk_smp_wake_pending = false;
  for (unsigned i = 0; i < qk_nr_cpus; i++) {
    struct qk_percpu *c = &qk_percpus[i];
    if (c == me)
      continue;
    if (c->idle) {
      if (wake)
        kick_cpu(i);
      continue;
    }
    struct qk_task *t = c->running;
    if (!t || c->kicked)
      continue;
    if (t->state != QK_TASK_RUNNING || qk_signal_pending(t)) {
      c->kicked = 1;
      kick_cpu(i);
    } else if (wake) {
      c->rearm = true; /* a slice timer, at its next entry */
    }
  }
}

bool qk_smp_enter(struct qk_regs *r)
{
  qk_smp_lock();
  struct qk_task *t = pcpu()->current;
  if (!t || t->state == QK_TASK_RUNNING)
    return true;
  /* Killed (exit_group, execve of another thread) while it ran here. */
  qk_sched_return(r, false);
  return false;
}

void qk_smp_leave(void)
{
  struct qk_percpu *pc = pcpu();
  if (qk_arch_tlb_dirty_take())
    shootdown(pc);
  kick_others(pc);
  if (pc->flush_pending) {
    pc->flush_pending = 0;
    qk_arch_flush_tlb();
  }
  __atomic_store_n(&pc->in_user, 1, __ATOMIC_SEQ_CST);
  qk_smp_unlock();
}

void qk_smp_boot_cpu0(void)
{
  unsigned n = qk_boot->vcpu_count;
  if (n > QK_MAX_VCPUS)
    n = QK_MAX_VCPUS;
  /* IPIs need the in-kernel LAPIC; without one the other vCPUs halt. */
  if (n > 1 && (qk_boot->host_flags & QK_HOST_LAPIC)) {
    qk_nr_cpus = n;
    qk_smp_on = 1;
    qk_smp_lock(); /* held until the boot's first return to user mode */
  }
}

void qk_smp_release_aps(void)
{
  __atomic_store_n(&boot_done, 1, __ATOMIC_RELEASE);
  for (unsigned i = 1; i < qk_nr_cpus; i++)
    kick_cpu(i);
}

__attribute__((noreturn)) void qk_smp_ap_main(unsigned cpu)
{
  struct qk_boot_info *bi = (struct qk_boot_info *)(QK_DIRECT_MAP + QK_GPA_BOOTINFO);
  if (bi->vcpu_count < 2 || cpu >= bi->vcpu_count || !(bi->host_flags & QK_HOST_LAPIC))
    for (;;)
      qk_arch_wait_for_interrupt(); /* no SMP: this vCPU stays halted */
  /* vCPU 0's IPI may come before this vCPU's LAPIC was enabled: look
   * every millisecond as well. */
  while (!__atomic_load_n(&boot_done, __ATOMIC_ACQUIRE)) {
    qk_arch_timer_arm(1000000);
    qk_arch_wait_for_interrupt();
  }
  if (!qk_smp_on)
    for (;;)
      qk_arch_wait_for_interrupt();
  qk_sched_cpu_init(pcpu());
  qk_arch_ap_enter();
}
