#!/usr/bin/env bash
# Usage: run.sh SANDBOX KERNEL PROG...: runs each t_pty build inside
# `quark-sandbox run` on a rootfs holding only the program.
set -uo pipefail
sbx=$1 kernel=$2
shift 2
[ -e /dev/kvm ] || { echo "SKIP: /dev/kvm is absent"; exit 77; }
work=$(mktemp -d /tmp/quark-tty.XXXXXX)
trap 'rm -rf "$work"' EXIT
rc=0
for prog in "$@"; do
  root=$work/rootfs
  rm -rf "$root" && mkdir -p "$root/tmp" && cp "$prog" "$root/t_pty"
  echo "== $(basename "$prog")"
  if ! timeout 60 "$sbx" run --rootfs "$root" --kernel "$kernel" -- /t_pty </dev/null; then
    echo "FAIL: $(basename "$prog") exited $?"
    rc=1
  fi
done
exit $rc
