# shellcheck shell=bash
# Two "nodes" for the TSoR benches (sourced, not run): network namespaces
# $nsa and $nsb joined by a veth pair, a peers file for tsord, the tsords,
# and an EXIT trap that kills every pid in `pids` and removes all of it.

# two_nodes NAME TAG LINK CIDR
#   NAME  the script's name for messages and its temp dir (/tmp/NAME.XXXXXX = $tmp)
#   TAG   a short prefix for the namespaces and veth names (unique per script)
#   LINK  the veth subnet's first three octets (LINK.1 in a, LINK.2 in b, /24)
#   CIDR  the pod CIDRs' first two octets (node a CIDR.1.0/24, node b CIDR.2.0/24)
two_nodes() {
  bench_name=$1
  local tag=$2 link=$3 cidr=$4
  [ "$(id -u)" = 0 ] || { echo "$bench_name: needs root for network namespaces" >&2; exit 77; }
  tmp=$(mktemp -d "/tmp/$bench_name.XXXXXX")
  nsa=${tag}A$$ nsb=${tag}B$$
  pids=()
  trap two_nodes_cleanup EXIT
  ip netns add "$nsa"
  ip netns add "$nsb"
  ip link add "${tag}a$$" netns "$nsa" type veth peer name "${tag}b$$" netns "$nsb"
  ip -n "$nsa" addr add "$link.1/24" dev "${tag}a$$"
  ip -n "$nsb" addr add "$link.2/24" dev "${tag}b$$"
  for ns in "$nsa" "$nsb"; do ip -n "$ns" link set lo up; done
  ip -n "$nsa" link set "${tag}a$$" up
  ip -n "$nsb" link set "${tag}b$$" up
  cat >"$tmp/peers.json" <<JSON
{"Nodes":[{"Name":"a","PodCIDR":"$cidr.1.0/24","Address":"$link.1:7470"},
          {"Name":"b","PodCIDR":"$cidr.2.0/24","Address":"$link.2:7470"}]}
JSON
}

two_nodes_cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  ip netns del "$nsa" 2>/dev/null
  ip netns del "$nsb" 2>/dev/null
  rm -rf "$tmp"
}

# wait_for FILE TEXT: up to 20 s for TEXT to appear in FILE.
wait_for() {
  for _ in $(seq 400); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "$bench_name: timed out waiting for '$2' in $1" >&2
  cat "$1" >&2
  exit 1
}

# start_tsords TSORD: tsord of node a in $nsa and of node b in $nsb (tcp
# fabric, sockets $tmp/a.sock and $tmp/b.sock).
start_tsords() {
  local n ns
  for n in a b; do
    ns=$nsa
    [ $n = b ] && ns=$nsb
    ip netns exec "$ns" "$1" --node $n --peers "$tmp/peers.json" --socket "$tmp/$n.sock" --fabric tcp \
      --log-level Warn >"$tmp/tsord-$n.log" 2>&1 &
    pids+=($!)
  done
  sleep 0.5
}
