/* The guest kernel's syscall entry on PVM-style hosts, from a hostile
 * app's side (guestkernel/arch/x86_64/entry.S): the user-accessible syscall
 * entry page and its int3s reached without `syscall` (no SFMASK: TF and AC set,
 * garbage RCX), the worker's entry code run in the app's own view, plain
 * int3, and register preservation across every way in.
 *
 *   t_sysentry RING0_INT3 WORKER_INT3 WORKER_ENTRY [ROUNDS]
 * (ROUNDS: jumps to each kernel-half address, default 200.) The addresses come from the kernel's symbols (guest_sysentry_test.sh);
 * 0 leaves the checks that need them out (a kernel without that page).
 * LSTAR names the page only where user `syscall` stays in CPL3; with the
 * kernel in ring 0 on such a host the page's ring-0 int3 is the syscall
 * path, and the worker's int3 there must still act as one.
 * Built with -mno-red-zone: the asm below pushes on the stack. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "../../guest/progs/t.h"

#define RFLAGS_TF 0x100ul
#define RFLAGS_AC 0x40000ul

/* Registers that every syscall keeps (all but RAX, RCX, R11). */
struct kept {
  unsigned long rbx, rbp, rdi, rsi, rdx, r8, r9, r10, r12, r13, r14, r15;
};

static const struct kept want = {0x1111, 0x2222, 0x3333, 0x4444, 0x5555, 0x6666,
                                 0x7777, 0x8888, 0x9999, 0xaaaa, 0xbbbb, 0xcccc};

/* A syscall through `via`: 0 = the syscall instruction, else an iretq to
 * that address (so that TF set in RFLAGS first traps after the instruction
 * there) with RCX = the return address (rcx_in if not 0), R11 = RFLAGS,
 * RFLAGS | set_flags, RAX = nr. Returns RAX; *rcx_out the RCX seen after. */
static long enter(unsigned long via, unsigned long nr, unsigned long set_flags, unsigned long rcx_in,
                  struct kept *out, unsigned long *rcx_out)
{
  struct {
    struct kept k;
    unsigned long via, nr, flags, rcx_in, rax, rcx;
  } b = {want, via, nr, set_flags, rcx_in, 0, 0};
  __asm__ volatile(
      "push %%rbp\n"
      "push %%rbx\n"
      "push %%r12\n"
      "push %%r13\n"
      "push %%r14\n"
      "push %%r15\n"
      "push %%rax\n" /* &b; RSP here is where the syscall returns */
      "mov 0(%%rax), %%rbx\n"
      "mov 8(%%rax), %%rbp\n"
      "mov 16(%%rax), %%rdi\n"
      "mov 24(%%rax), %%rsi\n"
      "mov 32(%%rax), %%rdx\n"
      "mov 40(%%rax), %%r8\n"
      "mov 48(%%rax), %%r9\n"
      "mov 56(%%rax), %%r10\n"
      "mov 64(%%rax), %%r12\n"
      "mov 72(%%rax), %%r13\n"
      "mov 80(%%rax), %%r14\n"
      "mov 88(%%rax), %%r15\n"
      "mov %%rsp, %%rcx\n"
      "mov %%ss, %%r11\n"
      "push %%r11\n" /* ss */
      "push %%rcx\n" /* rsp */
      "pushfq\n"
      "mov (%%rsp), %%r11\n"
      "mov 112(%%rax), %%rcx\n"
      "or %%rcx, (%%rsp)\n" /* rflags */
      "mov %%cs, %%rcx\n"
      "push %%rcx\n"     /* cs */
      "pushq 96(%%rax)\n" /* rip = via */
      "mov 120(%%rax), %%rcx\n"
      "test %%rcx, %%rcx\n"
      "jnz 2f\n"
      "lea 1f(%%rip), %%rcx\n"
      "2: mov 104(%%rax), %%rax\n"
      "cmpq $0, (%%rsp)\n"
      "je 3f\n"
      "iretq\n" /* to via; the syscall returns to 1: */
      "3: lea 16(%%rsp), %%rsp\n"
      "popfq\n"
      "lea 16(%%rsp), %%rsp\n"
      "syscall\n"
      "1: xchg %%rax, (%%rsp)\n" /* RAX = &b, the result on the stack */
      "mov %%rbx, 0(%%rax)\n"
      "mov %%rbp, 8(%%rax)\n"
      "mov %%rdi, 16(%%rax)\n"
      "mov %%rsi, 24(%%rax)\n"
      "mov %%rdx, 32(%%rax)\n"
      "mov %%r8, 40(%%rax)\n"
      "mov %%r9, 48(%%rax)\n"
      "mov %%r10, 56(%%rax)\n"
      "mov %%r12, 64(%%rax)\n"
      "mov %%r13, 72(%%rax)\n"
      "mov %%r14, 80(%%rax)\n"
      "mov %%r15, 88(%%rax)\n"
      "mov %%rcx, 136(%%rax)\n"
      "popq 128(%%rax)\n"
      "pushfq\n" /* TF and AC off again, whatever came back */
      "andq %[clear], (%%rsp)\n"
      "popfq\n"
      "pop %%r15\n"
      "pop %%r14\n"
      "pop %%r13\n"
      "pop %%r12\n"
      "pop %%rbx\n"
      "pop %%rbp\n"
      :
      : "a"(&b), [clear] "i"(~(RFLAGS_TF | RFLAGS_AC))
      : "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory", "cc");
  *out = b.k;
  if (rcx_out)
    *rcx_out = b.rcx;
  return (long)b.rax;
}

static void check_kept(const struct kept *k)
{
  CHECK(k->rbx == want.rbx && k->rbp == want.rbp && k->rdi == want.rdi && k->rsi == want.rsi &&
        k->rdx == want.rdx && k->r8 == want.r8 && k->r9 == want.r9 && k->r10 == want.r10 &&
        k->r12 == want.r12 && k->r13 == want.r13 && k->r14 == want.r14 && k->r15 == want.r15);
}

static sigjmp_buf jb;
static volatile int traps, segvs;
static volatile unsigned long trap_rip;

static void on_trap(int sig, siginfo_t *si, void *uc_)
{
  (void)sig;
  (void)si;
  ucontext_t *uc = uc_;
  traps++;
  trap_rip = (unsigned long)uc->uc_mcontext.gregs[REG_RIP];
  uc->uc_mcontext.gregs[REG_EFL] &= ~(long)RFLAGS_TF; /* one step only */
}

static volatile unsigned long segv_rip[4], segv_addr[4], segv_trapno, segv_err, segv_cr2;
static volatile int segv_code[4];

static void on_segv(int sig, siginfo_t *si, void *uc_)
{
  (void)sig;
  ucontext_t *uc = uc_;
  if (segvs < 4) {
    segv_rip[segvs] = (unsigned long)uc->uc_mcontext.gregs[REG_RIP];
    segv_addr[segvs] = (unsigned long)si->si_addr;
    segv_code[segvs] = si->si_code;
  }
  if (segvs == 0) {
    segv_trapno = (unsigned long)uc->uc_mcontext.gregs[REG_TRAPNO];
    segv_err = (unsigned long)uc->uc_mcontext.gregs[REG_ERR];
    segv_cr2 = (unsigned long)uc->uc_mcontext.gregs[REG_CR2];
  }
  segvs++;
  siglongjmp(jb, 1);
}

/* The app survives its fault with exactly one SIGSEGV at want_addr. */
static void check_segvs(const char *what, unsigned long want_addr)
{
  int ok = segvs == 1 && segv_addr[0] == want_addr;
  CHECK(ok);
  if (!ok)
    for (int i = 0; i < segvs && i < 4; i++)
      printf("%s: SIGSEGV %d at rip %#lx addr %#lx\n", what, i, segv_rip[i], segv_addr[i]);
}

static char jump_stack[64 << 10] __attribute__((aligned(16)));

/* Jumps (or calls) to addr with RAX pointing into app memory (what the
 * worker's entry code takes for ring 0's frame); the SIGSEGV handler
 * siglongjmps back. */
static __attribute__((noinline)) void jump_to(unsigned long addr, int call)
{
  segvs = 0;
  if (sigsetjmp(jb, 1) == 0) {
    if (call)
      __asm__ volatile("mov %0, %%rax\n"
                       "call *%1\n" ::"r"(jump_stack + sizeof jump_stack - 64),
                       "r"(addr)
                       : "rax", "memory");
    else
      __asm__ volatile("mov %0, %%rax\n"
                       "jmp *%1\n" ::"r"(jump_stack + sizeof jump_stack - 64),
                       "r"(addr)
                       : "rax", "memory");
  }
}

/* An app jump or call to addr, `rounds` times: exactly one SIGSEGV each,
 * at want (the address the fetch faults at; ~0: any kernel-half address),
 * SEGV_MAPERR as on Linux (the kernel half is never a user mapping,
 * present or not). Before the fix, ~1 run in 3 (both modes) also got
 * SIGSEGVs at 0: a frame with a kernel-half RIP (an interrupt that landed
 * after the jump, before the fetch faulted, or on the entry page) went
 * back to user mode with RIP 0. Returns the bad rounds. */
static int kernel_jumps(unsigned long addr, unsigned long want, int rounds, int call)
{
  int bad = 0;
  for (int i = 0; i < rounds; i++) {
    jump_to(addr, call);
    int at = want == ~0ul ? segv_addr[0] >= 0xffff800000000000ul : segv_addr[0] == want;
    /* The sigcontext as Linux fills it: #PF, CR2 = the address, error
     * code user | instruction fetch | protection, not write (Linux reports
     * every user fault in the kernel half as a protection fault; this host
     * sometimes adds the reserved-bit flag for the unmapped address). */
    int ctx = segv_trapno == 14 && (segv_err & 0x17) == 0x15 && segv_cr2 == segv_addr[0];
    if (segvs != 1 || !at || segv_rip[0] != segv_addr[0] || segv_code[0] != SEGV_MAPERR || !ctx) {
      if (bad++ < 3)
        printf("%s %#lx, round %d: %d SIGSEGV(s), the first at rip %#lx addr %#lx code %d"
               " (trapno %lu err %#lx cr2 %#lx)\n",
               call ? "call" : "jmp", addr, i, segvs, segv_rip[0], segv_addr[0], segv_code[0],
               segv_trapno, segv_err, segv_cr2);
    }
  }
  return bad;
}

static volatile unsigned long redirect_to;

/* Returns from the signal to redirect_to, with RCX = RIP and R11 = RFLAGS
 * (what lets a syscall return take sysretq). */
static void on_redirect(int sig, siginfo_t *si, void *uc_)
{
  (void)sig;
  (void)si;
  ucontext_t *uc = uc_;
  uc->uc_mcontext.gregs[REG_RIP] = (long)redirect_to;
  uc->uc_mcontext.gregs[REG_RCX] = (long)redirect_to;
  uc->uc_mcontext.gregs[REG_R11] = uc->uc_mcontext.gregs[REG_EFL];
}

static __attribute__((noinline)) void redirected(unsigned long to)
{
  redirect_to = to;
  segvs = 0;
  if (sigsetjmp(jb, 1) == 0)
    raise(SIGUSR1);
  check_segvs("sigreturn to the kernel half", to);
}

static volatile unsigned long exit_want;

/* SIGSEGV handler that ends the process: 0 if the fault is the one at
 * exit_want (address and RIP), 3 otherwise. */
static void on_segv_exit(int sig, siginfo_t *si, void *uc_)
{
  (void)sig;
  ucontext_t *uc = uc_;
  _exit((unsigned long)si->si_addr == exit_want && (unsigned long)uc->uc_mcontext.gregs[REG_RIP] == exit_want ? 0
                                                                                                             : 3);
}

/* The same in `rounds` children whose handler exits. Returns the bad ones. */
static int kernel_jump_exits(unsigned long addr, int rounds)
{
  int bad = 0;
  exit_want = addr;
  for (int i = 0; i < rounds; i++) {
    pid_t c = fork();
    if (c == 0) {
      struct sigaction sx = {0};
      sx.sa_sigaction = on_segv_exit;
      sx.sa_flags = SA_SIGINFO;
      sigaction(SIGSEGV, &sx, NULL);
      __asm__ volatile("jmp *%0" ::"r"(addr) : "memory");
      _exit(4);
    }
    int st = -1;
    if (c < 0 || waitpid(c, &st, 0) != c || st != 0) {
      if (bad++ < 3)
        printf("jmp %#lx in a child, round %d: status %#x\n", addr, i, st);
    }
  }
  return bad;
}

int main(int argc, char **argv)
{
  unsigned long int3_r0 = argc > 1 ? strtoul(argv[1], NULL, 0) : 0;
  unsigned long int3_w = argc > 2 ? strtoul(argv[2], NULL, 0) : 0;
  unsigned long w_entry = argc > 3 ? strtoul(argv[3], NULL, 0) : 0;
  int rounds = argc > 4 ? atoi(argv[4]) : 200;
  long pid = getpid();
  struct kept k;
  unsigned long rcx;

  /* The syscall instruction: RCX = the return address after it. */
  CHECK_EQ(enter(0, SYS_getpid, 0, 0, &k, &rcx), pid);
  check_kept(&k);
  CHECK(rcx != 0);
  /* With TF and AC set (syscall's SFMASK clears them in the kernel). */
  struct sigaction sa = {0};
  sa.sa_sigaction = on_trap;
  sa.sa_flags = SA_SIGINFO;
  CHECK_EQ(sigaction(SIGTRAP, &sa, NULL), 0);
  CHECK_EQ(enter(0, SYS_getpid, RFLAGS_AC, 0, &k, NULL), pid);
  check_kept(&k);

  /* A plain int3 in app code: SIGTRAP just after it. */
  traps = 0;
  __asm__ volatile("int3" ::: "memory");
  CHECK_EQ(traps, 1);

  stack_t ss = {.ss_sp = malloc(1 << 16), .ss_size = 1 << 16};
  CHECK_EQ(sigaltstack(&ss, NULL), 0);
  struct sigaction sv = {0};
  sv.sa_sigaction = on_segv;
  sv.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  CHECK_EQ(sigaction(SIGSEGV, &sv, NULL), 0);

  unsigned long ways[2] = {int3_r0, int3_w};
  for (int w = 0; w < 2; w++) {
    if (!ways[w])
      continue;
    printf("int3 at %#lx\n", ways[w]);
    fflush(stdout);
    /* Jumped to without `syscall`: RCX/R11 are whatever the app says. */
    CHECK_EQ(enter(ways[w], SYS_getpid, 0, 0, &k, &rcx), pid);
    check_kept(&k);
    CHECK_EQ(enter(ways[w], SYS_getppid, 0, 0, &k, NULL), getppid());
    /* AC set: the kernel must not run with it. */
    CHECK_EQ(enter(ways[w], SYS_getpid, RFLAGS_AC, 0, &k, NULL), pid);
    check_kept(&k);
    /* TF set at the int3 (iretq there): no single step in the kernel, and
     * the return goes to RCX with R11's flags (TF clear). */
    traps = 0;
    CHECK_EQ(enter(ways[w], SYS_getpid, RFLAGS_TF, 0, &k, NULL), pid);
    check_kept(&k);
    if (traps)
      printf("TF at the int3: %d SIGTRAP(s) at %#lx\n", traps, trap_rip);
    CHECK(traps <= 1);
    /* A non-canonical RCX: the kernel returns to 0, not to RCX. */
    segvs = 0;
    if (sigsetjmp(jb, 1) == 0)
      enter(ways[w], SYS_getpid, 0, 0x8000000000000000ul, &k, NULL);
    check_segvs("non-canonical RCX", 0);
    /* An unknown syscall still answers ENOSYS the same way. */
    CHECK_EQ(enter(ways[w], 100000, 0, 0, &k, NULL), -ENOSYS);
  }

  /* Jumps and calls to the kernel half (kernel text, the direct map, the
   * unmapped bottom of the half), `rounds` times each, under a 1 ms
   * interval timer so that interrupts land on the way; then children whose
   * handler exits. */
  struct sigaction sq = {0};
  sq.sa_handler = SIG_IGN;
  sigaction(SIGALRM, &sq, NULL);
  struct itimerval it = {{0, 1000}, {0, 1000}};
  struct itimerval off = {{0, 0}, {0, 0}};
  static const unsigned long kaddrs[] = {0xffffffff80001000ul, 0xffff888000100000ul, 0xffff800000000000ul};
  setitimer(ITIMER_REAL, &it, NULL);
  for (unsigned i = 0; i < sizeof kaddrs / sizeof kaddrs[0]; i++) {
    CHECK_EQ(kernel_jumps(kaddrs[i], kaddrs[i], rounds, 0), 0);
    CHECK_EQ(kernel_jumps(kaddrs[i], kaddrs[i], rounds / 4, 1), 0);
  }
  /* The worker's entry code (on the user-accessible entry page, in the
   * kernel half) run in the app's own view: its jump to kernel text
   * faults there. An interrupt that lands on that page (as on the entry
   * page's first instructions of every syscall) must come back to it. */
  if (w_entry)
    CHECK_EQ(kernel_jumps(w_entry, ~0ul, rounds, 0), 0);
  CHECK_EQ(kernel_jump_exits(kaddrs[0], rounds), 0);
  /* sigreturn to a kernel-half RIP (RCX equal to it): the same fault. */
  struct sigaction sr = {0};
  sr.sa_sigaction = on_redirect;
  sr.sa_flags = SA_SIGINFO;
  CHECK_EQ(sigaction(SIGUSR1, &sr, NULL), 0);
  for (unsigned i = 0; i < sizeof kaddrs / sizeof kaddrs[0]; i++)
    redirected(kaddrs[i]);
  setitimer(ITIMER_REAL, &off, NULL);

  /* Many syscalls under a 1 ms interval timer (interrupts between and
   * during the legs) and a fork: results stay right. */
  setitimer(ITIMER_REAL, &it, NULL);
  int bad = 0;
  for (int i = 0; i < 3000; i++) {
    if (enter(i % 3 == 0 ? 0 : ways[i % 2] ? ways[i % 2] : 0, SYS_getpid, 0, 0, &k, NULL) != pid)
      bad++;
    if (k.r15 != want.r15 || k.rdi != want.rdi)
      bad++;
  }
  setitimer(ITIMER_REAL, &off, NULL);
  CHECK_EQ(bad, 0);
  pid_t c = fork();
  if (c == 0)
    _exit(enter(int3_w, SYS_getpid, 0, 0, &k, NULL) == getpid() && enter(0, SYS_getppid, 0, 0, &k, NULL) == pid ? 0
                                                                                                              : 3);
  int st = 0;
  CHECK_EQ(waitpid(c, &st, 0), c);
  CHECK_EQ(st, 0);
  return t_done("t_sysentry");
}
