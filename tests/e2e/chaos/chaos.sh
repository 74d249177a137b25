#!/usr/bin/env bash
# CRI chaos driver (chaos.js) against a private quarkd with real VMs, then
# the host-side leak checks: sandbox processes, pod netns, mounts under the
# test root, quarkd's open fds. CHAOS_OPS=N for a longer (nightly) run.
. "$(dirname "$0")/../pods/lib.sh"
need_root
need_sandbox
pods_setup
why=$(import_busybox) || e2e_skip "$why"
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
