/* Syscalls of one area (epoll, eventfd, signalfd, timerfd, alarm/itimer/POSIX timers): X(number, name) for each, with
 * sys_<name> defined in that area's sources. Included by table.c only. */
#define QK_SYSCALLS_EVENTS(X)                                                              \
  X(213, epoll_create) X(291, epoll_create1) X(233, epoll_ctl) X(232, epoll_wait)          \
  X(281, epoll_pwait) X(441, epoll_pwait2) X(284, eventfd) X(290, eventfd2)                \
  X(282, signalfd) X(289, signalfd4) X(283, timerfd_create) X(286, timerfd_settime)       \
  X(287, timerfd_gettime) X(37, alarm) X(36, getitimer) X(38, setitimer)                   \
  X(222, timer_create) X(223, timer_settime) X(224, timer_gettime)                         \
  X(225, timer_getoverrun) X(226, timer_delete)
