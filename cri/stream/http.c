/* HTTP/1.1 request heads for the upgrade handshakes. Small on purpose: the
 * streaming server accepts one request per connection, GET or POST without a
 * body, and then either upgrades the connection or answers and closes it. */
#include "http.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <quark/common.h>

static bool is_tchar(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

static char *trim(char *s, char *end)
{
  while (s < end && (*s == ' ' || *s == '\t'))
    s++;
  while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  *end = 0;
  return s;
}

ssize_t http_parse(const char *data, size_t len, struct http_request *req)
{
  size_t scan = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
  const char *term = memmem(data, scan, "\r\n\r\n", 4);
  if (!term)
    return len >= HTTP_MAX_HEAD ? -EMSGSIZE : 0;
  size_t hlen = (size_t)(term - data) + 4;
  memset(req, 0, offsetof(struct http_request, buf));
  memcpy(req->buf, data, hlen);
  req->buf[hlen] = 0;
  char *p = req->buf, *end = req->buf + hlen - 2; /* the last line's CRLF stays as the end marker */

  for (size_t i = 0; i < hlen - 2; i++) {
    unsigned char c = (unsigned char)req->buf[i];
    if (c == '\n' && (i == 0 || req->buf[i - 1] != '\r'))
      return -EBADMSG; /* bare LF */
    if (c == '\r' && req->buf[i + 1] != '\n')
      return -EBADMSG;
    if ((c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c == 0x7f)
      return -EBADMSG;
  }

  /* Request line: method SP target SP HTTP/1.x */
  char *eol = strstr(p, "\r\n");
  *eol = 0;
  char *sp1 = strchr(p, ' ');
  if (!sp1 || sp1 == p)
    return -EBADMSG;
  *sp1 = 0;
  for (char *q = p; *q; q++)
    if (!is_tchar(*q))
      return -EBADMSG;
  req->method = p;
  char *target = sp1 + 1;
  char *sp2 = strchr(target, ' ');
  if (!sp2 || sp2 == target || target[0] != '/')
    return -EBADMSG;
  *sp2 = 0;
  req->target = target;
  const char *ver = sp2 + 1;
  if (strncmp(ver, "HTTP/1.", 7) != 0 || ver[7] < '0' || ver[7] > '9' || ver[8] != 0)
    return -EBADMSG;
  req->minor = ver[7] - '0';
  p = eol + 2;

  while (p < end) {
    eol = strstr(p, "\r\n");
    if (!eol || eol > end)
      return -EBADMSG;
    if (*p == ' ' || *p == '\t')
      return -EBADMSG; /* obsolete line folding */
    char *colon = memchr(p, ':', (size_t)(eol - p));
    if (!colon || colon == p)
      return -EBADMSG;
    for (char *q = p; q < colon; q++)
      if (!is_tchar(*q))
        return -EBADMSG;
    if (req->nhdr == HTTP_MAX_HEADERS)
      return -E2BIG;
    *colon = 0;
    req->hdr[req->nhdr].name = p;
    req->hdr[req->nhdr].value = trim(colon + 1, eol);
    req->nhdr++;
    p = eol + 2;
  }
  return (ssize_t)hlen;
}

const char *http_header(const struct http_request *req, const char *name)
{
  for (size_t i = 0; i < req->nhdr; i++)
    if (strcasecmp(req->hdr[i].name, name) == 0)
      return req->hdr[i].value;
  return NULL;
}

int http_header_each(const struct http_request *req, const char *name,
                     bool (*fn)(const char *, size_t, void *), void *arg)
{
  int idx = 0;
  for (size_t i = 0; i < req->nhdr; i++) {
    if (strcasecmp(req->hdr[i].name, name) != 0)
      continue;
    const char *s = req->hdr[i].value;
    while (*s) {
      while (*s == ' ' || *s == '\t' || *s == ',')
        s++;
      if (!*s)
        break;
      const char *e = s;
      while (*e && *e != ',')
        e++;
      const char *t = e;
      while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
        t--;
      if (fn(s, (size_t)(t - s), arg))
        return idx;
      idx++;
      s = e;
    }
  }
  return -1;
}

static bool token_eq(const char *s, size_t len, void *arg)
{
  const char *tok = arg;
  return strlen(tok) == len && strncasecmp(s, tok, len) == 0;
}

bool http_header_has_token(const struct http_request *req, const char *name, const char *token)
{
  return http_header_each(req, name, token_eq, (void *)token) >= 0;
}

int http_read_request(int fd, int timeout_ms, struct http_request *req, char *extra,
                      size_t *extra_len)
{
  char buf[HTTP_MAX_HEAD];
  size_t len = 0;
  int64_t deadline = q_mono_ns() + (int64_t)timeout_ms * 1000000;
  *extra_len = 0;
  for (;;) {
    int64_t left = (deadline - q_mono_ns()) / 1000000;
    if (left <= 0)
      return -ETIMEDOUT;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int pr = poll(&pfd, 1, (int)left);
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr < 0)
      return -errno;
    if (pr == 0)
      return -ETIMEDOUT;
    ssize_t n = recv(fd, buf + len, sizeof(buf) - len, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n < 0)
      return -errno;
    if (n == 0)
      return -ECONNRESET;
    len += (size_t)n;
    ssize_t h = http_parse(buf, len, req);
    if (h < 0)
      return (int)h;
    if (h > 0) {
      *extra_len = len - (size_t)h;
      memcpy(extra, buf + h, *extra_len);
      return 0;
    }
  }
}

const char *http_reason(int status)
{
  switch (status) {
  case 101:
    return "Switching Protocols";
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 426:
    return "Upgrade Required";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 503:
    return "Service Unavailable";
  default:
    return "Unknown";
  }
}

int http_respond(int fd, int status, const char *const *headers, size_t nheaders, const char *body)
{
  char out[4096];
  size_t blen = body ? strlen(body) : 0;
  int n = snprintf(out, sizeof(out), "HTTP/1.1 %d %s\r\n", status, http_reason(status));
  for (size_t i = 0; i < nheaders && n > 0 && (size_t)n < sizeof(out); i++)
    n += snprintf(out + n, sizeof(out) - (size_t)n, "%s\r\n", headers[i]);
  if (status != 101 && n > 0 && (size_t)n < sizeof(out))
    n += snprintf(
        out + n, sizeof(out) - (size_t)n,
        "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\nConnection: close\r\n",
        blen);
  if (n > 0 && (size_t)n < sizeof(out))
    n += snprintf(out + n, sizeof(out) - (size_t)n, "\r\n");
  if (n <= 0 || (size_t)n >= sizeof(out))
    return -EOVERFLOW;
  if (q_write_all(fd, out, (size_t)n) < 0 || (blen && q_write_all(fd, body, blen) < 0))
    return -errno ? -errno : -EIO;
  return 0;
}
