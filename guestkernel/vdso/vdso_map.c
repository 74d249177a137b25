/* Maps the vDSO and its data page into user address spaces (see vdso.h). */
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>

#include "vdso.h"
#include "vvar.h"

extern const uint8_t qk_vdso_image[], qk_vdso_image_end[];

/* A page of its own: user code reads all of it. */
static union {
  struct qk_vvar v;
  uint8_t page[QK_PAGE_SIZE];
} vvar __attribute__((aligned(QK_PAGE_SIZE), section(".data.qk_vvar")));

void qk_vdso_set_clock(uint64_t tsc_base, uint64_t mult, uint64_t mono_base_ns,
                       uint64_t real_base_ns)
{
  vvar.v.seq++;
  __asm__ volatile("" ::: "memory");
  vvar.v.tsc_base = tsc_base;
  vvar.v.mult = mult;
  vvar.v.mono_base_ns = mono_base_ns;
  vvar.v.real_base_ns = real_base_ns;
  vvar.v.magic = QK_VVAR_MAGIC;
  __asm__ volatile("" ::: "memory");
  vvar.v.seq++;
}

#define VDSO_GAP (1ull << 20) /* below the stack's growth limit */

int64_t qk_vdso_map(struct qk_mm *mm)
{
  uint64_t img = (uint64_t)(qk_vdso_image_end - qk_vdso_image);
  uint64_t len = QK_PAGE_SIZE + img;
  uint64_t high = mm->stack_limit > VDSO_GAP ? mm->stack_limit - VDSO_GAP : 0;
  uint64_t addr = high > len ? qk_vma_find_gap(&mm->vmas, len, 0x10000, high) : 0;
  if (!addr)
    return -QK_ENOMEM;
  int r = qk_vma_insert(&mm->vmas, addr, addr + QK_PAGE_SIZE, L_PROT_READ, QK_VMF_FILE);
  if (!r)
    r = qk_vma_insert(&mm->vmas, addr + QK_PAGE_SIZE, addr + len, L_PROT_READ | L_PROT_EXEC,
                      QK_VMF_FILE);
  if (r)
    return r;
  for (uint64_t off = 0; off < len; off += QK_PAGE_SIZE) {
    volatile uint64_t *pte = qk_pt_lookup(mm->cr3, addr + off, true, NULL);
    if (!pte)
      return -QK_ENOMEM; /* the areas go with the address space */
    uint64_t pa = off ? qk_va_to_pa(qk_vdso_image + off - QK_PAGE_SIZE) : qk_va_to_pa(&vvar);
    *pte = pa | QK_PTE_P | QK_PTE_U | (off ? 0 : QK_PTE_NX); /* was not present: a store */
  }
  return (int64_t)(addr + QK_PAGE_SIZE);
}
