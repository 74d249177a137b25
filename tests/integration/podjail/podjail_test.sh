#!/usr/bin/env bash
# The pod daemon's host-side jail on real KVM (see CMakeLists.txt): builds
# a busybox-static rootfs with the probe, then runs the podjail_test driver.
# Usage: podjail_test.sh DRIVER QUARK_SANDBOX QKERNEL PROBE WORKDIR
set -uo pipefail
drv=$1 sbx=$2 kernel=$3 probe=$4 work=$5
if [ ! -c /dev/kvm ] || ! { exec 9<>/dev/kvm; } 2>/dev/null; then
  echo "SKIP: /dev/kvm is absent or not accessible"
  exit 77
fi
exec 9>&-
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (the pod daemon's mount namespace and bind mounts)"
  exit 77
fi
busybox=/bin/busybox
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
  { echo "FAIL: busybox-static is not installed (deploy/deps.sh test)"; exit 1; }
root=$work/rootfs
rm -rf "$work"
mkdir -p "$root/bin" "$root/tmp"
cp "$busybox" "$root/bin/busybox"
cp "$probe" "$root/bin/t_podjail_probe"
for a in sh echo cat true sleep; do ln -sf busybox "$root/bin/$a"; done
timeout 150 "$drv" "$sbx" "$kernel" "$root" "$work"
rc=$?
if [ $rc != 0 ]; then
  echo "--- sandbox logs (tail)"
  tail -20 "$work"/sandbox*.log 2>/dev/null
  for f in "$work"/sandbox*.pid; do
    pid=$(cat "$f" 2>/dev/null)
    [ -n "$pid" ] && grep -q "$work/run" "/proc/$pid/cmdline" 2>/dev/null && kill -KILL "$pid"
  done
fi
exit $rc
