#!/usr/bin/env bash
# Pod networking end to end (podnet.js does the CRI calls and the traffic):
# a private quarkd with a bridge + host-local + portmap network on a
# test-only bridge (qpn0, 10.89.233.0/24), then checks that every pod left
# nothing behind: network namespace, CNI cache entry, IP reservation, veth,
# iptables rule.
podnet_dir=$(cd "$(dirname "$0")" && pwd)
. "$podnet_dir/../../e2e/pods/lib.sh"
e2e_need_node
need_root
need_sandbox
CNI_BIN=/usr/lib/cni
for p in bridge host-local loopback portmap; do
  [ -x "$CNI_BIN/$p" ] || e2e_skip "CNI plugin $p missing in $CNI_BIN (deploy/deps.sh test: containernetworking-plugins)"
done
command -v iptables-save >/dev/null || e2e_skip "iptables missing"
[ -x "${T_NET:-/nonexistent}" ] || e2e_skip "t_net not built (${T_NET:-?}; target guestnet_progs)"
BR=qpn0
SUBNET=10.89.233
ip link show "$BR" >/dev/null 2>&1 && e2e_skip "bridge $BR exists already (another run of this test?)"

pods_setup
podnet_cleanup() {
  local rc=$?
  ip link del "$BR" 2>/dev/null || true
  (exit $rc)
  pods_cleanup
}
trap podnet_cleanup EXIT
mkdir -p "$T/ipam" "$T/tnet" "$T/cnibin"
cp "$T_NET" "$T/tnet/t_net"
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
  cat >"$T/cni/10-podnet.conflist" <<JSON
{"cniVersion":"1.0.0","name":"podnet","plugins":[
  {"type":"bridge","bridge":"$BR","isGateway":true,"ipMasq":false,"hairpinMode":true,
   "ipam":{"type":"host-local","ranges":[[{"subnet":"$SUBNET.0/24"}]],"dataDir":"$T/ipam"}},
  {"type":"portmap","capabilities":{"portMappings":true},"snat":true}$1]}
JSON
}
conflist ""
ns_before=$(netns_list)
rules_before=$(iptables-save 2>/dev/null | grep -c "$SUBNET\." || true)
start_quarkd
why=$(import_busybox) || e2e_skip "$why"
export PODNET_SUBNET=$SUBNET PODNET_TNET=$T/tnet
node "$podnet_dir/podnet.js" || e2e_fail "pod networking"
leftovers() {
[ "$(netns_list)" = "$ns_before" ] || e2e_fail "network namespaces left: $(comm -13 <(echo "$ns_before") <(netns_list))"
[ -z "$(ls -A "$T/cni-cache/results" 2>/dev/null)" ] || e2e_fail "CNI cache entries left: $(ls "$T/cni-cache/results")"
left=$(ls "$T/ipam/podnet" 2>/dev/null | grep "^$SUBNET\." || true)
[ -z "$left" ] || e2e_fail "IP reservations left: $left"
veths=$(ip -o link show master "$BR" 2>/dev/null | wc -l)
[ "$veths" = 0 ] || e2e_fail "$veths veth(s) left on $BR"
rules_after=$(iptables-save 2>/dev/null | grep -c "$SUBNET\." || true)
[ "$rules_after" = "$rules_before" ] || e2e_fail "iptables rules for $SUBNET.0/24 left: $(iptables-save | grep "$SUBNET\.")"
echo "ok   nothing left behind $1 (netns, CNI cache, IPAM, veths, iptables)"
}
leftovers "by the pods"

# A failing plugin after bridge and portmap: RunPodSandbox fails with the
# plugin's message and the ADDs that succeeded are undone.
conflist ',{"type":"podnet-fail"}'
node "$podnet_dir/podnet.js" fail || e2e_fail "failing CNI plugin"
leftovers "by the failed RunPodSandbox"
stop_quarkd
echo PASS
