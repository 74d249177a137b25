/* Host-side page-table builder (see pagetable.h). */
#include "pagetable.h"

#include <errno.h>
#include <string.h>

static bool canonical(uint64_t va)
{
  return va < (1ull << 47) || va >= 0xffff800000000000ull;
}

static uint64_t *table_at(const struct sbx_pt *pt, uint64_t gpa)
{
  return sbx_gpa(pt->mem, gpa & SBX_PTE_ADDR, 4096);
}

int sbx_pt_init(struct sbx_pt *pt, struct sbx_mem *mem, struct sbx_falloc *fa)
{
  pt->mem = mem;
  pt->fa = fa;
  pt->root = sbx_falloc_pages(fa, 1);
  return pt->root ? 0 : -ENOMEM;
}

/* Entry of va at level (3 = PDPT entry in PML4 ... 0 = PTE), creating the
 * tables above it. */
static uint64_t *entry_at(const struct sbx_pt *pt, uint64_t va, int level, bool create, int *err)
{
  uint64_t *t = table_at(pt, pt->root);
  for (int l = 3; l > level; l--) {
    if (!t) {
      *err = -EFAULT;
      return NULL;
    }
    uint64_t *e = &t[(va >> (12 + 9 * l)) & 511];
    if (!(*e & SBX_PTE_P)) {
      if (!create) {
        *err = -ENOENT;
        return NULL;
      }
      uint64_t f = sbx_falloc_pages(pt->fa, 1);
      if (!f) {
        *err = -ENOMEM;
        return NULL;
      }
      *e = f | SBX_PTE_P | SBX_PTE_W | SBX_PTE_U;
    } else if (*e & SBX_PTE_PS) {
      *err = -EEXIST;
      return NULL;
    }
    t = table_at(pt, *e);
  }
  if (!t) {
    *err = -EFAULT;
    return NULL;
  }
  return &t[(va >> (12 + 9 * level)) & 511];
}

uint64_t *sbx_pt_leaf(struct sbx_pt *pt, uint64_t va, bool create)
{
  int err = 0;
  if (!canonical(va))
    return NULL;
  return entry_at(pt, va, 0, create, &err);
}

int sbx_pt_map(struct sbx_pt *pt, uint64_t va, uint64_t pa, uint64_t len, uint64_t flags, bool huge)
{
  uint64_t step = huge ? (2ull << 20) : 4096;
  if ((va | pa | len) & (step - 1))
    return -EINVAL;
  if (len == 0)
    return 0;
  if (va + len - 1 < va || !canonical(va) || !canonical(va + len - 1) ||
      ((va ^ (va + len - 1)) >> 47) != 0 || (pa & ~SBX_PTE_ADDR) != 0)
    return -EINVAL;
  flags &= SBX_PTE_W | SBX_PTE_U | SBX_PTE_NX;
  for (uint64_t off = 0; off < len; off += step) {
    int err = 0;
    uint64_t *e = entry_at(pt, va + off, huge ? 1 : 0, true, &err);
    if (!e)
      return err;
    if (*e & SBX_PTE_P)
      return -EEXIST;
    *e = (pa + off) | SBX_PTE_P | flags | (huge ? SBX_PTE_PS : 0);
  }
  return 0;
}

int sbx_pt_unmap_page(struct sbx_pt *pt, uint64_t va)
{
  if ((va & 4095) || !canonical(va))
    return -EINVAL;
  int err = 0;
  uint64_t *pde = entry_at(pt, va, 1, false, &err);
  if (!pde)
    return err;
  if ((*pde & SBX_PTE_P) && (*pde & SBX_PTE_PS)) {
    /* Split the 2 MiB page: 512 4 KiB pages with its flags. */
    uint64_t f = sbx_falloc_pages(pt->fa, 1);
    uint64_t *t = f ? table_at(pt, f) : NULL;
    if (!t)
      return -ENOMEM;
    uint64_t base = *pde & SBX_PTE_ADDR & ~((2ull << 20) - 1);
    uint64_t flags = *pde & (SBX_PTE_W | SBX_PTE_U | SBX_PTE_NX);
    for (unsigned i = 0; i < 512; i++)
      t[i] = (base + (uint64_t)i * 4096) | SBX_PTE_P | flags;
    *pde = f | SBX_PTE_P | SBX_PTE_W | SBX_PTE_U;
  }
  uint64_t *pte = entry_at(pt, va, 0, false, &err);
  if (!pte)
    return err;
  *pte = 0;
  return 0;
}

int sbx_pt_walk(const struct sbx_pt *pt, uint64_t va, uint64_t *pa, uint64_t *flags)
{
  if (!canonical(va))
    return -ENOENT;
  uint64_t eff = SBX_PTE_W | SBX_PTE_U;
  uint64_t nx = 0;
  uint64_t *t = table_at(pt, pt->root);
  for (int l = 3; l >= 0; l--) {
    if (!t)
      return -EFAULT;
    uint64_t e = t[(va >> (12 + 9 * l)) & 511];
    if (!(e & SBX_PTE_P))
      return -ENOENT;
    eff &= e;
    nx |= e & SBX_PTE_NX;
    bool leaf = l == 0 || ((l == 1 || l == 2) && (e & SBX_PTE_PS));
    if (leaf) {
      uint64_t mask = (1ull << (12 + 9 * l)) - 1;
      if (pa)
        *pa = (e & SBX_PTE_ADDR & ~mask) | (va & mask);
      if (flags)
        *flags = SBX_PTE_P | (eff & (SBX_PTE_W | SBX_PTE_U)) | nx;
      return 0;
    }
    t = table_at(pt, e);
  }
  return -ENOENT;
}

int sbx_pt_share_upper(struct sbx_pt *dst, const struct sbx_pt *src)
{
  uint64_t *d = table_at(dst, dst->root), *s = table_at(src, src->root);
  if (!d || !s)
    return -EFAULT;
  memcpy(d + 256, s + 256, 256 * sizeof(uint64_t));
  return 0;
}

int sbx_pt_fill_upper(struct sbx_pt *pt)
{
  uint64_t *t = table_at(pt, pt->root);
  if (!t)
    return -EFAULT;
  for (int i = 256; i < 512; i++) {
    if (t[i] & SBX_PTE_P)
      continue;
    uint64_t f = sbx_falloc_pages(pt->fa, 1);
    if (!f)
      return -ENOMEM;
    t[i] = f | SBX_PTE_P | SBX_PTE_W | SBX_PTE_U;
  }
  return 0;
}

static int copy_va(const struct sbx_pt *pt, uint64_t va, void *buf, uint64_t len, bool to_guest)
{
  uint8_t *b = buf;
  while (len) {
    uint64_t pa;
    int r = sbx_pt_walk(pt, va, &pa, NULL);
    if (r < 0)
      return r;
    uint64_t chunk = 4096 - (va & 4095);
    if (chunk > len)
      chunk = len;
    uint8_t *p = sbx_gpa(pt->mem, pa, chunk);
    if (!p)
      return -EFAULT;
    if (to_guest)
      memcpy(p, b, chunk);
    else
      memcpy(b, p, chunk);
    b += chunk;
    va += chunk;
    len -= chunk;
  }
  return 0;
}

int sbx_pt_write(const struct sbx_pt *pt, uint64_t va, const void *src, uint64_t len)
{
  return copy_va(pt, va, (void *)src, len, true);
}

int sbx_pt_read(const struct sbx_pt *pt, uint64_t va, void *dst, uint64_t len)
{
  return copy_va(pt, va, dst, len, false);
}
