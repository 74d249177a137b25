#!/usr/bin/env bash
# quarkd's pod and container code with the stand-in sandbox (fake_sbx.c,
# built into quarkd-fakesbx; no VM): real namespaces, pod files, overlay root
# filesystems, state store and handlers (fake.js), kill -9 recovery, a
# sandbox that dies under a running pod, and nothing left at the end.
. "$(dirname "$0")/lib.sh"
e2e_need_node
need_root
[ -x "${QUARKD_FAKESBX:-}" ] || e2e_skip "quarkd-fakesbx not built"
QUARKD=$QUARKD_FAKESBX
QUARK_SANDBOX=/bin/true
pods_setup
ns_before=$(netns_list)
start_quarkd
why=$(import_busybox) || e2e_skip "$why"
node "$here/fake.js" run || e2e_fail "life cycle"
kill -KILL "$QPID"; wait "$QPID" 2>/dev/null || true; QPID=
start_quarkd
node "$here/fake.js" restarted || e2e_fail "after kill -9"
node "$here/fake.js" died || e2e_fail "sandbox death"
node "$here/fake.js" concurrent || e2e_fail "concurrent pods"
if node --experimental-websocket -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' 2>/dev/null; then
  node --experimental-websocket --no-warnings "$here/fake.js" stream || e2e_fail "streaming"
else
  echo "skip streaming: this node has no WebSocket client (node >= 20.10 has one)"
fi
[ "$(netns_list)" = "$ns_before" ] || e2e_fail "network namespaces left: $(comm -13 <(echo "$ns_before") <(netns_list))"
[ -z "$(ls -A "$T/run/pods" 2>/dev/null)" ] || e2e_fail "pod run dirs left: $(ls "$T/run/pods")"
! grep -q " $T/" /proc/mounts || e2e_fail "mounts left: $(grep " $T/" /proc/mounts)"
[ -z "$(ls -A "$T/images/containers" 2>/dev/null)" ] || e2e_fail "container layers left: $(ls "$T/images/containers")"
echo "ok   nothing left behind"
stop_quarkd
echo PASS
