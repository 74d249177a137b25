/* AF_UNIX sockets served by the guest kernel: named datagram and seqpacket
 * sockets, autobind, MSG_PEEK/MSG_TRUNC/MSG_CTRUNC, errors as Linux gives
 * them, shutdown, names, the socket inode of a path bind, descriptor
 * passing between processes and the collection of in-flight cycles.
 * Runs the same on Linux (the reference) and in the guest. Each case
 * prints "case NAME: ok" or "case NAME: FAIL"; the script compares that
 * list with expected.txt. Usage: t_unix [DIR] (DIR: where path names go,
 * default /tmp); t_unix serve PATH / client PATH MSG (see serve()). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../guest/progs/t.h"

#define E(x)                                                                                       \
  ({                                                                                               \
    long r_ = (long)(x);                                                                           \
    r_ < 0 ? -errno : r_;                                                                          \
  })

static char dir[64] = "/tmp";

static socklen_t mkaddr(struct sockaddr_un *a, const char *name)
{
  memset(a, 0, sizeof(*a));
  a->sun_family = AF_UNIX;
  if (name[0] == '@') { /* abstract */
    size_t n = strlen(name);
    memcpy(a->sun_path + 1, name + 1, n - 1);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
  }
  snprintf(a->sun_path, sizeof(a->sun_path), "%s/%s", dir, name);
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1);
}

static int bound(int type, const char *name)
{
  struct sockaddr_un a;
  socklen_t l = mkaddr(&a, name);
  if (name[0] != '@')
    unlink(a.sun_path);
  int s = socket(AF_UNIX, type, 0);
  CHECK(s >= 0);
  CHECK_EQ(E(bind(s, (struct sockaddr *)&a, l)), 0);
  return s;
}

static long sendto_name(int s, const char *msg, size_t n, const char *name, int flags)
{
  struct sockaddr_un a;
  socklen_t l = mkaddr(&a, name);
  return E(sendto(s, msg, n, flags, (struct sockaddr *)&a, l));
}

/* sendmsg to a name with one SCM_RIGHTS fd. */
static long sendto_name_fd(int s, int fd, const char *name)
{
  struct sockaddr_un a;
  socklen_t l = mkaddr(&a, name);
  struct iovec iov = {"f", 1};
  union {
    struct cmsghdr h;
    char b[CMSG_SPACE(sizeof(int))];
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr m = {.msg_name = &a,
                     .msg_namelen = l,
                     .msg_iov = &iov,
                     .msg_iovlen = 1,
                     .msg_control = u.b,
                     .msg_controllen = sizeof u.b};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  return E(sendmsg(s, &m, 0));
}

static long connect_name(int s, const char *name)
{
  struct sockaddr_un a;
  socklen_t l = mkaddr(&a, name);
  return E(connect(s, (struct sockaddr *)&a, l));
}

static void msleep(int ms)
{
  struct timespec ts = {0, ms * 1000000L};
  nanosleep(&ts, NULL);
}

/* sendmsg with one SCM_RIGHTS fd (fd < 0: none). */
static long send_fd(int s, const void *buf, size_t n, int fd, int flags)
{
  struct iovec iov = {(void *)buf, n};
  union {
    struct cmsghdr h;
    char b[CMSG_SPACE(sizeof(int))];
  } u;
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  if (fd >= 0) {
    memset(&u, 0, sizeof(u));
    m.msg_control = u.b;
    m.msg_controllen = sizeof(u.b);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  return E(sendmsg(s, &m, flags));
}

/* recvmsg: *fd the first SCM_RIGHTS descriptor (-1: none), *mflags. */
static long recv_fd(int s, void *buf, size_t n, int *fd, int flags, int *mflags, size_t ctl)
{
  struct iovec iov = {buf, n};
  char cb[256];
  struct msghdr m = {.msg_iov = &iov,
                     .msg_iovlen = 1,
                     .msg_control = cb,
                     .msg_controllen = ctl ? ctl : sizeof(cb)};
  long r = E(recvmsg(s, &m, flags));
  *fd = -1;
  if (mflags)
    *mflags = m.msg_flags;
  if (r < 0)
    return r;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      memcpy(fd, CMSG_DATA(c), sizeof(int));
  return r;
}

static int case_fails;
static void begin(void)
{
  case_fails = t_fails;
}
static void end(const char *name)
{
  printf("case %s: %s\n", name, t_fails == case_fails ? "ok" : "FAIL");
  fflush(stdout);
}

/* ---- cases ---- */

static void dgram_path(void)
{
  begin();
  int srv = bound(SOCK_DGRAM, "u-d1");
  struct sockaddr_un a;
  mkaddr(&a, "u-d1");
  struct stat st;
  CHECK_EQ(E(stat(a.sun_path, &st)), 0);
  CHECK(S_ISSOCK(st.st_mode));
  int other = socket(AF_UNIX, SOCK_DGRAM, 0);
  CHECK_EQ(E(bind(other, (struct sockaddr *)&a, sizeof a)), -EADDRINUSE);
  close(other);
  /* An unnamed sender: recvfrom reports no address. */
  int c = socket(AF_UNIX, SOCK_DGRAM, 0);
  CHECK_EQ(sendto_name(c, "hello", 5, "u-d1", 0), 5);
  char buf[64];
  struct sockaddr_un from;
  socklen_t fl = sizeof from;
  CHECK_EQ(E(recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl)), 5);
  CHECK(!memcmp(buf, "hello", 5));
  CHECK_EQ(fl, 0);
  /* A named sender: its path, and the reply goes back there. */
  int c2 = bound(SOCK_DGRAM, "u-d2");
  CHECK_EQ(sendto_name(c2, "abc", 3, "u-d1", 0), 3);
  fl = sizeof from;
  CHECK_EQ(E(recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl)), 3);
  struct sockaddr_un want;
  socklen_t wl = mkaddr(&want, "u-d2");
  CHECK_EQ(fl, wl);
  CHECK(!strcmp(from.sun_path, want.sun_path));
  CHECK_EQ(E(sendto(srv, "back", 4, 0, (struct sockaddr *)&from, fl)), 4);
  CHECK_EQ(E(recv(c2, buf, sizeof buf, 0)), 4);
  struct sockaddr_un me;
  socklen_t ml = sizeof me;
  CHECK_EQ(E(getsockname(srv, (struct sockaddr *)&me, &ml)), 0);
  CHECK_EQ(ml, wl);
  CHECK(!strcmp(me.sun_path, a.sun_path));
  /* unlink frees the name: ENOENT, then a new socket may bind it. */
  CHECK_EQ(E(unlink(a.sun_path)), 0);
  CHECK_EQ(sendto_name(c, "x", 1, "u-d1", 0), -ENOENT);
  int srv2 = bound(SOCK_DGRAM, "u-d1");
  CHECK_EQ(sendto_name(c, "new", 3, "u-d1", 0), 3);
  CHECK_EQ(E(recv(srv2, buf, sizeof buf, MSG_DONTWAIT)), 3);
  CHECK_EQ(E(recv(srv, buf, sizeof buf, MSG_DONTWAIT)), -EAGAIN);
  ml = sizeof me;
  CHECK_EQ(E(getsockname(srv, (struct sockaddr *)&me, &ml)), 0); /* still its name */
  CHECK(!strcmp(me.sun_path, a.sun_path));
  /* A path of the full 108 bytes (no NUL in sun_path) works; its name is
   * 111 bytes long, as Linux reports it. */
  struct sockaddr_un lp = {.sun_family = AF_UNIX};
  int k = snprintf(lp.sun_path, sizeof lp.sun_path, "%s/", dir);
  memset(lp.sun_path + k, 'L', sizeof lp.sun_path - k);
  char lpath[120];
  memcpy(lpath, lp.sun_path, sizeof lp.sun_path);
  lpath[sizeof lp.sun_path] = 0;
  unlink(lpath);
  int ls = socket(AF_UNIX, SOCK_DGRAM, 0);
  CHECK_EQ(E(bind(ls, (struct sockaddr *)&lp, sizeof lp)), 0);
  CHECK_EQ(E(sendto(c, "long", 4, 0, (struct sockaddr *)&lp, sizeof lp)), 4);
  CHECK_EQ(E(recv(ls, buf, sizeof buf, MSG_DONTWAIT)), 4);
  struct sockaddr_storage big;
  socklen_t bl = sizeof big;
  CHECK_EQ(E(getsockname(ls, (struct sockaddr *)&big, &bl)), 0);
  CHECK_EQ(bl, sizeof lp + 1);
  close(ls);
  CHECK_EQ(E(unlink(lpath)), 0);
  /* A relative path resolves in the cwd. */
  char cwd[256];
  CHECK(getcwd(cwd, sizeof cwd) != NULL);
  CHECK_EQ(E(chdir(dir)), 0);
  struct sockaddr_un rel = {.sun_family = AF_UNIX, .sun_path = "u-d1"};
  CHECK_EQ(E(sendto(c, "rel", 3, 0, (struct sockaddr *)&rel, sizeof rel)), 3);
  CHECK_EQ(E(recv(srv2, buf, sizeof buf, MSG_DONTWAIT)), 3);
  CHECK_EQ(E(chdir(cwd)), 0);
  close(srv);
  close(srv2);
  close(c);
  close(c2);
  unlink(a.sun_path);
  unlink(want.sun_path);
  end("dgram_path");
}

static void dgram_abstract(void)
{
  begin();
  int srv = bound(SOCK_DGRAM, "@u-abs-dgram");
  int c = bound(SOCK_DGRAM, "@u-abs-cli");
  CHECK_EQ(sendto_name(c, "ping", 4, "@u-abs-dgram", 0), 4);
  char buf[16];
  struct sockaddr_un from;
  socklen_t fl = sizeof from;
  CHECK_EQ(E(recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl)), 4);
  CHECK_EQ(fl, offsetof(struct sockaddr_un, sun_path) + 1 + strlen("u-abs-cli"));
  CHECK(from.sun_path[0] == 0 && !memcmp(from.sun_path + 1, "u-abs-cli", 9));
  int dup = socket(AF_UNIX, SOCK_DGRAM, 0);
  struct sockaddr_un a;
  socklen_t l = mkaddr(&a, "@u-abs-dgram");
  CHECK_EQ(E(bind(dup, (struct sockaddr *)&a, l)), -EADDRINUSE);
  close(srv);
  /* The name goes with the socket. */
  CHECK_EQ(sendto_name(c, "x", 1, "@u-abs-dgram", 0), -ECONNREFUSED);
  CHECK_EQ(E(bind(dup, (struct sockaddr *)&a, l)), 0);
  close(dup);
  close(c);
  end("dgram_abstract");
}

static void dgram_connect(void)
{
  begin();
  int srv = bound(SOCK_DGRAM, "@u-dc-srv");
  int a = bound(SOCK_DGRAM, "@u-dc-a");
  int b = bound(SOCK_DGRAM, "@u-dc-b");
  char buf[16];
  CHECK_EQ(connect_name(a, "@u-dc-srv"), 0);
  CHECK_EQ(E(send(a, "1", 1, 0)), 1);
  CHECK_EQ(E(recv(srv, buf, sizeof buf, 0)), 1);
  struct sockaddr_un p;
  socklen_t pl = sizeof p;
  CHECK_EQ(E(getpeername(a, (struct sockaddr *)&p, &pl)), 0);
  CHECK(p.sun_path[0] == 0 && !memcmp(p.sun_path + 1, "u-dc-srv", 8));
  pl = sizeof p;
  CHECK_EQ(E(getpeername(b, (struct sockaddr *)&p, &pl)), -ENOTCONN);
  struct ucred uc;
  socklen_t ul = sizeof uc;
  CHECK_EQ(E(getsockopt(a, SOL_SOCKET, SO_PEERCRED, &uc, &ul)), 0);
  CHECK(uc.pid == 0 && uc.uid == (uid_t)-1 && uc.gid == (gid_t)-1); /* none for datagrams */
  /* A connected receiver takes datagrams from its peer only. */
  CHECK_EQ(connect_name(srv, "@u-dc-a"), 0);
  CHECK_EQ(sendto_name(b, "2", 1, "@u-dc-srv", 0), -EPERM);
  CHECK_EQ(connect_name(b, "@u-dc-srv"), -EPERM);
  CHECK_EQ(E(send(b, "2", 1, 0)), -ENOTCONN);
  CHECK_EQ(E(send(a, "3", 1, 0)), 1);
  CHECK_EQ(E(recv(srv, buf, sizeof buf, 0)), 1);
  CHECK_EQ(buf[0], '3');
  /* a stays connected to srv, which now connects to b: a's sends refused. */
  CHECK_EQ(connect_name(srv, "@u-dc-b"), 0);
  CHECK_EQ(E(send(a, "x", 1, 0)), -EPERM);
  CHECK_EQ(connect_name(srv, "@u-dc-a"), 0);
  /* AF_UNSPEC dissolves it. */
  struct sockaddr un = {.sa_family = AF_UNSPEC};
  CHECK_EQ(E(connect(srv, &un, sizeof un)), 0);
  CHECK_EQ(sendto_name(b, "4", 1, "@u-dc-srv", 0), 1);
  CHECK_EQ(E(recv(srv, buf, sizeof buf, 0)), 1);
  CHECK_EQ(E(send(srv, "x", 1, 0)), -ENOTCONN);
  /* sendto with an address on a connected socket goes there. */
  CHECK_EQ(sendto_name(a, "5", 1, "@u-dc-b", 0), 1);
  CHECK_EQ(E(recv(b, buf, sizeof buf, 0)), 1);
  /* The peer goes: refused once, then not connected. */
  close(srv);
  CHECK_EQ(E(send(a, "6", 1, 0)), -ECONNREFUSED);
  CHECK_EQ(E(send(a, "7", 1, 0)), -ENOTCONN);
  close(a);
  close(b);
  end("dgram_connect");
}

static void errors(void)
{
  begin();
  int d = socket(AF_UNIX, SOCK_DGRAM, 0);
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  int q = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  int raw = socket(AF_UNIX, SOCK_RAW, 0); /* Linux makes it a datagram socket */
  int rt = 0;
  socklen_t rtl = sizeof rt;
  CHECK_EQ(E(getsockopt(raw, SOL_SOCKET, SO_TYPE, &rt, &rtl)), 0);
  CHECK_EQ(rt, SOCK_DGRAM);
  close(raw);
  CHECK_EQ(E(socket(AF_UNIX, 6, 0)), -ESOCKTNOSUPPORT);
  int rp[2];
  CHECK_EQ(E(socketpair(AF_UNIX, SOCK_RAW, 0, rp)), 0);
  rtl = sizeof rt;
  CHECK_EQ(E(getsockopt(rp[0], SOL_SOCKET, SO_TYPE, &rt, &rtl)), 0);
  CHECK_EQ(rt, SOCK_DGRAM);
  close(rp[0]);
  close(rp[1]);
  CHECK_EQ(E(socketpair(AF_UNIX, 6, 0, rp)), -ESOCKTNOSUPPORT);
  CHECK_EQ(E(socket(AF_UNIX, SOCK_DGRAM, 7)), -EPROTONOSUPPORT);
  CHECK_EQ(sendto_name(d, "x", 1, "u-missing", 0), -ENOENT);
  CHECK_EQ(connect_name(s, "u-missing"), -ENOENT);
  CHECK_EQ(sendto_name(d, "x", 1, "@u-missing", 0), -ECONNREFUSED);
  CHECK_EQ(connect_name(s, "@u-missing"), -ECONNREFUSED);
  /* A path that is not a socket. */
  char path[128];
  snprintf(path, sizeof path, "%s/u-plain", dir);
  int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
  CHECK(fd >= 0);
  close(fd);
  CHECK_EQ(sendto_name(d, "x", 1, "u-plain", 0), -ECONNREFUSED);
  CHECK_EQ(connect_name(s, "u-plain"), -ECONNREFUSED);
  /* bind over an existing file */
  struct sockaddr_un a;
  socklen_t l = mkaddr(&a, "u-plain");
  CHECK_EQ(E(bind(d, (struct sockaddr *)&a, l)), -EADDRINUSE);
  unlink(path);
  /* Type mismatches. */
  int ls = bound(SOCK_STREAM, "@u-err-stream");
  CHECK_EQ(E(listen(ls, 4)), 0);
  int ld = bound(SOCK_DGRAM, "u-err-dgram");
  /* A path names one inode: EPROTOTYPE. Abstract names are per type. */
  CHECK_EQ(connect_name(s, "u-err-dgram"), -EPROTOTYPE);
  CHECK_EQ(connect_name(q, "u-err-dgram"), -EPROTOTYPE);
  CHECK_EQ(sendto_name(d, "x", 1, "@u-err-stream", 0), -ECONNREFUSED);
  CHECK_EQ(connect_name(q, "@u-err-stream"), -ECONNREFUSED);
  CHECK_EQ(E(listen(ld, 4)), -EOPNOTSUPP);
  /* A bound stream socket that does not listen. */
  int nl = bound(SOCK_STREAM, "@u-err-nolisten");
  CHECK_EQ(connect_name(s, "@u-err-nolisten"), -ECONNREFUSED);
  /* Unconnected. */
  CHECK_EQ(E(send(d, "x", 1, 0)), -ENOTCONN);
  CHECK_EQ(E(send(q, "x", 1, MSG_NOSIGNAL)), -ENOTCONN);
  char buf[4];
  CHECK_EQ(E(recv(q, buf, sizeof buf, MSG_DONTWAIT)), -ENOTCONN);
  CHECK_EQ(E(recv(s, buf, sizeof buf, MSG_DONTWAIT)), -EINVAL);
  CHECK_EQ(E(bind(d, (struct sockaddr *)&a, 1)), -EINVAL);
  close(nl);
  close(ls);
  close(ld);
  unlink(a.sun_path);
  mkaddr(&a, "u-err-dgram");
  unlink(a.sun_path);
  close(d);
  close(s);
  close(q);
  end("errors");
}

static void dgram_full(void)
{
  begin();
  int srv = bound(SOCK_DGRAM, "@u-full");
  int c = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  int n = 0;
  long r;
  while ((r = sendto_name(c, "d", 1, "@u-full", 0)) == 1 && n < 1000)
    n++;
  CHECK_EQ(r, -EAGAIN);
  CHECK_EQ(n, 11); /* net.unix.max_dgram_qlen 10: the eleventh still fits */
  struct pollfd pf = {c, POLLOUT, 0};
  CHECK_EQ(poll(&pf, 1, 0), 1); /* an unconnected socket stays writable */
  /* A blocking sender waits until the reader takes one. */
  pid_t pid = fork();
  if (pid == 0) {
    int b = socket(AF_UNIX, SOCK_DGRAM, 0);
    long w = sendto_name(b, "late", 4, "@u-full", 0);
    _exit(w == 4 ? 0 : 1);
  }
  msleep(100);
  int st;
  CHECK_EQ(waitpid(pid, &st, WNOHANG), 0); /* still blocked */
  char buf[8];
  CHECK_EQ(E(recv(srv, buf, sizeof buf, 0)), 1);
  CHECK_EQ(waitpid(pid, &st, 0), pid);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  int got = 0, late = 0;
  while ((r = E(recv(srv, buf, sizeof buf, MSG_DONTWAIT))) > 0) {
    got++;
    late += r == 4;
  }
  CHECK_EQ(got, 11);
  CHECK_EQ(late, 1);
  /* A connected sender polls writable only while the receiver has room. */
  int cc = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  CHECK_EQ(connect_name(cc, "@u-full"), 0);
  n = 0;
  while ((r = E(send(cc, "d", 1, 0))) == 1 && n < 1000)
    n++;
  CHECK_EQ(r, -EAGAIN);
  CHECK_EQ(n, 11);
  pf.fd = cc;
  CHECK_EQ(poll(&pf, 1, 0), 0);
  CHECK_EQ(E(recv(srv, buf, sizeof buf, 0)), 1);
  CHECK_EQ(poll(&pf, 1, 0), 1);
  while (E(recv(srv, buf, sizeof buf, MSG_DONTWAIT)) > 0)
    ;
  close(cc);
  /* Tiny datagrams are charged more than their bytes: a pair fills up
   * after some hundreds (Linux: each costs an skb's truesize). */
  int tp[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, tp), 0);
  n = 0;
  while ((r = E(send(tp[0], "t", 1, 0))) == 1 && n < 100000)
    n++;
  CHECK_EQ(r, -EAGAIN);
  CHECK(n > 100 && n < 1000);
  close(tp[0]);
  close(tp[1]);
  /* A message larger than the send buffer. */
  int sb = 10000;
  CHECK_EQ(E(setsockopt(c, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb)), 0);
  socklen_t ol = sizeof sb;
  CHECK_EQ(E(getsockopt(c, SOL_SOCKET, SO_SNDBUF, &sb, &ol)), 0);
  CHECK_EQ(sb, 20000);
  static char big[30000];
  CHECK_EQ(sendto_name(c, big, sizeof big, "@u-full", 0), -EMSGSIZE);
  CHECK_EQ(sendto_name(c, big, 19000, "@u-full", 0), 19000);
  CHECK_EQ(E(recv(srv, big, sizeof big, 0)), 19000);
  close(c);
  close(srv);
  end("dgram_full");
}

static void dgram_peek_trunc(void)
{
  begin();
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
  CHECK_EQ(E(send(sv[0], "0123456789", 10, 0)), 10);
  CHECK_EQ(E(send(sv[0], "", 0, 0)), 0);
  char buf[16];
  struct iovec iov = {buf, 4};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  CHECK_EQ(E(recvmsg(sv[1], &m, MSG_PEEK)), 4);
  CHECK(m.msg_flags & MSG_TRUNC);
  CHECK_EQ(E(recv(sv[1], buf, 4, MSG_PEEK | MSG_TRUNC)), 10);
  memset(buf, 0, sizeof buf);
  CHECK_EQ(E(recv(sv[1], buf, sizeof buf, 0)), 10);
  CHECK(!memcmp(buf, "0123456789", 10));
  CHECK_EQ(E(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT)), 0); /* the empty one */
  CHECK_EQ(E(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT)), -EAGAIN);
  /* Files: a peek hands out a descriptor and leaves the message. */
  int p[2];
  CHECK_EQ(pipe(p), 0);
  CHECK_EQ(send_fd(sv[0], "f", 1, p[0], 0), 1);
  int fd1, fd2, mf;
  CHECK_EQ(recv_fd(sv[1], buf, sizeof buf, &fd1, MSG_PEEK, &mf, 0), 1);
  CHECK(fd1 >= 0);
  CHECK_EQ(recv_fd(sv[1], buf, sizeof buf, &fd2, 0, &mf, 0), 1);
  CHECK(fd2 >= 0 && fd2 != fd1);
  struct stat s1, s2;
  CHECK_EQ(fstat(fd1, &s1), 0);
  CHECK_EQ(fstat(fd2, &s2), 0);
  CHECK_EQ(s1.st_ino, s2.st_ino);
  close(fd1);
  close(fd2);
  /* No room for the descriptor: MSG_CTRUNC, and it is closed. */
  CHECK_EQ(send_fd(sv[0], "g", 1, p[0], 0), 1);
  CHECK_EQ(recv_fd(sv[1], buf, sizeof buf, &fd1, 0, &mf, sizeof(struct cmsghdr)), 1);
  CHECK_EQ(fd1, -1);
  CHECK(mf & MSG_CTRUNC);
  /* FIONREAD on a datagram socket: the next message's size. */
  CHECK_EQ(E(send(sv[0], "abc", 3, 0)), 3);
  CHECK_EQ(E(send(sv[0], "defgh", 5, 0)), 5);
  int nr = -1;
  CHECK_EQ(E(ioctl(sv[1], FIONREAD, &nr)), 0);
  CHECK_EQ(nr, 3);
  close(p[0]);
  close(p[1]);
  close(sv[0]);
  close(sv[1]);
  end("dgram_peek_trunc");
}

static void autobind(void)
{
  begin();
  int s = socket(AF_UNIX, SOCK_DGRAM, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  CHECK_EQ(E(bind(s, (struct sockaddr *)&a, sizeof(sa_family_t))), 0);
  socklen_t l = sizeof a;
  CHECK_EQ(E(getsockname(s, (struct sockaddr *)&a, &l)), 0);
  CHECK_EQ(l, sizeof(sa_family_t) + 6);
  CHECK(a.sun_path[0] == 0);
  int hex = 1;
  for (int i = 1; i <= 5; i++)
    hex &= (a.sun_path[i] >= '0' && a.sun_path[i] <= '9') ||
           (a.sun_path[i] >= 'a' && a.sun_path[i] <= 'f');
  CHECK(hex);
  CHECK_EQ(E(bind(s, (struct sockaddr *)&a, sizeof(sa_family_t))), 0); /* named already */
  CHECK_EQ(E(bind(s, (struct sockaddr *)&a, l)), -EINVAL);
  /* The autobound name is reachable. */
  int c = socket(AF_UNIX, SOCK_DGRAM, 0);
  CHECK_EQ(E(sendto(c, "x", 1, 0, (struct sockaddr *)&a, l)), 1);
  char buf[4];
  CHECK_EQ(E(recv(s, buf, sizeof buf, 0)), 1);
  /* SO_PASSCRED: an unnamed sender gets a name at its first send. */
  int one = 1;
  CHECK_EQ(E(setsockopt(c, SOL_SOCKET, SO_PASSCRED, &one, sizeof one)), 0);
  CHECK_EQ(E(sendto(c, "y", 1, 0, (struct sockaddr *)&a, l)), 1);
  struct sockaddr_un from;
  socklen_t fl = sizeof from;
  CHECK_EQ(E(recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl)), 1);
  CHECK_EQ(fl, sizeof(sa_family_t) + 6);
  CHECK(from.sun_path[0] == 0);
  /* ... and at connect (stream). */
  int ls = bound(SOCK_STREAM, "@u-auto-ls");
  CHECK_EQ(E(listen(ls, 2)), 0);
  int cs = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK_EQ(E(setsockopt(cs, SOL_SOCKET, SO_PASSCRED, &one, sizeof one)), 0);
  CHECK_EQ(connect_name(cs, "@u-auto-ls"), 0);
  l = sizeof a;
  CHECK_EQ(E(getsockname(cs, (struct sockaddr *)&a, &l)), 0);
  CHECK_EQ(l, sizeof(sa_family_t) + 6);
  fl = sizeof from;
  int as = accept(ls, (struct sockaddr *)&from, &fl);
  CHECK(as >= 0);
  CHECK_EQ(fl, l); /* accept reports the client's name */
  CHECK(!memcmp(from.sun_path, a.sun_path, 6));
  close(as);
  close(cs);
  close(ls);
  close(c);
  close(s);
  end("autobind");
}

static void seqpacket_named(void)
{
  begin();
  const char *names[] = {"u-seq", "@u-seq-abs"};
  for (int k = 0; k < 2; k++) {
    int ls = bound(SOCK_SEQPACKET, names[k]);
    CHECK_EQ(E(listen(ls, 4)), 0);
    int c = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    CHECK_EQ(connect_name(c, names[k]), 0);
    int s = accept(ls, NULL, NULL);
    CHECK(s >= 0);
    CHECK_EQ(E(send(c, "first", 5, 0)), 5);
    CHECK_EQ(E(send(c, "second!", 7, 0)), 7);
    char buf[16];
    CHECK_EQ(E(recv(s, buf, 3, 0)), 3); /* the rest of "first" is gone */
    CHECK_EQ(E(recv(s, buf, sizeof buf, 0)), 7);
    CHECK(!memcmp(buf, "second!", 7));
    CHECK_EQ(E(send(s, "r", 1, 0)), 1);
    CHECK_EQ(E(recv(c, buf, sizeof buf, 0)), 1);
    struct sockaddr_un p;
    socklen_t pl = sizeof p;
    CHECK_EQ(E(getpeername(c, (struct sockaddr *)&p, &pl)), 0);
    struct sockaddr_un want;
    socklen_t wl = mkaddr(&want, names[k]);
    CHECK_EQ(pl, wl);
    int type = 0;
    socklen_t tl = sizeof type;
    CHECK_EQ(E(getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &tl)), 0);
    CHECK_EQ(type, SOCK_SEQPACKET);
    /* SHUT_WR: the peer reads the end. */
    CHECK_EQ(E(shutdown(c, SHUT_WR)), 0);
    CHECK_EQ(E(recv(s, buf, sizeof buf, 0)), 0);
    CHECK_EQ(E(send(c, "x", 1, MSG_NOSIGNAL)), -EPIPE);
    /* Close: the peer reads the end, its sends EPIPE. */
    close(c);
    CHECK_EQ(E(recv(s, buf, sizeof buf, 0)), 0);
    CHECK_EQ(E(send(s, "x", 1, MSG_NOSIGNAL)), -EPIPE);
    close(s);
    /* A peer that closes with messages unread: ECONNRESET once. */
    c = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    CHECK_EQ(connect_name(c, names[k]), 0);
    s = accept(ls, NULL, NULL);
    CHECK_EQ(E(send(c, "unread", 6, 0)), 6);
    close(s);
    CHECK_EQ(E(recv(c, buf, sizeof buf, 0)), -ECONNRESET);
    CHECK_EQ(E(recv(c, buf, sizeof buf, 0)), 0);
    close(c);
    close(ls);
    if (names[k][0] != '@')
      unlink(want.sun_path);
  }
  end("seqpacket_named");
}

static void stream_peek(void)
{
  begin();
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  char buf[32];
  CHECK_EQ(E(recv(sv[1], buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT)), -EAGAIN);
  CHECK_EQ(E(send(sv[0], "abcdef", 6, 0)), 6);
  CHECK_EQ(E(recv(sv[1], buf, 3, MSG_PEEK)), 3);
  CHECK(!memcmp(buf, "abc", 3));
  CHECK_EQ(E(recv(sv[1], buf, sizeof buf, MSG_PEEK)), 6);
  CHECK_EQ(E(recv(sv[1], buf, sizeof buf, 0)), 6);
  CHECK(!memcmp(buf, "abcdef", 6));
  /* A peek that reaches a send with a file: a descriptor, the record stays. */
  int p[2];
  CHECK_EQ(pipe(p), 0);
  CHECK_EQ(send_fd(sv[0], "xyz", 3, p[1], 0), 3);
  CHECK_EQ(E(send(sv[0], "tail", 4, 0)), 4);
  int fd1, fd2;
  CHECK_EQ(recv_fd(sv[1], buf, sizeof buf, &fd1, MSG_PEEK, NULL, 0), 3);
  CHECK(fd1 >= 0);
  CHECK_EQ(recv_fd(sv[1], buf, sizeof buf, &fd2, 0, NULL, 0), 3);
  CHECK(fd2 >= 0 && fd2 != fd1);
  CHECK_EQ(E(write(fd1, "1", 1)), 1);
  CHECK_EQ(E(write(fd2, "2", 1)), 1);
  CHECK_EQ(E(read(p[0], buf, 2)), 2);
  CHECK_EQ(recv_fd(sv[1], buf, sizeof buf, &fd1 /* reused */, 0, NULL, 0), 4);
  close(fd2);
  close(p[0]);
  close(p[1]);
  /* MSG_WAITALL waits for all of it. */
  pid_t pid = fork();
  if (pid == 0) {
    for (int i = 0; i < 3; i++) {
      msleep(30);
      if (write(sv[0], "0123456789", 10) != 10)
        _exit(1);
    }
    _exit(0);
  }
  CHECK_EQ(E(recv(sv[1], buf, 30, MSG_WAITALL)), 30);
  CHECK(!memcmp(buf + 20, "0123456789", 10));
  int st;
  CHECK_EQ(waitpid(pid, &st, 0), pid);
  close(sv[0]);
  close(sv[1]);
  end("stream_peek");
}

static void stream_reset(void)
{
  begin();
  int ls = bound(SOCK_STREAM, "u-stream");
  CHECK_EQ(E(listen(ls, 4)), 0);
  struct sockaddr_un a;
  mkaddr(&a, "u-stream");
  struct stat st;
  CHECK_EQ(E(stat(a.sun_path, &st)), 0);
  CHECK(S_ISSOCK(st.st_mode));
  int c = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK_EQ(connect_name(c, "u-stream"), 0);
  int s = accept(ls, NULL, NULL);
  CHECK(s >= 0);
  CHECK_EQ(E(write(c, "unread", 6)), 6);
  close(s); /* closed with bytes unread */
  char buf[8];
  CHECK_EQ(E(recv(c, buf, sizeof buf, 0)), -ECONNRESET);
  CHECK_EQ(E(recv(c, buf, sizeof buf, 0)), 0);
  CHECK_EQ(E(send(c, "x", 1, MSG_NOSIGNAL)), -EPIPE);
  close(c);
  /* A listener closed with a connection not accepted: ECONNRESET, for
   * streams and seqpackets. */
  int types[2] = {SOCK_STREAM, SOCK_SEQPACKET};
  for (int i = 0; i < 2; i++) {
    int l = bound(types[i], "@u-embryo");
    CHECK_EQ(E(listen(l, 2)), 0);
    int k = socket(AF_UNIX, types[i], 0);
    CHECK_EQ(connect_name(k, "@u-embryo"), 0);
    close(l);
    CHECK_EQ(E(recv(k, buf, sizeof buf, MSG_DONTWAIT)), -ECONNRESET);
    CHECK_EQ(E(recv(k, buf, sizeof buf, MSG_DONTWAIT)), 0);
    close(k);
  }
  /* A second listener on the path: EADDRINUSE until unlink. */
  int l2 = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK_EQ(E(bind(l2, (struct sockaddr *)&a, sizeof a)), -EADDRINUSE);
  CHECK_EQ(E(unlink(a.sun_path)), 0);
  c = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK_EQ(connect_name(c, "u-stream"), -ENOENT);
  CHECK_EQ(E(bind(l2, (struct sockaddr *)&a, sizeof a)), 0);
  CHECK_EQ(E(listen(l2, 1)), 0);
  CHECK_EQ(connect_name(c, "u-stream"), 0);
  s = accept(l2, NULL, NULL);
  CHECK(s >= 0);
  close(s);
  close(c);
  close(l2);
  close(ls);
  unlink(a.sun_path);
  end("stream_reset");
}

static void shutdown_msg(void)
{
  begin();
  int s = bound(SOCK_DGRAM, "@u-shut");
  int c = socket(AF_UNIX, SOCK_DGRAM, 0);
  char buf[4];
  CHECK_EQ(E(shutdown(s, SHUT_RD)), 0);
  CHECK_EQ(E(recv(s, buf, sizeof buf, 0)), 0); /* no wait: the end */
  CHECK_EQ(sendto_name(c, "x", 1, "@u-shut", MSG_NOSIGNAL), -EPIPE);
  CHECK_EQ(E(shutdown(c, SHUT_WR)), 0);
  CHECK_EQ(sendto_name(c, "x", 1, "@u-shut", MSG_NOSIGNAL), -EPIPE);
  close(c);
  close(s);
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
  CHECK_EQ(E(shutdown(sv[1], SHUT_RD)), 0);
  CHECK_EQ(E(send(sv[0], "x", 1, MSG_NOSIGNAL)), -EPIPE);
  struct pollfd pf = {sv[1], POLLIN, 0};
  CHECK_EQ(poll(&pf, 1, 0), 1);
  close(sv[0]);
  close(sv[1]);
  end("shutdown_msg");
}

static void cross_process(void)
{
  begin();
  int srv = bound(SOCK_DGRAM, "u-xproc");
  int one = 1;
  CHECK_EQ(E(setsockopt(srv, SOL_SOCKET, SO_PASSCRED, &one, sizeof one)), 0);
  int ls = bound(SOCK_SEQPACKET, "@u-xproc-seq");
  CHECK_EQ(E(listen(ls, 1)), 0);
  int p[2];
  CHECK_EQ(pipe(p), 0);
  pid_t pid = fork();
  if (pid == 0) {
    int c = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (sendto_name(c, "from-child", 10, "u-xproc", 0) != 10)
      _exit(1);
    int q = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    if (connect_name(q, "@u-xproc-seq") != 0)
      _exit(2);
    close(p[0]);
    if (send_fd(q, "pipe", 4, p[1], 0) != 4) /* the child's write end */
      _exit(3);
    close(p[1]);
    char b[4];
    if (recv(q, b, sizeof b, 0) != 2) /* wait for the parent's answer */
      _exit(4);
    _exit(0);
  }
  close(p[1]);
  char buf[32];
  struct iovec iov = {buf, sizeof buf};
  char cb[64];
  struct msghdr m = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb, .msg_controllen = sizeof cb};
  CHECK_EQ(E(recvmsg(srv, &m, 0)), 10);
  struct cmsghdr *ch = CMSG_FIRSTHDR(&m);
  CHECK(ch && ch->cmsg_type == SCM_CREDENTIALS);
  if (ch && ch->cmsg_type == SCM_CREDENTIALS) {
    struct ucred uc;
    memcpy(&uc, CMSG_DATA(ch), sizeof uc);
    CHECK_EQ(uc.pid, pid);
  }
  int s = accept(ls, NULL, NULL);
  CHECK(s >= 0);
  struct ucred pc;
  socklen_t pcl = sizeof pc;
  CHECK_EQ(E(getsockopt(s, SOL_SOCKET, SO_PEERCRED, &pc, &pcl)), 0);
  CHECK_EQ(pc.pid, pid);
  int w;
  CHECK_EQ(recv_fd(s, buf, sizeof buf, &w, 0, NULL, 0), 4);
  CHECK(w >= 0);
  CHECK_EQ(E(write(w, "via", 3)), 3);
  CHECK_EQ(E(read(p[0], buf, 3)), 3);
  CHECK(!memcmp(buf, "via", 3));
  CHECK_EQ(E(send(s, "ok", 2, 0)), 2);
  int st;
  CHECK_EQ(waitpid(pid, &st, 0), pid);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  close(w);
  CHECK_EQ(E(read(p[0], buf, 3)), 0); /* every write end is gone */
  /* A stream reader with SO_PASSCRED: one read never joins two writers. */
  int sv[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  CHECK_EQ(E(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one)), 0);
  pid = fork();
  if (pid == 0)
    _exit(write(sv[0], "child", 5) == 5 ? 0 : 1);
  CHECK_EQ(waitpid(pid, &st, 0), pid);
  CHECK_EQ(E(write(sv[0], "parent", 6)), 6);
  struct ucred who[2];
  for (int i = 0; i < 2; i++) {
    m.msg_control = cb;
    m.msg_controllen = sizeof cb;
    iov.iov_len = sizeof buf;
    CHECK_EQ(E(recvmsg(sv[1], &m, 0)), i ? 6 : 5);
    ch = CMSG_FIRSTHDR(&m);
    CHECK(ch && ch->cmsg_type == SCM_CREDENTIALS);
    if (ch)
      memcpy(&who[i], CMSG_DATA(ch), sizeof who[i]);
  }
  CHECK_EQ(who[0].pid, pid);
  CHECK_EQ(who[1].pid, getpid());
  close(sv[0]);
  close(sv[1]);
  close(p[0]);
  close(s);
  close(ls);
  close(srv);
  struct sockaddr_un a;
  mkaddr(&a, "u-xproc");
  unlink(a.sun_path);
  end("cross_process");
}

/* ---- in-flight cycles ---- */

static int open_fds(void)
{
  int n = 0;
  for (int fd = 0; fd < 1024; fd++)
    n += fcntl(fd, F_GETFD) >= 0;
  return n;
}

/* Linux collects from a work item after a unix socket's release: close
 * one and give it up to 2 s (the guest collects at the close itself). */
static long settle(int fd, char *buf)
{
  long r = -EAGAIN;
  for (int i = 0; i < 200 && r == -EAGAIN; i++) {
    int sv[2];
    if (i % 10 == 0 && socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0) {
      close(sv[0]);
      close(sv[1]);
    }
    r = E(read(fd, buf, 1));
    if (r == -EAGAIN)
      msleep(10);
  }
  return r;
}

static void gc_self(void)
{
  begin();
  int base = open_fds();
  int sv[2], p[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  CHECK_EQ(pipe(p), 0);
  /* sv[0] travels in its own receive queue, with a pipe's write end. */
  CHECK_EQ(send_fd(sv[1], "a", 1, sv[0], 0), 1);
  CHECK_EQ(send_fd(sv[1], "b", 1, p[1], 0), 1);
  close(p[1]);
  char buf[4];
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  CHECK_EQ(E(read(p[0], buf, 1)), -EAGAIN); /* the write end is in flight */
  close(sv[0]);
  /* Only the queue holds sv[0] now: collected, and with it the pipe end. */
  CHECK_EQ(settle(p[0], buf), 0);
  CHECK_EQ(E(recv(sv[1], buf, 1, MSG_DONTWAIT)), 0); /* its peer is gone */
  close(sv[1]);
  close(p[0]);
  CHECK_EQ(open_fds(), base);
  end("gc_self");
}

static void gc_ring(void)
{
  begin();
  int base = open_fds();
  int ab[2], cd[2], p[2];
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, ab), 0);
  CHECK_EQ(socketpair(AF_UNIX, SOCK_DGRAM, 0, cd), 0);
  CHECK_EQ(pipe(p), 0);
  /* a waits in c's queue, c (with the pipe's write end) in a's. */
  CHECK_EQ(send_fd(cd[1], "a", 1, ab[0], 0), 1);
  CHECK_EQ(send_fd(ab[1], "c", 1, cd[0], 0), 1);
  CHECK_EQ(send_fd(ab[1], "p", 1, p[1], 0), 1);
  close(p[1]);
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  char buf[4];
  close(ab[0]);
  CHECK_EQ(E(read(p[0], buf, 1)), -EAGAIN); /* c is still held: all alive */
  close(cd[0]);
  CHECK_EQ(settle(p[0], buf), 0);
  CHECK_EQ(E(recv(ab[1], buf, 1, MSG_DONTWAIT)), 0);
  CHECK_EQ(E(send(cd[1], "x", 1, 0)), -ECONNREFUSED);
  close(ab[1]);
  close(cd[1]);
  close(p[0]);
  CHECK_EQ(open_fds(), base);
  /* Reachable from a held socket: kept, and usable when received. */
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, ab), 0);
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, cd), 0);
  CHECK_EQ(send_fd(cd[1], "a", 1, ab[0], 0), 1);
  close(ab[0]);
  int back;
  CHECK_EQ(recv_fd(cd[0], buf, sizeof buf, &back, 0, NULL, 0), 1);
  CHECK(back >= 0);
  CHECK_EQ(E(send(back, "hi", 2, 0)), 2);
  CHECK_EQ(E(recv(ab[1], buf, sizeof buf, 0)), 2);
  close(back);
  close(ab[1]);
  close(cd[0]);
  close(cd[1]);
  /* A receiver closed with a file queued: the file goes with it, though
   * the sender is still open. */
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, ab), 0);
  CHECK_EQ(socketpair(AF_UNIX, SOCK_DGRAM, 0, cd), 0);
  CHECK_EQ(pipe(p), 0);
  CHECK_EQ(send_fd(ab[1], "p", 1, p[1], 0), 1);
  CHECK_EQ(send_fd(cd[1], "p", 1, p[1], 0), 1);
  close(p[1]);
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  close(ab[0]);
  CHECK_EQ(E(read(p[0], buf, 1)), -EAGAIN); /* still queued at cd[0] */
  close(cd[0]);
  CHECK_EQ(E(read(p[0], buf, 1)), 0);
  close(p[0]);
  close(ab[1]);
  close(cd[1]);
  /* A named datagram socket sent to itself: its name is freed too. */
  int d = bound(SOCK_DGRAM, "@u-gc-dgram");
  CHECK_EQ(send_fd(d, "s", 1, d, 0), -ENOTCONN);
  int p2[2];
  CHECK_EQ(pipe(p2), 0);
  CHECK_EQ(sendto_name_fd(d, d, "@u-gc-dgram"), 1);
  CHECK_EQ(sendto_name_fd(d, p2[1], "@u-gc-dgram"), 1);
  close(p2[1]);
  fcntl(p2[0], F_SETFL, O_NONBLOCK);
  close(d);
  CHECK_EQ(settle(p2[0], buf), 0);
  close(p2[0]);
  int o = socket(AF_UNIX, SOCK_DGRAM, 0);
  CHECK_EQ(sendto_name(o, "x", 1, "@u-gc-dgram", 0), -ECONNREFUSED);
  close(o);
  CHECK_EQ(open_fds(), base);
  end("gc_ring");
}

/* "serve PATH": a stream echo server at PATH (one line per connection,
 * answered "echo: LINE"), until killed. "client PATH MSG": prints the
 * answer to MSG. For containers of one pod that share a volume
 * (tests/integration/podnet). */
static int serve(const char *path)
{
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  unlink(path);
  int l = socket(AF_UNIX, SOCK_STREAM, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 8)) {
    perror("serve");
    return 1;
  }
  for (;;) {
    int c = accept(l, NULL, NULL);
    if (c < 0)
      continue;
    char buf[256] = "echo: ";
    long n = read(c, buf + 6, sizeof buf - 7);
    if (n > 0 && write(c, buf, (size_t)n + 6) < 0)
      perror("write");
    close(c);
  }
}

static int client(const char *path, const char *msg)
{
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  int c = socket(AF_UNIX, SOCK_STREAM, 0);
  if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a)) {
    perror("connect");
    return 1;
  }
  char buf[256];
  long n = write(c, msg, strlen(msg)) == (long)strlen(msg) ? read(c, buf, sizeof buf - 1) : -1;
  if (n <= 0)
    return 1;
  buf[n] = 0;
  printf("%s\n", buf);
  return 0;
}

/* "fuzz N SEED": N random calls on a few unix sockets, names and
 * descriptors passed around (all non-blocking); the kernel must survive
 * and, once everything is closed, the descriptor count be back. */
static unsigned long rnd_state;
static unsigned rnd(unsigned n)
{
  rnd_state = rnd_state * 6364136223846793005ul + 1442695040888963407ul;
  return (unsigned)(rnd_state >> 33) % n;
}

static int fuzz(long n, unsigned long seed)
{
  rnd_state = seed;
  int base = open_fds();
  int fds[16];
  for (int i = 0; i < 16; i++)
    fds[i] = -1;
  const char *names[] = {"@u-fz-a", "@u-fz-b", "u-fz-c", "u-fz-d", "@u-fz-e"};
  const int types[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};
  char buf[512];
  for (long i = 0; i < n; i++) {
    int k = (int)rnd(16), fd = fds[k], other = fds[rnd(16)];
    const char *nm = names[rnd(5)];
    switch (rnd(12)) {
    case 0:
      if (fd >= 0)
        close(fd);
      fds[k] = socket(AF_UNIX, types[rnd(3)] | SOCK_NONBLOCK, 0);
      break;
    case 1: {
      if (fd >= 0)
        close(fd);
      int sv[2];
      if (socketpair(AF_UNIX, types[rnd(3)] | SOCK_NONBLOCK, 0, sv) == 0) {
        fds[k] = sv[0];
        int j = (int)rnd(16);
        j = j != k ? j : (k + 1) % 16;
        if (fds[j] >= 0)
          close(fds[j]);
        fds[j] = sv[1];
      }
      break;
    }
    case 2: {
      struct sockaddr_un a;
      socklen_t l = mkaddr(&a, nm);
      if (rnd(4) == 0)
        l = (socklen_t)rnd(sizeof a + 2);
      bind(fd, (struct sockaddr *)&a, l);
      break;
    }
    case 3:
      listen(fd, (int)rnd(4));
      break;
    case 4:
      connect_name(fd, nm);
      break;
    case 5: {
      int a = accept4(fd, NULL, NULL, SOCK_NONBLOCK);
      if (a >= 0) {
        if (fds[k] >= 0)
          close(fds[k]);
        fds[k] = a;
      }
      break;
    }
    case 6:
      sendto_name(fd, buf, rnd(sizeof buf), nm, MSG_DONTWAIT | MSG_NOSIGNAL);
      break;
    case 7:
      send_fd(fd, buf, rnd(64), rnd(3) ? other : fd, MSG_DONTWAIT | MSG_NOSIGNAL);
      break;
    case 8: {
      int got, mf;
      recv_fd(fd, buf, rnd(sizeof buf), &got, MSG_DONTWAIT | (rnd(2) ? MSG_PEEK : 0), &mf,
              rnd(3) ? 0 : 16 + rnd(24));
      if (got >= 0) {
        int j = (int)rnd(16);
        if (fds[j] >= 0)
          close(fds[j]);
        fds[j] = got;
      }
      break;
    }
    case 9:
      shutdown(fd, (int)rnd(4));
      break;
    case 10: {
      int one = (int)rnd(2);
      setsockopt(fd, SOL_SOCKET, rnd(2) ? SO_PASSCRED : SO_SNDBUF, &one, sizeof one);
      break;
    }
    default:
      if (fd >= 0)
        close(fd);
      fds[k] = -1;
    }
  }
  for (int i = 0; i < 16; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  for (int i = 0; i < 5; i++) {
    struct sockaddr_un a;
    mkaddr(&a, names[i]);
    if (names[i][0] != '@')
      unlink(a.sun_path);
  }
  /* Everything in flight was in queues of closed sockets: collected. */
  int left = open_fds();
  printf("fuzz: %ld calls, descriptors %d -> %d\n", n, base, left);
  return left == base ? 0 : 1;
}

/* "churn N": N stream pairs and N named stream connections made and
 * closed; a kernel that leaks per connection (two 64 KiB pipe buffers)
 * runs out of memory long before 8,000. */
static int churn(long n)
{
  int l = bound(SOCK_STREAM, "@u-churn");
  if (listen(l, 4))
    return 1;
  for (long i = 0; i < n; i++) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || write(sv[0], "x", 1) != 1) {
      printf("churn: socketpair %ld: %s\n", i, strerror(errno));
      return 1;
    }
    close(sv[0]);
    close(sv[1]);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect_name(c, "@u-churn") != 0) {
      printf("churn: connect %ld: %s\n", i, strerror(errno));
      return 1;
    }
    int a = accept(l, NULL, NULL);
    if (a < 0) {
      printf("churn: accept %ld: %s\n", i, strerror(errno));
      return 1;
    }
    close(a);
    close(c);
  }
  close(l);
  printf("churn: %ld pairs and connections\n", n);
  return 0;
}

int main(int argc, char **argv)
{
  if (argc == 3 && !strcmp(argv[1], "serve"))
    return serve(argv[2]);
  if (argc == 4 && !strcmp(argv[1], "client"))
    return client(argv[2], argv[3]);
  if (argc == 3 && !strcmp(argv[1], "churn"))
    return churn(atol(argv[2]));
  if (argc == 4 && !strcmp(argv[1], "fuzz"))
    return fuzz(atol(argv[2]), strtoul(argv[3], NULL, 0));
  if (argc > 1)
    snprintf(dir, sizeof dir, "%s", argv[1]);
  signal(SIGPIPE, SIG_IGN);
  dgram_path();
  dgram_abstract();
  dgram_connect();
  errors();
  dgram_full();
  dgram_peek_trunc();
  autobind();
  seqpacket_named();
  stream_peek();
  stream_reset();
  shutdown_msg();
  cross_process();
  gc_self();
  gc_ring();
  return t_done("t_unix");
}
