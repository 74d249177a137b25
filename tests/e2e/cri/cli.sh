#!/usr/bin/env bash
# The quark CLI against a private quarkd: tables, --json, --endpoint and
# QUARK_ENDPOINT, and a clear error when the daemon is not running.
. "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || e2e_skip "jq is not installed (deploy/deps.sh test)"
e2e_setup
start_quarkd

"$QUARK" version | grep -q '^Runtime API: *v1' || e2e_fail "quark version"
[ "$("$QUARK" --json version | jq -r .runtimeName)" = quark ] || e2e_fail "quark --json version"
[ "$("$QUARK" version --json | jq -r .runtimeApiVersion)" = v1 ] || e2e_fail "--json after the command"
echo "ok   quark version (table and --json)"

out=$("$QUARK" info)
echo "$out" | grep -q '^RuntimeReady' && echo "$out" | grep -q '^NetworkReady' || e2e_fail "quark info: $out"
[ "$("$QUARK" --json info | jq -r '.conditions | length')" = 2 ] || e2e_fail "quark --json info"
[ "$("$QUARK" --json info | jq -r .info.config.StateRoot)" = "$T/state" ] || e2e_fail "info config"
# NetworkReady follows the CNI config directory: a valid default network
# whose plugins exist (Debian's containernetworking-plugins has loopback).
mkdir -p "$T/cni" && echo '{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"loopback"}]}' >"$T/cni/10-x.conflist"
[ "$("$QUARK" --json info | jq -r '.conditions[] | select(.type=="NetworkReady") | .status')" = true ] ||
  e2e_fail "NetworkReady with a CNI config"
echo "ok   quark info (conditions follow the CNI config dir)"

"$QUARK" pods | head -1 | grep -q '^POD ID' || e2e_fail "quark pods header"
[ "$("$QUARK" pods --json | jq length)" = 0 ] || e2e_fail "quark pods --json"
"$QUARK" ps -a | head -1 | grep -q '^CONTAINER' || e2e_fail "quark ps header"
[ "$("$QUARK" ps --json | jq length)" = 0 ] || e2e_fail "quark ps --json"
echo "ok   quark pods / ps"

ep=$QUARK_ENDPOINT
unset QUARK_ENDPOINT
"$QUARK" --endpoint "$ep" version >/dev/null || e2e_fail "--endpoint"
rc=0
out=$("$QUARK" --endpoint "unix://$T/nope.sock" version 2>&1) || rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "is quarkd running" || e2e_fail "no daemon: rc=$rc $out"
rc=0
"$QUARK" frobnicate >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || e2e_fail "unknown command exit $rc"
export QUARK_ENDPOINT=$ep
echo "ok   --endpoint, missing daemon and unknown command"

stop_quarkd
rc=0
out=$("$QUARK" version 2>&1) || rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "is quarkd running" || e2e_fail "after stop: rc=$rc $out"
echo "ok   clear error once quarkd is stopped"
