#!/usr/bin/env bash
# Per-request counts of the pod benchmark's servers in a Quark sandbox (not a
# ctest test): redis SET (-c 50 and -c 1), nginx (wrk -c10) and the TCP
# connect-rate server, each under `quark-sandbox run --stats` for a fixed
# time, minus an idle run of the same server. Prints QCalls, VM exits, QCall
# waits (port/MMIO exits), emulated ring-0 instructions and sandbox CPU time
# per request: counts, unlike rates, hardly move with the host's load.
#
# Usage (root): tests/bench/podnet/counts.sh BUILD_DIR [ENV=VALUE...]
#   BUILD_DIR   a build tree with sandbox/quark-sandbox and guestkernel/qkernel.bin
#   ENV=VALUE   passed to the sandbox, e.g. QUARK_QCALL_INLINE=0 to compare
# Env: BENCH_DIR (/tmp/quark-podnet-counts), SECS (8: each server's life),
#      REDIS_N (5000), REDIS_N1 (1500), CONN_N (1000), WRK_S (4), BASE_PORT (27500)
# Needs: redis-server redis-tools nginx wrk curl gcc (deploy/deps.sh test).
set -uo pipefail

die() { echo "counts: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"
[ $# -ge 1 ] || die "usage: counts.sh BUILD_DIR [ENV=VALUE...]"
build=$(cd "$1" && pwd) || die "no build dir $1"
shift
sbx=$build/sandbox/quark-sandbox
kernel=$build/guestkernel/qkernel.bin
[ -x "$sbx" ] && [ -f "$kernel" ] || die "no quark-sandbox/qkernel.bin in $build"
for t in redis-server redis-benchmark redis-cli nginx wrk curl gcc; do
  command -v $t >/dev/null || die "$t missing (deploy/deps.sh test)"
done
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/../lib.sh"
W=${BENCH_DIR:-/tmp/quark-podnet-counts}
SECS=${SECS:-8}
REDIS_N=${REDIS_N:-5000}
REDIS_N1=${REDIS_N1:-1500}
CONN_N=${CONN_N:-1000}
WRK_S=${WRK_S:-4}
port=${BASE_PORT:-27500}
mkdir -p "$W"
W=$(cd "$W" && pwd)

# ---- the root filesystem: the servers, t_net and a program that stops one ----
R=$W/rootfs
bench_server_root "$R"
bench_copy_bin "$R" "$(readlink -f "$(command -v redis-server)")" /usr/sbin/nginx
ln -sf "$(readlink -f "$(command -v redis-server)")" "$R/bin/redis-server"
head -c 612 /dev/zero | tr '\0' 'q' >"$R/www/index.html"
gcc -static -O2 -o "$R/bin/t_net" "$src/tests/integration/guestnet/progs/t_net.c" || die "cannot build t_net"
# runfor SECS PROG ARGS...: runs PROG, SIGTERM after SECS, exits (so the
# sandbox exits and writes its --stats file)
cat >"$W/runfor.c" <<'C'
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv)
{
  if (argc < 3)
    return 2;
  pid_t p = fork();
  if (p == 0) {
    execv(argv[2], argv + 2);
    _exit(127);
  }
  sleep((unsigned)atoi(argv[1]));
  kill(p, SIGTERM);
  int st;
  waitpid(p, &st, 0);
  return 0;
}
C
gcc -static -O2 -o "$R/bin/runfor" "$W/runfor.c" || die "cannot build runfor"

# one TAG PORT LOAD-CMD -- SERVER ARGV...: the server in a sandbox for SECS
# with --stats; LOAD-CMD (run once the port answers) prints the request
# count. Leaves $W/TAG.stats, $W/TAG.cpu (user+sys seconds), $W/TAG.n.
one() {
  local tag=$1 p=$2 load=$3
  shift 4
  /usr/bin/time -o "$W/$tag.cpu" -f "%U %S" env "${ENVS[@]}" "$sbx" run --rootfs "$R" --kernel "$kernel" \
    --memory 512 --stats "$W/$tag.stats" -- /bin/runfor "$SECS" "$@" >"$W/$tag.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break
    sleep 0.1
  done
  if [ "$load" = idle ]; then echo 0 >"$W/$tag.n"; else eval "$load" >"$W/$tag.n" 2>/dev/null; fi
  wait $pid
}
stat_of() { awk -v k="$2" '$1 == k { print $2 }' "$W/$1.stats"; }
report() { # NAME TAG IDLE-TAG
  local n
  n=$(cat "$W/$2.n")
  [ -n "$n" ] && [ "$n" -gt 0 ] 2>/dev/null || { printf '%-22s no requests counted (see %s)\n' "$1" "$W/$2.log"; return; }
  awk -v name="$1" -v n="$n" -v q="$(stat_of "$2" qcalls)" -v q0="$(stat_of "$3" qcalls)" \
    -v e="$(stat_of "$2" kvm_exits)" -v e0="$(stat_of "$3" kvm_exits)" \
    -v w="$(($(stat_of "$2" vmm_exits_io) + $(stat_of "$2" vmm_exits_mmio)))" \
    -v w0="$(($(stat_of "$3" vmm_exits_io) + $(stat_of "$3" vmm_exits_mmio)))" \
    -v i="$(stat_of "$2" kvm_insn_emulation)" -v i0="$(stat_of "$3" kvm_insn_emulation)" \
    -v c="$(awk '{ print $1 + $2 }' "$W/$2.cpu")" -v c0="$(awk '{ print $1 + $2 }' "$W/$3.cpu")" \
    'BEGIN { printf "%-22s %7d %8.2f %8.1f %8.2f %8.0f %9.0f\n", name, n, (q - q0) / n, (e - e0) / n,
             (w - w0) / n, (i - i0) / n, (c - c0) * 1e6 / n }'
  # QCalls per request by opcode (number and name from
  # guestkernel/abi/qk_qcall.h), those over 0.02
  join -a1 -e 0 -o 0,1.2,2.2 <(grep '^qcall_op_' "$W/$2.stats" | sort) <(grep '^qcall_op_' "$W/$3.stats" | sort) |
    awk -v n="$n" 'FILENAME != "-" { name[$1] = $2; next }
      { v = ($2 - $3) / n; op = substr($1, 10)
        if (v > 0.02) s = s sprintf(" %s(%s):%.2f", (op in name) ? name[op] : "op", op, v) }
      END { print "  QCalls by opcode:" s }' \
      <(sed -n 's/^ *QK_OP_\([A-Z0-9_]*\) = \([0-9]*\),.*/\2 \1/p' "$src/guestkernel/abi/qk_qcall.h") -
}

ENVS=("$@")
[ ${#ENVS[@]} -gt 0 ] || ENVS=(QUARK_COUNTS=1) # env needs one argument
RARGS=(--bind 127.0.0.1 --protected-mode no --save '' --appendonly no --daemonize no --io-threads 1 --loglevel warning)

port=$((port + 1))
one redis-idle $port idle -- /bin/redis-server --port $port "${RARGS[@]}"
port=$((port + 1))
one redis-c50 $port "redis-benchmark -p $port -q -n $REDIS_N -c 50 -t set >/dev/null && echo $REDIS_N" -- \
  /bin/redis-server --port $port "${RARGS[@]}"
port=$((port + 1))
one redis-c1 $port "redis-benchmark -p $port -q -n $REDIS_N1 -c 1 -t set >/dev/null && echo $REDIS_N1" -- \
  /bin/redis-server --port $port "${RARGS[@]}"
for n in idle wrk; do
  port=$((port + 1))
  cat >"$R/etc/nginx-$port.conf" <<CONF
daemon off; master_process off; worker_processes 1; error_log stderr warn; pid /tmp/nginx-$port.pid;
events { worker_connections 1024; }
http { access_log off; sendfile on; keepalive_requests 100000;
  client_body_temp_path /tmp; proxy_temp_path /tmp; fastcgi_temp_path /tmp; uwsgi_temp_path /tmp; scgi_temp_path /tmp;
  server { listen 127.0.0.1:$port; root /www; } }
CONF
  if [ $n = idle ]; then
    one nginx-idle $port idle -- /usr/sbin/nginx -p / -c /etc/nginx-$port.conf
  else
    one nginx-wrk $port "wrk -t1 -c10 -d${WRK_S}s http://127.0.0.1:$port/ | awk '/requests in/ { print \$1 }'" -- \
      /usr/sbin/nginx -p / -c /etc/nginx-$port.conf
  fi
done
port=$((port + 1))
one conn-idle $port idle -- /bin/t_net conn-server $port
port=$((port + 1))
one conn $port "timeout $((SECS - 2)) $R/bin/t_net conn-client $port $CONN_N >/dev/null && echo $CONN_N" -- \
  /bin/t_net conn-server $port

echo "per request, minus an idle run of the same server (load average $(cut -d' ' -f1-3 /proc/loadavg); env: ${ENVS[*]})"
printf '%-22s %7s %8s %8s %8s %8s %9s\n' test requests QCalls exits waits emul.ins cpu_us
report "redis SET c=50" redis-c50 redis-idle
report "redis SET c=1" redis-c1 redis-idle
report "nginx wrk -c10" nginx-wrk nginx-idle
report "TCP connection" conn conn-idle
echo "(waits: QCall waits in the VMM, port or MMIO exits; emul.ins: emulated ring-0 instructions;"
echo " cpu_us: user+system time of the whole sandbox process)"
