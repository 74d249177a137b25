/* One booted guest: a KVM VM with qkernel.bin and one process loaded by the
 * host, plus its QCall workers. `quark-sandbox run` runs one; pod mode runs
 * one per container and one per exec, or (shared-VM pod mode, pod_vm) one
 * per pod whose containers come through the control channel.
 *
 * Contract:
 * - sbx_guest_create maps memory, writes the boot state and starts nothing;
 *   sbx_guest_run runs the vCPUs on new threads and blocks the caller until
 *   the guest stops, returning its exit status (125: sandbox/guest failure).
 * - sbx_guest_stop may be called from any thread, before or during run;
 *   the first status wins (a stop before run makes run return at once).
 * - cfg->sink, when set, receives the guest's writes to its stdout (stream 1)
 *   and stderr (2) on a QCall worker thread, in order per stream; it returns
 *   the bytes taken or a negative errno. stdio[1]/[2] then only answer
 *   fstat/ioctl. Strings in cfg are copied into guest memory by create.
 * - sbx_guest_destroy after run returned (or instead of run).
 */
#ifndef SBX_GUEST_H
#define SBX_GUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#include <quark/common.h>

#include "../guestkernel/abi/qk_ctl.h"

struct sbx_guest;

struct sbx_guest_config {
  const char *kernel; /* qkernel.bin */
  int rootfd;         /* borrowed: O_PATH directory, the process's root */
  const char *const *argv;
  size_t argc;
  const char *const *envp;
  size_t envc;
  const char *cwd;
  uint32_t uid, gid;
  uint64_t mem_bytes;
  unsigned vcpus;
  bool kernel_worker;
  const char *hostname; /* may be NULL */
  const char *pod_id;   /* for log lines, may be NULL */
  int stdio[3];         /* borrowed; -1: /dev/null */
  void *sink_ctx;
  ssize_t (*sink)(void *ctx, int stream, const struct iovec *iov, int cnt);
  /* Pod VM (shared-VM pod mode): the guest boots with no process
   * (argv is only loaded, never run) and serves the pod control channel of
   * guestkernel/abi/qk_ctl.h, whose area the host carves from the top of
   * guest memory; events go to on_ctl_event on a QCall worker thread. */
  bool pod_vm;
  void *ctl_ctx;
  int (*on_ctl_event)(void *ctx, const struct qk_ctl_event *ev);
  /* Security settings of the boot process (boot_info.sec_*, qk_abi.h):
   * QK_SEC_* flags, capability set, supplementary groups and a classic-BPF
   * seccomp program (seccomp_len instructions of 8 bytes). */
  uint32_t sec_flags;
  uint64_t caps;
  const uint32_t *groups;
  size_t ngroups;
  const void *seccomp;
  size_t seccomp_len;
};

int sbx_guest_create(const struct sbx_guest_config *cfg, struct sbx_guest **out, q_error **err);
int sbx_guest_run(struct sbx_guest *g);
void sbx_guest_stop(struct sbx_guest *g, int status);
void sbx_guest_destroy(struct sbx_guest *g);
/* Pod VM: the control area (host pointer into guest memory), or NULL. */
struct qk_ctl_area *sbx_guest_ctl(struct sbx_guest *g);
/* Pod VM: the guest's host fd table (sbx_qcall_hfd_install/close). */
int64_t sbx_guest_hfd_install(struct sbx_guest *g, int fd);
/* The pod control channel posted a command: end an idle guest sleep. */
void sbx_guest_wake_sleep(struct sbx_guest *g);
int64_t sbx_guest_hfd_close(struct sbx_guest *g, uint64_t h);
/* Guest memory resident on the host (bytes touched by guest or host). */
uint64_t sbx_guest_resident(const struct sbx_guest *g);
/* CPU time of the guest's vCPU threads (ns). */
uint64_t sbx_guest_cpu_ns(const struct sbx_guest *g);
/* Boot phases, QCall and KVM counters as "name value" lines (after run). */
void sbx_guest_write_stats(struct sbx_guest *g, FILE *f);

/* qkernel.bin next to the binary (build tree ../guestkernel, install
 * ../lib/quark), $QUARK_KERNEL first, else /usr/local/lib/quark. */
void sbx_default_kernel(char *out, size_t size);

#endif
