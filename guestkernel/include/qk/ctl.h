/* Guest side of the pod control channel (../../abi/qk_ctl.h): the host
 * creates, starts, signals and deletes containers and runs execs; this
 * layer (guestkernel/ctl/) reads the command ring, validates and copies each
 * command, calls the task layer, and reports events to the host.
 *
 * `quark-sandbox pod --shared-vm` (QUARK_POD_SHARED_VM=1) sets boot_info.ctl_gpa
 * and boots with no process; task/container.c implements the hooks below
 * (strong definitions replace the weak ENOSYS defaults of
 * ctl/ctl_defaults.c).
 */
#ifndef QK_CTL_GUEST_H
#define QK_CTL_GUEST_H

#include <stdint.h>

#include "../../abi/qk_abi.h"
#include "../../abi/qk_ctl.h"

/* A process spec as the task layer receives it: copied out of the payload
 * area into kernel memory (qk_kmalloc) and validated (argc >= 1, strings
 * NUL-terminated, cwd absolute, handles < QK_HFD limit as given). */
struct qk_ctl_process {
  uint32_t flags; /* QK_CTL_SPEC_* */
  uint32_t uid, gid;
  uint32_t ngroups;
  uint32_t *groups;
  uint32_t argc, envc;
  char **argv; /* argc entries + NULL */
  char **envp; /* envc entries + NULL */
  char *cwd;
  uint32_t root_hfd;
  uint32_t stdio_hfd[3];
  uint64_t mem_limit;
  uint32_t pids_max; /* tasks of the container, 0: no limit (qk_ctl_spec.pids_max) */
  uint32_t pidns_cid; /* with QK_CTL_SPEC_PIDNS_TARGET: whose pid namespace to join */
  /* Security block (struct qk_ctl_sec, task/cred.c): QK_SEC_* flags, the
   * capability set and a seccomp program of sec_filter_len instructions. */
  uint32_t sec_flags, sec_filter_len;
  uint64_t sec_caps;
  void *sec_filter;
};

/* Called by qk_ctl_poll each time: wakes poll/select callers that found a
 * container's stdio handle not ready (the host does not signal those). */
void qk_container_stdio_tick(void);

/* Frees a spec made by the ctl layer (also for the task layer, when it
 * took one and no longer needs it). */
void qk_ctl_process_free(struct qk_ctl_process *p);

/* ---- called by the kernel core ---- */

/* At boot on vCPU 0, after the page allocator is up: maps the control area
 * if boot_info.ctl_gpa is set and announces guest_version. No-op otherwise. */
void qk_ctl_init(struct qk_boot_info *bi);
/* Serves every pending command (in order) and returns. Called by the task
 * layer from its idle loop and after QK_VECTOR_CTL, in kernel context with
 * no lock held (the hooks below may block, allocate and switch tasks).
 * Not reentrant: concurrent callers return at once. Returns the number of
 * commands served. */
unsigned qk_ctl_poll(void);
/* Before halting an idle vCPU: sets guest_sleeping and returns true when
 * the ring is still empty (then halt); false means poll again. */
int qk_ctl_idle_prepare(void);
void qk_ctl_idle_done(void);

/* ---- events, called by the task layer from any kernel context that may
 * do a QCall; each returns 0 or -errno (no control channel: -ENOSYS) ---- */
int qk_ctl_container_started(uint32_t cid, int32_t pid);
/* status: exit code, or the signal number with QK_CTL_EXIT_SIGNALED. */
int qk_ctl_container_exited(uint32_t cid, int32_t status, uint32_t flags);
int qk_ctl_exec_exited(uint32_t cid, uint32_t xid, int32_t status, uint32_t flags);

/* ---- implemented by the task layer (weak ENOSYS defaults in ctl/) ----
 * All are called from qk_ctl_poll only, one at a time, and return 0 or
 * -errno (which becomes the ACK's result). cid < QK_CTL_MAX_CONTAINERS;
 * the host never reuses a cid before DELETE was acknowledged.
 */

/* New limits for the container (UPDATE): mem_limit bytes, 0 none. */
int qk_container_update(uint32_t cid, uint64_t mem_limit);
/* Creates the container's init process from spec without running it; on
 * success the callee owns spec (frees it with qk_ctl_process_free), on
 * failure the caller frees it. -EEXIST for a cid in use. */
int qk_container_create(uint32_t cid, struct qk_ctl_process *spec);
/* Makes the created init runnable and reports qk_ctl_container_started
 * (before or after returning). -EBUSY when started already. */
int qk_container_start(uint32_t cid);
/* Sends signo to the container's init (-ESRCH when it has exited: the
 * host treats that as done). Its exit is reported with
 * qk_ctl_container_exited when it happens. */
int qk_container_signal(uint32_t cid, int signo);
/* Runs spec as a new process in the container's root, pid namespace and
 * limits; ownership of spec as for create. Reports qk_ctl_exec_exited. */
int qk_exec_spawn(uint32_t cid, uint32_t xid, struct qk_ctl_process *spec);
int qk_exec_kill(uint32_t cid, uint32_t xid, int signo);
/* Forgets an exited (or never started) container; -EBUSY while it runs. */
int qk_container_delete(uint32_t cid);

struct qk_ctl_stats {
  uint64_t memory_bytes; /* in use by the container's processes (or all) */
  uint64_t cpu_ns;
  uint64_t processes;
};
/* cid or QK_CTL_POD. The default reports pod-wide memory from the page
 * allocator and no CPU time. */
int qk_stats(uint32_t cid, struct qk_ctl_stats *out);

#endif
