/* Exec, Attach and PortForward: the RPCs answer with a URL on the streaming
 * server (cri/stream/stream.h), and this file is that server's backend.
 *
 * - exec: sbx_exec_start runs the command in the container with its stdio
 *   on sockets handed over by the sandbox (stdin when asked for; closing it
 *   is the process's EOF). A waiter thread on a sandbox connection of its
 *   own polls sbx_exec_wait and signals exit_fd (an eventfd) with the exit
 *   code; output the client did not ask for is read and dropped by that
 *   thread so that the process never blocks on it. A client that goes away
 *   first gets its process killed (SIGKILL through the pod's shared
 *   connection); the waiter still reaps it.
 * - attach: sbx_container_attach hands out the container's stdin (the only
 *   writer when the container has StdinOnce: closing it is the container's
 *   EOF) and its output from now on; a waiter thread watches the container
 *   with sbx_container_wait. The container is never touched when the client
 *   leaves.
 * - a tty (exec, or attach to a tty container; pod VM mode): the sandbox
 *   hands over a two-way stream whose guest side is a terminal
 *   (guestkernel/fs/tty.c). Output is read from it (attach: from the
 *   container's output); stdin goes through a relay thread that escapes
 *   0xff and puts resize messages in band (ESC 'W' rows cols, see
 *   guestkernel/include/qk/tty.h), so the guest sees its window size
 *   change between the bytes typed before and after it.
 * - port forwarding: a TCP connection to 127.0.0.1:port opened inside the
 *   pod's network namespace (guest sockets are host sockets there), or in
 *   the host's for hostNetwork pods. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pods.h"
#include "stream.h"

#define WAIT_SLICE_MS 250

/* ---- backend: exec and attach ---- */

struct proc_job {
  atomic_int refs;  /* the waiter thread's and the session's */
  atomic_bool gone; /* the session is over */
  bool attach;
  struct cri_pods *p;
  char pod_id[65];
  char ctr_id[65];
  char *exec_id;          /* exec only */
  struct sbx_client *own; /* the waiter's connection (or NULL: the shared one) */
  int drain[2];           /* unwanted stdout/stderr, read and dropped */
  int efd;
  atomic_int exit_code;
  atomic_int wait_rc; /* 0, or -errno when the wait failed */
  /* tty: the relay from the session's stdin (relay_in) to the terminal */
  int tty_fd;     /* the terminal stream (the session reads output from a dup) */
  int relay_in;   /* our end of the session's stdin socket pair */
  int relay_wake; /* eventfd: stop */
  bool relay_on;
  pthread_t relay;
  pthread_mutex_t tty_lock; /* one writer of tty_fd at a time */
};

static void job_put(struct proc_job *j)
{
  if (atomic_fetch_sub(&j->refs, 1) != 1)
    return;
  if (j->own)
    sbx_client_close(j->own);
  for (int i = 0; i < 2; i++)
    if (j->drain[i] >= 0)
      close(j->drain[i]);
  if (j->efd >= 0)
    close(j->efd);
  if (j->tty_fd >= 0)
    close(j->tty_fd);
  if (j->relay_in >= 0)
    close(j->relay_in);
  if (j->relay_wake >= 0)
    close(j->relay_wake);
  pthread_mutex_destroy(&j->tty_lock);
  free(j->exec_id);
  free(j);
}

/* ---- tty: stdin relay and in-band window sizes ---- */

#define TTY_ESC 0xffu

/* Writes all of buf to the (possibly non-blocking) terminal stream. */
static int tty_write_all(int fd, const uint8_t *buf, size_t len)
{
  while (len) {
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN) {
      struct pollfd pfd = {.fd = fd, .events = POLLOUT};
      if (poll(&pfd, 1, 10000) <= 0)
        return -ETIMEDOUT;
      continue;
    }
    if (n <= 0)
      return -EPIPE;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

static void *relay_thread(void *arg)
{
  struct proc_job *j = arg;
  uint8_t in[8192], out[2 * sizeof in];
  for (;;) {
    struct pollfd pfd[2] = {{.fd = j->relay_in, .events = POLLIN},
                            {.fd = j->relay_wake, .events = POLLIN}};
    if (poll(pfd, 2, -1) < 0 && errno != EINTR)
      break;
    if (pfd[1].revents)
      break;
    if (!pfd[0].revents)
      continue;
    ssize_t n = read(j->relay_in, in, sizeof in);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n <= 0) {
      /* The client closed stdin: an exec's terminal input ends; a
       * container's terminal is shared with other attaches and stays. */
      if (!j->attach)
        shutdown(j->tty_fd, SHUT_WR);
      break;
    }
    size_t o = 0;
    for (ssize_t i = 0; i < n; i++) {
      out[o++] = in[i];
      if (in[i] == TTY_ESC)
        out[o++] = TTY_ESC;
    }
    pthread_mutex_lock(&j->tty_lock);
    int r = tty_write_all(j->tty_fd, out, o);
    pthread_mutex_unlock(&j->tty_lock);
    if (r < 0)
      break;
  }
  return NULL;
}

static int proc_resize(cri_stream_proc *proc, uint16_t width, uint16_t height)
{
  struct proc_job *j = proc->data;
  if (j->tty_fd < 0)
    return -ENOTTY;
  uint8_t m[6] = {
      TTY_ESC, 'W', (uint8_t)(height >> 8), (uint8_t)height, (uint8_t)(width >> 8), (uint8_t)width};
  pthread_mutex_lock(&j->tty_lock);
  int r = tty_write_all(j->tty_fd, m, sizeof m);
  pthread_mutex_unlock(&j->tty_lock);
  return r;
}

/* Runs fn with the pod's shared sandbox client (NULL when unreachable). */
static int with_pod_sbx(struct proc_job *j,
                        int (*fn)(struct proc_job *, struct sbx_client *, void *, q_error **),
                        void *arg, q_error **err)
{
  struct cri_pod *pod = NULL;
  if (cri_state_get_pod(j->p->st, j->pod_id, &pod) < 0)
    return q_error_make(err, ESRCH, "pod %.12s is gone", j->pod_id);
  struct cri_pod_entry *e = cri_pods_get(j->p, j->pod_id);
  int rc = 0;
  struct sbx_client *c = e ? cri_pods_sbx(j->p, e, pod, &rc, err) : NULL;
  if (!e)
    rc = q_error_make(err, ENOMEM, "pod entry");
  else if (c)
    rc = fn(j, c, arg, err);
  cri_pods_put(j->p, e);
  cri_pod_free(pod);
  return rc;
}

static void drain_unwanted(struct proc_job *j, int timeout_ms)
{
  struct pollfd pfd[2];
  int n = 0;
  for (int i = 0; i < 2; i++)
    if (j->drain[i] >= 0)
      pfd[n++] = (struct pollfd){.fd = j->drain[i], .events = POLLIN};
  if (!n) {
    poll(NULL, 0, timeout_ms);
    return;
  }
  if (poll(pfd, (nfds_t)n, timeout_ms) <= 0)
    return;
  char buf[4096];
  for (int i = 0; i < n; i++) {
    if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
      continue;
    ssize_t r = read(pfd[i].fd, buf, sizeof buf);
    if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
      for (int k = 0; k < 2; k++)
        if (j->drain[k] == pfd[i].fd) {
          close(j->drain[k]);
          j->drain[k] = -1;
        }
  }
}

static int wait_once(struct proc_job *j, struct sbx_client *c, int timeout_ms, int *code,
                     q_error **err)
{
  if (!j->attach)
    return sbx_exec_wait(c, j->exec_id, timeout_ms, code, err);
  struct sbx_container_status st;
  int rc = sbx_container_wait(c, j->ctr_id, timeout_ms, &st, err);
  if (rc == 0 && st.state != SBX_PROC_EXITED)
    rc = q_error_make(err, ETIMEDOUT, "container still runs");
  if (rc == 0)
    *code = st.exit_code;
  return rc;
}

static int wait_shared(struct proc_job *j, struct sbx_client *c, void *arg, q_error **err)
{
  return wait_once(j, c, 0, arg, err);
}

static void *waiter_thread(void *arg)
{
  struct proc_job *j = arg;
  int code = 0, rc;
  for (;;) {
    /* Output nobody wants is dropped here, between short waits (a wait
     * blocks the connection, and the drain must go on meanwhile). */
    bool draining = j->drain[0] >= 0 || j->drain[1] >= 0;
    if (draining)
      drain_unwanted(j, 50);
    q_error *err = NULL;
    int slice = draining ? 0 : WAIT_SLICE_MS;
    rc = j->own ? wait_once(j, j->own, slice, &code, &err)
                : with_pod_sbx(j, wait_shared, &code, &err);
    if (rc == -ETIMEDOUT) {
      q_error_free(&err);
      /* An attach ends with its client; an exec is reaped even then. */
      if (j->attach && atomic_load(&j->gone))
        break;
      if (!j->own && !draining)
        poll(NULL, 0, WAIT_SLICE_MS);
      continue;
    }
    if (rc < 0 && !atomic_load(&j->gone))
      q_warn(j->ctr_id, "%s: wait: %s", j->attach ? "attach" : "exec", q_error_msg(err));
    q_error_free(&err);
    break;
  }
  atomic_store(&j->exit_code, code);
  atomic_store(&j->wait_rc, rc == -ETIMEDOUT ? 0 : rc);
  uint64_t one = 1;
  if (write(j->efd, &one, sizeof(one)) < 0)
    q_warn(j->ctr_id, "exec: cannot signal the exit: %s", strerror(errno));
  job_put(j);
  return NULL;
}

static int proc_wait(cri_stream_proc *proc, int *exit_code)
{
  struct proc_job *j = proc->data;
  int rc = atomic_load(&j->wait_rc);
  if (rc < 0)
    return rc;
  *exit_code = atomic_load(&j->exit_code);
  return 0;
}

static int kill_shared(struct proc_job *j, struct sbx_client *c, void *arg, q_error **err)
{
  return sbx_exec_kill(c, j->exec_id, SIGKILL, err);
}

static void proc_release(cri_stream_proc *proc, bool exited)
{
  struct proc_job *j = proc->data;
  atomic_store(&j->gone, true);
  if (j->relay_on) {
    uint64_t one = 1;
    if (write(j->relay_wake, &one, sizeof one) < 0)
      q_warn(j->ctr_id, "exec: cannot stop the tty relay: %s", strerror(errno));
    pthread_join(j->relay, NULL);
    j->relay_on = false;
  }
  if (!exited && !j->attach) {
    /* The client left while its command still runs: kubelet's and runc's
     * behaviour is to end it rather than leave it behind. */
    q_error *err = NULL;
    if (with_pod_sbx(j, kill_shared, NULL, &err) < 0 && err)
      q_debug(j->ctr_id, "exec %s: kill: %s", j->exec_id, q_error_msg(err));
    q_error_free(&err);
  }
  job_put(j);
}

static const struct cri_stream_proc_ops proc_ops = {
    .resize = proc_resize,
    .wait = proc_wait,
    .release = proc_release,
};

static int start_sbx(struct proc_job *j, struct sbx_client *c, void *arg, q_error **err)
{
  void **a = arg;
  const struct cri_stream_opts *o = a[0];
  int *fds = a[1];
  if (j->attach)
    return sbx_container_attach(c, j->ctr_id, o->in, fds, err);
  struct sbx_exec_spec spec = {.argv = a[2], .tty = o->tty, .stdin_open = o->in};
  return sbx_exec_start(c, j->ctr_id, &spec, &j->exec_id, fds, err);
}

static int start_proc(struct cri_pods *p, bool attach, const char *container_id, char *const argv[],
                      const struct cri_stream_opts *o, cri_stream_proc *proc, q_error **err)
{
  struct cri_ctr *ctr = NULL;
  struct cri_pod *pod = NULL;
  if (cri_state_get_ctr(p->st, container_id, &ctr) < 0 ||
      cri_state_get_pod(p->st, ctr->pod_id, &pod) < 0) {
    cri_ctr_free(ctr);
    return q_error_make(err, ENOENT, "container %s not found", container_id);
  }
  int rc = 0;
  int fds[3] = {-1, -1, -1};
  struct proc_job *j = NULL;
  if (ctr->state != CRI_CTR_RUNNING) {
    rc = q_error_make(err, EBUSY, "container %.12s is not running", container_id);
    goto out;
  }
  if (!(j = calloc(1, sizeof(*j)))) {
    rc = q_error_make(err, ENOMEM, "exec");
    goto out;
  }
  j->drain[0] = j->drain[1] = j->efd = -1;
  j->tty_fd = j->relay_in = j->relay_wake = -1;
  pthread_mutex_init(&j->tty_lock, NULL);
  j->attach = attach;
  j->p = p;
  snprintf(j->pod_id, sizeof j->pod_id, "%s", pod->id);
  snprintf(j->ctr_id, sizeof j->ctr_id, "%s", container_id);
  if ((j->efd = eventfd(0, EFD_CLOEXEC)) < 0) {
    rc = q_error_make(err, errno, "eventfd");
    goto out;
  }
  void *a[3] = {(void *)o, fds, (void *)argv};
  if ((rc = with_pod_sbx(j, start_sbx, a, err)) < 0)
    goto out;
  /* The waiter may block for hours: not on the pod's shared connection
   * (calls on one client are serialized). */
  j->own = cri_pods_sbx_private(pod);
  if (o->tty && (fds[0] >= 0 || !attach)) {
    /* fds[0]: the terminal (stdin goes through the relay), fds[1]: where
     * the session reads output from (exec: a dup of it; attach: the
     * container's output). An attach without stdin has no way in, and so
     * no resize either. */
    int sp[2];
    if (fds[0] < 0 || fds[1] < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
      rc = q_error_make(err, fds[0] < 0 ? EPROTO : errno, "exec tty streams");
      goto out_kill;
    }
    j->tty_fd = fds[0];
    j->relay_in = sp[1];
    fds[0] = o->in ? sp[0] : -1;
    if (!o->in)
      close(sp[0]);
    if ((j->relay_wake = eventfd(0, EFD_CLOEXEC)) < 0 ||
        (rc = pthread_create(&j->relay, NULL, relay_thread, j)) != 0) {
      rc = q_error_make(err, j->relay_wake < 0 ? errno : rc, "tty relay");
      goto out_kill;
    }
    j->relay_on = true;
  }
  if (!o->out) {
    j->drain[0] = fds[1];
    fds[1] = -1;
  }
  if (!o->err) {
    j->drain[1] = fds[2];
    fds[2] = -1;
  }
  if (attach) { /* nobody has to read an attach's output: drop it */
    for (int i = 0; i < 2; i++)
      if (j->drain[i] >= 0) {
        close(j->drain[i]);
        j->drain[i] = -1;
      }
  }
  atomic_store(&j->refs, 2);
  pthread_t t;
  if ((rc = pthread_create(&t, NULL, waiter_thread, j)) != 0) {
    rc = q_error_make(err, rc, "waiter thread");
    atomic_store(&j->refs, 1);
    goto out_kill;
  }
  pthread_detach(t);
  *proc = (cri_stream_proc){.stdin_fd = fds[0],
                            .stdout_fd = fds[1],
                            .stderr_fd = fds[2],
                            .exit_fd = j->efd,
                            .ops = &proc_ops,
                            .data = j};
  fds[0] = fds[1] = fds[2] = -1;
  j = NULL;
  rc = 0;
  goto out;
out_kill:
  if (!attach) {
    q_error *kerr = NULL;
    with_pod_sbx(j, kill_shared, NULL, &kerr);
    q_error_free(&kerr);
  }
  if (j->relay_on) {
    uint64_t one = 1;
    if (write(j->relay_wake, &one, sizeof one) < 0)
      q_warn(j->ctr_id, "exec: cannot stop the tty relay: %s", strerror(errno));
    pthread_join(j->relay, NULL);
    j->relay_on = false;
  }
out:
  for (int i = 0; i < 3; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  if (j) {
    atomic_store(&j->refs, 1);
    job_put(j);
  }
  cri_ctr_free(ctr);
  cri_pod_free(pod);
  return rc;
}

static int backend_exec(void *backend, const char *container_id, char *const argv[],
                        const struct cri_stream_opts *o, cri_stream_proc *proc, q_error **err)
{
  return start_proc(backend, false, container_id, argv, o, proc, err);
}

static int backend_attach(void *backend, const char *container_id, const struct cri_stream_opts *o,
                          cri_stream_proc *proc, q_error **err)
{
  return start_proc(backend, true, container_id, NULL, o, proc, err);
}

/* ---- backend: port forwarding ---- */

struct connect_arg {
  uint16_t port;
  int fd;
};

static int connect_local(void *arg, q_error **err)
{
  struct connect_arg *a = arg;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return q_error_make(err, errno, "socket");
  struct sockaddr_in sa = {
      .sin_family = AF_INET, .sin_port = htons(a->port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    int e = errno;
    close(fd);
    return q_error_make(err, e, "connect to port %u in the pod", a->port);
  }
  a->fd = fd;
  return 0;
}

static int backend_portforward(void *backend, const char *pod_id, uint16_t port, int *fd,
                               q_error **err)
{
  struct cri_pods *p = backend;
  struct cri_pod *pod = NULL;
  if (cri_state_get_pod(p->st, pod_id, &pod) < 0)
    return q_error_make(err, ENOENT, "pod %s not found", pod_id);
  int rc;
  struct connect_arg a = {.port = port, .fd = -1};
  json_t *ns = json_object_get(pod->ext, POD_EXT_NETNS);
  if (pod->state != CRI_POD_READY)
    rc = q_error_make(err, ESRCH, "pod %.12s is not ready", pod_id);
  else if (json_is_string(ns))
    rc = net_netns_run(json_string_value(ns), connect_local, &a, err);
  else
    rc = connect_local(&a, err); /* hostNetwork */
  cri_pod_free(pod);
  if (rc == 0)
    *fd = a.fd;
  return rc;
}

static const struct cri_stream_backend_ops backend_ops = {
    .exec = backend_exec,
    .attach = backend_attach,
    .portforward = backend_portforward,
};

/* ---- RPCs ---- */

static struct cri_pods *pods_of(struct cri_call *call)
{
  return cri_server_pods_ctx(cri_call_server(call));
}

static grpc_status_code stream_fail(struct cri_call *call, int rc, q_error **err)
{
  grpc_status_code code = rc == -EINVAL   ? GRPC_STATUS_INVALID_ARGUMENT
                          : rc == -ENOSPC ? GRPC_STATUS_RESOURCE_EXHAUSTED
                                          : GRPC_STATUS_UNAVAILABLE;
  cri_call_error(call, code, "%s: %s", cri_call_method(call), q_error_msg(*err));
  q_error_free(err);
  return code;
}

/* The running container behind a streaming request, by full id or prefix. */
static grpc_status_code running_ctr(struct cri_call *call, const char *id_in, char id[65])
{
  struct cri_pods *p = pods_of(call);
  struct cri_ctr *ctr = NULL;
  int e = id_in && *id_in ? cri_state_resolve_ctr(p->st, id_in, id) : -ENOENT;
  if (e < 0 || cri_state_get_ctr(p->st, id, &ctr) < 0)
    return cri_call_error(call, e == -EEXIST ? GRPC_STATUS_INVALID_ARGUMENT : GRPC_STATUS_NOT_FOUND,
                          "container '%.80s' %s", id_in ? id_in : "",
                          e == -EEXIST ? "is an ambiguous prefix" : "not found");
  bool running = ctr->state == CRI_CTR_RUNNING;
  cri_ctr_free(ctr);
  if (!running)
    return cri_call_error(call, GRPC_STATUS_FAILED_PRECONDITION, "container %.80s is not running",
                          id_in);
  return GRPC_STATUS_OK;
}

static grpc_status_code rpc_exec(struct cri_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage **resp)
{
  const Runtime__V1__ExecRequest *in = (const Runtime__V1__ExecRequest *)req;
  struct cri_pods *p = pods_of(call);
  char id[65];
  grpc_status_code code = running_ctr(call, in->container_id, id);
  if (code != GRPC_STATUS_OK)
    return code;
  struct cri_stream_opts o = {
      .tty = in->tty, .in = in->stdin, .out = in->stdout, .err = in->stderr};
  q_cleanup_error q_error *err = NULL;
  char *url = NULL;
  int rc = cri_stream_request_exec(p->stream, id, (const char *const *)in->cmd, in->n_cmd, &o, &url,
                                   &err);
  if (rc < 0)
    return stream_fail(call, rc, &err);
  Runtime__V1__ExecResponse *r = cri_call_new_msg(call, &runtime__v1__exec_response__descriptor);
  if (r)
    r->url = cri_call_strdup(call, url);
  free(url);
  if (!r || !r->url)
    return cri_call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "Exec: out of memory");
  *resp = &r->base;
  return GRPC_STATUS_OK;
}

static grpc_status_code rpc_attach(struct cri_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage **resp)
{
  const Runtime__V1__AttachRequest *in = (const Runtime__V1__AttachRequest *)req;
  struct cri_pods *p = pods_of(call);
  char id[65];
  grpc_status_code code = running_ctr(call, in->container_id, id);
  if (code != GRPC_STATUS_OK)
    return code;
  struct cri_stream_opts o = {
      .tty = in->tty, .in = in->stdin, .out = in->stdout, .err = in->stderr};
  q_cleanup_error q_error *err = NULL;
  char *url = NULL;
  int rc = cri_stream_request_attach(p->stream, id, &o, &url, &err);
  if (rc < 0)
    return stream_fail(call, rc, &err);
  Runtime__V1__AttachResponse *r =
      cri_call_new_msg(call, &runtime__v1__attach_response__descriptor);
  if (r)
    r->url = cri_call_strdup(call, url);
  free(url);
  if (!r || !r->url)
    return cri_call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "Attach: out of memory");
  *resp = &r->base;
  return GRPC_STATUS_OK;
}

static grpc_status_code rpc_port_forward(struct cri_call *call, const ProtobufCMessage *req,
                                         ProtobufCMessage **resp)
{
  const Runtime__V1__PortForwardRequest *in = (const Runtime__V1__PortForwardRequest *)req;
  struct cri_pods *p = pods_of(call);
  char id[65];
  struct cri_pod *pod = NULL;
  int e = in->pod_sandbox_id && *in->pod_sandbox_id
              ? cri_state_resolve_pod(p->st, in->pod_sandbox_id, id)
              : -ENOENT;
  if (e < 0 || cri_state_get_pod(p->st, id, &pod) < 0)
    return cri_call_error(call, GRPC_STATUS_NOT_FOUND, "pod sandbox '%.80s' not found",
                          in->pod_sandbox_id ? in->pod_sandbox_id : "");
  bool ready = pod->state == CRI_POD_READY;
  cri_pod_free(pod);
  if (!ready)
    return cri_call_error(call, GRPC_STATUS_FAILED_PRECONDITION, "pod %.80s is not ready",
                          in->pod_sandbox_id);
  q_cleanup_error q_error *err = NULL;
  char *url = NULL;
  int rc = cri_stream_request_portforward(p->stream, id, in->port, in->n_port, &url, &err);
  if (rc < 0)
    return stream_fail(call, rc, &err);
  Runtime__V1__PortForwardResponse *r =
      cri_call_new_msg(call, &runtime__v1__port_forward_response__descriptor);
  if (r)
    r->url = cri_call_strdup(call, url);
  free(url);
  if (!r || !r->url)
    return cri_call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "PortForward: out of memory");
  *resp = &r->base;
  return GRPC_STATUS_OK;
}

int cri_stream_rpc_start(struct cri_server *srv, struct cri_pods *p, q_error **err)
{
  struct cri_stream_config sc = {.address = p->cfg->stream_address,
                                 .port = p->cfg->stream_port,
                                 .ops = &backend_ops,
                                 .backend = p};
  int rc = cri_stream_server_start(&sc, &p->stream, err);
  if (rc < 0)
    return q_error_wrap(err, "streaming server");
  q_info(NULL, "streaming server on %s", cri_stream_server_url(p->stream));
  static const struct {
    const char *name;
    cri_handler_fn fn;
  } table[] = {{"Exec", rpc_exec}, {"Attach", rpc_attach}, {"PortForward", rpc_port_forward}};
  for (size_t i = 0; i < Q_ARRAY_SIZE(table); i++)
    if ((rc = cri_server_set_handler(srv, "RuntimeService", table[i].name, table[i].fn)) < 0)
      return q_error_make(err, -rc, "register RuntimeService/%s", table[i].name);
  return 0;
}

void cri_stream_rpc_stop(struct cri_pods *p)
{
  cri_stream_server_stop(p->stream);
  p->stream = NULL;
}
