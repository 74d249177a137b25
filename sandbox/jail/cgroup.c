/* Pod cgroups, v1 and v2 (see cgroup.h). */
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define CGROUP_ROOT "/sys/fs/cgroup"

/* The v1 hierarchies a pod cgroup lives in (cpuacct for usage: a separate
 * hierarchy on some nodes, co-mounted with cpu on others). */
static const char *const v1_ctrls[] = {"memory", "cpu", "cpuacct", "pids"};

bool sbx_cgroup_v2(void)
{
  struct statfs s;
  return statfs(CGROUP_ROOT, &s) == 0 && s.f_type == CGROUP2_SUPER_MAGIC;
}

static bool good_rel(const char *p)
{
  if (!*p || p[0] == '/' || p[strlen(p) - 1] == '/' || strstr(p, "//"))
    return false;
  for (const char *s = p; (s = strstr(s, "..")); s += 2)
    if ((s == p || s[-1] == '/') && (s[2] == 0 || s[2] == '/'))
      return false;
  return true;
}

int sbx_cgroup_pod_path(const char *parent, const char *pod_id, char *out, size_t size)
{
  char par[PATH_MAX] = "quark";
  if (!pod_id || !*pod_id || strchr(pod_id, '/') || strstr(pod_id, ".."))
    return -EINVAL;
  if (parent && *parent) {
    size_t n = strlen(parent);
    if (n > 6 && !strcmp(parent + n - 6, ".slice") && !strchr(parent, '/')) {
      /* systemd: "a-b-c.slice" lives at a.slice/a-b.slice/a-b-c.slice */
      size_t len = 0;
      par[0] = 0;
      for (const char *d = parent; (d = strchr(d, '-')); d++) {
        int k = snprintf(par + len, sizeof par - len, "%.*s.slice/", (int)(d - parent), parent);
        if (k < 0 || (size_t)k >= sizeof par - len)
          return -EINVAL;
        len += (size_t)k;
      }
      if (snprintf(par + len, sizeof par - len, "%s", parent) >= (int)(sizeof par - len))
        return -EINVAL;
    } else {
      while (*parent == '/')
        parent++;
      if (snprintf(par, sizeof par, "%s", parent) >= (int)sizeof par)
        return -EINVAL;
      size_t l = strlen(par);
      while (l && par[l - 1] == '/')
        par[--l] = 0;
      if (!l)
        snprintf(par, sizeof par, "quark");
    }
  }
  if (!good_rel(par))
    return -EINVAL;
  int n = snprintf(out, size, "%s/quark-%.32s", par, pod_id);
  return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

static int dir_of(const char *path, const char *ctrl, char *out, size_t size)
{
  int n = ctrl ? snprintf(out, size, CGROUP_ROOT "/%s/%s", ctrl, path)
               : snprintf(out, size, CGROUP_ROOT "/%s", path);
  return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

static int write_str(const char *dir, const char *file, const char *value, q_error **err)
{
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  q_cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return q_error_make(err, errno, "open %s", path);
  if (q_write_all(fd, value, strlen(value)) < 0)
    return q_error_make(err, errno, "write '%s' to %s", value, path);
  return 0;
}

int sbx_cgroup_read(const char *path, const char *ctrl, const char *file, char *out, size_t size)
{
  char dir[PATH_MAX], p[PATH_MAX + 64];
  if (!good_rel(path) || strlen(file) > 60 ||
      dir_of(path, sbx_cgroup_v2() ? NULL : ctrl, dir, sizeof dir) < 0)
    return -EINVAL;
  snprintf(p, sizeof p, "%s/%s", dir, file);
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  ssize_t n = read(fd, out, size - 1);
  int e = errno;
  close(fd);
  if (n < 0)
    return -e;
  while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
    n--;
  out[n] = 0;
  return 0;
}

struct row {
  const char *ctrl, *file;
  char value[48];
};

static size_t rows_of(const struct sbx_cgroup_limits *l, bool v2, struct row rows[8])
{
  size_t n = 0;
  uint64_t period = l->cpu_period_us ? l->cpu_period_us : 100000;
  uint64_t shares = l->cpu_shares ? l->cpu_shares : 1024;
  if (shares < 2)
    shares = 2;
  if (shares > 262144)
    shares = 262144;
#define ROW(c, f, ...)                                                                             \
  do {                                                                                             \
    rows[n] = (struct row){c, f, ""};                                                              \
    snprintf(rows[n++].value, sizeof rows[0].value, __VA_ARGS__);                                  \
  } while (0)
  if (v2) {
    if (l->memory)
      ROW(NULL, "memory.max", "%llu", (unsigned long long)l->memory);
    else
      ROW(NULL, "memory.max", "max");
    if (l->cpu_quota_us)
      ROW(NULL, "cpu.max", "%llu %llu", (unsigned long long)l->cpu_quota_us,
          (unsigned long long)period);
    else
      ROW(NULL, "cpu.max", "max %llu", (unsigned long long)period);
    /* the conversion runc and kubelet use: shares 2..262144 -> weight 1..10000 */
    ROW(NULL, "cpu.weight", "%llu", (unsigned long long)(1 + ((shares - 2) * 9999) / 262142));
    if (l->pids)
      ROW(NULL, "pids.max", "%llu", (unsigned long long)l->pids);
    else
      ROW(NULL, "pids.max", "max");
  } else {
    if (l->memory)
      ROW("memory", "memory.limit_in_bytes", "%llu", (unsigned long long)l->memory);
    else
      ROW("memory", "memory.limit_in_bytes", "-1");
    /* the period first: a quota is checked against the current period */
    ROW("cpu", "cpu.cfs_period_us", "%llu", (unsigned long long)period);
    if (l->cpu_quota_us)
      ROW("cpu", "cpu.cfs_quota_us", "%llu", (unsigned long long)l->cpu_quota_us);
    else
      ROW("cpu", "cpu.cfs_quota_us", "-1");
    ROW("cpu", "cpu.shares", "%llu", (unsigned long long)shares);
    if (l->pids)
      ROW("pids", "pids.max", "%llu", (unsigned long long)l->pids);
    else
      ROW("pids", "pids.max", "max");
  }
#undef ROW
  return n;
}

int sbx_cgroup_set(const char *path, const struct sbx_cgroup_limits *l, q_error **err)
{
  if (!good_rel(path))
    return q_error_make(err, EINVAL, "cgroup path '%s'", path);
  bool v2 = sbx_cgroup_v2();
  struct row rows[8];
  size_t n = rows_of(l, v2, rows);
  for (size_t i = 0; i < n; i++) {
    char dir[PATH_MAX];
    if (dir_of(path, rows[i].ctrl, dir, sizeof dir) < 0)
      return q_error_make(err, ENAMETOOLONG, "cgroup path");
    int r = write_str(dir, rows[i].file, rows[i].value, err);
    if (r < 0)
      return q_error_wrap(err, "cgroup limit");
  }
  return 0;
}

int sbx_cgroup_create(const char *path, const struct sbx_cgroup_limits *l, q_error **err)
{
  if (!good_rel(path))
    return q_error_make(err, EINVAL, "cgroup path '%s'", path);
  char dir[PATH_MAX];
  int r;
  if (sbx_cgroup_v2()) {
    /* Controllers must be enabled on every level above the pod. */
    if (dir_of(path, NULL, dir, sizeof dir) < 0)
      return q_error_make(err, ENAMETOOLONG, "cgroup path");
    if ((r = q_mkdir_p(dir, 0755, err)) < 0)
      return r;
    char *last = strrchr(dir, '/');
    for (char *p = dir + strlen(CGROUP_ROOT);; p = strchr(p + 1, '/')) {
      char save = *p;
      *p = 0;
      write_str(dir, "cgroup.subtree_control", "+memory +cpu +pids", NULL);
      *p = save;
      if (p == last)
        break;
    }
  } else {
    for (size_t i = 0; i < Q_ARRAY_SIZE(v1_ctrls); i++) {
      if (dir_of(path, v1_ctrls[i], dir, sizeof dir) < 0)
        return q_error_make(err, ENAMETOOLONG, "cgroup path");
      if ((r = q_mkdir_p(dir, 0755, err)) < 0)
        return r;
    }
  }
  return sbx_cgroup_set(path, l, err);
}

/* Whether the calling process has one thread (/proc/self/status). */
static bool single_threaded(void)
{
  q_cleanup_free char *buf = NULL;
  if (q_read_file("/proc/self/status", 1 << 16, &buf, NULL, NULL) < 0)
    return false;
  const char *t = strstr(buf, "\nThreads:");
  return t && strtol(t + 9, NULL, 10) == 1;
}

int sbx_cgroup_join(const char *path, pid_t pid, q_error **err)
{
  if (!good_rel(path))
    return q_error_make(err, EINVAL, "cgroup path '%s'", path);
  char dir[PATH_MAX], v[24];
  snprintf(v, sizeof v, "%d", (int)pid);
  if (sbx_cgroup_v2()) {
    dir_of(path, NULL, dir, sizeof dir);
    return write_str(dir, "cgroup.procs", v, err);
  }
  /* A single-threaded caller moves itself through v1's `tasks` file with
   * "0": the kernel moves just the calling thread then and skips the global
   * threadgroup lock, whose write side waits for an RCU grace period (each
   * move through cgroup.procs took 7-14 ms here, idle or not; this one
   * ~0.15 ms for the four hierarchies). Threads made later inherit it. */
  const char *file = pid == 0 && single_threaded() ? "tasks" : "cgroup.procs";
  for (size_t i = 0; i < Q_ARRAY_SIZE(v1_ctrls); i++) {
    dir_of(path, v1_ctrls[i], dir, sizeof dir);
    int r = write_str(dir, file, v, err);
    if (r < 0)
      return r;
  }
  return 0;
}

/* SIGKILL to every process listed in dir/cgroup.procs; how many there were. */
static int kill_procs(const char *dir)
{
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/cgroup.procs", dir) >= (int)sizeof path)
    return 0;
  q_cleanup_free char *buf = NULL;
  size_t len = 0;
  if (q_read_file(path, 1 << 20, &buf, &len, NULL) < 0)
    return 0;
  int n = 0;
  for (char *p = buf, *end; *p; p = end) {
    long pid = strtol(p, &end, 10);
    if (end == p)
      break;
    if (pid > 1) {
      kill((pid_t)pid, SIGKILL);
      n++;
    }
    while (*end == '\n')
      end++;
  }
  return n;
}

int sbx_cgroup_remove(const char *path, q_error **err)
{
  if (!good_rel(path))
    return q_error_make(err, EINVAL, "cgroup path '%s'", path);
  bool v2 = sbx_cgroup_v2();
  size_t nc = v2 ? 1 : Q_ARRAY_SIZE(v1_ctrls);
  for (size_t i = 0; i < nc; i++) {
    char dir[PATH_MAX];
    dir_of(path, v2 ? NULL : v1_ctrls[i], dir, sizeof dir);
    for (int tries = 0;; tries++) {
      if (rmdir(dir) == 0 || errno == ENOENT)
        break;
      if (errno != EBUSY || tries == 100)
        return q_error_make(err, errno, "remove cgroup %s", dir);
      kill_procs(dir);
      struct timespec ts = {0, 10 * 1000000};
      nanosleep(&ts, NULL);
    }
  }
  return 0;
}
