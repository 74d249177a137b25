/* Guest filesystem writes confined to the container's root (see ops_fs.h). */
#include "ops_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../../guestkernel/abi/qk_errno.h"

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452 /* Linux 6.6: the one chmod that takes AT_EMPTY_PATH */
#endif

_Static_assert(QK_EPERM == EPERM && QK_EBUSY == EBUSY && QK_EEXIST == EEXIST &&
                   QK_EOPNOTSUPP == EOPNOTSUPP,
               "fs errno numbers are the host's");
_Static_assert(QK_AT_SYMLINK_FOLLOW == AT_SYMLINK_FOLLOW &&
                   QK_RENAME_NOREPLACE == RENAME_NOREPLACE && QK_RENAME_EXCHANGE == RENAME_EXCHANGE,
               "rename/link flags");
_Static_assert(sizeof(struct statfs) == 120, "QK_OP_STATFS copies the x86-64 struct statfs");
_Static_assert(sizeof(struct timespec) == 16, "QK_OP_UTIMENSAT reads two x86-64 timespecs");

#define OBJ_FLAGS (QK_AT_SYMLINK_NOFOLLOW | QK_AT_EMPTY_PATH)

/* A guest path of len bytes, copied and NUL-terminated. */
static int read_path(const struct sbx_fs_ctx *c, uint64_t gpa, uint64_t len,
                     char out[QK_QCALL_MAX_PATH + 1])
{
  if (len > QK_QCALL_MAX_PATH)
    return -ENAMETOOLONG;
  const char *p = sbx_gpa(c->mem, gpa, len);
  if (!p)
    return -EFAULT;
  memcpy(out, p, len);
  out[len] = 0;
  if (memchr(out, 0, len))
    return -EINVAL;
  return 0;
}

static int openat2_in(int dirfd, const char *path, uint64_t flags)
{
  struct open_how how = {.flags = flags | O_CLOEXEC,
                         .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  return fd < 0 ? -errno : fd;
}

/* The parent directory (O_PATH, resolved in the root) of a guest path and
 * its last component. Trailing slashes are dropped. (ops_fs.h) */
int sbx_fs_open_parent(const struct sbx_fs_ctx *c, uint64_t dirh, uint64_t gpa, uint64_t len,
                       char base[NAME_MAX + 1])
{
  int dirfd = c->hfd_get(c->q, dirh);
  if (dirfd < 0)
    return dirfd;
  char path[QK_QCALL_MAX_PATH + 1];
  int r = read_path(c, gpa, len, path);
  if (r < 0)
    return r;
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/')
    path[--n] = 0;
  if (!n)
    return -ENOENT;
  char *slash = strrchr(path, '/');
  const char *b = slash ? slash + 1 : path;
  size_t bl = strlen(b);
  if (bl > NAME_MAX)
    return -ENAMETOOLONG;
  memcpy(base, b, bl + 1);
  if (!slash)
    return openat2_in(dirfd, ".", O_PATH | O_DIRECTORY);
  if (slash == path)
    return openat2_in(dirfd, "/", O_PATH | O_DIRECTORY);
  *slash = 0;
  return openat2_in(dirfd, path, O_PATH | O_DIRECTORY);
}

/* "", "." and "..": no entry of their own to create, move or link. */
static bool not_an_entry(const char *base)
{
  return !base[0] || !strcmp(base, ".") || !strcmp(base, "..");
}

/* An O_PATH handle of the object a request names: a0 itself when the path
 * is empty and QK_AT_EMPTY_PATH is set (*owned = false), else the path
 * resolved in the root (followed unless QK_AT_SYMLINK_NOFOLLOW). Refuses
 * device nodes (-EPERM): the guest never changes one. */
static int open_obj(const struct sbx_fs_ctx *c, const uint64_t *a, uint64_t flags, bool *owned)
{
  if (flags & ~(uint64_t)OBJ_FLAGS)
    return -EINVAL;
  int fd;
  *owned = false;
  if (a[2] == 0 && (flags & QK_AT_EMPTY_PATH)) {
    /* never the sandbox's own stdio (a log file, a terminal, a pipe) */
    fd = a[0] < QK_HFD_ROOT ? -EBADF : c->hfd_get(c->q, a[0]);
  } else {
    int dirfd = c->hfd_get(c->q, a[0]);
    if (dirfd < 0)
      return dirfd;
    char path[QK_QCALL_MAX_PATH + 1];
    int r = read_path(c, a[1], a[2], path);
    if (r < 0)
      return r;
    if (!path[0])
      return -ENOENT;
    fd = openat2_in(dirfd, path, O_PATH | ((flags & QK_AT_SYMLINK_NOFOLLOW) ? O_NOFOLLOW : 0));
    *owned = fd >= 0;
  }
  if (fd < 0)
    return fd;
  struct stat st;
  int e = fstat(fd, &st) < 0 ? -errno : (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) ? -EPERM : 0;
  if (e && *owned)
    close(fd);
  return e ? e : fd;
}

static int64_t done(int fd, bool owned, long r)
{
  int e = errno;
  if (owned)
    close(fd);
  return r < 0 ? -e : 0;
}

static int64_t op_renameat(const struct sbx_fs_ctx *c, const uint64_t *a)
{
  if (a[5] & ~(uint64_t)(QK_RENAME_NOREPLACE | QK_RENAME_EXCHANGE))
    return -EINVAL; /* no RENAME_WHITEOUT: it creates a device node */
  char ob[NAME_MAX + 1], nb[NAME_MAX + 1];
  int ofd = sbx_fs_open_parent(c, a[0], a[1], a[2], ob);
  if (ofd < 0)
    return ofd;
  int nfd = sbx_fs_open_parent(c, a[0], a[3], a[4], nb);
  if (nfd < 0) {
    close(ofd);
    return nfd;
  }
  long r = (not_an_entry(ob) || not_an_entry(nb))
               ? (errno = EBUSY, -1)
               : syscall(SYS_renameat2, ofd, ob, nfd, nb, (unsigned)a[5]);
  int e = errno;
  close(ofd);
  close(nfd);
  return r < 0 ? -e : 0;
}

static int64_t op_linkat(const struct sbx_fs_ctx *c, const uint64_t *a)
{
  if (a[5] & ~(uint64_t)QK_AT_SYMLINK_FOLLOW)
    return -EINVAL;
  char ob[NAME_MAX + 1], nb[NAME_MAX + 1];
  int ofd = sbx_fs_open_parent(c, a[0], a[1], a[2], ob);
  if (ofd < 0)
    return ofd;
  int nfd = sbx_fs_open_parent(c, a[0], a[3], a[4], nb);
  if (nfd < 0) {
    close(ofd);
    return nfd;
  }
  long r;
  struct stat st;
  if (not_an_entry(ob)) {
    r = (errno = EPERM, -1); /* a directory: never hard-linked */
  } else if (not_an_entry(nb)) {
    r = (errno = EEXIST, -1);
  } else if (fstatat(ofd, ob, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    r = -1;
  } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    r = (errno = EPERM, -1);
  } else if (S_ISLNK(st.st_mode) && (a[5] & QK_AT_SYMLINK_FOLLOW)) {
    /* link to what the symlink names, resolved in the container's root */
    char path[QK_QCALL_MAX_PATH + 1];
    int rootfd = c->hfd_get(c->q, a[0]);
    int tfd = rootfd < 0 ? rootfd : read_path(c, a[1], a[2], path);
    if (tfd == 0)
      tfd = openat2_in(rootfd, path, O_PATH);
    if (tfd < 0) {
      r = (errno = -tfd, -1);
    } else if (fstat(tfd, &st) < 0 || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      r = (errno = EPERM, -1);
      close(tfd);
    } else {
      r = linkat(tfd, "", nfd, nb, AT_EMPTY_PATH);
      int e = errno;
      close(tfd);
      errno = e;
    }
  } else {
    r = linkat(ofd, ob, nfd, nb, 0); /* the entry itself, never followed */
  }
  int e = errno;
  close(ofd);
  close(nfd);
  return r < 0 ? -e : 0;
}

static int64_t op_symlinkat(const struct sbx_fs_ctx *c, const uint64_t *a)
{
  char target[QK_QCALL_MAX_PATH + 1];
  int r = read_path(c, a[1], a[2], target);
  if (r < 0)
    return r;
  if (!target[0])
    return -ENOENT;
  char base[NAME_MAX + 1];
  int pfd = sbx_fs_open_parent(c, a[0], a[3], a[4], base);
  if (pfd < 0)
    return pfd;
  long s = not_an_entry(base) ? (errno = EEXIST, -1) : symlinkat(target, pfd, base);
  return done(pfd, true, s);
}

static int64_t op_fchmodat(const struct sbx_fs_ctx *c, const uint64_t *a)
{
  if (a[3] & ~07777ull)
    return -EINVAL;
  bool owned;
  int fd = open_obj(c, a, a[4], &owned);
  if (fd < 0)
    return fd;
  return done(fd, owned, syscall(SYS_fchmodat2, fd, "", (unsigned)a[3], AT_EMPTY_PATH));
}

static int64_t op_fchownat(const struct sbx_fs_ctx *c, const uint64_t *a)
{
  if (a[3] > UINT32_MAX || a[4] > UINT32_MAX)
    return -EINVAL;
  bool owned;
  int fd = open_obj(c, a, a[5], &owned);
  if (fd < 0)
    return fd;
  return done(fd, owned, fchownat(fd, "", (uid_t)a[3], (gid_t)a[4], AT_EMPTY_PATH));
}

static int64_t op_utimensat(const struct sbx_fs_ctx *c, const uint64_t *a)
{
  struct timespec ts[2], *tp = NULL;
  if (a[3]) {
    const void *src = sbx_gpa(c->mem, a[3], sizeof ts);
    if (!src)
      return -EFAULT;
    memcpy(ts, src, sizeof ts);
    for (int i = 0; i < 2; i++)
      if (ts[i].tv_nsec != UTIME_NOW && ts[i].tv_nsec != UTIME_OMIT &&
          (ts[i].tv_nsec < 0 || ts[i].tv_nsec >= 1000000000))
        return -EINVAL;
    tp = ts;
  }
  bool owned;
  int fd = open_obj(c, a, a[4], &owned);
  if (fd < 0)
    return fd;
  return done(fd, owned, utimensat(fd, "", tp, AT_EMPTY_PATH));
}

static int64_t op_syncfs(const struct sbx_fs_ctx *c, const uint64_t *a)
{
  int h = c->hfd_get(c->q, a[0]);
  if (h < 0)
    return h;
  /* syncfs wants an open file, not an O_PATH handle (the root is one) */
  int fd = openat2_in(h, ".", O_RDONLY | O_DIRECTORY | O_NONBLOCK);
  if (fd == -ENOTDIR)
    fd = openat2_in(h, ".", O_RDONLY | O_NONBLOCK);
  if (fd < 0)
    return syncfs(h) < 0 ? -errno : 0;
  return done(fd, true, syncfs(fd));
}

static int64_t op_statfs(const struct sbx_fs_ctx *c, const uint64_t *a)
{
  void *dst = sbx_gpa(c->mem, a[3], sizeof(struct statfs));
  if (!dst)
    return -EFAULT;
  bool owned;
  int fd = open_obj(c, a, QK_AT_EMPTY_PATH, &owned);
  if (fd < 0 && fd != -EPERM)
    return fd;
  if (fd == -EPERM) /* a device node: statfs is harmless, but open_obj refused it */
    return -EACCES;
  struct statfs sf;
  long r = fstatfs(fd, &sf);
  int64_t res = done(fd, owned, r);
  if (res == 0)
    memcpy(dst, &sf, sizeof sf);
  return res;
}

static int64_t op_mknodat(const struct sbx_fs_ctx *c, const uint64_t *a)
{
  if (a[3] > UINT32_MAX)
    return -EINVAL;
  mode_t mode = (mode_t)a[3];
  if ((mode & S_IFMT) == 0)
    mode |= S_IFREG;
  /* S_IFSOCK: the inode of a guest AF_UNIX bind() (the socket itself lives
   * in the guest kernel) */
  if (!S_ISFIFO(mode) && !S_ISREG(mode) && !S_ISSOCK(mode))
    return S_ISCHR(mode) || S_ISBLK(mode) ? -EPERM : -EINVAL;
  char base[NAME_MAX + 1];
  int pfd = sbx_fs_open_parent(c, a[0], a[1], a[2], base);
  if (pfd < 0)
    return pfd;
  long r =
      not_an_entry(base) ? (errno = EEXIST, -1) : mknodat(pfd, base, mode & (S_IFMT | 07777), 0);
  return done(pfd, true, r);
}

static int64_t op_fallocate(const struct sbx_fs_ctx *c, const uint64_t *a)
{
  /* FALLOC_FL_KEEP_SIZE 1, PUNCH_HOLE 2, ZERO_RANGE 0x10 */
  if (a[1] & ~(uint64_t)(1 | 2 | 0x10) || (int64_t)a[2] < 0 || (int64_t)a[3] <= 0)
    return -EINVAL;
  int fd = a[0] <= QK_HFD_ROOT ? -EBADF : c->hfd_get(c->q, a[0]);
  if (fd < 0)
    return fd;
  return fallocate(fd, (int)a[1], (off_t)a[2], (off_t)a[3]) < 0 ? -errno : 0;
}

int64_t sbx_qcall_fs(const struct sbx_fs_ctx *c, uint32_t op, const uint64_t *a)
{
  switch (op) {
  case QK_OP_RENAMEAT:
    return op_renameat(c, a);
  case QK_OP_LINKAT:
    return op_linkat(c, a);
  case QK_OP_SYMLINKAT:
    return op_symlinkat(c, a);
  case QK_OP_FCHMODAT:
    return op_fchmodat(c, a);
  case QK_OP_FCHOWNAT:
    return op_fchownat(c, a);
  case QK_OP_UTIMENSAT:
    return op_utimensat(c, a);
  case QK_OP_SYNCFS:
    return op_syncfs(c, a);
  case QK_OP_STATFS:
    return op_statfs(c, a);
  case QK_OP_MKNODAT:
    return op_mknodat(c, a);
  case QK_OP_FALLOCATE:
    return op_fallocate(c, a);
  default:
    return -ENOSYS;
  }
}
