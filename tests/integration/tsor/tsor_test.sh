#!/usr/bin/env bash
# TSoR integration tests with real tsord and real client processes.
#   tsor_test.sh local        one node: pods talk over the local fabric
#   tsor_test.sh two_nodes    two "nodes" = two network namespaces joined by a
#                             veth pair, one tsord each, tcp fabric between them
#   tsor_test.sh verbs_absent the verbs backend on a machine without RDMA
#   tsor_test.sh hostile      clients that break the arena protocol
#   tsor_test.sh kube         peers from a (fake) Kubernetes API, changing live
#   tsor_test.sh gateway      kernel TCP from another namespace to pods (sk_lookup
#                             ingress) and from pods to a server there (egress)
# Args 2 and 3: the tsord and tsor_pod binaries. TSOR_TEST_1G=1 makes the
# bulk transfer 1 GiB instead of 256 MiB.
set -euo pipefail
what=$1 tsord=$2 pod=$3 hostile=${4:-} fakekube=${5:-}

tmp=$(mktemp -d /tmp/tsor-test.XXXXXX)
pids=()
nsa="" nsb=""
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  [ -n "$nsa" ] && ip netns del "$nsa" 2>/dev/null
  [ -n "$nsb" ] && ip netns del "$nsb" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for f in "$tmp"/*.log; do echo "--- $f" >&2; tail -n 20 "$f" >&2; done
  exit 1
}

# inns NS cmd...: runs cmd inside namespace NS ("" = here)
inns() {
  local ns=$1
  shift
  if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi
}

# spawn NS cmd... &: like inns, but the background job's PID is cmd itself
# (exec), so that the tests can kill exactly that process.
spawn() {
  local ns=$1
  shift
  if [ -n "$ns" ]; then exec ip netns exec "$ns" "$@"; else exec "$@"; fi
}

wait_for() { # file pattern
  for _ in $(seq 100); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  fail "timed out waiting for '$2' in $1"
}

# A loopback port nobody listens on now (other tests run beside ours).
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || break
  done
  echo "$p"
}

start_tsord() { # ns node fabric
  spawn "$1" "$tsord" --node "$2" --peers "$tmp/peers.json" --socket "$tmp/$2.sock" --fabric "$3" \
    --log-level Info >"$tmp/tsord-$2.log" 2>&1 &
  pids+=($!)
  wait_for "$tmp/tsord-$2.log" "sandboxes on"
}

# netns_pair NSA NSB NET WHY: the namespaces nsa=NSA and nsb=NSB with their
# loopbacks up, joined by the veth pair va<pid> (NET.1/24, in NSA) and
# vb<pid> (NET.2/24, in NSB); a skip (77) without root and iproute2 ("for
# WHY") or when the namespaces cannot be made.
netns_pair() {
  if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
    echo "skip: needs root and iproute2 for $4"
    exit 77
  fi
  nsa=$1 nsb=$2
  ip netns add "$nsa" || { echo "skip: cannot create network namespaces"; exit 77; }
  ip netns add "$nsb"
  ip link add "va$$" netns "$nsa" type veth peer name "vb$$" netns "$nsb"
  ip -n "$nsa" addr add "$3.1/24" dev "va$$"
  ip -n "$nsb" addr add "$3.2/24" dev "vb$$"
  local ns
  for ns in "$nsa" "$nsb"; do ip -n "$ns" link set lo up; done
  ip -n "$nsa" link set "va$$" up
  ip -n "$nsb" link set "vb$$" up
}

ipn=10
start_server() { # ns node ip mode port [extra args]
  local ns=$1 node=$2 ip=$3 mode=$4 port=$5
  shift 5
  spawn "$ns" "$pod" server --sock "$tmp/$node.sock" --ip "$ip" --mode "$mode" --port "$port" "$@" \
    >"$tmp/server-$ip.log" 2>&1 &
  pids+=($!)
  last_server=$!
  wait_for "$tmp/server-$ip.log" ready
}

client() { # ns node role args...
  local ns=$1 node=$2 role=$3
  shift 3
  ipn=$((ipn + 1))
  local t0
  t0=$(date +%s%N)
  if ! inns "$ns" timeout 60 "$pod" "$role" --sock "$tmp/$node.sock" --ip "$cip_prefix.$ipn" "$@" \
      >"$tmp/client.log" 2>&1; then
    cat "$tmp/client.log" >&2
    fail "client $role $*"
  fi
  printf '  %-10s %s (%d ms)\n' "$role" "$(tail -n 1 "$tmp/client.log")" $((($(date +%s%N) - t0) / 1000000))
}

bulk_bytes=$((256 << 20))
[ "${TSOR_TEST_1G:-0}" = 1 ] && bulk_bytes=$((1 << 30))

# The suite: servers on node SNODE (namespace SNS), clients on CNODE/CNS.
suite() { # sns snode sip_prefix cns cnode
  local sns=$1 snode=$2 sp=$3 cns=$4 cnode=$5
  start_server "$sns" "$snode" "$sp.10" echo 7 --slots 2048 --ring 16384
  start_server "$sns" "$snode" "$sp.11" sink 9
  start_server "$sns" "$snode" "$sp.12" noaccept 10 --backlog 4
  client "$cns" "$cnode" echo --dst "$sp.10:7" --rounds 5
  client "$cns" "$cnode" echo --dst "$sp.10:7" --rounds 5 --guest-arena
  client "$cns" "$cnode" bulk --dst "$sp.11:9" --bytes "$bulk_bytes"
  client "$cns" "$cnode" echo --dst "$sp.10:7" --conns 1000 --rounds 2 --slots 1024 --ring 16384
  client "$cns" "$cnode" refused --dst "$sp.10:8"
  client "$cns" "$cnode" backlog --dst "$sp.12:10" --conns 4
  client "$cns" "$cnode" halfclose --dst "$sp.11:9"
  start_server "$sns" "$snode" "$sp.14" udp 53
  client "$cns" "$cnode" udpecho --dst "$sp.14:53" --rounds 3

  # The receiving pod dies mid-transfer: the sender sees ECONNRESET, no hang.
  start_server "$sns" "$snode" "$sp.13" sink 11
  local victim=$last_server
  ipn=$((ipn + 1))
  spawn "$cns" timeout 30 "$pod" flood --sock "$tmp/$cnode.sock" --ip "$cip_prefix.$ipn" --dst "$sp.13:11" \
    >"$tmp/flood.log" 2>&1 &
  local flood=$!
  wait_for "$tmp/flood.log" flooding
  sleep 0.5
  kill -9 "$victim"
  wait "$flood" || fail "flood after receiver kill: $(cat "$tmp/flood.log")"
  printf '  %-10s %s\n' "kill-recv" "$(tail -n 1 "$tmp/flood.log")"

  # The sending pod dies mid-transfer: the receiving server sees ECONNRESET
  # on that connection and keeps serving others.
  ipn=$((ipn + 1))
  spawn "$cns" "$pod" flood --sock "$tmp/$cnode.sock" --ip "$cip_prefix.$ipn" --dst "$sp.11:9" \
    >"$tmp/flood2.log" 2>&1 &
  local sender=$!
  pids+=($sender)
  wait_for "$tmp/flood2.log" flooding
  sleep 0.5
  kill -9 "$sender"
  wait_for "$tmp/server-$sp.11.log" "Connection reset by peer"
  client "$cns" "$cnode" halfclose --dst "$sp.11:9"
  echo "  kill-send  server saw ECONNRESET and still serves"
}

check_tsord_alive() {
  for p in "${tsord_pids[@]}"; do
    kill -0 "$p" 2>/dev/null || fail "tsord $p died"
  done
}

stop_tsords() {
  for p in "${tsord_pids[@]}"; do
    kill -TERM "$p"
    local rc=0
    wait "$p" || rc=$?
    [ "$rc" = 0 ] || fail "tsord exited with $rc on SIGTERM"
  done
}

case "$what" in
local)
  port=$(free_port)
  cat >"$tmp/peers.json" <<EOF
{"Nodes":[{"Name":"a","PodCIDR":"10.201.1.0/24","Address":"127.0.0.1:$port"}]}
EOF
  start_tsord "" a tcp
  tsord_pids=("${pids[-1]}")
  cip_prefix=10.201.1
  ipn=100
  echo "local fabric (two pods on one tsord):"
  suite "" a 10.201.1 "" a
  check_tsord_alive
  stop_tsords
  ;;
two_nodes)
  netns_pair "tsorA$$" "tsorB$$" 10.77.0 "network namespaces"
  cat >"$tmp/peers.json" <<EOF
{"Nodes":[{"Name":"a","PodCIDR":"10.201.1.0/24","Address":"10.77.0.1:7470"},
          {"Name":"b","PodCIDR":"10.201.2.0/24","Address":"10.77.0.2:7470"}]}
EOF
  start_tsord "$nsa" a tcp
  start_tsord "$nsb" b tcp
  tsord_pids=("${pids[@]}")
  cip_prefix=10.201.1
  echo "tcp fabric (clients on node a, servers on node b, two namespaces):"
  suite "$nsb" b 10.201.2 "$nsa" a
  grep -q "node b connected (tcp)" "$tmp/tsord-a.log" || fail "node a never connected to node b"
  # The other way round reuses the one connection of the node pair.
  start_server "$nsa" a 10.201.1.200 echo 7
  cip_prefix=10.201.2
  ipn=100
  client "$nsb" b echo --dst 10.201.1.200:7 --conns 10
  [ "$(grep -c "connected (tcp)" "$tmp/tsord-a.log")" = 1 ] || fail "node a made more than one connection"
  [ "$(grep -c "connected (tcp)" "$tmp/tsord-b.log")" = 1 ] || fail "node b made more than one connection"
  echo "  one connection per node pair, used both ways"
  # Node b's tsord dies mid-transfer: node a's pods see ECONNRESET, and new
  # connections to node b's pods fail fast with EHOSTUNREACH.
  cip_prefix=10.201.1
  ipn=150
  spawn "$nsa" timeout 30 "$pod" flood --sock "$tmp/a.sock" --ip 10.201.1.150 --dst 10.201.2.11:9 \
    >"$tmp/flood3.log" 2>&1 &
  local_flood=$!
  wait_for "$tmp/flood3.log" flooding
  sleep 0.3
  kill -9 "${tsord_pids[1]}"
  wait "$local_flood" || fail "flood after tsord kill: $(cat "$tmp/flood3.log")"
  printf '  %-10s %s\n' "kill-node" "$(tail -n 1 "$tmp/flood3.log")"
  client "$nsa" a unreach --dst 10.201.2.10:7
  # Node b's tsord comes back: node a dials it again on the next connect.
  start_tsord "$nsb" b tcp
  tsord_pids=("${tsord_pids[0]}" "${pids[-1]}")
  start_server "$nsb" b 10.201.2.20 echo 7
  client "$nsa" a echo --dst 10.201.2.20:7
  echo "  restart    node b's tsord restarted, node a reconnected"
  check_tsord_alive
  stop_tsords
  ;;
verbs_absent)
  if [ -e /dev/infiniband ] && ls /sys/class/infiniband/ 2>/dev/null | grep -q .; then
    echo "skip: this machine has an RDMA device; the device-absent path cannot be shown"
    exit 77
  fi
  port=$(free_port)
  cat >"$tmp/peers.json" <<EOF
{"Nodes":[{"Name":"a","PodCIDR":"10.201.1.0/24","Address":"127.0.0.1:$port"}]}
EOF
  # Asked for by name: tsord refuses to start and says why.
  rc=0
  "$tsord" --node a --peers "$tmp/peers.json" --socket "$tmp/v.sock" --fabric verbs >"$tmp/verbs.log" 2>&1 || rc=$?
  [ "$rc" != 0 ] || fail "tsord --fabric verbs started without an RDMA device"
  grep -q "no RDMA device" "$tmp/verbs.log" || fail "no clear message: $(cat "$tmp/verbs.log")"
  echo "  --fabric verbs: exit $rc: $(grep -o 'verbs: no RDMA device.*' "$tmp/verbs.log" | head -n 1)"
  # auto: falls back to tcp, says so, and carries traffic.
  start_tsord "" a auto
  tsord_pids=("${pids[-1]}")
  grep -q "verbs fabric unavailable.*no RDMA device.*using the tcp fabric" "$tmp/tsord-a.log" ||
    fail "auto did not report the fallback"
  echo "  --fabric auto: $(grep -o 'verbs fabric unavailable.*' "$tmp/tsord-a.log")"
  cip_prefix=10.201.1
  start_server "" a 10.201.1.10 echo 7
  client "" a echo --dst 10.201.1.10:7
  stop_tsords
  ;;
hostile)
  port=$(free_port)
  cat >"$tmp/peers.json" <<EOF
{"Nodes":[{"Name":"a","PodCIDR":"10.201.1.0/24","Address":"127.0.0.1:$port"}]}
EOF
  start_tsord "" a tcp
  tsord_pids=("${pids[-1]}")
  echo "hostile clients:"
  cip_prefix=10.201.1
  start_server "" a 10.201.1.10 echo 7
  "$hostile" "$tmp/a.sock" 10.201.1.66 10.99.0.1 10.201.1.10 7 || fail "hostile client cases"
  # The echo server saw its hostile peers' connections reset, and tsord
  # still serves well-behaved pods.
  wait_for "$tmp/server-10.201.1.10.log" "Connection reset by peer"
  client "" a echo --dst 10.201.1.10:7
  check_tsord_alive
  stop_tsords
  ;;
kube)
  # Two nodes in this namespace (tsords on two loopback ports), peers from a
  # fake API server; the nodes change while they run, seen through the watch
  # (re-list period 60 s, longer than the test).
  kport=$(free_port) pa=$(free_port) pb=$(free_port)
  echo -n "s3cret" >"$tmp/token"
  echo -n "wrong" >"$tmp/badtoken"
  mkdir -p "$tmp/kube"
  : >"$tmp/kube/events.jsonl"
  node_a='{"metadata":{"name":"a","annotations":{"quark.io/tsord-address":"127.0.0.1:'$pa'"}},"spec":{"podCIDR":"10.204.1.0/24"}}'
  node_b() { echo '{"metadata":{"name":"b","resourceVersion":"'$2'","annotations":{"quark.io/tsord-address":"127.0.0.1:'$pb'"}},"spec":{"podCIDR":"'$1'"}}'; }
  others='{"metadata":{"name":"plain"},"spec":{"podCIDR":"10.204.9.0/24"}},{"metadata":{"name":"nocidr","annotations":{"quark.io/tsord-address":"127.0.0.1:1"}},"spec":{}}'
  nodes() { # items...
    local IFS=,
    echo '{"kind":"NodeList","metadata":{"resourceVersion":"RV"},"items":['"$*"']}' >"$tmp/kube/nodes.json.new"
    mv "$tmp/kube/nodes.json.new" "$tmp/kube/nodes.json"
  }
  nodes "$node_a" "$others" "$(node_b 10.204.2.0/24 0)"
  "$fakekube" "$kport" s3cret "$tmp/kube" >"$tmp/kube.log" 2>&1 &
  pids+=($!)
  wait_for "$tmp/kube.log" ready
  echo "peers from a fake Kubernetes API (list + watch):"
  rc=0
  "$tsord" --node a --kube --kube-server "http://127.0.0.1:$kport" --kube-token-file "$tmp/badtoken" \
    --socket "$tmp/x.sock" --fabric tcp >"$tmp/badtoken.log" 2>&1 || rc=$?
  [ "$rc" != 0 ] && grep -q "HTTP 401" "$tmp/badtoken.log" || fail "wrong token: rc $rc: $(cat "$tmp/badtoken.log")"
  echo "  wrong token: exit $rc, $(grep -o 'kube: GET.*' "$tmp/badtoken.log" | head -n 1)"
  for n in a b; do
    "$tsord" --node $n --kube --kube-server "http://127.0.0.1:$kport" --kube-token-file "$tmp/token" \
      --peers-refresh 60 --socket "$tmp/$n.sock" --fabric tcp >"$tmp/tsord-$n.log" 2>&1 &
    pids+=($!)
    wait_for "$tmp/tsord-$n.log" "sandboxes on"
  done
  tsord_pids=("${pids[-2]}" "${pids[-1]}")
  grep -q "peers from the Kubernetes API" "$tmp/tsord-a.log" || fail "tsord a not on the kube source"
  cip_prefix=10.204.1
  start_server "" b 10.204.2.10 echo 7
  client "" a echo --dst 10.204.2.10:7
  # b's pod CIDR moves (a MODIFIED event): pods in the new range attach to
  # b and a reaches them.
  nodes "$node_a" "$others" "$(node_b 10.204.5.0/24 1)"
  echo '{"type":"MODIFIED","object":'"$(node_b 10.204.5.0/24 1)"'}' >>"$tmp/kube/events.jsonl"
  wait_for "$tmp/tsord-a.log" "node b changed"
  wait_for "$tmp/tsord-b.log" "node b changed"
  start_server "" b 10.204.5.10 echo 7
  client "" a echo --dst 10.204.5.10:7
  echo "  MODIFIED: pod CIDR change picked up on both nodes"
  # b leaves the cluster (DELETED): a drops it, its pods become unreachable.
  nodes "$node_a" "$others"
  echo '{"type":"DELETED","object":'"$(node_b 10.204.5.0/24 2)"'}' >>"$tmp/kube/events.jsonl"
  wait_for "$tmp/tsord-a.log" "node b left"
  client "" a noroute --dst 10.204.5.10:7
  echo "  DELETED: node dropped, its pods unreachable"
  check_tsord_alive
  stop_tsords
  ;;
gateway)
  # Node namespace (tsord --ingress, pods, a local route for the pod CIDR)
  # and a client namespace that reaches the pod CIDR through a veth pair,
  # as the host or another node would.
  netns_pair "tsorN$$" "tsorC$$" 10.79.0 "network namespaces and BPF"
  ip -n "$nsa" route add local 10.206.1.0/24 dev lo
  ip -n "$nsb" route add 10.206.1.0/24 via 10.79.0.1
  cat >"$tmp/peers.json" <<EOF
{"Nodes":[{"Name":"a","PodCIDR":"10.206.1.0/24","Address":"127.0.0.1:7470"}]}
EOF
  spawn "$nsa" "$tsord" --node a --peers "$tmp/peers.json" --socket "$tmp/a.sock" --fabric tcp --ingress --egress \
    --log-level Info >"$tmp/tsord-a.log" 2>&1 &
  pids+=($!)
  tsord_pids=("${pids[-1]}")
  for _ in $(seq 100); do
    grep -q "gateway started\|tsord: ingress:" "$tmp/tsord-a.log" 2>/dev/null && break
    sleep 0.05
  done
  if grep -q "tsord: ingress:" "$tmp/tsord-a.log"; then
    if grep -q "Operation not permitted\|Invalid argument" "$tmp/tsord-a.log"; then
      echo "skip: this kernel refuses the sk_lookup program: $(grep 'ingress:' "$tmp/tsord-a.log")"
      exit 77
    fi
    fail "ingress did not start"
  fi
  echo "ingress (sk_lookup) from another namespace, kernel TCP clients:"
  start_server "$nsa" a 10.206.1.10 echo 7
  start_server "$nsa" a 10.206.1.11 sink 9
  tcpclient() { # role args...
    local role=$1
    shift
    inns "$nsb" timeout 60 "$pod" "$role" --tcp "$@" >"$tmp/client.log" 2>&1 || fail "tcp client $role $*: $(cat "$tmp/client.log")"
    printf '  %-10s %s\n' "$role" "$(tail -n 1 "$tmp/client.log")"
  }
  tcpclient echo --dst 10.206.1.10:7 --rounds 5
  grep -q "accepted from 10.79.0.2:" "$tmp/server-10.206.1.10.log" || fail "the pod does not see the real client address"
  echo "  the pod sees the outside client's address as its peer"
  tcpclient echo --dst 10.206.1.10:7 --conns 50 --rounds 2
  tcpclient bulk --dst 10.206.1.11:9 --bytes $((64 << 20))
  tcpclient halfclose --dst 10.206.1.11:9
  # Nothing listens on the pod's port: the accepted connection is reset.
  tcpclient flood --dst 10.206.1.10:8
  # Addresses outside the pod CIDR are not ours: normal lookup (refused).
  tcpclient refused --dst 10.79.0.1:7
  # Egress: pods reach a plain TCP server in the other namespace (an address
  # no TSoR node owns) through tsord.
  echo "egress from pods to kernel TCP servers in another namespace:"
  spawn "$nsb" "$pod" server --tcp --ip 10.79.0.2 --mode echo --port 7007 >"$tmp/server-egress-echo.log" 2>&1 &
  pids+=($!)
  wait_for "$tmp/server-egress-echo.log" ready
  spawn "$nsb" "$pod" server --tcp --ip 10.79.0.2 --mode sink --port 9009 >"$tmp/server-egress-sink.log" 2>&1 &
  pids+=($!)
  wait_for "$tmp/server-egress-sink.log" ready
  cip_prefix=10.206.1
  ipn=50
  client "$nsa" a echo --dst 10.79.0.2:7007 --rounds 5
  client "$nsa" a echo --dst 10.79.0.2:7007 --conns 50 --rounds 2
  client "$nsa" a bulk --dst 10.79.0.2:9009 --bytes $((64 << 20))
  client "$nsa" a halfclose --dst 10.79.0.2:9009
  # Nothing listens there: the pod's connection is reset.
  client "$nsa" a flood --dst 10.79.0.2:7999
  # The node's loopback is not a pod's: no egress there.
  client "$nsa" a noroute --dst 127.0.0.1:7470
  check_tsord_alive
  stop_tsords
  ;;
*)
  echo "unknown test $what" >&2
  exit 2
  ;;
esac
echo PASS
