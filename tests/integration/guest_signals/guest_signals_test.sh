#!/usr/bin/env bash
# Runs t_signals and t_jobctl (glibc or musl, static) natively on this host
# (the reference), then inside quark-sandbox on 1 and 2 vCPUs.
# Usage: guest_signals_test.sh LIBC[-ring0] SANDBOX KERNEL PROGDIR
set -uo pipefail
mode=$1 sbx=$2 kernel=$3 progs=$4
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/guest/lib.sh
. "$here/../guest/lib.sh"
guest_split_mode "$mode"
guest_setup gsig "$sbx"
for t in t_signals t_jobctl; do
  [ -x "$progs/$t.$mode" ] || { echo "FAIL: $progs/$t.$mode is not built"; exit 1; }
done

# check NAME PROG OUTFILE RC: a clean summary of PROG and exit 0
check() {
  grep -v '^ok' "$3" | head -20
  if [ "$4" != 0 ] || ! grep -qE "^$2: [0-9]+ checks, 0 failures\$" "$3"; then
    fail "$1: exit $4"
  else
    echo "ok: $1"
  fi
}

for t in t_signals t_jobctl; do
  timeout 100 "$progs/$t.$mode" all </dev/null >"$work/native" 2>&1
  check "$t.$mode natively on this host" $t "$work/native" $?
done

# the busybox job-control flow (jobctl.sh), natively with the same busybox
want="jobctl: stopped=T after-term=T wait=143"
shcheck() {
  if grep -qx "$want" "$2"; then echo "ok: $1"; else fail "$1: $(head -c 300 "$2")"; fi
}
timeout 60 busybox sh "$here/jobctl.sh" </dev/null >"$work/native" 2>/dev/null
shcheck "jobctl.sh natively" "$work/native"

guest_fixture "$work/rootfs" "$progs" >/dev/null || exit 1
cp "$here/jobctl.sh" "$work/rootfs/jobctl.sh"
# 2 vCPUs in the kernel-worker mode only: in ring-0 mode on a PVM-style
# host (emulated ring 0) 2 vCPUs take ~60 s more for the same checks.
cpus="1 2"
[ -n "$SBX_BASE" ] && [ -e /sys/module/kvm_pvm ] && cpus=1
for vcpus in $cpus; do
  for t in t_signals t_jobctl; do
    # shellcheck disable=SC2086 # SBX_BASE is a flag list
    timeout 120 "$sbx" run --rootfs "$work/rootfs" --kernel "$kernel" $SBX_BASE --vcpus $vcpus \
      -- "/bin/$t.$mode" all </dev/null >"$work/out" 2>"$work/err"
    rc=$?
    [ $rc = 0 ] || grep -v 'unimplemented syscall' "$work/err" | head -c 800
    check "$t.$mode in the guest${SBX_BASE:+ ($SBX_BASE)}, $vcpus vCPU(s)" $t "$work/out" $rc
  done
  # shellcheck disable=SC2086 # SBX_BASE is a flag list
  timeout 60 "$sbx" run --rootfs "$work/rootfs" --kernel "$kernel" $SBX_BASE --vcpus $vcpus \
    -- /bin/sh /jobctl.sh </dev/null >"$work/out" 2>"$work/err"
  shcheck "jobctl.sh in the guest${SBX_BASE:+ ($SBX_BASE)}, $vcpus vCPU(s)" "$work/out"
done
guest_done "guest_signals $1"
