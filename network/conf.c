/* CNI network configuration: parsing and validating one list, wrapping a
 * single plugin config into a list, and discovery in a conf dir.
 *
 * Discovery follows libcni's ConfFiles (extensions .conf, .conflist, .json,
 * byte-wise order by file name) but skips invalid files rather than failing,
 * the way kubelet's old CNI code and CRI-O do: one broken file must not take
 * the node's network down when a valid one follows. Every skipped file is
 * named with its error so Status can say what is wrong. */
#include "net_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const supported_versions[] = {"0.1.0", "0.2.0", "0.3.0", "0.3.1",
                                                 "0.4.0", "1.0.0", "1.1.0"};

static bool version_supported(const char *v)
{
  for (size_t i = 0; i < Q_ARRAY_SIZE(supported_versions); i++)
    if (strcmp(v, supported_versions[i]) == 0)
      return true;
  return false;
}

void net_conf_list_free(net_conf_list *l)
{
  if (l == NULL)
    return;
  free(l->name);
  free(l->cni_version);
  free(l->source);
  for (size_t i = 0; i < l->n_plugins; i++)
    free(l->plugin_types[i]);
  free(l->plugin_types);
  free(l->bytes);
  json_decref(l->json);
  free(l);
}

void net_conf_lists_free(net_conf_list **lists, size_t n)
{
  for (size_t i = 0; i < n; i++)
    net_conf_list_free(lists[i]);
  free(lists);
}

/* Checks one plugin entry: an object with a string "type" that names a
 * file, and "capabilities" (when present) an object. */
static int check_plugin(json_t *p, size_t idx, const char *src, q_error **err)
{
  if (!json_is_object(p))
    return q_error_make(err, EINVAL, "%s: plugin %zu is not an object", src, idx);
  json_t *type = json_object_get(p, "type");
  if (!json_is_string(type) || json_string_length(type) == 0)
    return q_error_make(err, EINVAL, "%s: plugin %zu: missing \"type\"", src, idx);
  const char *t = json_string_value(type);
  if (strchr(t, '/') || strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
    return q_error_make(err, EINVAL, "%s: plugin %zu: invalid type \"%s\"", src, idx, t);
  json_t *caps = json_object_get(p, "capabilities");
  if (caps != NULL && !json_is_object(caps))
    return q_error_make(err, EINVAL, "%s: plugin %zu: \"capabilities\" is not an object", src, idx);
  return 0;
}

int net_conf_parse(const char *bytes, size_t len, bool is_list, const char *source,
                   net_conf_list **out, q_error **err)
{
  const char *src = source ? source : "network config";
  json_error_t jerr;
  json_t *j = json_loadb(bytes, len, JSON_REJECT_DUPLICATES, &jerr);
  if (j == NULL)
    return q_error_make(err, EINVAL, "%s: invalid JSON: %s (line %d)", src, jerr.text, jerr.line);
  json_t *list = NULL;
  int r = -EINVAL;
  if (!json_is_object(j)) {
    r = q_error_make(err, EINVAL, "%s: not a JSON object", src);
    goto out;
  }
  json_t *name = json_object_get(j, "name");
  json_t *ver = json_object_get(j, "cniVersion");
  if (!json_is_string(name) || json_string_length(name) == 0) {
    r = q_error_make(err, EINVAL, "%s: missing \"name\"", src);
    goto out;
  }
  if (!net_valid_id(json_string_value(name))) {
    r = q_error_make(err, EINVAL, "%s: invalid network name \"%s\" (letters, digits, _ . -)", src,
                     json_string_value(name));
    goto out;
  }
  if (ver != NULL && !json_is_string(ver)) {
    r = q_error_make(err, EINVAL, "%s: \"cniVersion\" is not a string", src);
    goto out;
  }
  /* libcni reads a config without cniVersion as 0.1.0. */
  const char *version = ver ? json_string_value(ver) : "0.1.0";
  if (!version_supported(version)) {
    r = q_error_make(err, EINVAL, "%s: unsupported cniVersion \"%s\"", src, version);
    goto out;
  }

  if (is_list) {
    json_t *plugins = json_object_get(j, "plugins");
    if (!json_is_array(plugins) || json_array_size(plugins) == 0) {
      r = q_error_make(err, EINVAL, "%s: no \"plugins\" in network list", src);
      goto out;
    }
    list = json_incref(j);
  } else {
    if (json_object_get(j, "type") == NULL && json_object_get(j, "plugins") != NULL) {
      r = q_error_make(err, EINVAL,
                       "%s: missing \"type\" (a network list belongs in a .conflist file)", src);
      goto out;
    }
    if ((r = check_plugin(j, 0, src, err)) < 0)
      goto out;
    /* libcni's ConfListFromConf: the list takes the config's name and version. */
    list = json_pack("{s:s, s:O, s:[O]}", "cniVersion", version, "name", name, "plugins", j);
    if (list == NULL) {
      r = q_error_make(err, ENOMEM, "%s: wrap config into a list", src);
      goto out;
    }
  }
  json_t *plugins = json_object_get(list, "plugins");
  size_t i;
  json_t *p;
  json_array_foreach(plugins, i, p)
  {
    if ((r = check_plugin(p, i, src, err)) < 0)
      goto out;
  }
  json_t *dc = json_object_get(list, "disableCheck");
  bool disable_check =
      json_is_true(dc) || (json_is_string(dc) && strcmp(json_string_value(dc), "true") == 0);

  net_conf_list *l = calloc(1, sizeof(*l));
  if (l == NULL) {
    r = q_error_make(err, ENOMEM, "%s", src);
    goto out;
  }
  l->name = strdup(json_string_value(name));
  l->cni_version = strdup(version);
  l->source = source ? strdup(source) : NULL;
  l->disable_check = disable_check;
  l->n_plugins = json_array_size(plugins);
  l->plugin_types = calloc(l->n_plugins, sizeof(char *));
  bool ok = l->name && l->cni_version && (l->source || !source) && l->plugin_types;
  for (i = 0; ok && i < l->n_plugins; i++) {
    l->plugin_types[i] =
        strdup(json_string_value(json_object_get(json_array_get(plugins, i), "type")));
    ok = l->plugin_types[i] != NULL;
  }
  if (ok) {
    if (is_list) {
      l->bytes = malloc(len + 1);
      if (l->bytes) {
        memcpy(l->bytes, bytes, len);
        l->bytes[len] = '\0';
        l->len = len;
      }
    } else {
      l->bytes = net_json_dump(list);
      l->len = l->bytes ? strlen(l->bytes) : 0;
    }
    ok = l->bytes != NULL;
  }
  if (!ok) {
    net_conf_list_free(l);
    r = q_error_make(err, ENOMEM, "%s", src);
    goto out;
  }
  l->json = q_steal_ptr(&list);
  *out = l;
  r = 0;
out:
  json_decref(list);
  json_decref(j);
  return r;
}

static bool has_suffix(const char *s, const char *suf)
{
  size_t n = strlen(s), m = strlen(suf);
  return n > m && strcmp(s + n - m, suf) == 0;
}

static int cmp_names(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int append_problem(char **problems, const char *file, const char *msg)
{
  char *s = NULL;
  if (asprintf(&s, "%s%s%s: %s", *problems ? *problems : "", *problems ? "; " : "", file, msg) < 0)
    return -ENOMEM;
  free(*problems);
  *problems = s;
  return 0;
}

int net_conf_discover(const char *dir, net_conf_list ***lists, size_t *n, char **problems,
                      q_error **err)
{
  *lists = NULL;
  *n = 0;
  if (problems)
    *problems = NULL;
  DIR *d = opendir(dir);
  if (d == NULL)
    return q_error_make(err, errno, "open CNI conf dir %s", dir);
  char **names = NULL;
  size_t nn = 0, cap = 0;
  int r = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_type == DT_DIR)
      continue;
    if (!has_suffix(de->d_name, ".conf") && !has_suffix(de->d_name, ".conflist") &&
        !has_suffix(de->d_name, ".json"))
      continue;
    if (nn == cap) {
      cap = cap ? cap * 2 : 16;
      char **nv = realloc(names, cap * sizeof(char *));
      if (nv == NULL) {
        r = q_error_make(err, ENOMEM, "list %s", dir);
        goto out;
      }
      names = nv;
    }
    if ((names[nn] = strdup(de->d_name)) == NULL) {
      r = q_error_make(err, ENOMEM, "list %s", dir);
      goto out;
    }
    nn++;
  }
  if (nn > 0)
    qsort(names, nn, sizeof(char *), cmp_names);
  net_conf_list **out = calloc(nn ? nn : 1, sizeof(*out));
  if (out == NULL) {
    r = q_error_make(err, ENOMEM, "list %s", dir);
    goto out;
  }
  size_t no = 0;
  for (size_t i = 0; i < nn; i++) {
    q_cleanup_free char *path = NULL;
    q_cleanup_free char *data = NULL;
    q_cleanup_error q_error *ferr = NULL;
    size_t len = 0;
    if (asprintf(&path, "%s/%s", dir, names[i]) < 0) {
      r = q_error_make(err, ENOMEM, "list %s", dir);
      break;
    }
    int fr = q_read_file(path, NET_CONF_MAX, &data, &len, &ferr);
    if (fr == 0)
      fr = net_conf_parse(data, len, has_suffix(names[i], ".conflist"), path, &out[no], &ferr);
    if (fr == 0) {
      no++;
      continue;
    }
    /* The message already starts with the path for parse errors. */
    const char *m = q_error_msg(ferr);
    if (strncmp(m, path, strlen(path)) == 0 && m[strlen(path)] == ':')
      m += strlen(path) + 2;
    if (problems && append_problem(problems, path, m) < 0) {
      r = q_error_make(err, ENOMEM, "list %s", dir);
      break;
    }
  }
  if (r < 0) {
    net_conf_lists_free(out, no);
    if (problems) {
      free(*problems);
      *problems = NULL;
    }
  } else {
    *lists = out;
    *n = no;
  }
out:
  for (size_t i = 0; i < nn; i++)
    free(names[i]);
  free(names);
  closedir(d);
  return r;
}

int net_conf_load_default(const char *dir, net_conf_list **out, q_error **err)
{
  net_conf_list **lists = NULL;
  size_t n = 0;
  q_cleanup_free char *problems = NULL;
  int r = net_conf_discover(dir, &lists, &n, &problems, err);
  if (r == -ENOENT) {
    q_error_make(err, 0, "no network config found in %s: directory does not exist", dir);
    return -ENOENT;
  }
  if (r < 0)
    return r;
  if (n == 0) {
    free(lists);
    if (problems)
      q_error_make(err, 0, "no valid network config found in %s: %s", dir, problems);
    else
      q_error_make(err, 0, "no network config found in %s", dir);
    return -ENOENT;
  }
  if (problems)
    q_debug(NULL, "cni: skipped invalid network configs: %s", problems);
  *out = lists[0];
  for (size_t i = 1; i < n; i++)
    net_conf_list_free(lists[i]);
  free(lists);
  return 0;
}

int net_conf_loopback(net_conf_list **out, q_error **err)
{
  static const char lo[] = "{\"cniVersion\":\"0.3.1\",\"name\":\"" NET_LOOPBACK_NETWORK
                           "\",\"plugins\":[{\"type\":\"loopback\"}]}";
  return net_conf_parse(lo, sizeof(lo) - 1, true, NULL, out, err);
}
