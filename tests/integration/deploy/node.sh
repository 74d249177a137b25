#!/usr/bin/env bash
# The installed layout works on a node. In a private mount namespace whose
# /etc, /usr/local and /var are overlays (no write reaches this machine) and
# whose /run is a fresh tmpfs, deploy/install.sh installs the build into /;
# quarkd started the way quarkd.service starts it (the unit's ExecStart and
# Environment, with a NOTIFY_SOCKET) sends READY=1, serves the CRI socket
# named by the installed config.json (`quark version` answers through it),
# logs to /var/log/quark and sends STOPPING=1 and exits 0 on SIGTERM; then
# --uninstall --purge leaves those trees as they were.
if [ -z "${QUARK_NODE_NS:-}" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (mount namespace, overlays)"; exit 77; }
  command -v unshare >/dev/null || { echo "SKIP: unshare is not installed"; exit 77; }
  exec unshare --mount --propagation private env QUARK_NODE_NS=1 bash "$0" "$@"
fi
# shellcheck source=tests/integration/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
command -v perl >/dev/null || skip "perl is not installed (it plays systemd's notify socket)"
out=$(stage_binaries "$tmp/src")
echo "$out"
case "$out" in *quarkd*) ;; *) skip "quarkd is not built in $build_dir yet" ;; esac
case "$out" in *quark-sandbox*) ;; *) skip "quark-sandbox is not built in $build_dir yet" ;; esac

step "private /etc, /usr/local, /var (overlays) and /run (tmpfs)"
for d in /etc /usr/local /var; do
  mkdir -p "$tmp/ov$d/upper" "$tmp/ov$d/work"
  mount -t overlay overlay -o "lowerdir=$d,upperdir=$tmp/ov$d/upper,workdir=$tmp/ov$d/work" "$d" ||
    skip "cannot mount an overlay on $d"
done
mount -t tmpfs -o mode=0755 tmpfs /run

# A node without Quark: whatever an earlier Quark left on this machine is
# hidden (in this namespace only).
rm -rf /etc/quark /var/lib/quark /var/log/quark /usr/local/lib/quark /etc/systemd/system/quarkd.service \
  /usr/local/bin/quarkd /usr/local/bin/quark /usr/local/bin/quark-sandbox /usr/local/bin/tsord

view() {
  local p
  # /usr/local is large: names, modes, sizes and file mtimes (a directory's
  # mtime moves with any entry added and removed again); the rest in full.
  find /usr/local \( -type d -printf '%y %m %u:%g %p\n' \) -o -printf '%y %m %u:%g %s %T@ %l %p\n' |
    LC_ALL=C sort
  for p in /etc/systemd/system /etc/quark /var/lib/quark /var/log/quark; do
    if [ -e "$p" ]; then snapshot "$p" | sed "s#^#$p #"; else echo "absent $p"; fi
  done
}
view >"$tmp/before"

step "install into /"
"$deploy/install.sh" --no-restart "$tmp/src"

step "start quarkd as quarkd.service does"
unit=/etc/systemd/system/quarkd.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
mapfile -t envs < <(sed -n 's/^Environment=//p' "$unit")
grep -qx 'Type=notify' "$unit" || fail "the unit is not Type=notify"
# systemd's side of sd_notify: a datagram socket that prints what it gets.
perl -MSocket -e '
  socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!";
  bind($s, pack_sockaddr_un($ARGV[0])) or die "bind: $!";
  $| = 1;
  alarm 120;
  while (defined(recv($s, my $m, 4096, 0))) { print "$m\n"; last if $m =~ /STOPPING=1/; }
' "$tmp/notify.sock" >"$tmp/notify.log" &
notifier=$!
cleanup_hooks+=("kill $notifier 2>/dev/null")
for _ in $(seq 50); do [ -S "$tmp/notify.sock" ] && break; sleep 0.1; done
# shellcheck disable=SC2086 # ExecStart is a command line
env "${envs[@]}" NOTIFY_SOCKET="$tmp/notify.sock" $exec_start &
quarkd=$!
cleanup_hooks+=("kill $quarkd 2>/dev/null")
for _ in $(seq 600); do
  grep -qx 'READY=1' "$tmp/notify.log" && break
  kill -0 "$quarkd" 2>/dev/null || { cat /var/log/quark/quark.log 2>/dev/null; fail "quarkd exited before READY=1"; }
  sleep 0.1
done
grep -qx 'READY=1' "$tmp/notify.log" || fail "no READY=1 from quarkd within 60 s"
socket=$(jq -r '.Socket | sub("^unix://"; "")' /etc/quark/config.json)
[ -S "$socket" ] || fail "READY=1 but no socket at $socket"
echo "READY=1; CRI socket $socket"
env "${envs[@]}" /usr/local/bin/quark version | tee "$tmp/version"
grep -qi 'quarkd\|runtime' "$tmp/version" || fail "quark version did not reach quarkd"
kill -TERM "$quarkd"
wait "$quarkd" || fail "quarkd exited non-zero on SIGTERM"
wait "$notifier" || true
grep -qx 'STOPPING=1' "$tmp/notify.log" || fail "no STOPPING=1"
grep -q 'ready' /var/log/quark/quark.log || fail "nothing logged to /var/log/quark/quark.log"
echo "log: $(wc -l </var/log/quark/quark.log) lines in /var/log/quark/quark.log"

step "uninstall --purge"
"$deploy/install.sh" --uninstall --purge --no-restart
view | diff "$tmp/before" - || fail "the node differs after uninstall"
echo "node: ok"
