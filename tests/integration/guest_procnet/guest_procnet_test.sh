#!/usr/bin/env bash
# /proc/net end to end: t_procnet inside quark-sandbox (real KVM) in a
# network namespace with a veth whose peer sits in a second namespace.
# Usage: guest_procnet_test.sh VARIANT SANDBOX KERNEL PROGDIR   (VARIANT: glibc | musl)
set -uo pipefail
v=$1 sbx=$2 kernel=$3 progs=$4
prog=$progs/t_procnet.$v

# shellcheck source=tests/integration/guest/lib.sh
. "$(dirname "$0")/../guest/lib.sh"
guest_setup guest_procnet "$sbx"
[ -x "$prog" ] || { echo "FAIL: not built ($prog)"; exit 1; }
peer_ns=
guest_on_exit() {
  if [ -n "$peer_ns" ]; then ip netns del "$peer_ns" 2>/dev/null; fi
}
guest_netns qpn
peer_ns=qpnb$$
ifa=qpv$$a ifb=qpv$$b
ip netns add "$peer_ns" || { echo "FAIL: second namespace"; exit 1; }
ip -n "$ns" link add "$ifa" type veth peer name "$ifb" netns "$peer_ns" &&
  ip -n "$ns" addr add 10.231.0.1/30 dev "$ifa" && ip -n "$ns" link set "$ifa" up &&
  ip -n "$peer_ns" addr add 10.231.0.2/30 dev "$ifb" && ip -n "$peer_ns" link set "$ifb" up ||
  { echo "FAIL: veth set-up"; exit 1; }

root=$work/rootfs
mkdir -p "$root"/{bin,tmp,dev,proc,etc}
cp "$prog" "$root/bin/t_procnet"
cp /bin/busybox "$root/bin/busybox"

check() { # NAME SANDBOX-FLAGS... -- ARGS...
  local name=$1
  shift
  local flags=()
  while [ "$1" != -- ]; do flags+=("$1"); shift; done
  shift
  out=$(nsx timeout 120 "$sbx" run "${flags[@]}" --rootfs "$root" --kernel "$kernel" -- /bin/t_procnet "$@" 2>"$work/err")
  rc=$?
  echo "$out" | grep -v '^ok' | head -40
  if [ $rc != 0 ] || ! echo "$out" | grep -qE '^t_procnet: [0-9]+ checks, 0 failures$' ||
    grep -qE 'AddressSanitizer|runtime error|blocked host syscall' "$work/err"; then
    fail "$name: exit $rc (stderr: $(grep -v DBG "$work/err" | head -c 800))"
  else
    echo "ok: $name"
  fi
}

# 1. Jailed (the default): the sandbox reads the pod's files through the
# procfs of its jail, under its seccomp filter.
check jailed -- 7101 7102 "$ifa" 10.231.0.2
# 2. Unjailed, with busybox netstat -tln and ifconfig -a (the interface
# ioctls are served only unjailed in run mode, as in pods).
check busybox --no-jail -- 7103 7104 "$ifa" 10.231.0.2 busybox

# 3. A posted socket close is served before the vCPU halts: the host peer
# reads the end of the stream while the guest sleeps after its close.
nsx timeout 90 "$sbx" run --rootfs "$root" --kernel "$kernel" -- /bin/t_procnet close-idle 7105 \
  >"$work/ci.out" 2>&1 &
ci=$!
got= rc=7
for _ in $(seq 150); do # until the guest listens (exit 7: refused)
  got=$(nsx timeout 30 bash -c 'exec 3<>/dev/tcp/127.0.0.1/7105 || exit 7; cat <&3' 2>/dev/null)
  rc=$?
  [ $rc = 7 ] || break
  sleep 0.2
done
if [ "$got" = k ] && [ $rc = 0 ] && kill -0 $ci 2>/dev/null; then
  echo "ok: close then idle: the peer sees the end of the stream while the guest sleeps"
else
  fail "close then idle: read [$got] (exit $rc), sandbox still running: $(kill -0 $ci 2>/dev/null && echo yes || echo no)"
fi
kill $ci 2>/dev/null
wait $ci 2>/dev/null

guest_done "guest_procnet $v"
