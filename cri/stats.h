/* Pod statistics from the pod's host cgroup (stats_rpc.c). Prefix:
 * cri_stats_. */
#ifndef QUARK_CRI_STATS_H
#define QUARK_CRI_STATS_H

#include <stdbool.h>
#include <stdint.h>

struct cri_host_stats {
  uint64_t cpu_ns;      /* cumulative CPU time */
  uint64_t usage;       /* memory charged to the cgroup */
  uint64_t working_set; /* usage - inactive file pages (as cAdvisor counts it) */
  uint64_t rss;         /* anonymous memory */
  uint64_t limit;       /* memory limit; 0: none */
  uint64_t faults, major_faults;
};

/* Parses the cgroup files' text (trailing newline optional): v1 cpu =
 * cpuacct.usage, usage = memory.usage_in_bytes, limit =
 * memory.limit_in_bytes, memstat = memory.stat (its total_* rows); v2 cpu =
 * cpu.stat (usage_usec), usage = memory.current, limit = memory.max ("max":
 * none), memstat = memory.stat. limit may be NULL. -EINVAL when cpu or
 * usage does not parse; missing memory.stat rows count as 0. */
int cri_stats_cgroup_parse(bool v2, const char *cpu, const char *usage, const char *limit,
                           const char *memstat, struct cri_host_stats *h);

/* One interface of /proc/<pid>/net/dev. */
struct cri_net_if {
  char name[32];
  uint64_t rx_bytes, rx_errors, tx_bytes, tx_errors;
};

/* Parses /proc/<pid>/net/dev text into at most max interfaces, loopback
 * left out; returns how many. */
size_t cri_stats_net_dev_parse(const char *text, struct cri_net_if *out, size_t max);

#endif
