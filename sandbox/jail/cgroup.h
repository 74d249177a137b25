/* Pod cgroups: one cgroup per pod sandbox holding the VMM process, with the
 * pod's CPU quota/shares, a memory limit and a pids limit. Prefix:
 * sbx_cgroup_. Used by the run-mode jail (jail.c, one cgroup per
 * `quark-sandbox run`) and by quarkd for pod daemons (cri/pod_rpc.c: it
 * creates the cgroup before starting the daemon, which joins it first thing,
 * applies UpdateContainerResources to it and removes it with the pod).
 *
 * Both layouts: cgroup v2 (a cgroup2 mount at /sys/fs/cgroup, controllers
 * enabled on the way down) and v1 (one hierarchy per controller under
 * /sys/fs/cgroup: memory, cpu, cpuacct, pids; the same relative path in
 * each). Paths are relative to the hierarchy root, "a/b/c", never "..".
 */
#ifndef SBX_CGROUP_H
#define SBX_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <quark/common.h>

struct sbx_cgroup_limits {
  uint64_t memory;        /* bytes; 0: no limit ("max") */
  uint64_t cpu_quota_us;  /* per period; 0: no limit ("max") */
  uint64_t cpu_period_us; /* 0: 100000 */
  uint64_t cpu_shares;    /* v1 cpu.shares (2..262144; v2: weight from it); 0: default 1024 */
  uint64_t pids;          /* 0: no limit ("max") */
};

/* Whether /sys/fs/cgroup is a cgroup2 mount. */
bool sbx_cgroup_v2(void);
/* The pod's cgroup path: parent (CRI cgroup_parent: cgroupfs style
 * "/kubepods/burstable/pod<uid>", or a systemd slice name
 * "kubepods-burstable-pod<uid>.slice", expanded as systemd nests slices;
 * NULL or empty: "quark") + "/quark-" + the first 32 characters of pod_id.
 * -EINVAL for "..", empty components or a path over size. */
int sbx_cgroup_pod_path(const char *parent, const char *pod_id, char *out, size_t size);
/* Creates the cgroup (and its parents) and writes the limits. */
int sbx_cgroup_create(const char *path, const struct sbx_cgroup_limits *l, q_error **err);
/* Writes the limits of an existing cgroup (UpdateContainerResources). */
int sbx_cgroup_set(const char *path, const struct sbx_cgroup_limits *l, q_error **err);
/* Moves pid (0: the caller) into the cgroup. */
int sbx_cgroup_join(const char *path, pid_t pid, q_error **err);
/* SIGKILLs what is left in the cgroup, then removes it; 0 when it is gone
 * (or never was), -EBUSY when processes would not leave within ~1 s. */
int sbx_cgroup_remove(const char *path, q_error **err);
/* Reads one file of the cgroup: ctrl is the v1 hierarchy ("cpu",
 * "cpuacct", "memory", "pids"; ignored on v2), file its name. For tests
 * and stats. */
int sbx_cgroup_read(const char *path, const char *ctrl, const char *file, char *out, size_t size);

#endif
