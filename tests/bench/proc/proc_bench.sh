#!/usr/bin/env bash
# Process/thread benchmark (not a ctest test): fork+exec+wait of a static
# /bin/true (busybox), pipe throughput (64 KiB writes, child -> parent), futex
# ping-pong between two threads and thread create+join, measured in one run
# natively (chroot into the same rootfs), under runc, crun, runsc
# (--platform=ptrace --network=none) and in quark-sandbox; prints a ratio
# table and, for quark, VM exits / emulated ring-0 instructions / QCalls per
# operation from `quark-sandbox run --stats` (a run with N ops minus a run
# with 0 ops, as tests/bench/sandbox/bench.sh does).
#
# Usage (root): tests/bench/proc/proc_bench.sh [BUILD_DIR]
#   BUILD_DIR  a build tree with sandbox/quark-sandbox (default: a Release
#              build made in $BENCH_DIR/build from this checkout)
# Env: BENCH_DIR (/tmp/quark-proc-bench), ROUNDS (3: runs per cell, median),
#      PEERS ("runc crun runsc"), QUARK_FLAGS (extra `quark-sandbox run` flags,
#      e.g. --no-kernel-worker)
# Needs: runc crun runsc jq gcc busybox-static. Everything it creates except
# the build tree is removed at exit, also on failure.
set -uo pipefail

die() { echo "proc_bench: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"

# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/../lib.sh"
bench_private_cgroup_ns PROC_BENCH_IN_NS "$0" "$@"

here=$(cd "$(dirname "$0")" && pwd)
W=${BENCH_DIR:-/tmp/quark-proc-bench}
ROUNDS=${ROUNDS:-3}
PEERS=${PEERS:-"runc crun runsc"}
QFLAGS=${QUARK_FLAGS:-}
TAG="pbb$$"
OPS="forkexec pipe futex thread"
for c in jq gcc busybox unshare timeout awk chroot; do command -v "$c" >/dev/null || die "missing $c"; done
CHROOT=$(command -v chroot)

# Loop counts per op (pipe: MiB). Quark and runsc get fewer (slower per op).
declare -A N_FAST=([forkexec]=500 [pipe]=1024 [futex]=50000 [thread]=5000)
declare -A N_RUNSC=([forkexec]=100 [pipe]=256 [futex]=5000 [thread]=500)
declare -A N_QUARK=([forkexec]=100 [pipe]=256 [futex]=2000 [thread]=200)
declare -A UNIT=([forkexec]=us/op [pipe]=MiB/s [futex]=us/rt [thread]=us/op)

mkdir -p "$W"
RUNDIR=$(mktemp -d "$W/run.XXXXXX")
cleanup() {
  local p c pid
  for p in $PEERS; do
    command -v "$p" >/dev/null || continue
    for c in $($p --root "$RUNDIR/state-$p" list -q 2>/dev/null | grep "^$TAG-"); do
      $p --root "$RUNDIR/state-$p" kill "$c" KILL >/dev/null 2>&1
      $p --root "$RUNDIR/state-$p" delete -f "$c" >/dev/null 2>&1
    done
  done
  # runsc sandbox/gofer processes left by a killed run carry our state root
  for pid in $(grep -lsa -- "$RUNDIR/state-" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
    [ "$pid" = $$ ] || kill -KILL "$pid" 2>/dev/null
  done
  for c in /sys/fs/cgroup/*/"$TAG"-* /sys/fs/cgroup/*/*/"$TAG"-*; do [ -d "$c" ] && rmdir "$c" 2>/dev/null; done
  rm -rf "$RUNDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_sandbox_build "$W" "$@"

# ---- rootfs: busybox-static (/bin/true is busybox), procbench ----
R=$RUNDIR/rootfs
mkdir -p "$R/bin" "$R/proc" "$R/dev" "$R/tmp" "$R/sys"
cp "$(command -v busybox)" "$R/bin/busybox"
file -L "$R/bin/busybox" | grep -q 'statically linked' || die "need busybox-static"
for a in sh true; do ln -s busybox "$R/bin/$a"; done
gcc -static -O2 -Wall -o "$R/procbench" "$here/procbench.c" -lpthread || die "gcc -static failed"

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "NA"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.eE+-]+$/ && b ~ /^[0-9.eE+-]+$/ && b+0 != 0) printf "%.1f", a/b; else print "NA" }'; }
stat_of() { awk -v k="$2" '$1==k {print $2}' "$1"; }
val() { awk 'NF>=2 {print $2; exit}'; }
# median over ROUNDS of a command printing "op value unit"
med_of() { local i; for i in $(seq "$ROUNDS"); do "$@" 2>>"$RUNDIR/errors" | val; done | median; }

# ---- peers: OCI bundles on the same rootfs ----
(cd "$RUNDIR" && runc spec && mv config.json base.json) || die "runc spec failed"
bundle() { # name args-json
  mkdir -p "$RUNDIR/b/$1"
  jq --arg root "$R" --argjson args "$2" '.process.terminal=false | .process.args=$args | .root.path=$root
     | .root.readonly=false' "$RUNDIR/base.json" >"$RUNDIR/b/$1/config.json"
  echo "$RUNDIR/b/$1"
}
peer_cmd() {
  case $1 in
  runc | crun) echo "$1 --root $RUNDIR/state-$1" ;;
  runsc) echo "runsc --root $RUNDIR/state-runsc --platform=ptrace --network=none" ;;
  esac
}
id=0
peer_run() { # peer bundle
  id=$((id + 1))
  # shellcheck disable=SC2046
  timeout -k 5 300 $(peer_cmd "$1") run --bundle "$2" "$TAG-$id" </dev/null
}
OKPEERS=()
B_TRUE=$(bundle true '["/bin/true"]')
for p in $PEERS; do
  if command -v "$p" >/dev/null && peer_run "$p" "$B_TRUE" >/dev/null 2>&1; then OKPEERS+=("$p"); else
    echo "proc_bench: $p does not run here; left out" >&2; fi
done

quark() { # stats-file args...
  local st=$1
  shift
  # shellcheck disable=SC2086
  timeout -k 5 300 "$sbx" run --rootfs "$R" --memory 256 $QFLAGS --stats "$st" -- /procbench "$@" </dev/null
}

echo "== proc bench ($(date -u +%FT%TZ), $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), median of $ROUNDS)"
[ -e /sys/module/kvm_pvm ] && echo "   host KVM: kvm_pvm (guest ring 0 emulated)"
echo "   quark-sandbox flags: ${QFLAGS:-(default)}; peers: ${OKPEERS[*]:-none}"

declare -A NAT Q PEER EXITS INSNS QC
for op in $OPS; do
  NAT[$op]=$(med_of env -i PATH=/bin "$CHROOT" "$R" /procbench "$op" "${N_FAST[$op]}")
  # quark: wall clock, then counters from an N-op run minus a 0-op run
  n=${N_QUARK[$op]}
  Q[$op]=$(for i in $(seq "$ROUNDS"); do quark "$RUNDIR/st-$op-$i" "$op" "$n" 2>>"$RUNDIR/errors" | val; done | median)
  quark "$RUNDIR/st0-$op" "$op" 0 >/dev/null 2>>"$RUNDIR/errors"
  per=$n # pipe: per MiB
  for k in kvm_exits:EXITS kvm_insn_emulation:INSNS qcalls:QC; do
    v=$(awk -v a="$(stat_of "$RUNDIR/st-$op-1" "${k%%:*}" 2>/dev/null)" -v b="$(stat_of "$RUNDIR/st0-$op" "${k%%:*}" 2>/dev/null)" -v n="$per" \
      'BEGIN { if (a == "" || b == "") print "NA"; else printf "%.1f", (a - b) / n }')
    case ${k#*:} in EXITS) EXITS[$op]=$v ;; INSNS) INSNS[$op]=$v ;; QC) QC[$op]=$v ;; esac
  done
  for p in "${OKPEERS[@]}"; do
    n=${N_FAST[$op]}
    [ "$p" = runsc ] && n=${N_RUNSC[$op]}
    b=$(bundle "$p-$op" "[\"/procbench\",\"$op\",\"$n\"]")
    PEER[$p,$op]=$(med_of peer_run "$p" "$b")
  done
done

echo
hdr=$(printf '%-9s %6s %10s %10s %8s' op unit native quark q/native)
for p in "${OKPEERS[@]}"; do hdr+=$(printf ' %10s %8s' "$p" "q/$p"); done
hdr+=$(printf ' %9s %11s %8s' "exits/op" "r0-ins/op" "qcall/op")
echo "$hdr"
for op in $OPS; do
  slow() { if [ "$op" = pipe ]; then ratio "$2" "$1"; else ratio "$1" "$2"; fi; }
  line=$(printf '%-9s %6s %10s %10s %8s' "$op" "${UNIT[$op]}" "${NAT[$op]}" "${Q[$op]}" "$(slow "${Q[$op]}" "${NAT[$op]}")")
  for p in "${OKPEERS[@]}"; do line+=$(printf ' %10s %8s' "${PEER[$p,$op]}" "$(slow "${Q[$op]}" "${PEER[$p,$op]}")"); done
  line+=$(printf ' %9s %11s %8s' "${EXITS[$op]}" "${INSNS[$op]}" "${QC[$op]}")
  echo "$line"
done
echo
echo "q/x: quark's slowdown against x (>1 = quark slower; pipe: x's MiB/s over quark's)."
echo "exits/op, r0-ins/op (KVM insn_emulation: guest ring-0 instructions emulated by this host), qcall/op:"
echo "quark-sandbox --stats of an N-op run minus a 0-op run, per op (pipe: per MiB; futex: per round trip)."
cnt() { local -n a=$1; local o s=; for o in $OPS; do s+="$o=${a[$o]} "; done; echo "${s% }"; }
echo "ops per run (pipe: MiB): native/runc/crun $(cnt N_FAST); runsc $(cnt N_RUNSC); quark $(cnt N_QUARK)"
# glibc's rseq probe (syscall 334) is logged once per quark run: not an error
if grep -qv 'unimplemented syscall 334:' "$RUNDIR/errors" 2>/dev/null; then
  echo
  echo "errors (first 20 lines):"
  grep -v 'unimplemented syscall 334:' "$RUNDIR/errors" | head -20
fi
