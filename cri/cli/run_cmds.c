/* `quark run / logs / exec`: a pod with one container through the CRI
 * RuntimeService, its CRI log file read directly (quark runs on the node),
 * and ExecSync.
 *
 * CRI log lines are "<RFC3339Nano> <stdout|stderr> <P|F> <message>": F ends
 * a line, P is a piece of a longer one, continued by the next record of the
 * same stream. Both tags are printed as they come (a P record without a
 * newline), so long lines come out whole. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define RT "/runtime.v1.RuntimeService/"
#define POLL_MS 100
#define STATUS_EVERY 5 /* polls between ContainerStatus calls while following */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
  interrupted = sig;
}

static int call_failed(q_error *err)
{
  int rc = quark_cli_fail("%s", q_error_msg(err));
  q_error_free(&err);
  return rc;
}

static void sleep_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int ctr_status(const struct quark_cli *cli, const char *id,
                      Runtime__V1__ContainerStatusResponse **out, q_error **err)
{
  Runtime__V1__ContainerStatusRequest req = RUNTIME__V1__CONTAINER_STATUS_REQUEST__INIT;
  req.container_id = (char *)id;
  return quark_cli_call(cli, RT "ContainerStatus", &req.base,
                        &runtime__v1__container_status_response__descriptor,
                        (ProtobufCMessage **)out, err);
}

/* Prints one CRI log record; returns false on a line that is not one. */
static bool print_record(char *line, bool timestamps)
{
  char *ts = line, *sp1 = strchr(line, ' ');
  if (!sp1)
    return false;
  *sp1 = '\0';
  char *stream = sp1 + 1, *sp2 = strchr(stream, ' ');
  if (!sp2)
    return false;
  *sp2 = '\0';
  char *tag = sp2 + 1, *msg;
  char *sp3 = strchr(tag, ' ');
  if (sp3) {
    *sp3 = '\0';
    msg = sp3 + 1;
  } else {
    msg = tag + strlen(tag);
  }
  FILE *f = !strcmp(stream, "stderr") ? stderr : stdout;
  if (timestamps)
    fprintf(f, "%s ", ts);
  fputs(msg, f);
  if (strcmp(tag, "P") != 0)
    fputc('\n', f);
  fflush(f);
  return true;
}

struct log_reader {
  FILE *f;
  ino_t ino;
  char *buf;
  size_t len, cap;
};

/* Prints every whole record available now. A log rotated under us (another
 * inode at the path) is reopened from its start after the old one is
 * drained. */
static void read_records(struct log_reader *r, const char *path, bool timestamps)
{
  for (;;) {
    if (!r->f) {
      r->f = fopen(path, "re");
      struct stat sb;
      if (!r->f || fstat(fileno(r->f), &sb) < 0)
        return;
      r->ino = sb.st_ino;
    }
    int c;
    while ((c = fgetc(r->f)) != EOF) {
      if (r->len + 1 >= r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 4096;
        char *nb = realloc(r->buf, ncap);
        if (!nb)
          return;
        r->buf = nb;
        r->cap = ncap;
      }
      if (c == '\n') {
        r->buf[r->len] = '\0';
        if (!print_record(r->buf, timestamps))
          fprintf(stderr, "quark: skipping a malformed log line\n");
        r->len = 0;
      } else {
        r->buf[r->len++] = (char)c;
      }
    }
    clearerr(r->f);
    struct stat sb;
    if (stat(path, &sb) == 0 && sb.st_ino != r->ino) {
      fclose(r->f);
      r->f = NULL;
      r->len = 0;
      continue;
    }
    return;
  }
}

/* Prints the log of container id; with follow, until the container is no
 * longer running (or interrupted). *exit_code gets its exit code when it
 * exited. */
static int show_log(const struct quark_cli *cli, const char *id, bool follow, bool timestamps,
                    int *exit_code, q_error **err)
{
  Runtime__V1__ContainerStatusResponse *st = NULL;
  int rc = ctr_status(cli, id, &st, err);
  if (rc < 0)
    return rc;
  q_cleanup_free char *path =
      st->status && st->status->log_path ? strdup(st->status->log_path) : NULL;
  q_cleanup_free char *full_id = st->status ? strdup(st->status->id) : NULL;
  protobuf_c_message_free_unpacked(&st->base, NULL);
  if (!path || !*path || !full_id)
    return q_error_make(err, ENOENT, "container %s has no log file", id);
  struct log_reader r = {0};
  for (int polls = 0;; polls++) {
    read_records(&r, path, timestamps);
    if (!follow || interrupted)
      break;
    if (polls % STATUS_EVERY == 0) {
      st = NULL;
      if ((rc = ctr_status(cli, full_id, &st, err)) < 0)
        break;
      bool running = st->status->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING ||
                     st->status->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED;
      if (!running && exit_code)
        *exit_code = st->status->exit_code;
      protobuf_c_message_free_unpacked(&st->base, NULL);
      if (!running) {
        read_records(&r, path, timestamps); /* what it wrote before it exited */
        break;
      }
    }
    sleep_ms(POLL_MS);
  }
  if (r.f)
    fclose(r.f);
  free(r.buf);
  return rc;
}

int quark_cmd_logs(struct quark_cli *cli, int argc, char **argv)
{
  bool follow = false, timestamps = false;
  static const struct option opts[] = {{"follow", no_argument, NULL, 'f'},
                                       {"timestamps", no_argument, NULL, 't'},
                                       {NULL, 0, NULL, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "+ft", opts, NULL)) != -1) {
    if (c == 'f')
      follow = true;
    else if (c == 't')
      timestamps = true;
    else
      return 2;
  }
  if (optind + 1 != argc) {
    fprintf(stderr, "usage: quark logs [-f] [-t] CONTAINER\n");
    return 2;
  }
  signal(SIGINT, on_interrupt);
  signal(SIGTERM, on_interrupt);
  q_error *err = NULL;
  if (show_log(cli, argv[optind], follow, timestamps, NULL, &err) < 0)
    return call_failed(err);
  return 0;
}

int quark_cmd_exec(struct quark_cli *cli, int argc, char **argv)
{
  /* The global --timeout SEC is the command's timeout here (ExecSync kills
   * it then and quark exits 124, like timeout(1)); without it, none. */
  if (argc > 1 && argv[1][0] == '-' && strcmp(argv[1], "--") != 0)
    return quark_cmd_exec_stream(cli, argc, argv); /* -i, -t, --url: streaming Exec */
  int optind_ = 1;
  if (optind_ < argc && !strcmp(argv[optind_], "--"))
    optind_++;
  if (argc - optind_ < 2) {
    fprintf(stderr, "usage: quark [--timeout SEC] exec CONTAINER [--] COMMAND [ARG...]\n");
    return 2;
  }
  const char *id = argv[optind_++];
  if (optind_ < argc && !strcmp(argv[optind_], "--"))
    optind_++;
  if (optind_ >= argc) {
    fprintf(stderr, "usage: quark [--timeout SEC] exec CONTAINER [--] COMMAND [ARG...]\n");
    return 2;
  }
  long timeout_s = cli->timeout_set ? (cli->timeout_ms + 999) / 1000 : 0;
  Runtime__V1__ExecSyncRequest req = RUNTIME__V1__EXEC_SYNC_REQUEST__INIT;
  req.container_id = (char *)id;
  req.cmd = &argv[optind_];
  req.n_cmd = (size_t)(argc - optind_);
  req.timeout = timeout_s;
  /* The call lasts as long as the command may. */
  struct quark_cli long_cli = *cli;
  long_cli.timeout_ms = timeout_s ? (int)(timeout_s + 10) * 1000 : 24 * 3600 * 1000;
  Runtime__V1__ExecSyncResponse *r = NULL;
  q_error *err = NULL;
  if (quark_cli_call(&long_cli, RT "ExecSync", &req.base,
                     &runtime__v1__exec_sync_response__descriptor, (ProtobufCMessage **)&r,
                     &err) < 0) {
    bool timed_out = strstr(q_error_msg(err), "DEADLINE_EXCEEDED") != NULL;
    call_failed(err);
    return timed_out ? 124 : 1;
  }
  /* protobuf-c leaves data NULL for an empty bytes field. */
  if (r->stdout.len > 0)
    fwrite(r->stdout.data, 1, r->stdout.len, stdout);
  if (r->stderr.len > 0)
    fwrite(r->stderr.data, 1, r->stderr.len, stderr);
  int code = r->exit_code;
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return code;
}

/* ---- quark run ---- */

static void run_usage(void)
{
  fprintf(stderr, "usage: quark run [--name NAME] [--env K=V]... [--workdir DIR] [--log-dir DIR]\n"
                  "                 [--handler H] [--keep] IMAGE [-- COMMAND [ARG...]]\n"
                  "Runs IMAGE in a new pod (one VM), streams its output, removes the pod (unless\n"
                  "--keep) and exits with the container's exit code (125 when quark failed).\n"
                  "The log goes to DIR/main-<id>.log with --log-dir, else to\n"
                  "/var/log/quark/pods/quark_<name>_<uid>/main.log.\n");
}

static void remove_pod(const struct quark_cli *cli, const char *pod_id)
{
  Runtime__V1__StopPodSandboxRequest sreq = RUNTIME__V1__STOP_POD_SANDBOX_REQUEST__INIT;
  sreq.pod_sandbox_id = (char *)pod_id;
  ProtobufCMessage *resp = NULL;
  q_error *err = NULL;
  struct quark_cli lc = *cli;
  lc.timeout_ms = 120000;
  if (quark_cli_call(&lc, RT "StopPodSandbox", &sreq.base,
                     &runtime__v1__stop_pod_sandbox_response__descriptor, &resp, &err) < 0) {
    fprintf(stderr, "quark: stop pod %s: %s\n", pod_id, q_error_msg(err));
    q_error_free(&err);
  } else {
    protobuf_c_message_free_unpacked(resp, NULL);
  }
  Runtime__V1__RemovePodSandboxRequest rreq = RUNTIME__V1__REMOVE_POD_SANDBOX_REQUEST__INIT;
  rreq.pod_sandbox_id = (char *)pod_id;
  resp = NULL;
  if (quark_cli_call(&lc, RT "RemovePodSandbox", &rreq.base,
                     &runtime__v1__remove_pod_sandbox_response__descriptor, &resp, &err) < 0) {
    fprintf(stderr, "quark: remove pod %s: %s\n", pod_id, q_error_msg(err));
    q_error_free(&err);
  } else {
    protobuf_c_message_free_unpacked(resp, NULL);
  }
}

int quark_cmd_run(struct quark_cli *cli, int argc, char **argv)
{
  const char *name = NULL, *workdir = NULL, *log_dir = NULL, *handler = "quark";
  bool keep = false;
  size_t n_env = 0;
  Runtime__V1__KeyValue **envs = calloc((size_t)argc + 1, sizeof(*envs));
  Runtime__V1__KeyValue *env_store = calloc((size_t)argc + 1, sizeof(*env_store));
  if (!envs || !env_store) {
    free(envs);
    free(env_store);
    return quark_cli_fail("out of memory");
  }
  static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                       {"env", required_argument, NULL, 'e'},
                                       {"workdir", required_argument, NULL, 'w'},
                                       {"log-dir", required_argument, NULL, 'l'},
                                       {"handler", required_argument, NULL, 'H'},
                                       {"keep", no_argument, NULL, 'k'},
                                       {NULL, 0, NULL, 0}};
  int c, rc = 125;
  optind = 1;
  while ((c = getopt_long(argc, argv, "+n:e:w:l:H:k", opts, NULL)) != -1) {
    switch (c) {
    case 'n':
      name = optarg;
      break;
    case 'e': {
      char *eq = strchr(optarg, '=');
      if (!eq || eq == optarg) {
        free(envs);
        free(env_store);
        return quark_cli_fail("--env wants KEY=VALUE, got '%s'", optarg);
      }
      *eq = '\0';
      runtime__v1__key_value__init(&env_store[n_env]);
      env_store[n_env].key = optarg;
      env_store[n_env].value = eq + 1;
      envs[n_env] = &env_store[n_env];
      n_env++;
      break;
    }
    case 'w':
      workdir = optarg;
      break;
    case 'l':
      log_dir = optarg;
      break;
    case 'H':
      handler = optarg;
      break;
    case 'k':
      keep = true;
      break;
    default:
      run_usage();
      free(envs);
      free(env_store);
      return 2;
    }
  }
  if (optind >= argc) {
    run_usage();
    free(envs);
    free(env_store);
    return 2;
  }
  const char *image = argv[optind++];
  if (optind < argc && !strcmp(argv[optind], "--"))
    optind++;
  char rnd[65];
  if (q_random_id(rnd) < 0) {
    free(envs);
    free(env_store);
    return quark_cli_fail("cannot make a pod name");
  }
  char name_buf[64], uid[40], dir_buf[512];
  if (!name) {
    snprintf(name_buf, sizeof(name_buf), "run-%.8s", rnd);
    name = name_buf;
  }
  snprintf(uid, sizeof(uid), "%.8s-%.4s-%.4s-%.4s-%.12s", rnd + 8, rnd + 16, rnd + 20, rnd + 24,
           rnd + 28);
  bool dir_given = log_dir != NULL;
  if (!log_dir) {
    snprintf(dir_buf, sizeof(dir_buf), "/var/log/quark/pods/quark_%s_%s", name, uid);
    log_dir = dir_buf;
  }
  signal(SIGINT, on_interrupt);
  signal(SIGTERM, on_interrupt);

  Runtime__V1__PodSandboxMetadata pmeta = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
  pmeta.name = (char *)name;
  pmeta.namespace_ = "quark";
  pmeta.uid = uid;
  Runtime__V1__PodSandboxConfig pcfg = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
  pcfg.metadata = &pmeta;
  pcfg.hostname = (char *)name;
  pcfg.log_directory = (char *)log_dir;
  Runtime__V1__RunPodSandboxRequest preq = RUNTIME__V1__RUN_POD_SANDBOX_REQUEST__INIT;
  preq.config = &pcfg;
  preq.runtime_handler = (char *)handler;
  struct quark_cli lc = *cli;
  lc.timeout_ms = 120000; /* a pod start pulls nothing but may wait on CNI */
  q_error *err = NULL;
  Runtime__V1__RunPodSandboxResponse *pres = NULL;
  Runtime__V1__CreateContainerResponse *cres = NULL;
  ProtobufCMessage *sres = NULL;
  char *pod_id = NULL, *ctr_id = NULL;
  if (quark_cli_call(&lc, RT "RunPodSandbox", &preq.base,
                     &runtime__v1__run_pod_sandbox_response__descriptor, (ProtobufCMessage **)&pres,
                     &err) < 0)
    goto fail;
  pod_id = strdup(pres->pod_sandbox_id);
  protobuf_c_message_free_unpacked(&pres->base, NULL);

  Runtime__V1__ContainerMetadata cmeta = RUNTIME__V1__CONTAINER_METADATA__INIT;
  cmeta.name = "main";
  Runtime__V1__ImageSpec ispec = RUNTIME__V1__IMAGE_SPEC__INIT;
  ispec.image = (char *)image;
  Runtime__V1__ContainerConfig ccfg = RUNTIME__V1__CONTAINER_CONFIG__INIT;
  ccfg.metadata = &cmeta;
  ccfg.image = &ispec;
  /* docker run's meaning: the words replace the image's cmd, its
   * entrypoint stays (CRI args). */
  ccfg.args = &argv[optind];
  ccfg.n_args = (size_t)(argc - optind);
  ccfg.envs = envs;
  ccfg.n_envs = n_env;
  ccfg.working_dir = (char *)(workdir ? workdir : "");
  /* docker run's pid namespace: the program is pid 1 of its own (CRI pid
   * mode CONTAINER; unset reads as POD, the pod's shared namespace). */
  Runtime__V1__NamespaceOption nsopt = RUNTIME__V1__NAMESPACE_OPTION__INIT;
  nsopt.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
  Runtime__V1__LinuxContainerSecurityContext csec =
      RUNTIME__V1__LINUX_CONTAINER_SECURITY_CONTEXT__INIT;
  csec.namespace_options = &nsopt;
  Runtime__V1__LinuxContainerConfig clinux = RUNTIME__V1__LINUX_CONTAINER_CONFIG__INIT;
  clinux.security_context = &csec;
  ccfg.linux = &clinux;
  /* A --log-dir is the user's and may hold earlier runs' logs: a file of
   * this run's own, else its output would follow theirs (the log is
   * appended to, as kubelet's per-pod directories expect). */
  char log_name[32];
  snprintf(log_name, sizeof(log_name), dir_given ? "main-%.8s.log" : "main.log", rnd + 40);
  ccfg.log_path = log_name;
  Runtime__V1__CreateContainerRequest creq = RUNTIME__V1__CREATE_CONTAINER_REQUEST__INIT;
  creq.pod_sandbox_id = pod_id;
  creq.config = &ccfg;
  creq.sandbox_config = &pcfg;
  if (quark_cli_call(&lc, RT "CreateContainer", &creq.base,
                     &runtime__v1__create_container_response__descriptor,
                     (ProtobufCMessage **)&cres, &err) < 0)
    goto fail;
  ctr_id = strdup(cres->container_id);
  protobuf_c_message_free_unpacked(&cres->base, NULL);
  Runtime__V1__StartContainerRequest sreq = RUNTIME__V1__START_CONTAINER_REQUEST__INIT;
  sreq.container_id = ctr_id;
  if (quark_cli_call(&lc, RT "StartContainer", &sreq.base,
                     &runtime__v1__start_container_response__descriptor, &sres, &err) < 0)
    goto fail;
  protobuf_c_message_free_unpacked(sres, NULL);

  int exit_code = 125;
  if (show_log(cli, ctr_id, true, false, &exit_code, &err) < 0)
    goto fail;
  rc = interrupted ? 128 + interrupted : exit_code;
  if (keep)
    fprintf(stderr, "quark: pod %s kept (container %s)\n", pod_id, ctr_id);
  else
    remove_pod(cli, pod_id);
  free(pod_id);
  free(ctr_id);
  free(envs);
  free(env_store);
  return rc;

fail:
  fprintf(stderr, "quark: run %s: %s\n", image, q_error_msg(err));
  q_error_free(&err);
  if (pod_id && !keep)
    remove_pod(cli, pod_id);
  free(pod_id);
  free(ctr_id);
  free(envs);
  free(env_store);
  return 125;
}
