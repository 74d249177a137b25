/* img-tool: drives the image library from the integration tests and the
 * pull benchmark (the same calls quarkd makes, without gRPC in between).
 *   img-tool [options] pull REF... | pull-many REF... (one thread each, in one
 *            process: exercises the shared downloads) | status REF | list | rmi REF | fsinfo |
 *            import FILE [NAME] | rootfs-create REF CID DEST |
 *            rootfs-remove CID | unpack TAR DIR | ref REF | check
 * Options: --root DIR --mirror HOST=URL --insecure HOST[:PORT] --user U
 *          --pass P --auth B64 --identity-token T --registry-token T
 *          --rate BYTES_PER_S --retries N --stall SECONDS --parallel N
 * Exit 0 on success, 1 with the error on stderr. */
#include "image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>

struct many {
  img_store *st;
  const char *ref;
  const struct img_pull_opts *po;
  int rc;
  char *id;
  q_error *err;
};

static void *pull_thread(void *arg)
{
  struct many *m = arg;
  m->rc = img_pull(m->st, m->ref, m->po, &m->id, &m->err);
  return NULL;
}

static void print_strv(const char *k, char **v)
{
  printf("%s=", k);
  for (size_t i = 0; v && v[i]; i++)
    printf("%s%s", i ? "," : "", v[i]);
  printf("\n");
}

static void print_info(const img_info *in)
{
  printf("id=%s\n", in->id);
  print_strv("tags", in->repo_tags);
  print_strv("digests", in->repo_digests);
  printf("size=%llu\n", (unsigned long long)in->size);
  printf("manifest=%s\n", in->manifest_digest ? in->manifest_digest : "");
  print_strv("layers", in->layers);
  printf("platform=%s/%s\n", in->os ? in->os : "", in->architecture ? in->architecture : "");
  printf("user=%s\n", in->config.user ? in->config.user : "");
  printf("workdir=%s\n", in->config.working_dir ? in->config.working_dir : "");
  print_strv("env", in->config.env);
  print_strv("entrypoint", in->config.entrypoint);
  print_strv("cmd", in->config.cmd);
  print_strv("ports", in->config.exposed_ports);
  for (size_t i = 0; i < in->config.n_labels; i++)
    printf("label=%s=%s\n", in->config.labels[i].key, in->config.labels[i].value);
}

static void progress(void *arg, const char *digest, enum img_progress_state s, int64_t done,
                     int64_t total)
{
  static const char *names[] = {"resolving", "waiting", "downloading",
                                "unpacking", "done",    "exists"};
  if (s == IMG_PROGRESS_DOWNLOADING && done != 0 && done != total)
    return;
  static int64_t t0;
  if (!t0)
    t0 = q_mono_ns();
  fprintf(stderr, "progress %7.3f %.19s %s %lld/%lld\n", (double)(q_mono_ns() - t0) / 1e9,
          digest ? digest : "-", names[s], (long long)done, (long long)total);
}

/* Store consistency: every blob hashes to its name, nothing is left in
 * tmp/, every record's blobs and layers are present. */
static int check_store(const char *root)
{
  int bad = 0;
  char p[4096];
  snprintf(p, sizeof(p), "%s/blobs/sha256", root);
  DIR *d = opendir(p);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    char f[4400];
    snprintf(f, sizeof(f), "%s/%s", p, e->d_name);
    FILE *fp = fopen(f, "rb");
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    char buf[65536];
    size_t n;
    while (fp && (n = fread(buf, 1, sizeof(buf), fp)) > 0)
      EVP_DigestUpdate(md, buf, n);
    if (fp)
      fclose(fp);
    unsigned char dg[32];
    unsigned int dl;
    EVP_DigestFinal_ex(md, dg, &dl);
    EVP_MD_CTX_free(md);
    char hex[65];
    for (int i = 0; i < 32; i++)
      sprintf(hex + 2 * i, "%02x", dg[i]);
    if (strcmp(hex, e->d_name) != 0) {
      fprintf(stderr, "check: blob %s does not match its digest\n", e->d_name);
      bad++;
    }
  }
  if (d)
    closedir(d);
  snprintf(p, sizeof(p), "%s/tmp", root);
  d = opendir(p);
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.') {
      fprintf(stderr, "check: leftover tmp/%s\n", e->d_name);
      bad++;
    }
  if (d)
    closedir(d);
  return bad;
}

static int check_records(img_store *st, const char *root)
{
  img_info **v = NULL;
  size_t n = 0;
  int bad = 0;
  if (img_list(st, &v, &n, NULL) < 0)
    return 1;
  for (size_t i = 0; i < n; i++) {
    char p[4096];
    snprintf(p, sizeof(p), "%s/blobs/sha256/%s", root, v[i]->id + 7);
    if (access(p, F_OK) != 0 || !v[i]->config_json) {
      fprintf(stderr, "check: image %s: config blob missing\n", v[i]->id);
      bad++;
    }
    for (char **l = v[i]->layers; l && *l; l++) {
      snprintf(p, sizeof(p), "%s/layers/sha256/%s", root, *l + 7);
      struct stat sb;
      if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "check: image %s: layer %s not unpacked\n", v[i]->id, *l);
        bad++;
      }
      snprintf(p, sizeof(p), "%s/blobs/sha256/%s", root, *l + 7);
      if (access(p, F_OK) != 0) {
        fprintf(stderr, "check: image %s: layer blob %s missing\n", v[i]->id, *l);
        bad++;
      }
    }
  }
  img_infov_free(v, n);
  return bad;
}

int main(int argc, char **argv)
{
  const char *root = NULL;
  struct img_mirror mirrors[8];
  const char *mirror_eps[8][8];
  size_t n_mirrors = 0;
  const char *insecure[8];
  size_t n_insecure = 0;
  struct img_auth auth = {0};
  bool have_auth = false;
  struct img_store_opts o = {0};
  static const struct option lo[] = {{"root", 1, 0, 'r'},
                                     {"mirror", 1, 0, 'm'},
                                     {"insecure", 1, 0, 'i'},
                                     {"user", 1, 0, 'u'},
                                     {"pass", 1, 0, 'p'},
                                     {"auth", 1, 0, 'a'},
                                     {"identity-token", 1, 0, 'I'},
                                     {"registry-token", 1, 0, 'T'},
                                     {"rate", 1, 0, 'R'},
                                     {"retries", 1, 0, 'n'},
                                     {"stall", 1, 0, 's'},
                                     {"parallel", 1, 0, 'P'},
                                     {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "+", lo, NULL)) != -1) {
    switch (c) {
    case 'r':
      root = optarg;
      break;
    case 'm': {
      char *eq = strchr(optarg, '=');
      if (!eq || n_mirrors == 8)
        return 2;
      *eq = '\0';
      size_t ne = 0;
      for (char *save = NULL, *u = strtok_r(eq + 1, ",", &save); u && ne < 8;
           u = strtok_r(NULL, ",", &save))
        mirror_eps[n_mirrors][ne++] = u;
      mirrors[n_mirrors] = (struct img_mirror){optarg, mirror_eps[n_mirrors], ne};
      n_mirrors++;
      break;
    }
    case 'i':
      if (n_insecure < 8)
        insecure[n_insecure++] = optarg;
      break;
    case 'u':
      auth.username = optarg;
      have_auth = true;
      break;
    case 'p':
      auth.password = optarg;
      have_auth = true;
      break;
    case 'a':
      auth.auth = optarg;
      have_auth = true;
      break;
    case 'I':
      auth.identity_token = optarg;
      have_auth = true;
      break;
    case 'T':
      auth.registry_token = optarg;
      have_auth = true;
      break;
    case 'R':
      o.max_recv_bytes_per_s = atoll(optarg);
      break;
    case 'n':
      o.max_retries = atoi(optarg);
      break;
    case 's':
      o.stall_timeout_s = atol(optarg);
      break;
    case 'P':
      o.max_parallel_layers = atoi(optarg);
      break;
    default:
      return 2;
    }
  }
  if (optind >= argc) {
    fprintf(stderr, "usage: img-tool --root DIR CMD ...\n");
    return 2;
  }
  const char *cmd = argv[optind];
  char **args = argv + optind + 1;
  int nargs = argc - optind - 1;
  q_error *err = NULL;
  int rc = 0;
  q_log_init(NULL, getenv("IMG_TOOL_DEBUG") ? Q_LOG_DEBUG : Q_LOG_WARN, "img-tool", NULL);

  if (strcmp(cmd, "ref") == 0 && nargs == 1) {
    img_ref r;
    rc = img_ref_parse(args[0], &r, &err);
    if (rc == 0) {
      char *s = img_ref_string(&r);
      printf("%s\n", s);
      free(s);
      img_ref_free(&r);
    }
    goto out;
  }
  if (strcmp(cmd, "unpack") == 0 && nargs == 2) {
    rc = img_unpack_layer(args[0], args[1], &err);
    goto out;
  }
  if (!root) {
    fprintf(stderr, "img-tool: --root is required\n");
    return 2;
  }
  o.root = root;
  o.mirrors = mirrors;
  o.n_mirrors = n_mirrors;
  o.insecure = insecure;
  o.n_insecure = n_insecure;
  img_store *st = NULL;
  rc = img_store_open(&o, &st, &err);
  if (rc < 0)
    goto out;
  if (strcmp(cmd, "pull") == 0 && nargs >= 1) {
    /* several references: one after the other in this process */
    struct img_pull_opts po = {.auth = have_auth ? &auth : NULL,
                               .progress = getenv("IMG_TOOL_PROGRESS") ? progress : NULL};
    for (int i = 0; i < nargs && rc == 0; i++) {
      char *id = NULL;
      rc = img_pull(st, args[i], &po, &id, &err);
      if (rc == 0)
        printf("%s\n", id);
      free(id);
    }
  } else if (strcmp(cmd, "pull-many") == 0 && nargs >= 1 && nargs <= 16) {
    struct img_pull_opts po = {.auth = have_auth ? &auth : NULL};
    struct many m[16];
    pthread_t th[16];
    for (int i = 0; i < nargs; i++) {
      m[i] = (struct many){st, args[i], &po, 0, NULL, NULL};
      pthread_create(&th[i], NULL, pull_thread, &m[i]);
    }
    for (int i = 0; i < nargs; i++) {
      pthread_join(th[i], NULL);
      if (m[i].rc == 0)
        printf("%s %s\n", args[i], m[i].id);
      else {
        fprintf(stderr, "error: %s\n", q_error_msg(m[i].err));
        rc = m[i].rc;
      }
      free(m[i].id);
      q_error_free(&m[i].err);
    }
    if (rc < 0)
      q_error_make(&err, 0, "some pulls failed");
  } else if (strcmp(cmd, "status") == 0 && nargs == 1) {
    img_info *in = NULL;
    rc = img_status(st, args[0], &in, &err);
    if (rc == 0)
      print_info(in);
    img_info_free(in);
  } else if (strcmp(cmd, "list") == 0) {
    img_info **v = NULL;
    size_t n = 0;
    rc = img_list(st, &v, &n, &err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
      printf("%s", v[i]->id);
      for (char **t = v[i]->repo_tags; *t; t++)
        printf(" %s", *t);
      printf(" %llu\n", (unsigned long long)v[i]->size);
    }
    img_infov_free(v, n);
  } else if (strcmp(cmd, "rmi") == 0 && nargs == 1) {
    rc = img_remove(st, args[0], &err);
  } else if (strcmp(cmd, "fsinfo") == 0) {
    struct img_fs_usage u;
    rc = img_fs_info(st, &u, &err);
    if (rc == 0)
      printf("bytes=%llu inodes=%llu\n", (unsigned long long)u.used_bytes,
             (unsigned long long)u.inodes_used);
  } else if (strcmp(cmd, "import") == 0 && (nargs == 1 || nargs == 2)) {
    char **ids = NULL;
    rc = img_import(st, args[0], nargs == 2 ? args[1] : NULL, &ids, &err);
    for (char **i = ids; i && *i; i++)
      printf("%s\n", *i);
    img_strv_free(ids);
  } else if (strcmp(cmd, "rootfs-create") == 0 && nargs == 3) {
    rc = img_rootfs_create(st, args[0], args[1], args[2], &err);
  } else if (strcmp(cmd, "rootfs-remove") == 0 && nargs == 1) {
    rc = img_rootfs_remove(st, args[0], &err);
  } else if (strcmp(cmd, "check") == 0) {
    int bad = check_store(root) + check_records(st, root);
    if (bad)
      rc = q_error_make(&err, 0, "store %s: %d problems", root, bad);
    else
      printf("consistent\n");
  } else {
    fprintf(stderr, "img-tool: unknown command or arguments: %s\n", cmd);
    rc = -EINVAL;
  }
  img_store_close(st);
out:
  if (rc < 0) {
    fprintf(stderr, "error: %s\n", q_error_msg(err));
    q_error_free(&err);
    return 1;
  }
  return 0;
}
