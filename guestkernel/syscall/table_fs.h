/* Syscalls of one area (filesystem calls beyond the core list in table.c): X(number, name) for each, with
 * sys_<name> defined in that area's sources. Included by table.c only.
 * guestkernel/fs/fs_write.c: namespace and metadata writes on the rootfs. */
#define QK_SYSCALLS_FS(X)                                                                          \
  X(76, truncate) X(82, rename) X(86, link) X(88, symlink) X(90, chmod) X(91, fchmod)              \
  X(92, chown) X(93, fchown) X(94, lchown) X(132, utime) X(133, mknod) X(137, statfs)              \
  X(138, fstatfs) X(161, chroot) X(162, sync) X(235, utimes) X(259, mknodat) X(260, fchownat)      \
  X(261, futimesat) X(264, renameat) X(265, linkat) X(266, symlinkat) X(268, fchmodat)             \
  X(280, utimensat) X(285, fallocate) X(306, syncfs) X(316, renameat2) X(452, fchmodat2)      \
  X(85, creat) X(319, memfd_create) /* fs/tmpfs.c */ X(26, msync) /* syscall/sys_mm.c */      \
  X(275, splice) X(276, tee) X(278, vmsplice) /* fs/splice.c */
