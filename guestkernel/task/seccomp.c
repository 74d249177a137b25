/* Seccomp in the guest kernel: seccomp(2), prctl(PR_SET/GET_SECCOMP), a
 * classic-BPF validator with Linux's rules (seccomp_check_filter +
 * bpf_check_classic) and an interpreter run by the dispatcher before the
 * syscall (include/qk/sec.h). Actions: KILL_PROCESS, KILL_THREAD, TRAP
 * (SIGSYS, si_code SYS_SECCOMP, si_call_addr/si_syscall/si_arch/si_errno),
 * ERRNO, TRACE and USER_NOTIF (no tracer or listener can exist here: ENOSYS,
 * as Linux answers without one), LOG, ALLOW. Filters stack (the action of
 * lowest value wins, the newest on ties), are shared by reference with the
 * threads and children that inherit them, and TSYNC puts the caller's chain
 * on every thread of its process. */
#include <qk/arch.h>
#include <qk/kernel.h>
#include <qk/lib.h>
#include <qk/mm.h>
#include <qk/sec.h>
#include <qk/syscall.h>
#include <qk/task.h>

#define ARGS uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5

struct l_sock_filter {
  uint16_t code;
  uint8_t jt, jf;
  uint32_t k;
};
_Static_assert(sizeof(struct l_sock_filter) == 8, "sock_filter");

struct l_seccomp_data {
  int32_t nr;
  uint32_t arch;
  uint64_t instruction_pointer;
  uint64_t args[6];
};
_Static_assert(sizeof(struct l_seccomp_data) == 64, "seccomp_data");

struct qk_seccomp_filter {
  uint32_t refs;
  uint32_t len;
  uint32_t path_len; /* instructions of this chain, + 4 per filter (Linux) */
  bool log;
  struct qk_seccomp_filter *prev;
  struct l_sock_filter insns[];
};

#define AUDIT_ARCH_X86_64 0xc000003eu
#define MAX_INSNS_PER_PATH 32768u
#define BPF_MEMWORDS 16

#define MODE_STRICT 1
#define MODE_FILTER 2

#define RET_KILL_PROCESS 0x80000000u
#define RET_KILL_THREAD 0x00000000u
#define RET_TRAP 0x00030000u
#define RET_ERRNO 0x00050000u
#define RET_USER_NOTIF 0x7fc00000u
#define RET_TRACE 0x7ff00000u
#define RET_LOG 0x7ffc0000u
#define RET_ALLOW 0x7fff0000u
#define RET_ACTION_FULL 0xffff0000u
#define RET_DATA 0x0000ffffu

#define FLAG_TSYNC 1u
#define FLAG_LOG 2u
#define FLAG_SPEC_ALLOW 4u
#define FLAG_NEW_LISTENER 8u
#define FLAG_TSYNC_ESRCH 16u
#define FLAG_WAIT_KILLABLE 32u

/* classic BPF opcodes */
#define BPF_CLASS(c) ((c)&0x07)
#define BPF_LD 0x00
#define BPF_LDX 0x01
#define BPF_ST 0x02
#define BPF_STX 0x03
#define BPF_ALU 0x04
#define BPF_JMP 0x05
#define BPF_RET 0x06
#define BPF_MISC 0x07
#define BPF_W 0x00
#define BPF_IMM 0x00
#define BPF_ABS 0x20
#define BPF_MEM 0x60
#define BPF_LEN 0x80
#define BPF_ADD 0x00
#define BPF_SUB 0x10
#define BPF_MUL 0x20
#define BPF_DIV 0x30
#define BPF_OR 0x40
#define BPF_AND 0x50
#define BPF_LSH 0x60
#define BPF_RSH 0x70
#define BPF_NEG 0x80
#define BPF_XOR 0xa0
#define BPF_JA 0x00
#define BPF_JEQ 0x10
#define BPF_JGT 0x20
#define BPF_JGE 0x30
#define BPF_JSET 0x40
#define BPF_K 0x00
#define BPF_X 0x08
#define BPF_A 0x10
#define BPF_TAX 0x00
#define BPF_TXA 0x80

static inline struct qk_task *cur(void)
{
  return qk_current();
}

static void filter_put(struct qk_seccomp_filter *f)
{
  while (f && --f->refs == 0) {
    struct qk_seccomp_filter *prev = f->prev;
    qk_kfree(f);
    f = prev;
  }
}

/* Linux's checks: seccomp_check_filter (allowed opcodes, LD ABS within
 * seccomp_data and aligned), bpf_check_classic (jumps in range and
 * forward, constant shifts < 32, no constant division by 0, scratch
 * indices < 16, ends with RET) and check_load_and_stores (no scratch word
 * read before it is written on every path). */
static int validate(const struct l_sock_filter *p, uint32_t len)
{
  if (len == 0 || len > QK_SEC_MAX_FILTER)
    return -QK_EINVAL;
  for (uint32_t pc = 0; pc < len; pc++) {
    const struct l_sock_filter *f = &p[pc];
    uint16_t c = f->code;
    switch (c) {
    case BPF_LD | BPF_W | BPF_ABS:
      if (f->k >= sizeof(struct l_seccomp_data) || (f->k & 3))
        return -QK_EINVAL;
      break;
    case BPF_LD | BPF_W | BPF_LEN:
    case BPF_LDX | BPF_W | BPF_LEN:
    case BPF_RET | BPF_K:
    case BPF_RET | BPF_A:
    case BPF_ALU | BPF_ADD | BPF_K:
    case BPF_ALU | BPF_ADD | BPF_X:
    case BPF_ALU | BPF_SUB | BPF_K:
    case BPF_ALU | BPF_SUB | BPF_X:
    case BPF_ALU | BPF_MUL | BPF_K:
    case BPF_ALU | BPF_MUL | BPF_X:
    case BPF_ALU | BPF_DIV | BPF_X:
    case BPF_ALU | BPF_AND | BPF_K:
    case BPF_ALU | BPF_AND | BPF_X:
    case BPF_ALU | BPF_OR | BPF_K:
    case BPF_ALU | BPF_OR | BPF_X:
    case BPF_ALU | BPF_XOR | BPF_K:
    case BPF_ALU | BPF_XOR | BPF_X:
    case BPF_ALU | BPF_LSH | BPF_X:
    case BPF_ALU | BPF_RSH | BPF_X:
    case BPF_ALU | BPF_NEG:
    case BPF_LD | BPF_IMM:
    case BPF_LDX | BPF_IMM:
    case BPF_MISC | BPF_TAX:
    case BPF_MISC | BPF_TXA:
      break;
    case BPF_ALU | BPF_DIV | BPF_K:
      if (f->k == 0)
        return -QK_EINVAL;
      break;
    case BPF_ALU | BPF_LSH | BPF_K:
    case BPF_ALU | BPF_RSH | BPF_K:
      if (f->k >= 32)
        return -QK_EINVAL;
      break;
    case BPF_LD | BPF_MEM:
    case BPF_LDX | BPF_MEM:
    case BPF_ST:
    case BPF_STX:
      if (f->k >= BPF_MEMWORDS)
        return -QK_EINVAL;
      break;
    case BPF_JMP | BPF_JA:
      if (f->k >= len - pc - 1)
        return -QK_EINVAL;
      break;
    case BPF_JMP | BPF_JEQ | BPF_K:
    case BPF_JMP | BPF_JEQ | BPF_X:
    case BPF_JMP | BPF_JGE | BPF_K:
    case BPF_JMP | BPF_JGE | BPF_X:
    case BPF_JMP | BPF_JGT | BPF_K:
    case BPF_JMP | BPF_JGT | BPF_X:
    case BPF_JMP | BPF_JSET | BPF_K:
    case BPF_JMP | BPF_JSET | BPF_X:
      if (pc + f->jt + 1 >= len || pc + f->jf + 1 >= len)
        return -QK_EINVAL;
      break;
    default:
      return -QK_EINVAL;
    }
  }
  if (BPF_CLASS(p[len - 1].code) != BPF_RET)
    return -QK_EINVAL;
  /* Scratch words written on every path to each instruction (forward
   * jumps only: one pass in program order). */
  uint16_t *valid = qk_kmalloc(len * sizeof(uint16_t));
  if (!valid)
    return -QK_ENOMEM;
  for (uint32_t i = 0; i < len; i++)
    valid[i] = 0xffff;
  uint16_t memvalid = 0;
  int r = 0;
  for (uint32_t pc = 0; pc < len && !r; pc++) {
    const struct l_sock_filter *f = &p[pc];
    memvalid &= valid[pc];
    switch (f->code) {
    case BPF_ST:
    case BPF_STX:
      memvalid |= (uint16_t)(1u << f->k);
      break;
    case BPF_LD | BPF_MEM:
    case BPF_LDX | BPF_MEM:
      if (!(memvalid & (1u << f->k)))
        r = -QK_EINVAL;
      break;
    case BPF_JMP | BPF_JA:
      valid[pc + 1 + f->k] &= memvalid;
      memvalid = 0xffff;
      break;
    default:
      if (BPF_CLASS(f->code) == BPF_JMP) {
        valid[pc + 1 + f->jt] &= memvalid;
        valid[pc + 1 + f->jf] &= memvalid;
        memvalid = 0xffff;
      } else if (BPF_CLASS(f->code) == BPF_RET) {
        memvalid = 0xffff;
      }
      break;
    }
  }
  qk_kfree(valid);
  return r;
}

static uint32_t run_filter(const struct qk_seccomp_filter *fl, const struct l_seccomp_data *d)
{
  const struct l_sock_filter *p = fl->insns;
  uint32_t A = 0, X = 0, M[BPF_MEMWORDS] = {0};
  const uint8_t *data = (const uint8_t *)d;
  for (uint32_t pc = 0; pc < fl->len; pc++) {
    const struct l_sock_filter *f = &p[pc];
    switch (f->code) {
    case BPF_LD | BPF_W | BPF_ABS:
      memcpy(&A, data + f->k, 4);
      break;
    case BPF_LD | BPF_W | BPF_LEN:
      A = sizeof(*d);
      break;
    case BPF_LDX | BPF_W | BPF_LEN:
      X = sizeof(*d);
      break;
    case BPF_LD | BPF_IMM:
      A = f->k;
      break;
    case BPF_LDX | BPF_IMM:
      X = f->k;
      break;
    case BPF_LD | BPF_MEM:
      A = M[f->k];
      break;
    case BPF_LDX | BPF_MEM:
      X = M[f->k];
      break;
    case BPF_ST:
      M[f->k] = A;
      break;
    case BPF_STX:
      M[f->k] = X;
      break;
    case BPF_MISC | BPF_TAX:
      X = A;
      break;
    case BPF_MISC | BPF_TXA:
      A = X;
      break;
    case BPF_RET | BPF_K:
      return f->k;
    case BPF_RET | BPF_A:
      return A;
    case BPF_ALU | BPF_ADD | BPF_K:
      A += f->k;
      break;
    case BPF_ALU | BPF_ADD | BPF_X:
      A += X;
      break;
    case BPF_ALU | BPF_SUB | BPF_K:
      A -= f->k;
      break;
    case BPF_ALU | BPF_SUB | BPF_X:
      A -= X;
      break;
    case BPF_ALU | BPF_MUL | BPF_K:
      A *= f->k;
      break;
    case BPF_ALU | BPF_MUL | BPF_X:
      A *= X;
      break;
    case BPF_ALU | BPF_DIV | BPF_K:
      A /= f->k;
      break;
    case BPF_ALU | BPF_DIV | BPF_X:
      if (!X)
        return 0; /* as Linux's converted program: the filter returns 0 */
      A /= X;
      break;
    case BPF_ALU | BPF_AND | BPF_K:
      A &= f->k;
      break;
    case BPF_ALU | BPF_AND | BPF_X:
      A &= X;
      break;
    case BPF_ALU | BPF_OR | BPF_K:
      A |= f->k;
      break;
    case BPF_ALU | BPF_OR | BPF_X:
      A |= X;
      break;
    case BPF_ALU | BPF_XOR | BPF_K:
      A ^= f->k;
      break;
    case BPF_ALU | BPF_XOR | BPF_X:
      A ^= X;
      break;
    case BPF_ALU | BPF_LSH | BPF_K:
      A <<= f->k;
      break;
    case BPF_ALU | BPF_LSH | BPF_X:
      A = X < 32 ? A << X : 0;
      break;
    case BPF_ALU | BPF_RSH | BPF_K:
      A >>= f->k;
      break;
    case BPF_ALU | BPF_RSH | BPF_X:
      A = X < 32 ? A >> X : 0;
      break;
    case BPF_ALU | BPF_NEG:
      A = (uint32_t) - (int32_t)A;
      break;
    case BPF_JMP | BPF_JA:
      pc += f->k;
      break;
    case BPF_JMP | BPF_JEQ | BPF_K:
      pc += A == f->k ? f->jt : f->jf;
      break;
    case BPF_JMP | BPF_JEQ | BPF_X:
      pc += A == X ? f->jt : f->jf;
      break;
    case BPF_JMP | BPF_JGE | BPF_K:
      pc += A >= f->k ? f->jt : f->jf;
      break;
    case BPF_JMP | BPF_JGE | BPF_X:
      pc += A >= X ? f->jt : f->jf;
      break;
    case BPF_JMP | BPF_JGT | BPF_K:
      pc += A > f->k ? f->jt : f->jf;
      break;
    case BPF_JMP | BPF_JGT | BPF_X:
      pc += A > X ? f->jt : f->jf;
      break;
    case BPF_JMP | BPF_JSET | BPF_K:
      pc += (A & f->k) ? f->jt : f->jf;
      break;
    case BPF_JMP | BPF_JSET | BPF_X:
      pc += (A & X) ? f->jt : f->jf;
      break;
    default:
      return 0; /* unreachable: validated */
    }
  }
  return 0;
}

static void kill_sigsys(struct qk_task *t, bool process)
{
  if (process || t->proc->nr_threads <= 1)
    qk_process_exit(t->proc, 31 /* SIGSYS */);
  else
    qk_thread_exit(t, 31);
}

bool qk_seccomp_check(struct qk_task *t, struct qk_regs *r, int64_t *res)
{
  uint64_t nr = r->orig_rax;
  if (t->seccomp_mode == MODE_STRICT) {
    if (nr == 0 || nr == 1 || nr == 60 || nr == 15)
      return true;
    qk_process_exit(t->proc, 9 /* SIGKILL */);
    *res = 0;
    return false;
  }
  struct l_seccomp_data d = {.nr = (int32_t)nr,
                             .arch = AUDIT_ARCH_X86_64,
                             .instruction_pointer = r->rip,
                             .args = {r->rdi, r->rsi, r->rdx, r->r10, r->r8, r->r9}};
  uint32_t ret = RET_ALLOW;
  const struct qk_seccomp_filter *match = NULL;
  for (const struct qk_seccomp_filter *f = t->seccomp; f; f = f->prev) {
    uint32_t cr = run_filter(f, &d);
    if ((int32_t)(cr & RET_ACTION_FULL) < (int32_t)(ret & RET_ACTION_FULL)) {
      ret = cr;
      match = f;
    }
  }
  uint32_t data = ret & RET_DATA;
  switch (ret & RET_ACTION_FULL) {
  case RET_ALLOW:
    return true;
  case RET_LOG:
    qk_printk(QK_LOG_INFO, "seccomp: pid %d syscall %lu logged", t->proc->pid, nr);
    return true;
  case RET_ERRNO:
    *res = -(int64_t)(data > 4095 ? 4095 : data);
    return false;
  case RET_TRAP: {
    struct qk_siginfo_lite si = {
        .code = 1 /* SYS_SECCOMP */, .pid = 0, .uid = data, .status = (int32_t)nr, .addr = r->rip};
    qk_signal_task(t, 31, &si, true);
    *res = (int64_t)nr; /* Linux rolls rax back to the syscall number */
    return false;
  }
  case RET_TRACE:
  case RET_USER_NOTIF:
    *res = -QK_ENOSYS; /* no tracer, no listener */
    return false;
  case RET_KILL_PROCESS:
  default: /* KILL_THREAD and unknown actions */
    if (match && match->log)
      qk_printk(QK_LOG_INFO, "seccomp: pid %d killed by syscall %lu", t->proc->pid, nr);
    kill_sigsys(t, (ret & RET_ACTION_FULL) == RET_KILL_PROCESS);
    *res = 0;
    return false;
  }
}

/* A filter from a program in kernel memory, chained on top of t's. */
static int make_filter(struct qk_task *t, const struct l_sock_filter *prog, uint32_t len, bool log,
                       struct qk_seccomp_filter **out)
{
  int r = validate(prog, len);
  if (r < 0)
    return r;
  uint32_t path = len + 4 + (t->seccomp ? t->seccomp->path_len : 0);
  if (path > MAX_INSNS_PER_PATH)
    return -QK_ENOMEM; /* Linux: too many instructions on the path */
  struct qk_seccomp_filter *f = qk_kmalloc(sizeof(*f) + len * sizeof(*prog));
  if (!f)
    return -QK_ENOMEM;
  memcpy(f->insns, prog, len * sizeof(*prog));
  f->len = len;
  f->refs = 1;
  f->log = log;
  f->path_len = path;
  f->prev = t->seccomp;
  if (f->prev)
    f->prev->refs++;
  *out = f;
  return 0;
}

static void install(struct qk_task *t, struct qk_seccomp_filter *f)
{
  f->refs++;
  filter_put(t->seccomp);
  t->seccomp = f;
  t->seccomp_mode = MODE_FILTER;
}

/* Is a an ancestor of (or equal to) b? */
static bool is_ancestor(const struct qk_seccomp_filter *a, const struct qk_seccomp_filter *b)
{
  if (!a)
    return true;
  for (; b; b = b->prev)
    if (a == b)
      return true;
  return false;
}

static int64_t set_filter(uint32_t flags, uint64_t uprog)
{
  struct qk_task *t = cur();
  if (flags & ~(FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_NEW_LISTENER | FLAG_TSYNC_ESRCH |
                FLAG_WAIT_KILLABLE))
    return -QK_EINVAL;
  if (flags & FLAG_NEW_LISTENER)
    return -QK_EINVAL; /* no user-space notification here */
  if ((flags & FLAG_TSYNC_ESRCH) && !(flags & FLAG_TSYNC))
    return -QK_EINVAL;
  if (flags & FLAG_WAIT_KILLABLE)
    return -QK_EINVAL; /* only meaningful with a listener */
  if (!t->no_new_privs && !qk_capable(QK_CAP_SYS_ADMIN))
    return -QK_EACCES;
  if (t->seccomp_mode == MODE_STRICT)
    return -QK_EINVAL;
  struct {
    uint16_t len;
    uint16_t pad[3];
    uint64_t filter;
  } fprog;
  if (qk_copy_from_user(&fprog, uprog, sizeof(fprog)))
    return -QK_EFAULT;
  if (fprog.len == 0 || fprog.len > QK_SEC_MAX_FILTER)
    return -QK_EINVAL;
  size_t bytes = (size_t)fprog.len * sizeof(struct l_sock_filter);
  struct l_sock_filter *prog = qk_kmalloc(bytes);
  if (!prog)
    return -QK_ENOMEM;
  if (qk_copy_from_user(prog, fprog.filter, bytes)) {
    qk_kfree(prog);
    return -QK_EFAULT;
  }
  struct qk_seccomp_filter *f;
  int r = make_filter(t, prog, fprog.len, flags & FLAG_LOG, &f);
  qk_kfree(prog);
  if (r < 0)
    return r;
  if (flags & FLAG_TSYNC) {
    for (struct qk_task *o = t->proc->threads; o; o = o->next_in_proc) {
      if (o == t || o->state == QK_TASK_DEAD)
        continue;
      if (o->seccomp_mode == MODE_STRICT || !is_ancestor(o->seccomp, t->seccomp)) {
        filter_put(f);
        return (flags & FLAG_TSYNC_ESRCH) ? -QK_ESRCH : o->tid;
      }
    }
    for (struct qk_task *o = t->proc->threads; o; o = o->next_in_proc) {
      if (o == t || o->state == QK_TASK_DEAD)
        continue;
      install(o, f);
      if (t->no_new_privs)
        o->no_new_privs = true;
    }
  }
  install(t, f);
  filter_put(f); /* the creation reference */
  return 0;
}

int64_t sys_seccomp(ARGS)
{
  (void)a3, (void)a4, (void)a5;
  switch (a0) {
  case 0: /* SECCOMP_SET_MODE_STRICT */
    if (a1 || a2)
      return -QK_EINVAL;
    if (cur()->seccomp_mode && cur()->seccomp_mode != MODE_STRICT)
      return -QK_EINVAL;
    cur()->seccomp_mode = MODE_STRICT;
    return 0;
  case 1: /* SECCOMP_SET_MODE_FILTER */
    return set_filter((uint32_t)a1, a2);
  case 2: { /* SECCOMP_GET_ACTION_AVAIL */
    uint32_t act;
    if (a1)
      return -QK_EINVAL;
    if (qk_copy_from_user(&act, a2, 4))
      return -QK_EFAULT;
    switch (act) {
    case RET_KILL_PROCESS:
    case RET_KILL_THREAD:
    case RET_TRAP:
    case RET_ERRNO:
    case RET_TRACE:
    case RET_LOG:
    case RET_ALLOW:
      return 0;
    default:
      return -QK_EOPNOTSUPP;
    }
  }
  case 3: /* SECCOMP_GET_NOTIF_SIZES: no listeners here */
    return -QK_EINVAL;
  default:
    return -QK_EINVAL;
  }
}

int64_t qk_seccomp_prctl(int option, uint64_t a1, uint64_t a2)
{
  struct qk_task *t = cur();
  if (option == 21) /* PR_GET_SECCOMP */
    return t->seccomp_mode;
  /* PR_SET_SECCOMP */
  if (a1 == MODE_STRICT)
    return sys_seccomp(0, 0, 0, 0, 0, 0);
  if (a1 == MODE_FILTER)
    return set_filter(0, a2);
  return -QK_EINVAL;
}

int qk_seccomp_install_kernel(struct qk_task *t, const void *prog, uint32_t len)
{
  if (len == 0 || len > QK_SEC_MAX_FILTER)
    return -QK_EINVAL;
  struct l_sock_filter *copy = qk_kmalloc(len * sizeof(*copy));
  if (!copy)
    return -QK_ENOMEM;
  memcpy(copy, prog, len * sizeof(*copy));
  struct qk_seccomp_filter *f;
  int r = make_filter(t, copy, len, false, &f);
  qk_kfree(copy);
  if (r < 0)
    return r;
  install(t, f);
  filter_put(f);
  return 0;
}

void qk_seccomp_fork(struct qk_task *t, const struct qk_task *pt)
{
  t->seccomp_mode = pt->seccomp_mode;
  t->no_new_privs = pt->no_new_privs;
  t->seccomp = pt->seccomp;
  if (t->seccomp)
    t->seccomp->refs++;
}

void qk_sec_task_free(struct qk_task *t)
{
  filter_put(t->seccomp);
  t->seccomp = NULL;
}
