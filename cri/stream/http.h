/* Minimal HTTP/1.1 request-head parser and response writer for the
 * streaming server's upgrade handshakes (internal to cri/stream).
 *
 * Contract: the parser works on a complete head held by the caller and
 * never reads past it; it rejects anything it does not understand rather
 * than guessing (obs-fold, bare LF, control characters, over-long heads,
 * too many headers). Requests here never carry a body. */
#ifndef QUARK_CRI_STREAM_HTTP_H
#define QUARK_CRI_STREAM_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define HTTP_MAX_HEAD 8192
#define HTTP_MAX_HEADERS 64

struct http_request {
  char *method;
  char *target; /* path and query as sent */
  int minor;    /* HTTP/1.<minor> */
  size_t nhdr;
  struct {
    char *name, *value;
  } hdr[HTTP_MAX_HEADERS];
  char buf[HTTP_MAX_HEAD + 1];
};

/* Parses the head in data[0..len). Returns the head's length including the
 * final CRLFCRLF (> 0), 0 when the terminator has not arrived yet and len is
 * still under HTTP_MAX_HEAD, -EMSGSIZE when it is too long, -E2BIG for too
 * many headers, -EBADMSG when malformed. */
ssize_t http_parse(const char *data, size_t len, struct http_request *req);

/* First value of a header (name compared case-insensitively), or NULL. */
const char *http_header(const struct http_request *req, const char *name);
/* Whether any instance of a comma-separated list header holds token
 * (case-insensitive). */
bool http_header_has_token(const struct http_request *req, const char *name, const char *token);
/* Calls fn for each comma-separated element of every instance of a header, in
 * order, until fn returns true; returns that element's index or -1. */
int http_header_each(const struct http_request *req, const char *name,
                     bool (*fn)(const char *elem, size_t len, void *arg), void *arg);

/* Reads a request head from fd within timeout_ms. Bytes that arrived after
 * the head are copied to extra (at most HTTP_MAX_HEAD) with their count in
 * *extra_len. Returns 0, -ETIMEDOUT, -ECONNRESET on EOF, or a parse error. */
int http_read_request(int fd, int timeout_ms, struct http_request *req, char *extra,
                      size_t *extra_len);

/* Writes a whole response with the given extra header lines (each "Name:
 * value", no CRLF) and a text body (may be NULL). Returns 0 or -errno. */
int http_respond(int fd, int status, const char *const *headers, size_t nheaders, const char *body);
const char *http_reason(int status);

#endif
