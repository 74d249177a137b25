/* In-kernel character devices: /dev/null, /dev/zero, /dev/full,
 * /dev/random, /dev/urandom. They exist whatever the image's /dev holds. */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/tty.h>

#include "fs_internal.h"

enum { DEV_NULL = 1, DEV_ZERO, DEV_FULL, DEV_RANDOM, DEV_URANDOM };

static const struct {
  const char *name;
  uint32_t minor;
} devs[] = {
  [DEV_NULL] = { "/dev/null", 3 },     [DEV_ZERO] = { "/dev/zero", 5 },
  [DEV_FULL] = { "/dev/full", 7 },     [DEV_RANDOM] = { "/dev/random", 8 },
  [DEV_URANDOM] = { "/dev/urandom", 9 },
};

static int64_t fill(const struct qk_uio *u, bool random)
{
  int64_t done = 0;
  for (unsigned i = 0; i < u->cnt; i++) {
    uint64_t uva = u->iov[i].base, left = u->iov[i].len;
    while (left) {
      uint64_t pa;
      if (qk_user_pa(uva, true, &pa))
        return done ? done : -QK_EFAULT;
      uint64_t chunk = QK_PAGE_SIZE - (uva & 4095);
      if (chunk > left)
        chunk = left;
      if (random)
        qk_qcall(QK_OP_GETRANDOM, pa, chunk, 0, 0, 0, 0);
      else
        qk_phys_zero(pa, chunk);
      uva += chunk;
      left -= chunk;
      done += (int64_t)chunk;
    }
  }
  return done;
}

static int64_t dev_rw(struct qk_file *f, const struct qk_uio *u, int64_t off, bool write)
{
  (void)off;
  switch (f->kind) {
  case DEV_NULL:
    return write ? (int64_t)u->total : 0;
  case DEV_ZERO:
    return write ? (int64_t)u->total : fill(u, false);
  case DEV_FULL:
    return write ? -QK_ENOSPC : fill(u, false);
  default:
    return write ? (int64_t)u->total : fill(u, true);
  }
}

static int64_t dev_lseek(struct qk_file *f, int64_t off, int whence)
{
  (void)f;
  (void)off;
  (void)whence;
  return 0;
}

static void fill_stat(uint32_t kind, struct l_stat *st)
{
  memset(st, 0, sizeof(*st));
  st->st_dev = 5;
  st->st_ino = 1000 + kind;
  st->st_nlink = 1;
  st->st_mode = L_S_IFCHR | 0666;
  st->st_rdev = (1u << 8) | devs[kind].minor;
  st->st_blksize = 4096;
}

static int dev_fstat(struct qk_file *f, uint64_t gpa)
{
  fill_stat(f->kind, qk_pa_to_va(gpa));
  return 0;
}

static int64_t dev_getdents(struct qk_file *f, uint64_t uva, uint64_t len)
{
  (void)f;
  (void)uva;
  (void)len;
  return -QK_ENOTDIR;
}

static int64_t dev_ioctl(struct qk_file *f, uint64_t cmd, uint64_t arg)
{
  (void)f;
  (void)cmd;
  (void)arg;
  return -QK_ENOTTY;
}

static int dev_mmap_hfd(struct qk_file *f)
{
  (void)f;
  return -QK_ENODEV;
}

static const struct qk_file_ops dev_ops = {
  .rw = dev_rw,
  .lseek = dev_lseek,
  .fstat = dev_fstat,
  .getdents = dev_getdents,
  .ioctl = dev_ioctl,
  .mmap_hfd = dev_mmap_hfd,
};

static uint32_t lookup(const char *abs)
{
  /* Cheap reject first: most paths do not start with "/dev/". */
  if (abs[0] != '/' || abs[1] != 'd' || strncmp(abs, "/dev/", 5))
    return 0;
  char norm[64];
  if (qk_strlcpy(norm, abs, sizeof(norm)) >= sizeof(norm))
    return 0;
  qk_path_normalize(norm);
  for (uint32_t k = DEV_NULL; k <= DEV_URANDOM; k++)
    if (!strcmp(norm, devs[k].name))
      return k;
  return 0;
}

int qk_dev_open(const char *abs, int flags, struct qk_file **out)
{
  if (!strcmp(abs, "/dev/tty")) /* the caller's controlling terminal (fs/tty.c) */
    return (int)qk_tty_open_ctty(out);
  if (!strcmp(abs, "/dev/ptmx")) /* terminals: fs/tty.c */
    return (int)qk_tty_open_ptmx(flags, out);
  if (!strncmp(abs, "/dev/pts/", 9))
    return (int)qk_tty_open_pts(abs, flags, out);
  uint32_t k = lookup(abs);
  if (!k)
    return -QK_ENOENT;
  if (flags & L_O_DIRECTORY)
    return -QK_ENOTDIR;
  struct qk_file *f = qk_file_new(&dev_ops, (uint32_t)flags & ~(uint32_t)L_O_CLOEXEC, devs[k].name);
  if (!f)
    return -QK_ENOMEM;
  f->kind = k;
  *out = f;
  return 0;
}

int qk_dev_stat(const char *abs, uint64_t stat_gpa)
{
  if (!strcmp(abs, "/dev/ptmx") || !strncmp(abs, "/dev/pts/", 9))
    return qk_tty_stat(abs, stat_gpa); /* terminals: fs/tty.c */
  uint32_t k = lookup(abs);
  if (!k)
    return -QK_ENOENT;
  fill_stat(k, qk_pa_to_va(stat_gpa));
  return 0;
}

bool qk_dev_path(const char *abs)
{
  return lookup(abs) != 0;
}
