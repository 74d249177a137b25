/* SPDY/3.1 frame codec (internal to cri/stream; the unit tests include it).
 *
 * Contract:
 * - spdy_parse() never reads past len and never allocates: a frame that is
 *   not complete yet gives 0, a malformed or oversized one a negative errno.
 *   The parsed frame points into the caller's buffer.
 * - Header blocks go through one spdy_zctx per direction per connection
 *   (the zlib streams carry state from one block to the next, so every block
 *   received must be inflated, even for frames we otherwise ignore).
 * - Builders append whole frames to a spdy_buf; they fail only on ENOMEM or
 *   an argument out of the protocol's range.
 */
#ifndef QUARK_CRI_STREAM_SPDY_H
#define QUARK_CRI_STREAM_SPDY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <zlib.h>

#define SPDY_VERSION 3
#define SPDY_HEADER_LEN 8
#define SPDY_MAX_LEN ((1u << 24) - 1)

enum spdy_type {
  SPDY_DATA = 0, /* not on the wire: data frames have no type */
  SPDY_SYN_STREAM = 1,
  SPDY_SYN_REPLY = 2,
  SPDY_RST_STREAM = 3,
  SPDY_SETTINGS = 4,
  SPDY_PING = 6,
  SPDY_GOAWAY = 7,
  SPDY_HEADERS = 8,
  SPDY_WINDOW_UPDATE = 9,
};

#define SPDY_FLAG_FIN 0x01
#define SPDY_FLAG_UNIDIRECTIONAL 0x02

enum spdy_rst_status {
  SPDY_RST_PROTOCOL_ERROR = 1,
  SPDY_RST_INVALID_STREAM = 2,
  SPDY_RST_REFUSED_STREAM = 3,
  SPDY_RST_CANCEL = 5,
  SPDY_RST_INTERNAL_ERROR = 6,
  SPDY_RST_STREAM_IN_USE = 8,
  SPDY_RST_STREAM_ALREADY_CLOSED = 9,
};

enum spdy_goaway_status {
  SPDY_GOAWAY_OK = 0,
  SPDY_GOAWAY_PROTOCOL_ERROR = 1,
  SPDY_GOAWAY_INTERNAL_ERROR = 2
};

struct spdy_frame {
  enum spdy_type type; /* SPDY_DATA for data frames; unknown control types keep their number */
  bool control;
  uint8_t flags;
  uint32_t stream_id; /* DATA, SYN_*, RST, HEADERS, WINDOW_UPDATE; last-good id for GOAWAY */
  uint32_t assoc_id;  /* SYN_STREAM */
  uint32_t value;     /* RST/GOAWAY status, PING id, WINDOW_UPDATE delta */
  const uint8_t
      *payload; /* DATA: the data; SYN_*, HEADERS: the compressed header block; SETTINGS: entries */
  size_t payload_len;
};

/* Parses one frame from buf. Returns the bytes it took (> 0), 0 when buf
 * does not hold a whole frame yet, -EMSGSIZE when the frame's length exceeds
 * max_len, -EPROTO for a wrong version or a length that does not fit the
 * frame's type. Unknown control frame types parse fine (SPDY says ignore). */
ssize_t spdy_parse(const uint8_t *buf, size_t len, size_t max_len, struct spdy_frame *out);

/* Growable output buffer. */
struct spdy_buf {
  uint8_t *data;
  size_t len, cap;
};
int spdy_buf_reserve(struct spdy_buf *b, size_t more);
int spdy_buf_append(struct spdy_buf *b, const void *p, size_t n);
void spdy_buf_free(struct spdy_buf *b);

/* A header list: names lowercase and unique; a value with several parts
 * keeps SPDY's NUL separators. */
struct spdy_header {
  char *name;
  char *value;
  size_t value_len;
};
struct spdy_headers {
  struct spdy_header *v;
  size_t n;
};
/* Value of name (exact, lowercase), first NUL-separated part, or NULL. */
const char *spdy_headers_get(const struct spdy_headers *h, const char *name);
void spdy_headers_free(struct spdy_headers *h);

#define SPDY_MAX_HEADERS 64
#define SPDY_MAX_HEADER_BLOCK (64 * 1024) /* decompressed */

/* zlib contexts: one for what we send, one for what we receive. */
struct spdy_zctx {
  z_stream z;
  bool deflate;
  bool ready;
};
int spdy_zctx_init(struct spdy_zctx *c, bool deflate);
void spdy_zctx_free(struct spdy_zctx *c);

/* Inflates and decodes a header block. -EPROTO on zlib errors, a block over
 * SPDY_MAX_HEADER_BLOCK or SPDY_MAX_HEADERS, empty or uppercase names,
 * duplicate names or lengths past the end. */
int spdy_headers_decode(struct spdy_zctx *c, const uint8_t *blk, size_t len,
                        struct spdy_headers *out);
/* Encodes and deflates names[i]=values[i] (names must be lowercase and
 * unique: -EINVAL otherwise) and appends the compressed block to out. */
int spdy_headers_encode(struct spdy_zctx *c, const char *const *names, const char *const *values,
                        size_t n, struct spdy_buf *out);

/* Frame builders. Header blocks are compressed with c. */
int spdy_build_syn_stream(struct spdy_buf *b, struct spdy_zctx *c, uint32_t id, uint32_t assoc,
                          uint8_t flags, const char *const *names, const char *const *values,
                          size_t n);
int spdy_build_syn_reply(struct spdy_buf *b, struct spdy_zctx *c, uint32_t id, uint8_t flags,
                         const char *const *names, const char *const *values, size_t n);
int spdy_build_data(struct spdy_buf *b, uint32_t id, uint8_t flags, const void *data, size_t len);
int spdy_build_rst(struct spdy_buf *b, uint32_t id, uint32_t status);
int spdy_build_ping(struct spdy_buf *b, uint32_t id);
int spdy_build_goaway(struct spdy_buf *b, uint32_t last_good, uint32_t status);
int spdy_build_settings(struct spdy_buf *b, const uint32_t *ids, const uint32_t *values, size_t n);
int spdy_build_window_update(struct spdy_buf *b, uint32_t id, uint32_t delta);

/* The SPDY/3 header-compression dictionary (1423 bytes). */
const uint8_t *spdy_dictionary(size_t *len);

#endif
