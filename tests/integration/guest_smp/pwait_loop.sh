#!/usr/bin/env bash
# Reproduction loop for the 2-vCPU epoll_pwait miss (ARCHITECTURE.md, "SMP";
# not a ctest: it measures, and its counts depend on the host's load).
# Runs `t_smp pwait ROUNDS TIMEOUT_MS` N times in quark-sandbox on 2 vCPUs,
# each run under a timeout, and counts the runs with a bad round (the child's
# SIGUSR1 did not end the main thread's wait before TIMEOUT_MS, or another
# thread took it) and the runs that hit the timeout. With KERNEL2 given, each
# run is paired with one of that kernel beside it (same moment, same load).
# Usage: pwait_loop.sh SANDBOX PROGDIR KERNEL [KERNEL2]
#   env: N (30 runs), ROUNDS (1), TIMEOUT_MS (3000), MODE (ring0 | worker),
#        RUN_TIMEOUT (90 s per run)
set -uo pipefail
sbx=$1 progs=$2
shift 2
kernels=("$@")
here=$(cd "$(dirname "$0")" && pwd)
n=${N:-30} rounds=${ROUNDS:-1} tmo=${TIMEOUT_MS:-3000} mode=${MODE:-ring0}
work=/tmp/quark-pwait-$$
rm -rf "$work" && mkdir -p "$work" || exit 1
trap 'rm -rf "$work"' EXIT
"$here/../guest/mkfixture.sh" "$work/root" "$progs" >/dev/null || exit 1
args=(--vcpus 2)
[ "$mode" = ring0 ] && args+=(--no-kernel-worker)
declare -A miss hang
one() { # KERNEL OUT
  timeout "${RUN_TIMEOUT:-90}" "$sbx" run --rootfs "$work/root" --kernel "$1" "${args[@]}" -- \
    /bin/t_smp pwait "$rounds" "$tmo" </dev/null >"$2" 2>&1
  echo "rc $?" >>"$2"
}
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq 1 "$n"); do
  for k in "${!kernels[@]}"; do
    one "${kernels[$k]}" "$work/out.$k" &
  done
  wait
  for k in "${!kernels[@]}"; do
    sed -n "s|^pwait round|run $i, ${kernels[$k]}: round|p" "$work/out.$k"
    grep -q '^pwait round' "$work/out.$k" && miss[$k]=$((${miss[$k]:-0} + 1))
    grep -qE '^rc (124|137)$' "$work/out.$k" && hang[$k]=$((${hang[$k]:-0} + 1))
  done
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
for k in "${!kernels[@]}"; do
  echo "${kernels[$k]}: $n runs of $rounds round(s), ${tmo} ms: ${miss[$k]:-0} with a miss, ${hang[$k]:-0} timed out"
done
