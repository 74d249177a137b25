#!/usr/bin/env bash
# `helm template` with default and non-default values renders objects that
# validate against the Kubernetes 1.31 schemas (k8s-validate.js: strict, from
# the 1.31 API definitions); deploy/runtimeclass.yaml too. The validator must
# reject known-bad objects, or a pass would mean nothing. NOTES.txt renders.
# shellcheck source=tests/integration/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
need_k8s_tools

step "render, default values"
"$helm" template quark "$chart" --kube-version 1.31.0 --namespace kube-system >"$tmp/default.yaml"
step "render, non-default values"
"$helm" template quark "$chart" --kube-version 1.31.0 --namespace quark-system -f "$here/values-custom.yaml" >"$tmp/custom.yaml"

kinds() { grep -h '^kind:' "$@" | sort | uniq -c | tr -s ' ' | tr '\n' ';'; }
echo "default: $(kinds "$tmp/default.yaml")"
echo "custom:  $(kinds "$tmp/custom.yaml")"
for k in ConfigMap DaemonSet RuntimeClass ServiceAccount; do
  grep -q "^kind: $k\$" "$tmp/default.yaml" || fail "default render has no $k"
done
step "render, TSoR with a peers file"
"$helm" template quark "$chart" --kube-version 1.31.0 --set tsor.enabled=true --set tsor.peerSource=file \
  --set-json 'tsor.peers=[{"Name":"n1","PodCIDR":"10.1.0.0/24","Address":"10.0.0.1:7470"}]' >"$tmp/file.yaml"
echo "file:    $(kinds "$tmp/file.yaml")"
# RBAC only where needed: tsord --kube lists and watches nodes; nothing else
# calls the API.
grep -qE '^kind: (Cluster)?Role(Binding)?$' "$tmp/default.yaml" "$tmp/file.yaml" && fail "RBAC rendered where nothing calls the API"
for k in ClusterRole ClusterRoleBinding; do
  grep -q "^kind: $k\$" "$tmp/custom.yaml" || fail "tsor.peerSource=kube renders no $k"
done
node -e '
  const YAML = require(require.resolve("yaml", { paths: [process.argv[1]] }));
  const objs = YAML.parseAllDocuments(require("fs").readFileSync(process.argv[2], "utf8")).map((d) => d.toJS()).filter(Boolean);
  const rules = objs.filter((o) => o.kind === "ClusterRole").flatMap((o) => o.rules);
  const want = JSON.stringify([{ apiGroups: [""], resources: ["nodes"], verbs: ["list", "watch"] }]);
  if (JSON.stringify(rules) !== want) { console.error("ClusterRole rules", JSON.stringify(rules), "are not", want); process.exit(1); }
  console.log("ClusterRole: list and watch nodes, nothing else");' "$tools" "$tmp/custom.yaml"
[ "$(grep -c '^kind: DaemonSet$' "$tmp/custom.yaml")" = 2 ] || fail "TSoR render should have two DaemonSets"

step "validate against Kubernetes 1.31"
k8s_validate "$tmp/default.yaml" "$tmp/custom.yaml" "$tmp/file.yaml" "$deploy/runtimeclass.yaml"

step "the validator rejects bad objects"
expect_invalid() {
  local what=$1 file=$2
  if k8s_validate "$file" >"$tmp/out" 2>&1; then
    cat "$tmp/out"
    fail "validator accepted $what"
  fi
  echo "rejected $what: $(grep -v -e ': valid (' -e '^k8s-validate:' "$tmp/out" | head -n 1)"
}
sed 's/      hostPID: true/      hostPID: true\n      hostPid: true/' "$tmp/default.yaml" >"$tmp/bad1.yaml"
expect_invalid "an unknown field (hostPid)" "$tmp/bad1.yaml"
sed 's/^handler: quark$/runtimeHandler: quark/' "$tmp/default.yaml" >"$tmp/bad2.yaml"
expect_invalid "a RuntimeClass without handler" "$tmp/bad2.yaml"
sed 's/periodSeconds: 5/periodSeconds: "5"/' "$tmp/default.yaml" >"$tmp/bad3.yaml"
expect_invalid "a string where an integer belongs" "$tmp/bad3.yaml"
# Pod-level resources came in 1.32: a 1.31 schema has no such field.
sed 's/      hostPID: true/      hostPID: true\n      resources: {}/' "$tmp/default.yaml" >"$tmp/bad4.yaml"
expect_invalid "a field newer than 1.31 (PodSpec.resources)" "$tmp/bad4.yaml"
printf 'apiVersion: node.k8s.io/v1beta1\nkind: RuntimeClass\nmetadata: {name: x}\nhandler: x\n' >"$tmp/bad5.yaml"
expect_invalid "an API version removed before 1.31 (node.k8s.io/v1beta1)" "$tmp/bad5.yaml"

step "NOTES.txt renders (kubelet endpoint, runtimeClassName)"
cp -r "$chart" "$tmp/chart"
cp "$chart/templates/NOTES.txt" "$tmp/chart/notes.txt.copy"
cat >"$tmp/chart/templates/notes-check.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata:
  name: notes
data:
  notes: |
{{ tpl (.Files.Get "notes.txt.copy") . | indent 4 }}
YAML
"$helm" template quark "$tmp/chart" --show-only templates/notes-check.yaml >"$tmp/notes.yaml"
for want in '--container-runtime-endpoint=unix:///run/quark/quark.sock' 'runtimeClassName: quark' \
  'rollout status daemonset/quark-installer'; do
  grep -qF -- "$want" "$tmp/notes.yaml" || { cat "$tmp/notes.yaml"; fail "NOTES.txt lacks '$want'"; }
done
"$helm" template quark "$tmp/chart" -f "$here/values-custom.yaml" --show-only templates/notes-check.yaml >"$tmp/notes2.yaml"
grep -qF 'runtimeClassName: quark-vm' "$tmp/notes2.yaml" || fail "NOTES.txt ignores runtimeClass.name"
grep -qF 'TSoR is on' "$tmp/notes2.yaml" || fail "NOTES.txt does not mention TSoR"
echo "helm-schema: ok"
