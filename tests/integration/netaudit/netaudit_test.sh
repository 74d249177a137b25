#!/usr/bin/env bash
# Guest sockets against Linux: t_netaudit's checks natively and in the
# guest (both must pass), Quark's deliberate differences in the guest, and
# busybox ip/ifconfig/ping in the guest on the namespace's interfaces.
# Usage: netaudit_test.sh VARIANT SANDBOX KERNEL PROGDIR   (VARIANT: glibc | musl)
set -uo pipefail
v=$1 sbx=$2 kernel=$3 progs=$4
prog=$progs/t_netaudit.$v

# shellcheck source=tests/integration/guest/lib.sh
. "$(dirname "$0")/../guest/lib.sh"
guest_setup netaudit "$sbx"
[ -x "$prog" ] || { echo "FAIL: not built ($prog)"; exit 1; }
guest_netns qna
# A veth pair inside the namespace (the dummy driver may be absent): the
# address the guest must list and ping. Unique to this namespace, so
# parallel runs do not meet.
addr=10.211.7.2
if ip -n "$ns" link add qna0 type veth peer name qna1 2>/dev/null &&
  ip -n "$ns" addr add "$addr/24" dev qna0 && ip -n "$ns" link set qna0 up &&
  ip -n "$ns" link set qna1 up; then
  :
else
  echo "note: no veth pair in the namespace: the extra-interface checks are left out"
  addr=
fi
# As network/netns.c sets it for pods: ICMP datagram sockets for everyone.
nsx sysctl -q -w net.ipv4.ping_group_range="0 2147483647" ||
  echo "note: net.ipv4.ping_group_range not writable: the ping checks skip"

root=$work/rootfs
mkdir -p "$root"/{bin,tmp,dev,proc,etc}
cp "$prog" "$root/bin/t_netaudit"

# 1. Linux's answers: the same program natively in the same namespace.
native=$(nsx timeout 60 "$prog" checks "$addr" 2>&1)
if ! echo "$native" | grep -qE '^t_netaudit checks: [0-9]+ checks, 0 failures$'; then
  fail "native run (the reference) fails: $(echo "$native" | tail -5)"
fi

# 2. The guest (unjailed, as pods run: getifaddrs needs route netlink).
guest() { nsx timeout "$1" "$sbx" run --no-jail --rootfs "$root" --kernel "$kernel" -- "${@:2}"; }
out=$(guest 120 /bin/t_netaudit checks "$addr" 2>"$work/err")
rc=$?
if [ $rc != 0 ] || ! echo "$out" | grep -qE '^t_netaudit checks: [0-9]+ checks, 0 failures$'; then
  fail "guest checks: exit $rc [$(echo "$out" | grep -v '^ok' | head -20)] ($(grep -v DBG "$work/err" | head -c 600))"
elif [ "$(echo "$out" | tail -1)" != "$(echo "$native" | tail -1)" ] ||
  [ "$(echo "$out" | grep -c '^skip')" != "$(echo "$native" | grep -c '^skip')" ]; then
  fail "guest and native differ: guest [$(echo "$out" | grep -v '^ok')] native [$(echo "$native" | grep -v '^ok')]"
else
  echo "ok: guest = Linux ($(echo "$out" | tail -1))"
fi

# 3. Quark's deliberate answers for a process without capabilities (raw
# and packet sockets EPERM, as Linux without CAP_NET_RAW; splice/tee checks).
out=$(nsx timeout 60 "$sbx" run --no-jail --rootfs "$root" --kernel "$kernel" --caps 0 -- /bin/t_netaudit quark 2>"$work/err")
rc=$?
if [ $rc != 0 ] || ! echo "$out" | grep -qE '^t_netaudit quark: [0-9]+ checks, 0 failures$'; then
  fail "quark checks: exit $rc [$(echo "$out" | head -20)]"
else
  echo "ok: $(echo "$out" | tail -1)"
fi

# 3a. A raw ICMP socket with CAP_NET_RAW (root's default set): echo replies
# with an IPv4 header, the identifier sent, a valid checksum; natively too.
for dst in 127.0.0.1 $addr; do
  a=$(nsx timeout 30 "$prog" rawping "$dst" 2>&1)
  out=$(guest 60 /bin/t_netaudit rawping "$dst" 2>"$work/err")
  if echo "$out" | grep -qE '^t_netaudit rawping: [0-9]+ checks, 0 failures$' &&
    [ "$(echo "$out" | tail -1)" = "$(echo "$a" | tail -1)" ]; then
    echo "ok: raw ICMP echo to $dst ($(echo "$out" | tail -1))"
  else
    fail "raw ICMP echo to $dst: guest [$out] native [$a] ($(grep -v DBG "$work/err" | head -c 300))"
  fi
done

# 3b. Go's io.Copy between two TCP connections splices (socket -> pipe ->
# socket, falling back to read/write only on EINVAL): a relay in the guest
# moves 200,000 bytes (where a Go toolchain is installed; static, CGO off).
if command -v go >/dev/null; then
  if (cd "$(dirname "$0")/progs" && HOME=$work GOCACHE=$work/gocache GOPATH=$work/gopath \
    CGO_ENABLED=0 timeout 120 go build -o "$root/bin/relay" relay.go) >"$work/go.log" 2>&1; then
    out=$(guest 60 /bin/relay 2>"$work/err")
    if [ "$out" = "go relay: 200000 bytes through io.Copy between TCP connections" ]; then
      echo "ok: $out"
    else
      fail "go relay: [$out] ($(grep -v DBG "$work/err" | head -c 300))"
    fi
  else
    echo "note: go build failed, the Go relay is left out: $(tail -2 "$work/go.log")"
  fi
else
  echo "note: no Go toolchain: the Go relay is left out"
fi

# 4. busybox in the guest: ip addr, ifconfig, ip route and ping (busybox
# 1.35's ping needs a raw socket).
if [ -x /bin/busybox ] && [ -n "$addr" ]; then
  cp /bin/busybox "$root/bin/busybox"
  out=$(guest 60 /bin/busybox ip addr 2>"$work/err")
  if echo "$out" | grep -q "inet $addr/24 .*qna0" && echo "$out" | grep -q 'inet 127.0.0.1/8'; then
    echo "ok: busybox ip addr lists qna0 with $addr/24"
  else
    fail "busybox ip addr: [$out] ($(grep -v DBG "$work/err" | head -c 300))"
  fi
  out=$(guest 60 /bin/busybox ifconfig 2>"$work/err")
  if echo "$out" | grep -q '^qna0' && echo "$out" | grep -q "inet addr:$addr"; then
    echo "ok: busybox ifconfig lists qna0"
  else
    fail "busybox ifconfig: [$out] ($(grep -v DBG "$work/err" | head -c 300))"
  fi
  out=$(guest 60 /bin/busybox ip route 2>"$work/err")
  if echo "$out" | grep -q "10.211.7.0/24 dev qna0"; then
    echo "ok: busybox ip route"
  else
    fail "busybox ip route: [$out]"
  fi
  for dst in 127.0.0.1 "$addr"; do
    out=$(guest 60 /bin/busybox ping -c 2 -W 5 "$dst" 2>"$work/err")
    if echo "$out" | grep -q '2 packets received'; then
      echo "ok: busybox ping $dst"
    else
      fail "busybox ping $dst: [$out] ($(grep -v DBG "$work/err" | head -c 300))"
    fi
  done
  if [ -e /proc/sys/net/ipv6 ]; then
    out=$(guest 60 /bin/busybox ping6 -c 2 -W 5 ::1 2>"$work/err")
    if echo "$out" | grep -q '2 packets received'; then
      echo "ok: busybox ping6 ::1"
    else
      fail "busybox ping6 ::1: [$out] ($(grep -v DBG "$work/err" | head -c 300))"
    fi
  fi
  # A change is refused: the guest has no CAP_NET_ADMIN over the pod.
  if guest 60 /bin/busybox ip addr add 10.211.8.1/24 dev qna0 >/dev/null 2>&1 ||
    nsx ip -o addr show dev qna0 | grep -q 10.211.8.1; then
    fail "busybox ip addr add was not refused"
  else
    echo "ok: busybox ip addr add refused"
  fi
else
  echo "note: busybox checks left out (no /bin/busybox or no extra interface)"
fi

guest_done "netaudit $v"
