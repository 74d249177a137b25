/* Signals: sending (kill, tkill, tgkill, the kernel's own: SIGCHLD,
 * SIGPIPE, faults), masks, handlers, Linux's x86-64 rt_sigframe on the
 * user (or alternate) stack with the FPU state (an XSAVE image with
 * Linux's software-reserved description where the context has XSAVE, else
 * the FXSAVE image), rt_sigreturn, sigaltstack, rt_sigsuspend and pause,
 * and job control: a stop signal's default action stops every thread of
 * the process (a group stop: each thread parks on &p->jobctl where it would
 * next run, the scheduler runs none of them) until SIGCONT; wait4/waitid
 * report stops and continues (task/proc.c). */
#include <qk/arch.h>
#include <qk/events.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/smp.h>
#include <qk/task.h>

#define ARGS uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5

#define SA_NOCLDSTOP 1ull
#define SA_NOCLDWAIT 2ull
#define SA_ONSTACK 0x08000000ull
#define SA_RESTART 0x10000000ull
#define SA_NODEFER 0x40000000ull
#define SA_RESETHAND 0x80000000ull
#define SS_ONSTACK 1
#define UC_FP_XSTATE 1ull
#define UC_SIGCONTEXT_SS 2ull
#define FP_XSTATE_MAGIC1 0x46505853u
#define FP_XSTATE_MAGIC2 0x46505845u
#define XSAVE_HDR 512u  /* the XSAVE header: XSTATE_BV, XCOMP_BV, 48 reserved bytes */
#define XSAVE_MIN 576u  /* legacy area + header */
#define XFEATURE_AMX (3ull << 17) /* TILECFG/TILEDATA: never restored from a frame */
#define SS_DISABLE 2
#define RFLAGS_TF 0x100ull
#define RFLAGS_DF 0x400ull
#define RFLAGS_RF 0x10000ull
#define SIG_DFL 0
#define SIG_IGN 1
#define BIT(sig) (1ull << ((sig)-1))
#define UNBLOCKABLE (BIT(L_SIGKILL) | BIT(L_SIGSTOP))
#define L_SIGCHLD 17
#define L_SIGCONT 18
#define L_SIGTTIN 21
/* Default action: ignore (CHLD CONT URG WINCH; SIGCONT's continue happens
 * when it is sent). */
#define DFL_IGNORE (BIT(17) | BIT(18) | BIT(23) | BIT(28))
/* Default action: stop (STOP TSTP TTIN TTOU). */
#define STOP_SIGS (BIT(L_SIGSTOP) | BIT(20) | BIT(21) | BIT(22))
#define CLD_STOPPED 5
#define CLD_CONTINUED 6
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

/* Linux's _fpx_sw_bytes: bytes 464..511 of the FXSAVE area of a frame's
 * XSAVE image (the software-available part), describing the image. */
struct fpx_sw_bytes {
  uint32_t magic1;        /* FP_XSTATE_MAGIC1 */
  uint32_t extended_size; /* xstate_size + 4 (FP_XSTATE_MAGIC2 after the image) */
  uint64_t xfeatures;     /* the components present */
  uint32_t xstate_size;   /* the XSAVE image's size */
  uint32_t padding[7];
};
_Static_assert(sizeof(struct fpx_sw_bytes) == 48, "fpx_sw_bytes");
#define FPX_SW_OFF 464u

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

/* The process signals of p that t may take: those meant for t, for no
 * thread in particular, or for a thread that can no longer take them (it
 * ended or blocks them now). As on Linux, a process signal is taken by the
 * thread it woke: another thread that merely passes through the kernel
 * (its sleep ended) does not snatch it, which left the woken one (a main
 * thread in epoll_pwait) to run its wait again to the timeout. */
static uint64_t proc_pending_for(const struct qk_task *t)
{
  struct qk_process *p = t->proc;
  uint64_t pend = p->sigpending & ~t->sigmask, out = 0;
  while (pend) {
    int sig = __builtin_ctzll(pend) + 1;
    pend &= pend - 1;
    int tid = p->sigtarget[sig - 1];
    bool ok = !tid || tid == t->tid;
    if (!ok) {
      const struct qk_task *o = p->threads;
      while (o && o->tid != tid)
        o = o->next_in_proc;
      ok = !o || o->state == QK_TASK_DEAD || (o->sigmask & BIT(sig)) ||
           (o->state == QK_TASK_BLOCKED && !o->restart); /* not soon: a vfork parent */
    }
    if (ok)
      out |= BIT(sig);
  }
  return out;
}

/* Deliverable signals of t: its own and the process's it may take. */
static uint64_t deliverable(const struct qk_task *t)
{
  return (t->sigpending & ~t->sigmask) | proc_pending_for(t);
}

bool qk_signal_pending(struct qk_task *t)
{
  return deliverable(t) != 0;
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

/* ---- job control ---- */

static int signal_proc(struct qk_process *p, int sig, const struct qk_siginfo_lite *info,
                       bool from_host);

/* A thread of a stopped process leaves the scheduler's choice: parked on
 * &p->jobctl with its registers as they are (a syscall to rerun, or user
 * code) and its deadline kept aside (a parked wait's timeout must not wake
 * it while stopped; it counts again once continued). stop_deadline 0: not
 * kept (deadlines are never 0); a thread some signal woke while stopped
 * parks again with the first one kept. */
static void park(struct qk_task *t)
{
  if (!t->stop_deadline)
    t->stop_deadline = t->deadline;
  t->deadline = ~0ull;
  t->state = QK_TASK_BLOCKED;
  t->wchan = &t->proc->jobctl;
}

static void unpark_all(struct qk_process *p)
{
  for (struct qk_task *t = p->threads; t; t = t->next_in_proc) {
    if (!t->stop_deadline)
      continue;
    t->deadline = t->stop_deadline;
    t->stop_deadline = 0;
    if (t->state == QK_TASK_BLOCKED && t->wchan == &p->jobctl)
      qk_wake_task(t);
  }
}

/* t's process is stopped, and t has no SIGKILL to die of. */
static bool must_stop(const struct qk_task *t)
{
  const struct qk_process *p = t->proc;
  return (p->jobctl & QK_JOB_STOPPED) && !((t->sigpending | p->sigpending) & BIT(L_SIGKILL));
}

bool qk_signal_stop_park(struct qk_task *t)
{
  if (!must_stop(t))
    return false;
  park(t);
  return true;
}

/* The parent learns of a stop or a continue: its wait wakes, and SIGCHLD
 * comes unless its action has SA_NOCLDSTOP. */
static void notify_parent(struct qk_process *p, int code, int status)
{
  struct qk_process *parent = p->parent;
  if (!parent)
    return;
  qk_wake(parent);
  if (parent->sigactions[L_SIGCHLD - 1].flags & SA_NOCLDSTOP)
    return;
  struct qk_siginfo_lite si = {.code = code, .pid = p->pid, .uid = p->uid, .status = status};
  signal_proc(parent, L_SIGCHLD, &si, false);
}

static void discard(struct qk_process *p, uint64_t bits)
{
  p->sigpending &= ~bits;
  for (struct qk_task *t = p->threads; t; t = t->next_in_proc)
    t->sigpending &= ~bits;
}

/* What sending sig does at once, whatever the signal's mask and action
 * (Linux's prepare_signal): SIGCONT discards pending stop signals and
 * continues a stopped process, even where SIGCONT is blocked or ignored;
 * a stop signal discards a pending SIGCONT; SIGKILL wakes the parked
 * threads (qk_signal_stop_park lets them run to their end). */
static void on_generate(struct qk_process *p, int sig)
{
  if (sig == L_SIGCONT) {
    discard(p, STOP_SIGS);
    if (p->jobctl & QK_JOB_STOPPED) {
      p->jobctl = QK_JOB_CONT_REPORT;
      unpark_all(p);
      notify_parent(p, CLD_CONTINUED, L_SIGCONT);
    }
  } else if (BIT(sig) & STOP_SIGS) {
    discard(p, BIT(L_SIGCONT));
  } else if (sig == L_SIGKILL && (p->jobctl & QK_JOB_STOPPED)) {
    unpark_all(p);
  }
}

/* POSIX's orphaned process group: no member has a parent in another group
 * of the same session, so nobody there would continue it; TSTP, TTIN and
 * TTOU do not stop it (their default action is discarded, as on Linux). */
static bool pgrp_orphaned(const struct qk_process *p)
{
  for (const struct qk_process *q = qk_all_procs; q; q = q->next_all) {
    if (q->zombie || q->ns != p->ns || q->pgid != p->pgid)
      continue;
    const struct qk_process *par = q->parent;
    if (par && !par->zombie && par->pgid != q->pgid && par->sid == q->sid)
      return false;
  }
  return true;
}

/* t (the current thread) stops where it is: a syscall a signal interrupted
 * runs again once continued (no handler ran: as Linux restarts it after a
 * stop), with the mask of before a sigsuspend/ppoll (the rerun sets it
 * again). */
static void stop_here(struct qk_task *t, struct qk_regs *r, bool in_syscall)
{
  int64_t rax = (int64_t)r->rax;
  if (in_syscall && (rax == -QK_ERESTARTSYS || rax == -QK_EINTR)) {
    r->rax = r->orig_rax;
    r->rip -= 2;
  }
  if (t->has_saved_sigmask) {
    t->has_saved_sigmask = false;
    qk_signal_set_mask(t, t->saved_sigmask);
  }
  park(t);
}

/* A thread dequeued sig, a stop signal with its default action, and
 * parked: the group stop. Threads running on other vCPUs are sent to their
 * scheduler (which parks them), the others park when next picked
 * (sched.c). The parent is told (wait4 WUNTRACED, SIGCHLD with
 * CLD_STOPPED). */
static void group_stop(struct qk_process *p, int sig)
{
  p->jobctl = QK_JOB_STOPPED | QK_JOB_STOP_REPORT;
  p->stop_sig = (uint8_t)sig;
  for (unsigned i = 0; qk_smp_on && i < qk_nr_cpus; i++) {
    struct qk_percpu *c = &qk_percpus[i];
    if (c != qk_arch_cpu_private() && c->running && c->running->proc == p) {
      c->need_resched = true;
      qk_smp_kick(i);
    }
  }
  notify_parent(p, CLD_STOPPED, sig);
}

/* Takes sig off t's pending signals (its own first, then the process's). */
static void take(struct qk_task *t, int sig, struct qk_siginfo_lite *si)
{
  if (t->sigpending & BIT(sig)) {
    t->sigpending &= ~BIT(sig);
    *si = t->siginfo[sig - 1];
  } else {
    t->proc->sigpending &= ~BIT(sig);
    *si = t->proc->siginfo[sig - 1];
  }
}

/* Stops t's process where sig's default action is a stop (TSTP, TTIN and
 * TTOU not in an orphaned group). */
static bool stops(struct qk_process *p, int sig)
{
  return (BIT(sig) & STOP_SIGS) && p->sigactions[sig - 1].handler == SIG_DFL &&
         (sig == L_SIGSTOP || !pgrp_orphaned(p));
}

bool qk_signal_stop_in_wait(struct qk_task *t)
{
  uint64_t pend = deliverable(t);
  int sig = __builtin_ctzll(pend) + 1;
  if (!pend || (pend & (pend - 1)) || !stops(t->proc, sig))
    return false;
  struct qk_siginfo_lite si;
  take(t, sig, &si);
  group_stop(t->proc, sig);
  return true;
}

int qk_signal_task(struct qk_task *t, int sig, const struct qk_siginfo_lite *info, bool force)
{
  struct qk_process *p = t->proc;
  if (sig < 1 || sig > L_NSIG)
    return -QK_EINVAL;
  if (p->zombie || p->exiting)
    return 0;
  on_generate(p, sig);
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

/* The pid namespace's init (the boot process, a container's first
 * process) gets from inside only the signals it handles or blocks. Other
 * parentless processes (a pod's execs) are not protected: a ^C on an
 * exec's terminal ends a plain `sleep`, as on Linux. */
static bool init_refuses(struct qk_process *p, int sig, bool blocked)
{
  return p->ns && p->ns->init == p && !p->parent &&
         p->sigactions[sig - 1].handler == SIG_DFL && !blocked;
}

/* How soon t can take sig: 0 never (blocked, dead), 1 when it resumes
 * (parked where a signal does not wake it: a vfork parent), 2 now (it
 * runs, may run, or is woken). */
static int take_rank(const struct qk_task *t, int sig)
{
  if (t->state == QK_TASK_DEAD || (t->sigmask & BIT(sig)))
    return 0;
  return t->state == QK_TASK_BLOCKED && !t->restart ? 1 : 2;
}

/* The thread a process signal is meant for, as Linux picks it: the main
 * thread (the one the pid names) where it can take it as soon as any
 * other, else the first other thread that can. NULL: every thread blocks
 * it; it stays pending on the process for the first thread that unblocks
 * it or waits for it (sigwaitinfo, signalfd). Any thread that does not
 * block it may still take it first: this one is only the one woken. */
static struct qk_task *target_of(struct qk_process *p, int sig)
{
  struct qk_task *best = NULL;
  int rank = 0;
  for (struct qk_task *t = p->threads; t; t = t->next_in_proc) {
    int r = take_rank(t, sig);
    if (r > rank || (r && r == rank && t->tid == p->pid)) {
      best = t;
      rank = r;
    }
  }
  return best;
}

/* Signals pending on the process (of bits) whose woken thread may no
 * longer take them (it blocked them, or ended): another one is woken, as
 * Linux retargets. */
static void aim(struct qk_process *p, int sig)
{
  struct qk_task *t = target_of(p, sig);
  p->sigtarget[sig - 1] = t ? t->tid : 0;
  if (t)
    kick(t);
}

void qk_signal_retarget(struct qk_process *p, uint64_t bits)
{
  uint64_t pend = p->sigpending & bits;
  while (pend) {
    int sig = __builtin_ctzll(pend) + 1;
    pend &= pend - 1;
    aim(p, sig);
  }
}

void qk_signal_set_mask(struct qk_task *t, uint64_t mask)
{
  uint64_t newly = mask & ~t->sigmask & ~UNBLOCKABLE;
  t->sigmask = mask & ~UNBLOCKABLE;
  if (newly & t->proc->sigpending)
    qk_signal_retarget(t->proc, newly);
}

static int signal_proc(struct qk_process *p, int sig, const struct qk_siginfo_lite *info,
                       bool from_host)
{
  if (sig < 1 || sig > L_NSIG)
    return -QK_EINVAL;
  if (p->zombie || p->exiting)
    return 0;
  on_generate(p, sig);
  if (ignored(p, sig))
    return 0;
  /* As on Linux, a blocked signal stays queued (for signalfd). */
  if (!from_host && init_refuses(p, sig, blocked_by_all(p, sig)))
    return 0;
  p->sigpending |= BIT(sig);
  if (info)
    p->siginfo[sig - 1] = *info;
  if (sig == L_SIGKILL) {
    p->sigtarget[sig - 1] = 0;
    for (struct qk_task *t = p->threads; t; t = t->next_in_proc)
      kick(t);
    return 0;
  }
  aim(p, sig);
  if (!p->sigtarget[sig - 1])
    qk_wake(&qk_poll_wq); /* blocked everywhere: a signalfd may be waiting for it */
  return 0;
}

int qk_signal_proc(struct qk_process *p, int sig, const struct qk_siginfo_lite *info)
{
  return signal_proc(p, sig, info, false);
}

/* From the host (the pod's StopContainer, a container kill): to the
 * process, whatever its threads block, without init's protection. */
int qk_signal_proc_host(struct qk_process *p, int sig, const struct qk_siginfo_lite *info)
{
  return signal_proc(p, sig, info, true);
}

static bool on_altstack(struct qk_task *t, uint64_t sp)
{
  return t->altstack_size && sp > t->altstack_sp && sp <= t->altstack_sp + t->altstack_size;
}

/* Scratch for the running task's XSAVE image: the scheduler's save area
 * (task.h), unused while the task runs (its next switch-out overwrites
 * it; a switch-in has already loaded it). 64-byte aligned for XSAVE. */
static inline uint8_t *fpu_scratch(struct qk_task *t)
{
  return (uint8_t *)(((uintptr_t)t->xstate_buf + 63) & ~(uintptr_t)63);
}

/* The FPU area a frame holds: the XSAVE image and FP_XSTATE_MAGIC2 where
 * this context saves with XSAVE, else the 512-byte FXSAVE image. */
static uint32_t frame_fp_size(uint32_t xsize)
{
  return xsize ? xsize + 4 : 512;
}

uint64_t qk_signal_min_stack(void)
{
  uint64_t mask;
  uint32_t xsize = qk_arch_xstate_layout(&mask);
  /* FPU area, its 64-byte alignment, the frame, its 16-byte alignment. */
  return frame_fp_size(xsize) + 64 + sizeof(struct rt_sigframe) + 16 + 8;
}

/* The handler starts with the FPU in its init state (default control
 * words, AVX and up in their init state where this context can load
 * them), as on Linux. */
static void fpu_init_for_handler(struct qk_task *t)
{
  uint8_t *x = fpu_scratch(t);
  memset(x, 0, 512);
  x[0] = 0x7f, x[1] = 0x03; /* FCW 0x37f */
  x[24] = 0x80, x[25] = 0x1f; /* MXCSR 0x1f80 */
  qk_arch_xstate_restore(x, QK_XSTATE_FX);
}

/* Writes the live FPU state to the frame's FPU area at fpaddr. */
static int save_fpstate(struct qk_task *t, uint64_t fpaddr, uint32_t xsize, uint64_t xmask)
{
  uint8_t *x = fpu_scratch(t);
  if (!xsize) {
    qk_fpu_save(x);
    return qk_copy_to_user(fpaddr, x, 512) ? -QK_EFAULT : 0;
  }
  qk_arch_xstate_save(x);
  /* XSAVE writes neither bytes 416..511 of the legacy area nor the
   * header's XCOMP_BV and reserved bytes: no stale bytes reach the user. */
  memset(x + 416, 0, 512 - 416);
  memset(x + XSAVE_HDR + 8, 0, XSAVE_MIN - XSAVE_HDR - 8);
  struct fpx_sw_bytes sw = {.magic1 = FP_XSTATE_MAGIC1,
                            .extended_size = xsize + 4,
                            .xfeatures = xmask,
                            .xstate_size = xsize};
  memcpy(x + FPX_SW_OFF, &sw, sizeof(sw));
  uint32_t magic2 = FP_XSTATE_MAGIC2;
  if (qk_copy_to_user(fpaddr, x, xsize) || qk_copy_to_user(fpaddr + xsize, &magic2, 4))
    return -QK_EFAULT;
  return 0;
}

/* rt_sigreturn's FPU state from the user's frame. An image whose
 * software bytes or FP_XSTATE_MAGIC2 do not describe an XSAVE image of
 * this context is taken as an FXSAVE image (x87/SSE; the rest init), as
 * Linux does. An XSAVE header that XRSTOR would refuse (a component not
 * enabled, compacted form, reserved bytes) is the user's error: -EFAULT
 * (SIGSEGV), never a #GP in the kernel. */
static int restore_fpstate(struct qk_task *t, uint64_t fpaddr)
{
  uint8_t *x = fpu_scratch(t);
  uint64_t xmask;
  uint32_t xsize = qk_arch_xstate_layout(&xmask);
  if (qk_copy_from_user(x, fpaddr, 512))
    return -QK_EFAULT;
  uint32_t mxcsr;
  memcpy(&mxcsr, x + 24, 4);
  mxcsr &= 0xffbf; /* reserved bits would fault fxrstor/xrstor in the kernel */
  memcpy(x + 24, &mxcsr, 4);
  struct fpx_sw_bytes sw;
  memcpy(&sw, x + FPX_SW_OFF, sizeof(sw));
  bool xs = xsize && sw.magic1 == FP_XSTATE_MAGIC1 && sw.xstate_size >= XSAVE_MIN &&
            sw.xstate_size <= xsize && sw.extended_size >= sw.xstate_size + 4;
  if (xs) {
    uint32_t magic2;
    if (qk_copy_from_user(&magic2, fpaddr + sw.xstate_size, 4))
      return -QK_EFAULT;
    xs = magic2 == FP_XSTATE_MAGIC2;
  }
  if (!xs) {
    if (xsize) /* an FXSAVE image where XSAVE is in use: the rest init */
      qk_arch_xstate_restore(x, QK_XSTATE_FX);
    else
      qk_fpu_restore(x);
    return 0;
  }
  if (qk_copy_from_user(x + 512, fpaddr + 512, sw.xstate_size - 512))
    return -QK_EFAULT;
  memset(x + sw.xstate_size, 0, xsize - sw.xstate_size);
  uint64_t hdr[8];
  memcpy(hdr, x + XSAVE_HDR, sizeof(hdr));
  if ((hdr[0] & ~xmask) || (hdr[0] & XFEATURE_AMX))
    return -QK_EFAULT;
  for (int i = 1; i < 8; i++)
    if (hdr[i])
      return -QK_EFAULT;
  /* Components the frame says it lacks come back in their init state. */
  hdr[0] &= sw.xfeatures;
  memcpy(x + XSAVE_HDR, &hdr[0], 8);
  qk_arch_xstate_restore(x, QK_XSTATE_X);
  return 0;
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
  uint64_t xmask;
  uint32_t xsize = qk_arch_xstate_layout(&xmask);
  uint64_t sp = r->rsp - 128; /* the red zone */
  bool alt = on_altstack(t, r->rsp);
  if ((sa->flags & SA_ONSTACK) && t->altstack_size && !(t->altstack_flags & SS_DISABLE) && !alt) {
    sp = t->altstack_sp + t->altstack_size;
    alt = true;
  }
  sp = (sp - frame_fp_size(xsize)) & ~63ull;
  uint64_t fpaddr = sp;
  sp = ((sp - sizeof(struct rt_sigframe)) & ~15ull) - 8;
  /* A frame that does not fit the alternate stack would overwrite what
   * lies below it: SIGSEGV instead, as Linux does. */
  if (alt && (sp < t->altstack_sp || sp > fpaddr))
    return -QK_EFAULT;
  if (save_fpstate(t, fpaddr, xsize, xmask))
    return -QK_EFAULT;
  struct rt_sigframe f;
  memset(&f, 0, sizeof(f));
  f.uc.uc_flags = UC_SIGCONTEXT_SS | (xsize ? UC_FP_XSTATE : 0);
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
  /* As Linux sets a handler up: DF clear (the ABI at a call), TF clear (a
   * program single-stepping itself must not trap again on the handler's
   * first instruction), RF clear. AC stays: Linux 6.18 here keeps it too
   * (t_jobctl's rflags scenario checks both natively). */
  r->rflags &= ~(RFLAGS_TF | RFLAGS_DF | RFLAGS_RF);
  fpu_init_for_handler(t);
  return 0;
}

void qk_signal_deliver(struct qk_task *t, struct qk_regs *r, bool in_syscall)
{
  struct qk_process *p = t->proc;
  bool handled = false;
  /* A fault path that cannot save the task's whole FPU state (ring 0 of
   * a PVM-style host in kernel-worker mode): deliver from the worker,
   * where the frame gets the full XSAVE image. */
  if (!in_syscall && qk_signal_pending(t) && !qk_arch_xstate_full())
    qk_arch_resched_in_worker(r);
  /* A thread of a stopped process (it ran on another vCPU) stops before it
   * takes anything but SIGKILL, as on Linux. */
  if (qk_unlikely(p->jobctl & QK_JOB_STOPPED) && must_stop(t)) {
    stop_here(t, r, in_syscall);
    return;
  }
  for (int guard = 0; guard < L_NSIG; guard++) {
    uint64_t pend = deliverable(t);
    if (!pend)
      break;
    int sig = __builtin_ctzll(pend) + 1;
    struct qk_siginfo_lite si;
    take(t, sig, &si);
    struct l_sigaction *sa = &p->sigactions[sig - 1];
    if (sig != L_SIGKILL && sa->handler == SIG_IGN)
      continue;
    if (sig == L_SIGKILL || sa->handler == SIG_DFL) {
      if (sig != L_SIGKILL && (DFL_IGNORE & BIT(sig)))
        continue;
      if (BIT(sig) & STOP_SIGS) {
        if (!stops(p, sig))
          continue;
        stop_here(t, r, in_syscall);
        group_stop(p, sig);
        return;
      }
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
    qk_signal_set_mask(t, t->sigmask | sa->mask | ((sa->flags & SA_NODEFER) ? 0 : BIT(sig)));
    if (sa->flags & SA_RESETHAND)
      sa->handler = SIG_DFL;
  }
  if (in_syscall && (int64_t)r->rax == -QK_ERESTARTSYS) {
    r->rax = r->orig_rax; /* nothing took the signal: run the call again */
    r->rip -= 2;
  }
  if (!handled && t->has_saved_sigmask && !qk_signal_pending(t)) {
    t->has_saved_sigmask = false;
    qk_signal_set_mask(t, t->saved_sigmask);
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
  /* Process signals this thread was woken for and now blocks: another. */
  if (cur()->sigmask & ~old & proc()->sigpending)
    qk_signal_retarget(proc(), cur()->sigmask & ~old);
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
  qk_signal_set_mask(t, uc.sigmask);
  if (m->fpstate && restore_fpstate(t, m->fpstate)) {
    qk_process_exit(proc(), 11 | 0x80);
    return 0;
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
  /* kill(-1): every process the caller may signal but itself and its
   * namespace's pid 1 (as Linux; in a pod's shared namespace the other
   * containers' inits are ordinary processes); kill(-pgid). Success where
   * one was signalled, else the last error. */
  int pgid = pid == 0 ? proc()->pgid : -pid;
  int found = 0, sent = 0, err = -QK_ESRCH;
  for (struct qk_process *p = qk_all_procs; p; p = p->next_all) {
    if (p->zombie || p->ns != proc()->ns)
      continue;
    if (pid == -1 ? (p->pid != 1 && p != proc()) : p->pgid == pgid) {
      found++;
      int e = send_to(p, sig);
      if (e)
        err = e;
      else
        sent++;
    }
  }
  if (sent)
    return 0;
  return found ? err : -QK_ESRCH;
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
  if (init_refuses(t->proc, sig, t->sigmask & BIT(sig)))
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
      t->has_saved_sigmask = false;
      qk_signal_set_mask(t, t->saved_sigmask);
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
    t->has_saved_sigmask = false;
    qk_signal_set_mask(t, t->saved_sigmask);
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

/* ---- the terminal's job control (fs/tty.c) ---- */

int64_t qk_signal_tty_background(int sig)
{
  struct qk_task *t = cur();
  struct qk_process *p = t->proc;
  if ((t->sigmask & BIT(sig)) || p->sigactions[sig - 1].handler == SIG_IGN)
    return sig == L_SIGTTIN ? -QK_EIO : 0;
  if (pgrp_orphaned(p))
    return -QK_EIO;
  struct qk_siginfo_lite si = {.code = QK_SI_KERNEL};
  for (struct qk_process *q = qk_all_procs; q; q = q->next_all)
    if (!q->zombie && q->ns == p->ns && q->pgid == p->pgid)
      qk_signal_proc(q, sig, &si);
  /* The call runs again after the stop (or per SA_RESTART after a
   * handler); EIO where nothing came (an init refusing it). */
  return qk_signal_pending(t) ? -QK_ERESTARTSYS : -QK_EIO;
}

/* ---- a call's own mask for its wait (ppoll, pselect6, epoll_pwait) ---- */

int64_t qk_signal_wait_mask(uint64_t umask)
{
  struct qk_task *t = cur();
  if (!umask || qk_restarting())
    return 0;
  uint64_t m;
  if (qk_copy_from_user(&m, umask, 8))
    return -QK_EFAULT;
  t->saved_sigmask = t->sigmask;
  t->has_saved_sigmask = true;
  qk_signal_set_mask(t, m); /* what it newly blocks goes to another thread */
  return 0;
}

int64_t qk_signal_wait_mask_end(uint64_t umask, int64_t r)
{
  struct qk_task *t = cur();
  if (r == -QK_ERESTART_WAIT)
    return r;
  if (r == -QK_ERESTARTSYS)
    return -QK_EINTR; /* delivery uses and clears the saved mask */
  if (umask && t->has_saved_sigmask) {
    t->has_saved_sigmask = false;
    qk_signal_set_mask(t, t->saved_sigmask);
  }
  return r;
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
