/* Guest physical memory as the host sees it, and the ONE checked
 * translation from guest-physical (gpa, len) to a host pointer.
 *
 * Contract:
 * - struct sbx_mem describes one memslot mapped at base, [0, size).
 * - sbx_gpa() returns a host pointer to [gpa, gpa+len) only when the whole
 *   range lies inside the memslot, with no overflow; NULL otherwise. len 0
 *   is valid for any gpa <= size. Every guest-supplied address goes through
 *   it; a NULL answer fails that request with -EFAULT, never the process.
 * - The guest may change memory under the host at any time: callers copy
 *   guest-written descriptors (iovecs, paths) once, then validate the copy.
 * - sbx_falloc hands out zeroed 4 KiB frames from a bump range (host-side
 *   boot allocations: page tables, the initial process's pages).
 */
#ifndef SBX_GUEST_MEM_H
#define SBX_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct sbx_mem {
  uint8_t *base;
  uint64_t size;
};

static inline void *sbx_gpa(const struct sbx_mem *m, uint64_t gpa, uint64_t len)
{
  if (gpa > m->size || len > m->size - gpa)
    return NULL;
  return m->base + gpa;
}

/* Guest memory makes no alignment promise (a hostile guest picks any
 * address): typed values in it are read and written with memcpy, never
 * through a cast pointer. */
static inline uint32_t sbx_load32(const void *p)
{
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline void sbx_store32(void *p, uint32_t v) { memcpy(p, &v, sizeof v); }
static inline void sbx_store16(void *p, uint16_t v) { memcpy(p, &v, sizeof v); }

/* Bump allocator of guest frames over [next, end). */
struct sbx_falloc {
  struct sbx_mem *mem;
  uint64_t next;
  uint64_t end;
};

/* Returns the gpa of n zeroed, contiguous 4 KiB frames, or 0 when the range
 * is exhausted (gpa 0 is never handed out: it is below the boot info). */
uint64_t sbx_falloc_pages(struct sbx_falloc *fa, uint64_t n);

#endif
