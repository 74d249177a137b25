#!/usr/bin/env bash
# Streaming end to end: the Go test client (tests/integration/stream/client,
# spdystream + gorilla websocket) against a real quarkd with a real busybox
# pod in KVM: exec (SPDY and WebSocket), stdin, exit codes, attach with
# StdinOnce, port-forward to busybox httpd in the pod (over SPDY and through
# `quark port-forward`), bad input; then the daemon and the pod's main
# container must still be fine.
sdir=$(cd "$(dirname "$0")" && pwd)
. "$sdir/../pods/lib.sh"
e2e_need_node
need_root
need_sandbox
command -v go >/dev/null || e2e_skip "golang-go is not installed (deploy/deps.sh test)"
gopath=/usr/share/gocode
for p in github.com/moby/spdystream github.com/gorilla/websocket; do
  [ -d "$gopath/src/$p" ] || e2e_skip "$gopath/src/$p missing (golang-github-docker-spdystream-dev, golang-github-gorilla-websocket-dev)"
done
client_src=$sdir/../../integration/stream/client
work=${STREAM_E2E_WORK:?}
mkdir -p "$work/gocache"
client=$work/stream-client
if [ ! -x "$client" ] || [ -n "$(find "$client_src" -name '*.go' -newer "$client")" ]; then
  (cd "$client_src" && GO111MODULE=off GOPATH=$gopath GOCACHE=$work/gocache GOFLAGS= go build -o "$client" .) ||
    e2e_fail "building the Go client"
fi

pods_setup
start_quarkd
need_busybox
ids=$(node "$sdir/setup.js") || e2e_fail "pod setup"
read -r pod main att web ttyc <<<"$ids"
echo "ok   pod ${pod:0:12} with exec, attach and httpd containers"

tty_flag=
[ "${STREAM_E2E_TTY:-0}" = 1 ] && tty_flag=-tty
"$client" -quark "$QUARK" -pod "$pod" -cid "$main" -attach-cid "$att" -tty-cid "$ttyc" -web-port 8080 $tty_flag ${STREAM_E2E_RUN:+-run "$STREAM_E2E_RUN"} ||
  { echo "---- quarkd log (last 40 lines)"; tail -n 40 "$T/quarkd.log"; for f in $(find "$T" -name "*.log" -path "*pods*" 2>/dev/null); do echo "---- $f"; tail -n 20 "$f"; done; e2e_fail "streaming scenarios"; }

# The CLI's own WebSocket client.
[ "$(printf 'one\ntwo\n' | "$QUARK" exec -i "$main" -- sh -c 'read a; read b; echo $b$a')" = twoone ] ||
  e2e_fail "quark exec -i: stdin does not reach the command"
rc=0; "$QUARK" exec -i "$main" -- sh -c 'echo err >&2; exit 5' </dev/null 2>"$T/cli.err" || rc=$?
[ $rc = 5 ] && grep -q err "$T/cli.err" || e2e_fail "quark exec -i: exit code $rc, stderr '$(cat "$T/cli.err")'"
echo "ok   quark exec -i (stdin, stderr, exit code)"
# quark exec -it from a real terminal (script(1) gives it a pty): raw mode
# locally, the guest terminal does echo and editing; exit code through.
if [ "${STREAM_E2E_TTY:-0}" = 1 ] && command -v script >/dev/null; then
  rc=0
  # The first line is read before stty runs: the window size, sent ahead of
  # stdin, has arrived by then.
  printf 'x\necho $((6*7))\nexit 3\n' |
    timeout 60 script -qefc "stty cols 91 rows 31; $QUARK exec -it $main -- sh -c 'read x; stty size; exec sh'" /dev/null >"$T/it.out" 2>&1 || rc=$?
  [ $rc = 3 ] && grep -q '^42' "$T/it.out" && grep -q '^31 91' "$T/it.out" ||
    { cat -A "$T/it.out"; e2e_fail "quark exec -it: exit $rc"; }
  echo "ok   quark exec -it from a terminal (window size, echo, exit code)"
fi

kill -0 "$QPID" || e2e_fail "quarkd died"
[ "$("$QUARK" exec "$main" -- echo alive)" = alive ] || e2e_fail "the main container does not answer ExecSync any more"
"$QUARK" ps | grep -q "^${main:0:12}.*Running" || e2e_fail "main container not running: $("$QUARK" ps -a)"
echo "ok   quarkd up and the main container unharmed"
node "$sdir/teardown.js" "$pod" || e2e_fail "stopping the pod"
! pgrep -f "$T/run/pods" >/dev/null || e2e_fail "sandbox processes left: $(pgrep -af "$T/run/pods")"
! grep -q " $T/" /proc/mounts || e2e_fail "mounts left: $(grep " $T/" /proc/mounts)"
echo "ok   the pod stops and leaves nothing behind"
stop_quarkd
echo PASS
