/* The host-side jail of `quark-sandbox pod` (sandbox/jail/, pod mode).
 * 1. A pod started through the sandbox client shows Seccomp 2,
 *    NoNewPrivs 1, the pod capability set (file access, CAP_SYS_ADMIN for
 *    the bind-mount helper, CAP_NET_BIND_SERVICE) in /proc/<pid>/status.
 * 2. An exec of t_podjail_probe makes the sandbox attempt a host
 *    socket(AF_NETLINK, SOCK_DGRAM) outside the pod allowlist: that call
 *    fails, the log names syscall 41 once, and the pod keeps serving (an
 *    exec afterwards works, the daemon is alive).
 * 3. A container with a bind mount (the helper: fork, unshare, mount) runs.
 * 4. QUARK_POD_SECCOMP=0: Seccomp 0 (the escape hatch), and the exec
 *    latency with and without the filter.
 * Usage: podjail_test SANDBOX KERNEL ROOTFS WORKDIR */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <quark/sbx_client.h>

static int fails;

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    bool ok_ = (cond);                                                                             \
    printf(ok_ ? "ok   " : "FAIL ");                                                               \
    fails += !ok_;                                                                                 \
    printf(__VA_ARGS__);                                                                           \
    printf("\n");                                                                                  \
    fflush(stdout);                                                                                \
  } while (0)

static const char *emsg(q_error *e)
{
  return e ? q_error_msg(e) : "-";
}

/* The value of "Key:" in /proc/pid/status, or "" */
static void status_field(pid_t pid, const char *key, char *out, size_t n)
{
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  out[0] = 0;
  FILE *f = fopen(path, "r");
  size_t kl = strlen(key);
  while (f && fgets(line, sizeof line, f)) {
    if (!strncmp(line, key, kl) && line[kl] == ':') {
      char *v = line + kl + 1;
      v += strspn(v, " \t");
      v[strcspn(v, "\n")] = 0;
      snprintf(out, n, "%s", v);
      break;
    }
  }
  if (f)
    fclose(f);
}

static int count_in_file(const char *path, const char *needle)
{
  FILE *f = fopen(path, "r");
  char line[1024];
  int n = 0;
  while (f && fgets(line, sizeof line, f))
    n += strstr(line, needle) != NULL;
  if (f)
    fclose(f);
  return n;
}

struct pod {
  struct sbx_client *c;
  pid_t pid;
  char run_dir[512], log[600], clog[600];
};

static int pod_up(struct pod *p, const char *tag, const char *sbx, const char *kernel,
                  const char *rootfs, const char *work)
{
  snprintf(p->run_dir, sizeof p->run_dir, "%s/run-%s", work, tag);
  snprintf(p->log, sizeof p->log, "%s/sandbox-%s.log", work, tag);
  snprintf(p->clog, sizeof p->clog, "%s/c-%s.log", work, tag);
  q_error *err = NULL;
  char id[65];
  snprintf(id, sizeof id, "%-64s", tag);
  for (char *s = id; *s; s++)
    if (*s == ' ')
      *s = 'a';
  struct sbx_pod_spec ps = {.pod_id = id,
                            .sandbox_binary = sbx,
                            .kernel = kernel,
                            .memory_mib = 128,
                            .vcpus = 1,
                            .hostname = "podjail",
                            .run_dir = p->run_dir,
                            .log_path = p->log};
  int r = sbx_client_create(&ps, &p->c, &err);
  CHECK(r == 0, "pod %s up (%s)", tag, emsg(err));
  q_error_free(&err);
  if (r < 0)
    return r;
  p->pid = sbx_client_pid(p->c);
  char pidfile[600];
  snprintf(pidfile, sizeof pidfile, "%s/sandbox-%s.pid", work, tag);
  FILE *pf = fopen(pidfile, "w");
  if (pf) {
    fprintf(pf, "%d\n", p->pid);
    fclose(pf);
  }
  const char *argv[] = {"/bin/sleep", "120", NULL};
  const char *env[] = {"X=1", NULL};
  struct sbx_container_spec s = {.container_id = "c1",
                                 .rootfs = rootfs,
                                 .argv = argv,
                                 .envp = env,
                                 .cwd = "/",
                                 .log_path = p->clog};
  r = sbx_container_create(p->c, &s, &err);
  r = r ? r : sbx_container_start(p->c, "c1", &err);
  CHECK(r == 0, "container c1 runs in pod %s (%s)", tag, emsg(err));
  q_error_free(&err);
  return r;
}

static int exec_run(struct pod *p, const char *const *argv, struct sbx_exec_result *x)
{
  q_error *err = NULL;
  memset(x, 0, sizeof *x);
  int r = sbx_container_exec(p->c, "c1", argv, 20000, 1 << 16, x, &err);
  if (r < 0)
    printf("  exec %s: %s\n", argv[0], emsg(err));
  q_error_free(&err);
  return r;
}

/* Median of n exec round trips of /bin/true, in ms. */
static double exec_latency(struct pod *p, int n)
{
  double v[32];
  const char *a[] = {"/bin/true", NULL};
  int k = 0;
  for (int i = 0; i < n && i < 32; i++) {
    struct sbx_exec_result x;
    uint64_t t0 = q_mono_ns();
    if (exec_run(p, a, &x) == 0 && x.exit_code == 0)
      v[k++] = (double)(q_mono_ns() - t0) / 1e6;
    sbx_exec_result_clear(&x);
  }
  for (int i = 1; i < k; i++)
    for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
      double t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  return k ? v[k / 2] : -1;
}

static void pod_down(struct pod *p)
{
  q_error *err = NULL;
  if (sbx_client_stop(p->c, 10000, &err) < 0)
    printf("  stop: %s\n", emsg(err));
  q_error_free(&err);
  sbx_client_close(p->c);
}

int main(int argc, char **argv)
{
  if (argc != 5) {
    fprintf(stderr, "usage: podjail_test SANDBOX KERNEL ROOTFS WORKDIR\n");
    return 2;
  }
  const char *sbx = argv[1], *kernel = argv[2], *rootfs = argv[3], *work = argv[4];
  signal(SIGPIPE, SIG_IGN);
  unsetenv("QUARK_POD_SECCOMP");
  unsetenv("QUARK_POD_JAIL");
  struct pod j = {0};
  if (pod_up(&j, "jailed", sbx, kernel, rootfs, work) < 0)
    return 1;
  char v[128], path[64];

  /* 1. the jail in /proc/<pid>/status */
  status_field(j.pid, "Seccomp", v, sizeof v);
  CHECK(!strcmp(v, "2"), "Seccomp: %s (filter mode) in /proc/%d/status", v, j.pid);
  status_field(j.pid, "NoNewPrivs", v, sizeof v);
  CHECK(!strcmp(v, "1"), "NoNewPrivs: %s", v);
  /* CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID (0-4),
   * NET_BIND_SERVICE (10), SYS_ADMIN (21) */
  const char *want_caps = "000000000020041f";
  static const char *const capk[] = {"CapEff", "CapPrm", "CapBnd"};
  for (int i = 0; i < 3; i++) {
    status_field(j.pid, capk[i], v, sizeof v);
    CHECK(!strcmp(v, want_caps), "%s %s (want %s)", capk[i], v, want_caps);
  }

  /* 2. a blocked host syscall fails that call only */
  struct sbx_exec_result x;
  const char *pa[] = {"/bin/t_podjail_probe", NULL};
  int r = exec_run(&j, pa, &x);
  CHECK(r == 0 && x.exit_code == 0 && x.out &&
            strstr(x.out, "dgram: Address family not supported by protocol\nraw: ok\n"),
        "probe: the SOCK_DGRAM netlink socket failed, SOCK_RAW works (%d, exit %d, '%.*s')", r,
        x.exit_code, (int)x.out_len, x.out ? x.out : "");
  sbx_exec_result_clear(&x);
  r = exec_run(&j, pa, &x); /* the same again: logged once */
  sbx_exec_result_clear(&x);
  int logged = count_in_file(j.log, "jail: blocked host syscall 41 ");
  CHECK(logged == 1, "socket (41) blocked and logged once in %s (%d lines)", j.log, logged);
  const char *ea[] = {"/bin/sh", "-c", "echo after", NULL};
  r = exec_run(&j, ea, &x);
  CHECK(r == 0 && x.exit_code == 0 && x.out_len == 6 && !memcmp(x.out, "after\n", 6),
        "an exec afterwards works (%d, exit %d)", r, x.exit_code);
  sbx_exec_result_clear(&x);
  snprintf(path, sizeof path, "/proc/%d", j.pid);
  struct stat st;
  CHECK(stat(path, &st) == 0, "the pod daemon %d is alive", j.pid);

  /* 3. a container with a bind mount: the helper's fork, unshare, mount */
  char src[600], bclog[640];
  snprintf(src, sizeof src, "%s/bindsrc", work);
  mkdir(src, 0755);
  snprintf(bclog, sizeof bclog, "%s/bound", src);
  FILE *bf = fopen(bclog, "w");
  if (bf) {
    fputs("bound-ok\n", bf);
    fclose(bf);
  }
  snprintf(bclog, sizeof bclog, "%s/c2.log", work);
  const char *ba[] = {"/bin/cat", "/mnt/bound", NULL};
  const char *env[] = {"X=1", NULL};
  struct sbx_mount m = {.source = src, .destination = "/mnt", .readonly = true};
  struct sbx_container_spec s2 = {.container_id = "c2",
                                  .rootfs = rootfs,
                                  .argv = ba,
                                  .envp = env,
                                  .cwd = "/",
                                  .log_path = bclog,
                                  .mounts = &m,
                                  .n_mounts = 1};
  q_error *err = NULL;
  r = sbx_container_create(j.c, &s2, &err);
  r = r ? r : sbx_container_start(j.c, "c2", &err);
  struct sbx_container_status cs = {0};
  if (r == 0)
    r = sbx_container_wait(j.c, "c2", 20000, &cs, &err);
  CHECK(r == 0 && cs.exit_code == 0 && count_in_file(bclog, "bound-ok") == 1,
        "a container with a read-only bind mount reads it (%d, exit %d; %s)", r, cs.exit_code,
        emsg(err));
  q_error_free(&err);
  int blocked = count_in_file(j.log, "jail: blocked host syscall");
  CHECK(blocked == 1, "nothing else was blocked (%d blocked-syscall lines)", blocked);

  double ms_on = exec_latency(&j, 15);
  pod_down(&j);

  /* 4. the escape hatch, and the cost of the filter */
  setenv("QUARK_POD_SECCOMP", "0", 1);
  struct pod o = {0};
  if (pod_up(&o, "nofilter", sbx, kernel, rootfs, work) < 0)
    return 1;
  unsetenv("QUARK_POD_SECCOMP");
  status_field(o.pid, "Seccomp", v, sizeof v);
  CHECK(!strcmp(v, "0"), "QUARK_POD_SECCOMP=0: Seccomp: %s", v);
  status_field(o.pid, "NoNewPrivs", v, sizeof v);
  CHECK(!strcmp(v, "1"), "QUARK_POD_SECCOMP=0 keeps NoNewPrivs: %s", v);
  r = exec_run(&o, pa, &x);
  CHECK(r == 0 && x.exit_code == 3 && x.out && strstr(x.out, "dgram: ok"),
        "without the filter the same request reaches the host (%d, exit %d, '%.*s')", r,
        x.exit_code, (int)x.out_len, x.out ? x.out : "");
  sbx_exec_result_clear(&x);
  double ms_off = exec_latency(&o, 15);
  pod_down(&o);
  printf("exec latency (median of 15 /bin/true execs): %.2f ms with the pod filter, %.2f ms "
         "without\n",
         ms_on, ms_off);
  CHECK(ms_on > 0 && ms_off > 0, "exec latency measured");
  printf(fails ? "%d failed\n" : "all passed\n", fails);
  return fails ? 1 : 0;
}
