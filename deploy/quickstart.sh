#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine, as root: installs the missing
# Debian packages, builds Quark (Release, no sanitizers) into build/, starts
# quarkd in the background on unix:///run/quark/quark.sock with a config in
# /run/quark-quickstart, shows `quark version` and `quark info`, imports the
# busybox test image (built from Debian's busybox-static by
# tests/images/build.sh) and runs a pod that prints "hello from quark"
# (`quark run`: pod + container through CRI, output streamed, pod removed).
# Usage: deploy/quickstart.sh [--stop]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${QUARK_BUILD:-$root/build}
run=/run/quark-quickstart
endpoint=unix:///run/quark/quark.sock

stop() {
  if [ -f "$run/quarkd.pid" ] && kill -0 "$(cat "$run/quarkd.pid")" 2>/dev/null; then
    kill -TERM "$(cat "$run/quarkd.pid")"
    for _ in $(seq 1 100); do kill -0 "$(cat "$run/quarkd.pid")" 2>/dev/null || break; sleep 0.1; done
    echo "quickstart: quarkd stopped"
  else
    echo "quickstart: no quick-start quarkd running"
  fi
  rm -f "$run/quarkd.pid"
}

if [ "${1:-}" = --stop ]; then
  stop
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "quickstart: run as root (it installs packages and uses /run)" >&2; exit 1; }

deploy/deps.sh build run

echo "quickstart: building into $build (Release)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DQUARK_SANITIZE=OFF >/dev/null
# The daemon and CLI first: the quick start needs them. Then the rest of the
# tree (VMM, guest kernel); a failure there is reported, and quarkd still
# starts and says in `quark info` what it is missing.
cmake --build "$build" -j"$(nproc)" --target quarkd quark >"$build/quickstart-build.log" 2>&1 || {
  tail -n 40 "$build/quickstart-build.log"
  echo "quickstart: building quarkd failed (full log: $build/quickstart-build.log)" >&2
  exit 1
}
if ! cmake --build "$build" -j"$(nproc)" >>"$build/quickstart-build.log" 2>&1; then
  grep -m 5 -E 'error' "$build/quickstart-build.log" >&2 || true
  echo "quickstart: WARNING: part of the tree failed to build (log: $build/quickstart-build.log);" \
       "continuing with quarkd" >&2
fi
quarkd=$build/cri/quarkd
quark=$build/cri/quark

# Point the sandbox settings at what this build produced, when it did, so
# that Status reports RuntimeReady for this tree rather than an install.
sbx=$(find "$build" -name quark-sandbox -type f -perm -u+x -print -quit)
kernel=$(find "$build" -name qkernel.bin -type f -print -quit)
mkdir -p "$run"
cat >"$run/config.json" <<JSON
{
  "Socket": "$endpoint",
  "LogFile": "$run/quark.log",
  "Sandbox": {
    "Binary": "${sbx:-/usr/local/bin/quark-sandbox}",
    "Kernel": "${kernel:-/usr/local/lib/quark/qkernel.bin}"
  }
}
JSON
"$quarkd" --check-config "$run/config.json" >/dev/null

if QUARK_ENDPOINT=$endpoint "$quark" version >/dev/null 2>&1; then
  echo "quickstart: a quarkd already answers on $endpoint; using it"
else
  "$quarkd" --config "$run/config.json" >"$run/quarkd.out" 2>&1 &
  echo $! >"$run/quarkd.pid"
  for _ in $(seq 1 100); do
    QUARK_ENDPOINT=$endpoint "$quark" version >/dev/null 2>&1 && break
    kill -0 "$(cat "$run/quarkd.pid")" 2>/dev/null || { cat "$run/quarkd.out" >&2; exit 1; }
    sleep 0.1
  done
  echo "quickstart: quarkd started (pid $(cat "$run/quarkd.pid"), log $run/quark.log)"
fi

export QUARK_ENDPOINT=$endpoint QUARK_CONFIG=$run/config.json
echo
echo "\$ quark version"
"$quark" version
echo
echo "\$ quark info"
"$quark" info

# The demo image: an OCI layout built from Debian's busybox-static, tarred
# into the OCI archive that `quark import` reads (no registry needed).
echo
echo "quickstart: building the busybox test image"
bash tests/images/build.sh "$build/test-images" busybox >"$run/images.log" 2>&1 ||
  { tail -n 20 "$run/images.log" >&2; echo "quickstart: building the test image failed" >&2; exit 1; }
tar -C "$build/test-images/busybox" -cf "$run/busybox.tar" .
echo "\$ quark import busybox.tar docker.io/library/busybox"
"$quark" import "$run/busybox.tar" docker.io/library/busybox
echo
echo "\$ quark run busybox -- echo hello from quark"
rc=0
"$quark" run --log-dir "$run/pods/demo" busybox -- echo hello from quark || rc=$?
if [ $rc -ne 0 ]; then
  echo "quickstart: the demo pod did not run (exit $rc): see the message above;" \
       "\`quark info\` says whether the sandbox and guest kernel are ready" >&2
  exit 1
fi
cat <<EOF2

quarkd serves CRI on $endpoint. Try:
  $quark run busybox -- sh -c 'uname -a; ls /'
  $quark run --keep busybox -- sh -c 'while true; do date; sleep 1; done' &
  $quark ps;  $quark logs -f ID;  $quark exec ID -- ls /etc
  $quark pods
  $quark ps -a
  crictl --runtime-endpoint $endpoint version     (if crictl is installed)
Stop it with:
  deploy/quickstart.sh --stop      (or: kill -TERM \$(cat $run/quarkd.pid))
EOF2
