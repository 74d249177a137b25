/* AF_UNIX stream sockets inside the guest: a connected end reads from one
 * pipe and writes to the other (fs/pipe.c does the buffering, blocking and
 * poll/select wake-ups). Names (filesystem paths and abstract names) live
 * in a guest-wide table, not in the rootfs: a path-named socket is found
 * by connect in every process of the pod but leaves no file behind.
 * Ancillary data rides beside the bytes: each direction has a channel that
 * counts the bytes written and read and queues, per send that carried
 * files (or whose reader wants credentials), a record of the stream range
 * it wrote. As on Linux, a read that reaches the bytes of a send with
 * files receives those files and stops at the end of that send (a read(2)
 * closes them); credentials are those of the writer of the read's first
 * byte (reads are not split by writer, unlike Linux).
 * socketpair() of SOCK_DGRAM and SOCK_SEQPACKET gives two ends over two
 * message queues (msg_io); named sockets of those types are not served
 * yet (README, Guest sockets). */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/task.h>

#include "net_internal.h"

#define MSG_DONTWAIT 0x40
#define MSG_NOSIGNAL 0x4000
#define MSG_CMSG_CLOEXEC 0x40000000
#define POLLERR 0x008
#define POLLHUP 0x010

#define NAME_MAX_UN 108 /* sun_path */
#define SCM_MAX_FD 253
#define CTL_MAX 4096 /* control bytes a sendmsg may carry (Linux: optmem_max) */
#define MSG_CTRUNC 0x8
#define SOL_SOCKET 1
#define SCM_RIGHTS 1
#define SCM_CREDENTIALS 2
enum { U_UNBOUND, U_LISTEN, U_CONNECTED };

struct ucred_l {
  int32_t pid;
  uint32_t uid, gid;
};

/* Files and credentials sent with the len bytes at stream offset pos
 * (one sendmsg/write). */
struct unix_anc {
  struct unix_anc *next;
  uint64_t pos, len;
  bool cred;
  struct ucred_l uc;
  int nfds;
  struct qk_file *fds[SCM_MAX_FD];
};

/* One direction of a connection: shared by the writing and the reading
 * end (refs). */
struct unix_chan {
  uint64_t wpos, rpos; /* bytes written into / read from the pipe */
  struct unix_anc *head, *tail;
  bool passcred; /* the reading end set SO_PASSCRED */
  bool has_cred; /* cred: the writer of the bytes at rpos */
  struct ucred_l cred;
  int refs;
};

/* SOCK_DGRAM / SOCK_SEQPACKET pairs: each end reads its own message queue
 * and writes the peer's. */
#define MQ_MAX (208u * 1024) /* bytes queued per direction (Linux's default wmem) */
struct unix_msg {
  struct unix_msg *next;
  uint64_t len;
  struct unix_anc *anc;
  uint8_t data[];
};
struct unix_mq {
  struct unix_msg *head, *tail;
  uint64_t bytes;
  bool no_reader, no_writer;
  int refs;
};

struct unix_end {
  int type;                /* SOCK_STREAM (1), SOCK_DGRAM (2), SOCK_SEQPACKET (5) */
  struct unix_mq *rq, *wq; /* message types: my queue, the peer's */
  struct qk_file *rx, *tx; /* pipe ends; NULL once shut down */
  struct unix_chan *rxc, *txc;
  struct ucred_l peercred, owncred; /* SO_PEERCRED; owncred: at listen */
  bool passcred_set;                /* SO_PASSCRED on this end */
  uint64_t ino;
  int state;
  uint8_t name[NAME_MAX_UN], peer[NAME_MAX_UN]; /* sun_path bytes (abstract: leading NUL) */
  uint32_t namelen, peerlen;                    /* 0: unnamed */
  struct unix_end *next_bound;                  /* the name table */
  struct qk_file **queue;                       /* listening: connections not accepted yet */
  int qlen, qmax;
};

static uint64_t next_ino = 0x30000;
static struct unix_end *bound;

static struct ucred_l my_cred(void)
{
  struct qk_process *p = qk_current()->proc;
  return (struct ucred_l){p->pid, p->euid, p->egid};
}

static void anc_free(struct unix_anc *a)
{
  for (int i = 0; i < a->nfds; i++)
    qk_fput(a->fds[i]);
  qk_kfree(a);
}

static void chan_put(struct unix_chan *c)
{
  if (!c || --c->refs)
    return;
  while (c->head) {
    struct unix_anc *a = c->head;
    c->head = a->next;
    anc_free(a);
  }
  qk_kfree(c);
}

/* Parses a sendmsg's control data (kernel copy): SCM_RIGHTS (references
 * taken on the files) and SCM_CREDENTIALS (only the sender's own, as for
 * a process without CAP_SYS_ADMIN/CAP_SETUID). *out is NULL when there is
 * none. */
static int64_t anc_parse(const uint8_t *ctl, uint64_t len, struct unix_anc **out)
{
  *out = NULL;
  struct unix_anc *a = NULL;
  int64_t r = 0;
  uint64_t off = 0;
  while (len - off >= 16) {
    uint64_t clen;
    int32_t level, type;
    memcpy(&clen, ctl + off, 8);
    memcpy(&level, ctl + off + 8, 4);
    memcpy(&type, ctl + off + 12, 4);
    if (clen < 16 || clen > len - off) {
      r = -QK_EINVAL;
      break;
    }
    if (!a && !(a = qk_kzalloc(sizeof(*a)))) {
      r = -QK_ENOMEM;
      break;
    }
    if (level != SOL_SOCKET) {
      r = -QK_EINVAL;
      break;
    }
    if (type == SCM_RIGHTS) {
      uint64_t n = (clen - 16) / 4;
      if (n + (uint64_t)a->nfds > SCM_MAX_FD) {
        r = -QK_EINVAL;
        break;
      }
      for (uint64_t i = 0; i < n; i++) {
        int32_t fd;
        memcpy(&fd, ctl + off + 16 + 4 * i, 4);
        struct qk_file *f = qk_fget_in(qk_current()->proc->files, fd);
        if (!f) {
          r = -QK_EBADF;
          break;
        }
        a->fds[a->nfds++] = f;
      }
      if (r)
        break;
    } else if (type == SCM_CREDENTIALS) {
      struct ucred_l uc, me = my_cred();
      struct qk_process *p = qk_current()->proc;
      if (clen < 16 + sizeof(uc)) {
        r = -QK_EINVAL;
        break;
      }
      memcpy(&uc, ctl + off + 16, sizeof(uc));
      if (uc.pid != me.pid || (uc.uid != p->uid && uc.uid != p->euid) ||
          (uc.gid != p->gid && uc.gid != p->egid)) {
        r = -QK_EPERM;
        break;
      }
      a->cred = true;
      a->uc = uc;
    } else {
      r = -QK_EINVAL;
      break;
    }
    off += (clen + 7) & ~7ull;
  }
  if (r) {
    if (a)
      anc_free(a);
    return r;
  }
  *out = a;
  return 0;
}

/* Delivers a (may be NULL) into the user's control buffer uctl of *room
 * bytes: SCM_CREDENTIALS when the reader set SO_PASSCRED, then SCM_RIGHTS
 * with the files installed here. Files that do not fit are closed
 * (MSG_CTRUNC). *room becomes the bytes written. Consumes a. */
static int64_t anc_deliver(struct unix_anc *a, bool passcred, uint64_t uctl, uint64_t *room,
                           uint64_t flags, uint32_t *mflags)
{
  uint8_t buf[16 + 4 * SCM_MAX_FD + 32];
  uint64_t used = 0, cap = *room > sizeof(buf) ? sizeof(buf) : *room;
  if (!uctl)
    cap = 0;
  if (passcred) {
    struct ucred_l uc = a && a->cred ? a->uc : (struct ucred_l){0, 65534, 65534};
    if (cap >= 16 + sizeof(uc)) {
      uint64_t clen = 16 + sizeof(uc);
      int32_t lt[2] = {SOL_SOCKET, SCM_CREDENTIALS};
      memcpy(buf, &clen, 8);
      memcpy(buf + 8, lt, 8);
      memcpy(buf + 16, &uc, sizeof(uc));
      used = (clen + 7) & ~7ull;
    } else {
      *mflags |= MSG_CTRUNC;
    }
  }
  if (a && a->nfds) {
    int fit = cap >= used + 16 ? (int)((cap - used - 16) / 4) : 0;
    if (fit > a->nfds)
      fit = a->nfds;
    int got = 0;
    for (int i = 0; i < a->nfds; i++) {
      int fd = -1;
      if (i < fit) {
        fd = qk_fd_install(qk_current()->proc->files, a->fds[i], 0,
                           (flags & 0x40000000 /* MSG_CMSG_CLOEXEC */) != 0);
        if (fd >= 0)
          a->fds[i] = NULL; /* the table holds that reference now */
      }
      if (fd < 0) {
        *mflags |= MSG_CTRUNC;
        continue;
      }
      memcpy(buf + used + 16 + 4 * got, &fd, 4);
      got++;
    }
    if (got) {
      uint64_t clen = 16 + 4 * (uint64_t)got;
      int32_t lt[2] = {SOL_SOCKET, SCM_RIGHTS};
      memcpy(buf + used, &clen, 8);
      memcpy(buf + used + 8, lt, 8);
      used += clen;
    }
    for (int i = 0; i < a->nfds; i++)
      if (a->fds[i])
        qk_fput(a->fds[i]);
    a->nfds = 0;
  }
  if (a)
    anc_free(a);
  *room = used;
  if (used && qk_copy_to_user(uctl, buf, used))
    return -QK_EFAULT;
  return 0;
}

static void mq_put(struct unix_mq *q)
{
  if (!q || --q->refs)
    return;
  while (q->head) {
    struct unix_msg *m = q->head;
    q->head = m->next;
    if (m->anc)
      anc_free(m->anc);
    qk_kfree(m);
  }
  qk_kfree(q);
}

/* A message transfer on a DGRAM/SEQPACKET pair (same contract as unix_io). */
static int64_t msg_io(struct qk_file *f, const struct qk_uio *u, uint64_t flags, bool send,
                      struct unix_anc *anc, struct unix_anc **got, uint32_t *mflags)
{
  struct unix_end *e = f->priv;
  bool nb = (f->flags & L_O_NONBLOCK) || (flags & MSG_DONTWAIT);
  int64_t r;
  if (send) {
    struct unix_mq *q = e->wq;
    if (!q || q->no_writer) {
      r = -QK_EPIPE;
    } else if (q->no_reader) {
      r = e->type == 5 ? -QK_EPIPE : -QK_ECONNREFUSED;
    } else if (u->total > MQ_MAX) {
      r = -QK_EMSGSIZE;
    } else if (q->head && q->bytes + u->total > MQ_MAX) {
      r = nb ? -QK_EAGAIN : qk_block(q, ~0ull);
    } else {
      struct unix_msg *m = qk_kmalloc(sizeof(*m) + u->total);
      r = m ? 0 : -QK_ENOMEM;
      uint64_t off = 0;
      for (unsigned i = 0; !r && i < u->cnt; i++) {
        if (u->iov[i].len && qk_copy_from_user(m->data + off, u->iov[i].base, u->iov[i].len))
          r = -QK_EFAULT;
        off += u->iov[i].len;
      }
      if (r) {
        qk_kfree(m);
      } else {
        m->next = NULL;
        m->len = u->total;
        if (!anc && (anc = qk_kzalloc(sizeof(*anc))))
          anc->uc = my_cred();
        if (anc) {
          anc->cred = true;
          anc->uc = my_cred();
        }
        m->anc = anc;
        anc = NULL;
        if (q->tail)
          q->tail->next = m;
        else
          q->head = m;
        q->tail = m;
        q->bytes += m->len;
        qk_wake(q);
        qk_wake(&qk_poll_wq);
        r = (int64_t)m->len;
      }
    }
    if (r == -QK_EPIPE && !(flags & MSG_NOSIGNAL)) {
      struct qk_siginfo_lite si = {.code = QK_SI_USER, .pid = qk_current()->proc->pid};
      qk_signal_task(qk_current(), 13 /* SIGPIPE */, &si, false);
    }
    if (anc)
      anc_free(anc);
    return r;
  }
  struct unix_mq *q = e->rq;
  if (got)
    *got = NULL;
  if (!q || !q->head) {
    /* A seqpacket peer that is gone reads as the end; a datagram pair's
     * reader waits on (Linux does the same). */
    if (!q || (q->no_writer && e->type == 5))
      return 0;
    return nb ? -QK_EAGAIN : qk_block(q, ~0ull);
  }
  struct unix_msg *m = q->head;
  uint64_t off = 0;
  for (unsigned i = 0; i < u->cnt && off < m->len; i++) {
    uint64_t n = u->iov[i].len < m->len - off ? u->iov[i].len : m->len - off;
    if (n && qk_copy_to_user(u->iov[i].base, m->data + off, n))
      return off ? (int64_t)off : -QK_EFAULT;
    off += n;
  }
  q->head = m->next;
  if (!q->head)
    q->tail = NULL;
  q->bytes -= m->len;
  if (off < m->len && mflags)
    *mflags |= 0x20; /* MSG_TRUNC: the rest of the message is gone */
  r = (flags & 0x20) ? (int64_t)m->len : (int64_t)off;
  if (got)
    *got = m->anc;
  else if (m->anc)
    anc_free(m->anc);
  qk_kfree(m);
  qk_wake(q);
  qk_wake(&qk_poll_wq);
  return r;
}

/* One transfer. Sending: anc (consumed; NULL: none) goes with the first
 * byte that goes out. Receiving: stops at the next ancillary boundary and
 * hands the record that starts here to *got (NULL: none; the caller
 * delivers or drops it). */
static int64_t unix_io(struct qk_file *f, const struct qk_uio *u, uint64_t flags, bool send,
                       struct unix_anc *anc, struct unix_anc **got)
{
  struct unix_end *e = f->priv;
  if (got)
    *got = NULL;
  int64_t r;
  if (e->type != 1 && e->state == U_CONNECTED)
    return msg_io(f, u, flags, send, anc, got, NULL);
  if (e->state != U_CONNECTED) {
    r = -QK_ENOTCONN;
    goto out;
  }
  struct qk_file *p = send ? e->tx : e->rx;
  if (!p) {
    r = send ? -QK_EPIPE : 0; /* shut down: no more writes, reads see EOF */
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
    anc->uc = my_cred();
  }
  if (!send && c) {
    /* The writer of the bytes at rpos; records of bytes already read go. */
    while (c->head && !c->head->nfds && c->head->pos <= c->rpos) {
      struct unix_anc *a = c->head;
      c->cred = a->uc;
      c->has_cred = true;
      c->head = a->next;
      anc_free(a);
    }
    if (!c->head)
      c->tail = NULL;
    for (fdrec = c->head; fdrec && !fdrec->nfds; fdrec = fdrec->next)
      ;
    /* A read ends with the send whose files it takes. */
    uint64_t stop = fdrec ? fdrec->pos + fdrec->len : ~0ull;
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
  /* The pipe end carries this end's O_NONBLOCK (and MSG_DONTWAIT) for the
   * one call. */
  uint32_t saved = p->flags;
  if ((f->flags & L_O_NONBLOCK) || (flags & MSG_DONTWAIT))
    p->flags |= L_O_NONBLOCK;
  else
    p->flags &= ~(uint32_t)L_O_NONBLOCK;
  uint64_t pos = c ? (send ? c->wpos : c->rpos) : 0;
  r = p->ops->rw(p, &lim, -1, send);
  p->flags = saved;
  qk_kfree(cut);
  if (r > 0 && c) {
    if (send) {
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
    } else {
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
          anc_free(a);
      }
      if (!c->head)
        c->tail = NULL;
      if (take && got) {
        take->uc = first;
        take->cred = first_known;
        *got = take;
      } else if (take) {
        anc_free(take); /* read() asks for no control data: files closed */
      } else if (got && c->passcred && first_known && (*got = qk_kzalloc(sizeof(**got)))) {
        (*got)->cred = true;
        (*got)->uc = first;
      }
    }
  }
out:
  if (anc)
    anc_free(anc); /* nothing went out: the restart sends it again */
  return r;
}

int64_t qk_unix_xfer(struct qk_file *f, const struct qk_uio *u, uint64_t flags, bool send)
{
  struct unix_end *e = f->priv;
  /* MSG_TRUNC on a message socket: the message's real length. */
  uint64_t ok =
      MSG_DONTWAIT | MSG_NOSIGNAL | (send ? 0 : MSG_CMSG_CLOEXEC | (e->type != 1 ? 0x20u : 0u));
  if (flags & ~ok)
    return -QK_EOPNOTSUPP;
  return unix_io(f, u, flags, send, NULL, NULL);
}

int64_t qk_unix_sendmsg(struct qk_file *f, const struct qk_uio *u, uint64_t flags,
                        const uint8_t *ctl, uint64_t ctllen)
{
  if (flags & ~(uint64_t)(MSG_DONTWAIT | MSG_NOSIGNAL))
    return -QK_EOPNOTSUPP;
  struct unix_anc *a = NULL;
  int64_t r = ctllen ? anc_parse(ctl, ctllen, &a) : 0;
  if (r)
    return r;
  return unix_io(f, u, flags, true, a, NULL);
}

int64_t qk_unix_recvmsg(struct qk_file *f, const struct qk_uio *u, uint64_t flags, uint64_t uctl,
                        uint64_t *ctllen, uint32_t *mflags)
{
  struct unix_end *e = f->priv;
  uint64_t ok = MSG_DONTWAIT | MSG_NOSIGNAL | MSG_CMSG_CLOEXEC | (e->type != 1 ? 0x20 : 0);
  if (flags & ~ok)
    return -QK_EOPNOTSUPP;
  struct unix_anc *a;
  *mflags = 0;
  int64_t r = e->type != 1 && e->state == U_CONNECTED ? msg_io(f, u, flags, false, NULL, &a, mflags)
                                                      : unix_io(f, u, flags, false, NULL, &a);
  if (r < 0) {
    *ctllen = 0;
    return r;
  }
  bool passcred = e->passcred_set;
  int64_t d = anc_deliver(a, passcred && r > 0, uctl, ctllen, flags, mflags);
  return d < 0 ? d : r;
}

int64_t qk_unix_setsockopt(struct qk_file *f, uint64_t level, uint64_t name, const void *val,
                           uint64_t len)
{
  struct unix_end *e = f->priv;
  if (level != SOL_SOCKET)
    return -QK_ENOPROTOOPT;
  if (name == 7 || name == 8) /* SO_SNDBUF, SO_RCVBUF: fixed 64 KiB, accepted */
    return 0;
  if (name == 16) { /* SO_PASSCRED */
    int32_t on;
    if (len < 4)
      return -QK_EINVAL;
    memcpy(&on, val, 4);
    e->passcred_set = on != 0;
    if (e->rxc)
      e->rxc->passcred = on != 0;
    return 0;
  }
  return -QK_ENOPROTOOPT;
}

/* SO_PASSCRED (16) and SO_PEERCRED (17): 0 with the value in val/len, or
 * -QK_ENOPROTOOPT for the others (the caller answers those). */
int64_t qk_unix_getsockopt(struct qk_file *f, uint64_t name, void *val, uint32_t *len)
{
  struct unix_end *e = f->priv;
  if (name == 3) { /* SO_TYPE */
    int32_t t = e->type;
    memcpy(val, &t, 4);
    *len = 4;
    return 0;
  }
  if (name == 16) {
    int32_t on = e->passcred_set;
    memcpy(val, &on, 4);
    *len = 4;
    return 0;
  }
  if (name == 17) {
    struct ucred_l uc = e->state == U_CONNECTED ? e->peercred : (struct ucred_l){0, ~0u, ~0u};
    memcpy(val, &uc, sizeof(uc));
    *len = sizeof(uc);
    return 0;
  }
  return -QK_ENOPROTOOPT;
}

static int64_t unix_rw(struct qk_file *f, const struct qk_uio *u, int64_t off, bool write)
{
  if (off >= 0)
    return -QK_ESPIPE;
  return unix_io(f, u, 0, write, NULL, NULL);
}

int64_t qk_unix_shutdown(struct qk_file *f, uint64_t how)
{
  struct unix_end *e = f->priv;
  if (how > 2)
    return -QK_EINVAL;
  if (e->type != 1) {
    if (how != 1 && e->rq) {
      e->rq->no_reader = true;
      qk_wake(e->rq);
    }
    if (how != 0 && e->wq) {
      e->wq->no_writer = true; /* the peer reads the end (seqpacket) */
      qk_wake(e->wq);
    }
    qk_wake(&qk_poll_wq);
    return 0;
  }
  if (how != 1 && e->rx) { /* SHUT_RD or SHUT_RDWR */
    qk_fput(e->rx);
    e->rx = NULL;
  }
  if (how != 0 && e->tx) { /* SHUT_WR or SHUT_RDWR: the peer reads EOF */
    qk_fput(e->tx);
    e->tx = NULL;
  }
  return 0;
}

static int64_t unix_lseek(struct qk_file *f, int64_t off, int whence)
{
  return -QK_ESPIPE;
}

static int unix_fstat(struct qk_file *f, uint64_t gpa)
{
  struct unix_end *e = f->priv;
  struct l_stat *st = qk_pa_to_va(gpa);
  memset(st, 0, sizeof(*st));
  st->st_dev = 8;
  st->st_ino = e->ino;
  st->st_nlink = 1;
  st->st_mode = 0140000 | 0777; /* S_IFSOCK */
  st->st_blksize = 4096;
  return 0;
}

static int64_t unix_getdents(struct qk_file *f, uint64_t uva, uint64_t len)
{
  return -QK_ENOTDIR;
}

static int64_t unix_ioctl(struct qk_file *f, uint64_t cmd, uint64_t arg)
{
  struct unix_end *e = f->priv;
  if (cmd == 0x5421) { /* FIONBIO */
    int32_t on;
    if (qk_copy_from_user(&on, arg, 4))
      return -QK_EFAULT;
    f->flags = on ? f->flags | L_O_NONBLOCK : f->flags & ~(uint32_t)L_O_NONBLOCK;
    return 0;
  }
  if (cmd == 0x541b && e->type != 1) { /* FIONREAD: bytes queued, as Linux */
    int32_t n = e->rq ? (int32_t)e->rq->bytes : 0;
    return qk_copy_to_user(arg, &n, 4) ? -QK_EFAULT : 0;
  }
  if (cmd == 0x541b) { /* FIONREAD */
    if (!e->rx) {
      int32_t zero = 0;
      return qk_copy_to_user(arg, &zero, 4) ? -QK_EFAULT : 0;
    }
    return e->rx->ops->ioctl(e->rx, cmd, arg);
  }
  return -QK_ENOTTY;
}

static int unix_poll(struct qk_file *f)
{
  struct unix_end *e = f->priv;
  if (e->state == U_LISTEN)
    return e->qlen ? 0x001 : 0;
  if (e->state == U_UNBOUND)
    return POLLHUP;
  if (e->type != 1) {
    int mev = 0;
    if (e->rq && (e->rq->head || e->rq->no_reader || (e->type == 5 && e->rq->no_writer)))
      mev |= 0x001;
    if (e->wq && !e->wq->no_reader && !e->wq->no_writer && e->wq->bytes < MQ_MAX)
      mev |= 0x004;
    if (e->type == 5 && e->rq && e->rq->no_writer)
      mev |= POLLHUP;
    return mev;
  }
  int ev = 0;
  if (e->rx)
    ev |= e->rx->ops->poll(e->rx);
  else
    ev |= 0x001; /* shut down for reading: reads return 0 at once */
  if (e->tx) {
    int w = e->tx->ops->poll(e->tx);
    /* A peer that is gone is a hang-up on a socket, not just an error. */
    ev |= w & POLLERR ? POLLHUP | POLLERR : w;
  }
  return ev;
}

static int unix_mmap_hfd(struct qk_file *f)
{
  return -QK_ENODEV;
}

static void unix_release(struct qk_file *f)
{
  struct unix_end *e = f->priv;
  for (struct unix_end **pp = &bound; *pp; pp = &(*pp)->next_bound) {
    if (*pp == e) {
      *pp = e->next_bound;
      break;
    }
  }
  for (int i = 0; i < e->qlen; i++)
    qk_fput(e->queue[i]); /* connections never accepted: their peers see EOF */
  qk_kfree(e->queue);
  qk_wake(e);
  qk_wake(&e->qlen);
  qk_unix_shutdown(f, 2);
  chan_put(e->rxc);
  chan_put(e->txc);
  mq_put(e->rq);
  mq_put(e->wq);
  qk_kfree(e);
}

static const struct qk_file_ops unix_ops = {
    .rw = unix_rw,
    .lseek = unix_lseek,
    .fstat = unix_fstat,
    .getdents = unix_getdents,
    .ioctl = unix_ioctl,
    .poll = unix_poll,
    .mmap_hfd = unix_mmap_hfd,
    .release = unix_release,
};

bool qk_unix_is(struct qk_file *f)
{
  return f->ops == &unix_ops;
}

int qk_unix_pair(uint32_t flags, struct qk_file **a, struct qk_file **b)
{
  struct qk_file *r1, *w1, *r2, *w2;
  if (qk_pipe_create(0, &r1, &w1))
    return -QK_ENOMEM;
  if (qk_pipe_create(0, &r2, &w2)) {
    qk_fput(r1);
    qk_fput(w1);
    return -QK_ENOMEM;
  }
  struct unix_end *ea = qk_kzalloc(sizeof(*ea)), *eb = qk_kzalloc(sizeof(*eb));
  struct qk_file *fa = qk_file_new(&unix_ops, L_O_RDWR | (flags & L_O_NONBLOCK), NULL);
  struct qk_file *fb = qk_file_new(&unix_ops, L_O_RDWR | (flags & L_O_NONBLOCK), NULL);
  if (!ea || !eb || !fa || !fb) {
    qk_kfree(ea);
    qk_kfree(eb);
    qk_kfree(fa);
    qk_kfree(fb);
    qk_fput(r1);
    qk_fput(w1);
    qk_fput(r2);
    qk_fput(w2);
    return -QK_ENOMEM;
  }
  struct unix_chan *c1 = qk_kzalloc(sizeof(*c1)), *c2 = qk_kzalloc(sizeof(*c2));
  if (!c1 || !c2) {
    qk_kfree(c1);
    qk_kfree(c2);
    qk_kfree(ea);
    qk_kfree(eb);
    qk_kfree(fa);
    qk_kfree(fb);
    qk_fput(r1);
    qk_fput(w1);
    qk_fput(r2);
    qk_fput(w2);
    return -QK_ENOMEM;
  }
  c1->refs = c2->refs = 2;
  struct ucred_l me = my_cred();
  /* a writes pipe 1 (channel 1) and reads pipe 2; b the other way round. */
  *ea = (struct unix_end){.type = 1,
                          .rx = r2,
                          .tx = w1,
                          .rxc = c2,
                          .txc = c1,
                          .peercred = me,
                          .ino = next_ino++,
                          .state = U_CONNECTED};
  *eb = (struct unix_end){.type = 1,
                          .rx = r1,
                          .tx = w2,
                          .rxc = c1,
                          .txc = c2,
                          .peercred = me,
                          .ino = next_ino++,
                          .state = U_CONNECTED};
  fa->priv = ea;
  fb->priv = eb;
  *a = fa;
  *b = fb;
  return 0;
}

int qk_unix_pair_msg(int type, uint32_t flags, struct qk_file **a, struct qk_file **b)
{
  struct unix_end *ea = qk_kzalloc(sizeof(*ea)), *eb = qk_kzalloc(sizeof(*eb));
  struct unix_mq *q1 = qk_kzalloc(sizeof(*q1)), *q2 = qk_kzalloc(sizeof(*q2));
  struct qk_file *fa = qk_file_new(&unix_ops, L_O_RDWR | (flags & L_O_NONBLOCK), NULL);
  struct qk_file *fb = qk_file_new(&unix_ops, L_O_RDWR | (flags & L_O_NONBLOCK), NULL);
  if (!ea || !eb || !q1 || !q2 || !fa || !fb) {
    qk_kfree(ea);
    qk_kfree(eb);
    qk_kfree(q1);
    qk_kfree(q2);
    qk_kfree(fa);
    qk_kfree(fb);
    return -QK_ENOMEM;
  }
  q1->refs = q2->refs = 2;
  struct ucred_l me = my_cred();
  /* a reads q1 and writes q2; b the other way round. */
  *ea = (struct unix_end){
      .type = type, .rq = q1, .wq = q2, .peercred = me, .ino = next_ino++, .state = U_CONNECTED};
  *eb = (struct unix_end){
      .type = type, .rq = q2, .wq = q1, .peercred = me, .ino = next_ino++, .state = U_CONNECTED};
  fa->priv = ea;
  fb->priv = eb;
  *a = fa;
  *b = fb;
  return 0;
}

int qk_unix_socket(uint32_t flags, struct qk_file **out)
{
  struct unix_end *e = qk_kzalloc(sizeof(*e));
  struct qk_file *f = e ? qk_file_new(&unix_ops, L_O_RDWR | (flags & L_O_NONBLOCK), NULL) : NULL;
  if (!f) {
    qk_kfree(e);
    return -QK_ENOMEM;
  }
  e->ino = next_ino++;
  e->type = 1;
  e->state = U_UNBOUND;
  f->priv = e;
  *out = f;
  return 0;
}

/* The significant bytes of a sockaddr_un: a path up to its NUL, or an
 * abstract name (leading NUL) of the given length. 0 or -errno. */
static int parse_name(const uint8_t *addr, uint32_t len, uint8_t *name, uint32_t *namelen)
{
  uint16_t fam;
  if (len < 2)
    return -QK_EINVAL;
  memcpy(&fam, addr, 2);
  if (fam != 1 /* AF_UNIX */)
    return -QK_EINVAL;
  uint32_t n = len - 2;
  if (n > NAME_MAX_UN)
    n = NAME_MAX_UN;
  if (!n)
    return -QK_EINVAL; /* autobind: not served */
  const uint8_t *p = addr + 2;
  if (p[0]) {
    uint32_t k = 0;
    while (k < n && p[k])
      k++;
    n = k;
  }
  memcpy(name, p, n);
  *namelen = n;
  return 0;
}

static struct unix_end *lookup(const uint8_t *name, uint32_t n)
{
  for (struct unix_end *b = bound; b; b = b->next_bound)
    if (b->namelen == n && !memcmp(b->name, name, n))
      return b;
  return NULL;
}

int64_t qk_unix_bind(struct qk_file *f, const uint8_t *addr, uint32_t len)
{
  struct unix_end *e = f->priv;
  uint8_t name[NAME_MAX_UN];
  uint32_t n;
  int r = parse_name(addr, len, name, &n);
  if (r)
    return r;
  if (e->namelen || e->state != U_UNBOUND)
    return -QK_EINVAL;
  if (lookup(name, n))
    return -QK_EADDRINUSE;
  memcpy(e->name, name, n);
  e->namelen = n;
  e->next_bound = bound;
  bound = e;
  return 0;
}

int64_t qk_unix_listen(struct qk_file *f, int backlog)
{
  struct unix_end *e = f->priv;
  if (e->state == U_CONNECTED || !e->namelen)
    return -QK_EINVAL;
  if (backlog <= 0)
    backlog = 1;
  if (backlog > 4096)
    backlog = 4096;
  if (e->state == U_LISTEN && backlog <= e->qmax)
    return 0;
  struct qk_file **q = qk_kmalloc((size_t)backlog * sizeof(*q));
  if (!q)
    return -QK_ENOMEM;
  for (int i = 0; i < e->qlen; i++)
    q[i] = e->queue[i];
  qk_kfree(e->queue);
  e->queue = q;
  e->qmax = backlog;
  e->state = U_LISTEN;
  e->owncred = my_cred();
  return 0;
}

int64_t qk_unix_connect(struct qk_file *f, const uint8_t *addr, uint32_t len)
{
  struct unix_end *e = f->priv;
  uint8_t name[NAME_MAX_UN];
  uint32_t n;
  int r = parse_name(addr, len, name, &n);
  if (r)
    return r;
  if (e->state == U_CONNECTED)
    return -QK_EISCONN;
  if (e->state == U_LISTEN)
    return -QK_EINVAL;
  struct unix_end *l = lookup(name, n);
  if (!l)
    return name[0] ? -QK_ENOENT : -QK_ECONNREFUSED;
  if (l->state != U_LISTEN)
    return -QK_ECONNREFUSED;
  if (l->qlen >= l->qmax) {
    if (f->flags & L_O_NONBLOCK)
      return -QK_EAGAIN;
    return qk_block(&l->qlen, ~0ull); /* accept makes room */
  }
  struct qk_file *mine, *theirs;
  if ((r = qk_unix_pair(0, &mine, &theirs)))
    return r;
  /* This file takes over the new pair's first end. */
  struct unix_end *m = mine->priv;
  e->rx = m->rx;
  e->tx = m->tx;
  e->rxc = m->rxc;
  e->txc = m->txc;
  m->rx = m->tx = NULL;
  m->rxc = m->txc = NULL;
  qk_fput(mine);
  e->state = U_CONNECTED;
  e->peercred = l->owncred;
  if (e->passcred_set)
    e->rxc->passcred = true;
  memcpy(e->peer, l->name, l->namelen);
  e->peerlen = l->namelen;
  struct unix_end *t = theirs->priv;
  t->peercred = my_cred();
  if (l->passcred_set) { /* the accepted socket inherits it */
    t->passcred_set = true;
    t->rxc->passcred = true;
  }
  memcpy(t->name, l->name, l->namelen);
  t->namelen = l->namelen;
  l->queue[l->qlen++] = theirs;
  qk_wake(l);
  qk_wake(&qk_poll_wq);
  return 0;
}

int64_t qk_unix_accept(struct qk_file *f, uint32_t flags, struct qk_file **out)
{
  struct unix_end *e = f->priv;
  if (e->state != U_LISTEN)
    return -QK_EINVAL;
  if (!e->qlen) {
    if (f->flags & L_O_NONBLOCK)
      return -QK_EAGAIN;
    return qk_block(e, ~0ull);
  }
  struct qk_file *c = e->queue[0];
  for (int i = 1; i < e->qlen; i++)
    e->queue[i - 1] = e->queue[i];
  e->qlen--;
  qk_wake(&e->qlen);
  c->flags = (c->flags & ~(uint32_t)L_O_NONBLOCK) | (flags & L_O_NONBLOCK);
  *out = c;
  return 0;
}

uint32_t qk_unix_name(struct qk_file *f, bool peer, uint8_t *buf)
{
  struct unix_end *e = f->priv;
  uint16_t fam = 1;
  memcpy(buf, &fam, 2);
  uint32_t n = peer ? e->peerlen : e->namelen;
  memcpy(buf + 2, peer ? e->peer : e->name, n);
  /* Path names are reported with their NUL, as Linux does. */
  if (n && buf[2] && n < NAME_MAX_UN) {
    buf[2 + n] = 0;
    return 2 + n + 1;
  }
  return 2 + n;
}
