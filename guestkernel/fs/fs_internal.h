/* Declarations shared by the filesystem sources (fs/, syscall/sys_fs.c)
 * that are no part of the file layer's public interface in qk/fs.h. */
#ifndef QK_FS_INTERNAL_H
#define QK_FS_INTERNAL_H

#include <qk/fs.h>

/* The host handle of a rootfs file (a regular file or directory opened
 * through QK_OP_OPENAT), or -1 for anything else (stdio, pipes, devices,
 * /proc): only such handles may be named in a metadata write. */
int qk_hostfs_hfd(struct qk_file *f);

/* Every guest call that may change a host file's attributes (a write,
 * truncate, fallocate, chmod/chown/utimes, a link count, a directory's
 * entries, the root) calls this first: attributes the guest kept
 * (fs/hostfs.c) then no longer answer a stat or fstat. */
void qk_hostfs_changed(void);
/* qk_qcall for a request that changes a host file: qk_hostfs_changed, then
 * the call. */
int64_t qk_hostfs_change_qcall(uint32_t op, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
                               uint64_t a4, uint64_t a5);

/* One of the in-kernel devices (fs/dev.c)? */
bool qk_dev_path(const char *abs);

/* /proc (fs/proc.c): an absolute, normalised path under /proc. open,
 * stat and readlink answer -QK_ENOENT for a path that names nothing there;
 * qk_proc_path tells whether a path is /proc's at all. */
bool qk_proc_path(const char *abs);
int qk_proc_open(const char *abs, int flags, uint32_t mode, struct qk_file **out);
int qk_proc_stat(const char *abs, int nofollow, uint64_t stat_gpa);
int64_t qk_proc_readlink(const char *abs, char *buf, uint64_t len);
/* access(2) of a /proc path: read-only nodes, or the file a root/cwd link
 * leads to in the other process's root. */
int qk_proc_access(const char *abs, int mode, int flags);
/* chdir: a normalised cwd through a root/cwd link becomes the reader's
 * name of where it leads (the path itself in the same root, else
 * /proc/<pid>/root/...), so that getcwd and relative lookups do not
 * follow the other process's later chdir. abs: QK_PATH_MAX bytes. */
void qk_proc_cwd_name(char *abs);

/* tmpfs on /dev/shm (fs/tmpfs.c). Paths are absolute; a symlink that
 * leads out of the tmpfs makes a call answer QK_TMPFS_REDIRECT with the
 * path to resolve instead in redirect (QK_PATH_MAX bytes). */
#define QK_TMPFS_REDIRECT 1
enum { QK_TMPFS_CHMOD = 1, QK_TMPFS_CHOWN, QK_TMPFS_UTIMES, QK_TMPFS_TRUNCATE };
bool qk_tmpfs_path(const char *abs);
bool qk_tmpfs_file(struct qk_file *f);
/* fcntl F_ADD_SEALS / F_GET_SEALS on a tmpfs (memfd) file. */
int64_t qk_tmpfs_seals(struct qk_file *f, int cmd, uint64_t arg);
int qk_tmpfs_open(const char *abs, int flags, uint32_t mode, struct qk_file **out, char *redirect);
int qk_tmpfs_stat(const char *abs, int nofollow, uint64_t stat_gpa, char *redirect);
int qk_tmpfs_access(const char *abs, int mode, int flags, char *redirect);
int64_t qk_tmpfs_readlink(const char *abs, char *buf, uint64_t len, char *redirect);
int qk_tmpfs_mkdir(const char *abs, uint32_t mode, char *redirect);
int qk_tmpfs_mknod(const char *abs, uint32_t mode, char *redirect);
int qk_tmpfs_symlink(const char *target, const char *abs, char *redirect);
int qk_tmpfs_unlink(const char *abs, bool rmdir, char *redirect);
int qk_tmpfs_rename(const char *from, const char *to, uint32_t flags, char *redirect);
int qk_tmpfs_link(const char *from, const char *to, char *redirect);
/* what: QK_TMPFS_*; x, y as the call's values (utimes: the kernel address
 * of two timespecs or 0); on abs, or on the open file f when abs is NULL. */
int qk_tmpfs_setattr(int what, const char *abs, struct qk_file *f, uint64_t x, uint64_t y,
                     int nofollow, char *redirect);
void qk_tmpfs_statfs(void *statfs120);

/* Splicing through a pipe's ring (fs/pipe.c, for fs/splice.c). nonblock:
 * the pipe side answers -QK_EAGAIN instead of waiting; every call waits
 * for the pipe first (data or room: Linux's order), then moves at most
 * what the ring holds or has room for. */
bool qk_pipe_file(const struct qk_file *f);
/* Up to len bytes between the pipe end pf and the file other, through
 * other's rw at off (-1: its position): into the pipe (into) or out of
 * it. Bytes moved, 0 at the end, or -errno (other's own included). */
int64_t qk_pipe_splice(struct qk_file *pf, bool into, struct qk_file *other, int64_t off,
                       uint64_t len, bool nonblock);
/* Up to len bytes from pipe in to pipe out (other pipes), taken from in or
 * left there too (keep: tee). */
int64_t qk_pipe_to_pipe(struct qk_file *in, struct qk_file *out, uint64_t len, bool nonblock,
                        bool keep);
/* vmsplice: user memory into the pipe (a write end; any room will do, no
 * PIPE_BUF atomicity) or out of it (a read end), as readv/writev. */
int64_t qk_pipe_user_io(struct qk_file *pf, const struct qk_uio *u, bool nonblock);

#endif
