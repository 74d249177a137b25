/* Unit tests: the checked guest-address translation and the host-side
 * page-table builder (walk back what it built). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86_64/pagetable.h"
#include "mem/guest_mem.h"

#define MEM (64ull << 20)

static struct sbx_mem mem;
static struct sbx_falloc fa;

static void setup(void)
{
  mem.size = MEM;
  mem.base = aligned_alloc(4096, MEM);
  cr_assert_not_null(mem.base);
  memset(mem.base, 0xa5, MEM); /* frames must come back zeroed */
  fa = (struct sbx_falloc){.mem = &mem, .next = 1 << 20, .end = MEM};
}

static void teardown(void) { free(mem.base); }

TestSuite(gpa, .init = setup, .fini = teardown);
TestSuite(pt, .init = setup, .fini = teardown);

Test(gpa, bounds)
{
  cr_assert_eq(sbx_gpa(&mem, 0, MEM), mem.base);
  cr_assert_eq(sbx_gpa(&mem, MEM - 1, 1), mem.base + MEM - 1);
  cr_assert_eq(sbx_gpa(&mem, MEM, 0), mem.base + MEM, "empty range at the end is valid");
  cr_assert_null(sbx_gpa(&mem, MEM, 1));
  cr_assert_null(sbx_gpa(&mem, MEM - 1, 2));
  cr_assert_null(sbx_gpa(&mem, MEM + 1, 0));
  cr_assert_null(sbx_gpa(&mem, 0, MEM + 1));
}

Test(gpa, overflow)
{
  cr_assert_null(sbx_gpa(&mem, UINT64_MAX, 1));
  cr_assert_null(sbx_gpa(&mem, 4096, UINT64_MAX));
  cr_assert_null(sbx_gpa(&mem, UINT64_MAX - 4095, 4096));
  cr_assert_null(sbx_gpa(&mem, 1ull << 63, 1ull << 63));
  for (uint64_t len = UINT64_MAX - 8; len != 0; len++)
    cr_assert_null(sbx_gpa(&mem, 16, len));
}

Test(gpa, falloc_zeroes_and_exhausts)
{
  uint64_t a = sbx_falloc_pages(&fa, 2);
  cr_assert_eq(a, 1 << 20);
  for (int i = 0; i < 8192; i++)
    cr_assert_eq(mem.base[a + i], 0);
  cr_assert_eq(sbx_falloc_pages(&fa, 0), 0);
  cr_assert_eq(sbx_falloc_pages(&fa, UINT64_MAX / 4096), 0);
  uint64_t left = (fa.end - fa.next) / 4096;
  cr_assert_neq(sbx_falloc_pages(&fa, left), 0);
  cr_assert_eq(sbx_falloc_pages(&fa, 1), 0);
}

Test(pt, map_and_walk_4k)
{
  struct sbx_pt pt;
  cr_assert_eq(sbx_pt_init(&pt, &mem, &fa), 0);
  cr_assert_eq(sbx_pt_map(&pt, 0x400000, 0x800000, 3 * 4096, SBX_PTE_U | SBX_PTE_W, false), 0);
  uint64_t pa, fl;
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(sbx_pt_walk(&pt, 0x400000 + i * 4096 + 123, &pa, &fl), 0);
    cr_assert_eq(pa, 0x800000 + i * 4096 + 123);
    cr_assert_eq(fl & (SBX_PTE_U | SBX_PTE_W | SBX_PTE_NX), SBX_PTE_U | SBX_PTE_W);
  }
  cr_assert_eq(sbx_pt_walk(&pt, 0x403000, &pa, &fl), -ENOENT);
  cr_assert_eq(sbx_pt_map(&pt, 0x401000, 0x900000, 4096, 0, false), -EEXIST, "present leaves are never overwritten");
  cr_assert_eq(sbx_pt_walk(&pt, 0x401000, &pa, NULL), 0);
  cr_assert_eq(pa, 0x801000);
}

Test(pt, map_2m_kernel_half)
{
  struct sbx_pt pt;
  cr_assert_eq(sbx_pt_init(&pt, &mem, &fa), 0);
  uint64_t dm = 0xffff888000000000ull;
  cr_assert_eq(sbx_pt_map(&pt, dm, 0, MEM, SBX_PTE_W | SBX_PTE_NX, true), 0);
  uint64_t pa, fl;
  cr_assert_eq(sbx_pt_walk(&pt, dm + 0x1234567, &pa, &fl), 0);
  cr_assert_eq(pa, 0x1234567);
  cr_assert(fl & SBX_PTE_NX);
  cr_assert_not(fl & SBX_PTE_U);
  cr_assert_eq(sbx_pt_walk(&pt, dm + MEM, &pa, &fl), -ENOENT);
}

Test(pt, rejects_bad_ranges)
{
  struct sbx_pt pt;
  cr_assert_eq(sbx_pt_init(&pt, &mem, &fa), 0);
  cr_assert_eq(sbx_pt_map(&pt, 0x1001, 0, 4096, 0, false), -EINVAL);
  cr_assert_eq(sbx_pt_map(&pt, 0x200000, 0x1000, 2 << 20, 0, true), -EINVAL);
  cr_assert_eq(sbx_pt_map(&pt, 0x0000800000000000ull, 0, 4096, 0, false), -EINVAL, "non-canonical");
  cr_assert_eq(sbx_pt_map(&pt, 0x00007ffffffff000ull, 0, 8192, 0, false), -EINVAL, "crosses the canonical hole");
  cr_assert_eq(sbx_pt_map(&pt, 0xfffffffffffff000ull, 0, 8192, 0, false), -EINVAL, "wraps");
  cr_assert_eq(sbx_pt_map(&pt, 0x1000, 1ull << 52, 4096, 0, false), -EINVAL, "pa beyond 52 bits");
  cr_assert_eq(sbx_pt_walk(&pt, 0x0000900000000000ull, NULL, NULL), -ENOENT);
}

Test(pt, effective_flags_and_nx)
{
  struct sbx_pt pt;
  cr_assert_eq(sbx_pt_init(&pt, &mem, &fa), 0);
  cr_assert_eq(sbx_pt_map(&pt, 0x10000, 0x20000, 4096, 0, false), 0);
  uint64_t fl;
  cr_assert_eq(sbx_pt_walk(&pt, 0x10000, NULL, &fl), 0);
  cr_assert_eq(fl & (SBX_PTE_U | SBX_PTE_W | SBX_PTE_NX), 0, "supervisor, read-only, executable");
}

Test(pt, share_upper_and_copy)
{
  struct sbx_pt k, p;
  cr_assert_eq(sbx_pt_init(&k, &mem, &fa), 0);
  cr_assert_eq(sbx_pt_fill_upper(&k), 0);
  cr_assert_eq(sbx_pt_init(&p, &mem, &fa), 0);
  cr_assert_eq(sbx_pt_share_upper(&p, &k), 0);
  /* A kernel mapping made after sharing is visible in the process table. */
  cr_assert_eq(sbx_pt_map(&k, 0xffffffff80000000ull, 0x200000, 4096, SBX_PTE_W, false), 0);
  uint64_t pa;
  cr_assert_eq(sbx_pt_walk(&p, 0xffffffff80000010ull, &pa, NULL), 0);
  cr_assert_eq(pa, 0x200010);
  cr_assert_eq(sbx_pt_walk(&p, 0x1000, &pa, NULL), -ENOENT, "lower half not shared");

  cr_assert_eq(sbx_pt_map(&p, 0x7000, 0x300000, 8192, SBX_PTE_U | SBX_PTE_W, false), 0);
  char msg[] = "across a page boundary";
  cr_assert_eq(sbx_pt_write(&p, 0x8000 - 5, msg, sizeof msg), 0);
  char back[sizeof msg];
  cr_assert_eq(sbx_pt_read(&p, 0x8000 - 5, back, sizeof back), 0);
  cr_assert_str_eq(back, msg);
  cr_assert_eq(memcmp(mem.base + 0x300000 + 4096 - 5, msg, 5), 0);
  cr_assert_eq(sbx_pt_write(&p, 0x9000 - 2, msg, 4), -ENOENT);
}

Test(pt, corrupt_table_is_an_error)
{
  struct sbx_pt pt;
  cr_assert_eq(sbx_pt_init(&pt, &mem, &fa), 0);
  uint64_t *root = (uint64_t *)(mem.base + pt.root);
  root[0] = 0x000ffffffffff000ull | SBX_PTE_P; /* points outside guest memory */
  cr_assert_eq(sbx_pt_walk(&pt, 0x1000, NULL, NULL), -EFAULT);
  cr_assert_eq(sbx_pt_map(&pt, 0x1000, 0, 4096, 0, false), -EFAULT);
  cr_assert_null(sbx_pt_leaf(&pt, 0x1000, true));
}

Test(pt, unmap_page_splits_a_huge_page)
{
  /* The kernel stacks' guard pages (boot.c): one 4 KiB hole in a 2 MiB
   * page of the direct map; the other 511 pages keep address and flags. */
  struct sbx_pt pt;
  cr_assert_eq(sbx_pt_init(&pt, &mem, &fa), 0);
  const uint64_t va = 0xffff888000000000ull, hole = va + (2ull << 20) + 0x11000;
  cr_assert_eq(sbx_pt_map(&pt, va, 0, 4ull << 20, SBX_PTE_W | SBX_PTE_NX | SBX_PTE_U, true), 0);
  cr_assert_eq(sbx_pt_unmap_page(&pt, hole), 0);
  uint64_t pa, fl;
  cr_assert_eq(sbx_pt_walk(&pt, hole + 5, &pa, &fl), -ENOENT);
  for (uint64_t off = 0; off < (4ull << 20); off += 4096) {
    if (va + off == hole)
      continue;
    cr_assert_eq(sbx_pt_walk(&pt, va + off + 7, &pa, &fl), 0, "page %#llx",
                 (unsigned long long)off);
    cr_assert_eq(pa, off + 7);
    cr_assert_eq(fl, SBX_PTE_P | SBX_PTE_W | SBX_PTE_U | SBX_PTE_NX);
  }
  /* A second hole in the split page needs no new table; unmapped or
   * misaligned addresses are refused. */
  uint64_t next = fa.next;
  cr_assert_eq(sbx_pt_unmap_page(&pt, hole + 4096), 0);
  cr_assert_eq(fa.next, next);
  cr_assert_eq(sbx_pt_walk(&pt, hole + 4096, &pa, NULL), -ENOENT);
  cr_assert_eq(sbx_pt_unmap_page(&pt, va + (8ull << 20)), -ENOENT);
  cr_assert_eq(sbx_pt_unmap_page(&pt, hole + 1), -EINVAL);
}
