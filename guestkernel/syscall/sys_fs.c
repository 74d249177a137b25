/* File syscalls: descriptors, paths, data, metadata. */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/syscall.h>
#include <qk/task.h>

#include "../fs/fs_internal.h"

#define MAX_RW 0x7ffff000ull /* Linux's MAX_RW_COUNT */

static inline struct qk_process *proc(void)
{
  return qk_current()->proc;
}
static inline struct qk_file *fget(uint64_t fd)
{
  return qk_fget_in(proc()->files, (int)fd);
}

/* Copies the user path into out (QK_PATH_MAX bytes) and makes it absolute
 * against dirfd (L_AT_FDCWD: the cwd). Returns 0, 1 for an empty path when
 * allow_empty (the caller then uses dirfd itself), or -errno. */
int qk_path_at(int64_t dirfd, uint64_t upath, char *out, bool allow_empty)
{
  int64_t n = qk_strncpy_from_user(out, upath, QK_PATH_MAX);
  if (n < 0)
    return (int)n;
  if (n == 0)
    return allow_empty ? 1 : -QK_ENOENT;
  if (out[0] == '/')
    return 0;
  struct qk_file *df = NULL;
  const char *base;
  if ((int)dirfd == L_AT_FDCWD) {
    base = proc()->fs->cwd;
  } else {
    df = fget((uint64_t)dirfd);
    if (!df)
      return -QK_EBADF;
    if (!df->path) {
      qk_fput(df);
      return -QK_ENOTDIR;
    }
    base = df->path;
  }
  size_t bl = strlen(base);
  if (bl == 1)
    bl = 0; /* base "/": no doubled slash */
  int r = 0;
  if (bl + 1 + (size_t)n + 1 > QK_PATH_MAX) {
    r = -QK_ENAMETOOLONG;
  } else {
    memmove(out + bl + 1, out, (size_t)n + 1);
    memcpy(out, base, bl);
    out[bl] = '/';
  }
  if (df)
    qk_fput(df);
  return r;
}

static char *path_buf(void)
{
  return qk_kmalloc(QK_PATH_MAX);
}

/* The descriptor named by /dev/stdin, /dev/stdout, /dev/stderr, /dev/fd/N
 * or /proc/self/fd/N (Linux's magic links to a process's own descriptors),
 * or -1 for any other path. */
static int self_fd_path(const char *abs)
{
  if (abs[0] != '/' || (abs[1] != 'd' && abs[1] != 'p'))
    return -1; /* the cheap reject for every other path */
  const char *n;
  if (!strcmp(abs, "/dev/stdin"))
    return 0;
  if (!strcmp(abs, "/dev/stdout"))
    return 1;
  if (!strcmp(abs, "/dev/stderr"))
    return 2;
  if (!strncmp(abs, "/dev/fd/", 8))
    n = abs + 8;
  else if (!strncmp(abs, "/proc/self/fd/", 14))
    n = abs + 14;
  else
    return -1;
  int fd = 0;
  if (!*n)
    return -1;
  for (; *n; n++) {
    if (*n < '0' || *n > '9' || fd > QK_FD_MAX)
      return -1;
    fd = fd * 10 + (*n - '0');
  }
  return fd;
}

/* ---- descriptors ---- */

static int64_t do_open(int64_t dirfd, uint64_t upath, uint64_t flags, uint64_t mode)
{
  char *path = path_buf();
  if (!path)
    return -QK_ENOMEM;
  int r = qk_path_at(dirfd, upath, path, false);
  int self = r == 0 ? self_fd_path(path) : -1;
  if (self >= 0) {
    /* Opening one's own descriptor shares its open file (Linux reopens
     * the object; for the pipes and terminals these name, alike). */
    struct qk_file *f = fget((uint64_t)self);
    r = f ? qk_fd_install(proc()->files, f, 0, flags & L_O_CLOEXEC) : -QK_ENOENT;
    if (f && r < 0)
      qk_fput(f);
  } else if (r == 0) {
    if (flags & L_O_CREAT)
      mode &= ~(uint64_t)proc()->fs->umask;
    struct qk_file *f;
    r = qk_vfs_open(path, (int)flags, (uint32_t)(mode & 07777), &f);
    if (r == 0) {
      r = qk_fd_install(proc()->files, f, 0, flags & L_O_CLOEXEC);
      if (r < 0)
        qk_fput(f);
    }
  }
  qk_kfree(path);
  return r;
}

int64_t sys_open(uint64_t upath, uint64_t flags, uint64_t mode, uint64_t a3, uint64_t a4,
                 uint64_t a5)
{
  return do_open(L_AT_FDCWD, upath, flags, mode);
}

/* creat(2): open(path, O_CREAT|O_WRONLY|O_TRUNC, mode). */
int64_t sys_creat(uint64_t upath, uint64_t mode, uint64_t a2, uint64_t a3, uint64_t a4,
                  uint64_t a5)
{
  return do_open(L_AT_FDCWD, upath, L_O_CREAT | L_O_WRONLY | L_O_TRUNC, mode);
}

int64_t sys_openat(uint64_t dirfd, uint64_t upath, uint64_t flags, uint64_t mode, uint64_t a4,
                   uint64_t a5)
{
  return do_open((int64_t)(int)dirfd, upath, flags, mode);
}

int64_t sys_close(uint64_t fd, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  return qk_fd_close(proc()->files, (int)fd);
}

int64_t sys_dup(uint64_t fd, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  struct qk_file *f = fget(fd);
  if (!f)
    return -QK_EBADF;
  int r = qk_fd_install(proc()->files, f, 0, false);
  if (r < 0)
    qk_fput(f);
  return r;
}

static int64_t do_dup3(uint64_t oldfd, uint64_t newfd, uint64_t flags, bool is_dup2)
{
  if (flags & ~(uint64_t)L_O_CLOEXEC)
    return -QK_EINVAL;
  struct qk_file *f = fget(oldfd);
  if (!f)
    return -QK_EBADF;
  if ((int)oldfd == (int)newfd) {
    qk_fput(f);
    return is_dup2 ? (int64_t)(int)newfd : -QK_EINVAL;
  }
  if ((int)newfd < 0 || (int)newfd >= (int)proc()->rlim[L_RLIMIT_NOFILE].cur) {
    qk_fput(f);
    return -QK_EBADF;
  }
  int r = qk_fd_install_at(proc()->files, f, (int)newfd, flags & L_O_CLOEXEC);
  if (r < 0)
    qk_fput(f);
  return r;
}

int64_t sys_dup2(uint64_t oldfd, uint64_t newfd, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  return do_dup3(oldfd, newfd, 0, true);
}

int64_t sys_dup3(uint64_t oldfd, uint64_t newfd, uint64_t flags, uint64_t a3, uint64_t a4,
                 uint64_t a5)
{
  return do_dup3(oldfd, newfd, flags, false);
}

int64_t sys_fcntl(uint64_t fd, uint64_t cmd, uint64_t arg, uint64_t a3, uint64_t a4, uint64_t a5)
{
  struct qk_fdtable *t = proc()->files;
  struct qk_file *f = fget(fd);
  if (!f)
    return -QK_EBADF;
  int64_t r;
  switch ((int)cmd) {
  case L_F_DUPFD:
  case L_F_DUPFD_CLOEXEC:
    if ((int)arg < 0 || (int)arg >= (int)proc()->rlim[L_RLIMIT_NOFILE].cur) {
      r = -QK_EINVAL;
      break;
    }
    r = qk_fd_install(t, qk_file_ref(f), (int)arg, (int)cmd == L_F_DUPFD_CLOEXEC);
    if (r < 0)
      qk_fput(f);
    break;
  case L_F_GETFD:
    r = qk_fd_get_cloexec(t, (int)fd) ? L_FD_CLOEXEC : 0;
    break;
  case L_F_SETFD:
    r = qk_fd_set_cloexec(t, (int)fd, arg & L_FD_CLOEXEC);
    break;
  case L_F_GETFL:
    r = f->flags;
    break;
  case 1033: /* F_ADD_SEALS */
  case 1034: /* F_GET_SEALS: memfd and tmpfs files (fs/tmpfs.c) */
    r = qk_tmpfs_file(f) ? qk_tmpfs_seals(f, (int)cmd, arg) : -QK_EINVAL;
    break;
  case L_F_SETFL: {
    /* Recorded only: the host handle keeps the flags it was opened with
     * (O_APPEND set at open time works; toggling it later does not). */
    uint32_t mask = L_O_APPEND | L_O_NONBLOCK | L_O_ASYNC | L_O_DIRECT | L_O_NOATIME;
    f->flags = (f->flags & ~mask) | ((uint32_t)arg & mask);
    r = 0;
    break;
  }
  case L_F_GETLK:
  case L_F_OFD_GETLK: {
    /* One process owns every file: no lock can conflict. */
    struct l_flock fl;
    if (qk_copy_from_user(&fl, arg, sizeof(fl))) {
      r = -QK_EFAULT;
      break;
    }
    fl.l_type = L_F_UNLCK;
    r = qk_copy_to_user(arg, &fl, sizeof(fl)) ? -QK_EFAULT : 0;
    break;
  }
  case L_F_SETLK:
  case L_F_SETLKW:
  case L_F_OFD_SETLK:
  case L_F_OFD_SETLKW: {
    struct l_flock fl;
    r = qk_copy_from_user(&fl, arg, sizeof(fl)) ? -QK_EFAULT : 0;
    break;
  }
  default:
    r = -QK_EINVAL;
    break;
  }
  qk_fput(f);
  return r;
}

int64_t sys_ioctl(uint64_t fd, uint64_t cmd, uint64_t arg, uint64_t a3, uint64_t a4, uint64_t a5)
{
  struct qk_file *f = fget(fd);
  if (!f)
    return -QK_EBADF;
  int64_t r;
  if ((uint32_t)cmd == L_FIOCLEX || (uint32_t)cmd == L_FIONCLEX)
    r = qk_fd_set_cloexec(proc()->files, (int)fd, (uint32_t)cmd == L_FIOCLEX);
  else
    r = f->ops->ioctl(f, (uint32_t)cmd, arg);
  qk_fput(f);
  return r;
}

/* ---- data ---- */

static int64_t do_rw(uint64_t fd, const struct l_iovec *iov, unsigned cnt, int64_t off, bool write)
{
  struct qk_file *f = fget(fd);
  if (!f)
    return -QK_EBADF;
  uint32_t acc = f->flags & L_O_ACCMODE;
  int64_t r;
  if ((f->flags & L_O_PATH) || (write ? acc == L_O_RDONLY : acc == L_O_WRONLY)) {
    r = -QK_EBADF;
  } else {
    struct qk_uio u = {iov, cnt, 0};
    for (unsigned i = 0; i < cnt; i++)
      u.total += iov[i].len;
    r = u.total ? f->ops->rw(f, &u, off, write) : 0;
  }
  qk_fput(f);
  return r;
}

int64_t sys_read(uint64_t fd, uint64_t buf, uint64_t count, uint64_t a3, uint64_t a4, uint64_t a5)
{
  struct l_iovec iov = {buf, count > MAX_RW ? MAX_RW : count};
  return do_rw(fd, &iov, 1, -1, false);
}

int64_t sys_write(uint64_t fd, uint64_t buf, uint64_t count, uint64_t a3, uint64_t a4, uint64_t a5)
{
  struct l_iovec iov = {buf, count > MAX_RW ? MAX_RW : count};
  return do_rw(fd, &iov, 1, -1, true);
}

int64_t sys_pread64(uint64_t fd, uint64_t buf, uint64_t count, uint64_t off, uint64_t a4,
                    uint64_t a5)
{
  if ((int64_t)off < 0)
    return -QK_EINVAL;
  struct l_iovec iov = {buf, count > MAX_RW ? MAX_RW : count};
  return do_rw(fd, &iov, 1, (int64_t)off, false);
}

int64_t sys_pwrite64(uint64_t fd, uint64_t buf, uint64_t count, uint64_t off, uint64_t a4,
                     uint64_t a5)
{
  if ((int64_t)off < 0)
    return -QK_EINVAL;
  struct l_iovec iov = {buf, count > MAX_RW ? MAX_RW : count};
  return do_rw(fd, &iov, 1, (int64_t)off, true);
}

static int64_t do_rwv(uint64_t fd, uint64_t uiov, uint64_t cnt, int64_t off, bool write)
{
  if (cnt > QK_UIO_MAX)
    return -QK_EINVAL;
  if (!cnt) {
    struct qk_file *f = fget(fd);
    if (!f)
      return -QK_EBADF;
    qk_fput(f);
    return 0;
  }
  struct l_iovec *iov = qk_kmalloc(cnt * sizeof(*iov));
  if (!iov)
    return -QK_ENOMEM;
  int64_t r = 0;
  if (qk_copy_from_user(iov, uiov, cnt * sizeof(*iov))) {
    r = -QK_EFAULT;
  } else {
    uint64_t total = 0;
    for (unsigned i = 0; i < cnt; i++) {
      if ((int64_t)iov[i].len < 0) {
        r = -QK_EINVAL;
        break;
      }
      /* Clamp the total to MAX_RW like Linux does. */
      if (total + iov[i].len > MAX_RW)
        iov[i].len = MAX_RW - total;
      total += iov[i].len;
    }
    if (!r)
      r = do_rw(fd, iov, (unsigned)cnt, off, write);
  }
  qk_kfree(iov);
  return r;
}

int64_t sys_readv(uint64_t fd, uint64_t iov, uint64_t cnt, uint64_t a3, uint64_t a4, uint64_t a5)
{
  return do_rwv(fd, iov, cnt, -1, false);
}

int64_t sys_writev(uint64_t fd, uint64_t iov, uint64_t cnt, uint64_t a3, uint64_t a4, uint64_t a5)
{
  return do_rwv(fd, iov, cnt, -1, true);
}

int64_t sys_lseek(uint64_t fd, uint64_t off, uint64_t whence, uint64_t a3, uint64_t a4, uint64_t a5)
{
  if (whence > L_SEEK_HOLE)
    return -QK_EINVAL;
  struct qk_file *f = fget(fd);
  if (!f)
    return -QK_EBADF;
  int64_t r = f->ops->lseek(f, (int64_t)off, (int)whence);
  qk_fput(f);
  return r;
}

int64_t sys_getdents64(uint64_t fd, uint64_t buf, uint64_t len, uint64_t a3, uint64_t a4,
                       uint64_t a5)
{
  struct qk_file *f = fget(fd);
  if (!f)
    return -QK_EBADF;
  int64_t r = f->ops->getdents(f, buf, len > MAX_RW ? MAX_RW : len);
  qk_fput(f);
  return r;
}

int64_t sys_fsync(uint64_t fd, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  struct qk_file *f = fget(fd);
  if (!f)
    return -QK_EBADF;
  int64_t r = f->hfd > QK_HFD_ROOT ? qk_qcall(QK_OP_FSYNC, (uint64_t)f->hfd, 0, 0, 0, 0, 0) : 0;
  qk_fput(f);
  return r;
}

int64_t sys_ftruncate(uint64_t fd, uint64_t len, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  if ((int64_t)len < 0)
    return -QK_EINVAL;
  struct qk_file *f = fget(fd);
  if (!f)
    return -QK_EBADF;
  int64_t r = -QK_EINVAL;
  if (qk_tmpfs_file(f) && (f->flags & L_O_ACCMODE) != L_O_RDONLY)
    r = qk_tmpfs_setattr(QK_TMPFS_TRUNCATE, NULL, f, len, 0, 0, NULL);
  else if (f->hfd > QK_HFD_ROOT && (f->flags & L_O_ACCMODE) != L_O_RDONLY) {
    qk_hostfs_changed();
    r = qk_qcall(QK_OP_FTRUNCATE, (uint64_t)f->hfd, len, 0, 0, 0, 0);
  }
  qk_fput(f);
  return r;
}

/* ---- metadata ---- */

/* Writes struct stat to the user buffer: straight from the host when the
 * buffer lies in one page, else through a kernel copy. which: fd file (f)
 * or path (abs). */
static int64_t stat_to_user(struct qk_file *f, const char *abs, int nofollow, uint64_t ubuf)
{
  uint64_t pa = qk_user_pa_range(ubuf, sizeof(struct l_stat), true);
  struct l_stat st;
  uint64_t gpa = pa ? pa : qk_va_to_pa(&st);
  int r = f ? f->ops->fstat(f, gpa) : qk_vfs_stat(abs, nofollow, gpa);
  if (r == 0 && !pa && qk_copy_to_user(ubuf, &st, sizeof(st)))
    r = -QK_EFAULT;
  return r;
}

int64_t sys_fstat(uint64_t fd, uint64_t ubuf, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  struct qk_file *f = fget(fd);
  if (!f)
    return -QK_EBADF;
  int64_t r = stat_to_user(f, NULL, 0, ubuf);
  qk_fput(f);
  return r;
}

static int64_t do_fstatat(int64_t dirfd, uint64_t upath, uint64_t ubuf, uint64_t flags)
{
  if (flags & ~(uint64_t)(L_AT_SYMLINK_NOFOLLOW | L_AT_EMPTY_PATH | L_AT_NO_AUTOMOUNT))
    return -QK_EINVAL;
  if ((flags & L_AT_EMPTY_PATH) && (int)dirfd != L_AT_FDCWD) {
    /* fstat(fd) as libcs write it: fstatat(fd, "", AT_EMPTY_PATH). No
     * path buffer for that. */
    char c;
    if (qk_copy_from_user(&c, upath, 1))
      return -QK_EFAULT;
    if (!c) {
      struct qk_file *f = fget((uint64_t)dirfd);
      if (!f)
        return -QK_EBADF;
      int64_t r = stat_to_user(f, NULL, 0, ubuf);
      qk_fput(f);
      return r;
    }
  }
  char *path = path_buf();
  if (!path)
    return -QK_ENOMEM;
  int64_t r = qk_path_at(dirfd, upath, path, flags & L_AT_EMPTY_PATH);
  if (r == 1) {
    if ((int)dirfd == L_AT_FDCWD) {
      qk_strlcpy(path, proc()->fs->cwd, QK_PATH_MAX);
      r = stat_to_user(NULL, path, 0, ubuf);
    } else {
      struct qk_file *f = fget((uint64_t)dirfd);
      r = f ? stat_to_user(f, NULL, 0, ubuf) : -QK_EBADF;
      if (f)
        qk_fput(f);
    }
  } else if (r == 0) {
    int self = (flags & L_AT_SYMLINK_NOFOLLOW) ? -1 : self_fd_path(path);
    struct qk_file *f = self >= 0 ? fget((uint64_t)self) : NULL;
    if (self >= 0)
      r = f ? stat_to_user(f, NULL, 0, ubuf) : -QK_ENOENT;
    else
      r = stat_to_user(NULL, path, flags & L_AT_SYMLINK_NOFOLLOW, ubuf);
    if (f)
      qk_fput(f);
  }
  qk_kfree(path);
  return r;
}

int64_t sys_stat(uint64_t upath, uint64_t ubuf, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  return do_fstatat(L_AT_FDCWD, upath, ubuf, 0);
}

int64_t sys_lstat(uint64_t upath, uint64_t ubuf, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  return do_fstatat(L_AT_FDCWD, upath, ubuf, L_AT_SYMLINK_NOFOLLOW);
}

int64_t sys_newfstatat(uint64_t dirfd, uint64_t upath, uint64_t ubuf, uint64_t flags, uint64_t a4,
                       uint64_t a5)
{
  return do_fstatat((int64_t)(int)dirfd, upath, ubuf, flags);
}

static void statx_ts(struct l_statx_ts *ts, int64_t sec, int64_t nsec)
{
  ts->tv_sec = sec;
  ts->tv_nsec = (uint32_t)nsec;
  ts->reserved = 0;
}

int64_t sys_statx(uint64_t dirfd, uint64_t upath, uint64_t flags, uint64_t mask, uint64_t ubuf,
                  uint64_t a5)
{
  if (flags & ~(uint64_t)(L_AT_SYMLINK_NOFOLLOW | L_AT_EMPTY_PATH | L_AT_NO_AUTOMOUNT |
                          L_AT_STATX_SYNC_TYPE))
    return -QK_EINVAL;
  if ((flags & L_AT_STATX_SYNC_TYPE) == L_AT_STATX_SYNC_TYPE || (mask & 0x80000000u))
    return -QK_EINVAL;
  char *path = path_buf();
  if (!path)
    return -QK_ENOMEM;
  struct l_stat st;
  int64_t r = qk_path_at((int64_t)(int)dirfd, upath, path, flags & L_AT_EMPTY_PATH);
  if (r == 1) {
    if ((int)dirfd == L_AT_FDCWD) {
      r = qk_vfs_stat(proc()->fs->cwd, 0, qk_va_to_pa(&st));
    } else {
      struct qk_file *f = fget(dirfd);
      r = f ? f->ops->fstat(f, qk_va_to_pa(&st)) : -QK_EBADF;
      if (f)
        qk_fput(f);
    }
  } else if (r == 0) {
    r = qk_vfs_stat(path, flags & L_AT_SYMLINK_NOFOLLOW, qk_va_to_pa(&st));
  }
  qk_kfree(path);
  if (r)
    return r;
  struct l_statx sx;
  memset(&sx, 0, sizeof(sx));
  sx.stx_mask = L_STATX_BASIC_STATS;
  sx.stx_blksize = (uint32_t)st.st_blksize;
  sx.stx_nlink = (uint32_t)st.st_nlink;
  sx.stx_uid = st.st_uid;
  sx.stx_gid = st.st_gid;
  sx.stx_mode = (uint16_t)st.st_mode;
  sx.stx_ino = st.st_ino;
  sx.stx_size = (uint64_t)st.st_size;
  sx.stx_blocks = (uint64_t)st.st_blocks;
  statx_ts(&sx.stx_atime, st.st_atime_sec, st.st_atime_nsec);
  statx_ts(&sx.stx_mtime, st.st_mtime_sec, st.st_mtime_nsec);
  statx_ts(&sx.stx_ctime, st.st_ctime_sec, st.st_ctime_nsec);
  sx.stx_rdev_major = (uint32_t)(((st.st_rdev >> 8) & 0xfff) | ((st.st_rdev >> 32) & ~0xfffull));
  sx.stx_rdev_minor = (uint32_t)((st.st_rdev & 0xff) | ((st.st_rdev >> 12) & ~0xffull));
  sx.stx_dev_major = (uint32_t)(((st.st_dev >> 8) & 0xfff) | ((st.st_dev >> 32) & ~0xfffull));
  sx.stx_dev_minor = (uint32_t)((st.st_dev & 0xff) | ((st.st_dev >> 12) & ~0xffull));
  return qk_copy_to_user(ubuf, &sx, sizeof(sx)) ? -QK_EFAULT : 0;
}

static int64_t do_faccessat(int64_t dirfd, uint64_t upath, uint64_t mode, uint64_t flags)
{
  if (mode & ~7ull)
    return -QK_EINVAL;
  if (flags & ~(uint64_t)(L_AT_EACCESS | L_AT_SYMLINK_NOFOLLOW | L_AT_EMPTY_PATH))
    return -QK_EINVAL;
  char *path = path_buf();
  if (!path)
    return -QK_ENOMEM;
  int64_t r = qk_path_at(dirfd, upath, path, flags & L_AT_EMPTY_PATH);
  if (r == 1) {
    struct qk_file *f = (int)dirfd == L_AT_FDCWD ? NULL : fget((uint64_t)dirfd);
    if ((int)dirfd != L_AT_FDCWD && !f)
      r = -QK_EBADF;
    else
      r = qk_vfs_access(f && f->path ? f->path : proc()->fs->cwd, (int)mode,
                        (int)(flags & ~(uint64_t)L_AT_EMPTY_PATH));
    if (f)
      qk_fput(f);
  } else if (r == 0) {
    struct l_stat st;
    /* In-kernel devices are not on the host: they exist and are rw. */
    if (qk_dev_stat(path, qk_va_to_pa(&st)) == 0)
      r = (mode & 1) ? -QK_EACCES : 0;
    else
      r = qk_vfs_access(path, (int)mode, (int)flags);
  }
  qk_kfree(path);
  return r;
}

int64_t sys_access(uint64_t upath, uint64_t mode, uint64_t a2, uint64_t a3, uint64_t a4,
                   uint64_t a5)
{
  return do_faccessat(L_AT_FDCWD, upath, mode, 0);
}

int64_t sys_faccessat(uint64_t dirfd, uint64_t upath, uint64_t mode, uint64_t a3, uint64_t a4,
                      uint64_t a5)
{
  return do_faccessat((int64_t)(int)dirfd, upath, mode, 0);
}

int64_t sys_faccessat2(uint64_t dirfd, uint64_t upath, uint64_t mode, uint64_t flags, uint64_t a4,
                       uint64_t a5)
{
  return do_faccessat((int64_t)(int)dirfd, upath, mode, flags);
}

static int64_t do_readlinkat(int64_t dirfd, uint64_t upath, uint64_t ubuf, uint64_t len)
{
  if ((int64_t)len <= 0)
    return -QK_EINVAL;
  char *path = path_buf();
  if (!path)
    return -QK_ENOMEM;
  int64_t r = qk_path_at(dirfd, upath, path, false);
  if (r == 0) {
    const char *target = NULL;
    /* The one magic link static programs ask for: their own executable. */
    if (!strcmp(path, "/proc/self/exe"))
      target = proc()->exe;
    if (target) {
      size_t n = strlen(target);
      r = (int64_t)(n < len ? n : len);
      if (qk_copy_to_user(ubuf, target, (size_t)r))
        r = -QK_EFAULT;
    } else {
      /* The host writes into the path buffer (its contents were sent). */
      uint64_t cap = len < QK_PATH_MAX ? len : QK_PATH_MAX;
      char *buf = path_buf();
      r = buf ? qk_vfs_readlink(path, buf, cap) : -QK_ENOMEM;
      if (r == -QK_ENOENT) {
        /* The host may say ENOENT for an existing non-link: Linux says
         * EINVAL there. */
        struct l_stat st;
        if (qk_vfs_stat(path, 1, qk_va_to_pa(&st)) == 0 && (st.st_mode & L_S_IFMT) != L_S_IFLNK)
          r = -QK_EINVAL;
      }
      if (r > 0 && qk_copy_to_user(ubuf, buf, (size_t)r))
        r = -QK_EFAULT;
      qk_kfree(buf);
    }
  }
  qk_kfree(path);
  return r;
}

int64_t sys_readlink(uint64_t upath, uint64_t ubuf, uint64_t len, uint64_t a3, uint64_t a4,
                     uint64_t a5)
{
  return do_readlinkat(L_AT_FDCWD, upath, ubuf, len);
}

int64_t sys_readlinkat(uint64_t dirfd, uint64_t upath, uint64_t ubuf, uint64_t len, uint64_t a4,
                       uint64_t a5)
{
  return do_readlinkat((int64_t)(int)dirfd, upath, ubuf, len);
}

/* ---- directories ---- */

int64_t sys_getcwd(uint64_t ubuf, uint64_t size, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  const char *cwd = proc()->fs->cwd;
  size_t n = strlen(cwd) + 1;
  if (size < n)
    return -QK_ERANGE;
  return qk_copy_to_user(ubuf, cwd, n) ? -QK_EFAULT : (int64_t)n;
}

/* Makes abs the cwd if it names a searchable directory. */
static int64_t set_cwd(char *abs)
{
  struct l_stat st;
  int r = qk_vfs_stat(abs, 0, qk_va_to_pa(&st));
  if (r)
    return r;
  if ((st.st_mode & L_S_IFMT) != L_S_IFDIR)
    return -QK_ENOTDIR;
  r = qk_vfs_access(abs, 1, 0);
  if (r)
    return r;
  qk_path_normalize(abs);
  qk_proc_cwd_name(abs); /* through /proc/<pid>/root or cwd: where it leads */
  qk_strlcpy(proc()->fs->cwd, abs, QK_PATH_MAX);
  return 0;
}

int64_t sys_chdir(uint64_t upath, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  char *path = path_buf();
  if (!path)
    return -QK_ENOMEM;
  int64_t r = qk_path_at(L_AT_FDCWD, upath, path, false);
  if (r == 0)
    r = set_cwd(path);
  qk_kfree(path);
  return r;
}

int64_t sys_fchdir(uint64_t fd, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  struct qk_file *f = fget(fd);
  if (!f)
    return -QK_EBADF;
  int64_t r = -QK_ENOTDIR;
  char *path = f->path ? path_buf() : NULL;
  if (path) {
    qk_strlcpy(path, f->path, QK_PATH_MAX);
    r = set_cwd(path);
    qk_kfree(path);
  }
  qk_fput(f);
  return r;
}

static int64_t do_mkdirat(int64_t dirfd, uint64_t upath, uint64_t mode)
{
  char *path = path_buf();
  if (!path)
    return -QK_ENOMEM;
  int64_t r = qk_path_at(dirfd, upath, path, false);
  if (r == 0 && qk_tmpfs_path(path)) {
    char *buf = path_buf();
    r = buf ? qk_tmpfs_mkdir(path, mode & 07777 & ~(uint64_t)proc()->fs->umask, buf) : -QK_ENOMEM;
    if (r == QK_TMPFS_REDIRECT) /* a link out of the tmpfs: the host's path */
      qk_strlcpy(path, buf, QK_PATH_MAX);
    r = r == QK_TMPFS_REDIRECT ? 0 : r ? r : 2;
    qk_kfree(buf);
  }
  if (r == 2) {
    r = 0;
  } else if (r == 0) {
    /* The host takes a parent and a last component: "/" has none (Linux
     * says EEXIST) and a trailing slash is allowed on mkdir. */
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
      path[--n] = 0;
    if (n == 1)
      r = -QK_EEXIST;
    else if ((r = qk_sec_fs_write(path)) < 0) /* read-only root */
      ;
    else
      r = qk_hostfs_change_qcall(QK_OP_MKDIRAT, qk_root_hfd(), qk_va_to_pa(path), n,
                                 mode & 07777 & ~(uint64_t)proc()->fs->umask, 0, 0);
  }
  qk_kfree(path);
  return r;
}

int64_t sys_mkdir(uint64_t upath, uint64_t mode, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  return do_mkdirat(L_AT_FDCWD, upath, mode);
}

int64_t sys_mkdirat(uint64_t dirfd, uint64_t upath, uint64_t mode, uint64_t a3, uint64_t a4,
                    uint64_t a5)
{
  return do_mkdirat((int64_t)(int)dirfd, upath, mode);
}

static int64_t do_unlinkat(int64_t dirfd, uint64_t upath, uint64_t flags)
{
  if (flags & ~(uint64_t)L_AT_REMOVEDIR)
    return -QK_EINVAL;
  char *path = path_buf();
  if (!path)
    return -QK_ENOMEM;
  int64_t r = qk_path_at(dirfd, upath, path, false);
  if (r == 0 && qk_tmpfs_path(path)) {
    char *buf = path_buf();
    r = buf ? qk_tmpfs_unlink(path, flags != 0, buf) : -QK_ENOMEM;
    if (r == QK_TMPFS_REDIRECT)
      qk_strlcpy(path, buf, QK_PATH_MAX);
    r = r == QK_TMPFS_REDIRECT ? 0 : r ? r : 2;
    qk_kfree(buf);
  }
  if (r == 2) {
    r = 0;
  } else if (r == 0) {
    size_t n = strlen(path);
    if (flags) /* rmdir("dir/") is fine; unlink("file/") is not */
      while (n > 1 && path[n - 1] == '/')
        path[--n] = 0;
    if (n == 1)
      r = flags ? -QK_EBUSY : -QK_EISDIR; /* the root itself */
    else if ((r = qk_sec_fs_write(path)) < 0) /* read-only root */
      ;
    else
      r = qk_hostfs_change_qcall(QK_OP_UNLINKAT, qk_root_hfd(), qk_va_to_pa(path), n,
                                 flags ? QK_AT_REMOVEDIR : 0, 0, 0);
  }
  qk_kfree(path);
  return r;
}

int64_t sys_unlink(uint64_t upath, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  return do_unlinkat(L_AT_FDCWD, upath, 0);
}

int64_t sys_rmdir(uint64_t upath, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  return do_unlinkat(L_AT_FDCWD, upath, L_AT_REMOVEDIR);
}

int64_t sys_unlinkat(uint64_t dirfd, uint64_t upath, uint64_t flags, uint64_t a3, uint64_t a4,
                     uint64_t a5)
{
  return do_unlinkat((int64_t)(int)dirfd, upath, flags);
}

int64_t sys_umask(uint64_t mask, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  uint32_t old = proc()->fs->umask;
  proc()->fs->umask = (uint32_t)mask & 0777;
  return old;
}

int64_t sys_fadvise64(uint64_t fd, uint64_t off, uint64_t len, uint64_t advice, uint64_t a4,
                      uint64_t a5)
{
  struct qk_file *f = fget(fd);
  if (!f)
    return -QK_EBADF;
  qk_fput(f);
  return advice <= 5 ? 0 : -QK_EINVAL; /* hints: the host's page cache decides */
}

/* ---- readiness: poll/ppoll/select/pselect6 ----
 * Every open file here is a host file or an in-kernel device, and a
 * blocking read or write on it waits on the host: readiness is reported
 * for every valid descriptor (as Linux does for regular files). For host
 * pipes and terminals this means "a read will wait for data", which serves
 * single-threaded readers (busybox sh's `read` polls before each byte) but
 * not multiplexing; real readiness comes with the pipe and socket work.
 * With nothing ready the call sleeps for its timeout (forever if none). */

#define L_POLLIN 0x001
#define L_POLLPRI 0x002
#define L_POLLOUT 0x004
#define L_POLLNVAL 0x020
#define L_POLLRDNORM 0x040
#define L_POLLWRNORM 0x100

struct l_pollfd {
  int32_t fd;
  int16_t events, revents;
};

static int64_t do_poll(uint64_t ufds, uint64_t nfds, uint64_t timeout_ns)
{
  if (nfds > (uint64_t)proc()->rlim[L_RLIMIT_NOFILE].cur || nfds > QK_FD_MAX)
    return -QK_EINVAL;
  struct l_pollfd *p = nfds ? qk_kmalloc(nfds * sizeof(*p)) : NULL;
  if (nfds && !p)
    return -QK_ENOMEM;
  int64_t ready = 0;
  if (nfds && qk_copy_from_user(p, ufds, nfds * sizeof(*p))) {
    ready = -QK_EFAULT;
    goto out;
  }
  for (uint64_t i = 0; i < nfds; i++) {
    p[i].revents = 0;
    if (p[i].fd < 0)
      continue;
    struct qk_file *f = fget((uint64_t)p[i].fd);
    if (!f) {
      p[i].revents = L_POLLNVAL;
    } else {
      if (f->ops->poll) {
        int ev = f->ops->poll(f);
        if (ev & L_POLLIN)
          ev |= L_POLLRDNORM;
        if (ev & L_POLLOUT)
          ev |= L_POLLWRNORM;
        p[i].revents = (int16_t)(ev & (p[i].events | 0x18 /* POLLERR|POLLHUP */));
      } else {
        p[i].revents = p[i].events & (L_POLLIN | L_POLLOUT | L_POLLRDNORM | L_POLLWRNORM);
      }
      qk_fput(f);
    }
    if (p[i].revents)
      ready++;
  }
  if (!ready && timeout_ns && !qk_wait_expired()) {
    ready = qk_block(&qk_poll_wq, qk_wait_deadline(timeout_ns));
    goto out;
  }
  if (nfds && qk_copy_to_user(ufds, p, nfds * sizeof(*p)))
    ready = -QK_EFAULT;
out:
  qk_kfree(p);
  return ready;
}

static int64_t timespec_ns(uint64_t uts, uint64_t *ns)
{
  if (!uts) {
    *ns = ~0ull; /* no timeout */
    return 0;
  }
  struct l_timespec ts;
  if (qk_copy_from_user(&ts, uts, sizeof(ts)))
    return -QK_EFAULT;
  if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000)
    return -QK_EINVAL;
  *ns = (uint64_t)ts.tv_sec > 100ull * 365 * 86400
            ? ~0ull - 1
            : (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
  return 0;
}

/* poll and select are never restarted after a handler (as on Linux). */
static int64_t no_restart(int64_t r)
{
  return r == -QK_ERESTARTSYS ? -QK_EINTR : r;
}

int64_t sys_poll(uint64_t ufds, uint64_t nfds, uint64_t timeout_ms, uint64_t a3, uint64_t a4,
                 uint64_t a5)
{
  int t = (int)timeout_ms;
  return no_restart(do_poll(ufds, nfds, t < 0 ? ~0ull : (uint64_t)t * 1000000ull));
}

int64_t sys_ppoll(uint64_t ufds, uint64_t nfds, uint64_t uts, uint64_t usigmask,
                  uint64_t sigsetsize, uint64_t a5)
{
  uint64_t ns = ~0ull;
  int64_t r = uts ? timespec_ns(uts, &ns) : 0;
  if (r)
    return r;
  if (usigmask && sigsetsize != 8)
    return -QK_EINVAL;
  r = qk_signal_wait_mask(usigmask);
  if (r)
    return r;
  return qk_signal_wait_mask_end(usigmask, do_poll(ufds, nfds, ns));
}

static int64_t do_select(uint64_t nfds, uint64_t ur, uint64_t uw, uint64_t ue, uint64_t timeout_ns)
{
  if ((int64_t)(int)nfds < 0 || (int)nfds > 1024)
    return -QK_EINVAL;
  int n = (int)nfds;
  size_t bytes = (size_t)((n + 63) / 64) * 8;
  uint64_t sets[3][16];
  uint64_t u[3] = {ur, uw, ue};
  for (int k = 0; k < 3; k++) {
    memset(sets[k], 0, sizeof(sets[k]));
    if (u[k] && bytes && qk_copy_from_user(sets[k], u[k], bytes))
      return -QK_EFAULT;
  }
  int64_t ready = 0;
  for (int fd = 0; fd < n; fd++) {
    uint64_t bit = 1ull << (fd & 63);
    int w = fd / 64;
    if (!((sets[0][w] | sets[1][w] | sets[2][w]) & bit))
      continue;
    struct qk_file *f = fget((uint64_t)fd);
    if (!f)
      return -QK_EBADF;
    if (f->ops->poll) {
      int ev = f->ops->poll(f);
      if (!(ev & (L_POLLIN | 0x10)))
        sets[0][w] &= ~bit;
      if (!(ev & (L_POLLOUT | 0x8)))
        sets[1][w] &= ~bit;
    }
    qk_fput(f);
    sets[2][w] &= ~bit; /* no exceptional conditions */
    ready += !!(sets[0][w] & bit) + !!(sets[1][w] & bit);
  }
  if (!ready) {
    if (timeout_ns && !qk_wait_expired())
      return qk_block(&qk_poll_wq, qk_wait_deadline(timeout_ns));
    memset(sets, 0, sizeof(sets));
  }
  for (int k = 0; k < 3; k++)
    if (u[k] && bytes && qk_copy_to_user(u[k], sets[k], bytes))
      return -QK_EFAULT;
  return ready;
}

int64_t sys_select(uint64_t nfds, uint64_t ur, uint64_t uw, uint64_t ue, uint64_t utv, uint64_t a5)
{
  uint64_t ns = ~0ull;
  if (utv) {
    struct l_timeval tv;
    if (qk_copy_from_user(&tv, utv, sizeof(tv)))
      return -QK_EFAULT;
    if (tv.tv_sec < 0 || tv.tv_usec < 0 || tv.tv_usec >= 1000000)
      return -QK_EINVAL;
    ns = (uint64_t)tv.tv_sec > 100ull * 365 * 86400
             ? ~0ull - 1
             : (uint64_t)tv.tv_sec * 1000000000ull + (uint64_t)tv.tv_usec * 1000;
  }
  return no_restart(do_select(nfds, ur, uw, ue, ns));
}

int64_t sys_pselect6(uint64_t nfds, uint64_t ur, uint64_t uw, uint64_t ue, uint64_t uts,
                     uint64_t a5)
{
  uint64_t ns = ~0ull;
  int64_t r = uts ? timespec_ns(uts, &ns) : 0;
  if (r)
    return r;
  uint64_t umask = 0;
  if (a5) { /* { const sigset_t *ss; size_t ss_len; } */
    uint64_t d[2];
    if (qk_copy_from_user(d, a5, sizeof(d)))
      return -QK_EFAULT;
    if (d[0] && d[1] != 8)
      return -QK_EINVAL;
    umask = d[0];
  }
  r = qk_signal_wait_mask(umask);
  if (r)
    return r;
  return qk_signal_wait_mask_end(umask, do_select(nfds, ur, uw, ue, ns));
}

static int64_t do_pipe2(uint64_t ufds, uint64_t flags)
{
  if (flags & ~(uint64_t)(L_O_NONBLOCK | L_O_CLOEXEC))
    return -QK_EINVAL;
  struct qk_file *r, *w;
  int e = qk_pipe_create((uint32_t)flags, &r, &w);
  if (e)
    return e;
  bool ce = flags & L_O_CLOEXEC;
  int fds[2] = {qk_fd_install(proc()->files, r, 0, ce), -1};
  if (fds[0] < 0) {
    qk_fput(r);
    qk_fput(w);
    return fds[0];
  }
  fds[1] = qk_fd_install(proc()->files, w, 0, ce);
  if (fds[1] < 0) {
    qk_fput(w);
    qk_fd_close(proc()->files, fds[0]);
    return fds[1];
  }
  if (qk_copy_to_user(ufds, fds, sizeof(fds))) {
    qk_fd_close(proc()->files, fds[0]);
    qk_fd_close(proc()->files, fds[1]);
    return -QK_EFAULT;
  }
  return 0;
}

int64_t sys_pipe(uint64_t ufds, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  return do_pipe2(ufds, 0);
}

int64_t sys_pipe2(uint64_t ufds, uint64_t flags, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  return do_pipe2(ufds, flags);
}

/* The *xattr family (188-199): the rootfs's extended attributes are not
 * exposed; "not supported" is what ls, cp -a and tar expect then. */
int64_t sys_xattr(uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  return -QK_EOPNOTSUPP;
}

int64_t sys_close_range(uint64_t first, uint64_t last, uint64_t flags, uint64_t a3, uint64_t a4,
                        uint64_t a5)
{
  if ((flags & ~(uint64_t)(2 | 4)) || (unsigned)first > (unsigned)last)
    return -QK_EINVAL; /* CLOSE_RANGE_UNSHARE (2), CLOSE_RANGE_CLOEXEC (4) */
  struct qk_fdtable *t = proc()->files;
  unsigned hi = (unsigned)last < (unsigned)t->size ? (unsigned)last : (unsigned)t->size - 1;
  for (unsigned fd = (unsigned)first; fd <= hi && (int)fd < t->size; fd++) {
    if (!t->files[fd])
      continue;
    if (flags & 4)
      qk_fd_set_cloexec(t, (int)fd, true);
    else
      qk_fd_close(t, (int)fd);
  }
  return 0;
}
