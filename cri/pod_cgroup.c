/* The pod sandbox's cgroup (see pod_cgroup.h). */
#include "pod_cgroup.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "cgroup.h" /* sandbox/jail */

#define PERIOD_US 100000

/* quota/period as µs per 100 ms; 0: none. */
static uint64_t per_100ms(int64_t quota, int64_t period)
{
  if (quota <= 0 || period <= 0)
    return 0;
  return (uint64_t)((__int128)quota * PERIOD_US / period);
}

int cri_pod_cgroup_plan(const char *pod_id, const Runtime__V1__PodSandboxConfig *c,
                        uint32_t mem_mib, json_t **ext_out, q_error **err)
{
  const Runtime__V1__LinuxPodSandboxConfig *l = c->linux;
  const Runtime__V1__LinuxContainerResources *r = l ? l->resources : NULL;
  const Runtime__V1__LinuxContainerResources *o = l ? l->overhead : NULL;
  char path[PATH_MAX];
  if (sbx_cgroup_pod_path(l ? l->cgroup_parent : NULL, pod_id, path, sizeof path) < 0)
    return q_error_make(err, EINVAL, "cgroup_parent '%.200s' is not a cgroup path",
                        l && l->cgroup_parent ? l->cgroup_parent : "");
  uint64_t oq = o ? per_100ms(o->cpu_quota, o->cpu_period) : 0;
  uint64_t os = o && o->cpu_shares > 0 ? (uint64_t)o->cpu_shares : 0;
  uint64_t q = r ? per_100ms(r->cpu_quota, r->cpu_period) : 0;
  uint64_t s = r && r->cpu_shares > 0 ? (uint64_t)r->cpu_shares : 0;
  uint64_t mem = ((uint64_t)mem_mib + CRI_POD_VMM_OVERHEAD_MIB) << 20;
  json_t *ext = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "Path", path, "Quota", (json_int_t)q,
                          "Shares", (json_int_t)s, "OverheadQuota", (json_int_t)oq,
                          "OverheadShares", (json_int_t)os, "Memory", (json_int_t)mem);
  if (!ext)
    return q_error_make(err, ENOMEM, "cgroup record");
  *ext_out = ext;
  return 0;
}

static int64_t ext_int(json_t *o, const char *k)
{
  return json_integer_value(json_object_get(o, k));
}

/* The pod-level limits of the record (before any container counts). */
static void pod_limits(json_t *cg, struct sbx_cgroup_limits *lim)
{
  int64_t q = ext_int(cg, "Quota"), s = ext_int(cg, "Shares");
  *lim = (struct sbx_cgroup_limits){
      .memory = (uint64_t)ext_int(cg, "Memory"),
      .cpu_quota_us = q ? (uint64_t)(q + ext_int(cg, "OverheadQuota")) : 0,
      .cpu_period_us = PERIOD_US,
      .cpu_shares = s ? (uint64_t)(s + ext_int(cg, "OverheadShares")) : 0,
      .pids = CRI_POD_PIDS};
}

int cri_pod_cgroup_apply(json_t *ext, q_error **err)
{
  const char *path = json_string_value(json_object_get(ext, "Path"));
  if (!path)
    return q_error_make(err, EINVAL, "cgroup record without a path");
  struct sbx_cgroup_limits lim;
  pod_limits(ext, &lim);
  int rc = sbx_cgroup_create(path, &lim, err);
  if (rc < 0) {
    q_cleanup_error q_error *e2 = NULL;
    sbx_cgroup_remove(path, &e2);
  }
  return rc;
}

int cri_pod_cgroup_update(struct cri_pods *p, const char *pod_id, q_error **err)
{
  struct cri_pod *pod = NULL;
  if (cri_state_get_pod(p->st, pod_id, &pod) < 0)
    return 0;
  json_t *cg = json_object_get(pod->ext, POD_EXT_CGROUP);
  const char *path = json_string_value(json_object_get(cg, "Path"));
  if (!path) {
    cri_pod_free(pod);
    return 0;
  }
  struct cri_ctr_filter f = {.pod_id = pod_id};
  struct cri_ctr **v = NULL;
  size_t n = 0;
  int rc = cri_state_list_ctrs(p->st, &f, &v, &n);
  if (rc < 0) {
    cri_pod_free(pod);
    return q_error_make(err, -rc, "list containers");
  }
  /* Containers that can still run count; one without a CPU limit lifts
   * the quota; shares add up (each container's 1024 default when unset). */
  uint64_t quota = 0, shares = 0;
  size_t counted = 0;
  bool unlimited = false;
  for (size_t i = 0; i < n; i++) {
    if (v[i]->state == CRI_CTR_EXITED)
      continue;
    json_t *res = json_object_get(v[i]->ext, CTR_EXT_RES);
    uint64_t q = per_100ms(ext_int(res, "CpuQuota"), ext_int(res, "CpuPeriod"));
    int64_t s = ext_int(res, "CpuShares");
    counted++;
    if (!q)
      unlimited = true;
    quota += q;
    shares += s > 0 ? (uint64_t)s : 1024;
  }
  cri_ctr_list_free(v, n);
  struct sbx_cgroup_limits lim;
  pod_limits(cg, &lim); /* the pod-level values of RunPodSandbox */
  if (counted) {
    lim.cpu_quota_us = unlimited ? 0 : quota + (uint64_t)ext_int(cg, "OverheadQuota");
    lim.cpu_shares = shares + (uint64_t)ext_int(cg, "OverheadShares");
  }
  rc = sbx_cgroup_set(path, &lim, err);
  cri_pod_free(pod);
  return rc;
}

int cri_pod_cgroup_remove(const struct cri_pod *pod, q_error **err)
{
  const char *path =
      json_string_value(json_object_get(json_object_get(pod->ext, POD_EXT_CGROUP), "Path"));
  return path ? sbx_cgroup_remove(path, err) : 0;
}
