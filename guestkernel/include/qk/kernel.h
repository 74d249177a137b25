/* Kernel-wide state and helpers shared by every guest-kernel module outside
 * arch/: the boot info, the per-vCPU block, the current task, logging and
 * fatal stops. */
#ifndef QK_KERNEL_H
#define QK_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../abi/qk_abi.h"
#include "../../abi/qk_errno.h"
#include "lib.h"

struct qk_task;

/* Per-vCPU block, installed with qk_arch_set_cpu_private by qk_kernel_main. */
struct qk_mm;
struct qk_percpu {
  unsigned id;
  struct qk_task *current; /* task whose syscall/fault is being served */
  /* Scheduler state of this vCPU (task/sched.c). */
  struct qk_task *running; /* the task this vCPU runs, NULL while idle (SMP) */
  struct qk_mm *mm;        /* the address space it may cache translations of */
  uint32_t slice;          /* syscalls left in the running task's slice */
  bool need_resched;
  bool tick_keep;          /* the tick wants the running task kept */
  bool rearm;              /* a task became runnable: look at the timer again */
  uint64_t slice_start;    /* when the running task got the vCPU (monotonic ns) */
  uint64_t timer_armed;    /* deadline the LAPIC timer is armed for, ~0: none */
  /* SMP (task/smp.c): written by other vCPUs too. */
  volatile uint32_t idle;          /* halted (or waiting on the host) with no task */
  volatile uint32_t in_user;       /* out of the kernel core, bound for user mode */
  volatile uint32_t kicked;        /* an IPI was sent and not yet seen */
  volatile uint32_t kick_seq;      /* IPIs sent to it (task/smp.c) */
  volatile uint32_t shoot_req;     /* TLB shootdown generation asked ... */
  volatile uint32_t shoot_ack;     /* ... and acknowledged */
  volatile uint32_t flush_pending; /* acknowledged in the kernel: flush on the way out */
};

/* Every vCPU's block, indexed by vCPU number (kernel/main.c). */
extern struct qk_percpu qk_percpus[];

/* The boot info page (read-only after boot, except panic_msg). */
extern struct qk_boot_info *qk_boot;

void *qk_arch_cpu_private(void);

/* Current task of this vCPU. Valid inside qk_syscall/qk_user_fault.
 * Inline: it is on every syscall's path, and ring-0 instructions are
 * expensive on our host. */
static inline struct qk_task *qk_current(void)
{
  return ((struct qk_percpu *)qk_arch_cpu_private())->current;
}

#define qk_likely(x) __builtin_expect(!!(x), 1)
#define qk_unlikely(x) __builtin_expect(!!(x), 0)

/* Fatal kernel bug: logs and stops the VM. Never called on user input. */
__attribute__((noreturn)) void qk_kpanic(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#define QK_BUG_ON(c)                                                                     \
  do {                                                                                   \
    if (qk_unlikely(c))                                                                  \
      qk_kpanic("BUG at %s:%d: %s", __FILE__, __LINE__, #c);                             \
  } while (0)

/* Clocks from the TSC and the boot calibration: no VM exit, no QCall. */
void qk_time_init(const struct qk_boot_info *bi);
uint64_t qk_time_monotonic_ns(void);
uint64_t qk_time_realtime_ns(void);
/* Sleeps on the host (QK_OP_SLEEP; the vCPU halts meanwhile). ~0ull sleeps
 * forever: what a single task blocked with nothing to wake it does. */
void qk_sleep_ns(uint64_t ns);

/* The LAPIC timer fired (task/sched.c). r: it interrupted user mode; the
 * scheduler fires kernel timers, wakes sleepers whose deadline passed,
 * preempts the task whose slice is over and re-arms the timer. NULL: it
 * ended a halt in the kernel, where only need_resched is set. */
struct qk_regs;
void qk_sched_tick(struct qk_regs *r);

#endif
