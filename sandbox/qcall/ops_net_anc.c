/* Control data of guest messages on host sockets (see ops_net_anc.h). */
#include "ops_net_anc.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Linux x86-64 numbers (the guest's ABI; the host is the same kernel ABI).
 * Spelled out so that an older libc's headers do not matter. */
enum {
  LVL_SOCKET = 1,   /* SOL_SOCKET */
  LVL_IP = 0,       /* SOL_IP */
  LVL_IPV6 = 41,    /* SOL_IPV6 */
  LVL_UDP = 17,     /* SOL_UDP */
  T_SCM_RIGHTS = 1, /* SOL_SOCKET */
  T_TS_OLD = 29,    /* SO_TIMESTAMP(_OLD) = SCM_TIMESTAMP */
  T_TSNS_OLD = 35,  /* SO_TIMESTAMPNS(_OLD) = SCM_TIMESTAMPNS */
  T_TS_NEW = 63,    /* SO_TIMESTAMP_NEW */
  T_TSNS_NEW = 64,  /* SO_TIMESTAMPNS_NEW */
  T_IP_TOS = 1,
  T_IP_TTL = 2,
  T_IP_PKTINFO = 8,
  T_IP_RECVTTL = 12,
  T_IP_RECVTOS = 13,
  T_V6_RECVPKTINFO = 49,
  T_V6_PKTINFO = 50,
  T_V6_RECVHOPLIMIT = 51,
  T_V6_HOPLIMIT = 52,
  T_V6_DONTFRAG = 62,
  T_V6_RECVTCLASS = 66,
  T_V6_TCLASS = 67,
  T_UDP_SEGMENT = 103,
  T_UDP_GRO = 104,
};

#define HDR sizeof(struct cmsghdr) /* 16 */
#define ALIGN8(x) (((x) + 7) & ~(size_t)7)

/* (level, type) pairs: records or options. */
struct kind {
  int level, type;
};
#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The records the guest may send. */
static const struct kind send_ok[] = {
    {LVL_IP, T_IP_PKTINFO},   {LVL_IP, T_IP_TOS},       {LVL_IP, T_IP_TTL},
    {LVL_IPV6, T_V6_PKTINFO}, {LVL_IPV6, T_V6_TCLASS},  {LVL_IPV6, T_V6_HOPLIMIT},
    {LVL_UDP, T_UDP_SEGMENT},
};

/* The records the guest may receive. */
static const struct kind recv_ok[] = {
    {LVL_SOCKET, T_TS_OLD},   {LVL_SOCKET, T_TSNS_OLD}, {LVL_SOCKET, T_TS_NEW},
    {LVL_SOCKET, T_TSNS_NEW}, {LVL_IP, T_IP_PKTINFO},   {LVL_IP, T_IP_TOS},
    {LVL_IP, T_IP_TTL},       {LVL_IPV6, T_V6_PKTINFO}, {LVL_IPV6, T_V6_TCLASS},
    {LVL_IPV6, T_V6_HOPLIMIT}, {LVL_UDP, T_UDP_GRO},
};

/* The options that make the records (and set what a record would). */
static const struct kind opt_ok[] = {
    {LVL_SOCKET, T_TS_OLD},         {LVL_SOCKET, T_TSNS_OLD},     {LVL_SOCKET, T_TS_NEW},
    {LVL_SOCKET, T_TSNS_NEW},       {LVL_IP, T_IP_PKTINFO},       {LVL_IP, T_IP_RECVTOS},
    {LVL_IP, T_IP_RECVTTL},         {LVL_IPV6, T_V6_RECVPKTINFO}, {LVL_IPV6, T_V6_RECVTCLASS},
    {LVL_IPV6, T_V6_RECVHOPLIMIT},  {LVL_IPV6, T_V6_DONTFRAG},    {LVL_UDP, T_UDP_SEGMENT},
    {LVL_UDP, T_UDP_GRO},
};

static bool listed(const struct kind *k, size_t n, int level, int type)
{
  for (size_t i = 0; i < n; i++)
    if (k[i].level == level && k[i].type == type)
      return true;
  return false;
}

bool sbx_anc_opt_allowed(int level, int name)
{
  return listed(opt_ok, N(opt_ok), level, name);
}

/* Walks records as Linux's for_each_cmsghdr: a record starts only where a
 * whole header fits. Returns the offset of the next record's header or n. */
static size_t next_rec(size_t off, size_t len, size_t n)
{
  size_t nx = off + ALIGN8(len);
  return nx < off || nx > n || n - nx < HDR ? n : nx;
}

/* What becomes of a record the guest sends on a socket of domain (stream:
 * SOCK_STREAM), as Linux's UDP and TCP treat it: 1 sent, 0 left out,
 * -EINVAL. */
static int send_verdict(int level, int type, int domain, bool stream)
{
  if (level == LVL_SOCKET) /* SCM_RIGHTS/CREDENTIALS belong to AF_UNIX: ignored */
    return type == T_SCM_RIGHTS || type == 2 /* SCM_CREDENTIALS */ ? 0 : -EINVAL;
  if (stream) /* TCP reads SOL_SOCKET records only */
    return 0;
  /* A level of the other IP version is ignored (a v6 socket lets SOL_IP
   * records pass for IPv4-mapped destinations). */
  bool own = level == LVL_UDP || (level == LVL_IP && domain == AF_INET) ||
             (level == LVL_IPV6 && domain == AF_INET6);
  if (listed(send_ok, N(send_ok), level, type))
    return 1;
  return own ? -EINVAL : 0;
}

int sbx_anc_send_filter(const uint8_t *in, size_t n, uint8_t *out, int domain, bool stream)
{
  size_t w = 0;
  for (size_t off = 0; n >= HDR && off + HDR <= n;) {
    struct cmsghdr h;
    memcpy(&h, in + off, HDR);
    /* CMSG_OK: a whole header, and no more than the buffer holds. */
    if (h.cmsg_len < HDR || h.cmsg_len > n - off)
      return -EINVAL;
    int v = send_verdict(h.cmsg_level, h.cmsg_type, domain, stream);
    if (v < 0)
      return v;
    if (v > 0) {
      memcpy(out + w, in + off, h.cmsg_len);
      size_t pad = ALIGN8(h.cmsg_len) - h.cmsg_len;
      if (w + h.cmsg_len + pad <= n) /* the last record may end unpadded */
        memset(out + w + h.cmsg_len, 0, pad);
      else
        pad = 0;
      w += h.cmsg_len + pad;
    }
    off = next_rec(off, h.cmsg_len, n);
  }
  return (int)w;
}

/* Closes the descriptors of an SCM_RIGHTS record the guest does not get. */
static void close_rights(const uint8_t *data, size_t len)
{
  for (size_t i = 0; i + sizeof(int) <= len; i += sizeof(int)) {
    int fd;
    memcpy(&fd, data + i, sizeof fd);
    if (fd > 2)
      close(fd);
  }
}

size_t sbx_anc_recv_filter(const uint8_t *in, size_t n, uint8_t *dst, size_t room, bool *ctrunc)
{
  size_t w = 0;
  for (size_t off = 0; n >= HDR && off + HDR <= n;) {
    struct cmsghdr h;
    memcpy(&h, in + off, HDR);
    if (h.cmsg_len < HDR || h.cmsg_len > n - off)
      break; /* the host kernel's own records: not expected */
    if (h.cmsg_level == LVL_SOCKET && h.cmsg_type == T_SCM_RIGHTS) {
      close_rights(in + off + HDR, h.cmsg_len - HDR);
    } else if (listed(recv_ok, N(recv_ok), h.cmsg_level, h.cmsg_type)) {
      /* put_cmsg: no room for a header: nothing and MSG_CTRUNC; room for
       * part of the record: that part, cmsg_len saying so, MSG_CTRUNC;
       * then the space taken, at most what is left. */
      size_t left = room - w;
      if (left < HDR) {
        *ctrunc = true;
      } else {
        size_t len = h.cmsg_len;
        if (len > left) {
          *ctrunc = true;
          len = left;
        }
        struct cmsghdr o = h;
        o.cmsg_len = len;
        memcpy(dst + w, &o, HDR);
        memcpy(dst + w + HDR, in + off + HDR, len - HDR);
        size_t space = ALIGN8(h.cmsg_len);
        space = space < left ? space : left;
        memset(dst + w + len, 0, space - len); /* no stale guest kernel bytes */
        w += space;
      }
    }
    off = next_rec(off, h.cmsg_len, n);
  }
  return w;
}
