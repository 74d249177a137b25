/* Pod network namespaces: create and pin, remove, enter, run work inside,
 * namespaced sysctls.
 *
 * A namespace is made by a helper thread that unshares and bind-mounts its
 * own /proc/thread-self/ns/net onto the pin file, then exits. The caller's
 * threads never change namespace, which matters in quarkd where a thread
 * that silently moved to a pod's namespace would open the next pod's
 * sockets in the wrong place. */
#include "net_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

static bool valid_ns_name(const char *name)
{
  size_t n = strlen(name);
  if (n == 0 || n > 200 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return false;
  return strchr(name, '/') == NULL;
}

/* Sets IFF_UP on lo of the calling thread's namespace. */
static int lo_up(q_error **err)
{
  q_cleanup_close int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return q_error_make(err, errno, "socket for lo");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  strcpy(ifr.ifr_name, "lo");
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
    return q_error_make(err, errno, "get flags of lo");
  if (ifr.ifr_flags & IFF_UP)
    return 0;
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
    return q_error_make(err, errno, "bring lo up");
  return 0;
}

struct create_job {
  const char *path;
  q_error *err;
  int rc;
};

static void *create_thread(void *p)
{
  struct create_job *job = p;
  if (unshare(CLONE_NEWNET) < 0) {
    job->rc = q_error_make(&job->err, errno, "unshare network namespace");
    return NULL;
  }
  if (mount("/proc/thread-self/ns/net", job->path, "none", MS_BIND, NULL) < 0) {
    job->rc = q_error_make(&job->err, errno, "bind-mount namespace on %s", job->path);
    return NULL;
  }
  job->rc = lo_up(&job->err);
  return NULL;
}

int net_netns_create(const char *run_dir, const char *name, char **path_out, q_error **err)
{
  char gen[40];
  if (run_dir == NULL)
    run_dir = NET_DEFAULT_NETNS_DIR;
  if (name == NULL) {
    char id[65];
    if (q_random_id(id) < 0)
      return q_error_make(err, EIO, "random namespace name");
    snprintf(gen, sizeof(gen), "quark-%.16s", id);
    name = gen;
  }
  if (!valid_ns_name(name))
    return q_error_make(err, EINVAL, "network namespace name \"%s\"", name);
  int r = q_mkdir_p(run_dir, 0755, err);
  if (r < 0)
    return r;
  q_cleanup_free char *path = NULL;
  if (asprintf(&path, "%s/%s", run_dir, name) < 0)
    return q_error_make(err, ENOMEM, "netns path");
  int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0)
    return q_error_make(err, errno, "create netns pin %s", path);
  close(fd);

  struct create_job job = {.path = path};
  pthread_t t;
  int e = pthread_create(&t, NULL, create_thread, &job);
  if (e != 0) {
    unlink(path);
    return q_error_make(err, e, "start netns helper thread");
  }
  pthread_join(t, NULL);
  if (job.rc < 0) {
    umount2(path, MNT_DETACH);
    unlink(path);
    if (err != NULL) {
      q_error_free(err);
      *err = job.err;
    } else {
      q_error_free(&job.err);
    }
    q_error_wrap(err, "create network namespace %s", path);
    return job.rc;
  }
  *path_out = q_steal_ptr(&path);
  return 0;
}

bool net_netns_is_pinned(const char *path)
{
  struct statfs st;
  return statfs(path, &st) == 0 && st.f_type == NSFS_MAGIC;
}

bool net_netns_gone(const char *path)
{
  if (path == NULL || *path == '\0')
    return true;
  if (net_netns_is_pinned(path))
    return false;
  struct stat st;
  if (stat(path, &st) == 0)
    return true; /* there, but no namespace is mounted on it */
  return errno == ENOENT || errno == ENOTDIR;
}

int net_netns_remove(const char *path, q_error **err)
{
  if (path == NULL || *path == '\0')
    return 0;
  /* Only an nsfs mount is unmounted, so a wrong path from a damaged state
   * file can never unmount something else. Detach: a process still inside
   * keeps the namespace alive, the pin goes. */
  if (net_netns_is_pinned(path) && umount2(path, MNT_DETACH) < 0 && errno != EINVAL &&
      errno != ENOENT)
    return q_error_make(err, errno, "unmount netns %s", path);
  if (unlink(path) < 0 && errno != ENOENT)
    return q_error_make(err, errno, "remove netns pin %s", path);
  return 0;
}

int net_netns_enter(const char *path, int *saved_fd, q_error **err)
{
  q_cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return q_error_make(err, errno, "open netns %s", path);
  q_cleanup_close int old = -1;
  if (saved_fd != NULL) {
    old = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (old < 0)
      return q_error_make(err, errno, "open current netns");
  }
  if (setns(fd, CLONE_NEWNET) < 0)
    return q_error_make(err, errno, "enter netns %s", path);
  if (saved_fd != NULL)
    *saved_fd = q_steal_fd(&old);
  return 0;
}

int net_netns_leave(int saved_fd, q_error **err)
{
  int r = 0;
  if (setns(saved_fd, CLONE_NEWNET) < 0)
    r = q_error_make(err, errno, "return to previous netns");
  close(saved_fd);
  return r;
}

struct run_job {
  const char *path;
  net_netns_fn fn;
  void *arg;
  q_error *err;
  int rc;
};

static void *run_thread(void *p)
{
  struct run_job *job = p;
  job->rc = net_netns_enter(job->path, NULL, &job->err);
  if (job->rc == 0)
    job->rc = job->fn(job->arg, &job->err);
  return NULL;
}

int net_netns_run(const char *path, net_netns_fn fn, void *arg, q_error **err)
{
  struct run_job job = {.path = path, .fn = fn, .arg = arg};
  pthread_t t;
  int e = pthread_create(&t, NULL, run_thread, &job);
  if (e != 0)
    return q_error_make(err, e, "start netns helper thread");
  pthread_join(t, NULL);
  if (job.err != NULL) {
    if (err != NULL) {
      q_error_free(err);
      *err = job.err;
    } else {
      q_error_free(&job.err);
    }
  }
  return job.rc;
}

/* "net.ipv4.ip_forward" or "net/ipv4/conf/eth0.100/forwarding" to a path
 * under /proc/sys; NULL for keys outside net.* or with empty/.. components. */
static char *sysctl_path(const char *key)
{
  bool slashes = strchr(key, '/') != NULL;
  char sep = slashes ? '/' : '.';
  if (strncmp(key, "net", 3) != 0 || key[3] != sep)
    return NULL;
  char *path = NULL;
  if (asprintf(&path, "/proc/sys/%s", key) < 0)
    return NULL;
  char *rel = path + strlen("/proc/sys/");
  if (!slashes)
    for (char *p = rel; *p; p++)
      if (*p == '.')
        *p = '/';
  /* Every component non-empty and not "..", so the write stays in net/. */
  for (char *c = rel; *c;) {
    char *end = strchrnul(c, '/');
    size_t n = (size_t)(end - c);
    if (n == 0 || (n == 2 && c[0] == '.' && c[1] == '.') || (n == 1 && c[0] == '.')) {
      free(path);
      return NULL;
    }
    c = *end ? end + 1 : end;
  }
  return path;
}

struct sysctl_job {
  const net_kv *kv;
  size_t n;
};

static int write_sysctl(const char *key, const char *value, q_error **err)
{
  q_cleanup_free char *path = sysctl_path(key);
  if (path == NULL)
    return q_error_make(err, EINVAL, "sysctl %s is not a namespaced net.* key", key);
  q_cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return q_error_make(err, errno, "sysctl %s: open %s", key, path);
  if (q_write_all(fd, value, strlen(value)) < 0)
    return q_error_make(err, errno, "sysctl %s=%s", key, value);
  return 0;
}

static int sysctl_thread(void *arg, q_error **err)
{
  struct sysctl_job *job = arg;
  static const net_kv defaults[] = {
      {"net.ipv4.ip_unprivileged_port_start", "0"},
      {"net.ipv4.ping_group_range", "0 2147483647"},
  };
  for (size_t i = 0; i < Q_ARRAY_SIZE(defaults); i++) {
    int r = write_sysctl(defaults[i].key, defaults[i].value, err);
    if (r < 0)
      return r;
  }
  for (size_t i = 0; i < job->n; i++) {
    int r = write_sysctl(job->kv[i].key, job->kv[i].value, err);
    if (r < 0)
      return r;
  }
  return 0;
}

int net_netns_set_sysctls(const char *path, const net_kv *sysctls, size_t n, q_error **err)
{
  /* Refuse bad keys before touching the namespace, so nothing is half-done
   * because of a typo in the pod spec. */
  for (size_t i = 0; i < n; i++) {
    q_cleanup_free char *p = sysctls[i].key ? sysctl_path(sysctls[i].key) : NULL;
    if (p == NULL || sysctls[i].value == NULL)
      return q_error_make(err, EINVAL, "sysctl %s is not a namespaced net.* key",
                          sysctls[i].key ? sysctls[i].key : "(null)");
  }
  struct sysctl_job job = {.kv = sysctls, .n = n};
  int r = net_netns_run(path, sysctl_thread, &job, err);
  if (r < 0)
    q_error_wrap(err, "netns %s", path);
  return r;
}
