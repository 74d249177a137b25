#!/usr/bin/env bash
# deploy/install.sh in a scratch root (--destdir): installs the build's
# binaries (stand-ins for those not built yet), is idempotent, keeps a config
# the operator changed (and says so), and --uninstall leaves the root exactly
# as it was before (same listing, modes, owners, contents). Runs under bash's
# sh (dash) and busybox sh, as the installer image does. Node checks against
# fake node roots give the expected verdicts.
# shellcheck source=tests/integration/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
install="$deploy/install.sh"
stage_binaries "$tmp/src"

root=$tmp/root
# A root that already holds things: they must survive untouched.
mkdir -p "$root/etc/systemd/system" "$root/usr/local/bin" "$root/var/lib" "$root/run"
echo node-1 >"$root/etc/hostname"
printf '[Unit]\nDescription=other\n' >"$root/etc/systemd/system/other.service"
printf '#!/bin/sh\n' >"$root/usr/local/bin/other-tool"
chmod 0750 "$root/usr/local/bin/other-tool"
ln -s ../usr/local/bin/other-tool "$root/etc/other-link"
snapshot "$root" >"$tmp/before"

run() { "$@" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "exit $? from: $*"; }; cat "$tmp/log"; }
same_as_before() {
  snapshot "$root" >"$tmp/now"
  diff "$tmp/before" "$tmp/now" || fail "$1: the root differs from before the install"
  echo "root as before: $1"
}

for shell in sh "busybox sh"; do
  if [ "$shell" = "busybox sh" ] && ! command -v busybox >/dev/null; then
    echo "busybox not installed: busybox round trip not run"
    continue
  fi
  step "[$shell] install"
  run $shell "$install" --no-checks --destdir "$root" "$tmp/src"
  for p in usr/local/bin/quarkd usr/local/bin/quark usr/local/bin/quark-sandbox usr/local/bin/tsord \
    usr/local/lib/quark/qkernel.bin usr/local/lib/quark/install.sh etc/quark/config.json \
    etc/systemd/system/quarkd.service var/lib/quark/install-manifest; do
    [ -f "$root/$p" ] || fail "not installed: /$p"
  done
  [ -d "$root/var/log/quark" ] || fail "no /var/log/quark"
  [ -x "$root/usr/local/bin/quarkd" ] || fail "quarkd is not executable"
  cmp -s "$deploy/config.json" "$root/etc/quark/config.json" || fail "config.json is not deploy/config.json"
  snapshot "$root" >"$tmp/installed"

  step "[$shell] install again: nothing changes"
  run $shell "$install" --no-checks --destdir "$root" "$tmp/src"
  grep -E 'installed|updated' "$tmp/log" && fail "a second install changed files"
  snapshot "$root" | diff "$tmp/installed" - || fail "a second install changed the root"

  step "[$shell] uninstall"
  run $shell "$install" --uninstall --destdir "$root"
  same_as_before "[$shell] install + uninstall"
  run $shell "$install" --uninstall --destdir "$root"
  grep -q 'nothing to remove' "$tmp/log" || fail "second uninstall did not say there was nothing to do"
done

step "a changed config.json is kept, and the operator is told"
run "$install" --no-checks --destdir "$root" "$tmp/src"
jq '.DebugLevel = "Trace"' "$root/etc/quark/config.json" >"$tmp/changed.json"
cp "$tmp/changed.json" "$root/etc/quark/config.json"
jq '.Sandbox.MemoryMiB = 512' "$deploy/config.json" >"$tmp/new.json"
run "$install" --no-checks --destdir "$root" --config "$tmp/new.json" "$tmp/src"
grep -q 'was changed on this node: kept it' "$tmp/log" || fail "no word about the kept config"
cmp -s "$tmp/changed.json" "$root/etc/quark/config.json" || fail "the changed config was overwritten"
cmp -s "$tmp/new.json" "$root/etc/quark/config.json.new" || fail "no config.json.new"
run "$install" --no-checks --destdir "$root" --config "$tmp/new.json" --force-config "$tmp/src"
cmp -s "$tmp/new.json" "$root/etc/quark/config.json" || fail "--force-config did not overwrite"
cp "$tmp/changed.json" "$root/etc/quark/config.json"
run "$install" --uninstall --destdir "$root"
grep -q 'kept /etc/quark/config.json: changed since install' "$tmp/log" || fail "uninstall removed or did not report the changed config"
[ -f "$root/etc/quark/config.json" ] || fail "uninstall removed a changed config"
rm -r "$root/etc/quark"
same_as_before "uninstall that kept only the changed config"

step "--purge removes a changed config, state and logs"
run "$install" --no-checks --destdir "$root" "$tmp/src"
echo '{"DebugLevel":"Off"}' >"$root/etc/quark/config.json"
mkdir -p "$root/var/lib/quark/state/pod-1" && echo x >"$root/var/lib/quark/state/pod-1/state.json"
echo log >"$root/var/log/quark/quark.log"
run "$install" --uninstall --destdir "$root"
[ -f "$root/var/log/quark/quark.log" ] || fail "uninstall without --purge removed logs"
grep -q 'kept /var/lib/quark' "$tmp/log" || fail "no word about kept state"
# A later --uninstall --purge finishes the job without the manifest.
run "$install" --uninstall --purge --destdir "$root"
for d in etc/quark var/lib/quark var/log/quark usr/local/lib/quark; do
  [ -e "$root/$d" ] && fail "--purge left /$d"
done
# /var/log was made by the install but kept (not empty) by the first
# uninstall, whose manifest is gone: the one thing left to remove by hand.
rmdir "$root/var/log"
same_as_before "purge"

step "missing binaries are an error that names them"
mkdir -p "$tmp/empty"
if "$install" --no-checks --destdir "$root" "$tmp/empty" >"$tmp/log" 2>&1; then fail "install from an empty dir succeeded"; fi
grep -q 'quarkd not found' "$tmp/log" || { cat "$tmp/log"; fail "error does not name quarkd"; }
same_as_before "failed install"

step "node checks"
node_check() { "$install" --check --node-root "$node" >"$tmp/log" 2>&1 || true; }
node=$tmp/node
mkdir -p "$node/sys/fs/cgroup" "$node/dev"
if "$install" --check --node-root "$node" >"$tmp/log" 2>&1; then cat "$tmp/log"; fail "--check passed without /dev/kvm"; fi
cat "$tmp/log"
grep -q "kvm: FAILED: $node/dev/kvm is missing" "$tmp/log" || fail "no clear message for a missing /dev/kvm"
grep -q 'cgroup: FAILED: no cgroup hierarchy' "$tmp/log" || fail "no message for a missing cgroup hierarchy"
grep -q 'cni: no CNI plugins' "$tmp/log" || fail "no message for missing CNI plugins"
grep -q 'rdma: no RDMA devices' "$tmp/log" || fail "no RDMA verdict"
echo cpu >"$node/sys/fs/cgroup/cgroup.controllers"
node_check
grep -q 'cgroup: ok: v2' "$tmp/log" || fail "v2 layout not recognised"
rm "$node/sys/fs/cgroup/cgroup.controllers"
mkdir -p "$node/sys/fs/cgroup/unified" "$node/sys/fs/cgroup/memory"
echo cpu >"$node/sys/fs/cgroup/unified/cgroup.controllers"
node_check
grep -q 'cgroup: ok: hybrid' "$tmp/log" || fail "hybrid layout not recognised"
rm -r "$node/sys/fs/cgroup/unified"
node_check
grep -q 'cgroup: ok: v1' "$tmp/log" || fail "v1 layout not recognised"
mkdir -p "$node/opt/cni/bin" "$node/sys/class/infiniband/mlx5_0"
printf '#!/bin/sh\n' >"$node/opt/cni/bin/bridge" && chmod +x "$node/opt/cni/bin/bridge"
"$install" --check --node-root "$node" >"$tmp/log" 2>&1 || true
grep -q 'cni: ok: plugins in /opt/cni/bin: bridge' "$tmp/log" || { cat "$tmp/log"; fail "CNI plugin not found"; }
grep -q 'rdma: RDMA devices: mlx5_0' "$tmp/log" || fail "RDMA device not listed"
if [ "$(id -u)" -eq 0 ] && command -v perl >/dev/null; then
  # A character device that is not KVM: present, but the ioctl fails.
  mknod "$node/dev/kvm" c 1 3
  "$install" --check --node-root "$node" >"$tmp/log" 2>&1 || true
  grep -q 'kvm: FAILED: .* present but not usable' "$tmp/log" || { cat "$tmp/log"; fail "a non-KVM device passed"; }
  echo "non-KVM device: $(grep 'kvm:' "$tmp/log")"
fi
step "this machine"
"$install" --check || echo "(this machine fails a required check)"
echo "installer: ok"
