/* Transfers of guest AF_UNIX sockets: stream bytes over a connection's
 * pipes with per-direction ancillary records, and messages (SOCK_DGRAM,
 * SOCK_SEQPACKET) over receive queues; the sendmsg/recvmsg entry points of
 * the socket layer.
 *
 * Stream: each direction has a channel that counts the bytes written and
 * read and queues, per send that carried files (or whose reader wants
 * credentials), a record of the stream range it wrote. As on Linux, a
 * read that reaches the bytes of a send with files receives those files
 * and stops at the end of that send (a read(2) closes them); credentials
 * are those of the writer of the read's first byte, and a reader with
 * SO_PASSCRED never gets two writers' bytes in one read. MSG_PEEK
 * copies without taking and hands out new descriptors for the files it
 * reaches (the records stay). */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/task.h>

#include "net_internal.h"
#include "unix_internal.h"

#define MSG_OOB 0x1
#define MSG_WAITALL 0x100
#define PIPE_CAP 65536 /* fs/pipe.c's buffer: the most a MSG_WAITALL read waits for */

void qk_unix_chan_put(struct unix_chan *c)
{
  if (!c || --c->refs)
    return;
  while (c->head) {
    struct unix_anc *a = c->head;
    c->head = a->next;
    qk_unix_anc_free(a);
  }
  qk_kfree(c);
}

void qk_unix_mq_put(struct unix_mq *q)
{
  if (!q || --q->refs)
    return;
  while (q->head) {
    struct unix_msg *m = q->head;
    q->head = m->next;
    if (m->anc)
      qk_unix_anc_free(m->anc);
    qk_kfree(m);
  }
  qk_kfree(q);
}

static bool nonblock(struct qk_file *f, uint64_t flags)
{
  return (f->flags & L_O_NONBLOCK) || (flags & MSG_DONTWAIT);
}

/* ---- stream ---- */

int64_t qk_unix_stream_io(struct qk_file *f, const struct qk_uio *u, uint64_t flags, bool send,
                          struct unix_anc *anc, struct unix_anc **got)
{
  struct unix_end *e = f->priv;
  bool peek = !send && (flags & MSG_PEEK);
  if (got)
    *got = NULL;
  int64_t r;
  if (e->state != U_CONNECTED) {
    r = send ? -QK_ENOTCONN : -QK_EINVAL; /* Linux's answers */
    goto out;
  }
  struct qk_file *p = send ? e->tx : e->rx;
  if (!p) {
    r = send ? -QK_EPIPE : 0; /* shut down: no more writes, reads see EOF */
    if (send && !(flags & MSG_NOSIGNAL))
      qk_net_raise_sigpipe();
    goto out;
  }
  if (send && (flags & MSG_NOSIGNAL) && (p->ops->poll(p) & POLLERR)) {
    r = -QK_EPIPE; /* the pipe would raise SIGPIPE itself */
    goto out;
  }
  struct unix_chan *c = send ? e->txc : e->rxc;
  struct l_iovec *cut = NULL;
  struct qk_uio lim = *u;
  struct unix_anc *fdrec = NULL;
  if (send && c && (anc || c->passcred) && (anc || (anc = qk_kzalloc(sizeof(*anc))))) {
    anc->cred = true; /* every record names its writer */
    anc->uc = qk_unix_my_cred();
  }
  if (!send && c) {
    /* The writer of the bytes at rpos; records of bytes already read go. */
    while (c->head && !c->head->nfds && c->head->pos <= c->rpos) {
      struct unix_anc *a = c->head;
      c->cred = a->uc;
      c->has_cred = true;
      c->head = a->next;
      qk_unix_anc_free(a);
    }
    if (!c->head)
      c->tail = NULL;
    for (fdrec = c->head; fdrec && !fdrec->nfds; fdrec = fdrec->next)
      ;
    /* A read ends with the send whose files it takes and, for a reader
     * with SO_PASSCRED, where another writer's bytes begin (Linux never
     * joins them then). */
    uint64_t stop = fdrec ? fdrec->pos + fdrec->len : ~0ull;
    struct ucred_l w = c->head && c->head->pos == c->rpos ? c->head->uc : c->cred;
    for (struct unix_anc *a = c->passcred ? c->head : NULL; a && a->pos < stop; a = a->next) {
      if (a->pos > c->rpos && memcmp(&a->uc, &w, sizeof(w))) {
        stop = a->pos;
        break;
      }
    }
    if (stop != ~0ull && stop - c->rpos < lim.total) {
      uint64_t want = stop - c->rpos, sum = 0;
      cut = qk_kmalloc((u->cnt ? u->cnt : 1) * sizeof(*cut));
      if (!cut) {
        r = -QK_ENOMEM;
        goto out;
      }
      lim.iov = cut;
      lim.cnt = 0;
      for (unsigned i = 0; i < u->cnt && sum < want; i++) {
        cut[i] = u->iov[i];
        if (cut[i].len > want - sum)
          cut[i].len = want - sum;
        sum += cut[i].len;
        lim.cnt++;
      }
      lim.total = sum;
    }
  }
  struct ucred_l first = c && c->head && c->head->pos == c->rpos ? c->head->uc
                         : c                                     ? c->cred
                                                                 : (struct ucred_l){0};
  bool first_known = c && ((c->head && c->head->pos == c->rpos) || c->has_cred);
  bool nb = nonblock(f, flags);
  if (!send && (peek || ((flags & MSG_WAITALL) && !nb))) {
    uint32_t queued;
    bool writers;
    struct qk_uio none = {NULL, 0, 0};
    qk_pipe_peek(p, &none, &queued, &writers);
    uint64_t need = !peek && lim.total < PIPE_CAP ? lim.total : peek ? 1 : PIPE_CAP;
    if (queued < need && writers) {
      if (!queued && nb) {
        r = -QK_EAGAIN;
        goto done;
      }
      if (!queued || !peek) {
        r = qk_block(p->priv, ~0ull); /* every pipe change wakes it */
        goto done;
      }
    }
  }
  uint64_t pos = c ? (send ? c->wpos : c->rpos) : 0;
  if (peek) {
    uint32_t queued;
    bool writers;
    r = qk_pipe_peek(p, &lim, &queued, &writers);
  } else {
    /* The pipe end carries this end's O_NONBLOCK (and MSG_DONTWAIT) for
     * the one call. */
    uint32_t saved = p->flags;
    p->flags = nb ? p->flags | L_O_NONBLOCK : p->flags & ~(uint32_t)L_O_NONBLOCK;
    r = p->ops->rw(p, &lim, -1, send);
    p->flags = saved;
  }
  if (!send && r == 0 && lim.total && c && c->reset) {
    c->reset = false; /* the peer closed with our bytes unread */
    r = -QK_ECONNRESET;
  }
  if (r > 0 && c && send) {
    c->wpos += (uint64_t)r;
    if (anc) {
      anc->pos = pos;
      anc->len = (uint64_t)r;
      if (c->tail)
        c->tail->next = anc;
      else
        c->head = anc;
      c->tail = anc;
      anc = NULL;
    }
  } else if (r > 0 && c && peek) {
    uint64_t end = c->rpos + (uint64_t)r;
    if (got && fdrec && fdrec->pos < end) {
      *got = qk_unix_anc_dup(fdrec);
      if (*got) {
        (*got)->uc = first;
        (*got)->cred = first_known;
      }
    } else if (got && c->passcred && first_known && (*got = qk_kzalloc(sizeof(**got)))) {
      (*got)->cred = true;
      (*got)->uc = first;
    }
  } else if (r > 0 && c) {
    uint64_t end = c->rpos + (uint64_t)r;
    c->rpos = end;
    /* Records whose bytes this read took: the files of the one with
     * files go to the caller; the writer of the last one is remembered. */
    struct unix_anc *take = NULL;
    while (c->head && c->head->pos < end) {
      struct unix_anc *a = c->head;
      c->head = a->next;
      a->next = NULL;
      c->cred = a->uc;
      c->has_cred = true;
      if (a == fdrec && !take)
        take = a;
      else
        qk_unix_anc_free(a);
    }
    if (!c->head)
      c->tail = NULL;
    if (take && got) {
      take->uc = first;
      take->cred = first_known;
      *got = take;
    } else if (take) {
      qk_unix_anc_free(take); /* read() asks for no control data: files closed */
    } else if (got && c->passcred && first_known && (*got = qk_kzalloc(sizeof(**got)))) {
      (*got)->cred = true;
      (*got)->uc = first;
    }
  }
done:
  qk_kfree(cut);
out:
  if (anc)
    qk_unix_anc_free(anc); /* nothing went out: the restart sends it again */
  return r;
}

/* ---- messages ---- */

/* The queue a send goes to (with its reading end in *te where known), or
 * -errno. */
static int64_t msg_target(struct unix_end *e, const uint8_t *addr, uint32_t alen,
                          struct unix_mq **q, struct unix_end **te)
{
  int64_t r = 0;
  *q = NULL;
  *te = NULL;
  if (e->shut_wr)
    return -QK_EPIPE;
  if (e->type == UN_SEQPACKET) { /* an address is ignored, as on Linux */
    if (e->state != U_CONNECTED)
      return -QK_ENOTCONN;
    if (e->wq->closed || e->wq->shut_rd)
      return -QK_EPIPE;
    *q = e->wq;
    return 0;
  }
  if (addr) {
    struct unix_end *t = qk_unix_find(addr, alen, UN_DGRAM, &r);
    if (!t)
      return r;
    if (t->wq && t->wq != e->rq && t != e)
      return -QK_EPERM; /* connected to another: takes only its peer's */
    if (t->rq->shut_rd)
      return -QK_EPIPE;
    *q = t->rq;
    *te = t;
    return 0;
  }
  if (!e->wq)
    return -QK_ENOTCONN;
  if (e->wq->closed) {
    /* The peer is gone: refused once, then not connected (Linux). */
    qk_unix_mq_put(e->wq);
    e->wq = NULL;
    e->peer.len = 0;
    e->state = U_UNBOUND;
    return -QK_ECONNREFUSED;
  }
  if (e->wq->shut_rd)
    return -QK_EPIPE;
  struct unix_end *t = e->wq->owner;
  if (t && t->wq && t->wq != e->rq && t != e)
    return -QK_EPERM; /* the receiver connected to another since */
  *q = e->wq;
  *te = t;
  return 0;
}

int64_t qk_unix_msg_send(struct qk_file *f, const struct qk_uio *u, uint64_t flags,
                         struct unix_anc *anc, const uint8_t *addr, uint32_t alen)
{
  struct unix_end *e = f->priv;
  struct unix_mq *q;
  struct unix_end *te;
  int64_t r = msg_target(e, addr, alen, &q, &te);
  if (!r && e->type == UN_DGRAM && e->passcred_set && !e->name.len)
    r = qk_unix_autobind(e); /* Linux names a sender that passes credentials */
  if (!r && u->total + 32 > (uint64_t)e->sndbuf)
    r = -QK_EMSGSIZE;
  if (!r) {
    /* Full: bytes over the queue's limit, or (datagrams from a sender the
     * receiver is not connected to) more than max_dgram_qlen queued. */
    bool full = q->head && q->charge + u->total + MSG_COST > MQ_MAX;
    if (e->type == UN_DGRAM && (!te || te->wq != e->rq) && q->count > DGRAM_QLEN)
      full = true;
    if (full)
      r = nonblock(f, flags) ? -QK_EAGAIN : qk_block(q, ~0ull);
  }
  struct unix_msg *m = NULL;
  if (!r && !(m = qk_kmalloc(sizeof(*m) + u->total)))
    r = -QK_ENOMEM;
  uint64_t off = 0;
  for (unsigned i = 0; !r && i < u->cnt; i++) {
    if (u->iov[i].len && qk_copy_from_user(m->data + off, u->iov[i].base, u->iov[i].len))
      r = -QK_EFAULT;
    off += u->iov[i].len;
  }
  if (!r && !anc && !(anc = qk_kzalloc(sizeof(*anc))))
    r = -QK_ENOMEM;
  if (r) {
    qk_kfree(m);
  } else {
    m->next = NULL;
    m->len = u->total;
    anc->cred = true; /* every message names its writer */
    anc->uc = qk_unix_my_cred();
    m->anc = anc;
    anc = NULL;
    m->fromlen = e->name.len;
    memcpy(m->from, e->name.addr, e->name.len);
    if (q->tail)
      q->tail->next = m;
    else
      q->head = m;
    q->tail = m;
    q->bytes += m->len;
    q->charge += m->len + MSG_COST;
    q->count++;
    qk_wake(q);
    qk_wake(&qk_poll_wq);
    r = (int64_t)m->len;
  }
  if (r == -QK_EPIPE && !(flags & MSG_NOSIGNAL))
    qk_net_raise_sigpipe();
  if (anc)
    qk_unix_anc_free(anc);
  return r;
}

int64_t qk_unix_msg_recv(struct qk_file *f, const struct qk_uio *u, uint64_t flags,
                         struct unix_anc **got, uint32_t *mflags, uint8_t *from, uint32_t *fromlen)
{
  struct unix_end *e = f->priv;
  *got = NULL;
  if (fromlen)
    *fromlen = 0;
  if (e->type == UN_SEQPACKET && e->state != U_CONNECTED)
    return e->state == U_LISTEN ? -QK_EINVAL : -QK_ENOTCONN;
  struct unix_mq *q = e->rq;
  if (e->type == UN_SEQPACKET && q->reset) {
    q->reset = false; /* the peer closed with our messages unread */
    return -QK_ECONNRESET;
  }
  if (!q->head) {
    /* Shut down for reading, or a seqpacket peer that is gone: the end.
     * A datagram socket waits on (Linux does the same). */
    if (q->shut_rd || (e->type == UN_SEQPACKET && q->shut_wr))
      return 0;
    return nonblock(f, flags) ? -QK_EAGAIN : qk_block(q, ~0ull);
  }
  struct unix_msg *m = q->head;
  uint64_t off = 0;
  for (unsigned i = 0; i < u->cnt && off < m->len; i++) {
    uint64_t n = u->iov[i].len < m->len - off ? u->iov[i].len : m->len - off;
    if (n && qk_copy_to_user(u->iov[i].base, m->data + off, n))
      return off ? (int64_t)off : -QK_EFAULT;
    off += n;
  }
  if (off < m->len)
    *mflags |= MSG_TRUNC; /* the rest of the message is gone (kept by a peek) */
  int64_t r = (flags & MSG_TRUNC) ? (int64_t)m->len : (int64_t)off;
  if (from && fromlen && m->fromlen) {
    memcpy(from, m->from, m->fromlen);
    *fromlen = m->fromlen;
  }
  if (flags & MSG_PEEK) {
    if (m->anc)
      *got = qk_unix_anc_dup(m->anc);
    return r;
  }
  q->head = m->next;
  if (!q->head)
    q->tail = NULL;
  q->bytes -= m->len;
  q->charge -= m->len + MSG_COST;
  q->count--;
  *got = m->anc;
  qk_kfree(m);
  qk_wake(q);
  qk_wake(&qk_poll_wq);
  return r;
}

/* ---- the socket layer's entry points ---- */

int64_t qk_unix_sendmsg(struct qk_file *f, const struct qk_uio *u, uint64_t flags,
                        const uint8_t *ctl, uint64_t ctllen, const uint8_t *addr, uint32_t alen)
{
  struct unix_end *e = f->priv;
  if (flags & MSG_OOB)
    return -QK_EOPNOTSUPP;
  if (e->type == UN_STREAM && addr)
    return e->state == U_CONNECTED ? -QK_EISCONN : -QK_EOPNOTSUPP;
  struct unix_anc *a = NULL;
  int64_t r = ctllen ? qk_unix_anc_parse(ctl, ctllen, &a) : 0;
  if (r)
    return r;
  if (e->type == UN_STREAM)
    return qk_unix_stream_io(f, u, flags, true, a, NULL);
  return qk_unix_msg_send(f, u, flags, a, addr, alen);
}

int64_t qk_unix_recvmsg(struct qk_file *f, const struct qk_uio *u, uint64_t flags, uint64_t uctl,
                        uint64_t *ctllen, uint32_t *mflags, uint8_t *from, uint32_t *fromlen)
{
  struct unix_end *e = f->priv;
  if (fromlen)
    *fromlen = 0;
  *mflags = 0;
  if (flags & MSG_OOB)
    return -QK_EOPNOTSUPP;
  struct unix_anc *a = NULL;
  int64_t r = e->type == UN_STREAM ? qk_unix_stream_io(f, u, flags, false, NULL, &a)
                                   : qk_unix_msg_recv(f, u, flags, &a, mflags, from, fromlen);
  if (r < 0) {
    if (a)
      qk_unix_anc_free(a);
    *ctllen = 0;
    return r;
  }
  if (e->type == UN_STREAM && fromlen && e->peer.len) {
    memcpy(from, e->peer.addr, e->peer.len); /* a stream reports its peer's name */
    *fromlen = e->peer.len;
  }
  bool passcred = e->passcred_set && (r > 0 || a); /* a datagram may be empty */
  int64_t d = qk_unix_anc_deliver(a, passcred, uctl, ctllen, flags, mflags);
  return d < 0 ? d : r;
}
