/* Internals shared by the files of the network module; not installed. */
#ifndef QUARK_NET_INTERNAL_H
#define QUARK_NET_INTERNAL_H

#include <jansson.h>

#include "quark/net.h"

struct net_cni {
  char *conf_dir;
  char **plugin_dirs;
  size_t n_plugin_dirs;
  char *cache_dir;
  char *netns_dir;
  int plugin_timeout_ms;
};

/* Longest plugin stdout/stderr kept; plugins print small JSON documents. */
#define NET_PLUGIN_OUTPUT_MAX (4u << 20)
/* Largest config file read. */
#define NET_CONF_MAX (1u << 20)

/* libcni's rules for names that end up in file names and environment. */
bool net_valid_id(const char *s); /* container id and network name */
bool net_valid_ifname(const char *s);

/* Standard base64 with padding (what Go's encoding/json does for []byte). */
char *net_base64_encode(const void *data, size_t len);
/* -EINVAL on bad input; *out is NUL-terminated. */
int net_base64_decode(const char *s, char **out, size_t *len);

/* Runs plugin `path` with the CNI environment for `command` (ADD, DEL,
 * CHECK, VERSION), config on stdin, and a timeout. On exit status 0,
 * *out (optional) is its stdout. On failure the message is the plugin's
 * JSON error msg (and details) or its stderr. */
int net_exec_plugin(const net_cni *c, const char *path, const char *type, const char *command,
                    const net_runtime *rt, const char *config, size_t config_len, char **out,
                    q_error **err);

/* CNI_ARGS value "K=V;K=V" from rt (NULL when there are none). */
char *net_cni_args_string(const net_runtime *rt);

/* Semantic version compare of "a.b.c" strings: <0, 0, >0. Bad input sorts low. */
int net_version_cmp(const char *a, const char *b);

/* json_dumps with sorted keys off, compact; aborts nothing: NULL on ENOMEM. */
char *net_json_dump(const json_t *j);

#endif
