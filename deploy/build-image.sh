#!/usr/bin/env bash
# Builds the node image of the Helm chart's installer DaemonSet as an OCI
# image layout with umoci (no Docker daemon), and optionally pushes it by tag
# with skopeo.
#
# The image holds:
#   /bin/busybox + applet links     the installer's shell and tools (static)
#   /opt/quark/bin/                 quarkd, quark, quark-sandbox, tsord (if built)
#   /opt/quark/qkernel.bin          the guest kernel
#   /opt/quark/lib/                 the binaries' shared libraries (their ldd
#                                   closure; install.sh copies all but glibc's
#                                   to the host's /usr/local/lib/quark/lib)
#   /lib64/ld-linux-x86-64.so.2     so that tsord runs inside the image too
#   /opt/quark/{install.sh,node-installer.sh,config.json,quarkd.service,runtimeclass.yaml}
#
# Usage: deploy/build-image.sh [options] BUILD_DIR
#   --layout DIR    OCI image layout to write (default ./quark-node-oci)
#   --tag TAG       image tag (default: the project version, 0.1.0)
#   --push REF      after building, copy to REF, e.g.
#                   docker://registry.example:5000/quark-node:0.1.0
#   --insecure      push over plain HTTP / without TLS verification
# Needs: umoci, skopeo (for --push), busybox-static; root is not required.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
layout=./quark-node-oci
tag=0.1.0
push=
tls=true
src=

die() { echo "build-image: error: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --layout) layout=$2; shift ;;
    --tag) tag=$2; shift ;;
    --push) push=$2; shift ;;
    --insecure) tls=false ;;
    -h|--help) usage ;;
    -*) echo "build-image: unknown option $1" >&2; usage ;;
    *) [ -z "$src" ] || usage; src=$1 ;;
  esac
  shift
done
[ -n "$src" ] || usage
[ -d "$src" ] || die "no build dir $src"
command -v umoci >/dev/null || die "umoci not found (Debian: umoci)"
[ -z "$push" ] || command -v skopeo >/dev/null || die "skopeo not found (Debian: skopeo)"
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || die "busybox not found (Debian: busybox-static)"
case "$(ldd "$busybox" 2>&1 || true)" in
  *'not a dynamic'*|*'statically linked'*) ;;
  *) die "$busybox is not static (Debian: busybox-static)" ;;
esac

find_artifact() {
  local name=$1 c
  for c in "$src/$name" "$src/bin/$name"; do
    [ -f "$c" ] && { echo "$c"; return 0; }
  done
  find "$src" -maxdepth 3 -type f -name "$name" ! -path '*/CMakeFiles/*' 2>/dev/null | head -n 1
}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/rootfs
mkdir -p "$root/bin" "$root/opt/quark/bin" "$root/opt/quark/lib" "$root/tmp" "$root/run" "$root/etc" \
  "$root/proc" "$root/sys" "$root/dev"
chmod 1777 "$root/tmp"

cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"

# Copies an ELF binary's shared libraries (as this machine resolves them).
copy_libs() {
  local bin=$1 line lib
  ldd "$bin" >/dev/null 2>&1 || return 0
  while read -r line; do
    case "$line" in
      *'=> /'*) lib=${line#*=> }; lib=${lib%% (*} ;;
      /*) lib=${line%% (*} ;;
      *) continue ;;
    esac
    [ -f "$lib" ] || continue
    case "${lib##*/}" in
      ld-linux*)
        mkdir -p "$root/lib64"
        cp -L "$lib" "$root/lib64/${lib##*/}"
        ;;
    esac
    cp -L "$lib" "$root/opt/quark/lib/${lib##*/}"
  done < <(ldd "$bin" 2>/dev/null)
}

found=
for name in quarkd quark quark-sandbox tsord; do
  b=$(find_artifact "$name")
  if [ -z "$b" ]; then
    case "$name" in
      quarkd|quark-sandbox) die "$name not found under $src" ;;
      *) echo "build-image: $name not built, left out" >&2; continue ;;
    esac
  fi
  install -m 0755 "$b" "$root/opt/quark/bin/$name"
  copy_libs "$b"
  found="$found $name"
done
kernel=$(find_artifact qkernel.bin)
[ -n "$kernel" ] || die "qkernel.bin not found under $src"
install -m 0644 "$kernel" "$root/opt/quark/qkernel.bin"
for f in install.sh node-installer.sh; do
  install -m 0755 "$here/$f" "$root/opt/quark/$f"
done
for f in config.json quarkd.service runtimeclass.yaml; do
  install -m 0644 "$here/$f" "$root/opt/quark/$f"
done

# Reproducible enough: fixed mtimes inside the layer.
find "$root" -exec touch -h -d '2000-01-01 00:00:00 UTC' {} +

rm -rf "$layout"
umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci insert --image "$layout:$tag" "$root" /
umoci config --image "$layout:$tag" \
  --os linux --architecture amd64 \
  --config.entrypoint /opt/quark/node-installer.sh \
  --config.env PATH=/bin:/opt/quark/bin \
  --config.env LD_LIBRARY_PATH=/opt/quark/lib \
  --config.workingdir / \
  --config.label org.opencontainers.image.title=quark-node \
  --config.label org.opencontainers.image.version="$tag" \
  --config.label org.opencontainers.image.description="Quark node installer: quarkd, quark-sandbox, qkernel.bin" \
  --history.created_by "deploy/build-image.sh" \
  --history.comment "quark node image"
umoci gc --layout "$layout"
echo "build-image: $layout:$tag with$found, qkernel.bin, installer"

if [ -n "$push" ]; then
  skopeo copy --dest-tls-verify="$tls" "oci:$layout:$tag" "$push"
  echo "build-image: pushed $push"
fi
