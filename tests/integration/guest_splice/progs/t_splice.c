/* splice, tee and vmsplice (guestkernel/fs/splice.c) against Linux: the
 * same program runs natively and in the guest and the test script compares
 * the two outputs line by line. Every case prints one line of results
 * ("case: values"); the CHECKs hold Linux's answers (splice(2), tee(2),
 * vmsplice(2)). Prints "t_splice: N checks, 0 failures" on success.
 * Usage: t_splice DIR... [net]: the file cases in each directory (a rootfs
 * directory and /dev/shm in the guest), "net" adds TCP over 127.0.0.1 (a
 * network namespace of the test's) with an 8 MiB relay and its checksum. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../../guest/progs/t.h"

#define NB 2 /* SPLICE_F_NONBLOCK */
#define SPL(in, oi, out, oo, len, fl) RS6(SYS_splice, in, oi, out, oo, len, fl)
#define TEE(in, out, len, fl) RS4(SYS_tee, in, out, len, fl)
#define VMS(fd, iov, n, fl) RS4(SYS_vmsplice, fd, iov, n, fl)

static void pattern(unsigned char *b, size_t n, unsigned seed)
{
  for (size_t i = 0; i < n; i++)
    b[i] = (unsigned char)((i * 131 + seed * 7 + (i >> 9)) & 0xff);
}

static uint64_t fnv(uint64_t h, const unsigned char *b, size_t n)
{
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

static int make_file(const char *path, size_t n, unsigned seed)
{
  static unsigned char buf[200000];
  pattern(buf, n, seed);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0);
  CHECK_EQ(write(fd, buf, n), (long)n);
  CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
  return fd;
}

/* file -> pipe -> file at the file positions, then with offsets. */
static void t_files(const char *dir)
{
  char src[256], dst[256];
  snprintf(src, sizeof src, "%s/t_splice_src.%d", dir, (int)getpid());
  snprintf(dst, sizeof dst, "%s/t_splice_dst.%d", dir, (int)getpid());
  enum { N = 150000 };
  static unsigned char want[N], got[N];
  pattern(want, N, 1);
  int in = make_file(src, N, 1);
  int out = open(dst, O_RDWR | O_CREAT | O_TRUNC, 0600);
  CHECK(out >= 0);
  int p[2];
  CHECK_EQ(pipe(p), 0);
  long moved = 0, calls = 0, r;
  for (;;) {
    r = SPL(in, 0, p[1], 0, 1 << 20, 0);
    CHECK(r >= 0 && r <= 65536);
    if (r <= 0)
      break;
    calls++;
    long left = r;
    while (left > 0) {
      long w = SPL(p[0], 0, out, 0, left, 0);
      CHECK(w > 0);
      if (w <= 0)
        break;
      left -= w;
      moved += w;
    }
  }
  CHECK_EQ(moved, N);
  CHECK_EQ(lseek(in, 0, SEEK_CUR), N);
  CHECK_EQ(lseek(out, 0, SEEK_CUR), N);
  CHECK_EQ(pread(out, got, N, 0), N);
  CHECK(!memcmp(got, want, N));
  printf("files %s: moved %ld, positions %ld %ld, same %d\n", dir[1] == 'd' ? "shm" : "rootfs",
         moved, (long)lseek(in, 0, SEEK_CUR), (long)lseek(out, 0, SEEK_CUR), !memcmp(got, want, N));

  /* Offsets: the positions stay, the offsets advance. */
  CHECK_EQ(lseek(in, 10, SEEK_SET), 10);
  CHECK_EQ(lseek(out, 20, SEEK_SET), 20);
  loff_t oi = 1000, oo = 300;
  long a = SPL(in, &oi, p[1], 0, 5000, 0);
  long b = SPL(p[0], 0, out, &oo, 5000, 0);
  CHECK_EQ(a, 5000);
  CHECK_EQ(b, 5000);
  CHECK_EQ(oi, 6000);
  CHECK_EQ(oo, 5300);
  CHECK_EQ(lseek(in, 0, SEEK_CUR), 10);
  CHECK_EQ(lseek(out, 0, SEEK_CUR), 20);
  CHECK_EQ(pread(out, got, 5000, 300), 5000);
  CHECK(!memcmp(got, want + 1000, 5000));
  printf("offsets: %ld %ld -> %lld %lld, positions %ld %ld\n", a, b, (long long)oi,
         (long long)oo, (long)lseek(in, 0, SEEK_CUR), (long)lseek(out, 0, SEEK_CUR));

  /* Partial: 40 bytes left before the end; the pipe's 40 bytes for 1000. */
  oi = N - 40;
  a = SPL(in, &oi, p[1], 0, 1000, 0);
  b = SPL(p[0], 0, out, 0, 1000, 0);
  oi = N;
  long eof = SPL(in, &oi, p[1], 0, 1000, 0);
  CHECK_EQ(a, 40);
  CHECK_EQ(b, 40);
  CHECK_EQ(eof, 0);
  printf("partial: %ld %ld, at the end %ld\n", a, b, eof);

  /* Errors. */
  loff_t o = 0;
  long e[10];
  e[0] = SPL(p[0], &o, out, 0, 10, 0);    /* an offset on the pipe */
  e[1] = SPL(in, 0, p[1], &o, 10, 0);     /* likewise */
  e[2] = SPL(in, 0, out, 0, 10, 0);       /* no pipe */
  e[3] = SPL(p[0], 0, p[1], 0, 10, 0);    /* one pipe twice */
  e[4] = SPL(in, 0, p[1], 0, 10, 0x10);   /* a bad flag */
  e[5] = SPL(in, 0, p[1], 0, 0, 0);       /* nothing to move */
  o = -5;
  e[6] = SPL(in, &o, p[1], 0, 10, 0);     /* a negative offset */
  int app = open(dst, O_WRONLY | O_APPEND);
  CHECK(app >= 0);
  CHECK_EQ(write(p[1], "xyz", 3), 3);
  e[7] = SPL(p[0], 0, app, 0, 10, 0);     /* O_APPEND output */
  int ro = open(src, O_RDONLY);
  e[8] = SPL(p[0], 0, ro, 0, 10, 0);      /* output not writable */
  e[9] = SPL(in, (void *)8, p[1], 0, 10, 0); /* a bad offset pointer */
  long want_e[10] = {-ESPIPE, -ESPIPE, -EINVAL, -EINVAL, -EINVAL, 0, -EINVAL, -EINVAL, -EBADF, -EFAULT};
  for (int i = 0; i < 10; i++)
    CHECK_EQ(e[i], want_e[i]);
  printf("file errors: %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld\n", e[0], e[1], e[2], e[3], e[4],
         e[5], e[6], e[7], e[8], e[9]);
  char tmp[8];
  CHECK_EQ(read(p[0], tmp, 8), 3);
  close(app);
  close(ro);
  close(in);
  close(out);
  close(p[0]);
  close(p[1]);
  unlink(src);
  unlink(dst);
}

static void t_pipes(void)
{
  int a[2], b[2];
  CHECK_EQ(pipe(a), 0);
  CHECK_EQ(pipe(b), 0);
  unsigned char buf[1000], got[1000];
  pattern(buf, sizeof buf, 3);
  CHECK_EQ(write(a[1], buf, 1000), 1000);
  long r1 = SPL(a[0], 0, b[1], 0, 600, 0);
  CHECK_EQ(r1, 600);
  long r2 = read(b[0], got, 1000);
  CHECK_EQ(r2, 600);
  CHECK(!memcmp(got, buf, 600));
  long r3 = read(a[0], got, 1000);
  CHECK_EQ(r3, 400);
  CHECK(!memcmp(got, buf + 600, 400));
  long ag = SPL(a[0], 0, b[1], 0, 10, NB); /* empty: EAGAIN */
  CHECK_EQ(ag, -EAGAIN);
  printf("pipe to pipe: %ld %ld %ld, empty %ld\n", r1, r2, r3, ag);

  /* tee: both pipes see the bytes; the input keeps them. */
  CHECK_EQ(write(a[1], "hello world", 11), 11);
  long t1 = TEE(a[0], b[1], 100, 0);
  long t2 = TEE(a[0], b[1], 5, 0);
  char x[64] = {0}, y[64] = {0};
  long ra = read(a[0], x, 64), rb = read(b[0], y, 64);
  CHECK_EQ(t1, 11);
  CHECK_EQ(t2, 5);
  CHECK_EQ(ra, 11);
  CHECK_EQ(rb, 16);
  CHECK(!strcmp(x, "hello world") && !strcmp(y, "hello worldhello"));
  int fd = open("/proc/self/exe", O_RDONLY);
  int efd = eventfd(0, 0);
  long e[8];
  e[0] = TEE(a[0], b[1], 10, NB); /* empty */
  e[1] = TEE(a[0], a[1], 10, 0);  /* one pipe */
  e[2] = TEE(fd, b[1], 10, 0);    /* not a pipe */
  e[3] = TEE(a[0], b[1], 10, 0x10); /* a bad flag */
  e[4] = TEE(a[1], b[1], 10, 0);  /* input not readable */
  e[5] = TEE(a[0], b[1], 0, 0);
  e[6] = TEE(999, b[1], 10, 0);
  e[7] = TEE(a[0], efd, 10, 0);
  long want_t[8] = {-EAGAIN, -EINVAL, -EINVAL, -EINVAL, -EBADF, 0, -EBADF, -EINVAL};
  for (int i = 0; i < 8; i++)
    CHECK_EQ(e[i], want_t[i]);
  printf("tee: %ld %ld -> %ld [%s] %ld [%s]; errors %ld %ld %ld %ld %ld %ld %ld %ld\n", t1, t2,
         ra, x, rb, y, e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]);

  /* Files Linux cannot splice: EINVAL. */
  int dfd = open("/", O_RDONLY | O_DIRECTORY);
  CHECK_EQ(write(a[1], "q", 1), 1);
  long v0 = SPL(efd, 0, b[1], 0, 8, NB), v1 = SPL(a[0], 0, efd, 0, 8, NB);
  long v2 = SPL(dfd, 0, b[1], 0, 8, NB);
  CHECK_EQ(v0, -EINVAL);
  CHECK_EQ(v1, -EINVAL);
  CHECK_EQ(v2, -EINVAL);
  CHECK_EQ(SPL(999, 0, b[1], 0, 1, 0), -EBADF);
  CHECK_EQ(SPL(a[1], 0, b[1], 0, 1, 0), -EBADF); /* a write end as input */
  printf("not spliceable: eventfd %ld %ld, directory %ld\n", v0, v1, v2);
  CHECK_EQ(read(a[0], x, 8), 1);

  /* End of input: 0 once no writer is left; EPIPE (SIGPIPE ignored)
   * without a reader. */
  close(a[1]);
  long end = SPL(a[0], 0, b[1], 0, 10, 0), tend = TEE(a[0], b[1], 10, 0);
  close(b[0]);
  int c[2];
  CHECK_EQ(pipe(c), 0);
  CHECK_EQ(write(c[1], "zz", 2), 2);
  long ep = SPL(c[0], 0, b[1], 0, 10, 0);
  CHECK_EQ(end, 0);
  CHECK_EQ(tend, 0);
  CHECK_EQ(ep, -EPIPE);
  printf("end: splice %ld tee %ld, no reader %ld\n", end, tend, ep);
  close(a[0]);
  close(b[1]);
  close(c[0]);
  close(c[1]);
  close(fd);
  close(efd);
  close(dfd);
}

static void t_vmsplice(void)
{
  int p[2];
  CHECK_EQ(pipe(p), 0);
  struct iovec w[2] = {{"abc", 3}, {"defg", 4}};
  long r1 = VMS(p[1], w, 2, 0);
  char x[16] = {0};
  long r2 = read(p[0], x, 16);
  CHECK_EQ(r1, 7);
  CHECK_EQ(r2, 7);
  CHECK(!strcmp(x, "abcdefg"));
  CHECK_EQ(write(p[1], "xyz123", 6), 6);
  char s1[4] = {0}, s2[10] = {0};
  struct iovec rd[2] = {{s1, 3}, {s2, 10}};
  long r3 = VMS(p[0], rd, 2, 0);
  CHECK_EQ(r3, 6);
  CHECK(!strcmp(s1, "xyz") && !strcmp(s2, "123"));
  int fd = open("/proc/self/exe", O_RDONLY);
  long e[7];
  e[0] = VMS(p[0], rd, 2, NB);      /* empty */
  e[1] = VMS(fd, rd, 1, 0);         /* not a pipe */
  e[2] = VMS(fd, rd, 0, 0);         /* nothing: 0 whatever the file */
  e[3] = VMS(p[1], w, 1025, 0);     /* more than IOV_MAX */
  e[4] = VMS(p[1], w, 1, 0x40);     /* a bad flag */
  e[5] = VMS(999, w, 1, 0);
  e[6] = VMS(p[1], (void *)8, 1, 0);
  long want[7] = {-EAGAIN, -EBADF, 0, -EINVAL, -EINVAL, -EBADF, -EFAULT};
  for (int i = 0; i < 7; i++)
    CHECK_EQ(e[i], want[i]);
  printf("vmsplice: %ld [%s] %ld [%s|%s]; errors %ld %ld %ld %ld %ld %ld %ld\n", r1, x, r3, s1,
         s2, e[0], e[1], e[2], e[3], e[4], e[5], e[6]);
  /* A full pipe: SPLICE_F_NONBLOCK answers EAGAIN. */
  static char big[65536];
  int fl = fcntl(p[1], F_GETFL);
  fcntl(p[1], F_SETFL, fl | O_NONBLOCK);
  while (write(p[1], big, sizeof big) > 0)
    ;
  fcntl(p[1], F_SETFL, fl);
  struct iovec one = {"x", 1};
  long full = VMS(p[1], &one, 1, NB);
  int q = open("/proc/self/exe", O_RDONLY);
  long sfull = SPL(q, 0, p[1], 0, 10, NB);
  CHECK_EQ(full, -EAGAIN);
  CHECK_EQ(sfull, -EAGAIN);
  printf("full pipe: vmsplice %ld, splice %ld\n", full, sfull);
  close(q);
  close(fd);
  close(p[0]);
  close(p[1]);
}

/* A blocking splice out of an empty pipe waits for the writer thread. */
static void *late_writer(void *arg)
{
  usleep(50000);
  CHECK_EQ(write(*(int *)arg, "late", 4), 4);
  return NULL;
}

static void t_blocking(void)
{
  int p[2], s[2];
  CHECK_EQ(pipe(p), 0);
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
  pthread_t th;
  pthread_create(&th, NULL, late_writer, &p[1]);
  long r = SPL(p[0], 0, s[0], 0, 100, 0);
  pthread_join(th, NULL);
  char x[8] = {0};
  long g = read(s[1], x, 8);
  CHECK_EQ(r, 4);
  CHECK_EQ(g, 4);
  CHECK(!strcmp(x, "late"));
  /* And a splice from an empty unix socket waits for its writer. */
  pthread_create(&th, NULL, late_writer, &s[1]);
  long r2 = SPL(s[0], 0, p[1], 0, 100, 0);
  pthread_join(th, NULL);
  long g2 = read(p[0], x, 8);
  CHECK_EQ(r2, 4);
  CHECK_EQ(g2, 4);
  printf("blocking: %ld %ld [%s] %ld %ld\n", r, g, x, r2, g2);
  close(p[0]);
  close(p[1]);
  close(s[0]);
  close(s[1]);
}

/* One end of a relay: the source writes n patterned bytes in 64 KiB
 * chunks, then shuts down; the sink counts (n) what it reads to the end.
 * sum: the bytes' checksum. */
struct flow {
  int fd;
  size_t n;
  unsigned seed;
  uint64_t sum;
};

static void *feeder(void *arg)
{
  struct flow *f = arg;
  static unsigned char chunk[65536];
  f->sum = 0xcbf29ce484222325ull;
  for (size_t off = 0; off < f->n;) {
    size_t c = f->n - off < sizeof chunk ? f->n - off : sizeof chunk;
    pattern(chunk, c, f->seed + (unsigned)(off / sizeof chunk));
    f->sum = fnv(f->sum, chunk, c);
    for (size_t w = 0; w < c;) {
      long r = write(f->fd, chunk + w, c - w);
      if (r <= 0)
        return NULL;
      w += (size_t)r;
    }
    off += c;
  }
  shutdown(f->fd, SHUT_WR);
  return NULL;
}

static void *drainer(void *arg)
{
  struct flow *d = arg;
  static unsigned char buf[65536];
  d->sum = 0xcbf29ce484222325ull;
  for (;;) {
    long r = read(d->fd, buf, sizeof buf);
    if (r <= 0)
      break;
    d->sum = fnv(d->sum, buf, (size_t)r);
    d->n += (size_t)r;
  }
  return NULL;
}

/* Relays from in to out through a pipe until in ends: bytes moved. */
static long relay(int in, int out, long *calls)
{
  int p[2];
  CHECK_EQ(pipe(p), 0);
  long total = 0;
  for (;;) {
    long r = SPL(in, 0, p[1], 0, 1 << 20, SPLICE_F_MOVE | SPLICE_F_MORE);
    if (r < 0)
      CHECK_EQ(r, 0);
    if (r <= 0)
      break;
    (*calls)++;
    while (r > 0) {
      long w = SPL(p[0], 0, out, 0, r, SPLICE_F_MOVE | SPLICE_F_MORE);
      if (w <= 0) {
        CHECK(w > 0);
        goto out;
      }
      r -= w;
      total += w;
    }
  }
out:
  close(p[0]);
  close(p[1]);
  return total;
}

static void relay_check(const char *name, int src_w, int src_r, int dst_w, int dst_r, size_t n)
{
  struct flow f = {src_w, n, 11, 0}, d = {dst_r, 0, 0, 0};
  pthread_t tf, td;
  pthread_create(&tf, NULL, feeder, &f);
  pthread_create(&td, NULL, drainer, &d);
  long calls = 0;
  long moved = relay(src_r, dst_w, &calls);
  shutdown(dst_w, SHUT_WR);
  pthread_join(tf, NULL);
  pthread_join(td, NULL);
  CHECK_EQ(moved, (long)n);
  CHECK_EQ(d.n, n);
  CHECK(d.sum == f.sum);
  printf("%s: relayed %ld, received %zu, checksum %s\n", name, moved, d.n,
         d.sum == f.sum ? "ok" : "wrong");
}

static void t_unix(void)
{
  int a[2], b[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
  int p[2];
  CHECK_EQ(pipe(p), 0);
  /* A unix socket takes SPLICE_F_NONBLOCK as MSG_DONTWAIT (Linux). */
  long ag = SPL(a[0], 0, p[1], 0, 10, NB);
  loff_t o = 0;
  CHECK_EQ(write(a[1], "abc", 3), 3);
  long off = SPL(a[0], &o, p[1], 0, 10, 0);
  long ok = SPL(a[0], 0, p[1], 0, 10, 0);
  CHECK_EQ(ag, -EAGAIN);
  CHECK_EQ(off, -EINVAL);
  CHECK_EQ(ok, 3);
  printf("unix: empty %ld, offset %ld, read %ld\n", ag, off, ok);
  close(p[0]);
  close(p[1]);
  relay_check("unix relay", a[1], a[0], b[0], b[1], 1 << 20);
  close(a[0]);
  close(a[1]);
  close(b[0]);
  close(b[1]);
}

/* Two TCP connections over 127.0.0.1: [0] the sending side, [1] the
 * receiving side. */
static void tcp_pair(int lsn, struct sockaddr_in *addr, int fds[2])
{
  fds[0] = socket(AF_INET, SOCK_STREAM, 0);
  CHECK_EQ(connect(fds[0], (struct sockaddr *)addr, sizeof *addr), 0);
  fds[1] = accept(lsn, NULL, NULL);
  CHECK(fds[1] >= 0);
}

static void t_tcp(void)
{
  int lsn = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof addr;
  CHECK_EQ(bind(lsn, (struct sockaddr *)&addr, sizeof addr), 0);
  CHECK_EQ(listen(lsn, 4), 0);
  CHECK_EQ(getsockname(lsn, (struct sockaddr *)&addr, &al), 0);
  int a[2], b[2], p[2];
  tcp_pair(lsn, &addr, a);
  tcp_pair(lsn, &addr, b);
  CHECK_EQ(pipe(p), 0);
  /* A socket's own O_NONBLOCK decides for it: EAGAIN with no data. */
  int fl = fcntl(a[1], F_GETFL);
  fcntl(a[1], F_SETFL, fl | O_NONBLOCK);
  long ag = SPL(a[1], 0, p[1], 0, 100, 0);
  fcntl(a[1], F_SETFL, fl);
  loff_t o = 0;
  CHECK_EQ(write(a[0], "ping", 4), 4);
  long off = SPL(a[1], &o, p[1], 0, 100, 0);
  long r = SPL(a[1], 0, p[1], 0, 100, 0);
  long w = SPL(p[0], 0, b[0], 0, 100, 0);
  char x[8] = {0};
  long g = read(b[1], x, 8);
  CHECK_EQ(ag, -EAGAIN);
  CHECK_EQ(off, -EINVAL);
  CHECK_EQ(r, 4);
  CHECK_EQ(w, 4);
  CHECK_EQ(g, 4);
  printf("tcp: nonblocking %ld, offset %ld, in %ld out %ld read %ld [%s]\n", ag, off, r, w, g, x);
  close(p[0]);
  close(p[1]);
  relay_check("tcp relay 8 MiB", a[0], a[1], b[0], b[1], 8u << 20);
  close(a[0]);
  close(a[1]);
  close(b[0]);
  close(b[1]);
  close(lsn);
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  int net = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "net"))
      net = 1;
    else
      t_files(argv[i]);
  }
  t_pipes();
  t_vmsplice();
  t_blocking();
  t_unix();
  if (net)
    t_tcp();
  return t_done("t_splice");
}
