/* `quark-sandbox pod`: the per-pod daemon and its control socket server
 * (protocol in proto.h; containers in pod_ctr.c).
 *
 *   quark-sandbox pod --control SOCK --pod-id ID [--netns PATH] [--memory MiB]
 *                     [--vcpus N] [--log FILE] [--log-level LEVEL]
 *                     [--run-dir DIR] [--kernel FILE] [--hostname NAME]
 *                     [--ready-fd FD] [--shared-vm|--vm-per-container]
 *                     [--cgroup PATH] [--jail-no pidns,mountns,seccomp,caps]
 *
 * The jail (sandbox/jail/jail.h, pod mode): with its control socket bound,
 * it becomes pid 1 of new pid and ipc namespaces under a supervisor, joins
 * the cgroup quarkd made (--cgroup) and the netns, pivots into a read-only
 * root with /dev/kvm and the kernel image only (container roots and log
 * files come as fds, jail/rootmount.h); after set-up capabilities dropped,
 * no_new_privs, seccomp allowlist. --no-seccomp (QUARK_POD_SECCOMP=0)
 * leaves out the filter, QUARK_POD_NAMESPACES=0 the namespaces, --no-jail
 * (QUARK_POD_JAIL=0) all of it, for debugging.
 * --shared-vm (the default): one VM for the whole pod, containers and
 * execs through the guest's control channel; --vm-per-container (or
 * QUARK_POD_SHARED_VM=0): one VM per container and per exec (kept for
 * comparison).
 * It becomes a session leader, binds SOCK (mode 0600; a stale socket is
 * replaced, a live one refused), enters the network namespace with the
 * jail (before any thread), writes one byte to --ready-fd when it
 * accepts connections (exit 125 if nobody reads it any more), and serves every connection on a thread of its own
 * (exec blocks only its connection). SIGTERM/SIGINT or a shutdown request
 * stop every container and end the process (exit 0).
 */
#include "pod.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../guestkernel/abi/qk_abi.h"
#include "../jail/cgroup.h"
#include "../jail/jail.h"
#include "../qcall/ops_tsor.h"
#include "pod_internal.h"
#include "proto.h"

#define EXIT_SANDBOX_FAILURE 125

struct conn {
  struct pod *pod;
  int fd;
};

static atomic_bool g_shutdown;
static int g_wake_fd = -1; /* pipe to the accept loop: a shutdown request */

static json_t *error_reply(int r, const q_error *err)
{
  int e = r < 0 ? -r : EIO;
  return json_pack("{s:i,s:s}", "errno", e, "error", err ? q_error_msg(err) : strerror(e));
}

static json_t *handle(struct pod *p, json_t *req, int *in_fds, int n_in, char **blob,
                      size_t *blob_len, int fds[3])
{
  const char *op = json_string_value(json_object_get(req, "op"));
  const char *id = json_string_value(json_object_get(req, "id"));
  q_cleanup_error q_error *err = NULL;
  json_t *out = json_object();
  int r = 0;
  if (!op) {
    r = q_error_make(&err, EINVAL, "request without op");
  } else if (!strcmp(op, "hello")) {
    json_object_set_new(out, "pod_id", json_string(p->id));
    json_object_set_new(out, "pid", json_integer(sbx_jail_host_pid()));
    json_object_set_new(out, "version", json_integer(SBX_PROTO_VERSION));
  } else if (!strcmp(op, "create")) {
    r = pod_ctr_create(p, req, in_fds, n_in, &err);
  } else if (!strcmp(op, "start")) {
    r = pod_ctr_start(p, id, &err);
  } else if (!strcmp(op, "signal")) {
    r = pod_ctr_signal(p, id, (int)json_integer_value(json_object_get(req, "signo")), &err);
  } else if (!strcmp(op, "wait") || !strcmp(op, "status")) {
    json_t *t = json_object_get(req, "timeout_ms");
    json_int_t ms = !strcmp(op, "status") ? 0 : json_is_integer(t) ? json_integer_value(t) : -1;
    if ((t && !json_is_integer(t)) || ms < -1 || ms > INT32_MAX)
      r = q_error_make(&err, EINVAL, "timeout_ms: an integer from -1 wanted");
    else
      r = pod_ctr_wait(p, id, (int)ms, out, &err);
  } else if (!strcmp(op, "delete")) {
    r = pod_ctr_delete(p, id, &err);
  } else if (!strcmp(op, "exec")) {
    r = pod_ctr_exec(p, id, req, out, blob, blob_len, &err);
  } else if (!strcmp(op, "attach")) {
    r = pod_ctr_attach(p, id, json_is_true(json_object_get(req, "stdin")), fds, &err);
  } else if (!strcmp(op, "exec_start")) {
    r = pod_exec_start(p, id, req, out, fds, &err);
  } else if (!strcmp(op, "exec_wait")) {
    json_t *t = json_object_get(req, "timeout_ms");
    json_int_t ms = json_is_integer(t) ? json_integer_value(t) : -1;
    if ((t && !json_is_integer(t)) || ms < -1 || ms > INT32_MAX)
      r = q_error_make(&err, EINVAL, "timeout_ms: an integer from -1 wanted");
    else
      r = pod_exec_wait(p, json_string_value(json_object_get(req, "exec_id")), (int)ms, out, &err);
  } else if (!strcmp(op, "exec_kill")) {
    r = pod_exec_kill(p, json_string_value(json_object_get(req, "exec_id")),
                      (int)json_integer_value(json_object_get(req, "signo")), &err);
  } else if (!strcmp(op, "stats")) {
    r = pod_ctr_stats(p, id, out, &err);
  } else if (!strcmp(op, "update")) {
    r = pod_ctr_update(p, id, req, &err);
  } else if (!strcmp(op, "reopen_log")) {
    r = pod_ctr_reopen_log(p, id, req, in_fds, n_in, &err);
  } else if (!strcmp(op, "shutdown")) {
    pod_ctr_stop_all(p);
    atomic_store(&g_shutdown, true);
  } else {
    r = q_error_make(&err, ENOSYS, "unknown op %.64s", op);
  }
  if (r < 0) {
    json_decref(out);
    free(*blob);
    *blob = NULL;
    *blob_len = 0;
    return error_reply(r, err);
  }
  json_object_set_new(out, "ok", json_true());
  return out;
}

static void *conn_thread(void *arg)
{
  struct conn *c = arg;
  for (;;) {
    json_t *req;
    int in_fds[SBX_PROTO_MAX_FDS], n_in = 0;
    int r = sbx_proto_recv(c->fd, &req, NULL, NULL, in_fds, &n_in, -1);
    if (r < 0) {
      if (r != -EPIPE)
        q_warn(c->pod->id, "control connection dropped: %s", strerror(-r));
      break;
    }
    char *blob = NULL;
    size_t blob_len = 0;
    int fds[3] = {-1, -1, -1}, sfds[3], nfds = 0;
    json_t *resp = handle(c->pod, req, in_fds, n_in, &blob, &blob_len, fds);
    json_decref(req);
    for (int i = 0; i < n_in; i++) /* the ones the request did not take */
      if (in_fds[i] >= 0)
        close(in_fds[i]);
    /* Fds travel in order; "fds" says which of stdin/stdout/stderr came. */
    json_t *which = NULL;
    for (int i = 0; i < 3; i++) {
      if (fds[i] < 0)
        continue;
      if (!which)
        which = json_array();
      json_array_append_new(which, json_integer(i));
      sfds[nfds++] = fds[i];
    }
    if (which && resp)
      json_object_set_new(resp, "fds", which);
    else
      json_decref(which);
    r = resp ? sbx_proto_send(c->fd, resp, blob, blob_len, sfds, nfds) : -ENOMEM;
    for (int i = 0; i < nfds; i++)
      close(sfds[i]);
    json_decref(resp);
    free(blob);
    if (atomic_load(&g_shutdown)) {
      if (write(g_wake_fd, "x", 1) < 0) {
        /* the accept loop also polls the flag */
      }
      break;
    }
    if (r < 0)
      break;
  }
  close(c->fd);
  free(c);
  return NULL;
}

/* Whether some process accepts connections on the socket at path. */
static bool socket_live(const char *path)
{
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof a.sun_path)
    return false;
  strcpy(a.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool live = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  if (fd >= 0)
    close(fd);
  return live;
}

/* Binds path with mode 0600; a socket nobody answers on is stale. */
static int bind_control(const char *path, q_error **err)
{
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof a.sun_path)
    return q_error_make(err, ENAMETOOLONG, "control socket path %s", path);
  strcpy(a.sun_path, path);
  if (socket_live(path))
    return q_error_make(err, EADDRINUSE, "a sandbox already serves %s", path);
  unlink(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return q_error_make(err, errno, "socket");
  mode_t old = umask(0177);
  int r = bind(fd, (struct sockaddr *)&a, sizeof a);
  umask(old);
  if (r < 0 || chmod(path, 0600) < 0 || listen(fd, 64) < 0) {
    r = q_error_make(err, errno, "bind %s", path);
    close(fd);
    return r;
  }
  return fd;
}

/* Whether this process is detached already: the session leader itself,
 * or in the leader's group of a session whose leader is gone and which has
 * no controlling terminal (quarkd's spawn: its middle child made the
 * session and exited). setsid is then left out: with autogroup it makes a
 * new scheduler group, and the task waits for a CPU in it (setsid alone
 * took 1-11 ms at load 11). */
static bool detached(void)
{
  pid_t sid = getsid(0);
  if (sid == getpid())
    return true;
  if (sid <= 0 || sid != getpgrp() || kill(sid, 0) == 0 || errno != ESRCH)
    return false;
  int fd = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
  if (fd >= 0) {
    close(fd);
    return false;
  }
  return true;
}

/* <run_dir>/boot-root: an empty directory, O_PATH; -1 if it cannot be
 * made (the VM then boots at the first create). */
static int open_boot_root(const char *run_dir)
{
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/boot-root", run_dir) >= (int)sizeof path ||
      (mkdir(path, 0500) < 0 && errno != EEXIST))
    return -1;
  return open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

static void usage(FILE *f)
{
  fprintf(
      f,
      "usage: quark-sandbox pod --control SOCK --pod-id ID [--netns PATH] [--memory MiB] [--vcpus "
      "N]\n"
      "                        [--log FILE] [--log-level LEVEL] [--run-dir DIR] [--kernel FILE]\n"
      "                        [--hostname NAME] [--ready-fd FD] "
      "[--kernel-worker|--no-kernel-worker]\n"
      "                        [--shared-vm|--vm-per-container] [--no-seccomp] [--no-jail]\n"
      "                        [--cgroup PATH] [--jail-no pidns,mountns,seccomp,caps]\n"
      "                        [--tsor SOCKET --tsor-ip IP [--tsor-cidr CIDR,...]]\n");
}

int sbx_pod_main(int argc, char **argv)
{
  static const struct option opts[] = {
      {"control", required_argument, NULL, 'S'},
      {"pod-id", required_argument, NULL, 'p'},
      {"netns", required_argument, NULL, 'n'},
      {"memory", required_argument, NULL, 'm'},
      {"vcpus", required_argument, NULL, 'c'},
      {"log", required_argument, NULL, 'L'},
      {"log-level", required_argument, NULL, 'l'},
      {"run-dir", required_argument, NULL, 'R'},
      {"kernel", required_argument, NULL, 'k'},
      {"hostname", required_argument, NULL, 'H'},
      {"ready-fd", required_argument, NULL, 'r'},
      {"kernel-worker", no_argument, NULL, 'W'},
      {"no-kernel-worker", no_argument, NULL, 'N'},
      {"shared-vm", no_argument, NULL, 'V'},
      {"vm-per-container", no_argument, NULL, 'v'},
      {"tsor", required_argument, NULL, 'T'}, /* TSoR (qcall/ops_tsor.h) */
      {"tsor-ip", required_argument, NULL, 'I'},
      {"tsor-cidr", required_argument, NULL, 'C'},
      {"no-seccomp", no_argument, NULL, 'X'}, /* host-side jail (jail.h) */
      {"no-jail", no_argument, NULL, 'J'},
      {"jail-no", required_argument, NULL, 'j'}, /* parts: pidns,mountns,seccomp,caps */
      {"cgroup", required_argument, NULL, 'G'},  /* made by quarkd (jail/cgroup.h) */
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *sock = NULL, *netns = NULL, *log = NULL, *run_dir = NULL, *hostname = NULL;
  const char *tsor_sock = NULL, *tsor_ip = NULL, *tsor_cidr = NULL; /* TSoR: off unless --tsor */
  char kernel[PATH_MAX] = "";
  struct pod pod = {.vcpus = 1, .mem_bytes = 256ull << 20, .boot_root = -1};
  const char *kw = getenv("QUARK_KERNEL_WORKER");
  pod.kernel_worker = kw && *kw ? !strcmp(kw, "1") : access("/sys/module/kvm_pvm", F_OK) == 0;
  const char *sv = getenv("QUARK_POD_SHARED_VM");
  pod.shared_vm = !(sv && !strcmp(sv, "0")); /* one VM per pod unless asked otherwise */
  q_log_level lvl = q_log_get_level();
  int ready_fd = -1, c;
  unsigned jail_flags = SBX_JAIL_POD; /* QUARK_POD_SECCOMP=0, QUARK_POD_JAIL=0: see README */
  struct sbx_jail_opts jo = {0};
  const char *cgroup = NULL;
  /* Phase times for the log (CLOCK_MONOTONIC ns): entry, control socket
   * bound, jail entered (jo.t_*), jail applied. */
  uint64_t t_main = q_mono_ns(), t_bound = 0, t_jail0 = 0, t_applied = 0;
  const char *je = getenv("QUARK_POD_SECCOMP");
  if (je && !strcmp(je, "0"))
    jail_flags |= SBX_JAIL_NO_SECCOMP;
  je = getenv("QUARK_POD_NAMESPACES"); /* 0: no pid/ipc/mount namespaces, no pivot_root */
  if (je && !strcmp(je, "0"))
    jail_flags |= SBX_JAIL_NO_PIDNS | SBX_JAIL_NO_MOUNTNS;
  je = getenv("QUARK_POD_JAIL");
  if (je && !strcmp(je, "0"))
    jail_flags |= SBX_JAIL_NO_SECCOMP | SBX_JAIL_NO_CAPS | SBX_JAIL_NO_PIDNS | SBX_JAIL_NO_MOUNTNS;
  unsigned long v;
  char *end;
  optind = 1;
  while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
    switch (c) {
    case 'S':
      sock = optarg;
      break;
    case 'p':
      pod.id = optarg;
      break;
    case 'n':
      netns = optarg;
      break;
    case 'm':
      errno = 0;
      v = strtoul(optarg, &end, 10);
      if (errno || *end || v < 16 || v > (1ul << 20)) {
        fprintf(stderr, "quark-sandbox: --memory wants MiB in 16..1048576\n");
        return EXIT_SANDBOX_FAILURE;
      }
      pod.mem_bytes = (uint64_t)v << 20;
      break;
    case 'c':
      errno = 0;
      v = strtoul(optarg, &end, 10);
      if (errno || *end || v < 1 || v > QK_MAX_VCPUS) {
        fprintf(stderr, "quark-sandbox: --vcpus wants 1..%u\n", QK_MAX_VCPUS);
        return EXIT_SANDBOX_FAILURE;
      }
      pod.vcpus = (unsigned)v;
      break;
    case 'L':
      log = optarg;
      break;
    case 'l':
      if (q_log_level_parse(optarg, &lvl) < 0) {
        fprintf(stderr, "quark-sandbox: unknown log level %s\n", optarg);
        return EXIT_SANDBOX_FAILURE;
      }
      break;
    case 'R':
      run_dir = optarg;
      break;
    case 'k':
      snprintf(kernel, sizeof kernel, "%s", optarg);
      break;
    case 'H':
      hostname = optarg;
      break;
    case 'r':
      ready_fd = atoi(optarg);
      break;
    case 'W':
      pod.kernel_worker = true;
      break;
    case 'N':
      pod.kernel_worker = false;
      break;
    case 'V':
      pod.shared_vm = true;
      break;
    case 'v':
      pod.shared_vm = false;
      break;
    case 'T':
      tsor_sock = optarg;
      break;
    case 'I':
      tsor_ip = optarg;
      break;
    case 'C':
      tsor_cidr = optarg;
      break;
    case 'X':
      jail_flags |= SBX_JAIL_NO_SECCOMP;
      break;
    case 'J':
      jail_flags |= SBX_JAIL_NO_SECCOMP | SBX_JAIL_NO_CAPS | SBX_JAIL_NO_PIDNS | SBX_JAIL_NO_MOUNTNS;
      break;
    case 'j':
    case 'G': {
      q_cleanup_error q_error *jerr = NULL;
      if (sbx_jail_opt(&jo, c == 'j' ? "no" : "cgroup", optarg, &jerr) < 0) {
        fprintf(stderr, "quark-sandbox: %s\n", q_error_msg(jerr));
        return EXIT_SANDBOX_FAILURE;
      }
      if (c == 'G')
        cgroup = optarg;
      break;
    }
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return EXIT_SANDBOX_FAILURE;
    }
  }
  char sockbuf[PATH_MAX];
  if (!sock && run_dir) {
    snprintf(sockbuf, sizeof sockbuf, "%s/%s", run_dir, SBX_POD_SOCKET_NAME);
    sock = sockbuf;
  }
  if (!sock || !pod.id || optind != argc) {
    usage(stderr);
    return EXIT_SANDBOX_FAILURE;
  }
  if (!kernel[0])
    sbx_default_kernel(kernel, sizeof kernel);
  pod.kernel = kernel;
  pod.hostname = hostname;
  q_cleanup_error q_error *err = NULL;
  if (log && q_log_init(log, lvl, "sandbox", &err) < 0) {
    fprintf(stderr, "quark-sandbox: %s\n", q_error_msg(err));
    return EXIT_SANDBOX_FAILURE;
  }
  q_log_set_level(lvl);
  /* A daemon: its own session (quarkd's signals and terminal are not its),
   * stdio away from the caller. */
  if (!detached())
    setsid();
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    /* stderr into the log: the jail's "blocked host syscall" lines and
     * sanitizer reports land there */
    int lfd = log ? open(log, O_WRONLY | O_APPEND | O_CLOEXEC) : -1;
    if (log)
      dup2(lfd >= 0 ? lfd : null, STDERR_FILENO);
    if (lfd >= 0)
      close(lfd);
    close(null);
  }
  /* The control socket is bound before the jail hides the run dir; the
   * jail (jail.h, pod mode) then makes this process pid 1 of new pid and
   * ipc namespaces under a supervisor, joins the pod's cgroup and netns and
   * pivots into a read-only root with /dev/kvm, the kernel image and the
   * tsord socket only. */
  int lfd = bind_control(sock, &err);
  t_bound = q_mono_ns();
  struct stat bound = {0};
  if (lfd < 0 || stat(sock, &bound) < 0) {
    q_error_log(pod.id, "%s", lfd < 0 ? q_error_msg(err) : strerror(errno));
    return EXIT_SANDBOX_FAILURE;
  }
  /* The pod VM's boot process gets an empty directory of the run dir as
   * its root (vm_boot_early), opened before the jail hides the run dir. */
  if (run_dir && pod.shared_vm)
    pod.boot_root = open_boot_root(run_dir);
  jail_flags |= jo.flags;
  jo.flags = jail_flags;
  jo.pod_id = pod.id;
  jo.cgroup = cgroup;
  jo.netns = netns;
  jo.ro_paths[jo.nro++] = kernel;
  if (tsor_sock)
    jo.rw_paths[jo.nrw++] = tsor_sock;
  if ((jail_flags & (SBX_JAIL_NO_PIDNS | SBX_JAIL_NO_MOUNTNS)) !=
      (SBX_JAIL_NO_PIDNS | SBX_JAIL_NO_MOUNTNS)) {
    t_jail0 = q_mono_ns();
    int status = 0, jr = sbx_jail_enter(&jo, &status, &err);
    if (jr < 0) {
      q_error_log(pod.id, "%s", q_error_msg(err));
      return EXIT_SANDBOX_FAILURE;
    }
    if (jr == 1) { /* the supervisor, after the daemon ended (the jail hid the path) */
      /* Not a newer sandbox's socket at the same path: the inode check
       * alone is not enough (a new socket can get the number of the one
       * the client already removed, and the new sandbox lost its socket
       * and its starter with it), so a socket someone answers on stays. */
      struct stat now;
      if (stat(sock, &now) == 0 && now.st_dev == bound.st_dev && now.st_ino == bound.st_ino &&
          !socket_live(sock))
        unlink(sock);
      return status;
    }
  } else {
    if (cgroup && sbx_cgroup_join(cgroup, 0, &err) < 0) {
      q_error_log(pod.id, "%s", q_error_msg(err));
      return EXIT_SANDBOX_FAILURE;
    }
    if (netns) {
      int nfd = open(netns, O_RDONLY | O_CLOEXEC);
      if (nfd < 0 || setns(nfd, CLONE_NEWNET) < 0) {
        q_error_log(pod.id, "enter network namespace %s: %s", netns, strerror(errno));
        return EXIT_SANDBOX_FAILURE;
      }
      close(nfd);
    }
  }
  /* TSoR: the pod's sockets to TSoR pods go through tsord (qcall/ops_tsor.h). */
  if (tsor_sock && sbx_tsor_setup(tsor_sock, tsor_ip, tsor_cidr, &err) < 0) {
    q_error_log(pod.id, "%s", q_error_msg(err));
    return EXIT_SANDBOX_FAILURE;
  }
  pthread_mutex_init(&pod.lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&pod.changed, &ca);
  pthread_condattr_destroy(&ca);
  /* SIGUSR1 stops vCPU threads (kvm/vm.c); every other thread blocks it,
   * and SIGTERM/SIGINT come through a signalfd. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  sigdelset(&set, SIGUSR1);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  int wake[2];
  if (sfd < 0 || pipe2(wake, O_CLOEXEC | O_NONBLOCK) < 0) {
    q_error_log(pod.id, "signalfd/pipe: %s", strerror(errno));
    return EXIT_SANDBOX_FAILURE;
  }
  g_wake_fd = wake[1];
  /* The rest of the jail, while this is the only thread (jail.h):
   * capabilities, no_new_privs and the pod seccomp allowlist. */
  if ((jail_flags & (SBX_JAIL_NO_SECCOMP | SBX_JAIL_NO_CAPS)) !=
          (SBX_JAIL_NO_SECCOMP | SBX_JAIL_NO_CAPS) &&
      sbx_jail_apply(&jo, &err) < 0) {
    q_error_log(pod.id, "%s", q_error_msg(err));
    return EXIT_SANDBOX_FAILURE;
  }
  t_applied = q_mono_ns();
  /* ms from the entry: socket bound, clone, cgroup, netns, mounts, applied */
#define PH(t) ((t) ? (double)((t)-t_main) / 1e6 : -1.0)
  q_info(pod.id,
         "pod sandbox serving %s (pid %d, %llu MiB per guest, kernel %s, seccomp %s, "
         "namespaces %.3f ms; ms from start: bound %.2f clone %.2f cgroup %.2f netns %.2f "
         "mounts %.2f jail applied %.2f)",
         sock, (int)sbx_jail_host_pid(), (unsigned long long)(pod.mem_bytes >> 20), kernel,
         jail_flags & SBX_JAIL_NO_SECCOMP ? "off" : "on",
         jo.t_mounts ? (double)(jo.t_mounts - t_jail0) / 1e6 : 0.0, PH(t_bound), PH(jo.t_clone),
         PH(jo.t_cgroup), PH(jo.t_netns), PH(jo.t_mounts), PH(t_applied));
#undef PH
  if (ready_fd >= 0) {
    /* The caller gave up waiting (quarkd's RunPodSandbox timed out and
     * rolled the pod back): nobody will ever use or stop this sandbox. */
    bool gone = write(ready_fd, "R", 1) < 0 && errno == EPIPE;
    close(ready_fd);
    if (gone) {
      q_warn(pod.id, "nobody waits for this sandbox any more (ready pipe closed): exiting");
      unlink(sock);
      close(lfd);
      return EXIT_SANDBOX_FAILURE;
    }
  }
  /* Boots the pod VM while quarkd answers RunPodSandbox: the first
   * create waits for it instead of booting it (pod_vm.c). */
  vm_boot_early(&pod);
  while (!atomic_load(&g_shutdown)) {
    struct pollfd pf[3] = {{lfd, POLLIN, 0}, {sfd, POLLIN, 0}, {wake[0], POLLIN, 0}};
    if (poll(pf, 3, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (pf[1].revents) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        q_info(pod.id, "signal %u: stopping the pod", si.ssi_signo);
        pod_ctr_stop_all(&pod);
        break;
      }
    }
    if (pf[0].revents & POLLIN) {
      int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
      if (cfd < 0)
        continue;
      struct conn *cn = malloc(sizeof *cn);
      pthread_t t;
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      if (!cn) {
        close(cfd);
      } else {
        *cn = (struct conn){&pod, cfd};
        if (pthread_create(&t, &attr, conn_thread, cn) != 0) {
          close(cfd);
          free(cn);
        }
      }
      pthread_attr_destroy(&attr);
    }
  }
  /* The socket goes first: a reconnecting client must not find a dying
   * sandbox. Guests have stopped; connection threads die with the process. */
  unlink(sock);
  close(lfd);
  q_info(pod.id, "pod sandbox exits");
  return 0;
}
