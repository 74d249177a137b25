/* Pod mode end to end on real KVM through quark_sbx_client: a pod with a
 * busybox-static rootfs, containers, the CRI log format, exit codes,
 * ExecSync, stats, a read-only bind mount, hostile control messages, a
 * reconnect, stop. Prints the measurements (pod start, container start,
 * idle PSS). Usage: pod_test SANDBOX KERNEL ROOTFS WORKDIR */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <quark/sbx_client.h>

#include "pod_check.h"

/* Gone or a zombie waiting for init (the sandbox is not our child). */
static bool gone(pid_t pid)
{
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return true;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *rp = strrchr(buf, ')');
  return rp && rp[1] == ' ' && rp[2] == 'Z';
}

static double ms_since(int64_t t0)
{
  return (double)(q_mono_ns() - t0) / 1e6;
}

/* Sums Pss from smaps_rollup (KiB). */
static long pss_kib(pid_t pid)
{
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
  FILE *f = fopen(path, "r");
  long v = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "Pss: %ld kB", &v) == 1)
      break;
  if (f)
    fclose(f);
  return v;
}

/* Checks every line is "<RFC3339Nano> <stdout|stderr> <P|F> <msg>" and
 * rebuilds the lines of each stream into out[0]/out[1]. */
static int check_log(const char *path, char *out[2], int *partials)
{
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t cap = 1 << 20;
  for (int i = 0; i < 2; i++) {
    out[i] = calloc(1, cap);
  }
  size_t len[2] = {0, 0};
  char *line = NULL;
  size_t lcap = 0;
  ssize_t n;
  int bad = 0;
  *partials = 0;
  while ((n = getline(&line, &lcap, f)) > 0) {
    if (line[n - 1] == '\n')
      line[--n] = 0;
    int y, mo, d, h, mi, s;
    char frac[16], stream[8], tag[2];
    int off = 0;
    if (sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%15[0-9]Z %7s %1s %n", &y, &mo, &d, &h, &mi, &s, frac,
               stream, tag, &off) < 9 ||
        (strcmp(stream, "stdout") && strcmp(stream, "stderr")) ||
        (tag[0] != 'P' && tag[0] != 'F')) {
      bad++;
      continue;
    }
    /* %n skipped the message's leading spaces: find the message after "X ". */
    char *msg = strstr(line, tag[0] == 'P' ? " P " : " F ") + 3;
    int k = stream[3] == 'o' ? 0 : 1;
    size_t ml = strlen(msg);
    if (len[k] + ml + 2 < cap) {
      memcpy(out[k] + len[k], msg, ml);
      len[k] += ml;
      if (tag[0] == 'F')
        out[k][len[k]++] = '\n';
    }
    *partials += tag[0] == 'P';
  }
  free(line);
  fclose(f);
  return bad;
}

/* A raw connection that sends bytes and then checks the sandbox answers
 * or drops it (never dies). */
static int raw_send(const char *sock, const void *buf, size_t len)
{
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
    return -errno;
  ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
  (void)w;
  struct timeval tv = {2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char r[256];
  ssize_t n = recv(fd, r, sizeof r, 0);
  close(fd);
  return (int)n;
}

static void frame(char *out, size_t *olen, const char *json)
{
  uint32_t jl = (uint32_t)strlen(json);
  memcpy(out, &jl, 4);
  memset(out + 4, 0, 4);
  memcpy(out + 8, json, jl);
  *olen = 8 + jl;
}

int main(int argc, char **argv)
{
  if (argc != 5) {
    fprintf(stderr, "usage: pod_test SANDBOX KERNEL ROOTFS WORKDIR\n");
    return 2;
  }
  const char *sbx = argv[1], *kernel = argv[2], *rootfs = argv[3], *work = argv[4];
  signal(SIGPIPE, SIG_IGN);
  char run_dir[512], log[600], clog[3][600], data[600];
  snprintf(run_dir, sizeof run_dir, "%s/run", work);
  snprintf(log, sizeof log, "%s/sandbox.log", work);
  snprintf(data, sizeof data, "%s/data", work);
  mkdir(data, 0755);
  FILE *df = fopen(strcat(strcpy((char[700]){0}, data), "/hello.txt"), "w");
  if (df) {
    fputs("from the host\n", df);
    fclose(df);
  }
  for (int i = 0; i < 3; i++) {
    snprintf(clog[i], sizeof clog[i], "%s/c%d.log", work, i + 1);
    unlink(clog[i]);
  }
  q_error *err = NULL;
  struct sbx_pod_spec ps = {.pod_id =
                                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                            .sandbox_binary = sbx,
                            .kernel = kernel,
                            .memory_mib = 128,
                            .vcpus = 1,
                            .hostname = "pod-test",
                            .run_dir = run_dir,
                            .log_path = log};
  struct sbx_client *c = NULL;
  int64_t t0 = q_mono_ns();
  int r = sbx_client_create(&ps, &c, &err);
  double pod_ms = ms_since(t0);
  CHECK(r == 0, "sbx_client_create: pod ready in %.1f ms (%s)", pod_ms, emsg(err));
  if (r < 0)
    return 1;
  pid_t pid = sbx_client_pid(c);
  /* For pod_test.sh: a run that fails or hangs must not leave the sandbox behind. */
  char pidfile[600];
  snprintf(pidfile, sizeof pidfile, "%s/sandbox.pid", work);
  FILE *pf = fopen(pidfile, "w");
  if (pf) {
    fprintf(pf, "%d\n", pid);
    fclose(pf);
  }
  CHECK(pid > 0 && kill(pid, 0) == 0, "sandbox pid %d alive", pid);
  char sock[600];
  snprintf(sock, sizeof sock, "%s", sbx_client_socket(c));
  struct stat st;
  CHECK(stat(sock, &st) == 0 && (st.st_mode & 0777) == 0600, "control socket %s mode 0600", sock);
  usleep(200000);
  long idle_pss = pss_kib(pid);
  printf("idle pod PSS (no container): %ld KiB\n", idle_pss);

  /* Container 1: both streams, a 40000-byte line, exit 7. */
  const char *a1[] = {
      "/bin/busybox", "sh", "-c",
      "echo hello from quark; echo oops >&2; echo $LONG; printf 'no newline'; exit 7", NULL};
  static char longenv[40010];
  strcpy(longenv, "LONG=");
  memset(longenv + 5, 'y', 40000);
  const char *e1[] = {"FOO=bar", longenv, NULL};
  struct sbx_container_spec cs = {.container_id = "c1",
                                  .rootfs = rootfs,
                                  .argv = a1,
                                  .envp = e1,
                                  .cwd = "/",
                                  .log_path = clog[0]};
  r = sbx_container_create(c, &cs, &err);
  CHECK(r == 0, "create c1 (%s)", emsg(err));
  q_error_free(&err);
  struct sbx_container_status s = {0};
  r = sbx_container_status(c, "c1", &s, &err);
  CHECK(r == 0 && s.state == SBX_PROC_CREATED, "c1 CREATED before start");
  t0 = q_mono_ns();
  r = sbx_container_start(c, "c1", &err);
  double start_ms = ms_since(t0);
  CHECK(r == 0, "start c1 in %.1f ms (%s)", start_ms, emsg(err));
  q_error_free(&err);
  r = sbx_container_wait(c, "c1", 20000, &s, &err);
  CHECK(r == 0 && s.state == SBX_PROC_EXITED && s.exit_code == 7 && s.finished_at >= s.started_at &&
            s.started_at > 0,
        "c1 exits 7 (state %d, code %d; %s)", s.state, s.exit_code, emsg(err));
  q_error_free(&err);
  r = sbx_container_start(c, "c1", &err);
  CHECK(r == -EBUSY, "start twice refused (%d)", r);
  q_error_free(&err);
  char *lines[2] = {NULL, NULL};
  int partials = 0;
  int bad = check_log(clog[0], lines, &partials);
  CHECK(bad == 0, "every log record is <RFC3339Nano> <stream> <P|F> <msg> (%d bad)", bad);
  char want[40100];
  snprintf(want, sizeof want, "hello from quark\n%s\nno newline\n", longenv + 5);
  CHECK(lines[0] && !strcmp(lines[0], want),
        "stdout lines whole again (hello, 40000 bytes, unterminated tail)");
  CHECK(lines[1] && !strcmp(lines[1], "oops\n"), "stderr line: '%s'", lines[1] ? lines[1] : "");
  CHECK(partials >= 2, "the long line came as P records (%d)", partials);
  free(lines[0]);
  free(lines[1]);

  /* Containers 2 and 3 at once, one with a read-only bind mount. */
  const char *a2[] = {"/bin/busybox", "sleep", "60", NULL};
  struct sbx_mount m = {.source = data, .destination = "/data", .readonly = true};
  cs = (struct sbx_container_spec){.container_id = "c2",
                                   .rootfs = rootfs,
                                   .argv = a2,
                                   .log_path = clog[1],
                                   .mounts = &m,
                                   .n_mounts = 1};
  r = sbx_container_create(c, &cs, &err);
  CHECK(r == 0, "create c2 with a read-only mount (%s)", emsg(err));
  q_error_free(&err);
  cs.container_id = "c3";
  cs.log_path = clog[2];
  cs.n_mounts = 0;
  CHECK(sbx_container_create(c, &cs, &err) == 0, "create c3 (%s)", emsg(err));
  q_error_free(&err);
  CHECK(sbx_container_create(c, &cs, &err) == -EEXIST, "create c3 again: EEXIST");
  q_error_free(&err);
  CHECK(sbx_container_start(c, "c2", &err) == 0 && sbx_container_start(c, "c3", &err) == 0,
        "start c2 and c3 (%s)", emsg(err));
  q_error_free(&err);
  struct sbx_container_status s2 = {0}, s3 = {0};
  sbx_container_status(c, "c2", &s2, NULL);
  sbx_container_status(c, "c3", &s3, NULL);
  CHECK(s2.state == SBX_PROC_RUNNING && s3.state == SBX_PROC_RUNNING,
        "two containers run in the pod at once");

  /* ExecSync. */
  struct sbx_exec_result x = {0};
  const char *x1[] = {"/bin/busybox", "echo", "hi from exec", NULL};
  t0 = q_mono_ns();
  r = sbx_container_exec(c, "c2", x1, 10000, 1 << 20, &x, &err);
  double exec_ms = ms_since(t0);
  CHECK(r == 0 && x.exit_code == 0 && x.out_len == 13 && !memcmp(x.out, "hi from exec\n", 13) &&
            x.err_len == 0,
        "exec busybox echo: exit 0, stdout captured, %.1f ms (%s)", exec_ms, emsg(err));
  q_error_free(&err);
  sbx_exec_result_clear(&x);
  const char *x2[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL};
  r = sbx_container_exec(c, "c2", x2, 10000, 1 << 20, &x, &err);
  CHECK(r == 0 && x.exit_code == 3 && x.out_len == 4 && x.err_len == 4 &&
            !memcmp(x.err, "err\n", 4),
        "exec sh: exit 3, stdout and stderr apart");
  sbx_exec_result_clear(&x);
  const char *x3[] = {"/bin/cat", "/data/hello.txt", NULL};
  r = sbx_container_exec(c, "c2", x3, 10000, 1 << 20, &x, &err);
  CHECK(r == 0 && x.exit_code == 0 && x.out_len == 14 && !memcmp(x.out, "from the host\n", 14),
        "bind mount readable in the container (%s)", emsg(err));
  q_error_free(&err);
  sbx_exec_result_clear(&x);
  const char *x4[] = {"/bin/sh", "-c", "echo x > /data/nope", NULL};
  r = sbx_container_exec(c, "c2", x4, 10000, 1 << 20, &x, &err);
  CHECK(r == 0 && x.exit_code != 0 && access("/data/nope", F_OK) != 0,
        "read-only mount refuses writes (exit %d)", x.exit_code);
  sbx_exec_result_clear(&x);
  r = sbx_container_exec(c, "c3", x3, 10000, 1 << 20, &x, &err);
  CHECK(r == 0 && x.exit_code != 0, "c3 has no such mount (exit %d)", x.exit_code);
  sbx_exec_result_clear(&x);
  /* /proc/net through the pod daemon's jail (QK_OP_PROCNET_READ on its procfs). */
  const char *xn[] = {"/bin/cat", "/proc/net/dev", NULL};
  r = sbx_container_exec(c, "c2", xn, 10000, 1 << 20, &x, &err);
  CHECK(r == 0 && x.exit_code == 0 && x.out_len > 0 && memmem(x.out, x.out_len, "lo:", 3),
        "cat /proc/net/dev in the jailed pod lists lo (exit %d, %zu bytes)", x.exit_code, x.out_len);
  sbx_exec_result_clear(&x);
  const char *x5[] = {"/bin/busybox", "echo", "12345678901234567890", NULL};
  r = sbx_container_exec(c, "c2", x5, 10000, 5, &x, &err);
  CHECK(r == 0 && x.out_len == 5, "output capped at out_cap (%zu)", x.out_len);
  sbx_exec_result_clear(&x);
  const char *x6[] = {"/bin/busybox", "sleep", "30", NULL};
  t0 = q_mono_ns();
  r = sbx_container_exec(c, "c2", x6, 500, 1 << 20, &x, &err);
  CHECK(r == -ETIMEDOUT && ms_since(t0) < 5000, "exec timeout 500 ms: -ETIMEDOUT in %.0f ms",
        ms_since(t0));
  q_error_free(&err);
  const char *x7[] = {"/no/such/binary", NULL};
  r = sbx_container_exec(c, "c2", x7, 10000, 1 << 20, &x, &err);
  CHECK(r < 0 || x.exit_code != 0, "exec of a missing binary fails (%d: %s)", r, emsg(err));
  q_error_free(&err);
  sbx_exec_result_clear(&x);
  CHECK(sbx_container_exec(c, "c1", x1, 10000, 100, &x, &err) == -EBUSY,
        "exec in an exited container: EBUSY");
  q_error_free(&err);
  CHECK(sbx_container_exec(c, "nope", x1, 10000, 100, &x, &err) == -ENOENT,
        "exec in an unknown container: ENOENT");
  q_error_free(&err);

  /* Streaming exec: stdin in, stdout out, over fds from the sandbox. */
  const char *xc[] = {"/bin/busybox", "cat", NULL};
  struct sbx_exec_spec es = {.argv = xc, .stdin_open = true};
  char *xid = NULL;
  int fds[3];
  r = sbx_exec_start(c, "c2", &es, &xid, fds, &err);
  CHECK(r == 0 && fds[0] >= 0 && fds[1] >= 0 && fds[2] >= 0,
        "streaming exec started with 3 fds (%s)", emsg(err));
  q_error_free(&err);
  if (r == 0) {
    CHECK(write(fds[0], "abc\n", 4) == 4, "write to its stdin");
    close(fds[0]);
    char rb[64];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof rb && (n = read(fds[1], rb + got, sizeof rb - got)) > 0)
      got += (size_t)n;
    CHECK(got == 4 && !memcmp(rb, "abc\n", 4), "its stdout echoes stdin, then EOF (%zu bytes)",
          got);
    int32_t code = -1;
    r = sbx_exec_wait(c, xid, 10000, &code, &err);
    CHECK(r == 0 && code == 0, "exec wait: exit %d", code);
    CHECK(sbx_exec_wait(c, xid, 0, &code, &err) == -ENOENT, "a reaped exec is gone");
    q_error_free(&err);
    close(fds[1]);
    close(fds[2]);
    free(xid);
  }
  es = (struct sbx_exec_spec){.argv = x6};
  r = sbx_exec_start(c, "c2", &es, &xid, fds, &err);
  CHECK(r == 0 && fds[0] == -1, "streaming exec without stdin");
  if (r == 0) {
    int32_t code = -1;
    CHECK(sbx_exec_wait(c, xid, 200, &code, &err) == -ETIMEDOUT, "still runs after 200 ms");
    q_error_free(&err);
    CHECK(sbx_exec_kill(c, xid, SIGKILL, &err) == 0, "exec kill");
    r = sbx_exec_wait(c, xid, 10000, &code, &err);
    CHECK(r == 0 && code == 137, "killed exec exits 137 (%d)", code);
    close(fds[1]);
    close(fds[2]);
    free(xid);
  }

  /* Attach to a stdin_once container: cat echoes what the client writes,
   * to the attached stdout and to the log; closing stdin ends it. */
  const char *a4[] = {"/bin/busybox", "cat", NULL};
  char c4log[700];
  snprintf(c4log, sizeof c4log, "%s/c4.log", work);
  unlink(c4log);
  cs = (struct sbx_container_spec){.container_id = "c4",
                                   .rootfs = rootfs,
                                   .argv = a4,
                                   .log_path = c4log,
                                   .stdin_open = true,
                                   .stdin_once = true};
  r = sbx_container_create(c, &cs, &err);
  if (r == 0)
    r = sbx_container_start(c, "c4", &err);
  CHECK(r == 0, "c4 (cat with stdin) runs (%s)", emsg(err));
  q_error_free(&err);
  int af[3];
  r = sbx_container_attach(c, "c4", true, af, &err);
  CHECK(r == 0 && af[0] >= 0 && af[1] >= 0 && af[2] >= 0, "attach c4 with stdin (%s)", emsg(err));
  q_error_free(&err);
  if (r == 0) {
    CHECK(write(af[0], "ping\n", 5) == 5, "write to the container's stdin");
    close(af[0]);
    char rb[64];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof rb && (n = read(af[1], rb + got, sizeof rb - got)) > 0)
      got += (size_t)n;
    CHECK(got == 5 && !memcmp(rb, "ping\n", 5),
          "attached stdout gets its output, then EOF at exit (%zu)", got);
    close(af[1]);
    close(af[2]);
    r = sbx_container_wait(c, "c4", 10000, &s, &err);
    CHECK(r == 0 && s.state == SBX_PROC_EXITED && s.exit_code == 0, "c4 exits 0 at stdin EOF (%d)",
          s.exit_code);
    char *l4[2] = {NULL, NULL};
    int p4 = 0;
    CHECK(check_log(c4log, l4, &p4) == 0 && l4[0] && !strcmp(l4[0], "ping\n"),
          "and the log has it too");
    free(l4[0]);
    free(l4[1]);
  }
  CHECK(sbx_container_attach(c, "c4", false, af, &err) == -EBUSY,
        "attach to an exited container: EBUSY");
  q_error_free(&err);
  /* A container blocked reading its stdin still stops on SIGTERM. */
  cs.container_id = "c5";
  cs.stdin_once = false;
  cs.log_path = NULL;
  r = sbx_container_create(c, &cs, &err);
  if (r == 0)
    r = sbx_container_start(c, "c5", &err);
  q_error_free(&err);
  usleep(300000);
  r = r ? r : sbx_container_signal(c, "c5", SIGTERM, &err);
  r = r ? r : sbx_container_wait(c, "c5", 10000, &s, &err);
  CHECK(r == 0 && s.exit_code == 143, "c5 blocked on stdin stops on SIGTERM (%d, %s)", s.exit_code,
        emsg(err));
  q_error_free(&err);

  /* Stats. */
  struct sbx_stats cst = {0}, pst = {0};
  r = sbx_container_stats(c, "c2", &cst, &err);
  CHECK(r == 0 && cst.cpu_usage_ns > 0 && cst.memory_working_set_bytes > 0 && cst.timestamp > 0,
        "container stats: cpu %llu ns, memory %llu KiB", (unsigned long long)cst.cpu_usage_ns,
        (unsigned long long)cst.memory_working_set_bytes >> 10);
  r = sbx_pod_stats(c, &pst, &err);
  CHECK(r == 0 && pst.cpu_usage_ns > 0 && pst.memory_working_set_bytes > 0,
        "pod stats: cpu %llu ns, memory %llu KiB", (unsigned long long)pst.cpu_usage_ns,
        (unsigned long long)pst.memory_working_set_bytes >> 10);
  printf("pod PSS with two sleeping containers: %ld KiB\n", pss_kib(pid));

  /* Hostile control messages: the sandbox answers or drops, never dies. */
  char buf[256];
  size_t bl;
  static const char garbage[] = "\xff\xff\xff\xff\xff\xff\xff\xffgarbage";
  raw_send(sock, garbage, sizeof garbage);
  raw_send(sock, "\x05\x00\x00\x00\x00\x00\x00\x00[1,2]", 13);
  raw_send(sock, "\x02\x00\x00\x00\x00\x00\x00\x00{", 9);
  raw_send(sock, "\x00\x00\x00\x00\x00\x00\x00\x00", 8);
  raw_send(sock, "\x40\x00\x00\x00\x00\x00\x00\x00{\"op\":", 15);
  static const char *const hostile[] = {
      "{\"op\":\"nonsense\"}",
      "{\"op\":42}",
      "{\"op\":\"create\",\"id\":5}",
      "{\"op\":\"create\",\"id\":\"../x\",\"rootfs\":\"/\",\"argv\":[\"a\"]}",
      "{\"op\":\"create\",\"id\":\"h1\",\"rootfs\":\"/\",\"argv\":\"sh\"}",
      "{\"op\":\"create\",\"id\":\"h2\",\"rootfs\":\"/\",\"argv\":[1,2]}",
      "{\"op\":\"create\",\"id\":\"h3\",\"rootfs\":\"/"
      "nonexistent\",\"argv\":[\"a\"],\"mounts\":[{\"src\":1}]}",
      "{\"op\":\"signal\",\"id\":\"c3\",\"signo\":-5}",
      "{\"op\":\"wait\",\"id\":\"c3\",\"timeout_ms\":\"x\"}",
      "{\"op\":\"exec\",\"id\":\"c2\",\"argv\":[]}",
      "{\"op\":\"start\"}",
      "{\"op\":\"delete\",\"id\":\"c2\"}",
      "{\"op\":\"stats\",\"id\":[1]}"};
  int answered = 0;
  for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
    frame(buf, &bl, hostile[i]);
    answered += raw_send(sock, buf, bl) > 0;
  }
  CHECK(answered == (int)(sizeof hostile / sizeof *hostile),
        "malformed requests get error answers (%d/%zu)", answered,
        sizeof hostile / sizeof *hostile);
  CHECK(kill(pid, 0) == 0, "sandbox alive after garbage and hostile messages");
  sbx_container_status(c, "c2", &s2, NULL);
  CHECK(s2.state == SBX_PROC_RUNNING, "c2 still runs (a delete of a running container is refused)");

  /* quarkd restart: drop the handle, reconnect by socket path. */
  sbx_client_close(c);
  c = NULL;
  r = sbx_client_connect(sock, &c, &err);
  CHECK(r == 0 && sbx_client_pid(c) == pid, "reconnect by socket path (%s)", emsg(err));
  q_error_free(&err);
  if (!c)
    return 1;
  memset(&s3, 0, sizeof s3);
  r = sbx_container_status(c, "c3", &s3, &err);
  CHECK(r == 0 && s3.state == SBX_PROC_RUNNING, "c3 still runs after the reconnect");
  r = sbx_container_status(c, "c1", &s, &err);
  CHECK(r == 0 && s.state == SBX_PROC_EXITED && s.exit_code == 7, "c1's exit code kept");
  CHECK(sbx_container_reopen_log(c, "c2", clog[1], &err) == 0, "reopen log (%s)", emsg(err));
  q_error_free(&err);

  /* Signals, wait, delete. */
  CHECK(sbx_container_signal(c, "c2", SIGWINCH, &err) == 0, "SIGWINCH accepted");
  r = sbx_container_wait(c, "c2", 300, &s2, &err);
  CHECK(r == -ETIMEDOUT, "SIGWINCH does not stop c2 (wait times out)");
  q_error_free(&err);
  CHECK(sbx_container_signal(c, "c2", SIGTERM, &err) == 0, "SIGTERM to c2");
  r = sbx_container_wait(c, "c2", 10000, &s2, &err);
  CHECK(r == 0 && s2.state == SBX_PROC_EXITED && s2.exit_code == 128 + SIGTERM,
        "c2 exit code %d (143)", s2.exit_code);
  CHECK(sbx_container_delete(c, "c2", &err) == 0, "delete exited c2");
  CHECK(sbx_container_status(c, "c2", &s2, &err) == -ENOENT, "c2 gone");
  q_error_free(&err);
  CHECK(sbx_container_delete(c, "c3", &err) == -EBUSY, "delete of running c3 refused");
  q_error_free(&err);

  /* Stop: containers and VM gone, process reaped; idempotent. */
  t0 = q_mono_ns();
  r = sbx_client_stop(c, 2000, &err);
  double stop_ms = ms_since(t0);
  CHECK(r == 0 && gone(pid), "sbx_client_stop: sandbox gone in %.1f ms", stop_ms);
  CHECK(sbx_client_stop(c, 2000, &err) == 0, "stop again: success");
  CHECK(access(sock, F_OK) < 0, "control socket removed");
  sbx_client_close(c);
  CHECK(sbx_client_connect(sock, &c, &err) == -ESRCH, "connect to a stopped pod: -ESRCH");
  q_error_free(&err);

  printf("MEASURED pod_start_ms %.1f container_start_ms %.1f exec_ms %.1f idle_pss_kib %ld stop_ms "
         "%.1f\n",
         pod_ms, start_ms, exec_ms, idle_pss, stop_ms);
  printf(fails ? "FAIL (%d)\n" : "PASS\n", fails);
  return fails ? 1 : 0;
}
