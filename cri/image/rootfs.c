/* Container root filesystems: an overlayfs of the image's unpacked layers
 * under a per-container upper dir. The record containers/<id>/rootfs.json is
 * written before the mount, so an image counts as in use from the moment a
 * root filesystem may exist until it is surely gone. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

static bool valid_container_id(const char *id)
{
  size_t n = strlen(id);
  if (n == 0 || n > 128 || id[0] == '.')
    return false;
  for (const char *c = id; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
          *c == '-' || *c == '_' || *c == '.'))
      return false;
  return true;
}

/* overlayfs through fsopen/fsconfig with "lowerdir+" (Linux 6.8+): no
 * limit on the number of layers but the kernel's own (500). -1 with errno. */
static int mount_many_layers(img_store *st, char **layers, size_t n, const char *upper,
                             const char *work, const char *dest)
{
  int fs = fsopen("overlay", FSOPEN_CLOEXEC);
  if (fs < 0)
    return -1;
  int rc = 0;
  for (size_t i = n; rc == 0 && i-- > 0;) {
    q_cleanup_free char *lp = img_layer_path(st, layers[i]);
    rc = lp ? fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", lp, 0) : (errno = ENOMEM, -1);
  }
  if (rc == 0)
    rc = fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", upper, 0);
  if (rc == 0)
    rc = fsconfig(fs, FSCONFIG_SET_STRING, "workdir", work, 0);
  if (rc == 0)
    rc = fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
  int mnt = rc == 0 ? fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID) : -1;
  if (mnt >= 0) {
    rc = move_mount(mnt, "", AT_FDCWD, dest, MOVE_MOUNT_F_EMPTY_PATH);
    int e = errno;
    close(mnt);
    errno = e;
  } else {
    rc = -1;
  }
  int e = errno;
  close(fs);
  errno = e;
  return rc;
}

int img_rootfs_create(img_store *st, const char *ref_or_id, const char *cid, const char *dest,
                      q_error **err)
{
  if (!valid_container_id(cid))
    return q_error_make(err, EINVAL, "invalid container id \"%s\"", cid);
  if (!dest || dest[0] != '/')
    return q_error_make(err, EINVAL, "rootfs destination must be an absolute path");
  q_cleanup_free char *cdir = NULL, *upper = NULL, *work = NULL, *empty = NULL, *recp = NULL;
  q_cleanup_free char *opts = NULL; /* before any goto: jumps may not enter its scope */
  if (asprintf(&cdir, "%s/containers/%s", st->root, cid) < 0 ||
      asprintf(&upper, "%s/upper", cdir) < 0 || asprintf(&work, "%s/work", cdir) < 0 ||
      asprintf(&empty, "%s/empty", cdir) < 0 || asprintf(&recp, "%s/rootfs.json", cdir) < 0)
    return q_error_make(err, ENOMEM, "rootfs");

  int lfd = img_store_lock(st, "records", true, true);
  if (lfd < 0)
    return q_error_make(err, -lfd, "lock image records");
  img_info *info = NULL;
  int rc = img_status(st, ref_or_id, &info, err);
  if (rc < 0) {
    close(lfd);
    q_error_wrap(err, "rootfs for container %s", cid);
    return rc;
  }
  if (mkdir(cdir, 0700) < 0) {
    rc = q_error_make(err, errno,
                      errno == EEXIST ? "container %s already has a root filesystem" : "mkdir %s",
                      errno == EEXIST ? cid : cdir);
    close(lfd);
    img_info_free(info);
    return rc;
  }
  json_t *rec = json_pack("{s:s, s:s, s:I}", "image", info->id, "dest", dest, "created",
                          (json_int_t)q_now_ns());
  q_cleanup_free char *recs = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
  json_decref(rec);
  /* Written and renamed without fsync: a kill -9 keeps it (the page cache
   * is the kernel's); a power loss takes the overlay mount with it, and the
   * container's own record (cri/state, durable before CreateContainer
   * answers) still names the directory RemoveContainer deletes. */
  rc = recs ? q_write_file_replace(recp, recs, strlen(recs), 0600, err)
            : q_error_make(err, ENOMEM, "rootfs");
  close(lfd);
  if (rc < 0)
    goto fail;

  if (mkdir(upper, 0755) < 0 || mkdir(work, 0700) < 0) {
    rc = q_error_make(err, errno, "mkdir under %s", cdir);
    goto fail;
  }
  /* overlayfs wants the topmost layer first. */
  size_t n = img_strv_len(info->layers);
  size_t cap = 256 + 3 * strlen(cdir) + 16;
  for (size_t i = 0; i < n; i++)
    cap += strlen(st->root) + 96;
  opts = malloc(cap);
  if (!opts) {
    rc = q_error_make(err, ENOMEM, "rootfs");
    goto fail;
  }
  size_t off = (size_t)snprintf(opts, cap, "lowerdir=");
  for (size_t i = n; i-- > 0;) {
    q_cleanup_free char *lp = img_layer_path(st, info->layers[i]);
    if (!lp || access(lp, F_OK) != 0) {
      rc = q_error_make(err, ENOENT,
                        "layer %s of image %s is missing from the store; pull the image again",
                        info->layers[i], info->id);
      goto fail;
    }
    off += (size_t)snprintf(opts + off, cap - off, "%s%s", i == n - 1 ? "" : ":", lp);
  }
  if (n == 0) {
    if (mkdir(empty, 0755) < 0) {
      rc = q_error_make(err, errno, "mkdir %s", empty);
      goto fail;
    }
    off += (size_t)snprintf(opts + off, cap - off, "%s", empty);
  }
  snprintf(opts + off, cap - off, ",upperdir=%s,workdir=%s", upper, work);
  rc = q_mkdir_p(dest, 0755, err);
  if (rc < 0)
    goto fail;
  /* nodev, nosuid: the host opens files of this tree for the guest; a device
   * node or set-uid file from an image must mean nothing on the host (the
   * guest still sees the modes). mount(2) options end at one page; past that (~35 layers under
   * /var/lib/quark/images) the new mount API takes one lowerdir at a time. */
  if (strlen(opts) < 4000 ? mount("overlay", dest, "overlay", MS_NODEV | MS_NOSUID, opts) < 0
                          : mount_many_layers(st, info->layers, n, upper, work, dest) < 0) {
    rc = q_error_make(err, errno, "mount overlay at %s (%zu layers)", dest, n);
    goto fail;
  }
  q_debug(cid, "rootfs of image %s mounted at %s (%zu layers)", info->id, dest, n);
  img_info_free(info);
  return 0;
fail:
  q_rm_rf(cdir, NULL);
  img_info_free(info);
  q_error_wrap(err, "rootfs for container %s", cid);
  return rc;
}

int img_rootfs_remove(img_store *st, const char *cid, q_error **err)
{
  if (!valid_container_id(cid))
    return q_error_make(err, EINVAL, "invalid container id \"%s\"", cid);
  q_cleanup_free char *cdir = NULL, *recp = NULL;
  if (asprintf(&cdir, "%s/containers/%s", st->root, cid) < 0 ||
      asprintf(&recp, "%s/rootfs.json", cdir) < 0)
    return q_error_make(err, ENOMEM, "rootfs");
  if (access(cdir, F_OK) != 0)
    return 0;
  json_error_t je;
  json_t *rec = json_load_file(recp, 0, &je);
  const char *dest = json_string_value(json_object_get(rec, "dest"));
  if (dest && umount2(dest, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) {
    int rc = q_error_make(err, errno, "remove rootfs of container %s: unmount %s", cid, dest);
    json_decref(rec);
    return rc;
  }
  json_decref(rec);
  /* The record goes first: a crash halfway leaves a directory without a
   * record, which no longer pins the image and is removed on the next try. */
  unlink(recp);
  int rc = q_rm_rf(cdir, err);
  return rc < 0 ? q_error_wrap(err, "remove rootfs of container %s", cid) : 0;
}

int img_rootfs_sweep(img_store *st, const char *dest_prefix,
                     bool (*known)(const char *cid, void *arg), void *arg, q_error **err)
{
  q_cleanup_free char *dir = NULL;
  if (asprintf(&dir, "%s/containers", st->root) < 0)
    return q_error_make(err, ENOMEM, "rootfs sweep");
  DIR *d = opendir(dir);
  if (!d)
    return errno == ENOENT ? 0 : q_error_make(err, errno, "open %s", dir);
  size_t pl = strlen(dest_prefix);
  int removed = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!valid_container_id(de->d_name) || known(de->d_name, arg))
      continue;
    q_cleanup_free char *recp = NULL;
    if (asprintf(&recp, "%s/%s/rootfs.json", dir, de->d_name) < 0)
      continue;
    json_error_t je;
    json_t *rec = json_load_file(recp, 0, &je);
    const char *dest = json_string_value(json_object_get(rec, "dest"));
    bool ours = dest && strncmp(dest, dest_prefix, pl) == 0 && dest[pl] == '/';
    json_decref(rec);
    q_cleanup_error q_error *rerr = NULL;
    if (ours && img_rootfs_remove(st, de->d_name, &rerr) == 0) {
      q_warn(de->d_name, "removed a leftover root filesystem (no container record)");
      removed++;
    } else if (ours) {
      q_warn(de->d_name, "leftover root filesystem: %s", q_error_msg(rerr));
    }
  }
  closedir(d);
  return removed;
}
