/* x86-64 boot state (see boot.h). */
#include "boot.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../../guestkernel/abi/qk_qcall.h"
#include "pagetable.h"

#define PAGE 4096ull
#define PAGE_UP(x) (((x) + PAGE - 1) & ~(PAGE - 1))
#define CR4_FSGSBASE (1ull << 16)
#define CR4_OSXSAVE (1ull << 18)
#define CR4_SMEP (1ull << 20)
#define SFMASK_LINUX 0x47700ull /* TF DF IF IOPL NT AC */
#define KERNEL_MAX_SIZE (64ull << 20)

static int bad(q_error **err, const char *what) { return q_error_make(err, ENOEXEC, "bad kernel image: %s", what); }

static bool in_text(const uint8_t *buf, uint64_t va, uint64_t len)
{
  const Elf64_Ehdr *eh = (const void *)buf;
  for (unsigned i = 0; i < eh->e_phnum; i++) {
    const Elf64_Phdr *ph = (const void *)(buf + eh->e_phoff + i * sizeof *ph);
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && !(ph->p_flags & PF_W) && va >= ph->p_vaddr &&
        len <= ph->p_memsz && va - ph->p_vaddr <= ph->p_memsz - len)
      return true;
  }
  return false;
}

int sbx_kernel_check(const uint8_t *buf, size_t len, struct qk_kernel_header *hdr, q_error **err)
{
  if (len < sizeof(Elf64_Ehdr) || (uintptr_t)buf % 8)
    return bad(err, "too short");
  const Elf64_Ehdr *eh = (const void *)buf;
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
      eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64 || eh->e_type != ET_EXEC)
    return bad(err, "not an x86-64 ELF64 executable");
  if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phnum > 32 || eh->e_phoff % 8 ||
      eh->e_phoff > len || (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > len - eh->e_phoff)
    return bad(err, "program headers");
  for (unsigned i = 0; i < eh->e_phnum; i++) {
    const Elf64_Phdr *ph = (const void *)(buf + eh->e_phoff + i * sizeof *ph);
    if (ph->p_type != PT_LOAD)
      continue;
    if (ph->p_vaddr < QK_KERNEL_VBASE || ph->p_memsz > KERNEL_MAX_SIZE ||
        ph->p_vaddr - QK_KERNEL_VBASE > KERNEL_MAX_SIZE - ph->p_memsz || ph->p_filesz > ph->p_memsz ||
        ph->p_offset > len || ph->p_filesz > len - ph->p_offset || (ph->p_vaddr & (PAGE - 1)) ||
        ph->p_paddr != ph->p_vaddr - QK_KERNEL_VBASE + QK_KERNEL_PBASE)
      return bad(err, "PT_LOAD outside the kernel window or not page aligned");
  }
  if (eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shnum == 0 || eh->e_shnum > 4096 || eh->e_shoff % 8 ||
      eh->e_shoff > len || (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > len - eh->e_shoff ||
      eh->e_shstrndx >= eh->e_shnum)
    return bad(err, "section headers");
  const Elf64_Shdr *sh = (const void *)(buf + eh->e_shoff);
  const Elf64_Shdr *strs = &sh[eh->e_shstrndx];
  if (strs->sh_offset > len || strs->sh_size > len - strs->sh_offset)
    return bad(err, "section names");
  const Elf64_Shdr *found = NULL;
  for (unsigned i = 0; i < eh->e_shnum; i++) {
    static const char name[] = ".qk_header";
    if (sh[i].sh_name >= strs->sh_size || strs->sh_size - sh[i].sh_name < sizeof name)
      continue;
    if (!memcmp(buf + strs->sh_offset + sh[i].sh_name, name, sizeof name))
      found = &sh[i];
  }
  if (!found)
    return bad(err, "no .qk_header section");
  if (found->sh_size < sizeof *hdr || found->sh_offset > len || sizeof *hdr > len - found->sh_offset)
    return bad(err, ".qk_header truncated");
  memcpy(hdr, buf + found->sh_offset, sizeof *hdr);
  if (hdr->magic != QK_KERNEL_MAGIC)
    return bad(err, "kernel header magic");
  if (hdr->abi_version != QK_ABI_VERSION)
    return q_error_make(err, ENOEXEC, "kernel ABI version %u, this sandbox speaks %u", hdr->abi_version,
                        QK_ABI_VERSION);
  if (hdr->vector_count != 256 || hdr->vector_stub_stride < 4 || hdr->vector_stub_stride > 64 ||
      !in_text(buf, hdr->vector_stubs, 256ull * hdr->vector_stub_stride))
    return bad(err, "vector stubs");
  if (!in_text(buf, hdr->syscall_entry, 1))
    return bad(err, "syscall entry");
  if (hdr->syscall_user_stub && ((hdr->syscall_user_stub & (PAGE - 1)) || !in_text(buf, hdr->syscall_user_stub, PAGE)))
    return bad(err, "syscall user stub must be a whole page of text");
  if (!in_text(buf, eh->e_entry, 1))
    return bad(err, "entry point");
  return 0;
}

/* Maps the kernel image read-only (our own file, not the container's). */
static int map_file(const char *path, uint8_t **out, size_t *len, q_error **err)
{
  q_cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return q_error_make(err, errno, "open kernel %s", path);
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 64 || st.st_size > (off_t)KERNEL_MAX_SIZE)
    return q_error_make(err, EINVAL, "kernel %s: not a regular file of 64 B..64 MiB", path);
  void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED)
    return q_error_make(err, errno, "mmap kernel %s", path);
  *out = p;
  *len = (size_t)st.st_size;
  return 0;
}

static void idt_gate(uint8_t *idt, unsigned vec, uint64_t off, unsigned dpl, unsigned ist)
{
  uint64_t lo = (off & 0xffff) | ((uint64_t)QK_SEL_KCODE << 16) | ((uint64_t)ist << 32) |
                ((uint64_t)(0x8e | (dpl << 5)) << 40) | (((off >> 16) & 0xffff) << 48);
  uint64_t hi = off >> 32;
  memcpy(idt + vec * 16, &lo, 8);
  memcpy(idt + vec * 16 + 8, &hi, 8);
}

static void write_gdt_tss(uint8_t *page, uint64_t page_va, uint64_t rsp0, uint64_t ist1)
{
  uint64_t gdt[7] = {
      0,
      0x00af9b000000ffffull, /* 0x08 kernel code, 64-bit */
      0x00cf93000000ffffull, /* 0x10 kernel data */
      0x00cff3000000ffffull, /* 0x18 user data */
      0x00affb000000ffffull, /* 0x20 user code, 64-bit */
  };
  uint64_t tss = page_va + QK_PERCPU_TSS_OFF;
  gdt[5] = 0x0000890000000067ull | ((tss & 0xffffff) << 16) | (((tss >> 24) & 0xff) << 56);
  gdt[6] = tss >> 32;
  memcpy(page, gdt, sizeof gdt);
  uint8_t *t = page + QK_PERCPU_TSS_OFF;
  memset(t, 0, 0x68);
  memcpy(t + 4, &rsp0, 8);
  memcpy(t + 36, &ist1, 8);
  uint16_t iomap = 0x68; /* no I/O bitmap: ring 3 port I/O faults */
  memcpy(t + 102, &iomap, 2);
}

static int map_kernel(struct sbx_pt *pt, const uint8_t *buf, const struct qk_kernel_header *hdr, uint64_t extra,
                      q_error **err)
{
  const Elf64_Ehdr *eh = (const void *)buf;
  for (unsigned i = 0; i < eh->e_phnum; i++) {
    const Elf64_Phdr *ph = (const void *)(buf + eh->e_phoff + i * sizeof *ph);
    if (ph->p_type != PT_LOAD || ph->p_memsz == 0)
      continue;
    uint64_t flags = ((ph->p_flags & PF_W) ? SBX_PTE_W : 0) | ((ph->p_flags & PF_X) ? 0 : SBX_PTE_NX);
    for (uint64_t off = 0; off < PAGE_UP(ph->p_memsz); off += PAGE) {
      uint64_t va = ph->p_vaddr + off, f = flags | extra;
      if (hdr->syscall_user_stub && va == hdr->syscall_user_stub)
        f |= SBX_PTE_U; /* the one user-accessible kernel page: read-only, executable */
      int r = sbx_pt_map(pt, va, ph->p_paddr + off, PAGE, f, false);
      if (r < 0)
        return q_error_make(err, -r, "map kernel page %#llx", (unsigned long long)va);
    }
  }
  return 0;
}

static int load_kernel(struct sbx_vm *vm, const struct sbx_boot_config *cfg, const uint8_t *kbuf, size_t klen,
                       unsigned nvcpus, const struct sbx_cpu_features *fp, struct sbx_boot_result *out, q_error **err);

int sbx_boot_prepare(struct sbx_vm *vm, const struct sbx_boot_config *cfg, struct sbx_boot_result *out,
                     q_error **err)
{
  memset(out, 0, sizeof *out);
  unsigned nvcpus = sbx_vm_vcpus(vm);
  struct sbx_cpu_features feat;
  if (sbx_vm_features(vm, &feat, err) < 0)
    return -ENOTSUP;

  uint8_t *kbuf = NULL;
  size_t klen = 0;
  if (map_file(cfg->kernel_path, &kbuf, &klen, err) < 0)
    return -ENOEXEC;
  int r = load_kernel(vm, cfg, kbuf, klen, nvcpus, &feat, out, err);
  munmap(kbuf, klen);
  return r;
}

static int load_kernel(struct sbx_vm *vm, const struct sbx_boot_config *cfg, const uint8_t *kbuf, size_t klen,
                       unsigned nvcpus, const struct sbx_cpu_features *fp, struct sbx_boot_result *out, q_error **err)
{
  struct sbx_mem *mem = sbx_vm_mem(vm);
  struct sbx_cpu_features feat = *fp;
  struct qk_kernel_header hdr;
  if (sbx_kernel_check(kbuf, klen, &hdr, err) < 0)
    return q_error_wrap(err, "%s", cfg->kernel_path);

  /* Copy the image to QK_KERNEL_PBASE. */
  const Elf64_Ehdr *eh = (const void *)kbuf;
  uint64_t kend = QK_KERNEL_PBASE;
  for (unsigned i = 0; i < eh->e_phnum; i++) {
    const Elf64_Phdr *ph = (const void *)(kbuf + eh->e_phoff + i * sizeof *ph);
    if (ph->p_type != PT_LOAD)
      continue;
    uint8_t *dst = sbx_gpa(mem, ph->p_paddr, PAGE_UP(ph->p_memsz));
    if (!dst)
      return q_error_make(err, ENOMEM, "kernel image does not fit in guest memory");
    memcpy(dst, kbuf + ph->p_offset, ph->p_filesz);
    memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
    if (ph->p_paddr + PAGE_UP(ph->p_memsz) > kend)
      kend = ph->p_paddr + PAGE_UP(ph->p_memsz);
  }

  struct sbx_falloc fa = {.mem = mem, .next = kend, .end = mem->size};
  struct sbx_pt kpt;
  int r;
  if (sbx_pt_init(&kpt, mem, &fa) < 0 || sbx_pt_fill_upper(&kpt) < 0)
    return q_error_make(err, ENOMEM, "kernel page tables");
  r = sbx_pt_map(&kpt, QK_DIRECT_MAP, 0, mem->size, SBX_PTE_W | SBX_PTE_NX, true);
  if (r < 0)
    return q_error_make(err, -r, "direct map");
  if (map_kernel(&kpt, kbuf, &hdr, 0, err) < 0)
    return -ENOMEM;
  /* The kernel worker's view: same kernel addresses, user-accessible, no
   * user half (the kernel reaches user memory through page-table walks). */
  uint64_t worker_cr3 = 0;
  if (cfg->kernel_worker) {
    struct sbx_pt wpt;
    if (sbx_pt_init(&wpt, mem, &fa) < 0)
      return q_error_make(err, ENOMEM, "worker page table");
    r = sbx_pt_map(&wpt, QK_DIRECT_MAP, 0, mem->size, SBX_PTE_W | SBX_PTE_NX | SBX_PTE_U, true);
    if (r < 0)
      return q_error_make(err, -r, "worker direct map");
    if (map_kernel(&wpt, kbuf, &hdr, SBX_PTE_U, err) < 0)
      return -ENOMEM;
    /* The kick page: the first guest-physical page past the memslot. */
    r = sbx_pt_map(&wpt, SBX_WORKER_KICK_VA, mem->size, PAGE, SBX_PTE_W | SBX_PTE_NX | SBX_PTE_U, false);
    if (r < 0)
      return q_error_make(err, -r, "worker kick page");
    worker_cr3 = wpt.root;
  }

  /* IDT: every vector to its stub; int3 reachable from ring 3 (the syscall
   * stub's trap); NMI, #DF and #MC on IST1. */
  uint8_t *idt = sbx_gpa(mem, SBX_GPA_IDT, PAGE);
  struct qk_boot_info *bi = sbx_gpa(mem, QK_GPA_BOOTINFO, sizeof *bi);
  if (!idt || !bi || !sbx_gpa(mem, SBX_GPA_PERCPU(0), (uint64_t)nvcpus * PAGE))
    return q_error_make(err, ENOMEM, "boot pages");
  for (unsigned v = 0; v < 256; v++) {
    unsigned ist = (v == 2 || v == 8 || v == 18) ? 1 : 0;
    idt_gate(idt, v, hdr.vector_stubs + (uint64_t)v * hdr.vector_stub_stride, v == 3 ? 3 : 0, ist);
  }
  /* IDTR = SBX_IDT_VA: the IDT page in the kernel's view; in the worker
   * view a copy, whose #BP gate the guest points at the worker's return
   * path (a compare and a branch less per syscall, both emulated here). */
  r = sbx_pt_map(&kpt, SBX_IDT_VA, SBX_GPA_IDT, PAGE, SBX_PTE_W | SBX_PTE_NX, false);
  if (r < 0)
    return q_error_make(err, -r, "IDT mapping");
  if (worker_cr3) {
    struct sbx_pt wpt = {.mem = mem, .fa = &fa, .root = worker_cr3};
    uint64_t widt = sbx_falloc_pages(&fa, 1);
    uint8_t *w = widt ? sbx_gpa(mem, widt, PAGE) : NULL;
    if (!w)
      return q_error_make(err, ENOMEM, "worker IDT");
    memcpy(w, idt, PAGE);
    r = sbx_pt_map(&wpt, SBX_IDT_VA, widt, PAGE, SBX_PTE_W | SBX_PTE_NX, false);
    if (r < 0)
      return q_error_make(err, -r, "worker IDT mapping");
  }

  memset(bi, 0, sizeof *bi);
  for (unsigned i = 0; i < nvcpus; i++) {
    /* One QK_KSTACK_SIZE-aligned region: per-vCPU block, guard page and
     * IST stack at the bottom, the kernel stack above (abi/qk_abi.h). */
    fa.next = (fa.next + QK_KSTACK_SIZE - 1) & ~(uint64_t)(QK_KSTACK_SIZE - 1);
    uint64_t stack = sbx_falloc_pages(&fa, QK_KSTACK_SIZE / PAGE);
    if (!stack)
      return q_error_make(err, ENOMEM, "kernel stacks");
    uint64_t ist_top = QK_DIRECT_MAP + stack + QK_IST_STACK_SIZE;
    uint64_t top = QK_DIRECT_MAP + stack + QK_KSTACK_SIZE;
    uint8_t *page = sbx_gpa(mem, SBX_GPA_PERCPU(i), PAGE);
    if (!page)
      return q_error_make(err, ENOMEM, "per-vCPU page");
    write_gdt_tss(page, QK_DIRECT_MAP + SBX_GPA_PERCPU(i), top, ist_top);
    bi->percpu_gpa[i] = SBX_GPA_PERCPU(i);
    bi->boot_stack_top[i] = top;
  }
  /* Each region's guard page, in both views (the direct map's 2 MiB page
   * around the regions becomes 4 KiB pages: one table per view): a stack
   * that overflows faults there. After the loop: the tables do not break
   * up the regions' alignment. */
  for (unsigned i = 0; i < nvcpus; i++) {
    uint64_t guard = bi->boot_stack_top[i] - QK_KSTACK_SIZE + QK_KSTACK_GUARD_OFF;
    r = sbx_pt_unmap_page(&kpt, guard);
    if (r == 0 && worker_cr3) {
      struct sbx_pt wpt = {.mem = mem, .fa = &fa, .root = worker_cr3};
      r = sbx_pt_unmap_page(&wpt, guard);
    }
    if (r < 0)
      return q_error_make(err, -r, "kernel stack guard page");
  }

  uint64_t ring_bytes = (uint64_t)nvcpus * sizeof(struct qk_qcall_ring);
  uint64_t rings = sbx_falloc_pages(&fa, PAGE_UP(ring_bytes) / PAGE);
  if (!rings)
    return q_error_make(err, ENOMEM, "qcall rings");

  struct sbx_proc_spec spec = cfg->proc;
  spec.hwcap = feat.cpuid1_edx;
  spec.hwcap2 = feat.fsgsbase ? 2 : 0; /* HWCAP2_FSGSBASE: the kernel enables CR4.FSGSBASE */
  struct sbx_proc_image img;
  if (sbx_elf_load_process(mem, &fa, &kpt, cfg->rootfd, &spec, &img, err) < 0)
    return -ENOEXEC;

  bi->magic = QK_BOOT_MAGIC;
  bi->abi_version = QK_ABI_VERSION;
  bi->mem_size = mem->size;
  bi->vcpu_count = nvcpus;
  bi->host_flags = (access("/sys/module/kvm_pvm", F_OK) == 0 ? QK_HOST_RING0_EMULATED : 0) |
                   (worker_cr3 ? QK_HOST_KERNEL_WORKER : 0) | (sbx_vm_has_lapic(vm) ? QK_HOST_LAPIC : 0) |
                   (sbx_vm_has_lapic(vm) && feat.tsc_deadline ? QK_HOST_TSC_DEADLINE : 0);
  /* PVM-style hosts: an interrupt into emulated ring 0 costs more than a
   * port exit, so QCall waits stay in the VMM (QUARK_QCALL_WAIT=irq|port). */
  const char *qw = getenv("QUARK_QCALL_WAIT");
  bool port_wait = qw && *qw ? !strcmp(qw, "port") : (bi->host_flags & QK_HOST_RING0_EMULATED) != 0;
  if (sbx_vm_has_lapic(vm) && port_wait)
    bi->host_flags |= QK_HOST_QCALL_PORT_WAIT;
  /* ... and from the kernel worker as an MMIO store (QUARK_QCALL_MMIO_WAIT=0: a port write) */
  const char *mw = getenv("QUARK_QCALL_MMIO_WAIT");
  if ((bi->host_flags & QK_HOST_QCALL_PORT_WAIT) && worker_cr3 && !(mw && !strcmp(mw, "0")))
    bi->host_flags |= QK_HOST_WORKER_MMIO_WAIT;
  bi->worker_cr3 = worker_cr3;
  bi->worker_kick_va = worker_cr3 ? SBX_WORKER_KICK_VA : 0;
  bi->tsc_khz = feat.tsc_khz;
  struct timespec rt, mono;
  clock_gettime(CLOCK_REALTIME, &rt);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  bi->boot_tsc = sbx_rdtsc();
  bi->boot_realtime_ns = (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec;
  bi->boot_monotonic_ns = (uint64_t)mono.tv_sec * 1000000000u + (uint64_t)mono.tv_nsec;
  bi->kernel_cr3 = kpt.root;
  bi->qcall_gpa = rings;
  bi->qcall_count = nvcpus;
  bi->qcall_entries = QK_QCALL_ENTRIES;
  bi->init_cr3 = img.cr3;
  bi->init_entry = img.entry;
  bi->init_sp = img.sp;
  bi->init_brk = img.brk;
  bi->init_uid = spec.uid;
  bi->init_gid = spec.gid;
  bi->init_vma_count = img.nvmas;
  memcpy(bi->init_vmas, img.vmas, sizeof img.vmas);
  bi->init_stack_populated = img.stack_populated;
  snprintf(bi->init_cwd, sizeof bi->init_cwd, "%s", spec.cwd);
  snprintf(bi->init_exe, sizeof bi->init_exe, "%s", img.exe);
  snprintf(bi->hostname, sizeof bi->hostname, "%s", cfg->hostname ? cfg->hostname : "quark");
  bi->free_start = fa.next;
  bi->free_end = mem->size;

  /* SMEP stays off with the kernel worker: ring-0 entry code then runs from
   * pages that are user-accessible in the worker's view. */
  q_debug(NULL, "host cpu: fsgsbase %d smep %d smap %d xsave %d avx %d tsc %llu kHz; host flags %#x", feat.fsgsbase,
          feat.smep, feat.smap, feat.xsave, feat.avx, (unsigned long long)feat.tsc_khz, bi->host_flags);
  uint64_t cr4 = (feat.fsgsbase ? CR4_FSGSBASE : 0) | (feat.smep && !worker_cr3 ? CR4_SMEP : 0);
  uint64_t xcr0 = 0;
  if (feat.xsave) {
    cr4 |= CR4_OSXSAVE;
    xcr0 = feat.xcr0_supported & (feat.avx ? 0x7 : 0x3); /* x87 | SSE | AVX */
  }
  for (unsigned i = 0; i < nvcpus; i++) {
    struct sbx_vcpu_boot b = {
        .rip = eh->e_entry,
        .rsp = bi->boot_stack_top[i],
        .rdi = QK_DIRECT_MAP + QK_GPA_BOOTINFO,
        .rsi = i,
        .cr3 = kpt.root,
        .cr4_extra = cr4,
        .gdt_base = QK_DIRECT_MAP + SBX_GPA_PERCPU(i),
        .gdt_limit = 7 * 8 - 1,
        .idt_base = SBX_IDT_VA,
        .idt_limit = 256 * 16 - 1,
        .tss_base = QK_DIRECT_MAP + SBX_GPA_PERCPU(i) + QK_PERCPU_TSS_OFF,
        .lstar = hdr.syscall_entry,
        /* sysret: CS = base + 16 = UCODE, SS = base + 8 = UDATA; syscall: KCODE/KDATA */
        .star = ((uint64_t)(QK_SEL_UDATA - 8) << 48) | ((uint64_t)QK_SEL_KCODE << 32),
        .sfmask = SFMASK_LINUX,
        .xcr0 = xcr0,
    };
    if (sbx_vm_setup_vcpu(vm, i, &b, err) < 0)
      return -EIO;
  }
  out->bi = bi;
  out->rings_gpa = rings;
  out->ring_count = nvcpus;
  out->host_alloc_bytes = fa.next;
  out->kick_gpa = worker_cr3 ? mem->size : 0;
  sbx_vm_set_boot_info(vm, bi);
  return 0;
}
