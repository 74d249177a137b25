/* ADD, DEL and CHECK of a network list, the way libcni's AddNetworkList,
 * DelNetworkList and CheckNetworkList do them: each plugin gets the list's
 * name and cniVersion injected, the previous result as prevResult, and in
 * runtimeConfig only the capability arguments it declares. */
#include "net_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* One plugin's stdin: its config plus name, cniVersion, prevResult and the
 * runtimeConfig it asked for. */
static char *build_config(const net_conf_list *l, size_t i, json_t *prev, json_t *caps)
{
  json_t *plugins = json_object_get(l->json, "plugins");
  json_t *conf = json_deep_copy(json_array_get(plugins, i));
  if (conf == NULL)
    return NULL;
  json_object_set_new(conf, "name", json_string(l->name));
  json_object_set_new(conf, "cniVersion", json_string(l->cni_version));
  if (prev != NULL)
    json_object_set(conf, "prevResult", prev);
  json_t *declared = json_object_get(conf, "capabilities");
  json_t *rc = json_object();
  const char *key;
  json_t *on;
  if (caps != NULL && declared != NULL) {
    json_object_foreach(declared, key, on)
    {
      json_t *v = json_object_get(caps, key);
      if (json_is_true(on) && v != NULL)
        json_object_set(rc, key, v);
    }
  }
  if (json_object_size(rc) > 0)
    json_object_set_new(conf, "runtimeConfig", rc);
  else
    json_decref(rc);
  char *s = net_json_dump(conf);
  json_decref(conf);
  return s;
}

static const char *lower_cmd(const char *command)
{
  if (strcmp(command, "ADD") == 0)
    return "add";
  if (strcmp(command, "DEL") == 0)
    return "delete";
  return "check";
}

/* Runs plugin i of the list; *out (optional) gets its stdout. The error
 * names the plugin as libcni does: plugin type="bridge" name="net" failed
 * (add): <the plugin's message>. */
static int run_plugin(const net_cni *c, const net_conf_list *l, size_t i, const char *command,
                      const net_runtime *rt, json_t *prev, json_t *caps, char **out, q_error **err)
{
  const char *type = l->plugin_types[i];
  q_cleanup_free char *path = NULL;
  q_cleanup_free char *conf = NULL;
  int r = net_cni_find_plugin(c, type, &path, err);
  if (r == 0) {
    conf = build_config(l, i, prev, caps);
    if (conf == NULL)
      r = q_error_make(err, ENOMEM, "build config");
  }
  if (r == 0) {
    q_debug(rt->container_id, "cni %s %s plugin %s if %s", command, l->name, type, rt->ifname);
    r = net_exec_plugin(c, path, type, command, rt, conf, strlen(conf), out, err);
  }
  if (r < 0)
    q_error_wrap(err, "plugin type=\"%s\" name=\"%s\" failed (%s)", type, l->name,
                 lower_cmd(command));
  return r;
}

static int check_runtime(const net_runtime *rt, bool need_netns, q_error **err)
{
  if (!net_valid_id(rt->container_id))
    return q_error_make(err, EINVAL, "invalid container id \"%s\"",
                        rt->container_id ? rt->container_id : "");
  if (!net_valid_ifname(rt->ifname))
    return q_error_make(err, EINVAL, "invalid interface name \"%s\"", rt->ifname ? rt->ifname : "");
  if (need_netns && (rt->netns == NULL || *rt->netns == '\0'))
    return q_error_make(err, EINVAL, "no network namespace for %s", rt->container_id);
  for (size_t i = 0; i < rt->n_args; i++) {
    const char *k = rt->args[i].key, *v = rt->args[i].value ? rt->args[i].value : "";
    if (k == NULL || *k == '\0' || strpbrk(k, ";=") || strchr(v, ';'))
      return q_error_make(err, EINVAL, "invalid CNI_ARGS entry \"%s=%s\"", k ? k : "", v);
  }
  return 0;
}

static int load_caps(const char *text, json_t **out, q_error **err)
{
  *out = NULL;
  if (text == NULL)
    return 0;
  json_error_t jerr;
  *out = json_loads(text, 0, &jerr);
  if (*out == NULL || !json_is_object(*out)) {
    json_decref(*out);
    *out = NULL;
    return q_error_make(err, EINVAL, "capability args are not a JSON object");
  }
  return 0;
}

static json_t *args_json(const net_runtime *rt)
{
  json_t *a = json_array();
  for (size_t i = 0; a && i < rt->n_args; i++)
    json_array_append_new(
        a, json_pack("[ss]", rt->args[i].key, rt->args[i].value ? rt->args[i].value : ""));
  return a;
}

int net_cni_add_list(const net_cni *c, const net_conf_list *l, const net_runtime *rt,
                     net_result **result, char **raw, q_error **err)
{
  int r = check_runtime(rt, true, err);
  if (r < 0)
    return r;
  json_t *caps = NULL, *prev = NULL, *args = NULL;
  char *text = NULL, *args_text = NULL;
  net_result *parsed = NULL;
  if ((r = load_caps(rt->capability_args, &caps, err)) < 0)
    return r;
  for (size_t i = 0; i < l->n_plugins; i++) {
    q_cleanup_free char *out = NULL;
    r = run_plugin(c, l, i, "ADD", rt, prev, caps, &out, err);
    if (r < 0)
      goto out;
    json_error_t jerr;
    json_t *res = json_loads(out, 0, &jerr);
    if (res == NULL || !json_is_object(res)) {
      json_decref(res);
      r = q_error_make(err, EINVAL,
                       "plugin type=\"%s\" name=\"%s\" (add): output is not a result: %s",
                       l->plugin_types[i], l->name, res ? "not an object" : jerr.text);
      goto out;
    }
    json_decref(prev);
    prev = res;
  }
  text = net_json_dump(prev);
  if (text == NULL) {
    r = q_error_make(err, ENOMEM, "result");
    goto out;
  }
  if ((r = net_result_parse(text, strlen(text), &parsed, err)) < 0) {
    q_error_wrap(err, "network \"%s\"", l->name);
    goto out;
  }
  args = args_json(rt);
  args_text = args ? net_json_dump(args) : NULL;
  net_cache_entry e = {
      .container_id = (char *)rt->container_id,
      .network_name = l->name,
      .ifname = (char *)rt->ifname,
      .netns = (char *)rt->netns,
      .config = l->bytes,
      .config_len = l->len,
      .cni_args = rt->n_args ? args_text : NULL,
      .capability_args = (char *)rt->capability_args,
      .result = text,
  };
  if ((r = net_cache_write(c->cache_dir, &e, err)) < 0) {
    q_error_wrap(err, "failed to set network \"%s\" cached result", l->name);
    goto out;
  }
  if (result)
    *result = q_steal_ptr(&parsed);
  if (raw)
    *raw = q_steal_ptr(&text);
out:
  net_result_free(parsed);
  free(text);
  free(args_text);
  json_decref(args);
  json_decref(prev);
  json_decref(caps);
  return r;
}

/* The cached args as net_kv pointing into the JSON array `a`. */
static net_kv *cached_args(json_t *a, size_t *n)
{
  *n = 0;
  if (!json_is_array(a))
    return NULL;
  net_kv *kv = calloc(json_array_size(a) + 1, sizeof(*kv));
  if (kv == NULL)
    return NULL;
  size_t i;
  json_t *p;
  json_array_foreach(a, i, p)
  {
    const char *k = json_string_value(json_array_get(p, 0));
    const char *v = json_string_value(json_array_get(p, 1));
    if (k != NULL)
      kv[(*n)++] = (net_kv){k, v ? v : ""};
  }
  return kv;
}

int net_cni_del_list(const net_cni *c, const net_conf_list *l, const net_runtime *rt, q_error **err)
{
  int r = check_runtime(rt, false, err);
  if (r < 0)
    return r;
  net_cache_entry *cached = NULL;
  int cr = net_cache_read(c->cache_dir, l->name, rt->container_id, rt->ifname, &cached, NULL);
  if (cr < 0 && cr != -ENOENT)
    q_warn(rt->container_id, "cni: unreadable cache entry for network %s, deleting without it",
           l->name);

  net_runtime del = *rt;
  json_t *cargs = NULL, *prev = NULL, *caps = NULL;
  net_kv *kv = NULL;
  if (cached != NULL) {
    /* libcni's GetNetworkListCachedConfig: DEL sees what ADD saw. */
    cargs = cached->cni_args ? json_loads(cached->cni_args, 0, NULL) : NULL;
    if (cargs != NULL) {
      kv = cached_args(cargs, &del.n_args);
      del.args = kv;
    }
    del.capability_args = cached->capability_args;
    /* Cached result as prevResult on DEL came with spec 0.4.0. */
    if (cached->result != NULL && net_version_cmp(l->cni_version, "0.4.0") >= 0)
      prev = json_loads(cached->result, 0, NULL);
  }
  /* The spec's best effort DEL: a namespace that is gone is passed as empty,
   * and plugins release what they hold outside it (IPAM, iptables). */
  if (del.netns != NULL && net_netns_gone(del.netns))
    del.netns = "";
  if ((r = load_caps(del.capability_args, &caps, err)) < 0)
    goto out;
  for (size_t i = l->n_plugins; i-- > 0;) {
    q_cleanup_error q_error *perr = NULL;
    int pr = run_plugin(c, l, i, "DEL", &del, prev, caps, NULL, &perr);
    /* No cache entry means no ADD of this list completed: a plugin that is
     * not installed has nothing to undo, and insisting would make the pod
     * impossible to remove until someone installs it. */
    if (pr == -ENOENT && cached == NULL) {
      q_warn(rt->container_id, "cni: %s (nothing cached, ignored)", q_error_msg(perr));
      continue;
    }
    if (pr < 0) {
      /* Stop here, as libcni does: the plugins before this one in ADD order
       * (the IPAM owner, bridge) keep their state until the whole DEL can
       * run again (quarkd retries it from the pod's record), so an IP is
       * never released while a later plugin's rules (portmap's DNAT) still
       * point at it for the next pod that gets it. */
      q_warn(rt->container_id, "cni: %s", q_error_msg(perr));
      r = pr;
      if (err != NULL) {
        q_error_free(err);
        *err = q_steal_ptr(&perr);
      }
      goto out;
    }
  }
  r = net_cache_remove(c->cache_dir, l->name, rt->container_id, rt->ifname, err);
out:
  free(kv);
  json_decref(cargs);
  json_decref(prev);
  json_decref(caps);
  net_cache_entry_free(cached);
  return r;
}

int net_cni_check_list(const net_cni *c, const net_conf_list *l, const net_runtime *rt,
                       q_error **err)
{
  /* CHECK came with 0.4.0: older lists have nothing to check. */
  if (net_version_cmp(l->cni_version, "0.4.0") < 0 || l->disable_check)
    return 0;
  int r = check_runtime(rt, true, err);
  if (r < 0)
    return r;
  net_cache_entry *cached = NULL;
  r = net_cache_read(c->cache_dir, l->name, rt->container_id, rt->ifname, &cached, err);
  if (r == -ENOENT)
    q_error_make(err, 0, "no cached result for network \"%s\" of %s", l->name, rt->container_id);
  if (r < 0)
    return r;
  json_t *prev = cached->result ? json_loads(cached->result, 0, NULL) : NULL;
  json_t *caps = NULL;
  r = load_caps(rt->capability_args, &caps, err);
  for (size_t i = 0; r == 0 && i < l->n_plugins; i++)
    r = run_plugin(c, l, i, "CHECK", rt, prev, caps, NULL, err);
  json_decref(prev);
  json_decref(caps);
  net_cache_entry_free(cached);
  return r;
}
