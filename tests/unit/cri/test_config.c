/* Config parser: defaults, a full valid file, and every kind of mistake
 * being rejected with a message naming the file and the key. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "quark/config.h"

static int parse(struct cri_config *cfg, const char *json, q_error **err)
{
  return cri_config_parse(cfg, json, strlen(json), "test.json", err);
}

static void expect_error(const char *json, const char *needle)
{
  struct cri_config cfg;
  q_error *err = NULL;
  int r = parse(&cfg, json, &err);
  cr_assert_lt(r, 0, "accepted: %s", json);
  cr_assert_not_null(err);
  cr_assert_not_null(strstr(q_error_msg(err), "test.json"), "no file in '%s'", q_error_msg(err));
  cr_assert_not_null(strstr(q_error_msg(err), needle), "'%s' not in '%s'", needle,
                     q_error_msg(err));
  q_error_free(&err);
}

Test(config, defaults)
{
  struct cri_config cfg;
  cr_assert_eq(parse(&cfg, "{}", NULL), 0);
  cr_assert_str_eq(cfg.socket, "unix:///run/quark/quark.sock");
  cr_assert_str_eq(cfg.state_root, "/var/lib/quark/state");
  cr_assert_str_eq(cfg.image_root, "/var/lib/quark/images");
  cr_assert_str_eq(cfg.log_file, "/var/log/quark/quark.log");
  cr_assert_eq(cfg.debug_level, Q_LOG_INFO);
  cr_assert_eq(cfg.cgroup_driver, CRI_CGROUP_CGROUPFS);
  cr_assert_str_eq(cfg.stream_address, "127.0.0.1");
  cr_assert_eq(cfg.stream_port, 0);
  cr_assert_eq(cfg.registry.n_mirrors, 0);
  cr_assert_eq(cfg.registry.n_insecure, 0);
  cr_assert_str_eq(cfg.sandbox.binary, "/usr/local/bin/quark-sandbox");
  cr_assert_str_eq(cfg.sandbox.kernel, "/usr/local/lib/quark/qkernel.bin");
  cr_assert_eq(cfg.sandbox.memory_mib, 256);
  cr_assert_eq(cfg.sandbox.vcpus, 1);
  cr_assert_str_eq(cfg.cni.conf_dir, "/etc/cni/net.d");
  cr_assert_eq(cfg.cni.n_bin_dirs, 2);
  cr_assert_str_eq(cfg.cni.bin_dirs[1], "/usr/lib/cni");
  cr_assert_str_eq(cfg.cni.cache_dir, "/var/lib/cni");
  cr_assert_eq(cfg.tsor.enabled, false);
  cr_assert_str_eq(cfg.tsor.socket, "/run/quark/tsord.sock");
  cr_assert_str_eq(cri_config_socket_path(cfg.socket), "/run/quark/quark.sock");
  cri_config_free(&cfg);
}

Test(config, full_file)
{
  static const char json[] =
      "{\"Socket\":\"unix:///tmp/q/q.sock\",\"StateRoot\":\"/s\",\"ImageRoot\":\"/i\","
      "\"LogFile\":\"/l.log\",\"DebugLevel\":\"trace\",\"CgroupDriver\":\"systemd\","
      "\"StreamAddress\":\"0.0.0.0\",\"StreamPort\":10010,"
      "\"Registry\":{\"Mirrors\":{\"docker.io\":[\"http://127.0.0.1:5000\",\"https://m\"]},"
      "\"Insecure\":[\"127.0.0.1:5000\"]},"
      "\"Sandbox\":{\"Binary\":\"/b\",\"Kernel\":\"/k\",\"MemoryMiB\":1024,\"Vcpus\":4,"
      "\"PidsLimit\":512},"
      "\"Cni\":{\"ConfDir\":\"/c\",\"BinDirs\":[\"/x\"],\"CacheDir\":\"/cc\"},"
      "\"Tsor\":{\"Enabled\":true,\"Socket\":\"/t.sock\"}}";
  struct cri_config cfg;
  q_error *err = NULL;
  cr_assert_eq(parse(&cfg, json, &err), 0, "%s", err ? q_error_msg(err) : "");
  cr_assert_str_eq(cfg.socket, "unix:///tmp/q/q.sock");
  cr_assert_eq(cfg.debug_level, Q_LOG_TRACE);
  cr_assert_eq(cfg.cgroup_driver, CRI_CGROUP_SYSTEMD);
  cr_assert_eq(cfg.stream_port, 10010);
  const struct cri_registry_mirror *m = cri_config_mirrors(&cfg, "docker.io");
  cr_assert_not_null(m);
  cr_assert_eq(m->n_urls, 2);
  cr_assert_str_eq(m->urls[0], "http://127.0.0.1:5000");
  cr_assert_null(cri_config_mirrors(&cfg, "quay.io"));
  cr_assert(cri_config_is_insecure(&cfg, "127.0.0.1:5000"));
  cr_assert(!cri_config_is_insecure(&cfg, "127.0.0.1:5001"));
  cr_assert_eq(cfg.sandbox.memory_mib, 1024);
  cr_assert_eq(cfg.sandbox.vcpus, 4);
  cr_assert_eq(cfg.sandbox.pids_limit, 512);
  cr_assert_eq(cfg.cni.n_bin_dirs, 1);
  cr_assert_str_eq(cfg.cni.bin_dirs[0], "/x");
  cr_assert(cfg.tsor.enabled);
  cr_assert_str_eq(cfg.source, "test.json");
  cri_config_free(&cfg);
}

Test(config, unknown_keys)
{
  expect_error("{\"Sockett\":\"unix:///a\"}", "Sockett: unknown key");
  expect_error("{\"Sandbox\":{\"MemoryMb\":1}}", "Sandbox.MemoryMb: unknown key");
  expect_error("{\"Tsor\":{\"enabled\":true}}", "Tsor.enabled: unknown key");
}

Test(config, wrong_types)
{
  expect_error("{\"StreamPort\":\"10010\"}", "StreamPort: wrong type");
  expect_error("{\"Sandbox\":{\"Vcpus\":2.5}}", "Sandbox.Vcpus: wrong type");
  expect_error("{\"Tsor\":{\"Enabled\":1}}", "Tsor.Enabled: wrong type");
  expect_error("{\"Registry\":{\"Insecure\":\"x\"}}", "Registry.Insecure: wrong type");
  expect_error("{\"Registry\":{\"Insecure\":[1]}}", "Registry.Insecure");
  expect_error("{\"Registry\":{\"Mirrors\":{\"docker.io\":\"http://x\"}}}",
               "Registry.Mirrors.docker.io");
  expect_error("{\"Cni\":[]}", "Cni: wrong type");
  expect_error("[]", "top level");
}

Test(config, bad_values)
{
  expect_error("{\"DebugLevel\":\"Verbose\"}", "DebugLevel");
  expect_error("{\"CgroupDriver\":\"cgroupv3\"}", "CgroupDriver");
  expect_error("{\"StreamPort\":70000}", "StreamPort");
  expect_error("{\"Sandbox\":{\"Vcpus\":-1}}", "Sandbox.Vcpus");
  expect_error("{\"Sandbox\":{\"MemoryMiB\":0}}", "Sandbox.MemoryMiB: 0 out of range 1..");
  expect_error("{\"Sandbox\":{\"PidsLimit\":-1}}", "Sandbox.PidsLimit");
  expect_error("{\"StateRoot\":\"relative/dir\"}", "StateRoot: must be an absolute path");
  expect_error("{\"Socket\":\"tcp://127.0.0.1:1\"}", "Socket");
  expect_error("{\"Socket\":\"\"}", "Socket");
}

Test(config, bad_json)
{
  expect_error("{\"Socket\": ", "line 1");
  expect_error("{\"Socket\":\"unix:///a\",\"Socket\":\"unix:///b\"}", "duplicate");
  expect_error("", "line");
}

Test(config, load_file_and_pick_path)
{
  char dir[] = "/tmp/quark-config-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char path[128];
  snprintf(path, sizeof(path), "%s/config.json", dir);
  struct cri_config cfg;
  q_error *err = NULL;
  cr_assert_eq(cri_config_load(&cfg, path, false, &err), -ENOENT);
  q_error_free(&err);
  cr_assert_eq(cri_config_load(&cfg, path, true, NULL), 0);
  cri_config_free(&cfg);
  FILE *f = fopen(path, "w");
  fputs("{\"Vcpus\":2}", f);
  fclose(f);
  cr_assert_lt(cri_config_load(&cfg, path, false, &err), 0);
  cr_assert_not_null(strstr(q_error_msg(err), path));
  q_error_free(&err);
  unlink(path);
  rmdir(dir);

  bool explicit_path;
  unsetenv(CRI_CONFIG_ENV);
  cr_assert_str_eq(cri_config_pick_path(NULL, &explicit_path), CRI_CONFIG_DEFAULT_PATH);
  cr_assert(!explicit_path);
  setenv(CRI_CONFIG_ENV, "/env.json", 1);
  cr_assert_str_eq(cri_config_pick_path(NULL, &explicit_path), "/env.json");
  cr_assert(explicit_path);
  cr_assert_str_eq(cri_config_pick_path("/flag.json", &explicit_path), "/flag.json");
  unsetenv(CRI_CONFIG_ENV);
}
