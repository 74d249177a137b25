/* Syscalls of one area (epoll, eventfd, signalfd, timerfd, alarm/itimer/POSIX timers): X(number, name) for each, with
 * sys_<name> defined in that area's sources. Included by table.c only. */
#define QK_SYSCALLS_EVENTS(X)
