/* Host stand-ins for the guest kernel services the pure-C parts call. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qk/kernel.h>
#include <qk/mm.h>

void *qk_kmalloc(size_t size) { return malloc(size ? size : 1); }
void *qk_kzalloc(size_t size) { return calloc(1, size ? size : 1); }
void qk_kfree(void *p) { free(p); }

void qk_printk(int level, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "qk[%d]: ", level);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

void qk_kpanic(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  abort();
}
