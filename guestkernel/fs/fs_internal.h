/* Declarations shared by the filesystem sources (fs/, syscall/sys_fs.c)
 * that are no part of the file layer's public interface in qk/fs.h. */
#ifndef QK_FS_INTERNAL_H
#define QK_FS_INTERNAL_H

#include <qk/fs.h>

/* The host handle of a rootfs file (a regular file or directory opened
 * through QK_OP_OPENAT), or -1 for anything else (stdio, pipes, devices,
 * /proc): only such handles may be named in a metadata write. */
int qk_hostfs_hfd(struct qk_file *f);

/* One of the in-kernel devices (fs/dev.c)? */
bool qk_dev_path(const char *abs);

/* /proc (fs/proc.c): an absolute, normalised path under /proc. open,
 * stat and readlink answer -QK_ENOENT for a path that names nothing there;
 * qk_proc_path tells whether a path is /proc's at all. */
bool qk_proc_path(const char *abs);
int qk_proc_open(const char *abs, int flags, struct qk_file **out);
int qk_proc_stat(const char *abs, int nofollow, uint64_t stat_gpa);
int64_t qk_proc_readlink(const char *abs, char *buf, uint64_t len);

#endif
