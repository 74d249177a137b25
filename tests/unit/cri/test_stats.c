/* cri_stats_cgroup_parse: pod stats from cgroup v1 and v2 file text (this
 * node is v1; the v2 formats are only checked here); cri_stats_net_dev_parse:
 * the pod network's interface counters from /proc/<pid>/net/dev. */
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

Test(stats, net_dev)
{
  static const char text[] =
      "Inter-|   Receive                                                |  Transmit\n"
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
      "drop fifo colls carrier compressed\n"
      "    lo:     840      10    0    0    0     0          0         0      840      10    0 "
      "   0    0     0       0          0\n"
      "  eth0:    1234       5    1    0    0     0          0         0     5678       7    2 "
      "   0    0     0       0          0\n"
      "  lo0:      1       1    0    0    0     0          0         0        2       1    0    0"
      "    0     0       0          0\n";
  struct cri_net_if ifs[4];
  cr_assert_eq(cri_stats_net_dev_parse(text, ifs, 4), 2, "lo left out, lo0 kept");
  cr_assert_str_eq(ifs[0].name, "eth0");
  cr_assert_eq(ifs[0].rx_bytes, 1234);
  cr_assert_eq(ifs[0].rx_errors, 1);
  cr_assert_eq(ifs[0].tx_bytes, 5678);
  cr_assert_eq(ifs[0].tx_errors, 2);
  cr_assert_str_eq(ifs[1].name, "lo0");
  cr_assert_eq(cri_stats_net_dev_parse(text, ifs, 1), 1, "at most max");
  cr_assert_eq(cri_stats_net_dev_parse("eth0: 1 2 3\n", ifs, 4), 0, "short line");
}
