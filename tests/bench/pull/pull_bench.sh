#!/usr/bin/env bash
# Pull benchmark: a ~110 MB, 4-layer image (tests/images "big", Debian
# files) from a local docker-registry into an empty store, through CRI
# PullImage, for quarkd and for containerd 1.6 (Debian package, its own root
# and private socket, overlayfs snapshotter), alternating, fresh daemon and
# empty root for every pull. Prints each time, the medians and the ratio.
# Usage: tests/bench/pull/pull_bench.sh [RUNS]   (default 5; run as root)
# Env: QUARKD (default: builds build-bench/ in Release), NODE_PATH (an
# node_modules with @grpc/grpc-js, default build-test/npm/node_modules),
# BENCH_IMAGES (image cache, default build-bench/test-images).
set -euo pipefail
runs=${1:-5}
src=$(cd "$(dirname "$0")/../../.." && pwd)
here=$src/tests/bench/pull
[ "$(id -u)" -eq 0 ] || { echo "pull_bench: run as root" >&2; exit 1; }
for t in containerd docker-registry skopeo node; do
  command -v $t >/dev/null || { echo "pull_bench: $t missing (deploy/deps.sh test)" >&2; exit 1; }
done
if [ -z "${QUARKD:-}" ]; then
  cmake -S "$src" -B "$src/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$src/build-bench" --target quarkd -j"$(nproc)" >/dev/null
  QUARKD=$src/build-bench/cri/quarkd
fi
export NODE_PATH=${NODE_PATH:-$src/build-test/npm/node_modules}
[ -d "$NODE_PATH/@grpc/grpc-js" ] || { echo "pull_bench: no @grpc/grpc-js in $NODE_PATH (tests/run.sh installs it)" >&2; exit 1; }
images=${BENCH_IMAGES:-$src/build-bench/test-images}
"$src/tests/images/build.sh" "$images" big
proto=$src/cri/proto/api.proto

T=$(mktemp -d /var/tmp/quark-pullbench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  awk -v t="$T/" 'index($2, t) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l
  rm -rf "$T"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/reg"
cat > "$T/reg/config.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $T/reg/data}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$T/reg/config.yml" > "$T/reg/log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && break; sleep 0.05; done
skopeo copy -q --dest-tls-verify=false "oci:$images/big:latest" "docker://127.0.0.1:$port/library/big:latest"
size=$(skopeo inspect --tls-verify=false --raw "docker://127.0.0.1:$port/library/big:latest" |
  python3 -c 'import json,sys; m=json.load(sys.stdin); print(len(m["layers"]), sum(l["size"] for l in m["layers"]))')
echo "image: docker.io/library/big:latest via mirror http://127.0.0.1:$port ($(echo $size | cut -d' ' -f1) layers, $(( $(echo $size | cut -d' ' -f2) / 1000000 )) MB compressed)"

wait_sock() { for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; return 1; }

quark_pull() {
  local d=$T/q$1
  mkdir -p "$d"
  cat > "$d/config.json" <<JSON
{"Socket":"unix://$d/quark.sock","StateRoot":"$d/state","ImageRoot":"$d/images",
 "LogFile":"$d/quark.log","DebugLevel":"Warn","Cni":{"ConfDir":"$d/cni"},
 "Registry":{"Mirrors":{"docker.io":["http://127.0.0.1:$port"]},"Insecure":["127.0.0.1:$port"]}}
JSON
  "$QUARKD" --config "$d/config.json" --foreground > "$d/out" 2>&1 &
  local pid=$!
  pids+=($pid)
  wait_sock "$d/quark.sock"
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  node "$here/pull_once.js" "unix://$d/quark.sock" big "$proto" | cut -d' ' -f1
  kill -TERM $pid; wait $pid 2>/dev/null || true
  rm -rf "$d"
}

ctd_pull() {
  local d=$T/c$1
  mkdir -p "$d/cni" "$d/certs.d"
  cat > "$d/config.toml" <<TOML
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$d/cni"
    conf_dir = "$d/cni"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
    endpoint = ["http://127.0.0.1:$port"]
TOML
  containerd --config "$d/config.toml" > "$d/out" 2>&1 &
  local pid=$!
  pids+=($pid)
  wait_sock "$d/containerd.sock"
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  node "$here/pull_once.js" "unix://$d/containerd.sock" big "$proto" | cut -d' ' -f1
  kill -TERM $pid; wait $pid 2>/dev/null || true
  awk -v t="$d/" 'index($2, t) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l
  rm -rf "$d"
}

qs=(); cs=()
for i in $(seq "$runs"); do
  q=$(quark_pull "$i"); c=$(ctd_pull "$i")
  echo "run $i: quark ${q} ms, containerd ${c} ms"
  qs+=("$q"); cs+=("$c")
done
python3 - "${qs[*]}" "${cs[*]}" <<'PY'
import statistics, sys
q = [float(x) for x in sys.argv[1].split()]
c = [float(x) for x in sys.argv[2].split()]
mq, mc = statistics.median(q), statistics.median(c)
print(f"median: quark {mq:.0f} ms, containerd {mc:.0f} ms; quark/containerd = {mq / mc:.2f}")
PY
