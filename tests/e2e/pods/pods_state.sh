#!/usr/bin/env bash
# Pods and containers without a VM: bad input gets a clear gRPC error and
# changes nothing; a RunPodSandbox that fails leaves no namespace, CNI cache
# entry, IP allocation, run dir or record; a pod whose sandbox died while
# quarkd was down comes back NOTREADY with its running container EXITED, and
# RemovePodSandbox then removes everything it had (its namespace included).
. "$(dirname "$0")/lib.sh"
e2e_need_node
need_root
pods_setup
why_no_sbx=$(sandbox_missing)
export SANDBOX_MISSING=$why_no_sbx
[ -z "$why_no_sbx" ] || echo "note: $why_no_sbx: RunPodSandbox must fail and roll back"

start_quarkd
if bb_why=$(import_busybox); then export BUSYBOX=1; else export BUSYBOX=0 BUSYBOX_WHY=$bb_why; fi

no_leftovers() { # $1: what just happened
  [ -z "$(netns_ours)" ] || e2e_fail "$1: network namespaces left: $(netns_ours)"
  [ -z "$(ls -A "$T/run/pods" 2>/dev/null)" ] || e2e_fail "$1: pod run dirs left: $(ls "$T/run/pods")"
  [ -z "$(ls -A "$T/cni-cache/results" 2>/dev/null)" ] || e2e_fail "$1: CNI cache entries left: $(ls "$T/cni-cache/results")"
  [ -z "$(ls -A "$T/state/pods" 2>/dev/null)" ] || e2e_fail "$1: pod records left"
  echo "ok   $1: nothing left behind"
}

echo "== validation, unknown ids"
node "$here/state.js" basic || e2e_fail "basic checks"
no_leftovers "refused and failed RunPodSandbox calls"

echo "== a pod whose sandbox died while quarkd was down"
stop_quarkd
POD=$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)
CTR=$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)
nsname=quark-e2e-${POD:0:12}
ip netns add "$nsname" || e2e_fail "ip netns add"
rundir=$T/run/pods/${POD:0:32}
mkdir -p "$rundir/$CTR"
now=$(date +%s%N)
cat >"$T/state/pods/$POD.json" <<JSON
{"Version":1,"Id":"$POD","Name":"inj","Uid":"uid-inj","Namespace":"e2e","Attempt":0,"State":0,
 "CreatedAt":$now,"Labels":{"app":"inj"},"Annotations":{},"RuntimeHandler":"quark","Hostname":"inj",
 "LogDirectory":"$T/logs/inj",
 "Ext":{"RunDir":"$rundir","NetworkMode":"loopback","NetnsPath":"/var/run/netns/$nsname","Ip":"",
        "AdditionalIps":[],"ControlSocket":"$rundir/gone.sock"}}
JSON
cat >"$T/state/containers/$CTR.json" <<JSON
{"Version":1,"Id":"$CTR","PodId":"$POD","Name":"c0","Attempt":0,"State":1,"CreatedAt":$now,
 "StartedAt":$now,"FinishedAt":0,"ExitCode":0,"Image":"busybox","ImageRef":"","ImageId":"",
 "Reason":"","Message":"","LogPath":"","Labels":{},"Annotations":{},"Ext":{"Dir":"$rundir/$CTR"}}
JSON
start_quarkd
INJ_POD=$POD INJ_CTR=$CTR node "$here/state.js" injected || e2e_fail "stopped-pod checks"
[ ! -e "/var/run/netns/$nsname" ] || { ip netns delete "$nsname"; e2e_fail "RemovePodSandbox left the pod's netns"; }
no_leftovers "RemovePodSandbox of a pod whose sandbox died"

echo "== CNI config naming a missing plugin"
cat >"$T/cni/10-missing.conflist" <<JSON
{"cniVersion":"1.0.0","name":"e2e-missing","plugins":[{"type":"no-such-plugin"}]}
JSON
node "$here/state.js" cni-missing || e2e_fail "missing plugin checks"
no_leftovers "RunPodSandbox with a missing CNI plugin"
rm -f "$T/cni/10-missing.conflist"

if [ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ]; then
  echo "== CNI bridge network (host-local IPs in $T/ipam)"
  br=qe2e$((RANDOM % 10000))
  bridge_conflist 10-bridge.conflist e2e-bridge "$br" "10.199.$((RANDOM % 200))"
  node "$here/state.js" cni-bridge || e2e_fail "bridge checks"
  ips=$(find "$T/ipam" -type f ! -name 'last_reserved_ip*' ! -name lock 2>/dev/null | wc -l)
  ip link delete "$br" 2>/dev/null || true
  [ "$ips" = 0 ] || e2e_fail "host-local IP allocations left: $(find "$T/ipam" -type f)"
  no_leftovers "RunPodSandbox on a bridge network"
else
  echo "skip bridge network: no CNI bridge plugin (containernetworking-plugins)"
fi
stop_quarkd
echo "PASS"
