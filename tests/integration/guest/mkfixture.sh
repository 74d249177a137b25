#!/usr/bin/env bash
# Builds the rootfs fixture of the guest tests.
# Usage: mkfixture.sh ROOT PROGDIR   (PROGDIR holds the compiled t_* programs)
# ROOT gets: /bin (the test programs, busybox and its applet links), /data
# (known files, a directory, a symlink, a 1 MiB patterned file), /tmp,
# /escape (a symlink that points far above the root: resolving it must stay
# inside), /etc (passwd, group).
set -euo pipefail
root=$1 progs=$2
rm -rf "$root"
mkdir -p "$root"/{bin,data/dir,tmp,dev,proc,etc}
chmod 1777 "$root/tmp"
cp "$progs"/t_* "$root/bin/"
cp /bin/busybox "$root/bin/busybox"
for a in sh echo cat ls wc sha256sum find head tail uname env pwd printf true false sleep; do
  ln -sf busybox "$root/bin/$a"
done
printf 'hello quark\n' >"$root/data/hello.txt"
mkdir -p "$root/scripts"
printf '#!/bin/sh -e\necho script $1\nexit 3\n' >"$root/scripts/script.sh"
chmod 755 "$root/scripts/script.sh"
printf A >"$root/data/dir/a"
printf B >"$root/data/dir/b"
printf C >"$root/data/dir/c"
ln -s hello.txt "$root/data/link"
perl -e 'print map { chr(($_ * 131 >> 8) & 255) } 0 .. 1048575' >"$root/data/big.bin"
ln -s ../../../../../../../../.. "$root/escape"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
