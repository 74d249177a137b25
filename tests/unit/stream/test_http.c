/* The streaming server's HTTP/1.1 request-head parser. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

static struct http_request req;

static ssize_t parse(const char *s)
{
  return http_parse(s, strlen(s), &req);
}

Test(http, upgrade_request)
{
  const char *s =
      "POST /exec/abc?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nconnection:  keep-alive, Upgrade \r\n"
      "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
      "X-Stream-Protocol-Version: v3.channel.k8s.io, channel.k8s.io\r\n\r\nEXTRA";
  cr_assert_eq(parse(s), (ssize_t)(strlen(s) - 5));
  cr_assert_str_eq(req.method, "POST");
  cr_assert_str_eq(req.target, "/exec/abc?x=1");
  cr_assert_eq(req.minor, 1);
  cr_assert_eq(req.nhdr, 5);
  cr_assert_str_eq(http_header(&req, "CONNECTION"), "keep-alive, Upgrade");
  cr_assert(http_header_has_token(&req, "Connection", "upgrade"));
  cr_assert(!http_header_has_token(&req, "Connection", "close"));
  cr_assert(http_header_has_token(&req, "upgrade", "spdy/3.1"));
  cr_assert(http_header_has_token(&req, "X-Stream-Protocol-Version", "channel.k8s.io"));
  cr_assert_null(http_header(&req, "Sec-WebSocket-Key"));
}

static bool pick_v3(const char *s, size_t len, void *arg)
{
  return len == 17 && memcmp(s, "v3.channel.k8s.io", 17) == 0;
}

Test(http, list_elements_keep_client_order)
{
  parse("GET / HTTP/1.1\r\nP: a, b\r\nQ: z\r\nP: v3.channel.k8s.io,c\r\n\r\n");
  cr_assert_eq(http_header_each(&req, "p", pick_v3, NULL), 2);
  cr_assert_eq(http_header_each(&req, "q", pick_v3, NULL), -1);
}

Test(http, incomplete_and_too_long)
{
  cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: x\r\n"), 0);
  cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: x\r\n\r"), 0);
  static char big[HTTP_MAX_HEAD + 100];
  memset(big, 'a', sizeof(big) - 1);
  memcpy(big, "GET /", 5);
  cr_assert_eq(http_parse(big, HTTP_MAX_HEAD, &req), -EMSGSIZE);
  /* a terminator past the limit does not count */
  memcpy(big + HTTP_MAX_HEAD + 10, "\r\n\r\n", 4);
  cr_assert_eq(http_parse(big, sizeof(big) - 1, &req), -EMSGSIZE);
}

Test(http, too_many_headers)
{
  char s[4096];
  int n = snprintf(s, sizeof(s), "GET / HTTP/1.1\r\n");
  for (int i = 0; i < HTTP_MAX_HEADERS; i++)
    n += snprintf(s + n, sizeof(s) - (size_t)n, "H%d: v\r\n", i);
  snprintf(s + n, sizeof(s) - (size_t)n, "\r\n");
  cr_assert_gt(parse(s), 0);
  snprintf(s + n, sizeof(s) - (size_t)n, "One: more\r\n\r\n");
  cr_assert_eq(parse(s), -E2BIG);
}

Test(http, malformed)
{
  const char *bad[] = {
      "GET / HTTP/1.1\nHost: x\r\n\r\n",              /* bare LF */
      "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", /* obs-fold */
      "GET / HTTP/2.0\r\n\r\n",                       /* version */
      "GET / HTTP/1.1 extra\r\n\r\n",
      "GET\r\n\r\n",
      "GET  / HTTP/1.1\r\n\r\n", /* empty target */
      "GET x HTTP/1.1\r\n\r\n",  /* not origin-form */
      "G(T / HTTP/1.1\r\n\r\n",  /* method not a token */
      "GET / HTTP/1.1\r\nNo colon\r\n\r\n",
      "GET / HTTP/1.1\r\n: empty name\r\n\r\n",
      "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\001b\r\n\r\n", /* control character */
      "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",   /* lone CR */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    cr_assert_eq(parse(bad[i]), -EBADMSG, "case %zu", i);
}

Test(http, random_input)
{
  char buf[600];
  unsigned seed = 777;
  const char alphabet[] = "GET /:\r\n HTP1.0a\t,\001";
  for (int i = 0; i < 20000; i++) {
    size_t len = (size_t)(rand_r(&seed) % (int)sizeof(buf));
    for (size_t k = 0; k < len; k++)
      buf[k] = alphabet[rand_r(&seed) % (int)(sizeof(alphabet) - 1)];
    if (i & 1 && len > 20)
      memcpy(buf, "GET / HTTP/1.1\r\nA: b", 20);
    ssize_t n = http_parse(buf, len, &req);
    cr_assert(n <= (ssize_t)len);
    if (n > 0)
      for (size_t h = 0; h < req.nhdr; h++)
        cr_assert(http_header(&req, req.hdr[h].name) != NULL);
  }
}
