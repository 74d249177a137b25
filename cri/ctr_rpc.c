/* Container RPCs: CreateContainer, StartContainer, StopContainer,
 * RemoveContainer, ExecSync, ReopenContainerLog, UpdateContainerResources.
 *
 * CreateContainer checks everything it can before it creates anything, in
 * the order kubelet's errors read best: the pod exists (NOT_FOUND), the
 * config is valid (INVALID_ARGUMENT: command, env size, mounts), the image is
 * in the store (NOT_FOUND), the pod is ready (FAILED_PRECONDITION). Then:
 * record (CREATED) -> container dir -> root filesystem -> sandbox create;
 * a failure undoes all of it. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert.h"
#include "image.h"
#include "pod_cgroup.h"
#include "pods.h"
#include "seccomp_profile.h"

#define EXEC_OUT_CAP (16u << 20)
#define KILL_WAIT_MS 5000

static struct cri_pods *pods_of(struct cri_call *call)
{
  return cri_server_pods_ctx(cri_call_server(call));
}

static grpc_status_code oom(struct cri_call *call)
{
  return cri_call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "%s: out of memory",
                        cri_call_method(call));
}

/* A container by full id or unique prefix, with its pod. */
static grpc_status_code find_ctr(struct cri_call *call, const char *id_in, struct cri_ctr **ctr,
                                 struct cri_pod **pod)
{
  struct cri_pods *p = pods_of(call);
  char id[65];
  int e = id_in && *id_in ? cri_state_resolve_ctr(p->st, id_in, id) : -ENOENT;
  if (e == -EEXIST)
    return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT,
                          "container id prefix '%.80s' is ambiguous", id_in);
  if (e < 0 || cri_state_get_ctr(p->st, id, ctr) < 0)
    return cri_call_error(call, GRPC_STATUS_NOT_FOUND, "container '%.80s' not found",
                          id_in ? id_in : "");
  if (pod && cri_state_get_pod(p->st, (*ctr)->pod_id, pod) < 0) {
    cri_ctr_free(*ctr);
    *ctr = NULL;
    return cri_call_error(call, GRPC_STATUS_NOT_FOUND, "pod of container '%.80s' not found", id_in);
  }
  return GRPC_STATUS_OK;
}

static const char *ext_str(json_t *ext, const char *key)
{
  json_t *v = json_object_get(ext, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

/* ---- CreateContainer ---- */

struct create_ctx {
  struct cri_pods *p;
  const Runtime__V1__ContainerConfig *c;
  const struct cri_pod *pod;
  img_info *img;
  char id[65];
  char *dir, *rootfs, *log_path, *term_log;
  char **argv, **env;
  uint32_t uid, gid, *groups;
  size_t n_groups;
  struct sbx_mount *mounts;
  size_t n_mounts;
  bool rootfs_made;
  uint64_t caps; /* security settings for the guest (seccomp_profile.h) */
  bool no_new_privs;
  void *seccomp;
  size_t seccomp_len;
  enum sbx_pid_ns pid_ns; /* CRI pid mode (ctr_spec.c) */
  char pid_target[65];    /* SBX_PIDNS_TARGET: the target container's full id */
};

/* The pid namespace the container asks for; TARGET's target must be a
 * running container of the pod, as containerd checks. Under the op lock:
 * the target's Stop/Remove waits for this create. */
static int pid_mode(struct create_ctx *x, q_error **err)
{
  const Runtime__V1__ContainerConfig *c = x->c;
  const Runtime__V1__NamespaceOption *ns = c->linux && c->linux->security_context
                                               ? c->linux->security_context->namespace_options
                                               : NULL;
  struct cri_ctr *target = NULL;
  char tid[65];
  if (ns && ns->pid == RUNTIME__V1__NAMESPACE_MODE__TARGET && ns->target_id &&
      *ns->target_id && cri_state_resolve_ctr(x->p->st, ns->target_id, tid) == 0 &&
      cri_state_get_ctr(x->p->st, tid, &target) < 0)
    target = NULL;
  int rc = cri_spec_pid_mode(ns ? (int)ns->pid : 0, ns ? ns->target_id : NULL, target,
                             x->pod->id, &x->pid_ns, err);
  if (rc == 0 && target)
    memcpy(x->pid_target, target->id, sizeof x->pid_target);
  cri_ctr_free(target);
  return rc;
}

static void create_ctx_free(struct create_ctx *x)
{
  img_info_free(x->img);
  free(x->dir);
  free(x->rootfs);
  free(x->log_path);
  free(x->term_log);
  cri_spec_strv_free(x->argv);
  cri_spec_strv_free(x->env);
  free(x->groups);
  free(x->mounts);
  free(x->seccomp);
}

static bool config_mounts(const Runtime__V1__ContainerConfig *c, const char *path)
{
  for (size_t i = 0; i < c->n_mounts; i++)
    if (!strcmp(c->mounts[i]->container_path, path))
      return true;
  return false;
}

/* The config's mounts, then the pod's files and a termination log unless
 * the config mounts those paths itself (kubelet mounts its own
 * /etc/hosts and /dev/termination-log). */
static int build_mounts(struct create_ctx *x, q_error **err)
{
  const Runtime__V1__ContainerConfig *c = x->c;
  x->mounts = calloc(c->n_mounts + 4, sizeof(*x->mounts));
  if (!x->mounts)
    return q_error_make(err, ENOMEM, "mounts");
  for (size_t i = 0; i < c->n_mounts; i++)
    x->mounts[x->n_mounts++] = (struct sbx_mount){
        c->mounts[i]->host_path, c->mounts[i]->container_path, c->mounts[i]->readonly};
  json_t *rd = json_object_get(x->pod->ext, POD_EXT_RUNDIR);
  const char *run_dir = json_is_string(rd) ? json_string_value(rd) : NULL;
  static const char *const files[][2] = {
      {"hosts", "/etc/hosts"}, {"resolv.conf", "/etc/resolv.conf"}, {"hostname", "/etc/hostname"}};
  for (size_t i = 0; run_dir && i < Q_ARRAY_SIZE(files); i++) {
    if (config_mounts(c, files[i][1]))
      continue;
    char *src = NULL;
    if (asprintf(&src, "%s/%s", run_dir, files[i][0]) < 0)
      return q_error_make(err, ENOMEM, "mounts");
    /* Owned by the mount array from here on (free_pod_file_sources). */
    x->mounts[x->n_mounts++] = (struct sbx_mount){src, files[i][1], false};
  }
  if (!config_mounts(c, "/dev/termination-log")) {
    if (asprintf(&x->term_log, "%s/termination-log", x->dir) < 0)
      return q_error_make(err, ENOMEM, "mounts");
    int fd = open(x->term_log, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0)
      return q_error_make(err, errno, "create %s", x->term_log);
    close(fd);
    x->mounts[x->n_mounts++] = (struct sbx_mount){x->term_log, "/dev/termination-log", false};
  }
  return 0;
}

static void free_pod_file_sources(struct create_ctx *x)
{
  for (size_t i = x->c->n_mounts; i < x->n_mounts; i++)
    if (x->mounts[i].source != x->term_log)
      free((char *)x->mounts[i].source);
}

/* "uid[:gid]" or names, from the security context first, then the image. */
static char *user_spec(const Runtime__V1__ContainerConfig *c, const img_info *img)
{
  const Runtime__V1__LinuxContainerSecurityContext *sc =
      c->linux ? c->linux->security_context : NULL;
  char *out = NULL;
  const char *img_user = img->config.user && *img->config.user ? img->config.user : "0";
  const char *img_group = strchr(img_user, ':');
  char user[256];
  if (sc && sc->run_as_user)
    snprintf(user, sizeof(user), "%lld", (long long)sc->run_as_user->value);
  else if (sc && sc->run_as_username && *sc->run_as_username)
    snprintf(user, sizeof(user), "%s", sc->run_as_username);
  else
    snprintf(user, sizeof(user), "%.*s", (int)strcspn(img_user, ":"), img_user);
  bool user_from_image =
      !(sc && ((sc->run_as_user) || (sc->run_as_username && *sc->run_as_username)));
  if (sc && sc->run_as_group) {
    if (asprintf(&out, "%s:%lld", user, (long long)sc->run_as_group->value) < 0)
      out = NULL;
  } else if (user_from_image && img_group) {
    if (asprintf(&out, "%s%s", user, img_group) < 0)
      out = NULL;
  } else {
    out = strdup(user);
  }
  return out;
}

static json_t *strv_json(char *const *v)
{
  json_t *a = json_array();
  for (size_t i = 0; v && v[i]; i++)
    json_array_append_new(a, json_string(v[i]));
  return a;
}

static int set_created(struct cri_ctr *ctr, void *arg)
{
  struct create_ctx *x = arg;
  json_t *mounts = json_array();
  for (size_t i = 0; i < x->n_mounts; i++)
    json_array_append_new(
        mounts, json_pack("{s:s,s:s,s:b}", "ContainerPath", x->mounts[i].destination, "HostPath",
                          x->mounts[i].source, "Readonly", x->mounts[i].readonly));
  json_object_set_new(ctr->ext, CTR_EXT_ARGV, strv_json(x->argv));
  json_object_set_new(ctr->ext, CTR_EXT_ENVN, json_integer((json_int_t)cri_spec_strv_len(x->env)));
  json_object_set_new(ctr->ext, CTR_EXT_CWD,
                      json_string(x->c->working_dir && *x->c->working_dir ? x->c->working_dir
                                  : x->img->config.working_dir && *x->img->config.working_dir
                                      ? x->img->config.working_dir
                                      : "/"));
  json_object_set_new(ctr->ext, CTR_EXT_UID, json_integer(x->uid));
  json_object_set_new(ctr->ext, CTR_EXT_GID, json_integer(x->gid));
  json_object_set_new(ctr->ext, CTR_EXT_MOUNTS, mounts);
  json_object_set_new(ctr->ext, CTR_EXT_TTY, json_boolean(x->c->tty));
  json_object_set_new(ctr->ext, CTR_EXT_STDIN, json_boolean(x->c->stdin));
  if (x->img->config.stop_signal)
    json_object_set_new(ctr->ext, CTR_EXT_STOPSIG, json_string(x->img->config.stop_signal));
  return 0;
}

static bool ctr_name_taken(struct cri_pods *p, const char *pod_id,
                           const Runtime__V1__ContainerMetadata *m, char other[65])
{
  struct cri_ctr_filter f = {.pod_id = pod_id};
  struct cri_ctr **v = NULL;
  size_t n = 0;
  bool taken = false;
  if (cri_state_list_ctrs(p->st, &f, &v, &n) < 0)
    return false;
  for (size_t i = 0; i < n && !taken; i++)
    if (!strcmp(v[i]->pod_id, pod_id) && !strcmp(v[i]->name, m->name) &&
        v[i]->attempt == m->attempt) {
      taken = true;
      memcpy(other, v[i]->id, 65);
    }
  cri_ctr_list_free(v, n);
  return taken;
}

static grpc_status_code validate_config(struct cri_call *call,
                                        const Runtime__V1__ContainerConfig *c)
{
  q_cleanup_error q_error *err = NULL;
  if (!c || !c->metadata || !c->metadata->name || !*c->metadata->name)
    return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT,
                          "container config.metadata.name is required");
  if (strlen(c->metadata->name) > 253 || strchr(c->metadata->name, '/'))
    return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT,
                          "container name '%.64s' is not "
                          "valid",
                          c->metadata->name);
  if (!c->image || !c->image->image || !*c->image->image)
    return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT,
                          "container config.image is "
                          "required");
  /* The sizes of what the config alone brings, before the image adds its
   * part: a 10 MB env is refused here, before anything is looked up. */
  char **argv = calloc(c->n_command + c->n_args + 1, sizeof(char *));
  char **env = calloc(c->n_envs + 1, sizeof(char *));
  if (!argv || !env) {
    free(argv);
    free(env);
    return oom(call);
  }
  size_t k = 0;
  for (size_t i = 0; i < c->n_command; i++)
    argv[k++] = c->command[i];
  for (size_t i = 0; i < c->n_args; i++)
    argv[k++] = c->args[i];
  /* key=value lengths: check the value and key as one string. */
  int rc = 0;
  for (size_t i = 0; i < c->n_envs && rc == 0; i++) {
    const char *key = c->envs[i]->key ? c->envs[i]->key : "";
    if (!*key || strchr(key, '='))
      rc = q_error_make(&err, EINVAL, "env key '%.64s' is empty or contains '='", key);
    else if (strlen(key) + strlen(c->envs[i]->value ? c->envs[i]->value : "") + 2 > 128 * 1024)
      rc = q_error_make(&err, E2BIG,
                        "env %.64s is %zu bytes, over Linux's limit of 131072 for one entry", key,
                        strlen(c->envs[i]->value));
    env[i] = c->envs[i]->value;
  }
  if (rc == 0)
    rc = cri_spec_check_size(argv, env, &err);
  free(argv);
  free(env);
  if (rc < 0)
    return cri_pods_fail(call, -EINVAL, &err, "container config");
  /* Host devices cannot be handed to a container in a VM: refuse rather
   * than start it without what it asked for. */
  if (c->n_devices || c->n_cdi_devices)
    return cri_call_error(call, GRPC_STATUS_UNIMPLEMENTED,
                          "container devices (%.200s) are not supported in quark pods",
                          c->n_devices ? c->devices[0]->host_path : c->cdi_devices[0]->name);
  if (c->log_path && (c->log_path[0] == '/' || strstr(c->log_path, "..")))
    return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT,
                          "log_path '%.200s' must be relative to the pod's log directory "
                          "without '..'",
                          c->log_path);
  for (size_t i = 0; i < c->n_mounts; i++)
    if (cri_spec_check_mount(c->mounts[i]->container_path, c->mounts[i]->host_path, &err) < 0)
      return cri_pods_fail(call, -EINVAL, &err, "container config");
  return GRPC_STATUS_OK;
}

/* The container's memory limit for the guest kernel's accounting (0: none). */
/* LinuxContainerResources as the container record keeps them (CTR_EXT_RES). */
static json_t *res_json(const Runtime__V1__LinuxContainerResources *r)
{
  return json_pack("{s:I,s:I,s:I,s:I,s:s,s:s}", "CpuPeriod", (json_int_t)r->cpu_period,
                   "CpuQuota", (json_int_t)r->cpu_quota, "CpuShares", (json_int_t)r->cpu_shares,
                   "MemoryLimitInBytes", (json_int_t)r->memory_limit_in_bytes, "CpusetCpus",
                   r->cpuset_cpus ? r->cpuset_cpus : "", "CpusetMems",
                   r->cpuset_mems ? r->cpuset_mems : "");
}

static uint64_t mem_limit_of(const Runtime__V1__LinuxContainerConfig *l)
{
  return l && l->resources && l->resources->memory_limit_in_bytes > 0
             ? (uint64_t)l->resources->memory_limit_in_bytes
             : 0;
}

static void create_rollback(struct create_ctx *x, struct sbx_client *sbx, bool in_sbx)
{
  q_cleanup_error q_error *err = NULL;
  if (in_sbx && sbx)
    sbx_container_delete(sbx, x->id, NULL);
  if (x->rootfs_made && img_rootfs_remove(x->p->img, x->id, &err) < 0)
    q_warn(x->id, "rollback: rootfs: %s", q_error_msg(err));
  q_error_free(&err);
  if (x->dir)
    q_rm_rf(x->dir, NULL);
  cri_state_remove_ctr(x->p->st, x->id, NULL);
}

static grpc_status_code rpc_create_ctr(struct cri_call *call, const ProtobufCMessage *req,
                                       ProtobufCMessage **resp)
{
  const Runtime__V1__CreateContainerRequest *in = (const Runtime__V1__CreateContainerRequest *)req;
  struct cri_pods *p = pods_of(call);
  char pod_id[65];
  struct cri_pod *pod = NULL;
  int rc = in->pod_sandbox_id && *in->pod_sandbox_id
               ? cri_state_resolve_pod(p->st, in->pod_sandbox_id, pod_id)
               : -ENOENT;
  if (rc < 0 || cri_state_get_pod(p->st, pod_id, &pod) < 0)
    return cri_call_error(call, GRPC_STATUS_NOT_FOUND, "pod sandbox '%.80s' not found",
                          in->pod_sandbox_id ? in->pod_sandbox_id : "");
  const Runtime__V1__ContainerConfig *c = in->config;
  grpc_status_code code = validate_config(call, c);
  if (code != GRPC_STATUS_OK) {
    cri_pod_free(pod);
    return code;
  }
  struct create_ctx x = {.p = p, .c = c, .pod = pod};
  q_cleanup_error q_error *err = NULL;
  int64_t tm[6] = {q_mono_ns()}; /* phase marks for the debug log */
  if ((rc = img_status(p->img, c->image->image, &x.img, &err)) < 0) {
    cri_pod_free(pod);
    if (rc == -ENOENT) {
      q_error_free(&err);
      return cri_call_error(call, GRPC_STATUS_NOT_FOUND,
                            "image '%.200s' is not in the image store: pull it first",
                            c->image->image);
    }
    return cri_pods_fail(call, rc, &err, "image");
  }
  struct cri_pod_entry *e = cri_pods_get(p, pod->id);
  if (!e) {
    create_ctx_free(&x);
    cri_pod_free(pod);
    return oom(call);
  }
  pthread_mutex_lock(&e->op);
  const char *step = "CreateContainer";
  q_cleanup_free char *user = NULL;
  struct sbx_client *sbx = NULL;
  bool in_sbx = false, stored = false;
  /* Under the op lock: a concurrent StopPodSandbox has finished or not begun. */
  struct cri_pod *now = NULL;
  char other[65];
  if (cri_state_get_pod(p->st, pod->id, &now) < 0 || now->state != CRI_POD_READY) {
    rc = q_error_make(&err, ESRCH, "pod %.12s is not ready (stopped or its sandbox is gone)",
                      pod->id);
    cri_pod_free(now);
    goto fail;
  }
  cri_pod_free(now);
  if (ctr_name_taken(p, pod->id, c->metadata, other)) {
    rc = q_error_make(&err, EEXIST, "container %s (attempt %u) already exists in pod %.12s as %s",
                      c->metadata->name, c->metadata->attempt, pod->id, other);
    goto fail;
  }
  step = "pid namespace";
  if ((rc = pid_mode(&x, &err)) < 0)
    goto fail;
  step = "sandbox";
  if (!(sbx = cri_pods_sbx(p, e, pod, &rc, &err)))
    goto fail;

  step = "store container";
  if (q_random_id(x.id) < 0) {
    rc = q_error_make(&err, EIO, "container id");
    goto fail;
  }
  json_t *rd = json_object_get(pod->ext, POD_EXT_RUNDIR);
  if (!json_is_string(rd) || asprintf(&x.dir, "%s/%s", json_string_value(rd), x.id) < 0 ||
      asprintf(&x.rootfs, "%s/rootfs", x.dir) < 0) {
    x.dir = NULL;
    rc = q_error_make(&err, ENOMEM, "container dir");
    goto fail;
  }
  if (pod->log_directory && *pod->log_directory && c->log_path && *c->log_path &&
      asprintf(&x.log_path, "%s/%s", pod->log_directory, c->log_path) < 0) {
    x.log_path = NULL;
    rc = q_error_make(&err, ENOMEM, "log path");
    goto fail;
  }
  const char *image_ref =
      x.img->repo_digests && x.img->repo_digests[0] ? x.img->repo_digests[0] : x.img->id;
  struct cri_ctr rec = {.name = c->metadata->name,
                        .attempt = c->metadata->attempt,
                        .state = CRI_CTR_CREATED,
                        .created_at = q_now_ns(),
                        .image = c->image->image,
                        .image_ref = (char *)image_ref,
                        .image_id = x.img->id,
                        .reason = "",
                        .message = "",
                        .log_path = x.log_path ? x.log_path : ""};
  memcpy(rec.id, x.id, 65);
  memcpy(rec.pod_id, pod->id, 65);
  /* PidMode (and PidTarget) show in ContainerStatus's verbose info. */
  rec.ext = json_pack("{s:s,s:s,s:s}", CTR_EXT_DIR, x.dir, CTR_EXT_ROOTFS, x.rootfs,
                      CTR_EXT_PIDMODE,
                      x.pid_ns == SBX_PIDNS_POD      ? "POD"
                      : x.pid_ns == SBX_PIDNS_TARGET ? "TARGET"
                                                     : "CONTAINER");
  if (rec.ext && x.pid_ns == SBX_PIDNS_TARGET)
    json_object_set_new(rec.ext, CTR_EXT_PIDTARGET, json_string(x.pid_target));
  if (rec.ext && c->linux && c->linux->resources) /* the pod cgroup sums these */
    json_object_set_new(rec.ext, CTR_EXT_RES, res_json(c->linux->resources));
  if (!rec.ext || cri_conv_map_in((void *const *)c->labels, c->n_labels, &rec.labels) < 0 ||
      cri_conv_map_in((void *const *)c->annotations, c->n_annotations, &rec.annotations) < 0)
    rc = q_error_make(&err, ENOMEM, "container record");
  else
    rc = cri_state_add_ctr(p->st, &rec, &err);
  json_decref(rec.ext);
  cri_kvs_clear(&rec.labels);
  cri_kvs_clear(&rec.annotations);
  if (rc < 0)
    goto fail;
  stored = true;
  tm[1] = q_mono_ns();

  step = "root filesystem";
  if ((rc = q_mkdir_p(x.dir, 0711, &err)) < 0 ||
      (rc = img_rootfs_create(p->img, x.img->id, x.id, x.rootfs, &err)) < 0)
    goto fail;
  x.rootfs_made = true;
  tm[2] = q_mono_ns();

  step = "container process";
  size_t n_envs = c->n_envs;
  char **keys = calloc(n_envs + 1, sizeof(char *)), **vals = calloc(n_envs + 1, sizeof(char *));
  if (!keys || !vals) {
    free(keys);
    free(vals);
    rc = q_error_make(&err, ENOMEM, "env");
    goto fail;
  }
  for (size_t i = 0; i < n_envs; i++) {
    keys[i] = c->envs[i]->key;
    vals[i] = c->envs[i]->value;
  }
  rc = cri_spec_env(x.img->config.env, keys, vals, n_envs, &x.env, &err);
  free(keys);
  free(vals);
  if (rc < 0 ||
      (rc = cri_spec_argv(c->command, c->n_command, c->args, c->n_args, x.img->config.entrypoint,
                          x.img->config.cmd, &x.argv, &err)) < 0 ||
      (rc = cri_spec_check_size(x.argv, x.env, &err)) < 0)
    goto fail;
  user = user_spec(c, x.img);
  if (!user) {
    rc = q_error_make(&err, ENOMEM, "user");
    goto fail;
  }
  if ((rc = cri_spec_user(x.rootfs, user, &x.uid, &x.gid, &x.groups, &x.n_groups, &err)) < 0)
    goto fail;
  const Runtime__V1__LinuxContainerSecurityContext *sc =
      c->linux ? c->linux->security_context : NULL;
  for (size_t i = 0; sc && i < sc->n_supplemental_groups; i++) {
    uint32_t *ng = realloc(x.groups, (x.n_groups + 1) * sizeof(*ng));
    if (!ng) {
      rc = q_error_make(&err, ENOMEM, "groups");
      goto fail;
    }
    x.groups = ng;
    ng[x.n_groups++] = (uint32_t)sc->supplemental_groups[i];
  }
  step = "security context"; /* capabilities, no_new_privs, seccomp profile */
  if ((rc = cri_security_from_cri(sc, &x.caps, &x.no_new_privs, &x.seccomp, &x.seccomp_len,
                                  &err)) < 0)
    goto fail;
  step = "mounts";
  if ((rc = build_mounts(&x, &err)) < 0)
    goto fail_mounts;
  if (x.log_path) {
    q_cleanup_free char *ldir = strdup(x.log_path);
    char *slash = ldir ? strrchr(ldir, '/') : NULL;
    if (slash && slash != ldir) {
      *slash = '\0';
      if ((rc = q_mkdir_p(ldir, 0755, &err)) < 0)
        goto fail_mounts;
    }
  }

  step = "create container in sandbox";
  const char *cwd = c->working_dir && *c->working_dir ? c->working_dir
                    : x.img->config.working_dir && *x.img->config.working_dir
                        ? x.img->config.working_dir
                        : "/";
  struct sbx_container_spec spec = {.container_id = x.id,
                                    .rootfs = x.rootfs,
                                    .argv = (const char *const *)x.argv,
                                    .envp = (const char *const *)x.env,
                                    .cwd = cwd,
                                    .uid = x.uid,
                                    .gid = x.gid,
                                    .groups = x.groups,
                                    .n_groups = x.n_groups,
                                    .mounts = x.mounts,
                                    .n_mounts = x.n_mounts,
                                    .log_path = x.log_path,
                                    .caps_set = true,
                                    .caps = x.caps,
                                    .no_new_privs = x.no_new_privs,
                                    .seccomp = x.seccomp,
                                    .seccomp_len = x.seccomp_len,
                                    .readonly_rootfs = sc && sc->readonly_rootfs,
                                    .masked_paths = sc ? sc->masked_paths : NULL,
                                    .n_masked_paths = sc ? sc->n_masked_paths : 0,
                                    .readonly_paths = sc ? sc->readonly_paths : NULL,
                                    .n_readonly_paths = sc ? sc->n_readonly_paths : 0,
                                    .tty = c->tty,
                                    .stdin_open = c->stdin,
                                    .stdin_once = c->stdin && c->stdin_once,
                                    /* CRI pid mode (pid_mode above): POD, also
                                     * when unset, the pod's shared namespace;
                                     * CONTAINER its own; TARGET the target's. */
                                    .pid_ns = x.pid_ns,
                                    .pid_target = x.pid_target,
                                    .memory_limit = mem_limit_of(c->linux),
                                    .pids_limit = p->cfg->sandbox.pids_limit};
  tm[3] = q_mono_ns();
  if ((rc = sbx_container_create(sbx, &spec, &err)) < 0)
    goto fail_mounts;
  in_sbx = true;
  tm[4] = q_mono_ns();
  step = "store container";
  if ((rc = cri_state_update_ctr(p->st, x.id, set_created, &x, &err)) < 0)
    goto fail_mounts;
  free_pod_file_sources(&x);
  pthread_mutex_unlock(&e->op);
  cri_pods_put(p, e);
  tm[5] = q_mono_ns();
  q_debug(x.id,
          "container %s created in pod %.12s (ms: image+checks+record %.1f, rootfs %.1f, "
          "process spec+mounts %.1f, sandbox %.1f, store %.1f)",
          c->metadata->name, pod->id, (double)(tm[1] - tm[0]) / 1e6, (double)(tm[2] - tm[1]) / 1e6,
          (double)(tm[3] - tm[2]) / 1e6, (double)(tm[4] - tm[3]) / 1e6,
          (double)(tm[5] - tm[4]) / 1e6);
  if (cri_pod_cgroup_update(p, pod->id, &err) < 0) /* CPU limits (pod_cgroup.h) */
    q_warn(x.id, "pod cgroup: %s", q_error_msg(err));
  cri_pod_free(pod);
  Runtime__V1__CreateContainerResponse *out =
      cri_call_new_msg(call, &runtime__v1__create_container_response__descriptor);
  char *id = cri_call_strdup(call, x.id);
  create_ctx_free(&x);
  if (!out || !id)
    return oom(call);
  out->container_id = id;
  *resp = &out->base;
  return GRPC_STATUS_OK;

fail_mounts:
  if (x.mounts)
    free_pod_file_sources(&x);
fail:
  if (stored)
    create_rollback(&x, sbx, in_sbx);
  pthread_mutex_unlock(&e->op);
  cri_pods_put(p, e);
  cri_pod_free(pod);
  create_ctx_free(&x);
  return cri_pods_fail(call, rc, &err, step);
}

/* ---- start / stop / remove ---- */

static int set_running(struct cri_ctr *c, void *arg)
{
  if (c->state != CRI_CTR_CREATED)
    return -EALREADY;
  c->state = CRI_CTR_RUNNING;
  c->started_at = *(const int64_t *)arg;
  return 0;
}

static grpc_status_code rpc_start_ctr(struct cri_call *call, const ProtobufCMessage *req,
                                      ProtobufCMessage **resp)
{
  const Runtime__V1__StartContainerRequest *in = (const Runtime__V1__StartContainerRequest *)req;
  struct cri_pods *p = pods_of(call);
  struct cri_ctr *ctr = NULL;
  struct cri_pod *pod = NULL;
  grpc_status_code code = find_ctr(call, in->container_id, &ctr, &pod);
  if (code != GRPC_STATUS_OK)
    return code;
  struct cri_pod_entry *e = cri_pods_get(p, pod->id);
  if (!e) {
    cri_ctr_free(ctr);
    cri_pod_free(pod);
    return oom(call);
  }
  pthread_mutex_lock(&e->op);
  q_cleanup_error q_error *err = NULL;
  int rc = 0;
  struct cri_ctr *now = NULL;
  struct cri_pod *pnow = NULL;
  const char *step = "StartContainer";
  if (cri_state_get_ctr(p->st, ctr->id, &now) < 0 || cri_state_get_pod(p->st, pod->id, &pnow) < 0) {
    rc = q_error_make(&err, ENOENT, "container %.12s was removed", ctr->id);
  } else if (now->state != CRI_CTR_CREATED) {
    static const char *const names[] = {"created", "running", "exited", "unknown"};
    rc = q_error_make(&err, EBUSY, "container %.12s is %s, not created", ctr->id,
                      names[now->state & 3]);
  } else if (pnow->state != CRI_POD_READY) {
    rc = q_error_make(&err, ESRCH, "pod %.12s is not ready", pod->id);
  } else {
    struct sbx_client *c = cri_pods_sbx(p, e, pnow, &rc, &err);
    /* Taken before the start, so that an exit the sandbox reports right
     * away never precedes it. */
    int64_t started = q_now_ns(), t0 = q_mono_ns(), t1 = 0;
    if (c && (rc = sbx_container_start(c, ctr->id, &err)) == 0) {
      t1 = q_mono_ns();
      rc = cri_state_update_ctr(p->st, ctr->id, set_running, &started, &err);
      q_debug(ctr->id, "container started (ms: START %.1f, store %.1f)", (double)(t1 - t0) / 1e6,
              (double)(q_mono_ns() - t1) / 1e6);
    }
    step = "start container";
  }
  pthread_mutex_unlock(&e->op);
  cri_pods_put(p, e);
  cri_ctr_free(now);
  cri_pod_free(pnow);
  cri_ctr_free(ctr);
  cri_pod_free(pod);
  if (rc < 0)
    return cri_pods_fail(call, rc, &err, step);
  return GRPC_STATUS_OK;
}

static int signal_number(const char *s)
{
  static const struct {
    const char *name;
    int sig;
  } t[] = {{"TERM", SIGTERM}, {"KILL", SIGKILL}, {"INT", SIGINT},   {"QUIT", SIGQUIT},
           {"HUP", SIGHUP},   {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"WINCH", SIGWINCH},
           {"STOP", SIGSTOP}, {"PWR", SIGPWR}};
  if (!s || !*s)
    return SIGTERM;
  char *end;
  long n = strtol(s, &end, 10);
  if (!*end && n > 0 && n < 65)
    return (int)n;
  if (!strncasecmp(s, "SIG", 3))
    s += 3;
  for (size_t i = 0; i < Q_ARRAY_SIZE(t); i++)
    if (!strcasecmp(s, t[i].name))
      return t[i].sig;
  return SIGTERM;
}

struct stop_rec {
  const struct sbx_container_status *s;
  bool known;
};

static int record_stop(struct cri_ctr *c, void *arg)
{
  const struct stop_rec *x = arg;
  if (c->state == CRI_CTR_EXITED)
    return -EALREADY;
  const char *reason = !x->known              ? "Unknown"
                       : x->s->oom_killed     ? "OOMKilled"
                       : x->s->exit_code == 0 ? "Completed"
                                              : "Error";
  char *rs = strdup(reason);
  if (!rs)
    return -ENOMEM;
  free(c->reason);
  c->reason = rs;
  c->state = CRI_CTR_EXITED;
  c->exit_code = x->known ? x->s->exit_code : 137;
  c->finished_at = x->known && x->s->finished_at ? x->s->finished_at : q_now_ns();
  if (!c->started_at)
    c->started_at = c->finished_at;
  return 0;
}

static grpc_status_code rpc_stop_ctr(struct cri_call *call, const ProtobufCMessage *req,
                                     ProtobufCMessage **resp)
{
  const Runtime__V1__StopContainerRequest *in = (const Runtime__V1__StopContainerRequest *)req;
  struct cri_pods *p = pods_of(call);
  struct cri_ctr *ctr = NULL;
  struct cri_pod *pod = NULL;
  grpc_status_code code = find_ctr(call, in->container_id, &ctr, &pod);
  if (code != GRPC_STATUS_OK)
    return code;
  struct cri_pod_entry *e = cri_pods_get(p, pod->id);
  if (!e) {
    cri_ctr_free(ctr);
    cri_pod_free(pod);
    return oom(call);
  }
  pthread_mutex_lock(&e->op);
  q_cleanup_error q_error *err = NULL;
  int rc = 0;
  struct cri_ctr *now = NULL;
  if (cri_state_get_ctr(p->st, ctr->id, &now) == 0 && now->state == CRI_CTR_RUNNING) {
    struct sbx_container_status s = {0};
    struct stop_rec x = {.s = &s};
    struct sbx_client *c = cri_pods_sbx(p, e, pod, &rc, &err);
    int64_t timeout_ms = in->timeout > 0 ? in->timeout * 1000 : 0;
    if (timeout_ms > 24LL * 3600 * 1000)
      timeout_ms = 24LL * 3600 * 1000;
    if (c) {
      /* The stop signal, then SIGKILL once the timeout is over (at once
       * with timeout 0), as kubelet expects. */
      int sig = timeout_ms ? signal_number(ext_str(now->ext, CTR_EXT_STOPSIG)) : SIGKILL;
      rc = sbx_container_signal(c, ctr->id, sig, &err);
      if (rc == 0)
        rc = sbx_container_wait(c, ctr->id, sig == SIGKILL ? KILL_WAIT_MS : (int)timeout_ms, &s,
                                &err);
      bool exited = rc == 0 && s.state == SBX_PROC_EXITED;
      if (!exited && sig != SIGKILL && (rc == 0 || rc == -ETIMEDOUT)) {
        q_error_free(&err);
        rc = sbx_container_signal(c, ctr->id, SIGKILL, &err);
        if (rc == 0)
          rc = sbx_container_wait(c, ctr->id, KILL_WAIT_MS, &s, &err);
      }
      x.known = rc == 0 && s.state == SBX_PROC_EXITED;
      if (rc == -ENOENT || rc == -ESRCH) { /* gone with its sandbox: it is stopped */
        q_error_free(&err);
        rc = 0;
      }
    } else if (rc == -ESRCH || rc == -ENOSYS) {
      q_error_free(&err);
      rc = 0; /* no sandbox: nothing runs any more */
    }
    if (rc == 0)
      rc = cri_state_update_ctr(p->st, ctr->id, record_stop, &x, &err);
    if (rc == -EALREADY)
      rc = 0;
  }
  pthread_mutex_unlock(&e->op);
  cri_pods_put(p, e);
  cri_ctr_free(now);
  cri_ctr_free(ctr);
  cri_pod_free(pod);
  if (rc < 0)
    return cri_pods_fail(call, rc, &err, "stop container");
  return GRPC_STATUS_OK;
}

static grpc_status_code rpc_remove_ctr(struct cri_call *call, const ProtobufCMessage *req,
                                       ProtobufCMessage **resp)
{
  const Runtime__V1__RemoveContainerRequest *in = (const Runtime__V1__RemoveContainerRequest *)req;
  struct cri_pods *p = pods_of(call);
  char id[65];
  /* Idempotent: an unknown container is already removed. */
  if (!in->container_id || !*in->container_id ||
      cri_state_resolve_ctr(p->st, in->container_id, id) < 0)
    return GRPC_STATUS_OK;
  struct cri_ctr *ctr = NULL;
  struct cri_pod *pod = NULL;
  if (cri_state_get_ctr(p->st, id, &ctr) < 0)
    return GRPC_STATUS_OK;
  cri_state_get_pod(p->st, ctr->pod_id, &pod);
  struct cri_pod_entry *e = cri_pods_get(p, ctr->pod_id);
  cri_ctr_free(ctr);
  if (!e) {
    cri_pod_free(pod);
    return oom(call);
  }
  pthread_mutex_lock(&e->op);
  q_cleanup_error q_error *err = NULL;
  int rc = cri_pods_remove_ctr(p, e, pod, id, &err);
  pthread_mutex_unlock(&e->op);
  cri_pods_put(p, e);
  cri_pod_free(pod);
  if (rc < 0)
    return cri_pods_fail(call, rc, &err, "remove container");
  return GRPC_STATUS_OK;
}

/* ---- exec, logs, resources ---- */

static grpc_status_code rpc_exec_sync(struct cri_call *call, const ProtobufCMessage *req,
                                      ProtobufCMessage **resp)
{
  const Runtime__V1__ExecSyncRequest *in = (const Runtime__V1__ExecSyncRequest *)req;
  struct cri_pods *p = pods_of(call);
  if (in->n_cmd == 0 || !in->cmd[0][0])
    return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT, "ExecSync: cmd is empty");
  if (in->timeout < 0)
    return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT, "ExecSync: negative timeout");
  struct cri_ctr *ctr = NULL;
  struct cri_pod *pod = NULL;
  grpc_status_code code = find_ctr(call, in->container_id, &ctr, &pod);
  if (code != GRPC_STATUS_OK)
    return code;
  q_cleanup_error q_error *err = NULL;
  int rc = 0;
  struct sbx_exec_result r = {0};
  char **argv = calloc(in->n_cmd + 1, sizeof(char *));
  if (!argv)
    rc = q_error_make(&err, ENOMEM, "argv");
  for (size_t i = 0; argv && i < in->n_cmd; i++)
    argv[i] = in->cmd[i];
  if (rc == 0)
    rc = cri_spec_check_size(argv, NULL, &err);
  if (rc == 0 && ctr->state != CRI_CTR_RUNNING)
    rc = q_error_make(&err, EBUSY, "container %.12s is not running", ctr->id);
  struct cri_pod_entry *e = rc == 0 ? cri_pods_get(p, pod->id) : NULL;
  if (e) {
    struct sbx_client *own = cri_pods_sbx_private(pod);
    struct sbx_client *c = own ? own : cri_pods_sbx(p, e, pod, &rc, &err);
    int timeout_ms =
        in->timeout > 0 ? (in->timeout > 86400 ? 86400000 : (int)in->timeout * 1000) : -1;
    if (c)
      rc = sbx_container_exec(c, ctr->id, (const char *const *)argv, timeout_ms, EXEC_OUT_CAP, &r,
                              &err);
    if (own)
      sbx_client_close(own);
    cri_pods_put(p, e);
  }
  free(argv);
  if (rc == -ETIMEDOUT) {
    q_error_free(&err);
    code = cri_call_error(call, GRPC_STATUS_DEADLINE_EXCEEDED, "command timed out after %lld s",
                          (long long)in->timeout);
  } else if (rc < 0) {
    code = cri_pods_fail(call, rc, &err, "ExecSync");
  }
  cri_ctr_free(ctr);
  cri_pod_free(pod);
  if (rc < 0) {
    sbx_exec_result_clear(&r);
    return code;
  }
  Runtime__V1__ExecSyncResponse *out =
      cri_call_new_msg(call, &runtime__v1__exec_sync_response__descriptor);
  uint8_t *o = out ? cri_call_alloc(call, r.out_len + 1) : NULL;
  uint8_t *er = out ? cri_call_alloc(call, r.err_len + 1) : NULL;
  if (!out || !o || !er) {
    sbx_exec_result_clear(&r);
    return oom(call);
  }
  if (r.out_len)
    memcpy(o, r.out, r.out_len);
  if (r.err_len)
    memcpy(er, r.err, r.err_len);
  out->stdout = (ProtobufCBinaryData){r.out_len, o};
  out->stderr = (ProtobufCBinaryData){r.err_len, er};
  out->exit_code = r.exit_code;
  sbx_exec_result_clear(&r);
  *resp = &out->base;
  return GRPC_STATUS_OK;
}

static grpc_status_code rpc_reopen_log(struct cri_call *call, const ProtobufCMessage *req,
                                       ProtobufCMessage **resp)
{
  const Runtime__V1__ReopenContainerLogRequest *in =
      (const Runtime__V1__ReopenContainerLogRequest *)req;
  struct cri_pods *p = pods_of(call);
  struct cri_ctr *ctr = NULL;
  struct cri_pod *pod = NULL;
  grpc_status_code code = find_ctr(call, in->container_id, &ctr, &pod);
  if (code != GRPC_STATUS_OK)
    return code;
  q_cleanup_error q_error *err = NULL;
  int rc = 0;
  if (ctr->state != CRI_CTR_RUNNING)
    rc = q_error_make(&err, EBUSY, "container %.12s is not running", ctr->id);
  /* The sandbox owns the log file's descriptor: it closes it and opens the
   * path again (kubelet renamed the old file away to rotate it). */
  struct cri_pod_entry *e = rc == 0 ? cri_pods_get(p, pod->id) : NULL;
  if (e) {
    struct sbx_client *own = cri_pods_sbx_private(pod);
    struct sbx_client *c = own ? own : cri_pods_sbx(p, e, pod, &rc, &err);
    if (c)
      rc = sbx_container_reopen_log(c, ctr->id, ctr->log_path, &err);
    if (own)
      sbx_client_close(own);
    cri_pods_put(p, e);
  }
  cri_ctr_free(ctr);
  cri_pod_free(pod);
  if (rc == -EBUSY)
    return cri_call_error(call, GRPC_STATUS_FAILED_PRECONDITION, "ReopenContainerLog: %s",
                          q_error_msg(err));
  if (rc < 0)
    return cri_pods_fail(call, rc, &err, "ReopenContainerLog");
  Runtime__V1__ReopenContainerLogResponse *out =
      cri_call_new_msg(call, &runtime__v1__reopen_container_log_response__descriptor);
  if (!out)
    return oom(call);
  *resp = &out->base;
  return GRPC_STATUS_OK;
}

static int set_resources(struct cri_ctr *c, void *arg)
{
  json_object_set(c->ext, CTR_EXT_RES, arg);
  return 0;
}

static grpc_status_code rpc_update_resources(struct cri_call *call, const ProtobufCMessage *req,
                                             ProtobufCMessage **resp)
{
  const Runtime__V1__UpdateContainerResourcesRequest *in =
      (const Runtime__V1__UpdateContainerResourcesRequest *)req;
  struct cri_pods *p = pods_of(call);
  struct cri_ctr *ctr = NULL;
  struct cri_pod *pod = NULL;
  grpc_status_code code = find_ctr(call, in->container_id, &ctr, &pod);
  if (code != GRPC_STATUS_OK)
    return code;
  if (ctr->state == CRI_CTR_EXITED || ctr->state == CRI_CTR_UNKNOWN) {
    cri_ctr_free(ctr);
    cri_pod_free(pod);
    return cri_call_error(call, GRPC_STATUS_FAILED_PRECONDITION,
                          "container %.80s is not created or running", in->container_id);
  }
  const Runtime__V1__LinuxContainerResources *r = in->linux;
  if (!r) {
    cri_ctr_free(ctr);
    cri_pod_free(pod);
    return GRPC_STATUS_OK;
  }
  if (r->memory_limit_in_bytes < 0 || r->cpu_quota < -1 || r->cpu_period < 0 || r->cpu_shares < 0) {
    cri_ctr_free(ctr);
    cri_pod_free(pod);
    return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT, "negative resource values");
  }
  json_t *o = res_json(r);
  q_cleanup_error q_error *err = NULL;
  /* The memory limit goes to the guest kernel's accounting (a container
   * past it is OOM-killed, reason OOMKilled); CPU values go to the pod's
   * cgroup (pod_cgroup.h: the sum over its containers). */
  int rc = 0;
  struct cri_pod_entry *e = o ? cri_pods_get(p, pod->id) : NULL;
  if (e) {
    struct sbx_client *own = cri_pods_sbx_private(pod);
    struct sbx_client *c = own ? own : cri_pods_sbx(p, e, pod, &rc, &err);
    if (c)
      rc = sbx_container_update(c, ctr->id, (uint64_t)r->memory_limit_in_bytes, &err);
    if (own)
      sbx_client_close(own);
    cri_pods_put(p, e);
  }
  if (rc == 0)
    rc = o ? cri_state_update_ctr(p->st, ctr->id, set_resources, o, &err) : -ENOMEM;
  if (rc == 0)
    rc = cri_pod_cgroup_update(p, pod->id, &err);
  json_decref(o);
  cri_ctr_free(ctr);
  cri_pod_free(pod);
  if (rc < 0)
    return cri_pods_fail(call, rc, &err, "UpdateContainerResources");
  Runtime__V1__UpdateContainerResourcesResponse *out =
      cri_call_new_msg(call, &runtime__v1__update_container_resources_response__descriptor);
  if (!out)
    return oom(call);
  *resp = &out->base;
  return GRPC_STATUS_OK;
}

int cri_ctr_rpc_register(struct cri_server *srv, q_error **err)
{
  static const struct {
    const char *name;
    cri_handler_fn fn;
  } table[] = {
      {"CreateContainer", rpc_create_ctr},
      {"StartContainer", rpc_start_ctr},
      {"StopContainer", rpc_stop_ctr},
      {"RemoveContainer", rpc_remove_ctr},
      {"ExecSync", rpc_exec_sync},
      {"ReopenContainerLog", rpc_reopen_log},
      {"UpdateContainerResources", rpc_update_resources},
  };
  for (size_t i = 0; i < Q_ARRAY_SIZE(table); i++) {
    int r = cri_server_set_handler(srv, "RuntimeService", table[i].name, table[i].fn);
    if (r < 0)
      return q_error_make(err, -r, "register RuntimeService/%s", table[i].name);
  }
  return 0;
}
