/* Guest memory management (guestkernel/mm, fs/tmpfs.c), run in the guest
 * and, for comparison, on the host (same binary, same expectations):
 *   shared   MAP_SHARED|MAP_ANONYMOUS across fork: stores seen both ways,
 *            pages first touched after the fork (beyond the 8 MiB the
 *            kernel maps at once), munmap in one process, mprotect, mremap
 *            (grow in place, move, SIGBUS past the original size as on
 *            Linux), an atomic counter of several children, /proc maps
 *   dontunmap mremap(MREMAP_DONTUNMAP): the pages move, the old range
 *            stays mapped and reads zeros; its EINVAL cases
 *   trunc    a MAP_SHARED memfd mapping follows ftruncate: SIGBUS past the
 *            end, the new pages after a grow (zero), through fork too
 *   meminfo  (guest only: "guest" argument) MemFree comes back after the
 *            shared pages' last mapping goes
 *   frag     (guest only) scatters the free memory into single freed pages
 *            and then needs contiguous runs: pipes with 64 KiB of data
 *            (16-page kernel buffers), fork+exec, a 64 MiB mapping
 *   forkbench a measurement, no checks (see forkbench()) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../guest/progs/t.h"

#define PG 4096ul
#define MiB (1ul << 20)

static bool in_guest;

/* The signal a child gets touching p (0: none), with a write if w. */
static int touch_sig(volatile char *p, bool w)
{
  pid_t pid = fork();
  if (pid == 0) {
    if (w)
      *p = 1;
    else
      (void)*p;
    _exit(0);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

static int wait_ok(pid_t pid)
{
  int st = -1;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* ---- shared anonymous memory ---- */

static void shared_fork(void)
{
  /* 24 MiB: the kernel maps the first 8 MiB at mmap, the rest on faults. */
  size_t len = 24 * MiB;
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(p != MAP_FAILED);
  if (p == MAP_FAILED)
    return;
  p[0] = 'P';
  p[len - 1] = 'Q'; /* faulted in before the fork */
  pid_t pid = fork();
  if (pid == 0) {
    if (p[0] != 'P' || p[len - 1] != 'Q')
      _exit(2);
    p[1] = 'C';
    for (size_t off = 9 * MiB; off < len; off += MiB)
      p[off] = (char)(off / MiB); /* first touched here, after the fork */
    p[100] = 0;
    while (!p[100]) /* wait for the parent's answer through the mapping */
      usleep(1000);
    _exit(p[100] == 'A' ? 0 : 3);
  }
  for (int i = 0; i < 20000 && p[1] != 'C'; i++)
    usleep(1000);
  CHECK_EQ(p[1], 'C');
  for (int i = 0; i < 20000 && p[23 * MiB] != 23; i++)
    usleep(1000);
  int bad = 0;
  for (size_t off = 9 * MiB; off < len; off += MiB)
    bad += p[off] != (char)(off / MiB);
  CHECK_EQ(bad, 0); /* the child's first touches are the parent's pages */
  p[100] = 'A';
  CHECK_EQ(wait_ok(pid), 0);

  /* munmap in the child leaves the parent's mapping. */
  pid = fork();
  if (pid == 0) {
    p[2] = 'D';
    _exit(munmap(p, len) == 0 ? 0 : 4);
  }
  CHECK_EQ(wait_ok(pid), 0);
  CHECK_EQ(p[2], 'D');
  CHECK_EQ(p[len - 1], 'Q');

  /* The parent unmaps first: the child keeps the pages. */
  int pp[2];
  CHECK_EQ(pipe(pp), 0);
  pid = fork();
  if (pid == 0) {
    char c;
    close(pp[1]);
    if (read(pp[0], &c, 1) != 1)
      _exit(5);
    _exit(p[2] == 'D' && p[len - 1] == 'Q' && p[12 * MiB] == 12 ? 0 : 6);
  }
  close(pp[0]);
  CHECK_EQ(munmap(p, len), 0);
  CHECK_EQ(write(pp[1], "x", 1), 1);
  close(pp[1]);
  CHECK_EQ(wait_ok(pid), 0);
}

static void shared_counter(void)
{
  long *c = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(c != MAP_FAILED);
  if (c == MAP_FAILED)
    return;
  enum { KIDS = 4, N = 2000 };
  pid_t pids[KIDS];
  for (int k = 0; k < KIDS; k++) {
    pids[k] = fork();
    if (pids[k] == 0) {
      for (int i = 0; i < N; i++)
        __atomic_fetch_add(c, 1, __ATOMIC_SEQ_CST);
      _exit(0);
    }
  }
  for (int k = 0; k < KIDS; k++)
    CHECK_EQ(wait_ok(pids[k]), 0);
  CHECK_EQ(*c, KIDS * N);
  munmap(c, PG);
}

static void shared_mprotect(void)
{
  char *p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(p != MAP_FAILED);
  if (p == MAP_FAILED)
    return;
  p[0] = 'a';
  CHECK_EQ(mprotect(p, 4 * PG, PROT_READ), 0);
  CHECK_EQ(touch_sig(p, true), SIGSEGV);
  pid_t pid = fork();
  if (pid == 0) {
    /* Writable again in the child: still the same pages (no copy). */
    if (mprotect(p, 2 * PG, PROT_READ | PROT_WRITE))
      _exit(2);
    p[0] = 'b';
    p[PG] = 'c';
    _exit(0);
  }
  CHECK_EQ(wait_ok(pid), 0);
  CHECK_EQ(p[0], 'b');
  CHECK_EQ(p[PG], 'c');
  /* PROT_NONE and back keeps the contents; the child still shares them. */
  CHECK_EQ(mprotect(p, 4 * PG, PROT_NONE), 0);
  CHECK_EQ(touch_sig(p, false), SIGSEGV);
  CHECK_EQ(mprotect(p, 4 * PG, PROT_READ | PROT_WRITE), 0);
  CHECK_EQ(p[0], 'b');
  pid = fork();
  if (pid == 0) {
    p[3 * PG] = 'd';
    _exit(0);
  }
  CHECK_EQ(wait_ok(pid), 0);
  CHECK_EQ(p[3 * PG], 'd');
  /* /proc/self/maps shows the area shared ("rw-s"). */
  char line[256], want[32];
  snprintf(want, sizeof(want), "%lx-", (unsigned long)p);
  FILE *f = fopen("/proc/self/maps", "r");
  bool found = false;
  while (f && fgets(line, sizeof(line), f))
    if (!strncmp(line, want, strlen(want)))
      found = strstr(line, " rw-s ") != NULL;
  if (f)
    fclose(f);
  CHECK(found);
  munmap(p, 4 * PG);
}

static void shared_mremap(void)
{
  /* Grow in place (room reserved after it), then move: the pages follow. */
  char *r = mmap(NULL, 16 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(r != MAP_FAILED);
  if (r == MAP_FAILED)
    return;
  char *p = mmap(r, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  CHECK(p == r);
  CHECK_EQ(munmap(r + 4 * PG, 12 * PG), 0);
  p[0] = 'x';
  p[3 * PG] = 'y';
  pid_t pid = fork();
  if (pid == 0) { /* the child sees writes made through the moved mapping */
    for (int i = 0; i < 20000 && p[PG] != 'm'; i++)
      usleep(1000);
    _exit(p[PG] == 'm' ? 0 : 2);
  }
  char *q = mremap(p, 4 * PG, 2 * PG, 0); /* shrink */
  CHECK(q == p);
  q = mremap(p, 2 * PG, 4 * PG, 0); /* grow in place: the same object pages */
  CHECK(q == p);
  if (q == p)
    CHECK_EQ(p[3 * PG], 'y');
  char *m = mremap(p, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, r + 8 * PG);
  CHECK(m == r + 8 * PG);
  if (m != MAP_FAILED) {
    CHECK_EQ(m[0], 'x');
    CHECK_EQ(m[3 * PG], 'y');
    m[PG] = 'm';
    CHECK_EQ(touch_sig(p, false), SIGSEGV); /* the old place is gone */
  }
  CHECK_EQ(wait_ok(pid), 0);
  if (m == MAP_FAILED)
    return;
  /* Growing past the object's size: the new pages are SIGBUS (Linux). */
  char *g = mremap(m, 4 * PG, 8 * PG, MREMAP_MAYMOVE);
  CHECK(g != MAP_FAILED);
  if (g == MAP_FAILED)
    return;
  CHECK_EQ(g[3 * PG], 'y');
  CHECK_EQ(touch_sig(g + 5 * PG, false), SIGBUS);
  munmap(g, 8 * PG);
}

/* ---- mremap(MREMAP_DONTUNMAP) ---- */

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

/* The pages move to the new place; the old range stays mapped, empty: its
 * next touch reads zeros (no SIGSEGV), and a write there is its own page.
 * Same size and MREMAP_MAYMOVE only. */
static void *remap(void *p, size_t old_len, size_t new_len, int flags, void *to)
{
  /* The raw call: glibc's wrapper passes new_address only with
   * MREMAP_FIXED, and Linux 6.18 refuses the garbage it then gets with
   * MREMAP_DONTUNMAP (EINVAL). */
  return (void *)syscall(SYS_mremap, p, old_len, new_len, flags, to);
}

static void dontunmap(void)
{
  char *p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(p != MAP_FAILED);
  if (p == MAP_FAILED)
    return;
  for (int i = 0; i < 4; i++)
    p[i * PG] = (char)('a' + i);
  errno = 0;
  CHECK(remap(p, 4 * PG, 4 * PG, MREMAP_DONTUNMAP, NULL) == MAP_FAILED && errno == EINVAL);
  errno = 0;
  CHECK(remap(p, 4 * PG, 8 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL) == MAP_FAILED &&
        errno == EINVAL);
  char *q = remap(p, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
  CHECK(q != MAP_FAILED && q != p);
  if (q == MAP_FAILED)
    return;
  for (int i = 0; i < 4; i++)
    CHECK_EQ(q[i * PG], 'a' + i);
  CHECK_EQ(touch_sig(p + PG, true), 0); /* still mapped */
  for (int i = 0; i < 4; i++)
    CHECK_EQ(p[i * PG], 0);
  p[0] = 'z';
  CHECK_EQ(q[0], 'a');
  /* With MREMAP_FIXED: to a given place (whatever was there goes). */
  char *r = mmap(NULL, 4 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(r != MAP_FAILED);
  if (r != MAP_FAILED) {
    char *f = remap(q, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, r);
    CHECK(f == r);
    if (f == r) {
      CHECK_EQ(r[3 * PG], 'd');
      r[2 * PG] = 'w'; /* the moved area keeps its protection (read-write) */
      CHECK_EQ(q[3 * PG], 0);
    }
    munmap(r, 4 * PG);
  }
  /* Only private anonymous memory here (Linux before 5.13; later ones
   * also take shared and file mappings): guest only. */
  if (in_guest) {
    char *s = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(s != MAP_FAILED);
    errno = 0;
    CHECK(remap(s, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL) == MAP_FAILED &&
          errno == EINVAL);
    munmap(s, 4 * PG);
  }
  munmap(p, 4 * PG);
  munmap(q, 4 * PG);
}

/* ---- memfd mappings follow ftruncate ---- */

static void trunc_follow(void)
{
  int fd = (int)syscall(SYS_memfd_create, "gmm", 0);
  CHECK(fd >= 0);
  if (fd < 0)
    return;
  CHECK_EQ(ftruncate(fd, PG), 0);
  char *p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK(p != MAP_FAILED);
  if (p == MAP_FAILED)
    return;
  p[0] = 'a';
  CHECK_EQ(touch_sig(p + 2 * PG, false), SIGBUS);
  /* Grow: the new pages are reachable, zero, and the file. */
  CHECK_EQ(ftruncate(fd, 3 * PG), 0);
  CHECK_EQ(touch_sig(p + 2 * PG, false), 0);
  CHECK_EQ(p[2 * PG], 0);
  CHECK_EQ(touch_sig(p + 2 * PG, true), 0); /* a child's store is the file's */
  CHECK_EQ(p[2 * PG], 1);
  p[2 * PG] = 'c';
  char c = 0;
  CHECK_EQ(pread(fd, &c, 1, 2 * PG), 1);
  CHECK_EQ(c, 'c');
  CHECK_EQ(pwrite(fd, "b", 1, PG + 5), 1);
  CHECK_EQ(p[PG + 5], 'b');
  CHECK_EQ(touch_sig(p + 3 * PG, false), SIGBUS);
  /* A child mapped it before the shrink; the shrink reaches it too. */
  int pp[2], qq[2];
  CHECK_EQ(pipe(pp), 0);
  CHECK_EQ(pipe(qq), 0);
  pid_t pid = fork();
  if (pid == 0) {
    char x;
    if (p[2 * PG] != 'c')
      _exit(2);
    if (write(qq[1], "r", 1) != 1 || read(pp[0], &x, 1) != 1)
      _exit(3);
    _exit(touch_sig(p + 2 * PG, false) == SIGBUS && p[0] == 'a' ? 0 : 4);
  }
  char x = 0;
  CHECK_EQ(read(qq[0], &x, 1), 1);
  /* Shrink to a page and a half: the second page stays, its tail zero. */
  CHECK_EQ(ftruncate(fd, PG + PG / 2), 0);
  CHECK_EQ(write(pp[1], "g", 1), 1);
  CHECK_EQ(wait_ok(pid), 0);
  CHECK_EQ(touch_sig(p + 2 * PG, false), SIGBUS);
  CHECK_EQ(p[PG + 5], 'b');
  CHECK_EQ(p[PG + PG / 2], 0);
  /* A later grow gives zeros where the dropped page was. */
  CHECK_EQ(ftruncate(fd, 4 * PG), 0);
  CHECK_EQ(p[2 * PG], 0);
  p[3 * PG] = 'd';
  CHECK_EQ(pread(fd, &c, 1, 3 * PG), 1);
  CHECK_EQ(c, 'd');
  close(fd); /* the mapping keeps the file */
  CHECK_EQ(p[3 * PG], 'd');
  CHECK_EQ(munmap(p, 4 * PG), 0);
  close(pp[0]), close(pp[1]), close(qq[0]), close(qq[1]);
}

/* ---- guest only: accounting and fragmentation ---- */

static long meminfo(const char *key)
{
  FILE *f = fopen("/proc/meminfo", "r");
  char line[128];
  long v = -1;
  size_t kl = strlen(key);
  while (f && fgets(line, sizeof(line), f))
    if (!strncmp(line, key, kl) && line[kl] == ':')
      v = atol(line + kl + 1);
  if (f)
    fclose(f);
  return v;
}

static void shared_freed(void)
{
  long before = meminfo("MemFree");
  size_t len = 32 * MiB;
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(p != MAP_FAILED);
  if (p == MAP_FAILED)
    return;
  memset(p, 1, len);
  long used = before - meminfo("MemFree");
  CHECK(used >= 32 * 1024 && used < 40 * 1024); /* kB: the pages once, not per mapping */
  pid_t pid = fork();
  if (pid == 0) {
    memset(p, 2, len);
    _exit(0);
  }
  CHECK_EQ(wait_ok(pid), 0);
  CHECK_EQ(p[len / 2], 2);
  CHECK_EQ(munmap(p, len), 0);
  long back = meminfo("MemFree");
  CHECK(before - back < 2 * 1024);
  printf("shared anon 32 MiB: %ld kB used, %ld kB not back after munmap\n", used, before - back);
}

/* Leaves the free memory as scattered single pages: all but 8 MiB of it
 * mapped in 1 MiB pieces (4 KiB pages), touched, then unmapped in an
 * order unrelated to the addresses. Returns the MiB it mapped. */
static size_t fragment(void)
{
  long free_kb = meminfo("MemFree");
  size_t n = free_kb > 16 * 1024 ? (size_t)(free_kb / 1024) - 8 : 0;
  char **v = calloc(n, sizeof(*v));
  size_t got = 0;
  for (; v && got < n; got++) {
    v[got] = mmap(NULL, MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (v[got] == MAP_FAILED)
      break;
    v[got][0] = 1;
  }
  for (size_t i = 0; i < got; i += 2)
    munmap(v[i], MiB);
  for (size_t i = 1; i < got; i += 2)
    for (size_t k = 0; k < 4; k++) /* quarters, mixed */
      munmap(v[i] + ((k + i) % 4) * (MiB / 4), MiB / 4);
  free(v);
  return got;
}

/* Pipes each holding 64 KiB (a 16-page kernel buffer): how many of
 * want could be made (all closed again). */
static int pipes_with_data(int want)
{
  static char buf[65536];
  int (*fds)[2] = calloc((size_t)want, sizeof(*fds));
  int made = 0;
  for (; fds && made < want; made++) {
    if (pipe2(fds[made], O_NONBLOCK)) {
      printf("pipe %d: pipe2: %s\n", made, strerror(errno));
      break;
    }
    ssize_t w = write(fds[made][1], buf, sizeof(buf));
    if (w < (ssize_t)sizeof(buf) / 2) {
      printf("pipe %d: write: %zd (%s)\n", made, w, w < 0 ? strerror(errno) : "short");
      close(fds[made][0]);
      close(fds[made][1]);
      break;
    }
  }
  for (int i = 0; i < made; i++)
    close(fds[i][0]), close(fds[i][1]);
  free(fds);
  return made;
}

/* Fork + exec of a shell that exits: the kernel's big buffers (execve's
 * arguments, the new process's tables) after the fragmentation. */
static int fork_execs(int n)
{
  int ok = 0;
  for (int i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c", "exit 7", (char *)NULL);
      _exit(1);
    }
    ok += wait_ok(pid) == 7;
  }
  return ok;
}

static double now_s(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void frag(bool again)
{
  double t0 = now_s();
  long free0 = meminfo("MemFree");
  size_t got = fragment();
  CHECK(got > 64);
  /* 256 pipes x 64 KiB = 16 MiB of 16-page runs, more than the 8 MiB of
   * never-used memory left: the rest must come from merged freed pages. */
  double t1 = now_s();
  int made = pipes_with_data(256);
  CHECK_EQ(made, 256);
  double t2 = now_s();
  CHECK_EQ(fork_execs(5), 5);
  double t3 = now_s();
  /* And again: the scattered pages of a second round merge too. */
  if (again) {
    got = fragment();
    CHECK(got > 32);
    CHECK_EQ(fork_execs(5), 5);
  }
  double t4 = now_s();
  char *p = mmap(NULL, 64 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(p != MAP_FAILED);
  if (p != MAP_FAILED) {
    for (size_t off = 0; off < 64 * MiB; off += PG)
      p[off] = 1;
    munmap(p, 64 * MiB);
  }
  printf("frag: MemFree %ld kB at start, %zu MiB fragmented, %d pipes, MemFree %ld kB at end "
         "(s: fragment %.1f, pipes %.1f, execs %.1f, again %.1f, 64 MiB %.1f)\n",
         free0, got, made, meminfo("MemFree"), t1 - t0, t2 - t1, t3 - t2, t4 - t3, now_s() - t4);
}

/* Measurement (not a check): "forkbench MiB": fork + exit + wait of a
 * process with MiB of touched shared anonymous memory, 20 times. */
static int forkbench(long mib)
{
  size_t len = (size_t)mib * MiB;
  char *p = len ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
                : NULL;
  if (p == MAP_FAILED)
    return 1;
  for (size_t off = 0; off < len; off += PG)
    p[off] = 1;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < 20; i++) {
    pid_t pid = fork();
    if (pid == 0)
      _exit(0);
    wait_ok(pid);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("forkbench %ld MiB: %ld us per fork\n", mib,
         ((b.tv_sec - a.tv_sec) * 1000000000l + b.tv_nsec - a.tv_nsec) / 20000);
  return 0;
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *what = argc > 1 ? argv[1] : "all";
  in_guest = argc > 2 && !strcmp(argv[2], "guest");
  if (!strcmp(what, "forkbench"))
    return forkbench(argc > 2 ? atol(argv[2]) : 32);
  bool all = !strcmp(what, "all");
  if (all || !strcmp(what, "shared")) {
    shared_fork();
    shared_counter();
    shared_mprotect();
    shared_mremap();
  }
  if (all || !strcmp(what, "trunc"))
    trunc_follow();
  if (all || !strcmp(what, "dontunmap"))
    dontunmap();
  if (in_guest && (all || !strcmp(what, "meminfo")))
    shared_freed();
  if (in_guest && !strncmp(what, "frag", 4)) /* frag-once: one round (ring 0 is slow) */
    frag(!strcmp(what, "frag"));
  return t_done("t_gmm");
}
