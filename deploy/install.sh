#!/bin/sh
# Installs Quark on a node: quarkd, quark, quark-sandbox (and tsord when
# built) into /usr/local/bin, qkernel.bin into /usr/local/lib/quark, the
# default /etc/quark/config.json, the systemd unit and the log and state
# directories. Idempotent: a second run with the same inputs changes nothing.
# `--uninstall` removes exactly what install.sh put there (a manifest in
# /var/lib/quark records it), so a root is left as it was before the install.
#
# POSIX sh on purpose: the Helm chart's installer DaemonSet runs this same
# script under busybox, with the host's root mounted at /host.
#
# Usage:
#   deploy/install.sh [options] [SRC]      install from SRC
#   deploy/install.sh --uninstall [--purge] [options]
#   deploy/install.sh --check [--node-root DIR]
# SRC is a CMake build dir (binaries found under it) or a dir holding the
# binaries (bin/ and lib/ subdirs are searched too). Default: ./build.
# Options:
#   --destdir DIR    install under DIR (also $DESTDIR); systemd is not touched
#   --node-root DIR  where the node's /dev, /sys, /opt are seen (default /)
#   --config FILE    config.json to install instead of deploy/config.json
#   --force-config   overwrite a config.json that was changed since install
#   --restart        use systemd even with --destdir or --node-root (the
#                    installer pod). By default systemd is used when installing
#                    into / on a systemd host: daemon-reload, enable, restart
#                    quarkd when a file changed or quarkd is not active;
#                    --uninstall stops and disables it.
#   --no-restart     never touch systemd
#   --host-exec CMD  prefix for commands that must run in the host's
#                    namespaces (systemctl, KVM probe), e.g.
#                    "nsenter -t 1 -m -u -i -n -p --"
#   --no-checks      skip the node checks
#   --strict         fail the install when a required node check fails
#   --purge          with --uninstall: also remove a changed config.json,
#                    the state (/var/lib/quark) and logs (/var/log/quark)
# Exit status: 0 done, 1 error or failed required check, 2 usage.
set -eu

prog=quark-install
here=$(cd "$(dirname "$0")" && pwd)

BIN_DIR=/usr/local/bin
LIB_DIR=/usr/local/lib/quark
ETC_DIR=/etc/quark
CONFIG=/etc/quark/config.json
UNIT=/etc/systemd/system/quarkd.service
LOG_DIR=/var/log/quark
STATE_DIR=/var/lib/quark
MANIFEST=/var/lib/quark/install-manifest

mode=install
destdir=${DESTDIR:-}
node_root=/
src=
config_src=
force_config=0
restart=auto
host_exec=${QUARK_HOST_EXEC:-}
checks=1
strict=0
purge=0

say() { printf '%s: %s\n' "$prog" "$*"; }
warn() { printf '%s: warning: %s\n' "$prog" "$*" >&2; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --uninstall) mode=uninstall ;;
    --check) mode=check ;;
    --destdir) [ $# -ge 2 ] || usage; destdir=$2; shift ;;
    --destdir=*) destdir=${1#*=} ;;
    --node-root) [ $# -ge 2 ] || usage; node_root=$2; shift ;;
    --node-root=*) node_root=${1#*=} ;;
    --config) [ $# -ge 2 ] || usage; config_src=$2; shift ;;
    --config=*) config_src=${1#*=} ;;
    --force-config) force_config=1 ;;
    --restart) restart=yes ;;
    --no-restart) restart=no ;;
    --host-exec) [ $# -ge 2 ] || usage; host_exec=$2; shift ;;
    --host-exec=*) host_exec=${1#*=} ;;
    --no-checks) checks=0 ;;
    --strict) strict=1 ;;
    --purge) purge=1 ;;
    -h|--help) usage ;;
    -*) warn "unknown option $1"; usage ;;
    *) [ -z "$src" ] || usage; src=$1 ;;
  esac
  shift
done
destdir=${destdir%/}
node_root=${node_root%/}

# ---- node checks ----

n_fail=0
check_ok() { say "check: $1: ok: $2"; }
check_info() { say "check: $1: $2"; }
check_warn() { warn "check: $1: $2"; }
check_fail() { printf '%s: check: %s: FAILED: %s\n' "$prog" "$1" "$2" >&2; n_fail=$((n_fail + 1)); }

# KVM_GET_API_VERSION is _IO(0xAE, 0x00); a usable /dev/kvm answers 12.
kvm_api_version() {
  # Perl code, not shell: no expansion wanted.
  # shellcheck disable=SC2016
  probe_pl='open(my $f, "+<", $ARGV[0]) or die "open $ARGV[0]: $!\n"; my $v = ioctl($f, 0xAE00, 0); defined $v or die "KVM_GET_API_VERSION: $!\n"; $v = 0 if $v eq "0 but true"; print "$v\n";'
  probe_py='import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CLOEXEC); print(fcntl.ioctl(fd, 0xAE00))'
  if command -v perl >/dev/null 2>&1; then
    perl -e "$probe_pl" "$node_root/dev/kvm" 2>&1
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c "$probe_py" "$node_root/dev/kvm" 2>&1
  elif [ -n "$host_exec" ]; then
    # Inside the installer image (busybox only): ask the host's perl.
    $host_exec perl -e "$probe_pl" /dev/kvm 2>&1
  else
    echo "no perl or python3 to probe it"
    return 3
  fi
}

check_kvm() {
  kvm=$node_root/dev/kvm
  if [ ! -e "$kvm" ]; then
    check_fail kvm "$kvm is missing: load kvm_intel or kvm_amd, or enable nested virtualization on this VM"
    return
  fi
  if [ ! -c "$kvm" ]; then
    check_fail kvm "$kvm is not a character device"
    return
  fi
  rc=0
  out=$(kvm_api_version) || rc=$?
  if [ "$rc" -eq 3 ]; then
    check_warn kvm "$kvm present, not probed ($out)"
  elif [ "$rc" -ne 0 ]; then
    check_fail kvm "$kvm present but not usable: $out"
  elif [ "$out" = 12 ]; then
    check_ok kvm "$kvm answers KVM_GET_API_VERSION = 12"
  else
    check_fail kvm "$kvm answers KVM_GET_API_VERSION = $out, expected 12"
  fi
}

# openat2 with RESOLVE_IN_ROOT (5.6), io_uring and eBPF sk_lookup (5.9):
# 5.10 is the oldest kernel that has everything the sandbox uses.
check_kernel() {
  rel=$(uname -r)
  major=${rel%%.*}
  rest=${rel#*.}
  minor=${rest%%[!0-9]*}
  case "$major$minor" in
    *[!0-9]*|'') check_warn kernel "cannot parse kernel release '$rel'"; return ;;
  esac
  if [ "$major" -gt 5 ] || { [ "$major" -eq 5 ] && [ "$minor" -ge 10 ]; }; then
    check_ok kernel "$rel (5.10 or newer)"
  else
    check_fail kernel "$rel is older than 5.10 (needs openat2, io_uring, eBPF sk_lookup)"
  fi
}

check_cgroup() {
  cg=$node_root/sys/fs/cgroup
  if [ -f "$cg/cgroup.controllers" ]; then
    check_ok cgroup "v2 (unified hierarchy at /sys/fs/cgroup; controllers: $(tr '\n' ' ' <"$cg/cgroup.controllers"))"
  elif [ -f "$cg/unified/cgroup.controllers" ]; then
    check_ok cgroup "hybrid (v1 controllers, v2 at /sys/fs/cgroup/unified)"
  elif [ -d "$cg/memory" ] || [ -d "$cg/cpu" ] || [ -d "$cg/cpu,cpuacct" ]; then
    check_ok cgroup "v1 (legacy hierarchies under /sys/fs/cgroup)"
  else
    check_fail cgroup "no cgroup hierarchy mounted at /sys/fs/cgroup"
  fi
}

check_cni() {
  found=
  for d in /opt/cni/bin /usr/lib/cni; do
    have=
    for p in bridge host-local loopback portmap ptp; do
      [ -x "$node_root$d/$p" ] && have="$have $p"
    done
    [ -n "$have" ] && found="$found $d:$have;"
  done
  if [ -n "$found" ]; then
    check_ok cni "plugins in${found%;}"
  else
    check_warn cni "no CNI plugins in /opt/cni/bin or /usr/lib/cni: pods get no network (Debian: containernetworking-plugins)"
  fi
  n_conf=0
  for f in "$node_root"/etc/cni/net.d/*.conf "$node_root"/etc/cni/net.d/*.conflist; do
    [ -f "$f" ] && n_conf=$((n_conf + 1))
  done
  if [ "$n_conf" -eq 0 ]; then
    check_warn cni "no network config in /etc/cni/net.d (the cluster's network add-on writes one)"
  else
    check_ok cni "$n_conf network config(s) in /etc/cni/net.d"
  fi
}

check_rdma() {
  devs=
  for d in "$node_root"/sys/class/infiniband/*; do
    [ -e "$d" ] && devs="$devs ${d##*/}"
  done
  if [ -n "$devs" ]; then
    check_info rdma "RDMA devices:$devs (TSoR can use verbs)"
  else
    check_info rdma "no RDMA devices in /sys/class/infiniband (TSoR falls back to its tcp fabric)"
  fi
}

check_systemd() {
  if [ -d "$node_root/run/systemd/system" ]; then
    check_ok systemd "systemd is the init system"
  else
    check_warn systemd "systemd is not running: start quarkd by hand (quarkd --config /etc/quark/config.json)"
  fi
}

run_checks() {
  check_kvm
  check_kernel
  check_cgroup
  check_cni
  check_rdma
  check_systemd
  if [ "$n_fail" -gt 0 ]; then
    warn "$n_fail required node check(s) failed: Quark cannot run pods on this node"
    return 1
  fi
  return 0
}

# ---- manifest: "d PATH" (dir we made), "f PATH" (file), "c PATH SHA256"
# (config as we installed it). Paths are install paths, without destdir.

manifest_tmp=
entries=
changed=0
sha() { sha256sum "$1" | cut -d' ' -f1; }
manifest_add() { entries="$entries$*
"; }
manifest_has() { printf '%s' "$entries" | grep -qxF "$1"; }
old_config_sha() {
  [ -f "$destdir$MANIFEST" ] || return 0
  grep "^c $1 " "$destdir$MANIFEST" | tail -n 1 | cut -d' ' -f3
}

# mkdir -p that records each directory it creates (install paths hold no
# spaces). Plain sh has no local variables: hence the _md_ names.
make_dir() {
  _md_target=$1
  [ -d "$destdir$_md_target" ] && return 0
  _md_p=$_md_target
  _md_missing=
  while [ -n "$_md_p" ] && [ ! -d "$destdir$_md_p" ]; do
    _md_missing="$_md_p $_md_missing"
    _md_p=${_md_p%/*}
  done
  for _md_d in $_md_missing; do
    if [ "$_md_d" = "$_md_target" ]; then
      mkdir -m "$2" "$destdir$_md_d"
    else
      mkdir -m 0755 "$destdir$_md_d"
    fi
    manifest_has "d $_md_d" || manifest_add "d $_md_d"
  done
}

# Copies src to dest atomically; reports whether it changed.
put_file() {
  s=$1
  d=$2
  m=$3
  make_dir "${d%/*}" 0755
  manifest_has "f $d" || manifest_add "f $d"
  if [ -f "$destdir$d" ] && cmp -s "$s" "$destdir$d"; then
    chmod "$m" "$destdir$d"
    say "unchanged $d"
    return 0
  fi
  cp "$s" "$destdir$d.quark-new"
  chmod "$m" "$destdir$d.quark-new"
  mv -f "$destdir$d.quark-new" "$destdir$d"
  changed=1
  say "installed $d"
}

find_artifact() {
  name=$1
  for c in "$src/$name" "$src/bin/$name" "$src/lib/$name"; do
    [ -f "$c" ] && { echo "$c"; return 0; }
  done
  find "$src" -maxdepth 3 -type f -name "$name" ! -path '*/CMakeFiles/*' 2>/dev/null | head -n 1
}

systemd_wanted() {
  case "$restart" in
    yes) return 0 ;;
    no) return 1 ;;
  esac
  [ -z "$destdir" ] && [ -z "$node_root" ] && [ -d /run/systemd/system ]
}

systemctl_host() { $host_exec systemctl "$@"; }

do_install() {
  [ -n "$src" ] || src=./build
  [ -d "$src" ] || die "no build or binary dir '$src' (pass the CMake build dir)"
  [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ] && die "installing into / needs root (or use --destdir)"
  if [ -n "$destdir" ]; then
    mkdir -p "$destdir"
    destdir=$(cd "$destdir" && pwd)
  fi
  [ -n "$config_src" ] || config_src=$here/config.json
  [ -f "$config_src" ] || die "no config file $config_src"
  [ -f "$here/quarkd.service" ] || die "no unit file $here/quarkd.service"

  quarkd=$(find_artifact quarkd)
  sandbox=$(find_artifact quark-sandbox)
  kernel=$(find_artifact qkernel.bin)
  cli=$(find_artifact quark)
  tsord=$(find_artifact tsord)
  [ -n "$quarkd" ] || die "quarkd not found under $src (build it: cmake --build BUILD --target quarkd)"
  [ -n "$sandbox" ] || die "quark-sandbox not found under $src"
  [ -n "$kernel" ] || die "qkernel.bin not found under $src"

  if [ "$checks" -eq 1 ]; then
    if ! run_checks && [ "$strict" -eq 1 ]; then
      die "node checks failed (--strict)"
    fi
  fi

  # The config must parse before anything changes on the node.
  # (Looked up in the binary rather than through --help: an older quarkd
  # could take an unknown flag for a reason to start serving.)
  if grep -q -e '--check-config' "$quarkd" 2>/dev/null; then
    "$quarkd" --check-config "$config_src" || die "$config_src rejected by quarkd --check-config"
    say "config $config_src accepted by quarkd --check-config"
  else
    say "config not checked: this quarkd has no --check-config"
  fi

  if [ -f "$destdir$MANIFEST" ]; then
    entries=$(grep -v '^c ' "$destdir$MANIFEST" || true)
    [ -n "$entries" ] && entries="$entries
"
  fi

  put_file "$quarkd" "$BIN_DIR/quarkd" 0755
  put_file "$sandbox" "$BIN_DIR/quark-sandbox" 0755
  [ -n "$cli" ] && put_file "$cli" "$BIN_DIR/quark" 0755
  [ -n "$tsord" ] && put_file "$tsord" "$BIN_DIR/tsord" 0755
  put_file "$kernel" "$LIB_DIR/qkernel.bin" 0644
  # Shared libraries the image bundles (build-image.sh); glibc stays the host's.
  if [ -d "$src/lib" ]; then
    for l in "$src"/lib/*.so*; do
      [ -f "$l" ] || continue
      case "${l##*/}" in
        ld-linux*|libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|libresolv.so*|libutil.so*) continue ;;
      esac
      put_file "$l" "$LIB_DIR/lib/${l##*/}" 0644
    done
  fi
  put_file "$here/quarkd.service" "$UNIT" 0644
  # A copy of this script, so that the node can uninstall without the source.
  put_file "$here/install.sh" "$LIB_DIR/install.sh" 0755
  make_dir "$LOG_DIR" 0755
  make_dir "$STATE_DIR" 0711

  # config.json: never overwrite a file the operator changed without saying so.
  make_dir "$ETC_DIR" 0755
  new_sha=$(sha "$config_src")
  cfg=$destdir$CONFIG
  if [ ! -f "$cfg" ]; then
    cp "$config_src" "$cfg.quark-new" && chmod 0644 "$cfg.quark-new" && mv -f "$cfg.quark-new" "$cfg"
    changed=1
    say "installed $CONFIG"
  elif cmp -s "$config_src" "$cfg"; then
    say "unchanged $CONFIG"
  else
    cur_sha=$(sha "$cfg")
    if [ "$force_config" -eq 1 ] || [ "$cur_sha" = "$(old_config_sha "$CONFIG")" ]; then
      cp "$config_src" "$cfg.quark-new" && chmod 0644 "$cfg.quark-new" && mv -f "$cfg.quark-new" "$cfg"
      changed=1
      say "updated $CONFIG"
    else
      put_file "$config_src" "$CONFIG.new" 0644
      warn "$CONFIG was changed on this node: kept it; the new one is $CONFIG.new (diff them, or pass --force-config)"
      new_sha=$(old_config_sha "$CONFIG")
      [ -n "$new_sha" ] || new_sha=none
    fi
  fi
  manifest_add "c $CONFIG $new_sha"

  manifest_tmp=$destdir$MANIFEST.quark-new
  printf '%s' "$entries" >"$manifest_tmp"
  mv -f "$manifest_tmp" "$destdir$MANIFEST"

  if systemd_wanted; then
    # Restart only for a change or a stopped quarkd: re-running the installer
    # (a DaemonSet pod that restarts) leaves a healthy quarkd alone.
    if [ "$changed" -eq 1 ] || ! systemctl_host is-active --quiet quarkd.service; then
      systemctl_host daemon-reload
      systemctl_host enable quarkd.service
      systemctl_host restart quarkd.service
      say "quarkd (re)started: $(systemctl_host is-active quarkd.service 2>&1 || true)"
    else
      say "quarkd running and nothing changed: not restarted"
    fi
  else
    say "systemd not touched; on the node: systemctl daemon-reload && systemctl enable --now quarkd"
  fi
  say "done: point kubelet at --container-runtime-endpoint=unix:///run/quark/quark.sock"
}

# Quark's own directories, whoever made them and whatever they hold (also
# after an earlier plain --uninstall kept them).
purge_dirs() {
  for _pd in "$ETC_DIR" "$STATE_DIR" "$LOG_DIR" "$LIB_DIR"; do
    if [ -e "$destdir$_pd" ]; then
      rm -rf "$destdir$_pd"
      say "purged $_pd"
    fi
  done
}

do_uninstall() {
  if [ -n "$destdir" ]; then
    [ -d "$destdir" ] || die "no directory $destdir"
    destdir=$(cd "$destdir" && pwd)
  fi
  if [ ! -f "$destdir$MANIFEST" ]; then
    if [ "$purge" -eq 1 ]; then
      purge_dirs
    else
      say "nothing to remove: no $MANIFEST under '${destdir:-/}'"
    fi
    return 0
  fi
  if systemd_wanted; then
    systemctl_host disable --now quarkd.service || warn "could not stop quarkd"
    systemctl_host daemon-reload || true
    warn "running pods keep their quark-sandbox processes (KillMode=process); delete them through kubelet"
  fi
  dirs=
  while read -r kind path sum; do
    case "$kind" in
      f)
        rm -f "$destdir$path"
        say "removed $path"
        ;;
      c)
        [ -f "$destdir$path" ] || continue
        if [ "$purge" -eq 1 ] || [ "$(sha "$destdir$path")" = "$sum" ]; then
          rm -f "$destdir$path"
          say "removed $path"
        else
          warn "kept $path: changed since install (--purge removes it)"
        fi
        ;;
      d) dirs="$path
$dirs" ;;
    esac
  done <"$destdir$MANIFEST"
  rm -f "$destdir$MANIFEST"
  [ "$purge" -eq 1 ] && purge_dirs
  # Directories last, deepest first (reverse of creation order).
  printf '%s' "$dirs" | while read -r path; do
    [ -n "$path" ] || continue
    [ -d "$destdir$path" ] || continue
    if rmdir "$destdir$path" 2>/dev/null; then
      continue
    fi
    case "$path" in
      "$STATE_DIR"|"$LOG_DIR"|"$ETC_DIR")
        warn "kept $path: not empty (config, state, images or logs; --uninstall --purge removes it)"
        ;;
      *) say "kept $path: not empty" ;;
    esac
  done
  say "uninstalled"
}

case "$mode" in
  check)
    run_checks
    ;;
  install) do_install ;;
  uninstall) do_uninstall ;;
esac
