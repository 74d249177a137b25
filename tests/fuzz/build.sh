#!/usr/bin/env bash
# Configures and builds the libFuzzer targets in their own clang tree (see
# tests/fuzz/fuzz.cmake for why a second tree). Usage:
#   tests/fuzz/build.sh [--keep-going] [TREE]   (default TREE: build-fuzz/ at
#   the checkout root). --keep-going: exit 0 when only some targets fail to
#   build (ctest's fixture: each missing target then fails its own test).
# Then run one: TREE/tests/fuzz/<name>/fuzz_<name> CORPUS_DIR tests/fuzz/<name>/seeds
# Exits 77 when clang or its libFuzzer runtime is missing (ctest: skipped).
# Environment: QUARK_FUZZ_CC (default clang), QUARK_FUZZ_JOBS (default nproc).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
keep_going=0
if [ "${1:-}" = --keep-going ]; then
  keep_going=1
  shift
fi
tree=${1:-$root/build-fuzz}
cc=${QUARK_FUZZ_CC:-clang}
jobs=${QUARK_FUZZ_JOBS:-$(nproc)}

if ! command -v "$cc" >/dev/null; then
  echo "fuzz: $cc not installed (deploy/deps.sh test installs clang and libclang-rt-14-dev)"
  exit 77
fi
mkdir -p "$tree"
probe=$tree/probe
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$probe.c" -o "$probe" 2>"$probe.log"; then
  echo "fuzz: $cc cannot link -fsanitize=fuzzer (Debian: libclang-rt-14-dev):"
  cat "$probe.log"
  exit 77
fi

flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
flags+=" -fno-omit-frame-pointer -gline-tables-only -O1"
log=$tree/build.log
: >"$log"
echo "fuzz: configuring $tree with $cc (log: $log)"
if ! cmake -S "$root" -B "$tree" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE= \
    -DQUARK_FUZZ=ON -DQUARK_WERROR=OFF -DQUARK_SANITIZE=OFF \
    "-DCMAKE_C_FLAGS=$flags" "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" \
    >>"$log" 2>&1; then
  tail -n 30 "$log"
  echo "fuzz: configure failed"
  exit 1
fi

failed=()
built=0
while read -r name bin _; do
  [ -n "$name" ] || continue
  if cmake --build "$tree" -j"$jobs" --target "fuzz_$name" >>"$log" 2>&1; then
    built=$((built + 1))
  else
    failed+=("$name")
    rm -f "$bin"
  fi
done <"$tree/fuzz-targets.txt"

echo "fuzz: built $built target(s) in $tree"
if [ ${#failed[@]} -gt 0 ]; then
  grep -E 'error|Error' "$log" | tail -n 30
  echo "fuzz: FAILED to build: ${failed[*]} (full log: $log)"
  [ $keep_going -eq 1 ] || exit 1
fi
