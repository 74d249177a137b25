/* Memory and string helpers for the guest kernel.
 *
 * Why rep-string instructions: on hosts where guest ring 0 is emulated
 * instruction by instruction (see ARCHITECTURE.md), an emulated `rep movsq`
 * costs about one instruction per 8 bytes while a C loop costs 4-6, and on
 * hardware KVM `rep movs`/`rep stos` are the fast path anyway (ERMS). Bulk
 * copies (pages) do not belong here at all: they go to the host (QK_OP_COPY,
 * QK_OP_ZERO).
 *
 * The string functions that must scan bytes (strlen, strcmp) read a word at
 * a time where they can, for the same reason. */
#include <qk/lib.h>

void *memcpy(void *dst, const void *src, size_t n)
{
  void *d = dst;
  size_t q = n >> 3, r = n & 7;
  __asm__ volatile("rep movsq" : "+D"(d), "+S"(src), "+c"(q) : : "memory");
  __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(r) : : "memory");
  return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
  unsigned char *d = dst;
  const unsigned char *s = src;
  if (d <= s || d >= s + n)
    return memcpy(dst, src, n);
  /* Overlapping with dst above src: copy backwards, byte-wise (rare). */
  d += n - 1;
  s += n - 1;
  __asm__ volatile("std\n\trep movsb\n\tcld" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
  return dst;
}

void *memset(void *dst, int c, size_t n)
{
  void *d = dst;
  uint64_t v = (uint8_t)c * 0x0101010101010101ull;
  size_t q = n >> 3, r = n & 7;
  __asm__ volatile("rep stosq" : "+D"(d), "+c"(q) : "a"(v) : "memory");
  __asm__ volatile("rep stosb" : "+D"(d), "+c"(r) : "a"(v) : "memory");
  return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
  const unsigned char *x = a, *y = b;
  while (n >= 8) {
    uint64_t u, v;
    __builtin_memcpy(&u, x, 8);
    __builtin_memcpy(&v, y, 8);
    if (u != v)
      break;
    x += 8;
    y += 8;
    n -= 8;
  }
  for (; n; n--, x++, y++)
    if (*x != *y)
      return *x - *y;
  return 0;
}

/* Nonzero iff some byte of v is zero (the classic word-at-a-time test). */
static inline uint64_t has_zero(uint64_t v)
{
  return (v - 0x0101010101010101ull) & ~v & 0x8080808080808080ull;
}

/* Reads whole aligned words, possibly past the terminator but never past
 * the page holding it: invisible to the program, not to ASan in host tests. */
__attribute__((no_sanitize_address)) size_t strlen(const char *s)
{
  const char *p = s;
  /* Byte steps up to 8-byte alignment so that word reads never cross a page. */
  while ((uintptr_t)p & 7) {
    if (!*p)
      return (size_t)(p - s);
    p++;
  }
  for (;;) {
    uint64_t w;
    __builtin_memcpy(&w, p, 8);
    if (has_zero(w))
      break;
    p += 8;
  }
  while (*p)
    p++;
  return (size_t)(p - s);
}

size_t strnlen(const char *s, size_t max)
{
  size_t i = 0;
  while (i < max && s[i])
    i++;
  return i;
}

int strcmp(const char *a, const char *b)
{
  const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
  while (*x && *x == *y) {
    x++;
    y++;
  }
  return *x - *y;
}

int strncmp(const char *a, const char *b, size_t n)
{
  const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
  for (; n; n--, x++, y++) {
    if (*x != *y)
      return *x - *y;
    if (!*x)
      return 0;
  }
  return 0;
}

char *strchr(const char *s, int c)
{
  for (;; s++) {
    if (*s == (char)c)
      return (char *)s;
    if (!*s)
      return NULL;
  }
}

char *strrchr(const char *s, int c)
{
  const char *last = NULL;
  for (;; s++) {
    if (*s == (char)c)
      last = s;
    if (!*s)
      return (char *)last;
  }
}

size_t qk_strlcpy(char *dst, const char *src, size_t size)
{
  size_t n = strlen(src);
  if (size) {
    size_t c = n < size - 1 ? n : size - 1;
    memcpy(dst, src, c);
    dst[c] = 0;
  }
  return n;
}
