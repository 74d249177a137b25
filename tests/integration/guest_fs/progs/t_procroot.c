/* /proc/<pid>/root and /proc/<pid>/cwd as Linux's magic links: readlink
 * values, stat/open/opendir/exec/chdir through them, another process's cwd
 * and (chroot) root, ".." at the root, the ptrace read rule (EACCES for
 * another uid without CAP_SYS_PTRACE), and a host TCP socket's fstat
 * inode = its fd link's. Run as root, natively (Linux's answers) and in
 * the guest; the cross-container case is e2e_pidns_target's. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../guest/progs/t.h"

#define DIR_T "/tmp/procroot"

static char got[4096];

/* readlink into got ("" on failure, errno kept) */
static const char *rl(const char *path)
{
  ssize_t n = readlink(path, got, sizeof(got) - 1);
  got[n > 0 ? n : 0] = 0;
  return got;
}

static const char *slurp(const char *path)
{
  int fd = open(path, O_RDONLY);
  ssize_t n = fd < 0 ? -1 : read(fd, got, sizeof(got) - 1);
  got[n > 0 ? n : 0] = 0;
  if (fd >= 0)
    close(fd);
  return got;
}

static void put(const char *path, const char *s)
{
  FILE *f = fopen(path, "w");
  CHECK(f && fputs(s, f) >= 0);
  if (f)
    CHECK_EQ(fclose(f), 0);
}

static int same_file(const char *a, const char *b)
{
  struct stat x, y;
  return !stat(a, &x) && !stat(b, &y) && x.st_ino == y.st_ino && x.st_dev == y.st_dev;
}

static int lists(const char *dir, const char *name)
{
  DIR *d = opendir(dir);
  int found = 0;
  for (struct dirent *e; d && (e = readdir(d));)
    found |= !strcmp(e->d_name, name);
  if (d)
    closedir(d);
  return found;
}

/* A child that runs fn (chdir, chroot, setuid...), reports on a pipe and
 * waits for the parent to close the other one. */
static pid_t helper(void (*fn)(void), int *stop)
{
  int ready[2], hold[2];
  if (pipe(ready) || pipe(hold))
    return -1;
  pid_t c = fork();
  if (c == 0) {
    close(ready[0]);
    close(hold[1]);
    fn();
    char b = 1;
    if (write(ready[1], &b, 1) != 1)
      _exit(3);
    (void)read(hold[0], &b, 1);
    _exit(0);
  }
  close(ready[1]);
  close(hold[0]);
  char b = 0;
  CHECK_EQ(read(ready[0], &b, 1), 1);
  close(ready[0]);
  *stop = hold[1];
  return c;
}

static void reap(pid_t c, int stop)
{
  int ws = -1;
  close(stop);
  CHECK_EQ(waitpid(c, &ws, 0), c);
  CHECK_EQ(ws, 0);
}

static void in_sub(void)
{
  if (chdir(DIR_T "/sub"))
    _exit(4);
}

static void in_jail(void)
{
  if (chroot(DIR_T "/jail") || chdir("/d"))
    _exit(5);
}

static void self_links(const char *exe)
{
  CHECK(!strcmp(rl("/proc/self/root"), "/"));
  CHECK(chdir(DIR_T) == 0);
  CHECK(!strcmp(rl("/proc/self/cwd"), DIR_T));
  struct stat st;
  CHECK_EQ(lstat("/proc/self/root", &st), 0);
  CHECK(S_ISLNK(st.st_mode));
  CHECK_EQ(stat("/proc/self/root", &st), 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK(same_file("/proc/self/root", "/"));
  CHECK(same_file("/proc/self/root/tmp", "/tmp"));
  CHECK(same_file("/proc/self/root/..", "/"));
  CHECK(same_file("/proc/self/root/../../tmp", "/tmp"));
  CHECK(same_file("/proc/self/cwd", DIR_T));
  CHECK(same_file("/proc/self/cwd/..", "/tmp"));
  CHECK(!strcmp(slurp("/proc/self/root" DIR_T "/f"), "top\n"));
  CHECK(!strcmp(slurp("/proc/self/cwd/f"), "top\n"));
  CHECK(!strcmp(slurp("/proc/thread-self/root" DIR_T "/f"), "top\n"));
  CHECK(lists("/proc/self/root/", "tmp"));
  CHECK(lists("/proc/self/cwd", "sub"));
  CHECK(!strcmp(rl("/proc/self/root" DIR_T "/l"), "f"));
  CHECK_EQ(access("/proc/self/root" DIR_T "/f", R_OK | W_OK), 0);
  /* chdir through the links: the cwd is the directory they lead to */
  CHECK(chdir("/proc/self/cwd/sub") == 0);
  char cwd[256];
  CHECK(getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, DIR_T "/sub"));
  CHECK(chdir("/proc/self/root" DIR_T) == 0);
  CHECK(getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, DIR_T));
  CHECK(!strcmp(slurp("sub/g"), "sub\n"));
  /* an fd opened through the link: relative lookups from it */
  int dfd = open("/proc/self/root" DIR_T "/sub", O_RDONLY | O_DIRECTORY);
  CHECK(dfd >= 0);
  int fd = openat(dfd, "g", O_RDONLY);
  CHECK(fd >= 0);
  close(fd);
  close(dfd);
  /* exec through the link */
  char path[512];
  snprintf(path, sizeof(path), "/proc/self/root%s", exe);
  pid_t c = fork();
  if (c == 0) {
    execl(path, exe, "exit42", (char *)NULL);
    _exit(9);
  }
  int ws = -1;
  CHECK_EQ(waitpid(c, &ws, 0), c);
  CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 42);
}

static void other_links(void)
{
  int stop;
  pid_t c = helper(in_sub, &stop);
  char p[128], q[128];
  snprintf(p, sizeof(p), "/proc/%d/cwd", c);
  CHECK(!strcmp(rl(p), DIR_T "/sub"));
  snprintf(p, sizeof(p), "/proc/%d/cwd/g", c);
  CHECK(!strcmp(slurp(p), "sub\n"));
  snprintf(p, sizeof(p), "/proc/%d/cwd/..", c);
  CHECK(same_file(p, DIR_T));
  snprintf(p, sizeof(p), "/proc/%d/task/%d/cwd/g", c, c);
  CHECK(!strcmp(slurp(p), "sub\n"));
  snprintf(p, sizeof(p), "/proc/%d/root", c);
  CHECK(!strcmp(rl(p), "/"));
  reap(c, stop);
  /* a chrooted process: its root is the jail, seen through the link */
  c = helper(in_jail, &stop);
  snprintf(p, sizeof(p), "/proc/%d/root/marker", c);
  CHECK(!strcmp(slurp(p), "jail\n"));
  snprintf(p, sizeof(p), "/proc/%d/root", c);
  CHECK(lists(p, "marker") && !lists(p, "tmp"));
  snprintf(p, sizeof(p), "/proc/%d/cwd/h", c);
  CHECK(!strcmp(slurp(p), "jail d\n"));
  snprintf(p, sizeof(p), "/proc/%d/root/d", c);
  snprintf(q, sizeof(q), DIR_T "/jail/d");
  CHECK(same_file(p, q));
  /* chdir there: relative lookups stay in the jail */
  snprintf(p, sizeof(p), "/proc/%d/root/d", c);
  CHECK(chdir(p) == 0);
  CHECK(!strcmp(slurp("h"), "jail d\n"));
  CHECK(chdir("/") == 0);
  reap(c, stop);
  /* gone: ENOENT */
  errno = 0;
  CHECK(readlink(p, got, sizeof(got)) < 0 && errno == ENOENT);
}

/* A process of another uid without CAP_SYS_PTRACE may not follow or read
 * root's links (EACCES), its own it may. */
static void permissions(void)
{
  int stop;
  pid_t c = helper(in_sub, &stop);
  pid_t u = fork();
  if (u == 0) {
    if (setgid(4242) || setuid(4242))
      _exit(10);
    char p[128];
    snprintf(p, sizeof(p), "/proc/%d/root", c);
    struct stat st;
    if (readlink(p, got, sizeof(got)) >= 0 || errno != EACCES)
      _exit(11);
    if (lstat(p, &st) || !S_ISLNK(st.st_mode))
      _exit(12);
    if (stat(p, &st) == 0 || errno != EACCES)
      _exit(13);
    snprintf(p, sizeof(p), "/proc/%d/cwd/g", c);
    if (open(p, O_RDONLY) >= 0 || errno != EACCES)
      _exit(14);
    snprintf(p, sizeof(p), "/proc/%d/root/tmp", c);
    if (opendir(p) || errno != EACCES)
      _exit(15);
    if (strcmp(rl("/proc/self/root"), "/") || stat("/proc/self/root/tmp", &st))
      _exit(16);
    _exit(0);
  }
  int ws = -1;
  CHECK_EQ(waitpid(u, &ws, 0), u);
  CHECK_EQ(WIFEXITED(ws) ? WEXITSTATUS(ws) : 100 + ws, 0);
  reap(c, stop);
}

/* fstat of a host TCP socket: the inode its fd link and /proc/net/tcp say */
static void socket_inode(void)
{
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) {
    printf("ok: no AF_INET socket here (%d): inode check skipped\n", errno);
    return;
  }
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CHECK_EQ(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
  CHECK_EQ(listen(s, 1), 0);
  struct stat st, st2;
  CHECK_EQ(fstat(s, &st), 0);
  CHECK(S_ISSOCK(st.st_mode));
  char p[64], want[64];
  snprintf(p, sizeof(p), "/proc/self/fd/%d", s);
  snprintf(want, sizeof(want), "socket:[%lu]", (unsigned long)st.st_ino);
  CHECK(!strcmp(rl(p), want));
  CHECK_EQ(fstat(s, &st2), 0);
  CHECK_EQ(st2.st_ino, st.st_ino);
  close(s);
}

int main(int argc, char **argv)
{
  if (argc > 1 && !strcmp(argv[1], "exit42"))
    return 42;
  if (getuid() != 0) {
    printf("t_procroot: needs root (chroot, setuid)\n");
    return 77;
  }
  char exe[256];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  exe[n > 0 ? n : 0] = 0;
  CHECK(n > 0);
  mkdir(DIR_T, 0755);
  mkdir(DIR_T "/sub", 0755);
  mkdir(DIR_T "/jail", 0755);
  mkdir(DIR_T "/jail/d", 0755);
  put(DIR_T "/f", "top\n");
  put(DIR_T "/sub/g", "sub\n");
  put(DIR_T "/jail/marker", "jail\n");
  put(DIR_T "/jail/d/h", "jail d\n");
  unlink(DIR_T "/l");
  CHECK_EQ(symlink("f", DIR_T "/l"), 0);
  self_links(exe);
  other_links();
  permissions();
  socket_inode();
  return t_done("t_procroot");
}
