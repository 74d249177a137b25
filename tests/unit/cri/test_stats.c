/* cri_stats_cgroup_parse: pod stats from cgroup v1 and v2 file text (this
 * node is v1; the v2 formats are only checked here). */
#include <criterion/criterion.h>
#include <errno.h>

#include "stats.h"

static const char v1_stat[] = "cache 4096\nrss 1000\nrss_huge 0\npgfault 7\n"
                              "total_cache 8192\ntotal_rss 2097152\ntotal_rss_huge 0\n"
                              "total_pgfault 321\ntotal_pgmajfault 4\ntotal_inactive_file 1048576\n"
                              "total_active_file 4096\n";

Test(stats, cgroup_v1)
{
  struct cri_host_stats h;
  cr_assert_eq(
      cri_stats_cgroup_parse(false, "123456789\n", "5242880", "9223372036854771712", v1_stat, &h),
      0);
  cr_assert_eq(h.cpu_ns, 123456789);
  cr_assert_eq(h.usage, 5242880);
  cr_assert_eq(h.working_set, 5242880 - 1048576);
  cr_assert_eq(h.rss, 2097152, "total_rss, not rss or total_rss_huge");
  cr_assert_eq(h.faults, 321);
  cr_assert_eq(h.major_faults, 4);
  cr_assert_eq(h.limit, 0, "v1's page-rounded LONG_MAX is no limit");
  cr_assert_eq(cri_stats_cgroup_parse(false, "1", "10", "402653184", v1_stat, &h), 0);
  cr_assert_eq(h.limit, 402653184);
  cr_assert_eq(h.working_set, 0, "inactive file over usage: 0, not a wrap");
}

Test(stats, cgroup_v2)
{
  static const char cpu[] = "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n"
                            "nr_periods 0\nnr_throttled 0\nthrottled_usec 0";
  static const char st[] = "anon 3145728\nfile 1048576\nkernel_stack 16384\n"
                           "active_anon 0\ninactive_anon 3145728\nactive_file 0\n"
                           "inactive_file 524288\npgfault 99\npgmajfault 2\n";
  struct cri_host_stats h;
  cr_assert_eq(cri_stats_cgroup_parse(true, cpu, "4194304\n", "max\n", st, &h), 0);
  cr_assert_eq(h.cpu_ns, 2500000);
  cr_assert_eq(h.usage, 4194304);
  cr_assert_eq(h.working_set, 4194304 - 524288);
  cr_assert_eq(h.rss, 3145728);
  cr_assert_eq(h.faults, 99);
  cr_assert_eq(h.major_faults, 2);
  cr_assert_eq(h.limit, 0);
  cr_assert_eq(cri_stats_cgroup_parse(true, cpu, "4194304", "8388608", st, &h), 0);
  cr_assert_eq(h.limit, 8388608);
}

Test(stats, cgroup_bad_text)
{
  struct cri_host_stats h;
  cr_assert_eq(cri_stats_cgroup_parse(true, "user_usec 5\n", "1", NULL, "", &h), -EINVAL,
               "v2 cpu.stat without usage_usec");
  cr_assert_eq(cri_stats_cgroup_parse(false, "12x", "1", NULL, "", &h), -EINVAL);
  cr_assert_eq(cri_stats_cgroup_parse(false, "12", "", NULL, "", &h), -EINVAL);
  cr_assert_eq(cri_stats_cgroup_parse(false, "12", "7", NULL, "", &h), 0);
  cr_assert_eq(h.working_set, 7, "no memory.stat rows: nothing inactive");
}
