/* Pids limit per container in a pod's guest (issue #11: "a fork bomb in
 * one pod leaves other pods and the node responsive"). One pod VM: sk
 * sleeps. sl (pids_limit 8): its shell starts 12 background sleeps; 7 start
 * (the shell is the 8th task), the 8th fork fails with EAGAIN (busybox:
 * "can't fork: Resource temporarily unavailable", and the shell ends).
 * sf (pids_limit 16) sleeps while an exec in it runs a fork bomb; while
 * it churns, execs in sk answer; SIGKILL ends sf; sk still answers.
 * Skips (77) with QUARK_POD_SHARED_VM=0 (the limit is the shared guest's).
 * Usage: pids_test SANDBOX KERNEL ROOTFS WORKDIR */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <quark/sbx_client.h>

#include "../pod/pod_check.h"

/* Waits up to secs for the log to hold needle; copies the log to out. */
static bool log_has(const char *path, const char *needle, int secs, char *out, size_t outlen)
{
  for (int i = 0; i < secs * 10; i++) {
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(out, 1, outlen - 1, f) : 0;
    if (f)
      fclose(f);
    out[n] = 0;
    if (strstr(out, needle))
      return true;
    usleep(100000);
  }
  return false;
}

/* The pod VM's memory in use (MiB), for the log. */
static double pod_mib(struct sbx_client *c)
{
  struct sbx_stats st = {0};
  q_error *err = NULL;
  if (sbx_pod_stats(c, &st, &err) < 0) {
    q_error_free(&err);
    return -1;
  }
  return (double)st.memory_usage_bytes / (1 << 20);
}

/* An exec in sk that must answer while sf's bomb runs. */
static void sk_answers(struct sbx_client *c, const char *when)
{
  q_error *err = NULL;
  struct sbx_exec_result x = {0};
  const char *argv[] = {"/bin/echo", "alive", NULL};
  int64_t t0 = q_mono_ns();
  int r = sbx_container_exec(c, "sk", argv, 60000, 1 << 16, &x, &err);
  double ms = (double)(q_mono_ns() - t0) / 1e6;
  CHECK(r == 0 && x.exit_code == 0 && x.out_len == 6 && !memcmp(x.out, "alive\n", 6),
        "exec in sk %s answers (%d, exit %d, %.0f ms; %s)", when, r, x.exit_code, ms, emsg(err));
  q_error_free(&err);
  sbx_exec_result_clear(&x);
}

int main(int argc, char **argv)
{
  if (argc != 5) {
    fprintf(stderr, "usage: pids_test SANDBOX KERNEL ROOTFS WORKDIR\n");
    return 2;
  }
  const char *shared = getenv("QUARK_POD_SHARED_VM");
  if (shared && !strcmp(shared, "0")) {
    printf("SKIP: QUARK_POD_SHARED_VM=0 (the limit lives in the pod's shared guest)\n");
    return 77;
  }
  const char *sbx = argv[1], *kernel = argv[2], *rootfs = argv[3], *work = argv[4];
  signal(SIGPIPE, SIG_IGN);
  char klog[600], flog[600], buf[65536];
  snprintf(klog, sizeof klog, "%s/sk.log", work);
  snprintf(flog, sizeof flog, "%s/sf.log", work);
  q_error *err = NULL;
  struct sbx_client *c = NULL;
  int r = test_pod_start("91d591d591d591d591d591d591d591d591d591d591d591d591d591d591d591d5", "pids",
                         sbx, kernel, work, &c, &err);
  CHECK(r == 0, "pod up (%s)", emsg(err));
  if (r < 0)
    return 1;
  const char *env[] = {"PATH=/bin", NULL};
  const char *ak[] = {"/bin/sh", "-c", "echo k-up; exec sleep 600", NULL};
  const char *al[] = {
      "/bin/sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 600 & echo started=$i; done",
      NULL};
  const char *af[] = {"/bin/sleep", "600", NULL};
  const char *bomb[] = {"/bin/sh", "-c", "b() { b | b & }; b; echo launched", NULL};
  struct sbx_container_spec sk = {.container_id = "sk",
                                  .rootfs = rootfs,
                                  .argv = ak,
                                  .envp = env,
                                  .cwd = "/",
                                  .log_path = klog};
  struct sbx_container_spec sl = sk;
  sl.container_id = "sl";
  sl.argv = al;
  sl.log_path = flog;
  sl.pids_limit = 8;
  struct sbx_container_spec sf = sk;
  sf.container_id = "sf";
  sf.argv = af;
  sf.log_path = NULL;
  sf.pids_limit = 16;
  r = sbx_container_create(c, &sk, &err);
  r = r ? r : sbx_container_start(c, "sk", &err);
  CHECK(r == 0 && log_has(klog, "k-up", 30, buf, sizeof buf), "sk runs (%s)", emsg(err));
  q_error_free(&err);
  struct sbx_container_status s = {0};
  sk_answers(c, "before");
  printf("pod memory in use: %.1f MiB\n", pod_mib(c));
  r = sbx_container_create(c, &sl, &err);
  r = r ? r : sbx_container_start(c, "sl", &err);
  r = r ? r : sbx_container_wait(c, "sl", 60000, &s, &err);
  CHECK(r == 0 && s.state == SBX_PROC_EXITED, "sl (pids_limit 8) ran and ended: exit %d (%s)",
        s.exit_code, emsg(err));
  q_error_free(&err);
  bool seven = log_has(flog, "Resource temporarily unavailable", 10, buf, sizeof buf) &&
               strstr(buf, "started=7") && !strstr(buf, "started=8");
  CHECK(seven, "sl: 7 background sleeps started, the 8th task's fork failed with EAGAIN");
  if (!seven)
    printf("%s\n", buf);
  sbx_container_delete(c, "sl", &err);
  q_error_free(&err);
  r = sbx_container_create(c, &sf, &err);
  r = r ? r : sbx_container_start(c, "sf", &err);
  CHECK(r == 0, "sf (pids_limit 16) starts (%s)", emsg(err));
  q_error_free(&err);
  struct sbx_exec_result x = {0};
  r = sbx_container_exec(c, "sf", bomb, 60000, 1 << 20, &x, &err);
  /* The exec's shell forks twice for `b | b &`; the bomb may fill the
   * limit between the two, and busybox then ends with 2 (can't fork). */
  const char *again = "Resource temporarily unavailable";
  bool launched = r == 0 && ((x.exit_code == 0 && x.out && strstr(x.out, "launched")) ||
                             (x.exit_code == 2 && x.err &&
                              memmem(x.err, x.err_len, again, strlen(again))));
  CHECK(launched, "a fork bomb launched by an exec in sf (%d, exit %d; %s)", r, x.exit_code,
        emsg(err));
  q_error_free(&err);
  sbx_exec_result_clear(&x);
  sleep(2);
  printf("pod memory in use with the bomb: %.1f MiB\n", pod_mib(c));
  sk_answers(c, "while the bomb runs");
  sk_answers(c, "again");
  r = sbx_container_status(c, "sf", &s, &err);
  CHECK(r == 0 && s.state == SBX_PROC_RUNNING, "sf's init still runs (%s)", emsg(err));
  q_error_free(&err);
  r = sbx_container_signal(c, "sf", SIGKILL, &err);
  r = r ? r : sbx_container_wait(c, "sf", 30000, &s, &err);
  CHECK(r == 0 && s.state == SBX_PROC_EXITED && s.exit_code == 137,
        "sf stopped with SIGKILL: 137 (%d; %s)", s.exit_code, emsg(err));
  q_error_free(&err);
  printf("pod memory in use after sf ended: %.1f MiB\n", pod_mib(c));
  sk_answers(c, "after sf ended");
  sleep(2);
  printf("pod memory in use 2 s later: %.1f MiB\n", pod_mib(c));
  r = sbx_container_delete(c, "sf", &err);
  CHECK(r == 0, "delete sf (%s)", emsg(err));
  q_error_free(&err);
  printf("pod memory in use after sf: %.1f MiB\n", pod_mib(c));
  sk_answers(c, "after sf is gone");
  r = sbx_container_signal(c, "sk", SIGKILL, &err);
  r = r ? r : sbx_container_wait(c, "sk", 10000, &s, &err);
  q_error_free(&err);
  r = sbx_client_stop(c, 10000, &err);
  CHECK(r == 0, "stop the pod (%s)", emsg(err));
  q_error_free(&err);
  sbx_client_close(c);
  printf(fails ? "FAIL (%d)\n" : "PASS\n", fails);
  return fails ? 1 : 0;
}
