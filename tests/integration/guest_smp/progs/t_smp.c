/* SMP checks inside the guest (run with quark-sandbox --vcpus 2). Every
 * check has a checked result; times are printed, never asserted.
 * Usage: t_smp [all|ncpu|pthreads|parallel|futex|signal|munmap]
 *   ncpu      the guest says it has as many CPUs as it was given (argv[2]).
 *   pthreads  8 threads, mutexes and condition variables: a bounded queue
 *             (4 producers, 4 consumers) and a counter, exact sums.
 *   parallel  two threads pinned to vCPU 0 and 1 each see the other's
 *             counter move between two consecutive reads of their own loop
 *             many times: only possible when both run at once (taking turns
 *             on one vCPU gives one change per time slice).
 *   futex     ping-pong between threads pinned to different vCPUs.
 *   signal    a thread spinning on vCPU 1 is interrupted by a signal sent
 *             from vCPU 0; a child spinning on vCPU 1 dies of SIGKILL.
 *   munmap    a thread on vCPU 1 reads a region that vCPU 0 unmaps: it gets
 *             SIGSEGV and never reads the region after munmap returned.
 *   overlap   (measurement, not in "all") two CPU-bound threads, unpinned:
 *             the wall time of both; against the same run on one vCPU it
 *             gives the speed-up (1.0: taking turns, 2.0: fully parallel). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../guest/progs/t.h"

static uint64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int pin(int cpu)
{
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  return sched_setaffinity(0, sizeof s, &s);
}

static int cpu_now(void)
{
  unsigned c = 99, n = 99;
  if (syscall(SYS_getcpu, &c, &n, NULL) != 0)
    return -1;
  return (int)c;
}

/* ---- ncpu ---- */
static void t_ncpu(int want)
{
  cpu_set_t s;
  CHECK_EQ(sched_getaffinity(0, sizeof s, &s), 0);
  CHECK_EQ(CPU_COUNT(&s), want);
  CHECK_EQ(sysconf(_SC_NPROCESSORS_ONLN), want);
  CHECK_EQ(sysconf(_SC_NPROCESSORS_CONF), want);
  int procs = 0;
  char line[256];
  FILE *f = fopen("/proc/cpuinfo", "r");
  CHECK(f != NULL);
  while (f && fgets(line, sizeof line, f))
    procs += strncmp(line, "processor", 9) == 0;
  if (f)
    fclose(f);
  CHECK_EQ(procs, want);
  int cpus = 0;
  f = fopen("/proc/stat", "r");
  CHECK(f != NULL);
  while (f && fgets(line, sizeof line, f))
    cpus += strncmp(line, "cpu", 3) == 0 && line[3] >= '0' && line[3] <= '9';
  if (f)
    fclose(f);
  CHECK_EQ(cpus, want);
  char online[32] = "", exp[32];
  f = fopen("/sys/devices/system/cpu/online", "r");
  CHECK(f != NULL);
  if (f && fgets(online, sizeof online, f))
    online[strcspn(online, "\n")] = 0;
  if (f)
    fclose(f);
  if (want == 1)
    snprintf(exp, sizeof exp, "0");
  else
    snprintf(exp, sizeof exp, "0-%d", want - 1);
  CHECK(strcmp(online, exp) == 0);
  /* Pinned to each vCPU in turn, getcpu says so. */
  for (int c = 0; c < want; c++) {
    CHECK_EQ(pin(c), 0);
    CHECK_EQ(cpu_now(), c);
    CHECK_EQ(sched_getaffinity(0, sizeof s, &s), 0);
    CHECK(CPU_COUNT(&s) == 1 && CPU_ISSET(c, &s));
  }
  CPU_ZERO(&s);
  CPU_SET(want + 5, &s); /* no such vCPU */
  CHECK(sched_setaffinity(0, sizeof s, &s) == -1 && errno == EINVAL);
  CPU_ZERO(&s);
  for (int c = 0; c < want; c++)
    CPU_SET(c, &s);
  CHECK_EQ(sched_setaffinity(0, sizeof s, &s), 0);
  printf("ncpu: %d CPUs everywhere, /sys online '%s'\n", want, online);
}

/* ---- pthreads ---- */
#define QCAP 16
static uint64_t PER_PRODUCER = 1500; /* pthreads N: another size */
static struct {
  pthread_mutex_t mu;
  pthread_cond_t not_full, not_empty;
  uint64_t buf[QCAP];
  unsigned head, tail, count;
  unsigned producers_left;
  uint64_t consumed_sum, consumed_n;
  uint64_t counter;
} q = {.mu = PTHREAD_MUTEX_INITIALIZER, .not_full = PTHREAD_COND_INITIALIZER, .not_empty = PTHREAD_COND_INITIALIZER};
static int cpus_seen[64];

static void *producer(void *arg)
{
  uint64_t base = (uint64_t)(uintptr_t)arg * 1000000;
  for (uint64_t i = 1; i <= PER_PRODUCER; i++) {
    pthread_mutex_lock(&q.mu);
    while (q.count == QCAP)
      pthread_cond_wait(&q.not_full, &q.mu);
    q.buf[q.tail++ % QCAP] = base + i;
    q.count++;
    q.counter++;
    int c = cpu_now();
    if (c >= 0 && c < 64)
      cpus_seen[c] = 1;
    pthread_cond_signal(&q.not_empty);
    pthread_mutex_unlock(&q.mu);
  }
  pthread_mutex_lock(&q.mu);
  q.producers_left--;
  pthread_cond_broadcast(&q.not_empty);
  pthread_mutex_unlock(&q.mu);
  return NULL;
}

static void *consumer(void *arg)
{
  (void)arg;
  uint64_t sum = 0, n = 0;
  for (;;) {
    pthread_mutex_lock(&q.mu);
    while (q.count == 0 && q.producers_left)
      pthread_cond_wait(&q.not_empty, &q.mu);
    if (q.count == 0) {
      pthread_mutex_unlock(&q.mu);
      break;
    }
    sum += q.buf[q.head++ % QCAP];
    q.count--;
    q.counter++;
    pthread_cond_signal(&q.not_full);
    pthread_mutex_unlock(&q.mu);
    n++;
  }
  pthread_mutex_lock(&q.mu);
  q.consumed_sum += sum;
  q.consumed_n += n;
  pthread_mutex_unlock(&q.mu);
  return NULL;
}

static void t_pthreads(void)
{
  uint64_t t0 = now_ns();
  pthread_t th[8];
  q.producers_left = 4;
  for (int i = 0; i < 4; i++)
    CHECK_EQ(pthread_create(&th[i], NULL, producer, (void *)(uintptr_t)(i + 1)), 0);
  for (int i = 4; i < 8; i++)
    CHECK_EQ(pthread_create(&th[i], NULL, consumer, NULL), 0);
  for (int i = 0; i < 8; i++)
    CHECK_EQ(pthread_join(th[i], NULL), 0);
  uint64_t want = 0;
  for (uint64_t p = 1; p <= 4; p++)
    want += p * 1000000 * PER_PRODUCER + (uint64_t)PER_PRODUCER * (PER_PRODUCER + 1) / 2;
  CHECK_EQ(q.consumed_n, 4 * PER_PRODUCER);
  CHECK_EQ(q.consumed_sum, want);
  CHECK_EQ(q.counter, 8 * PER_PRODUCER);
  CHECK_EQ(q.count, 0);
  int ncpus = 0;
  for (int i = 0; i < 64; i++)
    ncpus += cpus_seen[i];
  printf("pthreads: 8 threads, %d items, sum ok, producers ran on %d vCPU(s), %.0f ms\n",
         (int)(4 * PER_PRODUCER), ncpus, (now_ns() - t0) / 1e6);
}

/* ---- parallel ---- */
static volatile uint64_t ctr[2];
static volatile uint64_t seen_move[2];
static volatile int par_stop, par_cpu[2];

static void *par_thread(void *arg)
{
  int me = (int)(uintptr_t)arg, other = 1 - me;
  CHECK_EQ(pin(me), 0);
  par_cpu[me] = cpu_now();
  uint64_t moves = 0, last = ctr[other];
  while (!par_stop) {
    for (int i = 0; i < 4096; i++) {
      ctr[me]++;
      uint64_t o = ctr[other];
      if (o != last) {
        moves++;
        last = o;
      }
    }
    seen_move[me] = moves;
  }
  return NULL;
}

static void t_parallel(void)
{
  uint64_t t0 = now_ns();
  pthread_t th[2];
  par_stop = 0;
  for (int i = 0; i < 2; i++)
    CHECK_EQ(pthread_create(&th[i], NULL, par_thread, (void *)(uintptr_t)i), 0);
  /* Until both saw the other move 20,000 times (one vCPU taking turns
   * gives one per slice: ~100/s), or 20 s on a busy host. */
  while (now_ns() - t0 < 20000000000ull && (seen_move[0] < 20000 || seen_move[1] < 20000)) {
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
  }
  par_stop = 1;
  for (int i = 0; i < 2; i++)
    CHECK_EQ(pthread_join(th[i], NULL), 0);
  CHECK_EQ(par_cpu[0], 0);
  CHECK_EQ(par_cpu[1], 1);
  CHECK(seen_move[0] >= 20000);
  CHECK(seen_move[1] >= 20000);
  printf("parallel: counters %llu/%llu, each saw the other move %llu/%llu times, %.0f ms\n",
         (unsigned long long)ctr[0], (unsigned long long)ctr[1], (unsigned long long)seen_move[0],
         (unsigned long long)seen_move[1], (now_ns() - t0) / 1e6);
}

/* ---- futex ping-pong ---- */
static int ROUNDS = 200; /* futex N: another count */
static volatile int fword;
static int ping_cpu[2];
static int same_cpu; /* futex1: both on vCPU 0, for comparison */

static long futex(volatile int *w, int op, int val)
{
  return syscall(SYS_futex, w, op, val, NULL, NULL, 0);
}

static void *pong(void *arg)
{
  int me = (int)(uintptr_t)arg; /* 0: waits for even -> odd, 1: odd -> even */
  CHECK_EQ(pin(same_cpu ? 0 : me), 0);
  ping_cpu[me] = cpu_now();
  for (int i = 0; i < ROUNDS; i++) {
    int want = 2 * i + me;
    int v;
    while ((v = __atomic_load_n(&fword, __ATOMIC_ACQUIRE)) != want) {
      if (v > want) {
        CHECK(!"futex sequence went past");
        return NULL;
      }
      futex(&fword, FUTEX_WAIT_PRIVATE, v);
    }
    __atomic_store_n(&fword, want + 1, __ATOMIC_RELEASE);
    futex(&fword, FUTEX_WAKE_PRIVATE, 1);
  }
  return NULL;
}

static void t_futex(void)
{
  uint64_t t0 = now_ns();
  pthread_t th[2];
  fword = 0;
  for (int i = 0; i < 2; i++)
    CHECK_EQ(pthread_create(&th[i], NULL, pong, (void *)(uintptr_t)i), 0);
  for (int i = 0; i < 2; i++)
    CHECK_EQ(pthread_join(th[i], NULL), 0);
  CHECK_EQ(fword, 2 * ROUNDS);
  CHECK_EQ(ping_cpu[0], 0);
  CHECK_EQ(ping_cpu[1], same_cpu ? 0 : 1);
  printf("futex: %d round trips between vCPU %d and %d, %.1f us each\n", ROUNDS, ping_cpu[0],
         ping_cpu[1], (now_ns() - t0) / 1e3 / ROUNDS);
}

/* ---- signals across vCPUs ---- */
static volatile int got_usr1, spin_started;
static void on_usr1(int s)
{
  (void)s;
  got_usr1 = 1;
}

static void *sig_spinner(void *arg)
{
  (void)arg;
  CHECK_EQ(pin(1), 0);
  CHECK_EQ(cpu_now(), 1);
  spin_started = 1;
  uint64_t n = 0;
  while (!got_usr1) /* no syscall: only an IPI brings it into the kernel */
    n++;
  return (void *)(uintptr_t)n;
}

static void t_signal(void)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
  CHECK_EQ(pin(0), 0);
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, sig_spinner, NULL), 0);
  while (!spin_started)
    sched_yield();
  struct timespec ts = {0, 20000000};
  nanosleep(&ts, NULL);
  CHECK_EQ(pthread_kill(th, SIGUSR1), 0);
  CHECK_EQ(pthread_join(th, NULL), 0);
  CHECK_EQ(got_usr1, 1);

  /* A child spinning on vCPU 1 killed from vCPU 0. */
  int pfd[2];
  CHECK_EQ(pipe(pfd), 0);
  pid_t p = fork();
  if (p == 0) {
    if (pin(1) != 0 || cpu_now() != 1)
      _exit(3);
    if (write(pfd[1], "x", 1) != 1)
      _exit(4);
    for (volatile uint64_t n = 0;; n++)
      ;
  }
  char c;
  CHECK_EQ(read(pfd[0], &c, 1), 1);
  nanosleep(&ts, NULL);
  CHECK_EQ(kill(p, SIGKILL), 0);
  int st = 0;
  CHECK_EQ(waitpid(p, &st, 0), p);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  close(pfd[0]);
  close(pfd[1]);
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(0, &s);
  CPU_SET(1, &s);
  sched_setaffinity(0, sizeof s, &s);
  printf("signal: SIGUSR1 reached a thread spinning on vCPU 1; SIGKILL a child spinning there\n");
}

/* ---- munmap while another vCPU reads ---- */
static volatile int mu_phase, mu_segv, mu_stale, mu_reading;
static volatile uint8_t *mu_region;
static sigjmp_buf mu_jmp;

static void on_segv(int s)
{
  (void)s;
  siglongjmp(mu_jmp, 1);
}

static void *mu_reader(void *arg)
{
  (void)arg;
  CHECK_EQ(pin(1), 0);
  CHECK_EQ(cpu_now(), 1);
  if (sigsetjmp(mu_jmp, 1)) {
    mu_segv = 1;
    return NULL;
  }
  for (uint64_t n = 0;; n++) {
    int ph = __atomic_load_n(&mu_phase, __ATOMIC_ACQUIRE);
    uint8_t v = mu_region[(n * 64) % (16 * 4096)];
    if (ph == 1) /* munmap had returned before this read */
      mu_stale++;
    if (v != 0x5a)
      mu_stale++;
    mu_reading = 1;
  }
}

static void t_munmap(void)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_segv;
  sa.sa_flags = SA_NODEFER;
  CHECK_EQ(sigaction(SIGSEGV, &sa, NULL), 0);
  CHECK_EQ(pin(0), 0);
  for (int round = 0; round < 5; round++) {
    mu_phase = 0;
    mu_segv = 0;
    mu_reading = 0;
    void *m = mmap(NULL, 16 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    memset(m, 0x5a, 16 * 4096);
    mu_region = m;
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, mu_reader, NULL), 0);
    while (!mu_reading)
      sched_yield();
    struct timespec ts = {0, 5000000};
    nanosleep(&ts, NULL);
    CHECK_EQ(munmap(m, 16 * 4096), 0);
    __atomic_store_n(&mu_phase, 1, __ATOMIC_RELEASE);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(mu_segv, 1);
  }
  CHECK_EQ(mu_stale, 0);
  sa.sa_handler = SIG_DFL;
  sigaction(SIGSEGV, &sa, NULL);
  printf("munmap: 5 rounds, the reader on vCPU 1 got SIGSEGV each time, %d stale reads\n", mu_stale);
}

/* ---- pwait: a signal from a child on another vCPU ends epoll_pwait ---- */
#include <sys/epoll.h>
static volatile int pw_hits, pw_tid;
static void on_pw(int s)
{
  (void)s;
  pw_hits++;
  pw_tid = (int)syscall(SYS_gettid);
}

static volatile int pw_cb;
static void pw_cbf(union sigval v)
{
  (void)v;
  pw_cb++;
}

/* Threads that do not block SIGUSR1 and end about when the child's signal
 * comes (as the last SIGEV_THREAD callback thread of t_events may): the
 * main thread, waiting with it unblocked, must still take it. */
static void *pw_exiter(void *arg)
{
  usleep((useconds_t)(uintptr_t)arg);
  return NULL;
}

/* Shared with each round's child (MAP_SHARED): the parent's wait ended
 * (the child stops looking: after a missed round it would otherwise poll
 * /proc for minutes while the parent waits for it), and when the child saw
 * the wait and sent its signal, so a bad round tells a signal the wait
 * missed from one that came after the timeout. */
struct pw_shared {
  volatile int done;
  volatile uint64_t seen_ns, kill_ns;
};

/* Returns once pid's main thread waits with SIGUSR1 unblocked, false when
 * the parent's wait ended first. */
static bool pw_wait_parked(int pid, struct pw_shared *sh)
{
  char path[64], buf[2048];
  snprintf(path, sizeof path, "/proc/%d/task/%d/status", pid, pid);
  for (int i = 0; i < 20000 && !sh->done; i++) {
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
      close(fd);
    if (n > 0) {
      buf[n] = 0;
      const char *blk = strstr(buf, "SigBlk:\t");
      if (blk && !(strtoull(blk + 8, NULL, 16) & (1ull << (SIGUSR1 - 1))))
        return !sh->done;
    }
    usleep(1000);
  }
  return false;
}

/* rounds, and the epoll_pwait timeout in ms: the signal must end the wait
 * before it. Kernel entries are serialized by one lock, and in emulated
 * ring 0 (ring-0 mode on a PVM-style host) one syscall can hold it for
 * seconds (a dying thread's madvise of its 8 MiB stack, a fork that copies
 * three such stacks: ARCHITECTURE.md, "SMP"), so a short timeout there
 * measures the host, not a lost wake-up. */
static void t_pwait(int rounds, int timeout_ms)
{
  /* As in t_events: a SIGEV_THREAD timer first (glibc's helper thread). */
  struct sigevent se;
  memset(&se, 0, sizeof se);
  se.sigev_notify = SIGEV_THREAD;
  se.sigev_notify_function = pw_cbf;
  timer_t tc;
  CHECK_EQ(timer_create(CLOCK_MONOTONIC, &se, &tc), 0);
  for (int round = 1; round <= 3; round++) {
    struct itimerspec its = {.it_value = {0, 10000000}};
    CHECK_EQ(timer_settime(tc, 0, &its, NULL), 0);
    uint64_t t0 = now_ns();
    while (pw_cb < round && now_ns() - t0 < 5000000000ull)
      usleep(2000);
  }
  CHECK_EQ(pw_cb, 3);
  CHECK_EQ(timer_delete(tc), 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_pw;
  CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
  sigset_t m, empty;
  sigemptyset(&m);
  sigaddset(&m, SIGUSR1);
  sigemptyset(&empty);
  CHECK_EQ(sigprocmask(SIG_BLOCK, &m, NULL), 0);
  int ep = epoll_create1(0), p[2];
  CHECK_EQ(pipe(p), 0);
  struct epoll_event ev = {.events = EPOLLIN}, out[1];
  CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), 0);
  struct pw_shared *sh =
      mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(sh != MAP_FAILED);
  int bad = 0;
  for (int i = 0; i < rounds; i++) {
    int before = pw_hits;
    sh->done = 0;
    sh->seen_ns = sh->kill_ns = 0;
    pw_tid = 0;
    /* threads with SIGUSR1 unblocked, ending around the child's kill */
    CHECK_EQ(sigprocmask(SIG_UNBLOCK, &m, NULL), 0);
    for (int k = 0; k < 3; k++) {
      pthread_t th;
      pthread_attr_t at;
      pthread_attr_init(&at);
      pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
      pthread_create(&th, &at, pw_exiter, (void *)(uintptr_t)(280000 + 15000 * k + 3000 * (i % 5)));
      pthread_attr_destroy(&at);
    }
    CHECK_EQ(sigprocmask(SIG_BLOCK, &m, NULL), 0);
    pid_t c = fork();
    if (c == 0) {
      /* once the parent's main thread waits with SIGUSR1 unblocked (its
       * /proc status: SigBlk without it, which only epoll_pwait's mask
       * does); as on Linux, it is then the thread to take it */
      if (pw_wait_parked(getppid(), sh)) {
        sh->seen_ns = now_ns();
        kill(getppid(), SIGUSR1);
        sh->kill_ns = now_ns();
      }
      _exit(0);
    }
    uint64_t t0 = now_ns();
    int r = epoll_pwait(ep, out, 1, timeout_ms, &empty);
    int e = errno;
    uint64_t t1 = now_ns();
    sh->done = 1;
    int hits = pw_hits;
    waitpid(c, NULL, 0);
    /* a SIGUSR1 that came after the wait stays pending (blocked): take it
     * here, or the next round would count it */
    struct timespec zero = {0, 0};
    while (sigtimedwait(&m, NULL, &zero) == SIGUSR1)
      ;
    if (r != -1 || e != EINTR || hits != before + 1) {
      bad++;
      /* seen/kill: when the child saw the wait and sent SIGUSR1, from the
       * wait's start (-1: it did not) */
      double seen = sh->seen_ns ? ((double)sh->seen_ns - (double)t0) / 1e6 : -1;
      double killed = sh->kill_ns ? ((double)sh->kill_ns - (double)t0) / 1e6 : -1;
      printf("pwait round %d: r %d hits %d->%d after %.0f ms (child saw the wait at %.0f, "
             "killed at %.0f ms), handler in tid %d (main %d)\n",
             i, r, before, hits, (t1 - t0) / 1e6, seen, killed, pw_tid, (int)syscall(SYS_gettid));
    }
  }
  CHECK_EQ(bad, 0);
  printf("pwait: %d rounds, %d bad\n", rounds, bad);
}

/* ---- overlap (a measurement) ---- */
static uint64_t ov_t[2][2];
static void *ov_thread(void *arg)
{
  int me = (int)(uintptr_t)arg;
  ov_t[me][0] = now_ns();
  volatile uint64_t x = 0;
  for (uint64_t i = 0; i < 400000000ull; i++)
    x += i;
  ov_t[me][1] = now_ns();
  return NULL;
}

static void t_overlap(void)
{
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    CHECK_EQ(pthread_create(&th[i], NULL, ov_thread, (void *)(uintptr_t)i), 0);
  for (int i = 0; i < 2; i++)
    CHECK_EQ(pthread_join(th[i], NULL), 0);
  uint64_t start = ov_t[0][0] < ov_t[1][0] ? ov_t[0][0] : ov_t[1][0];
  uint64_t end = ov_t[0][1] > ov_t[1][1] ? ov_t[0][1] : ov_t[1][1];
  printf("overlap: 2 threads x 400M additions: %.0f ms wall (threads %.0f and %.0f ms)\n",
         (end - start) / 1e6, (ov_t[0][1] - ov_t[0][0]) / 1e6, (ov_t[1][1] - ov_t[1][0]) / 1e6);
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *what = argc > 1 ? argv[1] : "all";
  bool all = strcmp(what, "all") == 0;
  if (all || strcmp(what, "ncpu") == 0)
    t_ncpu(argc > 2 ? atoi(argv[2]) : 2);
  if (strcmp(what, "pthreads") == 0 && argc > 2)
    PER_PRODUCER = strtoull(argv[2], NULL, 10);
  if (all || strcmp(what, "pthreads") == 0)
    t_pthreads();
  if (all || strcmp(what, "parallel") == 0)
    t_parallel();
  if (strncmp(what, "futex", 5) == 0 && argc > 2)
    ROUNDS = atoi(argv[2]);
  if (all || strcmp(what, "futex") == 0)
    t_futex();
  if (strcmp(what, "futex1") == 0) {
    same_cpu = 1;
    t_futex();
  }
  if (all || strcmp(what, "signal") == 0)
    t_signal();
  if (all || strcmp(what, "munmap") == 0)
    t_munmap();
  if (strcmp(what, "overlap") == 0)
    t_overlap();
  if (strcmp(what, "pwait") == 0)
    t_pwait(argc > 2 ? atoi(argv[2]) : 20, argc > 3 ? atoi(argv[3]) : 3000);
  return t_done("t_smp");
}
