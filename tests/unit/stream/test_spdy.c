/* SPDY/3.1 frame codec: round trips, header blocks compressed with the
 * SPDY/3 dictionary, and rejection of truncated, oversized and malformed
 * frames. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "spdy.h"

Test(spdy, dictionary_is_the_spdy3_one)
{
  size_t len;
  const uint8_t *d = spdy_dictionary(&len);
  cr_assert_eq(len, 1423);
  cr_assert_eq(adler32(1, d, (uInt)len), 0xe3c6a7c2);
  cr_assert(memcmp(d, "\0\0\0\7options\0\0\0\4head", 19) == 0);
}

Test(spdy, data_frame_round_trip)
{
  struct spdy_buf b = {0};
  cr_assert_eq(spdy_build_data(&b, 5, SPDY_FLAG_FIN, "hello", 5), 0);
  cr_assert_eq(b.len, 13);
  struct spdy_frame f;
  cr_assert_eq(spdy_parse(b.data, b.len, 1024, &f), 13);
  cr_assert(!f.control);
  cr_assert_eq(f.type, SPDY_DATA);
  cr_assert_eq(f.stream_id, 5);
  cr_assert_eq(f.flags, SPDY_FLAG_FIN);
  cr_assert_eq(f.payload_len, 5);
  cr_assert(memcmp(f.payload, "hello", 5) == 0);
  /* Every strict prefix is "not yet". */
  for (size_t i = 0; i < b.len; i++)
    cr_assert_eq(spdy_parse(b.data, i, 1024, &f), 0, "prefix %zu", i);
  spdy_buf_free(&b);
}

Test(spdy, control_frames_round_trip)
{
  struct spdy_buf b = {0};
  uint32_t ids[] = {4, 7}, vals[] = {100, 65536};
  cr_assert_eq(spdy_build_rst(&b, 3, SPDY_RST_CANCEL), 0);
  cr_assert_eq(spdy_build_ping(&b, 7), 0);
  cr_assert_eq(spdy_build_goaway(&b, 9, SPDY_GOAWAY_OK), 0);
  cr_assert_eq(spdy_build_window_update(&b, 3, 1000), 0);
  cr_assert_eq(spdy_build_settings(&b, ids, vals, 2), 0);
  struct spdy_frame f;
  size_t off = 0;
  ssize_t n;
  cr_assert((n = spdy_parse(b.data + off, b.len - off, 1024, &f)) == 16);
  cr_assert(f.control && f.type == SPDY_RST_STREAM && f.stream_id == 3 &&
            f.value == SPDY_RST_CANCEL);
  off += (size_t)n;
  cr_assert((n = spdy_parse(b.data + off, b.len - off, 1024, &f)) == 12);
  cr_assert(f.type == SPDY_PING && f.value == 7);
  off += (size_t)n;
  cr_assert((n = spdy_parse(b.data + off, b.len - off, 1024, &f)) == 16);
  cr_assert(f.type == SPDY_GOAWAY && f.stream_id == 9 && f.value == 0);
  off += (size_t)n;
  cr_assert((n = spdy_parse(b.data + off, b.len - off, 1024, &f)) == 16);
  cr_assert(f.type == SPDY_WINDOW_UPDATE && f.stream_id == 3 && f.value == 1000);
  off += (size_t)n;
  cr_assert((n = spdy_parse(b.data + off, b.len - off, 1024, &f)) == 28);
  cr_assert(f.type == SPDY_SETTINGS && f.value == 2 && f.payload_len == 16);
  off += (size_t)n;
  cr_assert_eq(off, b.len);
  spdy_buf_free(&b);
}

Test(spdy, header_blocks_share_one_context_per_direction)
{
  struct spdy_zctx out, in;
  cr_assert_eq(spdy_zctx_init(&out, true), 0);
  cr_assert_eq(spdy_zctx_init(&in, false), 0);
  struct spdy_buf b = {0};
  const char *n1[] = {"streamtype", "port", "requestid"}, *v1[] = {"data", "8080", "0"};
  const char *n2[] = {"streamtype"}, *v2[] = {"error"};
  cr_assert_eq(spdy_build_syn_stream(&b, &out, 1, 0, 0, n1, v1, 3), 0);
  size_t first = b.len;
  cr_assert_eq(spdy_build_syn_stream(&b, &out, 3, 0, SPDY_FLAG_FIN, n2, v2, 1), 0);
  cr_assert_eq(spdy_build_syn_reply(&b, &out, 3, 0, NULL, NULL, 0), 0);

  /* The first block names the dictionary (FDICT, dictid = its adler32). */
  const uint8_t *blk = b.data + 18;
  size_t dl;
  const uint8_t *d = spdy_dictionary(&dl);
  uint32_t dictid =
      (uint32_t)blk[2] << 24 | (uint32_t)blk[3] << 16 | (uint32_t)blk[4] << 8 | blk[5];
  cr_assert(blk[1] & 0x20);
  cr_assert_eq(dictid, adler32(1, d, (uInt)dl));

  struct spdy_frame f;
  struct spdy_headers h;
  ssize_t n = spdy_parse(b.data, b.len, 1 << 20, &f);
  cr_assert_eq((size_t)n, first);
  cr_assert(f.type == SPDY_SYN_STREAM && f.stream_id == 1 && f.assoc_id == 0);
  cr_assert_eq(spdy_headers_decode(&in, f.payload, f.payload_len, &h), 0);
  cr_assert_eq(h.n, 3);
  cr_assert_str_eq(spdy_headers_get(&h, "streamtype"), "data");
  cr_assert_str_eq(spdy_headers_get(&h, "port"), "8080");
  cr_assert_str_eq(spdy_headers_get(&h, "requestid"), "0");
  cr_assert_null(spdy_headers_get(&h, "Port"));
  spdy_headers_free(&h);

  size_t off = (size_t)n;
  n = spdy_parse(b.data + off, b.len - off, 1 << 20, &f);
  cr_assert(n > 0 && f.type == SPDY_SYN_STREAM && f.stream_id == 3 && (f.flags & SPDY_FLAG_FIN));
  cr_assert_eq(spdy_headers_decode(&in, f.payload, f.payload_len, &h), 0);
  cr_assert_str_eq(spdy_headers_get(&h, "streamtype"), "error");
  spdy_headers_free(&h);
  off += (size_t)n;
  n = spdy_parse(b.data + off, b.len - off, 1 << 20, &f);
  cr_assert(n > 0 && f.type == SPDY_SYN_REPLY && f.stream_id == 3);
  cr_assert_eq(spdy_headers_decode(&in, f.payload, f.payload_len, &h), 0);
  cr_assert_eq(h.n, 0);
  spdy_headers_free(&h);

  /* A second block on a fresh inflater fails: the contexts carry state. */
  struct spdy_zctx fresh;
  spdy_zctx_init(&fresh, false);
  n = spdy_parse(b.data + first, b.len - first, 1 << 20, &f);
  cr_assert_lt(spdy_headers_decode(&fresh, f.payload, f.payload_len, &h), 0);
  spdy_zctx_free(&fresh);

  spdy_zctx_free(&out);
  spdy_zctx_free(&in);
  spdy_buf_free(&b);
}

Test(spdy, encoder_wants_lowercase_unique_names)
{
  struct spdy_zctx out;
  spdy_zctx_init(&out, true);
  struct spdy_buf b = {0};
  const char *up[] = {"StreamType"}, *v[] = {"x", "y"};
  const char *dup[] = {"a", "a"};
  cr_assert_eq(spdy_headers_encode(&out, up, v, 1, &b), -EINVAL);
  cr_assert_eq(spdy_headers_encode(&out, dup, v, 2, &b), -EINVAL);
  spdy_zctx_free(&out);
  spdy_buf_free(&b);
}

/* Compresses raw (an uncompressed header block) the way a peer would. */
static size_t deflate_raw(const void *raw, size_t len, uint8_t *out, size_t cap)
{
  z_stream z = {0};
  size_t dl;
  const uint8_t *d = spdy_dictionary(&dl);
  deflateInit(&z, Z_DEFAULT_COMPRESSION);
  deflateSetDictionary(&z, d, (uInt)dl);
  z.next_in = (Bytef *)raw;
  z.avail_in = (uInt)len;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  deflate(&z, Z_SYNC_FLUSH);
  size_t n = cap - z.avail_out;
  deflateEnd(&z);
  return n;
}

static int decode_raw(const void *raw, size_t len)
{
  static uint8_t blk[200000];
  size_t n = deflate_raw(raw, len, blk, sizeof(blk));
  struct spdy_zctx in;
  spdy_zctx_init(&in, false);
  struct spdy_headers h;
  int r = spdy_headers_decode(&in, blk, n, &h);
  if (r == 0)
    spdy_headers_free(&h);
  spdy_zctx_free(&in);
  return r;
}

Test(spdy, decoder_rejects_bad_blocks)
{
  static const char ok[] = "\0\0\0\1\0\0\0\4port\0\0\0\1"
                           "4";
  cr_assert_eq(decode_raw(ok, sizeof(ok) - 1), 0);
  static const char upper[] = "\0\0\0\1\0\0\0\4Port\0\0\0\1"
                              "4";
  cr_assert_eq(decode_raw(upper, sizeof(upper) - 1), -EPROTO);
  static const char dup[] = "\0\0\0\2\0\0\0\1a\0\0\0\1x\0\0\0\1a\0\0\0\1y";
  cr_assert_eq(decode_raw(dup, sizeof(dup) - 1), -EPROTO);
  static const char empty_name[] = "\0\0\0\1\0\0\0\0\0\0\0\1x";
  cr_assert_eq(decode_raw(empty_name, sizeof(empty_name) - 1), -EPROTO);
  static const char past_end[] = "\0\0\0\1\0\0\0\4port\0\0\0\x20x";
  cr_assert_eq(decode_raw(past_end, sizeof(past_end) - 1), -EPROTO);
  static const char too_many[] = "\0\0\1\0";
  cr_assert_eq(decode_raw(too_many, sizeof(too_many) - 1), -EPROTO);
  static const char trailing[] = "\0\0\0\0junk";
  cr_assert_eq(decode_raw(trailing, sizeof(trailing) - 1), -EPROTO);
  /* A block that inflates past the limit (zlib bombs stop early). */
  static uint8_t big[100000];
  memset(big, 'a', sizeof(big));
  memcpy(big, "\0\0\0\1\0\0\0\1a\0\1\x86\xa0", 13);
  cr_assert_eq(decode_raw(big, sizeof(big)), -EPROTO);
  /* Not zlib at all. */
  struct spdy_zctx in;
  spdy_zctx_init(&in, false);
  struct spdy_headers h;
  cr_assert_eq(spdy_headers_decode(&in, (const uint8_t *)"\xde\xad\xbe\xef", 4, &h), -EPROTO);
  spdy_zctx_free(&in);
}

Test(spdy, parser_rejects_malformed_and_oversized)
{
  struct spdy_frame f;
  /* version 2 */
  uint8_t v2[] = {0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1};
  cr_assert_eq(spdy_parse(v2, sizeof(v2), 1024, &f), -EPROTO);
  /* length over the limit is rejected from the header alone */
  uint8_t big[] = {0x80, 0x03, 0x00, 0x01, 0, 0x10, 0x00, 0x00};
  cr_assert_eq(spdy_parse(big, sizeof(big), 1024, &f), -EMSGSIZE);
  uint8_t bigdata[] = {0, 0, 0, 1, 0, 0xff, 0xff, 0xff};
  cr_assert_eq(spdy_parse(bigdata, sizeof(bigdata), 1 << 20, &f), -EMSGSIZE);
  /* RST_STREAM, PING, GOAWAY with the wrong length */
  uint8_t rst[] = {0x80, 0x03, 0x00, 0x03, 0, 0, 0, 4, 0, 0, 0, 1};
  cr_assert_eq(spdy_parse(rst, sizeof(rst), 1024, &f), -EPROTO);
  uint8_t ping[] = {0x80, 0x03, 0x00, 0x06, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0};
  cr_assert_eq(spdy_parse(ping, sizeof(ping), 1024, &f), -EPROTO);
  /* SYN_STREAM shorter than its fixed part; stream id 0 */
  uint8_t syn[] = {0x80, 0x03, 0x00, 0x01, 0, 0, 0, 4, 0, 0, 0, 1};
  cr_assert_eq(spdy_parse(syn, sizeof(syn), 1024, &f), -EPROTO);
  uint8_t syn0[] = {0x80, 0x03, 0x00, 0x01, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  cr_assert_eq(spdy_parse(syn0, sizeof(syn0), 1024, &f), -EPROTO);
  /* SETTINGS whose count does not match its length */
  uint8_t set[] = {0x80, 0x03, 0x00, 0x04, 0, 0, 0, 12, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 1};
  cr_assert_eq(spdy_parse(set, sizeof(set), 1024, &f), -EPROTO);
  /* data on stream 0 */
  uint8_t d0[] = {0, 0, 0, 0, 0, 0, 0, 1, 'x'};
  cr_assert_eq(spdy_parse(d0, sizeof(d0), 1024, &f), -EPROTO);
  /* unknown control types are skipped whole */
  uint8_t unk[] = {0x80, 0x03, 0x00, 0x0a, 0, 0, 0, 3, 1, 2, 3};
  cr_assert_eq(spdy_parse(unk, sizeof(unk), 1024, &f), 11);
  cr_assert(f.control && f.type == 10);
}

/* Random bytes never crash the parser or the inflater (ASan and UBSan watch),
 * and a parsed frame never claims more than it was given. */
Test(spdy, random_input)
{
  uint8_t buf[256];
  unsigned seed = 12345;
  struct spdy_zctx in;
  spdy_zctx_init(&in, false);
  for (int i = 0; i < 20000; i++) {
    size_t len = (size_t)(rand_r(&seed) % (int)sizeof(buf));
    for (size_t k = 0; k < len; k++)
      buf[k] = (uint8_t)rand_r(&seed);
    if (i & 1)
      buf[0] = 0x80, buf[1] = 3; /* mostly control frames */
    struct spdy_frame f;
    ssize_t n = spdy_parse(buf, len, 200, &f);
    cr_assert(n <= (ssize_t)len);
    if (n > 0 && f.payload_len) {
      cr_assert(f.payload >= buf && f.payload + f.payload_len <= buf + n);
      struct spdy_headers h;
      if (spdy_headers_decode(&in, f.payload, f.payload_len, &h) == 0)
        spdy_headers_free(&h);
      else {
        spdy_zctx_free(&in); /* a failed inflate leaves the stream broken */
        spdy_zctx_init(&in, false);
      }
    }
  }
  spdy_zctx_free(&in);
}
