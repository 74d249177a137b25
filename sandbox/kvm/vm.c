/* KVM VM and vCPU handling (see vm.h). */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../guestkernel/abi/qk_abi.h"

#define MSR_EFER 0xc0000080u
#define MSR_STAR 0xc0000081u
#define MSR_LSTAR 0xc0000082u
#define MSR_CSTAR 0xc0000083u
#define MSR_SFMASK 0xc0000084u
#define MSR_FS_BASE 0xc0000100u
#define MSR_GS_BASE 0xc0000101u
#define MSR_KERNEL_GS_BASE 0xc0000102u
#define MSR_TSC_AUX 0xc0000103u
#define MSR_PAT 0x277u
#define MSR_APIC_BASE 0x1bu

#define EFER_SCE 0x1ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull
#define EFER_NXE 0x800ull
#define CR0_PE 0x1ull
#define CR0_MP 0x2ull
#define CR0_ET 0x10ull
#define CR0_NE 0x20ull
#define CR0_WP 0x10000ull
#define CR0_PG 0x80000000ull
#define CR4_PAE 0x20ull
#define CR4_OSFXSR 0x200ull
#define CR4_OSXMMEXCPT 0x400ull

enum { EXIT_IO, EXIT_HLT, EXIT_MMIO, EXIT_INTR, EXIT_OTHER, EXIT_COUNT };
static const char *const exit_names[EXIT_COUNT] = {"vmm_exits_io", "vmm_exits_hlt", "vmm_exits_mmio",
                                                    "vmm_exits_intr", "vmm_exits_other"};

struct sbx_vcpu {
  struct sbx_vm *vm;
  unsigned idx;
  int fd;
  struct kvm_run *run;
  pthread_t thread;
  atomic_bool started;
  uint64_t exits[EXIT_COUNT];
  char con[256];
  size_t con_len;
  bool cpu_final; /* under vm->lock: the thread has left its loop */
  uint64_t cpu_ns;
};

struct sbx_vm {
  int kvm_fd, vm_fd;
  size_t run_size;
  struct sbx_mem mem;
  unsigned nvcpus;
  struct sbx_vcpu *vcpus;
  int stop_fd;
  atomic_bool stopping;
  atomic_int exit_status;
  pthread_mutex_t lock;
  struct qk_boot_info *bi;
  const struct sbx_vm_hooks *hooks;
  uint64_t start_tsc;
  struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID, read once */
  bool fsgsbase_forced;
  bool irqchip; /* KVM_CREATE_IRQCHIP: in-kernel LAPIC, HLT stays in KVM */
  unsigned nroutes;
  struct kvm_irq_routing_entry routes[QK_MAX_VCPUS];
};

static void on_sigusr1(int sig) { (void)sig; }

int sbx_vm_create(struct sbx_vm **out, uint64_t mem_bytes, unsigned nvcpus, q_error **err)
{
  uint64_t t0 = sbx_rdtsc();
  if (nvcpus == 0 || nvcpus > QK_MAX_VCPUS)
    return q_error_make(err, EINVAL, "vcpus must be 1..%u", QK_MAX_VCPUS);
  if (mem_bytes < (16ull << 20) || (mem_bytes & ((2ull << 20) - 1)))
    return q_error_make(err, EINVAL, "guest memory must be >= 16 MiB and a multiple of 2 MiB");
  struct sbx_vm *vm = calloc(1, sizeof *vm);
  if (!vm)
    return q_error_make(err, ENOMEM, "vm");
  vm->start_tsc = t0;
  vm->kvm_fd = vm->vm_fd = vm->stop_fd = -1;
  pthread_mutex_init(&vm->lock, NULL);
  int r;
  vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (vm->kvm_fd < 0) {
    r = q_error_make(err, errno, "open /dev/kvm");
    goto fail;
  }
  if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
    r = q_error_make(err, ENOTSUP, "unexpected KVM API version");
    goto fail;
  }
  vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
  if (vm->vm_fd < 0) {
    r = q_error_make(err, errno, "KVM_CREATE_VM");
    goto fail;
  }
  vm->mem.size = mem_bytes;
  vm->mem.base = mmap(NULL, mem_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (vm->mem.base == MAP_FAILED) {
    vm->mem.base = NULL;
    r = q_error_make(err, errno, "mmap %llu bytes of guest memory", (unsigned long long)mem_bytes);
    goto fail;
  }
  (void)madvise(vm->mem.base, mem_bytes, MADV_HUGEPAGE); /* 2 MiB guest pages map to host huge pages */
  struct kvm_userspace_memory_region region = {
      .slot = 0, .guest_phys_addr = 0, .memory_size = mem_bytes, .userspace_addr = (uint64_t)vm->mem.base};
  if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    r = q_error_make(err, errno, "KVM_SET_USER_MEMORY_REGION");
    goto fail;
  }
  /* The in-kernel irqchip (before any vCPU): an x2APIC per vCPU for the
   * guest's timer and for interrupt wake-ups of halted vCPUs. After the
   * memory slot: with an irqchip already there, KVM_SET_USER_MEMORY_REGION
   * waited ~8 ms on this host (VM creation p50 9-12 ms against 0.45 ms,
   * load 10, 256 MiB). */
  const char *ic = getenv("QUARK_IRQCHIP");
  if (!(ic && !strcmp(ic, "0")) && ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP) > 0 &&
      ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD) > 0 &&
      ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQ_ROUTING) > 0) {
    if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) == 0)
      vm->irqchip = true;
    else
      q_debug(NULL, "KVM_CREATE_IRQCHIP: %s; no preemption", strerror(errno));
  }
  /* Intel VMX needs a TSS region below 4 GiB outside guest RAM; harmless elsewhere. */
  (void)ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul);
  int rs = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (rs < (int)sizeof(struct kvm_run)) {
    r = q_error_make(err, errno, "KVM_GET_VCPU_MMAP_SIZE");
    goto fail;
  }
  vm->run_size = (size_t)rs;
  vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (vm->stop_fd < 0) {
    r = q_error_make(err, errno, "eventfd");
    goto fail;
  }
  vm->vcpus = calloc(nvcpus, sizeof *vm->vcpus);
  if (!vm->vcpus) {
    r = q_error_make(err, ENOMEM, "vcpus");
    goto fail;
  }
  for (unsigned i = 0; i < nvcpus; i++) {
    struct sbx_vcpu *v = &vm->vcpus[i];
    v->vm = vm;
    v->idx = i;
    v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, i);
    if (v->fd < 0) {
      r = q_error_make(err, errno, "KVM_CREATE_VCPU %u", i);
      goto fail;
    }
    vm->nvcpus = i + 1;
    v->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (v->run == MAP_FAILED) {
      v->run = NULL;
      r = q_error_make(err, errno, "mmap kvm_run");
      goto fail;
    }
  }
  struct sigaction sa = {.sa_handler = on_sigusr1};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART: KVM_RUN returns EINTR */
  *out = vm;
  return 0;
fail:
  sbx_vm_destroy(vm);
  return r;
}

void sbx_vm_destroy(struct sbx_vm *vm)
{
  if (!vm)
    return;
  for (unsigned i = 0; i < vm->nvcpus; i++) {
    if (vm->vcpus[i].run)
      munmap(vm->vcpus[i].run, vm->run_size);
    if (vm->vcpus[i].fd >= 0)
      close(vm->vcpus[i].fd);
  }
  free(vm->vcpus);
  free(vm->cpuid);
  if (vm->mem.base)
    munmap(vm->mem.base, vm->mem.size);
  if (vm->stop_fd >= 0)
    close(vm->stop_fd);
  if (vm->vm_fd >= 0)
    close(vm->vm_fd);
  if (vm->kvm_fd >= 0)
    close(vm->kvm_fd);
  pthread_mutex_destroy(&vm->lock);
  free(vm);
}

struct sbx_mem *sbx_vm_mem(struct sbx_vm *vm) { return &vm->mem; }
unsigned sbx_vm_vcpus(const struct sbx_vm *vm) { return vm->nvcpus; }
uint64_t sbx_vm_start_tsc(const struct sbx_vm *vm) { return vm->start_tsc; }
int sbx_vm_stop_fd(const struct sbx_vm *vm) { return vm->stop_fd; }
void sbx_vm_set_boot_info(struct sbx_vm *vm, void *bi) { vm->bi = bi; }
bool sbx_vm_stopping(const struct sbx_vm *vm) { return atomic_load(&vm->stopping); }
bool sbx_vm_has_lapic(const struct sbx_vm *vm) { return vm->irqchip; }

int sbx_vm_add_irqfd(struct sbx_vm *vm, int fd, unsigned vcpu, uint8_t vector, q_error **err)
{
  if (!vm->irqchip)
    return q_error_make(err, ENOTSUP, "irqfd without an irqchip");
  if (vcpu >= vm->nvcpus || vm->nroutes >= Q_ARRAY_SIZE(vm->routes))
    return q_error_make(err, EINVAL, "irqfd vcpu %u", vcpu);
  /* KVM_SET_GSI_ROUTING replaces the whole table: keep ours and send it all.
   * An MSI to the vCPU's APIC id (= its index), fixed delivery, edge. */
  struct kvm_irq_routing_entry *e = &vm->routes[vm->nroutes];
  memset(e, 0, sizeof *e);
  e->gsi = vm->nroutes;
  e->type = KVM_IRQ_ROUTING_MSI;
  e->u.msi.address_lo = 0xfee00000u | (vcpu << 12);
  e->u.msi.data = vector;
  size_t sz = sizeof(struct kvm_irq_routing) + (vm->nroutes + 1) * sizeof(struct kvm_irq_routing_entry);
  struct kvm_irq_routing *rt = calloc(1, sz);
  if (!rt)
    return q_error_make(err, ENOMEM, "irq routing");
  rt->nr = vm->nroutes + 1;
  memcpy(rt->entries, vm->routes, rt->nr * sizeof(struct kvm_irq_routing_entry));
  int r = ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, rt);
  free(rt);
  if (r < 0)
    return q_error_make(err, errno, "KVM_SET_GSI_ROUTING");
  struct kvm_irqfd irqfd = {.fd = (uint32_t)fd, .gsi = e->gsi};
  if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0)
    return q_error_make(err, errno, "KVM_IRQFD");
  vm->nroutes++;
  return 0;
}

/* The supported CPUID, read once (the ioctl is slow here); owned by vm. */
static const struct kvm_cpuid2 *supported_cpuid(struct sbx_vm *vm)
{
  if (vm->cpuid)
    return vm->cpuid;
  for (unsigned n = 128; n <= 4096; n *= 2) {
    struct kvm_cpuid2 *c = calloc(1, sizeof *c + n * sizeof(struct kvm_cpuid_entry2));
    if (!c)
      return NULL;
    c->nent = n;
    if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
      return vm->cpuid = c;
    free(c);
    if (errno != E2BIG)
      return NULL;
  }
  return NULL;
}

static const struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t index)
{
  for (uint32_t i = 0; i < c->nent; i++)
    if (c->entries[i].function == fn && c->entries[i].index == index)
      return &c->entries[i];
  return NULL;
}

int sbx_vm_features(struct sbx_vm *vm, struct sbx_cpu_features *f, q_error **err)
{
  memset(f, 0, sizeof *f);
  const struct kvm_cpuid2 *c = supported_cpuid(vm);
  if (!c)
    return q_error_make(err, errno, "KVM_GET_SUPPORTED_CPUID");
  const struct kvm_cpuid_entry2 *e1 = cpuid_find(c, 1, 0), *e7 = cpuid_find(c, 7, 0), *ed = cpuid_find(c, 0xd, 0);
  const struct kvm_cpuid_entry2 *ex = cpuid_find(c, 0x80000001, 0);
  if (e1) {
    f->cpuid1_edx = e1->edx;
    f->xsave = (e1->ecx >> 26) & 1;
    f->avx = (e1->ecx >> 28) & 1;
    f->tsc_deadline = (e1->ecx >> 24) & 1;
  }
  if (e7) {
    f->fsgsbase = e7->ebx & 1;
    f->smep = (e7->ebx >> 7) & 1;
    f->smap = (e7->ebx >> 20) & 1;
  }
  if (ed)
    f->xcr0_supported = ((uint64_t)ed->edx << 32) | ed->eax;
  if (ex)
    f->pdpe1gb = (ex->edx >> 26) & 1;
  if (!f->fsgsbase && access("/sys/module/kvm_pvm", F_OK) == 0) {
    uint32_t a = 7, b, cc = 0, d;
    __asm__("cpuid" : "+a"(a), "=b"(b), "+c"(cc), "=d"(d));
    f->fsgsbase = f->fsgsbase_forced = b & 1;
  }
  vm->fsgsbase_forced = f->fsgsbase_forced;
  int khz = vm->nvcpus ? ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0) : -1;
  f->tsc_khz = khz > 0 ? (uint64_t)khz : 0;
  return 0;
}

static void seg(struct kvm_segment *s, uint16_t sel, bool code, unsigned dpl)
{
  memset(s, 0, sizeof *s);
  s->limit = 0xffffffff;
  s->selector = sel;
  s->present = 1;
  s->s = 1;
  s->dpl = (uint8_t)dpl;
  s->g = 1;
  if (code) {
    s->type = 0xb;
    s->l = 1;
  } else {
    s->type = 0x3;
    s->db = 1;
  }
}

int sbx_vm_setup_vcpu(struct sbx_vm *vm, unsigned idx, const struct sbx_vcpu_boot *b, q_error **err)
{
  if (idx >= vm->nvcpus)
    return q_error_make(err, EINVAL, "vcpu %u", idx);
  struct sbx_vcpu *v = &vm->vcpus[idx];

  const struct kvm_cpuid2 *sup = supported_cpuid(vm);
  if (!sup)
    return q_error_make(err, errno, "KVM_GET_SUPPORTED_CPUID");
  size_t csize = sizeof *sup + sup->nent * sizeof(struct kvm_cpuid_entry2);
  struct kvm_cpuid2 *c = malloc(csize);
  if (!c)
    return q_error_make(err, ENOMEM, "cpuid");
  memcpy(c, sup, csize);
  for (uint32_t i = 0; i < c->nent; i++) {
    struct kvm_cpuid_entry2 *e = &c->entries[i];
    if (e->function == 1) { /* initial APIC id = vCPU index */
      e->ebx = (e->ebx & 0x00ffffffu) | (idx << 24);
      if (vm->irqchip)
        e->ecx |= 1u << 21; /* x2APIC: KVM's in-kernel LAPIC emulates it */
    }
    if (e->function == 7 && e->index == 0 && vm->fsgsbase_forced)
      e->ebx |= 1u;
  }
  int r = ioctl(v->fd, KVM_SET_CPUID2, c);
  free(c);
  if (r < 0)
    return q_error_make(err, errno, "KVM_SET_CPUID2");

  struct kvm_sregs s;
  if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
    return q_error_make(err, errno, "KVM_GET_SREGS");
  seg(&s.cs, QK_SEL_KCODE, true, 0);
  seg(&s.ds, QK_SEL_KDATA, false, 0);
  s.es = s.fs = s.gs = s.ss = s.ds;
  memset(&s.tr, 0, sizeof s.tr);
  s.tr.base = b->tss_base;
  s.tr.limit = 0x67;
  s.tr.selector = QK_SEL_TSS;
  s.tr.type = 0xb;
  s.tr.present = 1;
  memset(&s.ldt, 0, sizeof s.ldt);
  s.ldt.type = 2;
  s.ldt.present = 1;
  s.ldt.limit = 0xffff;
  s.gdt.base = b->gdt_base;
  s.gdt.limit = b->gdt_limit;
  s.idt.base = b->idt_base;
  s.idt.limit = b->idt_limit;
  s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
  s.cr3 = b->cr3;
  s.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | b->cr4_extra;
  s.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
  if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0)
    return q_error_make(err, errno, "KVM_SET_SREGS");

  if (b->xcr0) {
    struct kvm_xcrs x = {.nr_xcrs = 1, .xcrs = {{.xcr = 0, .value = b->xcr0}}};
    if (ioctl(v->fd, KVM_SET_XCRS, &x) < 0)
      return q_error_make(err, errno, "KVM_SET_XCRS");
  }
  struct kvm_fpu fpu;
  memset(&fpu, 0, sizeof fpu);
  fpu.fcw = 0x37f; /* the state Linux gives a new process */
  fpu.mxcsr = 0x1f80;
  if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
    return q_error_make(err, errno, "KVM_SET_FPU");

  struct {
    struct kvm_msrs h;
    struct kvm_msr_entry e[11];
  } m;
  memset(&m, 0, sizeof m);
  struct kvm_msr_entry ents[] = {
      {.index = MSR_STAR, .data = b->star},
      {.index = MSR_LSTAR, .data = b->lstar},
      {.index = MSR_CSTAR, .data = 0},
      {.index = MSR_SFMASK, .data = b->sfmask},
      {.index = MSR_FS_BASE, .data = 0},
      {.index = MSR_GS_BASE, .data = 0},
      {.index = MSR_KERNEL_GS_BASE, .data = 0},
      {.index = MSR_TSC_AUX, .data = idx},
      {.index = MSR_PAT, .data = 0x0007040600070406ull},
      /* x2APIC mode (EN | EXTD, BSP on vCPU 0), only with the irqchip:
       * the entry is dropped below otherwise. */
      {.index = MSR_APIC_BASE, .data = 0xfee00000ull | 0xc00 | (idx == 0 ? 0x100 : 0)},
  };
  m.h.nmsrs = Q_ARRAY_SIZE(ents) - (vm->irqchip ? 0 : 1);
  memcpy(m.e, ents, sizeof ents);
  r = ioctl(v->fd, KVM_SET_MSRS, &m);
  if (r != (int)m.h.nmsrs)
    return q_error_make(err, r < 0 ? errno : EINVAL, "KVM_SET_MSRS set %d of %u", r, m.h.nmsrs);
  if (vm->irqchip && idx != 0) {
    /* With an in-kernel LAPIC, application processors wait for INIT/SIPI:
     * every vCPU starts at its boot state instead. */
    struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_RUNNABLE};
    if (ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0)
      return q_error_make(err, errno, "KVM_SET_MP_STATE");
  }

  struct kvm_regs regs;
  memset(&regs, 0, sizeof regs);
  regs.rip = b->rip;
  regs.rsp = b->rsp;
  regs.rdi = b->rdi;
  regs.rsi = b->rsi;
  regs.rflags = 2;
  if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
    return q_error_make(err, errno, "KVM_SET_REGS");
  return 0;
}

int sbx_vm_add_ioeventfd(struct sbx_vm *vm, uint16_t port, uint32_t datamatch, int fd, q_error **err)
{
  struct kvm_ioeventfd io = {
      .datamatch = datamatch,
      .addr = port,
      .len = 4,
      .fd = fd,
      .flags = KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DATAMATCH,
  };
  if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0)
    return q_error_make(err, errno, "KVM_IOEVENTFD port %#x", port);
  return 0;
}

int sbx_vm_add_mmio_ioeventfd(struct sbx_vm *vm, uint64_t gpa, uint32_t datamatch, int fd, q_error **err)
{
  struct kvm_ioeventfd io = {
      .datamatch = datamatch, .addr = gpa, .len = 4, .fd = fd, .flags = KVM_IOEVENTFD_FLAG_DATAMATCH};
  if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0)
    return q_error_make(err, errno, "KVM_IOEVENTFD mmio %#llx", (unsigned long long)gpa);
  return 0;
}

void sbx_vm_stop(struct sbx_vm *vm, int status)
{
  pthread_mutex_lock(&vm->lock);
  if (!atomic_load(&vm->stopping)) {
    atomic_store(&vm->exit_status, status);
    atomic_store(&vm->stopping, true);
    uint64_t one = 1;
    if (write(vm->stop_fd, &one, sizeof one) < 0) {
      /* The counter cannot overflow with one write; nothing else to do. */
    }
    for (unsigned i = 0; i < vm->nvcpus; i++) {
      struct sbx_vcpu *v = &vm->vcpus[i];
      v->run->immediate_exit = 1;
      if (atomic_load(&v->started) && !pthread_equal(v->thread, pthread_self()))
        pthread_kill(v->thread, SIGUSR1);
    }
  }
  pthread_mutex_unlock(&vm->lock);
}

static void dump_vcpu(struct sbx_vcpu *v, const char *why)
{
  struct kvm_regs r;
  struct kvm_sregs s;
  memset(&r, 0, sizeof r);
  memset(&s, 0, sizeof s);
  ioctl(v->fd, KVM_GET_REGS, &r);
  ioctl(v->fd, KVM_GET_SREGS, &s);
  q_error_log(NULL, "guest fatal error on vcpu %u: %s", v->idx, why);
  q_error_log(NULL, "  rip=%016llx rsp=%016llx rflags=%08llx cs=%04x(dpl%u) ss=%04x", r.rip, r.rsp, r.rflags,
              s.cs.selector, s.cs.dpl, s.ss.selector);
  q_error_log(NULL, "  rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx", r.rax, r.rbx, r.rcx, r.rdx);
  q_error_log(NULL, "  rsi=%016llx rdi=%016llx rbp=%016llx r8=%016llx", r.rsi, r.rdi, r.rbp, r.r8);
  q_error_log(NULL, "  r9=%016llx r10=%016llx r11=%016llx r12=%016llx", r.r9, r.r10, r.r11, r.r12);
  q_error_log(NULL, "  r13=%016llx r14=%016llx r15=%016llx", r.r13, r.r14, r.r15);
  q_error_log(NULL, "  cr0=%llx cr2=%llx cr3=%llx cr4=%llx efer=%llx", s.cr0, s.cr2, s.cr3, s.cr4, s.efer);
}

static void console_byte(struct sbx_vcpu *v, char ch)
{
  if (ch != '\n' && v->con_len < sizeof v->con - 1) {
    v->con[v->con_len++] = ch;
    return;
  }
  v->con[v->con_len] = 0;
  q_info(NULL, "guest console[%u]: %s", v->idx, v->con);
  v->con_len = 0;
  if (ch != '\n')
    v->con[v->con_len++] = ch;
}

/* Returns false when the vCPU must stop. */
static bool handle_io(struct sbx_vcpu *v)
{
  struct kvm_run *run = v->run;
  uint8_t *data = (uint8_t *)run + run->io.data_offset;
  v->exits[EXIT_IO]++;
  if (run->io.direction == KVM_EXIT_IO_IN) {
    memset(data, 0xff, (size_t)run->io.size * run->io.count); /* nothing answers reads */
    return true;
  }
  uint32_t val = 0;
  memcpy(&val, data, run->io.size < 4 ? run->io.size : 4);
  switch (run->io.port) {
  case QK_PORT_CONSOLE:
    for (uint32_t i = 0; i < run->io.count; i++)
      console_byte(v, (char)data[i * run->io.size]);
    return true;
  case QK_PORT_SHUTDOWN:
    sbx_vm_stop(v->vm, (int)(val & 0xff));
    return false;
  case QK_PORT_PANIC: {
    char msg[QK_PANIC_MSG_SIZE] = "";
    if (v->vm->bi) {
      memcpy(msg, v->vm->bi->panic_msg, sizeof msg);
      msg[sizeof msg - 1] = 0;
    }
    dump_vcpu(v, "guest kernel panic");
    q_error_log(NULL, "  panic: %s", msg);
    sbx_vm_stop(v->vm, SBX_EXIT_GUEST_FAILURE);
    return false;
  }
  case QK_PORT_KICK:
    /* Only reached when no ioeventfd is bound; the worker polls anyway. */
    return true;
  case QK_PORT_WAIT:
    /* The vCPU waits for a QCall completion on its ring (no interrupt). */
    if (v->vm->hooks && v->vm->hooks->on_halt)
      v->vm->hooks->on_halt(v->vm->hooks->ctx, v->idx, v->vm->stop_fd);
    return true;
  default:
    return true;
  }
}

static void *vcpu_loop(void *arg)
{
  struct sbx_vcpu *v = arg;
  struct sbx_vm *vm = v->vm;
  while (!atomic_load(&vm->stopping)) {
    int r = ioctl(v->fd, KVM_RUN, 0);
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      q_error_log(NULL, "KVM_RUN on vcpu %u: %s", v->idx, strerror(errno));
      sbx_vm_stop(vm, SBX_EXIT_GUEST_FAILURE);
      break;
    }
    struct kvm_run *run = v->run;
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
      if (!handle_io(v))
        return NULL;
      break;
    case KVM_EXIT_HLT:
      v->exits[EXIT_HLT]++;
      if (vm->hooks && vm->hooks->on_halt)
        vm->hooks->on_halt(vm->hooks->ctx, v->idx, vm->stop_fd);
      else
        poll(&(struct pollfd){.fd = vm->stop_fd, .events = POLLIN}, 1, -1);
      break;
    case KVM_EXIT_INTR:
      v->exits[EXIT_INTR]++;
      break;
    case KVM_EXIT_MMIO:
      v->exits[EXIT_MMIO]++;
      if (run->mmio.phys_addr == vm->mem.size + QK_WORKER_WAIT_OFF && run->mmio.is_write &&
          run->mmio.len == 4) {
        /* QK_PORT_WAIT from the kernel worker (QK_HOST_WORKER_MMIO_WAIT): a
         * store to the kick page, the first page past the memslot. */
        if (vm->hooks && vm->hooks->on_halt)
          vm->hooks->on_halt(vm->hooks->ctx, v->idx, vm->stop_fd);
        break;
      }
      dump_vcpu(v, "access to unbacked guest-physical memory (MMIO)");
      q_error_log(NULL, "  mmio addr=%llx len=%u write=%u", run->mmio.phys_addr, run->mmio.len, run->mmio.is_write);
      sbx_vm_stop(vm, SBX_EXIT_GUEST_FAILURE);
      return NULL;
    case KVM_EXIT_SHUTDOWN:
      v->exits[EXIT_OTHER]++;
      dump_vcpu(v, "triple fault (KVM_EXIT_SHUTDOWN)");
      sbx_vm_stop(vm, SBX_EXIT_GUEST_FAILURE);
      return NULL;
    case KVM_EXIT_FAIL_ENTRY:
      v->exits[EXIT_OTHER]++;
      dump_vcpu(v, "VM entry failed");
      q_error_log(NULL, "  hardware_entry_failure_reason=%llx",
                  (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
      sbx_vm_stop(vm, SBX_EXIT_GUEST_FAILURE);
      return NULL;
    case KVM_EXIT_INTERNAL_ERROR:
      v->exits[EXIT_OTHER]++;
      dump_vcpu(v, "KVM internal error");
      q_error_log(NULL, "  suberror=%u", run->internal.suberror);
      sbx_vm_stop(vm, SBX_EXIT_GUEST_FAILURE);
      return NULL;
    default:
      v->exits[EXIT_OTHER]++;
      dump_vcpu(v, "unexpected exit");
      q_error_log(NULL, "  exit_reason=%u", run->exit_reason);
      sbx_vm_stop(vm, SBX_EXIT_GUEST_FAILURE);
      return NULL;
    }
  }
  return NULL;
}

/* The loop, then its CPU time recorded before the thread can be joined
 * (sbx_vm_cpu_ns reads running threads' clocks under the same lock). */
static void *vcpu_thread(void *arg)
{
  struct sbx_vcpu *v = arg;
  vcpu_loop(arg);
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  pthread_mutex_lock(&v->vm->lock);
  v->cpu_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  v->cpu_final = true;
  pthread_mutex_unlock(&v->vm->lock);
  return NULL;
}

uint64_t sbx_vm_cpu_ns(struct sbx_vm *vm)
{
  uint64_t sum = 0;
  pthread_mutex_lock(&vm->lock);
  for (unsigned i = 0; i < vm->nvcpus; i++) {
    struct sbx_vcpu *v = &vm->vcpus[i];
    if (v->cpu_final) {
      sum += v->cpu_ns;
    } else if (atomic_load(&v->started)) {
      clockid_t cid;
      struct timespec ts;
      if (pthread_getcpuclockid(v->thread, &cid) == 0 && clock_gettime(cid, &ts) == 0)
        sum += (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
  }
  pthread_mutex_unlock(&vm->lock);
  return sum;
}

int sbx_vm_run(struct sbx_vm *vm, const struct sbx_vm_hooks *hooks)
{
  vm->hooks = hooks;
  /* vCPU threads get SIGUSR1 (stop); the rest of the process blocks it. */
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_UNBLOCK, &set, &old);
  unsigned started = 0;
  for (unsigned i = 0; i < vm->nvcpus; i++) {
    pthread_mutex_lock(&vm->lock);
    int r = atomic_load(&vm->stopping) ? ECANCELED : pthread_create(&vm->vcpus[i].thread, NULL, vcpu_thread, &vm->vcpus[i]);
    if (r == 0)
      atomic_store(&vm->vcpus[i].started, true);
    pthread_mutex_unlock(&vm->lock);
    if (r != 0) {
      if (r != ECANCELED) {
        q_error_log(NULL, "start vcpu %u: %s", i, strerror(r));
        sbx_vm_stop(vm, SBX_EXIT_GUEST_FAILURE);
      }
      break;
    }
    started++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  for (unsigned i = 0; i < started; i++)
    pthread_join(vm->vcpus[i].thread, NULL);
  for (unsigned i = 0; i < vm->nvcpus; i++)
    if (vm->vcpus[i].con_len)
      console_byte(&vm->vcpus[i], '\n');
  return atomic_load(&vm->exit_status);
}

void sbx_vm_write_stats(struct sbx_vm *vm, FILE *f)
{
  enum { MAXS = 256 };
  char names[MAXS][48];
  uint64_t sums[MAXS];
  unsigned n = 0;
  for (unsigned i = 0; i < vm->nvcpus; i++) {
    int sfd = ioctl(vm->vcpus[i].fd, KVM_GET_STATS_FD, 0);
    if (sfd < 0)
      continue;
    struct kvm_stats_header h;
    if (pread(sfd, &h, sizeof h, 0) != (ssize_t)sizeof h || h.name_size > 256 || h.num_desc > 1024) {
      close(sfd);
      continue;
    }
    size_t dsz = sizeof(struct kvm_stats_desc) + h.name_size;
    char *descs = malloc(dsz * h.num_desc);
    if (descs && pread(sfd, descs, dsz * h.num_desc, h.desc_offset) == (ssize_t)(dsz * h.num_desc)) {
      for (uint32_t k = 0; k < h.num_desc; k++) {
        struct kvm_stats_desc *d = (void *)(descs + k * dsz);
        if (d->size != 1)
          continue;
        uint64_t val = 0;
        if (pread(sfd, &val, 8, h.data_offset + d->offset) != 8)
          continue;
        unsigned j = 0;
        while (j < n && strncmp(names[j], d->name, sizeof names[j] - 1))
          j++;
        if (j == n) {
          if (n == MAXS)
            continue;
          snprintf(names[n], sizeof names[n], "%s", d->name);
          sums[n++] = 0;
        }
        sums[j] += val;
      }
    }
    free(descs);
    close(sfd);
  }
  for (unsigned j = 0; j < n; j++)
    fprintf(f, "kvm_%s %llu\n", names[j], (unsigned long long)sums[j]);
  /* CPU time of the vCPU threads (KVM's emulation of guest ring 0 runs
   * there): steadier than wall time on a loaded host. */
  fprintf(f, "vcpu_cpu_us %llu\n", (unsigned long long)(sbx_vm_cpu_ns(vm) / 1000u));
  for (int e = 0; e < EXIT_COUNT; e++) {
    uint64_t s = 0;
    for (unsigned i = 0; i < vm->nvcpus; i++)
      s += vm->vcpus[i].exits[e];
    fprintf(f, "%s %llu\n", exit_names[e], (unsigned long long)s);
  }
}
