#!/usr/bin/env bash
# Garbage bytes, malformed protobuf, a 64 MiB message, 400 concurrent calls
# and clients that vanish mid-call: quarkd keeps answering and still stops
# cleanly (exit 0 under ASan/UBSan/LSan).
. "$(dirname "$0")/lib.sh"
e2e_need_node
e2e_setup
start_quarkd
node "$(dirname "$0")/bad_input.js"
kill -0 "$QPID" || e2e_fail "quarkd died"
stop_quarkd
