/* Containers of a pod in one guest: the task layer behind the pod control
 * channel (include/qk/ctl.h). Each container has its own root directory
 * handle (every path of its processes resolves beneath it), stdio on the
 * handles the host named, and a pid namespace: its own (CRI pid mode
 * CONTAINER: its init is pid 1 there; orphans go to it), or with
 * QK_CTL_SPEC_PIDNS_POD the pod's shared one (CRI mode POD, Kubernetes
 * shareProcessNamespace): the boot namespace, whose pid 1 is the pod VM's
 * idle boot process, made to reap the orphans it gets (SIGCHLD ignored),
 * as the pause container does; the containers' inits are ordinary
 * processes there (ppid 0), and every container's processes see and
 * signal each other's. With QK_CTL_SPEC_PIDNS_TARGET (CRI mode TARGET,
 * kubectl debug --target) the new container joins the namespace of a
 * running container (whatever that one's is: its own, the pod's, or its
 * own target's): its init is an ordinary member there (ppid 0), pids come
 * from that namespace, the target's init stays its pid 1 and gets the
 * orphans. A process's container is qk_process.ctr (set here, inherited by
 * fork), not its namespace: memory charges, stats and the pids limit go by
 * it. Execs run in the container's namespace and root with no parent:
 * their end is reported to the host, not waited for. When a container's
 * init ends, every other process of the container is killed (as when a pid
 * namespace's init dies on Linux, or as runc kills the rest of the
 * container's cgroup in a shared namespace); when it was the init of its
 * own namespace, so is every other process of that namespace, those of
 * containers that joined it included (Linux kills a pid namespace whose
 * init died: the joined container ends, killed by SIGKILL). The other
 * containers' processes live on. */
#include <qk/arch.h>
#include <qk/cputime.h>
#include <qk/ctl.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/task.h>
#include <qk/tty.h>

#define NOFILE_DEFAULT 1024
#define CTL_STARTING ((const void *)&containers)

struct container {
  bool used, started, exited;
  struct qk_pidns ns;   /* its own namespace (unused in POD and TARGET pid modes) */
  struct qk_pidns *pns; /* the one its processes run in: &ns, &qk_boot_pidns or a
                           target's (TARGET) */
  uint32_t pids_max;    /* tasks it may have, 0: no limit (task/proc.c) */
  struct qk_process *init;
  int status;
  uint32_t flags;
  struct qk_process *oom_victim; /* last process killed for the memory limit */
};

static struct container containers[QK_CTL_MAX_CONTAINERS];

/* Where the zombies of other containers left in a deleted container's own
 * namespace go (joined ones, killed with it, not yet deleted): a namespace
 * no live process has, so no lookup or /proc listing finds them, and the
 * slot's next container starts with an empty one. */
static struct qk_pidns gone_pidns;

static uint32_t strings_len(const struct qk_ctl_process *s)
{
  uint32_t n = 0;
  for (uint32_t i = 0; i < s->argc; i++)
    n += (uint32_t)strlen(s->argv[i]) + 1;
  for (uint32_t i = 0; i < s->envc; i++)
    n += (uint32_t)strlen(s->envp[i]) + 1;
  return n;
}

/* ---- container stdio ----
 * A container's stdio handles are pipes and sockets of the sandbox (the
 * log pipes, the stdin socket, a streaming client's sockets), made
 * non-blocking on the host. Reads and writes ask the host for what is
 * ready now (QK_RW_NOWAIT): a blocking read of an idle stdin, or a write to
 * a client that stopped reading, parks the task and retries every
 * STDIO_RETRY_NS instead of holding the vCPU's QCall worker (which the
 * whole VM, the pod's control events included, waits on). A poll/select
 * that found a container's stdio not ready is woken at the same pace
 * (qk_container_stdio_tick, called by the ctl layer). Everything else
 * (fstat, ioctl, release: the handles belong to the sandbox) is hostfs's. */
#define STDIO_RETRY_NS 2000000ull
#define STDIO_POLLIN 0x001
#define STDIO_POLLOUT 0x004

static struct qk_file_ops stdio_ops;
static bool stdio_pollers;

static int64_t stdio_rw(struct qk_file *f, const struct qk_uio *u, int64_t off, bool write)
{
  if (off >= 0)
    return -QK_ESPIPE;
  struct qk_uiov v;
  v.n = 0;
  v.bytes = 0;
  for (unsigned i = 0; i < u->cnt; i++) {
    if (!u->iov[i].len)
      continue;
    int64_t got = qk_uiov_add(&v, u->iov[i].base, u->iov[i].len, !write);
    if (got < 0) {
      if (!v.n)
        return got;
      break;
    }
    if ((uint64_t)got < u->iov[i].len)
      break; /* list full: a short transfer */
  }
  if (!v.n)
    return 0;
  int64_t r = qk_qcall(write ? QK_OP_PWRITEV : QK_OP_PREADV, (uint64_t)f->hfd, qk_va_to_pa(v.seg),
                       v.n, (uint64_t)-1, QK_RW_NOWAIT, 0);
  if (r != -QK_EAGAIN || (f->flags & L_O_NONBLOCK))
    return r;
  /* Nothing ready: park (a signal ends the wait: qk_block says so), then
   * the syscall runs again. */
  return qk_block(f, qk_time_monotonic_ns() + STDIO_RETRY_NS);
}

static int stdio_poll(struct qk_file *f)
{
  struct qk_net_pollfd pf = {(uint32_t)f->hfd, (int16_t)(STDIO_POLLIN | STDIO_POLLOUT), 0};
  if (qk_qcall(QK_OP_NET_POLL, qk_va_to_pa(&pf), 1, 0, 0, 0, 0) < 0)
    return STDIO_POLLIN | STDIO_POLLOUT; /* as a file with no poll: always ready */
  if (!(pf.revents & ((f->flags & L_O_ACCMODE) == L_O_RDONLY ? STDIO_POLLIN : STDIO_POLLOUT)))
    stdio_pollers = true;
  return pf.revents;
}

void qk_container_stdio_tick(void)
{
  if (stdio_pollers) {
    stdio_pollers = false;
    qk_wake(&qk_poll_wq);
  }
}

static struct qk_file *stdio_file(int which, int hfd)
{
  struct qk_file *f = qk_hostfs_stdio_hfd(which, hfd);
  if (!f)
    return NULL;
  if (!stdio_ops.rw) {
    stdio_ops = *f->ops;
    stdio_ops.rw = stdio_rw;
    stdio_ops.poll = stdio_poll;
  }
  f->ops = &stdio_ops;
  return f;
}

/* A process of container c running spec, parked until started. */
static int spawn(struct container *c, const struct qk_ctl_process *spec, int xid,
                 struct qk_process **out)
{
  int r = -QK_ENOMEM;
  struct qk_process *p = qk_kzalloc(sizeof(*p));
  struct qk_task *t = qk_kzalloc(sizeof(*t));
  char *strings = NULL;
  if (!p || !t)
    goto fail;
  int pid = qk_alloc_pid(c->pns);
  if (pid < 0) {
    r = pid;
    goto fail;
  }
  p->pid = p->pgid = p->sid = pid;
  p->ns = c->pns;
  p->ctr = (int)(c - containers) + 1;
  p->ctl_xid = xid;
  p->uid = p->euid = spec->uid;
  p->gid = p->egid = spec->gid;
  struct qk_sec_spec sec = {.flags = spec->sec_flags | QK_SEC_GROUPS,
                            .caps = spec->sec_caps,
                            .filter = spec->sec_filter,
                            .filter_len = spec->sec_filter_len,
                            .ngroups = spec->ngroups,
                            .groups = spec->groups};
  if ((r = qk_sec_init(p, t, &sec)) < 0) /* groups, capabilities, seccomp (task/cred.c) */
    goto fail;
  r = -QK_ENOMEM;
  /* The boot process's limits, else task.c's defaults (a pod VM has no
   * boot process: an infinite RLIMIT_NOFILE made every dup2 fail). */
  /* A pod VM's boot process is the host's built-in pause() loop: its
   * limits are not the containers'. */
  struct qk_process *init = qk_boot->ctl_gpa ? NULL : qk_boot_pidns.init;
  for (int i = 0; i < L_RLIM_NLIMITS; i++)
    p->rlim[i] = init ? init->rlim[i] : (struct l_rlimit){L_RLIM_INFINITY, L_RLIM_INFINITY};
  if (!init) {
    p->rlim[L_RLIMIT_STACK].cur = 8ull << 20;
    p->rlim[L_RLIMIT_CORE].cur = 0;
    p->rlim[L_RLIMIT_NOFILE].cur = NOFILE_DEFAULT;
    p->rlim[L_RLIMIT_NOFILE].max = QK_FD_MAX;
    p->rlim[L_RLIMIT_MEMLOCK].cur = p->rlim[L_RLIMIT_MEMLOCK].max = 8ull << 20;
    p->rlim[L_RLIMIT_NPROC].cur = p->rlim[L_RLIMIT_NPROC].max = 4096;
  }
  p->start_ns = qk_time_monotonic_ns();
  p->exit_signal = 17;
  qk_strlcpy(p->exe, spec->argv[0], sizeof(p->exe));
  p->fs = qk_kzalloc(sizeof(*p->fs));
  p->files = qk_fdtable_new(NOFILE_DEFAULT);
  /* Any address space has the kernel half: the boot one, else the live one. */
  uint64_t kcr3 = qk_boot_pidns.init && qk_boot_pidns.init->mm ? qk_boot_pidns.init->mm->cr3
                                                               : qk_arch_current_cr3();
  p->mm = qk_mm_new(kcr3);
  if (!p->fs || !p->files || !p->mm)
    goto fail;
  p->fs->refs = 1;
  p->fs->umask = 022;
  p->fs->root_hfd = spec->root_hfd;
  qk_strlcpy(p->fs->cwd, spec->cwd && spec->cwd[0] == '/' ? spec->cwd : "/", sizeof(p->fs->cwd));
  qk_path_normalize(p->fs->cwd);
  /* tty: one terminal (fs/tty.c) on the stdin handle as fds 0-2, the
   * controlling terminal of this process's session. */
  struct qk_file *tty = spec->flags & QK_CTL_SPEC_TTY ? qk_tty_new((int)spec->stdio_hfd[0]) : NULL;
  if ((spec->flags & QK_CTL_SPEC_TTY) && !tty)
    goto fail;
  for (int fd = 0; fd < 3; fd++) {
    struct qk_file *f =
        tty ? (fd ? qk_file_ref(tty) : tty) : stdio_file(fd, (int)spec->stdio_hfd[fd]);
    if (!f || qk_fd_install(p->files, f, fd, false) != fd)
      goto fail;
  }
  qk_tty_set_ctty(tty, p);
  t->tid = pid;
  t->proc = p;
  t->altstack_flags = 2;
  p->threads = t;
  p->nr_threads = 1;
  uint32_t len = strings_len(spec);
  strings = qk_kmalloc(len ? len : 1);
  if (!strings)
    goto fail;
  char *o = strings;
  for (uint32_t i = 0; i < spec->argc; i++)
    o += qk_strlcpy(o, spec->argv[i], len) + 1;
  for (uint32_t i = 0; i < spec->envc; i++)
    o += qk_strlcpy(o, spec->envp[i], len) + 1;
  /* The new process's memory is its container's, whatever task the
   * control channel is served on. */
  int prev_group = qk_mem_charge_to(p->ctr);
  r = qk_exec_kernel(t, spec->argv[0], strings, len, spec->argc, spec->envc);
  qk_mem_charge_to(prev_group);
  qk_kfree(strings);
  strings = NULL;
  if (r)
    goto fail;
  p->next_all = qk_all_procs;
  qk_all_procs = p;
  qk_sched_add(t);
  t->state = QK_TASK_BLOCKED; /* until START (or at once for execs) */
  t->wchan = CTL_STARTING;
  *out = p;
  return 0;
fail:
  qk_kfree(strings);
  if (p) {
    if (p->mm)
      qk_mm_destroy(p->mm);
    if (p->files)
      qk_fdtable_free(p->files);
    qk_kfree(p->fs);
  }
  qk_kfree(p);
  qk_kfree(t);
  return r;
}

int qk_container_create(uint32_t cid, struct qk_ctl_process *spec)
{
  if (cid >= QK_CTL_MAX_CONTAINERS)
    return -QK_EINVAL;
  struct container *c = &containers[cid];
  if (c->used)
    return -QK_EEXIST;
  /* The shared namespace's init is the pod VM's boot process. */
  struct qk_process *pod_init = qk_boot_pidns.init;
  bool shared = spec->flags & QK_CTL_SPEC_PIDNS_POD;
  if (shared && (!pod_init || !qk_boot->ctl_gpa))
    return -QK_EINVAL;
  /* TARGET: the namespace of a container that runs now (its init alive,
   * so the namespace is, whoever owns it). */
  struct qk_pidns *join = NULL;
  if (spec->flags & QK_CTL_SPEC_PIDNS_TARGET) {
    uint32_t t = spec->pidns_cid;
    if (shared || t >= QK_CTL_MAX_CONTAINERS || t == cid)
      return -QK_EINVAL;
    if (!containers[t].used || !containers[t].started || containers[t].exited)
      return -QK_ESRCH;
    join = containers[t].pns;
  }
  memset(c, 0, sizeof(*c));
  c->ns.last_pid = 0;
  c->pns = join ? join : shared ? &qk_boot_pidns : &c->ns;
  c->pids_max = spec->pids_max; /* fork/clone past it: EAGAIN (task/proc.c) */
  struct qk_process *p;
  int r = spawn(c, spec, 0, &p);
  if (r)
    return r;
  c->used = true;
  c->init = p;
  /* The shared init's children (orphans) are reaped as they end. */
  if (shared)
    pod_init->sigactions[17 - 1].handler = 1; /* SIGCHLD: SIG_IGN */
  else if (c->pns == &c->ns)
    c->ns.init = p;
  qk_mem_set_limit((int)cid + 1, spec->mem_limit);
  qk_ctl_process_free(spec);
  return 0;
}

int qk_container_update(uint32_t cid, uint64_t mem_limit)
{
  if (cid >= QK_CTL_MAX_CONTAINERS || !containers[cid].used)
    return -QK_ESRCH;
  /* A limit below what is in use takes effect at the next allocation
   * (which is then refused, and its process OOM-killed). */
  qk_mem_set_limit((int)cid + 1, mem_limit);
  return 0;
}

/* The memory limit of group (container slot + 1) refused an allocation:
 * the allocating process is killed, as the memory cgroup's OOM killer
 * would (Linux picks the largest; here the one asking is the one
 * growing), and its end is reported with QK_CTL_EXIT_OOM. */
void qk_mem_oom(int group)
{
  struct qk_task *t = qk_current();
  if (group < 1 || group > (int)QK_CTL_MAX_CONTAINERS || !t || !t->proc || t->proc->ctr != group)
    return; /* building a process for the container: the create fails with ENOMEM */
  struct container *c = &containers[group - 1];
  if (c->oom_victim == t->proc)
    return;
  c->oom_victim = t->proc;
  qk_printk(QK_LOG_WARN, "container %d: memory limit reached, killing pid %d", group - 1,
            t->proc->pid);
  struct qk_siginfo_lite si = {.code = QK_SI_KERNEL};
  qk_signal_task(t, 9 /* SIGKILL */, &si, false);
}

int qk_container_start(uint32_t cid)
{
  if (cid >= QK_CTL_MAX_CONTAINERS || !containers[cid].used)
    return -QK_ESRCH;
  struct container *c = &containers[cid];
  if (c->started)
    return -QK_EBUSY;
  if (c->exited) /* TARGET: killed with the namespace it joined before it started */
    return -QK_ESRCH;
  c->started = true;
  qk_wake_task(c->init->threads);
  qk_ctl_container_started(cid, c->init->pid);
  return 0;
}

static int signal_process(struct qk_process *p, int signo)
{
  if (!p || p->zombie || !p->threads)
    return -QK_ESRCH;
  /* From the host: init's protection does not apply. To the process:
   * a thread that does not block it takes it (the newest thread alone
   * kept a SIGTERM it blocked pending forever). */
  struct qk_siginfo_lite si = {.code = QK_SI_USER};
  return qk_signal_proc_host(p, signo, &si);
}

int qk_container_signal(uint32_t cid, int signo)
{
  if (cid >= QK_CTL_MAX_CONTAINERS || !containers[cid].used)
    return -QK_ESRCH;
  struct container *c = &containers[cid];
  if (!c->started || c->exited)
    return -QK_ESRCH;
  return signal_process(c->init, signo);
}

int qk_exec_spawn(uint32_t cid, uint32_t xid, struct qk_ctl_process *spec)
{
  if (cid >= QK_CTL_MAX_CONTAINERS || !containers[cid].used || !xid || xid > 0x7fffffff)
    return -QK_ESRCH;
  struct container *c = &containers[cid];
  if (c->exited)
    return -QK_ESRCH;
  struct qk_process *p;
  int r = spawn(c, spec, (int)xid, &p);
  if (r)
    return r;
  qk_wake_task(p->threads);
  qk_ctl_process_free(spec);
  return 0;
}

static struct qk_process *find_exec(struct container *c, uint32_t xid)
{
  for (struct qk_process *p = qk_all_procs; p; p = p->next_all)
    if (p->ctr == (int)(c - containers) + 1 && p->ctl_xid == (int)xid && !p->zombie)
      return p;
  return NULL;
}

int qk_exec_kill(uint32_t cid, uint32_t xid, int signo)
{
  if (cid >= QK_CTL_MAX_CONTAINERS || !containers[cid].used)
    return -QK_ESRCH;
  return signal_process(find_exec(&containers[cid], xid), signo);
}

static void free_zombie(struct qk_process *z)
{
  if (z->parent) { /* a zombie of another container's (TARGET: a dead init's) */
    struct qk_process **pp = &z->parent->children;
    while (*pp && *pp != z)
      pp = &(*pp)->sibling;
    if (*pp)
      *pp = z->sibling;
  }
  struct qk_process **ap = &qk_all_procs;
  while (*ap && *ap != z)
    ap = &(*ap)->next_all;
  if (*ap)
    *ap = z->next_all;
  qk_kfree(z);
}

int qk_container_delete(uint32_t cid)
{
  if (cid >= QK_CTL_MAX_CONTAINERS || !containers[cid].used)
    return -QK_ESRCH;
  struct container *c = &containers[cid];
  if (c->started && !c->exited)
    return -QK_EBUSY;
  if (!c->started) {
    /* Created, never started: its init never ran. */
    qk_process_exit(c->init, 9);
  }
  /* Every process of the container is gone by now; drop the zombies,
   * but for those a live process of another container still has to reap
   * (TARGET: orphans given to the joined namespace's init), which become
   * that container's, as they stay its init's on Linux. Whoever had one
   * of the dropped ones as parent (another container's zombie, given to
   * this one's dead init) has none from then on. */
  int ctr = (int)cid + 1;
  for (struct qk_process *p = qk_all_procs; p; p = p->next_all)
    if (p->ctr == ctr && p->zombie && p->parent && !p->parent->zombie && p->parent->ctr != ctr)
      p->ctr = p->parent->ctr;
  for (struct qk_process *p = qk_all_procs; p; p = p->next_all)
    if (p->parent && p->parent->zombie && p->parent->ctr == ctr)
      p->parent = NULL;
  for (struct qk_process *p = qk_all_procs, *n; p; p = n) {
    n = p->next_all;
    if (p->ctr == ctr && p->zombie)
      free_zombie(p);
  }
  /* Its own namespace goes: other containers' zombies left in it leave. */
  for (struct qk_process *p = qk_all_procs; p; p = p->next_all)
    if (p->ns == &c->ns)
      p->ns = &gone_pidns;
  qk_mem_set_limit((int)cid + 1, 0);
  memset(c, 0, sizeof(*c));
  return 0;
}

/* Called by qk_process_exit for a process with no parent outside the boot
 * namespace: a container's init or an exec. */
void qk_container_process_ended(struct qk_process *p)
{
  int cid = p->ctr - 1;
  int st = p->wstatus;
  bool sig = (st & 0x7f) != 0;
  int32_t code = sig ? (st & 0x7f) : (st >> 8) & 0xff;
  uint32_t flags = sig ? QK_CTL_EXIT_SIGNALED : 0;
  if (cid < 0 || cid >= (int)QK_CTL_MAX_CONTAINERS)
    return;
  struct container *c = &containers[cid];
  if (c->oom_victim == p) {
    flags |= QK_CTL_EXIT_OOM;
    c->oom_victim = NULL;
  }
  if (p->ctl_xid) {
    qk_ctl_exec_exited((uint32_t)cid, (uint32_t)p->ctl_xid, code, flags);
    free_zombie(p);
    return;
  }
  if (p != c->init)
    return;
  c->exited = true;
  c->status = code;
  c->flags = flags;
  /* The container's init is gone: so is everything else of the container
   * (of its namespace, or its part of the pod's shared one or of a
   * target's), and when it was its own namespace's init, everything else
   * in that namespace (containers that joined it: their inits' ends are
   * reported as they go). Each exit may free zombies anywhere in the list
   * (those reparented to the shared init, which reaps them): the scan
   * starts over after each. */
  struct qk_pidns *own = c->pns == &c->ns ? &c->ns : NULL;
  for (struct qk_process *q = qk_all_procs; q;) {
    if ((q->ctr == cid + 1 || (own && q->ns == own)) && !q->zombie && !q->exiting && q != p) {
      qk_process_exit(q, 9);
      q = qk_all_procs;
    } else {
      q = q->next_all;
    }
  }
  if (c->started)
    qk_ctl_container_exited((uint32_t)cid, code, flags);
}

int qk_stats(uint32_t cid, struct qk_ctl_stats *out)
{
  uint64_t free_bytes = qk_page_free_count() * QK_PAGE_SIZE;
  uint64_t total = qk_boot ? qk_boot->mem_size : 0;
  memset(out, 0, sizeof(*out));
  bool one = cid != QK_CTL_POD;
  if (one && (cid >= QK_CTL_MAX_CONTAINERS || !containers[cid].used))
    return -QK_ESRCH;
  for (struct qk_process *p = qk_all_procs; p; p = p->next_all) {
    if (p->zombie || (one && p->ctr != (int)cid + 1))
      continue;
    out->processes++;
    uint64_t u, s, cu, cs; /* task/cputime.c: its own time and that of children it waited for */
    qk_cputime_proc(p, &u, &s);
    qk_cputime_children(p, &cu, &cs);
    out->cpu_ns += u + s + cu + cs;
  }
  if (one) /* the frames charged to the container (mm/page.c) */
    out->memory_bytes = qk_mem_group_bytes((int)cid + 1);
  if (!one)
    out->memory_bytes = total > free_bytes ? total - free_bytes : 0;
  return 0;
}

uint32_t qk_container_pids_max(int ctr)
{
  return ctr > 0 && ctr <= (int)QK_CTL_MAX_CONTAINERS ? containers[ctr - 1].pids_max : 0;
}
