/* x86-64 boot state written by the host: loads qkernel.bin, builds the
 * kernel page tables (direct map with 2 MiB pages, the image W^X with 4 KiB
 * pages, the user syscall stub page), the IDT from the kernel header, one
 * GDT + TSS + stacks per vCPU, the QCall rings, the initial process (ELF
 * loader) and the boot info page, then programs every vCPU.
 *
 * Guest-physical layout:
 *   0x1000              boot info (QK_GPA_BOOTINFO)
 *   0x2000              IDT (256 gates), at SBX_IDT_VA in the kernel's view
 *   0x3000 + i*0x1000   per-vCPU page: GDT, TSS (QK_PERCPU_TSS_OFF)
 *   0x200000            kernel image (QK_KERNEL_PBASE)
 *   after the image     host allocations: page tables, stacks, rings, the
 *                       initial process; then [free_start, mem_size) free
 */
#ifndef SBX_BOOT_H
#define SBX_BOOT_H

#include <quark/common.h>

#include "../../kvm/vm.h"
#include "../../loader/elf_loader.h"

#define SBX_GPA_IDT 0x2000ull
#define SBX_GPA_PERCPU(i) (0x3000ull + (uint64_t)(i) * 0x1000)
/* Worker view: the MMIO kick page, just below the direct map. */
#define SBX_WORKER_KICK_VA (QK_DIRECT_MAP - (2ull << 20))
/* The IDT's address (IDTR): the IDT page in the kernel's view, a copy of it
 * in the worker view, so that the guest can point each view's #BP gate at
 * its own entry (guestkernel/arch/x86_64/entry.S). */
#define SBX_IDT_VA (QK_DIRECT_MAP - (4ull << 20))

struct sbx_boot_config {
  const char *kernel_path;
  int rootfd;
  struct sbx_proc_spec proc; /* hwcap fields are filled by the boot code */
  const char *hostname;
  bool kernel_worker; /* build the worker view and ask for the ring-3 kernel worker */
};

struct sbx_boot_result {
  struct qk_boot_info *bi; /* host pointer into guest memory */
  uint64_t rings_gpa;
  unsigned ring_count;
  uint64_t host_alloc_bytes; /* guest memory the host used at boot */
  uint64_t kick_gpa;         /* MMIO kick address of the worker view, 0 if none */
};

/* Validates a kernel image and returns its header (exposed for tests). */
int sbx_kernel_check(const uint8_t *buf, size_t len, struct qk_kernel_header *hdr, q_error **err);

int sbx_boot_prepare(struct sbx_vm *vm, const struct sbx_boot_config *cfg, struct sbx_boot_result *out,
                     q_error **err);

#endif
