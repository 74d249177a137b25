/* Bring-up defaults: WEAK definitions that make qkernel.bin boot and run a
 * simple static program before the real kernel core exists.
 *
 * Mechanism: every symbol here is __attribute__((weak)). The guest kernel is
 * linked from all objects of arch/, qcall/, kernel/, mm/, fs/, task/,
 * syscall/ and lib/ (see guestkernel/CMakeLists.txt); a strong definition
 * anywhere in those folders replaces the default at link time, one symbol at
 * a time. Nothing else needs to change to take over a hook.
 *
 * What the defaults do:
 *  - qk_kernel_main: vCPU 0 enters the initial process the host loaded
 *    (boot info init_*); other vCPUs idle.
 *  - qk_syscall: write/writev/read on fds 0-2 through QCall, brk and
 *    anonymous mmap from a bump allocator over the free frames, arch_prctl
 *    FS, the id calls, exit/exit_group; everything else -ENOSYS.
 *  - qk_user_fault: logs the fault and exits with 128 + signal.
 *  - memcpy/memset/memmove/memcmp/strlen (the compiler may emit calls).
 * They never trust user pointers: user memory is reached by walking the
 * process page table, never by dereferencing a user address.
 */
#include <stddef.h>
#include <stdint.h>

#include "../../include/qk/arch.h"
#include "../../include/qk/qcall.h"
#include "../../abi/qk_errno.h"

#define WEAK __attribute__((weak))

#define PTE_P 1ull
#define PTE_W 2ull
#define PTE_U 4ull
#define PTE_PS 0x80ull
#define PTE_NX (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull

#define DEFAULT_MMAP_BASE 0x0000100000000000ull
#define PAGE_UP(x) (((x) + QK_PAGE_SIZE - 1) & ~(QK_PAGE_SIZE - 1))

WEAK void *memcpy(void *dst, const void *src, size_t n)
{
  char *d = dst;
  const char *s = src;
  while (n--)
    *d++ = *s++;
  return dst;
}

WEAK void *memmove(void *dst, const void *src, size_t n)
{
  char *d = dst;
  const char *s = src;
  if (d < s)
    while (n--)
      *d++ = *s++;
  else
    while (n--)
      d[n] = s[n];
  return dst;
}

WEAK void *memset(void *dst, int c, size_t n)
{
  char *d = dst;
  while (n--)
    *d++ = (char)c;
  return dst;
}

WEAK int memcmp(const void *a, const void *b, size_t n)
{
  const unsigned char *x = a, *y = b;
  for (; n; n--, x++, y++)
    if (*x != *y)
      return *x - *y;
  return 0;
}

WEAK size_t strlen(const char *s)
{
  size_t n = 0;
  while (s[n])
    n++;
  return n;
}

static struct {
  struct qk_boot_info *bi;
  uint64_t next_frame;
  uint64_t brk_start, brk;
  uint64_t mmap_next;
} bd;

static uint64_t frame_alloc(void)
{
  if (bd.next_frame + QK_PAGE_SIZE > bd.bi->free_end)
    return 0;
  uint64_t pa = bd.next_frame;
  bd.next_frame += QK_PAGE_SIZE;
  return pa; /* free frames are zero at boot and never reused here */
}

/* Entry for va in the current process's page table (4 KiB leaf), creating
 * intermediate tables if create; NULL if absent or a huge page. */
static uint64_t *pte_of(uint64_t va, int create)
{
  uint64_t *t = qk_pa_to_va(qk_arch_current_cr3());
  for (int shift = 39; shift > 12; shift -= 9) {
    uint64_t *e = &t[(va >> shift) & 511];
    if (!(*e & PTE_P)) {
      if (!create)
        return NULL;
      uint64_t f = frame_alloc();
      if (!f)
        return NULL;
      *e = f | PTE_P | PTE_W | PTE_U;
    } else if (*e & PTE_PS) {
      return NULL;
    }
    t = qk_pa_to_va(*e & PTE_ADDR);
  }
  return &t[(va >> 12) & 511];
}

static int map_anon(uint64_t start, uint64_t end)
{
  for (uint64_t va = start; va < end; va += QK_PAGE_SIZE) {
    uint64_t *pte = pte_of(va, 1);
    if (!pte)
      return -QK_ENOMEM;
    if (*pte & PTE_P)
      continue;
    uint64_t f = frame_alloc();
    if (!f)
      return -QK_ENOMEM;
    *pte = f | PTE_P | PTE_W | PTE_U | PTE_NX; /* not-present -> present: plain store */
  }
  return 0;
}

/* Physical address of a user byte, or -1 when unmapped or not user. */
static int64_t user_pa(uint64_t va, int write)
{
  if (va >= QK_USER_TOP)
    return -1;
  uint64_t *t = qk_pa_to_va(qk_arch_current_cr3());
  for (int shift = 39; shift >= 12; shift -= 9) {
    uint64_t e = t[(va >> shift) & 511];
    if (!(e & PTE_P) || !(e & PTE_U) || (write && !(e & PTE_W)))
      return -1;
    if (shift == 12 || (shift == 21 && (e & PTE_PS)))
      return (int64_t)((e & PTE_ADDR & ~((1ull << shift) - 1)) | (va & ((1ull << shift) - 1)));
    t = qk_pa_to_va(e & PTE_ADDR);
  }
  return -1;
}

/* Moves [va, va+len) of user memory to/from a host fd in one QCall. */
static int64_t user_io(uint32_t op, uint64_t hfd, uint64_t va, uint64_t len)
{
  struct qk_iov iov[16];
  unsigned n = 0;
  uint64_t done = 0;
  while (done < len && n < 16) {
    uint64_t cur = va + done;
    int64_t pa = user_pa(cur, op == QK_OP_PREADV);
    if (pa < 0)
      break;
    uint64_t chunk = QK_PAGE_SIZE - (cur & (QK_PAGE_SIZE - 1));
    if (chunk > len - done)
      chunk = len - done;
    if (n && iov[n - 1].gpa + iov[n - 1].len == (uint64_t)pa)
      iov[n - 1].len += chunk;
    else
      iov[n++] = (struct qk_iov){(uint64_t)pa, chunk};
    done += chunk;
  }
  if (len && !n)
    return -QK_EFAULT;
  return qk_qcall(op, hfd, qk_va_to_pa(iov), n, (uint64_t)-1, 0, 0);
}

static int copy_to_user(uint64_t va, const void *src, uint64_t len)
{
  const char *s = src;
  for (uint64_t i = 0; i < len; i++) {
    int64_t pa = user_pa(va + i, 1);
    if (pa < 0)
      return -QK_EFAULT;
    *(char *)qk_pa_to_va((uint64_t)pa) = s[i];
  }
  return 0;
}

static int64_t sys_writev(uint64_t fd, uint64_t iov_va, uint64_t cnt, uint32_t op)
{
  if (cnt > 1024)
    return -QK_EINVAL;
  int64_t total = 0;
  for (uint64_t i = 0; i < cnt; i++) {
    uint64_t e[2];
    for (int k = 0; k < 2; k++) {
      int64_t pa = user_pa(iov_va + i * 16 + (uint64_t)k * 8, 0);
      if (pa < 0 || ((uint64_t)pa & 7))
        return total ? total : -QK_EFAULT;
      e[k] = *(uint64_t *)qk_pa_to_va((uint64_t)pa);
    }
    if (!e[1])
      continue;
    int64_t r = user_io(op, fd, e[0], e[1]);
    if (r < 0)
      return total ? total : r;
    total += r;
    if ((uint64_t)r < e[1])
      break;
  }
  return total;
}

static __attribute__((noreturn)) void do_exit(int status)
{
  qk_qcall(QK_OP_EXIT, (uint64_t)(status & 0xff), 0, 0, 0, 0, 0);
  qk_arch_shutdown(status & 0xff);
}

WEAK void qk_syscall(struct qk_regs *r)
{
  uint64_t a0 = r->rdi, a1 = r->rsi, a2 = r->rdx, a3 = r->r10;
  int64_t ret = -QK_ENOSYS;
  switch (r->orig_rax) {
  case 0: /* read */
    ret = a0 == 0 ? user_io(QK_OP_PREADV, QK_HFD_STDIN, a1, a2) : -QK_EBADF;
    break;
  case 1: /* write */
    ret = (a0 == 1 || a0 == 2) ? user_io(QK_OP_PWRITEV, a0, a1, a2) : -QK_EBADF;
    break;
  case 20: /* writev */
    ret = (a0 == 1 || a0 == 2) ? sys_writev(a0, a1, a2, QK_OP_PWRITEV) : -QK_EBADF;
    break;
  case 9: { /* mmap: anonymous only */
    uint64_t len = PAGE_UP(a1);
    if (!(a3 & 0x20) || !len || (a3 & 0x10) || len > (1ull << 40)) {
      ret = -QK_ENOMEM;
      break;
    }
    uint64_t start = bd.mmap_next;
    ret = map_anon(start, start + len);
    if (!ret) {
      bd.mmap_next += len + QK_PAGE_SIZE;
      ret = (int64_t)start;
    }
    break;
  }
  case 10: /* mprotect */
  case 11: /* munmap */
  case 273: /* set_robust_list */
    ret = 0;
    break;
  case 12: /* brk */
    if (a0 > bd.brk && a0 < bd.brk_start + (1ull << 32)) {
      if (map_anon(PAGE_UP(bd.brk), PAGE_UP(a0)) == 0)
        bd.brk = a0;
    } else if (a0 >= bd.brk_start && a0 <= bd.brk) {
      bd.brk = a0;
    }
    ret = (int64_t)bd.brk;
    break;
  case 158: /* arch_prctl */
    if (a0 == 0x1002 && a1 < QK_USER_TOP) {
      qk_arch_set_fs_base(a1);
      ret = 0;
    } else if (a0 == 0x1003) {
      uint64_t v = qk_arch_get_fs_base();
      ret = copy_to_user(a1, &v, 8);
    } else {
      ret = -QK_EINVAL;
    }
    break;
  case 16: /* ioctl */
    ret = -QK_ENOTTY;
    break;
  case 39: /* getpid */
  case 186: /* gettid */
  case 218: /* set_tid_address */
    ret = 1;
    break;
  case 102: case 104: case 107: case 108: case 110: /* uid/gid/ppid */
    ret = 0;
    break;
  case 60: /* exit */
  case 231: /* exit_group */
    do_exit((int)a0);
  default:
    break;
  }
  r->rax = (uint64_t)ret;
}

WEAK void qk_user_fault(struct qk_regs *r, uint64_t cr2)
{
  static const char msg[] = "bring-up kernel: fatal user fault, see the sandbox log for registers";
  char buf[sizeof msg];
  memcpy(buf, msg, sizeof msg);
  qk_qcall(QK_OP_LOG, QK_LOG_ERROR, qk_va_to_pa(buf), sizeof msg - 1, 0, 0, 0);
  (void)cr2;
  int sig = 11;
  if (r->vector == 6)
    sig = 4;
  else if (r->vector == 1 || r->vector == 3)
    sig = 5;
  else if (r->vector == 0 || r->vector == 16 || r->vector == 19)
    sig = 8;
  do_exit(128 + sig);
}

WEAK void qk_interrupt(unsigned vector, struct qk_regs *r)
{
  (void)vector;
  (void)r;
}

WEAK __attribute__((noreturn)) void qk_kernel_main(struct qk_boot_info *bi, unsigned cpu)
{
  if (cpu != 0)
    for (;;)
      qk_arch_wait_for_interrupt();
  bd.bi = bi;
  bd.next_frame = bi->free_start;
  bd.brk_start = bd.brk = bi->init_brk;
  bd.mmap_next = DEFAULT_MMAP_BASE;
  qk_arch_switch_cr3(bi->init_cr3);
  struct qk_regs r;
  memset(&r, 0, sizeof r);
  r.rip = bi->init_entry;
  r.rsp = bi->init_sp;
  r.rflags = 0x202;
  qk_arch_return_to_user(&r);
}
