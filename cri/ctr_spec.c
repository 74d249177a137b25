/* The container process from a CRI ContainerConfig and the image config:
 * argv, env, user and groups, mount checks, and the writable-layer walk for
 * stats. Pure functions over their inputs and the rootfs, so that units can
 * test them without a daemon. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "pods.h"

#define ARG_STRLEN_MAX (128 * 1024) /* Linux MAX_ARG_STRLEN */
#define ARGS_TOTAL_MAX (2 * 1024 * 1024)

void cri_spec_strv_free(char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free(v[i]);
  free(v);
}

size_t cri_spec_strv_len(char *const *v)
{
  size_t n = 0;
  while (v && v[n])
    n++;
  return n;
}

static int strv_push(char ***v, size_t *n, const char *s)
{
  char **nv = realloc(*v, (*n + 2) * sizeof(char *));
  if (!nv)
    return -ENOMEM;
  *v = nv;
  if (!(nv[*n] = strdup(s)))
    return -ENOMEM;
  nv[++*n] = NULL;
  return 0;
}

int cri_spec_argv(char *const *command, size_t n_command, char *const *args, size_t n_args,
                  char *const *img_entrypoint, char *const *img_cmd, char ***out, q_error **err)
{
  char **v = NULL;
  size_t n = 0;
  int r = 0;
  if (n_command) {
    for (size_t i = 0; r == 0 && i < n_command; i++)
      r = strv_push(&v, &n, command[i]);
    for (size_t i = 0; r == 0 && i < n_args; i++)
      r = strv_push(&v, &n, args[i]);
  } else {
    for (size_t i = 0; r == 0 && img_entrypoint && img_entrypoint[i]; i++)
      r = strv_push(&v, &n, img_entrypoint[i]);
    if (n_args)
      for (size_t i = 0; r == 0 && i < n_args; i++)
        r = strv_push(&v, &n, args[i]);
    else
      for (size_t i = 0; r == 0 && img_cmd && img_cmd[i]; i++)
        r = strv_push(&v, &n, img_cmd[i]);
  }
  if (r < 0) {
    cri_spec_strv_free(v);
    return q_error_make(err, ENOMEM, "container command");
  }
  if (n == 0 || !v[0][0]) {
    cri_spec_strv_free(v);
    return q_error_make(err, EINVAL,
                        "no command to run: the config has no command and the image no "
                        "entrypoint or cmd");
  }
  *out = v;
  return 0;
}

int cri_spec_env(char *const *img_env, char *const *keys, char *const *values, size_t n_cfg,
                 char ***out, q_error **err)
{
  char **v = NULL;
  size_t n = 0;
  for (size_t i = 0; img_env && img_env[i]; i++)
    if (strv_push(&v, &n, img_env[i]) < 0)
      goto oom;
  for (size_t i = 0; i < n_cfg; i++) {
    const char *k = keys[i] ? keys[i] : "", *val = values[i] ? values[i] : "";
    if (!*k || strchr(k, '=')) {
      cri_spec_strv_free(v);
      return q_error_make(err, EINVAL, "env key '%.64s' is empty or contains '='", k);
    }
    char *kv;
    if (asprintf(&kv, "%s=%s", k, val) < 0)
      goto oom;
    size_t klen = strlen(k);
    size_t j = 0;
    while (j < n && !(strncmp(v[j], k, klen) == 0 && v[j][klen] == '='))
      j++;
    if (j < n) {
      free(v[j]);
      v[j] = kv;
    } else {
      int r = strv_push(&v, &n, kv);
      free(kv);
      if (r < 0)
        goto oom;
    }
  }
  if (!v && !(v = calloc(1, sizeof(char *))))
    goto oom;
  *out = v;
  return 0;
oom:
  cri_spec_strv_free(v);
  return q_error_make(err, ENOMEM, "container env");
}

int cri_spec_check_size(char *const *argv, char *const *env, q_error **err)
{
  size_t total = 0;
  char *const *lists[2] = {argv, env};
  static const char *const names[2] = {"argument", "env entry"};
  for (int l = 0; l < 2; l++)
    for (size_t i = 0; lists[l] && lists[l][i]; i++) {
      size_t len = strlen(lists[l][i]) + 1;
      if (len > ARG_STRLEN_MAX)
        return q_error_make(err, E2BIG,
                            "%s %zu ('%.32s...') is %zu bytes, over Linux's limit of %d", names[l],
                            i, lists[l][i], len - 1, ARG_STRLEN_MAX);
      total += len + sizeof(char *);
    }
  if (total > ARGS_TOTAL_MAX)
    return q_error_make(err, E2BIG,
                        "arguments and environment take %zu bytes, over the %d-byte limit", total,
                        ARGS_TOTAL_MAX);
  return 0;
}

/* Reads <rootfs>/<path> without leaving the rootfs (symlinks resolved inside
 * it). A missing file gives -ENOENT and an empty text. */
static int read_in_root(const char *rootfs, const char *path, char **out)
{
  *out = NULL;
  q_cleanup_close int dfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return -errno;
  struct open_how how = {.flags = O_RDONLY | O_CLOEXEC,
                         .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  q_cleanup_close int fd = (int)syscall(SYS_openat2, dfd, path, &how, sizeof(how));
  if (fd < 0)
    return -errno;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf)
      return -ENOMEM;
    if (len + 1 >= cap) {
      if (cap >= (4u << 20)) /* a passwd file this big is not one */
        break;
      char *nb = realloc(buf, cap *= 2);
      if (!nb) {
        free(buf);
        return -ENOMEM;
      }
      buf = nb;
    }
    ssize_t n = read(fd, buf + len, cap - len - 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  buf[len] = '\0';
  *out = buf;
  return 0;
}

static bool parse_id(const char *s, uint32_t *out)
{
  if (!*s)
    return false;
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (*end || errno || v > UINT32_MAX || s[0] == '-')
    return false;
  *out = (uint32_t)v;
  return true;
}

/* Splits a passwd/group line into at most n ':'-separated fields in place. */
static size_t split_fields(char *line, char **f, size_t n)
{
  size_t k = 0;
  f[k++] = line;
  for (char *p = line; *p && k < n; p++)
    if (*p == ':') {
      *p = '\0';
      f[k++] = p + 1;
    }
  return k;
}

int cri_spec_user(const char *rootfs, const char *user, uint32_t *uid, uint32_t *gid,
                  uint32_t **groups, size_t *n_groups, q_error **err)
{
  *uid = 0;
  *gid = 0;
  *groups = NULL;
  *n_groups = 0;
  q_cleanup_free char *spec = strdup(user && *user ? user : "0");
  if (!spec)
    return q_error_make(err, ENOMEM, "user");
  char *grp = strchr(spec, ':');
  if (grp)
    *grp++ = '\0';
  const char *uname = spec;

  q_cleanup_free char *passwd = NULL, *group = NULL;
  read_in_root(rootfs, "/etc/passwd", &passwd);
  read_in_root(rootfs, "/etc/group", &group);

  bool uid_numeric = parse_id(uname, uid), found_user = false;
  const char *user_name = NULL;
  char *save = NULL;
  for (char *line = passwd ? strtok_r(passwd, "\n", &save) : NULL; line;
       line = strtok_r(NULL, "\n", &save)) {
    char *f[7];
    uint32_t pu, pg;
    if (split_fields(line, f, 7) < 4 || !parse_id(f[2], &pu) || !parse_id(f[3], &pg))
      continue;
    if (uid_numeric ? pu == *uid : strcmp(f[0], uname) == 0) {
      *uid = pu;
      *gid = pg;
      user_name = f[0];
      found_user = true;
      break;
    }
  }
  if (!uid_numeric && !found_user)
    return q_error_make(err, EINVAL, "user '%s' not found in the image's /etc/passwd", uname);
  /* A group given explicitly replaces the primary group of passwd. */
  if (grp && *grp && !parse_id(grp, gid)) {
    bool found = false;
    q_cleanup_free char *copy = group ? strdup(group) : NULL;
    save = NULL;
    for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line && !found;
         line = strtok_r(NULL, "\n", &save)) {
      char *f[4];
      uint32_t g;
      if (split_fields(line, f, 4) >= 3 && strcmp(f[0], grp) == 0 && parse_id(f[2], &g)) {
        *gid = g;
        found = true;
      }
    }
    if (!found)
      return q_error_make(err, EINVAL, "group '%s' not found in the image's /etc/group", grp);
  }
  /* Supplementary groups: every group that lists the user by name. */
  if (user_name && group) {
    save = NULL;
    for (char *line = strtok_r(group, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
      char *f[4];
      uint32_t g;
      if (split_fields(line, f, 4) < 4 || !parse_id(f[2], &g))
        continue;
      char *msave = NULL;
      for (char *m = strtok_r(f[3], ",", &msave); m; m = strtok_r(NULL, ",", &msave))
        if (strcmp(m, user_name) == 0) {
          uint32_t *ng = realloc(*groups, (*n_groups + 1) * sizeof(*ng));
          if (!ng) {
            free(*groups);
            *groups = NULL;
            *n_groups = 0;
            return q_error_make(err, ENOMEM, "groups");
          }
          *groups = ng;
          ng[(*n_groups)++] = g;
          break;
        }
    }
  }
  return 0;
}

int cri_spec_check_mount(const char *cpath, const char *hpath, q_error **err)
{
  if (!cpath || cpath[0] != '/')
    return q_error_make(err, EINVAL, "mount container_path '%.256s' is not an absolute path",
                        cpath ? cpath : "");
  for (const char *p = cpath; (p = strstr(p, "..")); p += 2)
    if ((p == cpath || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
      return q_error_make(err, EINVAL, "mount container_path '%.256s' contains '..'", cpath);
  if (!hpath || hpath[0] != '/')
    return q_error_make(err, EINVAL, "mount host_path '%.256s' is not an absolute path",
                        hpath ? hpath : "");
  struct stat sb;
  if (stat(hpath, &sb) < 0)
    return q_error_make(err, EINVAL, "mount host_path '%.256s': %s", hpath, strerror(errno));
  return 0;
}

static __thread uint64_t du_bytes, du_inodes;

static int du_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
  du_inodes++;
  if (flag == FTW_F || flag == FTW_SL)
    du_bytes += (uint64_t)sb->st_blocks * 512;
  return 0;
}

int cri_spec_du(const char *dir, uint64_t *bytes, uint64_t *inodes)
{
  du_bytes = du_inodes = 0;
  if (nftw(dir, du_one, 16, FTW_PHYS | FTW_MOUNT) < 0)
    return -errno;
  *bytes = du_bytes;
  *inodes = du_inodes;
  return 0;
}

int cri_spec_pid_mode(int mode, const char *target_id, const struct cri_ctr *target,
                      const char *pod_id, enum sbx_pid_ns *out, q_error **err)
{
  static const char *const states[] = {"CREATED", "RUNNING", "EXITED", "UNKNOWN"};
  /* 0 (POD) also when unset, as containerd reads it; NODE is refused for
   * the pod (pod_rpc.c), a container asking alone gets its own. */
  *out = mode == 0 ? SBX_PIDNS_POD : mode == 3 ? SBX_PIDNS_TARGET : SBX_PIDNS_CONTAINER;
  if (*out != SBX_PIDNS_TARGET)
    return 0;
  if (!target_id || !*target_id)
    return q_error_make(err, EINVAL, "pid namespace mode TARGET needs a target_id");
  if (!target)
    return q_error_make(err, ENOENT, "target container '%.80s' does not exist", target_id);
  if (strcmp(target->pod_id, pod_id) != 0)
    return q_error_make(err, EINVAL, "target container %.64s (sandbox %.64s) does not belong to "
                        "sandbox %.64s", target->id, target->pod_id, pod_id);
  if (target->state != CRI_CTR_RUNNING)
    return q_error_make(err, ESRCH, "target container %.64s is not running - in state %s",
                        target->id, (unsigned)target->state < 4 ? states[target->state] : "?");
  return 0;
}
