/* User address spaces: mmap, munmap, mprotect, mremap, brk, madvise and
 * page faults, over the VMA list (vma.c) and the page tables (pgtable.c).
 *
 * Policy: memory is populated when it is mapped, up to QK_EAGER_MAX bytes
 * per request (a guest page fault costs ~50 us on our host, a PTE store ~1
 * us); bigger mappings are populated by faults: a whole untouched 2 MiB
 * granule at once, else QK_FAULT_AROUND pages. Anonymous memory uses 2 MiB
 * pages wherever an aligned granule is mapped whole (one entry to write and
 * to remove instead of 512); mmap aligns anonymous mappings of 2 MiB or more
 * for that. A 2 MiB page is split into 4 KiB entries when part of it is
 * unmapped, reprotected or made PROT_NONE. PROT_NONE pages keep their frame
 * (software bit QK_PTE_SW_NONE) so that mprotect back restores the contents.
 * Private file mappings are read in full at mmap time; pages wholly past
 * the end of the file stay unmapped (SIGBUS). MAP_SHARED areas of in-guest
 * objects (tmpfs files, memfd, shared anonymous memory: an unnamed tmpfs
 * file, as on Linux) keep the object and map its frames, marked
 * QK_PTE_SW_SHARED: fork shares them, faults find them again by offset, and
 * qk_mm_obj_truncate removes them from every address space when the object
 * shrinks (all_mms lists the address spaces for that). Such entries hold
 * no frame reference of their own: the area holds the object, which holds
 * its frames, and a frame leaves the object only after every entry mapping
 * it was removed. So fork copies them and teardown drops them without
 * touching the frame's count (one store each, which matters for big shared
 * areas when ring 0 is emulated). */
#include <qk/arch.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <vdso/vdso.h>

#define QK_EAGER_MAX (8ull << 20)
#define QK_FAULT_AROUND 64
#define QK_STACK_MAX (8ull << 20)
#define QK_MMAP_GAP (128ull << 20)
#define QK_MMAP_LOW 0x10000ull /* mmap_min_addr */

static uint64_t pte_flags(uint32_t prot)
{
  if (!(prot & (L_PROT_READ | L_PROT_WRITE | L_PROT_EXEC)))
    return QK_PTE_SW_NONE;
  uint64_t f = QK_PTE_P | QK_PTE_U;
  if (prot & L_PROT_WRITE)
    f |= QK_PTE_W;
  if (!(prot & L_PROT_EXEC))
    f |= QK_PTE_NX;
  return f;
}

static uint32_t prot_of_kind(uint32_t p)
{
  return (p & QK_PROT_READ ? L_PROT_READ : 0) | (p & QK_PROT_WRITE ? L_PROT_WRITE : 0) |
         (p & QK_PROT_EXEC ? L_PROT_EXEC : 0);
}

/* The boot process's stack word at va (the host built it; 4 KiB pages). */
static volatile uint64_t *boot_word(struct qk_mm *mm, uint64_t va)
{
  volatile uint64_t *pte = qk_pt_lookup(mm->cr3, va, false, NULL);
  if (!pte || !(*pte & QK_PTE_P) || (va & 7))
    return NULL;
  return (volatile uint64_t *)((uint8_t *)qk_pa_to_va(*pte & QK_PTE_ADDR) + (va & 4095));
}

/* The host's loader leaves an AT_IGNORE entry in the boot process's auxv;
 * it becomes AT_SYSINFO_EHDR once the vDSO is mapped. Without the entry
 * (or the memory) the process runs without a vDSO: its libc then makes
 * clock syscalls, as before. */
static void boot_vdso(struct qk_mm *mm, const struct qk_boot_info *bi)
{
  uint64_t va = bi->init_sp;
  volatile uint64_t *w = boot_word(mm, va);
  if (!w || *w > 1000000)
    return;
  va += (*w + 1) * 8; /* argc, argv[], NULL */
  for (unsigned i = 0; i < 100000; i++, va += 8) { /* envp[], NULL */
    w = boot_word(mm, va);
    if (!w)
      return;
    if (!*w)
      break;
  }
  for (unsigned i = 0; i < 64; i++) {
    va += 8 + (i ? 8 : 0);
    w = boot_word(mm, va);
    if (!w || !*w)
      return;
    if (*w == 1 /* AT_IGNORE */) {
      volatile uint64_t *val = boot_word(mm, va + 8);
      int64_t base = val ? qk_vdso_map(mm) : -1;
      if (base > 0) {
        *val = (uint64_t)base;
        *w = 33; /* AT_SYSINFO_EHDR */
      }
      return;
    }
  }
}

static struct qk_mm *all_mms;

void qk_mm_track(struct qk_mm *mm, bool add)
{
  if (add) {
    mm->all_prev = NULL;
    mm->all_next = all_mms;
    if (all_mms)
      all_mms->all_prev = mm;
    all_mms = mm;
    return;
  }
  if (mm->all_prev)
    mm->all_prev->all_next = mm->all_next;
  else if (all_mms == mm)
    all_mms = mm->all_next;
  if (mm->all_next)
    mm->all_next->all_prev = mm->all_prev;
  mm->all_prev = mm->all_next = NULL;
}

struct qk_mm *qk_mm_from_boot(const struct qk_boot_info *bi)
{
  struct qk_mm *mm = qk_kzalloc(sizeof(*mm));
  if (!mm)
    return NULL;
  mm->cr3 = bi->init_cr3;
  mm->refs = 1;
  mm->brk_start = mm->brk = bi->init_brk;
  uint64_t stack_lo = QK_USER_TOP;
  uint32_t n = bi->init_vma_count < QK_MAX_BOOT_VMAS ? bi->init_vma_count : QK_MAX_BOOT_VMAS;
  for (uint32_t i = 0; i < n; i++) {
    const struct qk_vma_desc *d = &bi->init_vmas[i];
    if (d->end <= d->start || d->end > QK_USER_TOP)
      continue;
    uint32_t flags = QK_VMF_ANON;
    if (d->kind == QK_VMA_STACK) {
      flags |= QK_VMF_GROWSDOWN;
      stack_lo = d->start;
    } else if (d->kind == QK_VMA_HEAP) {
      flags |= QK_VMF_HEAP;
    }
    if (qk_vma_overlaps(&mm->vmas, d->start, d->end))
      continue;
    if (qk_vma_insert(&mm->vmas, d->start, d->end, prot_of_kind(d->prot), flags))
      return NULL;
  }
  mm->stack_limit = stack_lo > QK_STACK_MAX ? stack_lo - QK_STACK_MAX : 0;
  mm->mmap_top = stack_lo > QK_MMAP_GAP + (1ull << 32) ? stack_lo - QK_MMAP_GAP : QK_USER_TOP / 2;
  boot_vdso(mm, bi);
  qk_mm_track(mm, true);
  return mm;
}

/* Maps the not-yet-mapped pages of [start, end) with fresh zeroed frames;
 * with file_hfd >= 0 fills them from the file at file_off (offset of start).
 * Pages already mapped are left alone. 0 or -QK_ENOMEM. */
#define POP_STACK 32u /* pages per batch on the stack (~1.5 KiB of it) */
#define POP_HEAP 512u /* pages per batch of a big file mapping (one 2 MiB run) */

static int populate(struct qk_mm *mm, uint64_t start, uint64_t end, uint32_t prot, int file_hfd,
                    uint64_t file_off)
{
  uint64_t flags = pte_flags(prot);
  /* Batches of 32 pages keep the kernel stack footprint near 1.5 KiB. A
   * file mapping of more (a program's text at exec) takes a heap batch of
   * 512 pages whose frames, contiguous where the allocator gives them so,
   * go to the host as one segment each: busybox's 1.9 MiB in 2 PREADVs
   * instead of 17 (each a QCall round trip: ~10 VM exits here). */
  uint64_t s_pas[POP_STACK], s_vas[POP_STACK];
  volatile uint64_t *s_ptes[POP_STACK];
  struct qk_iov s_iov[POP_STACK];
  uint64_t *pas = s_pas, *vas = s_vas;
  volatile uint64_t **ptes = s_ptes;
  struct qk_iov *iov = s_iov;
  unsigned cap = POP_STACK, max_iov = POP_STACK;
  void *heap = NULL;
  if (file_hfd >= 0 && end - start > POP_STACK * QK_PAGE_SIZE &&
      (heap = qk_kmalloc(POP_HEAP * 3 * sizeof(uint64_t) +
                         QK_QCALL_MAX_IOV * sizeof(struct qk_iov)))) {
    pas = heap;
    vas = pas + POP_HEAP;
    ptes = (volatile uint64_t **)(vas + POP_HEAP);
    iov = (struct qk_iov *)(ptes + POP_HEAP);
    cap = POP_HEAP;
    max_iov = QK_QCALL_MAX_IOV;
  }
  int ret = 0;
  uint64_t va = start;
  bool anon = file_hfd < 0 && (flags & QK_PTE_P);
  while (va < end) {
    /* A whole empty 2 MiB granule of anonymous memory: one 2 MiB page,
     * one entry instead of 512 (ring-0 stores are what costs here). */
    if (anon && !(va & (QK_HUGE_PAGE_SIZE - 1)) && end - va >= QK_HUGE_PAGE_SIZE) {
      volatile uint64_t *pde = qk_pt_pde(mm->cr3, va, true);
      if (!pde) {
        ret = -QK_ENOMEM;
        goto out;
      }
      if (!*pde) {
        bool zero;
        uint64_t pa = qk_page_alloc_huge(&zero);
        if (pa) {
          if (!zero)
            qk_phys_zero(pa, QK_HUGE_PAGE_SIZE);
          *pde = pa | flags | QK_PTE_PS; /* not present -> present */
          va += QK_HUGE_PAGE_SIZE;
          continue;
        }
      }
    }
    /* Collect up to 32 empty slots. */
    unsigned n = 0;
    volatile uint64_t *l1 = NULL;
    for (; va < end && n < cap; va += QK_PAGE_SIZE) {
      if (n && anon && !(va & (QK_HUGE_PAGE_SIZE - 1)) && end - va >= QK_HUGE_PAGE_SIZE)
        break; /* the next granule may take a 2 MiB page */
      if (!l1 || !(va & (QK_HUGE_PAGE_SIZE - 1))) {
        l1 = qk_pt_lookup(mm->cr3, va, true, NULL);
        if (!l1) {
          ret = -QK_ENOMEM;
          goto out;
        }
        l1 -= (va >> 12) & 511;
      }
      volatile uint64_t *pte = &l1[(va >> 12) & 511];
      if (*pte & (QK_PTE_P | QK_PTE_SW_NONE))
        continue;
      ptes[n] = pte;
      vas[n] = va;
      n++;
    }
    if (!n)
      break;
    if (qk_page_alloc_many(pas, n, true)) {
      ret = -QK_ENOMEM;
      goto out;
    }
    if (file_hfd >= 0) {
      /* Read file contents straight into the new frames (one request per
       * run of virtually contiguous pages, physically contiguous frames in
       * one segment); past EOF they stay zero. */
      unsigned i = 0;
      while (i < n) {
        unsigned j = i, ni = 0;
        do {
          if (ni && iov[ni - 1].gpa + iov[ni - 1].len == pas[j]) {
            iov[ni - 1].len += QK_PAGE_SIZE;
          } else {
            if (ni == max_iov)
              break;
            iov[ni].gpa = pas[j];
            iov[ni].len = QK_PAGE_SIZE;
            ni++;
          }
          j++;
        } while (j < n && vas[j] == vas[j - 1] + QK_PAGE_SIZE);
        int64_t r = qk_qcall(QK_OP_PREADV, (uint64_t)file_hfd, qk_va_to_pa(iov), ni,
                             file_off + (vas[i] - start), 0, 0);
        if (r < 0) {
          for (unsigned k = 0; k < n; k++)
            qk_page_free(pas[k]);
          ret = (int)r;
          goto out;
        }
        /* Pages wholly past the end of the file stay unmapped: touching
         * them is SIGBUS, as on Linux. */
        for (unsigned k = i + (unsigned)((r + QK_PAGE_SIZE - 1) / QK_PAGE_SIZE); k < j; k++) {
          qk_page_free(pas[k]);
          pas[k] = 0;
        }
        i = j;
      }
    }
    for (unsigned i = 0; i < n; i++)
      if (pas[i])
        *ptes[i] = pas[i] | flags; /* not present -> present: a plain store */
  }
out:
  qk_kfree(heap);
  return ret;
}

/* Maps the object's frames into the empty slots of [start, end) of object
 * area v (holes get a zeroed frame), up to the object's end. 0,
 * -QK_ENOMEM, or -QK_EFAULT when start itself lies past the end. */
static int obj_populate(struct qk_mm *mm, const struct qk_vma *v, uint64_t start, uint64_t end)
{
  uint64_t flags = pte_flags(v->prot) | QK_PTE_SW_SHARED;
  volatile uint64_t *l1 = NULL;
  for (uint64_t va = start; va < end; va += QK_PAGE_SIZE) {
    if (!l1 || !(va & (QK_HUGE_PAGE_SIZE - 1))) {
      l1 = qk_pt_lookup(mm->cr3, va, true, NULL);
      if (!l1)
        return -QK_ENOMEM;
      l1 -= (va >> 12) & 511;
    }
    volatile uint64_t *pte = &l1[(va >> 12) & 511];
    if (*pte & (QK_PTE_P | QK_PTE_SW_NONE))
      continue;
    uint64_t pa = v->ops->page(v->obj, v->pgoff + (va - v->start) / QK_PAGE_SIZE, true);
    if (pa == QK_MM_PAGE_EOF)
      return va == start ? -QK_EFAULT : 0; /* the rest: SIGBUS until it grows */
    if (!pa || pa == QK_MM_PAGE_HOLE)
      return -QK_ENOMEM;
    *pte = pa | flags; /* not present -> present; the area's object holds the frame */
  }
  return 0;
}

/* Populates [start, end), inside one area, as a new mapping of that area
 * is: anonymous memory, the object's pages; file copies are not read again. */
static int fill(struct qk_mm *mm, uint64_t start, uint64_t end)
{
  struct qk_vma *v = qk_vma_find(&mm->vmas, start);
  if (!v || !v->prot)
    return 0;
  if (v->obj) {
    int r = obj_populate(mm, v, start, end);
    return r == -QK_EFAULT ? 0 : r;
  }
  if (v->flags & QK_VMF_FILE)
    return 0;
  return populate(mm, start, end, v->prot, -1, 0);
}

/* Unmaps every page of a VMA piece and frees its frames. */
static void unmap_piece(void *arg, const struct qk_vma *piece)
{
  struct qk_mm *mm = arg;
  uint64_t va = piece->start;
  while (va < piece->end) {
    if (!(va & (QK_HUGE_PAGE_SIZE - 1)) && piece->end - va >= QK_HUGE_PAGE_SIZE) {
      /* A whole granule mapped by a table of 4 KiB entries: detach the
       * table with one entry update (one ring-0 service call in the CPL3
       * worker instead of 512), then free its frames and the table. */
      volatile uint64_t *pde = qk_pt_pde(mm->cr3, va, false);
      uint64_t d = pde ? *pde : 0;
      if ((d & QK_PTE_P) && !(d & QK_PTE_PS)) {
        qk_arch_pte_update(pde, 0, va);
        qk_arch_flush_tlb();
        qk_uaccess_forget();
        volatile uint64_t *t = qk_pa_to_va(d & QK_PTE_ADDR);
        for (unsigned i = 0; i < 512; i++)
          if (t[i] && !(t[i] & QK_PTE_SW_SHARED))
            qk_page_free(t[i] & QK_PTE_ADDR);
        qk_page_free(d & QK_PTE_ADDR);
        va += QK_HUGE_PAGE_SIZE;
        continue;
      }
    }
    volatile uint64_t *huge;
    volatile uint64_t *l1 = qk_pt_lookup(mm->cr3, va, false, &huge);
    if (!l1 && huge) {
      uint64_t e = *huge;
      if (!(va & (QK_HUGE_PAGE_SIZE - 1)) && piece->end - va >= QK_HUGE_PAGE_SIZE) {
        qk_arch_pte_update(huge, 0, va);
        qk_page_free_huge(e & QK_PTE_ADDR & ~(QK_HUGE_PAGE_SIZE - 1));
        va += QK_HUGE_PAGE_SIZE;
        continue;
      }
      /* Part of a 2 MiB page: split it so the rest stays mapped. */
      l1 = qk_pt_lookup(mm->cr3, va, true, NULL);
    }
    uint64_t region_end = QK_ALIGN_DOWN(va, QK_HUGE_PAGE_SIZE) + QK_HUGE_PAGE_SIZE;
    if (region_end > piece->end)
      region_end = piece->end;
    if (!l1) {
      va = region_end;
      continue;
    }
    for (; va < region_end; va += QK_PAGE_SIZE, l1++) {
      uint64_t e = *l1;
      if (!e)
        continue;
      if (e & QK_PTE_P)
        qk_arch_pte_update(l1, 0, va);
      else
        *l1 = 0;
      if (!(e & QK_PTE_SW_SHARED))
        qk_page_free(e & QK_PTE_ADDR);
    }
  }
}

/* Changes the PTE flags of the mapped pages of [start, end). */
static void reprotect(struct qk_mm *mm, uint64_t start, uint64_t end, uint32_t prot)
{
  uint64_t flags = pte_flags(prot);
  uint64_t va = start;
  while (va < end) {
    volatile uint64_t *huge;
    volatile uint64_t *l1 = qk_pt_lookup(mm->cr3, va, false, &huge);
    if (!l1 && huge) {
      /* A whole 2 MiB page keeps its size unless it becomes PROT_NONE
       * (kept frames are tracked per 4 KiB entry). */
      if ((flags & QK_PTE_P) && !(va & (QK_HUGE_PAGE_SIZE - 1)) && end - va >= QK_HUGE_PAGE_SIZE) {
        uint64_t e = *huge;
        uint64_t ne = (e & QK_PTE_ADDR & ~(QK_HUGE_PAGE_SIZE - 1)) | flags | QK_PTE_PS;
        if (ne != e)
          qk_arch_pte_update(huge, ne, va);
        va += QK_HUGE_PAGE_SIZE;
        continue;
      }
      l1 = qk_pt_lookup(mm->cr3, va, true, NULL);
    }
    uint64_t region_end = QK_ALIGN_DOWN(va, QK_HUGE_PAGE_SIZE) + QK_HUGE_PAGE_SIZE;
    if (region_end > end)
      region_end = end;
    if (!l1) {
      va = region_end;
      continue;
    }
    for (; va < region_end; va += QK_PAGE_SIZE, l1++) {
      uint64_t e = *l1;
      if (!e)
        continue;
      uint64_t ne = (e & QK_PTE_ADDR) | flags | (e & QK_PTE_SW_SHARED);
      if (ne == e)
        continue;
      if ((ne & QK_PTE_W) && !(e & QK_PTE_SW_SHARED) && qk_page_shared(e & QK_PTE_ADDR)) {
        /* Shared by fork while read-only: writable needs its own copy.
         * Out of memory, the page stays read-only (a later write faults). */
        uint64_t np = qk_page_unshare(e & QK_PTE_ADDR);
        if (!np)
          ne &= ~QK_PTE_W;
        else
          ne = np | flags;
      }
      if (e & QK_PTE_P)
        qk_arch_pte_update(l1, ne, va);
      else
        *l1 = ne;
    }
  }
}

static bool range_ok(uint64_t addr, uint64_t len)
{
  return addr < QK_USER_TOP && len <= QK_USER_TOP - addr;
}

/* mmap's checks and placement; inserts the area (kind QK_VMF_ANON or
 * QK_VMF_FILE; obj for an object area). Returns its address. */
static int64_t map_area(struct qk_mm *mm, uint64_t addr, uint64_t len, uint32_t prot,
                        uint32_t mflags, uint32_t kind, const struct qk_vmobj_ops *ops, void *obj,
                        uint64_t pgoff)
{
  if (!len)
    return -QK_EINVAL;
  if (len > QK_USER_TOP)
    return -QK_ENOMEM;
  len = QK_ALIGN_UP(len, QK_PAGE_SIZE);
  if (prot & ~(uint32_t)(L_PROT_READ | L_PROT_WRITE | L_PROT_EXEC))
    return -QK_EINVAL;
  /* Linux's heuristic overcommit: a private writable mapping bigger than
   * all of memory cannot be backed, refuse it now. */
  if ((prot & L_PROT_WRITE) && (mflags & L_MAP_TYPE) == L_MAP_PRIVATE &&
      !(mflags & L_MAP_NORESERVE) && len / QK_PAGE_SIZE > qk_page_total_count())
    return -QK_ENOMEM;
  bool fixed = mflags & (L_MAP_FIXED | L_MAP_FIXED_NOREPLACE);
  if (fixed) {
    if (addr & (QK_PAGE_SIZE - 1))
      return -QK_EINVAL;
    if (!range_ok(addr, len) || addr < QK_MMAP_LOW)
      return -QK_ENOMEM;
    if (qk_vma_overlaps(&mm->vmas, addr, addr + len)) {
      if (mflags & L_MAP_FIXED_NOREPLACE)
        return -QK_EEXIST;
      if (qk_vma_remove(&mm->vmas, addr, addr + len, unmap_piece, mm))
        return -QK_ENOMEM;
    }
  } else {
    addr = QK_ALIGN_DOWN(addr, QK_PAGE_SIZE);
    if (!addr || addr < QK_MMAP_LOW || !range_ok(addr, len) ||
        qk_vma_overlaps(&mm->vmas, addr, addr + len)) {
      if (mflags & L_MAP_32BIT) {
        addr = qk_vma_find_gap(&mm->vmas, len, 0x40000000ull, 0x80000000ull);
      } else {
        addr = 0;
        /* Anonymous memory of 2 MiB or more starts on a 2 MiB boundary so
         * that it can use 2 MiB pages (as Linux aligns it for THP). */
        if (kind == QK_VMF_ANON && !obj && len >= QK_HUGE_PAGE_SIZE) {
          uint64_t gap = qk_vma_find_gap(&mm->vmas, len + QK_HUGE_PAGE_SIZE, QK_MMAP_LOW, mm->mmap_top);
          if (gap)
            addr = QK_ALIGN_DOWN(gap + QK_HUGE_PAGE_SIZE, QK_HUGE_PAGE_SIZE);
        }
        if (!addr)
          addr = qk_vma_find_gap(&mm->vmas, len, QK_MMAP_LOW, mm->mmap_top);
      }
      if (!addr)
        return -QK_ENOMEM;
    }
  }
  uint32_t vflags = kind;
  if ((mflags & L_MAP_TYPE) != L_MAP_PRIVATE)
    vflags |= QK_VMF_SHARED;
  if (qk_vma_insert_obj(&mm->vmas, addr, addr + len, prot, vflags, ops, obj, pgoff))
    return -QK_ENOMEM;
  return (int64_t)addr;
}

int64_t qk_mm_map(struct qk_mm *mm, uint64_t addr, uint64_t len, uint32_t prot, uint32_t mflags,
                  int file_hfd, uint64_t file_off)
{
  if (file_hfd < 0 && (mflags & L_MAP_TYPE) != L_MAP_PRIVATE) {
    /* Shared anonymous memory is an unnamed tmpfs object, so that fork
     * shares it and faults in any process find the same pages. */
    if (!len)
      return -QK_EINVAL;
    if (len > QK_USER_TOP)
      return -QK_ENOMEM;
    const struct qk_vmobj_ops *ops;
    void *obj = qk_tmpfs_anon_obj(QK_ALIGN_UP(len, QK_PAGE_SIZE), &ops);
    if (!obj)
      return -QK_ENOMEM;
    int64_t r = qk_mm_map_pages(mm, addr, len, prot, mflags | L_MAP_ANONYMOUS, ops, obj, 0);
    ops->put(obj); /* the areas hold it now */
    return r;
  }
  int64_t a = map_area(mm, addr, len, prot, mflags, file_hfd >= 0 ? QK_VMF_FILE : QK_VMF_ANON,
                       NULL, NULL, 0);
  if (a < 0)
    return a;
  addr = (uint64_t)a;
  len = QK_ALIGN_UP(len, QK_PAGE_SIZE);
  /* File contents can only come in now (the area keeps no file); anonymous
   * memory above the eager limit comes by faults. */
  bool eager = (mflags & L_MAP_POPULATE) || file_hfd >= 0 ||
               (len <= QK_EAGER_MAX && !(mflags & L_MAP_NORESERVE));
  if (eager && (prot || file_hfd >= 0)) {
    int r = populate(mm, addr, addr + len, prot, file_hfd, file_off);
    if (r) {
      qk_vma_remove(&mm->vmas, addr, addr + len, unmap_piece, mm);
      return r;
    }
  }
  return (int64_t)addr;
}

int64_t qk_mm_map_pages(struct qk_mm *mm, uint64_t addr, uint64_t len, uint32_t prot,
                        uint32_t mflags, const struct qk_vmobj_ops *ops, void *obj,
                        uint64_t pgoff)
{
  bool shared = (mflags & L_MAP_TYPE) != L_MAP_PRIVATE;
  int64_t a = map_area(mm, addr, len, prot, mflags,
                       (mflags & L_MAP_ANONYMOUS) ? QK_VMF_ANON : QK_VMF_FILE,
                       shared ? ops : NULL, shared ? obj : NULL, pgoff);
  if (a < 0)
    return a;
  len = QK_ALIGN_UP(len, QK_PAGE_SIZE);
  if (shared) {
    /* The first 8 MiB now (a fault costs ~50 us here), the rest on demand. */
    uint64_t end = (uint64_t)a + (len < QK_EAGER_MAX ? len : QK_EAGER_MAX);
    if (fill(mm, (uint64_t)a, end)) {
      qk_vma_remove(&mm->vmas, (uint64_t)a, (uint64_t)a + len, unmap_piece, mm);
      return -QK_ENOMEM;
    }
    return a;
  }
  uint64_t flags = pte_flags(prot);
  for (uint64_t off = 0; off < len; off += QK_PAGE_SIZE) {
    uint64_t pa = ops->page(obj, pgoff + off / QK_PAGE_SIZE, false);
    if (pa == QK_MM_PAGE_EOF)
      break; /* past the end of the file: SIGBUS there */
    uint64_t frame = 0;
    if (pa) {
      frame = qk_page_alloc(pa == QK_MM_PAGE_HOLE);
      if (frame && pa != QK_MM_PAGE_HOLE)
        qk_phys_copy(frame, pa, QK_PAGE_SIZE);
    }
    volatile uint64_t *pte = frame ? qk_pt_lookup(mm->cr3, (uint64_t)a + off, true, NULL) : NULL;
    if (!pte) {
      if (frame)
        qk_page_free(frame);
      qk_vma_remove(&mm->vmas, (uint64_t)a, (uint64_t)a + len, unmap_piece, mm);
      return -QK_ENOMEM;
    }
    *pte = frame | flags; /* not present -> present */
  }
  return a;
}

int64_t qk_mm_unmap(struct qk_mm *mm, uint64_t addr, uint64_t len)
{
  if ((addr & (QK_PAGE_SIZE - 1)) || !len)
    return -QK_EINVAL;
  len = QK_ALIGN_UP(len, QK_PAGE_SIZE);
  if (!range_ok(addr, len))
    return -QK_EINVAL;
  return qk_vma_remove(&mm->vmas, addr, addr + len, unmap_piece, mm);
}

int64_t qk_mm_protect(struct qk_mm *mm, uint64_t addr, uint64_t len, uint32_t prot)
{
  prot &= ~(uint32_t)(L_PROT_GROWSDOWN | L_PROT_GROWSUP);
  if ((addr & (QK_PAGE_SIZE - 1)) || (prot & ~(uint32_t)7))
    return -QK_EINVAL;
  if (!len)
    return 0;
  if (len > QK_USER_TOP)
    return -QK_ENOMEM;
  len = QK_ALIGN_UP(len, QK_PAGE_SIZE);
  if (!range_ok(addr, len))
    return -QK_ENOMEM;
  int r = qk_vma_protect(&mm->vmas, addr, addr + len, prot);
  if (r)
    return r;
  reprotect(mm, addr, addr + len, prot);
  /* Memory reserved PROT_NONE and opened up now (malloc arenas, guard
   * pages moved) is populated like a fresh mapping. */
  if (prot && len <= QK_EAGER_MAX) {
    for (uint64_t va = addr; va < addr + len;) {
      struct qk_vma *v = qk_vma_find(&mm->vmas, va);
      uint64_t e = v->end < addr + len ? v->end : addr + len;
      if (fill(mm, va, e))
        return -QK_ENOMEM;
      va = e;
    }
  }
  return 0;
}

int64_t qk_mm_brk(struct qk_mm *mm, uint64_t addr)
{
  if (addr < mm->brk_start || addr >= QK_USER_TOP)
    return (int64_t)mm->brk;
  uint64_t old_end = QK_ALIGN_UP(mm->brk, QK_PAGE_SIZE);
  uint64_t new_end = QK_ALIGN_UP(addr, QK_PAGE_SIZE);
  if (new_end > old_end) {
    if (new_end - mm->brk_start > (1ull << 36) ||
        qk_vma_overlaps(&mm->vmas, old_end, new_end))
      return (int64_t)mm->brk;
    if (qk_vma_insert(&mm->vmas, old_end, new_end, L_PROT_READ | L_PROT_WRITE,
                      QK_VMF_ANON | QK_VMF_HEAP))
      return (int64_t)mm->brk;
    if (populate(mm, old_end, new_end, L_PROT_READ | L_PROT_WRITE, -1, 0)) {
      qk_vma_remove(&mm->vmas, old_end, new_end, unmap_piece, mm);
      return (int64_t)mm->brk;
    }
  } else if (new_end < old_end) {
    if (qk_vma_remove(&mm->vmas, new_end, old_end, unmap_piece, mm))
      return (int64_t)mm->brk;
  }
  mm->brk = addr;
  return (int64_t)addr;
}

#define L_MREMAP_MAYMOVE 1u
#define L_MREMAP_FIXED 2u
#define L_MREMAP_DONTUNMAP 4u

/* Moves the mapped pages of [from, from+len) to [to, to+len): the PTEs
 * move, the frames and their contents stay. The destination is empty. */
static int move_ptes(struct qk_mm *mm, uint64_t from, uint64_t to, uint64_t len)
{
  for (uint64_t off = 0; off < len; off += QK_PAGE_SIZE) {
    volatile uint64_t *huge;
    volatile uint64_t *src = qk_pt_lookup(mm->cr3, from + off, false, &huge);
    if (!src && huge)
      src = qk_pt_lookup(mm->cr3, from + off, true, NULL);
    if (!src || !*src)
      continue;
    volatile uint64_t *dst = qk_pt_lookup(mm->cr3, to + off, true, NULL);
    if (!dst)
      return -QK_ENOMEM;
    uint64_t e = *src;
    *dst = e; /* not present -> present */
    if (e & QK_PTE_P)
      qk_arch_pte_update(src, 0, from + off);
    else
      *src = 0;
  }
  return 0;
}

int64_t qk_mm_remap(struct qk_mm *mm, uint64_t old_addr, uint64_t old_len, uint64_t new_len,
                    uint32_t flags, uint64_t new_addr)
{
  if (flags & ~(L_MREMAP_MAYMOVE | L_MREMAP_FIXED | L_MREMAP_DONTUNMAP))
    return -QK_EINVAL;
  if ((flags & L_MREMAP_FIXED) && !(flags & L_MREMAP_MAYMOVE))
    return -QK_EINVAL;
  bool dontunmap = flags & L_MREMAP_DONTUNMAP;
  if (dontunmap && !(flags & L_MREMAP_MAYMOVE))
    return -QK_EINVAL;
  if ((old_addr & (QK_PAGE_SIZE - 1)) || !new_len || !old_len)
    return -QK_EINVAL;
  if (old_len > QK_USER_TOP || new_len > QK_USER_TOP)
    return -QK_ENOMEM;
  old_len = QK_ALIGN_UP(old_len, QK_PAGE_SIZE);
  new_len = QK_ALIGN_UP(new_len, QK_PAGE_SIZE);
  /* DONTUNMAP is always a move of the same size (in pages, as Linux 6.18
   * compares them). */
  if (dontunmap && old_len != new_len)
    return -QK_EINVAL;
  if (!range_ok(old_addr, old_len))
    return -QK_EFAULT;
  struct qk_vma *v = qk_vma_find(&mm->vmas, old_addr);
  if (!v || old_addr + old_len > v->end)
    return -QK_EFAULT; /* the old range must lie in one mapping */
  uint32_t prot = v->prot, vflags = v->flags;
  const struct qk_vmobj_ops *ops = v->ops;
  void *obj = v->obj; /* object areas: the pages follow by offset */
  uint64_t pgoff = v->pgoff + (old_addr - v->start) / QK_PAGE_SIZE;
  bool file = (vflags & QK_VMF_FILE) && !obj;
  /* DONTUNMAP: private anonymous memory only (Linux before 5.13). */
  if (dontunmap && (obj || (vflags & (QK_VMF_FILE | QK_VMF_SHARED)) || !(vflags & QK_VMF_ANON)))
    return -QK_EINVAL;

  if (flags & L_MREMAP_FIXED) {
    if ((new_addr & (QK_PAGE_SIZE - 1)) || !range_ok(new_addr, new_len) || new_addr < QK_MMAP_LOW)
      return -QK_EINVAL;
    if (new_addr < old_addr + old_len && old_addr < new_addr + new_len)
      return -QK_EINVAL;
  } else if (dontunmap) {
    new_addr = qk_vma_find_gap(&mm->vmas, new_len, QK_MMAP_LOW, mm->mmap_top);
    if (!new_addr)
      return -QK_ENOMEM;
  } else if (new_len <= old_len) {
    if (new_len < old_len &&
        qk_vma_remove(&mm->vmas, old_addr + new_len, old_addr + old_len, unmap_piece, mm))
      return -QK_ENOMEM;
    return (int64_t)old_addr;
  } else if (!file && range_ok(old_addr, new_len) &&
             !qk_vma_overlaps(&mm->vmas, old_addr + old_len, old_addr + new_len)) {
    /* Grow in place. */
    if (qk_vma_insert_obj(&mm->vmas, old_addr + old_len, old_addr + new_len, prot, vflags, ops,
                          obj, pgoff + old_len / QK_PAGE_SIZE))
      return -QK_ENOMEM;
    if (new_len - old_len <= QK_EAGER_MAX &&
        fill(mm, old_addr + old_len, old_addr + new_len)) {
      qk_vma_remove(&mm->vmas, old_addr + old_len, old_addr + new_len, unmap_piece, mm);
      return -QK_ENOMEM;
    }
    return (int64_t)old_addr;
  } else if (!(flags & L_MREMAP_MAYMOVE)) {
    return -QK_ENOMEM;
  } else {
    new_addr = qk_vma_find_gap(&mm->vmas, new_len, QK_MMAP_LOW, mm->mmap_top);
    if (!new_addr)
      return -QK_ENOMEM;
  }
  if (file && new_len > old_len)
    return -QK_ENOMEM; /* file contents are read at mmap time only */
  /* Move: new area, PTEs over, old area gone (frames not freed). */
  if ((flags & L_MREMAP_FIXED) &&
      qk_vma_remove(&mm->vmas, new_addr, new_addr + new_len, unmap_piece, mm))
    return -QK_ENOMEM;
  if (qk_vma_insert_obj(&mm->vmas, new_addr, new_addr + new_len, prot, vflags, ops, obj, pgoff))
    return -QK_ENOMEM;
  uint64_t keep = old_len < new_len ? old_len : new_len;
  if (move_ptes(mm, old_addr, new_addr, keep)) {
    move_ptes(mm, new_addr, old_addr, keep);
    qk_vma_remove(&mm->vmas, new_addr, new_addr + new_len, unmap_piece, mm);
    return -QK_ENOMEM;
  }
  /* What did not move (shrinking) is freed with the old range; with
   * DONTUNMAP the old range stays, empty: its next touch faults in zeros. */
  if (!dontunmap)
    qk_vma_remove(&mm->vmas, old_addr, old_addr + old_len, unmap_piece, mm);
  if (new_len > old_len && new_len - old_len <= QK_EAGER_MAX)
    fill(mm, new_addr + old_len, new_addr + new_len);
  return (int64_t)new_addr;
}

int64_t qk_mm_advise(struct qk_mm *mm, uint64_t addr, uint64_t len, int advice)
{
  if (addr & (QK_PAGE_SIZE - 1))
    return -QK_EINVAL;
  if (len > QK_USER_TOP)
    return -QK_EINVAL;
  len = QK_ALIGN_UP(len, QK_PAGE_SIZE);
  if (!range_ok(addr, len))
    return -QK_EINVAL;
  switch (advice) {
  case L_MADV_NORMAL:
  case L_MADV_RANDOM:
  case L_MADV_SEQUENTIAL:
  case L_MADV_WILLNEED:
  case L_MADV_FREE:
  case 9 ... 25: /* REMOVE, (DONT)FORK, MERGEABLE, HUGEPAGE, DONTDUMP, COLD, PAGEOUT...: hints */
    return 0;
  case L_MADV_DONTNEED:
    break;
  default:
    return -QK_EINVAL;
  }
  /* DONTNEED on private memory: later reads see zeros. The frames stay
   * mapped and the host zeroes them: no PTE change, no TLB work. */
  struct qk_iov iov[16];
  unsigned n = 0;
  for (uint64_t va = addr; va < addr + len; va += QK_PAGE_SIZE) {
    struct qk_vma *v = qk_vma_find(&mm->vmas, va);
    if (!v || (v->flags & QK_VMF_SHARED))
      continue;
    volatile uint64_t *huge;
    volatile uint64_t *pte = qk_pt_lookup(mm->cr3, va, false, &huge);
    uint64_t pa;
    if (pte && (*pte & (QK_PTE_P | QK_PTE_SW_NONE)))
      pa = *pte & QK_PTE_ADDR;
    else if (!pte && huge)
      pa = (*huge & QK_PTE_ADDR & ~(QK_HUGE_PAGE_SIZE - 1)) + (va & (QK_HUGE_PAGE_SIZE - 1));
    else
      continue;
    if (pte && qk_page_shared(pa))
      continue; /* shared read-only with another process (fork): keep it */
    if (n && iov[n - 1].gpa + iov[n - 1].len == pa) {
      iov[n - 1].len += QK_PAGE_SIZE;
      continue;
    }
    if (n == QK_ARRAY_SIZE(iov)) {
      qk_qcall(QK_OP_ZERO, qk_va_to_pa(iov), n, 0, 0, 0, 0);
      n = 0;
    }
    iov[n].gpa = pa;
    iov[n].len = QK_PAGE_SIZE;
    n++;
  }
  if (n)
    qk_qcall(QK_OP_ZERO, qk_va_to_pa(iov), n, 0, 0, 0, 0);
  return 0;
}

bool qk_mm_file_hole(struct qk_mm *mm, uint64_t addr)
{
  struct qk_vma *v = qk_vma_find(&mm->vmas, addr);
  return v && ((v->flags & QK_VMF_FILE) || v->obj) &&
         (v->prot & (L_PROT_READ | L_PROT_WRITE | L_PROT_EXEC));
}

void qk_mm_obj_truncate(void *obj, uint64_t npages)
{
  for (struct qk_mm *mm = all_mms; mm; mm = mm->all_next)
    for (struct qk_vma *v = mm->vmas.head; v; v = v->next) {
      if (v->obj != obj || v->pgoff + (v->end - v->start) / QK_PAGE_SIZE <= npages)
        continue;
      struct qk_vma piece = *v;
      if (npages > v->pgoff)
        piece.start = v->start + (npages - v->pgoff) * QK_PAGE_SIZE;
      unmap_piece(mm, &piece);
    }
}

int qk_mm_fault(struct qk_mm *mm, uint64_t addr, bool write, bool exec)
{
  if (addr >= QK_USER_TOP)
    return -QK_EFAULT;
  struct qk_vma *v = qk_vma_find(&mm->vmas, addr);
  if (!v) {
    /* Stack growth: a fault below the stack area, within the limit. */
    struct qk_vma *s = qk_vma_find_after(&mm->vmas, addr);
    if (!s || !(s->flags & QK_VMF_GROWSDOWN) || addr < mm->stack_limit)
      return -QK_EFAULT;
    uint64_t lo = QK_ALIGN_DOWN(addr, QK_PAGE_SIZE);
    if (lo > QK_FAULT_AROUND * QK_PAGE_SIZE &&
        lo - QK_FAULT_AROUND * QK_PAGE_SIZE >= mm->stack_limit)
      lo -= QK_FAULT_AROUND * QK_PAGE_SIZE;
    if (qk_vma_overlaps(&mm->vmas, lo, s->start))
      return -QK_EFAULT;
    uint64_t old = s->start;
    s->start = lo;
    return populate(mm, lo, old, s->prot, -1, 0) ? -QK_EFAULT : 0;
  }
  if ((write && !(v->prot & L_PROT_WRITE)) || (exec && !(v->prot & L_PROT_EXEC)) ||
      !(v->prot & (L_PROT_READ | L_PROT_WRITE | L_PROT_EXEC)))
    return -QK_EFAULT;
  volatile uint64_t *pte = qk_pt_lookup(mm->cr3, addr, false, NULL);
  if (pte && (*pte & QK_PTE_P))
    return -QK_EFAULT; /* mapped, yet the access faulted: a real violation */
  if (v->obj) {
    /* The object's page (past its end: SIGBUS), then the ones around. */
    uint64_t pg = QK_ALIGN_DOWN(addr, QK_PAGE_SIZE);
    uint64_t lo = QK_ALIGN_DOWN(addr, QK_FAULT_AROUND * QK_PAGE_SIZE);
    uint64_t hi = lo + QK_FAULT_AROUND * QK_PAGE_SIZE;
    lo = lo < v->start ? v->start : lo;
    hi = hi > v->end ? v->end : hi;
    if (obj_populate(mm, v, pg, hi))
      return -QK_EFAULT;
    obj_populate(mm, v, lo, pg);
    return 0;
  }
  if (v->flags & QK_VMF_FILE)
    return -QK_EFAULT; /* file contents were read at mmap time */
  /* An untouched 2 MiB granule inside the area: one 2 MiB page, while
   * memory is plentiful (a quarter free). Sparse touches of a big area
   * would otherwise commit 512 times what they use; then 4 KiB pages. */
  uint64_t g = QK_ALIGN_DOWN(addr, QK_HUGE_PAGE_SIZE);
  if (g >= v->start && v->end - g >= QK_HUGE_PAGE_SIZE &&
      qk_page_free_count() > qk_page_total_count() / 4) {
    volatile uint64_t *pde = qk_pt_pde(mm->cr3, g, false);
    if ((!pde || !*pde) && qk_page_huge_available())
      return populate(mm, g, g + QK_HUGE_PAGE_SIZE, v->prot, -1, 0) ? -QK_EFAULT : 0;
  }
  uint64_t lo = QK_ALIGN_DOWN(addr, QK_FAULT_AROUND * QK_PAGE_SIZE);
  uint64_t hi = lo + QK_FAULT_AROUND * QK_PAGE_SIZE;
  if (lo < v->start)
    lo = v->start;
  if (hi > v->end)
    hi = v->end;
  return populate(mm, lo, hi, v->prot, -1, 0) ? -QK_EFAULT : 0;
}
