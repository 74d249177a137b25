#!/usr/bin/env bash
# Guest filesystem tests: t_fs (glibc, musl) and busybox applets inside
# quark-sandbox run on a fresh rootfs fixture (../guest/mkfixture.sh), then
# host-side checks that nothing outside the rootfs changed.
# Usage: guest_fs_test.sh MODE SANDBOX KERNEL FSPROGDIR GUESTPROGDIR
#   MODE: fs (kernel worker) | fs-ring0 (--no-kernel-worker)
# Skips (77) only when /dev/kvm is absent.
set -uo pipefail
mode=$1 sbx=$2 kernel=$3 fsprogs=$4 progs=$5
SBX_BASE=
[ "$mode" = fs-ring0 ] && SBX_BASE=--no-kernel-worker
here=$(cd "$(dirname "$0")" && pwd)

# shellcheck source=tests/integration/guest/lib.sh
. "$here/../guest/lib.sh"
guest_setup guestfs "$sbx"
[ -x "$fsprogs/t_fs.glibc" ] || { echo "FAIL: $fsprogs/t_fs.glibc is not built"; exit 1; }
root=$work/rootfs
guest_fixture "$root" "$progs" || exit 1
cp "$fsprogs"/t_fs.* "$root/bin/"
ln -s ../proc/self/mounts "$root/etc/mtab" # as in Debian images: a rootfs link into /proc
for a in touch mv ln chmod cp tar ps free pidof mkfifo readlink date cut rm mkdir stat df top \
  uptime sysctl nproc grep sort wc tr sed; do
  ln -sf busybox "$root/bin/$a"
done
# Outside the rootfs: what the guest must never reach.
outside=$work/outside
mkdir -p "$outside"
printf 'host secret\n' >"$outside/secret"
chmod 600 "$outside/secret"
touch -d '2000-01-01 00:00:00' "$outside/secret"
snap() { (cd "$outside" && find . -printf '%p %m %s %T@ %n %y\n' | sort && cat secret) | sha256sum; }
before=$(snap)
passwd_before=$(sha256sum /etc/passwd)

vs=glibc
[ -e "$fsprogs/t_fs.musl" ] && vs="$vs musl"
for v in $vs; do
  start=$(date +%s.%N)
  run 120 /bin/env T_FS_ENV=yes "/bin/t_fs.$v" "$outside" extra-arg
  end=$(date +%s.%N)
  echo "$out" | grep -v '^ok' | head -40
  if [ "$rc" != 0 ] || ! echo "$out" | grep -qE "^t_fs: [0-9]+ checks, 0 failures$"; then
    fail "t_fs.$v: exit $rc (stderr: ${err:0:800})"
  else
    echo "ok: t_fs.$v ($(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }') s)"
  fi
  # each run starts from the files the last one left: clear them
  rm -rf "$root/tmp/"* "$root/secret" "$root/r1moved" "$root/r1link" "$root/planted"
done

# t_hostattr: attributes that come with an open, closes that do not wait
# (guestkernel/fs/hostfs.c). The host appends to /tmp/hattr while the guest
# holds it open; more open/close rounds than the host has handles (4096)
# in kernel-worker mode.
cp "$fsprogs"/t_hostattr.* "$root/bin/"
rounds=5000
[ -n "$SBX_BASE" ] && rounds=300
for v in $vs; do
  rm -f "$root/tmp/hattr" "$root/tmp/hattr.done"
  : >"$work/out" # the last run's "hattr-ready" must not start the writer
  (for _ in $(seq 2400); do
    if grep -q hattr-ready "$work/out" 2>/dev/null; then
      printf 2345 >>"$root/tmp/hattr" && touch "$root/tmp/hattr.done"
      break
    fi
    sleep 0.05
  done) &
  hw=$!
  run 120 "/bin/t_hostattr.$v" $rounds
  kill "$hw" 2>/dev/null
  wait "$hw" 2>/dev/null
  if [ "$rc" != 0 ] || ! echo "$out" | grep -qE "^t_hostattr: [0-9]+ checks, 0 failures$"; then
    fail "t_hostattr.$v: exit $rc [$(echo "$out" | grep -v '^ok' | head -20)] (stderr: ${err:0:600})"
  else
    echo "ok: t_hostattr.$v ($rounds open/close rounds)"
  fi
  rm -f "$root/tmp/hattr" "$root/tmp/hattr.done"
done

# t_procroot: /proc/<pid>/root and cwd as magic links (the same checks
# pass natively as root)
cp "$fsprogs"/t_procroot.* "$root/bin/"
for v in $vs; do
  run 120 "/bin/t_procroot.$v"
  if [ "$rc" != 0 ] || ! echo "$out" | grep -qE "^t_procroot: [0-9]+ checks, 0 failures$"; then
    fail "t_procroot.$v: exit $rc [$(echo "$out" | grep -v '^ok' | head -20)] (stderr: ${err:0:600})"
  else
    echo "ok: t_procroot.$v"
  fi
  rm -rf "$root/tmp/procroot"
done

# cost per call (printed for the log, not asserted; ring 0 measured by hand:
# 200 /proc reads there take 8 s on this machine)
if [ -z "$SBX_BASE" ]; then
  run 120 /bin/t_fs.glibc bench
  [ "$rc" = 0 ] && echo "$out" || fail "t_fs bench: exit $rc (stderr: ${err:0:400})"
  rm -rf "$root/tmp/bench"
fi

# busybox applets over the new calls
cat >"$root/tmp/bb.sh" <<'SCRIPT'
set -e
cd /tmp
mkdir -p d/sub
echo one >d/sub/file
ln -s sub/file d/link
chmod 0741 d/sub/file
touch d/new
touch -d '2001-02-03 04:05:06' d/new
date -r d/new '+%Y-%m-%d %H:%M:%S'
mv d/new d/moved
[ ! -e d/new ] && echo moved
ln -s moved d/ml
readlink d/ml
chmod 640 d/moved
ls -l d/moved | cut -c1-10
ls -l d/sub/file | cut -c1-10
cp -a d e
ls -l e/sub/file | cut -c1-10
readlink e/link
date -r e/moved +%Y
tar cf /tmp/a.tar d
mkdir x
cd x
tar xf /tmp/a.tar
cat d/sub/file
readlink d/link
date -r d/moved +%Y
cd ..
mkfifo p
ls -l p | cut -c1
stat -c '%F %a' d/sub/file
rm -r d e x p a.tar
ls /tmp
sleep 5 &
s=$!
[ "$(pidof sleep)" = "$s" ] && echo pidof-ok
ps | grep -c '[s]leep 5'
kill $s
free | grep -c '^Mem:'
grep -c '^MemTotal:' /proc/meminfo
grep '^Name:' /proc/self/status
uptime | grep -c 'load average'
df / | grep -c '/$'
sysctl -n kernel.ostype
[ "$(nproc)" -ge 1 ] && echo nproc-ok
top -b -n 1 | grep -c '^Mem:'
SCRIPT
want='2001-02-03 04:05:06
moved
moved
-rw-r-----
-rwxr----x
-rwxr----x
sub/file
2001
one
sub/file
2001
p
regular file 741
bb.sh
pidof-ok
1
1
1
Name:	grep
1
1
Linux
nproc-ok
1'
expect "busybox touch mv ln chmod cp -a tar mkfifo ps free pidof top df" 0 "$want" /bin/sh /tmp/bb.sh

# python's os module over /proc and the new calls (kernel-worker mode only: slow in ring 0)
if [ -z "$SBX_BASE" ] && guest_python "$root"; then
  cat >"$root/tmp/p.py" <<'PY'
import os, shutil
print("self", os.readlink("/proc/self") == str(os.getpid()))
print("fds", sorted(int(x) for x in os.listdir("/proc/self/fd"))[:3])
os.makedirs("/tmp/pw/a")
with open("/tmp/pw/a/f", "w") as f: f.write("x" * 10)
os.utime("/tmp/pw/a/f", (1000000000, 1100000000))
shutil.copy2("/tmp/pw/a/f", "/tmp/pw/g")
print("copy2", int(os.stat("/tmp/pw/g").st_mtime))
os.rename("/tmp/pw/g", "/tmp/pw/h")
os.symlink("h", "/tmp/pw/s")
os.chmod("/tmp/pw/h", 0o600)
print("mode", oct(os.stat("/tmp/pw/s").st_mode & 0o777))
shutil.copytree("/tmp/pw/a", "/tmp/pw/b", symlinks=True)
shutil.rmtree("/tmp/pw")
print("statvfs", os.statvfs("/").f_bsize > 0)
print("cpu", os.cpu_count() >= 1, len(os.sched_getaffinity(0)) >= 1)
PY
  expect "python os: /proc, utime, copy2, rename, symlink, chmod, copytree, statvfs" 0 "self True
fds [0, 1, 2]
copy2 1100000000
mode 0o600
statvfs True
cpu True True" /bin/python3 /tmp/p.py
fi

# Nothing outside the rootfs changed; the host's /etc/passwd neither.
[ "$(snap)" = "$before" ] || fail "the directory outside the rootfs changed: $(ls -la "$outside")"
[ "$(sha256sum /etc/passwd)" = "$passwd_before" ] || fail "host /etc/passwd changed"
[ ! -e "$outside/planted" ] || fail "planted file outside the rootfs"
[ ! -e "$root/dev/shm" ] || fail "the guest's /dev/shm reached the host rootfs"
guest_done "guest_$mode"
