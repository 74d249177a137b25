/* Parsing of the guest security settings (guest_sec.h). */
#include "guest_sec.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../guestkernel/abi/qk_abi.h"

_Static_assert(SBX_SEC_MAX_GROUPS == QK_SEC_MAX_GROUPS, "group limits agree");

static int check_prog(struct sbx_guest_sec *s, void *buf, size_t bytes, q_error **err)
{
  if (bytes == 0 || bytes % 8 || bytes / 8 > QK_SEC_MAX_FILTER) {
    free(buf);
    return q_error_make(err, EINVAL, "seccomp program: %zu bytes, want 8..%u in steps of 8", bytes,
                        QK_SEC_MAX_FILTER * 8);
  }
  free(s->bpf);
  s->bpf = buf;
  s->bpf_len = bytes / 8;
  return 0;
}

static int read_file(struct sbx_guest_sec *s, const char *path, q_error **err)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return q_error_make(err, errno, "seccomp program %s", path);
  size_t cap = QK_SEC_MAX_FILTER * 8 + 1, n = 0;
  char *buf = malloc(cap);
  if (!buf) {
    close(fd);
    return q_error_make(err, ENOMEM, "seccomp program");
  }
  for (;;) {
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      int e = errno;
      free(buf);
      close(fd);
      return q_error_make(err, e, "read %s", path);
    }
    if (r == 0 || (n += (size_t)r) == cap)
      break;
  }
  close(fd);
  return check_prog(s, buf, n, err);
}

static int hexval(char c)
{
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

static int parse_u32(const char *s, char **end, uint32_t *out)
{
  errno = 0;
  unsigned long long v = strtoull(s, end, 10);
  if (errno || *end == s || v > UINT32_MAX || *s == '-')
    return -1;
  *out = (uint32_t)v;
  return 0;
}

int sbx_guest_sec_opt(struct sbx_guest_sec *s, const char *name, const char *value, q_error **err)
{
  if (!strcmp(name, "no-new-privs")) {
    s->flags |= QK_SEC_NO_NEW_PRIVS;
    return 0;
  }
  if (!strcmp(name, "read-only-root")) { /* readOnlyRootFilesystem: the guest answers EROFS */
    s->flags |= QK_SEC_RO_ROOT;
    return 0;
  }
  if (!value)
    return q_error_make(err, EINVAL, "%s: a value is needed", name);
  if (!strcmp(name, "seccomp-bpf"))
    return read_file(s, value, err);
  if (!strcmp(name, "seccomp-hex")) {
    size_t len = strlen(value);
    if (len % 2)
      return q_error_make(err, EINVAL, "seccomp program: odd hex length");
    unsigned char *buf = malloc(len / 2 + 1);
    if (!buf)
      return q_error_make(err, ENOMEM, "seccomp program");
    for (size_t i = 0; i < len / 2; i++) {
      int hi = hexval(value[2 * i]), lo = hexval(value[2 * i + 1]);
      if (hi < 0 || lo < 0) {
        free(buf);
        return q_error_make(err, EINVAL, "seccomp program: not hex at %zu", 2 * i);
      }
      buf[i] = (unsigned char)(hi << 4 | lo);
    }
    return check_prog(s, buf, len / 2, err);
  }
  if (!strcmp(name, "caps")) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 16);
    if (errno || end == value || *end || (v >> 41))
      return q_error_make(err, EINVAL, "caps '%s': a hex set of capabilities 0..40 wanted", value);
    s->caps = v;
    s->flags |= QK_SEC_CAPS;
    return 0;
  }
  if (!strcmp(name, "groups")) {
    s->ngroups = 0;
    s->flags |= QK_SEC_GROUPS;
    const char *p = value;
    while (*p) {
      char *end;
      uint32_t g;
      if (s->ngroups == SBX_SEC_MAX_GROUPS || parse_u32(p, &end, &g) < 0 || (*end && *end != ','))
        return q_error_make(err, EINVAL, "groups '%s': at most %d ids, comma separated", value,
                            SBX_SEC_MAX_GROUPS);
      s->groups[s->ngroups++] = g;
      p = *end ? end + 1 : end;
    }
    return 0;
  }
  if (!strcmp(name, "user")) {
    char *end;
    if (parse_u32(value, &end, &s->uid) < 0 || (*end && *end != ':'))
      return q_error_make(err, EINVAL, "user '%s': UID[:GID] wanted", value);
    s->gid = s->uid;
    if (*end == ':' && (parse_u32(end + 1, &end, &s->gid) < 0 || *end))
      return q_error_make(err, EINVAL, "user '%s': UID[:GID] wanted", value);
    s->have_user = true;
    return 0;
  }
  return q_error_make(err, EINVAL, "unknown security option %s", name);
}

void sbx_guest_sec_free(struct sbx_guest_sec *s)
{
  free(s->bpf);
  s->bpf = NULL;
  s->bpf_len = 0;
}

int sbx_guest_sec_from_json(struct sbx_guest_sec *s, json_t *req, q_error **err)
{
  json_t *groups = json_object_get(req, "groups"), *v;
  size_t i;
  if (groups && (!json_is_array(groups) || json_array_size(groups) > SBX_SEC_MAX_GROUPS))
    return q_error_make(err, EINVAL, "groups: an array of at most %d ids wanted",
                        SBX_SEC_MAX_GROUPS);
  json_array_foreach(groups, i, v)
  {
    json_int_t g = json_integer_value(v);
    if (!json_is_integer(v) || g < 0 || g > UINT32_MAX)
      return q_error_make(err, EINVAL, "groups[%zu]: a gid wanted", i);
    s->groups[s->ngroups++] = (uint32_t)g;
  }
  if (groups)
    s->flags |= QK_SEC_GROUPS;
  json_t *caps = json_object_get(req, "caps");
  if (caps && !json_is_null(caps)) {
    int r = sbx_guest_sec_opt(s, "caps", json_string_value(caps), err);
    if (r < 0)
      return r;
  }
  if (json_is_true(json_object_get(req, "no_new_privs")))
    s->flags |= QK_SEC_NO_NEW_PRIVS;
  if (json_is_true(json_object_get(req, "readonly_rootfs")))
    s->flags |= QK_SEC_RO_ROOT;
  const char *hex = json_string_value(json_object_get(req, "seccomp"));
  return hex && *hex ? sbx_guest_sec_opt(s, "seccomp-hex", hex, err) : 0;
}
