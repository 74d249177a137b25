/* Constants shared by the arch layer's assembly and C (entry.S, arch.c).
 * Plain #defines only: this file is included by assembly. arch.c pins every
 * value against the C layouts with _Static_assert. */
#ifndef QK_ARCH_ASM_DEFS_H
#define QK_ARCH_ASM_DEFS_H

/* Selectors (must equal QK_SEL_* in abi/qk_abi.h). */
#define ASM_SEL_KCODE 0x08
#define ASM_SEL_KDATA 0x10
#define ASM_SEL_UDATA 0x1b
#define ASM_SEL_UCODE 0x23

/* struct qk_regs offsets (include/qk/arch.h). */
#define REGS_R11 (6 * 8)
#define REGS_RAX (10 * 8)
#define REGS_RCX (11 * 8)
#define REGS_ORIG_RAX (15 * 8)
#define REGS_VECTOR (16 * 8)
#define REGS_RIP (18 * 8)
#define REGS_CS (19 * 8)
#define REGS_RFLAGS (20 * 8)
#define REGS_SIZE (23 * 8)
/* Bytes from the start of struct qk_regs to the CPU's iret frame (rip). */
#define REGS_IRET_FRAME (18 * 8)

/* struct qk_cpu offsets (arch.c). The LSTAR entry reaches the block through
 * KERNEL_GS_BASE (swapgs); everything else masks RSP (QK_KSTACK_SIZE). */
#define CPU_SELF 0
#define CPU_KSTACK_TOP 8
#define CPU_USER_RSP 16
#define CPU_W_APP_CR3 24 /* worker mode: the app's CR3 and RSP around a syscall */
#define CPU_W_APP_RSP 32
#define CPU_W_APP_RIP 88 /* worker mode: the app's RIP and RFLAGS around an interrupt */
#define CPU_W_APP_RFLAGS 96
/* The trap frame from CPL3 sits at the region top (TSS.RSP0): the block at
 * the region base is at a fixed offset from RSP on entry. */
#define ASM_KSTACK_SIZE 0x10000

/* Kernel worker mode: its stack ends ASM_WORKER_GAP below the top of the
 * vCPU's kernel stack region (the gap is ring 0's stack while the worker
 * runs). */
#define ASM_WORKER_GAP 8192
/* The worker's fast syscall return: the app's RIP and RSP, this many bytes
 * below the top of the stack region (under the int3's 40-byte frame). */
#define ASM_W_RET_RIP 48
#define ASM_W_RET_RSP 56
#define ASM_WORKER_RFLAGS 0x3002 /* IOPL 3 (port I/O, cli/sti), IF 0 */

/* Pseudo-vector stored in qk_regs.vector for an entry through LSTAR. */
#define ASM_VEC_SYSCALL 0x100

#endif
