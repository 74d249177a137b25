/* Unit tests: the control-data filters of guest socket messages
 * (sandbox/qcall/ops_net_anc.c) against records a hostile guest and the
 * host kernel could hand them. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qcall/ops_net_anc.h"

#define CAP 512
static _Alignas(struct cmsghdr) uint8_t in[CAP], out[CAP];
static size_t used;

/* Appends a record of len payload bytes (each byte fill) to in. */
static void put(int level, int type, size_t len, uint8_t fill)
{
  struct cmsghdr h = {.cmsg_len = CMSG_LEN(len), .cmsg_level = level, .cmsg_type = type};
  memcpy(in + used, &h, sizeof h);
  memset(in + used + sizeof h, fill, len);
  used += CMSG_SPACE(len);
}

static struct cmsghdr hdr_at(const uint8_t *b, size_t off)
{
  struct cmsghdr h;
  memcpy(&h, b + off, sizeof h);
  return h;
}

static void reset(void)
{
  used = 0;
  memset(in, 0, sizeof in);
  memset(out, 0xee, sizeof out);
}

TestSuite(net_anc, .init = reset);

Test(net_anc, send_passes_allowed_and_leaves_out_ignored)
{
  put(SOL_SOCKET, SCM_RIGHTS, 4, 3); /* AF_UNIX's: ignored */
  put(IPPROTO_IP, IP_TTL, 4, 9);
  put(99, 1, 4, 1);                   /* another level: ignored */
  put(IPPROTO_IPV6, 1234, 4, 1);      /* the other IP version: ignored */
  int n = sbx_anc_send_filter(in, used, out, AF_INET, false);
  cr_assert_eq(n, (int)CMSG_SPACE(4));
  struct cmsghdr h = hdr_at(out, 0);
  cr_assert(h.cmsg_level == IPPROTO_IP && h.cmsg_type == IP_TTL && h.cmsg_len == CMSG_LEN(4));
  cr_assert_eq(out[sizeof h], 9);
}

Test(net_anc, send_refuses_what_linux_refuses)
{
  put(IPPROTO_IP, IP_RECVERR, 4, 0); /* not a sending type of the socket's level */
  cr_assert_eq(sbx_anc_send_filter(in, used, out, AF_INET, false), -EINVAL);
  cr_assert_eq(sbx_anc_send_filter(in, used, out, AF_INET6, false), 0);
  cr_assert_eq(sbx_anc_send_filter(in, used, out, AF_INET, true), 0); /* TCP ignores it */
  reset();
  put(SOL_SOCKET, 36 /* SO_MARK */, 4, 0);
  cr_assert_eq(sbx_anc_send_filter(in, used, out, AF_INET, true), -EINVAL);
  reset();
  put(IPPROTO_UDP, 1, 4, 0);
  cr_assert_eq(sbx_anc_send_filter(in, used, out, AF_INET6, false), -EINVAL);
}

Test(net_anc, send_checks_lengths)
{
  put(IPPROTO_IP, IP_TTL, 4, 9);
  struct cmsghdr h = hdr_at(in, 0);
  h.cmsg_len = used + 1; /* past the buffer */
  memcpy(in, &h, sizeof h);
  cr_assert_eq(sbx_anc_send_filter(in, used, out, AF_INET, false), -EINVAL);
  h.cmsg_len = sizeof h - 1; /* shorter than a header */
  memcpy(in, &h, sizeof h);
  cr_assert_eq(sbx_anc_send_filter(in, used, out, AF_INET, false), -EINVAL);
  h.cmsg_len = (size_t)-8; /* would wrap the walk */
  memcpy(in, &h, sizeof h);
  cr_assert_eq(sbx_anc_send_filter(in, used, out, AF_INET, false), -EINVAL);
  /* Fewer bytes than a header after the last record: not a record. */
  reset();
  put(IPPROTO_IP, IP_TTL, 4, 9);
  cr_assert_eq(sbx_anc_send_filter(in, used + 8, out, AF_INET, false), (int)CMSG_SPACE(4));
  /* The last record unpadded (cmsg_len == what is left). */
  cr_assert_eq(sbx_anc_send_filter(in, CMSG_LEN(4), out, AF_INET, false), (int)CMSG_LEN(4));
}

Test(net_anc, recv_keeps_allowed_in_order)
{
  put(SOL_SOCKET, SO_TIMESTAMP, 16, 1);
  put(IPPROTO_IP, IP_PKTINFO, 12, 2);
  put(IPPROTO_IP, IP_RECVERR, 32, 3); /* not for the guest */
  put(IPPROTO_IP, IP_TTL, 4, 4);
  bool ct = false;
  size_t w = sbx_anc_recv_filter(in, used, out, sizeof out, &ct);
  cr_assert_not(ct);
  cr_assert_eq(w, CMSG_SPACE(16) + CMSG_SPACE(12) + CMSG_SPACE(4));
  cr_assert_eq(hdr_at(out, 0).cmsg_type, SO_TIMESTAMP);
  cr_assert_eq(hdr_at(out, CMSG_SPACE(16)).cmsg_type, IP_PKTINFO);
  cr_assert_eq(hdr_at(out, CMSG_SPACE(16) + CMSG_SPACE(12)).cmsg_type, IP_TTL);
  cr_assert_eq(out[CMSG_SPACE(16) + CMSG_LEN(12)], 0); /* padding zeroed */
}

Test(net_anc, recv_cuts_as_put_cmsg)
{
  put(IPPROTO_IP, IP_PKTINFO, 12, 2);
  put(IPPROTO_IP, IP_TTL, 4, 4);
  bool ct = false;
  cr_assert_eq(sbx_anc_recv_filter(in, used, out, CMSG_SPACE(12), &ct), CMSG_SPACE(12));
  cr_assert(ct);
  ct = false;
  memset(out, 0xee, sizeof out);
  cr_assert_eq(sbx_anc_recv_filter(in, used, out, 20, &ct), 20);
  cr_assert(ct);
  cr_assert_eq(hdr_at(out, 0).cmsg_len, 20);
  cr_assert_eq(out[20], 0xee); /* nothing past the room */
  ct = false;
  cr_assert_eq(sbx_anc_recv_filter(in, used, NULL, 0, &ct), 0);
  cr_assert(ct);
  ct = false;
  reset();
  put(IPPROTO_IP, IP_RECVERR, 32, 3);
  cr_assert_eq(sbx_anc_recv_filter(in, used, NULL, 0, &ct), 0);
  cr_assert_not(ct); /* a dropped record takes no room */
}

Test(net_anc, recv_closes_descriptors)
{
  int p[2];
  cr_assert_eq(pipe(p), 0);
  struct cmsghdr h = {.cmsg_len = CMSG_LEN(2 * sizeof(int)), .cmsg_level = SOL_SOCKET,
                      .cmsg_type = SCM_RIGHTS};
  memcpy(in, &h, sizeof h);
  memcpy(in + sizeof h, p, sizeof p);
  used = CMSG_SPACE(sizeof p);
  bool ct = false;
  cr_assert_eq(sbx_anc_recv_filter(in, used, out, sizeof out, &ct), 0);
  cr_assert_eq(fcntl(p[0], F_GETFD), -1);
  cr_assert_eq(fcntl(p[1], F_GETFD), -1);
}

Test(net_anc, options)
{
  cr_assert(sbx_anc_opt_allowed(IPPROTO_IP, IP_PKTINFO));
  cr_assert(sbx_anc_opt_allowed(IPPROTO_IPV6, IPV6_RECVPKTINFO));
  cr_assert(sbx_anc_opt_allowed(SOL_SOCKET, SO_TIMESTAMPNS));
  cr_assert_not(sbx_anc_opt_allowed(IPPROTO_IP, IP_RECVERR));
  cr_assert_not(sbx_anc_opt_allowed(SOL_SOCKET, SO_PASSCRED));
}
