/* procbench: process and thread micro-benchmarks for tests/bench/proc/
 * proc_bench.sh, run natively, in the OCI peers and in quark-sandbox.
 *
 *   procbench forkexec N [PROG]  fork + execve(PROG, default /bin/true) + waitpid
 *   procbench pipe MIB           MIB MiB through a pipe in 64 KiB writes, child -> parent
 *   procbench futex N            N futex wake/wait round trips between two threads
 *   procbench thread N           pthread_create + pthread_join of an empty thread
 *
 * Prints one line "OP VALUE UNIT" (us/op, or MiB/s for pipe). N = 0 (MIB = 0)
 * does the setup without the loop, so a caller can subtract a run's counters
 * (VM exits) from an N-op run's. Built with gcc -static -O2. */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void die(const char *m)
{
  perror(m);
  exit(1);
}

static void forkexec(long n, const char *prog)
{
  char *argv[] = {(char *)prog, NULL};
  double t0 = now_us();
  for (long i = 0; i < n; i++) {
    pid_t p = fork();
    if (p < 0)
      die("fork");
    if (p == 0) {
      execve(prog, argv, environ);
      _exit(127);
    }
    int st;
    if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "procbench: %s failed (status %#x)\n", prog, st);
      exit(1);
    }
  }
  double t = now_us() - t0;
  printf("forkexec %.1f us/op\n", n ? t / n : 0.0);
}

enum { CH = 64 << 10 };

static void pipebench(long mib)
{
  int fd[2];
  static char b[CH];
  long total = mib << 20;
  if (pipe(fd))
    die("pipe");
  memset(b, 'x', sizeof b);
  double t0 = now_us();
  pid_t p = fork();
  if (p < 0)
    die("fork");
  if (p == 0) {
    close(fd[0]);
    for (long off = 0; off < total;) {
      ssize_t w = write(fd[1], b, CH);
      if (w <= 0)
        _exit(1);
      off += w;
    }
    _exit(0);
  }
  close(fd[1]);
  long got = 0;
  ssize_t r;
  while ((r = read(fd[0], b, CH)) > 0)
    got += r;
  double t = now_us() - t0;
  int st;
  waitpid(p, &st, 0);
  if (got != total || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "procbench: pipe moved %ld of %ld bytes\n", got, total);
    exit(1);
  }
  printf("pipe %.1f MiB/s\n", got ? got / 1048576.0 / (t / 1e6) : 0.0);
}

/* Futex ping-pong: word w is 0 (main's turn) or 1 (the thread's turn). */
static _Atomic int word;
static long rounds;

static void fwait(int val)
{
  while (atomic_load(&word) == val)
    syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void fset(int val)
{
  atomic_store(&word, val);
  syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *ponger(void *a)
{
  (void)a;
  for (long i = 0; i < rounds; i++) {
    fwait(0); /* wait for our turn (word == 1) */
    fset(0);
  }
  return NULL;
}

static void futexbench(long n)
{
  pthread_t t;
  rounds = n;
  atomic_store(&word, 0);
  if (pthread_create(&t, NULL, ponger, NULL))
    die("pthread_create");
  double t0 = now_us();
  for (long i = 0; i < n; i++) {
    fset(1);
    fwait(1);
  }
  double t1 = now_us();
  pthread_join(t, NULL);
  printf("futex %.2f us/roundtrip\n", n ? (t1 - t0) / n : 0.0);
}

static void *nothing(void *a)
{
  return a;
}

static void threadbench(long n)
{
  double t0 = now_us();
  for (long i = 0; i < n; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL))
      die("pthread_create");
    pthread_join(t, NULL);
  }
  double t = now_us() - t0;
  printf("thread %.1f us/op\n", n ? t / n : 0.0);
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc < 3) {
    fprintf(stderr, "usage: procbench forkexec|pipe|futex|thread N [PROG]\n");
    return 2;
  }
  long n = atol(argv[2]);
  if (!strcmp(argv[1], "forkexec"))
    forkexec(n, argc > 3 ? argv[3] : "/bin/true");
  else if (!strcmp(argv[1], "pipe"))
    pipebench(n);
  else if (!strcmp(argv[1], "futex"))
    futexbench(n);
  else if (!strcmp(argv[1], "thread"))
    threadbench(n);
  else {
    fprintf(stderr, "procbench: unknown op %s\n", argv[1]);
    return 2;
  }
  return 0;
}
