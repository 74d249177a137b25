/* Several vCPUs (task/smp.c): one big kernel lock around the kernel core,
 * inter-processor interrupts and TLB shootdown.
 *
 * With one vCPU (or without an in-kernel LAPIC, which IPIs need) nothing
 * here runs: qk_smp_on stays 0 and every hook is one load and a branch.
 * With several, user code runs on every vCPU at once and the kernel core is
 * serialized by one spinlock (the "big kernel lock"):
 *  - taken on every entry into the core (syscall, fault, interrupt that
 *    needs the scheduler; arch/x86_64/arch.c) and dropped on the way back
 *    to user mode; a vCPU that idles drops it around its halt;
 *  - QCall waits keep it (the ring is per vCPU, one request in flight, so
 *    no waiter can take another vCPU's completion);
 *  - a vCPU spinning for it acknowledges TLB shootdowns, so the lock
 *    holder's wait for acknowledgements cannot deadlock;
 *  - on its release the holder sends QK_VECTOR_IPI to idle vCPUs when a
 *    task became runnable and to busy vCPUs whose task died or got a
 *    signal, and QK_VECTOR_TLB to vCPUs in user mode when it changed or
 *    removed page-table entries (qk_arch_pte_update) during its hold.
 * See ARCHITECTURE.md ("SMP"). */
#ifndef QK_SMP_H
#define QK_SMP_H

#include <stdbool.h>
#include <stdint.h>

struct qk_regs;

/* Guest-internal vector (the host never sends it): flush this vCPU's TLB
 * and acknowledge (QK_VECTOR_IPI, abi/qk_abi.h, is the wake-up/reschedule
 * kick). */
#define QK_VECTOR_TLB 0x44u
/* Pseudo-vector for qk_interrupt: an application processor's first entry
 * into the scheduler (in the kernel worker where there is one). */
#define QK_VECTOR_AP_START 0x102u

extern uint8_t qk_smp_on;  /* more than one vCPU runs tasks */
extern unsigned qk_nr_cpus; /* vCPUs that run tasks (1 without SMP) */

/* Boot: called by every vCPU from qk_kernel_main; the APs wait there until
 * vCPU 0 finished booting and then enter the scheduler. */
void qk_smp_boot_cpu0(void);
void qk_smp_release_aps(void); /* vCPU 0, before its first return to user */
__attribute__((noreturn)) void qk_smp_ap_main(unsigned cpu);

/* Entry to the kernel core with the lock (arch.c). Returns false when the
 * current task may no longer run (another vCPU killed it while it was on
 * its way in): the scheduler already rewrote r, skip the entry's work. */
bool qk_smp_enter(struct qk_regs *r);
/* Leaves the core for user mode: shootdown, kicks, release. */
void qk_smp_leave(void);
/* Raw lock for the scheduler's idle path and the arch's redirections. */
void qk_smp_lock(void);
void qk_smp_unlock(void);

/* Ring 0, any context: QK_VECTOR_TLB arrived (flush done by the caller). */
void qk_smp_tlb_ack(void);

/* The scheduler's view (task/sched.c <-> task/smp.c). */
extern volatile bool qk_smp_wake_pending; /* a task became runnable */
extern volatile uint32_t qk_smp_host_wait; /* vCPU 0 waits on the host, lock held */
/* Retakes the lock after an idle halt. seen: this vCPU's kick_seq before
 * it released the lock; while no kick came since, it halts again rather
 * than spin for a busy lock (the holder kicks idle vCPUs when it makes a
 * task runnable). */
void qk_smp_lock_idle(uint32_t seen);
void qk_smp_kick(unsigned cpu);           /* QK_VECTOR_IPI to cpu */
bool qk_smp_others_idle(void);            /* every other vCPU idles */
void qk_smp_kick_idle(void);              /* IPI every idle vCPU but this one */

/* Scheduler entry points for SMP (task/sched.c). */
struct qk_percpu;
struct qk_task;
void qk_sched_cpu_init(struct qk_percpu *pc);
void qk_sched_ap(struct qk_regs *r);
/* Affinity: the mask of online vCPUs t may run on; set: -EINVAL if the
 * mask names no online vCPU. */
uint64_t qk_sched_getaffinity(const struct qk_task *t);
int qk_sched_setaffinity(struct qk_task *t, uint64_t mask);

/* Arch hooks (arch/x86_64/arch.c). */
void qk_arch_send_ipi(unsigned cpu, unsigned vector);
/* True (once) when this vCPU changed or removed a PTE since the last call. */
bool qk_arch_tlb_dirty_take(void);
/* Loads the kernel-only page table (an idle vCPU keeps no user address
 * space live; a freed one must not stay in its CR3). */
void qk_arch_idle_cr3(void);
/* Spinning here runs natively (the kernel worker, or ring 0 that is not
 * emulated). */
bool qk_arch_spin_cheap(void);
/* The user trap frame slot at the top of this vCPU's kernel stack. */
struct qk_regs *qk_arch_user_frame(void);
/* Enters the scheduler of an AP (QK_VECTOR_AP_START) in the kernel worker
 * where there is one, else here; returns to user mode with a task. */
__attribute__((noreturn)) void qk_arch_ap_enter(void);

#endif
