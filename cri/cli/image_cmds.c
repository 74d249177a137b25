/* `quark pull / images / rmi / import`.
 * pull and rmi go through quarkd's ImageService like any CRI client; while
 * PullImage runs, pull draws per-layer progress from the file the image
 * store publishes for each pull (img_pull_progress_path). import has no CRI
 * call: it writes into the image store directly, which quarkd reads from
 * disk on every request, so the image is listed at once. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "image.h"
#include "quark/config.h"

#define IMG "/runtime.v1.ImageService/"

static int call_failed(q_error *err)
{
  int rc = quark_cli_fail("%s", q_error_msg(err));
  q_error_free(&err);
  return rc;
}

static void human(uint64_t b, char *out, size_t n)
{
  const char *u[] = {"B", "kB", "MB", "GB", "TB"};
  double v = (double)b;
  int i = 0;
  while (v >= 1000 && i < 4)
    v /= 1000, i++;
  snprintf(out, n, i ? "%.1f%s" : "%.0f%s", v, u[i]);
}

/* The image root from the config quarkd reads (QUARK_CONFIG or the default). */
static int image_root(char **out, q_error **err)
{
  bool explicit_path = false;
  const char *path = cri_config_pick_path(NULL, &explicit_path);
  struct cri_config cfg;
  int rc = cri_config_load(&cfg, path, !explicit_path, err);
  if (rc < 0)
    return rc;
  *out = strdup(cfg.image_root);
  cri_config_free(&cfg);
  return *out ? 0 : q_error_make(err, ENOMEM, "config");
}

/* ---- pull ---- */

struct pull_call {
  const struct quark_cli *cli;
  Runtime__V1__PullImageRequest *req;
  Runtime__V1__PullImageResponse *resp;
  q_error *err;
  int rc;
  volatile int finished;
};

static void *pull_thread(void *arg)
{
  struct pull_call *p = arg;
  p->rc = quark_cli_call(p->cli, IMG "PullImage", &p->req->base,
                         &runtime__v1__pull_image_response__descriptor,
                         (ProtobufCMessage **)&p->resp, &p->err);
  __atomic_store_n(&p->finished, 1, __ATOMIC_RELEASE);
  return NULL;
}

struct shown {
  char digest[80];
  char state[16];
  int64_t total;
};

/* Draws the layers of the progress file: bars redrawn in place on a
 * terminal, one line per state change otherwise. */
static void draw(const char *path, bool tty, struct shown *seen, size_t *n_seen, size_t cap,
                 int *lines_drawn)
{
  json_error_t je;
  json_t *doc = json_load_file(path, 0, &je);
  json_t *layers = json_object_get(doc, "layers");
  if (!json_is_array(layers)) {
    json_decref(doc);
    return;
  }
  if (tty && *lines_drawn)
    printf("\033[%dA", *lines_drawn);
  size_t i;
  json_t *l;
  int drawn = 0;
  json_array_foreach(layers, i, l)
  {
    const char *dg = json_string_value(json_object_get(l, "digest"));
    const char *stt = json_string_value(json_object_get(l, "state"));
    json_int_t done = json_integer_value(json_object_get(l, "done"));
    json_int_t total = json_integer_value(json_object_get(l, "total"));
    if (!dg || !stt)
      continue;
    char d[16], t[16];
    human((uint64_t)done, d, sizeof(d));
    human((uint64_t)total, t, sizeof(t));
    size_t k;
    for (k = 0; k < *n_seen; k++)
      if (strcmp(seen[k].digest, dg) == 0)
        break;
    if (k == *n_seen && k < cap) {
      snprintf(seen[k].digest, sizeof(seen[k].digest), "%s", dg);
      seen[k].state[0] = '\0';
      (*n_seen)++;
    }
    if (k < *n_seen)
      seen[k].total = total;
    if (tty) {
      char bar[31];
      int fill = total > 0 ? (int)(30 * done / total) : 0;
      for (int b = 0; b < 30; b++)
        bar[b] = b < fill ? '=' : (b == fill ? '>' : ' ');
      bar[30] = '\0';
      printf("\033[K%.19s  %-11s [%s] %8s/%-8s\n", dg, stt, bar, d, t);
      drawn++;
      continue;
    }
    if (k < *n_seen && strcmp(seen[k].state, stt) != 0) {
      snprintf(seen[k].state, sizeof(seen[k].state), "%s", stt);
      printf("%.19s  %s %s\n", dg, stt, t);
    }
  }
  if (tty)
    *lines_drawn = drawn;
  fflush(stdout);
  json_decref(doc);
}

/* After a successful pull the progress file is gone: show every layer done. */
static void draw_done(bool tty, struct shown *seen, size_t n_seen, int lines_drawn)
{
  if (tty && lines_drawn)
    printf("\033[%dA", lines_drawn);
  for (size_t k = 0; k < n_seen; k++) {
    char t[16];
    human((uint64_t)seen[k].total, t, sizeof(t));
    if (tty)
      printf("\033[K%.19s  %-11s [==============================] %8s/%-8s\n", seen[k].digest,
             strcmp(seen[k].state, "exists") == 0 ? "exists" : "done", t, t);
    else if (strcmp(seen[k].state, "done") != 0 && strcmp(seen[k].state, "exists") != 0)
      printf("%.19s  done %s\n", seen[k].digest, t);
  }
  fflush(stdout);
}

int quark_cmd_pull(struct quark_cli *cli, int argc, char **argv)
{
  const char *creds = NULL, *ref = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--creds") && i + 1 < argc)
      creds = argv[++i];
    else if (argv[i][0] == '-' || ref) {
      fprintf(stderr, "usage: quark pull [--creds USER:PASSWORD] IMAGE\n");
      return 2;
    } else
      ref = argv[i];
  }
  if (!ref) {
    fprintf(stderr, "usage: quark pull [--creds USER:PASSWORD] IMAGE\n");
    return 2;
  }
  Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
  Runtime__V1__AuthConfig auth = RUNTIME__V1__AUTH_CONFIG__INIT;
  Runtime__V1__PullImageRequest req = RUNTIME__V1__PULL_IMAGE_REQUEST__INIT;
  spec.image = (char *)ref;
  req.image = &spec;
  q_cleanup_free char *user = creds ? strdup(creds) : NULL;
  if (user) {
    char *colon = strchr(user, ':');
    if (colon)
      *colon = '\0';
    auth.username = user;
    auth.password = colon ? colon + 1 : (char *)"";
    req.auth = &auth;
  }
  /* A pull may take minutes: --timeout only bounds the connection here. */
  struct quark_cli long_cli = *cli;
  if (long_cli.timeout_ms < 3600 * 1000)
    long_cli.timeout_ms = 3600 * 1000;
  struct pull_call pc = {.cli = &long_cli, .req = &req};
  q_cleanup_free char *root = NULL;
  q_error *cerr = NULL;
  if (image_root(&root, &cerr) < 0)
    q_error_free(&cerr); /* no progress then, the pull itself still works */
  q_cleanup_free char *ppath = root ? img_pull_progress_path(root, ref) : NULL;
  bool tty = isatty(STDOUT_FILENO) && !cli->json;
  pthread_t th;
  if (pthread_create(&th, NULL, pull_thread, &pc) != 0)
    return quark_cli_fail("cannot start the pull: %s", strerror(errno));
  struct shown seen[128];
  size_t n_seen = 0;
  int lines = 0;
  while (!__atomic_load_n(&pc.finished, __ATOMIC_ACQUIRE)) {
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    if (ppath && !cli->json)
      draw(ppath, tty, seen, &n_seen, Q_ARRAY_SIZE(seen), &lines);
  }
  pthread_join(th, NULL);
  if (pc.rc < 0)
    return call_failed(pc.err);
  if (!cli->json)
    draw_done(tty, seen, n_seen, lines);
  if (cli->json) {
    json_t *j = json_pack("{s:s, s:s}", "image", ref, "id", pc.resp->image_ref);
    char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    if (s)
      printf("%s\n", s);
    free(s);
    json_decref(j);
  } else {
    printf("Image is up to date for %s: %s\n", ref, pc.resp->image_ref);
  }
  protobuf_c_message_free_unpacked(&pc.resp->base, NULL);
  return 0;
}

/* ---- images ---- */

int quark_cmd_images(struct quark_cli *cli, int argc, char **argv)
{
  Runtime__V1__ListImagesRequest req = RUNTIME__V1__LIST_IMAGES_REQUEST__INIT;
  Runtime__V1__ImageFilter filter = RUNTIME__V1__IMAGE_FILTER__INIT;
  Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
  if (argc > 2) {
    fprintf(stderr, "usage: quark images [IMAGE]\n");
    return 2;
  }
  if (argc == 2) {
    spec.image = argv[1];
    filter.image = &spec;
    req.filter = &filter;
  }
  Runtime__V1__ListImagesResponse *r = NULL;
  q_error *err = NULL;
  if (quark_cli_call(cli, IMG "ListImages", &req.base,
                     &runtime__v1__list_images_response__descriptor, (ProtobufCMessage **)&r,
                     &err) < 0)
    return call_failed(err);
  if (cli->json) {
    json_t *arr = json_array();
    for (size_t i = 0; i < r->n_images; i++) {
      Runtime__V1__Image *im = r->images[i];
      json_t *tags = json_array(), *digs = json_array();
      for (size_t k = 0; k < im->n_repo_tags; k++)
        json_array_append_new(tags, json_string(im->repo_tags[k]));
      for (size_t k = 0; k < im->n_repo_digests; k++)
        json_array_append_new(digs, json_string(im->repo_digests[k]));
      json_array_append_new(arr, json_pack("{s:s, s:o, s:o, s:I}", "id", im->id, "repoTags", tags,
                                           "repoDigests", digs, "size", (json_int_t)im->size));
    }
    json_t *j = json_pack("{s:o}", "images", arr);
    char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    if (s)
      printf("%s\n", s);
    free(s);
    json_decref(j);
  } else {
    printf("%-48s %-16s %-13s %s\n", "IMAGE", "TAG", "IMAGE ID", "SIZE");
    for (size_t i = 0; i < r->n_images; i++) {
      Runtime__V1__Image *im = r->images[i];
      const char *hex = strncmp(im->id, "sha256:", 7) == 0 ? im->id + 7 : im->id;
      char sz[16];
      human(im->size, sz, sizeof(sz));
      if (im->n_repo_tags == 0)
        printf("%-48s %-16s %-13.13s %s\n", "<none>", "<none>", hex, sz);
      for (size_t k = 0; k < im->n_repo_tags; k++) {
        const char *t = im->repo_tags[k];
        const char *colon = strrchr(t, ':');
        if (colon && strchr(colon, '/'))
          colon = NULL;
        printf("%-48.*s %-16s %-13.13s %s\n", colon ? (int)(colon - t) : (int)strlen(t), t,
               colon ? colon + 1 : "<none>", hex, sz);
      }
    }
  }
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return 0;
}

/* ---- rmi ---- */

int quark_cmd_rmi(struct quark_cli *cli, int argc, char **argv)
{
  if (argc < 2) {
    fprintf(stderr, "usage: quark rmi IMAGE...\n");
    return 2;
  }
  int status = 0;
  for (int i = 1; i < argc; i++) {
    /* RemoveImage of an absent image is OK in CRI: ask first, to say so. */
    Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
    Runtime__V1__ImageStatusRequest sreq = RUNTIME__V1__IMAGE_STATUS_REQUEST__INIT;
    spec.image = argv[i];
    sreq.image = &spec;
    Runtime__V1__ImageStatusResponse *sr = NULL;
    q_error *err = NULL;
    if (quark_cli_call(cli, IMG "ImageStatus", &sreq.base,
                       &runtime__v1__image_status_response__descriptor, (ProtobufCMessage **)&sr,
                       &err) < 0) {
      status = call_failed(err);
      continue;
    }
    if (!sr->image) {
      protobuf_c_message_free_unpacked(&sr->base, NULL);
      status = quark_cli_fail("no such image: %s", argv[i]);
      continue;
    }
    Runtime__V1__ImageSpec idspec = RUNTIME__V1__IMAGE_SPEC__INIT;
    Runtime__V1__RemoveImageRequest rreq = RUNTIME__V1__REMOVE_IMAGE_REQUEST__INIT;
    idspec.image = sr->image->id;
    rreq.image = &idspec;
    ProtobufCMessage *rr = NULL;
    if (quark_cli_call(cli, IMG "RemoveImage", &rreq.base,
                       &runtime__v1__remove_image_response__descriptor, &rr, &err) < 0) {
      status = call_failed(err);
    } else {
      printf("Deleted: %s\n", sr->image->id);
      protobuf_c_message_free_unpacked(rr, NULL);
    }
    protobuf_c_message_free_unpacked(&sr->base, NULL);
  }
  return status;
}

/* ---- import ---- */

int quark_cmd_import(struct quark_cli *cli, int argc, char **argv)
{
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: quark import FILE [NAME]\n"
                    "  FILE: an OCI layout archive (skopeo copy ... oci-archive:FILE[:TAG]);\n"
                    "  NAME: repository for images whose annotation is a bare tag\n");
    return 2;
  }
  q_error *err = NULL;
  q_cleanup_free char *root = NULL;
  if (image_root(&root, &err) < 0)
    return call_failed(err);
  struct img_store_opts o = {.root = root};
  img_store *st = NULL;
  if (img_store_open(&o, &st, &err) < 0)
    return call_failed(err);
  char **ids = NULL;
  int rc = img_import(st, argv[1], argc == 3 ? argv[2] : NULL, &ids, &err);
  if (rc == 0) {
    for (char **i = ids; *i; i++) {
      img_info *in = NULL;
      if (img_status(st, *i, &in, NULL) == 0) {
        printf("Imported %s", in->id);
        for (char **t = in->repo_tags; *t; t++)
          printf(" %s", *t);
        printf("\n");
        img_info_free(in);
      }
    }
  }
  img_strv_free(ids);
  img_store_close(st);
  return rc < 0 ? call_failed(err) : 0;
}
