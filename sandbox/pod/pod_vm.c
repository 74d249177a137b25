/* Shared-VM pod mode: one guest per pod driven through qk_ctl
 * (pod->shared_vm: --shared-vm, QUARK_POD_SHARED_VM=1). pod_ctr.c calls the
 * vm_* entry points declared in pod_internal.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../guestkernel/abi/qk_abi.h" /* QK_SEC_RO_ROOT */
#include "../kvm/vm.h"
#include "pod_internal.h"

#define MAX_ARGS 65536
/* ---- shared-VM mode: one guest per pod, driven through qk_ctl ----
 *
 * The pod VM boots at the first container create (its boot process is the
 * host loader's built-in pause() loop, sandbox/guest.c), with the control area of
 * guestkernel/abi/qk_ctl.h. Commands go one at a time (cmd_lock; the
 * payload always at offset 0, untouched until the ACK) and every caller
 * sends them without pod->lock held, because the events that answer them
 * arrive on the VM's QCall worker, which may take pod->lock.
 *
 * Each container has its own handles in the VM's host fd table: a dup of
 * its O_PATH root, stdin (its stdin socket or /dev/null) and the write
 * ends of two pipes whose read ends c->thread drains into the CRI log sink
 * (and attached clients). EXITED closes the handles; the drain thread sees
 * EOF, flushes the log and only then marks the container exited, so a
 * wait never returns before the output is logged. Captured execs drain
 * their pipes into the capture buffers the same way; streaming execs get
 * the client's socket pairs as handles. */

struct vm_exec {
  uint32_t cid, xid;
  bool done;
  int status;
  int64_t hfd[3];
  struct pod_exec *stream; /* streaming exec, or NULL */
  struct vm_exec *next;
};

struct pod_vm {
  struct pod *pod;
  struct sbx_guest *g;
  struct qk_ctl_area *area;
  pthread_t thread;
  pthread_mutex_t cmd_lock;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  uint64_t seq, acked;
  int64_t ack_result;
  uint64_t stats[3];
  bool dead;
  int status;
  struct ctr *slot[QK_CTL_MAX_CONTAINERS];
  struct vm_exec *execs;
  uint32_t xid_seq;
};

#define VM_CMD_TIMEOUT_S 30

static int ev_status(const struct qk_ctl_event *ev)
{
  return (ev->flags & QK_CTL_EXIT_SIGNALED) ? 128 + ev->status : ev->status;
}

static void vm_close_hfds(struct pod_vm *vm, int64_t *h, int n)
{
  for (int i = 0; i < n; i++)
    if (h[i] >= 0) {
      sbx_guest_hfd_close(vm->g, (uint64_t)h[i]);
      h[i] = -1;
    }
}

/* Under vm->lock: the exec's end (event or VM death); its handles close
 * after the lock is dropped (hfd copies in out). */
static struct pod_exec *vm_exec_end(struct vm_exec *x, int status, int64_t out[3])
{
  x->done = true;
  x->status = status;
  for (int i = 0; i < 3; i++) {
    out[i] = x->hfd[i];
    x->hfd[i] = -1;
  }
  return x->stream;
}

static void stream_done(struct pod *p, struct pod_exec *sx, int status)
{
  pthread_mutex_lock(&p->lock);
  sx->status = status;
  sx->done = true;
  pthread_cond_broadcast(&p->changed);
  pthread_mutex_unlock(&p->lock);
  q_info(p->id, "exec %s in %.12s exited with %d", sx->id, sx->cid, status);
}

/* QCall worker thread: one event of the guest, validated. */
static int vm_event(void *ctx, const struct qk_ctl_event *ev)
{
  struct pod_vm *vm = ctx;
  switch (ev->type) {
  case QK_CTL_EV_ACK:
    pthread_mutex_lock(&vm->lock);
    vm->acked = ev->seq;
    vm->ack_result = ev->result;
    pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->lock);
    return 0;
  case QK_CTL_EV_STATS:
    pthread_mutex_lock(&vm->lock);
    memcpy(vm->stats, ev->v, sizeof vm->stats);
    pthread_mutex_unlock(&vm->lock);
    return 0;
  case QK_CTL_EV_EXITED: {
    if (ev->cid >= QK_CTL_MAX_CONTAINERS)
      return -EINVAL;
    int64_t h[3] = {-1, -1, -1};
    pthread_mutex_lock(&vm->lock);
    struct ctr *c = vm->slot[ev->cid];
    if (c && !c->vm_exited) {
      c->vm_exited = true;
      c->vm_status = ev_status(ev);
      c->vm_oom = (ev->flags & QK_CTL_EXIT_OOM) != 0;
      if (c->forced_status && !(ev->flags & QK_CTL_EXIT_SIGNALED))
        c->vm_status = c->forced_status;
      for (int i = 0; i < 3; i++) {
        h[i] = c->hfd[i + 1];
        c->hfd[i + 1] = -1;
      }
    }
    pthread_mutex_unlock(&vm->lock);
    if (!c)
      q_warn(vm->pod->id, "pod VM: exit of unknown container slot %u", ev->cid);
    vm_close_hfds(vm, h, 3);
    return 0;
  }
  case QK_CTL_EV_EXEC_EXITED: {
    int64_t h[3] = {-1, -1, -1};
    struct pod_exec *sx = NULL;
    bool found = false;
    pthread_mutex_lock(&vm->lock);
    for (struct vm_exec *x = vm->execs; x; x = x->next)
      if (x->cid == ev->cid && x->xid == ev->xid && !x->done) {
        sx = vm_exec_end(x, ev_status(ev), h);
        found = true;
        break;
      }
    pthread_cond_broadcast(&vm->cond);
    pthread_mutex_unlock(&vm->lock);
    vm_close_hfds(vm, h, 3);
    if (sx)
      stream_done(vm->pod, sx, ev_status(ev));
    if (!found)
      q_warn(vm->pod->id, "pod VM: end of unknown exec %u/%u", ev->cid, ev->xid);
    return 0;
  }
  default:
    return 0; /* STARTED: nothing to do */
  }
}

static void *vm_thread(void *arg)
{
  struct pod_vm *vm = arg;
  int status = sbx_guest_run(vm->g);
  q_info(vm->pod->id, "pod VM stopped with %d", status);
  struct pod_exec *streams[64];
  int nstreams = 0;
  pthread_mutex_lock(&vm->lock);
  vm->dead = true;
  vm->status = status;
  for (unsigned i = 0; i < QK_CTL_MAX_CONTAINERS; i++) {
    struct ctr *c = vm->slot[i];
    if (c && !c->vm_exited) {
      c->vm_exited = true;
      c->vm_status = status;
      vm_close_hfds(vm, c->hfd + 1, 3);
    }
  }
  for (struct vm_exec *x = vm->execs; x; x = x->next)
    if (!x->done) {
      int64_t h[3];
      struct pod_exec *sx = vm_exec_end(x, status, h);
      vm_close_hfds(vm, h, 3);
      if (sx && nstreams < 64)
        streams[nstreams++] = sx;
    }
  pthread_cond_broadcast(&vm->cond);
  pthread_mutex_unlock(&vm->lock);
  for (int i = 0; i < nstreams; i++)
    stream_done(vm->pod, streams[i], status);
  return NULL;
}

/* Sends one command and waits for its ACK: 0 or -errno. No pod->lock. */
static int64_t vm_cmd_stall(struct pod_vm *vm, uint32_t op, uint32_t cid, uint32_t xid,
                            int32_t arg, const void *payload, size_t len, uint64_t stats[3],
                            void (*stalled)(struct pod_vm *, void *), void *stall_arg);

static int64_t vm_cmd(struct pod_vm *vm, uint32_t op, uint32_t cid, uint32_t xid, int32_t arg,
                      const void *payload, size_t len, uint64_t stats[3])
{
  return vm_cmd_stall(vm, op, cid, xid, arg, payload, len, stats, NULL, NULL);
}

/* stalled (when set) is called once, without vm->lock, when the ACK has
 * not come within VM_STALL_MS: a QCall worker blocked reading a stdin
 * socket holds every QCall of the vCPU, the ACK included. */
#define VM_STALL_MS 200
static int64_t vm_cmd_stall(struct pod_vm *vm, uint32_t op, uint32_t cid, uint32_t xid,
                            int32_t arg, const void *payload, size_t len, uint64_t stats[3],
                            void (*stalled)(struct pod_vm *, void *), void *stall_arg)
{
  if (len > QK_CTL_PAYLOAD_SIZE)
    return -E2BIG;
  pthread_mutex_lock(&vm->cmd_lock);
  pthread_mutex_lock(&vm->lock);
  int64_t r;
  if (vm->dead) {
    r = -EPIPE;
    goto out;
  }
  if (len)
    memcpy(vm->area->payload, payload, len);
  uint32_t tail = vm->area->cmd_tail;
  struct qk_ctl_cmd cmd = {.seq = ++vm->seq,
                           .op = op,
                           .cid = cid,
                           .xid = xid,
                           .arg = arg,
                           .payload_off = 0,
                           .payload_len = (uint32_t)len};
  memcpy(&vm->area->cmd[tail & (QK_CTL_ENTRIES - 1)], &cmd, sizeof cmd);
  __atomic_store_n(&vm->area->cmd_tail, tail + 1, __ATOMIC_SEQ_CST);
  /* The guest polls the ring from its scheduler; idle, it sleeps with
   * guest_sleeping set after a last look (seq_cst on both sides), and the
   * sleep ends when told so. */
  if (__atomic_load_n(&vm->area->guest_sleeping, __ATOMIC_SEQ_CST))
    sbx_guest_wake_sleep(vm->g);
  struct timespec dl, sdl;
  clock_gettime(CLOCK_MONOTONIC, &dl);
  sdl = dl;
  dl.tv_sec += VM_CMD_TIMEOUT_S;
  sdl.tv_nsec += VM_STALL_MS * 1000000L;
  if (sdl.tv_nsec >= 1000000000) {
    sdl.tv_sec++;
    sdl.tv_nsec -= 1000000000;
  }
  while (vm->acked != cmd.seq && !vm->dead) {
    if (pthread_cond_timedwait(&vm->cond, &vm->lock, stalled ? &sdl : &dl) != ETIMEDOUT)
      continue;
    if (!stalled)
      break;
    pthread_mutex_unlock(&vm->lock);
    stalled(vm, stall_arg);
    pthread_mutex_lock(&vm->lock);
    stalled = NULL;
  }
  if (vm->acked == cmd.seq) {
    r = vm->ack_result;
    if (stats)
      memcpy(stats, vm->stats, sizeof vm->stats);
  } else {
    r = vm->dead ? -EPIPE : -ETIMEDOUT;
    if (!vm->dead)
      q_warn(vm->pod->id, "pod VM: no ACK for command %u (slot %u, exec %u) in %d s: head %u tail %u",
             op, cid, xid, VM_CMD_TIMEOUT_S, __atomic_load_n(&vm->area->cmd_head, __ATOMIC_ACQUIRE),
             vm->area->cmd_tail);
  }
out:
  pthread_mutex_unlock(&vm->lock);
  pthread_mutex_unlock(&vm->cmd_lock);
  return r;
}

/* argv[0] without a '/' through the container's PATH, as the host ELF
 * loader does in per-VM mode (the guest's exec takes a path). */
static void vm_resolve(const struct ctr *c, const char *name, char out[256])
{
  snprintf(out, 256, "%s", name);
  if (strchr(name, '/') || !*name)
    return;
  const char *path = DEFAULT_PATH + 5;
  for (size_t i = 0; i < c->envc; i++)
    if (!strncmp(c->envp[i], "PATH=", 5))
      path = c->envp[i] + 5;
  for (const char *p = path; *p;) {
    const char *colon = strchr(p, ':');
    size_t dl = colon ? (size_t)(colon - p) : strlen(p);
    char cand[256];
    int n = snprintf(cand, sizeof cand, "%.*s/%s", (int)dl, p, name);
    if (n > 0 && n < 256 && cand[0] == '/') {
      int fd = openat2_in_root(c->rootfd, cand, O_PATH, 0);
      struct stat st;
      bool ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
      if (fd >= 0)
        close(fd);
      if (ok) {
        memcpy(out, cand, (size_t)n + 1);
        return;
      }
    }
    if (!colon)
      break;
    p = colon + 1;
  }
}

/* The payload of CREATE/EXEC: struct qk_ctl_spec, then the strings. */
static void *vm_spec(const struct ctr *c, char *const *argv, size_t argc, uint32_t flags,
                     const int64_t hfd[4], size_t *len)
{
  char exe[256];
  vm_resolve(c, argv[0], exe);
  size_t n = sizeof(struct qk_ctl_spec) + strlen(exe) + 1;
  for (size_t i = 1; i < argc; i++)
    n += strlen(argv[i]) + 1;
  for (size_t i = 0; i < c->envc; i++)
    n += strlen(c->envp[i]) + 1;
  n += strlen(c->cwd) + 1;
  /* then the groups and the security block (struct qk_ctl_sec + program) */
  size_t n_str = n, g_off = (n + 3) & ~(size_t)3;
  size_t s_off = (g_off + c->sec.ngroups * 4 + 7) & ~(size_t)7;
  size_t s_len = sizeof(struct qk_ctl_sec) + c->sec.bpf_len * 8;
  n = s_off + s_len;
  uint8_t *buf = calloc(1, n);
  if (!buf)
    return NULL;
  struct qk_ctl_spec s = {.version = QK_CTL_VERSION,
                          .flags = flags,
                          .uid = c->uid,
                          .gid = c->gid,
                          .argc = (uint32_t)argc,
                          .envc = (uint32_t)c->envc,
                          .ngroups = (uint32_t)c->sec.ngroups,
                          .groups_off = (uint32_t)g_off,
                          .strings_off = sizeof s,
                          .strings_len = (uint32_t)(n_str - sizeof s),
                          .sec_off = (uint32_t)s_off,
                          .sec_len = (uint32_t)s_len,
                          .mem_limit = c->mem_limit,
                          .pids_max = c->pids_limit,
                          .pidns_cid = c->pidns_target >= 0 ? (uint32_t)c->pidns_target : 0,
                          .root_hfd = (uint32_t)hfd[0],
                          .stdio_hfd = {(uint32_t)hfd[1], (uint32_t)hfd[2], (uint32_t)hfd[3]}};
  memcpy(buf, &s, sizeof s);
  char *o = stpcpy((char *)buf + sizeof s, exe) + 1;
  for (size_t i = 1; i < argc; i++)
    o = stpcpy(o, argv[i]) + 1;
  for (size_t i = 0; i < c->envc; i++)
    o = stpcpy(o, c->envp[i]) + 1;
  stpcpy(o, c->cwd);
  memcpy(buf + g_off, c->sec.groups, c->sec.ngroups * 4);
  struct qk_ctl_sec sec = {.flags = c->sec.flags, .filter_len = (uint32_t)c->sec.bpf_len,
                           .caps = c->sec.caps};
  memcpy(buf + s_off, &sec, sizeof sec);
  if (c->sec.bpf_len)
    memcpy(buf + s_off + sizeof sec, c->sec.bpf, c->sec.bpf_len * 8);
  *len = n;
  return buf;
}

/* A new pod VM whose boot process (the built-in idle loop) has rootfd as
 * its root, running on its own thread (own_thread), else for the caller to
 * run with vm_thread. No p->lock needed: it reads only the pod's fixed
 * settings. */
static int vm_new(struct pod *p, int rootfd, bool own_thread, struct pod_vm **out, q_error **err)
{
  struct pod_vm *vm = calloc(1, sizeof *vm);
  if (!vm)
    return q_error_make(err, ENOMEM, "pod VM");
  vm->pod = p;
  pthread_mutex_init(&vm->cmd_lock, NULL);
  pthread_mutex_init(&vm->lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&vm->cond, &ca);
  pthread_condattr_destroy(&ca);
  /* The VM's boot process is the built-in idle loop: the containers'
   * security settings travel with each CREATE, not here, and neither argv
   * nor env is used. */
  static char *const idle_argv[] = {"quark-pod-idle", NULL};
  struct ctr boot = {.rootfd = rootfd, .cwd = "/", .argv = (char **)idle_argv, .argc = 1};
  struct sbx_guest_config gc;
  pod_guest_config(p, &boot, boot.argv, boot.argc, false, &gc);
  /* The empty boot root is read-only to the guest: a container reaches it
   * as /proc/1/root in the pod's shared pid namespace. */
  if (rootfd == p->boot_root)
    gc.sec_flags |= QK_SEC_RO_ROOT;
  gc.pod_vm = true;
  gc.ctl_ctx = vm;
  gc.on_ctl_event = vm_event;
  int r = pod_guest_create(&gc, &vm->g, err);
  if (r < 0) {
    free(vm);
    return r;
  }
  vm->area = sbx_guest_ctl(vm->g);
  if (own_thread && (r = pthread_create(&vm->thread, NULL, vm_thread, vm)) != 0) {
    sbx_guest_destroy(vm->g);
    free(vm);
    return q_error_make(err, r, "pod VM thread");
  }
  *out = vm;
  return 0;
}

/* Under p->lock: the pod VM. One booted early (vm_boot_early) is waited
 * for; without one it boots here, with c's root as the boot process's. */
static int vm_get(struct pod *p, struct ctr *c, struct pod_vm **out, q_error **err)
{
  while (p->vm_booting)
    pthread_cond_wait(&p->changed, &p->lock);
  if (p->vm) {
    *out = p->vm;
    return p->vm->dead ? q_error_make(err, EPIPE, "the pod VM has stopped (%d)", p->vm->status)
                       : 0;
  }
  struct pod_vm *vm = NULL;
  int r = vm_new(p, c->rootfd, true, &vm, err);
  if (r < 0)
    return r;
  q_info(p->id, "pod VM booted at the first create (one VM for every container)");
  p->vm = *out = vm;
  return 0;
}

static void *vm_boot_thread(void *arg)
{
  struct pod *p = arg;
  struct pod_vm *vm = NULL;
  q_error *err = NULL;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int r = vm_new(p, p->boot_root, false, &vm, &err);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (r < 0)
    q_warn(p->id, "early pod VM boot: %s (the first create boots it)", q_error_msg(err));
  else
    q_info(p->id, "pod VM booted early in %.1f ms (one VM for every container)",
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
  q_error_free(&err);
  pthread_mutex_lock(&p->lock);
  if (r == 0)
    p->vm = vm;
  p->vm_booting = false;
  pthread_cond_broadcast(&p->changed);
  pthread_mutex_unlock(&p->lock);
  /* This thread runs the VM: one thread start less before the guest's
   * first instruction (each waited for a CPU at load). */
  return r == 0 ? vm_thread(vm) : NULL;
}

/* Boots the pod VM now, on a thread of its own, so that its creation and
 * the guest kernel's start overlap RunPodSandbox's answer and quarkd's
 * part of the first CreateContainer (rootfs, records) instead of adding to
 * that create. Its boot process's root is p->boot_root, an empty directory
 * (the containers each bring their own root). */
void vm_boot_early(struct pod *p)
{
  if (!p->shared_vm || p->boot_root < 0)
    return;
  pthread_attr_t attr;
  pthread_t t;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_mutex_lock(&p->lock);
  p->vm_booting = pthread_create(&t, &attr, vm_boot_thread, p) == 0;
  pthread_mutex_unlock(&p->lock);
  pthread_attr_destroy(&attr);
}

/* The guest reads and writes stdio handles with QK_RW_NOWAIT and parks
 * the task when nothing is ready (task/container.c): O_NONBLOCK for the
 * files that have no RWF_NOWAIT. Only the guest uses these descriptions
 * (the pod keeps its ends for shutdown and draining). */
static int64_t hfd_install_stdio(struct pod_vm *vm, int d)
{
  int fl = fcntl(d, F_GETFL);
  if (fl >= 0)
    fcntl(d, F_SETFL, fl | O_NONBLOCK);
  return sbx_guest_hfd_install(vm->g, d);
}

static int64_t hfd_dup(struct pod_vm *vm, int fd)
{
  int d = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : open("/dev/null", O_RDWR | O_CLOEXEC);
  if (d < 0)
    return -errno;
  return sbx_guest_hfd_install(vm->g, d);
}

/* A stdio handle: a dup of fd (the description is shared with the pod's
 * own copy, which the pod only shuts down), or /dev/null; non-blocking. */
static int64_t hfd_dup_stdio(struct pod_vm *vm, int fd)
{
  int d = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : open("/dev/null", O_RDWR | O_CLOEXEC);
  if (d < 0)
    return -errno;
  return hfd_install_stdio(vm, d);
}

/* Pipe for one output stream: read end in *rd, write end a handle. */
static int64_t hfd_pipe(struct pod_vm *vm, int *rd)
{
  int pp[2];
  if (pipe2(pp, O_CLOEXEC) < 0)
    return -errno;
  int64_t h = hfd_install_stdio(vm, pp[1]);
  if (h < 0) {
    close(pp[0]);
    return h;
  }
  *rd = pp[0];
  return h;
}

/* Drains the two read ends into sink (stream 1, 2) until both are at EOF. */
static void drain(int fds[2], void *ctx, ssize_t (*sink)(void *, int, const struct iovec *, int))
{
  static const size_t BUF = 64 * 1024;
  char *buf = malloc(BUF);
  while (fds[0] >= 0 || fds[1] >= 0) {
    struct pollfd pf[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
    if (poll(pf, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    for (int i = 0; i < 2; i++) {
      if (fds[i] < 0 || !pf[i].revents)
        continue;
      ssize_t n = buf ? read(fds[i], buf, BUF) : 0;
      if (n > 0) {
        struct iovec iov = {buf, (size_t)n};
        sink(ctx, i + 1, &iov, 1);
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(fds[i]);
        fds[i] = -1;
      }
    }
  }
  for (int i = 0; i < 2; i++)
    if (fds[i] >= 0) {
      close(fds[i]);
      fds[i] = -1;
    }
  free(buf);
}

static void *vm_ctr_thread(void *arg)
{
  struct ctr *c = arg;
  struct pod *p = c->pod;
  drain(c->io, c, log_sink);
  log_flush(c);
  pthread_mutex_lock(&p->vm->lock);
  int status = c->vm_exited ? c->vm_status : SBX_EXIT_GUEST_FAILURE;
  pthread_mutex_unlock(&p->vm->lock);
  pthread_mutex_lock(&p->lock);
  c->state = CTR_EXITED;
  c->exit_code = status;
  c->finished_at = q_now_ns();
  pthread_cond_broadcast(&p->changed);
  pthread_mutex_unlock(&p->lock);
  q_info(p->id, "container %.12s exited with %d", c->id, status);
  return NULL;
}

/* With QUARK_POD_STATS=1: the VM's QCalls, exits and emulated ring-0
 * instructions so far, one log line (where a CREATE's time goes). */
static void vm_log_stats(struct pod_vm *vm, const char *what, double ms)
{
  static int on = -1;
  if (on < 0)
    on = getenv("QUARK_POD_STATS") && *getenv("QUARK_POD_STATS") == '1';
  if (!on)
    return;
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  if (!f)
    return;
  sbx_guest_write_stats(vm->g, f);
  fclose(f);
  static const char *const keys[] = {"qcalls ", "kvm_exits ", "kvm_insn_emulation ",
                                     "qcalls_inline "};
  unsigned long long v[4] = {0};
  char ops[256] = ""; /* "op:count" of each QCall opcode served (qk_qcall.h) */
  size_t olen = 0;
  for (const char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    for (size_t k = 0; k < Q_ARRAY_SIZE(keys); k++)
      if (!strncmp(l, keys[k], strlen(keys[k])))
        v[k] = strtoull(l + strlen(keys[k]), NULL, 10);
    unsigned op;
    unsigned long long cnt;
    if (sscanf(l, "qcall_op_%u %llu", &op, &cnt) == 2 && olen < sizeof ops - 24)
      olen += (size_t)snprintf(ops + olen, sizeof ops - olen, " %u:%llu", op, cnt);
  }
  /* the boot's phases (sbx_guest_write_stats), us */
  char boot[160] = "";
  size_t blen = 0;
  for (const char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    char name[40];
    double us;
    if (sscanf(l, "boot_%39[a-z_] %lf", name, &us) == 2 && blen < sizeof boot - 48) {
      size_t nl = strlen(name);
      if (nl > 3 && !strcmp(name + nl - 3, "_us"))
        name[nl - 3] = 0;
      blen += (size_t)snprintf(boot + blen, sizeof boot - blen, "%s%s %.0f",
                               blen ? " " : "boot us: ", name, us);
    }
  }
  free(buf);
  q_info(vm->pod->id,
         "pod VM %s (%.1f ms): qcalls %llu (inline %llu; by op%s) exits %llu emulated %llu; %s",
         what, ms, v[0], v[3], ops, v[1], v[2], boot);
}

static double ms_since(const struct timespec *t0)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

int vm_ctr_create(struct pod *p, struct ctr *c, q_error **err)
{
  struct pod_vm *vm = NULL;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pthread_mutex_lock(&p->lock);
  int r = vm_get(p, c, &vm, err);
  pthread_mutex_unlock(&p->lock);
  if (r < 0)
    return r;
  pthread_mutex_lock(&vm->lock);
  for (unsigned i = 0; i < QK_CTL_MAX_CONTAINERS && c->cid < 0; i++)
    if (!vm->slot[i]) {
      vm->slot[i] = c;
      c->cid = (int)i;
    }
  pthread_mutex_unlock(&vm->lock);
  if (c->cid < 0)
    return q_error_make(err, EMFILE, "the pod VM has %u containers already",
                        QK_CTL_MAX_CONTAINERS);
  int64_t h;
  if ((h = c->hfd[0] = hfd_dup(vm, c->rootfd)) < 0 ||
      (h = c->hfd[1] = (c->tty ? hfd_dup : hfd_dup_stdio)(vm, c->stdin_sp[1])) < 0 ||
      (h = c->hfd[2] = hfd_pipe(vm, &c->io[0])) < 0 ||
      (h = c->hfd[3] = hfd_pipe(vm, &c->io[1])) < 0)
    return q_error_make(err, (int)-h, "container handles");
  size_t len;
  uint32_t flags = c->stdin_sp[1] >= 0 ? QK_CTL_SPEC_STDIN : 0;
  if (c->pidns_pod)
    flags |= QK_CTL_SPEC_PIDNS_POD;
  if (c->pidns_target >= 0)
    flags |= QK_CTL_SPEC_PIDNS_TARGET;
  if (c->tty) {
    /* The terminal's output comes back on stdin_sp[0]: drained as stdout
     * instead of the pipe. The guest's handle is the only other end, so
     * its close at exit is the drain's EOF. */
    int d = fcntl(c->stdin_sp[0], F_DUPFD_CLOEXEC, 3);
    if (d < 0)
      return q_error_make(err, errno, "tty handle");
    close(c->io[0]);
    c->io[0] = d;
    close(c->stdin_sp[1]);
    c->stdin_sp[1] = -1;
    flags |= QK_CTL_SPEC_STDIN | QK_CTL_SPEC_TTY;
  }
  void *spec = vm_spec(c, c->argv, c->argc, flags, c->hfd, &len);
  if (!spec)
    return q_error_make(err, ENOMEM, "container spec");
  double boot_ms = ms_since(&t0);
  vm_log_stats(vm, "before create", boot_ms);
  h = vm_cmd(vm, QK_CTL_CREATE, (uint32_t)c->cid, 0, 0, spec, len, NULL);
  free(spec);
  double ms = ms_since(&t0);
  q_info(p->id, "container %d created in %.1f ms (VM and handles %.1f ms)", c->cid, ms, boot_ms);
  vm_log_stats(vm, "after create", ms);
  if (h < 0)
    return q_error_make(err, (int)-h, "create %s in the pod VM", c->argv[0]);
  return 0;
}

/* ctr_free's part: DELETE in the guest, then its handles. */
void vm_ctr_release(struct ctr *c)
{
  struct pod_vm *vm = c->pod->vm;
  if (!vm || c->cid < 0)
    return;
  int64_t r = vm_cmd(vm, QK_CTL_DELETE, (uint32_t)c->cid, 0, 0, NULL, 0, NULL);
  if (r < 0 && r != -ESRCH && r != -EPIPE)
    q_warn(c->pod->id, "delete %.12s in the pod VM: %s", c->id, strerror((int)-r));
  pthread_mutex_lock(&vm->lock);
  vm_close_hfds(vm, c->hfd, 4);
  vm->slot[c->cid] = NULL;
  c->cid = -1;
  pthread_mutex_unlock(&vm->lock);
  for (int i = 0; i < 2; i++)
    if (c->io[i] >= 0) {
      close(c->io[i]);
      c->io[i] = -1;
    }
}

int vm_ctr_start(struct pod *p, const char *id, q_error **err)
{
  pthread_mutex_lock(&p->lock);
  struct ctr *c = pod_find_ctr(p, id);
  int r;
  if (!c) {
    r = q_error_make(err, ENOENT, "no container %s", id ? id : "");
  } else if (c->state != CTR_CREATED) {
    r = q_error_make(err, EBUSY, "container %s was started already", id);
  } else if ((r = pthread_create(&c->thread, NULL, vm_ctr_thread, c)) != 0) {
    r = q_error_make(err, r, "container thread");
  } else {
    c->state = CTR_RUNNING;
    c->started_at = q_now_ns();
  }
  uint32_t cid = c ? (uint32_t)c->cid : 0;
  pthread_mutex_unlock(&p->lock);
  if (r < 0)
    return r;
  int64_t s = vm_cmd(p->vm, QK_CTL_START, cid, 0, 0, NULL, 0, NULL);
  if (s < 0) {
    /* It never ran: it ends now (the drain thread marks it exited). */
    int64_t h[3] = {-1, -1, -1};
    pthread_mutex_lock(&p->vm->lock);
    if (!c->vm_exited) {
      c->vm_exited = true;
      c->vm_status = SBX_EXIT_GUEST_FAILURE;
      memcpy(h, c->hfd + 1, sizeof h);
      c->hfd[1] = c->hfd[2] = c->hfd[3] = -1;
    }
    pthread_mutex_unlock(&p->vm->lock);
    vm_close_hfds(p->vm, h, 3);
    if (s == -ESRCH && c->pidns_target >= 0)
      return q_error_make(err, ESRCH, "start %.12s in the pod VM: the pid namespace of its "
                          "target (pid mode TARGET) ended before it started", id);
    return q_error_make(err, (int)-s, "start %.12s in the pod VM", id);
  }
  return 0;
}

/* The signal's ACK is stuck behind a read of the container's stdin: as in
 * per-VM mode, the container ends with 128 + signal (unless the guest
 * reports a signal death itself) and its stdin is shut down. */
struct stall_kill {
  struct ctr *c;
  int status;
};

static void stall_kill(struct pod_vm *vm, void *arg)
{
  struct stall_kill *k = arg;
  pthread_mutex_lock(&vm->lock);
  if (!k->c->vm_exited)
    k->c->forced_status = k->status;
  pthread_mutex_unlock(&vm->lock);
  shutdown(k->c->stdin_sp[1], SHUT_RDWR);
}

int vm_ctr_signal(struct pod *p, const char *id, int signo, q_error **err)
{
  pthread_mutex_lock(&p->lock);
  struct ctr *c = pod_find_ctr(p, id);
  int r = 0;
  bool running = false;
  uint32_t cid = 0;
  if (!c) {
    r = q_error_make(err, ENOENT, "no container %s", id ? id : "");
  } else if (c->state == CTR_RUNNING) {
    running = true;
    cid = (uint32_t)c->cid;
  }
  pthread_mutex_unlock(&p->lock);
  if (!running)
    return r;
  struct stall_kill k = {c, 128 + signo};
  int64_t s = vm_cmd_stall(p->vm, QK_CTL_SIGNAL, cid, 0, signo, NULL, 0, NULL,
                           !sig_ignored(signo) && c->stdin_sp[1] >= 0 ? stall_kill : NULL, &k);
  if (s < 0 && s != -ESRCH && s != -EPIPE)
    return q_error_make(err, (int)-s, "signal %.12s in the pod VM", id);
  return 0;
}

int vm_ctr_stats(struct pod *p, const char *id, json_t *out, q_error **err)
{
  pthread_mutex_lock(&p->lock);
  struct ctr *c = pod_find_ctr(p, id);
  int cid = c ? c->cid : -1;
  pthread_mutex_unlock(&p->lock);
  if (!c)
    return q_error_make(err, ENOENT, "no container %s", id);
  uint64_t st[3] = {0, 0, 0};
  if (cid >= 0 && vm_cmd(p->vm, QK_CTL_STATS, (uint32_t)cid, 0, 0, NULL, 0, st) < 0)
    memset(st, 0, sizeof st);
  json_object_set_new(out, "timestamp", json_integer(q_now_ns()));
  json_object_set_new(out, "cpu_ns", json_integer((json_int_t)st[1]));
  json_object_set_new(out, "memory_bytes", json_integer((json_int_t)st[0]));
  json_object_set_new(out, "processes", json_integer((json_int_t)st[2]));
  json_object_set_new(out, "vm_cpu_ns", json_integer((json_int_t)sbx_guest_cpu_ns(p->vm->g)));
  return 0;
}

int vm_ctr_update(struct pod *p, const char *id, uint64_t mem_limit, q_error **err)
{
  pthread_mutex_lock(&p->lock);
  struct ctr *c = pod_find_ctr(p, id);
  int cid = c ? c->cid : -1;
  if (c)
    c->mem_limit = mem_limit;
  pthread_mutex_unlock(&p->lock);
  if (!c)
    return q_error_make(err, ENOENT, "no container %s", id ? id : "");
  if (cid < 0)
    return 0;
  struct qk_ctl_resources res = {.mem_limit = mem_limit};
  int64_t r = vm_cmd(p->vm, QK_CTL_UPDATE, (uint32_t)cid, 0, 0, &res, sizeof res, NULL);
  if (r == -ESRCH || r == -EPIPE)
    return 0; /* it has ended */
  return r < 0 ? q_error_make(err, (int)-r, "update %.12s in the pod VM", id) : 0;
}

/* An exec in the pod VM: handles (root of c; stdin, stdout, stderr) from
 * fds (-1: /dev/null) or pipes (rd != NULL). Registers x, sends EXEC. */
static int vm_exec_start(struct pod *p, const char *id, char *const *argv, size_t argc,
                         const int fds[3], int rd[2], struct vm_exec *x, q_error **err)
{
  pthread_mutex_lock(&p->lock);
  struct ctr *c = pod_find_ctr(p, id);
  int r = 0;
  if (!c)
    r = q_error_make(err, ENOENT, "no container %s", id ? id : "");
  else if (c->state != CTR_RUNNING)
    r = q_error_make(err, EBUSY, "container %s is not running", id);
  struct pod_vm *vm = p->vm;
  int64_t root = c ? c->hfd[0] : -1;
  void *spec = NULL;
  size_t len = 0;
  x->hfd[0] = x->hfd[1] = x->hfd[2] = -1;
  if (r == 0) {
    int64_t h;
    x->cid = (uint32_t)c->cid;
    /* One stream both ways is a terminal: the guest's tty layer reads it,
     * with blocking handles. */
    int64_t (*dup_io)(struct pod_vm *, int) =
        fds[0] >= 0 && fds[0] == fds[1] ? hfd_dup : hfd_dup_stdio;
    if ((h = x->hfd[0] = dup_io(vm, fds[0])) < 0 ||
        (h = x->hfd[1] = rd ? hfd_pipe(vm, &rd[0]) : dup_io(vm, fds[1])) < 0 ||
        (h = x->hfd[2] = rd ? hfd_pipe(vm, &rd[1]) : dup_io(vm, fds[2])) < 0)
      r = q_error_make(err, (int)-h, "exec handles");
    int64_t hh[4] = {root, x->hfd[0], x->hfd[1], x->hfd[2]};
    /* One stream as stdin and stdout: a terminal (pod_exec_start_tty). */
    uint32_t fl = fds[0] < 0 ? 0 : fds[0] == fds[1] ? QK_CTL_SPEC_STDIN | QK_CTL_SPEC_TTY
                                                    : QK_CTL_SPEC_STDIN;
    if (r == 0 && !(spec = vm_spec(c, argv, argc, fl, hh, &len)))
      r = q_error_make(err, ENOMEM, "exec spec");
  }
  pthread_mutex_unlock(&p->lock);
  if (r == 0) {
    pthread_mutex_lock(&vm->lock);
    x->xid = ++vm->xid_seq;
    x->next = vm->execs;
    vm->execs = x;
    pthread_mutex_unlock(&vm->lock);
    int64_t s = vm_cmd(vm, QK_CTL_EXEC, x->cid, x->xid, 0, spec, len, NULL);
    if (s < 0) {
      pthread_mutex_lock(&vm->lock);
      for (struct vm_exec **pp = &vm->execs; *pp; pp = &(*pp)->next)
        if (*pp == x) {
          *pp = x->next;
          break;
        }
      pthread_mutex_unlock(&vm->lock);
      r = q_error_make(err, (int)-s, "exec %s in the pod VM", argv[0]);
    }
  }
  free(spec);
  if (r < 0 && vm) {
    vm_close_hfds(vm, x->hfd, 3);
    if (rd)
      for (int i = 0; i < 2; i++)
        if (rd[i] >= 0) {
          close(rd[i]);
          rd[i] = -1;
        }
  }
  return r;
}

static void vm_exec_unlink(struct pod_vm *vm, struct vm_exec *x)
{
  pthread_mutex_lock(&vm->lock);
  for (struct vm_exec **pp = &vm->execs; *pp; pp = &(*pp)->next)
    if (*pp == x) {
      *pp = x->next;
      break;
    }
  pthread_mutex_unlock(&vm->lock);
}

struct drain_arg {
  int fds[2];
  void *ctx;
  ssize_t (*sink)(void *, int, const struct iovec *, int);
};

static void *drain_thread(void *arg)
{
  struct drain_arg *d = arg;
  drain(d->fds, d->ctx, d->sink);
  return NULL;
}

int vm_ctr_exec(struct pod *p, const char *id, char **argv, size_t argc,
                       json_int_t timeout_ms, struct capture *k, int *status, q_error **err)
{
  struct vm_exec x = {0};
  struct drain_arg d = {{-1, -1}, k, capture_sink};
  static const int none[3] = {-1, -1, -1};
  int r = vm_exec_start(p, id, argv, argc, none, d.fds, &x, err);
  if (r < 0)
    return r;
  struct pod_vm *vm = p->vm;
  pthread_t t;
  bool drained = pthread_create(&t, NULL, drain_thread, &d) == 0;
  struct timespec dl;
  clock_gettime(CLOCK_MONOTONIC, &dl);
  if (timeout_ms > 0) {
    dl.tv_sec += (time_t)(timeout_ms / 1000);
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
      dl.tv_sec++;
      dl.tv_nsec -= 1000000000;
    }
  }
  bool timed_out = false;
  pthread_mutex_lock(&vm->lock);
  while (!x.done) {
    int w = timeout_ms > 0 && !timed_out ? pthread_cond_timedwait(&vm->cond, &vm->lock, &dl)
                                         : pthread_cond_wait(&vm->cond, &vm->lock);
    if (w == ETIMEDOUT && !x.done) {
      timed_out = true;
      pthread_mutex_unlock(&vm->lock);
      vm_cmd(vm, QK_CTL_EXEC_KILL, x.cid, x.xid, SIGKILL, NULL, 0, NULL);
      pthread_mutex_lock(&vm->lock);
    }
  }
  pthread_mutex_unlock(&vm->lock);
  vm_exec_unlink(vm, &x);
  if (drained)
    pthread_join(t, NULL);
  else
    drain(d.fds, k, capture_sink);
  *status = x.status;
  if (timed_out)
    return q_error_make(err, ETIMEDOUT, "exec timed out after %lld ms", (long long)timeout_ms);
  return 0;
}

int vm_stream_exec(struct pod *p, const char *id, char **argv, size_t argc,
                          const int fds[3], struct pod_exec *x, q_error **err)
{
  struct vm_exec *vx = calloc(1, sizeof *vx);
  if (!vx)
    return q_error_make(err, ENOMEM, "exec");
  vx->stream = x;
  x->vmx = vx;
  pthread_mutex_lock(&p->lock);
  snprintf(x->id, sizeof x->id, "x%llu", (unsigned long long)++p->exec_seq);
  snprintf(x->cid, sizeof x->cid, "%s", id ? id : "");
  x->next = p->execs;
  p->execs = x;
  pthread_mutex_unlock(&p->lock);
  int r = vm_exec_start(p, id, argv, argc, fds, NULL, vx, err);
  if (r < 0) {
    pthread_mutex_lock(&p->lock);
    for (struct pod_exec **pp = &p->execs; *pp; pp = &(*pp)->next)
      if (*pp == x) {
        *pp = x->next;
        break;
      }
    pthread_mutex_unlock(&p->lock);
    free(vx);
  }
  return r;
}

int vm_exec_kill(struct pod *p, struct pod_exec *x, int signo)
{
  if (!sig_ignored(signo) && x->stdin_fd >= 0)
    shutdown(x->stdin_fd, SHUT_RDWR);
  int64_t s = vm_cmd(p->vm, QK_CTL_EXEC_KILL, x->vmx->cid, x->vmx->xid, signo, NULL, 0, NULL);
  return s == -ESRCH ? 0 : (int)s;
}

void vm_exec_free(struct pod *p, struct pod_exec *x)
{
  vm_exec_unlink(p->vm, x->vmx);
  free(x->vmx);
  x->vmx = NULL;
}

/* Pod shutdown: the VM stops (its thread marks everything ended). */
void vm_stop(struct pod *p)
{
  struct pod_vm *vm = p->vm;
  sbx_guest_stop(vm->g, 128 + SIGKILL);
}
