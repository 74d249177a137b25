#!/usr/bin/env bash
# The config.json that the chart renders: with default values it is exactly
# deploy/config.json (the defaults quarkd documents); non-default values land
# under the right keys. `config.sh quarkd` also feeds both to quarkd's own
# parser (quarkd --check-config), and a broken one must be refused.
# shellcheck source=tests/integration/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
need_k8s_tools
command -v jq >/dev/null || skip "jq is not installed (deploy/deps.sh test)"

"$helm" template quark "$chart" >"$tmp/default.yaml"
"$helm" template quark "$chart" -f "$here/values-custom.yaml" >"$tmp/custom.yaml"
config_of "$tmp/default.yaml" >"$tmp/default.json"
config_of "$tmp/custom.yaml" >"$tmp/custom.json"

if [ "${1:-render}" = render ]; then
  step "default values render deploy/config.json"
  diff <(jq -S . "$deploy/config.json") <(jq -S . "$tmp/default.json") ||
    fail "chart defaults and deploy/config.json differ"
  step "non-default values"
  check() {
    local got
    got=$(jq -c "$1" "$tmp/custom.json")
    [ "$got" = "$2" ] || fail "$1 is $got, expected $2"
    echo "$1 = $got"
  }
  check .DebugLevel '"Debug"'
  check .CgroupDriver '"systemd"'
  check .StreamPort 10010
  check '.Registry.Mirrors["docker.io"]' '["http://127.0.0.1:5000","https://mirror.example.com"]'
  check .Registry.Insecure '["127.0.0.1:5000"]'
  check .Sandbox.MemoryMiB 512
  check .Cni.BinDirs '["/opt/cni/bin"]'
  # tsor.enabled switches the config on as well.
  check .Tsor.Enabled true
  step "every key of deploy/config.json is a value of the chart"
  keys() { jq -r '[paths(scalars, arrays, objects)] | map(select(length <= 2) | join(".")) | .[]' "$1" | sort -u; }
  diff <(keys "$deploy/config.json") <(keys "$tmp/default.json") || fail "keys differ"
  echo "config: ok"
  exit 0
fi

step "quarkd --check-config"
quarkd=""
[ -d "$build_dir" ] &&
  quarkd=$(find "$build_dir" -maxdepth 3 -type f -name quarkd ! -path '*/CMakeFiles/*' 2>/dev/null | head -n 1)
[ -n "$quarkd" ] || skip "quarkd is not built in $build_dir yet"
grep -q -e '--check-config' "$quarkd" || skip "$quarkd has no --check-config yet"
for f in "$deploy/config.json" "$tmp/default.json" "$tmp/custom.json"; do
  "$quarkd" --check-config "$f" || fail "quarkd --check-config refused $f"
  echo "accepted: $f"
done
jq '.Sandbox.MemoryMiB = "lots"' "$tmp/default.json" >"$tmp/bad.json"
if "$quarkd" --check-config "$tmp/bad.json" >"$tmp/out" 2>&1; then
  fail "quarkd --check-config accepted Sandbox.MemoryMiB = \"lots\""
fi
grep -q 'MemoryMiB' "$tmp/out" || { cat "$tmp/out"; fail "the error does not name the key"; }
echo "refused as expected: $(head -n 1 "$tmp/out")"
echo "config-quarkd: ok"
