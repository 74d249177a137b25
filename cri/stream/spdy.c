/* SPDY/3.1 framing: parse, build, and the zlib-compressed header blocks.
 * Layouts follow the SPDY/3.1 draft: every frame has an 8-byte header,
 * control frames carry version 3 and a type, data frames a stream id. */
#include "spdy.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- the header-compression dictionary ----
 * The draft defines it as a run of length-prefixed words followed by a
 * block of plain text; we keep that shape and assemble the bytes once. */
static const char *const dict_words[] = {
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
};
static const char dict_tail[] =
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
    "Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, "
    "GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/"
    "plain,"
    "text/"
    "javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq="
    "0.";

static uint8_t dict_bytes[1500];
static size_t dict_len;
static pthread_once_t dict_once = PTHREAD_ONCE_INIT;

static void dict_build(void)
{
  size_t n = 0;
  for (size_t i = 0; i < sizeof(dict_words) / sizeof(dict_words[0]); i++) {
    uint32_t l = (uint32_t)strlen(dict_words[i]);
    dict_bytes[n++] = (uint8_t)(l >> 24);
    dict_bytes[n++] = (uint8_t)(l >> 16);
    dict_bytes[n++] = (uint8_t)(l >> 8);
    dict_bytes[n++] = (uint8_t)l;
    memcpy(dict_bytes + n, dict_words[i], l);
    n += l;
  }
  memcpy(dict_bytes + n, dict_tail, sizeof(dict_tail) - 1);
  dict_len = n + sizeof(dict_tail) - 1;
}

const uint8_t *spdy_dictionary(size_t *len)
{
  pthread_once(&dict_once, dict_build);
  *len = dict_len;
  return dict_bytes;
}

/* ---- big-endian helpers ---- */

static uint32_t rd32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint32_t rd24(const uint8_t *p)
{
  return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}
static void wr32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* ---- parse ---- */

ssize_t spdy_parse(const uint8_t *buf, size_t len, size_t max_len, struct spdy_frame *f)
{
  if (len < SPDY_HEADER_LEN)
    return 0;
  size_t plen = rd24(buf + 5);
  if (plen > max_len)
    return -EMSGSIZE;
  if (len < SPDY_HEADER_LEN + plen)
    return 0;
  memset(f, 0, sizeof(*f));
  const uint8_t *p = buf + SPDY_HEADER_LEN;
  f->flags = buf[4];
  f->payload = p;
  f->payload_len = plen;
  if (!(buf[0] & 0x80)) {
    f->type = SPDY_DATA;
    f->stream_id = rd32(buf) & 0x7fffffff;
    if (f->stream_id == 0)
      return -EPROTO;
    return (ssize_t)(SPDY_HEADER_LEN + plen);
  }
  f->control = true;
  unsigned version = ((unsigned)(buf[0] & 0x7f) << 8) | buf[1];
  if (version != SPDY_VERSION)
    return -EPROTO;
  f->type = (enum spdy_type)((unsigned)buf[2] << 8 | buf[3]);
  switch (f->type) {
  case SPDY_SYN_STREAM:
    if (plen < 10)
      return -EPROTO;
    f->stream_id = rd32(p) & 0x7fffffff;
    f->assoc_id = rd32(p + 4) & 0x7fffffff;
    f->payload = p + 10;
    f->payload_len = plen - 10;
    break;
  case SPDY_SYN_REPLY:
  case SPDY_HEADERS:
    if (plen < 4)
      return -EPROTO;
    f->stream_id = rd32(p) & 0x7fffffff;
    f->payload = p + 4;
    f->payload_len = plen - 4;
    break;
  case SPDY_RST_STREAM:
  case SPDY_WINDOW_UPDATE:
  case SPDY_GOAWAY:
    if (plen != 8)
      return -EPROTO;
    f->stream_id = rd32(p) & 0x7fffffff;
    f->value = rd32(p + 4);
    if (f->type == SPDY_WINDOW_UPDATE)
      f->value &= 0x7fffffff;
    f->payload_len = 0;
    break;
  case SPDY_PING:
    if (plen != 4)
      return -EPROTO;
    f->value = rd32(p);
    f->payload_len = 0;
    break;
  case SPDY_SETTINGS:
    if (plen < 4 || rd32(p) > (plen - 4) / 8 || (plen - 4) != (size_t)rd32(p) * 8)
      return -EPROTO;
    f->value = rd32(p);
    f->payload = p + 4;
    f->payload_len = plen - 4;
    break;
  default:
    break;
  }
  if ((f->type == SPDY_SYN_STREAM || f->type == SPDY_SYN_REPLY || f->type == SPDY_RST_STREAM) &&
      f->stream_id == 0)
    return -EPROTO;
  return (ssize_t)(SPDY_HEADER_LEN + plen);
}

/* ---- buffers ---- */

int spdy_buf_reserve(struct spdy_buf *b, size_t more)
{
  if (b->len + more <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + more)
    cap *= 2;
  uint8_t *d = realloc(b->data, cap);
  if (!d)
    return -ENOMEM;
  b->data = d;
  b->cap = cap;
  return 0;
}

int spdy_buf_append(struct spdy_buf *b, const void *p, size_t n)
{
  int r = spdy_buf_reserve(b, n);
  if (r < 0)
    return r;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

void spdy_buf_free(struct spdy_buf *b)
{
  free(b->data);
  memset(b, 0, sizeof(*b));
}

/* ---- headers ---- */

const char *spdy_headers_get(const struct spdy_headers *h, const char *name)
{
  for (size_t i = 0; i < h->n; i++)
    if (strcmp(h->v[i].name, name) == 0)
      return h->v[i].value;
  return NULL;
}

void spdy_headers_free(struct spdy_headers *h)
{
  for (size_t i = 0; i < h->n; i++) {
    free(h->v[i].name);
    free(h->v[i].value);
  }
  free(h->v);
  h->v = NULL;
  h->n = 0;
}

int spdy_zctx_init(struct spdy_zctx *c, bool deflate)
{
  memset(c, 0, sizeof(*c));
  c->deflate = deflate;
  int r;
  if (deflate) {
    r = deflateInit(&c->z, Z_DEFAULT_COMPRESSION);
    if (r == Z_OK) {
      size_t dl;
      const uint8_t *d = spdy_dictionary(&dl);
      r = deflateSetDictionary(&c->z, d, (uInt)dl);
      if (r != Z_OK)
        deflateEnd(&c->z);
    }
  } else {
    r = inflateInit(&c->z);
  }
  if (r != Z_OK)
    return r == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
  c->ready = true;
  return 0;
}

void spdy_zctx_free(struct spdy_zctx *c)
{
  if (!c->ready)
    return;
  if (c->deflate)
    deflateEnd(&c->z);
  else
    inflateEnd(&c->z);
  c->ready = false;
}

/* Inflates one block: SPDY compresses each block with a sync flush, so all
 * of the block's input must be consumed and all of its output produced. */
static int inflate_block(struct spdy_zctx *c, const uint8_t *in, size_t len, uint8_t *out,
                         size_t cap, size_t *outlen)
{
  c->z.next_in = (Bytef *)in;
  c->z.avail_in = (uInt)len;
  c->z.next_out = out;
  c->z.avail_out = (uInt)cap;
  while (c->z.avail_in > 0) {
    int r = inflate(&c->z, Z_SYNC_FLUSH);
    if (r == Z_NEED_DICT) {
      size_t dl;
      const uint8_t *d = spdy_dictionary(&dl);
      if (inflateSetDictionary(&c->z, d, (uInt)dl) != Z_OK)
        return -EPROTO;
      continue;
    }
    if (r == Z_BUF_ERROR && c->z.avail_out == 0)
      return -EPROTO; /* more than the cap */
    if (r != Z_OK)
      return -EPROTO;
    if (c->z.avail_out == 0 && c->z.avail_in > 0)
      return -EPROTO;
  }
  *outlen = cap - c->z.avail_out;
  return 0;
}

int spdy_headers_decode(struct spdy_zctx *c, const uint8_t *blk, size_t len,
                        struct spdy_headers *out)
{
  memset(out, 0, sizeof(*out));
  if (!c->ready || c->deflate)
    return -EINVAL;
  if (len == 0)
    return -EPROTO;
  uint8_t *raw = malloc(SPDY_MAX_HEADER_BLOCK);
  if (!raw)
    return -ENOMEM;
  size_t rl;
  int r = inflate_block(c, blk, len, raw, SPDY_MAX_HEADER_BLOCK, &rl);
  if (r < 0)
    goto out;
  r = -EPROTO;
  if (rl < 4)
    goto out;
  uint32_t n = rd32(raw);
  if (n > SPDY_MAX_HEADERS)
    goto out;
  out->v = calloc(n ? n : 1, sizeof(*out->v));
  if (!out->v) {
    r = -ENOMEM;
    goto out;
  }
  size_t pos = 4;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t nl, vl;
    if (rl - pos < 4 || (nl = rd32(raw + pos)) == 0 || rl - pos - 4 < nl)
      goto bad;
    const char *name = (const char *)raw + pos + 4;
    pos += 4 + nl;
    if (rl - pos < 4 || rl - pos - 4 < (vl = rd32(raw + pos)))
      goto bad;
    const char *val = (const char *)raw + pos + 4;
    pos += 4 + vl;
    for (uint32_t k = 0; k < nl; k++)
      if (name[k] == 0 || (name[k] >= 'A' && name[k] <= 'Z'))
        goto bad;
    for (size_t k = 0; k < out->n; k++)
      if (strlen(out->v[k].name) == nl && memcmp(out->v[k].name, name, nl) == 0)
        goto bad;
    out->v[out->n].name = strndup(name, nl);
    out->v[out->n].value = malloc(vl + 1);
    if (!out->v[out->n].name || !out->v[out->n].value) {
      free(out->v[out->n].name);
      free(out->v[out->n].value);
      r = -ENOMEM;
      goto bad;
    }
    memcpy(out->v[out->n].value, val, vl);
    out->v[out->n].value[vl] = 0;
    out->v[out->n].value_len = vl;
    out->n++;
  }
  if (pos != rl)
    goto bad;
  r = 0;
  goto out;
bad:
  spdy_headers_free(out);
out:
  free(raw);
  return r;
}

int spdy_headers_encode(struct spdy_zctx *c, const char *const *names, const char *const *values,
                        size_t n, struct spdy_buf *out)
{
  if (!c->ready || !c->deflate || n > SPDY_MAX_HEADERS)
    return -EINVAL;
  struct spdy_buf raw = {0};
  uint8_t w[4];
  int r;
  wr32(w, (uint32_t)n);
  if ((r = spdy_buf_append(&raw, w, 4)) < 0)
    goto out;
  for (size_t i = 0; i < n; i++) {
    size_t nl = strlen(names[i]), vl = strlen(values[i]);
    r = -EINVAL;
    if (nl == 0)
      goto out;
    for (size_t k = 0; k < nl; k++)
      if (names[i][k] >= 'A' && names[i][k] <= 'Z')
        goto out;
    for (size_t k = 0; k < i; k++)
      if (strcmp(names[k], names[i]) == 0)
        goto out;
    wr32(w, (uint32_t)nl);
    if ((r = spdy_buf_append(&raw, w, 4)) < 0 || (r = spdy_buf_append(&raw, names[i], nl)) < 0)
      goto out;
    wr32(w, (uint32_t)vl);
    if ((r = spdy_buf_append(&raw, w, 4)) < 0 || (r = spdy_buf_append(&raw, values[i], vl)) < 0)
      goto out;
  }
  c->z.next_in = raw.data;
  c->z.avail_in = (uInt)raw.len;
  do {
    if ((r = spdy_buf_reserve(out, raw.len + 64)) < 0)
      goto out;
    c->z.next_out = out->data + out->len;
    c->z.avail_out = (uInt)(out->cap - out->len);
    int zr = deflate(&c->z, Z_SYNC_FLUSH);
    if (zr != Z_OK && zr != Z_BUF_ERROR) {
      r = -EIO;
      goto out;
    }
    out->len = out->cap - c->z.avail_out;
  } while (c->z.avail_in > 0 || c->z.avail_out == 0);
  r = 0;
out:
  spdy_buf_free(&raw);
  return r;
}

/* ---- builders ---- */

static int put_ctrl_header(struct spdy_buf *b, enum spdy_type t, uint8_t flags, size_t len)
{
  if (len > SPDY_MAX_LEN)
    return -EINVAL;
  uint8_t h[8] = {0x80,  SPDY_VERSION,         (uint8_t)(t >> 8),   (uint8_t)t,
                  flags, (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
  return spdy_buf_append(b, h, 8);
}

/* Writes the 24-bit length of a frame that starts at off, once its body is
 * known. */
static int patch_len(struct spdy_buf *b, size_t off)
{
  size_t len = b->len - off - SPDY_HEADER_LEN;
  if (len > SPDY_MAX_LEN) {
    b->len = off;
    return -EMSGSIZE;
  }
  b->data[off + 5] = (uint8_t)(len >> 16);
  b->data[off + 6] = (uint8_t)(len >> 8);
  b->data[off + 7] = (uint8_t)len;
  return 0;
}

static int build_with_headers(struct spdy_buf *b, struct spdy_zctx *c, enum spdy_type t,
                              uint8_t flags, const uint8_t *pre, size_t prelen,
                              const char *const *names, const char *const *values, size_t n)
{
  size_t off = b->len;
  int r = put_ctrl_header(b, t, flags, 0);
  if (r == 0)
    r = spdy_buf_append(b, pre, prelen);
  if (r == 0)
    r = spdy_headers_encode(c, names, values, n, b);
  if (r < 0) {
    b->len = off;
    return r;
  }
  return patch_len(b, off);
}

int spdy_build_syn_stream(struct spdy_buf *b, struct spdy_zctx *c, uint32_t id, uint32_t assoc,
                          uint8_t flags, const char *const *names, const char *const *values,
                          size_t n)
{
  if (id == 0 || id > 0x7fffffff || assoc > 0x7fffffff)
    return -EINVAL;
  uint8_t pre[10] = {0};
  wr32(pre, id);
  wr32(pre + 4, assoc);
  return build_with_headers(b, c, SPDY_SYN_STREAM, flags, pre, 10, names, values, n);
}

int spdy_build_syn_reply(struct spdy_buf *b, struct spdy_zctx *c, uint32_t id, uint8_t flags,
                         const char *const *names, const char *const *values, size_t n)
{
  if (id == 0 || id > 0x7fffffff)
    return -EINVAL;
  uint8_t pre[4];
  wr32(pre, id);
  return build_with_headers(b, c, SPDY_SYN_REPLY, flags, pre, 4, names, values, n);
}

int spdy_build_data(struct spdy_buf *b, uint32_t id, uint8_t flags, const void *data, size_t len)
{
  if (id == 0 || id > 0x7fffffff || len > SPDY_MAX_LEN)
    return -EINVAL;
  uint8_t h[8];
  wr32(h, id);
  h[4] = flags;
  h[5] = (uint8_t)(len >> 16);
  h[6] = (uint8_t)(len >> 8);
  h[7] = (uint8_t)len;
  int r = spdy_buf_reserve(b, 8 + len);
  if (r < 0)
    return r;
  spdy_buf_append(b, h, 8);
  return spdy_buf_append(b, data, len);
}

static int build_two(struct spdy_buf *b, enum spdy_type t, uint32_t a, uint32_t v)
{
  uint8_t p[8];
  wr32(p, a);
  wr32(p + 4, v);
  int r = put_ctrl_header(b, t, 0, 8);
  return r < 0 ? r : spdy_buf_append(b, p, 8);
}

int spdy_build_rst(struct spdy_buf *b, uint32_t id, uint32_t status)
{
  if (id == 0 || id > 0x7fffffff)
    return -EINVAL;
  return build_two(b, SPDY_RST_STREAM, id, status);
}

int spdy_build_goaway(struct spdy_buf *b, uint32_t last_good, uint32_t status)
{
  if (last_good > 0x7fffffff)
    return -EINVAL;
  return build_two(b, SPDY_GOAWAY, last_good, status);
}

int spdy_build_window_update(struct spdy_buf *b, uint32_t id, uint32_t delta)
{
  if (id > 0x7fffffff || delta == 0 || delta > 0x7fffffff)
    return -EINVAL;
  return build_two(b, SPDY_WINDOW_UPDATE, id, delta);
}

int spdy_build_ping(struct spdy_buf *b, uint32_t id)
{
  uint8_t p[4];
  wr32(p, id);
  int r = put_ctrl_header(b, SPDY_PING, 0, 4);
  return r < 0 ? r : spdy_buf_append(b, p, 4);
}

int spdy_build_settings(struct spdy_buf *b, const uint32_t *ids, const uint32_t *values, size_t n)
{
  if (n > 1024)
    return -EINVAL;
  int r = put_ctrl_header(b, SPDY_SETTINGS, 0, 4 + 8 * n);
  uint8_t p[8];
  wr32(p, (uint32_t)n);
  if (r == 0)
    r = spdy_buf_append(b, p, 4);
  for (size_t i = 0; r == 0 && i < n; i++) {
    wr32(p, ids[i] & 0xffffff);
    wr32(p + 4, values[i]);
    r = spdy_buf_append(b, p, 8);
  }
  return r;
}
