#!/usr/bin/env bash
# Installs the Debian packages Quark needs that are missing on this machine.
# Usage: deploy/deps.sh build|test|run ...   (groups add up)
# One list per group; add a package to the group that first needs it.
set -euo pipefail

build=(build-essential cmake pkg-config git
  libgrpc-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
  liburing-dev libbpf-dev libibverbs-dev librdmacm-dev libjansson-dev
  libcurl4-openssl-dev libarchive-dev libssl-dev libzstd-dev libseccomp-dev
  libcriterion-dev musl-tools libwslay-dev)
test=(docker-registry apache2-utils umoci skopeo busybox-static
  containernetworking-plugins iproute2 unzip curl jq redis-server containerd
  golang-go golang-github-docker-spdystream-dev golang-github-gorilla-websocket-dev runc crun runsc file
  shellcheck clang libclang-rt-14-dev nginx-light wrk)
run=(busybox-static umoci containernetworking-plugins iproute2 python3)

want=()
for g in "$@"; do
  case "$g" in
    build) want+=("${build[@]}") ;;
    test) want+=("${test[@]}") ;;
    run) want+=("${run[@]}") ;;
    *) echo "deps.sh: unknown group '$g' (build, test, run)" >&2; exit 2 ;;
  esac
done

missing=()
# Node.js may come from Debian (nodejs + npm) or from NodeSource (one nodejs
# package that ships npm and conflicts with Debian's npm): judge by command.
if [[ " $* " == *" test "* ]]; then
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
fi
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps.sh: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: need root to install packages (run with sudo)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
