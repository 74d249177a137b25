#!/usr/bin/env bash
# splice/tee/vmsplice: t_splice natively, then in the guest; every result
# line must match. Usage: guest_splice_test.sh LIBC[-ring0] SANDBOX KERNEL PROGDIR
# Files: a rootfs directory (host files) and /dev/shm (the guest's tmpfs;
# natively the host's); sockets: unix pairs and TCP over 127.0.0.1 in a
# network namespace made here, with an 8 MiB relay and its checksum.
set -uo pipefail
mode=$1 sbx=$2 kernel=$3 progs=$4
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/integration/guest/lib.sh
. "$here/../guest/lib.sh"
guest_split_mode "$mode"
guest_setup splice "$sbx"
guest_netns qspl
prog=t_splice.$mode
[ -x "$progs/$prog" ] || { echo "FAIL: $progs/$prog is not built"; exit 1; }

# Natively (a directory under /tmp, like the guest's /tmp: "files rootfs").
mkdir -p "$work/tmp"
nsx timeout 60 "$progs/$prog" "$work/tmp" /dev/shm net >"$work/native" 2>&1
nrc=$?
if [ $nrc != 0 ] || ! grep -qE '^t_splice: [0-9]+ checks, 0 failures$' "$work/native"; then
  fail "native run: exit $nrc [$(head -c 1500 "$work/native")]"
fi

root=$work/rootfs
guest_fixture "$root" "$progs" >/dev/null || exit 1
# shellcheck disable=SC2086 # SBX_BASE is a flag list
nsx timeout 150 "$sbx" run --rootfs "$root" --kernel "$kernel" $SBX_BASE -- "/bin/$prog" /tmp /dev/shm net \
  </dev/null >"$work/guest" 2>"$work/err"
grc=$?
cat "$work/guest"
if [ $grc != 0 ] || ! grep -qE '^t_splice: [0-9]+ checks, 0 failures$' "$work/guest"; then
  fail "guest run${SBX_BASE:+ ($SBX_BASE)}: exit $grc (stderr: $(grep -v 'unimplemented syscall' "$work/err" | head -c 800))"
fi
# The same answers: every line but the file-cases' directory names.
if ! diff <(sed 's/^files [^ ]*/files/' "$work/native") <(sed 's/^files [^ ]*/files/' "$work/guest") >"$work/diff"; then
  fail "guest and native outputs differ: $(head -c 1500 "$work/diff")"
else
  echo "ok: $prog${SBX_BASE:+ ($SBX_BASE)}: the guest's $(grep -c . "$work/guest") lines match the native run"
fi
guest_done "guest_splice $mode"
