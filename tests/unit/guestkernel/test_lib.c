/* The guest kernel's freestanding string and format functions, against
 * the host libc as the reference. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qk/lib.h>

void *qkt_memcpy(void *, const void *, size_t);
void *qkt_memmove(void *, const void *, size_t);
void *qkt_memset(void *, int, size_t);
int qkt_memcmp(const void *, const void *, size_t);
size_t qkt_strlen(const char *);
size_t qkt_strnlen(const char *, size_t);
int qkt_strcmp(const char *, const char *);
int qkt_strncmp(const char *, const char *, size_t);
char *qkt_strchr(const char *, int);
char *qkt_strrchr(const char *, int);
size_t qkt_strlcpy(char *, const char *, size_t);

static int sign(int v) { return (v > 0) - (v < 0); }

Test(lib, memcpy_memset_all_sizes_and_alignments)
{
  unsigned char src[300], a[320], b[320];
  for (unsigned i = 0; i < sizeof(src); i++)
    src[i] = (unsigned char)(i * 7 + 3);
  for (size_t off = 0; off < 9; off++)
    for (size_t n = 0; n < 280; n += (n < 20 ? 1 : 13)) {
      memset(a, 0xee, sizeof(a));
      memset(b, 0xee, sizeof(b));
      cr_assert_eq(qkt_memcpy(a + off, src + (off * 3) % 8, n), a + off);
      memcpy(b + off, src + (off * 3) % 8, n);
      cr_assert_eq(memcmp(a, b, sizeof(a)), 0, "memcpy off=%zu n=%zu", off, n);
      qkt_memset(a + off, 0x5a, n);
      memset(b + off, 0x5a, n);
      cr_assert_eq(memcmp(a, b, sizeof(a)), 0, "memset off=%zu n=%zu", off, n);
    }
}

Test(lib, memmove_overlaps_both_ways)
{
  char a[64], b[64];
  for (int shift = -9; shift <= 9; shift++)
    for (size_t n = 0; n < 40; n++) {
      for (int i = 0; i < 64; i++)
        a[i] = b[i] = (char)i;
      qkt_memmove(a + 12 + shift, a + 12, n);
      memmove(b + 12 + shift, b + 12, n);
      cr_assert_eq(memcmp(a, b, 64), 0, "shift=%d n=%zu", shift, n);
    }
}

Test(lib, memcmp_and_strings)
{
  cr_assert_eq(qkt_memcmp("abcdefghij", "abcdefghij", 10), 0);
  cr_assert_eq(sign(qkt_memcmp("abcdefghiZ", "abcdefghij", 10)), -1);
  cr_assert_eq(sign(qkt_memcmp("b", "a", 1)), 1);
  /* strlen at every alignment and length around a word. */
  char *buf = malloc(64);
  for (int off = 0; off < 8; off++)
    for (int n = 0; n < 40; n++) {
      memset(buf, 'x', 64);
      buf[off + n] = 0;
      cr_assert_eq(qkt_strlen(buf + off), (size_t)n);
    }
  free(buf);
  cr_assert_eq(qkt_strnlen("hello", 3), 3);
  cr_assert_eq(qkt_strnlen("hi", 10), 2);
  cr_assert_eq(qkt_strcmp("abc", "abc"), 0);
  cr_assert_lt(qkt_strcmp("abc", "abd"), 0);
  cr_assert_gt(qkt_strcmp("abcd", "abc"), 0);
  cr_assert_eq(qkt_strncmp("abcX", "abcY", 3), 0);
  cr_assert_neq(qkt_strncmp("abcX", "abcY", 4), 0);
  const char *s = "/a/b/c";
  cr_assert_eq(qkt_strchr(s, '/'), s);
  cr_assert_eq(qkt_strrchr(s, '/'), s + 4);
  cr_assert_eq(qkt_strchr(s, 'z'), NULL);
  cr_assert_eq(qkt_strchr(s, 0), s + 6);
  char d[4];
  cr_assert_eq(qkt_strlcpy(d, "abcdef", sizeof(d)), 6);
  cr_assert_str_eq(d, "abc");
}

static void check_fmt(const char *want, const char *fmt, ...)
{
  char buf[128];
  va_list ap;
  va_start(ap, fmt);
  int n = qk_vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  cr_assert_str_eq(buf, want, "format \"%s\"", fmt);
  cr_assert_eq(n, (int)strlen(want));
}

Test(lib, snprintf_subset)
{
  check_fmt("x=42 y=-7 z=ff", "x=%d y=%i z=%x", 42, -7, 255);
  check_fmt("[  12][12  ][0012]", "[%4d][%-4d][%04d]", 12, 12, 12);
  check_fmt("18446744073709551615", "%lu", (unsigned long)-1);
  check_fmt("-9223372036854775808", "%ld", (long)INT64_MIN);
  check_fmt("DEAD 0x10", "%X %p", 0xdead, (void *)16);
  check_fmt("s=hi c=! %", "s=%s c=%c %%", "hi", '!');
  check_fmt("(null)", "%s", (char *)NULL);
  check_fmt("[  ab]", "[%4s]", "ab");
  check_fmt("5", "%zu", (size_t)5);
  char small[5];
  cr_assert_eq(qk_snprintf(small, sizeof(small), "%s", "abcdefgh"), 8);
  cr_assert_str_eq(small, "abcd");
  cr_assert_eq(qk_snprintf(NULL, 0, "%d", 12345), 5);
}
