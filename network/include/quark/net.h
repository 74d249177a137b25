/* Pod networking on the host: network namespaces, CNI (a libcni equivalent),
 * namespaced sysctls and the pod's name files. Prefix: net_.
 *
 * Who calls what:
 *   quarkd RunPodSandbox    net_pod_setup (netns + sysctls + CNI ADD lo, eth0)
 *                           then net_write_pod_files for resolv.conf/hosts/hostname
 *   quarkd StopPodSandbox   net_pod_detach (CNI DEL while the netns is still mounted)
 *   quarkd RemovePodSandbox net_pod_teardown (DEL again, idempotent, then remove netns)
 *   quarkd Status           net_cni_status (NetworkReady false, NET_NOT_READY_REASON)
 *   quark-sandbox           net_netns_enter before it creates any thread or socket
 *
 * Contract common to every function:
 * - Errors are a negative errno plus, when err is non-NULL, an error object
 *   (quark/common.h) whose message names the file, plugin or namespace at fault.
 *   A CNI plugin's own error ({code, msg, details} on its stdout) is reported
 *   with the plugin's message.
 * - Plugins run as child processes with posix_spawn and are reaped with
 *   waitpid(pid): a process that uses this library must not reap unknown
 *   children with waitpid(-1) or SIGCHLD set to SIG_IGN.
 * - No function changes the calling thread's network namespace, except
 *   net_netns_enter/net_netns_leave, whose purpose it is. Work inside a pod's
 *   namespace happens on a short-lived helper thread.
 * - Every function is safe to call from several threads at once on distinct
 *   pods; a net_cni handle is read-only after net_cni_new.
 */
#ifndef QUARK_NET_H
#define QUARK_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quark/common.h"

#define NET_DEFAULT_CONF_DIR "/etc/cni/net.d"
#define NET_DEFAULT_CACHE_DIR "/var/lib/cni"
#define NET_DEFAULT_NETNS_DIR "/var/run/netns"
#define NET_DEFAULT_PLUGIN_TIMEOUT_MS 60000
/* CRI Status: the reason kubelet expects when the network is not ready. */
#define NET_NOT_READY_REASON "NetworkPluginNotReady"
/* The loopback network containerd adds before the default one. */
#define NET_LOOPBACK_NETWORK "cni-loopback"
#define NET_DEFAULT_IFNAME "eth0"

typedef struct net_kv {
  const char *key;
  const char *value;
} net_kv;

/* ---- network namespaces ---- */

/* Creates a new network namespace and pins it at <run_dir>/<name> (run_dir
 * NULL: /var/run/netns) by bind-mounting the namespace of a helper thread
 * that unshared, so no thread of the caller changes namespace. `lo` is brought
 * up inside. name NULL: "quark-<16 random hex>". *path_out (malloc'd) is the
 * pinned path. -EEXIST when the name is taken. On failure nothing is left. */
int net_netns_create(const char *run_dir, const char *name, char **path_out, q_error **err);

/* Unmounts and unlinks a pinned namespace. A missing path, or a plain file
 * that is no longer a mount, is success (idempotent). Nothing but an nsfs
 * mount is ever unmounted; a directory is refused. The namespace itself
 * lives on while a process or an open fd still holds it. */
int net_netns_remove(const char *path, q_error **err);

/* True when path is a pinned network namespace (an nsfs mount). */
bool net_netns_is_pinned(const char *path);

/* True when the namespace at path is gone: the path is unset, missing, or no
 * longer an nsfs mount. net_netns_remove unmounts the pin before it unlinks
 * the file, and net_netns_create makes the file before it mounts on it, so a
 * quarkd killed in between leaves a plain file, which the CNI plugins refuse
 * ("unknown FS magic"): a DEL then passes an empty CNI_NETNS, as containerd
 * does once its netns is closed, and the spec's DEL cleans up what lives
 * outside it (IPAM, rules). An unreadable path (EACCES) is not gone: the
 * plugin says why. */
bool net_netns_gone(const char *path);

/* Moves the CALLING THREAD into the namespace at path. *saved_fd receives an
 * fd of the thread's previous namespace for net_netns_leave; pass NULL to
 * enter for good (quark-sandbox does this before it creates any thread). */
int net_netns_enter(const char *path, int *saved_fd, q_error **err);
/* Returns the calling thread to saved_fd's namespace and closes saved_fd. */
int net_netns_leave(int saved_fd, q_error **err);

/* Runs fn(arg, err) on a helper thread that has entered the namespace at
 * path; returns fn's result. The helper exits afterwards, so the namespace
 * never leaks into a pooled thread. Sockets fn creates stay in the namespace
 * and may be used by the caller afterwards. */
typedef int (*net_netns_fn)(void *arg, q_error **err);
int net_netns_run(const char *path, net_netns_fn fn, void *arg, q_error **err);

/* Writes namespaced sysctls inside the namespace at path: first the pod
 * defaults net.ipv4.ip_unprivileged_port_start=0 and
 * net.ipv4.ping_group_range="0 2147483647", then sysctls[] in order (so the
 * pod may override a default). Keys are "net.x.y" or "net/x/y"; anything
 * outside net.* is refused with -EINVAL (it would not be namespaced). */
int net_netns_set_sysctls(const char *path, const net_kv *sysctls, size_t n, q_error **err);

/* ---- CNI handle ---- */

typedef struct net_cni_options {
  const char *conf_dir;           /* NULL: /etc/cni/net.d */
  const char *const *plugin_dirs; /* searched in order; NULL: /opt/cni/bin, /usr/lib/cni */
  size_t n_plugin_dirs;
  const char *cache_dir; /* NULL: /var/lib/cni (results in <cache_dir>/results) */
  const char *netns_dir; /* NULL: /var/run/netns */
  int plugin_timeout_ms; /* per plugin run; 0: 60 s */
} net_cni_options;

typedef struct net_cni net_cni;

/* Copies the options; nothing is read from disk yet (configs are loaded on
 * every setup/status call, so edits to the conf dir take effect at once). */
int net_cni_new(const net_cni_options *opts, net_cni **out, q_error **err);
void net_cni_free(net_cni *c);
const char *net_cni_conf_dir(const net_cni *c);
const char *net_cni_cache_dir(const net_cni *c);

/* 0 when a valid default network config loads (and every plugin it names is
 * found in the plugin path). Otherwise a negative errno and *message (malloc'd)
 * says why, for CRI Status: NetworkReady=false, reason NET_NOT_READY_REASON. */
int net_cni_status(const net_cni *c, char **message);

/* ---- network configuration lists ---- */

typedef struct net_conf_list {
  char *name;
  char *cni_version;
  bool disable_check;
  char *source; /* file it came from, or NULL */
  size_t n_plugins;
  char **plugin_types; /* n_plugins entries */
  char *bytes;         /* the list's JSON (generated for a wrapped .conf); cached on ADD */
  size_t len;
  void *json; /* private: parsed list */
} net_conf_list;

/* Parses one list. is_list false: a single plugin config (.conf/.json) that
 * is wrapped into a list of one. source names the data in errors. */
int net_conf_parse(const char *bytes, size_t len, bool is_list, const char *source,
                   net_conf_list **out, q_error **err);
void net_conf_list_free(net_conf_list *l);

/* Reads every *.conf, *.conflist and *.json in dir in byte-wise file-name
 * order. *lists gets the valid ones in that order (the first is the default
 * network); *problems (malloc'd, or NULL when none) lists each invalid file
 * with its error, "; "-separated. -ENOENT when dir is missing. */
int net_conf_discover(const char *dir, net_conf_list ***lists, size_t *n, char **problems,
                      q_error **err);
void net_conf_lists_free(net_conf_list **lists, size_t n);

/* The default network of dir; -ENOENT with a message naming dir and every
 * invalid file when there is none. */
int net_conf_load_default(const char *dir, net_conf_list **out, q_error **err);

/* The built-in loopback list (cniVersion 0.3.1, one "loopback" plugin). */
int net_conf_loopback(net_conf_list **out, q_error **err);

/* Path of plugin `type` in the plugin dirs; -ENOENT "failed to find plugin". */
int net_cni_find_plugin(const net_cni *c, const char *type, char **path, q_error **err);

/* ---- results ---- */

typedef struct net_iface {
  char *name;
  char *mac;     /* may be NULL */
  char *sandbox; /* netns path for interfaces inside the pod, NULL for host ones */
} net_iface;

typedef struct net_ip {
  int version;   /* 4 or 6 */
  char *address; /* CIDR, "10.88.0.5/16" */
  char *gateway; /* may be NULL */
  int iface;     /* index into net_result.ifaces, -1 when the result gives none */
} net_ip;

typedef struct net_route {
  char *dst; /* CIDR */
  char *gw;  /* may be NULL */
} net_route;

typedef struct net_dns {
  char **nameservers;
  size_t n_nameservers;
  char *domain;
  char **search;
  size_t n_search;
  char **options;
  size_t n_options;
} net_dns;

/* One result in any supported version: 0.1.0/0.2.0 (ip4/ip6), 0.3.0, 0.3.1,
 * 0.4.0 and 1.0.0. A missing cniVersion is 0.1.0, as libcni reads it. */
typedef struct net_result {
  char *cni_version;
  net_iface *ifaces;
  size_t n_ifaces;
  net_ip *ips;
  size_t n_ips;
  net_route *routes;
  size_t n_routes;
  net_dns dns;
} net_result;

int net_result_parse(const char *json, size_t len, net_result **out, q_error **err);
void net_result_free(net_result *r);

/* ---- invoking a list ---- */

/* One attachment of a container to a network, as libcni's RuntimeConf. */
typedef struct net_runtime {
  const char *container_id; /* CNI_CONTAINERID: [A-Za-z0-9][A-Za-z0-9_.-]* */
  const char *netns;        /* CNI_NETNS */
  const char *ifname;       /* CNI_IFNAME */
  const net_kv *args;       /* CNI_ARGS "K=V;K=V" in this order */
  size_t n_args;
  /* JSON object of capability arguments ("portMappings", "bandwidth", "dns",
   * "io.kubernetes.cri.pod-annotations", ...), or NULL. Each plugin gets, in
   * its runtimeConfig, only the keys it declares in "capabilities". */
  const char *capability_args;
} net_runtime;

/* ADD every plugin of the list in order, chaining prevResult; on success the
 * result is cached (<cache_dir>/results/<net>-<id>-<ifname>, libcni's
 * cniCacheV1 format) and returned: *result parsed, *raw (optional) the JSON.
 * On failure nothing is cached and the plugins already run are NOT undone:
 * call net_cni_del_list (net_pod_* do). */
int net_cni_add_list(const net_cni *c, const net_conf_list *l, const net_runtime *rt,
                     net_result **result, char **raw, q_error **err);
/* DEL every plugin in reverse order with the cached result as prevResult
 * (lists at 0.4.0 and later) and the cached CNI_ARGS and capability args when
 * a cache entry exists. The first plugin that fails ends the DEL (libcni's
 * order: what the earlier plugins of the list hold stays for a retry, which
 * runs every plugin again); on full success the cache entry is removed. A
 * missing netns is passed as an empty CNI_NETNS (the spec's best-effort DEL).
 * A plugin binary that is missing fails DEL only when a cache entry exists
 * (an ADD completed with it). */
int net_cni_del_list(const net_cni *c, const net_conf_list *l, const net_runtime *rt,
                     q_error **err);
/* CHECK with the cached result. Lists older than 0.4.0 or with disableCheck
 * succeed without running anything. -ENOENT when nothing is cached. */
int net_cni_check_list(const net_cni *c, const net_conf_list *l, const net_runtime *rt,
                       q_error **err);

/* ---- result cache (libcni-compatible) ---- */

typedef struct net_cache_entry {
  char *container_id;
  char *network_name;
  char *ifname;
  char *netns;  /* may be NULL */
  char *config; /* the list's bytes (base64 in the file) */
  size_t config_len;
  char *cni_args;        /* JSON array of [key, value] pairs, or NULL */
  char *capability_args; /* JSON object, or NULL */
  char *result;          /* JSON object, or NULL */
} net_cache_entry;

/* <cache_dir>/results/<network>-<container_id>-<ifname>; NULL on bad names. */
char *net_cache_path(const char *cache_dir, const char *network, const char *container_id,
                     const char *ifname);
int net_cache_write(const char *cache_dir, const net_cache_entry *e, q_error **err);
/* -ENOENT when there is no entry; -EINVAL when the file is not cniCacheV1. */
int net_cache_read(const char *cache_dir, const char *network, const char *container_id,
                   const char *ifname, net_cache_entry **out, q_error **err);
/* Finds the entry of container_id on ifname whatever the network's name (the
 * config may have been renamed since ADD). -ENOENT when none. */
int net_cache_find(const char *cache_dir, const char *container_id, const char *ifname,
                   net_cache_entry **out, q_error **err);
int net_cache_remove(const char *cache_dir, const char *network, const char *container_id,
                     const char *ifname, q_error **err);
void net_cache_entry_free(net_cache_entry *e);

/* ---- pods ---- */

typedef struct net_port_mapping {
  const char *protocol; /* "TCP", "UDP", "SCTP" (any case); NULL: tcp */
  int32_t container_port;
  int32_t host_port;   /* <= 0: not mapped (skipped, as containerd does) */
  const char *host_ip; /* NULL or "": all addresses */
} net_port_mapping;

typedef struct net_dns_config {
  const char *const *servers;
  size_t n_servers;
  const char *const *searches;
  size_t n_searches;
  const char *const *options;
  size_t n_options;
} net_dns_config;

typedef struct net_pod {
  const char *id;        /* sandbox id: CNI_CONTAINERID, K8S_POD_INFRA_CONTAINER_ID */
  const char *name;      /* K8S_POD_NAME */
  const char *namespace; /* K8S_POD_NAMESPACE */
  const char *uid;       /* K8S_POD_UID */
  /* Set by net_pod_setup when NULL (it creates the namespace); required by
   * attach/detach/check. */
  const char *netns_path;
  const net_port_mapping *ports;
  size_t n_ports;
  const net_kv *annotations; /* bandwidth annotations, and pod annotations for plugins */
  size_t n_annotations;
  const net_dns_config *dns; /* the "dns" capability; may be NULL */
  const net_kv *sysctls;     /* net.* sysctls of the pod (setup only) */
  size_t n_sysctls;
  const char *cgroup_parent; /* the "cgroupPath" capability; may be NULL */
} net_pod;

typedef struct net_pod_network {
  char *netns_path;      /* the namespace in use (created by setup, or the pod's) */
  char *network_name;    /* the default network the pod is attached to */
  net_result *result;    /* the default network's result on eth0 */
  char *raw_result;      /* its JSON */
  char *primary_ip;      /* first IPv4 on eth0 (else first IP), no prefix; NULL if none */
  char **additional_ips; /* the other IPs on eth0 */
  size_t n_additional_ips;
} net_pod_network;

/* Kubernetes bandwidth annotation value ("10M", "1Gi", "500k") to bits per
 * second, as containerd reads it (Kubernetes quantity, rounded up); values
 * under 1k or over 1P are refused like kubelet refuses them. */
int net_parse_bandwidth(const char *quantity, uint64_t *bps, q_error **err);

/* The capability arguments JSON containerd would pass for this pod:
 * portMappings, bandwidth (from kubernetes.io/ingress-bandwidth and
 * egress-bandwidth, burst 2^32-1 bits), dns, cgroupPath and
 * io.kubernetes.cri.pod-annotations. */
int net_pod_capability_args(const net_pod *pod, char **json_out, q_error **err);

/* Creates the pod's namespace (unless pod->netns_path is set), applies the
 * sysctls, then net_pod_attach. On any failure everything done is undone:
 * DEL on the partial ADD, the namespace removed, no cache entry left. */
int net_pod_setup(const net_cni *c, const net_pod *pod, net_pod_network **out, q_error **err);
/* ADD the loopback network on lo, then the default network on eth0. On
 * failure the partial ADD is rolled back with DEL (the namespace stays). */
int net_pod_attach(const net_cni *c, const net_pod *pod, net_pod_network **out, q_error **err);
/* DEL the default network (from the cache entry when there is one, so a
 * changed conf dir does not matter) and the loopback network. Idempotent:
 * nothing cached and no config is success; a namespace that is gone (the
 * path missing, or a plain file with no nsfs mount, what a kill inside
 * net_netns_create or net_netns_remove leaves) is passed as an empty
 * CNI_NETNS. Errors a plugin reports as "not found" are taken as already
 * deleted. */
int net_pod_detach(const net_cni *c, const net_pod *pod, q_error **err);
/* CHECK both networks (tolerant: lists before 0.4.0 pass). */
int net_pod_check(const net_cni *c, const net_pod *pod, q_error **err);
/* net_pod_detach, then net_netns_remove(pod->netns_path) when set. The
 * namespace is removed only when DEL succeeded, so a retry can still DEL. */
int net_pod_teardown(const net_cni *c, const net_pod *pod, q_error **err);
/* The pod's default-network attachment as cached at ADD (netns, network,
 * result, primary and additional IPs), for quarkd's PodSandboxStatus after a
 * restart. -ENOENT when nothing is cached for the pod. */
int net_pod_cached(const net_cni *c, const char *pod_id, net_pod_network **out, q_error **err);
void net_pod_network_free(net_pod_network *n);

/* ---- pod name files ---- */

/* resolv.conf text from a CRI DNSConfig: "search", "nameserver" lines,
 * "options", in containerd's order. Entries with whitespace or newlines are
 * refused (-EINVAL). */
int net_render_resolv_conf(const net_dns_config *dns, char **out, q_error **err);
/* /etc/hosts: localhost lines (IPv4 and IPv6) then "<ip>\t[fqdn\t]hostname"
 * for every pod IP. ips may be empty (hostname then maps to no address). */
int net_render_hosts(const char *hostname, const char *fqdn, const char *const *ips, size_t n_ips,
                     char **out, q_error **err);
/* Writes dir/resolv.conf, dir/hosts and dir/hostname atomically (mode 0644;
 * replaced by rename, not synced: q_write_file_replace).
 * dns NULL or empty: resolv.conf is a copy of host_resolv (NULL:
 * /etc/resolv.conf), as containerd does for pods without a DNSConfig. */
int net_write_pod_files(const char *dir, const net_dns_config *dns, const char *host_resolv,
                        const char *hostname, const char *fqdn, const char *const *ips,
                        size_t n_ips, q_error **err);

#endif
