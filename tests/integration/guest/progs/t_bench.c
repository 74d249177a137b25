/* Syscall costs as a guest program sees them (wall clock per operation,
 * best of a few rounds). Not a pass/fail test: the guest tests print its
 * numbers; tests/bench/ holds the comparisons with other runtimes.
 * Usage: t_bench [SCALE]   (iterations scale, default 1) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "t.h"

static double now_ns(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

#define BENCH(name, n, body)                                                              \
  do {                                                                                     \
    double best = 1e30;                                                                    \
    for (int round = 0; round < 3; round++) {                                              \
      double t0 = now_ns();                                                                \
      for (long i = 0; i < (n); i++) {                                                     \
        body;                                                                              \
      }                                                                                    \
      double per = (now_ns() - t0) / (n);                                                  \
      if (per < best)                                                                      \
        best = per;                                                                        \
    }                                                                                      \
    printf("bench %-24s %12.0f ns/op\n", name, best);                                      \
  } while (0)

int main(int argc, char **argv)
{
  long s = argc > 1 ? atol(argv[1]) : 1;
  if (s < 1)
    s = 1;
  int w = open("/tmp/bench.out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int big = open("/data/big.bin", O_RDONLY);
  char *buf = malloc(1 << 20);
  struct stat st;
  struct timespec ts;
  BENCH("getpid", 200 * s, RS0(SYS_getpid));
  BENCH("clock_gettime(syscall)", 200 * s, RS2(SYS_clock_gettime, CLOCK_MONOTONIC, &ts));
  BENCH("write 1 byte (file)", 100 * s, RS3(SYS_write, w, "x", 1));
  BENCH("write 0 bytes", 100 * s, RS3(SYS_write, w, "x", 0));
  BENCH("fstat", 100 * s, fstat(big, &st));
  BENCH("stat", 50 * s, stat("/data/hello.txt", &st));
  BENCH("open+close", 50 * s, close(open("/data/hello.txt", O_RDONLY)));
  BENCH("pread 1 MiB", 10 * s, RS4(SYS_pread64, big, buf, 1 << 20, 0));
  BENCH("mmap+touch+munmap 64K", 10 * s, {
    char *m = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    m[0] = 1;
    m[65535] = 1;
    munmap(m, 65536);
  });
  return 0;
}
