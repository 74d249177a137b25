/* Unit tests: the pod control protocol's framing (sandbox/pod/proto.c) on
 * socket pairs: round trips with blobs and fds, and every malformed frame
 * a hostile peer can send ends in an error, never a crash or a hang. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pod/proto.h"

static int sv[2] = {-1, -1};

static void setup(void)
{
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}
static void teardown(void)
{
  close(sv[0]);
  close(sv[1]);
}

TestSuite(proto, .init = setup, .fini = teardown);

Test(proto, round_trip_with_blob_and_fds)
{
  json_t *m = json_pack("{s:s,s:i}", "op", "exec", "n", 42);
  int p[2];
  cr_assert_eq(pipe(p), 0);
  int send_fds[2] = {p[0], p[1]};
  cr_assert_eq(sbx_proto_send(sv[0], m, "out-and-err", 11, send_fds, 2), 0);
  json_decref(m);
  json_t *got;
  char *blob;
  size_t bl;
  int fds[SBX_PROTO_MAX_FDS], nfds;
  cr_assert_eq(sbx_proto_recv(sv[1], &got, &blob, &bl, fds, &nfds, 1000), 0);
  cr_assert_str_eq(json_string_value(json_object_get(got, "op")), "exec");
  cr_assert_eq(json_integer_value(json_object_get(got, "n")), 42);
  cr_assert_eq(bl, 11);
  cr_assert_eq(memcmp(blob, "out-and-err", 11), 0);
  cr_assert_eq(nfds, 2);
  /* The fds work: what goes into the received write end comes out of the read end. */
  cr_assert_eq(write(fds[1], "x", 1), 1);
  char c;
  cr_assert_eq(read(fds[0], &c, 1), 1);
  cr_assert_eq(c, 'x');
  for (int i = 0; i < nfds; i++)
    close(fds[i]);
  close(p[0]);
  close(p[1]);
  free(blob);
  json_decref(got);
}

Test(proto, large_message_in_pieces)
{
  /* 4 MiB of JSON: more than a socket buffer, so sender and receiver interleave. */
  size_t n = 4u << 20;
  char *big = malloc(n + 1);
  memset(big, 'a', n);
  big[n] = 0;
  json_t *m = json_pack("{s:s}", "v", big);
  pid_t pid = fork();
  if (pid == 0)
    _exit(sbx_proto_send(sv[0], m, NULL, 0, NULL, 0) == 0 ? 0 : 1);
  json_t *got;
  cr_assert_eq(sbx_proto_recv(sv[1], &got, NULL, NULL, NULL, NULL, 10000), 0);
  cr_assert_eq(strlen(json_string_value(json_object_get(got, "v"))), n);
  json_decref(got);
  json_decref(m);
  free(big);
}

static int recv_raw(const void *bytes, size_t len, bool close_after)
{
  if (len)
    cr_assert_eq(write(sv[0], bytes, len), (ssize_t)len);
  if (close_after)
    shutdown(sv[0], SHUT_WR);
  json_t *got = NULL;
  char *blob = NULL;
  size_t bl;
  int r = sbx_proto_recv(sv[1], &got, &blob, &bl, NULL, NULL, 300);
  json_decref(got);
  free(blob);
  return r;
}

Test(proto, hostile_frames)
{
  cr_assert_eq(recv_raw("\xff\xff\xff\xff\0\0\0\0", 8, true), -EPROTO,
               "JSON length over the limit");
  teardown(), setup();
  cr_assert_eq(recv_raw("\x02\0\0\0\xff\xff\xff\xff{}", 10, true), -EPROTO,
               "blob length over the limit");
  teardown(), setup();
  cr_assert_eq(recv_raw("\0\0\0\0\0\0\0\0", 8, true), -EPROTO, "empty JSON");
  teardown(), setup();
  cr_assert_eq(recv_raw("\x05\0\0\0\0\0\0\0[1,2]", 13, true), -EPROTO, "not an object");
  teardown(), setup();
  cr_assert_eq(recv_raw("\x0d\0\0\0\0\0\0\0{\"a\":1,\"a\":2}", 21, true), -EPROTO,
               "duplicate keys");
  teardown(), setup();
  cr_assert_eq(recv_raw("\x10\0\0\0\0\0\0\0{\"op\":", 14, true), -EPROTO,
               "truncated JSON, then EOF");
  teardown(), setup();
  cr_assert_eq(recv_raw("\x10\0\0", 3, true), -EPROTO, "truncated header, then EOF");
  teardown(), setup();
  cr_assert_eq(recv_raw("", 0, true), -EPIPE, "clean EOF");
  teardown(), setup();
  cr_assert_eq(recv_raw("\x10\0\0\0\0\0\0\0{\"op\":", 14, false), -ETIMEDOUT,
               "a stalled peer times out");
  teardown(), setup();
  cr_assert_eq(recv_raw("\x04\0\0\0\0\0\0\0\xff\xfe\xfd\xfc", 12, true), -EPROTO, "not UTF-8");
}

Test(proto, unexpected_fds_are_closed)
{
  int p[2];
  cr_assert_eq(pipe(p), 0);
  json_t *m = json_pack("{s:s}", "op", "hello");
  cr_assert_eq(sbx_proto_send(sv[0], m, NULL, 0, p, 1), 0);
  json_decref(m);
  close(p[0]);
  json_t *got;
  cr_assert_eq(sbx_proto_recv(sv[1], &got, NULL, NULL, NULL, NULL, 1000), 0);
  json_decref(got);
  /* Our only read end was the one passed (and closed by recv): the write end sees EPIPE. */
  signal(SIGPIPE, SIG_IGN);
  cr_assert_eq(write(p[1], "x", 1), -1);
  cr_assert_eq(errno, EPIPE);
  close(p[1]);
}
