/* Control (ancillary) data of sendmsg/recvmsg on host sockets.
 *
 * The guest moves the user's records through one kernel buffer of at most
 * QK_NET_CTL_MAX bytes; the host checks and filters them
 * (sandbox/qcall/ops_net_anc.c: IP_PKTINFO, TOS, TTL and their IPv6
 * counterparts, timestamps, UDP_SEGMENT/UDP_GRO), so this file only copies.
 * AF_UNIX control data is served in the guest (unix_anc.c) and never
 * comes here. */
#include <qk/kernel.h>
#include <qk/mm.h>
#include <qk/qcall.h>

#include "net_internal.h"

#define MSG_TRUNC 0x20
#define MSG_CTRUNC 0x8

int64_t qk_anc_send_prep(struct qk_anc *anc, uint64_t uctl, uint64_t ctllen)
{
  *anc = (struct qk_anc){0};
  /* Linux refuses control data past its optmem limit with ENOBUFS. */
  if (ctllen > QK_NET_CTL_MAX)
    return -QK_ENOBUFS;
  if (!ctllen)
    return 0;
  anc->buf = qk_kmalloc(ctllen);
  if (!anc->buf)
    return -QK_ENOMEM;
  anc->room = anc->len = (uint32_t)ctllen;
  return qk_copy_from_user(anc->buf, uctl, ctllen) ? -QK_EFAULT : 0;
}

int64_t qk_anc_recv_prep(struct qk_anc *anc, uint64_t uctl, uint64_t ctllen)
{
  *anc = (struct qk_anc){0};
  /* No buffer (or a NULL one): room 0, and the host still says
   * MSG_CTRUNC when records were there, as Linux does. A larger one than
   * the bound: the host never writes more than QK_NET_CTL_MAX. */
  if (!uctl || !ctllen)
    return 0;
  uint32_t room = ctllen > QK_NET_CTL_MAX ? QK_NET_CTL_MAX : (uint32_t)ctllen;
  anc->buf = qk_kmalloc(room);
  if (!anc->buf)
    return -QK_ENOMEM;
  anc->room = room;
  return 0;
}

int64_t qk_anc_recv_done(struct qk_anc *anc, uint64_t uctl, uint64_t *ctllen, uint32_t *mflags)
{
  *ctllen = anc->len;
  *mflags |= anc->flags;
  return anc->len && qk_copy_to_user(uctl, anc->buf, anc->len) ? -QK_EFAULT : 0;
}

void qk_anc_free(struct qk_anc *anc)
{
  qk_kfree(anc->buf);
  anc->buf = NULL;
}

int64_t qk_anc_host_send(int hfd, const struct qk_uiov *v, uint64_t hflags, const void *addr,
                         uint32_t alen, const struct qk_anc *anc)
{
  struct qk_net_msg m = {
      .iov = qk_va_to_pa(v->seg),
      .addr = addr ? qk_va_to_pa(addr) : 0,
      .ctl = qk_va_to_pa(anc->buf),
      .iovcnt = v->n,
      .addrlen = addr ? alen : 0,
      .ctllen = anc->len,
  };
  return qk_qcall(QK_OP_SENDMSG_CTL, (uint64_t)hfd, qk_va_to_pa(&m), hflags, 0, 0, 0);
}

int64_t qk_anc_host_recv(int hfd, const struct qk_uiov *v, uint64_t hflags, void *addr,
                         uint32_t *alen, struct qk_anc *anc)
{
  struct qk_net_msg m = {
      .iov = qk_va_to_pa(v->seg),
      .addr = addr ? qk_va_to_pa(addr) : 0,
      .ctl = anc->buf ? qk_va_to_pa(anc->buf) : 0,
      .iovcnt = v->n,
      .addrlen = addr ? *alen : 0,
      .ctllen = anc->room,
  };
  int64_t r = qk_qcall(QK_OP_RECVMSG_CTL, (uint64_t)hfd, qk_va_to_pa(&m), hflags, 0, 0, 0);
  if (r < 0)
    return r;
  if (addr)
    *alen = m.addrlen;
  anc->len = m.ctllen <= anc->room ? m.ctllen : anc->room;
  anc->flags = m.msg_flags & MSG_CTRUNC;
  /* The plain QK_OP_RECVMSG's answer for a cut datagram, which sock_recv
   * turns into MSG_TRUNC. */
  if ((m.msg_flags & MSG_TRUNC) && !(hflags & MSG_TRUNC))
    r |= (int64_t)QK_NET_TRUNC;
  return r;
}
