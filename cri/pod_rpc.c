/* RunPodSandbox, StopPodSandbox, RemovePodSandbox: one quark-sandbox (one
 * VM) per pod, in its own network namespace (CNI, or loopback only when no
 * CNI network is configured, or the host's for hostNetwork pods), with the
 * pod's resolv.conf, hosts and hostname in its run dir.
 *
 * Order in Run, undone in reverse on any failure: record (NOTREADY) -> run
 * dir -> network -> pod files -> sandbox -> record READY. The record comes
 * first so that a quarkd killed half way leaves a NOTREADY pod that
 * RemovePodSandbox cleans up, never an unlisted namespace or VM. A rollback
 * whose CNI DEL fails keeps that record and the namespace (rollback()):
 * StopPodSandbox and RemovePodSandbox run DEL again, and Remove refuses
 * while it keeps failing. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h" /* sandbox/jail */
#include "convert.h"
#include "pod_cgroup.h"
#include "pods.h"

#define POD_STOP_TIMEOUT_MS 10000
#define CTR_KILL_WAIT_MS 2000
#define MIB (1024LL * 1024LL)
#define MIN_POD_MEMORY_MIB 64

static struct cri_pods *pods_of(struct cri_call *call)
{
  return cri_server_pods_ctx(cri_call_server(call));
}

static const char *ext_str(const struct cri_pod *pod, const char *key)
{
  json_t *v = json_object_get(pod->ext, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool host_network(const Runtime__V1__PodSandboxConfig *cfg)
{
  return cfg->linux && cfg->linux->security_context &&
         cfg->linux->security_context->namespace_options &&
         cfg->linux->security_context->namespace_options->network ==
             RUNTIME__V1__NAMESPACE_MODE__NODE;
}

static bool printable_name(const char *s, size_t max)
{
  size_t n = strlen(s);
  if (n == 0 || n > max)
    return false;
  for (; *s; s++)
    if ((unsigned char)*s < 0x21 || *s == 0x7f || *s == '/')
      return false;
  return true;
}

/* Everything about the request that can be refused before anything is
 * created. */
static grpc_status_code validate(struct cri_call *call, const Runtime__V1__RunPodSandboxRequest *in)
{
  const char *h = in->runtime_handler ? in->runtime_handler : "";
  if (*h && strcmp(h, "quark") != 0)
    return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT,
                          "runtime handler '%.64s' is not served by quark (handlers: \"\" and "
                          "\"quark\")",
                          h);
  const Runtime__V1__PodSandboxConfig *c = in->config;
  if (!c || !c->metadata)
    return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT,
                          "pod sandbox config.metadata is "
                          "required");
  const Runtime__V1__PodSandboxMetadata *m = c->metadata;
  if (!printable_name(m->name, 253) || !printable_name(m->namespace_, 253) ||
      !printable_name(m->uid, 253))
    return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT,
                          "pod metadata name, namespace and uid must be 1..253 printable "
                          "characters without '/' (got '%.64s', '%.64s', '%.64s')",
                          m->name, m->namespace_, m->uid);
  if (c->hostname && *c->hostname && !printable_name(c->hostname, 64))
    return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT, "hostname '%.80s' is not valid",
                          c->hostname);
  if (c->log_directory && *c->log_directory && c->log_directory[0] != '/')
    return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT,
                          "log_directory '%.200s' is not an absolute path", c->log_directory);
  for (size_t i = 0; i < c->n_port_mappings; i++) {
    const Runtime__V1__PortMapping *pm = c->port_mappings[i];
    if (pm->container_port < 0 || pm->container_port > 65535 || pm->host_port < 0 ||
        pm->host_port > 65535)
      return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT,
                            "port mapping %zu: ports must be 0..65535 (%d -> %d)", i, pm->host_port,
                            pm->container_port);
  }
  if (c->linux)
    for (size_t i = 0; i < c->linux->n_sysctls; i++)
      if (strncmp(c->linux->sysctls[i]->key, "net.", 4) != 0 &&
          strncmp(c->linux->sysctls[i]->key, "net/", 4) != 0)
        return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT,
                              "sysctl '%.64s': only net.* sysctls are namespaced in a quark pod",
                              c->linux->sysctls[i]->key);
  /* A VM cannot join the host's pid or IPC namespace: refuse a hostPID or
   * hostIPC pod rather than run it seeing only its own processes. */
  const Runtime__V1__NamespaceOption *ns =
      c->linux && c->linux->security_context ? c->linux->security_context->namespace_options : NULL;
  if (ns && (ns->pid == RUNTIME__V1__NAMESPACE_MODE__NODE ||
             ns->ipc == RUNTIME__V1__NAMESPACE_MODE__NODE))
    return cri_call_error(call, GRPC_STATUS_UNIMPLEMENTED,
                          "the host's %s namespace (host%s) cannot be shared with a quark pod, "
                          "which runs in its own VM",
                          ns->pid == RUNTIME__V1__NAMESPACE_MODE__NODE ? "pid" : "IPC",
                          ns->pid == RUNTIME__V1__NAMESPACE_MODE__NODE ? "PID" : "IPC");
  return GRPC_STATUS_OK;
}

static const char *proto_name(Runtime__V1__Protocol p)
{
  return p == RUNTIME__V1__PROTOCOL__UDP    ? "UDP"
         : p == RUNTIME__V1__PROTOCOL__SCTP ? "SCTP"
                                            : "TCP";
}

/* The pod's memory: its resources (limit + overhead) when kubelet gives
 * them, else Sandbox.MemoryMiB. vCPUs: quota/period rounded up. */
static void pod_size(const struct cri_config *cfg, const Runtime__V1__PodSandboxConfig *c,
                     uint32_t *mem_mib, uint32_t *vcpus)
{
  *mem_mib = cfg->sandbox.memory_mib;
  *vcpus = cfg->sandbox.vcpus;
  const Runtime__V1__LinuxContainerResources *r = c->linux ? c->linux->resources : NULL;
  const Runtime__V1__LinuxContainerResources *o = c->linux ? c->linux->overhead : NULL;
  if (r && r->memory_limit_in_bytes > 0) {
    int64_t bytes = r->memory_limit_in_bytes +
                    (o && o->memory_limit_in_bytes > 0 ? o->memory_limit_in_bytes : 0);
    int64_t mib = (bytes + MIB - 1) / MIB;
    if (mib < MIN_POD_MEMORY_MIB)
      mib = MIN_POD_MEMORY_MIB;
    if (mib > 1048576)
      mib = 1048576;
    *mem_mib = (uint32_t)mib;
  }
  if (r && r->cpu_quota > 0 && r->cpu_period > 0) {
    int64_t n = (r->cpu_quota + r->cpu_period - 1) / r->cpu_period;
    *vcpus = (uint32_t)(n < 1 ? 1 : n > 256 ? 256 : n);
  }
}

struct run_ctx {
  struct cri_pods *p;
  const Runtime__V1__PodSandboxConfig *c;
  char id[65];
  char *run_dir;
  char *hostname;
  net_kv *annotations, *sysctls;
  net_port_mapping *ports;
  net_dns_config dns;
  net_pod np;
  net_pod_network *net; /* CNI result */
  json_t *cgroup;       /* the pod's cgroup record (pod_cgroup.h) */
  char *loop_netns;     /* the namespace quarkd created (loopback only or CNI) */
  const char *mode;
  char *note;
  struct sbx_client *sbx;
};

static void run_ctx_free(struct run_ctx *r)
{
  free(r->run_dir);
  free(r->hostname);
  free(r->annotations);
  free(r->sysctls);
  free(r->ports);
  net_pod_network_free(r->net);
  free(r->loop_netns);
  free(r->note);
  json_decref(r->cgroup);
}

static int build_net_pod(struct run_ctx *r)
{
  const Runtime__V1__PodSandboxConfig *c = r->c;
  r->annotations = calloc(c->n_annotations + 1, sizeof(net_kv));
  r->ports = calloc(c->n_port_mappings + 1, sizeof(net_port_mapping));
  size_t ns = c->linux ? c->linux->n_sysctls : 0;
  r->sysctls = calloc(ns + 1, sizeof(net_kv));
  if (!r->annotations || !r->ports || !r->sysctls)
    return -ENOMEM;
  for (size_t i = 0; i < c->n_annotations; i++)
    r->annotations[i] = (net_kv){c->annotations[i]->key, c->annotations[i]->value};
  for (size_t i = 0; i < ns; i++)
    r->sysctls[i] = (net_kv){c->linux->sysctls[i]->key, c->linux->sysctls[i]->value};
  for (size_t i = 0; i < c->n_port_mappings; i++) {
    const Runtime__V1__PortMapping *pm = c->port_mappings[i];
    r->ports[i] = (net_port_mapping){proto_name(pm->protocol), pm->container_port, pm->host_port,
                                     pm->host_ip};
  }
  if (c->dns_config)
    r->dns =
        (net_dns_config){(const char *const *)c->dns_config->servers,  c->dns_config->n_servers,
                         (const char *const *)c->dns_config->searches, c->dns_config->n_searches,
                         (const char *const *)c->dns_config->options,  c->dns_config->n_options};
  r->np = (net_pod){.id = r->id,
                    .name = c->metadata->name,
                    .namespace = c->metadata->namespace_,
                    .uid = c->metadata->uid,
                    .ports = r->ports,
                    .n_ports = c->n_port_mappings,
                    .annotations = r->annotations,
                    .n_annotations = c->n_annotations,
                    .dns = c->dns_config ? &r->dns : NULL,
                    .sysctls = r->sysctls,
                    .n_sysctls = ns,
                    .cgroup_parent = c->linux ? c->linux->cgroup_parent : NULL};
  return 0;
}

static int keep_pod(struct cri_pod *pod, void *arg)
{
  (void)pod;
  (void)arg;
  return 0;
}

/* CNI when a default network is configured; loopback only when none is
 * (the pod still runs, and its status says why); nothing for hostNetwork. */
static int setup_network(struct run_ctx *r, q_error **err)
{
  if (host_network(r->c)) {
    r->mode = "host";
    return 0;
  }
  net_conf_list *l = NULL;
  q_cleanup_error q_error *lerr = NULL;
  int rc = net_conf_load_default(net_cni_conf_dir(r->p->cni), &l, &lerr);
  net_conf_list_free(l);
  if (rc == -ENOENT) {
    r->mode = "loopback";
    if (asprintf(&r->note, "no CNI network (%s): loopback only", q_error_msg(lerr)) < 0)
      r->note = NULL;
    char path[64];
    cri_pods_netns_path(r->id, path);
    if ((rc = net_netns_create(NULL, strrchr(path, '/') + 1, &r->loop_netns, err)) < 0)
      return rc;
    if ((rc = net_netns_set_sysctls(r->loop_netns, r->sysctls, r->np.n_sysctls, err)) < 0)
      return rc;
    q_info(r->id, "%s", r->note ? r->note : "loopback only");
    return 0;
  }
  r->mode = "cni";
  /* The namespace gets the pod's name before CNI ADD, as in loopback mode,
   * so a restart can find and tear down what a killed quarkd set up before
   * it recorded the network (pod_reconcile.c). */
  char path[64];
  cri_pods_netns_path(r->id, path);
  if ((rc = net_netns_create(NULL, strrchr(path, '/') + 1, &r->loop_netns, err)) < 0)
    return rc;
  r->np.netns_path = r->loop_netns;
  /* CNI ADD leaves state on disk (IPAM reservations) that outlives a power
   * loss: the NOTREADY record a restart undoes it from is made durable
   * first (store.c "Durability"); host and loopback pods skip this. */
  if ((rc = cri_state_update_pod(r->p->st, r->id, keep_pod, NULL, err)) < 0)
    return rc;
  return net_pod_setup(r->p->cni, &r->np, &r->net, err);
}

static const char *netns_of(const struct run_ctx *r)
{
  return r->net ? r->net->netns_path : r->loop_netns;
}

/* What a failed RunPodSandbox keeps when its CNI DEL fails (containerd
 * keeps such a sandbox too): the record, NOTREADY with no sandbox, naming
 * the netns and the DEL's error, and the netns itself, still mounted, so
 * that kubelet's garbage collection (StopPodSandbox, RemovePodSandbox) or a
 * restart (pod_reconcile.c) runs DEL again. Durable: what it names outlives
 * a power loss (IPAM reservations, iptables rules). */
struct pending_net {
  const char *netns, *why;
};

static int set_teardown_pending(struct cri_pod *pod, void *arg)
{
  const struct pending_net *x = arg;
  json_t *msg = json_string(x->why);
  pod->state = CRI_POD_NOTREADY;
  json_object_set_new(pod->ext, POD_EXT_NETMODE, json_string("cni"));
  json_object_set_new(pod->ext, POD_EXT_NETNS, json_string(x->netns));
  json_object_set_new(pod->ext, POD_EXT_NETPENDING,
                      msg ? msg : json_string("CNI DEL failed (its message is not UTF-8)"));
  return 0;
}

/* Undoes a RunPodSandbox that failed. CNI DEL runs whenever ADD may have
 * begun (the namespace was created for CNI), even when net_pod_setup
 * already undid its partial ADD: DEL is idempotent, and only this one
 * decides whether anything is left. When it fails, the pod is kept (see
 * set_teardown_pending) and *del_err says why; returns true then. */
static bool rollback(struct run_ctx *r, q_error **del_err)
{
  q_cleanup_error q_error *err = NULL;
  if (r->sbx) {
    if (sbx_client_stop(r->sbx, 0, &err) < 0)
      q_warn(r->id, "rollback: stop sandbox: %s", q_error_msg(err));
    q_error_free(&err);
    sbx_client_close(r->sbx);
    r->sbx = NULL;
  }
  bool keep = false;
  if (r->loop_netns && r->mode && !strcmp(r->mode, "cni")) {
    r->np.netns_path = r->loop_netns;
    if (net_pod_detach(r->p->cni, &r->np, del_err) < 0) {
      q_warn(r->id, "rollback: network (kept for a retry): %s", q_error_msg(*del_err));
      keep = true;
    }
  }
  if (!keep && r->loop_netns && net_netns_remove(r->loop_netns, &err) < 0)
    q_warn(r->id, "rollback: netns: %s", q_error_msg(err));
  q_error_free(&err);
  if (r->run_dir && q_rm_rf(r->run_dir, &err) < 0)
    q_warn(r->id, "rollback: %s", q_error_msg(err));
  q_error_free(&err);
  const char *cg = json_string_value(json_object_get(r->cgroup, "Path"));
  if (cg && sbx_cgroup_remove(cg, &err) < 0)
    q_warn(r->id, "rollback: %s", q_error_msg(err));
  q_error_free(&err);
  if (keep) {
    /* Should this write fail, the NOTREADY record without a control socket
     * is still there, and teardown finds the netns by the pod's id. */
    struct pending_net x = {r->loop_netns, q_error_msg(*del_err)};
    if (cri_state_update_pod(r->p->st, r->id, set_teardown_pending, &x, &err) < 0)
      q_warn(r->id, "rollback: record the pending network teardown: %s", q_error_msg(err));
    return true;
  }
  if (cri_state_remove_pod(r->p->st, r->id, &err) < 0)
    q_warn(r->id, "rollback: record: %s", q_error_msg(err));
  return false;
}

static int set_network(struct cri_pod *pod, void *arg)
{
  struct run_ctx *r = arg;
  json_t *ips = json_array();
  const char *ns = netns_of(r);
  if (ns)
    json_object_set_new(pod->ext, POD_EXT_NETNS, json_string(ns));
  json_object_set_new(pod->ext, POD_EXT_NETMODE, json_string(r->mode));
  if (r->note)
    json_object_set_new(pod->ext, POD_EXT_NETNOTE, json_string(r->note));
  json_object_set_new(pod->ext, POD_EXT_IP,
                      json_string(r->net && r->net->primary_ip ? r->net->primary_ip : ""));
  for (size_t i = 0; r->net && i < r->net->n_additional_ips; i++)
    json_array_append_new(ips, json_string(r->net->additional_ips[i]));
  json_object_set_new(pod->ext, POD_EXT_IPS, ips);
  return 0;
}

static int set_cgroup(struct cri_pod *pod, void *arg)
{
  return json_object_set(pod->ext, POD_EXT_CGROUP, arg) < 0 ? -ENOMEM : 0;
}

static int set_ready(struct cri_pod *pod, void *arg)
{
  pod->state = CRI_POD_READY;
  json_object_set_new(pod->ext, POD_EXT_SOCKET, json_string((const char *)arg));
  return 0;
}

static bool name_taken(struct cri_pods *p, const Runtime__V1__PodSandboxMetadata *m, char *who)
{
  struct cri_pod **v = NULL;
  size_t n = 0;
  bool taken = false;
  if (cri_state_list_pods(p->st, NULL, &v, &n) < 0)
    return false;
  for (size_t i = 0; i < n && !taken; i++)
    if (!strcmp(v[i]->name, m->name) && !strcmp(v[i]->ns, m->namespace_) &&
        !strcmp(v[i]->uid, m->uid) && v[i]->attempt == m->attempt) {
      taken = true;
      memcpy(who, v[i]->id, 65);
    }
  cri_pod_list_free(v, n);
  return taken;
}

static grpc_status_code rpc_run_pod(struct cri_call *call, const ProtobufCMessage *req,
                                    ProtobufCMessage **resp)
{
  const Runtime__V1__RunPodSandboxRequest *in = (const Runtime__V1__RunPodSandboxRequest *)req;
  struct cri_pods *p = pods_of(call);
  grpc_status_code code = validate(call, in);
  if (code != GRPC_STATUS_OK)
    return code;
  const Runtime__V1__PodSandboxConfig *c = in->config;
  char other[65];

  struct run_ctx r = {.p = p, .c = c};
  q_cleanup_error q_error *err = NULL;
  int64_t tm[5] = {q_mono_ns()}; /* phase marks for the debug log */
  int rc;
  if (q_random_id(r.id) < 0)
    return cri_call_error(call, GRPC_STATUS_INTERNAL, "cannot make a pod id");
  uint32_t mem, vcpus;
  pod_size(p->cfg, c, &mem, &vcpus);
  char hostbuf[65] = "";
  const char *hostname = c->hostname && *c->hostname ? c->hostname : NULL;
  if (!hostname && host_network(c) && gethostname(hostbuf, sizeof(hostbuf) - 1) == 0)
    hostname = hostbuf;
  if (!hostname)
    hostname = c->metadata->name;
  if (!(r.hostname = strndup(hostname, 64)) ||
      asprintf(&r.run_dir, "%s/%.32s", p->run_root, r.id) < 0 || build_net_pod(&r) < 0) {
    r.run_dir = NULL;
    run_ctx_free(&r);
    return cri_call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  }

  struct cri_pod rec = {.name = c->metadata->name,
                        .uid = c->metadata->uid,
                        .ns = c->metadata->namespace_,
                        .attempt = c->metadata->attempt,
                        .state = CRI_POD_NOTREADY,
                        .created_at = q_now_ns(),
                        .runtime_handler = in->runtime_handler ? in->runtime_handler : "",
                        .hostname = r.hostname,
                        .log_directory = c->log_directory ? c->log_directory : ""};
  memcpy(rec.id, r.id, 65);
  json_t *ports = json_array();
  for (size_t i = 0; i < c->n_port_mappings; i++)
    json_array_append_new(ports, json_pack("{s:s,s:i,s:i,s:s}", "Protocol", r.ports[i].protocol,
                                           "ContainerPort", r.ports[i].container_port, "HostPort",
                                           r.ports[i].host_port, "HostIp",
                                           r.ports[i].host_ip ? r.ports[i].host_ip : ""));
  /* The pod's pid mode as CRI reads it (unset is POD, as for containers:
   * ctr_rpc.c), for PodSandboxStatus. */
  const Runtime__V1__NamespaceOption *nso =
      c->linux && c->linux->security_context ? c->linux->security_context->namespace_options
                                             : NULL;
  const char *pid_mode =
      nso && nso->pid != RUNTIME__V1__NAMESPACE_MODE__POD ? "CONTAINER" : "POD";
  rec.ext = json_pack("{s:s,s:o,s:i,s:i,s:s}", POD_EXT_RUNDIR, r.run_dir, POD_EXT_PORTS, ports,
                      POD_EXT_MEMORY, (int)mem, POD_EXT_VCPUS, (int)vcpus, POD_EXT_PIDMODE,
                      pid_mode);
  if (!rec.ext || cri_conv_map_in((void *const *)c->labels, c->n_labels, &rec.labels) < 0 ||
      cri_conv_map_in((void *const *)c->annotations, c->n_annotations, &rec.annotations) < 0) {
    json_decref(rec.ext);
    cri_kvs_clear(&rec.labels);
    cri_kvs_clear(&rec.annotations);
    run_ctx_free(&r);
    return cri_call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  }
  /* The name check and the record are one step: two identical requests at
   * once make one pod. */
  pthread_mutex_lock(&p->names);
  bool taken = name_taken(p, c->metadata, other);
  rc = taken ? 0 : cri_state_add_pod(p->st, &rec, &err);
  pthread_mutex_unlock(&p->names);
  json_decref(rec.ext);
  cri_kvs_clear(&rec.labels);
  cri_kvs_clear(&rec.annotations);
  if (taken) {
    run_ctx_free(&r);
    return cri_call_error(
        call, GRPC_STATUS_ALREADY_EXISTS, "pod %s/%s (uid %s, attempt %u) already exists as %s",
        c->metadata->namespace_, c->metadata->name, c->metadata->uid, c->metadata->attempt, other);
  }
  if (rc < 0) {
    run_ctx_free(&r);
    return cri_pods_fail(call, rc, &err, "store pod");
  }

  struct cri_pod_entry *e = cri_pods_get(p, r.id);
  if (!e) {
    cri_state_remove_pod(p->st, r.id, NULL);
    run_ctx_free(&r);
    return cri_call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  }
  pthread_mutex_lock(&e->op);
  const char *step = "pod run dir";
  if ((rc = q_mkdir_p(r.run_dir, 0711, &err)) < 0)
    goto fail;
  step = "pod cgroup";
  /* Staged: a power loss takes the cgroup with it; READY below makes the
   * record durable before the client hears of the pod. */
  if ((rc = cri_pod_cgroup_plan(r.id, c, mem, &r.cgroup, &err)) < 0 ||
      (rc = cri_state_stage_pod(p->st, r.id, set_cgroup, r.cgroup, &err)) < 0 ||
      (rc = cri_pod_cgroup_apply(r.cgroup, &err)) < 0)
    goto fail;
  const char *cgroup = json_string_value(json_object_get(r.cgroup, "Path"));
  step = "pod network";
  if ((rc = setup_network(&r, &err)) < 0)
    goto fail;
  step = "store pod network";
  /* Staged, like the NOTREADY record: READY below makes it durable before
   * the client hears of the pod (one fsync pair per RunPodSandbox). */
  if ((rc = cri_state_stage_pod(p->st, r.id, set_network, &r, &err)) < 0)
    goto fail;
  tm[1] = q_mono_ns();
  step = "pod files";
  const char *ips[16];
  size_t n_ips = 0;
  if (r.net && r.net->primary_ip)
    ips[n_ips++] = r.net->primary_ip;
  for (size_t i = 0; r.net && i < r.net->n_additional_ips && n_ips < Q_ARRAY_SIZE(ips); i++)
    ips[n_ips++] = r.net->additional_ips[i];
  if ((rc = net_write_pod_files(r.run_dir, c->dns_config ? &r.dns : NULL, NULL, r.hostname, NULL,
                                ips, n_ips, &err)) < 0)
    goto fail;
  step = "start sandbox";
  char *sbx_log = NULL;
  if (asprintf(&sbx_log, "%s/sandbox.log", r.run_dir) < 0) {
    rc = q_error_make(&err, ENOMEM, "sandbox log path");
    goto fail;
  }
  /* TSoR (README "TSoR"): pods attach to the node's tsord (Tsor.Socket) as
   * their pod IP when Tsor.Enabled, or per pod with the annotation
   * quark.io/tsor "true"/"false"; quark.io/tsor-cidrs names the TSoR pod
   * CIDRs. */
  bool tsor_on = p->cfg->tsor.enabled, tsor_asked = false;
  const char *tsor_cidrs = NULL;
  for (size_t i = 0; i < c->n_annotations; i++) {
    if (!strcmp(c->annotations[i]->key, "quark.io/tsor"))
      tsor_on = tsor_asked = !strcmp(c->annotations[i]->value, "true");
    else if (!strcmp(c->annotations[i]->key, "quark.io/tsor-cidrs"))
      tsor_cidrs = c->annotations[i]->value;
  }
  bool tsor_v4 = r.net && r.net->primary_ip && !strchr(r.net->primary_ip, ':');
  if (tsor_on && !tsor_v4 && !tsor_asked)
    tsor_on = false; /* node-wide: pods without an IPv4 pod IP (hostNetwork) stay off */
  const char *tsor_sock = tsor_on ? p->cfg->tsor.socket : NULL;
  if (tsor_sock && !tsor_v4) {
    free(sbx_log);
    rc = q_error_make(&err, EINVAL, "quark.io/tsor needs an IPv4 pod IP (a CNI network)");
    goto fail;
  }
  struct sbx_pod_spec spec = {.pod_id = r.id,
                              .tsor_socket = tsor_sock,
                              .tsor_ip = tsor_sock ? r.net->primary_ip : NULL,
                              .tsor_cidrs = tsor_cidrs,
                              .sandbox_binary = p->cfg->sandbox.binary,
                              .kernel = p->cfg->sandbox.kernel,
                              .memory_mib = mem,
                              .vcpus = vcpus,
                              .netns_path = netns_of(&r),
                              .hostname = r.hostname,
                              .run_dir = r.run_dir,
                              .cgroup = cgroup,
                              .log_path = sbx_log};
  tm[2] = q_mono_ns();
  rc = sbx_client_create(&spec, &r.sbx, &err);
  tm[3] = q_mono_ns();
  free(sbx_log);
  if (rc < 0)
    goto fail;
  step = "store pod";
  if ((rc = cri_state_update_pod(p->st, r.id, set_ready, (void *)sbx_client_socket(r.sbx), &err)) <
      0)
    goto fail;
  cri_pods_set_sbx(e, r.sbx);
  r.sbx = NULL;
  pthread_mutex_unlock(&e->op);
  cri_pods_put(p, e);
  tm[4] = q_mono_ns();
  q_info(r.id, "pod %s/%s running (%s network, %u MiB, %u vCPUs)", c->metadata->namespace_,
         c->metadata->name, r.mode, mem, vcpus);
  q_debug(r.id,
          "RunPodSandbox phases (ms): record+network %.1f, pod files %.1f, sandbox %.1f, "
          "store %.1f",
          (double)(tm[1] - tm[0]) / 1e6, (double)(tm[2] - tm[1]) / 1e6,
          (double)(tm[3] - tm[2]) / 1e6, (double)(tm[4] - tm[3]) / 1e6);

  Runtime__V1__RunPodSandboxResponse *out =
      cri_call_new_msg(call, &runtime__v1__run_pod_sandbox_response__descriptor);
  if (!out || !(out->pod_sandbox_id = cri_call_strdup(call, r.id))) {
    run_ctx_free(&r);
    return cri_call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  }
  run_ctx_free(&r);
  *resp = &out->base;
  return GRPC_STATUS_OK;

fail:;
  q_error *del_err = NULL;
  bool kept = rollback(&r, &del_err);
  if (!kept)
    cri_pods_forget(p, e);
  pthread_mutex_unlock(&e->op);
  cri_pods_put(p, e);
  run_ctx_free(&r);
  q_warn(NULL, "RunPodSandbox %s/%s failed at %s: %s", c->metadata->namespace_, c->metadata->name,
         step, q_error_msg(err));
  if (kept) {
    /* The ADD's (or start's) error stays the answer; the DEL's follows. */
    q_error_wrap(&del_err,
                 "%s; and the rollback's CNI DEL failed too, so pod %s stays NOTREADY with its "
                 "network namespace until StopPodSandbox or RemovePodSandbox can tear it down",
                 q_error_msg(err), r.id);
    q_error_free(&err);
    err = del_err;
  }
  return cri_pods_fail(call, rc, &err, step);
}

/* ---- stop and remove ---- */

static grpc_status_code find_pod(struct cri_call *call, const char *id_in, struct cri_pod **pod)
{
  struct cri_pods *p = pods_of(call);
  char id[65];
  int e = cri_state_resolve_pod(p->st, id_in ? id_in : "", id);
  if (e == -EEXIST)
    return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT,
                          "pod sandbox id prefix '%s' is "
                          "ambiguous",
                          id_in);
  if (e < 0 || !id_in || !*id_in || cri_state_get_pod(p->st, id, pod) < 0)
    return cri_call_error(call, GRPC_STATUS_NOT_FOUND, "pod sandbox '%.80s' not found",
                          id_in ? id_in : "");
  return GRPC_STATUS_OK;
}

struct exit_rec {
  const struct sbx_container_status *s;
  bool unknown;
};

static int record_exit(struct cri_ctr *c, void *arg)
{
  const struct exit_rec *x = arg;
  if (c->state == CRI_CTR_EXITED)
    return -EALREADY;
  const char *reason = x->unknown             ? "Unknown"
                       : x->s->oom_killed     ? "OOMKilled"
                       : x->s->exit_code == 0 ? "Completed"
                                              : "Error";
  char *rs = strdup(reason);
  if (!rs)
    return -ENOMEM;
  free(c->reason);
  c->reason = rs;
  c->state = CRI_CTR_EXITED;
  c->exit_code = x->unknown ? 137 : x->s->exit_code;
  c->finished_at = !x->unknown && x->s->finished_at ? x->s->finished_at : q_now_ns();
  if (!c->started_at)
    c->started_at = c->finished_at;
  return 0;
}

static int set_notready(struct cri_pod *pod, void *arg)
{
  pod->state = CRI_POD_NOTREADY;
  return 0;
}

static int clear_teardown_pending(struct cri_pod *pod, void *arg)
{
  (void)arg;
  return json_object_del(pod->ext, POD_EXT_NETPENDING) < 0 ? -EALREADY : 0;
}

/* Stops the pod's containers and its VM, then detaches its network (the
 * namespace stays until Remove). Caller holds the op lock. */
static int stop_pod(struct cri_pods *p, struct cri_pod_entry *e, const struct cri_pod *pod,
                    q_error **err)
{
  q_cleanup_error q_error *serr = NULL;
  int rc = 0;
  struct sbx_client *c = cri_pods_sbx_any(p, e, pod, &rc, &serr);
  struct cri_ctr_filter f = {.pod_id = pod->id};
  struct cri_ctr **v = NULL;
  size_t n = 0;
  if ((rc = cri_state_list_ctrs(p->st, &f, &v, &n)) < 0)
    return q_error_make(err, -rc, "list containers");
  for (size_t i = 0; i < n; i++) {
    if (strcmp(v[i]->pod_id, pod->id) || v[i]->state == CRI_CTR_EXITED)
      continue;
    struct sbx_container_status s = {0};
    struct exit_rec x = {.s = &s, .unknown = true};
    if (c && v[i]->state == CRI_CTR_RUNNING) {
      sbx_container_signal(c, v[i]->id, 9, NULL);
      if (sbx_container_wait(c, v[i]->id, CTR_KILL_WAIT_MS, &s, NULL) == 0 &&
          s.state == SBX_PROC_EXITED)
        x.unknown = false;
    }
    cri_state_update_ctr(p->st, v[i]->id, record_exit, &x, NULL);
  }
  cri_ctr_list_free(v, n);
  if (c) {
    if ((rc = sbx_client_stop(c, POD_STOP_TIMEOUT_MS, err)) < 0 && rc != -ESRCH)
      return q_error_wrap(err, "stop sandbox");
  }
  cri_pods_set_sbx(e, NULL);
  if ((rc = cri_pod_cgroup_remove(pod, err)) < 0) /* and any VMM left in it */
    return rc;
  if ((rc = cri_state_update_pod(p->st, pod->id, set_notready, NULL, err)) < 0)
    return rc;
  const char *mode = ext_str(pod, POD_EXT_NETMODE);
  if (mode && !strcmp(mode, "cni")) {
    net_pod np = {.id = pod->id,
                  .name = pod->name,
                  .namespace = pod->ns,
                  .uid = pod->uid,
                  .netns_path = ext_str(pod, POD_EXT_NETNS)};
    if ((rc = net_pod_detach(p->cni, &np, err)) < 0)
      return q_error_wrap(err, "CNI DEL (the pod keeps its network namespace and record until "
                               "a retry succeeds)");
    if (json_object_get(pod->ext, POD_EXT_NETPENDING))
      cri_state_update_pod(p->st, pod->id, clear_teardown_pending, NULL, NULL);
  }
  return 0;
}

static grpc_status_code rpc_stop_pod(struct cri_call *call, const ProtobufCMessage *req,
                                     ProtobufCMessage **resp)
{
  const Runtime__V1__StopPodSandboxRequest *in = (const Runtime__V1__StopPodSandboxRequest *)req;
  struct cri_pods *p = pods_of(call);
  struct cri_pod *pod = NULL;
  grpc_status_code code = find_pod(call, in->pod_sandbox_id, &pod);
  if (code != GRPC_STATUS_OK)
    return code;
  struct cri_pod_entry *e = cri_pods_get(p, pod->id);
  if (!e) {
    cri_pod_free(pod);
    return cri_call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  }
  pthread_mutex_lock(&e->op);
  /* Re-read under the lock: a concurrent Stop or Remove may have won. */
  struct cri_pod *now = NULL;
  q_cleanup_error q_error *err = NULL;
  int rc = 0;
  if (cri_state_get_pod(p->st, pod->id, &now) == 0)
    rc = stop_pod(p, e, now, &err);
  pthread_mutex_unlock(&e->op);
  cri_pods_put(p, e);
  cri_pod_free(now);
  cri_pod_free(pod);
  if (rc < 0)
    return cri_pods_fail(call, rc, &err, "StopPodSandbox");
  return GRPC_STATUS_OK;
}

static grpc_status_code rpc_remove_pod(struct cri_call *call, const ProtobufCMessage *req,
                                       ProtobufCMessage **resp)
{
  const Runtime__V1__RemovePodSandboxRequest *in =
      (const Runtime__V1__RemovePodSandboxRequest *)req;
  struct cri_pods *p = pods_of(call);
  struct cri_pod *pod = NULL;
  char id[65];
  /* Removal is idempotent: an unknown pod is already removed. */
  if (!in->pod_sandbox_id || !*in->pod_sandbox_id ||
      cri_state_resolve_pod(p->st, in->pod_sandbox_id, id) < 0)
    return GRPC_STATUS_OK;
  struct cri_pod_entry *e = cri_pods_get(p, id);
  if (!e)
    return cri_call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  pthread_mutex_lock(&e->op);
  q_cleanup_error q_error *err = NULL;
  int rc = 0;
  const char *step = "RemovePodSandbox";
  if (cri_state_get_pod(p->st, id, &pod) < 0)
    goto out;
  /* Marked first: a restart from here on finishes the removal
   * (pod_reconcile.c). */
  step = "mark pod removing";
  if ((rc = cri_pods_mark_removing(p, id, &err)) < 0)
    goto out;
  step = "stop pod";
  if ((rc = stop_pod(p, e, pod, &err)) < 0)
    goto out;
  if ((rc = cri_pods_teardown(p, e, pod, &step, &err)) < 0)
    goto out;
  cri_pods_forget(p, e);
  q_info(id, "pod removed");
out:
  pthread_mutex_unlock(&e->op);
  cri_pods_put(p, e);
  cri_pod_free(pod);
  if (rc < 0)
    return cri_pods_fail(call, rc, &err, step);
  return GRPC_STATUS_OK;
}

int cri_pod_rpc_register(struct cri_server *srv, q_error **err)
{
  static const struct {
    const char *name;
    cri_handler_fn fn;
  } table[] = {
      {"RunPodSandbox", rpc_run_pod},
      {"StopPodSandbox", rpc_stop_pod},
      {"RemovePodSandbox", rpc_remove_pod},
  };
  for (size_t i = 0; i < Q_ARRAY_SIZE(table); i++) {
    int r = cri_server_set_handler(srv, "RuntimeService", table[i].name, table[i].fn);
    if (r < 0)
      return q_error_make(err, -r, "register RuntimeService/%s", table[i].name);
  }
  return 0;
}
