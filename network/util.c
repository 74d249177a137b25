/* Small helpers of the network module: name checks as libcni makes them,
 * base64 for the cache's config bytes, versions, the CNI handle. */
#include "net_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

bool net_valid_id(const char *s)
{
  if (s == NULL || !isalnum((unsigned char)s[0]))
    return false;
  for (const char *p = s; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
      return false;
  return true;
}

bool net_valid_ifname(const char *s)
{
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > 15 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
    return false;
  for (const char *p = s; *p; p++)
    if (*p == '/' || *p == ':' || isspace((unsigned char)*p))
      return false;
  return true;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *net_base64_encode(const void *data, size_t len)
{
  const unsigned char *in = data;
  char *out = malloc((len + 2) / 3 * 4 + 1);
  if (out == NULL)
    return NULL;
  char *o = out;
  size_t i = 0;
  for (; i + 2 < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    *o++ = b64[v >> 18];
    *o++ = b64[(v >> 12) & 63];
    *o++ = b64[(v >> 6) & 63];
    *o++ = b64[v & 63];
  }
  if (i < len) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
    *o++ = b64[v >> 18];
    *o++ = b64[(v >> 12) & 63];
    *o++ = i + 1 < len ? b64[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  *o = '\0';
  return out;
}

static int b64_value(char c)
{
  const char *p = c ? strchr(b64, c) : NULL;
  return p ? (int)(p - b64) : -1;
}

int net_base64_decode(const char *s, char **out, size_t *len)
{
  size_t n = strlen(s);
  if (n % 4 != 0)
    return -EINVAL;
  char *buf = malloc(n / 4 * 3 + 1);
  if (buf == NULL)
    return -ENOMEM;
  size_t o = 0;
  for (size_t i = 0; i < n; i += 4) {
    int v[4];
    for (int k = 0; k < 4; k++) {
      v[k] = s[i + k] == '=' ? 0 : b64_value(s[i + k]);
      /* Padding only in the last two places of the last group. */
      if (v[k] < 0 || (s[i + k] == '=' && (i + 4 != n || k < 2))) {
        free(buf);
        return -EINVAL;
      }
    }
    if (s[i + 2] == '=' && s[i + 3] != '=') {
      free(buf);
      return -EINVAL;
    }
    uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
    buf[o++] = (char)(w >> 16);
    if (s[i + 2] != '=')
      buf[o++] = (char)(w >> 8);
    if (s[i + 3] != '=')
      buf[o++] = (char)w;
  }
  buf[o] = '\0';
  *out = buf;
  *len = o;
  return 0;
}

int net_version_cmp(const char *a, const char *b)
{
  unsigned va[3] = {0}, vb[3] = {0};
  int na = a ? sscanf(a, "%u.%u.%u", &va[0], &va[1], &va[2]) : 0;
  int nb = b ? sscanf(b, "%u.%u.%u", &vb[0], &vb[1], &vb[2]) : 0;
  if (na < 1 && nb < 1)
    return 0;
  if (na < 1)
    return -1;
  if (nb < 1)
    return 1;
  for (int i = 0; i < 3; i++)
    if (va[i] != vb[i])
      return va[i] < vb[i] ? -1 : 1;
  return 0;
}

char *net_json_dump(const json_t *j)
{
  return json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
}

char *net_cni_args_string(const net_runtime *rt)
{
  if (rt->n_args == 0)
    return NULL;
  size_t len = 1;
  for (size_t i = 0; i < rt->n_args; i++)
    len += strlen(rt->args[i].key) + strlen(rt->args[i].value ? rt->args[i].value : "") + 2;
  char *s = malloc(len);
  if (s == NULL)
    return NULL;
  char *p = s;
  for (size_t i = 0; i < rt->n_args; i++)
    p += sprintf(p, "%s%s=%s", i ? ";" : "", rt->args[i].key,
                 rt->args[i].value ? rt->args[i].value : "");
  return s;
}

/* ---- handle ---- */

static const char *const default_plugin_dirs[] = {"/opt/cni/bin", "/usr/lib/cni"};

int net_cni_new(const net_cni_options *opts, net_cni **out, q_error **err)
{
  net_cni_options none = {0};
  if (opts == NULL)
    opts = &none;
  net_cni *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return q_error_make(err, ENOMEM, "cni handle");
  const char *const *dirs = opts->plugin_dirs;
  size_t nd = opts->n_plugin_dirs;
  if (dirs == NULL || nd == 0) {
    dirs = default_plugin_dirs;
    nd = Q_ARRAY_SIZE(default_plugin_dirs);
  }
  c->conf_dir = strdup(opts->conf_dir ? opts->conf_dir : NET_DEFAULT_CONF_DIR);
  c->cache_dir = strdup(opts->cache_dir ? opts->cache_dir : NET_DEFAULT_CACHE_DIR);
  c->netns_dir = strdup(opts->netns_dir ? opts->netns_dir : NET_DEFAULT_NETNS_DIR);
  c->plugin_dirs = calloc(nd, sizeof(char *));
  bool ok = c->conf_dir && c->cache_dir && c->netns_dir && c->plugin_dirs;
  for (size_t i = 0; ok && i < nd; i++) {
    c->plugin_dirs[i] = strdup(dirs[i]);
    ok = c->plugin_dirs[i] != NULL;
    c->n_plugin_dirs = i + 1;
  }
  c->plugin_timeout_ms =
      opts->plugin_timeout_ms > 0 ? opts->plugin_timeout_ms : NET_DEFAULT_PLUGIN_TIMEOUT_MS;
  if (!ok) {
    net_cni_free(c);
    return q_error_make(err, ENOMEM, "cni handle");
  }
  *out = c;
  return 0;
}

void net_cni_free(net_cni *c)
{
  if (c == NULL)
    return;
  for (size_t i = 0; i < c->n_plugin_dirs; i++)
    free(c->plugin_dirs[i]);
  free(c->plugin_dirs);
  free(c->conf_dir);
  free(c->cache_dir);
  free(c->netns_dir);
  free(c);
}

const char *net_cni_conf_dir(const net_cni *c)
{
  return c->conf_dir;
}

const char *net_cni_cache_dir(const net_cni *c)
{
  return c->cache_dir;
}

int net_cni_find_plugin(const net_cni *c, const char *type, char **path, q_error **err)
{
  /* A type is a file name; "../x" or "/bin/sh" must not escape the path. */
  if (type == NULL || *type == '\0' || strchr(type, '/') || strcmp(type, "..") == 0 ||
      strcmp(type, ".") == 0)
    return q_error_make(err, EINVAL, "invalid plugin type \"%s\"", type ? type : "");
  for (size_t i = 0; i < c->n_plugin_dirs; i++) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s", c->plugin_dirs[i], type) < 0)
      return q_error_make(err, ENOMEM, "plugin path");
    if (access(p, X_OK) == 0) {
      *path = p;
      return 0;
    }
    free(p);
  }
  /* libcni's wording, so messages read the same as under containerd. */
  size_t len = 3;
  for (size_t i = 0; i < c->n_plugin_dirs; i++)
    len += strlen(c->plugin_dirs[i]) + 1;
  q_cleanup_free char *list = malloc(len);
  if (list == NULL)
    return q_error_make(err, ENOMEM, "plugin path");
  char *p = list;
  *p++ = '[';
  for (size_t i = 0; i < c->n_plugin_dirs; i++)
    p += sprintf(p, "%s%s", i ? " " : "", c->plugin_dirs[i]);
  strcpy(p, "]");
  q_error_make(err, 0, "failed to find plugin \"%s\" in path %s", type, list);
  return -ENOENT;
}

int net_cni_status(const net_cni *c, char **message)
{
  q_cleanup_error q_error *err = NULL;
  net_conf_list *l = NULL;
  int r = net_conf_load_default(c->conf_dir, &l, &err);
  if (r == 0) {
    for (size_t i = 0; i < l->n_plugins && r == 0; i++) {
      q_cleanup_free char *path = NULL;
      r = net_cni_find_plugin(c, l->plugin_types[i], &path, &err);
      if (r < 0)
        q_error_wrap(&err, "network \"%s\" (%s)", l->name, l->source ? l->source : "");
    }
    /* Every pod also gets the loopback network. */
    q_cleanup_free char *lo = NULL;
    if (r == 0 && (r = net_cni_find_plugin(c, "loopback", &lo, &err)) < 0)
      q_error_wrap(&err, "network \"" NET_LOOPBACK_NETWORK "\"");
    net_conf_list_free(l);
  }
  if (r < 0 && message != NULL) {
    if (asprintf(message, "cni config load failed: %s", q_error_msg(err)) < 0)
      *message = NULL;
  }
  return r;
}
