/* The container's security settings from the CRI config, for the guest
 * kernel: the capability set (Kubernetes' default set, privileged, add/drop)
 * and the seccomp profile compiled with libseccomp into a classic-BPF
 * program that the guest kernel runs on every syscall of the container
 * (guestkernel/task/seccomp.c):
 *   RuntimeDefault  containerd's default profile (allowlist, EPERM for the
 *                   rest, clone without namespace flags, clone3 ENOSYS,
 *                   capability-dependent additions as containerd does);
 *   Localhost       an OCI seccomp JSON file under the seccomp root
 *                   (kubelet's <root-dir>/seccomp), parsed with jansson;
 *   Unconfined      no program.
 * Pure functions over their inputs, so that units and tools test them. */
#ifndef CRI_SECCOMP_PROFILE_H
#define CRI_SECCOMP_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <quark/common.h>

enum cri_seccomp_type {
  CRI_SECCOMP_RUNTIME_DEFAULT = 0, /* the CRI enum's values */
  CRI_SECCOMP_UNCONFINED = 1,
  CRI_SECCOMP_LOCALHOST = 2,
};

/* containerd's default capability set (what Kubernetes containers get). */
#define CRI_CAPS_DEFAULT                                                                           \
  ((1ull << 0) | (1ull << 1) | (1ull << 3) | (1ull << 4) | (1ull << 5) | (1ull << 6) |             \
   (1ull << 7) | (1ull << 8) | (1ull << 10) | (1ull << 13) | (1ull << 18) | (1ull << 27) |         \
   (1ull << 29) | (1ull << 31))
#define CRI_CAPS_ALL ((1ull << 41) - 1)

/* Capability number of "CAP_NET_ADMIN" / "NET_ADMIN" (any case), -1 unknown. */
int cri_cap_number(const char *name);
/* The set after add/drop lists ("ALL" allowed in both, drop first as
 * containerd does). */
int cri_caps_apply(uint64_t *caps, char *const *add, size_t n_add, char *const *drop, size_t n_drop,
                   q_error **err);

/* Compiles a profile: *prog (malloc'd, *n instructions of 8 bytes) or
 * NULL/0 for Unconfined. localhost: the file (absolute, must resolve under
 * root when root is non-NULL). caps: the container's bounding set (the
 * default profile's additions follow it). */
int cri_seccomp_compile(enum cri_seccomp_type type, const char *localhost, const char *root,
                        uint64_t caps, void **prog, size_t *n, q_error **err);

/* Everything from a container's CRI security context (NULL: defaults):
 * capabilities (privileged: all; else Kubernetes' default set with
 * add/drop), no_new_privs, and the seccomp program (security_context.seccomp,
 * else the deprecated seccomp_profile_path; neither: Unconfined, as the
 * kubelet asks; privileged: Unconfined). Localhost files must lie under
 * seccomp_root ($QUARK_SECCOMP_ROOT, default /var/lib/kubelet/seccomp). */
struct Runtime__V1__LinuxContainerSecurityContext;
int cri_security_from_cri(const struct Runtime__V1__LinuxContainerSecurityContext *sc,
                          uint64_t *caps, bool *no_new_privs, void **prog, size_t *n,
                          q_error **err);

#endif
