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
