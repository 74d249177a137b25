/* quarkd configuration: /etc/quark/config.json (jansson). Prefix: cri_config_.
 * Library target: quark_config (links quark_common and jansson).
 *
 * Contract:
 * - Every key is optional; a missing key keeps its default (cri_config_init).
 * - Keys are CamelCase and matched exactly. An unknown key, a value of the
 *   wrong type or out of range, or malformed JSON is an error whose message
 *   names the file and the key path ("config.json: Sandbox.MemoryMiB: ...").
 * - Strings in the struct are owned by it; cri_config_free releases them.
 */
#ifndef QUARK_CONFIG_H
#define QUARK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quark/common.h"

#define CRI_CONFIG_DEFAULT_PATH "/etc/quark/config.json"
#define CRI_CONFIG_ENV "QUARK_CONFIG"

enum cri_cgroup_driver { CRI_CGROUP_SYSTEMD = 0, CRI_CGROUP_CGROUPFS = 1 };

/* One registry host and its mirrors, tried in order before the host itself. */
struct cri_registry_mirror {
  char *host;  /* "docker.io" */
  char **urls; /* "http://127.0.0.1:5000", ... */
  size_t n_urls;
};

struct cri_config {
  char *socket;     /* "unix:///run/quark/quark.sock" */
  char *state_root; /* "/var/lib/quark/state" */
  char *image_root; /* "/var/lib/quark/images" */
  char *log_file;   /* "/var/log/quark/quark.log" */
  q_log_level debug_level;
  enum cri_cgroup_driver cgroup_driver;
  char *stream_address; /* "127.0.0.1" */
  uint16_t stream_port; /* 0: pick a free port */

  struct {
    struct cri_registry_mirror *mirrors;
    size_t n_mirrors;
    char **insecure; /* "host:port" entries allowed over plain HTTP */
    size_t n_insecure;
  } registry;

  struct {
    char *binary; /* quark-sandbox */
    char *kernel; /* qkernel.bin */
    uint32_t memory_mib;
    uint32_t vcpus;
    uint32_t pids_limit; /* tasks (threads included) per container in the guest, 0: no limit */
  } sandbox;

  struct {
    char *conf_dir;
    char **bin_dirs;
    size_t n_bin_dirs;
    char *cache_dir;
  } cni;

  struct {
    bool enabled;
    char *socket;
  } tsor;

  char *source; /* file the config came from, NULL for defaults */
};

/* Fills defaults. Returns -ENOMEM. */
int cri_config_init(struct cri_config *cfg);
/* Defaults overlaid with the file. On error cfg is left freed (nothing to
 * release). A missing file is an error (-ENOENT) unless missing_ok. */
int cri_config_load(struct cri_config *cfg, const char *path, bool missing_ok, q_error **err);
/* Same, from a JSON text; `name` is used in messages. */
int cri_config_parse(struct cri_config *cfg, const char *json, size_t len, const char *name,
                     q_error **err);
void cri_config_free(struct cri_config *cfg);

/* Which file to read: the flag value if any, else $QUARK_CONFIG, else the
 * default path. *explicit_out says whether the user named it (then a missing
 * file is an error). */
const char *cri_config_pick_path(const char *flag_value, bool *explicit_out);

/* Path of the socket without the "unix://" scheme, or NULL when the
 * endpoint is not a unix socket. Points into `endpoint`. */
const char *cri_config_socket_path(const char *endpoint);

/* The mirrors for a registry host, NULL when none. */
const struct cri_registry_mirror *cri_config_mirrors(const struct cri_config *cfg,
                                                     const char *host);
/* Whether "host[:port]" is listed in Registry.Insecure. */
bool cri_config_is_insecure(const struct cri_config *cfg, const char *host);

#endif
