/* Fuzzer: protobuf-c decoding of every runtime.v1 request message.
 *
 * Input: one selector byte, then the request bytes as they arrive on the
 * wire. The selector picks an RPC (index into RuntimeService's methods, then
 * ImageService's, modulo their count), the same numbering as the
 * cri_handlers target, which shares these seeds.
 *
 * Checks: a message that decodes passes protobuf_c_message_check and packs to
 * exactly its packed size. When it carries no unknown fields (at any depth)
 * it also decodes again from its own encoding, and a second round trip gives
 * the same bytes. Unknown fields are excluded because libprotobuf-c keeps a
 * field numbered 0 that arrived with a non-canonical tag varint ("80 00")
 * and re-encodes it as "00", which it then refuses: a library quirk that
 * quarkd never meets, since it does not re-encode requests.
 *
 * QUARK_FUZZ_LIST=1 prints "<selector> <method> <input type>" and exits
 * (cri_proto/make_seeds.sh uses it).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cri_proto.h"
#include "fuzz_util.h"

static const ProtobufCServiceDescriptor *const services[] = {
    &runtime__v1__runtime_service__descriptor,
    &runtime__v1__image_service__descriptor,
};

static const ProtobufCMethodDescriptor *methods[256];
static size_t n_methods;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  for (size_t s = 0; s < Q_ARRAY_SIZE(services); s++)
    for (unsigned i = 0; i < services[s]->n_methods && n_methods < Q_ARRAY_SIZE(methods); i++)
      methods[n_methods++] = &services[s]->methods[i];
  if (getenv("QUARK_FUZZ_LIST")) {
    for (size_t i = 0; i < n_methods; i++)
      printf("%zu %s %s\n", i, methods[i]->name, methods[i]->input->name);
    exit(0);
  }
  return 0;
}

/* Whether m or any message inside it kept unknown fields. */
static bool has_unknown(const ProtobufCMessage *m)
{
  if (!m)
    return false;
  if (m->n_unknown_fields)
    return true;
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (f->type != PROTOBUF_C_TYPE_MESSAGE)
      continue;
    const char *base = (const char *)m;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)(base + f->quantifier_offset);
      ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)(base + f->offset);
      for (size_t k = 0; k < n; k++)
        if (has_unknown(v[k]))
          return true;
    } else {
      if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
          *(const uint32_t *)(base + f->quantifier_offset) != f->id)
        continue;
      if (has_unknown(*(ProtobufCMessage *const *)(base + f->offset)))
        return true;
    }
  }
  return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
  if (len < 1 || n_methods == 0)
    return 0;
  const ProtobufCMessageDescriptor *d = methods[data[0] % n_methods]->input;
  ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len - 1, data + 1);
  if (!m)
    return 0;
  FUZZ_CHECK(m->descriptor == d, "decoded as %s", m->descriptor->name);
  FUZZ_CHECK(protobuf_c_message_check(m), "%s: decoded message fails its own check", d->name);

  size_t n1 = protobuf_c_message_get_packed_size(m);
  uint8_t *b1 = malloc(n1 ? n1 : 1);
  FUZZ_CHECK(b1, "out of memory");
  FUZZ_CHECK(protobuf_c_message_pack(m, b1) == n1, "%s: pack length differs from packed size",
             d->name);
  bool unknown = has_unknown(m);
  protobuf_c_message_free_unpacked(m, NULL);
  if (unknown) {
    free(b1);
    return 0;
  }

  ProtobufCMessage *m2 = protobuf_c_message_unpack(d, NULL, n1, b1);
  FUZZ_CHECK(m2, "%s: its own encoding does not decode", d->name);
  size_t n2 = protobuf_c_message_get_packed_size(m2);
  uint8_t *b2 = malloc(n2 ? n2 : 1);
  FUZZ_CHECK(b2, "out of memory");
  FUZZ_CHECK(protobuf_c_message_pack(m2, b2) == n2, "%s: second pack", d->name);
  protobuf_c_message_free_unpacked(m2, NULL);

  ProtobufCMessage *m3 = protobuf_c_message_unpack(d, NULL, n2, b2);
  FUZZ_CHECK(m3, "%s: second encoding does not decode", d->name);
  size_t n3 = protobuf_c_message_get_packed_size(m3);
  uint8_t *b3 = malloc(n3 ? n3 : 1);
  FUZZ_CHECK(b3, "out of memory");
  protobuf_c_message_pack(m3, b3);
  FUZZ_CHECK(n3 == n2 && memcmp(b2, b3, n2) == 0, "%s: encoding not stable after a round trip",
             d->name);
  protobuf_c_message_free_unpacked(m3, NULL);
  free(b1);
  free(b2);
  free(b3);
  return 0;
}
