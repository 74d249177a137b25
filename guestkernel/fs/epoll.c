/* epoll: epoll_create/create1, epoll_ctl, epoll_wait/pwait/pwait2.
 *
 * An epoll instance is a file holding registrations (file, fd, events,
 * data). A registration belongs to the open file, not to the descriptor:
 * it goes away when the watched file is released (its last descriptor in
 * every process closed, fs/file.c calls qk_epoll_file_gone), or by
 * EPOLL_CTL_DEL; fork shares the instance and so its registrations, as on
 * Linux.
 *
 * Readiness is computed when epoll_wait runs, never pushed: the guest has
 * one global wait queue (qk_poll_wq) that every pipe, unix socket, eventfd,
 * timerfd and signal change wakes, and host sockets are asked in ONE
 * QK_OP_NET_POLL per epoll_wait for all of them (not one QCall each as
 * poll() does). With nothing to report the caller parks on qk_poll_wq after
 * asking the idle loop to watch the missing events of its host sockets
 * (qk_sock_watch), so the host sleeps in one poll for them until an event
 * or the next timer (net/socket.c qk_net_idle_wait); no busy loop.
 *
 * Level-triggered is exact. Edge-triggered (EPOLLET) reports an item when
 * an event bit rises since the last report, or when the file was used
 * through a descriptor since then (io_seq, bumped by every fd lookup: a
 * read/write/recv/send may have consumed the edge, and the next readiness
 * counts as new). Programs that read or write until EAGAIN, as ET requires,
 * see every event; what differs from Linux is that more data arriving on a
 * file that is still readable and untouched since the report is no new
 * edge here. EPOLLONESHOT disables the item after one report until
 * EPOLL_CTL_MOD. EPOLLEXCLUSIVE is accepted with Linux's checks (there is
 * one vCPU running the kernel, so no thundering herd to avoid). Nested
 * epoll instances work (readable when an inner item would report) with
 * Linux's loop and depth checks (ELOOP). */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/net.h>
#include <qk/qcall.h>
#include <qk/task.h>
#include <qk/timer.h>

#define ARGS uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5

#define EPOLLIN 0x001u
#define EPOLLPRI 0x002u
#define EPOLLOUT 0x004u
#define EPOLLERR 0x008u
#define EPOLLHUP 0x010u
#define EPOLLRDNORM 0x040u
#define EPOLLWRNORM 0x100u
#define EPOLLRDHUP 0x2000u
#define EPOLLEXCLUSIVE (1u << 28)
#define EPOLLWAKEUP (1u << 29)
#define EPOLLONESHOT (1u << 30)
#define EPOLLET (1u << 31)
#define EP_FLAGS (EPOLLEXCLUSIVE | EPOLLWAKEUP | EPOLLONESHOT | EPOLLET)
#define EP_EXCL_OK                                                                                 \
  (EPOLLIN | EPOLLOUT | EPOLLRDNORM | EPOLLWRNORM | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET |  \
   EPOLLEXCLUSIVE | EPOLLRDHUP | 0x080u | 0x200u)
#define EP_MAX_NESTS 4

#define EPOLL_CTL_ADD 1
#define EPOLL_CTL_DEL 2
#define EPOLL_CTL_MOD 3

struct l_epoll_event {
  uint32_t events;
  uint64_t data;
} __attribute__((packed));
_Static_assert(sizeof(struct l_epoll_event) == 12, "epoll_event");

struct ep_item {
  struct ep_item *fnext; /* the watched file's registrations */
  struct epoll *ep;
  struct qk_file *file; /* not a reference: the file drops us when released */
  int fd;
  uint32_t events; /* requested, with the EP_FLAGS */
  uint64_t data;
  uint32_t last; /* EPOLLET: bits reported and still there since */
  uint32_t seq;  /* EPOLLET: the file's io_seq at the last report */
  uint32_t cur;  /* readiness seen by the last scan */
  int hfd;       /* host socket handle, -1 for other files */
  bool disabled; /* EPOLLONESHOT fired */
};

struct epoll {
  struct ep_item **items;
  unsigned n, cap;
  unsigned rr; /* where the next scan starts (fairness when maxevents is short) */
  struct qk_file *self;
  uint64_t ino;
};

static uint64_t next_ino = 0x60000;
static int scan_depth;

static const struct qk_file_ops ep_ops;

static bool is_epoll(struct qk_file *f)
{
  return f->ops == &ep_ops;
}

/* ---- readiness ---- */

/* Events of a file that is not a host socket (or that one's host answer). */
static uint32_t norm(int ev)
{
  uint32_t e = (uint32_t)ev & 0xffffu;
  if (e & EPOLLIN)
    e |= EPOLLRDNORM;
  if (e & EPOLLOUT)
    e |= EPOLLWRNORM;
  if (e & EPOLLHUP)
    e |= EPOLLRDHUP;
  return e;
}

static int scan(struct epoll *ep, struct l_epoll_event *out, int max, bool consume,
                uint64_t wait_ns);

static uint32_t file_events(struct qk_file *f)
{
  if (is_epoll(f)) {
    if (scan_depth >= EP_MAX_NESTS + 1)
      return 0;
    scan_depth++;
    int r = scan(f->priv, NULL, 1, false, 0);
    scan_depth--;
    return r > 0 ? EPOLLIN | EPOLLRDNORM : 0;
  }
  if (!f->ops->poll)
    return EPOLLIN | EPOLLOUT | EPOLLRDNORM | EPOLLWRNORM;
  return norm(f->ops->poll(f));
}

/* What item reports given the file's events ev (0: nothing). */
static uint32_t reportable(struct ep_item *it, uint32_t ev)
{
  if (it->disabled)
    return 0;
  uint32_t r = ev & ((it->events & ~EP_FLAGS) | EPOLLERR | EPOLLHUP);
  if (!(it->events & EPOLLET))
    return r;
  it->last &= ev; /* a bit that went away may rise again */
  if (!r || (it->file->io_seq == it->seq && !(r & ~it->last)))
    return 0;
  return r;
}

/* Asks the host, in one call per QK_NET_POLL_MAX sockets, for the events of
 * every host socket item; the answers land in item->cur. wait_ns > 0: the
 * host may wait that long for the first event (one batch only). */
static void host_poll(struct epoll *ep, uint64_t wait_ns)
{
  unsigned hs = 0;
  for (unsigned i = 0; i < ep->n; i++)
    if (ep->items[i]->hfd >= 0 && !ep->items[i]->disabled)
      hs++;
  if (!hs)
    return;
  unsigned chunk = hs < QK_NET_POLL_MAX ? hs : QK_NET_POLL_MAX;
  struct qk_net_pollfd *p = qk_kmalloc(chunk * sizeof(*p));
  struct ep_item **who = qk_kmalloc(chunk * sizeof(*who));
  unsigned k = 0;
  for (unsigned i = 0; i <= ep->n; i++) {
    struct ep_item *it = i < ep->n ? ep->items[i] : NULL;
    if (it && (it->hfd < 0 || it->disabled))
      continue;
    if (it && p && who) {
      p[k] = (struct qk_net_pollfd){(uint32_t)it->hfd,
                                    (int16_t)(EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP), 0};
      who[k++] = it;
    } else if (it) {
      /* Out of memory for the batch: one call for this one. */
      struct qk_net_pollfd one = {(uint32_t)it->hfd,
                                  (int16_t)(EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP), 0};
      int64_t r = qk_qcall(QK_OP_NET_POLL, qk_va_to_pa(&one), 1, 0, 0, 0, 0);
      it->cur = r < 0 ? EPOLLERR : norm((uint16_t)one.revents | qk_sock_guest_events(it->file));
      continue;
    }
    if (k && (k == chunk || !it)) {
      int64_t r = qk_qcall(QK_OP_NET_POLL, qk_va_to_pa(p), k, hs <= chunk ? wait_ns : 0, 0, 0, 0);
      for (unsigned j = 0; j < k; j++)
        who[j]->cur =
            r < 0 ? EPOLLERR : norm((uint16_t)p[j].revents | qk_sock_guest_events(who[j]->file));
      k = 0;
    }
  }
  qk_kfree(p);
  qk_kfree(who);
}

/* Looks at every item once, starting at ep->rr. consume: writes up to max
 * events to out and applies EPOLLONESHOT and EPOLLET; otherwise returns 1 at
 * the first item that would report (poll on the epoll file). wait_ns: when
 * no other file is ready, the host may wait that long for a socket event
 * (the caller knows that nothing else could run meanwhile). */
static int scan(struct epoll *ep, struct l_epoll_event *out, int max, bool consume,
                uint64_t wait_ns)
{
  if (wait_ns) {
    for (unsigned i = 0; i < ep->n && wait_ns; i++) {
      struct ep_item *it = ep->items[i];
      if (it->disabled || it->hfd >= 0)
        continue;
      uint32_t last = it->last;
      it->cur = file_events(it->file);
      if (reportable(it, it->cur))
        wait_ns = 0;
      it->last = last;
    }
  }
  host_poll(ep, wait_ns);
  int got = 0;
  unsigned n = ep->n;
  for (unsigned j = 0; j < n && got < max; j++) {
    unsigned i = (ep->rr + j) % n;
    struct ep_item *it = ep->items[i];
    if (it->disabled)
      continue;
    if (it->hfd < 0)
      it->cur = file_events(it->file);
    uint32_t last = it->last;
    uint32_t r = reportable(it, it->cur);
    if (!r)
      continue;
    if (!consume) {
      it->last = last;
      return 1;
    }
    out[got].events = r;
    out[got].data = it->data;
    got++;
    it->last = it->cur;
    it->seq = it->file->io_seq;
    if (it->events & EPOLLONESHOT)
      it->disabled = true;
    if (got == max)
      ep->rr = (i + 1) % n;
  }
  return got;
}

/* Nothing to report: ask the idle loop to watch what the host sockets lack
 * (nested instances too). Non-socket files wake qk_poll_wq themselves. */
static void watch(struct epoll *ep, int depth)
{
  for (unsigned i = 0; i < ep->n; i++) {
    struct ep_item *it = ep->items[i];
    if (it->disabled)
      continue;
    if (it->hfd >= 0) {
      uint32_t want = it->events & (EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP);
      qk_sock_watch(it->file, (int16_t)(want & ~it->cur));
    } else if (is_epoll(it->file) && depth < EP_MAX_NESTS) {
      watch(it->file->priv, depth + 1);
    }
  }
}

/* ---- registrations ---- */

static void unlink_from_file(struct ep_item *it)
{
  for (struct ep_item **pp = (struct ep_item **)&it->file->ep_items; *pp; pp = &(*pp)->fnext) {
    if (*pp == it) {
      *pp = it->fnext;
      return;
    }
  }
}

static void remove_item(struct epoll *ep, unsigned i)
{
  ep->items[i] = ep->items[--ep->n];
  if (ep->rr >= ep->n)
    ep->rr = 0;
}

static void file_gone(struct qk_file *f)
{
  struct ep_item *it = f->ep_items;
  f->ep_items = NULL;
  while (it) {
    struct ep_item *next = it->fnext;
    struct epoll *ep = it->ep;
    for (unsigned i = 0; i < ep->n; i++) {
      if (ep->items[i] == it) {
        remove_item(ep, i);
        break;
      }
    }
    qk_kfree(it);
    it = next;
  }
}

static struct ep_item *find(struct epoll *ep, struct qk_file *f, int fd, unsigned *idx)
{
  for (unsigned i = 0; i < ep->n; i++) {
    if (ep->items[i]->file == f && ep->items[i]->fd == fd) {
      if (idx)
        *idx = i;
      return ep->items[i];
    }
  }
  return NULL;
}

/* Would watching inner from outer close a loop or nest too deep? Depth of
 * the inner chain below inner, or -1 for a loop. */
static int nest_depth(struct epoll *inner, struct epoll *outer, int level)
{
  if (inner == outer)
    return -1;
  if (level > EP_MAX_NESTS)
    return level;
  int deepest = level;
  for (unsigned i = 0; i < inner->n; i++) {
    struct qk_file *f = inner->items[i]->file;
    if (!is_epoll(f))
      continue;
    int d = nest_depth(f->priv, outer, level + 1);
    if (d < 0)
      return -1;
    if (d > deepest)
      deepest = d;
  }
  return deepest;
}

/* How many instances sit above f (watch it, directly or not). */
static int parents_depth(struct qk_file *f, int level)
{
  int deepest = level;
  if (level > EP_MAX_NESTS)
    return level;
  for (struct ep_item *it = f->ep_items; it; it = it->fnext) {
    int d = parents_depth(it->ep->self, level + 1);
    if (d > deepest)
      deepest = d;
  }
  return deepest;
}

/* ---- the epoll file ---- */

static int64_t ep_rw(struct qk_file *f, const struct qk_uio *u, int64_t off, bool write)
{
  return -QK_EINVAL;
}

static int64_t ep_lseek(struct qk_file *f, int64_t off, int whence)
{
  return -QK_ESPIPE;
}

static int ep_fstat(struct qk_file *f, uint64_t gpa)
{
  struct epoll *ep = f->priv;
  struct l_stat *st = qk_pa_to_va(gpa);
  memset(st, 0, sizeof(*st));
  st->st_dev = 13;
  st->st_ino = ep->ino;
  st->st_nlink = 1;
  st->st_mode = 0600;
  st->st_blksize = 4096;
  return 0;
}

static int64_t ep_getdents(struct qk_file *f, uint64_t uva, uint64_t len)
{
  return -QK_ENOTDIR;
}

static int64_t ep_ioctl(struct qk_file *f, uint64_t cmd, uint64_t arg)
{
  return -QK_ENOTTY;
}

static int ep_poll(struct qk_file *f)
{
  return (int)file_events(f);
}

static int ep_mmap_hfd(struct qk_file *f)
{
  return -QK_ENODEV;
}

static void ep_release(struct qk_file *f)
{
  struct epoll *ep = f->priv;
  for (unsigned i = 0; i < ep->n; i++) {
    unlink_from_file(ep->items[i]);
    qk_kfree(ep->items[i]);
  }
  qk_kfree(ep->items);
  qk_kfree(ep);
}

static const struct qk_file_ops ep_ops = {
    .rw = ep_rw,
    .lseek = ep_lseek,
    .fstat = ep_fstat,
    .getdents = ep_getdents,
    .ioctl = ep_ioctl,
    .poll = ep_poll,
    .mmap_hfd = ep_mmap_hfd,
    .release = ep_release,
};

static int64_t do_create(uint64_t flags)
{
  if (flags & ~(uint64_t)L_O_CLOEXEC)
    return -QK_EINVAL;
  struct epoll *ep = qk_kzalloc(sizeof(*ep));
  if (!ep)
    return -QK_ENOMEM;
  struct qk_file *f = qk_file_new(&ep_ops, L_O_RDWR, NULL);
  if (!f) {
    qk_kfree(ep);
    return -QK_ENOMEM;
  }
  ep->ino = next_ino++;
  ep->self = f;
  qk_epoll_file_gone = file_gone;
  f->priv = ep;
  int fd = qk_fd_install(qk_current()->proc->files, f, 0, flags & L_O_CLOEXEC);
  if (fd < 0)
    qk_fput(f);
  return fd;
}

int64_t sys_epoll_create(ARGS)
{
  if ((int)a0 <= 0)
    return -QK_EINVAL;
  return do_create(0);
}

int64_t sys_epoll_create1(ARGS)
{
  return do_create(a0);
}

static struct qk_file *ep_get(uint64_t fd, int64_t *err)
{
  struct qk_file *f = qk_fget_in(qk_current()->proc->files, (int)fd);
  if (!f) {
    *err = -QK_EBADF;
    return NULL;
  }
  if (!is_epoll(f)) {
    qk_fput(f);
    *err = -QK_EINVAL;
    return NULL;
  }
  return f;
}

static int64_t ctl(struct qk_file *epf, int op, int fd, struct qk_file *f, uint64_t uev)
{
  struct epoll *ep = epf->priv;
  struct l_epoll_event ev = {0, 0};
  if (op != EPOLL_CTL_DEL && qk_copy_from_user(&ev, uev, sizeof(ev)))
    return -QK_EFAULT;
  if (f == epf)
    return -QK_EINVAL;
  /* Files without readiness (regular files, directories, most devices) are
   * refused as on Linux; the host stdio handles are streams and accepted. */
  if (!f->ops->poll && f->path && strncmp(f->path, "/dev/std", 8) != 0)
    return -QK_EPERM;
  if (op != EPOLL_CTL_DEL && (ev.events & EPOLLEXCLUSIVE)) {
    if (op == EPOLL_CTL_MOD || is_epoll(f) || (ev.events & ~EP_EXCL_OK))
      return -QK_EINVAL;
  }
  unsigned idx = 0;
  struct ep_item *it = find(ep, f, fd, &idx);
  switch (op) {
  case EPOLL_CTL_ADD: {
    if (it)
      return -QK_EEXIST;
    if (is_epoll(f)) {
      int below = nest_depth(f->priv, ep, 1);
      if (below < 0 || below + parents_depth(epf, 0) > EP_MAX_NESTS)
        return -QK_ELOOP;
    }
    if (ep->n == ep->cap) {
      unsigned cap = ep->cap ? ep->cap * 2 : 8;
      struct ep_item **arr = qk_kmalloc(cap * sizeof(*arr));
      if (!arr)
        return -QK_ENOMEM;
      if (ep->n)
        memcpy(arr, ep->items, ep->n * sizeof(*arr));
      qk_kfree(ep->items);
      ep->items = arr;
      ep->cap = cap;
    }
    it = qk_kzalloc(sizeof(*it));
    if (!it)
      return -QK_ENOMEM;
    it->ep = ep;
    it->file = f;
    it->fd = fd;
    it->events = ev.events;
    it->data = ev.data;
    it->hfd = qk_sock_host_hfd(f);
    it->seq = f->io_seq - 1;
    it->fnext = f->ep_items;
    f->ep_items = it;
    ep->items[ep->n++] = it;
    break;
  }
  case EPOLL_CTL_MOD:
    if (!it)
      return -QK_ENOENT;
    if (it->events & EPOLLEXCLUSIVE)
      return -QK_EINVAL;
    it->events = ev.events;
    it->data = ev.data;
    it->disabled = false;
    it->last = 0;
    it->seq = f->io_seq - 1;
    break;
  case EPOLL_CTL_DEL:
    if (!it)
      return -QK_ENOENT;
    unlink_from_file(it);
    remove_item(ep, idx);
    qk_kfree(it);
    break;
  default:
    return -QK_EINVAL;
  }
  qk_wake(&qk_poll_wq); /* waiters re-scan with the new set */
  return 0;
}

int64_t sys_epoll_ctl(ARGS)
{
  int64_t err = 0;
  struct qk_file *epf = ep_get(a0, &err);
  if (!epf)
    return err;
  struct qk_file *f = qk_fget_in(qk_current()->proc->files, (int)a2);
  if (!f) {
    qk_fput(epf);
    return -QK_EBADF;
  }
  err = ctl(epf, (int)a1, (int)a2, f, a3);
  qk_fput(f);
  qk_fput(epf);
  return err;
}

/* ---- waiting ---- */

/* How long the host may wait inside this scan for a socket event: while no
 * other task could run, a short host wait saves the park, the idle loop's
 * poll and the rescan (3 QCalls and a restart) when the event comes soon,
 * as QK_NET_WAIT does for a blocking recv. Bounded by the caller's timeout
 * and the next kernel timer; other waiters (tasks parked on sockets, pod
 * commands) wait at most QK_NET_WAIT_NS longer. */
static uint64_t spin_ns(uint64_t timeout_ns)
{
  struct qk_task *cur = qk_current();
  if (!timeout_ns || qk_restarting() || qk_signal_pending(cur))
    return 0;
  for (struct qk_task *t = qk_all_tasks; t; t = t->next_all)
    if (t != cur && t->state == QK_TASK_RUNNING)
      return 0;
  uint64_t w = QK_NET_WAIT_NS, now = qk_time_monotonic_ns(), next = qk_timer_next();
  if (timeout_ns < w)
    w = timeout_ns;
  if (next != ~0ull)
    w = next <= now ? 0 : (next - now < w ? next - now : w);
  return w;
}

static int64_t do_wait(uint64_t epfd, uint64_t uevents, int64_t max, uint64_t timeout_ns)
{
  if (max <= 0 || max > 0x7fffffff / (int64_t)sizeof(struct l_epoll_event))
    return -QK_EINVAL;
  int64_t err = 0;
  struct qk_file *epf = ep_get(epfd, &err);
  if (!epf)
    return err;
  struct epoll *ep = epf->priv;
  int64_t room = max < (int64_t)ep->n ? max : (int64_t)ep->n;
  struct l_epoll_event *buf = room ? qk_kmalloc((size_t)room * sizeof(*buf)) : NULL;
  int64_t got = 0;
  if (room && !buf) {
    got = -QK_ENOMEM;
    goto out;
  }
  uint64_t deadline = timeout_ns ? qk_wait_deadline(timeout_ns) : 0;
  got = room ? scan(ep, buf, (int)room, true, spin_ns(timeout_ns)) : 0;
  if (got > 0) {
    if (qk_copy_to_user(uevents, buf, (size_t)got * sizeof(*buf)))
      got = -QK_EFAULT;
    goto out;
  }
  /* Past the deadline on a rerun, a signal that is pending still ends the
   * wait with EINTR (qk_block sees it) rather than the timeout: the task
   * may run long after the kill woke it (the other vCPU held the kernel
   * lock for seconds in emulated ring 0), and the time of its rerun must
   * not decide which came first. Ready events still come before both. */
  if (!timeout_ns || (qk_wait_expired() && !qk_signal_pending(qk_current())))
    goto out;
  watch(ep, 0);
  got = qk_block(&qk_poll_wq, deadline);
out:
  qk_kfree(buf);
  qk_fput(epf);
  return got;
}

/* epoll_pwait/pwait2: the caller's mask for the wait, as ppoll does. */
static int64_t set_mask(uint64_t umask, uint64_t size)
{
  if (umask && size != 8)
    return -QK_EINVAL;
  return qk_signal_wait_mask(umask);
}

static uint64_t ms_ns(int64_t ms)
{
  return (int)ms < 0 ? ~0ull : (uint64_t)(int)ms * 1000000ull;
}

int64_t sys_epoll_wait(ARGS)
{
  int64_t r = do_wait(a0, a1, (int)a2, ms_ns((int64_t)a3));
  return r == -QK_ERESTARTSYS ? -QK_EINTR : r;
}

int64_t sys_epoll_pwait(ARGS)
{
  int64_t r = set_mask(a4, a5);
  if (r)
    return r;
  return qk_signal_wait_mask_end(a4, do_wait(a0, a1, (int)a2, ms_ns((int64_t)a3)));
}

int64_t sys_epoll_pwait2(ARGS)
{
  uint64_t ns = ~0ull;
  if (a3) {
    struct l_timespec ts;
    if (qk_copy_from_user(&ts, a3, sizeof(ts)))
      return -QK_EFAULT;
    if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000)
      return -QK_EINVAL;
    ns = (uint64_t)ts.tv_sec > 100ull * 365 * 86400
             ? ~0ull - 1
             : (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
  }
  int64_t r = set_mask(a4, a5);
  if (r)
    return r;
  return qk_signal_wait_mask_end(a4, do_wait(a0, a1, (int)a2, ns));
}
