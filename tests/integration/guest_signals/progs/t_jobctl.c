/* Job control and signal delivery details, checked the same way natively
 * on the host and in the guest: SIGSTOP/SIGTSTP stop every thread of a
 * process (counters in shared memory freeze), SIGCONT continues it (also
 * where SIGCONT is blocked or ignored), SIGKILL ends a stopped process;
 * wait4 WUNTRACED/WCONTINUED and waitid WSTOPPED/WCONTINUED/WNOWAIT report
 * a stop and a continue once; SIGCHLD with CLD_STOPPED/CLD_CONTINUED unless
 * SA_NOCLDSTOP; a blocking call a stop interrupted goes on after SIGCONT
 * (no EINTR), a timed one that ends while stopped and a signal for it
 * then; TSTP's handler, SIG_IGN, blocked-then-discarded-by-SIGCONT;
 * TSTP/TTIN/TTOU do nothing in an orphaned process group; RFLAGS in a
 * handler (TF, DF clear; AC as the interrupted code had it, as Linux); a
 * signal meant for a thread whose ppoll/pselect6 ended with its mask
 * blocking it goes to another thread; ^Z, `jobs`, `fg` and ^C in an
 * interactive busybox sh on a pseudo-terminal. Every scenario runs in a child
 * process with an alarm as a hang watchdog; the "does not run while
 * stopped" checks compare counters, never times.
 * Usage: t_jobctl [SCENARIO] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "sigtest.h"

/* Bounded wait (a hang is a failure, not a timing check) for *v > old. */
static int wait_above(volatile long *v, long old)
{
  for (int i = 0; i < 20000 && *v <= old; i++)
    pause_ms(1);
  return *v > old;
}

static void set_action(int sig, void (*h)(int), int flags)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = h;
  sa.sa_flags = flags;
  sigaction(sig, &sa, NULL);
}

static void noop(int sig)
{
  (void)sig;
}

/* Memory the children share with the scenario. */
struct shared {
  volatile long cnt[2];
  volatile int quit, tids[2], read_res, sleep_res;
};
static struct shared *sh;

static void shared_init(void)
{
  sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(sh != MAP_FAILED);
  memset((void *)sh, 0, sizeof(*sh));
}

/* Counts with a syscall per round (the guest's ring-0 mode on a PVM-style
 * host switches tasks at syscalls only). */
static void spin(int i)
{
  sh->tids[i] = (int)syscall(SYS_gettid);
  while (!sh->quit) {
    sh->cnt[i]++;
    sched_yield();
  }
}

/* A child in a process group of its own (TSTP stops it: the group is not
 * orphaned), counting in cnt[0]; sigcont: what it does with SIGCONT. */
static pid_t spin_child(int sigcont)
{
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    setpgid(0, 0);
    if (sigcont == 1)
      signal(SIGCONT, SIG_IGN);
    if (sigcont == 2) {
      set_action(SIGCONT, noop, 0);
      sigset_t s;
      sigemptyset(&s);
      sigaddset(&s, SIGCONT);
      sigprocmask(SIG_BLOCK, &s, NULL);
    }
    spin(0);
    _exit(0);
  }
  CHECK(wait_above(&sh->cnt[0], 0));
  return c;
}

/* Stops c with sig, checks the report (once) and that it does not run. */
static void stop_checked(pid_t c, int sig)
{
  int st = 0;
  CHECK_EQ(kill(c, sig), 0);
  CHECK_EQ(waitpid(c, &st, WUNTRACED), c);
  CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == sig);
  CHECK_EQ(waitpid(c, &st, WUNTRACED | WNOHANG), 0);
  long v = sh->cnt[0];
  pause_ms(100);
  CHECK_EQ(sh->cnt[0], v);
}

/* Continues c, checks the report (once) and that it runs again. */
static void cont_checked(pid_t c)
{
  int st = 0;
  long v = sh->cnt[0];
  CHECK_EQ(kill(c, SIGCONT), 0);
  CHECK_EQ(waitpid(c, &st, WCONTINUED), c);
  CHECK(WIFCONTINUED(st));
  CHECK_EQ(waitpid(c, &st, WCONTINUED | WNOHANG), 0);
  CHECK(wait_above(&sh->cnt[0], v));
}

static void kill_checked(pid_t c)
{
  int st = 0;
  CHECK_EQ(kill(c, SIGKILL), 0);
  CHECK_EQ(waitpid(c, &st, 0), c);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static void s_stop_cont(void)
{
  shared_init();
  pid_t c = spin_child(0);
  stop_checked(c, SIGSTOP);
  cont_checked(c);
  stop_checked(c, SIGTSTP); /* default action: stop */
  cont_checked(c);
  stop_checked(c, SIGSTOP);
  kill_checked(c); /* SIGKILL ends a stopped process */
}

/* SIGCONT continues whatever its action or mask. */
static void s_cont_ignored_blocked(void)
{
  shared_init();
  for (int how = 1; how <= 2; how++) {
    sh->cnt[0] = 0;
    pid_t c = spin_child(how);
    stop_checked(c, SIGSTOP);
    cont_checked(c);
    kill_checked(c);
  }
}

/* Every thread stops: two counting threads, one in read, one in
 * nanosleep; the stop comes by kill, then by tgkill of SIGTSTP to one
 * thread. The read and the sleep go on after SIGCONT without EINTR. */
static void *spin_thread(void *arg)
{
  spin((int)(intptr_t)arg);
  return NULL;
}

static int pipe_rd;
static void *read_thread(void *arg)
{
  (void)arg;
  char ch;
  ssize_t n = read(pipe_rd, &ch, 1);
  sh->read_res = n == 1 ? 1 : errno == EINTR ? 2 : 3;
  return NULL;
}

static void *sleep_thread(void *arg)
{
  (void)arg;
  struct timespec ts = {0, 600 * 1000000L};
  sh->sleep_res = nanosleep(&ts, NULL) == 0 ? 1 : errno == EINTR ? 2 : 3;
  return NULL;
}

static void s_stop_threads(void)
{
  shared_init();
  int p[2];
  CHECK_EQ(pipe(p), 0);
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    setpgid(0, 0);
    pipe_rd = p[0];
    pthread_t th[4];
    pthread_create(&th[0], NULL, spin_thread, (void *)0);
    pthread_create(&th[1], NULL, spin_thread, (void *)1);
    pthread_create(&th[2], NULL, read_thread, NULL);
    pthread_create(&th[3], NULL, sleep_thread, NULL);
    for (int i = 0; i < 4; i++)
      pthread_join(th[i], NULL);
    _exit(sh->read_res == 1 && sh->sleep_res == 1 ? 0 : 10 * sh->read_res + sh->sleep_res);
  }
  CHECK(wait_above(&sh->cnt[0], 0) && wait_above(&sh->cnt[1], 0));
  pause_ms(30); /* the reader and the sleeper most likely parked (not relied on) */
  int st = 0;
  for (int round = 0; round < 2; round++) {
    int sig = round ? SIGTSTP : SIGSTOP;
    if (round)
      CHECK_EQ(syscall(SYS_tgkill, c, sh->tids[1], SIGTSTP), 0);
    else
      CHECK_EQ(kill(c, SIGSTOP), 0);
    CHECK_EQ(waitpid(c, &st, WUNTRACED), c);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == sig);
    long a = sh->cnt[0], b = sh->cnt[1];
    pause_ms(100);
    CHECK_EQ(sh->cnt[0], a);
    CHECK_EQ(sh->cnt[1], b);
    CHECK_EQ(kill(c, SIGCONT), 0);
    CHECK_EQ(waitpid(c, &st, WCONTINUED), c);
    CHECK(WIFCONTINUED(st));
    CHECK(wait_above(&sh->cnt[0], a) && wait_above(&sh->cnt[1], b));
  }
  CHECK_EQ(write(p[1], "x", 1), 1);
  sh->quit = 1;
  CHECK_EQ(waitpid(c, &st, 0), c);
  CHECK(WIFEXITED(st));
  CHECK_EQ(WEXITSTATUS(st), 0); /* 10 * read result + sleep result: 1 ok, 2 EINTR */
  close(p[0]);
  close(p[1]);
}

/* A thread's timed wait that ends while its process is stopped, and a
 * handled signal for that thread while still stopped (in the guest: the
 * parked thread is woken and parks again): once continued the handler
 * runs and the thread ends. The main thread, which takes the stop, blocks
 * the signal. */
static void *timed_sleeper(void *arg)
{
  (void)arg;
  struct timespec ts = {0, 200 * 1000000L};
  while (nanosleep(&ts, &ts) && errno == EINTR)
    ;
  return NULL;
}

static void s_stop_timed_wait(void)
{
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    set_action(SIGUSR1, noop, 0);
    pthread_t th;
    pthread_create(&th, NULL, timed_sleeper, NULL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, NULL);
    pthread_join(th, NULL);
    _exit(0);
  }
  pause_ms(50);
  int st = 0;
  CHECK_EQ(kill(c, SIGSTOP), 0);
  CHECK_EQ(waitpid(c, &st, WUNTRACED), c);
  CHECK(WIFSTOPPED(st));
  pause_ms(400); /* the sleeper's time ends while stopped */
  CHECK_EQ(kill(c, SIGUSR1), 0);
  pause_ms(50);
  CHECK_EQ(kill(c, SIGCONT), 0);
  CHECK_EQ(waitpid(c, &st, 0), c);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* The parent's SIGCHLD: CLD_STOPPED and CLD_CONTINUED with the signal in
 * si_status; none of them with SA_NOCLDSTOP (the first SIGCHLD is then the
 * exit's: one SIGCHLD stays pending at most). */
static int take_sigchld(siginfo_t *si)
{
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGCHLD);
  struct timespec to = {10, 0};
  return sigtimedwait(&s, si, &to);
}

static void s_sigchld(void)
{
  shared_init();
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGCHLD);
  sigprocmask(SIG_BLOCK, &s, NULL);
  set_action(SIGCHLD, noop, 0); /* a handler: blocked SIGCHLD stays queued */
  siginfo_t si;
  pid_t c = spin_child(0);
  stop_checked(c, SIGSTOP);
  CHECK_EQ(take_sigchld(&si), SIGCHLD);
  CHECK_EQ(si.si_code, CLD_STOPPED);
  CHECK_EQ(si.si_status, SIGSTOP);
  CHECK_EQ(si.si_pid, c);
  cont_checked(c);
  CHECK_EQ(take_sigchld(&si), SIGCHLD);
  CHECK_EQ(si.si_code, CLD_CONTINUED);
  CHECK_EQ(si.si_status, SIGCONT);
  kill_checked(c);
  CHECK_EQ(take_sigchld(&si), SIGCHLD);
  CHECK_EQ(si.si_code, CLD_KILLED);

  set_action(SIGCHLD, noop, SA_NOCLDSTOP);
  sh->cnt[0] = 0;
  c = spin_child(0);
  stop_checked(c, SIGSTOP);
  cont_checked(c);
  kill_checked(c);
  CHECK_EQ(take_sigchld(&si), SIGCHLD);
  CHECK_EQ(si.si_code, CLD_KILLED);
}

static void s_waitid(void)
{
  shared_init();
  pid_t c = spin_child(0);
  CHECK_EQ(kill(c, SIGSTOP), 0);
  siginfo_t si;
  for (int i = 0; i < 2; i++) { /* WNOWAIT leaves it to report again */
    memset(&si, 0, sizeof(si));
    CHECK_EQ(waitid(P_PID, (id_t)c, &si, WSTOPPED | WNOWAIT), 0);
    CHECK_EQ(si.si_signo, SIGCHLD);
    CHECK_EQ(si.si_code, CLD_STOPPED);
    CHECK_EQ(si.si_status, SIGSTOP);
    CHECK_EQ(si.si_pid, c);
  }
  CHECK_EQ(waitid(P_PID, (id_t)c, &si, WSTOPPED), 0);
  CHECK_EQ(si.si_code, CLD_STOPPED);
  memset(&si, 0xff, sizeof(si));
  CHECK_EQ(waitid(P_PID, (id_t)c, &si, WSTOPPED | WNOHANG), 0);
  CHECK_EQ(si.si_pid, 0); /* reported once */
  CHECK_EQ(kill(c, SIGCONT), 0);
  memset(&si, 0, sizeof(si));
  CHECK_EQ(waitid(P_ALL, 0, &si, WCONTINUED | WNOWAIT), 0);
  CHECK_EQ(si.si_code, CLD_CONTINUED);
  CHECK_EQ(si.si_status, SIGCONT);
  CHECK_EQ(si.si_pid, c);
  CHECK_EQ(waitid(P_PID, (id_t)c, &si, WCONTINUED), 0);
  memset(&si, 0xff, sizeof(si));
  CHECK_EQ(waitid(P_ALL, 0, &si, WCONTINUED | WSTOPPED | WNOHANG), 0);
  CHECK_EQ(si.si_pid, 0);
  CHECK_EQ(waitid(P_PID, (id_t)c, &si, 0), -1); /* no event asked for */
  CHECK_EQ(errno, EINVAL);
  CHECK_EQ(kill(c, SIGKILL), 0);
  CHECK_EQ(waitid(P_PID, (id_t)c, &si, WEXITED), 0);
  CHECK_EQ(si.si_code, CLD_KILLED);
  CHECK_EQ(si.si_status, SIGKILL);
}

/* In the child itself: TSTP with a handler runs it, ignored does
 * nothing, blocked stays pending until a SIGCONT discards it. */
static volatile int tstp_hits;
static void on_tstp(int sig)
{
  (void)sig;
  tstp_hits++;
}

static void s_tstp_actions(void)
{
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    setpgid(0, 0);
    set_action(SIGTSTP, on_tstp, 0);
    raise(SIGTSTP);
    CHECK_EQ(tstp_hits, 1);
    signal(SIGTSTP, SIG_IGN);
    raise(SIGTSTP);
    sigset_t s, pend;
    sigemptyset(&s);
    sigaddset(&s, SIGTSTP);
    sigpending(&pend);
    CHECK(!sigismember(&pend, SIGTSTP));
    signal(SIGTSTP, SIG_DFL);
    sigprocmask(SIG_BLOCK, &s, NULL);
    raise(SIGTSTP);
    sigpending(&pend);
    CHECK(sigismember(&pend, SIGTSTP));
    raise(SIGCONT); /* discards the pending stop signal */
    sigpending(&pend);
    CHECK(!sigismember(&pend, SIGTSTP));
    sigprocmask(SIG_UNBLOCK, &s, NULL); /* nothing left to stop it */
    fflush(stdout);
    _exit(t_fails ? 1 : 0);
  }
  int st = 0;
  CHECK_EQ(waitpid(c, &st, WUNTRACED), c);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A session leader's group is orphaned (its parent is in another
 * session): TSTP, TTIN and TTOU with the default action do not stop it;
 * SIGSTOP does. */
static void s_orphaned_pgrp(void)
{
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    setsid();
    raise(SIGTSTP);
    raise(SIGTTIN);
    raise(SIGTTOU);
    raise(SIGSTOP);
    _exit(5);
  }
  int st = 0;
  CHECK_EQ(waitpid(c, &st, WUNTRACED), c);
  CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
  CHECK_EQ(kill(c, SIGCONT), 0);
  CHECK_EQ(waitpid(c, &st, 0), c);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 5);
}

/* RFLAGS at a handler's start: the interrupted code set DF and AC (and
 * the kernel entered with them); the handler has DF clear and AC as it
 * was (Linux keeps AC). A program single-stepping itself (TF by popf): its
 * SIGTRAP handler starts with TF clear, so it runs once, not recursively;
 * it clears TF in the frame to stop the stepping. */
static volatile unsigned long h_flags;
static volatile int traps;
static unsigned long rflags_now(void)
{
  unsigned long f;
  __asm__ volatile("pushfq; popq %0" : "=r"(f));
  return f;
}
static void on_usr1(int sig)
{
  (void)sig;
  h_flags = rflags_now();
}
static void on_trap(int sig, siginfo_t *si, void *ucv)
{
  (void)sig;
  (void)si;
  ucontext_t *uc = ucv;
  traps++;
  h_flags = rflags_now();
  uc->uc_mcontext.gregs[REG_EFL] &= ~0x100ll;
}

static void s_rflags(void)
{
  set_action(SIGUSR1, on_usr1, 0);
  long pid = getpid(), tid = syscall(SYS_gettid), ret;
  __asm__ volatile("pushfq; orq $0x40400, (%%rsp); popfq; syscall;"
                   "pushfq; andq $~0x40400, (%%rsp); popfq"
                   : "=a"(ret)
                   : "a"((long)SYS_tgkill), "D"(pid), "S"(tid), "d"((long)SIGUSR1)
                   : "rcx", "r11", "memory", "cc");
  CHECK_EQ(ret, 0);
  CHECK_EQ(h_flags & 0x400, 0);         /* DF */
  CHECK_EQ(h_flags & 0x40000, 0x40000); /* AC, as Linux leaves it */
  CHECK_EQ(rflags_now() & 0x40400, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = on_trap;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGTRAP, &sa, NULL);
  h_flags = ~0ul;
  __asm__ volatile("pushfq; orq $0x100, (%%rsp); popfq; nop; nop" ::: "memory", "cc");
  CHECK_EQ(traps, 1);
  CHECK_EQ(h_flags & 0x100, 0); /* TF */
  CHECK_EQ(rflags_now() & 0x100, 0);
}

/* A process signal meant for a thread whose ppoll (then pselect6) ends
 * with its own mask restored, which blocks the signal: it goes to the
 * other thread, parked in pause, which does not block it. */
static volatile int usr2_tid;
static void on_usr2(int sig)
{
  (void)sig;
  usr2_tid = (int)syscall(SYS_gettid);
}
static volatile int pauser_tid, pauser_done;
static void *pauser(void *arg)
{
  (void)arg;
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  pthread_sigmask(SIG_UNBLOCK, &s, NULL);
  pauser_tid = (int)syscall(SYS_gettid);
  pause();
  pauser_done = 1;
  return NULL;
}

static void s_pwait_retarget(void)
{
  set_action(SIGUSR2, on_usr2, 0);
  sigset_t blk, none;
  sigemptyset(&blk);
  sigaddset(&blk, SIGUSR2);
  sigemptyset(&none);
  sigprocmask(SIG_BLOCK, &blk, NULL);
  for (int call = 0; call < 2; call++) {
    int p[2];
    CHECK_EQ(pipe(p), 0);
    usr2_tid = pauser_done = pauser_tid = 0;
    pthread_t th;
    pthread_create(&th, NULL, pauser, NULL);
    while (!pauser_tid)
      pause_ms(1);
    pause_ms(30);
    pid_t me = getpid();
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
      pause_ms(50);
      write(p[1], "x", 1); /* wakes the wait, then the signal comes */
      kill(me, SIGUSR2);
      _exit(0);
    }
    int n;
    if (call == 0) {
      struct pollfd pf = {.fd = p[0], .events = POLLIN};
      n = ppoll(&pf, 1, NULL, &none);
    } else {
      fd_set r;
      FD_ZERO(&r);
      FD_SET(p[0], &r);
      n = pselect(p[0] + 1, &r, NULL, NULL, NULL, &none);
    }
    /* 1: it ended with the fd ready; -1 EINTR where the signal came first
     * (then this thread took it) */
    CHECK(n == 1 || (n == -1 && errno == EINTR));
    if (n == 1) {
      for (int i = 0; i < 20000 && !pauser_done; i++)
        pause_ms(1);
      CHECK_EQ(usr2_tid, pauser_tid);
    } else {
      pthread_kill(th, SIGUSR2);
    }
    pthread_join(th, NULL);
    waitpid(c, NULL, 0);
    close(p[0]);
    close(p[1]);
  }
}

/* An interactive busybox sh on a pseudo-terminal (its controlling
 * terminal): ^Z stops its foreground `sleep` (SIGTSTP to the foreground
 * group) and the shell says so, `jobs` lists it stopped, `fg` continues
 * it in the foreground, where ^C ends it (status 130); a background `cat`
 * reading the terminal stops (SIGTTIN). */
static char pty_buf[8192];
static size_t pty_len;

/* Reads the master until want shows up (bounded: ~20 s); drops what was
 * read before it. */
/* Waits (up to ~20 s) for want in the terminal's output; the text before
 * it goes to before (NULL: dropped), the text up to its end is consumed. */
static int pty_expect_text(int m, const char *want, char *before, size_t blen)
{
  for (int i = 0; i < 200; i++) {
    char *at = strstr(pty_buf, want);
    if (at) {
      if (before && blen)
        snprintf(before, blen, "%.*s", (int)(at - pty_buf), pty_buf);
      size_t rest = pty_len - (size_t)(at + strlen(want) - pty_buf);
      memmove(pty_buf, at + strlen(want), rest + 1);
      pty_len = rest;
      return 1;
    }
    struct pollfd pf = {.fd = m, .events = POLLIN};
    if (poll(&pf, 1, 100) == 1) {
      if (pty_len > sizeof(pty_buf) - 512) { /* keep the tail */
        memmove(pty_buf, pty_buf + pty_len - 256, 257);
        pty_len = 256;
      }
      ssize_t n = read(m, pty_buf + pty_len, sizeof(pty_buf) - 1 - pty_len);
      if (n <= 0)
        break;
      pty_len += (size_t)n;
      pty_buf[pty_len] = 0;
    }
  }
  printf("pty: no \"%s\" in: %.300s\n", want, pty_buf);
  return 0;
}

static int pty_expect(int m, const char *want)
{
  return pty_expect_text(m, want, NULL, 0);
}

static void pty_send(int m, const char *s)
{
  CHECK_EQ(write(m, s, strlen(s)), (ssize_t)strlen(s));
}

static void s_pty_shell(void)
{
  if (access("/bin/busybox", X_OK)) {
    printf("pty_shell: no /bin/busybox here, not run\n");
    return;
  }
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  CHECK(m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0);
  const char *name = ptsname(m);
  CHECK(name != NULL);
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    setsid();
    int fd = open(name, O_RDWR); /* the session's controlling terminal */
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    close(m);
    if (fd > 2)
      close(fd);
    char *env[] = {"PATH=/bin:/usr/bin", "PS1=P> ", "ENV=/dev/null", "TERM=dumb", NULL};
    execle("/bin/busybox", "sh", "-i", (char *)NULL, env);
    _exit(127);
  }
  /* The dialogue: what to type (NULL: nothing), then what must follow,
   * in order; a pause after typing lets a started command run (not relied
   * on: ^Z or ^C then reaches it or the shell). */
  static const struct {
    const char *type, *want1, *want2;
    int pause;
  } steps[] = {
      {NULL, "P> ", NULL, 0},
      {"echo go$((6*7)); sleep 100\n", "go42", NULL, 200},
      {"\x1a", "Stopped", "P> ", 0},
      {"jobs\n", "Stopped", "P> ", 0},
      {"fg\n", "sleep 100", NULL, 200},
      {"\x03", "P> ", NULL, 0},
      {"echo rc=$?\n", "rc=130", NULL, 0},
      /* a background reader of the terminal stops (SIGTTIN): see below */
      {"cat &\n", "P> ", NULL, 0},
  };
  pty_len = 0;
  pty_buf[0] = 0;
  for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
    if (steps[i].type)
      pty_send(m, steps[i].type);
    CHECK(pty_expect(m, steps[i].want1));
    if (steps[i].pause)
      pause_ms(steps[i].pause);
    if (steps[i].want2)
      CHECK(pty_expect(m, steps[i].want2));
  }
  /* ... once it has run and read: at load that takes a while, so ask
   * `jobs` until it says Stopped (up to ~50 times), not once after a pause. */
  int stopped = 0;
  for (int i = 0; i < 50 && !stopped; i++) {
    char seen[512] = "";
    pty_send(m, "jobs; echo end$((40+2))\n");
    CHECK(pty_expect_text(m, "end42", seen, sizeof seen));
    CHECK(pty_expect(m, "P> "));
    if (!(stopped = strstr(seen, "Stopped") != NULL))
      pause_ms(100);
  }
  CHECK(stopped);
  pty_send(m, "kill -9 %1; echo done$((6*7))\n");
  CHECK(pty_expect(m, "done42"));
  pty_send(m, "exit\n");
  /* ash may answer "You have stopped jobs." once (its table lags) */
  pause_ms(300);
  if (write(m, "exit\n", 5) < 0)
    printf("pty: the shell is gone already\n");
  int st = 0;
  CHECK_EQ(waitpid(c, &st, 0), c);
  CHECK(WIFEXITED(st));
  close(m);
}

int main(int argc, char **argv)
{
  const char *only = scenario_only(argc, argv);
  S(s_stop_cont);
  S(s_cont_ignored_blocked);
  S(s_stop_threads);
  S(s_stop_timed_wait);
  S(s_sigchld);
  S(s_waitid);
  S(s_tstp_actions);
  S(s_orphaned_pgrp);
  S(s_rflags);
  S(s_pwait_retarget);
  S(s_pty_shell);
  return t_done("t_jobctl");
}
