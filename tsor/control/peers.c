/* Peer table: which node owns which pod CIDR and where its tsord listens.
 * Source here: a static JSON file (the default on one machine and in
 * tests). */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quark/tsor.h"

static uint32_t mask_of(uint8_t len) { return len == 0 ? 0 : htonl(~0u << (32 - len)); }

int tsor_parse_cidr(const char *s, uint32_t *addr, uint8_t *len)
{
  char buf[32];
  const char *slash = strchr(s, '/');
  if (slash == NULL || (size_t)(slash - s) >= sizeof(buf)) return -EINVAL;
  memcpy(buf, s, (size_t)(slash - s));
  buf[slash - s] = '\0';
  struct in_addr a;
  if (inet_pton(AF_INET, buf, &a) != 1) return -EINVAL;
  char *end;
  errno = 0;
  long l = strtol(slash + 1, &end, 10);
  if (errno || *end != '\0' || end == slash + 1 || l < 0 || l > 32) return -EINVAL;
  if ((a.s_addr & ~mask_of((uint8_t)l)) != 0) return -EINVAL; /* host bits set */
  *addr = a.s_addr;
  *len = (uint8_t)l;
  return 0;
}

int tsor_parse_hostport(const char *s, struct sockaddr_in *out)
{
  char buf[32];
  const char *colon = strrchr(s, ':');
  if (colon == NULL || (size_t)(colon - s) >= sizeof(buf)) return -EINVAL;
  memcpy(buf, s, (size_t)(colon - s));
  buf[colon - s] = '\0';
  memset(out, 0, sizeof(*out));
  out->sin_family = AF_INET;
  if (inet_pton(AF_INET, buf, &out->sin_addr) != 1) return -EINVAL;
  char *end;
  errno = 0;
  long p = strtol(colon + 1, &end, 10);
  if (errno || *end != '\0' || end == colon + 1 || p <= 0 || p > 65535) return -EINVAL;
  out->sin_port = htons((uint16_t)p);
  return 0;
}

void tsor_peers_free(struct tsor_peers *p)
{
  for (size_t i = 0; i < p->n; i++) {
    free(p->v[i].name);
    free(p->v[i].address);
  }
  free(p->v);
  p->v = NULL;
  p->n = 0;
}

static bool overlap(const struct tsor_peer *a, const struct tsor_peer *b)
{
  uint8_t l = a->cidr_len < b->cidr_len ? a->cidr_len : b->cidr_len;
  return ((a->cidr_addr ^ b->cidr_addr) & mask_of(l)) == 0;
}

int tsor_peers_parse(const char *text, struct tsor_peers *out, q_error **err)
{
  json_error_t je;
  memset(out, 0, sizeof(*out));
  json_t *root = json_loads(text, 0, &je);
  if (root == NULL) return q_error_make(err, EINVAL, "peers: line %d: %s", je.line, je.text);
  int r = 0;
  json_t *nodes = json_object_get(root, "Nodes");
  if (!json_is_array(nodes)) {
    r = q_error_make(err, EINVAL, "peers: \"Nodes\" must be an array");
    goto out;
  }
  size_t n = json_array_size(nodes);
  out->v = calloc(n ? n : 1, sizeof(*out->v));
  if (out->v == NULL) {
    r = q_error_make(err, ENOMEM, "peers");
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(nodes, i);
    const char *name = json_string_value(json_object_get(e, "Name"));
    const char *cidr = json_string_value(json_object_get(e, "PodCIDR"));
    const char *addr = json_string_value(json_object_get(e, "Address"));
    if (name == NULL || cidr == NULL || addr == NULL || name[0] == '\0') {
      r = q_error_make(err, EINVAL, "peers: node %zu needs string Name, PodCIDR and Address", i);
      goto out;
    }
    struct tsor_peer *p = &out->v[out->n];
    struct sockaddr_in sa;
    if (tsor_parse_cidr(cidr, &p->cidr_addr, &p->cidr_len) < 0) {
      r = q_error_make(err, EINVAL, "peers: node %s: bad PodCIDR \"%s\"", name, cidr);
      goto out;
    }
    if (tsor_parse_hostport(addr, &sa) < 0) {
      r = q_error_make(err, EINVAL, "peers: node %s: bad Address \"%s\" (want ip:port)", name, addr);
      goto out;
    }
    if (strlen(name) > 31) {
      r = q_error_make(err, EINVAL, "peers: node name \"%s\" longer than 31 bytes", name);
      goto out;
    }
    for (size_t j = 0; j < out->n; j++) {
      if (strcmp(out->v[j].name, name) == 0) {
        r = q_error_make(err, EINVAL, "peers: node %s listed twice", name);
        goto out;
      }
      if (overlap(&out->v[j], p)) {
        r = q_error_make(err, EINVAL, "peers: PodCIDR of %s overlaps that of %s", name, out->v[j].name);
        goto out;
      }
    }
    p->name = strdup(name);
    p->address = strdup(addr);
    out->n++;
    if (p->name == NULL || p->address == NULL) {
      r = q_error_make(err, ENOMEM, "peers");
      goto out;
    }
  }
out:
  json_decref(root);
  if (r < 0) tsor_peers_free(out);
  return r;
}

int tsor_peers_load(const char *path, struct tsor_peers *out, q_error **err)
{
  q_cleanup_free char *text = NULL;
  size_t len;
  int r = q_read_file(path, 1 << 20, &text, &len, err);
  if (r < 0) return q_error_wrap(err, "peers file %s", path);
  r = tsor_peers_parse(text, out, err);
  if (r < 0) return q_error_wrap(err, "%s", path);
  return 0;
}

const struct tsor_peer *tsor_peers_lookup(const struct tsor_peers *p, uint32_t addr)
{
  for (size_t i = 0; i < p->n; i++)
    if (((addr ^ p->v[i].cidr_addr) & mask_of(p->v[i].cidr_len)) == 0) return &p->v[i];
  return NULL;
}

const struct tsor_peer *tsor_peers_find(const struct tsor_peers *p, const char *name)
{
  for (size_t i = 0; i < p->n; i++)
    if (strcmp(p->v[i].name, name) == 0) return &p->v[i];
  return NULL;
}
