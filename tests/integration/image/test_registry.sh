#!/usr/bin/env bash
# Pulls from a real docker-registry through a docker.io mirror: busybox and
# redis (OCI), a Docker schema2 image, an index (amd64 picked), by tag and by
# digest; concurrent pulls share downloads; status, list, fs info; rmi frees
# blobs; mirror fallback; plain HTTP refused unless insecure; import.
source "$(dirname "$0")/lib.sh"
build_images busybox redis layered multiarch
start_registry plain
P=$REG_plain_PORT
push busybox $P library/busybox:latest
push redis $P library/redis:7
push layered $P test/layered:latest
push multiarch $P test/multi:latest --all
push busybox $P library/busybox-v2s2:latest --format v2s2
M=(--mirror docker.io=http://127.0.0.1:$P --insecure 127.0.0.1:$P)
S=$T/store

echo "== pull via the docker.io mirror"
bb=$(tool $S "${M[@]}" pull busybox)
rd=$(tool $S "${M[@]}" pull redis:7)
st=$(tool $S status redis:7)
echo "$st" | grep -qx "tags=docker.io/library/redis:7" || fail "redis tag: $st"
echo "$st" | grep -q "^digests=docker.io/library/redis@sha256:" || fail "redis digest: $st"
echo "$st" | grep -q "^size=[1-9][0-9]\{6,\}$" || fail "redis size: $st"
echo "$st" | grep -qx "entrypoint=/usr/bin/redis-server" || fail "redis config: $st"
echo "$st" | grep -qx "ports=6379/tcp" || fail "redis ports: $st"
tool $S status "$bb" | grep -qx "tags=docker.io/library/busybox:latest" || fail "status by id"
tool $S status "${bb:7:12}" >/dev/null || fail "status by id prefix"
[ "$(tool $S list | wc -l)" -eq 2 ] || fail "list: $(tool $S list)"

echo "== by digest, Docker schema2, index"
dig=$(tool $S status busybox | sed -n 's/^digests=.*@//p')
[ "$(tool $S "${M[@]}" pull "busybox@$dig")" = "$bb" ] || fail "pull by digest gave another image"
v2=$(tool $S "${M[@]}" pull busybox-v2s2)
[ "$v2" = "$bb" ] || echo "  (schema2 copy has config $v2)"
curl -s -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "http://127.0.0.1:$P/v2/library/busybox-v2s2/manifests/latest" | grep -q 'vnd.docker.image.rootfs.diff.tar.gzip' \
  || fail "registry does not hold a schema2 manifest for busybox-v2s2"
mi=$(tool $S --insecure 127.0.0.1:$P pull 127.0.0.1:$P/test/multi)
tool $S status "$mi" | grep -qx "platform=linux/amd64" || fail "index: not the amd64 image"
ml=$(tool $S status "$mi" | sed -n 's/^layers=//p')
[ "$(cat "$S/layers/sha256/${ml#sha256:}/etc/arch")" = amd64 ] || fail "index: wrong layer unpacked"
tool $S check >/dev/null || fail "store inconsistent"

echo "== concurrent pulls of the same image share one download"
S2=$T/store2
before=$(grep -c 'GET /v2/library/redis/blobs/' "$REG_plain_DIR/log" || true)
out=$(tool $S2 "${M[@]}" pull-many redis:7 redis:7 redis:7 docker.io/library/redis:7)
[ "$(echo "$out" | awk '{print $2}' | sort -u)" = "$rd" ] || fail "concurrent pulls: $out"
after=$(grep -c 'GET /v2/library/redis/blobs/' "$REG_plain_DIR/log" || true)
nblobs=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(len(m["layers"])+1)' \
  "$S/blobs/sha256/$(tool $S status redis:7 | sed -n 's/^manifest=sha256://p')")
echo "  blob GETs for 4 concurrent pulls: $((after - before)) (image has $nblobs blobs)"
[ $((after - before)) -eq "$nblobs" ] || fail "concurrent pulls fetched $((after - before)) blobs, want $nblobs"
tool $S2 check >/dev/null || fail "store2 inconsistent"

echo "== fs info, rmi frees blobs and layers"
used1=$(tool $S fsinfo | sed 's/bytes=\([0-9]*\).*/\1/')
nb1=$(ls $S/blobs/sha256 | wc -l); nl1=$(ls $S/layers/sha256 | wc -l)
tool $S rmi redis:7
expect_fail "not found" tool $S status redis:7
nb2=$(ls $S/blobs/sha256 | wc -l); nl2=$(ls $S/layers/sha256 | wc -l)
used2=$(tool $S fsinfo | sed 's/bytes=\([0-9]*\).*/\1/')
echo "  blobs $nb1 -> $nb2, layers $nl1 -> $nl2, bytes $used1 -> $used2"
[ "$nb2" -eq $((nb1 - nblobs - 1)) ] || fail "rmi left blobs behind"
[ "$nl2" -eq $((nl1 - nblobs + 1)) ] || fail "rmi left layers behind"
[ "$used2" -lt "$used1" ] || fail "fs info did not shrink"
tool $S check >/dev/null || fail "store inconsistent after rmi"
expect_fail "not found" tool $S rmi redis:7

echo "== mirror fallback, insecure policy"
S3=$T/store3
dead=$(free_port)
tool $S3 --mirror docker.io=http://127.0.0.1:$dead,http://127.0.0.1:$P --insecure 127.0.0.1:$dead \
  --insecure 127.0.0.1:$P --retries -1 pull busybox >/dev/null || fail "no fallback to the second mirror"
expect_fail "https://127.0.0.1:$P" tool $S3 --retries -1 pull 127.0.0.1:$P/library/busybox
expect_fail "404" tool $S3 "${M[@]}" pull busybox:nope
tool $S3 check >/dev/null || fail "store3 inconsistent"

echo "== 503 then a redirect for every blob (retries, redirects)"
RP=$(free_port)
python3 "$(dirname "$0")/redirector.py" $RP http://127.0.0.1:$P $T/redirect.log &
PIDS+=($!)
for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:$RP/v2/ && break; sleep 0.1; done
S4=$T/store4
rid=$(tool $S4 --mirror docker.io=http://127.0.0.1:$RP --insecure 127.0.0.1:$RP pull redis:7) ||
  fail "pull through 503s and redirects"
[ "$rid" = "$rd" ] || fail "redirected pull gave another image"
[ "$(grep -c '/blobs/' $T/redirect.log)" -eq $((2 * nblobs)) ] || fail "want a retry per blob: $(cat $T/redirect.log)"
tool $S4 check >/dev/null || fail "store4 inconsistent"

echo "== connections broken mid-blob: the download resumes with Range"
DP=$(free_port)
python3 "$(dirname "$0")/redirector.py" $DP http://127.0.0.1:$P $T/drop.log --drop &
PIDS+=($!)
for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:$DP/v2/ && break; sleep 0.1; done
S5=$T/store5
did=$(tool $S5 --mirror docker.io=http://127.0.0.1:$DP --insecure 127.0.0.1:$DP pull redis:7) ||
  fail "pull through broken connections"
[ "$did" = "$rd" ] || fail "resumed pull gave another image"
nres=$(grep -c '/blobs/.*range=bytes=[1-9]' $T/drop.log || true)
echo "  resumed requests: $nres"
[ "$nres" -ge 2 ] || fail "layers were not resumed with Range: $(cat $T/drop.log)"
tool $S5 check >/dev/null || fail "store5 inconsistent"

echo "== import of an OCI layout archive"
skopeo copy -q "oci:$IMG_TEST_IMAGES/layered:latest" "oci-archive:$T/layered.tar:latest" >/dev/null
imp=$(tool $S3 import "$T/layered.tar" docker.io/library/layered)
tool $S3 status layered:latest | grep -qx "id=$imp" || fail "import: not tagged layered:latest"
tar -C "$IMG_TEST_IMAGES/busybox" -cf "$T/bb-dir.tar" .   # a layout tarred as is (deploy/quickstart.sh)
bbi=$(tool $S3 import "$T/bb-dir.tar" docker.io/library/busybox)
tool $S3 status busybox | grep -qx "id=$bbi" || fail "import of a tarred layout: not tagged busybox:latest"
tool $S3 check >/dev/null || fail "store3 inconsistent after import"
echo PASS
