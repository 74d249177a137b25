/* RuntimeService handlers that need no sandbox: Version, Status,
 * RuntimeConfig, UpdateRuntimeConfig, and the read-only queries over the
 * state store (ListPodSandbox, PodSandboxStatus, ListContainers,
 * ContainerStatus). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "convert.h"
#include "pods.h"
#include "server.h"

#ifndef QUARK_VERSION
#define QUARK_VERSION "0.0.0"
#endif

#define OOM(call)                                                                                  \
  cri_call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "%s: out of memory", cri_call_method(call))

static grpc_status_code rpc_version(struct cri_call *call, const ProtobufCMessage *req,
                                    ProtobufCMessage **resp)
{
  Runtime__V1__VersionResponse *r =
      cri_call_new_msg(call, &runtime__v1__version_response__descriptor);
  if (!r)
    return OOM(call);
  /* "version" is the kubelet runtime API version; 0.1.0 is what every CRI
   * runtime answers. */
  r->version = "0.1.0";
  r->runtime_name = "quark";
  r->runtime_version = QUARK_VERSION;
  r->runtime_api_version = "v1";
  *resp = &r->base;
  return GRPC_STATUS_OK;
}

/* NetworkReady: a valid default CNI network loads and its plugins exist
 * (quark_net's check, the one RunPodSandbox relies on). *msg is malloc'd. */
static bool cni_ready(struct cri_server *srv, const struct cri_config *cfg, char **msg)
{
  struct cri_pods *p = cri_server_pods_ctx(srv);
  net_cni *own = NULL;
  const net_cni *cni = p ? p->cni : NULL;
  if (!cni) {
    net_cni_options o = {.conf_dir = cfg->cni.conf_dir,
                         .plugin_dirs = (const char *const *)cfg->cni.bin_dirs,
                         .n_plugin_dirs = cfg->cni.n_bin_dirs,
                         .cache_dir = cfg->cni.cache_dir};
    if (net_cni_new(&o, &own, NULL) < 0) {
      *msg = strdup("cannot set up the CNI library");
      return false;
    }
    cni = own;
  }
  *msg = NULL;
  bool ok = net_cni_status(cni, msg) == 0;
  net_cni_free(own);
  if (!ok && !*msg)
    *msg = strdup("cni config load failed");
  return ok;
}

static Runtime__V1__RuntimeCondition *condition(struct cri_call *call, const char *type, bool ok,
                                                const char *reason, const char *message)
{
  Runtime__V1__RuntimeCondition *c =
      cri_call_new_msg(call, &runtime__v1__runtime_condition__descriptor);
  if (!c)
    return NULL;
  c->type = (char *)type;
  c->status = ok;
  c->reason = cri_call_strdup(call, ok ? "" : reason);
  c->message = cri_call_strdup(call, ok ? "" : message);
  return c->reason && c->message ? c : NULL;
}

static json_t *config_json(const struct cri_config *cfg)
{
  json_t *mirrors = json_object(), *insecure = json_array(), *bins = json_array();
  for (size_t i = 0; i < cfg->registry.n_mirrors; i++) {
    json_t *urls = json_array();
    for (size_t k = 0; k < cfg->registry.mirrors[i].n_urls; k++)
      json_array_append_new(urls, json_string(cfg->registry.mirrors[i].urls[k]));
    json_object_set_new(mirrors, cfg->registry.mirrors[i].host, urls);
  }
  for (size_t i = 0; i < cfg->registry.n_insecure; i++)
    json_array_append_new(insecure, json_string(cfg->registry.insecure[i]));
  for (size_t i = 0; i < cfg->cni.n_bin_dirs; i++)
    json_array_append_new(bins, json_string(cfg->cni.bin_dirs[i]));
  return json_pack(
      "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:{s:o,s:o},s:{s:s,s:s,s:i,s:i},"
      "s:{s:s,s:o,s:s},s:{s:b,s:s}}",
      "Socket", cfg->socket, "StateRoot", cfg->state_root, "ImageRoot", cfg->image_root, "LogFile",
      cfg->log_file, "DebugLevel", q_log_level_name(cfg->debug_level), "CgroupDriver",
      cfg->cgroup_driver == CRI_CGROUP_SYSTEMD ? "systemd" : "cgroupfs", "StreamAddress",
      cfg->stream_address, "StreamPort", (int)cfg->stream_port, "Registry", "Mirrors", mirrors,
      "Insecure", insecure, "Sandbox", "Binary", cfg->sandbox.binary, "Kernel", cfg->sandbox.kernel,
      "MemoryMiB", (int)cfg->sandbox.memory_mib, "Vcpus", (int)cfg->sandbox.vcpus, "Cni", "ConfDir",
      cfg->cni.conf_dir, "BinDirs", bins, "CacheDir", cfg->cni.cache_dir, "Tsor", "Enabled",
      cfg->tsor.enabled, "Socket", cfg->tsor.socket);
}

static char *json_text(struct cri_call *call, json_t *o)
{
  if (!o)
    return NULL;
  char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(o);
  if (!s)
    return NULL;
  char *d = cri_call_strdup(call, s);
  free(s);
  return d;
}

static grpc_status_code rpc_status(struct cri_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage **resp)
{
  const Runtime__V1__StatusRequest *in = (const Runtime__V1__StatusRequest *)req;
  struct cri_server *srv = cri_call_server(call);
  const struct cri_config *cfg = cri_server_config(srv);
  Runtime__V1__StatusResponse *r =
      cri_call_new_msg(call, &runtime__v1__status_response__descriptor);
  if (!r || !(r->status = cri_call_new_msg(call, &runtime__v1__runtime_status__descriptor)))
    return OOM(call);

  /* The runtime is ready when it can start a pod VM: the VMM and the guest
   * kernel must be installed where the config says. */
  bool have_vmm = access(cfg->sandbox.binary, X_OK) == 0;
  bool have_kernel = access(cfg->sandbox.kernel, R_OK) == 0;
  char *rmsg = cri_call_printf(call, "%s %s not found or not usable",
                               !have_vmm ? "sandbox binary" : "guest kernel",
                               !have_vmm ? cfg->sandbox.binary : cfg->sandbox.kernel);
  char *nmsg_raw = NULL;
  bool net = cni_ready(srv, cfg, &nmsg_raw);
  char *nmsg = cri_call_strdup(call, nmsg_raw ? nmsg_raw : "");
  free(nmsg_raw);
  Runtime__V1__RuntimeCondition **conds = cri_call_alloc(call, 2 * sizeof(*conds));
  if (!rmsg || !nmsg || !conds ||
      !(conds[0] = condition(call, "RuntimeReady", have_vmm && have_kernel, "SandboxNotInstalled",
                             rmsg)) ||
      !(conds[1] = condition(call, "NetworkReady", net, "NetworkPluginNotReady", nmsg)))
    return OOM(call);
  r->status->conditions = conds;
  r->status->n_conditions = 2;

  /* Both the default handler ("") and the RuntimeClass handler "quark" run
   * pods in Quark VMs. */
  static const char *const handlers[] = {"", "quark"};
  r->runtime_handlers = cri_call_alloc(call, 2 * sizeof(*r->runtime_handlers));
  if (!r->runtime_handlers)
    return OOM(call);
  for (size_t i = 0; i < 2; i++) {
    Runtime__V1__RuntimeHandler *h =
        cri_call_new_msg(call, &runtime__v1__runtime_handler__descriptor);
    if (!h ||
        !(h->features = cri_call_new_msg(call, &runtime__v1__runtime_handler_features__descriptor)))
      return OOM(call);
    h->name = (char *)handlers[i];
    r->runtime_handlers[i] = h;
  }
  r->n_runtime_handlers = 2;
  if (!(r->features = cri_call_new_msg(call, &runtime__v1__runtime_features__descriptor)))
    return OOM(call);

  if (in->verbose) {
    size_t implemented = 0, n = cri_server_method_count(srv);
    for (size_t i = 0; i < n; i++) {
      bool ok;
      cri_server_method_path(srv, i, &ok);
      implemented += ok;
    }
    char *cidr = cri_state_get_pod_cidr(cri_server_state(srv));
    struct cri_kvs info = {0};
    char *cfgtxt = json_text(call, config_json(cfg));
    char *qtxt = json_text(
        call, json_pack("{s:s,s:s,s:I,s:I,s:b,s:b,s:[s,s]}", "version", QUARK_VERSION, "podCIDR",
                        cidr ? cidr : "", "rpcs", (json_int_t)n, "rpcsImplemented",
                        (json_int_t)implemented, "sandboxBinary", have_vmm, "guestKernel",
                        have_kernel, "runtimeHandlers", handlers[0], handlers[1]));
    free(cidr);
    int e = (!cfgtxt || !qtxt || cri_kvs_set(&info, "config", cfgtxt) < 0 ||
             cri_kvs_set(&info, "quark", qtxt) < 0)
                ? -ENOMEM
                : cri_conv_map_out(call, &runtime__v1__status_response__info_entry__descriptor,
                                   &info, &r->n_info, &r->info);
    cri_kvs_clear(&info);
    if (e < 0)
      return OOM(call);
  }
  *resp = &r->base;
  return GRPC_STATUS_OK;
}

static grpc_status_code rpc_runtime_config(struct cri_call *call, const ProtobufCMessage *req,
                                           ProtobufCMessage **resp)
{
  const struct cri_config *cfg = cri_server_config(cri_call_server(call));
  Runtime__V1__RuntimeConfigResponse *r =
      cri_call_new_msg(call, &runtime__v1__runtime_config_response__descriptor);
  if (!r ||
      !(r->linux = cri_call_new_msg(call, &runtime__v1__linux_runtime_configuration__descriptor)))
    return OOM(call);
  r->linux->cgroup_driver = cfg->cgroup_driver == CRI_CGROUP_SYSTEMD
                                ? RUNTIME__V1__CGROUP_DRIVER__SYSTEMD
                                : RUNTIME__V1__CGROUP_DRIVER__CGROUPFS;
  *resp = &r->base;
  return GRPC_STATUS_OK;
}

/* kubelet sends "" (no change of network), one CIDR, or a dual-stack pair
 * "10.244.1.0/24,fd00:1::/64". */
static bool valid_cidrs(const char *s)
{
  if (strlen(s) > 256)
    return false;
  char buf[257];
  strcpy(buf, s);
  char *save = NULL;
  for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *slash = strchr(tok, '/');
    if (!slash)
      return false;
    *slash = '\0';
    unsigned char addr[16];
    int max = inet_pton(AF_INET, tok, addr) == 1    ? 32
              : inet_pton(AF_INET6, tok, addr) == 1 ? 128
                                                    : -1;
    char *end;
    long len = strtol(slash + 1, &end, 10);
    if (max < 0 || end == slash + 1 || *end || len < 0 || len > max)
      return false;
  }
  return true;
}

static grpc_status_code rpc_update_runtime_config(struct cri_call *call,
                                                  const ProtobufCMessage *req,
                                                  ProtobufCMessage **resp)
{
  const Runtime__V1__UpdateRuntimeConfigRequest *in =
      (const Runtime__V1__UpdateRuntimeConfigRequest *)req;
  /* An absent network config leaves the stored CIDR as is, like kubelet
   * expects when it only refreshes other fields. */
  if (!in->runtime_config || !in->runtime_config->network_config)
    return GRPC_STATUS_OK;
  const char *cidr = in->runtime_config->network_config->pod_cidr;
  if (!valid_cidrs(cidr))
    return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT,
                          "pod CIDR '%.64s' is not a comma-separated list of IPv4/IPv6 CIDRs",
                          cidr);
  q_cleanup_error q_error *err = NULL;
  if (cri_state_set_pod_cidr(cri_server_state(cri_call_server(call)), cidr, &err) < 0)
    return cri_call_error(call, GRPC_STATUS_INTERNAL, "store pod CIDR: %s", q_error_msg(err));
  q_info(NULL, "pod CIDR set to '%s'", cidr);
  return GRPC_STATUS_OK;
}

static grpc_status_code rpc_list_pods(struct cri_call *call, const ProtobufCMessage *req,
                                      ProtobufCMessage **resp)
{
  const Runtime__V1__ListPodSandboxRequest *in = (const Runtime__V1__ListPodSandboxRequest *)req;
  struct cri_pod_filter f = {0};
  struct cri_kvs sel = {0};
  if (in->filter) {
    f.id = in->filter->id;
    if (in->filter->state) {
      f.has_state = true;
      f.state = (enum cri_pod_state)in->filter->state->state;
    }
    if (cri_conv_map_in((void *const *)in->filter->label_selector, in->filter->n_label_selector,
                        &sel) < 0)
      return OOM(call);
    f.label_selector = &sel;
  }
  struct cri_pod **pods = NULL;
  size_t n = 0;
  int e = cri_state_list_pods(cri_server_state(cri_call_server(call)), &f, &pods, &n);
  cri_kvs_clear(&sel);
  if (e < 0)
    return OOM(call);
  Runtime__V1__ListPodSandboxResponse *r =
      cri_call_new_msg(call, &runtime__v1__list_pod_sandbox_response__descriptor);
  if (r && n && (r->items = cri_call_alloc(call, n * sizeof(*r->items))))
    for (; r->n_items < n && (r->items[r->n_items] = cri_conv_pod(call, pods[r->n_items]));)
      r->n_items++;
  cri_pod_list_free(pods, n);
  if (!r || r->n_items != n)
    return OOM(call);
  *resp = &r->base;
  return GRPC_STATUS_OK;
}

static grpc_status_code rpc_list_ctrs(struct cri_call *call, const ProtobufCMessage *req,
                                      ProtobufCMessage **resp)
{
  const Runtime__V1__ListContainersRequest *in = (const Runtime__V1__ListContainersRequest *)req;
  struct cri_ctr_filter f = {0};
  struct cri_kvs sel = {0};
  if (in->filter) {
    f.id = in->filter->id;
    f.pod_id = in->filter->pod_sandbox_id;
    if (in->filter->state) {
      f.has_state = true;
      f.state = (enum cri_ctr_state)in->filter->state->state;
    }
    if (cri_conv_map_in((void *const *)in->filter->label_selector, in->filter->n_label_selector,
                        &sel) < 0)
      return OOM(call);
    f.label_selector = &sel;
  }
  struct cri_ctr **ctrs = NULL;
  size_t n = 0;
  int e = cri_state_list_ctrs(cri_server_state(cri_call_server(call)), &f, &ctrs, &n);
  cri_kvs_clear(&sel);
  if (e < 0)
    return OOM(call);
  Runtime__V1__ListContainersResponse *r =
      cri_call_new_msg(call, &runtime__v1__list_containers_response__descriptor);
  if (r && n && (r->containers = cri_call_alloc(call, n * sizeof(*r->containers))))
    for (; r->n_containers < n &&
           (r->containers[r->n_containers] = cri_conv_ctr(call, ctrs[r->n_containers]));)
      r->n_containers++;
  cri_ctr_list_free(ctrs, n);
  if (!r || r->n_containers != n)
    return OOM(call);
  *resp = &r->base;
  return GRPC_STATUS_OK;
}

/* Status calls take a full id or a unique prefix, as crictl does. */
static grpc_status_code resolve_error(struct cri_call *call, int e, const char *what,
                                      const char *id)
{
  if (e == -EEXIST)
    return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT, "%s id prefix '%s' is ambiguous",
                          what, id);
  return cri_call_error(call, GRPC_STATUS_NOT_FOUND, "%s '%s' not found", what, id);
}

static grpc_status_code rpc_pod_status(struct cri_call *call, const ProtobufCMessage *req,
                                       ProtobufCMessage **resp)
{
  const Runtime__V1__PodSandboxStatusRequest *in =
      (const Runtime__V1__PodSandboxStatusRequest *)req;
  struct cri_state *st = cri_server_state(cri_call_server(call));
  char id[65];
  int e = cri_state_resolve_pod(st, in->pod_sandbox_id, id);
  if (e < 0)
    return resolve_error(call, e, "pod sandbox", in->pod_sandbox_id);
  struct cri_pod *pod = NULL;
  if ((e = cri_state_get_pod(st, id, &pod)) < 0)
    return resolve_error(call, e, "pod sandbox", in->pod_sandbox_id);
  Runtime__V1__PodSandboxStatusResponse *r =
      cri_call_new_msg(call, &runtime__v1__pod_sandbox_status_response__descriptor);
  if (r) {
    r->status = cri_conv_pod_status(call, pod);
    r->timestamp = q_now_ns();
  }
  char *ext = in->verbose ? json_dumps(pod->ext, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  cri_pod_free(pod);
  if (!r || !r->status || (in->verbose && !ext)) {
    free(ext);
    return OOM(call);
  }
  if (ext) {
    struct cri_kvs info = {0};
    e = cri_kvs_set(&info, "info", ext);
    free(ext);
    if (e == 0)
      e = cri_conv_map_out(call, &runtime__v1__pod_sandbox_status_response__info_entry__descriptor,
                           &info, &r->n_info, &r->info);
    cri_kvs_clear(&info);
    if (e < 0)
      return OOM(call);
  }
  *resp = &r->base;
  return GRPC_STATUS_OK;
}

static grpc_status_code rpc_ctr_status(struct cri_call *call, const ProtobufCMessage *req,
                                       ProtobufCMessage **resp)
{
  const Runtime__V1__ContainerStatusRequest *in = (const Runtime__V1__ContainerStatusRequest *)req;
  struct cri_state *st = cri_server_state(cri_call_server(call));
  char id[65];
  int e = cri_state_resolve_ctr(st, in->container_id, id);
  if (e < 0)
    return resolve_error(call, e, "container", in->container_id);
  /* A running container may have exited since the monitor last looked. */
  struct cri_pods *pods = cri_server_pods_ctx(cri_call_server(call));
  if (pods)
    cri_pods_refresh_ctr(pods, id);
  struct cri_ctr *ctr = NULL;
  if ((e = cri_state_get_ctr(st, id, &ctr)) < 0)
    return resolve_error(call, e, "container", in->container_id);
  Runtime__V1__ContainerStatusResponse *r =
      cri_call_new_msg(call, &runtime__v1__container_status_response__descriptor);
  if (r)
    r->status = cri_conv_ctr_status(call, ctr);
  char *ext = in->verbose ? json_dumps(ctr->ext, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  cri_ctr_free(ctr);
  if (!r || !r->status || (in->verbose && !ext)) {
    free(ext);
    return OOM(call);
  }
  if (ext) {
    struct cri_kvs info = {0};
    e = cri_kvs_set(&info, "info", ext);
    free(ext);
    if (e == 0)
      e = cri_conv_map_out(call, &runtime__v1__container_status_response__info_entry__descriptor,
                           &info, &r->n_info, &r->info);
    cri_kvs_clear(&info);
    if (e < 0)
      return OOM(call);
  }
  *resp = &r->base;
  return GRPC_STATUS_OK;
}

int cri_runtime_register(struct cri_server *srv, q_error **err)
{
  static const struct {
    const char *name;
    cri_handler_fn fn;
  } table[] = {
      {"Version", rpc_version},
      {"Status", rpc_status},
      {"RuntimeConfig", rpc_runtime_config},
      {"UpdateRuntimeConfig", rpc_update_runtime_config},
      {"ListPodSandbox", rpc_list_pods},
      {"PodSandboxStatus", rpc_pod_status},
      {"ListContainers", rpc_list_ctrs},
      {"ContainerStatus", rpc_ctr_status},
  };
  for (size_t i = 0; i < Q_ARRAY_SIZE(table); i++) {
    int r = cri_server_set_handler(srv, "RuntimeService", table[i].name, table[i].fn);
    if (r < 0)
      return q_error_make(err, -r, "register RuntimeService/%s", table[i].name);
  }
  return 0;
}
