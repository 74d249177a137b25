/* The result cache, byte-compatible with libcni's (what containerd, CRI-O,
 * podman and cnitool read):
 *
 *   <cache_dir>/results/<network>-<container id>-<ifname>      mode 0600
 *   {"kind":"cniCacheV1","containerId":..,"config":<base64 of the list>,
 *    "ifName":..,"networkName":..,"netns":..,"cniArgs":[[k,v],..],
 *    "capabilityArgs":{..},"result":{..}}
 *
 * "config" is base64 because libcni declares it []byte, which Go's JSON
 * encoder writes that way. */
#include "net_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define CACHE_KIND "cniCacheV1"

char *net_cache_path(const char *cache_dir, const char *network, const char *container_id,
                     const char *ifname)
{
  if (!net_valid_id(network) || !net_valid_id(container_id) || !net_valid_ifname(ifname))
    return NULL;
  char *p = NULL;
  if (asprintf(&p, "%s/results/%s-%s-%s", cache_dir, network, container_id, ifname) < 0)
    return NULL;
  return p;
}

void net_cache_entry_free(net_cache_entry *e)
{
  if (e == NULL)
    return;
  free(e->container_id);
  free(e->network_name);
  free(e->ifname);
  free(e->netns);
  free(e->config);
  free(e->cni_args);
  free(e->capability_args);
  free(e->result);
  free(e);
}

/* Parses a JSON text member into j, or leaves j NULL when text is NULL. */
static int load_member(json_t *obj, const char *key, const char *text, bool want_object,
                       q_error **err)
{
  if (text == NULL)
    return 0;
  json_error_t jerr;
  json_t *v = json_loads(text, 0, &jerr);
  if (v == NULL || (want_object ? !json_is_object(v) : !json_is_array(v))) {
    json_decref(v);
    return q_error_make(err, EINVAL, "cache entry: %s is not a JSON %s", key,
                        want_object ? "object" : "array");
  }
  json_object_set_new(obj, key, v);
  return 0;
}

int net_cache_write(const char *cache_dir, const net_cache_entry *e, q_error **err)
{
  q_cleanup_free char *path =
      net_cache_path(cache_dir, e->network_name, e->container_id, e->ifname);
  if (path == NULL)
    return q_error_make(err, EINVAL, "cache entry for network \"%s\" container \"%s\" if \"%s\"",
                        e->network_name ? e->network_name : "",
                        e->container_id ? e->container_id : "", e->ifname ? e->ifname : "");
  q_cleanup_free char *config = net_base64_encode(e->config ? e->config : "", e->config_len);
  json_t *o = json_object();
  if (config == NULL || o == NULL) {
    json_decref(o);
    return q_error_make(err, ENOMEM, "cache entry");
  }
  json_object_set_new(o, "kind", json_string(CACHE_KIND));
  json_object_set_new(o, "containerId", json_string(e->container_id));
  json_object_set_new(o, "config", json_string(config));
  json_object_set_new(o, "ifName", json_string(e->ifname));
  json_object_set_new(o, "networkName", json_string(e->network_name));
  if (e->netns && *e->netns)
    json_object_set_new(o, "netns", json_string(e->netns));
  int r;
  if ((r = load_member(o, "cniArgs", e->cni_args, false, err)) < 0 ||
      (r = load_member(o, "capabilityArgs", e->capability_args, true, err)) < 0 ||
      (r = load_member(o, "result", e->result, true, err)) < 0) {
    json_decref(o);
    return r;
  }
  q_cleanup_free char *text = net_json_dump(o);
  json_decref(o);
  if (text == NULL)
    return q_error_make(err, ENOMEM, "cache entry");
  q_cleanup_free char *dir = NULL;
  if (asprintf(&dir, "%s/results", cache_dir) < 0)
    return q_error_make(err, ENOMEM, "cache dir");
  if ((r = q_mkdir_p(dir, 0700, err)) < 0)
    return r;
  return q_write_file_atomic(path, text, strlen(text), 0600, err);
}

static char *dump_member(json_t *o, const char *key)
{
  json_t *v = json_object_get(o, key);
  if (v == NULL || json_is_null(v))
    return NULL;
  return net_json_dump(v);
}

static int parse_entry(const char *path, net_cache_entry **out, q_error **err)
{
  q_cleanup_free char *data = NULL;
  size_t len;
  int r = q_read_file(path, NET_PLUGIN_OUTPUT_MAX * 2, &data, &len, err);
  if (r < 0)
    return r;
  json_t *o = json_loadb(data, len, 0, NULL);
  const char *kind = o ? json_string_value(json_object_get(o, "kind")) : NULL;
  if (kind == NULL || strcmp(kind, CACHE_KIND) != 0) {
    json_decref(o);
    return q_error_make(err, EINVAL, "cache entry %s is not %s", path, CACHE_KIND);
  }
  net_cache_entry *e = calloc(1, sizeof(*e));
  const char *cid = json_string_value(json_object_get(o, "containerId"));
  const char *net = json_string_value(json_object_get(o, "networkName"));
  const char *ifn = json_string_value(json_object_get(o, "ifName"));
  const char *ns = json_string_value(json_object_get(o, "netns"));
  const char *cfg = json_string_value(json_object_get(o, "config"));
  if (e == NULL || cid == NULL || net == NULL || ifn == NULL) {
    net_cache_entry_free(e);
    json_decref(o);
    return q_error_make(err, EINVAL, "cache entry %s lacks containerId/networkName/ifName", path);
  }
  e->container_id = strdup(cid);
  e->network_name = strdup(net);
  e->ifname = strdup(ifn);
  e->netns = ns ? strdup(ns) : NULL;
  e->cni_args = dump_member(o, "cniArgs");
  e->capability_args = dump_member(o, "capabilityArgs");
  e->result = dump_member(o, "result");
  if (cfg != NULL && net_base64_decode(cfg, &e->config, &e->config_len) < 0) {
    net_cache_entry_free(e);
    json_decref(o);
    return q_error_make(err, EINVAL, "cache entry %s: config is not base64", path);
  }
  json_decref(o);
  *out = e;
  return 0;
}

int net_cache_read(const char *cache_dir, const char *network, const char *container_id,
                   const char *ifname, net_cache_entry **out, q_error **err)
{
  q_cleanup_free char *path = net_cache_path(cache_dir, network, container_id, ifname);
  if (path == NULL)
    return q_error_make(err, EINVAL, "cache entry name");
  if (access(path, F_OK) < 0)
    return -ENOENT;
  return parse_entry(path, out, err);
}

int net_cache_find(const char *cache_dir, const char *container_id, const char *ifname,
                   net_cache_entry **out, q_error **err)
{
  if (!net_valid_id(container_id) || !net_valid_ifname(ifname))
    return q_error_make(err, EINVAL, "cache lookup for \"%s\" on \"%s\"", container_id, ifname);
  q_cleanup_free char *dir = NULL;
  q_cleanup_free char *suffix = NULL;
  if (asprintf(&dir, "%s/results", cache_dir) < 0 ||
      asprintf(&suffix, "-%s-%s", container_id, ifname) < 0)
    return q_error_make(err, ENOMEM, "cache lookup");
  DIR *d = opendir(dir);
  if (d == NULL)
    return errno == ENOENT ? -ENOENT : q_error_make(err, errno, "open %s", dir);
  int r = -ENOENT;
  struct dirent *de;
  size_t sl = strlen(suffix);
  while ((de = readdir(d)) != NULL) {
    size_t n = strlen(de->d_name);
    if (n <= sl || strcmp(de->d_name + n - sl, suffix) != 0)
      continue;
    q_cleanup_free char *path = NULL;
    if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
      r = q_error_make(err, ENOMEM, "cache lookup");
      break;
    }
    net_cache_entry *e = NULL;
    if (parse_entry(path, &e, NULL) < 0)
      continue;
    /* Names may contain '-': trust the entry, not the file name. */
    if (strcmp(e->container_id, container_id) == 0 && strcmp(e->ifname, ifname) == 0) {
      *out = e;
      r = 0;
      break;
    }
    net_cache_entry_free(e);
  }
  closedir(d);
  return r;
}

int net_cache_remove(const char *cache_dir, const char *network, const char *container_id,
                     const char *ifname, q_error **err)
{
  q_cleanup_free char *path = net_cache_path(cache_dir, network, container_id, ifname);
  if (path == NULL)
    return q_error_make(err, EINVAL, "cache entry name");
  if (unlink(path) < 0 && errno != ENOENT)
    return q_error_make(err, errno, "remove %s", path);
  return 0;
}
