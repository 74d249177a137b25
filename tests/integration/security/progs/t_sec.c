/* Guest security checks (run inside quark-sandbox): seccomp filters
 * (validation, ERRNO, TRAP siginfo, KILL_PROCESS, stacking, inheritance
 * across fork and exec, strict mode, TSYNC, the no_new_privs rule),
 * credentials and capabilities with Linux's rules. Modes:
 *   t_sec all            as root with every capability (run default)
 *   t_sec user           under --user 1000:1000 --groups 5,6 --caps 0 --no-new-privs
 *   t_sec runtimedefault under the host-compiled RuntimeDefault profile
 *   t_sec unconfined     Kubernetes' default capabilities, no seccomp
 *   t_sec bench N        getpid ns/call without and with a filter
 *   t_sec rofs           under --read-only-root: every write to the root EROFS,
 *                        /dev/shm, /dev and reads still work, /proc/mounts says ro
 *   t_sec rwfs           without it: the same writes work, /proc/mounts says rw
 * Prints "t_sec <mode>: N checks ok" or the failed check; exits 1 on failure. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <sys/fsuid.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int checks;
static const char *self;
#define CHECK(c)                                                                                   \
  do {                                                                                             \
    checks++;                                                                                      \
    if (!(c)) {                                                                                    \
      printf("FAIL %s:%d: %s (errno %d)\n", __FILE__, __LINE__, #c, errno);                        \
      fflush(stdout);                                                                              \
      _exit(1);                                                                                    \
    }                                                                                              \
  } while (0)

static int install(struct sock_filter *f, unsigned short n, unsigned flags)
{
  struct sock_fprog p = {.len = n, .filter = f};
  return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &p);
}

/* nr -> ret, everything else allowed */
static int filter_one(int nr, unsigned ret, unsigned flags)
{
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, ret),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  return install(f, sizeof f / sizeof f[0], flags);
}

/* Runs fn in a child; returns its wait status. */
static int in_child(void (*fn)(void))
{
  fflush(stdout);
  pid_t p = fork();
  if (p == 0) {
    fn();
    fflush(stdout);
    _exit(0);
  }
  int st = -1;
  waitpid(p, &st, 0);
  return st;
}

static void nnp(void)
{
  CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
}

static void c_errno(void)
{
  nnp();
  CHECK(filter_one(SYS_getppid, SECCOMP_RET_ERRNO | 123, 0) == 0);
  CHECK(prctl(PR_GET_SECCOMP) == 2);
  errno = 0;
  CHECK(syscall(SYS_getppid) == -1 && errno == 123);
  CHECK(getpid() > 0);
  /* inherited by a fork */
  pid_t p = fork();
  if (p == 0) {
    errno = 0;
    _exit(syscall(SYS_getppid) == -1 && errno == 123 ? 0 : 3);
  }
  int st;
  CHECK(waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0);
  /* and across exec */
  p = fork();
  if (p == 0) {
    execl(self, self, "probe-ppid", (char *)NULL);
    _exit(4);
  }
  CHECK(waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static volatile int trapped;
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
  (void)uc;
  if (sig == SIGSYS && si->si_code == 1 /* SYS_SECCOMP */ && si->si_syscall == SYS_uname &&
      si->si_arch == AUDIT_ARCH_X86_64 && si->si_errno == 7 && si->si_call_addr)
    trapped = 1;
  else
    trapped = -1;
}

static void c_trap(void)
{
  struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
  CHECK(sigaction(SIGSYS, &sa, NULL) == 0);
  nnp();
  CHECK(filter_one(SYS_uname, SECCOMP_RET_TRAP | 7, 0) == 0);
  long r = syscall(SYS_uname, 0);
  CHECK(trapped == 1);
  CHECK(r == SYS_uname); /* rax rolled back to the number */
}

static void c_kill(void)
{
  nnp();
  CHECK(filter_one(SYS_getppid, SECCOMP_RET_KILL_PROCESS, 0) == 0);
  syscall(SYS_getppid);
  _exit(5); /* not reached */
}

static void c_kill_thread(void)
{
  nnp();
  CHECK(filter_one(SYS_getppid, SECCOMP_RET_KILL_THREAD, 0) == 0);
  syscall(SYS_getppid);
  _exit(5);
}

static void c_stack(void)
{
  nnp();
  CHECK(filter_one(SYS_getppid, SECCOMP_RET_ERRNO | 5, 0) == 0);
  CHECK(filter_one(SYS_getppid, SECCOMP_RET_ALLOW, 0) == 0);
  errno = 0;
  CHECK(syscall(SYS_getppid) == -1 && errno == 5); /* the stricter one wins */
  CHECK(filter_one(SYS_getppid, SECCOMP_RET_ERRNO | 6, 0) == 0);
  errno = 0;
  CHECK(syscall(SYS_getppid) == -1 && errno == 6); /* ties: the newest */
  CHECK(filter_one(SYS_getppid, SECCOMP_RET_LOG, 0) == 0);
  errno = 0;
  CHECK(syscall(SYS_getppid) == -1 && errno == 6);
}

static void c_strict(void)
{
  CHECK(syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, NULL) == 0);
  CHECK(write(1, "", 0) == 0);
  syscall(SYS_getpid);
  _exit(5);
}

static volatile int stage;
static void *thr(void *arg)
{
  (void)arg;
  while (stage == 0)
    sched_yield();
  errno = 0;
  stage = syscall(SYS_getppid) == -1 && errno == 9 ? 2 : 3;
  return NULL;
}

static void c_tsync(void)
{
  pthread_t t;
  CHECK(pthread_create(&t, NULL, thr, NULL) == 0);
  nnp();
  CHECK(filter_one(SYS_getppid, SECCOMP_RET_ERRNO | 9, SECCOMP_FILTER_FLAG_TSYNC) == 0);
  stage = 1;
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(stage == 2);
}

static void c_noperm(void)
{
  /* without no_new_privs and without CAP_SYS_ADMIN: EACCES */
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2] = {{0, 0, 0}, {0, 0, 0}};
  CHECK(syscall(SYS_capset, &h, d) == 0);
  errno = 0;
  CHECK(filter_one(SYS_getppid, SECCOMP_RET_ERRNO | 1, 0) == -1 && errno == EACCES);
  /* with CAP_SYS_ADMIN it needs no no_new_privs: checked in the parent run */
}

static void c_creds(void)
{
  gid_t g[3] = {1, 2, 3}, out[8];
  CHECK(setgroups(3, g) == 0);
  CHECK(getgroups(0, NULL) == 3);
  errno = 0;
  CHECK(getgroups(2, out) == -1 && errno == EINVAL);
  CHECK(getgroups(8, out) == 3 && out[2] == 3);
  CHECK(setresgid(100, 100, 100) == 0);
  CHECK(prctl(PR_SET_KEEPCAPS, 1) == 0 && prctl(PR_GET_KEEPCAPS) == 1);
  CHECK(setresuid(1000, 1000, 0) == 0);
  uid_t r, e, s;
  CHECK(getresuid(&r, &e, &s) == 0 && r == 1000 && e == 1000 && s == 0);
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  CHECK(syscall(SYS_capget, &h, d) == 0 && d[0].effective == 0 && d[0].permitted != 0);
  CHECK(setuid(0) == 0); /* the saved uid */
  CHECK(geteuid() == 0);
  CHECK(syscall(SYS_capget, &h, d) == 0 && d[0].effective == d[0].permitted);
  CHECK(prctl(PR_SET_KEEPCAPS, 0) == 0);
  CHECK(setresuid(1000, 1000, 1000) == 0);
  CHECK(syscall(SYS_capget, &h, d) == 0 && d[0].effective == 0 && d[0].permitted == 0);
  errno = 0;
  CHECK(setuid(0) == -1 && errno == EPERM);
  errno = 0;
  CHECK(setgroups(0, NULL) == -1 && errno == EPERM);
  errno = 0;
  CHECK(kill(getppid(), 0) == -1 && errno == EPERM); /* other uid, no CAP_KILL */
  CHECK(kill(getpid(), 0) == 0);
  errno = 0;
  CHECK(setgid(0) == -1 && errno == EPERM);
  CHECK(setfsuid(1000) == 1000);
  errno = 0;
  CHECK(syscall(SYS_unshare, 0) == -1 && errno == EPERM);
  errno = 0;
  CHECK(syscall(SYS_mount, "x", "/", "tmpfs", 0, 0) == -1 && errno == EPERM);
}

static void c_caps(void)
{
  CHECK(prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN) == 1);
  errno = 0;
  CHECK(syscall(SYS_unshare, 0) == -1 && errno == ENOSYS); /* privileged: unimplemented */
  CHECK(prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN) == 0 && prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN) == 0);
  errno = 0;
  CHECK(prctl(PR_CAPBSET_READ, 99) == -1 && errno == EINVAL);
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  CHECK(syscall(SYS_capget, &h, d) == 0);
  errno = 0;
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) == -1 &&
        errno == EPERM);
  d[0].inheritable = 1u << CAP_NET_BIND_SERVICE;
  CHECK(syscall(SYS_capset, &h, d) == 0);
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) == 0);
  CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0) == 1);
  d[0].effective &= ~(1u << CAP_SYS_ADMIN);
  CHECK(syscall(SYS_capset, &h, d) == 0);
  errno = 0;
  CHECK(syscall(SYS_unshare, 0) == -1 && errno == EPERM);
  d[0].permitted |= 1u << 31; /* not in the old permitted set? it is: run gives all */
  d[0].effective |= 1u << CAP_SYS_ADMIN;
  errno = 0;
  CHECK(syscall(SYS_capset, &h, d) == 0); /* re-raise from permitted */
  d[0].permitted = 0;
  errno = 0;
  CHECK(syscall(SYS_capset, &h, d) == -1 && errno == EPERM); /* effective beyond permitted */
  h.version = 0x12345678;
  errno = 0;
  CHECK(syscall(SYS_capget, &h, d) == -1 && errno == EINVAL &&
        h.version == _LINUX_CAPABILITY_VERSION_3);
}

static void all(void)
{
  CHECK(prctl(PR_GET_SECCOMP) == 0);
  CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 0);
  unsigned act = SECCOMP_RET_KILL_PROCESS;
  CHECK(syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &act) == 0);
  act = 0x12340000;
  errno = 0;
  CHECK(syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &act) == -1 && errno == EOPNOTSUPP);
  int st = in_child(c_noperm); /* before no_new_privs is set here */
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  /* validation, as Linux */
  nnp();
  struct sock_filter bad_op[] = {{0xffff, 0, 0, 0}, BPF_STMT(BPF_RET | BPF_K, 0)};
  struct sock_filter bad_jmp[] = {BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 5, 0),
                                  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  struct sock_filter bad_off[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 64),
                                  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  struct sock_filter bad_align[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 2),
                                    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  struct sock_filter no_ret[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0)};
  struct sock_filter bad_mem[] = {BPF_STMT(BPF_LD | BPF_MEM, 3),
                                  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  struct sock_filter div0[] = {BPF_STMT(BPF_ALU | BPF_DIV | BPF_K, 0),
                               BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  struct sock_filter bpf_ld_b[] = {BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),
                                   BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  errno = 0;
  CHECK(install(bad_op, 2, 0) == -1 && errno == EINVAL);
  CHECK(install(bad_jmp, 2, 0) == -1 && errno == EINVAL);
  CHECK(install(bad_off, 2, 0) == -1 && errno == EINVAL);
  CHECK(install(bad_align, 2, 0) == -1 && errno == EINVAL);
  CHECK(install(no_ret, 1, 0) == -1 && errno == EINVAL);
  CHECK(install(bad_mem, 2, 0) == -1 && errno == EINVAL);
  CHECK(install(div0, 2, 0) == -1 && errno == EINVAL);
  CHECK(install(bpf_ld_b, 2, 0) == -1 && errno == EINVAL);
  CHECK(install(bad_op, 0, 0) == -1 && errno == EINVAL);
  CHECK(install(bad_op, 4097, 0) == -1 && errno == EINVAL);
  errno = 0;
  CHECK(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, (void *)8) == -1 && errno == EFAULT);
  CHECK(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0x1000, NULL) == -1 && errno == EINVAL);
  CHECK(prctl(PR_GET_SECCOMP) == 0); /* nothing installed */
  st = in_child(c_errno);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  errno = 0;
  CHECK(syscall(SYS_getppid) >= 0); /* not inherited upwards */
  st = in_child(c_trap);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  st = in_child(c_kill);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS);
  st = in_child(c_kill_thread);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS);
  st = in_child(c_stack);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  st = in_child(c_strict);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  st = in_child(c_tsync);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  st = in_child(c_creds);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  st = in_child(c_caps);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void user(void)
{
  CHECK(getuid() == 1000 && geteuid() == 1000 && getgid() == 1000);
  gid_t g[8];
  CHECK(getgroups(8, g) == 2 && g[0] == 5 && g[1] == 6);
  CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
  CHECK(prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN) == 0);
  CHECK(prctl(PR_CAPBSET_READ, CAP_CHOWN) == 1);
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  CHECK(syscall(SYS_capget, &h, d) == 0 && d[0].effective == 0 && d[0].permitted == 0);
  errno = 0;
  CHECK(setuid(0) == -1 && errno == EPERM);
  /* no_new_privs is set: an unprivileged process may filter */
  CHECK(filter_one(SYS_getppid, SECCOMP_RET_ERRNO | 42, 0) == 0);
  errno = 0;
  CHECK(syscall(SYS_getppid) == -1 && errno == 42);
}

static void runtimedefault(void)
{
  CHECK(prctl(PR_GET_SECCOMP) == 2);
  errno = 0;
  CHECK(syscall(SYS_unshare, CLONE_NEWNS) == -1 && errno == EPERM);
  errno = 0;
  CHECK(syscall(SYS_keyctl, 0, 0, 0) == -1 && errno == EPERM);
  errno = 0;
  CHECK(syscall(SYS_add_key, "user", "x", "y", 1, 0) == -1 && errno == EPERM);
  errno = 0;
  CHECK(syscall(SYS_bpf, 0, 0, 0) == -1 && errno == EPERM);
  errno = 0;
  CHECK(syscall(SYS_mount, "x", "/", "tmpfs", 0, 0) == -1 && errno == EPERM);
  errno = 0;
  CHECK(syscall(SYS_clone3, NULL, 0) == -1 && errno == ENOSYS);
  CHECK(getpid() > 0 && getppid() >= 0);
  pid_t p = fork(); /* clone without namespace flags is allowed */
  if (p == 0)
    _exit(0);
  int st;
  CHECK(p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st));
}

static void unconfined(void)
{
  CHECK(prctl(PR_GET_SECCOMP) == 0);
  errno = 0;
  CHECK(syscall(SYS_keyctl, 0, 0, 0) == -1 && errno == ENOSYS); /* not in this kernel */
  CHECK(prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN) == 0 && prctl(PR_CAPBSET_READ, CAP_CHOWN) == 1);
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  CHECK(syscall(SYS_capget, &h, d) == 0 && d[0].effective == 0xa80425fb && d[1].effective == 0);
  errno = 0;
  CHECK(syscall(SYS_unshare, CLONE_NEWNS) == -1 && errno == EPERM); /* no CAP_SYS_ADMIN */
}

static void bench(long n)
{
  struct timespec a, b;
  for (int round = 0; round < 2; round++) {
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++)
      syscall(SYS_getpid);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n;
    printf("getpid %s: %.0f ns/call\n", round ? "with a 7-instruction filter" : "no filter", ns);
    if (round == 0) {
      nnp();
      CHECK(filter_one(SYS_getppid, SECCOMP_RET_ERRNO | 1, 0) == 0);
    }
  }
}

/* Does /proc/mounts show the root with option opt ("ro" or "rw")? */
static int root_mount_is(const char *opt)
{
  char buf[4096];
  int fd = open("/proc/mounts", O_RDONLY);
  if (fd < 0)
    return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return 0;
  buf[n] = 0;
  char want[64];
  snprintf(want, sizeof want, " / quarkfs %s,", opt);
  return strstr(buf, want) != NULL;
}

#define EROFS_(call) (errno = 0, (call) == -1 && errno == EROFS)

static void rofs_child(void)
{
  if (!EROFS_(open("/child", O_CREAT | O_WRONLY, 0644)))
    _exit(3);
}

/* readOnlyRootFilesystem: every write-type call on the root answers EROFS. */
static void rofs(void)
{
  struct stat st;
  CHECK(self[0] == '/' && stat(self, &st) == 0); /* setup: the program itself (absolute) */
  CHECK(EROFS_(open("/new", O_CREAT | O_WRONLY, 0644)));
  CHECK(EROFS_(open("/new", O_CREAT | O_EXCL | O_RDONLY, 0644)));
  CHECK(EROFS_(open("/new", O_CREAT | O_RDONLY, 0644)));
  int cfd = open(self, O_CREAT | O_RDONLY, 0644); /* exists: opens, as on Linux */
  CHECK(cfd >= 0);
  close(cfd);
  CHECK(EROFS_(open("/tmp/new", O_CREAT | O_WRONLY | O_TRUNC, 0644)));
  CHECK(EROFS_(open(self, O_WRONLY)));
  CHECK(EROFS_(open(self, O_RDWR)));
  CHECK(EROFS_(open(self, O_RDONLY | O_TRUNC)));
  CHECK(EROFS_(open(self, O_WRONLY | O_APPEND)));
  CHECK(EROFS_(open("/tmp", O_TMPFILE | O_WRONLY, 0600)));
  CHECK(EROFS_(mkdir("/d", 0755)));
  CHECK(EROFS_(mkdirat(AT_FDCWD, "/tmp/d", 0755)));
  CHECK(EROFS_(rmdir("/tmp")));
  CHECK(EROFS_(unlink(self)));
  CHECK(EROFS_(unlinkat(AT_FDCWD, self, 0)));
  CHECK(EROFS_(rename(self, "/x")));
  CHECK(EROFS_(link(self, "/x")));
  CHECK(EROFS_(symlink(self, "/x")));
  CHECK(EROFS_(mknod("/fifo", S_IFIFO | 0644, 0)));
  CHECK(EROFS_(chmod(self, 0700)));
  CHECK(EROFS_(chown(self, 1, 1)));
  CHECK(EROFS_(lchown(self, 1, 1)));
  CHECK(EROFS_(truncate(self, 0)));
  CHECK(EROFS_(utimes(self, NULL)));
  CHECK(EROFS_(utimensat(AT_FDCWD, self, NULL, 0)));
  /* relative paths and ".." resolve to the same root */
  CHECK(chdir("/tmp") == 0);
  CHECK(EROFS_(open("../new", O_CREAT | O_WRONLY, 0644)));
  CHECK(EROFS_(mkdir("sub", 0755)));
  CHECK(EROFS_(open("/dev/shm/../../new", O_CREAT | O_WRONLY, 0644)));
  /* descriptor forms on a file opened for reading */
  int fd = open(self, O_RDONLY);
  CHECK(fd >= 0);
  char c;
  CHECK(read(fd, &c, 1) == 1);
  CHECK(EROFS_(fchmod(fd, 0700)));
  CHECK(EROFS_(fchown(fd, 1, 1)));
  CHECK(EROFS_(futimens(fd, NULL)));
  close(fd);
  struct statfs sf;
  CHECK(statfs("/", &sf) == 0);
  CHECK(stat(self, &st) == 0 && st.st_size > 0 && (st.st_mode & 07777) != 0700);
  /* children inherit it */
  int ws = in_child(rofs_child);
  CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
  /* writable places: the /dev/shm tmpfs and devices */
  fd = open("/dev/shm/f", O_CREAT | O_RDWR, 0600);
  CHECK(fd >= 0);
  CHECK(write(fd, "x", 1) == 1);
  close(fd);
  CHECK(mkdir("/dev/shm/d", 0755) == 0 && rmdir("/dev/shm/d") == 0);
  CHECK(rename("/dev/shm/f", "/dev/shm/g") == 0 && unlink("/dev/shm/g") == 0);
  fd = open("/dev/null", O_WRONLY);
  CHECK(fd >= 0 && write(fd, "x", 1) == 1);
  close(fd);
  CHECK(root_mount_is("ro"));
}

/* The same writes without --read-only-root work (the test can fail). */
static void rwfs(void)
{
  int fd = open("/tmp/rw", O_CREAT | O_WRONLY, 0644);
  CHECK(fd >= 0);
  CHECK(write(fd, "x", 1) == 1);
  close(fd);
  CHECK(chmod("/tmp/rw", 0600) == 0);
  CHECK(truncate("/tmp/rw", 0) == 0);
  CHECK(rename("/tmp/rw", "/tmp/rw2") == 0);
  CHECK(mkdir("/tmp/d", 0755) == 0 && rmdir("/tmp/d") == 0);
  CHECK(unlink("/tmp/rw2") == 0);
  CHECK(root_mount_is("rw"));
}

int main(int argc, char **argv)
{
  self = argv[0];
  const char *mode = argc > 1 ? argv[1] : "all";
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (!strcmp(mode, "probe-ppid")) {
    errno = 0;
    return syscall(SYS_getppid) == -1 && errno == 123 ? 0 : 6;
  }
  if (!strcmp(mode, "all"))
    all();
  else if (!strcmp(mode, "user"))
    user();
  else if (!strcmp(mode, "runtimedefault"))
    runtimedefault();
  else if (!strcmp(mode, "unconfined"))
    unconfined();
  else if (!strcmp(mode, "rofs"))
    rofs();
  else if (!strcmp(mode, "rwfs"))
    rwfs();
  else if (!strcmp(mode, "bench"))
    bench(argc > 2 ? atol(argv[2]) : 2000);
  else {
    printf("t_sec: unknown mode %s\n", mode);
    return 2;
  }
  printf("t_sec %s: %d checks ok\n", mode, checks);
  return 0;
}
