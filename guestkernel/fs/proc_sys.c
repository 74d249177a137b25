/* /proc: the output buffer and the system-wide files that need no process
 * state (mounts, mountinfo, cpuinfo, meminfo). See proc.c for the rest. */
#include <qk/arch.h>
#include <qk/kernel.h>
#include <qk/mm.h>
#include <qk/sec.h>

#include <stdarg.h>

#include "proc_internal.h"

void pb_grow(struct pbuf *o, size_t need)
{
  if (o->oom || o->len + need + 1 <= o->cap)
    return;
  size_t cap = o->cap ? o->cap : 1024;
  while (cap < o->len + need + 1)
    cap *= 2;
  char *nb = cap <= BUF_MAX ? qk_kmalloc(cap) : NULL;
  if (!nb) {
    o->oom = true;
    return;
  }
  if (o->len)
    memcpy(nb, o->b, o->len);
  qk_kfree(o->b);
  o->b = nb;
  o->cap = cap;
}

void pb_mem(struct pbuf *o, const void *p, size_t n)
{
  pb_grow(o, n);
  if (o->oom)
    return;
  memcpy(o->b + o->len, p, n);
  o->len += n;
  o->b[o->len] = 0;
}

void pb_puts(struct pbuf *o, const char *s)
{
  pb_mem(o, s, strlen(s));
}

void pb_printf(struct pbuf *o, const char *fmt, ...)
{
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = qk_vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n < (int)sizeof(tmp)) {
    pb_mem(o, tmp, (size_t)n);
    return;
  }
  pb_grow(o, (size_t)n);
  if (o->oom)
    return;
  va_start(ap, fmt);
  qk_vsnprintf(o->b + o->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  o->len += (size_t)n;
}

void gen_mounts(struct pbuf *o)
{
  /* The rootfs served by the host (not "rootfs": df skips that name). */
  pb_puts(o, qk_sec_ro_root() ? "quarkfs / quarkfs ro,relatime 0 0\n"
                              : "quarkfs / quarkfs rw,relatime 0 0\n");
  pb_puts(o, "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n"
             "sysfs /sys sysfs ro,nosuid,nodev,noexec,relatime 0 0\n"
             "tmpfs /dev/shm tmpfs rw,nosuid,nodev 0 0\n");
}

/* The same mounts in mountinfo's format (ids, parent ids, major:minor as
 * stat reports them, root, mount point, options, optional fields, "-",
 * type, source, super options). */
void gen_mountinfo(struct pbuf *o)
{
  pb_puts(o, qk_sec_ro_root() ? "1 0 0:1 / / ro,relatime - quarkfs quarkfs ro\n"
                              : "1 0 0:1 / / rw,relatime - quarkfs quarkfs rw\n");
  pb_puts(o, "2 1 0:22 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
             "3 1 0:21 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro\n"
             "4 1 0:23 / /dev/shm rw,nosuid,nodev - tmpfs tmpfs rw\n");
}

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
  __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

void gen_cpuinfo(struct pbuf *o)
{
  uint32_t r[4], vendor[4] = {0};
  cpuid(0, 0, r);
  vendor[0] = r[1];
  vendor[1] = r[3];
  vendor[2] = r[2];
  char brand[49] = {0};
  cpuid(0x80000000u, 0, r);
  if (r[0] >= 0x80000004u)
    for (uint32_t i = 0; i < 3; i++) {
      uint32_t w[4];
      cpuid(0x80000002u + i, 0, w);
      memcpy(brand + 16 * i, w, 16);
    }
  const char *b = brand;
  while (*b == ' ')
    b++;
  cpuid(1, 0, r);
  uint32_t fam = (r[0] >> 8) & 15, model = (r[0] >> 4) & 15, step = r[0] & 15;
  if (fam == 15)
    fam += (r[0] >> 20) & 255;
  if (fam >= 6)
    model |= ((r[0] >> 16) & 15) << 4;
  static const char *const edx_names[32] = {
      "fpu", "vme",  "de",   "pse", "tsc",  "msr", "pae",   "mce", "cx8",     "apic", NULL,
      "sep", "mtrr", "pge",  "mca", "cmov", "pat", "pse36", NULL,  "clflush", NULL,   NULL,
      NULL,  "mmx",  "fxsr", "sse", "sse2", NULL,  "ht",    NULL,  NULL,      NULL,
  };
  static const char *const ecx_names[32] = {
      "pni", "pclmulqdq", NULL,    NULL,     NULL,     NULL,     NULL,     NULL,
      NULL,  "ssse3",     NULL,    NULL,     "fma",    "cx16",   NULL,     NULL,
      NULL,  "pcid",      NULL,    "sse4_1", "sse4_2", "x2apic", "movbe",  "popcnt",
      NULL,  "aes",       "xsave", NULL,     "avx",    "f16c",   "rdrand", "hypervisor",
  };
  uint32_t edx = r[3], ecx = r[2];
  uint32_t l7[4];
  cpuid(7, 0, l7);
  uint64_t khz = qk_boot->tsc_khz ? qk_boot->tsc_khz : 1000000;
  uint32_t n = qk_boot->vcpu_count ? qk_boot->vcpu_count : 1;
  for (uint32_t cpu = 0; cpu < n; cpu++) {
    pb_printf(o,
              "processor\t: %u\nvendor_id\t: %s\ncpu family\t: %u\nmodel\t\t: %u\n"
              "model name\t: %s\nstepping\t: %u\n",
              cpu, (const char *)vendor, fam, model, *b ? b : "Quark vCPU", step);
    pb_printf(o,
              "cpu MHz\t\t: %lu.%03lu\ncache size\t: 0 KB\nphysical id\t: 0\nsiblings\t: %u\n"
              "core id\t\t: %u\ncpu cores\t: %u\napicid\t\t: %u\ninitial apicid\t: %u\n"
              "fpu\t\t: yes\nfpu_exception\t: yes\ncpuid level\t: 13\nwp\t\t: yes\nflags\t\t:",
              khz / 1000, khz % 1000, n, cpu, n, cpu, cpu);
    for (int i = 0; i < 32; i++)
      if ((edx >> i & 1) && edx_names[i])
        pb_printf(o, " %s", edx_names[i]);
    pb_puts(o, " syscall nx lm");
    for (int i = 0; i < 32; i++)
      if ((ecx >> i & 1) && ecx_names[i])
        pb_printf(o, " %s", ecx_names[i]);
    if (l7[1] & (1u << 3))
      pb_puts(o, " bmi1");
    if (l7[1] & (1u << 5))
      pb_puts(o, " avx2");
    if (l7[1] & (1u << 8))
      pb_puts(o, " bmi2");
    if (l7[1] & (1u << 16))
      pb_puts(o, " avx512f");
    pb_printf(o,
              "\nbogomips\t: %lu.%02lu\nclflush size\t: 64\ncache_alignment\t: 64\n"
              "address sizes\t: 46 bits physical, 48 bits virtual\npower management:\n\n",
              khz / 500, (khz / 5) % 100);
  }
}

void gen_meminfo(struct pbuf *o)
{
  uint64_t total = qk_page_total_count() * 4, free = qk_page_free_count() * 4;
  if (total < free)
    total = free;
  uint64_t used = total - free;
  const struct {
    const char *k;
    uint64_t v;
  } rows[] = {
      {"MemTotal:", total},
      {"MemFree:", free},
      {"MemAvailable:", free},
      {"Buffers:", 0},
      {"Cached:", 0},
      {"SwapCached:", 0},
      {"Active:", used},
      {"Inactive:", 0},
      {"Active(anon):", used},
      {"Inactive(anon):", 0},
      {"Active(file):", 0},
      {"Inactive(file):", 0},
      {"Unevictable:", 0},
      {"Mlocked:", 0},
      {"SwapTotal:", 0},
      {"SwapFree:", 0},
      {"Dirty:", 0},
      {"Writeback:", 0},
      {"AnonPages:", used},
      {"Mapped:", 0},
      {"Shmem:", 0},
      {"KReclaimable:", 0},
      {"Slab:", 0},
      {"SReclaimable:", 0},
      {"SUnreclaim:", 0},
      {"KernelStack:", 0},
      {"PageTables:", 0},
      {"NFS_Unstable:", 0},
      {"Bounce:", 0},
      {"WritebackTmp:", 0},
      {"CommitLimit:", total},
      {"Committed_AS:", used},
      {"VmallocTotal:", 34359738367ull},
      {"VmallocUsed:", 0},
      {"VmallocChunk:", 0},
      {"Percpu:", 0},
      {"HugePages_Total:", ~0ull}, /* sentinel: the hugepage lines follow without kB */
  };
  for (size_t i = 0; i < QK_ARRAY_SIZE(rows); i++) {
    if (rows[i].v == ~0ull)
      break;
    pb_printf(o, "%-15s %8lu kB\n", rows[i].k, rows[i].v);
  }
  pb_puts(o,
          "HugePages_Total:       0\nHugePages_Free:        0\nHugePages_Rsvd:        0\n"
          "HugePages_Surp:        0\nHugepagesize:       2048 kB\nHugetlb:               0 kB\n");
}
