#!/usr/bin/env bash
# The pod daemon's host-side jail on real KVM (see CMakeLists.txt): builds
# a busybox-static rootfs with the probe, then runs the podjail_test driver.
# Usage: podjail_test.sh DRIVER QUARK_SANDBOX QKERNEL PROBE WORKDIR
set -uo pipefail
drv=$1 sbx=$2 kernel=$3 probe=$4 work=$5
. "$(dirname "$0")/../sandbox/lib.sh"
need_kvm
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (the pod daemon's mount namespace and bind mounts)"
  exit 77
fi
busybox=/bin/busybox
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
  { echo "FAIL: busybox-static is not installed (deploy/deps.sh test)"; exit 1; }
root=$work/rootfs
rm -rf "$work"
busybox_rootfs "$root" "$busybox" sh echo cat true sleep
cp "$probe" "$root/bin/t_podjail_probe"
# Run mode (quark-sandbox run) gets masked and read-only paths like pod
# containers: a masked file reads empty, a masked directory lists nothing,
# a read-only path refuses writes, the rest of the root stays writable.
mkdir -p "$root/etc/ro" "$root/etc/secretdir"
echo top-secret >"$root/etc/secret"
echo hidden >"$root/etc/secretdir/f"
out=$(timeout 60 "$sbx" run --rootfs "$root" --kernel "$kernel" --masked-path /etc/secret \
  --masked-path /etc/secretdir --readonly-path /etc/ro -- /bin/sh -c \
  'cat /etc/secret; echo "dir:$(ls /etc/secretdir)"; echo x >/etc/ro/f && echo ro-writable;
   echo y >/tmp/w && echo tmp-writable' 2>/dev/null)
run_rc=$?
if [ $run_rc = 0 ] && [ "$out" = "$(printf 'dir:\ntmp-writable')" ]; then
  echo "ok   run mode: masked file empty, masked dir empty, read-only path refuses writes"
else
  echo "FAIL run mode masked/read-only paths: exit $run_rc, '$out'"
  run_fail=1
fi
grep -q top-secret "$root/etc/secret" || { echo "FAIL the masked file itself changed"; run_fail=1; }
timeout 150 "$drv" "$sbx" "$kernel" "$root" "$work"
rc=$?
[ "${run_fail:-0}" = 0 ] || rc=1
# A daemon whose starter gave up waiting (its ready pipe is closed when it
# gets ready: quarkd's RunPodSandbox timed out) exits instead of serving a
# pod nobody will stop.
if command -v python3 >/dev/null; then
  mkdir -p "$work/run-orphan"
  orphan=$(python3 - "$sbx" "$kernel" "$work/run-orphan/sandbox.sock" <<'PY'
import os, subprocess, sys
r, w = os.pipe()
os.close(r)
p = subprocess.Popen([sys.argv[1], "pod", "--control", sys.argv[3], "--pod-id", "d" * 64,
                      "--kernel", sys.argv[2], "--ready-fd", str(w)], pass_fds=(w,),
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
os.close(w)
try:
    print("exited %d" % p.wait(timeout=60))
except subprocess.TimeoutExpired:
    p.kill()
    print("still running")
PY
)
  if [ "$orphan" = "exited 125" ] && [ ! -e "$work/run-orphan/sandbox.sock" ]; then
    echo "ok   a daemon nobody waits for exits (125) and removes its socket"
  else
    echo "FAIL a daemon whose ready pipe is closed: $orphan"
    rc=1
  fi
fi
# Every pod daemon (and its supervisor) is gone: a leftover one would hold
# ctest's output pipe open (the latency loop reuses one socket path).
sleep 1
left=$(pgrep -f "quark-sandbox pod --control $work/run" | tr '\n' ' ')
if [ -n "$left" ]; then
  echo "FAIL pod daemons left: $left"
  for p in $left; do echo "  $p: $(tr '\0' ' ' </proc/$p/cmdline 2>/dev/null | cut -c1-300)"; done
  kill -KILL $left 2>/dev/null
  rc=1
else
  echo "ok   no pod daemon left"
fi
if [ $rc != 0 ]; then
  echo "--- sandbox logs (tail)"
  tail -20 "$work"/sandbox*.log 2>/dev/null
  for f in "$work"/sandbox*.pid; do
    pid=$(cat "$f" 2>/dev/null)
    [ -n "$pid" ] && grep -q "$work/run" "/proc/$pid/cmdline" 2>/dev/null && kill -KILL "$pid"
  done
fi
exit $rc
