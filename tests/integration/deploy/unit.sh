#!/usr/bin/env bash
# deploy/quarkd.service: systemd's own parser accepts it (systemd-analyze
# verify, with ExecStart pointed at a stand-in), and it keeps the settings the
# runtime depends on: sandboxes outlive quarkd (KillMode=process), cgroup
# delegation, restart, limits.
# shellcheck source=tests/integration/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
unit=$deploy/quarkd.service

mkdir -p "$tmp/bin"
cp /bin/true "$tmp/bin/quarkd"
sed "s#/usr/local/bin/quarkd#$tmp/bin/quarkd#g" "$unit" >"$tmp/quarkd.service"
step "systemd-analyze verify"
systemd-analyze verify --man=no --recursive-errors=no "$tmp/quarkd.service" 2>&1 | tee "$tmp/out"
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "systemd-analyze verify failed"
[ -s "$tmp/out" ] && fail "systemd-analyze verify printed warnings"
step "a broken unit is refused (the check can fail)"
sed 's/^KillMode=process/KillMode=proces/' "$tmp/quarkd.service" >"$tmp/bad.service"
if systemd-analyze verify --man=no --recursive-errors=no "$tmp/bad.service" >"$tmp/out" 2>&1 && [ ! -s "$tmp/out" ]; then
  fail "systemd-analyze verify accepted KillMode=proces"
fi
cat "$tmp/out"

step "settings the runtime depends on"
for want in Type=notify NotifyAccess=main Restart=always KillMode=process Delegate=yes LimitNOFILE=1048576 \
  LimitMEMLOCK=infinity TasksMax=infinity RuntimeDirectoryPreserve=yes \
  'ExecStart=/usr/local/bin/quarkd --config /etc/quark/config.json' WantedBy=multi-user.target; do
  grep -qxF "$want" "$unit" || fail "quarkd.service lacks $want"
  echo "has $want"
done
echo "unit: ok"
