#!/usr/bin/env bash
# Guest socket benchmark (not a ctest test): TCP request/response latency
# and bulk throughput between a program in a Quark guest and a peer on the
# host, against the same static program run natively on both ends. All
# traffic stays on the loopback of a network namespace made here.
#
# Usage (root): tests/bench/net/bench.sh [BUILD_DIR]
#   BUILD_DIR  a build tree with sandbox/quark-sandbox and guestkernel/qkernel.bin
#              (default: a Release build made in $BENCH_DIR/build)
# Env: BENCH_DIR (/tmp/quark-net-bench), RR_N (2000 round trips), RR_SIZE (64),
#      BULK_MIB (256), RUNS (3: the median is reported)
set -uo pipefail

die() { echo "bench: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"
[ -e /dev/kvm ] || die "/dev/kvm is absent"

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../.." && pwd)
W=${BENCH_DIR:-/tmp/quark-net-bench}
RR_N=${RR_N:-2000}
RR_SIZE=${RR_SIZE:-64}
BULK_MIB=${BULK_MIB:-256}
RUNS=${RUNS:-3}
mkdir -p "$W"
if [ $# -ge 1 ]; then
  build=$1
else
  build=$W/build
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null || die "cmake failed"
  cmake --build "$build" --target quark-sandbox qkernel -j"$(nproc)" >/dev/null || die "build failed"
fi
sbx=$build/sandbox/quark-sandbox
kernel=$build/guestkernel/qkernel.bin
[ -x "$sbx" ] && [ -f "$kernel" ] || die "no quark-sandbox/qkernel.bin in $build"

prog=$W/t_net
gcc -static -O2 -o "$prog" "$src/tests/integration/guestnet/progs/t_net.c" || die "cannot build t_net"
root=$W/rootfs
rm -rf "$root"
mkdir -p "$root"/{bin,tmp,dev,proc,etc}
cp "$prog" "$root/bin/t_net"

ns=qnb$$
ip netns add "$ns" || die "cannot create a network namespace"
ip -n "$ns" link set lo up
trap 'ip netns del "$ns" 2>/dev/null' EXIT
nsx() { ip netns exec "$ns" "$@"; }
guest() { nsx "$sbx" run --rootfs "$root" --kernel "$kernel" -- /bin/t_net "$@" 2>/dev/null; }
native() { nsx "$prog" "$@"; }

# one SERVER_SIDE CLIENT_SIDE MODE ARGS...: runs a server (guest|native) and a
# client (guest|native) once; prints the client's number.
port=7100
one() {
  local sside=$1 cside=$2 mode=$3
  shift 3
  port=$((port + 1))
  if [ "$sside" = guest ]; then guest "$mode-server" $port >/dev/null & else native "$mode-server" $port >/dev/null & fi
  local spid=$!
  local out
  if [ "$cside" = guest ]; then out=$(guest "$mode-client" $port "$@"); else out=$(native "$mode-client" $port "$@"); fi
  wait $spid
  echo "$out" | awk '{ print $2 }'
}
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR ? a[int((NR + 1) / 2)] : "nan") }'; }
measure() {
  local i
  for i in $(seq "$RUNS"); do one "$@"; done | median
}

echo "guest sockets: $RR_N round trips of $RR_SIZE B, $BULK_MIB MiB bulk, median of $RUNS runs"
printf '%-34s %12s %12s\n' "path" "rr us" "bulk MiB/s"
declare -A RR BULK
for pair in "native native" "guest native" "native guest"; do
  set -- $pair
  RR[$pair]=$(measure "$1" "$2" rr "$RR_N" "$RR_SIZE")
  BULK[$pair]=$(measure "$1" "$2" bulk "$BULK_MIB")
  case "$pair" in
  "native native") label="native <-> native" ;;
  "guest native") label="guest server <- host client" ;;
  "native guest") label="guest client -> host server" ;;
  esac
  printf '%-34s %12s %12s\n' "$label" "${RR[$pair]}" "${BULK[$pair]}"
done
echo
echo "ratios against native (latency: quark/native, lower is better; throughput: quark/native, higher is better)"
for pair in "guest native" "native guest"; do
  awk -v l="$pair" -v r="${RR[$pair]}" -v rn="${RR["native native"]}" -v b="${BULK[$pair]}" \
      -v bn="${BULK["native native"]}" \
      'BEGIN { printf "%-34s latency %.2fx  throughput %.2fx\n", l, r / rn, b / bn }'
done
