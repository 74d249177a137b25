/* Internal interfaces of the image module, shared by its .c files only. */
#ifndef QUARK_IMAGE_INTERNAL_H
#define QUARK_IMAGE_INTERNAL_H

#include "image.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>

/* Media types we read. */
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"

#define IMG_MAX_MANIFEST (4 << 20)
#define IMG_MAX_CONFIG (8 << 20)

struct img_token {
  char *key; /* realm|service|scope|user */
  char *token;
  int64_t expires_mono_ns;
};

/* One in-flight piece of work (a blob download or a layer unpack) that other
 * threads wait on instead of doing it twice. */
struct img_flight {
  char *key;
  int waiters;
  bool done;
  struct img_flight *next;
};

struct img_store {
  char *root;
  char **mirror_hosts;      /* parallel arrays */
  char ***mirror_endpoints; /* NULL-terminated per host */
  size_t n_mirrors;
  char **insecure; /* NULL-terminated */
  long connect_timeout_s, stall_timeout_s;
  int max_retries, max_parallel;
  int64_t max_recv_bps;

  pthread_mutex_t lock; /* flights, tokens */
  pthread_cond_t flight_cond;
  struct img_flight *flights;
  int trash_running; /* GC deletion threads; close waits for them */
  struct img_token *tokens;
  size_t n_tokens;
};

/* ref.c */
bool img_valid_digest(const char *d);
char *img_ref_name(const img_ref *ref);

/* store.c */
char *img_blob_path(const img_store *st, const char *digest);
char *img_layer_path(const img_store *st, const char *digest);
/* A fresh path under <root>/tmp (not created). */
char *img_tmp_path(const img_store *st, const char *what);
bool img_blob_exists(const img_store *st, const char *digest);
/* Writes bytes that already hashed to digest as a blob (temp + fsync + rename). */
int img_blob_put(img_store *st, const char *digest, const void *data, size_t len, q_error **err);
int img_blob_read(img_store *st, const char *digest, size_t max, char **out, size_t *len,
                  q_error **err);
/* Exclusive in-process claim on key: returns 1 when the caller must do the
 * work (then img_flight_end), 0 after another thread finished it. */
int img_flight_begin(img_store *st, const char *key);
void img_flight_end(img_store *st, const char *key);

/* A record of one pulled/imported image. */
struct img_record_in {
  const char *config_digest;
  const char *manifest_digest;
  const char *repo_tag;      /* may be NULL */
  const char *repo_digest;   /* may be NULL */
  const char *const *layers; /* blob digests, bottom first */
  const char *const *layer_types;
  size_t n_layers;
  uint64_t size;
  const char *const *extra_blobs; /* index/list blobs kept with the image */
  size_t n_extra;
};
int img_record_commit(img_store *st, const struct img_record_in *in, q_error **err);
/* Runs garbage collection now if no pull or import holds the store (in any
 * process), else leaves a mark that the end of the next pull or open acts on. */
void img_gc_maybe(img_store *st);
/* Lock files: "pull" is held shared by every pull and import for its whole
 * run and exclusive by GC; "records" exclusive around record changes.
 * Returns the fd to close, or -errno (-EWOULDBLOCK when !wait and busy). */
int img_store_lock(img_store *st, const char *which, bool exclusive, bool wait);

/* The id of a container whose root filesystem uses image id, or NULL. */
char *img_container_using(img_store *st, const char *id);
/* Like q_error_make without the strerror suffix, for messages that already
 * say what went wrong. */
int img_error(q_error **err, int status, const char *fmt, ...) Q_PRINTF(3, 4);

/* layer.c: fetch-independent part of bringing a layer in: unpack the blob
 * into layers/sha256/<hex> unless it is there. */
int img_layer_ensure(img_store *st, const char *digest, const char *media_type, const char *diff_id,
                     q_error **err);
/* img_unpack_layer that also hashes the uncompressed stream: *diff_id gets
 * "sha256:<hex>" (when not NULL). Reads path, or fd when path is NULL. */
int img_unpack_layer_diffid(const char *path, int fd, const char *dest_dir, char diff_id[72],
                            q_error **err);
/* Brings in a layer whose blob is not in the store yet, unpacking while it
 * downloads: fetch(arg, tee_fd, &complete, err) must download the blob into
 * the store (img_reg_fetch_blob). When the stream was not complete (the
 * download restarted, or another thread had the blob) it unpacks from the
 * stored blob instead. */
typedef int (*img_fetch_fn)(void *arg, int tee_fd, bool *complete, q_error **err);
int img_layer_ensure_streamed(img_store *st, const char *digest, const char *media_type,
                              const char *diff_id, img_fetch_fn fetch, void *arg, q_error **err);
bool img_layer_media_type_ok(const char *mt);

/* registry.c */
struct img_reg; /* one endpoint + repository, with auth state */
int img_reg_open(img_store *st, const img_ref *ref, const char *endpoint,
                 const struct img_auth *auth, struct img_reg **out, q_error **err);
void img_reg_close(struct img_reg *r);
const char *img_reg_endpoint(const struct img_reg *r);
/* Warns (once, at open) about mirrors that will never be used. */
void img_reg_check_mirrors(const img_store *st);
/* The endpoints to try for a registry host, mirrors first. Caller frees with img_strv_free. */
int img_reg_endpoints(img_store *st, const char *host, char ***out, q_error **err);
/* GET a manifest by tag or digest; *body is verified against the digest when
 * ref_digest is given, else against Docker-Content-Digest when sent. */
int img_reg_get_manifest(struct img_reg *r, const char *tag_or_digest, char **body, size_t *len,
                         char **media_type, char **digest, q_error **err);
/* Downloads a blob into the store, verified. progress may be NULL. With
 * tee_fd >= 0 (a stream socket) the body is also sent there as it arrives;
 * *tee_complete then says whether the socket got exactly the whole blob
 * (not when its reader went away or the body had to start over). */
typedef void (*img_reg_progress)(void *arg, int64_t done, int64_t total);
int img_reg_fetch_blob(struct img_reg *r, const char *digest, int64_t size,
                       img_reg_progress progress, void *arg, int tee_fd, bool *tee_complete,
                       q_error **err);
/* A blob small enough to keep in memory (config). Verified. */
int img_reg_get_blob_mem(struct img_reg *r, const char *digest, size_t max, char **body,
                         size_t *len, q_error **err);

/* util */
void img_sha256_hex(const void *data, size_t len, char out[72]); /* "sha256:<hex>" */
char **img_strv_from_json(json_t *arr);
char **img_strv_dup(const char *const *v, size_t n);
size_t img_strv_len(char *const *v);

/* pull.c, used by import too: reads a manifest (Docker schema2 or OCI)
 * into its config and layer descriptors. */
struct img_desc {
  char *media_type;
  char *digest;
  int64_t size;
};
struct img_manifest {
  struct img_desc config;
  struct img_desc *layers;
  size_t n_layers;
  char **diff_ids; /* from the config, filled in by the pull; may be NULL */
};
int img_manifest_parse(const char *body, size_t len, const char *media_type, struct img_manifest *m,
                       q_error **err);
void img_manifest_free(struct img_manifest *m);
/* Picks the linux/amd64 manifest of an index / manifest list: its digest. */
int img_index_select(const char *body, size_t len, char **digest, char **media_type, q_error **err);
/* The media type of a manifest document: header value, else its mediaType
 * field, else guessed from its shape. */
char *img_manifest_media_type(const char *hdr_type, const char *body, size_t len);
bool img_is_index_type(const char *mt);
#endif
