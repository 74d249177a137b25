/* Guest kernel: signal frames with the full XSAVE state (task/signal.c),
 * per-task CPU time (task/cputime.c) and mmap of tmpfs files (fs/tmpfs.c).
 * Static glibc and musl builds; run by guest_misc_test.sh as
 * `t_gmisc all` (plus internal sub-modes it execs itself with). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "../../guest/progs/t.h"

static const char *self_path;

/* ---- 1. signal frames with the XSAVE state ---- */

/* vec_trip(in, out, tgid, tid, sig, use_ud2): loads the vector registers
 * from in, sends sig to the thread with tgkill (or executes ud2, whose
 * SIGILL handler skips it), stores the registers to out. ymm: 16 x 32
 * bytes; zmm: 32 x 64 bytes. vec_dirty_*: sets every register to ones. */
__asm__(".text\n"
        ".globl ymm_trip\nymm_trip:\n"
        "push %r12\npush %r13\nmov %rdi,%r12\nmov %rsi,%r13\n"
        ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\nvmovdqu \\i*32(%r12),%ymm\\i\n.endr\n"
        "test %r9,%r9\njz 2f\nud2\njmp 3f\n"
        "2:\nmov %rdx,%rdi\nmov %rcx,%rsi\nmov %r8,%rdx\nmov $234,%eax\nsyscall\n3:\n"
        ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\nvmovdqu %ymm\\i,\\i*32(%r13)\n.endr\n"
        "vzeroupper\npop %r13\npop %r12\nret\n"
        ".globl zmm_trip\nzmm_trip:\n"
        "push %r12\npush %r13\nmov %rdi,%r12\nmov %rsi,%r13\n"
        ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
        "vmovdqu64 \\i*64(%r12),%zmm\\i\n.endr\n"
        "test %r9,%r9\njz 2f\nud2\njmp 3f\n"
        "2:\nmov %rdx,%rdi\nmov %rcx,%rsi\nmov %r8,%rdx\nmov $234,%eax\nsyscall\n3:\n"
        ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
        "vmovdqu64 %zmm\\i,\\i*64(%r13)\n.endr\n"
        "vzeroupper\npop %r13\npop %r12\nret\n"
        ".globl ymm_dirty\nymm_dirty:\n"
        ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\nvpcmpeqb %ymm\\i,%ymm\\i,%ymm\\i\n.endr\nret\n"
        ".globl zmm_dirty\nzmm_dirty:\n"
        ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
        "vpternlogd $0xff,%zmm\\i,%zmm\\i,%zmm\\i\n.endr\nret\n");
void ymm_trip(const void *in, void *out, long tgid, long tid, long sig, long ud2);
void zmm_trip(const void *in, void *out, long tgid, long tid, long sig, long ud2);
void ymm_dirty(void);
void zmm_dirty(void);

static uint64_t xgetbv0(void)
{
  uint32_t a, d;
  __asm__ volatile("xgetbv" : "=a"(a), "=d"(d) : "c"(0));
  return ((uint64_t)d << 32) | a;
}

static int vec_kind; /* 0 none, 1 AVX (ymm), 2 AVX-512 (zmm) */
static volatile int h_ran, h_xsave, h_mxcsr_ok, h_corrupt;
static volatile uint32_t h_xsize;

static void vec_handler(int sig, siginfo_t *si, void *ctx)
{
  (void)si;
  ucontext_t *uc = ctx;
  const uint8_t *fp = (const uint8_t *)uc->uc_mcontext.fpregs;
  uint32_t magic1 = 0, xsize = 0;
  memcpy(&magic1, fp + 464, 4);
  memcpy(&xsize, fp + 464 + 16, 4);
  h_xsave = magic1 == 0x46505853u && (uc->uc_flags & 1);
  h_xsize = xsize;
  h_mxcsr_ok = __builtin_ia32_stmxcsr() == 0x1f80; /* the handler starts with init state */
  if (vec_kind == 2)
    zmm_dirty();
  else if (vec_kind == 1)
    ymm_dirty();
  __builtin_ia32_ldmxcsr(0x1f80 | (3 << 13) | 0x40);
  if (sig == SIGILL)
    uc->uc_mcontext.gregs[REG_RIP] += 2;
  uint8_t *w = (uint8_t *)uc->uc_mcontext.fpregs;
  if (h_corrupt == 1)
    w[512 + 16] = 1; /* a reserved byte of the XSAVE header */
  else if (h_corrupt == 2)
    w[512 + 7] |= 0x40; /* XSTATE_BV bit 62: never enabled */
  else if (h_corrupt == 3)
    w[464] ^= 0xff; /* magic1: taken as an FXSAVE image */
  else if (h_corrupt == 4)
    w[512 + 15] = 0x80; /* XCOMP_BV: compacted form */
  h_ran++;
}

static void sig_xsave(void)
{
  if (__builtin_cpu_supports("avx512f") && (xgetbv0() & 0xe6) == 0xe6)
    vec_kind = 2;
  else if (__builtin_cpu_supports("avx") && (xgetbv0() & 6) == 6)
    vec_kind = 1;
  printf("vector registers: %s\n", vec_kind == 2 ? "zmm" : vec_kind == 1 ? "ymm" : "none");
  if (!vec_kind)
    return;
  static uint8_t altstack[65536];
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)};
  CHECK_EQ(sigaltstack(&ss, NULL), 0);
  struct sigaction sa = {.sa_sigaction = vec_handler, .sa_flags = SA_SIGINFO};
  CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
  sa.sa_flags |= SA_ONSTACK;
  CHECK_EQ(sigaction(SIGILL, &sa, NULL), 0);
  static uint8_t in[32 * 64], out[32 * 64];
  size_t n = vec_kind == 2 ? 32 * 64 : 16 * 32;
  for (int round = 0; round < 2; round++) { /* 0: tgkill (syscall path), 1: ud2 (fault path) */
    for (size_t i = 0; i < n; i++)
      in[i] = (uint8_t)(i * 7 + 3 + round);
    memset(out, 0, sizeof(out));
    h_ran = 0;
    __builtin_ia32_ldmxcsr(0x1f80 | (1 << 13)); /* round down: the handler must not see it */
    if (vec_kind == 2)
      zmm_trip(in, out, getpid(), gettid(), SIGUSR1, round);
    else
      ymm_trip(in, out, getpid(), gettid(), SIGUSR1, round);
    uint32_t mx = __builtin_ia32_stmxcsr();
    __builtin_ia32_ldmxcsr(0x1f80);
    CHECK_EQ(h_ran, 1);
    CHECK(h_mxcsr_ok);
    CHECK_EQ(mx & ~0x3fu, 0x1f80 | (1 << 13)); /* restored (flags aside) */
    printf("frame (%s): %s, %u bytes\n", round ? "fault" : "signal", h_xsave ? "xsave" : "fxsave",
           h_xsave ? h_xsize : 512);
    if (h_xsave) {
      CHECK(memcmp(in, out, n) == 0);
    } else { /* an FXSAVE frame keeps xmm0-15 (the low 16 bytes) only */
      size_t w = vec_kind == 2 ? 64 : 32;
      for (int r = 0; r < 16; r++)
        CHECK(memcmp(in + r * w, out + r * w, 16) == 0);
    }
  }
  sigaltstack(&(stack_t){.ss_flags = SS_DISABLE}, NULL);
  /* Hostile frames (an XSAVE header XRSTOR refuses): SIGSEGV, the rest
   * untouched; a wrong magic1 makes it an FXSAVE image (survives). */
  if (!h_xsave)
    return;
  for (int c = 1; c <= 4; c++) {
    pid_t pid = fork();
    if (pid == 0) {
      h_corrupt = c;
      h_ran = 0;
      raise(SIGUSR1);
      _exit(h_ran == 1 ? 7 : 8);
    }
    int st = 0;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    printf("corrupt %d: status 0x%x\n", c, st);
    if (c == 3)
      CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7);
    else
      CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
  }
}

/* exec'd: a MINSIGSTKSZ alternate stack is smaller than a frame with the
 * AVX-512 state: the process must die of SIGSEGV and nothing below the
 * stack may be written. Exit 0 when the frame fits (and the handler ran). */
static uint8_t small_stack[3 * 4096] __attribute__((aligned(4096)));
static volatile int alt_ran;
static void alt_handler(int sig)
{
  (void)sig;
  alt_ran = 1;
}
static int alt_small(void)
{
  unsigned long min = getauxval(51 /* AT_MINSIGSTKSZ */);
  printf("AT_MINSIGSTKSZ %lu\n", min);
  fflush(stdout);
  if (!min)
    return 3;
  memset(small_stack, 0x5a, sizeof(small_stack));
  stack_t ss = {.ss_sp = small_stack + 4096, .ss_size = 2048 /* MINSIGSTKSZ */};
  if (sigaltstack(&ss, NULL))
    return 4;
  struct sigaction sa = {.sa_handler = alt_handler, .sa_flags = SA_ONSTACK};
  sigaction(SIGUSR1, &sa, NULL);
  raise(SIGUSR1);
  for (int i = 0; i < 4096; i++)
    if (small_stack[i] != 0x5a)
      return 5; /* written below the alternate stack */
  return alt_ran && min <= 2048 ? 0 : 6;
}

static void sig_altstack(void)
{
  pid_t pid = fork();
  if (pid == 0) {
    execl(self_path, self_path, "altsmall", (char *)NULL);
    _exit(99);
  }
  int st = 0;
  CHECK_EQ(waitpid(pid, &st, 0), pid);
  /* The child says what it saw; a frame larger than 2048 bytes kills it. */
  printf("altsmall: %s %d\n", WIFSIGNALED(st) ? "signal" : "exit",
         WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
  CHECK((WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV) || (WIFEXITED(st) && WEXITSTATUS(st) == 0));
  if (vec_kind == 2 && h_xsave) /* AVX-512 frames are ~3 KiB */
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
}

/* ---- 2. CPU time ---- */

static uint64_t mono_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts); /* the vDSO: no syscall */
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t clk_ns(clockid_t c)
{
  struct timespec ts = {0, 0};
  if (clock_gettime(c, &ts))
    return 0;
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t tv_us(struct timeval tv)
{
  return (uint64_t)tv.tv_sec * 1000000ull + (uint64_t)tv.tv_usec;
}

/* Spins in user mode (no syscall: the clocks are the vDSO's) until
 * *stop reaches want, for at most ms of wall time (a bound for a busy
 * host, not a measurement). */
static volatile sig_atomic_t n_prof, n_vtalrm, n_usr2;
static void spin_ms(unsigned ms, volatile sig_atomic_t *stop, int want)
{
  uint64_t end = mono_ns() + ms * 1000000ull;
  while (mono_ns() < end)
    if (stop && *stop >= want)
      break;
}

/* Spins until the thread's CPU clock advanced by ms (a syscall every
 * 10 ms of wall time to read it), at most 30 s of wall time. */
static void spin_cpu_ms(unsigned ms)
{
  uint64_t start = clk_ns(CLOCK_THREAD_CPUTIME_ID), end = mono_ns() + 30000000000ull;
  while (clk_ns(CLOCK_THREAD_CPUTIME_ID) - start < ms * 1000000ull && mono_ns() < end)
    spin_ms(10, NULL, 0);
}

static void on_prof(int s)
{
  (void)s;
  n_prof++;
}
static void on_vtalrm(int s)
{
  (void)s;
  n_vtalrm++;
}
static void on_usr2(int s)
{
  (void)s;
  n_usr2++;
}

static void cpu_clocks(void)
{
  uint64_t p0 = clk_ns(CLOCK_PROCESS_CPUTIME_ID), t0 = clk_ns(CLOCK_THREAD_CPUTIME_ID);
  struct rusage r0;
  CHECK_EQ(getrusage(RUSAGE_SELF, &r0), 0);
  spin_cpu_ms(300);
  uint64_t p1 = clk_ns(CLOCK_PROCESS_CPUTIME_ID), t1 = clk_ns(CLOCK_THREAD_CPUTIME_ID);
  struct rusage r1;
  CHECK_EQ(getrusage(RUSAGE_SELF, &r1), 0);
  printf("spin 300 ms CPU: process clock +%llu ms, thread clock +%llu ms, utime +%llu ms, stime +%llu ms\n",
         (unsigned long long)(p1 - p0) / 1000000, (unsigned long long)(t1 - t0) / 1000000,
         (unsigned long long)(tv_us(r1.ru_utime) - tv_us(r0.ru_utime)) / 1000,
         (unsigned long long)(tv_us(r1.ru_stime) - tv_us(r0.ru_stime)) / 1000);
  CHECK(p1 - p0 >= 300000000ull);
  CHECK(t1 - t0 >= 300000000ull);
  /* The spin is user time (a syscall per 10 ms is kernel time). */
  CHECK(tv_us(r1.ru_utime) - tv_us(r0.ru_utime) >= 200000);
  CHECK(tv_us(r1.ru_stime) - tv_us(r0.ru_stime) < 100000);
  /* Sleeping costs (almost) no CPU time. */
  struct timespec nap = {0, 300000000};
  nanosleep(&nap, NULL);
  uint64_t p2 = clk_ns(CLOCK_PROCESS_CPUTIME_ID);
  printf("sleep 300 ms: process clock +%llu ms\n", (unsigned long long)(p2 - p1) / 1000000);
  CHECK(p2 - p1 < 100000000ull);
  /* clock_getcpuclockid / pthread_getcpuclockid encodings. */
  clockid_t pc, tc;
  CHECK_EQ(clock_getcpuclockid(getpid(), &pc), 0);
  CHECK_EQ(clock_getcpuclockid(0, &pc), 0);
  CHECK_EQ(pthread_getcpuclockid(pthread_self(), &tc), 0);
  uint64_t pv = clk_ns(pc), tv = clk_ns(tc);
  CHECK(pv >= p2 && pv < p2 + 100000000ull);
  CHECK(tv >= t1 && tv < t1 + 100000000ull);
  struct timespec res;
  CHECK_EQ(clock_getres(pc, &res), 0);
  CHECK_EQ(clock_getres(CLOCK_THREAD_CPUTIME_ID, &res), 0);
  /* Linux's encoding: (~pid << 3) | kind, kind 3 invalid. */
  CHECK_EQ(RS2(SYS_clock_gettime, (int)((~(unsigned)999999 << 3) | 2), &res), -EINVAL);
  CHECK_EQ(RS2(SYS_clock_gettime, (int)((~(unsigned)getpid() << 3) | 3), &res), -EINVAL);
  struct tms tm;
  CHECK(times(&tm) != (clock_t)-1);
  CHECK(tm.tms_utime >= 15);
  /* /proc/self/stat: utime (14th field) in ticks. */
  FILE *f = fopen("/proc/self/stat", "r");
  CHECK(f != NULL);
  if (f) {
    char buf[1024] = {0};
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *q = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    CHECK(q && sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2);
    CHECK(ut >= 15);
  }
}

static void cpu_timers(void)
{
  signal(SIGPROF, on_prof);
  signal(SIGVTALRM, on_vtalrm);
  signal(SIGUSR2, on_usr2);
  struct itimerval it = {{0, 30000}, {0, 30000}}, cur;
  CHECK_EQ(setitimer(ITIMER_PROF, &it, NULL), 0);
  CHECK_EQ(getitimer(ITIMER_PROF, &cur), 0);
  CHECK(cur.it_value.tv_usec > 0 && cur.it_interval.tv_usec == 30000);
  spin_ms(20000, &n_prof, 3);
  it = (struct itimerval){{0, 0}, {0, 0}};
  CHECK_EQ(setitimer(ITIMER_PROF, &it, NULL), 0);
  printf("ITIMER_PROF: %d SIGPROF\n", (int)n_prof);
  CHECK(n_prof >= 3);
  it = (struct itimerval){{0, 30000}, {0, 30000}};
  CHECK_EQ(setitimer(ITIMER_VIRTUAL, &it, NULL), 0);
  spin_ms(20000, &n_vtalrm, 3);
  it = (struct itimerval){{0, 0}, {0, 0}};
  CHECK_EQ(setitimer(ITIMER_VIRTUAL, &it, &cur), 0);
  printf("ITIMER_VIRTUAL: %d SIGVTALRM\n", (int)n_vtalrm);
  CHECK(n_vtalrm >= 3);
  /* A sleeper's CPU timer does not fire. */
  int before = n_prof;
  it = (struct itimerval){{0, 0}, {0, 50000}};
  CHECK_EQ(setitimer(ITIMER_PROF, &it, NULL), 0);
  struct timespec nap = {0, 200000000};
  nanosleep(&nap, NULL);
  CHECK_EQ(n_prof, before);
  it = (struct itimerval){{0, 0}, {0, 0}};
  setitimer(ITIMER_PROF, &it, NULL);
  /* POSIX timers on the process and thread CPU clocks. */
  clockid_t clocks[2] = {CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID};
  for (int i = 0; i < 2; i++) {
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2};
    timer_t tid;
    CHECK_EQ(timer_create(clocks[i], &ev, &tid), 0);
    struct itimerspec ts = {{0, 0}, {0, 40000000}}, got;
    n_usr2 = 0;
    CHECK_EQ(timer_settime(tid, 0, &ts, NULL), 0);
    CHECK_EQ(timer_gettime(tid, &got), 0);
    CHECK(got.it_value.tv_nsec > 0 && got.it_value.tv_nsec <= 40000000);
    spin_ms(20000, &n_usr2, 1);
    CHECK_EQ(n_usr2, 1);
    CHECK_EQ(timer_delete(tid), 0);
  }
}

static void cpu_children(void)
{
  pid_t pid = fork();
  if (pid == 0) {
    spin_cpu_ms(300);
    _exit(0);
  }
  int st;
  struct rusage ru;
  memset(&ru, 0, sizeof(ru));
  CHECK_EQ(wait4(pid, &st, 0, &ru), pid);
  printf("child spun 300 ms CPU: wait4 utime %llu ms\n", (unsigned long long)tv_us(ru.ru_utime) / 1000);
  CHECK(tv_us(ru.ru_utime) >= 150000);
  struct rusage rc;
  CHECK_EQ(getrusage(RUSAGE_CHILDREN, &rc), 0);
  CHECK(tv_us(rc.ru_utime) >= 150000);
  struct tms tm;
  times(&tm);
  CHECK(tm.tms_cutime >= 15);
}

/* ---- 3. mmap of tmpfs files (/dev/shm, memfd) ---- */

/* Runs fn in a child; returns its wait status. */
static int in_child(void (*fn)(void *), void *arg)
{
  pid_t pid = fork();
  if (pid == 0) {
    fn(arg);
    _exit(0);
  }
  int st = -1;
  waitpid(pid, &st, 0);
  return st;
}

static void touch(void *p)
{
  *(volatile char *)p = 1;
}

static void child_writes(void *arg)
{
  char *p = arg;
  if (p[0] != 'A')
    _exit(3);
  p[4096] = 'B';
  p[0] = 'C';
}

static void shm_maps(void)
{
  const char *name = "/quark_gmisc_shm";
  shm_unlink(name);
  int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
  CHECK(fd >= 0);
  if (fd < 0)
    return;
  CHECK_EQ(ftruncate(fd, 3 * 4096 + 100), 0); /* 4 pages, the 4th partly */
  char *p = mmap(NULL, 5 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK(p != MAP_FAILED);
  if (p == MAP_FAILED)
    return;
  CHECK_EQ(p[3 * 4096 + 99], 0);
  p[0] = 'A';
  int st = in_child(child_writes, p);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  CHECK_EQ(p[4096], 'B'); /* the child's writes, seen by the parent */
  CHECK_EQ(p[0], 'C');
  char c = 0;
  CHECK_EQ(pread(fd, &c, 1, 4096), 1); /* the file is the mapping */
  CHECK_EQ(c, 'B');
  CHECK_EQ(pwrite(fd, "D", 1, 8192), 1);
  CHECK_EQ(p[8192], 'D');
  /* Past the end of the file: SIGBUS. */
  st = in_child(touch, p + 4 * 4096);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS);
  /* A second process opening the name maps the same pages. */
  int fd2 = shm_open(name, O_RDONLY, 0);
  CHECK(fd2 >= 0);
  char *q = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd2, 4096);
  CHECK(q != MAP_FAILED && q[0] == 'B');
  CHECK(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0) == MAP_FAILED && errno == EACCES);
  /* MAP_PRIVATE: a copy; its writes stay in this process. */
  char *r = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  CHECK(r != MAP_FAILED && r[0] == 'C');
  if (r != MAP_FAILED) {
    r[0] = 'P';
    CHECK_EQ(p[0], 'C');
    CHECK_EQ(pread(fd, &c, 1, 0), 1);
    CHECK_EQ(c, 'C');
  }
  CHECK_EQ(msync(p, 4096, MS_SYNC), 0);
  CHECK_EQ(RS3(SYS_msync, p + 1, 4096, MS_SYNC), -EINVAL);
  /* The pages outlive the name and the descriptors. */
  close(fd);
  close(fd2);
  CHECK_EQ(shm_unlink(name), 0);
  CHECK_EQ(p[4096], 'B');
  p[4096] = 'E';
  CHECK_EQ(q[0], 'E');
  CHECK_EQ(munmap(p, 5 * 4096), 0);
  CHECK_EQ(munmap(q, 4096), 0);
  if (r != MAP_FAILED)
    munmap(r, 4096);
}

static void memfd_maps(void)
{
  int fd = (int)RS2(SYS_memfd_create, "gmisc", 0x2 /* MFD_ALLOW_SEALING */ | 0x1 /* CLOEXEC */);
  CHECK(fd >= 0);
  if (fd < 0)
    return;
  char link[64], want[64];
  snprintf(want, sizeof(want), "/proc/self/fd/%d", fd);
  ssize_t ln = readlink(want, link, sizeof(link) - 1);
  link[ln > 0 ? ln : 0] = 0;
  CHECK(strstr(link, "memfd:gmisc") != NULL);
  CHECK_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
  CHECK_EQ(write(fd, "hello", 5), 5);
  CHECK_EQ(ftruncate(fd, 8192), 0);
  char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK(p != MAP_FAILED);
  if (p == MAP_FAILED)
    return;
  CHECK(memcmp(p, "hello", 5) == 0);
  p[0] = 'A';
  int st = in_child(child_writes, p);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  CHECK_EQ(p[4096], 'B');
  /* Seals: 1033 F_ADD_SEALS, 1034 F_GET_SEALS. */
  CHECK_EQ(fcntl(fd, 1034), 0);
  CHECK_EQ(fcntl(fd, 1033, 0x2 | 0x4), 0); /* SHRINK | GROW */
  CHECK_EQ(fcntl(fd, 1034), 0x6);
  CHECK_EQ(RS2(SYS_ftruncate, fd, 4096), -EPERM);
  CHECK_EQ(RS2(SYS_ftruncate, fd, 3 * 4096), -EPERM);
  CHECK_EQ(RS4(SYS_pwrite64, fd, "x", 1, 8192), -EPERM);
  CHECK_EQ(RS4(SYS_pwrite64, fd, "x", 1, 0), 1);
  CHECK_EQ(RS3(SYS_fcntl, fd, 1033, 0x8), -EBUSY); /* WRITE while mapped shared */
  CHECK_EQ(munmap(p, 8192), 0);
  CHECK_EQ(fcntl(fd, 1033, 0x8), 0);
  CHECK_EQ(RS4(SYS_pwrite64, fd, "x", 1, 0), -EPERM);
  CHECK(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EPERM);
  char *ro = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
  CHECK(ro != MAP_FAILED && ro[0] == 'x');
  CHECK_EQ(fcntl(fd, 1033, 0x1), 0); /* SEAL */
  CHECK_EQ(RS3(SYS_fcntl, fd, 1033, 0x10), -EPERM);
  close(fd);
  /* Without MFD_ALLOW_SEALING: F_SEAL_SEAL from the start. */
  fd = (int)RS2(SYS_memfd_create, "gmisc2", 0);
  CHECK(fd >= 0);
  CHECK_EQ(fcntl(fd, 1034), 0x1);
  CHECK_EQ(RS3(SYS_fcntl, fd, 1033, 0x2), -EPERM);
  CHECK_EQ(RS2(SYS_memfd_create, "x", 0x1000), -EINVAL);
  close(fd);
  /* A pipe is no tmpfs file. */
  int pp[2];
  CHECK_EQ(pipe(pp), 0);
  CHECK_EQ(RS2(SYS_fcntl, pp[0], 1034), -EINVAL);
  close(pp[0]);
  close(pp[1]);
}

int main(int argc, char **argv)
{
  self_path = argv[0];
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *what = argc > 1 ? argv[1] : "all";
  if (!strcmp(what, "altsmall"))
    return alt_small();
  sig_xsave();
  sig_altstack();
  cpu_clocks();
  cpu_timers();
  cpu_children();
  shm_maps();
  memfd_maps();
  return t_done("t_gmisc");
}
