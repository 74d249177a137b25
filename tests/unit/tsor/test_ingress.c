/* The sk_lookup program, run with BPF_PROG_TEST_RUN on made-up lookups:
 * TCP to the pod CIDR selects the listener in the sockmap, anything else
 * passes through untouched. Needs root (CAP_BPF); skipped without it. */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/bpf.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ingress/ingress.h"

static int prog = -1, map = -1, lfd = -1;
static uint64_t cookie;

static void setup(void)
{
  struct in_addr cidr;
  inet_pton(AF_INET, "10.1.2.0", &cidr);
  q_error *err = NULL;
  if (tsor_sklookup_load(cidr.s_addr, 24, &prog, &map, &err) < 0) {
    int e = err ? err->status : 0;
    q_error_free(&err);
    if (e == EPERM || e == EACCES) cr_skip_test("needs CAP_BPF: %s", strerror(e));
    cr_assert_fail("load: %s", strerror(e));
  }
  lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  cr_assert_eq(listen(lfd, 1), 0);
  socklen_t l = sizeof(cookie);
  cr_assert_eq(getsockopt(lfd, SOL_SOCKET, SO_COOKIE, &cookie, &l), 0);
}

static void teardown(void)
{
  if (lfd >= 0) close(lfd);
  if (prog >= 0) close(prog);
  if (map >= 0) close(map);
}

/* Runs one lookup; returns the selected socket's cookie (0: none). */
static uint64_t lookup(const char *dst, int proto, int family)
{
  struct bpf_sk_lookup in = {.family = (uint32_t)family, .protocol = (uint32_t)proto, .local_port = 80,
                             .remote_port = htons(40000)};
  inet_pton(AF_INET, dst, &in.local_ip4);
  inet_pton(AF_INET, "192.0.2.1", &in.remote_ip4);
  struct bpf_sk_lookup out = {0};
  LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = &in, .ctx_size_in = sizeof(in), .ctx_out = &out,
              .ctx_size_out = sizeof(out));
  cr_assert_eq(bpf_prog_test_run_opts(prog, &o), 0, "test run: %s", strerror(errno));
  cr_assert_eq(o.retval, 1, "always SK_PASS");
  return out.cookie;
}

TestSuite(sklookup, .init = setup, .fini = teardown);

Test(sklookup, empty_map_selects_nothing) { cr_assert_eq(lookup("10.1.2.3", IPPROTO_TCP, AF_INET), 0); }

Test(sklookup, pod_cidr_goes_to_the_listener)
{
  uint32_t key = 0;
  uint64_t fd = (uint64_t)lfd;
  cr_assert_eq(bpf_map_update_elem(map, &key, &fd, BPF_ANY), 0, "%s", strerror(errno));
  cr_assert_eq(lookup("10.1.2.3", IPPROTO_TCP, AF_INET), cookie);
  cr_assert_eq(lookup("10.1.2.255", IPPROTO_TCP, AF_INET), cookie);
  cr_assert_eq(lookup("10.1.3.3", IPPROTO_TCP, AF_INET), 0, "outside the pod CIDR");
  cr_assert_eq(lookup("10.1.2.3", IPPROTO_UDP, AF_INET), 0, "UDP is not carried");
}
