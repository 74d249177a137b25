/* Token store: every Exec/Attach/PortForward RPC mints one single-use token
 * that stands for the request until a client redeems it or it expires. The
 * store is small (max_tokens, 1000 by default) and scanned linearly. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *kind_path(enum stream_kind k)
{
  switch (k) {
  case STREAM_EXEC:
    return "exec";
  case STREAM_ATTACH:
    return "attach";
  default:
    return "portforward";
  }
}

void stream_token_free(struct stream_token *t)
{
  if (!t)
    return;
  free(t->target);
  for (size_t i = 0; t->argv && i < t->argc; i++)
    free(t->argv[i]);
  free(t->argv);
  free(t->ports);
  free(t);
}

/* Drops expired tokens; called with mu held. */
static void purge_locked(cri_stream_server *srv, int64_t now)
{
  size_t j = 0;
  for (size_t i = 0; i < srv->ntokens; i++) {
    if (srv->tokens[i]->expires_ns <= now)
      stream_token_free(srv->tokens[i]);
    else
      srv->tokens[j++] = srv->tokens[i];
  }
  srv->ntokens = j;
}

int stream_tokens_add(cri_stream_server *srv, struct stream_token *t, char **url, q_error **err)
{
  int r = q_random_id(t->id);
  if (r < 0) {
    stream_token_free(t);
    return q_error_make(err, -r, "stream token");
  }
  char *u = NULL;
  if (asprintf(&u, "%s/%s/%s", srv->url, kind_path(t->kind), t->id) < 0) {
    stream_token_free(t);
    return q_error_make(err, ENOMEM, "stream url");
  }
  int64_t now = q_mono_ns();
  t->expires_ns = now + (int64_t)srv->cfg.token_ttl_ms * 1000000;
  pthread_mutex_lock(&srv->mu);
  purge_locked(srv, now);
  if (srv->stopping || srv->ntokens >= srv->cfg.max_tokens) {
    bool stopping = srv->stopping;
    pthread_mutex_unlock(&srv->mu);
    stream_token_free(t);
    free(u);
    if (stopping)
      return q_error_make(err, ESHUTDOWN, "streaming server is stopping");
    return q_error_make(err, ENOSPC, "too many outstanding streaming requests (%u)",
                        srv->cfg.max_tokens);
  }
  srv->tokens[srv->ntokens++] = t;
  pthread_mutex_unlock(&srv->mu);
  *url = u;
  return 0;
}

struct stream_token *stream_tokens_consume(cri_stream_server *srv, const char *id)
{
  struct stream_token *t = NULL;
  pthread_mutex_lock(&srv->mu);
  purge_locked(srv, q_mono_ns());
  for (size_t i = 0; i < srv->ntokens; i++) {
    if (strcmp(srv->tokens[i]->id, id) == 0) {
      t = srv->tokens[i];
      srv->tokens[i] = srv->tokens[--srv->ntokens];
      break;
    }
  }
  pthread_mutex_unlock(&srv->mu);
  return t;
}

void stream_tokens_clear(cri_stream_server *srv)
{
  pthread_mutex_lock(&srv->mu);
  for (size_t i = 0; i < srv->ntokens; i++)
    stream_token_free(srv->tokens[i]);
  srv->ntokens = 0;
  pthread_mutex_unlock(&srv->mu);
}

size_t cri_stream_tokens_outstanding(cri_stream_server *srv)
{
  pthread_mutex_lock(&srv->mu);
  purge_locked(srv, q_mono_ns());
  size_t n = srv->ntokens;
  pthread_mutex_unlock(&srv->mu);
  return n;
}

static int check_opts(const struct cri_stream_opts *o, q_error **err)
{
  if (!o)
    return q_error_make(err, EINVAL, "missing stream options");
  if (o->tty && o->err)
    return q_error_make(err, EINVAL, "tty and stderr cannot both be true");
  if (!o->in && !o->out && !o->err)
    return q_error_make(err, EINVAL, "one of stdin, stdout, or stderr must be set");
  return 0;
}

static int check_id(const char *id, const char *what, q_error **err)
{
  if (!id || !*id)
    return q_error_make(err, EINVAL, "missing %s id", what);
  if (strlen(id) > 256)
    return q_error_make(err, EINVAL, "%s id too long", what);
  return 0;
}

int cri_stream_request_exec(cri_stream_server *srv, const char *container_id,
                            const char *const *cmd, size_t ncmd, const struct cri_stream_opts *o,
                            char **url, q_error **err)
{
  int r;
  if ((r = check_id(container_id, "container", err)) < 0 || (r = check_opts(o, err)) < 0)
    return r;
  if (ncmd == 0 || !cmd || !cmd[0] || !*cmd[0])
    return q_error_make(err, EINVAL, "cmd must not be empty");
  struct stream_token *t = calloc(1, sizeof(*t));
  if (!t)
    return q_error_make(err, ENOMEM, "stream token");
  t->kind = STREAM_EXEC;
  t->opts = *o;
  t->target = strdup(container_id);
  t->argv = calloc(ncmd + 1, sizeof(char *));
  if (!t->target || !t->argv) {
    stream_token_free(t);
    return q_error_make(err, ENOMEM, "stream token");
  }
  for (size_t i = 0; i < ncmd; i++) {
    if (!cmd[i] || !(t->argv[i] = strdup(cmd[i]))) {
      t->argc = i;
      stream_token_free(t);
      return q_error_make(err, cmd[i] ? ENOMEM : EINVAL, "exec cmd");
    }
  }
  t->argc = ncmd;
  return stream_tokens_add(srv, t, url, err);
}

int cri_stream_request_attach(cri_stream_server *srv, const char *container_id,
                              const struct cri_stream_opts *o, char **url, q_error **err)
{
  int r;
  if ((r = check_id(container_id, "container", err)) < 0 || (r = check_opts(o, err)) < 0)
    return r;
  struct stream_token *t = calloc(1, sizeof(*t));
  if (!t || !(t->target = strdup(container_id))) {
    stream_token_free(t);
    return q_error_make(err, ENOMEM, "stream token");
  }
  t->kind = STREAM_ATTACH;
  t->opts = *o;
  return stream_tokens_add(srv, t, url, err);
}

int cri_stream_request_portforward(cri_stream_server *srv, const char *pod_id, const int32_t *ports,
                                   size_t nports, char **url, q_error **err)
{
  int r;
  if ((r = check_id(pod_id, "pod sandbox", err)) < 0)
    return r;
  for (size_t i = 0; i < nports; i++)
    if (ports[i] <= 0 || ports[i] > 65535)
      return q_error_make(err, EINVAL, "invalid port %d", (int)ports[i]);
  struct stream_token *t = calloc(1, sizeof(*t));
  if (!t || !(t->target = strdup(pod_id)) ||
      (nports && !(t->ports = calloc(nports, sizeof(int32_t))))) {
    stream_token_free(t);
    return q_error_make(err, ENOMEM, "stream token");
  }
  t->kind = STREAM_PORTFORWARD;
  if (nports)
    memcpy(t->ports, ports, nports * sizeof(int32_t));
  t->nports = nports;
  return stream_tokens_add(srv, t, url, err);
}
