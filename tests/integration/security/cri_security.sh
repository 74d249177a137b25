#!/usr/bin/env bash
# The pod's security settings through quarkd (cri_security.js), in the
# per-container-VM pod mode and in the shared-VM mode (QUARK_POD_SHARED_VM).
. "$(dirname "$0")/../../e2e/pods/lib.sh"
need_root
need_sandbox
[ -x "${T_SEC:-}" ] || e2e_skip "t_sec not built"
pods_setup
mkdir -p "$T/seccomp"
cp "$T_SEC" "$T/t_sec" && export T_SEC=$T/t_sec
cat >"$T/seccomp/profile.json" <<'JSON'
{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
 "syscalls": [{"names": ["unshare", "keyctl", "add_key", "bpf", "mount"], "action": "SCMP_ACT_ERRNO"},
              {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}
JSON
cp "$T/seccomp/profile.json" "$T/profile-outside.json"
export QUARK_SECCOMP_ROOT=$T/seccomp
need_busybox
for shared in 0 1; do
  export QUARK_POD_SHARED_VM=$shared
  echo "-- QUARK_POD_SHARED_VM=$shared"
  start_quarkd
  node "$(dirname "$0")/cri_security.js" || e2e_fail "cri_security.js (shared VM $shared)"
  stop_quarkd
done
echo PASS
