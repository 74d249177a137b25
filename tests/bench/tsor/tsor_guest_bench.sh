#!/usr/bin/env bash
# TSoR bench with pods: two guest programs (t_tsor in `quark-sandbox run`,
# real KVM) talk over
#   local  - TSoR, both sandboxes on one tsord (local fabric)
#   tcp    - TSoR, sandboxes on two "nodes" (network namespaces), tcp fabric
#   bridge - the guests' host sockets over the veth pair joining the same two
#            namespaces (what a CNI bridge between pods gives)
# 64-byte ping-pong latency and single-stream throughput, the best of
# BENCH_REPEAT interleaved runs, and the ratios against bridge.
# Usage: tests/bench/tsor/tsor_guest_bench.sh [BUILD_DIR]
#   (default: builds build-bench/ without sanitizers). Root, /dev/kvm.
# Env: BENCH_MIB (stream MiB, default 256), BENCH_ROUNDS (ping-pongs, default
# 2000), BENCH_REPEAT (default 3). Where redis-server and redis-benchmark are
# installed, also redis-server in one sandbox and redis-benchmark in another
# (-t set,get, -c 1/10/50, BENCH_REDIS_N requests, default 2000) on the
# three paths (BENCH_REDIS=0 skips it).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
build=${1:-$root/build-bench}
if [ $# -eq 0 ]; then
  cmake -S "$root" -B "$build" -DQUARK_SANITIZE=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" --target tsord quark-sandbox qkernel tsor_guest_prog -j2 >/dev/null
fi
tsord=$build/tsor/tsord
sbx=$build/sandbox/quark-sandbox
kernel=$build/guestkernel/qkernel.bin
[ -e "$kernel" ] || kernel=$build/guestkernel/qkernel
prog=$build/tests/integration/tsor/t_tsor
mib=${BENCH_MIB:-256}
rounds=${BENCH_ROUNDS:-2000}
repeat=${BENCH_REPEAT:-3}
[ -e /dev/kvm ] || { echo "tsor_guest_bench: needs /dev/kvm" >&2; exit 77; }
# shellcheck source=tests/bench/tsor/two_nodes.sh
. "$(dirname "$0")/two_nodes.sh"
two_nodes tsor-gbench tgb 10.79.0 10.203
mkdir -p "$tmp/root/bin"
cp "$prog" "$tmp/root/bin/t_tsor"

start_tsords "$tsord"

# run NS NODE|- IP ARGS...: t_tsor in a sandbox (NODE -: no TSoR).
run() {
  local ns=$1 node=$2 ip=$3
  shift 3
  local t=()
  [ "$node" != - ] && t=(--tsor "$tmp/$node.sock" --tsor-ip "$ip" --tsor-cidr 10.203.0.0/16)
  ip netns exec "$ns" "$sbx" run --rootfs "$tmp/root" --kernel "$kernel" "${t[@]}" -- /bin/t_tsor "$@" \
    2>>"$tmp/sandbox.err"
}
port=8000
# one PATH WHAT: one measurement, prints the number.
one() {
  local path=$1 what=$2 sns snode sip cns cnode cip dst
  case $path in
  local) sns=$nsa snode=a sip=10.203.1.10 cns=$nsa cnode=a cip=10.203.1.20 dst=$sip ;;
  tcp) sns=$nsb snode=b sip=10.203.2.10 cns=$nsa cnode=a cip=10.203.1.20 dst=$sip ;;
  bridge) sns=$nsb snode=- sip=- cns=$nsa cnode=- cip=- dst=10.79.0.2 ;;
  esac
  port=$((port + 1))
  local srv=serve
  [ "$what" = stream ] && srv=drain
  local sargs=("$port" 1)
  [ $srv = drain ] && sargs=("$port")
  run "$sns" "$snode" "$sip" $srv "${sargs[@]}" >"$tmp/srv.log" &
  local sp=$!
  wait_for "$tmp/srv.log" ready
  local out
  if [ "$what" = stream ]; then
    out=$(run "$cns" "$cnode" "$cip" stream "$dst" "$port" "$mib")
    echo "$out" | sed -n 's/.* \([0-9.]*\) MiB\/s.*/\1/p'
  else
    out=$(run "$cns" "$cnode" "$cip" pingpong "$dst" "$port" "$rounds")
    echo "$out" | sed -n 's/.*, \([0-9.]*\) us each/\1/p'
  fi
  wait "$sp" || true
}

declare -A best_bw best_rtt
paths=(local tcp bridge)
for r in $(seq "$repeat"); do
  for p in "${paths[@]}"; do
    bw=$(one "$p" stream)
    rtt=$(one "$p" pingpong)
    echo "run $r $p: stream ${bw:-?} MiB/s, 64 B round trip ${rtt:-?} us" >&2
    [ -n "$bw" ] && awk -v a="$bw" -v b="${best_bw[$p]:-0}" 'BEGIN{exit !(a>b)}' && best_bw[$p]=$bw
    [ -n "$rtt" ] && awk -v a="$rtt" -v b="${best_rtt[$p]:-1e18}" 'BEGIN{exit !(a<b)}' && best_rtt[$p]=$rtt
  done
done

echo
echo "TSoR between two guest programs (quark-sandbox run), best of $repeat, load $(cut -d' ' -f1-3 /proc/loadavg):"
printf '| %-22s | %12s | %10s | %12s | %16s |\n' path "stream MiB/s" "x bridge" "64 B RTT us" "bridge RTT/this"
printf '|%s|%s|%s|%s|%s|\n' "------------------------" "--------------" "------------" "--------------" "------------------"
declare -A names=([local]="TSoR local fabric" [tcp]="TSoR tcp fabric" [bridge]="host sockets (veth)")
for p in "${paths[@]}"; do
  bw=${best_bw[$p]:-0} rtt=${best_rtt[$p]:-0} bbw=${best_bw[bridge]:-0} brtt=${best_rtt[bridge]:-0}
  printf '| %-22s | %12s | %10s | %12s | %16s |\n' "${names[$p]}" "$bw" \
    "$(awk -v a="$bw" -v b="$bbw" 'BEGIN{printf (b>0?"%.2f":"-"), a/b}')" "$rtt" \
    "$(awk -v a="$brtt" -v b="$rtt" 'BEGIN{printf (b>0?"%.2f":"-"), a/b}')"
done
# redis between two sandboxes (the binaries and their libraries from the host).
if [ "${BENCH_REDIS:-1}" = 1 ] && command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
  rr=$tmp/rroot
  mkdir -p "$rr/usr/bin" "$rr/tmp"
  for b in redis-server redis-benchmark; do
    cp -L "$(command -v $b)" "$rr/usr/bin/"
    for lib in $(ldd "$(command -v $b)" | grep -o '/[^ ]*'); do
      mkdir -p "$rr$(dirname "$lib")"
      cp -L "$lib" "$rr$lib"
    done
  done
  n=${BENCH_REDIS_N:-2000}
  rsbx() { # ns node|- ip args...
    local ns=$1 node=$2 ip=$3
    shift 3
    local t=()
    [ "$node" != - ] && t=(--tsor "$tmp/$node.sock" --tsor-ip "$ip" --tsor-cidr 10.203.0.0/16)
    ip netns exec "$ns" "$sbx" run --rootfs "$rr" --kernel "$kernel" --memory 512 "${t[@]}" -- "$@" 2>>"$tmp/sandbox.err"
  }
  declare -A rps
  rport=6378
  for p in "${paths[@]}"; do
    case $p in
    local) sns=$nsa snode=a sip=10.203.1.30 cns=$nsa cnode=a cip=10.203.1.31 dst=$sip ;;
    tcp) sns=$nsb snode=b sip=10.203.2.30 cns=$nsa cnode=a cip=10.203.1.31 dst=$sip ;;
    bridge) sns=$nsb snode=- sip=- cns=$nsa cnode=- cip=- dst=10.79.0.2 ;;
    esac
    rport=$((rport + 1))
    t=()
    [ "$snode" != - ] && t=(--tsor "$tmp/$snode.sock" --tsor-ip "$sip" --tsor-cidr 10.203.0.0/16)
    # Started directly (not through rsbx) so that $! is the sandbox itself.
    ip netns exec "$sns" "$sbx" run --rootfs "$rr" --kernel "$kernel" --memory 512 "${t[@]}" -- \
      /usr/bin/redis-server --port "$rport" --save "" --appendonly no --protected-mode no \
      >"$tmp/redis-$p.log" 2>>"$tmp/sandbox.err" &
    rp=$!
    pids+=($rp)
    wait_for "$tmp/redis-$p.log" "Ready to accept"
    for c in 1 10 50; do
      out=$(rsbx "$cns" "$cnode" "$cip" /usr/bin/redis-benchmark -h "$dst" -p "$rport" -t set,get -n "$n" -c $c -q |
        tr '\r' '\n' | grep 'requests per second')
      for t in SET GET; do
        rps[$p,$t,$c]=$(echo "$out" | sed -n "s/^$t: \([0-9.]*\) requests per second.*/\1/p" | tail -n 1)
      done
      echo "redis $p c=$c: SET ${rps[$p,SET,$c]:-?} GET ${rps[$p,GET,$c]:-?} requests/s" >&2
    done
    kill "$rp" 2>/dev/null
    wait "$rp" 2>/dev/null || true
  done
  echo
  echo "redis-benchmark between two sandboxes (-n $n), requests/s and x bridge:"
  printf '| %-22s | %-28s | %-28s | %-28s |\n' path "c=1 SET / GET" "c=10 SET / GET" "c=50 SET / GET"
  printf '|%s|%s|%s|%s|\n' "------------------------" "------------------------------" \
    "------------------------------" "------------------------------"
  for p in "${paths[@]}"; do
    row=()
    for c in 1 10 50; do
      cell=""
      for t in SET GET; do
        v=${rps[$p,$t,$c]:-0} b=${rps[bridge,$t,$c]:-0}
        cell+="$v ($(awk -v a="$v" -v b="$b" 'BEGIN{printf (b>0?"%.2f":"-"), a/b}')) "
      done
      row+=("$cell")
    done
    printf '| %-22s | %-28s | %-28s | %-28s |\n' "${names[$p]}" "${row[@]}"
  done
fi
if grep -qE 'AddressSanitizer|runtime error|Error' "$tmp/sandbox.err"; then
  echo "sandbox errors:" >&2
  grep -E 'AddressSanitizer|runtime error|Error' "$tmp/sandbox.err" | head >&2
fi
