#!/usr/bin/env bash
# The chart's TSoR DaemonSet starts the real tsord. For each peer source the
# container's command and args come from `helm template` ($(NODE_NAME)
# expanded as kubelet does, the mounted paths mapped to a scratch dir), and
# tsord must accept them, listen on its socket and stop cleanly on SIGTERM.
#   file: the rendered peers.json ConfigMap.
#   kube: a stand-in API server on 127.0.0.1 serves the node list and a
#         watch (what the in-cluster credentials would reach); every request
#         tsord makes must be allowed by the rendered ClusterRole.
# JavaScript template strings in node -e, not shell expansions:
# shellcheck disable=SC2016
# shellcheck source=tests/integration/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
need_k8s_tools
tsord=""
[ -d "$build_dir" ] &&
  tsord=$(find "$build_dir" -maxdepth 3 -type f -name tsord ! -path '*/CMakeFiles/*' 2>/dev/null | head -n 1)
p1=$(free_port)
p2=$(free_port)

# Writes the tsord argv (one per line) of a render, and its peers.json and
# ClusterRole rules when there are any.
extract() {
  node -e '
    const fs = require("fs");
    const YAML = require(require.resolve("yaml", { paths: [process.argv[1]] }));
    const objs = YAML.parseAllDocuments(fs.readFileSync(process.argv[2], "utf8")).map((d) => d.toJS()).filter(Boolean);
    const ds = objs.find((o) => o.kind === "DaemonSet" && o.metadata.name.endsWith("-tsord"));
    if (!ds) { console.error("no tsord DaemonSet"); process.exit(1); }
    const c = ds.spec.template.spec.containers[0];
    fs.writeFileSync(process.argv[3] + ".argv", [...c.command, ...c.args].join("\n") + "\n");
    const cm = objs.find((o) => o.kind === "ConfigMap" && o.data && o.data["peers.json"]);
    if (cm) fs.writeFileSync(process.argv[3] + ".peers.json", cm.data["peers.json"]);
    const rules = objs.filter((o) => o.kind === "ClusterRole").flatMap((o) => o.rules);
    fs.writeFileSync(process.argv[3] + ".rules.json", JSON.stringify(rules));
  ' "$tools" "$1" "$2"
}

# Runs the argv in $1.argv (plus extra args) until its socket appears.
run_tsord() {
  local base=$1 sock i pid
  shift
  local -a argv
  mapfile -t argv <"$base.argv"
  [ "${argv[0]}" = /opt/quark/bin/tsord ] || fail "unexpected command ${argv[0]}"
  argv[0]=$tsord
  mkdir -p "$base.run"
  for i in "${!argv[@]}"; do
    argv[i]=${argv[$i]//\$(NODE_NAME)/node-1}
    argv[i]=${argv[$i]//\/etc\/quark-tsor\/peers.json/$base.peers.json}
    argv[i]=${argv[$i]//\/run\/quark/$base.run}
  done
  sock=$(jq -r '.Tsor.Socket' "$deploy/config.json")
  sock=$base.run/${sock#/run/quark/}
  echo "running: ${argv[*]} $*"
  "${argv[@]}" "$@" >"$base.log" 2>&1 &
  pid=$!
  cleanup_hooks+=("kill $pid 2>/dev/null")
  for _ in $(seq 100); do
    [ -S "$sock" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -S "$sock" ] || { cat "$base.log"; fail "tsord did not create $sock"; }
  echo "tsord listens on $sock"
  kill -TERM "$pid"
  wait "$pid" || { cat "$base.log"; fail "tsord exited non-zero on SIGTERM"; }
}

step "peer source: file"
cat >"$tmp/file-values.yaml" <<YAML
tsor:
  enabled: true
  fabric: tcp
  peerSource: file
  peers:
    - {Name: node-1, PodCIDR: 10.244.1.0/24, Address: "127.0.0.1:$p1"}
    - {Name: node-2, PodCIDR: 10.244.2.0/24, Address: "127.0.0.1:$p2"}
config:
  DebugLevel: Debug
YAML
"$helm" template quark "$chart" -f "$tmp/file-values.yaml" >"$tmp/file.yaml"
k8s_validate "$tmp/file.yaml" >/dev/null || fail "render is not valid 1.31"
extract "$tmp/file.yaml" "$tmp/file"
echo "peers.json: $(jq -c . "$tmp/file.peers.json")"
echo "tsord argv: $(tr '\n' ' ' <"$tmp/file.argv")"
jq -e '.Nodes | length == 2' "$tmp/file.peers.json" >/dev/null || fail "peers.json does not hold the two peers"
[ "$(cat "$tmp/file.rules.json")" = "[]" ] || fail "RBAC rendered for a peers file"

step "peer source: kube"
cat >"$tmp/kube-values.yaml" <<YAML
tsor:
  enabled: true
  fabric: tcp
  peerSource: kube
  peersRefreshSeconds: 1
YAML
"$helm" template quark "$chart" -f "$tmp/kube-values.yaml" >"$tmp/kube.yaml"
k8s_validate "$tmp/kube.yaml" >/dev/null || fail "render is not valid 1.31"
extract "$tmp/kube.yaml" "$tmp/kube"
echo "tsord argv: $(tr '\n' ' ' <"$tmp/kube.argv")"
echo "ClusterRole rules: $(cat "$tmp/kube.rules.json")"

[ -n "$tsord" ] || skip "tsord is not built in $build_dir yet (renders checked only)"
run_tsord "$tmp/file"

# A NodeList with two TSoR nodes and one that is not (no annotation).
cat >"$tmp/nodes.json" <<JSON
{"kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": "100"}, "items": [
  {"metadata": {"name": "node-1", "annotations": {"quark.io/tsord-address": "127.0.0.1:$p1"}}, "spec": {"podCIDR": "10.244.1.0/24"}},
  {"metadata": {"name": "node-2", "annotations": {"quark.io/tsord-address": "127.0.0.1:$p2"}}, "spec": {"podCIDR": "10.244.2.0/24"}},
  {"metadata": {"name": "node-3"}, "spec": {"podCIDR": "10.244.3.0/24"}}]}
JSON
echo "token-for-tsord" >"$tmp/token"
api_port=$(free_port)
node -e '
  const fs = require("fs");
  const [port, log, nodes] = process.argv.slice(1);
  require("http").createServer((req, res) => {
    fs.appendFileSync(log, `${req.method} ${req.url} ${req.headers.authorization || "-"}\n`);
    if (req.method === "GET" && req.url === "/api/v1/nodes") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(fs.readFileSync(nodes));
    } else if (req.method === "GET" && req.url.startsWith("/api/v1/nodes?") && /[?&]watch=(1|true)/.test(req.url)) {
      // A watch with no news: held open until tsord goes away.
      res.writeHead(200, { "content-type": "application/json" });
      res.flushHeaders();
    } else {
      res.writeHead(403);
      res.end();
    }
  }).listen(Number(port), "127.0.0.1");
' "$api_port" "$tmp/api.log" "$tmp/nodes.json" &
api=$!
cleanup_hooks+=("kill $api 2>/dev/null")
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$api_port/api/v1/nodes" >/dev/null && break; sleep 0.1; done
: >"$tmp/api.log"
# In a pod these come from the ServiceAccount and KUBERNETES_SERVICE_HOST.
run_tsord "$tmp/kube" --kube-server "http://127.0.0.1:$api_port" --kube-token-file "$tmp/token"
grep -q 'GET /api/v1/nodes Bearer token-for-tsord' "$tmp/api.log" || { cat "$tmp/api.log"; fail "tsord did not list the nodes with its token"; }
# Every request tsord made, as an RBAC verb on a resource, must be allowed.
node -e '
  const fs = require("fs");
  const rules = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  const reqs = fs.readFileSync(process.argv[2], "utf8").trim().split("\n").filter(Boolean);
  const allowed = (group, resource, verb) => rules.some((r) =>
    r.apiGroups.includes(group) && r.resources.includes(resource) && (r.verbs.includes(verb) || r.verbs.includes("*")));
  for (const line of reqs) {
    const [method, url] = line.split(" ");
    const m = /^\/api\/v1\/([a-z]+)(\/[^/?]+)?(\?.*)?$/.exec(url);
    if (!m || method !== "GET") { console.error(`unexpected request ${method} ${url}`); process.exit(1); }
    const verb = m[2] ? "get" : (/watch=(1|true)/.test(m[3] || "") ? "watch" : "list");
    if (!allowed("", m[1], verb)) { console.error(`${verb} ${m[1]} is not in the ClusterRole`); process.exit(1); }
    console.log(`allowed by the ClusterRole: ${verb} ${m[1]} (${method} ${url})`);
  }' "$tmp/kube.rules.json" "$tmp/api.log"
echo "tsor: ok"
