#!/usr/bin/env bash
# The chart's TSoR DaemonSet starts the real tsord: the container's command
# and args from `helm template` (with $(NODE_NAME) as kubelet expands it) and
# the rendered peers.json, run here with the socket in a scratch dir; tsord
# must accept them, listen, and stop cleanly on SIGTERM.
# shellcheck source=tests/integration/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
need_k8s_tools
tsord=""
[ -d "$build_dir" ] &&
  tsord=$(find "$build_dir" -maxdepth 3 -type f -name tsord ! -path '*/CMakeFiles/*' 2>/dev/null | head -n 1)

cat >"$tmp/values.yaml" <<YAML
tsor:
  enabled: true
  fabric: tcp
  peers:
    - {Name: node-1, PodCIDR: 10.244.1.0/24, Address: "127.0.0.1:$(free_port)"}
    - {Name: node-2, PodCIDR: 10.244.2.0/24, Address: "127.0.0.1:$(free_port)"}
config:
  DebugLevel: Debug
YAML
"$helm" template quark "$chart" -f "$tmp/values.yaml" >"$tmp/render.yaml"
k8s_validate "$tmp/render.yaml" >/dev/null || fail "render is not valid 1.31"
node -e '
  const fs = require("fs");
  const YAML = require(require.resolve("yaml", { paths: [process.argv[1]] }));
  const objs = YAML.parseAllDocuments(fs.readFileSync(process.argv[2], "utf8")).map((d) => d.toJS()).filter(Boolean);
  const ds = objs.find((o) => o.kind === "DaemonSet" && o.metadata.name.endsWith("-tsord"));
  const cm = objs.find((o) => o.kind === "ConfigMap" && o.data && o.data["peers.json"]);
  if (!ds || !cm) { console.error("no tsord DaemonSet or peers ConfigMap"); process.exit(1); }
  const c = ds.spec.template.spec.containers[0];
  fs.writeFileSync(process.argv[3], cm.data["peers.json"]);
  // One argument per line: the command, then its args.
  fs.writeFileSync(process.argv[4], [...c.command, ...c.args].join("\n") + "\n");
' "$tools" "$tmp/render.yaml" "$tmp/peers.json" "$tmp/argv"
echo "peers.json: $(jq -c . "$tmp/peers.json")"
echo "tsord argv: $(tr '\n' ' ' <"$tmp/argv")"
jq -e '.Nodes | length == 2' "$tmp/peers.json" >/dev/null || fail "peers.json does not hold the two peers"

[ -n "$tsord" ] || skip "tsord is not built in $build_dir yet (render checked only)"
# As in the pod: /opt/quark/bin/tsord is the build's, /etc/quark-tsor is the
# ConfigMap, /run/quark is the scratch dir, NODE_NAME comes from the downward API.
mapfile -t argv <"$tmp/argv"
[ "${argv[0]}" = /opt/quark/bin/tsord ] || fail "unexpected command ${argv[0]}"
argv[0]=$tsord
for i in "${!argv[@]}"; do
  argv[i]=${argv[$i]//\$(NODE_NAME)/node-1}
  argv[i]=${argv[$i]//\/etc\/quark-tsor/$tmp}
  argv[i]=${argv[$i]//\/run\/quark/$tmp/run}
done
mkdir -p "$tmp/run"
sock=$(jq -r '.Tsor.Socket' "$src_dir/deploy/config.json")
sock=$tmp/run/${sock#/run/quark/}
echo "running: ${argv[*]}"
"${argv[@]}" >"$tmp/tsord.log" 2>&1 &
pid=$!
cleanup_hooks+=("kill $pid 2>/dev/null")
for _ in $(seq 100); do
  [ -S "$sock" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -S "$sock" ] || { cat "$tmp/tsord.log"; fail "tsord did not create $sock"; }
echo "tsord listens on $sock"
kill -TERM "$pid"
wait "$pid" || { cat "$tmp/tsord.log"; fail "tsord exited non-zero on SIGTERM"; }
echo "tsor: ok"
