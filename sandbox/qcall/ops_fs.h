/* Host side of the guest's filesystem write opcodes (QK_OP_RENAMEAT..
 * QK_OP_FALLOCATE, guestkernel/abi/qk_qcall.h).
 *
 * Contract:
 * - Every path resolves beneath a handle of the per-pod host fd table with
 *   openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): symlinks and ".."
 *   never leave the container's root. Calls that act on a directory entry
 *   (rename, link, symlink, mknod) resolve the parent that way and name
 *   the last component relative to it, which the host never follows
 *   ("." and ".." refused). Calls that act on an object (chmod, chown,
 *   utimes, statfs) take an O_PATH handle of it and use the *at(fd, "",
 *   AT_EMPTY_PATH) forms.
 * - Device nodes are neither created (mknod: FIFOs and regular files only)
 *   nor changed (chmod/chown/utimes/truncate answer -EPERM on them).
 * - Guest memory only through sbx_gpa(); paths are copied first.
 */
#ifndef SBX_QCALL_OPS_FS_H
#define SBX_QCALL_OPS_FS_H

#include <stdint.h>

#include "qcall_host.h"

/* What the file ops borrow from the QCall core (its fd table). */
struct sbx_fs_ctx {
  struct sbx_qcall *q;
  struct sbx_mem *mem;
  int (*hfd_get)(struct sbx_qcall *q, uint64_t h);
};

/* The parent directory of the guest path (gpa, len) beneath handle dirh, as
 * an O_PATH fd resolved in the root, and its last component in base (""
 * for the root itself; trailing slashes dropped). -errno on failure. Shared
 * by every opcode that names a directory entry. */
int sbx_fs_open_parent(const struct sbx_fs_ctx *c, uint64_t dirh, uint64_t gpa, uint64_t len,
                       char base[256]);

/* Serves one filesystem write opcode; -ENOSYS for any other op. */
int64_t sbx_qcall_fs(const struct sbx_fs_ctx *c, uint32_t op, const uint64_t *a);

#endif
