#!/usr/bin/env bash
# Pod networking end to end (podnet.js does the CRI calls and the traffic):
# a private quarkd with a bridge + host-local + portmap network on a
# test-only bridge (qpnN, 10.88.N.0/24, N free and random), then checks that every pod left
# nothing behind: network namespace, CNI cache entry, IP reservation, veth,
# iptables rule.
podnet_dir=$(cd "$(dirname "$0")" && pwd)
. "$podnet_dir/../../e2e/pods/lib.sh"
e2e_need_node
need_root
need_sandbox
need_cni_plugins bridge host-local loopback portmap
command -v iptables-save >/dev/null || e2e_skip "iptables missing"
[ -x "${T_NET:-/nonexistent}" ] || e2e_skip "t_net not built (${T_NET:-?}; target guestnet_progs)"
# A bridge and subnet of this run's own: other sessions may run this test
# at the same time (10.88.N.0/24 with a free N; other tests use 10.89.231
# and 10.199.*).
pick_test_bridge qpn 10.88

# import_image NAME: tests/images/build.sh NAME into $T's store as
# docker.io/library/NAME:latest.
import_image() {
  local imgs=${IMG_TEST_IMAGES:-$T/test-images}
  bash "$podnet_dir/../../images/build.sh" "$imgs" "$1" >"$T/build-$1.log" 2>&1 ||
    { echo "tests/images/build.sh $1 failed: $(tail -3 "$T/build-$1.log")"; return 1; }
  skopeo copy -q "oci:$imgs/$1:latest" "oci-archive:$T/$1.tar:latest" >/dev/null || { echo "skopeo copy $1 failed"; return 1; }
  "$QUARK" import "$T/$1.tar" "docker.io/library/$1" >"$T/import-$1.log" 2>&1 ||
    { echo "quark import $1 failed: $(cat "$T/import-$1.log")"; return 1; }
}

pods_setup
pods_on_exit() { ip link del "$BR" 2>/dev/null; }
mkdir -p "$T/ipam" "$T/tnet" "$T/cnibin" "$T/ushare"
cp "$T_NET" "$T/tnet/t_net"
[ -x "${T_UNIX:-/nonexistent}" ] && cp "$T_UNIX" "$T/tnet/t_unix" # target guest_unix_progs
# A plugin that refuses ADD with a CNI error (the failure case below).
cat >"$T/cnibin/podnet-fail" <<'SH'
#!/bin/sh
cat >/dev/null
case "$CNI_COMMAND" in
ADD) echo '{"cniVersion":"1.0.0","code":11,"msg":"podnet-fail refuses ADD","details":"test plugin"}'; exit 1 ;;
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
esac
exit 0
SH
chmod +x "$T/cnibin/podnet-fail"
sed -i "s|\"Cni\":{|\"Cni\":{\"BinDirs\":[\"$T/cnibin\",\"$CNI_BIN\"],|" "$T/config.json"
conflist() { # extra plugins
  bridge_conflist 10-podnet.conflist podnet "$BR" "$SUBNET" ',"hairpinMode":true' ',
  {"type":"portmap","capabilities":{"portMappings":true},"snat":true}'"$1"
}
conflist ""
rules_before=$(iptables-save 2>/dev/null | grep -c "$SUBNET\." || true)
start_quarkd
need_busybox
export PODNET_SUBNET=$SUBNET PODNET_TNET=$T/tnet PODNET_USHARE=$T/ushare
node "$podnet_dir/podnet.js" || e2e_fail "pod networking"
leftovers() {
for ns in $(cat "$T/netns.txt" 2>/dev/null); do
  [ ! -e "$ns" ] || e2e_fail "network namespace left: $ns"
done
[ -z "$(ls -A "$T/cni-cache/results" 2>/dev/null)" ] || e2e_fail "CNI cache entries left: $(ls "$T/cni-cache/results")"
left=$(ls "$T/ipam/podnet" 2>/dev/null | grep -E "^($SUBNET\.|fd88:${SUBNET##*.}:)" || true)
[ -z "$left" ] || e2e_fail "IP reservations left: $left"
veths=$(ip -o link show master "$BR" 2>/dev/null | wc -l)
[ "$veths" = 0 ] || e2e_fail "$veths veth(s) left on $BR"
rules_after=$(iptables-save 2>/dev/null | grep -c "$SUBNET\." || true)
[ "$rules_after" = "$rules_before" ] || e2e_fail "iptables rules for $SUBNET.0/24 left: $(iptables-save | grep "$SUBNET\.")"
echo "ok   nothing left behind $1 (netns, CNI cache, IPAM, veths, iptables)"
}
leftovers "by the pods"

# redis and nginx need epoll in the guest kernel (guestkernel/syscall/
# table_events.h lists it once it is there).
if grep -q 'epoll_create' "$podnet_dir/../../../guestkernel/syscall/table_events.h" 2>/dev/null &&
  command -v redis-cli >/dev/null; then
  why=$(import_image redis) && why=$(import_image nginx) || e2e_fail "$why"
  node "$podnet_dir/podnet.js" apps || e2e_fail "redis and nginx in pods"
  leftovers "by the redis and nginx pods"
else
  echo "note: redis and nginx pods not run (no epoll in the guest kernel, or no redis-cli)"
fi

# Dual stack (an IPv6 range of this run's own, fd88:N::/64) across a
# kill -9 of quarkd: PodSandboxStatus gives the same IPv4 primary IP and
# IPv6 additional_ips before and after the restart, then removal leaves
# nothing.
if [ -e /proc/sys/net/ipv6 ]; then
  conflist6() {
    cat >"$T/cni/10-podnet.conflist" <<JSON
{"cniVersion":"1.0.0","name":"podnet","plugins":[
  {"type":"bridge","bridge":"$BR","isGateway":true,"ipMasq":false,
   "ipam":{"type":"host-local","ranges":[[{"subnet":"$SUBNET.0/24"}],[{"subnet":"fd88:${SUBNET##*.}::/64"}]],"dataDir":"$T/ipam"}},
  {"type":"portmap","capabilities":{"portMappings":true},"snat":true}]}
JSON
  }
  conflist6
  node "$podnet_dir/podnet.js" restart before || e2e_fail "dual-stack pod before the restart"
  kill -KILL "$QPID"; wait "$QPID" 2>/dev/null || true; QPID=
  start_quarkd
  node "$podnet_dir/podnet.js" restart after || e2e_fail "dual-stack pod after the restart"
  leftovers "by the dual-stack pod"
  conflist ""
else
  echo "note: no IPv6 here: the dual-stack restart case is left out"
fi

# A failing plugin after bridge and portmap: RunPodSandbox fails with the
# plugin's message and the ADDs that succeeded are undone.
conflist ',{"type":"podnet-fail"}'
node "$podnet_dir/podnet.js" fail || e2e_fail "failing CNI plugin"
leftovers "by the failed RunPodSandbox"
stop_quarkd
echo PASS
