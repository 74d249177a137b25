/* Shared between the pod server (pod.c) and its containers (pod_ctr.c). */
#ifndef SBX_POD_INTERNAL_H
#define SBX_POD_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <quark/common.h>

#include "../guest.h"
#include "../jail/guest_sec.h"

#define SBX_POD_MAX_ATTACH 8

enum pod_state { CTR_CREATED, CTR_RUNNING, CTR_EXITED };

struct pod;
struct vm_exec;

struct ctr {
  struct pod *pod;
  char id[65];
  int rootfd;  /* O_PATH root of the container (inside mntns when it has mounts) */
  int mntns;   /* private mount namespace holding its bind mounts, or -1 */
  char **argv; /* NULL-terminated, owned */
  char **envp;
  size_t argc, envc;
  char *cwd;
  uint32_t uid, gid;
  struct sbx_guest_sec sec; /* groups, capabilities, no_new_privs, seccomp */
  char *log_path;
  int log_fd;
  pthread_mutex_t log_lock;
  /* Under log_lock: each stream's unterminated tail, held until its
   * newline (a write(2) of half a line is not a line), the 16 KiB limit or
   * the container's exit. */
  char *pend[2];
  size_t pend_len[2];
  /* Under log_lock: attached clients' stdout/stderr sockets (our ends),
   * written raw beside the log; closed at exit (their EOF). */
  int attach[SBX_POD_MAX_ATTACH][2];
  unsigned n_attach;
  bool exited_io; /* no attach after the exit */
  /* stdin_open: the guest's stdin is stdin_sp[1]; attach hands out dups
   * of stdin_sp[0]. */
  int stdin_sp[2];
  bool stdin_once; /* the first attach takes stdin_sp[0] itself: its close is EOF */
  bool tty; /* pod VM only: stdin_sp is the terminal's two-way stream (fs/tty.c) */
  bool pidns_pod; /* pod VM only: in the pod's shared pid namespace ("pidns": "pod") */
  int pidns_target; /* pod VM only: the slot (cid) of the running container whose pid
                       namespace it joins ("pidns": "target", "pidns_target": id); -1: none */
  /* Under pod->lock: */
  enum pod_state state;
  int64_t started_at, finished_at;
  int exit_code;
  struct sbx_guest *guest;
  pthread_t thread;
  bool joined;
  uint64_t cpu_ns_done; /* of the guest that ran, after it stopped */
  /* Shared-VM mode (pod->vm): the container's slot in the pod VM (-1:
   * none), its handles in the VM's host fd table (root, stdin, stdout,
   * stderr; -1: closed) and the read ends of its stdout/stderr pipes,
   * drained into the log sink by c->thread. Under pod->vm->lock: */
  int cid;
  int64_t hfd[4];
  int io[2];
  bool vm_exited;
  int vm_status;
  int forced_status; /* 128+signal: a signal had to shut its stdin down */
  bool vm_oom;       /* its init was killed for its memory limit (QK_CTL_EXIT_OOM) */
  uint64_t mem_limit; /* bytes, 0: none (create's memory_limit, then updates) */
  uint32_t pids_limit; /* tasks in the guest, 0: none (create's pids_limit) */
};

/* A streaming exec: its stdio are socket pairs whose other ends went to
 * the client (SCM_RIGHTS). Under pod->lock. */
struct pod_exec {
  struct pod *pod;
  char id[24];
  char cid[65];
  struct sbx_guest *guest;
  pthread_t thread;
  bool done, waited;
  int status;
  int stdin_fd; /* a dup of the guest's stdin socket (shut down to stop it), or -1 */
  struct vm_exec *vmx; /* shared-VM mode: its exec in the pod VM (no guest, no thread) */
  struct pod_exec *next;
};

struct pod {
  const char *id;
  const char *kernel;
  const char *hostname;
  uint64_t mem_bytes;
  unsigned vcpus;
  bool kernel_worker;
  /* Shared-VM mode: one guest for the whole pod (booted at the first
   * container create, no boot process), driven through the pod control
   * channel (guestkernel/abi/qk_ctl.h); see pod_ctr.c. */
  bool shared_vm;
  struct pod_vm *vm;
  /* Early boot (vm_boot_early): the boot process's root, an empty
   * directory (-1: boot at the first create), and whether a boot thread
   * is still making p->vm (under lock; p->changed when it ends). */
  int boot_root;
  bool vm_booting;
  pthread_mutex_t lock;
  pthread_cond_t changed;
  struct ctr **ctrs;
  size_t n_ctrs;
  unsigned running_execs;
  struct pod_exec *execs;
  uint64_t exec_seq;
};

/* pod_ctr.c; every function takes pod->lock itself unless it says so. */
/* CRI log line limit: longer lines become P records. */
#define CRI_LOG_MAX_LINE (16 * 1024)

/* fds: the descriptors that came with the request (the client's root,
 * mount namespace and log file: "fd_root", "fd_mntns", "fd_log" name their
 * indices); the ones taken are set to -1, the caller closes the rest. */
int pod_ctr_create(struct pod *p, json_t *req, int *fds, int nfds, q_error **err);
int pod_ctr_start(struct pod *p, const char *id, q_error **err);
int pod_ctr_signal(struct pod *p, const char *id, int signo, q_error **err);
/* Waits for the exit (timeout_ms -1 forever), then fills the status. */
int pod_ctr_wait(struct pod *p, const char *id, int timeout_ms, json_t *out, q_error **err);
int pod_ctr_delete(struct pod *p, const char *id, q_error **err);
int pod_ctr_reopen_log(struct pod *p, const char *id, json_t *req, int *fds, int nfds,
                      q_error **err);
int pod_ctr_stats(struct pod *p, const char *id, json_t *out, q_error **err);
/* out_buf: out then err bytes (malloc'd). */
int pod_ctr_exec(struct pod *p, const char *id, json_t *req, json_t *out, char **buf,
                 size_t *buf_len, q_error **err);
/* Streaming exec: fills fds (stdin or -1, stdout, stderr: this process's
 * ends, to send and close) and out's "exec_id". */
int pod_exec_start(struct pod *p, const char *id, json_t *req, json_t *out, int fds[3],
                   q_error **err);
int pod_exec_wait(struct pod *p, const char *exec_id, int timeout_ms, json_t *out, q_error **err);
int pod_exec_kill(struct pod *p, const char *exec_id, int signo, q_error **err);
/* Attach: fds get stdin (when the container has one and want_stdin) or
 * -1, and stdout/stderr read ends of its output from now on. */
int pod_ctr_attach(struct pod *p, const char *id, bool want_stdin, int fds[3], q_error **err);
/* Stops every running guest and joins it (pod shutdown). */
void pod_ctr_stop_all(struct pod *p);

/* Shared-VM mode (pod_vm.c), called by pod_ctr.c. */
struct capture;
int vm_ctr_create(struct pod *p, struct ctr *c, q_error **err);
void vm_ctr_release(struct ctr *c);
int vm_ctr_start(struct pod *p, const char *id, q_error **err);
int vm_ctr_signal(struct pod *p, const char *id, int signo, q_error **err);
int pod_ctr_update(struct pod *p, const char *id, json_t *req, q_error **err);
int vm_ctr_update(struct pod *p, const char *id, uint64_t mem_limit, q_error **err);
int vm_ctr_stats(struct pod *p, const char *id, json_t *out, q_error **err);
int vm_ctr_exec(struct pod *p, const char *id, char **argv, size_t argc,
                json_int_t timeout_ms, struct capture *k, int *status, q_error **err);
int vm_stream_exec(struct pod *p, const char *id, char **argv, size_t argc,
                   const int fds[3], struct pod_exec *x, q_error **err);
int vm_exec_kill(struct pod *p, struct pod_exec *x, int signo);
void vm_exec_free(struct pod *p, struct pod_exec *x);
void vm_stop(struct pod *p);
void vm_boot_early(struct pod *p);


/* pod_ctr.c helpers that the shared-VM mode (pod_vm.c) uses too. */
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
struct sbx_guest_config;
struct sbx_guest;
void pod_guest_config(const struct pod *p, const struct ctr *c, char *const *argv, size_t argc,
                      bool with_sec, struct sbx_guest_config *gc);
/* sbx_guest_create once the daemon is in the pod's cgroup (the supervisor
 * moves it there while the daemon starts: sbx_jail_cgroup_wait). */
int pod_guest_create(const struct sbx_guest_config *gc, struct sbx_guest **g, q_error **err);
int openat2_in_root(int root, const char *path, int flags, mode_t mode);
struct ctr *pod_find_ctr(struct pod *p, const char *id);
ssize_t log_sink(void *ctx, int stream, const struct iovec *iov, int cnt);
void log_flush(struct ctr *c);
bool sig_ignored(int s);
ssize_t capture_sink(void *ctx, int stream, const struct iovec *iov, int cnt);

#endif
