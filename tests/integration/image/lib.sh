# Helpers for the image integration tests (sourced). Needs IMG_TOOL,
# IMG_TEST_IMAGES, IMG_SRC from ctest (or the caller's environment).
set -euo pipefail
: "${IMG_TOOL:?}" "${IMG_TEST_IMAGES:?}" "${IMG_SRC:?}"
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || skip "needs root (layer ownership, overlay mounts)"
for t in docker-registry skopeo umoci python3 curl; do
  command -v $t >/dev/null || skip "$t not installed (deploy/deps.sh test)"
done

T=$(mktemp -d /var/tmp/quark-imgtest.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  grep -q " $T/" /proc/mounts && awk -v t="$T/" 'index($2, t) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l
  rm -rf "$T"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_registry NAME [auth yaml lines] -> sets REG_<NAME>_PORT, REG_<NAME>_DIR, REG_<NAME>_PID
start_registry() {
  local name=$1 auth=${2:-} port dir
  port=$(free_port)
  dir=$T/reg-$name
  mkdir -p "$dir/data"
  cat > "$dir/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
$auth
YML
  docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && break
    sleep 0.05
  done
  curl -s -o /dev/null "http://127.0.0.1:$port/v2/" || fail "registry $name did not start: $(cat "$dir/log")"
  eval "REG_${name}_PORT=$port REG_${name}_DIR=$dir REG_${name}_PID=$pid"
}

# push IMAGE PORT REPO[:TAG] [skopeo args...]: an image from tests/images into a registry
push() {
  local img=$1 port=$2 repo=$3
  shift 3
  skopeo copy -q --dest-tls-verify=false "$@" "oci:$IMG_TEST_IMAGES/$img:latest" \
    "docker://127.0.0.1:$port/$repo" >/dev/null
}

build_images() { "$IMG_SRC/tests/images/build.sh" "$IMG_TEST_IMAGES" "$@" >&2; }

# tool ROOT args... : img-tool on a store
tool() { local r=$1; shift; "$IMG_TOOL" --root "$r" "$@"; }

expect_fail() {   # expect_fail PATTERN cmd...: the command must fail with PATTERN in stderr
  local pat=$1 out
  shift
  if out=$("$@" 2>&1); then fail "expected failure ($pat) but succeeded: $*"; fi
  echo "$out" | grep -q -- "$pat" || fail "expected error matching '$pat', got: $out"
  echo "  ok: fails with: $(echo "$out" | tail -1 | cut -c1-220)"
}

check_store() { tool "$1" check >/dev/null || fail "store $1 inconsistent"; }
