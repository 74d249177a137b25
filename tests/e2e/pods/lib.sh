# Helpers for the pod end-to-end tests, on top of ../cri/lib.sh (a private
# quarkd on a temporary socket, state root and log).
# Environment from CMake: QUARKD, QUARK, QUARK_PROTO, NODE_PATH, and
# QUARK_SANDBOX / QUARK_KERNEL / QUARK_SBX_CLIENT when the sandbox is built,
# IMG_TEST_IMAGES (shared test image dir), IMG_SRC (source root).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../cri/lib.sh"
export CRI_COMMON="$here/../cri/common.js"

# pods_setup [extra JSON members]: e2e_setup with the sandbox paths and the
# CNI dirs inside $T.
pods_setup() {
  e2e_setup
  mkdir -p "$T/cni" "$T/cni-cache" "$T/logs"
  cat >"$T/config.json" <<JSON
{"Socket":"unix://$SOCK","StateRoot":"$T/state","ImageRoot":"$T/images",
 "LogFile":"$T/quark.log","DebugLevel":"${E2E_DEBUG_LEVEL:-Debug}",
 "Sandbox":{"Binary":"${QUARK_SANDBOX:-/nonexistent/quark-sandbox}","Kernel":"${QUARK_KERNEL:-/nonexistent/qkernel.bin}"},
 "Cni":{"ConfDir":"$T/cni","CacheDir":"$T/cni-cache"}${1:+,$1}}
JSON
  export QUARK_CONFIG=$T/config.json E2E_T=$T
  trap pods_cleanup EXIT
}

# On any exit: first the script's own clean-up, a function pods_on_exit
# when it defines one; then a failed test must not leave the machine with
# the pods' namespaces or mounts (what a passing test checks quarkd removed
# itself). Under set -e a trap would stop at its first failing command.
pods_cleanup() {
  local rc=$?
  set +e
  if declare -F pods_on_exit >/dev/null; then pods_on_exit; fi
  if [ -n "${QPID:-}" ] && kill -0 "$QPID" 2>/dev/null; then
    kill -KILL "$QPID" 2>/dev/null || true
    wait "$QPID" 2>/dev/null || true
    QPID=
  fi
  for pid in $(pgrep -f "$T/run/pods" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
  # The pods' cgroups (cri/pod_cgroup.c), which only RemovePodSandbox removes.
  for f in "$T"/state/pods/*.json; do
    [ -f "$f" ] || continue
    cg=$(jq -r '.Ext.Cgroup.Path // empty' "$f" 2>/dev/null || true)
    [ -n "$cg" ] || continue
    case "$cg" in *..*) continue ;; esac
    for d in /sys/fs/cgroup/{cpu,cpuacct,memory,pids}/"$cg" "/sys/fs/cgroup/$cg"; do
      [ -d "$d" ] || continue
      for pid in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
      for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$d" 2>/dev/null && break; sleep 0.1; done
    done
  done
  for f in "$T"/state/pods/*.json; do
    [ -f "$f" ] || continue
    ns=$(jq -r '.Ext.NetnsPath // empty' "$f" 2>/dev/null || true)
    [ -n "$ns" ] && { umount "$ns" 2>/dev/null || true; rm -f "$ns"; }
  done
  for m in $(grep " $T/" /proc/mounts | awk '{print $2}' | sort -r); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  # e2e_cleanup reads the status from $?.
  (exit $rc)
  e2e_cleanup
}

# Why pods cannot run VMs here, or nothing when they can.
sandbox_missing() {
  [ "${QUARK_SBX_CLIENT:-0}" = 1 ] || { echo "quarkd is built without the sandbox client (target quark_sbx_client does not exist yet)"; return; }
  [ -x "${QUARK_SANDBOX:-/nonexistent}" ] || { echo "quark-sandbox not built"; return; }
  [ -r "${QUARK_KERNEL:-/nonexistent}" ] || { echo "qkernel.bin not built"; return; }
  [ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "/dev/kvm is not usable"; return; }
}

need_sandbox() {
  local why
  why=$(sandbox_missing)
  [ -z "$why" ] || e2e_skip "$why"
}

# need_cni_plugins NAME...: CNI_BIN=/usr/lib/cni (Debian's
# containernetworking-plugins), and a skip (77) when one of them is missing.
need_cni_plugins() {
  CNI_BIN=/usr/lib/cni
  local p
  for p in "$@"; do
    [ -x "$CNI_BIN/$p" ] || e2e_skip "CNI plugin $p missing in $CNI_BIN (deploy/deps.sh test: containernetworking-plugins)"
  done
}

# pick_test_bridge PREFIX NET: BR=<PREFIX>N and SUBNET=<NET>.N (a /24) for a
# random N whose bridge name and subnet are both free on this host (other
# tests and sessions run beside); skips (77) when none is.
pick_test_bridge() {
  BR= SUBNET=
  local n
  for _ in $(seq 50); do
    n=$((RANDOM % 250))
    if ! ip link show "$1$n" >/dev/null 2>&1 && [ -z "$(ip route show to match "$2.$n.1" | grep -v '^default')" ]; then
      BR=$1$n SUBNET=$2.$n
      return 0
    fi
  done
  e2e_skip "no free test bridge name and subnet ($1N, $2.N.0/24)"
}

need_root() { [ "$(id -u)" = 0 ] || e2e_skip "needs root (network namespaces, overlay mounts)"; }

# Imports the busybox test image (tests/images/build.sh) into $T's store as
# docker.io/library/busybox:latest. Returns 1 with a reason when it cannot.
import_busybox() {
  for t in umoci skopeo; do command -v $t >/dev/null || { echo "$t missing (deploy/deps.sh test)"; return 1; }; done
  local imgs=${IMG_TEST_IMAGES:-$T/test-images}
  bash "$here/../../images/build.sh" "$imgs" busybox >"$T/build-images.log" 2>&1 ||
    { echo "tests/images/build.sh busybox failed: $(tail -3 "$T/build-images.log")"; return 1; }
  skopeo copy -q "oci:$imgs/busybox:latest" "oci-archive:$T/busybox.tar:latest" >/dev/null ||
    { echo "skopeo copy failed"; return 1; }
  "$QUARK" import "$T/busybox.tar" docker.io/library/busybox >"$T/import.log" 2>&1 ||
    { echo "quark import failed: $(cat "$T/import.log")"; return 1; }
}

# need_busybox: import_busybox, or a skip (77) with the reason it gives.
need_busybox() {
  local why
  why=$(import_busybox) || e2e_skip "$why"
}

# pods_busybox_start: the start of a test of busybox pods: node and its CRI
# client, root and the sandbox (each a skip, 77, when missing), pods_setup,
# a running quarkd and the busybox image.
pods_busybox_start() {
  e2e_need_node
  need_root
  need_sandbox
  pods_setup
  start_quarkd
  need_busybox
}

# bridge_conflist FILE NAME BRIDGE SUBNET [BRIDGE_OPTS [MORE_PLUGINS]]: the
# CNI network list $T/cni/FILE named NAME: Debian's bridge plugin on BRIDGE
# (the gateway, no masquerade; BRIDGE_OPTS adds members, as in
# ',"hairpinMode":true') with host-local addresses from SUBNET.0/24 kept in
# $T/ipam, then MORE_PLUGINS (JSON objects, each after a comma).
bridge_conflist() {
  cat >"$T/cni/$1" <<JSON
{"cniVersion":"1.0.0","name":"$2","plugins":[
  {"type":"bridge","bridge":"$3","isGateway":true,"ipMasq":false${5:-},
   "ipam":{"type":"host-local","ranges":[[{"subnet":"$4.0/24"}]],"dataDir":"$T/ipam"}}${6:-}]}
JSON
}

# quark-* network namespaces pinned right now, one per line.
netns_list() { ls /var/run/netns 2>/dev/null | grep '^quark-' | sort || true; }
# The pod namespaces (quark-<first 16 hex of the pod id>) that THIS test's
# quarkd made and that are still there: quarkd logs every pod's id, so a
# namespace of another run on the same host (a developer's, a parallel ctest)
# does not fail this test.
netns_ours() {
  local n id
  for n in $(netns_list); do
    id=${n#quark-}
    # one grep over both logs: under pipefail, `cat a b | grep -q` failed
    # whenever one of them was missing and found nothing
    grep -qs "\[${id:0:12}" "$T"/quark.log "$T"/quarkd.log && echo "$n"
  done
  return 0
}
