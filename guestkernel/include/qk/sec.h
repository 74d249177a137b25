/* Credentials, capabilities and seccomp of guest processes (task/cred.c,
 * task/seccomp.c).
 *
 * Credentials live in the process (struct qk_cred, embedded in
 * qk_process next to uid/gid/euid/egid): the saved and filesystem ids, the
 * supplementary groups and the five capability sets, with Linux's rules for
 * the set*id calls, capset, exec and the bounding/ambient prctls. The
 * container's settings (run-as user, groups, capability set, no_new_privs,
 * seccomp program) come from the host: boot info for `quark-sandbox run`
 * and the per-container VMs, the CREATE payload of the control ring in a
 * pod VM.
 *
 * Seccomp state is per thread (struct qk_task): mode, no_new_privs and a
 * reference-counted chain of classic-BPF filters, shared by the threads and
 * children that inherited it. The dispatcher checks t->seccomp_mode first,
 * so a task without a filter pays one load and a branch. */
#ifndef QK_SEC_H
#define QK_SEC_H

#include <stdbool.h>
#include <stdint.h>

struct qk_task;
struct qk_process;
struct qk_regs;
struct qk_boot_info;

#define QK_NGROUPS_MAX 64 /* supplementary groups per process (Linux: 65536) */
#define QK_CAP_LAST 40    /* CAP_CHECKPOINT_RESTORE */
#define QK_CAP_ALL ((1ull << (QK_CAP_LAST + 1)) - 1)

enum {
  QK_CAP_CHOWN = 0,
  QK_CAP_DAC_OVERRIDE = 1,
  QK_CAP_FOWNER = 3,
  QK_CAP_KILL = 5,
  QK_CAP_SETGID = 6,
  QK_CAP_SETUID = 7,
  QK_CAP_SETPCAP = 8,
  QK_CAP_NET_BIND_SERVICE = 10,
  QK_CAP_NET_ADMIN = 12,
  QK_CAP_NET_RAW = 13,
  QK_CAP_SYS_MODULE = 16,
  QK_CAP_SYS_RAWIO = 17,
  QK_CAP_SYS_CHROOT = 18,
  QK_CAP_SYS_PTRACE = 19,
  QK_CAP_SYS_PACCT = 20,
  QK_CAP_SYS_ADMIN = 21,
  QK_CAP_SYS_BOOT = 22,
  QK_CAP_SYS_NICE = 23,
  QK_CAP_SYS_RESOURCE = 24,
  QK_CAP_SYS_TIME = 25,
  QK_CAP_MKNOD = 27,
};

struct qk_cred {
  uint32_t suid, sgid, fsuid, fsgid;
  uint32_t ngroups;
  uint32_t groups[QK_NGROUPS_MAX];
  uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
  bool keepcaps;
  uint32_t fs_flags; /* QK_SEC_RO_ROOT(_HOST): the container's root is read-only */
};

/* Security settings of a container's first process (from the host). */
struct qk_sec_spec {
  uint32_t flags; /* QK_SEC_* (qk_abi.h) */
  uint64_t caps;
  const void *filter; /* struct sock_filter[filter_len], host-compiled */
  uint32_t filter_len;
  uint32_t ngroups;
  const uint32_t *groups;
};

/* The calling process has capability cap in its effective set. */
bool qk_capable(int cap);
/* Credentials and seccomp of a new process (p, its first thread t) whose
 * uid/gid/euid/egid are set: the host's settings. Returns 0 or -errno
 * (a bad host program: the process must not run). */
int qk_sec_init(struct qk_process *p, struct qk_task *t, const struct qk_sec_spec *s);
/* The boot process: qk_sec_init from the boot info. */
int qk_sec_boot(struct qk_process *p, struct qk_task *t, const struct qk_boot_info *bi);
/* clone: the child thread t inherits pt's seccomp state; for a new
 * process np (!= pt->proc) its credentials too. */
void qk_sec_fork(struct qk_task *t, struct qk_task *pt);
/* A task is freed: drops its filter reference. */
void qk_sec_task_free(struct qk_task *t);
/* execve succeeded: Linux's capability transform (no file capabilities:
 * root gets its bounding set, others their ambient set). */
void qk_sec_exec(struct qk_process *p);
/* May the calling process write to (create, remove, change) the
 * host-backed root path abs (absolute)? 0 or -QK_EROFS for a container
 * with a read-only root (readOnlyRootFilesystem). The callers route /proc,
 * /dev and the /dev/shm tmpfs elsewhere first; without the flag this is
 * one load and a branch. */
int qk_sec_fs_write(const char *abs);
/* Is the calling process's root read-only (/proc/mounts says "ro")? */
bool qk_sec_ro_root(void);
/* May the calling process signal q (same real/effective uid, or CAP_KILL)? */
bool qk_sec_may_signal(const struct qk_process *q);
/* prctl options of this area; *handled false for others. */
int64_t qk_sec_prctl(int option, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, bool *handled);
/* The dispatcher's check, called only when t->seccomp_mode != 0: true to
 * run the syscall; false with *res the result (errno, or 0 after a kill). */
bool qk_seccomp_check(struct qk_task *t, struct qk_regs *r, int64_t *res);
/* Internal to the area (cred.c <-> seccomp.c). */
int64_t qk_seccomp_prctl(int option, uint64_t a1, uint64_t a2);
int qk_seccomp_install_kernel(struct qk_task *t, const void *prog, uint32_t len);
void qk_seccomp_fork(struct qk_task *t, const struct qk_task *pt);

#endif
