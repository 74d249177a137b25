/* Host-side frame allocation for boot structures (see guest_mem.h). */
#include "guest_mem.h"

#include <string.h>

uint64_t sbx_falloc_pages(struct sbx_falloc *fa, uint64_t n)
{
  if (n == 0 || n > (fa->end - fa->next) / 4096 || fa->next < 4096 || fa->next > fa->end)
    return 0;
  uint64_t gpa = fa->next;
  void *p = sbx_gpa(fa->mem, gpa, n * 4096);
  if (!p)
    return 0;
  fa->next += n * 4096;
  /* Fresh anonymous memory is already zero; clear anyway so that a reused
   * range (tests) behaves the same. */
  memset(p, 0, n * 4096);
  return gpa;
}
