/* Shared by the C pod tests that drive `quark-sandbox pod` through
 * quark_sbx_client (pod_test, shared_vm_test, guest_pids, podjail): a
 * CHECK that prints one "ok"/"FAIL" line per check and counts failures,
 * the text of an error, and the start of a test pod. Header only: each
 * test is one executable. */
#ifndef QUARK_TESTS_POD_CHECK_H
#define QUARK_TESTS_POD_CHECK_H

#include <stdbool.h>
#include <stdio.h>

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

static inline const char *emsg(q_error *e)
{
  return e ? q_error_msg(e) : "-";
}

/* Starts pod `id` (hostname `host`, 128 MiB, 1 vCPU; run dir WORK/run, log
 * WORK/sandbox.log) and writes its daemon's pid to WORK/sandbox.pid, where
 * pod_test.sh's cleanup finds it. Returns sbx_client_create's result. */
static inline int test_pod_start(const char *id, const char *host, const char *sbx,
                                 const char *kernel, const char *work, struct sbx_client **c,
                                 q_error **err)
{
  static char run_dir[512], log[600];
  snprintf(run_dir, sizeof run_dir, "%s/run", work);
  snprintf(log, sizeof log, "%s/sandbox.log", work);
  struct sbx_pod_spec ps = {.pod_id = id,
                            .sandbox_binary = sbx,
                            .kernel = kernel,
                            .memory_mib = 128,
                            .vcpus = 1,
                            .hostname = host,
                            .run_dir = run_dir,
                            .log_path = log};
  int r = sbx_client_create(&ps, c, err);
  if (r < 0)
    return r;
  char pidfile[600];
  snprintf(pidfile, sizeof pidfile, "%s/sandbox.pid", work);
  FILE *pf = fopen(pidfile, "w");
  if (pf) {
    fprintf(pf, "%d\n", sbx_client_pid(*c));
    fclose(pf);
  }
  return r;
}

#endif
