#!/usr/bin/env bash
# Event and timer syscalls in the guest.
# Usage: guest_events_test.sh MODE SANDBOX KERNEL PROGDIR
#   progs: t_events (glibc, musl) in the kernel-worker mode and with
#          --no-kernel-worker (the ring-0 path), with its TCP part ("net").
#   redis: redis-server from this host in the guest (epoll event loop over
#          host sockets); redis-cli from the host: PING, SET/GET, INCR, a
#          pipeline; a short redis-benchmark printed for the log.
# Both run in a network namespace created here (only its loopback is used).
set -uo pipefail
mode=$1 sbx=$2 kernel=$3 progs=$4

# shellcheck source=tests/integration/guest/lib.sh
. "$(dirname "$0")/../guest/lib.sh"
guest_setup guestev "$sbx"
spid=
guest_on_exit() { if [ -n "$spid" ]; then kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null; fi; }
guest_netns qgev

root=$work/rootfs
mkdir -p "$root"/{bin,tmp,dev,proc,etc}
chmod 1777 "$root/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"

case "$mode" in
progs)
  cp "$progs"/t_events.* "$root/bin/" || { echo "FAIL: test programs not built"; exit 1; }
  for v in glibc musl; do
    [ -e "$root/bin/t_events.$v" ] || { echo "note: no $v build"; continue; }
    for m in "" --no-kernel-worker; do
      start=$(date +%s.%N)
      out=$(nsx timeout 120 "$sbx" run --rootfs "$root" --kernel "$kernel" $m -- /bin/t_events.$v net 2>"$work/err")
      rc=$?
      end=$(date +%s.%N)
      echo "$out" | grep -v '^ok' | head -40
      name="t_events.$v${m:+ $m}"
      if [ $rc != 0 ] || ! echo "$out" | grep -qE '^t_events: [0-9]+ checks, 0 failures$'; then
        fail "$name: exit $rc (stderr: $(grep -v 'unimplemented syscall' "$work/err" | head -c 800))"
      else
        echo "ok: $name ($(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }') s)"
      fi
    done
  done
  ;;
redis)
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
    { echo "skip: redis-server/redis-cli are not installed"; exit 77; }
  # Dynamically linked: the binary and its libraries from this host.
  srv=$(readlink -f "$(command -v redis-server)")
  cp "$srv" "$root/bin/redis-server"
  for l in $(ldd "$srv" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$l")"
    cp -L "$l" "$root$l"
  done
  port=6390
  nsx timeout 120 "$sbx" run --rootfs "$root" --kernel "$kernel" ${SBX_ARGS:-} -- /bin/redis-server \
    --port $port --bind 127.0.0.1 --save '' --appendonly no --dir /tmp >"$work/redis.out" 2>&1 &
  spid=$!
  up=
  for _ in $(seq 1 100); do
    if [ "$(nsx redis-cli -p $port ping 2>/dev/null)" = PONG ]; then
      up=1
      break
    fi
    sleep 0.2
  done
  if [ -z "$up" ]; then
    fail "redis-server did not answer PING (log: $(tail -c 1200 "$work/redis.out"))"
  else
    echo "ok: PING"
    cli() { nsx timeout 20 redis-cli -p $port "$@" 2>&1; }
    [ "$(cli set greeting 'hello quark')" = OK ] && [ "$(cli get greeting)" = "hello quark" ] &&
      echo "ok: SET/GET" || fail "SET/GET: $(cli get greeting)"
    cli del n >/dev/null
    for _ in 1 2 3 4 5; do cli incr n >/dev/null; done
    [ "$(cli get n)" = 5 ] && echo "ok: INCR" || fail "INCR: $(cli get n)"
    # A pipeline of 1,000 commands over one connection, and 20 clients at once.
    got=$(seq 1 1000 | awk '{ printf "SET k%d v%d\r\n", $1, $1 }' | nsx timeout 60 redis-cli -p $port --pipe 2>&1 | tail -1)
    echo "$got" | grep -q "errors: 0, replies: 1000" && echo "ok: pipeline ($got)" || fail "pipeline: $got"
    [ "$(cli get k777)" = v777 ] && echo "ok: pipelined value" || fail "k777: $(cli get k777)"
    pids=()
    for i in $(seq 1 20); do
      (r=$(nsx timeout 60 redis-cli -p $port incr par); [ -n "$r" ]) &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || fail "parallel client $p"; done
    [ "$(cli get par)" = 20 ] && echo "ok: 20 parallel clients" || fail "parallel: $(cli get par)"
    if command -v redis-benchmark >/dev/null; then
      for c in 1 50; do
        r=$(nsx timeout 60 redis-benchmark -p $port -n 2000 -c $c -t set,get -q 2>&1 | tr '\r' '\n' | grep -E '^(SET|GET): [0-9.]+ requests' | tr '\n' ' ')
        echo "bench (this shared host, -n 2000): c=$c $r"
      done
    fi
    cli shutdown nosave >/dev/null
  fi
  for _ in $(seq 1 50); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$spid" 2>/dev/null; then
    fail "redis-server did not exit after SHUTDOWN"
  else
    wait "$spid"
    rc=$?
    spid=
    [ $rc = 0 ] && echo "ok: redis-server exited 0" || fail "redis-server exit $rc ($(tail -c 600 "$work/redis.out"))"
  fi
  ;;
*)
  echo "FAIL: unknown mode $mode"
  exit 1
  ;;
esac

guest_done "guest_events $mode"
