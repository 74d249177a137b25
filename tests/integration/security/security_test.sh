#!/usr/bin/env bash
# The pod's security settings inside the guest (see CMakeLists.txt).
# Usage: security_test.sh QUARK_SANDBOX QKERNEL T_SEC SECCOMP_TOOL WORKDIR
set -uo pipefail
sbx=$1 kernel=$2 prog=$3 tool=$4 work=$(realpath -m "$5")/security.work
if [ ! -w /dev/kvm ]; then echo "SKIP: no /dev/kvm"; exit 77; fi
if [ "$(id -u)" != 0 ]; then echo "SKIP: the sandbox's jail needs root"; exit 77; fi
rm -rf "$work" && mkdir -p "$work/root/bin" "$work/root/tmp" || exit 1
cp "$prog" "$work/root/bin/t_sec" || exit 1
fail=0
run() { # run NAME EXPECT-REGEX SANDBOX-ARGS... -- GUEST-ARGS...
  local name=$1 want=$2
  shift 2
  local t0=$(date +%s%N)
  timeout 120 "$sbx" run --rootfs "$work/root" --kernel "$kernel" "$@" </dev/null >"$work/$name.out" 2>"$work/$name.err"
  local rc=$? ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  if [ $rc -eq 0 ] && grep -Eq "$want" "$work/$name.out"; then
    echo "ok   $name (${ms} ms): $(grep -E "$want" "$work/$name.out" | head -1)"
  else
    echo "FAIL $name (rc $rc, ${ms} ms)"; cat "$work/$name.out"; tail -5 "$work/$name.err"; fail=1
  fi
}
# 1. seccomp, credentials and capabilities from inside (run: uid 0, every capability)
run all 't_sec all: [0-9]+ checks ok' -- /bin/t_sec all
# 2. the host's settings: user, groups, capabilities, no_new_privs
run user 't_sec user: [0-9]+ checks ok' --user 1000:1000 --groups 5,6 --caps 1 --no-new-privs -- /bin/t_sec user
# 3. RuntimeDefault compiled on the host (containerd's profile, Kubernetes' default capabilities)
"$tool" runtimedefault 0xa80425fb "$work/rd.bpf" >"$work/rd.txt" || { echo "FAIL: seccomp_tool"; exit 1; }
echo "RuntimeDefault: $(cat "$work/rd.txt")"
run runtimedefault 't_sec runtimedefault: [0-9]+ checks ok' --caps a80425fb --seccomp-bpf "$work/rd.bpf" -- /bin/t_sec runtimedefault
# 4. Localhost: an OCI profile that denies getppid with ERRNO(42)
cat >"$work/profile.json" <<'JSON'
{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
 "syscalls": [{"names": ["unshare", "keyctl", "add_key", "bpf", "mount"], "action": "SCMP_ACT_ERRNO"},
              {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}
JSON
"$tool" "localhost:$work/profile.json" 0xa80425fb "$work/lh.bpf" >/dev/null || { echo "FAIL: localhost profile"; fail=1; }
run localhost 't_sec runtimedefault: [0-9]+ checks ok' --caps a80425fb --seccomp-bpf "$work/lh.bpf" -- /bin/t_sec runtimedefault
# bad input: a truncated program is refused by the sandbox, a bad profile by the compiler
head -c 12 "$work/rd.bpf" >"$work/bad.bpf"
if timeout 60 "$sbx" run --rootfs "$work/root" --kernel "$kernel" --seccomp-bpf "$work/bad.bpf" -- /bin/t_sec all >/dev/null 2>&1; then
  echo "FAIL: a 12-byte program was accepted"; fail=1
else echo "ok   truncated program refused"; fi
echo '{"defaultAction": "SCMP_ACT_NOPE"}' >"$work/bad.json"
if "$tool" "localhost:$work/bad.json" 0 "$work/x.bpf" 2>"$work/bad.err"; then
  echo "FAIL: a bad profile compiled"; fail=1
else echo "ok   bad profile refused: $(cat "$work/bad.err")"; fi
# 5. readOnlyRootFilesystem: writes to the root EROFS, /dev/shm and devices writable
run rofs 't_sec rofs: [0-9]+ checks ok' --read-only-root -- /bin/t_sec rofs
run rwfs 't_sec rwfs: [0-9]+ checks ok' -- /bin/t_sec rwfs
if [ -n "$(ls -A "$work/root/tmp")" ] || [ "$(ls "$work/root")" != "bin
tmp" ]; then
  echo "FAIL: the read-only root changed: $(ls -R "$work/root")"; fail=1
fi
# 6. cost of the hook: getpid with and without a filter (figures)
run bench 'with a' -- /bin/t_sec bench 2000
grep getpid "$work/bench.out"
[ $fail = 0 ] && rm -rf "$work"
exit $fail
