/* Guest memory management: physical pages, kernel objects, user address
 * spaces (VMAs + page tables) and checked access to user memory.
 *
 * Cost model (see ARCHITECTURE.md): ring-0 instructions are expensive on our
 * host, guest page faults more so. New user memory is populated eagerly when
 * it is mapped (plain PTE stores, not-present -> present), 2 MiB pages where a
 * whole aligned granule is mapped; from emulated ring 0 page contents are
 * zeroed and copied by the host (QK_OP_ZERO/QK_OP_COPY); a present PTE is
 * only ever changed through qk_arch_pte_update. */
#ifndef QK_MM_H
#define QK_MM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../abi/qk_abi.h"
#include "../../abi/qk_qcall.h"

/* ---- physical pages (mm/page.c) ---- */

/* Hands [start, end) to the allocator; every page in it is zero (boot
 * contract). Also sizes the per-frame metadata from mem_size. */
void qk_page_init(uint64_t start, uint64_t end, uint64_t mem_size);
/* One page; its contents are zero if zero is true, else undefined.
 * Returns the guest-physical address, or 0 when memory is exhausted. */
uint64_t qk_page_alloc(bool zero);
/* n pages into pas[] (not necessarily contiguous), zeroed if zero is true.
 * All or nothing: returns 0 or -QK_ENOMEM. */
int qk_page_alloc_many(uint64_t *pas, size_t n, bool zero);
/* n physically contiguous pages (kernel objects larger than a page). */
uint64_t qk_page_alloc_contig(size_t n);
/* A 2 MiB-aligned run of 512 pages (2 MiB user pages); *zero says whether
 * it is known to be zero. 0 when no such run is left. */
uint64_t qk_page_alloc_huge(bool *zero);
bool qk_page_huge_available(void);
void qk_page_free_huge(uint64_t pa);
/* Returns a page. Pages outside the allocator's range (the host loaded
 * them: the initial process image) are ignored. */
void qk_page_free(uint64_t pa);
bool qk_page_owned(uint64_t pa);
/* Read-only user frames shared between address spaces (fork): share adds
 * a mapping, qk_page_free drops one and frees the frame with the last. */
void qk_page_share(uint64_t pa);
bool qk_page_shared(uint64_t pa);
/* A private copy of a shared frame for a mapping about to become writable
 * (drops the shared one); pa itself when not shared; 0 if out of memory. */
uint64_t qk_page_unshare(uint64_t pa);
uint64_t qk_page_free_count(void);

/* Memory accounting (page.c): group g = container slot + 1 of a pod VM, 0
 * for everything else (never limited). Frames are charged to the group of
 * the task being served, or to the one set with qk_mem_charge_to (>= 0;
 * -1 ends it; returns the previous setting). Over its limit an allocation
 * fails and qk_mem_oom(group) runs first (the task layer kills the
 * allocating process; weak no-op default). */
#define QK_MEM_GROUPS 65u
int qk_mem_charge_to(int group);
void qk_mem_set_limit(int group, uint64_t bytes); /* 0: no limit */
uint64_t qk_mem_group_bytes(int group);
void qk_mem_oom(int group);
uint64_t qk_page_total_count(void);

/* ---- kernel objects (mm/kmalloc.c) ---- */

/* Small objects come from per-size-class slabs, larger ones from contiguous
 * pages. Memory is not zeroed unless qk_kzalloc. NULL when exhausted. */
void *qk_kmalloc(size_t size);
void *qk_kzalloc(size_t size);
void qk_kfree(void *p);
/* Gives kmalloc's cached free multi-page blocks back to the page
 * allocator (page.c calls it when short of pages or of a run). Returns the
 * number of pages. */
size_t qk_kmalloc_release(void);

/* ---- virtual memory areas (mm/vma.c: pure bookkeeping, no page tables) ---- */

#define QK_VMF_ANON 0x1u    /* anonymous memory */
#define QK_VMF_FILE 0x2u    /* private copy of a file's contents */
#define QK_VMF_SHARED 0x4u  /* MAP_SHARED */
#define QK_VMF_GROWSDOWN 0x8u /* the stack: faults just below extend it */
#define QK_VMF_HEAP 0x10u   /* the brk area */

/* An object whose pages MAP_SHARED areas map (a tmpfs file; a shared
 * anonymous mapping is an unnamed one, as on Linux). Every area holds a
 * reference (get/put); its pages are found again on each fault, so a
 * mapping follows the object's size (ftruncate) and every address space
 * mapping it sees the same frames. page(obj, pgoff, alloc) gives the frame
 * of page pgoff, QK_MM_PAGE_EOF past the end, QK_MM_PAGE_HOLE for a hole
 * when !alloc (with alloc a hole gets a zeroed frame), 0 out of memory. */
struct qk_vmobj_ops {
  uint64_t (*page)(void *obj, uint64_t pgoff, bool alloc);
  void (*get)(void *obj);
  void (*put)(void *obj);
};

struct qk_vma {
  uint64_t start, end; /* page aligned, end exclusive */
  uint32_t prot;       /* L_PROT_* bits (READ/WRITE/EXEC) */
  uint32_t flags;      /* QK_VMF_* */
  struct qk_vma *next; /* sorted by start, non-overlapping */
  const struct qk_vmobj_ops *ops; /* MAP_SHARED object areas, else NULL */
  void *obj;                      /* referenced while the area lives */
  uint64_t pgoff;                 /* object page at start */
};

struct qk_vma_list {
  struct qk_vma *head;
  uint32_t count;
};

/* The area containing addr, or NULL. */
struct qk_vma *qk_vma_find(struct qk_vma_list *l, uint64_t addr);
/* The first area that ends above addr (may start above it), or NULL. */
struct qk_vma *qk_vma_find_after(struct qk_vma_list *l, uint64_t addr);
/* True if some area intersects [start, end). */
bool qk_vma_overlaps(struct qk_vma_list *l, uint64_t start, uint64_t end);
/* Adds an area over [start, end), which must be free; merges with equal
 * neighbours. 0 or -QK_ENOMEM. */
int qk_vma_insert(struct qk_vma_list *l, uint64_t start, uint64_t end, uint32_t prot,
                  uint32_t flags);
/* The same for an area mapping obj from page pgoff (takes a reference;
 * never merged with a neighbour). Splits share the object (one reference
 * each), removal drops the reference. */
int qk_vma_insert_obj(struct qk_vma_list *l, uint64_t start, uint64_t end, uint32_t prot,
                      uint32_t flags, const struct qk_vmobj_ops *ops, void *obj, uint64_t pgoff);
/* Removes [start, end) from every area it touches, splitting them. Calls
 * cb(arg, s, e) for each removed piece before it goes. 0 or -QK_ENOMEM
 * (a split needed memory; nothing changed then). */
int qk_vma_remove(struct qk_vma_list *l, uint64_t start, uint64_t end,
                  void (*cb)(void *arg, const struct qk_vma *piece), void *arg);
/* Sets prot on [start, end), splitting areas. The whole range must be
 * mapped (-QK_ENOMEM otherwise, nothing changed). */
int qk_vma_protect(struct qk_vma_list *l, uint64_t start, uint64_t end, uint32_t prot);
/* Highest free gap of len bytes inside [low, high), or 0. */
uint64_t qk_vma_find_gap(struct qk_vma_list *l, uint64_t len, uint64_t low, uint64_t high);
void qk_vma_clear(struct qk_vma_list *l);

/* ---- address spaces (mm/mm.c, mm/pgtable.c) ---- */

struct qk_mm {
  uint64_t cr3;            /* PML4 guest-physical address */
  struct qk_vma_list vmas;
  uint64_t brk_start, brk; /* heap: [brk_start, align_up(brk)) is mapped */
  uint64_t mmap_top;       /* top-down mmap search starts below this */
  uint64_t stack_limit;    /* lowest address the stack may grow down to */
  uint32_t refs;
  struct qk_mm *dead_next; /* task/sched.c: dead, waiting until no vCPU runs on it */
  struct qk_mm *all_prev, *all_next; /* every address space (qk_mm_obj_truncate) */
};

/* Builds the address space of the initial process from what the host's
 * loader mapped (boot info init_cr3/init_vmas/init_brk). */
struct qk_mm *qk_mm_from_boot(const struct qk_boot_info *bi);

/* mm/mm_fork.c: an empty address space sharing kernel_cr3's kernel half;
 * an eager copy of src (fork; see the file for why not COW); teardown of
 * an address space no vCPU runs on. NULL when out of memory. */
struct qk_mm *qk_mm_new(uint64_t kernel_cr3);
struct qk_mm *qk_mm_dup(struct qk_mm *src, uint64_t kernel_cr3);
void qk_mm_destroy(struct qk_mm *mm);
/* mm/ internal: adds an address space to (or removes it from) the list
 * qk_mm_obj_truncate walks. */
void qk_mm_track(struct qk_mm *mm, bool add);

/* mmap/munmap/mprotect/brk/madvise semantics with Linux's checks; return
 * an address or a negated errno. file_hfd >= 0 for private file mappings
 * (contents read from the host at file_off). */
int64_t qk_mm_map(struct qk_mm *mm, uint64_t addr, uint64_t len, uint32_t prot, uint32_t mflags,
                  int file_hfd, uint64_t file_off);
int64_t qk_mm_unmap(struct qk_mm *mm, uint64_t addr, uint64_t len);
int64_t qk_mm_protect(struct qk_mm *mm, uint64_t addr, uint64_t len, uint32_t prot);
int64_t qk_mm_brk(struct qk_mm *mm, uint64_t addr);
int64_t qk_mm_remap(struct qk_mm *mm, uint64_t old_addr, uint64_t old_len, uint64_t new_len,
                    uint32_t flags, uint64_t new_addr);
int64_t qk_mm_advise(struct qk_mm *mm, uint64_t addr, uint64_t len, int advice);
/* A mapping of an object's pages (tmpfs, memfd, shared anonymous memory;
 * struct qk_vmobj_ops). MAP_SHARED keeps the object in the area and maps
 * its own frames (QK_PTE_SW_SHARED: fork shares them, mprotect keeps them):
 * up to 8 MiB at once, the rest by faults, pages past the object's end
 * stay unmapped (SIGBUS) until it grows. MAP_PRIVATE copies the pages
 * present now (the area keeps no object). MAP_ANONYMOUS in mflags names
 * the area anonymous (/proc maps, 2 MiB alignment). */
#define QK_MM_PAGE_HOLE 1ull
#define QK_MM_PAGE_EOF 2ull
int64_t qk_mm_map_pages(struct qk_mm *mm, uint64_t addr, uint64_t len, uint32_t prot,
                        uint32_t mflags, const struct qk_vmobj_ops *ops, void *obj,
                        uint64_t pgoff);
/* The object shrank to npages: every mapping of its pages from npages on,
 * in every address space, is removed (a later access faults: SIGBUS past
 * the end, the new page after a grow). Call before freeing the pages. */
void qk_mm_obj_truncate(void *obj, uint64_t npages);
/* fs/tmpfs.c: the object of a MAP_SHARED|MAP_ANONYMOUS mapping of size
 * bytes (an unnamed tmpfs file), with one reference for the caller; NULL
 * out of memory. */
void *qk_tmpfs_anon_obj(uint64_t size, const struct qk_vmobj_ops **ops);
/* A user page fault at addr: populates it if an area allows the access.
 * Returns 0 if the access can be retried, -QK_EFAULT otherwise. */
int qk_mm_fault(struct qk_mm *mm, uint64_t addr, bool write, bool exec);
/* True if addr lies in a file or object mapping (a fault there that
 * qk_mm_fault refused is past the end of the file: SIGBUS). */
bool qk_mm_file_hole(struct qk_mm *mm, uint64_t addr);

/* Page-table walk in software through the direct map. Returns the level-1
 * entry for va (a 4 KiB mapping), allocating the tables on the way if
 * alloc; NULL if absent (or no memory). *huge is set to a 2 MiB leaf entry
 * when one maps va (then the return value is NULL). */
volatile uint64_t *qk_pt_lookup(uint64_t cr3, uint64_t va, bool alloc, volatile uint64_t **huge);

/* The level-2 entry (2 MiB granule) for va, allocating the upper tables
 * if alloc; NULL if absent or out of memory. */
volatile uint64_t *qk_pt_pde(uint64_t cr3, uint64_t va, bool alloc);

#define QK_PTE_P 0x1ull
#define QK_PTE_W 0x2ull
#define QK_PTE_U 0x4ull
#define QK_PTE_A 0x20ull
#define QK_PTE_D 0x40ull
#define QK_PTE_PS 0x80ull
#define QK_PTE_SW_NONE 0x200ull /* software: frame kept while PROT_NONE */
#define QK_PTE_SW_SHARED 0x400ull /* software: a MAP_SHARED frame (fork shares it) */
#define QK_PTE_NX (1ull << 63)
#define QK_PTE_ADDR 0x000ffffffffff000ull

/* ---- user memory access (mm/uaccess.c) ----
 * Every user pointer goes through these: below QK_USER_TOP, mapped with the
 * needed permission (populated on demand when an area allows it). Nothing
 * here can fault in the kernel; a bad pointer is -QK_EFAULT. */
int qk_copy_from_user(void *dst, uint64_t uva, size_t n);
int qk_copy_to_user(uint64_t uva, const void *src, size_t n);
/* Copies a NUL-terminated string of at most max-1 bytes; returns its length,
 * -QK_EFAULT, or -QK_ENAMETOOLONG. */
int64_t qk_strncpy_from_user(char *dst, uint64_t uva, size_t max);
/* Guest-physical address of user byte uva for reading or writing. */
int qk_user_pa(uint64_t uva, bool write, uint64_t *pa);
/* Drops the translation cache; required before a page table is freed. */
void qk_uaccess_forget(void);
/* Until the next call, the kernel buffer [kva, kva+len) (kmalloc'd whole
 * pages: qk_user_pa's callers work a page at a time) passes
 * for user memory in every call here, at its own addresses (all at or
 * above QK_USER_TOP: no user address changes meaning); NULL ends it. So a
 * file's rw moves data straight into or out of a pipe's buffer (splice,
 * fs/splice.c). Kernel core only (one lock: qk/smp.h); the caller ends it
 * before it returns. */
void qk_uaccess_kbuf(const void *kva, size_t len);
/* If [uva, uva+n) lies in one page, its guest-physical address (so the host
 * can read/write it directly); else 0. Also 0 for bad pointers. */
uint64_t qk_user_pa_range(uint64_t uva, size_t n, bool write);

/* Scatter list of guest-physical segments for user I/O, filled page by page
 * (adjacent frames merged). */
struct qk_uiov {
  struct qk_iov seg[QK_QCALL_MAX_IOV];
  unsigned n;
  uint64_t bytes;
};
/* Appends [uva, uva+len) to v until v is full; returns the number of bytes
 * appended (may be short: full list or a bad page), or -QK_EFAULT if the
 * first page is bad. */
int64_t qk_uiov_add(struct qk_uiov *v, uint64_t uva, uint64_t len, bool write);

/* Whether kernel code runs at native speed right now: on hardware KVM, and
 * in the CPL3 kernel worker of PVM-style hosts (read from CS: not a
 * privileged instruction). False in emulated ring 0, where bulk copies
 * and zeroing go to the host instead. */
extern bool qk_ring0_emulated; /* boot hint QK_HOST_RING0_EMULATED */
static inline bool qk_kernel_native(void)
{
  uint16_t cs;
  __asm__("mov %%cs, %0" : "=r"(cs));
  return (cs & 3) == 3 || !qk_ring0_emulated;
}

/* Bulk copy/zero between guest-physical ranges: in emulated ring 0 a host
 * QCall for ranges of 512 bytes or more, rep movs/stos otherwise. */
void qk_phys_copy(uint64_t dst_pa, uint64_t src_pa, uint64_t len);
void qk_phys_zero(uint64_t pa, uint64_t len);

#endif
