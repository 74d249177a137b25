/* Virtual memory areas of one address space: a sorted singly linked list of
 * non-overlapping [start, end) ranges. Pure bookkeeping (no page tables), so
 * that it is unit-tested on the host. A list is enough for the handful of
 * areas static programs create; neighbours with equal attributes are merged
 * to keep it short. */
#include <qk/kernel.h>
#include <qk/mm.h>

/* Linux's default vm.max_map_count: beyond it mmap, mprotect and munmap
 * splits fail with ENOMEM (and the list walks stay bounded). */
#define QK_VMA_MAX 65530u

static struct qk_vma *vma_new(struct qk_vma_list *l, uint64_t start, uint64_t end, uint32_t prot,
                              uint32_t flags)
{
  if (l->count >= QK_VMA_MAX)
    return NULL;
  struct qk_vma *v = qk_kmalloc(sizeof(*v));
  if (v) {
    v->start = start;
    v->end = end;
    v->prot = prot;
    v->flags = flags;
    v->next = NULL;
    v->ops = NULL;
    v->obj = NULL;
    v->pgoff = 0;
  }
  return v;
}

static void vma_free(struct qk_vma *v)
{
  if (v->obj)
    v->ops->put(v->obj);
  qk_kfree(v);
}

struct qk_vma *qk_vma_find(struct qk_vma_list *l, uint64_t addr)
{
  for (struct qk_vma *v = l->head; v && v->start <= addr; v = v->next)
    if (addr < v->end)
      return v;
  return NULL;
}

struct qk_vma *qk_vma_find_after(struct qk_vma_list *l, uint64_t addr)
{
  for (struct qk_vma *v = l->head; v; v = v->next)
    if (v->end > addr)
      return v;
  return NULL;
}

bool qk_vma_overlaps(struct qk_vma_list *l, uint64_t start, uint64_t end)
{
  struct qk_vma *v = qk_vma_find_after(l, start);
  return v && v->start < end;
}

/* Whether area a can absorb an area b that starts where a ends: equal
 * attributes; private file copies never; object areas when b continues
 * a's pages of the same object. */
static bool can_join(const struct qk_vma *a, const struct qk_vma *b)
{
  if (a->end != b->start || a->prot != b->prot || a->flags != b->flags || a->obj != b->obj)
    return false;
  if (a->obj)
    return a->pgoff + (a->end - a->start) / QK_PAGE_SIZE == b->pgoff;
  return !(a->flags & QK_VMF_FILE);
}

int qk_vma_insert(struct qk_vma_list *l, uint64_t start, uint64_t end, uint32_t prot,
                  uint32_t flags)
{
  return qk_vma_insert_obj(l, start, end, prot, flags, NULL, NULL, 0);
}

int qk_vma_insert_obj(struct qk_vma_list *l, uint64_t start, uint64_t end, uint32_t prot,
                      uint32_t flags, const struct qk_vmobj_ops *ops, void *obj, uint64_t pgoff)
{
  struct qk_vma **pp = &l->head, *prev = NULL;
  while (*pp && (*pp)->start < start) {
    prev = *pp;
    pp = &(*pp)->next;
  }
  struct qk_vma *next = *pp;
  struct qk_vma nv = {.start = start, .end = end, .prot = prot, .flags = flags, .ops = ops,
                      .obj = obj, .pgoff = pgoff};
  if (prev && can_join(prev, &nv)) {
    prev->end = end;
    if (next && can_join(prev, next)) {
      prev->end = next->end;
      prev->next = next->next;
      vma_free(next);
      l->count--;
    }
    return 0;
  }
  if (next && can_join(&nv, next)) {
    next->start = start;
    next->pgoff = pgoff;
    return 0;
  }
  struct qk_vma *v = vma_new(l, start, end, prot, flags);
  if (!v)
    return -QK_ENOMEM;
  if (obj) {
    v->ops = ops;
    v->obj = obj;
    v->pgoff = pgoff;
    ops->get(obj);
  }
  v->next = next;
  *pp = v;
  l->count++;
  return 0;
}

/* Splits the area at addr (strictly inside it) into two. */
static int split(struct qk_vma_list *l, struct qk_vma *v, uint64_t addr)
{
  struct qk_vma *n = vma_new(l, addr, v->end, v->prot, v->flags);
  if (!n)
    return -QK_ENOMEM;
  if (v->obj) {
    n->ops = v->ops;
    n->obj = v->obj;
    n->pgoff = v->pgoff + (addr - v->start) / QK_PAGE_SIZE;
    n->ops->get(n->obj);
  }
  n->next = v->next;
  v->end = addr;
  v->next = n;
  l->count++;
  return 0;
}

/* Makes start and end area boundaries (where an area covers them). Splits
 * that happened stay (harmless: equal neighbours). */
static int split_edges(struct qk_vma_list *l, uint64_t start, uint64_t end)
{
  struct qk_vma *v = qk_vma_find(l, start);
  if (v && v->start < start && split(l, v, start))
    return -QK_ENOMEM;
  v = qk_vma_find(l, end);
  if (v && v->start < end && split(l, v, end))
    return -QK_ENOMEM;
  return 0;
}

int qk_vma_remove(struct qk_vma_list *l, uint64_t start, uint64_t end,
                  void (*cb)(void *arg, const struct qk_vma *piece), void *arg)
{
  if (split_edges(l, start, end))
    return -QK_ENOMEM;
  struct qk_vma **pp = &l->head;
  while (*pp && (*pp)->start < end) {
    struct qk_vma *v = *pp;
    if (v->start >= start) {
      if (cb)
        cb(arg, v);
      *pp = v->next;
      vma_free(v);
      l->count--;
      continue;
    }
    pp = &v->next;
  }
  return 0;
}

int qk_vma_protect(struct qk_vma_list *l, uint64_t start, uint64_t end, uint32_t prot)
{
  /* The whole range must be covered without holes. */
  uint64_t at = start;
  for (struct qk_vma *v = qk_vma_find_after(l, start); v && at < end; v = v->next) {
    if (v->start > at)
      return -QK_ENOMEM;
    at = v->end;
  }
  if (at < end)
    return -QK_ENOMEM;
  if (split_edges(l, start, end))
    return -QK_ENOMEM;
  for (struct qk_vma *v = l->head; v && v->start < end; v = v->next)
    if (v->start >= start)
      v->prot = prot;
  /* Re-merge equal neighbours around and inside the range. */
  for (struct qk_vma *v = l->head; v && v->start <= end; v = v->next) {
    while (v->next && v->end == v->next->start && v->end >= start && v->next->start <= end &&
           can_join(v, v->next)) {
      struct qk_vma *n = v->next;
      v->end = n->end;
      v->next = n->next;
      vma_free(n);
      l->count--;
    }
  }
  return 0;
}

uint64_t qk_vma_find_gap(struct qk_vma_list *l, uint64_t len, uint64_t low, uint64_t high)
{
  if (!len || high < low || high - low < len)
    return 0;
  /* Walk the sorted list keeping the best (highest) fit below high. */
  uint64_t best = 0, gap_start = low;
  for (struct qk_vma *v = l->head;; v = v->next) {
    uint64_t gap_end = v ? v->start : high;
    if (gap_end > high)
      gap_end = high;
    if (gap_end > gap_start && gap_end - gap_start >= len)
      best = gap_end - len;
    if (!v || v->start >= high)
      break;
    if (v->end > gap_start)
      gap_start = v->end;
  }
  return best;
}

void qk_vma_clear(struct qk_vma_list *l)
{
  while (l->head) {
    struct qk_vma *v = l->head;
    l->head = v->next;
    vma_free(v);
  }
  l->count = 0;
}
