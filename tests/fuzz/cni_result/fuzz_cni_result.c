/* Fuzzer: what CNI plugins and the CNI directories hand quarkd: plugin
 * results, network configs, cache files; plus the pod's DNS/hosts renderers
 * and the bandwidth quantities of pod annotations.
 *
 * Input: selector byte, then the document.
 *   0  plugin result (net_result_parse): every ip's iface is -1 or an index
 *      into ifaces, versions are 4 or 6, every string is set.
 *   1  network config list (.conflist); 2  single plugin config (.conf):
 *      net_conf_parse: a parsed list has a name, a version, n_plugins types
 *      and its JSON bytes, which parse again as a list to the same shape.
 *   3  cache file (results/<net>-<id>-<if>) read by net_cache_read; a parsed
 *      entry written back with net_cache_write reads back equal.
 *   4  bandwidth quantity (net_parse_bandwidth).
 *   5  resolv.conf / hosts rendering from NUL-separated fields: the text
 *      never gains a line that no field asked for (fields with newlines
 *      are refused).
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "quark/net.h"

#define NET "fuzznet"
#define CID "0123456789abcdef"
#define IFN "eth0"

static const char *cache_dir;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  q_log_set_level(Q_LOG_OFF);
  cache_dir = fuzz_tmpdir("cni");
  char *p = NULL;
  if (asprintf(&p, "%s/results", cache_dir) < 0 || mkdir(p, 0700) < 0)
    abort();
  free(p);
  return 0;
}

static void check_result(const net_result *r)
{
  FUZZ_CHECK(r->cni_version, "no version");
  for (size_t i = 0; i < r->n_ifaces; i++)
    FUZZ_CHECK(r->ifaces[i].name, "iface %zu without a name", i);
  for (size_t i = 0; i < r->n_ips; i++) {
    FUZZ_CHECK(r->ips[i].version == 4 || r->ips[i].version == 6, "ip %zu version %d", i,
               r->ips[i].version);
    FUZZ_CHECK(r->ips[i].address, "ip %zu without an address", i);
    FUZZ_CHECK(r->ips[i].iface >= -1 &&
                   (r->ips[i].iface < 0 || (size_t)r->ips[i].iface < r->n_ifaces),
               "ip %zu: iface %d of %zu", i, r->ips[i].iface, r->n_ifaces);
  }
  for (size_t i = 0; i < r->n_routes; i++)
    FUZZ_CHECK(r->routes[i].dst, "route %zu without dst", i);
  for (size_t i = 0; i < r->dns.n_nameservers; i++)
    FUZZ_CHECK(r->dns.nameservers[i], "nameserver %zu", i);
  for (size_t i = 0; i < r->dns.n_search; i++)
    FUZZ_CHECK(r->dns.search[i], "search %zu", i);
  for (size_t i = 0; i < r->dns.n_options; i++)
    FUZZ_CHECK(r->dns.options[i], "option %zu", i);
}

static void fuzz_result(const char *s, size_t len)
{
  net_result *r = NULL;
  q_error *err = NULL;
  if (net_result_parse(s, len, &r, &err) == 0) {
    check_result(r);
    net_result_free(r);
  } else {
    FUZZ_CHECK(err, "failure without an error message");
  }
  q_error_free(&err);
}

static void fuzz_conf(const char *s, size_t len, bool is_list)
{
  net_conf_list *l = NULL;
  q_error *err = NULL;
  if (net_conf_parse(s, len, is_list, "fuzz", &l, &err) < 0) {
    FUZZ_CHECK(err, "failure without an error message");
    q_error_free(&err);
    return;
  }
  FUZZ_CHECK(l->name && l->cni_version && l->bytes, "incomplete list");
  for (size_t i = 0; i < l->n_plugins; i++)
    FUZZ_CHECK(l->plugin_types[i], "plugin %zu without a type", i);
  net_conf_list *again = NULL;
  FUZZ_CHECK(net_conf_parse(l->bytes, l->len, true, "again", &again, &err) == 0,
             "the list's own bytes do not parse: %s", q_error_msg(err));
  FUZZ_CHECK(strcmp(again->name, l->name) == 0 && strcmp(again->cni_version, l->cni_version) == 0 &&
                 again->n_plugins == l->n_plugins && again->disable_check == l->disable_check,
             "the list changed on a second parse");
  for (size_t i = 0; i < l->n_plugins; i++)
    FUZZ_CHECK(strcmp(again->plugin_types[i], l->plugin_types[i]) == 0, "plugin %zu type", i);
  net_conf_list_free(again);
  net_conf_list_free(l);
}

static bool same(const char *a, const char *b)
{
  return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void fuzz_cache(const uint8_t *data, size_t len)
{
  char *path = net_cache_path(cache_dir, NET, CID, IFN);
  FUZZ_CHECK(path, "cache path");
  fuzz_write_file(AT_FDCWD, path, data, len, 0600);
  net_cache_entry *e = NULL;
  q_error *err = NULL;
  int r = net_cache_read(cache_dir, NET, CID, IFN, &e, &err);
  if (r == 0) {
    FUZZ_CHECK(e->container_id && e->network_name && e->ifname, "incomplete entry");
    /* Written back under its own names (when they make a valid file name). */
    if (net_cache_write(cache_dir, e, &err) == 0) {
      net_cache_entry *back = NULL;
      FUZZ_CHECK(
          net_cache_read(cache_dir, e->network_name, e->container_id, e->ifname, &back, &err) == 0,
          "an entry we wrote does not read back: %s", q_error_msg(err));
      FUZZ_CHECK(same(back->netns, e->netns) && same(back->cni_args, e->cni_args) &&
                     same(back->capability_args, e->capability_args) &&
                     back->config_len == e->config_len &&
                     (!e->config_len || memcmp(back->config, e->config, e->config_len) == 0),
                 "cache entry changed on a round trip");
      FUZZ_CHECK((back->result == NULL) == (e->result == NULL), "result lost on a round trip");
      net_cache_entry_free(back);
      net_cache_remove(cache_dir, e->network_name, e->container_id, e->ifname, NULL);
    }
    q_error_free(&err);
    net_cache_entry_free(e);
  } else {
    FUZZ_CHECK(err || r == -ENOENT, "failure without an error message");
    q_error_free(&err);
  }
  unlink(path);
  free(path);
}

/* Splits s (len bytes with NULs) into at most max fields. */
static size_t fields(char *s, size_t len, const char **out, size_t max)
{
  size_t n = 0;
  for (size_t i = 0; i < len && n < max;) {
    out[n++] = s + i;
    i += strlen(s + i) + 1;
  }
  return n;
}

static void fuzz_render(char *s, size_t len)
{
  const char *f[16];
  size_t n = fields(s, len, f, 16);
  if (n < 3)
    return;
  size_t k = n / 3;
  net_dns_config dns = {.servers = f,
                        .n_servers = k,
                        .searches = f + k,
                        .n_searches = k,
                        .options = f + 2 * k,
                        .n_options = n - 2 * k};
  char *out = NULL;
  q_error *err = NULL;
  if (net_render_resolv_conf(&dns, &out, &err) == 0) {
    size_t lines = 0;
    for (const char *p = out; *p; p++)
      lines += *p == '\n';
    FUZZ_CHECK(lines <= 3 + n, "resolv.conf of %zu fields has %zu lines", n, lines);
    free(out);
  }
  q_error_free(&err);
  out = NULL;
  if (net_render_hosts(f[0], n > 1 && f[1][0] ? f[1] : NULL, f + 2, n - 2, &out, &err) == 0)
    free(out);
  q_error_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
  if (len < 1)
    return 0;
  char *s = fuzz_strndup(data + 1, len - 1);
  int fds = fuzz_fd_count();
  size_t n = len - 1;
  switch (data[0] % 6) {
  case 0:
    fuzz_result(s, n);
    break;
  case 1:
    fuzz_conf(s, n, true);
    break;
  case 2:
    fuzz_conf(s, n, false);
    break;
  case 3:
    fuzz_cache(data + 1, n);
    break;
  case 4: {
    uint64_t bps;
    q_error *err = NULL;
    if (net_parse_bandwidth(s, &bps, &err) == 0)
      FUZZ_CHECK(bps >= 1000 && bps <= 1000000000000000ull, "%s: %llu bit/s", s,
                 (unsigned long long)bps);
    q_error_free(&err);
    break;
  }
  case 5:
    fuzz_render(s, n);
    break;
  }
  free(s);
  FUZZ_CHECK_FDS(fds);
  return 0;
}
