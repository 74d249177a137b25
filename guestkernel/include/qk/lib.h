/* Freestanding helpers for the guest kernel (implemented in guestkernel/lib/).
 * Plain C, no privileged instruction; also compiled for the host by the unit
 * tests in tests/unit/guestkernel/. */
#ifndef QK_LIB_H
#define QK_LIB_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
char *strrchr(const char *s, int c);
/* Copies at most size-1 bytes and always terminates (size > 0); returns strlen(src). */
size_t qk_strlcpy(char *dst, const char *src, size_t size);

/* printf subset: %d %i %u %x %X %p %s %c %% with l/ll/z length and width,
 * zero padding, '-'. Always terminates; returns the length it wanted. */
int qk_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int qk_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Kernel log to the host (QCall QK_OP_LOG; early boot: console port). */
void qk_printk(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define QK_ALIGN_UP(x, a) (((x) + (a) - 1) & ~((__typeof__(x))(a) - 1))
#define QK_ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))
#define QK_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define QK_MIN(a, b) ((a) < (b) ? (a) : (b))
#define QK_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
