/* Units of the network module that need no root: config discovery, result
 * parsing, the cache file format, pod files, bandwidth and capability args. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "quark/net.h"

static char tmpdir[] = "/tmp/quark-net-unit-XXXXXX";

static void setup(void)
{
  cr_assert_not_null(mkdtemp(tmpdir));
}
static void teardown(void)
{
  q_rm_rf(tmpdir, NULL);
}

TestSuite(netconf, .init = setup, .fini = teardown);
TestSuite(netcache, .init = setup, .fini = teardown);
TestSuite(netfiles, .init = setup, .fini = teardown);

static void put(const char *name, const char *text)
{
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
  cr_assert_eq(q_write_file_atomic(path, text, strlen(text), 0644, NULL), 0);
}

#define CONF(name) "{\"cniVersion\":\"1.0.0\",\"name\":\"" name "\",\"type\":\"bridge\"}"
#define LIST(name)                                                                                 \
  "{\"cniVersion\":\"0.4.0\",\"name\":\"" name "\",\"plugins\":[{\"type\":\"bridge\"},"            \
  "{\"type\":\"portmap\",\"capabilities\":{\"portMappings\":true}}]}"

Test(netconf, discovery_is_bytewise_and_skips_other_files)
{
  put("b.conflist", LIST("net-b"));
  put("a.json", CONF("net-a-json"));
  put("Z.conf", CONF("net-upper-z")); /* 'Z' < 'a' byte-wise, not in a locale */
  put("10-x.conf", CONF("net-10"));
  put("README", "not a config");
  put("c.conf.bak", CONF("net-bak"));
  char sub[512];
  snprintf(sub, sizeof(sub), "%s/dir.conf", tmpdir);
  cr_assert_eq(mkdir(sub, 0755), 0);

  net_conf_list **lists = NULL;
  size_t n = 0;
  char *problems = NULL;
  cr_assert_eq(net_conf_discover(tmpdir, &lists, &n, &problems, NULL), 0);
  cr_assert_null(problems);
  cr_assert_eq(n, 4);
  cr_assert_str_eq(lists[0]->name, "net-10");
  cr_assert_str_eq(lists[1]->name, "net-upper-z");
  cr_assert_str_eq(lists[2]->name, "net-a-json");
  cr_assert_str_eq(lists[3]->name, "net-b");
  cr_assert_eq(lists[3]->n_plugins, 2);
  cr_assert_str_eq(lists[3]->plugin_types[1], "portmap");
  cr_assert_str_eq(lists[3]->cni_version, "0.4.0");
  net_conf_lists_free(lists, n);

  net_conf_list *def = NULL;
  cr_assert_eq(net_conf_load_default(tmpdir, &def, NULL), 0);
  cr_assert_str_eq(def->name, "net-10");
  net_conf_list_free(def);
}

Test(netconf, conf_is_wrapped_into_a_list)
{
  const char *c =
      "{\"cniVersion\":\"0.3.1\",\"name\":\"mynet\",\"type\":\"bridge\",\"bridge\":\"cni0\"}";
  net_conf_list *l = NULL;
  cr_assert_eq(net_conf_parse(c, strlen(c), false, "x.conf", &l, NULL), 0);
  cr_assert_str_eq(l->name, "mynet");
  cr_assert_str_eq(l->cni_version, "0.3.1");
  cr_assert_eq(l->n_plugins, 1);
  cr_assert_str_eq(l->plugin_types[0], "bridge");
  json_t *j = json_loadb(l->bytes, l->len, 0, NULL);
  cr_assert_not_null(j);
  cr_assert_str_eq(json_string_value(json_object_get(j, "name")), "mynet");
  cr_assert_str_eq(json_string_value(json_object_get(j, "cniVersion")), "0.3.1");
  json_t *p = json_array_get(json_object_get(j, "plugins"), 0);
  cr_assert_str_eq(json_string_value(json_object_get(p, "bridge")), "cni0");
  cr_assert_eq(json_array_size(json_object_get(j, "plugins")), 1);
  json_decref(j);
  net_conf_list_free(l);
}

Test(netconf, invalid_files_are_named_and_skipped)
{
  put("00-broken.conf", "{\"name\": ");
  put("01-notype.conf", "{\"cniVersion\":\"1.0.0\",\"name\":\"n\"}");
  put("02-list-in-conf.conf", LIST("l"));
  put("03-noplugins.conflist", "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[]}");
  put("04-badversion.conflist",
      "{\"cniVersion\":\"9.9.9\",\"name\":\"n\",\"plugins\":[{\"type\":\"bridge\"}]}");
  put("05-noname.conflist", "{\"cniVersion\":\"1.0.0\",\"plugins\":[{\"type\":\"bridge\"}]}");
  put("06-badtype.conflist",
      "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"../../bin/sh\"}]}");
  put("07-array.json", "[1,2]");

  net_conf_list *def = NULL;
  q_cleanup_error q_error *err = NULL;
  cr_assert_eq(net_conf_load_default(tmpdir, &def, &err), -ENOENT);
  const char *m = q_error_msg(err);
  cr_assert(strstr(m, "no valid network config found in") != NULL, "%s", m);
  cr_assert(strstr(m, "00-broken.conf: invalid JSON") != NULL, "%s", m);
  cr_assert(strstr(m, "01-notype.conf: plugin 0: missing \"type\"") != NULL, "%s", m);
  cr_assert(
      strstr(m, "02-list-in-conf.conf: missing \"type\" (a network list belongs in a .conflist") !=
          NULL,
      "%s", m);
  cr_assert(strstr(m, "03-noplugins.conflist: no \"plugins\"") != NULL, "%s", m);
  cr_assert(strstr(m, "04-badversion.conflist: unsupported cniVersion \"9.9.9\"") != NULL, "%s", m);
  cr_assert(strstr(m, "05-noname.conflist: missing \"name\"") != NULL, "%s", m);
  cr_assert(strstr(m, "06-badtype.conflist: plugin 0: invalid type") != NULL, "%s", m);
  cr_assert(strstr(m, "07-array.json: not a JSON object") != NULL, "%s", m);

  /* A valid file after the broken ones becomes the default. */
  put("50-good.conflist", LIST("good"));
  q_error_free(&err);
  cr_assert_eq(net_conf_load_default(tmpdir, &def, &err), 0);
  cr_assert_str_eq(def->name, "good");
  net_conf_list_free(def);
}

Test(netconf, missing_and_empty_dir)
{
  net_conf_list *def = NULL;
  q_cleanup_error q_error *err = NULL;
  cr_assert_eq(net_conf_load_default(tmpdir, &def, &err), -ENOENT);
  cr_assert(strstr(q_error_msg(err), "no network config found in") != NULL);
  char missing[512];
  snprintf(missing, sizeof(missing), "%s/nope", tmpdir);
  cr_assert_eq(net_conf_load_default(missing, &def, &err), -ENOENT);
  cr_assert(strstr(q_error_msg(err), "does not exist") != NULL, "%s", q_error_msg(err));
}

Test(netconf, status_reports_not_ready_with_reason)
{
  const char *dirs[] = {tmpdir};
  net_cni_options o = {.conf_dir = tmpdir, .plugin_dirs = dirs, .n_plugin_dirs = 1};
  net_cni *c = NULL;
  cr_assert_eq(net_cni_new(&o, &c, NULL), 0);
  char *msg = NULL;
  cr_assert_lt(net_cni_status(c, &msg), 0);
  cr_assert(strstr(msg, "cni config load failed: no network config found in") != NULL, "%s", msg);
  free(msg);
  msg = NULL;
  put("10-net.conflist", LIST("net"));
  cr_assert_lt(net_cni_status(c, &msg), 0);
  cr_assert(strstr(msg, "failed to find plugin \"bridge\"") != NULL, "%s", msg);
  free(msg);
  msg = NULL;
  put("bridge", "#!/bin/sh\n");
  put("portmap", "#!/bin/sh\n");
  char p[512];
  snprintf(p, sizeof(p), "%s/bridge", tmpdir);
  chmod(p, 0755);
  snprintf(p, sizeof(p), "%s/portmap", tmpdir);
  chmod(p, 0755);
  /* The loopback plugin is needed by every pod, whatever the config says. */
  cr_assert_lt(net_cni_status(c, &msg), 0);
  cr_assert(strstr(msg, "cni-loopback") != NULL && strstr(msg, "\"loopback\"") != NULL, "%s", msg);
  free(msg);
  msg = NULL;
  put("loopback", "#!/bin/sh\n");
  snprintf(p, sizeof(p), "%s/loopback", tmpdir);
  chmod(p, 0755);
  cr_assert_eq(net_cni_status(c, &msg), 0);
  cr_assert_null(msg);
  net_cni_free(c);
}

/* ---- results ---- */

static net_result *parse(const char *s)
{
  net_result *r = NULL;
  q_cleanup_error q_error *err = NULL;
  int rc = net_result_parse(s, strlen(s), &r, &err);
  cr_assert_eq(rc, 0, "%s", q_error_msg(err));
  return r;
}

Test(netresult, v020_ip4_ip6)
{
  net_result *r = parse("{\"cniVersion\":\"0.2.0\",\"ip4\":{\"ip\":\"10.1.0.5/16\",\"gateway\":"
                        "\"10.1.0.1\",\"routes\":[{\"dst\":\"0.0.0.0/0\"}]},\"ip6\":{\"ip\":"
                        "\"fd00::5/64\"},\"dns\":{\"nameservers\":[\"10.1.0.10\"]}}");
  cr_assert_str_eq(r->cni_version, "0.2.0");
  cr_assert_eq(r->n_ifaces, 0);
  cr_assert_eq(r->n_ips, 2);
  cr_assert_eq(r->ips[0].version, 4);
  cr_assert_str_eq(r->ips[0].address, "10.1.0.5/16");
  cr_assert_str_eq(r->ips[0].gateway, "10.1.0.1");
  cr_assert_eq(r->ips[0].iface, -1);
  cr_assert_eq(r->ips[1].version, 6);
  cr_assert_eq(r->n_routes, 1);
  cr_assert_str_eq(r->routes[0].dst, "0.0.0.0/0");
  cr_assert_null(r->routes[0].gw);
  cr_assert_eq(r->dns.n_nameservers, 1);
  net_result_free(r);
}

static const char v03[] =
    "{\"cniVersion\":\"%s\",\"interfaces\":[{\"name\":\"cni0\",\"mac\":\"aa:bb:cc:dd:ee:ff\"},"
    "{\"name\":\"eth0\",\"mac\":\"00:11:22:33:44:55\",\"sandbox\":\"/var/run/netns/x\"}],"
    "\"ips\":[{\"version\":\"4\",\"interface\":1,\"address\":\"10.88.0.7/16\",\"gateway\":"
    "\"10.88.0.1\"},{\"version\":\"6\",\"interface\":1,\"address\":\"fd88::7/64\"}],"
    "\"routes\":[{\"dst\":\"0.0.0.0/0\",\"gw\":\"10.88.0.1\"}],\"dns\":{\"nameservers\":"
    "[\"1.1.1.1\"],\"domain\":\"cluster.local\",\"search\":[\"a\",\"b\"],\"options\":[\"ndots:5\"]}"
    "}";

static void check_v03(const char *version)
{
  char buf[1024];
  snprintf(buf, sizeof(buf), v03, version);
  net_result *r = parse(buf);
  cr_assert_str_eq(r->cni_version, version);
  cr_assert_eq(r->n_ifaces, 2);
  cr_assert_str_eq(r->ifaces[1].name, "eth0");
  cr_assert_str_eq(r->ifaces[1].sandbox, "/var/run/netns/x");
  cr_assert_null(r->ifaces[0].sandbox);
  cr_assert_eq(r->n_ips, 2);
  cr_assert_eq(r->ips[0].iface, 1);
  cr_assert_eq(r->ips[0].version, 4);
  cr_assert_eq(r->ips[1].version, 6);
  cr_assert_str_eq(r->routes[0].gw, "10.88.0.1");
  cr_assert_str_eq(r->dns.domain, "cluster.local");
  cr_assert_eq(r->dns.n_search, 2);
  cr_assert_str_eq(r->dns.options[0], "ndots:5");
  net_result_free(r);
}

Test(netresult, v030_v031_v040)
{
  check_v03("0.3.0");
  check_v03("0.3.1");
  check_v03("0.4.0");
}

Test(netresult, v031_without_version_field_like_debian_loopback)
{
  net_result *r = parse("{\"cniVersion\":\"0.3.1\",\"interfaces\":[{\"name\":\"lo\",\"mac\":"
                        "\"00:00:00:00:00:00\",\"sandbox\":\"/n\"}],\"ips\":[{\"interface\":0,"
                        "\"address\":\"127.0.0.1/8\"},{\"interface\":0,\"address\":\"::1/128\"}],"
                        "\"dns\":{}}");
  cr_assert_eq(r->n_ips, 2);
  cr_assert_eq(r->ips[0].version, 4);
  cr_assert_eq(r->ips[1].version, 6);
  net_result_free(r);
}

Test(netresult, v100_infers_family)
{
  net_result *r =
      parse("{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"eth0\",\"sandbox\":"
            "\"/n\"}],\"ips\":[{\"interface\":0,\"address\":\"fd00::2/64\"},{\"address\":"
            "\"10.0.0.2/24\",\"gateway\":\"10.0.0.1\"}],\"dns\":{}}");
  cr_assert_eq(r->n_ips, 2);
  cr_assert_eq(r->ips[0].version, 6);
  cr_assert_eq(r->ips[0].iface, 0);
  cr_assert_eq(r->ips[1].version, 4);
  cr_assert_eq(r->ips[1].iface, -1);
  net_result_free(r);
}

Test(netresult, invalid_results)
{
  const char *bad[] = {
      "{\"cniVersion\":\"1.0.0\",\"ips\":[{\"interface\":3,\"address\":\"10.0.0.2/24\"}]}",
      "{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.0.0.2\"}]}",
      "{\"cniVersion\":\"0.4.0\",\"ips\":[{\"version\":\"5\",\"address\":\"10.0.0.2/24\"}]}",
      "{\"cniVersion\":\"0.4.0\",\"ips\":[{\"version\":\"6\",\"address\":\"10.0.0.2/24\"}]}",
      "{\"cniVersion\":\"2.0.0\"}",
      "{\"cniVersion\":\"1.0.0\",\"routes\":[{\"dst\":\"nope\"}]}",
      "[]",
      "not json",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    net_result *r = NULL;
    q_cleanup_error q_error *err = NULL;
    cr_assert_lt(net_result_parse(bad[i], strlen(bad[i]), &r, &err), 0, "accepted %s", bad[i]);
    cr_assert(strstr(q_error_msg(err), "CNI result") != NULL);
  }
}

/* ---- cache ---- */

Test(netcache, file_format_is_libcni)
{
  const char *config =
      "{\"cniVersion\":\"1.0.0\",\"name\":\"mynet\",\"plugins\":[{\"type\":\"bridge\"}]}";
  net_cache_entry e = {
      .container_id = "abc123",
      .network_name = "mynet",
      .ifname = "eth0",
      .netns = "/var/run/netns/p",
      .config = (char *)config,
      .config_len = strlen(config),
      .cni_args = "[[\"IgnoreUnknown\",\"1\"],[\"K8S_POD_NAME\",\"p\"]]",
      .capability_args =
          "{\"portMappings\":[{\"hostPort\":80,\"containerPort\":8080,\"protocol\":\"tcp\"}]}",
      .result = "{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.0.0.2/24\"}]}",
  };
  cr_assert_eq(net_cache_write(tmpdir, &e, NULL), 0);
  char path[512];
  snprintf(path, sizeof(path), "%s/results/mynet-abc123-eth0", tmpdir);
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0600);
  json_t *j = json_load_file(path, 0, NULL);
  cr_assert_not_null(j);
  cr_assert_str_eq(json_string_value(json_object_get(j, "kind")), "cniCacheV1");
  cr_assert_str_eq(json_string_value(json_object_get(j, "containerId")), "abc123");
  cr_assert_str_eq(json_string_value(json_object_get(j, "ifName")), "eth0");
  cr_assert_str_eq(json_string_value(json_object_get(j, "networkName")), "mynet");
  cr_assert_str_eq(json_string_value(json_object_get(j, "netns")), "/var/run/netns/p");
  /* Go []byte: standard base64 of the list bytes (checked against `base64`). */
  cr_assert_str_eq(json_string_value(json_object_get(j, "config")),
                   "eyJjbmlWZXJzaW9uIjoiMS4wLjAiLCJuYW1lIjoibXluZXQiLCJwbHVnaW5zIjpbeyJ0eXBlIjoiYnJ"
                   "pZGdlIn1dfQ==");
  json_t *args = json_object_get(j, "cniArgs");
  cr_assert_eq(json_array_size(args), 2);
  cr_assert_str_eq(json_string_value(json_array_get(json_array_get(args, 1), 0)), "K8S_POD_NAME");
  cr_assert(json_is_object(json_object_get(j, "capabilityArgs")));
  cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "result"), "cniVersion")),
                   "1.0.0");
  json_decref(j);

  net_cache_entry *r = NULL;
  cr_assert_eq(net_cache_read(tmpdir, "mynet", "abc123", "eth0", &r, NULL), 0);
  cr_assert_eq(r->config_len, strlen(config));
  cr_assert_str_eq(r->config, config);
  net_cache_entry_free(r);
  cr_assert_eq(net_cache_find(tmpdir, "abc123", "eth0", &r, NULL), 0);
  cr_assert_str_eq(r->network_name, "mynet");
  net_cache_entry_free(r);
  cr_assert_eq(net_cache_find(tmpdir, "abc12", "eth0", &r, NULL), -ENOENT);
  cr_assert_eq(net_cache_remove(tmpdir, "mynet", "abc123", "eth0", NULL), 0);
  cr_assert_eq(net_cache_remove(tmpdir, "mynet", "abc123", "eth0", NULL), 0);
  cr_assert_eq(net_cache_read(tmpdir, "mynet", "abc123", "eth0", &r, NULL), -ENOENT);
  /* Names that would escape the results dir are refused. */
  cr_assert_null(net_cache_path(tmpdir, "../x", "abc", "eth0"));
  cr_assert_null(net_cache_path(tmpdir, "x", "abc", "eth0/.."));
}

Test(netcache, base64_padding_variants)
{
  const char *configs[] = {"a", "ab", "abc", "abcd"};
  for (size_t i = 0; i < 4; i++) {
    net_cache_entry e = {.container_id = "c1",
                         .network_name = "n",
                         .ifname = "eth0",
                         .config = (char *)configs[i],
                         .config_len = strlen(configs[i])};
    cr_assert_eq(net_cache_write(tmpdir, &e, NULL), 0);
    net_cache_entry *r = NULL;
    cr_assert_eq(net_cache_read(tmpdir, "n", "c1", "eth0", &r, NULL), 0);
    cr_assert_eq(r->config_len, strlen(configs[i]));
    cr_assert_str_eq(r->config, configs[i]);
    net_cache_entry_free(r);
  }
}

/* ---- pod files ---- */

Test(netfiles, resolv_conf_like_containerd)
{
  const char *servers[] = {"10.96.0.10", "fd00::10"};
  const char *searches[] = {"ns.svc.cluster.local", "svc.cluster.local"};
  const char *options[] = {"ndots:5", "edns0"};
  net_dns_config d = {servers, 2, searches, 2, options, 2};
  char *out = NULL;
  cr_assert_eq(net_render_resolv_conf(&d, &out, NULL), 0);
  cr_assert_str_eq(out, "search ns.svc.cluster.local svc.cluster.local\n"
                        "nameserver 10.96.0.10\nnameserver fd00::10\n"
                        "options ndots:5 edns0\n");
  free(out);
  net_dns_config only = {servers, 1, NULL, 0, NULL, 0};
  cr_assert_eq(net_render_resolv_conf(&only, &out, NULL), 0);
  cr_assert_str_eq(out, "nameserver 10.96.0.10\n");
  free(out);
  const char *evil[] = {"a\nnameserver 6.6.6.6"};
  net_dns_config bad = {NULL, 0, evil, 1, NULL, 0};
  cr_assert_eq(net_render_resolv_conf(&bad, &out, NULL), -EINVAL);
  const char *notip[] = {"dns.example"};
  net_dns_config bad2 = {notip, 1, NULL, 0, NULL, 0};
  cr_assert_eq(net_render_resolv_conf(&bad2, &out, NULL), -EINVAL);
}

Test(netfiles, hosts_and_write)
{
  const char *ips[] = {"10.88.0.7", "fd88::7"};
  char *out = NULL;
  cr_assert_eq(net_render_hosts("web-0", "web-0.web.default.svc.cluster.local", ips, 2, &out, NULL),
               0);
  cr_assert(strstr(out, "127.0.0.1\tlocalhost\n") != NULL);
  cr_assert(strstr(out, "::1\tlocalhost ip6-localhost ip6-loopback\n") != NULL);
  cr_assert(strstr(out, "10.88.0.7\tweb-0.web.default.svc.cluster.local\tweb-0\n") != NULL);
  cr_assert(strstr(out, "fd88::7\tweb-0.web.default.svc.cluster.local\tweb-0\n") != NULL);
  free(out);
  cr_assert_eq(net_render_hosts("bad name", NULL, ips, 1, &out, NULL), -EINVAL);
  const char *badip[] = {"10.0.0.1/24"};
  cr_assert_eq(net_render_hosts("h", NULL, badip, 1, &out, NULL), -EINVAL);

  char host_resolv[512], dir[512], path[600];
  snprintf(host_resolv, sizeof(host_resolv), "%s/host-resolv", tmpdir);
  snprintf(dir, sizeof(dir), "%s/pod/etc", tmpdir);
  cr_assert_eq(q_write_file_atomic(host_resolv, "nameserver 192.0.2.53\n", 22, 0644, NULL), 0);
  cr_assert_eq(net_write_pod_files(dir, NULL, host_resolv, "mypod", NULL, ips, 1, NULL), 0);
  char *data = NULL;
  size_t len;
  snprintf(path, sizeof(path), "%s/resolv.conf", dir);
  cr_assert_eq(q_read_file(path, 4096, &data, &len, NULL), 0);
  cr_assert_str_eq(data, "nameserver 192.0.2.53\n");
  free(data);
  snprintf(path, sizeof(path), "%s/hostname", dir);
  cr_assert_eq(q_read_file(path, 4096, &data, &len, NULL), 0);
  cr_assert_str_eq(data, "mypod\n");
  free(data);
  snprintf(path, sizeof(path), "%s/hosts", dir);
  cr_assert_eq(q_read_file(path, 4096, &data, &len, NULL), 0);
  cr_assert(strstr(data, "10.88.0.7\tmypod\n") != NULL);
  free(data);
}

/* ---- bandwidth and capability args ---- */

Test(netpod, bandwidth_quantities)
{
  struct {
    const char *q;
    uint64_t bps;
  } ok[] = {
      {"10M", 10000000},  {"1Mi", 1048576},  {"1.5k", 1500},          {"1e6", 1000000},
      {"1G", 1000000000}, {"100Ki", 102400}, {"2.0005k", 2001},       {"1P", 1000000000000000ull},
      {"1000", 1000},     {"+5M", 5000000},  {"1000000000m", 1000000}};
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    uint64_t v = 0;
    q_cleanup_error q_error *err = NULL;
    cr_assert_eq(net_parse_bandwidth(ok[i].q, &v, &err), 0, "%s: %s", ok[i].q, q_error_msg(err));
    cr_assert_eq(v, ok[i].bps, "%s gave %llu", ok[i].q, (unsigned long long)v);
  }
  const char *small[] = {"100", "0.5Ki", "999", "-1M", "1001m"};
  for (size_t i = 0; i < sizeof(small) / sizeof(small[0]); i++) {
    uint64_t v;
    q_cleanup_error q_error *err = NULL;
    cr_assert_eq(net_parse_bandwidth(small[i], &v, &err), -EINVAL, "%s", small[i]);
    cr_assert(strstr(q_error_msg(err), "unreasonably small") != NULL, "%s", q_error_msg(err));
  }
  uint64_t v;
  q_cleanup_error q_error *err = NULL;
  cr_assert_eq(net_parse_bandwidth("2P", &v, &err), -EINVAL);
  cr_assert(strstr(q_error_msg(err), "unreasonably large") != NULL);
  cr_assert_eq(net_parse_bandwidth("10Mbps", &v, NULL), -EINVAL);
  cr_assert_eq(net_parse_bandwidth("", &v, NULL), -EINVAL);
  cr_assert_eq(net_parse_bandwidth("M", &v, NULL), -EINVAL);
}

Test(netpod, capability_args_like_containerd)
{
  net_port_mapping ports[] = {
      {"TCP", 80, 8080, "127.0.0.1"},
      {"udp", 53, 5353, NULL},
      {"TCP", 9000, 0, NULL}, /* no host port: not mapped */
  };
  net_kv ann[] = {{"kubernetes.io/ingress-bandwidth", "10M"},
                  {"kubernetes.io/egress-bandwidth", "1Mi"},
                  {"team", "blue"}};
  const char *servers[] = {"10.96.0.10"};
  net_dns_config dns = {servers, 1, NULL, 0, NULL, 0};
  net_pod pod = {.id = "p1",
                 .ports = ports,
                 .n_ports = 3,
                 .annotations = ann,
                 .n_annotations = 3,
                 .dns = &dns,
                 .cgroup_parent = "/kubepods/pod1"};
  char *s = NULL;
  cr_assert_eq(net_pod_capability_args(&pod, &s, NULL), 0);
  json_t *j = json_loads(s, 0, NULL);
  free(s);
  json_t *pm = json_object_get(j, "portMappings");
  cr_assert_eq(json_array_size(pm), 2);
  json_t *m0 = json_array_get(pm, 0);
  cr_assert_eq(json_integer_value(json_object_get(m0, "hostPort")), 8080);
  cr_assert_eq(json_integer_value(json_object_get(m0, "containerPort")), 80);
  cr_assert_str_eq(json_string_value(json_object_get(m0, "protocol")), "tcp");
  cr_assert_str_eq(json_string_value(json_object_get(m0, "hostIP")), "127.0.0.1");
  cr_assert_null(json_object_get(json_array_get(pm, 1), "hostIP"));
  cr_assert_str_eq(json_string_value(json_object_get(json_array_get(pm, 1), "protocol")), "udp");
  json_t *bw = json_object_get(j, "bandwidth");
  cr_assert_eq(json_integer_value(json_object_get(bw, "ingressRate")), 10000000);
  cr_assert_eq(json_integer_value(json_object_get(bw, "egressRate")), 1048576);
  cr_assert_eq(json_integer_value(json_object_get(bw, "ingressBurst")), 4294967295LL);
  cr_assert_str_eq(
      json_string_value(json_array_get(json_object_get(json_object_get(j, "dns"), "servers"), 0)),
      "10.96.0.10");
  cr_assert_str_eq(json_string_value(json_object_get(j, "cgroupPath")), "/kubepods/pod1");
  cr_assert_str_eq(json_string_value(json_object_get(
                       json_object_get(j, "io.kubernetes.cri.pod-annotations"), "team")),
                   "blue");
  json_decref(j);

  net_kv badann[] = {{"kubernetes.io/ingress-bandwidth", "1"}};
  net_pod bad = {.id = "p1", .annotations = badann, .n_annotations = 1};
  q_cleanup_error q_error *err = NULL;
  cr_assert_eq(net_pod_capability_args(&bad, &s, &err), -EINVAL);
  cr_assert(strstr(q_error_msg(err), "reading pod bandwidth annotations") != NULL);
}
