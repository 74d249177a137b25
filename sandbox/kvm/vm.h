/* The KVM layer of quark-sandbox: the only code that includes <linux/kvm.h>.
 *
 * Contract:
 * - sbx_vm_create opens /dev/kvm, creates the VM, maps guest memory
 *   (MAP_NORESERVE, MADV_HUGEPAGE) as one memslot at gpa 0 and creates the
 *   vCPUs. The boot code then writes guest memory and calls
 *   sbx_vm_setup_vcpu for each vCPU before sbx_vm_run.
 * - sbx_vm_run runs one thread per vCPU and returns when the VM stops: the
 *   guest's exit status (QK_PORT_SHUTDOWN, or sbx_vm_stop from a QCall
 *   EXIT), or SBX_EXIT_GUEST_FAILURE after a guest fatal error (triple
 *   fault, panic port, failed entry), which is logged with a register dump.
 * - sbx_vm_stop may be called from any thread; the first status wins.
 * - With an in-kernel irqchip (the default where KVM offers one;
 *   QUARK_IRQCHIP=0 turns it off) each vCPU has an x2APIC, HLT stays in
 *   KVM, and the QCall layer wakes a halted vCPU with an interrupt bound
 *   by sbx_vm_add_irqfd. Without it HLT exits go to hooks->on_halt (the
 *   QCall layer waits there for a completion on that vCPU's ring or for
 *   the stop fd), and so do writes to QK_PORT_WAIT (QCall waits that stay
 *   in the VMM where an interrupt would cost more, QK_HOST_QCALL_PORT_WAIT).
 */
#ifndef SBX_VM_H
#define SBX_VM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <quark/common.h>

#include "../mem/guest_mem.h"

#define SBX_EXIT_GUEST_FAILURE 125

struct sbx_vm;

/* Host CPU features the boot code needs, from KVM_GET_SUPPORTED_CPUID. */
struct sbx_cpu_features {
  bool fsgsbase, smep, smap, xsave, avx, pdpe1gb;
  bool tsc_deadline; /* CPUID.1:ECX[24]: the LAPIC timer's TSC-deadline mode */
  /* PVM-style hosts do not advertise FSGSBASE although ring-3 code runs
   * natively on a CPU that has it (FINDINGS.md): the guest CPUID gets it
   * when the host CPU has it. */
  bool fsgsbase_forced;
  uint64_t xcr0_supported;
  uint32_t cpuid1_edx; /* AT_HWCAP */
  uint64_t tsc_khz;
};

/* Boot register state of one vCPU (long mode, CPL0). */
struct sbx_vcpu_boot {
  uint64_t rip, rsp, rdi, rsi;
  uint64_t cr3, cr4_extra;
  uint64_t gdt_base, idt_base, tss_base;
  uint16_t gdt_limit, idt_limit;
  uint64_t lstar, star, sfmask;
  uint64_t xcr0; /* 0: leave XSAVE off */
};

struct sbx_vm_hooks {
  void *ctx;
  /* Blocks until vCPU idx has something to do or stop_fd is readable. */
  void (*on_halt)(void *ctx, unsigned idx, int stop_fd);
};

int sbx_vm_create(struct sbx_vm **out, uint64_t mem_bytes, unsigned nvcpus, q_error **err);
void sbx_vm_destroy(struct sbx_vm *vm);
struct sbx_mem *sbx_vm_mem(struct sbx_vm *vm);
unsigned sbx_vm_vcpus(const struct sbx_vm *vm);
int sbx_vm_features(struct sbx_vm *vm, struct sbx_cpu_features *f, q_error **err);
int sbx_vm_setup_vcpu(struct sbx_vm *vm, unsigned idx, const struct sbx_vcpu_boot *b, q_error **err);
/* Binds eventfd fd to 32-bit writes of value datamatch on port (ioeventfd). */
int sbx_vm_add_ioeventfd(struct sbx_vm *vm, uint16_t port, uint32_t datamatch, int fd, q_error **err);
/* The same for 32-bit writes to guest-physical gpa (outside the memslot). */
int sbx_vm_add_mmio_ioeventfd(struct sbx_vm *vm, uint64_t gpa, uint32_t datamatch, int fd, q_error **err);
/* True when the VM has an in-kernel irqchip (x2APIC per vCPU). */
bool sbx_vm_has_lapic(const struct sbx_vm *vm);
/* Binds eventfd fd so that each write delivers vector to vCPU vcpu's
 * x2APIC (an MSI route + KVM_IRQFD). Needs the irqchip. */
int sbx_vm_add_irqfd(struct sbx_vm *vm, int fd, unsigned vcpu, uint8_t vector, q_error **err);
/* Boot info page (for the panic message); set before sbx_vm_run. */
void sbx_vm_set_boot_info(struct sbx_vm *vm, void *bi);
int sbx_vm_run(struct sbx_vm *vm, const struct sbx_vm_hooks *hooks);
void sbx_vm_stop(struct sbx_vm *vm, int status);
bool sbx_vm_stopping(const struct sbx_vm *vm);
/* CPU time of the vCPU threads so far (ns), any thread. */
uint64_t sbx_vm_cpu_ns(struct sbx_vm *vm);
/* TSC read when sbx_vm_create started (for the boot-time measurement). */
uint64_t sbx_vm_start_tsc(const struct sbx_vm *vm);
/* An eventfd that becomes readable (and stays so) when the VM stops. */
int sbx_vm_stop_fd(const struct sbx_vm *vm);
/* Writes "name value" lines: KVM's per-vCPU statistics summed over vCPUs
 * and the VMM's own exit counts. */
void sbx_vm_write_stats(struct sbx_vm *vm, FILE *f);

static inline uint64_t sbx_rdtsc(void)
{
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

#endif
