/* /proc internals shared by fs/proc.c (nodes, per-process files, the file
 * ops) and fs/proc_sys.c (the output buffer and the system-wide files that
 * need no process state). */
#ifndef QK_FS_PROC_INTERNAL_H
#define QK_FS_PROC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/* A growing text buffer; on allocation failure (or past 256 KiB) it stops
 * growing and sets oom, which the reader turns into ENOMEM. */
struct pbuf {
  char *b;
  size_t len, cap;
  bool oom;
};

#define BUF_MAX (256u << 10) /* the largest file /proc generates */

void pb_grow(struct pbuf *o, size_t need); /* room for need more bytes (or oom) */
void pb_mem(struct pbuf *o, const void *p, size_t n);
void pb_puts(struct pbuf *o, const char *s);
__attribute__((format(printf, 2, 3))) void pb_printf(struct pbuf *o, const char *fmt, ...);

void gen_mounts(struct pbuf *o);    /* /proc/mounts, /proc/<pid>/mounts */
void gen_mountinfo(struct pbuf *o); /* /proc/<pid>/mountinfo */
void gen_cpuinfo(struct pbuf *o);
void gen_meminfo(struct pbuf *o);

/* /proc/<pid>/net (proc_net.c): the files, by index 0..qk_proc_net_count()-1. */
struct qk_file;
int qk_proc_net_count(void);
const char *qk_proc_net_name(int i);             /* NULL: the host has no such file */
int qk_proc_net_find(const char *c, size_t n);   /* the index of name c (n bytes), or -1 */
void gen_net(struct pbuf *o, int i);
/* "socket:[ino]" for a socket file f into buf (host sockets: the host's inode
 * number, as /proc/net/tcp shows it): 1, or 0 when f is no socket. */
int qk_proc_net_sock_link(struct qk_file *f, char *buf, size_t len);

/* /proc/<pid>/root and cwd as magic links (proc_root.c). */
struct qk_process;
/* May the reader follow or read q's root and cwd links? Linux's ptrace
 * read rule (PTRACE_MODE_READ_FSCREDS, less dumpability): itself, a
 * process whose real, effective and saved ids all are the reader's fs
 * ids, or CAP_SYS_PTRACE. */
bool proc_may_read_links(const struct qk_process *q);
/* If abs walks through a root or cwd link (a last component only when
 * followed), the process whose root the walk goes on in (*tp) and the path
 * to resolve there, in buf (QK_PATH_MAX). Returns 1; 0 when it does not
 * (buf then holds abs normalised, for /proc's own lookup); or -errno:
 * -QK_ENOENT for a process that is gone or exiting, -QK_EACCES where the
 * reader may not read its links. */
int proc_through_link(const char *abs, bool nofollow, char *buf, struct qk_process **tp);
/* open, stat, readlink of path in tp's root. An open's file is named as
 * the reader sees it (/proc/<pid>/root/... when the roots differ). */
int proc_open_in_root(struct qk_process *tp, const char *path, int flags, uint32_t mode,
                      struct qk_file **out);
int proc_stat_in_root(struct qk_process *tp, const char *path, int nofollow, uint64_t stat_gpa);
int64_t proc_readlink_in_root(struct qk_process *tp, const char *path, char *buf, uint64_t len);
/* proc.c for proc_root.c: the process of a link path (/proc/<pid>/root,
 * normalised; NULL: none), and the count of links followed through the VFS
 * (enter: -QK_ELOOP past 8). */
struct qk_process *proc_link_owner(const char *link);
int proc_nest_enter(void);
void proc_nest_leave(void);

#endif
