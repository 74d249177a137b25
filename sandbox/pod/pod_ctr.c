/* The pod's containers: root filesystems with their bind mounts, CRI log
 * sinks, and either one guest per container and per exec (the default) or
 * one shared pod VM driven through qk_ctl (pod->shared_vm: --shared-vm,
 * QUARK_POD_SHARED_VM=1; in pod_vm.c). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../guestkernel/abi/qk_abi.h" /* QK_SEC_* */
#include "../jail/jail.h"
#include "../jail/rootmount.h"
#include "../kvm/vm.h"
#include "pod_internal.h"

#define MAX_ARGS 65536
#define SBX_EXEC_MAX_CAP (16u << 20)


int openat2_in_root(int root, const char *path, int flags, mode_t mode)
{
  return sbx_openat2_in_root(root, path, flags, mode);
}

static void free_strv(char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free(v[i]);
  free(v);
}

/* A JSON array of strings as a NULL-terminated vector (NULL: not one). */
static char **strv_from_json(json_t *a, size_t *n, bool allow_empty)
{
  if (!json_is_array(a) || json_array_size(a) > MAX_ARGS ||
      (!allow_empty && json_array_size(a) == 0))
    return NULL;
  size_t k = json_array_size(a);
  char **v = calloc(k + 2, sizeof *v); /* +1 room for a default PATH */
  if (!v)
    return NULL;
  for (size_t i = 0; i < k; i++) {
    json_t *s = json_array_get(a, i);
    if (!json_is_string(s) || !(v[i] = strdup(json_string_value(s)))) {
      free_strv(v);
      return NULL;
    }
  }
  *n = k;
  return v;
}

static bool valid_id(const char *id)
{
  size_t n = id ? strlen(id) : 0;
  if (n == 0 || n > 64)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z') ||
          (id[i] >= 'A' && id[i] <= 'Z') || id[i] == '-' || id[i] == '_'))
      return false;
  return true;
}

/* Under p->lock. */
struct ctr *pod_find_ctr(struct pod *p, const char *id)
{
  for (size_t i = 0; id && i < p->n_ctrs; i++)
    if (!strcmp(p->ctrs[i]->id, id))
      return p->ctrs[i];
  return NULL;
}

static void ctr_free(struct ctr *c)
{
  if (!c)
    return;
  vm_ctr_release(c);
  sbx_guest_sec_free(&c->sec);
  if (c->rootfd >= 0)
    close(c->rootfd);
  if (c->mntns >= 0)
    close(c->mntns);
  if (c->log_fd >= 0)
    close(c->log_fd);
  for (int i = 0; i < 2; i++)
    if (c->stdin_sp[i] >= 0)
      close(c->stdin_sp[i]);
  for (unsigned i = 0; i < c->n_attach; i++) {
    close(c->attach[i][0]);
    close(c->attach[i][1]);
  }
  free_strv(c->argv);
  free_strv(c->envp);
  free(c->cwd);
  free(c->log_path);
  free(c->pend[0]);
  free(c->pend[1]);
  pthread_mutex_destroy(&c->log_lock);
  free(c);
}

/* ---- CRI log sink ---- */

static void log_record(struct ctr *c, const char *ts, int stream, bool full, const char *msg,
                       size_t len)
{
  struct iovec out[5] = {{(void *)ts, strlen(ts)},
                         {stream == 1 ? " stdout " : " stderr ", 8},
                         {full ? "F " : "P ", 2},
                         {(void *)msg, len},
                         {"\n", 1}};
  if (c->log_fd >= 0 && writev(c->log_fd, out, 5) < 0)
    q_warn(c->pod->id, "container %.12s log: %s", c->id, strerror(errno));
}

/* One record per line: "<RFC3339Nano> <stream> F <line>"; a line longer
 * than 16 KiB as P records of 16 KiB, then the rest. Under log_lock. */
static void log_emit(struct ctr *c, int stream, const char *buf, size_t total, bool flush)
{
  char ts[40];
  q_format_rfc3339nano(q_now_ns(), ts);
  int s = stream == 1 ? 0 : 1;
  size_t pos = 0;
  while (pos < total) {
    const char *nl = memchr(buf + pos, '\n', total - pos);
    size_t line = nl ? (size_t)(nl - (buf + pos)) : total - pos;
    if (line >= CRI_LOG_MAX_LINE) {
      log_record(c, ts, stream, false, buf + pos, CRI_LOG_MAX_LINE);
      pos += CRI_LOG_MAX_LINE;
      continue;
    }
    if (!nl) {
      if (flush) {
        log_record(c, ts, stream, true, buf + pos, line);
      } else {
        memcpy(c->pend[s], buf + pos, line); /* line < 16 KiB: fits */
        c->pend_len[s] = line;
      }
      return;
    }
    log_record(c, ts, stream, true, buf + pos, line);
    pos += line + 1;
  }
}

ssize_t log_sink(void *ctx, int stream, const struct iovec *iov, int cnt)
{
  struct ctr *c = ctx;
  int s = stream == 1 ? 0 : 1;
  pthread_mutex_lock(&c->log_lock);
  size_t total = c->pend_len[s];
  for (int i = 0; i < cnt; i++)
    total += iov[i].iov_len;
  char *buf = malloc(total ? total : 1);
  if (!buf) {
    pthread_mutex_unlock(&c->log_lock);
    return -ENOMEM;
  }
  size_t off = c->pend_len[s];
  if (off) /* pend is NULL for a container without a log that never wrote a partial line */
    memcpy(buf, c->pend[s], off);
  for (int i = 0; i < cnt; i++) {
    memcpy(buf + off, iov[i].iov_base, iov[i].iov_len);
    off += iov[i].iov_len;
  }
  size_t taken = total - c->pend_len[s];
  /* Attached clients get the bytes as written; a slow or gone one is
   * dropped rather than allowed to stall the guest. */
  for (unsigned i = 0; i < c->n_attach;) {
    ssize_t w = send(c->attach[i][s], buf + c->pend_len[s], taken, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w == (ssize_t)taken || taken == 0) {
      i++;
      continue;
    }
    close(c->attach[i][0]);
    close(c->attach[i][1]);
    c->attach[i][0] = c->attach[--c->n_attach][0];
    c->attach[i][1] = c->attach[c->n_attach][1];
  }
  c->pend_len[s] = 0;
  log_emit(c, stream, buf, total, false);
  pthread_mutex_unlock(&c->log_lock);
  free(buf);
  return (ssize_t)taken;
}

/* The container exited: its unterminated tails become lines. */
void log_flush(struct ctr *c)
{
  pthread_mutex_lock(&c->log_lock);
  for (int s = 0; s < 2; s++) {
    size_t n = c->pend_len[s];
    c->pend_len[s] = 0;
    if (n)
      log_emit(c, s + 1, c->pend[s], n, true);
  }
  for (unsigned i = 0; i < c->n_attach; i++) {
    close(c->attach[i][0]);
    close(c->attach[i][1]);
  }
  c->n_attach = 0;
  c->exited_io = true;
  pthread_mutex_unlock(&c->log_lock);
}

/* The descriptor the request names under key (taken from fds), -1 when it
 * names none, -EBADF when it names one that did not come. */
static int passed_fd(json_t *req, const char *key, int *fds, int nfds)
{
  json_t *k = json_object_get(req, key);
  if (!k)
    return -1;
  json_int_t i = json_integer_value(k);
  if (!json_is_integer(k) || i < 0 || i >= nfds || fds[i] < 0)
    return -EBADF;
  int fd = fds[i];
  fds[i] = -1;
  return fd;
}

static int open_log(const char *path)
{
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
  return fd < 0 ? -errno : fd;
}

/* ---- create, start, signal, wait, delete ---- */

/* The pod VM slot of container id, which must run (pid mode TARGET). */
static int target_cid(struct pod *p, const char *id, int *out, q_error **err)
{
  if (!p->shared_vm)
    return q_error_make(err, ENOSYS, "pid mode TARGET needs the pod VM mode (--shared-vm)");
  if (!valid_id(id))
    return q_error_make(err, EINVAL, "pidns_target: a container id wanted");
  pthread_mutex_lock(&p->lock);
  struct ctr *t = pod_find_ctr(p, id);
  enum pod_state st = t ? t->state : CTR_EXITED;
  int cid = t ? t->cid : -1;
  pthread_mutex_unlock(&p->lock);
  if (!t)
    return q_error_make(err, ENOENT, "target container %.64s is not in this pod", id);
  if (st != CTR_RUNNING || cid < 0)
    return q_error_make(err, ESRCH, "target container %.64s is not running", id);
  *out = cid;
  return 0;
}

int pod_ctr_create(struct pod *p, json_t *req, int *fds, int nfds, q_error **err)
{
  const char *id = json_string_value(json_object_get(req, "id"));
  const char *rootfs = json_string_value(json_object_get(req, "rootfs"));
  const char *cwd = json_string_value(json_object_get(req, "cwd"));
  const char *log = json_string_value(json_object_get(req, "log"));
  json_t *mounts = json_object_get(req, "mounts");
  if (!valid_id(id))
    return q_error_make(err, EINVAL, "container id: 1..64 of [0-9A-Za-z_-] wanted");
  if (!rootfs || rootfs[0] != '/')
    return q_error_make(err, EINVAL, "rootfs: an absolute path wanted");
  if (cwd && cwd[0] != '/')
    return q_error_make(err, EINVAL, "cwd: an absolute path wanted");
  if (mounts && !json_is_array(mounts))
    return q_error_make(err, EINVAL, "mounts: an array wanted");
  json_int_t uid = json_integer_value(json_object_get(req, "uid")),
             gid = json_integer_value(json_object_get(req, "gid"));
  if (uid < 0 || uid > UINT32_MAX || gid < 0 || gid > UINT32_MAX)
    return q_error_make(err, EINVAL, "uid/gid out of range");
  json_t *ml = json_object_get(req, "memory_limit");
  if (ml && (!json_is_integer(ml) || json_integer_value(ml) < 0))
    return q_error_make(err, EINVAL, "memory_limit: bytes (0: none) wanted");
  json_t *pl = json_object_get(req, "pids_limit");
  if (pl && (!json_is_integer(pl) || json_integer_value(pl) < 0 ||
             json_integer_value(pl) > UINT32_MAX))
    return q_error_make(err, EINVAL, "pids_limit: a number of tasks (0: none) wanted");
  /* tty (pod VM only): stdin_sp is one two-way stream, the guest's terminal
   * as fds 0-2; its output goes to the log and attach as stdout. */
  bool tty = json_is_true(json_object_get(req, "tty"));
  if (tty && !p->shared_vm)
    return q_error_make(err, ENOSYS, "tty containers need the pod VM mode (--shared-vm)");
  struct ctr *c = calloc(1, sizeof *c);
  if (!c)
    return q_error_make(err, ENOMEM, "container");
  c->pod = p;
  c->rootfd = c->mntns = c->log_fd = -1;
  c->stdin_sp[0] = c->stdin_sp[1] = -1;
  c->cid = -1;
  c->pidns_target = -1;
  c->hfd[0] = c->hfd[1] = c->hfd[2] = c->hfd[3] = -1;
  c->io[0] = c->io[1] = -1;
  pthread_mutex_init(&c->log_lock, NULL);
  snprintf(c->id, sizeof c->id, "%s", id);
  c->uid = (uint32_t)uid;
  c->gid = (uint32_t)gid;
  c->mem_limit = ml ? (uint64_t)json_integer_value(ml) : 0;
  c->pids_limit = pl ? (uint32_t)json_integer_value(pl) : 0;
  int r;
  if ((r = sbx_guest_sec_from_json(&c->sec, req, err)) < 0) /* jail/guest_sec.h */
    goto fail;
  if (!(c->argv = strv_from_json(json_object_get(req, "argv"), &c->argc, false))) {
    r = q_error_make(err, EINVAL, "argv: a non-empty array of strings wanted");
    goto fail;
  }
  json_t *envj = json_object_get(req, "envp"), *empty = json_array();
  c->envp = strv_from_json(envj ? envj : empty, &c->envc, true);
  json_decref(empty);
  if (!c->envp) {
    r = q_error_make(err, EINVAL, "envp: an array of strings wanted");
    goto fail;
  }
  bool have_path = false;
  for (size_t i = 0; i < c->envc; i++)
    have_path |= !strncmp(c->envp[i], "PATH=", 5);
  if (!have_path && !(c->envp[c->envc++] = strdup(DEFAULT_PATH))) {
    r = q_error_make(err, ENOMEM, "env");
    goto fail;
  }
  if (!(c->cwd = strdup(cwd ? cwd : "/"))) {
    r = q_error_make(err, ENOMEM, "cwd");
    goto fail;
  }
  if (log && *log) {
    if (!(c->log_path = strdup(log))) {
      r = q_error_make(err, ENOMEM, "log");
      goto fail;
    }
    if (!(c->pend[0] = malloc(CRI_LOG_MAX_LINE)) || !(c->pend[1] = malloc(CRI_LOG_MAX_LINE))) {
      r = q_error_make(err, ENOMEM, "log buffers");
      goto fail;
    }
    c->log_fd = passed_fd(req, "fd_log", fds, nfds);
    if (c->log_fd == -1)
      c->log_fd = open_log(log);
    if (c->log_fd < 0) {
      r = q_error_make(err, -c->log_fd, "open log %s", log);
      goto fail;
    }
  }
  bool ro_root = (c->sec.flags & QK_SEC_RO_ROOT) != 0, rw_mount = false;
  for (size_t i = 0; ro_root && mounts && i < json_array_size(mounts); i++)
    rw_mount |= !json_is_true(json_object_get(json_array_get(mounts, i), "ro"));
  if (rw_mount) /* the guest cannot tell its writable mounts: the host mount enforces */
    c->sec.flags = (c->sec.flags & ~QK_SEC_RO_ROOT) | QK_SEC_RO_ROOT_HOST;
  json_t *masked = json_object_get(req, "masked_paths"),
         *ropaths = json_object_get(req, "readonly_paths");
  json_t *lists[2] = {masked, ropaths};
  for (int l = 0; l < 2; l++) {
    size_t i;
    json_t *v;
    if (lists[l] && !json_is_array(lists[l])) {
      r = q_error_make(err, EINVAL, "%s: an array wanted", l ? "readonly_paths" : "masked_paths");
      goto fail;
    }
    json_array_foreach(lists[l], i, v)
    {
      if (!json_is_string(v) || json_string_value(v)[0] != '/') {
        r = q_error_make(err, EINVAL, "%s[%zu]: an absolute path wanted",
                         l ? "readonly_paths" : "masked_paths", i);
        goto fail;
      }
    }
  }
  /* The root comes built from the client (jail/rootmount.h): the jailed
   * daemon sees no host path. Without it (an unjailed daemon, older
   * clients) the daemon builds it itself. */
  c->rootfd = passed_fd(req, "fd_root", fds, nfds);
  c->mntns = passed_fd(req, "fd_mntns", fds, nfds);
  if (c->rootfd == -EBADF || c->mntns == -EBADF) {
    r = q_error_make(err, EBADF, "fd_root/fd_mntns name no descriptor of the request");
    goto fail;
  }
  if (c->rootfd < 0 && c->mntns >= 0) {
    close(c->mntns);
    c->mntns = -1;
  }
  if (c->rootfd < 0 && (r = sbx_root_open(rootfs, mounts, ro_root, masked, ropaths, &c->rootfd,
                                          &c->mntns, err)) < 0)
    goto fail;
  c->tty = tty;
  if ((tty || json_is_true(json_object_get(req, "stdin"))) &&
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c->stdin_sp) < 0) {
    r = q_error_make(err, errno, "stdin socketpair");
    goto fail;
  }
  c->stdin_once = json_is_true(json_object_get(req, "stdin_once"));
  /* CRI pid mode POD (shareProcessNamespace): the pod VM's shared pid
   * namespace. One VM per container has none to share: its own, as before. */
  json_t *pidns = json_object_get(req, "pidns");
  c->pidns_pod = json_is_string(pidns) && !strcmp(json_string_value(pidns), "pod");
  /* CRI pid mode TARGET (kubectl debug --target): the namespace of a
   * running container of this pod VM; the guest checks again. */
  if (json_is_string(pidns) && !strcmp(json_string_value(pidns), "target") &&
      (r = target_cid(p, json_string_value(json_object_get(req, "pidns_target")),
                      &c->pidns_target, err)) < 0)
    goto fail;
  if (p->shared_vm) {
    pthread_mutex_lock(&p->lock);
    bool dup = pod_find_ctr(p, id) != NULL;
    pthread_mutex_unlock(&p->lock);
    if (dup) {
      r = q_error_make(err, EEXIST, "container %s exists", id);
      goto fail;
    }
    if ((r = vm_ctr_create(p, c, err)) < 0)
      goto fail;
  }
  pthread_mutex_lock(&p->lock);
  if (pod_find_ctr(p, id)) {
    pthread_mutex_unlock(&p->lock);
    r = q_error_make(err, EEXIST, "container %s exists", id);
    goto fail;
  }
  struct ctr **nv = realloc(p->ctrs, (p->n_ctrs + 1) * sizeof *nv);
  if (!nv) {
    pthread_mutex_unlock(&p->lock);
    r = q_error_make(err, ENOMEM, "containers");
    goto fail;
  }
  p->ctrs = nv;
  p->ctrs[p->n_ctrs++] = c;
  pthread_mutex_unlock(&p->lock);
  q_info(p->id, "container %.12s created (%s)", id, c->argv[0]);
  return 0;
fail:
  ctr_free(c);
  return r;
}

/* The guest configuration every VM of the pod shares for container c running
 * argv: the pod's kernel, memory and vCPUs, c's root, environment, cwd and
 * ids; with_sec adds c's security settings (its groups, capabilities and
 * seccomp program, jail/guest_sec.h). Callers add stdio and callbacks. */
void pod_guest_config(const struct pod *p, const struct ctr *c, char *const *argv, size_t argc,
                      bool with_sec, struct sbx_guest_config *gc)
{
  *gc = (struct sbx_guest_config){
      .kernel = p->kernel,
      .rootfd = c->rootfd,
      .argv = (const char *const *)argv,
      .argc = argc,
      .envp = (const char *const *)c->envp,
      .envc = c->envc,
      .cwd = c->cwd,
      .uid = c->uid,
      .gid = c->gid,
      .mem_bytes = p->mem_bytes,
      .vcpus = p->vcpus,
      .kernel_worker = p->kernel_worker,
      .hostname = p->hostname,
      .pod_id = p->id,
      .stdio = {-1, -1, -1},
  };
  if (with_sec) {
    gc->sec_flags = c->sec.flags;
    gc->caps = c->sec.caps;
    gc->groups = c->sec.ngroups ? c->sec.groups : NULL;
    gc->ngroups = c->sec.ngroups;
    gc->seccomp = c->sec.bpf;
    gc->seccomp_len = c->sec.bpf_len;
  }
}

int pod_guest_create(const struct sbx_guest_config *gc, struct sbx_guest **g, q_error **err)
{
  uint64_t t0 = q_mono_ns();
  int r = sbx_jail_cgroup_wait(err);
  uint64_t waited = q_mono_ns() - t0;
  if (waited > 50000) /* the first guest, while the supervisor still moved it */
    q_info(gc->pod_id, "waited %.2f ms for the move into the pod cgroup", (double)waited / 1e6);
  return r < 0 ? r : sbx_guest_create(gc, g, err);
}

/* Under p->lock: a guest for argv in c's root. */
static int new_guest(struct pod *p, struct ctr *c, char *const *argv, size_t argc, int stdin_fd,
                     void *sink_ctx, ssize_t (*sink)(void *, int, const struct iovec *, int),
                     struct sbx_guest **g, q_error **err)
{
  struct sbx_guest_config gc;
  pod_guest_config(p, c, argv, argc, true, &gc);
  gc.stdio[0] = stdin_fd;
  gc.sink_ctx = sink_ctx;
  gc.sink = sink;
  return pod_guest_create(&gc, g, err);
}

static void *ctr_thread(void *arg)
{
  struct ctr *c = arg;
  struct pod *p = c->pod;
  int status = sbx_guest_run(c->guest);
  log_flush(c);
  pthread_mutex_lock(&p->lock);
  struct sbx_guest *g = c->guest;
  c->cpu_ns_done = sbx_guest_cpu_ns(g);
  c->guest = NULL;
  c->state = CTR_EXITED;
  c->exit_code = status;
  c->finished_at = q_now_ns();
  pthread_cond_broadcast(&p->changed);
  pthread_mutex_unlock(&p->lock);
  sbx_guest_destroy(g);
  q_info(p->id, "container %.12s exited with %d", c->id, status);
  return NULL;
}

int pod_ctr_start(struct pod *p, const char *id, q_error **err)
{
  if (p->shared_vm)
    return vm_ctr_start(p, id, err);
  pthread_mutex_lock(&p->lock);
  struct ctr *c = pod_find_ctr(p, id);
  int r;
  if (!c) {
    r = q_error_make(err, ENOENT, "no container %s", id ? id : "");
    goto out;
  }
  if (c->state != CTR_CREATED) {
    r = q_error_make(err, EBUSY, "container %s was started already", id);
    goto out;
  }
  if ((r = new_guest(p, c, c->argv, c->argc, c->stdin_sp[1], c, log_sink, &c->guest, err)) < 0)
    goto out;
  c->state = CTR_RUNNING;
  c->started_at = q_now_ns();
  if ((r = pthread_create(&c->thread, NULL, ctr_thread, c)) != 0) {
    sbx_guest_destroy(c->guest);
    c->guest = NULL;
    c->state = CTR_CREATED;
    c->started_at = 0;
    r = q_error_make(err, r, "container thread");
    goto out;
  }
  r = 0;
out:
  pthread_mutex_unlock(&p->lock);
  return r;
}

/* Stops a guest. A QCall worker blocked reading a stdin socket would keep
 * the stop waiting for input: shutting the socket down ends that read. */
static void stop_guest(struct sbx_guest *g, int status, int stdin_fd)
{
  sbx_guest_stop(g, status);
  if (stdin_fd >= 0)
    shutdown(stdin_fd, SHUT_RDWR);
}

/* Signals whose default action is to ignore (or continue): no effect on a
 * guest that cannot deliver signals yet. */
bool sig_ignored(int s)
{
  return s == SIGCHLD || s == SIGCONT || s == SIGURG || s == SIGWINCH;
}

int pod_ctr_signal(struct pod *p, const char *id, int signo, q_error **err)
{
  if (signo < 1 || signo > 64)
    return q_error_make(err, EINVAL, "signal %d", signo);
  /* One VM per pod: the guest kernel stops and continues the process (job
   * control); a guest per container only ends or ignores. */
  if (p->shared_vm)
    return vm_ctr_signal(p, id, signo, err);
  if (signo == SIGSTOP || signo == SIGTSTP || signo == SIGTTIN || signo == SIGTTOU)
    return q_error_make(err, ENOSYS, "stopping a container needs the pod VM mode");
  pthread_mutex_lock(&p->lock);
  struct ctr *c = pod_find_ctr(p, id);
  int r = 0;
  if (!c)
    r = q_error_make(err, ENOENT, "no container %s", id ? id : "");
  else if (c->guest && !sig_ignored(signo))
    stop_guest(c->guest, 128 + signo, c->stdin_sp[1]);
  pthread_mutex_unlock(&p->lock);
  return r;
}

static void status_json(const struct ctr *c, json_t *out)
{
  static const char *const names[] = {"created", "running", "exited"};
  json_object_set_new(out, "state", json_string(names[c->state]));
  json_object_set_new(out, "started_at", json_integer(c->started_at));
  json_object_set_new(out, "finished_at", json_integer(c->finished_at));
  json_object_set_new(out, "exit_code", json_integer(c->exit_code));
  json_object_set_new(out, "oom", json_boolean(c->state == CTR_EXITED && c->vm_oom));
}

int pod_ctr_wait(struct pod *p, const char *id, int timeout_ms, json_t *out, q_error **err)
{
  struct timespec dl;
  clock_gettime(CLOCK_MONOTONIC, &dl);
  if (timeout_ms > 0) {
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
      dl.tv_sec++;
      dl.tv_nsec -= 1000000000;
    }
  }
  pthread_mutex_lock(&p->lock);
  int r = 0;
  for (;;) {
    struct ctr *c = pod_find_ctr(p, id);
    if (!c) {
      r = q_error_make(err, ENOENT, "no container %s", id ? id : "");
      break;
    }
    if (c->state == CTR_EXITED || timeout_ms == 0) {
      status_json(c, out);
      break;
    }
    int w = timeout_ms < 0 ? pthread_cond_wait(&p->changed, &p->lock)
                           : pthread_cond_timedwait(&p->changed, &p->lock, &dl);
    if (w == ETIMEDOUT) {
      r = q_error_make(err, ETIMEDOUT, "container %s still runs", id);
      break;
    }
  }
  pthread_mutex_unlock(&p->lock);
  return r;
}

int pod_ctr_delete(struct pod *p, const char *id, q_error **err)
{
  pthread_mutex_lock(&p->lock);
  struct ctr *c = NULL;
  size_t i;
  for (i = 0; i < p->n_ctrs; i++)
    if (id && !strcmp(p->ctrs[i]->id, id))
      c = p->ctrs[i];
  int r = 0;
  if (!c) {
    r = q_error_make(err, ENOENT, "no container %s", id ? id : "");
  } else if (c->state == CTR_RUNNING) {
    r = q_error_make(err, EBUSY, "container %s runs", id);
  } else {
    for (i = 0; p->ctrs[i] != c; i++)
      ;
    p->ctrs[i] = p->ctrs[--p->n_ctrs];
    /* The pod lives on sbx_pod_main's stack: an empty array left at the
     * exit was a leak to LSan (16 bytes). */
    if (!p->n_ctrs) {
      free(p->ctrs);
      p->ctrs = NULL;
    }
  }
  pthread_mutex_unlock(&p->lock);
  if (c && r == 0) {
    if (c->started_at)
      pthread_join(c->thread, NULL);
    ctr_free(c);
  }
  return r;
}

/* New limits (CRI UpdateContainerResources): the memory limit goes to the
 * guest's accounting in shared-VM mode; with one VM per container it is
 * recorded only (that guest's memory is the VM's size). */
int pod_ctr_update(struct pod *p, const char *id, json_t *req, q_error **err)
{
  json_t *ml = json_object_get(req, "memory_limit");
  if (!json_is_integer(ml) || json_integer_value(ml) < 0)
    return q_error_make(err, EINVAL, "memory_limit: bytes (0: none) wanted");
  uint64_t limit = (uint64_t)json_integer_value(ml);
  if (p->shared_vm)
    return vm_ctr_update(p, id, limit, err);
  pthread_mutex_lock(&p->lock);
  struct ctr *c = pod_find_ctr(p, id);
  if (c)
    c->mem_limit = limit;
  pthread_mutex_unlock(&p->lock);
  return c ? 0 : q_error_make(err, ENOENT, "no container %s", id ? id : "");
}

int pod_ctr_reopen_log(struct pod *p, const char *id, json_t *req, int *fds, int nfds,
                      q_error **err)
{
  int given = passed_fd(req, "fd_log", fds, nfds);
  if (given == -EBADF)
    return q_error_make(err, EBADF, "fd_log names no descriptor of the request");
  pthread_mutex_lock(&p->lock);
  struct ctr *c = pod_find_ctr(p, id);
  int r = 0;
  if (!c) {
    r = q_error_make(err, ENOENT, "no container %s", id ? id : "");
  } else if (!c->log_path) {
    r = q_error_make(err, EINVAL, "container %s has no log file", id);
  } else {
    int fd = given >= 0 ? given : open_log(c->log_path);
    given = -1;
    if (fd < 0) {
      r = q_error_make(err, -fd, "reopen log %s", c->log_path);
    } else {
      pthread_mutex_lock(&c->log_lock);
      close(c->log_fd);
      c->log_fd = fd;
      pthread_mutex_unlock(&c->log_lock);
    }
  }
  pthread_mutex_unlock(&p->lock);
  if (given >= 0)
    close(given);
  return r;
}

static uint64_t self_rss(void)
{
  FILE *f = fopen("/proc/self/statm", "re");
  unsigned long size = 0, res = 0;
  if (f) {
    if (fscanf(f, "%lu %lu", &size, &res) != 2)
      res = 0;
    fclose(f);
  }
  return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

int pod_ctr_stats(struct pod *p, const char *id, json_t *out, q_error **err)
{
  uint64_t cpu = 0, mem = 0;
  int r = 0;
  if (p->shared_vm && id)
    return vm_ctr_stats(p, id, out, err);
  pthread_mutex_lock(&p->lock);
  if (id) {
    struct ctr *c = pod_find_ctr(p, id);
    if (!c) {
      r = q_error_make(err, ENOENT, "no container %s", id);
    } else {
      cpu = c->guest ? sbx_guest_cpu_ns(c->guest) : c->cpu_ns_done;
      mem = c->guest ? sbx_guest_resident(c->guest) : 0;
    }
  } else {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    cpu = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    mem = self_rss();
  }
  pthread_mutex_unlock(&p->lock);
  if (r == 0) {
    json_object_set_new(out, "timestamp", json_integer(q_now_ns()));
    json_object_set_new(out, "cpu_ns", json_integer((json_int_t)cpu));
    json_object_set_new(out, "memory_bytes", json_integer((json_int_t)mem));
  }
  return r;
}

/* ---- exec ---- */

struct capture {
  char *buf[2];
  size_t len[2], cap;
};

ssize_t capture_sink(void *ctx, int stream, const struct iovec *iov, int cnt)
{
  struct capture *k = ctx;
  int s = stream == 1 ? 0 : 1;
  size_t total = 0;
  for (int i = 0; i < cnt; i++) {
    size_t n = iov[i].iov_len;
    total += n;
    if (k->len[s] >= k->cap)
      continue;
    if (n > k->cap - k->len[s])
      n = k->cap - k->len[s];
    char *nb = realloc(k->buf[s], k->len[s] + n + 1);
    if (!nb)
      return -ENOMEM;
    k->buf[s] = nb;
    memcpy(nb + k->len[s], iov[i].iov_base, n);
    k->len[s] += n;
  }
  return (ssize_t)total;
}

struct exec_run {
  struct pod *p;
  struct sbx_guest *g;
  int status;
  bool done;
};

static void *exec_thread(void *arg)
{
  struct exec_run *x = arg;
  int st = sbx_guest_run(x->g);
  pthread_mutex_lock(&x->p->lock);
  x->status = st;
  x->done = true;
  pthread_cond_broadcast(&x->p->changed);
  pthread_mutex_unlock(&x->p->lock);
  return NULL;
}

int pod_ctr_exec(struct pod *p, const char *id, json_t *req, json_t *out, char **buf,
                 size_t *buf_len, q_error **err)
{
  size_t argc = 0;
  char **argv = strv_from_json(json_object_get(req, "argv"), &argc, false);
  if (!argv)
    return q_error_make(err, EINVAL, "argv: a non-empty array of strings wanted");
  json_int_t timeout_ms = json_integer_value(json_object_get(req, "timeout_ms"));
  if (!json_is_integer(json_object_get(req, "timeout_ms")))
    timeout_ms = -1;
  json_int_t cap = json_integer_value(json_object_get(req, "out_cap"));
  if (cap <= 0 || cap > (json_int_t)(SBX_EXEC_MAX_CAP))
    cap = SBX_EXEC_MAX_CAP;
  struct capture k = {.cap = (size_t)cap};
  struct exec_run x = {.p = p};
  int r;
  if (p->shared_vm) {
    r = vm_ctr_exec(p, id, argv, argc, timeout_ms, &k, &x.status, err);
    free_strv(argv);
    if (r < 0) {
      free(k.buf[0]);
      free(k.buf[1]);
      return r;
    }
    goto collected;
  }
  pthread_mutex_lock(&p->lock);
  struct ctr *c = pod_find_ctr(p, id);
  if (!c)
    r = q_error_make(err, ENOENT, "no container %s", id ? id : "");
  else if (c->state != CTR_RUNNING)
    r = q_error_make(err, EBUSY, "container %s is not running", id);
  else
    r = new_guest(p, c, argv, argc, -1, &k, capture_sink, &x.g, err);
  pthread_mutex_unlock(&p->lock);
  free_strv(argv);
  if (r < 0)
    return r;
  pthread_t t;
  if ((r = pthread_create(&t, NULL, exec_thread, &x)) != 0) {
    sbx_guest_destroy(x.g);
    return q_error_make(err, r, "exec thread");
  }
  struct timespec dl;
  clock_gettime(CLOCK_MONOTONIC, &dl);
  if (timeout_ms > 0) {
    dl.tv_sec += (time_t)(timeout_ms / 1000);
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
      dl.tv_sec++;
      dl.tv_nsec -= 1000000000;
    }
  }
  bool timed_out = false;
  pthread_mutex_lock(&p->lock);
  while (!x.done) {
    int w = timeout_ms > 0 ? pthread_cond_timedwait(&p->changed, &p->lock, &dl)
                           : pthread_cond_wait(&p->changed, &p->lock);
    if (w == ETIMEDOUT && !x.done) {
      timed_out = true;
      sbx_guest_stop(x.g, 128 + SIGKILL);
      while (!x.done)
        pthread_cond_wait(&p->changed, &p->lock);
    }
  }
  pthread_mutex_unlock(&p->lock);
  pthread_join(t, NULL);
  sbx_guest_destroy(x.g);
  if (timed_out) {
    free(k.buf[0]);
    free(k.buf[1]);
    return q_error_make(err, ETIMEDOUT, "exec timed out after %lld ms", (long long)timeout_ms);
  }
collected:
  *buf_len = k.len[0] + k.len[1];
  *buf = malloc(*buf_len ? *buf_len : 1);
  if (!*buf) {
    free(k.buf[0]);
    free(k.buf[1]);
    return q_error_make(err, ENOMEM, "exec output");
  }
  if (k.len[0])
    memcpy(*buf, k.buf[0], k.len[0]);
  if (k.len[1])
    memcpy(*buf + k.len[0], k.buf[1], k.len[1]);
  free(k.buf[0]);
  free(k.buf[1]);
  json_object_set_new(out, "exit_code", json_integer(x.status));
  json_object_set_new(out, "out_len", json_integer((json_int_t)k.len[0]));
  json_object_set_new(out, "err_len", json_integer((json_int_t)k.len[1]));
  return 0;
}

/* ---- streaming exec ---- */

static void *stream_exec_thread(void *arg)
{
  struct pod_exec *x = arg;
  int st = sbx_guest_run(x->guest);
  pthread_mutex_lock(&x->pod->lock);
  struct sbx_guest *g = x->guest;
  x->guest = NULL;
  x->status = st;
  x->done = true;
  pthread_cond_broadcast(&x->pod->changed);
  pthread_mutex_unlock(&x->pod->lock);
  /* Its stdio handles close with it: the client reads EOF now, not at wait. */
  sbx_guest_destroy(g);
  q_info(x->pod->id, "exec %s in %.12s exited with %d", x->id, x->cid, st);
  return NULL;
}

/* A streaming exec with a terminal in the pod VM (see pod_exec_start). */
static int pod_exec_start_tty(struct pod *p, const char *id, json_t *req, json_t *out,
                              int fds[3], q_error **err)
{
  size_t argc = 0;
  char **argv = strv_from_json(json_object_get(req, "argv"), &argc, false);
  if (!argv)
    return q_error_make(err, EINVAL, "argv: a non-empty array of strings wanted");
  int sp[2] = {-1, -1}, r = 0;
  struct pod_exec *x = calloc(1, sizeof *x);
  if (!x || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
    r = q_error_make(err, x ? errno : ENOMEM, "exec tty");
    free(x);
    goto out;
  }
  x->pod = p;
  if ((x->stdin_fd = fcntl(sp[1], F_DUPFD_CLOEXEC, 3)) < 0 ||
      (fds[1] = fcntl(sp[0], F_DUPFD_CLOEXEC, 3)) < 0) {
    r = q_error_make(err, errno, "dup tty");
  } else {
    /* The same handle three times is how vm_exec_start knows a terminal. */
    const int gfd[3] = {sp[1], sp[1], sp[1]};
    r = vm_stream_exec(p, id, argv, argc, gfd, x, err);
  }
  if (r == 0) {
    json_object_set_new(out, "exec_id", json_string(x->id));
    fds[0] = sp[0];
    sp[0] = -1;
  } else {
    if (x->stdin_fd >= 0)
      close(x->stdin_fd);
    if (fds[1] >= 0)
      close(fds[1]);
    fds[1] = -1;
    free(x);
  }
out:
  for (int i = 0; i < 2; i++)
    if (sp[i] >= 0)
      close(sp[i]);
  free_strv(argv);
  return r;
}

int pod_exec_start(struct pod *p, const char *id, json_t *req, json_t *out, int fds[3],
                   q_error **err)
{
  fds[0] = fds[1] = fds[2] = -1;
  /* tty (pod VM only): one two-way stream, the guest's terminal (fs/tty.c)
   * as fds 0-2; the caller gets it as fds[0] and a dup as fds[1]. */
  bool tty = json_is_true(json_object_get(req, "tty"));
  if (tty && !p->shared_vm)
    return q_error_make(err, ENOSYS, "exec with a tty needs the pod VM mode (--shared-vm)");
  if (tty)
    return pod_exec_start_tty(p, id, req, out, fds, err);
  size_t argc = 0;
  char **argv = strv_from_json(json_object_get(req, "argv"), &argc, false);
  if (!argv)
    return q_error_make(err, EINVAL, "argv: a non-empty array of strings wanted");
  bool with_stdin = json_is_true(json_object_get(req, "stdin"));
  int sp[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
  int r = 0;
  for (int i = 0; i < 3; i++) {
    if (i == 0 && !with_stdin)
      continue;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp[i]) < 0) {
      r = q_error_make(err, errno, "socketpair");
      goto out;
    }
  }
  /* The guest only reads stdin and only writes stdout/stderr. */
  if (with_stdin)
    shutdown(sp[0][1], SHUT_WR);
  shutdown(sp[1][1], SHUT_RD);
  shutdown(sp[2][1], SHUT_RD);
  struct pod_exec *x = calloc(1, sizeof *x);
  if (!x) {
    r = q_error_make(err, ENOMEM, "exec");
    goto out;
  }
  x->pod = p;
  x->stdin_fd = with_stdin ? fcntl(sp[0][1], F_DUPFD_CLOEXEC, 3) : -1;
  if (p->shared_vm) {
    const int gfd[3] = {with_stdin ? sp[0][1] : -1, sp[1][1], sp[2][1]};
    if (with_stdin && x->stdin_fd < 0)
      r = q_error_make(err, errno, "dup stdin");
    else
      r = vm_stream_exec(p, id, argv, argc, gfd, x, err);
    if (r == 0)
      json_object_set_new(out, "exec_id", json_string(x->id));
    else {
      if (x->stdin_fd >= 0)
        close(x->stdin_fd);
      free(x);
    }
    goto out;
  }
  pthread_mutex_lock(&p->lock);
  struct ctr *c = pod_find_ctr(p, id);
  if (with_stdin && x->stdin_fd < 0) {
    r = q_error_make(err, errno, "dup stdin");
  } else if (!c) {
    r = q_error_make(err, ENOENT, "no container %s", id ? id : "");
  } else if (c->state != CTR_RUNNING) {
    r = q_error_make(err, EBUSY, "container %s is not running", id);
  } else {
    /* With the container's security settings, as every other exec. */
    struct sbx_guest_config gc;
    pod_guest_config(p, c, argv, argc, true, &gc);
    gc.stdio[0] = sp[0][1];
    gc.stdio[1] = sp[1][1];
    gc.stdio[2] = sp[2][1];
    r = pod_guest_create(&gc, &x->guest, err);
  }
  if (r == 0) {
    snprintf(x->id, sizeof x->id, "x%llu", (unsigned long long)++p->exec_seq);
    snprintf(x->cid, sizeof x->cid, "%s", id);
    if ((r = pthread_create(&x->thread, NULL, stream_exec_thread, x)) != 0) {
      sbx_guest_destroy(x->guest);
      r = q_error_make(err, r, "exec thread");
    } else {
      x->next = p->execs;
      p->execs = x;
      json_object_set_new(out, "exec_id", json_string(x->id));
    }
  }
  pthread_mutex_unlock(&p->lock);
  if (r < 0) {
    if (x->stdin_fd >= 0)
      close(x->stdin_fd);
    free(x);
  }
out:
  free_strv(argv);
  /* The guest has its own duplicates (QCall fd table): ours go. */
  for (int i = 0; i < 3; i++) {
    if (sp[i][1] >= 0)
      close(sp[i][1]);
    if (r == 0)
      fds[i] = sp[i][0];
    else if (sp[i][0] >= 0)
      close(sp[i][0]);
  }
  return r;
}

/* Under p->lock. */
static struct pod_exec *find_exec(struct pod *p, const char *xid)
{
  for (struct pod_exec *x = p->execs; xid && x; x = x->next)
    if (!strcmp(x->id, xid))
      return x;
  return NULL;
}

int pod_exec_wait(struct pod *p, const char *xid, int timeout_ms, json_t *out, q_error **err)
{
  struct timespec dl;
  clock_gettime(CLOCK_MONOTONIC, &dl);
  dl.tv_sec += timeout_ms / 1000;
  dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
  if (dl.tv_nsec >= 1000000000) {
    dl.tv_sec++;
    dl.tv_nsec -= 1000000000;
  }
  pthread_mutex_lock(&p->lock);
  struct pod_exec *x = find_exec(p, xid);
  int r = 0;
  while (x && !x->done && r == 0) {
    if (timeout_ms == 0)
      r = ETIMEDOUT;
    else
      r = timeout_ms < 0 ? pthread_cond_wait(&p->changed, &p->lock)
                         : pthread_cond_timedwait(&p->changed, &p->lock, &dl);
    x = find_exec(p, xid);
  }
  if (!x) {
    r = q_error_make(err, ENOENT, "no exec %s", xid ? xid : "");
  } else if (!x->done) {
    r = q_error_make(err, ETIMEDOUT, "exec %s still runs", xid);
  } else {
    json_object_set_new(out, "exit_code", json_integer(x->status));
    /* Reaped: the first successful wait forgets it. */
    for (struct pod_exec **pp = &p->execs; *pp; pp = &(*pp)->next)
      if (*pp == x) {
        *pp = x->next;
        break;
      }
    r = 0;
  }
  pthread_mutex_unlock(&p->lock);
  if (r == 0 && x) {
    if (x->vmx)
      vm_exec_free(p, x);
    else
      pthread_join(x->thread, NULL);
    if (x->stdin_fd >= 0)
      close(x->stdin_fd);
    free(x);
  }
  return r;
}

int pod_exec_kill(struct pod *p, const char *xid, int signo, q_error **err)
{
  if (signo < 1 || signo > 64)
    return q_error_make(err, EINVAL, "signal %d", signo);
  pthread_mutex_lock(&p->lock);
  struct pod_exec *x = find_exec(p, xid);
  int r = 0;
  bool in_vm = false;
  if (!x)
    r = q_error_make(err, ENOENT, "no exec %s", xid ? xid : "");
  else if (x->vmx && !x->done)
    in_vm = true; /* x stays until a wait, which needs done: sent below */
  else if (!x->done && !sig_ignored(signo))
    stop_guest(x->guest, 128 + signo, x->stdin_fd);
  pthread_mutex_unlock(&p->lock);
  if (in_vm)
    vm_exec_kill(p, x, signo);
  return r;
}

int pod_ctr_attach(struct pod *p, const char *id, bool want_stdin, int fds[3], q_error **err)
{
  fds[0] = fds[1] = fds[2] = -1;
  int sp[2][2] = {{-1, -1}, {-1, -1}};
  int r = 0;
  pthread_mutex_lock(&p->lock);
  struct ctr *c = pod_find_ctr(p, id);
  if (!c) {
    r = q_error_make(err, ENOENT, "no container %s", id ? id : "");
    goto out;
  }
  if (c->state == CTR_EXITED) {
    r = q_error_make(err, EBUSY, "container %s has exited", id);
    goto out;
  }
  if (want_stdin && c->stdin_sp[0] >= 0) {
    if (c->stdin_once) {
      fds[0] = c->stdin_sp[0];
      c->stdin_sp[0] = -1;
    } else if ((fds[0] = fcntl(c->stdin_sp[0], F_DUPFD_CLOEXEC, 3)) < 0) {
      r = q_error_make(err, errno, "dup stdin");
      goto out;
    }
  }
  for (int i = 0; i < 2; i++) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp[i]) < 0) {
      r = q_error_make(err, errno, "socketpair");
      goto out;
    }
    shutdown(sp[i][0], SHUT_WR);
    shutdown(sp[i][1], SHUT_RD);
  }
  pthread_mutex_lock(&c->log_lock);
  if (c->exited_io || c->n_attach == SBX_POD_MAX_ATTACH) {
    r = q_error_make(err, c->exited_io ? EBUSY : EMFILE, "container %s: %s", id,
                     c->exited_io ? "has exited" : "too many attached clients");
  } else {
    c->attach[c->n_attach][0] = sp[0][1];
    c->attach[c->n_attach][1] = sp[1][1];
    c->n_attach++;
    fds[1] = sp[0][0];
    fds[2] = sp[1][0];
  }
  pthread_mutex_unlock(&c->log_lock);
out:
  pthread_mutex_unlock(&p->lock);
  if (r < 0) {
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 2; j++)
        if (sp[i][j] >= 0)
          close(sp[i][j]);
    if (fds[0] >= 0)
      close(fds[0]);
    fds[0] = fds[1] = fds[2] = -1;
  }
  return r;
}

void pod_ctr_stop_all(struct pod *p)
{
  pthread_mutex_lock(&p->lock);
  while (p->vm_booting) /* an early boot finishes first, then stops with the rest */
    pthread_cond_wait(&p->changed, &p->lock);
  for (size_t i = 0; i < p->n_ctrs; i++)
    if (p->ctrs[i]->guest)
      stop_guest(p->ctrs[i]->guest, 128 + SIGKILL, p->ctrs[i]->stdin_sp[1]);
  for (struct pod_exec *x = p->execs; x; x = x->next)
    if (!x->done && x->guest)
      stop_guest(x->guest, 128 + SIGKILL, x->stdin_fd);
  if (p->vm) {
    for (size_t i = 0; i < p->n_ctrs; i++)
      if (p->ctrs[i]->stdin_sp[1] >= 0)
        shutdown(p->ctrs[i]->stdin_sp[1], SHUT_RDWR);
    for (struct pod_exec *x = p->execs; x; x = x->next)
      if (x->stdin_fd >= 0)
        shutdown(x->stdin_fd, SHUT_RDWR);
    vm_stop(p);
  }
  for (;;) {
    bool running = false;
    for (size_t i = 0; i < p->n_ctrs; i++)
      running |= p->ctrs[i]->state == CTR_RUNNING;
    if (!running)
      break;
    pthread_cond_wait(&p->changed, &p->lock);
  }
  pthread_mutex_unlock(&p->lock);
}

