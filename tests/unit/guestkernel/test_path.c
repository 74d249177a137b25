/* Path joining and lexical normalisation (cwd strings, device names). */
#include <criterion/criterion.h>
#include <string.h>

#include <qk/fs.h>
#include <qk/kernel.h>

static void norm(const char *in, const char *want)
{
  char buf[256];
  strcpy(buf, in);
  int n = qk_path_normalize(buf);
  cr_assert_str_eq(buf, want, "normalize(%s) = %s", in, buf);
  cr_assert_eq(n, (int)strlen(want));
}

Test(path, normalize)
{
  norm("/", "/");
  norm("//", "/");
  norm("/a/b/c", "/a/b/c");
  norm("/a//b///c/", "/a/b/c");
  norm("/a/./b/.", "/a/b");
  norm("/a/b/..", "/a");
  norm("/a/b/../../..", "/");
  norm("/../x", "/x");
  norm("/a/../../b/./c/..", "/b");
  norm("/.hidden/..dots/...", "/.hidden/..dots/...");
  norm("/a/b/../c/./d/", "/a/c/d");
}

/* ".." at another process's root (walked through /proc/<pid>/root) stays
 * there; after /proc/<pid>/cwd the rest is the lookup's (kept as it is). */
Test(path, normalize_proc_links)
{
  norm("/proc/1/root/..", "/proc/1/root");
  norm("/proc/1/root/../../etc/./os-release", "/proc/1/root/etc/os-release");
  norm("/proc/self/root/a/../../b", "/proc/self/root/b");
  norm("/proc/thread-self/root/../x", "/proc/thread-self/root/x");
  norm("/proc/7/task/8/root/../x", "/proc/7/task/8/root/x");
  norm("/proc/./1/root/x/../../y", "/proc/1/root/y");
  norm("/proc/1/root/proc/2/root/../z", "/proc/1/root/proc/2/root/z");
  norm("/proc/1/cwd/../x", "/proc/1/cwd/../x");
  norm("/proc/1/cwd", "/proc/1/cwd");
  norm("/proc/1/root", "/proc/1/root");
  /* not links: plain lexical rules */
  norm("/proc/1/roots/../x", "/proc/1/x");
  norm("/proc/x1/root/../y", "/proc/x1/y");
  norm("/proc/1/fd/root/../y", "/proc/1/fd/y");
  norm("/a/proc/1/root/../y", "/a/proc/1/y");
  norm("/proc/1/task/root/..", "/proc/1/task");
}

Test(path, proc_link)
{
  const char *p = "/proc/12/root";
  cr_assert_eq(qk_path_proc_link(p, strlen(p)), QK_PATH_LINK_ROOT);
  p = "/proc/self/cwd";
  cr_assert_eq(qk_path_proc_link(p, strlen(p)), QK_PATH_LINK_CWD);
  p = "/proc/3/task/4/cwd";
  cr_assert_eq(qk_path_proc_link(p, strlen(p)), QK_PATH_LINK_CWD);
  p = "/proc/root";
  cr_assert_eq(qk_path_proc_link(p, strlen(p)), 0);
  p = "/proc/3/task/x/root";
  cr_assert_eq(qk_path_proc_link(p, strlen(p)), 0);
  p = "/proc/1234567890/root"; /* more digits than a pid */
  cr_assert_eq(qk_path_proc_link(p, strlen(p)), 0);
}

Test(path, join)
{
  char out[32];
  cr_assert_eq(qk_path_join(out, sizeof(out), "/home", "x/y"), 9);
  cr_assert_str_eq(out, "/home/x/y");
  cr_assert_eq(qk_path_join(out, sizeof(out), "/", "etc"), 4);
  cr_assert_str_eq(out, "/etc");
  cr_assert_eq(qk_path_join(out, sizeof(out), "/a/", "b"), 4);
  cr_assert_str_eq(out, "/a/b");
  cr_assert_eq(qk_path_join(out, sizeof(out), "/ignored", "/abs"), 4);
  cr_assert_str_eq(out, "/abs");
  cr_assert_eq(qk_path_join(out, 8, "/abcdef", "g"), -QK_ENAMETOOLONG);
  cr_assert_eq(qk_path_join(out, 9, "/abcdef", "g"), -QK_ENAMETOOLONG);
  cr_assert_eq(qk_path_join(out, 10, "/abcdef", "g"), 9);
}
