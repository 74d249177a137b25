/* CRI streaming server: the HTTP endpoint behind the Exec, Attach and
 * PortForward RPCs. Prefix: cri_stream_.
 *
 * The RPC handlers call cri_stream_request_*() with the validated CRI
 * request; they get back a single-use URL that kubelet (or crictl) then opens
 * with an upgrade to SPDY/3.1 or WebSocket. The server speaks the Kubernetes
 * remote-command protocols (channel.k8s.io, v2..v5.channel.k8s.io and the
 * WebSocket base64 variants) and portforward.k8s.io, and asks a backend (an
 * ops table; quarkd implements it with the sandbox) to start processes and
 * open pod ports.
 *
 * Threads: the server runs an accept thread and one thread per connection.
 * Every backend op may be called from any of them, concurrently.
 */
#ifndef QUARK_CRI_STREAM_H
#define QUARK_CRI_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <quark/common.h>

typedef struct cri_stream_server cri_stream_server;

/* What the client asked for (ExecRequest/AttachRequest fields). */
struct cri_stream_opts {
  bool tty;
  bool in;  /* stdin */
  bool out; /* stdout */
  bool err; /* stderr (never with tty: the terminal merges it into stdout) */
};

/* A process a session talks to: a new exec'd process, or for attach the
 * container's main process. The backend fills it in; the session owns the
 * three stdio fds from then on (it sets them non-blocking and closes them),
 * the backend keeps exit_fd and everything behind data.
 *
 * - stdin_fd: where stdin bytes go (-1 when opts.in is false).
 * - stdout_fd / stderr_fd: output (-1 when not asked for). With a tty the
 *   terminal's output comes on stdout_fd; stdin_fd may then be the same fd
 *   or a dup of it.
 * - exit_fd: becomes readable (POLLIN) once the process has exited; a pidfd
 *   or an eventfd are both fine. The session ends then, even when the client
 *   still has stdin open, after it has drained what stdout/stderr hold. */
typedef struct cri_stream_proc cri_stream_proc;
struct cri_stream_proc_ops {
  /* Terminal size from a resize message; optional. */
  int (*resize)(cri_stream_proc *p, uint16_t width, uint16_t height);
  /* The client closed stdin; the session has just closed stdin_fd (unless it
   * is the terminal that stdout_fd also uses). Optional. Attach implements
   * StdinOnce here (close the container's own stdin when the container was
   * created with StdinOnce); a tty backend may send the terminal its EOF. */
  void (*close_stdin)(cri_stream_proc *p);
  /* Called once exit_fd is readable: the exit code (0..255; 128+signal for a
   * signal). Returns 0, or -EAGAIN when it cannot tell yet (asked again
   * after a short sleep), or another -errno that ends the session with an
   * error status. */
  int (*wait)(cri_stream_proc *p, int *exit_code);
  /* The session is over (exited: wait() returned the status; false when the
   * client went away first). The backend decides what happens to a process
   * still running (an exec'd one is usually killed, an attached container
   * is left alone) and frees what data points to. Called exactly once. */
  void (*release)(cri_stream_proc *p, bool exited);
};
struct cri_stream_proc {
  int stdin_fd, stdout_fd, stderr_fd, exit_fd;
  const struct cri_stream_proc_ops *ops;
  void *data;
};

struct cri_stream_backend_ops {
  /* Starts argv (argv[argc] == NULL) in a container. On success fills *p
   * (all four fds as described above) and returns 0; otherwise -errno with
   * *err set: the message goes to the client on the error stream. */
  int (*exec)(void *backend, const char *container_id, char *const argv[],
              const struct cri_stream_opts *o, cri_stream_proc *p, q_error **err);
  /* Connects to the main process of a running container. */
  int (*attach)(void *backend, const char *container_id, const struct cri_stream_opts *o,
                cri_stream_proc *p, q_error **err);
  /* Opens a byte stream to localhost:port inside the pod's network
   * namespace; *fd becomes the session's (it closes it; shutdown(SHUT_WR)
   * is used for the client's half-close when *fd is a socket). */
  int (*portforward)(void *backend, const char *pod_id, uint16_t port, int *fd, q_error **err);
};

struct cri_stream_config {
  /* IPv4/IPv6 literal to listen on; NULL: "127.0.0.1" (config key StreamAddress) */
  const char *address;
  /* 0: a free port (config key StreamPort) */
  uint16_t port;
  unsigned token_ttl_ms;    /* 0: 60000 */
  unsigned max_tokens;      /* 0: 1000 outstanding */
  unsigned max_conns;       /* 0: 128 concurrent connections; more get 503 */
  unsigned idle_timeout_ms; /* 0: 4 hours without traffic ends a session */
  const struct cri_stream_backend_ops *ops;
  void *backend;
};

/* Binds and starts serving. The address actually bound (with the free port
 * picked) is in cri_stream_server_url(). */
int cri_stream_server_start(const struct cri_stream_config *cfg, cri_stream_server **out,
                            q_error **err);
/* "http://127.0.0.1:40123" (IPv6 in brackets); valid until stop. */
const char *cri_stream_server_url(const cri_stream_server *srv);
uint16_t cri_stream_server_port(const cri_stream_server *srv);
/* Stops accepting, ends every session (their procs are released), drops the
 * tokens and frees srv. NULL is fine. */
void cri_stream_server_stop(cri_stream_server *srv);

/* Each request_* validates the request and mints a token. On success *url
 * (caller frees) is "http://<addr>:<port>/{exec,attach,portforward}/<token>".
 * Errors: -EINVAL for an invalid request (map to INVALID_ARGUMENT), -ENOSPC
 * when max_tokens are outstanding (map to RESOURCE_EXHAUSTED), -ESHUTDOWN
 * while the server stops. PortForward's ports may be empty for SPDY (each
 * stream names its port); WebSocket port forwarding serves exactly these
 * ports, in this order. */
int cri_stream_request_exec(cri_stream_server *srv, const char *container_id,
                            const char *const *cmd, size_t ncmd, const struct cri_stream_opts *o,
                            char **url, q_error **err);
int cri_stream_request_attach(cri_stream_server *srv, const char *container_id,
                              const struct cri_stream_opts *o, char **url, q_error **err);
int cri_stream_request_portforward(cri_stream_server *srv, const char *pod_id, const int32_t *ports,
                                   size_t nports, char **url, q_error **err);
/* Tokens outstanding now (expired ones not counted). */
size_t cri_stream_tokens_outstanding(cri_stream_server *srv);

/* ---- client side (the quark CLI), over WebSocket ---- */

struct cri_stream_client_io {
  int in_fd;    /* what goes to the process's stdin, -1 for none */
  int out_fd;   /* its stdout (and a tty's output) */
  int err_fd;   /* its stderr; -1: onto out_fd */
  bool tty;     /* send the window size of tty_fd, again when winch_fd is readable */
  int tty_fd;   /* -1 without a tty */
  int winch_fd; /* a self-pipe the caller's SIGWINCH handler writes to, or -1 */
};
/* Runs a remote command session at url (an Exec or Attach URL) with
 * v5.channel.k8s.io (else v4). Returns the process's exit code (0..255) or
 * -errno with *err (the server's message when it refused the session). */
int cri_stream_client_exec(const char *url, const struct cri_stream_client_io *io, q_error **err);
/* Forwards the byte stream fd to the single port of a PortForward URL until
 * either side closes it. 0, or -errno with *err (the pod's error text when
 * the port could not be reached). */
int cri_stream_client_portforward(const char *url, int fd, q_error **err);

#endif
