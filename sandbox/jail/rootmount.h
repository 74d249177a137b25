/* A container's root filesystem as the guest sees it: the image root with
 * its bind mounts (hostPath volumes, /etc/hosts...), readOnlyRootFilesystem
 * and the OCI read-only and masked paths. Prefix: sbx_root_.
 *
 * Built by a child process in a private mount namespace of its own
 * (nothing shows in the node's mount table, and it all goes away with the
 * last fd), which hands back an O_PATH fd of the root and an fd of that
 * mount namespace. The fds work from any mount namespace: the pod daemon
 * resolves guest paths beneath the root with openat2 (RESOLVE_IN_ROOT), so
 * the caller may be quarkd (through sbx_client, sandbox/client/), which
 * passes both fds to the jailed pod daemon that sees no host path at all
 * (jail.h), or the daemon itself when it runs without its mount jail.
 *
 * mounts: JSON array of {"src": host path, "dst": absolute guest path,
 * "ro": bool}; masked, ropaths: arrays of absolute guest paths (paths the
 * guest kernel serves itself, /proc /sys /dev, are skipped). Without
 * mounts, ro or paths, *nsfd stays -1 and the root is a plain open.
 * Needs CAP_SYS_ADMIN when there is something to mount. */
#ifndef SBX_ROOTMOUNT_H
#define SBX_ROOTMOUNT_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>
#include <quark/common.h>

int sbx_root_open(const char *rootfs, json_t *mounts, bool ro, json_t *masked, json_t *ropaths,
                  int *rootfd, int *nsfd, q_error **err);
/* The same with a helper that shares the caller's memory (sbx_vfork_run)
 * instead of a fork: for quarkd, whose fork copies the page tables of a
 * big multithreaded process and leaves it copy-on-write faults. Not for
 * the pod daemon, whose seccomp filter admits fork's clone flags only. */
int sbx_root_open_shared(const char *rootfs, json_t *mounts, bool ro, json_t *masked,
                         json_t *ropaths, int *rootfd, int *nsfd, q_error **err);
/* Runs fn(arg) in a child process that shares this process's memory, the
 * way posix_spawn does (clone CLONE_VM | CLONE_VFORK, a stack of its own):
 * the calling thread waits until the child exits or execs. The child runs
 * with every signal blocked; fn may only make system calls and use its
 * stack and arg (no malloc, no locks: other threads go on). fn's return
 * value is the child's exit status. Returns the child's pid (to waitpid)
 * or -errno. */
pid_t sbx_vfork_run(int (*fn)(void *), void *arg);
/* size bytes of fresh memory for such a child's stack (munmap it after
 * the child is gone), or NULL. */
void *sbx_child_stack(size_t size);
/* openat2 beneath root (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), O_CLOEXEC
 * added; a new fd or -errno. */
int sbx_openat2_in_root(int root, const char *path, int flags, mode_t mode);

#endif
