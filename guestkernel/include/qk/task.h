/* Processes and threads.
 *
 * Shaped for what comes next (fork, threads, signals): a task is a thread
 * (own registers, TLS, tid, clear_child_tid, robust list, signal mask); a
 * process is a thread group with a pid and the resources its threads share,
 * each behind a reference count so that clone() flags can share or copy
 * them one by one: the address space (CLONE_VM), the descriptor table
 * (CLONE_FILES) and the fs context (CLONE_FS: cwd, umask). Today there is
 * exactly one process with one task. */
#ifndef QK_TASK_H
#define QK_TASK_H

#include <stdint.h>

#include "arch.h"
#include "fs.h"
#include "linux.h"
#include "mm.h"

struct qk_fs_ctx {
  char cwd[QK_PATH_MAX]; /* absolute, normalised */
  uint32_t umask;
  uint32_t refs;
};

struct qk_process {
  int pid, ppid, pgid, sid;
  uint32_t uid, gid, euid, egid;
  struct qk_mm *mm;
  struct qk_fdtable *files;
  struct qk_fs_ctx *fs;
  struct l_rlimit rlim[L_RLIM_NLIMITS];
  struct l_sigaction sigactions[L_NSIG]; /* recorded; delivery comes with signals */
  char exe[256];
  uint64_t start_ns; /* monotonic time at creation (CPU-time clocks) */
  struct qk_task *threads; /* list through qk_task.next_in_proc */
  uint32_t nr_threads;
};

struct qk_task {
  int tid;
  struct qk_process *proc;
  struct qk_regs regs;   /* user registers while the task is not running */
  struct qk_regs *uregs; /* the live frame during a fault (syscalls that will need
                          * it, clone/execve/rt_sigreturn, get it from the dispatcher) */
  uint64_t fs_base;
  uint64_t clear_child_tid;
  uint64_t robust_list, robust_len;
  uint64_t sigmask;
  char comm[16]; /* PR_SET_NAME */
  struct qk_task *next_in_proc;
};

/* Builds pid 1 from the boot info: its address space, stdio descriptors,
 * cwd and credentials. Returns NULL on failure (out of memory). */
struct qk_task *qk_task_create_init(const struct qk_boot_info *bi);

/* Ends the whole process with a wait status (exit code << 8, or a signal
 * number) reported to the host; never returns. */
__attribute__((noreturn)) void qk_process_exit(struct qk_process *p, int wstatus);

#endif
