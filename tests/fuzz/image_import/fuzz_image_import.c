/* Fuzzer: `quark import` of a hostile OCI layout archive (img_import): the
 * archive walk, index.json, nested indexes, manifests, configs, blob
 * verification, tags from annotations, layer unpack and the store records.
 *
 * Input: a mode byte, then
 *   mode even: a structured archive that keeps digests valid while the
 *     fuzzer edits the documents: chunks separated by "\n--\n"; chunk 0 is
 *     index.json, chunk N >= 1 becomes blobs/sha256/<sha256 of chunk N>.
 *     In chunk K, "@N" (N a digit, N > K) is replaced by "sha256:<hex of
 *     chunk N>" after chunk N's own replacements, so a manifest can name its
 *     config and layers. The harness writes the tar (with oci-layout).
 *   mode odd: the bytes are the archive itself (tar, gzip or zstd).
 *   Mode bit 1 passes a name ("fuzz.local/imported") for bare tags.
 *
 * Each input runs against a fresh store at <scratch>/a/store. Checks: an
 * import that succeeds returns image ids that img_status finds and whose
 * layers exist; removing every image leaves no blob, layer or record behind
 * (garbage collection frees all of it); and, success or not, nothing
 * outside the store changed (listing and victim files of <scratch> and
 * <scratch>/a, as in image_tar). Writes are capped with RLIMIT_FSIZE.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>

#include "fuzz_util.h"
#include "internal.h"

#define SEP "\n--\n"
#define MAX_CHUNKS 10
#define FSIZE_CAP (64u << 20)
#define VICTIM_DATA "do not touch\n"

static const char *base;
static char *outer, *store_root, *archive_path;

static size_t count_entries(const char *dir)
{
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)))
    n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
  closedir(d);
  return n;
}

static void check_victim(const char *dir)
{
  char p[4096], buf[64] = "";
  snprintf(p, sizeof(p), "%s/victim", dir);
  struct stat sb;
  FUZZ_CHECK(lstat(p, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_nlink == 1 &&
                 (sb.st_mode & 07777) == 0600 && sb.st_size == (off_t)strlen(VICTIM_DATA),
             "%s changed", p);
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  FUZZ_CHECK(fd >= 0 && read(fd, buf, sizeof(buf) - 1) >= 0 && !strcmp(buf, VICTIM_DATA),
             "%s contents changed", p);
  close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  q_log_set_level(Q_LOG_OFF);
  base = fuzz_tmpdir("import");
  if (asprintf(&outer, "%s/a", base) < 0 || asprintf(&store_root, "%s/a/store", base) < 0 ||
      asprintf(&archive_path, "%s/archive", base) < 0)
    abort();
  FUZZ_CHECK(mkdir(outer, 0755) == 0, "mkdir");
  fuzz_write_file(AT_FDCWD, archive_path, "", 0, 0600);
  char p[4096];
  snprintf(p, sizeof(p), "%s/victim", base);
  fuzz_write_file(AT_FDCWD, p, VICTIM_DATA, strlen(VICTIM_DATA), 0600);
  chmod(p, 0600);
  snprintf(p, sizeof(p), "%s/victim", outer);
  fuzz_write_file(AT_FDCWD, p, VICTIM_DATA, strlen(VICTIM_DATA), 0600);
  chmod(p, 0600);
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit rl = {FSIZE_CAP, FSIZE_CAP};
  setrlimit(RLIMIT_FSIZE, &rl);
  return 0;
}

struct chunk {
  uint8_t *data;
  size_t len;
  char digest[72];
};

/* Replaces "@N" (N > k) in c[k] by chunk N's digest. */
static void resolve(struct chunk *c, size_t n, size_t k)
{
  size_t cap = c[k].len * 36 + 1, o = 0;
  uint8_t *out = malloc(cap);
  FUZZ_CHECK(out, "out of memory");
  for (size_t i = 0; i < c[k].len; i++) {
    uint8_t ch = c[k].data[i];
    if (ch == '@' && i + 1 < c[k].len && c[k].data[i + 1] >= '1' && c[k].data[i + 1] <= '9') {
      size_t ref = (size_t)(c[k].data[i + 1] - '0');
      if (ref > k && ref < n) {
        memcpy(out + o, c[ref].digest, 71);
        o += 71;
        i++;
        continue;
      }
    }
    out[o++] = ch;
  }
  c[k].data = out;
  c[k].len = o;
}

static void add_entry(struct archive *a, const char *name, const void *data, size_t len)
{
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, (la_int64_t)len);
  FUZZ_CHECK(archive_write_header(a, e) == ARCHIVE_OK, "tar header: %s", archive_error_string(a));
  if (len)
    FUZZ_CHECK(archive_write_data(a, data, len) == (la_ssize_t)len, "tar data");
  archive_entry_free(e);
}

static void write_structured(const uint8_t *data, size_t len)
{
  struct chunk c[MAX_CHUNKS];
  size_t n = 0;
  const uint8_t *p = data, *end = data + len;
  while (n < MAX_CHUNKS) {
    const uint8_t *s = n + 1 < MAX_CHUNKS ? memmem(p, (size_t)(end - p), SEP, strlen(SEP)) : NULL;
    c[n].data = (uint8_t *)p;
    c[n].len = s ? (size_t)(s - p) : (size_t)(end - p);
    n++;
    if (!s)
      break;
    p = s + strlen(SEP);
  }
  for (size_t k = n; k-- > 0;) {
    resolve(c, n, k);
    img_sha256_hex(c[k].data, c[k].len, c[k].digest);
  }
  struct archive *a = archive_write_new();
  FUZZ_CHECK(a && archive_write_set_format_pax_restricted(a) == ARCHIVE_OK &&
                 archive_write_open_filename(a, archive_path) == ARCHIVE_OK,
             "tar writer");
  static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
  add_entry(a, "oci-layout", layout, strlen(layout));
  add_entry(a, "index.json", c[0].data, c[0].len);
  for (size_t k = 1; k < n; k++) {
    char name[128];
    snprintf(name, sizeof(name), "blobs/sha256/%s", c[k].digest + 7);
    add_entry(a, name, c[k].data, c[k].len);
  }
  FUZZ_CHECK(archive_write_close(a) == ARCHIVE_OK, "tar close");
  archive_write_free(a);
  for (size_t k = 0; k < n; k++)
    free(c[k].data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
  if (len < 1)
    return 0;
  uint8_t mode = data[0];
  int fds = fuzz_fd_count();
  if (mode & 1)
    fuzz_write_file(AT_FDCWD, archive_path, data + 1, len - 1, 0600);
  else
    write_structured(data + 1, len - 1);

  img_store *st = NULL;
  q_error *err = NULL;
  struct img_store_opts o = {.root = store_root};
  FUZZ_CHECK(img_store_open(&o, &st, &err) == 0, "store: %s", q_error_msg(err));
  char **ids = NULL;
  int rc = img_import(st, archive_path, (mode & 2) ? "fuzz.local/imported" : NULL, &ids, &err);
  if (getenv("QUARK_FUZZ_VERBOSE"))
    fprintf(stderr, "fuzz: import: %d %s (%zu images)\n", rc, rc ? q_error_msg(err) : "",
            rc ? 0 : img_strv_len(ids));
  if (rc == 0) {
    for (size_t i = 0; ids && ids[i]; i++) {
      img_info *in = NULL;
      FUZZ_CHECK(img_status(st, ids[i], &in, &err) == 0, "imported %s not found: %s", ids[i],
                 q_error_msg(err));
      for (size_t k = 0; in->layers && in->layers[k]; k++) {
        char *lp = img_layer_path(st, in->layers[k]);
        FUZZ_CHECK(lp && access(lp, F_OK) == 0, "layer %s of %s not unpacked", in->layers[k],
                   ids[i]);
        free(lp);
      }
      img_info_free(in);
    }
    img_info **all = NULL;
    size_t n = 0;
    FUZZ_CHECK(img_list(st, &all, &n, &err) == 0, "list: %s", q_error_msg(err));
    for (size_t i = 0; i < n; i++)
      FUZZ_CHECK(img_remove(st, all[i]->id, &err) == 0, "remove %s: %s", all[i]->id,
                 q_error_msg(err));
    img_infov_free(all, n);
    if (n > 0) {
      char *p = NULL;
      const char *dirs[] = {"blobs/sha256", "layers/sha256", "images"};
      for (size_t i = 0; i < Q_ARRAY_SIZE(dirs); i++) {
        FUZZ_CHECK(asprintf(&p, "%s/%s", store_root, dirs[i]) > 0, "oom");
        FUZZ_CHECK(count_entries(p) == 0, "%s not empty after every image was removed", p);
        free(p);
      }
    }
  } else {
    FUZZ_CHECK(err, "failure without an error message");
  }
  img_strv_free(ids);
  q_error_free(&err);
  img_store_close(st);

  FUZZ_CHECK(count_entries(base) == 3, "%s gained entries: the import wrote outside its store",
             base);
  FUZZ_CHECK(count_entries(outer) == 2, "%s gained entries: the import wrote outside its store",
             outer);
  check_victim(base);
  check_victim(outer);
  FUZZ_CHECK(q_rm_rf(store_root, &err) == 0, "cleanup: %s", q_error_msg(err));
  FUZZ_CHECK_FDS(fds);
  return 0;
}
