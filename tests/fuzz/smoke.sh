#!/usr/bin/env bash
# One short libFuzzer run of a target over its committed seeds, for ctest.
# Usage: tests/fuzz/smoke.sh TREE NAME RUNS SECONDS
# TREE is the clang tree tests/fuzz/build.sh made. Passes when the run ends
# with no crash, leak, timeout or out-of-memory; a failing input is kept
# under TREE/smoke/NAME/artifacts and the command to replay it is printed.
set -euo pipefail
tree=$1 name=$2 runs=$3 secs=$4
list=$tree/fuzz-targets.txt
if ! command -v "${QUARK_FUZZ_CC:-clang}" >/dev/null; then
  echo "fuzz: clang not installed: skipped"
  exit 77
fi
if [ ! -f "$list" ]; then
  echo "fuzz: $list missing: the fuzz_build test did not run or failed"
  exit 1
fi
read -r _ bin seeds max_len < <(grep "^$name " "$list" || true)
if [ -z "${bin:-}" ]; then
  echo "fuzz: no target $name in $list (a library it needs is not built yet?)"
  exit 77
fi
if [ ! -x "$bin" ]; then
  echo "fuzz: $bin was not built: see $tree/build.log"
  exit 1
fi
work=$tree/smoke/$name
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
cd "$work"
set +e
"$bin" -runs="$runs" -max_total_time="$secs" -max_len="$max_len" -timeout=20 \
  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
  "$work/corpus" "$seeds" >"$work/log" 2>&1
rc=$?
set -e
grep -E '^(INFO: seed corpus|#[0-9]+ +(INITED|DONE))|^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$work/log" || true
if [ $rc -ne 0 ] || [ -n "$(ls -A "$work/artifacts")" ]; then
  tail -n 60 "$work/log"
  for a in "$work"/artifacts/*; do
    [ -e "$a" ] && echo "fuzz: failing input $a; replay: $bin $a"
  done
  echo "fuzz: $name FAILED (exit $rc)"
  exit 1
fi
echo "fuzz: $name passed"
