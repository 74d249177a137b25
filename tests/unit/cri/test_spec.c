/* Building the container process from a CRI config and an image config
 * (cri/ctr_spec.c): Kubernetes' command/args rules, env merging, exec size
 * limits, user and group resolution inside a root filesystem, mount checks,
 * and the writable-layer walk. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pods.h"

static char *const IMG_EP[] = {"/entry", "--flag", NULL};
static char *const IMG_CMD[] = {"serve", "--port=80", NULL};

static void assert_strv(char **got, const char *const *want)
{
  size_t i = 0;
  for (; want[i]; i++) {
    cr_assert_not_null(got[i], "missing element %zu (%s)", i, want[i]);
    cr_assert_str_eq(got[i], want[i]);
  }
  cr_assert_null(got[i], "extra element %s", got[i]);
}

Test(spec, argv_image_defaults)
{
  char **v = NULL;
  cr_assert_eq(cri_spec_argv(NULL, 0, NULL, 0, IMG_EP, IMG_CMD, &v, NULL), 0);
  assert_strv(v, (const char *const[]){"/entry", "--flag", "serve", "--port=80", NULL});
  cri_spec_strv_free(v);
}

Test(spec, argv_command_replaces_entrypoint_and_cmd)
{
  char *cmd[] = {"/bin/sh", "-c"}, *args[] = {"echo hi"};
  char **v = NULL;
  cr_assert_eq(cri_spec_argv(cmd, 2, args, 1, IMG_EP, IMG_CMD, &v, NULL), 0);
  assert_strv(v, (const char *const[]){"/bin/sh", "-c", "echo hi", NULL});
  cri_spec_strv_free(v);
  cr_assert_eq(cri_spec_argv(cmd, 1, NULL, 0, IMG_EP, IMG_CMD, &v, NULL), 0);
  assert_strv(v, (const char *const[]){"/bin/sh", NULL}); /* the image cmd is dropped */
  cri_spec_strv_free(v);
}

Test(spec, argv_args_replace_cmd_only)
{
  char *args[] = {"other"};
  char **v = NULL;
  cr_assert_eq(cri_spec_argv(NULL, 0, args, 1, IMG_EP, IMG_CMD, &v, NULL), 0);
  assert_strv(v, (const char *const[]){"/entry", "--flag", "other", NULL});
  cri_spec_strv_free(v);
  cr_assert_eq(cri_spec_argv(NULL, 0, args, 1, NULL, IMG_CMD, &v, NULL), 0);
  assert_strv(v, (const char *const[]){"other", NULL});
  cri_spec_strv_free(v);
}

Test(spec, argv_empty_is_refused)
{
  char **v = NULL;
  q_error *err = NULL;
  cr_assert_eq(cri_spec_argv(NULL, 0, NULL, 0, NULL, NULL, &v, &err), -EINVAL);
  cr_assert(strstr(q_error_msg(err), "no command"));
  q_error_free(&err);
}

Test(spec, env_merge_keeps_position)
{
  char *img[] = {"PATH=/bin", "HOME=/root", NULL};
  char *keys[] = {"HOME", "NEW", "PATH"}, *vals[] = {"/home/x", "1", "/usr/bin:/bin"};
  char **v = NULL;
  cr_assert_eq(cri_spec_env(img, keys, vals, 3, &v, NULL), 0);
  assert_strv(v, (const char *const[]){"PATH=/usr/bin:/bin", "HOME=/home/x", "NEW=1", NULL});
  cri_spec_strv_free(v);
  char *bad[] = {"A=B"};
  q_error *err = NULL;
  cr_assert_eq(cri_spec_env(NULL, bad, vals, 1, &v, &err), -EINVAL);
  q_error_free(&err);
  cr_assert_eq(cri_spec_env(NULL, NULL, NULL, 0, &v, NULL), 0);
  cr_assert_null(v[0]);
  cri_spec_strv_free(v);
}

Test(spec, exec_size_limits)
{
  char *small[] = {"a", "b", NULL};
  cr_assert_eq(cri_spec_check_size(small, small, NULL), 0);
  char *big = malloc(200 * 1024);
  memset(big, 'x', 200 * 1024 - 1);
  big[200 * 1024 - 1] = '\0';
  char *one[] = {big, NULL};
  q_error *err = NULL;
  cr_assert_eq(cri_spec_check_size(small, one, &err), -E2BIG);
  cr_assert(strstr(q_error_msg(err), "env entry 0"));
  q_error_free(&err);
  /* Many entries under the per-string limit, over 2 MiB together. */
  big[100 * 1024] = '\0';
  char *many[25];
  for (int i = 0; i < 24; i++)
    many[i] = big;
  many[24] = NULL;
  cr_assert_eq(cri_spec_check_size(many, NULL, &err), -E2BIG);
  q_error_free(&err);
  free(big);
}

static char root[64];

static void make_root(void)
{
  snprintf(root, sizeof(root), "/tmp/quark-spec-XXXXXX");
  cr_assert_not_null(mkdtemp(root));
  char p[128];
  snprintf(p, sizeof(p), "%s/etc", root);
  mkdir(p, 0755);
  snprintf(p, sizeof(p), "%s/etc/passwd", root);
  FILE *f = fopen(p, "w");
  fputs("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
        "app:x:1000:1001:app:/home/app:/bin/sh\nbroken line\n",
        f);
  fclose(f);
  snprintf(p, sizeof(p), "%s/etc/group", root);
  f = fopen(p, "w");
  fputs("root:x:0:\nappgrp:x:1001:\nwheel:x:10:root,app\nvideo:x:44:app\nstaff:x:50:\n", f);
  fclose(f);
}

static void remove_root(void)
{
  q_rm_rf(root, NULL);
}

Test(spec, user_by_name_with_groups, .init = make_root, .fini = remove_root)
{
  uint32_t uid, gid, *groups = NULL;
  size_t n = 0;
  cr_assert_eq(cri_spec_user(root, "app", &uid, &gid, &groups, &n, NULL), 0);
  cr_assert_eq(uid, 1000);
  cr_assert_eq(gid, 1001);
  cr_assert_eq(n, 2);
  cr_assert_eq(groups[0], 10);
  cr_assert_eq(groups[1], 44);
  free(groups);
}

Test(spec, user_ids_and_group_names, .init = make_root, .fini = remove_root)
{
  uint32_t uid, gid, *groups = NULL;
  size_t n = 0;
  cr_assert_eq(cri_spec_user(root, "1000:staff", &uid, &gid, &groups, &n, NULL), 0);
  cr_assert_eq(uid, 1000);
  cr_assert_eq(gid, 50);
  free(groups);
  /* A numeric user absent from passwd: gid 0, like runc. */
  cr_assert_eq(cri_spec_user(root, "4242", &uid, &gid, &groups, &n, NULL), 0);
  cr_assert_eq(uid, 4242);
  cr_assert_eq(gid, 0);
  cr_assert_eq(n, 0);
  free(groups);
  cr_assert_eq(cri_spec_user(root, "4242:77", &uid, &gid, &groups, &n, NULL), 0);
  cr_assert_eq(gid, 77);
  free(groups);
  cr_assert_eq(cri_spec_user(root, "", &uid, &gid, &groups, &n, NULL), 0);
  cr_assert_eq(uid, 0);
  free(groups);
}

Test(spec, unknown_user_or_group_is_refused, .init = make_root, .fini = remove_root)
{
  uint32_t uid, gid, *groups = NULL;
  size_t n = 0;
  q_error *err = NULL;
  cr_assert_eq(cri_spec_user(root, "ghost", &uid, &gid, &groups, &n, &err), -EINVAL);
  cr_assert(strstr(q_error_msg(err), "ghost"));
  q_error_free(&err);
  cr_assert_eq(cri_spec_user(root, "app:nogroup", &uid, &gid, &groups, &n, &err), -EINVAL);
  q_error_free(&err);
  free(groups);
}

Test(spec, passwd_symlink_stays_in_root, .init = make_root, .fini = remove_root)
{
  /* /etc/passwd pointing at the host's file must resolve inside the root. */
  char p[128];
  snprintf(p, sizeof(p), "%s/etc/passwd", root);
  unlink(p);
  cr_assert_eq(symlink("/../../../../etc/shadow-not-here", p), 0);
  uint32_t uid, gid, *groups = NULL;
  size_t n = 0;
  q_error *err = NULL;
  cr_assert_eq(cri_spec_user(root, "root", &uid, &gid, &groups, &n, &err), -EINVAL);
  q_error_free(&err);
  free(groups);
}

Test(spec, mounts)
{
  q_error *err = NULL;
  cr_assert_eq(cri_spec_check_mount("/data", "/tmp", NULL), 0);
  cr_assert_eq(cri_spec_check_mount("/a..b/c", "/tmp", NULL), 0);
  cr_assert_eq(cri_spec_check_mount("data", "/tmp", &err), -EINVAL);
  q_error_free(&err);
  cr_assert_eq(cri_spec_check_mount("/a/../etc", "/tmp", &err), -EINVAL);
  q_error_free(&err);
  cr_assert_eq(cri_spec_check_mount("/data/..", "/tmp", &err), -EINVAL);
  q_error_free(&err);
  cr_assert_eq(cri_spec_check_mount("/data", "tmp", &err), -EINVAL);
  q_error_free(&err);
  cr_assert_eq(cri_spec_check_mount("/data", "/nonexistent/quark", &err), -EINVAL);
  cr_assert(strstr(q_error_msg(err), "/nonexistent/quark"));
  q_error_free(&err);
}

Test(spec, du_counts_bytes_and_inodes, .init = make_root, .fini = remove_root)
{
  char p[128];
  snprintf(p, sizeof(p), "%s/big", root);
  FILE *f = fopen(p, "w");
  static const char kb[1000];
  for (int i = 0; i < 100; i++)
    fwrite(kb, 1, sizeof(kb), f);
  fclose(f);
  uint64_t bytes = 0, inodes = 0;
  cr_assert_eq(cri_spec_du(root, &bytes, &inodes), 0);
  cr_assert_geq(bytes, 100000);
  cr_assert_eq(inodes, 5); /* root, etc, passwd, group, big */
  cr_assert_lt(cri_spec_du("/nonexistent/quark", &bytes, &inodes), 0);
}

Test(spec, pid_mode_target_checks)
{
  static const char pod[] = "p1";
  struct cri_ctr t = {.id = "t1", .pod_id = "p1", .state = CRI_CTR_RUNNING};
  enum sbx_pid_ns m;
  q_error *err = NULL;
  cr_assert_eq(cri_spec_pid_mode(0, NULL, NULL, pod, &m, NULL), 0); /* POD, also unset */
  cr_assert_eq(m, SBX_PIDNS_POD);
  cr_assert_eq(cri_spec_pid_mode(1, NULL, NULL, pod, &m, NULL), 0);
  cr_assert_eq(m, SBX_PIDNS_CONTAINER);
  cr_assert_eq(cri_spec_pid_mode(3, "t1", &t, pod, &m, NULL), 0);
  cr_assert_eq(m, SBX_PIDNS_TARGET);
  cr_assert_eq(cri_spec_pid_mode(3, "", NULL, pod, &m, NULL), -EINVAL);
  cr_assert_eq(cri_spec_pid_mode(3, "nope", NULL, pod, &m, &err), -ENOENT);
  cr_assert(strstr(q_error_msg(err), "nope"));
  q_error_free(&err);
  cr_assert_eq(cri_spec_pid_mode(3, "t1", &t, "p2", &m, &err), -EINVAL);
  cr_assert(strstr(q_error_msg(err), "does not belong to sandbox p2"));
  q_error_free(&err);
  t.state = CRI_CTR_EXITED;
  cr_assert_eq(cri_spec_pid_mode(3, "t1", &t, pod, &m, &err), -ESRCH);
  cr_assert(strstr(q_error_msg(err), "not running - in state EXITED"));
  q_error_free(&err);
}
