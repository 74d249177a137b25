#!/usr/bin/env bash
# CRI chaos against a private quarkd with real VMs.
#   chaos.sh            random CRI call sequences (chaos.js), then the
#                       host-side leak checks: sandbox processes, pod netns,
#                       mounts under the test root, quarkd's open fds.
#   chaos.sh --restart  restart chaos (restart.js): concurrent clients while
#                       quarkd is killed with SIGKILL at random moments and
#                       restarted; every pod fully present or fully gone,
#                       nothing leaked (loopback-only pod networking).
#   --cni               (with --restart) pods on a CNI network of their own
#                       (Debian's bridge + host-local plugins, a qcxN bridge
#                       and 10.89.N.0/24): interrupted ADD/DEL, and no CNI
#                       cache entry or IPAM lease may be left either.
#   --long              the nightly size (CHAOS_OPS=600 / CHAOS_KILLS=40).
# CHAOS_SEED=N replays a seed (the figures line prints it); CHAOS_OPS,
# CHAOS_KILLS and CHAOS_WORKERS set the sizes by hand; CHAOS_KEEP_LOG=FILE
# keeps quarkd's log of a restart run.
. "$(dirname "$0")/../pods/lib.sh"
mode=sequences cni=0
for a in "$@"; do
  case "$a" in
    --restart) mode=restart ;;
    --cni) cni=1 ;;
    --long) export CHAOS_OPS=${CHAOS_OPS:-600} CHAOS_KILLS=${CHAOS_KILLS:-40} ;;
    *) echo "chaos.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
e2e_need_node
need_root
need_sandbox
pods_setup
need_busybox

if [ "$mode" = restart ]; then
  BR=
  if [ $cni = 1 ]; then
    need_cni_plugins bridge host-local loopback
    pick_test_bridge qcx 10.89
    mkdir -p "$T/ipam"
    sed -i "s|\"Cni\":{|\"Cni\":{\"BinDirs\":[\"$CNI_BIN\"],|" "$T/config.json"
    bridge_conflist 10-chaos.conflist chaos "$BR" "$SUBNET"
    export CHAOS_IPAM=$T/ipam/chaos
  fi
  # restart.js runs quarkd itself; on any exit, its last quarkd and the
  # namespaces of half-created pods (named in quarkd's log, never recorded)
  # go too, then the usual clean-up.
  pods_on_exit() {
    [ -z "${CHAOS_KEEP_LOG:-}" ] || cat "$T"/quark*.log >"$CHAOS_KEEP_LOG"
    [ -f "$T/quarkd.pid" ] && kill -KILL "$(cat "$T/quarkd.pid")" 2>/dev/null
    for ns in $(netns_ours); do umount "/var/run/netns/$ns" 2>/dev/null; rm -f "/var/run/netns/$ns"; done
    [ -z "$BR" ] || ip link del "$BR" 2>/dev/null
  }
  export QUARKD
  node "$(dirname "$0")/restart.js" || e2e_fail "restart.js"
  echo PASS
  exit 0
fi

netns_before=$(netns_list)
start_quarkd
"$QUARK" version >/dev/null
sleep 0.5
fds_before=$(ls /proc/$QPID/fd | wc -l)
t0=$(date +%s)
node "$(dirname "$0")/chaos.js" || e2e_fail "chaos.js"
sleep 1
fds_after=$(ls /proc/$QPID/fd | wc -l)
procs=$( (pgrep -f "$T/run/pods" || true) | wc -l)
netns_after=$(netns_list)
# ours: named in quarkd's pod records (other sessions' tests make quark-* netns too)
new_netns=0
for ns in $(comm -13 <(echo "$netns_before") <(echo "$netns_after") || true); do
  if grep -qs "$ns" "$T"/state/pods/*.json "$T/quark.log"; then new_netns=$((new_netns + 1)); fi
done
mounts=$(grep -c " $T/" /proc/mounts || true)
echo "chaos: leaks after $(( $(date +%s) - t0 )) s: sandbox processes $procs, pod netns $new_netns, mounts $mounts, quarkd fds $fds_before -> $fds_after"
[ "$procs" = 0 ] || e2e_fail "sandbox processes left: $(pgrep -af "$T/run/pods")"
[ "$new_netns" = 0 ] || e2e_fail "network namespaces of our pods left"
[ "$mounts" = 0 ] || e2e_fail "mounts left: $(grep " $T/" /proc/mounts)"
[ "$fds_after" -le $((fds_before + 2)) ] || e2e_fail "quarkd fds grew: $fds_before -> $fds_after ($(ls -l /proc/$QPID/fd | tail -5))"
stop_quarkd
echo PASS
