# Shared shell helpers for the CRI end-to-end tests: a private quarkd on a
# temporary socket, state root and log, stopped and checked on exit.
# Environment from CMake: QUARKD, QUARK, QUARK_PROTO, NODE_PATH.
set -euo pipefail

e2e_skip() { echo "SKIP: $*"; exit 77; }
e2e_fail() { echo "FAIL: $*"; exit 1; }

e2e_need_node() {
  command -v node >/dev/null || e2e_skip "node is not installed (deploy/deps.sh test)"
  [ -d "${NODE_PATH:-/nonexistent}/@grpc/grpc-js" ] && [ -d "$NODE_PATH/@grpc/proto-loader" ] ||
    e2e_skip "npm CRI client not installed in ${NODE_PATH:-?} (tests/run.sh installs it)"
}

e2e_setup() {
  T=$(mktemp -d /tmp/quark-e2e.XXXXXX)
  SOCK=$T/run/quark.sock
  export QUARK_ENDPOINT=unix://$SOCK QUARK_STATE_ROOT=$T/state
  cat >"$T/config.json" <<JSON
{"Socket":"unix://$SOCK","StateRoot":"$T/state","ImageRoot":"$T/images",
 "LogFile":"$T/quark.log","DebugLevel":"${E2E_DEBUG_LEVEL:-Info}",
 "Cni":{"ConfDir":"$T/cni"}}
JSON
  QPID=
  trap e2e_cleanup EXIT
}

e2e_cleanup() {
  local rc=$?
  if [ -n "${QPID:-}" ] && kill -0 "$QPID" 2>/dev/null; then
    kill -KILL "$QPID" 2>/dev/null || true
    wait "$QPID" 2>/dev/null || true
  fi
  if [ $rc -ne 0 ] && [ -f "$T/quarkd.log" ]; then
    echo "---- quarkd output (last 60 lines) ----"
    tail -n 60 "$T/quarkd.log"
  fi
  rm -rf "$T"
  exit $rc
}

# Starts quarkd in the background and waits until it answers on its socket.
start_quarkd() {
  "$QUARKD" --config "$T/config.json" --foreground "$@" >>"$T/quarkd.log" 2>&1 &
  QPID=$!
  for _ in $(seq 1 150); do
    if [ -S "$SOCK" ] && "$QUARK" version >/dev/null 2>&1; then return 0; fi
    kill -0 "$QPID" 2>/dev/null || e2e_fail "quarkd exited during start"
    sleep 0.1
  done
  e2e_fail "quarkd did not answer within 15 s"
}

# SIGTERM: quarkd must exit 0 (sanitizers included) and leave no socket.
stop_quarkd() {
  kill -TERM "$QPID"
  local rc=0
  wait "$QPID" || rc=$?
  QPID=
  [ $rc -eq 0 ] || e2e_fail "quarkd exited $rc after SIGTERM"
  [ ! -e "$SOCK" ] || e2e_fail "socket $SOCK left behind after SIGTERM"
  echo "ok   SIGTERM: exit 0, socket removed"
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
