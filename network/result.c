/* CNI results in every version plugins print, read into one net_result.
 *
 *   0.1.0, 0.2.0       {"ip4": {"ip", "gateway", "routes"}, "ip6": {...}, "dns"}
 *   0.3.0 .. 0.4.0     {"interfaces", "ips": [{"version", "interface", "address",
 *                       "gateway"}], "routes", "dns"}
 *   1.0.0, 1.1.0       the same without "version" in ips (read from the address)
 */
#include "net_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static void free_strv(char **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

void net_result_free(net_result *r)
{
  if (r == NULL)
    return;
  free(r->cni_version);
  for (size_t i = 0; i < r->n_ifaces; i++) {
    free(r->ifaces[i].name);
    free(r->ifaces[i].mac);
    free(r->ifaces[i].sandbox);
  }
  free(r->ifaces);
  for (size_t i = 0; i < r->n_ips; i++) {
    free(r->ips[i].address);
    free(r->ips[i].gateway);
  }
  free(r->ips);
  for (size_t i = 0; i < r->n_routes; i++) {
    free(r->routes[i].dst);
    free(r->routes[i].gw);
  }
  free(r->routes);
  free_strv(r->dns.nameservers, r->dns.n_nameservers);
  free(r->dns.domain);
  free_strv(r->dns.search, r->dns.n_search);
  free_strv(r->dns.options, r->dns.n_options);
  free(r);
}

/* 4 or 6 for "a.b.c.d/n" or "x::y/n", 0 when not a CIDR. */
static int cidr_family(const char *s)
{
  const char *slash = strchr(s, '/');
  if (slash == NULL || slash == s || (size_t)(slash - s) >= INET6_ADDRSTRLEN)
    return 0;
  char addr[INET6_ADDRSTRLEN];
  memcpy(addr, s, (size_t)(slash - s));
  addr[slash - s] = '\0';
  char *end;
  long prefix = strtol(slash + 1, &end, 10);
  if (slash[1] == '\0' || *end != '\0')
    return 0;
  unsigned char buf[16];
  if (inet_pton(AF_INET, addr, buf) == 1)
    return prefix >= 0 && prefix <= 32 ? 4 : 0;
  if (inet_pton(AF_INET6, addr, buf) == 1)
    return prefix >= 0 && prefix <= 128 ? 6 : 0;
  return 0;
}

static bool is_ip(const char *s)
{
  unsigned char buf[16];
  return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Optional string member; *out NULL when absent. */
static int opt_str(json_t *o, const char *key, char **out, q_error **err)
{
  json_t *v = json_object_get(o, key);
  *out = NULL;
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_string(v))
    return q_error_make(err, EINVAL, "CNI result: \"%s\" is not a string", key);
  *out = strdup(json_string_value(v));
  return *out ? 0 : q_error_make(err, ENOMEM, "CNI result");
}

static int str_array(json_t *o, const char *key, char ***out, size_t *n, q_error **err)
{
  json_t *a = json_object_get(o, key);
  *out = NULL;
  *n = 0;
  if (a == NULL || json_is_null(a))
    return 0;
  if (!json_is_array(a))
    return q_error_make(err, EINVAL, "CNI result: dns \"%s\" is not an array", key);
  char **v = calloc(json_array_size(a) + 1, sizeof(char *));
  if (v == NULL)
    return q_error_make(err, ENOMEM, "CNI result");
  size_t i;
  json_t *e;
  json_array_foreach(a, i, e)
  {
    if (!json_is_string(e) || (v[i] = strdup(json_string_value(e))) == NULL) {
      free_strv(v, i);
      return q_error_make(err, EINVAL, "CNI result: dns \"%s\" holds a non-string", key);
    }
  }
  *out = v;
  *n = json_array_size(a);
  return 0;
}

static int parse_dns(json_t *d, net_dns *dns, q_error **err)
{
  if (d == NULL || json_is_null(d))
    return 0;
  if (!json_is_object(d))
    return q_error_make(err, EINVAL, "CNI result: \"dns\" is not an object");
  int r;
  if ((r = str_array(d, "nameservers", &dns->nameservers, &dns->n_nameservers, err)) < 0 ||
      (r = opt_str(d, "domain", &dns->domain, err)) < 0 ||
      (r = str_array(d, "search", &dns->search, &dns->n_search, err)) < 0 ||
      (r = str_array(d, "options", &dns->options, &dns->n_options, err)) < 0)
    return r;
  return 0;
}

static int add_route(net_result *res, json_t *rt, q_error **err)
{
  if (!json_is_object(rt))
    return q_error_make(err, EINVAL, "CNI result: a route is not an object");
  net_route *x = &res->routes[res->n_routes];
  int r;
  if ((r = opt_str(rt, "dst", &x->dst, err)) < 0)
    return r;
  if ((r = opt_str(rt, "gw", &x->gw, err)) < 0) {
    free(x->dst);
    return r;
  }
  res->n_routes++;
  if (x->dst == NULL || cidr_family(x->dst) == 0)
    return q_error_make(err, EINVAL, "CNI result: route dst \"%s\" is not a CIDR",
                        x->dst ? x->dst : "");
  if (x->gw != NULL && !is_ip(x->gw))
    return q_error_make(err, EINVAL, "CNI result: route gw \"%s\" is not an IP", x->gw);
  return 0;
}

static int grow_routes(net_result *res, size_t more, q_error **err)
{
  net_route *n = realloc(res->routes, (res->n_routes + more + 1) * sizeof(*n));
  if (n == NULL)
    return q_error_make(err, ENOMEM, "CNI result");
  res->routes = n;
  return 0;
}

static int parse_routes(net_result *res, json_t *routes, q_error **err)
{
  if (routes == NULL || json_is_null(routes))
    return 0;
  if (!json_is_array(routes))
    return q_error_make(err, EINVAL, "CNI result: \"routes\" is not an array");
  int r = grow_routes(res, json_array_size(routes), err);
  size_t i;
  json_t *rt;
  json_array_foreach(routes, i, rt)
  {
    if (r == 0)
      r = add_route(res, rt, err);
  }
  return r;
}

static int add_ip(net_result *res, const char *address, const char *gateway, int version, int iface,
                  q_error **err)
{
  net_ip *ip = &res->ips[res->n_ips];
  int fam = address ? cidr_family(address) : 0;
  if (fam == 0)
    return q_error_make(err, EINVAL, "CNI result: IP address \"%s\" is not a CIDR",
                        address ? address : "");
  if (version != 0 && version != fam)
    return q_error_make(err, EINVAL, "CNI result: \"%s\" is not IPv%d", address, version);
  if (gateway != NULL && !is_ip(gateway))
    return q_error_make(err, EINVAL, "CNI result: gateway \"%s\" is not an IP", gateway);
  ip->version = fam;
  ip->iface = iface;
  ip->address = strdup(address);
  ip->gateway = gateway ? strdup(gateway) : NULL;
  res->n_ips++;
  if (ip->address == NULL || (gateway && ip->gateway == NULL))
    return q_error_make(err, ENOMEM, "CNI result");
  return 0;
}

/* 0.1.0 / 0.2.0: "ip4" and "ip6" objects, each with its own routes. */
static int parse_legacy(net_result *res, json_t *j, q_error **err)
{
  static const char *const keys[] = {"ip4", "ip6"};
  res->ips = calloc(3, sizeof(net_ip));
  if (res->ips == NULL)
    return q_error_make(err, ENOMEM, "CNI result");
  for (int k = 0; k < 2; k++) {
    json_t *o = json_object_get(j, keys[k]);
    if (o == NULL || json_is_null(o))
      continue;
    if (!json_is_object(o))
      return q_error_make(err, EINVAL, "CNI result: \"%s\" is not an object", keys[k]);
    const char *ip = json_string_value(json_object_get(o, "ip"));
    const char *gw = json_string_value(json_object_get(o, "gateway"));
    int r = add_ip(res, ip, gw, k == 0 ? 4 : 6, -1, err);
    if (r == 0)
      r = parse_routes(res, json_object_get(o, "routes"), err);
    if (r < 0)
      return r;
  }
  return 0;
}

static int parse_current(net_result *res, json_t *j, bool has_version_field, q_error **err)
{
  json_t *ifaces = json_object_get(j, "interfaces");
  if (ifaces != NULL && !json_is_null(ifaces)) {
    if (!json_is_array(ifaces))
      return q_error_make(err, EINVAL, "CNI result: \"interfaces\" is not an array");
    res->ifaces = calloc(json_array_size(ifaces) + 1, sizeof(net_iface));
    if (res->ifaces == NULL)
      return q_error_make(err, ENOMEM, "CNI result");
    size_t i;
    json_t *f;
    json_array_foreach(ifaces, i, f)
    {
      if (!json_is_object(f))
        return q_error_make(err, EINVAL, "CNI result: interface %zu is not an object", i);
      net_iface *x = &res->ifaces[i];
      res->n_ifaces = i + 1;
      int r;
      if ((r = opt_str(f, "name", &x->name, err)) < 0 ||
          (r = opt_str(f, "mac", &x->mac, err)) < 0 ||
          (r = opt_str(f, "sandbox", &x->sandbox, err)) < 0)
        return r;
      if (x->name == NULL)
        return q_error_make(err, EINVAL, "CNI result: interface %zu has no name", i);
      /* An empty sandbox means a host interface, as an absent one does. */
      if (x->sandbox != NULL && *x->sandbox == '\0') {
        free(x->sandbox);
        x->sandbox = NULL;
      }
    }
  }
  json_t *ips = json_object_get(j, "ips");
  if (ips != NULL && !json_is_null(ips)) {
    if (!json_is_array(ips))
      return q_error_make(err, EINVAL, "CNI result: \"ips\" is not an array");
    res->ips = calloc(json_array_size(ips) + 1, sizeof(net_ip));
    if (res->ips == NULL)
      return q_error_make(err, ENOMEM, "CNI result");
    size_t i;
    json_t *o;
    json_array_foreach(ips, i, o)
    {
      if (!json_is_object(o))
        return q_error_make(err, EINVAL, "CNI result: ip %zu is not an object", i);
      int version = 0;
      json_t *v = json_object_get(o, "version");
      /* 0.3.x/0.4.0 name the family in "version"; Debian's loopback plugin
       * leaves it out, and libcni accepts that, so only a wrong one fails. */
      if (has_version_field && v != NULL) {
        const char *vs = json_string_value(v);
        if (vs == NULL || (strcmp(vs, "4") != 0 && strcmp(vs, "6") != 0))
          return q_error_make(err, EINVAL, "CNI result: ip %zu: \"version\" must be \"4\" or \"6\"",
                              i);
        version = vs[0] - '0';
      }
      int iface = -1;
      json_t *ix = json_object_get(o, "interface");
      if (ix != NULL && !json_is_null(ix)) {
        if (!json_is_integer(ix) || json_integer_value(ix) < 0 ||
            (size_t)json_integer_value(ix) >= res->n_ifaces)
          return q_error_make(err, EINVAL, "CNI result: ip %zu: interface index out of range", i);
        iface = (int)json_integer_value(ix);
      }
      json_t *gw = json_object_get(o, "gateway");
      if (gw != NULL && !json_is_null(gw) && !json_is_string(gw))
        return q_error_make(err, EINVAL, "CNI result: ip %zu: \"gateway\" is not a string", i);
      int r = add_ip(res, json_string_value(json_object_get(o, "address")), json_string_value(gw),
                     version, iface, err);
      if (r < 0)
        return r;
    }
  }
  return parse_routes(res, json_object_get(j, "routes"), err);
}

int net_result_parse(const char *json, size_t len, net_result **out, q_error **err)
{
  json_error_t jerr;
  json_t *j = json_loadb(json, len, 0, &jerr);
  if (j == NULL)
    return q_error_make(err, EINVAL, "CNI result: invalid JSON: %s", jerr.text);
  int r = 0;
  net_result *res = calloc(1, sizeof(*res));
  if (res == NULL) {
    r = q_error_make(err, ENOMEM, "CNI result");
    goto out;
  }
  if (!json_is_object(j)) {
    r = q_error_make(err, EINVAL, "CNI result: not a JSON object");
    goto out;
  }
  json_t *v = json_object_get(j, "cniVersion");
  if (v != NULL && !json_is_string(v)) {
    r = q_error_make(err, EINVAL, "CNI result: \"cniVersion\" is not a string");
    goto out;
  }
  const char *version = v ? json_string_value(v) : "0.1.0";
  if ((res->cni_version = strdup(version)) == NULL) {
    r = q_error_make(err, ENOMEM, "CNI result");
    goto out;
  }
  if (strcmp(version, "0.1.0") == 0 || strcmp(version, "0.2.0") == 0)
    r = parse_legacy(res, j, err);
  else if (strcmp(version, "0.3.0") == 0 || strcmp(version, "0.3.1") == 0 ||
           strcmp(version, "0.4.0") == 0)
    r = parse_current(res, j, true, err);
  else if (strcmp(version, "1.0.0") == 0 || strcmp(version, "1.1.0") == 0)
    r = parse_current(res, j, false, err);
  else
    r = q_error_make(err, EINVAL, "CNI result: unsupported cniVersion \"%s\"", version);
  if (r == 0)
    r = parse_dns(json_object_get(j, "dns"), &res->dns, err);
out:
  json_decref(j);
  if (r < 0) {
    net_result_free(res);
    return r;
  }
  *out = res;
  return 0;
}
