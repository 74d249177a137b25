/* Guest socket behaviour checked against Linux: `checks` runs the same
 * assertions natively (the test's reference) and inside quark-sandbox, so
 * both must pass; `quark` holds the few answers where Quark differs on
 * purpose (raw sockets, splice). Items of issue #8 not covered by
 * guestnet's t_net: sendmmsg/recvmmsg (a blocking recvmmsg gathered across
 * parks, MSG_WAITFORONE, the timeout), UDP MSG_PEEK/MSG_DONTWAIT/MSG_TRUNC
 * and FIONREAD, SIGPIPE with and without MSG_NOSIGNAL, EISCONN, the option
 * list of the issue read back, SO_REUSEPORT, IPV6_V6ONLY both ways, IPv6
 * UDP, sendfile with an offset, ICMP datagram (ping) sockets, and the
 * interfaces getifaddrs lists.
 * Usage: t_netaudit checks [IPV4-OF-AN-EXTRA-INTERFACE] | rawping [IPV4] | quark |
 *        ancloop N CTL (N messages received with (1) or without (0) control data) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../guest/progs/t.h"

static volatile sig_atomic_t pipes;
static void on_pipe(int sig)
{
  (void)sig;
  pipes++;
}

static struct sockaddr_in lo4(int port)
{
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static int bound(int domain, int type, int port)
{
  int s = socket(domain, type, 0);
  if (s < 0)
    return -1;
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int r;
  if (domain == AF_INET6) {
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
                             .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    r = bind(s, (struct sockaddr *)&a, sizeof a);
  } else {
    struct sockaddr_in a = lo4(port);
    r = bind(s, (struct sockaddr *)&a, sizeof a);
  }
  if (r < 0 || (type == SOCK_STREAM && listen(s, 16) < 0)) {
    close(s);
    return -1;
  }
  return s;
}

static int port_of(int s)
{
  struct sockaddr_storage a;
  socklen_t l = sizeof a;
  if (getsockname(s, (struct sockaddr *)&a, &l) < 0)
    return -1;
  return a.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&a)->sin6_port)
                                 : ntohs(((struct sockaddr_in *)&a)->sin_port);
}

static int wait_in(int s, int ms)
{
  struct pollfd p = {s, POLLIN, 0};
  return poll(&p, 1, ms);
}

/* A connected TCP pair over 127.0.0.1: *c the client, *a the accepted. */
static void tcp_pair(int *c, int *a)
{
  int l = bound(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = lo4(port_of(l));
  *c = socket(AF_INET, SOCK_STREAM, 0);
  CHECK_EQ(connect(*c, (struct sockaddr *)&sa, sizeof sa), 0);
  *a = accept(l, NULL, NULL);
  CHECK(*a >= 0);
  close(l);
}

static int geti(int s, int level, int name)
{
  int v = -12345;
  socklen_t l = sizeof v;
  if (getsockopt(s, level, name, &v, &l) < 0)
    return -errno - 100000;
  return v;
}

static void mmsg_checks(void)
{
  int r = bound(AF_INET, SOCK_DGRAM, 0), s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in to = lo4(port_of(r));
  CHECK_EQ(connect(s, (struct sockaddr *)&to, sizeof to), 0);
  /* sendmmsg: three messages, two iovecs in the second. */
  struct iovec v0 = {"one", 3}, v1[2] = {{"tw", 2}, {"o", 1}}, v2 = {"three", 5};
  struct mmsghdr out[3];
  memset(out, 0, sizeof out);
  out[0].msg_hdr.msg_iov = &v0;
  out[0].msg_hdr.msg_iovlen = 1;
  out[1].msg_hdr.msg_iov = v1;
  out[1].msg_hdr.msg_iovlen = 2;
  out[2].msg_hdr.msg_iov = &v2;
  out[2].msg_hdr.msg_iovlen = 1;
  CHECK_EQ(sendmmsg(s, out, 3, 0), 3);
  CHECK_EQ(out[0].msg_len, 3);
  CHECK_EQ(out[1].msg_len, 3);
  CHECK_EQ(out[2].msg_len, 5);
  /* recvmmsg of what is there, with source addresses. */
  char b[4][16];
  struct iovec iv[4];
  struct sockaddr_in from[4];
  struct mmsghdr in[4];
  memset(in, 0, sizeof in);
  for (int i = 0; i < 4; i++) {
    iv[i] = (struct iovec){b[i], sizeof b[i]};
    in[i].msg_hdr.msg_iov = &iv[i];
    in[i].msg_hdr.msg_iovlen = 1;
    in[i].msg_hdr.msg_name = &from[i];
    in[i].msg_hdr.msg_namelen = sizeof from[i];
  }
  CHECK_EQ(wait_in(r, 5000), 1);
  usleep(20000);
  CHECK_EQ(recvmmsg(r, in, 4, MSG_DONTWAIT, NULL), 3);
  CHECK(in[0].msg_len == 3 && !memcmp(b[0], "one", 3));
  CHECK(in[1].msg_len == 3 && !memcmp(b[1], "two", 3));
  CHECK(in[2].msg_len == 5 && !memcmp(b[2], "three", 5));
  CHECK_EQ(in[1].msg_hdr.msg_namelen, sizeof(struct sockaddr_in));
  CHECK_EQ(from[2].sin_port, htons((uint16_t)port_of(s)));
  CHECK_EQ(recvmmsg(r, in, 4, MSG_DONTWAIT, NULL), -1);
  CHECK_EQ(errno, EAGAIN);
  /* MSG_WAITFORONE: what is there after the first. */
  CHECK_EQ(send(s, "a", 1, 0), 1);
  CHECK_EQ(send(s, "b", 1, 0), 1);
  CHECK_EQ(wait_in(r, 5000), 1);
  usleep(20000);
  CHECK_EQ(recvmmsg(r, in, 4, MSG_WAITFORONE, NULL), 2);
  /* A timeout of zero: the call ends after the first message, and the
   * time left (none) is written back. */
  CHECK_EQ(send(s, "c", 1, 0), 1);
  CHECK_EQ(send(s, "d", 1, 0), 1);
  usleep(20000);
  struct timespec ts = {0, 0};
  CHECK_EQ(recvmmsg(r, in, 4, 0, &ts), 1);
  CHECK(b[0][0] == 'c');
  CHECK_EQ(recvmmsg(r, in, 4, MSG_DONTWAIT, NULL), 1);
  CHECK(b[0][0] == 'd');
  /* A timeout with time left: the rest is written back. */
  CHECK_EQ(send(s, "e", 1, 0), 1);
  usleep(20000);
  ts = (struct timespec){30, 0};
  CHECK_EQ(recvmmsg(r, in, 1, 0, &ts), 1);
  CHECK(b[0][0] == 'e');
  CHECK(ts.tv_sec >= 20 && ts.tv_sec < 30);
  ts = (struct timespec){0, 2000000000};
  CHECK_EQ(recvmmsg(r, in, 4, 0, &ts), -1);
  CHECK_EQ(errno, EINVAL);
  /* A blocking recvmmsg waits for all vlen messages, in order, across the
   * waits between a child's sends. */
  pid_t k = fork();
  if (k == 0) {
    for (int i = 0; i < 3; i++) {
      usleep(80000);
      char m = (char)('x' + i);
      if (send(s, &m, 1, 0) != 1)
        _exit(1);
    }
    _exit(0);
  }
  memset(b, 0, sizeof b);
  CHECK_EQ(recvmmsg(r, in, 3, 0, NULL), 3);
  CHECK(b[0][0] == 'x' && b[1][0] == 'y' && b[2][0] == 'z');
  CHECK(in[0].msg_len == 1 && in[1].msg_len == 1 && in[2].msg_len == 1);
  int st = -1;
  CHECK_EQ(waitpid(k, &st, 0), k);
  CHECK_EQ(st, 0);
  CHECK_EQ(recvmmsg(r, in, 4, MSG_DONTWAIT, NULL), -1);
  CHECK_EQ(errno, EAGAIN);
  close(s);
  close(r);
}

static void udp_checks(void)
{
  int r = bound(AF_INET, SOCK_DGRAM, 0), s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in to = lo4(port_of(r));
  char b[64];
  CHECK_EQ(recv(r, b, sizeof b, MSG_DONTWAIT), -1);
  CHECK_EQ(errno, EAGAIN);
  CHECK_EQ(sendto(s, "datagram-1", 10, 0, (struct sockaddr *)&to, sizeof to), 10);
  CHECK_EQ(sendto(s, "dg2", 3, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof to), 3);
  CHECK_EQ(wait_in(r, 5000), 1);
  usleep(20000);
  int n = -1;
  CHECK_EQ(ioctl(r, FIONREAD, &n), 0);
  CHECK_EQ(n, 10); /* the next datagram's size */
  CHECK_EQ(recv(r, b, 4, MSG_PEEK), 4);
  CHECK(!memcmp(b, "data", 4));
  CHECK_EQ(recv(r, b, 4, MSG_PEEK | MSG_TRUNC), 10); /* the real length */
  CHECK_EQ(recv(r, b, sizeof b, 0), 10);
  CHECK(!memcmp(b, "datagram-1", 10));
  CHECK_EQ(recv(r, b, sizeof b, MSG_DONTWAIT), 3);
  close(s);
  close(r);
  /* IPv6 UDP on ::1 with the source address. */
  int r6 = bound(AF_INET6, SOCK_DGRAM, 0);
  if (r6 < 0) {
    printf("skip: no IPv6 loopback\n");
    return;
  }
  int s6 = socket(AF_INET6, SOCK_DGRAM, 0);
  struct sockaddr_in6 t6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port_of(r6)),
                            .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  CHECK_EQ(sendto(s6, "six", 3, 0, (struct sockaddr *)&t6, sizeof t6), 3);
  struct sockaddr_in6 f6;
  socklen_t fl = sizeof f6;
  CHECK_EQ(wait_in(r6, 5000), 1);
  CHECK_EQ(recvfrom(r6, b, sizeof b, 0, (struct sockaddr *)&f6, &fl), 3);
  CHECK_EQ(fl, sizeof f6);
  CHECK_EQ(f6.sin6_family, AF_INET6);
  CHECK(IN6_IS_ADDR_LOOPBACK(&f6.sin6_addr));
  close(s6);
  close(r6);
}

static void tcp_checks(void)
{
  int c, a;
  tcp_pair(&c, &a);
  char b[64];
  /* EISCONN on a second connect; MSG_PEEK | MSG_DONTWAIT. */
  struct sockaddr_in sa;
  socklen_t sl = sizeof sa;
  CHECK_EQ(getpeername(c, (struct sockaddr *)&sa, &sl), 0);
  CHECK_EQ(connect(c, (struct sockaddr *)&sa, sizeof sa), -1);
  CHECK_EQ(errno, EISCONN);
  CHECK_EQ(recv(a, b, sizeof b, MSG_PEEK | MSG_DONTWAIT), -1);
  CHECK_EQ(errno, EAGAIN);
  CHECK_EQ(send(c, "peekaboo", 8, 0), 8);
  CHECK_EQ(wait_in(a, 5000), 1);
  CHECK_EQ(recv(a, b, 4, MSG_PEEK | MSG_DONTWAIT), 4);
  CHECK_EQ(recv(a, b, sizeof b, MSG_WAITALL | MSG_DONTWAIT), 8);
  CHECK(!memcmp(b, "peekaboo", 8));
  int n = -1;
  CHECK_EQ(ioctl(a, FIONREAD, &n), 0);
  CHECK_EQ(n, 0);
  /* FIONBIO both ways. */
  int on = 1;
  CHECK_EQ(ioctl(a, FIONBIO, &on), 0);
  CHECK_EQ(read(a, b, sizeof b), -1);
  CHECK_EQ(errno, EAGAIN);
  on = 0;
  CHECK_EQ(ioctl(a, FIONBIO, &on), 0);
  CHECK_EQ(fcntl(a, F_GETFL) & O_NONBLOCK, 0);
  /* SIGPIPE after the peer is gone: none with MSG_NOSIGNAL, one without. */
  struct sigaction sg = {.sa_handler = on_pipe};
  sigaction(SIGPIPE, &sg, NULL);
  close(a);
  usleep(50000);
  send(c, "x", 1, MSG_NOSIGNAL); /* answered by a reset */
  usleep(50000);
  pipes = 0;
  CHECK_EQ(send(c, "x", 1, MSG_NOSIGNAL), -1);
  CHECK_EQ(errno, EPIPE);
  CHECK_EQ(pipes, 0);
  CHECK_EQ(send(c, "x", 1, 0), -1);
  CHECK_EQ(errno, EPIPE);
  CHECK_EQ(pipes, 1);
  CHECK_EQ(write(c, "x", 1), -1);
  CHECK_EQ(pipes, 2);
  signal(SIGPIPE, SIG_IGN);
  close(c);

  /* Non-blocking connect: EINPROGRESS or at once; SO_ERROR 0; a second
   * connect reports the finished connection (0 once), then EISCONN. */
  int l = bound(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in la = lo4(port_of(l));
  c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int r = connect(c, (struct sockaddr *)&la, sizeof la);
  CHECK(r == 0 || errno == EINPROGRESS);
  struct pollfd p = {c, POLLOUT, 0};
  CHECK_EQ(poll(&p, 1, 5000), 1);
  CHECK_EQ(geti(c, SOL_SOCKET, SO_ERROR), 0);
  r = connect(c, (struct sockaddr *)&la, sizeof la);
  CHECK(r == 0 || errno == EISCONN);
  CHECK_EQ(connect(c, (struct sockaddr *)&la, sizeof la), -1);
  CHECK_EQ(errno, EISCONN);
  close(c);
  close(l);

  /* sendfile with an offset: the file position stays. */
  char path[32];
  snprintf(path, sizeof path, "/tmp/t_netaudit.%06d", (int)getpid() % 1000000);
  unlink(path); /* a leftover of a killed run with the same pid */
  int f = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
  CHECK(f >= 0);
  char data[10000];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (char)('a' + i % 26);
  CHECK_EQ(write(f, data, sizeof data), (long)sizeof data);
  unlink(path);
  CHECK_EQ(lseek(f, 5, SEEK_SET), 5);
  tcp_pair(&c, &a);
  off_t off = 100;
  CHECK_EQ(sendfile(c, f, &off, 1000), 1000);
  CHECK_EQ(off, 1100);
  CHECK_EQ(lseek(f, 0, SEEK_CUR), 5);
  CHECK_EQ(sendfile(c, f, NULL, 10), 10);
  CHECK_EQ(lseek(f, 0, SEEK_CUR), 15);
  char got[1010];
  size_t have = 0;
  while (have < sizeof got) {
    ssize_t k = read(a, got + have, sizeof got - have);
    if (k <= 0)
      break;
    have += (size_t)k;
  }
  CHECK_EQ(have, sizeof got);
  CHECK(!memcmp(got, data + 100, 1000) && !memcmp(got + 1000, data + 5, 10));
  close(f);
  close(c);
  close(a);
}

static void option_checks(void)
{
  int c, a;
  tcp_pair(&c, &a);
  int one = 1, v;
  CHECK_EQ(setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one), 0);
  CHECK_EQ(geti(c, SOL_SOCKET, SO_KEEPALIVE), 1);
  v = 45;
  CHECK_EQ(setsockopt(c, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof v), 0);
  v = 7;
  CHECK_EQ(setsockopt(c, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof v), 0);
  v = 3;
  CHECK_EQ(setsockopt(c, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof v), 0);
  CHECK_EQ(geti(c, IPPROTO_TCP, TCP_KEEPIDLE), 45);
  CHECK_EQ(geti(c, IPPROTO_TCP, TCP_KEEPINTVL), 7);
  CHECK_EQ(geti(c, IPPROTO_TCP, TCP_KEEPCNT), 3);
  CHECK_EQ(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
  CHECK_EQ(geti(c, IPPROTO_TCP, TCP_NODELAY), 1);
  v = 65536;
  CHECK_EQ(setsockopt(c, SOL_SOCKET, SO_RCVBUF, &v, sizeof v), 0);
  CHECK_EQ(geti(c, SOL_SOCKET, SO_RCVBUF), 131072); /* doubled, as Linux does */
  v = 32768;
  CHECK_EQ(setsockopt(c, SOL_SOCKET, SO_SNDBUF, &v, sizeof v), 0);
  CHECK_EQ(geti(c, SOL_SOCKET, SO_SNDBUF), 65536);
  struct linger lg = {1, 5}, lg2 = {0, 0};
  socklen_t ll = sizeof lg2;
  CHECK_EQ(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  CHECK_EQ(getsockopt(c, SOL_SOCKET, SO_LINGER, &lg2, &ll), 0);
  CHECK(ll == sizeof lg2 && lg2.l_onoff == 1 && lg2.l_linger == 5);
  CHECK_EQ(geti(c, SOL_SOCKET, SO_TYPE), SOCK_STREAM);
  CHECK_EQ(geti(c, SOL_SOCKET, SO_DOMAIN), AF_INET);
  CHECK_EQ(geti(c, SOL_SOCKET, SO_PROTOCOL), IPPROTO_TCP);
  CHECK_EQ(geti(c, SOL_SOCKET, SO_ACCEPTCONN), 0);
  CHECK_EQ(geti(c, SOL_SOCKET, SO_ERROR), 0);
  /* TCP_INFO whole (232 bytes on current kernels), an established state. */
  struct tcp_info ti;
  memset(&ti, 0, sizeof ti);
  socklen_t til = sizeof ti;
  CHECK_EQ(getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &til), 0);
  CHECK(til >= 104 && til <= sizeof ti);
  CHECK_EQ(ti.tcpi_state, 1 /* TCP_ESTABLISHED */);
  CHECK(ti.tcpi_snd_mss > 0);
  char cc[16] = {0};
  socklen_t ccl = sizeof cc;
  CHECK_EQ(getsockopt(c, IPPROTO_TCP, TCP_CONGESTION, cc, &ccl), 0);
  CHECK(cc[0] != 0);
  v = 4;
  CHECK_EQ(setsockopt(c, SOL_SOCKET, SO_PRIORITY, &v, sizeof v), 0);
  CHECK_EQ(geti(c, SOL_SOCKET, SO_PRIORITY), 4);
  v = IP_PMTUDISC_DONT;
  CHECK_EQ(setsockopt(c, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof v), 0);
  CHECK_EQ(geti(c, IPPROTO_IP, IP_MTU_DISCOVER), IP_PMTUDISC_DONT);
  CHECK(geti(c, IPPROTO_IP, IP_MTU) >= 576);
  v = 16384;
  CHECK_EQ(setsockopt(c, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, sizeof v), 0);
  CHECK_EQ(geti(c, IPPROTO_TCP, TCP_NOTSENT_LOWAT), 16384);
  /* A short option buffer gets a cut value and its length. */
  char one_byte = 0;
  socklen_t ol = 1;
  CHECK_EQ(getsockopt(c, SOL_SOCKET, SO_TYPE, &one_byte, &ol), 0);
  CHECK_EQ(ol, 1);
  close(c);
  close(a);
  int l = bound(AF_INET, SOCK_STREAM, 0);
  CHECK_EQ(geti(l, SOL_SOCKET, SO_ACCEPTCONN), 1);
  CHECK_EQ(geti(l, SOL_SOCKET, SO_REUSEADDR), 1);
  close(l);
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  CHECK_EQ(geti(u, SOL_SOCKET, SO_TYPE), SOCK_DGRAM);
  CHECK_EQ(geti(u, SOL_SOCKET, SO_PROTOCOL), IPPROTO_UDP);
  CHECK_EQ(setsockopt(u, SOL_SOCKET, SO_BROADCAST, &one, sizeof one), 0);
  CHECK_EQ(geti(u, SOL_SOCKET, SO_BROADCAST), 1);
  /* Binding an address this host does not have: with IP_FREEBIND only. */
  struct sockaddr_in far = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a0b0c0d)};
  CHECK_EQ(bind(u, (struct sockaddr *)&far, sizeof far), -1);
  CHECK_EQ(errno, EADDRNOTAVAIL);
  CHECK_EQ(setsockopt(u, IPPROTO_IP, IP_FREEBIND, &one, sizeof one), 0);
  CHECK_EQ(bind(u, (struct sockaddr *)&far, sizeof far), 0);
  close(u);
  u = socket(AF_INET, SOCK_STREAM, 0);
  CHECK_EQ(setsockopt(u, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one), 0);
  CHECK_EQ(geti(u, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT), 1);
  close(u);

  /* SO_REUSEPORT: two UDP sockets on one port with it, not without. */
  int p1 = socket(AF_INET, SOCK_DGRAM, 0), p2 = socket(AF_INET, SOCK_DGRAM, 0);
  CHECK_EQ(setsockopt(p1, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one), 0);
  CHECK_EQ(geti(p1, SOL_SOCKET, SO_REUSEPORT), 1);
  struct sockaddr_in any = lo4(0);
  CHECK_EQ(bind(p1, (struct sockaddr *)&any, sizeof any), 0);
  struct sockaddr_in same = lo4(port_of(p1));
  CHECK_EQ(bind(p2, (struct sockaddr *)&same, sizeof same), -1);
  CHECK_EQ(errno, EADDRINUSE);
  close(p2);
  p2 = socket(AF_INET, SOCK_DGRAM, 0);
  CHECK_EQ(setsockopt(p2, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one), 0);
  CHECK_EQ(bind(p2, (struct sockaddr *)&same, sizeof same), 0);
  close(p1);
  close(p2);

  /* IPV6_V6ONLY 0: a v6 listener on :: takes an IPv4 client (a mapped
   * address); 1: an IPv4 socket may bind the same port. */
  int l6 = socket(AF_INET6, SOCK_STREAM, 0);
  int zero = 0;
  if (l6 < 0) {
    printf("skip: no IPv6\n");
    return;
  }
  CHECK_EQ(setsockopt(l6, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero), 0);
  CHECK_EQ(geti(l6, IPPROTO_IPV6, IPV6_V6ONLY), 0);
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
  CHECK_EQ(bind(l6, (struct sockaddr *)&a6, sizeof a6), 0);
  CHECK_EQ(listen(l6, 4), 0);
  struct sockaddr_in to4 = lo4(port_of(l6));
  c = socket(AF_INET, SOCK_STREAM, 0);
  CHECK_EQ(connect(c, (struct sockaddr *)&to4, sizeof to4), 0);
  struct sockaddr_in6 peer;
  socklen_t pl = sizeof peer;
  a = accept(l6, (struct sockaddr *)&peer, &pl);
  CHECK(a >= 0);
  CHECK_EQ(peer.sin6_family, AF_INET6);
  CHECK(IN6_IS_ADDR_V4MAPPED(&peer.sin6_addr));
  close(a);
  close(c);
  close(l6);
  l6 = socket(AF_INET6, SOCK_STREAM, 0);
  CHECK_EQ(setsockopt(l6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one), 0);
  a6.sin6_port = 0;
  CHECK_EQ(bind(l6, (struct sockaddr *)&a6, sizeof a6), 0);
  int l4 = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in b4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port_of(l6))};
  CHECK_EQ(bind(l4, (struct sockaddr *)&b4, sizeof b4), 0);
  close(l4);
  close(l6);
}

/* An ICMP echo over a datagram ("ping") socket, as busybox ping uses when a
 * raw socket is refused. */
static void icmp_checks(const char *dst)
{
  int s = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
  if (s < 0) {
    printf("skip: ICMP datagram socket: %s (net.ipv4.ping_group_range)\n", strerror(errno));
    return;
  }
  CHECK_EQ(geti(s, SOL_SOCKET, SO_PROTOCOL), IPPROTO_ICMP);
  struct icmphdr h = {.type = ICMP_ECHO};
  h.un.echo.sequence = htons(7);
  char pkt[sizeof h + 8];
  memcpy(pkt, &h, sizeof h);
  memcpy(pkt + sizeof h, "quarkpng", 8);
  struct sockaddr_in to = {.sin_family = AF_INET};
  inet_pton(AF_INET, dst, &to.sin_addr);
  CHECK_EQ(sendto(s, pkt, sizeof pkt, 0, (struct sockaddr *)&to, sizeof to), (long)sizeof pkt);
  CHECK_EQ(wait_in(s, 5000), 1);
  char b[128];
  struct sockaddr_in from;
  socklen_t fl = sizeof from;
  CHECK_EQ(recvfrom(s, b, sizeof b, 0, (struct sockaddr *)&from, &fl), (long)sizeof pkt);
  struct icmphdr rh;
  memcpy(&rh, b, sizeof rh);
  CHECK_EQ(rh.type, ICMP_ECHOREPLY);
  CHECK_EQ(ntohs(rh.un.echo.sequence), 7);
  CHECK(!memcmp(b + sizeof rh, "quarkpng", 8));
  CHECK_EQ(from.sin_addr.s_addr, to.sin_addr.s_addr);
  close(s);
}

/* A raw ICMP socket (Quark: for CAP_NET_RAW, over a ping socket): an echo
 * reply comes with an IPv4 header, the identifier sent and a valid ICMP
 * checksum. A real raw socket also sees other ICMP messages (on loopback
 * its own request): those are skipped. */
static void rawping_checks(const char *dst)
{
  int s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  CHECK(s >= 0);
  if (s < 0)
    return;
  CHECK_EQ(geti(s, SOL_SOCKET, SO_TYPE), SOCK_RAW);
  struct icmphdr h = {.type = ICMP_ECHO};
  h.un.echo.id = htons(0x4321);
  h.un.echo.sequence = htons(9);
  char pkt[sizeof h + 8];
  memcpy(pkt + sizeof h, "rawquark", 8);
  memcpy(pkt, &h, sizeof h);
  /* A raw socket's sender computes the checksum. */
  uint32_t sum = 0;
  for (size_t i = 0; i < sizeof pkt; i += 2)
    sum += (uint32_t)((uint8_t)pkt[i] | (uint8_t)pkt[i + 1] << 8);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  h.checksum = (uint16_t)~sum;
  memcpy(pkt, &h, sizeof h);
  struct sockaddr_in to = {.sin_family = AF_INET};
  inet_pton(AF_INET, dst, &to.sin_addr);
  CHECK_EQ(sendto(s, pkt, sizeof pkt, 0, (struct sockaddr *)&to, sizeof to), (long)sizeof pkt);
  char b[256];
  int got = 0;
  for (int tries = 0; tries < 4 && !got; tries++) {
    if (wait_in(s, 5000) != 1)
      break;
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(s, b, sizeof b, 0, (struct sockaddr *)&from, &fl);
    if (n < 20 + 8 || (b[0] & 0xf0) != 0x40)
      break;
    int hl = (b[0] & 0xf) * 4;
    struct icmphdr rh;
    memcpy(&rh, b + hl, sizeof rh);
    if (rh.type != ICMP_ECHOREPLY)
      continue;
    got = 1;
    CHECK_EQ(n, hl + (long)sizeof pkt);
    CHECK_EQ(b[9], IPPROTO_ICMP);
    CHECK(!memcmp(b + 12, &to.sin_addr, 4)); /* the IPv4 source */
    CHECK(b[8] > 0);                         /* a TTL */
    CHECK_EQ(ntohs(rh.un.echo.id), 0x4321);
    CHECK_EQ(ntohs(rh.un.echo.sequence), 9);
    CHECK(!memcmp(b + hl + sizeof rh, "rawquark", 8));
    CHECK_EQ(from.sin_addr.s_addr, to.sin_addr.s_addr);
    uint32_t c = 0;
    for (long i = 0; i < n - hl; i += 2)
      c += (uint32_t)((uint8_t)b[hl + i] << 8 | (uint8_t)b[hl + i + 1]);
    while (c >> 16)
      c = (c & 0xffff) + (c >> 16);
    CHECK_EQ(c, 0xffff); /* the checksum holds */
  }
  CHECK_EQ(got, 1);
  close(s);
}

static void ifaddr_checks(const char *extra)
{
  struct ifaddrs *ifa;
  CHECK_EQ(getifaddrs(&ifa), 0);
  int lo = 0, found = 0;
  for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
      continue;
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf, sizeof buf);
    if (!strcmp(i->ifa_name, "lo") && !strcmp(buf, "127.0.0.1"))
      lo++;
    if (extra && !strcmp(buf, extra)) {
      found++;
      CHECK(i->ifa_netmask != NULL);
      CHECK(if_nametoindex(i->ifa_name) > 1);
    }
  }
  freeifaddrs(ifa);
  CHECK_EQ(lo, 1);
  if (extra)
    CHECK_EQ(found, 1);
}

/* ---- control data (ancillary data) on UDP sockets ---- */

static int on1(int s, int level, int name)
{
  int one = 1;
  return setsockopt(s, level, name, &one, sizeof one);
}

/* Turns on each (level, name) option of s and reads it back. */
static void opts_on(int s, const int (*opts)[2], int n)
{
  for (int i = 0; i < n; i++) {
    CHECK_EQ(on1(s, opts[i][0], opts[i][1]), 0);
    CHECK_EQ(geti(s, opts[i][0], opts[i][1]), 1);
  }
}

/* The first record (level, type) of m, or NULL. */
static struct cmsghdr *cmsg_find(struct msghdr *m, int level, int type)
{
  for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c))
    if (c->cmsg_level == level && c->cmsg_type == type)
      return c;
  return NULL;
}

static int cmsg_int(struct msghdr *m, int level, int type)
{
  struct cmsghdr *c = cmsg_find(m, level, type);
  int v = -1;
  if (c && c->cmsg_len == CMSG_LEN(sizeof v))
    memcpy(&v, CMSG_DATA(c), sizeof v);
  return v;
}

/* One datagram from r with a control buffer of clen bytes (its fields
 * in *m; the iovec and address live in statics). */
static ssize_t recv_ctl(int r, void *ctl, size_t clen, struct msghdr *m)
{
  static char buf[4096];
  static struct iovec v;
  static struct sockaddr_storage from;
  v = (struct iovec){buf, sizeof buf};
  *m = (struct msghdr){.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &v,
                       .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = clen};
  if (wait_in(r, 5000) != 1)
    return -2;
  return recvmsg(r, m, 0);
}

/* Appends a record to the control buffer of m (msg_controllen: the bytes
 * used so far). */
static void cmsg_put(struct msghdr *m, int level, int type, const void *data, size_t len)
{
  struct cmsghdr *c = (struct cmsghdr *)((char *)m->msg_control + m->msg_controllen);
  memset(c, 0, CMSG_SPACE(len));
  c->cmsg_level = level;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(len);
  memcpy(CMSG_DATA(c), data, len);
  m->msg_controllen += CMSG_SPACE(len);
}

/* The index of the interface that has IPv4 address a (0: none). */
static unsigned ifindex_of(struct in_addr a)
{
  struct ifaddrs *ifa;
  unsigned idx = 0;
  if (getifaddrs(&ifa) < 0)
    return 0;
  for (struct ifaddrs *i = ifa; i && !idx; i = i->ifa_next)
    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
        ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == a.s_addr)
      idx = if_nametoindex(i->ifa_name);
  freeifaddrs(ifa);
  return idx;
}

static double now_s(void)
{
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The SCM_TIMESTAMP (timeval) or SCM_TIMESTAMPNS (timespec: also two
 * 64-bit fields) record of m: a time since t0 on this clock. */
static void stamp_check(struct msghdr *m, int type, double t0)
{
  struct cmsghdr *c = cmsg_find(m, SOL_SOCKET, type);
  int us = type == SCM_TIMESTAMP;
  CHECK(c && c->cmsg_len == CMSG_LEN(us ? sizeof(struct timeval) : sizeof(struct timespec)));
  int64_t v[2] = {0, 0};
  if (c)
    memcpy(v, CMSG_DATA(c), sizeof v);
  double t = (double)v[0] + (double)v[1] / (us ? 1e6 : 1e9);
  CHECK(t > t0 - 10 && t < now_s() + 10); /* the host's clock is the guest's */
}

/* IPv4: a receiver on 0.0.0.0 with IP_PKTINFO, IP_RECVTOS, IP_RECVTTL and
 * SO_TIMESTAMP; a datagram to dst with TOS/TTL as socket options, then one
 * with IP_TOS, IP_TTL and IP_PKTINFO records choosing the source src. */
static void anc4_checks(const char *dst, const char *src)
{
  int r = socket(AF_INET, SOCK_DGRAM, 0), s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in any = {.sin_family = AF_INET};
  CHECK_EQ(bind(r, (struct sockaddr *)&any, sizeof any), 0);
  static const int opts[][2] = {{IPPROTO_IP, IP_PKTINFO},
                                {IPPROTO_IP, IP_RECVTOS},
                                {IPPROTO_IP, IP_RECVTTL},
                                {SOL_SOCKET, SO_TIMESTAMP}};
  opts_on(r, opts, 4);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port_of(r))};
  struct in_addr sa;
  CHECK_EQ(inet_pton(AF_INET, dst, &to.sin_addr), 1);
  CHECK_EQ(inet_pton(AF_INET, src, &sa), 1);
  int v = 0x10;
  CHECK_EQ(setsockopt(s, IPPROTO_IP, IP_TOS, &v, sizeof v), 0);
  v = 17;
  CHECK_EQ(setsockopt(s, IPPROTO_IP, IP_TTL, &v, sizeof v), 0);
  CHECK_EQ(sendto(s, "opt", 3, 0, (struct sockaddr *)&to, sizeof to), 3);
  _Alignas(struct cmsghdr) char cb[512];
  struct msghdr m;
  double t0 = now_s();
  CHECK_EQ(recv_ctl(r, cb, sizeof cb, &m), 3);
  CHECK_EQ(m.msg_flags & MSG_CTRUNC, 0);
  CHECK(m.msg_controllen > 0 && m.msg_controllen <= sizeof cb);
  struct cmsghdr *c = cmsg_find(&m, IPPROTO_IP, IP_PKTINFO);
  CHECK(c && c->cmsg_len == CMSG_LEN(sizeof(struct in_pktinfo)));
  struct in_pktinfo pi = {0};
  if (c)
    memcpy(&pi, CMSG_DATA(c), sizeof pi);
  CHECK_EQ(pi.ipi_addr.s_addr, to.sin_addr.s_addr);
  CHECK_EQ(pi.ipi_spec_dst.s_addr, to.sin_addr.s_addr);
  /* The interface that has the address (lo for 127.0.0.1, the veth for
   * the pod address), though local delivery goes through lo. */
  CHECK_EQ(pi.ipi_ifindex, ifindex_of(to.sin_addr));
  CHECK(pi.ipi_ifindex > 0);
  c = cmsg_find(&m, IPPROTO_IP, IP_TOS);
  CHECK(c && c->cmsg_len == CMSG_LEN(1) && *CMSG_DATA(c) == 0x10);
  CHECK_EQ(cmsg_int(&m, IPPROTO_IP, IP_TTL), 17);
  stamp_check(&m, SCM_TIMESTAMP, t0);
  /* Per message: TOS with an ECN codepoint, TTL, the source address. */
  _Alignas(struct cmsghdr) char sc[256];
  struct iovec iv = {"msg", 3};
  struct msghdr sm = {.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iv, .msg_iovlen = 1,
                      .msg_control = sc, .msg_controllen = 0};
  v = 0x22;
  cmsg_put(&sm, IPPROTO_IP, IP_TOS, &v, sizeof v);
  v = 33;
  cmsg_put(&sm, IPPROTO_IP, IP_TTL, &v, sizeof v);
  struct in_pktinfo spi = {.ipi_spec_dst = sa};
  cmsg_put(&sm, IPPROTO_IP, IP_PKTINFO, &spi, sizeof spi);
  CHECK_EQ(sendmsg(s, &sm, 0), 3);
  CHECK_EQ(recv_ctl(r, cb, sizeof cb, &m), 3);
  c = cmsg_find(&m, IPPROTO_IP, IP_TOS);
  CHECK(c && *CMSG_DATA(c) == 0x22);
  CHECK_EQ(cmsg_int(&m, IPPROTO_IP, IP_TTL), 33);
  struct sockaddr_in *from = m.msg_name;
  CHECK_EQ(from->sin_addr.s_addr, sa.s_addr);
  CHECK_EQ(m.msg_namelen, sizeof(struct sockaddr_in));
  close(s);
  close(r);
}

/* Short control buffers (MSG_CTRUNC, records cut as Linux cuts them),
 * recvmmsg with control data, refused records. */
static void anc_edge_checks(void)
{
  int r = bound(AF_INET, SOCK_DGRAM, 0), s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in to = lo4(port_of(r));
  CHECK_EQ(on1(r, IPPROTO_IP, IP_PKTINFO), 0);
  CHECK_EQ(on1(r, IPPROTO_IP, IP_RECVTTL), 0);
  for (int i = 0; i < 6; i++)
    CHECK_EQ(sendto(s, "c", 1, 0, (struct sockaddr *)&to, sizeof to), 1);
  usleep(20000);
  _Alignas(struct cmsghdr) char cb[CMSG_SPACE(sizeof(struct in_pktinfo)) + 64];
  struct msghdr m;
  /* Room for the first record only. */
  CHECK_EQ(recv_ctl(r, cb, CMSG_SPACE(sizeof(struct in_pktinfo)), &m), 1);
  CHECK(m.msg_flags & MSG_CTRUNC);
  CHECK_EQ(m.msg_controllen, CMSG_SPACE(sizeof(struct in_pktinfo)));
  CHECK(cmsg_find(&m, IPPROTO_IP, IP_PKTINFO) != NULL);
  CHECK(cmsg_find(&m, IPPROTO_IP, IP_TTL) == NULL);
  /* Room for part of it: the record is cut, cmsg_len says how much. */
  CHECK_EQ(recv_ctl(r, cb, 20, &m), 1);
  CHECK(m.msg_flags & MSG_CTRUNC);
  CHECK_EQ(m.msg_controllen, 20);
  CHECK_EQ(((struct cmsghdr *)cb)->cmsg_len, 20);
  /* Less than a header: nothing. */
  CHECK_EQ(recv_ctl(r, cb, 8, &m), 1);
  CHECK(m.msg_flags & MSG_CTRUNC);
  CHECK_EQ(m.msg_controllen, 0);
  /* No buffer: no records, and MSG_CTRUNC says some were there. */
  CHECK_EQ(recv_ctl(r, NULL, 0, &m), 1);
  CHECK(m.msg_flags & MSG_CTRUNC);
  CHECK_EQ(m.msg_controllen, 0);
  /* recvmmsg: each message its own records. */
  _Alignas(struct cmsghdr) char c2[2][128];
  char b[2][8];
  struct iovec iv[2] = {{b[0], 8}, {b[1], 8}};
  struct mmsghdr mm[2];
  memset(mm, 0, sizeof mm);
  for (int i = 0; i < 2; i++) {
    mm[i].msg_hdr.msg_iov = &iv[i];
    mm[i].msg_hdr.msg_iovlen = 1;
    mm[i].msg_hdr.msg_control = c2[i];
    mm[i].msg_hdr.msg_controllen = sizeof c2[i];
  }
  CHECK_EQ(recvmmsg(r, mm, 2, MSG_DONTWAIT, NULL), 2);
  for (int i = 0; i < 2; i++) {
    CHECK_EQ(mm[i].msg_hdr.msg_flags & MSG_CTRUNC, 0);
    CHECK(cmsg_find(&mm[i].msg_hdr, IPPROTO_IP, IP_PKTINFO) != NULL);
    CHECK_EQ(cmsg_int(&mm[i].msg_hdr, IPPROTO_IP, IP_TTL), 64);
  }
  /* Sending: malformed and unknown records. */
  _Alignas(struct cmsghdr) char sc[128];
  struct iovec one = {"e", 1};
  struct msghdr sm = {.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &one, .msg_iovlen = 1,
                      .msg_control = sc};
  int v = 9;
  sm.msg_controllen = 0;
  cmsg_put(&sm, IPPROTO_IP, IP_TTL, &v, sizeof v);
  ((struct cmsghdr *)sc)->cmsg_len = sm.msg_controllen + 8; /* past the buffer */
  CHECK_EQ(sendmsg(s, &sm, 0), -1);
  CHECK_EQ(errno, EINVAL);
  ((struct cmsghdr *)sc)->cmsg_len = 8; /* shorter than a header */
  CHECK_EQ(sendmsg(s, &sm, 0), -1);
  CHECK_EQ(errno, EINVAL);
  sm.msg_controllen = 0;
  cmsg_put(&sm, IPPROTO_IP, IP_PKTINFO, &v, sizeof v); /* the wrong size */
  CHECK_EQ(sendmsg(s, &sm, 0), -1);
  CHECK_EQ(errno, EINVAL);
  sm.msg_controllen = 0;
  cmsg_put(&sm, IPPROTO_IP, IP_RECVERR, &v, sizeof v); /* not a sending type */
  CHECK_EQ(sendmsg(s, &sm, 0), -1);
  CHECK_EQ(errno, EINVAL);
  sm.msg_controllen = 0;
  v = 0;
  cmsg_put(&sm, IPPROTO_IP, IP_TTL, &v, sizeof v); /* TTL 0 */
  CHECK_EQ(sendmsg(s, &sm, 0), -1);
  CHECK_EQ(errno, EINVAL);
  /* Ignored, as Linux's UDP ignores them: SCM_RIGHTS, another level. */
  sm.msg_controllen = 0;
  cmsg_put(&sm, SOL_SOCKET, SCM_RIGHTS, &r, sizeof r);
  cmsg_put(&sm, 99, 1, &v, sizeof v);
  CHECK_EQ(sendmsg(s, &sm, 0), 1);
  CHECK_EQ(wait_in(r, 5000), 1);
  char x[8];
  CHECK_EQ(recv(r, x, sizeof x, 0), 1);
  /* UDP_SEGMENT: one send, three datagrams; UDP_GRO can be set. */
  char big[3000];
  memset(big, 'g', sizeof big);
  struct iovec bv = {big, sizeof big};
  sm.msg_iov = &bv;
  sm.msg_controllen = 0;
  uint16_t gso = 1000;
  cmsg_put(&sm, SOL_UDP, UDP_SEGMENT, &gso, sizeof gso);
  CHECK_EQ(sendmsg(s, &sm, 0), 3000);
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(wait_in(r, 5000), 1);
    CHECK_EQ(recv(r, big, sizeof big, 0), 1000);
  }
  v = 1000;
  CHECK_EQ(setsockopt(s, SOL_UDP, UDP_SEGMENT, &v, sizeof v), 0);
  CHECK_EQ(geti(s, SOL_UDP, UDP_SEGMENT), 1000);
  CHECK_EQ(on1(r, SOL_UDP, UDP_GRO), 0);
  CHECK_EQ(geti(r, SOL_UDP, UDP_GRO), 1);
  close(s);
  close(r);
}

/* IPv6: IPV6_RECVPKTINFO, IPV6_RECVTCLASS, IPV6_RECVHOPLIMIT and
 * SO_TIMESTAMPNS; IPV6_TCLASS, IPV6_HOPLIMIT and IPV6_PKTINFO sent. */
static void anc6_checks(void)
{
  int r = socket(AF_INET6, SOCK_DGRAM, 0);
  struct sockaddr_in6 any = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
  if (r < 0 || bind(r, (struct sockaddr *)&any, sizeof any) < 0) {
    printf("skip: no IPv6 for the control data checks\n");
    if (r >= 0)
      close(r);
    return;
  }
  int s = socket(AF_INET6, SOCK_DGRAM, 0);
  static const int opts[][2] = {{IPPROTO_IPV6, IPV6_RECVPKTINFO},
                                {IPPROTO_IPV6, IPV6_RECVTCLASS},
                                {IPPROTO_IPV6, IPV6_RECVHOPLIMIT},
                                {SOL_SOCKET, SO_TIMESTAMPNS}};
  opts_on(r, opts, 4);
  struct sockaddr_in6 to = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port_of(r)),
                            .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  _Alignas(struct cmsghdr) char sc[256], cb[512];
  struct iovec iv = {"six", 3};
  struct msghdr sm = {.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iv, .msg_iovlen = 1,
                      .msg_control = sc, .msg_controllen = 0};
  int v = 0x22;
  cmsg_put(&sm, IPPROTO_IPV6, IPV6_TCLASS, &v, sizeof v);
  v = 7;
  cmsg_put(&sm, IPPROTO_IPV6, IPV6_HOPLIMIT, &v, sizeof v);
  struct in6_pktinfo spi = {.ipi6_addr = IN6ADDR_LOOPBACK_INIT};
  cmsg_put(&sm, IPPROTO_IPV6, IPV6_PKTINFO, &spi, sizeof spi);
  double t0 = now_s();
  CHECK_EQ(sendmsg(s, &sm, 0), 3);
  struct msghdr m;
  CHECK_EQ(recv_ctl(r, cb, sizeof cb, &m), 3);
  CHECK_EQ(m.msg_flags & MSG_CTRUNC, 0);
  struct cmsghdr *c = cmsg_find(&m, IPPROTO_IPV6, IPV6_PKTINFO);
  CHECK(c && c->cmsg_len == CMSG_LEN(sizeof(struct in6_pktinfo)));
  struct in6_pktinfo pi;
  memset(&pi, 0, sizeof pi);
  if (c)
    memcpy(&pi, CMSG_DATA(c), sizeof pi);
  CHECK(IN6_IS_ADDR_LOOPBACK(&pi.ipi6_addr));
  CHECK_EQ(pi.ipi6_ifindex, if_nametoindex("lo"));
  CHECK_EQ(cmsg_int(&m, IPPROTO_IPV6, IPV6_TCLASS), 0x22);
  CHECK_EQ(cmsg_int(&m, IPPROTO_IPV6, IPV6_HOPLIMIT), 7);
  stamp_check(&m, SCM_TIMESTAMPNS, t0);
  struct sockaddr_in6 *from = m.msg_name;
  CHECK(IN6_IS_ADDR_LOOPBACK(&from->sin6_addr));
  /* The socket options instead of records. */
  v = 0x48;
  CHECK_EQ(setsockopt(s, IPPROTO_IPV6, IPV6_TCLASS, &v, sizeof v), 0);
  v = 5;
  CHECK_EQ(setsockopt(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &v, sizeof v), 0);
  CHECK_EQ(sendto(s, "opt", 3, 0, (struct sockaddr *)&to, sizeof to), 3);
  CHECK_EQ(recv_ctl(r, cb, sizeof cb, &m), 3);
  CHECK_EQ(cmsg_int(&m, IPPROTO_IPV6, IPV6_TCLASS), 0x48);
  CHECK_EQ(cmsg_int(&m, IPPROTO_IPV6, IPV6_HOPLIMIT), 5);
  /* A record of the wrong size is refused. */
  sm.msg_controllen = 0;
  cmsg_put(&sm, IPPROTO_IPV6, IPV6_PKTINFO, &v, sizeof v);
  CHECK_EQ(sendmsg(s, &sm, 0), -1);
  CHECK_EQ(errno, EINVAL);
  close(s);
  close(r);
}

static void anc_checks(const char *extra)
{
  anc4_checks("127.0.0.1", "127.0.0.9");
  if (extra) {
    anc4_checks(extra, extra);
    anc4_checks("127.0.0.1", extra); /* the pod address chosen as the source */
  }
  anc_edge_checks();
  anc6_checks();
}

/* ancloop N CTL: N datagrams over loopback, each taken by recvmsg with
 * (CTL 1: IP_PKTINFO, IP_TTL and SO_TIMESTAMP records into a 256-byte
 * buffer) or without control data; run under --stats for the cost. */
static void anc_loop(int n, int ctl)
{
  int r = bound(AF_INET, SOCK_DGRAM, 0), s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in to = lo4(port_of(r));
  if (ctl) {
    static const int opts[][2] = {
        {IPPROTO_IP, IP_PKTINFO}, {IPPROTO_IP, IP_RECVTTL}, {SOL_SOCKET, SO_TIMESTAMP}};
    opts_on(r, opts, 3);
  }
  _Alignas(struct cmsghdr) char cb[256];
  struct msghdr m;
  int bad = 0;
  for (int i = 0; i < n; i++) {
    bad += sendto(s, "l", 1, 0, (struct sockaddr *)&to, sizeof to) != 1;
    bad += recv_ctl(r, ctl ? cb : NULL, ctl ? sizeof cb : 0, &m) != 1;
    bad += ctl && !cmsg_find(&m, IPPROTO_IP, IP_PKTINFO);
  }
  CHECK_EQ(bad, 0);
  close(s);
  close(r);
}

/* Where Quark answers differently from Linux, on purpose (README). */
static void quark_checks(void)
{
  CHECK_EQ(RS3(SYS_socket, AF_INET, SOCK_RAW, IPPROTO_ICMP), -EPERM);
  CHECK_EQ(RS3(SYS_socket, AF_INET6, SOCK_RAW, IPPROTO_ICMPV6), -EPERM);
  CHECK_EQ(RS3(SYS_socket, AF_PACKET, SOCK_RAW, 0), -EPERM);
  CHECK_EQ(RS3(SYS_socket, AF_INET, SOCK_DGRAM, IPPROTO_TCP), -EPROTONOSUPPORT);
  CHECK_EQ(RS3(SYS_socket, AF_INET6, SOCK_DGRAM, IPPROTO_ICMP), -EPROTONOSUPPORT);
  CHECK_EQ(RS3(SYS_socket, 5 /* AF_APPLETALK */, SOCK_DGRAM, 0), -EAFNOSUPPORT);
  int p[2];
  CHECK_EQ(pipe(p), 0);
  /* splice and tee as Linux (tests/integration/guest_splice has the rest):
   * EBADF for bad descriptors, EINVAL for one pipe at both ends. */
  CHECK_EQ(RS6(SYS_splice, p[0], 0, p[1], 0, 0, 0), 0);
  CHECK_EQ(RS6(SYS_splice, 999, 0, p[1], 0, 1, 0), -EBADF);
  CHECK_EQ(RS6(SYS_splice, p[1], 0, p[0], 0, 1, 0), -EBADF);
  CHECK_EQ(RS6(SYS_splice, p[0], 0, p[1], 0, 1, 0), -EINVAL);
  CHECK_EQ(RS4(SYS_tee, p[0], p[1], 1, 0), -EINVAL);
  close(p[0]);
  close(p[1]);
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IONBF, 0);
  signal(SIGPIPE, SIG_IGN);
  const char *mode = argc > 1 ? argv[1] : "checks";
  if (!strcmp(mode, "rawping")) {
    rawping_checks(argc > 2 ? argv[2] : "127.0.0.1");
    return t_done("t_netaudit rawping");
  }
  if (!strcmp(mode, "ancloop")) {
    anc_loop(argc > 2 ? atoi(argv[2]) : 100, argc > 3 && atoi(argv[3]));
    return t_done("t_netaudit ancloop");
  }
  if (!strcmp(mode, "quark")) {
    quark_checks();
    return t_done("t_netaudit quark");
  }
  const char *extra = argc > 2 && *argv[2] ? argv[2] : NULL;
  mmsg_checks();
  udp_checks();
  tcp_checks();
  option_checks();
  icmp_checks("127.0.0.1");
  if (extra)
    icmp_checks(extra);
  ifaddr_checks(extra);
  anc_checks(extra);
  return t_done("t_netaudit checks");
}
