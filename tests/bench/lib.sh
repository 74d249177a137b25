# shellcheck shell=bash
# Set-up shared by the benchmark scripts (sourced, not run).

# bench_private_cgroup_ns MARKER SCRIPT [ARGS...]
# crun refuses this host's hybrid cgroup layout: re-run SCRIPT in a private
# mount namespace with /sys/fs/cgroup/unified unmounted (the host's mounts stay
# as they are). MARKER names the environment variable that says "already
# inside"; call it first thing, with "$0" "$@".
bench_private_cgroup_ns() {
  local marker=$1
  shift
  if [ -z "${!marker:-}" ] && [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then
    exec unshare -m --propagation private env "$marker=1" bash "$@"
  fi
  if [ -n "${!marker:-}" ]; then umount /sys/fs/cgroup/unified 2>/dev/null; fi
  return 0
}

# bench_copy_bin ROOT BIN...: each BIN (symbolic links followed) at its own
# path under ROOT, with the shared libraries ldd lists for it.
bench_copy_bin() {
  local r=$1 b l
  shift
  for b in "$@"; do
    mkdir -p "$r$(dirname "$b")"
    cp -L "$b" "$r$b"
    for l in $(ldd "$b" 2>/dev/null | grep -o '/[^ ]*'); do
      mkdir -p "$r$(dirname "$l")"
      cp -L "$l" "$r$l"
    done
  done
}

# bench_server_root ROOT: a new ROOT (removed first) for the pod benchmark's
# servers: bin proc sys dev tmp (1777) etc www run, nginx's var/log/nginx and
# var/lib/nginx, and an /etc/passwd and /etc/group with root and nobody.
bench_server_root() {
  rm -rf "$1"
  mkdir -p "$1"/{bin,proc,sys,dev,tmp,etc,www,var/log/nginx,var/lib/nginx,run}
  chmod 1777 "$1/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$1/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$1/etc/group"
}

# bench_sandbox_build WORKDIR [BUILD_DIR]
# Sets `build` and `sbx`: BUILD_DIR as given, else a Release build of this
# checkout's quark-sandbox made in WORKDIR/build. Dies (via the caller's `die`)
# when there is no quark-sandbox.
bench_sandbox_build() {
  local work=$1 src
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  if [ $# -ge 2 ]; then
    build=$2
  else
    build=$work/build
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null || die "cmake failed"
    cmake --build "$build" --target quark-sandbox -j"$(nproc)" >/dev/null || die "build failed"
  fi
  sbx=$build/sandbox/quark-sandbox
  [ -x "$sbx" ] || die "no $sbx"
}
