/* Test daemon for the streaming server: embeds quark_stream with a REAL host
 * backend (exec runs the command as a host process with pipes or a pty;
 * attach talks to "containers" that are host processes started by the test;
 * port forwarding connects to 127.0.0.1:<port>) and takes requests to mint
 * URLs on a unix control socket, one JSON object per connection:
 *   {"op":"exec","container":"c1","cmd":[...],"tty":b,"stdin":b,"stdout":b,"stderr":b}
 *   {"op":"attach","container":"c1",...}   {"op":"portforward","pod":"p1","ports":[..]}
 *   {"op":"spawn","container":"c1","cmd":[...],"stdin_once":b}
 *   {"op":"state","container":"c1"}        {"op":"procs"}
 * Usage: stream_testd CTL_SOCKET [TOKEN_TTL_MS] */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "stream.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int live_execs; /* exec'd processes not reaped yet */

/* ---- exec ---- */

struct hproc {
  pid_t pid;
  int pidfd;
  int master; /* pty master for tty sessions, -1 otherwise */
  bool reaped;
};

static int code_of(int st)
{
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int hproc_resize(cri_stream_proc *p, uint16_t w, uint16_t h)
{
  struct hproc *hp = p->data;
  struct winsize ws = {.ws_row = h, .ws_col = w};
  return hp->master >= 0 && ioctl(hp->master, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}

static int hproc_wait(cri_stream_proc *p, int *code)
{
  struct hproc *hp = p->data;
  int st;
  pid_t r = waitpid(hp->pid, &st, WNOHANG);
  if (r <= 0)
    return r == 0 ? -EAGAIN : -errno;
  hp->reaped = true;
  pthread_mutex_lock(&mu);
  live_execs--;
  pthread_mutex_unlock(&mu);
  *code = code_of(st);
  return 0;
}

static void hproc_release(cri_stream_proc *p, bool exited)
{
  struct hproc *hp = p->data;
  if (!hp->reaped) {
    /* The client went away: an exec'd process does not outlive its session. */
    kill(hp->pid, SIGKILL);
    waitpid(hp->pid, NULL, 0);
    pthread_mutex_lock(&mu);
    live_execs--;
    pthread_mutex_unlock(&mu);
  }
  close(hp->pidfd);
  if (hp->master >= 0)
    close(hp->master);
  free(hp);
}

static const struct cri_stream_proc_ops hproc_ops = {
    .resize = hproc_resize,
    .wait = hproc_wait,
    .release = hproc_release,
};

static void cloexec(int fd)
{
  fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* Starts argv with stdio pipes (or a pty) and returns the parent's ends. */
static pid_t spawn(char *const argv[], bool tty, int *in, int *out, int *err, int *master)
{
  int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1}, m = -1, s = -1;
  *in = *out = *err = *master = -1;
  if (tty) {
    if (openpty(&m, &s, NULL, NULL, NULL) < 0)
      return -1;
    cloexec(m);
    cloexec(s);
  } else if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 ||
             pipe2(perr, O_CLOEXEC) < 0) {
    return -1;
  }
  pid_t pid = fork();
  if (pid == 0) {
    if (tty) {
      setsid();
      ioctl(s, TIOCSCTTY, 0);
      dup2(s, 0);
      dup2(s, 1);
      dup2(s, 2);
    } else {
      dup2(pin[0], 0);
      dup2(pout[1], 1);
      dup2(perr[1], 2);
    }
    signal(SIGPIPE, SIG_DFL);
    execvp(argv[0], argv);
    _exit(127);
  }
  if (tty) {
    close(s);
    *master = m;
  } else {
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    *in = pin[1];
    *out = pout[0];
    *err = perr[0];
  }
  return pid;
}

static int be_exec(void *be, const char *cid, char *const argv[], const struct cri_stream_opts *o,
                   cri_stream_proc *p, q_error **err)
{
  int in, out, er, master;
  pid_t pid = spawn(argv, o->tty, &in, &out, &er, &master);
  if (pid < 0)
    return q_error_make(err, errno, "spawn %s", argv[0]);
  pthread_mutex_lock(&mu);
  live_execs++;
  pthread_mutex_unlock(&mu);
  struct hproc *hp = calloc(1, sizeof(*hp));
  hp->pid = pid;
  hp->pidfd = pidfd_open(pid, 0);
  hp->master = master;
  p->data = hp;
  p->ops = &hproc_ops;
  p->exit_fd = hp->pidfd;
  if (o->tty) {
    p->stdin_fd = o->in ? dup(master) : -1;
    p->stdout_fd = dup(master);
    p->stderr_fd = -1;
    hp->master = master; /* kept for resize; the session owns its dups */
  } else {
    p->stdin_fd = in;
    p->stdout_fd = o->out ? out : (close(out), -1);
    p->stderr_fd = o->err ? er : (close(er), -1);
  }
  return 0;
}

/* ---- attach: test "containers" ---- */

struct ctr {
  char name[64];
  pid_t pid;
  int in, out, err;
  bool stdin_once, reaped;
  int code;
  struct ctr *next;
};
static struct ctr *ctrs;

static struct ctr *ctr_find(const char *name)
{
  for (struct ctr *c = ctrs; c; c = c->next)
    if (strcmp(c->name, name) == 0)
      return c;
  return NULL;
}

static void ctr_reap(struct ctr *c)
{
  int st;
  if (!c->reaped && waitpid(c->pid, &st, WNOHANG) == c->pid) {
    c->reaped = true;
    c->code = code_of(st);
  }
}

struct aproc {
  struct ctr *c;
  int pidfd;
};

static int aproc_wait(cri_stream_proc *p, int *code)
{
  struct aproc *a = p->data;
  pthread_mutex_lock(&mu);
  ctr_reap(a->c);
  int r = a->c->reaped ? 0 : -EAGAIN;
  *code = a->c->code;
  pthread_mutex_unlock(&mu);
  return r;
}

static void aproc_close_stdin(cri_stream_proc *p)
{
  struct aproc *a = p->data;
  pthread_mutex_lock(&mu);
  if (a->c->stdin_once && a->c->in >= 0) {
    close(a->c->in);
    a->c->in = -1;
  }
  pthread_mutex_unlock(&mu);
}

static void aproc_release(cri_stream_proc *p, bool exited)
{
  struct aproc *a = p->data;
  close(a->pidfd);
  free(a);
}

static const struct cri_stream_proc_ops aproc_ops = {
    .close_stdin = aproc_close_stdin,
    .wait = aproc_wait,
    .release = aproc_release,
};

static int be_attach(void *be, const char *cid, const struct cri_stream_opts *o, cri_stream_proc *p,
                     q_error **err)
{
  pthread_mutex_lock(&mu);
  struct ctr *c = ctr_find(cid);
  if (!c || c->reaped) {
    pthread_mutex_unlock(&mu);
    return q_error_make(err, ENOENT, "container %s is not running", cid);
  }
  struct aproc *a = calloc(1, sizeof(*a));
  a->c = c;
  a->pidfd = pidfd_open(c->pid, 0);
  p->stdin_fd = o->in && c->in >= 0 ? fcntl(c->in, F_DUPFD_CLOEXEC, 0) : -1;
  p->stdout_fd = o->out ? fcntl(c->out, F_DUPFD_CLOEXEC, 0) : -1;
  p->stderr_fd = o->err ? fcntl(c->err, F_DUPFD_CLOEXEC, 0) : -1;
  pthread_mutex_unlock(&mu);
  p->exit_fd = a->pidfd;
  p->ops = &aproc_ops;
  p->data = a;
  return 0;
}

/* ---- port forwarding ---- */

static int be_portforward(void *be, const char *pod, uint16_t port, int *fd, q_error **err)
{
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {
      .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
  if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    int e = errno;
    if (s >= 0)
      close(s);
    return q_error_make(err, e, "dial tcp 127.0.0.1:%u", port);
  }
  *fd = s;
  return 0;
}

static const struct cri_stream_backend_ops backend = {
    .exec = be_exec,
    .attach = be_attach,
    .portforward = be_portforward,
};

/* ---- control socket ---- */

static struct cri_stream_opts opts_of(json_t *req)
{
  return (struct cri_stream_opts){.tty = json_is_true(json_object_get(req, "tty")),
                                  .in = json_is_true(json_object_get(req, "stdin")),
                                  .out = json_is_true(json_object_get(req, "stdout")),
                                  .err = json_is_true(json_object_get(req, "stderr"))};
}

static json_t *handle(cri_stream_server *srv, json_t *req)
{
  const char *op = json_string_value(json_object_get(req, "op"));
  const char *cid = json_string_value(json_object_get(req, "container"));
  json_t *cmd = json_object_get(req, "cmd");
  q_cleanup_error q_error *err = NULL;
  char *url = NULL;
  int r = -EINVAL;
  if (!op)
    return json_pack("{s:s}", "error", "missing op");
  if (strcmp(op, "exec") == 0) {
    size_t n = json_array_size(cmd);
    const char **argv = calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
      argv[i] = json_string_value(json_array_get(cmd, i));
    struct cri_stream_opts o = opts_of(req);
    r = cri_stream_request_exec(srv, cid, argv, n, &o, &url, &err);
    free(argv);
  } else if (strcmp(op, "attach") == 0) {
    struct cri_stream_opts o = opts_of(req);
    r = cri_stream_request_attach(srv, cid, &o, &url, &err);
  } else if (strcmp(op, "portforward") == 0) {
    json_t *ports = json_object_get(req, "ports");
    int32_t pv[16];
    size_t n = json_array_size(ports) < 16 ? json_array_size(ports) : 16;
    for (size_t i = 0; i < n; i++)
      pv[i] = (int32_t)json_integer_value(json_array_get(ports, i));
    r = cri_stream_request_portforward(srv, json_string_value(json_object_get(req, "pod")), pv, n,
                                       &url, &err);
  } else if (strcmp(op, "spawn") == 0) {
    size_t n = json_array_size(cmd);
    char **argv = calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
      argv[i] = (char *)json_string_value(json_array_get(cmd, i));
    struct ctr *c = calloc(1, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", cid ? cid : "");
    int master;
    c->pid = spawn(argv, false, &c->in, &c->out, &c->err, &master);
    free(argv);
    c->stdin_once = json_is_true(json_object_get(req, "stdin_once"));
    pthread_mutex_lock(&mu);
    c->next = ctrs;
    ctrs = c;
    pthread_mutex_unlock(&mu);
    return json_pack("{s:i}", "pid", (int)c->pid);
  } else if (strcmp(op, "state") == 0) {
    pthread_mutex_lock(&mu);
    struct ctr *c = ctr_find(cid ? cid : "");
    if (c)
      ctr_reap(c);
    json_t *res = c ? json_pack("{s:b,s:i}", "running", !c->reaped, "code", c->code)
                    : json_pack("{s:s}", "error", "no such container");
    pthread_mutex_unlock(&mu);
    return res;
  } else if (strcmp(op, "procs") == 0) {
    pthread_mutex_lock(&mu);
    json_t *res = json_pack("{s:i,s:i}", "live_execs", live_execs, "tokens",
                            (int)cri_stream_tokens_outstanding(srv));
    pthread_mutex_unlock(&mu);
    return res;
  } else {
    return json_pack("{s:s}", "error", "unknown op");
  }
  if (r < 0)
    return json_pack("{s:s,s:i}", "error", q_error_msg(err), "errno", -r);
  json_t *res = json_pack("{s:s}", "url", url);
  free(url);
  return res;
}

static volatile sig_atomic_t done;
static void on_term(int sig)
{
  done = 1;
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    fprintf(stderr, "usage: %s CTL_SOCKET [TOKEN_TTL_MS]\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = on_term};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  q_log_init(NULL, getenv("STREAM_DEBUG") ? Q_LOG_DEBUG : Q_LOG_WARN, "stream-testd", NULL);
  struct cri_stream_config cfg = {.ops = &backend,
                                  .token_ttl_ms = argc > 2 ? (unsigned)atoi(argv[2]) : 0};
  cri_stream_server *srv;
  q_cleanup_error q_error *err = NULL;
  if (cri_stream_server_start(&cfg, &srv, &err) < 0) {
    fprintf(stderr, "stream_testd: %s\n", q_error_msg(err));
    return 1;
  }
  int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  snprintf(un.sun_path, sizeof(un.sun_path), "%s", argv[1]);
  unlink(argv[1]);
  if (bind(l, (struct sockaddr *)&un, sizeof(un)) < 0 || listen(l, 128) < 0) {
    perror("stream_testd: control socket");
    return 1;
  }
  printf("%s\n", cri_stream_server_url(srv));
  fflush(stdout);
  while (!done) {
    int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
      continue;
    char buf[65536];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(buf) - 1 && (n = read(c, buf + len, sizeof(buf) - 1 - len)) > 0) {
      len += (size_t)n;
      if (memchr(buf, '\n', len))
        break;
    }
    json_t *req = json_loadb(buf, len, JSON_DISABLE_EOF_CHECK, NULL);
    json_t *res = req ? handle(srv, req) : json_pack("{s:s}", "error", "bad json");
    char *out = json_dumps(res, JSON_COMPACT);
    char *line = NULL;
    /* One write: the client may close as soon as it has the object. */
    if (asprintf(&line, "%s\n", out) > 0 && q_write_all(c, line, strlen(line)) < 0)
      perror("stream_testd: reply");
    free(line);
    free(out);
    json_decref(res);
    json_decref(req);
    close(c);
  }
  cri_stream_server_stop(srv);
  close(l);
  unlink(argv[1]);
  for (struct ctr *c = ctrs, *n; c; c = n) {
    n = c->next;
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
    if (c->in >= 0)
      close(c->in);
    close(c->out);
    close(c->err);
    free(c);
  }
  return 0;
}
