/* quarkd configuration parser. Table-driven so that the set of keys, their
 * types and the README's config reference stay in one place: every object
 * level lists its keys, and a key that no table knows is an error rather than
 * silently ignored (a typo in a config must not fall back to a default). */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "quark/config.h"

static char *xstrdup(const char *s)
{
  return s ? strdup(s) : NULL;
}

/* A config mistake: the message says it all, no strerror suffix. */
static int bad(q_error **err, int status, const char *fmt, ...) Q_PRINTF(3, 4);
static int bad(q_error **err, int status, const char *fmt, ...)
{
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  q_error_make(err, 0, "%s", msg);
  if (err && *err)
    (*err)->status = status;
  return -status;
}

static void free_strv(char **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

void cri_config_free(struct cri_config *cfg)
{
  if (!cfg)
    return;
  free(cfg->socket);
  free(cfg->state_root);
  free(cfg->image_root);
  free(cfg->log_file);
  free(cfg->stream_address);
  for (size_t i = 0; i < cfg->registry.n_mirrors; i++) {
    free(cfg->registry.mirrors[i].host);
    free_strv(cfg->registry.mirrors[i].urls, cfg->registry.mirrors[i].n_urls);
  }
  free(cfg->registry.mirrors);
  free_strv(cfg->registry.insecure, cfg->registry.n_insecure);
  free(cfg->sandbox.binary);
  free(cfg->sandbox.kernel);
  free(cfg->cni.conf_dir);
  free_strv(cfg->cni.bin_dirs, cfg->cni.n_bin_dirs);
  free(cfg->cni.cache_dir);
  free(cfg->tsor.socket);
  free(cfg->source);
  memset(cfg, 0, sizeof(*cfg));
}

int cri_config_init(struct cri_config *cfg)
{
  memset(cfg, 0, sizeof(*cfg));
  cfg->socket = xstrdup("unix:///run/quark/quark.sock");
  cfg->state_root = xstrdup("/var/lib/quark/state");
  cfg->image_root = xstrdup("/var/lib/quark/images");
  cfg->log_file = xstrdup("/var/log/quark/quark.log");
  cfg->debug_level = Q_LOG_INFO;
  cfg->cgroup_driver = CRI_CGROUP_CGROUPFS;
  cfg->stream_address = xstrdup("127.0.0.1");
  cfg->sandbox.binary = xstrdup("/usr/local/bin/quark-sandbox");
  cfg->sandbox.kernel = xstrdup("/usr/local/lib/quark/qkernel.bin");
  cfg->sandbox.memory_mib = 256;
  cfg->sandbox.vcpus = 1; /* SMP only where a CPU limit asks for more (README) */
  cfg->cni.conf_dir = xstrdup("/etc/cni/net.d");
  cfg->cni.bin_dirs = calloc(2, sizeof(char *));
  if (cfg->cni.bin_dirs) {
    cfg->cni.bin_dirs[0] = xstrdup("/opt/cni/bin");
    cfg->cni.bin_dirs[1] = xstrdup("/usr/lib/cni");
    cfg->cni.n_bin_dirs = 2;
  }
  cfg->cni.cache_dir = xstrdup("/var/lib/cni");
  cfg->tsor.socket = xstrdup("/run/quark/tsord.sock");
  if (!cfg->socket || !cfg->state_root || !cfg->image_root || !cfg->log_file ||
      !cfg->stream_address || !cfg->sandbox.binary || !cfg->sandbox.kernel || !cfg->cni.conf_dir ||
      !cfg->cni.bin_dirs || !cfg->cni.bin_dirs[0] || !cfg->cni.bin_dirs[1] || !cfg->cni.cache_dir ||
      !cfg->tsor.socket) {
    cri_config_free(cfg);
    return -ENOMEM;
  }
  return 0;
}

/* ---- the schema ---- */

/* K_COUNT: an integer of at least 1 (memory, vCPUs). */
enum kind { K_STRING, K_PATH, K_UINT, K_COUNT, K_BOOL, K_LOGLEVEL, K_CGROUP, K_STRV, K_MIRRORS, K_OBJECT };

struct key {
  const char *name;
  enum kind kind;
  size_t off;                 /* offset in struct cri_config */
  size_t off_n;               /* K_STRV: offset of the count; K_UINT/K_COUNT: field size */
  uint64_t max;               /* K_UINT/K_COUNT: inclusive upper bound */
  const struct key *children; /* K_OBJECT */
};

#define OFF(f) offsetof(struct cri_config, f)
#define SZ(f) sizeof(((struct cri_config *)0)->f)

static const struct key registry_keys[] = {
    {"Mirrors", K_MIRRORS, 0, 0, 0, NULL},
    {"Insecure", K_STRV, OFF(registry.insecure), OFF(registry.n_insecure), 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};
static const struct key sandbox_keys[] = {
    {"Binary", K_PATH, OFF(sandbox.binary), 0, 0, NULL},
    {"Kernel", K_PATH, OFF(sandbox.kernel), 0, 0, NULL},
    {"MemoryMiB", K_COUNT, OFF(sandbox.memory_mib), SZ(sandbox.memory_mib), 1u << 20, NULL},
    {"Vcpus", K_COUNT, OFF(sandbox.vcpus), SZ(sandbox.vcpus), 256, NULL},
    {"PidsLimit", K_UINT, OFF(sandbox.pids_limit), SZ(sandbox.pids_limit), 4194304, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};
static const struct key cni_keys[] = {
    {"ConfDir", K_PATH, OFF(cni.conf_dir), 0, 0, NULL},
    {"BinDirs", K_STRV, OFF(cni.bin_dirs), OFF(cni.n_bin_dirs), 0, NULL},
    {"CacheDir", K_PATH, OFF(cni.cache_dir), 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};
static const struct key tsor_keys[] = {
    {"Enabled", K_BOOL, OFF(tsor.enabled), 0, 0, NULL},
    {"Socket", K_PATH, OFF(tsor.socket), 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};
static const struct key top_keys[] = {
    {"Socket", K_STRING, OFF(socket), 0, 0, NULL},
    {"StateRoot", K_PATH, OFF(state_root), 0, 0, NULL},
    {"ImageRoot", K_PATH, OFF(image_root), 0, 0, NULL},
    {"LogFile", K_PATH, OFF(log_file), 0, 0, NULL},
    {"DebugLevel", K_LOGLEVEL, OFF(debug_level), 0, 0, NULL},
    {"CgroupDriver", K_CGROUP, OFF(cgroup_driver), 0, 0, NULL},
    {"StreamAddress", K_STRING, OFF(stream_address), 0, 0, NULL},
    {"StreamPort", K_UINT, OFF(stream_port), SZ(stream_port), 65535, NULL},
    {"Registry", K_OBJECT, 0, 0, 0, registry_keys},
    {"Sandbox", K_OBJECT, 0, 0, 0, sandbox_keys},
    {"Cni", K_OBJECT, 0, 0, 0, cni_keys},
    {"Tsor", K_OBJECT, 0, 0, 0, tsor_keys},
    {NULL, 0, 0, 0, 0, NULL},
};

static const char *kind_name(enum kind k)
{
  switch (k) {
  case K_STRING:
  case K_PATH:
  case K_LOGLEVEL:
  case K_CGROUP:
    return "a string";
  case K_UINT:
    return "a non-negative integer";
  case K_COUNT:
    return "a positive integer";
  case K_BOOL:
    return "true or false";
  case K_STRV:
    return "an array of strings";
  case K_MIRRORS:
  case K_OBJECT:
    return "an object";
  }
  return "?";
}

static int parse_strv(json_t *v, char ***out, size_t *n_out)
{
  size_t n = json_array_size(v);
  char **strv = calloc(n ? n : 1, sizeof(char *));
  if (!strv)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(v, i);
    if (!json_is_string(e) || !(strv[i] = strdup(json_string_value(e)))) {
      free_strv(strv, i);
      return json_is_string(e) ? -ENOMEM : -EINVAL;
    }
  }
  *out = strv;
  *n_out = n;
  return 0;
}

static int parse_mirrors(struct cri_config *cfg, json_t *v, const char *name, const char *path,
                         q_error **err)
{
  size_t n = json_object_size(v), i = 0;
  struct cri_registry_mirror *m = calloc(n ? n : 1, sizeof(*m));
  if (!m)
    return q_error_make(err, ENOMEM, "%s: %s", name, path);
  const char *host;
  json_t *urls;
  json_object_foreach(v, host, urls)
  {
    int r = json_is_array(urls) ? 0 : -EINVAL;
    m[i].host = strdup(host);
    if (r == 0)
      r = m[i].host ? parse_strv(urls, &m[i].urls, &m[i].n_urls) : -ENOMEM;
    i++;
    if (r < 0) {
      for (size_t j = 0; j < i; j++) {
        free(m[j].host);
        free_strv(m[j].urls, m[j].n_urls);
      }
      free(m);
      if (r == -ENOMEM)
        return q_error_make(err, ENOMEM, "%s: %s", name, path);
      return bad(err, EINVAL, "%s: %s.%s: must be an array of URL strings", name, path, host);
    }
  }
  cfg->registry.mirrors = m;
  cfg->registry.n_mirrors = n;
  return 0;
}

static int parse_object(struct cri_config *cfg, json_t *obj, const struct key *keys,
                        const char *prefix, const char *name, q_error **err)
{
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v)
  {
    char path[256];
    snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", k);
    const struct key *key = keys;
    while (key->name && strcmp(key->name, k) != 0)
      key++;
    if (!key->name)
      return bad(err, EINVAL, "%s: %s: unknown key", name, path);
    char *base = (char *)cfg;
    bool ok;
    switch (key->kind) {
    case K_STRING:
    case K_PATH:
    case K_LOGLEVEL:
    case K_CGROUP:
      ok = json_is_string(v);
      break;
    case K_UINT:
    case K_COUNT:
      ok = json_is_integer(v);
      break;
    case K_BOOL:
      ok = json_is_boolean(v);
      break;
    case K_STRV:
      ok = json_is_array(v);
      break;
    default:
      ok = json_is_object(v);
      break;
    }
    if (!ok)
      return bad(err, EINVAL, "%s: %s: wrong type, must be %s", name, path, kind_name(key->kind));
    switch (key->kind) {
    case K_STRING:
    case K_PATH: {
      const char *s = json_string_value(v);
      if (*s == '\0')
        return bad(err, EINVAL, "%s: %s: must not be empty", name, path);
      if (key->kind == K_PATH && s[0] != '/')
        return bad(err, EINVAL, "%s: %s: must be an absolute path", name, path);
      char *dup = strdup(s);
      if (!dup)
        return q_error_make(err, ENOMEM, "%s: %s", name, path);
      char **slot = (char **)(base + key->off);
      free(*slot);
      *slot = dup;
      break;
    }
    case K_UINT:
    case K_COUNT: {
      json_int_t x = json_integer_value(v), min = key->kind == K_COUNT ? 1 : 0;
      if (x < min || (uint64_t)x > key->max)
        return bad(err, ERANGE, "%s: %s: %lld out of range %lld..%llu", name, path, (long long)x,
                   (long long)min, (unsigned long long)key->max);
      if (key->off_n == sizeof(uint16_t))
        *(uint16_t *)(base + key->off) = (uint16_t)x;
      else
        *(uint32_t *)(base + key->off) = (uint32_t)x;
      break;
    }
    case K_BOOL:
      *(bool *)(base + key->off) = json_is_true(v);
      break;
    case K_LOGLEVEL:
      if (q_log_level_parse(json_string_value(v), (q_log_level *)(base + key->off)) < 0)
        return bad(err, EINVAL, "%s: %s: '%s' is not one of Off, Error, Warn, Info, Debug, Trace",
                   name, path, json_string_value(v));
      break;
    case K_CGROUP: {
      const char *s = json_string_value(v);
      enum cri_cgroup_driver *d = (enum cri_cgroup_driver *)(base + key->off);
      if (strcmp(s, "cgroupfs") == 0)
        *d = CRI_CGROUP_CGROUPFS;
      else if (strcmp(s, "systemd") == 0)
        *d = CRI_CGROUP_SYSTEMD;
      else
        return bad(err, EINVAL, "%s: %s: '%s' is not one of cgroupfs, systemd", name, path, s);
      break;
    }
    case K_STRV: {
      char **strv;
      size_t n;
      int r = parse_strv(v, &strv, &n);
      if (r == -EINVAL)
        return bad(err, EINVAL, "%s: %s: wrong type, must be an array of strings", name, path);
      if (r < 0)
        return q_error_make(err, -r, "%s: %s", name, path);
      char ***slot = (char ***)(base + key->off);
      size_t *nslot = (size_t *)(base + key->off_n);
      free_strv(*slot, *nslot);
      *slot = strv;
      *nslot = n;
      break;
    }
    case K_MIRRORS: {
      int r = parse_mirrors(cfg, v, name, path, err);
      if (r < 0)
        return r;
      break;
    }
    case K_OBJECT: {
      int r = parse_object(cfg, v, key->children, path, name, err);
      if (r < 0)
        return r;
      break;
    }
    }
  }
  return 0;
}

int cri_config_parse(struct cri_config *cfg, const char *json, size_t len, const char *name,
                     q_error **err)
{
  int r = cri_config_init(cfg);
  if (r < 0)
    return q_error_make(err, -r, "%s", name);
  json_error_t jerr;
  json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    cri_config_free(cfg);
    return bad(err, EINVAL, "%s: line %d column %d: %s", name, jerr.line, jerr.column, jerr.text);
  }
  if (!json_is_object(root))
    r = bad(err, EINVAL, "%s: the top level must be a JSON object", name);
  else
    r = parse_object(cfg, root, top_keys, "", name, err);
  json_decref(root);
  if (r == 0 && !cri_config_socket_path(cfg->socket))
    r = bad(err, EINVAL, "%s: Socket: '%s' must be unix:///absolute/path", name, cfg->socket);
  if (r == 0 && !(cfg->source = strdup(name)))
    r = q_error_make(err, ENOMEM, "%s", name);
  if (r < 0)
    cri_config_free(cfg);
  return r;
}

int cri_config_load(struct cri_config *cfg, const char *path, bool missing_ok, q_error **err)
{
  q_cleanup_free char *text = NULL;
  size_t len = 0;
  int r = q_read_file(path, 1 << 20, &text, &len, NULL);
  if (r == -ENOENT && missing_ok) {
    r = cri_config_init(cfg);
    return r < 0 ? q_error_make(err, -r, "config defaults") : 0;
  }
  if (r < 0)
    return q_error_make(err, -r, "read config %s", path);
  return cri_config_parse(cfg, text, len, path, err);
}

const char *cri_config_pick_path(const char *flag_value, bool *explicit_out)
{
  const char *env = getenv(CRI_CONFIG_ENV);
  *explicit_out = true;
  if (flag_value && *flag_value)
    return flag_value;
  if (env && *env)
    return env;
  *explicit_out = false;
  return CRI_CONFIG_DEFAULT_PATH;
}

const char *cri_config_socket_path(const char *endpoint)
{
  static const char scheme[] = "unix://";
  if (!endpoint || strncmp(endpoint, scheme, sizeof(scheme) - 1) != 0)
    return NULL;
  const char *p = endpoint + sizeof(scheme) - 1;
  /* sun_path holds 108 bytes including the NUL. */
  if (p[0] != '/' || strlen(p) >= 108)
    return NULL;
  return p;
}

const struct cri_registry_mirror *cri_config_mirrors(const struct cri_config *cfg, const char *host)
{
  for (size_t i = 0; i < cfg->registry.n_mirrors; i++)
    if (strcmp(cfg->registry.mirrors[i].host, host) == 0)
      return &cfg->registry.mirrors[i];
  return NULL;
}

bool cri_config_is_insecure(const struct cri_config *cfg, const char *host)
{
  for (size_t i = 0; i < cfg->registry.n_insecure; i++)
    if (strcmp(cfg->registry.insecure[i], host) == 0)
      return true;
  return false;
}
