/* Terminals (fs/tty.c): a container's or exec's stdio as a terminal whose
 * other side (the "master") is a host stream handle: quarkd's streaming
 * session, i.e. the user's kubectl/crictl/quark terminal.
 *
 * The guest runs the line discipline itself (canonical and raw modes,
 * echo, ICRNL/INLCR/IGNCR, OPOST/ONLCR/OCRNL, VINTR/VQUIT/VSUSP as signals
 * to the foreground process group, VERASE/VKILL/VWERASE/VEOF), termios and
 * window-size ioctls and the job-control ioctls (TIOCSCTTY, TIOCNOTTY,
 * TIOCGPGRP, TIOCSPGRP, TIOCGSID). /dev/ptmx makes pairs inside the guest
 * (master and /dev/pts/N slave, TIOCGPTN, TIOCSPTLCK, TIOCGPTPEER).
 *
 * Host -> guest bytes carry an in-band escape (QK_TTY_ESC): ESC ESC is a
 * literal 0xff; ESC 'W' rows(2, big endian) cols(2) is a window size
 * change (then SIGWINCH to the foreground group). Guest -> host bytes are
 * the terminal's output, unframed. */
#ifndef QK_TTY_H
#define QK_TTY_H

#include <stdint.h>

#define QK_TTY_ESC 0xffu
#define QK_TTY_WINSIZE 'W'

struct qk_file;
struct qk_process;

/* A new terminal on host handle hfd (never closed by the guest), opened
 * read-write; NULL when out of memory. The caller installs it as fds 0-2. */
struct qk_file *qk_tty_new(int hfd);
/* Makes the terminal of f the controlling terminal of p's session with p's
 * group in the foreground (a container's or exec's first process, which is
 * its session leader). No-op when f is not a terminal. */
void qk_tty_set_ctty(struct qk_file *f, struct qk_process *p);
/* The controlling terminal of the caller's session as a new file
 * (/dev/tty), or -ENXIO. */
int64_t qk_tty_open_ctty(struct qk_file **out);
/* /dev/ptmx: a new pseudo-terminal pair inside the guest, locked until
 * unlockpt; the master file. */
int64_t qk_tty_open_ptmx(int flags, struct qk_file **out);
/* /dev/pts/N: the slave of pair N (-EIO while locked), or a container's
 * terminal N; -ENOENT for no such terminal. */
int64_t qk_tty_open_pts(const char *abs, int flags, struct qk_file **out);
/* stat of /dev/ptmx and /dev/pts/N; -ENOENT for other paths. */
int qk_tty_stat(const char *abs, uint64_t stat_gpa);

#endif
