/* Fuzzer: what a streaming client (kubelet's proxy, kubectl through the API
 * server) sends quarkd's streaming server before and after the upgrade.
 *
 * Input: selector byte, then the bytes.
 *   0  HTTP/1.1 request head (http_parse): a head that parses lies inside
 *      the input, has a method, a target and at most HTTP_MAX_HEADERS
 *      headers whose names are tokens; the header lookups terminate.
 *   1  a raw SPDY/3.1 byte stream (spdy_parse frame by frame, 64 KiB frames
 *      at most; every SYN_STREAM/SYN_REPLY/HEADERS block inflated through
 *      one receive context, as a session does): each frame lies inside the
 *      bytes left, payloads inside the frame; decoded header lists have
 *      lowercase, unique, non-empty names and at most SPDY_MAX_HEADERS.
 *   2  structured: NUL-separated name/value pairs built into a SYN_STREAM
 *      with our own encoder (names that are not lowercase-unique are
 *      refused by it), parsed and decoded again: the same list comes back.
 *      Then the compressed block is damaged at positions taken from the
 *      input and decoded by a fresh context: an error or a valid list,
 *      never more.
 *   3  terminal resize messages (stream_resize_feed, the JSON a tty client
 *      sends on the resize channel), all at once and split at an input-chosen
 *      point and fed as a session feeds them: the same sizes come out, each
 *      within 0..65535, and no more bytes are consumed than given.
 *
 * Seeds: `QUARK_FUZZ_WRITE_SEEDS=DIR fuzz_stream_proto` writes the committed
 * seeds (frames made with spdy.c's own builders) into DIR and exits.
 */
#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "http.h"
#include "internal.h"
#include "spdy.h"

static void write_seed(const char *dir, const char *name, uint8_t sel, const void *p, size_t n)
{
  uint8_t *b = malloc(n + 1);
  FUZZ_CHECK(b != NULL, "malloc");
  b[0] = sel;
  memcpy(b + 1, p, n);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  FUZZ_CHECK(dfd >= 0, "open %s", dir);
  fuzz_write_file(dfd, name, b, n + 1, 0644);
  close(dfd);
  free(b);
}

static void write_seeds(const char *dir)
{
  static const char *const heads[] = {
      "POST /exec/0123abcd HTTP/1.1\r\nHost: 127.0.0.1:10010\r\nConnection: Upgrade\r\n"
      "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
      "X-Stream-Protocol-Version: v3.channel.k8s.io, channel.k8s.io\r\n\r\n",
      "GET /attach/0123abcd HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n"
      "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n",
      "POST /portforward/0123abcd HTTP/1.1\r\nHost: x\r\n\r\n"};
  char name[32];
  for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
    snprintf(name, sizeof name, "http-%zu", i);
    write_seed(dir, name, 0, heads[i], strlen(heads[i]));
  }
  /* A client's stream setup as kubectl sends it, then data and control frames. */
  struct spdy_zctx out;
  FUZZ_CHECK(spdy_zctx_init(&out, true) == 0, "deflate context");
  struct spdy_buf b = {0};
  static const char *const types[] = {"error", "stdin", "stdout", "resize"};
  for (uint32_t i = 0; i < 4; i++) {
    const char *n[] = {"streamtype", "port", "requestid"}, *v[] = {types[i], "8080", "0"};
    FUZZ_CHECK(spdy_build_syn_stream(&b, &out, 2 * i + 1, 0, 0, n, v, 3) == 0, "syn");
  }
  FUZZ_CHECK(spdy_build_data(&b, 3, 0, "echo hi\n", 8) == 0 && spdy_build_ping(&b, 1) == 0 &&
                 spdy_build_window_update(&b, 3, 65536) == 0 &&
                 spdy_build_data(&b, 3, SPDY_FLAG_FIN, "", 0) == 0 &&
                 spdy_build_rst(&b, 5, SPDY_RST_CANCEL) == 0 &&
                 spdy_build_settings(&b, (const uint32_t[]){7}, (const uint32_t[]){65536}, 1) == 0 &&
                 spdy_build_goaway(&b, 7, SPDY_GOAWAY_OK) == 0,
             "frames");
  write_seed(dir, "spdy-session", 1, b.data, b.len);
  spdy_buf_free(&b);
  spdy_zctx_free(&out);
  static const char pairs[] = "\x10\x02\x33\x81streamtype\0data\0port\08080\0requestid\00";
  write_seed(dir, "structured-0", 2, pairs, sizeof pairs - 1);
  static const char resize[] = "\x0c{\"Width\":80,\"Height\":24}\n{\"Width\":132, \"Height\":43}";
  write_seed(dir, "resize-0", 3, resize, sizeof resize - 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  q_log_set_level(Q_LOG_OFF);
  const char *seeds = getenv("QUARK_FUZZ_WRITE_SEEDS");
  if (seeds && *seeds) {
    write_seeds(seeds);
    exit(0);
  }
  return 0;
}

static bool count_elem(const char *elem, size_t len, void *arg)
{
  (void)elem, (void)len;
  ++*(size_t *)arg;
  return false;
}

static void fuzz_http(const uint8_t *d, size_t n)
{
  static struct http_request req; /* 8 KiB buffer: keep it off the stack */
  ssize_t r = http_parse((const char *)d, n, &req);
  if (r <= 0)
    return;
  FUZZ_CHECK((size_t)r <= n, "head of %zd bytes from %zu", r, n);
  FUZZ_CHECK(req.method && *req.method && req.target && *req.target, "no method or target");
  FUZZ_CHECK(req.nhdr <= HTTP_MAX_HEADERS, "%zu headers", req.nhdr);
  for (size_t i = 0; i < req.nhdr; i++) {
    FUZZ_CHECK(req.hdr[i].name && *req.hdr[i].name && req.hdr[i].value, "header %zu", i);
    for (const char *c = req.hdr[i].name; *c; c++)
      FUZZ_CHECK(*c > ' ' && *c < 0x7f && *c != ':', "header name byte 0x%02x", (unsigned char)*c);
  }
  (void)http_header(&req, "Upgrade");
  (void)http_header_has_token(&req, "Connection", "upgrade");
  size_t elems = 0;
  FUZZ_CHECK(http_header_each(&req, "X-Stream-Protocol-Version", count_elem, &elems) == -1,
             "no element was accepted");
}

static void check_headers(const struct spdy_headers *h)
{
  FUZZ_CHECK(h->n <= SPDY_MAX_HEADERS, "%zu headers", h->n);
  for (size_t i = 0; i < h->n; i++) {
    const char *name = h->v[i].name;
    FUZZ_CHECK(name && *name, "header %zu without a name", i);
    for (const char *c = name; *c; c++)
      FUZZ_CHECK(!isupper((unsigned char)*c), "uppercase name %s", name);
    for (size_t j = 0; j < i; j++)
      FUZZ_CHECK(strcmp(h->v[j].name, name) != 0, "duplicate name %s", name);
    FUZZ_CHECK(spdy_headers_get(h, name) != NULL, "lookup of %s", name);
  }
}

/* The header block of a frame that carries one: after the stream id (and,
 * for SYN_STREAM, the associated id and priority bytes). */
static bool header_block(const struct spdy_frame *f, const uint8_t **blk, size_t *len)
{
  size_t skip;
  switch (f->type) {
  case SPDY_SYN_STREAM:
    skip = 10;
    break;
  case SPDY_SYN_REPLY:
  case SPDY_HEADERS:
    skip = 4;
    break;
  default:
    return false;
  }
  if (!f->control || f->payload_len < skip)
    return false;
  *blk = f->payload + skip;
  *len = f->payload_len - skip;
  return true;
}

static void fuzz_spdy_stream(const uint8_t *d, size_t n)
{
  struct spdy_zctx in;
  FUZZ_CHECK(spdy_zctx_init(&in, false) == 0, "inflate context");
  size_t off = 0;
  while (off < n) {
    struct spdy_frame f;
    ssize_t r = spdy_parse(d + off, n - off, 64 * 1024, &f);
    if (r <= 0)
      break;
    FUZZ_CHECK((size_t)r <= n - off, "frame of %zd bytes from %zu", r, n - off);
    if (f.payload_len)
      FUZZ_CHECK(f.payload >= d + off && f.payload + f.payload_len <= d + off + r,
                 "payload outside its frame");
    const uint8_t *blk;
    size_t len;
    if (header_block(&f, &blk, &len)) {
      struct spdy_headers h = {0};
      if (spdy_headers_decode(&in, blk, len, &h) == 0)
        check_headers(&h);
      spdy_headers_free(&h);
    }
    off += (size_t)r;
  }
  spdy_zctx_free(&in);
}

#define MAX_PAIRS 80

static void fuzz_spdy_structured(const uint8_t *d, size_t n)
{
  /* Damage positions: the first 4 bytes (two 16-bit offsets) of the input. */
  if (n < 4)
    return;
  uint16_t hit[2] = {(uint16_t)(d[0] | d[1] << 8), (uint16_t)(d[2] | d[3] << 8)};
  char *text = fuzz_strndup(d + 4, n - 4);
  const char *names[MAX_PAIRS], *values[MAX_PAIRS];
  size_t np = 0, len = n - 4;
  for (size_t i = 0; i < len && np < MAX_PAIRS;) {
    names[np] = text + i;
    i += strlen(text + i) + 1;
    values[np] = i < len ? text + i : "";
    if (i < len)
      i += strlen(text + i) + 1;
    np++;
  }
  struct spdy_zctx out, in, in2;
  FUZZ_CHECK(spdy_zctx_init(&out, true) == 0 && spdy_zctx_init(&in, false) == 0 &&
                 spdy_zctx_init(&in2, false) == 0,
             "zlib contexts");
  struct spdy_buf b = {0};
  int r = spdy_build_syn_stream(&b, &out, 1, 0, 0, names, values, np);
  if (r == 0) {
    struct spdy_frame f;
    ssize_t fl = spdy_parse(b.data, b.len, SPDY_MAX_LEN, &f);
    FUZZ_CHECK(fl == (ssize_t)b.len, "our own frame: %zd of %zu", fl, b.len);
    const uint8_t *blk;
    size_t bl;
    FUZZ_CHECK(header_block(&f, &blk, &bl), "our SYN_STREAM has no header block");
    struct spdy_headers h = {0};
    int dr = spdy_headers_decode(&in, blk, bl, &h);
    /* Our encoder may build a block the decoder's limits refuse (more than
     * SPDY_MAX_HEADERS, over SPDY_MAX_HEADER_BLOCK): then nothing comes back. */
    if (dr == 0) {
      check_headers(&h);
      FUZZ_CHECK(h.n == np, "%zu headers back from %zu", h.n, np);
      for (size_t i = 0; i < np; i++) {
        const char *v = spdy_headers_get(&h, names[i]);
        FUZZ_CHECK(v && strcmp(v, values[i]) == 0, "header %s: %s, sent %s", names[i],
                   v ? v : "(none)", values[i]);
      }
    } else {
      FUZZ_CHECK(np > SPDY_MAX_HEADERS || n > SPDY_MAX_HEADER_BLOCK / 2 || dr == -EPROTO,
                 "our own block refused (%d) for %zu headers", dr, np);
    }
    spdy_headers_free(&h);
    /* The same block damaged, through a fresh receive context. */
    if (bl) {
      uint8_t *bad = malloc(bl);
      FUZZ_CHECK(bad != NULL, "malloc");
      memcpy(bad, blk, bl);
      bad[hit[0] % bl] ^= (uint8_t)(hit[0] >> 8 | 1);
      bad[hit[1] % bl] ^= (uint8_t)(hit[1] >> 8);
      struct spdy_headers h2 = {0};
      if (spdy_headers_decode(&in2, bad, bl, &h2) == 0)
        check_headers(&h2);
      spdy_headers_free(&h2);
      free(bad);
    }
  } else {
    FUZZ_CHECK(r == -EINVAL || r == -ENOMEM || r == -EMSGSIZE, "build: %d", r);
  }
  spdy_buf_free(&b);
  spdy_zctx_free(&out);
  spdy_zctx_free(&in);
  spdy_zctx_free(&in2);
  free(text);
}

struct sizes {
  size_t n;
  uint32_t v[64];
};

static int record_resize(cri_stream_proc *p, uint16_t w, uint16_t h)
{
  struct sizes *s = p->data;
  if (s->n < sizeof s->v / sizeof s->v[0])
    s->v[s->n] = (uint32_t)w << 16 | h;
  s->n++;
  return 0;
}

static const struct cri_stream_proc_ops resize_ops = {.resize = record_resize};

/* Feeds buf as a session does: keeps what was not consumed and adds the next
 * bytes to it. Returns false on -EPROTO. */
static bool feed(cri_stream_proc *p, char *pend, size_t *plen, const char *buf, size_t len)
{
  memcpy(pend + *plen, buf, len);
  *plen += len;
  ssize_t used = stream_resize_feed(p, pend, *plen);
  if (used < 0) {
    FUZZ_CHECK(used == -EPROTO, "resize feed: %zd", used);
    return false;
  }
  FUZZ_CHECK((size_t)used <= *plen, "consumed %zd of %zu", used, *plen);
  memmove(pend, pend + used, *plen - (size_t)used);
  *plen -= (size_t)used;
  return true;
}

static void fuzz_resize(const uint8_t *d, size_t n)
{
  if (n < 1)
    return;
  size_t split = n > 1 ? d[0] % n : 0;
  const char *buf = (const char *)d + 1;
  size_t len = n - 1;
  if (split > len)
    split = len;
  char *pend = malloc(len + 1);
  FUZZ_CHECK(pend != NULL, "malloc");
  struct sizes whole = {0}, parts = {0};
  cri_stream_proc p1 = {.ops = &resize_ops, .data = &whole};
  cri_stream_proc p2 = {.ops = &resize_ops, .data = &parts};
  size_t l1 = 0, l2 = 0;
  bool ok1 = feed(&p1, pend, &l1, buf, len);
  bool ok2 = true;
  l2 = 0;
  ok2 = feed(&p2, pend, &l2, buf, split) && feed(&p2, pend, &l2, buf + split, len - split);
  /* A message split in two parses once its second half arrives: the sizes
   * agree whenever both ways got through the input. */
  if (ok1 && ok2 && whole.n <= 64 && parts.n <= 64) {
    FUZZ_CHECK(whole.n == parts.n, "%zu sizes at once, %zu when split at %zu", whole.n, parts.n,
               split);
    FUZZ_CHECK(memcmp(whole.v, parts.v, whole.n * sizeof whole.v[0]) == 0, "sizes differ");
  }
  free(pend);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  const uint8_t *d = data + 1;
  size_t n = size - 1;
  switch (data[0] % 4) {
  case 0:
    fuzz_http(d, n);
    break;
  case 1:
    fuzz_spdy_stream(d, n);
    break;
  case 2:
    fuzz_spdy_structured(d, n);
    break;
  case 3:
    fuzz_resize(d, n);
    break;
  }
  return 0;
}
