#!/usr/bin/env bash
# Runs t_sysentry (glibc or musl, static) inside quark-sandbox on the guest
# tests' rootfs fixture, with the addresses of the kernel's user syscall
# entry page from its symbols (nm): the two int3s and the worker's entry.
# Usage: guest_sysentry_test.sh LIBC[-ring0] SANDBOX KERNEL PROGDIR
set -uo pipefail
mode=$1 sbx=$2 kernel=$3 progs=$4
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/guest/lib.sh
. "$here/../guest/lib.sh"
guest_split_mode "$mode"
extra=$SBX_BASE
guest_setup sysentry "$sbx"
command -v nm >/dev/null || { echo "skip: nm is absent"; exit 77; }
sym() { nm "$kernel" | awk -v s="$1" '$3 == s { print "0x" $1 }'; }
after=$(sym qk_arch_ustub_after) w_after=$(sym qk_arch_uentry_w_after)
if [ -z "$after" ] || [ -z "$w_after" ]; then
  echo "FAIL: no user syscall entry symbols in $kernel"
  exit 1
fi
# The int3 is the byte before each return address.
int3=$(printf '%#x' $((after - 1))) w_int3=$(printf '%#x' $((w_after - 1)))
guest_fixture "$work/rootfs" "$progs" || exit 1
# Jumps to each kernel-half address: fewer in ring 0 (every kernel
# instruction emulated here; 200 there took ~85 s at load 11).
rounds=200
[ -n "$SBX_BASE" ] && rounds=40
timeout 120 "$sbx" run --rootfs "$work/rootfs" --kernel "$kernel" $extra -- \
  "/bin/t_sysentry.$mode" "$int3" "$w_int3" "$w_after" "$rounds" </dev/null >"$work/out" 2>"$work/err"
rc=$?
cat "$work/out"
if [ "$rc" != 0 ]; then
  echo "FAIL: t_sysentry.$mode exited $rc (stderr: $(head -c 800 "$work/err"))"
  fails=1
fi
if ! grep -qE '^t_sysentry: [0-9]+ checks, 0 failures$' "$work/out"; then
  echo "FAIL: t_sysentry.$mode: no clean summary"
  fails=1
fi
[ $fails = 0 ] && echo "ok: t_sysentry.$mode${extra:+ ($extra)}"
exit $fails
