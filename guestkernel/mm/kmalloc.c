/* Small-object allocator: power-of-two size classes from 16 to 2048 bytes,
 * each a free list of objects carved from whole pages; bigger requests get
 * contiguous pages. The class of each page is kept in the per-frame
 * metadata (qk_page_meta) so that qk_kfree needs no size and no header. */
#include <qk/kernel.h>
#include <qk/mm.h>
#include <qk/qcall.h>

extern uint32_t *qk_page_meta;

#define MIN_SHIFT 4
#define MAX_SHIFT 11
#define NCLASS (MAX_SHIFT - MIN_SHIFT + 1)
#define META_SMALL 0x100u  /* meta = META_SMALL | class */
#define META_LARGE 0x200u  /* meta = META_LARGE | (pages << 12) on the first page */

struct free_obj {
  struct free_obj *next;
};
static struct free_obj *free_lists[NCLASS];
/* Freed multi-page blocks of 2..16 pages are kept for reuse by size: the
 * page allocator hands out contiguous runs cheaply only from its never-used
 * part (merging freed pages is a pass over all of them). 16 covers the
 * 64 KiB buffer of every pipe (and so two per unix stream connection):
 * with 8, a loop of pipe()+close ran a 256 MiB guest out of memory
 * within 20,000 pipes. */
#define LARGE_CACHE_MAX 16
static struct free_obj *large_free[LARGE_CACHE_MAX + 1];
/* Bigger freed blocks (execve's 256 KiB argument buffer, big pipe or
 * socket buffers) are kept too, on one list, each knowing its size from the
 * page metadata: freed page by page they would never make a contiguous
 * run again, so each execve drained 256 KiB of the never-used pages for
 * good and a shell loop ran a 128 MiB guest out of memory after 477
 * execs. A request takes the smallest kept block that fits and wastes at
 * most half of it (the block keeps its own size in the metadata, so kfree
 * gives all of it back). */
static struct free_obj *big_free;
/* Both caches go back to the page allocator when it runs short of pages or
 * of a contiguous run (qk_kmalloc_release): it merges freed pages, so a
 * cached block is only a shortcut, not the only way to get a run again. */

static size_t block_pages(const void *p)
{
  return qk_page_meta[qk_va_to_pa(p) / QK_PAGE_SIZE] >> 12;
}

/* A multi-page block back to the page allocator, page by page. */
static void release_block(void *p, size_t n)
{
  uint64_t pa = qk_va_to_pa(p);
  qk_page_meta[pa / QK_PAGE_SIZE] = 0;
  for (size_t i = 0; i < n; i++)
    qk_page_free(pa + i * QK_PAGE_SIZE);
}

static void *big_take(size_t n)
{
  struct free_obj **best = NULL;
  size_t best_n = 0;
  for (struct free_obj **pp = &big_free; *pp; pp = &(*pp)->next) {
    size_t bn = block_pages(*pp);
    if (bn >= n && bn <= 2 * n && (!best || bn < best_n)) {
      best = pp;
      best_n = bn;
      if (bn == n)
        break;
    }
  }
  if (!best)
    return NULL;
  struct free_obj *o = *best;
  *best = o->next;
  return o;
}

static inline unsigned class_of(size_t size)
{
  if (size <= (1u << MIN_SHIFT))
    return 0;
  return (unsigned)(64 - __builtin_clzll(size - 1)) - MIN_SHIFT;
}

static int refill(unsigned c)
{
  uint64_t pa = qk_page_alloc(false);
  if (!pa)
    return -QK_ENOMEM;
  qk_page_meta[pa / QK_PAGE_SIZE] = META_SMALL | c;
  size_t sz = (size_t)1 << (c + MIN_SHIFT);
  char *base = qk_pa_to_va(pa);
  struct free_obj *head = free_lists[c];
  for (size_t off = QK_PAGE_SIZE; off >= sz; off -= sz) {
    struct free_obj *o = (struct free_obj *)(void *)(base + off - sz);
    o->next = head;
    head = o;
  }
  free_lists[c] = head;
  return 0;
}

void *qk_kmalloc(size_t size)
{
  if (size > (1u << MAX_SHIFT)) {
    if (size > (1ull << 30))
      return NULL;
    size_t n = QK_ALIGN_UP(size, QK_PAGE_SIZE) / QK_PAGE_SIZE;
    if (n <= LARGE_CACHE_MAX && large_free[n]) {
      struct free_obj *o = large_free[n];
      large_free[n] = o->next;
      return o;
    }
    if (n > LARGE_CACHE_MAX) {
      void *o = big_take(n);
      if (o)
        return o;
    }
    uint64_t pa = qk_page_alloc_contig(n);
    if (!pa)
      return NULL;
    qk_page_meta[pa / QK_PAGE_SIZE] = META_LARGE | (uint32_t)(n << 12);
    return qk_pa_to_va(pa);
  }
  unsigned c = class_of(size);
  if (!free_lists[c] && refill(c))
    return NULL;
  struct free_obj *o = free_lists[c];
  free_lists[c] = o->next;
  return o;
}

void *qk_kzalloc(size_t size)
{
  void *p = qk_kmalloc(size);
  if (p)
    memset(p, 0, size);
  return p;
}

void qk_kfree(void *p)
{
  if (!p)
    return;
  uint64_t pa = qk_va_to_pa(p);
  uint32_t m = qk_page_meta[pa / QK_PAGE_SIZE];
  if (m & META_SMALL) {
    unsigned c = m & 0xff;
    struct free_obj *o = p;
    o->next = free_lists[c];
    free_lists[c] = o;
    return;
  }
  QK_BUG_ON(!(m & META_LARGE));
  size_t n = m >> 12;
  if (n >= 2 && n <= LARGE_CACHE_MAX) {
    struct free_obj *o = p;
    o->next = large_free[n];
    large_free[n] = o;
    return;
  }
  if (n > LARGE_CACHE_MAX) {
    struct free_obj *o = p;
    o->next = big_free;
    big_free = o;
    return;
  }
  release_block(p, n);
}

size_t qk_kmalloc_release(void)
{
  size_t pages = 0;
  for (size_t n = 2; n <= LARGE_CACHE_MAX; n++)
    while (large_free[n]) {
      struct free_obj *o = large_free[n];
      large_free[n] = o->next;
      release_block(o, n);
      pages += n;
    }
  while (big_free) {
    struct free_obj *o = big_free;
    big_free = o->next;
    size_t n = block_pages(o);
    release_block(o, n);
    pages += n;
  }
  return pages;
}
