#!/usr/bin/env bash
# The five ImageService RPCs through @grpc/grpc-js against a private quarkd,
# pulling busybox and redis via a docker.io mirror (a local docker-registry),
# credentials from AuthConfig against an htpasswd registry, then the CLI:
# quark pull / images / rmi / import.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../integration/image/lib.sh"
command -v node >/dev/null || skip "node is not installed (deploy/deps.sh test)"
[ -d "${NODE_PATH:-/nonexistent}/@grpc/grpc-js" ] || skip "npm CRI client not installed in ${NODE_PATH:-?} (tests/run.sh installs it)"
: "${QUARKD:?}" "${QUARK:?}" "${QUARK_PROTO:?}"
build_images busybox redis layered
start_registry plain
P=$REG_plain_PORT
push busybox $P library/busybox:latest
push redis $P library/redis:7
htpasswd -Bbn carol pw1 > $T/htpasswd 2>/dev/null
start_registry basic "auth:
  htpasswd:
    realm: quark-test
    path: $T/htpasswd"
export AUTH_REF=127.0.0.1:$REG_basic_PORT/private/busybox:latest
push busybox $REG_basic_PORT private/busybox:latest --dest-creds carol:pw1
SOCK=$T/run/quark.sock
export QUARK_ENDPOINT=unix://$SOCK
cat > $T/config.json <<JSON
{"Socket":"unix://$SOCK","StateRoot":"$T/state","ImageRoot":"$T/images",
 "LogFile":"$T/quark.log","DebugLevel":"Debug","Cni":{"ConfDir":"$T/cni"},
 "Registry":{"Mirrors":{"docker.io":["http://127.0.0.1:$P"]},
             "Insecure":["127.0.0.1:$P","127.0.0.1:$REG_basic_PORT"]}}
JSON
export QUARK_CONFIG=$T/config.json
"$QUARKD" --config $T/config.json --foreground > $T/quarkd.out 2>&1 &
QPID=$!
PIDS+=("$QPID")
for _ in $(seq 150); do [ -S $SOCK ] && "$QUARK" version >/dev/null 2>&1 && break; sleep 0.1; done
"$QUARK" version >/dev/null 2>&1 || fail "quarkd did not start: $(tail -20 $T/quarkd.out)"

node "$here/image.js" "$T/images" || { tail -30 $T/quark.log; fail "CRI image checks"; }

echo "== CLI"
"$QUARK" pull busybox > $T/pull.out 2>&1 || fail "quark pull: $(cat $T/pull.out)"
grep -q "sha256:" $T/pull.out || fail "quark pull printed no id: $(cat $T/pull.out)"
cat $T/pull.out | tail -3
"$QUARK" images | tee $T/images.out
grep -q "docker.io/library/busybox *latest" $T/images.out || fail "quark images lacks busybox"
"$QUARK" --json images | python3 -c 'import json,sys; d=json.load(sys.stdin); assert any("docker.io/library/busybox:latest" in i["repoTags"] for i in d["images"]), d'
skopeo copy -q "oci:$IMG_TEST_IMAGES/layered:latest" "oci-archive:$T/layered.tar:v1" >/dev/null
"$QUARK" import $T/layered.tar docker.io/library/layered || fail "quark import"
"$QUARK" images | grep -q "docker.io/library/layered *v1" || fail "imported image not listed by quarkd"
"$QUARK" rmi layered:v1 busybox || fail "quark rmi"
"$QUARK" images | grep -q busybox && fail "busybox still listed after rmi"
if "$QUARK" rmi busybox 2>$T/rmi.err; then fail "rmi of a missing image succeeded"; fi
grep -q "busybox" $T/rmi.err || fail "rmi error does not name the image"
kill -TERM $QPID
wait $QPID || fail "quarkd exited $? after SIGTERM"

echo "== quarkd killed (-9) mid-pull: the next quarkd cleans up, the pull works"
python3 "$here/../../integration/image/regpush.py" http://127.0.0.1:$P library/bigrand latest random 16 >/dev/null
SP=$(free_port)
python3 "$here/../../integration/image/redirector.py" $SP http://127.0.0.1:$P $T/slow.log --slow &
PIDS+=($!)
for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:$SP/v2/ && break; sleep 0.1; done
sed -i "s|\"docker.io\":\[\"http://127.0.0.1:$P\"\]|\"docker.io\":[\"http://127.0.0.1:$SP\"]|; s|\"Insecure\":\[|\"Insecure\":[\"127.0.0.1:$SP\",|" $T/config.json
grep -q "127.0.0.1:$SP" $T/config.json || fail "config edit"
start_q() {
  "$QUARKD" --config $T/config.json --foreground >> $T/quarkd.out 2>&1 &
  QPID=$!
  PIDS+=("$QPID")
  for _ in $(seq 150); do [ -S $SOCK ] && "$QUARK" version >/dev/null 2>&1 && break; sleep 0.1; done
}
start_q
"$QUARK" pull bigrand > $T/pull2.out 2>&1 &
for _ in $(seq 100); do ls $T/images/tmp 2>/dev/null | grep -q blob && break; sleep 0.1; done
ls $T/images/tmp | grep -q blob || fail "the pull did not start downloading"
sleep 0.5
kill -9 $QPID; wait $QPID 2>/dev/null || true
[ -n "$(ls $T/images/tmp)" ] || fail "expected leftovers from the killed pull"
start_q
[ -z "$(ls $T/images/tmp)" ] || fail "quarkd did not clean leftovers at start: $(ls $T/images/tmp)"
"$IMG_TOOL" --root $T/images check >/dev/null || fail "store inconsistent after the kill"
"$QUARK" pull bigrand >/dev/null || fail "pull after restart"
"$IMG_TOOL" --root $T/images check >/dev/null || fail "store inconsistent after the second pull"
kill -TERM $QPID
wait $QPID || fail "quarkd exited $? after SIGTERM"
echo PASS
