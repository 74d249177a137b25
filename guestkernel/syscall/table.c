/* The syscall table and dispatcher (x86-64 numbers). */
#include <qk/arch.h>
#include <qk/cputime.h>
#include <qk/kernel.h>
#include <qk/qcall.h>
#include <qk/sec.h>
#include <qk/syscall.h>
#include <qk/task.h>

/* Each area keeps its own list (one owner per file, so parallel work does not
 * collide here): a duplicate number is a build error (-Woverride-init). */
#include "table_events.h" /* epoll, eventfd, signalfd, timerfd, timers */
#include "table_fs.h"     /* filesystem calls beyond the core list below */
#include "table_sec.h"    /* credentials, capabilities, seccomp */
#include "table_net.h"    /* sockets beyond the core list below */
#include "table_tty.h"    /* terminals */
#include "table_task.h"   /* scheduling and processes beyond the core list */

/* 75 (fdatasync) shares fsync: the host syncs data and metadata alike. */
#define QK_SYSCALLS(X)                                                                     \
  X(0, read) X(1, write) X(2, open) X(3, close) X(4, stat) X(5, fstat) X(6, lstat)         \
  X(7, poll) X(8, lseek) X(9, mmap) X(10, mprotect) X(11, munmap) X(12, brk)               \
  X(13, rt_sigaction) X(14, rt_sigprocmask) X(16, ioctl) X(17, pread64) X(18, pwrite64)    \
  X(19, readv) X(20, writev) X(21, access) X(23, select) X(24, sched_yield) X(25, mremap)  \
  X(28, madvise) X(32, dup) X(33, dup2) X(35, nanosleep) X(39, getpid) X(60, exit)         \
  X(62, kill) X(63, uname) X(72, fcntl) X(74, fsync) X(75, fsync) X(77, ftruncate)         \
  X(79, getcwd) X(80, chdir) X(81, fchdir) X(83, mkdir) X(84, rmdir) X(87, unlink)         \
  X(89, readlink) X(95, umask) X(96, gettimeofday) X(97, getrlimit) X(98, getrusage)       \
  X(99, sysinfo) X(100, times)                                                            \
  X(109, setpgid) X(110, getppid) X(111, getpgrp) X(112, setsid)           \
  X(121, getpgid) X(124, getsid)     \
  X(135, personality) X(140, getpriority) X(141, setpriority) X(143, sched_getparam)       \
  X(145, sched_getscheduler) X(146, sched_get_priority_max) X(147, sched_get_priority_min) \
  X(157, prctl) X(158, arch_prctl) X(160, setrlimit) X(186, gettid) X(200, tkill)          \
  X(201, time) X(202, futex) X(203, sched_setaffinity) X(204, sched_getaffinity)           \
  X(217, getdents64) X(218, set_tid_address) X(221, fadvise64) X(228, clock_gettime)       \
  X(229, clock_getres) X(230, clock_nanosleep) X(231, exit_group) X(234, tgkill)           \
  X(257, openat) X(258, mkdirat) X(262, newfstatat) X(263, unlinkat) X(267, readlinkat)    \
  X(269, faccessat) X(270, pselect6) X(271, ppoll) X(273, set_robust_list)                 \
  X(274, get_robust_list) X(292, dup3) X(302, prlimit64) X(309, getcpu) X(318, getrandom)  \
  X(332, statx) X(439, faccessat2)                                                         \
  X(15, rt_sigreturn) X(22, pipe) X(34, pause) X(56, clone) X(57, fork) X(58, vfork)       \
  X(59, execve) X(61, wait4) X(127, rt_sigpending) X(130, rt_sigsuspend)                   \
  X(131, sigaltstack) X(247, waitid) X(293, pipe2) X(322, execveat) X(435, clone3)         \
  X(188, xattr) X(189, xattr) X(190, xattr) X(191, xattr) X(192, xattr) X(193, xattr)     \
  X(194, xattr) X(195, xattr) X(196, xattr) X(197, xattr) X(198, xattr) X(199, xattr)     \
  X(128, rt_sigtimedwait) X(436, close_range)                                              \
  X(41, socket) X(42, connect) X(43, accept) X(44, sendto) X(45, recvfrom) X(46, sendmsg)  \
  X(47, recvmsg) X(48, shutdown) X(49, bind) X(50, listen) X(51, getsockname)              \
  X(52, getpeername) X(53, socketpair) X(54, setsockopt) X(55, getsockopt) X(288, accept4)  \
  X(299, recvmmsg) X(307, sendmmsg) X(40, sendfile)                                       \
  QK_SYSCALLS_EVENTS(X) QK_SYSCALLS_FS(X) QK_SYSCALLS_SEC(X) QK_SYSCALLS_NET(X)           \
  QK_SYSCALLS_TTY(X) QK_SYSCALLS_TASK(X)

#define DECLARE(nr, name)                                                                  \
  int64_t sys_##name(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
QK_SYSCALLS(DECLARE)

#define ENTRY(nr, name) [nr] = sys_##name,
static const qk_sys_fn table[QK_NR_SYSCALLS] = { QK_SYSCALLS(ENTRY) };

static uint64_t reported[QK_NR_SYSCALLS / 64 + 2];

static __attribute__((noinline)) int64_t unknown(uint64_t nr)
{
  uint64_t slot = nr < QK_NR_SYSCALLS ? nr : QK_NR_SYSCALLS; /* one slot for all others */
  uint64_t bit = 1ull << (slot & 63);
  if (!(reported[slot / 64] & bit)) {
    reported[slot / 64] |= bit;
    qk_printk(QK_LOG_WARN, "unimplemented syscall %lu: ENOSYS%s", nr,
              nr < QK_NR_SYSCALLS ? "" : " (further unknown numbers not logged)");
  }
  return -QK_ENOSYS;
}

int64_t qk_syscall_dispatch(struct qk_regs *r)
{
  uint64_t nr = r->orig_rax;
  qk_sys_fn fn;
  struct qk_task *t = qk_current();
  int64_t sres; /* seccomp (task/seccomp.c): one load and a branch without a filter */
  if (qk_unlikely(t->seccomp_mode) && !qk_seccomp_check(t, r, &sres))
    return sres;
  if (qk_likely(nr < QK_NR_SYSCALLS && (fn = table[nr])))
    return fn(r->rdi, r->rsi, r->rdx, r->r10, r->r8, r->r9);
  return unknown(nr);
}

void qk_syscall(struct qk_regs *r)
{
  struct qk_task *t = qk_current();
  t->uregs = r;
  qk_cputime_enter(t); /* CPU time: user until here, kernel from here (qk/cputime.h) */
  int64_t res = qk_syscall_dispatch(r);
  if (qk_likely(res != -QK_ERESTART_WAIT))
    r->rax = (uint64_t)res;
  qk_cputime_exit(t);
  qk_sched_return(r, true);
}
