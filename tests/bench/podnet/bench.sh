#!/usr/bin/env bash
# Pod networking benchmark (not a ctest test): redis-server (redis-benchmark
# -t set,get at -c 50 and -c 1), nginx (wrk) and the TCP connect rate, with
# the server natively, under runc, under runsc (--platform=ptrace
# --network=host) and in a Quark sandbox, all in the host's network
# namespace (a hostNetwork pod), the clients natively on 127.0.0.1. Prints
# the numbers and the ratio table (quark / runc, quark / native).
#
# Usage (root): tests/bench/podnet/bench.sh [BUILD_DIR]
#   BUILD_DIR  a build tree with sandbox/quark-sandbox and guestkernel/qkernel.bin
#              (default: a Release build made in $BENCH_DIR/build)
# Env: BENCH_DIR (/tmp/quark-podnet-bench), REDIS_N (100000, -c 50), REDIS_N1
#      (20000, -c 1), ROUNDS (3 interleaved rounds, median), WRK_S (10 s per
#      wrk run), CONN_N (2000 connections), RUNTIMES ("native runc runsc quark"),
#      BASE_PORT (27100)
# Needs: redis-server redis-tools nginx wrk runc runsc jq (deploy/deps.sh test);
# a runtime or tool that is missing is reported and left out.
set -uo pipefail

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
[ "$(id -u)" = 0 ] || die "must run as root"

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/../lib.sh"
W=${BENCH_DIR:-/tmp/quark-podnet-bench}
REDIS_N=${REDIS_N:-100000}
REDIS_N1=${REDIS_N1:-20000}
ROUNDS=${ROUNDS:-3}
WRK_S=${WRK_S:-10}
CONN_N=${CONN_N:-2000}
RUNTIMES=${RUNTIMES:-"native runc runsc quark"}
BASE_PORT=${BASE_PORT:-27100}
TAG=qpb$$
mkdir -p "$W"
W=$(cd "$W" && pwd)
if [ $# -ge 1 ]; then
  build=$1
else
  build=$W/build
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null || die "cmake failed"
  cmake --build "$build" --target quark-sandbox qkernel -j"$(nproc)" >/dev/null || die "build failed"
fi
sbx=$build/sandbox/quark-sandbox
kernel=$build/guestkernel/qkernel.bin
[ -x "$sbx" ] && [ -f "$kernel" ] || die "no quark-sandbox/qkernel.bin in $build"
for t in jq redis-server redis-benchmark redis-cli gcc; do command -v $t >/dev/null || die "$t missing (deploy/deps.sh test)"; done
HAVE_NGINX=1
for t in nginx wrk; do command -v $t >/dev/null || { log "$t missing (deploy/deps.sh test): no nginx test"; HAVE_NGINX=0; }; done
rts=()
for r in $RUNTIMES; do
  case $r in
  native | quark) rts+=("$r") ;;
  runc | runsc) command -v "$r" >/dev/null && rts+=("$r") || log "$r missing: left out" ;;
  *) die "unknown runtime $r" ;;
  esac
done

# ---- root filesystems: each server with the libraries it needs ----
R=$W/rootfs
bench_server_root "$R"
bench_copy_bin "$R" "$(readlink -f "$(command -v redis-server)")"
ln -sf "$(readlink -f "$(command -v redis-server)")" "$R/bin/redis-server" 2>/dev/null
gcc -static -O2 -o "$R/bin/t_net" "$src/tests/integration/guestnet/progs/t_net.c" || die "cannot build t_net"
if [ $HAVE_NGINX = 1 ]; then
  bench_copy_bin "$R" /usr/sbin/nginx
  head -c 612 /dev/zero | tr '\0' 'q' >"$R/www/index.html"
fi

BASE=$W/base-config.json
(cd "$W" && rm -f config.json && runc spec >/dev/null 2>&1 && mv config.json "$BASE") ||
  { [ -f "$BASE" ] || die "runc spec failed"; }
bundle() { # NAME ARGS-JSON
  local b=$W/bundles/$1
  mkdir -p "$b"
  # CAP_CHOWN: nginx (root) hands its temp paths to nobody at start; runc
  # spec's default set lacks it (only a native run before chowned /tmp)
  jq --arg root "$R" --argjson args "$2" '.process.terminal = false | .process.args = $args
    | .process.capabilities |= map_values(. + ["CAP_CHOWN"] | unique)
    | .root.path = $root | .root.readonly = false
    | .linux.namespaces |= map(select(.type != "network"))' "$BASE" >"$b/config.json"
  echo "$b"
}

# ---- servers ----
declare -A PIDS IDS
state() { echo "$W/state/$1"; }
# start RUNTIME NAME ARGV...: the server in the host netns; records how to stop it.
start() {
  local rt=$1 name=$2
  shift 2
  local logf=$W/logs/$rt-$name.log
  mkdir -p "$W/logs" "$(state "$rt")"
  case $rt in
  native)
    chroot "$R" "$@" >"$logf" 2>&1 </dev/null & # the same files as the others
    PIDS[$rt-$name]=$! ;;
  quark)
    "$sbx" run --rootfs "$R" --kernel "$kernel" --memory 512 -- "$@" >"$logf" 2>&1 </dev/null &
    PIDS[$rt-$name]=$! ;;
  runc | runsc) {
    local b id=$TAG-$name-$rt args
    args=$(printf '%s\n' "$@" | jq -R . | jq -sc .)
    b=$(bundle "$rt-$name" "$args")
    local cmd=("$rt" --root "$(state "$rt")")
    [ "$rt" = runsc ] && cmd+=(--platform=ptrace --network=host)
    "${cmd[@]}" run --detach --bundle "$b" "$id" >"$logf" 2>&1 </dev/null
    IDS[$rt-$name]=$id
  } ;;
  esac
}
stop() { # RUNTIME NAME
  local k=$1-$2
  if [ -n "${PIDS[$k]:-}" ]; then kill "${PIDS[$k]}" 2>/dev/null; wait "${PIDS[$k]}" 2>/dev/null; unset "PIDS[$k]"; fi
  if [ -n "${IDS[$k]:-}" ]; then
    local cmd=("$1" --root "$(state "$1")")
    "${cmd[@]}" kill "${IDS[$k]}" KILL >/dev/null 2>&1
    sleep 0.3
    "${cmd[@]}" delete --force "${IDS[$k]}" >/dev/null 2>&1
    unset "IDS[$k]"
  fi
}
cleanup() {
  local k
  for k in "${!PIDS[@]}" "${!IDS[@]}"; do stop "${k%%-*}" "${k#*-}"; done
  # runsc helpers (gofer, sandbox) that outlived their container: ours only
  for p in $(grep -lsa -- "$W/state/" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
    [ "$p" = $$ ] || kill -KILL "$p" 2>/dev/null
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
wait_port() { # PORT CHECK-CMD...: until it answers (30 s)
  for _ in $(seq 150); do "${@:2}" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR ? a[int((NR + 1) / 2)] : "") }'; }

declare -A RES
port=$BASE_PORT
RARGS=(--bind 127.0.0.1 --protected-mode no --save '' --appendonly no --daemonize no --io-threads 1 --loglevel warning)

# ---- redis ----
declare -A RPORT
for rt in "${rts[@]}"; do
  port=$((port + 1))
  log "redis: $rt on $port"
  start "$rt" redis /bin/redis-server --port "$port" "${RARGS[@]}"
  if wait_port "$port" redis-cli -h 127.0.0.1 -p "$port" ping; then
    RPORT[$rt]=$port
  else
    log "redis under $rt did not answer: $(tail -3 "$W/logs/$rt-redis.log" | tr '\n' ' ')"
  fi
done
for round in $(seq "$ROUNDS"); do
  for rt in "${rts[@]}"; do
    p=${RPORT[$rt]:-}
    [ -n "$p" ] || continue
    log "redis round $round: $rt"
    redis-benchmark -h 127.0.0.1 -p "$p" -q -n "$REDIS_N" -c 50 -t set,get 2>&1 | tr '\r' '\n' |
      awk -v f="$W/logs/rb-$rt-50" '/^(SET|GET):/ && /requests per second/ { print $1, $2 >> f }'
    redis-benchmark -h 127.0.0.1 -p "$p" -q -n "$REDIS_N1" -c 1 -t set,get 2>&1 | tr '\r' '\n' |
      awk -v f="$W/logs/rb-$rt-1" '/^(SET|GET):/ && /requests per second/ { print $1, $2 >> f }'
  done
done
for rt in "${rts[@]}"; do
  for c in 50 1; do
    for op in SET GET; do
      RES[redis-$op-c$c-$rt]=$(awk -v o="$op:" '$1 == o { print $2 }' "$W/logs/rb-$rt-$c" 2>/dev/null | median)
    done
  done
  stop "$rt" redis
done

# ---- nginx + wrk ----
if [ $HAVE_NGINX = 1 ]; then
  declare -A NPORT
  for rt in "${rts[@]}"; do
    port=$((port + 1))
    cat >"$R/etc/nginx-$port.conf" <<CONF
daemon off; master_process off; worker_processes 1; error_log stderr warn; pid /tmp/nginx-$port.pid;
events { worker_connections 1024; }
http { access_log off; sendfile on; keepalive_requests 100000;
  client_body_temp_path /tmp; proxy_temp_path /tmp; fastcgi_temp_path /tmp; uwsgi_temp_path /tmp; scgi_temp_path /tmp;
  server { listen 127.0.0.1:$port; root /www; } }
CONF
    log "nginx: $rt on $port"
    start "$rt" nginx /usr/sbin/nginx -p / -c "/etc/nginx-$port.conf"
    if wait_port "$port" curl -fsS "http://127.0.0.1:$port/"; then
      NPORT[$rt]=$port
    else
      log "nginx under $rt did not answer: $(tail -3 "$W/logs/$rt-nginx.log" | tr '\n' ' ')"
    fi
  done
  for round in $(seq "$ROUNDS"); do
    for rt in "${rts[@]}"; do
      p=${NPORT[$rt]:-}
      [ -n "$p" ] || continue
      log "wrk round $round: $rt"
      wrk -t1 -c10 -d"${WRK_S}s" "http://127.0.0.1:$p/" 2>&1 | awk '/Requests\/sec/ { print $2 }' >>"$W/logs/wrk-$rt"
    done
  done
  for rt in "${rts[@]}"; do
    RES[nginx-$rt]=$(cat "$W/logs/wrk-$rt" 2>/dev/null | median)
    stop "$rt" nginx
  done
fi

# ---- TCP connect rate (accept + 1 byte + close on the server side) ----
for rt in "${rts[@]}"; do
  port=$((port + 1))
  log "connect rate: $rt on $port"
  start "$rt" conn /bin/t_net conn-server "$port"
  : >"$W/logs/conn-$rt"
  for round in $(seq "$ROUNDS"); do
    timeout 120 "$R/bin/t_net" conn-client "$port" "$CONN_N" 2>/dev/null | awk '{ print $2 }' >>"$W/logs/conn-$rt"
  done
  RES[conn-$rt]=$(median <"$W/logs/conn-$rt")
  stop "$rt" conn
done

# ---- the table ----
rows=(redis-SET-c50 redis-GET-c50 redis-SET-c1 redis-GET-c1)
[ $HAVE_NGINX = 1 ] && rows+=(nginx)
rows+=(conn)
key() { case $1 in redis-*-c*) local x=${1#redis-}; echo "redis-${x%-c*}-c${x##*-c}-$2" ;; *) echo "$1-$2" ;; esac; }
echo
echo "pod networking: servers in the host netns, clients on 127.0.0.1; median of $ROUNDS rounds (higher is better)"
echo "redis-benchmark -n $REDIS_N -c 50 / -n $REDIS_N1 -c 1 -t set,get (req/s); nginx: wrk -t1 -c10 ${WRK_S}s (req/s); conn: connections/s"
printf '%-16s' test
for rt in "${rts[@]}"; do printf ' %10s' "$rt"; done
printf ' %12s %12s\n' quark/runc quark/native
for row in "${rows[@]}"; do
  printf '%-16s' "$row"
  for rt in "${rts[@]}"; do v=${RES[$(key "$row" "$rt")]:-}; printf ' %10s' "${v:-n/a}"; done
  q=${RES[$(key "$row" quark)]:-} rc=${RES[$(key "$row" runc)]:-} nt=${RES[$(key "$row" native)]:-}
  awk -v q="$q" -v r="$rc" -v n="$nt" 'function ratio(a, b) { return (a == "" || b == "" || a == "nan" || b == "nan" || b == 0) ? "n/a" : sprintf("%.2fx", a / b) }
    BEGIN { printf " %12s %12s\n", ratio(q, r), ratio(q, n) }'
done
echo "(n/a: the server did not start under that runtime; see $W/logs)"
