#!/usr/bin/env bash
# The whole test suite: installs missing Debian packages and npm test clients,
# builds Quark with ASan + UBSan into build-test/, and runs every test with
# ctest (unit, integration, e2e). Usage: tests/run.sh [ctest args...]
set -euo pipefail
case "${1:-}" in
-h|--help)
  sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'
  echo "Env: QUARK_TEST_BUILD (build directory, default build-test/)."
  echo "Any other arguments go to ctest, e.g. tests/run.sh -R guest_ -j1."
  exit 0 ;;
esac
cd "$(dirname "$0")/.."
root=$(pwd)
build=${QUARK_TEST_BUILD:-$root/build-test}

deploy/deps.sh build test

cmake -S . -B "$build" -DQUARK_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j"$(nproc)"

# Independent CRI clients for the end-to-end tests, installed into the build tree.
if [ -f tests/e2e/package.json ]; then
  mkdir -p "$build/npm"
  cp tests/e2e/package.json "$build/npm/"
  [ -f tests/e2e/package-lock.json ] && cp tests/e2e/package-lock.json "$build/npm/"
  if [ ! -d "$build/npm/node_modules" ] || [ tests/e2e/package.json -nt "$build/npm/node_modules" ]; then
    (cd "$build/npm" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
    touch "$build/npm/node_modules"
  fi
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build"
ctest --output-on-failure --timeout 600 "$@"
