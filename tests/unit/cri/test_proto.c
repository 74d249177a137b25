/* Round trip of every runtime.v1 message type: fill every field (nested
 * messages, repeated fields and maps included), pack, unpack, pack again and
 * compare the bytes. The list of types comes from the generated header, so
 * a message added to api.proto is covered without touching this file. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cri_proto.h"
#include "server.h"

static const ProtobufCMessageDescriptor *const all_messages[] = {
#include "api-messages.inc"
};

static void fill(ProtobufCMessage *m, int depth);

static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_FLOAT:
  case PROTOBUF_C_TYPE_ENUM:
    return 4;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE:
    return 8;
  case PROTOBUF_C_TYPE_BOOL:
    return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_STRING:
    return sizeof(char *);
  case PROTOBUF_C_TYPE_BYTES:
    return sizeof(ProtobufCBinaryData);
  case PROTOBUF_C_TYPE_MESSAGE:
    return sizeof(void *);
  }
  return 0;
}

/* A distinct non-default value per field and index, so that a swapped or
 * dropped field changes the bytes. */
static void set_value(const ProtobufCFieldDescriptor *f, void *slot, unsigned k, int depth)
{
  unsigned v = f->id * 7 + k + 1;
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    *(int32_t *)slot = -(int32_t)v;
    break;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    *(uint32_t *)slot = v;
    break;
  case PROTOBUF_C_TYPE_ENUM: {
    const ProtobufCEnumDescriptor *ed = f->descriptor;
    *(int *)slot = ed->values[ed->n_values - 1].value; /* a non-zero value */
    break;
  }
  case PROTOBUF_C_TYPE_FLOAT:
    *(float *)slot = (float)v + 0.5f;
    break;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    *(int64_t *)slot = -(int64_t)v * 1000000007LL;
    break;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    *(uint64_t *)slot = (uint64_t)v * 1000000007ULL;
    break;
  case PROTOBUF_C_TYPE_DOUBLE:
    *(double *)slot = v + 0.25;
    break;
  case PROTOBUF_C_TYPE_BOOL:
    *(protobuf_c_boolean *)slot = 1;
    break;
  case PROTOBUF_C_TYPE_STRING: {
    char *s = NULL;
    cr_assert(asprintf(&s, "%s-%u-ü", f->name, k) > 0);
    *(char **)slot = s;
    break;
  }
  case PROTOBUF_C_TYPE_BYTES: {
    ProtobufCBinaryData *b = slot;
    b->len = 3 + k;
    b->data = malloc(b->len);
    memset(b->data, 0xa0 + (int)k, b->len);
    b->data[0] = 0; /* binary, not text */
    break;
  }
  case PROTOBUF_C_TYPE_MESSAGE: {
    const ProtobufCMessageDescriptor *md = f->descriptor;
    ProtobufCMessage *sub = calloc(1, md->sizeof_message);
    md->message_init(sub);
    fill(sub, depth + 1);
    *(ProtobufCMessage **)slot = sub;
    break;
  }
  }
}

/* Depth-limited: ContainerStatus nests ImageSpec nests maps and so on. */
static void fill(ProtobufCMessage *m, int depth)
{
  const ProtobufCMessageDescriptor *d = m->descriptor;
  if (depth > 6)
    return;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    char *base = (char *)m;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      unsigned n = 2;
      void *arr = calloc(n, elem_size(f));
      for (unsigned k = 0; k < n; k++)
        set_value(f, (char *)arr + k * elem_size(f), k, depth);
      *(size_t *)(base + f->quantifier_offset) = n;
      *(void **)(base + f->offset) = arr;
    } else {
      set_value(f, base + f->offset, 0, depth);
    }
  }
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
  *len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(*len ? *len : 1);
  cr_assert_eq(protobuf_c_message_pack(m, buf), *len);
  return buf;
}

Test(proto, every_message_round_trips)
{
  size_t n = Q_ARRAY_SIZE(all_messages);
  cr_assert_gt(n, 150, "expected the whole CRI API, got %zu message types", n);
  for (size_t i = 0; i < n; i++) {
    const ProtobufCMessageDescriptor *d = all_messages[i];
    ProtobufCMessage *m = calloc(1, d->sizeof_message);
    d->message_init(m);
    fill(m, 0);
    size_t len1, len2;
    uint8_t *b1 = pack(m, &len1);
    if (d->n_fields > 0)
      cr_assert_gt(len1, 0, "%s packed to nothing", d->name);
    ProtobufCMessage *u = protobuf_c_message_unpack(d, NULL, len1, b1);
    cr_assert_not_null(u, "%s does not unpack", d->name);
    uint8_t *b2 = pack(u, &len2);
    cr_assert_eq(len1, len2, "%s: %zu bytes, then %zu", d->name, len1, len2);
    cr_assert(memcmp(b1, b2, len1) == 0, "%s: bytes differ after a round trip", d->name);
    protobuf_c_message_free_unpacked(u, NULL);
    protobuf_c_message_free_unpacked(m, NULL);
    free(b1);
    free(b2);
  }
}

/* Wire facts a CRI client depends on, checked against hand-encoded bytes. */
Test(proto, wire_numbers_match_cri)
{
  Runtime__V1__VersionRequest vr = RUNTIME__V1__VERSION_REQUEST__INIT;
  vr.version = "0.1.0";
  size_t len;
  uint8_t *b = pack(&vr.base, &len);
  static const uint8_t want_v[] = {0x0a, 5, '0', '.', '1', '.', '0'};
  cr_assert_eq(len, sizeof(want_v));
  cr_assert(memcmp(b, want_v, len) == 0);
  free(b);

  /* ImageSpec.user_specified_image is field 18: tag (18<<3)|2 = 0x92 0x01. */
  Runtime__V1__ImageSpec is = RUNTIME__V1__IMAGE_SPEC__INIT;
  is.user_specified_image = "a";
  b = pack(&is.base, &len);
  static const uint8_t want_i[] = {0x92, 0x01, 1, 'a'};
  cr_assert_eq(len, sizeof(want_i));
  cr_assert(memcmp(b, want_i, len) == 0);
  free(b);

  /* LinuxSandboxSecurityContext.run_as_group is 8, supplemental_groups_policy 11. */
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(
      &runtime__v1__linux_sandbox_security_context__descriptor, "supplemental_groups_policy");
  cr_assert_not_null(f);
  cr_assert_eq(f->id, 11);
  f = protobuf_c_message_descriptor_get_field_by_name(&runtime__v1__container_config__descriptor,
                                                      "stop_signal");
  cr_assert_not_null(f);
  cr_assert_eq(f->id, 18);
}

Test(proto, services_have_every_rpc)
{
  const ProtobufCServiceDescriptor *rs = &runtime__v1__runtime_service__descriptor;
  const ProtobufCServiceDescriptor *is = &runtime__v1__image_service__descriptor;
  cr_assert_str_eq(rs->name, "runtime.v1.RuntimeService");
  cr_assert_str_eq(is->name, "runtime.v1.ImageService");
  static const char *const must[] = {
      "Version",
      "RunPodSandbox",
      "StopPodSandbox",
      "RemovePodSandbox",
      "PodSandboxStatus",
      "ListPodSandbox",
      "CreateContainer",
      "StartContainer",
      "StopContainer",
      "RemoveContainer",
      "ListContainers",
      "ContainerStatus",
      "UpdateContainerResources",
      "ReopenContainerLog",
      "ExecSync",
      "Exec",
      "Attach",
      "PortForward",
      "ContainerStats",
      "ListContainerStats",
      "PodSandboxStats",
      "ListPodSandboxStats",
      "UpdateRuntimeConfig",
      "Status",
      "CheckpointContainer",
      "GetContainerEvents",
      "ListMetricDescriptors",
      "ListPodSandboxMetrics",
      "RuntimeConfig",
  };
  for (size_t i = 0; i < Q_ARRAY_SIZE(must); i++)
    cr_assert_not_null(protobuf_c_service_descriptor_get_method_by_name(rs, must[i]), "%s",
                       must[i]);
  static const char *const img[] = {"ListImages", "ImageStatus", "PullImage", "RemoveImage",
                                    "ImageFsInfo"};
  for (size_t i = 0; i < Q_ARRAY_SIZE(img); i++)
    cr_assert_not_null(protobuf_c_service_descriptor_get_method_by_name(is, img[i]), "%s", img[i]);
}

Test(proto, server_table_matches_descriptors)
{
  struct cri_config cfg;
  cr_assert_eq(cri_config_init(&cfg), 0);
  struct cri_server *srv = NULL;
  cr_assert_eq(cri_server_new(&cfg, NULL, &srv, NULL), 0);
  size_t n = cri_server_method_count(srv);
  cr_assert_eq(n, runtime__v1__runtime_service__descriptor.n_methods +
                      runtime__v1__image_service__descriptor.n_methods);
  cr_assert_eq(cri_runtime_register(srv, NULL), 0);
  cr_assert_eq(cri_server_set_handler(srv, "RuntimeService", "NoSuchRpc", NULL), -ENOENT);
  cr_assert_eq(cri_server_set_handler(srv, "RuntimeService", "GetContainerEvents", NULL),
               -EOPNOTSUPP);
  bool impl;
  size_t implemented = 0;
  for (size_t i = 0; i < n; i++) {
    const char *p = cri_server_method_path(srv, i, &impl);
    cr_assert(strncmp(p, "/runtime.v1.", 12) == 0, "%s", p);
    implemented += impl;
  }
  cr_assert_eq(implemented, 8);
  cri_server_free(srv);
  cri_config_free(&cfg);
}
