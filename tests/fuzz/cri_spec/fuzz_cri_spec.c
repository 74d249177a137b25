/* Fuzzer: the container process quarkd builds from a CreateContainer request
 * and the image (cri/ctr_spec.c): the user/group resolution over an image's
 * own /etc/passwd and /etc/group, argv (command/args over entrypoint/cmd),
 * env merging, exec size limits and mount path checks.
 *
 * Input: selector byte, then NUL-separated fields; a field that is exactly
 * "\x01" closes a list (argv and env take several lists).
 *   0  user: fields user, passwd text, group text; the two texts become
 *      <scratch rootfs>/etc/passwd and /etc/group.
 *      Checks: a user that resolves names an id found in passwd (or is
 *      numeric), groups fit in what /etc/group lists.
 *   1  argv: lists command, args, entrypoint, cmd. Checks: the result is
 *      not empty and follows Kubernetes' rule (command replaces entrypoint
 *      and cmd; args replace cmd); then cri_spec_check_size on it.
 *   2  env: lists image env, keys, values. Checks: every key's first
 *      "key=" entry holds the last value given for it.
 *   3  mount: fields container path, host path. Checks: an accepted
 *      container path is absolute with no ".." component.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "pods.h"

#define MAX_FIELDS 64

static const char *rootfs;
static int rootfd;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  q_log_set_level(Q_LOG_OFF);
  rootfs = fuzz_tmpdir("spec");
  rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  FUZZ_CHECK(rootfd >= 0 && mkdirat(rootfd, "etc", 0755) == 0, "rootfs");
  return 0;
}

struct lists {
  char *v[8][MAX_FIELDS + 1]; /* NULL-terminated */
  size_t n[8];
  size_t count;
};

/* Splits s[0..len) at NULs into fields, grouped into lists at "\x01". */
static void split(char *s, size_t len, struct lists *l)
{
  memset(l, 0, sizeof(*l));
  l->count = 1;
  for (size_t i = 0; i < len;) {
    char *f = s + i;
    i += strlen(f) + 1;
    if (!strcmp(f, "\x01")) {
      if (l->count < 8)
        l->count++;
      continue;
    }
    size_t k = l->count - 1;
    if (l->n[k] < MAX_FIELDS)
      l->v[k][l->n[k]++] = f;
  }
}

static void fuzz_user(struct lists *l)
{
  char **f = l->v[0];
  const char *user = l->n[0] > 0 ? f[0] : "";
  const char *passwd = l->n[0] > 1 ? f[1] : "";
  const char *group = l->n[0] > 2 ? f[2] : "";
  fuzz_write_file(rootfd, "etc/passwd", passwd, strlen(passwd), 0644);
  fuzz_write_file(rootfd, "etc/group", group, strlen(group), 0644);
  uint32_t uid, gid, *groups = NULL;
  size_t n_groups = 0;
  q_error *err = NULL;
  if (cri_spec_user(rootfs, user, &uid, &gid, &groups, &n_groups, &err) == 0) {
    size_t lines = 1;
    for (const char *p = group; *p; p++)
      lines += *p == '\n';
    FUZZ_CHECK(n_groups <= lines, "%zu supplementary groups from %zu group lines", n_groups, lines);
    FUZZ_CHECK(n_groups == 0 || groups, "groups missing");
  } else {
    FUZZ_CHECK(err, "failure without an error message");
  }
  free(groups);
  q_error_free(&err);
}

static bool same_strv(char *const *a, char *const *b, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!a[i] || !b[i] || strcmp(a[i], b[i]))
      return false;
  return true;
}

static void fuzz_argv(struct lists *l)
{
  char **out = NULL;
  q_error *err = NULL;
  char **entry = l->n[2] ? l->v[2] : NULL, **cmd = l->n[3] ? l->v[3] : NULL;
  if (cri_spec_argv(l->v[0], l->n[0], l->v[1], l->n[1], entry, cmd, &out, &err) == 0) {
    size_t n = cri_spec_strv_len(out);
    FUZZ_CHECK(n > 0, "empty argv accepted");
    /* Kubernetes: the first words come from command, else from entrypoint. */
    if (l->n[0])
      FUZZ_CHECK(n >= l->n[0] && same_strv(out, l->v[0], l->n[0]), "command not first");
    else if (entry)
      FUZZ_CHECK(n >= l->n[2] && same_strv(out, l->v[2], l->n[2]), "entrypoint not first");
    char *env[] = {NULL};
    if (cri_spec_check_size(out, env, &err) < 0)
      FUZZ_CHECK(err, "size failure without an error message");
    cri_spec_strv_free(out);
  } else {
    FUZZ_CHECK(err, "failure without an error message");
  }
  q_error_free(&err);
}

static void fuzz_env(struct lists *l)
{
  size_t n = l->n[1] < l->n[2] ? l->n[1] : l->n[2];
  char **out = NULL;
  q_error *err = NULL;
  if (cri_spec_env(l->n[0] ? l->v[0] : NULL, l->v[1], l->v[2], n, &out, &err) == 0) {
    for (size_t i = 0; i < n; i++) {
      const char *k = l->v[1][i], *want = NULL;
      for (size_t j = 0; j < n; j++)
        if (!strcmp(l->v[1][j], k))
          want = l->v[2][j];
      size_t klen = strlen(k);
      const char *got = NULL;
      for (size_t j = 0; out[j] && !got; j++)
        if (!strncmp(out[j], k, klen) && out[j][klen] == '=')
          got = out[j] + klen + 1;
      FUZZ_CHECK(got && !strcmp(got, want), "env %s: got %s, want %s", k, got ? got : "(none)",
                 want);
    }
    cri_spec_strv_free(out);
  } else {
    FUZZ_CHECK(err, "failure without an error message");
  }
  q_error_free(&err);
}

static void fuzz_mount(struct lists *l)
{
  const char *c = l->n[0] > 0 ? l->v[0][0] : NULL, *h = l->n[0] > 1 ? l->v[0][1] : NULL;
  q_error *err = NULL;
  if (cri_spec_check_mount(c, h, &err) == 0) {
    FUZZ_CHECK(c[0] == '/', "relative container path accepted");
    char *copy = strdup(c), *save = NULL;
    for (char *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save))
      FUZZ_CHECK(strcmp(t, ".."), "container path \"%s\" with \"..\" accepted", c);
    free(copy);
  } else {
    FUZZ_CHECK(err, "failure without an error message");
  }
  q_error_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
  if (len < 1)
    return 0;
  int fds = fuzz_fd_count();
  char *s = fuzz_strndup(data + 1, len - 1);
  struct lists l;
  split(s, len - 1, &l);
  switch (data[0] % 4) {
  case 0:
    fuzz_user(&l);
    break;
  case 1:
    fuzz_argv(&l);
    break;
  case 2:
    fuzz_env(&l);
    break;
  case 3:
    fuzz_mount(&l);
    break;
  }
  free(s);
  FUZZ_CHECK_FDS(fds);
  return 0;
}
