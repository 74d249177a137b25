/* Fuzzer: the CRI request path of quarkd without a socket: decode of the
 * request bytes, the handler, and the encoding of its answer.
 *
 * server.h has no socket-less dispatch entry, so this file includes
 * cri/server.c and drives its own static run_handler() on a call it builds
 * by hand: exactly the code a gRPC request reaches after the transport,
 * with the real method table, arena and response packing. (A public
 * cri_server_dispatch() for tests would make this include unnecessary.)
 *
 * Input: one selector byte (index into RuntimeService's methods, then
 * ImageService's, as in the cri_proto target whose seeds it shares), then
 * the request bytes.
 *
 * World: a config, state store, image store, CNI directories (no network
 * config, no plugins) and the pod runtime (cri_pods_init: no sandbox
 * answers) in a scratch directory; the state store seeded with two pods and
 * three containers (re-added whenever an input removed them) so that ids and
 * prefixes find something.
 * Handlers that would reach the network, start VMs or processes, or need the
 * streaming server are not called (the list below); every other registered
 * handler is, and RPCs without a handler are skipped.
 *
 * Checks (on top of ASan/UBSan/LSan): the status is a gRPC code; an OK
 * answer decodes as the method's output type. A non-OK status without a
 * message breaks the handler contract: it is reported once per method on
 * stderr, not treated as a crash.
 */
#include "../../../cri/server.c"

#include <jansson.h>

#include "fuzz_util.h"
#include "state/state.h"

/* Linked only when the image library exists (see CMakeLists.txt). */
#pragma weak cri_image_init
/* The pod/container runtime (cri/pods.h), when cri/ has it. */
int cri_pods_init(struct cri_server *srv, const struct cri_config *cfg, q_error **err);
#pragma weak cri_pods_init

static const char *const not_fuzzed[][2] = {
    {"ImageService", "PullImage"},         /* registries over the network */
    {"RuntimeService", "RunPodSandbox"},   /* VMs, netns, CNI plugins */
    {"RuntimeService", "CreateContainer"}, /* overlay mounts */
    {"RuntimeService", "StartContainer"},
    {"RuntimeService", "ExecSync"},
    {"RuntimeService", "Exec"}, /* streaming server */
    {"RuntimeService", "Attach"},
    {"RuntimeService", "PortForward"},
};

static struct cri_config cfg;
static struct cri_state *state;
static struct cri_server *srv;
static bool warned[256];

static const char *const pod_ids[] = {
    "aaaa000000000000000000000000000000000000000000000000000000000001",
    "aaaa000000000000000000000000000000000000000000000000000000000002",
};
static const char *const ctr_ids[] = {
    "bbbb000000000000000000000000000000000000000000000000000000000001",
    "bbbb000000000000000000000000000000000000000000000000000000000002",
    "cccc000000000000000000000000000000000000000000000000000000000003",
};

static void seed_state(void)
{
  for (size_t i = 0; i < Q_ARRAY_SIZE(pod_ids); i++) {
    struct cri_pod *have = NULL;
    if (cri_state_get_pod(state, pod_ids[i], &have) == 0) {
      cri_pod_free(have);
      continue;
    }
    struct cri_pod p = {.name = "web",
                        .uid = "uid-1",
                        .ns = "default",
                        .attempt = (uint32_t)i,
                        .state = i ? CRI_POD_NOTREADY : CRI_POD_READY,
                        .created_at = 1000 + (int64_t)i,
                        .runtime_handler = "quark",
                        .hostname = "web",
                        .log_directory = "/var/log/pods/x"};
    snprintf(p.id, sizeof(p.id), "%s", pod_ids[i]);
    cri_kvs_set(&p.labels, "app", i ? "db" : "web");
    cri_kvs_set(&p.annotations, "note", "seed");
    p.ext = json_object(); /* no netns, no sandbox socket: nothing real to act on */
    q_error *err = NULL;
    if (cri_state_add_pod(state, &p, &err) < 0) {
      fprintf(stderr, "fuzz: seed pod: %s\n", q_error_msg(err));
      abort();
    }
    cri_kvs_clear(&p.labels);
    cri_kvs_clear(&p.annotations);
    json_decref(p.ext);
  }
  for (size_t i = 0; i < Q_ARRAY_SIZE(ctr_ids); i++) {
    struct cri_ctr *have = NULL;
    if (cri_state_get_ctr(state, ctr_ids[i], &have) == 0) {
      cri_ctr_free(have);
      continue;
    }
    struct cri_ctr c = {.name = "app",
                        .attempt = 0,
                        .state = (enum cri_ctr_state)(i % 4),
                        .created_at = 2000,
                        .started_at = 2001,
                        .finished_at = i == 2 ? 2002 : 0,
                        .exit_code = (int32_t)i,
                        .image = "docker.io/library/busybox:latest",
                        .image_ref = "sha256:00",
                        .image_id = "sha256:00",
                        .reason = "",
                        .message = "",
                        .log_path = "app/0.log"};
    snprintf(c.id, sizeof(c.id), "%s", ctr_ids[i]);
    snprintf(c.pod_id, sizeof(c.pod_id), "%s", pod_ids[i % 2]);
    cri_kvs_set(&c.labels, "app", "web");
    c.ext = json_object();
    q_error *err = NULL;
    if (cri_state_add_ctr(state, &c, &err) < 0) {
      fprintf(stderr, "fuzz: seed container: %s\n", q_error_msg(err));
      abort();
    }
    cri_kvs_clear(&c.labels);
    json_decref(c.ext);
  }
}

static void replace(char **field, const char *dir, const char *name)
{
  free(*field);
  if (asprintf(field, "%s/%s", dir, name) < 0)
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  q_log_set_level(getenv("QUARK_FUZZ_LOG") ? Q_LOG_DEBUG : Q_LOG_OFF);
  const char *dir = fuzz_tmpdir("cri");
  q_error *err = NULL;
  if (cri_config_init(&cfg) < 0)
    abort();
  replace(&cfg.state_root, dir, "state");
  replace(&cfg.image_root, dir, "images");
  free(cfg.socket);
  if (asprintf(&cfg.socket, "unix://%s/quark.sock", dir) < 0)
    abort();
  replace(&cfg.sandbox.binary, dir, "no-sandbox");
  replace(&cfg.sandbox.kernel, dir, "no-kernel");
  replace(&cfg.cni.conf_dir, dir, "cni");
  replace(&cfg.cni.cache_dir, dir, "cni-cache");
  for (size_t i = 0; i < cfg.cni.n_bin_dirs; i++)
    replace(&cfg.cni.bin_dirs[i], dir, "cni-bin");
  if (cri_state_open(cfg.state_root, &state, &err) < 0 ||
      cri_server_new(&cfg, state, &srv, &err) < 0 || cri_runtime_register(srv, &err) < 0) {
    fprintf(stderr, "fuzz: setup: %s\n", q_error_msg(err));
    abort();
  }
  seed_state(); /* before the pod runtime's recovery reads the store */
  if (cri_pods_init && cri_pods_init(srv, &cfg, &err) < 0) {
    fprintf(stderr, "fuzz: pod runtime: %s\n", q_error_msg(err));
    abort();
  }
  if (!cri_image_init) {
    fprintf(stderr, "fuzz: image service not built: not fuzzed\n");
  } else if (cri_image_init(srv, &cfg, &err) < 0) {
    fprintf(stderr, "fuzz: image service not fuzzed: %s\n", q_error_msg(err));
    q_error_free(&err);
  }
  for (size_t i = 0; i < Q_ARRAY_SIZE(not_fuzzed); i++)
    cri_server_set_handler(srv, not_fuzzed[i][0], not_fuzzed[i][1], NULL);
  size_t live = 0;
  for (size_t i = 0; i < srv->n_methods; i++)
    live += srv->methods[i].fn != NULL;
  fprintf(stderr, "fuzz: %zu of %zu RPCs have a handler under test\n", live, srv->n_methods);
  seed_state();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
  if (len < 1 || srv->n_methods == 0)
    return 0;
  size_t idx = data[0] % srv->n_methods;
  const struct cri_method *m = &srv->methods[idx];
  if (!m->fn)
    return 0;

  struct cri_call *c = calloc(1, sizeof(*c));
  FUZZ_CHECK(c, "out of memory");
  c->srv = srv;
  c->stage = CALL_RECEIVED;
  c->method = m;
  c->start_ns = q_mono_ns();
  grpc_call_details_init(&c->details);
  grpc_metadata_array_init(&c->md);
  grpc_slice in = grpc_slice_from_copied_buffer((const char *)data + 1, len - 1);
  c->recv_buf = grpc_raw_byte_buffer_create(&in, 1);
  grpc_slice_unref(in);

  grpc_status_code code = run_handler(c);
  FUZZ_CHECK((unsigned)code <= GRPC_STATUS_UNAUTHENTICATED, "%s: status %d", m->name, (int)code);
  if (code == GRPC_STATUS_OK) {
    FUZZ_CHECK(c->send_buf, "%s: OK without a response", m->name);
    grpc_byte_buffer_reader r;
    FUZZ_CHECK(grpc_byte_buffer_reader_init(&r, c->send_buf), "%s: response unreadable", m->name);
    grpc_slice out = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    ProtobufCMessage *resp =
        protobuf_c_message_unpack(m->out, NULL, GRPC_SLICE_LENGTH(out), GRPC_SLICE_START_PTR(out));
    FUZZ_CHECK(resp, "%s: our own response does not decode as %s", m->name, m->out->name);
    protobuf_c_message_free_unpacked(resp, NULL);
    grpc_slice_unref(out);
  } else if (!c->errmsg && !warned[idx]) {
    warned[idx] = true;
    fprintf(stderr, "fuzz: %s returned %s without a message (handler contract)\n", m->name,
            status_name(code));
  }
  call_free(c);
  seed_state();
  return 0;
}
