/* Image reference parsing and normalization, following the rules of the
 * distribution "reference" grammar that kubelet and crictl apply:
 * a first component with a '.' or ':' or equal to "localhost" is a registry
 * domain, otherwise the domain is docker.io; docker.io names with one
 * component live under "library/"; no tag and no digest means ":latest". */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

static bool is_alnum_lower(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* path-component: [a-z0-9]+ (separator [a-z0-9]+)* with separators ".", "_",
 * "__" or one or more "-". */
static bool valid_component(const char *s, size_t n)
{
  if (n == 0 || !is_alnum_lower(s[0]) || !is_alnum_lower(s[n - 1]))
    return false;
  for (size_t i = 0; i < n; i++) {
    if (is_alnum_lower(s[i]))
      continue;
    if (s[i] == '.' || s[i] == '_') {
      if (s[i] == '_' && i + 1 < n && s[i + 1] == '_')
        i++;
      if (i + 1 >= n || !is_alnum_lower(s[i + 1]))
        return false;
    } else if (s[i] == '-') {
      while (i + 1 < n && s[i + 1] == '-')
        i++;
      if (i + 1 >= n || !is_alnum_lower(s[i + 1]))
        return false;
    } else {
      return false;
    }
  }
  return true;
}

static bool valid_path(const char *p)
{
  const char *s = p;
  while (1) {
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (!valid_component(s, n))
      return false;
    if (!slash)
      return true;
    s = slash + 1;
  }
}

static bool valid_domain(const char *d)
{
  if (*d == '\0')
    return false;
  for (const char *c = d; *c; c++)
    if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-' && *c != ':' && *c != '[' &&
        *c != ']')
      return false;
  return true;
}

static bool valid_tag(const char *t)
{
  size_t n = strlen(t);
  if (n == 0 || n > 128)
    return false;
  if (!isalnum((unsigned char)t[0]) && t[0] != '_')
    return false;
  for (size_t i = 1; i < n; i++)
    if (!isalnum((unsigned char)t[i]) && t[i] != '_' && t[i] != '.' && t[i] != '-')
      return false;
  return true;
}

bool img_valid_digest(const char *d)
{
  if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 7 + 64)
    return false;
  for (const char *c = d + 7; *c; c++)
    if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
      return false;
  return true;
}

void img_ref_free(img_ref *ref)
{
  if (!ref)
    return;
  free(ref->domain);
  free(ref->path);
  free(ref->tag);
  free(ref->digest);
  memset(ref, 0, sizeof(*ref));
}

int img_ref_parse(const char *s, img_ref *out, q_error **err)
{
  memset(out, 0, sizeof(*out));
  if (s == NULL || *s == '\0')
    return q_error_make(err, EINVAL, "empty image reference");
  if (strlen(s) > 4096)
    return q_error_make(err, EINVAL, "image reference too long");
  q_cleanup_free char *buf = strdup(s);
  if (!buf)
    return q_error_make(err, ENOMEM, "parse image reference");
  char *at = strchr(buf, '@');
  if (at) {
    *at = '\0';
    if (!img_valid_digest(at + 1))
      return q_error_make(err, EINVAL, "image reference \"%s\": invalid digest \"%s\"", s, at + 1);
  }
  char *name = buf;
  char *slash = strchr(name, '/');
  char *colon = strrchr(name, ':');
  char *tag = NULL;
  if (colon && (!slash || colon > strrchr(name, '/'))) {
    *colon = '\0';
    tag = colon + 1;
    if (!valid_tag(tag))
      return q_error_make(err, EINVAL, "image reference \"%s\": invalid tag \"%s\"", s, tag);
  }
  const char *domain = "docker.io";
  const char *path = name;
  slash = strchr(name, '/');
  if (slash) {
    *slash = '\0';
    if (strchr(name, '.') || strchr(name, ':') || strcmp(name, "localhost") == 0 ||
        (name[0] && isupper((unsigned char)name[0]))) {
      domain = name;
      path = slash + 1;
    } else {
      *slash = '/';
    }
  }
  if (strcmp(domain, "index.docker.io") == 0)
    domain = "docker.io";
  if (!valid_domain(domain))
    return q_error_make(err, EINVAL, "image reference \"%s\": invalid registry \"%s\"", s, domain);
  if (!valid_path(path))
    return q_error_make(err, EINVAL,
                        "image reference \"%s\": invalid repository \"%s\" (lowercase letters, "
                        "digits and separators only)",
                        s, path);
  bool library = strcmp(domain, "docker.io") == 0 && !strchr(path, '/');
  if (asprintf(&out->path, "%s%s", library ? "library/" : "", path) < 0) {
    out->path = NULL;
    return q_error_make(err, ENOMEM, "parse image reference");
  }
  out->domain = strdup(domain);
  if (tag || !at)
    out->tag = strdup(tag ? tag : "latest");
  if (at)
    out->digest = strdup(at + 1);
  if (!out->domain || (!out->tag && (tag || !at)) || (at && !out->digest)) {
    img_ref_free(out);
    return q_error_make(err, ENOMEM, "parse image reference");
  }
  return 0;
}

char *img_ref_name(const img_ref *ref)
{
  char *s = NULL;
  if (asprintf(&s, "%s/%s", ref->domain, ref->path) < 0)
    return NULL;
  return s;
}

char *img_ref_string(const img_ref *ref)
{
  char *s = NULL;
  int rc;
  if (ref->tag)
    rc = asprintf(&s, "%s/%s:%s", ref->domain, ref->path, ref->tag);
  else
    rc = asprintf(&s, "%s/%s@%s", ref->domain, ref->path, ref->digest);
  return rc < 0 ? NULL : s;
}
