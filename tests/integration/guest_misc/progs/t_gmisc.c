/* Guest kernel: signal frames with the full XSAVE state (task/signal.c),
 * per-task CPU time (task/cputime.c) and mmap of tmpfs files (fs/tmpfs.c).
 * Static glibc and musl builds; run by guest_misc_test.sh as
 * `t_gmisc all` (plus internal sub-modes it execs itself with). */
#define _GNU_SOURCE
#include <fcntl.h>
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

int main(int argc, char **argv)
{
  self_path = argv[0];
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *what = argc > 1 ? argv[1] : "all";
  if (!strcmp(what, "altsmall"))
    return alt_small();
  sig_xsave();
  sig_altstack();
  return t_done("t_gmisc");
}
