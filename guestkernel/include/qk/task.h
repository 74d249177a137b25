/* Processes, threads, the scheduler and signals.
 *
 * A task is a thread (own registers, FPU state, TLS, tid, signal mask and
 * thread-directed pending signals); a process is a thread group with a pid
 * and the resources its threads share, each behind a reference count so
 * that clone() flags share or copy them one by one: the address space
 * (CLONE_VM), the descriptor table (CLONE_FILES) and the fs context
 * (CLONE_FS: cwd, umask).
 *
 * Scheduling runs tasks on every vCPU (SMP: task/smp.c): a task runs until it
 * blocks, yields, exits, has made QK_SLICE_SYSCALLS syscalls / run
 * QK_SLICE_NS since it was picked, or is preempted by the x2APIC timer at the
 * end of its slice while another task is runnable (task/sched.c, arch/). No per-task kernel stack: a syscall that must wait parks its
 * task with the syscall's registers saved (qk_block) and the scheduler runs
 * the syscall again from the start when the task is woken ("restart"
 * model). Handlers that block must therefore be restartable: everything
 * they did before qk_block must be harmless to redo, and state that must
 * survive (a deadline) lives in the task (qk_wait_deadline). */
#ifndef QK_TASK_H
#define QK_TASK_H

#include <stdint.h>

#include "arch.h"
#include "fs.h"
#include "linux.h"
#include "mm.h"
#include "sec.h"

struct qk_fs_ctx {
  char cwd[QK_PATH_MAX]; /* absolute, normalised */
  uint32_t umask;
  uint32_t refs;
  uint32_t root_hfd; /* the container's root directory handle (QK_HFD_ROOT: boot) */
};

/* A pid namespace: one per container, or the boot one (the boot process's,
 * which a pod's containers in POD pid mode share: task/container.c).
 * Pids, tids, process groups and sessions are numbers inside a namespace;
 * lookups by number never cross namespaces. A container is not its
 * namespace: qk_process.ctr says which container a process belongs to. */
struct qk_pidns {
  int last_pid;
  struct qk_process *init; /* the namespace's pid 1: orphans go to it */
};

/* Internal results of syscall handlers, never seen by user code. */
#define QK_ERESTART_WAIT 4096 /* parked by qk_block: run again when woken */
#define QK_ERESTARTSYS 512    /* interrupted by a signal: -EINTR or restart (SA_RESTART) */

struct qk_siginfo_lite {
  int32_t code;
  int32_t pid;
  uint32_t uid;
  int32_t status;
  uint64_t addr;
};

struct qk_process {
  int pid, ppid, pgid, sid;
  uint32_t uid, gid, euid, egid;
  struct qk_mm *mm;
  struct qk_fdtable *files;
  struct qk_fs_ctx *fs;
  struct l_rlimit rlim[L_RLIM_NLIMITS];
  struct l_sigaction sigactions[L_NSIG];
  uint64_t sigpending; /* process-directed, bit sig-1 */
  struct qk_siginfo_lite siginfo[L_NSIG];
  /* The thread (tid) woken for each pending process signal: only it takes
   * it while it can (task/signal.c); 0: any thread. */
  int32_t sigtarget[L_NSIG];
  char exe[256];
  uint64_t start_ns; /* monotonic time at creation (CPU-time clocks) */
  struct qk_task *threads; /* list through qk_task.next_in_proc */
  uint32_t nr_threads;
  /* Family: the parent (NULL for a container's init) and the children,
   * live or zombie, through sibling. */
  struct qk_process *parent, *children, *sibling;
  struct qk_process *next_all; /* every process, for pid and group lookups */
  struct qk_pidns *ns;
  /* The container: its slot + 1, set by the control channel, inherited by
   * fork; 0: none (the boot process). Memory charges, stats, the pids
   * limit and the kill at the end of its init go by it, not by ns. */
  int ctr;
  int ctl_xid;                 /* > 0: an exec of the pod control channel */
  bool zombie;
  bool exiting;
  int wstatus;          /* wait status once a zombie */
  /* CPU time (task/cputime.c, TSC cycles): of the threads that ended, of
   * the children waited for (with theirs: cutime/cstime); the number of
   * armed CPU-time timers (task/timer.c). */
  uint64_t cpu_user_dead, cpu_sys_dead, cpu_cuser, cpu_csys;
  uint32_t cpu_timers;
  struct qk_task *vfork_parent; /* a parent blocked in vfork until exec/exit */
  int exit_signal;      /* sent to the parent at exit (clone's low byte) */
  uint8_t jobctl;       /* QK_JOB_*: stopped, and what wait has not reported */
  uint8_t stop_sig;     /* the signal that stopped it (wait's WSTOPSIG) */
  struct qk_cred cred;  /* saved/fs ids, groups, capabilities (sec.h, task/cred.c) */
};

enum qk_task_state { QK_TASK_RUNNING, QK_TASK_BLOCKED, QK_TASK_DEAD };

struct qk_task {
  int tid;
  struct qk_process *proc;
  struct qk_regs regs;   /* user registers while the task is not running */
  struct qk_regs *uregs; /* the live frame of the syscall or fault being served */
  uint64_t fs_base;
  uint64_t clear_child_tid;
  uint64_t robust_list, robust_len;
  uint64_t sigmask;
  uint64_t saved_sigmask; /* rt_sigsuspend/ppoll: restored after delivery */
  bool has_saved_sigmask;
  uint64_t sigpending; /* thread-directed */
  struct qk_siginfo_lite siginfo[L_NSIG];
  uint64_t altstack_sp, altstack_size;
  uint32_t altstack_flags;
  char comm[16]; /* PR_SET_NAME */
  struct qk_task *next_in_proc;
  struct qk_task *next_all;
  /* Scheduling. */
  enum qk_task_state state;
  const void *wchan;  /* what a blocked task waits on */
  uint64_t deadline;  /* monotonic ns at which a blocked task wakes, ~0: never */
  uint64_t stop_deadline; /* deadline kept aside while parked by a stop */
  bool restart;       /* regs hold a parked syscall to run again */
  bool woken;         /* qk_wake_one/qk_wake picked it (futex needs to know) */
  uint8_t fpu_valid;
  _Alignas(16) uint8_t fpu[512]; /* fxsave image while not running */
  /* Scheduler (sched.c): the FPU/AVX state of a task switched out, at the
   * first 64-byte boundary of xstate_buf; xstate_valid is its format
   * (QK_XSTATE_X or _FX, arch.h), 0: none yet (new task), fpu[] is loaded
   * then with AVX in its init state. */
  uint8_t xstate_valid;
  uint8_t xstate_buf[QK_XSTATE_MAX + 64];
  /* CPU time (qk/cputime.h, TSC cycles): user and kernel mode, the TSC at
   * the last accounting point, whether that was a syscall entry, whether
   * the task stopped being charged then (blocked, dead). */
  uint64_t cpu_user, cpu_sys, cpu_mark;
  uint8_t cpu_in_sys, cpu_off;
  uint64_t cpus_allowed; /* sched_setaffinity mask of vCPUs, 0: all (task/sched.c) */
  /* Seccomp (sec.h, task/seccomp.c): 0 none, 1 strict, 2 filter. */
  uint8_t seccomp_mode;
  bool no_new_privs;
  struct qk_seccomp_filter *seccomp;
};

/* Builds pid 1 from the boot info: its address space, stdio descriptors,
 * cwd and credentials. Returns NULL on failure (out of memory). */
struct qk_task *qk_task_create_init(const struct qk_boot_info *bi);

/* ---- scheduler (task/sched.c) ---- */

/* Makes t known to the scheduler (runnable). */
void qk_sched_add(struct qk_task *t);
/* Called by the syscall dispatcher and the fault path on the way back to
 * user mode, with r the live frame: delivers signals, and when the current
 * task blocked, died or used its slice, saves it and loads the next
 * runnable task's registers into r (idling the vCPU until one exists). */
void qk_sched_return(struct qk_regs *r, bool in_syscall);
/* The dispatcher's table lookup, for the scheduler's restarts. */
int64_t qk_syscall_dispatch(struct qk_regs *r);

/* Parks the current task on wchan until qk_wake(wchan) or deadline
 * (monotonic ns, ~0ull for none); returns -QK_ERESTART_WAIT, which the
 * handler returns. With a deliverable signal pending it returns
 * -QK_ERESTARTSYS instead (the caller returns that: -EINTR, or the
 * syscall restarts after the handler for SA_RESTART). */
int64_t qk_block(const void *wchan, uint64_t deadline);
/* Inside a handler run again after qk_block: true (once) while restarting. */
bool qk_restarting(void);
/* The deadline to use: now + rel_ns on the first run, the same one when
 * restarting. ~0ull stays ~0ull. */
uint64_t qk_wait_deadline(uint64_t rel_ns);
bool qk_wait_expired(void);
bool qk_wait_woken(void);
/* Wakes every task blocked on wchan; returns how many. */
int qk_wake(const void *wchan);
/* Wakes at most n tasks blocked on wchan (futex). */
int qk_wake_n(const void *wchan, int n);
void qk_wake_task(struct qk_task *t);
/* Boot without a boot process (init_entry 0 and a pod control channel):
 * idles until a container is started, then runs it. */
__attribute__((noreturn)) void qk_sched_start(void);
/* Forces a reschedule on the way out (sched_yield). */
void qk_sched_yield(void);
/* All tasks and processes. */
extern struct qk_task *qk_all_tasks;
extern struct qk_process *qk_all_procs;
/* Lookups inside the calling task's pid namespace. */
struct qk_process *qk_proc_find(int pid);
struct qk_task *qk_task_find(int tid);
struct qk_process *qk_proc_find_ns(struct qk_pidns *ns, int pid);
/* Where poll/select sleepers wait: woken by every pipe change. */
extern int qk_poll_wq;

/* ---- processes (task/proc.c) ---- */

/* Ends the calling thread (exit) or its whole process (exit_group, fatal
 * signals) with a wait status (exit code << 8, or a signal number). The
 * current task is DEAD afterwards; the scheduler switches away. */
void qk_thread_exit(struct qk_task *t, int wstatus);
void qk_process_exit(struct qk_process *p, int wstatus);
int qk_alloc_pid(struct qk_pidns *ns);
extern struct qk_pidns qk_boot_pidns;
/* Tasks container ctr (slot + 1) may have, 0: no limit (task/container.c). */
uint32_t qk_container_pids_max(int ctr);
/* Exec of a program into task t (not running) from kernel strings
 * (argv then envp, packed NUL-terminated): task/exec.c, for containers. */
int qk_exec_kernel(struct qk_task *t, const char *path, const char *strings, uint32_t len,
                   uint32_t argc, uint32_t envc);

/* ---- signals (task/signal.c) ---- */

#define QK_SI_USER 0
#define QK_SI_KERNEL 0x80
/* Sends sig to a process (any thread may take it) or to one thread.
 * force: from the kernel for a fault (ignored/blocked reset to default).
 * Returns 0 or -errno. */
int qk_signal_proc(struct qk_process *p, int sig, const struct qk_siginfo_lite *info);
/* The same from the host (pod control channel): no init protection. */
int qk_signal_proc_host(struct qk_process *p, int sig, const struct qk_siginfo_lite *info);
/* Process signals of bits pending while the thread they woke blocked them
 * or ended: another thread that can take them is woken. */
void qk_signal_retarget(struct qk_process *p, uint64_t bits);
/* Sets t's signal mask (SIGKILL/SIGSTOP stay unblocked) and retargets
 * process signals it blocks now. */
void qk_signal_set_mask(struct qk_task *t, uint64_t mask);
int qk_signal_task(struct qk_task *t, int sig, const struct qk_siginfo_lite *info, bool force);
/* A deliverable (pending, unblocked) signal for t? */
bool qk_signal_pending(struct qk_task *t);
/* Delivers pending signals to the current task whose frame is r: runs
 * default actions (may kill the process) or builds a handler frame. res
 * is the syscall result in r->rax (for -ERESTARTSYS handling); in_syscall
 * tells whether r comes from a syscall. */
void qk_signal_deliver(struct qk_task *t, struct qk_regs *r, bool in_syscall);
/* Job control (qk_process.jobctl): the process is stopped (its threads
 * park on &p->jobctl, task/signal.c), a stop or a continue wait4/waitid
 * has not reported yet (task/proc.c). */
#define QK_JOB_STOPPED 1
#define QK_JOB_STOP_REPORT 2
#define QK_JOB_CONT_REPORT 4
/* Scheduler: t, picked, belongs to a stopped process and has no SIGKILL
 * pending: it is parked instead (true), not run. */
bool qk_signal_stop_park(struct qk_task *t);
/* qk_block with a deliverable signal: where that is only a stop signal
 * taken by its default action, the group stop happens there (true) and
 * the thread waits in its call as it would have: a wake-up or its deadline
 * while stopped makes it runnable, the scheduler parks it then; once
 * continued the call goes on with its own deadline (a nanosleep ends when
 * it would have, as on Linux) and its temporary mask (sigsuspend, ppoll)
 * in force meanwhile. false: the signal interrupts the call. */
bool qk_signal_stop_in_wait(struct qk_task *t);
/* A process outside its terminal's foreground group reads it (sig
 * SIGTTIN), or writes it with TOSTOP or changes its settings (SIGTTOU),
 * as Linux: ignored or blocked, 0 (go ahead; EIO for SIGTTIN); an orphaned
 * group, -EIO; else sig to the caller's group and -ERESTARTSYS (the call
 * runs again once continued). */
int64_t qk_signal_tty_background(int sig);
/* ppoll, pselect6, epoll_pwait: the caller's mask umask (8 bytes, 0: none)
 * for the wait, set on the first run only (the call may rerun); the end
 * restores the old one unless a handler's frame carries it. Both retarget
 * process signals the thread newly blocks. */
int64_t qk_signal_wait_mask(uint64_t umask);
int64_t qk_signal_wait_mask_end(uint64_t umask, int64_t r);
/* The stack a signal frame needs here (AT_MINSIGSTKSZ): the FPU area
 * (XSAVE image where this context has XSAVE) and the rt_sigframe. */
uint64_t qk_signal_min_stack(void);
/* exec: handlers back to default, altstack cleared. */
void qk_signal_exec_reset(struct qk_process *p, struct qk_task *t);

/* FPU state of the running task (fxsave64/fxrstor64; x87/SSE, not the
 * upper AVX halves). */
void qk_fpu_save(uint8_t *buf);
void qk_fpu_restore(const uint8_t *buf);

#endif
