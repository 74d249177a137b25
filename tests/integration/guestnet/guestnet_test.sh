#!/usr/bin/env bash
# Guest sockets end to end: t_net inside quark-sandbox (real KVM) talks to
# the same program run natively, both inside a network namespace this test
# creates (traffic stays on its loopback).
# Usage: guestnet_test.sh VARIANT SANDBOX KERNEL PROGDIR   (VARIANT: glibc | musl)
set -uo pipefail
v=$1 sbx=$2 kernel=$3 progs=$4
prog=$progs/t_net.$v

# shellcheck source=tests/integration/guest/lib.sh
. "$(dirname "$0")/../guest/lib.sh"
guest_setup guestnet "$sbx"
[ -x "$prog" ] || { echo "FAIL: not built ($prog)"; exit 1; }
pids=()
guest_on_exit() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
}
guest_netns qgn

root=$work/rootfs
mkdir -p "$root"/{bin,tmp,dev,proc,etc}
cp "$prog" "$root/bin/t_net"

guest() { nsx timeout "$1" "$sbx" run --rootfs "$root" --kernel "$kernel" -- /bin/t_net "${@:2}"; }

# 1. In-guest checks on the sandbox's own loopback.
out=$(guest 120 self 2>"$work/err")
rc=$?
echo "$out" | grep -v '^ok' | head -40
if [ $rc != 0 ] || ! echo "$out" | grep -qE '^t_net: [0-9]+ checks, 0 failures$'; then
  fail "self: exit $rc (stderr: $(head -c 800 "$work/err"))"
else
  echo "ok: self"
fi

# 1a. Route netlink and interface ioctls (getifaddrs, ip addr): an unjailed
# sandbox, as pods run; the jailed one answers EAFNOSUPPORT (self checks).
out=$(nsx timeout 120 "$sbx" run --no-jail --rootfs "$root" --kernel "$kernel" -- /bin/t_net netlink 2>"$work/err")
rc=$?
if [ $rc != 0 ] || ! echo "$out" | grep -qE '^t_net: [0-9]+ checks, 0 failures$'; then
  fail "netlink: exit $rc [$(echo "$out" | grep -v '^ok' | head -20)] (stderr: $(grep -v DBG "$work/err" | head -c 600))"
else
  echo "ok: netlink ($(echo "$out" | tail -1))"
fi

# 1b. Random arguments to the socket calls: the guest and the sandbox survive
# (a sanitizer report from the sandbox counts as a failure).
for n in 3000 5001; do
  out=$(guest 120 fuzz $n 2>"$work/err")
  rc=$?
  if [ $rc != 0 ] || ! echo "$out" | grep -q "^fuzz: $n calls" || grep -qE 'AddressSanitizer|runtime error' "$work/err"; then
    fail "fuzz $n: exit $rc [$out] ($(grep -v DBG "$work/err" | head -c 800))"
  else
    echo "ok: $out"
  fi
done

# 2. TCP echo server in the guest, clients on the host.
guest 60 serve 7001 2 >"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)
a=$(nsx timeout 30 "$prog" client 7001 hello-guest)
b=$(nsx timeout 30 "$prog" client 7001 second)
wait "${pids[-1]}"
rc=$?
if [ "$a" != "echo: hello-guest" ] || [ "$b" != "echo: second" ] || [ $rc != 0 ]; then
  fail "guest server: [$a] [$b] exit $rc ($(cat "$work/serve.out" "$work/serve.err" | head -c 600))"
else
  echo "ok: guest TCP server answers host clients"
fi

# 3. TCP client in the guest, server on the host.
nsx timeout 60 "$prog" serve 7002 1 >/dev/null &
pids+=($!)
a=$(guest 60 client 7002 from-guest 2>"$work/err")
if [ "$a" != "echo: from-guest" ]; then
  fail "guest client: [$a] ($(head -c 600 "$work/err"))"
else
  echo "ok: guest TCP client reaches a host server"
fi

# 4. UDP echo both ways.
guest 60 udpserve 7003 1 >"$work/udp.out" 2>&1 &
pids+=($!)
a=$(nsx timeout 30 "$prog" udpclient 7003 udp-to-guest)
[ "$a" = "echo: udp-to-guest" ] && echo "ok: guest UDP echo" || fail "guest UDP server: [$a] ($(head -c 400 "$work/udp.out"))"
nsx timeout 60 "$prog" udpserve 7004 1 >/dev/null &
pids+=($!)
a=$(guest 60 udpclient 7004 udp-from-guest 2>"$work/err")
[ "$a" = "echo: udp-from-guest" ] && echo "ok: guest UDP client" || fail "guest UDP client: [$a] ($(head -c 400 "$work/err"))"

# 5. Bulk both ways (64 MiB): every byte arrives once, blocking writes are
# never short.
nsx timeout 120 "$prog" bulk-server 7006 >/dev/null &
pids+=($!)
a=$(guest 120 bulk-client 7006 64 2>"$work/err")
rc=$?
[ $rc = 0 ] && echo "ok: guest bulk send ($a)" || fail "guest bulk send: exit $rc [$a] ($(grep -v DBG "$work/err" | head -c 400))"
guest 120 bulk-server 7007 >/dev/null 2>&1 &
pids+=($!)
a=$(nsx timeout 120 "$prog" bulk-client 7007 64)
rc=$?
[ $rc = 0 ] && echo "ok: guest bulk receive ($a)" || fail "guest bulk receive: exit $rc [$a]"

# 6. sendfile from a rootfs file to a host peer (the host's sendfile).
nsx timeout 60 "$prog" bulk-server 7008 >/dev/null &
pids+=($!)
a=$(guest 60 sendfile-client 7008 /bin/t_net 2>"$work/err")
rc=$?
[ $rc = 0 ] && echo "ok: guest $a" || fail "guest sendfile: exit $rc [$a] ($(grep -v DBG "$work/err" | head -c 400))"

# 7. busybox nc, where the host has busybox with nc.
if [ -x /bin/busybox ] && /bin/busybox nc --help 2>&1 | grep -q 'Usage'; then
  cp /bin/busybox "$root/bin/busybox"
  nsx timeout 60 "$prog" serve 7005 1 >/dev/null &
  pids+=($!)
  sleep 0.3
  a=$(echo nc-line | nsx timeout 60 "$sbx" run --rootfs "$root" --kernel "$kernel" -- /bin/busybox nc 127.0.0.1 7005 2>"$work/err")
  [ "$a" = "nc-line" ] && echo "ok: busybox nc" || echo "note: busybox nc: [$a] ($(head -c 300 "$work/err"))"
fi

# 8. A real program: python3 (dynamic, this host's) runs http.server in the
# guest for curl on the host (socketserver waits with poll), and fetches a
# page from a host http.server with urllib (glibc variant only; skipped
# without python3.11 or curl).
proot=$work/pyroot
if [ "$v" = glibc ] && command -v curl >/dev/null && guest_python "$proot"; then
  mkdir -p "$proot"/{bin,tmp,dev,proc,etc,usr/lib,srv}
  echo "hello from the guest" >"$proot/srv/index.txt"
  head -c 3000000 /dev/urandom >"$proot/srv/big.bin"
  nsx timeout 90 "$sbx" run --rootfs "$proot" --kernel "$kernel" --cwd /srv -- \
    /bin/python3 -m http.server 7009 --bind 127.0.0.1 >"$work/py.out" 2>&1 &
  pids+=($!)
  a=
  for i in $(seq 100); do
    a=$(nsx curl -s -m 10 http://127.0.0.1:7009/index.txt) && [ -n "$a" ] && break
    sleep 0.2
  done
  if [ "$a" = "hello from the guest" ] && nsx curl -s -m 30 http://127.0.0.1:7009/big.bin | cmp -s - "$proot/srv/big.bin"; then
    echo "ok: python3 http.server in the guest answers curl (small page and 3 MB)"
  else
    fail "python3 http.server: [$a] ($(grep -v DBG "$work/py.out" | tail -c 600))"
  fi
  mkdir -p "$work/hostsrv"
  echo "hello from the host" >"$work/hostsrv/h.txt"
  (cd "$work/hostsrv" && exec ip netns exec "$ns" /usr/bin/python3 -m http.server 7010 --bind 127.0.0.1 >/dev/null 2>&1) &
  pids+=($!)
  cat >"$proot/tmp/get.py" <<'PY'
import time, urllib.request
for i in range(100):
    try:
        print(urllib.request.urlopen("http://127.0.0.1:7010/h.txt", timeout=10).read().decode().strip())
        break
    except OSError:
        time.sleep(0.1)
PY
  a=$(nsx timeout 90 "$sbx" run --rootfs "$proot" --kernel "$kernel" -- /bin/python3 /tmp/get.py 2>"$work/err")
  [ "$a" = "hello from the host" ] && echo "ok: python3 urllib in the guest fetches from the host" ||
    fail "python3 urllib: [$a] ($(grep -v DBG "$work/err" | tail -c 600))"
else
  echo "note: python checks skipped (they run in the glibc variant, with python3.11 and curl)"
fi

guest_done "guestnet $v"
