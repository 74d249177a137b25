/* jail_run: `quark-sandbox run` with the jail, for the jail's tests. Same
 * command line as quark-sandbox run, plus:
 *   --no-jail            run without any of it (the baseline)
 *   --jail NAME=VALUE    one sbx_jail_opt (memory=512M, cpus=1.5, pids=64,
 *                        cgroup-parent=..., netns=..., no=seccomp, ...)
 * It calls the jail exactly where quark-sandbox does: sbx_jail_enter before
 * the VM exists, sbx_jail_apply after the VM, memory, vCPU fds and io_uring
 * exist and before the QCall workers and vCPU threads start.
 *
 * Test-only hook (this binary is never installed): a guest getrandom of
 * exactly JAIL_RUN_PROBE_LEN bytes makes the VMM attempt syscalls outside
 * the allowlist (a raw socket, kill, unshare) and open /etc/shadow, and answers
 * the guest with the result of the socket call, so that a guest program
 * can show that a blocked host syscall fails that call only.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <quark/common.h>

#include "arch/x86_64/boot.h"
#include "jail.h"
#include "kvm/vm.h"
#include "qcall/qcall_host.h"

#define FAIL 125
#define JAIL_RUN_PROBE_LEN 4093

/* The QCall layer calls getrandom(3) for QK_OP_GETRANDOM; this definition
 * wins at link time inside this test binary only. */
ssize_t getrandom(void *buf, size_t len, unsigned flags)
{
  if (len != JAIL_RUN_PROBE_LEN)
    return syscall(SYS_getrandom, buf, len, flags);
  int s = socket(AF_INET, SOCK_RAW, 1);
  int e1 = errno;
  if (s >= 0)
    close(s);
  /* Both harmless where they succeed (no jail): a signal 0 only tests
   * that init exists, and a UTS namespace of our own changes nothing. */
  long k = kill(1, 0);
  int e2 = errno;
  long u = unshare(CLONE_NEWUTS);
  int e4 = errno;
  int fd = open("/etc/shadow", O_RDONLY | O_CLOEXEC);
  int e3 = errno;
  if (fd >= 0)
    close(fd);
  fprintf(
      stderr,
      "jail_run probe: socket(AF_INET, SOCK_RAW) %s, kill %s, unshare %s, open /etc/shadow %s\n",
      s < 0 ? strerror(e1) : "ok", k < 0 ? strerror(e2) : "ok", u < 0 ? strerror(e4) : "ok",
      fd < 0 ? strerror(e3) : "ok");
  if (s < 0) {
    errno = e1;
    return -1;
  }
  return (ssize_t)len;
}

struct run_ctx {
  struct sbx_vm *vm;
  struct sbx_qcall *qc;
};

static void on_guest_exit(void *ctx, int status)
{
  sbx_vm_stop(((struct run_ctx *)ctx)->vm, status);
}
static void on_halt(void *ctx, unsigned idx, int stop_fd)
{
  sbx_qcall_wait(((struct run_ctx *)ctx)->qc, idx, stop_fd);
}

static void default_kernel(char *out, size_t size)
{
  const char *env = getenv("QUARK_KERNEL");
  snprintf(out, size, "%s", env && *env ? env : "/usr/local/lib/quark/qkernel.bin");
}

int main(int argc, char **argv)
{
  static const struct option opts[] = {
      {"rootfs", required_argument, NULL, 'r'},
      {"memory", required_argument, NULL, 'm'},
      {"vcpus", required_argument, NULL, 'c'},
      {"env", required_argument, NULL, 'e'},
      {"cwd", required_argument, NULL, 'w'},
      {"kernel", required_argument, NULL, 'k'},
      {"stats", required_argument, NULL, 's'},
      {"log-level", required_argument, NULL, 'l'},
      {"kernel-worker", no_argument, NULL, 'W'},
      {"no-kernel-worker", no_argument, NULL, 'N'},
      {"no-jail", no_argument, NULL, 'J'},
      {"jail", required_argument, NULL, 'j'},
      {NULL, 0, NULL, 0},
  };
  signal(SIGPIPE, SIG_IGN);
  struct rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  q_log_init(NULL, Q_LOG_WARN, "sandbox", NULL);
  if (argc < 2 || strcmp(argv[1], "run")) {
    fprintf(
        stderr,
        "usage: jail_run run [quark-sandbox run options] [--no-jail] [--jail K=V]... -- PROG...\n");
    return FAIL;
  }
  argc--;
  argv++;
  const char *rootfs = NULL, *cwd = "/", *stats = NULL;
  char kernel[PATH_MAX] = "";
  unsigned long mem_mib = 256, vcpus = 1;
  bool kernel_worker = access("/sys/module/kvm_pvm", F_OK) == 0, jail = true;
  const char **env = calloc((size_t)argc + 2, sizeof *env);
  size_t envc = 0;
  struct sbx_jail_opts jo = {0};
  q_cleanup_error q_error *err = NULL;
  int c;
  while (env && (c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
    switch (c) {
    case 'r':
      rootfs = optarg;
      break;
    case 'm':
      mem_mib = strtoul(optarg, NULL, 10);
      break;
    case 'c':
      vcpus = strtoul(optarg, NULL, 10);
      break;
    case 'e':
      env[envc++] = optarg;
      break;
    case 'w':
      cwd = optarg;
      break;
    case 'k':
      snprintf(kernel, sizeof kernel, "%s", optarg);
      break;
    case 's':
      stats = optarg;
      break;
    case 'l': {
      q_log_level lvl;
      if (q_log_level_parse(optarg, &lvl) == 0)
        q_log_set_level(lvl);
      break;
    }
    case 'W':
      kernel_worker = true;
      break;
    case 'N':
      kernel_worker = false;
      break;
    case 'J':
      jail = false;
      break;
    case 'j': {
      char *eq = strchr(optarg, '=');
      if (!eq) {
        fprintf(stderr, "jail_run: --jail wants NAME=VALUE\n");
        return FAIL;
      }
      *eq = 0;
      if (sbx_jail_opt(&jo, optarg, eq + 1, &err) < 0) {
        fprintf(stderr, "jail_run: %s\n", q_error_msg(err));
        return FAIL;
      }
      break;
    }
    default:
      return FAIL;
    }
  }
  if (!env || !rootfs || optind >= argc || mem_mib < 16 || vcpus < 1 || vcpus > QK_MAX_VCPUS)
    return FAIL;
  bool have_path = false;
  for (size_t i = 0; i < envc; i++)
    have_path |= !strncmp(env[i], "PATH=", 5);
  if (!have_path)
    env[envc++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  if (!kernel[0])
    default_kernel(kernel, sizeof kernel);

  int status = FAIL;
  struct run_ctx ctx = {0};
  int rootfd = -1;
  if (jail) {
    /* What the VMM opens after this point: the rootfs, the kernel image,
     * the stats file (and /dev/kvm, which the jail always has). */
    if (sbx_jail_opt(&jo, "root", rootfs, &err) < 0 ||
        sbx_jail_opt(&jo, "bind-ro", kernel, &err) < 0 ||
        (stats && sbx_jail_opt(&jo, "bind", stats, &err) < 0))
      goto out;
    int st;
    int r = sbx_jail_enter(&jo, &st, &err);
    if (r < 0)
      goto out;
    if (r == 1) {
      free(env);
      return st;
    }
  }
  rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) {
    q_error_make(&err, errno, "open rootfs %s", rootfs);
    goto out;
  }
  if (sbx_vm_create(&ctx.vm, (uint64_t)mem_mib << 20, (unsigned)vcpus, &err) < 0)
    goto out;
  struct sbx_boot_config bc = {
      .kernel_path = kernel,
      .rootfd = rootfd,
      .proc = {.argv = (const char *const *)argv + optind,
               .argc = (size_t)(argc - optind),
               .envp = env,
               .envc = envc,
               .cwd = cwd},
      .kernel_worker = kernel_worker,
  };
  struct sbx_boot_result br;
  if (sbx_boot_prepare(ctx.vm, &bc, &br, &err) < 0)
    goto out;
  struct sbx_qcall_config qc = {
      .mem = sbx_vm_mem(ctx.vm),
      .rings_gpa = br.rings_gpa,
      .ring_count = br.ring_count,
      .root_fd = rootfd,
      .stdio = {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO},
      .ctx = &ctx,
      .on_exit = on_guest_exit,
  };
  if (sbx_qcall_create(&ctx.qc, &qc, &err) < 0)
    goto out;
  for (unsigned i = 0; i < br.ring_count; i++) {
    if (sbx_vm_add_ioeventfd(ctx.vm, QK_PORT_KICK, i, sbx_qcall_kick_fd(ctx.qc, i), &err) < 0)
      goto out;
    if (br.kick_gpa &&
        sbx_vm_add_mmio_ioeventfd(ctx.vm, br.kick_gpa, i, sbx_qcall_kick_fd(ctx.qc, i), &err) < 0)
      goto out;
  }
  if (jail && sbx_jail_apply(&jo, &err) < 0)
    goto out;
  if (sbx_qcall_start(ctx.qc, &err) < 0)
    goto out;
  struct sbx_vm_hooks hooks = {.ctx = &ctx, .on_halt = on_halt};
  status = sbx_vm_run(ctx.vm, &hooks);
  sbx_qcall_stop(ctx.qc);
  if (stats) {
    FILE *f = fopen(stats, "w");
    if (f) {
      fprintf(f, "qcalls %llu\n", (unsigned long long)sbx_qcall_served(ctx.qc));
      sbx_vm_write_stats(ctx.vm, f);
      fclose(f);
    }
  }
out:
  if (err)
    q_error_log(NULL, "%s", q_error_msg(err));
  sbx_qcall_destroy(ctx.qc);
  sbx_vm_destroy(ctx.vm);
  if (rootfd >= 0)
    close(rootfd);
  free(env);
  return status;
}
