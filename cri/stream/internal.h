/* Shared between the files of cri/stream; not part of the module's API. */
#ifndef QUARK_CRI_STREAM_INTERNAL_H
#define QUARK_CRI_STREAM_INTERNAL_H

#include "stream.h"
#include "http.h"

#include <pthread.h>
#include <stdatomic.h>

enum stream_kind { STREAM_EXEC, STREAM_ATTACH, STREAM_PORTFORWARD };

/* One minted URL: the CRI request it stands for. */
struct stream_token {
  char id[65];
  enum stream_kind kind;
  int64_t expires_ns; /* monotonic */
  char *target;       /* container id, or pod id for port forwarding */
  char **argv;        /* exec: NULL-terminated */
  size_t argc;
  struct cri_stream_opts opts;
  int32_t *ports;
  size_t nports;
};
void stream_token_free(struct stream_token *t);

/* One accepted connection. */
struct stream_conn {
  cri_stream_server *srv;
  int fd;
  struct stream_conn *next;
  char extra[HTTP_MAX_HEAD]; /* bytes that came after the request head */
  size_t extra_len;
};

struct cri_stream_server {
  struct cri_stream_config cfg;
  char *address;
  int lfd;
  int wake[2];
  uint16_t port;
  char url[128];
  pthread_t accept_thr;

  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct stream_token **tokens;
  size_t ntokens;
  struct stream_conn *conns;
  size_t nconns;
  bool stopping;
};

/* token.c */
int stream_tokens_add(cri_stream_server *srv, struct stream_token *t, char **url, q_error **err);
/* Takes the token out of the store: NULL when unknown or expired. */
struct stream_token *stream_tokens_consume(cri_stream_server *srv, const char *id);
void stream_tokens_clear(cri_stream_server *srv);

/* Remote-command protocol versions (k8s.io/apimachinery remotecommand). */
enum { RC_V1 = 1, RC_V2, RC_V3, RC_V4, RC_V5 };

/* session.c: what SPDY and WebSocket sessions share. */
int stream_proc_start(cri_stream_server *srv, const struct stream_token *t, cri_stream_proc *p,
                      q_error **err);
void stream_proc_close_stdio(cri_stream_proc *p);
/* Collects the exit status once exit_fd is readable. True when the session
 * is to end: the status is in *code, or wait() failed and *wait_err holds
 * its error; false when the backend said -EAGAIN (retried later). */
bool stream_proc_wait(cri_stream_proc *p, int *code, int *wait_err);
/* The client is done with stdin: see cri_stream_proc_ops.close_stdin. */
void stream_proc_close_stdin(cri_stream_proc *p);
/* The message for the error stream once the process exited (code >= 0) or
 * failed to start (errmsg). NULL when nothing is to be sent (success before
 * v4). Caller frees. */
char *stream_status_message(int version, const struct stream_token *t, int exit_code,
                            const char *errmsg);
/* Consumes the complete JSON resize messages at the start of buf and calls
 * p->ops->resize for each; returns the bytes consumed, or -EPROTO when the
 * data can never be a resize message. */
ssize_t stream_resize_feed(cri_stream_proc *p, const char *buf, size_t len);
bool stream_stopping(cri_stream_server *srv);
/* Reads what a pipe or terminal holds now into fn, until it would block or
 * ends; returns true at EOF. */
bool stream_drain_fd(int fd, int (*fn)(void *arg, const void *buf, size_t len), void *arg);
/* Half-closes our side and waits (bounded) for the peer to close, so that
 * the last bytes we sent are not lost to a reset. */
void stream_linger_close(int fd);

/* spdy_session.c / ws_session.c: run a whole session on an upgraded
 * connection; they return when it is over (the caller closes the fd). */
void stream_spdy_remotecommand(struct stream_conn *c, struct stream_token *t, int version);
void stream_spdy_portforward(struct stream_conn *c, struct stream_token *t);
/* Port forwarding over WebSocket (kubelet's v4 channel protocol): the ports
 * are the CRI request's. */
void stream_ws_portforward(struct stream_conn *c, struct stream_token *t,
                           const struct http_request *req, const char *protocol, bool base64);
/* Performs the WebSocket handshake reply itself. */
void stream_ws_remotecommand(struct stream_conn *c, struct stream_token *t,
                             const struct http_request *req, const char *protocol, int version,
                             bool base64);

#define STREAM_CREATION_TIMEOUT_MS 30000
#define STREAM_HEAD_TIMEOUT_MS 10000
#define STREAM_SEND_TIMEOUT_MS 30000
#define STREAM_IO_CHUNK 32768
/* Sessions wake at least this often to notice a server stop and timeouts. */
#define STREAM_POLL_MS 1000

#endif
