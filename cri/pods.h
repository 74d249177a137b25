/* quarkd's pod and container runtime: the RuntimeService RPCs that change
 * pods and containers (pod_rpc.c, ctr_rpc.c, stats_rpc.c), over the state
 * store (state/state.h), the pod network (quark/net.h), the image store
 * (image.h) and one sandbox per pod (quark/sbx_client.h). Prefix: cri_pods_,
 * cri_spec_.
 *
 * Model:
 * - Every pod record in the store has an entry here while quarkd runs. The
 *   entry holds the pod's sandbox client (NULL when the sandbox is gone or
 *   was never reached) and a mutex that serializes the pod's life-cycle
 *   operations (Run/Stop/Remove pod, Create/Start/Stop/Remove container), so
 *   that a StopPodSandbox never races a CreateContainer in the same pod.
 *   Queries (status, list, stats, exec) do not take it.
 * - The record is the truth across restarts: everything needed to tear a pod
 *   down (netns path, network mode, run dir, control socket) lives in its
 *   `ext` object under the keys below, written before the resource exists
 *   where possible, so a crash in the middle leaves something Remove can
 *   clean up.
 * - A monitor thread polls running containers once a second and records
 *   their exit (state EXITED, exit code, reason Completed/Error/OOMKilled).
 */
#ifndef QUARK_CRI_PODS_H
#define QUARK_CRI_PODS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "quark/net.h"
#include "quark/sbx_client.h"
#include "server.h"
#include "state/state.h"

struct img_store;
struct cri_stream_server;

/* Keys of cri_pod.ext. */
#define POD_EXT_NETNS "NetnsPath"      /* pinned netns, absent for host network */
#define POD_EXT_NETMODE "NetworkMode"  /* "cni", "loopback" or "host" */
#define POD_EXT_NETNOTE "NetworkNote"  /* why a pod got loopback only */
#define POD_EXT_IP "Ip"                /* primary IP ("" when none) */
#define POD_EXT_IPS "AdditionalIps"    /* array of strings */
#define POD_EXT_RUNDIR "RunDir"        /* pod files, rootfs mounts, sandbox log */
#define POD_EXT_SOCKET "ControlSocket" /* the sandbox's control socket */
#define POD_EXT_PORTS "PortMappings"   /* array of {Protocol,ContainerPort,HostPort,HostIp} */
#define POD_EXT_MEMORY "MemoryMiB"
#define POD_EXT_VCPUS "Vcpus"
#define POD_EXT_SBXERR "SandboxError" /* last reason the sandbox could not be reached */
#define POD_EXT_REMOVING "Removing"   /* true: RemovePodSandbox began (pod_reconcile.c) */
#define POD_EXT_PIDMODE "PidMode"     /* "POD" (a shared pid namespace) or "CONTAINER" */
/* A failed RunPodSandbox whose CNI DEL failed too: the DEL's message. The
 * pod stays NOTREADY with its netns until Stop/Remove (or a restart) can
 * DEL it (pod_rpc.c). */
#define POD_EXT_NETPENDING "NetworkTeardownError"

/* Keys of cri_ctr.ext. */
#define CTR_EXT_ROOTFS "Rootfs"
#define CTR_EXT_DIR "Dir" /* per-container files (termination-log) */
#define CTR_EXT_ARGV "Argv"
#define CTR_EXT_ENVN "EnvCount"
#define CTR_EXT_CWD "Cwd"
#define CTR_EXT_UID "Uid"
#define CTR_EXT_GID "Gid"
#define CTR_EXT_MOUNTS "Mounts" /* array of {ContainerPath,HostPath,Readonly} */
#define CTR_EXT_TTY "Tty"
#define CTR_EXT_STDIN "Stdin"
#define CTR_EXT_STOPSIG "StopSignal"
#define CTR_EXT_RES "Resources" /* the last LinuxContainerResources, as JSON */
#define CTR_EXT_REMOVING "Removing" /* true: RemoveContainer began (pod_reconcile.c) */
#define CTR_EXT_PIDMODE "PidMode"   /* "POD", "CONTAINER" or "TARGET" (CreateContainer's) */
#define CTR_EXT_PIDTARGET "PidTarget" /* TARGET: the id of the container whose namespace it joined */

struct cri_pod_entry {
  char id[65];
  pthread_mutex_t op;       /* life-cycle operations of this pod */
  pthread_mutex_t sbx_lock; /* guards sbx and retired (not the calls made through them) */
  struct sbx_client *sbx;
  /* Clients replaced or dropped while the entry lives: another thread may
   * still be inside a call on one (it holds an entry reference), so they
   * are closed only when the last reference goes. */
  struct sbx_client **retired;
  size_t n_retired;
  unsigned refs;
  bool removed;
};

struct cri_pods {
  const struct cri_config *cfg;
  struct cri_state *st;
  net_cni *cni;
  struct img_store *img;
  char *run_root; /* <socket dir>/pods */

  pthread_mutex_t lock;  /* the entry table */
  pthread_mutex_t names; /* RunPodSandbox: name check + new record */
  struct cri_pod_entry **entries;
  size_t n_entries;

  pthread_t monitor;
  bool monitor_started, stopping;
  pthread_cond_t wake;

  struct cri_stream_server *stream; /* exec/port-forward URLs (stream_rpc.c) */
};

/* Sets the runtime up for srv: opens its own handle on the image store
 * (cfg->image_root; the image RPCs keep theirs), the CNI handle, reconnects
 * to every READY pod's sandbox (pods whose sandbox is gone become NOTREADY
 * and their running containers EXITED), registers the pod and container
 * handlers and starts the monitor. Call before cri_server_start. */
int cri_pods_init(struct cri_server *srv, const struct cri_config *cfg, q_error **err);
/* After cri_server_stop: stops the monitor and closes every sandbox client
 * (the sandboxes keep running). */
void cri_pods_fini(struct cri_server *srv);

/* Handlers (registered by cri_pods_init). */
int cri_pod_rpc_register(struct cri_server *srv, q_error **err);
int cri_ctr_rpc_register(struct cri_server *srv, q_error **err);
int cri_stats_rpc_register(struct cri_server *srv, q_error **err);
/* Starts the streaming server (StreamAddress, StreamPort) with the sandbox
 * as its backend and registers Exec, Attach and PortForward. */
int cri_stream_rpc_start(struct cri_server *srv, struct cri_pods *p, q_error **err);
void cri_stream_rpc_stop(struct cri_pods *p);

/* The entry of pod id, created when absent; a reference the caller drops
 * with cri_pods_put. NULL only when out of memory. */
struct cri_pod_entry *cri_pods_get(struct cri_pods *p, const char *id);
void cri_pods_put(struct cri_pods *p, struct cri_pod_entry *e);
/* Drops the entry from the table (RemovePodSandbox); it is freed with its
 * last reference. Closes its sandbox client. */
void cri_pods_forget(struct cri_pods *p, struct cri_pod_entry *e);

/* The pod's sandbox client: the one held, else a reconnect through the
 * record's control socket. NULL when the sandbox cannot be reached (*err
 * says why, -ESRCH/-ENOSYS/...). The client stays owned by the entry. */
struct sbx_client *cri_pods_sbx(struct cri_pods *p, struct cri_pod_entry *e,
                                const struct cri_pod *pod, int *rc, q_error **err);
/* The same whatever the pod's state: Stop and Remove use it so that a
 * sandbox that was only unreachable for a while (the pod was marked
 * NOTREADY) is still stopped rather than orphaned. */
struct sbx_client *cri_pods_sbx_any(struct cri_pods *p, struct cri_pod_entry *e,
                                    const struct cri_pod *pod, int *rc, q_error **err);
/* A connection of the caller's own to the pod's sandbox (close it with
 * sbx_client_close), for calls that may block for long (exec): calls on one
 * client are serialized, so an exec on the shared one would hold up every
 * status and stop of the pod. NULL when it cannot connect (callers then
 * use the shared client). */
struct sbx_client *cri_pods_sbx_private(const struct cri_pod *pod);
/* Replaces the entry's client; the old one is closed with the entry's last
 * reference (callers of cri_pods_sbx hold one while they use it). */
void cri_pods_set_sbx(struct cri_pod_entry *e, struct sbx_client *c);

/* Asks the sandbox for the container's state and records an exit (EXITED,
 * finished_at, exit code, reason). Quiet when the sandbox is unreachable. */
void cri_pods_refresh_ctr(struct cri_pods *p, const char *ctr_id);

/* gRPC code for a negative errno from the sandbox, net or image layers. */
grpc_status_code cri_pods_code(int rc);
/* cri_call_error with the q_error's message (frees it). */
grpc_status_code cri_pods_fail(struct cri_call *call, int rc, q_error **err, const char *what);

/* Removes one container completely: kills it when running, deletes it in
 * the sandbox (when reachable), removes its root filesystem, its files and
 * its record. Idempotent. Caller holds the pod's op lock. */
int cri_pods_remove_ctr(struct cri_pods *p, struct cri_pod_entry *e, const struct cri_pod *pod,
                        const char *ctr_id, q_error **err);

/* ---- restart reconciliation and teardown (pod_reconcile.c) ---- */

/* At start, before the handlers: completes or rolls back what a killed
 * quarkd left half done (see pod_reconcile.c for the rule per step), and
 * removes this quarkd's own leftovers (sandbox processes under run_root,
 * run dirs, mounts, root filesystems without a record). */
void cri_pods_recover(struct cri_pods *p);
/* Removes the pod's containers, network (CNI DEL + netns), run dir (after
 * unmounting what is left below it) and record; *step names the failing
 * step. The sandbox must be stopped already. Caller holds the op lock. */
int cri_pods_teardown(struct cri_pods *p, struct cri_pod_entry *e, const struct cri_pod *pod,
                      const char **step, q_error **err);
/* Marks a pod / container record as being removed (one write: staged for a
 * pod, synced for a container; a no-op when already marked or gone). */
int cri_pods_mark_removing(struct cri_pods *p, const char *pod_id, q_error **err);
int cri_pods_mark_ctr_removing(struct cri_pods *p, const struct cri_ctr *ctr, q_error **err);
/* The sandbox is gone: pod NOTREADY, its unfinished containers EXITED. */
void cri_pods_mark_gone(struct cri_pods *p, const char *pod_id, const char *why);
/* The pinned netns path a pod gets: /var/run/netns/quark-<16 hex of id>. */
void cri_pods_netns_path(const char *pod_id, char out[64]);

/* ---- building the container process (ctr_spec.c; pure, unit-tested) ---- */

/* Kubernetes' rule: command replaces the image's entrypoint and drops its
 * cmd; args replace the image's cmd. *out is NULL-terminated, malloc'd
 * (free with cri_spec_strv_free). -EINVAL when the result is empty. */
int cri_spec_argv(char *const *command, size_t n_command, char *const *args, size_t n_args,
                  char *const *img_entrypoint, char *const *img_cmd, char ***out, q_error **err);
/* Image env, then the config's envs (a later key replaces an earlier one,
 * keeping its position). Keys must be non-empty without '='. */
int cri_spec_env(char *const *img_env, char *const *keys, char *const *values, size_t n,
                 char ***out, q_error **err);
/* Linux exec limits: each string at most 128 KiB (MAX_ARG_STRLEN), argv
 * plus env at most 2 MiB. */
int cri_spec_check_size(char *const *argv, char *const *env, q_error **err);
/* Resolves "user[:group]" (names or ids; names from <rootfs>/etc/passwd and
 * /etc/group read inside the rootfs) to uid/gid, and the user's
 * supplementary groups from /etc/group. A numeric user that is not in
 * /etc/passwd gets gid 0 unless a group is given, as runc does. */
int cri_spec_user(const char *rootfs, const char *user, uint32_t *uid, uint32_t *gid,
                  uint32_t **groups, size_t *n_groups, q_error **err);
/* Checks one CRI mount: absolute container path without "..", absolute
 * host path that exists. */
int cri_spec_check_mount(const char *container_path, const char *host_path, q_error **err);
void cri_spec_strv_free(char **v);
size_t cri_spec_strv_len(char *const *v);
/* The sandbox pid namespace of a container from its CRI NamespaceOption.pid
 * mode (RUNTIME__V1__NAMESPACE_MODE_*: POD, also when unset, the pod's
 * shared one; CONTAINER its own; TARGET that of target_id, whose record is
 * target, NULL when there is none). TARGET's target must be a running
 * container of pod pod_id, as containerd checks: -ENOENT (NOT_FOUND) when
 * there is none, -EINVAL when it is another pod's, -ESRCH (FAILED_PRECONDITION)
 * when it does not run. */
int cri_spec_pid_mode(int mode, const char *target_id, const struct cri_ctr *target,
                      const char *pod_id, enum sbx_pid_ns *out, q_error **err);

/* Writable layer usage: bytes and inodes under dir (no symlinks followed,
 * one filesystem). */
int cri_spec_du(const char *dir, uint64_t *bytes, uint64_t *inodes);

#endif
