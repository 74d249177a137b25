/* Pod control channel: the host (quark-sandbox pod) drives the containers
 * of one VM; the guest reports what happened to them.
 *
 * Version QK_CTL_VERSION, one struct qk_ctl_area at boot_info.ctl_gpa (page
 * aligned, host allocated, zero at boot).
 *
 * Host -> guest: a command ring (single producer: the host's control
 * thread; single consumer: the guest's ctl layer). Indices are free-running
 * uint32 (slot = index & (QK_CTL_ENTRIES - 1)), publication as for QCall
 * (write the entry, release-store the tail; acquire-load the tail, read the
 * entry, release-store the head). Guest-written and host-written words live
 * on separate cache lines. After publishing, the host wakes the guest if
 * guest_sleeping is 1 (the guest's idle QK_OP_SLEEP ends early, answering
 * 1); the guest sets it (seq_cst) and looks at the ring once more before it
 * sleeps, and reads the ring on every way out of its idle loop.
 *
 * Payloads (container and exec specs) are written by the host into the
 * payload area before the command is published and stay untouched until
 * the guest acknowledges that command (QK_CTL_EV_ACK with its seq): the
 * guest copies what it keeps before acknowledging. The host never reuses a
 * payload range that an unacknowledged command names. Every offset and
 * length in a payload is checked by the guest against payload_len.
 *
 * Guest -> host: events through the QCall op QK_OP_CTL_EVENT (a0 = gpa of
 * one struct qk_ctl_event, a1 = sizeof) from any vCPU: every command gets
 * exactly one ACK (result 0 or -errno), in command order; then, at any time,
 * STARTED / EXITED / EXEC_EXITED / STATS. The host validates each event
 * (unknown cid/xid: logged and dropped; the guest cannot hurt the host).
 *
 * Host file handles per container: the host creates the container's root
 * directory handle and its stdio handles in the pod's hfd table before
 * CREATE and names them in the spec. Every process of the container
 * resolves paths beneath its container's root_hfd (QK_HFD_ROOT remains the
 * boot process's root). Handles stay valid until the host has the DELETE
 * ack; the host closes them after it.
 */
#ifndef QK_CTL_H
#define QK_CTL_H

#include <stdint.h>

#define QK_CTL_VERSION 1u
#define QK_CTL_ENTRIES 64u
#define QK_CTL_PAYLOAD_SIZE (1u << 20) /* bytes of payload area */
#define QK_CTL_MAX_CONTAINERS 64u      /* cid in [0, 64) */
#define QK_CTL_MAX_ARGS 4096u          /* argc + envc of one spec */

enum qk_ctl_op {
  QK_CTL_CREATE = 1,    /* cid, payload: struct qk_ctl_spec -> ACK */
  QK_CTL_START = 2,     /* cid -> ACK, then STARTED (pid) */
  QK_CTL_SIGNAL = 3,    /* cid, arg = Linux signal, to the container's init -> ACK */
  QK_CTL_EXEC = 4,      /* cid, xid, payload: struct qk_ctl_spec -> ACK, later EXEC_EXITED */
  QK_CTL_EXEC_KILL = 5, /* cid, xid, arg = signal -> ACK */
  QK_CTL_DELETE = 6,    /* cid (exited or created) -> ACK; its handles may be closed after */
  QK_CTL_STATS = 7,     /* cid, or QK_CTL_POD for the whole guest -> ACK, then STATS */
  QK_CTL_SHUTDOWN = 8,  /* arg = signal for every process first -> ACK, then QK_OP_EXIT */
  QK_CTL_UPDATE = 9,    /* cid, payload: struct qk_ctl_resources -> ACK */
};

/* UPDATE: the container's limits from now on (CRI UpdateContainerResources;
 * CPU limits are the host's: the pod's cgroup). */
struct qk_ctl_resources {
  uint64_t mem_limit; /* bytes, 0: none (as qk_ctl_spec.mem_limit) */
  uint64_t reserved[3];
};
_Static_assert(sizeof(struct qk_ctl_resources) == 32, "qk_ctl_resources layout");

#define QK_CTL_POD 0xffffffffu /* cid of pod-wide commands and events */

struct qk_ctl_cmd {
  uint64_t seq; /* host counter, echoed in the ACK */
  uint32_t op;  /* enum qk_ctl_op */
  uint32_t cid; /* container slot, chosen by the host */
  uint32_t xid; /* exec id, chosen by the host, unique per cid */
  int32_t arg;
  uint32_t payload_off; /* into the payload area */
  uint32_t payload_len;
  uint64_t reserved[4];
};
_Static_assert(sizeof(struct qk_ctl_cmd) == 64, "qk_ctl_cmd layout");

#define QK_CTL_SPEC_TTY 1u
#define QK_CTL_SPEC_STDIN 2u
#define QK_CTL_SPEC_STDIN_ONCE 4u
#define QK_CTL_SPEC_PIDNS_POD 8u /* share the pod's pid namespace */
/* join the pid namespace of container pidns_cid (CRI pid mode TARGET): that
 * container must run (started, its init alive), else the CREATE answers
 * -ESRCH; the new init is an ordinary member there */
#define QK_CTL_SPEC_PIDNS_TARGET 16u

/* A process to create (CREATE: the container's init; EXEC: one more
 * process in the container's root). Strings: NUL-terminated, packed in
 * [strings_off, strings_off + strings_len) of the payload, in the order
 * argv[0..argc), envp[0..envc), cwd; groups: ngroups uint32 at groups_off. */
struct qk_ctl_spec {
  uint32_t version; /* QK_CTL_VERSION */
  uint32_t flags;   /* QK_CTL_SPEC_* */
  uint32_t uid, gid;
  uint32_t argc, envc;
  uint32_t ngroups, groups_off;
  uint32_t strings_off, strings_len;
  uint32_t root_hfd;     /* the container's root directory handle */
  uint32_t stdio_hfd[3]; /* stdin, stdout, stderr handles (log sinks or streams) */
  uint64_t mem_limit;    /* CREATE: bytes of guest memory its processes may hold, 0: none;
                            beyond it the allocating process is killed (EXIT_OOM) */
  uint32_t sec_off, sec_len; /* struct qk_ctl_sec in the payload; 0, 0: none */
  uint32_t pids_max; /* CREATE: tasks (threads included) the container may have, 0: no limit
                        but the VM's; fork/clone past it: EAGAIN */
  uint32_t pidns_cid; /* CREATE with QK_CTL_SPEC_PIDNS_TARGET: the container whose pid
                         namespace the init joins; else 0 */
  uint64_t reserved[2];
};
_Static_assert(sizeof(struct qk_ctl_spec) == 96, "qk_ctl_spec layout");
/* Security settings of a CREATE (EXEC processes inherit the container's):
 * flags as boot_info.sec_flags (QK_SEC_*, qk_abi.h), caps as sec_caps,
 * then filter_len classic-BPF instructions (8 bytes each) right after. */
struct qk_ctl_sec {
  uint32_t flags;
  uint32_t filter_len;
  uint64_t caps;
};
_Static_assert(sizeof(struct qk_ctl_sec) == 16, "qk_ctl_sec layout");

enum qk_ctl_event_type {
  QK_CTL_EV_ACK = 1,         /* seq, result */
  QK_CTL_EV_STARTED = 2,     /* cid, v[0] = pid */
  QK_CTL_EV_EXITED = 3,      /* cid, status, flags */
  QK_CTL_EV_EXEC_EXITED = 4, /* cid, xid, status, flags */
  QK_CTL_EV_STATS =
      5, /* cid (or QK_CTL_POD), v[0] memory bytes in use, v[1] cpu ns, v[2] processes */
};

#define QK_CTL_EXIT_SIGNALED 1u /* status is the signal number */
#define QK_CTL_EXIT_OOM 2u      /* killed for its memory limit */

struct qk_ctl_event {
  uint32_t type; /* enum qk_ctl_event_type */
  uint32_t cid;
  uint32_t xid;
  uint32_t flags; /* QK_CTL_EXIT_* */
  uint64_t seq;
  int64_t result; /* ACK: 0 or -errno */
  int32_t status; /* exit code, or signal with QK_CTL_EXIT_SIGNALED */
  uint32_t reserved0;
  uint64_t v[3];
};
_Static_assert(sizeof(struct qk_ctl_event) == 64, "qk_ctl_event layout");

struct qk_ctl_area {
  uint32_t magic;   /* QK_CTL_MAGIC, host-written */
  uint32_t version; /* QK_CTL_VERSION */
  /* guest-written */
  _Alignas(64) uint32_t cmd_head;
  uint32_t guest_sleeping;
  uint32_t guest_version; /* QK_CTL_VERSION once the guest serves the ring */
  /* host-written */
  _Alignas(64) uint32_t cmd_tail;
  _Alignas(64) struct qk_ctl_cmd cmd[QK_CTL_ENTRIES];
  _Alignas(4096) uint8_t payload[QK_CTL_PAYLOAD_SIZE];
};
#define QK_CTL_MAGIC 0x4c54434bu /* "KCTL" */
_Static_assert(sizeof(struct qk_ctl_area) == 8192 + QK_CTL_PAYLOAD_SIZE, "qk_ctl_area layout");
_Static_assert((QK_CTL_ENTRIES & (QK_CTL_ENTRIES - 1)) == 0, "ring size is a power of two");

#endif
