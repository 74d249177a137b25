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
 * 5. Namespaces and pivot_root: the daemon's pid, ipc and mount
 *    namespaces differ from ours, its root is a read-only tmpfs (not ours)
 *    with /dev/kvm and no /etc, and its mountinfo lists only the expected
 *    mounts; it reports its host pid in "hello".
 * 6. The pod cgroup (jail/cgroup.h, as quarkd makes it): the daemon is in
 *    it, the files hold the quota/shares/pids/memory written, a CPU hog
 *    under a 0.2 CPU quota uses well under one CPU (a loose bound), and
 *    the cgroup can be removed once the pod is down.
 * 8. A cgroup that cannot be joined (cgroup v1: the daemon moves itself
 *    before it answers ready; v2: the supervisor moves it while it starts):
 *    the pod does not start, or the daemon ends with no container created;
 *    the log says why.
 * Usage: podjail_test SANDBOX KERNEL ROOTFS WORKDIR */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <limits.h>
#include <time.h>

#include <quark/sbx_client.h>

#include "../pod/pod_check.h"

#include "cgroup.h" /* sandbox/jail */

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
  const char *cgroup;
  const char *hog_root;
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
                            .cgroup = p->cgroup,
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

/* Median time of n sbx_client_create (ready to serve) with the daemon's
 * namespaces on or off (QUARK_POD_NAMESPACES=0), in ms. */
static double start_latency(const char *sbx, const char *kernel, const char *work, bool ns, int n)
{
  double v[16];
  int k = 0;
  if (!ns)
    setenv("QUARK_POD_NAMESPACES", "0", 1);
  for (int i = 0; i < n && i < 16; i++) {
    char run[600], id[65];
    snprintf(run, sizeof run, "%s/run-lat", work);
    memset(id, 'b', 64);
    id[64] = 0;
    struct sbx_pod_spec ps = {.pod_id = id,
                              .sandbox_binary = sbx,
                              .kernel = kernel,
                              .memory_mib = 128,
                              .vcpus = 1,
                              .run_dir = run};
    struct sbx_client *c = NULL;
    q_error *err = NULL;
    uint64_t t0 = q_mono_ns();
    if (sbx_client_create(&ps, &c, &err) == 0)
      v[k++] = (double)(q_mono_ns() - t0) / 1e6;
    q_error_free(&err);
    if (c) {
      sbx_client_stop(c, 5000, NULL);
      sbx_client_close(c);
    }
  }
  unsetenv("QUARK_POD_NAMESPACES");
  for (int i = 1; i < k; i++)
    for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
      double t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  return k ? v[k / 2] : -1;
}

/* 8. a cgroup the daemon cannot be moved into (jail.c: v1 before the ready
 * byte, v2 while the daemon starts): no pod, or the daemon ends and no
 * guest starts. */
static void check_cgroup_failure(const char *sbx, const char *kernel, const char *rootfs,
                                 const char *work)
{
  char run[600], log[640], cg[128], id[65];
  snprintf(run, sizeof run, "%s/run-nocg", work);
  snprintf(log, sizeof log, "%s/sandbox-nocg.log", work);
  snprintf(cg, sizeof cg, "quark-test-podjail/partial%d", (int)getpid());
  /* v1: there in every hierarchy but pids, so that the move fails after
   * its first writes */
  static const char *const some[] = {"memory", "cpu", "cpuacct"};
  char d[PATH_MAX];
  for (size_t i = 0; i < 3 && !sbx_cgroup_v2(); i++) {
    snprintf(d, sizeof d, "/sys/fs/cgroup/%s/quark-test-podjail", some[i]);
    mkdir(d, 0755);
    snprintf(d, sizeof d, "/sys/fs/cgroup/%s/%s", some[i], cg);
    mkdir(d, 0755);
  }
  memset(id, 'c', 64);
  id[64] = 0;
  struct sbx_pod_spec ps = {.pod_id = id,
                            .sandbox_binary = sbx,
                            .kernel = kernel,
                            .memory_mib = 128,
                            .vcpus = 1,
                            .run_dir = run,
                            .cgroup = cg,
                            .log_path = log};
  struct sbx_client *c = NULL;
  q_error *err = NULL;
  int r = sbx_client_create(&ps, &c, &err);
  q_error_free(&err);
  if (r == 0) { /* ready came first: the create must fail, the daemon end */
    pid_t pid = sbx_client_pid(c);
    const char *argv[] = {"/bin/true", NULL};
    const char *env[] = {"X=1", NULL};
    struct sbx_container_spec s = {
        .container_id = "c1", .rootfs = rootfs, .argv = argv, .envp = env, .cwd = "/"};
    r = sbx_container_create(c, &s, &err);
    CHECK(r < 0, "no container in a pod outside its cgroup (%s)", emsg(err));
    q_error_free(&err);
    bool gone = false;
    for (int i = 0; i < 100 && !gone; i++) {
      gone = kill(pid, 0) < 0;
      if (!gone)
        usleep(50000);
    }
    CHECK(gone, "the daemon %d ended", (int)pid);
    sbx_client_close(c);
  } else {
    CHECK(true, "the pod did not start");
  }
  CHECK(count_in_file(log, "join cgroup") >= 1, "its log says why (%s)", log);
  for (size_t i = 0; i < 3 && !sbx_cgroup_v2(); i++) {
    snprintf(d, sizeof d, "/sys/fs/cgroup/%s/%s", some[i], cg);
    for (int t = 0; t < 50 && rmdir(d) < 0 && errno == EBUSY; t++)
      usleep(20000);
    snprintf(d, sizeof d, "/sys/fs/cgroup/%s/quark-test-podjail", some[i]);
    rmdir(d);
  }
}

/* 5. namespaces, pivot_root, mounts of the jailed daemon */
static void check_namespaces(pid_t pid, const char *kernel)
{
  char a[128], b[128], p[96];
  static const char *const ns[] = {"pid", "ipc", "mnt"};
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "/proc/%d/ns/%s", pid, ns[i]);
    ssize_t n = readlink(p, a, sizeof a - 1);
    a[n > 0 ? n : 0] = 0;
    snprintf(p, sizeof p, "/proc/self/ns/%s", ns[i]);
    n = readlink(p, b, sizeof b - 1);
    b[n > 0 ? n : 0] = 0;
    CHECK(a[0] && b[0] && strcmp(a, b), "the daemon's %s namespace is its own (%s, ours %s)", ns[i],
          a, b);
  }
  struct stat ours, theirs;
  snprintf(p, sizeof p, "/proc/%d/root/", pid);
  CHECK(stat("/", &ours) == 0 && stat(p, &theirs) == 0 &&
            (ours.st_dev != theirs.st_dev || ours.st_ino != theirs.st_ino),
        "pivot_root: the daemon's root is not ours");
  snprintf(p, sizeof p, "/proc/%d/root/dev/kvm", pid);
  bool kvm = stat(p, &theirs) == 0 && S_ISCHR(theirs.st_mode);
  snprintf(p, sizeof p, "/proc/%d/root/etc", pid);
  CHECK(kvm && access(p, F_OK) != 0, "its root has /dev/kvm and no /etc");
  char kreal[PATH_MAX];
  if (!realpath(kernel, kreal))
    snprintf(kreal, sizeof kreal, "%s", kernel);
  static const char *const allowed[] = {"/",           "/dev/kvm", "/dev/null",
                                        "/dev/urandom", "/proc",    "/sys/module/kvm_pvm"};
  snprintf(p, sizeof p, "/proc/%d/mountinfo", pid);
  FILE *f = fopen(p, "r");
  char line[2048];
  int n = 0, bad = 0, root_ro_tmpfs = 0;
  while (f && fgets(line, sizeof line, f)) {
    char mp[1024], opts[256], fstype[64];
    /* id parent maj:min root mount-point options ... - fstype source super */
    if (sscanf(line, "%*s %*s %*s %*s %1023s %255s", mp, opts) != 2)
      continue;
    const char *dash = strstr(line, " - ");
    if (!dash || sscanf(dash + 3, "%63s", fstype) != 1)
      continue;
    n++;
    bool ok = !strcmp(mp, kreal);
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
      ok |= !strcmp(mp, allowed[i]);
    if (!ok) {
      bad++;
      printf("  unexpected mount in the jail: %s (%s)\n", mp, fstype);
    }
    if (!strcmp(mp, "/") && !strcmp(fstype, "tmpfs") && !strncmp(opts, "ro,", 3))
      root_ro_tmpfs = 1;
  }
  if (f)
    fclose(f);
  CHECK(n >= 5 && bad == 0, "mountinfo: %d mounts, all expected (%d others)", n, bad);
  CHECK(root_ro_tmpfs, "the root is a read-only tmpfs");
  char v[64];
  status_field(pid, "NSpid", v, sizeof v);
  CHECK(strstr(v, "\t1") || strstr(v, " 1"), "hello reported the host pid %d (NSpid %s)", pid, v);
}

/* 6. the cgroup: membership, limits, a CPU hog held to its quota */
static void check_cgroup(struct pod *p, const char *cg)
{
  char path[64], line[1024], v[128];
  snprintf(path, sizeof path, "/proc/%d/cgroup", p->pid);
  FILE *f = fopen(path, "r");
  int in = 0;
  size_t cl = strlen(cg);
  while (f && fgets(line, sizeof line, f)) {
    char *s = strchr(line, ':');
    s = s ? strchr(s + 1, ':') : NULL;
    if (s && s[1] == '/' && !strncmp(s + 2, cg, cl) && (s[2 + cl] == '\n' || !s[2 + cl]))
      in++;
  }
  if (f)
    fclose(f);
  CHECK(in >= 1, "the daemon is in %s (%d hierarchies)", cg, in);
  bool v2 = sbx_cgroup_v2();
  sbx_cgroup_read(cg, "cpu", v2 ? "cpu.max" : "cpu.cfs_quota_us", v, sizeof v);
  CHECK(!strcmp(v, v2 ? "20000 100000" : "20000"), "cpu quota %s", v);
  sbx_cgroup_read(cg, "cpu", v2 ? "cpu.weight" : "cpu.shares", v, sizeof v);
  CHECK(!strcmp(v, v2 ? "20" : "512"), "cpu shares/weight %s", v);
  sbx_cgroup_read(cg, "pids", "pids.max", v, sizeof v);
  CHECK(!strcmp(v, "256"), "pids.max %s", v);
  sbx_cgroup_read(cg, "memory", v2 ? "memory.max" : "memory.limit_in_bytes", v, sizeof v);
  CHECK(strtoull(v, NULL, 10) == (384ull << 20), "memory limit %s", v);
  /* a CPU hog in the guest: usage over ~2 s well under one CPU */
  const char *argv[] = {"/bin/sh", "-c", "while :; do :; done", NULL};
  const char *env[] = {"X=1", NULL};
  struct sbx_container_spec s = {
      .container_id = "hog", .rootfs = NULL, .argv = argv, .envp = env, .cwd = "/"};
  s.rootfs = p->hog_root;
  q_error *err = NULL;
  int r = sbx_container_create(p->c, &s, &err);
  r = r ? r : sbx_container_start(p->c, "hog", &err);
  CHECK(r == 0, "CPU hog started (%s)", emsg(err));
  q_error_free(&err);
  struct timespec ts = {0, 300 * 1000000};
  nanosleep(&ts, NULL);
  char u0[64] = "", u1[64] = "";
  const char *ufile = v2 ? "cpu.stat" : "cpuacct.usage";
  uint64_t t0 = q_mono_ns();
  sbx_cgroup_read(cg, "cpuacct", ufile, u0, sizeof u0);
  ts.tv_sec = 2;
  ts.tv_nsec = 0;
  nanosleep(&ts, NULL);
  sbx_cgroup_read(cg, "cpuacct", ufile, u1, sizeof u1);
  uint64_t wall = q_mono_ns() - t0;
  /* v2: "usage_usec N" first; v1: ns */
  const char *n0 = strchr(u0, ' '), *n1 = strchr(u1, ' ');
  double used = v2 ? (double)(strtoull(n1 ? n1 : u1, NULL, 10) - strtoull(n0 ? n0 : u0, NULL, 10)) *
                         1000
                   : (double)(strtoull(u1, NULL, 10) - strtoull(u0, NULL, 10));
  double cpus = used / (double)wall;
  printf("CPU hog under a 0.2 CPU quota: %.2f CPUs over %.2f s\n", cpus, (double)wall / 1e9);
  CHECK(used > 0 && cpus < 0.6, "the hog stays well under one CPU (%.2f)", cpus);
  /* an update (UpdateContainerResources in quarkd): the quota lifted */
  struct sbx_cgroup_limits lim = {.memory = 384ull << 20, .cpu_shares = 1024, .pids = 256};
  r = sbx_cgroup_set(cg, &lim, &err);
  sbx_cgroup_read(cg, "cpu", v2 ? "cpu.max" : "cpu.cfs_quota_us", v, sizeof v);
  CHECK(r == 0 && !strcmp(v, v2 ? "max 100000" : "-1"), "quota lifted by an update: %s (%s)", v,
        emsg(err));
  q_error_free(&err);
  sbx_container_signal(p->c, "hog", SIGKILL, NULL);
  struct sbx_container_status cs;
  sbx_container_wait(p->c, "hog", 10000, &cs, NULL);
  sbx_container_delete(p->c, "hog", NULL);
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
  /* the pod's cgroup, made as quarkd makes it (cri/pod_cgroup.c) */
  char cg[PATH_MAX];
  q_error *cerr = NULL;
  char cgid[40];
  snprintf(cgid, sizeof cgid, "podjail%d", (int)getpid());
  sbx_cgroup_pod_path("/quark-test-podjail", cgid, cg, sizeof cg);
  struct sbx_cgroup_limits lim = {.memory = (128ull + 256) << 20,
                                  .cpu_quota_us = 20000,
                                  .cpu_period_us = 100000,
                                  .cpu_shares = 512,
                                  .pids = 256};
  int cr = sbx_cgroup_create(cg, &lim, &cerr);
  CHECK(cr == 0, "cgroup %s made (%s)", cg, emsg(cerr));
  q_error_free(&cerr);
  struct pod j = {.cgroup = cr == 0 ? cg : NULL, .hog_root = rootfs};
  if (pod_up(&j, "jailed", sbx, kernel, rootfs, work) < 0)
    return 1;
  char v[128], path[64];
  check_namespaces(j.pid, kernel);
  if (cr == 0)
    check_cgroup(&j, cg);

  /* 1. the jail in /proc/<pid>/status */
  status_field(j.pid, "Seccomp", v, sizeof v);
  CHECK(!strcmp(v, "2"), "Seccomp: %s (filter mode) in /proc/%d/status", v, j.pid);
  status_field(j.pid, "NoNewPrivs", v, sizeof v);
  CHECK(!strcmp(v, "1"), "NoNewPrivs: %s", v);
  /* CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID (0-4),
   * NET_BIND_SERVICE (10), SYS_ADMIN (21) */
  /* no CAP_SYS_ADMIN: the daemon in its mount jail mounts nothing */
  const char *want_caps = "000000000000041f";
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
  if (cr == 0) { /* what the VMM and its guest used at most: the memory limit's basis */
    char peak[64] = "", cur[64] = "";
    bool v2 = sbx_cgroup_v2();
    sbx_cgroup_read(cg, "memory", v2 ? "memory.peak" : "memory.max_usage_in_bytes", peak,
                    sizeof peak);
    sbx_cgroup_read(cg, "memory", v2 ? "memory.current" : "memory.usage_in_bytes", cur, sizeof cur);
    printf("pod cgroup memory (128 MiB guest, 3 containers, 30 execs): peak %llu KiB, now %llu "
           "KiB\n",
           strtoull(peak, NULL, 10) >> 10, strtoull(cur, NULL, 10) >> 10);
  }
  pod_down(&j);
  if (cr == 0) {
    cr = sbx_cgroup_remove(cg, &cerr);
    char d[PATH_MAX + 64];
    snprintf(d, sizeof d, "/sys/fs/cgroup/%s%s", sbx_cgroup_v2() ? "" : "cpu/", cg);
    CHECK(cr == 0 && access(d, F_OK) != 0, "cgroup removed after the pod (%s)", emsg(cerr));
    q_error_free(&cerr);
    snprintf(d, sizeof d, "/sys/fs/cgroup/%squark-test-podjail", sbx_cgroup_v2() ? "" : "cpu/");
    rmdir(d);
    const char *ctrls[] = {"memory", "cpuacct", "pids"};
    for (int i = 0; i < 3 && !sbx_cgroup_v2(); i++) {
      snprintf(d, sizeof d, "/sys/fs/cgroup/%s/quark-test-podjail", ctrls[i]);
      rmdir(d);
    }
  }

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
  /* 7. what the namespaces and pivot_root cost at pod start */
  double ns_on = start_latency(sbx, kernel, work, true, 7);
  double ns_off = start_latency(sbx, kernel, work, false, 7);
  printf("pod start (median of 7 sbx_client_create): %.2f ms with namespaces and pivot_root, "
         "%.2f ms without (QUARK_POD_NAMESPACES=0)\n",
         ns_on, ns_off);
  CHECK(ns_on > 0 && ns_off > 0, "pod start latency measured");
  check_cgroup_failure(sbx, kernel, rootfs, work);
  printf(fails ? "%d failed\n" : "all passed\n", fails);
  return fails ? 1 : 0;
}
