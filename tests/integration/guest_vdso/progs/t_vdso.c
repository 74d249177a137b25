/* The guest vDSO through libc (glibc or musl, static): AT_SYSINFO_EHDR is
 * set, every clock read through libc agrees with the clock_gettime
 * syscall and never goes backwards, gettimeofday/time agree with
 * CLOCK_REALTIME, the vDSO survives fork and comes back after exec; prints
 * the cost of one clock_gettime through libc and through the syscall.
 * Usage: t_vdso [exec-child] */
#define _GNU_SOURCE
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int checks, failures;
#define CHECK(c, ...)                                                                              \
  do {                                                                                             \
    checks++;                                                                                      \
    if (!(c)) {                                                                                    \
      failures++;                                                                                  \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                  \
      printf(__VA_ARGS__);                                                                         \
      printf("\n");                                                                                \
    }                                                                                              \
  } while (0)

static int64_t ns_of(const struct timespec *t)
{
  return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static int64_t libc_ns(clockid_t c)
{
  struct timespec t;
  if (clock_gettime(c, &t))
    return -1;
  return ns_of(&t);
}

static int64_t sys_ns(clockid_t c)
{
  struct timespec t;
  if (syscall(SYS_clock_gettime, c, &t))
    return -1;
  return ns_of(&t);
}

static const struct {
  clockid_t id;
  const char *name;
} vdso_clocks[] = {
    {CLOCK_REALTIME, "REALTIME"},
    {CLOCK_MONOTONIC, "MONOTONIC"},
    {CLOCK_MONOTONIC_RAW, "MONOTONIC_RAW"},
    {CLOCK_REALTIME_COARSE, "REALTIME_COARSE"},
    {CLOCK_MONOTONIC_COARSE, "MONOTONIC_COARSE"},
    {CLOCK_BOOTTIME, "BOOTTIME"},
};

/* Interleaved libc/syscall/libc reads of the same clock: the kernel and
 * the vDSO use one formula, so they are ordered (bound: 50 ms, a busy
 * host may preempt the vCPU between two reads). */
static void agree(int loops)
{
  for (size_t i = 0; i < sizeof(vdso_clocks) / sizeof(vdso_clocks[0]); i++) {
    clockid_t c = vdso_clocks[i].id;
    int64_t a = libc_ns(c), b = sys_ns(c), d = libc_ns(c);
    CHECK(a > 0 && b > 0 && d > 0, "%s: libc %lld syscall %lld", vdso_clocks[i].name, (long long)a,
          (long long)b);
    CHECK(a <= b && b <= d && d - a < 50000000, "%s: libc %lld, syscall %lld, libc %lld",
          vdso_clocks[i].name, (long long)a, (long long)b, (long long)d);
    int64_t prev = libc_ns(c), back = 0;
    for (int k = 0; k < loops; k++) {
      int64_t n = libc_ns(c);
      if (n < prev)
        back++;
      prev = n;
    }
    CHECK(back == 0, "%s went backwards %lld times in %d reads", vdso_clocks[i].name,
          (long long)back, loops);
    struct timespec r1, r2;
    CHECK(clock_getres(c, &r1) == 0 && syscall(SYS_clock_getres, c, &r2) == 0 &&
              r1.tv_sec == r2.tv_sec && r1.tv_nsec == r2.tv_nsec,
          "%s: clock_getres differs from the syscall", vdso_clocks[i].name);
  }
  /* Clocks the vDSO hands to the kernel. */
  clockid_t other[] = {CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID, CLOCK_TAI};
  for (size_t i = 0; i < 3; i++)
    CHECK(libc_ns(other[i]) >= 0, "clock %d through libc failed", (int)other[i]);
  struct timespec t;
  CHECK(clock_gettime((clockid_t)12345, &t) == -1, "a bad clock id succeeded");
  /* gettimeofday and time against CLOCK_REALTIME. */
  int64_t r0 = libc_ns(CLOCK_REALTIME);
  struct timeval tv;
  CHECK(gettimeofday(&tv, NULL) == 0, "gettimeofday");
  time_t tt = time(NULL);
  int64_t r1 = libc_ns(CLOCK_REALTIME);
  int64_t us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
  CHECK(r0 / 1000 <= us && us <= r1 / 1000, "gettimeofday %lld us outside [%lld, %lld]",
        (long long)us, (long long)(r0 / 1000), (long long)(r1 / 1000));
  CHECK(r0 / 1000000000 <= tt && tt <= r1 / 1000000000, "time %lld outside [%lld, %lld]",
        (long long)tt, (long long)(r0 / 1000000000), (long long)(r1 / 1000000000));
}

static int vdso_ok(void)
{
  unsigned long e = getauxval(AT_SYSINFO_EHDR);
  CHECK(e != 0, "AT_SYSINFO_EHDR is 0");
  if (!e)
    return 0;
  const Elf64_Ehdr *h = (const Elf64_Ehdr *)e;
  CHECK(!memcmp(h->e_ident, ELFMAG, SELFMAG) && h->e_type == ET_DYN, "no ELF at AT_SYSINFO_EHDR");
  return 1;
}

static double per_call_ns(int n, int use_sys)
{
  struct timespec a, b, t;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < n; i++) {
    if (use_sys)
      syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
    else
      clock_gettime(CLOCK_MONOTONIC, &t);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  return (double)(ns_of(&b) - ns_of(&a)) / n;
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc > 1 && !strcmp(argv[1], "exec-child")) {
    if (vdso_ok())
      agree(1000);
    return failures ? 1 : 0;
  }
  if (vdso_ok())
    agree(100000);
  /* Kept across fork: the child reads the clocks through the same vDSO. */
  pid_t p = fork();
  if (p == 0) {
    int f0 = failures;
    CHECK(getauxval(AT_SYSINFO_EHDR) != 0, "child: no vDSO");
    agree(1000);
    _exit(failures != f0);
  }
  int st = 0;
  CHECK(p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0,
        "forked child: status %#x", st);
  /* Mapped again by execve. */
  p = fork();
  if (p == 0) {
    execl(argv[0], argv[0], "exec-child", (char *)NULL);
    _exit(127);
  }
  CHECK(p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0,
        "exec'd child: status %#x", st);
  double v = per_call_ns(100000, 0), s = per_call_ns(2000, 1);
  printf("t_vdso: clock_gettime(CLOCK_MONOTONIC) %.0f ns through libc (vDSO), %.0f ns as a "
         "syscall (%.1fx)\n",
         v, s, v > 0 ? s / v : 0);
  printf("t_vdso: %d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
