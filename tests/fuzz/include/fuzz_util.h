/* Helpers shared by the libFuzzer targets (header only).
 *
 * Scratch directories live on /dev/shm when it is writable (the targets that
 * touch files fsync on every input; tmpfs makes that cheap), else under
 * $TMPDIR or /tmp, and are removed when the fuzzer exits normally.
 */
#ifndef QUARK_FUZZ_UTIL_H
#define QUARK_FUZZ_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <quark/common.h>

/* Aborts with a message: libFuzzer records the input as a crash. */
#define FUZZ_CHECK(cond, ...)                                                                      \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "fuzz check failed: %s (%s:%d): ", #cond, __FILE__, __LINE__);               \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

static char *fuzz__dirs[8];
static size_t fuzz__n_dirs;

static void fuzz__cleanup(void)
{
  for (size_t i = 0; i < fuzz__n_dirs; i++) {
    q_rm_rf(fuzz__dirs[i], NULL);
    free(fuzz__dirs[i]);
  }
  fuzz__n_dirs = 0;
}

/* A fresh empty directory, removed at exit. Aborts on failure (setup). */
static inline const char *fuzz_tmpdir(const char *tag)
{
  const char *base = "/dev/shm";
  if (access(base, W_OK) != 0)
    base = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  char *p = NULL;
  if (asprintf(&p, "%s/quark-fuzz-%s-XXXXXX", base, tag) < 0 || !mkdtemp(p)) {
    perror("fuzz: scratch directory");
    abort();
  }
  if (fuzz__n_dirs == 0)
    atexit(fuzz__cleanup);
  if (fuzz__n_dirs < sizeof(fuzz__dirs) / sizeof(fuzz__dirs[0]))
    fuzz__dirs[fuzz__n_dirs++] = p;
  return p;
}

/* Writes a whole file (created or truncated). Aborts on failure. */
static inline void fuzz_write_file(int dirfd, const char *path, const void *data, size_t len,
                                   mode_t mode)
{
  int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0 || (len && q_write_all(fd, data, len) != (ssize_t)len)) {
    fprintf(stderr, "fuzz: write %s: %s\n", path, strerror(errno));
    abort();
  }
  close(fd);
}

/* A NUL-terminated copy of data (the caller frees). */
static inline char *fuzz_strndup(const uint8_t *data, size_t len)
{
  char *s = malloc(len + 1);
  if (!s)
    abort();
  memcpy(s, data, len);
  s[len] = '\0';
  return s;
}

/* Open file descriptors of this process. */
static inline int fuzz_fd_count(void)
{
  DIR *d = opendir("/proc/self/fd");
  if (!d)
    return -1;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)))
    n += de->d_name[0] != '.';
  closedir(d);
  return n - 1; /* the directory's own fd */
}

/* Aborts when an input left file descriptors open (the figures script
 * counts this message as a leak). */
#define FUZZ_CHECK_FDS(before)                                                                     \
  do {                                                                                             \
    int fuzz__now = fuzz_fd_count();                                                               \
    FUZZ_CHECK(fuzz__now <= (before), "file descriptors leaked: %d open, %d before the input",     \
               fuzz__now, (before));                                                               \
  } while (0)

#endif
