/* Quark host <-> guest ABI: the ONLY code that both quark-sandbox (host) and
 * qkernel.bin (guest) compile. Self-contained C11: no includes beyond
 * <stdint.h>-style fixed-width types, no host headers. Every shared layout is
 * pinned with _Static_assert. Changes are additive; any change to an existing
 * layout or meaning bumps QK_ABI_VERSION, and the host refuses a kernel whose
 * header carries another version.
 *
 * Address-space contract (x86-64, 4-level paging):
 *   guest physical  [0, mem_size)            one KVM memslot, host-mmap'd
 *   QK_DIRECT_MAP   + pa                     all guest physical memory, RW, NX,
 *                                            supervisor, 2 MiB pages
 *   QK_KERNEL_VBASE + (pa - QK_KERNEL_PBASE) the kernel image (from its ELF
 *                                            program headers, W^X honoured)
 *   [0, QK_USER_TOP)                         user space of the current process
 * The upper-half PML4 entries (256..511) are the same in every address space.
 */
#ifndef QK_ABI_H
#define QK_ABI_H

#include <stdint.h>

/* 2: the host may serve QCalls on the vCPU thread and takes the kernel
 * worker's wait as an MMIO store; QK_OP_SLEEP answers 1 when a pod command
 * ends it (qk_ctl.h guest_sleeping); qk_ctl_spec.pids_max. A kernel and a
 * sandbox of different versions would each wait for the other. */
#define QK_ABI_VERSION 2u

#define QK_PAGE_SIZE 4096ull
#define QK_HUGE_PAGE_SIZE (2ull << 20)

#define QK_DIRECT_MAP 0xffff888000000000ull
#define QK_KERNEL_VBASE 0xffffffff80000000ull
#define QK_KERNEL_PBASE 0x0000000000200000ull /* 2 MiB */
#define QK_USER_TOP 0x00007ffffffff000ull

/* Fixed guest-physical pages below the kernel image. */
#define QK_GPA_BOOTINFO 0x1000ull /* struct qk_boot_info, one page */

/* GDT layout written by the host (one GDT + TSS per vCPU). STAR is
 * programmed so that syscall enters with KCODE/KDATA and sysret returns
 * with UCODE/UDATA. */
#define QK_SEL_KCODE 0x08u
#define QK_SEL_KDATA 0x10u
#define QK_SEL_UDATA 0x1bu /* 0x18 | RPL 3 */
#define QK_SEL_UCODE 0x23u /* 0x20 | RPL 3 */
#define QK_SEL_TSS 0x28u   /* 16-byte system descriptor */

/* Per-vCPU page (boot info percpu_gpa[i]), written by the host: the GDT
 * (selectors above) at offset 0 and the 64-bit TSS at QK_PERCPU_TSS_OFF.
 * Each vCPU has one kernel stack region of QK_KSTACK_SIZE bytes, aligned to
 * QK_KSTACK_SIZE, ending at boot_stack_top[i] (= TSS.RSP0: traps from user
 * mode land there). Its lowest QK_IST_STACK_SIZE bytes are the fault stack
 * of TSS.IST1 (#DF, NMI, #MC), and the arch layer keeps its per-vCPU block
 * at the region's base, found from any RSP inside the region by masking.
 * The page at QK_KSTACK_GUARD_OFF (above the block, below the IST stack) is
 * unmapped in the kernel's and the kernel worker's views: a stack that
 * overflows faults there before it reaches the block or what lies below. */
#define QK_PERCPU_TSS_OFF 0x80u
#define QK_KSTACK_SIZE (64u << 10)
#define QK_IST_STACK_SIZE (16u << 10)
#define QK_KSTACK_GUARD_OFF 0x1000u

/* I/O ports. Only slow paths exit the VM; the hot path is the QCall ring. */
#define QK_PORT_KICK 0x0510u    /* 32-bit write: ring index; host worker asleep */
#define QK_PORT_CONSOLE 0x0511u /* 8-bit write: early/panic console byte */
#define QK_PORT_PANIC 0x0512u   /* 32-bit write: guest fatal error; host dumps regs */
#define QK_PORT_SHUTDOWN 0x0513u /* 32-bit write: VM exit status (0..255) */

/* Interrupt vectors the host may inject (MSI through irqfd or KVM_INTERRUPT). */
#define QK_VECTOR_QCALL 0x40u   /* a completion arrived while the vCPU slept */
#define QK_VECTOR_TIMER 0x41u   /* LAPIC timer */
#define QK_VECTOR_IPI 0x42u     /* cross-vCPU wake-up */
#define QK_VECTOR_CTL 0x43u     /* a pod control command arrived (qk_ctl.h) */

/* ---- kernel image header ----
 * qkernel.bin is an ELF64 executable linked at QK_KERNEL_VBASE whose section
 * ".qk_header" holds this struct. The host reads it to check the ABI version
 * and to build the IDT: vector v's gate points at
 * vector_stubs + v * vector_stub_stride (interrupt gates, DPL 0, except
 * vector 3 which is DPL 3 so that int3 from ring 3 reaches the kernel). */
#define QK_KERNEL_MAGIC 0x314e524b4b51ull /* "QKKRN1" */

struct qk_kernel_header {
  uint64_t magic;
  uint32_t abi_version;
  uint32_t flags;
  uint64_t vector_stubs;       /* kernel virtual address */
  uint32_t vector_stub_stride; /* bytes between stubs */
  uint32_t vector_count;       /* 256 */
  uint64_t syscall_entry;      /* value for MSR_LSTAR (kernel VA) */
  uint64_t syscall_user_stub;  /* user-accessible stub VA, 0 if none (see ARCHITECTURE.md) */
  uint64_t reserved[4];
};
_Static_assert(sizeof(struct qk_kernel_header) == 80, "qk_kernel_header layout");

/* ---- boot info page (host writes before the first instruction) ---- */
#define QK_BOOT_MAGIC 0x49424b51u /* "QKBI" */
#define QK_MAX_VCPUS 64u
#define QK_MAX_BOOT_VMAS 32u
#define QK_PANIC_MSG_SIZE 512u
#define QK_SEC_MAX_GROUPS 32u

/* A mapping the host created for the initial process. */
struct qk_vma_desc {
  uint64_t start; /* page aligned */
  uint64_t end;   /* exclusive, page aligned */
  uint32_t prot;  /* QK_PROT_* */
  uint32_t kind;  /* QK_VMA_* */
};
_Static_assert(sizeof(struct qk_vma_desc) == 24, "qk_vma_desc layout");

#define QK_PROT_READ 1u
#define QK_PROT_WRITE 2u
#define QK_PROT_EXEC 4u

#define QK_VMA_ELF 1u    /* loaded PT_LOAD segment (file contents copied in) */
#define QK_VMA_BSS 2u    /* zero-filled tail of a segment */
#define QK_VMA_STACK 3u  /* initial stack */
#define QK_VMA_HEAP 4u   /* empty brk area start: start == end */
#define QK_VMA_VDSO 5u

/* Host-flags: facts the host knows about its own hypervisor. The guest must
 * still detect behaviour itself; these are hints only. */
#define QK_HOST_RING0_EMULATED 1u /* e.g. PVM: ring-0 code is emulated */
/* The host built worker_cr3 and asks the arch layer to run syscalls in the
 * ring-3 kernel worker (ARCHITECTURE.md, "Sandbox and privileged layer"). */
#define QK_HOST_KERNEL_WORKER 2u
/* An in-kernel irqchip: each vCPU has an x2APIC (x2APIC mode set by the
 * host) whose timer the guest programs, and QCall wake-ups of a halted vCPU
 * arrive as QK_VECTOR_QCALL (irqfd). Without it HLT exits to the VMM. */
#define QK_HOST_LAPIC 4u
#define QK_HOST_TSC_DEADLINE 8u /* the LAPIC timer has TSC-deadline mode */
/* A vCPU waiting for a QCall completion asks the VMM to wait for it
 * (guest_sleeping = 2, a 32-bit write of its index to QK_PORT_WAIT) instead
 * of halting for QK_VECTOR_QCALL: where ring 0 is emulated an interrupt
 * costs ~50 emulated instructions, more than the port exit. */
#define QK_HOST_QCALL_PORT_WAIT 16u
#define QK_PORT_WAIT 0x0514u /* 32-bit write: vCPU index (QK_HOST_QCALL_PORT_WAIT) */
/* With QK_HOST_QCALL_PORT_WAIT and the kernel worker: a 32-bit store of the
 * vCPU index at worker_kick_va + QK_WORKER_WAIT_OFF is QK_PORT_WAIT as an
 * MMIO exit to the VMM, without the ring-0 service a port write from the
 * CPL3 worker needs (~60 emulated instructions on PVM-style hosts). */
#define QK_HOST_WORKER_MMIO_WAIT 32u
#define QK_WORKER_WAIT_OFF 64u

struct qk_boot_info {
  uint32_t magic;
  uint32_t abi_version;
  uint64_t mem_size;        /* bytes of guest physical memory */
  uint32_t vcpu_count;
  uint32_t host_flags;      /* QK_HOST_* */
  uint64_t tsc_khz;         /* guest TSC == host TSC */
  uint64_t boot_tsc;        /* TSC when boot_realtime_ns/boot_monotonic_ns were read */
  uint64_t boot_realtime_ns;
  uint64_t boot_monotonic_ns;

  /* Physical memory the guest allocator owns: [free_start, free_end). Every
   * page in it is zero at boot. Everything else is in use (kernel image,
   * boot structures, rings, the initial process, page tables). */
  uint64_t free_start;
  uint64_t free_end;

  uint64_t kernel_cr3;      /* PML4 with only the upper half populated */
  uint64_t percpu_gpa[QK_MAX_VCPUS]; /* per-vCPU page: GDT, TSS, boot stack top */
  uint64_t boot_stack_top[QK_MAX_VCPUS]; /* kernel VA */

  /* QCall rings: qcall_count rings of struct qk_qcall_ring at qcall_gpa,
   * one per vCPU (ring i belongs to vCPU i). */
  uint64_t qcall_gpa;
  uint32_t qcall_count;
  uint32_t qcall_entries;   /* == QK_QCALL_ENTRIES */

  /* The initial process, loaded by the host's ELF loader. */
  uint64_t init_cr3;        /* its PML4 (upper half shared with kernel_cr3) */
  uint64_t init_entry;      /* user RIP (interpreter's entry if PT_INTERP) */
  uint64_t init_sp;         /* user RSP: argc, argv, envp, auxv */
  uint64_t init_brk;        /* first brk address (page aligned) */
  uint32_t init_uid, init_gid;
  uint32_t init_vma_count;
  uint32_t reserved0;
  struct qk_vma_desc init_vmas[QK_MAX_BOOT_VMAS];
  char init_cwd[256];       /* absolute path inside the rootfs */
  char init_exe[256];       /* absolute path of the executable (AT_EXECFN) */
  char hostname[64];

  /* Guest -> host: written by the guest before QK_PORT_PANIC. */
  char panic_msg[QK_PANIC_MSG_SIZE];

  /* Guest -> host: TSC read by vCPU 0's first kernel instruction (the
   * sandbox's boot-time measurement; 0 until then). */
  uint64_t entry_tsc;
  /* Host -> guest: the page of the initial process's stack that the host
   * populated: [init_stack_populated, init_vmas[stack].end) is mapped; the
   * rest of the stack VMA is not (the guest maps it on demand). */
  uint64_t init_stack_populated;
  /* Host -> guest: PML4 of the kernel worker view (QK_HOST_KERNEL_WORKER):
   * empty lower half; the direct map and the kernel image at their usual
   * addresses but user-accessible. 0 when not built. */
  uint64_t worker_cr3;
  /* Host -> guest: in the worker view, a 32-bit store of a ring index here
   * kicks that ring's host worker like QK_PORT_KICK (an MMIO exit bound to
   * the same eventfd), without a trip through ring 0. 0 when absent. */
  uint64_t worker_kick_va;
  /* Host -> guest: the pod control area (struct qk_ctl_area, qk_ctl.h),
   * page aligned; 0 when the host drives no containers through it (the
   * boot process is then the only one, as with `quark-sandbox run`). */
  uint64_t ctl_gpa;
  /* Host -> guest: security settings of the boot process (guest
   * include/qk/sec.h). sec_filter_gpa: a classic-BPF seccomp program of
   * sec_filter_len 8-byte instructions in pages out of the free range,
   * installed as the process's first filter whatever no_new_privs says;
   * 0: none. sec_caps (with QK_SEC_CAPS): the capability bounding set, and
   * the permitted/effective sets when the process runs as uid 0; without
   * QK_SEC_CAPS uid 0 has every capability. */
  uint64_t sec_filter_gpa;
  uint32_t sec_filter_len;
  uint32_t sec_flags; /* QK_SEC_* */
  uint64_t sec_caps;
  uint32_t sec_ngroups; /* supplementary groups with QK_SEC_GROUPS */
  uint32_t sec_groups[QK_SEC_MAX_GROUPS];
};
#define QK_SEC_CAPS 1u          /* sec_caps is the container's capability set */
#define QK_SEC_NO_NEW_PRIVS 2u  /* no_new_privs set from the start */
#define QK_SEC_GROUPS 4u        /* sec_groups[0..sec_ngroups) */
/* readOnlyRootFilesystem: writes to the host-backed root answer EROFS. */
#define QK_SEC_RO_ROOT 8u
/* The same enforced by the host's read-only mount of the root (its
 * writable bind mounts stay writable); the guest shows it ro in /proc/mounts. */
#define QK_SEC_RO_ROOT_HOST 16u
#define QK_SEC_MAX_FILTER 4096u /* instructions (Linux BPF_MAXINSNS) */
_Static_assert(sizeof(struct qk_boot_info) <= QK_PAGE_SIZE, "boot info fits one page");

#endif
