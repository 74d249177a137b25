/* Address spaces for fork and exec: an empty address space, an eager copy
 * of one (fork), and teardown.
 *
 * fork shares read-only pages (program text, read-only data: counted in
 * the page metadata, copied if mprotect makes them writable later) and
 * copies every writable page at once (no copy-on-write): a COW write
 * fault costs ~50 us on our host and every shared PTE would have to be
 * changed (write-protected) in the parent through ring 0, while the copy
 * itself runs natively in the CPL3 kernel worker (memcpy through the direct
 * map) or as one host QCall per page from emulated ring 0. The child's
 * entries are all new (not-present -> present): plain stores. MAP_SHARED
 * frames (QK_PTE_SW_SHARED) are shared, and the child's areas reference
 * the same objects, so pages faulted in later are shared too. */
#include <qk/arch.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>

#define TABLE_FLAGS (QK_PTE_P | QK_PTE_W | QK_PTE_U)

struct qk_mm *qk_mm_new(uint64_t kernel_cr3)
{
  struct qk_mm *mm = qk_kzalloc(sizeof(*mm));
  if (!mm)
    return NULL;
  uint64_t pa = qk_page_alloc(true);
  if (!pa) {
    qk_kfree(mm);
    return NULL;
  }
  volatile uint64_t *dst = qk_pa_to_va(pa);
  volatile uint64_t *src = qk_pa_to_va(kernel_cr3 & QK_PTE_ADDR);
  /* The kernel half: every address space shares the same upper PDPTs. */
  for (unsigned i = 256; i < 512; i++)
    dst[i] = src[i];
  mm->cr3 = pa;
  mm->refs = 1;
  qk_mm_track(mm, true);
  return mm;
}

static int copy_table(volatile uint64_t *dst, volatile uint64_t *src, int level)
{
  for (unsigned i = 0; i < (level == 4 ? 256u : 512u); i++) {
    uint64_t e = src[i];
    if (!(e & (QK_PTE_P | QK_PTE_SW_NONE)))
      continue;
    if (level == 1 && (e & QK_PTE_SW_SHARED)) { /* MAP_SHARED: the object holds the frame */
      dst[i] = e;
      continue;
    }
    if (level == 1 && !(e & QK_PTE_W)) { /* read-only: shared, counted */
      qk_page_share(e & QK_PTE_ADDR);
      dst[i] = e;
      continue;
    }
    if (level == 1 || (level == 2 && (e & QK_PTE_PS))) {
      uint64_t size = level == 1 ? QK_PAGE_SIZE : QK_HUGE_PAGE_SIZE;
      uint64_t pa;
      if (level == 1) {
        pa = qk_page_alloc(false);
      } else {
        bool zero;
        pa = qk_page_alloc_huge(&zero);
      }
      if (!pa)
        return -QK_ENOMEM;
      uint64_t base = e & QK_PTE_ADDR & ~(size - 1);
      qk_phys_copy(pa, base, size);
      dst[i] = pa | (e & ~QK_PTE_ADDR);
      continue;
    }
    uint64_t pa = qk_page_alloc(true);
    if (!pa)
      return -QK_ENOMEM;
    dst[i] = pa | (e & ~QK_PTE_ADDR);
    int r = copy_table(qk_pa_to_va(pa), qk_pa_to_va(e & QK_PTE_ADDR), level - 1);
    if (r)
      return r;
  }
  return 0;
}

static void free_table(volatile uint64_t *t, int level)
{
  for (unsigned i = 0; i < (level == 4 ? 256u : 512u); i++) {
    uint64_t e = t[i];
    if (!(e & (QK_PTE_P | QK_PTE_SW_NONE)))
      continue;
    if (level == 2 && (e & QK_PTE_PS)) {
      qk_page_free_huge(e & QK_PTE_ADDR & ~(QK_HUGE_PAGE_SIZE - 1));
      continue;
    }
    if (level == 1 && (e & QK_PTE_SW_SHARED))
      continue; /* the area's object holds the frame */
    if (level > 1)
      free_table(qk_pa_to_va(e & QK_PTE_ADDR), level - 1);
    qk_page_free(e & QK_PTE_ADDR);
  }
}

void qk_mm_destroy(struct qk_mm *mm)
{
  volatile uint64_t *pml4 = qk_pa_to_va(mm->cr3 & QK_PTE_ADDR);
  qk_mm_track(mm, false);
  qk_uaccess_forget();
  /* Unlink the user half through ring 0 first: on PVM-style hosts a
   * shadow of these tables may outlive plain stores. */
  for (unsigned i = 0; i < 256; i++) {
    uint64_t e = pml4[i];
    if (!(e & QK_PTE_P))
      continue;
    qk_arch_pte_update(&pml4[i], 0, (uint64_t)i << 39);
    free_table(qk_pa_to_va(e & QK_PTE_ADDR), 3);
    qk_page_free(e & QK_PTE_ADDR);
  }
  qk_page_free(mm->cr3 & QK_PTE_ADDR);
  qk_vma_clear(&mm->vmas);
  qk_kfree(mm);
}

struct qk_mm *qk_mm_dup(struct qk_mm *src, uint64_t kernel_cr3)
{
  struct qk_mm *mm = qk_mm_new(kernel_cr3);
  if (!mm)
    return NULL;
  mm->brk_start = src->brk_start;
  mm->brk = src->brk;
  mm->mmap_top = src->mmap_top;
  mm->stack_limit = src->stack_limit;
  for (struct qk_vma *v = src->vmas.head; v; v = v->next)
    if (qk_vma_insert_obj(&mm->vmas, v->start, v->end, v->prot, v->flags, v->ops, v->obj,
                          v->pgoff))
      goto fail;
  if (copy_table(qk_pa_to_va(mm->cr3 & QK_PTE_ADDR), qk_pa_to_va(src->cr3 & QK_PTE_ADDR), 4))
    goto fail;
  return mm;
fail:
  qk_mm_destroy(mm);
  return NULL;
}

uint64_t qk_page_unshare(uint64_t pa)
{
  if (!qk_page_shared(pa))
    return pa;
  uint64_t np = qk_page_alloc(false);
  if (!np)
    return 0;
  qk_phys_copy(np, pa, QK_PAGE_SIZE);
  qk_page_free(pa); /* drops this mapping's share */
  return np;
}
