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

#endif
