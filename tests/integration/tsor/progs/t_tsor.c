/* A guest program for the TSoR tests and bench: ordinary socket calls only
 * (the guest kernel decides that a connection goes over TSoR).
 *
 *   t_tsor serve PORT N          poll()-driven echo server; exits after N
 *                                connections ended ("ready" once listening)
 *   t_tsor sink PORT             accepts one connection, reads to EOF, then
 *                                answers "<bytes> <checksum>\n" (half-close)
 *   t_tsor echo IP PORT MSG      one round trip: prints "echo: MSG"
 *   t_tsor bulk IP PORT MIB      sends MIB MiB of a pattern, shuts down its
 *                                write side, checks the sink's byte count
 *                                and checksum; prints the rate
 *   t_tsor refused IP PORT       connect must fail with ECONNREFUSED
 *   t_tsor flood IP PORT         sends until an error; ECONNRESET/EPIPE ok
 *   t_tsor pingpong IP PORT N    N round trips of 64 B against `serve`,
 *                                prints the mean round trip in µs
 *   t_tsor nbconnect IP PORT     non-blocking connect + poll + SO_ERROR
 *   t_tsor cost IP PORT N        µs per getppid() and per recv(MSG_DONTWAIT)
 *                                that finds nothing (what one socket call
 *                                costs beyond the syscall)
 *   t_tsor calls IP PORT         socket-call semantics against `serve`:
 *                                MSG_DONTWAIT, SO_RCVTIMEO, writev/readv,
 *                                MSG_WAITALL, FIONREAD, getsockname,
 *                                SO_ERROR, shutdown then EPIPE, EOF
 *   t_tsor conns IP PORT N       N connections open at once, one round trip
 *                                on each, then all closed
 *   t_tsor eserve PORT N         like serve, with epoll (edge-triggered for
 *                                the connections); "no epoll" when the
 *                                guest kernel answers ENOSYS
 *   t_tsor drain PORT            like sink, without the checksum (bench)
 *   t_tsor stream IP PORT MIB    like bulk, zeros without a checksum (bench)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int die(const char *what)
{
  printf("FAIL %s: %s\n", what, strerror(errno));
  fflush(stdout);
  exit(1);
}

static int dial(const char *ip, int port)
{
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0)
    die("socket");
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, ip, &a.sin_addr);
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0)
    return -errno;
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

static int listener(int port)
{
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0)
    die("bind");
  if (listen(s, 1024) < 0)
    die("listen");
  printf("ready\n");
  fflush(stdout);
  return s;
}

static int write_all(int s, const void *b, size_t n)
{
  const char *p = b;
  while (n) {
    ssize_t w = write(s, p, n);
    if (w < 0)
      return -errno;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int read_full(int s, void *b, size_t n)
{
  char *p = b;
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(s, p + got, n - got);
    if (r < 0)
      return -errno;
    if (r == 0)
      break;
    got += (size_t)r;
  }
  return (int)got;
}

/* A pattern both ends can compute, and a running checksum (FNV-1a 64). */
static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

static void fill(unsigned char *b, size_t n, uint64_t *x)
{
  for (size_t i = 0; i < n; i += 8) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    memcpy(b + i, x, n - i < 8 ? n - i : 8);
  }
}

static int serve(int port, int n)
{
  int l = listener(port);
  static struct pollfd p[1025] = {{.events = POLLIN}};
  p[0].fd = l;
  int np = 1, ended = 0;
  static char buf[65536];
  while (ended < n) {
    if (poll(p, np, -1) < 0)
      die("poll");
    if ((p[0].revents & POLLIN) && np < 1025) {
      int c = accept(l, NULL, NULL);
      if (c >= 0) {
        int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        p[np++] = (struct pollfd){.fd = c, .events = POLLIN};
      }
    }
    for (int i = 1; i < np; i++) {
      if (!p[i].revents)
        continue;
      ssize_t r = read(p[i].fd, buf, sizeof buf);
      if (r > 0 && write_all(p[i].fd, buf, (size_t)r) == 0)
        continue;
      close(p[i].fd);
      p[i] = p[--np];
      i--;
      ended++;
    }
  }
  printf("served %d\n", ended);
  return 0;
}

static int eserve(int port, int n)
{
  int ep = epoll_create1(0);
  if (ep < 0 && errno == ENOSYS) {
    printf("no epoll\n");
    return 0;
  }
  int l = listener(port);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = l};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) < 0)
    die("epoll");
  int ended = 0;
  static char buf[65536];
  while (ended < n) {
    struct epoll_event out[16];
    int k = epoll_wait(ep, out, 16, -1);
    if (k < 0)
      die("epoll_wait");
    for (int i = 0; i < k; i++) {
      int fd = out[i].data.fd;
      if (fd == l) {
        int c = accept4(l, NULL, NULL, SOCK_NONBLOCK);
        if (c >= 0) {
          struct epoll_event ce = {.events = EPOLLIN | EPOLLET, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
        }
        continue;
      }
      for (;;) { /* edge-triggered: read until EAGAIN */
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) {
          int fl = fcntl(fd, F_GETFL);
          fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
          int w = write_all(fd, buf, (size_t)r);
          fcntl(fd, F_SETFL, fl);
          if (w == 0)
            continue;
        }
        if (r < 0 && errno == EAGAIN)
          break;
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
        close(fd);
        ended++;
        break;
      }
    }
  }
  printf("served %d\n", ended);
  return 0;
}

static int sink(int port, bool check)
{
  int l = listener(port);
  int c = accept(l, NULL, NULL);
  if (c < 0)
    die("accept");
  static unsigned char buf[1 << 16];
  uint64_t h = 0xcbf29ce484222325ull, bytes = 0;
  for (;;) {
    ssize_t r = read(c, buf, sizeof buf);
    if (r < 0) {
      printf("sink: read: %s after %llu bytes\n", strerror(errno), (unsigned long long)bytes);
      return 2;
    }
    if (r == 0)
      break;
    if (check)
      h = fnv(h, buf, (size_t)r);
    bytes += (uint64_t)r;
  }
  char line[64];
  int n = snprintf(line, sizeof line, "%llu %016llx\n", (unsigned long long)bytes,
                   (unsigned long long)h);
  if (write_all(c, line, (size_t)n) < 0)
    die("write answer");
  close(c);
  printf("sink: %s", line);
  return 0;
}

static int bulk(const char *ip, int port, long mib, bool check)
{
  int s = dial(ip, port);
  if (s < 0) {
    errno = -s;
    die("connect");
  }
  static unsigned char buf[1 << 16];
  uint64_t x = 0x9e3779b97f4a7c15ull, h = 0xcbf29ce484222325ull, total = (uint64_t)mib << 20;
  double t0 = now();
  for (uint64_t done = 0; done < total; done += sizeof buf) {
    if (check) {
      fill(buf, sizeof buf, &x);
      h = fnv(h, buf, sizeof buf);
    }
    if (write_all(s, buf, sizeof buf) < 0)
      die("write");
  }
  if (shutdown(s, SHUT_WR) < 0)
    die("shutdown");
  char line[64] = "";
  int n = read_full(s, line, sizeof line - 1);
  double dt = now() - t0;
  char want[64];
  snprintf(want, sizeof want, "%llu %016llx\n", (unsigned long long)total, (unsigned long long)h);
  if (n <= 0 || strcmp(line, want)) {
    printf("FAIL bulk: sink said [%s], expected [%s]\n", line, want);
    return 1;
  }
  printf("%s: %ld MiB %s, %.1f MiB/s (%.2f Gbit/s)\n", check ? "bulk" : "stream", mib,
         check ? "checksum ok" : "all arrived", mib / dt, mib * 8.0 * 1.048576 / 1000 / dt);
  return 0;
}

static int echo(const char *ip, int port, const char *msg)
{
  int s = dial(ip, port);
  if (s < 0) {
    errno = -s;
    die("connect");
  }
  size_t n = strlen(msg);
  char buf[256];
  if (write_all(s, msg, n) < 0 || read_full(s, buf, n) != (int)n)
    die("echo");
  buf[n] = 0;
  struct sockaddr_in peer;
  socklen_t pl = sizeof peer;
  if (getpeername(s, (struct sockaddr *)&peer, &pl) < 0 || ntohs(peer.sin_port) != port)
    die("getpeername");
  printf("echo: %s\n", buf);
  close(s);
  return 0;
}

static int pingpong(const char *ip, int port, long n)
{
  int s = dial(ip, port);
  if (s < 0) {
    errno = -s;
    die("connect");
  }
  char buf[64];
  memset(buf, 'p', sizeof buf);
  for (int i = 0; i < 100; i++) /* warm-up */
    if (write_all(s, buf, 64) < 0 || read_full(s, buf, 64) != 64)
      die("pingpong");
  double t0 = now();
  for (long i = 0; i < n; i++)
    if (write_all(s, buf, 64) < 0 || read_full(s, buf, 64) != 64)
      die("pingpong");
  double dt = now() - t0;
  printf("pingpong: %ld round trips of 64 B, %.1f us each\n", n, dt / n * 1e6);
  close(s);
  return 0;
}

static int refused(const char *ip, int port)
{
  int s = dial(ip, port);
  if (s != -ECONNREFUSED) {
    printf("FAIL refused: connect gave %s\n", s >= 0 ? "success" : strerror(-s));
    return 1;
  }
  printf("refused: ECONNREFUSED\n");
  return 0;
}

static int flood(const char *ip, int port)
{
  signal(SIGPIPE, SIG_IGN);
  int s = dial(ip, port);
  if (s < 0) {
    errno = -s;
    die("connect");
  }
  static char buf[1 << 16];
  unsigned long long sent = 0;
  printf("flooding\n");
  fflush(stdout);
  for (;;) {
    ssize_t w = write(s, buf, sizeof buf);
    if (w < 0) {
      int e = errno;
      printf("flood: %s after %llu bytes\n", strerror(e), sent);
      return e == ECONNRESET || e == EPIPE ? 0 : 1;
    }
    sent += (unsigned long long)w;
  }
}

static int nbconnect(const char *ip, int port)
{
  int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, ip, &a.sin_addr);
  int r = connect(s, (struct sockaddr *)&a, sizeof a);
  if (r == 0 || errno != EINPROGRESS)
    die("non-blocking connect (want EINPROGRESS)");
  struct pollfd p = {.fd = s, .events = POLLOUT};
  if (poll(&p, 1, 10000) != 1)
    die("poll for the connect");
  int err = -1;
  socklen_t l = sizeof err;
  if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
    die("SO_ERROR");
  printf("nbconnect: %s\n", err ? strerror(err) : "connected");
  return 0;
}

static int cost(const char *ip, int port, long n)
{
  int s = dial(ip, port);
  if (s < 0) {
    errno = -s;
    die("connect");
  }
  char b[64];
  double t0 = now();
  for (long i = 0; i < n; i++)
    getppid();
  double t1 = now();
  for (long i = 0; i < n; i++)
    if (recv(s, b, sizeof b, MSG_DONTWAIT) != -1 || errno != EAGAIN)
      die("recv");
  double t2 = now();
  printf("cost: getppid %.2f us, empty recv %.2f us\n", (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6);
  return 0;
}

static int conns(const char *ip, int port, int n)
{
  static int fd[1024];
  if (n > 1024)
    n = 1024;
  for (int i = 0; i < n; i++)
    if ((fd[i] = dial(ip, port)) < 0) {
      errno = -fd[i];
      printf("FAIL conns: connection %d: %s\n", i, strerror(errno));
      return 1;
    }
  for (int i = 0; i < n; i++) {
    char m[16], b[16];
    int len = snprintf(m, sizeof m, "c%d", i);
    if (write_all(fd[i], m, (size_t)len) < 0 || read_full(fd[i], b, (size_t)len) != len ||
        memcmp(m, b, (size_t)len)) {
      printf("FAIL conns: round trip on connection %d\n", i);
      return 1;
    }
  }
  for (int i = 0; i < n; i++)
    close(fd[i]);
  printf("conns: %d connections at once\n", n);
  return 0;
}

static int fails;
static void expect(int ok, const char *what)
{
  printf("%s %s\n", ok ? "ok" : "FAIL", what);
  if (!ok)
    fails++;
}

static int calls(const char *ip, int port)
{
  signal(SIGPIPE, SIG_IGN);
  int s = dial(ip, port);
  if (s < 0) {
    errno = -s;
    die("connect");
  }
  char b[256];
  expect(recv(s, b, sizeof b, MSG_DONTWAIT) == -1 && errno == EAGAIN,
         "MSG_DONTWAIT with nothing: EAGAIN");
  struct timeval tv = {0, 200000};
  expect(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0, "SO_RCVTIMEO set");
  double t0 = now();
  ssize_t r = read(s, b, sizeof b);
  double dt = now() - t0;
  expect(r == -1 && errno == EAGAIN && dt > 0.15 && dt < 5,
         "read with SO_RCVTIMEO: EAGAIN after ~200 ms");
  struct iovec iov[3] = {{"abc", 3}, {"defgh", 5}, {"ij", 2}};
  expect(writev(s, iov, 3) == 10, "writev of 3 segments");
  usleep(200000);
  int n = -1;
  expect(ioctl(s, FIONREAD, &n) == 0 && n == 10, "FIONREAD counts the echoed bytes");
  char x[4], y[6];
  struct iovec rv[2] = {{x, 4}, {y, 6}};
  expect(readv(s, rv, 2) == 10 && !memcmp(x, "abcd", 4) && !memcmp(y, "efghij", 6),
         "readv into 2 segments");
  static char big[200000], back[200000];
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (char)(i * 7);
  expect(write_all(s, big, sizeof big) == 0, "200 KB write");
  expect(recv(s, back, sizeof back, MSG_WAITALL) == (ssize_t)sizeof back &&
             !memcmp(big, back, sizeof big),
         "MSG_WAITALL gathers 200 KB");
  struct sockaddr_in me;
  socklen_t ml = sizeof me;
  expect(getsockname(s, (struct sockaddr *)&me, &ml) == 0 && me.sin_family == AF_INET,
         "getsockname");
  int err = -1;
  socklen_t el = sizeof err;
  expect(getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0, "SO_ERROR 0");
  expect(shutdown(s, SHUT_WR) == 0, "shutdown(SHUT_WR)");
  expect(send(s, "z", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE, "send after shutdown: EPIPE");
  expect(read(s, b, sizeof b) == 0, "the server closes after our FIN: read gives 0");
  close(s);
  printf("calls: %d failures\n", fails);
  return fails != 0;
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 4 && !strcmp(argv[1], "serve"))
    return serve(atoi(argv[2]), atoi(argv[3]));
  if (argc >= 4 && !strcmp(argv[1], "eserve"))
    return eserve(atoi(argv[2]), atoi(argv[3]));
  if (argc >= 3 && !strcmp(argv[1], "sink"))
    return sink(atoi(argv[2]), true);
  if (argc >= 3 && !strcmp(argv[1], "drain"))
    return sink(atoi(argv[2]), false);
  if (argc >= 5 && !strcmp(argv[1], "echo"))
    return echo(argv[2], atoi(argv[3]), argv[4]);
  if (argc >= 5 && !strcmp(argv[1], "bulk"))
    return bulk(argv[2], atoi(argv[3]), atol(argv[4]), true);
  if (argc >= 5 && !strcmp(argv[1], "stream"))
    return bulk(argv[2], atoi(argv[3]), atol(argv[4]), false);
  if (argc >= 4 && !strcmp(argv[1], "refused"))
    return refused(argv[2], atoi(argv[3]));
  if (argc >= 4 && !strcmp(argv[1], "flood"))
    return flood(argv[2], atoi(argv[3]));
  if (argc >= 5 && !strcmp(argv[1], "pingpong"))
    return pingpong(argv[2], atoi(argv[3]), atol(argv[4]));
  if (argc >= 5 && !strcmp(argv[1], "conns"))
    return conns(argv[2], atoi(argv[3]), atoi(argv[4]));
  if (argc >= 4 && !strcmp(argv[1], "calls"))
    return calls(argv[2], atoi(argv[3]));
  if (argc >= 5 && !strcmp(argv[1], "cost"))
    return cost(argv[2], atoi(argv[3]), atol(argv[4]));
  if (argc >= 4 && !strcmp(argv[1], "nbconnect"))
    return nbconnect(argv[2], atoi(argv[3]));
  fprintf(stderr, "usage: t_tsor serve|sink|echo|bulk|refused|flood|pingpong|nbconnect ...\n");
  return 2;
}
