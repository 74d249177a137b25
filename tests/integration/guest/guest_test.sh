#!/usr/bin/env bash
# Runs guest programs inside quark-sandbox on a fresh rootfs fixture and
# checks their output and exit status.
# Usage: guest_test.sh MODE SANDBOX KERNEL PROGDIR
#   MODE: progs-glibc | progs-musl | progs-pie | busybox | hostile, optionally
#         with "-ring0": the same with the kernel in ring 0 (--no-kernel-worker,
#         the path hardware-virtualized KVM takes) instead of the CPL3 worker
#         that quark-sandbox uses by default on PVM-style hosts.
# Skips (77) only when /dev/kvm is absent.
set -uo pipefail
mode=$1 sbx=$2 kernel=$3 progs=$4
here=$(cd "$(dirname "$0")" && pwd)

# shellcheck source=tests/integration/guest/lib.sh
. "$here/lib.sh"
guest_split_mode "$mode"
guest_setup guest "$sbx"
root=$work/rootfs
guest_fixture "$root" "$progs" || exit 1
EXPECT_TIMEOUT=60

case "$mode" in
progs-*)
  v=${mode#progs-}
  for p in t_files t_mem t_misc; do
    start=$(date +%s.%N)
    run 120 "/bin/$p.$v" "$(date +%s)"
    end=$(date +%s.%N)
    echo "$out" | grep -v '^ok' | head -40
    if [ "$rc" != 0 ]; then
      fail "$p.$v: exit $rc (stderr: ${err:0:800})"
    elif ! echo "$out" | grep -qE "^$p: [0-9]+ checks, 0 failures$"; then
      fail "$p.$v: no clean summary"
    else
      echo "ok: $p.$v ($(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }') s)"
    fi
  done
  # Out of memory in a 64 MiB VM: ENOMEM, then recovery.
  SBX_ARGS="--memory 64" run 120 "/bin/t_mem.$v" oom
  if [ "$rc" = 0 ] && echo "$out" | grep -q "^t_mem oom: [0-9]* checks, 0 failures$"; then
    echo "ok: t_mem.$v oom: $(echo "$out" | grep populated)"
  else
    fail "t_mem.$v oom: exit $rc [$out] (stderr: ${err:0:600})"
  fi
  # Ring-0 work per syscall, from the hypervisor's counters (quark-sandbox
  # --stats): printed, and bounded where a regression would show. On
  # hardware-virtualized KVM nothing is emulated and the counts are ~0.
  if [ "$v" = glibc ]; then
    for op in getpid clock write fstat stat read1m open; do
      for n in 0 200; do
        SBX_ARGS="--stats $work/stats.$n" run 120 "/bin/t_loop.$v" $op $n
      done
      val() { awk -v k="$1" '$1 == k { print $2 }' "$work/stats.$2"; }
      e0=$(val kvm_insn_emulation 0) e1=$(val kvm_insn_emulation 200)
      if [ -z "$e0" ] || [ -z "$e1" ]; then
        echo "note: no kvm_insn_emulation counter; ring-0 cost not measured"
        break
      fi
      per=$(((e1 - e0) / 200))
      q=$(((${e1:+$(val qcalls 200)} - $(val qcalls 0)) / 200))
      x=$(awk -v a="$(val vmm_exits_io 0)" -v b="$(val vmm_exits_io 200)" 'BEGIN { printf "%.2f", (b - a) / 200 }')
      echo "cost: $op: $per emulated ring-0 instructions, $q QCalls, $x port-I/O exits per call"
      case $op in
      getpid) limit=400 ;;
      clock) limit=800 ;;
      read1m) limit=12000 ;;
      *) limit=3000 ;;
      esac
      [ "$per" -le "$limit" ] || fail "$op costs $per emulated instructions (limit $limit)"
    done
  fi
  # Syscall costs inside the guest: printed for the log, not asserted.
  run 120 "/bin/t_bench.$v" 1
  [ "$rc" = 0 ] && echo "$out" || fail "t_bench.$v: exit $rc (stderr: ${err:0:400})"
  ;;
procs)
  # fork/exec/wait, pipes, groups, signals (t_proc) and pthreads (t_thr)
  # for each libc build; the ring-0 run (hardware-KVM path, emulated here
  # and ~40x slower) covers the glibc build only.
  vs="glibc pie"
  [ -e "$progs/t_proc.musl" ] && vs="$vs musl"
  [ -n "$SBX_BASE" ] && vs=glibc
  for v in $vs; do
    for p in t_proc t_thr; do
      run 120 "/bin/$p.$v"
      if [ "$rc" = 0 ] && echo "$out" | grep -qE "^$p: [0-9]+ checks, 0 failures$"; then
        echo "ok: $p.$v"
      else
        fail "$p.$v: exit $rc [$out] (stderr: ${err:0:800})"
      fi
    done
  done
  SBX_ARGS="--memory 64" run 120 /bin/t_proc.glibc forkbomb
  if [ "$rc" = 0 ] && echo "$out" | grep -q "^t_proc forkbomb: [0-9]* checks, 0 failures$"; then
    echo "ok: $(echo "$out" | grep '^forkbomb')"
  else
    fail "forkbomb: exit $rc [$out] (stderr: ${err:0:600})"
  fi
  # Many execs in a small guest: each execve's 256 KiB argument buffer
  # must be reused (it drained contiguous memory for good: ENOMEM at exec
  # 477 of a 128 MiB guest).
  if [ -z "$SBX_BASE" ]; then
    SBX_ARGS="--memory 96" EXPECT_TIMEOUT=200 expect "1500 execs in a 96 MiB guest" 0 "done" /bin/sh -c \
      'i=0; while [ $i -lt 1500 ]; do /bin/busybox true || { echo "exec $i failed"; exit 1; }; i=$((i+1)); done; echo done'
  fi
  if [ -z "$SBX_BASE" ]; then
    run 120 /bin/t_proc.glibc bench
    [ "$rc" = 0 ] && echo "$out" || fail "t_proc bench: exit $rc (stderr: ${err:0:400})"
    run 120 /bin/t_thr.glibc bench
    [ "$rc" = 0 ] && echo "$out" || fail "t_thr bench: exit $rc (stderr: ${err:0:400})"
  fi
  ;;
shell)
  # busybox sh scripts: pipelines, subshells, redirections, $(...), loops,
  # trap, background jobs and wait, kill, exit statuses 128+n.
  cat >"$root/tmp/s1.sh" <<'SCRIPT'
echo start
echo "a b c" | tr ' ' '\n' | sort -r | head -n 2
x=$(echo inner | sed s/inner/outer/)
echo "subst $x"
(cd /data && echo "sub $(pwd)"; exit 4); echo "subshell status $?"
echo "into file" >/tmp/f1; echo more >>/tmp/f1; cat </tmp/f1 | wc -l
ls /nonexistent 2>/tmp/err1 || echo "ls failed, stderr $(wc -c </tmp/err1 | tr -d ' ') bytes"
i=0; while [ $i -lt 5 ]; do i=$((i + 1)); done; echo "loop $i"
for w in one two three; do printf '%s;' $w; done; echo
trap 'echo trapped USR1' USR1
kill -USR1 $$
sleep 0.2 & p1=$!
(sleep 0.1; exit 7) & p2=$!
wait $p2; echo "job2 $?"
wait $p1; echo "job1 $?"
sleep 5 & p3=$!
kill $p3; wait $p3; echo "killed job $?"
sh -c 'kill -SEGV $$'; echo "segv status $?"
echo $(echo $(echo nested))
trap 'echo bye' EXIT
exit 3
SCRIPT
  want='start
c
b
subst outer
sub /data
subshell status 4
2
ls failed, stderr 44 bytes
loop 5
one;two;three;
trapped USR1
job2 7
job1 0
killed job 143
segv status 139
nested
bye'
  for a in sort tr sed wc ls printf kill; do ln -sf busybox "$root/bin/$a"; done
  expect "sh script (pipes, subshells, jobs, traps)" 3 "$want" /bin/sh /tmp/s1.sh
  # 20 pipelines in parallel, collected by wait. With the kernel in ring 0
  # every fork and exec is emulated on a PVM host: 20 took 20-30 s at load
  # 8 and ran past 60 s at load 17 (CI), so ring-0 mode runs 8.
  np=20
  [ -n "$SBX_BASE" ] && np=8
  EXPECT_TIMEOUT=120 expect "parallel pipelines" 0 "$np" /bin/sh -c "for i in \$(seq $np); do (echo \$i | cat | cat >/tmp/o\$i) & done; wait; cat /tmp/o* | wc -l"
  # exit status of a killed container init's child through the runtime
  expect "exit 128+n" 143 "" /bin/sh -c 'sh -c "kill -TERM \$\$"; exit $?'
  # busybox runs applets by exec of /proc/self/exe: the second such exec
  # followed a /proc/self/exe that named itself, until the kernel's stack
  # overflowed (panic); a /proc link loop through the cwd did the same.
  # cd /proc/self/cwd is the cwd itself (a magic link, as on Linux); a
  # rootfs link through /proc/self/root back to itself loops: ELOOP.
  expect "exec of /proc/self/exe twice" 0 "w
/bin/sh" /bin/sh -c 'sh -c "sleep 0"; sh -c "sleep 0; true"; echo w; sh -c "readlink /proc/self/exe"'
  expect "cd /proc/self/cwd" 0 "rc=0" /bin/sh -c 'cd /proc/self/cwd && ls /proc/self/cwd >/dev/null 2>&1; echo rc=$?'
  ln -sfn /proc/self/root/tmp/lp "$root/tmp/lp"
  expect "/proc link loop: ELOOP" 0 "rc=1" /bin/sh -c 'cat /tmp/lp 2>/dev/null; echo rc=$?'
  rm -f "$root/tmp/lp"
  # A read of the sandbox's stdin (a pipe nobody writes) must not hold the
  # vCPU: the background job runs and its signal interrupts the read. The
  # job waits until the shell sleeps (/proc state S: parked in the read; a
  # fixed "sleep 0.5" assumed the shell got there first, not always so in
  # ring 0 at load 10-17).
  mkfifo "$work/stdin"
  sleep 60 >"$work/stdin" &
  holder=$!
  # shellcheck disable=SC2086 # SBX_BASE is a flag list
  out=$(timeout 60 "$sbx" run --rootfs "$root" --kernel "$kernel" ${SBX_BASE:-} -- /bin/sh -c \
    'trap "echo INT" INT; (until read -r _ _ st _ </proc/$$/stat && [ "$st" = S ]; do sleep 0.1; done; kill -INT $$) & read x; echo rc=$?' <"$work/stdin" 2>"$work/err")
  rc=$?
  kill "$holder" 2>/dev/null
  wait "$holder" 2>/dev/null
  if [ "$rc" = 0 ] && [ "$out" = "INT
rc=1" ]; then
    echo "ok: signal during a read of an idle stdin"
  else
    fail "signal during a read of an idle stdin: exit $rc, stdout [$out] (stderr: $(head -c 600 "$work/err"))"
  fi
  ;;
debian)
  # Dynamically linked Debian programs (bash, coreutils, grep, sed, find)
  # with the image's own ld.so and libc, copied from this host (essential
  # packages). Kernel worker mode only: the ring-0 path is the same loader.
  for b in bash ls sort uniq md5sum dd grep sed find cat wc head seq tr; do
    p=$(command -v $b) || { fail "$b not on the host"; continue; }
    cp -L "$p" "$root/bin/$b.deb"
    for l in $(ldd "$p" | grep -o '/[^ ]*'); do
      mkdir -p "$root$(dirname "$l")"
      cp -L "$l" "$root$l"
    done
  done
  printf 'b\na\nb\nc\n' >"$root/data/in.txt"
  cat >"$root/tmp/d1.sh" <<'SCRIPT'
PATH=/bin
sort.deb /data/in.txt | uniq.deb -c | sed.deb 's/^ *//' | tr.deb '\n' ','; echo
ls.deb -l /data/hello.txt | cut -c1-10
seq.deb 1 1000 | md5sum.deb
dd.deb if=/dev/zero bs=1k count=64 2>/dev/null | wc.deb -c
find.deb /data -name 'in*'
grep.deb -c b /data/in.txt
x=$(head.deb -n1 /data/in.txt); echo "x=$x"
for i in 1 2 3; do (echo "job $i" >/tmp/j$i) & done; wait; cat.deb /tmp/j1 /tmp/j2 /tmp/j3
exit 5
SCRIPT
  want="1 a,2 b,1 c,
-rw-r--r--
$(seq 1 1000 | md5sum)
65536
/data/in.txt
2
x=b
job 1
job 2
job 3"
  ln -sf busybox "$root/bin/cut"
  expect "bash + coreutils, grep, sed, find (dynamic glibc)" 5 "$want" /bin/bash.deb /tmp/d1.sh
  ;;
python)
  # python3 from this host (dynamic, its own stdlib): threads, subprocess,
  # a small file workload. Skips when the host has no python3.
  if ! guest_python "$root"; then
    echo "skip: no python3.11 on the host"
    exit 77
  fi
  cat >"$root/tmp/p1.py" <<'PY'
import os, subprocess, threading, hashlib
lock = threading.Lock()
total = [0]
def work(n):
    s = sum(i * i for i in range(n * 2000))
    with lock:
        total[0] += 1
ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in ts: t.start()
for t in ts: t.join()
print("threads", total[0])
r = subprocess.run(["/bin/sh", "-c", "echo from-sh; exit 4"], capture_output=True, text=True)
print("subprocess", r.returncode, r.stdout.strip())
p = subprocess.Popen(["/bin/cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
out, _ = p.communicate(b"x" * 100000)
print("pipe", len(out), p.returncode)
os.makedirs("/tmp/w/d", exist_ok=True)
for i in range(50):
    with open(f"/tmp/w/d/f{i}", "w") as f: f.write(str(i) * 100)
h = hashlib.sha256()
for i in range(50):
    h.update(open(f"/tmp/w/d/f{i}").read().encode())
print("files", len(os.listdir("/tmp/w/d")), h.hexdigest()[:16])
# /dev/shm mappings shared across fork (shm_open + ftruncate + mmap).
from multiprocessing import shared_memory
m = shared_memory.SharedMemory(create=True, size=8192)
m.buf[0] = 7
pid = os.fork()
if pid == 0:
    c = shared_memory.SharedMemory(name=m.name)
    c.buf[4096] = c.buf[0] + 1
    c.close()
    os._exit(0)
os.waitpid(pid, 0)
print("shm", m.buf[4096])
m.close()
m.unlink()
PY
  want_h=$(/usr/bin/python3 -c 'import hashlib; h=hashlib.sha256(); [h.update((str(i)*100).encode()) for i in range(50)]; print(h.hexdigest()[:16])')
  SBX_ARGS="--memory 512" expect "python3 threads, subprocess, files" 0 "threads 8
subprocess 4 from-sh
pipe 100000 0
files 50 $want_h
shm 8" /bin/python3 /tmp/p1.py
  ;;
busybox)
  bb=/bin/busybox
  expect "echo" 0 "hi" $bb echo hi
  expect "echo via applet link" 0 "a b" /bin/echo a b
  expect "cat" 0 "hello quark" $bb cat /data/hello.txt
  expect "cat two files" 0 "ABC" $bb cat /data/dir/a /data/dir/b /data/dir/c
  expect "cat missing" 1 "" $bb cat /data/missing
  run 60 $bb wc /data/hello.txt
  [ "$rc" = 0 ] && [ "$(echo $out)" = "1 2 12 /data/hello.txt" ] && echo "ok: wc" || fail "wc: rc $rc [$out]"
  want_sha=$(sha256sum "$root/data/big.bin" | cut -d' ' -f1)
  expect "sha256sum 1 MiB" 0 "$want_sha  /data/big.bin" $bb sha256sum /data/big.bin
  want_find=$(cd "$root" && find data | sed 's|^|/|' | sort)
  run 60 $bb find /data
  [ "$rc" = 0 ] && [ "$(echo "$out" | sort)" = "$want_find" ] && echo "ok: find" ||
    fail "find: rc $rc [$out] want [$want_find]"
  expect "find -name" 0 "/data/dir/b" $bb find /data -name b
  expect "head -n1" 0 "hello quark" $bb head -n 1 /data/hello.txt
  expect "head -c5" 0 "hello" $bb head -c 5 /data/hello.txt
  expect "tail -c6" 0 "quark" $bb tail -c 6 /data/hello.txt
  expect "uname -sm" 0 "Linux x86_64" $bb uname -s -m
  expect "pwd" 0 "/" $bb pwd
  expect "printf" 0 "a-5 0x1f" $bb printf '%s-%d %#x\n' a 5 31
  expect "true" 0 "" $bb true
  expect "false" 1 "" $bb false
  run 60 $bb ls -l /data
  if [ "$rc" = 0 ] && echo "$out" | grep -qE '^-rw-r--r-- +1 +(root|0) +(root|0) +12 .* hello\.txt$' &&
    echo "$out" | grep -qE '^lrwxrwxrwx .* link -> hello\.txt$' && echo "$out" | grep -qE '^d.* dir$'; then
    echo "ok: ls -l"
  else
    fail "ls -l: rc $rc [$out] [${err:0:300}]"
  fi
  expect "mkdir -p" 0 "" $bb mkdir -p /tmp/a/b/c
  [ -d "$root/tmp/a/b/c" ] && echo "ok: mkdir -p made the tree in the rootfs" || fail "mkdir -p: no tree"
  expect "cp" 0 "" $bb cp /data/big.bin /tmp/copy.bin
  cmp -s "$root/data/big.bin" "$root/tmp/copy.bin" && echo "ok: cp 1 MiB" || fail "cp: copy differs"
  expect "md5sum" 0 "$(md5sum <"$root/data/big.bin" | cut -d' ' -f1)  /data/big.bin" $bb md5sum /data/big.bin
  expect "grep" 0 "hello quark" $bb grep -r quark /data/hello.txt
  expect "seq" 0 "$(printf '1\n2\n3')" $bb seq 3
  expect "realpath" 0 "/data/hello.txt" $bb realpath /data/link
  expect "id" 0 "uid=0(root) gid=0(root)" $bb id
  # stdin and stdout as host pipes
  out=$(printf 'l1\nl2\n' | timeout 60 "$sbx" run --rootfs "$root" --kernel "$kernel" $SBX_BASE -- $bb wc -l 2>/dev/null)
  [ "$out" = 2 ] && echo "ok: stdin from a pipe" || fail "stdin pipe: [$out]"
  # sh builtins only (no fork): read polls stdin before each byte
  out=$(printf 'hello\n' | timeout 60 "$sbx" run --rootfs "$root" --kernel "$kernel" $SBX_BASE -- $bb sh -c 'read x; echo "got $x"; while read l; do echo "[$l]"; done </data/hello.txt; echo err >/dev/stderr' 2>"$work/err")
  [ "$out" = "$(printf 'got hello\n[hello quark]')" ] && grep -q '^err$' "$work/err" &&
    echo "ok: sh read loop, /dev/stderr" || fail "sh read: [$out] [$(cat "$work/err")]"
  got=$(timeout 60 "$sbx" run --rootfs "$root" --kernel "$kernel" $SBX_BASE -- $bb cat /data/big.bin 2>/dev/null </dev/null | sha256sum | cut -d' ' -f1)
  [ "$got" = "$want_sha" ] && echo "ok: 1 MiB to a stdout pipe" || fail "stdout pipe: sha $got"
  run 60 $bb env
  [ "$rc" = 0 ] && echo "ok: env ($(echo "$out" | wc -l) variables)" || fail "env: rc $rc"
  start=$(date +%s%N)
  run 60 $bb sleep 0.1
  ms=$((($(date +%s%N) - start) / 1000000))
  [ "$rc" = 0 ] && [ "$ms" -ge 100 ] && echo "ok: sleep 0.1 (${ms} ms wall)" || fail "sleep: rc $rc, ${ms} ms"
  ;;
hostile)
  # A sentinel tree next to the rootfs ($work/rootfs/../sentinel): hostile
  # paths and the rootfs's /escape symlink aim at it.
  mkdir -p "$work/sentinel/sub"
  echo "do not touch" >"$work/sentinel/victim"
  echo "nor this" >"$work/sentinel/sub/file"
  sum() { (cd "$work/sentinel" && find . -printf '%p %m %s %T@\n' | sort && cat victim sub/file) | sha256sum; }
  rm -f /tmp/hostile-created
  before=$(sum)
  for v in glibc musl; do
    [ -e "$progs/t_hostile.$v" ] || continue
    for seed in 1 2 3; do
      # A fresh rootfs each time: random unlink/mkdir calls reshape it.
      "$here/mkfixture.sh" "$root" "$progs" || exit 1
      start=$(date +%s%N)
      run 240 "/bin/t_hostile.$v" "$seed" "${QK_HOSTILE_ITERS:-10000}"
      ms=$((($(date +%s%N) - start) / 1000000))
      if [ "$rc" = 0 ] && echo "$out" | grep -q "^hostile: seed $seed"; then
        echo "ok: $v seed $seed (${ms} ms): $out"
      else
        fail "hostile $v seed $seed: exit $rc after ${ms} ms [$out] (stderr: ${err:0:800})"
      fi
    done
  done
  "$here/mkfixture.sh" "$root" "$progs" || exit 1
  run 60 /bin/t_hostile.glibc segv
  [ "$rc" = 139 ] && echo "ok: store to address 0 -> exit 139 (SIGSEGV)" || fail "segv: exit $rc, want 139"
  run 60 /bin/t_hostile.musl sigbus
  [ "$rc" = 135 ] && echo "ok: read past the end of a mapped file -> exit 135 (SIGBUS)" ||
    fail "sigbus: exit $rc, want 135"
  after=$(sum)
  [ "$before" = "$after" ] && echo "ok: sentinel outside the rootfs unchanged" || fail "sentinel changed"
  [ ! -e /tmp/hostile-created ] && echo "ok: nothing created in the host's /tmp" ||
    fail "/tmp/hostile-created exists on the host"
  ;;
*)
  echo "usage: $0 progs-glibc|progs-musl|progs-pie|busybox|hostile SANDBOX KERNEL PROGDIR" >&2
  exit 2
  ;;
esac

guest_done "guest $1"
