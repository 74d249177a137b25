#!/usr/bin/env bash
# CNI failures through quarkd (cnifail.js does the CRI calls): a network of
# bridge + host-local + a script plugin (cnifail, written here) that refuses
# ADD while $T/fail-add exists and DEL while $T/fail-del exists, on a bridge
# and subnet of this run's own (qcfN, 10.86.N.0/24). No VM: the sandbox
# binary is a path that does not exist, so a pod whose ADD succeeds fails at
# the sandbox start. Then a pod whose teardown is pending across a restart
# of quarkd: the restart's recovery DELs it once the plugin accepts.
cnifail_dir=$(cd "$(dirname "$0")" && pwd)
. "$cnifail_dir/../pods/lib.sh"
e2e_need_node
need_root
need_cni_plugins bridge host-local loopback
command -v jq >/dev/null || e2e_skip "jq missing"
pick_test_bridge qcf 10.86

pods_setup
cnifail_cleanup() {
  local rc=$?
  set +e
  ip link del "$BR" 2>/dev/null
  (exit $rc)
  pods_cleanup
}
trap cnifail_cleanup EXIT
mkdir -p "$T/ipam" "$T/cnibin"
cat >"$T/cnibin/cnifail" <<SH
#!/bin/sh
conf=\$(cat)
case "\$CNI_COMMAND" in
ADD)
  if [ -e "$T/fail-add" ]; then
    echo '{"cniVersion":"1.0.0","code":11,"msg":"cnifail refuses ADD","details":"test plugin"}'; exit 1
  fi
  printf '%s' "\$conf" | jq -c .prevResult ;;
DEL)
  if [ -e "$T/fail-del" ]; then
    echo '{"cniVersion":"1.0.0","code":11,"msg":"cnifail refuses DEL","details":"test plugin"}'; exit 1
  fi ;;
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
esac
exit 0
SH
chmod +x "$T/cnibin/cnifail"
sed -i "s|\"Cni\":{|\"Cni\":{\"BinDirs\":[\"$T/cnibin\",\"$CNI_BIN\"],|" "$T/config.json"
cat >"$T/cni/10-cnifail.conflist" <<JSON
{"cniVersion":"1.0.0","name":"cnifail","plugins":[
  {"type":"bridge","bridge":"$BR","isGateway":true,"ipMasq":false,
   "ipam":{"type":"host-local","ranges":[[{"subnet":"$SUBNET.0/24"}]],"dataDir":"$T/ipam"}},
  {"type":"cnifail"}]}
JSON
export CNIFAIL_SUBNET=$SUBNET CNIFAIL_IPAM=$T/ipam/cnifail CNIFAIL_CACHE=$T/cni-cache/results
start_quarkd
node "$cnifail_dir/cnifail.js" || e2e_fail "CNI failures"

# A pending teardown across a restart: quarkd stops with the pod kept, the
# plugin accepts DEL again, and the next quarkd's recovery removes it.
node "$cnifail_dir/cnifail.js" restart-before || e2e_fail "pending teardown before the restart"
stop_quarkd
rm -f "$T/fail-del"
start_quarkd
node "$cnifail_dir/cnifail.js" restart-after || e2e_fail "pending teardown after the restart"
grep -qs "finished the network teardown a failed RunPodSandbox left pending" "$T"/quark.log "$T"/quarkd.log ||
  e2e_fail "the restart did not log the finished teardown"
echo "ok   the restart finished the pending teardown"
left=$(netns_ours)
[ -z "$left" ] || e2e_fail "network namespaces left: $left"
veths=$(ip -o link show master "$BR" 2>/dev/null | wc -l)
[ "$veths" = 0 ] || e2e_fail "$veths veth(s) left on $BR"
echo "ok   no netns or veth left"
stop_quarkd
echo PASS
