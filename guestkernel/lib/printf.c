/* qk_vsnprintf: the small printf subset the kernel's logs need (see lib.h). */
#include <qk/lib.h>

struct out {
  char *buf;
  size_t size;
  size_t len; /* wanted length so far */
};

static void put(struct out *o, char c)
{
  if (o->len + 1 < o->size)
    o->buf[o->len] = c;
  o->len++;
}

static void put_num(struct out *o, uint64_t v, unsigned base, int upper, int neg, int width,
                    int zero, int left)
{
  char tmp[24];
  const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  int n = 0;
  do {
    tmp[n++] = digits[v % base];
    v /= base;
  } while (v);
  int total = n + neg;
  if (!left && !zero)
    for (; total < width; width--)
      put(o, ' ');
  if (neg)
    put(o, '-');
  if (!left && zero)
    for (; total < width; width--)
      put(o, '0');
  while (n)
    put(o, tmp[--n]);
  if (left)
    for (; total < width; width--)
      put(o, ' ');
}

int qk_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
  struct out o = { buf, size, 0 };
  for (; *fmt; fmt++) {
    if (*fmt != '%') {
      put(&o, *fmt);
      continue;
    }
    fmt++;
    int left = 0, zero = 0, width = 0, lng = 0;
    for (;; fmt++) {
      if (*fmt == '-')
        left = 1;
      else if (*fmt == '0')
        zero = 1;
      else
        break;
    }
    while (*fmt >= '0' && *fmt <= '9')
      width = width * 10 + (*fmt++ - '0');
    for (;; fmt++) {
      if (*fmt == 'l')
        lng++;
      else if (*fmt == 'z')
        lng = 2;
      else
        break;
    }
    switch (*fmt) {
    case 'd':
    case 'i': {
      int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
      uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
      put_num(&o, u, 10, 0, v < 0, width, zero, left);
      break;
    }
    case 'u':
    case 'x':
    case 'X': {
      uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
      put_num(&o, v, *fmt == 'u' ? 10 : 16, *fmt == 'X', 0, width, zero, left);
      break;
    }
    case 'p':
      put(&o, '0');
      put(&o, 'x');
      put_num(&o, (uint64_t)(uintptr_t)va_arg(ap, void *), 16, 0, 0, width, zero, left);
      break;
    case 's': {
      const char *s = va_arg(ap, const char *);
      if (!s)
        s = "(null)";
      int n = (int)strlen(s);
      if (!left)
        for (; n < width; width--)
          put(&o, ' ');
      for (const char *p = s; *p; p++)
        put(&o, *p);
      if (left)
        for (; n < width; width--)
          put(&o, ' ');
      break;
    }
    case 'c':
      put(&o, (char)va_arg(ap, int));
      break;
    case '%':
      put(&o, '%');
      break;
    case 0:
      fmt--; /* a lone '%' at the end: stop at the terminator */
      break;
    default:
      put(&o, '%');
      put(&o, *fmt);
      break;
    }
  }
  if (size)
    buf[o.len < size ? o.len : size - 1] = 0;
  return (int)o.len;
}

int qk_snprintf(char *buf, size_t size, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int n = qk_vsnprintf(buf, size, fmt, ap);
  va_end(ap);
  return n;
}
