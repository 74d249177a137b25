#!/usr/bin/env bash
# Pod benchmark (not a ctest test), through CRI with @grpc/grpc-js
# (pods_once.js):
#  1. latency of RunPodSandbox + CreateContainer + StartContainer (busybox,
#     `sleep 3600`) and of StopPodSandbox + RemovePodSandbox, for N pods one
#     after another, against a private quarkd and a private containerd 1.6 +
#     runc (Debian packages, own root, state and socket, CRI plugin) in the
#     same run, alternating pod by pod, one warm-up pod each not counted.
#     Both use hostNetwork pods: no CNI on either side (containerd's CRI needs
#     a CNI config for pods with their own network namespace).
#  2. host memory (PSS, /proc/PID/smaps_rollup summed over the pod's
#     processes) of one idle busybox pod: quark's quark-sandbox process(es)
#     against runsc (--platform=ptrace --network=none, sandbox + gofer) running
#     `sleep 3600` on an OCI bundle of the same image; for quark also where
#     that PSS is (the guest memory mapping, other anonymous memory, files).
# Prints p50/p95 and the ratios quark/containerd and quark/runsc.
#
# Usage (root): tests/bench/pods/pods_bench.sh [BUILD_DIR]
#   BUILD_DIR  a build tree with cri/quarkd, cri/quark, sandbox/quark-sandbox
#              and guestkernel/qkernel.bin (default: a Release build made in
#              $BENCH_DIR/build from this checkout)
# Env: BENCH_DIR (/tmp/quark-pods-bench), PODS (20), NODE_PATH (a node_modules
#      with @grpc/grpc-js and @grpc/proto-loader; default: build-test/npm's,
#      BUILD_DIR/npm's, else npm-installed into $BENCH_DIR/npm), PHASES=1
#      (quarkd at Debug, and the p50 of the phases it logs per RPC: where
#      quark's start time goes, quarkd's share and the pod daemon's).
# Needs: containerd ctr runc runsc skopeo umoci jq node (deploy/deps.sh test).
set -euo pipefail

die() { echo "pods_bench: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../.." && pwd)
W=${BENCH_DIR:-/tmp/quark-pods-bench}
N=${PODS:-20}
for t in containerd ctr runc runsc skopeo umoci jq node python3; do
  command -v $t >/dev/null || die "$t missing (deploy/deps.sh test)"
done
mkdir -p "$W"

if [ $# -ge 1 ]; then
  build=$(cd "$1" && pwd)
else
  build=$W/build
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null || die "cmake failed"
  cmake --build "$build" --target quarkd quark quark-sandbox qkernel -j"$(nproc)" >/dev/null || die "build failed"
fi
QUARKD=$build/cri/quarkd QUARK=$build/cri/quark
SBX=$build/sandbox/quark-sandbox KERNEL=$build/guestkernel/qkernel.bin
for f in "$QUARKD" "$QUARK" "$SBX" "$KERNEL"; do [ -e "$f" ] || die "no $f in the build"; done

if [ -z "${NODE_PATH:-}" ]; then
  for d in "$src/build-test/npm/node_modules" "$build/npm/node_modules"; do
    [ -d "$d/@grpc/grpc-js" ] && [ -d "$d/@grpc/proto-loader" ] && { NODE_PATH=$d; break; }
  done
fi
if [ -z "${NODE_PATH:-}" ]; then
  mkdir -p "$W/npm"
  cp "$src/tests/e2e/package.json" "$W/npm/"
  [ -f "$src/tests/e2e/package-lock.json" ] && cp "$src/tests/e2e/package-lock.json" "$W/npm/"
  [ -d "$W/npm/node_modules/@grpc/grpc-js" ] ||
    (cd "$W/npm" && npm install --no-audit --no-fund --loglevel=error >/dev/null) || die "npm install failed"
  NODE_PATH=$W/npm/node_modules
fi
export NODE_PATH
proto=$src/cri/proto/api.proto

imgs=$W/test-images
"$src/tests/images/build.sh" "$imgs" busybox >/dev/null || die "tests/images/build.sh busybox failed"

# ---- everything this run starts lives under $T; the trap removes it ----
T=$(mktemp -d /var/tmp/quark-podsbench.XXXXXX)
QPID= CPID=
# The runc shim's sockets go to /run/containerd/s (fixed in containerd 1.6).
had_run_ctd=0; [ -e /run/containerd ] && had_run_ctd=1
RUNSC="runsc --root $T/runsc/root --platform=ptrace --network=none"
cleanup() {
  local rc=$?
  set +e
  if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then
    # Pods left by a failed run first, while quarkd can still remove them.
    for p in $(QUARK_CONFIG=$T/q/config.json QUARK_ENDPOINT=unix://$T/q/run/quark.sock timeout 20 "$QUARK" pods --json 2>/dev/null | jq -r '.[]?.id // empty' 2>/dev/null); do
      timeout 30 node "$here/pods_once.js" "$proto" "$T/logs" down "unix://$T/q/run/quark.sock" "$p" >/dev/null 2>&1
    done
    kill -TERM "$QPID"; for _ in $(seq 50); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$QPID" 2>/dev/null; wait "$QPID" 2>/dev/null
  fi
  if [ -n "$CPID" ] && kill -0 "$CPID" 2>/dev/null; then
    # Sandboxes and tasks left by a failed run: the shims outlive containerd.
    for id in $(ctr --address "$T/c/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$T/c/containerd.sock" -n k8s.io tasks kill -s KILL "$id" >/dev/null 2>&1
    done
    sleep 0.5
    for id in $(ctr --address "$T/c/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$T/c/containerd.sock" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1
    done
    kill -TERM "$CPID"; for _ in $(seq 50); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$CPID" 2>/dev/null; wait "$CPID" 2>/dev/null
  fi
  $RUNSC delete -force bench-idle >/dev/null 2>&1
  # Whatever still runs from $T (sandboxes, shims, runsc sandbox and gofer).
  for p in $(pgrep -f "$T/" 2>/dev/null); do [ "$p" != $$ ] && kill -KILL "$p" 2>/dev/null; done
  for p in $(pgrep -f "containerd-shim-runc-v2 -namespace k8s.io -address $T/" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  sleep 0.2
  for f in "$T"/q/state/pods/*.json; do
    [ -f "$f" ] || continue
    ns=$(jq -r '.Ext.NetnsPath // empty' "$f" 2>/dev/null)
    [ -n "$ns" ] && { umount "$ns" 2>/dev/null; rm -f "$ns"; }
  done
  awk -v t="$T/" 'index($2, t) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  if [ $rc -ne 0 ]; then
    for l in "$T/q/quarkd.out" "$T/q/quark.log" "$T/c/out"; do
      [ -s "$l" ] && { echo "---- $l (last 20 lines) ----" >&2; tail -n 20 "$l" >&2; }
    done
  fi
  rm -rf "$T"
  [ $had_run_ctd = 1 ] || rmdir /run/containerd/s /run/containerd/runc/k8s.io /run/containerd/runc /run/containerd 2>/dev/null
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_sock() { for _ in $(seq 300); do [ -S "$1" ] && return 0; sleep 0.05; done; die "no socket $1"; }

# ---- images: busybox (the pods' image) and a pause image for containerd ----
mkdir -p "$T/img" "$T/logs"
cp -a "$imgs/busybox" "$T/img/busybox"
skopeo copy -q "oci:$T/img/busybox:latest" "oci-archive:$T/img/busybox-oci.tar:latest"
skopeo copy -q "oci:$T/img/busybox:latest" "docker-archive:$T/img/busybox-docker.tar:docker.io/library/busybox:latest"
# containerd runs a pause container per pod: busybox sleeping forever.
umoci config --image "$T/img/busybox:latest" --tag pause --config.cmd sleep --config.cmd 2147483647 >/dev/null
skopeo copy -q "oci:$T/img/busybox:pause" "docker-archive:$T/img/pause-docker.tar:docker.io/library/qbench-pause:latest"

# ---- quarkd: temp state, image root and socket; no CNI config ----
mkdir -p "$T/q/cni" "$T/q/run"
cat >"$T/q/config.json" <<JSON
{"Socket":"unix://$T/q/run/quark.sock","StateRoot":"$T/q/state","ImageRoot":"$T/q/images",
 "LogFile":"$T/q/quark.log","DebugLevel":"$([ "${PHASES:-0}" = 1 ] && echo Debug || echo Warn)",
 "Sandbox":{"Binary":"$SBX","Kernel":"$KERNEL"},
 "Cni":{"ConfDir":"$T/q/cni","CacheDir":"$T/q/cni-cache"}}
JSON
"$QUARKD" --config "$T/q/config.json" --foreground >"$T/q/quarkd.out" 2>&1 &
QPID=$!
wait_sock "$T/q/run/quark.sock"
QEP=unix://$T/q/run/quark.sock
# quark import writes into the image root of the config it is given.
QUARK_CONFIG=$T/q/config.json QUARK_ENDPOINT=$QEP "$QUARK" import "$T/img/busybox-oci.tar" docker.io/library/busybox >"$T/q/import.log" 2>&1 ||
  die "quark import failed: $(cat "$T/q/import.log")"

# ---- containerd 1.6: own root, state and socket; runc; no CNI config ----
C=$T/c
mkdir -p "$C/cni"
cat >"$C/config.toml" <<TOML
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$C/containerd.sock"
[ttrpc]
  address = "$C/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  sandbox_image = "docker.io/library/qbench-pause:latest"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$C/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$C/cni"
    conf_dir = "$C/cni"
TOML
containerd --config "$C/config.toml" >"$C/out" 2>&1 &
CPID=$!
wait_sock "$C/containerd.sock"
CEP=unix://$C/containerd.sock
for a in busybox pause; do
  ctr --address "$C/containerd.sock" -n k8s.io images import "$T/img/$a-docker.tar" >/dev/null ||
    die "ctr images import $a failed"
done

echo "== pods bench ($(date -u +%FT%TZ), $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "   quark: $("$QUARKD" --version 2>/dev/null | head -1 || echo quarkd) ($build); $(containerd --version | cut -d' ' -f3) + $(runc --version | head -1)"

# ---- 1. latency ----
node "$here/pods_once.js" "$proto" "$T/logs" "$N" "quark=$QEP" "containerd=$CEP" >"$T/lat.json" ||
  die "latency run failed"
load_lat=$(cut -d' ' -f1-3 /proc/loadavg)
# quarkd's Debug phase lines of the counted pods (the first of each kind is
# the warm-up pod's), p50 in ms.
if [ "${PHASES:-0}" = 1 ]; then
  python3 - "$T/q/quarkd.out" >"$T/phases.txt" <<'PY'
import re, statistics, sys
log = open(sys.argv[1], errors="replace").read().splitlines()
rows = (("RunPodSandbox: record, cgroup, network", r"RunPodSandbox phases.*record\+network ([\d.]+)"),
        ("  pod files", r"RunPodSandbox phases.*pod files ([\d.]+)"),
        ("  pod daemon spawn", r"sandbox process \(ms\): spawned ([\d.]+)"),
        ("  its ready byte (daemon start)", r"ready byte ([\d.]+)"),
        ("  connect + hello", r"connected ([\d.]+)"),
        ("  READY record", r"RunPodSandbox phases.*store ([\d.]+)"),
        ("CreateContainer: image, checks, record", r"image\+checks\+record ([\d.]+)"),
        ("  root filesystem (overlay)", r"rootfs ([\d.]+), process"),
        ("  process spec, mounts", r"process spec\+mounts ([\d.]+)"),
        ("  container root mount helper, log", r"container root and log ([\d.]+)"),
        ("  CREATE (pod daemon, guest)", r"CREATE ([\d.]+) ms"),
        ("  CREATED record", r"created in pod.*store ([\d.]+)"),
        ("StartContainer: START (pod daemon, guest)", r"container started \(ms: START ([\d.]+)"),
        ("  RUNNING record", r"container started.*store ([\d.]+)"))
print("quarkd's phases (Debug log), p50 ms:")
for name, pat in rows:
    v = [float(m.group(1)) for l in log for m in [re.search(pat, l)] if m][1:]
    if v:
        print(f"  {name:42s} {statistics.median(v):7.1f}  (max {max(v):.1f}, n {len(v)})")
PY
fi

# ---- 2. idle pod memory ----
pss_of() { # pids... -> KiB
  local s=0 p v
  for p in "$@"; do
    v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || true)
    s=$((s + ${v:-0}))
  done
  echo $s
}
with_children() { # pids... -> those pids and all their descendants, one per line
  ps -e -o pid=,ppid= | awk -v roots="$*" 'BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1 }
    { par[$1] = $2 } END { do { ch = 0; for (p in par) if (!(p in keep) && (par[p] in keep)) { keep[p] = 1; ch = 1 } } while (ch)
      for (p in keep) print p }'
}
qpod=$(node "$here/pods_once.js" "$proto" "$T/logs" up "$QEP") || die "idle quark pod did not start"
sleep 5
mapfile -t qp < <(with_children $(pgrep -f "$T/q/run/pods/${qpod:0:32}"))
[ ${#qp[@]} -gt 0 ] || die "no quark-sandbox process for pod $qpod"
q_pss=$(pss_of "${qp[@]}")
q_rss=$(for p in "${qp[@]}"; do awk '/^Rss:/ {print $2}' "/proc/$p/smaps_rollup"; done | awk '{s+=$1} END {print s}')
qd_pss=$(pss_of "$QPID")
# Where quark's PSS is: the guest memory mapping (the largest mapping),
# other anonymous memory (heap, stacks, io_uring, KVM structures) and files.
q_where=$(for p in "${qp[@]}"; do cat "/proc/$p/smaps" 2>/dev/null; done | awk '
  /^[0-9a-f]+-[0-9a-f]+ / { if (sz) flush(); file = ($6 != "" && $6 !~ /^\[/); sz = 1; pss = 0; ahp = 0; size = 0; next }
  /^Size:/ { size = $2 } /^Pss:/ { pss = $2 } /^AnonHugePages:/ { ahp = $2 }
  function flush() { if (size >= 65536 && !file) { g += pss; gh += ahp } else if (file) f += pss; else o += pss }
  END { if (sz) flush(); printf "guest memory %.1f MiB (huge pages %.1f), other anonymous %.1f MiB, files %.1f MiB", g/1024, gh/1024, o/1024, f/1024 }')
node "$here/pods_once.js" "$proto" "$T/logs" down "$QEP" "$qpod" || die "idle quark pod did not stop"

B=$T/runsc/bundle
mkdir -p "$T/runsc/root" "$B"
umoci unpack --image "$T/img/busybox:latest" "$T/runsc/unpacked" >/dev/null
(cd "$T/runsc" && runc spec && mv config.json base.json)
jq --arg root "$T/runsc/unpacked/rootfs" '.process.terminal=false | .process.args=["sleep","3600"] | .root.path=$root' \
  "$T/runsc/base.json" >"$B/config.json"
$RUNSC run --bundle "$B" --detach bench-idle </dev/null >"$T/runsc/out" 2>&1 ||
  die "runsc run failed: $(tail -5 "$T/runsc/out")"
sleep 5
# runsc-sandbox, runsc-gofer and the sandbox's ptrace stub processes ([exe]).
mapfile -t rp < <(with_children $(pgrep -f -- "--root=$T/runsc/root"))
[ ${#rp[@]} -gt 0 ] || die "no runsc processes"
r_pss=$(pss_of "${rp[@]}")
r_what=$(for p in "${rp[@]}"; do a=$(tr '\0' ' ' <"/proc/$p/cmdline" | awk '{print $1}'); echo "${a:-stub}"; done | sort | uniq -c | awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}')
$RUNSC kill bench-idle KILL >/dev/null 2>&1 || true
$RUNSC delete -force bench-idle >/dev/null 2>&1 || true

python3 - "$T/lat.json" "$N" "$load_lat" "$q_pss" "${#qp[@]}" "$q_rss" "$qd_pss" "$r_pss" "${#rp[@]}" "$r_what" "$q_where" <<'PY'
import json, sys
lat = {}
for line in open(sys.argv[1]):
    d = json.loads(line); lat[d["name"]] = d
n, load = sys.argv[2], sys.argv[3]
q_pss, q_n, q_rss, qd_pss, r_pss, r_n, r_what, q_where = sys.argv[4:12]
def pct(v, p):
    v = sorted(v); k = (len(v) - 1) * p / 100; f = int(k); c = min(f + 1, len(v) - 1)
    return v[f] + (v[c] - v[f]) * (k - f)
q, c = lat["quark"], lat["containerd"]
print(f"\n{n} hostNetwork busybox pods each, one at a time, alternating (load after: {load})")
print(f"{'ms':34s} {'quark p50':>10s} {'p95':>8s} {'containerd p50':>15s} {'p95':>8s} {'q/c p50':>8s} {'q/c p95':>8s}")
for key, what in (("start", "Run+Create+Start (start)"), ("run", "  RunPodSandbox"), ("create", "  CreateContainer"),
                  ("startc", "  StartContainer"), ("stop", "StopPodSandbox+RemovePodSandbox")):
    a50, a95, b50, b95 = pct(q[key], 50), pct(q[key], 95), pct(c[key], 50), pct(c[key], 95)
    print(f"{what:34s} {a50:10.1f} {a95:8.1f} {b50:15.1f} {b95:8.1f} {a50/b50:8.2f} {a95/b95:8.2f}")
s = pct(q["start"], 50) / pct(c["start"], 50)
print(f"start ratio quark/containerd (p50): {s:.2f} (goal <= 0.25: {'met' if s <= 0.25 else 'NOT met'})")
qm, rm = int(q_pss) / 1024, int(r_pss) / 1024
print(f"\nidle busybox pod (sleep 3600), host PSS:")
print(f"  quark: {qm:.1f} MiB ({q_n} quark-sandbox process(es); RSS {int(q_rss)/1024:.1f} MiB; quarkd itself {int(qd_pss)/1024:.1f} MiB)")
print(f"         {q_where}")
print(f"  runsc: {rm:.1f} MiB ({r_n} processes: {r_what})")
print(f"  quark/runsc = {qm/rm:.2f}; quark goal <= 8 MiB: {'met' if qm <= 8 else 'NOT met'}")
PY
if [ -s "$T/phases.txt" ]; then echo; cat "$T/phases.txt"; fi
