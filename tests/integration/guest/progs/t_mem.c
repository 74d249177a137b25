/* Memory: anonymous and private file mmap, munmap, mprotect, MAP_FIXED,
 * brk, madvise, big (fault-populated) mappings, and the errors. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "t.h"

static int fd_hello;

/* Probes readability/writability through the kernel: read() into p copies
 * file bytes (needs write access), write() from p needs read access. */
static int can_write(void *p)
{
  return RS4(SYS_pread64, fd_hello, p, 1, 0) == 1;
}
static int can_read(void *p)
{
  /* A real file: /dev/null (on Linux too) never looks at the buffer. */
  int n = open("/tmp/probe", O_WRONLY | O_CREAT, 0600);
  long r = RS3(SYS_write, n, p, 1);
  close(n);
  return r == 1;
}

static void test_oom(void);

int main(int argc, char **argv)
{
  if (argc > 1 && !strcmp(argv[1], "oom")) {
    test_oom();
    return t_done("t_mem oom");
  }
  fd_hello = open("/data/hello.txt", O_RDONLY);
  CHECK(fd_hello >= 0);

  /* anonymous, zero-filled, writable */
  unsigned char *p = mmap(NULL, 64 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(p != MAP_FAILED);
  int zero = 1;
  for (int i = 0; i < (64 << 10); i += 512)
    zero &= p[i] == 0;
  CHECK(zero);
  memset(p, 0xab, 64 << 10);
  CHECK_EQ(p[(64 << 10) - 1], 0xab);

  /* mprotect read-only: the kernel refuses to write there */
  CHECK_EQ(mprotect(p, 4096, PROT_READ), 0);
  CHECK(!can_write(p));
  CHECK(can_read(p));
  CHECK(can_write(p + 4096));
  CHECK_EQ(mprotect(p, 4096, PROT_NONE), 0);
  CHECK(!can_read(p));
  CHECK_EQ(mprotect(p, 4096, PROT_READ | PROT_WRITE), 0);
  CHECK_EQ(p[0], 0xab); /* contents survive PROT_NONE */
  CHECK_EQ(RS3(SYS_mprotect, p + 1, 4096, PROT_READ), -EINVAL);
  CHECK_EQ(RS3(SYS_mprotect, p, 4096, 0x100), -EINVAL);

  /* munmap a middle page: a hole */
  CHECK_EQ(munmap(p + 8192, 4096), 0);
  CHECK(!can_read(p + 8192));
  CHECK(can_read(p + 12288));
  CHECK_EQ(RS3(SYS_mprotect, p, 16384, PROT_READ), -ENOMEM); /* range has a hole */
  CHECK_EQ(RS2(SYS_munmap, p + 1, 4096), -EINVAL);
  CHECK_EQ(RS2(SYS_munmap, p, 0), -EINVAL);
  /* MAP_FIXED over the hole and its neighbour: fresh zero pages */
  unsigned char *q = mmap(p + 8192, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  CHECK(q == p + 8192);
  CHECK(q[0] == 0 && q[4096] == 0);
  CHECK_EQ(p[16384], 0xab);
  /* MAP_FIXED_NOREPLACE refuses */
  CHECK_EQ(RS6(SYS_mmap, p, 4096, 3, MAP_PRIVATE | MAP_ANONYMOUS | 0x100000, -1, 0), -EEXIST);
  CHECK_EQ(munmap(p, 64 << 10), 0);
  CHECK(!can_read(p + 16384));

  /* errors */
  CHECK_EQ(RS6(SYS_mmap, 0, 0, 3, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), -EINVAL);
  CHECK_EQ(RS6(SYS_mmap, 0, 4096, 3, MAP_ANONYMOUS, -1, 0), -EINVAL); /* no type */
  CHECK_EQ(RS6(SYS_mmap, 0, 4096, 3, MAP_PRIVATE, 999, 0), -EBADF);
  CHECK_EQ(RS6(SYS_mmap, 0, 4096, 3, MAP_PRIVATE | MAP_ANONYMOUS, -1, 1), -EINVAL);
  CHECK_EQ(RS6(SYS_mmap, 0, -4096L, 3, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), -ENOMEM);
  CHECK_EQ(RS6(SYS_mmap, 0x1001, 4096, 3, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), -EINVAL);
  CHECK_EQ(RS6(SYS_mmap, 0x7ffffffff000, 8192, 3, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), -ENOMEM);
  CHECK_EQ(RS6(SYS_mmap, 0, 1ull << 46, 3, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), -ENOMEM);

  /* a hint that is free is honoured */
  void *hint = mmap((void *)0x200000000ull, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(hint == (void *)0x200000000ull);
  munmap(hint, 4096);

  /* big mapping: populated on demand, 64 MiB touched sparsely */
  size_t big = 64ull << 20;
  unsigned char *b = mmap(NULL, big + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(b != MAP_FAILED);
  CHECK_EQ(munmap(b + big, 4096), 0); /* a hole right after */
  for (size_t off = 0; off < big; off += 1 << 20)
    b[off] = (unsigned char)(off >> 20);
  int okb = 1;
  for (size_t off = 0; off < big; off += 1 << 20)
    okb &= b[off] == (unsigned char)(off >> 20);
  CHECK(okb);
  CHECK_EQ(RS3(SYS_read, fd_hello, b + big - 6, 12), 6); /* kernel access populates too */
  CHECK_EQ(munmap(b, big), 0);

  /* private file mapping: contents, zero tail, private writes */
  int f = open("/data/hello.txt", O_RDONLY);
  char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, f, 0);
  CHECK(m != MAP_FAILED);
  CHECK(!memcmp(m, "hello quark\n", 12));
  CHECK(m[12] == 0 && m[4095] == 0);
  CHECK(!can_read(m + 4096)); /* wholly past EOF: SIGBUS on access, EFAULT for the kernel */
  m[0] = 'J';
  char back[5];
  CHECK_EQ(pread(f, back, 5, 0), 5);
  CHECK(!memcmp(back, "hello", 5)); /* the file is unchanged */
  munmap(m, 8192);
  int bigf = open("/data/big.bin", O_RDONLY);
  unsigned char *bm = mmap(NULL, 65536, PROT_READ, MAP_PRIVATE, bigf, 4096 * 3);
  CHECK(bm != MAP_FAILED);
  CHECK_EQ(bm[0], (unsigned char)((4096 * 3) * 131 >> 8));
  CHECK_EQ(bm[5000], (unsigned char)((4096 * 3 + 5000) * 131 >> 8));
  munmap(bm, 65536);
  CHECK_EQ(RS6(SYS_mmap, 0, 4096, 3, MAP_SHARED, f, 0), -EACCES); /* writable shared on O_RDONLY */
  int wo = open("/tmp/wo", O_WRONLY | O_CREAT, 0600);
  CHECK_EQ(RS6(SYS_mmap, 0, 4096, PROT_READ, MAP_PRIVATE, wo, 0), -EACCES);
  close(wo);
  close(f);
  close(bigf);

  /* brk */
  char *b0 = (char *)RS1(SYS_brk, 0);
  CHECK(b0 != NULL);
  char *b1 = (char *)RS1(SYS_brk, b0 + 100000);
  CHECK(b1 == b0 + 100000);
  b0[99999] = 7;
  b0[0] = 1;
  CHECK_EQ(RS1(SYS_brk, b0 + 10), (long)(b0 + 10)); /* shrink */
  CHECK(!can_read(b0 + 50000));
  CHECK_EQ(RS1(SYS_brk, 1), (long)(b0 + 10)); /* below the start: unchanged */
  CHECK_EQ(RS1(SYS_brk, 0xffffffffffff0000ull), (long)(b0 + 10));
  CHECK_EQ(RS1(SYS_brk, b0 + 8192), (long)(b0 + 8192));
  CHECK_EQ(b0[5000], 0); /* regrown memory is zero */

  /* madvise(DONTNEED) zeroes private anonymous memory */
  char *d = mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(d, 5, 16384);
  CHECK_EQ(madvise(d, 16384, MADV_DONTNEED), 0);
  CHECK(d[0] == 0 && d[16383] == 0);
  CHECK_EQ(madvise(d, 4096, MADV_WILLNEED), 0);
  CHECK_EQ(RS3(SYS_madvise, d + 1, 4096, MADV_DONTNEED), -EINVAL);
  CHECK_EQ(RS3(SYS_madvise, d, 4096, 12345), -EINVAL);

  /* Big anonymous mappings use 2 MiB pages in the guest: partial munmap,
   * mprotect, PROT_NONE, madvise, I/O across granules and mremap must
   * behave exactly as with 4 KiB pages. */
  size_t H = 2 << 20;
  unsigned char *h = mmap(NULL, 3 * H, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(h != MAP_FAILED);
  for (size_t i = 0; i < 3 * H; i += 4096)
    h[i] = (unsigned char)(i >> 12) | 1;
#define PAT(i) ((unsigned char)((i) >> 12) | 1)
  CHECK_EQ(munmap(h + H + 8192, 4096), 0);
  CHECK(!can_read(h + H + 8192));
  CHECK(h[H + 4096] == PAT(H + 4096) && h[H + 12288] == PAT(H + 12288));
  CHECK_EQ(mprotect(h + 2 * H + 4096, 4096, PROT_READ), 0);
  CHECK(!can_write(h + 2 * H + 4096));
  CHECK(can_write(h + 2 * H + 8192));
  CHECK_EQ(h[2 * H + 4096], PAT(2 * H + 4096));
  h[2 * H + 8192] = PAT(2 * H + 8192); /* can_write put a file byte there */
  CHECK_EQ(mprotect(h, H, PROT_NONE), 0);
  CHECK(!can_read(h) && !can_read(h + H - 4096));
  CHECK_EQ(mprotect(h, H, PROT_READ | PROT_WRITE), 0);
  CHECK(h[4096 * 5] == PAT(4096 * 5) && h[H - 4096] == PAT(H - 4096));
  CHECK_EQ(madvise(h + 4096 * 3, 8192, MADV_DONTNEED), 0);
  CHECK(h[4096 * 3] == 0 && h[4096 * 4] == 0 && h[4096 * 5] == PAT(4096 * 5));
  int bf = open("/data/big.bin", O_RDONLY);
  CHECK_EQ(pread(bf, h + H - 100, 8192, 4096), 8192); /* across two granules, one split */
  int same = 1;
  for (int i = 0; i < 8192; i += 97)
    same &= h[H - 100 + i] == (unsigned char)((4096 + i) * 131 >> 8);
  CHECK(same);
  close(bf);
  CHECK_EQ(mremap(h + 2 * H, H, 2 * H, MREMAP_MAYMOVE), MAP_FAILED); /* spans 3 mappings */
  CHECK_EQ(errno, EFAULT);
  CHECK_EQ(mprotect(h + 2 * H + 4096, 4096, PROT_READ | PROT_WRITE), 0); /* one mapping again */
  unsigned char *h2 = mremap(h + 2 * H, H, 2 * H, MREMAP_MAYMOVE);
  CHECK(h2 != MAP_FAILED);
  CHECK(h2[0] == PAT(2 * H) && h2[H - 4096] == PAT(3 * H - 4096) && h2[H] == 0);
  CHECK_EQ(munmap(h2, 2 * H), 0);
  CHECK_EQ(munmap(h, 2 * H), 0);

  /* A 2 MiB granule filled with 4 KiB entries (opened in two halves),
   * then unmapped whole: the kernel drops the table at once. */
  unsigned char *g = mmap(NULL, 2 * H, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(g != MAP_FAILED);
  CHECK_EQ(mprotect(g, H / 2, PROT_READ | PROT_WRITE), 0);
  CHECK_EQ(mprotect(g + H / 2, H / 2, PROT_READ | PROT_WRITE), 0);
  for (size_t i = 0; i < H; i += 4096)
    g[i] = 7;
  CHECK_EQ(munmap(g, H), 0);
  CHECK(!can_read(g) && !can_read(g + H - 4096));
  unsigned char *g2 = mmap(g, H, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  CHECK(g2 == g);
  CHECK(g[0] == 0 && g[H - 4096] == 0);
  CHECK_EQ(munmap(g, 2 * H), 0);

  /* mremap: grow in place, move (contents kept), shrink, errors */
  char *r0 = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(r0, 'r', 8192);
  char *blocker = mmap(r0 + 8192, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  CHECK(blocker == r0 + 8192 || errno == EEXIST); /* either way something is there */
  CHECK_EQ(RS4(SYS_mremap, r0, 8192, 16384, 0), -ENOMEM); /* blocked, may not move */
  char *r1 = mremap(r0, 8192, 1 << 20, MREMAP_MAYMOVE);
  CHECK(r1 != MAP_FAILED && r1 != r0);
  CHECK(r1[0] == 'r' && r1[8191] == 'r' && r1[8192] == 0 && r1[(1 << 20) - 1] == 0);
  CHECK(!can_read(r0));
  r1[100000] = 'x';
  char *r2 = mremap(r1, 1 << 20, 4096, 0);
  CHECK(r2 == r1);
  CHECK(!can_read(r1 + 8192));
  CHECK_EQ(RS5(SYS_mremap, r1, 4096, 8192, MREMAP_FIXED, r1 + 65536), -EINVAL);
  CHECK_EQ(RS4(SYS_mremap, r1 + 1, 4096, 8192, 0), -EINVAL);
  CHECK_EQ(RS4(SYS_mremap, 0x300000000000ull, 4096, 8192, MREMAP_MAYMOVE), -EFAULT);
  char *r3 = mremap(r1, 4096, 8192, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)0x310000000000ull);
  CHECK(r3 == (char *)0x310000000000ull);
  CHECK(r3[0] == 'r');
  munmap(r3, 8192);
  if (blocker != MAP_FAILED)
    munmap(blocker, 4096);
  /* realloc of a large block goes through mremap in glibc */
  char *big2 = malloc(1 << 20);
  memset(big2, 9, 1 << 20);
  big2 = realloc(big2, 8 << 20);
  CHECK(big2 && big2[(1 << 20) - 1] == 9);
  free(big2);

  /* libc malloc of many sizes */
  void *ptrs[200];
  for (int i = 0; i < 200; i++) {
    ptrs[i] = malloc((size_t)(i * 997) % 300000 + 1);
    CHECK(ptrs[i] != NULL);
    memset(ptrs[i], i, (size_t)(i * 997) % 300000 + 1);
  }
  for (int i = 0; i < 200; i++)
    free(ptrs[i]);
  char name[16];
  CHECK_EQ(prctl(PR_SET_NAME, "a-very-long-thread-name"), 0);
  CHECK_EQ(prctl(PR_GET_NAME, name), 0);
  CHECK(!strcmp(name, "a-very-long-thr"));
  return t_done("t_mem");
}

/* Exhausts guest memory with populated mappings: ENOMEM, not a crash;
 * after freeing it everything works again. Run in a small VM. */
static void test_oom(void)
{
  fd_hello = open("/data/hello.txt", O_RDONLY);
  /* Sparse touches of a big lazy area in a small VM: 2 MiB pages only
   * while memory is plentiful, then 4 KiB pages, so this fits. */
  size_t sl = 48 << 20;
  unsigned char *sp = mmap(NULL, sl, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(sp != MAP_FAILED);
  for (size_t o = 0; sp != MAP_FAILED && o < sl; o += 1 << 20)
    sp[o] = (unsigned char)(o >> 20);
  int sparse_ok = sp != MAP_FAILED;
  for (size_t o = 0; sp != MAP_FAILED && o < sl; o += 1 << 20)
    sparse_ok &= sp[o] == (unsigned char)(o >> 20);
  CHECK(sparse_ok);
  CHECK_EQ(munmap(sp, sl), 0);
  static char *chunks[4096];
  int nchunks = 0;
  for (; nchunks < 4096; nchunks++) {
    char *c = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (c == MAP_FAILED) {
      CHECK_EQ(errno, ENOMEM);
      break;
    }
    c[0] = 1;
    chunks[nchunks] = c;
  }
  CHECK(nchunks > 2 && nchunks < 4096);
  int fdx = open("/data/hello.txt", O_RDONLY); /* may fail: kernel memory is short too */
  if (fdx >= 0)
    close(fdx);
  for (int i = 0; i < nchunks; i++)
    CHECK_EQ(munmap(chunks[i], 4 << 20), 0);
  /* Memory freed as 2 MiB pages serves small mappings too: as many
   * 64 KiB pieces as there were 4 MiB chunks x 64, all zero. */
  static char *small[8192];
  int nsmall = 0, dirty = 0;
  for (; nsmall < 8192; nsmall++) {
    char *c = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (c == MAP_FAILED)
      break;
    for (int i = 0; i < 65536; i += 4096)
      dirty |= c[i] | c[i + 4095];
    memset(c, 0x5a, 65536);
    small[nsmall] = c;
  }
  CHECK(nsmall >= nchunks * 64 * 9 / 10);
  CHECK_EQ(dirty, 0);
  for (int i = 0; i < nsmall; i++)
    CHECK_EQ(munmap(small[i], 65536), 0);
  char *again = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(again != MAP_FAILED);
  memset(again, 1, 4 << 20);
  char hb[12];
  CHECK_EQ(pread(fd_hello, hb, 12, 0), 12);
  printf("t_mem: %d x 4 MiB populated before ENOMEM, then %d x 64 KiB\n", nchunks, nsmall);
}
