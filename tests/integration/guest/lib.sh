# shellcheck shell=bash
# Set-up shared by the guest test scripts (sourced, not run). They run
# programs inside `quark-sandbox run` on a rootfs built here and count
# failures; each script keeps its own checks.

# guest_setup NAME SANDBOX: skip (77) without /dev/kvm, FAIL without the
# sandbox binary; makes $work (/tmp/quark-NAME.XXXXXX), removed at exit
# together with the namespace of guest_netns and whatever the script's
# guest_on_exit function (if it defines one) cleans up. Sets fails=0.
guest_setup() {
  if [ ! -e /dev/kvm ]; then
    echo "skip: /dev/kvm is absent"
    exit 77
  fi
  if [ ! -x "$2" ]; then
    echo "FAIL: quark-sandbox is not built ($2)"
    exit 1
  fi
  work=$(mktemp -d "/tmp/quark-$1.XXXXXX")
  fails=0
  guest_ns=
  trap guest_cleanup EXIT
}

guest_cleanup() {
  if declare -F guest_on_exit >/dev/null; then guest_on_exit; fi
  if [ -n "${guest_ns:-}" ]; then ip netns del "$guest_ns" 2>/dev/null; fi
  rm -rf "$work"
}

# guest_split_mode MODE: MODE without a "-ring0" suffix in $mode, and in
# $SBX_BASE the flag that suffix asks for (--no-kernel-worker: the kernel in
# ring 0, the hardware-KVM path) or nothing.
guest_split_mode() {
  mode=${1%-ring0}
  SBX_BASE=
  if [ "$mode" != "$1" ]; then SBX_BASE=--no-kernel-worker; fi
}

# guest_netns PREFIX: a network namespace PREFIX<pid> with its loopback up,
# for tests whose traffic must stay off the host's; sets $ns. Skips (77)
# when not root or without ip(8).
guest_netns() {
  [ "$(id -u)" = 0 ] || { echo "skip: needs root for a network namespace"; exit 77; }
  command -v ip >/dev/null || { echo "skip: ip(8) is absent"; exit 77; }
  ns=$1$$
  ip netns add "$ns" || { echo "skip: cannot create a network namespace"; exit 77; }
  guest_ns=$ns
  ip -n "$ns" link set lo up
}
nsx() { ip netns exec "$ns" "$@"; }

# guest_fixture ROOT PROGDIR: the guest tests' rootfs (busybox, the test
# programs of PROGDIR, /etc files; tests/integration/guest/mkfixture.sh).
guest_fixture() {
  "$(dirname "${BASH_SOURCE[0]}")/mkfixture.sh" "$1" "$2"
}

# guest_python ROOT: this host's python3.11 (dynamic: with its libraries)
# and its standard library (less test/ and site-packages) copied into ROOT
# as /bin/python3; returns 1 (nothing copied) without python3.11.
guest_python() {
  local py=/usr/bin/python3 l
  [ -x "$py" ] && [ -d /usr/lib/python3.11 ] || return 1
  py=$(readlink -f "$py")
  mkdir -p "$1/bin" "$1/usr/lib"
  cp "$py" "$1/bin/python3"
  for l in $(ldd "$py" | grep -o '/[^ ]*'); do
    mkdir -p "$1$(dirname "$l")"
    cp -L "$l" "$1$l"
  done
  cp -a /usr/lib/python3.11 "$1/usr/lib/"
  rm -rf "$1/usr/lib/python3.11/test" "$1/usr/lib/python3.11/site-packages"
}

fail() {
  echo "FAIL: $*"
  fails=$((fails + 1))
}

# run TIMEOUT ARGS...: ARGS in `quark-sandbox run` on $root with $kernel
# ($sbx, $SBX_BASE and $SBX_ARGS add flags); sets $out, $err and $rc.
run() {
  local t=$1
  shift
  # shellcheck disable=SC2086 # SBX_BASE and SBX_ARGS are flag lists
  timeout "$t" "$sbx" run --rootfs "$root" --kernel "$kernel" ${SBX_BASE:-} ${SBX_ARGS:-} -- "$@" \
    </dev/null >"$work/out" 2>"$work/err"
  rc=$?
  out=$(cat "$work/out")
  err=$(cat "$work/err")
}

# expect NAME WANT_RC WANT_STDOUT ARGS...: exact stdout and status, within
# EXPECT_TIMEOUT seconds (120).
expect() {
  local name=$1 want_rc=$2 want=$3
  shift 3
  run "${EXPECT_TIMEOUT:-120}" "$@"
  if [ "$rc" != "$want_rc" ]; then
    fail "$name: exit $rc, want $want_rc [$out] (stderr: ${err:0:600})"
  elif [ "$out" != "$want" ]; then
    fail "$name: stdout [$out], want [$want]"
  else
    echo "ok: $name"
  fi
}

# guest_done LABEL: the summary line; exits 1 after failures, else 0.
guest_done() {
  if [ "$fails" -ne 0 ]; then
    echo "$1: $fails failure(s)"
    exit 1
  fi
  echo "$1: all passed"
  exit 0
}
