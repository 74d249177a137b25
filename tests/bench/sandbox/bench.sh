#!/usr/bin/env bash
# quark-sandbox benchmark (not a ctest test): boot time, `run /bin/true` wall
# time against runc, crun and runsc on the same busybox-static rootfs,
# syscall costs (getpid, open+close, stat, 1 MiB-chunk reads) against native
# and the peers, and per-operation VM exits and emulated ring-0 instructions
# counted from KVM's statistics. Prints a ratio table.
#
# Usage (root): tests/bench/sandbox/bench.sh [BUILD_DIR]
#   BUILD_DIR  a build tree with sandbox/quark-sandbox (default: a Release
#              build made in $BENCH_DIR/build from this checkout)
# Env: BENCH_DIR (/tmp/quark-sbx-bench), RUNS (10), PEERS ("runc crun runsc"),
#      QUARK_N (2000: syscalls per quark measurement; ring 0 is emulated here)
# Needs: runc crun runsc jq gcc busybox-static (deploy/deps.sh test).
set -uo pipefail

die() { echo "bench: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"

# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/../lib.sh"
bench_private_cgroup_ns SBX_BENCH_IN_NS "$0" "$@"

here=$(cd "$(dirname "$0")" && pwd)
W=${BENCH_DIR:-/tmp/quark-sbx-bench}
RUNS=${RUNS:-10}
PEERS=${PEERS:-"runc crun runsc"}
QN=${QUARK_N:-2000}
NATIVE_N=200000
mkdir -p "$W"

bench_sandbox_build "$W" "$@"

# ---- rootfs: busybox-static, the helper, data files ----
R=$W/rootfs
rm -rf "$R"
mkdir -p "$R/bin" "$R/data" "$R/proc" "$R/dev" "$R/tmp"
cp /bin/busybox "$R/bin/busybox"
for a in sh true echo cat; do ln -s busybox "$R/bin/$a"; done
gcc -static -O2 -o "$R/bin/sbx_bench" "$here/sbx_bench.c" || die "gcc -static failed"
head -c $((16 << 20)) /dev/urandom >"$R/data/big"
echo small >"$R/data/small"

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "NA"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.eE+-]+$/ && b ~ /^[0-9.eE+-]+$/ && b+0 != 0) printf "%.1f", a/b; else print "NA" }'; }
ms_of() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N); echo "scale=2; ($t1 - $t0) / 1000000" | bc; }
stat_of() { awk -v k="$2" '$1==k {print $2}' "$1"; }

quark() { "$sbx" run --rootfs "$R" --memory 256 "$@"; }

# ---- peers: OCI bundles on the same rootfs ----
(cd "$W" && rm -f config.json && runc spec && mv config.json base.json) || die "runc spec failed"
bundle() { # name args-json
  mkdir -p "$W/b/$1"
  jq --arg root "$R" --argjson args "$2" '.process.terminal=false | .process.args=$args | .root.path=$root
     | .root.readonly=false' "$W/base.json" >"$W/b/$1/config.json"
  echo "$W/b/$1"
}
peer_cmd() {
  case $1 in
  runc) echo "runc --root $W/state-runc" ;;
  crun) echo "crun --root $W/state-crun" ;;
  runsc) echo "runsc --root $W/state-runsc --platform=ptrace --network=none" ;;
  esac
}
id=0
peer_run() { # peer bundle
  id=$((id + 1))
  # shellcheck disable=SC2046
  timeout -k 5 120 $(peer_cmd "$1") run --bundle "$2" "sbxb$$-$id" </dev/null
}
OKPEERS=()
B_TRUE=$(bundle true '["/bin/busybox","true"]')
for p in $PEERS; do
  if command -v "$p" >/dev/null && peer_run "$p" "$B_TRUE" >/dev/null 2>&1; then OKPEERS+=("$p"); else
    echo "bench: $p does not run here; left out" >&2; fi
done

echo "== quark-sandbox bench ($(date -u +%FT%TZ), $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
[ -e /sys/module/kvm_pvm ] && echo "   host KVM: kvm_pvm (guest ring 0 emulated)"

# ---- 1. boot: VM creation -> first guest instruction; run /bin/true ----
boots=() walls=()
for i in $(seq "$RUNS"); do
  t0=$(date +%s%N)
  quark --stats "$W/st" -- /bin/busybox true >/dev/null 2>&1
  t1=$(date +%s%N)
  boots+=("$(stat_of "$W/st" boot_to_first_instruction_us)")
  walls+=("$(echo "scale=2; ($t1 - $t0) / 1000000" | bc)")
done
boot_us=$(printf '%s\n' "${boots[@]}" | median)
q_true=$(printf '%s\n' "${walls[@]}" | median)
declare -A TRUE_MS
for p in "${OKPEERS[@]}"; do
  v=()
  for i in $(seq "$RUNS"); do v+=("$(ms_of peer_run "$p" "$B_TRUE")"); done
  TRUE_MS[$p]=$(printf '%s\n' "${v[@]}" | median)
done
echo
echo "VM creation -> first guest instruction: ${boot_us} us (median of $RUNS)"
printf '%-26s %10s %8s\n' "run /bin/true" "ms" "quark/x"
printf '%-26s %10s %8s\n' "quark-sandbox" "$q_true" "1.0"
for p in "${OKPEERS[@]}"; do printf '%-26s %10s %8s\n' "$p" "${TRUE_MS[$p]}" "$(ratio "$q_true" "${TRUE_MS[$p]}")"; done

# ---- 2. syscalls ----
val() { awk '{print $2}'; }
declare -A NAT Q EXITS INSNS QC
NAT[getpid]=$("$R/bin/sbx_bench" getpid $NATIVE_N | val)
NAT[openclose]=$("$R/bin/sbx_bench" openclose $((NATIVE_N / 10)) "$R/data/small" | val)
NAT[stat]=$("$R/bin/sbx_bench" stat $((NATIVE_N / 10)) "$R/data/small" | val)
NAT[read]=$("$R/bin/sbx_bench" read 8 "$R/data/big" | val)

# Syscalls with the default syscall path (the ring-3 kernel worker on
# PVM-style hosts) and, for comparison, with the kernel in ring 0
# (hardware KVM's path, emulated here): columns quark and quark-r0.
declare -A Q0 EXITS0 INSNS0
quark_ops() { # suffix (""|0) extra-flags...
  local sfx=$1
  shift
  quark "$@" --stats "$W/st0" -- /bin/sbx_bench getpid 0 >/dev/null 2>&1
  for op in getpid openclose stat read; do
    n=$QN
    [ "$op" = openclose ] || [ "$op" = stat ] && n=$((QN / 4))
    [ "$op" = read ] && n=1
    base=$W/st0
    if [ "$op" != getpid ]; then
      quark "$@" --stats "$W/st0-$op" -- /bin/sbx_bench "$op" 0 /data/small >/dev/null 2>&1
      base=$W/st0-$op
    fi
    f=/data/small
    [ "$op" = read ] && f=/data/big
    out=$(timeout 600 "$sbx" run --rootfs "$R" --memory 256 "$@" --stats "$W/st1" -- /bin/sbx_bench "$op" "$n" "$f" 2>/dev/null)
    v=$(echo "$out" | val)
    ops=$n
    [ "$op" = read ] && ops=17 # one pass = 16 read()s of 1 MiB + the final 0-byte read
    ex=$(awk -v a="$(stat_of "$W/st1" kvm_exits)" -v b="$(stat_of "$base" kvm_exits)" -v n="$ops" 'BEGIN { if (a == "" || b == "") print "NA"; else printf "%.1f", (a - b) / n }')
    in=$(awk -v a="$(stat_of "$W/st1" kvm_insn_emulation)" -v b="$(stat_of "$base" kvm_insn_emulation)" -v n="$ops" 'BEGIN { if (a == "" || b == "") print "NA"; else printf "%.1f", (a - b) / n }')
    qc=$(awk -v a="$(stat_of "$W/st1" qcalls)" -v b="$(stat_of "$base" qcalls)" -v n="$ops" 'BEGIN { if (a == "" || b == "") print "NA"; else printf "%.1f", (a - b) / n }')
    if [ -z "$sfx" ]; then Q[$op]=${v:-NA}; EXITS[$op]=$ex; INSNS[$op]=$in; QC[$op]=$qc; else
      Q0[$op]=${v:-NA}; EXITS0[$op]=$ex; INSNS0[$op]=$in; fi
  done
}
quark_ops ""
R0=0
if [ -e /sys/module/kvm_pvm ]; then quark_ops 0 --no-kernel-worker; R0=1; fi
declare -A PEER
B=()
for p in "${OKPEERS[@]}"; do
  for op in getpid openclose stat read; do
    n=$NATIVE_N
    [ "$p" = runsc ] && n=$((NATIVE_N / 20))
    [ "$op" = openclose ] || [ "$op" = stat ] && n=$((n / 10))
    f=/data/small
    [ "$op" = read ] && { n=4; f=/data/big; }
    b=$(bundle "$p-$op" "[\"/bin/sbx_bench\",\"$op\",\"$n\",\"$f\"]")
    PEER[$p,$op]=$(peer_run "$p" "$b" 2>/dev/null | val)
    [ -z "${PEER[$p,$op]}" ] && PEER[$p,$op]=NA
  done
done

echo
hdr=$(printf '%-10s %12s %12s %9s' op native quark quark/nat)
for p in "${OKPEERS[@]}"; do hdr+=$(printf ' %12s %9s' "$p" "quark/$p"); done
hdr+=$(printf ' %10s %12s %8s' "exits/op" "ring0-ins/op" "qcall/op")
[ "$R0" = 1 ] && hdr+=$(printf ' %12s %10s %12s' "quark-r0" "r0-exits" "r0-ins/op")
echo "$hdr"
for op in getpid openclose stat read; do
  unit="ns/op"
  [ "$op" = read ] && unit="MiB/s"
  line=$(printf '%-10s %12s %12s' "$op" "${NAT[$op]}" "${Q[$op]}")
  if [ "$op" = read ]; then line+=$(printf ' %9s' "$(ratio "${NAT[$op]}" "${Q[$op]}")"); else
    line+=$(printf ' %9s' "$(ratio "${Q[$op]}" "${NAT[$op]}")"); fi
  for p in "${OKPEERS[@]}"; do
    if [ "$op" = read ]; then r=$(ratio "${PEER[$p,$op]}" "${Q[$op]}"); else r=$(ratio "${Q[$op]}" "${PEER[$p,$op]}"); fi
    line+=$(printf ' %12s %9s' "${PEER[$p,$op]}" "$r")
  done
  line+=$(printf ' %10s %12s %8s' "${EXITS[$op]}" "${INSNS[$op]}" "${QC[$op]}")
  [ "$R0" = 1 ] && line+=$(printf ' %12s %10s %12s' "${Q0[$op]}" "${EXITS0[$op]}" "${INSNS0[$op]}")
  echo "$line   ($unit)"
done
echo
echo "ratios are slowdowns (>1 = quark slower; for read: their MiB/s over quark's)."
echo "exits/op, ring0-ins/op (KVM insn_emulation: guest ring-0 instructions emulated by this host), qcall/op:"
echo "per operation, from KVM statistics of a run with N ops minus a run with 0 ops (read: per 1 MiB read())."
[ "$R0" = 1 ] && echo "quark-r0: the same with --no-kernel-worker (the kernel in ring 0, which this host emulates)."
for p in "${OKPEERS[@]}"; do
  # shellcheck disable=SC2046
  $(peer_cmd "$p") list -q 2>/dev/null | grep "^sbxb$$-" | while read -r c; do $(peer_cmd "$p") delete -f "$c" >/dev/null 2>&1; done
done
