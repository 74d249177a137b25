#!/usr/bin/env bash
# TSoR through quarkd (tsor_pods.js does the CRI calls): a private quarkd
# with a bridge + host-local network on a test-only bridge (qtsN,
# 10.87.N.0/24), a tsord whose node pod CIDR is that subnet, and pods that
# ask for TSoR with the annotation quark.io/tsor "true" (quarkd starts their
# sandboxes with --tsor; config Tsor.Socket is this tsord's socket).
tsor_dir=$(cd "$(dirname "$0")" && pwd)
. "$tsor_dir/../../e2e/pods/lib.sh"
e2e_need_node
need_root
need_sandbox
need_cni_plugins bridge host-local loopback
[ -x "${TSORD:-/nonexistent}" ] && [ -x "${T_TSOR:-/nonexistent}" ] || e2e_skip "tsord or t_tsor not built"
pick_test_bridge qts 10.87

pods_setup
TPID=
pods_on_exit() {
  [ -n "$TPID" ] && kill "$TPID" 2>/dev/null
  ip link del "$BR" 2>/dev/null
}
mkdir -p "$T/ipam" "$T/tprog"
cp "$T_TSOR" "$T/tprog/t_tsor"
bridge_conflist 10-tsor.conflist tsor "$BR" "$SUBNET" ',"hairpinMode":true'
port=$((20000 + RANDOM % 20000))
echo "{\"Nodes\":[{\"Name\":\"n\",\"PodCIDR\":\"$SUBNET.0/24\",\"Address\":\"127.0.0.1:$port\"}]}" >"$T/peers.json"
"$TSORD" --node n --peers "$T/peers.json" --socket "$T/tsord.sock" --fabric tcp --log-level Info >"$T/tsord.log" 2>&1 &
TPID=$!
for _ in $(seq 100); do grep -q "sandboxes on" "$T/tsord.log" && break; sleep 0.05; done
grep -q "sandboxes on" "$T/tsord.log" || e2e_fail "tsord did not start: $(cat "$T/tsord.log")"
sed -i "s|\"Cni\":{|\"Tsor\":{\"Socket\":\"$T/tsord.sock\"},\"Cni\":{|" "$T/config.json"
start_quarkd
need_busybox
export TSOR_SUBNET=$SUBNET TSOR_PROGDIR=$T/tprog
node "$tsor_dir/tsor_pods.js" || { tail -20 "$T/tsord.log"; grep -h "tsor" "$T"/state/*/sandbox.log 2>/dev/null | tail; e2e_fail "TSoR pods"; }
attached=$(grep -c "attached" "$T/tsord.log")
[ "$attached" -ge 2 ] || e2e_fail "tsord saw $attached pod attachments, want 2: $(cat "$T/tsord.log")"
echo "ok: tsord attached the two TSoR pods"
stop_quarkd
kill "$TPID"
wait "$TPID"
TPID=
echo "tsor_pods: passed"
