/* Socket tests and peers for the guest socket layer. The same static
 * binary runs inside quark-sandbox and natively on the host (as the peer,
 * and as the native baseline of the benchmarks).
 *   t_net self                  single-process checks on 127.0.0.1
 *   t_net fuzz [N]              N calls with random arguments
 *   t_net netlink               route netlink and interface ioctls (an unjailed sandbox)
 *   t_net serve PORT N          TCP echo server for N connections
 *   t_net client PORT MSG       TCP client: sends MSG, half-closes, prints the echo
 *   t_net udpserve PORT N       UDP echo of N datagrams
 *   t_net udpclient PORT MSG    UDP client: prints the echo
 *   t_net rr-server PORT        request/response peer (echo, one connection)
 *   t_net rr-client PORT N SIZE N round trips of SIZE bytes: prints us per trip
 *   t_net bulk-server PORT [KIB] reads until EOF in KIB KiB reads (64), answers the byte count
 *   t_net bulk-client PORT MIB  sends MIB MiB: prints MiB/s
 *   t_net conn-server PORT [N]  accepts and closes N connections (default: until killed)
 *   t_net conn-client PORT N    N connect+close (after one byte back): prints conn/s
 * Servers bind 127.0.0.1, or every address with T_NET_ANY set. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stddef.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../guest/progs/t.h"

static struct sockaddr_in lo(int port)
{
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static int listener(int type, int port)
{
  int s = socket(AF_INET, type, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = lo(port);
  if (getenv("T_NET_ANY")) /* servers in a pod: every address of the pod */
    a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) {
    perror("bind");
    exit(2);
  }
  if (type == SOCK_STREAM && listen(s, 16) < 0) {
    perror("listen");
    exit(2);
  }
  return s;
}

static int port_of(int s)
{
  struct sockaddr_in a;
  socklen_t l = sizeof a;
  getsockname(s, (struct sockaddr *)&a, &l);
  return ntohs(a.sin_port);
}

static int dial(int port)
{
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = lo(port);
  for (int i = 0; i < 200; i++) { /* the peer may still be starting */
    if (connect(s, (struct sockaddr *)&a, sizeof a) == 0)
      return s;
    close(s);
    usleep(20000);
    s = socket(AF_INET, SOCK_STREAM, 0);
  }
  perror("connect");
  exit(2);
}

static int read_full(int s, char *b, size_t n)
{
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(s, b + got, n - got);
    if (r <= 0)
      return -1;
    got += (size_t)r;
  }
  return 0;
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static volatile sig_atomic_t got_usr1;
static void on_usr1(int sig)
{
  (void)sig;
  got_usr1 = 1;
}

/* sendmsg with data "d" and the files fds[0..n) (n 0: none). */
static ssize_t send_fds(int s, const char *d, const int *fds, int n)
{
  char cbuf[CMSG_SPACE(4 * 8)];
  struct iovec v = {(void *)d, strlen(d)};
  struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
  if (n) {
    m.msg_control = cbuf;
    m.msg_controllen = CMSG_SPACE(4 * n);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(4 * n);
    memcpy(CMSG_DATA(c), fds, 4 * n);
  }
  return sendmsg(s, &m, 0);
}

/* recvmsg into buf; the files received go to fds (max *n, *n becomes the
 * count), *flags gets msg_flags. */
static ssize_t recv_fds(int s, char *buf, size_t len, size_t ctl, int *fds, int *n, int *flags)
{
  char cbuf[512];
  struct iovec v = {buf, len};
  struct msghdr m = {
      .msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl ? cbuf : NULL, .msg_controllen = ctl};
  ssize_t r = recvmsg(s, &m, MSG_CMSG_CLOEXEC);
  int got = 0;
  for (struct cmsghdr *c = ctl ? CMSG_FIRSTHDR(&m) : NULL; c; c = CMSG_NXTHDR(&m, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / 4 && got < *n; i++)
        memcpy(&fds[got++], CMSG_DATA(c) + 4 * i, 4);
  *n = got;
  *flags = m.msg_flags;
  if (r > 0)
    buf[r < (ssize_t)len ? r : (ssize_t)len - 1] = 0;
  return r;
}

/* SCM_RIGHTS, SCM_CREDENTIALS, SO_PASSCRED and SO_PEERCRED on guest unix
 * stream sockets, within a process and between processes. */
static void unix_scm_tests(void)
{
  int sv[2], p[2], fds[4], n, fl;
  char buf[64];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  CHECK_EQ(pipe(p), 0);
  /* Two files across: the received write end feeds the original read end. */
  CHECK_EQ(send_fds(sv[0], "x", p, 2), 1);
  n = 4;
  CHECK_EQ(recv_fds(sv[1], buf, sizeof buf, 512, fds, &n, &fl), 1);
  CHECK_EQ(n, 2);
  CHECK_EQ(fl & MSG_CTRUNC, 0);
  CHECK(fds[0] != p[0] && fds[1] != p[1]);
  CHECK_EQ(fcntl(fds[0], F_GETFD), FD_CLOEXEC); /* MSG_CMSG_CLOEXEC */
  CHECK_EQ(write(fds[1], "via-fd", 6), 6);
  CHECK_EQ(read(p[0], buf, sizeof buf), 6);
  close(fds[0]);
  close(fds[1]);
  /* Boundaries as on Linux: a read that takes the bytes of a send with
   * files gets the files and ends with that send. */
  CHECK_EQ(write(sv[0], "aaa", 3), 3);
  CHECK_EQ(send_fds(sv[0], "bb", p, 1), 2);
  CHECK_EQ(send_fds(sv[0], "cc", p + 1, 1), 2);
  CHECK_EQ(write(sv[0], "ddd", 3), 3);
  n = 4;
  CHECK_EQ(recv_fds(sv[1], buf, sizeof buf, 512, fds, &n, &fl), 5);
  CHECK_EQ(n, 1);
  CHECK(!strcmp(buf, "aaabb"));
  if (n == 1) {
    struct stat a, b;
    CHECK(fstat(fds[0], &a) == 0 && fstat(p[0], &b) == 0 && a.st_ino == b.st_ino);
    close(fds[0]);
  }
  n = 4;
  CHECK_EQ(recv_fds(sv[1], buf, 1, 512, fds, &n, &fl), 1); /* a short buffer */
  CHECK_EQ(n, 1);
  close(fds[0]);
  n = 4;
  CHECK_EQ(recv_fds(sv[1], buf, sizeof buf, 512, fds, &n, &fl), 4);
  CHECK_EQ(n, 0);
  CHECK(!strcmp(buf, "cddd"));
  /* No room for the files: MSG_CTRUNC, they are closed. */
  CHECK_EQ(send_fds(sv[0], "t", p, 2), 1);
  n = 4;
  CHECK_EQ(recv_fds(sv[1], buf, sizeof buf, CMSG_LEN(4), fds, &n, &fl), 1);
  CHECK_EQ(n, 1);
  CHECK(fl & MSG_CTRUNC);
  close(fds[0]);
  /* read() drops them. */
  CHECK_EQ(send_fds(sv[0], "r", p, 1), 1);
  CHECK_EQ(read(sv[1], buf, sizeof buf), 1);
  /* Errors: a bad fd, a cut header, control data on a TCP socket. */
  int bad = 999;
  CHECK_EQ(send_fds(sv[0], "e", &bad, 1), -1);
  CHECK_EQ(errno, EBADF);
  char cb[CMSG_SPACE(4)];
  struct iovec v = {"e", 1};
  struct msghdr m = {
      .msg_iov = &v, .msg_iovlen = 1, .msg_control = cb, .msg_controllen = sizeof cb};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = sizeof cb + 8;
  CHECK_EQ(sendmsg(sv[0], &m, 0), -1);
  CHECK_EQ(errno, EINVAL);
  int t = socket(AF_INET, SOCK_STREAM, 0);
  c->cmsg_len = CMSG_LEN(4);
  memcpy(CMSG_DATA(c), &p[0], 4);
  CHECK_EQ(sendmsg(t, &m, 0), -1);
  CHECK_EQ(errno, EPIPE); /* as Linux: TCP ignores SCM_RIGHTS; not connected */
  close(t);
  /* Credentials: SO_PEERCRED, SO_PASSCRED, an explicit SCM_CREDENTIALS
   * (only one's own). */
  struct ucred uc;
  socklen_t ul = sizeof uc;
  CHECK_EQ(getsockopt(sv[1], SOL_SOCKET, SO_PEERCRED, &uc, &ul), 0);
  CHECK_EQ(uc.pid, getpid());
  CHECK_EQ(uc.uid, geteuid());
  int one = 1;
  CHECK_EQ(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one), 0);
  int on = 0;
  socklen_t ol = sizeof on;
  CHECK_EQ(getsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, &ol), 0);
  CHECK_EQ(on, 1);
  CHECK_EQ(write(sv[0], "k", 1), 1);
  char cbuf[128];
  struct iovec rv = {buf, sizeof buf};
  struct msghdr rm = {
      .msg_iov = &rv, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  CHECK_EQ(recvmsg(sv[1], &rm, 0), 1);
  struct cmsghdr *rc = CMSG_FIRSTHDR(&rm);
  CHECK(rc && rc->cmsg_type == SCM_CREDENTIALS);
  if (rc) {
    memcpy(&uc, CMSG_DATA(rc), sizeof uc);
    CHECK_EQ(uc.pid, getpid());
    CHECK_EQ(uc.gid, getegid());
  }
  struct ucred mine = {getpid(), geteuid(), getegid()},
               other = {getpid() + 1000, geteuid(), getegid()};
  char ccb[CMSG_SPACE(sizeof(struct ucred))];
  struct msghdr cm = {
      .msg_iov = &v, .msg_iovlen = 1, .msg_control = ccb, .msg_controllen = sizeof ccb};
  struct cmsghdr *cc = CMSG_FIRSTHDR(&cm);
  cc->cmsg_level = SOL_SOCKET;
  cc->cmsg_type = SCM_CREDENTIALS;
  cc->cmsg_len = CMSG_LEN(sizeof(struct ucred));
  memcpy(CMSG_DATA(cc), &other, sizeof other);
  CHECK_EQ(sendmsg(sv[0], &cm, 0), -1);
  CHECK_EQ(errno, EPERM);
  memcpy(CMSG_DATA(cc), &mine, sizeof mine);
  CHECK_EQ(sendmsg(sv[0], &cm, 0), 1);
  CHECK_EQ(read(sv[1], buf, sizeof buf), 1);
  close(sv[0]);
  close(sv[1]);
  /* Between processes: a child sends the read end of its own pipe. */
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  pid_t kid = fork();
  if (kid == 0) {
    int q[2];
    if (pipe(q) || send_fds(sv[1], "f", q, 1) != 1 || write(q[1], "from-child", 10) != 10)
      _exit(1);
    _exit(0);
  }
  n = 4;
  CHECK_EQ(recv_fds(sv[0], buf, sizeof buf, 512, fds, &n, &fl), 1);
  CHECK_EQ(n, 1);
  int st = -1;
  CHECK_EQ(waitpid(kid, &st, 0), kid);
  CHECK_EQ(st, 0);
  memset(buf, 0, sizeof buf);
  CHECK_EQ(read(fds[0], buf, sizeof buf), 10);
  CHECK(!strcmp(buf, "from-child"));
  close(fds[0]);
  close(sv[0]);
  close(sv[1]);
  close(p[0]);
  close(p[1]);
}

/* socketpair(AF_UNIX, SOCK_DGRAM / SOCK_SEQPACKET): message boundaries,
 * truncation, files with a message, the end of a seqpacket peer. */
static void unix_msg_tests(void)
{
  int types[2] = {SOCK_DGRAM, SOCK_SEQPACKET};
  for (int ti = 0; ti < 2; ti++) {
    int sv[2], p[2], fds[4], n, fl, ty = 0;
    char buf[64];
    socklen_t tl = sizeof ty;
    CHECK_EQ(socketpair(AF_UNIX, types[ti], 0, sv), 0);
    CHECK_EQ(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &ty, &tl), 0);
    CHECK_EQ(ty, types[ti]);
    CHECK_EQ(write(sv[0], "one", 3), 3);
    CHECK_EQ(write(sv[0], "two!", 4), 4);
    CHECK_EQ(send(sv[0], "", 0, 0), 0); /* an empty message is one too */
    int q = 0;
    CHECK_EQ(ioctl(sv[1], FIONREAD, &q), 0);
    /* Linux: a datagram socket's next message, a seqpacket's queued bytes */
    CHECK_EQ(q, types[ti] == SOCK_DGRAM ? 3 : 7);
    CHECK_EQ(read(sv[1], buf, sizeof buf), 3);
    CHECK_EQ(recv(sv[1], buf, 2, 0), 2); /* the rest of "two!" is gone */
    CHECK_EQ(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), 0);
    CHECK_EQ(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), -1);
    CHECK_EQ(errno, EAGAIN);
    struct iovec v = {buf, 2};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
    CHECK_EQ(write(sv[1], "abcdef", 6), 6);
    CHECK_EQ(recvmsg(sv[0], &m, 0), 2);
    CHECK(m.msg_flags & MSG_TRUNC);
    CHECK_EQ(write(sv[1], "abcdef", 6), 6);
    CHECK_EQ(recv(sv[0], buf, 2, MSG_TRUNC), 6); /* the real length */
    struct pollfd pf = {sv[1], POLLIN | POLLOUT, 0};
    CHECK_EQ(poll(&pf, 1, 0), 1);
    CHECK_EQ(pf.revents, POLLOUT);
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(send_fds(sv[0], "fd", p, 1), 2);
    n = 4;
    CHECK_EQ(recv_fds(sv[1], buf, sizeof buf, 512, fds, &n, &fl), 2);
    CHECK_EQ(n, 1);
    if (n == 1) {
      CHECK_EQ(write(p[1], "z", 1), 1);
      CHECK_EQ(read(fds[0], buf, 1), 1);
      close(fds[0]);
    }
    close(p[0]);
    close(p[1]);
    close(sv[1]);
    if (types[ti] == SOCK_SEQPACKET) {
      CHECK_EQ(read(sv[0], buf, sizeof buf), 0); /* the peer is gone */
      CHECK_EQ(send(sv[0], "x", 1, MSG_NOSIGNAL), -1);
      CHECK_EQ(errno, EPIPE);
    } else {
      CHECK_EQ(send(sv[0], "x", 1, 0), -1);
      CHECK_EQ(errno, ECONNREFUSED);
    }
    close(sv[0]);
  }
}

static void self_tests(void)
{
  /* TCP: listen, non-blocking connect + poll, accept, names. */
  int l = listener(SOCK_STREAM, 0);
  int port = port_of(l);
  CHECK(port > 0);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  CHECK(c >= 0);
  struct sockaddr_in a = lo(port);
  int r = connect(c, (struct sockaddr *)&a, sizeof a);
  CHECK(r == 0 || errno == EINPROGRESS);
  struct pollfd p = {c, POLLOUT, 0};
  CHECK_EQ(poll(&p, 1, 5000), 1);
  CHECK(p.revents & POLLOUT);
  int err = -1;
  socklen_t el = sizeof err;
  CHECK_EQ(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el), 0);
  CHECK_EQ(err, 0);
  struct pollfd pl = {l, POLLIN, 0};
  CHECK_EQ(poll(&pl, 1, 5000), 1);
  struct sockaddr_in peer;
  socklen_t pl2 = sizeof peer;
  int s = accept4(l, (struct sockaddr *)&peer, &pl2, SOCK_CLOEXEC);
  CHECK(s >= 0);
  CHECK_EQ(pl2, sizeof peer);
  CHECK_EQ(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  struct sockaddr_in me, them;
  socklen_t ml = sizeof me, tl = sizeof them;
  CHECK_EQ(getsockname(c, (struct sockaddr *)&me, &ml), 0);
  CHECK_EQ(getpeername(c, (struct sockaddr *)&them, &tl), 0);
  CHECK_EQ(ntohs(them.sin_port), port);
  CHECK_EQ(me.sin_port, peer.sin_port);
  int fl = fcntl(c, F_GETFL);
  CHECK(fl & O_NONBLOCK);
  struct stat st;
  CHECK_EQ(fstat(s, &st), 0);
  CHECK(S_ISSOCK(st.st_mode));

  /* Options. */
  int one = 1, v = 0;
  socklen_t vl = sizeof v;
  CHECK_EQ(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
  CHECK_EQ(getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, &vl), 0);
  CHECK(v != 0);
  vl = sizeof v;
  CHECK_EQ(getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &vl), 0);
  CHECK_EQ(v, SOCK_STREAM);
  CHECK_EQ(setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one), 0);
  int idle = 30;
  CHECK_EQ(setsockopt(s, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle), 0);
  int big = 1 << 16;
  CHECK_EQ(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &big, sizeof big), 0);
  struct linger lg = {1, 0};
  CHECK_EQ(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  lg.l_onoff = 0;
  CHECK_EQ(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  CHECK_EQ(setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3), -1);
  CHECK_EQ(errno, ENOPROTOOPT);

  /* Data: read/write, MSG_PEEK, FIONREAD, writev/readv, sendmsg/recvmsg. */
  CHECK_EQ(write(c, "hello", 5), 5);
  char buf[64] = {0};
  p = (struct pollfd){s, POLLIN, 0};
  CHECK_EQ(poll(&p, 1, 5000), 1);
  int avail = 0;
  CHECK_EQ(ioctl(s, FIONREAD, &avail), 0);
  CHECK_EQ(avail, 5);
  CHECK_EQ(recv(s, buf, 3, MSG_PEEK), 3);
  CHECK(!memcmp(buf, "hel", 3));
  CHECK_EQ(recv(s, buf, sizeof buf, 0), 5);
  CHECK(!memcmp(buf, "hello", 5));
  CHECK_EQ(recv(s, buf, sizeof buf, MSG_DONTWAIT), -1);
  CHECK_EQ(errno, EAGAIN);
  CHECK_EQ(read(c, buf, sizeof buf), -1); /* c is non-blocking */
  CHECK_EQ(errno, EAGAIN);
  struct iovec iv[3] = {{"ab", 2}, {"", 0}, {"cde", 3}};
  struct msghdr m = {.msg_iov = iv, .msg_iovlen = 3};
  CHECK_EQ(sendmsg(s, &m, MSG_NOSIGNAL), 5);
  char x1[2], x2[10];
  struct iovec ov[2] = {{x1, 2}, {x2, 10}};
  struct msghdr mr = {.msg_iov = ov, .msg_iovlen = 2};
  p = (struct pollfd){c, POLLIN, 0};
  CHECK_EQ(poll(&p, 1, 5000), 1);
  CHECK_EQ(recvmsg(c, &mr, MSG_WAITALL), 5);
  CHECK(!memcmp(x1, "ab", 2) && !memcmp(x2, "cde", 3));
  /* MSG_WAITALL on a blocking socket gathers two writes. */
  int fl2 = fcntl(c, F_GETFL);
  fcntl(c, F_SETFL, fl2 & ~O_NONBLOCK);
  CHECK_EQ(write(s, "12", 2), 2);
  CHECK_EQ(write(s, "34", 2), 2);
  CHECK_EQ(recv(c, buf, 4, MSG_WAITALL), 4);
  CHECK(!memcmp(buf, "1234", 4));
  int nb = 1;
  CHECK_EQ(ioctl(c, FIONBIO, &nb), 0);
  CHECK(fcntl(c, F_GETFL) & O_NONBLOCK);

  /* SO_RCVTIMEO on a blocking socket: EAGAIN after the timeout. */
  struct timeval rt = {0, 100000}, rt2;
  socklen_t rtl = sizeof rt2;
  CHECK_EQ(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &rt, sizeof rt), 0);
  CHECK_EQ(getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &rt2, &rtl), 0);
  CHECK_EQ(rt2.tv_usec, 100000);
  double t0 = now_s();
  CHECK_EQ(recv(s, buf, sizeof buf, 0), -1);
  CHECK_EQ(errno, EAGAIN);
  double waited = now_s() - t0;
  CHECK(waited > 0.08 && waited < 2.0);

  /* Half-close: the peer reads EOF, and can still send. */
  CHECK_EQ(shutdown(c, SHUT_WR), 0);
  p = (struct pollfd){s, POLLIN, 0};
  CHECK_EQ(poll(&p, 1, 5000), 1);
  p = (struct pollfd){s, POLLIN | POLLRDHUP, 0};
  CHECK_EQ(poll(&p, 1, 0), 1);
  CHECK(p.revents & POLLRDHUP);
  CHECK_EQ(read(s, buf, sizeof buf), 0);
  CHECK_EQ(write(s, "late", 4), 4);
  p = (struct pollfd){c, POLLIN, 0};
  CHECK_EQ(poll(&p, 1, 5000), 1);
  CHECK_EQ(read(c, buf, sizeof buf), 4);
  /* After the peer closes: EPIPE with MSG_NOSIGNAL. */
  close(c);
  usleep(20000);
  send(s, "x", 1, MSG_NOSIGNAL);
  usleep(20000);
  r = (int)send(s, "x", 1, MSG_NOSIGNAL);
  CHECK(r == -1 && (errno == EPIPE || errno == ECONNRESET));
  close(s);

  /* select on a listening socket with nothing pending: times out. */
  fd_set rs_;
  FD_ZERO(&rs_);
  FD_SET(l, &rs_);
  struct timeval tv = {0, 50000};
  CHECK_EQ(select(l + 1, &rs_, NULL, NULL, &tv), 0);

  /* Refused connect: EINPROGRESS or ECONNREFUSED, then SO_ERROR. */
  close(l);
  c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  a = lo(port);
  r = connect(c, (struct sockaddr *)&a, sizeof a);
  if (r < 0 && errno == EINPROGRESS) {
    p = (struct pollfd){c, POLLOUT, 0};
    CHECK_EQ(poll(&p, 1, 5000), 1);
    el = sizeof err;
    CHECK_EQ(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el), 0);
    CHECK_EQ(err, ECONNREFUSED);
  } else {
    CHECK_EQ(errno, ECONNREFUSED);
  }
  close(c);
  /* Blocking refused connect. */
  c = socket(AF_INET, SOCK_STREAM, 0);
  CHECK_EQ(connect(c, (struct sockaddr *)&a, sizeof a), -1);
  CHECK_EQ(errno, ECONNREFUSED);
  close(c);

  /* UDP to itself: sendto/recvfrom with addresses, truncation. */
  int u = listener(SOCK_DGRAM, 0);
  int up = port_of(u);
  int u2 = socket(AF_INET, SOCK_DGRAM, 0);
  a = lo(up);
  CHECK_EQ(sendto(u2, "datagram", 8, 0, (struct sockaddr *)&a, sizeof a), 8);
  struct sockaddr_in from;
  socklen_t fl3 = sizeof from;
  CHECK_EQ(recvfrom(u, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl3), 8);
  CHECK_EQ(fl3, sizeof from);
  CHECK_EQ(from.sin_port, htons((uint16_t)port_of(u2)));
  CHECK_EQ(sendto(u2, "truncated", 9, 0, (struct sockaddr *)&a, sizeof a), 9);
  char small[4];
  struct iovec siv = {small, 4};
  struct msghdr ms = {.msg_iov = &siv, .msg_iovlen = 1};
  CHECK_EQ(recvmsg(u, &ms, 0), 4);
  CHECK(ms.msg_flags & MSG_TRUNC);
  close(u);
  close(u2);

  /* Bad pointers and lengths: errors, never a crash. Then Quark's refusals
   * (a native run differs from here on). */
  int t = socket(AF_INET, SOCK_STREAM, 0);
  CHECK_EQ(rs(SYS_bind, t, 16, sizeof a, 0, 0, 0), -EFAULT);
  CHECK_EQ(rs(SYS_bind, t, (long)&a, 100000, 0, 0, 0), -EINVAL);
  CHECK_EQ(rs(SYS_connect, t, (long)0xdead0000, sizeof a, 0, 0, 0), -EFAULT);
  CHECK_EQ(rs(SYS_getsockname, t, 16, 16, 0, 0, 0), -EFAULT);
  CHECK_EQ(rs(SYS_setsockopt, t, SOL_SOCKET, SO_REUSEADDR, 8, 4, 0), -EFAULT);
  CHECK_EQ(rs(SYS_getsockopt, t, SOL_SOCKET, SO_TYPE, (long)buf, 8, 0), -EFAULT);
  r = (int)rs(SYS_sendto, t, 8, 10, 0, 0, 0);
  CHECK(r == -EFAULT || r == -EPIPE); /* Linux looks at the state first */
  CHECK_EQ(rs(SYS_recvmsg, t, 8, 0, 0, 0, 0), -EFAULT);
  CHECK_EQ(rs(SYS_socket, AF_UNIX, 6 /* SOCK_DCCP */, 0, 0, 0, 0), -ESOCKTNOSUPPORT);
  int dv[2];
  CHECK_EQ(rs(SYS_socketpair, AF_UNIX, 6 /* SOCK_DCCP */, 0, (long)dv, 0, 0), -ESOCKTNOSUPPORT);
  CHECK_EQ(rs(SYS_socketpair, AF_INET, SOCK_STREAM, 0, (long)dv, 0, 0), -EOPNOTSUPP);
  CHECK_EQ(rs(SYS_socket, AF_NETLINK, SOCK_RAW, 0, 0, 0, 0), -EAFNOSUPPORT);
  CHECK_EQ(rs(SYS_socket, AF_INET, SOCK_RAW, IPPROTO_UDP, 0, 0, 0), -EPERM); /* raw ICMP: t_netaudit */
  CHECK_EQ(rs(SYS_socket, AF_PACKET, SOCK_RAW, 0, 0, 0, 0), -EPERM);
  CHECK_EQ(rs(SYS_listen, 0, 1, 0, 0, 0, 0), -ENOTSOCK);
  CHECK_EQ(rs(SYS_accept, 999, 0, 0, 0, 0, 0), -EBADF);
  close(t);

  /* IPv6 on ::1 with IPV6_V6ONLY (where the host has IPv6). */
  int l6 = socket(AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  if (l6 >= 0)
    CHECK_EQ(setsockopt(l6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one), 0);
  if (l6 >= 0 && bind(l6, (struct sockaddr *)&a6, sizeof a6) == 0) {
    vl = sizeof v;
    CHECK_EQ(getsockopt(l6, IPPROTO_IPV6, IPV6_V6ONLY, &v, &vl), 0);
    CHECK_EQ(v, 1);
    CHECK_EQ(listen(l6, 4), 0);
    socklen_t l6len = sizeof a6;
    CHECK_EQ(getsockname(l6, (struct sockaddr *)&a6, &l6len), 0);
    int c6 = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK_EQ(connect(c6, (struct sockaddr *)&a6, sizeof a6), 0);
    struct sockaddr_in6 p6;
    socklen_t p6len = sizeof p6;
    int s6 = accept(l6, (struct sockaddr *)&p6, &p6len);
    CHECK(s6 >= 0);
    CHECK_EQ(p6.sin6_family, AF_INET6);
    CHECK_EQ(p6len, sizeof p6);
    CHECK_EQ(write(c6, "v6", 2), 2);
    CHECK_EQ(read(s6, buf, sizeof buf), 2);
    close(s6);
    close(c6);
  } else {
    printf("skip: no IPv6 loopback\n");
  }
  if (l6 >= 0)
    close(l6);

  /* AF_UNIX stream pairs (served in the guest). */
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  CHECK_EQ(write(sv[0], "abc", 3), 3);
  p = (struct pollfd){sv[1], POLLIN, 0};
  CHECK_EQ(poll(&p, 1, 1000), 1);
  CHECK_EQ(read(sv[1], buf, sizeof buf), 3);
  CHECK(!memcmp(buf, "abc", 3));
  CHECK_EQ(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), -1);
  CHECK_EQ(errno, EAGAIN);
  CHECK_EQ(send(sv[1], "back", 4, 0), 4);
  CHECK_EQ(recv(sv[0], buf, sizeof buf, 0), 4);
  vl = sizeof v;
  CHECK_EQ(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &vl), 0);
  CHECK_EQ(v, SOCK_STREAM);
  CHECK_EQ(fstat(sv[0], &st), 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK_EQ(shutdown(sv[0], SHUT_WR), 0);
  CHECK_EQ(read(sv[1], buf, sizeof buf), 0);
  CHECK_EQ(write(sv[1], "still", 5), 5); /* the other direction stays open */
  CHECK_EQ(read(sv[0], buf, sizeof buf), 5);
  close(sv[1]);
  CHECK_EQ(send(sv[0], "x", 1, MSG_NOSIGNAL), -1);
  CHECK_EQ(errno, EPIPE);
  close(sv[0]);
  CHECK_EQ(socketpair(AF_INET, SOCK_STREAM, 0, sv), -1);
  CHECK_EQ(errno, EOPNOTSUPP);
  CHECK_EQ(rs(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, 8, 0, 0), -EFAULT);
  /* Named AF_UNIX stream sockets: a path and an abstract name. */
  struct sockaddr_un ua = {.sun_family = AF_UNIX};
  strcpy(ua.sun_path, "/tmp/t_net.sock");
  unlink(ua.sun_path);
  int ul = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK(ul >= 0);
  CHECK_EQ(bind(ul, (struct sockaddr *)&ua, sizeof ua), 0);
  CHECK_EQ(listen(ul, 4), 0);
  int ul2 = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK_EQ(bind(ul2, (struct sockaddr *)&ua, sizeof ua), -1);
  CHECK_EQ(errno, EADDRINUSE);
  close(ul2);
  int uc = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  fcntl(ul, F_SETFL, O_NONBLOCK);
  int ua2 = accept(ul, NULL, NULL);
  CHECK_EQ(ua2, -1);
  CHECK_EQ(errno, EAGAIN);
  fcntl(ul, F_SETFL, 0);
  CHECK_EQ(connect(uc, (struct sockaddr *)&ua, sizeof ua), 0);
  p = (struct pollfd){ul, POLLIN, 0};
  CHECK_EQ(poll(&p, 1, 1000), 1);
  struct sockaddr_un un;
  socklen_t unl = sizeof un;
  ua2 = accept(ul, (struct sockaddr *)&un, &unl);
  CHECK(ua2 >= 0);
  CHECK_EQ(un.sun_family, AF_UNIX);
  CHECK_EQ(write(uc, "unix", 4), 4);
  CHECK_EQ(read(ua2, buf, sizeof buf), 4);
  CHECK_EQ(write(ua2, "back", 4), 4);
  p = (struct pollfd){uc, POLLIN, 0};
  CHECK_EQ(poll(&p, 1, 1000), 1);
  CHECK_EQ(read(uc, buf, sizeof buf), 4);
  unl = sizeof un;
  CHECK_EQ(getpeername(uc, (struct sockaddr *)&un, &unl), 0);
  CHECK(!strcmp(un.sun_path, "/tmp/t_net.sock"));
  unl = sizeof un;
  CHECK_EQ(getsockname(ul, (struct sockaddr *)&un, &unl), 0);
  CHECK(!strcmp(un.sun_path, "/tmp/t_net.sock"));
  close(uc);
  CHECK_EQ(read(ua2, buf, sizeof buf), 0);
  close(ua2);
  struct sockaddr_un miss = {.sun_family = AF_UNIX, .sun_path = "/tmp/no-such.sock"};
  uc = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK_EQ(connect(uc, (struct sockaddr *)&miss, sizeof miss), -1);
  CHECK_EQ(errno, ENOENT);
  close(uc);
  /* Abstract name; a blocking accept woken by a child's connect. */
  struct sockaddr_un ab = {.sun_family = AF_UNIX};
  memcpy(ab.sun_path, "\0qk-abstract", 12);
  socklen_t abl = offsetof(struct sockaddr_un, sun_path) + 12;
  int al = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK_EQ(bind(al, (struct sockaddr *)&ab, abl), 0);
  CHECK_EQ(listen(al, 4), 0);
  pid_t uk = fork();
  if (uk == 0) {
    usleep(50000);
    int k = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(k, (struct sockaddr *)&ab, abl) != 0 || write(k, "abs", 3) != 3)
      _exit(1);
    _exit(0);
  }
  if (uk > 0) {
    int k = accept(al, NULL, NULL);
    CHECK(k >= 0);
    CHECK_EQ(read_full(k, buf, 3), 0);
    CHECK(!memcmp(buf, "abs", 3));
    int st4 = -1;
    CHECK_EQ(waitpid(uk, &st4, 0), uk);
    CHECK_EQ(st4, 0);
    close(k);
  }
  close(al);
  close(ul);
  unlink("/tmp/t_net.sock");

  /* Blocking read on a pair, woken by a child's write. */
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  pid_t pp = fork();
  if (pp == 0) {
    usleep(50000);
    _exit(write(sv[1], "kid", 3) == 3 ? 0 : 1);
  }
  if (pp > 0) {
    CHECK_EQ(read(sv[0], buf, sizeof buf), 3);
    int st3 = -1;
    CHECK_EQ(waitpid(pp, &st3, 0), pp);
    CHECK_EQ(st3, 0);
  }
  close(sv[0]);
  close(sv[1]);

  /* Blocking accept and recv woken by host readiness (needs fork). */
  l = listener(SOCK_STREAM, 0);
  port = port_of(l);
  pid_t pid = fork();
  if (pid == 0) {
    int k = dial(port);
    usleep(100000); /* the parent parks in recv meanwhile */
    if (write(k, "wake", 4) != 4)
      _exit(3);
    usleep(50000); /* the parent parks in a MSG_WAITALL receive */
    if (write(k, "1234", 4) != 4)
      _exit(3);
    usleep(50000);
    if (write(k, "5678", 4) != 4)
      _exit(3);
    close(k);
    _exit(0);
  }
  if (pid > 0) {
    s = accept(l, NULL, NULL);
    CHECK(s >= 0);
    CHECK_EQ(read_full(s, buf, 4), 0);
    CHECK(!memcmp(buf, "wake", 4));
    /* MSG_WAITALL across parks: the child must run to send the rest. */
    CHECK_EQ(recv(s, buf, 8, MSG_WAITALL), 8);
    CHECK(!memcmp(buf, "12345678", 8));
    int st2 = -1;
    CHECK_EQ(waitpid(pid, &st2, 0), pid);
    CHECK_EQ(st2, 0);
    close(s);
  } else {
    printf("skip: fork: %s\n", strerror(errno));
  }
  close(l);

  /* A signal interrupts a parked accept: EINTR without SA_RESTART. */
  l = listener(SOCK_STREAM, 0);
  struct sigaction sa = {.sa_handler = on_usr1};
  sigaction(SIGUSR1, &sa, NULL);
  pid_t killer = fork();
  if (killer == 0) {
    usleep(50000);
    kill(getppid(), SIGUSR1);
    _exit(0);
  }
  if (killer > 0) {
    got_usr1 = 0;
    CHECK_EQ(accept(l, NULL, NULL), -1);
    CHECK_EQ(errno, EINTR);
    CHECK_EQ(got_usr1, 1);
    waitpid(killer, NULL, 0);
  }
  close(l);

  /* A busy task does not starve one parked in accept: one child spins
   * (with syscalls) for 1.5 s, another connects at once. */
  l = listener(SOCK_STREAM, 0);
  port = port_of(l);
  double tb = now_s();
  pid_t busy = fork();
  if (busy == 0) {
    while (now_s() - tb < 1.5)
      getppid();
    _exit(0);
  }
  pid_t dialer = fork();
  if (dialer == 0) {
    int k = dial(port);
    close(k);
    _exit(0);
  }
  if (busy > 0 && dialer > 0) {
    s = accept(l, NULL, NULL);
    double waited = now_s() - tb;
    CHECK(s >= 0);
    CHECK(waited < 1.0);
    if (waited >= 1.0)
      printf("accept woke after %.2f s\n", waited);
    close(s);
    waitpid(busy, NULL, 0);
    waitpid(dialer, NULL, 0);
  }
  close(l);
}

/* Random arguments to the socket syscalls: errors, never a crash of the
 * guest or the sandbox. Every socket is non-blocking so that no call
 * waits. */
static void fuzz(int n)
{
  static char page[8192];
  uint64_t x = 88172645463325252ull ^ (uint64_t)n;
  int fds[16], nf = 0;
  for (int i = 0; i < 4; i++)
    fds[nf++] =
        socket(i & 1 ? AF_INET6 : AF_INET, (i & 2 ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK, 0);
  const long nrs[] = {
      SYS_bind,       SYS_connect,  SYS_listen,   SYS_accept4, SYS_getsockname, SYS_getpeername,
      SYS_sendto,     SYS_recvfrom, SYS_sendmsg,  SYS_recvmsg, SYS_shutdown,    SYS_setsockopt,
      SYS_getsockopt, SYS_sendmmsg, SYS_recvmmsg, SYS_socket,  SYS_socketpair};
  int errors = 0;
  for (int i = 0; i < n; i++) {
    long a[6];
    for (int k = 0; k < 6; k++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      switch (x % 7) {
      case 0:
        a[k] = (long)(x >> 8) & 0xff;
        break;
      case 1:
        a[k] = (long)(page + ((x >> 8) % sizeof page));
        break;
      case 2:
        a[k] = (long)(x >> 3);
        break; /* wild pointer or length */
      case 3:
        a[k] = 16;
        break;
      case 4:
        a[k] = fds[(x >> 8) % (unsigned)nf];
        break;
      case 5:
        a[k] = 0;
        break;
      default:
        a[k] = -1;
        break;
      }
    }
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    long nr = nrs[x % (sizeof nrs / sizeof nrs[0])];
    if (nr == SYS_socket || nr == SYS_socketpair)
      a[1] |= SOCK_NONBLOCK;
    if (nr == SYS_accept4)
      a[3] = SOCK_NONBLOCK;
    if (nr == SYS_recvfrom || nr == SYS_recvmsg || nr == SYS_recvmmsg)
      a[nr == SYS_recvmsg ? 2 : 3] |= MSG_DONTWAIT;
    long r = rs(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    if (r < 0)
      errors++;
    else if ((nr == SYS_socket || nr == SYS_accept4) && r > 2) {
      if (nf < 16) {
        fds[nf++] = (int)r;
        fcntl((int)r, F_SETFL, O_NONBLOCK);
      } else {
        close((int)r);
      }
    }
    /* Random fds may now be blocking sockets (fuzzed socketpair pairs are
     * non-blocking): keep every known one non-blocking. */
    for (int k = 0; k < nf; k++)
      fcntl(fds[k], F_SETFL, O_NONBLOCK);
  }
  printf("fuzz: %d calls, %d errors\n", n, errors);
}

/* Route netlink in the pod's netns: getifaddrs and ip(8) read it, nothing
 * may change it. Needs an unjailed sandbox (pod mode, --no-jail). The
 * netlink ABI is spelt out here: musl-gcc has no <linux/...> headers. */
#define NETLINK_ROUTE 0
#define NETLINK_AUDIT 9
#define SOL_NETLINK 270
#define NETLINK_EXT_ACK 11
#define NLM_F_REQUEST 0x1
#define NLM_F_ACK 0x4
#define NLM_F_DUMP 0x300
#define NLM_F_CREATE 0x400
#define RTM_DELLINK 17
#define RTM_GETLINK 18
#define RTM_NEWADDR 20
#define RTM_GETADDR 22
struct nlmsghdr {
  uint32_t nlmsg_len;
  uint16_t nlmsg_type, nlmsg_flags;
  uint32_t nlmsg_seq, nlmsg_pid;
};
struct sockaddr_nl {
  sa_family_t nl_family;
  unsigned short nl_pad;
  uint32_t nl_pid, nl_groups;
};
struct ifaddrmsg {
  uint8_t ifa_family, ifa_prefixlen, ifa_flags, ifa_scope;
  uint32_t ifa_index;
};
static int nl_send(int s, uint16_t type, uint16_t flags, uint32_t len, uint32_t pid)
{
  struct {
    struct nlmsghdr h;
    struct ifaddrmsg a;
  } req;
  memset(&req, 0, sizeof req);
  req.h.nlmsg_len = len ? len : sizeof req;
  req.h.nlmsg_type = type;
  req.h.nlmsg_flags = flags;
  req.h.nlmsg_seq = 1;
  req.a.ifa_family = AF_INET;
  struct sockaddr_nl k = {.nl_family = AF_NETLINK, .nl_pid = pid};
  return (int)sendto(s, &req, len && len < sizeof req ? len : sizeof req, 0, (struct sockaddr *)&k,
                     sizeof k);
}

static void netlink_tests(void)
{
  struct ifaddrs *ifa;
  CHECK_EQ(getifaddrs(&ifa), 0);
  int lo4 = 0, links = 0;
  for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
    if (i->ifa_addr && i->ifa_addr->sa_family == AF_PACKET)
      links++;
    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && !strcmp(i->ifa_name, "lo") &&
        ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK))
      lo4++;
  }
  freeifaddrs(ifa);
  CHECK_EQ(lo4, 1);
  CHECK(links >= 1);
  /* glibc and musl ask with SIOCGIFINDEX on an AF_UNIX datagram socket
   * (the guest's, which has the host answer it). */
  CHECK_EQ(if_nametoindex("lo"), 1u);

  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  CHECK(s >= 0);
  struct sockaddr_nl me = {.nl_family = AF_NETLINK};
  CHECK_EQ(bind(s, (struct sockaddr *)&me, sizeof me), 0);
  socklen_t ml = sizeof me;
  CHECK_EQ(getsockname(s, (struct sockaddr *)&me, &ml), 0);
  CHECK_EQ(me.nl_family, AF_NETLINK);
  int one = 1;
  CHECK_EQ(setsockopt(s, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one), 0);
  /* A dump answers; changes and messages to other sockets do not go out. */
  CHECK(nl_send(s, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 0, 0) > 0);
  char buf[16384];
  ssize_t n = recv(s, buf, sizeof buf, 0);
  CHECK(n >= (ssize_t)sizeof(struct nlmsghdr));
  errno = 0;
  CHECK_EQ(nl_send(s, RTM_NEWADDR, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK, 0, 0), -1);
  CHECK_EQ(errno, EPERM);
  CHECK_EQ(nl_send(s, RTM_DELLINK, NLM_F_REQUEST, 0, 0), -1);
  CHECK_EQ(errno, EPERM);
  CHECK_EQ(nl_send(s, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 0, 4242), -1);
  CHECK_EQ(errno, EPERM);
  CHECK_EQ(nl_send(s, RTM_GETLINK, NLM_F_REQUEST, 8, 0), -1); /* a cut header */
  CHECK_EQ(errno, EINVAL);
  CHECK_EQ(nl_send(s, RTM_GETLINK, 0, 0, 0), -1); /* not a request */
  CHECK_EQ(errno, EINVAL);
  close(s);
  CHECK_EQ(socket(AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE), -1);
  CHECK_EQ(errno, ESOCKTNOSUPPORT);
  CHECK_EQ(socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT), -1);
  CHECK_EQ(errno, EPROTONOSUPPORT);

  /* Interface ioctls: queries answer, changes are refused. */
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  struct ifreq r;
  memset(&r, 0, sizeof r);
  strcpy(r.ifr_name, "lo");
  CHECK_EQ(ioctl(u, SIOCGIFFLAGS, &r), 0);
  CHECK((r.ifr_flags & (IFF_UP | IFF_LOOPBACK)) == (IFF_UP | IFF_LOOPBACK));
  CHECK_EQ(ioctl(u, SIOCGIFINDEX, &r), 0);
  CHECK_EQ(r.ifr_ifindex, 1);
  CHECK_EQ(ioctl(u, SIOCGIFMTU, &r), 0);
  CHECK(r.ifr_mtu > 0);
  strcpy(r.ifr_name, "no-such-if0");
  CHECK_EQ(ioctl(u, SIOCGIFFLAGS, &r), -1);
  CHECK_EQ(errno, ENODEV);
  strcpy(r.ifr_name, "lo");
  r.ifr_flags = 0;
  CHECK_EQ(ioctl(u, SIOCSIFFLAGS, &r), -1);
  CHECK_EQ(errno, ENOTTY);
  CHECK_EQ(ioctl(u, SIOCGIFFLAGS, (void *)8), -1);
  CHECK_EQ(errno, EFAULT);
  close(u);
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IONBF, 0);
  signal(SIGPIPE, SIG_IGN);
  const char *mode = argc > 1 ? argv[1] : "self";
  int port = argc > 2 ? atoi(argv[2]) : 0;
  char buf[65536];
  if (!strcmp(mode, "netlink")) {
    netlink_tests();
    printf("t_net: %d checks, %d failures\n", t_checks, t_fails);
    return t_fails != 0;
  }
  if (!strcmp(mode, "self")) {
    self_tests();
    unix_scm_tests();
    unix_msg_tests();
    printf("t_net: %d checks, %d failures\n", t_checks, t_fails);
    return t_fails != 0;
  }
  if (!strcmp(mode, "fuzz")) {
    fuzz(port ? port : 5000);
    return 0;
  }
  if (!strcmp(mode, "serve")) {
    int n = argc > 3 ? atoi(argv[3]) : 1;
    int l = listener(SOCK_STREAM, port);
    printf("listening %d\n", port);
    for (int i = 0; i < n; i++) {
      int s = accept(l, NULL, NULL);
      ssize_t r;
      while ((r = read(s, buf, sizeof buf)) > 0)
        if (write(s, buf, (size_t)r) != r)
          break;
      close(s);
    }
    printf("served %d\n", n);
    return 0;
  }
  if (!strcmp(mode, "client")) {
    int s = dial(port);
    const char *msg = argc > 3 ? argv[3] : "ping";
    if (write(s, msg, strlen(msg)) != (ssize_t)strlen(msg))
      return 2;
    shutdown(s, SHUT_WR);
    size_t got = 0;
    ssize_t r;
    while ((r = read(s, buf + got, sizeof buf - 1 - got)) > 0)
      got += (size_t)r;
    buf[got] = 0;
    printf("echo: %s\n", buf);
    return 0;
  }
  if (!strcmp(mode, "udpserve")) {
    int n = argc > 3 ? atoi(argv[3]) : 1;
    int u = listener(SOCK_DGRAM, port);
    printf("listening %d\n", port);
    for (int i = 0; i < n; i++) {
      struct sockaddr_in from;
      socklen_t fl = sizeof from;
      ssize_t r = recvfrom(u, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
      if (r < 0)
        return 2;
      sendto(u, buf, (size_t)r, 0, (struct sockaddr *)&from, fl);
    }
    printf("served %d\n", n);
    return 0;
  }
  if (!strcmp(mode, "udpclient")) {
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = lo(port);
    const char *msg = argc > 3 ? argv[3] : "ping";
    for (int i = 0; i < 100; i++) { /* the server may not be up yet */
      sendto(u, msg, strlen(msg), 0, (struct sockaddr *)&a, sizeof a);
      struct pollfd p = {u, POLLIN, 0};
      if (poll(&p, 1, 100) == 1) {
        ssize_t r = recv(u, buf, sizeof buf - 1, 0);
        buf[r < 0 ? 0 : r] = 0;
        printf("echo: %s\n", buf);
        return 0;
      }
    }
    return 2;
  }
  if (!strcmp(mode, "rr-server") || !strcmp(mode, "bulk-server")) {
    int l = listener(SOCK_STREAM, port);
    int s = accept(l, NULL, NULL);
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ssize_t r;
    long long total = 0;
    if (mode[0] == 'r') {
      while ((r = read(s, buf, sizeof buf)) > 0)
        if (write(s, buf, (size_t)r) != r)
          break;
    } else {
      static char rbuf[4 << 20];
      size_t rsz = argc > 3 ? (size_t)atoi(argv[3]) << 10 : sizeof buf;
      if (rsz == 0 || rsz > sizeof rbuf)
        rsz = sizeof buf;
      while ((r = read(s, rbuf, rsz)) > 0)
        total += r;
      if (write(s, &total, sizeof total) != sizeof total)
        return 2;
    }
    close(s);
    return 0;
  }
  if (!strcmp(mode, "conn-server")) {
    int l = listener(SOCK_STREAM, port);
    long left = argc > 3 ? atol(argv[3]) : -1; /* -1: until killed */
    for (; left; left -= left > 0) {
      int s = accept(l, NULL, NULL);
      if (s < 0)
        continue;
      if (write(s, "k", 1) != 1) {
        /* the client went away first */
      }
      close(s);
    }
    return 0;
  }
  if (!strcmp(mode, "conn-client")) {
    int n = argc > 3 ? atoi(argv[3]) : 1000;
    close(dial(port)); /* waits until the server is up */
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
      int s = dial(port);
      char k;
      if (read(s, &k, 1) != 1)
        return 2;
      close(s);
    }
    double t1 = now_s();
    printf("conn %.0f /s\n", n / (t1 - t0));
    return 0;
  }
  if (!strcmp(mode, "rr-client")) {
    int n = argc > 3 ? atoi(argv[3]) : 1000;
    size_t size = argc > 4 ? (size_t)atoi(argv[4]) : 64;
    int s = dial(port);
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memset(buf, 'r', size);
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
      if (write(s, buf, size) != (ssize_t)size || read_full(s, buf, size) < 0)
        return 2;
    }
    double t1 = now_s();
    printf("rr %.1f us\n", (t1 - t0) * 1e6 / n);
    return 0;
  }
  if (!strcmp(mode, "sendfile-client")) {
    /* Sends FILE with sendfile (first half at an explicit offset, the rest
     * from the file position) to a bulk-server, which answers the count. */
    int fd = open(argc > 3 ? argv[3] : "/bin/t_net", O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
      return 2;
    int s = dial(port);
    off_t off = 0, half = st.st_size / 2;
    while (off < half) {
      ssize_t r = sendfile(s, fd, &off, (size_t)(half - off));
      if (r <= 0) {
        printf("sendfile: %s\n", strerror(errno));
        return 3;
      }
    }
    if (lseek(fd, half, SEEK_SET) != half)
      return 2;
    for (off_t sent = half; sent < st.st_size;) {
      ssize_t r = sendfile(s, fd, NULL, (size_t)(st.st_size - sent));
      if (r <= 0) {
        printf("sendfile: %s\n", strerror(errno));
        return 3;
      }
      sent += r;
    }
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), st.st_size);
    shutdown(s, SHUT_WR);
    long long got = 0;
    if (read_full(s, (char *)&got, sizeof got) < 0 || got != st.st_size) {
      printf("sendfile: peer got %lld of %lld\n", got, (long long)st.st_size);
      return 4;
    }
    printf("sendfile %lld bytes\n", got);
    return t_fails != 0;
  }
  if (!strcmp(mode, "bulk-client")) {
    long long mib = argc > 3 ? atoll(argv[3]) : 64, total = mib << 20, got = 0, partial = 0;
    int s = dial(port);
    static char big[1 << 20];
    memset(big, 'b', sizeof big);
    double t0 = now_s();
    for (long long sent = 0; sent < total;) {
      size_t want = total - sent < (long long)sizeof big ? (size_t)(total - sent) : sizeof big;
      ssize_t r = write(s, big, want);
      if (r >= 0 && (size_t)r != want)
        partial++; /* Linux sends all of a blocking write */
      if (r <= 0)
        return 2;
      sent += r;
    }
    shutdown(s, SHUT_WR);
    if (read_full(s, (char *)&got, sizeof got) < 0 || got != total) {
      printf("bulk: peer got %lld bytes of %lld\n", got, total);
      return 3;
    }
    if (partial) {
      printf("bulk: %lld short blocking writes\n", partial);
      return 4;
    }
    double t1 = now_s();
    printf("bulk %.1f MiB/s\n", mib / (t1 - t0));
    return 0;
  }
  fprintf(stderr, "t_net: unknown mode %s\n", mode);
  return 2;
}
