/* Image store: pulls OCI and Docker images from registries (distribution API
 * v2) into a content store verified by digest, unpacks their layers for
 * overlayfs, and builds container root filesystems from them. Prefix: img_.
 *
 * Contract:
 * - One img_store per image root. Every function is thread-safe. Several
 *   processes (quarkd and the `quark` CLI) may open the same root: blobs,
 *   layers and records become visible with rename(2), record changes and
 *   garbage collection take an flock on <root>/lock.
 * - The on-disk records are the truth; nothing is cached that another
 *   process could change, so an image imported by the CLI is listed by the
 *   daemon at once.
 * - A blob is visible under <root>/blobs/sha256/ only after its bytes hashed
 *   to its digest; an unpacked layer under <root>/layers/sha256/ only after
 *   every entry was written. Anything half-done lives under <root>/tmp and is
 *   removed by img_store_open, so a process killed mid-pull leaves the store
 *   consistent.
 * - Errors: negative errno plus a q_error naming the image, the blob or the
 *   tar entry. -ENOENT: no such image; -EBUSY: image in use by a container.
 */
#ifndef QUARK_IMAGE_H
#define QUARK_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <quark/common.h>

typedef struct img_store img_store;

/* A registry host and the endpoints that serve it, tried in order before the
 * host itself. Endpoints are URLs ("http://127.0.0.1:5000",
 * "https://mirror.example"); an http:// endpoint is used only when its
 * host[:port] is listed as insecure. */
struct img_mirror {
  const char *host; /* "docker.io", "registry.k8s.io" */
  const char *const *endpoints;
  size_t n_endpoints;
};

struct img_store_opts {
  const char *root; /* e.g. /var/lib/quark/images */
  const struct img_mirror *mirrors;
  size_t n_mirrors;
  const char *const *insecure; /* host[:port] reached over plain HTTP */
  size_t n_insecure;
  long connect_timeout_s;       /* 0: 10 s */
  long stall_timeout_s;         /* a transfer slower than 1 byte/s this long fails; 0: 30 s */
  int max_retries;              /* on 5xx and connection errors; 0: 3, -1: none */
  int max_parallel_layers;      /* 0: 4 */
  int64_t max_recv_bytes_per_s; /* per transfer; 0: unlimited (tests use it to slow a pull) */
};

/* Opens (creating if needed) the store at opts->root and removes what a
 * killed pull left behind. opts is copied. */
int img_store_open(const struct img_store_opts *opts, img_store **out, q_error **err);
void img_store_close(img_store *st);
const char *img_store_root(const img_store *st);

/* ---- references ---- */

/* A normalized image reference, like kubelet and crictl write them:
 * "busybox" -> domain "docker.io", path "library/busybox", tag "latest". */
typedef struct img_ref {
  char *domain;
  char *path;
  char *tag;    /* NULL when the reference has only a digest */
  char *digest; /* "sha256:<64 hex>" or NULL */
} img_ref;

int img_ref_parse(const char *s, img_ref *out, q_error **err);
void img_ref_free(img_ref *ref);
/* "docker.io/library/busybox:latest", or "...@sha256:..." when there is no
 * tag. Caller frees. */
char *img_ref_string(const img_ref *ref);

/* ---- pulling ---- */

/* Credentials, as in the CRI AuthConfig. auth is base64("user:password"). */
struct img_auth {
  const char *username;
  const char *password;
  const char *auth;
  const char *identity_token; /* OAuth2 refresh token for the token server */
  const char *registry_token; /* bearer token sent as is */
};

enum img_progress_state {
  IMG_PROGRESS_RESOLVING, /* digest NULL: resolving the reference */
  IMG_PROGRESS_WAITING,   /* queued, or waiting on another pull of the same blob */
  IMG_PROGRESS_DOWNLOADING,
  IMG_PROGRESS_UNPACKING,
  IMG_PROGRESS_DONE,
  IMG_PROGRESS_EXISTS, /* already in the store */
};

/* Called from worker threads, never two at once for one pull. */
typedef void (*img_progress_fn)(void *arg, const char *digest, enum img_progress_state state,
                                int64_t done, int64_t total);

struct img_pull_opts {
  const struct img_auth *auth; /* NULL: anonymous */
  img_progress_fn progress;    /* may be NULL */
  void *progress_arg;
};

/* Pulls ref (normalized first) for linux/amd64. On success *image_id (when
 * not NULL) is the image id "sha256:<config digest>"; caller frees. A pull
 * of an image or blob that another thread is already pulling waits for it
 * and shares the result. */
int img_pull(img_store *st, const char *ref, const struct img_pull_opts *opts, char **image_id,
             q_error **err);

/* Every pull also publishes its progress, for other processes (the `quark
 * pull` progress bars while quarkd pulls), in the JSON file this returns
 * (caller frees): {"ref": "...", "layers": [{"digest": "...", "state":
 * "waiting|downloading|unpacking|done|exists", "done": N, "total": N}]}.
 * It is rewritten at most every 100 ms and removed when the pull ends. The
 * name depends only on the normalized reference; NULL for a bad reference. */
char *img_pull_progress_path(const char *root, const char *ref);

/* Imports every image of an OCI layout archive (a tar of an OCI image layout,
 * as `skopeo copy ... oci-archive:FILE` writes it). Images are tagged with
 * their org.opencontainers.image.ref.name annotation: a full reference is
 * used as is, a bare tag ("latest") becomes "<name>:<tag>" when name is not
 * NULL. *ids gets the imported image ids (NULL-terminated); caller frees with
 * img_strv_free. */
int img_import(img_store *st, const char *archive_path, const char *name, char ***ids,
               q_error **err);

/* ---- images ---- */

typedef struct img_kv {
  char *key;
  char *value;
} img_kv;

/* The parts of the image config (OCI image spec "config") that CreateContainer needs. */
typedef struct img_config {
  char *user;           /* may be NULL */
  char **env;           /* NULL-terminated, "K=V" */
  char **entrypoint;    /* NULL-terminated, or NULL */
  char **cmd;           /* NULL-terminated, or NULL */
  char *working_dir;    /* may be NULL */
  char **exposed_ports; /* NULL-terminated "80/tcp", or NULL */
  img_kv *labels;
  size_t n_labels;
  char *stop_signal; /* may be NULL */
} img_config;

typedef struct img_info {
  char *id;              /* "sha256:<config digest>" */
  char **repo_tags;      /* NULL-terminated */
  char **repo_digests;   /* NULL-terminated "name@sha256:..." */
  uint64_t size;         /* bytes of config + compressed layers */
  char *manifest_digest; /* the image manifest (for linux/amd64) */
  char **layers;         /* NULL-terminated layer blob digests, bottom first */
  int64_t pulled_ns;
  char *os, *architecture;
  img_config config;
  char *config_json; /* the raw config blob (ImageStatus verbose info) */
} img_info;

void img_info_free(img_info *info);
void img_infov_free(img_info **v, size_t n);
void img_strv_free(char **v);

/* Finds an image by id ("sha256:<hex>", "<hex>", or an unambiguous hex
 * prefix of at least 4), by tag or by repo digest. -ENOENT when absent. */
int img_status(img_store *st, const char *ref_or_id, img_info **out, q_error **err);
/* All images, oldest pull first. */
int img_list(img_store *st, img_info ***out, size_t *n, q_error **err);
/* Removes the image record and garbage-collects its blobs and unpacked
 * layers that no other image uses. -ENOENT when absent; -EBUSY (naming the
 * container) while a container root filesystem uses it. When ref_or_id is a
 * tag of an image with other tags, only that tag goes. */
int img_remove(img_store *st, const char *ref_or_id, q_error **err);

struct img_fs_usage {
  uint64_t used_bytes;
  uint64_t inodes_used;
  int64_t timestamp_ns;
};
int img_fs_info(img_store *st, struct img_fs_usage *out, q_error **err);

/* ---- container root filesystems ---- */

/* Mounts an overlayfs at dest_dir (created if missing), nodev and nosuid,
 * with the image's unpacked layers as lowerdirs and
 * <root>/containers/<container_id>/{upper,work} as the writable part. The image stays in use
 * (img_remove fails with -EBUSY) until img_rootfs_remove. -EEXIST when container_id already has a
 * root filesystem. <root>/containers/<container_id>/upper is the container's
 * writable layer (its disk usage is the container's). */
int img_rootfs_create(img_store *st, const char *ref_or_id, const char *container_id,
                      const char *dest_dir, q_error **err);
/* Unmounts and deletes the container's writable layer. A container without
 * a root filesystem is success. */
int img_rootfs_remove(img_store *st, const char *container_id, q_error **err);
/* img_rootfs_remove for every root filesystem whose record says it was
 * mounted under dest_prefix and whose id known() does not know: one
 * quarkd's leftovers (its run root) after a crash; other users of the store
 * mount elsewhere and are never touched. Directories without a record are
 * left alone. Returns how many were removed, or a negative errno. */
int img_rootfs_sweep(img_store *st, const char *dest_prefix,
                     bool (*known)(const char *cid, void *arg), void *arg, q_error **err);

/* ---- building blocks, exported for tests and `quark import` ---- */

/* Unpacks one layer tar (plain, gzip or zstd, detected from the bytes) from
 * path into the empty directory dest_dir: whiteouts become overlayfs
 * whiteouts (0/0 character devices) and opaque directories
 * (trusted.overlay.opaque=y). Entries with "..", absolute names or a path
 * through a symlink are refused: the error names the entry. */
int img_unpack_layer(const char *path, const char *dest_dir, q_error **err);

#endif
