#!/usr/bin/env bash
# Runs t_gmm (glibc or musl, static) on the host, then inside quark-sandbox
# on the guest tests' rootfs fixture (tests/integration/guest/mkfixture.sh).
# Usage: guest_mm_test.sh LIBC[-ring0] SANDBOX KERNEL PROGDIR [frag]
# With "frag" (or "frag-once": one round): only the fragmentation workload,
# in a 128 MiB guest.
set -uo pipefail
mode=$1 sbx=$2 kernel=$3 progs=$4 what=${5:-all}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/guest/lib.sh
. "$here/../guest/lib.sh"
guest_split_mode "$mode"
guest_setup gmm "$sbx"
root=$work/rootfs
guest_fixture "$root" "$progs" || exit 1
prog=/bin/t_gmm.$mode
if [ "$what" = all ]; then
  # The expectations are Linux's: the host must meet them too.
  if ! host=$("$progs/t_gmm.$mode" all 2>&1); then
    fail "t_gmm.$mode on the host: $host"
  fi
  SBX_ARGS="--memory 256"
else
  SBX_ARGS="--memory 128"
fi
run 120 "$prog" "$what" guest
echo "$out"
if [ "$rc" != 0 ]; then
  fail "t_gmm.$mode $what exited $rc (stderr: $(grep -v 'unimplemented syscall' "$work/err" | head -c 800))"
elif ! grep -qE '^t_gmm: [0-9]+ checks, 0 failures$' <<<"$out"; then
  fail "t_gmm.$mode $what: no clean summary"
fi
guest_done "guest_mm $mode $what${SBX_BASE:+ ($SBX_BASE)}"
