/* eventfd and eventfd2: a 64-bit counter as a file. A read takes the whole
 * count (or 1 in EFD_SEMAPHORE mode) and waits while it is 0; a write adds
 * and waits while the sum would pass 0xfffffffffffffffe. Waiters park on
 * the counter (restart model, task.h); every change also wakes poll,
 * select and epoll sleepers. */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/task.h>

#define ARGS uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5
#define EFD_SEMAPHORE 1
#define EFD_MAX 0xfffffffffffffffeull

struct efd {
  uint64_t count;
  bool semaphore;
  uint64_t ino;
};

static uint64_t next_ino = 0x30000;

static void changed(struct efd *e)
{
  qk_wake(e);
  qk_wake(&qk_poll_wq);
}

static int64_t efd_rw(struct qk_file *f, const struct qk_uio *u, int64_t off, bool write)
{
  struct efd *e = f->priv;
  if (u->total < 8)
    return -QK_EINVAL;
  unsigned i = 0;
  while (i < u->cnt && !u->iov[i].len)
    i++;
  if (i == u->cnt || u->iov[i].len < 8)
    return -QK_EINVAL; /* the 8 bytes must be in one segment here */
  uint64_t base = u->iov[i].base;
  if (!write) {
    if (!e->count) {
      if (f->flags & L_O_NONBLOCK)
        return -QK_EAGAIN;
      return qk_block(e, ~0ull);
    }
    uint64_t v = e->semaphore ? 1 : e->count;
    if (qk_copy_to_user(base, &v, 8))
      return -QK_EFAULT;
    e->count -= v;
    changed(e);
    return 8;
  }
  uint64_t v;
  if (qk_copy_from_user(&v, base, 8))
    return -QK_EFAULT;
  if (v == ~0ull)
    return -QK_EINVAL;
  if (v > EFD_MAX - e->count) {
    if (f->flags & L_O_NONBLOCK)
      return -QK_EAGAIN;
    return qk_block(e, ~0ull);
  }
  e->count += v;
  if (v)
    changed(e);
  return 8;
}

static int64_t efd_lseek(struct qk_file *f, int64_t off, int whence)
{
  return -QK_ESPIPE;
}

static int efd_fstat(struct qk_file *f, uint64_t gpa)
{
  struct efd *e = f->priv;
  struct l_stat *st = qk_pa_to_va(gpa);
  memset(st, 0, sizeof(*st));
  st->st_dev = 13;
  st->st_ino = e->ino;
  st->st_nlink = 1;
  st->st_mode = 0600; /* an anonymous inode: no type bits, as on Linux */
  st->st_blksize = 4096;
  return 0;
}

static int64_t efd_getdents(struct qk_file *f, uint64_t uva, uint64_t len)
{
  return -QK_ENOTDIR;
}

static int64_t efd_ioctl(struct qk_file *f, uint64_t cmd, uint64_t arg)
{
  return -QK_ENOTTY;
}

static int efd_poll(struct qk_file *f)
{
  struct efd *e = f->priv;
  int ev = 0;
  if (e->count)
    ev |= 0x001; /* POLLIN */
  if (e->count < EFD_MAX)
    ev |= 0x004; /* POLLOUT */
  if (e->count == ~0ull)
    ev |= 0x008;
  return ev;
}

static int efd_mmap_hfd(struct qk_file *f)
{
  return -QK_ENODEV;
}

static void efd_release(struct qk_file *f)
{
  qk_kfree(f->priv);
}

static const struct qk_file_ops efd_ops = {
    .rw = efd_rw,
    .lseek = efd_lseek,
    .fstat = efd_fstat,
    .getdents = efd_getdents,
    .ioctl = efd_ioctl,
    .poll = efd_poll,
    .mmap_hfd = efd_mmap_hfd,
    .release = efd_release,
};

static int64_t do_eventfd(uint64_t initval, uint64_t flags)
{
  if (flags & ~(uint64_t)(EFD_SEMAPHORE | L_O_NONBLOCK | L_O_CLOEXEC))
    return -QK_EINVAL;
  struct efd *e = qk_kzalloc(sizeof(*e));
  if (!e)
    return -QK_ENOMEM;
  struct qk_file *f = qk_file_new(&efd_ops, L_O_RDWR | (uint32_t)(flags & L_O_NONBLOCK), NULL);
  if (!f) {
    qk_kfree(e);
    return -QK_ENOMEM;
  }
  e->count = initval;
  e->semaphore = flags & EFD_SEMAPHORE;
  e->ino = next_ino++;
  f->priv = e;
  int fd = qk_fd_install(qk_current()->proc->files, f, 0, flags & L_O_CLOEXEC);
  if (fd < 0)
    qk_fput(f);
  return fd;
}

int64_t sys_eventfd(ARGS)
{
  return do_eventfd((uint32_t)a0, 0);
}

int64_t sys_eventfd2(ARGS)
{
  return do_eventfd((uint32_t)a0, a1);
}
