#!/usr/bin/env bash
# Pod mode on real KVM: builds the busybox-static rootfs fixture (as
# tests/integration/sandbox does), then runs the pod_test driver.
# Usage: pod_test.sh POD_TEST QUARK_SANDBOX QKERNEL WORKDIR
set -uo pipefail
drv=$1 sbx=$2 kernel=$3 work=$4
. "$(dirname "$0")/../sandbox/lib.sh"
need_kvm
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (bind mounts in a private mount namespace)"
  exit 77
fi
busybox=$(command -v busybox || true)
if [ -z "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
  busybox=/bin/busybox
fi
[ -x "$busybox" ] || { echo "FAIL: busybox-static is not installed (deploy/deps.sh test)"; exit 1; }
root=$work/rootfs
rm -rf "$work"
busybox_rootfs "$root" "$busybox" sh echo cat true false ls sleep
timeout 240 "$drv" "$sbx" "$kernel" "$root" "$work"
rc=$?
if [ $rc != 0 ]; then
  echo "--- sandbox log (tail)"
  tail -30 "$work/sandbox.log" 2>/dev/null
  pid=$(cat "$work/sandbox.pid" 2>/dev/null)
  [ -n "$pid" ] && grep -q "$work/run" "/proc/$pid/cmdline" 2>/dev/null && kill -KILL "$pid"
fi
exit $rc
