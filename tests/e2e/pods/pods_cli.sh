#!/usr/bin/env bash
# The quark CLI over real pods: `quark run` prints the container's output
# and exits with its code, `quark logs [-f]` reads the CRI log file, `quark
# exec` runs a command with its exit code, and run leaves no pod behind.
. "$(dirname "$0")/lib.sh"
need_root
need_sandbox
pods_setup
start_quarkd
need_busybox

out=$("$QUARK" run --log-dir "$T/logs/run1" busybox -- echo hello from quark) || e2e_fail "quark run exited $?: $out"
[ "$out" = "hello from quark" ] || e2e_fail "quark run printed '$out'"
echo "ok   quark run prints the container's output"
out=$("$QUARK" run --log-dir "$T/logs/run1" busybox -- echo second run) || e2e_fail "quark run exited $?: $out"
[ "$out" = "second run" ] || e2e_fail "a second quark run into the same --log-dir printed '$out'"
echo "ok   a second run into the same --log-dir prints only its own output"
rc=0; "$QUARK" run --log-dir "$T/logs/run2" busybox -- sh -c 'echo to-stderr >&2; exit 3' 2>"$T/err" || rc=$?
[ $rc = 3 ] || e2e_fail "quark run exit code $rc, want 3"
grep -q to-stderr "$T/err" || e2e_fail "stderr not on stderr: $(cat "$T/err")"
echo "ok   exit code and stderr propagate"
[ "$("$QUARK" --json pods | jq length)" = 0 ] || e2e_fail "quark run left pods: $("$QUARK" pods)"
echo "ok   quark run removes its pod"

"$QUARK" run --keep --name kept --log-dir "$T/logs/kept" busybox -- sh -c 'echo one; while [ ! -e /tmp/stop ]; do sleep 0.2; done' >"$T/kept.out" 2>"$T/kept.err" &
runpid=$!
for _ in $(seq 100); do grep -q one "$T/kept.out" 2>/dev/null && break; sleep 0.2; done
cid=$("$QUARK" --json ps | jq -r '.[0].id // .[0].Id // empty')
[ -n "$cid" ] || e2e_fail "no running container listed: $("$QUARK" ps)"
[ "$("$QUARK" logs "$cid")" = one ] || e2e_fail "quark logs: $("$QUARK" logs "$cid")"
"$QUARK" logs -t "$cid" | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[^ ]+ one$' || e2e_fail "quark logs -t"
echo "ok   quark logs (with -t)"
[ "$("$QUARK" exec "$cid" -- echo inside)" = inside ] || e2e_fail "quark exec output"
rc=0; "$QUARK" exec "$cid" -- sh -c 'exit 4' || rc=$?
[ $rc = 4 ] || e2e_fail "quark exec exit code $rc, want 4"
rc=0; "$QUARK" --timeout 1 exec "$cid" -- sleep 20 || rc=$?
[ $rc = 124 ] || e2e_fail "quark exec with --timeout 1 exited $rc, want 124"
echo "ok   quark exec (output, exit code, timeout)"
timeout 20 "$QUARK" logs -f "$cid" >"$T/follow.out" &
fpid=$!
sleep 1
# The container ends itself: a signal from inside its pid namespace to its
# init is ignored (no handler), as on Linux.
"$QUARK" exec "$cid" -- sh -c ": >/tmp/stop" >/dev/null 2>&1 || true
wait $fpid || e2e_fail "quark logs -f did not end when the container exited"
wait $runpid || true
echo "ok   quark logs -f ends with the container"
stop_quarkd
echo PASS
