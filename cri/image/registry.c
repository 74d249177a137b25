/* Registry client: the OCI distribution API v2 over libcurl. One img_reg is
 * one endpoint and repository as seen by one thread (a CURL easy handle is
 * not shareable); bearer tokens are cached in the store per scope so that
 * the worker threads of a pull and later pulls reuse them. */
#include "internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct img_reg {
  img_store *st;
  char *endpoint; /* "https://host[:port]" without a trailing slash */
  char *repo;
  const struct img_auth *auth;
  char *authz; /* current Authorization header value, or NULL */
  CURL *curl;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

const char *img_reg_endpoint(const struct img_reg *r)
{
  return r->endpoint;
}

/* host[:port] of a URL, into a new string. */
static char *url_host(const char *url)
{
  const char *p = strstr(url, "://");
  p = p ? p + 3 : url;
  size_t n = strcspn(p, "/?#");
  return strndup(p, n);
}

static bool is_insecure(const img_store *st, const char *hostport)
{
  for (char **i = st->insecure; i && *i; i++)
    if (strcmp(*i, hostport) == 0)
      return true;
  return false;
}

void img_reg_check_mirrors(const img_store *st)
{
  for (size_t m = 0; m < st->n_mirrors; m++)
    for (char **e = st->mirror_endpoints[m]; *e; e++) {
      q_cleanup_free char *hp = url_host(*e);
      if (strncmp(*e, "http://", 7) != 0 && strncmp(*e, "https://", 8) != 0)
        q_warn(NULL, "image store: mirror %s of %s ignored: not an http(s) URL", *e,
               st->mirror_hosts[m]);
      else if (strncmp(*e, "http://", 7) == 0 && !is_insecure(st, hp))
        q_warn(NULL,
               "image store: mirror %s of %s ignored: plain HTTP, but %s is not in "
               "Registry.Insecure",
               *e, st->mirror_hosts[m], hp);
    }
}

int img_reg_endpoints(img_store *st, const char *host, char ***out, q_error **err)
{
  size_t n = 0;
  char **v = calloc(1, sizeof(char *));
  if (!v)
    return q_error_make(err, ENOMEM, "registry endpoints");
  for (size_t m = 0; m < st->n_mirrors; m++) {
    if (strcmp(st->mirror_hosts[m], host) != 0)
      continue;
    for (char **e = st->mirror_endpoints[m]; *e; e++) {
      q_cleanup_free char *hp = url_host(*e);
      /* img_store_open warned about these once */
      if ((strncmp(*e, "http://", 7) == 0 && !is_insecure(st, hp)) ||
          (strncmp(*e, "http://", 7) != 0 && strncmp(*e, "https://", 8) != 0))
        continue;
      char **nv = realloc(v, (n + 2) * sizeof(char *));
      if (!nv)
        goto oom;
      v = nv;
      v[n] = strdup(*e);
      size_t l = v[n] ? strlen(v[n]) : 0;
      while (l > 0 && v[n][l - 1] == '/')
        v[n][--l] = '\0';
      v[++n] = NULL;
    }
  }
  char **nv = realloc(v, (n + 2) * sizeof(char *));
  if (!nv)
    goto oom;
  v = nv;
  const char *real = strcmp(host, "docker.io") == 0 ? "registry-1.docker.io" : host;
  if (asprintf(&v[n], "%s://%s", is_insecure(st, host) ? "http" : "https", real) < 0)
    goto oom;
  v[++n] = NULL;
  *out = v;
  return 0;
oom:
  img_strv_free(v);
  return q_error_make(err, ENOMEM, "registry endpoints");
}

static char *b64_encode(const void *data, size_t len)
{
  char *out = malloc(4 * ((len + 2) / 3) + 1);
  if (out)
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
  return out;
}

/* "user:password" from the AuthConfig, or NULL. */
static char *auth_userpass(const struct img_auth *a)
{
  char *s = NULL;
  if (!a)
    return NULL;
  if (a->username && *a->username) {
    if (asprintf(&s, "%s:%s", a->username, a->password ? a->password : "") < 0)
      return NULL;
    return s;
  }
  if (a->auth && *a->auth) {
    size_t n = strlen(a->auth);
    unsigned char *buf = calloc(1, n + 4);
    if (!buf)
      return NULL;
    int m = EVP_DecodeBlock(buf, (const unsigned char *)a->auth, (int)n);
    if (m < 0 || !strchr((char *)buf, ':')) {
      free(buf);
      return NULL;
    }
    return (char *)buf; /* padding bytes decode to NUL, so the string ends right */
  }
  return NULL;
}

int img_reg_open(img_store *st, const img_ref *ref, const char *endpoint,
                 const struct img_auth *auth, struct img_reg **out, q_error **err)
{
  pthread_once(&curl_once, curl_init_once);
  struct img_reg *r = calloc(1, sizeof(*r));
  if (!r)
    return q_error_make(err, ENOMEM, "registry client");
  r->st = st;
  r->endpoint = strdup(endpoint);
  r->repo = strdup(ref->path);
  r->auth = auth;
  r->curl = curl_easy_init();
  if (!r->endpoint || !r->repo || !r->curl) {
    img_reg_close(r);
    return q_error_make(err, ENOMEM, "registry client");
  }
  if (auth && auth->registry_token && *auth->registry_token &&
      asprintf(&r->authz, "Bearer %s", auth->registry_token) < 0)
    r->authz = NULL;
  *out = r;
  return 0;
}

void img_reg_close(struct img_reg *r)
{
  if (!r)
    return;
  if (r->curl)
    curl_easy_cleanup(r->curl);
  free(r->endpoint);
  free(r->repo);
  free(r->authz);
  free(r);
}

/* ---- one HTTP exchange ---- */

struct sink {
  /* memory */
  char *buf;
  size_t len, cap, max;
  /* file */
  int fd;
  EVP_MD_CTX *md;
  int64_t done, total;
  int64_t resume_from; /* > 0: ask for the bytes from here on (Range) */
  int tee_fd;          /* >= 0: a copy of the body goes here (a socket) */
  int64_t teed;
  bool tee_broken; /* the copy stopped: its reader is gone or the body restarted */
  CURL *curl;
  img_reg_progress progress;
  void *parg;
  int64_t last_report;
  /* a write-side failure that aborted the transfer */
  int fail_errno;
  char fail_msg[160];
};

struct hdrs {
  char *content_type;
  char *docker_digest;
  char *www_auth;
};

static void hdrs_reset(struct hdrs *h)
{
  free(h->content_type);
  free(h->docker_digest);
  free(h->www_auth);
  memset(h, 0, sizeof(*h));
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
  struct hdrs *h = arg;
  size_t len = size * n;
  char **slot = NULL;
  size_t skip = 0;
  if (len > 13 && strncasecmp(data, "Content-Type:", 13) == 0)
    slot = &h->content_type, skip = 13;
  else if (len > 22 && strncasecmp(data, "Docker-Content-Digest:", 22) == 0)
    slot = &h->docker_digest, skip = 22;
  else if (len > 17 && strncasecmp(data, "WWW-Authenticate:", 17) == 0)
    slot = &h->www_auth, skip = 17;
  else if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
    /* a new response (after a redirect or a 100): forget the previous one's headers */
    hdrs_reset(h);
  }
  if (slot) {
    const char *v = data + skip;
    size_t vl = len - skip;
    while (vl && (*v == ' ' || *v == '\t'))
      v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
      vl--;
    free(*slot);
    *slot = strndup(v, vl);
  }
  return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
  struct sink *s = arg;
  size_t len = size * n;
  if (s->fd >= 0) {
    if (s->total > 0 && s->done + (int64_t)len > s->total) {
      s->fail_errno = EBADMSG;
      snprintf(s->fail_msg, sizeof(s->fail_msg), "more bytes than the %lld the manifest gives",
               (long long)s->total);
      return 0;
    }
    if (q_write_all(s->fd, data, len) < 0) {
      s->fail_errno = errno;
      snprintf(s->fail_msg, sizeof(s->fail_msg), "write: %s", strerror(errno));
      return 0;
    }
    EVP_DigestUpdate(s->md, data, len);
    s->done += (int64_t)len;
    if (s->tee_fd >= 0 && !s->tee_broken) {
      long code = 0;
      curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
      if (code == 200 || code == 206) {
        /* MSG_NOSIGNAL: a reader that gave up must not kill the daemon. */
        for (size_t off = 0; off < len;) {
          ssize_t w = send(s->tee_fd, data + off, len - off, MSG_NOSIGNAL);
          if (w < 0 && errno == EINTR)
            continue;
          if (w <= 0) {
            s->tee_broken = true;
            break;
          }
          off += (size_t)w;
        }
        if (!s->tee_broken)
          s->teed += (int64_t)len;
      }
    }
    if (s->progress && (s->done - s->last_report >= (1 << 20) || s->done == s->total)) {
      s->last_report = s->done;
      s->progress(s->parg, s->done, s->total);
    }
    return len;
  }
  if (s->len + len > s->max) {
    s->fail_errno = EFBIG;
    snprintf(s->fail_msg, sizeof(s->fail_msg), "response larger than %zu bytes", s->max);
    return 0;
  }
  if (s->len + len + 1 > s->cap) {
    size_t cap = s->cap ? s->cap : 8192;
    while (cap < s->len + len + 1)
      cap *= 2;
    char *nb = realloc(s->buf, cap);
    if (!nb) {
      s->fail_errno = ENOMEM;
      snprintf(s->fail_msg, sizeof(s->fail_msg), "out of memory");
      return 0;
    }
    s->buf = nb;
    s->cap = cap;
  }
  memcpy(s->buf + s->len, data, len);
  s->len += len;
  s->buf[s->len] = '\0';
  return len;
}

static int sink_reset(struct sink *s)
{
  s->len = 0;
  s->fail_errno = 0;
  s->fail_msg[0] = '\0';
  if (s->teed > 0)
    s->tee_broken = true; /* the copy cannot start over */
  s->done = 0;
  s->last_report = 0;
  if (s->fd >= 0) {
    if (ftruncate(s->fd, 0) < 0 || lseek(s->fd, 0, SEEK_SET) < 0)
      return -errno;
    EVP_DigestInit_ex(s->md, EVP_sha256(), NULL);
  }
  return 0;
}

static CURLcode perform(struct img_reg *r, const char *method, const char *url, const char *accept,
                        const char *authz, const char *post, struct sink *s, struct hdrs *h,
                        long *code, char errbuf[CURL_ERROR_SIZE])
{
  CURL *c = r->curl;
  img_store *st = r->st;
  curl_easy_reset(c);
  struct curl_slist *hl = NULL;
  q_cleanup_free char *ah = NULL, *acc = NULL;
  if (authz && asprintf(&ah, "Authorization: %s", authz) >= 0)
    hl = curl_slist_append(hl, ah);
  if (accept && asprintf(&acc, "Accept: %s", accept) >= 0)
    hl = curl_slist_append(hl, acc);
  errbuf[0] = '\0';
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR,
                   strncmp(url, "http://", 7) == 0 ? "http,https" : "https");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, st->connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, st->stall_timeout_s);
  curl_easy_setopt(c, CURLOPT_USERAGENT,
                   "quark/"
                   "0.1");
  /* libcurl checks the rate limit only between bursts of up to 100 buffer
   * reads: a big buffer would let a fast local transfer finish in one burst. */
  if (st->max_recv_bps > 0) {
    curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)st->max_recv_bps);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 16L * 1024);
  } else {
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 256L * 1024);
  }
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
  if (s->fd >= 0 && s->resume_from > 0)
    curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)s->resume_from);
  if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
  } else if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  }
  CURLcode cc = curl_easy_perform(c);
  *code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all(hl);
  return cc;
}

static bool retryable(CURLcode cc)
{
  switch (cc) {
  case CURLE_COULDNT_CONNECT:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
  case CURLE_PARTIAL_FILE:
  case CURLE_GOT_NOTHING:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
    return true;
  default:
    return false;
  }
}

static void backoff(int attempt)
{
  long ms = 200L << (attempt < 5 ? attempt : 5);
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- authentication ---- */

/* Value of key in a challenge's parameter list (key="value", ...). */
static char *challenge_param(const char *params, const char *key)
{
  size_t kl = strlen(key);
  const char *p = params;
  while (p && *p) {
    while (*p == ' ' || *p == ',')
      p++;
    const char *eq = strchr(p, '=');
    if (!eq)
      return NULL;
    bool match = (size_t)(eq - p) == kl && strncasecmp(p, key, kl) == 0;
    const char *v = eq + 1;
    const char *end;
    char *val;
    if (*v == '"') {
      v++;
      end = strchr(v, '"');
      if (!end)
        return NULL;
      val = strndup(v, (size_t)(end - v));
      end++;
    } else {
      end = v + strcspn(v, ",");
      val = strndup(v, (size_t)(end - v));
    }
    if (match)
      return val;
    free(val);
    p = end;
  }
  return NULL;
}

static char *token_cache_get(img_store *st, const char *key)
{
  char *tok = NULL;
  int64_t now = q_mono_ns();
  pthread_mutex_lock(&st->lock);
  for (size_t i = 0; i < st->n_tokens; i++)
    if (strcmp(st->tokens[i].key, key) == 0 && st->tokens[i].expires_mono_ns > now) {
      tok = strdup(st->tokens[i].token);
      break;
    }
  pthread_mutex_unlock(&st->lock);
  return tok;
}

static void token_cache_put(img_store *st, const char *key, const char *tok, int64_t ttl_s)
{
  int64_t exp = q_mono_ns() + (ttl_s > 10 ? ttl_s - 5 : ttl_s) * 1000000000LL;
  pthread_mutex_lock(&st->lock);
  for (size_t i = 0; i < st->n_tokens; i++)
    if (strcmp(st->tokens[i].key, key) == 0) {
      char *t = strdup(tok);
      if (t) {
        free(st->tokens[i].token);
        st->tokens[i].token = t;
        st->tokens[i].expires_mono_ns = exp;
      }
      goto out;
    }
  struct img_token *nt = realloc(st->tokens, (st->n_tokens + 1) * sizeof(*nt));
  if (nt) {
    st->tokens = nt;
    nt[st->n_tokens].key = strdup(key);
    nt[st->n_tokens].token = strdup(tok);
    nt[st->n_tokens].expires_mono_ns = exp;
    if (nt[st->n_tokens].key && nt[st->n_tokens].token)
      st->n_tokens++;
    else {
      free(nt[st->n_tokens].key);
      free(nt[st->n_tokens].token);
    }
  }
out:
  pthread_mutex_unlock(&st->lock);
}

static int fetch_token(struct img_reg *r, const char *realm, const char *service, const char *scope,
                       q_error **err)
{
  q_cleanup_free char *userpass = auth_userpass(r->auth);
  const char *user = userpass ? userpass : "";
  q_cleanup_free char *key = NULL;
  if (asprintf(&key, "%s|%s|%s|%.*s", realm, service ? service : "", scope, (int)strcspn(user, ":"),
               user) < 0)
    return q_error_make(err, ENOMEM, "token");
  char *cached = token_cache_get(r->st, key);
  if (cached) {
    free(r->authz);
    r->authz = NULL;
    int rc = asprintf(&r->authz, "Bearer %s", cached);
    free(cached);
    return rc < 0 ? q_error_make(err, ENOMEM, "token") : 0;
  }
  CURL *c = r->curl;
  q_cleanup_free char *url = NULL, *form = NULL, *basic_h = NULL;
  char *esc_svc = curl_easy_escape(c, service ? service : "", 0);
  char *esc_scope = curl_easy_escape(c, scope, 0);
  const char *idt = r->auth && r->auth->identity_token && *r->auth->identity_token
                        ? r->auth->identity_token
                        : NULL;
  int rc;
  if (idt) {
    char *esc_tok = curl_easy_escape(c, idt, 0);
    rc = asprintf(&form,
                  "grant_type=refresh_token&client_id=quark&service=%s&scope=%s&refresh_token=%s",
                  esc_svc, esc_scope, esc_tok);
    curl_free(esc_tok);
    url = strdup(realm);
  } else {
    rc = asprintf(&url, "%s%sservice=%s&scope=%s", realm, strchr(realm, '?') ? "&" : "?", esc_svc,
                  esc_scope);
  }
  curl_free(esc_svc);
  curl_free(esc_scope);
  if (rc < 0 || !url)
    return q_error_make(err, ENOMEM, "token");
  if (userpass && !idt) {
    q_cleanup_free char *b = b64_encode(userpass, strlen(userpass));
    if (!b || asprintf(&basic_h, "Basic %s", b) < 0)
      return q_error_make(err, ENOMEM, "token");
  }
  struct sink s = {.fd = -1, .tee_fd = -1, .max = 1 << 20};
  struct hdrs h = {0};
  long code = 0;
  char eb[CURL_ERROR_SIZE];
  CURLcode cc = CURLE_OK;
  for (int attempt = 0;; attempt++) {
    sink_reset(&s);
    hdrs_reset(&h);
    cc =
        perform(r, idt ? "POST" : "GET", url, "application/json", basic_h, form, &s, &h, &code, eb);
    if (cc == CURLE_OK && code < 500)
      break;
    if ((cc != CURLE_OK && !retryable(cc)) || attempt >= r->st->max_retries)
      break;
    backoff(attempt);
  }
  hdrs_reset(&h);
  if (cc != CURLE_OK) {
    free(s.buf);
    return q_error_make(err, ECONNREFUSED, "token server %s: %s", realm,
                        eb[0] ? eb : curl_easy_strerror(cc));
  }
  if (code != 200) {
    free(s.buf);
    return img_error(err, code == 401 || code == 403 ? EACCES : EIO,
                     "token server %s refused %s: HTTP %ld%s", realm, scope, code,
                     userpass || idt ? " (credentials rejected?)" : " (no credentials given)");
  }
  json_error_t je;
  json_t *j = json_loadb(s.buf ? s.buf : "", s.len, 0, &je);
  free(s.buf);
  const char *tok = NULL;
  if (j) {
    tok = json_string_value(json_object_get(j, "token"));
    if (!tok || !*tok)
      tok = json_string_value(json_object_get(j, "access_token"));
  }
  if (!tok || !*tok) {
    json_decref(j);
    return q_error_make(err, EPROTO, "token server %s: no token in the answer", realm);
  }
  json_int_t ttl = json_integer_value(json_object_get(j, "expires_in"));
  token_cache_put(r->st, key, tok, ttl > 0 ? (int64_t)ttl : 60);
  free(r->authz);
  r->authz = NULL;
  rc = asprintf(&r->authz, "Bearer %s", tok);
  json_decref(j);
  return rc < 0 ? q_error_make(err, ENOMEM, "token") : 0;
}

/* Answers a 401 challenge by setting r->authz. */
static int authenticate(struct img_reg *r, const char *challenge, q_error **err)
{
  if (!challenge || !*challenge)
    return q_error_make(err, EACCES, "%s: HTTP 401 without a WWW-Authenticate challenge",
                        r->endpoint);
  if (strncasecmp(challenge, "Basic", 5) == 0) {
    q_cleanup_free char *userpass = auth_userpass(r->auth);
    if (!userpass)
      return img_error(err, EACCES,
                       "%s requires authentication (basic) and no credentials were given",
                       r->endpoint);
    q_cleanup_free char *b = b64_encode(userpass, strlen(userpass));
    free(r->authz);
    r->authz = NULL;
    if (!b || asprintf(&r->authz, "Basic %s", b) < 0)
      return q_error_make(err, ENOMEM, "basic auth");
    return 0;
  }
  if (strncasecmp(challenge, "Bearer", 6) == 0) {
    const char *params = challenge + 6;
    q_cleanup_free char *realm = challenge_param(params, "realm");
    q_cleanup_free char *service = challenge_param(params, "service");
    q_cleanup_free char *scope = challenge_param(params, "scope");
    if (!realm || strncmp(realm, "http", 4) != 0)
      return q_error_make(err, EPROTO, "%s: bearer challenge without a usable realm", r->endpoint);
    if (!scope && asprintf(&scope, "repository:%s:pull", r->repo) < 0)
      return q_error_make(err, ENOMEM, "token");
    int rc = fetch_token(r, realm, service, scope, err);
    if (rc < 0)
      q_error_wrap(err, "authenticate to %s", r->endpoint);
    return rc;
  }
  return q_error_make(err, EPROTO, "%s: unsupported authentication scheme in \"%s\"", r->endpoint,
                      challenge);
}

/* GET with authentication and retries. The caller interprets *code. */
static int reg_get(struct img_reg *r, const char *url, const char *accept, struct sink *s,
                   struct hdrs *h, long *code, q_error **err)
{
  bool auth_done = false, resume = false;
  char eb[CURL_ERROR_SIZE];
  for (int attempt = 0;; attempt++) {
    /* A blob cut off mid-body continues where it stopped (the hash state
     * and the file are kept); anything else starts over. */
    if (!resume) {
      int rc = sink_reset(s);
      if (rc < 0)
        return q_error_make(err, -rc, "reset download of %s", url);
    }
    s->resume_from = resume ? s->done : 0;
    resume = false;
    int rc;
    hdrs_reset(h);
    CURLcode cc = perform(r, "GET", url, accept, r->authz, NULL, s, h, code, eb);
    if (cc == CURLE_OK) {
      if (*code == 401 && !auth_done) {
        auth_done = true;
        rc = authenticate(r, h->www_auth, err);
        if (rc < 0)
          return rc;
        attempt--;
        continue;
      }
      if ((*code >= 500 || *code == 429) && attempt < r->st->max_retries) {
        q_debug(NULL, "GET %s: HTTP %ld, retrying", url, *code);
        backoff(attempt);
        continue;
      }
      return 0;
    }
    if (s->fail_errno)
      return q_error_make(err, s->fail_errno, "GET %s: %s", url, s->fail_msg);
    if (cc == CURLE_RANGE_ERROR && s->resume_from > 0) {
      q_debug(NULL, "GET %s: no byte ranges, starting over", url);
      attempt--;
      continue;
    }
    if (retryable(cc) && attempt < r->st->max_retries) {
      resume = s->fd >= 0 && s->done > 0 && (*code == 200 || *code == 206);
      q_debug(NULL, "GET %s: %s, retrying%s", url, eb[0] ? eb : curl_easy_strerror(cc),
              resume ? " from where it stopped" : "");
      backoff(attempt);
      continue;
    }
    return q_error_make(err,
                        cc == CURLE_COULDNT_CONNECT      ? ECONNREFUSED
                        : cc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT
                                                         : EIO,
                        "GET %s: %s", url, eb[0] ? eb : curl_easy_strerror(cc));
  }
}

static int http_status_error(long code, const char *what, const char *url, q_error **err)
{
  switch (code) {
  case 404:
    return img_error(err, ENOENT, "%s not found (HTTP 404 from %s)", what, url);
  case 401:
  case 403:
    return img_error(err, EACCES, "%s: access denied (HTTP %ld from %s)", what, code, url);
  default:
    return img_error(err, EIO, "%s: HTTP %ld from %s", what, code, url);
  }
}

static void digest_final(EVP_MD_CTX *md, char out[72])
{
  unsigned char d[32];
  unsigned int n = 0;
  EVP_DigestFinal_ex(md, d, &n);
  strcpy(out, "sha256:");
  for (int i = 0; i < 32; i++)
    sprintf(out + 7 + 2 * i, "%02x", d[i]);
}

int img_reg_get_manifest(struct img_reg *r, const char *tag_or_digest, char **body, size_t *len,
                         char **media_type, char **digest, q_error **err)
{
  q_cleanup_free char *url = NULL;
  if (asprintf(&url, "%s/v2/%s/manifests/%s", r->endpoint, r->repo, tag_or_digest) < 0)
    return q_error_make(err, ENOMEM, "manifest");
  struct sink s = {.fd = -1, .tee_fd = -1, .max = IMG_MAX_MANIFEST};
  struct hdrs h = {0};
  long code = 0;
  int rc =
      reg_get(r, url, MT_OCI_INDEX ", " MT_DOCKER_LIST ", " MT_OCI_MANIFEST ", " MT_DOCKER_MANIFEST,
              &s, &h, &code, err);
  if (rc == 0 && code != 200) {
    q_cleanup_free char *what = NULL;
    if (asprintf(&what, "manifest %s:%s", r->repo, tag_or_digest) < 0)
      what = NULL;
    rc = http_status_error(code, what ? what : "manifest", url, err);
  }
  if (rc < 0) {
    free(s.buf);
    hdrs_reset(&h);
    return rc;
  }
  char got[72];
  img_sha256_hex(s.buf ? s.buf : "", s.len, got);
  const char *want = img_valid_digest(tag_or_digest) ? tag_or_digest : h.docker_digest;
  if (want && img_valid_digest(want) && strcmp(want, got) != 0) {
    rc = img_error(err, EBADMSG, "manifest %s:%s from %s: content digest %s does not match %s",
                   r->repo, tag_or_digest, r->endpoint, got, want);
    free(s.buf);
    hdrs_reset(&h);
    return rc;
  }
  /* Content-Type may carry parameters; registries that do not know the
   * type answer a generic one: then the mediaType field decides. */
  char *mt = NULL;
  if (h.content_type) {
    h.content_type[strcspn(h.content_type, ";")] = '\0';
    if (strcmp(h.content_type, "application/json") != 0 &&
        strcmp(h.content_type, "application/octet-stream") != 0 && *h.content_type)
      mt = strdup(h.content_type);
  }
  hdrs_reset(&h);
  *body = s.buf ? s.buf : strdup("");
  *len = s.len;
  *media_type = mt;
  *digest = strdup(got);
  return 0;
}

int img_reg_get_blob_mem(struct img_reg *r, const char *digest, size_t max, char **body,
                         size_t *len, q_error **err)
{
  q_cleanup_free char *url = NULL;
  if (asprintf(&url, "%s/v2/%s/blobs/%s", r->endpoint, r->repo, digest) < 0)
    return q_error_make(err, ENOMEM, "blob");
  struct sink s = {.fd = -1, .tee_fd = -1, .max = max};
  struct hdrs h = {0};
  long code = 0;
  int rc = reg_get(r, url, NULL, &s, &h, &code, err);
  hdrs_reset(&h);
  if (rc == 0 && code != 200)
    rc = http_status_error(code, digest, url, err);
  if (rc < 0) {
    free(s.buf);
    return rc;
  }
  char got[72];
  img_sha256_hex(s.buf ? s.buf : "", s.len, got);
  if (strcmp(got, digest) != 0) {
    free(s.buf);
    return img_error(err, EBADMSG, "blob %s from %s: content digest mismatch (got %s)", digest,
                     r->endpoint, got);
  }
  *body = s.buf ? s.buf : strdup("");
  *len = s.len;
  return 0;
}

int img_reg_fetch_blob(struct img_reg *r, const char *digest, int64_t size,
                       img_reg_progress progress, void *arg, int tee_fd, bool *tee_complete,
                       q_error **err)
{
  q_cleanup_free char *url = NULL;
  q_cleanup_free char *tmp = img_tmp_path(r->st, "blob");
  q_cleanup_free char *dst = img_blob_path(r->st, digest);
  if (!tmp || !dst || asprintf(&url, "%s/v2/%s/blobs/%s", r->endpoint, r->repo, digest) < 0)
    return q_error_make(err, ENOMEM, "blob");
  int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    return q_error_make(err, errno, "create %s", tmp);
  struct sink s = {.fd = fd,
                   .md = EVP_MD_CTX_new(),
                   .total = size,
                   .progress = progress,
                   .parg = arg,
                   .tee_fd = tee_fd,
                   .curl = r->curl};
  struct hdrs h = {0};
  long code = 0;
  int rc = s.md ? reg_get(r, url, NULL, &s, &h, &code, err) : q_error_make(err, ENOMEM, "sha256");
  hdrs_reset(&h);
  if (rc == 0 && code != 200 && code != 206)
    rc = http_status_error(code, digest, url, err);
  if (rc == 0) {
    char got[72];
    digest_final(s.md, got);
    if (size > 0 && s.done != size)
      rc = img_error(err, EBADMSG, "blob %s from %s: got %lld bytes, the manifest gives %lld",
                     digest, r->endpoint, (long long)s.done, (long long)size);
    else if (strcmp(got, digest) != 0)
      rc = img_error(err, EBADMSG, "blob %s from %s: content digest mismatch (got %s)", digest,
                     r->endpoint, got);
  }
  if (rc == 0 && fsync(fd) < 0)
    rc = q_error_make(err, errno, "fsync %s", tmp);
  close(fd);
  EVP_MD_CTX_free(s.md);
  if (rc == 0 && rename(tmp, dst) < 0)
    rc = q_error_make(err, errno, "rename %s to %s", tmp, dst);
  if (rc < 0)
    unlink(tmp);
  if (tee_complete)
    *tee_complete = rc == 0 && tee_fd >= 0 && !s.tee_broken && s.teed == s.done;
  return rc;
}
