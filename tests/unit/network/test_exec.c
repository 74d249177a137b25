/* CNI invocation with fake plugins (shell scripts that record their stdin
 * and environment): chaining, runtimeConfig filtering, DEL order and cached
 * arguments, plugin errors, timeouts, and the pod-level rollback. No root
 * needed: the namespace path is only handed to the plugins. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "quark/net.h"

static char tmpdir[] = "/tmp/quark-net-exec-XXXXXX";
static char bindir[600], logdir[600], confdir[600], cachedir[600], netns[600];

static const char fake_plugin[] =
    "#!/bin/sh\n"
    "me=${0##*/}\n"
    "d=${0%/*}\n"
    "case \"$me\" in *noread) printf '{\"cniVersion\":\"1.0.0\"}'; exit 0 ;; esac\n"
    "in=$(cat)\n"
    "n=$(ls \"$d/log\" | wc -l)\n"
    "n=$((n / 2))\n"
    "printf '%s' \"$in\" > \"$d/log/$n-$CNI_COMMAND-$me.json\"\n"
    "env | grep '^CNI_' | sort > \"$d/log/$n-$CNI_COMMAND-$me.env\"\n"
    "case \"$me\" in\n"
    "  *fail) if [ \"$CNI_COMMAND\" = ADD ]; then\n"
    "     printf '{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"boom\",\"details\":\"more "
    "details\"}'\n"
    "     exit 1; fi ;;\n"
    "  *stderr) if [ \"$CNI_COMMAND\" = ADD ]; then echo 'plain failure text' >&2; exit 3; fi ;;\n"
    "  *slow) exec sleep 10 ;;\n"
    "  *daemon) if [ \"$CNI_COMMAND\" = ADD ]; then\n"
    "     printf '{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.9.9.9/24\"}]}'\n"
    "     sleep 4 & exit 0; fi ;;\n"
    "esac\n"
    "if [ \"$CNI_COMMAND\" = ADD ]; then\n"
    "  printf '{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"%s\",\"sandbox\":\"%s\"}],"
    "\"ips\":[{\"interface\":0,\"address\":\"10.1.2.%d/24\"}]}' \"$CNI_IFNAME\" \"$CNI_NETNS\" "
    "$((n + 1))\n"
    "fi\n";

static void install(const char *name)
{
  char path[700];
  snprintf(path, sizeof(path), "%s/%s", bindir, name);
  cr_assert_eq(q_write_file_atomic(path, fake_plugin, strlen(fake_plugin), 0755, NULL), 0);
}

static void setup(void)
{
  cr_assert_not_null(mkdtemp(tmpdir));
  snprintf(bindir, sizeof(bindir), "%s/bin", tmpdir);
  snprintf(logdir, sizeof(logdir), "%s/bin/log", tmpdir);
  snprintf(confdir, sizeof(confdir), "%s/net.d", tmpdir);
  snprintf(cachedir, sizeof(cachedir), "%s/cache", tmpdir);
  snprintf(netns, sizeof(netns), "%s/netns-file", tmpdir);
  cr_assert_eq(q_mkdir_p(logdir, 0755, NULL), 0);
  cr_assert_eq(q_mkdir_p(confdir, 0755, NULL), 0);
  cr_assert_eq(q_write_file_atomic(netns, "", 0, 0644, NULL), 0);
  const char *names[] = {"fake-a",    "fake-b",   "fake-fail",   "fake-stderr",
                         "fake-slow", "loopback", "fake-noread", "fake-daemon"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    install(names[i]);
}

static void teardown(void)
{
  q_rm_rf(tmpdir, NULL);
}

TestSuite(netexec, .init = setup, .fini = teardown, .timeout = 30);

static net_cni *handle(int timeout_ms)
{
  const char *dirs[] = {"/nonexistent-quark-dir", bindir};
  net_cni_options o = {.conf_dir = confdir,
                       .plugin_dirs = dirs,
                       .n_plugin_dirs = 2,
                       .cache_dir = cachedir,
                       .plugin_timeout_ms = timeout_ms};
  net_cni *c = NULL;
  cr_assert_eq(net_cni_new(&o, &c, NULL), 0);
  return c;
}

static net_conf_list *list_of(const char *text)
{
  net_conf_list *l = NULL;
  q_cleanup_error q_error *err = NULL;
  cr_assert_eq(net_conf_parse(text, strlen(text), true, "test", &l, &err), 0, "%s",
               q_error_msg(err));
  return l;
}

static char *log_file(int n, const char *cmd, const char *plugin, const char *ext)
{
  char path[800];
  snprintf(path, sizeof(path), "%s/%d-%s-%s.%s", logdir, n, cmd, plugin, ext);
  char *data = NULL;
  size_t len;
  if (q_read_file(path, 1 << 20, &data, &len, NULL) < 0)
    return NULL;
  return data;
}

static bool has_log(int n, const char *cmd, const char *plugin)
{
  char *s = log_file(n, cmd, plugin, "json");
  bool found = s != NULL;
  free(s);
  return found;
}

static json_t *log_json(int n, const char *cmd, const char *plugin)
{
  char *s = log_file(n, cmd, plugin, "json");
  cr_assert_not_null(s, "no log %d-%s-%s", n, cmd, plugin);
  json_t *j = json_loads(s, 0, NULL);
  free(s);
  cr_assert_not_null(j);
  return j;
}

static const char two_plugins[] =
    "{\"cniVersion\":\"1.0.0\",\"name\":\"testnet\",\"plugins\":["
    "{\"type\":\"fake-a\",\"answer\":42},"
    "{\"type\":\"fake-b\",\"capabilities\":{\"portMappings\":true,\"bandwidth\":false}}]}";

static const net_kv args[] = {{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", "web"}};

Test(netexec, add_chains_prev_result_and_filters_runtime_config)
{
  net_cni *c = handle(0);
  net_conf_list *l = list_of(two_plugins);
  net_runtime rt = {
      .container_id = "ctr1",
      .netns = netns,
      .ifname = "eth0",
      .args = args,
      .n_args = 2,
      .capability_args =
          "{\"portMappings\":[{\"hostPort\":8080,\"containerPort\":80,\"protocol\":\"tcp\"}],"
          "\"bandwidth\":{\"ingressRate\":1000}}",
  };
  net_result *res = NULL;
  char *raw = NULL;
  q_cleanup_error q_error *err = NULL;
  cr_assert_eq(net_cni_add_list(c, l, &rt, &res, &raw, &err), 0, "%s", q_error_msg(err));
  cr_assert_eq(res->n_ips, 1);
  cr_assert_str_eq(res->ips[0].address, "10.1.2.2/24"); /* from the second plugin */

  json_t *a = log_json(0, "ADD", "fake-a");
  cr_assert_str_eq(json_string_value(json_object_get(a, "name")), "testnet");
  cr_assert_str_eq(json_string_value(json_object_get(a, "cniVersion")), "1.0.0");
  cr_assert_eq(json_integer_value(json_object_get(a, "answer")), 42);
  cr_assert_null(json_object_get(a, "prevResult"));
  cr_assert_null(json_object_get(a, "runtimeConfig"));
  json_decref(a);
  json_t *b = log_json(1, "ADD", "fake-b");
  json_t *prev = json_object_get(b, "prevResult");
  cr_assert_str_eq(json_string_value(
                       json_object_get(json_array_get(json_object_get(prev, "ips"), 0), "address")),
                   "10.1.2.1/24");
  json_t *rc = json_object_get(b, "runtimeConfig");
  cr_assert_not_null(json_object_get(rc, "portMappings"));
  cr_assert_null(json_object_get(rc, "bandwidth")); /* declared false */
  json_decref(b);

  char *env = log_file(0, "ADD", "fake-a", "env");
  cr_assert(strstr(env, "CNI_COMMAND=ADD\n") != NULL, "%s", env);
  cr_assert(strstr(env, "CNI_CONTAINERID=ctr1\n") != NULL);
  cr_assert(strstr(env, "CNI_IFNAME=eth0\n") != NULL);
  char want[900];
  snprintf(want, sizeof(want), "CNI_NETNS=%s\n", netns);
  cr_assert(strstr(env, want) != NULL);
  cr_assert(strstr(env, "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=web\n") != NULL, "%s", env);
  snprintf(want, sizeof(want), "CNI_PATH=/nonexistent-quark-dir:%s\n", bindir);
  cr_assert(strstr(env, want) != NULL, "%s", env);
  free(env);

  /* The cache holds the final result and the list's bytes. */
  net_cache_entry *e = NULL;
  cr_assert_eq(net_cache_read(cachedir, "testnet", "ctr1", "eth0", &e, NULL), 0);
  cr_assert_str_eq(e->config, two_plugins);
  cr_assert(strstr(e->result, "10.1.2.2/24") != NULL);
  cr_assert(strstr(e->cni_args, "K8S_POD_NAME") != NULL);
  net_cache_entry_free(e);

  /* DEL: reverse order, cached result as prevResult, cached CNI_ARGS even
   * though this call passes none. */
  net_runtime del = {.container_id = "ctr1", .netns = netns, .ifname = "eth0"};
  cr_assert_eq(net_cni_del_list(c, l, &del, &err), 0, "%s", q_error_msg(err));
  json_t *d0 = log_json(2, "DEL", "fake-b");
  cr_assert_str_eq(
      json_string_value(json_object_get(
          json_array_get(json_object_get(json_object_get(d0, "prevResult"), "ips"), 0), "address")),
      "10.1.2.2/24");
  cr_assert_not_null(json_object_get(json_object_get(d0, "runtimeConfig"), "portMappings"));
  json_decref(d0);
  json_t *d1 = log_json(3, "DEL", "fake-a");
  json_decref(d1);
  env = log_file(3, "DEL", "fake-a", "env");
  cr_assert(strstr(env, "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=web\n") != NULL, "%s", env);
  free(env);
  cr_assert_eq(net_cache_read(cachedir, "testnet", "ctr1", "eth0", &e, NULL), -ENOENT);

  /* DEL again with no cache and a namespace that is gone: still fine, and
   * the plugins get an empty CNI_NETNS. */
  unlink(netns);
  cr_assert_eq(net_cni_del_list(c, l, &del, &err), 0);
  env = log_file(5, "DEL", "fake-a", "env");
  cr_assert(strstr(env, "CNI_NETNS=\n") != NULL, "%s", env);
  free(env);

  free(raw);
  net_result_free(res);
  net_conf_list_free(l);
  net_cni_free(c);
}

Test(netexec, plugin_errors_carry_the_plugin_message)
{
  net_cni *c = handle(0);
  net_runtime rt = {.container_id = "ctr2", .netns = netns, .ifname = "eth0"};
  q_cleanup_error q_error *err = NULL;

  net_conf_list *l =
      list_of("{\"cniVersion\":\"1.0.0\",\"name\":\"n1\",\"plugins\":[{\"type\":\"fake-fail\"}]}");
  cr_assert_lt(net_cni_add_list(c, l, &rt, NULL, NULL, &err), 0);
  cr_assert_str_eq(q_error_msg(err),
                   "plugin type=\"fake-fail\" name=\"n1\" failed (add): boom: more details");
  net_conf_list_free(l);

  l = list_of(
      "{\"cniVersion\":\"1.0.0\",\"name\":\"n2\",\"plugins\":[{\"type\":\"fake-stderr\"}]}");
  cr_assert_lt(net_cni_add_list(c, l, &rt, NULL, NULL, &err), 0);
  cr_assert_str_eq(
      q_error_msg(err),
      "plugin type=\"fake-stderr\" name=\"n2\" failed (add): exit status 3: plain failure text");
  net_conf_list_free(l);

  l = list_of(
      "{\"cniVersion\":\"1.0.0\",\"name\":\"n3\",\"plugins\":[{\"type\":\"no-such-plugin\"}]}");
  cr_assert_eq(net_cni_add_list(c, l, &rt, NULL, NULL, &err), -ENOENT);
  char want[900];
  snprintf(want, sizeof(want),
           "plugin type=\"no-such-plugin\" name=\"n3\" failed (add): failed to find plugin "
           "\"no-such-plugin\" in path [/nonexistent-quark-dir %s]",
           bindir);
  cr_assert_str_eq(q_error_msg(err), want);
  net_conf_list_free(l);

  /* DEL of a list whose plugin is missing: fine while nothing is cached
   * (no ADD completed), an error once an ADD did. */
  l = list_of("{\"cniVersion\":\"1.0.0\",\"name\":\"n3\",\"plugins\":[{\"type\":\"fake-a\"},"
              "{\"type\":\"no-such-plugin\"}]}");
  cr_assert_eq(net_cni_del_list(c, l, &rt, &err), 0, "%s", q_error_msg(err));
  net_cache_entry fake = {.container_id = "ctr2",
                          .network_name = "n3",
                          .ifname = "eth0",
                          .config = "{}",
                          .config_len = 2};
  cr_assert_eq(net_cache_write(cachedir, &fake, NULL), 0);
  cr_assert_eq(net_cni_del_list(c, l, &rt, &err), -ENOENT);
  cr_assert(strstr(q_error_msg(err), "failed (delete): failed to find plugin") != NULL, "%s",
            q_error_msg(err));
  cr_assert_eq(net_cache_remove(cachedir, "n3", "ctr2", "eth0", NULL), 0);
  net_conf_list_free(l);

  /* Nothing was cached for any of them. */
  net_cache_entry *left = NULL;
  cr_assert_eq(net_cache_find(cachedir, "ctr2", "eth0", &left, NULL), -ENOENT);
  net_cni_free(c);
}

Test(netexec, plugin_timeout)
{
  net_cni *c = handle(300);
  net_runtime rt = {.container_id = "ctr3", .netns = netns, .ifname = "eth0"};
  net_conf_list *l =
      list_of("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"fake-slow\"}]}");
  q_cleanup_error q_error *err = NULL;
  int64_t t0 = q_mono_ns();
  cr_assert_eq(net_cni_add_list(c, l, &rt, NULL, NULL, &err), -ETIMEDOUT);
  int64_t ms = (q_mono_ns() - t0) / 1000000;
  cr_assert_lt(ms, 3000, "took %lld ms", (long long)ms);
  cr_assert(strstr(q_error_msg(err), "timed out after 300 ms") != NULL, "%s", q_error_msg(err));
  net_conf_list_free(l);
  net_cni_free(c);
}

Test(netexec, check_uses_cached_result_and_is_tolerant)
{
  net_cni *c = handle(0);
  net_runtime rt = {.container_id = "ctr4", .netns = netns, .ifname = "eth0"};
  net_conf_list *l = list_of(two_plugins);
  q_cleanup_error q_error *err = NULL;
  cr_assert_eq(net_cni_check_list(c, l, &rt, &err), -ENOENT);
  cr_assert_eq(net_cni_add_list(c, l, &rt, NULL, NULL, &err), 0, "%s", q_error_msg(err));
  cr_assert_eq(net_cni_check_list(c, l, &rt, &err), 0, "%s", q_error_msg(err));
  json_t *ck = log_json(2, "CHECK", "fake-a");
  cr_assert_not_null(json_object_get(ck, "prevResult"));
  json_decref(ck);
  net_conf_list_free(l);
  /* 0.3.1 predates CHECK: nothing runs, no error. */
  l = list_of("{\"cniVersion\":\"0.3.1\",\"name\":\"old\",\"plugins\":[{\"type\":\"fake-fail\"}]}");
  cr_assert_eq(net_cni_check_list(c, l, &rt, &err), 0);
  net_conf_list_free(l);
  net_cni_free(c);
}

static void write_conf(const char *name, const char *text)
{
  char path[700];
  snprintf(path, sizeof(path), "%s/%s", confdir, name);
  cr_assert_eq(q_write_file_atomic(path, text, strlen(text), 0644, NULL), 0);
}

Test(netexec, pod_attach_detach_and_rollback)
{
  net_cni *c = handle(0);
  write_conf("10-pod.conflist", two_plugins);
  net_port_mapping ports[] = {{"TCP", 80, 8080, NULL}};
  net_pod pod = {.id = "sandbox1",
                 .name = "web",
                 .namespace = "default",
                 .uid = "u-1",
                 .netns_path = netns,
                 .ports = ports,
                 .n_ports = 1};
  net_pod_network *pn = NULL;
  q_cleanup_error q_error *err = NULL;
  cr_assert_eq(net_pod_attach(c, &pod, &pn, &err), 0, "%s", q_error_msg(err));
  cr_assert_str_eq(pn->network_name, "testnet");
  cr_assert_str_eq(pn->primary_ip, "10.1.2.3"); /* loopback, fake-a, fake-b */
  cr_assert_eq(pn->n_additional_ips, 0);
  char *env = log_file(0, "ADD", "loopback", "env");
  cr_assert(strstr(env, "CNI_IFNAME=lo\n") != NULL);
  cr_assert(strstr(env, "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;"
                        "K8S_POD_INFRA_CONTAINER_ID=sandbox1;K8S_POD_UID=u-1\n") != NULL,
            "%s", env);
  free(env);
  net_pod_network_free(pn);
  net_cache_entry *e = NULL;
  cr_assert_eq(net_cache_read(cachedir, "cni-loopback", "sandbox1", "lo", &e, NULL), 0);
  net_cache_entry_free(e);

  /* The config is renamed after ADD: DEL still finds the cached network. */
  write_conf(
      "10-pod.conflist",
      "{\"cniVersion\":\"1.0.0\",\"name\":\"renamed\",\"plugins\":[{\"type\":\"fake-fail\"}]}");
  cr_assert_eq(net_pod_detach(c, &pod, &err), 0, "%s", q_error_msg(err));
  cr_assert(has_log(3, "DEL", "fake-b"));
  cr_assert(has_log(4, "DEL", "fake-a"));
  cr_assert(has_log(5, "DEL", "loopback"));
  cr_assert_eq(net_cache_read(cachedir, "testnet", "sandbox1", "eth0", &e, NULL), -ENOENT);
  cr_assert_eq(net_cache_read(cachedir, "cni-loopback", "sandbox1", "lo", &e, NULL), -ENOENT);

  /* A failing plugin: the error is the plugin's, the partial ADD is undone
   * (DEL of every plugin in reverse, then loopback) and nothing is cached. */
  write_conf("10-pod.conflist",
             "{\"cniVersion\":\"1.0.0\",\"name\":\"failnet\",\"plugins\":[{\"type\":\"fake-a\"},"
             "{\"type\":\"fake-fail\"}]}");
  net_pod pod2 = pod;
  pod2.id = "sandbox2";
  cr_assert_lt(net_pod_attach(c, &pod2, &pn, &err), 0);
  cr_assert(strstr(q_error_msg(err), "failed (add): boom: more details") != NULL, "%s",
            q_error_msg(err));
  cr_assert(strstr(q_error_msg(err), "sandbox2") != NULL);
  cr_assert(has_log(9, "DEL", "fake-fail"));
  cr_assert(has_log(10, "DEL", "fake-a"));
  cr_assert(has_log(11, "DEL", "loopback"));
  cr_assert_eq(net_cache_find(cachedir, "sandbox2", "eth0", &e, NULL), -ENOENT);
  cr_assert_eq(net_cache_find(cachedir, "sandbox2", "lo", &e, NULL), -ENOENT);

  /* No config at all: attach fails with the loader's message and runs
   * nothing; detach has nothing to do. */
  char path[700];
  snprintf(path, sizeof(path), "%s/10-pod.conflist", confdir);
  unlink(path);
  cr_assert_lt(net_pod_attach(c, &pod2, &pn, &err), 0);
  cr_assert(strstr(q_error_msg(err), "cni config load failed: no network config found") != NULL,
            "%s", q_error_msg(err));
  cr_assert(!has_log(12, "ADD", "loopback"));
  cr_assert_eq(net_pod_detach(c, &pod2, &err), 0, "%s", q_error_msg(err));
  net_cni_free(c);
}

Test(netexec, plugin_that_does_not_read_stdin_does_not_kill_us)
{
  /* A config larger than a pipe buffer, to a plugin that exits at once:
   * the write fails with EPIPE, and SIGPIPE must not end the process. */
  size_t pad = 300000;
  char *text = malloc(pad + 200);
  int n = sprintf(text, "{\"cniVersion\":\"1.0.0\",\"name\":\"big\",\"plugins\":[{\"type\":"
                        "\"fake-noread\",\"pad\":\"");
  memset(text + n, 'x', pad);
  strcpy(text + n + pad, "\"}]}");
  net_conf_list *l = list_of(text);
  free(text);
  net_cni *c = handle(0);
  net_runtime rt = {.container_id = "ctr5", .netns = netns, .ifname = "eth0"};
  q_cleanup_error q_error *err = NULL;
  net_result *res = NULL;
  cr_assert_eq(net_cni_add_list(c, l, &rt, &res, NULL, &err), 0, "%s", q_error_msg(err));
  cr_assert_eq(res->n_ips, 0);
  net_result_free(res);
  net_conf_list_free(l);
  net_cni_free(c);
}

Test(netexec, cached_pod_network_after_restart)
{
  net_cni *c = handle(0);
  write_conf("10-pod.conflist", two_plugins);
  net_pod pod = {
      .id = "sandbox9", .name = "web", .namespace = "default", .uid = "u-9", .netns_path = netns};
  net_pod_network *pn = NULL, *again = NULL;
  q_cleanup_error q_error *err = NULL;
  cr_assert_eq(net_pod_cached(c, "sandbox9", &again, &err), -ENOENT);
  cr_assert_eq(net_pod_attach(c, &pod, &pn, &err), 0, "%s", q_error_msg(err));
  /* A new handle, as after a quarkd restart. */
  net_cni *c2 = handle(0);
  cr_assert_eq(net_pod_cached(c2, "sandbox9", &again, &err), 0, "%s", q_error_msg(err));
  cr_assert_str_eq(again->primary_ip, pn->primary_ip);
  cr_assert_str_eq(again->network_name, "testnet");
  cr_assert_str_eq(again->netns_path, netns);
  net_pod_network_free(again);
  net_pod_network_free(pn);
  net_cni_free(c2);
  net_cni_free(c);
}

Test(netexec, plugin_leaving_a_child_on_stdout_is_not_waited_for)
{
  net_cni *c = handle(10000);
  net_runtime rt = {.container_id = "ctr6", .netns = netns, .ifname = "eth0"};
  net_conf_list *l =
      list_of("{\"cniVersion\":\"1.0.0\",\"name\":\"d\",\"plugins\":[{\"type\":\"fake-daemon\"}]}");
  q_cleanup_error q_error *err = NULL;
  net_result *res = NULL;
  int64_t t0 = q_mono_ns();
  cr_assert_eq(net_cni_add_list(c, l, &rt, &res, NULL, &err), 0, "%s", q_error_msg(err));
  int64_t ms = (q_mono_ns() - t0) / 1000000;
  cr_assert_lt(ms, 3500, "waited %lld ms for the plugin's child", (long long)ms);
  cr_assert_str_eq(res->ips[0].address, "10.9.9.9/24");
  net_result_free(res);
  net_conf_list_free(l);
  net_cni_free(c);
}
