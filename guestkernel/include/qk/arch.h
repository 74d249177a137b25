/* The privileged layer's interface (implemented in arch/x86_64/). Everything
 * outside arch/ is plain C that needs no privileged instruction: it calls
 * these hooks. On a host where ring 0 is emulated (see ARCHITECTURE.md) each
 * hook costs ~1 us per instruction, so they are few and short; bulk work
 * (zeroing, copying) goes to the host through QCall instead.
 *
 * Calling contexts: "trap" means with interrupts off on the current vCPU's
 * kernel stack, inside a trap/syscall that came from user mode.
 *
 * Kernel worker mode (QK_HOST_KERNEL_WORKER, PVM-style hosts): qk_syscall
 * runs at CPL3 in the worker's address-space view, where the kernel half is
 * mapped at the usual addresses and user memory is not mapped at all. Code
 * reached from qk_syscall must therefore use these hooks for anything
 * privileged (no cli/sti/hlt/in/out/invlpg/CR or MSR access of its own) and
 * reach user memory through page-table walks, never by user address. The
 * hooks do the right thing in both modes; qk_user_fault, qk_interrupt and
 * qk_kernel_main still run in ring 0.
 *
 * Stacks: each vCPU has one kernel stack region (QK_KSTACK_SIZE, aligned,
 * abi/qk_abi.h); the per-vCPU hooks (cpu id, cpu private, fs base,
 * return_to_user) find their state by masking RSP, so kernel code calls them
 * only while running on that region. Traps from user mode arrive with the
 * struct qk_regs at the top of the region.
 */
#ifndef QK_ARCH_H
#define QK_ARCH_H

#include <stdint.h>
#include <stdbool.h>

#include "../../abi/qk_abi.h"

/* User register frame saved at kernel entry. Layout is fixed by the entry
 * assembly: general registers first (pushed by the stub), then what the CPU
 * pushes on a trap. For a syscall, orig_rax holds the number, rax the result
 * on return, and rcx/r11 are clobbered as on Linux. */
struct qk_regs {
  uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi;
  uint64_t orig_rax;
  uint64_t vector, error_code;
  uint64_t rip, cs, rflags, rsp, ss;
};
_Static_assert(sizeof(struct qk_regs) == 23 * 8, "qk_regs layout");

/* Per-vCPU state the arch layer keeps; kernel code reads cpu_id and the
 * pointer it set with qk_arch_set_cpu_private. */
unsigned qk_arch_cpu_id(void);
void qk_arch_set_cpu_private(void *p);
void *qk_arch_cpu_private(void);

/* Address spaces. cr3 values are guest-physical PML4 addresses. */
uint64_t qk_arch_current_cr3(void);
void qk_arch_switch_cr3(uint64_t cr3);
/* Stores a page-table entry that changes or removes an existing mapping (a
 * present entry), then invalidates va on this vCPU. Entries that go from
 * not-present to present may be written with a plain store (the host and
 * hardware both pick them up without invalidation). */
void qk_arch_pte_update(volatile uint64_t *pte, uint64_t val, uint64_t va);
void qk_arch_flush_tlb(void);

/* Thread pointer of user code (FS base). */
void qk_arch_set_fs_base(uint64_t v);
uint64_t qk_arch_get_fs_base(void);

/* Returns to user mode with the given registers; never returns. */
__attribute__((noreturn)) void qk_arch_return_to_user(struct qk_regs *r);

/* Waits for an interrupt (QCall completion, timer, IPI) with interrupts
 * enabled just for the wait. */
/* Extended FPU state of user mode: everything XSAVE covers for the XCR0 in
 * force where user code runs (x87, SSE, AVX, AVX-512 on hosts that enable
 * it), in a buffer of QK_XSTATE_MAX bytes at a 64-byte aligned address.
 * Save returns the format written: QK_XSTATE_X (XSAVE) or QK_XSTATE_FX
 * (the 512-byte FXSAVE image, where this context has no XSAVE). Restore
 * takes either; from an FXSAVE image (or where XSAVE is missing) the
 * components above SSE are loaded in their init state, so no other task's
 * AVX registers survive. qk_arch_xstate_full: false where a save here
 * would miss state the application uses (a ring-0 fault path on a
 * PVM-style host in kernel-worker mode): the scheduler then does not
 * switch tasks there. */
#define QK_XSTATE_MAX 4096u
#define QK_XSTATE_FX 1
#define QK_XSTATE_X 2
/* Pseudo-vector for qk_interrupt: a switch that qk_arch_resched_in_worker
 * moved from a ring-0 fault path into the worker (call
 * qk_sched_return(r, false) there). */
#define QK_VECTOR_RESCHED 0x101u
__attribute__((noreturn)) void qk_arch_resched_in_worker(struct qk_regs *r);
int qk_arch_xstate_save(uint8_t *buf);
void qk_arch_xstate_restore(const uint8_t *buf, int fmt);
bool qk_arch_xstate_full(void);
/* The XSAVE layout of this context (signal frames, task/signal.c): its
 * size in bytes (0: FXSAVE only) and the components saved (XCR0). */
uint32_t qk_arch_xstate_layout(uint64_t *mask);
void qk_arch_wait_for_interrupt(void);
void qk_arch_irq_enable(void);
void qk_arch_irq_disable(void);

uint64_t qk_arch_rdtsc(void);

/* One-shot timer (the x2APIC timer, TSC-deadline mode where offered):
 * QK_VECTOR_TIMER reaches qk_interrupt about ns nanoseconds from now (0
 * cancels; a new arm replaces the old one). Returns 0, or -ENOSYS where the
 * VM has no in-kernel LAPIC (QK_HOST_LAPIC unset): callers must then not
 * rely on preemption (a task runs until it enters the kernel). Any
 * context, this vCPU. In the kernel worker it costs a ring-0 service. */
int qk_arch_timer_arm(uint64_t ns);

/* Early console and fatal stop (port I/O: leaves the VM, slow path only). */
void qk_arch_console_write(const char *s, uint64_t len);
__attribute__((noreturn)) void qk_arch_shutdown(int status);
__attribute__((noreturn)) void qk_arch_panic(const char *msg);

/* ---- entry points the arch layer calls into the kernel ---- */

/* Boot: called once per vCPU after the arch layer set up traps. */
__attribute__((noreturn)) void qk_kernel_main(struct qk_boot_info *bi, unsigned cpu);
/* A syscall from user mode: r->orig_rax is the number, the result goes to
 * r->rax. Returns normally; the arch layer then returns to user mode with r
 * (which the kernel may have changed: signal frames, execve). */
void qk_syscall(struct qk_regs *r);
/* A fault or exception from user mode (vector, error code, CR2 for #PF).
 * Kernel-mode faults are handled by the arch layer (fixups or panic). */
void qk_user_fault(struct qk_regs *r, uint64_t cr2);
/* An interrupt (timer, QCall completion, IPI), already acknowledged.
 * r != NULL: it interrupted user mode (only QK_VECTOR_TIMER is passed on
 * then) and the kernel runs as in a fault: it may switch tasks by
 * rewriting r (qk_sched_return(r, false)). In kernel-worker mode this runs
 * in the worker, like a syscall. r == NULL: it ended a halt inside the
 * kernel, which must only note it (no scheduling, no QCall). */
void qk_interrupt(unsigned vector, struct qk_regs *r);

#endif
