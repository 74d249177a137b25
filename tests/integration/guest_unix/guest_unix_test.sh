#!/usr/bin/env bash
# AF_UNIX sockets served by the guest kernel, inside quark-sandbox (real KVM).
# Usage: guest_unix_test.sh MODE SANDBOX KERNEL PROGDIR
#   MODE glibc | musl: t_unix.<MODE> with path names in /tmp, /data (plain
#     rootfs directories), /dev/shm (the guest tmpfs), and in /tmp with the
#     kernel in ring 0 (--no-kernel-worker); its "case NAME: ok|FAIL" lines must
#     equal expected.txt (what the program prints on Linux) and it must end
#     with 0 failures; then t_unix fuzz (random calls, two seeds) and churn
#     (8,000 stream pairs and connections; 1,003 ran out before 32cac77).
#   MODE programs: busybox syslogd + logger over /dev/log (datagrams on a
#     path), and python3's socket module (skipped without python3.11).
# Skips (77) only when /dev/kvm is absent.
set -uo pipefail
mode=$1 sbx=$2 kernel=$3 progs=$4
here=$(cd "$(dirname "$0")" && pwd)

# shellcheck source=tests/integration/guest/lib.sh
. "$here/../guest/lib.sh"
guest_setup gunix "$sbx"
root=$work/rootfs
mkdir -p "$root"/{bin,tmp,dev,proc,etc,data}
chmod 1777 "$root/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"

case "$mode" in
glibc | musl)
  prog=$progs/t_unix.$mode
  [ -x "$prog" ] || { echo "FAIL: not built ($prog)"; exit 1; }
  cp "$prog" "$root/bin/t_unix"
  # /tmp and /data: the host rootfs; /dev/shm: the guest's tmpfs; then
  # /tmp again with the kernel in ring 0 (the hardware-KVM path).
  for d in /tmp /data /dev/shm ring0:/tmp; do
    SBX_BASE=
    case "$d" in ring0:*) SBX_BASE=--no-kernel-worker d=${d#ring0:} ;; esac
    run 180 /bin/t_unix "$d"
    echo "$out" | grep -v '^case .*: ok$' | head -40
    if [ "$(echo "$out" | grep '^case ')" != "$(cat "$here/expected.txt")" ]; then
      fail "t_unix $d $SBX_BASE: the case lines differ from expected.txt (exit $rc, stderr: ${err:0:600})"
    elif [ $rc != 0 ] || ! echo "$out" | grep -qE '^t_unix: [0-9]+ checks, 0 failures$'; then
      fail "t_unix $d $SBX_BASE: exit $rc"
    else
      echo "ok: t_unix $d $SBX_BASE ($(echo "$out" | tail -1))"
    fi
  done
  SBX_BASE=
  # Random calls with descriptors passed around (the kernel survives), then
  # 8,000 stream pairs and connections made and closed (no memory lost
  # per connection).
  for seed in 1 2; do
    expect "fuzz seed $seed" 0 "fuzz: 20000 calls, descriptors 3 -> 3" /bin/t_unix fuzz 20000 $seed
  done
  expect "churn" 0 "churn: 8000 pairs and connections" /bin/t_unix churn 8000
  # The socket inode of the path binds is on the host rootfs, and gone
  # after the program unlinked it.
  if ls "$root/data" | grep -q '^u-'; then
    fail "leftover socket files in /data: $(ls "$root/data")"
  fi
  ;;
programs)
  cp /bin/busybox "$root/bin/busybox"
  for a in sh syslogd logger sleep cat kill; do ln -sf busybox "$root/bin/$a"; done
  run 60 /bin/sh -c 'syslogd -n -O /tmp/msgs & sleep 1; logger -t qtest hello-unix; logger -t qtest second; sleep 1; kill $!; cat /tmp/msgs'
  if ! echo "$out" | grep -q 'qtest: hello-unix' || ! echo "$out" | grep -q 'qtest: second'; then
    fail "busybox syslogd/logger over /dev/log: [$out] (stderr: ${err:0:600})"
  else
    echo "ok: busybox syslogd received logger's datagrams on /dev/log"
  fi
  if [ -S "$root/dev/log" ]; then
    echo "ok: /dev/log is a socket inode on the host rootfs"
  else
    fail "/dev/log is not a socket on the rootfs"
  fi
  if guest_python "$root"; then
    cat >"$root/tmp/u.py" <<'PY'
import os, socket, stat
d = "/tmp/py.sock"
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(d)
c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
c.bind("\0py-cli")
c.sendto(b"dgram", d)
data, addr = s.recvfrom(100)
print("dgram", data.decode(), repr(addr), stat.S_ISSOCK(os.stat(d).st_mode))
ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
ls.bind("\0py-stream")
ls.listen()
cs = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
cs.connect("\0py-stream")
a, _ = ls.accept()
r, w = os.pipe()
socket.send_fds(cs, [b"fd"], [w])
msg, fds, flags, _ = socket.recv_fds(a, 10, 1)
os.write(fds[0], b"xyz")
print("fds", msg.decode(), os.read(r, 3).decode())
p, q = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
p.send(b"seq")
print("seq", q.recv(10).decode(), q.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE))
PY
    want="dgram dgram b'\\x00py-cli' True
fds fd xyz
seq seq 5"
    expect "python3 socket module (dgram with names, send_fds/recv_fds, seqpacket pair)" 0 "$want" \
      /bin/python3 /tmp/u.py
  else
    echo "python3.11 is absent on this host: its check is left out"
  fi
  ;;
*)
  echo "usage: $0 glibc|musl|programs SANDBOX KERNEL PROGDIR"
  exit 2
  ;;
esac
guest_done "guest_unix $mode"
