#!/usr/bin/env bash
# quarkd's Sandbox.PidsLimit end to end (issue #11): a private quarkd with
# PidsLimit 8, a busybox pod (pids.js). The guest side and a fork bomb are
# tested at the sandbox level by tests/integration/guest_pids.
. "$(dirname "$0")/../pods/lib.sh"
e2e_need_node
need_root
need_sandbox
pods_setup
jq '.Sandbox.PidsLimit = 8' "$T/config.json" >"$T/config.pids" && mv "$T/config.pids" "$T/config.json" ||
  e2e_fail "config"
start_quarkd
need_busybox
node "$(dirname "$0")/pids.js" || e2e_fail "pids limit"
stop_quarkd
echo PASS
