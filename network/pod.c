/* A pod's networks, as containerd's CRI plugin sets them up: the loopback
 * network on lo, then the default network on eth0, with the pod's CNI_ARGS
 * and capability arguments; rollback of a partial setup; a tolerant,
 * idempotent teardown. */
#include "net_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define ANN_INGRESS "kubernetes.io/ingress-bandwidth"
#define ANN_EGRESS "kubernetes.io/egress-bandwidth"
#define CAP_POD_ANNOTATIONS "io.kubernetes.cri.pod-annotations"
/* containerd's burst for both directions: math.MaxUint32 bits. */
#define BANDWIDTH_BURST 4294967295ull

/* ---- bandwidth ---- */

int net_parse_bandwidth(const char *q, uint64_t *bps, q_error **err)
{
  /* A Kubernetes quantity: [+-]digits[.digits] then a binary suffix (Ki..Ei),
   * a decimal one (n u m "" k M G T P E) or an exponent (e3, E-2). Value()
   * rounds up to a whole number, which is what containerd passes. */
  const char *s = q;
  bool neg = false;
  if (s == NULL || *s == '\0')
    return q_error_make(err, EINVAL, "bandwidth \"\": not a quantity");
  if (*s == '+' || *s == '-')
    neg = *s++ == '-';
  unsigned __int128 mant = 0;
  int frac = 0, digits = 0;
  bool dot = false;
  for (; isdigit((unsigned char)*s) || (*s == '.' && !dot); s++) {
    if (*s == '.') {
      dot = true;
      continue;
    }
    if (mant == 0 && *s == '0') {
      if (dot)
        frac++;
      continue;
    }
    if (++digits > 30)
      return q_error_make(err, ERANGE, "bandwidth \"%s\": too many digits", q);
    mant = mant * 10 + (unsigned)(*s - '0');
    if (dot)
      frac++;
  }
  if (s == q + (q[0] == '+' || q[0] == '-') || (s[-1] == '.' && s - 1 == q))
    return q_error_make(err, EINVAL, "bandwidth \"%s\": not a quantity", q);
  int exp10 = 0, exp2 = 0;
  static const struct {
    const char *suf;
    int e10, e2;
  } sufs[] = {{"Ki", 0, 10}, {"Mi", 0, 20}, {"Gi", 0, 30}, {"Ti", 0, 40},
              {"Pi", 0, 50}, {"Ei", 0, 60}, {"n", -9, 0},  {"u", -6, 0},
              {"m", -3, 0},  {"k", 3, 0},   {"M", 6, 0},   {"G", 9, 0},
              {"T", 12, 0},  {"P", 15, 0},  {"E", 18, 0},  {"", 0, 0}};
  bool matched = false;
  if ((*s == 'e' || *s == 'E') && s[1] != '\0' && s[1] != 'i') {
    char *end;
    long e = strtol(s + 1, &end, 10);
    if (*end != '\0' || end == s + 1 || e < -30 || e > 30)
      return q_error_make(err, EINVAL, "bandwidth \"%s\": bad exponent", q);
    exp10 = (int)e;
    matched = true;
  }
  for (size_t i = 0; !matched && i < Q_ARRAY_SIZE(sufs); i++)
    if (strcmp(s, sufs[i].suf) == 0) {
      exp10 = sufs[i].e10;
      exp2 = sufs[i].e2;
      matched = true;
    }
  if (!matched)
    return q_error_make(err, EINVAL, "bandwidth \"%s\": unknown suffix \"%s\"", q, s);
  /* value = mant * 2^exp2 * 10^(exp10 - frac), rounded up. Anything over
   * 1P is refused below, so stop multiplying well before overflow. */
  const unsigned __int128 cap = (unsigned __int128)1 << 100;
  unsigned __int128 v = mant;
  for (int i = 0; i < exp2 && v < cap; i++)
    v <<= 1;
  int e = exp10 - frac;
  for (; e > 0 && v < cap; e--)
    v *= 10;
  unsigned __int128 den = 1;
  for (; e < 0; e++) {
    den *= 10;
    if (den > cap) {
      v = v ? 1 : 0; /* tiny but non-zero rounds up to 1 */
      den = 1;
      break;
    }
  }
  v = (v + den - 1) / den;
  if (neg && v != 0)
    return q_error_make(err, EINVAL, "bandwidth \"%s\": resource is unreasonably small (< 1kbit)",
                        q);
  if (v < 1000)
    return q_error_make(err, EINVAL, "bandwidth \"%s\": resource is unreasonably small (< 1kbit)",
                        q);
  if (v > 1000000000000000ull)
    return q_error_make(err, EINVAL, "bandwidth \"%s\": resource is unreasonably large (> 1Pbit)",
                        q);
  *bps = (uint64_t)v;
  return 0;
}

/* ---- capability arguments ---- */

static const char *ann_get(const net_pod *pod, const char *key)
{
  for (size_t i = 0; i < pod->n_annotations; i++)
    if (pod->annotations[i].key && strcmp(pod->annotations[i].key, key) == 0)
      return pod->annotations[i].value ? pod->annotations[i].value : "";
  return NULL;
}

static json_t *str_list(const char *const *v, size_t n)
{
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++)
    json_array_append_new(a, json_string(v[i] ? v[i] : ""));
  return a;
}

int net_pod_capability_args(const net_pod *pod, char **json_out, q_error **err)
{
  json_t *caps = json_object();
  if (caps == NULL)
    return q_error_make(err, ENOMEM, "capability args");
  int r = 0;
  json_t *pm = json_array();
  for (size_t i = 0; pm && i < pod->n_ports; i++) {
    const net_port_mapping *p = &pod->ports[i];
    if (p->host_port <= 0)
      continue;
    char proto[8] = "tcp";
    if (p->protocol != NULL && *p->protocol) {
      size_t k = 0;
      for (; p->protocol[k] && k < sizeof(proto) - 1; k++)
        proto[k] = (char)tolower((unsigned char)p->protocol[k]);
      proto[k] = '\0';
      if (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0 && strcmp(proto, "sctp") != 0) {
        json_decref(pm);
        json_decref(caps);
        return q_error_make(err, EINVAL, "port mapping %d: unknown protocol \"%s\"",
                            p->container_port, p->protocol);
      }
    }
    json_t *m = json_pack("{s:i, s:i, s:s}", "hostPort", (int)p->host_port, "containerPort",
                          (int)p->container_port, "protocol", proto);
    if (m != NULL && p->host_ip != NULL && *p->host_ip)
      json_object_set_new(m, "hostIP", json_string(p->host_ip));
    json_array_append_new(pm, m);
  }
  if (json_array_size(pm) > 0)
    json_object_set_new(caps, "portMappings", pm);
  else
    json_decref(pm);

  const char *in = ann_get(pod, ANN_INGRESS), *eg = ann_get(pod, ANN_EGRESS);
  if (in != NULL || eg != NULL) {
    json_t *bw = json_object();
    uint64_t rate;
    if (in != NULL) {
      if ((r = net_parse_bandwidth(in, &rate, err)) < 0)
        goto bad;
      json_object_set_new(bw, "ingressRate", json_integer((json_int_t)rate));
      json_object_set_new(bw, "ingressBurst", json_integer((json_int_t)BANDWIDTH_BURST));
    }
    if (eg != NULL) {
      if ((r = net_parse_bandwidth(eg, &rate, err)) < 0)
        goto bad;
      json_object_set_new(bw, "egressRate", json_integer((json_int_t)rate));
      json_object_set_new(bw, "egressBurst", json_integer((json_int_t)BANDWIDTH_BURST));
    }
    json_object_set_new(caps, "bandwidth", bw);
    goto bw_done;
  bad:
    json_decref(bw);
    json_decref(caps);
    q_error_wrap(err, "reading pod bandwidth annotations");
    return r;
  }
bw_done:
  if (pod->dns != NULL) {
    json_t *d = json_object();
    if (pod->dns->n_servers)
      json_object_set_new(d, "servers", str_list(pod->dns->servers, pod->dns->n_servers));
    if (pod->dns->n_searches)
      json_object_set_new(d, "searches", str_list(pod->dns->searches, pod->dns->n_searches));
    if (pod->dns->n_options)
      json_object_set_new(d, "options", str_list(pod->dns->options, pod->dns->n_options));
    json_object_set_new(caps, "dns", d);
  }
  if (pod->cgroup_parent != NULL && *pod->cgroup_parent)
    json_object_set_new(caps, "cgroupPath", json_string(pod->cgroup_parent));
  json_t *ann = json_object();
  for (size_t i = 0; ann && i < pod->n_annotations; i++)
    if (pod->annotations[i].key)
      json_object_set_new(ann, pod->annotations[i].key,
                          json_string(pod->annotations[i].value ? pod->annotations[i].value : ""));
  json_object_set_new(caps, CAP_POD_ANNOTATIONS, ann);
  *json_out = net_json_dump(caps);
  json_decref(caps);
  return *json_out ? 0 : q_error_make(err, ENOMEM, "capability args");
}

/* ---- pod attach / detach ---- */

struct pod_rt {
  net_kv args[5];
  char *caps;
  net_runtime rt;
};

static int pod_runtime(const net_pod *pod, const char *ifname, struct pod_rt *p, q_error **err)
{
  memset(p, 0, sizeof(*p));
  /* containerd's labels, IgnoreUnknown first so plugins that do not know
   * the K8S_* keys accept them. */
  p->args[0] = (net_kv){"IgnoreUnknown", "1"};
  p->args[1] = (net_kv){"K8S_POD_NAMESPACE", pod->namespace ? pod->namespace : ""};
  p->args[2] = (net_kv){"K8S_POD_NAME", pod->name ? pod->name : ""};
  p->args[3] = (net_kv){"K8S_POD_INFRA_CONTAINER_ID", pod->id};
  p->args[4] = (net_kv){"K8S_POD_UID", pod->uid ? pod->uid : ""};
  int r = net_pod_capability_args(pod, &p->caps, err);
  if (r < 0)
    return r;
  p->rt = (net_runtime){
      .container_id = pod->id,
      .netns = pod->netns_path,
      .ifname = ifname,
      .args = p->args,
      .n_args = Q_ARRAY_SIZE(p->args),
      .capability_args = p->caps,
  };
  return 0;
}

void net_pod_network_free(net_pod_network *n)
{
  if (n == NULL)
    return;
  free(n->netns_path);
  free(n->network_name);
  net_result_free(n->result);
  free(n->raw_result);
  free(n->primary_ip);
  for (size_t i = 0; i < n->n_additional_ips; i++)
    free(n->additional_ips[i]);
  free(n->additional_ips);
  free(n);
}

static char *strip_prefix(const char *cidr)
{
  const char *slash = strchr(cidr, '/');
  return strndup(cidr, slash ? (size_t)(slash - cidr) : strlen(cidr));
}

/* containerd's selectPodIPs over the IPs go-cni files under eth0: those on
 * an interface named eth0, or with no interface index. IPv4 first. */
static int pick_ips(net_pod_network *n, const char *ifname)
{
  const net_result *res = n->result;
  n->additional_ips = calloc(res->n_ips + 1, sizeof(char *));
  if (n->additional_ips == NULL)
    return -ENOMEM;
  int primary = -1;
  for (int pass = 4; pass >= 0 && primary < 0; pass -= 4)
    for (size_t i = 0; i < res->n_ips && primary < 0; i++) {
      const net_ip *ip = &res->ips[i];
      bool ours = ip->iface < 0 || strcmp(res->ifaces[ip->iface].name, ifname) == 0;
      if (ours && (pass == 0 || ip->version == 4))
        primary = (int)i;
    }
  if (primary < 0)
    return 0;
  if ((n->primary_ip = strip_prefix(res->ips[primary].address)) == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < res->n_ips; i++) {
    const net_ip *ip = &res->ips[i];
    bool ours = ip->iface < 0 || strcmp(res->ifaces[ip->iface].name, ifname) == 0;
    if (!ours || (int)i == primary)
      continue;
    if ((n->additional_ips[n->n_additional_ips] = strip_prefix(ip->address)) == NULL)
      return -ENOMEM;
    n->n_additional_ips++;
  }
  return 0;
}

/* go-cni's tolerance on teardown: "not found" means already gone, and so
 * does a missing file when the namespace itself is gone. */
static bool del_error_tolerable(const q_error *e, bool netns_gone)
{
  const char *m = q_error_msg(e);
  return strstr(m, "not found") != NULL ||
         (netns_gone && strstr(m, "no such file or directory") != NULL);
}

static int del_tolerant(const net_cni *c, const net_conf_list *l, const net_runtime *rt,
                        q_error **err)
{
  q_cleanup_error q_error *derr = NULL;
  int r = net_cni_del_list(c, l, rt, &derr);
  if (r == 0)
    return 0;
  bool gone = net_netns_gone(rt->netns);
  if (del_error_tolerable(derr, gone)) {
    q_info(rt->container_id, "cni: network %s already gone: %s", l->name, q_error_msg(derr));
    return net_cache_remove(c->cache_dir, l->name, rt->container_id, rt->ifname, err);
  }
  if (err != NULL) {
    q_error_free(err);
    *err = q_steal_ptr(&derr);
  }
  return r;
}

/* Rollback after a failed ADD: errors are logged, the ADD's error stays. */
static void rollback(const net_cni *c, const net_conf_list *l, const net_runtime *rt)
{
  q_cleanup_error q_error *e = NULL;
  if (net_cni_del_list(c, l, rt, &e) < 0)
    q_warn(rt->container_id, "cni: rollback of network %s: %s", l->name, q_error_msg(e));
}

int net_pod_attach(const net_cni *c, const net_pod *pod, net_pod_network **out, q_error **err)
{
  if (pod->netns_path == NULL || !net_valid_id(pod->id))
    return q_error_make(err, EINVAL, "pod %s: no network namespace or bad id",
                        pod->id ? pod->id : "");
  struct pod_rt lo_rt, eth_rt;
  net_conf_list *lo = NULL, *def = NULL;
  net_pod_network *n = NULL;
  int r = pod_runtime(pod, "lo", &lo_rt, err);
  if (r < 0)
    return r;
  eth_rt = lo_rt;
  eth_rt.caps = NULL; /* owned by lo_rt */
  eth_rt.rt.ifname = NET_DEFAULT_IFNAME;
  eth_rt.rt.args = eth_rt.args;

  if ((r = net_conf_load_default(c->conf_dir, &def, err)) < 0) {
    q_error_wrap(err, "cni config load failed");
    goto out;
  }
  if ((r = net_conf_loopback(&lo, err)) < 0)
    goto out;
  if ((r = net_cni_add_list(c, lo, &lo_rt.rt, NULL, NULL, err)) < 0) {
    rollback(c, lo, &lo_rt.rt);
    goto out;
  }
  n = calloc(1, sizeof(*n));
  if (n == NULL || (n->netns_path = strdup(pod->netns_path)) == NULL ||
      (n->network_name = strdup(def->name)) == NULL) {
    r = q_error_make(err, ENOMEM, "pod network");
    rollback(c, lo, &lo_rt.rt);
    goto out;
  }
  r = net_cni_add_list(c, def, &eth_rt.rt, &n->result, &n->raw_result, err);
  if (r == 0 && pick_ips(n, NET_DEFAULT_IFNAME) < 0) {
    r = q_error_make(err, ENOMEM, "pod IPs");
    rollback(c, def, &eth_rt.rt);
    rollback(c, lo, &lo_rt.rt);
  } else if (r < 0) {
    rollback(c, def, &eth_rt.rt);
    rollback(c, lo, &lo_rt.rt);
  }
  if (r < 0) {
    q_error_wrap(err, "failed to setup network for sandbox \"%s\"", pod->id);
    goto out;
  }
  q_info(pod->id, "cni: attached to network %s, ip %s", def->name,
         n->primary_ip ? n->primary_ip : "(none)");
  *out = q_steal_ptr(&n);
out:
  net_pod_network_free(n);
  net_conf_list_free(lo);
  net_conf_list_free(def);
  free(lo_rt.caps);
  return r;
}

int net_pod_setup(const net_cni *c, const net_pod *pod, net_pod_network **out, q_error **err)
{
  if (!net_valid_id(pod->id))
    return q_error_make(err, EINVAL, "invalid pod id \"%s\"", pod->id ? pod->id : "");
  q_cleanup_free char *created = NULL;
  net_pod p = *pod;
  int r;
  if (p.netns_path == NULL) {
    if ((r = net_netns_create(c->netns_dir, NULL, &created, err)) < 0)
      return r;
    p.netns_path = created;
  }
  r = net_netns_set_sysctls(p.netns_path, p.sysctls, p.n_sysctls, err);
  if (r == 0)
    r = net_pod_attach(c, &p, out, err);
  if (r < 0 && created != NULL) {
    q_cleanup_error q_error *e = NULL;
    if (net_netns_remove(created, &e) < 0)
      q_warn(pod->id, "cni: remove netns after failed setup: %s", q_error_msg(e));
  }
  return r;
}

/* The default network's list for DEL: the one cached at ADD (so a renamed
 * or edited config still tears down what was set up), else the current
 * default. *l NULL: nothing to delete. */
static int detach_list(const net_cni *c, const net_pod *pod, net_conf_list **l, q_error **err)
{
  *l = NULL;
  net_cache_entry *e = NULL;
  int r = net_cache_find(c->cache_dir, pod->id, NET_DEFAULT_IFNAME, &e, err);
  if (r == 0 && e->config != NULL) {
    r = net_conf_parse(e->config, e->config_len, true, "cached config", l, NULL);
    if (r == 0 && strcmp((*l)->name, e->network_name) != 0) {
      net_conf_list_free(*l);
      *l = NULL;
      r = -EINVAL;
    }
    net_cache_entry_free(e);
    if (r == 0)
      return 0;
    q_warn(pod->id, "cni: cached config unusable, deleting with the current one");
  } else if (r < 0 && r != -ENOENT) {
    return r;
  } else {
    net_cache_entry_free(e);
  }
  q_cleanup_error q_error *lerr = NULL;
  if (net_conf_load_default(c->conf_dir, l, &lerr) < 0) {
    /* Nothing cached and no config: nothing of ours can be attached. */
    q_debug(pod->id, "cni: no default network to delete: %s", q_error_msg(lerr));
    *l = NULL;
  }
  return 0;
}

int net_pod_detach(const net_cni *c, const net_pod *pod, q_error **err)
{
  if (!net_valid_id(pod->id))
    return q_error_make(err, EINVAL, "invalid pod id \"%s\"", pod->id ? pod->id : "");
  struct pod_rt lo_rt, eth_rt;
  int r = pod_runtime(pod, "lo", &lo_rt, err);
  if (r < 0) {
    /* Bad annotations cannot block teardown: delete without capabilities. */
    q_error_free(err);
    memset(&lo_rt, 0, sizeof(lo_rt));
    net_pod bare = *pod;
    bare.n_annotations = 0;
    bare.n_ports = 0;
    if ((r = pod_runtime(&bare, "lo", &lo_rt, err)) < 0)
      return r;
  }
  if (net_netns_gone(pod->netns_path)) {
    if (pod->netns_path != NULL && *pod->netns_path != '\0')
      q_info(pod->id, "cni: netns %s is gone (no nsfs mount there), DEL runs without it",
             pod->netns_path);
    lo_rt.rt.netns = "";
  }
  eth_rt = lo_rt;
  eth_rt.caps = NULL;
  eth_rt.rt.ifname = NET_DEFAULT_IFNAME;
  eth_rt.rt.args = eth_rt.args;
  net_conf_list *def = NULL, *lo = NULL;
  int r1 = detach_list(c, pod, &def, err);
  if (r1 == 0 && def != NULL)
    r1 = del_tolerant(c, def, &eth_rt.rt, err);
  int r2 = net_conf_loopback(&lo, r1 < 0 ? NULL : err);
  if (r2 == 0)
    r2 = del_tolerant(c, lo, &lo_rt.rt, r1 < 0 ? NULL : err);
  net_conf_list_free(def);
  net_conf_list_free(lo);
  free(lo_rt.caps);
  r = r1 < 0 ? r1 : r2;
  if (r < 0)
    q_error_wrap(err, "failed to destroy network for sandbox \"%s\"", pod->id);
  return r;
}

int net_pod_check(const net_cni *c, const net_pod *pod, q_error **err)
{
  struct pod_rt rt;
  int r = pod_runtime(pod, NET_DEFAULT_IFNAME, &rt, err);
  if (r < 0)
    return r;
  net_conf_list *def = NULL, *lo = NULL;
  r = detach_list(c, pod, &def, err);
  if (r == 0 && def != NULL)
    r = net_cni_check_list(c, def, &rt.rt, err);
  if (r == 0 && (r = net_conf_loopback(&lo, err)) == 0) {
    rt.rt.ifname = "lo";
    r = net_cni_check_list(c, lo, &rt.rt, err);
  }
  net_conf_list_free(def);
  net_conf_list_free(lo);
  free(rt.caps);
  return r;
}

int net_pod_teardown(const net_cni *c, const net_pod *pod, q_error **err)
{
  int r = net_pod_detach(c, pod, err);
  if (r < 0)
    return r;
  return net_netns_remove(pod->netns_path, err);
}

int net_pod_cached(const net_cni *c, const char *pod_id, net_pod_network **out, q_error **err)
{
  net_cache_entry *e = NULL;
  int r = net_cache_find(c->cache_dir, pod_id, NET_DEFAULT_IFNAME, &e, err);
  if (r < 0)
    return r;
  net_pod_network *n = calloc(1, sizeof(*n));
  if (n == NULL || e->result == NULL) {
    free(n);
    net_cache_entry_free(e);
    return n ? q_error_make(err, EINVAL, "cache entry of %s has no result", pod_id)
             : q_error_make(err, ENOMEM, "pod network");
  }
  n->netns_path = e->netns ? strdup(e->netns) : NULL;
  n->network_name = strdup(e->network_name);
  n->raw_result = strdup(e->result);
  r = n->network_name && n->raw_result ? 0 : q_error_make(err, ENOMEM, "pod network");
  if (r == 0)
    r = net_result_parse(n->raw_result, strlen(n->raw_result), &n->result, err);
  if (r == 0 && pick_ips(n, NET_DEFAULT_IFNAME) < 0)
    r = q_error_make(err, ENOMEM, "pod IPs");
  net_cache_entry_free(e);
  if (r < 0) {
    net_pod_network_free(n);
    return r;
  }
  *out = n;
  return 0;
}
