/* Checked access to user memory.
 *
 * Translation walks the current process's page tables in software and
 * checks present/user/writable at every level; a miss asks the address
 * space to populate the page (areas mapped lazily) and retries once. The
 * last level-1 table is cached per vCPU-independent (cr3, 2 MiB region)
 * key: consecutive pages of one buffer then cost one load each, which
 * matters where every ring-0 instruction is emulated. Whoever frees a
 * level-1 table calls qk_uaccess_forget first. */
#include <qk/arch.h>
#include <qk/kernel.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/task.h>

static struct {
  uint64_t cr3, region; /* region = va >> 21 */
  volatile uint64_t *l1;
  uint64_t flags; /* AND of the upper levels' P/W/U bits */
} cache;

bool qk_ring0_emulated; /* set at boot from host_flags */
#define HOST_COPY_MIN 512 /* ~60 emulated rep-movsq iterations: a QCall is cheaper */

void qk_uaccess_forget(void) { cache.l1 = NULL; }

/* The kernel buffer that passes for user memory (qk_uaccess_kbuf): its
 * own addresses, all at or above QK_USER_TOP, so the checks below reach it
 * only where they would otherwise answer -QK_EFAULT (no cost on the user
 * path). One at a time: the kernel core runs under one lock (qk/smp.h). */
static struct {
  uint64_t base, len;
} kwin;

void qk_uaccess_kbuf(const void *kva, size_t len)
{
  kwin.base = (uint64_t)kva;
  kwin.len = kva ? len : 0;
}

/* [va, va+n) inside the buffer (n may be 0). */
static bool in_kbuf(uint64_t va, uint64_t n)
{
  return va - kwin.base < kwin.len && n <= kwin.len - (va - kwin.base);
}

static int walk(uint64_t cr3, uint64_t va, bool write, uint64_t *pa)
{
  uint64_t need = QK_PTE_P | QK_PTE_U | (write ? QK_PTE_W : 0);
  if (cache.l1 && cache.cr3 == cr3 && cache.region == (va >> 21) && (cache.flags & need) == need) {
    uint64_t e = cache.l1[(va >> 12) & 511];
    if ((e & need) != need)
      return -QK_EFAULT;
    *pa = (e & QK_PTE_ADDR) | (va & 4095);
    return 0;
  }
  volatile uint64_t *t = qk_pa_to_va(cr3 & QK_PTE_ADDR);
  uint64_t acc = ~0ull;
  for (int shift = 39; shift >= 12; shift -= 9) {
    uint64_t e = t[(va >> shift) & 511];
    acc &= e;
    if ((acc & need) != need)
      return -QK_EFAULT;
    if (shift == 12) {
      *pa = (e & QK_PTE_ADDR) | (va & 4095);
      return 0;
    }
    if (shift == 21 && (e & QK_PTE_PS)) {
      *pa = (e & QK_PTE_ADDR & ~(QK_HUGE_PAGE_SIZE - 1)) | (va & (QK_HUGE_PAGE_SIZE - 1));
      return 0;
    }
    t = qk_pa_to_va(e & QK_PTE_ADDR);
    if (shift == 21) {
      cache.cr3 = cr3;
      cache.region = va >> 21;
      cache.l1 = t;
      cache.flags = acc & (QK_PTE_P | QK_PTE_U | QK_PTE_W);
    }
  }
  return -QK_EFAULT;
}

int qk_user_pa(uint64_t uva, bool write, uint64_t *pa)
{
  if (uva >= QK_USER_TOP) {
    if (!in_kbuf(uva, 1))
      return -QK_EFAULT;
    *pa = qk_va_to_pa((const void *)uva); /* kmalloc memory: physically contiguous */
    return 0;
  }
  struct qk_mm *mm = qk_current()->proc->mm;
  if (qk_likely(!walk(mm->cr3, uva, write, pa)))
    return 0;
  if (qk_mm_fault(mm, uva, write, false))
    return -QK_EFAULT;
  return walk(mm->cr3, uva, write, pa);
}

uint64_t qk_user_pa_range(uint64_t uva, size_t n, bool write)
{
  uint64_t pa;
  if (!n || ((uva & 4095) + n) > QK_PAGE_SIZE || qk_user_pa(uva, write, &pa))
    return 0;
  return pa;
}

void qk_phys_copy(uint64_t dst_pa, uint64_t src_pa, uint64_t len)
{
  if (len >= HOST_COPY_MIN && !qk_kernel_native())
    qk_qcall(QK_OP_COPY, dst_pa, src_pa, len, 0, 0, 0);
  else
    memcpy(qk_pa_to_va(dst_pa), qk_pa_to_va(src_pa), len);
}

void qk_phys_zero(uint64_t pa, uint64_t len)
{
  if (len >= HOST_COPY_MIN && !qk_kernel_native()) {
    struct qk_iov iov = { pa, len };
    qk_qcall(QK_OP_ZERO, qk_va_to_pa(&iov), 1, 0, 0, 0, 0);
  } else {
    memset(qk_pa_to_va(pa), 0, len);
  }
}

static int copy_user(uint64_t uva, void *kbuf, size_t n, bool to_user)
{
  uint64_t kpa = qk_va_to_pa(kbuf);
  if (uva >= QK_USER_TOP || n > QK_USER_TOP - uva) {
    if (!in_kbuf(uva, n))
      return -QK_EFAULT;
    uint64_t bpa = qk_va_to_pa((const void *)uva);
    qk_phys_copy(to_user ? bpa : kpa, to_user ? kpa : bpa, n);
    return 0;
  }
  while (n) {
    uint64_t pa;
    if (qk_user_pa(uva, to_user, &pa))
      return -QK_EFAULT;
    size_t chunk = QK_PAGE_SIZE - (uva & 4095);
    if (chunk > n)
      chunk = n;
    if (to_user)
      qk_phys_copy(pa, kpa, chunk);
    else
      qk_phys_copy(kpa, pa, chunk);
    uva += chunk;
    kpa += chunk;
    n -= chunk;
  }
  return 0;
}

int qk_copy_from_user(void *dst, uint64_t uva, size_t n)
{
  return copy_user(uva, dst, n, false);
}

int qk_copy_to_user(uint64_t uva, const void *src, size_t n)
{
  return copy_user(uva, (void *)src, n, true);
}

static inline uint64_t has_zero(uint64_t v)
{
  return (v - 0x0101010101010101ull) & ~v & 0x8080808080808080ull;
}

int64_t qk_strncpy_from_user(char *dst, uint64_t uva, size_t max)
{
  size_t len = 0;
  while (len < max) {
    uint64_t pa;
    if (qk_user_pa(uva + len, false, &pa))
      return -QK_EFAULT;
    const char *src = qk_pa_to_va(pa);
    size_t chunk = QK_PAGE_SIZE - ((uva + len) & 4095);
    if (chunk > max - len)
      chunk = max - len;
    size_t i = 0;
    /* Whole words while they hold no NUL, then bytes. */
    while (i + 8 <= chunk) {
      uint64_t w;
      __builtin_memcpy(&w, src + i, 8);
      if (has_zero(w))
        break;
      __builtin_memcpy(dst + len + i, &w, 8);
      i += 8;
    }
    for (; i < chunk; i++) {
      char c = src[i];
      dst[len + i] = c;
      if (!c)
        return (int64_t)(len + i);
    }
    len += chunk;
  }
  return -QK_ENAMETOOLONG;
}

/* The level-1 table mapping va's 2 MiB region if the upper levels allow
 * `need`, else NULL (absent, forbidden, or a 2 MiB page). */
static volatile uint64_t *l1_table(uint64_t cr3, uint64_t va, uint64_t need)
{
  if (cache.l1 && cache.cr3 == cr3 && cache.region == (va >> 21))
    return (cache.flags & need) == need ? cache.l1 : NULL;
  uint64_t pa;
  walk(cr3, va, false, &pa); /* refreshes the cache when a table exists */
  if (cache.l1 && cache.cr3 == cr3 && cache.region == (va >> 21) && (cache.flags & need) == need)
    return cache.l1;
  return NULL;
}

/* qk_uiov_add for the buffer of qk_uaccess_kbuf: one segment. */
static int64_t kbuf_add(struct qk_uiov *v, uint64_t va, uint64_t len)
{
  if (!len)
    return 0;
  if (!in_kbuf(va, 1))
    return -QK_EFAULT;
  uint64_t left = kwin.len - (va - kwin.base);
  if (len > left)
    len = left;
  if (len > QK_QCALL_MAX_IO - v->bytes)
    len = QK_QCALL_MAX_IO - v->bytes;
  if (!len)
    return 0; /* the list is full */
  uint64_t pa = qk_va_to_pa((const void *)va);
  if (v->n && v->seg[v->n - 1].gpa + v->seg[v->n - 1].len == pa) {
    v->seg[v->n - 1].len += len;
  } else if (v->n < QK_QCALL_MAX_IOV) {
    v->seg[v->n].gpa = pa;
    v->seg[v->n].len = len;
    v->n++;
  } else {
    return 0; /* the list is full */
  }
  v->bytes += len;
  return (int64_t)len;
}

int64_t qk_uiov_add(struct qk_uiov *v, uint64_t uva, uint64_t len, bool write)
{
  bool full = false;
  if (uva >= QK_USER_TOP)
    return kbuf_add(v, uva, len);
  if (len > QK_USER_TOP - uva)
    len = QK_USER_TOP - uva;
  if (len > QK_QCALL_MAX_IO - v->bytes)
    len = QK_QCALL_MAX_IO - v->bytes;
  uint64_t cr3 = qk_current()->proc->mm->cr3;
  uint64_t need = QK_PTE_P | QK_PTE_U | (write ? QK_PTE_W : 0);
  /* The open (last) segment lives in registers: a page that continues it
   * costs one PTE load and a few ALU ops, which is the whole per-page cost
   * of a big read or write. One table lookup per 2 MiB. */
  unsigned n = v->n;
  uint64_t cur = n ? v->seg[n - 1].len : 0;
  uint64_t next = n ? v->seg[n - 1].gpa + cur : ~0ull;
  uint64_t va = uva, stop = uva + len;
  while (va < stop) {
    uint64_t end = QK_ALIGN_DOWN(va, QK_HUGE_PAGE_SIZE) + QK_HUGE_PAGE_SIZE;
    if (end > stop)
      end = stop;
    volatile uint64_t *l1 = l1_table(cr3, va, need);
    while (va < end) {
      if (l1 && !(va & 4095) && n) {
        /* Whole pages that continue the open segment: the hot loop. */
        volatile uint64_t *pte = &l1[(va >> 12) & 511];
        uint64_t c = cur, nx = next, a = va;
        while (end - a >= QK_PAGE_SIZE) {
          uint64_t e = *pte;
          if ((e & need) != need || (e & QK_PTE_ADDR) != nx)
            break;
          c += QK_PAGE_SIZE;
          nx += QK_PAGE_SIZE;
          a += QK_PAGE_SIZE;
          pte++;
        }
        cur = c;
        next = nx;
        va = a;
        if (va >= end)
          break;
      }
      uint64_t pa, chunk;
      uint64_t e = l1 ? l1[(va >> 12) & 511] : 0;
      if (qk_likely((e & need) == need)) {
        pa = (e & QK_PTE_ADDR) | (va & 4095);
        chunk = QK_PAGE_SIZE - (va & 4095);
      } else {
        /* Not mapped yet (lazy area), a 2 MiB page, or forbidden. */
        if (qk_user_pa(va, write, &pa))
          goto out;
        l1 = l1_table(cr3, va, need);
        /* No table after a successful walk: a 2 MiB page, contiguous up
         * to the granule's end. */
        chunk = l1 ? QK_PAGE_SIZE - (va & 4095) : end - va;
      }
      if (chunk > end - va)
        chunk = end - va;
      if (pa == next) {
        cur += chunk;
      } else {
        if (n == QK_QCALL_MAX_IOV) {
          full = true;
          goto out;
        }
        if (n)
          v->seg[n - 1].len = cur;
        v->seg[n].gpa = pa;
        n++;
        cur = chunk;
      }
      next = pa + chunk;
      va += chunk;
    }
  }
out:
  if (n)
    v->seg[n - 1].len = cur;
  v->n = n;
  uint64_t done = va - uva;
  if (!done && len && !full)
    return -QK_EFAULT;
  v->bytes += done;
  return (int64_t)done;
}
