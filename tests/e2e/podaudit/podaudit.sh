#!/usr/bin/env bash
# Issue #6 audit checks on a busybox pod with real VMs (audit.js): pod stats
# from the pod cgroup, user by name, termination log, SIGTERM then SIGKILL,
# filters, and bad input that leaves the state store as it was; then the
# pod network stats of a pod on a CNI bridge when Debian's plugins are there.
. "$(dirname "$0")/../pods/lib.sh"
audit_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pods_busybox_start
node "$audit_dir/audit.js" || e2e_fail "pod audit"
if [ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ]; then
  echo "== a pod on a CNI bridge network (host-local IPs in $T/ipam)"
  br=qpa$((RANDOM % 10000))
  bridge_conflist 10-bridge.conflist podaudit-bridge "$br" "10.198.$((RANDOM % 200))"
  rc=0
  node "$audit_dir/audit.js" net || rc=$?
  ip link delete "$br" 2>/dev/null || true
  [ $rc = 0 ] || e2e_fail "pod network stats"
else
  echo "skip pod network stats: no CNI bridge plugin (containernetworking-plugins)"
fi
[ -z "$(netns_ours)" ] || e2e_fail "network namespaces left: $(netns_ours)"
! pgrep -f "$T/run/pods" >/dev/null || e2e_fail "sandbox processes left: $(pgrep -af "$T/run/pods")"
stop_quarkd
echo PASS
