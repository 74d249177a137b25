/* The CRI gRPC server over grpc C core.
 *
 * One completion queue shared by a pool of worker threads: any free worker
 * picks up the next event, so a handler that blocks (a pull, a VM start)
 * holds one thread and never stalls the calls behind it. Calls are
 * requested generically (grpc_server_request_call) and dispatched by method
 * path through a table built from the protobuf-c service descriptors.
 *
 * Each call walks three stages, each one completion-queue event:
 *   REQUESTED -> (method known) RECV_MESSAGE -> RECEIVED -> handler ->
 *   SEND_INITIAL_METADATA + SEND_MESSAGE + SEND_STATUS + RECV_CLOSE -> SENT.
 * An unknown method skips straight to the status batch (UNIMPLEMENTED).
 */
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "server.h"

#define CRI_MAX_RECV_BYTES (16 << 20) /* kubelet's own limit */
#define CRI_MAX_SEND_BYTES (64 << 20)
#define CRI_PENDING_REQUESTS 32 /* calls requested ahead of arrival */

struct cri_method {
  char path[96]; /* "/runtime.v1.RuntimeService/Version" */
  char name[80]; /* "RuntimeService/Version" */
  const ProtobufCMessageDescriptor *in, *out;
  cri_handler_fn fn;
  bool streaming;
};

struct cri_server {
  const struct cri_config *cfg;
  struct cri_state *state;
  void *image_ctx;
  struct cri_pods *pods_ctx;
  struct cri_method *methods;
  size_t n_methods;

  grpc_server *server;
  grpc_completion_queue *cq;
  pthread_t *threads;
  unsigned n_threads;
  char *sock_path;
  atomic_bool shutting_down;
  bool started, stopped;

  int shutdown_tag; /* its address tags the shutdown event */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool shutdown_done;
};

struct arena_block {
  struct arena_block *next;
  size_t used, cap;
  max_align_t data[];
};

struct deferred {
  struct deferred *next;
  void (*fn)(void *);
  void *p;
};

enum call_stage { CALL_REQUESTED, CALL_RECEIVED, CALL_SENT };

struct cri_call {
  struct cri_server *srv;
  enum call_stage stage;
  grpc_call *call;
  grpc_call_details details;
  grpc_metadata_array md;
  grpc_byte_buffer *recv_buf, *send_buf;
  int cancelled;
  const struct cri_method *method;
  char *errmsg;
  grpc_slice status_details;
  bool has_status_details;
  int64_t start_ns;
  struct arena_block *arena;
  struct deferred *defers;
};

/* RPCs that stream responses: the unary handler contract does not fit them,
 * so they stay UNIMPLEMENTED until a streaming contract exists. */
static const char *const streaming_methods[] = {
    "StreamPodSandboxes",    "StreamContainers",   "StreamContainerStats",
    "StreamPodSandboxStats", "GetContainerEvents", "StreamPodSandboxMetrics",
    "StreamImages",
};

static const char *const status_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

static const char *status_name(grpc_status_code c)
{
  return (unsigned)c < Q_ARRAY_SIZE(status_names) ? status_names[c] : "?";
}

/* ---- per-call arena ---- */

void *cri_call_alloc(struct cri_call *c, size_t size)
{
  size = (size + 15) & ~(size_t)15;
  struct arena_block *b = c->arena;
  if (!b || b->cap - b->used < size) {
    size_t cap = size > 4000 ? size : 4000;
    b = malloc(sizeof(*b) + cap);
    if (!b)
      return NULL;
    b->cap = cap;
    b->used = 0;
    b->next = c->arena;
    c->arena = b;
  }
  void *p = (char *)b->data + b->used;
  b->used += size;
  memset(p, 0, size);
  return p;
}

char *cri_call_strdup(struct cri_call *c, const char *s)
{
  size_t n = strlen(s ? s : "") + 1;
  char *d = cri_call_alloc(c, n);
  if (d)
    memcpy(d, s ? s : "", n);
  return d;
}

char *cri_call_printf(struct cri_call *c, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return NULL;
  char *d = cri_call_alloc(c, (size_t)n + 1);
  if (d) {
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  return d;
}

void *cri_call_new_msg(struct cri_call *c, const ProtobufCMessageDescriptor *d)
{
  void *m = cri_call_alloc(c, d->sizeof_message);
  if (m)
    d->message_init(m);
  return m;
}

int cri_call_defer(struct cri_call *c, void (*fn)(void *), void *p)
{
  struct deferred *d = malloc(sizeof(*d));
  if (!d)
    return -ENOMEM;
  d->fn = fn;
  d->p = p;
  d->next = c->defers;
  c->defers = d;
  return 0;
}

grpc_status_code cri_call_error(struct cri_call *c, grpc_status_code code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  free(c->errmsg);
  if (vasprintf(&c->errmsg, fmt, ap) < 0)
    c->errmsg = NULL;
  va_end(ap);
  return code;
}

struct cri_server *cri_call_server(const struct cri_call *c)
{
  return c->srv;
}
const char *cri_call_method(const struct cri_call *c)
{
  return c->method ? c->method->name : "unknown method";
}

static void call_free(struct cri_call *c)
{
  while (c->defers) {
    struct deferred *d = c->defers;
    c->defers = d->next;
    d->fn(d->p);
    free(d);
  }
  while (c->arena) {
    struct arena_block *b = c->arena;
    c->arena = b->next;
    free(b);
  }
  if (c->recv_buf)
    grpc_byte_buffer_destroy(c->recv_buf);
  if (c->send_buf)
    grpc_byte_buffer_destroy(c->send_buf);
  if (c->has_status_details)
    grpc_slice_unref(c->status_details);
  if (c->call)
    grpc_call_unref(c->call);
  grpc_call_details_destroy(&c->details);
  grpc_metadata_array_destroy(&c->md);
  free(c->errmsg);
  free(c);
}

/* ---- method table ---- */

static int table_add_service(struct cri_server *srv, const ProtobufCServiceDescriptor *sd)
{
  struct cri_method *nm = realloc(srv->methods, (srv->n_methods + sd->n_methods) * sizeof(*nm));
  if (!nm)
    return -ENOMEM;
  srv->methods = nm;
  for (unsigned i = 0; i < sd->n_methods; i++) {
    struct cri_method *m = &srv->methods[srv->n_methods++];
    memset(m, 0, sizeof(*m));
    /* sd->name is "runtime.v1.RuntimeService". */
    int n = snprintf(m->path, sizeof(m->path), "/%s/%s", sd->name, sd->methods[i].name);
    if (n < 0 || (size_t)n >= sizeof(m->path))
      return -ENAMETOOLONG;
    snprintf(m->name, sizeof(m->name), "%s", m->path + 1 + strlen(sd->package) + 1);
    m->in = sd->methods[i].input;
    m->out = sd->methods[i].output;
    for (size_t k = 0; k < Q_ARRAY_SIZE(streaming_methods); k++)
      if (strcmp(sd->methods[i].name, streaming_methods[k]) == 0)
        m->streaming = true;
  }
  return 0;
}

static const struct cri_method *table_find(const struct cri_server *srv, grpc_slice path)
{
  size_t len = GRPC_SLICE_LENGTH(path);
  const void *p = GRPC_SLICE_START_PTR(path);
  for (size_t i = 0; i < srv->n_methods; i++)
    if (strlen(srv->methods[i].path) == len && memcmp(srv->methods[i].path, p, len) == 0)
      return &srv->methods[i];
  return NULL;
}

int cri_server_set_handler(struct cri_server *srv, const char *service, const char *method,
                           cri_handler_fn fn)
{
  char name[96];
  snprintf(name, sizeof(name), "%s/%s", service, method);
  for (size_t i = 0; i < srv->n_methods; i++)
    if (strcmp(srv->methods[i].name, name) == 0) {
      if (srv->methods[i].streaming)
        return -EOPNOTSUPP;
      srv->methods[i].fn = fn;
      return 0;
    }
  return -ENOENT;
}

size_t cri_server_method_count(const struct cri_server *srv)
{
  return srv->n_methods;
}

const char *cri_server_method_path(const struct cri_server *srv, size_t i, bool *implemented)
{
  if (i >= srv->n_methods)
    return NULL;
  if (implemented)
    *implemented = srv->methods[i].fn != NULL;
  return srv->methods[i].path;
}

const struct cri_config *cri_server_config(const struct cri_server *srv)
{
  return srv->cfg;
}
struct cri_state *cri_server_state(const struct cri_server *srv)
{
  return srv->state;
}
void cri_server_set_image_ctx(struct cri_server *srv, void *ctx)
{
  srv->image_ctx = ctx;
}
void *cri_server_image_ctx(const struct cri_server *srv)
{
  return srv->image_ctx;
}
void cri_server_set_pods_ctx(struct cri_server *srv, struct cri_pods *pods)
{
  srv->pods_ctx = pods;
}
struct cri_pods *cri_server_pods_ctx(const struct cri_server *srv)
{
  return srv->pods_ctx;
}

/* ---- the call state machine ---- */

static void request_call(struct cri_server *srv)
{
  if (atomic_load(&srv->shutting_down))
    return;
  struct cri_call *c = calloc(1, sizeof(*c));
  if (!c) {
    q_error_log(NULL, "out of memory requesting a call");
    return;
  }
  c->srv = srv;
  c->stage = CALL_REQUESTED;
  grpc_call_details_init(&c->details);
  grpc_metadata_array_init(&c->md);
  grpc_call_error e =
      grpc_server_request_call(srv->server, &c->call, &c->details, &c->md, srv->cq, srv->cq, c);
  if (e != GRPC_CALL_OK) {
    if (!atomic_load(&srv->shutting_down))
      q_error_log(NULL, "grpc_server_request_call failed: %d", (int)e);
    call_free(c);
  }
}

/* Sends the final batch: the response (only with OK), the status and the
 * close. The call is freed when that batch completes. */
static void send_reply(struct cri_call *c, grpc_status_code code)
{
  grpc_op ops[4];
  memset(ops, 0, sizeof(ops));
  size_t n = 0;
  ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[n++].data.send_initial_metadata.count = 0;
  if (code == GRPC_STATUS_OK && c->send_buf) {
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = c->send_buf;
  }
  if (code != GRPC_STATUS_OK) {
    c->status_details = grpc_slice_from_copied_string(c->errmsg ? c->errmsg : status_name(code));
    c->has_status_details = true;
  }
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.trailing_metadata_count = 0;
  ops[n].data.send_status_from_server.status = code;
  ops[n++].data.send_status_from_server.status_details =
      c->has_status_details ? &c->status_details : NULL;
  ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
  c->stage = CALL_SENT;
  if (q_log_enabled(Q_LOG_DEBUG))
    q_debug(NULL, "rpc %s -> %s%s%s (%.3f ms)", cri_call_method(c), status_name(code),
            c->errmsg ? ": " : "", c->errmsg ? c->errmsg : "",
            (double)(q_mono_ns() - c->start_ns) / 1e6);
  grpc_call_error e = grpc_call_start_batch(c->call, ops, n, c, NULL);
  if (e != GRPC_CALL_OK) {
    q_warn(NULL, "rpc %s: cannot send reply: %d", cri_call_method(c), (int)e);
    call_free(c);
  }
}

static grpc_status_code run_handler(struct cri_call *c)
{
  const struct cri_method *m = c->method;
  if (!c->recv_buf)
    return cri_call_error(c, GRPC_STATUS_INVALID_ARGUMENT, "%s: no request message", m->name);
  grpc_byte_buffer_reader reader;
  if (!grpc_byte_buffer_reader_init(&reader, c->recv_buf))
    return cri_call_error(c, GRPC_STATUS_INVALID_ARGUMENT, "%s: cannot read the request message",
                          m->name);
  grpc_slice in = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  ProtobufCMessage *req =
      protobuf_c_message_unpack(m->in, NULL, GRPC_SLICE_LENGTH(in), GRPC_SLICE_START_PTR(in));
  grpc_slice_unref(in);
  if (!req)
    return cri_call_error(c, GRPC_STATUS_INVALID_ARGUMENT, "%s: malformed %s message", m->name,
                          m->in->name);

  ProtobufCMessage *resp = NULL;
  grpc_status_code code = m->fn(c, req, &resp);
  protobuf_c_message_free_unpacked(req, NULL);
  if (code != GRPC_STATUS_OK)
    return code;
  if (!resp && !(resp = cri_call_new_msg(c, m->out)))
    return cri_call_error(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "%s: out of memory", m->name);
  if (resp->descriptor != m->out)
    return cri_call_error(c, GRPC_STATUS_INTERNAL, "%s: handler answered %s, want %s", m->name,
                          resp->descriptor->name, m->out->name);
  size_t len = protobuf_c_message_get_packed_size(resp);
  if (len > CRI_MAX_SEND_BYTES)
    return cri_call_error(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "%s: response of %zu bytes too large",
                          m->name, len);
  grpc_slice out = grpc_slice_malloc(len);
  protobuf_c_message_pack(resp, GRPC_SLICE_START_PTR(out));
  c->send_buf = grpc_raw_byte_buffer_create(&out, 1);
  grpc_slice_unref(out);
  return GRPC_STATUS_OK;
}

static void on_requested(struct cri_call *c, bool ok)
{
  struct cri_server *srv = c->srv;
  if (!ok) { /* the server is shutting down */
    call_free(c);
    return;
  }
  request_call(srv); /* keep the number of requested calls constant */
  c->start_ns = q_mono_ns();
  c->method = table_find(srv, c->details.method);
  if (!c->method || !c->method->fn) {
    char path[128];
    size_t len = GRPC_SLICE_LENGTH(c->details.method);
    if (len >= sizeof(path))
      len = sizeof(path) - 1;
    memcpy(path, GRPC_SLICE_START_PTR(c->details.method), len);
    path[len] = '\0';
    for (size_t i = 0; i < len; i++) /* it goes back to the client */
      if (path[i] < 0x20 || path[i] > 0x7e)
        path[i] = '?';
    if (c->method)
      cri_call_error(c, GRPC_STATUS_UNIMPLEMENTED, "%s is not implemented by quark yet",
                     c->method->name);
    else
      cri_call_error(c, GRPC_STATUS_UNIMPLEMENTED, "unknown method %s", path);
    send_reply(c, GRPC_STATUS_UNIMPLEMENTED);
    return;
  }
  grpc_op op;
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &c->recv_buf;
  c->stage = CALL_RECEIVED;
  if (grpc_call_start_batch(c->call, &op, 1, c, NULL) != GRPC_CALL_OK)
    call_free(c);
}

static void on_received(struct cri_call *c, bool ok)
{
  grpc_status_code code;
  if (!ok)
    code = cri_call_error(c, GRPC_STATUS_CANCELLED, "%s: request not received", c->method->name);
  else
    code = run_handler(c);
  send_reply(c, code);
}

static void *worker_main(void *arg)
{
  struct cri_server *srv = arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
      break;
    if (ev.type != GRPC_OP_COMPLETE)
      continue;
    if (ev.tag == &srv->shutdown_tag) {
      pthread_mutex_lock(&srv->lock);
      srv->shutdown_done = true;
      pthread_cond_broadcast(&srv->cond);
      pthread_mutex_unlock(&srv->lock);
      continue;
    }
    struct cri_call *c = ev.tag;
    switch (c->stage) {
    case CALL_REQUESTED:
      on_requested(c, ev.success);
      break;
    case CALL_RECEIVED:
      on_received(c, ev.success);
      break;
    case CALL_SENT:
      call_free(c);
      break;
    }
  }
  return NULL;
}

/* ---- life cycle ---- */

int cri_server_new(const struct cri_config *cfg, struct cri_state *state, struct cri_server **out,
                   q_error **err)
{
  struct cri_server *srv = calloc(1, sizeof(*srv));
  if (!srv)
    return q_error_make(err, ENOMEM, "cri server");
  srv->cfg = cfg;
  srv->state = state;
  pthread_mutex_init(&srv->lock, NULL);
  pthread_cond_init(&srv->cond, NULL);
  int r = table_add_service(srv, &runtime__v1__runtime_service__descriptor);
  if (r == 0)
    r = table_add_service(srv, &runtime__v1__image_service__descriptor);
  if (r < 0) {
    cri_server_free(srv);
    return q_error_make(err, -r, "cri method table");
  }
  *out = srv;
  return 0;
}

/* A socket file that nobody answers on is left over from a crash: replace
 * it. One that answers belongs to a running quarkd: refuse to steal it. */
static int prepare_socket_path(const char *path, q_error **err)
{
  q_cleanup_free char *dir = strdup(path);
  if (!dir)
    return q_error_make(err, ENOMEM, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = '\0';
    int r = q_mkdir_p(dir, 0755, err);
    if (r < 0)
      return r;
  }
  struct stat sb;
  if (lstat(path, &sb) < 0)
    return errno == ENOENT ? 0 : q_error_make(err, errno, "stat %s", path);
  if (!S_ISSOCK(sb.st_mode))
    return q_error_make(err, EEXIST, "%s exists and is not a socket", path);
  q_cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return q_error_make(err, errno, "socket");
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
    return q_error_make(err, EADDRINUSE, "%s is in use by a running server", path);
  q_info(NULL, "replacing stale socket %s", path);
  if (unlink(path) < 0 && errno != ENOENT)
    return q_error_make(err, errno, "remove stale socket %s", path);
  return 0;
}

int cri_server_start(struct cri_server *srv, unsigned workers, q_error **err)
{
  const char *path = cri_config_socket_path(srv->cfg->socket);
  if (!path)
    return q_error_make(err, EINVAL, "Socket '%s' is not unix:///absolute/path", srv->cfg->socket);
  int r = prepare_socket_path(path, err);
  if (r < 0)
    return r;
  if (!(srv->sock_path = strdup(path)))
    return q_error_make(err, ENOMEM, "%s", path);

  grpc_arg args[2];
  memset(args, 0, sizeof(args));
  args[0].type = GRPC_ARG_INTEGER;
  args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[0].value.integer = CRI_MAX_RECV_BYTES;
  args[1].type = GRPC_ARG_INTEGER;
  args[1].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
  args[1].value.integer = CRI_MAX_SEND_BYTES;
  grpc_channel_args cargs = {.num_args = 2, .args = args};
  srv->server = grpc_server_create(&cargs, NULL);
  srv->cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(srv->server, srv->cq, NULL);

  char addr[128];
  snprintf(addr, sizeof(addr), "unix:%s", path);
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  /* The socket is created by bind(2) under the process umask: make it 0660
   * from the start rather than fixing it after others could connect. */
  mode_t old = umask(0117);
  int port = grpc_server_add_http2_port(srv->server, addr, creds);
  umask(old);
  grpc_server_credentials_release(creds);
  if (port == 0)
    return q_error_make(err, EADDRNOTAVAIL, "cannot listen on %s", addr);
  if (chmod(path, 0660) < 0)
    return q_error_make(err, errno, "chmod %s", path);

  grpc_server_start(srv->server);
  srv->started = true;
  for (int i = 0; i < CRI_PENDING_REQUESTS; i++)
    request_call(srv);

  if (workers == 0)
    workers = 1;
  srv->threads = calloc(workers, sizeof(pthread_t));
  if (!srv->threads)
    return q_error_make(err, ENOMEM, "worker threads");
  for (unsigned i = 0; i < workers; i++) {
    r = pthread_create(&srv->threads[i], NULL, worker_main, srv);
    if (r != 0)
      return q_error_make(err, r, "start worker thread");
    srv->n_threads++;
  }
  q_info(NULL, "serving CRI on %s with %u workers", srv->cfg->socket, workers);
  return 0;
}

void cri_server_stop(struct cri_server *srv, unsigned grace_ms)
{
  if (!srv || srv->stopped)
    return;
  srv->stopped = true;
  atomic_store(&srv->shutting_down, true);
  if (srv->server) {
    grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += grace_ms / 1000;
    until.tv_nsec += (long)(grace_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&srv->lock);
    bool waited = srv->n_threads > 0;
    while (waited && !srv->shutdown_done)
      if (pthread_cond_timedwait(&srv->cond, &srv->lock, &until) == ETIMEDOUT)
        break;
    bool done = srv->shutdown_done;
    pthread_mutex_unlock(&srv->lock);
    if (!done) {
      q_warn(NULL, "calls still running after %u ms: cancelling them", grace_ms);
      grpc_server_cancel_all_calls(srv->server);
      if (srv->n_threads == 0) {
        /* No worker to drain the queue (start failed half way): do it here. */
        for (;;) {
          grpc_event ev =
              grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
          if (ev.tag == &srv->shutdown_tag)
            break;
          if (ev.type == GRPC_OP_COMPLETE)
            call_free(ev.tag);
        }
      } else {
        pthread_mutex_lock(&srv->lock);
        while (!srv->shutdown_done)
          pthread_cond_wait(&srv->cond, &srv->lock);
        pthread_mutex_unlock(&srv->lock);
      }
    }
  }
  if (srv->cq) {
    grpc_completion_queue_shutdown(srv->cq);
    if (srv->n_threads == 0)
      while (grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
             GRPC_QUEUE_SHUTDOWN)
        ;
  }
  for (unsigned i = 0; i < srv->n_threads; i++)
    pthread_join(srv->threads[i], NULL);
  srv->n_threads = 0;
  if (srv->server)
    grpc_server_destroy(srv->server);
  srv->server = NULL;
  if (srv->cq)
    grpc_completion_queue_destroy(srv->cq);
  srv->cq = NULL;
  if (srv->sock_path && unlink(srv->sock_path) < 0 && errno != ENOENT)
    q_warn(NULL, "cannot remove %s: %s", srv->sock_path, strerror(errno));
  q_info(NULL, "CRI server stopped");
}

void cri_server_free(struct cri_server *srv)
{
  if (!srv)
    return;
  if (!srv->stopped && (srv->server || srv->cq))
    cri_server_stop(srv, 0);
  free(srv->threads);
  free(srv->sock_path);
  free(srv->methods);
  pthread_mutex_destroy(&srv->lock);
  pthread_cond_destroy(&srv->cond);
  free(srv);
}
