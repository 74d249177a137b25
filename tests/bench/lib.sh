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
