#!/usr/bin/env bash
# Container root filesystems from the multi-layer image: whiteouts, opaque
# directories, hard links, symlinks, set-uid files owned by 1000 through a
# real overlayfs; the image is pinned while a rootfs uses it.
source "$(dirname "$0")/lib.sh"
build_images layered
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
grep -qw overlay /proc/filesystems || skip "overlayfs not available in this kernel"
start_registry plain
P=$REG_plain_PORT
push layered $P test/layered:latest
S=$T/store
R=127.0.0.1:$P/test/layered
id=$(tool $S --insecure 127.0.0.1:$P pull $R)
[ "$(tool $S status $id | sed -n 's/^layers=//p' | tr , '\n' | wc -l)" -eq 6 ] || fail "want 6 layers"

tool $S rootfs-create $R c1 $T/c1
m=$T/c1
grep -q " $m overlay " /proc/mounts || fail "no overlay mounted at $m"
grep " $m overlay " /proc/mounts | grep -q "nosuid,nodev" || fail "rootfs not nosuid,nodev: $(grep " $m " /proc/mounts)"
[ ! -e $m/data/a ] || fail "whiteout: data/a still visible"
[ ! -e $m/data/dir1 ] || fail "whiteout: data/dir1 still visible"
[ "$(cat $m/data/b)" = b ] || fail "data/b"
[ "$(ls $m/data/opq)" = new ] || fail "opaque dir shows: $(ls $m/data/opq)"
[ "$(stat -c %i $m/links/hl1)" = "$(stat -c %i $m/links/hl2)" ] || fail "hard link broken"
[ "$(stat -c %h $m/links/hl1)" = 2 ] || fail "hard link count"
[ "$(readlink $m/links/sym)" = hl1 ] || fail "relative symlink"
[ "$(readlink $m/links/abs)" = /bin/busybox ] || fail "absolute symlink"
[ "$(stat -c '%a %u:%g' $m/links/suid)" = "4755 1000:1000" ] || fail "suid file: $(stat -c '%a %u:%g' $m/links/suid)"
[ -x $m/bin/busybox ] && [ -L $m/bin/sh ] || fail "busybox layer"
chroot $m /bin/busybox true 2>/dev/null || echo "  (chroot exec not possible here)"
[ -f $m/data/.wh.a ] && fail "whiteout file visible"

echo "== writes go to the container's upper dir only"
echo changed > $m/data/b
rm $m/data/keep
[ "$(cat "$S"/layers/sha256/*/data/b 2>/dev/null | sort -u)" = b ] || fail "a layer was modified"
tool $S rootfs-create $R c2 $T/c2
[ "$(cat $T/c2/data/b)" = b ] && [ -e $T/c2/data/keep ] || fail "containers share writes"

echo "== an image with more layers than one mount(2) option page holds"
python3 "$(dirname "$0")/regpush.py" http://127.0.0.1:$P test/many latest layers 60 >/dev/null
tool $S --insecure 127.0.0.1:$P pull 127.0.0.1:$P/test/many >/dev/null
tool $S rootfs-create 127.0.0.1:$P/test/many many $T/many
grep " $T/many overlay " /proc/mounts | grep -q "nosuid,nodev" || fail "fsmount rootfs not nosuid,nodev"
[ "$(ls $T/many/l | sort | tr '\n' ' ')" = "$( (seq 0 59; echo w59) | sort | tr '\n' ' ')" ] ||
  fail "60-layer rootfs shows: $(ls $T/many/l | tr '\n' ' ')"
tool $S rootfs-remove many
tool $S rmi 127.0.0.1:$P/test/many

echo "== the image is pinned while in use"
expect_fail "in use by container c" tool $S rmi $R
expect_fail "already has a root filesystem" tool $S rootfs-create $R c1 $T/c1b
expect_fail "invalid container id" tool $S rootfs-create $R ../x $T/x
tool $S rootfs-remove c1
grep -q " $m overlay " /proc/mounts && fail "c1 still mounted"
[ ! -e $S/containers/c1 ] || fail "c1 upper dir left"
expect_fail "in use by container c2" tool $S rmi $R
tool $S rootfs-remove c2
tool $S rootfs-remove c2
tool $S rmi $R
[ -z "$(ls $S/layers/sha256)" ] || fail "layers left after rmi"
tool $S check >/dev/null || fail "store inconsistent"
echo PASS
