/* Physical page allocator.
 *
 * Sources, each O(1) and a handful of instructions on the common paths
 * (ring 0 is expensive on our host): a bump pointer over pages that have
 * never been handed out (zero by the boot contract, and contiguous) and
 * free stacks of aligned blocks of 2^k pages, k = 0 (single pages) to 9
 * (2 MiB chunks), each linked through its first word (dirty). A freed
 * page goes on the k = 0 stack, a freed 2 MiB page on the k = 9 one. A
 * request takes the smallest block that fits and gives the rest of it back
 * as smaller aligned blocks (so a single page breaks up one small block,
 * not a chunk). A caller that needs zeroed pages gets bump pages for free;
 * recycled pages are zeroed in place where kernel code runs natively, else
 * by the host in one QCall per batch.
 *
 * Freed pages merge lazily (a buddy allocator that defers its merges):
 * freeing stays one push, and when a request for contiguous memory (a 2 MiB
 * page, a multi-page kernel object) finds no block and no room at the bump
 * pointer while pages were freed since the last try, coalesce() rebuilds
 * every stack from a bitmap of the free pages (one bit per frame): each run
 * of free pages becomes the largest aligned blocks that tile it. Without it
 * a long-running guest whose memory had all been used once could never make
 * a contiguous allocation again, however much was free.
 *
 * Per-frame metadata (one uint32 per page of guest memory) records what the
 * small-object allocator put in a page; it lives in the first pages of the
 * range.
 *
 * Memory accounting (a memory cgroup in miniature, one group per container
 * of a pod VM): every frame handed out is charged to the group of the task
 * being served (its container; group 0, the boot process and the kernel's
 * own work, is never limited) or to the group the task layer names while it
 * builds a container's process (qk_mem_charge_to); one byte per frame
 * records the group, so a frame freed from any context is uncharged from
 * the right one. A charge that would take a group past its limit fails
 * (the caller sees ENOMEM) and calls qk_mem_oom(group), which kills the
 * allocating process (the task layer's OOM killer). */
#include <qk/kernel.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/task.h>

uint32_t *qk_page_meta; /* indexed by pfn; used by kmalloc.c */
static uint8_t *page_group;                 /* indexed by pfn: charged group, 0 none */
static uint64_t group_used[QK_MEM_GROUPS];  /* pages */
static uint64_t group_limit[QK_MEM_GROUPS]; /* pages, 0: none */
static int charge_override = -1;

static uint64_t range_start, range_end; /* owned range */
static uint64_t bump;                   /* next never-used page */
#define ORDERS 10 /* blocks of 2^0 .. 2^9 pages (2 MiB) */
#define HUGE_ORDER (ORDERS - 1)
static uint64_t blk[ORDERS];            /* free stacks by order; pa of the top, 0 if none */
static uint64_t free_pages;             /* pages available (bump + freed) */
static uint64_t total_pages;
static uint64_t *free_map;              /* coalesce(): bit per pfn, valid only there */
static uint64_t map_pfns;               /* pfns free_map covers */
static uint64_t freed_since;            /* pages pushed on the stack since coalesce() */
static uint64_t huge_retry;             /* freed_since that makes take_huge() merge */

void qk_page_init(uint64_t start, uint64_t end, uint64_t mem_size)
{
  start = QK_ALIGN_UP(start, QK_PAGE_SIZE);
  end = QK_ALIGN_DOWN(end, QK_PAGE_SIZE);
  uint64_t meta_bytes = QK_ALIGN_UP((mem_size / QK_PAGE_SIZE) * sizeof(uint32_t), QK_PAGE_SIZE);
  qk_page_meta = qk_pa_to_va(start);
  start += meta_bytes;
  page_group = qk_pa_to_va(start); /* zero by the boot contract, as the metadata */
  start += QK_ALIGN_UP(mem_size / QK_PAGE_SIZE, QK_PAGE_SIZE);
  map_pfns = QK_ALIGN_UP(mem_size / QK_PAGE_SIZE, 64);
  free_map = qk_pa_to_va(start);
  start += QK_ALIGN_UP(map_pfns / 8, QK_PAGE_SIZE);
  range_start = start;
  range_end = end;
  bump = start;
  memset(blk, 0, sizeof(blk));
  total_pages = free_pages = end > start ? (end - start) / QK_PAGE_SIZE : 0;
  /* A 2 MiB page is never needed (4 KiB pages do): merging for one waits
   * until an eighth of memory was freed, so a guest whose processes come
   * and go pays one pass per eighth of memory recycled, not one per exit. */
  huge_retry = total_pages / 8 > 512 ? total_pages / 8 : 512;
}

bool qk_page_owned(uint64_t pa) { return pa >= range_start && pa < range_end; }

uint64_t qk_page_free_count(void) { return free_pages; }
uint64_t qk_page_total_count(void) { return total_pages; }

static inline void push(unsigned k, uint64_t pa)
{
  *(uint64_t *)qk_pa_to_va(pa) = blk[k];
  blk[k] = pa;
}

static inline uint64_t pop(unsigned k)
{
  uint64_t pa = blk[k];
  if (pa)
    blk[k] = *(uint64_t *)qk_pa_to_va(pa);
  return pa;
}

/* Gives the free pfns [p, e) back as the largest aligned blocks. */
static void push_run(uint64_t p, uint64_t e)
{
  while (p < e) {
    unsigned k = p ? (unsigned)__builtin_ctzll(p) : HUGE_ORDER;
    if (k > HUGE_ORDER)
      k = HUGE_ORDER;
    while (p + (1ull << k) > e)
      k--;
    push(k, p * QK_PAGE_SIZE);
    p += 1ull << k;
  }
}

/* n contiguous pages (n <= 512) from the smallest block that holds them;
 * the rest of the block goes back as smaller blocks. 0 if none. */
static uint64_t take_block(size_t n)
{
  unsigned k = 0;
  while ((1ull << k) < n)
    k++;
  for (; k < ORDERS; k++) {
    uint64_t pa = pop(k);
    if (!pa)
      continue;
    uint64_t pfn = pa / QK_PAGE_SIZE;
    push_run(pfn + n, pfn + (1ull << k));
    free_pages -= n;
    return pa;
  }
  return 0;
}

/* Rebuilds the free stacks from the free pages (see the top of the file);
 * with want > 512 takes out the lowest run of want free pages and returns
 * its address (0: none; free_pages is the caller's). The cost is one pass
 * over the stacks and one over the bitmap (1 bit per page of memory); it
 * runs only when a contiguous request failed and pages were freed since
 * the last pass, so a real shortage does not repeat it. */
static uint64_t coalesce(size_t want)
{
  freed_since = 0;
  uint64_t lo = range_start / QK_PAGE_SIZE, hi = bump / QK_PAGE_SIZE;
  if (hi > map_pfns)
    hi = map_pfns;
  uint64_t wlo = lo / 64, whi = (hi + 63) / 64;
  memset(free_map + wlo, 0, (whi - wlo) * sizeof(uint64_t));
  for (unsigned k = 0; k < ORDERS; k++) {
    for (uint64_t pa = blk[k]; pa; pa = *(uint64_t *)qk_pa_to_va(pa)) {
      uint64_t pfn = pa / QK_PAGE_SIZE, e = pfn + (1ull << k);
      if (pfn < lo || e > hi)
        continue; /* cannot happen: every free block lies below bump */
      if (k >= 6) { /* whole words */
        memset(free_map + pfn / 64, 0xff, (1ull << k) / 8);
        continue;
      }
      for (; pfn < e; pfn++)
        free_map[pfn / 64] |= 1ull << (pfn % 64);
    }
    blk[k] = 0;
  }
  /* Bigger than a chunk (rare): the lowest run of want free pages. */
  uint64_t run_pa = 0;
  if (want > (1u << HUGE_ORDER)) {
    uint64_t run = 0, start = 0;
    for (uint64_t p = lo; p < hi && run < want; p++) {
      uint64_t w = free_map[p / 64];
      if (!w || (w == ~0ull && !(p % 64))) {
        if (!w) {
          run = 0;
        } else {
          start = run ? start : p;
          run += 64;
        }
        p |= 63;
        continue;
      }
      if (w >> (p % 64) & 1) {
        start = run ? start : p;
        run++;
      } else {
        run = 0;
      }
    }
    if (run >= want) {
      for (uint64_t p = start; p < start + want; p++)
        free_map[p / 64] &= ~(1ull << (p % 64));
      run_pa = start * QK_PAGE_SIZE;
    }
  }
  /* Every run of free pages, as the largest aligned blocks. */
  for (uint64_t p = lo; p < hi;) {
    uint64_t w = free_map[p / 64] >> (p % 64);
    if (!w) {
      p = (p | 63) + 1;
      continue;
    }
    p += (uint64_t)__builtin_ctzll(w);
    uint64_t e = p; /* the run's end: the next clear bit, a word at a time */
    for (;;) {
      uint64_t z = ~free_map[e / 64] >> (e % 64);
      if (z) {
        e += (uint64_t)__builtin_ctzll(z);
        break;
      }
      e = (e | 63) + 1;
      if (e >= hi)
        break;
    }
    if (e > hi)
      e = hi;
    push_run(p, e);
    p = e;
  }
  return run_pa;
}

/* ---- accounting ---- */

static int current_group(void)
{
  if (charge_override >= 0)
    return charge_override;
  struct qk_percpu *pc = qk_arch_cpu_private();
  struct qk_task *t = pc ? pc->current : NULL;
  int g = t && t->proc ? t->proc->ctr : 0; /* container slot + 1 */
  return g > 0 && g < (int)QK_MEM_GROUPS ? g : 0;
}

/* Charges n frames to the current group: its number, or -1 over its
 * limit (then the OOM hook ran). */
static int charge(uint64_t n)
{
  int g = current_group();
  if (g && group_limit[g] && group_used[g] + n > group_limit[g]) {
    qk_mem_oom(g);
    return -1;
  }
  group_used[g] += n;
  return g;
}

static void set_group(uint64_t pa, uint64_t n, int g)
{
  if (qk_page_owned(pa))
    memset(page_group + pa / QK_PAGE_SIZE, g, n);
}

static void uncharge(uint64_t pa, uint64_t n)
{
  if (!qk_page_owned(pa))
    return;
  uint8_t g = page_group[pa / QK_PAGE_SIZE];
  group_used[g] -= group_used[g] >= n ? n : group_used[g];
  if (g)
    memset(page_group + pa / QK_PAGE_SIZE, 0, n);
}

int qk_mem_charge_to(int group)
{
  int old = charge_override;
  charge_override = group;
  return old;
}

void qk_mem_set_limit(int group, uint64_t bytes)
{
  if (group > 0 && group < (int)QK_MEM_GROUPS)
    group_limit[group] = (bytes + QK_PAGE_SIZE - 1) / QK_PAGE_SIZE;
}

uint64_t qk_mem_group_bytes(int group)
{
  return group >= 0 && group < (int)QK_MEM_GROUPS ? group_used[group] * QK_PAGE_SIZE : 0;
}

__attribute__((weak)) void qk_mem_oom(int group)
{
  (void)group;
}

/* One page and whether it is already zero. */
static inline uint64_t take(bool *is_zero)
{
  if (blk[0]) {
    uint64_t pa = pop(0);
    free_pages--;
    *is_zero = false;
    return pa;
  }
  if (bump < range_end) {
    uint64_t pa = bump;
    bump += QK_PAGE_SIZE;
    free_pages--;
    *is_zero = true;
    return pa;
  }
  *is_zero = false;
  return take_block(1);
}

uint64_t qk_page_alloc(bool zero)
{
  bool z;
  int g = charge(1);
  if (g < 0)
    return 0;
  uint64_t pa = take(&z);
  if (!pa && qk_kmalloc_release())
    pa = take(&z);
  if (!pa) {
    group_used[g]--;
    return 0;
  }
  set_group(pa, 1, g);
  if (zero && !z)
    qk_phys_zero(pa, QK_PAGE_SIZE);
  return pa;
}

int qk_page_alloc_many(uint64_t *pas, size_t n, bool zero)
{
  if (n > free_pages && (!qk_kmalloc_release() || n > free_pages))
    return -QK_ENOMEM;
  int g = charge(n);
  if (g < 0)
    return -QK_ENOMEM;
  group_used[g] -= n; /* each page is charged as it is taken */
  /* Dirty pages are zeroed by the host in batches of merged
   * segments (16 here: small stack footprint). */
  struct qk_iov iov[16];
  unsigned ni = 0;
  bool native = qk_kernel_native();
  for (size_t i = 0; i < n; i++) {
    bool z;
    uint64_t pa = take(&z);
    if (!pa) { /* cannot happen while free_pages is right; never map page 0 */
      while (i--)
        qk_page_free(pas[i]);
      return -QK_ENOMEM;
    }
    group_used[g]++;
    set_group(pa, 1, g);
    pas[i] = pa;
    if (!zero || z)
      continue;
    if (native) {
      memset(qk_pa_to_va(pa), 0, QK_PAGE_SIZE);
      continue;
    }
    /* Freed pages come back in either order: merge both ways. */
    if (ni && iov[ni - 1].gpa + iov[ni - 1].len == pa) {
      iov[ni - 1].len += QK_PAGE_SIZE;
      continue;
    }
    if (ni && pa + QK_PAGE_SIZE == iov[ni - 1].gpa) {
      iov[ni - 1].gpa = pa;
      iov[ni - 1].len += QK_PAGE_SIZE;
      continue;
    }
    if (ni == QK_ARRAY_SIZE(iov)) {
      qk_qcall(QK_OP_ZERO, qk_va_to_pa(iov), ni, 0, 0, 0, 0);
      ni = 0;
    }
    iov[ni].gpa = pa;
    iov[ni].len = QK_PAGE_SIZE;
    ni++;
  }
  if (ni)
    qk_qcall(QK_OP_ZERO, qk_va_to_pa(iov), ni, 0, 0, 0, 0);
  return 0;
}

/* n contiguous pages: a freed block, else the bump pointer, else the
 * freed pages merged. */
static uint64_t contig(size_t n)
{
  const size_t gp = QK_HUGE_PAGE_SIZE / QK_PAGE_SIZE;
  if (n > free_pages)
    return 0;
  uint64_t pa = n <= gp ? take_block(n) : 0;
  if (pa)
    return pa;
  if (bump + n * QK_PAGE_SIZE > range_end || bump + n * QK_PAGE_SIZE < bump) {
    if (freed_since < n)
      return 0;
    pa = coalesce(n);
    if (n <= gp)
      return take_block(n);
    if (pa)
      free_pages -= n;
    return pa;
  }
  pa = bump;
  bump += n * QK_PAGE_SIZE;
  free_pages -= n;
  return pa;
}

uint64_t qk_page_alloc_contig(size_t n)
{
  if (n == 1)
    return qk_page_alloc(false);
  uint64_t pa = contig(n);
  if (!pa && qk_kmalloc_release()) /* kmalloc's cached blocks, to merge */
    pa = contig(n);
  return pa;
}

static uint64_t take_huge(bool *zero)
{
  if (!blk[HUGE_ORDER] && freed_since >= huge_retry &&
      QK_ALIGN_UP(bump, QK_HUGE_PAGE_SIZE) + QK_HUGE_PAGE_SIZE > range_end)
    coalesce(0);
  if (blk[HUGE_ORDER]) {
    uint64_t pa = pop(HUGE_ORDER);
    free_pages -= QK_HUGE_PAGE_SIZE / QK_PAGE_SIZE;
    *zero = false;
    return pa;
  }
  uint64_t a = QK_ALIGN_UP(bump, QK_HUGE_PAGE_SIZE);
  if (a + QK_HUGE_PAGE_SIZE > range_end || a < bump)
    return 0;
  /* The pages skipped for alignment stay free, as blocks. */
  push_run(bump / QK_PAGE_SIZE, a / QK_PAGE_SIZE);
  bump = a + QK_HUGE_PAGE_SIZE;
  free_pages -= QK_HUGE_PAGE_SIZE / QK_PAGE_SIZE;
  *zero = true;
  return a;
}

uint64_t qk_page_alloc_huge(bool *zero)
{
  const uint64_t n = QK_HUGE_PAGE_SIZE / QK_PAGE_SIZE;
  /* Over the limit, the caller falls back to 4 KiB pages, which charge
   * (and fail) one by one: no OOM kill for the 2 MiB attempt itself. */
  int g = current_group();
  if (g && group_limit[g] && group_used[g] + n > group_limit[g])
    return 0;
  uint64_t pa = take_huge(zero);
  if (pa) {
    group_used[g] += n;
    set_group(pa, n, g);
  }
  return pa;
}

bool qk_page_huge_available(void)
{
  return blk[HUGE_ORDER] || QK_ALIGN_UP(bump, QK_HUGE_PAGE_SIZE) + QK_HUGE_PAGE_SIZE <= range_end ||
         freed_since >= huge_retry; /* take_huge may merge some */
}

void qk_page_free_huge(uint64_t pa)
{
  if (!qk_page_owned(pa))
    return;
  uncharge(pa, QK_HUGE_PAGE_SIZE / QK_PAGE_SIZE);
  push(HUGE_ORDER, pa);
  free_pages += QK_HUGE_PAGE_SIZE / QK_PAGE_SIZE;
}

/* Frames of user pages shared read-only by fork count their extra
 * mappings in the metadata word (kmalloc's pages never reach here with a
 * non-zero word: it clears it before freeing). */
void qk_page_share(uint64_t pa)
{
  if (qk_page_owned(pa))
    qk_page_meta[pa / QK_PAGE_SIZE]++;
}

/* Frames the host loaded (the boot image) are not counted: any of them
 * may be mapped by several processes, so they count as shared. */
bool qk_page_shared(uint64_t pa)
{
  return !qk_page_owned(pa) || qk_page_meta[pa / QK_PAGE_SIZE] != 0;
}

void qk_page_free(uint64_t pa)
{
  if (!qk_page_owned(pa))
    return;
  if (qk_page_meta[pa / QK_PAGE_SIZE]) {
    qk_page_meta[pa / QK_PAGE_SIZE]--; /* another mapping still uses it */
    return;
  }
  uncharge(pa, 1);
  push(0, pa);
  free_pages++;
  freed_since++;
}
