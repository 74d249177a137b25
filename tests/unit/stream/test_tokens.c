/* Token store and request validation of the streaming server, and 404 for
 * tokens that are unknown, reused or expired. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <sys/socket.h>

#include "stream.h"

static int no_exec(void *be, const char *c, char *const argv[], const struct cri_stream_opts *o,
                   cri_stream_proc *p, q_error **err)
{
  return q_error_make(err, ENOSYS, "no exec here");
}
static const struct cri_stream_backend_ops ops = {.exec = no_exec};

static void quiet(void)
{
  q_log_init(NULL, Q_LOG_WARN, "unit_stream_tokens", NULL);
}
TestSuite(tokens, .init = quiet);

static cri_stream_server *start(unsigned ttl_ms, unsigned max_tokens)
{
  struct cri_stream_config cfg = {.ops = &ops, .token_ttl_ms = ttl_ms, .max_tokens = max_tokens};
  cri_stream_server *srv = NULL;
  q_error *err = NULL;
  cr_assert_eq(cri_stream_server_start(&cfg, &srv, &err), 0, "%s", q_error_msg(err));
  return srv;
}

static const char *cmd[] = {"echo", "hi"};

Test(tokens, url_format)
{
  cri_stream_server *srv = start(0, 0);
  char *url = NULL;
  struct cri_stream_opts o = {.out = true};
  cr_assert_eq(cri_stream_request_exec(srv, "c1", cmd, 2, &o, &url, NULL), 0);
  char prefix[128];
  snprintf(prefix, sizeof(prefix), "http://127.0.0.1:%u/exec/", cri_stream_server_port(srv));
  cr_assert_gt(cri_stream_server_port(srv), 0);
  cr_assert_eq(strncmp(url, prefix, strlen(prefix)), 0, "%s", url);
  const char *tok = url + strlen(prefix);
  cr_assert_eq(strlen(tok), 64);
  cr_assert_eq(strspn(tok, "0123456789abcdef"), 64);
  char *url2 = NULL;
  cr_assert_eq(cri_stream_request_attach(srv, "c1", &o, &url2, NULL), 0);
  cr_assert(strstr(url2, "/attach/") && strcmp(url2 + strlen(url2) - 64, tok) != 0);
  free(url2);
  int32_t ports[] = {80, 443};
  cr_assert_eq(cri_stream_request_portforward(srv, "p1", ports, 2, &url2, NULL), 0);
  cr_assert(strstr(url2, "/portforward/"));
  cr_assert_eq(cri_stream_tokens_outstanding(srv), 3);
  free(url2);
  free(url);
  cri_stream_server_stop(srv);
}

Test(tokens, validation)
{
  cri_stream_server *srv = start(0, 0);
  char *url = NULL;
  q_error *err = NULL;
  struct cri_stream_opts tty_err = {.tty = true, .out = true, .err = true}, none = {0},
                         ok = {.in = true};
  cr_assert_eq(cri_stream_request_exec(srv, "c1", cmd, 2, &tty_err, &url, &err), -EINVAL);
  cr_assert(strstr(q_error_msg(err), "tty"));
  q_error_free(&err);
  cr_assert_eq(cri_stream_request_exec(srv, "c1", cmd, 2, &none, &url, NULL), -EINVAL);
  cr_assert_eq(cri_stream_request_attach(srv, "c1", &none, &url, NULL), -EINVAL);
  cr_assert_eq(cri_stream_request_attach(srv, "c1", &tty_err, &url, NULL), -EINVAL);
  cr_assert_eq(cri_stream_request_exec(srv, "c1", cmd, 0, &ok, &url, NULL), -EINVAL);
  cr_assert_eq(cri_stream_request_exec(srv, "", cmd, 2, &ok, &url, NULL), -EINVAL);
  int32_t bad[] = {0}, big[] = {70000};
  cr_assert_eq(cri_stream_request_portforward(srv, "p", bad, 1, &url, NULL), -EINVAL);
  cr_assert_eq(cri_stream_request_portforward(srv, "p", big, 1, &url, NULL), -EINVAL);
  cr_assert_eq(cri_stream_request_portforward(srv, NULL, NULL, 0, &url, NULL), -EINVAL);
  cr_assert_eq(cri_stream_tokens_outstanding(srv), 0);
  cri_stream_server_stop(srv);
}

Test(tokens, limit_then_resource_exhausted)
{
  cri_stream_server *srv = start(0, 0); /* the default: 1000 */
  struct cri_stream_opts o = {.out = true};
  char *url;
  for (int i = 0; i < 1000; i++) {
    cr_assert_eq(cri_stream_request_exec(srv, "c1", cmd, 2, &o, &url, NULL), 0);
    free(url);
  }
  q_error *err = NULL;
  cr_assert_eq(cri_stream_request_exec(srv, "c1", cmd, 2, &o, &url, &err), -ENOSPC);
  q_error_free(&err);
  cri_stream_server_stop(srv); /* frees the outstanding tokens (ASan checks) */
}

Test(tokens, expiry_frees_room)
{
  cri_stream_server *srv = start(50, 2);
  struct cri_stream_opts o = {.out = true};
  char *url;
  for (int i = 0; i < 2; i++) {
    cr_assert_eq(cri_stream_request_exec(srv, "c1", cmd, 2, &o, &url, NULL), 0);
    free(url);
  }
  cr_assert_eq(cri_stream_request_exec(srv, "c1", cmd, 2, &o, &url, NULL), -ENOSPC);
  usleep(80000);
  cr_assert_eq(cri_stream_tokens_outstanding(srv), 0);
  cr_assert_eq(cri_stream_request_exec(srv, "c1", cmd, 2, &o, &url, NULL), 0);
  free(url);
  cri_stream_server_stop(srv);
}

/* Sends a request and returns the status code of the answer. */
static int http_status(cri_stream_server *srv, const char *path, const char *headers)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(cri_stream_server_port(srv))};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  char req[1024];
  int n = snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nHost: x\r\n%s\r\n", path, headers);
  cr_assert_eq(write(fd, req, (size_t)n), n);
  char resp[512] = {0};
  size_t got = 0;
  ssize_t r;
  while (got < sizeof(resp) - 1 && (r = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
    got += (size_t)r;
  close(fd);
  int code = 0;
  sscanf(resp, "HTTP/1.1 %d", &code);
  return code;
}

#define SPDY_HDRS                                                                                  \
  "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"

Test(tokens, http_404_and_single_use)
{
  cri_stream_server *srv = start(0, 0);
  struct cri_stream_opts o = {.out = true};
  char *url;
  cr_assert_eq(cri_stream_request_exec(srv, "c1", cmd, 2, &o, &url, NULL), 0);
  const char *path = strstr(url + 7, "/");
  cr_assert_eq(http_status(srv, "/exec/0123", SPDY_HDRS), 404);
  /* the right token on the wrong route is not found either (and spent) */
  char wrong[128];
  snprintf(wrong, sizeof(wrong), "/attach/%s", path + 6);
  cr_assert_eq(http_status(srv, wrong, SPDY_HDRS), 404);
  cr_assert_eq(http_status(srv, path, SPDY_HDRS), 404);
  free(url);

  /* A wrong protocol spends the token too: 403, then 404. */
  cr_assert_eq(cri_stream_request_exec(srv, "c1", cmd, 2, &o, &url, NULL), 0);
  path = strstr(url + 7, "/");
  cr_assert_eq(
      http_status(srv, path,
                  "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v9\r\n"),
      403);
  cr_assert_eq(http_status(srv, path, SPDY_HDRS), 404);
  free(url);
  cri_stream_server_stop(srv);
}

Test(tokens, ipv6_and_bad_address)
{
  struct cri_stream_config cfg = {.ops = &ops, .address = "::1"};
  cri_stream_server *srv = NULL;
  q_error *err = NULL;
  if (cri_stream_server_start(&cfg, &srv, &err) == 0) {
    cr_assert_eq(strncmp(cri_stream_server_url(srv), "http://[::1]:", 13), 0);
    cri_stream_server_stop(srv);
  } else {
    q_error_free(&err); /* no IPv6 loopback on this machine */
  }
  cfg.address = "localhost";
  cr_assert_eq(cri_stream_server_start(&cfg, &srv, &err), -EINVAL);
  q_error_free(&err);
}

Test(tokens, connection_limit_503)
{
  struct cri_stream_config cfg = {.ops = &ops, .max_conns = 1};
  cri_stream_server *srv = NULL;
  cr_assert_eq(cri_stream_server_start(&cfg, &srv, NULL), 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(cri_stream_server_port(srv))};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  int idle = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert_eq(connect(idle, (struct sockaddr *)&sa, sizeof(sa)), 0);
  /* The idle connection holds the only slot (it is in its 10 s head read). */
  cr_assert_eq(http_status(srv, "/exec/0", SPDY_HDRS), 503);
  close(idle);
  /* Once it is gone the slot is free again. */
  int code = 0;
  for (int i = 0; i < 100 && (code = http_status(srv, "/exec/0", SPDY_HDRS)) == 503; i++)
    usleep(10000);
  cr_assert_eq(code, 404);
  cri_stream_server_stop(srv);
}

Test(tokens, stop_with_a_connection_in_its_head_read)
{
  cri_stream_server *srv = start(0, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(cri_stream_server_port(srv))};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  int idle = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert_eq(connect(idle, (struct sockaddr *)&sa, sizeof(sa)), 0);
  cr_assert_eq(write(idle, "GET /exec/", 10), 10);
  usleep(20000);
  int64_t t0 = q_mono_ns();
  cri_stream_server_stop(srv);
  cr_assert_lt(q_mono_ns() - t0, 2000000000LL, "stop waited for the head timeout");
  close(idle);
}
