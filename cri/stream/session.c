/* What remote-command sessions share whatever the framing: starting the
 * process through the backend, the exit status message, resize messages and
 * the orderly end of a connection. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void set_nonblock(int fd)
{
  if (fd < 0)
    return;
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0)
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int stream_proc_start(cri_stream_server *srv, const struct stream_token *t, cri_stream_proc *p,
                      q_error **err)
{
  memset(p, 0, sizeof(*p));
  p->stdin_fd = p->stdout_fd = p->stderr_fd = p->exit_fd = -1;
  int r;
  if (t->kind == STREAM_EXEC)
    r = srv->cfg.ops->exec
            ? srv->cfg.ops->exec(srv->cfg.backend, t->target, t->argv, &t->opts, p, err)
            : q_error_make(err, ENOTSUP, "exec is not supported");
  else
    r = srv->cfg.ops->attach ? srv->cfg.ops->attach(srv->cfg.backend, t->target, &t->opts, p, err)
                             : q_error_make(err, ENOTSUP, "attach is not supported");
  if (r < 0)
    return r;
  if (!p->ops || !p->ops->wait || !p->ops->release || p->exit_fd < 0) {
    if (p->ops && p->ops->release)
      p->ops->release(p, false);
    stream_proc_close_stdio(p);
    return q_error_make(err, EINVAL, "backend returned an incomplete process");
  }
  /* Only what the client asked for is relayed. */
  if (!t->opts.in && p->stdin_fd >= 0) {
    if (p->stdin_fd != p->stdout_fd)
      close(p->stdin_fd);
    p->stdin_fd = -1;
  }
  set_nonblock(p->stdin_fd);
  set_nonblock(p->stdout_fd);
  set_nonblock(p->stderr_fd);
  return 0;
}

void stream_proc_close_stdio(cri_stream_proc *p)
{
  int *fds[] = {&p->stdin_fd, &p->stdout_fd, &p->stderr_fd};
  for (size_t i = 0; i < 3; i++) {
    if (*fds[i] < 0)
      continue;
    int fd = *fds[i];
    for (size_t k = i; k < 3; k++)
      if (*fds[k] == fd)
        *fds[k] = -1;
    close(fd);
  }
}

static char *cmd_string(const struct stream_token *t)
{
  size_t n = 3;
  for (size_t i = 0; i < t->argc; i++)
    n += strlen(t->argv[i]) + 1;
  char *s = malloc(n);
  if (!s)
    return NULL;
  strcpy(s, "[");
  for (size_t i = 0; i < t->argc; i++) {
    if (i)
      strcat(s, " ");
    strcat(s, t->argv[i]);
  }
  strcat(s, "]");
  return s;
}

char *stream_status_message(int version, const struct stream_token *t, int exit_code,
                            const char *errmsg)
{
  char *msg = NULL;
  if (errmsg) {
    msg = strdup(errmsg);
  } else if (exit_code != 0) {
    char *cmd = t->kind == STREAM_EXEC ? cmd_string(t) : strdup("[attach]");
    if (asprintf(
            &msg,
            "command terminated with non-zero exit code: error executing command %s, exit code %d",
            cmd ? cmd : "", exit_code) < 0)
      msg = NULL;
    free(cmd);
  } else if (version < RC_V4) {
    return NULL; /* older protocols: an empty error stream means success */
  }
  if (version < RC_V4)
    return msg;

  json_t *st = json_object();
  json_object_set_new(st, "metadata", json_object());
  if (!errmsg && exit_code == 0) {
    json_object_set_new(st, "status", json_string("Success"));
  } else {
    json_object_set_new(st, "status", json_string("Failure"));
    json_object_set_new(st, "message", json_string(msg ? msg : "error"));
    json_t *cause = json_object();
    if (errmsg) {
      json_object_set_new(st, "reason", json_string("InternalError"));
      json_object_set_new(cause, "message", json_string(errmsg));
      json_object_set_new(st, "code", json_integer(500));
    } else {
      char code[16];
      snprintf(code, sizeof(code), "%d", exit_code);
      json_object_set_new(st, "reason", json_string("NonZeroExitCode"));
      json_object_set_new(cause, "reason", json_string("ExitCode"));
      json_object_set_new(cause, "message", json_string(code));
    }
    json_t *causes = json_array();
    json_array_append_new(causes, cause);
    json_t *details = json_object();
    json_object_set_new(details, "causes", causes);
    json_object_set_new(st, "details", details);
  }
  char *out = json_dumps(st, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(st);
  free(msg);
  return out;
}

ssize_t stream_resize_feed(cri_stream_proc *p, const char *buf, size_t len)
{
  size_t used = 0;
  while (used < len) {
    while (used < len && strchr(" \t\r\n", buf[used]))
      used++;
    if (used == len)
      break;
    if (buf[used] != '{')
      return -EPROTO;
    json_error_t je;
    json_t *v = json_loadb(buf + used, len - used, JSON_DISABLE_EOF_CHECK, &je);
    if (!v) {
      /* An incomplete object waits for more bytes; a bounded one that still
       * does not parse never will. */
      if (len - used > 4096)
        return -EPROTO;
      break;
    }
    used += je.position;
    json_t *w = json_object_get(v, "Width"), *h = json_object_get(v, "Height");
    if (json_is_integer(w) && json_is_integer(h) && p->ops && p->ops->resize) {
      json_int_t wi = json_integer_value(w), hi = json_integer_value(h);
      if (wi >= 0 && wi <= 65535 && hi >= 0 && hi <= 65535)
        p->ops->resize(p, (uint16_t)wi, (uint16_t)hi);
    }
    json_decref(v);
  }
  return (ssize_t)used;
}

bool stream_drain_fd(int fd, int (*fn)(void *arg, const void *buf, size_t len), void *arg)
{
  /* Reads are gathered into frames of up to STREAM_IO_CHUNK: a writer with
   * small writes would otherwise cost one frame (and, for spdystream, a
   * goroutine hand-off) per write. */
  char buf[STREAM_IO_CHUNK];
  size_t have = 0;
  bool eof = false;
  for (;;) {
    ssize_t n = read(fd, buf + have, sizeof(buf) - have);
    if (n > 0) {
      have += (size_t)n;
      if (have < sizeof(buf))
        continue;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      /* EAGAIN; EOF, or EIO from a terminal whose other side is gone */
      eof = !(n < 0 && errno == EAGAIN);
    }
    if (have > 0 && fn(arg, buf, have) < 0)
      return true;
    have = 0;
    if (n <= 0)
      return eof;
  }
}

void stream_linger_close(int fd)
{
  shutdown(fd, SHUT_WR);
  int64_t deadline = q_mono_ns() + 2000000000LL;
  char buf[4096];
  for (;;) {
    int64_t left = (deadline - q_mono_ns()) / 1000000;
    if (left <= 0)
      return;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, (int)left) <= 0)
      return;
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
      return;
  }
}

void stream_proc_close_stdin(cri_stream_proc *p)
{
  if (p->stdin_fd < 0)
    return;
  if (p->stdin_fd != p->stdout_fd)
    close(p->stdin_fd);
  p->stdin_fd = -1;
  if (p->ops && p->ops->close_stdin)
    p->ops->close_stdin(p);
}

bool stream_proc_wait(cri_stream_proc *p, int *code, int *wait_err)
{
  int r = p->ops->wait(p, code);
  if (r == 0)
    return true;
  if (r == -EAGAIN) {
    /* exit_fd said readable too early: do not spin on it. */
    poll(NULL, 0, 10);
    return false;
  }
  *wait_err = r;
  return true;
}
