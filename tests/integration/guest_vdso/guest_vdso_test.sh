#!/usr/bin/env bash
# Runs t_vdso (glibc or musl, static) inside quark-sandbox on the guest
# tests' rootfs fixture (tests/integration/guest/mkfixture.sh) as the boot
# process (vDSO from the host loader's auxv slot), which also forks and
# execs itself (vDSO kept across fork, mapped by execve).
# Usage: guest_vdso_test.sh LIBC[-ring0] SANDBOX KERNEL PROGDIR
set -uo pipefail
mode=$1 sbx=$2 kernel=$3 progs=$4
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/guest/lib.sh
. "$here/../guest/lib.sh"
guest_split_mode "$mode"
extra=$SBX_BASE
guest_setup vdso "$sbx"
guest_fixture "$work/rootfs" "$progs" || exit 1
timeout 100 "$sbx" run --rootfs "$work/rootfs" --kernel "$kernel" $extra -- "/bin/t_vdso.$mode" \
  </dev/null >"$work/out" 2>"$work/err"
rc=$?
cat "$work/out"
if [ "$rc" != 0 ]; then
  echo "FAIL: t_vdso.$mode exited $rc (stderr: $(head -c 800 "$work/err"))"
  exit 1
fi
if ! grep -qE '^t_vdso: [0-9]+ checks, 0 failures$' "$work/out"; then
  echo "FAIL: t_vdso.$mode: no clean summary"
  exit 1
fi
echo "ok: t_vdso.$mode${extra:+ ($extra)}"
