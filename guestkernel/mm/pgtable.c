/* Software page-table walks through the direct map (no privileged
 * instruction except qk_arch_pte_update for entries that were present). */
#include <qk/arch.h>
#include <qk/kernel.h>
#include <qk/mm.h>
#include <qk/qcall.h>

#define TABLE_FLAGS (QK_PTE_P | QK_PTE_W | QK_PTE_U)

static inline volatile uint64_t *table_of(uint64_t e)
{
  return (volatile uint64_t *)qk_pa_to_va(e & QK_PTE_ADDR);
}

/* Replaces a 2 MiB leaf with a table of 512 4 KiB entries mapping the same
 * frames, so that part of it can be changed. Rare (the host maps user
 * memory with 4 KiB pages); NULL when out of memory. */
static volatile uint64_t *split_huge(volatile uint64_t *pde, uint64_t va)
{
  uint64_t e = *pde;
  uint64_t pa = qk_page_alloc(true);
  if (!pa)
    return NULL;
  volatile uint64_t *t = qk_pa_to_va(pa);
  uint64_t base = e & QK_PTE_ADDR & ~(QK_HUGE_PAGE_SIZE - 1);
  uint64_t flags = (e & ~QK_PTE_ADDR & ~QK_PTE_PS) | (e & QK_PTE_NX);
  for (unsigned i = 0; i < 512; i++)
    t[i] = (base + i * QK_PAGE_SIZE) | flags;
  qk_arch_pte_update(pde, pa | TABLE_FLAGS, va & ~(QK_HUGE_PAGE_SIZE - 1));
  qk_arch_flush_tlb();
  return t;
}

volatile uint64_t *qk_pt_lookup(uint64_t cr3, uint64_t va, bool alloc, volatile uint64_t **huge)
{
  volatile uint64_t *t = qk_pa_to_va(cr3 & QK_PTE_ADDR);
  if (huge)
    *huge = NULL;
  for (int shift = 39; shift > 12; shift -= 9) {
    volatile uint64_t *e = &t[(va >> shift) & 511];
    uint64_t v = *e;
    if (!(v & QK_PTE_P)) {
      if (!alloc)
        return NULL;
      uint64_t pa = qk_page_alloc(true);
      if (!pa)
        return NULL;
      *e = pa | TABLE_FLAGS; /* not present -> present: a plain store */
      t = qk_pa_to_va(pa);
      continue;
    }
    if (shift == 21 && (v & QK_PTE_PS)) {
      if (!alloc) {
        if (huge)
          *huge = e;
        return NULL;
      }
      t = split_huge(e, va);
      if (!t)
        return NULL;
      continue;
    }
    if (alloc && (v & TABLE_FLAGS) != TABLE_FLAGS)
      qk_arch_pte_update(e, v | TABLE_FLAGS, va); /* leaf entries decide */
    t = table_of(v);
  }
  return &t[(va >> 12) & 511];
}

volatile uint64_t *qk_pt_pde(uint64_t cr3, uint64_t va, bool alloc)
{
  volatile uint64_t *t = qk_pa_to_va(cr3 & QK_PTE_ADDR);
  for (int shift = 39; shift > 21; shift -= 9) {
    volatile uint64_t *e = &t[(va >> shift) & 511];
    uint64_t v = *e;
    if (!(v & QK_PTE_P)) {
      if (!alloc)
        return NULL;
      uint64_t pa = qk_page_alloc(true);
      if (!pa)
        return NULL;
      *e = pa | TABLE_FLAGS;
      t = qk_pa_to_va(pa);
      continue;
    }
    if (alloc && (v & TABLE_FLAGS) != TABLE_FLAGS)
      qk_arch_pte_update(e, v | TABLE_FLAGS, va);
    t = table_of(v);
  }
  return &t[(va >> 21) & 511];
}
