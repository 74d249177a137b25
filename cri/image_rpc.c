/* ImageService handlers over the image store (cri/image/image.h). They map
 * the config's Registry section onto the store's options, CRI messages onto
 * store calls, and store errors onto gRPC codes. Kubelet's expectations
 * that shape them: ImageStatus of an absent image is OK with no image;
 * RemoveImage of an absent image is OK; PullImage answers the image id. */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "image.h"
#include "server.h"

struct image_ctx {
  img_store *store;
  struct img_mirror *mirrors;
};

static img_store *store_of(struct cri_call *call)
{
  struct image_ctx *ctx = cri_server_image_ctx(cri_call_server(call));
  return ctx ? ctx->store : NULL;
}

static grpc_status_code code_of(int rc)
{
  switch (-rc) {
  case EINVAL:
    return GRPC_STATUS_INVALID_ARGUMENT;
  case ENOENT:
    return GRPC_STATUS_NOT_FOUND;
  case EBUSY:
    return GRPC_STATUS_FAILED_PRECONDITION;
  case EACCES:
    return GRPC_STATUS_PERMISSION_DENIED;
  case ECONNREFUSED:
  case ETIMEDOUT:
    return GRPC_STATUS_UNAVAILABLE;
  case ENOMEM:
    return GRPC_STATUS_RESOURCE_EXHAUSTED;
  default:
    return GRPC_STATUS_UNKNOWN;
  }
}

static grpc_status_code fail(struct cri_call *call, int rc, q_error *err)
{
  grpc_status_code code = code_of(rc);
  cri_call_error(call, code, "%s", q_error_msg(err));
  q_error_free(&err);
  return code;
}

static grpc_status_code oom(struct cri_call *call)
{
  return cri_call_error(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
}

static const char *spec_image(const Runtime__V1__ImageSpec *spec)
{
  return spec && spec->image && *spec->image ? spec->image : NULL;
}

static char **strv_to_arena(struct cri_call *call, char **v, size_t *n)
{
  *n = 0;
  while (v && v[*n])
    (*n)++;
  char **o = cri_call_alloc(call, (*n + 1) * sizeof(char *));
  for (size_t i = 0; o && i < *n; i++)
    if (!(o[i] = cri_call_strdup(call, v[i])))
      return NULL;
  return o;
}

/* The CRI Image of a store image: uid when the config's user is numeric,
 * username when it is a name (kubelet checks runAsNonRoot with them). */
static Runtime__V1__Image *image_msg(struct cri_call *call, const img_info *in)
{
  Runtime__V1__Image *m = cri_call_new_msg(call, &runtime__v1__image__descriptor);
  if (!m)
    return NULL;
  m->id = cri_call_strdup(call, in->id);
  m->repo_tags = strv_to_arena(call, in->repo_tags, &m->n_repo_tags);
  m->repo_digests = strv_to_arena(call, in->repo_digests, &m->n_repo_digests);
  m->size = in->size;
  m->spec = cri_call_new_msg(call, &runtime__v1__image_spec__descriptor);
  if (!m->id || !m->repo_tags || !m->repo_digests || !m->spec)
    return NULL;
  m->spec->image = m->id;
  const char *user = in->config.user;
  if (user && *user) {
    size_t n = strcspn(user, ":");
    char *name = cri_call_printf(call, "%.*s", (int)n, user);
    char *end = NULL;
    long long uid = name ? strtoll(name, &end, 10) : -1;
    if (name && *name && end && *end == '\0' && uid >= 0) {
      if (!(m->uid = cri_call_new_msg(call, &runtime__v1__int64_value__descriptor)))
        return NULL;
      m->uid->value = uid;
    } else if (name) {
      m->username = name;
    }
  } else {
    if (!(m->uid = cri_call_new_msg(call, &runtime__v1__int64_value__descriptor)))
      return NULL;
    m->uid->value = 0;
  }
  return m;
}

static grpc_status_code pull_image(struct cri_call *call, const ProtobufCMessage *reqm,
                                   ProtobufCMessage **resp)
{
  const Runtime__V1__PullImageRequest *req = (const void *)reqm;
  const char *ref = spec_image(req->image);
  if (!ref)
    return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT, "PullImage: image is required");
  struct img_auth auth = {0};
  const Runtime__V1__AuthConfig *a = req->auth;
  if (a) {
    auth =
        (struct img_auth){a->username, a->password, a->auth, a->identity_token, a->registry_token};
  }
  struct img_pull_opts po = {.auth = a ? &auth : NULL};
  char *id = NULL;
  q_error *err = NULL;
  int rc = img_pull(store_of(call), ref, &po, &id, &err);
  if (rc < 0)
    return fail(call, rc, err);
  Runtime__V1__PullImageResponse *r =
      cri_call_new_msg(call, &runtime__v1__pull_image_response__descriptor);
  if (!r || !(r->image_ref = cri_call_strdup(call, id))) {
    free(id);
    return oom(call);
  }
  free(id);
  *resp = &r->base;
  return GRPC_STATUS_OK;
}

static char *verbose_info(const img_info *in)
{
  json_error_t je;
  json_t *cfg = in->config_json ? json_loads(in->config_json, 0, &je) : NULL;
  json_t *layers = json_array();
  for (char **l = in->layers; l && *l; l++)
    json_array_append_new(layers, json_string(*l));
  char pulled[40];
  q_format_rfc3339nano(in->pulled_ns, pulled);
  json_t *j =
      json_pack("{s:o, s:s, s:o, s:s}", "imageSpec", cfg ? cfg : json_object(), "manifestDigest",
                in->manifest_digest ? in->manifest_digest : "", "layers", layers, "pulled", pulled);
  char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  return s;
}

static grpc_status_code image_status(struct cri_call *call, const ProtobufCMessage *reqm,
                                     ProtobufCMessage **resp)
{
  const Runtime__V1__ImageStatusRequest *req = (const void *)reqm;
  const char *ref = spec_image(req->image);
  if (!ref)
    return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT, "ImageStatus: image is required");
  Runtime__V1__ImageStatusResponse *r =
      cri_call_new_msg(call, &runtime__v1__image_status_response__descriptor);
  if (!r)
    return oom(call);
  img_info *in = NULL;
  q_error *err = NULL;
  int rc = img_status(store_of(call), ref, &in, &err);
  if (rc == -ENOENT) {
    q_error_free(&err);
    *resp = &r->base;
    return GRPC_STATUS_OK;
  }
  if (rc < 0)
    return fail(call, rc, err);
  r->image = image_msg(call, in);
  if (r->image && req->verbose) {
    Runtime__V1__ImageStatusResponse__InfoEntry *e =
        cri_call_new_msg(call, &runtime__v1__image_status_response__info_entry__descriptor);
    char *info = verbose_info(in);
    r->info = cri_call_alloc(call, sizeof(*r->info));
    if (e && info && r->info) {
      e->key = cri_call_strdup(call, "info");
      e->value = cri_call_strdup(call, info);
      r->info[0] = e;
      r->n_info = e->key && e->value ? 1 : 0;
    }
    free(info);
  }
  img_info_free(in);
  if (!r->image)
    return oom(call);
  *resp = &r->base;
  return GRPC_STATUS_OK;
}

static grpc_status_code list_images(struct cri_call *call, const ProtobufCMessage *reqm,
                                    ProtobufCMessage **resp)
{
  const Runtime__V1__ListImagesRequest *req = (const void *)reqm;
  const char *filter = req->filter ? spec_image(req->filter->image) : NULL;
  Runtime__V1__ListImagesResponse *r =
      cri_call_new_msg(call, &runtime__v1__list_images_response__descriptor);
  if (!r)
    return oom(call);
  q_error *err = NULL;
  img_info **v = NULL;
  size_t n = 0;
  int rc;
  if (filter) {
    img_info *one = NULL;
    rc = img_status(store_of(call), filter, &one, &err);
    if (rc == -ENOENT || (rc == -EINVAL && err)) {
      q_error_free(&err);
      *resp = &r->base;
      return GRPC_STATUS_OK;
    }
    if (rc == 0) {
      v = calloc(1, sizeof(*v));
      if (v) {
        v[0] = one;
        n = 1;
      } else {
        img_info_free(one);
        return oom(call);
      }
    }
  } else {
    rc = img_list(store_of(call), &v, &n, &err);
  }
  if (rc < 0)
    return fail(call, rc, err);
  r->images = cri_call_alloc(call, (n + 1) * sizeof(*r->images));
  for (size_t i = 0; r->images && i < n; i++) {
    if (!(r->images[i] = image_msg(call, v[i]))) {
      r->images = NULL;
      break;
    }
  }
  r->n_images = r->images ? n : 0;
  img_infov_free(v, n);
  if (n && !r->images)
    return oom(call);
  *resp = &r->base;
  return GRPC_STATUS_OK;
}

static grpc_status_code remove_image(struct cri_call *call, const ProtobufCMessage *reqm,
                                     ProtobufCMessage **resp)
{
  const Runtime__V1__RemoveImageRequest *req = (const void *)reqm;
  const char *ref = spec_image(req->image);
  if (!ref)
    return cri_call_error(call, GRPC_STATUS_INVALID_ARGUMENT, "RemoveImage: image is required");
  q_error *err = NULL;
  int rc = img_remove(store_of(call), ref, &err);
  if (rc == -ENOENT) { /* already gone: kubelet retries removals */
    q_error_free(&err);
    return GRPC_STATUS_OK;
  }
  return rc < 0 ? fail(call, rc, err) : GRPC_STATUS_OK;
}

static grpc_status_code image_fs_info(struct cri_call *call, const ProtobufCMessage *reqm,
                                      ProtobufCMessage **resp)
{
  img_store *st = store_of(call);
  struct img_fs_usage u;
  q_error *err = NULL;
  int rc = img_fs_info(st, &u, &err);
  if (rc < 0)
    return fail(call, rc, err);
  Runtime__V1__ImageFsInfoResponse *r =
      cri_call_new_msg(call, &runtime__v1__image_fs_info_response__descriptor);
  Runtime__V1__FilesystemUsage *fu =
      cri_call_new_msg(call, &runtime__v1__filesystem_usage__descriptor);
  if (!r || !fu || !(r->image_filesystems = cri_call_alloc(call, sizeof(*r->image_filesystems))) ||
      !(fu->fs_id = cri_call_new_msg(call, &runtime__v1__filesystem_identifier__descriptor)) ||
      !(fu->fs_id->mountpoint = cri_call_strdup(call, img_store_root(st))) ||
      !(fu->used_bytes = cri_call_new_msg(call, &runtime__v1__uint64_value__descriptor)) ||
      !(fu->inodes_used = cri_call_new_msg(call, &runtime__v1__uint64_value__descriptor)))
    return oom(call);
  fu->timestamp = u.timestamp_ns;
  fu->used_bytes->value = u.used_bytes;
  fu->inodes_used->value = u.inodes_used;
  r->image_filesystems[0] = fu;
  r->n_image_filesystems = 1;
  *resp = &r->base;
  return GRPC_STATUS_OK;
}

int cri_image_init(struct cri_server *srv, const struct cri_config *cfg, q_error **err)
{
  struct image_ctx *ctx = calloc(1, sizeof(*ctx));
  if (!ctx)
    return q_error_make(err, ENOMEM, "image service");
  size_t nm = cfg->registry.n_mirrors;
  ctx->mirrors = calloc(nm + 1, sizeof(*ctx->mirrors));
  if (!ctx->mirrors) {
    free(ctx);
    return q_error_make(err, ENOMEM, "image service");
  }
  for (size_t i = 0; i < nm; i++)
    ctx->mirrors[i] = (struct img_mirror){cfg->registry.mirrors[i].host,
                                          (const char *const *)cfg->registry.mirrors[i].urls,
                                          cfg->registry.mirrors[i].n_urls};
  struct img_store_opts o = {.root = cfg->image_root,
                             .mirrors = ctx->mirrors,
                             .n_mirrors = nm,
                             .insecure = (const char *const *)cfg->registry.insecure,
                             .n_insecure = cfg->registry.n_insecure};
  int rc = img_store_open(&o, &ctx->store, err);
  if (rc < 0) {
    free(ctx->mirrors);
    free(ctx);
    return rc;
  }
  static const struct {
    const char *name;
    cri_handler_fn fn;
  } methods[] = {{"PullImage", pull_image},
                 {"ImageStatus", image_status},
                 {"ListImages", list_images},
                 {"RemoveImage", remove_image},
                 {"ImageFsInfo", image_fs_info}};
  for (size_t i = 0; i < Q_ARRAY_SIZE(methods); i++) {
    rc = cri_server_set_handler(srv, "ImageService", methods[i].name, methods[i].fn);
    if (rc < 0) {
      img_store_close(ctx->store);
      free(ctx->mirrors);
      free(ctx);
      return q_error_make(err, -rc, "register ImageService/%s", methods[i].name);
    }
  }
  cri_server_set_image_ctx(srv, ctx);
  return 0;
}

void cri_image_fini(struct cri_server *srv)
{
  struct image_ctx *ctx = cri_server_image_ctx(srv);
  if (!ctx)
    return;
  cri_server_set_image_ctx(srv, NULL);
  img_store_close(ctx->store);
  free(ctx->mirrors);
  free(ctx);
}
