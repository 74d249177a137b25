#!/usr/bin/env bash
# helm lint --strict of the chart with default and non-default values; values
# that break values.schema.json must fail the lint; the chart packages.
# shellcheck source=tests/integration/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
need_k8s_tools

step "lint, default values"
"$helm" lint --strict --kube-version 1.31.0 "$chart"
step "lint, non-default values ($here/values-custom.yaml)"
"$helm" lint --strict --kube-version 1.31.0 "$chart" -f "$here/values-custom.yaml"
step "lint, TSoR on with no peers, no RuntimeClass, no ServiceAccount"
"$helm" lint --strict --kube-version 1.31.0 "$chart" --set tsor.enabled=true \
  --set runtimeClass.create=false --set serviceAccount.create=false

step "lint must reject values outside the schema"
for bad in config.DebugLevel=Loud config.CgroupDriver=openrc config.StreamPort=70000 \
  config.Sandbox.MemoryMiB=0 config.Bogus=1 image.pullPolicy=Sometimes runtimeClass.handler=Not_A_Label \
  tsor.fabric=ib tsor.peerSource=api tsor.peersRefreshSeconds=0 'tsor.peers[0].Name=n1' 'tsor.peers[0].PodCIDR=10.0.0.0/24,tsor.peers[0].Name=n1,tsor.peers[0].Address=10.0.0.1'; do
  if "$helm" lint --strict --kube-version 1.31.0 "$chart" --set "$bad" >"$tmp/out" 2>&1; then
    cat "$tmp/out"
    fail "helm lint accepted --set $bad"
  fi
  echo "rejected --set $bad: $(grep -m1 -o 'values don.t meet.*\|- .*' "$tmp/out" | head -n 1)"
done

step "package"
"$helm" package "$chart" -d "$tmp" >/dev/null
tar tzf "$tmp"/quark-*.tgz >"$tmp/files"
grep -qx 'quark/values.schema.json' "$tmp/files" || fail "packaged chart lacks values.schema.json"
grep -qx 'quark/templates/NOTES.txt' "$tmp/files" || fail "packaged chart lacks NOTES.txt"
echo "helm-lint: ok"
