/* VMA list bookkeeping: insert/merge, remove/split, protect, gap search. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include <qk/kernel.h>
#include <qk/mm.h>

#define K 0x1000ull
#define RW 3u
#define RO 1u

/* Renders the list as "start-end:prot ..." in pages for compact asserts. */
static const char *dump(struct qk_vma_list *l)
{
  static char buf[512];
  size_t n = 0;
  unsigned count = 0;
  buf[0] = 0;
  for (struct qk_vma *v = l->head; v; v = v->next, count++) {
    if (v->next)
      cr_assert_leq(v->end, v->next->start, "sorted, disjoint");
    cr_assert_lt(v->start, v->end);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%llu-%llu:%u", n ? " " : "",
                          (unsigned long long)(v->start / K), (unsigned long long)(v->end / K),
                          v->prot);
  }
  cr_assert_eq(count, l->count, "count field");
  return buf;
}

static unsigned removed_pages;
static void on_remove(void *arg, const struct qk_vma *p)
{
  (void)arg;
  removed_pages += (unsigned)((p->end - p->start) / K);
}

Test(vma, insert_merges_equal_neighbours)
{
  struct qk_vma_list l = { 0 };
  cr_assert_eq(qk_vma_insert(&l, 10 * K, 20 * K, RW, QK_VMF_ANON), 0);
  cr_assert_eq(qk_vma_insert(&l, 30 * K, 40 * K, RW, QK_VMF_ANON), 0);
  cr_assert_str_eq(dump(&l), "10-20:3 30-40:3");
  cr_assert_eq(qk_vma_insert(&l, 20 * K, 30 * K, RW, QK_VMF_ANON), 0);
  cr_assert_str_eq(dump(&l), "10-40:3");
  cr_assert_eq(qk_vma_insert(&l, 40 * K, 50 * K, RO, QK_VMF_ANON), 0);
  cr_assert_eq(qk_vma_insert(&l, 5 * K, 10 * K, RW, QK_VMF_FILE), 0);
  cr_assert_str_eq(dump(&l), "5-10:3 10-40:3 40-50:1");
  cr_assert_not_null(qk_vma_find(&l, 39 * K));
  cr_assert_null(qk_vma_find(&l, 50 * K));
  cr_assert_null(qk_vma_find(&l, 4 * K));
  cr_assert(qk_vma_overlaps(&l, 49 * K, 60 * K));
  cr_assert_not(qk_vma_overlaps(&l, 50 * K, 60 * K));
  qk_vma_clear(&l);
  cr_assert_null(l.head);
}

Test(vma, remove_splits_and_reports_pieces)
{
  struct qk_vma_list l = { 0 };
  qk_vma_insert(&l, 10 * K, 20 * K, RW, QK_VMF_ANON);
  qk_vma_insert(&l, 30 * K, 40 * K, RO, QK_VMF_ANON);
  removed_pages = 0;
  cr_assert_eq(qk_vma_remove(&l, 12 * K, 14 * K, on_remove, NULL), 0);
  cr_assert_str_eq(dump(&l), "10-12:3 14-20:3 30-40:1");
  cr_assert_eq(removed_pages, 2);
  /* Across a hole and two areas. */
  cr_assert_eq(qk_vma_remove(&l, 15 * K, 35 * K, on_remove, NULL), 0);
  cr_assert_str_eq(dump(&l), "10-12:3 14-15:3 35-40:1");
  cr_assert_eq(removed_pages, 2 + 5 + 5);
  /* Nothing there: a no-op. */
  cr_assert_eq(qk_vma_remove(&l, 100 * K, 200 * K, on_remove, NULL), 0);
  cr_assert_eq(qk_vma_remove(&l, 0, 1000 * K, on_remove, NULL), 0);
  cr_assert_str_eq(dump(&l), "");
}

Test(vma, protect_splits_merges_and_rejects_holes)
{
  struct qk_vma_list l = { 0 };
  qk_vma_insert(&l, 10 * K, 20 * K, RW, QK_VMF_ANON);
  cr_assert_eq(qk_vma_protect(&l, 12 * K, 14 * K, RO), 0);
  cr_assert_str_eq(dump(&l), "10-12:3 12-14:1 14-20:3");
  cr_assert_eq(qk_vma_protect(&l, 12 * K, 14 * K, RW), 0);
  cr_assert_str_eq(dump(&l), "10-20:3");
  cr_assert_eq(qk_vma_protect(&l, 10 * K, 20 * K, 0), 0);
  cr_assert_str_eq(dump(&l), "10-20:0");
  qk_vma_insert(&l, 30 * K, 40 * K, RW, QK_VMF_ANON);
  cr_assert_eq(qk_vma_protect(&l, 15 * K, 35 * K, RO), -QK_ENOMEM, "hole in range");
  cr_assert_str_eq(dump(&l), "10-20:0 30-40:3");
  cr_assert_eq(qk_vma_protect(&l, 18 * K, 20 * K, RW), 0);
  cr_assert_eq(qk_vma_protect(&l, 30 * K, 32 * K, 0), 0);
  cr_assert_str_eq(dump(&l), "10-18:0 18-20:3 30-32:0 32-40:3");
  qk_vma_clear(&l);
}

Test(vma, gap_search_top_down)
{
  struct qk_vma_list l = { 0 };
  cr_assert_eq(qk_vma_find_gap(&l, 4 * K, 16 * K, 100 * K), 96 * K);
  qk_vma_insert(&l, 90 * K, 100 * K, RW, QK_VMF_ANON);
  qk_vma_insert(&l, 60 * K, 85 * K, RW, QK_VMF_ANON);
  cr_assert_eq(qk_vma_find_gap(&l, 4 * K, 16 * K, 100 * K), 86 * K, "the 5-page gap fits");
  cr_assert_eq(qk_vma_find_gap(&l, 6 * K, 16 * K, 100 * K), 54 * K);
  cr_assert_eq(qk_vma_find_gap(&l, 44 * K, 16 * K, 100 * K), 16 * K);
  cr_assert_eq(qk_vma_find_gap(&l, 45 * K, 16 * K, 100 * K), 0, "nothing fits");
  cr_assert_eq(qk_vma_find_gap(&l, 4 * K, 16 * K, 95 * K), 86 * K, "high inside an area");
  qk_vma_clear(&l);
}

Test(vma, count_is_bounded)
{
  struct qk_vma_list l = { 0 };
  /* Disjoint areas, inserted top-down so that each goes to the head of the
   * list (the walk is linear: keep the test fast). */
  unsigned i = 0;
  for (; i < 70000; i++) {
    uint64_t a = (uint64_t)(200000 - 2 * i) * K;
    if (qk_vma_insert(&l, a, a + K, RW, QK_VMF_ANON))
      break;
  }
  cr_assert_eq(i, 65530, "stops at vm.max_map_count");
  cr_assert_eq(l.count, 65530);
  /* Splitting needs a new area too: refused. */
  cr_assert_eq(qk_vma_protect(&l, l.head->start, l.head->start + K, RO), 0, "a whole area: no split");
  struct qk_vma_list one = { 0 };
  cr_assert_eq(qk_vma_insert(&one, 0, 4 * K, RW, QK_VMF_ANON), 0);
  one.count = 65530; /* as if full */
  cr_assert_eq(qk_vma_remove(&one, K, 2 * K, NULL, NULL), -QK_ENOMEM);
  one.count = 1;
  qk_vma_clear(&one);
  qk_vma_clear(&l);
}
