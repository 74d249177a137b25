/* The listener and the HTTP front end: accept, read one request head, redeem
 * the token, negotiate the protocol and hand the upgraded connection to the
 * SPDY or WebSocket session code. One thread per connection keeps every
 * session's blocking I/O to itself. */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static const struct {
  const char *name;
  int version;
} spdy_rc_protocols[] = {
    {"v5.channel.k8s.io", RC_V5}, {"v4.channel.k8s.io", RC_V4}, {"v3.channel.k8s.io", RC_V3},
    {"v2.channel.k8s.io", RC_V2}, {"channel.k8s.io", RC_V1},
};

static const struct {
  const char *name;
  int version;
  bool base64;
} ws_rc_protocols[] = {
    {"v5.channel.k8s.io", RC_V5, false},       {"v4.channel.k8s.io", RC_V4, false},
    {"v4.base64.channel.k8s.io", RC_V4, true}, {"channel.k8s.io", RC_V1, false},
    {"base64.channel.k8s.io", RC_V1, true},
};

#define PORTFORWARD_PROTOCOL "portforward.k8s.io"

bool stream_stopping(cri_stream_server *srv)
{
  pthread_mutex_lock(&srv->mu);
  bool s = srv->stopping;
  pthread_mutex_unlock(&srv->mu);
  return s;
}

/* ---- negotiation ---- */

struct pick {
  enum stream_kind kind;
  bool ws;
  int found; /* index into the protocol table, -1 */
};

static bool pick_spdy(const char *s, size_t len, void *arg)
{
  struct pick *p = arg;
  if (p->kind == STREAM_PORTFORWARD) {
    if (len == strlen(PORTFORWARD_PROTOCOL) && memcmp(s, PORTFORWARD_PROTOCOL, len) == 0)
      p->found = 0;
    return p->found >= 0;
  }
  for (size_t i = 0; i < Q_ARRAY_SIZE(spdy_rc_protocols); i++)
    if (len == strlen(spdy_rc_protocols[i].name) &&
        memcmp(s, spdy_rc_protocols[i].name, len) == 0) {
      p->found = (int)i;
      return true;
    }
  return false;
}

static bool pick_ws(const char *s, size_t len, void *arg)
{
  struct pick *p = arg;
  for (size_t i = 0; i < Q_ARRAY_SIZE(ws_rc_protocols); i++)
    if ((p->kind != STREAM_PORTFORWARD || ws_rc_protocols[i].version == RC_V4) &&
        len == strlen(ws_rc_protocols[i].name) && memcmp(s, ws_rc_protocols[i].name, len) == 0) {
      p->found = (int)i;
      return true;
    }
  return false;
}

static void respond_403_protocols(int fd, bool ws, enum stream_kind kind)
{
  char line[512];
  int n = snprintf(line, sizeof(line), "X-Accepted-Stream-Protocol-Versions: ");
  if (ws) {
    for (size_t i = 0; i < Q_ARRAY_SIZE(ws_rc_protocols); i++)
      n += snprintf(line + n, sizeof(line) - (size_t)n, "%s%s", i ? ", " : "",
                    ws_rc_protocols[i].name);
  } else if (kind == STREAM_PORTFORWARD) {
    snprintf(line + n, sizeof(line) - (size_t)n, "%s", PORTFORWARD_PROTOCOL);
  } else {
    for (size_t i = 0; i < Q_ARRAY_SIZE(spdy_rc_protocols); i++)
      n += snprintf(line + n, sizeof(line) - (size_t)n, "%s%s", i ? ", " : "",
                    spdy_rc_protocols[i].name);
  }
  const char *h[] = {line};
  http_respond(fd, 403, h, 1,
               "unable to upgrade: no supported stream protocol version was requested\n");
}

/* ---- one connection ---- */

static int parse_target(const char *target, enum stream_kind *kind, char tok[65])
{
  static const struct {
    const char *prefix;
    enum stream_kind kind;
  } routes[] = {
      {"/exec/", STREAM_EXEC}, {"/attach/", STREAM_ATTACH}, {"/portforward/", STREAM_PORTFORWARD}};
  for (size_t i = 0; i < Q_ARRAY_SIZE(routes); i++) {
    size_t pl = strlen(routes[i].prefix);
    if (strncmp(target, routes[i].prefix, pl) != 0)
      continue;
    const char *s = target + pl;
    size_t n = strcspn(s, "?#");
    if (n == 0 || n > 64)
      return -ENOENT;
    for (size_t k = 0; k < n; k++)
      if (!((s[k] >= '0' && s[k] <= '9') || (s[k] >= 'a' && s[k] <= 'f')))
        return -ENOENT;
    memcpy(tok, s, n);
    tok[n] = 0;
    *kind = routes[i].kind;
    return 0;
  }
  return -ENOENT;
}

static void serve(struct stream_conn *c)
{
  cri_stream_server *srv = c->srv;
  struct http_request *req = malloc(sizeof(*req));
  if (!req)
    return;
  int r = http_read_request(c->fd, STREAM_HEAD_TIMEOUT_MS, req, c->extra, &c->extra_len);
  if (r < 0) {
    if (r == -EMSGSIZE || r == -E2BIG)
      http_respond(c->fd, 431, NULL, 0, "request header too large\n");
    else if (r == -EBADMSG)
      http_respond(c->fd, 400, NULL, 0, "malformed request\n");
    else if (r == -ETIMEDOUT)
      http_respond(c->fd, 408, NULL, 0, "request timeout\n");
    goto out;
  }
  if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0) {
    const char *h[] = {"Allow: GET, POST"};
    http_respond(c->fd, 405, h, 1, "method not allowed\n");
    goto out;
  }
  /* Whatever follows the head belongs to the upgraded protocol: a body
   * would be read as frames. Clients send none (Content-Length: 0). */
  const char *cl = http_header(req, "Content-Length");
  if ((cl && strcmp(cl, "0") != 0) || http_header(req, "Transfer-Encoding")) {
    http_respond(c->fd, 400, NULL, 0, "streaming requests carry no body\n");
    goto out;
  }
  enum stream_kind kind;
  char tok[65];
  struct stream_token *t = NULL;
  if (parse_target(req->target, &kind, tok) == 0)
    t = stream_tokens_consume(srv, tok);
  if (!t || t->kind != kind) {
    q_debug(NULL, "stream: unknown or expired token in %s %s", req->method, req->target);
    http_respond(c->fd, 404, NULL, 0, "404 page not found\n");
    stream_token_free(t);
    goto out;
  }

  const char *id = t->target;
  bool conn_upgrade = http_header_has_token(req, "Connection", "upgrade");
  if (conn_upgrade && http_header_has_token(req, "Upgrade", "websocket")) {
    const char *v = http_header(req, "Sec-WebSocket-Version");
    if (!v || strcmp(v, "13") != 0 || !http_header(req, "Sec-WebSocket-Key")) {
      const char *h[] = {"Sec-WebSocket-Version: 13"};
      http_respond(c->fd, 400, h, 1, "bad websocket handshake\n");
    } else if (kind == STREAM_PORTFORWARD) {
      /* kubelet's WebSocket port forwarding: one channel pair per port of
       * the request; the plain and base64 v4 channel protocols. */
      struct pick p = {kind, true, -1};
      bool any = http_header(req, "Sec-WebSocket-Protocol") != NULL;
      http_header_each(req, "Sec-WebSocket-Protocol", pick_ws, &p);
      const char *name = p.found >= 0 ? ws_rc_protocols[p.found].name : NULL;
      if (any && !name) {
        const char *h[] = {"X-Accepted-Stream-Protocol-Versions: v4.channel.k8s.io, "
                           "v4.base64.channel.k8s.io"};
        http_respond(c->fd, 403, h, 1, "unable to upgrade: no supported protocol\n");
      } else if (t->nports == 0 || t->nports > 32) {
        http_respond(c->fd, 400, NULL, 0,
                     "websocket port forwarding needs 1 to 32 ports in the request\n");
      } else {
        q_debug(id, "stream: websocket portforward session (%s)", name ? name : "no subprotocol");
        stream_ws_portforward(c, t, req, name, name && ws_rc_protocols[p.found].base64);
      }
    } else {
      struct pick p = {kind, true, -1};
      bool any = http_header(req, "Sec-WebSocket-Protocol") != NULL;
      http_header_each(req, "Sec-WebSocket-Protocol", pick_ws, &p);
      if (any && p.found < 0) {
        respond_403_protocols(c->fd, true, kind);
      } else {
        /* No subprotocol at all is the original binary channel protocol. */
        const char *name = p.found >= 0 ? ws_rc_protocols[p.found].name : NULL;
        int version = p.found >= 0 ? ws_rc_protocols[p.found].version : RC_V1;
        bool b64 = p.found >= 0 && ws_rc_protocols[p.found].base64;
        q_debug(id, "stream: websocket %s session (%s)", kind == STREAM_EXEC ? "exec" : "attach",
                name ? name : "no subprotocol");
        stream_ws_remotecommand(c, t, req, name, version, b64);
      }
    }
  } else if (conn_upgrade && http_header_has_token(req, "Upgrade", "SPDY/3.1")) {
    struct pick p = {kind, false, -1};
    bool any = http_header(req, "X-Stream-Protocol-Version") != NULL;
    http_header_each(req, "X-Stream-Protocol-Version", pick_spdy, &p);
    if (any && p.found < 0) {
      respond_403_protocols(c->fd, false, kind);
    } else {
      const char *name = NULL;
      int version = RC_V1;
      if (p.found >= 0) {
        name = kind == STREAM_PORTFORWARD ? PORTFORWARD_PROTOCOL : spdy_rc_protocols[p.found].name;
        version = kind == STREAM_PORTFORWARD ? 1 : spdy_rc_protocols[p.found].version;
      }
      char proto[96];
      const char *h[3] = {"Connection: Upgrade", "Upgrade: SPDY/3.1", proto};
      snprintf(proto, sizeof(proto), "X-Stream-Protocol-Version: %s", name ? name : "");
      if (http_respond(c->fd, 101, h, name ? 3 : 2, NULL) == 0) {
        q_debug(id, "stream: spdy %s session (%s)",
                kind == STREAM_PORTFORWARD ? "portforward" : "remote command",
                name ? name : "legacy");
        if (kind == STREAM_PORTFORWARD)
          stream_spdy_portforward(c, t);
        else
          stream_spdy_remotecommand(c, t, version);
      }
    }
  } else {
    const char *h[] = {"Connection: Upgrade", "Upgrade: SPDY/3.1"};
    http_respond(c->fd, 400, h, 2, "unable to upgrade: missing upgrade headers in request\n");
  }
  stream_token_free(t);
out:
  free(req);
}

static void *conn_main(void *arg)
{
  struct stream_conn *c = arg;
  cri_stream_server *srv = c->srv;
  serve(c);
  pthread_mutex_lock(&srv->mu);
  for (struct stream_conn **pp = &srv->conns; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  srv->nconns--;
  pthread_cond_broadcast(&srv->cv);
  pthread_mutex_unlock(&srv->mu);
  close(c->fd);
  free(c);
  return NULL;
}

static void *accept_main(void *arg)
{
  cri_stream_server *srv = arg;
  for (;;) {
    struct pollfd pfd[2] = {{.fd = srv->lfd, .events = POLLIN},
                            {.fd = srv->wake[0], .events = POLLIN}};
    if (poll(pfd, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      q_error_log(NULL, "stream: poll: %s", strerror(errno));
      return NULL;
    }
    if (pfd[1].revents)
      return NULL;
    int fd = accept4(srv->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        poll(NULL, 0, 100); /* let sessions finish before accepting again */
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct timeval tv = {.tv_sec = STREAM_SEND_TIMEOUT_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

    pthread_mutex_lock(&srv->mu);
    bool full = srv->nconns >= srv->cfg.max_conns || srv->stopping;
    pthread_mutex_unlock(&srv->mu);
    if (full) {
      http_respond(fd, 503, NULL, 0, "too many streaming connections\n");
      close(fd);
      continue;
    }
    struct stream_conn *c = calloc(1, sizeof(*c));
    if (!c) {
      close(fd);
      continue;
    }
    c->srv = srv;
    c->fd = fd;
    pthread_mutex_lock(&srv->mu);
    c->next = srv->conns;
    srv->conns = c;
    srv->nconns++;
    pthread_mutex_unlock(&srv->mu);

    pthread_attr_t a;
    pthread_t th;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int r = pthread_create(&th, &a, conn_main, c);
    pthread_attr_destroy(&a);
    if (r != 0) {
      q_warn(NULL, "stream: cannot start a session thread: %s", strerror(r));
      pthread_mutex_lock(&srv->mu);
      for (struct stream_conn **pp = &srv->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
          *pp = c->next;
          break;
        }
      srv->nconns--;
      pthread_mutex_unlock(&srv->mu);
      close(fd);
      free(c);
    }
  }
}

int cri_stream_server_start(const struct cri_stream_config *cfg, cri_stream_server **out,
                            q_error **err)
{
  if (!cfg || !cfg->ops)
    return q_error_make(err, EINVAL, "streaming server: missing backend");
  cri_stream_server *srv = calloc(1, sizeof(*srv));
  if (!srv)
    return q_error_make(err, ENOMEM, "streaming server");
  srv->cfg = *cfg;
  srv->lfd = srv->wake[0] = srv->wake[1] = -1;
  if (!srv->cfg.token_ttl_ms)
    srv->cfg.token_ttl_ms = 60000;
  if (!srv->cfg.max_tokens)
    srv->cfg.max_tokens = 1000;
  if (!srv->cfg.max_conns)
    srv->cfg.max_conns = 128;
  if (!srv->cfg.idle_timeout_ms)
    srv->cfg.idle_timeout_ms = 4 * 3600 * 1000;
  pthread_mutex_init(&srv->mu, NULL);
  pthread_cond_init(&srv->cv, NULL);
  int r;
  srv->address = strdup(cfg->address && *cfg->address ? cfg->address : "127.0.0.1");
  srv->tokens = calloc(srv->cfg.max_tokens, sizeof(*srv->tokens));
  if (!srv->address || !srv->tokens) {
    r = q_error_make(err, ENOMEM, "streaming server");
    goto fail;
  }

  struct sockaddr_storage ss = {0};
  socklen_t sl;
  struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
  bool v6 = false;
  if (inet_pton(AF_INET, srv->address, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(cfg->port);
    sl = sizeof(*a4);
  } else if (inet_pton(AF_INET6, srv->address, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(cfg->port);
    sl = sizeof(*a6);
    v6 = true;
  } else {
    r = q_error_make(err, EINVAL, "streaming server: StreamAddress '%s' is not an IP address",
                     srv->address);
    goto fail;
  }
  srv->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (srv->lfd < 0) {
    r = q_error_make(err, errno, "streaming server: socket");
    goto fail;
  }
  int one = 1;
  setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(srv->lfd, (struct sockaddr *)&ss, sl) < 0) {
    r = q_error_make(err, errno, "streaming server: bind %s:%u", srv->address, cfg->port);
    goto fail;
  }
  if (listen(srv->lfd, 128) < 0) {
    r = q_error_make(err, errno, "streaming server: listen");
    goto fail;
  }
  sl = sizeof(ss);
  getsockname(srv->lfd, (struct sockaddr *)&ss, &sl);
  srv->port = ntohs(v6 ? a6->sin6_port : a4->sin_port);
  snprintf(srv->url, sizeof(srv->url), v6 ? "http://[%s]:%u" : "http://%s:%u", srv->address,
           srv->port);
  if (pipe2(srv->wake, O_CLOEXEC) < 0) {
    r = q_error_make(err, errno, "streaming server: pipe");
    goto fail;
  }
  if ((r = pthread_create(&srv->accept_thr, NULL, accept_main, srv)) != 0) {
    r = q_error_make(err, r, "streaming server: thread");
    goto fail;
  }
  q_info(NULL, "streaming server listening on %s", srv->url);
  *out = srv;
  return 0;
fail:
  if (srv->lfd >= 0)
    close(srv->lfd);
  if (srv->wake[0] >= 0) {
    close(srv->wake[0]);
    close(srv->wake[1]);
  }
  free(srv->tokens);
  free(srv->address);
  pthread_mutex_destroy(&srv->mu);
  pthread_cond_destroy(&srv->cv);
  free(srv);
  return r;
}

const char *cri_stream_server_url(const cri_stream_server *srv)
{
  return srv->url;
}
uint16_t cri_stream_server_port(const cri_stream_server *srv)
{
  return srv->port;
}

void cri_stream_server_stop(cri_stream_server *srv)
{
  if (!srv)
    return;
  pthread_mutex_lock(&srv->mu);
  srv->stopping = true;
  pthread_mutex_unlock(&srv->mu);
  if (write(srv->wake[1], "x", 1) < 0)
    q_warn(NULL, "stream: wake: %s", strerror(errno));
  pthread_join(srv->accept_thr, NULL);
  close(srv->lfd);
  pthread_mutex_lock(&srv->mu);
  /* Sessions see EOF on their socket and end; a thread removes itself from
   * the list before it closes its fd, so every fd here is still its own. */
  for (struct stream_conn *c = srv->conns; c; c = c->next)
    shutdown(c->fd, SHUT_RDWR);
  while (srv->nconns > 0)
    pthread_cond_wait(&srv->cv, &srv->mu);
  pthread_mutex_unlock(&srv->mu);
  stream_tokens_clear(srv);
  close(srv->wake[0]);
  close(srv->wake[1]);
  free(srv->tokens);
  free(srv->address);
  pthread_mutex_destroy(&srv->mu);
  pthread_cond_destroy(&srv->cv);
  free(srv);
}
