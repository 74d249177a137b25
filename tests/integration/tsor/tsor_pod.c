/* tsor_pod: a stand-in for a sandbox in the TSoR tests and bench. It is a
 * real process that attaches to tsord with the client library (one pod IP)
 * and plays one role:
 *
 *   server --mode echo|sink --port P [--count N]
 *       echo: echoes every connection's bytes until EOF, then closes.
 *       sink: reads until EOF, answers "<bytes> <fnv64 hex>\n", closes.
 *       count: like sink without the checksum (bench).
 *       noaccept: listens with --backlog and never accepts.
 *       udp: a datagram socket on the port that echoes every datagram.
 *       Serves connections concurrently; prints "ready" once listening;
 *       exits after N connections (default: forever).
 *   echo --dst IP:P [--conns N] [--rounds R]   N concurrent connections
 *   bulk --dst IP:P --bytes B                 stream, checksum, half-close
 *   halfclose --dst IP:P                      FIN semantics both ways
 *   refused --dst IP:P                        expects ECONNREFUSED
 *   noroute --dst IP:P                        expects ENETUNREACH (no node owns IP)
 *   unreach --dst IP:P                        expects EHOSTUNREACH (peer node down)
 *   backlog --dst IP:P --conns N              N connects succeed, the next is refused
 *   flood --dst IP:P                          sends until an error; expects ECONNRESET/EPIPE
 *   udpecho --dst IP:P --rounds R             datagrams of 1 B..64 KiB echoed back
 *   pingpong --dst IP:P --rounds R            64-byte round trips (bench)
 *   stream --dst IP:P --bytes B               throughput only (bench)
 *
 * Common: --sock PATH --ip POD_IP [--slots N] [--ring BYTES]
 * [--guest-arena] (the arena lives 2 MiB into a bigger sealed memfd, as a
 * VMM would place it in guest memory); --tcp makes
 * pingpong/stream/server use plain kernel TCP sockets instead (the bench's
 * baseline). Exit 0 on success, 1 with a message on failure. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "quark/tsor.h"

static tsor_client *cl;
static bool plain;

#define DIE(...) do { fprintf(stderr, "tsor_pod: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

/* Deterministic bytes: position-dependent so reordering or loss shows. */
static void fill(unsigned char *b, size_t n, uint64_t pos)
{
  for (size_t i = 0; i < n; i++) {
    uint64_t x = (pos + i) * 0x9e3779b97f4a7c15ull;
    b[i] = (unsigned char)(x >> 56);
  }
}

/* ---- a tiny socket shim: TSoR or kernel TCP ---- */

static int s_socket(void)
{
  if (plain) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    return fd < 0 ? -errno : fd;
  }
  return tsor_client_socket(cl);
}
static int s_connect(int s, struct sockaddr_in *a)
{
  if (plain) return connect(s, (struct sockaddr *)a, sizeof(*a)) < 0 ? -errno : 0;
  return tsor_client_connect(cl, s, a);
}
static int s_listen(int s, const char *ip, uint16_t port, int backlog)
{
  if (plain) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, backlog) < 0) return -errno;
    return 0;
  }
  return tsor_client_listen(cl, s, port, backlog);
}
static int s_accept(int s)
{
  if (plain) {
    int fd = accept(s, NULL, NULL);
    int one = 1;
    if (fd >= 0) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd < 0 ? -errno : fd;
  }
  struct sockaddr_in peer;
  int a = tsor_client_accept(cl, s, &peer, TSOR_NONBLOCK);
  if (a >= 0) {
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
    printf("accepted from %s:%u\n", ip, ntohs(peer.sin_port));
  }
  return a;
}
static ssize_t s_send(int s, const void *b, size_t n)
{
  if (plain) {
    ssize_t r = send(s, b, n, MSG_NOSIGNAL);
    return r < 0 ? -errno : r;
  }
  return tsor_client_send(cl, s, b, n, 0);
}
static ssize_t s_recv(int s, void *b, size_t n, bool nonblock)
{
  if (plain) {
    ssize_t r = recv(s, b, n, nonblock ? MSG_DONTWAIT : 0);
    return r < 0 ? -errno : r;
  }
  return tsor_client_recv(cl, s, b, n, nonblock ? TSOR_NONBLOCK : 0);
}
static int s_shutdown(int s)
{
  if (plain) return shutdown(s, SHUT_WR) < 0 ? -errno : 0;
  return tsor_client_shutdown(cl, s);
}
static void s_close(int s)
{
  if (plain)
    close(s);
  else
    tsor_client_close(cl, s);
}
/* Waits for readability of fds; returns how many are ready. */
static int s_poll(const int *fds, short *rev, int n, int timeout)
{
  if (plain) {
    struct pollfd *p = calloc((size_t)n + 1, sizeof(*p));
    for (int i = 0; i < n; i++) p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
    int r = poll(p, (nfds_t)n, timeout);
    for (int i = 0; i < n; i++) rev[i] = p[i].revents;
    free(p);
    return r;
  }
  struct tsor_pollsd *p = calloc((size_t)n + 1, sizeof(*p));
  for (int i = 0; i < n; i++) p[i] = (struct tsor_pollsd){.sd = fds[i], .events = TSOR_POLLIN};
  int r = tsor_client_poll(cl, p, n, timeout);
  for (int i = 0; i < n; i++) rev[i] = p[i].revents;
  free(p);
  return r;
}

static int connect_to(const char *dst)
{
  struct sockaddr_in a = {.sin_family = AF_INET};
  char host[64];
  snprintf(host, sizeof(host), "%s", dst);
  char *colon = strrchr(host, ':');
  if (colon == NULL) DIE("--dst wants IP:PORT");
  *colon = '\0';
  a.sin_port = htons((uint16_t)atoi(colon + 1));
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) DIE("bad --dst %s", dst);
  int s = s_socket();
  if (s < 0) DIE("socket: %s", strerror(-s));
  int r = s_connect(s, &a);
  if (r < 0) {
    s_close(s);
    return r;
  }
  return s;
}

static void send_all(int s, const void *b, size_t n)
{
  ssize_t r = s_send(s, b, n);
  if (r < 0) DIE("send: %s", strerror((int)-r));
  if ((size_t)r != n) DIE("short send %zd of %zu", r, n);
}

static size_t recv_exact(int s, void *b, size_t n)
{
  size_t got = 0;
  while (got < n) {
    ssize_t r = s_recv(s, (char *)b + got, n - got, false);
    if (r < 0) DIE("recv: %s", strerror((int)-r));
    if (r == 0) break;
    got += (size_t)r;
  }
  return got;
}

/* ---- server ---- */

struct conn_state {
  int s;
  uint64_t bytes, h;
};

static int udp_server(uint16_t port)
{
  int s = tsor_client_socket_dgram(cl);
  if (s < 0) DIE("socket: %s", strerror(-s));
  int r = tsor_client_bind(cl, s, port);
  if (r < 0) DIE("bind: %s", strerror(-r));
  printf("ready\n");
  fflush(stdout);
  static char buf[TSOR_DGRAM_MAX];
  for (;;) {
    struct sockaddr_in src;
    ssize_t n = tsor_client_recvfrom(cl, s, buf, sizeof(buf), &src, 0);
    if (n < 0) DIE("recvfrom: %s", strerror((int)-n));
    ssize_t w = tsor_client_sendto(cl, s, buf, (size_t)n, &src, 0);
    if (w < 0) DIE("sendto: %s", strerror((int)-w));
  }
}

static int server(const char *ip, uint16_t port, const char *mode, long count, int backlog)
{
  if (strcmp(mode, "udp") == 0) return udp_server(port);
  bool echo = strcmp(mode, "echo") == 0, hash = strcmp(mode, "sink") == 0;
  int ls = s_socket();
  if (ls < 0) DIE("socket: %s", strerror(-ls));
  int r = s_listen(ls, ip, port, backlog);
  if (r < 0) DIE("listen: %s", strerror(-r));
  printf("ready\n");
  fflush(stdout);
  if (strcmp(mode, "noaccept") == 0)
    for (;;) pause();
  size_t cap = 4096, n = 0;
  struct conn_state *cs = calloc(cap, sizeof(*cs));
  int *fds = calloc(cap + 1, sizeof(int));
  short *rev = calloc(cap + 1, sizeof(short));
  static unsigned char buf[1 << 20];
  long served = 0;
  while (count < 0 || served < count || n > 0) {
    fds[0] = ls;
    for (size_t i = 0; i < n; i++) fds[i + 1] = cs[i].s;
    s_poll(fds, rev, (int)n + 1, 1000);
    if (rev[0]) {
      int a;
      while ((a = s_accept(ls)) >= 0) {
        if (n == cap) DIE("too many connections");
        cs[n++] = (struct conn_state){a, 0, FNV_INIT};
        if (plain) break;
      }
    }
    for (size_t i = 0; i < n; i++) {
      if (!rev[i + 1]) continue;
      ssize_t got = s_recv(cs[i].s, buf, sizeof(buf), true);
      if (got == -EAGAIN) continue;
      if (got > 0) {
        cs[i].bytes += (uint64_t)got;
        if (echo) {
          ssize_t w = s_send(cs[i].s, buf, (size_t)got);
          if (w < 0) got = w;
        } else if (hash) {
          cs[i].h = fnv(cs[i].h, buf, (size_t)got);
        }
        if (got > 0) continue;
      }
      if (got == 0 && !echo) {
        char line[64];
        int len = snprintf(line, sizeof(line), "%llu %016llx\n", (unsigned long long)cs[i].bytes,
                           (unsigned long long)cs[i].h);
        s_send(cs[i].s, line, (size_t)len);
      }
      if (got < 0) fprintf(stderr, "tsor_pod: server connection: %s\n", strerror((int)-got));
      s_close(cs[i].s);
      cs[i--] = cs[--n];
      served++;
    }
  }
  return 0;
}

/* ---- clients ---- */

static int do_echo(const char *dst, int conns, int rounds)
{
  int *s = calloc((size_t)conns, sizeof(int));
  double t0 = now_s();
  for (int i = 0; i < conns; i++) {
    s[i] = connect_to(dst);
    if (s[i] < 0) DIE("connect %d/%d: %s", i, conns, strerror(-s[i]));
  }
  double t1 = now_s();
  for (int r = 0; r < rounds; r++) {
    for (int i = 0; i < conns; i++) {
      char msg[64];
      int len = snprintf(msg, sizeof(msg), "hello %d round %d", i, r);
      send_all(s[i], msg, (size_t)len);
    }
    for (int i = 0; i < conns; i++) {
      char want[64], got[64];
      int len = snprintf(want, sizeof(want), "hello %d round %d", i, r);
      if (recv_exact(s[i], got, (size_t)len) != (size_t)len || memcmp(want, got, (size_t)len) != 0)
        DIE("echo mismatch on connection %d round %d", i, r);
    }
  }
  for (int i = 0; i < conns; i++) {
    s_shutdown(s[i]);
    char b[8];
    if (s_recv(s[i], b, sizeof(b), false) != 0) DIE("connection %d: expected EOF after half-close", i);
    s_close(s[i]);
  }
  free(s);
  printf("echo ok: %d concurrent connections, %d rounds, connect %.1f ms total\n", conns, rounds,
         (t1 - t0) * 1e3);
  return 0;
}

static int do_bulk(const char *dst, uint64_t bytes, bool report_only)
{
  int s = connect_to(dst);
  if (s < 0) DIE("connect: %s", strerror(-s));
  static unsigned char buf[256 * 1024];
  uint64_t h = FNV_INIT, pos = 0;
  double t0 = now_s();
  while (pos < bytes) {
    size_t n = bytes - pos < sizeof(buf) ? (size_t)(bytes - pos) : sizeof(buf);
    if (!report_only || pos == 0) fill(buf, n, pos);
    if (!report_only) h = fnv(h, buf, n);
    send_all(s, buf, n);
    pos += n;
  }
  int r = s_shutdown(s);
  if (r < 0) DIE("shutdown: %s", strerror(-r));
  char line[64] = {0};
  size_t got = 0;
  ssize_t k;
  while ((k = s_recv(s, line + got, sizeof(line) - 1 - got, false)) > 0) got += (size_t)k;
  if (k < 0) DIE("reading the sink's answer: %s", strerror((int)-k));
  double dt = now_s() - t0;
  unsigned long long rb = 0, rh = 0;
  if (sscanf(line, "%llu %llx", &rb, &rh) != 2) DIE("bad answer \"%s\"", line);
  if (rb != bytes) DIE("sink got %llu bytes, sent %llu", rb, (unsigned long long)bytes);
  if (!report_only && rh != h) DIE("checksum mismatch: sent %016llx, sink saw %016llx", (unsigned long long)h, rh);
  s_close(s);
  double gbps = bytes * 8 / dt / 1e9;
  if (report_only)
    printf("stream %.3f Gbit/s (%llu bytes in %.3f s)\n", gbps, (unsigned long long)bytes, dt);
  else
    printf("bulk ok: %llu bytes, checksum %016llx, %.3f Gbit/s\n", (unsigned long long)bytes,
           (unsigned long long)h, gbps);
  return 0;
}

static int do_halfclose(const char *dst)
{
  int s = connect_to(dst);
  if (s < 0) DIE("connect: %s", strerror(-s));
  send_all(s, "half", 4);
  int r = s_shutdown(s);
  if (r < 0) DIE("shutdown: %s", strerror(-r));
  ssize_t w = s_send(s, "x", 1);
  if (w != -EPIPE) DIE("send after shutdown gave %zd, want -EPIPE", w);
  /* Our FIN reached the sink (it answered only after EOF) and its FIN reaches us. */
  char line[64] = {0};
  size_t got = 0;
  ssize_t k;
  while ((k = s_recv(s, line + got, sizeof(line) - 1 - got, false)) > 0) got += (size_t)k;
  if (k != 0) DIE("expected EOF, got %zd", k);
  if (strncmp(line, "4 ", 2) != 0) DIE("sink answered \"%s\", want 4 bytes", line);
  if (s_recv(s, line, 1, false) != 0) DIE("EOF is not sticky");
  s_close(s);
  printf("halfclose ok\n");
  return 0;
}

static int do_refused(const char *dst)
{
  int s = connect_to(dst);
  if (s >= 0) DIE("connect to a closed port succeeded");
  if (s != -ECONNREFUSED) DIE("connect gave %s, want ECONNREFUSED", strerror(-s));
  /* The socket is reusable for another attempt, as after a refused TCP SYN. */
  printf("refused ok: %s\n", strerror(-s));
  return 0;
}

static int do_unreach(const char *dst)
{
  int s = connect_to(dst);
  if (s != -EHOSTUNREACH) DIE("connect gave %s, want EHOSTUNREACH", s < 0 ? strerror(-s) : "success");
  printf("unreach ok: %s\n", strerror(-s));
  return 0;
}

static int do_udpecho(const char *dst, int rounds)
{
  struct sockaddr_in a = {.sin_family = AF_INET};
  char host[64];
  snprintf(host, sizeof(host), "%s", dst);
  char *colon = strrchr(host, ':');
  if (colon == NULL) DIE("--dst wants IP:PORT");
  *colon = '\0';
  a.sin_port = htons((uint16_t)atoi(colon + 1));
  inet_pton(AF_INET, host, &a.sin_addr);
  int s = tsor_client_socket_dgram(cl);
  if (s < 0) DIE("socket: %s", strerror(-s));
  static const size_t sizes[] = {1, 64, 512, 1400, 9000, TSOR_DGRAM_MAX};
  static char out[TSOR_DGRAM_MAX], in[TSOR_DGRAM_MAX];
  int lost = 0, got = 0;
  for (int r = 0; r < rounds; r++) {
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
      size_t n = sizes[k];
      fill((unsigned char *)out, n, (uint64_t)r * 131 + k);
      ssize_t w = tsor_client_sendto(cl, s, out, n, &a, 0);
      if (w != (ssize_t)n) DIE("sendto %zu: %s", n, w < 0 ? strerror((int)-w) : "short");
      struct tsor_pollsd p = {.sd = s, .events = TSOR_POLLIN};
      if (tsor_client_poll(cl, &p, 1, 2000) != 1) {
        lost++; /* UDP may drop; the test allows none below */
        continue;
      }
      struct sockaddr_in src;
      ssize_t m = tsor_client_recvfrom(cl, s, in, sizeof(in), &src, TSOR_NONBLOCK);
      if (m != (ssize_t)n || memcmp(in, out, n) != 0) DIE("datagram of %zu came back as %zd bytes or changed", n, m);
      if (src.sin_addr.s_addr != a.sin_addr.s_addr || src.sin_port != a.sin_port) DIE("reply from the wrong source");
      got++;
    }
  }
  /* Truncation: a short buffer gets the start of the datagram. */
  tsor_client_sendto(cl, s, out, 1000, &a, 0);
  struct tsor_pollsd p = {.sd = s, .events = TSOR_POLLIN};
  if (tsor_client_poll(cl, &p, 1, 2000) != 1) DIE("no echo for the truncation check");
  if (tsor_client_recvfrom(cl, s, in, 10, NULL, 0) != 10 || memcmp(in, out, 10) != 0) DIE("truncated read wrong");
  if (tsor_client_sendto(cl, s, out, TSOR_DGRAM_MAX + 1, &a, 0) != -EMSGSIZE) DIE("oversized datagram accepted");
  if (lost) DIE("%d of %d datagrams lost", lost, lost + got);
  tsor_client_close(cl, s);
  printf("udpecho ok: %d datagrams of 1 B to %u B echoed\n", got, TSOR_DGRAM_MAX);
  return 0;
}

static int do_noroute(const char *dst)
{
  int s = connect_to(dst);
  if (s != -ENETUNREACH) DIE("connect gave %s, want ENETUNREACH", s < 0 ? strerror(-s) : "success");
  printf("noroute ok: %s\n", strerror(-s));
  return 0;
}

static int do_backlog(const char *dst, int n)
{
  for (int i = 0; i < n; i++) {
    int s = connect_to(dst);
    if (s < 0) DIE("connect %d of backlog %d: %s", i + 1, n, strerror(-s));
  }
  int s = connect_to(dst);
  if (s != -ECONNREFUSED) DIE("connect beyond a full backlog gave %s, want ECONNREFUSED", s < 0 ? strerror(-s) : "success");
  printf("backlog ok: %d queued, the next refused\n", n);
  return 0;
}

static int do_flood(const char *dst)
{
  int s = connect_to(dst);
  if (s < 0) DIE("connect: %s", strerror(-s));
  static unsigned char buf[64 * 1024];
  fill(buf, sizeof(buf), 0);
  printf("flooding\n");
  fflush(stdout);
  uint64_t sent = 0;
  double t0 = now_s();
  for (;;) {
    ssize_t r = s_send(s, buf, sizeof(buf));
    if (r < 0) {
      if (r != -ECONNRESET && r != -EPIPE) DIE("send gave %s, want ECONNRESET", strerror((int)-r));
      printf("flood ok: %s after %llu bytes, %.2f s\n", strerror((int)-r), (unsigned long long)sent, now_s() - t0);
      return 0;
    }
    sent += (uint64_t)r;
    if (now_s() - t0 > 60) DIE("no reset after 60 s");
  }
}

static int do_pingpong(const char *dst, int rounds)
{
  int s = connect_to(dst);
  if (s < 0) DIE("connect: %s", strerror(-s));
  char b[64];
  memset(b, 'p', sizeof(b));
  for (int i = 0; i < rounds / 10 + 1; i++) { /* warm-up */
    send_all(s, b, sizeof(b));
    recv_exact(s, b, sizeof(b));
  }
  double t0 = now_s();
  for (int i = 0; i < rounds; i++) {
    send_all(s, b, sizeof(b));
    if (recv_exact(s, b, sizeof(b)) != sizeof(b)) DIE("short echo");
  }
  double dt = now_s() - t0;
  s_close(s);
  printf("pingpong %.2f us per round trip (%d rounds)\n", dt / rounds * 1e6, rounds);
  return 0;
}

int main(int argc, char **argv)
{
  if (argc < 2) DIE("usage: tsor_pod server|echo|bulk|halfclose|refused|flood|pingpong|stream [options]");
  const char *role = argv[1];
  const char *sock = NULL, *ip = NULL, *dst = NULL, *mode = "echo";
  long count = -1;
  int conns = 1, rounds = 3, port = 0, backlog = 1024;
  bool guest_arena = false;
  uint32_t slots = 0, ring = 0;
  uint64_t bytes = 1 << 20;
  static const struct option opts[] = {
      {"sock", 1, NULL, 's'},  {"ip", 1, NULL, 'i'},    {"dst", 1, NULL, 'd'},   {"mode", 1, NULL, 'm'},
      {"count", 1, NULL, 'c'}, {"conns", 1, NULL, 'n'}, {"rounds", 1, NULL, 'r'}, {"port", 1, NULL, 'p'},
      {"slots", 1, NULL, 'S'}, {"ring", 1, NULL, 'R'},  {"bytes", 1, NULL, 'b'}, {"tcp", 0, NULL, 't'},
      {"backlog", 1, NULL, 'B'}, {"guest-arena", 0, NULL, 'G'}, {NULL, 0, NULL, 0}};
  int o;
  optind = 2;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case 's': sock = optarg; break;
    case 'i': ip = optarg; break;
    case 'd': dst = optarg; break;
    case 'm': mode = optarg; break;
    case 'c': count = atol(optarg); break;
    case 'n': conns = atoi(optarg); break;
    case 'r': rounds = atoi(optarg); break;
    case 'p': port = atoi(optarg); break;
    case 'S': slots = (uint32_t)atol(optarg); break;
    case 'R': ring = (uint32_t)atol(optarg); break;
    case 'b': bytes = strtoull(optarg, NULL, 0); break;
    case 't': plain = true; break;
    case 'B': backlog = atoi(optarg); break;
    case 'G': guest_arena = true; break;
    default: DIE("bad option");
    }
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (!plain) {
    if (sock == NULL || ip == NULL) DIE("--sock and --ip are required");
    struct tsor_client_config cfg = {.socket_path = sock, .pod_ip = ip, .slots = slots, .ring_size = ring};
    if (guest_arena) {
      /* "Guest memory": 2 MiB before the arena, 2 MiB after it. */
      uint64_t need = tsor_shm_arena_size(slots, ring), total = need + (4u << 20);
      int fd = memfd_create("guest-memory", MFD_CLOEXEC | MFD_ALLOW_SEALING);
      if (fd < 0 || ftruncate(fd, (off_t)total) < 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0)
        DIE("guest memory: %s", strerror(errno));
      char *mem = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (mem == MAP_FAILED) DIE("mmap guest memory");
      cfg.arena_base = mem + (2u << 20);
      cfg.arena_fd = fd;
      cfg.arena_offset = 2u << 20;
    }
    q_error *err = NULL;
    if (tsor_client_open(&cfg, &cl, &err) < 0) DIE("%s", q_error_msg(err));
  }
  int r;
  if (strcmp(role, "server") == 0)
    r = server(ip ? ip : "0.0.0.0", (uint16_t)port, mode, count, backlog);
  else if (dst == NULL)
    DIE("--dst is required");
  else if (strcmp(role, "echo") == 0)
    r = do_echo(dst, conns, rounds);
  else if (strcmp(role, "bulk") == 0)
    r = do_bulk(dst, bytes, false);
  else if (strcmp(role, "stream") == 0)
    r = do_bulk(dst, bytes, true);
  else if (strcmp(role, "halfclose") == 0)
    r = do_halfclose(dst);
  else if (strcmp(role, "refused") == 0)
    r = do_refused(dst);
  else if (strcmp(role, "unreach") == 0)
    r = do_unreach(dst);
  else if (strcmp(role, "udpecho") == 0)
    r = do_udpecho(dst, rounds);
  else if (strcmp(role, "noroute") == 0)
    r = do_noroute(dst);
  else if (strcmp(role, "backlog") == 0)
    r = do_backlog(dst, conns);
  else if (strcmp(role, "flood") == 0)
    r = do_flood(dst);
  else if (strcmp(role, "pingpong") == 0)
    r = do_pingpong(dst, rounds);
  else
    DIE("unknown role %s", role);
  if (cl) tsor_client_free(cl);
  return r;
}
