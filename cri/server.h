/* quarkd's CRI server: internal API shared by the RPC handler files
 * (runtime_rpc.c, image_rpc.c, and the pod/container work that follows).
 * Prefix: cri_.
 *
 * Model. The server listens on one unix socket with grpc C core. Every RPC of
 * runtime.v1.RuntimeService and runtime.v1.ImageService has a slot in the
 * method table, built from the protobuf-c service descriptors, so the table
 * always matches api.proto. A slot without a handler answers UNIMPLEMENTED
 * with a message naming the RPC; so does any method path not in the table.
 *
 * Handler contract (cri_handler_fn):
 * - Called on one of the server's worker threads, possibly concurrently with
 *   any other handler (including itself): handlers lock what they share.
 *   A handler may block (a pull, a VM start); it then holds one worker.
 * - `req` is the decoded request, of the method's input type; it belongs to
 *   the server and is freed after the handler returns: copy what you keep.
 * - On GRPC_STATUS_OK the handler sets *resp to a message of the method's
 *   output type. Allocate it and everything it points to from the call arena
 *   (cri_call_new_msg, cri_call_alloc, cri_call_strdup), or register a
 *   destructor with cri_call_defer; the server frees all of it after the
 *   response is sent. *resp left NULL on OK sends the empty message.
 * - On failure return the gRPC code and set a message with cri_call_error
 *   (which returns the code, so `return cri_call_error(c, GRPC_STATUS_NOT_FOUND,
 *   "pod %s not found", id);` works). *resp is ignored.
 * - Handlers never exit() and never log per request at Info or above.
 *
 * Registration happens before cri_server_start (cri_server_set_handler is
 * not synchronized with the workers).
 */
#ifndef QUARK_CRI_SERVER_H
#define QUARK_CRI_SERVER_H

#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "cri_proto.h" /* messages generated at build time from proto/api.proto */
#include "quark/common.h"
#include "quark/config.h"

struct cri_server;
struct cri_call;
struct cri_state;
struct cri_pods;

typedef grpc_status_code (*cri_handler_fn)(struct cri_call *call, const ProtobufCMessage *req,
                                           ProtobufCMessage **resp);

/* ---- server life cycle (quarkd.c) ---- */

/* Creates the server and its method table; nothing listens yet. `cfg` and
 * `state` must outlive the server. */
int cri_server_new(const struct cri_config *cfg, struct cri_state *state, struct cri_server **out,
                   q_error **err);
/* Binds the socket (cfg->socket; parent directory created, a stale socket
 * replaced, a live one refused with -EADDRINUSE, mode 0660) and starts
 * `workers` threads. */
int cri_server_start(struct cri_server *srv, unsigned workers, q_error **err);
/* Stops accepting calls, lets in-flight calls finish (cancels them after
 * grace_ms), joins the workers and removes the socket file. Idempotent. */
void cri_server_stop(struct cri_server *srv, unsigned grace_ms);
void cri_server_free(struct cri_server *srv);

/* ---- method table ---- */

/* service: "RuntimeService" or "ImageService"; method: "Version"...
 * Returns -ENOENT when the proto has no such RPC. */
int cri_server_set_handler(struct cri_server *srv, const char *service, const char *method,
                           cri_handler_fn fn);
/* Number of RPCs in the table and whether one has a handler, for the
 * support table and tests. */
size_t cri_server_method_count(const struct cri_server *srv);
/* Full path "/runtime.v1.RuntimeService/Version" of entry i, and whether it
 * has a handler. */
const char *cri_server_method_path(const struct cri_server *srv, size_t i, bool *implemented);

/* ---- accessors for handlers ---- */

const struct cri_config *cri_server_config(const struct cri_server *srv);
struct cri_state *cri_server_state(const struct cri_server *srv);
/* One slot for the image service's own context (set by cri_image_init). */
void cri_server_set_image_ctx(struct cri_server *srv, void *ctx);
void *cri_server_image_ctx(const struct cri_server *srv);
/* One slot for the pod/container runtime (pods.h), set by cri_pods_init. */
void cri_server_set_pods_ctx(struct cri_server *srv, struct cri_pods *pods);
struct cri_pods *cri_server_pods_ctx(const struct cri_server *srv);

/* ---- per-call helpers for handlers ---- */

struct cri_server *cri_call_server(const struct cri_call *call);
/* "RuntimeService/Version": for messages. */
const char *cri_call_method(const struct cri_call *call);
/* Zeroed memory freed with the call; NULL only when out of memory. */
void *cri_call_alloc(struct cri_call *call, size_t size);
char *cri_call_strdup(struct cri_call *call, const char *s);
char *cri_call_printf(struct cri_call *call, const char *fmt, ...) Q_PRINTF(2, 3);
/* A message of type d, initialized, from the arena. */
void *cri_call_new_msg(struct cri_call *call, const ProtobufCMessageDescriptor *d);
/* Runs fn(p) after the response is sent (in reverse order of registration). */
int cri_call_defer(struct cri_call *call, void (*fn)(void *), void *p);
/* Sets the status message; returns code. */
grpc_status_code cri_call_error(struct cri_call *call, grpc_status_code code, const char *fmt, ...)
    Q_PRINTF(3, 4);

/* ---- handler sets (each file registers its own) ---- */

/* runtime_rpc.c: Version, Status, RuntimeConfig, UpdateRuntimeConfig and the
 * read-only pod/container queries over the state store. */
int cri_runtime_register(struct cri_server *srv, q_error **err);

/* image_rpc.c: the ImageService. cri_image_init registers its handlers and
 * sets up the image store (cfg->image_root, cfg->registry); quarkd calls it
 * once before cri_server_start and refuses to start when it fails.
 * cri_image_fini runs after cri_server_stop. */
int cri_image_init(struct cri_server *srv, const struct cri_config *cfg, q_error **err);
void cri_image_fini(struct cri_server *srv);

#endif
