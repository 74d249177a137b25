/* One booted guest (see guest.h): the boot sequence that `run` used to do
 * inline, so that pod mode can run several. */
#include "guest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86_64/boot.h"
#include "kvm/vm.h"
#include "qcall/qcall_host.h"

struct sbx_guest {
  struct sbx_vm *vm;
  struct sbx_qcall *qc;
  struct sbx_boot_result br;
  uint64_t tsc_created, tsc_prepared, tsc_run;
  struct qk_ctl_area *ctl;
};

static void on_guest_exit(void *ctx, int status)
{
  sbx_vm_stop(((struct sbx_guest *)ctx)->vm, status);
}

static void on_halt(void *ctx, unsigned idx, int stop_fd)
{
  sbx_qcall_wait(((struct sbx_guest *)ctx)->qc, idx, stop_fd);
}

int sbx_guest_create(const struct sbx_guest_config *cfg, struct sbx_guest **out, q_error **err)
{
  struct sbx_guest *g = calloc(1, sizeof *g);
  if (!g)
    return q_error_make(err, ENOMEM, "guest");
  int r = sbx_vm_create(&g->vm, cfg->mem_bytes, cfg->vcpus, err);
  if (r < 0)
    goto fail;
  g->tsc_created = sbx_rdtsc();
  /* A pod VM's memory in 4 KiB host pages (QUARK_POD_THP=1 keeps the huge
   * pages of sbx_vm_create): an idle busybox pod touches parts of four
   * 2 MiB regions, 8.0 MiB of huge pages for 4.1 MiB used (pods bench: PSS
   * 9.3 -> 5.5 MiB). The price is one host fault per 4 KiB the guest first
   * touches instead of one per 2 MiB (a shell growing a 60 MB string: 22.8
   * and 24.2 s against 22.2 and 22.6 s, within this host's noise). */
  const char *thp = getenv("QUARK_POD_THP");
  if (cfg->pod_vm && !(thp && *thp == '1')) {
    void *all = sbx_gpa(sbx_vm_mem(g->vm), 0, cfg->mem_bytes);
    if (all)
      (void)madvise(all, cfg->mem_bytes, MADV_NOHUGEPAGE);
  }
  struct sbx_boot_config bc = {
      .kernel_path = cfg->kernel,
      .rootfd = cfg->rootfd,
      .proc = {.argv = cfg->argv,
               .argc = cfg->argc,
               .envp = cfg->envp,
               .envc = cfg->envc,
               .cwd = cfg->cwd,
               .uid = cfg->uid,
               .gid = cfg->gid},
      .hostname = cfg->hostname,
      .kernel_worker = cfg->kernel_worker,
  };
  /* A pod VM boots with a built-in pause() loop as its boot process, not
   * the first container's program: nothing to load, and the scheduler then
   * serves the control commands in the kernel worker (CPL 3) instead of
   * the boot context, whose ring 0 this host emulates (~1 us an
   * instruction; the first CREATE took ~80,000 of them, ~250 ms). */
  static const char *const idle_argv[] = {"quark-pod-idle"};
  if (cfg->pod_vm) {
    bc.proc =
        (struct sbx_proc_spec){.argv = idle_argv, .argc = 1, .cwd = "/", .builtin_idle = true};
  }
  if ((r = sbx_boot_prepare(g->vm, &bc, &g->br, err)) < 0)
    goto fail;
  if (cfg->pod_vm) {
    /* The control area at the top of guest memory, out of the guest's free
     * range; containers come through the channel. */
    uint64_t size = sizeof(struct qk_ctl_area);
    uint64_t gpa = (g->br.bi->mem_size - size) & ~(uint64_t)4095;
    if (gpa <= g->br.bi->free_start || !(g->ctl = sbx_gpa(sbx_vm_mem(g->vm), gpa, size))) {
      r = q_error_make(err, ENOMEM, "pod control area");
      goto fail;
    }
    /* Guest memory is fresh anonymous memory (zero): only the header pages
     * are written. The area sits alone in the top 2 MiB of guest memory,
     * which MADV_HUGEPAGE would back with a whole huge page at the first
     * touch (+2 MiB of the idle pod's PSS for the few KiB used): 4 KiB
     * pages there. */
    uint64_t lo = gpa & ~((2ull << 20) - 1);
    void *top = sbx_gpa(sbx_vm_mem(g->vm), lo, g->br.bi->mem_size - lo);
    if (top && !((uintptr_t)top & 4095))
      (void)madvise(top, g->br.bi->mem_size - lo, MADV_NOHUGEPAGE);
    memset(g->ctl, 0, offsetof(struct qk_ctl_area, payload));
    g->ctl->magic = QK_CTL_MAGIC;
    g->ctl->version = QK_CTL_VERSION;
    g->br.bi->ctl_gpa = gpa;
    g->br.bi->free_end = gpa;
  }
  /* Security settings (jail/guest_sec.h): the seccomp program in pages
   * taken from the top of the guest's free range. */
  if (cfg->ngroups > QK_SEC_MAX_GROUPS || cfg->seccomp_len > QK_SEC_MAX_FILTER) {
    r = q_error_make(err, E2BIG, "%zu groups / %zu seccomp instructions: at most %u / %u",
                     cfg->ngroups, cfg->seccomp_len, QK_SEC_MAX_GROUPS, QK_SEC_MAX_FILTER);
    goto fail;
  }
  g->br.bi->sec_flags = cfg->sec_flags | (cfg->groups ? QK_SEC_GROUPS : 0);
  g->br.bi->sec_caps = cfg->caps;
  g->br.bi->sec_ngroups = (uint32_t)cfg->ngroups;
  if (cfg->ngroups)
    memcpy(g->br.bi->sec_groups, cfg->groups, cfg->ngroups * sizeof(uint32_t));
  if (cfg->seccomp_len) {
    uint64_t bytes = cfg->seccomp_len * 8ull;
    uint64_t gpa = (g->br.bi->free_end - bytes) & ~(uint64_t)4095;
    void *dst;
    if (gpa <= g->br.bi->free_start || !(dst = sbx_gpa(sbx_vm_mem(g->vm), gpa, bytes))) {
      r = q_error_make(err, ENOMEM, "seccomp program");
      goto fail;
    }
    memcpy(dst, cfg->seccomp, bytes);
    g->br.bi->sec_filter_gpa = gpa;
    g->br.bi->sec_filter_len = (uint32_t)cfg->seccomp_len;
    g->br.bi->free_end = gpa;
  }
  g->tsc_prepared = sbx_rdtsc();
  struct sbx_qcall_config qc = {
      .mem = sbx_vm_mem(g->vm),
      .rings_gpa = g->br.rings_gpa,
      .ring_count = g->br.ring_count,
      .root_fd = cfg->rootfd,
      .stdio = {cfg->stdio[0], cfg->stdio[1], cfg->stdio[2]},
      .pod_id = cfg->pod_id,
      .ctx = g,
      .on_exit = on_guest_exit,
      .sink_ctx = cfg->sink_ctx,
      .sink = cfg->sink,
      .ctl_ctx = cfg->ctl_ctx,
      .on_ctl_event = cfg->pod_vm ? cfg->on_ctl_event : NULL,
  };
  if ((r = sbx_qcall_create(&g->qc, &qc, err)) < 0)
    goto fail;
  if ((r = sbx_qcall_bind_stop(g->qc, sbx_vm_stop_fd(g->vm))) < 0) {
    r = q_error_make(err, -r, "qcall stop fd");
    goto fail;
  }
  for (unsigned i = 0; i < g->br.ring_count; i++) {
    int kfd = sbx_qcall_kick_fd(g->qc, i);
    if ((r = sbx_vm_add_ioeventfd(g->vm, QK_PORT_KICK, i, kfd, err)) < 0)
      goto fail;
    if (g->br.kick_gpa && (r = sbx_vm_add_mmio_ioeventfd(g->vm, g->br.kick_gpa, i, kfd, err)) < 0)
      goto fail;
    /* With the irqchip a halted vCPU stays in KVM: the worker's wake-up
     * write becomes QK_VECTOR_QCALL on that vCPU. */
    if (sbx_vm_has_lapic(g->vm) &&
        (r = sbx_vm_add_irqfd(g->vm, sbx_qcall_wake_fd(g->qc, i), i, QK_VECTOR_QCALL, err)) < 0)
      goto fail;
  }
  *out = g;
  return 0;
fail:
  sbx_guest_destroy(g);
  return r;
}

int sbx_guest_run(struct sbx_guest *g)
{
  q_error *err = NULL;
  if (sbx_qcall_start(g->qc, &err) < 0) {
    q_error_log(NULL, "%s", q_error_msg(err));
    q_error_free(&err);
    sbx_qcall_stop(g->qc);
    return SBX_EXIT_GUEST_FAILURE;
  }
  g->tsc_run = sbx_rdtsc();
  struct sbx_vm_hooks hooks = {.ctx = g, .on_halt = on_halt};
  int status = sbx_vm_run(g->vm, &hooks);
  sbx_qcall_stop(g->qc);
  return status;
}

void sbx_guest_stop(struct sbx_guest *g, int status)
{
  sbx_vm_stop(g->vm, status);
}

void sbx_guest_destroy(struct sbx_guest *g)
{
  if (!g)
    return;
  sbx_qcall_destroy(g->qc);
  sbx_vm_destroy(g->vm);
  free(g);
}

struct qk_ctl_area *sbx_guest_ctl(struct sbx_guest *g) { return g->ctl; }

int64_t sbx_guest_hfd_install(struct sbx_guest *g, int fd) { return sbx_qcall_hfd_install(g->qc, fd); }

void sbx_guest_wake_sleep(struct sbx_guest *g) { sbx_qcall_wake_sleep(g->qc); }

int64_t sbx_guest_hfd_close(struct sbx_guest *g, uint64_t h) { return sbx_qcall_hfd_close(g->qc, h); }

uint64_t sbx_guest_resident(const struct sbx_guest *g)
{
  struct sbx_mem *m = sbx_vm_mem(g->vm);
  size_t pages = m->size / 4096;
  /* One byte per 4 KiB page: 64 KiB of vector per 256 MiB, done in chunks. */
  enum { CHUNK = 1 << 16 };
  unsigned char vec[CHUNK];
  uint64_t resident = 0;
  for (size_t p = 0; p < pages; p += CHUNK) {
    size_t n = pages - p < CHUNK ? pages - p : CHUNK;
    if (mincore(m->base + p * 4096, n * 4096, vec) < 0)
      return 0;
    for (size_t i = 0; i < n; i++)
      resident += vec[i] & 1;
  }
  return resident * 4096;
}

void sbx_guest_write_stats(struct sbx_guest *g, FILE *f)
{
  uint64_t entry = g->br.bi->entry_tsc, t0 = sbx_vm_start_tsc(g->vm);
  if (entry > t0 && g->br.bi->tsc_khz) {
    double k = 1000.0 / (double)g->br.bi->tsc_khz;
    fprintf(f, "boot_to_first_instruction_us %.1f\n", (double)(entry - t0) * k);
    /* The phases: KVM VM + memslot + vCPUs; boot state (kernel, page
     * tables, ELF, boot info, vCPU registers); QCall set-up; first entry. */
    fprintf(f, "boot_vm_create_us %.1f\n", (double)(g->tsc_created - t0) * k);
    fprintf(f, "boot_state_us %.1f\n", (double)(g->tsc_prepared - g->tsc_created) * k);
    fprintf(f, "boot_qcall_setup_us %.1f\n", (double)(g->tsc_run - g->tsc_prepared) * k);
    fprintf(f, "boot_first_entry_us %.1f\n", (double)(entry - g->tsc_run) * k);
  }
  fprintf(f, "qcalls %llu\n", (unsigned long long)sbx_qcall_served(g->qc));
  fprintf(f, "qcalls_inline %llu\n", (unsigned long long)sbx_qcall_served_inline(g->qc));
  for (unsigned op = 0; op < SBX_QCALL_OPS; op++) /* per opcode (guestkernel/abi/qk_qcall.h) */
    if (sbx_qcall_served_op(g->qc, op))
      fprintf(f, "qcall_op_%u %llu\n", op, (unsigned long long)sbx_qcall_served_op(g->qc, op));
  fprintf(f, "host_boot_alloc_kib %llu\n", (unsigned long long)(g->br.host_alloc_bytes >> 10));
  sbx_vm_write_stats(g->vm, f);
}

uint64_t sbx_guest_cpu_ns(const struct sbx_guest *g)
{
  return sbx_vm_cpu_ns(g->vm);
}

/* qkernel.bin next to the binary: build tree (../guestkernel) or install (../lib/quark). */
void sbx_default_kernel(char *out, size_t size)
{
  const char *env = getenv("QUARK_KERNEL");
  if (env && *env) {
    snprintf(out, size, "%s", env);
    return;
  }
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash) {
      *slash = 0;
      static const char *const rel[] = {"/../guestkernel/qkernel.bin", "/../lib/quark/qkernel.bin"};
      for (size_t i = 0; i < Q_ARRAY_SIZE(rel); i++) {
        int w = snprintf(out, size, "%.*s%s", (int)(size - 64), self, rel[i]);
        if (w > 0 && (size_t)w < size && access(out, R_OK) == 0)
          return;
      }
    }
  }
  snprintf(out, size, "/usr/local/lib/quark/qkernel.bin");
}
