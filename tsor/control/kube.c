/* Peer table from the Kubernetes API: every node with a spec.podCIDR and
 * the tsord-address annotation is a TSoR node. Listed with libcurl using the
 * in-cluster service-account credentials (or explicit ones); tsord re-lists
 * periodically and applies the differences. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quark/tsor.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

int tsor_peers_from_nodelist(const char *text, struct tsor_peers *out, q_error **err)
{
  json_error_t je;
  memset(out, 0, sizeof(*out));
  json_t *root = json_loads(text, 0, &je);
  if (root == NULL) return q_error_make(err, EINVAL, "node list: line %d: %s", je.line, je.text);
  json_t *items = json_object_get(root, "items");
  if (!json_is_array(items)) {
    json_decref(root);
    return q_error_make(err, EINVAL, "node list: no \"items\" array");
  }
  /* Build the peers file form and reuse its checks (CIDR syntax, overlap,
   * duplicates) instead of repeating them. */
  json_t *nodes = json_array();
  size_t i;
  json_t *it;
  json_array_foreach(items, i, it)
  {
    json_t *meta = json_object_get(it, "metadata");
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *cidr = json_string_value(json_object_get(json_object_get(it, "spec"), "podCIDR"));
    const char *addr = json_string_value(json_object_get(json_object_get(meta, "annotations"), TSOR_KUBE_ANNOTATION));
    if (name == NULL || cidr == NULL || addr == NULL) continue; /* not a TSoR node (yet) */
    json_array_append_new(nodes, json_pack("{s:s,s:s,s:s}", "Name", name, "PodCIDR", cidr, "Address", addr));
  }
  json_t *doc = json_pack("{s:o}", "Nodes", nodes);
  char *s = json_dumps(doc, JSON_COMPACT);
  json_decref(doc);
  json_decref(root);
  if (s == NULL) return q_error_make(err, ENOMEM, "node list");
  int r = tsor_peers_parse(s, out, err);
  free(s);
  if (r < 0) return q_error_wrap(err, "node list");
  return 0;
}

struct buf {
  char *p;
  size_t n;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
  struct buf *b = arg;
  size_t n = size * nmemb;
  if (b->n + n > (64u << 20)) return 0; /* a node list this big is not one */
  char *p = realloc(b->p, b->n + n + 1);
  if (p == NULL) return 0;
  memcpy(p + b->n, data, n);
  b->p = p;
  b->n += n;
  p[b->n] = '\0';
  return n;
}

int tsor_kube_list_peers(const struct tsor_kube_config *cfg, struct tsor_peers *out, q_error **err)
{
  char server[256];
  if (cfg->server != NULL) {
    snprintf(server, sizeof(server), "%s", cfg->server);
  } else {
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    if (host == NULL || port == NULL)
      return q_error_make(err, ENOENT, "kube: not in a cluster (KUBERNETES_SERVICE_HOST unset) and no server given");
    snprintf(server, sizeof(server), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
  }
  const char *token_file = cfg->token_file ? cfg->token_file : SA_DIR "/token";
  const char *ca_file = cfg->ca_file ? cfg->ca_file : SA_DIR "/ca.crt";
  q_cleanup_free char *token = NULL;
  size_t tlen;
  if (q_read_file(token_file, 1 << 16, &token, &tlen, err) < 0) return q_error_wrap(err, "kube: token");
  while (tlen > 0 && (token[tlen - 1] == '\n' || token[tlen - 1] == '\r')) token[--tlen] = '\0';

  char url[320], auth[1 << 16 | 64];
  snprintf(url, sizeof(url), "%s/api/v1/nodes", server);
  snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
  CURL *h = curl_easy_init();
  if (h == NULL) return q_error_make(err, ENOMEM, "kube: curl");
  struct curl_slist *hdrs = curl_slist_append(NULL, auth);
  hdrs = curl_slist_append(hdrs, "Accept: application/json");
  struct buf b = {0};
  char cerr[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  if (strncmp(server, "https://", 8) == 0) curl_easy_setopt(h, CURLOPT_CAINFO, ca_file);
  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  int r;
  if (rc != CURLE_OK)
    r = q_error_make(err, EIO, "kube: GET %s: %s", url, cerr[0] ? cerr : curl_easy_strerror(rc));
  else if (status != 200)
    r = q_error_make(err, status == 401 || status == 403 ? EACCES : EIO, "kube: GET %s: HTTP %ld", url, status);
  else
    r = tsor_peers_from_nodelist(b.p ? b.p : "", out, err);
  free(b.p);
  return r;
}
