/* Scheduling checks inside the guest: preemption of tasks that spin in
 * user mode, sleepers woken on time while another task spins, and the full
 * AVX state of two tasks kept apart across preemption and sched_yield.
 * Prints "ok N checks" at the end; timings are printed, never asserted
 * (the bounds below only catch a task that never got the vCPU back).
 * Usage: t_sched [all|preempt|sleep|avx|gaps] */
#define _GNU_SOURCE
#include <sched.h>
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

static inline uint64_t rdtsc(void)
{
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

/* A child that spins in user mode (no syscall at all) until killed. */
static pid_t spinner(void)
{
  pid_t p = fork();
  if (p == 0) {
    volatile uint64_t n = 0;
    for (;;)
      n++;
  }
  return p;
}

static void reap_killed(pid_t p)
{
  int st = 0;
  CHECK_EQ(kill(p, SIGKILL), 0);
  CHECK_EQ(waitpid(p, &st, 0), p);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* Two children spin; the parent sees time pass only if the three take
 * turns. */
static void t_preempt(void)
{
  uint64_t t0 = now_ns();
  pid_t a = spinner(), b = spinner();
  CHECK(a > 0 && b > 0);
  uint64_t mine = 0;
  while (now_ns() - t0 < 100000000ull)
    mine++;
  reap_killed(a);
  reap_killed(b);
  printf("preempt: parent and 2 spinning children: the parent's 100 ms took %.1f ms, %llu rounds\n",
         (now_ns() - t0) / 1e6, (unsigned long long)mine);
}

/* A sleeper wakes near its deadline while another task spins. */
static void t_sleep(void)
{
  pid_t a = spinner();
  uint64_t worst = 0, sum = 0;
  for (int i = 0; i < 10; i++) {
    uint64_t t0 = now_ns();
    struct timespec ts = {0, 3000000}; /* 3 ms */
    CHECK_EQ(nanosleep(&ts, NULL), 0);
    uint64_t late = now_ns() - t0 - 3000000;
    sum += late;
    if (late > worst)
      worst = late;
  }
  reap_killed(a);
  printf("sleep: 3 ms nanosleep beside a spinner: late by %.0f us on average, %.0f us at worst\n",
         sum / 10 / 1e3, worst / 1e3);
}

/* Loads 16 ymm registers with a pattern derived from seed, keeps them live
 * for ns nanoseconds of spinning (yield: with a sched_yield syscall each
 * round), and stores them to out[16][4]. */
__attribute__((target("avx"))) static void ymm_hold(uint64_t seed, uint64_t cycles, int yield,
                                                    uint64_t out[16][4])
{
  uint64_t in[16][4];
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 4; j++)
      in[i][j] = seed * 0x9e3779b97f4a7c15ull + (uint64_t)(i * 4 + j) * 0x1000193ull;
  __asm__ volatile(
      "vmovdqu 0(%[in]), %%ymm0\n vmovdqu 32(%[in]), %%ymm1\n vmovdqu 64(%[in]), %%ymm2\n"
      "vmovdqu 96(%[in]), %%ymm3\n vmovdqu 128(%[in]), %%ymm4\n vmovdqu 160(%[in]), %%ymm5\n"
      "vmovdqu 192(%[in]), %%ymm6\n vmovdqu 224(%[in]), %%ymm7\n vmovdqu 256(%[in]), %%ymm8\n"
      "vmovdqu 288(%[in]), %%ymm9\n vmovdqu 320(%[in]), %%ymm10\n vmovdqu 352(%[in]), %%ymm11\n"
      "vmovdqu 384(%[in]), %%ymm12\n vmovdqu 416(%[in]), %%ymm13\n vmovdqu 448(%[in]), %%ymm14\n"
      "vmovdqu 480(%[in]), %%ymm15\n"
      "rdtsc\n shl $32, %%rdx\n or %%rax, %%rdx\n mov %%rdx, %%r8\n"
      "1:\n"
      "test %[y], %[y]\n jz 2f\n mov $24, %%eax\n syscall\n" /* sched_yield */
      "2:\n rdtsc\n shl $32, %%rdx\n or %%rax, %%rdx\n sub %%r8, %%rdx\n cmp %[c], %%rdx\n jb 1b\n"
      "vmovdqu %%ymm0, 0(%[out])\n vmovdqu %%ymm1, 32(%[out])\n vmovdqu %%ymm2, 64(%[out])\n"
      "vmovdqu %%ymm3, 96(%[out])\n vmovdqu %%ymm4, 128(%[out])\n vmovdqu %%ymm5, 160(%[out])\n"
      "vmovdqu %%ymm6, 192(%[out])\n vmovdqu %%ymm7, 224(%[out])\n vmovdqu %%ymm8, 256(%[out])\n"
      "vmovdqu %%ymm9, 288(%[out])\n vmovdqu %%ymm10, 320(%[out])\n vmovdqu %%ymm11, 352(%[out])\n"
      "vmovdqu %%ymm12, 384(%[out])\n vmovdqu %%ymm13, 416(%[out])\n vmovdqu %%ymm14, 448(%[out])\n"
      "vmovdqu %%ymm15, 480(%[out])\n vzeroupper\n"
      :
      : [in] "r"(in), [out] "r"(out), [c] "r"(cycles), [y] "r"((uint64_t)yield)
      : "rax", "rcx", "rdx", "r8", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
        "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
  int bad = 0;
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 4; j++)
      bad += out[i][j] != in[i][j];
  out[0][0] = (uint64_t)bad;
}

/* Two processes hold different ymm values for ~60 ms each, at once. */
static void t_avx_round(int yield)
{
  uint64_t cycles = 0;
  {
    uint64_t t0 = now_ns(), c0 = rdtsc();
    while (now_ns() - t0 < 5000000)
      ;
    cycles = (rdtsc() - c0) * 12; /* ~60 ms */
  }
  pid_t p = fork();
  if (p == 0) {
    uint64_t out[16][4];
    ymm_hold(2, cycles, yield, out);
    _exit(out[0][0] ? 1 : 0);
  }
  uint64_t out[16][4];
  ymm_hold(1, cycles, yield, out);
  CHECK_EQ(out[0][0], 0);
  int st = 0;
  CHECK_EQ(waitpid(p, &st, 0), p);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A child that spins a little, then dies of SIGSEGV. */
static pid_t crasher(void)
{
  pid_t p = fork();
  if (p == 0) {
    volatile uint64_t x = 0;
    for (int k = 0; k < 3000000; k++)
      x++;
    int *volatile bad = (int *)16;
    *bad = 1; /* SIGSEGV */
    _exit(0);
  }
  return p;
}

/* Two AVX holders, each forking a child that dies of a fault while they
 * hold their registers: the switch away from the dead task (next in the
 * run list: its parent, a holder) must restore the holder's AVX state. */
static void t_avx_crash(void)
{
  uint64_t cycles;
  {
    uint64_t t0 = now_ns(), c0 = rdtsc();
    while (now_ns() - t0 < 5000000)
      ;
    cycles = (rdtsc() - c0) * 16; /* ~80 ms */
  }
  pid_t holder = fork();
  if (holder == 0) {
    int bad = 0;
    for (int i = 0; i < 3; i++) {
      pid_t c = crasher();
      uint64_t out[16][4];
      ymm_hold(3 + (uint64_t)i, cycles, 0, out);
      bad += out[0][0] != 0;
      waitpid(c, NULL, 0);
    }
    _exit(bad ? 1 : 0);
  }
  for (int i = 0; i < 3; i++) {
    pid_t c = crasher();
    uint64_t out[16][4];
    ymm_hold(13 + (uint64_t)i, cycles, 0, out);
    CHECK_EQ(out[0][0], 0);
    int st = 0;
    CHECK_EQ(waitpid(c, &st, 0), c);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
  }
  int st = 0;
  CHECK_EQ(waitpid(holder, &st, 0), holder);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void t_avx(void)
{
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx")) {
    printf("avx: the CPU has no AVX; skipped\n");
    return;
  }
  t_avx_round(1);
  t_avx_round(0);
  t_avx_crash();
  printf(
      "avx: ymm0-15 of two processes intact across sched_yield, preemption and switches from tasks "
      "killed by a fault\n");
}

/* What a spinner loses per wake-up of a 2 ms sleeper: the timer interrupt,
 * two task switches and the sleeper's nanosleep. Printed only. */
static void t_gaps(void)
{
  pid_t p = fork();
  if (p == 0) {
    for (int i = 0; i < 40; i++) {
      struct timespec ts = {0, 2000000};
      nanosleep(&ts, NULL);
    }
    _exit(0);
  }
  uint64_t t0 = now_ns(), c0 = rdtsc();
  while (now_ns() - t0 < 2000000)
    ;
  double cyc_per_us = (double)(rdtsc() - c0) / 2000.0;
  uint64_t gaps[64], n = 0, last = rdtsc(), start = last;
  while (n < 64 && rdtsc() - start < (uint64_t)(cyc_per_us * 150000)) {
    uint64_t c = rdtsc();
    if (c - last > (uint64_t)(cyc_per_us * 5))
      gaps[n++] = c - last;
    last = c;
  }
  int st;
  waitpid(p, &st, 0);
  if (n == 0) {
    printf("gaps: none seen\n");
    return;
  }
  for (uint64_t i = 1; i < n; i++)
    for (uint64_t j = i; j > 0 && gaps[j] < gaps[j - 1]; j--) {
      uint64_t x = gaps[j];
      gaps[j] = gaps[j - 1];
      gaps[j - 1] = x;
    }
  printf("gaps: %llu interruptions of a spinner by a 2 ms sleeper: min %.0f us, median %.0f us\n",
         (unsigned long long)n, gaps[0] / cyc_per_us, gaps[n / 2] / cyc_per_us);
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *what = argc > 1 ? argv[1] : "all";
  int all = !strcmp(what, "all");
  if (all || !strcmp(what, "preempt"))
    t_preempt();
  if (all || !strcmp(what, "sleep"))
    t_sleep();
  if (all || !strcmp(what, "avx"))
    t_avx();
  if (all || !strcmp(what, "gaps"))
    t_gaps();
  return t_done("t_sched");
}
