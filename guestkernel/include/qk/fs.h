/* The file layer: open files with an ops table, per-process descriptor
 * tables, path handling, and the backends (host-backed rootfs files over
 * QCall, a few in-kernel character devices).
 *
 * Reference counts: an open file is shared by every descriptor that dup'ed
 * it (and later by forked processes); qk_fget takes a reference for the
 * duration of a syscall, qk_fput drops it, and the last put releases the
 * backend (closes the host handle). */
#ifndef QK_FS_H
#define QK_FS_H

#include <stdbool.h>
#include <stdint.h>

#include "linux.h"

#define QK_PATH_MAX 4096

struct qk_file;

/* A user I/O request: up to QK_UIO_MAX user segments (readv/writev). */
#define QK_UIO_MAX 1024
struct qk_uio {
  const struct l_iovec *iov;
  unsigned cnt;
  uint64_t total; /* sum of lengths, <= 0x7ffff000 */
};

struct qk_file_ops {
  /* Moves data between the file and user memory. off < 0: at (and
   * advancing) the file position. Returns bytes or -errno. */
  int64_t (*rw)(struct qk_file *f, const struct qk_uio *u, int64_t off, bool write);
  int64_t (*lseek)(struct qk_file *f, int64_t off, int whence);
  /* Writes a struct l_stat at gpa (guest memory the caller checked). */
  int (*fstat)(struct qk_file *f, uint64_t gpa);
  int64_t (*getdents)(struct qk_file *f, uint64_t uva, uint64_t len);
  int64_t (*ioctl)(struct qk_file *f, uint64_t cmd, uint64_t arg);
  /* Readiness for poll/select: L_POLL* bits (NULL: always readable and
   * writable). */
  int (*poll)(struct qk_file *f);
  /* Host handle for private file mmap, or -ENODEV. */
  int (*mmap_hfd)(struct qk_file *f);
  /* Files whose pages live in the guest (tmpfs, memfd): the whole mmap
   * (shared or private) after sys_mmap's access checks; NULL otherwise. */
  int64_t (*mmap)(struct qk_file *f, uint64_t addr, uint64_t len, uint32_t prot, uint32_t mflags,
                  uint64_t off);
  void (*release)(struct qk_file *f);
};

struct qk_file {
  const struct qk_file_ops *ops;
  uint32_t refs;
  uint32_t flags; /* L_O_* status flags (access mode, APPEND, NONBLOCK...) */
  int hfd;        /* host handle, -1 if none */
  uint32_t kind;  /* backend-specific */
  char *path;     /* absolute path as opened (kmalloc'd), or NULL */
  void *priv;     /* backend state (pipes) */
  void *ep_items;  /* epoll registrations watching this file (fs/epoll.c) */
  uint32_t io_seq; /* bumped at each descriptor lookup: re-arms epoll's edge trigger */
};

struct qk_file *qk_file_new(const struct qk_file_ops *ops, uint32_t flags, const char *path);
static inline struct qk_file *qk_file_ref(struct qk_file *f)
{
  f->refs++;
  return f;
}
void qk_fput(struct qk_file *f);
/* Set by fs/epoll.c once an epoll instance exists: qk_fput calls it when a
 * file with registrations (ep_items) is released. */
extern void (*qk_epoll_file_gone)(struct qk_file *f);
/* Set by net/unix_anc.c once a file has gone in flight over a unix
 * socket: qk_fput calls it when a reference that is not the last goes
 * (the collection of descriptor cycles looks at unix sockets). */
extern void (*qk_unix_file_kept)(struct qk_file *f);

/* Descriptor table (fs/fdtable.c). */
#define QK_FD_MAX 4096 /* hard cap on RLIMIT_NOFILE */
struct qk_fdtable {
  struct qk_file **files;
  uint8_t *cloexec;
  int size; /* slots allocated */
  int limit; /* RLIMIT_NOFILE soft limit */
  int lowest_free;
  uint32_t refs;
};

struct qk_fdtable *qk_fdtable_new(int limit);
void qk_fdtable_free(struct qk_fdtable *t);
/* fork without CLONE_FILES: a copy sharing every open file. NULL: ENOMEM. */
struct qk_fdtable *qk_fdtable_dup(struct qk_fdtable *src);
/* execve: closes the descriptors marked close-on-exec. */
void qk_fdtable_close_on_exec(struct qk_fdtable *t);
/* Installs f (consuming one reference) at the lowest free fd >= min.
 * Returns the fd, -QK_EMFILE (none below the limit), -QK_EINVAL (min < 0)
 * or -QK_ENOMEM. Callers with their own range rules (F_DUPFD) check first. */
int qk_fd_install(struct qk_fdtable *t, struct qk_file *f, int min, bool cloexec);
/* Installs f at exactly fd, closing what was there (dup2). */
int qk_fd_install_at(struct qk_fdtable *t, struct qk_file *f, int fd, bool cloexec);
/* The file at fd with a new reference, or NULL. */
struct qk_file *qk_fget_in(struct qk_fdtable *t, int fd);
/* Closes fd: 0 or -QK_EBADF. */
int qk_fd_close(struct qk_fdtable *t, int fd);
int qk_fd_get_cloexec(struct qk_fdtable *t, int fd);
int qk_fd_set_cloexec(struct qk_fdtable *t, int fd, bool on);

/* Paths (fs/path.c, pure). */
/* out = rel if absolute, else base + "/" + rel. Returns length or
 * -QK_ENAMETOOLONG (size includes the NUL). */
int qk_path_join(char *out, int size, const char *base, const char *rel);
/* Lexical clean-up of an absolute path in place: "//" and "." removed,
 * ".." pops a component (clamped at "/" and at a /proc/<pid>/root link
 * walked through; after a /proc/<pid>/cwd link the rest is left as it
 * is), no trailing slash. Returns the length. */
int qk_path_normalize(char *p);
/* Does p[0..n) (normalised) name /proc/<pid>/root or /proc/<pid>/cwd
 * (also self, thread-self, <pid>/task/<tid>)? QK_PATH_LINK_* or 0. */
enum { QK_PATH_LINK_ROOT = 1, QK_PATH_LINK_CWD = 2 };
int qk_path_proc_link(const char *p, uint64_t n);

/* Copies a user path and makes it absolute against dirfd (L_AT_FDCWD: the
 * cwd) into out (QK_PATH_MAX bytes). 0, 1 for an empty path when
 * allow_empty, or -errno. (syscall/sys_fs.c) */
int qk_path_at(int64_t dirfd, uint64_t upath, char *out, bool allow_empty);

/* Backends. */
/* Opens an absolute path inside the rootfs (host) or an in-kernel device. */
int qk_vfs_open(const char *abs, int flags, uint32_t mode, struct qk_file **out);
/* The host stdio handles as files (QK_HFD_STDIN..STDERR). */
struct qk_file *qk_hostfs_stdio(int hfd);
/* A container's stdio handle hfd as stdin/stdout/stderr (which 0..2). */
struct qk_file *qk_hostfs_stdio_hfd(int which, int hfd);
/* The root directory handle paths of the calling process resolve under. */
uint64_t qk_root_hfd(void);
/* stat/access/readlink on an absolute path. */
int qk_vfs_stat(const char *abs, int nofollow, uint64_t stat_gpa);
int qk_vfs_access(const char *abs, int mode, int flags);
int64_t qk_vfs_readlink(const char *abs, char *buf, uint64_t len);
/* Creates the socket inode of a bind() at an absolute path (perm: 0777
 * less the umask). 0 or -errno (-QK_EEXIST when the path exists). */
int qk_vfs_mksock(const char *abs, uint32_t perm);
/* Pipes (fs/pipe.c): both ends, O_NONBLOCK/O_CLOEXEC-free flags given
 * as L_O_NONBLOCK. 0 or -QK_ENOMEM. */
int qk_pipe_create(uint32_t flags, struct qk_file **rd, struct qk_file **wr);
/* The bytes queued at the read end rd, copied without taking them (up to
 * u->total; MSG_PEEK of a unix stream socket): bytes copied or -QK_EFAULT;
 * *queued: bytes stored, *writers: a write end is left. A waiter parks on
 * rd->priv (every change wakes it). */
int64_t qk_pipe_peek(struct qk_file *rd, const struct qk_uio *u, uint32_t *queued, bool *writers);

/* In-kernel devices (/dev/null, /dev/zero, /dev/full, /dev/random,
 * /dev/urandom): -QK_ENOENT if abs names none of them. */
int qk_dev_open(const char *abs, int flags, struct qk_file **out);
int qk_dev_stat(const char *abs, uint64_t stat_gpa);

#endif
