/* Peer table from the Kubernetes API: every node with a spec.podCIDR and
 * the tsord-address annotation is a TSoR node. libcurl with the in-cluster
 * service-account credentials (or explicit ones): list the nodes, then
 * watch them from the list's resourceVersion, as an informer does; when the
 * watch ends or fails, list again. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "quark/tsor.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* items: array of Node objects -> peers (the peers-file checks apply). */
static int items_to_peers(json_t *items, struct tsor_peers *out, q_error **err)
{
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
  if (s == NULL) return q_error_make(err, ENOMEM, "node list");
  int r = tsor_peers_parse(s, out, err);
  free(s);
  if (r < 0) return q_error_wrap(err, "node list");
  return 0;
}

int tsor_peers_from_nodelist(const char *text, struct tsor_peers *out, q_error **err)
{
  json_error_t je;
  memset(out, 0, sizeof(*out));
  json_t *root = json_loads(text, 0, &je);
  if (root == NULL) return q_error_make(err, EINVAL, "node list: line %d: %s", je.line, je.text);
  json_t *items = json_object_get(root, "items");
  int r = json_is_array(items) ? items_to_peers(items, out, err)
                               : q_error_make(err, EINVAL, "node list: no \"items\" array");
  json_decref(root);
  return r;
}

/* ---- HTTP ---- */

struct req {
  char server[256];
  char auth[1 << 16 | 64];
  const char *ca_file;
};

static int req_init(const struct tsor_kube_config *cfg, struct req *rq, q_error **err)
{
  if (cfg->server != NULL) {
    snprintf(rq->server, sizeof(rq->server), "%s", cfg->server);
  } else {
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    if (host == NULL || port == NULL)
      return q_error_make(err, ENOENT, "kube: not in a cluster (KUBERNETES_SERVICE_HOST unset) and no server given");
    snprintf(rq->server, sizeof(rq->server), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
  }
  /* The token is read for every request: a projected token rotates. */
  const char *token_file = cfg->token_file ? cfg->token_file : SA_DIR "/token";
  rq->ca_file = cfg->ca_file ? cfg->ca_file : SA_DIR "/ca.crt";
  q_cleanup_free char *token = NULL;
  size_t tlen;
  if (q_read_file(token_file, 1 << 16, &token, &tlen, err) < 0) return q_error_wrap(err, "kube: token");
  while (tlen > 0 && (token[tlen - 1] == '\n' || token[tlen - 1] == '\r')) token[--tlen] = '\0';
  snprintf(rq->auth, sizeof(rq->auth), "Authorization: Bearer %s", token);
  return 0;
}

typedef size_t (*sink_fn)(char *data, size_t size, size_t nmemb, void *arg);

/* GET path; body bytes go to sink. stop (may be NULL) aborts a stream. */
static int get(const struct req *rq, const char *path, long timeout_s, sink_fn sink, void *arg,
               int (*progress)(void *, curl_off_t, curl_off_t, curl_off_t, curl_off_t), void *parg, q_error **err)
{
  char url[768];
  snprintf(url, sizeof(url), "%s%s", rq->server, path);
  CURL *h = curl_easy_init();
  if (h == NULL) return q_error_make(err, ENOMEM, "kube: curl");
  struct curl_slist *hdrs = curl_slist_append(NULL, rq->auth);
  hdrs = curl_slist_append(hdrs, "Accept: application/json");
  char cerr[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, arg);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_FAILONERROR, 0L);
  if (progress) {
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, parg);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  }
  if (strncmp(rq->server, "https://", 8) == 0) curl_easy_setopt(h, CURLOPT_CAINFO, rq->ca_file);
  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  if (rc == CURLE_ABORTED_BY_CALLBACK || rc == CURLE_WRITE_ERROR) return status == 200 ? 0 : -EIO;
  if (rc == CURLE_OPERATION_TIMEDOUT && status == 200 && progress) return 0; /* a watch ran its course */
  if (rc != CURLE_OK) return q_error_make(err, EIO, "kube: GET %s: %s", url, cerr[0] ? cerr : curl_easy_strerror(rc));
  if (status != 200)
    return q_error_make(err, status == 401 || status == 403 ? EACCES : EIO, "kube: GET %s: HTTP %ld", url, status);
  return 0;
}

struct buf {
  char *p;
  size_t n;
};

static size_t to_buf(char *data, size_t size, size_t nmemb, void *arg)
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

/* Lists the nodes: items (new reference) and the list's resourceVersion. */
static int list_nodes(const struct req *rq, json_t **items, char *rv, size_t rvlen, q_error **err)
{
  struct buf b = {0};
  int r = get(rq, "/api/v1/nodes", 10, to_buf, &b, NULL, NULL, err);
  if (r < 0) {
    free(b.p);
    return r;
  }
  json_error_t je;
  json_t *root = json_loads(b.p ? b.p : "", 0, &je);
  free(b.p);
  json_t *it = root ? json_object_get(root, "items") : NULL;
  if (!json_is_array(it)) {
    json_decref(root);
    return q_error_make(err, EINVAL, "kube: node list without \"items\"");
  }
  const char *v = json_string_value(json_object_get(json_object_get(root, "metadata"), "resourceVersion"));
  snprintf(rv, rvlen, "%s", v ? v : "");
  *items = json_incref(it);
  json_decref(root);
  return 0;
}

int tsor_kube_list_peers(const struct tsor_kube_config *cfg, struct tsor_peers *out, q_error **err)
{
  struct req *rq = malloc(sizeof(*rq)); /* the token buffer is large */
  if (rq == NULL) return q_error_make(err, ENOMEM, "kube");
  json_t *items = NULL;
  char rv[128];
  int r = req_init(cfg, rq, err);
  if (r == 0) r = list_nodes(rq, &items, rv, sizeof(rv), err);
  if (r == 0) r = items_to_peers(items, out, err);
  json_decref(items);
  free(rq);
  return r;
}

/* ---- list, then watch ---- */

struct watch {
  json_t *nodes; /* name -> Node */
  char rv[128];
  char *line;
  size_t len;
  bool failed, changed;
  bool (*stop)(void *);
  void (*on_peers)(void *, struct tsor_peers *);
  void *arg;
};

static void publish(struct watch *w)
{
  json_t *items = json_array();
  const char *k;
  json_t *v;
  json_object_foreach(w->nodes, k, v) json_array_append(items, v);
  struct tsor_peers p;
  q_error *err = NULL;
  if (items_to_peers(items, &p, &err) == 0)
    w->on_peers(w->arg, &p);
  else
    q_warn(NULL, "tsord: node list from the API rejected: %s", q_error_msg(err));
  q_error_free(&err);
  json_decref(items);
}

/* One watch event: {"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": Node}. */
static void event(struct watch *w, const char *text)
{
  json_t *e = json_loads(text, 0, NULL);
  const char *type = json_string_value(json_object_get(e, "type"));
  json_t *obj = json_object_get(e, "object");
  const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
  const char *rv = json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
  if (type == NULL || strcmp(type, "ERROR") == 0) {
    w->failed = true; /* e.g. 410 Gone: the resourceVersion is too old; list again */
  } else if (strcmp(type, "BOOKMARK") != 0 && name != NULL) {
    if (strcmp(type, "DELETED") == 0)
      json_object_del(w->nodes, name);
    else
      json_object_set(w->nodes, name, obj);
    w->changed = true;
  }
  if (rv) snprintf(w->rv, sizeof(w->rv), "%s", rv);
  json_decref(e);
}

static size_t on_stream(char *data, size_t size, size_t nmemb, void *arg)
{
  struct watch *w = arg;
  size_t n = size * nmemb;
  for (size_t i = 0; i < n; i++) {
    if (data[i] != '\n') {
      if (w->len >= (1u << 20)) return 0; /* one event this big is not one */
      char *p = realloc(w->line, w->len + 2);
      if (p == NULL) return 0;
      w->line = p;
      w->line[w->len++] = data[i];
      continue;
    }
    if (w->len == 0) continue;
    w->line[w->len] = '\0';
    event(w, w->line);
    w->len = 0;
    if (w->failed) return 0;
  }
  /* Apply a burst of events at once, not one table per line. */
  if (w->changed) {
    w->changed = false;
    publish(w);
  }
  return n;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
  (void)a, (void)b, (void)c, (void)d;
  struct watch *w = arg;
  return w->stop(w->arg) ? 1 : 0;
}

static void nap(struct watch *w, int seconds)
{
  for (int i = 0; i < seconds * 10 && !w->stop(w->arg); i++) usleep(100000);
}

void tsor_kube_run(const struct tsor_kube_config *cfg, int period_s, bool (*stop)(void *),
                   void (*on_peers)(void *, struct tsor_peers *), void *arg)
{
  struct req *rq = malloc(sizeof(*rq));
  struct watch w = {.stop = stop, .on_peers = on_peers, .arg = arg};
  while (rq != NULL && !stop(arg)) {
    q_error *err = NULL;
    json_t *items = NULL;
    if (req_init(cfg, rq, &err) < 0 || list_nodes(rq, &items, w.rv, sizeof(w.rv), &err) < 0) {
      q_warn(NULL, "tsord: listing nodes: %s (keeping the last table)", q_error_msg(err));
      q_error_free(&err);
      nap(&w, period_s < 5 ? period_s : 5);
      continue;
    }
    json_decref(w.nodes);
    w.nodes = json_object();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
      const char *name = json_string_value(json_object_get(json_object_get(it, "metadata"), "name"));
      if (name) json_object_set(w.nodes, name, it);
    }
    json_decref(items);
    publish(&w);
    /* Watch from the list's version; the server ends the watch after
     * timeoutSeconds and we list again, which also heals missed events. */
    w.failed = false;
    w.len = 0;
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/nodes?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%d",
             w.rv, period_s);
    int r = get(rq, path, period_s + 30, on_stream, &w, on_progress, &w, &err);
    if (r < 0 && !stop(arg)) {
      q_warn(NULL, "tsord: watching nodes: %s", err ? q_error_msg(err) : "stream ended");
      nap(&w, 1);
    }
    q_error_free(&err);
  }
  json_decref(w.nodes);
  free(w.line);
  free(rq);
}
