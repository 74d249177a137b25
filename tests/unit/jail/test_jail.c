/* Unit tests of the jail: option parsing and the seccomp allowlist, loaded
 * in a forked child (the filter cannot be removed once loaded, and the test
 * runner itself must stay unfiltered). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "jail.h"

/* The pod cgroup's path as quarkd names it (cgroup.h): kubelet's cgroupfs
 * parents, systemd slices expanded, the default parent, and no "..". */
Test(jail_cgroup, pod_path)
{
  char out[512];
  const char *id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  cr_assert_eq(sbx_cgroup_pod_path(NULL, id, out, sizeof out), 0);
  cr_assert_str_eq(out, "quark/quark-0123456789abcdef0123456789abcdef");
  cr_assert_eq(sbx_cgroup_pod_path("/kubepods/burstable/pod-u1", id, out, sizeof out), 0);
  cr_assert_str_eq(out, "kubepods/burstable/pod-u1/quark-0123456789abcdef0123456789abcdef");
  cr_assert_eq(sbx_cgroup_pod_path("kubepods-burstable-podu1.slice", id, out, sizeof out), 0);
  cr_assert_str_eq(out, "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podu1.slice/"
                        "quark-0123456789abcdef0123456789abcdef");
  cr_assert_eq(sbx_cgroup_pod_path("/", id, out, sizeof out), 0);
  cr_assert_str_eq(out, "quark/quark-0123456789abcdef0123456789abcdef");
  cr_assert_eq(sbx_cgroup_pod_path("/a/../b", id, out, sizeof out), -EINVAL);
  cr_assert_eq(sbx_cgroup_pod_path("..", id, out, sizeof out), -EINVAL);
  cr_assert_eq(sbx_cgroup_pod_path("a//b", id, out, sizeof out), -EINVAL);
  cr_assert_eq(sbx_cgroup_pod_path("a", "x/y", out, sizeof out), -EINVAL);
  cr_assert_eq(sbx_cgroup_pod_path("a", id, out, 8), -ENAMETOOLONG);
  /* names with dots that are not ".." components are fine */
  cr_assert_eq(sbx_cgroup_pod_path("/my..pods", id, out, sizeof out), 0);
}

Test(jail_opts, sizes_and_cpus)
{
  uint64_t v, q, p;
  cr_assert_eq(sbx_jail_parse_size("512M", &v), 0);
  cr_assert_eq(v, 512ull << 20);
  cr_assert_eq(sbx_jail_parse_size("3g", &v), 0);
  cr_assert_eq(v, 3ull << 30);
  cr_assert_eq(sbx_jail_parse_size("4096", &v), 0);
  cr_assert_eq(v, 4096);
  cr_assert_eq(sbx_jail_parse_size("-1", &v), -EINVAL);
  cr_assert_eq(sbx_jail_parse_size("1T", &v), -EINVAL);
  cr_assert_eq(sbx_jail_parse_size("12MB", &v), -EINVAL);
  cr_assert_eq(sbx_jail_parse_size("99999999999999999999G", &v), -EINVAL);
  cr_assert_eq(sbx_jail_parse_size("17179869184G", &v), -EINVAL); /* 2^34 G overflows */
  cr_assert_eq(sbx_jail_parse_cpus("1.5", &q, &p), 0);
  cr_assert_eq(q, 150000);
  cr_assert_eq(p, 100000);
  cr_assert_eq(sbx_jail_parse_cpus("0.25", &q, &p), 0);
  cr_assert_eq(q, 25000);
  cr_assert_eq(sbx_jail_parse_cpus("2", &q, &p), 0);
  cr_assert_eq(q, 200000);
  cr_assert_eq(sbx_jail_parse_cpus("0", &q, &p), -EINVAL);
  cr_assert_eq(sbx_jail_parse_cpus("0.001", &q, &p), -EINVAL);
  cr_assert_eq(sbx_jail_parse_cpus("1.", &q, &p), -EINVAL);
  cr_assert_eq(sbx_jail_parse_cpus("1025", &q, &p), -EINVAL);
  cr_assert_eq(sbx_jail_parse_cpus("1,5", &q, &p), -EINVAL);
}

Test(jail_opts, options)
{
  struct sbx_jail_opts o = {0};
  q_error *err = NULL;
  cr_assert_eq(sbx_jail_opt(&o, "root", "/var/lib/quark/pods/p1", &err), 0);
  cr_assert_eq(sbx_jail_opt(&o, "bind-ro", "/usr/lib/quark/qkernel.bin", &err), 0);
  cr_assert_eq(sbx_jail_opt(&o, "bind", "/run/quark/sandbox/p1", &err), 0);
  cr_assert_eq(sbx_jail_opt(&o, "netns", "/var/run/netns/p1", &err), 0);
  cr_assert_eq(sbx_jail_opt(&o, "cgroup-parent", "quark/pods", &err), 0);
  cr_assert_eq(sbx_jail_opt(&o, "pod-id", "p1", &err), 0);
  cr_assert_eq(sbx_jail_opt(&o, "memory", "1G", &err), 0);
  cr_assert_eq(sbx_jail_opt(&o, "cpus", "0.5", &err), 0);
  cr_assert_eq(sbx_jail_opt(&o, "pids", "128", &err), 0);
  cr_assert_eq(sbx_jail_opt(&o, "no", "seccomp,caps", &err), 0);
  cr_assert_eq(sbx_jail_opt(&o, "mode", "pod", &err), 0);
  cr_assert_eq(o.nroots, 1);
  cr_assert_str_eq(o.roots[0], "/var/lib/quark/pods/p1");
  cr_assert_eq(o.nro, 1);
  cr_assert_eq(o.nrw, 1);
  cr_assert_str_eq(o.netns, "/var/run/netns/p1");
  cr_assert_str_eq(o.cgroup_parent, "quark/pods");
  cr_assert_str_eq(o.pod_id, "p1");
  cr_assert_eq(o.memory_limit, 1ull << 30);
  cr_assert_eq(o.cpu_quota_us, 50000);
  cr_assert_eq(o.cpu_period_us, 100000);
  cr_assert_eq(o.pids_limit, 128);
  cr_assert_eq(o.flags, SBX_JAIL_NO_SECCOMP | SBX_JAIL_NO_CAPS | SBX_JAIL_POD);
  cr_assert_null(err);
}

Test(jail_opts, refused)
{
  static const char *const bad[][2] = {
      {"root", ""},
      {"bind", ""},
      {"netns", "netns-name"},
      {"pod-id", "../x"},
      {"pod-id", "a/b"},
      {"cgroup-parent", "/abs"},
      {"cgroup-parent", "a//b"},
      {"cgroup-parent", "a/../b"},
      {"memory", "1M"},
      {"memory", "lots"},
      {"cpus", "-1"},
      {"pids", "0"},
      {"pids", "12x"},
      {"no", "seccomp,nothing"},
      {"mode", "vm"},
      {"colour", "blue"},
  };
  for (size_t i = 0; i < Q_ARRAY_SIZE(bad); i++) {
    struct sbx_jail_opts o = {0};
    q_error *err = NULL;
    cr_assert_eq(sbx_jail_opt(&o, bad[i][0], bad[i][1], &err), -EINVAL, "%s=%s accepted", bad[i][0],
                 bad[i][1]);
    cr_assert_not_null(err);
    cr_assert(strstr(q_error_msg(err), bad[i][0]) != NULL, "message '%s' does not name the option",
              q_error_msg(err));
    q_error_free(&err);
  }
  struct sbx_jail_opts o = {0};
  for (int i = 0; i < SBX_JAIL_MAX_PATHS; i++)
    cr_assert_eq(sbx_jail_opt(&o, "root", "/r", NULL), 0);
  cr_assert_eq(sbx_jail_opt(&o, "root", "/r", NULL), -E2BIG);
}

static void *thread_fn(void *arg)
{
  *(int *)arg = (int)syscall(SYS_gettid);
  return NULL;
}

/* Child checks: each failure exits with its own code. */
static int filtered_child(void)
{
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return 10;
  q_error *err = NULL;
  if (sbx_jail_seccomp_load(false, &err) < 0)
    return 11;
  /* Outside the list: fails with EPERM for this call only. */
  errno = 0;
  if (socket(AF_INET, SOCK_RAW, 1) != -1 || errno != EPERM)
    return 12;
  if (sbx_jail_seccomp_blocked() != 1)
    return 13;
  errno = 0;
  if (socket(AF_PACKET, SOCK_DGRAM, 0) != -1 || errno != EPERM || sbx_jail_seccomp_blocked() != 1)
    return 14; /* the same number again: refused, not logged again */
  /* Argument filters: unix sockets are pod mode only; no executable
   * memory; no new process; paths only from the cwd, not beneath an fd. */
  errno = 0;
  if (socket(AF_UNIX, SOCK_STREAM, 0) != -1 || errno != EPERM)
    return 15;
  errno = 0;
  if (mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED ||
      errno != EPERM)
    return 16;
  errno = 0;
  if (syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, 0) != -1 || errno != EPERM)
    return 17;
  int dfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC); /* AT_FDCWD: allowed */
  if (dfd < 0)
    return 18;
  errno = 0;
  if (openat(dfd, "etc", O_PATH | O_CLOEXEC) != -1 || errno != EPERM)
    return 19;
  errno = 0;
  if (ioctl(dfd, TIOCSTI, "x") != -1 || errno != EPERM) /* terminal input injection */
    return 20;
  if (kill(getpid(), 0) != -1)
    return 21;
  /* Inside the list: they work. */
  if (syscall(SYS_getpid) <= 0)
    return 30;
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  char c;
  if (fd < 0 || write(fd, "x", 1) != 1 || read(fd, &c, 1) != 0)
    return 31;
  close(fd);
  void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED || munmap(p, 1 << 20) < 0)
    return 32;
  /* The guest's TCP and UDP sockets. */
  int ts = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int us = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (ts < 0 || us < 0)
    return 34;
  close(ts);
  close(us);
  /* Threads (clone3 answers ENOSYS, glibc falls back to clone). */
  pthread_t t;
  int tid = 0;
  if (pthread_create(&t, NULL, thread_fn, &tid) != 0 || pthread_join(t, NULL) != 0 || tid <= 0)
    return 33;
  return 0;
}

Test(jail_seccomp, allowlist_in_a_child)
{
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0)
    _exit(filtered_child());
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(WIFEXITED(st), "child died of signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  cr_assert_eq(WEXITSTATUS(st), 0, "check %d failed in the filtered child", WEXITSTATUS(st));
}

Test(jail_seccomp, pod_mode_allows_unix_sockets)
{
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || sbx_jail_seccomp_load(true, NULL) < 0)
      _exit(10);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
      _exit(11);
    close(s);
    /* route netlink as SOCK_RAW only (the guest's ip/getifaddrs) */
    s = socket(AF_NETLINK, SOCK_RAW, 0);
    if (s < 0)
      _exit(13);
    close(s);
    errno = 0;
    if (socket(AF_NETLINK, SOCK_DGRAM, 0) != -1 || errno != EPERM)
      _exit(12);
    /* the bind-mount helper's calls only with its own arguments */
    errno = 0;
    if (unshare(CLONE_NEWUSER) != -1 || errno != EPERM)
      _exit(14);
    errno = 0;
    if (mount("/tmp", "/mnt", NULL, MS_MOVE, NULL) != -1 || errno != EPERM)
      _exit(15);
    _exit(0);
  }
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "pod-mode check %d", WEXITSTATUS(st));
}

Test(jail_seccomp, count)
{
  size_t run = sbx_jail_seccomp_count(false), pod = sbx_jail_seccomp_count(true);
  cr_assert_gt(run, 30);
  cr_assert_lt(run, 90);
  cr_assert_gt(pod, run);
}

static int park_fd = -1;

static void *park_fn(void *arg)
{
  (void)arg;
  char c;
  ssize_t r = read(park_fd, &c, 1); /* until the child exits */
  (void)r;
  return NULL;
}

Test(jail_apply, refuses_with_threads)
{
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    int pfd[2];
    pthread_t t;
    if (pipe(pfd) < 0)
      _exit(10);
    park_fd = pfd[0];
    if (pthread_create(&t, NULL, park_fn, NULL) != 0)
      _exit(11);
    struct sbx_jail_opts o = {0};
    q_error *err = NULL;
    _exit(sbx_jail_apply(&o, &err) == -EBUSY && strstr(q_error_msg(err), "threads") ? 0 : 12);
  }
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "check %d", WEXITSTATUS(st));
}
