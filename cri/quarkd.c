/* quarkd: the Quark CRI daemon.
 *
 *   quarkd [--config PATH] [--foreground] [--workers N]
 *   quarkd --check-config PATH      parse a config, print errors, exit 0/1
 *   quarkd --version
 *
 * Under systemd (Type=notify) it sends READY=1 once the socket accepts calls
 * and STOPPING=1 when it begins to stop.
 *
 * Signals: SIGTERM and SIGINT stop it gracefully (in-flight calls finish,
 * the socket is removed). They are blocked in every thread and taken with
 * sigwait in main, so no handler runs in async-signal context. */
#include <errno.h>
#include <getopt.h>
#include <grpc/grpc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "pods.h"
#include "server.h"
#include "state/state.h"

#ifndef QUARK_VERSION
#define QUARK_VERSION "0.0.0"
#endif

#define STOP_GRACE_MS 10000

static void usage(FILE *f)
{
  fprintf(f, "usage: quarkd [--config PATH] [--foreground] [--workers N]\n"
             "       quarkd --check-config PATH\n"
             "       quarkd --version\n"
             "The config path defaults to $" CRI_CONFIG_ENV " or " CRI_CONFIG_DEFAULT_PATH ".\n");
}

/* systemd's readiness protocol without libsystemd: one datagram to
 * $NOTIFY_SOCKET ("@name" is an abstract socket). A no-op outside systemd. */
static void sd_notify_state(const char *state)
{
  const char *path = getenv("NOTIFY_SOCKET");
  if (!path || (path[0] != '/' && path[0] != '@'))
    return;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  size_t len = strlen(path);
  if (len >= sizeof(sa.sun_path))
    return;
  memcpy(sa.sun_path, path, len);
  if (sa.sun_path[0] == '@')
    sa.sun_path[0] = '\0';
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return;
  if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
    q_warn(NULL, "sd_notify %s: %s", state, strerror(errno));
  close(fd);
}

static int check_config(const char *path)
{
  struct cri_config cfg;
  q_cleanup_error q_error *err = NULL;
  if (cri_config_load(&cfg, path, false, &err) < 0) {
    fprintf(stderr, "quarkd: %s\n", q_error_msg(err));
    return 1;
  }
  printf("%s: ok\n", path);
  cri_config_free(&cfg);
  return 0;
}

int main(int argc, char **argv)
{
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'},
      {"check-config", required_argument, NULL, 'C'},
      {"foreground", no_argument, NULL, 'f'},
      {"workers", required_argument, NULL, 'w'},
      {"version", no_argument, NULL, 'V'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *config_flag = NULL;
  bool foreground = false;
  long workers = 8;
  int c;
  while ((c = getopt_long(argc, argv, "c:fw:Vh", opts, NULL)) != -1) {
    switch (c) {
    case 'c':
      config_flag = optarg;
      break;
    case 'C':
      return check_config(optarg);
    case 'f':
      foreground = true;
      break;
    case 'w': {
      char *end;
      workers = strtol(optarg, &end, 10);
      if (*end || workers < 1 || workers > 256) {
        fprintf(stderr, "quarkd: --workers must be 1..256\n");
        return 2;
      }
      break;
    }
    case 'V':
      printf("quarkd %s (CRI runtime.v1)\n", QUARK_VERSION);
      return 0;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (optind != argc) {
    usage(stderr);
    return 2;
  }

  /* Before any thread exists, so that every thread inherits the mask. */
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGTERM);
  sigaddset(&stop_set, SIGINT);
  sigaddset(&stop_set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
  signal(SIGPIPE, SIG_IGN);
  /* CNI plugins are reaped by pid (quark/net.h): SIGCHLD must keep its
   * default action, even when a parent started us with it ignored (an
   * ignored SIGCHLD survives exec and would make waitpid fail). quarkd never
   * reaps with waitpid(-1). */
  signal(SIGCHLD, SIG_DFL);

  bool explicit_path;
  const char *config_path = cri_config_pick_path(config_flag, &explicit_path);
  struct cri_config cfg;
  q_cleanup_error q_error *err = NULL;
  if (cri_config_load(&cfg, config_path, !explicit_path, &err) < 0) {
    fprintf(stderr, "quarkd: %s\n", q_error_msg(err));
    return 1;
  }
  if (q_log_init(foreground ? NULL : cfg.log_file, cfg.debug_level, "quarkd", &err) < 0) {
    fprintf(stderr, "quarkd: %s\n", q_error_msg(err));
    cri_config_free(&cfg);
    return 1;
  }
  q_info(NULL, "quarkd %s starting (config %s)", QUARK_VERSION,
         cfg.source ? cfg.source : "defaults");

  int rc = 1;
  struct cri_state *state = NULL;
  struct cri_server *srv = NULL;
  bool image_up = false, pods_up = false;
  grpc_init();
  if (cri_state_open(cfg.state_root, &state, &err) < 0)
    goto out;
  if (cri_server_new(&cfg, state, &srv, &err) < 0 || cri_runtime_register(srv, &err) < 0)
    goto out;
  /* Before the image service: the runtime opens its own image store handle
   * (see pods.c) and reattaches to the sandboxes before any call arrives. */
  if (cri_pods_init(srv, &cfg, &err) < 0) {
    q_error_wrap(&err, "pod runtime");
    goto out;
  }
  pods_up = true;
  if (cri_image_init(srv, &cfg, &err) < 0) {
    q_error_wrap(&err, "image service");
    goto out;
  }
  image_up = true;
  if (cri_server_start(srv, (unsigned)workers, &err) < 0)
    goto out;
  q_info(NULL, "ready");
  sd_notify_state("READY=1");

  for (;;) {
    int sig = 0;
    if (sigwait(&stop_set, &sig) != 0)
      continue;
    if (sig == SIGHUP) {
      q_info(NULL, "SIGHUP ignored: restart quarkd to reload its config");
      continue;
    }
    q_info(NULL, "signal %d: stopping", sig);
    sd_notify_state("STOPPING=1");
    break;
  }
  rc = 0;

out:
  if (err)
    q_error_log(NULL, "%s", q_error_msg(err));
  if (err && !foreground)
    fprintf(stderr, "quarkd: %s\n", q_error_msg(err));
  if (srv)
    cri_server_stop(srv, STOP_GRACE_MS);
  if (image_up)
    cri_image_fini(srv);
  if (pods_up)
    cri_pods_fini(srv);
  cri_server_free(srv);
  cri_state_close(state);
  grpc_shutdown();
  q_info(NULL, "quarkd stopped");
  cri_config_free(&cfg);
  return rc;
}
