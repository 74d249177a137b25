/* Rootfs attributes the guest keeps for a moment (guestkernel/fs/hostfs.c:
 * the first fstat after an open and a stat of a path stated or opened
 * just before are answered in the guest) and closes that do not wait for
 * the host (qk_qcall_post). Checks that a stat or fstat still sees every
 * change the guest made in between (a write through another descriptor,
 * truncate, O_TRUNC, rename, link, unlink, chmod), that a change made on
 * the host is seen once the answer is older than the freshness window,
 * and that many opens and closes in a row never run out of host handles
 * nor mix files up.
 * Usage: t_hostattr N  (N: open/close rounds). The test script appends to
 * /tmp/hattr on the host once the program prints "hattr-ready", then
 * creates /tmp/hattr.done. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../../guest/progs/t.h"

static void put(const char *path, const char *s)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK(fd >= 0);
  if (fd >= 0) {
    CHECK_EQ(write(fd, s, strlen(s)), (long)strlen(s));
    CHECK_EQ(close(fd), 0);
  }
}

/* fstat as glibc writes it (newfstatat(fd, "", AT_EMPTY_PATH)) or the old
 * call, alternately: both must answer the same. */
static long fst(int fd, struct stat *st, int how)
{
  return how ? RS4(SYS_newfstatat, fd, "", st, AT_EMPTY_PATH) : RS2(SYS_fstat, fd, st);
}

static void guest_changes(void)
{
  const char *p = "/tmp/ha/f";
  struct stat st, ps;
  mkdir("/tmp/ha", 0755);
  for (int how = 0; how < 2; how++) {
    put(p, "0123456789");
    /* fresh attributes match the path's */
    int a = open(p, O_RDONLY);
    CHECK(a >= 0);
    CHECK_EQ(fst(a, &st, how), 0);
    CHECK_EQ(stat(p, &ps), 0);
    CHECK_EQ(st.st_size, 10);
    CHECK(st.st_ino == ps.st_ino && st.st_dev == ps.st_dev && st.st_mode == ps.st_mode);
    CHECK(st.st_mtim.tv_sec == ps.st_mtim.tv_sec && st.st_mtim.tv_nsec == ps.st_mtim.tv_nsec);
    CHECK_EQ(fst(a, &st, how), 0);
    CHECK_EQ(st.st_size, 10);
    close(a);

    /* a write through another descriptor */
    a = open(p, O_RDONLY);
    int b = open(p, O_WRONLY | O_APPEND);
    CHECK(a >= 0 && b >= 0);
    CHECK_EQ(stat(p, &ps), 0);
    CHECK_EQ(ps.st_size, 10);
    CHECK_EQ(write(b, "abcde", 5), 5);
    CHECK_EQ(fst(a, &st, how), 0);
    CHECK_EQ(st.st_size, 15);
    CHECK_EQ(stat(p, &ps), 0);
    CHECK_EQ(ps.st_size, 15);
    close(b);
    close(a);

    /* a stat by path after a rename over it, and lstat of a link */
    put("/tmp/ha/r", "abc");
    CHECK_EQ(stat("/tmp/ha/r", &ps), 0);
    ino_t rino = ps.st_ino;
    CHECK_EQ(stat(p, &ps), 0);
    CHECK(ps.st_ino != rino);
    CHECK_EQ(rename("/tmp/ha/r", p), 0);
    CHECK_EQ(stat(p, &ps), 0);
    CHECK(ps.st_ino == rino && ps.st_size == 3);
    CHECK_EQ(stat("/tmp/ha/r", &ps), -1);
    CHECK_EQ(symlink("f", "/tmp/ha/l"), 0);
    CHECK_EQ(lstat("/tmp/ha/l", &ps), 0);
    CHECK(S_ISLNK(ps.st_mode));
    CHECK_EQ(stat("/tmp/ha/l", &ps), 0);
    CHECK(S_ISREG(ps.st_mode) && ps.st_ino == rino);
    unlink("/tmp/ha/l");
    put(p, "0123456789abcde");

    /* a write through the same descriptor */
    a = open(p, O_RDWR | O_APPEND);
    CHECK_EQ(write(a, "zz", 2), 2);
    CHECK_EQ(fst(a, &st, how), 0);
    CHECK_EQ(st.st_size, 17);
    CHECK_EQ(ftruncate(a, 7), 0);
    CHECK_EQ(fst(a, &st, how), 0);
    CHECK_EQ(st.st_size, 7);
    close(a);

    /* truncate by path, and an O_TRUNC open */
    a = open(p, O_RDONLY);
    CHECK_EQ(truncate(p, 3), 0);
    CHECK_EQ(fst(a, &st, how), 0);
    CHECK_EQ(st.st_size, 3);
    close(a);
    a = open(p, O_RDONLY);
    b = open(p, O_WRONLY | O_TRUNC);
    CHECK(b >= 0);
    CHECK_EQ(fst(a, &st, how), 0);
    CHECK_EQ(st.st_size, 0);
    close(b);
    close(a);

    /* chmod, a hard link, and unlink */
    a = open(p, O_RDONLY);
    CHECK_EQ(chmod(p, 0604), 0);
    CHECK_EQ(fst(a, &st, how), 0);
    CHECK_EQ(st.st_mode & 07777, 0604);
    close(a);
    a = open(p, O_RDONLY);
    CHECK_EQ(link(p, "/tmp/ha/g"), 0);
    CHECK_EQ(fst(a, &st, how), 0);
    CHECK_EQ(st.st_nlink, 2);
    close(a);
    unlink("/tmp/ha/g");
    a = open(p, O_RDONLY);
    CHECK_EQ(unlink(p), 0);
    CHECK_EQ(fst(a, &st, how), 0);
    CHECK_EQ(st.st_nlink, 0);
    close(a);

    /* a directory, and O_PATH */
    a = open("/tmp/ha", O_RDONLY | O_DIRECTORY);
    CHECK_EQ(fst(a, &st, how), 0);
    CHECK(S_ISDIR(st.st_mode));
    close(a);
    put(p, "x");
    a = open(p, O_PATH);
    CHECK(a >= 0);
    CHECK_EQ(fst(a, &st, how), 0);
    CHECK(S_ISREG(st.st_mode) && st.st_size == 1);
    close(a);
    unlink(p);
  }
}

/* N rounds of open, read, close over 8 files: posted closes must free the
 * host handles (the host has 4096) and never close the wrong one. */
static void open_close(long n)
{
  char path[64], buf[32];
  for (int i = 0; i < 8; i++) {
    snprintf(path, sizeof path, "/tmp/ha/c%d", i);
    snprintf(buf, sizeof buf, "file %d", i);
    put(path, buf);
  }
  long bad = 0;
  for (long r = 0; r < n; r++) {
    int i = (int)(r % 8);
    snprintf(path, sizeof path, "/tmp/ha/c%d", i);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
      printf("open %ld: errno %d\n", r, errno);
      bad++;
      break;
    }
    char want[32];
    snprintf(want, sizeof want, "file %d", i);
    ssize_t k = read(fd, buf, sizeof buf);
    if (k != (ssize_t)strlen(want) || memcmp(buf, want, (size_t)k))
      bad++;
    if (close(fd) != 0)
      bad++;
  }
  CHECK_EQ(bad, 0);
  /* 64 open at once, closed, then 64 again */
  int fds[64];
  for (int round = 0; round < 2; round++) {
    for (int j = 0; j < 64; j++) {
      snprintf(path, sizeof path, "/tmp/ha/c%d", j % 8);
      fds[j] = open(path, O_RDONLY);
      CHECK(fds[j] >= 0);
    }
    for (int j = 0; j < 64; j++) {
      snprintf(buf, sizeof buf, "file %d", j % 8);
      char got[32] = { 0 };
      CHECK_EQ(pread(fds[j], got, sizeof got - 1, 0), (long)strlen(buf));
      CHECK(!strcmp(got, buf));
      CHECK_EQ(close(fds[j]), 0);
    }
  }
  /* close errors */
  CHECK_EQ(RS1(SYS_close, fds[0]), -EBADF);
  CHECK_EQ(RS1(SYS_close, 100000), -EBADF);
  for (int i = 0; i < 8; i++) {
    snprintf(path, sizeof path, "/tmp/ha/c%d", i);
    unlink(path);
  }
}

static void nap_ms(long ms)
{
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
  nanosleep(&ts, NULL);
}

/* A change made on the host between the open and the first fstat, which
 * comes well after the freshness window: the fstat sees it. */
static void host_change(void)
{
  put("/tmp/hattr", "1");
  int fd = open("/tmp/hattr", O_RDONLY);
  CHECK(fd >= 0);
  struct stat st;
  CHECK_EQ(stat("/tmp/hattr", &st), 0);
  CHECK_EQ(st.st_size, 1);
  /* on stdout: a file the guest writes would make the fstat ask the host */
  printf("hattr-ready\n");
  fflush(stdout);
  int waited = 0;
  while (access("/tmp/hattr.done", F_OK) != 0 && waited < 3000) {
    nap_ms(10);
    waited++;
  }
  CHECK(waited < 3000);
  nap_ms(10);
  CHECK_EQ(fstat(fd, &st), 0);
  CHECK_EQ(st.st_size, 5);
  CHECK_EQ(stat("/tmp/hattr", &st), 0);
  CHECK_EQ(st.st_size, 5);
  close(fd);
}

int main(int argc, char **argv)
{
  long n = argc > 1 ? atol(argv[1]) : 100;
  guest_changes();
  open_close(n);
  host_change();
  rmdir("/tmp/ha");
  return t_done("t_hostattr");
}
