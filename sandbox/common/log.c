/* Process-wide logging: one line per event, written with a single write(2)
 * so lines from threads and processes sharing the file never interleave. */
#include "quark/common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static int log_fd = 2;
static _Atomic int log_level = Q_LOG_INFO;
static char log_component[32] = "quark";

static const char *const level_names[] = {"Off", "Error", "Warn", "Info", "Debug", "Trace"};

int q_log_level_parse(const char *s, q_log_level *out)
{
  for (size_t i = 0; i < Q_ARRAY_SIZE(level_names); i++) {
    if (s != NULL && strcasecmp(s, level_names[i]) == 0) {
      *out = (q_log_level)i;
      return 0;
    }
  }
  return -EINVAL;
}

const char *q_log_level_name(q_log_level level)
{
  if ((unsigned)level >= Q_ARRAY_SIZE(level_names))
    return "?";
  return level_names[level];
}

int q_log_init(const char *path, q_log_level level, const char *component, q_error **err)
{
  atomic_store(&log_level, level);
  if (component != NULL)
    snprintf(log_component, sizeof(log_component), "%s", component);
  if (path == NULL || path[0] == '\0') {
    log_fd = 2;
    return 0;
  }
  q_cleanup_free char *dir = strdup(path);
  if (dir == NULL)
    return q_error_make(err, ENOMEM, "log path");
  char *slash = strrchr(dir, '/');
  if (slash != NULL && slash != dir) {
    *slash = '\0';
    int r = q_mkdir_p(dir, 0755, err);
    if (r < 0)
      return q_error_wrap(err, "log directory");
  }
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0)
    return q_error_make(err, errno, "open log file %s", path);
  if (log_fd > 2)
    close(log_fd);
  log_fd = fd;
  return 0;
}

void q_log_set_level(q_log_level level) { atomic_store(&log_level, level); }
q_log_level q_log_get_level(void) { return (q_log_level)atomic_load(&log_level); }
bool q_log_enabled(q_log_level level)
{
  return level != Q_LOG_OFF && (int)level <= atomic_load(&log_level);
}

void q_logv(q_log_level level, const char *id, const char *fmt, va_list ap)
{
  if (!q_log_enabled(level))
    return;
  char line[4096];
  char ts[40];
  q_format_rfc3339nano(q_now_ns(), ts);
  int n;
  if (id != NULL && id[0] != '\0')
    n = snprintf(line, sizeof(line), "%s %-5s %s [%.12s] ", ts, q_log_level_name(level),
                 log_component, id);
  else
    n = snprintf(line, sizeof(line), "%s %-5s %s ", ts, q_log_level_name(level), log_component);
  if (n < 0)
    return;
  if ((size_t)n < sizeof(line) - 1) {
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    if (m > 0)
      n += m;
  }
  if ((size_t)n > sizeof(line) - 2)
    n = (int)sizeof(line) - 2;
  /* one line per event: fold embedded newlines */
  for (int i = 0; i < n; i++)
    if (line[i] == '\n')
      line[i] = ' ';
  line[n++] = '\n';
  int saved = errno;
  ssize_t w = write(log_fd, line, (size_t)n);
  (void)w;
  errno = saved;
}

void q_log(q_log_level level, const char *id, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  q_logv(level, id, fmt, ap);
  va_end(ap);
}

int64_t q_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t q_mono_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void q_format_rfc3339nano(int64_t ns, char out[40])
{
  time_t sec = (time_t)(ns / 1000000000LL);
  long frac = (long)(ns % 1000000000LL);
  if (frac < 0) {
    frac += 1000000000L;
    sec -= 1;
  }
  struct tm tm;
  gmtime_r(&sec, &tm);
  size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 40 - n, ".%09ldZ", frac);
}
