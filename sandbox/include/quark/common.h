/* Common host utilities shared by every host binary (quarkd, quark,
 * quark-sandbox, tsord): error objects, logging, cleanup helpers and atomic
 * file writes. Prefix: q_.
 *
 * Contract:
 * - Functions that can fail return a negative errno and, when the caller
 *   passes a non-NULL `q_error **err`, fill *err with a message that gathers
 *   context as it climbs (q_error_wrap). The caller owns *err and frees it
 *   with q_error_free (or the q_cleanup_error attribute).
 * - Logging is process-wide: q_log_init once at start, then q_log* from any
 *   thread. Lines are written whole with one write(2), so concurrent threads
 *   and processes appending to one file never interleave within a line.
 */
#ifndef QUARK_COMMON_H
#define QUARK_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#define Q_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define Q_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ---- error objects (crun style) ---- */

typedef struct q_error {
  int status;      /* positive errno, 0 when not an errno-based error */
  char *msg;       /* "outer context: inner context: cause" */
} q_error;

/* Makes a new error; returns -status (or -EIO when status is 0) so that
 * callers can write `return q_error_make(err, errno, "open %s", path);`.
 * When err is NULL nothing is allocated. */
int q_error_make(q_error **err, int status, const char *fmt, ...) Q_PRINTF(3, 4);
/* Prefixes context to an existing error; returns -status. */
int q_error_wrap(q_error **err, const char *fmt, ...) Q_PRINTF(2, 3);
void q_error_free(q_error **err);
/* Message of an error, never NULL. */
const char *q_error_msg(const q_error *err);

/* ---- cleanup attributes ---- */

void q_freep(void *p);
void q_closep(int *fd);
#define q_cleanup_free __attribute__((cleanup(q_freep)))
#define q_cleanup_close __attribute__((cleanup(q_closep)))
#define q_cleanup_error __attribute__((cleanup(q_error_free)))

/* Hands ownership out of a cleanup variable: returns *p and clears it. */
#define q_steal_ptr(p) ({ __typeof__(*(p)) q__v = *(p); *(p) = NULL; q__v; })
#define q_steal_fd(p) ({ int q__v = *(p); *(p) = -1; q__v; })

/* ---- logging ---- */

typedef enum {
  Q_LOG_OFF = 0,
  Q_LOG_ERROR,
  Q_LOG_WARN,
  Q_LOG_INFO,
  Q_LOG_DEBUG,
  Q_LOG_TRACE,
} q_log_level;

/* Parses "Off", "Error", "Warn", "Info", "Debug", "Trace" (case-insensitive).
 * Returns -EINVAL on anything else. */
int q_log_level_parse(const char *s, q_log_level *out);
const char *q_log_level_name(q_log_level level);

/* path NULL: log to stderr. The file and its parent directory are created.
 * component names the binary ("quarkd", "sandbox"...). */
int q_log_init(const char *path, q_log_level level, const char *component, q_error **err);
void q_log_set_level(q_log_level level);
q_log_level q_log_get_level(void);
bool q_log_enabled(q_log_level level);

/* One line: "2026-11-27T03:15:29.123456Z level component [id] message". id
 * (a pod or container id) may be NULL. */
void q_logv(q_log_level level, const char *id, const char *fmt, va_list ap);
void q_log(q_log_level level, const char *id, const char *fmt, ...) Q_PRINTF(3, 4);

#define q_error_log(id, ...) q_log(Q_LOG_ERROR, id, __VA_ARGS__)
#define q_warn(id, ...) q_log(Q_LOG_WARN, id, __VA_ARGS__)
#define q_info(id, ...) q_log(Q_LOG_INFO, id, __VA_ARGS__)
#define q_debug(id, ...) \
  do { if (q_log_enabled(Q_LOG_DEBUG)) q_log(Q_LOG_DEBUG, id, __VA_ARGS__); } while (0)
#define q_trace(id, ...) \
  do { if (q_log_enabled(Q_LOG_TRACE)) q_log(Q_LOG_TRACE, id, __VA_ARGS__); } while (0)

/* ---- files ---- */

/* Writes data to path atomically: temp file in the same directory, fsync,
 * rename over path, fsync the directory. On failure path is unchanged and no
 * temp file is left. */
int q_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, q_error **err);
/* The same without the two fsyncs: readers see the old or the new file,
 * never a part, and a crash of the writer (kill -9) keeps it, but a power
 * loss may not (for files that do not outlive a reboot's meaning, or that
 * a later synced write makes durable). */
int q_write_file_replace(const char *path, const void *data, size_t len, mode_t mode, q_error **err);
/* Reads a whole file (at most max bytes; -EFBIG beyond). *out is
 * NUL-terminated; the caller frees it. */
int q_read_file(const char *path, size_t max, char **out, size_t *len, q_error **err);
/* mkdir -p with mode for every created component. */
int q_mkdir_p(const char *path, mode_t mode, q_error **err);
/* rm -rf that never follows symlinks and stays on one filesystem. Missing
 * path is success. */
int q_rm_rf(const char *path, q_error **err);

/* Full read/write loops that retry on EINTR and short transfers. */
ssize_t q_read_all(int fd, void *buf, size_t len);
ssize_t q_write_all(int fd, const void *buf, size_t len);

/* ---- misc ---- */

/* 64 lowercase hex characters from getrandom(2) into out[65]. */
int q_random_id(char out[65]);
/* Nanoseconds since the epoch (CLOCK_REALTIME) / monotonic. */
int64_t q_now_ns(void);
int64_t q_mono_ns(void);
/* RFC 3339 with nanoseconds in UTC: out must hold 40 bytes. */
void q_format_rfc3339nano(int64_t ns, char out[40]);

#endif
