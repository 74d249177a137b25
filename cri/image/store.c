/* Content store: blobs by digest, unpacked layers, image records, locks,
 * garbage collection and usage. Layout under the root:
 *   blobs/sha256/<hex>        verified blobs
 *   layers/sha256/<hex>/      unpacked layer (key: the layer blob digest)
 *   images/<hex>.json         image record (key: config digest = image id)
 *   containers/<id>/          rootfs record, upper and work dirs
 *   tmp/                      downloads and unpacks in progress
 *   pull.lock records.lock gc-pending
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

static char *pathf(const char *fmt, ...) Q_PRINTF(1, 2);
static char *pathf(const char *fmt, ...)
{
  va_list ap;
  char *s = NULL;
  va_start(ap, fmt);
  if (vasprintf(&s, fmt, ap) < 0)
    s = NULL;
  va_end(ap);
  return s;
}

/* ---- small utilities ---- */

void img_sha256_hex(const void *data, size_t len, char out[72])
{
  unsigned char d[32];
  unsigned int n = 0;
  EVP_Digest(data, len, d, &n, EVP_sha256(), NULL);
  strcpy(out, "sha256:");
  for (int i = 0; i < 32; i++)
    sprintf(out + 7 + 2 * i, "%02x", d[i]);
}

void img_strv_free(char **v)
{
  for (char **i = v; i && *i; i++)
    free(*i);
  free(v);
}

size_t img_strv_len(char *const *v)
{
  size_t n = 0;
  while (v && v[n])
    n++;
  return n;
}

char **img_strv_dup(const char *const *v, size_t n)
{
  char **o = calloc(n + 1, sizeof(char *));
  if (!o)
    return NULL;
  for (size_t i = 0; i < n; i++)
    if (!(o[i] = strdup(v[i]))) {
      img_strv_free(o);
      return NULL;
    }
  return o;
}

char **img_strv_from_json(json_t *arr)
{
  if (!json_is_array(arr))
    return NULL;
  size_t n = json_array_size(arr), k = 0;
  char **o = calloc(n + 1, sizeof(char *));
  if (!o)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    const char *s = json_string_value(json_array_get(arr, i));
    if (s && !(o[k++] = strdup(s))) {
      img_strv_free(o);
      return NULL;
    }
  }
  return o;
}

int img_error(q_error **err, int status, const char *fmt, ...)
{
  int ret = status > 0 ? -status : -EIO;
  if (!err)
    return ret;
  va_list ap;
  char *msg = NULL;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  q_error_make(err, 0, "%s", msg ? msg : "error");
  free(msg);
  if (*err)
    (*err)->status = status;
  return ret;
}

/* ---- paths ---- */

const char *img_store_root(const img_store *st)
{
  return st->root;
}

char *img_blob_path(const img_store *st, const char *digest)
{
  return pathf("%s/blobs/sha256/%s", st->root, digest + 7);
}

char *img_layer_path(const img_store *st, const char *digest)
{
  return pathf("%s/layers/sha256/%s", st->root, digest + 7);
}

char *img_tmp_path(const img_store *st, const char *what)
{
  char id[65];
  if (q_random_id(id) < 0)
    return NULL;
  id[20] = '\0';
  return pathf("%s/tmp/%s-%s", st->root, what, id);
}

bool img_blob_exists(const img_store *st, const char *digest)
{
  q_cleanup_free char *p = img_blob_path(st, digest);
  return p && access(p, F_OK) == 0;
}

int img_blob_put(img_store *st, const char *digest, const void *data, size_t len, q_error **err)
{
  if (img_blob_exists(st, digest))
    return 0;
  q_cleanup_free char *tmp = img_tmp_path(st, "blob");
  q_cleanup_free char *dst = img_blob_path(st, digest);
  if (!tmp || !dst)
    return q_error_make(err, ENOMEM, "blob %s", digest);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    return q_error_make(err, errno, "create %s", tmp);
  int rc = 0;
  if (q_write_all(fd, data, len) < 0 || fsync(fd) < 0)
    rc = q_error_make(err, errno, "write %s", tmp);
  close(fd);
  if (rc == 0 && rename(tmp, dst) < 0)
    rc = q_error_make(err, errno, "rename %s", dst);
  if (rc < 0)
    unlink(tmp);
  return rc;
}

int img_blob_read(img_store *st, const char *digest, size_t max, char **out, size_t *len,
                  q_error **err)
{
  q_cleanup_free char *p = img_blob_path(st, digest);
  if (!p)
    return q_error_make(err, ENOMEM, "blob %s", digest);
  return q_read_file(p, max, out, len, err);
}

/* ---- in-process single flight ---- */

int img_flight_begin(img_store *st, const char *key)
{
  pthread_mutex_lock(&st->lock);
  struct img_flight *f;
  for (f = st->flights; f; f = f->next)
    if (strcmp(f->key, key) == 0)
      break;
  if (!f) {
    f = calloc(1, sizeof(*f));
    if (f)
      f->key = strdup(key);
    if (!f || !f->key) {
      if (f)
        free(f);
      pthread_mutex_unlock(&st->lock);
      return 1; /* no memory to coordinate: do the work, at worst twice */
    }
    f->next = st->flights;
    st->flights = f;
    pthread_mutex_unlock(&st->lock);
    return 1;
  }
  f->waiters++;
  while (!f->done)
    pthread_cond_wait(&st->flight_cond, &st->lock);
  if (--f->waiters == 0) {
    struct img_flight **pp = &st->flights;
    while (*pp && *pp != f)
      pp = &(*pp)->next;
    if (*pp)
      *pp = f->next;
    free(f->key);
    free(f);
  }
  pthread_mutex_unlock(&st->lock);
  /* The owner may have failed: the caller checks the result and, when it is
   * absent, claims the work itself. */
  return 0;
}

void img_flight_end(img_store *st, const char *key)
{
  pthread_mutex_lock(&st->lock);
  struct img_flight **pp = &st->flights;
  while (*pp && !(strcmp((*pp)->key, key) == 0 && !(*pp)->done))
    pp = &(*pp)->next;
  struct img_flight *f = *pp;
  if (f) {
    if (f->waiters == 0) {
      *pp = f->next;
      free(f->key);
      free(f);
    } else {
      f->done = true; /* the last waiter frees it */
      *pp = f->next;
    }
    pthread_cond_broadcast(&st->flight_cond);
  }
  pthread_mutex_unlock(&st->lock);
}

/* ---- locks ---- */

int img_store_lock(img_store *st, const char *which, bool exclusive, bool wait)
{
  q_cleanup_free char *p = pathf("%s/%s.lock", st->root, which);
  if (!p)
    return -ENOMEM;
  int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return -errno;
  int op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
  while (flock(fd, op) < 0) {
    if (errno == EINTR)
      continue;
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

/* ---- open / close ---- */

static void clean_tmp(img_store *st)
{
  q_cleanup_free char *tmp = pathf("%s/tmp", st->root);
  DIR *d = tmp ? opendir(tmp) : NULL;
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    q_cleanup_free char *p = pathf("%s/%s", tmp, e->d_name);
    q_cleanup_error q_error *er = NULL;
    if (p && q_rm_rf(p, &er) < 0)
      q_warn(NULL, "image store: cannot remove leftover %s: %s", p, q_error_msg(er));
    else
      q_info(NULL, "image store: removed leftover %s of an interrupted pull", p);
  }
  closedir(d);
  /* progress files of pulls that did not end */
  q_cleanup_free char *pulls = pathf("%s/pulls", st->root);
  if (pulls)
    q_rm_rf(pulls, NULL), q_mkdir_p(pulls, 0700, NULL);
  /* q_write_file_atomic's temp files of records interrupted mid-write */
  q_cleanup_free char *imgs = pathf("%s/images", st->root);
  d = imgs ? opendir(imgs) : NULL;
  if (!d)
    return;
  while ((e = readdir(d))) {
    if (strstr(e->d_name, ".tmp.")) {
      q_cleanup_free char *p = pathf("%s/%s", imgs, e->d_name);
      if (p)
        unlink(p);
    }
  }
  closedir(d);
}

static void gc_run_locked(img_store *st);

int img_store_open(const struct img_store_opts *o, img_store **out, q_error **err)
{
  if (!o || !o->root || o->root[0] != '/')
    return q_error_make(err, EINVAL, "image store: root must be an absolute path");
  img_store *st = calloc(1, sizeof(*st));
  if (!st)
    return q_error_make(err, ENOMEM, "image store");
  pthread_mutex_init(&st->lock, NULL);
  pthread_cond_init(&st->flight_cond, NULL);
  st->root = strdup(o->root);
  size_t rl = st->root ? strlen(st->root) : 0;
  while (rl > 1 && st->root[rl - 1] == '/')
    st->root[--rl] = '\0';
  st->connect_timeout_s = o->connect_timeout_s > 0 ? o->connect_timeout_s : 10;
  st->stall_timeout_s = o->stall_timeout_s > 0 ? o->stall_timeout_s : 30;
  st->max_retries = o->max_retries == 0 ? 3 : o->max_retries < 0 ? 0 : o->max_retries;
  st->max_parallel = o->max_parallel_layers > 0 ? o->max_parallel_layers : 4;
  st->max_recv_bps = o->max_recv_bytes_per_s;
  st->insecure = img_strv_dup(o->insecure, o->n_insecure);
  st->n_mirrors = o->n_mirrors;
  st->mirror_hosts = calloc(o->n_mirrors + 1, sizeof(char *));
  st->mirror_endpoints = calloc(o->n_mirrors + 1, sizeof(char **));
  bool oom = !st->root || !st->insecure || !st->mirror_hosts || !st->mirror_endpoints;
  for (size_t i = 0; !oom && i < o->n_mirrors; i++) {
    st->mirror_hosts[i] = strdup(o->mirrors[i].host);
    st->mirror_endpoints[i] = img_strv_dup(o->mirrors[i].endpoints, o->mirrors[i].n_endpoints);
    oom = !st->mirror_hosts[i] || !st->mirror_endpoints[i];
  }
  if (oom) {
    img_store_close(st);
    return q_error_make(err, ENOMEM, "image store");
  }
  static const char *const dirs[] = {"",        "/blobs/sha256", "/layers/sha256", "/layers/diffid",
                                     "/images", "/containers",   "/tmp",           "/pulls"};
  for (size_t i = 0; i < Q_ARRAY_SIZE(dirs); i++) {
    q_cleanup_free char *p = pathf("%s%s", st->root, dirs[i]);
    int rc = p ? q_mkdir_p(p, 0700, err) : q_error_make(err, ENOMEM, "image store");
    if (rc < 0) {
      img_store_close(st);
      q_error_wrap(err, "open image store %s", o->root);
      return rc;
    }
  }
  img_reg_check_mirrors(st);
  /* Leftovers can only be cleaned while no process pulls into this root. */
  int lfd = img_store_lock(st, "pull", true, false);
  if (lfd >= 0) {
    clean_tmp(st);
    q_cleanup_free char *mark = pathf("%s/gc-pending", st->root);
    if (mark && access(mark, F_OK) == 0)
      gc_run_locked(st);
    close(lfd);
  }
  *out = st;
  return 0;
}

void img_store_close(img_store *st)
{
  if (!st)
    return;
  pthread_mutex_lock(&st->lock);
  while (st->trash_running > 0)
    pthread_cond_wait(&st->flight_cond, &st->lock);
  pthread_mutex_unlock(&st->lock);
  free(st->root);
  for (size_t i = 0; i < st->n_mirrors; i++) {
    if (st->mirror_hosts)
      free(st->mirror_hosts[i]);
    if (st->mirror_endpoints)
      img_strv_free(st->mirror_endpoints[i]);
  }
  free(st->mirror_hosts);
  free(st->mirror_endpoints);
  img_strv_free(st->insecure);
  for (size_t i = 0; i < st->n_tokens; i++) {
    free(st->tokens[i].key);
    free(st->tokens[i].token);
  }
  free(st->tokens);
  while (st->flights) {
    struct img_flight *f = st->flights;
    st->flights = f->next;
    free(f->key);
    free(f);
  }
  pthread_mutex_destroy(&st->lock);
  pthread_cond_destroy(&st->flight_cond);
  free(st);
}

/* ---- records ---- */

static json_t *record_load_path(const char *path)
{
  json_error_t je;
  return json_load_file(path, 0, &je);
}

static json_t *record_load(img_store *st, const char *id)
{
  q_cleanup_free char *p = pathf("%s/images/%s.json", st->root, id + 7);
  return p ? record_load_path(p) : NULL;
}

static int record_save(img_store *st, json_t *rec, q_error **err)
{
  const char *id = json_string_value(json_object_get(rec, "id"));
  q_cleanup_free char *p = pathf("%s/images/%s.json", st->root, id + 7);
  q_cleanup_free char *s = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
  if (!p || !s)
    return q_error_make(err, ENOMEM, "image record");
  return q_write_file_atomic(p, s, strlen(s), 0600, err);
}

/* Every record, as loaded JSON; NULL-terminated. */
static json_t **records_all(img_store *st, size_t *n)
{
  *n = 0;
  q_cleanup_free char *dir = pathf("%s/images", st->root);
  DIR *d = dir ? opendir(dir) : NULL;
  json_t **v = calloc(1, sizeof(json_t *));
  if (!d || !v) {
    if (d)
      closedir(d);
    return v;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (l != 64 + 5 || strcmp(e->d_name + 64, ".json") != 0)
      continue;
    q_cleanup_free char *p = pathf("%s/%s", dir, e->d_name);
    json_t *r = p ? record_load_path(p) : NULL;
    if (!r || !json_string_value(json_object_get(r, "id"))) {
      json_decref(r);
      continue;
    }
    json_t **nv = realloc(v, (*n + 2) * sizeof(json_t *));
    if (!nv) {
      json_decref(r);
      break;
    }
    v = nv;
    v[(*n)++] = r;
    v[*n] = NULL;
  }
  closedir(d);
  return v;
}

static void records_free(json_t **v)
{
  for (json_t **i = v; i && *i; i++)
    json_decref(*i);
  free(v);
}

static bool json_array_has(json_t *arr, const char *s)
{
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) if (json_string_value(v) &&
                                    strcmp(json_string_value(v), s) == 0) return true;
  return false;
}

static void json_array_drop(json_t *arr, const char *s)
{
  for (size_t i = json_array_size(arr); i-- > 0;) {
    const char *v = json_string_value(json_array_get(arr, i));
    if (v && strcmp(v, s) == 0)
      json_array_remove(arr, i);
  }
}

int img_record_commit(img_store *st, const struct img_record_in *in, q_error **err)
{
  int lfd = img_store_lock(st, "records", true, true);
  if (lfd < 0)
    return q_error_make(err, -lfd, "lock image records");
  int rc = 0;
  size_t n = 0;
  json_t **all = records_all(st, &n);
  /* A tag names one image: take it from the image that had it. */
  for (size_t i = 0; in->repo_tag && i < n; i++) {
    const char *id = json_string_value(json_object_get(all[i], "id"));
    json_t *tags = json_object_get(all[i], "repoTags");
    if (strcmp(id, in->config_digest) != 0 && json_array_has(tags, in->repo_tag)) {
      json_array_drop(tags, in->repo_tag);
      rc = record_save(st, all[i], err);
      if (rc < 0)
        goto out;
    }
  }
  json_t *rec = record_load(st, in->config_digest);
  if (!rec) {
    rec = json_pack("{s:s, s:[], s:[], s:I}", "id", in->config_digest, "repoTags", "repoDigests",
                    "pulled", (json_int_t)q_now_ns());
    if (!rec) {
      rc = q_error_make(err, ENOMEM, "image record");
      goto out;
    }
  }
  json_t *layers = json_array();
  for (size_t i = 0; i < in->n_layers; i++)
    json_array_append_new(
        layers, json_pack("{s:s, s:s}", "digest", in->layers[i], "mediaType", in->layer_types[i]));
  json_t *extra = json_object_get(rec, "extraBlobs");
  if (!json_is_array(extra)) {
    extra = json_array();
    json_object_set_new(rec, "extraBlobs", extra);
  }
  for (size_t i = 0; i < in->n_extra; i++)
    if (!json_array_has(extra, in->extra_blobs[i]))
      json_array_append_new(extra, json_string(in->extra_blobs[i]));
  /* Keep the manifest an earlier pull of this image used: its repo digests name it. */
  const char *old_manifest = json_string_value(json_object_get(rec, "manifestDigest"));
  if (old_manifest && strcmp(old_manifest, in->manifest_digest) != 0 &&
      !json_array_has(extra, old_manifest))
    json_array_append_new(extra, json_string(old_manifest));
  json_object_set_new(rec, "layers", layers);
  json_object_set_new(rec, "manifestDigest", json_string(in->manifest_digest));
  json_object_set_new(rec, "size", json_integer((json_int_t)in->size));
  json_t *tags = json_object_get(rec, "repoTags");
  if (in->repo_tag && !json_array_has(tags, in->repo_tag))
    json_array_append_new(tags, json_string(in->repo_tag));
  json_t *digs = json_object_get(rec, "repoDigests");
  if (in->repo_digest && !json_array_has(digs, in->repo_digest))
    json_array_append_new(digs, json_string(in->repo_digest));
  rc = record_save(st, rec, err);
  json_decref(rec);
out:
  records_free(all);
  close(lfd);
  return rc;
}

/* ---- lookups ---- */

static bool all_hex(const char *s)
{
  for (; *s; s++)
    if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
      return false;
  return true;
}

/* The record that ref_or_id names, or NULL (with *ambiguous set when an id
 * prefix matched several). */
static json_t *record_find(img_store *st, const char *s, bool *ambiguous)
{
  *ambiguous = false;
  const char *hex = strncmp(s, "sha256:", 7) == 0 ? s + 7 : s;
  if (strlen(hex) == 64 && all_hex(hex)) {
    q_cleanup_free char *id = pathf("sha256:%s", hex);
    json_t *r = id ? record_load(st, id) : NULL;
    if (r)
      return r;
  }
  size_t n = 0;
  json_t **all = records_all(st, &n);
  json_t *found = NULL;
  img_ref ref;
  if (img_ref_parse(s, &ref, NULL) == 0) {
    q_cleanup_free char *name = img_ref_name(&ref);
    q_cleanup_free char *tagged = NULL, *digested = NULL;
    if (name && ref.tag)
      tagged = pathf("%s:%s", name, ref.tag);
    if (name && ref.digest)
      digested = pathf("%s@%s", name, ref.digest);
    for (size_t i = 0; i < n && !found; i++) {
      if ((digested && json_array_has(json_object_get(all[i], "repoDigests"), digested)) ||
          (!digested && tagged && json_array_has(json_object_get(all[i], "repoTags"), tagged)))
        found = json_incref(all[i]);
    }
    img_ref_free(&ref);
  }
  size_t hl = strlen(hex);
  if (!found && hl >= 4 && hl < 64 && all_hex(hex)) {
    for (size_t i = 0; i < n; i++) {
      const char *id = json_string_value(json_object_get(all[i], "id"));
      if (strncmp(id + 7, hex, hl) == 0) {
        if (found) {
          *ambiguous = true;
          json_decref(found);
          found = NULL;
          break;
        }
        found = json_incref(all[i]);
      }
    }
  }
  records_free(all);
  return found;
}

static char **kv_strv(json_t *arr)
{
  return img_strv_from_json(arr);
}

static void config_fill(img_info *info, const char *cfg_json, size_t len)
{
  json_error_t je;
  json_t *j = json_loadb(cfg_json, len, 0, &je);
  if (!j)
    return;
  info->os = json_string_value(json_object_get(j, "os"))
                 ? strdup(json_string_value(json_object_get(j, "os")))
                 : NULL;
  const char *arch = json_string_value(json_object_get(j, "architecture"));
  info->architecture = arch ? strdup(arch) : NULL;
  json_t *c = json_object_get(j, "config");
  img_config *ic = &info->config;
  const char *u = json_string_value(json_object_get(c, "User"));
  ic->user = u && *u ? strdup(u) : NULL;
  const char *wd = json_string_value(json_object_get(c, "WorkingDir"));
  ic->working_dir = wd && *wd ? strdup(wd) : NULL;
  const char *sig = json_string_value(json_object_get(c, "StopSignal"));
  ic->stop_signal = sig && *sig ? strdup(sig) : NULL;
  ic->env = kv_strv(json_object_get(c, "Env"));
  if (!ic->env)
    ic->env = calloc(1, sizeof(char *));
  ic->entrypoint = kv_strv(json_object_get(c, "Entrypoint"));
  ic->cmd = kv_strv(json_object_get(c, "Cmd"));
  json_t *ports = json_object_get(c, "ExposedPorts");
  if (json_is_object(ports)) {
    size_t n = json_object_size(ports), k = 0;
    ic->exposed_ports = calloc(n + 1, sizeof(char *));
    const char *key;
    json_t *v;
    json_object_foreach(ports, key, v) if (ic->exposed_ports) ic->exposed_ports[k++] = strdup(key);
  }
  json_t *labels = json_object_get(c, "Labels");
  if (json_is_object(labels) && json_object_size(labels) > 0) {
    ic->labels = calloc(json_object_size(labels), sizeof(img_kv));
    const char *key;
    json_t *v;
    json_object_foreach(labels, key, v)
    {
      if (ic->labels && json_string_value(v)) {
        ic->labels[ic->n_labels].key = strdup(key);
        ic->labels[ic->n_labels].value = strdup(json_string_value(v));
        ic->n_labels++;
      }
    }
  }
  json_decref(j);
}

static img_info *info_from_record(img_store *st, json_t *rec)
{
  img_info *info = calloc(1, sizeof(*info));
  if (!info)
    return NULL;
  info->id = strdup(json_string_value(json_object_get(rec, "id")));
  info->repo_tags = img_strv_from_json(json_object_get(rec, "repoTags"));
  info->repo_digests = img_strv_from_json(json_object_get(rec, "repoDigests"));
  if (!info->repo_tags)
    info->repo_tags = calloc(1, sizeof(char *));
  if (!info->repo_digests)
    info->repo_digests = calloc(1, sizeof(char *));
  info->size = (uint64_t)json_integer_value(json_object_get(rec, "size"));
  const char *md = json_string_value(json_object_get(rec, "manifestDigest"));
  info->manifest_digest = md ? strdup(md) : NULL;
  info->pulled_ns = json_integer_value(json_object_get(rec, "pulled"));
  json_t *layers = json_object_get(rec, "layers");
  info->layers = calloc(json_array_size(layers) + 1, sizeof(char *));
  size_t i;
  json_t *l;
  json_array_foreach(layers, i, l) if (info->layers) info->layers[i] =
      strdup(json_string_value(json_object_get(l, "digest")));
  char *cfg = NULL;
  size_t len = 0;
  if (info->id && img_blob_read(st, info->id, IMG_MAX_CONFIG, &cfg, &len, NULL) == 0) {
    config_fill(info, cfg, len);
    info->config_json = cfg;
  }
  if (!info->id || !info->repo_tags || !info->repo_digests || !info->layers) {
    img_info_free(info);
    return NULL;
  }
  return info;
}

void img_info_free(img_info *info)
{
  if (!info)
    return;
  free(info->id);
  img_strv_free(info->repo_tags);
  img_strv_free(info->repo_digests);
  free(info->manifest_digest);
  img_strv_free(info->layers);
  free(info->os);
  free(info->architecture);
  img_config *c = &info->config;
  free(c->user);
  img_strv_free(c->env);
  img_strv_free(c->entrypoint);
  img_strv_free(c->cmd);
  free(c->working_dir);
  img_strv_free(c->exposed_ports);
  for (size_t i = 0; i < c->n_labels; i++) {
    free(c->labels[i].key);
    free(c->labels[i].value);
  }
  free(c->labels);
  free(c->stop_signal);
  free(info->config_json);
  free(info);
}

void img_infov_free(img_info **v, size_t n)
{
  for (size_t i = 0; v && i < n; i++)
    img_info_free(v[i]);
  free(v);
}

int img_status(img_store *st, const char *ref_or_id, img_info **out, q_error **err)
{
  bool amb = false;
  json_t *rec = record_find(st, ref_or_id, &amb);
  if (!rec)
    return img_error(err, amb ? EINVAL : ENOENT,
                     amb ? "image id prefix \"%s\" is ambiguous" : "image \"%s\" not found",
                     ref_or_id);
  *out = info_from_record(st, rec);
  json_decref(rec);
  return *out ? 0 : q_error_make(err, ENOMEM, "image %s", ref_or_id);
}

static int cmp_pulled(const void *a, const void *b)
{
  const img_info *x = *(img_info *const *)a, *y = *(img_info *const *)b;
  return x->pulled_ns < y->pulled_ns ? -1 : x->pulled_ns > y->pulled_ns;
}

int img_list(img_store *st, img_info ***out, size_t *n_out, q_error **err)
{
  size_t n = 0, k = 0;
  json_t **all = records_all(st, &n);
  img_info **v = calloc(n + 1, sizeof(img_info *));
  if (!all || !v) {
    records_free(all);
    free(v);
    return q_error_make(err, ENOMEM, "list images");
  }
  for (size_t i = 0; i < n; i++) {
    img_info *info = info_from_record(st, all[i]);
    if (info)
      v[k++] = info;
  }
  records_free(all);
  qsort(v, k, sizeof(*v), cmp_pulled);
  *out = v;
  *n_out = k;
  return 0;
}

/* ---- containers using images ---- */

/* The id of a container whose rootfs uses image id, or NULL. */
char *img_container_using(img_store *st, const char *id)
{
  q_cleanup_free char *dir = pathf("%s/containers", st->root);
  DIR *d = dir ? opendir(dir) : NULL;
  if (!d)
    return NULL;
  char *user = NULL;
  struct dirent *e;
  while (!user && (e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    q_cleanup_free char *p = pathf("%s/%s/rootfs.json", dir, e->d_name);
    json_t *r = p ? record_load_path(p) : NULL;
    const char *img = json_string_value(json_object_get(r, "image"));
    if (img && strcmp(img, id) == 0)
      user = strdup(e->d_name);
    json_decref(r);
  }
  closedir(d);
  return user;
}

/* ---- remove and garbage collection ---- */

static void add_ref(json_t *set, const char *digest)
{
  if (digest)
    json_object_set_new(set, digest + (strncmp(digest, "sha256:", 7) == 0 ? 7 : 0), json_true());
}

struct trash_job {
  img_store *st;
  char **paths;
};

static void *trash_thread(void *arg)
{
  struct trash_job *j = arg;
  for (char **p = j->paths; *p; p++) {
    q_cleanup_error q_error *er = NULL;
    if (q_rm_rf(*p, &er) < 0)
      q_warn(NULL, "image gc: %s", q_error_msg(er));
  }
  img_strv_free(j->paths);
  pthread_mutex_lock(&j->st->lock);
  j->st->trash_running--;
  pthread_cond_broadcast(&j->st->flight_cond);
  pthread_mutex_unlock(&j->st->lock);
  free(j);
  return NULL;
}

/* Deletes paths (taken) on a thread that img_store_close waits for. What a
 * process exit interrupts stays under tmp/ until the next open. */
static void trash_async(img_store *st, char **paths)
{
  if (!paths || !paths[0]) {
    img_strv_free(paths);
    return;
  }
  struct trash_job *j = malloc(sizeof(*j));
  pthread_t th;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (j) {
    *j = (struct trash_job){st, paths};
    pthread_mutex_lock(&st->lock);
    st->trash_running++;
    pthread_mutex_unlock(&st->lock);
    if (pthread_create(&th, &attr, trash_thread, j) == 0) {
      pthread_attr_destroy(&attr);
      return;
    }
    pthread_mutex_lock(&st->lock);
    st->trash_running--;
    pthread_mutex_unlock(&st->lock);
    free(j);
  }
  pthread_attr_destroy(&attr);
  for (char **p = paths; *p; p++)
    q_rm_rf(*p, NULL);
  img_strv_free(paths);
}

static void gc_run_locked(img_store *st)
{
  int rfd = img_store_lock(st, "records", true, true);
  size_t n = 0;
  json_t **all = records_all(st, &n);
  json_t *keep = json_object();
  for (size_t i = 0; i < n && keep; i++) {
    add_ref(keep, json_string_value(json_object_get(all[i], "id")));
    add_ref(keep, json_string_value(json_object_get(all[i], "manifestDigest")));
    size_t j;
    json_t *v;
    json_array_foreach(json_object_get(all[i], "layers"), j, v)
        add_ref(keep, json_string_value(json_object_get(v, "digest")));
    json_array_foreach(json_object_get(all[i], "extraBlobs"), j, v)
        add_ref(keep, json_string_value(v));
  }
  records_free(all);
  size_t freed_blobs = 0, freed_layers = 0, n_trash = 0;
  char **trash = calloc(1, sizeof(char *));
  static const char *const gc_dirs[] = {"blobs/sha256", "layers/sha256", "layers/diffid"};
  for (int pass = 0; keep && pass < 3; pass++) {
    q_cleanup_free char *dir = pathf("%s/%s", st->root, gc_dirs[pass]);
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d)
      continue;
    struct dirent *e;
    while ((e = readdir(d))) {
      if (e->d_name[0] == '.' || json_object_get(keep, e->d_name))
        continue;
      q_cleanup_free char *p = pathf("%s/%s", dir, e->d_name);
      if (!p)
        continue;
      if (pass != 1) {
        if (unlink(p) == 0 && pass == 0)
          freed_blobs++;
        continue;
      }
      /* Out of sight at once (a crash mid-delete leaves no half layer);
       * deleting thousands of files can take seconds: that happens on a
       * thread, so that RemoveImage answers now. */
      char *t = img_tmp_path(st, "gc");
      char **nt = trash ? realloc(trash, (n_trash + 2) * sizeof(char *)) : NULL;
      if (t && nt && rename(p, t) == 0) {
        trash = nt;
        trash[n_trash++] = t;
        trash[n_trash] = NULL;
        freed_layers++;
      } else {
        if (nt)
          trash = nt;
        free(t);
      }
    }
    closedir(d);
  }
  if (keep) {
    q_cleanup_free char *mark = pathf("%s/gc-pending", st->root);
    if (mark)
      unlink(mark);
  }
  json_decref(keep);
  if (rfd >= 0)
    close(rfd);
  q_debug(NULL, "image gc: removed %zu blobs and %zu layers", freed_blobs, freed_layers);
  trash_async(st, trash);
}

void img_gc_maybe(img_store *st)
{
  q_cleanup_free char *mark = pathf("%s/gc-pending", st->root);
  if (!mark || access(mark, F_OK) != 0)
    return;
  int lfd = img_store_lock(st, "pull", true, false);
  if (lfd < 0)
    return;
  gc_run_locked(st);
  close(lfd);
}

int img_remove(img_store *st, const char *ref_or_id, q_error **err)
{
  int lfd = img_store_lock(st, "records", true, true);
  if (lfd < 0)
    return q_error_make(err, -lfd, "lock image records");
  bool amb = false;
  json_t *rec = record_find(st, ref_or_id, &amb);
  int rc = 0;
  if (!rec) {
    rc = img_error(err, amb ? EINVAL : ENOENT,
                   amb ? "image id prefix \"%s\" is ambiguous" : "image \"%s\" not found",
                   ref_or_id);
    close(lfd);
    return rc;
  }
  const char *id = json_string_value(json_object_get(rec, "id"));
  q_cleanup_free char *user = img_container_using(st, id);
  if (user) {
    rc = img_error(err, EBUSY, "image %s is in use by container %s", id, user);
  } else {
    q_cleanup_free char *p = pathf("%s/images/%s.json", st->root, id + 7);
    q_cleanup_free char *mark = pathf("%s/gc-pending", st->root);
    if (mark)
      (void)q_write_file_atomic(mark, "", 0, 0600, NULL);
    if (!p || unlink(p) < 0)
      rc = q_error_make(err, p ? errno : ENOMEM, "remove image record %s", id);
    else
      q_debug(NULL, "removed image %s", id);
  }
  json_decref(rec);
  close(lfd);
  if (rc == 0)
    img_gc_maybe(st);
  return rc;
}

/* ---- usage ---- */

static __thread uint64_t fs_bytes, fs_inodes;

static int fs_walk(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
  (void)p, (void)flag, (void)f;
  fs_bytes += (uint64_t)sb->st_blocks * 512;
  fs_inodes++;
  return 0;
}

int img_fs_info(img_store *st, struct img_fs_usage *out, q_error **err)
{
  fs_bytes = fs_inodes = 0;
  if (nftw(st->root, fs_walk, 32, FTW_PHYS | FTW_MOUNT) < 0)
    return q_error_make(err, errno, "walk %s", st->root);
  out->used_bytes = fs_bytes;
  out->inodes_used = fs_inodes;
  out->timestamp_ns = q_now_ns();
  return 0;
}
