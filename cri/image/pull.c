/* Pull: resolve a reference on the first endpoint that answers (mirrors
 * first), pick linux/amd64 from an index, then fetch and unpack the layers
 * on worker threads, each layer on its own (layers unpack into separate
 * directories, so their order does not matter until the mount). */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

bool img_is_index_type(const char *mt)
{
  return mt && (strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0);
}

char *img_manifest_media_type(const char *hdr_type, const char *body, size_t len)
{
  if (hdr_type && *hdr_type)
    return strdup(hdr_type);
  json_error_t je;
  json_t *j = json_loadb(body, len, 0, &je);
  char *mt = NULL;
  const char *f = json_string_value(json_object_get(j, "mediaType"));
  if (f)
    mt = strdup(f);
  else if (json_object_get(j, "manifests"))
    mt = strdup(MT_OCI_INDEX);
  else if (json_object_get(j, "config") && json_object_get(j, "layers"))
    mt = strdup(MT_OCI_MANIFEST);
  json_decref(j);
  return mt;
}

static int desc_parse(json_t *d, struct img_desc *out, const char *what, q_error **err)
{
  const char *mt = json_string_value(json_object_get(d, "mediaType"));
  const char *dg = json_string_value(json_object_get(d, "digest"));
  json_t *sz = json_object_get(d, "size");
  if (!dg || !img_valid_digest(dg))
    return img_error(err, EBADMSG, "%s: missing or unsupported digest \"%s\" (sha256 only)", what,
                     dg ? dg : "");
  if (!json_is_integer(sz) || json_integer_value(sz) < 0)
    return img_error(err, EBADMSG, "%s %s: missing size", what, dg);
  out->media_type = strdup(mt ? mt : "");
  out->digest = strdup(dg);
  out->size = json_integer_value(sz);
  return out->media_type && out->digest ? 0 : q_error_make(err, ENOMEM, "manifest");
}

void img_manifest_free(struct img_manifest *m)
{
  free(m->config.media_type);
  free(m->config.digest);
  for (size_t i = 0; i < m->n_layers; i++) {
    free(m->layers[i].media_type);
    free(m->layers[i].digest);
  }
  free(m->layers);
  img_strv_free(m->diff_ids);
  memset(m, 0, sizeof(*m));
}

int img_manifest_parse(const char *body, size_t len, const char *media_type, struct img_manifest *m,
                       q_error **err)
{
  memset(m, 0, sizeof(*m));
  if (!media_type ||
      (strcmp(media_type, MT_OCI_MANIFEST) != 0 && strcmp(media_type, MT_DOCKER_MANIFEST) != 0))
    return img_error(err, EPROTONOSUPPORT, "unsupported manifest media type \"%s\"%s",
                     media_type ? media_type : "(none)",
                     media_type && strstr(media_type, "manifest.v1") ? " (Docker schema 1)" : "");
  json_error_t je;
  json_t *j = json_loadb(body, len, 0, &je);
  if (!j)
    return img_error(err, EBADMSG, "manifest is not JSON: %s", je.text);
  int rc = 0;
  if (json_integer_value(json_object_get(j, "schemaVersion")) != 2) {
    rc = img_error(err, EPROTONOSUPPORT, "manifest schemaVersion is not 2");
    goto out;
  }
  rc = desc_parse(json_object_get(j, "config"), &m->config, "config", err);
  if (rc < 0)
    goto out;
  if (strcmp(m->config.media_type, MT_OCI_CONFIG) != 0 &&
      strcmp(m->config.media_type, MT_DOCKER_CONFIG) != 0) {
    rc = img_error(err, EPROTONOSUPPORT,
                   "unsupported config media type \"%s\" (not a container image)",
                   m->config.media_type);
    goto out;
  }
  json_t *layers = json_object_get(j, "layers");
  if (!json_is_array(layers)) {
    rc = img_error(err, EBADMSG, "manifest without layers");
    goto out;
  }
  m->layers = calloc(json_array_size(layers) + 1, sizeof(struct img_desc));
  if (!m->layers) {
    rc = q_error_make(err, ENOMEM, "manifest");
    goto out;
  }
  for (size_t i = 0; i < json_array_size(layers); i++) {
    rc = desc_parse(json_array_get(layers, i), &m->layers[i], "layer", err);
    if (rc < 0)
      goto out;
    m->n_layers++;
    if (!img_layer_media_type_ok(m->layers[i].media_type)) {
      rc = img_error(err, EPROTONOSUPPORT, "layer %s: unsupported media type \"%s\"",
                     m->layers[i].digest, m->layers[i].media_type);
      goto out;
    }
  }
out:
  json_decref(j);
  if (rc < 0)
    img_manifest_free(m);
  return rc;
}

int img_index_select(const char *body, size_t len, char **digest, char **media_type, q_error **err)
{
  json_error_t je;
  json_t *j = json_loadb(body, len, 0, &je);
  if (!j)
    return img_error(err, EBADMSG, "index is not JSON: %s", je.text);
  json_t *ms = json_object_get(j, "manifests");
  size_t i;
  json_t *d;
  char seen[512] = "";
  int rc = q_error_make(NULL, ENOENT, "-");
  json_array_foreach(ms, i, d)
  {
    json_t *p = json_object_get(d, "platform");
    const char *os = json_string_value(json_object_get(p, "os"));
    const char *arch = json_string_value(json_object_get(p, "architecture"));
    const char *dg = json_string_value(json_object_get(d, "digest"));
    if (os && arch && strcmp(os, "linux") == 0 && strcmp(arch, "amd64") == 0 && dg &&
        img_valid_digest(dg)) {
      const char *mt = json_string_value(json_object_get(d, "mediaType"));
      *digest = strdup(dg);
      *media_type = mt ? strdup(mt) : NULL;
      rc = 0;
      break;
    }
    size_t l = strlen(seen);
    snprintf(seen + l, sizeof(seen) - l, "%s%s/%s", l ? ", " : "", os ? os : "?",
             arch ? arch : "?");
  }
  json_decref(j);
  if (rc < 0)
    return img_error(err, ENOENT, "no linux/amd64 image in the index (it has: %s)",
                     seen[0] ? seen : "nothing");
  return 0;
}

/* ---- layer workers ---- */

struct pull_ctx {
  img_store *st;
  const img_ref *ref;
  const char *endpoint;
  const struct img_auth *auth;
  struct img_manifest *m;
  pthread_mutex_t lock;
  size_t next;
  int rc;
  q_error *err;
  img_progress_fn progress;
  void *parg;
};

struct layer_progress {
  struct pull_ctx *c;
  const char *digest;
};

static void report(struct pull_ctx *c, const char *digest, enum img_progress_state s, int64_t done,
                   int64_t total)
{
  if (!c->progress)
    return;
  pthread_mutex_lock(&c->lock);
  c->progress(c->parg, digest, s, done, total);
  pthread_mutex_unlock(&c->lock);
}

static void on_bytes(void *arg, int64_t done, int64_t total)
{
  struct layer_progress *lp = arg;
  report(lp->c, lp->digest, IMG_PROGRESS_DOWNLOADING, done, total);
}

static int fetch_blob_shared(img_store *st, struct img_reg *r, const struct img_desc *d,
                             img_reg_progress cb, void *arg, q_error **err)
{
  q_cleanup_free char *key = NULL;
  if (asprintf(&key, "blob:%s", d->digest) < 0)
    return q_error_make(err, ENOMEM, "blob");
  while (!img_blob_exists(st, d->digest)) {
    if (!r)
      return img_error(err, ENOENT, "layer blob %s is not in the store", d->digest);
    if (!img_flight_begin(st, key))
      continue;
    int rc = img_blob_exists(st, d->digest)
                 ? 0
                 : img_reg_fetch_blob(r, d->digest, d->size, cb, arg, -1, NULL, err);
    img_flight_end(st, key);
    return rc;
  }
  return 0;
}

struct stream_fetch {
  struct pull_ctx *c;
  struct img_reg *r;
  const struct img_desc *d;
  struct layer_progress *prog;
};

/* img_fetch_fn for a streamed layer: the blob, unless another thread is
 * fetching it or has it (then the stream is incomplete and the layer is
 * unpacked from the stored blob). */
static int stream_fetch(void *arg, int tee_fd, bool *complete, q_error **err)
{
  struct stream_fetch *f = arg;
  img_store *st = f->c->st;
  q_cleanup_free char *key = NULL;
  *complete = false;
  if (asprintf(&key, "blob:%s", f->d->digest) < 0)
    return q_error_make(err, ENOMEM, "blob");
  while (!img_blob_exists(st, f->d->digest)) {
    if (!img_flight_begin(st, key))
      continue;
    int rc = img_blob_exists(st, f->d->digest)
                 ? 0
                 : img_reg_fetch_blob(f->r, f->d->digest, f->d->size, on_bytes, f->prog, tee_fd,
                                      complete, err);
    img_flight_end(st, key);
    if (rc == 0 && *complete)
      report(f->c, f->d->digest, IMG_PROGRESS_UNPACKING, f->d->size, f->d->size);
    return rc;
  }
  return 0;
}

static int do_layer(struct pull_ctx *c, struct img_reg *r, const struct img_desc *d, q_error **err)
{
  q_cleanup_free char *lp = img_layer_path(c->st, d->digest);
  size_t i = (size_t)(d - c->m->layers);
  const char *diff_id =
      c->m->diff_ids && i < img_strv_len(c->m->diff_ids) ? c->m->diff_ids[i] : NULL;
  if (lp && access(lp, F_OK) == 0) {
    int rc = img_layer_ensure(c->st, d->digest, d->media_type, diff_id, err);
    if (rc == 0)
      report(c, d->digest, IMG_PROGRESS_EXISTS, d->size, d->size);
    return rc;
  }
  struct layer_progress prog = {c, d->digest};
  report(c, d->digest, IMG_PROGRESS_DOWNLOADING, 0, d->size);
  int rc;
  if (r && !img_blob_exists(c->st, d->digest)) {
    /* Unpack while downloading: the layer is ready soon after its last byte. */
    struct stream_fetch f = {c, r, d, &prog};
    rc = img_layer_ensure_streamed(c->st, d->digest, d->media_type, diff_id, stream_fetch, &f, err);
  } else {
    rc = fetch_blob_shared(c->st, r, d, on_bytes, &prog, err);
    if (rc < 0)
      return rc;
    report(c, d->digest, IMG_PROGRESS_UNPACKING, d->size, d->size);
    rc = img_layer_ensure(c->st, d->digest, d->media_type, diff_id, err);
  }
  if (rc < 0)
    return rc;
  report(c, d->digest, IMG_PROGRESS_DONE, d->size, d->size);
  return 0;
}

static void *layer_worker(void *arg)
{
  struct pull_ctx *c = arg;
  struct img_reg *r = NULL;
  q_error *err = NULL;
  int rc = c->endpoint ? img_reg_open(c->st, c->ref, c->endpoint, c->auth, &r, &err) : 0;
  while (rc == 0) {
    pthread_mutex_lock(&c->lock);
    size_t i = c->next++;
    bool stop = c->rc < 0 || i >= c->m->n_layers;
    pthread_mutex_unlock(&c->lock);
    if (stop)
      break;
    rc = do_layer(c, r, &c->m->layers[i], &err);
  }
  img_reg_close(r);
  if (rc < 0) {
    pthread_mutex_lock(&c->lock);
    if (c->rc == 0) {
      c->rc = rc;
      c->err = err;
      err = NULL;
    }
    pthread_mutex_unlock(&c->lock);
  }
  q_error_free(&err);
  return NULL;
}

/* Runs the layer workers; used by pull with a registry and by import
 * (endpoint NULL: blobs are already in the store). */
static int fetch_layers(img_store *st, const img_ref *ref, const char *endpoint,
                        const struct img_auth *auth, struct img_manifest *m,
                        const struct img_pull_opts *po, q_error **err)
{
  struct pull_ctx c = {.st = st,
                       .ref = ref,
                       .endpoint = endpoint,
                       .auth = auth,
                       .m = m,
                       .progress = po ? po->progress : NULL,
                       .parg = po ? po->progress_arg : NULL};
  pthread_mutex_init(&c.lock, NULL);
  for (size_t i = 0; i < m->n_layers; i++)
    report(&c, m->layers[i].digest, IMG_PROGRESS_WAITING, 0, m->layers[i].size);
  size_t nt = m->n_layers < (size_t)st->max_parallel ? m->n_layers : (size_t)st->max_parallel;
  pthread_t th[64];
  size_t started = 0;
  for (size_t i = 0; i < nt && i < Q_ARRAY_SIZE(th); i++)
    if (pthread_create(&th[i], NULL, layer_worker, &c) == 0)
      started++;
  if (started == 0 && m->n_layers > 0)
    layer_worker(&c);
  for (size_t i = 0; i < started; i++)
    pthread_join(th[i], NULL);
  pthread_mutex_destroy(&c.lock);
  if (c.rc < 0) {
    if (err)
      *err = c.err;
    else
      q_error_free(&c.err);
  }
  return c.rc;
}

static int check_config(const char *body, size_t len, struct img_manifest *m, q_error **err)
{
  json_error_t je;
  json_t *j = json_loadb(body, len, 0, &je);
  if (!j)
    return img_error(err, EBADMSG, "image config %s is not JSON: %s", m->config.digest, je.text);
  json_t *ids = json_object_get(json_object_get(j, "rootfs"), "diff_ids");
  int rc = 0;
  if (!json_is_array(ids) || json_array_size(ids) != m->n_layers)
    rc = img_error(err, EBADMSG, "image config lists %zu layers, the manifest %zu",
                   json_array_size(ids), m->n_layers);
  for (size_t i = 0; rc == 0 && i < m->n_layers; i++) {
    const char *d = json_string_value(json_array_get(ids, i));
    if (!d || !img_valid_digest(d))
      rc = img_error(err, EBADMSG, "image config: diff_ids[%zu] is not a sha256 digest", i);
  }
  if (rc == 0 && !(m->diff_ids = img_strv_from_json(ids)))
    rc = q_error_make(err, ENOMEM, "config");
  json_decref(j);
  return rc;
}

/* Everything after the manifest is known: config, layers, record. */
int img_commit_manifest(img_store *st, const img_ref *ref, const char *endpoint,
                        const struct img_auth *auth, const char *mbody, size_t mlen,
                        const char *mdigest, struct img_manifest *m, const char *top_digest,
                        const char *const *extra, size_t n_extra, const struct img_pull_opts *po,
                        char **image_id, q_error **err);

int img_commit_manifest(img_store *st, const img_ref *ref, const char *endpoint,
                        const struct img_auth *auth, const char *mbody, size_t mlen,
                        const char *mdigest, struct img_manifest *m, const char *top_digest,
                        const char *const *extra, size_t n_extra, const struct img_pull_opts *po,
                        char **image_id, q_error **err)
{
  int rc;
  char *cfg = NULL;
  size_t cfg_len = 0;
  q_cleanup_free char *key = NULL;
  if (asprintf(&key, "blob:%s", m->config.digest) < 0)
    return q_error_make(err, ENOMEM, "config");
  bool mine = false;
  while (!img_blob_exists(st, m->config.digest) && endpoint && !(mine = img_flight_begin(st, key)))
    ;
  if (img_blob_exists(st, m->config.digest)) {
    rc = img_blob_read(st, m->config.digest, IMG_MAX_CONFIG, &cfg, &cfg_len, err);
  } else if (endpoint) {
    struct img_reg *r = NULL;
    rc = img_reg_open(st, ref, endpoint, auth, &r, err);
    if (rc == 0)
      rc = img_reg_get_blob_mem(r, m->config.digest, IMG_MAX_CONFIG, &cfg, &cfg_len, err);
    img_reg_close(r);
    if (rc == 0)
      rc = img_blob_put(st, m->config.digest, cfg, cfg_len, err);
  } else {
    rc = q_error_make(err, ENOENT, "config blob %s missing", m->config.digest);
  }
  if (mine)
    img_flight_end(st, key);
  if (rc == 0)
    rc = check_config(cfg, cfg_len, m, err);
  free(cfg);
  if (rc < 0)
    return rc;
  rc = fetch_layers(st, ref, endpoint, auth, m, po, err);
  if (rc < 0)
    return rc;
  rc = img_blob_put(st, mdigest, mbody, mlen, err);
  if (rc < 0)
    return rc;
  const char **layers = calloc(m->n_layers + 1, sizeof(char *));
  const char **types = calloc(m->n_layers + 1, sizeof(char *));
  uint64_t size = (uint64_t)m->config.size;
  for (size_t i = 0; layers && types && i < m->n_layers; i++) {
    layers[i] = m->layers[i].digest;
    types[i] = m->layers[i].media_type;
    size += (uint64_t)m->layers[i].size;
  }
  q_cleanup_free char *name = ref ? img_ref_name(ref) : NULL;
  q_cleanup_free char *tag = NULL, *dig = NULL;
  if (name && ref->tag && asprintf(&tag, "%s:%s", name, ref->tag) < 0)
    tag = NULL;
  if (name && top_digest && asprintf(&dig, "%s@%s", name, top_digest) < 0)
    dig = NULL;
  struct img_record_in in = {.config_digest = m->config.digest,
                             .manifest_digest = mdigest,
                             .repo_tag = tag,
                             .repo_digest = dig,
                             .layers = layers,
                             .layer_types = types,
                             .n_layers = m->n_layers,
                             .size = size,
                             .extra_blobs = extra,
                             .n_extra = n_extra};
  rc = layers && types ? img_record_commit(st, &in, err) : q_error_make(err, ENOMEM, "record");
  free(layers);
  free(types);
  if (rc == 0 && image_id)
    *image_id = strdup(m->config.digest);
  return rc;
}

/* One endpoint. *resolved tells whether the manifest was found there: only
 * failures before that point move on to the next endpoint. */
static int pull_from(img_store *st, const img_ref *ref, const char *endpoint,
                     const struct img_pull_opts *po, char **image_id, bool *resolved, q_error **err)
{
  const struct img_auth *auth = po ? po->auth : NULL;
  struct img_reg *r = NULL;
  *resolved = false;
  int rc = img_reg_open(st, ref, endpoint, auth, &r, err);
  if (rc < 0)
    return rc;
  char *body = NULL, *hdr_mt = NULL, *top = NULL, *mt = NULL;
  char *ibody = NULL, *itop = NULL;
  size_t len = 0, ilen = 0;
  struct img_manifest m = {0};
  rc = img_reg_get_manifest(r, ref->digest ? ref->digest : ref->tag, &body, &len, &hdr_mt, &top,
                            err);
  if (rc < 0)
    goto out;
  mt = img_manifest_media_type(hdr_mt, body, len);
  if (img_is_index_type(mt)) {
    char *sel = NULL, *sel_mt = NULL;
    rc = img_index_select(body, len, &sel, &sel_mt, err);
    free(sel_mt);
    if (rc < 0)
      goto out;
    ibody = body, ilen = len, itop = top;
    body = NULL, top = NULL;
    free(hdr_mt);
    free(mt);
    hdr_mt = mt = NULL;
    rc = img_reg_get_manifest(r, sel, &body, &len, &hdr_mt, &top, err);
    free(sel);
    if (rc < 0)
      goto out;
    mt = img_manifest_media_type(hdr_mt, body, len);
  }
  rc = img_manifest_parse(body, len, mt, &m, err);
  if (rc < 0)
    goto out;
  *resolved = true;
  img_reg_close(r);
  r = NULL;
  if (ibody) {
    rc = img_blob_put(st, itop, ibody, ilen, err);
    if (rc < 0)
      goto out;
  }
  const char *extra[1] = {itop};
  rc = img_commit_manifest(st, ref, endpoint, auth, body, len, top, &m, itop ? itop : top, extra,
                           itop ? 1 : 0, po, image_id, err);
out:
  img_reg_close(r);
  img_manifest_free(&m);
  free(body);
  free(hdr_mt);
  free(top);
  free(mt);
  free(ibody);
  free(itop);
  return rc;
}

/* ---- progress published for other processes ---- */

struct tracker {
  const struct img_pull_opts *user;
  char *path;
  char *ref;
  json_t *layers; /* digest -> {state, done, total}, in first-seen order */
  int64_t last_write;
};

static const char *const state_names[] = {"resolving", "waiting", "downloading",
                                          "unpacking", "done",    "exists"};

static void track(void *arg, const char *digest, enum img_progress_state s, int64_t done,
                  int64_t total)
{
  struct tracker *t = arg;
  if (t->user && t->user->progress)
    t->user->progress(t->user->progress_arg, digest, s, done, total);
  if (!digest || !t->layers)
    return;
  json_t *l = json_object_get(t->layers, digest);
  const char *old = json_string_value(json_object_get(l, "state"));
  bool changed = !old || strcmp(old, state_names[s]) != 0;
  json_object_set_new(t->layers, digest,
                      json_pack("{s:s, s:I, s:I}", "state", state_names[s], "done",
                                (json_int_t)done, "total", (json_int_t)total));
  int64_t now = q_mono_ns();
  if (!changed && now - t->last_write < 100000000)
    return;
  t->last_write = now;
  json_t *arr = json_array();
  const char *k;
  json_t *v;
  json_object_foreach(t->layers, k, v)
  {
    json_t *e = json_deep_copy(v);
    json_object_set_new(e, "digest", json_string(k));
    json_array_append_new(arr, e);
  }
  json_t *doc = json_pack("{s:s, s:o}", "ref", t->ref, "layers", arr);
  char *txt = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
  /* Whole-file replace so readers never see half a document; no fsync:
   * progress is worthless after a crash, and fsyncs would slow the pull. */
  char *tmp = NULL;
  if (txt &&
      asprintf(&tmp, "%s.%d.%lx", t->path, (int)getpid(), (unsigned long)pthread_self()) >= 0) {
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      bool ok = q_write_all(fd, txt, strlen(txt)) >= 0;
      close(fd);
      if (!ok || rename(tmp, t->path) < 0)
        unlink(tmp);
    }
  }
  free(tmp);
  free(txt);
  json_decref(doc);
}

char *img_pull_progress_path(const char *root, const char *refstr)
{
  img_ref ref;
  if (img_ref_parse(refstr, &ref, NULL) < 0)
    return NULL;
  char *full = img_ref_string(&ref);
  img_ref_free(&ref);
  if (!full)
    return NULL;
  char d[72];
  img_sha256_hex(full, strlen(full), d);
  free(full);
  char *p = NULL;
  if (asprintf(&p, "%s/pulls/%.32s.json", root, d + 7) < 0)
    return NULL;
  return p;
}

int img_pull(img_store *st, const char *refstr, const struct img_pull_opts *user_po,
             char **image_id, q_error **err)
{
  struct tracker tr = {
      .user = user_po, .path = img_pull_progress_path(st->root, refstr), .layers = json_object()};
  struct img_pull_opts po_local = {
      .auth = user_po ? user_po->auth : NULL, .progress = track, .progress_arg = &tr};
  const struct img_pull_opts *po = tr.path && tr.layers ? &po_local : user_po;
  img_ref ref;
  int rc = img_ref_parse(refstr, &ref, err);
  if (rc < 0) {
    free(tr.path);
    json_decref(tr.layers);
    return rc;
  }
  q_cleanup_free char *full = img_ref_string(&ref);
  tr.ref = full;
  char **eps = NULL;
  rc = img_reg_endpoints(st, ref.domain, &eps, err);
  int lfd = rc < 0 ? rc : img_store_lock(st, "pull", false, true);
  if (lfd < 0) {
    if (rc == 0)
      rc = q_error_make(err, -lfd, "lock image store");
    img_strv_free(eps);
    img_ref_free(&ref);
    free(tr.path);
    json_decref(tr.layers);
    return rc;
  }
  if (po && po->progress)
    po->progress(po->progress_arg, NULL, IMG_PROGRESS_RESOLVING, 0, 0);
  int64_t t0 = q_mono_ns();
  char *msgs = NULL;
  int missing = 0; /* an endpoint said the image is not there */
  for (char **ep = eps; *ep; ep++) {
    q_error *e = NULL;
    bool resolved = false;
    rc = pull_from(st, &ref, *ep, po, image_id, &resolved, &e);
    if (rc == 0 || resolved) {
      if (rc < 0) {
        free(msgs);
        msgs = NULL;
        if (asprintf(&msgs, "%s: %s", *ep, q_error_msg(e)) < 0)
          msgs = NULL;
      }
      q_error_free(&e);
      break;
    }
    q_debug(NULL, "pull %s from %s: %s", full, *ep, q_error_msg(e));
    if (rc == -ENOENT)
      missing = rc;
    char *nm = NULL;
    if (asprintf(&nm, "%s%s%s: %s", msgs ? msgs : "", msgs ? "; " : "", *ep, q_error_msg(e)) >= 0) {
      free(msgs);
      msgs = nm;
    }
    q_error_free(&e);
  }
  close(lfd);
  if (rc < 0 && missing)
    rc = missing;
  if (rc < 0)
    img_error(err, -rc, "pull %s: %s", full ? full : refstr, msgs ? msgs : "failed");
  else
    q_debug(NULL, "pulled %s in %.3f s", full, (double)(q_mono_ns() - t0) / 1e9);
  free(msgs);
  img_strv_free(eps);
  img_ref_free(&ref);
  if (tr.path)
    unlink(tr.path);
  free(tr.path);
  json_decref(tr.layers);
  img_gc_maybe(st);
  return rc;
}
