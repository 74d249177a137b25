#!/usr/bin/env bash
# kill -9 of quarkd while a pod runs: the restarted quarkd reattaches to the
# sandbox and reports the same pod and containers (recovery.js); after
# RemovePodSandbox and another kill -9 + restart, nothing is left: no pod,
# namespace, mount or sandbox process.
. "$(dirname "$0")/lib.sh"
pods_busybox_start
node "$here/recovery.js" before || e2e_fail "pod before the kill"
kill -KILL "$QPID"; wait "$QPID" 2>/dev/null || true; QPID=
pgrep -f "$T/run/pods" >/dev/null || e2e_fail "the sandbox died with quarkd"
echo "ok   the sandbox outlives quarkd (kill -9)"
sleep 4 # the short container exits while quarkd is down
start_quarkd
node "$here/recovery.js" after || e2e_fail "pod after the restart"
kill -KILL "$QPID"; wait "$QPID" 2>/dev/null || true; QPID=
start_quarkd
node "$here/recovery.js" empty || e2e_fail "after the second restart"
[ -z "$(netns_ours)" ] || e2e_fail "network namespaces left: $(netns_ours)"
! grep -q " $T/" /proc/mounts || e2e_fail "mounts left: $(grep " $T/" /proc/mounts)"
! pgrep -f "$T/run/pods" >/dev/null || e2e_fail "sandbox processes left: $(pgrep -af "$T/run/pods")"
echo "ok   nothing orphaned across restarts"
stop_quarkd
echo PASS
