/* State store: in-memory tables behind one mutex, each record mirrored in
 * its own JSON file. The tables are small (a node runs at most a few hundred
 * pods), so linear scans keep the code obvious. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>

#include "state.h"

struct cri_state {
  pthread_mutex_t lock;
  char *root, *pods_dir, *ctrs_dir, *runtime_path;
  struct cri_pod **pods;
  size_t n_pods, cap_pods;
  struct cri_ctr **ctrs;
  size_t n_ctrs, cap_ctrs;
  char *pod_cidr;
};

/* ---- small helpers ---- */

static char *dup_or_null(const char *s)
{
  return s ? strdup(s) : NULL;
}

/* strdup that treats NULL as "" so that every string field is non-NULL. */
static int dup_field(char **dst, const char *s)
{
  *dst = strdup(s ? s : "");
  return *dst ? 0 : -ENOMEM;
}

bool cri_state_valid_id(const char *id)
{
  if (!id || strlen(id) != 64)
    return false;
  for (int i = 0; i < 64; i++)
    if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
      return false;
  return true;
}

void cri_kvs_clear(struct cri_kvs *kvs)
{
  for (size_t i = 0; i < kvs->n; i++) {
    free(kvs->v[i].key);
    free(kvs->v[i].value);
  }
  free(kvs->v);
  kvs->v = NULL;
  kvs->n = 0;
}

const char *cri_kvs_get(const struct cri_kvs *kvs, const char *key)
{
  for (size_t i = 0; i < kvs->n; i++)
    if (strcmp(kvs->v[i].key, key) == 0)
      return kvs->v[i].value;
  return NULL;
}

int cri_kvs_set(struct cri_kvs *kvs, const char *key, const char *value)
{
  char *v = strdup(value);
  if (!v)
    return -ENOMEM;
  for (size_t i = 0; i < kvs->n; i++)
    if (strcmp(kvs->v[i].key, key) == 0) {
      free(kvs->v[i].value);
      kvs->v[i].value = v;
      return 0;
    }
  char *k = strdup(key);
  struct cri_kv *nv = k ? realloc(kvs->v, (kvs->n + 1) * sizeof(*nv)) : NULL;
  if (!nv) {
    free(k);
    free(v);
    return -ENOMEM;
  }
  nv[kvs->n].key = k;
  nv[kvs->n].value = v;
  kvs->v = nv;
  kvs->n++;
  return 0;
}

static int kvs_copy(struct cri_kvs *dst, const struct cri_kvs *src)
{
  dst->v = NULL;
  dst->n = 0;
  for (size_t i = 0; i < src->n; i++)
    if (cri_kvs_set(dst, src->v[i].key, src->v[i].value) < 0) {
      cri_kvs_clear(dst);
      return -ENOMEM;
    }
  return 0;
}

static bool kvs_match(const struct cri_kvs *have, const struct cri_kvs *want)
{
  if (!want)
    return true;
  for (size_t i = 0; i < want->n; i++) {
    const char *v = cri_kvs_get(have, want->v[i].key);
    if (!v || strcmp(v, want->v[i].value) != 0)
      return false;
  }
  return true;
}

static bool prefix_match(const char *id, const char *prefix)
{
  return !prefix || !*prefix || strncmp(id, prefix, strlen(prefix)) == 0;
}

void cri_pod_free(struct cri_pod *p)
{
  if (!p)
    return;
  free(p->name);
  free(p->uid);
  free(p->ns);
  cri_kvs_clear(&p->labels);
  cri_kvs_clear(&p->annotations);
  free(p->runtime_handler);
  free(p->hostname);
  free(p->log_directory);
  json_decref(p->ext);
  free(p);
}

void cri_ctr_free(struct cri_ctr *c)
{
  if (!c)
    return;
  free(c->name);
  free(c->image);
  free(c->image_ref);
  free(c->image_id);
  free(c->reason);
  free(c->message);
  free(c->log_path);
  cri_kvs_clear(&c->labels);
  cri_kvs_clear(&c->annotations);
  json_decref(c->ext);
  free(c);
}

void cri_pod_list_free(struct cri_pod **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    cri_pod_free(v[i]);
  free(v);
}

void cri_ctr_list_free(struct cri_ctr **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    cri_ctr_free(v[i]);
  free(v);
}

static struct cri_pod *pod_copy(const struct cri_pod *s)
{
  struct cri_pod *d = calloc(1, sizeof(*d));
  if (!d)
    return NULL;
  memcpy(d->id, s->id, sizeof(d->id));
  d->attempt = s->attempt;
  d->state = s->state;
  d->created_at = s->created_at;
  d->ext = s->ext ? json_deep_copy(s->ext) : json_object();
  if (dup_field(&d->name, s->name) || dup_field(&d->uid, s->uid) || dup_field(&d->ns, s->ns) ||
      dup_field(&d->runtime_handler, s->runtime_handler) || dup_field(&d->hostname, s->hostname) ||
      dup_field(&d->log_directory, s->log_directory) || kvs_copy(&d->labels, &s->labels) ||
      kvs_copy(&d->annotations, &s->annotations) || !d->ext) {
    cri_pod_free(d);
    return NULL;
  }
  return d;
}

static struct cri_ctr *ctr_copy(const struct cri_ctr *s)
{
  struct cri_ctr *d = calloc(1, sizeof(*d));
  if (!d)
    return NULL;
  memcpy(d->id, s->id, sizeof(d->id));
  memcpy(d->pod_id, s->pod_id, sizeof(d->pod_id));
  d->attempt = s->attempt;
  d->state = s->state;
  d->created_at = s->created_at;
  d->started_at = s->started_at;
  d->finished_at = s->finished_at;
  d->exit_code = s->exit_code;
  d->ext = s->ext ? json_deep_copy(s->ext) : json_object();
  if (dup_field(&d->name, s->name) || dup_field(&d->image, s->image) ||
      dup_field(&d->image_ref, s->image_ref) || dup_field(&d->image_id, s->image_id) ||
      dup_field(&d->reason, s->reason) || dup_field(&d->message, s->message) ||
      dup_field(&d->log_path, s->log_path) || kvs_copy(&d->labels, &s->labels) ||
      kvs_copy(&d->annotations, &s->annotations) || !d->ext) {
    cri_ctr_free(d);
    return NULL;
  }
  return d;
}

/* ---- JSON (de)serialization ---- */

static json_t *kvs_to_json(const struct cri_kvs *kvs)
{
  json_t *o = json_object();
  for (size_t i = 0; o && i < kvs->n; i++)
    json_object_set_new(o, kvs->v[i].key, json_string(kvs->v[i].value));
  return o;
}

static int kvs_from_json(struct cri_kvs *kvs, json_t *o)
{
  const char *k;
  json_t *v;
  if (!o)
    return 0;
  if (!json_is_object(o))
    return -EINVAL;
  json_object_foreach(o, k, v)
  {
    if (!json_is_string(v))
      return -EINVAL;
    if (cri_kvs_set(kvs, k, json_string_value(v)) < 0)
      return -ENOMEM;
  }
  return 0;
}

static int str_from_json(char **dst, json_t *o, const char *key)
{
  json_t *v = json_object_get(o, key);
  if (v && !json_is_string(v))
    return -EINVAL;
  return dup_field(dst, v ? json_string_value(v) : "");
}

static int64_t int_from_json(json_t *o, const char *key)
{
  json_t *v = json_object_get(o, key);
  return json_is_integer(v) ? json_integer_value(v) : 0;
}

static json_t *pod_to_json(const struct cri_pod *p)
{
  return json_pack("{s:i,s:s,s:s,s:s,s:s,s:I,s:i,s:I,s:o,s:o,s:s,s:s,s:s,s:O}", "Version", 1, "Id",
                   p->id, "Name", p->name, "Uid", p->uid, "Namespace", p->ns, "Attempt",
                   (json_int_t)p->attempt, "State", (int)p->state, "CreatedAt",
                   (json_int_t)p->created_at, "Labels", kvs_to_json(&p->labels), "Annotations",
                   kvs_to_json(&p->annotations), "RuntimeHandler", p->runtime_handler, "Hostname",
                   p->hostname, "LogDirectory", p->log_directory, "Ext", p->ext);
}

static struct cri_pod *pod_from_json(json_t *o)
{
  struct cri_pod *p = calloc(1, sizeof(*p));
  json_t *id = json_object_get(o, "Id");
  if (!p)
    return NULL;
  if (!json_is_string(id) || !cri_state_valid_id(json_string_value(id)))
    goto fail;
  strcpy(p->id, json_string_value(id));
  p->attempt = (uint32_t)int_from_json(o, "Attempt");
  p->state = int_from_json(o, "State") == CRI_POD_READY ? CRI_POD_READY : CRI_POD_NOTREADY;
  p->created_at = int_from_json(o, "CreatedAt");
  json_t *ext = json_object_get(o, "Ext");
  p->ext = json_is_object(ext) ? json_incref(ext) : json_object();
  if (str_from_json(&p->name, o, "Name") || str_from_json(&p->uid, o, "Uid") ||
      str_from_json(&p->ns, o, "Namespace") ||
      str_from_json(&p->runtime_handler, o, "RuntimeHandler") ||
      str_from_json(&p->hostname, o, "Hostname") ||
      str_from_json(&p->log_directory, o, "LogDirectory") ||
      kvs_from_json(&p->labels, json_object_get(o, "Labels")) ||
      kvs_from_json(&p->annotations, json_object_get(o, "Annotations")) || !p->ext)
    goto fail;
  return p;
fail:
  cri_pod_free(p);
  return NULL;
}

static json_t *ctr_to_json(const struct cri_ctr *c)
{
  json_t *o = json_pack("{s:i,s:s,s:s,s:s,s:I,s:i,s:I,s:I,s:I,s:i,s:s,s:s,s:s}", "Version", 1, "Id",
                        c->id, "PodId", c->pod_id, "Name", c->name, "Attempt",
                        (json_int_t)c->attempt, "State", (int)c->state, "CreatedAt",
                        (json_int_t)c->created_at, "StartedAt", (json_int_t)c->started_at,
                        "FinishedAt", (json_int_t)c->finished_at, "ExitCode", (int)c->exit_code,
                        "Image", c->image, "ImageRef", c->image_ref, "ImageId", c->image_id);
  /* json_pack takes at most a handful of pairs comfortably; the rest go in
   * a second object merged into the first. */
  json_t *rest = json_pack("{s:s,s:s,s:s,s:o,s:o,s:O}", "Reason", c->reason, "Message", c->message,
                           "LogPath", c->log_path, "Labels", kvs_to_json(&c->labels), "Annotations",
                           kvs_to_json(&c->annotations), "Ext", c->ext);
  if (!o || !rest || json_object_update(o, rest) < 0) {
    json_decref(o);
    o = NULL;
  }
  json_decref(rest);
  return o;
}

static struct cri_ctr *ctr_from_json(json_t *o)
{
  struct cri_ctr *c = calloc(1, sizeof(*c));
  json_t *id = json_object_get(o, "Id"), *pod = json_object_get(o, "PodId");
  if (!c)
    return NULL;
  if (!json_is_string(id) || !cri_state_valid_id(json_string_value(id)) || !json_is_string(pod) ||
      !cri_state_valid_id(json_string_value(pod)))
    goto fail;
  strcpy(c->id, json_string_value(id));
  strcpy(c->pod_id, json_string_value(pod));
  c->attempt = (uint32_t)int_from_json(o, "Attempt");
  int64_t s = int_from_json(o, "State");
  c->state =
      (s >= CRI_CTR_CREATED && s <= CRI_CTR_UNKNOWN) ? (enum cri_ctr_state)s : CRI_CTR_UNKNOWN;
  c->created_at = int_from_json(o, "CreatedAt");
  c->started_at = int_from_json(o, "StartedAt");
  c->finished_at = int_from_json(o, "FinishedAt");
  c->exit_code = (int32_t)int_from_json(o, "ExitCode");
  json_t *ext = json_object_get(o, "Ext");
  c->ext = json_is_object(ext) ? json_incref(ext) : json_object();
  if (str_from_json(&c->name, o, "Name") || str_from_json(&c->image, o, "Image") ||
      str_from_json(&c->image_ref, o, "ImageRef") || str_from_json(&c->image_id, o, "ImageId") ||
      str_from_json(&c->reason, o, "Reason") || str_from_json(&c->message, o, "Message") ||
      str_from_json(&c->log_path, o, "LogPath") ||
      kvs_from_json(&c->labels, json_object_get(o, "Labels")) ||
      kvs_from_json(&c->annotations, json_object_get(o, "Annotations")) || !c->ext)
    goto fail;
  return c;
fail:
  cri_ctr_free(c);
  return NULL;
}

/* Durability (ARCHITECTURE.md "State store"): a record is durable (file
 * fsync, rename, directory fsync) when the client hears of it, i.e. at
 * every update; new records (add) and staged updates are written and
 * renamed without fsync: they survive a kill -9 of quarkd (the page cache
 * is the kernel's) but maybe not a power loss, after which what they guard
 * (the sandbox processes, /run's namespaces and mounts) is gone as well,
 * and a torn file is skipped as malformed at load. Each RPC thus pays one
 * file and one directory fsync, not one pair per intermediate step. */
static int write_json(const char *path, json_t *o, bool durable, q_error **err)
{
  if (!o)
    return q_error_make(err, ENOMEM, "serialize %s", path);
  char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(o);
  if (!text)
    return q_error_make(err, ENOMEM, "serialize %s", path);
  int r = durable ? q_write_file_atomic(path, text, strlen(text), 0600, err)
                  : q_write_file_replace(path, text, strlen(text), 0600, err);
  free(text);
  return r;
}

static char *record_path(const char *dir, const char *id)
{
  char *p = NULL;
  return asprintf(&p, "%s/%s.json", dir, id) < 0 ? NULL : p;
}

static int persist_pod(struct cri_state *st, const struct cri_pod *p, bool durable, q_error **err)
{
  q_cleanup_free char *path = record_path(st->pods_dir, p->id);
  if (!path)
    return q_error_make(err, ENOMEM, "pod %s", p->id);
  return write_json(path, pod_to_json(p), durable, err);
}

static int persist_ctr(struct cri_state *st, const struct cri_ctr *c, bool durable, q_error **err)
{
  q_cleanup_free char *path = record_path(st->ctrs_dir, c->id);
  if (!path)
    return q_error_make(err, ENOMEM, "container %s", c->id);
  return write_json(path, ctr_to_json(c), durable, err);
}

/* ---- loading ---- */

static int push(void ***v, size_t *n, size_t *cap, void *item)
{
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 16;
    void **nv = realloc(*v, nc * sizeof(void *));
    if (!nv)
      return -ENOMEM;
    *v = nv;
    *cap = nc;
  }
  (*v)[(*n)++] = item;
  return 0;
}

/* Loads every "<id>.json" in dir through load_one; removes temp files left
 * by a crash between create and rename. */
static int load_dir(struct cri_state *st, const char *dir, bool pods, q_error **err)
{
  DIR *d = opendir(dir);
  if (!d)
    return q_error_make(err, errno, "open %s", dir);
  struct dirent *de;
  int r = 0;
  while (r == 0 && (de = readdir(d))) {
    const char *name = de->d_name;
    if (name[0] == '.')
      continue;
    q_cleanup_free char *path = NULL;
    if (asprintf(&path, "%s/%s", dir, name) < 0) {
      r = q_error_make(err, ENOMEM, "%s", dir);
      break;
    }
    if (strstr(name, ".tmp.")) {
      q_info(NULL, "state: removing leftover temp file %s", path);
      unlinkat(dirfd(d), name, 0);
      continue;
    }
    char id[65];
    size_t len = strlen(name);
    if (len != 69 || strcmp(name + 64, ".json") != 0) {
      q_warn(NULL, "state: ignoring unexpected file %s", path);
      continue;
    }
    memcpy(id, name, 64);
    id[64] = '\0';
    if (!cri_state_valid_id(id)) {
      q_warn(NULL, "state: ignoring unexpected file %s", path);
      continue;
    }
    q_cleanup_free char *text = NULL;
    size_t tlen;
    q_cleanup_error q_error *rerr = NULL;
    if (q_read_file(path, 4 << 20, &text, &tlen, &rerr) < 0) {
      q_warn(id, "state: skipping unreadable record: %s", q_error_msg(rerr));
      continue;
    }
    json_error_t jerr;
    json_t *o = json_loadb(text, tlen, 0, &jerr);
    void *rec = NULL;
    if (o && json_is_object(o))
      rec = pods ? (void *)pod_from_json(o) : (void *)ctr_from_json(o);
    json_decref(o);
    if (!rec || strcmp(pods ? ((struct cri_pod *)rec)->id : ((struct cri_ctr *)rec)->id, id)) {
      q_warn(id, "state: skipping malformed record %s", path);
      if (rec)
        pods ? cri_pod_free(rec) : cri_ctr_free(rec);
      continue;
    }
    if (pods)
      r = push((void ***)&st->pods, &st->n_pods, &st->cap_pods, rec);
    else
      r = push((void ***)&st->ctrs, &st->n_ctrs, &st->cap_ctrs, rec);
    if (r < 0) {
      pods ? cri_pod_free(rec) : cri_ctr_free(rec);
      r = q_error_make(err, ENOMEM, "load %s", path);
    }
  }
  closedir(d);
  return r;
}

static void runtime_load(struct cri_state *st)
{
  q_cleanup_free char *text = NULL;
  size_t len;
  if (q_read_file(st->runtime_path, 1 << 20, &text, &len, NULL) < 0)
    return;
  json_t *o = json_loadb(text, len, 0, NULL);
  json_t *cidr = json_object_get(o, "PodCidr");
  if (json_is_string(cidr)) {
    free(st->pod_cidr);
    st->pod_cidr = strdup(json_string_value(cidr));
  }
  json_decref(o);
}

int cri_state_open(const char *root, struct cri_state **out, q_error **err)
{
  struct cri_state *st = calloc(1, sizeof(*st));
  if (!st)
    return q_error_make(err, ENOMEM, "state store");
  pthread_mutex_init(&st->lock, NULL);
  int r = 0;
  st->root = strdup(root);
  if (!st->root || asprintf(&st->pods_dir, "%s/pods", root) < 0 ||
      asprintf(&st->ctrs_dir, "%s/containers", root) < 0 ||
      asprintf(&st->runtime_path, "%s/runtime.json", root) < 0 || !(st->pod_cidr = strdup(""))) {
    r = q_error_make(err, ENOMEM, "state store");
    goto fail;
  }
  if ((r = q_mkdir_p(st->pods_dir, 0700, err)) < 0 || (r = q_mkdir_p(st->ctrs_dir, 0700, err)) < 0)
    goto fail;
  /* runtime.json's own temp file lives in root. */
  DIR *d = opendir(root);
  if (d) {
    struct dirent *de;
    while ((de = readdir(d)))
      if (strncmp(de->d_name, "runtime.json.tmp.", 17) == 0)
        unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
  }
  if ((r = load_dir(st, st->pods_dir, true, err)) < 0 ||
      (r = load_dir(st, st->ctrs_dir, false, err)) < 0)
    goto fail;
  runtime_load(st);
  *out = st;
  return 0;
fail:
  q_error_wrap(err, "state store %s", root);
  cri_state_close(st);
  return r;
}

void cri_state_close(struct cri_state *st)
{
  if (!st)
    return;
  cri_pod_list_free(st->pods, st->n_pods);
  cri_ctr_list_free(st->ctrs, st->n_ctrs);
  free(st->root);
  free(st->pods_dir);
  free(st->ctrs_dir);
  free(st->runtime_path);
  free(st->pod_cidr);
  pthread_mutex_destroy(&st->lock);
  free(st);
}

const char *cri_state_root(const struct cri_state *st)
{
  return st->root;
}

/* ---- lookups (lock held) ---- */

static ssize_t find_pod(struct cri_state *st, const char *id)
{
  for (size_t i = 0; i < st->n_pods; i++)
    if (strcmp(st->pods[i]->id, id) == 0)
      return (ssize_t)i;
  return -1;
}

static ssize_t find_ctr(struct cri_state *st, const char *id)
{
  for (size_t i = 0; i < st->n_ctrs; i++)
    if (strcmp(st->ctrs[i]->id, id) == 0)
      return (ssize_t)i;
  return -1;
}

static int resolve(struct cri_state *st, bool pods, const char *prefix, char out[65])
{
  if (!prefix || !*prefix)
    return -ENOENT;
  int found = 0;
  pthread_mutex_lock(&st->lock);
  size_t n = pods ? st->n_pods : st->n_ctrs;
  for (size_t i = 0; i < n; i++) {
    const char *id = pods ? st->pods[i]->id : st->ctrs[i]->id;
    if (strcmp(id, prefix) == 0) {
      memcpy(out, id, 65);
      found = 1;
      break;
    }
    if (prefix_match(id, prefix)) {
      if (found++ == 0)
        memcpy(out, id, 65);
    }
  }
  pthread_mutex_unlock(&st->lock);
  return found == 0 ? -ENOENT : found > 1 ? -EEXIST : 0;
}

int cri_state_resolve_pod(struct cri_state *st, const char *p, char out[65])
{
  return resolve(st, true, p, out);
}

int cri_state_resolve_ctr(struct cri_state *st, const char *p, char out[65])
{
  return resolve(st, false, p, out);
}

/* ---- mutations ---- */

int cri_state_add_pod(struct cri_state *st, const struct cri_pod *pod, q_error **err)
{
  if (!cri_state_valid_id(pod->id))
    return q_error_make(err, EINVAL, "invalid pod id '%s'", pod->id);
  struct cri_pod *copy = pod_copy(pod);
  if (!copy)
    return q_error_make(err, ENOMEM, "pod %s", pod->id);
  pthread_mutex_lock(&st->lock);
  int r;
  if (find_pod(st, pod->id) >= 0)
    r = q_error_make(err, EEXIST, "pod %s already exists", pod->id);
  else if ((r = persist_pod(st, copy, false, err)) == 0 &&
           (r = push((void ***)&st->pods, &st->n_pods, &st->cap_pods, copy)) < 0)
    r = q_error_make(err, ENOMEM, "pod %s", pod->id);
  pthread_mutex_unlock(&st->lock);
  if (r < 0)
    cri_pod_free(copy);
  return r;
}

int cri_state_add_ctr(struct cri_state *st, const struct cri_ctr *ctr, q_error **err)
{
  if (!cri_state_valid_id(ctr->id) || !cri_state_valid_id(ctr->pod_id))
    return q_error_make(err, EINVAL, "invalid container id '%s' or pod id '%s'", ctr->id,
                        ctr->pod_id);
  struct cri_ctr *copy = ctr_copy(ctr);
  if (!copy)
    return q_error_make(err, ENOMEM, "container %s", ctr->id);
  pthread_mutex_lock(&st->lock);
  int r;
  if (find_ctr(st, ctr->id) >= 0)
    r = q_error_make(err, EEXIST, "container %s already exists", ctr->id);
  else if (find_pod(st, ctr->pod_id) < 0)
    r = q_error_make(err, ENOENT, "pod %s of container %s not found", ctr->pod_id, ctr->id);
  else if ((r = persist_ctr(st, copy, false, err)) == 0 &&
           (r = push((void ***)&st->ctrs, &st->n_ctrs, &st->cap_ctrs, copy)) < 0)
    r = q_error_make(err, ENOMEM, "container %s", ctr->id);
  pthread_mutex_unlock(&st->lock);
  if (r < 0)
    cri_ctr_free(copy);
  return r;
}

/* Update on a copy, persist, then swap: a failed write never leaves memory
 * and disk disagreeing. */
static int update_pod(struct cri_state *st, const char *id,
                      int (*fn)(struct cri_pod *pod, void *arg), void *arg, bool durable,
                      q_error **err)
{
  pthread_mutex_lock(&st->lock);
  int r = 0;
  ssize_t i = find_pod(st, id);
  struct cri_pod *copy = NULL;
  if (i < 0)
    r = q_error_make(err, ENOENT, "pod %s not found", id);
  else if (!(copy = pod_copy(st->pods[i])))
    r = q_error_make(err, ENOMEM, "pod %s", id);
  else if ((r = fn(copy, arg)) < 0)
    q_error_make(err, -r, "update pod %s", id);
  else if (strcmp(copy->id, id) != 0)
    r = q_error_make(err, EINVAL, "update pod %s: id changed", id);
  else if ((r = persist_pod(st, copy, durable, err)) == 0) {
    cri_pod_free(st->pods[i]);
    st->pods[i] = copy;
    copy = NULL;
  }
  pthread_mutex_unlock(&st->lock);
  cri_pod_free(copy);
  return r;
}

int cri_state_update_pod(struct cri_state *st, const char *id,
                         int (*fn)(struct cri_pod *pod, void *arg), void *arg, q_error **err)
{
  return update_pod(st, id, fn, arg, true, err);
}

int cri_state_stage_pod(struct cri_state *st, const char *id,
                        int (*fn)(struct cri_pod *pod, void *arg), void *arg, q_error **err)
{
  return update_pod(st, id, fn, arg, false, err);
}

int cri_state_update_ctr(struct cri_state *st, const char *id,
                         int (*fn)(struct cri_ctr *ctr, void *arg), void *arg, q_error **err)
{
  pthread_mutex_lock(&st->lock);
  int r = 0;
  ssize_t i = find_ctr(st, id);
  struct cri_ctr *copy = NULL;
  if (i < 0)
    r = q_error_make(err, ENOENT, "container %s not found", id);
  else if (!(copy = ctr_copy(st->ctrs[i])))
    r = q_error_make(err, ENOMEM, "container %s", id);
  else if ((r = fn(copy, arg)) < 0)
    q_error_make(err, -r, "update container %s", id);
  else if (strcmp(copy->id, id) != 0)
    r = q_error_make(err, EINVAL, "update container %s: id changed", id);
  else if ((r = persist_ctr(st, copy, true, err)) == 0) {
    cri_ctr_free(st->ctrs[i]);
    st->ctrs[i] = copy;
    copy = NULL;
  }
  pthread_mutex_unlock(&st->lock);
  cri_ctr_free(copy);
  return r;
}

static int remove_file(const char *dir, const char *id, q_error **err)
{
  q_cleanup_free char *path = record_path(dir, id);
  if (!path)
    return q_error_make(err, ENOMEM, "%s", id);
  if (unlink(path) < 0) {
    if (errno == ENOENT)
      return 0;
    return q_error_make(err, errno, "remove %s", path);
  }
  /* Make the removal durable like the writes: a record must not come back
   * after a crash once RemovePodSandbox has answered. */
  q_cleanup_close int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || fsync(dfd) < 0)
    return q_error_make(err, errno, "fsync %s", dir);
  return 0;
}

int cri_state_remove_pod(struct cri_state *st, const char *id, q_error **err)
{
  pthread_mutex_lock(&st->lock);
  ssize_t i = find_pod(st, id);
  int r = 0;
  if (i >= 0 && (r = remove_file(st->pods_dir, id, err)) == 0) {
    cri_pod_free(st->pods[i]);
    st->pods[i] = st->pods[--st->n_pods];
  }
  pthread_mutex_unlock(&st->lock);
  return r;
}

int cri_state_remove_ctr(struct cri_state *st, const char *id, q_error **err)
{
  pthread_mutex_lock(&st->lock);
  ssize_t i = find_ctr(st, id);
  int r = 0;
  if (i >= 0 && (r = remove_file(st->ctrs_dir, id, err)) == 0) {
    cri_ctr_free(st->ctrs[i]);
    st->ctrs[i] = st->ctrs[--st->n_ctrs];
  }
  pthread_mutex_unlock(&st->lock);
  return r;
}

/* ---- queries ---- */

int cri_state_get_pod(struct cri_state *st, const char *id, struct cri_pod **out)
{
  pthread_mutex_lock(&st->lock);
  ssize_t i = find_pod(st, id);
  int r = i < 0 ? -ENOENT : (*out = pod_copy(st->pods[i])) ? 0 : -ENOMEM;
  pthread_mutex_unlock(&st->lock);
  return r;
}

int cri_state_get_ctr(struct cri_state *st, const char *id, struct cri_ctr **out)
{
  pthread_mutex_lock(&st->lock);
  ssize_t i = find_ctr(st, id);
  int r = i < 0 ? -ENOENT : (*out = ctr_copy(st->ctrs[i])) ? 0 : -ENOMEM;
  pthread_mutex_unlock(&st->lock);
  return r;
}

static int cmp_pod(const void *a, const void *b)
{
  const struct cri_pod *x = *(struct cri_pod *const *)a, *y = *(struct cri_pod *const *)b;
  if (x->created_at != y->created_at)
    return x->created_at < y->created_at ? -1 : 1;
  return strcmp(x->id, y->id);
}

static int cmp_ctr(const void *a, const void *b)
{
  const struct cri_ctr *x = *(struct cri_ctr *const *)a, *y = *(struct cri_ctr *const *)b;
  if (x->created_at != y->created_at)
    return x->created_at < y->created_at ? -1 : 1;
  return strcmp(x->id, y->id);
}

int cri_state_list_pods(struct cri_state *st, const struct cri_pod_filter *f, struct cri_pod ***out,
                        size_t *n_out)
{
  pthread_mutex_lock(&st->lock);
  struct cri_pod **v = calloc(st->n_pods ? st->n_pods : 1, sizeof(*v));
  size_t n = 0;
  int r = v ? 0 : -ENOMEM;
  for (size_t i = 0; r == 0 && i < st->n_pods; i++) {
    const struct cri_pod *p = st->pods[i];
    if (f && (!prefix_match(p->id, f->id) || (f->has_state && p->state != f->state) ||
              !kvs_match(&p->labels, f->label_selector)))
      continue;
    if (!(v[n] = pod_copy(p)))
      r = -ENOMEM;
    else
      n++;
  }
  pthread_mutex_unlock(&st->lock);
  if (r < 0) {
    if (v)
      cri_pod_list_free(v, n);
    return r;
  }
  qsort(v, n, sizeof(*v), cmp_pod);
  *out = v;
  *n_out = n;
  return 0;
}

int cri_state_list_ctrs(struct cri_state *st, const struct cri_ctr_filter *f, struct cri_ctr ***out,
                        size_t *n_out)
{
  pthread_mutex_lock(&st->lock);
  struct cri_ctr **v = calloc(st->n_ctrs ? st->n_ctrs : 1, sizeof(*v));
  size_t n = 0;
  int r = v ? 0 : -ENOMEM;
  for (size_t i = 0; r == 0 && i < st->n_ctrs; i++) {
    const struct cri_ctr *c = st->ctrs[i];
    if (f && (!prefix_match(c->id, f->id) || !prefix_match(c->pod_id, f->pod_id) ||
              (f->has_state && c->state != f->state) || !kvs_match(&c->labels, f->label_selector)))
      continue;
    if (!(v[n] = ctr_copy(c)))
      r = -ENOMEM;
    else
      n++;
  }
  pthread_mutex_unlock(&st->lock);
  if (r < 0) {
    if (v)
      cri_ctr_list_free(v, n);
    return r;
  }
  qsort(v, n, sizeof(*v), cmp_ctr);
  *out = v;
  *n_out = n;
  return 0;
}

int cri_state_set_pod_cidr(struct cri_state *st, const char *cidr, q_error **err)
{
  char *copy = strdup(cidr ? cidr : "");
  if (!copy)
    return q_error_make(err, ENOMEM, "pod CIDR");
  pthread_mutex_lock(&st->lock);
  int r = write_json(st->runtime_path, json_pack("{s:i,s:s}", "Version", 1, "PodCidr", copy), true,
                     err);
  if (r == 0) {
    free(st->pod_cidr);
    st->pod_cidr = copy;
    copy = NULL;
  }
  pthread_mutex_unlock(&st->lock);
  free(copy);
  return r;
}

char *cri_state_get_pod_cidr(struct cri_state *st)
{
  pthread_mutex_lock(&st->lock);
  char *r = dup_or_null(st->pod_cidr);
  pthread_mutex_unlock(&st->lock);
  return r;
}
