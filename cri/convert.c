/* Record <-> message conversions shared by every RPC handler that reports
 * pods and containers, so that List*, *Status and events agree. */
#include <errno.h>
#include <string.h>

#include "convert.h"

int cri_conv_map_out(struct cri_call *call, const ProtobufCMessageDescriptor *entry_desc,
                     const struct cri_kvs *kvs, size_t *n_out, void *entries_out)
{
  struct cri_map_entry **v = cri_call_alloc(call, (kvs->n ? kvs->n : 1) * sizeof(*v));
  if (!v)
    return -ENOMEM;
  for (size_t i = 0; i < kvs->n; i++) {
    v[i] = cri_call_new_msg(call, entry_desc);
    if (!v[i] || !(v[i]->key = cri_call_strdup(call, kvs->v[i].key)) ||
        !(v[i]->value = cri_call_strdup(call, kvs->v[i].value)))
      return -ENOMEM;
  }
  *n_out = kvs->n;
  *(struct cri_map_entry ***)entries_out = kvs->n ? v : NULL;
  return 0;
}

int cri_conv_map_in(void *const *entries, size_t n, struct cri_kvs *kvs)
{
  for (size_t i = 0; i < n; i++) {
    const struct cri_map_entry *e = entries[i];
    if (cri_kvs_set(kvs, e->key ? e->key : "", e->value ? e->value : "") < 0) {
      cri_kvs_clear(kvs);
      return -ENOMEM;
    }
  }
  return 0;
}

static Runtime__V1__PodSandboxMetadata *pod_meta(struct cri_call *call, const struct cri_pod *pod)
{
  Runtime__V1__PodSandboxMetadata *m =
      cri_call_new_msg(call, &runtime__v1__pod_sandbox_metadata__descriptor);
  if (!m || !(m->name = cri_call_strdup(call, pod->name)) ||
      !(m->uid = cri_call_strdup(call, pod->uid)) ||
      !(m->namespace_ = cri_call_strdup(call, pod->ns)))
    return NULL;
  m->attempt = pod->attempt;
  return m;
}

Runtime__V1__PodSandbox *cri_conv_pod(struct cri_call *call, const struct cri_pod *pod)
{
  Runtime__V1__PodSandbox *p = cri_call_new_msg(call, &runtime__v1__pod_sandbox__descriptor);
  if (!p || !(p->id = cri_call_strdup(call, pod->id)) || !(p->metadata = pod_meta(call, pod)) ||
      !(p->runtime_handler = cri_call_strdup(call, pod->runtime_handler)))
    return NULL;
  p->state = (Runtime__V1__PodSandboxState)pod->state;
  p->created_at = pod->created_at;
  if (cri_conv_map_out(call, &runtime__v1__pod_sandbox__labels_entry__descriptor, &pod->labels,
                       &p->n_labels, &p->labels) < 0 ||
      cri_conv_map_out(call, &runtime__v1__pod_sandbox__annotations_entry__descriptor,
                       &pod->annotations, &p->n_annotations, &p->annotations) < 0)
    return NULL;
  return p;
}

Runtime__V1__PodSandboxStatus *cri_conv_pod_status(struct cri_call *call, const struct cri_pod *pod)
{
  Runtime__V1__PodSandboxStatus *s =
      cri_call_new_msg(call, &runtime__v1__pod_sandbox_status__descriptor);
  if (!s || !(s->id = cri_call_strdup(call, pod->id)) || !(s->metadata = pod_meta(call, pod)) ||
      !(s->runtime_handler = cri_call_strdup(call, pod->runtime_handler)))
    return NULL;
  s->state = (Runtime__V1__PodSandboxState)pod->state;
  s->created_at = pod->created_at;
  /* The pod's IPs come from CNI through ext (pods.h: Ip, AdditionalIps). */
  json_t *ip = json_object_get(pod->ext, "Ip"), *more = json_object_get(pod->ext, "AdditionalIps");
  s->network = cri_call_new_msg(call, &runtime__v1__pod_sandbox_network_status__descriptor);
  if (!s->network ||
      !(s->network->ip = cri_call_strdup(call, json_is_string(ip) ? json_string_value(ip) : "")))
    return NULL;
  size_t n_more = json_is_array(more) ? json_array_size(more) : 0;
  if (n_more && !(s->network->additional_ips = cri_call_alloc(call, n_more * sizeof(void *))))
    return NULL;
  for (size_t i = 0; i < n_more; i++) {
    json_t *v = json_array_get(more, i);
    Runtime__V1__PodIP *pip = cri_call_new_msg(call, &runtime__v1__pod_ip__descriptor);
    if (!pip || !(pip->ip = cri_call_strdup(call, json_is_string(v) ? json_string_value(v) : "")))
      return NULL;
    s->network->additional_ips[s->network->n_additional_ips++] = pip;
  }
  /* kubelet reads the network namespace mode to tell hostNetwork pods. */
  json_t *mode = json_object_get(pod->ext, "NetworkMode");
  Runtime__V1__LinuxPodSandboxStatus *l =
      cri_call_new_msg(call, &runtime__v1__linux_pod_sandbox_status__descriptor);
  Runtime__V1__Namespace *ns = cri_call_new_msg(call, &runtime__v1__namespace__descriptor);
  Runtime__V1__NamespaceOption *opt =
      cri_call_new_msg(call, &runtime__v1__namespace_option__descriptor);
  if (!l || !ns || !opt)
    return NULL;
  opt->network = json_is_string(mode) && !strcmp(json_string_value(mode), "host")
                     ? RUNTIME__V1__NAMESPACE_MODE__NODE
                     : RUNTIME__V1__NAMESPACE_MODE__POD;
  /* What the pod asked for (pod records from before PidMode: CONTAINER,
   * the only mode there was). */
  json_t *pid_mode = json_object_get(pod->ext, "PidMode");
  opt->pid = json_is_string(pid_mode) && !strcmp(json_string_value(pid_mode), "POD")
                 ? RUNTIME__V1__NAMESPACE_MODE__POD
                 : RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
  ns->options = opt;
  l->namespaces = ns;
  s->linux = l;
  if (cri_conv_map_out(call, &runtime__v1__pod_sandbox_status__labels_entry__descriptor,
                       &pod->labels, &s->n_labels, &s->labels) < 0 ||
      cri_conv_map_out(call, &runtime__v1__pod_sandbox_status__annotations_entry__descriptor,
                       &pod->annotations, &s->n_annotations, &s->annotations) < 0)
    return NULL;
  return s;
}

static Runtime__V1__ContainerMetadata *ctr_meta(struct cri_call *call, const struct cri_ctr *ctr)
{
  Runtime__V1__ContainerMetadata *m =
      cri_call_new_msg(call, &runtime__v1__container_metadata__descriptor);
  if (!m || !(m->name = cri_call_strdup(call, ctr->name)))
    return NULL;
  m->attempt = ctr->attempt;
  return m;
}

static Runtime__V1__ImageSpec *image_spec(struct cri_call *call, const struct cri_ctr *ctr)
{
  Runtime__V1__ImageSpec *i = cri_call_new_msg(call, &runtime__v1__image_spec__descriptor);
  if (!i || !(i->image = cri_call_strdup(call, ctr->image)))
    return NULL;
  return i;
}

Runtime__V1__Container *cri_conv_ctr(struct cri_call *call, const struct cri_ctr *ctr)
{
  Runtime__V1__Container *c = cri_call_new_msg(call, &runtime__v1__container__descriptor);
  if (!c || !(c->id = cri_call_strdup(call, ctr->id)) ||
      !(c->pod_sandbox_id = cri_call_strdup(call, ctr->pod_id)) ||
      !(c->metadata = ctr_meta(call, ctr)) || !(c->image = image_spec(call, ctr)) ||
      !(c->image_ref = cri_call_strdup(call, ctr->image_ref)) ||
      !(c->image_id = cri_call_strdup(call, ctr->image_id)))
    return NULL;
  c->state = (Runtime__V1__ContainerState)ctr->state;
  c->created_at = ctr->created_at;
  if (cri_conv_map_out(call, &runtime__v1__container__labels_entry__descriptor, &ctr->labels,
                       &c->n_labels, &c->labels) < 0 ||
      cri_conv_map_out(call, &runtime__v1__container__annotations_entry__descriptor,
                       &ctr->annotations, &c->n_annotations, &c->annotations) < 0)
    return NULL;
  return c;
}

Runtime__V1__ContainerStatus *cri_conv_ctr_status(struct cri_call *call, const struct cri_ctr *ctr)
{
  Runtime__V1__ContainerStatus *s =
      cri_call_new_msg(call, &runtime__v1__container_status__descriptor);
  if (!s || !(s->id = cri_call_strdup(call, ctr->id)) || !(s->metadata = ctr_meta(call, ctr)) ||
      !(s->image = image_spec(call, ctr)) ||
      !(s->image_ref = cri_call_strdup(call, ctr->image_ref)) ||
      !(s->image_id = cri_call_strdup(call, ctr->image_id)) ||
      !(s->reason = cri_call_strdup(call, ctr->reason)) ||
      !(s->message = cri_call_strdup(call, ctr->message)) ||
      !(s->log_path = cri_call_strdup(call, ctr->log_path)))
    return NULL;
  s->state = (Runtime__V1__ContainerState)ctr->state;
  s->created_at = ctr->created_at;
  s->started_at = ctr->started_at;
  s->finished_at = ctr->finished_at;
  s->exit_code = ctr->exit_code;
  /* Mounts as created (pods.h: ext Mounts). */
  json_t *mounts = json_object_get(ctr->ext, "Mounts");
  size_t nm = json_is_array(mounts) ? json_array_size(mounts) : 0;
  if (nm && !(s->mounts = cri_call_alloc(call, nm * sizeof(void *))))
    return NULL;
  for (size_t i = 0; i < nm; i++) {
    json_t *o = json_array_get(mounts, i);
    Runtime__V1__Mount *m = cri_call_new_msg(call, &runtime__v1__mount__descriptor);
    if (!m ||
        !(m->container_path =
              cri_call_strdup(call, json_string_value(json_object_get(o, "ContainerPath")))) ||
        !(m->host_path = cri_call_strdup(call, json_string_value(json_object_get(o, "HostPath")))))
      return NULL;
    m->readonly = json_is_true(json_object_get(o, "Readonly"));
    s->mounts[s->n_mounts++] = m;
  }
  /* Resources as last set by UpdateContainerResources (ext Resources). */
  json_t *res = json_object_get(ctr->ext, "Resources");
  if (json_is_object(res)) {
    Runtime__V1__ContainerResources *cr =
        cri_call_new_msg(call, &runtime__v1__container_resources__descriptor);
    Runtime__V1__LinuxContainerResources *l =
        cri_call_new_msg(call, &runtime__v1__linux_container_resources__descriptor);
    if (!cr || !l ||
        !(l->cpuset_cpus =
              cri_call_strdup(call, json_string_value(json_object_get(res, "CpusetCpus")))) ||
        !(l->cpuset_mems =
              cri_call_strdup(call, json_string_value(json_object_get(res, "CpusetMems")))))
      return NULL;
    l->cpu_period = json_integer_value(json_object_get(res, "CpuPeriod"));
    l->cpu_quota = json_integer_value(json_object_get(res, "CpuQuota"));
    l->cpu_shares = json_integer_value(json_object_get(res, "CpuShares"));
    l->memory_limit_in_bytes = json_integer_value(json_object_get(res, "MemoryLimitInBytes"));
    cr->linux = l;
    s->resources = cr;
  }
  if (cri_conv_map_out(call, &runtime__v1__container_status__labels_entry__descriptor, &ctr->labels,
                       &s->n_labels, &s->labels) < 0 ||
      cri_conv_map_out(call, &runtime__v1__container_status__annotations_entry__descriptor,
                       &ctr->annotations, &s->n_annotations, &s->annotations) < 0)
    return NULL;
  return s;
}
