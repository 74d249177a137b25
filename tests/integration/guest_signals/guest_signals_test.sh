#!/usr/bin/env bash
# Runs t_signals (glibc or musl, static) natively on this host (the
# reference), then inside quark-sandbox on 1 and 2 vCPUs.
# Usage: guest_signals_test.sh LIBC[-ring0] SANDBOX KERNEL PROGDIR
set -uo pipefail
mode=$1 sbx=$2 kernel=$3 progs=$4
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/guest/lib.sh
. "$here/../guest/lib.sh"
guest_split_mode "$mode"
guest_setup gsig "$sbx"
prog=$progs/t_signals.$mode
[ -x "$prog" ] || { echo "FAIL: $prog is not built"; exit 1; }

# check NAME OUTFILE RC: a clean summary and exit 0
check() {
  grep -v '^ok' "$2" | head -20
  if [ "$3" != 0 ] || ! grep -qE '^t_signals: [0-9]+ checks, 0 failures$' "$2"; then
    fail "$1: exit $3"
  else
    echo "ok: $1"
  fi
}

timeout 100 "$prog" all </dev/null >"$work/native" 2>&1
check "t_signals.$mode natively on this host" "$work/native" $?

guest_fixture "$work/rootfs" "$progs" >/dev/null || exit 1
# 2 vCPUs in the kernel-worker mode only: in ring-0 mode on a PVM-style
# host (emulated ring 0) 2 vCPUs take ~60 s more for the same checks.
cpus="1 2"
[ -n "$SBX_BASE" ] && [ -e /sys/module/kvm_pvm ] && cpus=1
for vcpus in $cpus; do
  # shellcheck disable=SC2086 # SBX_BASE is a flag list
  timeout 120 "$sbx" run --rootfs "$work/rootfs" --kernel "$kernel" $SBX_BASE --vcpus $vcpus \
    -- "/bin/t_signals.$mode" all </dev/null >"$work/out" 2>"$work/err"
  rc=$?
  [ $rc = 0 ] || grep -v 'unimplemented syscall' "$work/err" | head -c 800
  check "t_signals.$mode in the guest${SBX_BASE:+ ($SBX_BASE)}, $vcpus vCPU(s)" "$work/out" $rc
done
guest_done "guest_signals $1"
