/* Client side of the streaming protocols, for the quark CLI: WebSocket
 * (v5.channel.k8s.io, else v4) remote command sessions and one-port
 * WebSocket port forwarding, with libwslay doing the framing and masking. */
#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>
#include <wslay/wslay.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define CL_MAX_STATUS 65536

struct wsc {
  int fd;
  wslay_event_context_ptr ctx;
  const char *proto;
  char *pre; /* bytes read past the handshake */
  size_t pre_len, pre_off;
  bool closed;
  /* remote command */
  int out_fd, err_fd;
  char status[CL_MAX_STATUS];
  size_t status_len;
  /* port forward */
  int pf_fd;
  bool pf_seen[2];
  char pf_err[1024];
  size_t pf_err_len;
};

static ssize_t cl_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
  struct wsc *w = ud;
  if (w->pre_off < w->pre_len) {
    size_t n = w->pre_len - w->pre_off < len ? w->pre_len - w->pre_off : len;
    memcpy(buf, w->pre + w->pre_off, n);
    w->pre_off += n;
    return (ssize_t)n;
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
  return n;
}

static ssize_t cl_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud)
{
  struct wsc *w = ud;
  ssize_t n;
  do
    n = send(w->fd, data, len, MSG_NOSIGNAL);
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

static int cl_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud)
{
  if (RAND_bytes(buf, (int)len) != 1) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return 0;
}

static void write_all_fd(int fd, const uint8_t *p, size_t n)
{
  while (n > 0 && fd >= 0) {
    ssize_t r = write(fd, p, n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && errno == EAGAIN) {
      struct pollfd pfd = {.fd = fd, .events = POLLOUT};
      poll(&pfd, 1, 1000);
      continue;
    }
    if (r <= 0)
      return;
    p += r;
    n -= (size_t)r;
  }
}

static void cl_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                   void *ud)
{
  struct wsc *w = ud;
  if (a->opcode == WSLAY_CONNECTION_CLOSE) {
    w->closed = true;
    return;
  }
  if (a->opcode != WSLAY_BINARY_FRAME || a->msg_length < 1)
    return;
  uint8_t ch = a->msg[0];
  const uint8_t *d = a->msg + 1;
  size_t n = a->msg_length - 1;
  if (w->pf_fd >= 0 || w->pf_seen[0] || w->pf_seen[1]) {
    if (ch > 1)
      return;
    if (!w->pf_seen[ch]) { /* each channel starts with its port */
      w->pf_seen[ch] = true;
      size_t skip = n < 2 ? n : 2;
      d += skip;
      n -= skip;
    }
    if (ch == 0)
      write_all_fd(w->pf_fd, d, n);
    else if (n > 0 && w->pf_err_len + n < sizeof w->pf_err) {
      memcpy(w->pf_err + w->pf_err_len, d, n);
      w->pf_err_len += n;
    }
    return;
  }
  if (ch == 1)
    write_all_fd(w->out_fd, d, n);
  else if (ch == 2)
    write_all_fd(w->err_fd >= 0 ? w->err_fd : w->out_fd, d, n);
  else if (ch == 3 && w->status_len + n < sizeof w->status) {
    memcpy(w->status + w->status_len, d, n);
    w->status_len += n;
  }
}

/* "http://host:port/path" → a connected socket and the handshake done. */
static int cl_connect(struct wsc *w, const char *url, const char *const *protos, q_error **err)
{
  const char *p = strncmp(url, "http://", 7) == 0 ? url + 7 : NULL;
  if (!p)
    return q_error_make(err, EINVAL, "url '%s': only http:// streaming URLs", url);
  const char *path = strchr(p, '/');
  if (!path)
    return q_error_make(err, EINVAL, "url '%s' has no path", url);
  char hostport[300];
  if ((size_t)(path - p) >= sizeof hostport)
    return q_error_make(err, EINVAL, "url host too long");
  memcpy(hostport, p, (size_t)(path - p));
  hostport[path - p] = '\0';
  char authority[300];
  snprintf(authority, sizeof authority, "%s", hostport);
  char *host = hostport, *port = NULL;
  if (host[0] == '[') {
    char *e = strchr(host, ']');
    if (!e)
      return q_error_make(err, EINVAL, "url '%s': bad IPv6 host", url);
    *e = '\0';
    host++;
    port = e[1] == ':' ? e + 2 : NULL;
  } else if ((port = strrchr(host, ':'))) {
    *port++ = '\0';
  }
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
  int g = getaddrinfo(host, port ? port : "80", &hints, &ai);
  if (g != 0)
    return q_error_make(err, EHOSTUNREACH, "%s: %s", host, gai_strerror(g));
  int fd = -1, e = 0;
  for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
      e = errno;
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(ai);
  if (fd < 0)
    return q_error_make(err, e ? e : ECONNREFUSED, "connect to %s", authority);
  w->fd = fd;
  uint8_t raw[16];
  char key[32], want[64], plist[256] = "";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  char kg[128];
  if (RAND_bytes(raw, sizeof raw) != 1)
    return q_error_make(err, EIO, "no random bytes");
  EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);
  snprintf(kg, sizeof kg, "%s%s", key, WS_GUID);
  EVP_Digest(kg, strlen(kg), md, &mdlen, EVP_sha1(), NULL);
  EVP_EncodeBlock((unsigned char *)want, md, (int)mdlen);
  for (size_t i = 0; protos[i]; i++)
    snprintf(plist + strlen(plist), sizeof plist - strlen(plist), "%s%s", i ? ", " : "", protos[i]);
  char req[2048];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Protocol: %s\r\n\r\n",
                   path, authority, key, plist);
  if (n < 0 || (size_t)n >= sizeof req)
    return q_error_make(err, EINVAL, "url too long");
  if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
    return q_error_make(err, errno ? errno : EIO, "send handshake");
  char resp[8192];
  size_t have = 0;
  char *end = NULL;
  while (!end) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 15000) <= 0)
      return q_error_make(err, ETIMEDOUT, "no handshake answer");
    ssize_t r = recv(fd, resp + have, sizeof resp - 1 - have, 0);
    if (r <= 0)
      return q_error_make(err, ECONNRESET, "connection closed during the handshake");
    have += (size_t)r;
    resp[have] = '\0';
    end = strstr(resp, "\r\n\r\n");
    if (!end && have >= sizeof resp - 1)
      return q_error_make(err, EPROTO, "handshake answer too long");
  }
  *end = '\0';
  int code = 0;
  if (sscanf(resp, "HTTP/1.%*d %d", &code) != 1 || code != 101) {
    char *body = end + 4;
    size_t blen = have - (size_t)(body - resp);
    return q_error_make(err, code == 404 ? ENOENT : EPROTO, "server answered %d%s%.*s", code,
                        blen ? ": " : "", (int)(blen > 200 ? 200 : blen), body);
  }
  /* Header names are case-insensitive: look at a lowercased copy. */
  for (char *c = resp; *c; c++)
    if (*c >= 'A' && *c <= 'Z')
      *c = (char)(*c - 'A' + 'a');
  char want_l[64];
  snprintf(want_l, sizeof want_l, "%s", want);
  for (char *c = want_l; *c; c++)
    if (*c >= 'A' && *c <= 'Z')
      *c = (char)(*c - 'A' + 'a');
  if (!strstr(resp, "sec-websocket-accept:") || !strstr(resp, want_l))
    return q_error_make(err, EPROTO, "bad Sec-WebSocket-Accept");
  w->proto = NULL;
  char *pr = strstr(resp, "sec-websocket-protocol:");
  for (size_t i = 0; pr && protos[i]; i++)
    if (!strncmp(pr + 23 + strspn(pr + 23, " "), protos[i], strlen(protos[i])))
      w->proto = protos[i];
  if (!w->proto)
    return q_error_make(err, EPROTO, "the server picked no subprotocol we offered");
  size_t extra = have - (size_t)(end + 4 - resp);
  if (extra) {
    if (!(w->pre = malloc(extra)))
      return q_error_make(err, ENOMEM, "handshake");
    memcpy(w->pre, end + 4, extra);
    w->pre_len = extra;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  struct wslay_event_callbacks cb = {.recv_callback = cl_recv,
                                     .send_callback = cl_send,
                                     .genmask_callback = cl_genmask,
                                     .on_msg_recv_callback = cl_msg};
  if (wslay_event_context_client_init(&w->ctx, &cb, w) != 0)
    return q_error_make(err, ENOMEM, "wslay");
  return 0;
}

static void cl_free(struct wsc *w)
{
  if (w->ctx)
    wslay_event_context_free(w->ctx);
  if (w->fd >= 0)
    close(w->fd);
  free(w->pre);
}

static void cl_queue(struct wsc *w, uint8_t ch, const void *data, size_t len)
{
  uint8_t *m = malloc(len + 1);
  if (!m)
    return;
  m[0] = ch;
  memcpy(m + 1, data, len);
  struct wslay_event_msg msg = {.opcode = WSLAY_BINARY_FRAME, .msg = m, .msg_length = len + 1};
  wslay_event_queue_msg(w->ctx, &msg); /* copies */
  free(m);
}

static void cl_resize(struct wsc *w, int tty_fd)
{
  struct winsize ws;
  if (tty_fd < 0 || ioctl(tty_fd, TIOCGWINSZ, &ws) < 0)
    return;
  char m[64];
  int n = snprintf(m, sizeof m, "{\"Width\":%u,\"Height\":%u}", ws.ws_col, ws.ws_row);
  cl_queue(w, 4, m, (size_t)n);
}

/* Pumps the socket once (poll already said something is ready). */
static bool cl_pump(struct wsc *w, short rev)
{
  if ((rev & (POLLIN | POLLHUP | POLLERR)) || w->pre_off < w->pre_len)
    if (wslay_event_recv(w->ctx) != 0)
      return false;
  if (wslay_event_want_write(w->ctx) && wslay_event_send(w->ctx) != 0)
    return false;
  return !w->closed || wslay_event_want_write(w->ctx);
}

int cri_stream_client_exec(const char *url, const struct cri_stream_client_io *io, q_error **err)
{
  static const char *const protos[] = {"v5.channel.k8s.io", "v4.channel.k8s.io", NULL};
  struct wsc w = {.fd = -1, .out_fd = io->out_fd, .err_fd = io->err_fd, .pf_fd = -1};
  int rc = cl_connect(&w, url, protos, err);
  if (rc < 0) {
    cl_free(&w);
    return rc;
  }
  bool v5 = !strcmp(w.proto, "v5.channel.k8s.io");
  int in_fd = io->in_fd;
  if (io->tty)
    cl_resize(&w, io->tty_fd);
  for (;;) {
    struct pollfd pfd[3];
    nfds_t n = 0;
    short ev = POLLIN;
    if (wslay_event_want_write(w.ctx))
      ev |= POLLOUT;
    pfd[n++] = (struct pollfd){.fd = w.fd, .events = ev};
    int i_in = -1, i_wn = -1;
    if (in_fd >= 0) {
      i_in = (int)n;
      pfd[n++] = (struct pollfd){.fd = in_fd, .events = POLLIN};
    }
    if (io->winch_fd >= 0) {
      i_wn = (int)n;
      pfd[n++] = (struct pollfd){.fd = io->winch_fd, .events = POLLIN};
    }
    int pr = poll(pfd, n, w.pre_off < w.pre_len ? 0 : -1);
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr < 0)
      break;
    if (i_in >= 0 && pfd[i_in].revents) {
      char buf[16384];
      ssize_t r = read(in_fd, buf, sizeof buf);
      if (r > 0) {
        cl_queue(&w, 0, buf, (size_t)r);
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        in_fd = -1; /* EOF: v5 says so on the close channel */
        if (v5) {
          uint8_t c0 = 0;
          cl_queue(&w, 255, &c0, 1);
        }
      }
    }
    if (i_wn >= 0 && pfd[i_wn].revents) {
      char b[64];
      if (read(io->winch_fd, b, sizeof b) > 0)
        cl_resize(&w, io->tty_fd);
    }
    if (!cl_pump(&w, pfd[0].revents))
      break;
  }
  cl_free(&w);
  /* The status: Success, or Failure with the exit code as a cause. */
  if (!w.status_len)
    return q_error_make(err, ECONNRESET, "the session ended without an exit status");
  json_t *st = json_loadb(w.status, w.status_len, 0, NULL);
  const char *s = json_string_value(json_object_get(st, "status"));
  rc = -EPROTO;
  if (s && !strcmp(s, "Success")) {
    rc = 0;
  } else if (s && !strcmp(s, "Failure")) {
    json_t *causes = json_object_get(json_object_get(st, "details"), "causes");
    size_t i;
    json_t *c;
    json_array_foreach(causes, i, c)
    {
      const char *r = json_string_value(json_object_get(c, "reason"));
      const char *m = json_string_value(json_object_get(c, "message"));
      if (r && m && !strcmp(r, "ExitCode"))
        rc = atoi(m) & 255;
    }
    if (rc < 0) {
      const char *m = json_string_value(json_object_get(st, "message"));
      rc = q_error_make(err, EREMOTEIO, "%s", m ? m : "remote command failed");
    }
  }
  if (rc == -EPROTO)
    rc = q_error_make(err, EPROTO, "bad status: %.*s", (int)w.status_len, w.status);
  json_decref(st);
  return rc;
}

int cri_stream_client_portforward(const char *url, int fd, q_error **err)
{
  static const char *const protos[] = {"v4.channel.k8s.io", NULL};
  struct wsc w = {.fd = -1, .out_fd = -1, .err_fd = -1, .pf_fd = fd};
  int rc = cl_connect(&w, url, protos, err);
  if (rc < 0) {
    cl_free(&w);
    return rc;
  }
  int in_fd = fd;
  for (;;) {
    struct pollfd pfd[2];
    nfds_t n = 0;
    short ev = POLLIN;
    if (wslay_event_want_write(w.ctx))
      ev |= POLLOUT;
    pfd[n++] = (struct pollfd){.fd = w.fd, .events = ev};
    if (in_fd >= 0)
      pfd[n++] = (struct pollfd){.fd = in_fd, .events = POLLIN};
    int pr = poll(pfd, n, w.pre_off < w.pre_len ? 0 : -1);
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr < 0)
      break;
    if (n > 1 && pfd[1].revents) {
      char buf[16384];
      ssize_t r = read(in_fd, buf, sizeof buf);
      if (r > 0)
        cl_queue(&w, 0, buf, (size_t)r);
      else if (r == 0 || (errno != EINTR && errno != EAGAIN))
        in_fd = -1;
    }
    if (!cl_pump(&w, pfd[0].revents))
      break;
    if (w.pf_err_len)
      break;
  }
  cl_free(&w);
  if (w.pf_err_len)
    return q_error_make(err, ECONNREFUSED, "%.*s", (int)w.pf_err_len, w.pf_err);
  return 0;
}
