/* Shared-VM pod mode (quark-sandbox pod --shared-vm, QUARK_POD_SHARED_VM=1):
 * two containers and an exec in ONE VM. Checks that the sandbox holds one
 * KVM VM fd while both containers run, that each container sees itself as
 * pid 1 (its own pid namespace), that an exec runs in its container's
 * namespace (sees the container's second process; gets the next pid of
 * that namespace, not of the other), and exit codes, logs and delete.
 * Skips (77) with QUARK_POD_SHARED_VM=0 (one VM per container).
 * Usage: shared_vm_test SANDBOX KERNEL ROOTFS WORKDIR */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <quark/sbx_client.h>

#include "pod_check.h"

/* KVM VM fds of a process: one per VM. */
static int kvm_vms(pid_t pid)
{
  char dir[64], path[320], link[128];
  snprintf(dir, sizeof dir, "/proc/%d/fd", pid);
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    ssize_t l = readlink(path, link, sizeof link - 1);
    if (l > 0) {
      link[l] = 0;
      n += !strcmp(link, "anon_inode:kvm-vm");
    }
  }
  if (d)
    closedir(d);
  return n;
}

/* Waits until the log has needle (the container's output). */
static bool log_has(const char *path, const char *needle)
{
  for (int i = 0; i < 200; i++) {
    FILE *f = fopen(path, "r");
    char buf[8192] = "";
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
      fclose(f);
    buf[n] = 0;
    if (strstr(buf, needle))
      return true;
    usleep(50000);
  }
  return false;
}

int main(int argc, char **argv)
{
  if (argc != 5) {
    fprintf(stderr, "usage: shared_vm_test SANDBOX KERNEL ROOTFS WORKDIR\n");
    return 2;
  }
  const char *shared = getenv("QUARK_POD_SHARED_VM");
  if (shared && !strcmp(shared, "0")) {
    printf("SKIP: QUARK_POD_SHARED_VM=0 (one VM per container asked for)\n");
    return 77;
  }
  const char *sbx = argv[1], *kernel = argv[2], *rootfs = argv[3], *work = argv[4];
  signal(SIGPIPE, SIG_IGN);
  char clog[2][600];
  for (int i = 0; i < 2; i++) {
    snprintf(clog[i], sizeof clog[i], "%s/s%d.log", work, i + 1);
    unlink(clog[i]);
  }
  q_error *err = NULL;
  struct sbx_client *c = NULL;
  int r = test_pod_start("5ade5ade5ade5ade5ade5ade5ade5ade5ade5ade5ade5ade5ade5ade5ade5ade", "shared-vm",
                         sbx, kernel, work, &c, &err);
  CHECK(r == 0, "pod up (%s)", emsg(err));
  if (r < 0)
    return 1;
  pid_t pid = sbx_client_pid(c);
  /* a: init (pid 1) and a sleep (pid 2); b: init only. */
  const char *aa[] = {"/bin/sh", "-c", "sleep 60 & echo a-pid=$$; wait", NULL};
  const char *ab[] = {"/bin/sh", "-c", "echo b-pid=$$; exec sleep 60", NULL};
  const char *env[] = {"X=1", NULL};
  struct sbx_container_spec sa = {.container_id = "sa",
                                  .rootfs = rootfs,
                                  .argv = aa,
                                  .envp = env,
                                  .cwd = "/",
                                  .log_path = clog[0]};
  struct sbx_container_spec sb = sa;
  sb.container_id = "sb";
  sb.argv = ab;
  sb.log_path = clog[1];
  r = sbx_container_create(c, &sa, &err);
  CHECK(r == 0, "create sa (%s)", emsg(err));
  q_error_free(&err);
  r = sbx_container_create(c, &sb, &err);
  CHECK(r == 0, "create sb (%s)", emsg(err));
  q_error_free(&err);
  r = sbx_container_start(c, "sa", &err);
  CHECK(r == 0, "start sa (%s)", emsg(err));
  q_error_free(&err);
  r = sbx_container_start(c, "sb", &err);
  CHECK(r == 0, "start sb (%s)", emsg(err));
  q_error_free(&err);
  CHECK(log_has(clog[0], "a-pid=1"), "sa sees itself as pid 1");
  CHECK(log_has(clog[1], "b-pid=1"), "sb sees itself as pid 1");
  int vms = kvm_vms(pid);
  CHECK(vms == 1, "one VM for both containers (%d KVM VM fds in the sandbox)", vms);

  /* An exec in sa: the namespace's next pid (3), and it sees sa's pid 2. */
  struct sbx_exec_result x = {0};
  const char *xa[] = {"/bin/sh", "-c", "echo $$; kill -0 2 && echo sees-2", NULL};
  r = sbx_container_exec(c, "sa", xa, 10000, 1 << 20, &x, &err);
  CHECK(r == 0 && x.exit_code == 0 && x.out_len == 9 && !memcmp(x.out, "3\nsees-2\n", 9),
        "exec in sa: pid 3 of sa's namespace, sees sa's pid 2 (%d, exit %d, '%.*s'; %s)", r,
        x.exit_code, (int)x.out_len, x.out ? x.out : "", emsg(err));
  q_error_free(&err);
  vms = kvm_vms(pid);
  CHECK(vms == 1, "the exec ran in the same VM (%d)", vms);
  sbx_exec_result_clear(&x);
  const char *xb[] = {"/bin/sh", "-c", "echo $$; kill -0 3 || echo no-3 >&2; exit 4", NULL};
  r = sbx_container_exec(c, "sb", xb, 10000, 1 << 20, &x, &err);
  CHECK(r == 0 && x.exit_code == 4 && x.out_len == 2 && !memcmp(x.out, "2\n", 2) &&
            x.err_len >= 5 && !memcmp(x.err + x.err_len - 5, "no-3\n", 5),
        "exec in sb: pid 2 of sb's own namespace, no pid 3 there, exit 4 (%d, exit %d, '%.*s' "
        "'%.*s'; %s)",
        r, x.exit_code, (int)x.out_len, x.out ? x.out : "", (int)x.err_len, x.err ? x.err : "",
        emsg(err));
  q_error_free(&err);
  sbx_exec_result_clear(&x);

  struct sbx_container_status s = {0};
  /* A container blocked reading an idle stdin does not hold the VM: an
   * exec elsewhere answers at once, then its stdin still works. */
  const char *ad[] = {"/bin/cat", NULL};
  struct sbx_container_spec sd = sa;
  sd.container_id = "sd";
  sd.argv = ad;
  sd.log_path = clog[1];
  sd.stdin_open = true;
  sd.stdin_once = true;
  r = sbx_container_create(c, &sd, &err);
  r = r ? r : sbx_container_start(c, "sd", &err);
  CHECK(r == 0, "sd (cat reading its stdin) runs (%s)", emsg(err));
  q_error_free(&err);
  usleep(300000);
  uint64_t t0 = q_mono_ns();
  const char *xe[] = {"/bin/echo", "fine", NULL};
  r = sbx_container_exec(c, "sa", xe, 10000, 1 << 20, &x, &err);
  double ms = (double)(q_mono_ns() - t0) / 1e6;
  CHECK(r == 0 && x.exit_code == 0 && x.out_len == 5 && ms < 3000,
        "exec in sa while sd waits on stdin: %.0f ms (%d, exit %d; %s)", ms, r, x.exit_code,
        emsg(err));
  q_error_free(&err);
  sbx_exec_result_clear(&x);
  int af[3] = {-1, -1, -1};
  r = sbx_container_attach(c, "sd", true, af, &err);
  CHECK(r == 0 && af[0] >= 0, "attach sd with stdin (%s)", emsg(err));
  q_error_free(&err);
  if (r == 0) {
    ssize_t w = write(af[0], "late\n", 5); /* CHECK evaluates its condition twice */
    CHECK(w == 5, "write to sd's stdin");
    close(af[0]);
    char rb[16];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof rb && (n = read(af[1], rb + got, sizeof rb - got)) > 0)
      got += (size_t)n;
    CHECK(got == 5 && !memcmp(rb, "late\n", 5), "sd echoes it, then ends (%zu bytes: %.*s)", got,
          (int)got, rb);
    close(af[1]);
    close(af[2]);
  }
  r = sbx_container_wait(c, "sd", 10000, &s, &err);
  CHECK(r == 0 && s.exit_code == 0, "sd exits 0 at stdin EOF (%d; %s)", s.exit_code, emsg(err));
  q_error_free(&err);
  r = sbx_container_delete(c, "sd", &err);
  q_error_free(&err);

  /* Memory limits: a container that grows past its limit (given at create,
   * or set later by an update) is OOM-killed (137, oom_killed) while sa
   * runs on; without a limit the same script fits the VM and exits 0. */
  const char *grow[] = {"/bin/sh", "-c",
                        "sleep 1; a=xxxxxxxxxxxxxxxx; i=0; "
                        "while [ $i -lt 20 ]; do a=$a$a; i=$((i+1)); done; echo survived",
                        NULL};
  struct sbx_container_spec so = sa;
  so.container_id = "so";
  so.argv = grow;
  so.log_path = NULL;
  so.memory_limit = 8u << 20;
  r = sbx_container_create(c, &so, &err);
  r = r ? r : sbx_container_start(c, "so", &err);
  r = r ? r : sbx_container_wait(c, "so", 30000, &s, &err);
  CHECK(r == 0 && s.exit_code == 137 && s.oom_killed,
        "so over its 8 MiB limit (create): exit %d, oom_killed %d (%s)", s.exit_code, s.oom_killed,
        emsg(err));
  q_error_free(&err);
  r = sbx_container_status(c, "sa", &s, &err);
  CHECK(r == 0 && s.state == SBX_PROC_RUNNING, "sa still runs after so's OOM kill");
  q_error_free(&err);
  sbx_container_delete(c, "so", &err);
  q_error_free(&err);
  so.container_id = "su";
  so.memory_limit = 0;
  r = sbx_container_create(c, &so, &err);
  r = r ? r : sbx_container_start(c, "su", &err);
  r = r ? r : sbx_container_update(c, "su", 8u << 20, &err);
  r = r ? r : sbx_container_wait(c, "su", 30000, &s, &err);
  CHECK(r == 0 && s.exit_code == 137 && s.oom_killed,
        "su over the 8 MiB limit of an update: exit %d, oom_killed %d (%s)", s.exit_code,
        s.oom_killed, emsg(err));
  q_error_free(&err);
  sbx_container_delete(c, "su", &err);
  q_error_free(&err);
  so.container_id = "sn";
  r = sbx_container_create(c, &so, &err);
  r = r ? r : sbx_container_start(c, "sn", &err);
  r = r ? r : sbx_container_wait(c, "sn", 30000, &s, &err);
  CHECK(r == 0 && s.exit_code == 0 && !s.oom_killed,
        "the same script with no limit fits: exit %d, oom_killed %d (%s)", s.exit_code,
        s.oom_killed, emsg(err));
  q_error_free(&err);
  sbx_container_delete(c, "sn", &err);
  q_error_free(&err);

  /* Ends: SIGTERM to sb (143); sa keeps running until SIGKILL (137). */
  r = sbx_container_signal(c, "sb", SIGTERM, &err);
  r = r ? r : sbx_container_wait(c, "sb", 10000, &s, &err);
  CHECK(r == 0 && s.state == SBX_PROC_EXITED && s.exit_code == 143, "sb: SIGTERM -> 143 (%d; %s)",
        s.exit_code, emsg(err));
  q_error_free(&err);
  r = sbx_container_status(c, "sa", &s, &err);
  CHECK(r == 0 && s.state == SBX_PROC_RUNNING, "sa still runs after sb ended");
  q_error_free(&err);
  r = sbx_container_delete(c, "sb", &err);
  CHECK(r == 0, "delete sb (%s)", emsg(err));
  q_error_free(&err);
  r = sbx_container_signal(c, "sa", SIGKILL, &err);
  r = r ? r : sbx_container_wait(c, "sa", 10000, &s, &err);
  CHECK(r == 0 && s.exit_code == 137, "sa: SIGKILL -> 137 (%d; %s)", s.exit_code, emsg(err));
  q_error_free(&err);
  /* The slot is free again: a new container in the same VM. */
  const char *ac[] = {"/bin/sh", "-c", "echo again-pid=$$; exit 5", NULL};
  struct sbx_container_spec sc = sa;
  sc.container_id = "sc";
  sc.argv = ac;
  sc.log_path = clog[1];
  r = sbx_container_create(c, &sc, &err);
  r = r ? r : sbx_container_start(c, "sc", &err);
  r = r ? r : sbx_container_wait(c, "sc", 10000, &s, &err);
  CHECK(r == 0 && s.exit_code == 5 && log_has(clog[1], "again-pid=1"),
        "a third container in the same VM: pid 1, exit 5 (%d; %s)", s.exit_code, emsg(err));
  q_error_free(&err);
  CHECK(kvm_vms(pid) == 1, "still one VM");
  r = sbx_client_stop(c, 10000, &err);
  CHECK(r == 0, "stop the pod (%s)", emsg(err));
  q_error_free(&err);
  sbx_client_close(c);
  printf(fails ? "FAIL (%d)\n" : "PASS\n", fails);
  return fails ? 1 : 0;
}
