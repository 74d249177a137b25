/* Signals: sending (kill, tkill, tgkill, the kernel's own: SIGCHLD,
 * SIGPIPE, faults), masks, handlers, Linux's x86-64 rt_sigframe on the
 * user (or alternate) stack with the fxsave image, rt_sigreturn,
 * sigaltstack, rt_sigsuspend and pause. Stop signals are not supported
 * (no job control): their default action is to ignore them. */
#include <qk/arch.h>
#include <qk/events.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/task.h>

#define ARGS uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5

#define SA_NOCLDWAIT 2ull
#define SA_ONSTACK 0x08000000ull
#define SA_RESTART 0x10000000ull
#define SA_NODEFER 0x40000000ull
#define SA_RESETHAND 0x80000000ull
#define SS_ONSTACK 1
#define SS_DISABLE 2
#define SIG_DFL 0
#define SIG_IGN 1
#define BIT(sig) (1ull << ((sig)-1))
#define UNBLOCKABLE (BIT(L_SIGKILL) | BIT(L_SIGSTOP))
/* Default action: ignore (CHLD CONT URG WINCH, and the stop signals). */
#define DFL_IGNORE (BIT(17) | BIT(18) | BIT(23) | BIT(28) | BIT(19) | BIT(20) | BIT(21) | BIT(22))
/* Default action: terminate with a core (QUIT ILL TRAP ABRT BUS FPE SEGV XCPU XFSZ SYS). */
#define DFL_CORE                                                                                   \
  (BIT(3) | BIT(4) | BIT(5) | BIT(6) | BIT(7) | BIT(8) | BIT(11) | BIT(24) | BIT(25) | BIT(31))

struct l_sigcontext {
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip,
      eflags;
  uint16_t cs, gs, fs, ss;
  uint64_t err, trapno, oldmask, cr2, fpstate;
  uint64_t reserved[8];
};
_Static_assert(sizeof(struct l_sigcontext) == 256, "sigcontext");

struct l_stack {
  uint64_t ss_sp;
  int32_t ss_flags, pad;
  uint64_t ss_size;
};

struct l_ucontext {
  uint64_t uc_flags, uc_link;
  struct l_stack uc_stack;
  struct l_sigcontext mc;
  uint64_t sigmask;
};
_Static_assert(sizeof(struct l_ucontext) == 304, "ucontext");

struct l_siginfo {
  int32_t signo, errno_, code, pad;
  union {
    struct {
      int32_t pid;
      uint32_t uid;
      int32_t status;
    } k;
    uint64_t addr;
    uint8_t raw[112];
  };
};
_Static_assert(sizeof(struct l_siginfo) == 128, "siginfo");

struct rt_sigframe {
  uint64_t pretcode;
  struct l_ucontext uc;
  struct l_siginfo info;
};

static inline struct qk_task *cur(void)
{
  return qk_current();
}
static inline struct qk_process *proc(void)
{
  return qk_current()->proc;
}

void qk_fpu_save(uint8_t *buf)
{
  _Alignas(16) uint8_t tmp[512];
  __asm__ volatile("fxsave64 %0" : "=m"(tmp));
  /* FXSAVE leaves bytes 464..511 (and may leave the reserved 416..463)
   * unwritten: they would carry kernel stack bytes into the user's signal
   * frame (sw_reserved, read by libcs as the XSAVE magic). */
  memset(tmp + 416, 0, sizeof(tmp) - 416);
  memcpy(buf, tmp, sizeof(tmp));
}

void qk_fpu_restore(const uint8_t *buf)
{
  _Alignas(16) uint8_t tmp[512];
  memcpy(tmp, buf, sizeof(tmp));
  __asm__ volatile("fxrstor64 %0" ::"m"(tmp));
}

bool qk_signal_pending(struct qk_task *t)
{
  return ((t->sigpending | t->proc->sigpending) & ~t->sigmask) != 0;
}

static bool ignored(struct qk_process *p, int sig)
{
  uint64_t h = p->sigactions[sig - 1].handler;
  return sig != L_SIGKILL && (h == SIG_IGN || (h == SIG_DFL && (DFL_IGNORE & BIT(sig))));
}

static void kick(struct qk_task *t)
{
  /* Only tasks parked in a restartable syscall wake for a signal; a
   * vfork parent waits for its child whatever happens. */
  if (t->state == QK_TASK_BLOCKED && t->restart)
    qk_wake_task(t);
}

int qk_signal_task(struct qk_task *t, int sig, const struct qk_siginfo_lite *info, bool force)
{
  struct qk_process *p = t->proc;
  if (sig < 1 || sig > L_NSIG)
    return -QK_EINVAL;
  if (p->zombie || p->exiting)
    return 0;
  if (force) {
    struct l_sigaction *sa = &p->sigactions[sig - 1];
    if (sa->handler == SIG_IGN || (t->sigmask & BIT(sig))) {
      sa->handler = SIG_DFL;
      t->sigmask &= ~BIT(sig);
    }
  } else if (ignored(p, sig)) {
    return 0;
  }
  t->sigpending |= BIT(sig);
  if (info)
    t->siginfo[sig - 1] = *info;
  kick(t);
  if (t->sigmask & BIT(sig))
    qk_wake(&qk_poll_wq); /* a signalfd may be waiting for it */
  return 0;
}

static bool blocked_by_all(struct qk_process *p, int sig)
{
  for (struct qk_task *t = p->threads; t; t = t->next_in_proc)
    if (!(t->sigmask & BIT(sig)))
      return false;
  return p->threads != NULL;
}

int qk_signal_proc(struct qk_process *p, int sig, const struct qk_siginfo_lite *info)
{
  if (sig < 1 || sig > L_NSIG)
    return -QK_EINVAL;
  if (p->zombie || p->exiting || ignored(p, sig))
    return 0;
  /* A container's init gets only the signals it has handlers for, or
   * blocks (as on Linux: a blocked signal stays queued, for signalfd). */
  if (!p->parent && p->sigactions[sig - 1].handler == SIG_DFL && !blocked_by_all(p, sig))
    return 0;
  p->sigpending |= BIT(sig);
  if (info)
    p->siginfo[sig - 1] = *info;
  bool taken = false;
  for (struct qk_task *t = p->threads; t; t = t->next_in_proc) {
    if (sig == L_SIGKILL || !(t->sigmask & BIT(sig))) {
      kick(t);
      taken = true;
      if (sig != L_SIGKILL)
        break;
    }
  }
  if (!taken)
    qk_wake(&qk_poll_wq); /* blocked everywhere: a signalfd may be waiting for it */
  return 0;
}

static bool on_altstack(struct qk_task *t, uint64_t sp)
{
  return t->altstack_size && sp > t->altstack_sp && sp <= t->altstack_sp + t->altstack_size;
}

/* The user's siginfo from the kernel's record: faults carry an address;
 * POSIX timers (SI_TIMER) the timer id, overrun and sigev_value (kept in
 * pid, uid and addr); the rest pid, uid and status. */
static void fill_info(struct l_siginfo *info, int sig, const struct qk_siginfo_lite *si)
{
  memset(info, 0, sizeof(*info));
  info->signo = sig;
  if (!si)
    return;
  info->code = si->code;
  if (si->code > 0 && (sig == 11 || sig == 7 || sig == 8 || sig == 4)) {
    info->addr = si->addr;
    return;
  }
  if (sig == 31 && si->code == 1) { /* SYS_SECCOMP (task/seccomp.c): errno data in uid */
    uint32_t arch = 0xc000003e;     /* AUDIT_ARCH_X86_64 */
    info->errno_ = (int32_t)si->uid;
    info->addr = si->addr;          /* si_call_addr */
    memcpy(info->raw + 8, &si->status, 4);
    memcpy(info->raw + 12, &arch, 4);
    return;
  }
  info->k.pid = si->pid;
  info->k.uid = si->uid;
  if (si->code == -2 /* SI_TIMER */)
    memcpy(info->raw + 8, &si->addr, 8);
  else
    info->k.status = si->status;
}

static int build_frame(struct qk_task *t, struct qk_regs *r, int sig, const struct l_sigaction *sa,
                       const struct qk_siginfo_lite *si, uint64_t oldmask)
{
  uint64_t sp = r->rsp - 128; /* the red zone */
  if ((sa->flags & SA_ONSTACK) && t->altstack_size && !(t->altstack_flags & SS_DISABLE) &&
      !on_altstack(t, r->rsp))
    sp = t->altstack_sp + t->altstack_size;
  sp = (sp - 512) & ~63ull;
  uint64_t fpaddr = sp;
  sp = ((sp - sizeof(struct rt_sigframe)) & ~15ull) - 8;
  _Alignas(16) uint8_t fp[512];
  qk_fpu_save(fp);
  if (qk_copy_to_user(fpaddr, fp, sizeof(fp)))
    return -QK_EFAULT;
  struct rt_sigframe f;
  memset(&f, 0, sizeof(f));
  f.pretcode = sa->restorer;
  f.uc.uc_stack.ss_sp = t->altstack_sp;
  f.uc.uc_stack.ss_size = t->altstack_size;
  f.uc.uc_stack.ss_flags =
      t->altstack_size ? (on_altstack(t, r->rsp) ? SS_ONSTACK : 0) : SS_DISABLE;
  struct l_sigcontext *m = &f.uc.mc;
  m->r8 = r->r8, m->r9 = r->r9, m->r10 = r->r10, m->r11 = r->r11;
  m->r12 = r->r12, m->r13 = r->r13, m->r14 = r->r14, m->r15 = r->r15;
  m->rdi = r->rdi, m->rsi = r->rsi, m->rbp = r->rbp, m->rbx = r->rbx;
  m->rdx = r->rdx, m->rax = r->rax, m->rcx = r->rcx, m->rsp = r->rsp;
  m->rip = r->rip, m->eflags = r->rflags;
  m->cs = (uint16_t)r->cs, m->ss = (uint16_t)r->ss;
  m->err = r->error_code;
  m->trapno = r->vector;
  m->oldmask = oldmask;
  m->cr2 = si ? si->addr : 0;
  m->fpstate = fpaddr;
  f.uc.sigmask = oldmask;
  fill_info(&f.info, sig, si);
  if (qk_copy_to_user(sp, &f, sizeof(f)))
    return -QK_EFAULT;
  r->rdi = (uint64_t)sig;
  r->rsi = sp + offsetof(struct rt_sigframe, info);
  r->rdx = sp + offsetof(struct rt_sigframe, uc);
  r->rax = 0;
  r->rip = sa->handler;
  r->rsp = sp;
  r->rflags &= ~0x400ull; /* DF clear, as the ABI wants at a call */
  return 0;
}

void qk_signal_deliver(struct qk_task *t, struct qk_regs *r, bool in_syscall)
{
  struct qk_process *p = t->proc;
  bool handled = false;
  for (int guard = 0; guard < L_NSIG; guard++) {
    uint64_t pend = (t->sigpending | p->sigpending) & ~t->sigmask;
    if (!pend)
      break;
    int sig = __builtin_ctzll(pend) + 1;
    struct qk_siginfo_lite si;
    if (t->sigpending & BIT(sig)) {
      t->sigpending &= ~BIT(sig);
      si = t->siginfo[sig - 1];
    } else {
      p->sigpending &= ~BIT(sig);
      si = p->siginfo[sig - 1];
    }
    struct l_sigaction *sa = &p->sigactions[sig - 1];
    if (sig != L_SIGKILL && sa->handler == SIG_IGN)
      continue;
    if (sig == L_SIGKILL || sa->handler == SIG_DFL) {
      if (sig != L_SIGKILL && (DFL_IGNORE & BIT(sig)))
        continue;
      qk_process_exit(p, sig | ((DFL_CORE & BIT(sig)) ? 0x80 : 0));
      return;
    }
    if (in_syscall && (int64_t)r->rax == -QK_ERESTARTSYS) {
      if (sa->flags & SA_RESTART) {
        r->rax = r->orig_rax;
        r->rip -= 2;
      } else {
        r->rax = (uint64_t)-QK_EINTR;
      }
    }
    in_syscall = false;
    uint64_t oldmask = t->has_saved_sigmask ? t->saved_sigmask : t->sigmask;
    t->has_saved_sigmask = false;
    if (build_frame(t, r, sig, sa, &si, oldmask)) {
      qk_process_exit(p, 11 | 0x80); /* no room for the frame: SIGSEGV */
      return;
    }
    handled = true;
    t->sigmask |= sa->mask | ((sa->flags & SA_NODEFER) ? 0 : BIT(sig));
    t->sigmask &= ~UNBLOCKABLE;
    if (sa->flags & SA_RESETHAND)
      sa->handler = SIG_DFL;
  }
  if (in_syscall && (int64_t)r->rax == -QK_ERESTARTSYS) {
    r->rax = r->orig_rax; /* nothing took the signal: run the call again */
    r->rip -= 2;
  }
  if (!handled && t->has_saved_sigmask && !qk_signal_pending(t)) {
    t->sigmask = t->saved_sigmask;
    t->has_saved_sigmask = false;
  }
}

void qk_signal_exec_reset(struct qk_process *p, struct qk_task *t)
{
  for (int i = 0; i < L_NSIG; i++) {
    if (p->sigactions[i].handler != SIG_IGN)
      p->sigactions[i].handler = SIG_DFL;
    p->sigactions[i].flags = 0;
    p->sigactions[i].mask = 0;
    p->sigactions[i].restorer = 0;
  }
  t->altstack_sp = t->altstack_size = 0;
  t->altstack_flags = SS_DISABLE;
}

/* ---- syscalls ---- */

int64_t sys_rt_sigaction(ARGS)
{
  int sig = (int)a0;
  if (sig < 1 || sig > L_NSIG || a3 != 8)
    return -QK_EINVAL;
  struct l_sigaction *sa = &proc()->sigactions[sig - 1];
  struct l_sigaction nsa;
  if (a1) {
    if (sig == L_SIGKILL || sig == L_SIGSTOP)
      return -QK_EINVAL;
    if (qk_copy_from_user(&nsa, a1, sizeof(nsa)))
      return -QK_EFAULT;
  }
  if (a2 && qk_copy_to_user(a2, sa, sizeof(*sa)))
    return -QK_EFAULT;
  if (a1) {
    nsa.mask &= ~UNBLOCKABLE;
    *sa = nsa;
    /* Setting a signal to be ignored discards what is pending of it. */
    if (ignored(proc(), sig)) {
      proc()->sigpending &= ~BIT(sig);
      for (struct qk_task *t = proc()->threads; t; t = t->next_in_proc)
        t->sigpending &= ~BIT(sig);
    }
  }
  return 0;
}

int64_t sys_rt_sigprocmask(ARGS)
{
  if (a3 != 8)
    return -QK_EINVAL;
  uint64_t old = cur()->sigmask, set;
  if (a1) {
    if (qk_copy_from_user(&set, a1, 8))
      return -QK_EFAULT;
    set &= ~UNBLOCKABLE;
    switch ((int)a0) {
    case 0: /* SIG_BLOCK */
      cur()->sigmask |= set;
      break;
    case 1: /* SIG_UNBLOCK */
      cur()->sigmask &= ~set;
      break;
    case 2: /* SIG_SETMASK */
      cur()->sigmask = set;
      break;
    default:
      return -QK_EINVAL;
    }
  }
  if (a2 && qk_copy_to_user(a2, &old, 8)) {
    cur()->sigmask = old;
    return -QK_EFAULT;
  }
  return 0;
}

int64_t sys_rt_sigpending(ARGS)
{
  uint64_t v = (cur()->sigpending | proc()->sigpending) & cur()->sigmask;
  if (a1 != 8)
    return -QK_EINVAL;
  return qk_copy_to_user(a0, &v, 8) ? -QK_EFAULT : 0;
}

int64_t sys_rt_sigreturn(ARGS)
{
  struct qk_task *t = cur();
  struct qk_regs *r = t->uregs;
  struct l_ucontext uc;
  uint64_t frame = r->rsp - 8;
  if (qk_copy_from_user(&uc, frame + offsetof(struct rt_sigframe, uc), sizeof(uc))) {
    qk_process_exit(proc(), 11 | 0x80);
    return 0;
  }
  struct l_sigcontext *m = &uc.mc;
  r->r8 = m->r8, r->r9 = m->r9, r->r10 = m->r10, r->r11 = m->r11;
  r->r12 = m->r12, r->r13 = m->r13, r->r14 = m->r14, r->r15 = m->r15;
  r->rdi = m->rdi, r->rsi = m->rsi, r->rbp = m->rbp, r->rbx = m->rbx;
  r->rdx = m->rdx, r->rcx = m->rcx, r->rsp = m->rsp, r->rip = m->rip;
  r->rflags = m->eflags; /* the arch layer keeps only user-settable bits */
  t->sigmask = uc.sigmask & ~UNBLOCKABLE;
  if (m->fpstate) {
    _Alignas(16) uint8_t fp[512];
    if (qk_copy_from_user(fp, m->fpstate, sizeof(fp))) {
      qk_process_exit(proc(), 11 | 0x80);
      return 0;
    }
    uint32_t mxcsr;
    memcpy(&mxcsr, fp + 24, 4);
    mxcsr &= 0xffbf; /* reserved bits would fault fxrstor in the kernel */
    memcpy(fp + 24, &mxcsr, 4);
    qk_fpu_restore(fp);
  }
  return (int64_t)m->rax;
}

int64_t sys_sigaltstack(ARGS)
{
  struct qk_task *t = cur();
  struct l_stack old = {t->altstack_sp, 0, 0, t->altstack_size};
  old.ss_flags = !t->altstack_size ? SS_DISABLE : on_altstack(t, t->uregs->rsp) ? SS_ONSTACK : 0;
  if (a0) {
    struct l_stack ns;
    if (qk_copy_from_user(&ns, a0, sizeof(ns)))
      return -QK_EFAULT;
    if (on_altstack(t, t->uregs->rsp))
      return -QK_EPERM;
    if (ns.ss_flags & ~(SS_DISABLE | (int32_t)0x80000000))
      return -QK_EINVAL;
    if (ns.ss_flags & SS_DISABLE) {
      t->altstack_sp = t->altstack_size = 0;
      t->altstack_flags = SS_DISABLE;
    } else {
      t->altstack_flags = 0;
      if (ns.ss_size < 2048)
        return -QK_ENOMEM;
      t->altstack_sp = ns.ss_sp;
      t->altstack_size = ns.ss_size;
    }
  }
  if (a1 && qk_copy_to_user(a1, &old, sizeof(old)))
    return -QK_EFAULT;
  return 0;
}

int64_t sys_rt_sigsuspend(ARGS)
{
  struct qk_task *t = cur();
  if (a1 != 8)
    return -QK_EINVAL;
  if (!qk_restarting()) {
    uint64_t set;
    if (qk_copy_from_user(&set, a0, 8))
      return -QK_EFAULT;
    t->saved_sigmask = t->sigmask;
    t->has_saved_sigmask = true;
    t->sigmask = set & ~UNBLOCKABLE;
  }
  int64_t r = qk_block(&t->saved_sigmask, ~0ull);
  return r == -QK_ERESTARTSYS ? -QK_EINTR : r;
}

int64_t sys_pause(ARGS)
{
  int64_t r = qk_block(&cur()->altstack_flags, ~0ull);
  return r == -QK_ERESTARTSYS ? -QK_EINTR : r;
}

static int send_to(struct qk_process *p, int sig)
{
  if (!qk_sec_may_signal(p)) /* other uid without CAP_KILL (task/cred.c) */
    return -QK_EPERM;
  if (!sig)
    return 0;
  struct qk_siginfo_lite si = {.code = QK_SI_USER, .pid = proc()->pid, .uid = proc()->uid};
  return qk_signal_proc(p, sig, &si);
}

int64_t sys_kill(ARGS)
{
  int pid = (int)a0, sig = (int)a1;
  if (sig < 0 || sig > L_NSIG)
    return -QK_EINVAL;
  if (pid > 0) {
    struct qk_process *p = qk_proc_find(pid);
    if (!p)
      return -QK_ESRCH;
    return send_to(p, sig);
  }
  int pgid = pid == 0 ? proc()->pgid : -pid;
  int found = 0;
  for (struct qk_process *p = qk_all_procs; p; p = p->next_all) {
    if (p->zombie || p->ns != proc()->ns)
      continue;
    if (pid == -1 ? (p->parent && p != proc()) : p->pgid == pgid) {
      found++;
      send_to(p, sig);
    }
  }
  return found ? 0 : -QK_ESRCH;
}

static int64_t thread_kill(int tgid, int tid, int sig)
{
  if (tid <= 0 || sig < 0 || sig > L_NSIG)
    return -QK_EINVAL;
  struct qk_task *t = qk_task_find(tid);
  if (!t || (tgid > 0 && t->proc->pid != tgid))
    return -QK_ESRCH;
  if (!sig)
    return 0;
  struct qk_siginfo_lite si = {.code = -6 /* SI_TKILL */, .pid = proc()->pid, .uid = proc()->uid};
  if (!t->proc->parent && t->proc->sigactions[sig - 1].handler == SIG_DFL &&
      !(t->sigmask & BIT(sig)))
    return 0; /* init's protection, as for kill */
  return qk_signal_task(t, sig, &si, false);
}

int64_t sys_tkill(ARGS)
{
  return thread_kill(-1, (int)a0, (int)a1);
}

int64_t sys_tgkill(ARGS)
{
  if ((int)a0 <= 0)
    return -QK_EINVAL;
  return thread_kill((int)a0, (int)a1, (int)a2);
}

/* rt_sigtimedwait(set, info, timeout, sigsetsize): takes a pending signal
 * of set (normally blocked by the caller) without running its handler. */
int64_t sys_rt_sigtimedwait(ARGS)
{
  struct qk_task *t = cur();
  struct qk_process *p = proc();
  uint64_t set;
  if (a3 != 8)
    return -QK_EINVAL;
  if (qk_copy_from_user(&set, a0, 8))
    return -QK_EFAULT;
  set &= ~UNBLOCKABLE;
  for (int pass = 0; pass < 2; pass++) {
    uint64_t pend = (pass ? p->sigpending : t->sigpending) & set;
    if (!pend)
      continue;
    int sig = __builtin_ctzll(pend) + 1;
    struct qk_siginfo_lite si = pass ? p->siginfo[sig - 1] : t->siginfo[sig - 1];
    if (t->has_saved_sigmask) { /* the mask of before the wait */
      t->sigmask = t->saved_sigmask;
      t->has_saved_sigmask = false;
    }
    if (pass)
      p->sigpending &= ~BIT(sig);
    else
      t->sigpending &= ~BIT(sig);
    if (a1) {
      struct l_siginfo info;
      fill_info(&info, sig, &si);
      if (qk_copy_to_user(a1, &info, sizeof(info)))
        return -QK_EFAULT;
    }
    return sig;
  }
  if (qk_wait_expired()) {
    t->sigmask = t->saved_sigmask;
    t->has_saved_sigmask = false;
    return -QK_EAGAIN;
  }
  uint64_t ns = ~0ull;
  if (a2) {
    struct l_timespec ts;
    if (qk_copy_from_user(&ts, a2, sizeof(ts)))
      return -QK_EFAULT;
    if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000)
      return -QK_EINVAL;
    ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    if (!ns)
      return -QK_EAGAIN;
  }
  /* Wake for the awaited signals too while they stay blocked: unblock
   * them for the wait (as Linux does), restore after. */
  if (!qk_restarting()) {
    t->saved_sigmask = t->sigmask;
    t->has_saved_sigmask = true;
    t->sigmask &= ~set;
  }
  int64_t r = qk_block(&t->siginfo, qk_wait_deadline(ns));
  if (r == -QK_ERESTART_WAIT)
    return r;
  return r == -QK_ERESTARTSYS ? -QK_EINTR : r;
}

/* ---- signalfd support (fs/signalfd.c) ---- */

bool qk_signal_pending_in(struct qk_task *t, uint64_t mask)
{
  return ((t->sigpending | t->proc->sigpending) & mask) != 0;
}

int qk_signal_dequeue(struct qk_task *t, uint64_t mask, struct qk_siginfo_lite *si)
{
  struct qk_process *p = t->proc;
  mask &= ~UNBLOCKABLE;
  uint64_t pend = t->sigpending & mask;
  if (pend) {
    int sig = __builtin_ctzll(pend) + 1;
    t->sigpending &= ~BIT(sig);
    *si = t->siginfo[sig - 1];
    return sig;
  }
  pend = p->sigpending & mask;
  if (!pend)
    return 0;
  int sig = __builtin_ctzll(pend) + 1;
  p->sigpending &= ~BIT(sig);
  *si = p->siginfo[sig - 1];
  return sig;
}
