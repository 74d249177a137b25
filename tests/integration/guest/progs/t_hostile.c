/* Hostile program: many random syscalls with random and nasty arguments
 * (bad pointers, kernel addresses, huge lengths, negative descriptors,
 * address 0, paths that try to leave the rootfs). Whatever happens, the
 * guest kernel must answer with errors and the program must reach its end.
 *
 * Usage: t_hostile SEED ITERATIONS   -> prints a summary on the saved stdout,
 *                                       exits 0
 *        t_hostile segv              -> stores to address 0 (killed: 139)
 *        t_hostile sigbus            -> reads a mapped page past EOF (135)
 *
 * What is kept away from the random calls, because it would end or hang
 * THIS program on Linux too (not because the kernel could not take it):
 * exit/exit_group, blocking calls (sleeps, waits, pause, futex, pipes,
 * accept/recv), signals to itself (uretprobe too), close_range, brk,
 * arch_prctl/setrlimit/seccomp/prctl
 * (they would break the program's own heap, TLS or limits), fork/exec.
 * Memory calls (mmap/munmap/mprotect/...) get addresses inside a private
 * playground area so that they cannot unmap the program itself; everything
 * else gets fully random arguments. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "t.h"

#define PLAY ((uint64_t)0x100000000000ull) /* playground base */
#define PLAY_LEN (64ull << 20)

static uint64_t rng_state;
static uint64_t rnd(void)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static const int banned[] = {
  7, 12, 15, 22, 23, 34, 35, 37, 38, 43, 45, 47, 56, 57, 58, 59, 60, 61, 62, 101, 128,
  130, 157, 158, 160, 200, 202, 222, 223, 224, 225, 226, 230, 231, 232, 234, 247, 270, 335, 336, 436,
  271, 275, 276, 278, 281, 283, 284, 288, 290, 293, 299, 302, 317, 322, 435, 441,
};

/* Numbers the guest kernel implements: half of the calls aim at them, so
 * that the random arguments reach real handlers, not just ENOSYS. */
static const int implemented[] = {
  0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 13, 14, 16, 17, 18, 19, 20, 21, 24, 25, 28, 32, 33, 39,
  63, 72, 74, 75, 77, 79, 80, 81, 83, 84, 87, 89, 95, 96, 97, 98, 99, 102, 104, 107, 108, 109,
  110, 111, 112, 115, 118, 120, 121, 124, 186, 201, 203, 204, 217, 218, 221, 228, 229, 257, 258,
  262, 263, 267, 269, 273, 274, 292, 318, 332, 439, 100, 135, 140, 141, 143, 145, 146, 147, 309,
};

static const int mm_calls[] = { 9, 10, 11, 25, 26, 27, 28, 149, 150, 151, 152, 216, 329 };

static int in(const int *a, size_t n, int v)
{
  for (size_t i = 0; i < n; i++)
    if (a[i] == v)
      return 1;
  return 0;
}

static char *scratch;     /* 1 MiB with unmapped guard areas around it */
static char *paths[16];   /* hostile path strings */
static const char rodata[64] = "read-only bytes";

static uint64_t pick(void)
{
  switch (rnd() % 24) {
  case 0: return 0;
  case 1: return 1;
  case 2: return (uint64_t)-1;
  case 3: return rnd() % 16;                          /* descriptors, flags */
  case 4: return rnd() % 64;
  case 5: return rnd();                               /* anything */
  case 6: return 0xffff888000000000ull + (rnd() % 0x10000000); /* direct map */
  case 7: return 0xffffffff80000000ull + (rnd() % 0x200000);   /* kernel image */
  case 8: return 0x00007ffffffff000ull - (rnd() % 64);         /* just below the top */
  case 9: return 0x0000800000000000ull + (rnd() % 4096);       /* non-canonical */
  case 10: return (uint64_t)scratch + rnd() % (1 << 20);       /* valid */
  case 11: return (uint64_t)scratch + (1 << 20) - (rnd() % 8); /* runs off the end */
  case 12: return (uint64_t)rodata;                            /* read-only */
  case 13: return (uint64_t)paths[rnd() % 16];
  case 14: return 1ull << (rnd() % 64);                        /* huge lengths */
  case 15: return 0x7ffff000;
  case 16: return (uint64_t)(int64_t)(int32_t)rnd();           /* negative ints */
  case 17: return 0x1000 * (rnd() % 32);                       /* low addresses */
  case 18: return (uint64_t)-100;                              /* AT_FDCWD */
  case 19: return 0x1002;                                      /* arch_prctl-ish */
  case 20: return 0x5401 + rnd() % 0x40;                       /* ioctl numbers */
  case 21: return 4096;
  case 22: return rnd() & 0x7fffffff;
  default: return (uint64_t)scratch;
  }
}

static uint64_t pick_play(void)
{
  switch (rnd() % 6) {
  case 0: return 0;
  case 1: return PLAY + (rnd() % PLAY_LEN);
  case 2: return PLAY + 4096 * (rnd() % (PLAY_LEN / 4096));
  default: return PLAY + 4096 * (rnd() % 64);
  }
}

static uint64_t clamp_play(uint64_t addr, uint64_t len)
{
  uint64_t end = addr + len;
  if (end >= addr && end <= 0x800000000000ull && end > PLAY + PLAY_LEN)
    return PLAY + PLAY_LEN - addr;
  return len;
}

static uint64_t pick_len(void)
{
  switch (rnd() % 6) {
  case 0: return 0;
  case 1: return rnd();
  case 2: return 4096 * (1 + rnd() % 16);
  case 3: return 1 + rnd() % 100000;
  case 4: return 1ull << (rnd() % 48);
  default: return (uint64_t)-4096;
  }
}

int main(int argc, char **argv)
{
  if (argc > 1 && !strcmp(argv[1], "segv")) {
    *(volatile int *)0 = 42;
    return 0; /* not reached */
  }
  if (argc > 1 && !strcmp(argv[1], "sigbus")) {
    /* The second page of a mapping of a 12-byte file: SIGBUS. */
    volatile char *m = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, open("/data/hello.txt", O_RDONLY), 0);
    return m == MAP_FAILED ? 3 : m[4096];
  }
  uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 1;
  long iters = argc > 2 ? atol(argv[2]) : 20000;
  rng_state = seed * 2654435761u + 1;

  /* The summary goes to a saved stdout; random writes to 1 and 2 go to
   * /dev/null. */
  int out = fcntl(1, F_DUPFD, 1000);
  int devnull = open("/dev/null", O_RDWR);
  dup2(devnull, 1);
  dup2(devnull, 2);

  char *g = mmap(NULL, 3 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  munmap(g, 1 << 20);
  munmap(g + (2 << 20), 1 << 20);
  scratch = g + (1 << 20);
  /* Playground: memory calls operate only in here. */
  mmap((void *)PLAY, PLAY_LEN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);

  static const char *const hostile_paths[16] = {
    "/data/hello.txt", "/", "/tmp/h", "/tmp", "../../../../../../sentinel/victim",
    "/../../../../../../../sentinel/victim", "/escape/victim", "/escape", "/proc/self/exe",
    "/dev/null", "", "/tmp/hostile-created", "../sentinel/victim", "/../sentinel/sub",
    "/etc/../../../..", "/tmp/h/../../../../../../tmp",
  };
  char *pp = mmap(NULL, 16 * 256, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  for (int i = 0; i < 16; i++) {
    paths[i] = pp + i * 256;
    strcpy(paths[i], hostile_paths[i]);
  }

  long counts[4] = { 0 }; /* ok, error, enosys, efault */
  for (long it = 0; it < iters; it++) {
    long nr;
    uint64_t k = rnd() % 100;
    if (k < 50)
      nr = implemented[rnd() % (sizeof(implemented) / sizeof(implemented[0]))];
    else if (k < 90)
      nr = (long)(rnd() % 462);
    else if (k < 95)
      nr = 462 + (long)(rnd() % 600);
    else
      nr = (long)rnd();
    if (nr >= 0 && nr < 462 && in(banned, sizeof(banned) / sizeof(banned[0]), (int)nr))
      continue;
    uint64_t a[6];
    for (int i = 0; i < 6; i++)
      a[i] = pick();
    if (nr >= 0 && nr < 462 && in(mm_calls, sizeof(mm_calls) / sizeof(mm_calls[0]), (int)nr)) {
      a[0] = pick_play();
      a[1] = pick_len();
      if (nr == 9) {
        a[3] = (a[3] & ~(uint64_t)0x10) | (rnd() % 2 ? 0x10 : 0); /* MAP_FIXED often */
        if ((a[3] & 0x10) && !a[0])
          a[0] = PLAY;
      }
      if (nr == 25) { /* mremap: new address and size inside too */
        a[4] = pick_play();
        a[2] = clamp_play(a[4] ? a[4] : PLAY, a[2]);
      }
      /* A range that fits the address space must stay in the playground
       * (munmap(0, 2^46) would remove the program itself, on Linux too);
       * ranges that overflow it are kept: the kernel must refuse them. */
      if (nr != 9 || (a[3] & 0x10))
        a[1] = clamp_play(a[0] ? a[0] : PLAY, a[1]);
      if (!a[0] && nr != 9)
        a[1] &= 0xffff; /* below mmap_min_addr: nothing is mapped there */
    }
    /* Descriptors 1000+ hold the summary channel. */
    if ((nr == 3 || nr == 33 || nr == 292) && (int)a[nr == 3 ? 0 : 1] == out)
      continue;
    long r = rs(nr, (long)a[0], (long)a[1], (long)a[2], (long)a[3], (long)a[4], (long)a[5]);
    if (r >= 0)
      counts[0]++;
    else if (r == -ENOSYS)
      counts[2]++;
    else if (r == -EFAULT)
      counts[3]++;
    else
      counts[1]++;
  }
  /* Address 0 and friends through the kernel, explicitly. */
  long e1 = RS3(SYS_write, out, 0, 16);
  long e2 = RS3(SYS_read, devnull, 0, 16);
  long e3 = RS2(SYS_arch_prctl, 0x1002, 0xffff888000000000ull);
  long e4 = RS1(SYS_brk, 0xffffffffffff0000ull);
  char msg[200];
  int n = snprintf(msg, sizeof(msg),
                   "hostile: seed %llu iterations %ld ok %ld errors %ld enosys %ld efault %ld "
                   "null-write %ld null-read %ld fs-kernel %ld\n",
                   (unsigned long long)seed, iters, counts[0], counts[1], counts[2], counts[3], e1,
                   e2, e3);
  (void)e4;
  if (write(out, msg, (size_t)n) != n)
    return 3;
  return (e1 == -EFAULT && e3 == -EPERM) ? 0 : 2;
}
