/* The pod sandbox's cgroup (sandbox/jail/cgroup.h), as quarkd runs it.
 * Prefix: cri_pod_cgroup_.
 *
 * RunPodSandbox makes <cgroup_parent>/quark-<pod id> (kubelet's cgroupfs
 * naming; a systemd slice name is expanded; no parent: "quark") before the
 * pod daemon starts, which joins it first thing (`--cgroup`). Limits:
 * - memory: the guest's memory + CRI overhead (what the VM is given) +
 *   CRI_POD_VMM_OVERHEAD for the VMM itself, so a guest cannot make the
 *   VMM use host memory without bound;
 * - pids: CRI_POD_PIDS (the VMM's threads: vCPUs, QCall workers, control
 *   connections, log and exec pumps);
 * - CPU quota and shares: the sum over the pod's containers of their CPU
 *   limits (CreateContainer, then UpdateContainerResources) plus the CRI
 *   overhead; before any container, or when kubelet sends them, the
 *   pod-level resources (LinuxPodSandboxConfig.resources, kubelet's own sum)
 *   + overhead. A container without a CPU limit lifts the quota.
 * The path and the pod-level values live in the pod record (ext "Cgroup"),
 * so StopPodSandbox/RemovePodSandbox find it after a quarkd restart. */
#ifndef QUARK_CRI_POD_CGROUP_H
#define QUARK_CRI_POD_CGROUP_H

#include <stdint.h>

#include "pods.h"

#define POD_EXT_CGROUP "Cgroup" /* {Path, Quota, Period, Shares, OverheadQuota, OverheadShares} */
#define CRI_POD_VMM_OVERHEAD_MIB 128
#define CRI_POD_PIDS 1024

/* The record's "Cgroup" object for a new pod (*ext_out, new reference):
 * path and pod-level limits; nothing is made yet, so that the record can
 * name the cgroup before it exists (a restart then finds it). */
int cri_pod_cgroup_plan(const char *pod_id, const Runtime__V1__PodSandboxConfig *c,
                        uint32_t mem_mib, json_t **ext_out, q_error **err);
/* Makes the cgroup of a planned record with its limits (removed again on
 * failure). */
int cri_pod_cgroup_apply(json_t *ext, q_error **err);
/* Recomputes the CPU limits from the pod's containers (their "Resources")
 * and writes them; 0 when the pod has no cgroup. */
int cri_pod_cgroup_update(struct cri_pods *p, const char *pod_id, q_error **err);
/* Removes the pod's cgroup (killing what is left in it); no cgroup: 0. */
int cri_pod_cgroup_remove(const struct cri_pod *pod, q_error **err);

#endif
