/* Restart reconciliation (ARCHITECTURE "State store"): what a starting
 * quarkd does with the records, sandboxes, namespaces and mounts that a
 * quarkd killed at any point left behind, and the teardown of a pod that
 * RemovePodSandbox and this recovery share.
 *
 * Decisions, per half-done step (a client never got OK for any of them):
 * - RunPodSandbox not finished (the record has no ControlSocket: it never
 *   became READY): rolled back whatever step it reached: its sandbox is
 *   stopped (control socket, else SIGKILL by pid), the network torn down
 *   (CNI DEL when its netns was pinned, netns removed), mounts under its
 *   run dir unmounted, run dir and record removed. Never completed: kubelet
 *   retries a failed RunPodSandbox with the same metadata, and a completed
 *   pod would answer it ALREADY_EXISTS.
 * - RunPodSandbox failed and its rollback's CNI DEL failed too (the record
 *   has NetworkTeardownError, no ControlSocket): the same roll back, which
 *   retries the DEL; while it fails the pod stays for Stop/Remove.
 * - RemovePodSandbox not finished (the record has Removing): finished.
 * - CreateContainer not finished (a CREATED record without Argv, which
 *   its last step writes): rolled back (sandbox delete, root filesystem,
 *   dir, record).
 * - RemoveContainer not finished (Removing): finished.
 * - StartContainer not recorded (CREATED here, started in the sandbox):
 *   completed from the sandbox's status (RUNNING, or EXITED with its code).
 * - StopPodSandbox not finished: a READY pod whose sandbox is gone becomes
 *   NOTREADY (its containers EXITED, 255); a CNI pod that is NOTREADY with
 *   a cached attachment gets its CNI DEL again.
 * Sweeps, only of this quarkd's own objects (never another quarkd's on the
 * host): sandbox processes whose control socket lies under this quarkd's
 * run root and whose pod has no record are killed; run dirs and container
 * dirs without a record lose their mounts and are removed; container root
 * filesystems in the image store that were mounted under this run root and
 * have no record are removed, and so are a torn-down pod's CNI cache temp
 * files (a kill inside an atomic write). Network namespaces are only touched through
 * a record (quark-<first 16 hex of the pod id>), never by prefix. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include "image.h"
#include "pod_cgroup.h"
#include "pods.h"

#define LEFTOVER_KILL_WAIT_MS 3000

struct recon_counts {
  unsigned pods_rolled_back, pods_removed, pods_reattached, pods_gone, pods_cni_del;
  unsigned ctrs_rolled_back, ctrs_removed, ctrs_completed;
  unsigned procs_killed, dirs_removed, mounts_removed, rootfs_removed;
};

static const char *ext_str(json_t *ext, const char *key)
{
  json_t *v = json_object_get(ext, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool ext_true(json_t *ext, const char *key)
{
  return json_is_true(json_object_get(ext, key));
}

void cri_pods_netns_path(const char *pod_id, char out[64])
{
  snprintf(out, 64, "%s/quark-%.16s", NET_DEFAULT_NETNS_DIR, pod_id);
}

/* ---- processes of this quarkd ---- */

struct sbx_proc {
  pid_t pid;
  char pod_id[65];
};

/* Every `quark-sandbox pod` process whose --control socket lies under this
 * quarkd's run root (the sandboxes of other quarkd instances have other
 * run roots). */
static size_t our_sandboxes(const struct cri_pods *p, struct sbx_proc **out)
{
  *out = NULL;
  size_t n = 0, cap = 0, rl = strlen(p->run_root);
  DIR *d = opendir("/proc");
  struct dirent *de;
  while (d && (de = readdir(d))) {
    if (!isdigit((unsigned char)de->d_name[0]))
      continue;
    char path[300], buf[8192];
    snprintf(path, sizeof path, "/proc/%.250s/cmdline", de->d_name);
    FILE *f = fopen(path, "re");
    if (!f)
      continue;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    const char *argv[64];
    int argc = 0;
    for (size_t i = 0; i < len && argc < 64; i += strlen(buf + i) + 1)
      argv[argc++] = buf + i;
    if (argc < 2 || strcmp(argv[1], "pod") != 0)
      continue;
    const char *ctl = NULL, *id = NULL;
    for (int i = 2; i + 1 < argc; i++) {
      if (!strcmp(argv[i], "--control"))
        ctl = argv[i + 1];
      else if (!strcmp(argv[i], "--pod-id"))
        id = argv[i + 1];
    }
    if (!ctl || !id || strncmp(ctl, p->run_root, rl) != 0 || ctl[rl] != '/' ||
        !cri_state_valid_id(id))
      continue;
    if (n == cap) {
      struct sbx_proc *nv = realloc(*out, (cap = cap ? 2 * cap : 16) * sizeof(*nv));
      if (!nv)
        break;
      *out = nv;
    }
    (*out)[n].pid = (pid_t)atoi(de->d_name);
    memcpy((*out)[n].pod_id, id, 65);
    n++;
  }
  if (d)
    closedir(d);
  return n;
}

static bool proc_gone(pid_t pid)
{
  char path[64], st = 0;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "re");
  if (!f)
    return true;
  /* "pid (comm) S ...": a zombie is gone for our purposes (init reaps it). */
  int c, paren = 0;
  while ((c = fgetc(f)) != EOF)
    if (c == ')')
      paren = 1;
    else if (paren && c != ' ') {
      st = (char)c;
      break;
    }
  fclose(f);
  return st == 'Z' || st == 'X';
}

/* SIGKILL for the sandbox processes of pod_id (or, with pod_id NULL, of
 * every pod without a record) and a wait until they are gone. */
static unsigned kill_sandboxes(struct cri_pods *p, const char *pod_id)
{
  struct sbx_proc *v = NULL;
  size_t n = our_sandboxes(p, &v);
  unsigned killed = 0;
  for (size_t i = 0; i < n; i++) {
    struct cri_pod *rec = NULL;
    bool mine = pod_id ? strcmp(v[i].pod_id, pod_id) == 0
                       : cri_state_get_pod(p->st, v[i].pod_id, &rec) < 0;
    cri_pod_free(rec);
    if (!mine) {
      v[i].pid = 0;
      continue;
    }
    if (kill(v[i].pid, SIGKILL) == 0) {
      q_warn(v[i].pod_id, "killed leftover sandbox process %d", (int)v[i].pid);
      killed++;
    }
  }
  for (int waited = 0; waited < LEFTOVER_KILL_WAIT_MS; waited += 10) {
    bool all = true;
    for (size_t i = 0; i < n && all; i++)
      all = !v[i].pid || proc_gone(v[i].pid);
    if (all)
      break;
    struct timespec ts = {0, 10 * 1000000};
    nanosleep(&ts, NULL);
  }
  free(v);
  return killed;
}

/* ---- mounts ---- */

static int cmp_len_desc(const void *a, const void *b)
{
  size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
  return la < lb ? 1 : la > lb ? -1 : 0;
}

/* Unmounts (detached) everything mounted at or below dir, deepest first. */
static unsigned unmount_under(const char *dir)
{
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f)
    return 0;
  size_t dl = strlen(dir), n = 0, cap = 0;
  char **v = NULL, line[4096];
  while (fgets(line, sizeof line, f)) {
    /* id parent major:minor root mountpoint ... */
    char *save = NULL, *tok = strtok_r(line, " ", &save);
    for (int i = 0; tok && i < 4; i++)
      tok = strtok_r(NULL, " ", &save);
    if (!tok || strncmp(tok, dir, dl) != 0 || (tok[dl] != '/' && tok[dl] != '\0'))
      continue;
    if (strchr(tok, '\\')) /* escaped (spaces...): never one of ours */
      continue;
    if (n == cap) {
      char **nv = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*nv));
      if (!nv)
        break;
      v = nv;
    }
    if (!(v[n] = strdup(tok)))
      break;
    n++;
  }
  fclose(f);
  if (n > 1)
    qsort(v, n, sizeof(*v), cmp_len_desc);
  unsigned done = 0;
  for (size_t i = 0; i < n; i++) {
    if (umount2(v[i], MNT_DETACH) == 0) {
      q_warn(NULL, "unmounted leftover %s", v[i]);
      done++;
    }
    free(v[i]);
  }
  free(v);
  return done;
}

/* A leftover directory of ours: its mounts, then the tree. */
static void remove_dir(struct recon_counts *k, const char *path)
{
  k->mounts_removed += unmount_under(path);
  q_cleanup_error q_error *err = NULL;
  if (q_rm_rf(path, &err) < 0)
    q_warn(NULL, "leftover %s: %s", path, q_error_msg(err));
  else
    k->dirs_removed++;
}

/* Temp files of atomic CNI cache writes that a kill cut short
 * (<cache>/results/<network>-<pod id>-<ifname>.tmp.<pid>): this pod's only
 * (the cache dir may be shared with other runtimes). */
static void remove_cache_temps(struct cri_pods *p, const char *pod_id)
{
  char *dir = NULL, key[70];
  if (asprintf(&dir, "%s/results", net_cni_cache_dir(p->cni)) < 0)
    return;
  snprintf(key, sizeof key, "-%s-", pod_id);
  DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d)))
    if (strstr(de->d_name, key) && strstr(de->d_name, ".tmp.") &&
        unlinkat(dirfd(d), de->d_name, 0) == 0)
      q_warn(pod_id, "removed a CNI cache temp file a restart left: %s", de->d_name);
  if (d)
    closedir(d);
  free(dir);
}

/* ---- teardown shared with RemovePodSandbox ---- */

int cri_pods_teardown(struct cri_pods *p, struct cri_pod_entry *e, const struct cri_pod *pod,
                      const char **step, q_error **err)
{
  int rc = 0;
  *step = "remove containers";
  struct cri_ctr_filter f = {.pod_id = pod->id};
  struct cri_ctr **v = NULL;
  size_t n = 0;
  if ((rc = cri_state_list_ctrs(p->st, &f, &v, &n)) < 0)
    return q_error_make(err, -rc, "list containers");
  for (size_t i = 0; i < n && rc >= 0; i++)
    if (!strcmp(v[i]->pod_id, pod->id))
      rc = cri_pods_remove_ctr(p, e, NULL, v[i]->id, err);
  cri_ctr_list_free(v, n);
  if (rc < 0)
    return rc;
  *step = "remove pod network";
  const char *mode = ext_str(pod->ext, POD_EXT_NETMODE), *netns = ext_str(pod->ext, POD_EXT_NETNS);
  char derived[64];
  if (!mode) {
    /* Killed inside RunPodSandbox before the network was recorded: the
     * namespace has the pod's name, and CNI ADD can only have begun once it
     * was pinned (without a CNI config or cache, DEL runs nothing). A kill
     * between the pin file and its mount leaves a plain file. */
    cri_pods_netns_path(pod->id, derived);
    bool pinned = net_netns_is_pinned(derived);
    netns = pinned || access(derived, F_OK) == 0 ? derived : NULL;
    mode = pinned ? "cni" : "loopback";
  }
  if (!strcmp(mode, "cni")) {
    net_pod np = {.id = pod->id,
                  .name = pod->name,
                  .namespace = pod->ns,
                  .uid = pod->uid,
                  .netns_path = netns};
    if ((rc = net_pod_teardown(p->cni, &np, err)) < 0)
      return rc;
  } else if (netns && (rc = net_netns_remove(netns, err)) < 0) {
    return rc;
  }
  remove_cache_temps(p, pod->id);
  *step = "remove pod files";
  const char *run_dir = ext_str(pod->ext, POD_EXT_RUNDIR);
  if (run_dir) {
    unmount_under(run_dir);
    if ((rc = q_rm_rf(run_dir, err)) < 0)
      return rc;
  }
  *step = "remove pod cgroup";
  if ((rc = cri_pod_cgroup_remove(pod, err)) < 0)
    return rc;
  *step = "remove pod record";
  return cri_state_remove_pod(p->st, pod->id, err);
}

/* ---- recovery ---- */

static int set_removing(struct cri_pod *pod, void *arg)
{
  (void)arg;
  if (ext_true(pod->ext, POD_EXT_REMOVING))
    return -EALREADY;
  return json_object_set_new(pod->ext, POD_EXT_REMOVING, json_true()) < 0 ? -ENOMEM : 0;
}

int cri_pods_mark_removing(struct cri_pods *p, const char *pod_id, q_error **err)
{
  /* Staged (renamed, not synced): it must survive a kill -9, and a power
   * loss takes the sandbox, run dir and netns anyway. */
  int rc = cri_state_stage_pod(p->st, pod_id, set_removing, NULL, err);
  if (rc == -EALREADY || rc == -ENOENT) {
    if (err)
      q_error_free(err);
    return 0;
  }
  return rc;
}

static int set_ctr_removing(struct cri_ctr *c, void *arg)
{
  (void)arg;
  if (ext_true(c->ext, CTR_EXT_REMOVING))
    return -EALREADY;
  return json_object_set_new(c->ext, CTR_EXT_REMOVING, json_true()) < 0 ? -ENOMEM : 0;
}

int cri_pods_mark_ctr_removing(struct cri_pods *p, const struct cri_ctr *ctr, q_error **err)
{
  if (ext_true(ctr->ext, CTR_EXT_REMOVING))
    return 0;
  int rc = cri_state_update_ctr(p->st, ctr->id, set_ctr_removing, NULL, err);
  if (rc == -EALREADY || rc == -ENOENT) {
    if (err)
      q_error_free(err);
    return 0;
  }
  return rc;
}

/* A pod that never became READY or whose removal was cut short: stop what
 * may run, then tear everything down. */
static void finish_pod(struct cri_pods *p, struct recon_counts *k, const struct cri_pod *pod,
                       bool removing)
{
  struct cri_pod_entry *e = cri_pods_get(p, pod->id);
  if (!e)
    return;
  const char *sock = ext_str(pod->ext, POD_EXT_SOCKET), *run_dir = ext_str(pod->ext, POD_EXT_RUNDIR);
  char *derived = NULL;
  if (!sock && run_dir && asprintf(&derived, "%s/sandbox.sock", run_dir) > 0)
    sock = derived;
  struct sbx_client *c = NULL;
  if (sock && access(sock, F_OK) == 0 && sbx_client_connect(sock, &c, NULL) == 0) {
    q_cleanup_error q_error *err = NULL;
    if (sbx_client_stop(c, 0, &err) < 0)
      q_warn(pod->id, "leftover sandbox stop: %s", q_error_msg(err));
    sbx_client_close(c);
  }
  free(derived);
  k->procs_killed += kill_sandboxes(p, pod->id);
  q_cleanup_error q_error *err = NULL;
  const char *step = "";
  bool pending = json_object_get(pod->ext, POD_EXT_NETPENDING) != NULL;
  if (cri_pods_teardown(p, e, pod, &step, &err) < 0) {
    q_warn(pod->id, "%s: %s: %s", removing ? "finish removal" : "roll back", step,
           q_error_msg(err));
  } else {
    q_info(pod->id, "%s",
           removing  ? "finished a RemovePodSandbox cut short by a restart"
           : pending ? "finished the network teardown a failed RunPodSandbox left pending"
                     : "rolled back a RunPodSandbox cut short by a restart");
    if (removing)
      k->pods_removed++;
    else
      k->pods_rolled_back++;
    cri_pods_forget(p, e);
  }
  cri_pods_put(p, e);
}

static int set_started(struct cri_ctr *c, void *arg)
{
  const struct sbx_container_status *s = arg;
  if (c->state != CRI_CTR_CREATED)
    return -EALREADY;
  c->state = CRI_CTR_RUNNING;
  c->started_at = s->started_at ? s->started_at : q_now_ns();
  return 0;
}

/* The containers of a pod that stays: roll back unfinished creates, finish
 * unfinished removals, record starts the sandbox did but the store missed. */
static void reconcile_ctrs(struct cri_pods *p, struct recon_counts *k, const struct cri_pod *pod)
{
  struct cri_pod_entry *e = cri_pods_get(p, pod->id);
  if (!e)
    return;
  struct cri_ctr_filter f = {.pod_id = pod->id};
  struct cri_ctr **v = NULL;
  size_t n = 0;
  if (cri_state_list_ctrs(p->st, &f, &v, &n) < 0) {
    cri_pods_put(p, e);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    struct cri_ctr *ctr = v[i];
    if (strcmp(ctr->pod_id, pod->id))
      continue;
    bool removing = ext_true(ctr->ext, CTR_EXT_REMOVING);
    /* Argv is written by CreateContainer's last step; a container that
     * ran or exited finished its creation whatever its record holds. */
    bool created = ctr->state != CRI_CTR_CREATED || json_object_get(ctr->ext, CTR_EXT_ARGV);
    q_cleanup_error q_error *err = NULL;
    if (removing || !created) {
      if (cri_pods_remove_ctr(p, e, pod, ctr->id, &err) < 0) {
        q_warn(ctr->id, "%s: %s", removing ? "finish removal" : "roll back", q_error_msg(err));
      } else {
        q_info(ctr->id, "%s", removing ? "finished a RemoveContainer cut short by a restart"
                                       : "rolled back a CreateContainer cut short by a restart");
        if (removing)
          k->ctrs_removed++;
        else
          k->ctrs_rolled_back++;
      }
      continue;
    }
    if (ctr->state != CRI_CTR_CREATED || pod->state != CRI_POD_READY)
      continue;
    int rc = 0;
    struct sbx_client *c = cri_pods_sbx(p, e, pod, &rc, NULL);
    struct sbx_container_status s = {0};
    if (!c || sbx_container_status(c, ctr->id, &s, NULL) < 0 || s.state == SBX_PROC_CREATED)
      continue;
    if (cri_state_update_ctr(p->st, ctr->id, set_started, &s, NULL) == 0) {
      k->ctrs_completed++;
      q_info(ctr->id, "recorded a StartContainer cut short by a restart");
      cri_pods_refresh_ctr(p, ctr->id); /* records an exit that came since */
    }
  }
  cri_ctr_list_free(v, n);
  cri_pods_put(p, e);
}

/* A CNI pod that is NOTREADY may still hold its attachment (StopPodSandbox
 * cut short after the sandbox stopped): DEL again when one is cached. */
static void redo_cni_del(struct cri_pods *p, struct recon_counts *k, const struct cri_pod *pod)
{
  const char *mode = ext_str(pod->ext, POD_EXT_NETMODE);
  net_pod_network *cached = NULL;
  if (!mode || strcmp(mode, "cni") || net_pod_cached(p->cni, pod->id, &cached, NULL) < 0)
    return;
  net_pod_network_free(cached);
  net_pod np = {.id = pod->id,
                .name = pod->name,
                .namespace = pod->ns,
                .uid = pod->uid,
                .netns_path = ext_str(pod->ext, POD_EXT_NETNS)};
  q_cleanup_error q_error *err = NULL;
  if (net_pod_detach(p->cni, &np, &err) < 0)
    q_warn(pod->id, "CNI DEL of a stopped pod: %s", q_error_msg(err));
  else
    k->pods_cni_del++;
}

static bool has_pod(struct cri_pod **v, size_t n, const char *name32)
{
  for (size_t i = 0; i < n; i++)
    if (!strncmp(v[i]->id, name32, 32))
      return true;
  return false;
}

static bool is_hex(const char *s, size_t n)
{
  size_t i = 0;
  for (; i < n && s[i]; i++)
    if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
      return false;
  return i == n && s[i] == '\0';
}

static bool ctr_known(const char *cid, void *arg)
{
  struct cri_pods *p = arg;
  struct cri_ctr *c = NULL;
  bool known = cri_state_get_ctr(p->st, cid, &c) == 0;
  cri_ctr_free(c);
  return known;
}

/* Directories and mounts of this run root that no record names. */
static void sweep_dirs(struct cri_pods *p, struct recon_counts *k)
{
  struct cri_pod **pods = NULL;
  size_t n = 0;
  if (cri_state_list_pods(p->st, NULL, &pods, &n) < 0)
    return;
  DIR *d = opendir(p->run_root);
  struct dirent *de;
  while (d && (de = readdir(d))) {
    if (de->d_name[0] == '.')
      continue;
    char *path = NULL;
    if (asprintf(&path, "%s/%s", p->run_root, de->d_name) < 0)
      continue;
    if (!has_pod(pods, n, de->d_name)) {
      remove_dir(k, path);
    } else {
      /* Container dirs (64 hex) of a pod that stays, without a record. */
      DIR *cd = opendir(path);
      struct dirent *ce;
      while (cd && (ce = readdir(cd))) {
        if (!is_hex(ce->d_name, 64) || ctr_known(ce->d_name, p))
          continue;
        char *cpath = NULL;
        if (asprintf(&cpath, "%s/%s", path, ce->d_name) > 0) {
          remove_dir(k, cpath);
          free(cpath);
        }
      }
      if (cd)
        closedir(cd);
    }
    free(path);
  }
  if (d)
    closedir(d);
  cri_pod_list_free(pods, n);
  int r = img_rootfs_sweep(p->img, p->run_root, ctr_known, p, NULL);
  if (r > 0)
    k->rootfs_removed += (unsigned)r;
}

void cri_pods_recover(struct cri_pods *p)
{
  struct recon_counts k = {0};
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  struct cri_pod **pods = NULL;
  size_t n = 0;
  if (cri_state_list_pods(p->st, NULL, &pods, &n) < 0)
    return;
  for (size_t i = 0; i < n; i++) {
    struct cri_pod *pod = pods[i];
    bool removing = ext_true(pod->ext, POD_EXT_REMOVING);
    if (removing || !json_object_get(pod->ext, POD_EXT_SOCKET)) {
      finish_pod(p, &k, pod, removing);
      continue;
    }
    if (pod->state == CRI_POD_READY) {
      struct cri_pod_entry *e = cri_pods_get(p, pod->id);
      if (!e)
        continue;
      q_cleanup_error q_error *err = NULL;
      int rc = 0;
      if (cri_pods_sbx(p, e, pod, &rc, &err)) {
        q_info(pod->id, "reattached to sandbox");
        k.pods_reattached++;
      } else {
        cri_pods_mark_gone(p, pod->id, q_error_msg(err));
        k.pods_gone++;
        struct cri_pod *now = NULL;
        if (cri_state_get_pod(p->st, pod->id, &now) == 0) {
          cri_pod_free(pods[i]);
          pod = pods[i] = now;
        }
      }
      cri_pods_put(p, e);
    } else {
      redo_cni_del(p, &k, pod);
    }
    reconcile_ctrs(p, &k, pod);
  }
  cri_pod_list_free(pods, n);
  /* Containers whose pod record is gone (a RemovePodSandbox of an older
   * quarkd that removed the pod record last would not leave these; kept for
   * stores written before the Removing mark). */
  struct cri_ctr **ctrs = NULL;
  size_t nc = 0;
  if (cri_state_list_ctrs(p->st, NULL, &ctrs, &nc) == 0) {
    for (size_t i = 0; i < nc; i++) {
      struct cri_pod *pod = NULL;
      if (cri_state_get_pod(p->st, ctrs[i]->pod_id, &pod) == 0) {
        cri_pod_free(pod);
        continue;
      }
      q_cleanup_error q_error *err = NULL;
      if (cri_pods_remove_ctr(p, NULL, NULL, ctrs[i]->id, &err) < 0)
        q_warn(ctrs[i]->id, "orphaned container: %s", q_error_msg(err));
      else
        k.ctrs_removed++;
    }
    cri_ctr_list_free(ctrs, nc);
  }
  k.procs_killed += kill_sandboxes(p, NULL);
  sweep_dirs(p, &k);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  q_info(NULL,
         "recovery: %zu pods: %u reattached, %u sandbox gone, %u half-created rolled back, "
         "%u removals finished, %u CNI DEL redone; containers: %u creates rolled back, "
         "%u removals finished, %u starts recorded; leftovers: %u sandbox processes killed, "
         "%u dirs, %u mounts, %u root filesystems removed (%.1f ms)",
         n, k.pods_reattached, k.pods_gone, k.pods_rolled_back, k.pods_removed, k.pods_cni_del,
         k.ctrs_rolled_back, k.ctrs_removed, k.ctrs_completed, k.procs_killed, k.dirs_removed,
         k.mounts_removed, k.rootfs_removed,
         (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
}
