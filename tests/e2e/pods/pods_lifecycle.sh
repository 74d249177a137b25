#!/usr/bin/env bash
# A busybox pod end to end with real VMs (lifecycle.js), then checks that
# nothing is left: no namespace, run dir, root filesystem mount, CNI cache
# entry or quark-sandbox process of the pod.
. "$(dirname "$0")/lib.sh"
pods_busybox_start
node "$here/lifecycle.js" || e2e_fail "pod life cycle"

[ -z "$(netns_ours)" ] || e2e_fail "network namespaces left: $(netns_ours)"
[ -z "$(ls -A "$T/run/pods" 2>/dev/null)" ] || e2e_fail "pod run dirs left: $(ls "$T/run/pods")"
! grep -q " $T/" /proc/mounts || e2e_fail "mounts left: $(grep " $T/" /proc/mounts)"
[ -z "$(ls -A "$T/images/containers" 2>/dev/null)" ] || e2e_fail "container layers left: $(ls "$T/images/containers")"
! pgrep -f "$T/run/pods" >/dev/null || e2e_fail "sandbox processes left: $(pgrep -af "$T/run/pods")"
echo "ok   nothing left behind"
stop_quarkd
echo PASS
