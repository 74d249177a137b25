/* Syscall micro-benchmark run natively, inside quark-sandbox and inside
 * peer runtimes (same method as reference/sysbench.c: a tight loop, time
 * per operation). Build: gcc -static -O2 -o sbx_bench sbx_bench.c
 *
 *   sbx_bench getpid N        N x syscall(SYS_getpid)            -> ns/op
 *   sbx_bench openclose N F   N x open(F) + close                -> ns/op
 *   sbx_bench stat N F        N x stat(F)                        -> ns/op
 *   sbx_bench read N F        N passes over F in 1 MiB read()s   -> MiB/s
 * Output: one line "OP VALUE UNIT". N = 0 runs nothing (the baseline for
 * counting VM exits per operation). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
  if (argc < 3) {
    fprintf(stderr, "usage: sbx_bench getpid|openclose|stat|read N [FILE]\n");
    return 2;
  }
  const char *op = argv[1], *file = argc > 3 ? argv[3] : "/data/small";
  long n = atol(argv[2]);
  double t0 = now_ns(), bytes = 0;
  if (!strcmp(op, "getpid")) {
    for (long i = 0; i < n; i++)
      syscall(SYS_getpid);
  } else if (!strcmp(op, "openclose")) {
    for (long i = 0; i < n; i++) {
      int fd = open(file, O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        perror(file);
        return 1;
      }
      close(fd);
    }
  } else if (!strcmp(op, "stat")) {
    struct stat st;
    for (long i = 0; i < n; i++)
      if (stat(file, &st) != 0) {
        perror(file);
        return 1;
      }
  } else if (!strcmp(op, "read")) {
    static char buf[1 << 20];
    for (long i = 0; i < n; i++) {
      int fd = open(file, O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        perror(file);
        return 1;
      }
      ssize_t r;
      while ((r = read(fd, buf, sizeof buf)) > 0)
        bytes += (double)r;
      close(fd);
      if (r < 0) {
        perror("read");
        return 1;
      }
    }
  } else {
    fprintf(stderr, "unknown op %s\n", op);
    return 2;
  }
  double dt = now_ns() - t0;
  if (!strcmp(op, "read"))
    printf("%s %.1f MiB/s\n", op, n && dt > 0 ? bytes / (1 << 20) / (dt / 1e9) : 0.0);
  else
    printf("%s %.0f ns/op\n", op, n ? dt / (double)n : 0.0);
  return 0;
}
