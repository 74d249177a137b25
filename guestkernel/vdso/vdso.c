/* The guest's vDSO: clock reads in user mode with rdtsc, no syscall.
 *
 * Every guest syscall costs ~5 VM exits on the PVM-style host (ARCHITECTURE
 * "Sandbox and privileged layer"); glibc and musl call these functions
 * instead of the clock syscalls once AT_SYSINFO_EHDR names this image.
 * Freestanding, position independent, no relocations (the image is mapped
 * as it is; glibc does not relocate a vDSO): the data page is reached
 * PC-relative through vvar_page, which the linker script puts one page
 * below the image. Clocks the kernel computes from more than the TSC
 * (CPU-time clocks, TAI, the alarm clocks, per-process clock ids) and
 * getcpu go to the real syscall. */
#include <stdint.h>

#include "vvar.h"

extern const struct qk_vvar vvar_page __attribute__((visibility("hidden")));

struct ts {
  int64_t sec, nsec;
};
struct tv {
  int64_t sec, usec;
};

#define SYS_gettimeofday 96
#define SYS_time 201
#define SYS_clock_gettime 228
#define SYS_clock_getres 229
#define SYS_getcpu 309

static inline long sys3(long n, long a, long b, long c)
{
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return r;
}

static inline uint64_t rdtsc_ordered(void)
{
  uint32_t lo, hi;
  __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
  return ((uint64_t)hi << 32) | lo;
}

/* Nanoseconds of the clock (monotonic if !real); 0 if the page is not
 * filled yet (then the caller asks the kernel). */
static inline int read_ns(int real, uint64_t *out)
{
  const struct qk_vvar *v = &vvar_page;
  uint32_t s;
  uint64_t ns;
  do {
    while ((s = v->seq) & 1)
      __asm__ volatile("pause");
    __asm__ volatile("" ::: "memory");
    if (v->magic != QK_VVAR_MAGIC)
      return 0;
    uint64_t t = rdtsc_ordered();
    uint64_t d = t > v->tsc_base ? t - v->tsc_base : 0;
    ns = (real ? v->real_base_ns : v->mono_base_ns) +
         (uint64_t)(((unsigned __int128)d * v->mult) >> 32);
    __asm__ volatile("" ::: "memory");
  } while (v->seq != s);
  *out = ns;
  return 1;
}

/* 1 realtime, 0 monotonic, -1 not served here. */
static inline int kind(long clk)
{
  switch (clk) {
  case 0: /* REALTIME */
  case 5: /* REALTIME_COARSE */
    return 1;
  case 1: /* MONOTONIC */
  case 4: /* MONOTONIC_RAW */
  case 6: /* MONOTONIC_COARSE */
  case 7: /* BOOTTIME */
    return 0;
  default:
    return -1;
  }
}

int __vdso_clock_gettime(long clk, struct ts *ts)
{
  int k = kind(clk);
  uint64_t ns;
  if (k < 0 || !read_ns(k, &ns))
    return (int)sys3(SYS_clock_gettime, clk, (long)ts, 0);
  ts->sec = (int64_t)(ns / 1000000000u);
  ts->nsec = (int64_t)(ns % 1000000000u);
  return 0;
}

int __vdso_gettimeofday(struct tv *tv, void *tz)
{
  uint64_t ns;
  if (!read_ns(1, &ns))
    return (int)sys3(SYS_gettimeofday, (long)tv, (long)tz, 0);
  if (tv) {
    tv->sec = (int64_t)(ns / 1000000000u);
    tv->usec = (int64_t)(ns % 1000000000u / 1000u);
  }
  if (tz) {
    int32_t *z = tz;
    z[0] = z[1] = 0; /* what the kernel answers */
  }
  return 0;
}

long __vdso_time(long *t)
{
  uint64_t ns;
  if (!read_ns(1, &ns))
    return sys3(SYS_time, (long)t, 0, 0);
  long s = (long)(ns / 1000000000u);
  if (t)
    *t = s;
  return s;
}

int __vdso_clock_getres(long clk, struct ts *res)
{
  if (kind(clk) < 0)
    return (int)sys3(SYS_clock_getres, clk, (long)res, 0);
  if (res) {
    res->sec = 0;
    res->nsec = (clk == 5 || clk == 6) ? 4000000 : 1; /* as sys_clock_getres */
  }
  return 0;
}

/* The CPU comes from the kernel: no per-CPU data in user mode yet. */
long __vdso_getcpu(unsigned *cpu, unsigned *node, void *unused)
{
  return sys3(SYS_getcpu, (long)cpu, (long)node, (long)unused);
}

int clock_gettime(long, struct ts *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct tv *, void *) __attribute__((weak, alias("__vdso_gettimeofday")));
long time(long *) __attribute__((weak, alias("__vdso_time")));
int clock_getres(long, struct ts *) __attribute__((weak, alias("__vdso_clock_getres")));
long getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("__vdso_getcpu")));
