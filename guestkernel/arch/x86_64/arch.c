/* The x86-64 privileged layer: per-vCPU state, trap dispatch, the syscall
 * entry switch, and the hooks of include/qk/arch.h.
 *
 * Syscall entry, two ways (see ARCHITECTURE.md, "Syscall entry"):
 *  - hardware-virtualized KVM: LSTAR = qk_arch_syscall_entry (supervisor
 *    page); `syscall` enters ring 0 there.
 *  - PVM-style hosts: `syscall` jumps to LSTAR but stays in CPL3, so the
 *    fetch of the supervisor page faults with #PF error 0x15 at
 *    RIP == LSTAR. The first such fault on a vCPU is handled as the syscall
 *    it is, and LSTAR is switched to the user-accessible stub page, whose
 *    int3 is ~2x cheaper than the #PF. Nothing here depends on the host
 *    kind except through that detection.
 */
#include <stddef.h>
#include <stdint.h>

#include "../../include/qk/arch.h"
#include "../../include/qk/qcall.h"
#include "../../include/qk/smp.h"
#include "arch_internal.h"
#include "asm_defs.h"

#define MSR_FS_BASE 0xc0000100u
#define MSR_GS_BASE 0xc0000101u
#define MSR_KERNEL_GS_BASE 0xc0000102u
#define MSR_LSTAR 0xc0000082u
#define CR4_FSGSBASE (1ull << 16)
#define CR4_OSXSAVE (1ull << 18)

#define PF_ERR_SYSCALL_AT_LSTAR 0x15u /* present | user | instruction fetch */
#define VEC_BP 3u
#define VEC_DF 8u
#define VEC_PF 14u

/* RFLAGS bits user code may set: CF PF AF ZF SF TF DF OF AC ID. */
#define USER_RFLAGS 0x240dd5ull
#define RFLAGS_IF 0x200ull
#define RFLAGS_FIXED 0x2ull
#define KERNEL_HALF 0xffff800000000000ull /* the first canonical kernel-half address */

struct qk_cpu {
  struct qk_cpu *self;   /* CPU_SELF */
  uint64_t kstack_top;   /* CPU_KSTACK_TOP: TSS.RSP0, where user traps land */
  uint64_t user_rsp;     /* CPU_USER_RSP: scratch of the LSTAR entry */
  uint64_t w_app_cr3;    /* CPU_W_APP_CR3: worker mode, the app's CR3 (kept current) */
  uint64_t w_app_rsp;    /* CPU_W_APP_RSP: worker mode, the app's RSP at an interrupt */
  uint64_t cpu_id;
  void *priv;
  struct qk_boot_info *bi;
  uint32_t stub_mode;    /* LSTAR points at the user stub */
  uint32_t has_fsgsbase;
  uint64_t in_worker;    /* a syscall is running in the CPL3 kernel worker */
  uint64_t app_cr3;      /* worker mode: the address space to return to */
  uint64_t w_app_rip;    /* CPU_W_APP_RIP: worker mode, the app's RIP at an interrupt */
  uint64_t w_app_rflags; /* CPU_W_APP_RFLAGS: and its RFLAGS */
  uint64_t irq_vector;   /* worker mode: the interrupt being handed to the worker */
  uint32_t lapic;        /* x2APIC enabled (QK_HOST_LAPIC) */
  uint32_t tsc_deadline; /* the LAPIC timer runs in TSC-deadline mode */
  uint32_t tlb_dirty;    /* SMP: a PTE changed since the last shootdown */
  uint64_t boot_cr3;     /* the host's kernel-only page table */
  uint64_t w_app_trapno; /* worker mode: the app frame's vector and error code, */
  uint64_t w_app_err;    /* which the worker's frame keeps (a fault's sigcontext) */
};

_Static_assert(offsetof(struct qk_cpu, self) == CPU_SELF, "CPU_SELF");
_Static_assert(offsetof(struct qk_cpu, kstack_top) == CPU_KSTACK_TOP, "CPU_KSTACK_TOP");
_Static_assert(offsetof(struct qk_cpu, user_rsp) == CPU_USER_RSP, "CPU_USER_RSP");
_Static_assert(offsetof(struct qk_cpu, w_app_cr3) == CPU_W_APP_CR3, "CPU_W_APP_CR3");
_Static_assert(offsetof(struct qk_cpu, w_app_rsp) == CPU_W_APP_RSP, "CPU_W_APP_RSP");
_Static_assert(offsetof(struct qk_cpu, w_app_rip) == CPU_W_APP_RIP, "CPU_W_APP_RIP");
_Static_assert(offsetof(struct qk_cpu, w_app_rflags) == CPU_W_APP_RFLAGS, "CPU_W_APP_RFLAGS");
_Static_assert(ASM_KSTACK_SIZE == QK_KSTACK_SIZE, "ASM_KSTACK_SIZE");
_Static_assert(offsetof(struct qk_regs, rax) == REGS_RAX, "REGS_RAX");
_Static_assert(offsetof(struct qk_regs, rcx) == REGS_RCX, "REGS_RCX");
_Static_assert(offsetof(struct qk_regs, r11) == REGS_R11, "REGS_R11");
_Static_assert(offsetof(struct qk_regs, rflags) == REGS_RFLAGS, "REGS_RFLAGS");
_Static_assert(offsetof(struct qk_regs, orig_rax) == REGS_ORIG_RAX, "REGS_ORIG_RAX");
_Static_assert(offsetof(struct qk_regs, vector) == REGS_VECTOR, "REGS_VECTOR");
_Static_assert(offsetof(struct qk_regs, cs) == REGS_CS, "REGS_CS");
_Static_assert(offsetof(struct qk_regs, rip) == REGS_IRET_FRAME, "REGS_IRET_FRAME");
_Static_assert(sizeof(struct qk_regs) == REGS_SIZE, "REGS_SIZE");
_Static_assert(ASM_SEL_KCODE == QK_SEL_KCODE && ASM_SEL_KDATA == QK_SEL_KDATA, "kernel selectors");
_Static_assert(ASM_SEL_UCODE == QK_SEL_UCODE && ASM_SEL_UDATA == QK_SEL_UDATA, "user selectors");

_Static_assert(sizeof(struct qk_cpu) <= 256, "the per-vCPU block stays far below the IST stack's top");

extern char qk_arch_syscall_entry[], qk_arch_syscall_ustub[], qk_arch_ustub_after[];
extern char qk_arch_bp_entry[];
/* LSTAR on PVM-style hosts: the user syscall page's entry for the kernel
 * in ring 0, and the one for the kernel worker (entry.S). */
extern const uint64_t qk_arch_user_lstar[2];

extern char qk_worker_call_after[], qk_worker_irq[];

/* Kernel worker mode (entry.S, ARCHITECTURE.md): read by the #BP entry. */
uint8_t qk_worker_mode;
uint64_t qk_worker_cr3;
static volatile uint32_t *qk_worker_kick; /* MMIO kick in the worker view */

enum {
  WORKER_OP_PTE = 1,
  WORKER_OP_RETURN = 2,
  WORKER_OP_HALT = 3,
  WORKER_OP_OUT8 = 4,
  WORKER_OP_OUT32 = 5,
  WORKER_OP_TIMER = 6,
  WORKER_OP_IPI = 7,
};

/* x2APIC registers (MSRs) and the LVT timer modes. */
#define MSR_X2APIC_EOI 0x80bu
#define MSR_X2APIC_SVR 0x80fu
#define MSR_X2APIC_LVT_TIMER 0x832u
#define MSR_X2APIC_TMICT 0x838u
#define MSR_X2APIC_TDCR 0x83eu
#define MSR_X2APIC_ICR 0x830u
#define MSR_TSC_DEADLINE 0x6e0u
#define LVT_TIMER_TSC_DEADLINE (2u << 17)
#define APIC_SPURIOUS_VECTOR 0xffu
uint64_t qk_worker_call(uint64_t op, uint64_t a, uint64_t b);
int qk_worker_syscall_c(struct qk_regs *r);
__attribute__((noreturn)) void qk_worker_irq_c(struct qk_regs *r);
__attribute__((noreturn)) void qk_worker_iret(struct qk_regs *r);
extern void qk_arch_trap_exit(void);

/* What XSAVE covers where the kernel runs. Probed separately in ring 0
 * (at boot) and in the CPL3 kernel worker (at its first use): on PVM-style
 * hosts the guest's CR4/XCR0 say "no XSAVE" (ring 0, emulated), while user
 * code runs natively under the host's XCR0 (AVX, AVX-512) and so does the
 * worker, where XSAVE then saves exactly what the application can use. */
struct xstate_caps {
  uint32_t probed;
  uint32_t size; /* 0: FXSAVE only */
  uint64_t mask; /* XCR0: the components saved */
};
static struct xstate_caps xs_ring0, xs_worker;

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
  __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}

static void xstate_probe(struct xstate_caps *xc)
{
  xc->probed = 1;
  uint32_t a, b, c, d;
  cpuid(1, 0, &a, &b, &c, &d);
  if (!(c & (1u << 27))) /* OSXSAVE: CR4.OSXSAVE as this context sees it */
    return;
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  uint64_t xcr0 = ((uint64_t)hi << 32) | lo;
  /* The end of the last enabled component (CPUID.(0xd, i): size in EAX,
   * offset in EBX), and the size CPUID.(0xd, 0).EBX gives for XCR0. */
  uint32_t size = 576;
  for (unsigned i = 2; i < 63; i++) {
    if (!(xcr0 & (1ull << i)))
      continue;
    cpuid(0xd, i, &a, &b, &c, &d);
    if (a + b > size)
      size = a + b;
  }
  cpuid(0xd, 0, &a, &b, &c, &d);
  if (b > size)
    size = b;
  if (size <= QK_XSTATE_MAX) {
    xc->mask = xcr0;
    xc->size = size;
  }
}

static inline struct xstate_caps *xstate_here(void);

static inline void wrmsr(uint32_t msr, uint64_t v)
{
  __asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

static inline uint64_t rdmsr(uint32_t msr)
{
  uint32_t lo, hi;
  __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
  return ((uint64_t)hi << 32) | lo;
}

/* The per-vCPU block at the base of the current kernel stack region (see
 * QK_KSTACK_SIZE in abi/qk_abi.h): no GS, no MSR, no swapgs. */
static inline struct qk_cpu *this_cpu(void)
{
  uint64_t sp;
  __asm__("mov %%rsp, %0" : "=r"(sp));
  return (struct qk_cpu *)(sp & ~((uint64_t)QK_KSTACK_SIZE - 1));
}

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }

uint64_t qk_arch_rdtsc(void)
{
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

__attribute__((noreturn)) void qk_arch_start(struct qk_boot_info *bi, unsigned cpu);

/* The host points every IDT gate at the vector's 16-byte entry; the #BP one
 * only jumps to qk_arch_bp_safe, and #BP is the syscall path on PVM-style hosts
 * (two per syscall, each instruction emulated there): the gate gets the
 * entry's address instead. In worker mode that is qk_arch_bp_entry (app ->
 * worker first), and the host maps the IDT's address to a copy of it in the
 * worker view, where every #BP comes from the worker: that copy's gate
 * goes to qk_arch_bp_worker_entry (worker -> app first). With a host that
 * has one IDT page for both views the gate read back there is already
 * patched, and stays so. Done by vCPU 0 before any user code runs; the IDT
 * is shared by every vCPU. */
extern char qk_arch_bp_worker_entry[], qk_arch_bp_safe[];

static volatile uint8_t *idt_bp_gate(void)
{
  struct __attribute__((packed)) {
    uint16_t limit;
    uint64_t base;
  } idtr;
  __asm__ volatile("sidt %0" : "=m"(idtr));
  return idtr.limit < 4 * 16 - 1 ? NULL : (volatile uint8_t *)idtr.base + VEC_BP * 16;
}

static uint64_t gate_offset(volatile uint8_t *g)
{
  return *(volatile uint16_t *)(g + 0) | (uint64_t)*(volatile uint16_t *)(g + 6) << 16 |
         (uint64_t)*(volatile uint32_t *)(g + 8) << 32;
}

static void gate_set_offset(volatile uint8_t *g, uint64_t off)
{
  *(volatile uint16_t *)(g + 0) = (uint16_t)off;
  *(volatile uint16_t *)(g + 6) = (uint16_t)(off >> 16);
  *(volatile uint32_t *)(g + 8) = (uint32_t)(off >> 32);
}

static void idt_gate_bp_direct(struct qk_cpu *c)
{
  volatile uint8_t *g = idt_bp_gate();
  if (!g)
    return;
  if (!qk_worker_mode) {
    gate_set_offset(g, (uint64_t)qk_arch_bp_safe);
    return;
  }
  gate_set_offset(g, (uint64_t)qk_arch_bp_entry);
  __asm__ volatile("mov %0, %%cr3" ::"r"(qk_worker_cr3) : "memory");
  if (gate_offset(g) != (uint64_t)qk_arch_bp_entry)
    gate_set_offset(g, (uint64_t)qk_arch_bp_worker_entry);
  __asm__ volatile("mov %0, %%cr3" ::"r"(c->w_app_cr3) : "memory");
}

__attribute__((noreturn)) void qk_arch_start(struct qk_boot_info *bi, unsigned cpu)
{
  if (cpu == 0)
    bi->entry_tsc = qk_arch_rdtsc();
  if (cpu >= QK_MAX_VCPUS || bi->magic != QK_BOOT_MAGIC)
    qk_arch_shutdown(125);
  struct qk_cpu *c = this_cpu();
  c->self = c;
  c->kstack_top = bi->boot_stack_top[cpu];
  c->cpu_id = cpu;
  c->bi = bi;
  uint64_t cr4;
  __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
  c->has_fsgsbase = (cr4 & CR4_FSGSBASE) != 0;
  __asm__ volatile("mov %%cr3, %0" : "=r"(c->w_app_cr3));
  c->boot_cr3 = c->w_app_cr3;
  if (cpu == 0)
    xstate_probe(&xs_ring0);
  /* The worker sets the FS base itself (wrfsbase at CPL3): FSGSBASE needed. */
  if ((bi->host_flags & QK_HOST_KERNEL_WORKER) && bi->worker_cr3 && c->has_fsgsbase) {
    qk_worker_cr3 = bi->worker_cr3;
    qk_worker_kick = (volatile uint32_t *)bi->worker_kick_va;
    qk_worker_mode = 1;
  }
  if (cpu == 0)
    idt_gate_bp_direct(c);
  /* The in-kernel x2APIC (the host enabled x2APIC mode in APIC_BASE): the
   * software enable with the spurious vector, and the timer's LVT entry,
   * masked by nothing but unarmed until qk_arch_timer_arm. */
  if (bi->host_flags & QK_HOST_LAPIC) {
    c->lapic = 1;
    c->tsc_deadline = (bi->host_flags & QK_HOST_TSC_DEADLINE) && bi->tsc_khz;
    wrmsr(MSR_X2APIC_SVR, 0x100u | APIC_SPURIOUS_VECTOR);
    if (!c->tsc_deadline)
      wrmsr(MSR_X2APIC_TDCR, 0xb); /* divide by 1: KVM's APIC bus runs at 1 GHz */
    wrmsr(MSR_X2APIC_LVT_TIMER, QK_VECTOR_TIMER | (c->tsc_deadline ? LVT_TIMER_TSC_DEADLINE : 0));
  }
  /* GS stays the user's; only the LSTAR entry swaps in the block. */
  wrmsr(MSR_GS_BASE, 0);
  wrmsr(MSR_KERNEL_GS_BASE, (uint64_t)c);
  qk_qcall_init(bi, cpu);
  qk_kernel_main(bi, cpu);
}

unsigned qk_arch_cpu_id(void) { return (unsigned)this_cpu()->cpu_id; }
void qk_arch_set_cpu_private(void *p) { this_cpu()->priv = p; }
void *qk_arch_cpu_private(void) { return this_cpu()->priv; }

uint64_t qk_arch_current_cr3(void)
{
  struct qk_cpu *c = this_cpu();
  if (c->in_worker)
    return c->app_cr3;
  uint64_t v;
  __asm__ volatile("mov %%cr3, %0" : "=r"(v));
  return v & ~0xfffull;
}

/* In the worker these defer to the return to the app, whose CR3 load
 * flushes every (non-global) translation anyway. */
/* w_app_cr3 always names the app's CR3, so that the worker entry need not
 * read CR3 (one emulated instruction and one emulation failure fewer). */
void qk_arch_switch_cr3(uint64_t cr3)
{
  struct qk_cpu *c = this_cpu();
  if (c->in_worker) {
    c->app_cr3 = cr3;
    return;
  }
  __asm__ volatile("mov %0, %%cr3" ::"r"(cr3) : "memory");
  c->w_app_cr3 = cr3;
}

void qk_arch_pte_update(volatile uint64_t *pte, uint64_t val, uint64_t va)
{
  if (qk_smp_on)
    this_cpu()->tlb_dirty = 1; /* other vCPUs flush at the lock's release */
  if (this_cpu()->in_worker) {
    /* Changed PTEs must be ring-0 stores on PVM-style hosts. */
    qk_worker_call(WORKER_OP_PTE, (uint64_t)pte, val);
    return;
  }
  *pte = val;
  __asm__ volatile("invlpg (%0)" ::"r"(va) : "memory");
}

void qk_arch_flush_tlb(void)
{
  if (this_cpu()->in_worker)
    return;
  uint64_t v;
  __asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(v)::"memory");
}

bool qk_arch_tlb_dirty_take(void)
{
  struct qk_cpu *c = this_cpu();
  if (!c->tlb_dirty)
    return false;
  c->tlb_dirty = 0;
  return true;
}

void qk_arch_idle_cr3(void)
{
  qk_arch_switch_cr3(this_cpu()->boot_cr3);
}

bool qk_arch_spin_cheap(void)
{
  struct qk_cpu *c = this_cpu();
  return c->in_worker || !(c->bi->host_flags & QK_HOST_RING0_EMULATED);
}

struct qk_regs *qk_arch_user_frame(void)
{
  return (struct qk_regs *)(this_cpu()->kstack_top - sizeof(struct qk_regs));
}

/* x2APIC ICR: fixed delivery, physical destination = the vCPU index
 * (KVM's x2APIC ID). */
void qk_arch_send_ipi(unsigned cpu, unsigned vector)
{
  uint64_t icr = ((uint64_t)cpu << 32) | (1u << 14) /* assert */ | (vector & 0xff);
  if (this_cpu()->in_worker)
    qk_worker_call(WORKER_OP_IPI, icr, 0);
  else
    wrmsr(MSR_X2APIC_ICR, icr);
}

void qk_arch_set_fs_base(uint64_t v)
{
  if (this_cpu()->has_fsgsbase)
    __asm__ volatile("wrfsbase %0" ::"r"(v));
  else
    wrmsr(MSR_FS_BASE, v);
}

uint64_t qk_arch_get_fs_base(void)
{
  if (this_cpu()->has_fsgsbase) {
    uint64_t v;
    __asm__ volatile("rdfsbase %0" : "=r"(v));
    return v;
  }
  return rdmsr(MSR_FS_BASE);
}

/* sti; hlt; cli (entry.S). An interrupt taken between the sti and the hlt
 * (an emulated ring 0 need not keep sti's one-instruction shadow) would
 * leave the hlt to sleep until the next one: the trap path steps over the
 * hlt instead (qk_arch_halt_insn). */
void qk_arch_halt(void);
extern char qk_arch_halt_insn[];

void qk_arch_wait_for_interrupt(void)
{
  if (this_cpu()->in_worker)
    qk_worker_call(WORKER_OP_HALT, 0, 0);
  else
    qk_arch_halt();
}
/* The worker runs with IF = 0 and may not touch IF (IOPL is not honoured
 * for ring 3 on PVM-style hosts): interrupts are taken in ring 0 halts. */
void qk_arch_irq_enable(void)
{
  if (!this_cpu()->in_worker)
    __asm__ volatile("sti" ::: "memory");
}

void qk_arch_irq_disable(void)
{
  if (!this_cpu()->in_worker)
    __asm__ volatile("cli" ::: "memory");
}

void qk_arch_port_out32(uint16_t port, uint32_t v)
{
  if (this_cpu()->in_worker && port == QK_PORT_KICK && qk_worker_kick)
    *qk_worker_kick = v; /* an MMIO exit the host binds to the kick eventfd */
  else if (this_cpu()->in_worker && port == QK_PORT_WAIT && qk_worker_kick && qk_qcall_mmio_wait)
    qk_worker_kick[QK_WORKER_WAIT_OFF / 4] = v; /* an MMIO exit to the VMM, no ring 0 */
  else if (this_cpu()->in_worker)
    qk_worker_call(WORKER_OP_OUT32, port, v);
  else
    outl(port, v);
}

void qk_arch_console_write(const char *s, uint64_t len)
{
  bool w = this_cpu()->in_worker;
  for (uint64_t i = 0; i < len; i++) {
    if (w)
      qk_worker_call(WORKER_OP_OUT8, QK_PORT_CONSOLE, (uint8_t)s[i]);
    else
      outb(QK_PORT_CONSOLE, (uint8_t)s[i]);
  }
}

__attribute__((noreturn)) void qk_arch_shutdown(int status)
{
  if (this_cpu()->in_worker)
    qk_worker_call(WORKER_OP_OUT32, QK_PORT_SHUTDOWN, (uint32_t)status & 0xff);
  for (;;) {
    outl(QK_PORT_SHUTDOWN, (uint32_t)status & 0xff);
    __asm__ volatile("cli; hlt");
  }
}

__attribute__((noreturn)) void qk_arch_panic(const char *msg)
{
  /* The boot info page is at a fixed address: usable even before
   * qk_arch_start filled the per-vCPU block. */
  struct qk_boot_info *bi = (struct qk_boot_info *)(QK_DIRECT_MAP + QK_GPA_BOOTINFO);
  uint32_t i = 0;
  for (; msg && msg[i] && i < QK_PANIC_MSG_SIZE - 1; i++)
    bi->panic_msg[i] = msg[i];
  bi->panic_msg[i] = 0;
  if (this_cpu()->in_worker)
    qk_worker_call(WORKER_OP_OUT32, QK_PORT_PANIC, (uint32_t)this_cpu()->cpu_id);
  for (;;) {
    outl(QK_PORT_PANIC, (uint32_t)this_cpu()->cpu_id);
    __asm__ volatile("cli; hlt");
  }
}

/* Appends "name=hex " to a panic message; no libc in the arch layer. */
static unsigned put_hex(char *buf, unsigned pos, unsigned cap, const char *name, uint64_t v)
{
  for (; *name && pos + 1 < cap; name++)
    buf[pos++] = *name;
  if (pos + 1 < cap)
    buf[pos++] = '=';
  for (int sh = 60; sh >= 0 && pos + 1 < cap; sh -= 4)
    buf[pos++] = "0123456789abcdef"[(v >> sh) & 0xf];
  if (pos + 1 < cap)
    buf[pos++] = ' ';
  buf[pos] = 0;
  return pos;
}

static __attribute__((noreturn)) void kernel_fault(struct qk_regs *r, uint64_t cr2)
{
  /* Always in ring 0 here, also for a fault of the CPL3 worker: the panic
   * report must use the ports itself (a worker service, int3 from ring 0,
   * would end in a KVM emulation failure and lose the message). */
  this_cpu()->in_worker = 0;
  char m[QK_PANIC_MSG_SIZE];
  unsigned p = 0;
  /* The guard page below this vCPU's stacks (abi/qk_abi.h): an overflow. */
  uint64_t guard = (uint64_t)this_cpu() + QK_KSTACK_GUARD_OFF;
  bool overflow = (r->vector == VEC_PF || r->vector == VEC_DF) && cr2 - guard < QK_PAGE_SIZE;
  const char *hdr = overflow ? "kernel stack overflow: " : "kernel trap: ";
  for (; *hdr; hdr++)
    m[p++] = *hdr;
  m[p] = 0;
  p = put_hex(m, p, sizeof m, "vec", r->vector);
  p = put_hex(m, p, sizeof m, "err", r->error_code);
  p = put_hex(m, p, sizeof m, "rip", r->rip);
  p = put_hex(m, p, sizeof m, "rsp", r->rsp);
  p = put_hex(m, p, sizeof m, "cr2", cr2);
  p = put_hex(m, p, sizeof m, "rax", r->rax);
  p = put_hex(m, p, sizeof m, "rdi", r->rdi);
  p = put_hex(m, p, sizeof m, "rsi", r->rsi);
  p = put_hex(m, p, sizeof m, "rbp", r->rbp);
  put_hex(m, p, sizeof m, "cs", r->cs);
  qk_arch_panic(m);
}

/* Whatever the kernel left in r, user mode gets user selectors, IF set and
 * a canonical RIP: a non-canonical one becomes a fault at 0 in user mode
 * instead of a #GP on iretq/sysretq in ring 0. A kernel-half RIP is
 * canonical and goes back as it is: its fetch faults in user mode at that
 * address, or runs the user-accessible syscall entry page. (It used to
 * become 0 too: a sigreturn to such a RIP, an interrupt that landed on the
 * entry page or after an app's jump to the kernel half before the fetch
 * faulted, all gave the app a SIGSEGV at 0.) */
static void sanitize_user_frame(struct qk_regs *r)
{
  r->cs = QK_SEL_UCODE;
  r->ss = QK_SEL_UDATA;
  r->rflags = (r->rflags & USER_RFLAGS) | RFLAGS_IF | RFLAGS_FIXED;
  if (r->rip - (1ull << 47) < KERNEL_HALF - (1ull << 47))
    r->rip = 0;
}

/* The kernel core under the SMP lock (one load and a branch without). */
static inline void core_syscall(struct qk_regs *r)
{
  if (__builtin_expect(!qk_smp_on, 1)) {
    qk_syscall(r);
    return;
  }
  if (qk_smp_enter(r))
    qk_syscall(r);
  qk_smp_leave();
}

static inline void core_interrupt(unsigned vector, struct qk_regs *r)
{
  if (!qk_smp_on) {
    qk_interrupt(vector, r);
    return;
  }
  if (qk_smp_enter(r))
    qk_interrupt(vector, r);
  qk_smp_leave();
}

static inline void core_user_fault(struct qk_regs *r, uint64_t cr2)
{
  if (!qk_smp_on) {
    qk_user_fault(r, cr2);
    return;
  }
  if (qk_smp_enter(r))
    qk_user_fault(r, cr2);
  qk_smp_leave();
}

static inline void apic_eoi(struct qk_cpu *c, uint64_t vector);

/* QK_VECTOR_TLB (SMP shootdown), in ring 0 from any context: reload CR3
 * (every non-global translation goes) and acknowledge. */
static inline bool tlb_ipi(struct qk_cpu *c, uint64_t vector)
{
  if (vector != QK_VECTOR_TLB)
    return false;
  apic_eoi(c, vector);
  uint64_t v;
  __asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(v)::"memory");
  qk_smp_tlb_ack();
  return true;
}

static void do_syscall(struct qk_regs *r)
{
  r->orig_rax = r->rax;
  r->rax = (uint64_t)-38; /* -ENOSYS unless the kernel says otherwise */
  core_syscall(r);
}

void qk_arch_syscall(struct qk_regs *r);

/* The syscall fast paths (LSTAR entry, user stub's int3) land here with
 * RIP/RFLAGS already taken from RCX/R11 and orig_rax saved. */
void qk_arch_syscall(struct qk_regs *r)
{
  r->rax = (uint64_t)-38;
  core_syscall(r);
  sanitize_user_frame(r);
}

void qk_arch_trap(struct qk_regs *r);

/* A ring-0 service requested by the worker (r: its #BP frame). */
static void worker_service(struct qk_cpu *c, struct qk_regs *r)
{
  switch (r->rdi) {
  case WORKER_OP_PTE:
    *(volatile uint64_t *)r->rsi = r->rdx; /* the app's CR3 load on return flushes */
    break;
  case WORKER_OP_HALT:
    qk_arch_halt();
    break;
  case WORKER_OP_OUT8:
    outb((uint16_t)r->rsi, (uint8_t)r->rdx);
    break;
  case WORKER_OP_OUT32:
    outl((uint16_t)r->rsi, (uint32_t)r->rdx);
    break;
  case WORKER_OP_TIMER:
    if (r->rsi != MSR_TSC_DEADLINE && r->rsi != MSR_X2APIC_TMICT)
      kernel_fault(r, 0);
    wrmsr((uint32_t)r->rsi, r->rdx);
    break;
  case WORKER_OP_IPI:
    wrmsr(MSR_X2APIC_ICR, r->rsi);
    break;
  case WORKER_OP_RETURN: {
    struct qk_regs *u = (struct qk_regs *)r->rsi;
    c->in_worker = 0;
    __asm__ volatile("mov %0, %%cr3" ::"r"(c->app_cr3) : "memory");
    c->w_app_cr3 = c->app_cr3;
    qk_arch_return_to_user(u);
  }
  default:
    kernel_fault(r, 0);
  }
}

/* CPL3, worker view: the syscall frame qk_worker_syscall built. A fast
 * return (RCX/R11 still RIP/RFLAGS) leaves the app's RIP and RSP below
 * ring 0's frame (the int3 that leaves pushes its own at K - 40) and the
 * app's CR3 in RCX, so that ring 0 only loads CR3 and sysrets (entry.S). */
int qk_worker_syscall_c(struct qk_regs *r)
{
  struct qk_cpu *c = this_cpu();
  c->app_cr3 = c->w_app_cr3;
  c->in_worker = 1;
  qk_arch_syscall(r);
  if (r->rcx != r->rip || r->r11 != r->rflags)
    return 0; /* full return through ring 0 */
  *(volatile uint64_t *)(c->kstack_top - ASM_W_RET_RIP) = r->rip;
  *(volatile uint64_t *)(c->kstack_top - ASM_W_RET_RSP) = r->rsp;
  c->w_app_cr3 = c->app_cr3;
  r->rcx = c->app_cr3;
  c->in_worker = 0; /* no trap can come before the int3 that leaves */
  return 1;
}

static inline void apic_eoi(struct qk_cpu *c, uint64_t vector)
{
  if (c->lapic && vector != APIC_SPURIOUS_VECTOR)
    wrmsr(MSR_X2APIC_EOI, 0);
}

/* Worker mode: an interrupt that arrived while the app ran and needs the
 * kernel core (the timer) continues in the CPL3 worker, as a syscall
 * would, and the core sees `vector`: the app's RIP/RSP/RFLAGS and the
 * frame's vector and error code (a fault's, for the sigcontext) go to the
 * per-vCPU block, the frame is rewritten to enter qk_worker_irq (entry.S)
 * in the worker view, and the app's other registers are still live for
 * the worker to save. */
static void irq_to_worker(struct qk_cpu *c, struct qk_regs *r, uint64_t vector)
{
  c->w_app_rip = r->rip;
  c->w_app_rsp = r->rsp;
  c->w_app_rflags = r->rflags;
  c->irq_vector = vector;
  c->w_app_trapno = r->vector;
  c->w_app_err = r->error_code;
  __asm__ volatile("mov %0, %%cr3" ::"r"(qk_worker_cr3) : "memory");
  r->rip = (uint64_t)qk_worker_irq;
  r->rsp = c->kstack_top - ASM_WORKER_GAP;
  r->rflags = ASM_WORKER_RFLAGS;
  r->cs = QK_SEL_UCODE;
  r->ss = QK_SEL_UDATA;
}

/* CPL3, worker view: the frame qk_worker_irq built, with the app's RIP,
 * RSP and RFLAGS still in the per-vCPU block. */
void qk_worker_irq_c(struct qk_regs *r)
{
  struct qk_cpu *c = this_cpu();
  r->rip = c->w_app_rip;
  r->rsp = c->w_app_rsp;
  r->rflags = c->w_app_rflags;
  r->vector = c->w_app_trapno;
  r->error_code = c->w_app_err;
  c->app_cr3 = c->w_app_cr3;
  c->in_worker = 1;
  core_interrupt((unsigned)c->irq_vector, r);
  sanitize_user_frame(r);
  /* Back through ring 0's short path (qk_worker_iret_leave in entry.S):
   * it takes RIP, RSP, RFLAGS and the CR3 from the block. */
  c->w_app_rip = r->rip;
  c->w_app_rsp = r->rsp;
  c->w_app_rflags = r->rflags;
  c->w_app_cr3 = c->app_cr3;
  c->in_worker = 0; /* no trap can come before the int3 that leaves */
  qk_worker_iret(r);
}

/* The top frame of c's kernel stack holding r's registers (moved there,
 * overlap allowed, unless r is that frame): where qk_arch_trap_exit
 * returns from. Word copy: no memcpy dependency and no bulk work in ring 0. */
static struct qk_regs *frame_at_stack_top(struct qk_cpu *c, const struct qk_regs *r)
{
  struct qk_regs *frame = (struct qk_regs *)(c->kstack_top - sizeof(struct qk_regs));
  if (frame != r) {
    volatile uint64_t *d = (volatile uint64_t *)frame;
    const volatile uint64_t *s = (const volatile uint64_t *)r;
    unsigned n = sizeof(struct qk_regs) / 8;
    if (d < s)
      for (unsigned i = 0; i < n; i++)
        d[i] = s[i];
    else
      for (unsigned i = n; i-- > 0;)
        d[i] = s[i];
  }
  return frame;
}

/* Worker mode, a ring-0 fault path that must switch tasks (the faulting
 * task died): ring 0 cannot restore the next task's XSAVE state on
 * PVM-style hosts, so continue in the worker as an interrupt would, with
 * r (the dead task's frame) as the app frame. */
__attribute__((noreturn)) void qk_arch_resched_in_worker(struct qk_regs *r)
{
  struct qk_cpu *c = this_cpu();
  if (qk_smp_on)
    qk_smp_unlock(); /* the worker takes the lock again */
  struct qk_regs *frame = frame_at_stack_top(c, r);
  irq_to_worker(c, frame, QK_VECTOR_RESCHED); /* the frame keeps the fault's vector */
  __asm__ volatile("mov %0, %%rsp; jmp qk_arch_trap_exit" ::"r"(frame) : "memory");
  __builtin_unreachable();
}

void qk_arch_trap(struct qk_regs *r)
{
  struct qk_cpu *c = this_cpu();
  if ((r->cs & 3) == 3 && c->in_worker) {
    /* From the CPL3 kernel worker: its services, interrupts, or a kernel bug. */
    if (r->vector == VEC_BP && r->rip == (uint64_t)qk_worker_call_after) {
      worker_service(c, r);
      return;
    }
    if (r->vector >= 32 && r->vector < 256) {
      if (tlb_ipi(c, r->vector))
        return;
      apic_eoi(c, r->vector);
      qk_interrupt((unsigned)r->vector, NULL);
      return;
    }
    uint64_t cr2 = 0;
    if (r->vector == VEC_PF || r->vector == VEC_DF) /* #DF: the #PF's address */
      __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    kernel_fault(r, cr2);
  }
  if ((r->cs & 3) != 3) {
    if (r->vector >= 32 && r->vector < 256) {
      if (r->rip == (uint64_t)qk_arch_halt_insn)
        r->rip++; /* came before the hlt: do not sleep after it */
      if (tlb_ipi(c, r->vector))
        return;
      /* A halt in the kernel (qk_arch_wait_for_interrupt, the worker's
       * halt service): the kernel only notes what came. */
      apic_eoi(c, r->vector);
      qk_interrupt((unsigned)r->vector, NULL);
      return;
    }
    uint64_t cr2 = 0;
    if (r->vector == VEC_PF || r->vector == VEC_DF) /* #DF: the #PF's address */
      __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    kernel_fault(r, cr2);
  }

  if (r->vector == VEC_PF && r->error_code == PF_ERR_SYSCALL_AT_LSTAR &&
             r->rip == (uint64_t)qk_arch_syscall_entry) {
    /* A user `syscall` that stayed in CPL3: this host needs the stub. */
    if (!c->stub_mode) {
      wrmsr(MSR_LSTAR, qk_arch_user_lstar[qk_worker_mode != 0]);
      c->stub_mode = 1;
    }
    r->rip = r->rcx;
    r->rflags = r->r11;
    do_syscall(r);
  } else if (r->vector >= 32 && r->vector < 256) {
    /* From the app. Only the timer and (SMP) the kick IPI need the
     * kernel core; a late QCall wake-up (the vCPU stopped waiting before
     * it came) needs nothing; a TLB shootdown only a flush. */
    if (tlb_ipi(c, r->vector))
      return;
    apic_eoi(c, r->vector);
    if (r->vector != QK_VECTOR_TIMER && r->vector != QK_VECTOR_IPI)
      return;
    if (qk_worker_mode) {
      irq_to_worker(c, r, r->vector);
      return;
    }
    core_interrupt((unsigned)r->vector, r);
  } else {
    uint64_t cr2 = 0;
    if (r->vector == VEC_PF)
      __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    core_user_fault(r, cr2);
  }
  sanitize_user_frame(r);
}

static inline struct xstate_caps *xstate_here(void)
{
  struct xstate_caps *xc = this_cpu()->in_worker ? &xs_worker : &xs_ring0;
  if (!xc->probed)
    xstate_probe(xc);
  return xc;
}

/* A zero XSAVE header (XSTATE_BV = 0): XRSTOR from it loads the init state
 * of every component it is asked for. */
static _Alignas(64) uint8_t xstate_init_hdr[576];

uint32_t qk_arch_xstate_layout(uint64_t *mask)
{
  struct xstate_caps *xc = xstate_here();
  *mask = xc->mask;
  return xc->size;
}

bool qk_arch_xstate_full(void)
{
  return !qk_worker_mode || this_cpu()->in_worker || xs_ring0.size;
}

int qk_arch_xstate_save(uint8_t *buf)
{
  struct xstate_caps *xc = xstate_here();
  if (!xc->size) {
    __asm__ volatile("fxsave64 (%0)" ::"r"(buf) : "memory");
    return QK_XSTATE_FX;
  }
  __asm__ volatile("xsave64 (%0)" ::"r"(buf), "a"((uint32_t)xc->mask), "d"((uint32_t)(xc->mask >> 32)) : "memory");
  return QK_XSTATE_X;
}

void qk_arch_xstate_restore(const uint8_t *buf, int fmt)
{
  struct xstate_caps *xc = xstate_here();
  if (xc->size && fmt == QK_XSTATE_X) {
    __asm__ volatile("xrstor64 (%0)" ::"r"(buf), "a"((uint32_t)xc->mask), "d"((uint32_t)(xc->mask >> 32))
                     : "memory");
    return;
  }
  /* Everything above SSE in its init state (nothing of another task's AVX
   * state stays), then the legacy area (both formats start with it). In
   * this order: XRSTOR of the AVX component also loads MXCSR (from the
   * zero header's legacy area), FXRSTOR then sets the task's own. */
  uint64_t upper = xc->mask & ~3ull;
  if (xc->size && upper)
    __asm__ volatile("xrstor64 (%0)" ::"r"(xstate_init_hdr), "a"((uint32_t)upper), "d"((uint32_t)(upper >> 32))
                     : "memory");
  __asm__ volatile("fxrstor64 (%0)" ::"r"(buf) : "memory");
}

int qk_arch_timer_arm(uint64_t ns)
{
  struct qk_cpu *c = this_cpu();
  if (!c->lapic)
    return -38; /* -ENOSYS: no in-kernel LAPIC */
  uint32_t msr;
  uint64_t v;
  if (c->tsc_deadline) {
    msr = MSR_TSC_DEADLINE;
    v = ns ? qk_arch_rdtsc() + (uint64_t)(((unsigned __int128)ns * c->bi->tsc_khz) / 1000000u) : 0;
    if (ns && !v)
      v = 1;
  } else {
    msr = MSR_X2APIC_TMICT;
    v = ns > 0xffffffffull ? 0xffffffffull : ns; /* 1 ns per count; 0 stops it */
  }
  if (c->in_worker)
    qk_worker_call(WORKER_OP_TIMER, msr, v);
  else
    wrmsr(msr, v);
  return 0;
}

__attribute__((noreturn)) void qk_arch_return_to_user(struct qk_regs *r)
{
  struct qk_regs *frame = frame_at_stack_top(this_cpu(), r);
  sanitize_user_frame(frame);
  __asm__ volatile("mov %0, %%rsp; jmp qk_arch_trap_exit" ::"r"(frame) : "memory");
  __builtin_unreachable();
}

/* SMP: an AP's first entry into the scheduler, from its boot stack in
 * ring 0. In worker mode it continues in the worker as an interrupt would
 * (the task it picks may have AVX state that ring 0 cannot restore here). */
__attribute__((noreturn)) void qk_arch_ap_enter(void)
{
  struct qk_cpu *c = this_cpu();
  struct qk_regs *frame = (struct qk_regs *)(c->kstack_top - sizeof(struct qk_regs));
  volatile uint64_t *d = (volatile uint64_t *)frame;
  for (unsigned i = 0; i < sizeof(struct qk_regs) / 8; i++)
    d[i] = 0;
  frame->vector = QK_VECTOR_AP_START;
  if (qk_worker_mode) {
    irq_to_worker(c, frame, QK_VECTOR_AP_START);
    __asm__ volatile("mov %0, %%rsp; jmp qk_arch_trap_exit" ::"r"(frame) : "memory");
    __builtin_unreachable();
  }
  core_interrupt(QK_VECTOR_AP_START, frame);
  qk_arch_return_to_user(frame);
}
