/* Syscalls of one area (credentials, capabilities, seccomp): X(number, name) for each, with
 * sys_<name> defined in that area's sources. Included by table.c only. */
#define QK_SYSCALLS_SEC(X)
