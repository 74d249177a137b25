#!/usr/bin/env bash
# Bad input: each case fails with an error that says what is wrong, leaves
# the store consistent (no temp files, no unverified blob, no half layer),
# and a good pull works afterwards.
source "$(dirname "$0")/lib.sh"
build_images busybox
start_registry plain
P=$REG_plain_PORT
U=http://127.0.0.1:$P
push busybox $P library/busybox:latest
S=$T/store
I=(--insecure 127.0.0.1:$P --retries 1)
R=127.0.0.1:$P
rp() { python3 "$(dirname "$0")/regpush.py" "$U" "$@"; }
good() { tool $S "${I[@]}" pull $R/library/busybox >/dev/null || fail "good pull failed after: $1"; check_store $S; }

echo "== blob bytes that do not match the digest"
layer=$(rp bad/digest latest tar "a=file:$(head -c 3000 /dev/urandom | base64 -w0)" | cut -d' ' -f2)
data=$(find "$REG_plain_DIR/data" -path "*/blobs/sha256/*/${layer#sha256:}/data")
python3 - "$data" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0xff
open(p, "wb").write(b)
PY
expect_fail "digest mismatch" tool $S "${I[@]}" pull $R/bad/digest
[ ! -e $S/blobs/sha256/${layer#sha256:} ] || fail "unverified blob became visible"
check_store $S
good digest
tool $S rmi $R/library/busybox

echo "== truncated layer"
rp bad/trunc latest truncated >/dev/null
expect_fail "truncated\|corrupt" tool $S "${I[@]}" pull $R/bad/trunc
[ -z "$(ls $S/layers/sha256)" ] || fail "half layer visible"
check_store $S

echo "== layer content that is not what the image config says (diff_id)"
lie=sha256:$(printf lie | sha256sum | cut -c1-64)
REGPUSH_DIFF_ID=$lie rp bad/diffid latest tar "f=file:diffid-test" >/dev/null
expect_fail "the image config says $lie" tool $S "${I[@]}" pull $R/bad/diffid
rp good/diffid latest tar "f=file:diffid-test" >/dev/null
tool $S "${I[@]}" pull $R/good/diffid >/dev/null || fail "good pull of the same layer"
expect_fail "the image config says its content is $lie" tool $S "${I[@]}" pull $R/bad/diffid
tool $S rmi $R/good/diffid
check_store $S

echo "== malicious tars"
rp bad/dotdot latest tar "ok=file:ok" "../escape=file:pwned" >/dev/null
expect_fail 'entry "../escape" refused' tool $S "${I[@]}" pull $R/bad/dotdot
rp bad/deep latest tar "a=dir" "a/../../escape2=file:pwned" >/dev/null
expect_fail 'entry "a/../../escape2" refused' tool $S "${I[@]}" pull $R/bad/deep
rp bad/abs latest tar "/tmp/quark-abs-escape=file:pwned" >/dev/null
expect_fail 'refused: absolute path' tool $S "${I[@]}" pull $R/bad/abs
rp bad/symlink latest tar "lnk=sym:$T/victim" "lnk/pwned=file:pwned" >/dev/null
mkdir -p $T/victim
expect_fail 'entry "lnk/pwned" refused: path goes through symlink "lnk"' tool $S "${I[@]}" pull $R/bad/symlink
rp bad/symrel latest tar "d=dir" "d/up=sym:../.." "d/up/escape3=file:pwned" >/dev/null
expect_fail 'through symlink "up"' tool $S "${I[@]}" pull $R/bad/symrel
rp bad/hardlink latest tar "h=hard:../../../../etc/passwd" >/dev/null
expect_fail 'entry "h" refused: hard link target' tool $S "${I[@]}" pull $R/bad/hardlink
[ -z "$(ls $T/victim)" ] || fail "wrote through the symlink"
[ ! -e /tmp/quark-abs-escape ] && [ ! -e $T/escape ] && [ ! -e $S/escape ] || fail "escaped the layer root"
[ -z "$(ls $S/layers/sha256)" ] || fail "half layer visible"
check_store $S
good malicious

echo "== unknown media type, 404 tag"
rp bad/mt latest mediatype application/vnd.example.unknown >/dev/null
expect_fail 'unsupported media type "application/vnd.example.unknown"' tool $S "${I[@]}" pull $R/bad/mt
expect_fail 'not found (HTTP 404' tool $S "${I[@]}" pull $R/library/busybox:nope
expect_fail 'not found (HTTP 404' tool $S "${I[@]}" pull $R/no/such
check_store $S

echo "== registry killed mid-pull"
rp slow/big latest random 24 >/dev/null
tool $S "${I[@]}" --rate 4000000 pull $R/slow/big > $T/kill.out 2>&1 &
tp=$!
for _ in $(seq 100); do ls $S/tmp | grep -q blob && break; sleep 0.05; done
ls $S/tmp | grep -q blob || fail "download did not start"
sleep 0.5
kill -9 $REG_plain_PID; wait $REG_plain_PID 2>/dev/null || true
if wait $tp; then fail "pull survived the registry's death"; fi
echo "  ok: fails with: $(tail -1 $T/kill.out | cut -c1-200)"
grep -q "slow/big" $T/kill.out || fail "error does not name the image"
check_store $S

echo "== puller killed mid-pull (-9), store cleaned at next open"
start_registry again
P2=$REG_again_PORT
rp2() { python3 "$(dirname "$0")/regpush.py" "http://127.0.0.1:$P2" "$@"; }
rp2 slow/big latest random 24 >/dev/null
push busybox $P2 library/busybox:latest
"$IMG_TOOL" --root $S --insecure 127.0.0.1:$P2 --rate 4000000 pull 127.0.0.1:$P2/slow/big >/dev/null 2>&1 &
tp=$!
for _ in $(seq 100); do ls $S/tmp | grep -q blob && break; sleep 0.05; done
sleep 0.3
kill -9 $tp; wait $tp 2>/dev/null || true
[ -n "$(ls $S/tmp)" ] || fail "expected a leftover temp file from the killed pull"
tool $S --insecure 127.0.0.1:$P2 pull 127.0.0.1:$P2/library/busybox >/dev/null || fail "good pull after kill"
[ -z "$(ls $S/tmp)" ] || fail "leftovers not cleaned at open: $(ls $S/tmp)"
check_store $S
tool $S --insecure 127.0.0.1:$P2 pull 127.0.0.1:$P2/slow/big >/dev/null || fail "big pull after restart"
check_store $S
echo PASS
