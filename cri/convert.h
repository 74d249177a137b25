/* Conversions between state-store records (state/state.h) and CRI messages.
 * Prefix: cri_conv_. Output messages live in the call's arena (see server.h);
 * they borrow nothing from the record, which the caller may free right away.
 * Every function returns NULL / a negative errno only when out of memory. */
#ifndef QUARK_CRI_CONVERT_H
#define QUARK_CRI_CONVERT_H

#include "server.h"
#include "state/state.h"

/* Every protobuf-c map<string,string> entry has this layout. */
struct cri_map_entry {
  ProtobufCMessage base;
  char *key;
  char *value;
};

/* kvs -> a map field: entry_desc is the field's entry type
 * (e.g. &runtime__v1__pod_sandbox__labels_entry__descriptor); entries_out is
 * the address of the field's `Entry **` member. */
int cri_conv_map_out(struct cri_call *call, const ProtobufCMessageDescriptor *entry_desc,
                     const struct cri_kvs *kvs, size_t *n_out, void *entries_out);
/* A map field -> kvs (copies; clear with cri_kvs_clear). */
int cri_conv_map_in(void *const *entries, size_t n, struct cri_kvs *kvs);

Runtime__V1__PodSandbox *cri_conv_pod(struct cri_call *call, const struct cri_pod *pod);
Runtime__V1__PodSandboxStatus *cri_conv_pod_status(struct cri_call *call,
                                                   const struct cri_pod *pod);
Runtime__V1__Container *cri_conv_ctr(struct cri_call *call, const struct cri_ctr *ctr);
Runtime__V1__ContainerStatus *cri_conv_ctr_status(struct cri_call *call, const struct cri_ctr *ctr);

#endif
