#!/usr/bin/env bash
# quark-sandbox end to end on real KVM: a busybox-static rootfs fixture in
# the build dir, `run -- /bin/busybox echo hi`, exit-status propagation,
# stdin passthrough, guest faults and a broken kernel image reported as
# sandbox failures (125) without hurting the host.
# Usage: sandbox_test.sh QUARK_SANDBOX WORKDIR
set -uo pipefail
sbx=$1
work=$2
. "$(dirname "$0")/lib.sh"
need_kvm
busybox=$(command -v busybox || true)
if [ -z "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
  busybox=/bin/busybox
fi
if [ ! -x "$busybox" ]; then
  echo "FAIL: busybox-static is not installed (deploy/deps.sh test)"
  exit 1
fi

root=$work/rootfs
rm -rf "$root"
busybox_rootfs "$root" "$busybox" sh echo cat true false ls wc

fails=0
check() { # name expected-status expected-stdout -- command...
  local name=$1 want_rc=$2 want_out=$3
  shift 4
  local out rc
  out=$(timeout 60 "$@" 2>"$work/stderr")
  rc=$?
  if [ "$rc" != "$want_rc" ] || [ "$out" != "$want_out" ]; then
    echo "FAIL: $name: status $rc (want $want_rc), stdout '$out' (want '$want_out')"
    sed 's/^/  stderr: /' "$work/stderr" | tail -20
    fails=$((fails + 1))
  else
    echo "ok: $name"
  fi
}

run=("$sbx" run --rootfs "$root" --memory 128)
check "echo hi" 0 "hi" -- "${run[@]}" -- /bin/busybox echo hi
check "false exits 1" 1 "" -- "${run[@]}" -- /bin/busybox false
check "true exits 0" 0 "" -- "${run[@]}" -- /bin/busybox true
check "sh exit 42" 42 "" -- "${run[@]}" -- /bin/busybox sh -c 'exit 42'
check "PATH lookup" 0 "via path" -- "${run[@]}" -- echo via path
check "argv and env" 0 "a b X=1" -- "${run[@]}" --env X=1 -- /bin/busybox sh -c 'echo "$0 $1 X=$X"' a b
check "2 vcpus" 0 "smp" -- "${run[@]}" --vcpus 2 -- /bin/busybox echo smp
# Both syscall paths: the ring-3 kernel worker (default on PVM-style KVM)
# and the kernel in ring 0 (hardware KVM's path; forced here).
check "kernel worker" 3 "worker" -- "${run[@]}" --kernel-worker -- /bin/busybox sh -c 'echo worker; exit 3'
check "ring-0 kernel" 4 "ring0" -- "${run[@]}" --no-kernel-worker -- /bin/busybox sh -c 'echo ring0; exit 4'
out=$(printf 'abc\n' | timeout 60 "${run[@]}" --no-kernel-worker -- /bin/busybox cat 2>"$work/stderr")
if [ "$out" = "abc" ]; then echo "ok: stdin passthrough (ring-0 kernel)"; else
  echo "FAIL: stdin passthrough (ring-0 kernel): '$out'"; cat "$work/stderr"; fails=$((fails + 1)); fi
out=$(printf 'from stdin\n' | timeout 60 "${run[@]}" -- /bin/busybox cat 2>"$work/stderr")
if [ "$out" = "from stdin" ]; then echo "ok: stdin passthrough"; else
  echo "FAIL: stdin passthrough: '$out'"; cat "$work/stderr"; fails=$((fails + 1)); fi
check "missing program" 125 "" -- "${run[@]}" -- /bin/nonexistent
check "missing rootfs" 125 "" -- "$sbx" run --rootfs "$work/nope" -- /bin/busybox true

# A kernel image that is not one: refused before the VM runs.
head -c 4096 /dev/urandom >"$work/bad-kernel"
check "bad kernel image" 125 "" -- "${run[@]}" --kernel "$work/bad-kernel" -- /bin/busybox true

# A kernel that faults in ring 0 (its entry patched to ud2): the guest's
# panic is reported with a register dump and exit status 125.
kernel=$(dirname "$sbx")/../guestkernel/qkernel.bin
if [ -f "$kernel" ] && command -v readelf >/dev/null; then
  entry=$(readelf -h "$kernel" | awk '/Entry point/ {print $4}')
  off=
  while read -r typ fo va _ fsz _; do
    [ "$typ" = LOAD ] || continue
    if (( entry >= va && entry < va + fsz )); then off=$(( fo + entry - va )); break; fi
  done < <(readelf -lW "$kernel")
  cp "$kernel" "$work/ud2-kernel"
  printf '\x0f\x0b' | dd of="$work/ud2-kernel" bs=1 seek="$off" conv=notrunc status=none
  timeout 60 "${run[@]}" --kernel "$work/ud2-kernel" -- /bin/busybox true >/dev/null 2>"$work/stderr"
  rc=$?
  if [ "$rc" = 125 ] && grep -q "guest kernel panic" "$work/stderr" && grep -q "vec=0000000000000006" "$work/stderr" &&
    grep -q " rip=" "$work/stderr"; then
    echo "ok: ring-0 fault reported with a register dump, exit 125"
  else
    echo "FAIL: ring-0 fault: status $rc"; tail -12 "$work/stderr"; fails=$((fails + 1))
  fi
fi

# The stats file counts VM exits and reports the boot time.
"${run[@]}" --stats "$work/stats" -- /bin/busybox true >/dev/null 2>&1
if grep -q '^boot_to_first_instruction_us ' "$work/stats" && grep -q '^kvm_exits ' "$work/stats"; then
  echo "ok: stats file ($(grep -E '^(boot_to_first_instruction_us|kvm_exits) ' "$work/stats" | tr '\n' ' '))"
else
  echo "FAIL: stats file"; cat "$work/stats"; fails=$((fails + 1))
fi

[ "$fails" -eq 0 ] && echo "PASS" && exit 0
echo "$fails failure(s)"
exit 1
