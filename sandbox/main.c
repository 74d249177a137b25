/* quark-sandbox: the per-pod VMM. This file is the command line; the work is
 * in kvm/ (VM and vCPUs), arch/x86_64/ (boot state), loader/ (ELF) and
 * qcall/ (host services).
 *
 *   quark-sandbox run --rootfs DIR [--memory MiB] [--vcpus N] [--env K=V]...
 *                     [--cwd DIR] [--kernel FILE] [--stats FILE]
 *                     [--log-level LEVEL] [--kernel-worker|--no-kernel-worker]
 *                     [--no-jail] [--tsor SOCKET --tsor-ip IP [--tsor-cidr CIDR,...]]
 *                     -- PROGRAM [ARGS...]
 *   quark-sandbox pod --control SOCK --pod-id ID ...   (pod daemon: pod/pod.c)
 *
 * The program's stdout/stderr are this process's; the exit status is the
 * program's, or 125 when the sandbox or the guest kernel failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <quark/common.h>

#include "../guestkernel/abi/qk_abi.h"

#include "guest.h"
#include "jail/guest_sec.h"
#include "jail/jail.h"
#include "jail/rootmount.h"
#include "kvm/vm.h"
#include "pod/pod.h"
#include "qcall/ops_tsor.h"

#define EXIT_SANDBOX_FAILURE 125
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static void usage(FILE *f)
{
  fprintf(f, "usage: quark-sandbox run --rootfs DIR [--memory MiB] [--vcpus N] [--env K=V]... [--cwd DIR]\n"
             "                        [--kernel FILE] [--stats FILE] [--log-level LEVEL]\n"
             "                        [--kernel-worker|--no-kernel-worker] [--no-jail]\n"
             "                        [--tsor SOCKET --tsor-ip IP [--tsor-cidr CIDR,...]] -- PROGRAM [ARGS...]\n"
             "       quark-sandbox run ... [--user UID[:GID]] [--groups G,..] [--caps HEX] [--no-new-privs]\n"
             "                             [--seccomp-bpf FILE] [--read-only-root] -- PROGRAM (guest security settings)\n"
             "       quark-sandbox run ... [--masked-path PATH]... [--readonly-path PATH]... -- PROGRAM\n"
             "       quark-sandbox pod --control SOCK --pod-id ID [options] (see quark-sandbox pod --help)\n");
}

static int cmd_run(int argc, char **argv)
{
  static const struct option opts[] = {
      {"rootfs", required_argument, NULL, 'r'}, {"memory", required_argument, NULL, 'm'},
      {"vcpus", required_argument, NULL, 'c'},  {"env", required_argument, NULL, 'e'},
      {"cwd", required_argument, NULL, 'w'},    {"kernel", required_argument, NULL, 'k'},
      {"stats", required_argument, NULL, 's'},  {"log-level", required_argument, NULL, 'l'},
      {"kernel-worker", no_argument, NULL, 'W'}, {"no-kernel-worker", no_argument, NULL, 'N'},
      {"no-jail", no_argument, NULL, 'J'},       {"help", no_argument, NULL, 'h'},
      {"tsor", required_argument, NULL, 'T'},    {"tsor-ip", required_argument, NULL, 'I'}, /* TSoR */
      {"tsor-cidr", required_argument, NULL, 'C'},
      /* guest security settings (jail/guest_sec.h) */
      {"seccomp-bpf", required_argument, NULL, 0x100}, {"caps", required_argument, NULL, 0x100},
      {"groups", required_argument, NULL, 0x100},      {"user", required_argument, NULL, 0x100},
      {"no-new-privs", no_argument, NULL, 0x100},
      {"read-only-root", no_argument, NULL, 0x100}, /* readOnlyRootFilesystem */
      /* OCI masked and read-only paths, made on the host (jail/rootmount.h) */
      {"masked-path", required_argument, NULL, 0x101},
      {"readonly-path", required_argument, NULL, 0x102},
      {NULL, 0, NULL, 0},
  };
  const char *rootfs = NULL, *cwd = "/", *stats = NULL;
  char kernel[PATH_MAX] = "";
  unsigned long mem_mib = 256, vcpus = 1;
  /* The ring-3 kernel worker pays off where guest ring 0 is emulated
   * (PVM-style KVM); QUARK_KERNEL_WORKER=0/1 or the flags override. */
  const char *kw = getenv("QUARK_KERNEL_WORKER");
  bool kernel_worker = kw && *kw ? !strcmp(kw, "1") : access("/sys/module/kvm_pvm", F_OK) == 0;
  const char **env = calloc((size_t)argc + 2, sizeof *env);
  size_t envc = 0;
  bool jail = true;
  const char *tsor_sock = NULL, *tsor_ip = NULL, *tsor_cidr = NULL; /* TSoR: off unless --tsor */
  if (!env)
    return EXIT_SANDBOX_FAILURE;
  int c, oi;
  struct sbx_guest_sec sec = {0};
  json_t *masked = NULL, *ropaths = NULL; /* made at the first path */
  optind = 1;
  while ((c = getopt_long(argc, argv, "+", opts, &oi)) != -1) {
    char *end;
    switch (c) {
    case 0x100: {
      q_cleanup_error q_error *serr = NULL;
      if (sbx_guest_sec_opt(&sec, opts[oi].name, optarg, &serr) < 0) {
        q_error_log(NULL, "%s", q_error_msg(serr));
        sbx_guest_sec_free(&sec);
        free(env);
        return EXIT_SANDBOX_FAILURE;
      }
      break;
    }
    case 0x101:
    case 0x102:
      if (optarg[0] != '/') {
        q_error_log(NULL, "--%s wants an absolute path in the container", opts[oi].name);
        json_decref(masked);
        json_decref(ropaths);
        sbx_guest_sec_free(&sec);
        free(env);
        return EXIT_SANDBOX_FAILURE;
      }
      if (c == 0x101 && !masked)
        masked = json_array();
      if (c == 0x102 && !ropaths)
        ropaths = json_array();
      json_array_append_new(c == 0x101 ? masked : ropaths, json_string(optarg));
      break;
    case 'r':
      rootfs = optarg;
      break;
    case 'm':
      errno = 0;
      mem_mib = strtoul(optarg, &end, 10);
      if (errno || *end || mem_mib < 16 || mem_mib > (1ul << 20)) {
        fprintf(stderr, "quark-sandbox: --memory wants MiB in 16..1048576\n");
        free(env);
        return EXIT_SANDBOX_FAILURE;
      }
      break;
    case 'c':
      errno = 0;
      vcpus = strtoul(optarg, &end, 10);
      if (errno || *end || vcpus < 1 || vcpus > QK_MAX_VCPUS) {
        fprintf(stderr, "quark-sandbox: --vcpus wants 1..%u\n", QK_MAX_VCPUS);
        free(env);
        return EXIT_SANDBOX_FAILURE;
      }
      break;
    case 'e':
      if (!strchr(optarg, '=')) {
        fprintf(stderr, "quark-sandbox: --env wants K=V\n");
        free(env);
        return EXIT_SANDBOX_FAILURE;
      }
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
      if (q_log_level_parse(optarg, &lvl) < 0) {
        fprintf(stderr, "quark-sandbox: unknown log level %s\n", optarg);
        free(env);
        return EXIT_SANDBOX_FAILURE;
      }
      q_log_set_level(lvl);
      break;
    }
    case 'W':
      kernel_worker = true;
      break;
    case 'N':
      kernel_worker = false;
      break;
    case 'J': /* debugging: no namespaces, capabilities or seccomp */
      jail = false;
      break;
    case 'T':
      tsor_sock = optarg;
      break;
    case 'I':
      tsor_ip = optarg;
      break;
    case 'C':
      tsor_cidr = optarg;
      break;
    case 'h':
      usage(stdout);
      free(env);
      return 0;
    default:
      usage(stderr);
      free(env);
      return EXIT_SANDBOX_FAILURE;
    }
  }
  if (!rootfs || optind >= argc || cwd[0] != '/') {
    usage(stderr);
    free(env);
    return EXIT_SANDBOX_FAILURE;
  }
  bool have_path = false;
  for (size_t i = 0; i < envc; i++)
    have_path |= !strncmp(env[i], "PATH=", 5);
  if (!have_path)
    env[envc++] = DEFAULT_PATH;
  if (!kernel[0])
    sbx_default_kernel(kernel, sizeof kernel);

  /* TSoR (sandbox/qcall/ops_tsor.h): attach to tsord before the jail hides
   * its socket. */
  if (tsor_sock) {
    q_cleanup_error q_error *terr = NULL;
    if (sbx_tsor_setup(tsor_sock, tsor_ip, tsor_cidr, &terr) < 0) {
      q_error_log(NULL, "%s", q_error_msg(terr));
      free(env);
      return EXIT_SANDBOX_FAILURE;
    }
  }
  /* The jail (sandbox/jail/jail.h): namespaces before /dev/kvm is opened,
   * the rest after the guest exists and before its threads start. */
  struct sbx_jail_opts jo = {0};
  if (jail) {
    q_cleanup_error q_error *jerr = NULL;
    int jst = EXIT_SANDBOX_FAILURE, jr = 0;
    if (sbx_jail_opt(&jo, "root", rootfs, &jerr) < 0 || sbx_jail_opt(&jo, "bind-ro", kernel, &jerr) < 0 ||
        (stats && sbx_jail_opt(&jo, "bind", stats, &jerr) < 0) || (jr = sbx_jail_enter(&jo, &jst, &jerr)) != 0) {
      if (jerr)
        q_error_log(NULL, "%s", q_error_msg(jerr));
      sbx_guest_sec_free(&sec);
      free(env);
      json_decref(masked);
      json_decref(ropaths);
      return jr == 1 ? jst : EXIT_SANDBOX_FAILURE;
    }
  }
  int status = EXIT_SANDBOX_FAILURE;
  q_cleanup_error q_error *err = NULL;
  struct sbx_guest *g = NULL;
  /* Masked and read-only paths: the root in a private mount namespace of
   * a helper (inside the jail, before capabilities go), as pods get it. */
  q_cleanup_close int rootfd = -1, rootns = -1;
  if (json_array_size(masked) || json_array_size(ropaths)) {
    if (sbx_root_open(rootfs, NULL, false, masked, ropaths, &rootfd, &rootns, &err) < 0)
      goto out;
  } else if ((rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
    q_error_make(&err, errno, "open rootfs %s", rootfs);
    goto out;
  }
  struct sbx_guest_config gc = {
      .kernel = kernel,
      .rootfd = rootfd,
      .argv = (const char *const *)argv + optind,
      .argc = (size_t)(argc - optind),
      .envp = env,
      .envc = envc,
      .cwd = cwd,
      .mem_bytes = (uint64_t)mem_mib << 20,
      .vcpus = (unsigned)vcpus,
      .kernel_worker = kernel_worker,
      .stdio = {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO},
      .uid = sec.uid,
      .gid = sec.gid,
      .sec_flags = sec.flags,
      .caps = sec.caps,
      .groups = (sec.flags & QK_SEC_GROUPS) ? sec.groups : NULL,
      .ngroups = sec.ngroups,
      .seccomp = sec.bpf,
      .seccomp_len = sec.bpf_len,
  };
  if (sbx_guest_create(&gc, &g, &err) < 0 || (jail && sbx_jail_apply(&jo, &err) < 0))
    goto out;
  q_debug(NULL, "guest ready: %lu MiB, %lu vcpus, kernel %s", mem_mib, vcpus, kernel);
  status = sbx_guest_run(g);
  if (stats) {
    FILE *f = fopen(stats, "w");
    if (f) {
      sbx_guest_write_stats(g, f);
      fclose(f);
    } else {
      q_warn(NULL, "stats file %s: %s", stats, strerror(errno));
    }
  }
out:
  if (err)
    q_error_log(NULL, "%s", q_error_msg(err));
  json_decref(masked);
  json_decref(ropaths);
  sbx_guest_destroy(g);
  sbx_guest_sec_free(&sec);
  free(env);
  return status;
}

int main(int argc, char **argv)
{
  signal(SIGPIPE, SIG_IGN); /* a closed stdout is EPIPE for the guest, not our death */
  /* The guest's open files are host fds of this process (QCall fd table). */
  struct rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  q_log_init(NULL, Q_LOG_WARN, "sandbox", NULL);
  const char *lvl = getenv("QUARK_LOG_LEVEL");
  q_log_level l;
  if (lvl && q_log_level_parse(lvl, &l) == 0)
    q_log_set_level(l);
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? EXIT_SANDBOX_FAILURE : 0;
  }
  if (!strcmp(argv[1], "run"))
    return cmd_run(argc - 1, argv + 1);
  if (!strcmp(argv[1], "pod"))
    return sbx_pod_main(argc - 1, argv + 1);
  fprintf(stderr, "quark-sandbox: unknown command %s\n", argv[1]);
  usage(stderr);
  return EXIT_SANDBOX_FAILURE;
}
