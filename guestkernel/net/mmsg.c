/* sendmmsg and recvmmsg: one sendmsg/recvmsg (socket.c) per message. */
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/syscall.h>
#include <qk/task.h>

#include "net_internal.h"

#define MSG_DONTWAIT 0x40

/* struct mmsghdr: a msghdr and the byte count of that message. */
#define MMSG_SIZE 64

int64_t sys_sendmmsg(uint64_t fd, uint64_t uvec, uint64_t vlen, uint64_t flags, uint64_t a4,
                     uint64_t a5)
{
  if (vlen > 1024)
    vlen = 1024;
  uint64_t i;
  for (i = 0; i < vlen; i++) {
    /* Only the first message may park: the rest go without waiting. */
    int64_t r = qk_net_sendmsg(fd, uvec + i * MMSG_SIZE, flags | (i ? MSG_DONTWAIT : 0));
    if (r < 0)
      return i ? (int64_t)i : r;
    uint32_t n = (uint32_t)r;
    if (qk_copy_to_user(uvec + i * MMSG_SIZE + 56, &n, 4))
      return i ? (int64_t)i : -QK_EFAULT;
  }
  return (int64_t)i;
}

/* A blocking recvmmsg that parks after some messages arrived records them
 * here, so that its restart fills in the rest instead of starting over at
 * the first message (which would overwrite what it already returned). One
 * record per parked task; with all in use the call returns what it has. */
struct mmsg_park {
  struct qk_task *task;
  int tid;
  uint64_t fd, uvec, done, deadline;
};
static struct mmsg_park mmsg_parked[16];

static struct mmsg_park *mmsg_find(struct qk_task *t)
{
  for (unsigned i = 0; i < sizeof(mmsg_parked) / sizeof(mmsg_parked[0]); i++)
    if (mmsg_parked[i].task == t && mmsg_parked[i].tid == t->tid)
      return &mmsg_parked[i];
  return NULL;
}

/* A free record: unused, or left by a task that is gone (killed while
 * parked). */
static struct mmsg_park *mmsg_free(void)
{
  for (unsigned i = 0; i < sizeof(mmsg_parked) / sizeof(mmsg_parked[0]); i++) {
    struct mmsg_park *p = &mmsg_parked[i];
    bool live = false;
    for (struct qk_task *t = qk_all_tasks; t && p->task && !live; t = t->next_all)
      live = t == p->task && t->tid == p->tid && t->state != QK_TASK_DEAD;
    if (!live)
      return p;
  }
  return NULL;
}

#define MSG_WAITFORONE 0x10000

int64_t sys_recvmmsg(uint64_t fd, uint64_t uvec, uint64_t vlen, uint64_t flags, uint64_t uts,
                     uint64_t a5)
{
  if (vlen > 1024)
    vlen = 1024;
  struct qk_task *t = qk_current();
  uint64_t i = 0, deadline = ~0ull;
  struct mmsg_park *pk = mmsg_find(t);
  if (pk && qk_restarting() && pk->fd == fd && pk->uvec == uvec && pk->done < vlen) {
    i = pk->done;
    deadline = pk->deadline;
  } else if (uts) {
    struct l_timespec ts;
    if (qk_copy_from_user(&ts, uts, sizeof(ts)))
      return -QK_EFAULT;
    if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000)
      return -QK_EINVAL;
    uint64_t rel = (uint64_t)ts.tv_sec > 100ull * 365 * 86400
                       ? ~0ull
                       : (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    uint64_t now = qk_time_monotonic_ns();
    deadline = rel == ~0ull || rel > ~0ull - now - 1 ? ~0ull : now + rel;
  }
  if (pk)
    pk->task = NULL;
  for (; i < vlen; i++) {
    uint64_t fl = flags & ~(uint64_t)MSG_WAITFORONE;
    /* After the first message: what is there now, and a wait only for a
     * blocking call without MSG_WAITFORONE (Linux blocks for all vlen). */
    bool may_park = i && !(flags & (MSG_WAITFORONE | MSG_DONTWAIT));
    int64_t r = qk_net_recvmsg(fd, uvec + i * MMSG_SIZE, fl | (i ? MSG_DONTWAIT : 0));
    if (r == -QK_EAGAIN && may_park) {
      pk = mmsg_free();
      if (!pk)
        return (int64_t)i;
      r = qk_net_recvmsg(fd, uvec + i * MMSG_SIZE, fl);
      if (r == -QK_ERESTART_WAIT) {
        *pk = (struct mmsg_park){t, t->tid, fd, uvec, i, deadline};
        return r;
      }
    }
    if (r < 0)
      return i ? (int64_t)i : r;
    uint32_t n = (uint32_t)r;
    if (qk_copy_to_user(uvec + i * MMSG_SIZE + 56, &n, 4))
      return i ? (int64_t)i : -QK_EFAULT;
    /* As Linux: the timeout is looked at after each message, and the time
     * left is written back. */
    if (uts && deadline != ~0ull) {
      uint64_t now = qk_time_monotonic_ns();
      uint64_t left = now >= deadline ? 0 : deadline - now;
      struct l_timespec ts = {(int64_t)(left / 1000000000ull), (int64_t)(left % 1000000000ull)};
      if (qk_copy_to_user(uts, &ts, sizeof(ts)))
        return (int64_t)(i + 1);
      if (!left)
        return (int64_t)(i + 1);
    }
  }
  return (int64_t)i;
}

