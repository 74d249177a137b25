#!/usr/bin/env bash
# Issue #6 audit checks on a busybox pod with real VMs (audit.js): pod stats
# from the pod cgroup, user by name, termination log, SIGTERM then SIGKILL,
# filters, and bad input that leaves the state store as it was.
. "$(dirname "$0")/../pods/lib.sh"
audit_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
e2e_need_node
need_root
need_sandbox
pods_setup
start_quarkd
why=$(import_busybox) || e2e_skip "$why"
node "$audit_dir/audit.js" || e2e_fail "pod audit"
[ -z "$(netns_ours)" ] || e2e_fail "network namespaces left: $(netns_ours)"
! pgrep -f "$T/run/pods" >/dev/null || e2e_fail "sandbox processes left: $(pgrep -af "$T/run/pods")"
stop_quarkd
echo PASS
