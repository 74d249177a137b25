#!/usr/bin/env bash
# TSoR bench: single-stream throughput and 64-byte ping-pong latency between
# two pods (tsor_pod processes using the client library):
#   local  - both pods on one tsord (local fabric: ring to ring)
#   tcp    - pods on two "nodes" (network namespaces), tsord tcp fabric
#   veth   - the same two namespaces with plain kernel TCP over the veth pair,
#            what a CNI bridge between pods gives
# and the ratios against veth. Run as root (network namespaces).
# Usage: tests/bench/tsor/tsor_bench.sh [BUILD_DIR]   (default: builds build-bench/ without sanitizers)
# Env: BENCH_BYTES (stream size, default 1 GiB), BENCH_ROUNDS (ping-pongs, default 20000),
# BENCH_REPEAT (runs, default 3; the best of each path is reported, the
# paths interleaved so that a burst of load on the machine hits all alike).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
build=${1:-$root/build-bench}
if [ $# -eq 0 ]; then
  cmake -S "$root" -B "$build" -DQUARK_SANITIZE=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" --target tsord tsor_pod -j"$(nproc)" >/dev/null
fi
tsord=$build/tsor/tsord
pod=$build/tests/integration/tsor/tsor_pod
bytes=${BENCH_BYTES:-$((1 << 30))}
rounds=${BENCH_ROUNDS:-20000}
# shellcheck source=tests/bench/tsor/two_nodes.sh
. "$(dirname "$0")/two_nodes.sh"
two_nodes tsor-bench tbench 10.78.0 10.202
spawn() { local ns=$1; shift; exec ip netns exec "$ns" "$@"; }
server() { # ns log args...
  local ns=$1 log=$2; shift 2
  spawn "$ns" "$pod" server "$@" >"$tmp/$log" 2>&1 &
  pids+=($!)
  wait_for "$tmp/$log" ready
}
start_tsords "$tsord"

ring=$((1 << 20))
# Servers: local pair on node a, remote pair on node b, kernel TCP in namespace b.
server "$nsa" s1 --sock "$tmp/a.sock" --ip 10.202.1.10 --mode echo --port 7 --ring $ring
server "$nsa" s2 --sock "$tmp/a.sock" --ip 10.202.1.11 --mode count --port 9 --ring $ring
server "$nsb" s3 --sock "$tmp/b.sock" --ip 10.202.2.10 --mode echo --port 7 --ring $ring
server "$nsb" s4 --sock "$tmp/b.sock" --ip 10.202.2.11 --mode count --port 9 --ring $ring
server "$nsb" s5 --tcp --ip 10.78.0.2 --mode echo --port 7007
server "$nsb" s6 --tcp --ip 10.78.0.2 --mode count --port 9009

ip=20
run() { # label args...
  ip=$((ip + 1))
  ip netns exec "$nsa" "$pod" "$@" --ring $ring --sock "$tmp/a.sock" --ip 10.202.1.$ip
}
num() { sed -n 's/^[a-z]* \([0-9.]*\) .*/\1/p'; }

declare -A lat gbps
best() { # kind key value: keeps the lowest latency / highest throughput
  local -n arr=$1
  if [ -z "${arr[$2]:-}" ] || awk -v a="$3" -v b="${arr[$2]}" -v k="$1" \
      'BEGIN { exit !((k == "lat" && a < b) || (k == "gbps" && a > b)) }'; then
    arr[$2]=$3
  fi
}
for _ in $(seq "${BENCH_REPEAT:-3}"); do
  best lat local "$(run pingpong --dst 10.202.1.10:7 --rounds "$rounds" | num)"
  best lat tcp "$(run pingpong --dst 10.202.2.10:7 --rounds "$rounds" | num)"
  best lat veth "$(ip netns exec "$nsa" "$pod" pingpong --tcp --dst 10.78.0.2:7007 --rounds "$rounds" | num)"
  best gbps local "$(run stream --dst 10.202.1.11:9 --bytes "$bytes" | num)"
  best gbps tcp "$(run stream --dst 10.202.2.11:9 --bytes "$bytes" | num)"
  best gbps veth "$(ip netns exec "$nsa" "$pod" stream --tcp --dst 10.78.0.2:9009 --bytes "$bytes" | num)"
done

echo "TSoR bench ($(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg); best of ${BENCH_REPEAT:-3}; stream $((bytes >> 20)) MiB, $rounds ping-pongs of 64 B)"
printf '%-26s %14s %10s %16s %10s\n' path "stream Gbit/s" "x veth" "64B RTT us" "veth / it"
for k in local tcp veth; do
  name=$k
  case $k in
  local) name="TSoR local fabric" ;;
  tcp) name="TSoR tcp fabric (2 ns)" ;;
  veth) name="kernel TCP over veth" ;;
  esac
  awk -v n="$name" -v g="${gbps[$k]}" -v gv="${gbps[veth]}" -v l="${lat[$k]}" -v lv="${lat[veth]}" \
    'BEGIN { printf "%-26s %14.2f %10.2f %16.2f %10.2f\n", n, g, g / gv, l, lv / l }'
done
