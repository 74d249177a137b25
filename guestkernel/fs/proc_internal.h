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

#endif
