/* Pipes: a 64 KiB ring buffer shared by a read end and a write end.
 *
 * Blocking follows the scheduler's restart model (task.h): a reader that
 * finds the pipe empty (with writers left) parks on the pipe and reads
 * again from the start when a writer wakes it; a writer that finds it full
 * returns what it wrote so far (a short write, which callers loop on), or
 * parks when it wrote nothing. Writes of up to PIPE_BUF bytes are atomic:
 * they wait for room for all of them. Every change also wakes poll/select
 * sleepers. */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/task.h>

#define PIPE_SIZE (64u * 1024u)
#define PIPE_BUF 4096u
#define POLLIN 0x001
#define POLLOUT 0x004
#define POLLERR 0x008
#define POLLHUP 0x010

struct qk_pipe {
  uint8_t *buf;
  uint32_t head, len; /* read position, bytes stored */
  uint32_t readers, writers;
  uint64_t ino;
};

static uint64_t next_ino = 0x10000;

static void wake_all(struct qk_pipe *p)
{
  qk_wake(p);
  qk_wake(&qk_poll_wq);
}

static int64_t pipe_rw(struct qk_file *f, const struct qk_uio *u, int64_t off, bool write)
{
  struct qk_pipe *p = f->priv;
  if (off >= 0)
    return -QK_ESPIPE;
  uint64_t done = 0;
  if (!write) {
    if (!p->len) {
      if (!p->writers)
        return 0;
      if (f->flags & L_O_NONBLOCK)
        return -QK_EAGAIN;
      return qk_block(p, ~0ull);
    }
    for (unsigned i = 0; i < u->cnt && p->len; i++) {
      uint64_t base = u->iov[i].base, want = u->iov[i].len;
      while (want && p->len) {
        uint32_t chunk = PIPE_SIZE - p->head;
        if (chunk > p->len)
          chunk = p->len;
        if (chunk > want)
          chunk = (uint32_t)want;
        if (qk_copy_to_user(base, p->buf + p->head, chunk))
          return done ? (int64_t)done : -QK_EFAULT;
        p->head = (p->head + chunk) % PIPE_SIZE;
        p->len -= chunk;
        base += chunk;
        want -= chunk;
        done += chunk;
      }
    }
    wake_all(p);
    return (int64_t)done;
  }
  if (!p->readers) {
    struct qk_siginfo_lite si = {.code = QK_SI_USER, .pid = qk_current()->proc->pid};
    qk_signal_task(qk_current(), 13 /* SIGPIPE */, &si, false);
    return -QK_EPIPE;
  }
  uint32_t room = PIPE_SIZE - p->len;
  if (!room || (u->total <= PIPE_BUF && room < u->total)) {
    if (f->flags & L_O_NONBLOCK)
      return -QK_EAGAIN;
    return qk_block(p, ~0ull);
  }
  for (unsigned i = 0; i < u->cnt && p->len < PIPE_SIZE; i++) {
    uint64_t base = u->iov[i].base, want = u->iov[i].len;
    while (want && p->len < PIPE_SIZE) {
      uint32_t tail = (p->head + p->len) % PIPE_SIZE;
      uint32_t chunk = tail >= p->head ? PIPE_SIZE - tail : p->head - tail;
      if (chunk > PIPE_SIZE - p->len)
        chunk = PIPE_SIZE - p->len;
      if (chunk > want)
        chunk = (uint32_t)want;
      if (qk_copy_from_user(p->buf + tail, base, chunk))
        goto out;
      p->len += chunk;
      base += chunk;
      want -= chunk;
      done += chunk;
    }
  }
out:
  if (done)
    wake_all(p);
  return done ? (int64_t)done : -QK_EFAULT;
}

static int64_t pipe_lseek(struct qk_file *f, int64_t off, int whence)
{
  return -QK_ESPIPE;
}

static int pipe_fstat(struct qk_file *f, uint64_t gpa)
{
  struct qk_pipe *p = f->priv;
  struct l_stat *st = qk_pa_to_va(gpa);
  memset(st, 0, sizeof(*st));
  st->st_dev = 12;
  st->st_ino = p->ino;
  st->st_nlink = 1;
  st->st_mode = 0010000 | 0600; /* S_IFIFO */
  st->st_blksize = PIPE_BUF;
  return 0;
}

static int64_t pipe_getdents(struct qk_file *f, uint64_t uva, uint64_t len)
{
  return -QK_ENOTDIR;
}

static int64_t pipe_ioctl(struct qk_file *f, uint64_t cmd, uint64_t arg)
{
  struct qk_pipe *p = f->priv;
  if (cmd == 0x541b) { /* FIONREAD */
    int32_t n = (int32_t)p->len;
    return qk_copy_to_user(arg, &n, 4) ? -QK_EFAULT : 0;
  }
  return -QK_ENOTTY;
}

static int pipe_poll(struct qk_file *f)
{
  struct qk_pipe *p = f->priv;
  int ev = 0;
  if ((f->flags & L_O_ACCMODE) == L_O_RDONLY) {
    if (p->len)
      ev |= POLLIN;
    if (!p->writers)
      ev |= POLLHUP;
  } else {
    if (!p->readers)
      ev |= POLLERR;
    else if (PIPE_SIZE - p->len >= PIPE_BUF)
      ev |= POLLOUT;
  }
  return ev;
}

static int pipe_mmap_hfd(struct qk_file *f)
{
  return -QK_ENODEV;
}

static void pipe_release(struct qk_file *f)
{
  struct qk_pipe *p = f->priv;
  if ((f->flags & L_O_ACCMODE) == L_O_RDONLY)
    p->readers--;
  else
    p->writers--;
  wake_all(p);
  if (!p->readers && !p->writers) {
    qk_kfree(p->buf);
    qk_kfree(p);
  }
}

static const struct qk_file_ops pipe_ops = {
    .rw = pipe_rw,
    .lseek = pipe_lseek,
    .fstat = pipe_fstat,
    .getdents = pipe_getdents,
    .ioctl = pipe_ioctl,
    .poll = pipe_poll,
    .mmap_hfd = pipe_mmap_hfd,
    .release = pipe_release,
};

int qk_pipe_create(uint32_t flags, struct qk_file **rd, struct qk_file **wr)
{
  struct qk_pipe *p = qk_kzalloc(sizeof(*p));
  struct qk_file *r = NULL, *w = NULL;
  if (!p)
    return -QK_ENOMEM;
  p->buf = qk_kmalloc(PIPE_SIZE);
  r = qk_file_new(&pipe_ops, L_O_RDONLY | (flags & L_O_NONBLOCK), NULL);
  w = qk_file_new(&pipe_ops, L_O_WRONLY | (flags & L_O_NONBLOCK), NULL);
  if (!p->buf || !r || !w)
    goto fail;
  p->ino = next_ino++;
  p->readers = p->writers = 1;
  r->priv = w->priv = p;
  *rd = r;
  *wr = w;
  return 0;
fail:
  qk_kfree(r);
  qk_kfree(w);
  if (p)
    qk_kfree(p->buf);
  qk_kfree(p);
  return -QK_ENOMEM;
}

int64_t qk_pipe_peek(struct qk_file *rd, const struct qk_uio *u, uint32_t *queued, bool *writers)
{
  struct qk_pipe *p = rd->priv;
  *queued = p->len;
  *writers = p->writers != 0;
  uint64_t done = 0;
  uint32_t head = p->head, left = p->len;
  for (unsigned i = 0; i < u->cnt && left; i++) {
    uint64_t base = u->iov[i].base, want = u->iov[i].len;
    while (want && left) {
      uint32_t chunk = PIPE_SIZE - head;
      if (chunk > left)
        chunk = left;
      if (chunk > want)
        chunk = (uint32_t)want;
      if (qk_copy_to_user(base, p->buf + head, chunk))
        return done ? (int64_t)done : -QK_EFAULT;
      head = (head + chunk) % PIPE_SIZE;
      left -= chunk;
      base += chunk;
      want -= chunk;
      done += chunk;
    }
  }
  return (int64_t)done;
}
