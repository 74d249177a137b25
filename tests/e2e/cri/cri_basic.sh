#!/usr/bin/env bash
# quarkd answers a standard CRI client (@grpc/grpc-js + our api.proto):
# Version, Status, RuntimeConfig, UpdateRuntimeConfig, List*, *Status,
# UNIMPLEMENTED for RPCs not served; also measures latency and idle RSS.
. "$(dirname "$0")/lib.sh"
e2e_need_node
e2e_setup
start_quarkd
here=$(dirname "$0")
node "$here/basic.js"
QUARK_LATENCY_CALLS=500 node "$here/latency.js"
sleep 1
echo "quarkd idle RSS: $(rss_kib "$QPID") KiB (this build; sanitizers inflate it)"
stop_quarkd
