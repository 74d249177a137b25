/* quark: command-line client of quarkd.
 *
 *   quark [--endpoint URL] [--json] [--timeout SEC] COMMAND [ARGS]
 *
 * Global options may appear anywhere on the line. The endpoint defaults to
 * $QUARK_ENDPOINT, then unix:///run/quark/quark.sock. */
#include <grpc/grpc.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#ifndef QUARK_VERSION
#define QUARK_VERSION "0.0.0"
#endif

#define RT "/runtime.v1.RuntimeService/"

static void usage(FILE *f)
{
  fprintf(f, "usage: quark [--endpoint URL] [--json] [--timeout SEC] COMMAND [ARGS]\n"
             "commands:\n"
             "  version            client and runtime versions\n"
             "  info               runtime conditions and configuration\n"
             "  pods               list pod sandboxes\n"
             "  ps [-a]            list containers (running only unless -a)\n"
             "  pull IMAGE         pull an image\n"
             "  images             list images\n"
             "  rmi IMAGE...       remove images\n"
             "  import FILE        import an image archive\n"
             "  run IMAGE [-- CMD] run IMAGE in a new pod, stream its output, exit with its code\n"
             "  logs [-f] ID       print a container's log (-f: follow until it exits)\n"
             "  exec ID -- CMD     run CMD in a running container (--timeout: its limit)\n"
             "  exec -i [-t] ID -- CMD  the same with stdin (and a terminal), streamed\n"
             "  attach [-i] ID     attach to a running container's output (and stdin)\n"
             "  port-forward POD [LOCAL:]REMOTE...  forward local ports into a pod\n"
             "The endpoint defaults to $" QUARK_CLI_ENDPOINT_ENV " or " QUARK_CLI_DEFAULT_ENDPOINT
             ".\n");
}

static int call_failed(q_error *err)
{
  int rc = quark_cli_fail("%s", q_error_msg(err));
  q_error_free(&err);
  return rc;
}

static void print_json(json_t *o)
{
  char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
  json_decref(o);
  if (s) {
    puts(s);
    free(s);
  }
}

/* "5 seconds ago", as crictl prints it. */
static const char *ago(int64_t ns, char *buf, size_t len)
{
  if (ns <= 0)
    return "-";
  int64_t s = (q_now_ns() - ns) / 1000000000LL;
  if (s < 0)
    s = 0;
  if (s < 60)
    snprintf(buf, len, "%lld seconds ago", (long long)s);
  else if (s < 3600)
    snprintf(buf, len, "%lld minutes ago", (long long)(s / 60));
  else if (s < 86400)
    snprintf(buf, len, "%lld hours ago", (long long)(s / 3600));
  else
    snprintf(buf, len, "%lld days ago", (long long)(s / 86400));
  return buf;
}

static int cmd_version(struct quark_cli *cli, int argc, char **argv)
{
  Runtime__V1__VersionRequest req = RUNTIME__V1__VERSION_REQUEST__INIT;
  req.version = "0.1.0";
  Runtime__V1__VersionResponse *r = NULL;
  q_error *err = NULL;
  if (quark_cli_call(cli, RT "Version", &req.base, &runtime__v1__version_response__descriptor,
                     (ProtobufCMessage **)&r, &err) < 0)
    return call_failed(err);
  if (cli->json)
    print_json(json_pack("{s:s,s:s,s:s,s:s,s:s}", "clientVersion", QUARK_VERSION, "version",
                         r->version, "runtimeName", r->runtime_name, "runtimeVersion",
                         r->runtime_version, "runtimeApiVersion", r->runtime_api_version));
  else
    printf("Client:          quark %s\n"
           "Runtime:         %s %s\n"
           "Runtime API:     %s\n"
           "Kubelet API:     %s\n"
           "Endpoint:        %s\n",
           QUARK_VERSION, r->runtime_name, r->runtime_version, r->runtime_api_version, r->version,
           cli->endpoint);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return 0;
}

static int cmd_info(struct quark_cli *cli, int argc, char **argv)
{
  Runtime__V1__StatusRequest req = RUNTIME__V1__STATUS_REQUEST__INIT;
  req.verbose = 1;
  Runtime__V1__StatusResponse *r = NULL;
  Runtime__V1__RuntimeConfigRequest creq = RUNTIME__V1__RUNTIME_CONFIG_REQUEST__INIT;
  Runtime__V1__RuntimeConfigResponse *cr = NULL;
  q_error *err = NULL;
  if (quark_cli_call(cli, RT "Status", &req.base, &runtime__v1__status_response__descriptor,
                     (ProtobufCMessage **)&r, &err) < 0)
    return call_failed(err);
  if (quark_cli_call(cli, RT "RuntimeConfig", &creq.base,
                     &runtime__v1__runtime_config_response__descriptor, (ProtobufCMessage **)&cr,
                     &err) < 0) {
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return call_failed(err);
  }
  const char *driver = cr->linux && cr->linux->cgroup_driver == RUNTIME__V1__CGROUP_DRIVER__SYSTEMD
                           ? "systemd"
                           : "cgroupfs";
  size_t nc = r->status ? r->status->n_conditions : 0;
  if (cli->json) {
    json_t *conds = json_array(), *info = json_object(), *handlers = json_array();
    for (size_t i = 0; i < nc; i++) {
      Runtime__V1__RuntimeCondition *c = r->status->conditions[i];
      json_array_append_new(conds,
                            json_pack("{s:s,s:b,s:s,s:s}", "type", c->type, "status", c->status,
                                      "reason", c->reason, "message", c->message));
    }
    for (size_t i = 0; i < r->n_info; i++) {
      json_t *v = json_loads(r->info[i]->value, 0, NULL);
      json_object_set_new(info, r->info[i]->key, v ? v : json_string(r->info[i]->value));
    }
    for (size_t i = 0; i < r->n_runtime_handlers; i++)
      json_array_append_new(handlers, json_string(r->runtime_handlers[i]->name));
    print_json(json_pack("{s:o,s:o,s:o,s:s}", "conditions", conds, "info", info, "runtimeHandlers",
                         handlers, "cgroupDriver", driver));
  } else {
    printf("%-14s %-7s %-24s %s\n", "CONDITION", "STATUS", "REASON", "MESSAGE");
    for (size_t i = 0; i < nc; i++) {
      Runtime__V1__RuntimeCondition *c = r->status->conditions[i];
      printf("%-14s %-7s %-24s %s\n", c->type, c->status ? "true" : "false",
             *c->reason ? c->reason : "-", *c->message ? c->message : "-");
    }
    printf("\nCgroup driver:  %s\nHandlers:      ", driver);
    for (size_t i = 0; i < r->n_runtime_handlers; i++)
      printf(" %s", *r->runtime_handlers[i]->name ? r->runtime_handlers[i]->name : "(default)");
    printf("\n");
    for (size_t i = 0; i < r->n_info; i++) {
      json_t *v = json_loads(r->info[i]->value, 0, NULL);
      char *s = v ? json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
      printf("\n%s:\n%s\n", r->info[i]->key, s ? s : r->info[i]->value);
      free(s);
      json_decref(v);
    }
  }
  protobuf_c_message_free_unpacked(&r->base, NULL);
  protobuf_c_message_free_unpacked(&cr->base, NULL);
  return 0;
}

static json_t *map_json(size_t n, void *const *entries)
{
  json_t *o = json_object();
  for (size_t i = 0; i < n; i++) {
    const struct {
      ProtobufCMessage base;
      char *key, *value;
    } *e = entries[i];
    json_object_set_new(o, e->key, json_string(e->value));
  }
  return o;
}

static int cmd_pods(struct quark_cli *cli, int argc, char **argv)
{
  Runtime__V1__ListPodSandboxRequest req = RUNTIME__V1__LIST_POD_SANDBOX_REQUEST__INIT;
  Runtime__V1__ListPodSandboxResponse *r = NULL;
  q_error *err = NULL;
  if (quark_cli_call(cli, RT "ListPodSandbox", &req.base,
                     &runtime__v1__list_pod_sandbox_response__descriptor, (ProtobufCMessage **)&r,
                     &err) < 0)
    return call_failed(err);
  if (cli->json) {
    json_t *a = json_array();
    for (size_t i = 0; i < r->n_items; i++) {
      Runtime__V1__PodSandbox *p = r->items[i];
      Runtime__V1__PodSandboxMetadata *m = p->metadata;
      json_array_append_new(
          a,
          json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:I,s:o,s:o,s:s}", "id", p->id, "name",
                    m ? m->name : "", "namespace", m ? m->namespace_ : "", "uid", m ? m->uid : "",
                    "attempt", (json_int_t)(m ? m->attempt : 0), "state",
                    p->state == RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY ? "SANDBOX_READY"
                                                                              : "SANDBOX_NOTREADY",
                    "createdAt", (json_int_t)p->created_at, "labels",
                    map_json(p->n_labels, (void *const *)p->labels), "annotations",
                    map_json(p->n_annotations, (void *const *)p->annotations), "runtimeHandler",
                    p->runtime_handler));
    }
    print_json(a);
  } else {
    printf("%-13s  %-16s  %-8s  %-24s  %-16s  %-7s  %s\n", "POD ID", "CREATED", "STATE", "NAME",
           "NAMESPACE", "ATTEMPT", "RUNTIME");
    for (size_t i = 0; i < r->n_items; i++) {
      Runtime__V1__PodSandbox *p = r->items[i];
      char when[32];
      printf("%-13.13s  %-16s  %-8s  %-24s  %-16s  %-7u  %s\n", p->id,
             ago(p->created_at, when, sizeof(when)),
             p->state == RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY ? "Ready" : "NotReady",
             p->metadata ? p->metadata->name : "", p->metadata ? p->metadata->namespace_ : "",
             p->metadata ? p->metadata->attempt : 0,
             *p->runtime_handler ? p->runtime_handler : "(default)");
    }
  }
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return 0;
}

static const char *ctr_state(Runtime__V1__ContainerState s)
{
  switch (s) {
  case RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED:
    return "Created";
  case RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING:
    return "Running";
  case RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED:
    return "Exited";
  default:
    return "Unknown";
  }
}

static int cmd_ps(struct quark_cli *cli, int argc, char **argv)
{
  bool all = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-a") || !strcmp(argv[i], "--all"))
      all = true;
    else {
      fprintf(stderr, "usage: quark ps [-a]\n");
      return 2;
    }
  }
  Runtime__V1__ListContainersRequest req = RUNTIME__V1__LIST_CONTAINERS_REQUEST__INIT;
  Runtime__V1__ContainerFilter filter = RUNTIME__V1__CONTAINER_FILTER__INIT;
  Runtime__V1__ContainerStateValue running = RUNTIME__V1__CONTAINER_STATE_VALUE__INIT;
  if (!all) {
    running.state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
    filter.state = &running;
    req.filter = &filter;
  }
  Runtime__V1__ListContainersResponse *r = NULL;
  q_error *err = NULL;
  if (quark_cli_call(cli, RT "ListContainers", &req.base,
                     &runtime__v1__list_containers_response__descriptor, (ProtobufCMessage **)&r,
                     &err) < 0)
    return call_failed(err);
  if (cli->json) {
    json_t *a = json_array();
    for (size_t i = 0; i < r->n_containers; i++) {
      Runtime__V1__Container *c = r->containers[i];
      json_array_append_new(
          a, json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:I,s:o,s:o}", "id", c->id, "podSandboxId",
                       c->pod_sandbox_id, "name", c->metadata ? c->metadata->name : "", "attempt",
                       (json_int_t)(c->metadata ? c->metadata->attempt : 0), "image",
                       c->image ? c->image->image : "", "imageRef", c->image_ref, "state",
                       ctr_state(c->state), "createdAt", (json_int_t)c->created_at, "labels",
                       map_json(c->n_labels, (void *const *)c->labels), "annotations",
                       map_json(c->n_annotations, (void *const *)c->annotations)));
    }
    print_json(a);
  } else {
    printf("%-13s  %-24s  %-16s  %-8s  %-20s  %-7s  %s\n", "CONTAINER", "IMAGE", "CREATED", "STATE",
           "NAME", "ATTEMPT", "POD ID");
    for (size_t i = 0; i < r->n_containers; i++) {
      Runtime__V1__Container *c = r->containers[i];
      char when[32];
      printf("%-13.13s  %-24s  %-16s  %-8s  %-20s  %-7u  %.13s\n", c->id,
             c->image ? c->image->image : "", ago(c->created_at, when, sizeof(when)),
             ctr_state(c->state), c->metadata ? c->metadata->name : "",
             c->metadata ? c->metadata->attempt : 0, c->pod_sandbox_id);
    }
  }
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return 0;
}

static const struct {
  const char *name;
  int (*fn)(struct quark_cli *, int, char **);
} commands[] = {
    {"version", cmd_version}, {"info", cmd_info},           {"pods", cmd_pods},
    {"ps", cmd_ps},           {"pull", quark_cmd_pull},     {"images", quark_cmd_images},
    {"rmi", quark_cmd_rmi},   {"import", quark_cmd_import}, {"run", quark_cmd_run},
    {"logs", quark_cmd_logs}, {"exec", quark_cmd_exec},
    {"attach", quark_cmd_attach}, {"port-forward", quark_cmd_port_forward},
};

int main(int argc, char **argv)
{
  struct quark_cli cli = {.endpoint = getenv(QUARK_CLI_ENDPOINT_ENV), .timeout_ms = 10000};
  if (!cli.endpoint || !*cli.endpoint)
    cli.endpoint = QUARK_CLI_DEFAULT_ENDPOINT;

  /* Take the global options out wherever they are; the rest, in order, is
   * the command and its own arguments. */
  char **rest = calloc((size_t)argc + 1, sizeof(char *));
  int n = 0;
  if (!rest)
    return quark_cli_fail("out of memory");
  bool verbatim = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (verbatim) {
      rest[n++] = argv[i];
    } else if (!strcmp(a, "--")) {
      /* Everything after "--" belongs to the command (quark run/exec). */
      verbatim = true;
      rest[n++] = argv[i];
    } else if (!strcmp(a, "--json")) {
      cli.json = true;
    } else if (!strcmp(a, "--endpoint") || !strcmp(a, "--timeout")) {
      if (i + 1 >= argc) {
        free(rest);
        return quark_cli_fail("%s needs a value", a);
      }
      if (!strcmp(a, "--endpoint")) {
        cli.endpoint = argv[++i];
      } else {
        char *end;
        double s = strtod(argv[++i], &end);
        if (*end || s <= 0 || s > 86400) {
          free(rest);
          return quark_cli_fail("--timeout wants seconds, got '%s'", argv[i]);
        }
        cli.timeout_ms = (int)(s * 1000);
        cli.timeout_set = true;
      }
    } else if (!strncmp(a, "--endpoint=", 11)) {
      cli.endpoint = a + 11;
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      free(rest);
      return 0;
    } else {
      rest[n++] = argv[i];
    }
  }
  if (n == 0) {
    usage(stderr);
    free(rest);
    return 2;
  }
  int rc = -1;
  for (size_t i = 0; i < Q_ARRAY_SIZE(commands); i++)
    if (!strcmp(rest[0], commands[i].name)) {
      grpc_init();
      rc = commands[i].fn(&cli, n, rest);
      grpc_shutdown();
      break;
    }
  if (rc < 0) {
    fprintf(stderr, "quark: unknown command '%s'\n", rest[0]);
    usage(stderr);
    rc = 2;
  }
  free(rest);
  return rc;
}
