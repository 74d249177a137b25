/* Repeats one syscall N times: the guest tests run it twice (N = 0 and
 * N = 200) under `quark-sandbox run --stats` and divide the difference of
 * the hypervisor's counters by 200 (emulated ring-0 instructions, exits
 * and QCalls per operation).
 * Usage: t_loop OP N   OP: getpid enosys clock write write0 lseek fstat
 *                          stat read4k read1m open */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "t.h"

static char buf[1 << 20] __attribute__((aligned(4096)));

int main(int argc, char **argv)
{
  if (argc < 3)
    return 2;
  const char *op = argv[1];
  long n = atol(argv[2]);
  int fd = open("/data/big.bin", O_RDONLY);
  int w = open("/tmp/loop.out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  struct stat st;
  struct timespec ts;
  buf[0] = 1; /* fault the buffer in before counting */
  for (long i = 0; i < (1 << 20); i += 4096)
    buf[i] = 1;
  for (long i = 0; i < n; i++) {
    if (!strcmp(op, "getpid"))
      RS0(SYS_getpid);
    else if (!strcmp(op, "enosys"))
      RS0(400);
    else if (!strcmp(op, "clock"))
      RS2(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
    else if (!strcmp(op, "write"))
      RS3(SYS_write, w, "x", 1);
    else if (!strcmp(op, "write0"))
      RS3(SYS_write, w, "x", 0);
    else if (!strcmp(op, "lseek"))
      RS3(SYS_lseek, fd, 0, SEEK_SET);
    else if (!strcmp(op, "fstat"))
      RS2(SYS_fstat, fd, &st);
    else if (!strcmp(op, "stat"))
      RS2(SYS_stat, "/data/hello.txt", &st);
    else if (!strcmp(op, "read4k"))
      RS4(SYS_pread64, fd, buf, 4096, 0);
    else if (!strcmp(op, "read1m"))
      RS4(SYS_pread64, fd, buf, 1 << 20, 0);
    else if (!strcmp(op, "open"))
      RS1(SYS_close, RS3(SYS_open, "/data/hello.txt", O_RDONLY, 0));
    else
      return 2;
  }
  return 0;
}
