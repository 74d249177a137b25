/* Boot of the kernel core, and the fault/interrupt entry points the arch
 * layer calls. */
#include <qk/arch.h>
#include <qk/ctl.h>
#include <qk/kernel.h>
#include <qk/qcall.h>
#include <qk/smp.h>
#include <qk/task.h>

struct qk_boot_info *qk_boot;

struct qk_percpu qk_percpus[QK_MAX_VCPUS];

void qk_kernel_main(struct qk_boot_info *bi, unsigned cpu)
{
  qk_percpus[cpu].id = cpu;
  qk_arch_set_cpu_private(&qk_percpus[cpu]);
  if (cpu != 0)
    qk_smp_ap_main(cpu); /* halts, or schedules once vCPU 0 booted (SMP) */

  qk_boot = bi;
  qk_sched_cpu_init(&qk_percpus[0]);
  qk_smp_boot_cpu0(); /* with SMP: the kernel lock, held until user mode */
  qk_time_init(bi);
  /* Bulk copies go to the host only from emulated ring 0 (qk_kernel_native). */
  qk_ring0_emulated = bi->host_flags & QK_HOST_RING0_EMULATED;
  qk_page_init(bi->free_start, bi->free_end, bi->mem_size);
  qk_ctl_init(bi);

  if (qk_smp_on)
    qk_smp_release_aps(); /* they wait for the lock */
  if (!bi->init_entry && bi->ctl_gpa)
    qk_sched_start(); /* pod mode: containers come through the channel */
  struct qk_task *t = qk_task_create_init(bi);
  if (!t)
    qk_kpanic("out of memory creating the initial process");
  qk_percpus[cpu].current = t;
  qk_percpus[cpu].running = t;
  qk_percpus[cpu].mm = t->proc->mm;
  qk_arch_switch_cr3(t->proc->mm->cr3);
  qk_fpu_save(t->fpu); /* the boot FPU state, for tasks that fork before any switch */
  if (qk_smp_on)
    qk_smp_leave();
  qk_arch_return_to_user(&t->regs);
}

static const char *const vector_names[32] = {
  [0] = "divide error", [1] = "debug", [3] = "breakpoint", [4] = "overflow",
  [5] = "bound range", [6] = "invalid opcode", [7] = "device not available",
  [13] = "general protection", [14] = "page fault", [16] = "x87 error",
  [17] = "alignment check", [19] = "SIMD error",
};

void qk_user_fault(struct qk_regs *r, uint64_t cr2)
{
  struct qk_task *t = qk_current();
  if (r->vector == 14) {
    bool write = r->error_code & 2, exec = r->error_code & 16;
    t->uregs = r;
    if (!(r->error_code & 1) && qk_mm_fault(t->proc->mm, cr2, write, exec) == 0)
      return;
  }
  bool bus = r->vector == 14 && !(r->error_code & 1) && qk_mm_file_hole(t->proc->mm, cr2);
  int sig = 11; /* SIGSEGV */
  /* The kernel half is never a user mapping: SEGV_MAPERR there, present
   * or not, and a protection fault in the sigcontext's error code, as
   * Linux reports it (so as not to tell the kernel's layout). */
  bool khalf = r->vector == 14 && cr2 >= QK_USER_TOP;
  bool accerr = (r->error_code & 1) && !khalf;
  if (khalf)
    r->error_code |= 1;
  int code = r->vector == 14 ? (accerr ? 2 /* SEGV_ACCERR */ : 1 /* SEGV_MAPERR */) : QK_SI_KERNEL;
  switch (r->vector) {
  case 0:
    sig = 8; /* SIGFPE */
    code = 1; /* FPE_INTDIV */
    break;
  case 16:
  case 19:
    sig = 8;
    break;
  case 1:
  case 3:
    sig = 5; /* SIGTRAP */
    break;
  case 6:
    sig = 4; /* SIGILL */
    code = 2; /* ILL_ILLOPN */
    break;
  case 17:
    sig = 7; /* SIGBUS */
    break;
  }
  if (bus) {
    sig = 7; /* past the end of a mapped file */
    code = 2; /* BUS_ADRERR */
  }
  const struct l_sigaction *sa = &t->proc->sigactions[sig - 1];
  if (sa->handler <= 1 || (t->sigmask & (1ull << (sig - 1)))) {
    const char *name = r->vector < 32 && vector_names[r->vector] ? vector_names[r->vector] : "fault";
    qk_printk(QK_LOG_INFO, "pid %d: %s at rip %lx addr %lx err %lx: killed by signal %d",
              t->proc->pid, name, r->rip, cr2, r->error_code, sig);
  }
  struct qk_siginfo_lite si = { .code = code, .addr = r->vector == 14 ? cr2 : r->rip };
  t->uregs = r;
  qk_signal_task(t, sig, &si, true);
  qk_sched_return(r, false);
}

void qk_interrupt(unsigned vector, struct qk_regs *r)
{
  if (vector == QK_VECTOR_TIMER)
    qk_sched_tick(r);
  else if (vector == QK_VECTOR_RESCHED && r)
    qk_sched_return(r, false); /* a fault path's switch, moved to the worker */
  else if (vector == QK_VECTOR_IPI && r) {
    /* SMP: another vCPU killed or signalled the task, or made one
     * runnable; the scheduler's return path sees to it. */
    qk_current()->uregs = r;
    qk_sched_return(r, false);
  } else if (vector == QK_VECTOR_AP_START && r)
    qk_sched_ap(r);
  /* QK_VECTOR_QCALL only ends a halt: the waiter re-reads its ring. */
}
