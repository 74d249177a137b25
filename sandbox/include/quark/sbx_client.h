/* How quarkd drives one pod sandbox (one quark-sandbox process, one KVM VM).
 * Prefix: sbx_. quarkd sees pods and containers only; how the sandbox runs
 * them is its own business (ARCHITECTURE border 3).
 *
 * Contract:
 * - One sbx_client handle per pod. sbx_client_create starts a new
 *   quark-sandbox for the pod; sbx_client_connect reattaches to a sandbox
 *   that survived a quarkd restart, by its control socket path (which
 *   quarkd stores in the pod's state record).
 * - Every call is synchronous and may block up to its timeout; a handle may
 *   be used from several threads at once (calls are serialized inside).
 * - Failures return a negative errno and fill *err when err is non-NULL:
 *   -ENOSYS where the sandbox does not implement the operation yet, -ENOENT
 *   for an unknown container or exec id, -ESRCH when the sandbox is gone,
 *   -ETIMEDOUT when a timeout expired.
 * - Strings passed in are copied before the call returns; strings returned
 *   in structs are owned by the struct and freed by its *_clear function.
 * - sbx_client_close drops the connection only; the VM keeps running.
 *   sbx_client_stop stops the VM (all its containers) and reaps the process.
 * - Implemented by the CMake target quark_sbx_client (sandbox/); quarkd links
 *   it when that target exists, and otherwise cri/sbx_client_none.c, which
 *   answers -ENOSYS to everything.
 */
#ifndef QUARK_SBX_CLIENT_H
#define QUARK_SBX_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "quark/common.h"

struct sbx_client;

/* Pod-level settings fixed when the VM is created. */
struct sbx_pod_spec {
  const char *pod_id;         /* 64 hex */
  const char *sandbox_binary; /* Sandbox.Binary */
  const char *kernel;         /* Sandbox.Kernel */
  uint32_t memory_mib;
  uint32_t vcpus;
  const char *netns_path; /* NULL: host network namespace */
  const char *hostname;
  const char *run_dir;  /* where the control socket and pod files live */
  const char *log_path; /* the sandbox's own log */
  /* TSoR (quark-sandbox pod --tsor): tsord's socket, the pod's IPv4 address
   * and the TSoR CIDRs (NULL: the pod IP's /16). NULL socket: no TSoR. */
  const char *tsor_socket, *tsor_ip, *tsor_cidrs;
  /* The pod's cgroup, made by the caller (sandbox/jail/cgroup.h), which the
   * sandbox joins first thing; NULL: none. */
  const char *cgroup;
};

struct sbx_kv {
  const char *key;
  const char *value;
};

struct sbx_mount {
  const char *source;      /* host path */
  const char *destination; /* path in the container */
  bool readonly;
};

/* One container process to create inside the pod VM. */
struct sbx_container_spec {
  const char *container_id; /* 64 hex */
  const char *rootfs;       /* host directory with the unpacked image */
  const char *const *argv;  /* NULL-terminated */
  const char *const *envp;  /* NULL-terminated, "K=V" */
  const char *cwd;
  uint32_t uid, gid;
  const uint32_t *groups;
  size_t n_groups;
  const struct sbx_mount *mounts;
  size_t n_mounts;
  const char *log_path; /* CRI log file (stdout/stderr, CRI format) */
  bool tty, stdin_open;
  /* Additive fields (zero = the old behaviour): */
  bool stdin_once;
  enum sbx_pid_ns { SBX_PIDNS_CONTAINER = 0, SBX_PIDNS_POD = 1, SBX_PIDNS_TARGET = 2 } pid_ns;
  const char *pid_target; /* SBX_PIDNS_TARGET: the running container (of this pod) whose pid
                             namespace it joins */
  /* Security settings the guest kernel enforces (sandbox/jail/guest_sec.h):
   * capability set (with caps_set), no_new_privs, and a classic-BPF
   * seccomp program of seccomp_len 8-byte instructions (cri/seccomp_profile.h). */
  bool caps_set, no_new_privs;
  uint64_t caps;
  const void *seccomp;
  size_t seccomp_len;
  uint64_t memory_limit; /* bytes of guest memory (shared-VM mode), 0: none; beyond it the
                            allocating process is OOM-killed (status oom_killed) */
  uint32_t pids_limit;   /* tasks, threads included (shared-VM mode), 0: none; fork and clone
                            past it fail with EAGAIN in the guest */
  bool readonly_rootfs;  /* readOnlyRootFilesystem: the root answers EROFS, its
                            writable bind mounts stay writable */
  /* OCI masked and read-only paths (CRI security_context masked_paths,
   * readonly_paths): n strings each; paths under /proc, /sys and /dev are
   * the guest kernel's (read-only, without the OCI default entries). */
  char *const *masked_paths;
  size_t n_masked_paths;
  char *const *readonly_paths;
  size_t n_readonly_paths;
};

enum sbx_process_state { SBX_PROC_CREATED, SBX_PROC_RUNNING, SBX_PROC_EXITED };

struct sbx_container_status {
  enum sbx_process_state state;
  int64_t started_at; /* ns since the epoch, 0 before start */
  int64_t finished_at;
  int32_t exit_code; /* 128+signal when killed by a signal */
  bool oom_killed;
};

struct sbx_stats {
  int64_t timestamp;
  uint64_t cpu_usage_ns;
  uint64_t memory_working_set_bytes;
  uint64_t memory_usage_bytes;
  uint64_t memory_rss_bytes;
  uint64_t processes; /* a container's processes in the guest (0: not told) */
};

struct sbx_exec_result {
  int32_t exit_code;
  char *out; /* captured stdout, capped at out_cap */
  size_t out_len;
  char *err;
  size_t err_len;
};
void sbx_exec_result_clear(struct sbx_exec_result *r);

/* Starts quark-sandbox for a pod and waits until its VM is up. */
int sbx_client_create(const struct sbx_pod_spec *spec, struct sbx_client **out, q_error **err);
/* Reattaches to a running sandbox by control socket. */
int sbx_client_connect(const char *control_socket, struct sbx_client **out, q_error **err);
/* Control socket path of this sandbox (to store in the pod record). */
const char *sbx_client_socket(const struct sbx_client *c);
void sbx_client_close(struct sbx_client *c);

/* Stops the VM (containers get SIGTERM, then SIGKILL after timeout_ms) and
 * reaps the sandbox process. Idempotent: a gone sandbox is success. */
int sbx_client_stop(struct sbx_client *c, int timeout_ms, q_error **err);

int sbx_container_create(struct sbx_client *c, const struct sbx_container_spec *spec,
                         q_error **err);
int sbx_container_start(struct sbx_client *c, const char *container_id, q_error **err);
/* Sends a Linux signal number to the container's init process. */
int sbx_container_signal(struct sbx_client *c, const char *container_id, int signo, q_error **err);
/* Waits until the container exits or timeout_ms passes (-1: forever). */
int sbx_container_wait(struct sbx_client *c, const char *container_id, int timeout_ms,
                       struct sbx_container_status *out, q_error **err);
int sbx_container_status(struct sbx_client *c, const char *container_id,
                         struct sbx_container_status *out, q_error **err);
/* Removes an exited container's state in the VM. */
int sbx_container_delete(struct sbx_client *c, const char *container_id, q_error **err);
/* Runs argv in the container, captures at most out_cap bytes of each of
 * stdout and stderr, kills it after timeout_ms (-1: no limit). */
int sbx_container_exec(struct sbx_client *c, const char *container_id, const char *const *argv,
                       int timeout_ms, size_t out_cap, struct sbx_exec_result *out, q_error **err);
int sbx_container_stats(struct sbx_client *c, const char *container_id, struct sbx_stats *out,
                        q_error **err);
/* Whole-pod statistics (container_id NULL in spirit). */
int sbx_pod_stats(struct sbx_client *c, struct sbx_stats *out, q_error **err);

/* Additions (lead wires them into quarkd): */

/* Streaming exec (CRI Exec with stdin, kubectl exec -i): runs argv in the
 * running container. On success *exec_id (malloc'd; the caller frees it)
 * names it for sbx_exec_wait/sbx_exec_kill, and fds get the caller's ends:
 * fds[0] writes the process's stdin (-1 without stdin; closing it is EOF
 * for the process), fds[1]/fds[2] read its stdout/stderr (EOF once it
 * exits). The caller owns and closes the fds. tty: -ENOSYS for now. */
struct sbx_exec_spec {
  const char *const *argv; /* NULL-terminated */
  bool tty, stdin_open;
};
int sbx_exec_start(struct sbx_client *c, const char *container_id, const struct sbx_exec_spec *spec,
                   char **exec_id, int fds[3], q_error **err);
/* Waits for the exec's exit (timeout_ms -1: forever); the first success
 * reaps it (a later wait: -ENOENT). */
int sbx_exec_wait(struct sbx_client *c, const char *exec_id, int timeout_ms, int32_t *exit_code,
                  q_error **err);
/* Signals one exec (terminating signals end it with 128+signo). */
int sbx_exec_kill(struct sbx_client *c, const char *exec_id, int signo, q_error **err);

/* Attach (CRI Attach): fds[0] the container's stdin (when it was created
 * with stdin_open and want_stdin; else -1: a dup each time, except with
 * stdin_once, where the first attach gets the only writer, so its close is
 * the process's EOF, and later ones get none), fds[1]/fds[2] its
 * stdout/stderr from now on, raw (the log file keeps getting them too),
 * EOF when it exits; a client that does not keep up is dropped. At most 8
 * at once (-EMFILE); -EBUSY once the container has exited. The caller owns
 * the fds. tty containers: not yet (create refuses them). */
int sbx_container_attach(struct sbx_client *c, const char *container_id, bool want_stdin, int fds[3],
                         q_error **err);
/* New limits for a container: memory_limit bytes (0: none), enforced by the
 * guest kernel in shared-VM mode (recorded only with one VM per container). */
int sbx_container_update(struct sbx_client *c, const char *container_id, uint64_t memory_limit,
                         q_error **err);
/* Reopens the container's CRI log file at log_path (after log rotation):
 * opened here and passed to the sandbox, whose jail does not see the path;
 * log_path NULL: the sandbox reopens the path it was given (unjailed only). */
int sbx_container_reopen_log(struct sbx_client *c, const char *container_id, const char *log_path,
                             q_error **err);
/* The quark-sandbox process (VMM) of this pod (its cgroup is where resource
 * updates go until the sandbox has an update call), known after create/connect. */
pid_t sbx_client_pid(const struct sbx_client *c);

#endif
