/* State store: persistence across reopen, crash leftovers, filters with the
 * CRI's semantics, and updates that must not half-apply. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "state/state.h"

static char root[64];

static void setup(void)
{
  strcpy(root, "/tmp/quark-state-XXXXXX");
  cr_assert_not_null(mkdtemp(root));
}

static void teardown(void)
{
  q_rm_rf(root, NULL);
}

static struct cri_state *open_store(void)
{
  struct cri_state *st = NULL;
  q_error *err = NULL;
  int r = cri_state_open(root, &st, &err);
  cr_assert_eq(r, 0, "%s", err ? q_error_msg(err) : "");
  return st;
}

static void make_pod(struct cri_pod *p, const char *name, enum cri_pod_state state, int64_t t,
                     const char *app)
{
  memset(p, 0, sizeof(*p));
  cr_assert_eq(q_random_id(p->id), 0);
  p->name = (char *)name;
  p->uid = "uid-1";
  p->ns = "default";
  p->attempt = 1;
  p->state = state;
  p->created_at = t;
  p->runtime_handler = "quark";
  cr_assert_eq(cri_kvs_set(&p->labels, "app", app), 0);
  cr_assert_eq(cri_kvs_set(&p->annotations, "note", "x=y"), 0);
}

static void make_ctr(struct cri_ctr *c, const char *pod_id, const char *name,
                     enum cri_ctr_state state, int64_t t, const char *tier)
{
  memset(c, 0, sizeof(*c));
  cr_assert_eq(q_random_id(c->id), 0);
  strcpy(c->pod_id, pod_id);
  c->name = (char *)name;
  c->state = state;
  c->created_at = t;
  c->image = "busybox:latest";
  cr_assert_eq(cri_kvs_set(&c->labels, "tier", tier), 0);
}

TestSuite(state, .init = setup, .fini = teardown);

Test(state, persists_and_reloads)
{
  struct cri_state *st = open_store();
  struct cri_pod p;
  make_pod(&p, "web", CRI_POD_READY, 100, "web");
  cr_assert_eq(cri_state_add_pod(st, &p, NULL), 0);
  cr_assert_lt(cri_state_add_pod(st, &p, NULL), 0, "duplicate id accepted");
  struct cri_ctr c;
  make_ctr(&c, p.id, "nginx", CRI_CTR_RUNNING, 200, "front");
  c.exit_code = 3;
  c.ext = json_pack("{s:s}", "SandboxSocket", "/run/x.sock");
  cr_assert_eq(cri_state_add_ctr(st, &c, NULL), 0);
  cr_assert_eq(cri_state_set_pod_cidr(st, "10.88.0.0/16", NULL), 0);
  cri_state_close(st);

  st = open_store();
  struct cri_pod *got = NULL;
  cr_assert_eq(cri_state_get_pod(st, p.id, &got), 0);
  cr_assert_str_eq(got->name, "web");
  cr_assert_str_eq(got->ns, "default");
  cr_assert_eq(got->attempt, 1);
  cr_assert_eq(got->created_at, 100);
  cr_assert_str_eq(got->runtime_handler, "quark");
  cr_assert_str_eq(cri_kvs_get(&got->labels, "app"), "web");
  cr_assert_str_eq(cri_kvs_get(&got->annotations, "note"), "x=y");
  cri_pod_free(got);
  struct cri_ctr *gc = NULL;
  cr_assert_eq(cri_state_get_ctr(st, c.id, &gc), 0);
  cr_assert_str_eq(gc->pod_id, p.id);
  cr_assert_eq(gc->state, CRI_CTR_RUNNING);
  cr_assert_eq(gc->exit_code, 3);
  cr_assert_str_eq(gc->image, "busybox:latest");
  cr_assert_str_eq(json_string_value(json_object_get(gc->ext, "SandboxSocket")), "/run/x.sock");
  cri_ctr_free(gc);
  char *cidr = cri_state_get_pod_cidr(st);
  cr_assert_str_eq(cidr, "10.88.0.0/16");
  free(cidr);
  cri_state_close(st);
  cri_kvs_clear(&p.labels);
  cri_kvs_clear(&p.annotations);
  cri_kvs_clear(&c.labels);
  json_decref(c.ext);
}

Test(state, leftover_temp_and_junk_files)
{
  struct cri_state *st = open_store();
  struct cri_pod p;
  make_pod(&p, "a", CRI_POD_READY, 1, "a");
  cr_assert_eq(cri_state_add_pod(st, &p, NULL), 0);
  cri_state_close(st);

  /* A crash between create and rename leaves "<id>.json.tmp.<pid>" with a
   * half-written record; another file is junk that must not stop startup. */
  char path[256];
  snprintf(path, sizeof(path), "%s/pods/%s.json.tmp.4242", root, p.id);
  FILE *f = fopen(path, "w");
  fputs("{\"Id\":", f);
  fclose(f);
  char junk[256];
  snprintf(junk, sizeof(junk), "%s/pods/%064d.json", root, 7);
  f = fopen(junk, "w");
  fputs("not json", f);
  fclose(f);
  char rt[256];
  snprintf(rt, sizeof(rt), "%s/runtime.json.tmp.99", root);
  f = fopen(rt, "w");
  fclose(f);

  st = open_store();
  struct stat sb;
  cr_assert_eq(stat(path, &sb), -1, "temp file not cleaned");
  cr_assert_eq(stat(rt, &sb), -1, "runtime temp file not cleaned");
  struct cri_pod **v;
  size_t n;
  cr_assert_eq(cri_state_list_pods(st, NULL, &v, &n), 0);
  cr_assert_eq(n, 1, "the committed record survives, the junk is skipped");
  cr_assert_str_eq(v[0]->id, p.id);
  cri_pod_list_free(v, n);
  cri_state_close(st);
  cri_kvs_clear(&p.labels);
  cri_kvs_clear(&p.annotations);
}

Test(state, pod_filters)
{
  struct cri_state *st = open_store();
  struct cri_pod p[3];
  make_pod(&p[0], "a", CRI_POD_READY, 30, "web");
  make_pod(&p[1], "b", CRI_POD_NOTREADY, 10, "web");
  make_pod(&p[2], "c", CRI_POD_READY, 20, "db");
  for (int i = 0; i < 3; i++)
    cr_assert_eq(cri_state_add_pod(st, &p[i], NULL), 0);

  struct cri_pod **v;
  size_t n;
  cr_assert_eq(cri_state_list_pods(st, NULL, &v, &n), 0);
  cr_assert_eq(n, 3);
  cr_assert_str_eq(v[0]->name, "b", "ordered by creation time");
  cri_pod_list_free(v, n);

  struct cri_pod_filter f = {.has_state = true, .state = CRI_POD_READY};
  cr_assert_eq(cri_state_list_pods(st, &f, &v, &n), 0);
  cr_assert_eq(n, 2);
  cri_pod_list_free(v, n);

  struct cri_kvs sel = {0};
  cri_kvs_set(&sel, "app", "web");
  f.label_selector = &sel;
  cr_assert_eq(cri_state_list_pods(st, &f, &v, &n), 0);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(v[0]->name, "a");
  cri_pod_list_free(v, n);

  cri_kvs_set(&sel, "missing", "x");
  cr_assert_eq(cri_state_list_pods(st, &f, &v, &n), 0);
  cr_assert_eq(n, 0, "every selector pair must match");
  cri_pod_list_free(v, n);
  cri_kvs_clear(&sel);

  char prefix[8];
  memcpy(prefix, p[2].id, 7);
  prefix[7] = '\0';
  struct cri_pod_filter fid = {.id = prefix};
  cr_assert_eq(cri_state_list_pods(st, &fid, &v, &n), 0);
  cr_assert_geq(n, 1);
  bool found = false;
  for (size_t i = 0; i < n; i++)
    found |= strcmp(v[i]->id, p[2].id) == 0;
  cr_assert(found, "id prefix filter");
  cri_pod_list_free(v, n);

  char full[65];
  cr_assert_eq(cri_state_resolve_pod(st, p[2].id, full), 0);
  cr_assert_str_eq(full, p[2].id);
  cr_assert_eq(cri_state_resolve_pod(st, "", full), -ENOENT);
  cr_assert_eq(cri_state_resolve_pod(st, "zz", full), -ENOENT);
  cri_state_close(st);
  for (int i = 0; i < 3; i++) {
    cri_kvs_clear(&p[i].labels);
    cri_kvs_clear(&p[i].annotations);
  }
}

Test(state, container_filters)
{
  struct cri_state *st = open_store();
  struct cri_pod p1, p2;
  make_pod(&p1, "a", CRI_POD_READY, 1, "x");
  make_pod(&p2, "b", CRI_POD_READY, 2, "x");
  cr_assert_eq(cri_state_add_pod(st, &p1, NULL), 0);
  cr_assert_eq(cri_state_add_pod(st, &p2, NULL), 0);
  struct cri_ctr c[4];
  make_ctr(&c[0], p1.id, "c0", CRI_CTR_RUNNING, 1, "front");
  make_ctr(&c[1], p1.id, "c1", CRI_CTR_EXITED, 2, "back");
  make_ctr(&c[2], p2.id, "c2", CRI_CTR_RUNNING, 3, "back");
  make_ctr(&c[3], p2.id, "c3", CRI_CTR_CREATED, 4, "front");
  for (int i = 0; i < 4; i++)
    cr_assert_eq(cri_state_add_ctr(st, &c[i], NULL), 0);

  struct cri_ctr orphan;
  make_ctr(&orphan, "0000000000000000000000000000000000000000000000000000000000000000", "o",
           CRI_CTR_CREATED, 5, "x");
  cr_assert_eq(cri_state_add_ctr(st, &orphan, NULL), -ENOENT, "container of an unknown pod");

  struct cri_ctr **v;
  size_t n;
  struct cri_ctr_filter f = {.pod_id = p2.id};
  cr_assert_eq(cri_state_list_ctrs(st, &f, &v, &n), 0);
  cr_assert_eq(n, 2);
  cr_assert_str_eq(v[0]->name, "c2");
  cri_ctr_list_free(v, n);

  struct cri_kvs sel = {0};
  cri_kvs_set(&sel, "tier", "back");
  struct cri_ctr_filter f2 = {.has_state = true, .state = CRI_CTR_RUNNING, .label_selector = &sel};
  cr_assert_eq(cri_state_list_ctrs(st, &f2, &v, &n), 0);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(v[0]->name, "c2");
  cri_ctr_list_free(v, n);
  cri_kvs_clear(&sel);

  struct cri_ctr_filter f3 = {.id = c[3].id};
  cr_assert_eq(cri_state_list_ctrs(st, &f3, &v, &n), 0);
  cr_assert_eq(n, 1);
  cr_assert_eq(v[0]->state, CRI_CTR_CREATED);
  cri_ctr_list_free(v, n);
  cri_state_close(st);
  for (int i = 0; i < 4; i++)
    cri_kvs_clear(&c[i].labels);
  cri_kvs_clear(&orphan.labels);
  cri_kvs_clear(&p1.labels);
  cri_kvs_clear(&p1.annotations);
  cri_kvs_clear(&p2.labels);
  cri_kvs_clear(&p2.annotations);
}

static int to_exited(struct cri_ctr *c, void *arg)
{
  c->state = CRI_CTR_EXITED;
  c->exit_code = *(int *)arg;
  c->finished_at = 999;
  return 0;
}

static int refuse(struct cri_ctr *c, void *arg)
{
  c->state = CRI_CTR_UNKNOWN; /* must not stick: we fail */
  return -EBUSY;
}

Test(state, update_and_remove)
{
  struct cri_state *st = open_store();
  struct cri_pod p;
  make_pod(&p, "a", CRI_POD_READY, 1, "x");
  cr_assert_eq(cri_state_add_pod(st, &p, NULL), 0);
  struct cri_ctr c;
  make_ctr(&c, p.id, "c", CRI_CTR_RUNNING, 1, "t");
  cr_assert_eq(cri_state_add_ctr(st, &c, NULL), 0);
  int code = 137;
  cr_assert_eq(cri_state_update_ctr(st, c.id, to_exited, &code, NULL), 0);
  cr_assert_eq(cri_state_update_ctr(st, c.id, refuse, NULL, NULL), -EBUSY);
  cri_state_close(st);

  st = open_store();
  struct cri_ctr *g;
  cr_assert_eq(cri_state_get_ctr(st, c.id, &g), 0);
  cr_assert_eq(g->state, CRI_CTR_EXITED);
  cr_assert_eq(g->exit_code, 137);
  cr_assert_eq(g->finished_at, 999);
  cri_ctr_free(g);
  cr_assert_eq(cri_state_remove_ctr(st, c.id, NULL), 0);
  cr_assert_eq(cri_state_remove_ctr(st, c.id, NULL), 0, "removal is idempotent");
  cr_assert_eq(cri_state_remove_pod(st, p.id, NULL), 0);
  cri_state_close(st);

  st = open_store();
  struct cri_pod **v;
  size_t n;
  cr_assert_eq(cri_state_list_pods(st, NULL, &v, &n), 0);
  cr_assert_eq(n, 0);
  cri_pod_list_free(v, n);
  cr_assert_eq(cri_state_get_ctr(st, c.id, &g), -ENOENT);
  cri_state_close(st);
  cri_kvs_clear(&p.labels);
  cri_kvs_clear(&p.annotations);
  cri_kvs_clear(&c.labels);
}

Test(state, ids)
{
  char id[65];
  cr_assert_eq(q_random_id(id), 0);
  cr_assert(cri_state_valid_id(id));
  cr_assert(!cri_state_valid_id("abc"));
  id[3] = 'G';
  cr_assert(!cri_state_valid_id(id));
  cr_assert(!cri_state_valid_id(NULL));
}
