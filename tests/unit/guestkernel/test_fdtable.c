/* Descriptor tables: lowest-free allocation, dup2 replacement, limits,
 * close-on-exec bits and file reference counts. */
#include <criterion/criterion.h>

#include <qk/fs.h>
#include <qk/kernel.h>

static int released;
static void rel(struct qk_file *f)
{
  (void)f;
  released++;
}
static const struct qk_file_ops ops = { .release = rel };

Test(fdtable, lowest_free_and_close)
{
  struct qk_fdtable *t = qk_fdtable_new(1024);
  released = 0;
  for (int i = 0; i < 5; i++)
    cr_assert_eq(qk_fd_install(t, qk_file_new(&ops, 0, "/x"), 0, false), i);
  cr_assert_eq(qk_fd_close(t, 2), 0);
  cr_assert_eq(released, 1);
  cr_assert_eq(qk_fd_close(t, 2), -QK_EBADF);
  cr_assert_eq(qk_fd_close(t, -1), -QK_EBADF);
  cr_assert_eq(qk_fd_close(t, 1 << 30), -QK_EBADF);
  cr_assert_eq(qk_fd_install(t, qk_file_new(&ops, 0, NULL), 0, true), 2);
  cr_assert_eq(qk_fd_get_cloexec(t, 2), 1);
  cr_assert_eq(qk_fd_install(t, qk_file_new(&ops, 0, NULL), 0, false), 5);
  cr_assert_eq(qk_fd_install(t, qk_file_new(&ops, 0, NULL), 100, false), 100, "grows");
  cr_assert_eq(qk_fd_install(t, qk_file_new(&ops, 0, NULL), 3, false), 6);
  cr_assert_null(qk_fget_in(t, 7));
  cr_assert_null(qk_fget_in(t, -5));
  qk_fdtable_free(t);
  cr_assert_eq(released, 1 + 8);
}

Test(fdtable, refs_dup2_and_limits)
{
  struct qk_fdtable *t = qk_fdtable_new(8);
  released = 0;
  struct qk_file *f = qk_file_new(&ops, 0, "/f");
  cr_assert_eq(qk_fd_install(t, f, 0, false), 0);
  /* dup: a second descriptor on the same open file. */
  cr_assert_eq(qk_fd_install(t, qk_file_ref(f), 0, false), 1);
  cr_assert_eq(f->refs, 2);
  struct qk_file *g = qk_fget_in(t, 1);
  cr_assert_eq(g, f);
  cr_assert_eq(f->refs, 3);
  qk_fput(g);
  /* dup2 over fd 0 with another file releases nothing (f still at 1). */
  cr_assert_eq(qk_fd_install_at(t, qk_file_new(&ops, 0, NULL), 0, false), 0);
  cr_assert_eq(released, 0);
  cr_assert_eq(f->refs, 1);
  cr_assert_eq(qk_fd_close(t, 1), 0);
  cr_assert_eq(released, 1);
  struct qk_file *y = qk_file_new(&ops, 0, NULL);
  cr_assert_eq(qk_fd_install_at(t, y, 8, false), -QK_EBADF);
  qk_fput(y);
  for (int i = 1; i < 8; i++)
    cr_assert_eq(qk_fd_install(t, qk_file_new(&ops, 0, NULL), 0, false), i);
  struct qk_file *x = qk_file_new(&ops, 0, NULL);
  cr_assert_eq(qk_fd_install(t, x, 0, false), -QK_EMFILE);
  qk_fput(x);
  x = qk_file_new(&ops, 0, NULL);
  cr_assert_eq(qk_fd_install(t, x, 9, false), -QK_EMFILE);
  cr_assert_eq(qk_fd_install(t, x, -1, false), -QK_EINVAL);
  qk_fput(x);
  qk_fdtable_free(t);
}

/* fork's copy shares every open file (one reference each); exec closes the
 * close-on-exec ones; a file goes when its last table lets it go. */
Test(fdtable, dup_for_fork_and_close_on_exec)
{
  struct qk_fdtable *t = qk_fdtable_new(64);
  released = 0;
  struct qk_file *f0 = qk_file_new(&ops, 0, "/a"), *f1 = qk_file_new(&ops, 0, "/b");
  cr_assert_eq(qk_fd_install(t, f0, 0, false), 0);
  cr_assert_eq(qk_fd_install(t, f1, 0, true), 1);
  cr_assert_eq(qk_fd_install(t, qk_file_new(&ops, 0, NULL), 40, true), 40, "grown table");
  struct qk_fdtable *c = qk_fdtable_dup(t);
  cr_assert_not_null(c);
  cr_assert_eq(c->refs, 1);
  cr_assert_eq(f0->refs, 2);
  cr_assert_eq(f1->refs, 2);
  cr_assert_eq(qk_fd_get_cloexec(c, 1), 1);
  cr_assert_eq(qk_fd_install(c, qk_file_new(&ops, 0, NULL), 0, false), 2, "lowest free copied");
  qk_fdtable_close_on_exec(c);
  cr_assert_eq(qk_fd_get_cloexec(c, 1), -QK_EBADF);
  cr_assert_eq(qk_fd_get_cloexec(c, 40), -QK_EBADF);
  cr_assert_eq(qk_fd_get_cloexec(c, 0), 0);
  cr_assert_eq(released, 0, "the parent still holds 1 and 40");
  cr_assert_eq(f1->refs, 1);
  qk_fdtable_free(c);
  cr_assert_eq(released, 1, "the child's own file 2");
  cr_assert_eq(f0->refs, 1);
  qk_fdtable_free(t);
  cr_assert_eq(released, 4);
}
