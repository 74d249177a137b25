/* Terminals: the line discipline of a container's or exec's terminal whose
 * master side is a host stream handle (include/qk/tty.h).
 *
 * Input is processed when a reader (or poll) pulls it from the host, and
 * every TTY_TICK_NS by a kernel timer (so a VINTR typed while nobody reads
 * the terminal, e.g. a shell waiting for its foreground child, still
 * signals within that time). The
 * host handle is never read blocking: a reader that finds nothing looks
 * again every TTY_POLL_NS, parked meanwhile (other tasks run), so a shell
 * at its prompt never holds a host QCall worker.
 *
 * /dev/ptmx pairs have no host handle: a master write runs the line
 * discipline at once (signals and echo included) and wakes slave readers;
 * slave output (and echo) goes to the master's queue (mq). */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/task.h>
#include <qk/timer.h>
#include <qk/tty.h>

#define POLLIN 0x001
#define POLLOUT 0x004
#define POLLHUP 0x010

#define TTY_POLL_NS 4000000ull  /* 4 ms between looks at an idle host handle */
#define TTY_TICK_NS 20000000ull /* input processed every 20 ms when nobody reads */
#define TTY_LINE 4096u          /* canonical line limit (N_TTY_BUF_SIZE) */
#define TTY_RQ 8192u            /* input ready for readers */

/* ioctl numbers (x86-64) */
#define T_TCGETS 0x5401
#define T_TCSETS 0x5402
#define T_TCSETSW 0x5403
#define T_TCSETSF 0x5404
#define T_TCSBRK 0x5409
#define T_TCXONC 0x540A
#define T_TCFLSH 0x540B
#define T_TIOCSCTTY 0x540E
#define T_TIOCGPGRP 0x540F
#define T_TIOCSPGRP 0x5410
#define T_TIOCOUTQ 0x5411
#define T_TIOCGWINSZ 0x5413
#define T_TIOCSWINSZ 0x5414
#define T_FIONREAD 0x541B
#define T_TIOCNOTTY 0x5422
#define T_TIOCSETD 0x5423
#define T_TIOCGETD 0x5424
#define T_TCSBRKP 0x5425
#define T_TIOCGSID 0x5429
#define T_TIOCVHANGUP 0x5437

/* termios bits */
#define I_ISTRIP 0x20u
#define I_INLCR 0x40u
#define I_IGNCR 0x80u
#define I_ICRNL 0x100u
#define I_IXON 0x400u
#define O_OPOST 0x1u
#define O_ONLCR 0x4u
#define O_OCRNL 0x8u
#define L_ISIG 0x1u
#define L_ICANON 0x2u
#define L_ECHO 0x8u
#define L_ECHOE 0x10u
#define L_ECHOK 0x20u
#define L_ECHONL 0x40u
#define L_NOFLSH 0x80u
#define L_TOSTOP 0x100u
#define L_ECHOCTL 0x200u
#define L_ECHOKE 0x800u
#define L_IEXTEN 0x8000u

enum {
  VINTR,
  VQUIT,
  VERASE,
  VKILL,
  VEOF,
  VTIME,
  VMIN,
  VSWTC,
  VSTART,
  VSTOP,
  VSUSP,
  VEOL,
  VREPRINT,
  VDISCARD,
  VWERASE,
  VLNEXT,
  VEOL2,
  NCCS = 19
};

struct l_termios {
  uint32_t c_iflag, c_oflag, c_cflag, c_lflag;
  uint8_t c_line;
  uint8_t c_cc[NCCS];
};
_Static_assert(sizeof(struct l_termios) == 36, "kernel termios is 36 bytes");

struct l_winsize {
  uint16_t ws_row, ws_col, ws_xpixel, ws_ypixel;
};

struct qk_tty {
  uint32_t refs; /* files on it */
  int hfd;
  uint32_t index; /* /dev/pts/N number reported by fstat */
  struct l_termios tio;
  struct l_winsize ws;
  int sid, pgrp;          /* controlling session, foreground group (0: none) */
  struct qk_pidns *ns;    /* the namespace sid and pgrp belong to */
  uint8_t *in;            /* one page: bytes from the host */
  uint8_t *out;           /* one page: output on its way to the host */
  uint8_t line[TTY_LINE]; /* canonical line being edited */
  uint32_t line_len;
  uint8_t rq[TTY_RQ]; /* ready input (ring) */
  uint32_t rq_head, rq_len;
  uint32_t rq_lines;    /* canonical: complete lines (or EOF pushes) in rq */
  uint32_t eof_marks;   /* canonical: VEOFs on an empty line, each a read of 0 */
  bool hup;             /* the host side is gone */
  bool lnext;           /* the next byte is literal (VLNEXT) */
  uint8_t esc, esc_len; /* in-band escape decoding: 1 after ESC, then the frame */
  uint8_t esc_buf[5];
  struct qk_tty *next; /* every terminal, for /dev/tty */
  /* A pseudo-terminal pair made by /dev/ptmx: no host handle; the master
   * file reads the output (mq) and writes the input. */
  bool pair, locked, slave_seen;
  uint32_t masters, slaves;
  uint8_t mq[TTY_RQ];
  uint32_t mq_head, mq_len;
  /* Host terminals: input is taken every TTY_TICK_NS even when nobody
   * reads, so ^C reaches a foreground job (a shell waiting for sleep). */
  struct qk_ktimer tick;
};

static struct qk_tty *all_ttys;
static uint32_t next_index;

static const struct l_termios std_termios = {
    .c_iflag = I_ICRNL | I_IXON,
    .c_oflag = O_OPOST | O_ONLCR,
    .c_cflag = 0xfu /* B38400 */ | 0x30u /* CS8 */ | 0x80u /* CREAD */ | 0x400u /* HUPCL */,
    .c_lflag = L_ISIG | L_ICANON | L_ECHO | L_ECHOE | L_ECHOK | L_ECHOCTL | L_ECHOKE | L_IEXTEN,
    .c_cc = {[VINTR] = 3,
             [VQUIT] = 0x1c,
             [VERASE] = 0x7f,
             [VKILL] = 0x15,
             [VEOF] = 4,
             [VMIN] = 1,
             [VSTART] = 0x11,
             [VSTOP] = 0x13,
             [VSUSP] = 0x1a,
             [VREPRINT] = 0x12,
             [VDISCARD] = 0x0f,
             [VWERASE] = 0x17,
             [VLNEXT] = 0x16},
};

/* ---- output ---- */

/* Output is written whole (a write cannot park half done: the restart
 * model would repeat it); a full host buffer is waited out on the host, up
 * to ~5 s, then the terminal counts as hung up. */
static void host_write(struct qk_tty *t, const uint8_t *buf, uint32_t len)
{
  if (t->pair) { /* to the master's side; what does not fit is dropped */
    for (uint32_t i = 0; i < len && t->mq_len < TTY_RQ; i++, t->mq_len++)
      t->mq[(t->mq_head + t->mq_len) % TTY_RQ] = buf[i];
    qk_wake(t->mq);
    qk_wake(&qk_poll_wq);
    return;
  }
  unsigned waits = 0;
  while (len && !t->hup) {
    struct qk_iov one = {qk_va_to_pa(buf), len};
    int64_t r = qk_qcall(QK_OP_PWRITEV, (uint64_t)t->hfd, qk_va_to_pa(&one), 1, (uint64_t)-1, 0, 0);
    if ((r == -QK_EAGAIN || r == -QK_EINTR) && waits++ < 50) {
      struct qk_net_pollfd p = {(uint32_t)t->hfd, POLLOUT, 0};
      qk_qcall(QK_OP_NET_POLL, qk_va_to_pa(&p), 1, 100000000ull, 0, 0, 0);
      continue;
    }
    if (r <= 0) {
      t->hup = true;
      return;
    }
    buf += r;
    len -= (uint32_t)r;
  }
}

/* Output processing of n bytes of src into t->out, sent in page-sized
 * pieces. */
static void emit(struct qk_tty *t, const uint8_t *src, uint32_t n)
{
  uint32_t o = 0;
  bool post = t->tio.c_oflag & O_OPOST;
  for (uint32_t i = 0; i < n; i++) {
    uint8_t c = src[i];
    if (o + 2 > QK_PAGE_SIZE) {
      host_write(t, t->out, o);
      o = 0;
    }
    if (post && c == '\n' && (t->tio.c_oflag & O_ONLCR)) {
      t->out[o++] = '\r';
      t->out[o++] = '\n';
    } else if (post && c == '\r' && (t->tio.c_oflag & O_OCRNL)) {
      t->out[o++] = '\n';
    } else {
      t->out[o++] = c;
    }
  }
  if (o)
    host_write(t, t->out, o);
}

static void echo_char(struct qk_tty *t, uint8_t c)
{
  if ((t->tio.c_lflag & L_ECHOCTL) && (c < 32 || c == 0x7f) && c != '\n' && c != '\t') {
    uint8_t two[2] = {'^', (uint8_t)(c == 0x7f ? '?' : c + '@')};
    emit(t, two, 2);
  } else {
    emit(t, &c, 1);
  }
}

static void echo_erase(struct qk_tty *t, uint8_t c)
{
  /* A control character echoed as ^X takes two columns. */
  bool wide = (t->tio.c_lflag & L_ECHOCTL) && (c < 32 || c == 0x7f) && c != '\t';
  static const uint8_t bs[] = "\b \b\b \b";
  emit(t, bs, wide ? 6 : 3);
}

/* ---- input ---- */

static void rq_put(struct qk_tty *t, uint8_t c)
{
  if (t->rq_len == TTY_RQ)
    return; /* full: dropped, as Linux does past its buffer */
  t->rq[(t->rq_head + t->rq_len) % TTY_RQ] = c;
  t->rq_len++;
}

static void push_line(struct qk_tty *t)
{
  for (uint32_t i = 0; i < t->line_len; i++)
    rq_put(t, t->line[i]);
  t->line_len = 0;
  t->rq_lines++;
}

static void flush_input(struct qk_tty *t)
{
  t->line_len = 0;
  t->rq_len = 0;
  t->rq_lines = 0;
  t->eof_marks = 0;
}

/* Signals the foreground process group (Linux's isig). */
static void signal_fg(struct qk_tty *t, int sig)
{
  if (!t->pgrp)
    return;
  struct qk_siginfo_lite si = {.code = 0x80 /* SI_KERNEL */};
  for (struct qk_process *p = qk_all_procs; p; p = p->next_all)
    if (!p->zombie && p->ns == t->ns && p->pgid == t->pgrp)
      qk_signal_proc(p, sig, &si);
}

static void set_winsize(struct qk_tty *t, uint16_t rows, uint16_t cols)
{
  if (t->ws.ws_row == rows && t->ws.ws_col == cols)
    return;
  t->ws.ws_row = rows;
  t->ws.ws_col = cols;
  signal_fg(t, 28 /* SIGWINCH */);
}

static void input_char(struct qk_tty *t, uint8_t c)
{
  const struct l_termios *tio = &t->tio;
  const uint8_t *cc = tio->c_cc;
  uint32_t lf = tio->c_lflag;
  if (t->lnext) {
    t->lnext = false;
    goto literal;
  }
  if (tio->c_iflag & I_ISTRIP)
    c &= 0x7f;
  if (c == '\r') {
    if (tio->c_iflag & I_IGNCR)
      return;
    if (tio->c_iflag & I_ICRNL)
      c = '\n';
  } else if (c == '\n' && (tio->c_iflag & I_INLCR)) {
    c = '\r';
  }
  if (lf & L_ISIG) {
    int sig = 0;
    if (c && c == cc[VINTR])
      sig = 2; /* SIGINT */
    else if (c && c == cc[VQUIT])
      sig = 3; /* SIGQUIT */
    else if (c && c == cc[VSUSP])
      sig = 20; /* SIGTSTP */
    if (sig) {
      if (!(lf & L_NOFLSH))
        flush_input(t);
      if (lf & L_ECHO)
        echo_char(t, c);
      signal_fg(t, sig);
      return;
    }
  }
  if ((lf & L_IEXTEN) && c && c == cc[VLNEXT]) {
    t->lnext = true;
    return;
  }
  if (lf & L_ICANON) {
    if (c && c == cc[VERASE]) {
      if (t->line_len) {
        uint8_t gone = t->line[--t->line_len];
        if ((lf & L_ECHO) && (lf & L_ECHOE))
          echo_erase(t, gone);
      }
      return;
    }
    if ((lf & L_IEXTEN) && c && c == cc[VWERASE]) {
      while (t->line_len && t->line[t->line_len - 1] == ' ')
        echo_erase(t, t->line[--t->line_len]);
      while (t->line_len && t->line[t->line_len - 1] != ' ') {
        uint8_t gone = t->line[--t->line_len];
        if ((lf & L_ECHO) && (lf & L_ECHOE))
          echo_erase(t, gone);
      }
      return;
    }
    if (c && c == cc[VKILL]) {
      if ((lf & L_ECHO) && (lf & L_ECHOKE)) {
        while (t->line_len)
          echo_erase(t, t->line[--t->line_len]);
      } else if ((lf & L_ECHO) && (lf & L_ECHOK)) {
        echo_char(t, c);
        emit(t, (const uint8_t *)"\n", 1);
      }
      t->line_len = 0;
      return;
    }
    if (c && c == cc[VEOF]) {
      if (t->line_len)
        push_line(t); /* the line so far, without the EOF character */
      else
        t->eof_marks++; /* a read returns 0 once what is queued went out */
      return;
    }
    if (c == '\n' || (c && (c == cc[VEOL] || c == cc[VEOL2]))) {
      if (t->line_len < TTY_LINE)
        t->line[t->line_len++] = c;
      if ((lf & L_ECHO) || (c == '\n' && (lf & L_ECHONL)))
        echo_char(t, c);
      push_line(t);
      return;
    }
  literal:
    if (t->line_len >= TTY_LINE - 1)
      return; /* full: only a newline still fits */
    t->line[t->line_len++] = c;
    if (lf & L_ECHO)
      echo_char(t, c);
    return;
  }
  rq_put(t, c);
  if (lf & L_ECHO)
    echo_char(t, c);
}

/* One byte from the host: in-band frames first. */
static void input_byte(struct qk_tty *t, uint8_t c)
{
  if (t->esc) {
    if (t->esc_len == 0 && c == QK_TTY_ESC) {
      t->esc = 0;
      input_char(t, c);
      return;
    }
    t->esc_buf[t->esc_len++] = c;
    if (t->esc_buf[0] != QK_TTY_WINSIZE) {
      t->esc = 0; /* unknown frame: dropped */
      t->esc_len = 0;
      return;
    }
    if (t->esc_len == 5) {
      set_winsize(t, (uint16_t)(t->esc_buf[1] << 8 | t->esc_buf[2]),
                  (uint16_t)(t->esc_buf[3] << 8 | t->esc_buf[4]));
      t->esc = 0;
      t->esc_len = 0;
    }
    return;
  }
  if (c == QK_TTY_ESC) {
    t->esc = 1;
    t->esc_len = 0;
    return;
  }
  input_char(t, c);
}

/* Takes what the host has now, without waiting: > 0 bytes processed, 0
 * none there, < 0 the host side is gone. */
static int64_t pull(struct qk_tty *t)
{
  if (t->pair) /* input comes from master writes */
    return t->masters ? 0 : -QK_EIO;
  if (t->hup)
    return -QK_EIO;
  if (t->rq_len == TTY_RQ)
    return 0; /* no room: the host keeps it */
  struct qk_net_pollfd p = {(uint32_t)t->hfd, POLLIN, 0};
  int64_t r = qk_qcall(QK_OP_NET_POLL, qk_va_to_pa(&p), 1, 0, 0, 0, 0);
  if (r < 0 || !(p.revents & (POLLIN | POLLHUP | 0x008 /* POLLERR */)))
    return r < 0 && r != -QK_EINTR ? r : 0;
  uint32_t room = TTY_RQ - t->rq_len;
  struct qk_iov one = {qk_va_to_pa(t->in), room < QK_PAGE_SIZE ? room : QK_PAGE_SIZE};
  r = qk_qcall(QK_OP_PREADV, (uint64_t)t->hfd, qk_va_to_pa(&one), 1, (uint64_t)-1, 0, 0);
  if (r == -QK_EAGAIN || r == -QK_EINTR)
    return 0;
  if (r <= 0) {
    t->hup = true;
    return -QK_EIO;
  }
  for (int64_t i = 0; i < r; i++)
    input_byte(t, t->in[i]);
  return r;
}

/* Bytes a read may take now (canonical: up to the end of the first line). */
static uint32_t readable(struct qk_tty *t)
{
  if (!t->rq_len)
    return 0;
  if (!(t->tio.c_lflag & L_ICANON))
    return t->rq_len;
  if (!t->rq_lines)
    return 0;
  for (uint32_t i = 0; i < t->rq_len; i++) {
    uint8_t c = t->rq[(t->rq_head + i) % TTY_RQ];
    if (c == '\n' || (c && (c == t->tio.c_cc[VEOL] || c == t->tio.c_cc[VEOL2])))
      return i + 1;
  }
  return t->rq_len; /* a line pushed by VEOF */
}

static int64_t copy_out(struct qk_tty *t, const struct qk_uio *u, uint32_t n)
{
  uint64_t done = 0;
  for (unsigned i = 0; i < u->cnt && done < n; i++) {
    uint64_t base = u->iov[i].base, want = u->iov[i].len;
    while (want && done < n) {
      uint32_t chunk = TTY_RQ - t->rq_head;
      if (chunk > n - done)
        chunk = (uint32_t)(n - done);
      if (chunk > want)
        chunk = (uint32_t)want;
      if (qk_copy_to_user(base, t->rq + t->rq_head, chunk))
        return done ? (int64_t)done : -QK_EFAULT;
      t->rq_head = (t->rq_head + chunk) % TTY_RQ;
      t->rq_len -= chunk;
      base += chunk;
      want -= chunk;
      done += chunk;
    }
  }
  if ((t->tio.c_lflag & L_ICANON) && t->rq_lines) {
    /* A line is consumed once its end went out (or all that was pushed). */
    bool ended = !t->rq_len;
    if (!ended && done) {
      uint8_t last = t->rq[(t->rq_head + TTY_RQ - 1) % TTY_RQ];
      ended = last == '\n' || (last && (last == t->tio.c_cc[VEOL] || last == t->tio.c_cc[VEOL2]));
    }
    if (ended)
      t->rq_lines--;
  }
  if (!t->rq_len)
    t->rq_lines = 0;
  return (int64_t)done;
}

static bool same_session(struct qk_tty *t);

/* Job control: a process of the terminal's session outside its
 * foreground group (sig: SIGTTIN for a read, SIGTTOU for a TOSTOP write or
 * a settings change); task/signal.c decides as Linux does. */
static int64_t bg_check(struct qk_tty *t, int sig)
{
  if (!same_session(t) || !t->pgrp || qk_current()->proc->pgid == t->pgrp)
    return 0;
  return qk_signal_tty_background(sig);
}

static int64_t tty_read(struct qk_file *f, const struct qk_uio *u)
{
  struct qk_tty *t = f->priv;
  int64_t bg = bg_check(t, 21 /* SIGTTIN */);
  if (bg)
    return bg;
  if (!u->total)
    return 0;
  for (;;) {
    bool canon = t->tio.c_lflag & L_ICANON;
    uint32_t n = readable(t);
    uint32_t vmin = t->tio.c_cc[VMIN];
    if (n && (canon || n >= vmin || n >= u->total))
      return copy_out(t, u, n < u->total ? n : (uint32_t)u->total);
    if (canon && t->eof_marks && !t->rq_len) {
      t->eof_marks--;
      return 0;
    }
    int64_t r = pull(t);
    if (r > 0)
      continue;
    if (r < 0) /* hung up: what is left, then end of file */
      return n ? copy_out(t, u, n < u->total ? n : (uint32_t)u->total) : 0;
    if (!canon && vmin == 0)
      return n ? copy_out(t, u, n < u->total ? n : (uint32_t)u->total) : 0;
    if (f->flags & L_O_NONBLOCK)
      return -QK_EAGAIN;
    if (t->pair) /* woken by a master write or close */
      return qk_block(t, ~0ull);
    /* Nothing yet: park and look again (the restart model). A fresh
     * deadline each time: qk_wait_deadline would give a restarted read
     * its first, expired one (and qk_block then -ETIMEDOUT). */
    return qk_block(t, qk_time_monotonic_ns() + TTY_POLL_NS);
  }
}

static int64_t tty_write(struct qk_file *f, const struct qk_uio *u)
{
  struct qk_tty *t = f->priv;
  if (t->hup || (t->pair && !t->masters))
    return -QK_EIO;
  int64_t bg = (t->tio.c_lflag & L_TOSTOP) ? bg_check(t, 22 /* SIGTTOU */) : 0;
  if (bg)
    return bg;
  /* Input that arrived meanwhile gets its signals and echo in order. */
  pull(t);
  uint64_t done = 0;
  uint8_t buf[512];
  for (unsigned i = 0; i < u->cnt; i++) {
    uint64_t base = u->iov[i].base, left = u->iov[i].len;
    while (left) {
      uint32_t chunk = left < sizeof buf ? (uint32_t)left : (uint32_t)sizeof buf;
      if (t->pair && TTY_RQ - t->mq_len < 2 * chunk) { /* the master reads slower */
        if (done)
          return (int64_t)done;
        if (f->flags & L_O_NONBLOCK)
          return -QK_EAGAIN;
        return qk_block(t->mq + 1, ~0ull);
      }
      if (qk_copy_from_user(buf, base, chunk))
        return done ? (int64_t)done : -QK_EFAULT;
      emit(t, buf, chunk);
      if (t->hup)
        return done ? (int64_t)done : -QK_EIO;
      base += chunk;
      left -= chunk;
      done += chunk;
    }
  }
  return (int64_t)done;
}

static int64_t tty_rw(struct qk_file *f, const struct qk_uio *u, int64_t off, bool write)
{
  if (off >= 0)
    return -QK_ESPIPE;
  return write ? tty_write(f, u) : tty_read(f, u);
}

static int tty_fstat(struct qk_file *f, uint64_t gpa)
{
  struct qk_tty *t = f->priv;
  struct l_stat *st = qk_pa_to_va(gpa);
  memset(st, 0, sizeof(*st));
  st->st_dev = 22;
  st->st_ino = 0x20000 + t->index;
  st->st_nlink = 1;
  st->st_mode = L_S_IFCHR | 0620;
  st->st_rdev = (136ull << 8) | t->index; /* /dev/pts/N */
  st->st_blksize = 1024;
  return 0;
}

static int tty_poll(struct qk_file *f)
{
  struct qk_tty *t = f->priv;
  if (t->pair) {
    int ev = TTY_RQ - t->mq_len >= 1024 ? POLLOUT : 0;
    if (readable(t) || t->eof_marks)
      ev |= POLLIN;
    return t->masters ? ev : ev | POLLIN | POLLHUP;
  }
  pull(t);
  if (t->hup)
    return POLLIN | POLLHUP;
  if (readable(t) || t->eof_marks)
    return POLLIN | POLLOUT;
  /* Nothing here yet, and no one would wake a poller when input comes:
   * readable, as the host stdio handles are; the read then waits. */
  return POLLIN | POLLOUT;
}

static bool same_session(struct qk_tty *t)
{
  struct qk_process *p = qk_current()->proc;
  return t->sid && p->ns == t->ns && p->sid == t->sid;
}

static int64_t tty_ioctl(struct qk_file *f, uint64_t cmd, uint64_t arg)
{
  struct qk_tty *t = f->priv;
  struct qk_process *p = qk_current()->proc;
  switch ((uint32_t)cmd) {
  case T_TCGETS:
    return qk_copy_to_user(arg, &t->tio, sizeof t->tio) ? -QK_EFAULT : 0;
  case T_TCSETS:
  case T_TCSETSW:
  case T_TCSETSF: {
    struct l_termios n;
    if (qk_copy_from_user(&n, arg, sizeof n))
      return -QK_EFAULT;
    int64_t bg = bg_check(t, 22 /* SIGTTOU */);
    if (bg)
      return bg;
    if ((uint32_t)cmd == T_TCSETSF)
      flush_input(t);
    bool was_canon = t->tio.c_lflag & L_ICANON;
    t->tio = n;
    if (was_canon && !(n.c_lflag & L_ICANON) && t->line_len) {
      /* The half-edited line becomes readable input in raw mode. */
      for (uint32_t i = 0; i < t->line_len; i++)
        rq_put(t, t->line[i]);
      t->line_len = 0;
    }
    if (!(n.c_lflag & L_ICANON))
      t->rq_lines = 0;
    return 0;
  }
  case T_TIOCGWINSZ:
    pull(t); /* a resize that is on its way */
    return qk_copy_to_user(arg, &t->ws, sizeof t->ws) ? -QK_EFAULT : 0;
  case T_TIOCSWINSZ: {
    struct l_winsize w;
    if (qk_copy_from_user(&w, arg, sizeof w))
      return -QK_EFAULT;
    t->ws.ws_xpixel = w.ws_xpixel;
    t->ws.ws_ypixel = w.ws_ypixel;
    set_winsize(t, w.ws_row, w.ws_col);
    return 0;
  }
  case T_TIOCSCTTY:
    if (same_session(t))
      return 0;
    if (p->pid != p->sid)
      return -QK_EPERM; /* only a session leader */
    if (t->sid && !(arg == 1 && p->euid == 0))
      return -QK_EPERM; /* another session's (root may steal it) */
    for (struct qk_tty *o = all_ttys; o; o = o->next)
      if (o != t && o->sid == p->sid && o->ns == p->ns)
        return -QK_EPERM; /* the session has one already */
    t->sid = p->sid;
    t->pgrp = p->pgid;
    t->ns = p->ns;
    return 0;
  case T_TIOCNOTTY:
    if (!same_session(t))
      return -QK_ENOTTY;
    if (p->pid == p->sid) {
      signal_fg(t, 1 /* SIGHUP */);
      signal_fg(t, 18 /* SIGCONT */);
      t->sid = t->pgrp = 0;
    }
    return 0;
  case T_TIOCGPGRP: {
    if (!same_session(t))
      return -QK_ENOTTY;
    int32_t g = t->pgrp;
    return qk_copy_to_user(arg, &g, sizeof g) ? -QK_EFAULT : 0;
  }
  case T_TIOCSPGRP: {
    int32_t g;
    if (qk_copy_from_user(&g, arg, sizeof g))
      return -QK_EFAULT;
    if (!same_session(t))
      return -QK_ENOTTY;
    int64_t bg = bg_check(t, 22 /* SIGTTOU */);
    if (bg)
      return bg == -QK_EIO ? -QK_ENOTTY : bg;
    if (g < 0)
      return -QK_EINVAL;
    bool found = false;
    for (struct qk_process *q = qk_all_procs; q && !found; q = q->next_all)
      found = !q->zombie && q->ns == t->ns && q->pgid == g;
    for (struct qk_process *q = qk_all_procs; q && found; q = q->next_all)
      if (!q->zombie && q->ns == t->ns && q->pgid == g && q->sid != t->sid)
        return -QK_EPERM;
    if (!found)
      return -QK_ESRCH;
    t->pgrp = g;
    return 0;
  }
  case T_TIOCGSID: {
    if (!same_session(t))
      return -QK_ENOTTY;
    int32_t s = t->sid;
    return qk_copy_to_user(arg, &s, sizeof s) ? -QK_EFAULT : 0;
  }
  case T_FIONREAD: {
    pull(t);
    int32_t n = (int32_t)readable(t);
    return qk_copy_to_user(arg, &n, sizeof n) ? -QK_EFAULT : 0;
  }
  case T_TIOCOUTQ: {
    int32_t n = 0;
    return qk_copy_to_user(arg, &n, sizeof n) ? -QK_EFAULT : 0;
  }
  case T_TCFLSH:
    if (arg == 0 || arg == 2) /* TCIFLUSH, TCIOFLUSH */
      flush_input(t);
    return arg <= 2 ? 0 : -QK_EINVAL;
  case T_TCSBRK:
  case T_TCSBRKP:
  case T_TCXONC:
    return 0; /* output is never held back here */
  case T_TIOCGETD: {
    int32_t d = 0; /* N_TTY */
    return qk_copy_to_user(arg, &d, sizeof d) ? -QK_EFAULT : 0;
  }
  case T_TIOCSETD: {
    int32_t d;
    if (qk_copy_from_user(&d, arg, sizeof d))
      return -QK_EFAULT;
    return d == 0 ? 0 : -QK_EINVAL;
  }
  case T_TIOCVHANGUP:
    return -QK_EPERM;
  default:
    return -QK_ENOTTY;
  }
}

static void tty_put(struct qk_tty *t)
{
  if (--t->refs)
    return;
  qk_ktimer_cancel(&t->tick);
  for (struct qk_tty **pp = &all_ttys; *pp; pp = &(*pp)->next)
    if (*pp == t) {
      *pp = t->next;
      break;
    }
  qk_page_free(qk_va_to_pa(t->in));
  qk_page_free(qk_va_to_pa(t->out));
  qk_kfree(t);
}

static void tty_release(struct qk_file *f)
{
  struct qk_tty *t = f->priv;
  if (t->pair && !--t->slaves) { /* the master reads EIO from now on */
    qk_wake(t->mq);
    qk_wake(&qk_poll_wq);
  }
  tty_put(t);
}

static const struct qk_file_ops tty_ops = {
    .rw = tty_rw,
    .fstat = tty_fstat,
    .ioctl = tty_ioctl,
    .poll = tty_poll,
    .release = tty_release,
};

static struct qk_file *tty_file(struct qk_tty *t, int flags)
{
  char path[32] = "/dev/pts/";
  uint32_t n = t->index, len = 9;
  char digits[12];
  uint32_t k = 0;
  do
    digits[k++] = (char)('0' + n % 10);
  while ((n /= 10) && k < sizeof digits);
  while (k)
    path[len++] = digits[--k];
  path[len] = 0;
  struct qk_file *f = qk_file_new(&tty_ops, L_O_RDWR | ((uint32_t)flags & L_O_NONBLOCK), path);
  if (!f)
    return NULL;
  f->priv = t;
  t->refs++;
  if (t->pair) {
    t->slaves++;
    t->slave_seen = true;
  }
  return f;
}

static struct qk_tty *tty_alloc(int hfd)
{
  struct qk_tty *t = qk_kzalloc(sizeof *t);
  if (!t)
    return NULL;
  uint64_t in = qk_page_alloc(false), out = in ? qk_page_alloc(false) : 0;
  if (!out) {
    if (in)
      qk_page_free(in);
    qk_kfree(t);
    return NULL;
  }
  t->in = qk_pa_to_va(in);
  t->out = qk_pa_to_va(out);
  t->hfd = hfd;
  t->tio = std_termios;
  t->ws = (struct l_winsize){24, 80, 0, 0};
  t->index = next_index++;
  t->next = all_ttys;
  all_ttys = t;
  return t;
}

/* The input timer of a host terminal: takes what the host has (signals
 * and echo happen now) and wakes readers and pollers when something came. */
static void tty_tick(struct qk_ktimer *kt, uint64_t count)
{
  (void)count;
  struct qk_tty *t = (struct qk_tty *)((char *)kt - __builtin_offsetof(struct qk_tty, tick));
  if (t->hup) {
    qk_ktimer_cancel(kt);
    return;
  }
  if (pull(t) != 0) {
    qk_wake(t);
    qk_wake(&qk_poll_wq);
  }
}

struct qk_file *qk_tty_new(int hfd)
{
  struct qk_tty *t = tty_alloc(hfd);
  if (!t)
    return NULL;
  t->tick.fire = tty_tick;
  qk_ktimer_arm(&t->tick, qk_time_monotonic_ns() + TTY_TICK_NS, TTY_TICK_NS);
  t->refs++; /* held while the file is made */
  struct qk_file *f = tty_file(t, 0);
  tty_put(t);
  return f;
}

void qk_tty_set_ctty(struct qk_file *f, struct qk_process *p)
{
  if (!f || f->ops != &tty_ops)
    return;
  struct qk_tty *t = f->priv;
  t->sid = p->sid;
  t->pgrp = p->pgid;
  t->ns = p->ns;
}

int64_t qk_tty_open_ctty(struct qk_file **out)
{
  struct qk_process *p = qk_current()->proc;
  for (struct qk_tty *t = all_ttys; t; t = t->next)
    if (t->sid && t->sid == p->sid && t->ns == p->ns) {
      *out = tty_file(t, 0);
      return *out ? 0 : -QK_ENOMEM;
    }
  return -QK_ENXIO;
}

/* ---- /dev/ptmx: pseudo-terminal pairs inside the guest ---- */

#define T_TIOCGPTN 0x80045430u
#define T_TIOCSPTLCK 0x40045431u
#define T_TIOCGPTPEER 0x5441u

static int64_t ptm_read(struct qk_file *f, const struct qk_uio *u)
{
  struct qk_tty *t = f->priv;
  if (!t->mq_len) {
    if (t->slave_seen && !t->slaves)
      return -QK_EIO; /* every slave closed */
    if (f->flags & L_O_NONBLOCK)
      return -QK_EAGAIN;
    return qk_block(t->mq, ~0ull);
  }
  uint64_t done = 0;
  for (unsigned i = 0; i < u->cnt && t->mq_len; i++) {
    uint64_t base = u->iov[i].base, want = u->iov[i].len;
    while (want && t->mq_len) {
      uint32_t chunk = TTY_RQ - t->mq_head;
      if (chunk > t->mq_len)
        chunk = t->mq_len;
      if (chunk > want)
        chunk = (uint32_t)want;
      if (qk_copy_to_user(base, t->mq + t->mq_head, chunk))
        return done ? (int64_t)done : -QK_EFAULT;
      t->mq_head = (t->mq_head + chunk) % TTY_RQ;
      t->mq_len -= chunk;
      base += chunk;
      want -= chunk;
      done += chunk;
    }
  }
  qk_wake(t->mq + 1); /* writers waiting for room */
  qk_wake(&qk_poll_wq);
  return (int64_t)done;
}

static int64_t ptm_write(struct qk_file *f, const struct qk_uio *u)
{
  struct qk_tty *t = f->priv;
  uint64_t done = 0;
  uint8_t buf[256];
  for (unsigned i = 0; i < u->cnt; i++) {
    uint64_t base = u->iov[i].base, left = u->iov[i].len;
    while (left) {
      uint32_t chunk = left < sizeof buf ? (uint32_t)left : (uint32_t)sizeof buf;
      if (qk_copy_from_user(buf, base, chunk))
        return done ? (int64_t)done : -QK_EFAULT;
      for (uint32_t k = 0; k < chunk; k++)
        input_char(t, buf[k]); /* no in-band frames here: the master is local */
      base += chunk;
      left -= chunk;
      done += chunk;
    }
  }
  qk_wake(t);
  qk_wake(&qk_poll_wq);
  return (int64_t)done;
}

static int64_t ptm_rw(struct qk_file *f, const struct qk_uio *u, int64_t off, bool write)
{
  if (off >= 0)
    return -QK_ESPIPE;
  return write ? ptm_write(f, u) : ptm_read(f, u);
}

static int ptm_fstat(struct qk_file *f, uint64_t gpa)
{
  struct l_stat *st = qk_pa_to_va(gpa);
  (void)f;
  memset(st, 0, sizeof(*st));
  st->st_dev = 5;
  st->st_ino = 0x1ff;
  st->st_nlink = 1;
  st->st_mode = L_S_IFCHR | 0666;
  st->st_rdev = (5ull << 8) | 2; /* /dev/ptmx */
  st->st_blksize = 1024;
  return 0;
}

static int ptm_poll(struct qk_file *f)
{
  struct qk_tty *t = f->priv;
  int ev = POLLOUT;
  if (t->mq_len)
    ev |= POLLIN;
  if (t->slave_seen && !t->slaves)
    ev |= POLLIN | POLLHUP;
  return ev;
}

static int64_t ptm_ioctl(struct qk_file *f, uint64_t cmd, uint64_t arg)
{
  struct qk_tty *t = f->priv;
  switch ((uint32_t)cmd) {
  case T_TIOCGPTN: {
    uint32_t n = t->index;
    return qk_copy_to_user(arg, &n, sizeof n) ? -QK_EFAULT : 0;
  }
  case T_TIOCSPTLCK: {
    int32_t v;
    if (qk_copy_from_user(&v, arg, sizeof v))
      return -QK_EFAULT;
    t->locked = v != 0;
    return 0;
  }
  case T_TIOCGPTPEER: {
    struct qk_file *s = tty_file(t, (int)arg);
    if (!s)
      return -QK_ENOMEM;
    int fd = qk_fd_install(qk_current()->proc->files, s, 0, arg & L_O_CLOEXEC);
    if (fd < 0)
      qk_fput(s);
    return fd;
  }
  case T_FIONREAD: {
    int32_t n = (int32_t)t->mq_len;
    return qk_copy_to_user(arg, &n, sizeof n) ? -QK_EFAULT : 0;
  }
  default: /* termios and window size as on the slave */
    return tty_ioctl(f, cmd, arg);
  }
}

static void ptm_release(struct qk_file *f)
{
  struct qk_tty *t = f->priv;
  if (!--t->masters) { /* hang up the slave side */
    if (t->sid)
      signal_fg(t, 1 /* SIGHUP */);
    qk_wake(t);
    qk_wake(t->mq + 1);
    qk_wake(&qk_poll_wq);
  }
  tty_put(t);
}

static const struct qk_file_ops ptm_ops = {
    .rw = ptm_rw,
    .fstat = ptm_fstat,
    .ioctl = ptm_ioctl,
    .poll = ptm_poll,
    .release = ptm_release,
};

int64_t qk_tty_open_ptmx(int flags, struct qk_file **out)
{
  struct qk_tty *t = tty_alloc(-1);
  if (!t)
    return -QK_ENOMEM;
  t->pair = true;
  t->locked = true; /* until unlockpt (TIOCSPTLCK 0), as on Linux */
  struct qk_file *f =
      qk_file_new(&ptm_ops, L_O_RDWR | ((uint32_t)flags & L_O_NONBLOCK), "/dev/ptmx");
  if (!f) {
    t->refs = 1;
    tty_put(t);
    return -QK_ENOMEM;
  }
  f->priv = t;
  t->refs++;
  t->masters++;
  *out = f;
  return 0;
}

/* "/dev/pts/N" -> the terminal numbered N, or NULL. */
static struct qk_tty *pts_lookup(const char *abs)
{
  if (strncmp(abs, "/dev/pts/", 9) || !abs[9])
    return NULL;
  uint32_t n = 0;
  for (const char *c = abs + 9; *c; c++) {
    if (*c < '0' || *c > '9' || n > 100000000u)
      return NULL;
    n = n * 10 + (uint32_t)(*c - '0');
  }
  for (struct qk_tty *t = all_ttys; t; t = t->next)
    if (t->index == n && (!t->pair || t->masters))
      return t;
  return NULL;
}

int64_t qk_tty_open_pts(const char *abs, int flags, struct qk_file **out)
{
  struct qk_tty *t = pts_lookup(abs);
  if (!t)
    return -QK_ENOENT;
  if (t->pair && t->locked)
    return -QK_EIO;
  struct qk_file *f = tty_file(t, flags);
  if (!f)
    return -QK_ENOMEM;
  /* A session leader without a terminal gets this one, unless O_NOCTTY. */
  struct qk_process *p = qk_current()->proc;
  if (!(flags & L_O_NOCTTY) && p->pid == p->sid && !t->sid) {
    bool has = false;
    for (struct qk_tty *o = all_ttys; o; o = o->next)
      has = has || (o->sid == p->sid && o->ns == p->ns);
    if (!has) {
      t->sid = p->sid;
      t->pgrp = p->pgid;
      t->ns = p->ns;
    }
  }
  *out = f;
  return 0;
}

int qk_tty_stat(const char *abs, uint64_t stat_gpa)
{
  if (!strcmp(abs, "/dev/ptmx"))
    return ptm_fstat(NULL, stat_gpa);
  struct qk_tty *t = pts_lookup(abs);
  if (!t)
    return -QK_ENOENT;
  struct qk_file fake = {.priv = t};
  return tty_fstat(&fake, stat_gpa);
}
