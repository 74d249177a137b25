/* Pipes: a 64 KiB ring buffer shared by a read end and a write end.
 *
 * Blocking follows the scheduler's restart model (task.h): a reader that
 * finds the pipe empty (with writers left) parks on the pipe and reads
 * again from the start when a writer wakes it; a writer that finds it full
 * returns what it wrote so far (a short write, which callers loop on), or
 * parks when it wrote nothing. Writes of up to PIPE_BUF bytes are atomic:
 * they wait for room for all of them. Every change also wakes poll/select
 * sleepers.
 *
 * splice, tee and vmsplice (fs/splice.c) move bytes through the same ring:
 * another file's own rw reads into the ring's free space or writes from
 * its stored bytes, the ring passing for user memory meanwhile
 * (qk_uaccess_kbuf), so no call copies more than the ring holds. */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/task.h>

#include "fs_internal.h"

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

/* The read/write path is inlined whole (no calls: every ring-0 instruction
 * counts where ring 0 is emulated). */
#define HOT static inline __attribute__((always_inline))

/* The stored bytes (data) or the free space (!data) of the ring as at most
 * two kernel segments of at most max bytes together; returns how many. */
static unsigned ring_segs(const struct qk_pipe *p, bool data, uint64_t max, struct l_iovec seg[2])
{
  uint32_t at = data ? p->head : (p->head + p->len) % PIPE_SIZE;
  uint64_t left = data ? p->len : PIPE_SIZE - p->len;
  unsigned n = 0;
  if (left > max)
    left = max;
  while (left) {
    uint64_t chunk = PIPE_SIZE - at < left ? PIPE_SIZE - at : left;
    seg[n].base = (uint64_t)(p->buf + at);
    seg[n++].len = chunk;
    at = 0;
    left -= chunk;
  }
  return n;
}

/* Bytes taken from the head, or stored after the tail. */
HOT void ring_take(struct qk_pipe *p, uint64_t n)
{
  p->head = (uint32_t)((p->head + n) % PIPE_SIZE);
  p->len -= (uint32_t)n;
  wake_all(p);
}

HOT void ring_put(struct qk_pipe *p, uint64_t n)
{
  p->len += (uint32_t)n;
  wake_all(p);
}

/* Copies between u and the ring from position at on: out of avail stored
 * bytes (to_user) or into avail free ones. Bytes copied, or -QK_EFAULT when
 * the first piece faults (a later fault ends the copy short); head and len
 * are the caller's to update. */
HOT int64_t ring_copy(struct qk_pipe *p, const struct qk_uio *u, bool to_user, uint32_t at,
                      uint32_t avail)
{
  uint64_t done = 0;
  for (unsigned i = 0; i < u->cnt && avail; i++) {
    uint64_t base = u->iov[i].base, want = u->iov[i].len;
    while (want && avail) {
      uint32_t chunk = PIPE_SIZE - at;
      if (chunk > avail)
        chunk = avail;
      if (chunk > want)
        chunk = (uint32_t)want;
      if (to_user ? qk_copy_to_user(base, p->buf + at, chunk)
                  : qk_copy_from_user(p->buf + at, base, chunk))
        return done ? (int64_t)done : -QK_EFAULT;
      at = (at + chunk) % PIPE_SIZE;
      avail -= chunk;
      base += chunk;
      want -= chunk;
      done += chunk;
    }
  }
  return (int64_t)done;
}

/* Before a read: 0 with bytes stored, 1 at the end (empty, no writer
 * left), else what the caller returns (-QK_EAGAIN, or parked). */
HOT int64_t need_data(struct qk_pipe *p, bool nonblock)
{
  if (p->len)
    return 0;
  if (!p->writers)
    return 1;
  return nonblock ? -QK_EAGAIN : qk_block(p, ~0ull);
}

/* Before a write of which `whole` bytes must fit at once (0: any room
 * will do): 0 to go on, else what the caller returns (-QK_EPIPE with
 * SIGPIPE without readers, -QK_EAGAIN, or parked). */
HOT int64_t need_room(struct qk_pipe *p, bool nonblock, uint64_t whole)
{
  if (!p->readers) {
    struct qk_siginfo_lite si = {.code = QK_SI_USER, .pid = qk_current()->proc->pid};
    qk_signal_task(qk_current(), 13 /* SIGPIPE */, &si, false);
    return -QK_EPIPE;
  }
  uint32_t room = PIPE_SIZE - p->len;
  if (room && room >= whole)
    return 0;
  return nonblock ? -QK_EAGAIN : qk_block(p, ~0ull);
}

/* Stores what fits of u (user memory, or the buffer of qk_uaccess_kbuf). */
HOT int64_t ring_fill(struct qk_pipe *p, const struct qk_uio *u)
{
  int64_t r = ring_copy(p, u, false, (p->head + p->len) % PIPE_SIZE, PIPE_SIZE - p->len);
  if (r > 0)
    ring_put(p, (uint64_t)r);
  return r;
}

/* read/write of a pipe end; atomic: writes up to PIPE_BUF bytes wait for
 * room for all of them (write(2); vmsplice takes any room). */
HOT int64_t pipe_io(struct qk_pipe *p, const struct qk_uio *u, bool write, bool nonblock,
                    bool atomic)
{
  int64_t r;
  if (write) {
    r = need_room(p, nonblock, atomic && u->total <= PIPE_BUF ? u->total : 0);
    return r ? r : ring_fill(p, u);
  }
  r = need_data(p, nonblock);
  if (r)
    return r > 0 ? 0 : r;
  r = ring_copy(p, u, true, p->head, p->len);
  if (r > 0)
    ring_take(p, (uint64_t)r);
  return r;
}

static int64_t pipe_rw(struct qk_file *f, const struct qk_uio *u, int64_t off, bool write)
{
  if (off >= 0)
    return -QK_ESPIPE;
  return pipe_io(f->priv, u, write, (f->flags & L_O_NONBLOCK) != 0, true);
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
  return ring_copy(p, u, true, p->head, p->len);
}

/* ---- splice, tee, vmsplice (fs/splice.c) ---- */

bool qk_pipe_file(const struct qk_file *f) { return f->ops == &pipe_ops; }

static bool write_end(const struct qk_file *f)
{
  return (f->flags & L_O_ACCMODE) != L_O_RDONLY;
}

int64_t qk_pipe_splice(struct qk_file *pf, bool into, struct qk_file *other, int64_t off,
                       uint64_t len, bool nonblock)
{
  struct qk_pipe *p = pf->priv;
  int64_t r = into ? need_room(p, nonblock, 0) : need_data(p, nonblock);
  if (r)
    return r > 0 ? 0 : r;
  struct l_iovec k[2];
  struct qk_uio u = {k, ring_segs(p, !into, len, k), 0};
  for (unsigned i = 0; i < u.cnt; i++)
    u.total += k[i].len;
  /* other's own rw moves the bytes: the ring passes for user memory. */
  qk_uaccess_kbuf(p->buf, PIPE_SIZE);
  r = other->ops->rw(other, &u, off, !into);
  qk_uaccess_kbuf(NULL, 0);
  if (r > 0) {
    if (into)
      ring_put(p, (uint64_t)r);
    else
      ring_take(p, (uint64_t)r);
  }
  return r;
}

int64_t qk_pipe_to_pipe(struct qk_file *in, struct qk_file *out, uint64_t len, bool nonblock,
                        bool keep)
{
  struct qk_pipe *a = in->priv, *b = out->priv;
  int64_t r = need_data(a, nonblock); /* Linux's order: input, then output */
  if (r < 0)
    return r;
  int64_t room = need_room(b, nonblock, 0);
  if (room)
    return room;
  if (r > 0)
    return 0; /* the input ended */
  struct l_iovec k[2];
  struct qk_uio u = {k, ring_segs(a, true, len, k), 0};
  for (unsigned i = 0; i < u.cnt; i++)
    u.total += k[i].len;
  qk_uaccess_kbuf(a->buf, PIPE_SIZE);
  r = ring_fill(b, &u);
  qk_uaccess_kbuf(NULL, 0);
  if (r > 0 && !keep)
    ring_take(a, (uint64_t)r);
  return r;
}

int64_t qk_pipe_user_io(struct qk_file *pf, const struct qk_uio *u, bool nonblock)
{
  return pipe_io(pf->priv, u, write_end(pf), nonblock, false);
}
