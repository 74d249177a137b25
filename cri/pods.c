/* The pod runtime's shared part: the entry table (one per pod, with its
 * sandbox client and life-cycle lock), the exit monitor,
 * and the teardown of one container that Remove{Container,PodSandbox}
 * share. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "image.h"
#include "pods.h"

#define MONITOR_PERIOD_MS 1000
#define KILL_WAIT_MS 5000

/* ---- error mapping ---- */

grpc_status_code cri_pods_code(int rc)
{
  switch (-rc) {
  case EINVAL:
  case E2BIG:
  case ENAMETOOLONG:
    return GRPC_STATUS_INVALID_ARGUMENT;
  case ENOENT:
    return GRPC_STATUS_NOT_FOUND;
  case EEXIST:
    return GRPC_STATUS_ALREADY_EXISTS;
  case ENOSYS:
  case EOPNOTSUPP:
    return GRPC_STATUS_UNIMPLEMENTED;
  case ETIMEDOUT:
    return GRPC_STATUS_DEADLINE_EXCEEDED;
  case ESRCH:
  case EBUSY:
    return GRPC_STATUS_FAILED_PRECONDITION;
  case ENOMEM:
  case ENOSPC:
    return GRPC_STATUS_RESOURCE_EXHAUSTED;
  case EACCES:
  case EPERM:
    return GRPC_STATUS_PERMISSION_DENIED;
  default:
    return GRPC_STATUS_INTERNAL;
  }
}

grpc_status_code cri_pods_fail(struct cri_call *call, int rc, q_error **err, const char *what)
{
  grpc_status_code code = cri_pods_code(rc);
  cri_call_error(call, code, "%s: %s", what, err && *err ? q_error_msg(*err) : strerror(-rc));
  if (err)
    q_error_free(err);
  return code;
}

/* ---- entries ---- */

struct cri_pod_entry *cri_pods_get(struct cri_pods *p, const char *id)
{
  pthread_mutex_lock(&p->lock);
  for (size_t i = 0; i < p->n_entries; i++)
    if (strcmp(p->entries[i]->id, id) == 0) {
      struct cri_pod_entry *e = p->entries[i];
      e->refs++;
      pthread_mutex_unlock(&p->lock);
      return e;
    }
  struct cri_pod_entry *e = calloc(1, sizeof(*e));
  struct cri_pod_entry **nv = e ? realloc(p->entries, (p->n_entries + 1) * sizeof(*nv)) : NULL;
  if (!nv) {
    free(e);
    pthread_mutex_unlock(&p->lock);
    return NULL;
  }
  p->entries = nv;
  snprintf(e->id, sizeof(e->id), "%s", id);
  pthread_mutex_init(&e->op, NULL);
  pthread_mutex_init(&e->sbx_lock, NULL);
  e->refs = 2; /* the table's and the caller's */
  p->entries[p->n_entries++] = e;
  pthread_mutex_unlock(&p->lock);
  return e;
}

static void entry_free(struct cri_pod_entry *e)
{
  if (e->sbx)
    sbx_client_close(e->sbx);
  for (size_t i = 0; i < e->n_retired; i++)
    sbx_client_close(e->retired[i]);
  free(e->retired);
  pthread_mutex_destroy(&e->op);
  pthread_mutex_destroy(&e->sbx_lock);
  free(e);
}

void cri_pods_put(struct cri_pods *p, struct cri_pod_entry *e)
{
  if (!e)
    return;
  pthread_mutex_lock(&p->lock);
  bool last = --e->refs == 0;
  pthread_mutex_unlock(&p->lock);
  if (last)
    entry_free(e);
}

void cri_pods_forget(struct cri_pods *p, struct cri_pod_entry *e)
{
  pthread_mutex_lock(&p->lock);
  for (size_t i = 0; i < p->n_entries; i++)
    if (p->entries[i] == e) {
      p->entries[i] = p->entries[--p->n_entries];
      e->removed = true;
      e->refs--;
      break;
    }
  pthread_mutex_unlock(&p->lock);
  cri_pods_set_sbx(e, NULL);
}

void cri_pods_set_sbx(struct cri_pod_entry *e, struct sbx_client *c)
{
  pthread_mutex_lock(&e->sbx_lock);
  struct sbx_client *old = e->sbx;
  e->sbx = c;
  if (old && old != c) {
    struct sbx_client **nv = realloc(e->retired, (e->n_retired + 1) * sizeof(*nv));
    if (nv) {
      e->retired = nv;
      nv[e->n_retired++] = old;
      old = NULL;
    }
  } else {
    old = NULL;
  }
  pthread_mutex_unlock(&e->sbx_lock);
  /* Out of memory: leak the connection rather than free it under a user. */
  (void)old;
}

static struct sbx_client *reach(struct cri_pods *p, struct cri_pod_entry *e,
                                const struct cri_pod *pod, bool any_state, int *rc, q_error **err)
{
  pthread_mutex_lock(&e->sbx_lock);
  struct sbx_client *c = e->sbx;
  pthread_mutex_unlock(&e->sbx_lock);
  if (c)
    return c;
  json_t *sock = json_object_get(pod->ext, POD_EXT_SOCKET);
  if ((pod->state != CRI_POD_READY && !any_state) || !json_is_string(sock) ||
      !*json_string_value(sock)) {
    *rc = q_error_make(err, ESRCH, "pod %.12s has no running sandbox", pod->id);
    return NULL;
  }
  *rc = sbx_client_connect(json_string_value(sock), &c, err);
  if (*rc < 0)
    return NULL;
  pthread_mutex_lock(&e->sbx_lock);
  if (e->sbx) { /* another thread reconnected first; c was never shared */
    struct sbx_client *mine = c;
    c = e->sbx;
    pthread_mutex_unlock(&e->sbx_lock);
    sbx_client_close(mine);
    return c;
  } else {
    e->sbx = c;
  }
  pthread_mutex_unlock(&e->sbx_lock);
  return c;
}

struct sbx_client *cri_pods_sbx(struct cri_pods *p, struct cri_pod_entry *e,
                                const struct cri_pod *pod, int *rc, q_error **err)
{
  return reach(p, e, pod, false, rc, err);
}

struct sbx_client *cri_pods_sbx_any(struct cri_pods *p, struct cri_pod_entry *e,
                                    const struct cri_pod *pod, int *rc, q_error **err)
{
  return reach(p, e, pod, true, rc, err);
}

struct sbx_client *cri_pods_sbx_private(const struct cri_pod *pod)
{
  json_t *sock = json_object_get(pod->ext, POD_EXT_SOCKET);
  struct sbx_client *c = NULL;
  if (pod->state != CRI_POD_READY || !json_is_string(sock) ||
      sbx_client_connect(json_string_value(sock), &c, NULL) < 0)
    return NULL;
  return c;
}

/* ---- state updates ---- */

struct exit_info {
  int32_t code;
  int64_t finished;
  const char *reason, *message;
};

static int set_exited(struct cri_ctr *c, void *arg)
{
  const struct exit_info *x = arg;
  if (c->state == CRI_CTR_EXITED)
    return -EALREADY;
  char *reason = strdup(x->reason), *msg = strdup(x->message ? x->message : "");
  if (!reason || !msg) {
    free(reason);
    free(msg);
    return -ENOMEM;
  }
  free(c->reason);
  free(c->message);
  c->reason = reason;
  c->message = msg;
  c->state = CRI_CTR_EXITED;
  c->exit_code = x->code;
  c->finished_at = x->finished ? x->finished : q_now_ns();
  if (!c->started_at)
    c->started_at = c->finished_at;
  return 0;
}

/* Reason from the exit, as kubelet shows them. */
static const char *exit_reason(const struct sbx_container_status *s)
{
  return s->oom_killed ? "OOMKilled" : s->exit_code == 0 ? "Completed" : "Error";
}

static int set_pod_notready(struct cri_pod *pod, void *arg)
{
  const char *why = arg;
  pod->state = CRI_POD_NOTREADY;
  if (why)
    json_object_set_new(pod->ext, POD_EXT_SBXERR, json_string(why));
  return 0;
}

/* The sandbox is gone: the pod is NOTREADY and its containers that were
 * running exited with an unknown status (255, as containerd reports a lost
 * task). Created containers can never start and become EXITED too. */
void cri_pods_mark_gone(struct cri_pods *p, const char *pod_id, const char *why)
{
  q_warn(pod_id, "sandbox gone: %s", why);
  cri_state_update_pod(p->st, pod_id, set_pod_notready, (void *)why, NULL);
  struct cri_ctr_filter f = {.pod_id = pod_id};
  struct cri_ctr **v = NULL;
  size_t n = 0;
  if (cri_state_list_ctrs(p->st, &f, &v, &n) < 0)
    return;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(v[i]->pod_id, pod_id) || v[i]->state == CRI_CTR_EXITED)
      continue;
    char *msg = NULL;
    if (asprintf(&msg, "the pod's sandbox is gone: %s", why) < 0)
      msg = NULL;
    struct exit_info x = {.code = 255, .reason = "Unknown", .message = msg};
    cri_state_update_ctr(p->st, v[i]->id, set_exited, &x, NULL);
    free(msg);
  }
  cri_ctr_list_free(v, n);
}

void cri_pods_refresh_ctr(struct cri_pods *p, const char *ctr_id)
{
  struct cri_ctr *ctr = NULL;
  struct cri_pod *pod = NULL;
  q_cleanup_error q_error *err = NULL;
  if (cri_state_get_ctr(p->st, ctr_id, &ctr) < 0)
    return;
  if (ctr->state != CRI_CTR_RUNNING || cri_state_get_pod(p->st, ctr->pod_id, &pod) < 0)
    goto out;
  struct cri_pod_entry *e = cri_pods_get(p, pod->id);
  if (!e)
    goto out;
  int rc = 0;
  struct sbx_client *c = cri_pods_sbx(p, e, pod, &rc, &err);
  struct sbx_container_status s = {0};
  if (c)
    rc = sbx_container_status(c, ctr_id, &s, &err);
  if (rc == -ESRCH && pod->state == CRI_POD_READY) {
    cri_pods_mark_gone(p, pod->id, q_error_msg(err));
    cri_pods_set_sbx(e, NULL);
  } else if (rc == -ENOENT) {
    struct exit_info x = {
        .code = 255, .reason = "Unknown", .message = "the sandbox no longer knows this container"};
    cri_state_update_ctr(p->st, ctr_id, set_exited, &x, NULL);
  } else if (rc == 0 && s.state == SBX_PROC_EXITED) {
    struct exit_info x = {
        .code = s.exit_code, .finished = s.finished_at, .reason = exit_reason(&s)};
    cri_state_update_ctr(p->st, ctr_id, set_exited, &x, NULL);
  }
  cri_pods_put(p, e);
out:
  cri_pod_free(pod);
  cri_ctr_free(ctr);
}

static void *monitor_main(void *arg)
{
  struct cri_pods *p = arg;
  pthread_mutex_lock(&p->lock);
  while (!p->stopping) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += MONITOR_PERIOD_MS / 1000;
    pthread_cond_timedwait(&p->wake, &p->lock, &until);
    if (p->stopping)
      break;
    pthread_mutex_unlock(&p->lock);
    struct cri_ctr_filter f = {.has_state = true, .state = CRI_CTR_RUNNING};
    struct cri_ctr **v = NULL;
    size_t n = 0;
    if (cri_state_list_ctrs(p->st, &f, &v, &n) == 0) {
      for (size_t i = 0; i < n; i++)
        cri_pods_refresh_ctr(p, v[i]->id);
      cri_ctr_list_free(v, n);
    }
    pthread_mutex_lock(&p->lock);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

/* ---- removing one container ---- */

int cri_pods_remove_ctr(struct cri_pods *p, struct cri_pod_entry *e, const struct cri_pod *pod,
                        const char *ctr_id, q_error **err)
{
  struct cri_ctr *ctr = NULL;
  if (cri_state_get_ctr(p->st, ctr_id, &ctr) < 0)
    return 0;
  q_cleanup_error q_error *serr = NULL;
  int rc = 0;
  /* RemoveContainer (pod given) marks the record first, so that a restart
   * in the middle finishes the removal (pod_reconcile.c); a pod's removal
   * is marked on the pod record instead. */
  if (pod && (rc = cri_pods_mark_ctr_removing(p, ctr, err)) < 0) {
    cri_ctr_free(ctr);
    return rc;
  }
  struct sbx_client *c = pod ? cri_pods_sbx(p, e, pod, &rc, &serr) : NULL;
  if (c) {
    /* CRI: a running container is removed by force. */
    if (ctr->state == CRI_CTR_RUNNING) {
      struct sbx_container_status s = {0};
      if (sbx_container_signal(c, ctr_id, SIGKILL, NULL) == 0)
        sbx_container_wait(c, ctr_id, KILL_WAIT_MS, &s, NULL);
    }
    rc = sbx_container_delete(c, ctr_id, &serr);
    if (rc < 0 && rc != -ENOENT && rc != -ESRCH)
      q_warn(ctr_id, "sandbox delete: %s", q_error_msg(serr));
  }
  rc = img_rootfs_remove(p->img, ctr_id, err);
  if (rc < 0) {
    cri_ctr_free(ctr);
    return q_error_wrap(err, "remove root filesystem of container %.12s", ctr_id);
  }
  json_t *dir = json_object_get(ctr->ext, CTR_EXT_DIR);
  if (json_is_string(dir) && (rc = q_rm_rf(json_string_value(dir), err)) < 0) {
    cri_ctr_free(ctr);
    return rc;
  }
  cri_ctr_free(ctr);
  return cri_state_remove_ctr(p->st, ctr_id, err);
}

/* ---- life cycle ---- */

/* The run root lives next to the CRI socket (/run/quark/pods): a tmpfs in
 * production, short enough for the sandboxes' socket paths. */
static char *run_root_of(const struct cri_config *cfg)
{
  const char *sock = cri_config_socket_path(cfg->socket);
  const char *slash = sock ? strrchr(sock, '/') : NULL;
  char *out = NULL;
  if (!slash || asprintf(&out, "%.*s/pods", (int)(slash - sock), sock) < 0)
    return NULL;
  return out;
}

int cri_pods_init(struct cri_server *srv, const struct cri_config *cfg, q_error **err)
{
  struct cri_pods *p = calloc(1, sizeof(*p));
  if (!p)
    return q_error_make(err, ENOMEM, "pods");
  p->cfg = cfg;
  p->st = cri_server_state(srv);
  pthread_mutex_init(&p->lock, NULL);
  pthread_mutex_init(&p->names, NULL);
  pthread_cond_init(&p->wake, NULL);
  cri_server_set_pods_ctx(srv, p);
  int rc;
  if (!(p->run_root = run_root_of(cfg))) {
    rc = q_error_make(err, EINVAL, "cannot derive the pod run dir from %s", cfg->socket);
    goto fail;
  }
  if ((rc = q_mkdir_p(p->run_root, 0711, err)) < 0)
    goto fail;
  net_cni_options no = {.conf_dir = cfg->cni.conf_dir,
                        .plugin_dirs = (const char *const *)cfg->cni.bin_dirs,
                        .n_plugin_dirs = cfg->cni.n_bin_dirs,
                        .cache_dir = cfg->cni.cache_dir};
  if ((rc = net_cni_new(&no, &p->cni, err)) < 0)
    goto fail;
  /* Our own handle: we only build root filesystems with it, the image RPCs
   * keep theirs for pulls. Opened before the image service starts, so its
   * clean-up of half-done pulls cannot meet a pull of ours. */
  struct img_store_opts io = {.root = cfg->image_root};
  if ((rc = img_store_open(&io, &p->img, err)) < 0)
    goto fail;
  cri_pods_recover(p);
  if ((rc = cri_pod_rpc_register(srv, err)) < 0 || (rc = cri_ctr_rpc_register(srv, err)) < 0 ||
      (rc = cri_stats_rpc_register(srv, err)) < 0)
    goto fail;
  if ((rc = pthread_create(&p->monitor, NULL, monitor_main, p)) != 0) {
    rc = q_error_make(err, rc, "start the container monitor");
    goto fail;
  }
  p->monitor_started = true;
  if ((rc = cri_stream_rpc_start(srv, p, err)) < 0)
    goto fail;
  return 0;
fail:
  cri_pods_fini(srv);
  return rc;
}

void cri_pods_fini(struct cri_server *srv)
{
  struct cri_pods *p = cri_server_pods_ctx(srv);
  if (!p)
    return;
  cri_server_set_pods_ctx(srv, NULL);
  cri_stream_rpc_stop(p);
  if (p->monitor_started) {
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->monitor, NULL);
  }
  for (size_t i = 0; i < p->n_entries; i++)
    cri_pods_put(p, p->entries[i]);
  free(p->entries);
  if (p->img)
    img_store_close(p->img);
  net_cni_free(p->cni);
  free(p->run_root);
  pthread_mutex_destroy(&p->lock);
  pthread_mutex_destroy(&p->names);
  pthread_cond_destroy(&p->wake);
  free(p);
}
