/* quark_sbx_client: sbx_client.h over the pod control protocol
 * (sandbox/pod/proto.h). */
#include <quark/sbx_client.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../jail/rootmount.h"
#include "../pod/proto.h"

#define READY_TIMEOUT_MS 30000
#define CALL_TIMEOUT_MS 60000
#define STOP_GRACE_MS 10000

struct sbx_client {
  pthread_mutex_t lock;
  int fd;
  char *socket;
  pid_t pid; /* the sandbox process (from hello) */
};

void sbx_exec_result_clear(struct sbx_exec_result *r)
{
  if (!r)
    return;
  free(r->out);
  free(r->err);
  memset(r, 0, sizeof *r);
}

static int dial(const char *path, int *out)
{
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof a.sun_path)
    return -ENAMETOOLONG;
  strcpy(a.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  *out = fd;
  return 0;
}

/* One request/response. Transport failures are -ESRCH (the sandbox is
 * gone or broke the protocol); the connection is then dropped. Under c->lock. */
static int call_locked(struct sbx_client *c, json_t *req, int timeout_ms, json_t **resp,
                       char **blob, size_t *blob_len, int *fds, int *nfds, q_error **err,
                       const int *sfds, int nsfds)
{
  *resp = NULL;
  if (c->fd < 0) {
    int r = dial(c->socket, &c->fd);
    if (r < 0)
      return q_error_make(err, ESRCH, "sandbox %s: %s", c->socket, strerror(-r));
  }
  int r = sbx_proto_send(c->fd, req, NULL, 0, sfds, nsfds);
  if (r == 0)
    r = sbx_proto_recv(c->fd, resp, blob, blob_len, fds, nfds, timeout_ms);
  if (r < 0) {
    close(c->fd);
    c->fd = -1;
    if (r == -ETIMEDOUT)
      return q_error_make(err, ETIMEDOUT, "sandbox %s did not answer %s", c->socket,
                          json_string_value(json_object_get(req, "op")));
    return q_error_make(err, ESRCH, "sandbox %s: %s", c->socket, strerror(-r));
  }
  json_t *e = json_object_get(*resp, "errno");
  if (json_is_integer(e)) {
    int n = (int)json_integer_value(e);
    if (n <= 0 || n > 4095)
      n = EIO;
    r = q_error_make(err, n, "sandbox: %s",
                     json_string_value(json_object_get(*resp, "error")) ?: strerror(n));
    json_decref(*resp);
    *resp = NULL;
    if (blob) {
      free(*blob);
      *blob = NULL;
    }
    for (int i = 0; nfds && i < *nfds; i++)
      close(fds[i]);
    if (nfds)
      *nfds = 0;
    return r;
  }
  return 0;
}

/* Steals req. */
static int call(struct sbx_client *c, json_t *req, int timeout_ms, json_t **resp, char **blob,
                size_t *blob_len, q_error **err)
{
  if (!req)
    return q_error_make(err, ENOMEM, "request");
  pthread_mutex_lock(&c->lock);
  json_t *tmp = NULL;
  int r = call_locked(c, req, timeout_ms, resp ? resp : &tmp, blob, blob_len, NULL, NULL, err,
                      NULL, 0);
  pthread_mutex_unlock(&c->lock);
  json_decref(tmp);
  json_decref(req);
  return r;
}

/* Like call, and sends fds with the request (closed here either way). */
static int call_with_fds(struct sbx_client *c, json_t *req, int *fds, int nfds, q_error **err)
{
  int r;
  if (!req) {
    r = q_error_make(err, ENOMEM, "request");
  } else {
    json_t *resp = NULL;
    pthread_mutex_lock(&c->lock);
    r = call_locked(c, req, CALL_TIMEOUT_MS, &resp, NULL, NULL, NULL, NULL, err, fds, nfds);
    pthread_mutex_unlock(&c->lock);
    json_decref(resp);
    json_decref(req);
  }
  for (int i = 0; i < nfds; i++)
    close(fds[i]);
  return r;
}

static int open_log(const char *path)
{
  return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
}

static int hello(struct sbx_client *c, q_error **err)
{
  json_t *resp;
  int r = call(c, json_pack("{s:s}", "op", "hello"), CALL_TIMEOUT_MS, &resp, NULL, NULL, err);
  if (r < 0)
    return r;
  c->pid = (pid_t)json_integer_value(json_object_get(resp, "pid"));
  json_int_t v = json_integer_value(json_object_get(resp, "version"));
  json_decref(resp);
  if (v != SBX_PROTO_VERSION)
    return q_error_make(err, EPROTO, "sandbox protocol version %lld, this client speaks %d",
                        (long long)v, SBX_PROTO_VERSION);
  return 0;
}

static struct sbx_client *client_new(const char *sock)
{
  struct sbx_client *c = calloc(1, sizeof *c);
  if (!c || !(c->socket = strdup(sock))) {
    free(c);
    return NULL;
  }
  c->fd = -1;
  pthread_mutex_init(&c->lock, NULL);
  return c;
}

int sbx_client_connect(const char *control_socket, struct sbx_client **out, q_error **err)
{
  *out = NULL;
  if (!control_socket || !*control_socket)
    return q_error_make(err, EINVAL, "no control socket");
  struct sbx_client *c = client_new(control_socket);
  if (!c)
    return q_error_make(err, ENOMEM, "client");
  int r = hello(c, err);
  if (r < 0) {
    sbx_client_close(c);
    return r;
  }
  *out = c;
  return 0;
}

const char *sbx_client_socket(const struct sbx_client *c)
{
  return c ? c->socket : NULL;
}

void sbx_client_close(struct sbx_client *c)
{
  if (!c)
    return;
  if (c->fd >= 0)
    close(c->fd);
  pthread_mutex_destroy(&c->lock);
  free(c->socket);
  free(c);
}

/* The last lines of the sandbox's log, for an error message. */
static void log_tail(const char *path, char *out, size_t size)
{
  out[0] = 0;
  int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
  if (fd < 0)
    return;
  off_t end = lseek(fd, 0, SEEK_END);
  off_t from = end > (off_t)size - 1 ? end - (off_t)size + 1 : 0;
  ssize_t n = pread(fd, out, size - 1, from);
  close(fd);
  out[n > 0 ? n : 0] = 0;
  for (char *p = out; *p; p++)
    if (*p == '\n' && p[1])
      *p = ' ';
}

struct spawn_job {
  const char *binary;
  char *const *argv;
  int ready_fd;
};

#define SPAWN_STACK (64u << 10)

/* The middle child of sbx_client_create's double fork, in quarkd's memory
 * (and its thread's TLS: errno) with every signal blocked, while the
 * calling thread goes on: only system calls that succeed here (no errno
 * written) until the exec. A new session, then the sandbox's process
 * through vfork, which returns here once it has exec'd. Before the exec
 * the sandbox's process drops quarkd's signal handlers (the exec would,
 * but a signal could come first) and unblocks all signals, as the fork
 * and exec did. */
static int spawn_mid(void *arg)
{
  const struct spawn_job *j = arg;
  setsid();
  pid_t p = vfork();
  if (p == 0) {
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int sig = 1; sig < NSIG; sig++) {
      struct sigaction now;
      if (sig == 32 || sig == 33) /* glibc's own: sigaction refuses them */
        continue;
      if (sigaction(sig, NULL, &now) == 0 && now.sa_handler != SIG_DFL && now.sa_handler != SIG_IGN)
        sigaction(sig, &dfl, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    fcntl(j->ready_fd, F_SETFD, 0);
    execv(j->binary, j->argv);
    _exit(127);
  }
  return p < 0 ? 1 : 0;
}

int sbx_client_create(const struct sbx_pod_spec *spec, struct sbx_client **out, q_error **err)
{
  *out = NULL;
  if (!spec || !spec->pod_id || !spec->sandbox_binary || !spec->run_dir)
    return q_error_make(err, EINVAL, "pod spec needs pod_id, sandbox_binary and run_dir");
  char sock[PATH_MAX], mem[32], cpus[32], rfd[32];
  if (snprintf(sock, sizeof sock, "%s/%s", spec->run_dir, SBX_POD_SOCKET_NAME) >=
      (int)sizeof(struct sockaddr_un) - 2)
    return q_error_make(err, ENAMETOOLONG, "control socket path in %s", spec->run_dir);
  if (q_mkdir_p(spec->run_dir, 0700, err) < 0)
    return -EIO;
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) < 0)
    return q_error_make(err, errno, "pipe");
  snprintf(mem, sizeof mem, "%u", spec->memory_mib ? spec->memory_mib : 256);
  snprintf(cpus, sizeof cpus, "%u", spec->vcpus ? spec->vcpus : 1);
  snprintf(rfd, sizeof rfd, "%d", pfd[1]);
  const char *argv[32];
  int n = 0;
  argv[n++] = spec->sandbox_binary;
  argv[n++] = "pod";
  argv[n++] = "--control";
  argv[n++] = sock;
  argv[n++] = "--pod-id";
  argv[n++] = spec->pod_id;
  argv[n++] = "--run-dir";
  argv[n++] = spec->run_dir;
  argv[n++] = "--memory";
  argv[n++] = mem;
  argv[n++] = "--vcpus";
  argv[n++] = cpus;
  argv[n++] = "--ready-fd";
  argv[n++] = rfd;
  if (spec->kernel) {
    argv[n++] = "--kernel";
    argv[n++] = spec->kernel;
  }
  if (spec->netns_path) {
    argv[n++] = "--netns";
    argv[n++] = spec->netns_path;
  }
  if (spec->hostname && *spec->hostname) {
    argv[n++] = "--hostname";
    argv[n++] = spec->hostname;
  }
  if (spec->log_path) {
    argv[n++] = "--log";
    argv[n++] = spec->log_path;
  }
  if (spec->cgroup) {
    argv[n++] = "--cgroup";
    argv[n++] = spec->cgroup;
  }
  if (spec->tsor_socket && spec->tsor_ip) { /* TSoR */
    argv[n++] = "--tsor";
    argv[n++] = spec->tsor_socket;
    argv[n++] = "--tsor-ip";
    argv[n++] = spec->tsor_ip;
    if (spec->tsor_cidrs) {
      argv[n++] = "--tsor-cidr";
      argv[n++] = spec->tsor_cidrs;
    }
  }
  /* QUARK_POD_SHARED_VM=0: one VM per container and exec (kept for
   * comparison); =1 or unset: one VM per pod (containers through the
   * guest's control channel), the sandbox's default. */
  const char *shared = getenv("QUARK_POD_SHARED_VM");
  if (shared && !strcmp(shared, "1"))
    argv[n++] = "--shared-vm";
  else if (shared && !strcmp(shared, "0"))
    argv[n++] = "--vm-per-container";
  argv[n] = NULL;
  /* Double fork: the sandbox is nobody's child (init reaps it), so it
   * outlives quarkd and never lingers as quarkd's zombie. Both children
   * share quarkd's memory until the exec (clone CLONE_VM, then vfork): no
   * page tables of a multithreaded quarkd copied twice per pod, and no
   * copy-on-write faults in quarkd after. This thread does not wait for
   * the middle child (no CLONE_VFORK): it waits for the ready byte, then
   * reaps it; job, argv and the stack stay valid until then. */
  struct spawn_job job = {spec->sandbox_binary, (char *const *)argv, pfd[1]};
  int64_t t0 = q_mono_ns();
  void *stack = sbx_child_stack(SPAWN_STACK);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t mid = !stack ? (errno = ENOMEM, -1)
                     : clone(spawn_mid, (char *)stack + SPAWN_STACK, CLONE_VM | SIGCHLD, &job);
  int e = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (mid < 0) {
    if (stack)
      munmap(stack, SPAWN_STACK);
    close(pfd[0]);
    close(pfd[1]);
    return q_error_make(err, e, "spawn %s", spec->sandbox_binary);
  }
  close(pfd[1]);
  int64_t t1 = q_mono_ns();
  struct pollfd p = {pfd[0], POLLIN, 0};
  char b = 0;
  int pr;
  do
    pr = poll(&p, 1, READY_TIMEOUT_MS);
  while (pr < 0 && errno == EINTR);
  ssize_t got = pr > 0 ? read(pfd[0], &b, 1) : 0;
  close(pfd[0]);
  while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
    ;
  munmap(stack, SPAWN_STACK); /* the middle child has exited */
  if (got != 1 || b != 'R') {
    char tail[512];
    log_tail(spec->log_path, tail, sizeof tail);
    return q_error_make(err, pr == 0 ? ETIMEDOUT : EIO,
                        "quark-sandbox for pod %.12s did not start%s%s", spec->pod_id,
                        tail[0] ? ": " : "", tail);
  }
  int64_t t2 = q_mono_ns();
  int r = sbx_client_connect(sock, out, err);
  q_debug(spec->pod_id, "sandbox process (ms): spawned %.1f, ready byte %.1f, connected %.1f",
          (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6, (double)(q_mono_ns() - t2) / 1e6);
  return r;
}

/* A zombie is gone for us: its reaper (init, after the double fork) may
 * take its time. */
static bool alive(pid_t pid)
{
  if (pid <= 0 || (kill(pid, 0) < 0 && errno != EPERM))
    return false;
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno != ENOENT;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return true;
  buf[n] = 0;
  char *rp = strrchr(buf, ')');
  return !(rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
}

int sbx_client_stop(struct sbx_client *c, int timeout_ms, q_error **err)
{
  if (!c)
    return 0;
  (void)err;
  q_error *e = NULL;
  if (c->pid <= 0)
    hello(c, &e);
  q_error_free(&e);
  int grace = timeout_ms > 0 ? timeout_ms : 0;
  int r = call(c, json_pack("{s:s,s:i}", "op", "shutdown", "timeout_ms", grace),
               grace + STOP_GRACE_MS, NULL, NULL, NULL, &e);
  q_error_free(&e);
  (void)r;
  /* Gone either way: wait for the process, then make sure of it. */
  int64_t until = q_mono_ns() + (int64_t)STOP_GRACE_MS * 1000000;
  while (alive(c->pid) && q_mono_ns() < until) {
    struct timespec ts = {0, 10 * 1000000};
    nanosleep(&ts, NULL);
  }
  if (alive(c->pid)) {
    kill(c->pid, SIGKILL);
    until = q_mono_ns() + 2000000000ll;
    while (alive(c->pid) && q_mono_ns() < until) {
      struct timespec ts = {0, 10 * 1000000};
      nanosleep(&ts, NULL);
    }
  }
  pthread_mutex_lock(&c->lock);
  if (c->fd >= 0) {
    close(c->fd);
    c->fd = -1;
  }
  pthread_mutex_unlock(&c->lock);
  /* A jailed sandbox cannot unlink its socket (its supervisor does, a
   * moment after it died): gone now, it is removed here when nobody
   * answers on it any more, so a reconnect never finds a dead sandbox. */
  int probe = -1;
  if (!alive(c->pid)) {
    int dr = dial(c->socket, &probe);
    if (dr == -ECONNREFUSED)
      unlink(c->socket);
    else if (dr == 0)
      close(probe);
  }
  return 0;
}

static json_t *strv_json(const char *const *v)
{
  json_t *a = json_array();
  for (size_t i = 0; a && v && v[i]; i++)
    json_array_append_new(a, json_string(v[i]));
  return a;
}

static json_t *strn_json(char *const *v, size_t n)
{
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++)
    json_array_append_new(a, json_string(v[i]));
  return a;
}

/* Groups, capabilities, no_new_privs and the seccomp program (hex). */
static int sec_json(json_t *req, const struct sbx_container_spec *s)
{
  json_t *g = json_array();
  for (size_t i = 0; g && i < s->n_groups; i++)
    json_array_append_new(g, json_integer(s->groups[i]));
  char caps[24];
  snprintf(caps, sizeof caps, "%llx", (unsigned long long)s->caps);
  char *hex = malloc(s->seccomp_len * 16 + 1);
  if (!g || !hex) {
    json_decref(g);
    free(hex);
    return -1;
  }
  for (size_t i = 0; i < s->seccomp_len * 8; i++)
    snprintf(hex + 2 * i, 3, "%02x", ((const unsigned char *)s->seccomp)[i]);
  hex[s->seccomp_len * 16] = 0;
  int r = json_object_set_new(req, "groups", g) |
          json_object_set_new(req, "seccomp", json_string(hex)) |
          json_object_set_new(req, "no_new_privs", json_boolean(s->no_new_privs)) |
          json_object_set_new(req, "readonly_rootfs", json_boolean(s->readonly_rootfs)) |
          json_object_set_new(req, "masked_paths", strn_json(s->masked_paths, s->n_masked_paths)) |
          json_object_set_new(req, "readonly_paths",
                              strn_json(s->readonly_paths, s->n_readonly_paths)) |
          (s->caps_set ? json_object_set_new(req, "caps", json_string(caps)) : 0);
  free(hex);
  return r ? -1 : 0;
}

int sbx_container_create(struct sbx_client *c, const struct sbx_container_spec *s, q_error **err)
{
  if (!s || !s->container_id || !s->rootfs || !s->argv || !s->argv[0])
    return q_error_make(err, EINVAL, "container spec needs id, rootfs and argv");
  json_t *mounts = json_array();
  for (size_t i = 0; i < s->n_mounts; i++)
    json_array_append_new(mounts, json_pack("{s:s,s:s,s:b}", "src", s->mounts[i].source, "dst",
                                            s->mounts[i].destination, "ro", s->mounts[i].readonly));
  json_t *req = json_pack(
      "{s:s,s:s,s:s,s:o,s:o,s:s,s:I,s:I,s:o,s:s,s:b,s:b,s:b,s:s}", "op", "create", "id",
      s->container_id, "rootfs", s->rootfs, "argv", strv_json(s->argv), "envp", strv_json(s->envp),
      "cwd", s->cwd ? s->cwd : "/", "uid", (json_int_t)s->uid, "gid", (json_int_t)s->gid, "mounts",
      mounts, "log", s->log_path ? s->log_path : "", "tty", s->tty, "stdin", s->stdin_open,
      "stdin_once", s->stdin_once, "pidns",
      s->pid_ns == SBX_PIDNS_POD      ? "pod"
      : s->pid_ns == SBX_PIDNS_TARGET ? "target"
                                      : "container");
  if (req && s->pid_ns == SBX_PIDNS_TARGET)
    json_object_set_new(req, "pidns_target", json_string(s->pid_target ? s->pid_target : ""));
  if (req && sec_json(req, s) < 0) {
    json_decref(req);
    return q_error_make(err, ENOMEM, "container spec");
  }
  if (req && s->memory_limit)
    json_object_set_new(req, "memory_limit", json_integer((json_int_t)s->memory_limit));
  if (req && s->pids_limit)
    json_object_set_new(req, "pids_limit", json_integer((json_int_t)s->pids_limit));
  if (!req)
    return q_error_make(err, ENOMEM, "container spec");
  /* The root (with its mounts) and the log file are opened here, outside
   * the pod daemon's jail, and travel as fds (README "The jail"). */
  int fds[3] = {-1, -1, -1}, n = 0;
  int64_t t0 = q_mono_ns();
  int r = sbx_root_open_shared(s->rootfs, mounts, s->readonly_rootfs,
                               json_object_get(req, "masked_paths"),
                               json_object_get(req, "readonly_paths"), &fds[0], &fds[1], err);
  if (r == 0 && s->log_path && *s->log_path && (fds[2] = open_log(s->log_path)) < 0)
    r = q_error_make(err, errno, "open log %s", s->log_path);
  if (r < 0) {
    json_decref(req);
    for (int i = 0; i < 3; i++)
      if (fds[i] >= 0)
        close(fds[i]);
    return r;
  }
  int sfds[3];
  const char *keys[3] = {"fd_root", "fd_mntns", "fd_log"};
  for (int i = 0; i < 3; i++)
    if (fds[i] >= 0) {
      json_object_set_new(req, keys[i], json_integer(n));
      sfds[n++] = fds[i];
    }
  int64_t t1 = q_mono_ns();
  r = call_with_fds(c, req, sfds, n, err);
  q_debug(s->container_id, "container root and log %.1f ms, CREATE %.1f ms",
          (double)(t1 - t0) / 1e6, (double)(q_mono_ns() - t1) / 1e6);
  return r;
}

int sbx_container_update(struct sbx_client *c, const char *id, uint64_t memory_limit, q_error **err)
{
  if (!id)
    return q_error_make(err, EINVAL, "no container id");
  if (memory_limit > INT64_MAX)
    return q_error_make(err, EINVAL, "memory limit out of range");
  return call(c,
              json_pack("{s:s,s:s,s:I}", "op", "update", "id", id, "memory_limit",
                        (json_int_t)memory_limit),
              CALL_TIMEOUT_MS, NULL, NULL, NULL, err);
}

static int simple(struct sbx_client *c, const char *op, const char *id, q_error **err)
{
  if (!id)
    return q_error_make(err, EINVAL, "no container id");
  return call(c, json_pack("{s:s,s:s}", "op", op, "id", id), CALL_TIMEOUT_MS, NULL, NULL, NULL,
              err);
}

int sbx_container_start(struct sbx_client *c, const char *id, q_error **err)
{
  return simple(c, "start", id, err);
}
int sbx_container_delete(struct sbx_client *c, const char *id, q_error **err)
{
  return simple(c, "delete", id, err);
}
int sbx_container_reopen_log(struct sbx_client *c, const char *id, const char *log_path,
                             q_error **err)
{
  if (!log_path || !*log_path)
    return simple(c, "reopen_log", id, err);
  if (!id)
    return q_error_make(err, EINVAL, "no container id");
  int fd = open_log(log_path);
  if (fd < 0)
    return q_error_make(err, errno, "reopen log %s", log_path);
  return call_with_fds(c, json_pack("{s:s,s:s,s:i}", "op", "reopen_log", "id", id, "fd_log", 0),
                       &fd, 1, err);
}

int sbx_container_signal(struct sbx_client *c, const char *id, int signo, q_error **err)
{
  if (!id)
    return q_error_make(err, EINVAL, "no container id");
  return call(c, json_pack("{s:s,s:s,s:i}", "op", "signal", "id", id, "signo", signo),
              CALL_TIMEOUT_MS, NULL, NULL, NULL, err);
}

static void parse_status(json_t *j, struct sbx_container_status *out)
{
  const char *st = json_string_value(json_object_get(j, "state"));
  out->state = st && !strcmp(st, "running")  ? SBX_PROC_RUNNING
               : st && !strcmp(st, "exited") ? SBX_PROC_EXITED
                                             : SBX_PROC_CREATED;
  out->started_at = json_integer_value(json_object_get(j, "started_at"));
  out->finished_at = json_integer_value(json_object_get(j, "finished_at"));
  out->exit_code = (int32_t)json_integer_value(json_object_get(j, "exit_code"));
  out->oom_killed = json_is_true(json_object_get(j, "oom"));
}

int sbx_container_wait(struct sbx_client *c, const char *id, int timeout_ms,
                       struct sbx_container_status *out, q_error **err)
{
  if (!id)
    return q_error_make(err, EINVAL, "no container id");
  json_t *resp;
  int r = call(c, json_pack("{s:s,s:s,s:i}", "op", "wait", "id", id, "timeout_ms", timeout_ms),
               timeout_ms < 0 ? -1 : timeout_ms + CALL_TIMEOUT_MS, &resp, NULL, NULL, err);
  if (r < 0)
    return r;
  if (out)
    parse_status(resp, out);
  json_decref(resp);
  return 0;
}

int sbx_container_status(struct sbx_client *c, const char *id, struct sbx_container_status *out,
                         q_error **err)
{
  if (!id)
    return q_error_make(err, EINVAL, "no container id");
  json_t *resp;
  int r = call(c, json_pack("{s:s,s:s}", "op", "status", "id", id), CALL_TIMEOUT_MS, &resp, NULL,
               NULL, err);
  if (r < 0)
    return r;
  if (out)
    parse_status(resp, out);
  json_decref(resp);
  return 0;
}

int sbx_container_exec(struct sbx_client *c, const char *id, const char *const *argv,
                       int timeout_ms, size_t out_cap, struct sbx_exec_result *out, q_error **err)
{
  memset(out, 0, sizeof *out);
  if (!id || !argv || !argv[0])
    return q_error_make(err, EINVAL, "exec needs a container id and argv");
  json_t *resp;
  char *blob = NULL;
  size_t blen = 0;
  int r = call(c,
               json_pack("{s:s,s:s,s:o,s:i,s:I}", "op", "exec", "id", id, "argv", strv_json(argv),
                         "timeout_ms", timeout_ms, "out_cap", (json_int_t)out_cap),
               timeout_ms < 0 ? -1 : timeout_ms + CALL_TIMEOUT_MS, &resp, &blob, &blen, err);
  if (r < 0)
    return r;
  json_int_t ol = json_integer_value(json_object_get(resp, "out_len"));
  json_int_t el = json_integer_value(json_object_get(resp, "err_len"));
  out->exit_code = (int32_t)json_integer_value(json_object_get(resp, "exit_code"));
  json_decref(resp);
  if (ol < 0 || el < 0 || (size_t)ol + (size_t)el != blen) {
    free(blob);
    return q_error_make(err, EPROTO, "exec output lengths do not add up");
  }
  out->out = malloc((size_t)ol + 1);
  out->err = malloc((size_t)el + 1);
  if (!out->out || !out->err) {
    free(blob);
    sbx_exec_result_clear(out);
    return q_error_make(err, ENOMEM, "exec output");
  }
  if (ol)
    memcpy(out->out, blob, (size_t)ol);
  if (el)
    memcpy(out->err, blob + ol, (size_t)el);
  out->out[ol] = out->err[el] = 0;
  out->out_len = (size_t)ol;
  out->err_len = (size_t)el;
  free(blob);
  return 0;
}

static int stats(struct sbx_client *c, const char *id, struct sbx_stats *out, q_error **err)
{
  json_t *req =
      id ? json_pack("{s:s,s:s}", "op", "stats", "id", id) : json_pack("{s:s}", "op", "stats");
  json_t *resp;
  int r = call(c, req, CALL_TIMEOUT_MS, &resp, NULL, NULL, err);
  if (r < 0)
    return r;
  memset(out, 0, sizeof *out);
  out->timestamp = json_integer_value(json_object_get(resp, "timestamp"));
  out->cpu_usage_ns = (uint64_t)json_integer_value(json_object_get(resp, "cpu_ns"));
  uint64_t mem = (uint64_t)json_integer_value(json_object_get(resp, "memory_bytes"));
  out->memory_working_set_bytes = out->memory_usage_bytes = out->memory_rss_bytes = mem;
  out->processes = (uint64_t)json_integer_value(json_object_get(resp, "processes"));
  json_decref(resp);
  return 0;
}

int sbx_container_stats(struct sbx_client *c, const char *id, struct sbx_stats *out, q_error **err)
{
  if (!id)
    return q_error_make(err, EINVAL, "no container id");
  return stats(c, id, out, err);
}

int sbx_pod_stats(struct sbx_client *c, struct sbx_stats *out, q_error **err)
{
  return stats(c, NULL, out, err);
}

pid_t sbx_client_pid(const struct sbx_client *c)
{
  return c ? c->pid : -1;
}

/* A call whose answer carries stdio fds ("fds" names their indices).
 * Steals req; fills fds[3] (-1 where none); *resp kept when resp. */
static int call_fds(struct sbx_client *c, json_t *req, json_t **resp, int fds[3], q_error **err)
{
  fds[0] = fds[1] = fds[2] = -1;
  if (!req)
    return q_error_make(err, ENOMEM, "request");
  json_t *rs = NULL;
  int got[SBX_PROTO_MAX_FDS], ngot = 0;
  pthread_mutex_lock(&c->lock);
  int r = call_locked(c, req, CALL_TIMEOUT_MS, &rs, NULL, NULL, got, &ngot, err, NULL, 0);
  pthread_mutex_unlock(&c->lock);
  json_decref(req);
  if (r < 0)
    return r;
  json_t *which = json_object_get(rs, "fds");
  if (!json_is_array(which) || json_array_size(which) != (size_t)ngot)
    r = q_error_make(err, EPROTO, "answer without its fds");
  for (int i = 0; r == 0 && i < ngot; i++) {
    json_int_t k = json_integer_value(json_array_get(which, (size_t)i));
    if (k < 0 || k > 2 || fds[k] >= 0)
      r = q_error_make(err, EPROTO, "answer fds");
    else
      fds[k] = got[i];
  }
  if (r < 0) {
    for (int i = 0; i < ngot; i++)
      close(got[i]);
    fds[0] = fds[1] = fds[2] = -1;
    json_decref(rs);
    return r;
  }
  if (resp)
    *resp = rs;
  else
    json_decref(rs);
  return 0;
}

int sbx_exec_start(struct sbx_client *c, const char *id, const struct sbx_exec_spec *spec,
                   char **exec_id, int fds[3], q_error **err)
{
  *exec_id = NULL;
  fds[0] = fds[1] = fds[2] = -1;
  if (!id || !spec || !spec->argv || !spec->argv[0])
    return q_error_make(err, EINVAL, "exec needs a container id and argv");
  json_t *resp;
  int r = call_fds(c,
                   json_pack("{s:s,s:s,s:o,s:b,s:b}", "op", "exec_start", "id", id, "argv",
                             strv_json(spec->argv), "stdin", spec->stdin_open, "tty", spec->tty),
                   &resp, fds, err);
  if (r < 0)
    return r;
  const char *xid = json_string_value(json_object_get(resp, "exec_id"));
  if (!xid || !(*exec_id = strdup(xid))) {
    r = q_error_make(err, xid ? ENOMEM : EPROTO, "exec id");
    for (int i = 0; i < 3; i++)
      if (fds[i] >= 0)
        close(fds[i]);
    fds[0] = fds[1] = fds[2] = -1;
  }
  json_decref(resp);
  return r;
}

int sbx_container_attach(struct sbx_client *c, const char *id, bool want_stdin, int fds[3],
                         q_error **err)
{
  fds[0] = fds[1] = fds[2] = -1;
  if (!id)
    return q_error_make(err, EINVAL, "no container id");
  return call_fds(c, json_pack("{s:s,s:s,s:b}", "op", "attach", "id", id, "stdin", want_stdin),
                  NULL, fds, err);
}

int sbx_exec_wait(struct sbx_client *c, const char *exec_id, int timeout_ms, int32_t *exit_code,
                  q_error **err)
{
  if (!exec_id)
    return q_error_make(err, EINVAL, "no exec id");
  json_t *resp;
  int r = call(
      c,
      json_pack("{s:s,s:s,s:i}", "op", "exec_wait", "exec_id", exec_id, "timeout_ms", timeout_ms),
      timeout_ms < 0 ? -1 : timeout_ms + CALL_TIMEOUT_MS, &resp, NULL, NULL, err);
  if (r < 0)
    return r;
  if (exit_code)
    *exit_code = (int32_t)json_integer_value(json_object_get(resp, "exit_code"));
  json_decref(resp);
  return 0;
}

int sbx_exec_kill(struct sbx_client *c, const char *exec_id, int signo, q_error **err)
{
  if (!exec_id)
    return q_error_make(err, EINVAL, "no exec id");
  return call(c, json_pack("{s:s,s:s,s:i}", "op", "exec_kill", "exec_id", exec_id, "signo", signo),
              CALL_TIMEOUT_MS, NULL, NULL, NULL, err);
}
