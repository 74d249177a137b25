/* Pseudo-terminals inside the guest (guestkernel/fs/tty.c): /dev/ptmx,
 * /dev/pts/N and the line discipline between them, as programs such as
 * script(1), expect or tmux use them. Prints "ok NAME" / "FAIL NAME" and
 * exits 1 when anything failed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int fails;

static void check(int ok, const char *what)
{
  if (ok) {
    printf("ok   %s\n", what);
  } else {
    fails++;
    printf("FAIL %s (errno %d %s)\n", what, errno, strerror(errno));
  }
  fflush(stdout);
}

/* Everything fd has within ms of quiet, NUL-terminated. */
static size_t drain(int fd, char *buf, size_t cap, int ms)
{
  size_t have = 0;
  while (have + 1 < cap) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0)
      break;
    ssize_t n = read(fd, buf + have, cap - 1 - have);
    if (n <= 0)
      break;
    have += (size_t)n;
  }
  buf[have] = 0;
  return have;
}

int main(void)
{
  char buf[512];
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  check(m >= 0, "posix_openpt");
  if (m < 0)
    return 1;
  check(grantpt(m) == 0 && unlockpt(m) == 0, "grantpt + unlockpt");
  char name_buf[64] = "";
  const char *pn = ptsname(m); /* a static buffer: copied */
  if (pn)
    snprintf(name_buf, sizeof name_buf, "%s", pn);
  const char *name = pn ? name_buf : NULL;
  check(name && !strncmp(name, "/dev/pts/", 9), "ptsname names /dev/pts/N");
  struct stat st;
  check(name && stat(name, &st) == 0 && S_ISCHR(st.st_mode), "stat of the slave: a char device");
  int s = name ? open(name, O_RDWR | O_NOCTTY) : -1;
  check(s >= 0, "open the slave");
  if (s < 0)
    return 1;
  check(isatty(s) && isatty(m), "isatty on both sides");

  /* Canonical mode with echo: a line reaches the slave, the echo the master. */
  check(write(m, "hello\n", 6) == 6, "master write");
  ssize_t n = read(s, buf, sizeof buf);
  check(n == 6 && !memcmp(buf, "hello\n", 6), "slave reads the line");
  drain(m, buf, sizeof buf, 100);
  check(!strcmp(buf, "hello\r\n"), "echo with ONLCR on the master");

  /* Output processing: \n -> \r\n. */
  check(write(s, "a\nb", 3) == 3, "slave write");
  drain(m, buf, sizeof buf, 100);
  check(!strcmp(buf, "a\r\nb"), "master reads a\\r\\nb");

  /* Line editing: two erases. */
  check(write(m, "abc\x7f\x7f" "d\n", 7) == 7, "master writes abc, 2 erases, d");
  n = read(s, buf, sizeof buf);
  check(n == 3 && !memcmp(buf, "ad\n", 3), "VERASE edits the line");
  drain(m, buf, sizeof buf, 100);

  /* Raw mode: bytes at once, no echo. */
  struct termios saved, raw;
  check(tcgetattr(s, &saved) == 0, "tcgetattr");
  raw = saved;
  cfmakeraw(&raw);
  check(tcsetattr(s, TCSANOW, &raw) == 0, "tcsetattr raw");
  check(write(m, "xy", 2) == 2, "master writes xy");
  n = read(s, buf, sizeof buf);
  check(n == 2 && !memcmp(buf, "xy", 2), "raw read without a newline");
  check(drain(m, buf, sizeof buf, 100) == 0, "no echo in raw mode");
  check(tcsetattr(s, TCSANOW, &saved) == 0, "back to canonical");

  /* Window size set on the master, seen on the slave. */
  struct winsize ws = {.ws_row = 30, .ws_col = 100};
  check(ioctl(m, TIOCSWINSZ, &ws) == 0, "TIOCSWINSZ on the master");
  memset(&ws, 0, sizeof ws);
  check(ioctl(s, TIOCGWINSZ, &ws) == 0 && ws.ws_row == 30 && ws.ws_col == 100,
        "TIOCGWINSZ on the slave");

  /* VEOF on an empty line: read returns 0. */
  check(write(m, "\x04", 1) == 1, "master writes ^D");
  check(read(s, buf, sizeof buf) == 0, "slave reads end of file");

  /* Job control: a child in its own session takes the slave as its
   * controlling terminal; ^C typed on the master is its SIGINT. */
  int sync[2];
  check(pipe(sync) == 0, "pipe");
  pid_t c = fork();
  if (c == 0) {
    close(sync[0]);
    setsid();
    int t = open(name, O_RDWR); /* a session leader's first terminal */
    pid_t fg = -1, sid = -1;
    int ok = t >= 0 && ioctl(t, TIOCGPGRP, &fg) == 0 && fg == getpgrp() &&
             ioctl(t, TIOCGSID, &sid) == 0 && sid == getsid(0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    if (write(sync[1], ok ? "y" : "n", 1) != 1)
      _exit(3);
    int sig = 0;
    sigwait(&set, &sig);
    _exit(sig == SIGINT ? 42 : 4);
  }
  close(sync[1]);
  char r = 0;
  check(read(sync[0], &r, 1) == 1 && r == 'y',
        "open without O_NOCTTY makes it the controlling terminal (TIOCGPGRP, TIOCGSID)");
  check(write(m, "\x03", 1) == 1, "master writes ^C");
  int wst = 0;
  check(waitpid(c, &wst, 0) == c && WIFEXITED(wst) && WEXITSTATUS(wst) == 42,
        "^C is SIGINT to the foreground group");
  drain(m, buf, sizeof buf, 100);
  check(strstr(buf, "^C") != NULL, "^C echoed as ^C");

  /* A new pair is locked until unlockpt. */
  int m2 = posix_openpt(O_RDWR | O_NOCTTY);
  const char *n2 = m2 >= 0 ? ptsname(m2) : NULL;
  errno = 0;
  int s2 = n2 ? open(n2, O_RDWR | O_NOCTTY) : -1;
  check(m2 >= 0 && n2 && s2 < 0 && errno == EIO, "a locked slave does not open (EIO)");
  check(n2 && strcmp(n2, name) != 0, "each pair has its own number");
  if (m2 >= 0)
    close(m2);

  /* Hang-up: the master closes, the slave reads end of file and cannot
   * write. */
  close(m);
  check(read(s, buf, sizeof buf) == 0, "slave reads 0 after the master closed");
  errno = 0;
  check(write(s, "x", 1) < 0 && errno == EIO, "slave write after the master closed: EIO");
  close(s);
  printf("%s: %d failure(s)\n", fails ? "FAIL" : "PASS", fails);
  return fails ? 1 : 0;
}
