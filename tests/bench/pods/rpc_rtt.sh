#!/usr/bin/env bash
# Per-RPC round trip (not a ctest test): N sequential Version and Status calls
# through @grpc/grpc-js (rpc_rtt.js) against one or more private quarkd
# binaries (A/B of two builds in the same minutes) and, with CONTAINERD=1, a
# private containerd 1.6 CRI (the floor of the node client and of a Go gRPC
# server on this host). Prints p50/p95 per endpoint and the load average.
# With PERF=1 (needs perf), also quarkd's own share of each call for the
# first binary: from the recvmsg that read the request to the sendmsg of the
# response (syscall tracepoints, no ptrace stops), p50/p95.
#
# Usage (root): tests/bench/pods/rpc_rtt.sh QUARKD [QUARKD_B ...]
# Env: N (300), CONTAINERD (0), PERF (0), NODE_PATH (as pods_bench.sh).
set -euo pipefail
die() { echo "rpc_rtt: $*" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../.." && pwd)
[ $# -ge 1 ] || die "usage: rpc_rtt.sh QUARKD [QUARKD_B ...]"
if [ -z "${NODE_PATH:-}" ]; then
  for d in "$src/build-test/npm/node_modules" "$(dirname "$(dirname "$1")")/npm/node_modules"; do
    [ -d "$d/@grpc/grpc-js" ] && { NODE_PATH=$d; break; }
  done
fi
[ -n "${NODE_PATH:-}" ] || die "set NODE_PATH to a node_modules with @grpc/grpc-js and @grpc/proto-loader"
export NODE_PATH

T=$(mktemp -d /tmp/quark-rpcrtt.XXXXXX)
pids=()
cleanup() {
  local rc=$? p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$T"
  exit $rc
}
trap cleanup EXIT
wait_sock() { for _ in $(seq 300); do [ -S "$1" ] && return 0; sleep 0.05; done; die "no socket $1"; }

eps=()
i=0
for q in "$@"; do
  i=$((i + 1))
  d=$T/q$i
  mkdir -p "$d/cni"
  cat >"$d/config.json" <<JSON
{"Socket":"unix://$d/quark.sock","StateRoot":"$d/state","ImageRoot":"$d/images",
 "LogFile":"$d/quark.log","DebugLevel":"Warn","Cni":{"ConfDir":"$d/cni"}}
JSON
  "$q" --config "$d/config.json" --foreground >"$d/out" 2>&1 &
  pids+=($!)
  wait_sock "$d/quark.sock"
  eps+=("quark$i=unix://$d/quark.sock")
done
if [ "${CONTAINERD:-0}" = 1 ]; then
  command -v containerd >/dev/null || die "containerd missing (deploy/deps.sh test)"
  C=$T/c
  mkdir -p "$C/cni"
  cat >"$C/config.toml" <<TOML
version = 2
root = "$C/root"
state = "$C/state"
[grpc]
  address = "$C/containerd.sock"
[ttrpc]
  address = "$C/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "$C/cni"
  conf_dir = "$C/cni"
TOML
  containerd --config "$C/config.toml" >"$C/out" 2>&1 &
  pids+=($!)
  wait_sock "$C/containerd.sock"
  eps+=("containerd=unix://$C/containerd.sock")
fi
echo "== rpc_rtt $(date -u +%FT%TZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for k in $(seq ${#@}); do echo "   quark$k: ${!k}"; done
if [ "${PERF:-0}" = 1 ]; then
  command -v perf >/dev/null || die "PERF=1 needs perf"
  perf trace -e syscalls:sys_exit_recvmsg,syscalls:sys_enter_sendmsg -p "${pids[0]}" -o "$T/perf.txt" 2>/dev/null &
  perfpid=$!
  sleep 1
fi
node "$here/rpc_rtt.js" "$src/cri/proto/api.proto" "${N:-300}" "${eps[@]}"
if [ "${PERF:-0}" = 1 ]; then
  kill -INT "$perfpid"; wait "$perfpid" 2>/dev/null || true
  # Each request (one read of HEADERS+DATA, >= 40 bytes) to the next send.
  python3 - "$T/perf.txt" <<'PY'
import re, sys
last, res = None, []
for l in open(sys.argv[1]):
    m = re.match(r"\s*([\d.]+) .*?(sys_exit_recvmsg|sys_enter_sendmsg)\((.*)\)", l)
    if not m:
        continue
    t, op = float(m.group(1)), m.group(2)
    if op == "sys_exit_recvmsg":
        r = re.search(r"ret: (-?\w+)", m.group(3))
        if r and int(r.group(1), 0) >= 40:
            last = t
    elif last is not None:
        res.append(t - last)
        last = None
r = sorted(res[20:])
if r:
    print(f"quark1 in quarkd (recvmsg of the request -> sendmsg of the response): n {len(r)}  "
          f"p50 {r[len(r) // 2]:.3f} ms  p95 {r[int(len(r) * 0.95)]:.3f} ms")
PY
fi
echo "   load after: $(cut -d' ' -f1-3 /proc/loadavg)"
