/* Tiny assertion harness for the guest test programs (static glibc, musl
 * and static-pie builds of the same source). Raw syscalls return -errno so
 * that a libc wrapper's own checks never hide the kernel's answer. */
#ifndef T_H
#define T_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_checks, t_fails;

#define CHECK(cond)                                                                        \
  do {                                                                                     \
    t_checks++;                                                                            \
    if (!(cond)) {                                                                         \
      t_fails++;                                                                           \
      printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                               \
      fflush(stdout);                                                                      \
    }                                                                                      \
  } while (0)

/* value == expected, printing both on failure */
#define CHECK_EQ(val, want)                                                                \
  do {                                                                                     \
    long long v_ = (long long)(val), w_ = (long long)(want);                               \
    t_checks++;                                                                            \
    if (v_ != w_) {                                                                        \
      t_fails++;                                                                           \
      printf("FAIL %s:%d: %s == %lld, want %lld\n", __FILE__, __LINE__, #val, v_, w_);     \
      fflush(stdout);                                                                      \
    }                                                                                      \
  } while (0)

static inline long rs(long n, long a, long b, long c, long d, long e, long f)
{
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#define RS0(n) rs(n, 0, 0, 0, 0, 0, 0)
#define RS1(n, a) rs(n, (long)(a), 0, 0, 0, 0, 0)
#define RS2(n, a, b) rs(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define RS3(n, a, b, c) rs(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define RS4(n, a, b, c, d) rs(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define RS5(n, a, b, c, d, e) rs(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)
#define RS6(n, a, b, c, d, e, f) rs(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

static inline int t_done(const char *name)
{
  printf("%s: %d checks, %d failures\n", name, t_checks, t_fails);
  fflush(stdout);
  return t_fails ? 1 : 0;
}

#endif
