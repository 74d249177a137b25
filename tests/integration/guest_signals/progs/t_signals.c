/* Process-directed signals in multi-threaded processes, checked the same
 * way natively on the host and in the guest: which thread takes a signal
 * sent with kill (one that does not block it, preferring the main thread),
 * a signal blocked everywhere staying pending on the process until a thread
 * unblocks it or takes it with sigwaitinfo/sigtimedwait/signalfd, a
 * tgkill'd signal staying the thread's own, default actions (terminate,
 * SIGKILL, SIGCONT) on a process whose threads sit in blocking calls, and
 * exit_group from any thread while the others are blocked.
 * Every scenario runs in a child process (its own threads and masks) with
 * an alarm as a hang watchdog. Usage: t_signals [SCENARIO] */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sigtest.h"


static int gettid_(void)
{
  return (int)syscall(SYS_gettid);
}

static volatile int handler_tid, handler_sig, handler_hits;
static void on_sig(int sig)
{
  handler_tid = gettid_();
  handler_sig = sig;
  handler_hits++;
}

static void set_handler(int sig, void (*h)(int))
{
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = h;
  sigaction(sig, &sa, NULL); /* no SA_RESTART: blocking calls end with EINTR */
}

static void mask(int how, int a, int b)
{
  sigset_t s;
  sigemptyset(&s);
  if (a)
    sigaddset(&s, a);
  if (b)
    sigaddset(&s, b);
  pthread_sigmask(how, &s, NULL);
}

/* Waits (bounded: a hang is a failure, not a timing check) for *v to
 * become nonzero. */
static int wait_set(volatile int *v)
{
  for (int i = 0; i < 20000 && !*v; i++)
    pause_ms(1);
  return *v;
}

/* ---- worker threads ---- */

struct worker {
  pthread_t th;
  volatile int tid, ready, done, eintr;
  int block;  /* the signal this thread blocks (0: none) */
  int fd;     /* read end it blocks on */
  int what;   /* 0: read, 1: pause, 2: nanosleep, 3: sched_yield loop, 4: sigwaitinfo */
  sigset_t waitset;
  volatile int got;
  siginfo_t info;
};

static volatile int stop_spin;

static void *worker_main(void *arg)
{
  struct worker *w = arg;
  w->tid = gettid_();
  if (w->block)
    mask(SIG_BLOCK, w->block, 0);
  w->ready = 1;
  char c;
  switch (w->what) {
  case 0:
    if (read(w->fd, &c, 1) < 0 && errno == EINTR)
      w->eintr = 1;
    break;
  case 1:
    pause();
    w->eintr = 1;
    break;
  case 2: {
    struct timespec ts = {30, 0};
    if (nanosleep(&ts, NULL) && errno == EINTR)
      w->eintr = 1;
    break;
  }
  case 3:
    while (!stop_spin && handler_tid != w->tid)
      sched_yield();
    break;
  case 4:
    w->got = sigwaitinfo(&w->waitset, &w->info);
    break;
  }
  w->done = 1;
  return NULL;
}

static void start(struct worker *w, int what, int block, int fd)
{
  memset(w, 0, sizeof(*w));
  w->what = what;
  w->block = block;
  w->fd = fd;
  pthread_create(&w->th, NULL, worker_main, w);
  while (!w->ready)
    pause_ms(1);
  pause_ms(30); /* most likely parked in its call by now (not relied on) */
}

/* ---- which thread takes a process signal ---- */

/* The main thread blocks SIGUSR1; the worker, started with that mask,
 * unblocks it and parks in a blocking call (or yields in user mode):
 * kill(getpid()) must reach it there. */
static void *unblock_then(void *arg)
{
  struct worker *w = arg;
  mask(SIG_UNBLOCK, SIGUSR1, 0);
  return worker_main(w);
}

static void redirect_to(int what)
{
  int p[2];
  CHECK_EQ(pipe(p), 0);
  set_handler(SIGUSR1, on_sig);
  handler_tid = handler_hits = 0;
  stop_spin = 0;
  mask(SIG_BLOCK, SIGUSR1, 0);
  struct worker w;
  memset(&w, 0, sizeof(w));
  w.what = what;
  w.fd = p[0];
  pthread_create(&w.th, NULL, unblock_then, &w);
  while (!w.ready)
    pause_ms(1);
  pause_ms(30);
  CHECK_EQ(kill(getpid(), SIGUSR1), 0);
  CHECK(wait_set(&handler_hits));
  CHECK_EQ(handler_tid, w.tid);
  CHECK_EQ(handler_hits, 1);
  stop_spin = 1;
  write(p[1], "x", 1); /* a read the signal did not end (it came first) */
  if (what == 1 || what == 2)
    pthread_kill(w.th, SIGUSR1); /* pause/nanosleep the signal came before */
  pthread_join(w.th, NULL);
  sigset_t pend;
  sigpending(&pend);
  CHECK(!sigismember(&pend, SIGUSR1));
  mask(SIG_UNBLOCK, SIGUSR1, 0);
  close(p[0]);
  close(p[1]);
}

static void s_redirect_read(void)
{
  redirect_to(0);
}
static void s_redirect_pause(void)
{
  redirect_to(1);
}
static void s_redirect_sleep(void)
{
  redirect_to(2);
}
static void s_redirect_yield(void)
{
  redirect_to(3);
}

/* A signal from another process: the main thread (parked in read, not
 * blocking it) takes it, not a newer thread that blocks it; nor a newer
 * thread that does not block it either (Linux tries the thread the pid
 * names first). */
static void main_preferred(int worker_block)
{
  int p[2], q[2];
  CHECK_EQ(pipe(p), 0);
  CHECK_EQ(pipe(q), 0);
  set_handler(SIGUSR1, on_sig);
  handler_tid = handler_hits = 0;
  struct worker w1, w2;
  start(&w1, 0, worker_block, q[0]);
  start(&w2, 0, worker_block, q[0]);
  pid_t me = getpid();
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    pause_ms(50);
    kill(me, SIGUSR1);
    /* where the signal went elsewhere, the main thread's read ends with
     * this byte (a failure) instead of waiting for the watchdog */
    pause_ms(300);
    write(p[1], "z", 1);
    _exit(0);
  }
  char ch;
  CHECK_EQ(read(p[0], &ch, 1), -1);
  CHECK_EQ(errno, EINTR);
  CHECK_EQ(handler_tid, gettid_());
  CHECK_EQ(handler_hits, 1);
  waitpid(c, NULL, 0);
  write(q[1], "ab", 2);
  pthread_join(w1.th, NULL);
  pthread_join(w2.th, NULL);
  CHECK(!w1.eintr && !w2.eintr);
}

static void s_main_preferred(void)
{
  main_preferred(SIGUSR1);
}
static void s_main_preferred_unblocked(void)
{
  main_preferred(0);
}

/* Blocked by every thread: pending on the process (both threads see it in
 * sigpending), taken by the first thread that unblocks it, at once. */
static void s_pending_until_unblocked(void)
{
  int q[2];
  CHECK_EQ(pipe(q), 0);
  set_handler(SIGUSR1, on_sig);
  handler_tid = handler_hits = 0;
  mask(SIG_BLOCK, SIGUSR1, 0);
  struct worker w;
  start(&w, 0, SIGUSR1, q[0]);
  CHECK_EQ(kill(getpid(), SIGUSR1), 0);
  pause_ms(20);
  CHECK_EQ(handler_hits, 0);
  sigset_t pend;
  sigpending(&pend);
  CHECK(sigismember(&pend, SIGUSR1));
  mask(SIG_UNBLOCK, SIGUSR1, 0);
  CHECK_EQ(handler_hits, 1); /* before sigprocmask returned */
  CHECK_EQ(handler_tid, gettid_());
  write(q[1], "a", 1);
  pthread_join(w.th, NULL);
  CHECK(!w.eintr);
}

/* A thread's own signal (tgkill) is not the process's: another thread's
 * sigtimedwait does not see it; the thread's own does. */
static void *own_wait(void *arg)
{
  struct worker *w = arg;
  w->tid = gettid_();
  w->ready = 1;
  while (!w->done)
    pause_ms(1);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  struct timespec z = {0, 0};
  w->got = sigtimedwait(&s, &w->info, &z);
  return NULL;
}

static void s_thread_vs_process(void)
{
  mask(SIG_BLOCK, SIGUSR2, 0);
  struct worker w;
  memset(&w, 0, sizeof(w));
  pthread_create(&w.th, NULL, own_wait, &w);
  while (!w.ready)
    pause_ms(1);
  CHECK_EQ(syscall(SYS_tgkill, getpid(), w.tid, SIGUSR2), 0);
  sigset_t s, pend;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  struct timespec z = {0, 0};
  siginfo_t si;
  sigpending(&pend);
  CHECK(!sigismember(&pend, SIGUSR2)); /* the worker's, not mine */
  CHECK_EQ(sigtimedwait(&s, &si, &z), -1);
  CHECK_EQ(errno, EAGAIN);
  /* a process signal: mine to take */
  CHECK_EQ(kill(getpid(), SIGUSR2), 0);
  CHECK_EQ(sigtimedwait(&s, &si, &z), SIGUSR2);
  CHECK_EQ(si.si_code, SI_USER);
  CHECK_EQ(si.si_pid, getpid());
  w.done = 1;
  pthread_join(w.th, NULL);
  CHECK_EQ(w.got, SIGUSR2);
  /* SI_TKILL from the kernel; glibc's sigtimedwait folds it to SI_USER */
  CHECK(w.info.si_code == SI_TKILL || w.info.si_code == SI_USER);
}

/* Starts fn on a thread for w, waits until it is ready (and a little
 * more, for it to block), has a child process send sig to this process and
 * joins the thread; the child's pid, for the caller to check and reap. */
static pid_t signalled_worker(struct worker *w, void *(*fn)(void *), int sig)
{
  pthread_create(&w->th, NULL, fn, w);
  while (!w->ready)
    pause_ms(1);
  pause_ms(30);
  pid_t me = getpid();
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    kill(me, sig);
    _exit(0);
  }
  pthread_join(w->th, NULL);
  return c;
}

/* The usual daemon pattern: every thread blocks SIGTERM and SIGINT, one
 * thread sigwaits for them; signals from another process reach it. */
static void s_sigwait_thread(void)
{
  mask(SIG_BLOCK, SIGTERM, SIGINT);
  struct worker w;
  memset(&w, 0, sizeof(w));
  w.what = 4;
  sigemptyset(&w.waitset);
  sigaddset(&w.waitset, SIGTERM);
  sigaddset(&w.waitset, SIGINT);
  pid_t c = signalled_worker(&w, worker_main, SIGTERM);
  CHECK_EQ(w.got, SIGTERM);
  CHECK_EQ(w.info.si_pid, c);
  CHECK_EQ(w.info.si_code, SI_USER);
  waitpid(c, NULL, 0);
  /* again, SIGINT sent by the main thread itself */
  memset(&w, 0, sizeof(w));
  w.what = 4;
  sigemptyset(&w.waitset);
  sigaddset(&w.waitset, SIGTERM);
  sigaddset(&w.waitset, SIGINT);
  pthread_create(&w.th, NULL, worker_main, &w);
  while (!w.ready)
    pause_ms(1);
  pause_ms(30);
  CHECK_EQ(kill(getpid(), SIGINT), 0);
  pthread_join(w.th, NULL);
  CHECK_EQ(w.got, SIGINT);
  sigset_t pend;
  sigpending(&pend);
  CHECK(!sigismember(&pend, SIGINT) && !sigismember(&pend, SIGTERM));
}

/* signalfd read in a thread: a process signal from another process. */
static void *sfd_reader(void *arg)
{
  struct worker *w = arg;
  w->tid = gettid_();
  w->ready = 1;
  struct signalfd_siginfo ssi;
  if (read(w->fd, &ssi, sizeof(ssi)) == (ssize_t)sizeof(ssi)) {
    w->got = (int)ssi.ssi_signo;
    w->info.si_pid = (pid_t)ssi.ssi_pid;
  }
  return NULL;
}

static void s_signalfd_thread(void)
{
  mask(SIG_BLOCK, SIGUSR1, 0);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  int fd = signalfd(-1, &s, 0);
  CHECK(fd >= 0);
  struct worker w;
  memset(&w, 0, sizeof(w));
  w.fd = fd;
  pid_t c = signalled_worker(&w, sfd_reader, SIGUSR1);
  CHECK_EQ(w.got, SIGUSR1);
  CHECK_EQ(w.info.si_pid, c);
  waitpid(c, NULL, 0);
  close(fd);
}

/* ---- default actions on a multi-threaded process ---- */

/* A child with three threads parked (read, pause, nanosleep) and its main
 * thread in pthread_join; block: the signal the main thread (and, with
 * all, every thread) blocks. Returns its pid once its threads started,
 * with the tid of one of them in *tid. */
static pid_t parked_child(int block, int all, int *tid)
{
  int r[2], q[2];
  if (pipe(r) || pipe(q))
    return -1;
  fflush(stdout);
  pid_t c = fork();
  if (c == 0) {
    close(r[0]);
    struct worker w[3];
    if (all)
      mask(SIG_BLOCK, block, 0);
    for (int i = 0; i < 3; i++)
      start(&w[i], i, 0, q[0]);
    if (block)
      mask(SIG_BLOCK, block, 0);
    int t1 = w[1].tid;
    write(r[1], &t1, sizeof(t1));
    pthread_join(w[0].th, NULL);
    pthread_join(w[1].th, NULL);
    pthread_join(w[2].th, NULL);
    _exit(42);
  }
  close(r[1]);
  if (read(r[0], tid, sizeof(*tid)) != (ssize_t)sizeof(*tid))
    return -1;
  close(r[0]);
  close(q[0]);
  close(q[1]);
  return c;
}

static void s_fatal_default(void)
{
  /* SIGTERM's default action ends every thread: terminated by SIGTERM */
  int tid;
  pid_t c = parked_child(0, 0, &tid);
  CHECK(c > 0);
  CHECK_EQ(kill(c, SIGTERM), 0);
  int st = 0;
  CHECK_EQ(waitpid(c, &st, 0), c);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
  /* the main thread blocks it, the others do not: still fatal */
  c = parked_child(SIGTERM, 0, &tid);
  CHECK(c > 0);
  CHECK_EQ(kill(c, SIGTERM), 0);
  CHECK_EQ(waitpid(c, &st, 0), c);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
  /* tgkill to one non-main thread: the whole process ends */
  c = parked_child(0, 0, &tid);
  CHECK(c > 0);
  CHECK_EQ(syscall(SYS_tgkill, c, tid, SIGQUIT), 0);
  CHECK_EQ(waitpid(c, &st, 0), c);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGQUIT);
}

static void s_blocked_everywhere_then_kill(void)
{
  /* every thread blocks SIGTERM: it stays pending, the process lives on */
  int tid;
  pid_t c = parked_child(SIGTERM, 1, &tid);
  CHECK(c > 0);
  CHECK_EQ(kill(c, SIGTERM), 0);
  pause_ms(100);
  int st = 0;
  CHECK_EQ(waitpid(c, &st, WNOHANG), 0);
  /* SIGCONT (default: continue, nothing else) leaves it alone too */
  CHECK_EQ(kill(c, SIGCONT), 0);
  pause_ms(50);
  CHECK_EQ(waitpid(c, &st, WNOHANG), 0);
  /* SIGKILL ends it whatever it blocks */
  CHECK_EQ(kill(c, SIGKILL), 0);
  CHECK_EQ(waitpid(c, &st, 0), c);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* ---- exit_group with threads blocked in calls ---- */

static volatile int exit_code_from_thread;
static void *exiter(void *arg)
{
  (void)arg;
  pause_ms(30);
  syscall(SYS_exit_group, exit_code_from_thread);
  return NULL;
}

static void s_exit_group(void)
{
  for (int from_thread = 0; from_thread < 2; from_thread++) {
    int q[2];
    CHECK_EQ(pipe(q), 0);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
      struct worker w[3];
      for (int i = 0; i < 3; i++)
        start(&w[i], i, 0, q[0]);
      if (!from_thread)
        exit(7); /* the main thread, the others parked */
      exit_code_from_thread = 9;
      pthread_t e;
      pthread_create(&e, NULL, exiter, NULL);
      pthread_join(w[0].th, NULL); /* the main thread parked in a futex */
      _exit(1);
    }
    int st = 0;
    CHECK_EQ(waitpid(c, &st, 0), c);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == (from_thread ? 9 : 7));
    close(q[0]);
    close(q[1]);
  }
}

int main(int argc, char **argv)
{
  const char *only = scenario_only(argc, argv);
  S(s_redirect_read);
  S(s_redirect_pause);
  S(s_redirect_sleep);
  S(s_redirect_yield);
  S(s_main_preferred);
  S(s_main_preferred_unblocked);
  S(s_pending_until_unblocked);
  S(s_thread_vs_process);
  S(s_sigwait_thread);
  S(s_signalfd_thread);
  S(s_fatal_default);
  S(s_blocked_everywhere_then_kill);
  S(s_exit_group);
  return t_done("t_signals");
}
