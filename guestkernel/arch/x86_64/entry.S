/* Kernel entry points: boot, the 256 vector stubs, the syscall paths (LSTAR
 * in ring 0; the user stub's int3), and the common trap exit.
 *
 * Every instruction here runs in ring 0, which on a PVM-style host is
 * emulated at ~1 us each, so these paths are kept short: push the registers,
 * call C, pop, iretq; the kernel worker's syscall legs only switch CR3. No swapgs on the trap paths (it is not emulated
 * natively here and costs a slow fallback each time): the per-vCPU block
 * sits at the base of the aligned kernel stack region (see arch.c). Only the
 * LSTAR entry, which runs natively in ring 0 on hardware KVM, uses swapgs to
 * find its stack.
 */
#include "asm_defs.h"

#define PUSH_REGS \
  push %rdi; push %rsi; push %rdx; push %rcx; push %rax; push %r8; push %r9; push %r10; \
  push %r11; push %rbx; push %rbp; push %r12; push %r13; push %r14; push %r15

#define POP_REGS \
  pop %r15; pop %r14; pop %r13; pop %r12; pop %rbp; pop %rbx; pop %r11; pop %r10; \
  pop %r9; pop %r8; pop %rax; pop %rcx; pop %rdx; pop %rsi; pop %rdi

        .section .text.entry, "ax", @progbits
        .code64

/* Boot: the host starts every vCPU here with RDI = boot info (direct-map VA),
 * RSI = vCPU index, RSP = boot_stack_top[cpu] (16-byte aligned), IF = 0. */
        .globl qk_arch_entry
qk_arch_entry:
        sub $(REGS_SIZE + 72), %rsp     /* keep the user trap frame's slot free of C frames */
        xor %ebp, %ebp
        call qk_arch_start
        ud2

/* ---- vector stubs: the host points IDT gate v at qk_arch_vector_stubs + 16 * v ---- */
        .p2align 4
        .globl qk_arch_vector_stubs
qk_arch_vector_stubs:
        .set vec, 0
        .rept 256
        .p2align 4
        .if vec == 3
        jmp qk_arch_bp_safe             /* #BP (qk_arch_start points the gate past this) */
        .else
        .if (vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
        .else
        pushq $0                        /* error code slot for vectors without one */
        .endif
        pushq $vec
        jmp qk_arch_trap_common
        .endif
        .set vec, vec + 1
        .endr

/* #BP. Three entries: qk_arch_bp_safe takes any #BP in any mode (the
 * vector entry jumps there); in the kernel-worker mode qk_arch_start points
 * the kernel view's gate at qk_arch_bp_entry and the worker view's (the
 * host gives that view its own IDT page) at qk_arch_bp_worker_entry, which
 * test for one leg of a syscall each first: every ring-0 instruction costs
 * ~1 us on PVM-style hosts (ARCHITECTURE.md, "kernel worker"), 14 per
 * syscall are left, against 30 before.
 *
 * Worker -> app: qk_worker_syscall's int3 (kernel text, not executable by
 * the app; every #BP in the worker view comes from the worker). The worker
 * left the app's CR3 in RCX, its RIP and RSP just below ring 0's frame
 * (ASM_W_RET_*), and its RFLAGS in R11. sysretq, not iretq: 0.6 us cheaper
 * per syscall here (vCPU time 25.1 against 25.7 us). RIP is canonical (the
 * worker sanitized it), so sysretq cannot fault in ring 0. */
        .globl qk_arch_bp_worker_entry
qk_arch_bp_worker_entry:
        cmpq $qk_worker_ret_after, (%rsp)
        jne qk_arch_bp_other            /* the worker's other int3s */
qk_worker_leave:
        mov %rcx, %cr3
        mov (40 - ASM_W_RET_RIP)(%rsp), %rcx
        mov (40 - ASM_W_RET_RSP)(%rsp), %rsp
        sysretq

/* App -> worker (worker mode only): the worker entry's int3 (frame RIP ==
 * qk_arch_uentry_w_after, only reachable from CPL3 in the app's view).
 * RSP = K - 40 (K = the top of the stack region). Ring 0 only parks the
 * app's RAX below the frame, loads the worker CR3, hands the frame's
 * address to the worker in RAX and fixes RFLAGS (never the app's: it may
 * reach the int3 without syscall's SFMASK, with TF or AC set); the iretq
 * returns to qk_arch_uentry_w_after, now in the worker view, with the app's
 * RSP, which the worker reads from the frame before it takes its own
 * stack. */
        .globl qk_arch_bp_entry
qk_arch_bp_entry:
        cmpq $qk_arch_uentry_w_after, (%rsp)
        jne qk_arch_bp_safe
qk_worker_enter:
        mov %rax, -8(%rsp)
        mov qk_worker_cr3(%rip), %rax
        mov %rax, %cr3
        mov %rsp, %rax
        movq $ASM_WORKER_RFLAGS, 16(%rsp)
        iretq

/* Either entry's int3 is a syscall, whichever LSTAR names (an app may jump
 * to the other one): in the worker if there is one, else in ring 0. */
        .globl qk_arch_bp_safe
qk_arch_bp_safe:
        cmpq $qk_arch_ustub_after, (%rsp)
        je 1f
        cmpq $qk_arch_uentry_w_after, (%rsp)
        je 1f
        cmpq $qk_worker_ret_after, (%rsp)       /* a host with one IDT page for both views */
        je qk_worker_leave
        jmp qk_arch_bp_other
1:      cmpb $0, qk_worker_mode(%rip)
        je 2f
        movq $qk_arch_uentry_w_after, (%rsp)
        jmp qk_worker_enter
2:      pushq $0                        /* error code */
        pushq $ASM_VEC_SYSCALL          /* vector */
        push %rax                       /* orig_rax */
        PUSH_REGS
        mov %rcx, REGS_RIP(%rsp)
        mov %r11, REGS_RFLAGS(%rsp)
        cld
        mov %rsp, %rdi
        sub $8, %rsp
        call qk_arch_syscall
        add $8, %rsp
        jmp qk_arch_syscall_exit
qk_arch_bp_other:
        cmpq $qk_worker_iret_after, (%rsp)
        je qk_worker_iret_leave
        pushq $0
        pushq $3
        jmp qk_arch_trap_common

/* The worker is done with an interrupt (qk_worker_iret): every register
 * is the app's again; RIP, RSP, RFLAGS and CR3 come from the block. */
qk_worker_iret_leave:
        push %rax
        mov (CPU_W_APP_CR3 - ASM_KSTACK_SIZE + 48)(%rsp), %rax
        mov %rax, %cr3
        mov (CPU_W_APP_RSP - ASM_KSTACK_SIZE + 48)(%rsp), %rax
        mov %rax, 32(%rsp)
        mov (CPU_W_APP_RFLAGS - ASM_KSTACK_SIZE + 48)(%rsp), %rax
        mov %rax, 24(%rsp)
        mov (CPU_W_APP_RIP - ASM_KSTACK_SIZE + 48)(%rsp), %rax
        mov %rax, 8(%rsp)
        pop %rax
        iretq

/* CPL3, worker view, entered from ring 0 (irq_to_worker in arch.c) with
 * the app's general registers live and IF = 0: save them as a trap frame
 * (RIP/RSP/RFLAGS are filled in C from the per-vCPU block). */
        .globl qk_worker_irq
qk_worker_irq:
        pushq $ASM_SEL_UDATA            /* ss */
        pushq $0                        /* rsp */
        pushq $0                        /* rflags */
        pushq $ASM_SEL_UCODE            /* cs */
        pushq $0                        /* rip */
        pushq $0                        /* error code */
        pushq $0                        /* vector */
        pushq $-1                       /* orig_rax */
        PUSH_REGS
        cld
        mov %rsp, %rdi
        sub $8, %rsp
        call qk_worker_irq_c
        ud2

/* qk_worker_iret(r): load the app's registers from r (on this stack) and
 * trap to ring 0, which finishes the return (qk_worker_iret_leave). */
        .globl qk_worker_iret
qk_worker_iret:
        mov %rdi, %rsp
        POP_REGS
        int3
        .globl qk_worker_iret_after
qk_worker_iret_after:
        ud2

/* CPL3, worker view, native from here on: entered from the worker entry
 * (qk_arch_uentry_w_after) with RSP = K - ASM_WORKER_GAP and RAX = K - 40,
 * ring 0's trap frame, whose RSP slot holds the app's RSP; the app's RAX is
 * just below it. Every other register is still the app's. */
        .globl qk_worker_syscall
qk_worker_syscall:
        pushq $ASM_SEL_UDATA            /* ss */
        pushq 24(%rax)                  /* rsp */
        push %r11                       /* rflags */
        pushq $ASM_SEL_UCODE            /* cs */
        push %rcx                       /* rip */
        pushq $0
        pushq $ASM_VEC_SYSCALL
        mov -8(%rax), %rax
        push %rax                       /* orig_rax */
        PUSH_REGS
        cld
        mov %rsp, %rdi
        sub $8, %rsp
        call qk_worker_syscall_c
        add $8, %rsp
        test %eax, %eax
        jz 1f
        POP_REGS                        /* RCX = the app's CR3 (qk_worker_syscall_c) */
        int3                            /* fast return: qk_arch_bp_worker_entry */
        .globl qk_worker_ret_after
qk_worker_ret_after:
        ud2
1:      mov %rsp, %rsi                  /* full return (execve, sigreturn, ...) */
        mov $2, %edi                    /* WORKER_OP_RETURN */
        call qk_worker_call
        ud2

/* A ring-0 service for the worker: qk_worker_call(op, a, b) with the C ABI;
 * the #BP lands in qk_arch_trap, which recognises the return address. */
        .globl qk_worker_call
qk_worker_call:
        int3
        .globl qk_worker_call_after
qk_worker_call_after:
        ret

/* qk_arch_halt: wait for an interrupt with IF set just for the wait. The
 * trap path steps over the hlt when an interrupt lands on it (arch.c). */
        .globl qk_arch_halt, qk_arch_halt_insn
qk_arch_halt:
        sti
qk_arch_halt_insn:
        hlt
        cli
        ret

/* Stack on arrival: vector, error code, rip, cs, rflags, rsp, ss. */
qk_arch_trap_common:
        pushq $-1                       /* orig_rax: not a syscall */
        PUSH_REGS
qk_arch_trap_saved:
        cld
        mov %rsp, %rdi
        sub $8, %rsp                    /* 23 pushed qwords: realign to 16 for the call */
        call qk_arch_trap
        add $8, %rsp
        .globl qk_arch_trap_exit
qk_arch_trap_exit:                      /* RSP = struct qk_regs, IF = 0 */
        POP_REGS
        add $24, %rsp                   /* orig_rax, vector, error code */
        iretq

/* Return from a syscall: sysretq when RCX/R11 already hold RIP/RFLAGS (the
 * common case: Linux clobbers them on syscall), else the full iretq (after
 * execve, sigreturn or anything that rewrote the frame). RIP is canonical
 * (qk_arch_syscall sanitized it), so sysretq cannot fault in ring 0. */
qk_arch_syscall_exit:
        mov REGS_RIP(%rsp), %rax
        cmp %rax, REGS_RCX(%rsp)
        jne qk_arch_trap_exit
        mov REGS_RFLAGS(%rsp), %rax
        cmp %rax, REGS_R11(%rsp)
        jne qk_arch_trap_exit
        POP_REGS
        mov 48(%rsp), %rsp              /* user RSP: orig_rax vector error rip cs rflags rsp */
        sysretq

/* ---- LSTAR entry: reached in ring 0 on hardware-virtualized KVM (and bare
 * metal). SFMASK cleared IF, DF, TF and AC. RCX = user RIP, R11 = user RFLAGS. */
        .p2align 4
        .globl qk_arch_syscall_entry
qk_arch_syscall_entry:
        swapgs
        mov %rsp, %gs:CPU_USER_RSP
        mov %gs:CPU_KSTACK_TOP, %rsp
        pushq $ASM_SEL_UDATA            /* ss */
        pushq %gs:CPU_USER_RSP          /* rsp */
        swapgs                          /* back to the user's GS: the kernel never uses GS */
        push %r11                       /* rflags */
        pushq $ASM_SEL_UCODE            /* cs */
        push %rcx                       /* rip */
        pushq $0                        /* error code */
        pushq $ASM_VEC_SYSCALL          /* vector */
        push %rax                       /* orig_rax */
        PUSH_REGS
        cld
        mov %rsp, %rdi
        sub $8, %rsp
        call qk_arch_syscall
        add $8, %rsp
        jmp qk_arch_syscall_exit

/* ---- the user-mode syscall stub (one page, mapped user-accessible,
 * read-only, executable by the host at its kernel VA). Used only after the
 * kernel saw a user `syscall` land at LSTAR still in CPL3 (PVM-style hosts):
 * LSTAR then points here. verr tells the CPL without clobbering a register:
 * ZF=1 iff the current CPL may read the DPL-0 kernel data segment. At CPL3
 * it traps with int3 (the only software interrupt ring 3 may raise here);
 * the #BP handler recognises the return address qk_arch_ustub_after. */
        .section .qk_ustub, "ax", @progbits
        .p2align 12
        .globl qk_arch_syscall_ustub
qk_arch_syscall_ustub:
        verr qk_arch_ustub_ksel(%rip)
        jnz 1f
        jmp *qk_arch_ustub_hwentry(%rip)
1:      int3
        .globl qk_arch_ustub_after
qk_arch_ustub_after:
        ud2
/* The worker mode's syscall entry (LSTAR there). Its int3's return address is also
 * where the worker starts, in the worker view (qk_arch_bp_entry): RAX =
 * ring 0's frame at K - 40, the worker stack ends ASM_WORKER_GAP below K.
 * Run by the app in its own view this only faults (kernel text is
 * supervisor-only there). */
        .globl qk_arch_syscall_uentry_w
qk_arch_syscall_uentry_w:
        verr qk_arch_ustub_ksel(%rip)
        jnz 1f
        jmp *qk_arch_ustub_hwentry(%rip)
1:      int3
        .globl qk_arch_uentry_w_after
qk_arch_uentry_w_after:
        lea (40 - ASM_WORKER_GAP)(%rax), %rsp
        jmp qk_worker_syscall
        .p2align 3
qk_arch_ustub_ksel:
        .word ASM_SEL_KDATA
        .p2align 3
qk_arch_ustub_hwentry:
        .quad qk_arch_syscall_entry
        .p2align 12

/* LSTAR values for PVM-style hosts (arch.c): [0] the kernel in ring 0,
 * [1] the kernel worker. */
        .section .rodata
        .p2align 3
        .globl qk_arch_user_lstar
qk_arch_user_lstar:
        .quad qk_arch_syscall_ustub
        .quad qk_arch_syscall_uentry_w
