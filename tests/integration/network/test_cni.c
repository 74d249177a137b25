/* Pod networking with real namespaces and the real Debian CNI plugins
 * (bridge, host-local, loopback, portmap from /usr/lib/cni).
 *
 * Everything lives on a test-only bridge (qnit0) with a private subnet
 * (10.89.231.0/24) and goes only to loopback or into namespaces made here.
 * Each test removes its namespaces, bridge, iptables chains, IPAM store and
 * cache, also on failure (the fixture's fini runs after a failed assert).
 * Needs root, network namespaces and the plugins; exits 77 otherwise. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "quark/net.h"

#define BRIDGE "qnit0"
#define SUBNET "10.89.231.0/24"
#define NETNAME "quark-it"
#define PLUGINS "/usr/lib/cni"
#define HOSTPORT 38291

static char tmpdir[] = "/tmp/quark-net-it-XXXXXX";
static char confdir[600], cachedir[600], nsdir[600], ipamdir[600], bindir[600];
static int lock_fd = -1;
static bool had_hostport_chains;

static int sh(const char *fmt, ...) Q_PRINTF(1, 2);
static int sh(const char *fmt, ...)
{
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
  cr_assert_eq(q_write_file_atomic(path, text, strlen(text), mode, NULL), 0);
}

static void write_conflist_version(const char *version, const char *extra_plugins)
{
  char text[2048], path[700];
  snprintf(text, sizeof(text),
           "{\"cniVersion\":\"%s\",\"name\":\"" NETNAME "\",\"plugins\":["
           "{\"type\":\"bridge\",\"bridge\":\"" BRIDGE "\",\"isGateway\":true,\"ipMasq\":false,"
           "\"hairpinMode\":true,\"ipam\":{\"type\":\"host-local\",\"ranges\":[[{\"subnet\":"
           "\"" SUBNET "\"}]],\"routes\":[{\"dst\":\"0.0.0.0/0\"}],\"dataDir\":\"%s\"}},"
           "{\"type\":\"portmap\",\"capabilities\":{\"portMappings\":true},\"snat\":true}%s]}",
           version, ipamdir, extra_plugins);
  snprintf(path, sizeof(path), "%s/10-quark-it.conflist", confdir);
  write_text(path, text, 0644);
}

static void write_conflist(const char *extra_plugins)
{
  write_conflist_version("1.0.0", extra_plugins);
}

static void setup(void)
{
  /* One run at a time on this machine (the bridge name and subnet are
   * fixed): an abstract unix socket name is the lock, released when the
   * process ends, and leaves no file behind. */
  lock_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_geq(lock_fd, 0);
  struct sockaddr_un lock_addr = {.sun_family = AF_UNIX};
  static const char lock_name[] = "quark-net-integration-test";
  memcpy(lock_addr.sun_path + 1, lock_name, sizeof(lock_name) - 1);
  socklen_t lock_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + sizeof(lock_name));
  for (int i = 0; bind(lock_fd, (struct sockaddr *)&lock_addr, lock_len) < 0; i++) {
    cr_assert(errno == EADDRINUSE && i < 1800, "test lock: %s", strerror(errno));
    usleep(100000);
  }
  cr_assert_not_null(mkdtemp(tmpdir));
  snprintf(confdir, sizeof(confdir), "%s/net.d", tmpdir);
  snprintf(cachedir, sizeof(cachedir), "%s/cache", tmpdir);
  snprintf(nsdir, sizeof(nsdir), "%s/netns", tmpdir);
  snprintf(ipamdir, sizeof(ipamdir), "%s/ipam", tmpdir);
  snprintf(bindir, sizeof(bindir), "%s/bin", tmpdir);
  cr_assert_eq(q_mkdir_p(confdir, 0755, NULL), 0);
  cr_assert_eq(q_mkdir_p(bindir, 0755, NULL), 0);
  had_hostport_chains = sh("iptables -w -t nat -S CNI-HOSTPORT-DNAT >/dev/null 2>&1") == 0;
  write_conflist("");
}

static void teardown(void)
{
  /* Pins left by a failed test: unmount before rm -rf. */
  DIR *d = opendir(nsdir);
  struct dirent *de;
  while (d && (de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    char p[900];
    snprintf(p, sizeof(p), "%s/%s", nsdir, de->d_name);
    net_netns_remove(p, NULL);
  }
  if (d)
    closedir(d);
  sh("ip link del " BRIDGE " >/dev/null 2>&1");
  /* portmap's per-pod chains go with DEL, but a failed test may not get
   * there: remove every chain that mentions our subnet or pod ids, with the
   * jumps into it. */
  sh("for c in $(iptables-save -t nat 2>/dev/null | grep -E '10[.]89[.]231[.]|qnit-pod-' |"
     " grep -o -- '^-A CNI-DN-[0-9a-f]*' | cut -d' ' -f2 | sort -u); do"
     " iptables-save -t nat | grep -- \"-j $c\\b\" | sed 's/^-A/-D/' |"
     " while read -r rule; do eval iptables -w -t nat $rule; done;"
     " iptables -w -t nat -F $c; iptables -w -t nat -X $c; done 2>/dev/null");
  /* Its shared chains and their jumps stay by design: remove them when
   * this test created them. */
  if (!had_hostport_chains) {
    sh("iptables -w -t nat -D PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT "
       "2>/dev/null;"
       "iptables -w -t nat -D OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT 2>/dev/null;"
       "iptables -w -t nat -D POSTROUTING -m comment --comment 'CNI portfwd requiring masquerade' "
       "-j CNI-HOSTPORT-MASQ 2>/dev/null;"
       "for c in CNI-HOSTPORT-DNAT CNI-HOSTPORT-SETMARK CNI-HOSTPORT-MASQ; do "
       "iptables -w -t nat -F $c 2>/dev/null; iptables -w -t nat -X $c 2>/dev/null; done");
  }
  q_rm_rf(tmpdir, NULL);
  if (lock_fd >= 0)
    close(lock_fd);
}

TestSuite(netint, .init = setup, .fini = teardown, .timeout = 120);

static net_cni *handle(bool with_bindir)
{
  const char *dirs[] = {bindir, PLUGINS};
  net_cni_options o = {.conf_dir = confdir,
                       .plugin_dirs = with_bindir ? dirs : dirs + 1,
                       .n_plugin_dirs = with_bindir ? 2 : 1,
                       .cache_dir = cachedir,
                       .netns_dir = nsdir,
                       .plugin_timeout_ms = 30000};
  net_cni *c = NULL;
  cr_assert_eq(net_cni_new(&o, &c, NULL), 0);
  return c;
}

static size_t count_entries(const char *dir, const char *prefix)
{
  DIR *d = opendir(dir);
  if (d == NULL)
    return 0;
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (de->d_name[0] != '.' && strncmp(de->d_name, prefix, strlen(prefix)) == 0)
      n++;
  closedir(d);
  return n;
}

static size_t ipam_allocations(void)
{
  char dir[700];
  snprintf(dir, sizeof(dir), "%s/" NETNAME, ipamdir);
  return count_entries(dir, "10.89.");
}

static size_t cache_entries(void)
{
  char dir[700];
  snprintf(dir, sizeof(dir), "%s/results", cachedir);
  return count_entries(dir, "");
}

static int iptables_mentions(const char *id)
{
  return sh("iptables-save -t nat 2>/dev/null | grep -q -- '%s'", id) == 0;
}

/* ---- sockets inside a namespace ---- */

struct sock_job {
  int fd;
  int port;
};

static int make_listener(void *arg, q_error **err)
{
  struct sock_job *j = arg;
  j->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (j->fd < 0)
    return q_error_make(err, errno, "socket");
  int one = 1;
  setsockopt(j->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)j->port)};
  if (bind(j->fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(j->fd, 4) < 0)
    return q_error_make(err, errno, "bind/listen %d", j->port);
  return 0;
}

static int make_socket(void *arg, q_error **err)
{
  struct sock_job *j = arg;
  j->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  return j->fd < 0 ? q_error_make(err, errno, "socket") : 0;
}

static void set_timeouts(int fd)
{
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Connects client_fd to ip:port, accepts on listen_fd, sends a line each way. */
static void tcp_exchange(int client_fd, int listen_fd, const char *ip, int port)
{
  set_timeouts(client_fd);
  set_timeouts(listen_fd);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  cr_assert_eq(inet_pton(AF_INET, ip, &a.sin_addr), 1);
  cr_assert_eq(connect(client_fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect %s:%d: %s", ip,
               port, strerror(errno));
  int s = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
  cr_assert_geq(s, 0, "accept: %s", strerror(errno));
  set_timeouts(s);
  cr_assert_eq(write(client_fd, "ping\n", 5), 5);
  char buf[16] = {0};
  cr_assert_eq(read(s, buf, 5), 5);
  cr_assert_str_eq(buf, "ping\n");
  cr_assert_eq(write(s, "pong\n", 5), 5);
  memset(buf, 0, sizeof(buf));
  cr_assert_eq(read(client_fd, buf, 5), 5);
  cr_assert_str_eq(buf, "pong\n");
  close(s);
}

static bool in_subnet(const char *ip)
{
  return ip != NULL && strncmp(ip, "10.89.231.", 10) == 0;
}

/* ---- tests ---- */

Test(netint, two_pods_on_one_bridge_reach_each_other)
{
  net_cni *c = handle(false);
  net_kv sysctls[] = {{"net.ipv4.tcp_keepalive_time", "600"}};
  net_pod a = {.id = "qnit-pod-a",
               .name = "a",
               .namespace = "default",
               .uid = "uid-a",
               .sysctls = sysctls,
               .n_sysctls = 1};
  net_pod b = {.id = "qnit-pod-b", .name = "b", .namespace = "default", .uid = "uid-b"};
  net_pod_network *na = NULL, *nb = NULL;
  q_cleanup_error q_error *err = NULL;
  cr_assert_eq(net_pod_setup(c, &a, &na, &err), 0, "%s", q_error_msg(err));
  cr_assert_eq(net_pod_setup(c, &b, &nb, &err), 0, "%s", q_error_msg(err));
  cr_assert(in_subnet(na->primary_ip), "%s", na->primary_ip);
  cr_assert(in_subnet(nb->primary_ip), "%s", nb->primary_ip);
  cr_assert_str_neq(na->primary_ip, nb->primary_ip);
  cr_assert(net_netns_is_pinned(na->netns_path));
  cr_assert_eq(strncmp(na->netns_path, nsdir, strlen(nsdir)), 0);
  cr_assert_eq(ipam_allocations(), 2);
  cr_assert_eq(cache_entries(), 4); /* lo and eth0 of each pod */

  /* Sysctls and lo, seen by a separate process inside the namespace. */
  cr_assert_eq(
      sh("test \"$(nsenter --net=%s cat /proc/sys/net/ipv4/ip_unprivileged_port_start)\" = 0",
         na->netns_path),
      0);
  cr_assert_eq(
      sh("nsenter --net=%s cat /proc/sys/net/ipv4/ping_group_range | grep -q '^0.2147483647$'",
         na->netns_path),
      0);
  cr_assert_eq(sh("test \"$(nsenter --net=%s cat /proc/sys/net/ipv4/tcp_keepalive_time)\" = 600",
                  na->netns_path),
               0);
  cr_assert_neq(sh("test \"$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)\" = 0 && "
                   "test \"$(cat /proc/sys/net/ipv4/tcp_keepalive_time)\" = 600"),
                0, "the host's sysctls changed");
  cr_assert_eq(sh("nsenter --net=%s ip -o link show lo | grep -q 'UP'", nb->netns_path), 0);

  /* ICMP both ways, TCP from b to a. */
  cr_assert_eq(
      sh("nsenter --net=%s busybox ping -c 1 -W 3 %s >/dev/null", nb->netns_path, na->primary_ip),
      0);
  cr_assert_eq(
      sh("nsenter --net=%s busybox ping -c 1 -W 3 %s >/dev/null", na->netns_path, nb->primary_ip),
      0);
  struct sock_job l = {.port = 7777}, cl = {0};
  cr_assert_eq(net_netns_run(na->netns_path, make_listener, &l, &err), 0, "%s", q_error_msg(err));
  cr_assert_eq(net_netns_run(nb->netns_path, make_socket, &cl, &err), 0, "%s", q_error_msg(err));
  tcp_exchange(cl.fd, l.fd, na->primary_ip, 7777);
  close(cl.fd);
  close(l.fd);

  /* CHECK passes on a healthy attachment. */
  net_pod a2 = a;
  a2.netns_path = na->netns_path;
  cr_assert_eq(net_pod_check(c, &a2, &err), 0, "%s", q_error_msg(err));

  /* Teardown: IPs back in host-local's store, cache gone, pins gone; twice. */
  net_pod b2 = b;
  b2.netns_path = nb->netns_path;
  cr_assert_eq(net_pod_teardown(c, &a2, &err), 0, "%s", q_error_msg(err));
  cr_assert_eq(ipam_allocations(), 1);
  cr_assert_eq(net_pod_teardown(c, &b2, &err), 0, "%s", q_error_msg(err));
  cr_assert_eq(ipam_allocations(), 0);
  cr_assert_eq(cache_entries(), 0);
  cr_assert_eq(count_entries(nsdir, ""), 0);
  cr_assert_eq(net_pod_teardown(c, &a2, &err), 0, "%s", q_error_msg(err));
  net_pod_network_free(na);
  net_pod_network_free(nb);
  net_cni_free(c);
}

Test(netint, hostport_answers_on_host_loopback)
{
  if (sh("iptables -w -t nat -L -n >/dev/null 2>&1") != 0)
    cr_skip_test("iptables does not work here: portmap cannot be tested");
  net_cni *c = handle(false);
  net_port_mapping ports[] = {{"TCP", 8080, HOSTPORT, "127.0.0.1"}};
  net_pod p = {.id = "qnit-pod-hp",
               .name = "hp",
               .namespace = "default",
               .uid = "uid-hp",
               .ports = ports,
               .n_ports = 1};
  net_pod_network *n = NULL;
  q_cleanup_error q_error *err = NULL;
  cr_assert_eq(net_pod_setup(c, &p, &n, &err), 0, "%s", q_error_msg(err));
  cr_assert(iptables_mentions(p.id), "no portmap rule for the pod");

  struct sock_job l = {.port = 8080};
  cr_assert_eq(net_netns_run(n->netns_path, make_listener, &l, &err), 0, "%s", q_error_msg(err));
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); /* host namespace */
  tcp_exchange(fd, l.fd, "127.0.0.1", HOSTPORT);
  close(fd);
  close(l.fd);

  p.netns_path = n->netns_path;
  cr_assert_eq(net_pod_teardown(c, &p, &err), 0, "%s", q_error_msg(err));
  cr_assert(!iptables_mentions(p.id), "portmap rules left behind");
  cr_assert_eq(ipam_allocations(), 0);
  cr_assert_eq(cache_entries(), 0);
  net_pod_network_free(n);
  net_cni_free(c);
}

/* Dual stack: IPv6 listed first by the plugin, the pod IP is still the IPv4
 * one (containerd's choice) and the IPv6 one is an additional IP. */
Test(netint, dual_stack_prefers_ipv4)
{
  char text[2048], path[700];
  snprintf(text, sizeof(text),
           "{\"cniVersion\":\"1.0.0\",\"name\":\"" NETNAME "\",\"plugins\":["
           "{\"type\":\"bridge\",\"bridge\":\"" BRIDGE "\",\"isGateway\":true,"
           "\"ipam\":{\"type\":\"host-local\",\"ranges\":[[{\"subnet\":\"fd89:231::/64\"}],"
           "[{\"subnet\":\"" SUBNET "\"}]],\"dataDir\":\"%s\"}}]}",
           ipamdir);
  snprintf(path, sizeof(path), "%s/10-quark-it.conflist", confdir);
  write_text(path, text, 0644);
  net_cni *c = handle(false);
  net_pod p = {.id = "qnit-pod-ds", .name = "ds", .namespace = "default", .uid = "uid-ds"};
  net_pod_network *n = NULL;
  q_cleanup_error q_error *err = NULL;
  cr_assert_eq(net_pod_setup(c, &p, &n, &err), 0, "%s", q_error_msg(err));
  cr_assert_eq(n->result->ips[0].version, 6);
  cr_assert(in_subnet(n->primary_ip), "%s", n->primary_ip);
  cr_assert_eq(n->n_additional_ips, 1);
  cr_assert_eq(strncmp(n->additional_ips[0], "fd89:231::", 10), 0, "%s", n->additional_ips[0]);
  char dir[700];
  snprintf(dir, sizeof(dir), "%s/" NETNAME, ipamdir);
  cr_assert_eq(count_entries(dir, "fd89:231::"), 1);
  p.netns_path = n->netns_path;
  cr_assert_eq(net_pod_teardown(c, &p, &err), 0, "%s", q_error_msg(err));
  cr_assert_eq(count_entries(dir, "fd89:231::"), 0);
  cr_assert_eq(ipam_allocations(), 0);
  net_pod_network_free(n);
  net_cni_free(c);
}

/* Older config versions get older result formats from the same plugins. */
Test(netint, older_cni_versions_round_trip)
{
  const char *versions[] = {"0.3.1", "0.4.0"};
  net_cni *c = handle(false);
  for (size_t i = 0; i < 2; i++) {
    write_conflist_version(versions[i], "");
    net_pod p = {.id = "qnit-pod-ver", .name = "v", .namespace = "default", .uid = "uid-v"};
    net_pod_network *n = NULL;
    q_cleanup_error q_error *err = NULL;
    cr_assert_eq(net_pod_setup(c, &p, &n, &err), 0, "%s: %s", versions[i], q_error_msg(err));
    cr_assert_str_eq(n->result->cni_version, versions[i]);
    cr_assert(in_subnet(n->primary_ip), "%s: %s", versions[i], n->primary_ip);
    cr_assert_eq(n->result->ips[0].version, 4);
    p.netns_path = n->netns_path;
    cr_assert_eq(net_pod_check(c, &p, &err), 0, "%s: %s", versions[i], q_error_msg(err));
    cr_assert_eq(net_pod_teardown(c, &p, &err), 0, "%s: %s", versions[i], q_error_msg(err));
    cr_assert_eq(ipam_allocations(), 0);
    cr_assert_eq(cache_entries(), 0);
    net_pod_network_free(n);
  }
  net_cni_free(c);
}

/* The bandwidth annotations reach the real bandwidth plugin as containerd
 * passes them, and become tbf qdiscs (ingress on the host veth, egress on an
 * ifb device) that DEL removes. */
Test(netint, bandwidth_annotations_shape_traffic)
{
  if (sh("ip link add qnit-ifbprobe type ifb 2>/dev/null && ip link del qnit-ifbprobe") != 0)
    cr_skip_test("no ifb devices here: the bandwidth plugin cannot work");
  write_conflist(",{\"type\":\"bandwidth\",\"capabilities\":{\"bandwidth\":true}}");
  net_cni *c = handle(false);
  net_kv ann[] = {{"kubernetes.io/ingress-bandwidth", "10M"},
                  {"kubernetes.io/egress-bandwidth", "20M"}};
  net_pod p = {.id = "qnit-pod-bw",
               .name = "bw",
               .namespace = "default",
               .uid = "uid-bw",
               .annotations = ann,
               .n_annotations = 2};
  net_pod_network *n = NULL;
  q_cleanup_error q_error *err = NULL;
  cr_assert_eq(net_pod_setup(c, &p, &n, &err), 0, "%s", q_error_msg(err));
  const char *host_veth = NULL;
  for (size_t i = 0; i < n->result->n_ifaces; i++)
    if (n->result->ifaces[i].sandbox == NULL && strncmp(n->result->ifaces[i].name, "veth", 4) == 0)
      host_veth = n->result->ifaces[i].name;
  cr_assert_not_null(host_veth);
  cr_assert_eq(sh("tc qdisc show dev %s | grep -q 'tbf.*rate 10Mbit'", host_veth), 0,
               "no 10Mbit ingress limit on %s", host_veth);
  cr_assert_eq(sh("tc qdisc show | grep -q 'tbf.*rate 20Mbit'"), 0, "no 20Mbit egress limit");
  p.netns_path = n->netns_path;
  cr_assert_eq(net_pod_teardown(c, &p, &err), 0, "%s", q_error_msg(err));
  cr_assert_neq(sh("tc qdisc show | grep -q 'rate 20Mbit'"), 0, "egress ifb left behind");
  cr_assert_eq(ipam_allocations(), 0);
  net_pod_network_free(n);
  net_cni_free(c);
}

static void assert_nothing_left(const char *id)
{
  cr_assert_eq(count_entries(nsdir, ""), 0, "a namespace pin was left");
  cr_assert_eq(cache_entries(), 0, "a cache entry was left");
  cr_assert_eq(ipam_allocations(), 0, "a host-local allocation was left");
  cr_assert(!iptables_mentions(id), "iptables rules were left");
  /* The pod's host-side veth went with its namespace. */
  cr_assert_neq(sh("ip -o link show master " BRIDGE " 2>/dev/null | grep -q veth"), 0,
                "a veth was left on the bridge");
}

Test(netint, failing_plugin_fails_setup_and_leaves_nothing)
{
  char path[700];
  snprintf(path, sizeof(path), "%s/quark-it-fail", bindir);
  write_text(
      path,
      "#!/bin/sh\n"
      "cat >/dev/null\n"
      "[ \"$CNI_COMMAND\" = DEL ] && exit 0\n"
      "printf '{\"cniVersion\":\"1.0.0\",\"code\":100,\"msg\":\"quark test plugin refuses\"}'\n"
      "exit 1\n",
      0755);
  write_conflist(",{\"type\":\"quark-it-fail\"}");
  net_cni *c = handle(true);
  net_port_mapping ports[] = {{"TCP", 8080, HOSTPORT, "127.0.0.1"}};
  net_pod p = {.id = "qnit-pod-fail",
               .name = "f",
               .namespace = "default",
               .uid = "uid-f",
               .ports = ports,
               .n_ports = 1};
  net_pod_network *n = NULL;
  q_cleanup_error q_error *err = NULL;
  cr_assert_lt(net_pod_setup(c, &p, &n, &err), 0);
  cr_assert(strstr(q_error_msg(err), "plugin type=\"quark-it-fail\" name=\"" NETNAME
                                     "\" failed (add): quark test plugin refuses") != NULL,
            "%s", q_error_msg(err));
  assert_nothing_left(p.id);
  net_cni_free(c);
}

Test(netint, missing_plugin_fails_setup_and_leaves_nothing)
{
  write_conflist(",{\"type\":\"quark-it-no-such-plugin\"}");
  net_cni *c = handle(false);
  net_pod p = {.id = "qnit-pod-miss", .name = "m", .namespace = "default", .uid = "uid-m"};
  net_pod_network *n = NULL;
  q_cleanup_error q_error *err = NULL;
  cr_assert_lt(net_pod_setup(c, &p, &n, &err), 0);
  cr_assert(strstr(q_error_msg(err),
                   "failed to find plugin \"quark-it-no-such-plugin\" in path [" PLUGINS
                   "]") != NULL,
            "%s", q_error_msg(err));
  assert_nothing_left(p.id);
  /* Status says the same before any pod is tried. */
  char *msg = NULL;
  cr_assert_lt(net_cni_status(c, &msg), 0);
  cr_assert(strstr(msg, "quark-it-no-such-plugin") != NULL, "%s", msg);
  free(msg);
  /* The pod can still be removed while the plugin is missing. */
  cr_assert_eq(net_pod_teardown(c, &p, &err), 0, "%s", q_error_msg(err));
  net_cni_free(c);
}

Test(netint, teardown_tolerates_missing_namespace)
{
  net_cni *c = handle(false);
  net_pod p = {.id = "qnit-pod-gone", .name = "g", .namespace = "default", .uid = "uid-g"};
  net_pod_network *n = NULL;
  q_cleanup_error q_error *err = NULL;
  cr_assert_eq(net_pod_setup(c, &p, &n, &err), 0, "%s", q_error_msg(err));
  /* The namespace vanishes before DEL (a node reboot, a manual cleanup):
   * DEL still frees the IP and the cache. */
  cr_assert_eq(net_netns_remove(n->netns_path, &err), 0);
  cr_assert(!net_netns_is_pinned(n->netns_path));
  p.netns_path = n->netns_path;
  cr_assert_eq(net_pod_teardown(c, &p, &err), 0, "%s", q_error_msg(err));
  cr_assert_eq(ipam_allocations(), 0);
  cr_assert_eq(cache_entries(), 0);
  cr_assert_eq(net_pod_detach(c, &p, &err), 0, "%s", q_error_msg(err));
  net_pod_network_free(n);
  net_cni_free(c);
}

/* What a quarkd killed -9 inside net_netns_remove leaves (the pin is
 * unmounted, the file not yet unlinked), or inside net_netns_create (the
 * file made, the namespace not yet mounted on it): a plain file at the
 * namespace path. The plugins refuse it ("unknown FS magic"), so teardown
 * must pass DEL an empty CNI_NETNS, release the IP and remove the file. */
Test(netint, teardown_after_kill_between_unmount_and_unlink)
{
  net_cni *c = handle(false);
  net_pod p = {.id = "qnit-pod-unpinned", .name = "u", .namespace = "default", .uid = "uid-u"};
  net_pod_network *n = NULL;
  q_cleanup_error q_error *err = NULL;
  cr_assert_eq(net_pod_setup(c, &p, &n, &err), 0, "%s", q_error_msg(err));
  cr_assert_eq(ipam_allocations(), 1);
  cr_assert_eq(umount2(n->netns_path, MNT_DETACH), 0, "%s", strerror(errno));
  cr_assert_eq(access(n->netns_path, F_OK), 0);
  cr_assert(!net_netns_is_pinned(n->netns_path));
  p.netns_path = n->netns_path;
  cr_assert_eq(net_pod_teardown(c, &p, &err), 0, "%s", q_error_msg(err));
  cr_assert_eq(ipam_allocations(), 0);
  cr_assert_eq(cache_entries(), 0);
  cr_assert_eq(access(n->netns_path, F_OK), -1);
  cr_assert_eq(errno, ENOENT);
  /* Again (a retry after a later step failed): still success. */
  cr_assert_eq(net_pod_teardown(c, &p, &err), 0, "%s", q_error_msg(err));
  net_pod_network_free(n);

  /* The creation window: a plain pin file, no ADD ever ran. */
  char path[700];
  snprintf(path, sizeof(path), "%s/qnit-unmounted", nsdir);
  int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  cr_assert_geq(fd, 0, "%s", strerror(errno));
  close(fd);
  net_pod q = {.id = "qnit-pod-nopin", .name = "v", .namespace = "default", .uid = "uid-v",
               .netns_path = path};
  cr_assert_eq(net_pod_teardown(c, &q, &err), 0, "%s", q_error_msg(err));
  cr_assert_eq(access(path, F_OK), -1);
  cr_assert_eq(ipam_allocations(), 0);
  cr_assert_eq(cache_entries(), 0);
  net_cni_free(c);
}

Test(netint, netns_enter_and_leave_on_this_thread)
{
  char *path = NULL;
  q_cleanup_error q_error *err = NULL;
  cr_assert_eq(net_netns_create(nsdir, "qnit-enter", &path, &err), 0, "%s", q_error_msg(err));
  cr_assert_eq(net_netns_create(nsdir, "qnit-enter", &path, &err), -EEXIST);
  struct stat host, inside, back;
  cr_assert_eq(stat("/proc/thread-self/ns/net", &host), 0);
  int saved = -1;
  cr_assert_eq(net_netns_enter(path, &saved, &err), 0, "%s", q_error_msg(err));
  cr_assert_eq(stat("/proc/thread-self/ns/net", &inside), 0);
  cr_assert_neq(host.st_ino, inside.st_ino);
  cr_assert_eq(net_netns_leave(saved, &err), 0);
  cr_assert_eq(stat("/proc/thread-self/ns/net", &back), 0);
  cr_assert_eq(host.st_ino, back.st_ino);
  cr_assert_eq(net_netns_remove(path, &err), 0);
  cr_assert_eq(net_netns_remove(path, &err), 0);
  cr_assert_eq(access(path, F_OK), -1);
  /* Not a namespace: a directory is refused, a mount point left alone. */
  cr_assert_lt(net_netns_remove(nsdir, &err), 0);
  cr_assert_eq(access(nsdir, F_OK), 0);
  /* Keys outside net.* are refused before anything is written. */
  cr_assert_eq(
      net_netns_set_sysctls("/proc/self/ns/net", (net_kv[]){{"kernel.hostname", "x"}}, 1, &err),
      -EINVAL);
  cr_assert_eq(
      net_netns_set_sysctls("/proc/self/ns/net", (net_kv[]){{"net.ipv4..conf", "x"}}, 1, &err),
      -EINVAL);
  free(path);
}

int main(int argc, char **argv)
{
  if (geteuid() != 0) {
    printf("skip: needs root (network namespaces, bridges, iptables)\n");
    return 77;
  }
  const char *need[] = {PLUGINS "/bridge", PLUGINS "/host-local", PLUGINS "/loopback",
                        PLUGINS "/portmap"};
  for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
    if (access(need[i], X_OK) < 0) {
      printf("skip: %s missing (Debian package containernetworking-plugins)\n", need[i]);
      return 77;
    }
  if (system("command -v nsenter >/dev/null && command -v busybox >/dev/null && command -v ip "
             ">/dev/null") != 0) {
    printf("skip: needs nsenter, busybox and ip\n");
    return 77;
  }
  char probe[] = "/tmp/quark-net-probe-XXXXXX";
  if (mkdtemp(probe) == NULL)
    return 1;
  char *path = NULL;
  q_error *err = NULL;
  int r = net_netns_create(probe, "probe", &path, &err);
  if (r < 0) {
    printf("skip: cannot create a network namespace here: %s\n", q_error_msg(err));
    q_error_free(&err);
    q_rm_rf(probe, NULL);
    return 77;
  }
  net_netns_remove(path, NULL);
  free(path);
  q_rm_rf(probe, NULL);

  struct criterion_test_set *tests = criterion_initialize();
  int result = 0;
  if (criterion_handle_args(argc, argv, true))
    result = !criterion_run_all_tests(tests);
  criterion_finalize(tests);
  return result;
}
