/* Layer unpack: one layer tar into its own directory, as an overlayfs lower
 * layer. Every path is resolved by walking it one component at a time with
 * openat(O_NOFOLLOW) from the layer root, so no entry can reach outside the
 * root: names with "..", absolute names and names that go through a symlink
 * are refused, and the error names the entry. We do not use
 * archive_write_disk: it resolves paths against the process's working
 * directory, which a multi-threaded daemon cannot change per layer. */
#include "internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

bool img_layer_media_type_ok(const char *mt)
{
  static const char *const ok[] = {
      "application/vnd.oci.image.layer.v1.tar",
      "application/vnd.oci.image.layer.v1.tar+gzip",
      "application/vnd.oci.image.layer.v1.tar+zstd",
      "application/vnd.oci.image.layer.nondistributable.v1.tar",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
      "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
      "application/vnd.docker.image.rootfs.diff.tar",
  };
  for (size_t i = 0; mt && i < Q_ARRAY_SIZE(ok); i++)
    if (strcmp(mt, ok[i]) == 0)
      return true;
  return false;
}

/* Splits a tar entry name into clean components. Refuses absolute names and
 * "..". Returns the count (0 for the root itself) or -1 with *why set. */
static int split_name(char *name, char **comps, int max, const char **why)
{
  /* "/" alone (umoci writes it for the layer root) is the root; any other
   * absolute name is refused. */
  bool absolute = name[0] == '/';
  int n = 0;
  for (char *save = NULL, *c = strtok_r(name, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
    if (strcmp(c, ".") == 0)
      continue;
    if (strcmp(c, "..") == 0) {
      *why = "path escapes the layer root (\"..\")";
      return -1;
    }
    if (n == max) {
      *why = "path too deep";
      return -1;
    }
    comps[n++] = c;
  }
  if (absolute && n > 0) {
    *why = "absolute path";
    return -1;
  }
  return n;
}

#define MAX_DEPTH 256

/* Opens the directory comps[0..n) under rootfd, creating missing ones when
 * create. A symlink or a non-directory on the way is refused. */
static int walk_dirs(int rootfd, char **comps, int n, bool create, const char *entry, q_error **err)
{
  int fd = dup(rootfd);
  if (fd < 0)
    return q_error_make(err, errno, "dup");
  for (int i = 0; i < n; i++) {
    int nfd = openat(fd, comps[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (nfd < 0 && errno == ENOENT && create) {
      if (mkdirat(fd, comps[i], 0755) < 0 && errno != EEXIST) {
        int e = errno;
        close(fd);
        return q_error_make(err, e, "entry \"%s\": mkdir %s", entry, comps[i]);
      }
      nfd = openat(fd, comps[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (nfd < 0) {
      int e = errno;
      struct stat sb;
      bool link = fstatat(fd, comps[i], &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode);
      close(fd);
      if (link || e == ELOOP)
        return img_error(err, EXDEV, "entry \"%s\" refused: path goes through symlink \"%s\"",
                         entry, comps[i]);
      return q_error_make(err, e, "entry \"%s\": open %s", entry, comps[i]);
    }
    close(fd);
    fd = nfd;
  }
  return fd;
}

/* Removes whatever is at parentfd/name (a directory with its contents). */
static int remove_at(int parentfd, const char *name, const char *entry, q_error **err)
{
  struct stat sb;
  if (fstatat(parentfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : q_error_make(err, errno, "entry \"%s\": stat", entry);
  if (!S_ISDIR(sb.st_mode)) {
    if (unlinkat(parentfd, name, 0) < 0)
      return q_error_make(err, errno, "entry \"%s\": unlink", entry);
    return 0;
  }
  char p[64];
  snprintf(p, sizeof(p), "/proc/self/fd/%d", parentfd);
  char dir[4096];
  ssize_t l = readlink(p, dir, sizeof(dir) - 1);
  if (l < 0)
    return q_error_make(err, errno, "entry \"%s\": readlink %s", entry, p);
  dir[l] = '\0';
  q_cleanup_free char *full = NULL;
  if (asprintf(&full, "%s/%s", dir, name) < 0)
    return q_error_make(err, ENOMEM, "entry \"%s\"", entry);
  int rc = q_rm_rf(full, err);
  return rc < 0 ? q_error_wrap(err, "entry \"%s\"", entry) : 0;
}

static void apply_xattrs(int fd, struct archive_entry *e, const char *entry)
{
  const char *name;
  const void *value;
  size_t size;
  archive_entry_xattr_reset(e);
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    /* overlayfs reads trusted.overlay.* as instructions: a layer may not set them. */
    if (strncmp(name, "trusted.overlay.", 16) == 0) {
      q_debug(NULL, "layer entry \"%s\": xattr %s ignored", entry, name);
      continue;
    }
    if (fsetxattr(fd, name, value, size, 0) < 0)
      q_debug(NULL, "layer entry \"%s\": xattr %s not set: %s", entry, name, strerror(errno));
  }
}

struct dir_time {
  char *path;
  struct timespec ts[2];
};

struct unpack {
  int rootfd;
  struct dir_time *dirs;
  size_t n_dirs, cap_dirs;
  bool warned_chown;
};

static void times_of(struct archive_entry *e, struct timespec ts[2])
{
  ts[0].tv_sec = archive_entry_atime_is_set(e) ? archive_entry_atime(e) : archive_entry_mtime(e);
  ts[0].tv_nsec =
      archive_entry_atime_is_set(e) ? archive_entry_atime_nsec(e) : archive_entry_mtime_nsec(e);
  ts[1].tv_sec = archive_entry_mtime(e);
  ts[1].tv_nsec = archive_entry_mtime_nsec(e);
}

static void own(struct unpack *u, int fd, int dirfd, const char *name, struct archive_entry *e)
{
  int rc = fd >= 0 ? fchown(fd, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e))
                   : fchownat(dirfd, name, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e),
                              AT_SYMLINK_NOFOLLOW);
  if (rc < 0 && !u->warned_chown) {
    u->warned_chown = true;
    q_warn(NULL, "layer unpack: cannot set ownership (%s); files keep the unpacker's ids",
           strerror(errno));
  }
}

static int write_regular(struct archive *a, int fd, struct archive_entry *e, const char *entry,
                         q_error **err)
{
  const void *buf;
  size_t size;
  la_int64_t off;
  int r;
  while ((r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
    const char *p = buf;
    while (size > 0) {
      ssize_t w = pwrite(fd, p, size, off);
      if (w < 0) {
        if (errno == EINTR)
          continue;
        return q_error_make(err, errno, "entry \"%s\": write", entry);
      }
      p += w, size -= (size_t)w, off += w;
    }
  }
  if (r != ARCHIVE_EOF)
    return img_error(err, EBADMSG, "entry \"%s\": %s", entry, archive_error_string(a));
  if (archive_entry_size_is_set(e) && ftruncate(fd, archive_entry_size(e)) < 0)
    return q_error_make(err, errno, "entry \"%s\": truncate", entry);
  return 0;
}

static int unpack_entry(struct unpack *u, struct archive *a, struct archive_entry *e, q_error **err)
{
  const char *raw = archive_entry_pathname(e);
  if (!raw)
    return img_error(err, EBADMSG, "entry without a name");
  q_cleanup_free char *name = strdup(raw);
  char *comps[MAX_DEPTH];
  const char *why = NULL;
  if (!name)
    return q_error_make(err, ENOMEM, "entry");
  int n = split_name(name, comps, MAX_DEPTH, &why);
  if (n < 0)
    return img_error(err, EXDEV, "entry \"%s\" refused: %s", raw, why);
  mode_t type = archive_entry_filetype(e);
  if (n == 0) {
    /* the layer root itself: only its metadata matters */
    if (type == AE_IFDIR) {
      own(u, u->rootfd, -1, NULL, e);
      fchmod(u->rootfd, archive_entry_perm(e));
    }
    return 0;
  }
  q_cleanup_close int pfd = walk_dirs(u->rootfd, comps, n - 1, true, raw, err);
  if (pfd < 0)
    return pfd;
  const char *base = comps[n - 1];
  int rc;

  if (strncmp(base, WH_PREFIX, 4) == 0) {
    if (strcmp(base, WH_OPAQUE) == 0) {
      if (fsetxattr(pfd, "trusted.overlay.opaque", "y", 1, 0) < 0)
        return q_error_make(err, errno, "entry \"%s\": mark directory opaque", raw);
      return 0;
    }
    const char *victim = base + 4;
    if (!*victim || strcmp(victim, ".") == 0 || strcmp(victim, "..") == 0)
      return img_error(err, EXDEV, "entry \"%s\" refused: bad whiteout", raw);
    rc = remove_at(pfd, victim, raw, err);
    if (rc < 0)
      return rc;
    if (mknodat(pfd, victim, S_IFCHR | 0000, makedev(0, 0)) < 0)
      return q_error_make(err, errno, "entry \"%s\": create whiteout", raw);
    return 0;
  }

  struct stat sb;
  bool exists = fstatat(pfd, base, &sb, AT_SYMLINK_NOFOLLOW) == 0;
  if (exists && !(type == AE_IFDIR && S_ISDIR(sb.st_mode))) {
    rc = remove_at(pfd, base, raw, err);
    if (rc < 0)
      return rc;
  }
  struct timespec ts[2];
  times_of(e, ts);
  mode_t perm = archive_entry_perm(e);

  const char *hl = archive_entry_hardlink(e);
  if (hl) {
    q_cleanup_free char *tname = strdup(hl);
    char *tcomps[MAX_DEPTH];
    if (!tname)
      return q_error_make(err, ENOMEM, "entry");
    int tn = split_name(tname, tcomps, MAX_DEPTH, &why);
    if (tn <= 0)
      return img_error(err, EXDEV, "entry \"%s\" refused: hard link target \"%s\": %s", raw, hl,
                       tn < 0 ? why : "the layer root");
    q_cleanup_close int tfd = walk_dirs(u->rootfd, tcomps, tn - 1, false, raw, err);
    if (tfd < 0)
      return tfd;
    if (linkat(tfd, tcomps[tn - 1], pfd, base, 0) < 0)
      return q_error_make(err, errno, "entry \"%s\": hard link to \"%s\"", raw, hl);
    return 0;
  }

  switch (type) {
  case AE_IFREG: {
    q_cleanup_close int fd =
        openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
      return q_error_make(err, errno, "entry \"%s\": create", raw);
    rc = write_regular(a, fd, e, raw, err);
    if (rc < 0)
      return rc;
    own(u, fd, -1, NULL, e);
    if (fchmod(fd, perm) < 0) /* after chown, which clears set-id bits */
      return q_error_make(err, errno, "entry \"%s\": chmod", raw);
    apply_xattrs(fd, e, raw);
    futimens(fd, ts);
    return 0;
  }
  case AE_IFDIR: {
    if (!exists && mkdirat(pfd, base, 0700) < 0)
      return q_error_make(err, errno, "entry \"%s\": mkdir", raw);
    q_cleanup_close int fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
      return q_error_make(err, errno, "entry \"%s\": open", raw);
    own(u, fd, -1, NULL, e);
    if (fchmod(fd, perm) < 0)
      return q_error_make(err, errno, "entry \"%s\": chmod", raw);
    apply_xattrs(fd, e, raw);
    /* Later entries change the directory's mtime: set it at the end. */
    if (u->n_dirs == u->cap_dirs) {
      size_t cap = u->cap_dirs ? 2 * u->cap_dirs : 64;
      struct dir_time *nd = realloc(u->dirs, cap * sizeof(*nd));
      if (!nd)
        return q_error_make(err, ENOMEM, "entry");
      u->dirs = nd;
      u->cap_dirs = cap;
    }
    u->dirs[u->n_dirs].path = strdup(raw);
    memcpy(u->dirs[u->n_dirs].ts, ts, sizeof(ts));
    if (u->dirs[u->n_dirs].path)
      u->n_dirs++;
    return 0;
  }
  case AE_IFLNK: {
    const char *target = archive_entry_symlink(e);
    if (!target || symlinkat(target, pfd, base) < 0)
      return q_error_make(err, target ? errno : EBADMSG, "entry \"%s\": symlink", raw);
    own(u, -1, pfd, base, e);
    utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW);
    return 0;
  }
  case AE_IFCHR:
  case AE_IFBLK:
    /* Device nodes from an image are never created: the guest kernel serves
     * /dev itself, and a node on the host disk would name a host device
     * (the sandbox also refuses to open one, and rootfs mounts are nodev). */
    q_debug(NULL, "layer entry \"%s\": device node skipped", raw);
    return 0;
  case AE_IFIFO: {
    dev_t dev = 0;
    if (mknodat(pfd, base, type | perm, dev) < 0)
      return q_error_make(err, errno, "entry \"%s\": mknod", raw);
    own(u, -1, pfd, base, e);
    fchmodat(pfd, base, perm, 0);
    utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW);
    return 0;
  }
  case AE_IFSOCK:
    return 0; /* sockets in an image are meaningless: skip, like other runtimes */
  default:
    return img_error(err, EBADMSG, "entry \"%s\": unknown file type %o", raw, (unsigned)type);
  }
}

static void set_dir_times(struct unpack *u)
{
  for (size_t i = u->n_dirs; i-- > 0;) {
    q_cleanup_free char *name = strdup(u->dirs[i].path);
    char *comps[MAX_DEPTH];
    const char *why;
    int n = name ? split_name(name, comps, MAX_DEPTH, &why) : -1;
    if (n > 0) {
      int pfd = walk_dirs(u->rootfd, comps, n - 1, false, u->dirs[i].path, NULL);
      if (pfd >= 0) {
        utimensat(pfd, comps[n - 1], u->dirs[i].ts, AT_SYMLINK_NOFOLLOW);
        close(pfd);
      }
    }
  }
}

/* The tar reader is fed the decompressed stream by a raw reader, so that
 * the uncompressed bytes (the layer's diff_id) are hashed on the way with
 * one decompression. */
struct raw_src {
  struct archive *raw;
  EVP_MD_CTX *md;
};

static la_ssize_t raw_read(struct archive *a, void *arg, const void **buf)
{
  struct raw_src *r = arg;
  size_t size = 0;
  la_int64_t off;
  int rc = archive_read_data_block(r->raw, buf, &size, &off);
  if (rc == ARCHIVE_EOF)
    return 0;
  if (rc != ARCHIVE_OK) {
    archive_set_error(a, EBADMSG, "%s", archive_error_string(r->raw));
    return -1;
  }
  EVP_DigestUpdate(r->md, *buf, size);
  return (la_ssize_t)size;
}

int img_unpack_layer_diffid(const char *path, int fd, const char *dest_dir, char diff_id[72],
                            q_error **err)
{
  struct unpack u = {.rootfd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (u.rootfd < 0)
    return q_error_make(err, errno, "open %s", dest_dir);
  struct raw_src src = {.raw = archive_read_new(), .md = EVP_MD_CTX_new()};
  struct archive *a = archive_read_new();
  int rc = 0;
  if (!a || !src.raw || !src.md) {
    rc = q_error_make(err, ENOMEM, "libarchive");
    goto out;
  }
  EVP_DigestInit_ex(src.md, EVP_sha256(), NULL);
  archive_read_support_filter_gzip(src.raw);
  archive_read_support_filter_zstd(src.raw);
  archive_read_support_filter_none(src.raw);
  archive_read_support_format_raw(src.raw);
  struct archive_entry *e;
  if ((path ? archive_read_open_filename(src.raw, path, 1 << 20)
            : archive_read_open_fd(src.raw, fd, 1 << 20)) != ARCHIVE_OK ||
      archive_read_next_header(src.raw, &e) != ARCHIVE_OK) {
    rc = img_error(err, EBADMSG, "open layer %s: %s", path ? path : "stream",
                   archive_error_string(src.raw));
    goto out;
  }
  archive_read_support_format_tar(a);
  if (archive_read_open(a, &src, NULL, raw_read, NULL) != ARCHIVE_OK) {
    rc = img_error(err, EBADMSG, "layer %s is not a tar archive: %s", path ? path : "stream",
                   archive_error_string(a));
    goto out;
  }
  int r;
  size_t count = 0;
  while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    rc = unpack_entry(&u, a, e, err);
    if (rc < 0)
      goto out;
    count++;
  }
  if (r != ARCHIVE_EOF) {
    rc = img_error(err, EBADMSG, "corrupt or truncated layer after %zu entries: %s", count,
                   archive_error_string(a));
    goto out;
  }
  /* What follows the end-of-archive blocks is part of the diff_id too. */
  const void *buf;
  la_ssize_t n;
  while ((n = raw_read(a, &src, &buf)) > 0)
    ;
  if (n < 0) {
    rc = img_error(err, EBADMSG, "corrupt or truncated layer after %zu entries: %s", count,
                   archive_error_string(src.raw));
    goto out;
  }
  set_dir_times(&u);
  if (diff_id) {
    unsigned char d[32];
    unsigned int dl = 0;
    EVP_DigestFinal_ex(src.md, d, &dl);
    strcpy(diff_id, "sha256:");
    for (int i = 0; i < 32; i++)
      sprintf(diff_id + 7 + 2 * i, "%02x", d[i]);
  }
out:
  for (size_t i = 0; i < u.n_dirs; i++)
    free(u.dirs[i].path);
  free(u.dirs);
  if (a)
    archive_read_free(a);
  if (src.raw)
    archive_read_free(src.raw);
  EVP_MD_CTX_free(src.md);
  close(u.rootfd);
  return rc;
}

int img_unpack_layer(const char *path, const char *dest_dir, q_error **err)
{
  return img_unpack_layer_diffid(path, -1, dest_dir, NULL, err);
}

static char *diffid_path(const img_store *st, const char *digest)
{
  char *p = NULL;
  if (asprintf(&p, "%s/layers/diffid/%s", img_store_root(st), digest + 7) < 0)
    return NULL;
  return p;
}

/* A layer unpacked earlier: its recorded diff_id must be the one this
 * image's config names. */
static int check_diffid(img_store *st, const char *digest, const char *want, q_error **err)
{
  if (!want)
    return 0;
  q_cleanup_free char *p = diffid_path(st, digest);
  q_cleanup_free char *got = NULL;
  size_t len = 0;
  if (!p || q_read_file(p, 128, &got, &len, NULL) < 0)
    return 0; /* no record (an older store): the blob digest still holds */
  if (strcmp(got, want) != 0)
    return img_error(err, EBADMSG, "layer %s: the image config says its content is %s, it is %s",
                     digest, want, got);
  return 0;
}

/* A layer unpacked into tmp: checks its diff_id, records it and renames it
 * into place once its files are on disk. Removes tmp on failure. */
static int layer_commit(img_store *st, const char *digest, const char *tmp, const char *got,
                        const char *diff_id, q_error **err)
{
  q_cleanup_free char *dst = img_layer_path(st, digest);
  q_cleanup_free char *dpath = diffid_path(st, digest);
  int rc = 0;
  if (!dst || !dpath)
    rc = q_error_make(err, ENOMEM, "layer %s", digest);
  else if (diff_id && strcmp(diff_id, got) != 0)
    rc = img_error(err, EBADMSG, "layer %s: uncompressed content is %s, the image config says %s",
                   digest, got, diff_id);
  else if ((rc = q_write_file_atomic(dpath, got, strlen(got), 0644, err)) < 0)
    q_error_wrap(err, "layer %s", digest);
  else {
    int dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      syncfs(dfd);
      close(dfd);
    }
    if (rename(tmp, dst) < 0 && errno != EEXIST && errno != ENOTEMPTY)
      rc = q_error_make(err, errno, "rename %s to %s", tmp, dst);
  }
  if (access(tmp, F_OK) == 0)
    q_rm_rf(tmp, NULL);
  return rc;
}

/* Unpacks the stored blob (the layer flight is held). */
static int layer_from_blob(img_store *st, const char *digest, const char *media_type,
                           const char *diff_id, q_error **err)
{
  q_cleanup_free char *blob = img_blob_path(st, digest);
  q_cleanup_free char *tmp = img_tmp_path(st, "layer");
  char got[72];
  if (!blob || !tmp)
    return q_error_make(err, ENOMEM, "layer %s", digest);
  if (mkdir(tmp, 0755) < 0)
    return q_error_make(err, errno, "mkdir %s", tmp);
  int rc = img_unpack_layer_diffid(blob, -1, tmp, got, err);
  if (rc < 0) {
    q_error_wrap(err, "layer %s (%s)", digest, media_type ? media_type : "tar");
    q_rm_rf(tmp, NULL);
    return rc;
  }
  return layer_commit(st, digest, tmp, got, diff_id, err);
}

int img_layer_ensure(img_store *st, const char *digest, const char *media_type, const char *diff_id,
                     q_error **err)
{
  q_cleanup_free char *dst = img_layer_path(st, digest);
  q_cleanup_free char *key = NULL;
  if (!dst || asprintf(&key, "layer:%s", digest) < 0)
    return q_error_make(err, ENOMEM, "layer %s", digest);
  while (access(dst, F_OK) != 0) {
    if (!img_flight_begin(st, key))
      continue; /* another thread unpacked it (or failed): look again */
    int rc = access(dst, F_OK) == 0 ? 0 : layer_from_blob(st, digest, media_type, diff_id, err);
    img_flight_end(st, key);
    return rc;
  }
  return check_diffid(st, digest, diff_id, err);
}

struct stream_unpack {
  int fd;
  const char *tmp;
  char got[72];
  int rc;
  q_error *err;
};

static void *stream_thread(void *arg)
{
  struct stream_unpack *u = arg;
  u->rc = img_unpack_layer_diffid(NULL, u->fd, u->tmp, u->got, &u->err);
  /* Done or failed: closing drops what is queued, so a sender blocked on a
   * full socket gets EPIPE instead of waiting forever. */
  close(u->fd);
  return NULL;
}

int img_layer_ensure_streamed(img_store *st, const char *digest, const char *media_type,
                              const char *diff_id, img_fetch_fn fetch, void *arg, q_error **err)
{
  q_cleanup_free char *dst = img_layer_path(st, digest);
  q_cleanup_free char *key = NULL;
  if (!dst || asprintf(&key, "layer:%s", digest) < 0)
    return q_error_make(err, ENOMEM, "layer %s", digest);
  while (access(dst, F_OK) != 0) {
    if (!img_flight_begin(st, key))
      continue;
    int rc = 0;
    bool complete = false;
    q_cleanup_free char *tmp = img_tmp_path(st, "layer");
    int sv[2] = {-1, -1};
    pthread_t th;
    struct stream_unpack u = {.tmp = tmp, .rc = -EIO};
    bool started = tmp && mkdir(tmp, 0755) == 0 &&
                   socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0 &&
                   (u.fd = sv[0], pthread_create(&th, NULL, stream_thread, &u) == 0);
    rc = fetch(arg, started ? sv[1] : -1, &complete, err);
    if (sv[1] >= 0)
      close(sv[1]); /* end of stream for the unpacker */
    if (started)
      pthread_join(th, NULL); /* it closed sv[0] */
    else if (sv[0] >= 0)
      close(sv[0]);
    if (rc == 0 && started && complete && u.rc < 0) {
      /* The whole blob went through and verified: the layer itself is bad. */
      rc = u.rc;
      if (err) {
        q_error_free(err);
        *err = u.err;
        u.err = NULL;
      }
      q_error_wrap(err, "layer %s (%s)", digest, media_type ? media_type : "tar");
    }
    if (rc == 0 && started && complete)
      rc = layer_commit(st, digest, tmp, u.got, diff_id, err);
    else if (tmp && access(tmp, F_OK) == 0)
      q_rm_rf(tmp, NULL);
    if (rc == 0 && access(dst, F_OK) != 0) {
      q_debug(NULL, "layer %s: stream incomplete, unpacking the stored blob", digest);
      rc = layer_from_blob(st, digest, media_type, diff_id, err);
    }
    q_error_free(&u.err);
    img_flight_end(st, key);
    return rc;
  }
  return check_diffid(st, digest, diff_id, err);
}
