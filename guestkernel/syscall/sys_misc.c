/* Process identity, time, limits, randomness, thread-library hooks and
 * exit. */
#include <qk/arch.h>
#include <qk/cputime.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/sec.h>
#include <qk/smp.h>
#include <qk/syscall.h>
#include <qk/task.h>

#define ARGS uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5

static inline struct qk_task *cur(void) { return qk_current(); }
static inline struct qk_process *proc(void) { return qk_current()->proc; }

/* ---- identity ---- */

int64_t sys_getpid(ARGS) { return proc()->pid; }
int64_t sys_gettid(ARGS) { return cur()->tid; }
/* getuid, getgroups, getres*id & co.: task/cred.c (table_sec.h). */

/* ---- time ---- */

static int clock_ns(int64_t id, uint64_t *ns)
{
  switch (id) {
  case L_CLOCK_REALTIME:
  case L_CLOCK_REALTIME_COARSE:
  case L_CLOCK_REALTIME_ALARM:
  case L_CLOCK_TAI:
    *ns = qk_time_realtime_ns();
    return 0;
  case L_CLOCK_MONOTONIC:
  case L_CLOCK_MONOTONIC_RAW:
  case L_CLOCK_MONOTONIC_COARSE:
  case L_CLOCK_BOOTTIME:
  case L_CLOCK_BOOTTIME_ALARM:
    *ns = qk_time_monotonic_ns();
    return 0;
  default: {
    /* CPU-time clocks (task/cputime.c), their clock_getcpuclockid ids too. */
    struct qk_cpuclock c;
    if (qk_cpuclock_resolve((int)id, &c))
      return -QK_EINVAL;
    *ns = qk_cpuclock_ns(&c);
    return 0;
  }
  }
}

int64_t sys_clock_gettime(ARGS)
{
  uint64_t ns;
  int r = clock_ns((int64_t)(int)a0, &ns);
  if (r)
    return r;
  struct l_timespec ts = { (int64_t)(ns / 1000000000ull), (int64_t)(ns % 1000000000ull) };
  return qk_copy_to_user(a1, &ts, sizeof(ts)) ? -QK_EFAULT : 0;
}

int64_t sys_clock_getres(ARGS)
{
  uint64_t ns;
  int r = clock_ns((int64_t)(int)a0, &ns);
  if (r)
    return r;
  if (!a1)
    return 0;
  int c = (int)a0;
  struct l_timespec ts = { 0, (c == L_CLOCK_REALTIME_COARSE || c == L_CLOCK_MONOTONIC_COARSE) ? 4000000 : 1 };
  return qk_copy_to_user(a1, &ts, sizeof(ts)) ? -QK_EFAULT : 0;
}

int64_t sys_gettimeofday(ARGS)
{
  if (a0) {
    uint64_t ns = qk_time_realtime_ns();
    struct l_timeval tv = { (int64_t)(ns / 1000000000ull), (int64_t)(ns % 1000000000ull / 1000) };
    if (qk_copy_to_user(a0, &tv, sizeof(tv)))
      return -QK_EFAULT;
  }
  if (a1) {
    int32_t tz[2] = { 0, 0 };
    if (qk_copy_to_user(a1, tz, sizeof(tz)))
      return -QK_EFAULT;
  }
  return 0;
}

int64_t sys_time(ARGS)
{
  int64_t t = (int64_t)(qk_time_realtime_ns() / 1000000000ull);
  if (a0 && qk_copy_to_user(a0, &t, sizeof(t)))
    return -QK_EFAULT;
  return t;
}

static int read_timespec(uint64_t uts, uint64_t *ns)
{
  struct l_timespec ts;
  if (qk_copy_from_user(&ts, uts, sizeof(ts)))
    return -QK_EFAULT;
  if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000)
    return -QK_EINVAL;
  uint64_t s = (uint64_t)ts.tv_sec;
  *ns = s > 100ull * 365 * 86400 ? ~0ull : s * 1000000000ull + (uint64_t)ts.tv_nsec;
  return 0;
}

/* Parks the task (other tasks run meanwhile) until ns passed. */
static int64_t sleep_for(uint64_t ns)
{
  if (qk_wait_expired() || !ns)
    return 0;
  int64_t r = qk_block(&qk_poll_wq + 1, qk_wait_deadline(ns));
  return r == -QK_ERESTARTSYS ? -QK_EINTR : r;
}

int64_t sys_nanosleep(ARGS)
{
  uint64_t ns;
  int r = read_timespec(a0, &ns);
  if (r)
    return r;
  return sleep_for(ns);
}

int64_t sys_clock_nanosleep(ARGS)
{
  uint64_t ns, now;
  int r = clock_ns((int64_t)(int)a0, &now);
  if (r)
    return r;
  if ((int)a0 == L_CLOCK_THREAD_CPUTIME_ID)
    return -QK_EINVAL;
  r = read_timespec(a2, &ns);
  if (r)
    return r;
  if (a1 & 1) /* TIMER_ABSTIME */
    ns = ns > now ? ns - now : 0;
  return sleep_for(ns);
}

int64_t sys_sched_yield(ARGS)
{
  qk_sched_yield();
  return 0;
}

/* Affinity of a thread of the caller's pid namespace (0: the caller);
 * the masks are honoured by the scheduler (task/sched.c). */
static struct qk_task *affinity_task(uint64_t pid)
{
  return (int)pid == 0 ? qk_current() : qk_task_find((int)pid);
}

int64_t sys_sched_getaffinity(ARGS)
{
  struct qk_task *t = affinity_task(a0);
  if (!t)
    return -QK_ESRCH;
  if (a1 < 8 || (a1 & 7))
    return -QK_EINVAL;
  uint64_t mask = qk_sched_getaffinity(t);
  return qk_copy_to_user(a2, &mask, 8) ? -QK_EFAULT : 8;
}

int64_t sys_sched_setaffinity(ARGS)
{
  struct qk_task *t = affinity_task(a0);
  if (!t)
    return -QK_ESRCH;
  uint64_t mask;
  if (a1 < 8 || qk_copy_from_user(&mask, a2, 8))
    return a1 < 8 ? -QK_EINVAL : -QK_EFAULT;
  return qk_sched_setaffinity(t, mask);
}

int64_t sys_getcpu(ARGS)
{
  unsigned cpu = qk_arch_cpu_id(), node = 0;
  if (a0 && qk_copy_to_user(a0, &cpu, 4))
    return -QK_EFAULT;
  if (a1 && qk_copy_to_user(a1, &node, 4))
    return -QK_EFAULT;
  return 0;
}

/* Scheduling policy and priority: one runnable task, SCHED_OTHER, nice 0. */
static bool self_or_zero(uint64_t who) { return (int)who == 0 || (int)who == qk_current()->proc->pid; }

int64_t sys_getpriority(ARGS)
{
  if (a0 > 2) /* PRIO_PROCESS, PRIO_PGRP, PRIO_USER */
    return -QK_EINVAL;
  return self_or_zero(a1) || a0 == 2 ? 20 : -QK_ESRCH; /* 20 - nice */
}

int64_t sys_setpriority(ARGS)
{
  if (a0 > 2)
    return -QK_EINVAL;
  return self_or_zero(a1) || a0 == 2 ? 0 : -QK_ESRCH; /* accepted; nothing to rank */
}

int64_t sys_sched_getscheduler(ARGS) { return self_or_zero(a0) ? 0 /* SCHED_OTHER */ : -QK_ESRCH; }

int64_t sys_sched_getparam(ARGS)
{
  if (!self_or_zero(a0))
    return -QK_ESRCH;
  int32_t prio = 0;
  return qk_copy_to_user(a1, &prio, 4) ? -QK_EFAULT : 0;
}

int64_t sys_sched_get_priority_max(ARGS)
{
  if (a0 == 1 || a0 == 2) /* SCHED_FIFO, SCHED_RR */
    return 99;
  return a0 == 0 || a0 == 3 || a0 == 5 || a0 == 6 ? 0 : -QK_EINVAL;
}

int64_t sys_sched_get_priority_min(ARGS)
{
  if (a0 == 1 || a0 == 2)
    return 1;
  return a0 == 0 || a0 == 3 || a0 == 5 || a0 == 6 ? 0 : -QK_EINVAL;
}

/* times, getrusage: task/cputime.c. */

int64_t sys_personality(ARGS)
{
  /* PER_LINUX only: the query (0xffffffff) and setting PER_LINUX succeed. */
  if ((uint32_t)a0 == 0xffffffffu || (uint32_t)a0 == 0)
    return 0;
  return -QK_EINVAL;
}

/* ---- system ---- */

static void put_str(char *dst, const char *src) { qk_strlcpy(dst, src, 65); }

int64_t sys_uname(ARGS)
{
  struct l_utsname u;
  memset(&u, 0, sizeof(u));
  put_str(u.sysname, "Linux");
  char host[65];
  memcpy(host, qk_boot->hostname, sizeof(qk_boot->hostname));
  host[sizeof(qk_boot->hostname)] = 0;
  put_str(u.nodename, host[0] ? host : "quark");
  put_str(u.release, "6.1.0-quark");
  put_str(u.version, "#1 SMP Quark");
  put_str(u.machine, "x86_64");
  put_str(u.domainname, "(none)");
  return qk_copy_to_user(a0, &u, sizeof(u)) ? -QK_EFAULT : 0;
}

int64_t sys_sysinfo(ARGS)
{
  struct l_sysinfo si;
  memset(&si, 0, sizeof(si));
  si.uptime = (int64_t)((qk_time_monotonic_ns() - qk_boot->boot_monotonic_ns) / 1000000000ull);
  si.totalram = qk_boot->mem_size;
  si.freeram = qk_page_free_count() * QK_PAGE_SIZE;
  si.procs = 1;
  si.mem_unit = 1;
  return qk_copy_to_user(a0, &si, sizeof(si)) ? -QK_EFAULT : 0;
}

static int64_t do_prlimit(uint64_t res, uint64_t unew, uint64_t uold)
{
  if (res >= L_RLIM_NLIMITS)
    return -QK_EINVAL;
  struct l_rlimit *r = &proc()->rlim[res];
  struct l_rlimit nv;
  if (unew) {
    if (qk_copy_from_user(&nv, unew, sizeof(nv)))
      return -QK_EFAULT;
    if (nv.cur > nv.max)
      return -QK_EINVAL;
    if (nv.max > r->max && proc()->euid != 0)
      return -QK_EPERM;
    if (res == L_RLIMIT_NOFILE && nv.max > QK_FD_MAX)
      return -QK_EPERM;
  }
  if (uold && qk_copy_to_user(uold, r, sizeof(*r)))
    return -QK_EFAULT;
  if (unew) {
    *r = nv;
    if (res == L_RLIMIT_NOFILE)
      proc()->files->limit = (int)(nv.cur > QK_FD_MAX ? QK_FD_MAX : nv.cur);
  }
  return 0;
}

int64_t sys_prlimit64(ARGS)
{
  if ((int)a0 != 0 && (int)a0 != proc()->pid)
    return -QK_ESRCH;
  return do_prlimit(a1, a2, a3);
}

int64_t sys_getrlimit(ARGS) { return do_prlimit(a0, 0, a1); }
int64_t sys_setrlimit(ARGS) { return do_prlimit(a0, a1, 0); }

int64_t sys_getrandom(ARGS)
{
  if (a2 & ~(uint64_t)(L_GRND_NONBLOCK | L_GRND_RANDOM | L_GRND_INSECURE))
    return -QK_EINVAL;
  if ((a2 & L_GRND_RANDOM) && (a2 & L_GRND_INSECURE))
    return -QK_EINVAL;
  uint64_t len = a1 > (32ull << 20) ? (32ull << 20) : a1;
  uint64_t done = 0;
  while (done < len) {
    uint64_t pa;
    if (qk_user_pa(a0 + done, true, &pa))
      return done ? (int64_t)done : -QK_EFAULT;
    uint64_t chunk = QK_PAGE_SIZE - ((a0 + done) & 4095);
    if (chunk > len - done)
      chunk = len - done;
    int64_t r = qk_qcall(QK_OP_GETRANDOM, pa, chunk, 0, 0, 0, 0);
    if (r < 0)
      return done ? (int64_t)done : r;
    done += chunk;
  }
  return (int64_t)done;
}

/* ---- thread library hooks ---- */

int64_t sys_arch_prctl(ARGS)
{
  switch ((int)a0) {
  case L_ARCH_SET_FS:
    if (a1 >= QK_USER_TOP)
      return -QK_EPERM; /* a non-canonical base would fault in ring 0 */
    cur()->fs_base = a1;
    qk_arch_set_fs_base(a1);
    return 0;
  case L_ARCH_GET_FS:
    return qk_copy_to_user(a1, &cur()->fs_base, 8) ? -QK_EFAULT : 0;
  case L_ARCH_SET_GS:
  case L_ARCH_GET_GS:
    return -QK_EINVAL; /* GS belongs to the kernel's per-vCPU block */
  default:
    return -QK_EINVAL;
  }
}

int64_t sys_set_tid_address(ARGS)
{
  cur()->clear_child_tid = a0;
  return cur()->tid;
}

int64_t sys_set_robust_list(ARGS)
{
  if (a1 != 24) /* sizeof(struct robust_list_head) */
    return -QK_EINVAL;
  cur()->robust_list = a0;
  cur()->robust_len = a1;
  return 0;
}

int64_t sys_get_robust_list(ARGS)
{
  if ((int)a0 != 0 && (int)a0 != cur()->tid)
    return -QK_ESRCH;
  if (qk_copy_to_user(a1, &cur()->robust_list, 8) || qk_copy_to_user(a2, &cur()->robust_len, 8))
    return -QK_EFAULT;
  return 0;
}

/* Futex keys are the guest-physical address of the word: the same for
 * private and shared futexes (memory is never moved or swapped). Waiters
 * park on the key; a woken waiter's restarted FUTEX_WAIT returns 0 without
 * comparing again (qk_wait_woken). */
static int futex_key(uint64_t uaddr, const void **key)
{
  uint64_t pa;
  if (uaddr & 3)
    return -QK_EINVAL;
  if (qk_user_pa(uaddr, false, &pa))
    return -QK_EFAULT;
  *key = (const void *)pa;
  return 0;
}

int64_t sys_futex(ARGS)
{
  int op = (int)a1 & ~(L_FUTEX_PRIVATE_FLAG | L_FUTEX_CLOCK_REALTIME);
  const void *key;
  int r = futex_key(a0, &key);
  if (r)
    return r;
  switch (op) {
  case L_FUTEX_WAIT:
  case L_FUTEX_WAIT_BITSET: {
    if (op == L_FUTEX_WAIT_BITSET && !(uint32_t)a5)
      return -QK_EINVAL;
    if (qk_wait_woken())
      return 0;
    if (qk_wait_expired())
      return -QK_ETIMEDOUT;
    uint64_t deadline = ~0ull;
    if (!qk_restarting()) {
      uint32_t v;
      if (qk_copy_from_user(&v, a0, 4))
        return -QK_EFAULT;
      if (v != (uint32_t)a2)
        return -QK_EAGAIN;
      if (a3) {
        uint64_t ns;
        r = read_timespec(a3, &ns);
        if (r)
          return r;
        if (op == L_FUTEX_WAIT_BITSET) { /* absolute */
          uint64_t now = ((int)a1 & L_FUTEX_CLOCK_REALTIME) ? qk_time_realtime_ns()
                                                            : qk_time_monotonic_ns();
          ns = ns > now ? ns - now : 0;
        }
        deadline = qk_wait_deadline(ns);
      }
    } else {
      deadline = qk_wait_deadline(0);
    }
    int64_t b = qk_block(key, deadline);
    return b == -QK_ERESTARTSYS ? -QK_EINTR : b;
  }
  case L_FUTEX_WAKE:
  case L_FUTEX_WAKE_BITSET:
    return qk_wake_n(key, (int)a2 < 0 ? 0 : (int)a2);
  case 3: /* FUTEX_REQUEUE */
  case 4: { /* FUTEX_CMP_REQUEUE */
    if (op == 4) {
      uint32_t v;
      if (qk_copy_from_user(&v, a0, 4))
        return -QK_EFAULT;
      if (v != (uint32_t)a5)
        return -QK_EAGAIN;
    }
    const void *key2;
    r = futex_key(a4, &key2);
    if (r)
      return r;
    int woke = qk_wake_n(key, (int)a2 < 0 ? 0 : (int)a2);
    int moved = 0;
    for (struct qk_task *t = qk_all_tasks; t && moved < (int)a3; t = t->next_all)
      if (t->state == QK_TASK_BLOCKED && t->wchan == key) {
        t->wchan = key2;
        moved++;
      }
    return woke + moved;
  }
  default:
    return -QK_ENOSYS;
  }
}

int64_t sys_prctl(ARGS)
{
  bool sec; /* capabilities, no_new_privs, seccomp: task/cred.c */
  int64_t sr = qk_sec_prctl((int)a0, a1, a2, a3, a4, &sec);
  if (sec)
    return sr;
  switch ((int)a0) {
  case 15: /* PR_SET_NAME */ {
    char name[16];
    int64_t n = qk_strncpy_from_user(name, a1, sizeof(name));
    if (n == -QK_EFAULT)
      return n;
    if (n < 0) { /* longer names are cut, as Linux does */
      if (qk_copy_from_user(name, a1, sizeof(name) - 1))
        return -QK_EFAULT;
    }
    name[sizeof(name) - 1] = 0;
    memcpy(cur()->comm, name, sizeof(name));
    return 0;
  }
  case 16: /* PR_GET_NAME */
    return qk_copy_to_user(a1, cur()->comm, sizeof(cur()->comm)) ? -QK_EFAULT : 0;
  case 1: /* PR_SET_PDEATHSIG: the parent of pid 1 never dies first */
    return a1 <= L_NSIG ? 0 : -QK_EINVAL;
  case 3: /* PR_GET_DUMPABLE */
    return 1;
  case 4: /* PR_SET_DUMPABLE */
    return a1 <= 1 ? 0 : -QK_EINVAL;
  default:
    return -QK_EINVAL;
  }
}


/* rseq: not offered. glibc registers it at every process and thread start
 * and carries on without it on ENOSYS, so this answers ENOSYS without the
 * once-per-run "unimplemented syscall" warning (README: guest syscalls). */
int64_t sys_rseq(uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  return -QK_ENOSYS;
}
