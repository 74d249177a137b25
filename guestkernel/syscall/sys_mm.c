/* Memory syscalls: thin checks around mm/mm.c. */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/syscall.h>
#include <qk/task.h>

static inline struct qk_process *proc(void) { return qk_current()->proc; }

int64_t sys_mmap(uint64_t addr, uint64_t len, uint64_t prot, uint64_t flags, uint64_t fd,
                 uint64_t off)
{
  uint32_t type = flags & L_MAP_TYPE;
  if (type != L_MAP_PRIVATE && type != L_MAP_SHARED && type != L_MAP_SHARED_VALIDATE)
    return -QK_EINVAL;
  if (off & (QK_PAGE_SIZE - 1))
    return -QK_EINVAL;
  if (flags & L_MAP_HUGETLB)
    return -QK_EINVAL; /* no hugetlbfs pool */
  if (flags & L_MAP_ANONYMOUS)
    return qk_mm_map(proc()->mm, addr, len, (uint32_t)prot, (uint32_t)flags, -1, 0);

  struct qk_file *f = qk_fget_in(proc()->files, (int)fd);
  if (!f)
    return -QK_EBADF;
  int64_t r;
  uint32_t acc = f->flags & L_O_ACCMODE;
  int hfd = f->ops->mmap_hfd(f);
  if (acc == L_O_WRONLY || (f->flags & L_O_PATH))
    r = -QK_EACCES;
  else if (f->ops->mmap && type != L_MAP_PRIVATE && (prot & L_PROT_WRITE) && acc != L_O_RDWR)
    r = -QK_EACCES;
  else if (f->ops->mmap && off + len < off)
    r = -QK_EOVERFLOW;
  else if (f->ops->mmap) /* in-guest pages (tmpfs, memfd): shared or private */
    r = f->ops->mmap(f, addr, len, (uint32_t)prot, (uint32_t)flags, off);
  else if (type != L_MAP_PRIVATE && (prot & L_PROT_WRITE))
    r = acc == L_O_RDWR ? -QK_ENODEV : -QK_EACCES; /* no shared page cache with the host */
  else if (hfd < 0)
    r = -QK_ENODEV;
  else if (off + len < off)
    r = -QK_EOVERFLOW;
  else
    r = qk_mm_map(proc()->mm, addr, len, (uint32_t)prot, (uint32_t)flags, hfd, off);
  qk_fput(f);
  return r;
}

/* msync: shared in-guest pages are the file itself, private mappings
 * have nothing to write back, and there are no writable shared mappings
 * of host files: only the checks. */
int64_t sys_msync(uint64_t addr, uint64_t len, uint64_t flags, uint64_t a3, uint64_t a4,
                  uint64_t a5)
{
  (void)a3, (void)a4, (void)a5;
  if ((addr & (QK_PAGE_SIZE - 1)) || (flags & ~7ull) || ((flags & 1) && (flags & 4)))
    return -QK_EINVAL; /* MS_ASYNC 1, MS_INVALIDATE 2, MS_SYNC 4 */
  uint64_t end = addr + QK_ALIGN_UP(len, QK_PAGE_SIZE);
  if (end < addr)
    return -QK_ENOMEM;
  for (uint64_t va = addr; va < end;) {
    struct qk_vma *v = qk_vma_find(&proc()->mm->vmas, va);
    if (!v)
      return -QK_ENOMEM;
    va = v->end;
  }
  return 0;
}

int64_t sys_munmap(uint64_t addr, uint64_t len, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  return qk_mm_unmap(proc()->mm, addr, len);
}

int64_t sys_mprotect(uint64_t addr, uint64_t len, uint64_t prot, uint64_t a3, uint64_t a4,
                     uint64_t a5)
{
  return qk_mm_protect(proc()->mm, addr, len, (uint32_t)prot);
}

int64_t sys_brk(uint64_t addr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
  return qk_mm_brk(proc()->mm, addr);
}

int64_t sys_madvise(uint64_t addr, uint64_t len, uint64_t advice, uint64_t a3, uint64_t a4,
                    uint64_t a5)
{
  return qk_mm_advise(proc()->mm, addr, len, (int)advice);
}

int64_t sys_mremap(uint64_t old_addr, uint64_t old_len, uint64_t new_len, uint64_t flags,
                   uint64_t new_addr, uint64_t a5)
{
  return qk_mm_remap(proc()->mm, old_addr, old_len, new_len, (uint32_t)flags, new_addr);
}
