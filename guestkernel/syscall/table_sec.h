/* Syscalls of one area (credentials, capabilities, seccomp): X(number, name) for each, with
 * sys_<name> defined in that area's sources (task/cred.c, task/seccomp.c). Included by
 * table.c only. */
#define QK_SYSCALLS_SEC(X)                                                                 \
  X(102, getuid) X(104, getgid) X(105, setuid) X(106, setgid) X(107, geteuid)             \
  X(108, getegid) X(113, setreuid) X(114, setregid) X(115, getgroups) X(116, setgroups)   \
  X(117, setresuid) X(118, getresuid) X(119, setresgid) X(120, getresgid)                 \
  X(122, setfsuid) X(123, setfsgid) X(125, capget) X(126, capset) X(317, seccomp)         \
  X(165, mount) X(166, umount2) X(155, pivot_root) X(272, unshare)         \
  X(308, setns) X(169, reboot) X(246, kexec_load) X(320, kexec_file_load)                 \
  X(175, init_module) X(313, finit_module) X(176, delete_module) X(170, sethostname)      \
  X(171, setdomainname) X(167, swapon) X(168, swapoff) X(163, acct) X(164, settimeofday)  \
  X(227, clock_settime) X(172, iopl) X(173, ioperm)
