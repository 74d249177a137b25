#!/usr/bin/env bash
# Builds the test images as OCI image layouts from Debian packages on this
# machine, with umoci. Usage:
#   tests/images/build.sh OUTDIR [name...]
# Each image lands in OUTDIR/<name> (an OCI layout, tag "latest"); one that is
# already there from the same version of this script is kept, so calling it
# from every test costs nothing after the first. Names (default: all but big):
#   busybox     busybox-static, /bin/sh and the applet links; cmd /bin/sh
#   layered     6 layers: whiteouts of a file and a directory, an opaque
#               directory, hard links, symlinks, a setuid file owned by 1000
#   redis       redis-server with the libraries it needs, on busybox
#   nginx       Debian's nginx (nginx-light on bookworm is nginx plus one module)
#               with its libraries, on busybox: one process (master_process
#               off), port 80, /usr/share/nginx/html/index.html
#   multiarch   an image index with linux/arm64 (listed first) and linux/amd64
#   big         ~110 MB compressed in 4 layers of Debian files (the pull benchmark)
# Push one with: skopeo copy --dest-tls-verify=false oci:OUTDIR/busybox:latest
#                docker://127.0.0.1:PORT/library/busybox:latest   (--all for multiarch)
set -euo pipefail
out=${1:?usage: build.sh OUTDIR [name...]}
shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(busybox layered redis multiarch)
here=$(cd "$(dirname "$0")" && pwd)
stamp=$(sha256sum "$here/build.sh" | cut -c1-16)
mkdir -p "$out"
out=$(cd "$out" && pwd)
# Tests of several modules may build into one OUTDIR at once: one at a time.
exec 9>"$out/.lock"
flock 9

for tool in umoci busybox python3; do
  command -v $tool >/dev/null || { echo "build.sh: $tool missing (deploy/deps.sh test)" >&2; exit 3; }
done
bb=$(command -v busybox)
case "$(file -b "$bb" 2>/dev/null || echo static)" in *dynamic*) [ -x /bin/busybox ] && bb=/bin/busybox ;; esac

# busybox rootfs skeleton into $1
busybox_root() {
  local r=$1
  mkdir -p "$r"/{bin,etc,tmp,root,proc,sys,dev}
  cp "$bb" "$r/bin/busybox"
  for a in $("$bb" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"
  done
  chmod 1777 "$r/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
}

new_layout() {   # dir [tag]
  umoci init --layout "$1" >/dev/null
  umoci new --image "$1:${2:-latest}" >/dev/null
}

# add_dir IMAGE:TAG SRC TARGET: one layer with SRC's contents at TARGET.
# (unpack + repack: umoci 0.4.7's "insert" writes truncated layer tars.)
add_dir() {
  local b; b=$(mktemp -d "$out/.bundle.XXXXXX")
  umoci unpack --image "$1" "$b/b" >/dev/null
  mkdir -p "$b/b/rootfs$3"
  cp -a "$2/." "$b/b/rootfs$3/"
  umoci repack --image "$1" "$b/b" >/dev/null
  rm -rf "$b"
}

# del_path IMAGE:TAG PATH: one layer that deletes PATH (a whiteout).
del_path() {
  local b; b=$(mktemp -d "$out/.bundle.XXXXXX")
  umoci unpack --image "$1" "$b/b" >/dev/null
  rm -rf "$b/b/rootfs$2"
  umoci repack --image "$1" "$b/b" >/dev/null
  rm -rf "$b"
}

# opaque_dir IMAGE:TAG SRC TARGET: one layer that replaces directory TARGET
# by SRC's files (an opaque directory: .wh..wh..opq).
opaque_dir() {
  local t; t=$(mktemp "$out/.layer.XXXXXX")
  python3 - "$2" "${3#/}" "$t" <<'PY'
import os, sys, tarfile
src, target, out = sys.argv[1:]
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    t.add(src, target, recursive=False)
    wh = tarfile.TarInfo(target + "/.wh..wh..opq")
    t.addfile(wh)
    for n in sorted(os.listdir(src)):
        t.add(os.path.join(src, n), target + "/" + n)
PY
  umoci raw add-layer --image "$1" "$t" >/dev/null
  rm -f "$t"
}

build_busybox() {
  local d=$1 w=$2
  busybox_root "$w/root"
  new_layout "$d"
  add_dir "$d:latest" "$w/root" /
  umoci config --image "$d:latest" --os linux --architecture amd64 \
    --config.cmd /bin/sh --config.env PATH=/usr/local/bin:/usr/bin:/bin \
    --config.workingdir / --config.label org.quark.test=busybox >/dev/null
}

build_layered() {
  local d=$1 w=$2
  busybox_root "$w/root"
  mkdir -p "$w/data/dir1" "$w/data/opq" "$w/opq" "$w/links"
  echo a > "$w/data/a"; echo b > "$w/data/b"; echo keep > "$w/data/keep"
  echo x > "$w/data/dir1/x"; echo y > "$w/data/dir1/y"
  echo old1 > "$w/data/opq/old1"; echo old2 > "$w/data/opq/old2"
  echo new > "$w/opq/new"
  echo hello > "$w/links/hl1"
  ln "$w/links/hl1" "$w/links/hl2"
  ln -s hl1 "$w/links/sym"
  ln -s /bin/busybox "$w/links/abs"
  ln -s /nowhere "$w/links/dangling"
  echo suid > "$w/links/suid"
  chown 1000:1000 "$w/links/suid"
  chmod 4755 "$w/links/suid"
  new_layout "$d"
  add_dir "$d:latest" "$w/root" /               # 1 busybox
  add_dir "$d:latest" "$w/data" /data           # 2 files and dirs
  del_path "$d:latest" /data/a                  # 3 file whiteout
  del_path "$d:latest" /data/dir1               # 4 directory whiteout
  opaque_dir "$d:latest" "$w/opq" /data/opq     # 5 opaque dir
  add_dir "$d:latest" "$w/links" /links         # 6 links, setuid
  umoci config --image "$d:latest" --os linux --architecture amd64 \
    --config.cmd /bin/sh --config.user 1000:1000 --config.workingdir /data \
    --config.env PATH=/bin --config.env LAYERED=1 >/dev/null
}

build_redis() {
  local d=$1 w=$2
  command -v redis-server >/dev/null || { echo "build.sh: redis-server missing (deploy/deps.sh test)" >&2; exit 3; }
  busybox_root "$w/root"
  local bin; bin=$(readlink -f "$(command -v redis-server)")
  mkdir -p "$w/redis/usr/bin" "$w/redis/data"
  cp "$bin" "$w/redis/usr/bin/redis-server"
  for lib in $(ldd "$bin" | awk '/=>/ {print $3} /^\t\/lib/ {print $1}'); do
    mkdir -p "$w/redis$(dirname "$lib")"
    cp -L "$lib" "$w/redis$lib"
  done
  # merged /usr: the loader path is /lib64 -> usr/lib64 on Debian
  if [ -d "$w/redis/lib" ]; then mkdir -p "$w/redis/usr"; cp -a "$w/redis/lib" "$w/redis/usr/"; rm -rf "$w/redis/lib"; ln -s usr/lib "$w/redis/lib"; fi
  if [ -d "$w/redis/lib64" ]; then cp -a "$w/redis/lib64" "$w/redis/usr/"; rm -rf "$w/redis/lib64"; ln -s usr/lib64 "$w/redis/lib64"; fi
  echo 'redis:x:999:999::/data:/bin/false' >> "$w/root/etc/passwd"
  echo 'redis:x:999:' >> "$w/root/etc/group"
  chown 999:999 "$w/redis/data"
  new_layout "$d"
  add_dir "$d:latest" "$w/root" /
  add_dir "$d:latest" "$w/redis" /
  umoci config --image "$d:latest" --os linux --architecture amd64 \
    --config.entrypoint /usr/bin/redis-server --config.cmd --protected-mode --config.cmd no \
    --config.exposedports 6379/tcp --config.workingdir /data \
    --config.env PATH=/usr/bin:/bin --config.label org.quark.test=redis >/dev/null
}

build_nginx() {
  local d=$1 w=$2
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "build.sh: nginx missing (deploy/deps.sh test)" >&2; exit 3; }
  busybox_root "$w/root"
  local bin=/usr/sbin/nginx
  mkdir -p "$w/nginx/usr/sbin" "$w/nginx/etc/nginx" "$w/nginx/usr/share/nginx/html" \
    "$w/nginx/var/log/nginx" "$w/nginx/var/lib/nginx" "$w/nginx/run"
  cp "$bin" "$w/nginx/usr/sbin/nginx"
  for lib in $(ldd "$bin" | awk '/=>/ {print $3} /^\t\/lib/ {print $1}'); do
    mkdir -p "$w/nginx$(dirname "$lib")"
    cp -L "$lib" "$w/nginx$lib"
  done
  if [ -d "$w/nginx/lib" ]; then mkdir -p "$w/nginx/usr"; cp -a "$w/nginx/lib" "$w/nginx/usr/"; rm -rf "$w/nginx/lib"; ln -s usr/lib "$w/nginx/lib"; fi
  if [ -d "$w/nginx/lib64" ]; then cp -a "$w/nginx/lib64" "$w/nginx/usr/"; rm -rf "$w/nginx/lib64"; ln -s usr/lib64 "$w/nginx/lib64"; fi
  cp /etc/nginx/mime.types "$w/nginx/etc/nginx/mime.types"
  cat >"$w/nginx/etc/nginx/nginx.conf" <<'CONF'
daemon off;
master_process off;
worker_processes 1;
error_log stderr notice;
pid /run/nginx.pid;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on;
  server { listen 80; root /usr/share/nginx/html; index index.html; }
}
CONF
  echo 'hello from nginx' >"$w/nginx/usr/share/nginx/html/index.html"
  new_layout "$d"
  add_dir "$d:latest" "$w/root" /
  add_dir "$d:latest" "$w/nginx" /
  umoci config --image "$d:latest" --os linux --architecture amd64 \
    --config.entrypoint /usr/sbin/nginx --config.exposedports 80/tcp --config.workingdir / \
    --config.env PATH=/usr/sbin:/usr/bin:/bin --config.label org.quark.test=nginx >/dev/null
}

build_multiarch() {
  local d=$1 w=$2
  busybox_root "$w/root"
  mkdir -p "$w/arm/etc"; echo arm64 > "$w/arm/etc/arch"
  mkdir -p "$w/root/etc"; echo amd64 > "$w/root/etc/arch"
  new_layout "$d" amd64
  add_dir "$d:amd64" "$w/root" /
  umoci config --image "$d:amd64" --os linux --architecture amd64 --config.cmd /bin/sh >/dev/null
  umoci new --image "$d:arm64" >/dev/null
  add_dir "$d:arm64" "$w/arm" /
  umoci config --image "$d:arm64" --os linux --architecture arm64 --config.cmd /bin/sh >/dev/null
  python3 "$here/oci_index.py" "$d" latest arm64:linux/arm64 amd64:linux/amd64
}

build_big() {
  local d=$1 w=$2
  busybox_root "$w/root"
  new_layout "$d"
  add_dir "$d:latest" "$w/root" /
  add_dir "$d:latest" /usr/lib/gcc /usr/lib/gcc
  add_dir "$d:latest" /usr/share/perl /usr/share/perl
  add_dir "$d:latest" /usr/lib/python3.11 /usr/lib/python3.11
  umoci config --image "$d:latest" --os linux --architecture amd64 --config.cmd /bin/sh >/dev/null
}

for n in "${names[@]}"; do
  d="$out/$n"
  if [ -f "$d/.quark-stamp" ] && [ "$(cat "$d/.quark-stamp")" = "$stamp" ]; then
    continue
  fi
  type "build_$n" >/dev/null 2>&1 || { echo "build.sh: unknown image $n" >&2; exit 2; }
  rm -rf "$d" "$d.tmp" "$d.work"
  mkdir -p "$d.work"
  "build_$n" "$d.tmp" "$d.work"
  umoci gc --layout "$d.tmp" >/dev/null
  echo "$stamp" > "$d.tmp/.quark-stamp"
  rm -rf "$d.work"
  mv "$d.tmp" "$d"
  echo "build.sh: built $n ($(du -sh "$d" | cut -f1))" >&2
done
