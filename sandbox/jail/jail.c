/* Namespaces, cgroup, mounts and capabilities of the jail (see jail.h). */
#include "jail.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <quark/net.h>

#include "cgroup.h"


/* ---- options ---- */

int sbx_jail_parse_size(const char *s, uint64_t *out)
{
  if (!s || *s < '0' || *s > '9')
    return -EINVAL;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno)
    return -EINVAL;
  unsigned shift = 0;
  switch (*end) {
  case 0:
    break;
  case 'k':
  case 'K':
    shift = 10;
    end++;
    break;
  case 'm':
  case 'M':
    shift = 20;
    end++;
    break;
  case 'g':
  case 'G':
    shift = 30;
    end++;
    break;
  default:
    return -EINVAL;
  }
  if (*end || (shift && v > (UINT64_MAX >> shift)))
    return -EINVAL;
  *out = (uint64_t)v << shift;
  return 0;
}

int sbx_jail_parse_cpus(const char *s, uint64_t *quota_us, uint64_t *period_us)
{
  /* Parsed by hand, not with strtod: the result must not depend on locale
   * or rounding, and 1/100 CPU is the finest step a 100 ms period gives. */
  if (!s || *s < '0' || *s > '9')
    return -EINVAL;
  uint64_t whole = 0, frac = 0;
  const char *p = s;
  for (; *p >= '0' && *p <= '9'; p++) {
    whole = whole * 10 + (uint64_t)(*p - '0');
    if (whole > 1024)
      return -EINVAL;
  }
  if (*p == '.') {
    p++;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
      if (digits >= 2)
        return -EINVAL;
      frac = frac * 10 + (uint64_t)(*p - '0');
    }
    if (!digits)
      return -EINVAL;
    if (digits == 1)
      frac *= 10;
  }
  if (*p)
    return -EINVAL;
  uint64_t hundredths = whole * 100 + frac;
  if (hundredths < 1 || hundredths > 1024 * 100)
    return -EINVAL;
  *period_us = 100000;
  *quota_us = hundredths * 1000;
  return 0;
}

static int add_path(const char **arr, size_t *n, const char *name, const char *v, q_error **err)
{
  /* A relative path is bound at its canonical host path, and the jail
   * keeps the caller's working directory, so it still resolves. */
  if (!v || !v[0])
    return q_error_make(err, EINVAL, "jail %s: empty path", name);
  if (strlen(v) >= PATH_MAX - 64)
    return q_error_make(err, ENAMETOOLONG, "jail %s: path too long", name);
  if (*n >= SBX_JAIL_MAX_PATHS)
    return q_error_make(err, E2BIG, "jail %s: more than %d paths", name, SBX_JAIL_MAX_PATHS);
  arr[(*n)++] = v;
  return 0;
}

static int parse_no(struct sbx_jail_opts *o, const char *v, q_error **err)
{
  static const struct {
    const char *name;
    unsigned flag;
  } parts[] = {{"pidns", SBX_JAIL_NO_PIDNS},
               {"mountns", SBX_JAIL_NO_MOUNTNS},
               {"seccomp", SBX_JAIL_NO_SECCOMP},
               {"caps", SBX_JAIL_NO_CAPS}};
  const char *p = v;
  while (*p) {
    size_t len = strcspn(p, ",");
    size_t i;
    for (i = 0; i < Q_ARRAY_SIZE(parts); i++)
      if (strlen(parts[i].name) == len && !strncmp(parts[i].name, p, len))
        break;
    if (i == Q_ARRAY_SIZE(parts))
      return q_error_make(
          err, EINVAL, "jail no: unknown part '%.*s' (pidns, mountns, seccomp, caps)", (int)len, p);
    o->flags |= parts[i].flag;
    p += len;
    if (*p == ',')
      p++;
  }
  return 0;
}

int sbx_jail_opt(struct sbx_jail_opts *o, const char *name, const char *v, q_error **err)
{
  if (!name || !v)
    return q_error_make(err, EINVAL, "jail option without a name or value");
  if (!strcmp(name, "root"))
    return add_path(o->roots, &o->nroots, name, v, err);
  if (!strcmp(name, "bind-ro"))
    return add_path(o->ro_paths, &o->nro, name, v, err);
  if (!strcmp(name, "bind"))
    return add_path(o->rw_paths, &o->nrw, name, v, err);
  if (!strcmp(name, "cgroup")) {
    char tmp[PATH_MAX];
    if (sbx_cgroup_pod_path(v, "x", tmp, sizeof tmp) < 0 || v[0] == '/')
      return q_error_make(err, EINVAL, "jail cgroup: bad path '%s'", v);
    o->cgroup = v;
    return 0;
  }
  if (!strcmp(name, "netns")) {
    if (v[0] != '/')
      return q_error_make(err, EINVAL, "jail netns: '%s' is not an absolute path", v);
    o->netns = v;
    return 0;
  }
  if (!strcmp(name, "pod-id") || !strcmp(name, "cgroup-parent")) {
    /* Both become one path component of the cgroup tree (the parent may
     * have several): no "..", no empty components. */
    bool parent = name[0] == 'c';
    if (!*v || strstr(v, "..") || (!parent && strchr(v, '/')) || v[0] == '/' ||
        v[strlen(v) - 1] == '/' || strstr(v, "//") || strlen(v) > 200)
      return q_error_make(err, EINVAL, "jail %s: bad name '%s'", name, v);
    if (parent)
      o->cgroup_parent = v;
    else
      o->pod_id = v;
    return 0;
  }
  if (!strcmp(name, "memory")) {
    uint64_t b;
    if (sbx_jail_parse_size(v, &b) < 0 || b < (16ull << 20))
      return q_error_make(err, EINVAL, "jail memory: '%s' (bytes with K/M/G, at least 16M)", v);
    o->memory_limit = b;
    return 0;
  }
  if (!strcmp(name, "cpus")) {
    if (sbx_jail_parse_cpus(v, &o->cpu_quota_us, &o->cpu_period_us) < 0)
      return q_error_make(err, EINVAL, "jail cpus: '%s' (0.01..1024, two decimals at most)", v);
    return 0;
  }
  if (!strcmp(name, "pids")) {
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end || v[0] < '0' || v[0] > '9' || n < 1 || n > (1u << 22))
      return q_error_make(err, EINVAL, "jail pids: '%s' (1..4194304)", v);
    o->pids_limit = n;
    return 0;
  }
  if (!strcmp(name, "no"))
    return parse_no(o, v, err);
  if (!strcmp(name, "mode")) {
    if (strcmp(v, "run") && strcmp(v, "pod"))
      return q_error_make(err, EINVAL, "jail mode: '%s' (run or pod)", v);
    o->flags = v[0] == 'p' ? (o->flags | SBX_JAIL_POD) : (o->flags & ~(unsigned)SBX_JAIL_POD);
    return 0;
  }
  return q_error_make(err, EINVAL, "unknown jail option '%s'", name);
}

/* ---- cgroup (cgroup.h) ---- */

/* The cgroup the jail joins: the given one (pod mode: quarkd made it), or
 * <cgroup-parent>/<pod-id> that the jail makes (run mode). */
static int cgroup_of(const struct sbx_jail_opts *o, char *out, size_t size)
{
  char id[32];
  const char *pod = o->pod_id;
  if (!pod) {
    snprintf(id, sizeof id, "sbx-%d", (int)getpid());
    pod = id;
  }
  int n = o->cgroup ? snprintf(out, size, "%s", o->cgroup)
                    : snprintf(out, size, "%s/%s", o->cgroup_parent, pod);
  return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

static int cgroup_create(const struct sbx_jail_opts *o, q_error **err)
{
  char path[PATH_MAX];
  if (cgroup_of(o, path, sizeof path) < 0)
    return q_error_make(err, ENAMETOOLONG, "cgroup path");
  struct sbx_cgroup_limits l = {.memory = o->memory_limit,
                                .cpu_quota_us = o->cpu_quota_us,
                                .cpu_period_us = o->cpu_period_us,
                                .pids = o->pids_limit};
  return sbx_cgroup_create(path, &l, err);
}

static int cgroup_join(const struct sbx_jail_opts *o, pid_t pid, q_error **err)
{
  char path[PATH_MAX];
  if (cgroup_of(o, path, sizeof path) < 0)
    return q_error_make(err, ENAMETOOLONG, "cgroup path");
  return sbx_cgroup_join(path, pid, err);
}

/* Pod mode with cgroup v2: the supervisor moves the daemon into its cgroup
 * while the daemon goes on with its jail and answers ready (a move through
 * cgroup.procs waits for an RCU grace period: 10-20 ms of a pod start at
 * load 14, see ARCHITECTURE.md; with v1 the daemon moves itself at once,
 * sbx_cgroup_join). The daemon reads the outcome from
 * join_fd (one byte: 0 joined, else an errno) before it creates a guest,
 * whose memory must be charged to the pod. */
static int join_fd = -1;
static int join_result = 1; /* 1: not read yet */
static pthread_mutex_t join_lock = PTHREAD_MUTEX_INITIALIZER;

int sbx_jail_cgroup_wait(q_error **err)
{
  pthread_mutex_lock(&join_lock);
  if (join_fd >= 0 && join_result == 1) {
    unsigned char b = EIO;
    ssize_t n;
    do
      n = read(join_fd, &b, 1);
    while (n < 0 && errno == EINTR);
    join_result = n == 1 ? -(int)b : -EIO;
    close(join_fd);
    join_fd = -1;
  }
  int r = join_result == 1 ? 0 : join_result;
  pthread_mutex_unlock(&join_lock);
  if (r < 0)
    return q_error_make(err, -r, "jail: the supervisor could not move the sandbox into its cgroup");
  return 0;
}

/* After the jailed child is gone: the cgroup is empty and can go. */
static void cgroup_remove(const struct sbx_jail_opts *o)
{
  char path[PATH_MAX];
  q_cleanup_error q_error *err = NULL;
  if (cgroup_of(o, path, sizeof path) == 0 && sbx_cgroup_remove(path, &err) < 0)
    q_warn(o->pod_id, "%s", q_error_msg(err));
}

/* ---- pid namespace and the supervisor ---- */

static pid_t host_pid; /* this process's pid in the caller's namespace (0: not cloned) */

/* Right after the clone, while /proc is still the caller's: the first
 * NSpid field is the pid there. */
static pid_t read_host_pid(void)
{
  q_cleanup_free char *buf = NULL;
  if (q_read_file("/proc/self/status", 1 << 16, &buf, NULL, NULL) < 0)
    return 0;
  const char *p = strstr(buf, "\nNSpid:");
  return p ? (pid_t)strtol(p + 7, NULL, 10) : 0;
}

pid_t sbx_jail_host_pid(void)
{
  return host_pid ? host_pid : getpid();
}

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};

/* Whether the child has a handler for sig (SigCgt of its status). */
static bool catches(pid_t child, int sig)
{
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/status", (int)child);
  q_cleanup_free char *buf = NULL;
  if (q_read_file(path, 1 << 16, &buf, NULL, NULL) < 0)
    return false;
  /* a handler, or blocked (a pod daemon reads SIGTERM from a signalfd) */
  const char *p = strstr(buf, "\nSigCgt:"), *b = strstr(buf, "\nSigBlk:");
  if (!p || !b)
    return false;
  unsigned long long mask = strtoull(p + 8, NULL, 16) | strtoull(b + 8, NULL, 16);
  return (mask >> (sig - 1)) & 1;
}

/* The supervisor: waits for the jailed child and returns its status. The
 * child is pid 1 of its namespace, which ignores every signal it has no
 * handler for, even from an ancestor namespace, except SIGKILL: a
 * termination signal the child handles (a pod daemon's clean stop) is
 * passed on, any other becomes SIGKILL, and the child's end is then
 * reported as the original signal, as if the VMM had been killed by it. */
static int supervise(pid_t child, const sigset_t *old)
{
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  for (size_t i = 0; i < Q_ARRAY_SIZE(forwarded); i++)
    sigaddset(&set, forwarded[i]);
  int sent = 0;
  for (;;) {
    int st;
    pid_t w = waitpid(child, &st, WNOHANG);
    if (w == child) {
      sigprocmask(SIG_SETMASK, old, NULL);
      if (WIFEXITED(st))
        return WEXITSTATUS(st);
      int sig = WTERMSIG(st);
      return 128 + (sig == SIGKILL && sent ? sent : sig);
    }
    if (w < 0 && errno != EINTR)
      return 125;
    siginfo_t si;
    int sig = sigwaitinfo(&set, &si);
    if (sig > 0 && sig != SIGCHLD) {
      sent = sig;
      kill(child, catches(child, sig) ? sig : SIGKILL);
    }
  }
}

/* ---- mount namespace ---- */

static int mount_err(q_error **err, const char *what, const char *path)
{
  return q_error_make(err, errno, "jail: %s %s", what, path);
}

/* Creates path (a directory, or an empty file when file) under root. */
static int make_target(const char *root, const char *path, bool file, char *out, size_t size,
                       q_error **err)
{
  snprintf(out, size, "%s%s", root, path);
  char parent[PATH_MAX];
  snprintf(parent, sizeof parent, "%s", out);
  char *slash = strrchr(parent, '/');
  if (slash && slash != parent)
    *slash = 0;
  int r = q_mkdir_p(file ? parent : out, 0755, err);
  if (r < 0)
    return r;
  if (file) {
    int fd = open(out, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      return mount_err(err, "create", out);
    close(fd);
  }
  return 0;
}

enum bind_kind { BIND_ROOT, BIND_RO, BIND_RW, BIND_DEV };

/* Binds the object behind fd (opened O_PATH before the new root hid its
 * host path) at the same path under root. */
static int bind_at(const char *root, const char *path, int fd, enum bind_kind kind, q_error **err)
{
  struct stat st;
  if (fstat(fd, &st) < 0)
    return mount_err(err, "stat", path);
  char target[PATH_MAX], src[64], canon[PATH_MAX];
  if (path[0] != '/') {
    /* The fd's own path: the host tree, even where the tmpfs now covers it. */
    snprintf(src, sizeof src, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(src, canon, sizeof canon - 1);
    if (n <= 0 || canon[0] != '/')
      return mount_err(err, "resolve", path);
    canon[n] = 0;
    path = canon;
  }
  int r = make_target(root, path, !S_ISDIR(st.st_mode), target, sizeof target, err);
  if (r < 0)
    return r;
  snprintf(src, sizeof src, "/proc/self/fd/%d", fd);
  unsigned long rec = kind == BIND_ROOT ? MS_REC : 0;
  if (mount(src, target, NULL, MS_BIND | rec, NULL) < 0)
    return mount_err(err, "bind", path);
  unsigned long fl = MS_REMOUNT | MS_BIND | MS_NOSUID;
  switch (kind) {
  case BIND_DEV:
    fl |= MS_NOEXEC;
    break;
  case BIND_RO:
    fl |= MS_RDONLY | MS_NODEV | MS_NOEXEC;
    break;
  default:
    /* A device node in an image must not reach a host device through the
     * host-backed rootfs. Not noexec: the guest kernel asks the host
     * (faccessat X_OK) whether a file may be executed, and a noexec mount
     * answers EACCES for every program; the host itself never executes
     * or maps as code anything there (no PROT_EXEC after set-up). */
    fl |= MS_NODEV;
    break;
  }
  if (mount(NULL, target, NULL, fl, NULL) < 0)
    return mount_err(err, "remount", path);
  return 0;
}

struct bind_src {
  const char *path;
  enum bind_kind kind;
  int fd;
};

static int mount_jail(const struct sbx_jail_opts *o, q_error **err)
{
  static const char *const devs[] = {"/dev/kvm", "/dev/null", "/dev/urandom"};
  /* Where present: the KVM layer and the boot code test for it to pick the
   * PVM-style paths (forced FSGSBASE, ring-0-emulated flag); without it
   * the guest runs, but ~3x slower per syscall on such hosts. */
  static const char *const optional_ro[] = {"/sys/module/kvm_pvm"};
  struct bind_src src[4 + 3 * SBX_JAIL_MAX_PATHS];
  size_t n = 0;
  int r = 0;
  for (size_t i = 0; i < Q_ARRAY_SIZE(devs); i++)
    src[n++] = (struct bind_src){devs[i], BIND_DEV, -1};
  for (size_t i = 0; i < Q_ARRAY_SIZE(optional_ro); i++)
    if (access(optional_ro[i], F_OK) == 0)
      src[n++] = (struct bind_src){optional_ro[i], BIND_RO, -1};
  for (size_t i = 0; i < o->nroots; i++)
    src[n++] = (struct bind_src){o->roots[i], BIND_ROOT, -1};
  for (size_t i = 0; i < o->nro; i++)
    src[n++] = (struct bind_src){o->ro_paths[i], BIND_RO, -1};
  for (size_t i = 0; i < o->nrw; i++)
    src[n++] = (struct bind_src){o->rw_paths[i], BIND_RW, -1};
  if (unshare(CLONE_NEWNS) < 0) {
    r = mount_err(err, "unshare", "mount namespace");
    goto out;
  }
  /* Slave: nothing done here reaches the host, while the host's unmount
   * of a container root still reaches this namespace. */
  if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) {
    r = mount_err(err, "make slave", "/");
    goto out;
  }
  /* Host paths are opened first, in the new namespace (a bind needs a
   * source mount of the caller's namespace): the tmpfs is mounted over /tmp below,
   * which may hide them. A missing rw file (a stats file) is created. */
  for (size_t i = 0; i < n; i++) {
    src[i].fd = open(src[i].path, O_PATH | O_CLOEXEC);
    if (src[i].fd < 0 && errno == ENOENT && src[i].kind == BIND_RW) {
      int fd = open(src[i].path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd >= 0)
        close(fd);
      src[i].fd = open(src[i].path, O_PATH | O_CLOEXEC);
    }
    if (src[i].fd < 0) {
      r = mount_err(err, "open", src[i].path);
      goto out;
    }
  }
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd) || cwd[0] != '/')
    strcpy(cwd, "/");
  const char *root = "/tmp";
  if (mount("quark-jail", root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=1m") <
      0) {
    r = mount_err(err, "mount tmpfs on", root);
    goto out;
  }
  for (size_t i = 0; i < n; i++)
    if ((r = bind_at(root, src[i].path, src[i].fd, src[i].kind, err)) < 0)
      goto out;
  char target[PATH_MAX];
  if ((r = make_target(root, cwd, false, target, sizeof target, err)) < 0)
    goto out;
  /* A procfs of the new pid namespace only, read-only so that uid 0 cannot
   * write host sysctls through /proc/sys. */
  if ((r = make_target(root, "/proc", false, target, sizeof target, err)) < 0)
    goto out;
  if (mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL) < 0) {
    r = mount_err(err, "mount proc on", target);
    goto out;
  }
  if ((r = make_target(root, "/.old", false, target, sizeof target, err)) < 0)
    goto out;
  if (syscall(SYS_pivot_root, root, target) < 0) {
    r = mount_err(err, "pivot_root", root);
    goto out;
  }
  if (chdir("/") < 0 || umount2("/.old", MNT_DETACH) < 0 || rmdir("/.old") < 0 || chdir(cwd) < 0) {
    r = mount_err(err, "detach old root", "/.old");
    goto out;
  }
  if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
            NULL) < 0) {
    r = mount_err(err, "remount read-only", "/");
    goto out;
  }
out:
  for (size_t i = 0; i < n; i++)
    if (src[i].fd >= 0)
      close(src[i].fd);
  return r;
}

int sbx_jail_enter(struct sbx_jail_opts *o, int *exit_status, q_error **err)
{
  int r;
  bool own_cgroup = o->cgroup_parent && !o->cgroup; /* made (and removed) here */
  if (own_cgroup && (r = cgroup_create(o, err)) < 0)
    return q_error_wrap(err, "jail");
  if (!(o->flags & SBX_JAIL_NO_PIDNS)) {
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    for (size_t i = 0; i < Q_ARRAY_SIZE(forwarded); i++)
      sigaddset(&set, forwarded[i]);
    sigprocmask(SIG_BLOCK, &set, &old);
    int jp[2] = {-1, -1};
    /* v1: the child moves itself, single-threaded, through `tasks`
     * (sbx_cgroup_join: ~0.15 ms, no RCU grace period); v2 has no such
     * path for a process, so there the supervisor moves it meanwhile. */
    bool async_join =
        (o->flags & SBX_JAIL_POD) && (o->cgroup_parent || o->cgroup) && sbx_cgroup_v2();
    if (async_join && pipe2(jp, O_CLOEXEC) < 0) {
      sigprocmask(SIG_SETMASK, &old, NULL);
      return q_error_make(err, errno, "jail: pipe");
    }
    /* clone, not unshare + fork: after unshare the supervisor's own later
     * children (a sanitizer's helper thread at exit) would belong to the
     * new namespace, whose init is gone by then, and fail. Like fork, the
     * child gets a copy-on-write copy (no other thread runs yet). */
    pid_t pid =
        (pid_t)syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWIPC | SIGCHLD, NULL, NULL, NULL, 0);
    if (pid < 0) {
      int e = errno;
      sigprocmask(SIG_SETMASK, &old, NULL);
      if (async_join) {
        close(jp[0]);
        close(jp[1]);
      }
      return q_error_make(err, e, "jail: clone into new pid and ipc namespaces%s",
                          e == EPERM ? " (the jail needs root; --no-jail runs without it)" : "");
    }
    if (pid > 0) {
      /* The supervisor keeps no descriptor of the VMM's: a listening
       * control socket held here would accept connections for a dead
       * daemon until the supervisor ends. It keeps the join's pipe end
       * and logs to stderr (the daemon's log file, if any). */
      q_log_init(NULL, q_log_get_level(), NULL, NULL);
      if (async_join) {
        close(jp[0]);
        if (jp[1] > 3)
          syscall(SYS_close_range, 3u, (unsigned)jp[1] - 1, 0u);
      }
      syscall(SYS_close_range, async_join ? (unsigned)jp[1] + 1 : 3u, ~0u, 0u);
      if (async_join) {
        q_cleanup_error q_error *jerr = NULL;
        int jr = cgroup_join(o, pid, &jerr);
        unsigned char b = jr < 0 ? (unsigned char)(-jr < 256 ? -jr : EIO) : 0;
        if (write(jp[1], &b, 1) != 1 || jr < 0) {
          /* Fail closed: a pod daemon outside its cgroup ends. */
          q_error_log(o->pod_id, "jail: join cgroup: %s",
                      jerr ? q_error_msg(jerr) : "the daemon is gone");
          kill(pid, SIGKILL);
        }
        close(jp[1]);
      }
      *exit_status = supervise(pid, &old);
      if (own_cgroup)
        cgroup_remove(o);
      return 1;
    }
    host_pid = read_host_pid();
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (async_join) {
      close(jp[1]);
      join_fd = jp[0];
    }
    /* The supervisor's death (SIGKILL from a node agent) takes the VMM. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
  } else if (unshare(CLONE_NEWIPC) < 0) {
    return q_error_make(err, errno, "jail: unshare ipc namespace");
  }
  o->t_clone = q_mono_ns();
  if ((o->cgroup_parent || o->cgroup) && join_fd < 0 && (r = cgroup_join(o, 0, err)) < 0)
    return q_error_wrap(err, "jail: join cgroup");
  o->t_cgroup = q_mono_ns();
  if (o->netns && (r = net_netns_enter(o->netns, NULL, err)) < 0)
    return q_error_wrap(err, "jail");
  o->t_netns = q_mono_ns();
  if (!(o->flags & SBX_JAIL_NO_MOUNTNS) && (r = mount_jail(o, err)) < 0)
    return r;
  o->t_mounts = q_mono_ns();
  return 0;
}

/* ---- capabilities ---- */

/* Kept after set-up: the guest's root user works on files of any owner and
 * mode in its host-backed rootfs (read, create, chmod, utimes), which the
 * VMM does for it with openat2 beneath the root. Nothing else: no
 * CAP_SYS_ADMIN (mounts, namespaces), CAP_NET_ADMIN, CAP_SYS_PTRACE,
 * CAP_MKNOD, CAP_SETUID... */
static const int kept_caps[] = {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER,
                                CAP_FSETID};
/* Pod mode keeps CAP_NET_BIND_SERVICE for a guest listening on a port
 * below 1024 in the pod's network namespace, and CAP_SYS_ADMIN only without
 * the mount jail (--jail-no mountns): then the daemon builds container roots
 * itself (rootmount.h: unshare(CLONE_NEWNS) and bind mounts). */
static const int kept_caps_pod[] = {CAP_SYS_ADMIN, CAP_NET_BIND_SERVICE};

static int drop_caps(bool pod, unsigned flags, q_error **err)
{
  uint64_t keep = 0;
  for (size_t i = 0; i < Q_ARRAY_SIZE(kept_caps); i++)
    keep |= 1ull << kept_caps[i];
  for (size_t i = 0; pod && i < Q_ARRAY_SIZE(kept_caps_pod); i++)
    keep |= 1ull << kept_caps_pod[i];
  /* A pod daemon in its mount jail mounts nothing: container roots come
   * built from the client (rootmount.h). */
  if (pod && !(flags & SBX_JAIL_NO_MOUNTNS))
    keep &= ~(1ull << CAP_SYS_ADMIN);
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  for (int c = 0; c <= 63; c++) {
    if (keep & (1ull << c))
      continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
      return q_error_make(err, errno, "jail: drop capability %d from the bounding set", c);
  }
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct d[2] = {{0}};
  d[0].effective = d[0].permitted = (uint32_t)keep;
  d[1].effective = d[1].permitted = (uint32_t)(keep >> 32);
  if (syscall(SYS_capset, &h, d) < 0)
    return q_error_make(err, errno, "jail: capset");
  return 0;
}

/* Capabilities and namespaces are per thread: the jail must be applied
 * while the process has one thread, so that every thread inherits it. */
static int thread_count(void)
{
  DIR *d = opendir("/proc/self/task");
  if (!d)
    return -errno;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n;
}

int sbx_jail_apply(const struct sbx_jail_opts *o, q_error **err)
{
  int n = thread_count();
  if (n > 1)
    return q_error_make(err, EBUSY, "jail: applied with %d threads running (must be 1)", n);
  int r;
  /* a pod daemon in its mount jail builds no container root itself */
  bool helper = (o->flags & SBX_JAIL_POD) && (o->flags & SBX_JAIL_NO_MOUNTNS);
  if (!(o->flags & SBX_JAIL_NO_CAPS) &&
      (r = drop_caps(o->flags & SBX_JAIL_POD, o->flags, err)) < 0)
    return r;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return q_error_make(err, errno, "jail: no_new_privs");
  if (!(o->flags & SBX_JAIL_NO_SECCOMP) &&
      (r = sbx_jail_seccomp_load_helper(o->flags & SBX_JAIL_POD, helper, err)) < 0)
    return r;
  q_debug(o->pod_id, "jail applied: %zu syscalls allowed",
          sbx_jail_seccomp_count_helper(o->flags & SBX_JAIL_POD, helper));
  return 0;
}
