/* /proc/net in the guest (guestkernel/fs/proc_net.c): listens on a TCP and a
 * UDP port and binds a unix socket, then checks what /proc/net/{tcp,udp,
 * unix,dev} say about them, the /proc/net link, the directory listing, the
 * fd links' socket inodes and that a read in small chunks is one snapshot.
 * With "busybox" it also runs busybox netstat -tln and ifconfig -a and
 * looks for the port and the interfaces in their output.
 * Usage: t_procnet TCPPORT UDPPORT IFNAME PEERADDR [busybox]
 *        t_procnet close-idle PORT: accepts one connection, writes "k",
 *        closes it and the listener and sleeps 60 s (the peer must see the end of the
 *        stream while this sleeps: a posted host close is served before
 *        the vCPU halts). */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../guest/progs/t.h"

#define UNIX_PATH "/tmp/procnet.sock"

/* The whole file in one string (static buffer). */
static char *slurp(const char *path, size_t chunk)
{
  static char buf[1 << 18];
  int fd = open(path, O_RDONLY);
  size_t len = 0;
  if (fd < 0)
    return NULL;
  for (;;) {
    size_t want = sizeof buf - 1 - len < chunk ? sizeof buf - 1 - len : chunk;
    ssize_t n = read(fd, buf + len, want);
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = 0;
  return buf;
}

/* The inode of the socket in /proc/net/<file> whose local port is port,
 * state st (0 if none). */
static unsigned long find_inet(const char *file, unsigned port, unsigned st)
{
  char path[64];
  snprintf(path, sizeof path, "/proc/net/%s", file);
  char *s = slurp(path, 4096);
  if (!s)
    return 0;
  for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
    char laddr[64], raddr[64];
    unsigned lport, rport, state;
    unsigned long ino;
    if (sscanf(line, " %*d: %63[0-9A-Fa-f]:%X %63[0-9A-Fa-f]:%X %X %*X:%*X %*X:%*X %*X %*d %*d %lu",
               laddr, &lport, raddr, &rport, &state, &ino) == 6 &&
        lport == port && state == st)
      return ino;
  }
  return 0;
}

/* rx and tx packets of interface name in /proc/net/dev (false: not listed). */
static int dev_counts(const char *name, unsigned long long *rx, unsigned long long *tx)
{
  char *s = slurp("/proc/net/dev", 100);
  if (!s)
    return 0;
  for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
    char n[32];
    unsigned long long v[16];
    if (sscanf(line, " %31[^:]: %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", n, &v[0], &v[1],
               &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) == 11 &&
        !strcmp(n, name)) {
      *rx = v[1];
      *tx = v[9];
      return 1;
    }
  }
  return 0;
}

static unsigned long link_ino(int fd)
{
  char p[64], t[64];
  snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(p, t, sizeof t - 1);
  unsigned long ino = 0;
  if (n <= 0)
    return 0;
  t[n] = 0;
  return sscanf(t, "socket:[%lu]", &ino) == 1 ? ino : 0;
}

/* Output of /bin/busybox with args (stdout and stderr), or NULL. */
static char *busybox(const char *a1, const char *a2)
{
  static char out[1 << 16];
  int p[2];
  if (pipe(p))
    return NULL;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    dup2(p[1], 2);
    execl("/bin/busybox", "busybox", a1, a2, (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  size_t len = 0;
  ssize_t n;
  while ((n = read(p[0], out + len, sizeof out - 1 - len)) > 0)
    len += (size_t)n;
  close(p[0]);
  out[len] = 0;
  int st;
  waitpid(pid, &st, 0);
  return out;
}

int main(int argc, char **argv)
{
  if (argc == 3 && !strcmp(argv[1], "close-idle")) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1))
      return 2;
    int s = accept(ls, NULL, NULL);
    if (s < 0 || write(s, "k", 1) != 1)
      return 3;
    close(s);
    close(ls); /* no socket left for the idle loop to poll on the host */
    sleep(60);
    return 0;
  }
  if (argc < 5) {
    fprintf(stderr, "usage: t_procnet TCPPORT UDPPORT IFNAME PEERADDR [busybox]\n");
    return 2;
  }
  unsigned tport = (unsigned)atoi(argv[1]), uport = (unsigned)atoi(argv[2]);
  const char *ifname = argv[3];
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)tport)};
  int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  CHECK(bind(ls, (struct sockaddr *)&a, sizeof a) == 0);
  CHECK(listen(ls, 8) == 0);
  int us = socket(AF_INET, SOCK_DGRAM, 0);
  a.sin_port = htons((uint16_t)uport);
  CHECK(bind(us, (struct sockaddr *)&a, sizeof a) == 0);
  int xs = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un ua = {.sun_family = AF_UNIX};
  strcpy(ua.sun_path, UNIX_PATH);
  unlink(UNIX_PATH);
  CHECK(bind(xs, (struct sockaddr *)&ua, sizeof ua) == 0);
  CHECK(listen(xs, 4) == 0);

  /* /proc/net is a link to self/net; the directory lists the files. */
  char t[64];
  ssize_t n = readlink("/proc/net", t, sizeof t - 1);
  CHECK(n == 8 && !memcmp(t, "self/net", 8));
  DIR *d = opendir("/proc/self/net");
  int seen = 0;
  CHECK(d != NULL);
  for (struct dirent *e; d && (e = readdir(d));)
    seen |= (!strcmp(e->d_name, "tcp") ? 1 : 0) | (!strcmp(e->d_name, "udp") ? 2 : 0) |
            (!strcmp(e->d_name, "dev") ? 4 : 0) | (!strcmp(e->d_name, "unix") ? 8 : 0) |
            (!strcmp(e->d_name, "route") ? 16 : 0);
  if (d)
    closedir(d);
  CHECK_EQ(seen, 31);
  char pidnet[64];
  snprintf(pidnet, sizeof pidnet, "/proc/%d/net/tcp", (int)getpid());
  CHECK(access(pidnet, R_OK) == 0);
  CHECK(open("/proc/net/nosuchfile", O_RDONLY) < 0 && errno == ENOENT);
  CHECK(open("/proc/net/tcp", O_WRONLY) < 0);

  /* The listening TCP port (state 0A) and the bound UDP port (07), with
   * the host's inode numbers that the fd links show too. */
  unsigned long tino = find_inet("tcp", tport, 0x0A), uino = find_inet("udp", uport, 0x07);
  CHECK(tino != 0);
  CHECK(uino != 0);
  CHECK_EQ(link_ino(ls), tino);
  CHECK_EQ(link_ino(us), uino);

  /* The unix socket: listening flag, type 1, its path and its inode. */
  char *s = slurp("/proc/net/unix", 64);
  CHECK(s && !strncmp(s, "Num       RefCount Protocol Flags    Type St Inode Path\n", 55));
  int found = 0;
  unsigned long xino = link_ino(xs);
  CHECK(xino != 0);
  for (char *line = s ? strtok(s, "\n") : NULL; line; line = strtok(NULL, "\n")) {
    unsigned flags, type, st;
    unsigned long ino;
    char path[128];
    if (sscanf(line, "%*x: %*x %*x %x %x %x %lu %127s", &flags, &type, &st, &ino, path) == 5 &&
        !strcmp(path, UNIX_PATH))
      found = flags == 0x10000 && type == 1 && st == 1 && ino == xino;
  }
  CHECK(found);

  /* A read in 7-byte pieces is the same snapshot as one read. */
  int fd = open("/proc/net/tcp", O_RDONLY);
  static char whole[1 << 16], pieces[1 << 16];
  size_t wl = 0, pl = 0;
  while ((n = read(fd, pieces + pl, 7)) > 0)
    pl += (size_t)n;
  CHECK(lseek(fd, 0, SEEK_SET) == 0);
  while ((n = read(fd, whole + wl, sizeof whole - wl)) > 0)
    wl += (size_t)n;
  close(fd);
  CHECK(wl > 0 && wl == pl && !memcmp(whole, pieces, wl));

  /* /proc/net/dev lists lo and the veth; their counters grow with traffic
   * (a TCP connection over lo, UDP datagrams out of the veth to its peer). */
  unsigned long long lrx0 = 0, ltx0 = 0, vrx0 = 0, vtx0 = 0, lrx1 = 0, ltx1 = 0, vrx1 = 0, vtx1 = 0;
  CHECK(dev_counts("lo", &lrx0, &ltx0));
  CHECK(dev_counts(ifname, &vrx0, &vtx0));
  int c = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in lo = {.sin_family = AF_INET, .sin_port = htons((uint16_t)tport),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CHECK(connect(c, (struct sockaddr *)&lo, sizeof lo) == 0);
  int acc = accept(ls, NULL, NULL);
  CHECK(acc >= 0);
  CHECK(write(c, "ping", 4) == 4);
  CHECK(find_inet("tcp", tport, 0x01) != 0); /* the accepted connection, ESTABLISHED */
  struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(9)};
  CHECK(inet_pton(AF_INET, argv[4], &peer.sin_addr) == 1);
  for (int i = 0; i < 5; i++)
    CHECK(sendto(us, "x", 1, 0, (struct sockaddr *)&peer, sizeof peer) == 1);
  usleep(200000);
  CHECK(dev_counts("lo", &lrx1, &ltx1));
  CHECK(dev_counts(ifname, &vrx1, &vtx1));
  CHECK(lrx1 > lrx0 && ltx1 > ltx0);
  CHECK(vtx1 >= vtx0 + 5);
  printf("lo rx %llu->%llu tx %llu->%llu, %s rx %llu->%llu tx %llu->%llu\n", lrx0, lrx1, ltx0, ltx1,
         ifname, vrx0, vrx1, vtx0, vtx1);

  if (argc > 5 && !strcmp(argv[5], "busybox")) {
    char port[16];
    snprintf(port, sizeof port, ":%u ", tport);
    char *o = busybox("netstat", "-tln");
    CHECK(o && strstr(o, port) && strstr(o, "LISTEN"));
    if (!(o && strstr(o, port)))
      printf("netstat -tln: [%s]\n", o ? o : "");
    o = busybox("ifconfig", "-a");
    CHECK(o && strstr(o, "lo ") && strstr(o, ifname) && strstr(o, "RX packets"));
    if (!(o && strstr(o, ifname)))
      printf("ifconfig -a: [%s]\n", o ? o : "");
  }
  close(acc);
  close(c);
  unlink(UNIX_PATH);
  return t_done("t_procnet");
}
