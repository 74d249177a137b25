/* Physical page allocator.
 *
 * Three sources, each O(1) and a handful of instructions (ring 0 is
 * expensive on our host): a bump pointer over pages that have never been
 * handed out (zero by the boot contract, and contiguous), a stack of freed
 * pages and a stack of freed 2 MiB chunks, both linked through their first
 * word (dirty). 2 MiB pages come from the chunk stack or the bump pointer;
 * when only chunks are left, a chunk is broken up for smaller requests. A
 * caller that needs zeroed pages gets bump pages for free; recycled pages
 * are zeroed in place where kernel code runs natively, else by the host in
 * one QCall per batch. Freed pages never merge back into chunks.
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
static uint64_t free_head;              /* pa of the first freed page, 0 if none */
static uint64_t huge_head;              /* first freed 2 MiB chunk, 0 if none */
static uint64_t free_pages;             /* pages available (bump + freed) */
static uint64_t total_pages;

void qk_page_init(uint64_t start, uint64_t end, uint64_t mem_size)
{
  start = QK_ALIGN_UP(start, QK_PAGE_SIZE);
  end = QK_ALIGN_DOWN(end, QK_PAGE_SIZE);
  uint64_t meta_bytes = QK_ALIGN_UP((mem_size / QK_PAGE_SIZE) * sizeof(uint32_t), QK_PAGE_SIZE);
  qk_page_meta = qk_pa_to_va(start);
  start += meta_bytes;
  page_group = qk_pa_to_va(start); /* zero by the boot contract, as the metadata */
  start += QK_ALIGN_UP(mem_size / QK_PAGE_SIZE, QK_PAGE_SIZE);
  range_start = start;
  range_end = end;
  bump = start;
  free_head = 0;
  total_pages = free_pages = end > start ? (end - start) / QK_PAGE_SIZE : 0;
}

bool qk_page_owned(uint64_t pa) { return pa >= range_start && pa < range_end; }

uint64_t qk_page_free_count(void) { return free_pages; }
uint64_t qk_page_total_count(void) { return total_pages; }

/* Breaks a free 2 MiB chunk into pages: the first `keep` stay taken (the
 * caller's), the rest go to the page list. Memory freed as 2 MiB pages
 * must serve small allocations too once nothing else is left. */
static uint64_t break_huge(size_t keep)
{
  uint64_t pa = huge_head;
  if (!pa)
    return 0;
  huge_head = *(uint64_t *)qk_pa_to_va(pa);
  for (size_t i = QK_HUGE_PAGE_SIZE / QK_PAGE_SIZE; i-- > keep;) {
    uint64_t p = pa + i * QK_PAGE_SIZE;
    *(uint64_t *)qk_pa_to_va(p) = free_head;
    free_head = p;
  }
  free_pages -= keep;
  return pa;
}

/* ---- accounting ---- */

static int current_group(void)
{
  if (charge_override >= 0)
    return charge_override;
  struct qk_percpu *pc = qk_arch_cpu_private();
  struct qk_task *t = pc ? pc->current : NULL;
  int cid = t && t->proc && t->proc->ns ? t->proc->ns->cid : -1;
  return cid >= 0 && cid + 1 < (int)QK_MEM_GROUPS ? cid + 1 : 0;
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
  if (free_head) {
    uint64_t pa = free_head;
    free_head = *(uint64_t *)qk_pa_to_va(pa);
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
  return break_huge(1);
}

uint64_t qk_page_alloc(bool zero)
{
  bool z;
  int g = charge(1);
  if (g < 0)
    return 0;
  uint64_t pa = take(&z);
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
  if (n > free_pages)
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

uint64_t qk_page_alloc_contig(size_t n)
{
  if (n == 1)
    return qk_page_alloc(false);
  if (bump + n * QK_PAGE_SIZE > range_end || bump + n * QK_PAGE_SIZE < bump)
    return n <= QK_HUGE_PAGE_SIZE / QK_PAGE_SIZE ? break_huge(n) : 0;
  uint64_t pa = bump;
  bump += n * QK_PAGE_SIZE;
  free_pages -= n;
  return pa;
}

static uint64_t take_huge(bool *zero)
{
  if (huge_head) {
    uint64_t pa = huge_head;
    huge_head = *(uint64_t *)qk_pa_to_va(pa);
    free_pages -= QK_HUGE_PAGE_SIZE / QK_PAGE_SIZE;
    *zero = false;
    return pa;
  }
  uint64_t a = QK_ALIGN_UP(bump, QK_HUGE_PAGE_SIZE);
  if (a + QK_HUGE_PAGE_SIZE > range_end || a < bump)
    return 0;
  /* The pages skipped for alignment stay free, on the 4 KiB list. */
  for (; bump < a; bump += QK_PAGE_SIZE) {
    *(uint64_t *)qk_pa_to_va(bump) = free_head;
    free_head = bump;
  }
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
  return huge_head || QK_ALIGN_UP(bump, QK_HUGE_PAGE_SIZE) + QK_HUGE_PAGE_SIZE <= range_end;
}

void qk_page_free_huge(uint64_t pa)
{
  if (!qk_page_owned(pa))
    return;
  uncharge(pa, QK_HUGE_PAGE_SIZE / QK_PAGE_SIZE);
  *(uint64_t *)qk_pa_to_va(pa) = huge_head;
  huge_head = pa;
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
  *(uint64_t *)qk_pa_to_va(pa) = free_head;
  free_head = pa;
  free_pages++;
}
