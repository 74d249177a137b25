/* signalfd and signalfd4: the reading task's pending signals of a mask as a
 * file of struct signalfd_siginfo records (128 bytes each). A read takes
 * (consumes) as many pending signals as fit, thread-directed first, and
 * waits while none is pending; poll reports POLLIN while one is. As on
 * Linux the caller normally blocks those signals, so nothing else takes
 * them; readiness is that of the task calling poll/read. Signal generation
 * wakes poll/select/epoll sleepers when the signal is blocked (signal.c). */
#include <qk/events.h>
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/task.h>

#define ARGS uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5
#define UNBLOCKABLE ((1ull << 8) | (1ull << 18)) /* SIGKILL, SIGSTOP */

struct l_signalfd_siginfo {
  uint32_t signo;
  int32_t errno_, code;
  uint32_t pid, uid;
  int32_t fd;
  uint32_t tid, band, overrun, trapno;
  int32_t status, int_;
  uint64_t ptr, utime, stime, addr;
  uint16_t addr_lsb;
  uint8_t pad[46];
};
_Static_assert(sizeof(struct l_signalfd_siginfo) == 128, "signalfd_siginfo");

struct sfd {
  uint64_t mask;
  uint64_t ino;
};

static uint64_t next_ino = 0x50000;

static void to_user_info(struct l_signalfd_siginfo *o, int sig, const struct qk_siginfo_lite *si)
{
  memset(o, 0, sizeof(*o));
  o->signo = (uint32_t)sig;
  o->code = si->code;
  if (si->code == -2) { /* SI_TIMER: id, overrun, sigev_value */
    o->tid = (uint32_t)si->pid;
    o->overrun = si->uid;
    o->ptr = si->addr;
    o->int_ = (int32_t)si->addr;
  } else if (si->code > 0 && (sig == 11 || sig == 7 || sig == 8 || sig == 4)) {
    o->addr = si->addr;
  } else {
    o->pid = (uint32_t)si->pid;
    o->uid = si->uid;
    o->status = si->status;
  }
}

static int64_t sfd_rw(struct qk_file *f, const struct qk_uio *u, int64_t off, bool write)
{
  struct sfd *s = f->priv;
  struct qk_task *t = qk_current();
  if (write)
    return -QK_EINVAL;
  unsigned i = 0;
  while (i < u->cnt && !u->iov[i].len)
    i++;
  if (i == u->cnt || u->iov[i].len < sizeof(struct l_signalfd_siginfo))
    return -QK_EINVAL;
  uint64_t base = u->iov[i].base, room = u->iov[i].len, done = 0;
  while (room - done >= sizeof(struct l_signalfd_siginfo)) {
    struct qk_siginfo_lite si;
    /* Look before taking, so that a fault loses no signal. */
    if (!qk_signal_pending_in(t, s->mask))
      break;
    struct l_signalfd_siginfo o;
    memset(&o, 0, sizeof(o));
    if (qk_copy_to_user(base + done, &o, sizeof(o)))
      return done ? (int64_t)done : -QK_EFAULT;
    int sig = qk_signal_dequeue(t, s->mask, &si);
    if (!sig)
      break;
    to_user_info(&o, sig, &si);
    qk_copy_to_user(base + done, &o, sizeof(o)); /* checked just above */
    done += sizeof(o);
  }
  if (done)
    return (int64_t)done;
  if (f->flags & L_O_NONBLOCK)
    return -QK_EAGAIN;
  return qk_block(&qk_poll_wq, ~0ull);
}

static int64_t sfd_lseek(struct qk_file *f, int64_t off, int whence)
{
  return -QK_ESPIPE;
}

static int sfd_fstat(struct qk_file *f, uint64_t gpa)
{
  struct sfd *s = f->priv;
  struct l_stat *st = qk_pa_to_va(gpa);
  memset(st, 0, sizeof(*st));
  st->st_dev = 13;
  st->st_ino = s->ino;
  st->st_nlink = 1;
  st->st_mode = 0600;
  st->st_blksize = 4096;
  return 0;
}

static int64_t sfd_getdents(struct qk_file *f, uint64_t uva, uint64_t len)
{
  return -QK_ENOTDIR;
}

static int64_t sfd_ioctl(struct qk_file *f, uint64_t cmd, uint64_t arg)
{
  return -QK_ENOTTY;
}

static int sfd_poll(struct qk_file *f)
{
  struct sfd *s = f->priv;
  return qk_signal_pending_in(qk_current(), s->mask) ? 0x001 : 0;
}

static int sfd_mmap_hfd(struct qk_file *f)
{
  return -QK_ENODEV;
}

static void sfd_release(struct qk_file *f)
{
  qk_kfree(f->priv);
}

static const struct qk_file_ops sfd_ops = {
    .rw = sfd_rw,
    .lseek = sfd_lseek,
    .fstat = sfd_fstat,
    .getdents = sfd_getdents,
    .ioctl = sfd_ioctl,
    .poll = sfd_poll,
    .mmap_hfd = sfd_mmap_hfd,
    .release = sfd_release,
};

static int64_t do_signalfd(int64_t fd, uint64_t umask, uint64_t size, uint64_t flags)
{
  if (size != 8)
    return -QK_EINVAL;
  if (flags & ~(uint64_t)(L_O_NONBLOCK | L_O_CLOEXEC))
    return -QK_EINVAL;
  uint64_t mask;
  if (qk_copy_from_user(&mask, umask, 8))
    return -QK_EFAULT;
  mask &= ~UNBLOCKABLE;
  struct qk_fdtable *tab = qk_current()->proc->files;
  if ((int)fd != -1) {
    struct qk_file *f = qk_fget_in(tab, (int)fd);
    if (!f)
      return -QK_EBADF;
    if (f->ops != &sfd_ops) {
      qk_fput(f);
      return -QK_EINVAL;
    }
    ((struct sfd *)f->priv)->mask = mask;
    qk_fput(f);
    qk_wake(&qk_poll_wq);
    return (int)fd;
  }
  struct sfd *s = qk_kzalloc(sizeof(*s));
  if (!s)
    return -QK_ENOMEM;
  struct qk_file *f = qk_file_new(&sfd_ops, L_O_RDWR | (uint32_t)(flags & L_O_NONBLOCK), NULL);
  if (!f) {
    qk_kfree(s);
    return -QK_ENOMEM;
  }
  s->mask = mask;
  s->ino = next_ino++;
  f->priv = s;
  int nfd = qk_fd_install(tab, f, 0, flags & L_O_CLOEXEC);
  if (nfd < 0)
    qk_fput(f);
  return nfd;
}

int64_t sys_signalfd(ARGS)
{
  return do_signalfd((int64_t)a0, a1, a2, 0);
}

int64_t sys_signalfd4(ARGS)
{
  return do_signalfd((int64_t)a0, a1, a2, a3);
}
