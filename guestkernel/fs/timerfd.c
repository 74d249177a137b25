/* timerfd_create/settime/gettime: a kernel timer (qk/timer.h) as a file.
 * Each expiry adds to a count; a read returns the count (8 bytes) and
 * resets it, waiting while it is 0. CLOCK_REALTIME, CLOCK_MONOTONIC and
 * CLOCK_BOOTTIME (the _ALARM forms need CAP_WAKE_ALARM: EPERM);
 * TFD_TIMER_ABSTIME; TFD_TIMER_CANCEL_ON_SET is accepted and never fires a
 * cancel (the guest's realtime clock is never set). */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/task.h>
#include <qk/timer.h>

#define ARGS uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5
#define TFD_TIMER_ABSTIME 1
#define TFD_TIMER_CANCEL_ON_SET 2

struct tfd {
  struct qk_ktimer kt; /* first: the fire callback casts back */
  uint64_t ticks;
  int clock;
  uint64_t ino;
};

struct l_itimerspec {
  struct l_timespec interval, value;
};

static uint64_t next_ino = 0x40000;

static void tfd_fire(struct qk_ktimer *kt, uint64_t count)
{
  struct tfd *t = (struct tfd *)kt;
  t->ticks += count;
  qk_wake(t);
  qk_wake(&qk_poll_wq);
}

static int64_t tfd_rw(struct qk_file *f, const struct qk_uio *u, int64_t off, bool write)
{
  struct tfd *t = f->priv;
  if (write)
    return -QK_EINVAL;
  if (u->total < 8)
    return -QK_EINVAL;
  unsigned i = 0;
  while (i < u->cnt && !u->iov[i].len)
    i++;
  if (i == u->cnt || u->iov[i].len < 8)
    return -QK_EINVAL;
  if (!t->ticks) {
    /* A deadline already due (no tick has run the list since): now. */
    qk_timer_run(qk_time_monotonic_ns());
  }
  if (!t->ticks) {
    if (f->flags & L_O_NONBLOCK)
      return -QK_EAGAIN;
    return qk_block(t, ~0ull);
  }
  if (qk_copy_to_user(u->iov[i].base, &t->ticks, 8))
    return -QK_EFAULT;
  t->ticks = 0;
  return 8;
}

static int64_t tfd_lseek(struct qk_file *f, int64_t off, int whence)
{
  return -QK_ESPIPE;
}

static int tfd_fstat(struct qk_file *f, uint64_t gpa)
{
  struct tfd *t = f->priv;
  struct l_stat *st = qk_pa_to_va(gpa);
  memset(st, 0, sizeof(*st));
  st->st_dev = 13;
  st->st_ino = t->ino;
  st->st_nlink = 1;
  st->st_mode = 0600;
  st->st_blksize = 4096;
  return 0;
}

static int64_t tfd_getdents(struct qk_file *f, uint64_t uva, uint64_t len)
{
  return -QK_ENOTDIR;
}

static int64_t tfd_ioctl(struct qk_file *f, uint64_t cmd, uint64_t arg)
{
  struct tfd *t = f->priv;
  if (cmd == 0x40085400) { /* TFD_IOC_SET_TICKS */
    uint64_t v;
    if (qk_copy_from_user(&v, arg, 8))
      return -QK_EFAULT;
    if (!v)
      return -QK_EINVAL;
    t->ticks = v;
    qk_wake(t);
    qk_wake(&qk_poll_wq);
    return 0;
  }
  return -QK_ENOTTY;
}

static int tfd_poll(struct qk_file *f)
{
  struct tfd *t = f->priv;
  if (!t->ticks && t->kt.armed) {
    uint64_t now = qk_time_monotonic_ns();
    if (t->kt.expires <= now)
      qk_timer_run(now);
  }
  return t->ticks ? 0x001 : 0;
}

static int tfd_mmap_hfd(struct qk_file *f)
{
  return -QK_ENODEV;
}

static void tfd_release(struct qk_file *f)
{
  struct tfd *t = f->priv;
  qk_ktimer_cancel(&t->kt);
  qk_kfree(t);
}

static const struct qk_file_ops tfd_ops = {
    .rw = tfd_rw,
    .lseek = tfd_lseek,
    .fstat = tfd_fstat,
    .getdents = tfd_getdents,
    .ioctl = tfd_ioctl,
    .poll = tfd_poll,
    .mmap_hfd = tfd_mmap_hfd,
    .release = tfd_release,
};

int64_t sys_timerfd_create(ARGS)
{
  int clock = (int)a0;
  if (a1 & ~(uint64_t)(L_O_NONBLOCK | L_O_CLOEXEC))
    return -QK_EINVAL;
  if (clock == 8 || clock == 9)
    return -QK_EPERM;
  if (!qk_timer_clock_ok(clock))
    return -QK_EINVAL;
  struct tfd *t = qk_kzalloc(sizeof(*t));
  if (!t)
    return -QK_ENOMEM;
  struct qk_file *f = qk_file_new(&tfd_ops, L_O_RDWR | (uint32_t)(a1 & L_O_NONBLOCK), NULL);
  if (!f) {
    qk_kfree(t);
    return -QK_ENOMEM;
  }
  t->kt.fire = tfd_fire;
  t->clock = clock;
  t->ino = next_ino++;
  f->priv = t;
  int fd = qk_fd_install(qk_current()->proc->files, f, 0, a1 & L_O_CLOEXEC);
  if (fd < 0)
    qk_fput(f);
  return fd;
}

static struct qk_file *tfd_get(uint64_t fd, int64_t *err)
{
  struct qk_file *f = qk_fget_in(qk_current()->proc->files, (int)fd);
  if (!f) {
    *err = -QK_EBADF;
    return NULL;
  }
  if (f->ops != &tfd_ops) {
    qk_fput(f);
    *err = -QK_EINVAL;
    return NULL;
  }
  return f;
}

static void cur_value(struct tfd *t, struct l_itimerspec *v)
{
  memset(v, 0, sizeof(*v));
  if (!t->kt.armed)
    return;
  uint64_t left = qk_ktimer_left(&t->kt, qk_time_monotonic_ns());
  v->value.tv_sec = (int64_t)(left / 1000000000ull);
  v->value.tv_nsec = (int64_t)(left % 1000000000ull);
  v->interval.tv_sec = (int64_t)(t->kt.interval / 1000000000ull);
  v->interval.tv_nsec = (int64_t)(t->kt.interval % 1000000000ull);
}

static int ts_ok(const struct l_timespec *ts, uint64_t *ns)
{
  if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)
    return -QK_EINVAL;
  if ((uint64_t)ts->tv_sec > 100ull * 365 * 86400)
    *ns = 100ull * 365 * 86400 * 1000000000ull;
  else
    *ns = (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
  return 0;
}

int64_t sys_timerfd_settime(ARGS)
{
  int64_t err = 0;
  if (a1 & ~(uint64_t)(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET))
    return -QK_EINVAL;
  struct qk_file *f = tfd_get(a0, &err);
  if (!f)
    return err;
  struct tfd *t = f->priv;
  struct l_itimerspec nv, old;
  uint64_t val, iv;
  if (qk_copy_from_user(&nv, a2, sizeof(nv))) {
    err = -QK_EFAULT;
  } else if (ts_ok(&nv.value, &val) || ts_ok(&nv.interval, &iv)) {
    err = -QK_EINVAL;
  } else {
    cur_value(t, &old);
    if (a3 && qk_copy_to_user(a3, &old, sizeof(old))) {
      err = -QK_EFAULT;
    } else {
      t->ticks = 0;
      if (!val) {
        qk_ktimer_cancel(&t->kt);
      } else {
        uint64_t now = qk_time_monotonic_ns();
        uint64_t at = (a1 & TFD_TIMER_ABSTIME) ? qk_timer_abs_to_mono(t->clock, val) : now + val;
        qk_ktimer_arm(&t->kt, at, iv);
        if (at <= now)
          qk_timer_run(now);
      }
    }
  }
  qk_fput(f);
  return err;
}

int64_t sys_timerfd_gettime(ARGS)
{
  int64_t err = 0;
  struct qk_file *f = tfd_get(a0, &err);
  if (!f)
    return err;
  struct l_itimerspec v;
  cur_value(f->priv, &v);
  qk_fput(f);
  return qk_copy_to_user(a1, &v, sizeof(v)) ? -QK_EFAULT : 0;
}
