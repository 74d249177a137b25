/* WebSocket remote-command sessions (the Kubernetes channel protocols):
 * every message starts with a channel number (0 stdin, 1 stdout, 2 stderr,
 * 3 error, 4 resize; v5 adds 255 "close channel"); the base64 variants send
 * text messages whose first byte is the channel as an ASCII digit and whose
 * rest is base64. Framing, masking, pings and the close handshake are
 * libwslay's; the socket is non-blocking here. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <wslay/wslay.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MAX_MSG (1u << 20)
#define WS_MAX_QUEUED (1u << 20)

enum { CH_STDIN = 0, CH_STDOUT = 1, CH_STDERR = 2, CH_ERROR = 3, CH_RESIZE = 4, CH_CLOSE = 255 };

struct ws {
  struct stream_conn *c;
  struct stream_token *t;
  int fd;
  int version;
  bool b64;
  wslay_event_context_ptr ctx;
  cri_stream_proc proc;
  bool started;
  bool closed;
  char *extra; /* bytes that came with the request head */
  size_t extra_len, extra_off;
  uint8_t *stdin_pend;
  size_t stdin_len, stdin_off, stdin_cap;
  bool stdin_fin;
  char resize[4096];
  size_t resize_len;
  int64_t last_io;
  int saved_flags;
  /* port forwarding: channel 2i carries port i's data, 2i+1 its errors */
  struct ws_pf *pf;
  size_t npf;
};

struct ws_pf {
  uint16_t port;
  int fd;
  uint8_t *pend;
  size_t len, off, cap;
};

static bool ws_blocked(struct ws *w)
{
  for (size_t i = 0; i < w->npf; i++)
    if (w->pf[i].off < w->pf[i].len)
      return true;
  return w->stdin_off < w->stdin_len;
}

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *ud)
{
  struct ws *w = ud;
  if (w->extra_off < w->extra_len) {
    size_t n = w->extra_len - w->extra_off < len ? w->extra_len - w->extra_off : len;
    memcpy(buf, w->extra + w->extra_off, n);
    w->extra_off += n;
    return (ssize_t)n;
  }
  if (ws_blocked(w) && w->started) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  ssize_t n;
  do
    n = recv(w->fd, buf, len, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  if (n <= 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  w->last_io = q_mono_ns();
  return n;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                          void *ud)
{
  struct ws *w = ud;
  ssize_t n;
  do
    n = send(w->fd, data, len, MSG_NOSIGNAL | (flags & WSLAY_MSG_MORE ? MSG_MORE : 0));
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  if (n < 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return n;
}

static void ws_push_stdin(struct ws *w)
{
  if (!w->started)
    return;
  while (w->stdin_off < w->stdin_len && w->proc.stdin_fd >= 0) {
    ssize_t n = write(w->proc.stdin_fd, w->stdin_pend + w->stdin_off, w->stdin_len - w->stdin_off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return;
    if (n <= 0)
      break;
    w->stdin_off += (size_t)n;
  }
  w->stdin_len = w->stdin_off = 0;
  if (w->stdin_fin)
    stream_proc_close_stdin(&w->proc);
}

static void ws_pf_push(struct ws *w, struct ws_pf *p)
{
  while (p->off < p->len && p->fd >= 0) {
    ssize_t n = send(p->fd, p->pend + p->off, p->len - p->off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == ENOTSOCK)
      n = write(p->fd, p->pend + p->off, p->len - p->off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return;
    if (n <= 0)
      break;
    p->off += (size_t)n;
  }
  p->len = p->off = 0;
}

static void ws_on_channel(struct ws *w, int ch, const uint8_t *data, size_t len)
{
  if (w->pf) {
    size_t i = (size_t)ch / 2;
    struct ws_pf *p = &w->pf[i];
    if (ch % 2 != 0 || i >= w->npf || p->fd < 0 || len == 0)
      return; /* the client has nothing to say on error channels */
    if (p->len + len > p->cap) {
      size_t cap = p->len + len + 4096;
      uint8_t *n = realloc(p->pend, cap);
      if (!n)
        return;
      p->pend = n;
      p->cap = cap;
    }
    memcpy(p->pend + p->len, data, len);
    p->len += len;
    ws_pf_push(w, p);
    return;
  }
  switch (ch) {
  case CH_STDIN:
    if (w->stdin_fin || !w->t->opts.in)
      return;
    if (w->stdin_len + len > w->stdin_cap) {
      size_t cap = w->stdin_len + len + 4096;
      uint8_t *p = realloc(w->stdin_pend, cap);
      if (!p)
        return;
      w->stdin_pend = p;
      w->stdin_cap = cap;
    }
    memcpy(w->stdin_pend + w->stdin_len, data, len);
    w->stdin_len += len;
    ws_push_stdin(w);
    break;
  case CH_RESIZE:
    if (w->resize_len + len > sizeof(w->resize)) {
      w->resize_len = 0;
      return;
    }
    memcpy(w->resize + w->resize_len, data, len);
    w->resize_len += len;
    if (w->started) {
      ssize_t used = stream_resize_feed(&w->proc, w->resize, w->resize_len);
      if (used < 0)
        used = (ssize_t)w->resize_len;
      memmove(w->resize, w->resize + used, w->resize_len - (size_t)used);
      w->resize_len -= (size_t)used;
    }
    break;
  case CH_CLOSE:
    if (w->version >= RC_V5 && len >= 1 && data[0] == CH_STDIN) {
      w->stdin_fin = true;
      ws_push_stdin(w);
    }
    break;
  default:
    break;
  }
}

static void ws_on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                      void *ud)
{
  struct ws *w = ud;
  if (a->opcode != WSLAY_BINARY_FRAME && a->opcode != WSLAY_TEXT_FRAME)
    return; /* pings, pongs and close: wslay answers them */
  if (a->msg_length == 0)
    return;
  if (!w->b64) {
    ws_on_channel(w, a->msg[0], a->msg + 1, a->msg_length - 1);
    return;
  }
  int ch = a->msg[0] - '0';
  size_t in = a->msg_length - 1;
  if (ch < 0 || ch > 9 || in % 4 != 0)
    return;
  uint8_t *out = malloc(in / 4 * 3 + 1);
  if (!out)
    return;
  int n = EVP_DecodeBlock(out, a->msg + 1, (int)in);
  if (n >= 0) {
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    if (in >= 1 && a->msg[a->msg_length - 1] == '=')
      n--;
    if (in >= 2 && a->msg[a->msg_length - 2] == '=')
      n--;
    ws_on_channel(w, ch, out, (size_t)n);
  }
  free(out);
}

static void ws_send(struct ws *w, int ch, const void *data, size_t len)
{
  if (w->closed)
    return;
  uint8_t *msg;
  size_t mlen;
  if (w->b64) {
    msg = malloc(2 + (len + 2) / 3 * 4 + 1);
    if (!msg)
      return;
    msg[0] = (uint8_t)('0' + ch);
    mlen = 1 + (size_t)EVP_EncodeBlock(msg + 1, data, (int)len);
  } else {
    msg = malloc(len + 1);
    if (!msg)
      return;
    msg[0] = (uint8_t)ch;
    memcpy(msg + 1, data, len);
    mlen = len + 1;
  }
  struct wslay_event_msg m = {
      .opcode = w->b64 ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME, .msg = msg, .msg_length = mlen};
  if (wslay_event_queue_msg(w->ctx, &m) != 0)
    w->closed = true;
  free(msg);
}

/* Sends what wslay has queued, waiting for the socket as needed (bounded by
 * the send timeout). */
static void ws_flush(struct ws *w, int timeout_ms)
{
  int64_t deadline = q_mono_ns() + (int64_t)timeout_ms * 1000000;
  while (!w->closed && wslay_event_want_write(w->ctx)) {
    if (wslay_event_send(w->ctx) != 0) {
      w->closed = true;
      return;
    }
    if (!wslay_event_want_write(w->ctx))
      return;
    int left = (int)((deadline - q_mono_ns()) / 1000000);
    struct pollfd pfd = {.fd = w->fd, .events = POLLOUT};
    if (left <= 0 || poll(&pfd, 1, left) <= 0) {
      w->closed = true;
      return;
    }
  }
}

static int ws_out_fn(void *arg, const void *buf, size_t len)
{
  struct ws *w = ((void **)arg)[0];
  int ch = (int)(intptr_t)((void **)arg)[1];
  ws_send(w, ch, buf, len);
  ws_flush(w, STREAM_SEND_TIMEOUT_MS);
  return w->closed ? -EPIPE : 0;
}

static int ws_handshake(struct ws *w, const struct http_request *req, const char *protocol)
{
  const char *key = http_header(req, "Sec-WebSocket-Key");
  char kg[256];
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (snprintf(kg, sizeof(kg), "%s%s", key, WS_GUID) >= (int)sizeof(kg) ||
      !EVP_Digest(kg, strlen(kg), md, &mdlen, EVP_sha1(), NULL))
    return http_respond(w->fd, 400, NULL, 0, "bad websocket key\n"), -EINVAL;
  char acc[64];
  EVP_EncodeBlock((unsigned char *)acc, md, (int)mdlen);
  char h_acc[128], h_proto[128];
  snprintf(h_acc, sizeof(h_acc), "Sec-WebSocket-Accept: %s", acc);
  snprintf(h_proto, sizeof(h_proto), "Sec-WebSocket-Protocol: %s", protocol ? protocol : "");
  const char *h[] = {"Upgrade: websocket", "Connection: Upgrade", h_acc, h_proto};
  return http_respond(w->fd, 101, h, protocol ? 4 : 3, NULL);
}

/* Answers the handshake and sets up wslay on the (now non-blocking)
 * socket. NULL when the connection is not usable. */
static struct ws *ws_open(struct stream_conn *c, struct stream_token *t,
                          const struct http_request *req, const char *protocol, int version,
                          bool base64)
{
  struct ws *w = calloc(1, sizeof(*w));
  if (!w)
    return NULL;
  w->c = c;
  w->t = t;
  w->fd = c->fd;
  w->version = version;
  w->b64 = base64;
  w->extra = c->extra;
  w->extra_len = c->extra_len;
  w->last_io = q_mono_ns();
  w->proc.stdin_fd = w->proc.stdout_fd = w->proc.stderr_fd = w->proc.exit_fd = -1;
  if (ws_handshake(w, req, protocol) < 0) {
    free(w);
    return NULL;
  }
  struct wslay_event_callbacks cb = {
      .recv_callback = ws_recv_cb, .send_callback = ws_send_cb, .on_msg_recv_callback = ws_on_msg};
  if (wslay_event_context_server_init(&w->ctx, &cb, w) != 0) {
    free(w);
    return NULL;
  }
  wslay_event_config_set_max_recv_msg_length(w->ctx, WS_MAX_MSG);
  w->saved_flags = fcntl(w->fd, F_GETFL);
  fcntl(w->fd, F_SETFL, w->saved_flags | O_NONBLOCK);
  return w;
}

/* Sends what is queued, then the close frame, and frees w. */
static void ws_close(struct ws *w)
{
  if (!w->closed) {
    /* wslay sends queued control frames before data: the status must be
     * out before the close frame is queued, or it would never be sent. */
    ws_flush(w, STREAM_SEND_TIMEOUT_MS);
    wslay_event_queue_close(w->ctx, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
    ws_flush(w, 5000);
  }
  fcntl(w->fd, F_SETFL, w->saved_flags);
  if (!w->closed)
    stream_linger_close(w->fd);
  wslay_event_context_free(w->ctx);
  for (size_t i = 0; i < w->npf; i++) {
    if (w->pf[i].fd >= 0)
      close(w->pf[i].fd);
    free(w->pf[i].pend);
  }
  free(w->pf);
  free(w->stdin_pend);
  free(w);
}

void stream_ws_remotecommand(struct stream_conn *c, struct stream_token *t,
                             const struct http_request *req, const char *protocol, int version,
                             bool base64)
{
  const char *id = t->target;
  struct ws *w = ws_open(c, t, req, protocol, version, base64);
  if (!w)
    return;

  q_cleanup_error q_error *err = NULL;
  bool exited = false, have_proc = false;
  int code = -1, wait_err = 0;
  if (stream_proc_start(c->srv, t, &w->proc, &err) < 0) {
    q_warn(id, "stream: %s failed: %s", t->kind == STREAM_EXEC ? "exec" : "attach",
           q_error_msg(err));
    char *msg = stream_status_message(version, t, -1, q_error_msg(err));
    if (msg)
      ws_send(w, CH_ERROR, msg, strlen(msg));
    free(msg);
    goto finish;
  }
  have_proc = w->started = true;
  ws_push_stdin(w);
  if (w->extra_len && wslay_event_recv(w->ctx) != 0)
    w->closed = true; /* frames that arrived with the request head */

  void *oo[2] = {w, (void *)(intptr_t)CH_STDOUT}, *oe[2] = {w, (void *)(intptr_t)CH_STDERR};
  while (!w->closed && !stream_stopping(c->srv)) {
    if (!wslay_event_want_read(w->ctx) && !wslay_event_want_write(w->ctx))
      break; /* close handshake done: the client went away */
    struct pollfd pfd[5];
    int n = 0, i_sock = n, i_out = -1, i_err = -1, i_in = -1, i_exit;
    short sev = 0;
    if (wslay_event_want_read(w->ctx) && !ws_blocked(w))
      sev |= POLLIN;
    if (wslay_event_want_write(w->ctx))
      sev |= POLLOUT;
    pfd[n++] = (struct pollfd){.fd = w->fd, .events = sev};
    bool room = wslay_event_get_queued_msg_length(w->ctx) < WS_MAX_QUEUED;
    if (w->proc.stdout_fd >= 0 && room) {
      i_out = n;
      pfd[n++] = (struct pollfd){.fd = w->proc.stdout_fd, .events = POLLIN};
    }
    if (w->proc.stderr_fd >= 0 && room) {
      i_err = n;
      pfd[n++] = (struct pollfd){.fd = w->proc.stderr_fd, .events = POLLIN};
    }
    if (ws_blocked(w) && w->proc.stdin_fd >= 0) {
      i_in = n;
      pfd[n++] = (struct pollfd){.fd = w->proc.stdin_fd, .events = POLLOUT};
    }
    i_exit = n;
    pfd[n++] = (struct pollfd){.fd = w->proc.exit_fd, .events = POLLIN};
    int64_t idle =
        (w->last_io + (int64_t)c->srv->cfg.idle_timeout_ms * 1000000 - q_mono_ns()) / 1000000;
    int pr = poll(pfd, (nfds_t)n,
                  idle <= 0               ? 0
                  : idle > STREAM_POLL_MS ? STREAM_POLL_MS
                                          : (int)idle);
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr == 0 && idle <= 0)
      break;
    if (pfd[i_sock].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (wslay_event_recv(w->ctx) != 0) {
        w->closed = true;
        break;
      }
    }
    if (i_in >= 0 && pfd[i_in].revents) {
      ws_push_stdin(w);
      if (!ws_blocked(w) && wslay_event_recv(w->ctx) != 0) {
        w->closed = true;
        break;
      }
    }
    if (i_out >= 0 && pfd[i_out].revents) {
      w->last_io = q_mono_ns();
      if (stream_drain_fd(w->proc.stdout_fd, ws_out_fn, oo)) {
        if (w->proc.stdin_fd == w->proc.stdout_fd)
          w->proc.stdin_fd = -1;
        close(w->proc.stdout_fd);
        w->proc.stdout_fd = -1;
      }
    }
    if (i_err >= 0 && pfd[i_err].revents) {
      w->last_io = q_mono_ns();
      if (stream_drain_fd(w->proc.stderr_fd, ws_out_fn, oe)) {
        close(w->proc.stderr_fd);
        w->proc.stderr_fd = -1;
      }
    }
    if (wslay_event_want_write(w->ctx) && wslay_event_send(w->ctx) != 0) {
      w->closed = true;
      break;
    }
    if (pfd[i_exit].revents && stream_proc_wait(&w->proc, &code, &wait_err)) {
      exited = true;
      break;
    }
  }
  if (exited && !w->closed) {
    if (w->proc.stdout_fd >= 0)
      stream_drain_fd(w->proc.stdout_fd, ws_out_fn, oo);
    if (w->proc.stderr_fd >= 0)
      stream_drain_fd(w->proc.stderr_fd, ws_out_fn, oe);
    char why[128];
    snprintf(why, sizeof(why), "cannot get the exit status: %s", strerror(-wait_err));
    char *msg = stream_status_message(version, t, t->kind == STREAM_ATTACH ? 0 : code,
                                      wait_err ? why : NULL);
    if (msg)
      ws_send(w, CH_ERROR, msg, strlen(msg));
    free(msg);
  }
  q_debug(id, "stream: websocket session over (exit code %d, client %s)", exited ? code : -1,
          w->closed ? "gone" : "connected");
finish:
  if (have_proc) {
    /* Our status and close go out before the process is released. */
    ws_flush(w, STREAM_SEND_TIMEOUT_MS);
    stream_proc_close_stdio(&w->proc);
    w->proc.ops->release(&w->proc, exited && !wait_err);
  }
  ws_close(w);
}

void stream_ws_portforward(struct stream_conn *c, struct stream_token *t,
                           const struct http_request *req, const char *protocol, bool base64)
{
  cri_stream_server *srv = c->srv;
  struct ws *w = ws_open(c, t, req, protocol, RC_V4, base64);
  if (!w)
    return;
  w->pf = calloc(t->nports, sizeof(*w->pf));
  if (!w->pf) {
    ws_close(w);
    return;
  }
  w->npf = t->nports;
  /* Every channel starts with its port (little endian), then each port is
   * dialed; a failure is reported as text on that port's error channel. */
  size_t open = 0;
  for (size_t i = 0; i < w->npf; i++) {
    struct ws_pf *p = &w->pf[i];
    p->port = (uint16_t)t->ports[i];
    p->fd = -1;
    uint8_t le[2] = {(uint8_t)p->port, (uint8_t)(p->port >> 8)};
    ws_send(w, (int)(2 * i), le, 2);
    ws_send(w, (int)(2 * i + 1), le, 2);
    q_cleanup_error q_error *err = NULL;
    int r = srv->cfg.ops->portforward
                ? srv->cfg.ops->portforward(srv->cfg.backend, t->target, p->port, &p->fd, &err)
                : q_error_make(&err, ENOTSUP, "port forwarding is not supported");
    if (r < 0) {
      char msg[512];
      snprintf(msg, sizeof(msg), "error forwarding port %u to pod %s: %s", p->port, t->target,
               q_error_msg(err));
      ws_send(w, (int)(2 * i + 1), msg, strlen(msg));
      p->fd = -1;
      continue;
    }
    int fl = fcntl(p->fd, F_GETFL);
    if (fl >= 0)
      fcntl(p->fd, F_SETFL, fl | O_NONBLOCK);
    open++;
  }
  w->started = true; /* from now on a port that does not take data stops our reads */
  if (w->extra_len && wslay_event_recv(w->ctx) != 0)
    w->closed = true;

  /* Until every port's connection has ended or the client leaves. */
  while (!w->closed && open > 0 && !stream_stopping(srv)) {
    if (!wslay_event_want_read(w->ctx) && !wslay_event_want_write(w->ctx))
      break;
    struct pollfd pfd[1 + 64];
    size_t map[1 + 64];
    nfds_t n = 0;
    short sev = 0;
    if (wslay_event_want_read(w->ctx) && !ws_blocked(w))
      sev |= POLLIN;
    if (wslay_event_want_write(w->ctx))
      sev |= POLLOUT;
    pfd[n++] = (struct pollfd){.fd = w->fd, .events = sev};
    bool room = wslay_event_get_queued_msg_length(w->ctx) < WS_MAX_QUEUED;
    for (size_t i = 0; i < w->npf && n < Q_ARRAY_SIZE(pfd); i++) {
      struct ws_pf *p = &w->pf[i];
      if (p->fd < 0)
        continue;
      short ev = (short)((room ? POLLIN : 0) | (p->off < p->len ? POLLOUT : 0));
      map[n] = i;
      pfd[n++] = (struct pollfd){.fd = p->fd, .events = ev};
    }
    int64_t idle =
        (w->last_io + (int64_t)srv->cfg.idle_timeout_ms * 1000000 - q_mono_ns()) / 1000000;
    int pr = poll(pfd, n, idle <= 0 ? 0 : idle > STREAM_POLL_MS ? STREAM_POLL_MS : (int)idle);
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr == 0 && idle <= 0)
      break;
    if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) && wslay_event_recv(w->ctx) != 0) {
      w->closed = true;
      break;
    }
    for (nfds_t k = 1; k < n; k++) {
      struct ws_pf *p = &w->pf[map[k]];
      if (!pfd[k].revents || p->fd < 0)
        continue;
      if (pfd[k].revents & POLLOUT) {
        ws_pf_push(w, p);
        if (!ws_blocked(w) && wslay_event_recv(w->ctx) != 0)
          w->closed = true;
      }
      if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) {
        w->last_io = q_mono_ns();
        void *arg[2] = {w, (void *)(intptr_t)(2 * map[k])};
        if (stream_drain_fd(p->fd, ws_out_fn, arg)) {
          close(p->fd);
          p->fd = -1;
          open--;
        }
      }
    }
    if (wslay_event_want_write(w->ctx) && wslay_event_send(w->ctx) != 0)
      w->closed = true;
  }
  ws_close(w);
}
