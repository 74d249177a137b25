/* Fuzzer: layer unpack (img_unpack_layer: tar, gzip or zstd through
 * libarchive) of a hostile layer.
 *
 * Each input is written to <scratch>/layer and unpacked into an empty
 * <scratch>/a/b/dest. The unpack must never write outside dest, whatever
 * the entries say ("..", absolute names, symlinks then entries through
 * them, hard links to outside files, whiteouts of outside names). After
 * every input, whether the unpack succeeded or not:
 *  - <scratch>, <scratch>/a and <scratch>/a/b hold exactly what they held
 *    before (names and types);
 *  - the victim file at each level (a hard link or write target an escape
 *    would aim at) keeps its size, mode, owner, link count and contents.
 * Then dest is removed and made again.
 *
 * Writes are capped with RLIMIT_FSIZE (a small compressed input can expand a
 * lot): past it a write fails (EFBIG) and the unpack reports an error.
 * Device nodes that a layer creates (other than 0/0 whiteouts) are legal
 * here and counted: the guard against them is at open time in the sandbox.
 */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "fuzz_util.h"
#include "image.h"

#define VICTIM_DATA "do not touch\n"
#define FSIZE_CAP (64u << 20)

static const char *base;
static char *levels[3]; /* base, base/a, base/a/b */
static char *dest, *layer;
static unsigned long devices_seen;

struct listing {
  char names[8][64];
  mode_t types[8];
  size_t n;
};
static struct listing before[3];

static void list_dir(const char *dir, struct listing *l)
{
  memset(l, 0, sizeof(*l));
  DIR *d = opendir(dir);
  FUZZ_CHECK(d, "opendir %s", dir);
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
      continue;
    FUZZ_CHECK(l->n < 8, "unexpected entry \"%s\" in %s: the unpack wrote outside its root",
               de->d_name, dir);
    snprintf(l->names[l->n], sizeof(l->names[0]), "%s", de->d_name);
    struct stat sb;
    FUZZ_CHECK(fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0, "stat");
    l->types[l->n++] = sb.st_mode & S_IFMT;
  }
  closedir(d);
  /* readdir order changes as entries come and go: sort by name. */
  for (size_t i = 1; i < l->n; i++)
    for (size_t k = i; k > 0 && strcmp(l->names[k - 1], l->names[k]) > 0; k--) {
      char tn[64];
      memcpy(tn, l->names[k], sizeof(tn));
      memcpy(l->names[k], l->names[k - 1], sizeof(tn));
      memcpy(l->names[k - 1], tn, sizeof(tn));
      mode_t tt = l->types[k];
      l->types[k] = l->types[k - 1];
      l->types[k - 1] = tt;
    }
}

static void check_victim(const char *dir)
{
  char p[4096];
  snprintf(p, sizeof(p), "%s/victim", dir);
  struct stat sb;
  FUZZ_CHECK(lstat(p, &sb) == 0 && S_ISREG(sb.st_mode), "%s changed type or vanished", p);
  FUZZ_CHECK(sb.st_size == (off_t)strlen(VICTIM_DATA) && (sb.st_mode & 07777) == 0600 &&
                 sb.st_uid == getuid() && sb.st_gid == getgid() && sb.st_nlink == 1,
             "%s changed: size %lld mode %o owner %u:%u links %lu", p, (long long)sb.st_size,
             (unsigned)sb.st_mode, (unsigned)sb.st_uid, (unsigned)sb.st_gid,
             (unsigned long)sb.st_nlink);
  char buf[64] = "";
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  FUZZ_CHECK(fd >= 0 && read(fd, buf, sizeof(buf) - 1) >= 0, "read %s", p);
  close(fd);
  FUZZ_CHECK(strcmp(buf, VICTIM_DATA) == 0, "%s contents changed", p);
}

static void count_devices(int dfd)
{
  DIR *d = fdopendir(dfd);
  if (!d) {
    close(dfd);
    return;
  }
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
      continue;
    struct stat sb;
    if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
      continue;
    if ((S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode)) && sb.st_rdev != makedev(0, 0))
      devices_seen++;
    if (S_ISDIR(sb.st_mode)) {
      int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0)
        count_devices(sub);
    }
  }
  closedir(d);
}

static void report(void)
{
  if (devices_seen)
    fprintf(stderr, "fuzz: layers created %lu device nodes other than whiteouts\n", devices_seen);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  q_log_set_level(Q_LOG_OFF);
  base = fuzz_tmpdir("layer");
  if (asprintf(&levels[0], "%s", base) < 0 || asprintf(&levels[1], "%s/a", base) < 0 ||
      asprintf(&levels[2], "%s/a/b", base) < 0 || asprintf(&dest, "%s/a/b/dest", base) < 0 ||
      asprintf(&layer, "%s/layer", base) < 0)
    abort();
  FUZZ_CHECK(mkdir(levels[1], 0755) == 0 && mkdir(levels[2], 0755) == 0 && mkdir(dest, 0755) == 0,
             "mkdir");
  for (size_t i = 0; i < 3; i++) {
    int dfd = open(levels[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    FUZZ_CHECK(dfd >= 0, "open %s", levels[i]);
    fuzz_write_file(dfd, "victim", VICTIM_DATA, strlen(VICTIM_DATA), 0600);
    fchmodat(dfd, "victim", 0600, 0);
    close(dfd);
  }
  fuzz_write_file(AT_FDCWD, layer, "", 0, 0600);
  for (size_t i = 0; i < 3; i++)
    list_dir(levels[i], &before[i]);
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit rl = {FSIZE_CAP, FSIZE_CAP};
  setrlimit(RLIMIT_FSIZE, &rl);
  atexit(report);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
  int fds = fuzz_fd_count();
  fuzz_write_file(AT_FDCWD, layer, data, len, 0600);
  q_error *err = NULL;
  if (img_unpack_layer(layer, dest, &err) < 0)
    FUZZ_CHECK(err && q_error_msg(err)[0], "failure without an error message");
  q_error_free(&err);

  for (size_t i = 0; i < 3; i++) {
    struct listing now;
    list_dir(levels[i], &now);
    FUZZ_CHECK(now.n == before[i].n,
               "%s now holds %zu entries, %zu before: the unpack wrote "
               "outside its root",
               levels[i], now.n, before[i].n);
    for (size_t k = 0; k < now.n; k++)
      FUZZ_CHECK(!strcmp(now.names[k], before[i].names[k]) && now.types[k] == before[i].types[k],
                 "%s/%s changed: the unpack wrote outside its root", levels[i], now.names[k]);
    check_victim(levels[i]);
  }
  struct stat sb;
  FUZZ_CHECK(lstat(dest, &sb) == 0 && S_ISDIR(sb.st_mode), "dest is no longer a directory");
  int dfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0)
    count_devices(dfd);

  /* Fresh root for the next input. A layer may leave directories without
   * write or search permission: root ignores that, so q_rm_rf copes. */
  FUZZ_CHECK(q_rm_rf(dest, &err) == 0, "cleanup: %s", q_error_msg(err));
  FUZZ_CHECK(mkdir(dest, 0755) == 0, "mkdir dest");
  FUZZ_CHECK_FDS(fds);
  return 0;
}
