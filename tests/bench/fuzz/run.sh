#!/usr/bin/env bash
# Fuzzing figures (issue 11, item 5): runs every libFuzzer target of
# tests/fuzz/ for a fixed time and prints, per target, the inputs tried
# (execs), crashes, leaks (LeakSanitizer, and file descriptors left open by
# an input), hangs, out-of-memory, corpus size and time.
#
# Usage: tests/bench/fuzz/run.sh [--long] [--seconds S] [--jobs N] [--tree DIR]
#                                [--fresh] [TARGET...]
#   default     120 s per target (a quick look)
#   --long      600 s per target (the nightly size)
#   --seconds S S seconds per target
#   --jobs N    targets run N at a time (default 1: figures comparable per core)
#   --tree DIR  the clang tree (default: build-fuzz/ at the checkout root),
#               built or brought up to date with tests/fuzz/build.sh first
#   --fresh     start from the seeds only; by default each target's corpus
#               is kept in DIR/figures/<target>/corpus and grows run by run
#   --chaos B   then the live-quarkd suites of the test build B (tests/run.sh's
#               build-test/): e2e_chaos_cri and e2e_chaos_restart, at the
#               nightly size with --long (CHAOS_OPS=600, CHAOS_KILLS=40)
# Exit status 1 when any target crashed, leaked, hung or ran out of memory;
# the failing inputs are kept in DIR/figures/<target>/artifacts.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
secs=120 jobs=1 tree=$root/build-fuzz fresh=0 long=0 chaos=
want=()
while [ $# -gt 0 ]; do
  case "$1" in
    --long) secs=600 long=1 ;;
    --seconds) secs=$2; shift ;;
    --jobs) jobs=$2; shift ;;
    --tree) tree=$2; shift ;;
    --fresh) fresh=1 ;;
    --chaos) chaos=$2; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) want+=("$1") ;;
  esac
  shift
done

"$root/tests/fuzz/build.sh" "$tree" || exit $?
list=$tree/fuzz-targets.txt
out=$tree/figures
mkdir -p "$out"

run_one() { # name bin seeds max_len
  local name=$1 bin=$2 seeds=$3 max_len=$4 w=$out/$1
  [ $fresh -eq 1 ] && rm -rf "$w/corpus"
  rm -rf "$w/artifacts"
  mkdir -p "$w/corpus" "$w/artifacts"
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  (cd "$w" && exec "$bin" -max_total_time="$secs" -max_len="$max_len" -timeout=20 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$w/artifacts/" \
    "$w/corpus" "$seeds") >"$w/log" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  echo "$rc $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" >"$w/status"
}

names=()
while read -r name bin seeds max_len; do
  [ -n "$name" ] || continue
  if [ ${#want[@]} -gt 0 ] && [[ " ${want[*]} " != *" $name "* ]]; then
    continue
  fi
  names+=("$name")
  run_one "$name" "$bin" "$seeds" "$max_len" &
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
    wait -n || true
  done
done <"$list"
wait || true

stat() { # log key
  sed -n "s/^stat::$2: *//p" "$1" | tail -n 1
}
fmt='%-15s %8s %12s %9s %8s %8s %7s %6s %9s %7s\n'
# shellcheck disable=SC2059 # one format for the header and the rows
printf "$fmt" target seconds execs exec/s corpus crashes leaks hangs oom rss_mb
bad=0
total_execs=0
for name in "${names[@]}"; do
  w=$out/$name
  read -r rc wall <"$w/status"
  execs=$(stat "$w/log" number_of_executed_units)
  rate=$(stat "$w/log" average_exec_per_sec)
  rss=$(stat "$w/log" peak_rss_mb)
  corpus=$(find "$w/corpus" -type f | wc -l)
  leaks=$(find "$w/artifacts" -name 'leak-*' | wc -l)
  hangs=$(find "$w/artifacts" -name 'timeout-*' | wc -l)
  ooms=$(find "$w/artifacts" -name 'oom-*' | wc -l)
  crashes=$(find "$w/artifacts" \( -name 'crash-*' -o -name 'deadly-*' \) | wc -l)
  # The harnesses abort on a file descriptor leak: a leak, not a crash.
  if [ "$crashes" -gt 0 ] && grep -q 'file descriptors leaked' "$w/log"; then
    crashes=$((crashes - 1))
    leaks=$((leaks + 1))
  fi
  # A sanitizer report without an artifact (e.g. in LLVMFuzzerInitialize).
  if [ "$rc" -ne 0 ] && [ $((crashes + leaks + hangs + ooms)) -eq 0 ]; then
    crashes=1
  fi
  [ $((crashes + leaks + hangs + ooms)) -gt 0 ] && bad=1
  total_execs=$((total_execs + ${execs:-0}))
  # shellcheck disable=SC2059
  printf "$fmt" "$name" "$(printf '%.0f' "$wall")" "${execs:-0}" "${rate:-0}" "$corpus" \
    "$crashes" "$leaks" "$hangs" "$ooms" "${rss:-?}"
  for a in "$w"/artifacts/*; do
    [ -e "$a" ] && echo "    failing input: $a (replay: $(grep "^$name " "$list" | cut -d' ' -f2) $a)"
  done
done
echo "total inputs tried: $total_execs; logs and corpora under $out"
if [ -n "$chaos" ]; then
  [ $long -eq 1 ] && export CHAOS_OPS=${CHAOS_OPS:-600} CHAOS_KILLS=${CHAOS_KILLS:-40}
  ctest --test-dir "$chaos" -R '^e2e_chaos_(cri|restart)$' -V >"$out/chaos.log" 2>&1 || bad=1
  grep -E '^[0-9]+: chaos(-restart)?: ' "$out/chaos.log" | sed 's/^[0-9]*: /  /' || true
  grep -E 'tests passed|\(Failed\)|Skipped' "$out/chaos.log" | tail -3 || true
fi
exit $bad
