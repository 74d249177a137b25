/* File helpers: atomic replace, whole-file reads, mkdir -p, rm -rf. */
#include "quark/common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

ssize_t q_read_all(int fd, void *buf, size_t len)
{
  size_t done = 0;
  while (done < len) {
    ssize_t r = read(fd, (char *)buf + done, len - done);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (r == 0)
      break;
    done += (size_t)r;
  }
  return (ssize_t)done;
}

ssize_t q_write_all(int fd, const void *buf, size_t len)
{
  size_t done = 0;
  while (done < len) {
    ssize_t r = write(fd, (const char *)buf + done, len - done);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    done += (size_t)r;
  }
  return (ssize_t)done;
}

static int write_replace(const char *path, const void *data, size_t len, mode_t mode, bool sync,
                         q_error **err)
{
  q_cleanup_free char *dir = strdup(path);
  q_cleanup_free char *tmp = NULL;
  if (dir == NULL || asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
    return q_error_make(err, ENOMEM, "atomic write %s", path);
  char *slash = strrchr(dir, '/');
  if (slash == NULL)
    strcpy(dir, ".");
  else if (slash == dir)
    slash[1] = '\0';
  else
    *slash = '\0';

  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return q_error_make(err, errno, "create %s", tmp);
  if (q_write_all(fd, data, len) < 0 || (sync && fsync(fd) < 0)) {
    int e = errno;
    close(fd);
    unlink(tmp);
    return q_error_make(err, e, "write %s", tmp);
  }
  if (close(fd) < 0) {
    int e = errno;
    unlink(tmp);
    return q_error_make(err, e, "close %s", tmp);
  }
  if (rename(tmp, path) < 0) {
    int e = errno;
    unlink(tmp);
    return q_error_make(err, e, "rename %s", path);
  }
  int dfd = sync ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return 0;
}

int q_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, q_error **err)
{
  return write_replace(path, data, len, mode, true, err);
}

int q_write_file_replace(const char *path, const void *data, size_t len, mode_t mode, q_error **err)
{
  return write_replace(path, data, len, mode, false, err);
}

int q_read_file(const char *path, size_t max, char **out, size_t *len, q_error **err)
{
  q_cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return q_error_make(err, errno, "open %s", path);
  struct stat st;
  if (fstat(fd, &st) < 0)
    return q_error_make(err, errno, "stat %s", path);
  if ((size_t)st.st_size > max)
    return q_error_make(err, EFBIG, "read %s (%lld bytes, limit %zu)", path,
                        (long long)st.st_size, max);
  size_t cap = (size_t)st.st_size + 1, n = 0;
  char *buf = malloc(cap);
  if (buf == NULL)
    return q_error_make(err, ENOMEM, "read %s", path);
  for (;;) {
    if (n + 1 >= cap) {
      if (cap > max + 1) {
        free(buf);
        return q_error_make(err, EFBIG, "read %s (limit %zu)", path, max);
      }
      char *nb = realloc(buf, cap * 2);
      if (nb == NULL) {
        free(buf);
        return q_error_make(err, ENOMEM, "read %s", path);
      }
      buf = nb;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      int e = errno;
      free(buf);
      return q_error_make(err, e, "read %s", path);
    }
    if (r == 0)
      break;
    n += (size_t)r;
  }
  if (n > max) {
    free(buf);
    return q_error_make(err, EFBIG, "read %s (limit %zu)", path, max);
  }
  buf[n] = '\0';
  *out = buf;
  if (len != NULL)
    *len = n;
  return 0;
}

int q_mkdir_p(const char *path, mode_t mode, q_error **err)
{
  char buf[PATH_MAX];
  if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
    return q_error_make(err, ENAMETOOLONG, "mkdir %s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(buf, mode) < 0 && errno != EEXIST)
      return q_error_make(err, errno, "mkdir %s", buf);
    *p = '/';
  }
  if (mkdir(buf, mode) < 0 && errno != EEXIST)
    return q_error_make(err, errno, "mkdir %s", buf);
  struct stat st;
  if (stat(buf, &st) < 0)
    return q_error_make(err, errno, "stat %s", buf);
  if (!S_ISDIR(st.st_mode))
    return q_error_make(err, ENOTDIR, "mkdir %s", buf);
  return 0;
}

static int rm_rf_at(int parent, const char *name, dev_t dev)
{
  struct stat st;
  if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : -errno;
  if (!S_ISDIR(st.st_mode))
    return unlinkat(parent, name, 0) < 0 && errno != ENOENT ? -errno : 0;
  if (st.st_dev != dev)
    return -EXDEV;
  int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    int e = errno;
    close(fd);
    return -e;
  }
  int ret = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    int r = rm_rf_at(dirfd(d), de->d_name, dev);
    if (r < 0 && ret == 0)
      ret = r;
  }
  closedir(d);
  if (ret == 0 && unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    ret = -errno;
  return ret;
}

int q_rm_rf(const char *path, q_error **err)
{
  struct stat st;
  if (lstat(path, &st) < 0)
    return errno == ENOENT ? 0 : q_error_make(err, errno, "stat %s", path);
  int r = rm_rf_at(AT_FDCWD, path, st.st_dev);
  if (r < 0)
    return q_error_make(err, -r, "remove %s", path);
  return 0;
}

int q_random_id(char out[65])
{
  unsigned char b[32];
  size_t got = 0;
  while (got < sizeof(b)) {
    ssize_t r = getrandom(b + got, sizeof(b) - got, 0);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    got += (size_t)r;
  }
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < sizeof(b); i++) {
    out[2 * i] = hex[b[i] >> 4];
    out[2 * i + 1] = hex[b[i] & 15];
  }
  out[64] = '\0';
  return 0;
}
