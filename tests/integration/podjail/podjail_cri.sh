#!/usr/bin/env bash
# The pod cgroup through quarkd (cri/pod_cgroup.c): RunPodSandbox with a
# cgroup_parent and pod-level resources makes <parent>/quark-<pod id> with
# the pod's quota/shares/pids/memory and the daemon in it; CreateContainer
# and UpdateContainerResources rewrite the CPU limits (the sum over the
# containers); a 0.2 CPU hog stays well under one CPU; StopPodSandbox and
# RemovePodSandbox remove the cgroup, also after quarkd was killed with
# SIGKILL and restarted. Uses the e2e pod helpers.
. "$(dirname "$0")/../../e2e/pods/lib.sh"
e2e_need_node
need_root
need_sandbox
pods_setup
export PODJAIL_PARENT="/quark-test-podjail-cri-$$"
# Our test cgroups go, with whatever a failed run left in them.
pods_on_exit() {
  for c in /sys/fs/cgroup/*/"${PODJAIL_PARENT#/}" "/sys/fs/cgroup/${PODJAIL_PARENT#/}"; do
    [ -d "$c" ] || continue
    for d in "$c"/*/; do
      [ -d "$d" ] || continue
      for pid in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
      sleep 0.2
      rmdir "$d" 2>/dev/null
    done
    rmdir "$c" 2>/dev/null
  done
}
start_quarkd
need_busybox
node "$(dirname "$0")/podjail_cri.js" || e2e_fail "pod cgroup through CRI"
PODJAIL_PHASE=run node "$(dirname "$0")/podjail_cri.js" || e2e_fail "pod before the restart"
kill -KILL "$QPID"; wait "$QPID" 2>/dev/null || true; QPID=
start_quarkd
PODJAIL_PHASE=remove node "$(dirname "$0")/podjail_cri.js" || e2e_fail "cgroup across a restart"
stop_quarkd
echo PASS
