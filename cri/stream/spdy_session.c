/* SPDY/3.1 sessions: remote command (exec/attach) and port forwarding.
 *
 * The client opens every stream (SYN_STREAM with a `streamtype` header) and
 * we answer each with SYN_REPLY. We never open streams ourselves. Flow
 * control is not enforced by the peers in use (spdystream ignores
 * WINDOW_UPDATE and never sends one), so we neither wait for window nor
 * track it: we only stop reading the socket while a process or pod socket
 * has not taken the bytes we already have. */
#include "internal.h"
#include "spdy.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_STREAMS 256
#define MAX_PAIRS 64
#define MAX_FRAME (1u << 20)
#define MAX_EARLY_STDIN (1u << 20)

enum role {
  R_NONE,
  R_ERROR,
  R_STDIN,
  R_STDOUT,
  R_STDERR,
  R_RESIZE,
  R_PF_ERROR,
  R_PF_DATA,
  R_COUNT
};

struct sstream {
  bool used;
  uint32_t id;
  enum role role;
  bool remote_fin;
  bool local_fin;
  int pair;
  uint32_t unacked; /* data taken since our last WINDOW_UPDATE for it */
};

struct pf_pair {
  bool used;
  char reqid[64];
  uint16_t port;
  int err_slot, data_slot;
  int fd;
  struct spdy_buf pend;
  size_t pend_off;
  bool client_fin;
  int64_t created_ns;
};

struct sess {
  struct stream_conn *c;
  int fd;
  struct spdy_zctx zin, zout;
  uint8_t *in;
  size_t inlen, incap;
  struct spdy_buf out;
  struct sstream st[MAX_STREAMS];
  uint32_t last_id;
  bool closed;     /* the client went away, said GOAWAY, or broke the protocol */
  uint32_t goaway; /* status for our GOAWAY */
  int64_t last_io;
  uint32_t unacked; /* session-level, likewise */

  /* remote command */
  struct stream_token *t;
  int version;
  cri_stream_proc proc;
  bool started;
  int slot[R_COUNT];
  struct spdy_buf stdin_pend;
  size_t stdin_off;
  bool stdin_fin;
  struct spdy_buf resize;

  /* port forwarding */
  struct pf_pair pairs[MAX_PAIRS];
};

static void sess_flush(struct sess *s)
{
  if (s->out.len == 0)
    return;
  size_t off = 0;
  while (off < s->out.len) {
    ssize_t n = send(s->fd, s->out.data + off, s->out.len - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      s->closed = true; /* gone, or stopped reading for STREAM_SEND_TIMEOUT_MS */
      break;
    }
    off += (size_t)n;
  }
  s->out.len = 0;
}

static void proto_error(struct sess *s, const char *why)
{
  q_debug(s->t ? s->t->target : NULL, "stream: spdy protocol error: %s", why);
  s->goaway = SPDY_GOAWAY_PROTOCOL_ERROR;
  s->closed = true;
}

static void send_rst(struct sess *s, uint32_t id, uint32_t status)
{
  spdy_build_rst(&s->out, id, status);
  sess_flush(s);
}

/* Sends data (and FIN when fin) on a slot, unless we already closed it. */
static void send_on(struct sess *s, int slot, const void *buf, size_t len, bool fin)
{
  if (slot < 0 || !s->st[slot].used || s->st[slot].local_fin)
    return;
  const uint8_t *p = buf;
  do {
    size_t n = len > STREAM_IO_CHUNK ? STREAM_IO_CHUNK : len;
    bool last = n == len;
    spdy_build_data(&s->out, s->st[slot].id, (uint8_t)(fin && last ? SPDY_FLAG_FIN : 0), p, n);
    p += n;
    len -= n;
  } while (len > 0);
  if (fin)
    s->st[slot].local_fin = true;
  sess_flush(s);
}

static int find_slot(struct sess *s, uint32_t id)
{
  for (int i = 0; i < MAX_STREAMS; i++)
    if (s->st[i].used && s->st[i].id == id)
      return i;
  return -1;
}

static void maybe_free_slot(struct sess *s, int slot)
{
  /* Remote-command slots stay put (s->slot points at them); port-forward
   * connections live long and recycle theirs once both sides are closed. */
  if (slot >= 0 && s->st[slot].used && s->st[slot].local_fin && s->st[slot].remote_fin &&
      (s->st[slot].role == R_PF_DATA || s->st[slot].role == R_PF_ERROR ||
       s->st[slot].role == R_NONE) &&
      (s->st[slot].pair < 0 || !s->pairs[s->st[slot].pair].used))
    s->st[slot].used = false;
}

/* ---- remote command ---- */

static bool rc_expected(const struct sess *s, enum role r)
{
  const struct cri_stream_opts *o = &s->t->opts;
  switch (r) {
  case R_ERROR:
    return true;
  case R_STDIN:
    return o->in;
  case R_STDOUT:
    return o->out;
  case R_STDERR:
    return o->err && !o->tty;
  case R_RESIZE:
    return o->tty && s->version >= RC_V3;
  default:
    return false;
  }
}

static bool rc_all_streams(const struct sess *s)
{
  for (int r = R_ERROR; r <= R_RESIZE; r++)
    if (rc_expected(s, (enum role)r) && s->slot[r] < 0)
      return false;
  return true;
}

/* Writes what stdin_pend holds to the process; true when all of it went. */
static bool rc_push_stdin(struct sess *s)
{
  if (!s->started)
    return s->stdin_pend.len == s->stdin_off;
  while (s->stdin_off < s->stdin_pend.len) {
    if (s->proc.stdin_fd < 0) {
      s->stdin_off = s->stdin_pend.len;
      break;
    }
    ssize_t n = write(s->proc.stdin_fd, s->stdin_pend.data + s->stdin_off,
                      s->stdin_pend.len - s->stdin_off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return false;
    if (n <= 0) { /* the process closed its stdin: drop what it will never read */
      s->stdin_off = s->stdin_pend.len;
      break;
    }
    s->stdin_off += (size_t)n;
  }
  s->stdin_pend.len = s->stdin_off = 0;
  if (s->stdin_fin)
    stream_proc_close_stdin(&s->proc);
  return true;
}

static void rc_feed_resize(struct sess *s)
{
  if (!s->started || s->resize.len == 0)
    return;
  ssize_t used = stream_resize_feed(&s->proc, (const char *)s->resize.data, s->resize.len);
  if (used < 0) {
    s->resize.len = 0;
    return;
  }
  memmove(s->resize.data, s->resize.data + used, s->resize.len - (size_t)used);
  s->resize.len -= (size_t)used;
}

static void rc_on_data(struct sess *s, int slot, const uint8_t *data, size_t len, bool fin)
{
  switch (s->st[slot].role) {
  case R_STDIN:
    if (s->stdin_pend.len + len > MAX_EARLY_STDIN && !s->started) {
      proto_error(s, "too much stdin before the streams were complete");
      return;
    }
    spdy_buf_append(&s->stdin_pend, data, len);
    if (fin)
      s->stdin_fin = true;
    rc_push_stdin(s);
    break;
  case R_RESIZE:
    if (s->resize.len + len > 65536) {
      s->resize.len = 0;
      return;
    }
    spdy_buf_append(&s->resize, data, len);
    rc_feed_resize(s);
    break;
  default:
    break; /* the client writes nothing useful on the others */
  }
}

static void rc_on_syn(struct sess *s, int slot, const char *type)
{
  static const struct {
    const char *name;
    enum role role;
  } types[] = {
      {"error", R_ERROR},   {"stdin", R_STDIN},   {"stdout", R_STDOUT},
      {"stderr", R_STDERR}, {"resize", R_RESIZE},
  };
  for (size_t i = 0; type && i < Q_ARRAY_SIZE(types); i++) {
    if (strcmp(type, types[i].name) != 0)
      continue;
    if (s->slot[types[i].role] >= 0) {
      send_rst(s, s->st[slot].id, SPDY_RST_PROTOCOL_ERROR);
      s->st[slot].local_fin = s->st[slot].remote_fin = true;
      return;
    }
    s->st[slot].role = types[i].role;
    s->slot[types[i].role] = slot;
    if (types[i].role == R_STDIN && s->st[slot].remote_fin)
      s->stdin_fin = true;
    return;
  }
  send_rst(s, s->st[slot].id, SPDY_RST_INVALID_STREAM);
  s->st[slot].local_fin = s->st[slot].remote_fin = true;
}

static void rc_on_close(struct sess *s, int slot)
{
  if (s->st[slot].role == R_STDIN) {
    s->stdin_fin = true;
    rc_push_stdin(s);
  }
}

/* ---- port forwarding ---- */

static void pf_finish(struct sess *s, int pi, const char *errmsg)
{
  struct pf_pair *p = &s->pairs[pi];
  if (errmsg)
    send_on(s, p->err_slot, errmsg, strlen(errmsg), false);
  send_on(s, p->data_slot, "", 0, true);
  send_on(s, p->err_slot, "", 0, true);
  if (p->fd >= 0)
    close(p->fd);
  spdy_buf_free(&p->pend);
  p->used = false;
  /* The streams may outlive the pair (the client has not closed its side
   * yet); they must not find the next pair that takes this index. */
  int slots[2] = {p->err_slot, p->data_slot};
  for (int i = 0; i < 2; i++) {
    if (slots[i] < 0)
      continue;
    s->st[slots[i]].pair = -1;
    maybe_free_slot(s, slots[i]);
  }
}

static void pf_start(struct sess *s, int pi)
{
  struct pf_pair *p = &s->pairs[pi];
  cri_stream_server *srv = s->c->srv;
  q_cleanup_error q_error *err = NULL;
  int r = srv->cfg.ops->portforward
              ? srv->cfg.ops->portforward(srv->cfg.backend, s->t->target, p->port, &p->fd, &err)
              : q_error_make(&err, ENOTSUP, "port forwarding is not supported");
  if (r < 0) {
    char *msg = NULL;
    if (asprintf(&msg, "error forwarding port %u to pod %s: %s", p->port, s->t->target,
                 q_error_msg(err)) < 0)
      msg = NULL;
    pf_finish(s, pi, msg ? msg : "error forwarding port");
    free(msg);
    return;
  }
  int fl = fcntl(p->fd, F_GETFL);
  if (fl >= 0)
    fcntl(p->fd, F_SETFL, fl | O_NONBLOCK);
  if (s->st[p->data_slot].remote_fin)
    p->client_fin = true;
}

static bool pf_push(struct sess *s, int pi)
{
  struct pf_pair *p = &s->pairs[pi];
  if (p->fd < 0)
    return true;
  while (p->pend_off < p->pend.len) {
    ssize_t n = send(p->fd, p->pend.data + p->pend_off, p->pend.len - p->pend_off,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == ENOTSOCK)
      n = write(p->fd, p->pend.data + p->pend_off, p->pend.len - p->pend_off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return false;
    if (n <= 0) {
      p->pend_off = p->pend.len;
      break;
    }
    p->pend_off += (size_t)n;
  }
  p->pend.len = p->pend_off = 0;
  if (p->client_fin)
    shutdown(p->fd, SHUT_WR);
  return true;
}

static void pf_on_syn(struct sess *s, int slot, const char *type, const struct spdy_headers *h)
{
  const char *reqid = spdy_headers_get(h, "requestid");
  const char *port = spdy_headers_get(h, "port");
  enum role role = type && strcmp(type, "error") == 0  ? R_PF_ERROR
                   : type && strcmp(type, "data") == 0 ? R_PF_DATA
                                                       : R_NONE;
  char *end = NULL;
  long pn = port ? strtol(port, &end, 10) : 0;
  if (role == R_NONE || !reqid || !*reqid || strlen(reqid) >= sizeof(s->pairs[0].reqid) || !port ||
      *end || pn < 1 || pn > 65535) {
    send_rst(s, s->st[slot].id, SPDY_RST_PROTOCOL_ERROR);
    s->st[slot].local_fin = s->st[slot].remote_fin = true;
    maybe_free_slot(s, slot);
    return;
  }
  int pi = -1, freep = -1;
  for (int i = 0; i < MAX_PAIRS; i++) {
    if (s->pairs[i].used && strcmp(s->pairs[i].reqid, reqid) == 0)
      pi = i;
    else if (!s->pairs[i].used && freep < 0)
      freep = i;
  }
  if (pi < 0) {
    if (freep < 0) {
      send_rst(s, s->st[slot].id, SPDY_RST_REFUSED_STREAM);
      s->st[slot].local_fin = s->st[slot].remote_fin = true;
      maybe_free_slot(s, slot);
      return;
    }
    pi = freep;
    struct pf_pair *p = &s->pairs[pi];
    memset(p, 0, sizeof(*p));
    p->used = true;
    p->fd = -1;
    p->err_slot = p->data_slot = -1;
    snprintf(p->reqid, sizeof(p->reqid), "%s", reqid);
    p->port = (uint16_t)pn;
    p->created_ns = q_mono_ns();
  }
  struct pf_pair *p = &s->pairs[pi];
  int *mine = role == R_PF_ERROR ? &p->err_slot : &p->data_slot;
  if (*mine >= 0 || p->port != pn) {
    send_rst(s, s->st[slot].id, SPDY_RST_PROTOCOL_ERROR);
    s->st[slot].local_fin = s->st[slot].remote_fin = true;
    maybe_free_slot(s, slot);
    return;
  }
  *mine = slot;
  s->st[slot].role = role;
  s->st[slot].pair = pi;
  if (p->err_slot >= 0 && p->data_slot >= 0)
    pf_start(s, pi);
}

static void pf_on_data(struct sess *s, int slot, const uint8_t *data, size_t len, bool fin)
{
  int pi = s->st[slot].pair;
  if (s->st[slot].role != R_PF_DATA || pi < 0 || !s->pairs[pi].used)
    return;
  struct pf_pair *p = &s->pairs[pi];
  spdy_buf_append(&p->pend, data, len);
  if (fin)
    p->client_fin = true;
  if (p->fd >= 0)
    pf_push(s, pi);
}

static void pf_on_close(struct sess *s, int slot, bool reset)
{
  int pi = s->st[slot].pair;
  if (pi < 0 || !s->pairs[pi].used) {
    maybe_free_slot(s, slot);
    return;
  }
  if (s->st[slot].role == R_PF_DATA) {
    if (reset) {
      pf_finish(s, pi, NULL);
      return;
    }
    s->pairs[pi].client_fin = true;
    pf_push(s, pi);
  }
}

/* ---- frames ---- */

/* spdystream neither enforces nor sends flow control, but a strict SPDY/3.1
 * peer stops at 64 KiB per stream and per session without WINDOW_UPDATE.
 * We pace what we accept by not reading the socket, so every byte taken is
 * given back at once, in 32 KiB steps. */
#define WINDOW_ACK 32768

static void ack_data(struct sess *s, int slot, size_t len)
{
  if (len == 0)
    return;
  s->unacked += (uint32_t)len;
  if (s->unacked >= WINDOW_ACK) {
    spdy_build_window_update(&s->out, 0, s->unacked);
    s->unacked = 0;
  }
  if (slot >= 0 && !s->st[slot].remote_fin) {
    s->st[slot].unacked += (uint32_t)len;
    if (s->st[slot].unacked >= WINDOW_ACK) {
      spdy_build_window_update(&s->out, s->st[slot].id, s->st[slot].unacked);
      s->st[slot].unacked = 0;
    }
  }
  sess_flush(s);
}

/* True while some sink has not taken what it was given: frames after that
 * wait in the input buffer. */
static bool blocked(struct sess *s)
{
  if (s->t->kind != STREAM_PORTFORWARD)
    return s->started && s->stdin_off < s->stdin_pend.len;
  for (int i = 0; i < MAX_PAIRS; i++)
    if (s->pairs[i].used && s->pairs[i].fd >= 0 && s->pairs[i].pend_off < s->pairs[i].pend.len)
      return true;
  return false;
}

static void on_frame(struct sess *s, const struct spdy_frame *f)
{
  bool pf = s->t->kind == STREAM_PORTFORWARD;
  struct spdy_headers h = {0};
  if (!f->control) {
    int slot = find_slot(s, f->stream_id);
    ack_data(s, slot, f->payload_len);
    if (slot < 0) {
      send_rst(s, f->stream_id, SPDY_RST_INVALID_STREAM);
      return;
    }
    if (s->st[slot].remote_fin) {
      send_rst(s, f->stream_id, SPDY_RST_STREAM_ALREADY_CLOSED);
      return;
    }
    bool fin = f->flags & SPDY_FLAG_FIN;
    if (fin)
      s->st[slot].remote_fin = true;
    if (pf)
      pf_on_data(s, slot, f->payload, f->payload_len, fin);
    else
      rc_on_data(s, slot, f->payload, f->payload_len, fin);
    if (fin) {
      if (pf)
        pf_on_close(s, slot, false);
      else
        rc_on_close(s, slot);
    }
    return;
  }
  switch (f->type) {
  case SPDY_SYN_STREAM: {
    if (spdy_headers_decode(&s->zin, f->payload, f->payload_len, &h) < 0) {
      proto_error(s, "bad header block");
      return;
    }
    if ((f->stream_id & 1) == 0 || f->stream_id <= s->last_id) {
      spdy_headers_free(&h);
      proto_error(s, "stream id out of order");
      return;
    }
    s->last_id = f->stream_id;
    int slot = -1;
    for (int i = 0; i < MAX_STREAMS && slot < 0; i++)
      if (!s->st[i].used)
        slot = i;
    if (slot < 0) {
      spdy_headers_free(&h);
      send_rst(s, f->stream_id, SPDY_RST_REFUSED_STREAM);
      return;
    }
    s->st[slot] = (struct sstream){.used = true,
                                   .id = f->stream_id,
                                   .role = R_NONE,
                                   .pair = -1,
                                   .remote_fin = f->flags & SPDY_FLAG_FIN};
    spdy_build_syn_reply(&s->out, &s->zout, f->stream_id, 0, NULL, NULL, 0);
    sess_flush(s);
    const char *type = spdy_headers_get(&h, "streamtype");
    if (pf)
      pf_on_syn(s, slot, type, &h);
    else
      rc_on_syn(s, slot, type);
    spdy_headers_free(&h);
    break;
  }
  case SPDY_SYN_REPLY:
  case SPDY_HEADERS:
    /* Nothing to do with them, but the inflate context must see every block. */
    if (spdy_headers_decode(&s->zin, f->payload, f->payload_len, &h) < 0)
      proto_error(s, "bad header block");
    spdy_headers_free(&h);
    break;
  case SPDY_RST_STREAM: {
    int slot = find_slot(s, f->stream_id);
    if (slot < 0)
      return;
    bool was_open = !s->st[slot].remote_fin;
    s->st[slot].remote_fin = s->st[slot].local_fin = true;
    if (pf)
      pf_on_close(s, slot, true);
    else if (was_open)
      rc_on_close(s, slot);
    break;
  }
  case SPDY_PING:
    if (f->value & 1) { /* odd ids are the client's: echo; even ones answer ours */
      spdy_build_ping(&s->out, f->value);
      sess_flush(s);
    }
    break;
  case SPDY_GOAWAY:
    s->closed = true;
    break;
  default:
    break; /* SETTINGS, WINDOW_UPDATE and unknown control frames */
  }
}

/* Reads what the socket has and handles complete frames. */
static void sess_read(struct sess *s)
{
  if (s->incap - s->inlen < 16384) {
    size_t cap = s->incap ? s->incap * 2 : 65536;
    if (cap > MAX_FRAME + SPDY_HEADER_LEN + 65536)
      cap = MAX_FRAME + SPDY_HEADER_LEN + 65536;
    if (cap > s->incap) {
      uint8_t *n = realloc(s->in, cap);
      if (!n) {
        s->closed = true;
        return;
      }
      s->in = n;
      s->incap = cap;
    }
  }
  if (s->incap > s->inlen) {
    ssize_t n = recv(s->fd, s->in + s->inlen, s->incap - s->inlen, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      s->closed = true;
      return;
    }
    if (n > 0) {
      s->inlen += (size_t)n;
      s->last_io = q_mono_ns();
    }
  }
}

static void sess_process(struct sess *s)
{
  size_t off = 0;
  while (!s->closed && !blocked(s)) {
    struct spdy_frame f;
    ssize_t n = spdy_parse(s->in + off, s->inlen - off, MAX_FRAME, &f);
    if (n < 0) {
      proto_error(s, n == -EMSGSIZE ? "frame too large" : "malformed frame");
      break;
    }
    if (n == 0)
      break;
    off += (size_t)n;
    on_frame(s, &f);
  }
  if (off) {
    memmove(s->in, s->in + off, s->inlen - off);
    s->inlen -= off;
  }
}

static int sess_init(struct sess *s, struct stream_conn *c, struct stream_token *t)
{
  memset(s, 0, sizeof(*s));
  s->c = c;
  s->fd = c->fd;
  s->t = t;
  s->last_io = q_mono_ns();
  for (int r = 0; r < R_COUNT; r++)
    s->slot[r] = -1;
  s->proc.stdin_fd = s->proc.stdout_fd = s->proc.stderr_fd = s->proc.exit_fd = -1;
  if (spdy_zctx_init(&s->zin, false) < 0)
    return -ENOMEM;
  if (spdy_zctx_init(&s->zout, true) < 0) {
    spdy_zctx_free(&s->zin);
    return -ENOMEM;
  }
  if (c->extra_len) {
    s->in = malloc(65536);
    if (!s->in)
      return -ENOMEM;
    s->incap = 65536;
    memcpy(s->in, c->extra, c->extra_len);
    s->inlen = c->extra_len;
  }
  return 0;
}

static void sess_end(struct sess *s, bool linger)
{
  spdy_build_goaway(&s->out, s->last_id, s->goaway);
  sess_flush(s);
  if (linger)
    stream_linger_close(s->fd);
  spdy_zctx_free(&s->zin);
  spdy_zctx_free(&s->zout);
  spdy_buf_free(&s->out);
  spdy_buf_free(&s->stdin_pend);
  spdy_buf_free(&s->resize);
  free(s->in);
}

static int idle_left_ms(struct sess *s)
{
  int64_t left =
      (s->last_io + (int64_t)s->c->srv->cfg.idle_timeout_ms * 1000000 - q_mono_ns()) / 1000000;
  return left < 0 ? 0 : left > STREAM_POLL_MS ? STREAM_POLL_MS : (int)left;
}

/* ---- remote command session ---- */

struct out_ctx {
  struct sess *s;
  int slot;
};

static int out_fn(void *arg, const void *buf, size_t len)
{
  struct out_ctx *o = arg;
  send_on(o->s, o->slot, buf, len, false);
  return o->s->closed ? -EPIPE : 0;
}

void stream_spdy_remotecommand(struct stream_conn *c, struct stream_token *t, int version)
{
  struct sess *s = calloc(1, sizeof(*s));
  if (!s || sess_init(s, c, t) < 0) {
    free(s);
    return;
  }
  s->version = version;
  const char *id = t->target;

  /* 1. Wait until the client has opened every stream it should. */
  int64_t deadline = q_mono_ns() + (int64_t)STREAM_CREATION_TIMEOUT_MS * 1000000;
  sess_process(s);
  while (!s->closed && !rc_all_streams(s)) {
    int left = (int)((deadline - q_mono_ns()) / 1000000);
    if (left <= 0) {
      q_warn(id, "stream: timed out waiting for the client to create streams");
      break;
    }
    struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
    if (poll(&pfd, 1, left) > 0) {
      sess_read(s);
      sess_process(s);
    }
  }
  if (s->closed || !rc_all_streams(s)) {
    sess_end(s, false);
    free(s);
    return;
  }

  /* 2. Start the process. */
  q_cleanup_error q_error *err = NULL;
  if (stream_proc_start(c->srv, t, &s->proc, &err) < 0) {
    q_warn(id, "stream: %s failed: %s", t->kind == STREAM_EXEC ? "exec" : "attach",
           q_error_msg(err));
    char *msg = stream_status_message(version, t, -1, q_error_msg(err));
    if (msg)
      send_on(s, s->slot[R_ERROR], msg, strlen(msg), false);
    free(msg);
    send_on(s, s->slot[R_ERROR], "", 0, true);
    send_on(s, s->slot[R_STDOUT], "", 0, true);
    send_on(s, s->slot[R_STDERR], "", 0, true);
    sess_end(s, true);
    free(s);
    return;
  }
  s->started = true;
  rc_push_stdin(s);
  rc_feed_resize(s);
  if (!s->closed)
    sess_process(s); /* frames that waited behind early stdin */

  /* 3. Relay until the process exits or the client goes away. */
  bool exited = false;
  int code = -1, wait_err = 0;
  struct out_ctx oo = {s, s->slot[R_STDOUT]}, oe = {s, s->slot[R_STDERR]};
  while (!s->closed && !exited && !stream_stopping(c->srv)) {
    struct pollfd pfd[5];
    int n = 0, i_sock = -1, i_in = -1, i_out = -1, i_err = -1, i_exit;
    bool blk = blocked(s);
    if (!blk) {
      i_sock = n;
      pfd[n++] = (struct pollfd){.fd = s->fd, .events = POLLIN};
    } else {
      i_in = n;
      pfd[n++] = (struct pollfd){.fd = s->proc.stdin_fd, .events = POLLOUT};
    }
    if (s->proc.stdout_fd >= 0) {
      i_out = n;
      pfd[n++] = (struct pollfd){.fd = s->proc.stdout_fd, .events = POLLIN};
    }
    if (s->proc.stderr_fd >= 0) {
      i_err = n;
      pfd[n++] = (struct pollfd){.fd = s->proc.stderr_fd, .events = POLLIN};
    }
    i_exit = n;
    pfd[n++] = (struct pollfd){.fd = s->proc.exit_fd, .events = POLLIN};
    int pr = poll(pfd, (nfds_t)n, idle_left_ms(s));
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr == 0 && idle_left_ms(s) == 0) {
      q_info(id, "stream: session idle for too long");
      break;
    }
    if (i_in >= 0 && pfd[i_in].revents) {
      rc_push_stdin(s);
      sess_process(s);
    }
    if (i_sock >= 0 && pfd[i_sock].revents) {
      sess_read(s);
      sess_process(s);
    }
    if (i_out >= 0 && pfd[i_out].revents) {
      s->last_io = q_mono_ns();
      if (stream_drain_fd(s->proc.stdout_fd, out_fn, &oo)) {
        send_on(s, s->slot[R_STDOUT], "", 0, true);
        if (s->proc.stdin_fd == s->proc.stdout_fd)
          s->proc.stdin_fd = -1;
        close(s->proc.stdout_fd);
        s->proc.stdout_fd = -1;
      }
    }
    if (i_err >= 0 && pfd[i_err].revents) {
      s->last_io = q_mono_ns();
      if (stream_drain_fd(s->proc.stderr_fd, out_fn, &oe)) {
        send_on(s, s->slot[R_STDERR], "", 0, true);
        close(s->proc.stderr_fd);
        s->proc.stderr_fd = -1;
      }
    }
    if (pfd[i_exit].revents)
      exited = stream_proc_wait(&s->proc, &code, &wait_err);
  }

  /* 4. After an exit: what the process wrote, its status, GOAWAY. */
  if (exited && !s->closed) {
    if (s->proc.stdout_fd >= 0)
      stream_drain_fd(s->proc.stdout_fd, out_fn, &oo);
    if (s->proc.stderr_fd >= 0)
      stream_drain_fd(s->proc.stderr_fd, out_fn, &oe);
    send_on(s, s->slot[R_STDOUT], "", 0, true);
    send_on(s, s->slot[R_STDERR], "", 0, true);
    /* Attach reports how the session went, not the container's code. */
    char why[128];
    snprintf(why, sizeof(why), "cannot get the exit status: %s", strerror(-wait_err));
    char *msg = stream_status_message(version, t, t->kind == STREAM_ATTACH ? 0 : code,
                                      wait_err ? why : NULL);
    if (msg)
      send_on(s, s->slot[R_ERROR], msg, strlen(msg), false);
    free(msg);
    send_on(s, s->slot[R_ERROR], "", 0, true);
    q_debug(id, "stream: process exited with %d", code);
  }
  stream_proc_close_stdio(&s->proc);
  s->proc.ops->release(&s->proc, exited && !wait_err);
  sess_end(s, exited);
  free(s);
}

/* ---- port-forward session ---- */

struct pf_out {
  struct sess *s;
  int pi;
};

static int pf_out_fn(void *arg, const void *buf, size_t len)
{
  struct pf_out *o = arg;
  send_on(o->s, o->s->pairs[o->pi].data_slot, buf, len, false);
  return o->s->closed ? -EPIPE : 0;
}

void stream_spdy_portforward(struct stream_conn *c, struct stream_token *t)
{
  struct sess *s = calloc(1, sizeof(*s));
  if (!s || sess_init(s, c, t) < 0) {
    free(s);
    return;
  }
  sess_process(s);
  while (!s->closed && !stream_stopping(c->srv)) {
    struct pollfd pfd[MAX_PAIRS + 1];
    int map[MAX_PAIRS + 1];
    int n = 0;
    bool blk = blocked(s);
    if (!blk) {
      map[n] = -1;
      pfd[n++] = (struct pollfd){.fd = s->fd, .events = POLLIN};
    }
    for (int i = 0; i < MAX_PAIRS; i++) {
      struct pf_pair *p = &s->pairs[i];
      if (!p->used || p->fd < 0)
        continue;
      short ev = POLLIN;
      if (p->pend_off < p->pend.len)
        ev |= POLLOUT;
      map[n] = i;
      pfd[n++] = (struct pollfd){.fd = p->fd, .events = ev};
    }
    int pr = poll(pfd, (nfds_t)n, idle_left_ms(s));
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr == 0 && idle_left_ms(s) == 0)
      break;
    /* A pair whose other half never comes is given up, like kubelet does. */
    int64_t now = q_mono_ns();
    for (int i = 0; i < MAX_PAIRS; i++)
      if (s->pairs[i].used && (s->pairs[i].err_slot < 0 || s->pairs[i].data_slot < 0) &&
          now - s->pairs[i].created_ns > (int64_t)STREAM_CREATION_TIMEOUT_MS * 1000000)
        pf_finish(s, i, "timed out waiting for the other stream of the port-forward pair");
    for (int k = 0; k < n && !s->closed; k++) {
      if (!pfd[k].revents)
        continue;
      if (map[k] < 0) {
        sess_read(s);
        sess_process(s);
        continue;
      }
      int pi = map[k];
      struct pf_pair *p = &s->pairs[pi];
      if (!p->used || p->fd != pfd[k].fd)
        continue;
      if (pfd[k].revents & POLLOUT) {
        if (pf_push(s, pi))
          sess_process(s);
      }
      if (!p->used || p->fd < 0)
        continue;
      if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) {
        s->last_io = q_mono_ns();
        struct pf_out o = {s, pi};
        if (stream_drain_fd(p->fd, pf_out_fn, &o))
          pf_finish(s, pi, NULL);
      }
    }
  }
  for (int i = 0; i < MAX_PAIRS; i++)
    if (s->pairs[i].used) {
      if (s->pairs[i].fd >= 0)
        close(s->pairs[i].fd);
      spdy_buf_free(&s->pairs[i].pend);
    }
  sess_end(s, false);
  free(s);
}
