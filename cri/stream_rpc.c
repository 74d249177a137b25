/* Exec, Attach and PortForward: the RPCs answer with a URL on the streaming
 * server (cri/stream/stream.h), and this file is that server's backend.
 *
 * What the sandbox control protocol (quark/sbx_client.h) allows today:
 * - exec without stdin and without a tty: the command runs through
 *   sbx_container_exec (output captured, no limit on time) on a thread of
 *   its own, and its output is fed to the session through pipes once it
 *   ends. Interactive exec (stdin or tty) and Attach need a streaming call
 *   the protocol does not have: their RPCs answer UNIMPLEMENTED saying so.
 * - port forwarding: a TCP connection to 127.0.0.1:port opened inside the
 *   pod's network namespace (guest sockets are host sockets there), or in
 *   the host's for hostNetwork pods. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pods.h"
#include "stream.h"

#define EXEC_OUT_CAP (16u << 20)

/* ---- backend: exec ---- */

struct exec_job {
  atomic_int refs; /* the thread's and the session's */
  struct cri_pods *p;
  struct cri_pod_entry *e;
  struct sbx_client *sbx;
  struct sbx_client *own; /* a connection of its own (cri_pods_sbx_private), or NULL */
  char id[65];
  char **argv;
  int out_w, err_w, efd;
  int exit_code;
  int rc;
};

static void job_put(struct exec_job *j)
{
  if (atomic_fetch_sub(&j->refs, 1) != 1)
    return;
  if (j->own)
    sbx_client_close(j->own);
  cri_pods_put(j->p, j->e);
  cri_spec_strv_free(j->argv);
  if (j->out_w >= 0)
    close(j->out_w);
  if (j->err_w >= 0)
    close(j->err_w);
  if (j->efd >= 0)
    close(j->efd);
  free(j);
}

static void *exec_thread(void *arg)
{
  struct exec_job *j = arg;
  struct sbx_exec_result r = {0};
  q_cleanup_error q_error *err = NULL;
  j->rc =
      sbx_container_exec(j->sbx, j->id, (const char *const *)j->argv, -1, EXEC_OUT_CAP, &r, &err);
  if (j->rc == 0) {
    j->exit_code = r.exit_code;
    if (j->out_w >= 0 && r.out_len)
      q_write_all(j->out_w, r.out, r.out_len);
    if (j->err_w >= 0 && r.err_len)
      q_write_all(j->err_w, r.err, r.err_len);
  } else if (j->err_w >= 0) {
    /* The session reads the failure on stderr; exit 126 as a shell says
     * "cannot execute". */
    const char *m = q_error_msg(err);
    q_write_all(j->err_w, m, strlen(m));
    q_write_all(j->err_w, "\n", 1);
  }
  sbx_exec_result_clear(&r);
  if (j->out_w >= 0)
    close(j->out_w);
  if (j->err_w >= 0)
    close(j->err_w);
  j->out_w = j->err_w = -1;
  uint64_t one = 1;
  if (write(j->efd, &one, sizeof(one)) < 0)
    q_warn(j->id, "exec: cannot signal the exit: %s", strerror(errno));
  job_put(j);
  return NULL;
}

static int exec_wait(cri_stream_proc *proc, int *exit_code)
{
  struct exec_job *j = proc->data;
  *exit_code = j->rc == 0 ? j->exit_code : 126;
  return 0;
}

static void exec_release(cri_stream_proc *proc, bool exited)
{
  /* A command the client left keeps running until it ends on its own: the
   * sandbox protocol has no way to kill one exec. */
  job_put(proc->data);
}

static const struct cri_stream_proc_ops exec_proc_ops = {
    .wait = exec_wait,
    .release = exec_release,
};

static int backend_exec(void *backend, const char *container_id, char *const argv[],
                        const struct cri_stream_opts *o, cri_stream_proc *proc, q_error **err)
{
  struct cri_pods *p = backend;
  if (o->tty || o->in)
    return q_error_make(err, ENOTSUP,
                        "interactive exec (stdin or tty) needs a streaming exec request in the "
                        "sandbox control protocol, which it does not have yet");
  struct cri_ctr *ctr = NULL;
  struct cri_pod *pod = NULL;
  if (cri_state_get_ctr(p->st, container_id, &ctr) < 0 ||
      cri_state_get_pod(p->st, ctr->pod_id, &pod) < 0) {
    cri_ctr_free(ctr);
    return q_error_make(err, ENOENT, "container %s not found", container_id);
  }
  int rc = 0;
  struct exec_job *j = NULL;
  struct cri_pod_entry *e = NULL;
  int outp[2] = {-1, -1}, errp[2] = {-1, -1};
  if (ctr->state != CRI_CTR_RUNNING) {
    rc = q_error_make(err, EBUSY, "container %.12s is not running", container_id);
    goto out;
  }
  if (!(e = cri_pods_get(p, pod->id)) || !(j = calloc(1, sizeof(*j)))) {
    rc = q_error_make(err, ENOMEM, "exec");
    goto out;
  }
  j->out_w = j->err_w = j->efd = -1;
  /* The command may run for hours: not on the pod's shared connection. */
  j->own = cri_pods_sbx_private(pod);
  if (!(j->sbx = j->own ? j->own : cri_pods_sbx(p, e, pod, &rc, err)))
    goto out;
  size_t n = 0;
  while (argv[n])
    n++;
  j->argv = calloc(n + 1, sizeof(char *));
  for (size_t i = 0; j->argv && i < n; i++)
    if (!(j->argv[i] = strdup(argv[i]))) {
      rc = q_error_make(err, ENOMEM, "exec");
      goto out;
    }
  if (!j->argv) {
    rc = q_error_make(err, ENOMEM, "exec");
    goto out;
  }
  if ((o->out && pipe2(outp, O_CLOEXEC) < 0) || (o->err && pipe2(errp, O_CLOEXEC) < 0) ||
      (j->efd = eventfd(0, EFD_CLOEXEC)) < 0) {
    rc = q_error_make(err, errno, "exec pipes");
    goto out;
  }
  snprintf(j->id, sizeof(j->id), "%s", container_id);
  j->p = p;
  j->e = e;
  e = NULL;
  j->out_w = outp[1];
  j->err_w = errp[1];
  outp[1] = errp[1] = -1;
  atomic_store(&j->refs, 2);
  pthread_t t;
  if ((rc = pthread_create(&t, NULL, exec_thread, j)) != 0) {
    rc = q_error_make(err, rc, "exec thread");
    atomic_store(&j->refs, 1);
    goto out;
  }
  pthread_detach(t);
  *proc = (cri_stream_proc){.stdin_fd = -1,
                            .stdout_fd = outp[0],
                            .stderr_fd = errp[0],
                            .exit_fd = j->efd,
                            .ops = &exec_proc_ops,
                            .data = j};
  outp[0] = errp[0] = -1;
  j = NULL;
  rc = 0;
out:
  for (int i = 0; i < 2; i++) {
    if (outp[i] >= 0)
      close(outp[i]);
    if (errp[i] >= 0)
      close(errp[i]);
  }
  if (j) {
    if (!j->p) { /* never handed over: free by hand */
      if (j->own)
        sbx_client_close(j->own);
      cri_spec_strv_free(j->argv);
      if (j->efd >= 0)
        close(j->efd);
      free(j);
    } else {
      job_put(j);
    }
  }
  cri_pods_put(p, e);
  cri_ctr_free(ctr);
  cri_pod_free(pod);
  return rc;
}

static int backend_attach(void *backend, const char *container_id, const struct cri_stream_opts *o,
                          cri_stream_proc *p, q_error **err)
{
  return q_error_make(err, ENOTSUP,
                      "attach needs the container's stdio from the sandbox, which its control "
                      "protocol does not offer yet");
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
  if (in->tty || in->stdin)
    return cri_call_error(call, GRPC_STATUS_UNIMPLEMENTED,
                          "Exec with stdin or a tty: the sandbox control protocol has no "
                          "streaming exec yet (non-interactive exec works)");
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
  char id[65];
  grpc_status_code code = running_ctr(call, in->container_id, id);
  if (code != GRPC_STATUS_OK)
    return code;
  return cri_call_error(call, GRPC_STATUS_UNIMPLEMENTED,
                        "Attach: the sandbox control protocol does not hand out a container's "
                        "stdio yet");
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
