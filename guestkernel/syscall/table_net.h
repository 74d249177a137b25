/* Syscalls of one area (sockets beyond the core list in table.c): X(number, name) for each, with
 * sys_<name> defined in that area's sources. Included by table.c only. */
#define QK_SYSCALLS_NET(X)
