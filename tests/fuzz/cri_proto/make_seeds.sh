#!/usr/bin/env bash
# Regenerates the seeds of cri_proto and cri_handlers: one CRI request per
# file, the selector byte of its RPC (from the fuzzer's own table) then the
# request encoded by protoc from the text below. Run after api.proto gains or
# reorders RPCs. Usage: tests/fuzz/cri_proto/make_seeds.sh FUZZ_CRI_PROTO_BINARY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
proto=$here/../../../cri/proto
bin=$1
out=$here/seeds
table=$(QUARK_FUZZ_LIST=1 "$bin")
rm -rf "$out"
mkdir -p "$out"
P=aaaa000000000000000000000000000000000000000000000000000000000001
C=bbbb000000000000000000000000000000000000000000000000000000000001
n=0
seed() { # RPC, text-format request
  local rpc=$1 text=$2 sel type
  read -r sel _ type < <(grep " $rpc " <<<"$table")
  n=$((n + 1))
  { printf '%b' "\\0$(printf '%03o' "$sel")"
    protoc --encode="$type" -I"$proto" "$proto/api.proto" <<<"$text"; } >"$out/$rpc-$n"
}
POD='metadata { name: "web" uid: "u-1" namespace: "default" attempt: 1 }
  hostname: "web" log_directory: "/var/log/pods/default_web_u-1"
  dns_config { servers: "10.96.0.10" searches: "default.svc.cluster.local" options: "ndots:5" }
  port_mappings { protocol: TCP container_port: 80 host_port: 8080 host_ip: "127.0.0.1" }
  labels { key: "app" value: "web" } annotations { key: "kubernetes.io/ingress-bandwidth" value: "10M" }
  linux { cgroup_parent: "/kubepods/besteffort/podu-1"
    security_context { namespace_options { network: POD pid: CONTAINER }
      run_as_user { value: 1000 } supplemental_groups: 5 seccomp { profile_type: RuntimeDefault } }
    sysctls { key: "net.ipv4.ip_unprivileged_port_start" value: "0" } }'
seed Version 'version: "v1"'
seed RunPodSandbox "config { $POD } runtime_handler: \"quark\""
seed StopPodSandbox "pod_sandbox_id: \"$P\""
seed RemovePodSandbox 'pod_sandbox_id: "aaaa"'
seed PodSandboxStatus "pod_sandbox_id: \"${P:0:12}\" verbose: true"
seed ListPodSandbox 'filter { state { state: SANDBOX_READY } label_selector { key: "app" value: "web" } }'
seed ListPodSandbox 'filter { id: "aaaa" }'
seed CreateContainer "pod_sandbox_id: \"$P\" sandbox_config { $POD } config {
  metadata { name: \"app\" attempt: 0 } image { image: \"docker.io/library/busybox:latest\" }
  command: \"/bin/sh\" args: \"-c\" args: \"sleep 1000\" working_dir: \"/work\"
  envs { key: \"PATH\" value: \"/bin\" } mounts { container_path: \"/data\" host_path: \"/tmp/data\" readonly: true }
  devices { container_path: \"/dev/fuse\" host_path: \"/dev/fuse\" permissions: \"rwm\" }
  labels { key: \"app\" value: \"web\" } log_path: \"app/0.log\" stdin: true tty: true
  linux { resources { cpu_period: 100000 cpu_quota: 50000 memory_limit_in_bytes: 67108864 unified { key: \"pids.max\" value: \"64\" } }
    security_context { capabilities { add_capabilities: \"NET_ADMIN\" drop_capabilities: \"ALL\" }
      run_as_user { value: 0 } readonly_rootfs: true no_new_privs: true masked_paths: \"/proc/kcore\"
      readonly_paths: \"/proc/sys\" seccomp { profile_type: Localhost localhost_ref: \"profiles/a.json\" } } } }"
seed StartContainer "container_id: \"$C\""
seed StopContainer "container_id: \"$C\" timeout: 10"
seed RemoveContainer 'container_id: "bbbb"'
seed ListContainers "filter { pod_sandbox_id: \"aaaa\" state { state: CONTAINER_RUNNING } label_selector { key: \"app\" value: \"web\" } }"
seed ContainerStatus "container_id: \"${C:0:12}\" verbose: true"
seed UpdateContainerResources "container_id: \"$C\" linux { cpu_shares: 512 memory_limit_in_bytes: 1048576 }"
seed ReopenContainerLog "container_id: \"$C\""
seed ExecSync "container_id: \"$C\" cmd: \"ls\" cmd: \"/\" timeout: 5"
seed Exec "container_id: \"$C\" cmd: \"sh\" tty: true stdin: true stdout: true"
seed Attach "container_id: \"$C\" stdin: true stdout: true stderr: true"
seed PortForward "pod_sandbox_id: \"$P\" port: 80 port: 443"
seed ContainerStats "container_id: \"$C\""
seed ListContainerStats 'filter { id: "bb" pod_sandbox_id: "aa" }'
seed PodSandboxStats "pod_sandbox_id: \"$P\""
seed UpdateRuntimeConfig 'runtime_config { network_config { pod_cidr: "10.88.0.0/16,fd00::/64" } }'
seed UpdateRuntimeConfig 'runtime_config { network_config { pod_cidr: "10.88.0.0/33" } }'
seed Status 'verbose: true'
seed RuntimeConfig ''
seed ListImages 'filter { image { image: "busybox" } }'
seed ImageStatus 'image { image: "docker.io/library/busybox@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" } verbose: true'
seed ImageStatus 'image { image: "sha256:0123" }'
seed PullImage 'image { image: "localhost:5000/a/b:c" } auth { username: "u" password: "p" server_address: "localhost:5000" }'
seed RemoveImage 'image { image: "busybox:latest" }'
seed ImageFsInfo ''
echo "wrote $n seeds to $out"
