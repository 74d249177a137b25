/* The jail of quark-sandbox: what the VMM process itself may do on the
 * host, the defense behind the VM boundary. Prefix: sbx_jail_.
 *
 * Two calls, because two kernel rules fix when each part can happen:
 *
 * 1. sbx_jail_enter, first thing, before /dev/kvm is opened. A new pid
 *    namespace holds only processes forked after unshare, and a KVM VM works
 *    only from the mm that created it, so the fork into the new pid
 *    namespace must come before the VM exists. enter: creates the pod's
 *    cgroup and sets its limits, unshares the pid and ipc namespaces and
 *    forks. The parent stays outside as a small supervisor (it forwards
 *    termination signals and returns the child's exit status; it never
 *    touches KVM). The child, pid 1 of the new namespace, joins the cgroup,
 *    enters the pod's network namespace and builds a private mount
 *    namespace: a read-only tmpfs root holding only /dev/kvm, /dev/null,
 *    /dev/urandom, a private read-only /proc, the container roots and the
 *    extra paths of the options, each at its host path, then pivot_root into
 *    it. Everything the VMM opens from then on (rootfs, kernel image,
 *    /dev/kvm, stats file, control socket) it opens inside the jail.
 *
 * 2. sbx_jail_apply, after the VM, guest memory, vCPU fds and io_uring
 *    exist and before any thread starts (capabilities and namespaces are
 *    per thread; the seccomp filter is inherited by threads created later):
 *    drops every capability but the file-access ones the host-backed rootfs
 *    needs, sets no_new_privs and loads the seccomp allowlist. A syscall
 *    outside the allowlist fails with EPERM for that call only; its number
 *    is logged once.
 *
 * Errors: negative errno plus *err (quark/common.h). On failure the process
 * is left partly jailed; the caller must exit.
 */
#ifndef SBX_JAIL_H
#define SBX_JAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <quark/common.h>

#define SBX_JAIL_MAX_PATHS 16

/* Parts that can be switched off, for debugging (`--no-jail` switches all). */
enum {
  SBX_JAIL_NO_PIDNS = 1u << 0,
  SBX_JAIL_NO_MOUNTNS = 1u << 1,
  SBX_JAIL_NO_SECCOMP = 1u << 2,
  SBX_JAIL_NO_CAPS = 1u << 3,
  /* Not a part but a mode: guests are created after set-up and the control
   * socket is served (pod mode), which widens the allowlist (README). */
  SBX_JAIL_POD = 1u << 8,
};

struct sbx_jail_opts {
  const char *pod_id;                    /* cgroup name, log lines; NULL: "sbx-<pid>" */
  const char *roots[SBX_JAIL_MAX_PATHS]; /* container roots: rbind, rw, nosuid/nodev/noexec */
  size_t nroots;
  const char *ro_paths[SBX_JAIL_MAX_PATHS]; /* files or dirs bound read-only (kernel image) */
  size_t nro;
  const char *rw_paths[SBX_JAIL_MAX_PATHS]; /* bound read-write (control socket dir, log and
                                               stats files: a missing file is created) */
  size_t nrw;
  const char *netns;                    /* the pod's netns path, NULL: keep the caller's */
  const char *cgroup_parent;            /* NULL: no cgroup made here */
  const char *cgroup;                   /* an existing cgroup to join instead (pod mode:
                                           made by quarkd, cgroup.h); relative path */
  uint64_t memory_limit;                /* bytes, 0: none */
  uint64_t cpu_quota_us, cpu_period_us; /* quota 0: none */
  uint64_t pids_limit;                  /* 0: none */
  unsigned flags;                       /* SBX_JAIL_NO_* */
  /* Filled by sbx_jail_enter (CLOCK_MONOTONIC ns, 0: step not done): after
   * the clone, the cgroup join, the netns and the mount jail. */
  uint64_t t_clone, t_cgroup, t_netns, t_mounts;
};

/* Applies one option: name is one of "pod-id", "root", "bind-ro", "bind",
 * "netns", "cgroup-parent", "cgroup", "memory" (bytes with K/M/G suffix), "cpus"
 * (decimal CPUs, e.g. "1.5": quota over a 100 ms period), "pids", "no"
 * (comma list of pidns, mountns, seccomp, caps), "mode" (run or pod). value is borrowed: it must
 * outlive opts. Paths must be absolute. -EINVAL on anything else. */
int sbx_jail_opt(struct sbx_jail_opts *o, const char *name, const char *value, q_error **err);
/* "512M" -> bytes; -EINVAL on garbage or overflow. */
int sbx_jail_parse_size(const char *s, uint64_t *out);
/* "1.5" -> quota 150000 us per period 100000 us; -EINVAL unless 0.01..1024. */
int sbx_jail_parse_cpus(const char *s, uint64_t *quota_us, uint64_t *period_us);

/* Step 1 (see above). Returns 0 in the jailed child, which goes on to
 * create the VM; returns 1 in the supervisor once the child has ended,
 * with *exit_status set to the child's status (128 + signal when it was
 * killed), which the caller returns from main. */
int sbx_jail_enter(struct sbx_jail_opts *o, int *exit_status, q_error **err);
/* Step 2 (see above). -EBUSY if the process already has several threads. */
int sbx_jail_apply(const struct sbx_jail_opts *o, q_error **err);

/* Pod mode (`quark-sandbox pod`, sandbox/pod/pod.c): the daemon binds its
 * control socket, then sbx_jail_enter (pid, ipc and mount namespaces, the
 * pod's netns, the cgroup quarkd made for it: opts.cgroup), and after
 * set-up sbx_jail_apply with SBX_JAIL_POD (the run-mode capabilities plus
 * CAP_NET_BIND_SERVICE, no_new_privs, the pod allowlist without the mount
 * helper's rows; CAP_SYS_ADMIN and those rows only with SBX_JAIL_NO_MOUNTNS).
 * Its mount namespace holds no container root and no host path of a
 * container: containers arrive at run time, so their roots (with bind
 * mounts, built by the client outside the jail, rootmount.h) and log files
 * come as fds over the control socket. */
/* The caller's pid as the parent namespace sees it (after a pid-namespace
 * clone getpid() is 1): what "hello" reports, what quarkd signals. */
pid_t sbx_jail_host_pid(void);
/* Pod mode with a pid namespace and a cgroup: the supervisor moves the
 * daemon into the cgroup while the daemon goes on (sbx_jail_enter returns
 * before the move). Blocks until the move is done: 0, or the error (the
 * supervisor then kills the daemon). Call before creating a guest; 0 at
 * once where there was nothing to wait for. */
int sbx_jail_cgroup_wait(q_error **err);

/* ---- the seccomp allowlist (seccomp.c) ---- */

/* Loads the allowlist into the calling thread (and the threads it creates
 * later). Needs no_new_privs or CAP_SYS_ADMIN. */
int sbx_jail_seccomp_load(bool pod, q_error **err);
/* Number of syscalls the allowlist admits (with or without argument
 * filters; ioctl counts once), for the README and tests. */
size_t sbx_jail_seccomp_count(bool pod);
/* The same without the container bind-mount helper's rows (fork, wait4,
 * unshare, mount, its file-creating openat) when helper is false: a pod
 * daemon in its mount jail gets container roots as fds (rootmount.h). */
int sbx_jail_seccomp_load_helper(bool pod, bool helper, q_error **err);
size_t sbx_jail_seccomp_count_helper(bool pod, bool helper);
/* Syscall numbers blocked so far (each logged once), for tests. */
unsigned sbx_jail_seccomp_blocked(void);

#endif
