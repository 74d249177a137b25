/* Process life cycle: fork/vfork/clone, exit and exit_group, zombies,
 * wait4/waitid, reparenting to the container's init, process groups and
 * sessions. */
#include <qk/arch.h>
#include <qk/cputime.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/task.h>

#define ARGS uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5

#define CLONE_VM 0x100
#define CLONE_FS 0x200
#define CLONE_FILES 0x400
#define CLONE_SIGHAND 0x800
#define CLONE_VFORK 0x4000
#define CLONE_PARENT 0x8000
#define CLONE_THREAD 0x10000
#define CLONE_SYSVSEM 0x40000
#define CLONE_SETTLS 0x80000
#define CLONE_PARENT_SETTID 0x100000
#define CLONE_CHILD_CLEARTID 0x200000
#define CLONE_CHILD_SETTID 0x1000000
#define CLONE_NS_FLAGS 0x7e020000ull /* new namespaces, not offered */

#define WNOHANG 1
#define WUNTRACED 2
#define WEXITED 4
#define WCONTINUED 8
#define WNOWAIT 0x1000000
#define SIGCHLD 17

void qk_sched_defer_mm(struct qk_mm *mm);
void qk_container_process_ended(struct qk_process *p);

static inline struct qk_task *cur(void)
{
  return qk_current();
}
static inline struct qk_process *proc(void)
{
  return qk_current()->proc;
}

struct qk_pidns qk_boot_pidns = {.last_pid = 1};

static bool pid_used(struct qk_pidns *ns, int pid)
{
  for (struct qk_task *t = qk_all_tasks; t; t = t->next_all)
    if (t->tid == pid && t->state != QK_TASK_DEAD && t->proc->ns == ns)
      return true;
  for (struct qk_process *p = qk_all_procs; p; p = p->next_all)
    if (p->ns == ns && (p->pid == pid || p->pgid == pid || p->sid == pid))
      return true;
  return false;
}

int qk_alloc_pid(struct qk_pidns *ns)
{
  for (int tries = 0; tries < 1 << 22; tries++) {
    if (++ns->last_pid >= 4194304)
      ns->last_pid = 2;
    if (!pid_used(ns, ns->last_pid))
      return ns->last_pid;
  }
  return -QK_EAGAIN;
}

static void fs_put(struct qk_fs_ctx *fs)
{
  if (fs && !--fs->refs)
    qk_kfree(fs);
}

static void files_put(struct qk_fdtable *t)
{
  if (t && !--t->refs)
    qk_fdtable_free(t);
}

void qk_mm_put(struct qk_mm *mm)
{
  if (mm && !--mm->refs)
    qk_sched_defer_mm(mm);
}

/* The pids limit, counted as the pids cgroup does: every task (threads
 * included) of the container (qk_process.ctr, whichever pid namespace it
 * runs in), and a zombie until it is
 * reaped (a fork bomb under an init that never waits would otherwise pile
 * up zombies until the kernel's memory is gone). The VM has its own caps
 * whatever the containers' limits: one task or zombie per 128 KiB of
 * guest memory (as Linux's threads-max) and a reserve of 1/32 of the
 * memory that forks may not take (fork copies writable pages at once).
 * One pass over the task and process lists per fork. */
static int pids_check(int ctr)
{
  uint64_t total = qk_page_total_count(), cap = total / 32;
  if (cap < 64)
    cap = 64;
  if (qk_page_free_count() < total / 32)
    return -QK_EAGAIN;
  uint64_t all = 0, in_ns = 0;
  for (struct qk_task *t = qk_all_tasks; t; t = t->next_all) {
    if (t->state == QK_TASK_DEAD)
      continue;
    all++;
    in_ns += t->proc && t->proc->ctr == ctr;
  }
  for (struct qk_process *p = qk_all_procs; p; p = p->next_all) {
    if (!p->zombie)
      continue;
    all++;
    in_ns += p->ctr == ctr;
  }
  uint32_t max = qk_container_pids_max(ctr);
  if (all >= cap || (max && in_ns >= max))
    return -QK_EAGAIN;
  return 0;
}

static int64_t do_clone(uint64_t flags, uint64_t sp, uint64_t ptid, uint64_t ctid, uint64_t tls)
{
  struct qk_task *pt = cur();
  struct qk_process *p = pt->proc;
  if (flags & CLONE_NS_FLAGS)
    return -QK_EINVAL;
  if ((flags & CLONE_THREAD) && !(flags & CLONE_SIGHAND))
    return -QK_EINVAL;
  if ((flags & CLONE_SIGHAND) && !(flags & CLONE_VM))
    return -QK_EINVAL;
  int lim = pids_check(p->ctr);
  if (lim)
    return lim;
  struct qk_task *t = qk_kzalloc(sizeof(*t));
  if (!t)
    return -QK_ENOMEM;
  int tid = qk_alloc_pid(p->ns);
  if (tid < 0) {
    qk_kfree(t);
    return tid;
  }
  t->tid = tid;
  struct qk_process *np = p;
  if (!(flags & CLONE_THREAD)) {
    np = qk_kzalloc(sizeof(*np));
    if (!np)
      goto nomem;
    np->pid = tid;
    np->ns = p->ns;
    np->ctr = p->ctr;
    np->pgid = p->pgid;
    np->sid = p->sid;
    np->uid = p->uid;
    np->gid = p->gid;
    np->euid = p->euid;
    np->egid = p->egid;
    memcpy(np->rlim, p->rlim, sizeof(np->rlim));
    memcpy(np->sigactions, p->sigactions, sizeof(np->sigactions));
    memcpy(np->exe, p->exe, sizeof(np->exe));
    np->start_ns = qk_time_monotonic_ns();
    np->exit_signal = (int)(flags & 0xff);
    if (flags & CLONE_VM) {
      np->mm = p->mm;
      p->mm->refs++;
    } else {
      np->mm = qk_mm_dup(p->mm, p->mm->cr3);
      if (!np->mm)
        goto nomem;
    }
    if (flags & CLONE_FILES) {
      np->files = p->files;
      p->files->refs++;
    } else {
      np->files = qk_fdtable_dup(p->files);
      if (!np->files)
        goto nomem;
    }
    if (flags & CLONE_FS) {
      np->fs = p->fs;
      p->fs->refs++;
    } else {
      np->fs = qk_kmalloc(sizeof(*np->fs));
      if (!np->fs)
        goto nomem;
      memcpy(np->fs, p->fs, sizeof(*np->fs));
      np->fs->refs = 1;
    }
    struct qk_process *parent = (flags & CLONE_PARENT) && p->parent ? p->parent : p;
    np->parent = parent;
    np->ppid = parent->pid;
    np->sibling = parent->children;
    parent->children = np;
    np->next_all = qk_all_procs;
    qk_all_procs = np;
  }
  t->proc = np;
  t->next_in_proc = np->threads;
  np->threads = t;
  np->nr_threads++;
  memcpy(&t->regs, pt->uregs, sizeof(t->regs));
  t->regs.rax = 0;
  if (sp)
    t->regs.rsp = sp;
  t->fs_base = (flags & CLONE_SETTLS) ? tls : pt->fs_base;
  if (t->fs_base >= QK_USER_TOP)
    t->fs_base = 0;
  t->sigmask = pt->sigmask;
  t->cpus_allowed = pt->cpus_allowed; /* affinity is inherited */
  memcpy(t->comm, pt->comm, sizeof(t->comm));
  qk_fpu_save(t->fpu);
  t->fpu_valid = 1;
  qk_sec_fork(t, pt); /* credentials, no_new_privs, seccomp (task/cred.c) */
  if (flags & CLONE_CHILD_CLEARTID)
    t->clear_child_tid = ctid;
  if (flags & CLONE_PARENT_SETTID)
    qk_copy_to_user(ptid, &tid, 4);
  if (flags & CLONE_CHILD_SETTID) {
    /* In the child's address space: act as the child for the copy. */
    struct qk_percpu *pc = qk_arch_cpu_private();
    pc->current = t;
    qk_uaccess_forget();
    qk_copy_to_user(ctid, &tid, 4);
    pc->current = pt;
    qk_uaccess_forget();
  }
  qk_sched_add(t);
  if (flags & CLONE_VFORK) {
    np->vfork_parent = pt;
    pt->state = QK_TASK_BLOCKED; /* resumes with the result, no restart */
    pt->wchan = np;
    pt->deadline = ~0ull;
  }
  return tid;
nomem:
  if (np != p && np) {
    if (np->mm && !(flags & CLONE_VM))
      qk_mm_destroy(np->mm);
    else if (np->mm)
      np->mm->refs--;
    if (np->files)
      files_put(np->files);
    if (np->fs)
      fs_put(np->fs);
    qk_kfree(np);
  }
  qk_kfree(t);
  return -QK_ENOMEM;
}

int64_t sys_clone(ARGS)
{
  return do_clone(a0, a1, a2, a3, a4);
}
int64_t sys_fork(ARGS)
{
  return do_clone(SIGCHLD, 0, 0, 0, 0);
}
int64_t sys_vfork(ARGS)
{
  return do_clone(CLONE_VM | CLONE_VFORK | SIGCHLD, 0, 0, 0, 0);
}
/* glibc falls back to clone when clone3 answers ENOSYS. */
int64_t sys_clone3(ARGS)
{
  return -QK_ENOSYS;
}

static void release_vfork(struct qk_process *p)
{
  if (p->vfork_parent) {
    qk_wake_task(p->vfork_parent);
    p->vfork_parent = NULL;
  }
}

/* exec ends the vfork wait too. */
void qk_proc_exec_done(struct qk_process *p)
{
  release_vfork(p);
}

static void unlink_child(struct qk_process *c)
{
  if (c->parent) {
    struct qk_process **pp = &c->parent->children;
    while (*pp && *pp != c)
      pp = &(*pp)->sibling;
    if (*pp)
      *pp = c->sibling;
  }
  struct qk_process **ap = &qk_all_procs;
  while (*ap && *ap != c)
    ap = &(*ap)->next_all;
  if (*ap)
    *ap = c->next_all;
  qk_kfree(c);
}

static void clear_tid(struct qk_task *t)
{
  if (!t->clear_child_tid || !t->proc->mm)
    return;
  uint32_t zero = 0;
  uint64_t pa;
  if (qk_copy_to_user(t->clear_child_tid, &zero, 4) == 0 &&
      qk_user_pa(t->clear_child_tid, false, &pa) == 0)
    qk_wake_n((const void *)pa, 1);
}

/* Children of p are reaped as they end (SIGCHLD ignored, SA_NOCLDWAIT). */
static bool reaps_itself(const struct qk_process *p)
{
  const struct l_sigaction *sa = &p->sigactions[SIGCHLD - 1];
  return sa->handler == 1 /* SIG_IGN */ || (sa->flags & 2 /* SA_NOCLDWAIT */);
}

void qk_process_exit(struct qk_process *p, int wstatus)
{
  if (p->exiting)
    return;
  p->exiting = true;
  if (!p->parent && !p->ctr) {
    /* The boot process: its end is the sandbox's. The host reports exit
     * code or 128 + n. */
    int code = (wstatus & 0x7f) ? 128 + (wstatus & 0x7f) : (wstatus >> 8) & 0xff;
    qk_qcall(QK_OP_EXIT, (uint64_t)code, 0, 0, 0, 0, 0);
    qk_arch_shutdown(code);
  }
  for (struct qk_task *t = p->threads; t; t = t->next_in_proc) {
    if (t == qk_current())
      clear_tid(t);
    qk_cputime_thread_exit(t);
    t->state = QK_TASK_DEAD;
  }
  p->threads = NULL;
  p->nr_threads = 0;
  files_put(p->files);
  p->files = NULL;
  fs_put(p->fs);
  p->fs = NULL;
  qk_mm_put(p->mm);
  p->mm = NULL;
  release_vfork(p);
  /* Orphans go to the container's init (when the init itself ends, the
   * container does: ctl_process_ended kills the rest). */
  struct qk_process *init = p->ns->init && p->ns->init != p ? p->ns->init : p;
  while (init->parent)
    init = init->parent;
  for (struct qk_process *c = p->children, *n; c; c = n) {
    n = c->sibling;
    c->parent = init;
    c->ppid = init->pid;
    c->sibling = init->children;
    init->children = c;
    if (c->zombie && reaps_itself(init))
      unlink_child(c); /* the pod's shared init ignores SIGCHLD */
    else if (c->zombie)
      qk_wake(init);
  }
  p->children = NULL;
  p->zombie = true;
  p->wstatus = wstatus;
  struct qk_process *parent = p->parent;
  if (!parent) {
    qk_container_process_ended(p);
    return;
  }
  bool autoreap = reaps_itself(parent);
  if (p->exit_signal) {
    struct qk_siginfo_lite si = {
        .code = (wstatus & 0x7f) ? 2 /* CLD_KILLED */ : 1 /* CLD_EXITED */,
        .pid = p->pid,
        .uid = p->uid,
        .status = (wstatus & 0x7f) ? (wstatus & 0x7f) : (wstatus >> 8) & 0xff,
    };
    qk_signal_proc(parent, p->exit_signal, &si);
  }
  qk_wake(parent);
  if (autoreap)
    unlink_child(p);
}

void qk_thread_exit(struct qk_task *t, int wstatus)
{
  struct qk_process *p = t->proc;
  if (p->nr_threads <= 1) {
    qk_process_exit(p, wstatus);
    return;
  }
  clear_tid(t);
  struct qk_task **pp = &p->threads;
  while (*pp && *pp != t)
    pp = &(*pp)->next_in_proc;
  if (*pp)
    *pp = t->next_in_proc;
  p->nr_threads--;
  qk_cputime_thread_exit(t);
  t->state = QK_TASK_DEAD;
  qk_signal_retarget(p, ~0ull); /* what it was woken for goes to another */
}

int64_t sys_exit(ARGS)
{
  qk_thread_exit(cur(), (int)((a0 & 0xff) << 8));
  return 0;
}

int64_t sys_exit_group(ARGS)
{
  qk_process_exit(proc(), (int)((a0 & 0xff) << 8));
  return 0;
}

/* ---- wait ---- */

static bool wait_match(struct qk_process *c, int idtype, int id)
{
  switch (idtype) {
  case 0: /* P_ALL */
    return true;
  case 1: /* P_PID */
    return c->pid == id;
  case 2: /* P_PGID */
    return c->pgid == id;
  default:
    return false;
  }
}

/* What a wait with options may report of child c, in Linux's order: its
 * exit (WEXITED), a stop not reported yet (WUNTRACED/WSTOPPED), a
 * continue not reported yet (WCONTINUED). */
enum { EV_NONE, EV_EXIT, EV_STOP, EV_CONT };
static int wait_event(const struct qk_process *c, int options)
{
  if (c->zombie)
    return (options & WEXITED) ? EV_EXIT : EV_NONE;
  if ((options & WUNTRACED) && (c->jobctl & QK_JOB_STOPPED) && (c->jobctl & QK_JOB_STOP_REPORT))
    return EV_STOP;
  if ((options & WCONTINUED) && (c->jobctl & QK_JOB_CONT_REPORT))
    return EV_CONT;
  return EV_NONE;
}

/* The first child matching (idtype, id) with something to report (*ev);
 * *any tells whether any child matched at all. */
static struct qk_process *find_event(int idtype, int id, int options, int *ev, bool *any)
{
  *any = false;
  for (struct qk_process *c = proc()->children; c; c = c->sibling) {
    if (!wait_match(c, idtype, id))
      continue;
    *any = true;
    *ev = wait_event(c, options);
    if (*ev != EV_NONE)
      return c;
  }
  return NULL;
}

/* A stop or continue is reported once. */
static void consume(struct qk_process *c, int ev)
{
  c->jobctl &= (uint8_t) ~(ev == EV_STOP ? QK_JOB_STOP_REPORT : QK_JOB_CONT_REPORT);
}

/* The waited-for child's CPU time with its own children's (as Linux's
 * wait4 reports it). */
static int write_rusage(uint64_t uru, struct qk_process *c)
{
  if (!uru)
    return 0;
  uint64_t u, s, cu, cs;
  qk_cputime_proc(c, &u, &s);
  qk_cputime_children(c, &cu, &cs);
  return qk_cputime_put_rusage(uru, u + cu, s + cs);
}

/* A zombie waited for: its times go to the parent, then it is gone. */
static void reap(struct qk_process *c)
{
  if (c->parent)
    qk_cputime_reap(c->parent, c);
  unlink_child(c);
}

int64_t sys_wait4(ARGS)
{
  int pid = (int)a0, options = (int)a2;
  if (options & ~(WNOHANG | WUNTRACED | WCONTINUED | 0x20000000 | 0x40000000 | 0x80000000))
    return -QK_EINVAL;
  int idtype = 0, id = 0;
  if (pid > 0) {
    idtype = 1;
    id = pid;
  } else if (pid == 0) {
    idtype = 2;
    id = proc()->pgid;
  } else if (pid < -1) {
    idtype = 2;
    id = -pid;
  }
  bool any;
  int ev = EV_NONE;
  struct qk_process *c = find_event(idtype, id, options | WEXITED, &ev, &any);
  if (!any)
    return -QK_ECHILD;
  if (!c) {
    if (options & WNOHANG)
      return 0;
    return qk_block(proc(), ~0ull);
  }
  /* exit: its status; stop: 0x7f | sig << 8 (WIFSTOPPED); continue: 0xffff */
  int st = ev == EV_EXIT ? c->wstatus : ev == EV_STOP ? 0x7f | c->stop_sig << 8 : 0xffff;
  int cpid = c->pid;
  if (a1 && qk_copy_to_user(a1, &st, 4))
    return -QK_EFAULT;
  if (write_rusage(a3, c))
    return -QK_EFAULT;
  if (ev == EV_EXIT)
    reap(c);
  else
    consume(c, ev);
  return cpid;
}

int64_t sys_waitid(ARGS)
{
  int idtype = (int)a0, id = (int)a1, options = (int)a3;
  if (idtype < 0 || idtype > 2 || !(options & (WEXITED | WUNTRACED | WCONTINUED)) ||
      (options & ~(WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT | 0x20000000 | 0x40000000 |
                   0x80000000)))
    return -QK_EINVAL;
  if (idtype == 2 && id == 0)
    id = proc()->pgid;
  bool any;
  int ev = EV_NONE;
  struct qk_process *c = find_event(idtype, id, options, &ev, &any);
  if (!any)
    return -QK_ECHILD;
  if (!c) {
    if (options & WNOHANG) {
      if (a2) { /* nothing to report: si_signo and si_pid 0 */
        uint64_t z[16] = {0};
        if (qk_copy_to_user(a2, z, sizeof(z)))
          return -QK_EFAULT;
      }
      return 0;
    }
    return qk_block(proc(), ~0ull);
  }
  if (a2) {
    int32_t si[32] = {0}; /* siginfo_t: 128 bytes */
    si[0] = SIGCHLD;
    if (ev == EV_EXIT) {
      si[2] = (c->wstatus & 0x7f) ? 2 : 1; /* CLD_KILLED / CLD_EXITED */
      si[6] = (c->wstatus & 0x7f) ? (c->wstatus & 0x7f) : (c->wstatus >> 8) & 0xff;
    } else {
      si[2] = ev == EV_STOP ? 5 : 6; /* CLD_STOPPED / CLD_CONTINUED */
      si[6] = ev == EV_STOP ? c->stop_sig : 18 /* SIGCONT */;
    }
    si[4] = c->pid;
    si[5] = (int32_t)c->uid;
    if (qk_copy_to_user(a2, si, sizeof(si)))
      return -QK_EFAULT;
  }
  if (write_rusage(a4, c))
    return -QK_EFAULT;
  if (options & WNOWAIT)
    return 0;
  if (ev == EV_EXIT)
    reap(c);
  else
    consume(c, ev);
  return 0;
}

/* ---- identity, groups and sessions ---- */

int64_t sys_getppid(ARGS)
{
  return proc()->parent ? proc()->parent->pid : 0;
}

static struct qk_process *lookup(int pid)
{
  if (pid == 0)
    return proc();
  struct qk_process *p = qk_proc_find(pid);
  return p && !p->zombie ? p : NULL;
}

int64_t sys_getpgid(ARGS)
{
  struct qk_process *p = lookup((int)a0);
  return p ? p->pgid : -QK_ESRCH;
}

int64_t sys_getpgrp(ARGS)
{
  return proc()->pgid;
}

int64_t sys_getsid(ARGS)
{
  struct qk_process *p = lookup((int)a0);
  return p ? p->sid : -QK_ESRCH;
}

int64_t sys_setsid(ARGS)
{
  struct qk_process *self = proc();
  for (struct qk_process *p = qk_all_procs; p; p = p->next_all)
    if (p->ns == self->ns && p->pgid == self->pid)
      return -QK_EPERM; /* already leads a group */
  self->sid = self->pgid = self->pid;
  return self->pid;
}

int64_t sys_setpgid(ARGS)
{
  int pid = (int)a0, pgid = (int)a1;
  if (pgid < 0)
    return -QK_EINVAL;
  struct qk_process *self = proc(), *t = lookup(pid);
  if (!t || (t != self && t->parent != self))
    return -QK_ESRCH;
  if (t->sid != self->sid)
    return -QK_EPERM;
  if (t->sid == t->pid)
    return -QK_EPERM; /* a session leader keeps its group */
  if (pgid == 0)
    pgid = t->pid;
  if (pgid != t->pid) {
    bool found = false;
    for (struct qk_process *p = qk_all_procs; p && !found; p = p->next_all)
      found = p->ns == self->ns && p->pgid == pgid && p->sid == self->sid && !p->zombie;
    if (!found)
      return -QK_EPERM;
  }
  t->pgid = pgid;
  return 0;
}
