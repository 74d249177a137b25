#!/usr/bin/env bash
# deploy/build-image.sh builds a valid OCI image layout with umoci (every blob
# matches its digest, the manifest and config are complete, the entrypoint is
# the installer), pushes it by tag with skopeo to a docker-registry on
# 127.0.0.1, and the image pulled back installs and uninstalls Quark in a
# scratch root with nothing but its own busybox.
# shellcheck source=tests/integration/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
for t in umoci skopeo busybox jq curl node; do
  command -v "$t" >/dev/null || skip "$t is not installed (deploy/deps.sh test)"
done
stage_binaries "$tmp/src"

layout=$tmp/oci
step "build"
"$deploy/build-image.sh" --layout "$layout" --tag test "$tmp/src"

step "OCI layout"
jq -e '.imageLayoutVersion == "1.0.0"' "$layout/oci-layout" >/dev/null || fail "bad oci-layout"
for b in "$layout"/blobs/sha256/*; do
  [ "$(sha256sum "$b" | cut -d' ' -f1)" = "${b##*/}" ] || fail "blob ${b##*/} does not match its digest"
done
echo "$(find "$layout/blobs/sha256" -type f | wc -l) blobs match their digests"
mdigest=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "test") | .digest' "$layout/index.json")
[ -n "$mdigest" ] || fail "no manifest tagged test in index.json"
manifest=$layout/blobs/sha256/${mdigest#sha256:}
jq -e '.manifests[0].mediaType == "application/vnd.oci.image.manifest.v1+json"' "$layout/index.json" >/dev/null ||
  fail "index.json does not point at an OCI image manifest"
jq -e '.schemaVersion == 2 and .config.mediaType == "application/vnd.oci.image.config.v1+json"' "$manifest" >/dev/null ||
  fail "not an OCI image manifest"
config=$layout/blobs/sha256/$(jq -r '.config.digest | sub("sha256:"; "")' "$manifest")
jq -e '.os == "linux" and .architecture == "amd64"' "$config" >/dev/null || fail "config: os/architecture"
jq -e '.config.Entrypoint == ["/opt/quark/node-installer.sh"]' "$config" >/dev/null || fail "config: entrypoint"
for l in $(jq -r '.layers[].digest | sub("sha256:"; "")' "$manifest"); do
  [ -f "$layout/blobs/sha256/$l" ] || fail "layer $l missing"
done
[ "$(jq '.rootfs.diff_ids | length' "$config")" = "$(jq '.layers | length' "$manifest")" ] || fail "diff_ids and layers differ"
umoci stat --image "$layout:test" >/dev/null || fail "umoci stat failed"
skopeo inspect "oci:$layout:test" >"$tmp/inspect.json"
echo "manifest $mdigest, layers $(jq -c '.Layers | length' "$tmp/inspect.json")"

step "push to a docker-registry on 127.0.0.1"
registry=$(command -v docker-registry || true)
if [ -z "$registry" ]; then
  echo "docker-registry not installed: push not tested"
  pulled=$layout
else
  port=$(free_port)
  cat >"$tmp/registry.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $tmp/registry
http:
  addr: 127.0.0.1:$port
YAML
  "$registry" serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
  regpid=$!
  cleanup_hooks+=("kill $regpid; wait $regpid 2>/dev/null")
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null || { cat "$tmp/registry.log"; fail "registry did not start"; }
  ref=127.0.0.1:$port/quark/quark-node:test
  "$deploy/build-image.sh" --layout "$tmp/oci2" --tag test --push "docker://$ref" --insecure "$tmp/src"
  skopeo inspect --tls-verify=false "docker://$ref" >"$tmp/remote.json"
  curl -fsS "http://127.0.0.1:$port/v2/quark/quark-node/tags/list" | jq -e '.tags == ["test"]' >/dev/null ||
    fail "tag test not listed by the registry"
  pulled=$tmp/pulled
  skopeo copy --src-tls-verify=false "docker://$ref" "oci:$pulled:test"
  echo "pushed and pulled back $ref ($(jq -r .Digest "$tmp/remote.json"))"
fi

step "the image installs and uninstalls Quark with its own busybox"
umoci unpack --image "$pulled:test" "$tmp/bundle" >/dev/null
rootfs=$tmp/bundle/rootfs
for p in bin/busybox bin/sh opt/quark/install.sh opt/quark/node-installer.sh opt/quark/config.json \
  opt/quark/quarkd.service opt/quark/bin/quarkd opt/quark/bin/quark-sandbox opt/quark/qkernel.bin; do
  [ -e "$rootfs/$p" ] || fail "image lacks /$p"
done
cmp -s "$rootfs/opt/quark/bin/quarkd" "$tmp/src/quarkd" || fail "quarkd in the image differs from the build's"
if grep -q -e '--check-config' "$rootfs/opt/quark/bin/quarkd" && [ "$(id -u)" -eq 0 ] &&
  command -v unshare >/dev/null; then
  # The image carries quarkd's shared libraries: it runs in the image alone,
  # as in a container (own pid namespace and /proc: sanitizer builds read it).
  unshare --mount --pid --fork --mount-proc="$rootfs/proc" chroot "$rootfs" \
    /bin/env -i LD_LIBRARY_PATH=/opt/quark/lib \
    /opt/quark/bin/quarkd --check-config /opt/quark/config.json || fail "quarkd does not run inside the image"
  echo "quarkd runs inside the image with its own libraries"
else
  echo "quarkd in the image not run (stand-in, or no root/unshare for a chroot)"
fi
scratch=$tmp/scratch
mkdir -p "$scratch/etc"
echo node >"$scratch/etc/hostname"
snapshot "$scratch" >"$tmp/before"
env -i PATH="$rootfs/bin" "$rootfs/bin/sh" "$rootfs/opt/quark/install.sh" --no-checks \
  --destdir "$scratch" "$rootfs/opt/quark"
cmp -s "$scratch/usr/local/bin/quarkd" "$tmp/src/quarkd" || fail "installed quarkd differs from the build's"
env -i PATH="$rootfs/bin" "$rootfs/bin/sh" "$rootfs/opt/quark/install.sh" --uninstall --destdir "$scratch"
snapshot "$scratch" | diff "$tmp/before" - || fail "the scratch root differs after uninstall"
step "the image's busybox nsenter takes the entry point's host-exec options"
# shellcheck disable=SC2016 # a sed pattern, not an expansion
host_exec=$(sed -n 's/^host_exec=${QUARK_HOST_EXEC:-\(.*\)}$/\1/p' "$rootfs/opt/quark/node-installer.sh")
[ -n "$host_exec" ] || fail "no default host_exec in node-installer.sh"
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null; then
  # pid 1 of a fresh pid namespace stands for the host's init.
  # shellcheck disable=SC2016
  out=$(unshare --pid --fork --mount-proc env PATH="$rootfs/bin" "$rootfs/bin/sh" -c '$0 echo entered' "$host_exec" 2>&1) ||
    fail "'$host_exec' failed with the image's busybox: $out"
  [ "$out" = entered ] || fail "'$host_exec' printed: $out"
  echo "'$host_exec' works with the image's busybox"
fi

step "the DaemonSet entry point: install, systemd through the host, ready, uninstall on SIGTERM"
# The pod's view: the host's root at QUARK_HOST_ROOT, the host's systemctl
# reached through QUARK_HOST_EXEC (nsenter into pid 1 on a node; here a
# stand-in that logs the command), nothing but the image's busybox.
mkdir -p "$tmp/fakebin"
cat >"$tmp/fakebin/hostexec" <<SH
#!$rootfs/bin/sh
echo "\$*" >>"$tmp/host-commands"
[ "\$2" = is-active ] && echo active
exit 0
SH
chmod +x "$tmp/fakebin/hostexec"
: >"$tmp/host-commands"
env -i PATH="$rootfs/bin" QUARK_HOST_ROOT="$scratch" QUARK_IMAGE_ROOT="$rootfs/opt/quark" \
  QUARK_READY_FILE="$tmp/ready/installed" QUARK_HOST_EXEC="$tmp/fakebin/hostexec" \
  QUARK_RESTART=true QUARK_UNINSTALL_ON_STOP=true NODE_NAME=node-1 \
  "$rootfs/bin/sh" "$rootfs/opt/quark/node-installer.sh" >"$tmp/ds.log" 2>&1 &
dspid=$!
cleanup_hooks+=("kill $dspid 2>/dev/null")
for _ in $(seq 100); do
  [ -f "$tmp/ready/installed" ] && break
  kill -0 "$dspid" 2>/dev/null || break
  sleep 0.1
done
[ -f "$tmp/ready/installed" ] || { cat "$tmp/ds.log"; fail "the entry point never became ready"; }
[ -x "$scratch/usr/local/bin/quarkd" ] || fail "the entry point installed no quarkd"
printf 'systemctl daemon-reload\nsystemctl enable quarkd.service\nsystemctl restart quarkd.service\nsystemctl is-active quarkd.service\n' >"$tmp/want"
diff "$tmp/want" "$tmp/host-commands" || fail "unexpected host commands on install"
# The pod restarts with nothing new: a running quarkd is left alone.
: >"$tmp/host-commands"
env -i PATH="$rootfs/bin" "$rootfs/bin/sh" "$rootfs/opt/quark/install.sh" --no-checks --restart \
  --destdir "$scratch" --node-root "$scratch" --host-exec "$tmp/fakebin/hostexec" "$rootfs/opt/quark" >"$tmp/again.log" 2>&1 ||
  { cat "$tmp/again.log"; fail "second install failed"; }
grep -q 'nothing changed: not restarted' "$tmp/again.log" || { cat "$tmp/again.log"; fail "quarkd restarted with nothing changed"; }
[ "$(cat "$tmp/host-commands")" = "systemctl is-active --quiet quarkd.service" ] || fail "unexpected host commands on a re-run"
echo "re-run: quarkd left alone"
kill -TERM "$dspid"
wait "$dspid" || { cat "$tmp/ds.log"; fail "the entry point exited non-zero on SIGTERM"; }
cat "$tmp/ds.log"
grep -q 'systemctl disable --now quarkd.service' "$tmp/host-commands" || fail "quarkd not stopped on uninstall"
[ -e "$tmp/ready/installed" ] && fail "still marked ready after stop"
snapshot "$scratch" | diff "$tmp/before" - || fail "the scratch root differs after the entry point's uninstall"
echo "image: ok"
