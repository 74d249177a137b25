/* ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats.
 * - Containers: CPU and memory as the guest kernel counts them (through the
 *   sandbox), left out when the sandbox cannot answer (a stopped pod).
 * - Pods: CPU and memory as the host pays for them, from the pod's cgroup
 *   (<cgroup_parent>/quark-<id>, path in the pod record, pod_cgroup.h),
 *   which holds the VMM process: its vCPU threads (the guest's own work,
 *   ring-0 emulation included), QCall workers and I/O, and the host memory
 *   backing the guest plus the VMM's own. This is what kubelet's eviction
 *   and the summary API must see; when the cgroup cannot be read, the
 *   sandbox's own report (the VMM process's CPU time and RSS). The pod's
 *   process count is the sum of its containers' guest processes, its
 *   network the interface counters of its network namespace.
 * - Writable layer: bytes and inodes of the container's overlay upper dir
 *   on the host, always there. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cgroup.h" /* sandbox/jail */
#include "convert.h"
#include "image.h"
#include "pod_cgroup.h"
#include "pods.h"
#include "stats.h"

static struct cri_pods *pods_of(struct cri_call *call)
{
  return cri_server_pods_ctx(cri_call_server(call));
}

static Runtime__V1__UInt64Value *u64(struct cri_call *call, uint64_t v)
{
  Runtime__V1__UInt64Value *m = cri_call_new_msg(call, &runtime__v1__uint64_value__descriptor);
  if (m)
    m->value = v;
  return m;
}

static int fill_cpu_mem(struct cri_call *call, const struct sbx_stats *s,
                        Runtime__V1__CpuUsage **cpu, Runtime__V1__MemoryUsage **mem)
{
  *cpu = cri_call_new_msg(call, &runtime__v1__cpu_usage__descriptor);
  *mem = cri_call_new_msg(call, &runtime__v1__memory_usage__descriptor);
  if (!*cpu || !*mem)
    return -ENOMEM;
  int64_t ts = s->timestamp ? s->timestamp : q_now_ns();
  (*cpu)->timestamp = ts;
  (*mem)->timestamp = ts;
  if (!((*cpu)->usage_core_nano_seconds = u64(call, s->cpu_usage_ns)) ||
      !((*mem)->working_set_bytes = u64(call, s->memory_working_set_bytes)) ||
      !((*mem)->usage_bytes = u64(call, s->memory_usage_bytes)) ||
      !((*mem)->rss_bytes = u64(call, s->memory_rss_bytes)))
    return -ENOMEM;
  return 0;
}

/* The value of "key value" line `key` in a cgroup stat file; false when it
 * is not there. */
static bool stat_key(const char *text, const char *key, uint64_t *v)
{
  size_t k = strlen(key);
  for (const char *l = text; *l;) {
    if (!strncmp(l, key, k) && l[k] == ' ') {
      *v = strtoull(l + k + 1, NULL, 10);
      return true;
    }
    const char *nl = strchr(l, '\n');
    if (!nl)
      break;
    l = nl + 1;
  }
  return false;
}

/* A number, or v2's "max" (no limit: 0). */
static bool parse_u64(const char *s, uint64_t *v)
{
  if (!strcmp(s, "max")) {
    *v = 0;
    return true;
  }
  char *end;
  *v = strtoull(s, &end, 10);
  return end != s && (*end == 0 || *end == '\n');
}

int cri_stats_cgroup_parse(bool v2, const char *cpu, const char *usage, const char *limit,
                           const char *memstat, struct cri_host_stats *h)
{
  uint64_t inactive = 0;
  *h = (struct cri_host_stats){0};
  if (!(v2 ? stat_key(cpu, "usage_usec", &h->cpu_ns) : parse_u64(cpu, &h->cpu_ns)) ||
      !parse_u64(usage, &h->usage))
    return -EINVAL;
  if (v2)
    h->cpu_ns *= 1000;
  /* v1's "no limit" is a huge number */
  if (limit && parse_u64(limit, &h->limit) && h->limit >= (UINT64_MAX >> 2))
    h->limit = 0;
  /* v1: the totals over the cgroup and its children */
  const char *pre = v2 ? "" : "total_";
  char key[32];
  snprintf(key, sizeof key, "%sinactive_file", pre);
  stat_key(memstat, key, &inactive);
  snprintf(key, sizeof key, "%s%s", pre, v2 ? "anon" : "rss");
  stat_key(memstat, key, &h->rss);
  snprintf(key, sizeof key, "%spgfault", pre);
  stat_key(memstat, key, &h->faults);
  snprintf(key, sizeof key, "%spgmajfault", pre);
  stat_key(memstat, key, &h->major_faults);
  h->working_set = h->usage > inactive ? h->usage - inactive : 0;
  return 0;
}

/* Reads the pod cgroup's files: v1 cpuacct.usage, memory.usage_in_bytes,
 * memory.limit_in_bytes, memory.stat; v2 cpu.stat, memory.current,
 * memory.max, memory.stat. */
static bool host_pod_stats(const struct cri_pod *pod, struct cri_host_stats *h)
{
  const char *path =
      json_string_value(json_object_get(json_object_get(pod->ext, POD_EXT_CGROUP), "Path"));
  if (!path)
    return false;
  bool v2 = sbx_cgroup_v2();
  char ms[8192], cs[1024], us[64], ls[64];
  if (sbx_cgroup_read(path, "cpuacct", v2 ? "cpu.stat" : "cpuacct.usage", cs, sizeof cs) < 0 ||
      sbx_cgroup_read(path, "memory", v2 ? "memory.current" : "memory.usage_in_bytes", us,
                      sizeof us) < 0 ||
      sbx_cgroup_read(path, "memory", "memory.stat", ms, sizeof ms) < 0)
    return false;
  bool lim = sbx_cgroup_read(path, "memory", v2 ? "memory.max" : "memory.limit_in_bytes", ls,
                             sizeof ls) == 0;
  return cri_stats_cgroup_parse(v2, cs, us, lim ? ls : NULL, ms, h) == 0;
}

size_t cri_stats_net_dev_parse(const char *text, struct cri_net_if *out, size_t max)
{
  size_t n = 0;
  for (const char *l = text; *l && n < max;) {
    const char *nl = strchr(l, '\n');
    const char *colon = strchr(l, ':');
    if (colon && (!nl || colon < nl)) {
      while (*l == ' ')
        l++;
      size_t len = (size_t)(colon - l);
      unsigned long long v[16];
      /* rx: bytes packets errs drop fifo frame compressed multicast,
       * tx: bytes packets errs drop fifo colls carrier compressed */
      if (len && len < sizeof out->name && !(len == 2 && !strncmp(l, "lo", 2)) &&
          sscanf(colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                 &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10]) == 11) {
        memcpy(out[n].name, l, len);
        out[n].name[len] = 0;
        out[n].rx_bytes = v[0];
        out[n].rx_errors = v[2];
        out[n].tx_bytes = v[8];
        out[n].tx_errors = v[10];
        n++;
      }
    }
    if (!nl)
      break;
    l = nl + 1;
  }
  return n;
}

/* The pod network's interface counters: /proc/<pid>/net/dev of a process of
 * the pod's cgroup that is in the pod's pinned network namespace (the
 * jailed VMM); none for a host-network pod or when nothing is found. */
static size_t pod_net(const struct cri_pod *pod, struct cri_net_if *out, size_t max)
{
  json_t *cg = json_object_get(pod->ext, POD_EXT_CGROUP);
  const char *path = json_string_value(json_object_get(cg, "Path"));
  const char *netns = json_string_value(json_object_get(pod->ext, POD_EXT_NETNS));
  struct stat want;
  char procs[256];
  if (!path || !netns || stat(netns, &want) < 0 ||
      sbx_cgroup_read(path, "memory", "cgroup.procs", procs, sizeof procs) < 0)
    return 0;
  for (char *save = NULL, *t = strtok_r(procs, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
    char f[64];
    struct stat ns;
    snprintf(f, sizeof f, "/proc/%.20s/ns/net", t);
    if (stat(f, &ns) < 0 || ns.st_ino != want.st_ino || ns.st_dev != want.st_dev)
      continue;
    snprintf(f, sizeof f, "/proc/%.20s/net/dev", t);
    q_cleanup_free char *text = NULL;
    size_t len = 0;
    if (q_read_file(f, 1 << 20, &text, &len, NULL) < 0)
      return 0;
    return cri_stats_net_dev_parse(text, out, max);
  }
  return 0;
}

static Runtime__V1__NetworkInterfaceUsage *net_if(struct cri_call *call, const struct cri_net_if *i)
{
  Runtime__V1__NetworkInterfaceUsage *u =
      cri_call_new_msg(call, &runtime__v1__network_interface_usage__descriptor);
  if (!u || !(u->name = cri_call_strdup(call, i->name)) ||
      !(u->rx_bytes = u64(call, i->rx_bytes)) || !(u->rx_errors = u64(call, i->rx_errors)) ||
      !(u->tx_bytes = u64(call, i->tx_bytes)) || !(u->tx_errors = u64(call, i->tx_errors)))
    return NULL;
  return u;
}

/* NetworkUsage: eth0 (CNI's interface in the pod) as the default, every
 * interface but lo listed; NULL with *ok kept when there is none. */
static Runtime__V1__NetworkUsage *net_usage(struct cri_call *call, const struct cri_pod *pod,
                                            bool *ok)
{
  struct cri_net_if ifs[16];
  size_t n = pod_net(pod, ifs, Q_ARRAY_SIZE(ifs));
  if (!n)
    return NULL;
  Runtime__V1__NetworkUsage *u = cri_call_new_msg(call, &runtime__v1__network_usage__descriptor);
  if (!u || !(u->interfaces = cri_call_alloc(call, n * sizeof(*u->interfaces)))) {
    *ok = false;
    return NULL;
  }
  u->timestamp = q_now_ns();
  size_t def = 0;
  for (size_t i = 0; i < n; i++) {
    if (!strcmp(ifs[i].name, "eth0"))
      def = i;
    if (!(u->interfaces[u->n_interfaces++] = net_if(call, &ifs[i]))) {
      *ok = false;
      return NULL;
    }
  }
  if (!(u->default_interface = net_if(call, &ifs[def])))
    *ok = false;
  return *ok ? u : NULL;
}

/* usage_nano_cores of a pod: its CPU rate since the previous sample of the
 * same pod (kubelet's CRI-only stats mode reads it; with cAdvisor it reads
 * the cgroup itself). A small table whose oldest entry makes room; a pod's
 * first sample has no rate. */
#define RATE_SLOTS 256
static struct {
  pthread_mutex_t lock;
  struct rate_slot {
    char id[65];
    int64_t ts;
    uint64_t cpu;
  } s[RATE_SLOTS];
} rates = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool nano_cores(const char *id, int64_t ts, uint64_t cpu, uint64_t *out)
{
  pthread_mutex_lock(&rates.lock);
  struct rate_slot *slot = NULL, *oldest = &rates.s[0];
  for (size_t i = 0; i < RATE_SLOTS && !slot; i++) {
    if (!strcmp(rates.s[i].id, id))
      slot = &rates.s[i];
    else if (rates.s[i].ts < oldest->ts)
      oldest = &rates.s[i];
  }
  bool ok = slot && ts > slot->ts && cpu >= slot->cpu;
  if (ok)
    *out =
        (uint64_t)((unsigned __int128)(cpu - slot->cpu) * 1000000000u / (uint64_t)(ts - slot->ts));
  if (!slot) {
    slot = oldest;
    snprintf(slot->id, sizeof slot->id, "%s", id);
  }
  slot->ts = ts;
  slot->cpu = cpu;
  pthread_mutex_unlock(&rates.lock);
  return ok;
}

static int fill_host(struct cri_call *call, const char *pod_id, const struct cri_host_stats *h,
                     Runtime__V1__CpuUsage **cpu, Runtime__V1__MemoryUsage **mem)
{
  struct sbx_stats s = {.timestamp = q_now_ns(),
                        .cpu_usage_ns = h->cpu_ns,
                        .memory_working_set_bytes = h->working_set,
                        .memory_usage_bytes = h->usage,
                        .memory_rss_bytes = h->rss};
  uint64_t rate;
  if (fill_cpu_mem(call, &s, cpu, mem) < 0 || !((*mem)->page_faults = u64(call, h->faults)) ||
      !((*mem)->major_page_faults = u64(call, h->major_faults)))
    return -ENOMEM;
  if (nano_cores(pod_id, s.timestamp, h->cpu_ns, &rate) &&
      !((*cpu)->usage_nano_cores = u64(call, rate)))
    return -ENOMEM;
  if (h->limit && !((*mem)->available_bytes =
                        u64(call, h->limit > h->working_set ? h->limit - h->working_set : 0)))
    return -ENOMEM;
  return 0;
}

/* The sandbox of a pod for a query (no op lock: stats never change state). */
static struct sbx_client *query_sbx(struct cri_pods *p, const char *pod_id,
                                    struct cri_pod_entry **e)
{
  struct cri_pod *pod = NULL;
  *e = NULL;
  if (cri_state_get_pod(p->st, pod_id, &pod) < 0)
    return NULL;
  struct sbx_client *c = NULL;
  if (pod->state == CRI_POD_READY && (*e = cri_pods_get(p, pod_id))) {
    int rc;
    c = cri_pods_sbx(p, *e, pod, &rc, NULL);
  }
  cri_pod_free(pod);
  return c;
}

/* A container's stats; *procs (when not NULL) gets its guest process count
 * (0: the sandbox did not tell). */
static Runtime__V1__ContainerStats *ctr_stats(struct cri_call *call, struct cri_pods *p,
                                              const struct cri_ctr *ctr, struct sbx_client *c,
                                              uint64_t *procs)
{
  Runtime__V1__ContainerStats *s =
      cri_call_new_msg(call, &runtime__v1__container_stats__descriptor);
  if (!s)
    return NULL;
  Runtime__V1__ContainerAttributes *a =
      cri_call_new_msg(call, &runtime__v1__container_attributes__descriptor);
  Runtime__V1__ContainerMetadata *m =
      cri_call_new_msg(call, &runtime__v1__container_metadata__descriptor);
  if (!a || !m || !(a->id = cri_call_strdup(call, ctr->id)) ||
      !(m->name = cri_call_strdup(call, ctr->name)))
    return NULL;
  m->attempt = ctr->attempt;
  a->metadata = m;
  if (cri_conv_map_out(call, &runtime__v1__container_attributes__labels_entry__descriptor,
                       &ctr->labels, &a->n_labels, &a->labels) < 0 ||
      cri_conv_map_out(call, &runtime__v1__container_attributes__annotations_entry__descriptor,
                       &ctr->annotations, &a->n_annotations, &a->annotations) < 0)
    return NULL;
  s->attributes = a;
  struct sbx_stats st = {0};
  if (c && ctr->state == CRI_CTR_RUNNING && sbx_container_stats(c, ctr->id, &st, NULL) == 0 &&
      fill_cpu_mem(call, &st, &s->cpu, &s->memory) < 0)
    return NULL;
  if (procs)
    *procs = st.processes;
  /* The writable layer is the overlay upper dir the image store made. */
  char *upper = cri_call_printf(call, "%s/containers/%s/upper", img_store_root(p->img), ctr->id);
  Runtime__V1__FilesystemUsage *fs =
      cri_call_new_msg(call, &runtime__v1__filesystem_usage__descriptor);
  Runtime__V1__FilesystemIdentifier *fid =
      cri_call_new_msg(call, &runtime__v1__filesystem_identifier__descriptor);
  if (!upper || !fs || !fid || !(fid->mountpoint = cri_call_strdup(call, img_store_root(p->img))))
    return NULL;
  uint64_t bytes = 0, inodes = 0;
  cri_spec_du(upper, &bytes, &inodes);
  fs->timestamp = q_now_ns();
  fs->fs_id = fid;
  if (!(fs->used_bytes = u64(call, bytes)) || !(fs->inodes_used = u64(call, inodes)))
    return NULL;
  s->writable_layer = fs;
  return s;
}

static grpc_status_code rpc_ctr_stats(struct cri_call *call, const ProtobufCMessage *req,
                                      ProtobufCMessage **resp)
{
  const Runtime__V1__ContainerStatsRequest *in = (const Runtime__V1__ContainerStatsRequest *)req;
  struct cri_pods *p = pods_of(call);
  char id[65];
  struct cri_ctr *ctr = NULL;
  int e = in->container_id && *in->container_id ? cri_state_resolve_ctr(p->st, in->container_id, id)
                                                : -ENOENT;
  if (e < 0 || cri_state_get_ctr(p->st, id, &ctr) < 0)
    return cri_call_error(call, e == -EEXIST ? GRPC_STATUS_INVALID_ARGUMENT : GRPC_STATUS_NOT_FOUND,
                          "container '%.80s' %s", in->container_id ? in->container_id : "",
                          e == -EEXIST ? "is an ambiguous prefix" : "not found");
  struct cri_pod_entry *pe = NULL;
  struct sbx_client *c = query_sbx(p, ctr->pod_id, &pe);
  Runtime__V1__ContainerStatsResponse *r =
      cri_call_new_msg(call, &runtime__v1__container_stats_response__descriptor);
  if (r)
    r->stats = ctr_stats(call, p, ctr, c, NULL);
  cri_pods_put(p, pe);
  cri_ctr_free(ctr);
  if (!r || !r->stats)
    return cri_call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  *resp = &r->base;
  return GRPC_STATUS_OK;
}

static grpc_status_code rpc_list_ctr_stats(struct cri_call *call, const ProtobufCMessage *req,
                                           ProtobufCMessage **resp)
{
  const Runtime__V1__ListContainerStatsRequest *in =
      (const Runtime__V1__ListContainerStatsRequest *)req;
  struct cri_pods *p = pods_of(call);
  struct cri_ctr_filter f = {.has_state = true, .state = CRI_CTR_RUNNING};
  struct cri_kvs sel = {0};
  if (in->filter) {
    f.id = in->filter->id;
    f.pod_id = in->filter->pod_sandbox_id;
    if (cri_conv_map_in((void *const *)in->filter->label_selector, in->filter->n_label_selector,
                        &sel) < 0)
      return cri_call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    f.label_selector = &sel;
  }
  struct cri_ctr **v = NULL;
  size_t n = 0;
  int e = cri_state_list_ctrs(p->st, &f, &v, &n);
  cri_kvs_clear(&sel);
  if (e < 0)
    return cri_call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  Runtime__V1__ListContainerStatsResponse *r =
      cri_call_new_msg(call, &runtime__v1__list_container_stats_response__descriptor);
  bool ok = r && (!n || (r->stats = cri_call_alloc(call, n * sizeof(*r->stats))));
  for (size_t i = 0; ok && i < n; i++) {
    struct cri_pod_entry *pe = NULL;
    struct sbx_client *c = query_sbx(p, v[i]->pod_id, &pe);
    ok = (r->stats[r->n_stats] = ctr_stats(call, p, v[i], c, NULL)) != NULL;
    r->n_stats += ok;
    cri_pods_put(p, pe);
  }
  cri_ctr_list_free(v, n);
  if (!ok)
    return cri_call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  *resp = &r->base;
  return GRPC_STATUS_OK;
}

static Runtime__V1__PodSandboxStats *pod_stats(struct cri_call *call, struct cri_pods *p,
                                               const struct cri_pod *pod)
{
  Runtime__V1__PodSandboxStats *s =
      cri_call_new_msg(call, &runtime__v1__pod_sandbox_stats__descriptor);
  Runtime__V1__PodSandboxAttributes *a =
      cri_call_new_msg(call, &runtime__v1__pod_sandbox_attributes__descriptor);
  Runtime__V1__PodSandboxMetadata *m =
      cri_call_new_msg(call, &runtime__v1__pod_sandbox_metadata__descriptor);
  Runtime__V1__LinuxPodSandboxStats *l =
      cri_call_new_msg(call, &runtime__v1__linux_pod_sandbox_stats__descriptor);
  if (!s || !a || !m || !l || !(a->id = cri_call_strdup(call, pod->id)) ||
      !(m->name = cri_call_strdup(call, pod->name)) ||
      !(m->uid = cri_call_strdup(call, pod->uid)) ||
      !(m->namespace_ = cri_call_strdup(call, pod->ns)))
    return NULL;
  m->attempt = pod->attempt;
  a->metadata = m;
  if (cri_conv_map_out(call, &runtime__v1__pod_sandbox_attributes__labels_entry__descriptor,
                       &pod->labels, &a->n_labels, &a->labels) < 0 ||
      cri_conv_map_out(call, &runtime__v1__pod_sandbox_attributes__annotations_entry__descriptor,
                       &pod->annotations, &a->n_annotations, &a->annotations) < 0)
    return NULL;
  s->attributes = a;
  s->linux = l;
  struct cri_pod_entry *pe = NULL;
  struct sbx_client *c = query_sbx(p, pod->id, &pe);
  struct sbx_stats st = {0};
  struct cri_host_stats h;
  bool ok = true;
  if (host_pod_stats(pod, &h))
    ok = fill_host(call, pod->id, &h, &l->cpu, &l->memory) == 0;
  else if (c && sbx_pod_stats(c, &st, NULL) == 0)
    ok = fill_cpu_mem(call, &st, &l->cpu, &l->memory) == 0;
  struct cri_ctr_filter f = {.pod_id = pod->id, .has_state = true, .state = CRI_CTR_RUNNING};
  struct cri_ctr **v = NULL;
  size_t n = 0;
  uint64_t procs = 0, one;
  if (ok && cri_state_list_ctrs(p->st, &f, &v, &n) == 0) {
    ok = !n || (l->containers = cri_call_alloc(call, n * sizeof(*l->containers)));
    for (size_t i = 0; ok && i < n; i++) {
      if (strcmp(v[i]->pod_id, pod->id))
        continue;
      ok = (l->containers[l->n_containers] = ctr_stats(call, p, v[i], c, &one)) != NULL;
      l->n_containers += ok;
      procs += ok ? one : 0;
    }
    cri_ctr_list_free(v, n);
  }
  if (ok)
    l->network = net_usage(call, pod, &ok);
  /* The pod's processes (kubelet's PID pressure): its containers' in the
   * guest, execs included; left out when the sandbox told none. */
  if (ok && procs) {
    Runtime__V1__ProcessUsage *pu = cri_call_new_msg(call, &runtime__v1__process_usage__descriptor);
    ok = pu && (pu->process_count = u64(call, procs));
    if (ok) {
      pu->timestamp = q_now_ns();
      l->process = pu;
    }
  }
  cri_pods_put(p, pe);
  return ok ? s : NULL;
}

static grpc_status_code rpc_pod_stats(struct cri_call *call, const ProtobufCMessage *req,
                                      ProtobufCMessage **resp)
{
  const Runtime__V1__PodSandboxStatsRequest *in = (const Runtime__V1__PodSandboxStatsRequest *)req;
  struct cri_pods *p = pods_of(call);
  char id[65];
  struct cri_pod *pod = NULL;
  int e = in->pod_sandbox_id && *in->pod_sandbox_id
              ? cri_state_resolve_pod(p->st, in->pod_sandbox_id, id)
              : -ENOENT;
  if (e < 0 || cri_state_get_pod(p->st, id, &pod) < 0)
    return cri_call_error(call, e == -EEXIST ? GRPC_STATUS_INVALID_ARGUMENT : GRPC_STATUS_NOT_FOUND,
                          "pod sandbox '%.80s' %s", in->pod_sandbox_id ? in->pod_sandbox_id : "",
                          e == -EEXIST ? "is an ambiguous prefix" : "not found");
  Runtime__V1__PodSandboxStatsResponse *r =
      cri_call_new_msg(call, &runtime__v1__pod_sandbox_stats_response__descriptor);
  if (r)
    r->stats = pod_stats(call, p, pod);
  cri_pod_free(pod);
  if (!r || !r->stats)
    return cri_call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  *resp = &r->base;
  return GRPC_STATUS_OK;
}

static grpc_status_code rpc_list_pod_stats(struct cri_call *call, const ProtobufCMessage *req,
                                           ProtobufCMessage **resp)
{
  const Runtime__V1__ListPodSandboxStatsRequest *in =
      (const Runtime__V1__ListPodSandboxStatsRequest *)req;
  struct cri_pods *p = pods_of(call);
  struct cri_pod_filter f = {.has_state = true, .state = CRI_POD_READY};
  struct cri_kvs sel = {0};
  if (in->filter) {
    f.id = in->filter->id;
    if (cri_conv_map_in((void *const *)in->filter->label_selector, in->filter->n_label_selector,
                        &sel) < 0)
      return cri_call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    f.label_selector = &sel;
  }
  struct cri_pod **v = NULL;
  size_t n = 0;
  int e = cri_state_list_pods(p->st, &f, &v, &n);
  cri_kvs_clear(&sel);
  if (e < 0)
    return cri_call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  Runtime__V1__ListPodSandboxStatsResponse *r =
      cri_call_new_msg(call, &runtime__v1__list_pod_sandbox_stats_response__descriptor);
  bool ok = r && (!n || (r->stats = cri_call_alloc(call, n * sizeof(*r->stats))));
  for (size_t i = 0; ok && i < n; i++) {
    ok = (r->stats[r->n_stats] = pod_stats(call, p, v[i])) != NULL;
    r->n_stats += ok;
  }
  cri_pod_list_free(v, n);
  if (!ok)
    return cri_call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  *resp = &r->base;
  return GRPC_STATUS_OK;
}

int cri_stats_rpc_register(struct cri_server *srv, q_error **err)
{
  static const struct {
    const char *name;
    cri_handler_fn fn;
  } table[] = {
      {"ContainerStats", rpc_ctr_stats},
      {"ListContainerStats", rpc_list_ctr_stats},
      {"PodSandboxStats", rpc_pod_stats},
      {"ListPodSandboxStats", rpc_list_pod_stats},
  };
  for (size_t i = 0; i < Q_ARRAY_SIZE(table); i++) {
    int r = cri_server_set_handler(srv, "RuntimeService", table[i].name, table[i].fn);
    if (r < 0)
      return q_error_make(err, -r, "register RuntimeService/%s", table[i].name);
  }
  return 0;
}
