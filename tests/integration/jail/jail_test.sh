#!/usr/bin/env bash
# shellcheck disable=SC2015 # "check && ok ... || bad ...": ok never fails
# The jail of quark-sandbox on real KVM, as root (jail_run = quark-sandbox
# run with the jail hooks, see jail_run.c):
# - a running jailed sandbox shows Seccomp 2, NoNewPrivs 1, the reduced
#   capability sets, its own pid/ipc/mount namespaces, the pod cgroup with
#   its limits, and a root without the host's files (no /etc/shadow);
# - a guest request that makes the VMM attempt syscalls outside the
#   allowlist fails that call with EPERM (logged once per number) while the
#   guest program and the VM go on;
# - exit statuses and termination signals still reach the caller;
# - the guest test programs, busybox applets, the hostile program, fork/exec
#   (procs) and sh scripts (shell) pass
#   under the jail (tests/integration/guest/guest_test.sh with jail_run).
# - quark-sandbox run itself is jailed by default (--no-jail is not).
# Usage: jail_test.sh JAIL_RUN QKERNEL WORKDIR SOURCE_DIR [QUARK_SANDBOX]
set -uo pipefail
jr=$1 kernel=$2 work=$3 src=$4 qsbx=${5:-}
. "$(dirname "$0")/../sandbox/lib.sh"
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: the jail needs root (namespaces, pivot_root, cgroups)"
  exit 77
fi
need_kvm
busybox=/bin/busybox
if ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
  echo "FAIL: busybox-static is not installed (deploy/deps.sh test)"
  exit 1
fi

fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

root=$work/rootfs
rm -rf "$root"
busybox_rootfs "$root" "$busybox" sh echo cat true sleep
cp "$(dirname "$jr")/t_jail_probe" "$root/bin/t_jail_probe"
run=("$jr" run --rootfs "$root" --kernel "$kernel" --memory 128)

# ---- a running sandbox ----
cg="quark-jail-test"
pod="t$$"
"${run[@]}" --jail cgroup-parent=$cg --jail pod-id=$pod --jail memory=300M --jail cpus=0.5 --jail pids=64 \
  -- /bin/busybox sleep 20 >"$work/sleep.out" 2>"$work/sleep.err" &
sup=$!
vmm=
for _ in $(seq 1 100); do
  vmm=$(pgrep -P "$sup" | head -1)
  [ -n "$vmm" ] && grep -q '^Seccomp:[[:space:]]*2' "/proc/$vmm/status" 2>/dev/null && break
  sleep 0.1
done
if [ -z "$vmm" ]; then
  bad "no jailed VMM process under the supervisor $sup"
  sed 's/^/  /' "$work/sleep.err"
else
  st=/proc/$vmm/status
  grep '^\(Seccomp\|NoNewPrivs\|Cap\(Inh\|Prm\|Eff\|Bnd\|Amb\)\):' "$st" | sed 's/^/  /'
  grep -q '^Seccomp:[[:space:]]*2$' "$st" && ok "Seccomp: 2 (filter mode) in $st" || bad "Seccomp is not 2"
  grep -q '^NoNewPrivs:[[:space:]]*1$' "$st" && ok "NoNewPrivs: 1" || bad "NoNewPrivs is not 1"
  # CAP_CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID: bits 0-4.
  for c in CapEff CapPrm CapBnd; do
    v=$(awk -v k="$c:" '$1 == k {print $2}' "$st")
    [ "$v" = "000000000000001f" ] && ok "$c $v (file access only)" || bad "$c is $v, want 000000000000001f"
  done
  for ns in pid ipc mnt; do
    [ "$(readlink "/proc/$vmm/ns/$ns")" != "$(readlink "/proc/self/ns/$ns")" ] && ok "own $ns namespace" ||
      bad "$ns namespace is the host's"
  done
  # The jail's root: a read-only tmpfs with only what the VMM needs.
  if [ -e "/proc/$vmm/root/etc/shadow" ] || [ -e "/proc/$vmm/root/etc" ]; then
    bad "the jail's root shows the host's /etc"
  else
    ok "no /etc (nor /etc/shadow) in the jail's root: $(cd "/proc/$vmm/root" && echo *)"
  fi
  [ -c "/proc/$vmm/root/dev/kvm" ] && ok "/dev/kvm in the jail" || bad "/dev/kvm missing in the jail"
  # The VMM tests for it to pick the PVM-style paths (3x per syscall here).
  if [ -d /sys/module/kvm_pvm ]; then
    [ -d "/proc/$vmm/root/sys/module/kvm_pvm" ] && ok "/sys/module/kvm_pvm visible in the jail" ||
      bad "/sys/module/kvm_pvm missing in the jail (the guest would take the slow path)"
  fi
  [ -d "/proc/$vmm/root$root/bin" ] && ok "container root bound at its host path" || bad "container root missing"
  if touch "/proc/$vmm/root/x" 2>/dev/null; then bad "the jail's root is writable"; else ok "the jail's root is read-only"; fi
  # The pod cgroup and its limits (cgroup v2, or the v1 hierarchies).
  if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
    d=/sys/fs/cgroup/$cg/$pod
    mem=$(cat $d/memory.max 2>/dev/null) cpu=$(cat $d/cpu.max 2>/dev/null) pids=$(cat $d/pids.max 2>/dev/null)
    procs=$(cat $d/cgroup.procs 2>/dev/null)
    want_cpu="50000 100000"
  else
    mem=$(cat /sys/fs/cgroup/memory/$cg/$pod/memory.limit_in_bytes 2>/dev/null)
    cpu="$(cat /sys/fs/cgroup/cpu/$cg/$pod/cpu.cfs_quota_us 2>/dev/null) $(cat /sys/fs/cgroup/cpu/$cg/$pod/cpu.cfs_period_us 2>/dev/null)"
    pids=$(cat /sys/fs/cgroup/pids/$cg/$pod/pids.max 2>/dev/null)
    procs=$(cat /sys/fs/cgroup/memory/$cg/$pod/cgroup.procs 2>/dev/null)
    want_cpu="50000 100000"
  fi
  [ "$mem" = $((300 << 20)) ] && ok "cgroup memory limit $mem" || bad "cgroup memory limit '$mem'"
  [ "$cpu" = "$want_cpu" ] && ok "cgroup cpu quota/period $cpu" || bad "cgroup cpu '$cpu'"
  [ "$pids" = 64 ] && ok "cgroup pids limit $pids" || bad "cgroup pids '$pids'"
  echo "$procs" | grep -qx "$vmm" && ok "the VMM is in the pod cgroup" || bad "VMM $vmm not in the pod cgroup ($procs)"
fi
# A termination signal to the supervisor ends the jailed VMM and is
# reported as that signal (143 = 128 + SIGTERM).
kill -TERM "$sup"
wait "$sup"
rc=$?
[ "$rc" = 143 ] && ok "SIGTERM reaches the jailed VMM (status $rc)" || bad "SIGTERM: status $rc, want 143"
if [ -n "$vmm" ] && [ -d "/proc/$vmm" ]; then bad "jailed VMM $vmm still alive"; fi
if [ -d "/sys/fs/cgroup/memory/$cg/$pod" ] || [ -d "/sys/fs/cgroup/$cg/$pod" ]; then
  bad "pod cgroup left behind"
else
  ok "pod cgroup removed after exit"
fi
rmdir /sys/fs/cgroup/{memory,cpu,pids}/$cg /sys/fs/cgroup/$cg 2>/dev/null

# ---- quark-sandbox itself ----
if [ -n "$qsbx" ]; then
  for mode in jail no-jail; do
    flag=()
    [ $mode = no-jail ] && flag=(--no-jail)
    "$qsbx" run --rootfs "$root" --kernel "$kernel" --memory 128 "${flag[@]}" -- /bin/busybox sleep 10 \
      >/dev/null 2>"$work/qsbx.err" &
    qs=$!
    target=$qs
    for _ in $(seq 1 100); do
      [ $mode = jail ] && target=$(pgrep -P "$qs" | head -1)
      [ -n "$target" ] && grep -q '^State:' "/proc/$target/status" 2>/dev/null &&
        [ -e "/proc/$target/fd/3" ] && break
      sleep 0.1
    done
    sleep 0.5
    sc=$(awk '$1 == "Seccomp:" {print $2}' "/proc/$target/status" 2>/dev/null)
    if [ $mode = jail ]; then
      [ "$sc" = 2 ] && ok "quark-sandbox run: Seccomp: $sc in /proc/$target/status" ||
        { bad "quark-sandbox run: Seccomp '$sc'"; sed 's/^/  /' "$work/qsbx.err"; }
    else
      [ "$sc" = 0 ] && ok "quark-sandbox run --no-jail: Seccomp: 0" || bad "quark-sandbox run --no-jail: Seccomp '$sc'"
    fi
    kill -TERM "$qs"
    wait "$qs" 2>/dev/null
  done
  # A relative rootfs still resolves: the jail keeps the working directory.
  out=$(cd "$work" && timeout 60 "$qsbx" run --rootfs rootfs --kernel "$kernel" --memory 128 -- /bin/busybox echo rel 2>/dev/null)
  [ "$out" = rel ] && ok "relative --rootfs under the jail" || bad "relative --rootfs: $out"
fi

# ---- exit status ----
out=$(timeout 60 "${run[@]}" -- /bin/busybox sh -c 'echo jailed; exit 42' 2>"$work/err")
rc=$?
[ "$rc" = 42 ] && [ "$out" = jailed ] && ok "exit status 42 and stdout through the jail" ||
  { bad "exit status $rc, stdout '$out'"; sed 's/^/  /' "$work/err"; }
out=$(printf 'in\n' | timeout 60 "${run[@]}" -- /bin/busybox cat 2>"$work/err")
[ "$out" = in ] && ok "stdin through the jail" || bad "stdin: '$out'"

# ---- a blocked host syscall fails the call, nothing else ----
out=$(timeout 60 "${run[@]}" -- /bin/t_jail_probe 2>"$work/probe.err")
rc=$?
sed 's/^/  /' "$work/probe.err" | grep -v 'unimplemented syscall'
if [ "$rc" = 3 ] && echo "$out" | grep -q '^probe: Operation not permitted$' &&
  echo "$out" | grep -q '^after: getrandom 16, read 8192$'; then
  ok "the guest's crafted request failed with EPERM and the guest went on"
else
  bad "probe: status $rc, stdout: $out"
fi
grep -q 'jail: blocked host syscall 41 ' "$work/probe.err" && ok "socket (41) blocked and logged" ||
  bad "socket not logged as blocked"
[ "$(grep -c 'blocked host syscall 41 ' "$work/probe.err")" = 1 ] && ok "logged once" || bad "logged more than once"
grep -q 'open /etc/shadow No such file' "$work/probe.err" && ok "the VMM cannot open /etc/shadow" ||
  bad "the VMM opened /etc/shadow"
# The same request without the jail succeeds: the hook does reach the host.
out=$(timeout 60 "${run[@]}" --no-jail -- /bin/t_jail_probe 2>/dev/null)
echo "$out" | grep -q '^probe: ok$' && ok "without the jail the same request succeeds" || bad "no-jail probe: $out"

# ---- the guest programs under the jail ----
progs=$(dirname "$jr")/../guest/progs
if [ -d "$progs" ]; then
  for mode in progs-glibc busybox hostile procs shell; do
    if "$src/tests/integration/guest/guest_test.sh" "$mode" "$jr" "$kernel" "$progs" >"$work/guest.$mode" 2>&1; then
      ok "guest $mode under the jail ($(grep -c '^ok' "$work/guest.$mode") checks)"
    else
      bad "guest $mode under the jail"
      grep -v '^ok' "$work/guest.$mode" | tail -20 | sed 's/^/  /'
    fi
  done
else
  bad "guest test programs not built ($progs)"
fi

[ "$fails" = 0 ] && echo "all passed" || echo "$fails failed"
[ "$fails" = 0 ]
