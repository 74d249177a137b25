/* Processes, pipes and signals in the guest: fork/vfork/exec/wait, pipes
 * between processes, process groups and sessions, reparenting, signal
 * handlers, masks, nested delivery, the alternate stack, fault signals,
 * SIGPIPE and a SIGCHLD storm. The program runs as the container's init
 * (pid 1). "bench" prints fork+exec+wait and pipe throughput figures. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "t.h"

static double now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int run_wait(const char *path, char *const argv[])
{
  pid_t p = fork();
  if (p == 0) {
    execv(path, argv);
    _exit(127);
  }
  int st = -1;
  if (p < 0 || waitpid(p, &st, 0) != p)
    return -1;
  return st;
}

static void t_fork_wait(void)
{
  pid_t me = getpid();
  pid_t p = fork();
  if (p == 0) {
    _exit(getppid() == me ? 42 : 1);
  }
  CHECK(p > 1);
  int st;
  CHECK_EQ(waitpid(p, &st, 0), p);
  CHECK(WIFEXITED(st));
  CHECK_EQ(WEXITSTATUS(st), 42);
  CHECK_EQ(waitpid(-1, &st, WNOHANG), -1);
  CHECK_EQ(errno, ECHILD);
  /* WNOHANG while the child still runs (it waits on a pipe). */
  int fd[2];
  CHECK_EQ(pipe(fd), 0);
  p = fork();
  if (p == 0) {
    char c;
    close(fd[1]);
    _exit(read(fd[0], &c, 1) == 1 && c == 'x' ? 5 : 6);
  }
  close(fd[0]);
  CHECK_EQ(waitpid(p, &st, WNOHANG), 0);
  CHECK_EQ(write(fd[1], "x", 1), 1);
  close(fd[1]);
  CHECK_EQ(waitpid(p, &st, 0), p);
  CHECK_EQ(WEXITSTATUS(st), 5);
  /* waitid with WNOWAIT leaves the zombie for a later wait. */
  p = fork();
  if (p == 0)
    _exit(9);
  siginfo_t si;
  memset(&si, 0, sizeof(si));
  CHECK_EQ(waitid(P_PID, p, &si, WEXITED | WNOWAIT), 0);
  CHECK_EQ(si.si_pid, p);
  CHECK_EQ(si.si_status, 9);
  CHECK_EQ(si.si_code, CLD_EXITED);
  CHECK_EQ(waitpid(p, &st, 0), p);
  CHECK_EQ(WEXITSTATUS(st), 9);
}

static void t_exec(void)
{
  char *t_argv[] = {"true", NULL}, *f_argv[] = {"false", NULL}, *m_argv[] = {"x", NULL};
  int st = run_wait("/bin/true", t_argv);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  st = run_wait("/bin/false", f_argv);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
  st = run_wait("/nonexistent", m_argv);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 127);
  /* A #! script with an argument, its output through a pipe. */
  int fd[2];
  CHECK_EQ(pipe(fd), 0);
  pid_t p = fork();
  if (p == 0) {
    dup2(fd[1], 1);
    close(fd[0]);
    close(fd[1]);
    char *s_argv[] = {"/scripts/script.sh", "arg1", NULL};
    execv("/scripts/script.sh", s_argv);
    _exit(127);
  }
  close(fd[1]);
  char buf[128] = {0};
  size_t got = 0;
  ssize_t n;
  while ((n = read(fd[0], buf + got, sizeof(buf) - 1 - got)) > 0)
    got += (size_t)n;
  close(fd[0]);
  CHECK_EQ(waitpid(p, &st, 0), p);
  CHECK_EQ(WEXITSTATUS(st), 3);
  CHECK(strcmp(buf, "script arg1\n") == 0);
  /* Not executable, a directory: EACCES, as Linux. */
  char *h_argv[] = {"x", NULL};
  CHECK_EQ(RS3(59, "/data/hello.txt", h_argv, NULL), -EACCES);
  CHECK_EQ(RS3(59, "/data", h_argv, NULL), -EACCES);
  CHECK_EQ(RS3(59, "/nonexistent", h_argv, NULL), -ENOENT);
  /* close_range closes a span of descriptors. */
  int a = dup(1), b = dup(1);
  CHECK_EQ(RS3(436, a < b ? a : b, ~0u, 0), 0);
  CHECK_EQ(fcntl(a, F_GETFD), -1);
  CHECK_EQ(fcntl(b, F_GETFD), -1);
  CHECK(fcntl(1, F_GETFD) >= 0);
  /* vfork + exec: the parent resumes after the child's exec. */
  p = vfork();
  if (p == 0) {
    execv("/bin/true", t_argv);
    _exit(127);
  }
  CHECK(p > 0);
  CHECK_EQ(waitpid(p, &st, 0), p);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  /* An empty environment: envp's NULL still follows argv's on the new stack. */
  char *const no_env[] = {NULL};
  p = fork();
  if (p == 0) {
    execve("/bin/true", t_argv, no_env);
    _exit(127);
  }
  CHECK(p > 0);
  CHECK_EQ(waitpid(p, &st, 0), p);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void t_pipes(void)
{
  int fd[2];
  CHECK_EQ(pipe2(fd, O_CLOEXEC), 0);
  CHECK_EQ(fcntl(fd[0], F_GETFD), FD_CLOEXEC);
  pid_t p = fork();
  enum { N = 300 * 1024 };
  if (p == 0) {
    close(fd[0]);
    static unsigned char b[N];
    for (int i = 0; i < N; i++)
      b[i] = (unsigned char)(i * 7 + 3);
    size_t off = 0;
    while (off < N) {
      ssize_t w = write(fd[1], b + off, N - off);
      if (w <= 0)
        _exit(2);
      off += (size_t)w;
    }
    _exit(0);
  }
  close(fd[1]);
  static unsigned char r[N + 10];
  size_t got = 0;
  ssize_t n;
  while ((n = read(fd[0], r + got, sizeof(r) - got)) > 0)
    got += (size_t)n;
  CHECK_EQ(n, 0);
  CHECK_EQ(got, N);
  int bad = 0;
  for (int i = 0; i < N && i < (int)got; i++)
    bad += r[i] != (unsigned char)(i * 7 + 3);
  CHECK_EQ(bad, 0);
  close(fd[0]);
  int st;
  CHECK_EQ(waitpid(p, &st, 0), p);
  CHECK_EQ(st, 0);
  /* SIGPIPE: default kills the writer, ignored gives EPIPE. */
  CHECK_EQ(pipe(fd), 0);
  close(fd[0]);
  p = fork();
  if (p == 0) {
    write(fd[1], "x", 1);
    _exit(0);
  }
  CHECK_EQ(waitpid(p, &st, 0), p);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE);
  signal(SIGPIPE, SIG_IGN);
  CHECK_EQ(write(fd[1], "x", 1), -1);
  CHECK_EQ(errno, EPIPE);
  signal(SIGPIPE, SIG_DFL);
  close(fd[1]);
  /* poll on a pipe: not readable, then readable. */
  CHECK_EQ(pipe(fd), 0);
  struct pollfd_ {
    int fd;
    short ev, rev;
  } pf = {fd[0], 1, 0};
  CHECK_EQ(RS3(7, &pf, 1, 0), 0);
  CHECK_EQ(write(fd[1], "y", 1), 1);
  CHECK_EQ(RS3(7, &pf, 1, 1000), 1);
  CHECK_EQ(pf.rev, 1);
  close(fd[0]);
  close(fd[1]);
}

static void t_groups(void)
{
  CHECK_EQ(getpid(), 1);
  CHECK_EQ(getppid(), 0);
  pid_t p = fork();
  if (p == 0) {
    int ok = setpgid(0, 0) == 0 && getpgid(0) == getpid() && getpgrp() == getpid();
    pid_t s = setsid();
    ok = ok && s == -1 && errno == EPERM; /* a group leader cannot */
    pid_t q = fork();
    if (q == 0) {
      int ok2 = setsid() == getpid() && getsid(0) == getpid() && getpgid(0) == getpid();
      _exit(ok2 ? 0 : 1);
    }
    int st;
    ok = ok && waitpid(q, &st, 0) == q && st == 0;
    _exit(ok ? 0 : 1);
  }
  int st;
  CHECK_EQ(waitpid(p, &st, 0), p);
  CHECK_EQ(st, 0);
  /* Orphans go to init (us). */
  int fd[2];
  pipe(fd);
  p = fork();
  if (p == 0) {
    pid_t g = fork();
    if (g == 0) {
      char c;
      close(fd[1]);
      read(fd[0], &c, 1); /* until the parent is gone */
      _exit(getppid() == 1 ? 33 : 34);
    }
    _exit(0);
  }
  close(fd[0]);
  CHECK_EQ(waitpid(p, &st, 0), p);
  close(fd[1]);
  pid_t g = waitpid(-1, &st, 0);
  CHECK(g > 0 && g != p);
  CHECK_EQ(WEXITSTATUS(st), 33);
}

static volatile int order[8], norder;
static volatile sig_atomic_t chld_count;
static void h_usr2(int s)
{
  order[norder++] = s;
}
static void h_usr1(int s)
{
  order[norder++] = s;
  raise(SIGUSR2); /* nested: runs before we return */
  order[norder++] = -s;
}
static void h_chld(int s)
{
  (void)s;
  chld_count++;
}

static sigjmp_buf jb;
static volatile void *fault_addr;
static volatile int fault_sig;
static char altstack[65536];
static volatile int on_alt;
static void h_fault(int s, siginfo_t *si, void *uc)
{
  (void)uc;
  int local;
  on_alt = (char *)&local >= altstack && (char *)&local < altstack + sizeof(altstack);
  fault_sig = s;
  fault_addr = si->si_addr;
  siglongjmp(jb, 1);
}

static void t_signals(void)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = h_usr1;
  CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
  sa.sa_handler = h_usr2;
  CHECK_EQ(sigaction(SIGUSR2, &sa, NULL), 0);
  /* Blocked: pending, then delivered on unblock. */
  sigset_t set, old, pend;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  CHECK_EQ(sigprocmask(SIG_BLOCK, &set, &old), 0);
  CHECK_EQ(kill(getpid(), SIGUSR1), 0);
  CHECK_EQ(norder, 0);
  sigpending(&pend);
  CHECK(sigismember(&pend, SIGUSR1));
  double x = 1.5; /* FP state must survive the handlers */
  CHECK_EQ(sigprocmask(SIG_SETMASK, &old, NULL), 0);
  CHECK(x * 2 == 3.0);
  CHECK_EQ(norder, 3);
  CHECK(order[0] == SIGUSR1 && order[1] == SIGUSR2 && order[2] == -SIGUSR1);
  /* Fault signals with siginfo on an alternate stack. */
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)};
  CHECK_EQ(sigaltstack(&ss, NULL), 0);
  sa.sa_handler = NULL;
  sa.sa_sigaction = h_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  CHECK_EQ(sigaction(SIGSEGV, &sa, NULL), 0);
  if (!sigsetjmp(jb, 1))
    *(volatile int *)0x1230 = 1;
  CHECK_EQ(fault_sig, SIGSEGV);
  CHECK(fault_addr == (void *)0x1230);
  CHECK(on_alt);
  /* Default action of a fault in a child: killed, status 128+11 in the shell's words. */
  pid_t p = fork();
  if (p == 0) {
    signal(SIGSEGV, SIG_DFL);
    *(volatile int *)(uintptr_t)(getpid() & 8) = 1;
    _exit(0);
  }
  int st;
  CHECK_EQ(waitpid(p, &st, 0), p);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
  /* kill of a child blocked in read; SIGTERM's default action. */
  int fd[2];
  pipe(fd);
  p = fork();
  if (p == 0) {
    char c;
    close(fd[1]);
    read(fd[0], &c, 1);
    _exit(0);
  }
  close(fd[0]);
  CHECK_EQ(kill(p, SIGTERM), 0);
  CHECK_EQ(waitpid(p, &st, 0), p);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
  close(fd[1]);
  /* A handler interrupts a blocked read: EINTR without SA_RESTART. */
  p = fork();
  if (p == 0) {
    struct sigaction s2;
    memset(&s2, 0, sizeof(s2));
    s2.sa_handler = h_usr2;
    sigaction(SIGUSR2, &s2, NULL);
    int f2[2];
    pipe(f2);
    char c;
    kill(getppid(), SIGUSR2);
    ssize_t r = read(f2[0], &c, 1);
    _exit(r == -1 && errno == EINTR ? 0 : 1);
  }
  /* our SIGUSR2 handler runs when the child signals us; then signal it back */
  while (norder < 4)
    usleep(1000);
  usleep(20000);
  kill(p, SIGUSR2);
  CHECK_EQ(waitpid(p, &st, 0), p);
  CHECK_EQ(st, 0);
  /* SIGCHLD storm: 20 children, every one reaped, the handler ran. */
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = h_chld;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGCHLD, &sa, NULL);
  for (int i = 0; i < 20; i++) {
    p = fork();
    if (p == 0)
      _exit(i);
  }
  int reaped = 0, sum = 0;
  while ((p = wait(&st)) > 0) {
    reaped++;
    sum += WEXITSTATUS(st);
  }
  CHECK_EQ(reaped, 20);
  CHECK_EQ(sum, 190);
  CHECK(chld_count >= 1);
  signal(SIGCHLD, SIG_DFL);
  /* sigsuspend returns after the handler. */
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &set, &old);
  norder = 0;
  p = fork();
  if (p == 0) {
    kill(getppid(), SIGUSR1);
    _exit(0);
  }
  sigset_t none;
  sigemptyset(&none);
  CHECK_EQ(sigsuspend(&none), -1);
  CHECK_EQ(errno, EINTR);
  CHECK(norder >= 1 && order[0] == SIGUSR1);
  sigprocmask(SIG_SETMASK, &old, NULL);
  waitpid(p, &st, 0);
  /* ppoll's mask: SIGUSR1 blocked outside, taken during the wait. */
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &set, &old);
  norder = 0;
  int pf2[2];
  pipe(pf2);
  p = fork();
  if (p == 0) {
    usleep(5000);
    kill(getppid(), SIGUSR1);
    _exit(0);
  }
  struct pollfd_ {
    int fd;
    short ev, rev;
  } pfd = {pf2[0], 1, 0};
  struct timespec onesec = {1, 0};
  CHECK_EQ(RS5(271, &pfd, 1, &onesec, &none, 8), -EINTR);
  CHECK(norder >= 1 && order[0] == SIGUSR1);
  sigset_t now;
  sigprocmask(SIG_BLOCK, NULL, &now);
  CHECK(sigismember(&now, SIGUSR1));
  sigprocmask(SIG_SETMASK, &old, NULL);
  waitpid(p, &st, 0);
  close(pf2[0]);
  close(pf2[1]);
  /* sigtimedwait takes a blocked pending signal without its handler. */
  norder = 0;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  sigprocmask(SIG_BLOCK, &set, &old);
  struct timespec zero = {0, 0}, tenms = {0, 10 * 1000 * 1000};
  siginfo_t info;
  CHECK_EQ(sigtimedwait(&set, &info, &zero), -1);
  CHECK_EQ(errno, EAGAIN);
  CHECK_EQ(sigtimedwait(&set, &info, &tenms), -1);
  CHECK_EQ(errno, EAGAIN);
  p = fork();
  if (p == 0) {
    usleep(5000);
    kill(getppid(), SIGUSR2);
    _exit(0);
  }
  CHECK_EQ(sigwaitinfo(&set, &info), SIGUSR2);
  CHECK_EQ(info.si_pid, p);
  CHECK_EQ(norder, 0);
  sigprocmask(SIG_SETMASK, &old, NULL);
  CHECK_EQ(norder, 0);
  waitpid(p, &st, 0);
}

/* Bad arguments to the process calls: errors, never a kernel stop. */
static void t_hostile_args(void)
{
  CHECK_EQ(RS3(59, NULL, NULL, NULL), -EFAULT);
  CHECK_EQ(RS3(59, "/bin/true", (char **)8, NULL), -EFAULT);
  char *bad_argv[] = {(char *)16, NULL};
  CHECK_EQ(RS3(59, "/bin/true", bad_argv, NULL), -EFAULT);
  CHECK_EQ(RS1(22, 8), -EFAULT);
  CHECK_EQ(RS2(293, 8, 0), -EFAULT);
  int fds[2];
  CHECK_EQ(RS2(293, fds, 0x12345), -EINVAL);
  CHECK_EQ(RS2(62, 0x7ffffff0, 0), -ESRCH);
  CHECK_EQ(RS2(62, 1, 65), -EINVAL);
  CHECK_EQ(RS3(234, 1, 1, -1), -EINVAL);
  CHECK_EQ(RS4(61, -0x7fffffff, 0, 0, 0), -ECHILD);
  CHECK_EQ(RS4(61, -1, 0, 0x7fff, 0), -EINVAL);
  CHECK_EQ(RS5(247, 7, 0, 0, 4, 0), -EINVAL);
  CHECK_EQ(RS5(56, 0x7e020000, 0, 0, 0, 0), -EINVAL); /* namespaces */
  CHECK_EQ(RS5(56, 0x10000, 0, 0, 0, 0), -EINVAL);    /* THREAD without SIGHAND */
  CHECK_EQ(RS2(435, 0, 0), -ENOSYS);
  CHECK_EQ(RS4(13, 9, 8, 0, 8), -EINVAL); /* SIGKILL handler */
  CHECK_EQ(RS4(13, 10, 8, 0, 8), -EFAULT);
  CHECK_EQ(RS2(131, 8, 0), -EFAULT);
  /* A garbage signal frame kills the caller (a child), not the kernel. */
  pid_t p = fork();
  if (p == 0) {
    __asm__ volatile("mov $0x1000, %%rsp; mov $15, %%eax; syscall" ::: "memory");
    _exit(0);
  }
  int st;
  CHECK_EQ(waitpid(p, &st, 0), p);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
  /* A wait status pointer into nowhere. */
  p = fork();
  if (p == 0)
    _exit(0);
  CHECK_EQ(RS4(61, p, 8, 0, 0), -EFAULT);
  waitpid(p, NULL, 0);
}

/* Fork until memory runs out, then let everything go: ENOMEM/EAGAIN, no
 * kernel stop, and the memory comes back (a second round gets as far). */
static int fork_round(void)
{
  int fd[2];
  pipe(fd);
  int n = 0;
  for (; n < 4096; n++) {
    pid_t p = fork();
    if (p < 0)
      break;
    if (p == 0) {
      char c;
      close(fd[1]);
      read(fd[0], &c, 1);
      _exit(0);
    }
  }
  close(fd[0]);
  close(fd[1]);
  while (wait(NULL) > 0)
    ;
  return n;
}

static void bench(void)
{
  char *t_argv[] = {"true", NULL};
  int n = 50;
  double t0 = now_us();
  for (int i = 0; i < n; i++)
    run_wait("/bin/true", t_argv);
  double t1 = now_us();
  printf("bench: fork+exec+wait /bin/true: %.0f us\n", (t1 - t0) / n);
  t0 = now_us();
  for (int i = 0; i < n; i++) {
    pid_t p = fork();
    if (p == 0)
      _exit(0);
    waitpid(p, NULL, 0);
  }
  t1 = now_us();
  printf("bench: fork+exit+wait: %.0f us\n", (t1 - t0) / n);
  int fd[2];
  pipe(fd);
  enum { TOTAL = 64 << 20, CH = 64 << 10 };
  pid_t p = fork();
  static char b[CH];
  if (p == 0) {
    close(fd[0]);
    for (long off = 0; off < TOTAL;) {
      ssize_t w = write(fd[1], b, CH);
      if (w <= 0)
        _exit(1);
      off += w;
    }
    _exit(0);
  }
  close(fd[1]);
  t0 = now_us();
  long got = 0;
  ssize_t r;
  while ((r = read(fd[0], b, CH)) > 0)
    got += r;
  t1 = now_us();
  waitpid(p, NULL, 0);
  printf("bench: pipe throughput (64 KiB chunks): %.0f MiB/s (%ld bytes)\n",
         got / (1024.0 * 1024.0) / ((t1 - t0) / 1e6), got);
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc > 1 && !strcmp(argv[1], "forkbomb")) {
    int a = fork_round(), b = fork_round();
    CHECK(a > 10);
    CHECK(b >= a - a / 10);
    printf("forkbomb: %d then %d children\n", a, b);
    return t_done("t_proc forkbomb");
  }
  if (argc > 1 && !strcmp(argv[1], "bench")) {
    bench();
    return 0;
  }
  t_fork_wait();
  t_exec();
  t_pipes();
  t_groups();
  t_signals();
  t_hostile_args();
  return t_done("t_proc");
}
