#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "quark/common.h"

static char tmpdir[] = "/tmp/quark-common-XXXXXX";

static void setup(void) { cr_assert_not_null(mkdtemp(tmpdir)); }
static void teardown(void) { q_rm_rf(tmpdir, NULL); }

TestSuite(common, .init = setup, .fini = teardown);

Test(common, error_wraps_context)
{
  q_cleanup_error q_error *err = NULL;
  int r = q_error_make(&err, ENOENT, "open %s", "x");
  cr_assert_eq(r, -ENOENT);
  q_error_wrap(&err, "load config");
  cr_assert_str_eq(q_error_msg(err), "load config: open x: No such file or directory");
}

Test(common, atomic_write_replaces_and_leaves_no_temp)
{
  char path[256];
  snprintf(path, sizeof(path), "%s/a/b/file", tmpdir);
  char dir[256];
  snprintf(dir, sizeof(dir), "%s/a/b", tmpdir);
  cr_assert_eq(q_mkdir_p(dir, 0755, NULL), 0);
  cr_assert_eq(q_write_file_atomic(path, "one", 3, 0600, NULL), 0);
  cr_assert_eq(q_write_file_atomic(path, "two!", 4, 0600, NULL), 0);
  char *data = NULL;
  size_t len = 0;
  cr_assert_eq(q_read_file(path, 1024, &data, &len, NULL), 0);
  cr_assert_eq(len, 4);
  cr_assert_str_eq(data, "two!");
  free(data);
  struct stat st;
  char tmp[300];
  snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
  cr_assert_eq(stat(tmp, &st), -1);
}

Test(common, read_file_limit)
{
  char path[256];
  snprintf(path, sizeof(path), "%s/big", tmpdir);
  cr_assert_eq(q_write_file_atomic(path, "0123456789", 10, 0600, NULL), 0);
  char *data = NULL;
  q_cleanup_error q_error *err = NULL;
  cr_assert_eq(q_read_file(path, 5, &data, NULL, &err), -EFBIG);
  cr_assert_null(data);
}

Test(common, rm_rf_does_not_follow_symlinks)
{
  char outside[256], inside[256], link[300];
  snprintf(outside, sizeof(outside), "%s/outside", tmpdir);
  snprintf(inside, sizeof(inside), "%s/tree/sub", tmpdir);
  cr_assert_eq(q_mkdir_p(outside, 0755, NULL), 0);
  cr_assert_eq(q_mkdir_p(inside, 0755, NULL), 0);
  char keep[300];
  snprintf(keep, sizeof(keep), "%s/keep", outside);
  cr_assert_eq(q_write_file_atomic(keep, "k", 1, 0600, NULL), 0);
  snprintf(link, sizeof(link), "%s/link", inside);
  cr_assert_eq(symlink(outside, link), 0);
  char tree[256];
  snprintf(tree, sizeof(tree), "%s/tree", tmpdir);
  cr_assert_eq(q_rm_rf(tree, NULL), 0);
  struct stat st;
  cr_assert_eq(stat(keep, &st), 0);
  cr_assert_eq(stat(tree, &st), -1);
}

Test(common, log_levels_parse)
{
  q_log_level l;
  cr_assert_eq(q_log_level_parse("trace", &l), 0);
  cr_assert_eq(l, Q_LOG_TRACE);
  cr_assert_eq(q_log_level_parse("Off", &l), 0);
  cr_assert_eq(l, Q_LOG_OFF);
  cr_assert_eq(q_log_level_parse("verbose", &l), -EINVAL);
}

Test(common, log_line_format)
{
  char path[256];
  snprintf(path, sizeof(path), "%s/log/q.log", tmpdir);
  cr_assert_eq(q_log_init(path, Q_LOG_INFO, "test", NULL), 0);
  q_info("0123456789abcdef", "hello %d\nworld", 42);
  q_debug(NULL, "hidden");
  char *data = NULL;
  cr_assert_eq(q_read_file(path, 4096, &data, NULL, NULL), 0);
  cr_assert(strstr(data, "Info  test [0123456789ab] hello 42 world\n") != NULL, "got: %s", data);
  cr_assert(strstr(data, "hidden") == NULL);
  free(data);
  q_log_init(NULL, Q_LOG_INFO, "test", NULL);
}

Test(common, random_id_is_hex)
{
  char a[65], b[65];
  cr_assert_eq(q_random_id(a), 0);
  cr_assert_eq(q_random_id(b), 0);
  cr_assert_eq(strlen(a), 64);
  cr_assert_eq(strspn(a, "0123456789abcdef"), 64);
  cr_assert_str_neq(a, b);
}
