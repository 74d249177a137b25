/* Ancillary data of guest AF_UNIX sockets (SCM_RIGHTS, SCM_CREDENTIALS)
 * and the collection of descriptor cycles.
 *
 * A file sent with SCM_RIGHTS is held by its record until a reader takes
 * it; a unix socket counts those references (inflight). A socket sent
 * over itself, or a ring of sockets each in flight in the next one's
 * queue, keeps itself alive once every descriptor is closed: nothing can
 * read those queues any more. The collector (Linux's unix_gc, written
 * anew): when a unix socket's references fall to its in-flight count
 * (qk_fput's hook), every socket in that state is a candidate; references
 * from records in candidates' receive queues are subtracted; a candidate
 * with references left is reachable from outside, and so is everything in
 * its queue; the candidates left are garbage, and the files of the
 * records in their queues are dropped, which releases the cycle. Every
 * step runs under the kernel's one lock (no per-CPU state). */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/task.h>

#include "net_internal.h"
#include "unix_internal.h"

#define SOL_SOCKET 1
#define SCM_RIGHTS 1
#define SCM_CREDENTIALS 2

struct unix_end *qk_unix_all;

static void inflight_add(struct qk_file *f, int d)
{
  if (qk_unix_is(f))
    ((struct unix_end *)f->priv)->inflight += d;
}

/* Drops a record's reference to f. */
static void drop_fd(struct qk_file *f)
{
  inflight_add(f, -1);
  qk_fput(f);
}

void qk_unix_anc_free(struct unix_anc *a)
{
  int n = a->nfds;
  a->nfds = 0;
  for (int i = 0; i < n; i++)
    if (a->fds[i])
      drop_fd(a->fds[i]);
  qk_kfree(a->fds);
  qk_kfree(a);
}

struct unix_anc *qk_unix_anc_dup(const struct unix_anc *a)
{
  struct unix_anc *d = qk_kmalloc(sizeof(*d));
  if (!d)
    return NULL;
  *d = *a;
  d->next = NULL;
  d->nfds = 0;
  d->fds = a->nfds ? qk_kmalloc(SCM_MAX_FD * sizeof(*d->fds)) : NULL;
  if (a->nfds && !d->fds) {
    qk_kfree(d);
    return NULL;
  }
  for (int i = 0; i < a->nfds; i++) {
    if (!a->fds[i])
      continue;
    d->fds[d->nfds++] = qk_file_ref(a->fds[i]);
    inflight_add(a->fds[i], 1);
  }
  return d;
}

int64_t qk_unix_anc_parse(const uint8_t *ctl, uint64_t len, struct unix_anc **out)
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
      if (!a->fds && !(a->fds = qk_kmalloc(SCM_MAX_FD * sizeof(*a->fds)))) {
        r = -QK_ENOMEM;
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
        inflight_add(f, 1);
        a->fds[a->nfds++] = f;
        qk_unix_file_kept = qk_unix_gc_note;
      }
      if (r)
        break;
    } else if (type == SCM_CREDENTIALS) {
      struct ucred_l uc, me = qk_unix_my_cred();
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
      qk_unix_anc_free(a);
    return r;
  }
  *out = a;
  return 0;
}

int64_t qk_unix_anc_deliver(struct unix_anc *a, bool passcred, uint64_t uctl, uint64_t *room,
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
      struct qk_file *f = a->fds[i];
      if (i < fit) {
        fd = qk_fd_install(qk_current()->proc->files, f, 0, (flags & MSG_CMSG_CLOEXEC) != 0);
        if (fd >= 0) {
          a->fds[i] = NULL; /* the table holds that reference now */
          inflight_add(f, -1);
        }
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
  }
  if (a)
    qk_unix_anc_free(a); /* files that did not fit are closed */
  *room = used;
  if (used && qk_copy_to_user(uctl, buf, used))
    return -QK_EFAULT;
  return 0;
}

/* ---- the collector ---- */

/* Calls fn for every record a reader of e could still receive: its
 * stream channel, its message queue, and those of the connections a
 * listener has not accepted yet. */
static void each_rec(struct unix_end *e, void (*fn)(struct unix_anc *a, void *arg), void *arg)
{
  if (e->rxc)
    for (struct unix_anc *a = e->rxc->head; a; a = a->next)
      fn(a, arg);
  if (e->rq)
    for (struct unix_msg *m = e->rq->head; m; m = m->next)
      if (m->anc)
        fn(m->anc, arg);
  for (int i = 0; i < e->qlen; i++)
    each_rec(e->queue[i]->priv, fn, arg);
}

static void cand_unref(struct unix_anc *a, void *arg)
{
  for (int i = 0; i < a->nfds; i++) {
    struct qk_file *f = a->fds[i];
    if (f && qk_unix_is(f) && ((struct unix_end *)f->priv)->gc_cand)
      ((struct unix_end *)f->priv)->gc_refs--;
  }
}

static void mark_alive(struct unix_anc *a, void *arg)
{
  for (int i = 0; i < a->nfds; i++) {
    struct qk_file *f = a->fds[i];
    if (f && qk_unix_is(f) && ((struct unix_end *)f->priv)->gc_cand)
      ((struct unix_end *)f->priv)->gc_refs = 1; /* reachable: alive on the next pass */
  }
}

struct strip {
  struct qk_file **files;
  int n, cap;
};

static void strip_rec(struct unix_anc *a, void *arg)
{
  struct strip *s = arg;
  int keep = 0;
  for (int i = 0; i < a->nfds; i++) {
    if (!a->fds[i])
      continue;
    if (s->n < s->cap) {
      s->files[s->n++] = a->fds[i];
    } else {
      a->fds[keep++] = a->fds[i]; /* no room this round: the next run takes it */
    }
  }
  a->nfds = keep;
}

static bool gc_running;

/* One pass; true when it dropped files. */
static bool gc_pass(void)
{
  int ncand = 0;
  for (struct unix_end *e = qk_unix_all; e; e = e->next) {
    e->gc_cand = e->inflight > 0 && e->file && e->file->refs == (uint32_t)e->inflight;
    e->gc_refs = e->file ? (int)e->file->refs : 0;
    ncand += e->gc_cand;
  }
  if (!ncand)
    return false;
  for (struct unix_end *e = qk_unix_all; e; e = e->next)
    if (e->gc_cand)
      each_rec(e, cand_unref, NULL);
  for (bool changed = true; changed;) {
    changed = false;
    for (struct unix_end *e = qk_unix_all; e; e = e->next) {
      if (e->gc_cand && e->gc_refs > 0) {
        e->gc_cand = false;
        changed = true;
        each_rec(e, mark_alive, NULL);
      }
    }
  }
  struct strip s = {NULL, 0, 0};
  for (struct unix_end *e = qk_unix_all; e; e = e->next)
    if (e->gc_cand)
      s.cap += SCM_MAX_FD * 4;
  s.files = qk_kmalloc((size_t)s.cap * sizeof(*s.files));
  for (struct unix_end *e = qk_unix_all; s.files && e; e = e->next) {
    if (e->gc_cand) {
      each_rec(e, strip_rec, &s);
      e->gc_purged = true;
    }
  }
  for (struct unix_end *e = qk_unix_all; e; e = e->next)
    e->gc_cand = false;
  /* Only now drop them: the releases change the lists walked above. */
  for (int i = 0; i < s.n; i++)
    drop_fd(s.files[i]);
  qk_kfree(s.files);
  /* Dropping may have left other cycles (or records that did not fit):
   * look again until a pass finds nothing. */
  return s.n > 0;
}

static void gc(void)
{
  gc_running = true;
  while (gc_pass())
    ;
  gc_running = false;
}

void qk_unix_gc_note(struct qk_file *f)
{
  if (!qk_unix_is(f))
    return;
  struct unix_end *e = f->priv;
  if (!gc_running && e->inflight && f->refs == (uint32_t)e->inflight)
    gc();
}
