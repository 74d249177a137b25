#!/usr/bin/env bash
# Usage: run.sh STREAM_TESTD CLIENT_SRC_DIR WORK_DIR [client args...]
# Builds the Go test client offline (GOPATH mode over /usr/share/gocode),
# starts stream_testd, runs every client scenario, then checks that the
# daemon survived all of them and shuts down cleanly (ASan checks leaks).
set -euo pipefail
testd=$1 src=$2 work=$3
shift 3
gopath=/usr/share/gocode
if ! command -v go >/dev/null; then
  echo "SKIP: golang-go is not installed (deploy/deps.sh test)"; exit 77
fi
for p in github.com/moby/spdystream github.com/gorilla/websocket; do
  if [ ! -d "$gopath/src/$p" ]; then
    echo "SKIP: $gopath/src/$p missing (golang-github-docker-spdystream-dev, golang-github-gorilla-websocket-dev)"; exit 77
  fi
done
mkdir -p "$work/gocache"
client=$work/stream-client
if [ ! -x "$client" ] || [ -n "$(find "$src" -name '*.go' -newer "$client")" ]; then
  (cd "$src" && GO111MODULE=off GOPATH=$gopath GOCACHE=$work/gocache GOFLAGS= go build -o "$client" .)
fi

tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
ttl_ms=3000 # long enough for a loaded machine, short enough to wait out once
"$testd" "$tmp/ctl.sock" $ttl_ms >"$tmp/url" 2>"$tmp/testd.log" &
pid=$!
for _ in $(seq 100); do [ -s "$tmp/url" ] && break; sleep 0.05; done
base=$(head -n1 "$tmp/url")
[ -n "$base" ] || { echo "stream_testd did not start"; cat "$tmp/testd.log"; exit 1; }
echo "stream_testd serving on $base"

rc=0
"$client" -ctl "$tmp/ctl.sock" -base "$base" -ttl ${ttl_ms}ms "$@" || rc=1
if ! kill -0 "$pid" 2>/dev/null; then
  echo "FAIL: stream_testd died"; rc=1; pid=
else
  # Stopping the server ends a session in flight and releases its process.
  "$client" -ctl "$tmp/ctl.sock" -hold >"$tmp/hold" 2>&1 &
  hold=$!
  for _ in $(seq 100); do grep -q holding "$tmp/hold" && break; sleep 0.05; done
  kill -TERM "$pid"
  if ! wait "$pid"; then echo "FAIL: stream_testd exited with an error"; rc=1; fi
  pid=
  if ! wait "$hold" || ! grep -q closed "$tmp/hold"; then
    echo "FAIL: a session in flight did not end with the server"; cat "$tmp/hold"; rc=1
  else
    echo "ok   server stop ends a session in flight"
  fi
fi
if [ -s "$tmp/testd.log" ]; then echo "--- stream_testd log"; cat "$tmp/testd.log"; fi
exit $rc
