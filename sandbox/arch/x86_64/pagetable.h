/* Host-side builder of x86-64 4-level page tables inside guest memory.
 *
 * Contract:
 * - Tables live in guest frames from the caller's sbx_falloc; entries hold
 *   guest-physical addresses. Intermediate entries are P|W|U: the leaf
 *   decides the permission.
 * - The builder only creates entries (not-present -> present). It never
 *   changes or removes a present entry of a table the guest may already
 *   use: on this project's hosts only the guest may do that (FINDINGS.md).
 *   The one exception, sbx_pt_unmap_page, runs before any vCPU does.
 *   sbx_pt_map fails with -EEXIST rather than overwrite a present leaf.
 * - Every table pointer read back from guest memory goes through sbx_gpa();
 *   a corrupt table makes the call fail with -EFAULT, never crash.
 */
#ifndef SBX_PAGETABLE_H
#define SBX_PAGETABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "../../mem/guest_mem.h"

#define SBX_PTE_P 0x1ull
#define SBX_PTE_W 0x2ull
#define SBX_PTE_U 0x4ull
#define SBX_PTE_PS 0x80ull
#define SBX_PTE_NX (1ull << 63)
#define SBX_PTE_ADDR 0x000ffffffffff000ull

struct sbx_pt {
  struct sbx_mem *mem;
  struct sbx_falloc *fa;
  uint64_t root; /* gpa of the PML4 */
};

/* Allocates an empty PML4. */
int sbx_pt_init(struct sbx_pt *pt, struct sbx_mem *mem, struct sbx_falloc *fa);

/* Maps [va, va+len) to [pa, pa+len) with leaf flags (SBX_PTE_W/U/NX; P is
 * implied). huge: 2 MiB pages (va, pa, len 2 MiB aligned), else 4 KiB.
 * -EINVAL on misalignment or a non-canonical range, -ENOMEM when frames run
 * out, -EEXIST when a page is already mapped. */
int sbx_pt_map(struct sbx_pt *pt, uint64_t va, uint64_t pa, uint64_t len, uint64_t flags, bool huge);

/* Pointer to the 4 KiB leaf entry of va, creating intermediate tables;
 * NULL when a 2 MiB page covers va or frames run out. */
uint64_t *sbx_pt_leaf(struct sbx_pt *pt, uint64_t va, bool create);

/* Unmaps the 4 KiB page at va (a guard page), splitting the 2 MiB page
 * that covers it into 4 KiB pages with its flags. Only for tables no vCPU
 * has used yet (boot state): it changes present entries. -ENOENT when va
 * is not mapped, -ENOMEM when frames run out. */
int sbx_pt_unmap_page(struct sbx_pt *pt, uint64_t va);

/* Translates va: 0 and *pa / *flags (effective: U and W only if every level
 * has them, NX if any level has it) or -ENOENT / -EFAULT. */
int sbx_pt_walk(const struct sbx_pt *pt, uint64_t va, uint64_t *pa, uint64_t *flags);

/* Makes dst's PML4 entries 256..511 equal to src's (kernel half shared). */
int sbx_pt_share_upper(struct sbx_pt *dst, const struct sbx_pt *src);

/* Allocates the PDPT of every upper-half PML4 entry so that address spaces
 * made later with sbx_pt_share_upper see every later kernel mapping. */
int sbx_pt_fill_upper(struct sbx_pt *pt);

/* Copies len bytes to/from virtual address va of pt (host side). */
int sbx_pt_write(const struct sbx_pt *pt, uint64_t va, const void *src, uint64_t len);
int sbx_pt_read(const struct sbx_pt *pt, uint64_t va, void *dst, uint64_t len);

#endif
