/* WEAK defaults of the task-layer hooks of include/qk/ctl.h, for the kernel
 * that runs one process (the host-loaded boot process): no container can be
 * created or exec'd inside it, so those answer -ENOSYS, which the host
 * reports as such; stats report the page allocator's memory in use. The
 * task layer's strong definitions replace them at link time. */
#include <qk/ctl.h>
#include <qk/kernel.h>
#include <qk/mm.h>

#include "../abi/qk_errno.h"

__attribute__((weak)) int qk_container_create(uint32_t cid, struct qk_ctl_process *spec)
{
  (void)cid;
  (void)spec;
  return -QK_ENOSYS;
}

__attribute__((weak)) int qk_container_start(uint32_t cid)
{
  (void)cid;
  return -QK_ENOSYS;
}

__attribute__((weak)) int qk_container_signal(uint32_t cid, int signo)
{
  (void)cid;
  (void)signo;
  return -QK_ENOSYS;
}

__attribute__((weak)) int qk_exec_spawn(uint32_t cid, uint32_t xid, struct qk_ctl_process *spec)
{
  (void)cid;
  (void)xid;
  (void)spec;
  return -QK_ENOSYS;
}

__attribute__((weak)) int qk_exec_kill(uint32_t cid, uint32_t xid, int signo)
{
  (void)cid;
  (void)xid;
  (void)signo;
  return -QK_ENOSYS;
}

__attribute__((weak)) int qk_container_delete(uint32_t cid)
{
  (void)cid;
  return -QK_ENOSYS;
}

__attribute__((weak)) int qk_stats(uint32_t cid, struct qk_ctl_stats *out)
{
  if (cid != QK_CTL_POD)
    return -QK_ENOSYS;
  uint64_t free_bytes = qk_page_free_count() * QK_PAGE_SIZE;
  uint64_t total = qk_boot ? qk_boot->mem_size : 0;
  out->memory_bytes = total > free_bytes ? total - free_bytes : 0;
  out->cpu_ns = 0;
  out->processes = 1;
  return 0;
}

__attribute__((weak)) void qk_container_stdio_tick(void) {}

__attribute__((weak)) int qk_container_update(uint32_t cid, uint64_t mem_limit)
{
  (void)cid;
  (void)mem_limit;
  return -QK_ENOSYS;
}
