/* Unit tests of the image module without a registry: reference
 * normalization, manifest and index parsing, layer unpack (compression,
 * whiteouts, links, ownership, refusals), store open cleanup. */
#include <archive.h>
#include <archive_entry.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "internal.h"

/* ---- references ---- */

static void ref_is(const char *in, const char *want)
{
  img_ref r;
  q_error *err = NULL;
  cr_assert_eq(img_ref_parse(in, &r, &err), 0, "%s: %s", in, q_error_msg(err));
  char *s = img_ref_string(&r);
  cr_expect_str_eq(s, want, "%s", in);
  free(s);
  img_ref_free(&r);
}

static void ref_bad(const char *in)
{
  img_ref r;
  q_error *err = NULL;
  cr_expect_eq(img_ref_parse(in, &r, &err), -EINVAL, "%s should be refused", in);
  q_error_free(&err);
}

Test(ref, normalizes_like_kubelet)
{
  ref_is("busybox", "docker.io/library/busybox:latest");
  ref_is("busybox:1.36", "docker.io/library/busybox:1.36");
  ref_is("library/redis", "docker.io/library/redis:latest");
  ref_is("bitnami/redis:7", "docker.io/bitnami/redis:7");
  ref_is("index.docker.io/library/busybox", "docker.io/library/busybox:latest");
  ref_is("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9");
  ref_is("localhost/a", "localhost/a:latest");
  ref_is("127.0.0.1:5000/a/b/c:v1.2-x_y", "127.0.0.1:5000/a/b/c:v1.2-x_y");
  ref_is("a__b-c/e.f", "docker.io/a__b-c/e.f:latest");
  ref_is("my-reg.io:443/x", "my-reg.io:443/x:latest");
  ref_is("busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
         "docker.io/library/"
         "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
}

Test(ref, refuses_malformed)
{
  ref_bad("");
  ref_bad("UPPER");
  ref_bad("a//b");
  ref_bad("a/-b");
  ref_bad("a:");
  ref_bad("a:-tag");
  ref_bad("a@sha256:1234");
  ref_bad("a@md5:0123456789abcdef0123456789abcdef");
  ref_bad("a b");
}

Test(ref, digest_and_tag)
{
  img_ref r;
  cr_assert_eq(
      img_ref_parse(
          "q.io/x:t@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &r,
          NULL),
      0);
  cr_expect_str_eq(r.domain, "q.io");
  cr_expect_str_eq(r.path, "x");
  cr_expect_str_eq(r.tag, "t");
  cr_expect(img_valid_digest(r.digest));
  img_ref_free(&r);
}

/* ---- manifests ---- */

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

Test(manifest, oci_and_docker)
{
  const char *oci =
      "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" MT_OCI_CONFIG "\",\"digest\":\"" D1
      "\",\"size\":10},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\","
      "\"digest\":\"" D2 "\",\"size\":20}]}";
  struct img_manifest m;
  q_error *err = NULL;
  char *mt = img_manifest_media_type(NULL, oci, strlen(oci));
  cr_assert_str_eq(mt, MT_OCI_MANIFEST);
  cr_assert_eq(img_manifest_parse(oci, strlen(oci), mt, &m, &err), 0, "%s", q_error_msg(err));
  cr_expect_eq(m.n_layers, 1);
  cr_expect_eq(m.layers[0].size, 20);
  cr_expect_str_eq(m.config.digest, D1);
  img_manifest_free(&m);
  free(mt);
  const char *dock =
      "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_MANIFEST
      "\",\"config\":{\"mediaType\":\"" MT_DOCKER_CONFIG "\",\"digest\":\"" D1
      "\",\"size\":10},\"layers\":[{\"mediaType\":"
      "\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"" D2 "\",\"size\":20}]}";
  mt = img_manifest_media_type("", dock, strlen(dock));
  cr_assert_str_eq(mt, MT_DOCKER_MANIFEST);
  cr_assert_eq(img_manifest_parse(dock, strlen(dock), mt, &m, &err), 0, "%s", q_error_msg(err));
  img_manifest_free(&m);
  free(mt);
}

Test(manifest, refuses_unknown)
{
  struct img_manifest m;
  q_error *err = NULL;
  cr_expect_eq(img_manifest_parse(
                   "{}", 2, "application/vnd.docker.distribution.manifest.v1+prettyjws", &m, &err),
               -EPROTONOSUPPORT);
  cr_expect(strstr(q_error_msg(err), "schema 1"));
  const char *bad =
      "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" MT_OCI_CONFIG "\",\"digest\":\"" D1
      "\",\"size\":10},\"layers\":[{\"mediaType\":\"text/plain\",\"digest\":\"" D2
      "\",\"size\":2}]}";
  cr_expect_eq(img_manifest_parse(bad, strlen(bad), MT_OCI_MANIFEST, &m, &err), -EPROTONOSUPPORT);
  cr_expect(strstr(q_error_msg(err), "unsupported media type \"text/plain\""), "%s",
            q_error_msg(err));
  const char *helm =
      "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.cncf.helm.config.v1+json\","
      "\"digest\":\"" D1 "\",\"size\":10},\"layers\":[]}";
  cr_expect_eq(img_manifest_parse(helm, strlen(helm), MT_OCI_MANIFEST, &m, &err), -EPROTONOSUPPORT);
  const char *nodig = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" MT_OCI_CONFIG
                      "\",\"digest\":\"sha512:ab\","
                      "\"size\":10},\"layers\":[]}";
  cr_expect_eq(img_manifest_parse(nodig, strlen(nodig), MT_OCI_MANIFEST, &m, &err), -EBADMSG);
  q_error_free(&err);
}

Test(manifest, index_picks_linux_amd64)
{
  const char *idx = "{\"schemaVersion\":2,\"manifests\":["
                    "{\"digest\":\"" D1
                    "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},"
                    "{\"digest\":\"" D2 "\",\"size\":1,\"mediaType\":\"" MT_OCI_MANIFEST "\","
                    "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}";
  char *d = NULL, *mt = NULL;
  cr_assert_eq(img_index_select(idx, strlen(idx), &d, &mt, NULL), 0);
  cr_expect_str_eq(d, D2);
  cr_expect_str_eq(mt, MT_OCI_MANIFEST);
  free(d);
  free(mt);
  const char *arm = "{\"manifests\":[{\"digest\":\"" D1
                    "\",\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}}]}";
  q_error *err = NULL;
  cr_expect_eq(img_index_select(arm, strlen(arm), &d, &mt, &err), -ENOENT);
  cr_expect(strstr(q_error_msg(err), "linux/arm64"), "%s", q_error_msg(err));
  q_error_free(&err);
}

/* ---- layer unpack ---- */

struct ent {
  const char *name;
  mode_t type;      /* AE_IFREG... */
  const char *data; /* content, or link target */
  mode_t perm;
  int uid;
  bool hardlink;
};

static char dir_tmpl[] = "/tmp/quark-unit-image.XXXXXX";
static char *base;

static void setup(void)
{
  base = mkdtemp(strdup(dir_tmpl));
  cr_assert(base);
}
static void teardown(void)
{
  q_rm_rf(base, NULL);
  free(base);
}

static char *make_tar(const char *name, int filter, const struct ent *e, size_t n)
{
  char *path = NULL;
  cr_assert(asprintf(&path, "%s/%s", base, name) > 0);
  struct archive *a = archive_write_new();
  if (filter == 1)
    archive_write_add_filter_gzip(a);
  else if (filter == 2)
    archive_write_add_filter_zstd(a);
  archive_write_set_format_pax_restricted(a);
  cr_assert_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
  for (size_t i = 0; i < n; i++) {
    struct archive_entry *ae = archive_entry_new();
    archive_entry_set_pathname(ae, e[i].name);
    if (e[i].hardlink) {
      archive_entry_set_hardlink(ae, e[i].data);
    } else {
      archive_entry_set_filetype(ae, e[i].type);
      archive_entry_set_perm(ae, e[i].perm ? e[i].perm : 0644);
      if (e[i].type == AE_IFLNK)
        archive_entry_set_symlink(ae, e[i].data);
      if (e[i].type == AE_IFREG && e[i].data)
        archive_entry_set_size(ae, (la_int64_t)strlen(e[i].data));
    }
    archive_entry_set_uid(ae, e[i].uid);
    archive_entry_set_gid(ae, e[i].uid);
    archive_entry_set_mtime(ae, 1000000000, 0);
    if (strcmp(e[i].name, "x/withxattr") == 0)
      archive_entry_xattr_add_entry(ae, "user.quark", "yes", 3);
    cr_assert_eq(archive_write_header(a, ae), ARCHIVE_OK);
    if (e[i].type == AE_IFREG && e[i].data && !e[i].hardlink)
      archive_write_data(a, e[i].data, strlen(e[i].data));
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
  return path;
}

static char *unpack_dir(const char *name)
{
  char *d = NULL;
  cr_assert(asprintf(&d, "%s/%s", base, name) > 0);
  cr_assert_eq(mkdir(d, 0755), 0);
  return d;
}

static const struct ent good[] = {
    {"./", AE_IFDIR, NULL, 0755, 0, false},
    {"x/", AE_IFDIR, NULL, 0750, 0, false},
    {"x/file", AE_IFREG, "hello", 0640, 1000, false},
    {"x/suid", AE_IFREG, "s", 04755, 0, false},
    {"x/hard", AE_IFREG, "x/file", 0, 0, true},
    {"x/sym", AE_IFLNK, "file", 0777, 0, false},
    {"x/abs", AE_IFLNK, "/etc/passwd", 0777, 0, false},
    {"x/withxattr", AE_IFREG, "", 0644, 0, false},
    {"x/.wh.gone", AE_IFREG, "", 0, 0, false},
    {"opq/.wh..wh..opq", AE_IFREG, "", 0, 0, false},
    {"opq/new", AE_IFREG, "n", 0644, 0, false},
    {"implicit/parent/f", AE_IFREG, "p", 0600, 0, false},
    {"x/file2", AE_IFREG, "old", 0644, 0, false},
    {"x/file2", AE_IFREG, "new", 0644, 0, false},
};

static void check_good(const char *d)
{
  char p[4096];
  struct stat sb;
  snprintf(p, sizeof(p), "%s/x/file", d);
  cr_assert_eq(stat(p, &sb), 0);
  cr_expect_eq(sb.st_mode & 07777, 0640);
  cr_expect_eq(sb.st_uid, 1000);
  cr_expect_eq(sb.st_size, 5);
  cr_expect_eq(sb.st_nlink, 2, "hard link count");
  cr_expect_eq(sb.st_mtime, 1000000000);
  ino_t ino = sb.st_ino;
  snprintf(p, sizeof(p), "%s/x/hard", d);
  cr_assert_eq(stat(p, &sb), 0);
  cr_expect_eq(sb.st_ino, ino);
  snprintf(p, sizeof(p), "%s/x/suid", d);
  cr_assert_eq(stat(p, &sb), 0);
  cr_expect_eq(sb.st_mode & 07777, 04755);
  char t[64] = "";
  snprintf(p, sizeof(p), "%s/x/sym", d);
  cr_expect_eq(readlink(p, t, sizeof(t)), 4);
  snprintf(p, sizeof(p), "%s/x/abs", d);
  cr_expect_eq(lstat(p, &sb), 0);
  cr_expect(S_ISLNK(sb.st_mode));
  snprintf(p, sizeof(p), "%s/x/gone", d);
  cr_assert_eq(lstat(p, &sb), 0, "whiteout");
  cr_expect(S_ISCHR(sb.st_mode) && sb.st_rdev == makedev(0, 0), "whiteout is a 0/0 char device");
  snprintf(p, sizeof(p), "%s/x/.wh.gone", d);
  cr_expect_neq(lstat(p, &sb), 0, "the .wh. file itself is not written");
  snprintf(p, sizeof(p), "%s/x", d);
  cr_assert_eq(stat(p, &sb), 0);
  cr_expect_eq(sb.st_mode & 07777, 0750);
  cr_expect_eq(sb.st_mtime, 1000000000, "directory mtime restored after its children");
  snprintf(p, sizeof(p), "%s/implicit/parent/f", d);
  cr_expect_eq(stat(p, &sb), 0);
  snprintf(p, sizeof(p), "%s/x/file2", d);
  char *txt = NULL;
  size_t len;
  cr_assert_eq(q_read_file(p, 100, &txt, &len, NULL), 0);
  cr_expect_str_eq(txt, "new", "a later entry replaces an earlier one");
  free(txt);
  if (getuid() == 0) {
    snprintf(p, sizeof(p), "%s/opq", d);
    char v[4] = "";
    cr_expect_eq(getxattr(p, "trusted.overlay.opaque", v, sizeof(v)), 1);
    cr_expect_eq(v[0], 'y');
  }
  snprintf(p, sizeof(p), "%s/x/withxattr", d);
  char v[8] = "";
  if (getxattr(p, "user.quark", v, sizeof(v)) >= 0)
    cr_expect_str_eq(v, "yes");
}

Test(unpack, plain_gzip_zstd, .init = setup, .fini = teardown)
{
  const char *names[] = {"plain", "gzip", "zstd"};
  for (int f = 0; f < 3; f++) {
    char *tar = make_tar(names[f], f, good, Q_ARRAY_SIZE(good));
    char dn[32];
    snprintf(dn, sizeof(dn), "out-%s", names[f]);
    char *d = unpack_dir(dn);
    q_error *err = NULL;
    cr_assert_eq(img_unpack_layer(tar, d, &err), 0, "%s: %s", names[f], q_error_msg(err));
    check_good(d);
    free(tar);
    free(d);
  }
}

Test(unpack, diff_id_is_the_uncompressed_stream, .init = setup, .fini = teardown)
{
  char *plain = make_tar("p.tar", 0, good, Q_ARRAY_SIZE(good));
  char *gz = make_tar("p.tar.gz", 1, good, Q_ARRAY_SIZE(good));
  char *zs = make_tar("p.tar.zst", 2, good, Q_ARRAY_SIZE(good));
  char *bytes = NULL;
  size_t len = 0;
  cr_assert_eq(q_read_file(plain, 1 << 24, &bytes, &len, NULL), 0);
  char want[72], got[72];
  img_sha256_hex(bytes, len, want);
  free(bytes);
  const char *tars[] = {plain, gz, zs};
  for (int i = 0; i < 3; i++) {
    char dn[16];
    snprintf(dn, sizeof(dn), "d%d", i);
    char *d = unpack_dir(dn);
    q_error *err = NULL;
    cr_assert_eq(img_unpack_layer_diffid(tars[i], -1, d, got, &err), 0, "%s", q_error_msg(err));
    cr_expect_str_eq(got, want, "diff_id of %s", tars[i]);
    free(d);
    /* the same from a stream (the pull unpacks while it downloads) */
    snprintf(dn, sizeof(dn), "s%d", i);
    d = unpack_dir(dn);
    int fd = open(tars[i], O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
      char buf[4096];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0)
        if (write(pfd[1], buf, (size_t)n) != n)
          _exit(1);
      _exit(0);
    }
    close(pfd[1]);
    cr_assert_eq(img_unpack_layer_diffid(NULL, pfd[0], d, got, &err), 0, "%s", q_error_msg(err));
    cr_expect_str_eq(got, want, "diff_id of %s streamed", tars[i]);
    check_good(d);
    close(pfd[0]);
    close(fd);
    waitpid(pid, NULL, 0);
    free(d);
  }
  free(plain);
  free(gz);
  free(zs);
}

static void refused(const char *name, const struct ent *e, size_t n, const char *want)
{
  char *tar = make_tar(name, 1, e, n);
  char dn[64];
  snprintf(dn, sizeof(dn), "out-%s", name);
  char *d = unpack_dir(dn);
  q_error *err = NULL;
  cr_expect_lt(img_unpack_layer(tar, d, &err), 0, "%s should fail", name);
  cr_expect(err && strstr(q_error_msg(err), want), "%s: want \"%s\" in \"%s\"", name, want,
            q_error_msg(err));
  q_error_free(&err);
  free(tar);
  free(d);
}

Test(unpack, refuses_escapes, .init = setup, .fini = teardown)
{
  char outside[4096];
  snprintf(outside, sizeof(outside), "%s/outside", base);
  mkdir(outside, 0755);
  struct ent dotdot[] = {{"../evil", AE_IFREG, "x", 0, 0, false}};
  refused("dotdot", dotdot, 1, "entry \"../evil\" refused");
  struct ent inner[] = {{"a/b/../../../evil", AE_IFREG, "x", 0, 0, false}};
  refused("inner", inner, 1, "escapes the layer root");
  struct ent abs[] = {{"/etc/evil", AE_IFREG, "x", 0, 0, false}};
  refused("abs", abs, 1, "absolute path");
  struct ent through[] = {{"l", AE_IFLNK, outside, 0777, 0, false},
                          {"l/evil", AE_IFREG, "x", 0, 0, false}};
  refused("through", through, 2, "path goes through symlink \"l\"");
  struct ent relthrough[] = {{"d/", AE_IFDIR, NULL, 0755, 0, false},
                             {"d/up", AE_IFLNK, "../..", 0777, 0, false},
                             {"d/up/x/evil", AE_IFREG, "x", 0, 0, false}};
  refused("relthrough", relthrough, 3, "through symlink \"up\"");
  struct ent hard[] = {{"h", AE_IFREG, "../../etc/passwd", 0, 0, true}};
  refused("hard", hard, 1, "hard link target");
  struct ent hardsym[] = {{"l", AE_IFLNK, "/etc", 0777, 0, false},
                          {"h", AE_IFREG, "l/passwd", 0, 0, true}};
  refused("hardsym", hardsym, 2, "through symlink \"l\"");
  struct ent wh[] = {{".wh...", AE_IFREG, "", 0, 0, false}};
  refused("wh", wh, 1, "bad whiteout");
  char p[4200];
  snprintf(p, sizeof(p), "%s/evil", outside);
  cr_expect_neq(access(p, F_OK), 0, "nothing written outside");
  snprintf(p, sizeof(p), "%s/evil", base);
  cr_expect_neq(access(p, F_OK), 0, "nothing written outside");
}

Test(unpack, truncated_and_garbage, .init = setup, .fini = teardown)
{
  struct ent big[] = {{"f", AE_IFREG, NULL, 0, 0, false}};
  char *data = malloc(200001);
  for (int i = 0; i < 200000; i++)
    data[i] = (char)('a' + i % 26);
  data[200000] = '\0';
  big[0].data = data;
  char *tar = make_tar("big", 0, big, 1);
  free(data);
  truncate(tar, 100000);
  char *d = unpack_dir("out-trunc");
  q_error *err = NULL;
  cr_expect_lt(img_unpack_layer(tar, d, &err), 0);
  cr_expect(err && strstr(q_error_msg(err), "runcated"), "%s", q_error_msg(err));
  q_error_free(&err);
  char junk[512];
  snprintf(junk, sizeof(junk), "%s/junk", base);
  cr_assert_eq(
      q_write_file_atomic(junk, "this is not a tar file at all, not even close...", 48, 0644, NULL),
      0);
  char *d2 = unpack_dir("out-junk");
  cr_expect_lt(img_unpack_layer(junk, d2, &err), 0);
  q_error_free(&err);
  free(tar);
  free(d);
  free(d2);
}

/* ---- store ---- */

Test(store, open_cleans_leftovers, .init = setup, .fini = teardown)
{
  char root[4096], p[4200];
  snprintf(root, sizeof(root), "%s/store", base);
  struct img_store_opts o = {.root = root};
  img_store *st = NULL;
  cr_assert_eq(img_store_open(&o, &st, NULL), 0);
  img_store_close(st);
  snprintf(p, sizeof(p), "%s/tmp/blob-leftover", root);
  cr_assert_eq(q_write_file_atomic(p, "x", 1, 0644, NULL), 0);
  snprintf(p, sizeof(p), "%s/tmp/layer-leftover/sub", root);
  cr_assert_eq(q_mkdir_p(p, 0755, NULL), 0);
  cr_assert_eq(img_store_open(&o, &st, NULL), 0);
  snprintf(p, sizeof(p), "%s/tmp/blob-leftover", root);
  cr_expect_neq(access(p, F_OK), 0);
  snprintf(p, sizeof(p), "%s/tmp/layer-leftover", root);
  cr_expect_neq(access(p, F_OK), 0);
  img_info **v = NULL;
  size_t n = 5;
  cr_expect_eq(img_list(st, &v, &n, NULL), 0);
  cr_expect_eq(n, 0);
  img_infov_free(v, n);
  q_error *err = NULL;
  img_info *in = NULL;
  cr_expect_eq(img_status(st, "busybox", &in, &err), -ENOENT);
  q_error_free(&err);
  cr_expect_eq(img_remove(st, "busybox", &err), -ENOENT);
  q_error_free(&err);
  struct img_fs_usage u;
  cr_expect_eq(img_fs_info(st, &u, NULL), 0);
  cr_expect_gt(u.inodes_used, 5);
  img_store_close(st);
}

Test(store, progress_path_depends_on_normalized_ref)
{
  char *a = img_pull_progress_path("/r", "busybox");
  char *b = img_pull_progress_path("/r", "docker.io/library/busybox:latest");
  char *c = img_pull_progress_path("/r", "busybox:1");
  cr_expect_str_eq(a, b);
  cr_expect_str_neq(a, c);
  cr_expect_null(img_pull_progress_path("/r", "Bad//"));
  free(a);
  free(b);
  free(c);
}
