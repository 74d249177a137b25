/* Raw ICMP sockets (socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) and
 * socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)) for a process with
 * CAP_NET_RAW, as busybox ping and ping6 open them, over a host ICMP
 * datagram ("ping") socket in the pod's netns: the sandbox holds no
 * CAP_NET_RAW, and the pod's net.ipv4.ping_group_range admits it to those.
 *
 * What differs from a real raw socket: only echo requests go out (the host
 * answers other types EINVAL) and only the replies to this socket come in
 * (not every ICMP message of the host), the received IPv4 header is made
 * here (TTL 64, no options, destination 0.0.0.0; ICMPv6 has none), and the
 * host chooses the echo identifier on the wire: replies get back the
 * identifier of the last request sent, with the checksum adjusted. */
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>

#include "net_internal.h"

#define IP_HDR 20
#define ICMP_MAX 65507 /* the largest ICMP message in one IPv4 datagram */

/* Copies n bytes between a kernel buffer and the user's scatter list,
 * starting at byte off of the list. Returns 0 or -QK_EFAULT. */
static int uio_copy(const struct qk_uio *u, uint64_t off, void *k, uint64_t n, bool to_user)
{
  uint8_t *p = k;
  for (unsigned i = 0; i < u->cnt && n; i++) {
    uint64_t len = u->iov[i].len;
    if (off >= len) {
      off -= len;
      continue;
    }
    uint64_t c = len - off < n ? len - off : n;
    int bad = to_user ? qk_copy_to_user(u->iov[i].base + off, p, c)
                      : qk_copy_from_user(p, u->iov[i].base + off, c);
    if (bad)
      return -QK_EFAULT;
    p += c;
    n -= c;
    off = 0;
  }
  return 0;
}

/* RFC 1071 checksum of n bytes (network order result). */
static uint16_t csum(const uint8_t *b, uint64_t n)
{
  uint32_t s = 0;
  for (uint64_t i = 0; i + 1 < n; i += 2)
    s += (uint32_t)(b[i] << 8 | b[i + 1]);
  if (n & 1)
    s += (uint32_t)b[n - 1] << 8;
  while (s >> 16)
    s = (s & 0xffff) + (s >> 16);
  return (uint16_t)~s;
}

int64_t qk_rawicmp_send(int hfd, const struct qk_uio *u, uint64_t hflags, const void *addr,
                        uint32_t alen, uint16_t *id)
{
  if (u->total < 8)
    return -QK_EINVAL; /* not an ICMP header */
  if (u->total > ICMP_MAX)
    return -QK_EMSGSIZE;
  uint8_t *kb = qk_kmalloc(u->total);
  if (!kb)
    return -QK_ENOMEM;
  int64_t r = uio_copy(u, 0, kb, u->total, false);
  if (!r) {
    struct qk_iov seg = {qk_va_to_pa(kb), u->total};
    r = qk_qcall(QK_OP_SENDMSG, (uint64_t)hfd, qk_va_to_pa(&seg), 1, hflags,
                 addr ? qk_va_to_pa(addr) : 0, addr ? alen : 0);
    if (r >= 0)
      memcpy(id, kb + 4, 2); /* as the user wrote it (network order) */
  }
  qk_kfree(kb);
  return r;
}

int64_t qk_rawicmp_recv(int hfd, const struct qk_uio *u, uint64_t hflags, void *addr,
                        uint32_t *alen, uint32_t *mflags, uint16_t id, bool v6)
{
  /* IPv4 raw sockets read the IP header too; ICMPv6 ones do not. */
  const uint64_t hdr = v6 ? 0 : IP_HDR;
  uint64_t want = u->total > hdr ? u->total - hdr : 0;
  if (want > ICMP_MAX)
    want = ICMP_MAX;
  if (want < 8)
    want = 8; /* the header, to put the identifier back */
  uint8_t *kb = qk_kmalloc(hdr + want);
  if (!kb)
    return -QK_ENOMEM;
  /* The source address is needed for the IPv4 header even when the
   * caller does not ask for it. */
  uint8_t from[128];
  uint32_t flen = sizeof from;
  struct qk_iov seg = {qk_va_to_pa(kb + hdr), want};
  int64_t r = qk_qcall(QK_OP_RECVMSG, (uint64_t)hfd, qk_va_to_pa(&seg), 1, hflags,
                       qk_va_to_pa(from), qk_va_to_pa(&flen));
  if (r < 0) {
    qk_kfree(kb);
    return r;
  }
  bool trunc = (r & (int64_t)QK_NET_TRUNC) != 0;
  uint64_t n = (uint64_t)(r & ~(int64_t)QK_NET_TRUNC);
  uint8_t *icmp = kb + hdr;
  if (n >= 8 && icmp[0] == (v6 ? 129 : 0) /* echo reply */) {
    /* The identifier back to the request's, checksum adjusted (RFC 1624). */
    uint16_t old = (uint16_t)(icmp[4] << 8 | icmp[5]), neu;
    memcpy(&icmp[4], &id, 2);
    neu = (uint16_t)(icmp[4] << 8 | icmp[5]);
    uint32_t c = (uint16_t)~(icmp[2] << 8 | icmp[3]);
    c += (uint16_t)~old;
    c += neu;
    while (c >> 16)
      c = (c & 0xffff) + (c >> 16);
    c = (uint16_t)~c;
    icmp[2] = (uint8_t)(c >> 8);
    icmp[3] = (uint8_t)c;
  }
  uint64_t tot = hdr + n;
  if (!v6) {
    memset(kb, 0, IP_HDR);
    kb[0] = 0x45; /* IPv4, 20-byte header */
    kb[2] = (uint8_t)(tot >> 8);
    kb[3] = (uint8_t)tot;
    kb[8] = 64; /* TTL: the host socket does not report it */
    kb[9] = 1;  /* ICMP */
    if (flen >= 8 && from[0] == 2 /* AF_INET */)
      memcpy(kb + 12, from + 4, 4);
    uint16_t hc = csum(kb, IP_HDR);
    kb[10] = (uint8_t)(hc >> 8);
    kb[11] = (uint8_t)hc;
  }
  uint64_t out = tot < u->total ? tot : u->total;
  r = uio_copy(u, 0, kb, out, true) ? -QK_EFAULT : (int64_t)out;
  if (r >= 0 && addr) {
    uint32_t c = flen < *alen ? flen : *alen;
    memcpy(addr, from, c);
    *alen = flen;
  }
  if (mflags)
    *mflags = trunc || tot > u->total ? 0x20 /* MSG_TRUNC */ : 0;
  qk_kfree(kb);
  return r;
}
