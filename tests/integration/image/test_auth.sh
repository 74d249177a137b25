#!/usr/bin/env bash
# Authenticated registries: docker-registry with htpasswd basic auth, and
# with token auth served by a token server written in the test (node).
# Anonymous pulls and bad credentials fail with a message that says so;
# username/password, base64 auth, identity (refresh) tokens and registry
# tokens work; a bearer token is fetched once per scope and reused.
source "$(dirname "$0")/lib.sh"
command -v htpasswd >/dev/null || skip "htpasswd not installed (apache2-utils)"
command -v node >/dev/null || skip "node not installed"
command -v openssl >/dev/null || skip "openssl not installed"
build_images busybox redis
here=$(cd "$(dirname "$0")" && pwd)

echo "== htpasswd basic auth"
htpasswd -Bbn alice s3cret > $T/htpasswd 2>/dev/null
start_registry basic "auth:
  htpasswd:
    realm: quark-test
    path: $T/htpasswd"
P=$REG_basic_PORT
push busybox $P library/busybox:latest --dest-creds alice:s3cret
S=$T/store
R=127.0.0.1:$P/library/busybox
I=(--insecure 127.0.0.1:$P --retries -1)
expect_fail "requires authentication (basic) and no credentials were given" tool $S "${I[@]}" pull $R
expect_fail "HTTP 401" tool $S "${I[@]}" --user alice --pass wrong pull $R
tool $S "${I[@]}" --user alice --pass s3cret pull $R >/dev/null || fail "basic auth with user/password"
tool $S rmi $R
tool $S "${I[@]}" --auth "$(printf alice:s3cret | base64)" pull $R >/dev/null || fail "basic auth with base64 auth"
check_store $S

echo "== token auth"
openssl req -x509 -newkey rsa:2048 -nodes -keyout $T/key.pem -out $T/cert.pem -days 1 \
  -subj /CN=quark-test-token >/dev/null 2>&1
TP=$(free_port)
node $here/token_server.js $TP $T/key.pem $T/cert.pem bob:pa55 refresh-xyz $T/tokens.log &
PIDS+=($!)
for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:$TP/token && break; sleep 0.1; done
start_registry token "auth:
  token:
    realm: http://127.0.0.1:$TP/token
    service: quark-test
    issuer: quark-test-issuer
    rootcertbundle: $T/cert.pem"
P=$REG_token_PORT
push busybox $P team/busybox:latest --dest-creds bob:pa55
push redis $P team/redis:7 --dest-creds bob:pa55
push busybox $P team/redis:other --dest-creds bob:pa55
S=$T/store2
I=(--insecure 127.0.0.1:$P --retries -1)
expect_fail "token server .* refused" tool $S "${I[@]}" pull 127.0.0.1:$P/team/busybox
expect_fail "credentials rejected" tool $S "${I[@]}" --user bob --pass nope pull 127.0.0.1:$P/team/busybox
: > $T/tokens.log
tool $S "${I[@]}" --user bob --pass pa55 pull 127.0.0.1:$P/team/redis:7 127.0.0.1:$P/team/redis:other \
  127.0.0.1:$P/team/busybox >/dev/null || fail "token auth with user/password"
cat $T/tokens.log | sed 's/^/  token request: /'
[ "$(grep -c 'repository:team/redis:pull granted' $T/tokens.log)" -eq 1 ] || fail "token not reused within its scope"
[ "$(grep -c 'repository:team/busybox:pull granted' $T/tokens.log)" -eq 1 ] || fail "no token for the second scope"
tool $S rmi 127.0.0.1:$P/team/busybox
tool $S rmi 127.0.0.1:$P/team/redis:7
tool $S "${I[@]}" --identity-token refresh-xyz pull 127.0.0.1:$P/team/busybox >/dev/null || fail "identity token"
grep -q "^POST repository:team/busybox:pull granted" $T/tokens.log || fail "identity token did not use the OAuth2 POST"
tool $S rmi 127.0.0.1:$P/team/busybox
tok=$(curl -s -u bob:pa55 "http://127.0.0.1:$TP/token?service=quark-test&scope=repository:team/busybox:pull" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
tool $S "${I[@]}" --registry-token "$tok" pull 127.0.0.1:$P/team/busybox >/dev/null || fail "registry token"
check_store $S
check_store $T/store2
echo PASS
