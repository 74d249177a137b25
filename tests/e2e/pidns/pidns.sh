#!/usr/bin/env bash
# The pod's shared pid namespace (CRI pid mode POD) and containers' own
# (mode CONTAINER) in one busybox pod with a real VM (pidns.js), or, with
# target.js as $1, containers joining another's (mode TARGET).
. "$(dirname "$0")/../pods/lib.sh"
pidns_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
e2e_need_node
need_root
need_sandbox
pods_setup
start_quarkd
why=$(import_busybox) || e2e_skip "$why"
node "$pidns_dir/${1:-pidns.js}" || e2e_fail "pid namespaces (${1:-pidns.js})"
! pgrep -f "$T/run/pods" >/dev/null || e2e_fail "sandbox processes left: $(pgrep -af "$T/run/pods")"
stop_quarkd
echo PASS
