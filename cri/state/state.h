/* quarkd's state store: the pods and containers quarkd knows, with the CRI
 * state machines, persisted under StateRoot so that a restarted quarkd
 * reports the same pods and containers (ARCHITECTURE "Sandboxes outlive
 * quarkd"). Prefix: cri_state_, cri_pod_, cri_ctr_.
 *
 * Layout on disk: <root>/pods/<id>.json, <root>/containers/<id>.json,
 * <root>/runtime.json. Every write is q_write_file_atomic (temp file, fsync,
 * rename, fsync dir), so a crash leaves either the old or the new record;
 * leftover "*.tmp.*" files are removed at open and anything else that is not
 * "<64 hex>.json" is ignored with a warning.
 *
 * Concurrency: one mutex guards the store; every call is atomic with respect
 * to the others, and records handed out are deep copies the caller frees
 * (cri_pod_free / cri_ctr_free). Mutations go through cri_state_*_update,
 * which applies a caller function under the lock and persists the result
 * before it becomes visible.
 *
 * Extension: each record carries `ext`, a JSON object persisted as is, for
 * the data later modules attach (sandbox control socket, netns path, pod
 * IPs, container pid in the guest) without changing this schema.
 */
#ifndef QUARK_CRI_STATE_H
#define QUARK_CRI_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quark/common.h"

/* Values equal the CRI enums (runtime.v1.PodSandboxState / ContainerState). */
enum cri_pod_state { CRI_POD_READY = 0, CRI_POD_NOTREADY = 1 };
enum cri_ctr_state {
  CRI_CTR_CREATED = 0,
  CRI_CTR_RUNNING = 1,
  CRI_CTR_EXITED = 2,
  CRI_CTR_UNKNOWN = 3
};

struct cri_kv {
  char *key;
  char *value;
};

struct cri_kvs {
  struct cri_kv *v;
  size_t n;
};

struct cri_pod {
  char id[65];
  char *name, *uid, *ns; /* PodSandboxMetadata */
  uint32_t attempt;
  enum cri_pod_state state;
  int64_t created_at; /* ns since the epoch */
  struct cri_kvs labels, annotations;
  char *runtime_handler;
  char *hostname, *log_directory;
  json_t *ext; /* owned; a JSON object, never NULL in the store */
};

struct cri_ctr {
  char id[65];
  char pod_id[65];
  char *name; /* ContainerMetadata */
  uint32_t attempt;
  enum cri_ctr_state state;
  int64_t created_at, started_at, finished_at;
  int32_t exit_code;
  char *image, *image_ref, *image_id;
  char *reason, *message, *log_path;
  struct cri_kvs labels, annotations;
  json_t *ext;
};

/* CRI filters; NULL/empty fields match everything. `id` and `pod_id` match
 * as prefixes of the full id (the way crictl passes truncated ids);
 * every label_selector pair must be present with an equal value. */
struct cri_pod_filter {
  const char *id;
  bool has_state;
  enum cri_pod_state state;
  const struct cri_kvs *label_selector;
};

struct cri_ctr_filter {
  const char *id;
  const char *pod_id;
  bool has_state;
  enum cri_ctr_state state;
  const struct cri_kvs *label_selector;
};

struct cri_state;

/* Creates the directories and loads every record. A record that fails to
 * parse is logged and skipped (quarkd still starts). */
int cri_state_open(const char *root, struct cri_state **out, q_error **err);
void cri_state_close(struct cri_state *st);
const char *cri_state_root(const struct cri_state *st);

/* Valid ids are exactly 64 lowercase hex characters. */
bool cri_state_valid_id(const char *id);
/* Finds the full id for an id or a unique prefix: 0, -ENOENT, or -EEXIST
 * when the prefix matches more than one record. */
int cri_state_resolve_pod(struct cri_state *st, const char *id_or_prefix, char out[65]);
int cri_state_resolve_ctr(struct cri_state *st, const char *id_or_prefix, char out[65]);

/* Adds a new record (a copy of *pod; pod->id must be a valid id not in use:
 * -EEXIST otherwise). Written before it returns (a kill -9 of quarkd keeps
 * it) but not synced: the caller makes it durable with an update before a
 * client hears of it (store.c "Durability"). */
int cri_state_add_pod(struct cri_state *st, const struct cri_pod *pod, q_error **err);
int cri_state_add_ctr(struct cri_state *st, const struct cri_ctr *ctr, q_error **err);

/* Applies fn to the stored record under the lock; when fn returns 0 the new
 * record is persisted (on a write error the old one is restored), and a
 * negative return leaves the record unchanged and is passed through. fn must
 * not change the id. Durable (fsync of the file and its directory) before it
 * returns. */
int cri_state_update_pod(struct cri_state *st, const char *id,
                         int (*fn)(struct cri_pod *pod, void *arg), void *arg, q_error **err);
int cri_state_update_ctr(struct cri_state *st, const char *id,
                         int (*fn)(struct cri_ctr *ctr, void *arg), void *arg, q_error **err);
/* cri_state_update_pod without the sync (like add): for a step that the
 * caller follows with a durable update before it answers. */
int cri_state_stage_pod(struct cri_state *st, const char *id,
                        int (*fn)(struct cri_pod *pod, void *arg), void *arg, q_error **err);

/* Removes the record and its file; a missing id is success (CRI removals are
 * idempotent). */
int cri_state_remove_pod(struct cri_state *st, const char *id, q_error **err);
int cri_state_remove_ctr(struct cri_state *st, const char *id, q_error **err);

/* Deep copies: -ENOENT when absent. */
int cri_state_get_pod(struct cri_state *st, const char *id, struct cri_pod **out);
int cri_state_get_ctr(struct cri_state *st, const char *id, struct cri_ctr **out);

/* Matching records, deep-copied, ordered by creation time then id. Free with
 * cri_pod_list_free / cri_ctr_list_free. */
int cri_state_list_pods(struct cri_state *st, const struct cri_pod_filter *f, struct cri_pod ***out,
                        size_t *n);
int cri_state_list_ctrs(struct cri_state *st, const struct cri_ctr_filter *f, struct cri_ctr ***out,
                        size_t *n);

/* Runtime-wide values set by UpdateRuntimeConfig (persisted in runtime.json).
 * get returns a malloc'd copy ("" when unset). */
int cri_state_set_pod_cidr(struct cri_state *st, const char *cidr, q_error **err);
char *cri_state_get_pod_cidr(struct cri_state *st);

void cri_pod_free(struct cri_pod *pod);
void cri_ctr_free(struct cri_ctr *ctr);
void cri_pod_list_free(struct cri_pod **v, size_t n);
void cri_ctr_list_free(struct cri_ctr **v, size_t n);

/* Helpers for callers that build records. */
int cri_kvs_set(struct cri_kvs *kvs, const char *key, const char *value);
const char *cri_kvs_get(const struct cri_kvs *kvs, const char *key);
void cri_kvs_clear(struct cri_kvs *kvs);

#endif
