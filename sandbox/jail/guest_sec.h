/* Security settings the sandbox hands to the guest kernel for a container
 * (boot info sec_* for `run` and the per-container VMs, the qk_ctl_sec block
 * of a CREATE/EXEC in a pod VM): run-as user, supplementary groups,
 * capability set, no_new_privs and a classic-BPF seccomp program compiled
 * on the host (quarkd: cri/seccomp.c). The guest enforces them
 * (guestkernel/task/cred.c, seccomp.c). */
#ifndef SBX_GUEST_SEC_H
#define SBX_GUEST_SEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <quark/common.h>

#define SBX_SEC_MAX_GROUPS 32

struct sbx_guest_sec {
  uint32_t flags; /* QK_SEC_* (guestkernel/abi/qk_abi.h) */
  uint64_t caps;
  uint32_t groups[SBX_SEC_MAX_GROUPS];
  size_t ngroups;
  bool have_user;
  uint32_t uid, gid;
  void *bpf; /* malloc'd, bpf_len instructions of 8 bytes */
  size_t bpf_len;
};

/* One option: "seccomp-bpf" FILE (raw struct sock_filter[], as
 * seccomp_export_bpf writes it), "seccomp-hex" HEX (the same as hex text,
 * pod JSON), "caps" HEX (capability set), "groups" G,G,..., "user"
 * UID[:GID], "no-new-privs" and "read-only-root" (value ignored). 0 or -errno with err set. */
int sbx_guest_sec_opt(struct sbx_guest_sec *s, const char *name, const char *value, q_error **err);
void sbx_guest_sec_free(struct sbx_guest_sec *s);
/* The same from a pod CREATE request (JSON object, as quarkd's sandbox
 * client writes it): "groups" [ids], "caps" "HEX", "no_new_privs" bool,
 * "seccomp" "HEX" (absent: none), "readonly_rootfs" bool. */
struct json_t;
int sbx_guest_sec_from_json(struct sbx_guest_sec *s, struct json_t *req, q_error **err);

#endif
