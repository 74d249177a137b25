#!/bin/sh
# Entry point of the installer DaemonSet (helm/quark): installs Quark from
# this image onto the host whose root is mounted at $QUARK_HOST_ROOT, restarts
# quarkd through nsenter into the host's pid 1 (the pod runs with hostPID),
# marks itself ready and sleeps. On SIGTERM it uninstalls when asked to
# (QUARK_UNINSTALL_ON_STOP=true). Runs under busybox sh.
set -eu

host=${QUARK_HOST_ROOT:-/host}
src=${QUARK_IMAGE_ROOT:-/opt/quark}
config=${QUARK_CONFIG_SRC:-$src/config.json}
ready=${QUARK_READY_FILE:-/run/quark-installer/installed}
host_exec=${QUARK_HOST_EXEC:-nsenter -t 1 -m -u -i -n -p --}

say() { printf 'node-installer: %s\n' "$*"; }

restart=--no-restart
[ "${QUARK_RESTART:-true}" = true ] && restart=--restart
strict=
[ "${QUARK_STRICT_CHECKS:-false}" = true ] && strict=--strict

on_stop() {
  rm -f "$ready"
  if [ "${QUARK_UNINSTALL_ON_STOP:-false}" = true ]; then
    say "stopping: removing Quark from node ${NODE_NAME:-?}"
    "$src/install.sh" --uninstall --destdir "$host" --node-root "$host" \
      --host-exec "$host_exec" $restart || say "uninstall failed"
  else
    say "stopping: Quark stays installed on node ${NODE_NAME:-?}"
  fi
  exit 0
}
trap on_stop TERM INT

mkdir -p "${ready%/*}"
rm -f "$ready"
say "installing on node ${NODE_NAME:-?} (host root $host)"
# The chart's ConfigMap is the source of truth for config.json: overwrite.
"$src/install.sh" --destdir "$host" --node-root "$host" --host-exec "$host_exec" \
  --config "$config" --force-config $restart $strict "$src"
touch "$ready"
say "ready"
while :; do
  sleep 3600 &
  wait $! || true
done
