/* `quark exec -i/-t`, `quark attach` and `quark port-forward`: the CRI
 * streaming RPCs (Exec, Attach, PortForward) and a client for the URL they
 * return. --url prints the URL instead (for another client: the test suite's
 * Go client, or curl for a look at the handshake). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "stream.h"

#define RT "/runtime.v1.RuntimeService/"

static int call_failed(q_error *err)
{
  int rc = quark_cli_fail("%s", q_error_msg(err));
  q_error_free(&err);
  return rc;
}

struct stream_flags {
  bool in, tty, url, err_off;
};

/* Leading -i/-t/-it/--stdin/--tty/--url/--no-stderr; returns the index of
 * the first other argument, or -1 for an unknown flag. */
static int parse_flags(int argc, char **argv, struct stream_flags *f)
{
  int i = 1;
  for (; i < argc && argv[i][0] == '-' && strcmp(argv[i], "--") != 0; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--stdin"))
      f->in = true;
    else if (!strcmp(a, "--tty"))
      f->tty = true;
    else if (!strcmp(a, "--url"))
      f->url = true;
    else if (!strcmp(a, "--no-stderr"))
      f->err_off = true;
    else if (a[1] && strspn(a + 1, "it") == strlen(a + 1)) {
      f->in |= strchr(a, 'i') != NULL;
      f->tty |= strchr(a, 't') != NULL;
    } else
      return -1;
  }
  return i;
}

static int winch_pipe[2] = {-1, -1};

static void on_winch(int sig)
{
  int e = errno;
  if (write(winch_pipe[1], "w", 1) < 0) {
  }
  errno = e;
}

/* Runs the session at url on this process's stdio; the exit code of the
 * remote process (1 with a message when the session failed). With a tty on
 * our side the local terminal is raw meanwhile (the remote one does the
 * line editing and echo) and window size changes are passed on. */
static int stream_run(const char *url, bool in, bool tty)
{
  struct cri_stream_client_io io = {
      .in_fd = in ? STDIN_FILENO : -1,
      .out_fd = STDOUT_FILENO,
      .err_fd = STDERR_FILENO,
      .tty = tty,
      .tty_fd = -1,
      .winch_fd = -1,
  };
  struct termios saved;
  bool raw = false;
  if (tty && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
    struct termios t = saved;
    cfmakeraw(&t);
    raw = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
    io.tty_fd = STDIN_FILENO;
    if (pipe2(winch_pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
      signal(SIGWINCH, on_winch);
      io.winch_fd = winch_pipe[0];
    }
  }
  q_error *err = NULL;
  int rc = cri_stream_client_exec(url, &io, &err);
  if (raw)
    tcsetattr(STDIN_FILENO, TCSANOW, &saved);
  if (io.winch_fd >= 0) {
    signal(SIGWINCH, SIG_DFL);
    close(winch_pipe[0]);
    close(winch_pipe[1]);
  }
  if (rc < 0)
    return call_failed(err);
  return rc;
}

static int print_url(const char *url)
{
  printf("%s\n", url);
  return 0;
}

int quark_cmd_exec_stream(struct quark_cli *cli, int argc, char **argv)
{
  struct stream_flags f = {0};
  int i = parse_flags(argc, argv, &f);
  if (i < 0 || i >= argc) {
    fprintf(stderr, "usage: quark exec [-i] [-t] [--url] CONTAINER [--] COMMAND [ARG...]\n");
    return 2;
  }
  const char *id = argv[i++];
  if (i < argc && !strcmp(argv[i], "--"))
    i++;
  if (i >= argc) {
    fprintf(stderr, "usage: quark exec [-i] [-t] [--url] CONTAINER [--] COMMAND [ARG...]\n");
    return 2;
  }
  Runtime__V1__ExecRequest req = RUNTIME__V1__EXEC_REQUEST__INIT;
  req.container_id = (char *)id;
  req.cmd = &argv[i];
  req.n_cmd = (size_t)(argc - i);
  req.tty = f.tty;
  req.stdin = f.in;
  req.stdout = true;
  req.stderr = !f.tty && !f.err_off;
  Runtime__V1__ExecResponse *r = NULL;
  q_error *err = NULL;
  if (quark_cli_call(cli, RT "Exec", &req.base, &runtime__v1__exec_response__descriptor,
                     (ProtobufCMessage **)&r, &err) < 0)
    return call_failed(err);
  int rc = f.url ? print_url(r->url) : stream_run(r->url, f.in, f.tty);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return rc;
}

int quark_cmd_attach(struct quark_cli *cli, int argc, char **argv)
{
  struct stream_flags f = {0};
  int i = parse_flags(argc, argv, &f);
  if (i < 0 || i != argc - 1) {
    fprintf(stderr, "usage: quark attach [-i] [-t] [--url] CONTAINER\n");
    return 2;
  }
  Runtime__V1__AttachRequest req = RUNTIME__V1__ATTACH_REQUEST__INIT;
  req.container_id = argv[i];
  req.tty = f.tty;
  req.stdin = f.in;
  req.stdout = true;
  req.stderr = !f.tty && !f.err_off;
  Runtime__V1__AttachResponse *r = NULL;
  q_error *err = NULL;
  if (quark_cli_call(cli, RT "Attach", &req.base, &runtime__v1__attach_response__descriptor,
                     (ProtobufCMessage **)&r, &err) < 0)
    return call_failed(err);
  int rc = f.url ? print_url(r->url) : stream_run(r->url, f.in, f.tty);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return rc;
}

/* A PortForward URL for pod_id and its ports (one token, single use). */
static int portforward_url(const struct quark_cli *cli, const char *pod_id, int32_t *ports,
                           size_t n, char **url, q_error **err)
{
  Runtime__V1__PortForwardRequest req = RUNTIME__V1__PORT_FORWARD_REQUEST__INIT;
  req.pod_sandbox_id = (char *)pod_id;
  req.port = ports;
  req.n_port = n;
  Runtime__V1__PortForwardResponse *r = NULL;
  int rc =
      quark_cli_call(cli, RT "PortForward", &req.base,
                     &runtime__v1__port_forward_response__descriptor, (ProtobufCMessage **)&r, err);
  if (rc < 0)
    return rc;
  *url = strdup(r->url);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return *url ? 0 : q_error_make(err, ENOMEM, "url");
}

struct pf_conn {
  const struct quark_cli *cli;
  const char *pod;
  int32_t remote;
  int fd;
};

/* One local connection: a token of its own (tokens are single use), then
 * the bytes both ways until either side closes. */
static void *pf_conn_thread(void *arg)
{
  struct pf_conn *c = arg;
  char *url = NULL;
  q_error *err = NULL;
  if (portforward_url(c->cli, c->pod, &c->remote, 1, &url, &err) < 0 ||
      cri_stream_client_portforward(url, c->fd, &err) < 0) {
    fprintf(stderr, "quark: port %d: %s\n", c->remote, q_error_msg(err));
    q_error_free(&err);
  }
  free(url);
  close(c->fd);
  free(c);
  return NULL;
}

static volatile sig_atomic_t pf_stop;

static void on_pf_signal(int sig)
{
  pf_stop = sig;
}

static int port_forward_run(const struct quark_cli *cli, const char *pod, const int32_t *local,
                            const int32_t *remote, size_t n)
{
  struct pollfd *pfd = calloc(n, sizeof *pfd);
  if (!pfd)
    return quark_cli_fail("out of memory");
  int rc = 0;
  for (size_t i = 0; i < n; i++)
    pfd[i].fd = -1;
  for (size_t i = 0; i < n && rc == 0; i++) {
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)local[i]),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
      rc = quark_cli_fail("listen on 127.0.0.1:%d: %s", local[i], strerror(errno));
      if (fd >= 0)
        close(fd);
      break;
    }
    pfd[i] = (struct pollfd){.fd = fd, .events = POLLIN};
    printf("Forwarding from 127.0.0.1:%u -> %d\n", ntohs(sa.sin_port), remote[i]);
  }
  fflush(stdout);
  struct sigaction sa = {.sa_handler = on_pf_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  while (rc == 0 && !pf_stop) {
    if (poll(pfd, n, -1) < 0) {
      if (errno == EINTR)
        continue;
      rc = quark_cli_fail("poll: %s", strerror(errno));
      break;
    }
    for (size_t i = 0; i < n; i++) {
      if (!(pfd[i].revents & POLLIN))
        continue;
      int fd = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC);
      if (fd < 0)
        continue;
      struct pf_conn *c = malloc(sizeof *c);
      pthread_t t;
      if (c)
        *c = (struct pf_conn){.cli = cli, .pod = pod, .remote = remote[i], .fd = fd};
      if (!c || pthread_create(&t, NULL, pf_conn_thread, c) != 0) {
        close(fd);
        free(c);
        continue;
      }
      pthread_detach(t);
    }
  }
  for (size_t i = 0; i < n; i++)
    if (pfd[i].fd >= 0)
      close(pfd[i].fd);
  free(pfd);
  return rc;
}

int quark_cmd_port_forward(struct quark_cli *cli, int argc, char **argv)
{
  struct stream_flags f = {0};
  int i = parse_flags(argc, argv, &f);
  if (i < 0 || i + 2 > argc || (f.in || f.tty)) {
    fprintf(stderr, "usage: quark port-forward [--url] POD [LOCAL:]REMOTE...\n");
    return 2;
  }
  const char *pod = argv[i++];
  size_t n = (size_t)(argc - i);
  int32_t *remote = calloc(n, sizeof *remote);
  int32_t *local = calloc(n, sizeof *local);
  int rc = 0;
  if (!remote || !local) {
    rc = quark_cli_fail("out of memory");
    goto out;
  }
  for (size_t k = 0; k < n; k++) {
    const char *a = argv[i + (int)k];
    char *end;
    long l = strtol(a, &end, 10), r = l;
    if (*end == ':')
      r = strtol(end + 1, &end, 10);
    if (*end || l < 0 || l > 65535 || r < 1 || r > 65535) {
      rc = quark_cli_fail("port '%s': want [LOCAL:]REMOTE with ports in 1..65535", a);
      goto out;
    }
    local[k] = (int32_t)l;
    remote[k] = (int32_t)r;
  }
  if (f.url) {
    char *url = NULL;
    q_error *err = NULL;
    if (portforward_url(cli, pod, remote, n, &url, &err) < 0) {
      rc = call_failed(err);
      goto out;
    }
    rc = print_url(url);
    free(url);
    goto out;
  }
  rc = port_forward_run(cli, pod, local, remote, n);
out:
  free(remote);
  free(local);
  return rc;
}
