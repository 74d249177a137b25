#!/usr/bin/env bash
# Runs t_gmisc (glibc or musl, static) inside quark-sandbox on the guest
# tests' rootfs fixture (tests/integration/guest/mkfixture.sh).
# Usage: guest_misc_test.sh LIBC[-ring0] SANDBOX KERNEL PROGDIR
# In the kernel-worker mode on a host whose apps have AVX, signal frames
# must carry the XSAVE image (the program prints the frame kind).
set -uo pipefail
mode=$1 sbx=$2 kernel=$3 progs=$4
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/guest/lib.sh
. "$here/../guest/lib.sh"
guest_split_mode "$mode"
extra=$SBX_BASE
guest_setup gmisc "$sbx"
guest_fixture "$work/rootfs" "$progs" || exit 1
timeout 120 "$sbx" run --rootfs "$work/rootfs" --kernel "$kernel" $extra -- "/bin/t_gmisc.$mode" all \
  </dev/null >"$work/out" 2>"$work/err"
rc=$?
cat "$work/out"
fails=0
if [ "$rc" != 0 ]; then
  echo "FAIL: t_gmisc.$mode exited $rc (stderr: $(grep -v 'unimplemented syscall' "$work/err" | head -c 800))"
  fails=1
fi
if ! grep -qE '^t_gmisc: [0-9]+ checks, 0 failures$' "$work/out"; then
  echo "FAIL: t_gmisc.$mode: no clean summary"
  fails=1
fi
if [ -z "$extra" ] && grep -qE '^vector registers: (ymm|zmm)' "$work/out" &&
  grep -qE '^frame .*fxsave' "$work/out"; then
  echo "FAIL: kernel-worker mode delivered an FXSAVE-only frame to an AVX program"
  fails=1
fi
[ $fails = 0 ] && echo "ok: t_gmisc.$mode${extra:+ ($extra)}"
exit $fails
