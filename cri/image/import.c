/* Import of an OCI image layout archive (a tar with oci-layout, index.json
 * and blobs/sha256/...). Blobs stream from the archive into the store with
 * the same verification as a pull; then each image of index.json is
 * committed like a pulled one. */
#include "internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>

int img_commit_manifest(img_store *st, const img_ref *ref, const char *endpoint,
                        const struct img_auth *auth, const char *mbody, size_t mlen,
                        const char *mdigest, struct img_manifest *m, const char *top_digest,
                        const char *const *extra, size_t n_extra, const struct img_pull_opts *po,
                        char **image_id, q_error **err);

static int import_blob(img_store *st, struct archive *a, const char *digest, q_error **err)
{
  if (img_blob_exists(st, digest))
    return 0;
  q_cleanup_free char *tmp = img_tmp_path(st, "import");
  q_cleanup_free char *dst = img_blob_path(st, digest);
  if (!tmp || !dst)
    return q_error_make(err, ENOMEM, "import");
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    return q_error_make(err, errno, "create %s", tmp);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  int rc = 0;
  const void *buf;
  size_t size;
  la_int64_t off;
  int r;
  while ((r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
    if (q_write_all(fd, buf, size) < 0) {
      rc = q_error_make(err, errno, "write %s", tmp);
      break;
    }
    EVP_DigestUpdate(md, buf, size);
  }
  if (rc == 0 && r != ARCHIVE_EOF)
    rc = img_error(err, EBADMSG, "archive blob %s: %s", digest, archive_error_string(a));
  if (rc == 0) {
    unsigned char d[32];
    unsigned int n;
    char got[72] = "sha256:";
    EVP_DigestFinal_ex(md, d, &n);
    for (int i = 0; i < 32; i++)
      sprintf(got + 7 + 2 * i, "%02x", d[i]);
    if (strcmp(got, digest) != 0)
      rc =
          img_error(err, EBADMSG, "archive blob %s: content digest mismatch (got %s)", digest, got);
  }
  EVP_MD_CTX_free(md);
  if (rc == 0 && fsync(fd) < 0)
    rc = q_error_make(err, errno, "fsync %s", tmp);
  close(fd);
  if (rc == 0 && rename(tmp, dst) < 0)
    rc = q_error_make(err, errno, "rename %s", dst);
  if (rc < 0)
    unlink(tmp);
  return rc;
}

/* Commits one manifest descriptor of index.json (an index is followed to its
 * linux/amd64 manifest). */
static int import_one(img_store *st, json_t *desc, const char *name, char ***ids, size_t *n_ids,
                      q_error **err)
{
  const char *dg = json_string_value(json_object_get(desc, "digest"));
  const char *mt = json_string_value(json_object_get(desc, "mediaType"));
  if (!dg || !img_valid_digest(dg))
    return img_error(err, EBADMSG, "index.json: manifest without a sha256 digest");
  char *body = NULL, *sel = NULL, *sel_mt = NULL, *mmt = NULL;
  size_t len = 0;
  int rc = img_blob_read(st, dg, IMG_MAX_MANIFEST, &body, &len, err);
  const char *top = dg, *mdigest = dg;
  if (rc == 0) {
    mmt = img_manifest_media_type(mt, body, len);
    if (img_is_index_type(mmt)) {
      rc = img_index_select(body, len, &sel, &sel_mt, err);
      free(body);
      body = NULL;
      if (rc == 0)
        rc = img_blob_read(st, sel, IMG_MAX_MANIFEST, &body, &len, err);
      if (rc == 0) {
        free(mmt);
        mmt = img_manifest_media_type(sel_mt, body, len);
        mdigest = sel;
      }
    }
  }
  struct img_manifest m = {0};
  if (rc == 0)
    rc = img_manifest_parse(body, len, mmt, &m, err);
  for (size_t i = 0; rc == 0 && i < m.n_layers; i++)
    if (!img_blob_exists(st, m.layers[i].digest))
      rc = img_error(err, ENOENT, "the archive lacks layer %s", m.layers[i].digest);
  /* The tag: a full reference in the annotation, or a bare tag for `name`. */
  img_ref ref = {0};
  bool have_ref = false;
  json_t *ann = json_object_get(desc, "annotations");
  const char *rn = json_string_value(json_object_get(ann, "io.containerd.image.name"));
  if (!rn)
    rn = json_string_value(json_object_get(ann, "org.opencontainers.image.ref.name"));
  if (rc == 0 && rn) {
    q_cleanup_free char *full = NULL;
    if (strchr(rn, '/') || strchr(rn, ':') || !name)
      full = strdup(rn);
    else if (asprintf(&full, "%s:%s", name, rn) < 0)
      full = NULL;
    have_ref = full && img_ref_parse(full, &ref, NULL) == 0;
    if (!have_ref)
      q_warn(NULL, "import: image %s: reference \"%s\" not usable as a tag", dg, full ? full : rn);
  } else if (rc == 0 && name) {
    have_ref = img_ref_parse(name, &ref, NULL) == 0;
  }
  char *id = NULL;
  const char *extra[1] = {top};
  if (rc == 0)
    rc = img_commit_manifest(st, have_ref ? &ref : NULL, NULL, NULL, body, len, mdigest, &m,
                             have_ref ? top : NULL, extra, mdigest != top ? 1 : 0, NULL, &id, err);
  if (rc == 0) {
    char **nv = realloc(*ids, (*n_ids + 2) * sizeof(char *));
    if (nv) {
      *ids = nv;
      nv[(*n_ids)++] = id;
      nv[*n_ids] = NULL;
      id = NULL;
    }
  }
  free(id);
  if (have_ref)
    img_ref_free(&ref);
  img_manifest_free(&m);
  free(body);
  free(sel);
  free(sel_mt);
  free(mmt);
  return rc;
}

int img_import(img_store *st, const char *path, const char *name, char ***ids_out, q_error **err)
{
  int lfd = img_store_lock(st, "pull", false, true);
  if (lfd < 0)
    return q_error_make(err, -lfd, "lock image store");
  struct archive *a = archive_read_new();
  char *index = NULL;
  size_t index_len = 0;
  char **ids = calloc(1, sizeof(char *));
  size_t n_ids = 0;
  int rc = 0;
  if (!a || !ids) {
    rc = q_error_make(err, ENOMEM, "import");
    goto out;
  }
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_filter_none(a);
  archive_read_support_format_tar(a);
  if (archive_read_open_filename(a, path, 1 << 20) != ARCHIVE_OK) {
    rc = img_error(err, EBADMSG, "open %s: %s", path, archive_error_string(a));
    goto out;
  }
  struct archive_entry *e;
  int r;
  while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    const char *p = archive_entry_pathname(e);
    if (!p || archive_entry_filetype(e) != AE_IFREG)
      continue;
    if (strncmp(p, "./", 2) == 0)
      p += 2;
    if (strcmp(p, "index.json") == 0) {
      la_int64_t sz = archive_entry_size(e);
      if (sz < 0 || sz > IMG_MAX_MANIFEST) {
        rc = q_error_make(err, EFBIG, "%s: index.json too large", path);
        goto out;
      }
      free(index);
      index = malloc((size_t)sz + 1);
      la_ssize_t got = index ? archive_read_data(a, index, (size_t)sz) : -1;
      if (got != sz) {
        rc = img_error(err, EBADMSG, "%s: read index.json", path);
        goto out;
      }
      index[sz] = '\0';
      index_len = (size_t)sz;
    } else if (strncmp(p, "blobs/sha256/", 13) == 0) {
      q_cleanup_free char *dg = NULL;
      if (asprintf(&dg, "sha256:%s", p + 13) < 0 || !img_valid_digest(dg)) {
        q_warn(NULL, "import %s: entry %s ignored (not a sha256 blob)", path, p);
        continue;
      }
      rc = import_blob(st, a, dg, err);
      if (rc < 0)
        goto out;
    }
  }
  if (r != ARCHIVE_EOF) {
    rc = img_error(err, EBADMSG, "%s: %s", path, archive_error_string(a));
    goto out;
  }
  if (!index) {
    rc = img_error(err, EBADMSG, "%s is not an OCI layout archive (no index.json)", path);
    goto out;
  }
  json_error_t je;
  json_t *j = json_loadb(index, index_len, 0, &je);
  json_t *ms = json_object_get(j, "manifests");
  if (!json_is_array(ms) || json_array_size(ms) == 0) {
    json_decref(j);
    rc = img_error(err, EBADMSG, "%s: index.json lists no manifests", path);
    goto out;
  }
  size_t i;
  json_t *d;
  json_array_foreach(ms, i, d)
  {
    rc = import_one(st, d, name, &ids, &n_ids, err);
    if (rc < 0)
      break;
  }
  json_decref(j);
out:
  if (a)
    archive_read_free(a);
  free(index);
  close(lfd);
  if (rc < 0) {
    img_strv_free(ids);
    q_error_wrap(err, "import %s", path);
  } else if (ids_out) {
    *ids_out = ids;
  } else {
    img_strv_free(ids);
  }
  img_gc_maybe(st);
  return rc;
}
