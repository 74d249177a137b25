# shellcheck shell=bash
# Shared by the scripts that run quark-sandbox on a busybox-static root
# (sandbox, jail, pod, podjail; sourced, not run: only functions).

# need_kvm: a skip (77) unless /dev/kvm is a character device that opens
# for reading and writing.
need_kvm() {
  if [ ! -c /dev/kvm ] || ! { exec 9<>/dev/kvm; } 2>/dev/null; then
    echo "SKIP: /dev/kvm is absent or not accessible"
    exit 77
  fi
  exec 9>&-
}

# busybox_rootfs ROOT BUSYBOX APPLET...: ROOT/bin/busybox, a copy of
# BUSYBOX, with a link for each APPLET, and an empty ROOT/tmp.
busybox_rootfs() {
  local root=$1 bb=$2 a
  shift 2
  mkdir -p "$root/bin" "$root/tmp"
  cp "$bb" "$root/bin/busybox"
  for a in "$@"; do ln -sf busybox "$root/bin/$a"; done
}
