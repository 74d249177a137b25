/* Fuzzer: what a registry or an image archive hands the image store before
 * any layer is unpacked: references, manifests, indexes, image configs.
 *
 * Input: selector byte, flag byte, then the document.
 *   0  image reference (img_ref_parse): normalizing is idempotent, i.e. the
 *      string of a parsed reference parses again to the same string; the
 *      progress file name of a valid reference is under the root.
 *   1  manifest (img_manifest_parse) with the media type sniffed from the
 *      body (img_manifest_media_type), or forced to OCI / Docker by the flag:
 *      a parsed manifest has valid sha256 digests, sizes >= 0 and supported
 *      layer media types only.
 *   2  index / manifest list (img_index_select): the pick has a valid digest.
 *   3  image config: stored as a blob with a record in a scratch store, then
 *      read back through img_status and img_list (the store's config parser)
 *      and removed again.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "internal.h"

static img_store *store;
static const char *root;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  q_log_set_level(Q_LOG_OFF);
  root = fuzz_tmpdir("image");
  struct img_store_opts o = {.root = root};
  q_error *err = NULL;
  if (img_store_open(&o, &store, &err) < 0) {
    fprintf(stderr, "fuzz: image store: %s\n", q_error_msg(err));
    abort();
  }
  return 0;
}

static void fuzz_ref(const char *s)
{
  img_ref r;
  q_error *err = NULL;
  if (img_ref_parse(s, &r, &err) < 0) {
    FUZZ_CHECK(err, "failure without an error message");
    q_error_free(&err);
    return;
  }
  FUZZ_CHECK(r.domain && r.path && (r.tag || r.digest), "incomplete reference for \"%s\"", s);
  FUZZ_CHECK(!r.digest || img_valid_digest(r.digest), "digest \"%s\"", r.digest);
  char *s1 = img_ref_string(&r);
  FUZZ_CHECK(s1, "no string");
  img_ref r2;
  FUZZ_CHECK(img_ref_parse(s1, &r2, &err) == 0,
             "\"%s\" normalizes to \"%s\", which does not parse: %s", s, s1, q_error_msg(err));
  char *s2 = img_ref_string(&r2);
  FUZZ_CHECK(s2 && strcmp(s1, s2) == 0, "\"%s\" -> \"%s\" -> \"%s\": not idempotent", s, s1, s2);
  char *progress = img_pull_progress_path(root, s);
  FUZZ_CHECK(progress, "no progress path for a valid reference \"%s\"", s);
  FUZZ_CHECK(strncmp(progress, root, strlen(root)) == 0 && !strstr(progress + strlen(root), "/../"),
             "progress file \"%s\" outside the root", progress);
  free(progress);
  free(s1);
  free(s2);
  img_ref_free(&r);
  img_ref_free(&r2);
}

static void fuzz_manifest(uint8_t flag, const char *body, size_t len)
{
  char *mt = img_manifest_media_type(NULL, body, len);
  const char *use = mt;
  if (flag % 3 == 1)
    use = MT_OCI_MANIFEST;
  else if (flag % 3 == 2)
    use = MT_DOCKER_MANIFEST;
  struct img_manifest m;
  q_error *err = NULL;
  if (img_manifest_parse(body, len, use, &m, &err) == 0) {
    FUZZ_CHECK(img_valid_digest(m.config.digest) && m.config.size >= 0, "config descriptor");
    for (size_t i = 0; i < m.n_layers; i++) {
      FUZZ_CHECK(img_valid_digest(m.layers[i].digest), "layer %zu digest", i);
      FUZZ_CHECK(m.layers[i].size >= 0, "layer %zu size", i);
      FUZZ_CHECK(img_layer_media_type_ok(m.layers[i].media_type), "layer %zu media type", i);
    }
    img_manifest_free(&m);
  } else {
    FUZZ_CHECK(err, "failure without an error message");
  }
  q_error_free(&err);
  free(mt);
}

static void fuzz_index(const char *body, size_t len)
{
  char *digest = NULL, *mt = NULL;
  q_error *err = NULL;
  if (img_index_select(body, len, &digest, &mt, &err) == 0)
    FUZZ_CHECK(digest && img_valid_digest(digest), "picked digest \"%s\"", digest ? digest : "");
  free(digest);
  free(mt);
  q_error_free(&err);
}

static void walk_strv(char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    FUZZ_CHECK(strlen(v[i]) < (64u << 20), "string");
}

static void check_info(const img_info *in, const char *digest)
{
  FUZZ_CHECK(in->id && strcmp(in->id, digest) == 0, "id %s, want %s", in->id, digest);
  walk_strv(in->repo_tags);
  walk_strv(in->repo_digests);
  walk_strv(in->layers);
  walk_strv(in->config.env);
  walk_strv(in->config.entrypoint);
  walk_strv(in->config.cmd);
  walk_strv(in->config.exposed_ports);
  for (size_t i = 0; i < in->config.n_labels; i++)
    FUZZ_CHECK(in->config.labels[i].key && in->config.labels[i].value, "label %zu", i);
}

static void fuzz_config(const char *body, size_t len)
{
  char digest[72];
  img_sha256_hex(body, len, digest);
  q_error *err = NULL;
  if (img_blob_put(store, digest, body, len, &err) < 0) {
    fprintf(stderr, "fuzz: blob put: %s\n", q_error_msg(err));
    abort();
  }
  struct img_record_in rec = {.config_digest = digest,
                              .manifest_digest = digest,
                              .repo_tag = "fuzz.local/config:latest",
                              .size = len};
  if (img_record_commit(store, &rec, &err) < 0) {
    fprintf(stderr, "fuzz: record: %s\n", q_error_msg(err));
    abort();
  }
  img_info *info = NULL;
  FUZZ_CHECK(img_status(store, digest, &info, &err) == 0, "status: %s", q_error_msg(err));
  check_info(info, digest);
  img_info_free(info);
  img_info **all = NULL;
  size_t n = 0;
  FUZZ_CHECK(img_list(store, &all, &n, &err) == 0 && n == 1, "list: %zu images", n);
  check_info(all[0], digest);
  img_infov_free(all, n);
  FUZZ_CHECK(img_remove(store, digest, &err) == 0, "remove: %s", q_error_msg(err));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
  if (len < 2)
    return 0;
  uint8_t sel = data[0], flag = data[1];
  int fds = fuzz_fd_count();
  char *body = fuzz_strndup(data + 2, len - 2);
  size_t blen = len - 2;
  switch (sel % 4) {
  case 0:
    fuzz_ref(body);
    break;
  case 1:
    fuzz_manifest(flag, body, blen);
    break;
  case 2:
    fuzz_index(body, blen);
    break;
  case 3:
    fuzz_config(body, blen);
    break;
  }
  free(body);
  FUZZ_CHECK_FDS(fds);
  return 0;
}
