#!/usr/bin/env bash
# TSoR from guest programs: unmodified socket calls in `quark-sandbox run
# --tsor` sandboxes (real KVM) carried by real tsords.
#   tsor_guest_test.sh local      one node (a network namespace, one tsord):
#                                 two sandboxes over the local fabric
#   tsor_guest_test.sh two_nodes  two "nodes" = two namespaces joined by a
#                                 veth pair, one tsord each, tcp fabric; server
#                                 sandboxes on node b, clients on node a
# Args: MODE TSORD SANDBOX KERNEL T_TSOR (the static guest program) [T_NET]
# (local: the guest socket suite t_net runs in a TSoR pod too, whose
# listeners are then also TSoR listeners: host-socket semantics unchanged).
# Cases: TCP echo (blocking calls, poll-driven server), 128 MiB with checksum
# and half-close, ECONNREFUSED on a closed port, non-blocking connect with
# poll + SO_ERROR, ECONNRESET when the peer sandbox is killed mid-transfer,
# one listener that accepts TSoR and host-socket clients, and (two_nodes) a
# TSoR pod reaching a non-TSoR address over its host socket.
set -uo pipefail
what=$1 tsord=$2 sbx=$3 kernel=$4 prog=$5 tnet=${6:-}

[ -e /dev/kvm ] || { echo "skip: /dev/kvm is absent"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "skip: needs root for network namespaces"; exit 77; }
command -v ip >/dev/null || { echo "skip: ip(8) is absent"; exit 77; }
for f in "$tsord" "$sbx" "$kernel" "$prog"; do [ -e "$f" ] || { echo "FAIL: not built: $f"; exit 1; }; done

tmp=$(mktemp -d /tmp/tsor-guest.XXXXXX)
pids=() tsords=()
nsa=tgA$$ nsb=""
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  ip netns del "$nsa" 2>/dev/null
  [ -n "$nsb" ] && ip netns del "$nsb" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
fail() {
  echo "FAIL: $*"
  fails=$((fails + 1))
}

root=$tmp/rootfs
mkdir -p "$root"/{bin,tmp,dev,proc,etc}
cp "$prog" "$root/bin/t_tsor"

wait_for() { # file pattern
  for _ in $(seq 200); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# guest NS NODE IP ARGS...: runs t_tsor in a TSoR sandbox of NODE.
guest() {
  local ns=$1 node=$2 ip=$3
  shift 3
  ip netns exec "$ns" timeout 60 "$sbx" run --rootfs "$root" --kernel "$kernel" --tsor "$tmp/$node.sock" \
    --tsor-ip "$ip" --tsor-cidr 10.201.0.0/16 -- /bin/t_tsor "$@" 2>>"$tmp/guest.err"
}
# bg_guest NS NODE IP LOG ARGS...: the same in the background; $last is the
# sandbox (its jail supervisor: killing it takes the VMM).
bg_guest() {
  local ns=$1 node=$2 ip=$3 log=$4
  shift 4
  ip netns exec "$ns" "$sbx" run --rootfs "$root" --kernel "$kernel" --tsor "$tmp/$node.sock" \
    --tsor-ip "$ip" --tsor-cidr 10.201.0.0/16 -- /bin/t_tsor "$@" >"$log" 2>>"$tmp/guest.err" &
  last=$!
  pids+=($last)
}

# reap PID: waits for a background sandbox, killing it after 30 s.
reap() {
  for _ in $(seq 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null && fail "sandbox $1 still running after 30 s"
  wait "$1" 2>/dev/null
}

start_tsord() { # ns node
  ip netns exec "$1" "$tsord" --node "$2" --peers "$tmp/peers.json" --socket "$tmp/$2.sock" --fabric tcp \
    --log-level Info >"$tmp/tsord-$2.log" 2>&1 &
  pids+=($!)
  tsords+=($!)
  wait_for "$tmp/tsord-$2.log" "sandboxes on" || { echo "FAIL: tsord $2 did not start: $(cat "$tmp/tsord-$2.log")"; exit 1; }
}

check() { # name expected-regex output
  if echo "$3" | grep -qE "$2"; then
    echo "ok: $1: $(echo "$3" | tail -n 1)"
  else
    fail "$1: [$3] ($(grep -v 'syscall 334' "$tmp/guest.err" | tail -n 5))"
  fi
}

ip netns add "$nsa" || { echo "skip: cannot create a network namespace"; exit 77; }
ip -n "$nsa" link set lo up
case "$what" in
local)
  cat >"$tmp/peers.json" <<EOF
{"Nodes":[{"Name":"a","PodCIDR":"10.201.1.0/24","Address":"127.0.0.1:7470"}]}
EOF
  start_tsord "$nsa" a
  sns=$nsa snode=a sp=10.201.1 cns=$nsa cnode=a cp=10.201.1
  echo "guest programs over the local fabric (two sandboxes, one tsord):"
  ;;
two_nodes)
  nsb=tgB$$
  ip netns add "$nsb"
  ip -n "$nsb" link set lo up
  ip link add "ga$$" netns "$nsa" type veth peer name "gb$$" netns "$nsb"
  ip -n "$nsa" addr add 10.78.0.1/24 dev "ga$$"
  ip -n "$nsb" addr add 10.78.0.2/24 dev "gb$$"
  ip -n "$nsa" link set "ga$$" up
  ip -n "$nsb" link set "gb$$" up
  cat >"$tmp/peers.json" <<EOF
{"Nodes":[{"Name":"a","PodCIDR":"10.201.1.0/24","Address":"10.78.0.1:7470"},
          {"Name":"b","PodCIDR":"10.201.2.0/24","Address":"10.78.0.2:7470"}]}
EOF
  start_tsord "$nsa" a
  start_tsord "$nsb" b
  sns=$nsb snode=b sp=10.201.2 cns=$nsa cnode=a cp=10.201.1
  echo "guest programs over the tcp fabric (servers on node b, clients on node a):"
  ;;
*)
  echo "usage: $0 local|two_nodes TSORD SANDBOX KERNEL T_TSOR"
  exit 2
  ;;
esac

# 1. Echo through a poll()-driven server: two TSoR clients, and one host
# client on the same listener (it listens on TSoR and on its host socket);
# then socket-call semantics on a TSoR socket (t_tsor calls).
bg_guest "$sns" "$snode" "$sp.10" "$tmp/serve.log" serve 7001 204
srv=$last
wait_for "$tmp/serve.log" ready || fail "echo server did not start: $(cat "$tmp/serve.log")"
check "echo" "^echo: hello-tsor$" "$(guest "$cns" "$cnode" "$cp.21" echo "$sp.10" 7001 hello-tsor)"
check "echo again" "^echo: second$" "$(guest "$cns" "$cnode" "$cp.22" echo "$sp.10" 7001 second)"
check "host client, same listener" "^echo: via-host$" \
  "$(ip netns exec "$sns" timeout 20 "$prog" echo 127.0.0.1 7001 via-host 2>&1)"
check "socket calls on a TSoR socket" "^calls: 0 failures$" "$(guest "$cns" "$cnode" "$cp.28" calls "$sp.10" 7001)"
check "200 connections at once" "^conns: 200 connections at once$" "$(guest "$cns" "$cnode" "$cp.29" conns "$sp.10" 7001 200)"
reap "$srv"
check "server" "^served 204$" "$(cat "$tmp/serve.log")"

# 1b. The same through an epoll (edge-triggered) server, once the guest
# kernel has epoll: a TSoR client and a host client on one listener.
bg_guest "$sns" "$snode" "$sp.18" "$tmp/eserve.log" eserve 7006 2
srv=$last
wait_for "$tmp/eserve.log" "ready\|no epoll" || fail "epoll server did not start: $(cat "$tmp/eserve.log")"
if grep -q "no epoll" "$tmp/eserve.log"; then
  echo "note: no epoll in this guest kernel yet: the epoll server case is skipped"
  reap "$srv"
else
  check "echo, epoll server" "^echo: via-epoll$" "$(guest "$cns" "$cnode" "$cp.30" echo "$sp.18" 7006 via-epoll)"
  check "host client, epoll server" "^echo: via-host$" \
    "$(ip netns exec "$sns" timeout 20 "$prog" echo 127.0.0.1 7006 via-host 2>&1)"
  reap "$srv"
  check "epoll server" "^served 2$" "$(cat "$tmp/eserve.log")"
fi

# 2. 128 MiB with checksum; the client shuts down its write side and then
# reads the sink's answer (half-close).
bg_guest "$sns" "$snode" "$sp.13" "$tmp/sink.log" sink 7002
wait_for "$tmp/sink.log" ready || fail "sink did not start"
check "bulk 128 MiB + half-close" "^bulk: 128 MiB checksum ok" "$(guest "$cns" "$cnode" "$cp.23" bulk "$sp.13" 7002 128)"
reap "$last"

# 3. Nothing listens: ECONNREFUSED, blocking and non-blocking.
check "refused" "^refused: ECONNREFUSED$" "$(guest "$cns" "$cnode" "$cp.24" refused "$sp.10" 7999)"
check "nbconnect refused" "^nbconnect: Connection refused$" "$(guest "$cns" "$cnode" "$cp.24" nbconnect "$sp.10" 7999)"
bg_guest "$sns" "$snode" "$sp.15" "$tmp/serve2.log" serve 7003 1
wait_for "$tmp/serve2.log" ready || fail "server 2 did not start"
check "nbconnect" "^nbconnect: connected$" "$(guest "$cns" "$cnode" "$cp.25" nbconnect "$sp.15" 7003)"
reap "$last"

# 4. The receiving sandbox is killed mid-transfer: the sender sees
# ECONNRESET (or EPIPE), no hang.
bg_guest "$sns" "$snode" "$sp.16" "$tmp/victim.log" sink 7004
victim=$last
wait_for "$tmp/victim.log" ready || fail "victim did not start"
bg_guest "$cns" "$cnode" "$cp.26" "$tmp/flood.log" flood "$sp.16" 7004
flood=$last
wait_for "$tmp/flood.log" flooding || fail "flood did not start: $(cat "$tmp/flood.log")"
sleep 0.5
kill -9 "$victim"
for _ in $(seq 200); do kill -0 "$flood" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$flood" 2>/dev/null; then
  fail "sender still running 20 s after the receiver was killed: $(cat "$tmp/flood.log")"
else
  wait "$flood"
  check "peer killed" "^flood: (Connection reset by peer|Broken pipe) after" "$(cat "$tmp/flood.log")"
fi

# 5. Two nodes: a destination outside the TSoR CIDRs stays on the host
# socket (a native server on node b's veth address).
if [ "$what" = two_nodes ]; then
  ip netns exec "$nsb" timeout 30 "$prog" serve 7005 1 >"$tmp/native.log" 2>&1 &
  pids+=($!)
  wait_for "$tmp/native.log" ready || fail "native server did not start"
  check "non-TSoR address over the host socket" "^echo: plain$" "$(guest "$cns" "$cnode" "$cp.27" echo 10.78.0.2 7005 plain)"
  grep -q "node b connected (tcp)" "$tmp/tsord-a.log" || fail "node a never connected to node b over the tcp fabric"
fi

# 6. Local: the host-socket suite in a TSoR pod (every listener is also a
# TSoR listener there).
if [ "$what" = local ] && [ -x "$tnet" ]; then
  cp "$tnet" "$root/bin/t_net"
  out=$(ip netns exec "$nsa" timeout 150 "$sbx" run --rootfs "$root" --kernel "$kernel" --tsor "$tmp/a.sock" \
    --tsor-ip 10.201.1.99 -- /bin/t_net self 2>>"$tmp/guest.err")
  check "t_net self in a TSoR pod" "^t_net: [0-9]+ checks, 0 failures$" "$(echo "$out" | grep -v '^ok')"
fi

for p in "${tsords[@]}"; do kill -0 "$p" 2>/dev/null || fail "a tsord died"; done
if grep -qE 'AddressSanitizer|runtime error' "$tmp/guest.err" "$tmp"/tsord-*.log; then
  fail "sanitizer report: $(grep -hE -A5 'AddressSanitizer|runtime error' "$tmp/guest.err" "$tmp"/tsord-*.log | head -20)"
fi
[ $fails = 0 ] && echo "all guest TSoR checks passed ($what)"
exit $((fails > 0))
