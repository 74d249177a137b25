/* Seccomp profiles and capability sets of containers (seccomp_profile.h). */
#include "seccomp_profile.h"

#include "api.pb-c.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const cap_names[] = {
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
};

int cri_cap_number(const char *name)
{
  if (!name)
    return -1;
  if (!strncasecmp(name, "CAP_", 4))
    name += 4;
  for (size_t i = 0; i < sizeof cap_names / sizeof cap_names[0]; i++)
    if (!strcasecmp(name, cap_names[i]))
      return (int)i;
  return -1;
}

static int caps_list(uint64_t *set, char *const *v, size_t n, bool add, q_error **err)
{
  for (size_t i = 0; i < n; i++) {
    uint64_t bits;
    if (v[i] && !strcasecmp(v[i], "ALL"))
      bits = CRI_CAPS_ALL;
    else {
      int c = cri_cap_number(v[i]);
      if (c < 0)
        return q_error_make(err, EINVAL, "unknown capability '%.64s'", v[i] ? v[i] : "");
      bits = 1ull << c;
    }
    *set = add ? *set | bits : *set & ~bits;
  }
  return 0;
}

int cri_caps_apply(uint64_t *caps, char *const *add, size_t n_add, char *const *drop, size_t n_drop,
                   q_error **err)
{
  int r = caps_list(caps, drop, n_drop, false, err);
  return r < 0 ? r : caps_list(caps, add, n_add, true, err);
}

/* ---- compilation ---- */

static const char *const default_allow[] = {"accept",
                                            "accept4",
                                            "access",
                                            "alarm",
                                            "arch_prctl",
                                            "bind",
                                            "brk",
                                            "capget",
                                            "capset",
                                            "chdir",
                                            "chmod",
                                            "chown",
                                            "clock_adjtime",
                                            "clock_getres",
                                            "clock_gettime",
                                            "clock_nanosleep",
                                            "close",
                                            "close_range",
                                            "connect",
                                            "copy_file_range",
                                            "creat",
                                            "dup",
                                            "dup2",
                                            "dup3",
                                            "epoll_create",
                                            "epoll_create1",
                                            "epoll_ctl",
                                            "epoll_ctl_old",
                                            "epoll_pwait",
                                            "epoll_pwait2",
                                            "epoll_wait",
                                            "epoll_wait_old",
                                            "eventfd",
                                            "eventfd2",
                                            "execve",
                                            "execveat",
                                            "exit",
                                            "exit_group",
                                            "faccessat",
                                            "faccessat2",
                                            "fadvise64",
                                            "fallocate",
                                            "fanotify_mark",
                                            "fchdir",
                                            "fchmod",
                                            "fchmodat",
                                            "fchmodat2",
                                            "fchown",
                                            "fchownat",
                                            "fcntl",
                                            "fdatasync",
                                            "fgetxattr",
                                            "flistxattr",
                                            "flock",
                                            "fork",
                                            "fremovexattr",
                                            "fsetxattr",
                                            "fstat",
                                            "fstatfs",
                                            "fsync",
                                            "ftruncate",
                                            "futex",
                                            "futex_waitv",
                                            "futimesat",
                                            "get_robust_list",
                                            "get_thread_area",
                                            "getcpu",
                                            "getcwd",
                                            "getdents",
                                            "getdents64",
                                            "getegid",
                                            "geteuid",
                                            "getgid",
                                            "getgroups",
                                            "getitimer",
                                            "getpeername",
                                            "getpgid",
                                            "getpgrp",
                                            "getpid",
                                            "getppid",
                                            "getpriority",
                                            "getrandom",
                                            "getresgid",
                                            "getresuid",
                                            "getrlimit",
                                            "getrusage",
                                            "getsid",
                                            "getsockname",
                                            "getsockopt",
                                            "gettid",
                                            "gettimeofday",
                                            "getuid",
                                            "getxattr",
                                            "inotify_add_watch",
                                            "inotify_init",
                                            "inotify_init1",
                                            "inotify_rm_watch",
                                            "io_cancel",
                                            "io_destroy",
                                            "io_getevents",
                                            "io_pgetevents",
                                            "io_setup",
                                            "io_submit",
                                            "ioctl",
                                            "ioprio_get",
                                            "ioprio_set",
                                            "kill",
                                            "landlock_add_rule",
                                            "landlock_create_ruleset",
                                            "landlock_restrict_self",
                                            "lchown",
                                            "lgetxattr",
                                            "link",
                                            "linkat",
                                            "listen",
                                            "listxattr",
                                            "llistxattr",
                                            "lremovexattr",
                                            "lseek",
                                            "lsetxattr",
                                            "lstat",
                                            "madvise",
                                            "membarrier",
                                            "memfd_create",
                                            "memfd_secret",
                                            "mincore",
                                            "mkdir",
                                            "mkdirat",
                                            "mknod",
                                            "mknodat",
                                            "mlock",
                                            "mlock2",
                                            "mlockall",
                                            "mmap",
                                            "mprotect",
                                            "mq_getsetattr",
                                            "mq_notify",
                                            "mq_open",
                                            "mq_timedreceive",
                                            "mq_timedsend",
                                            "mq_unlink",
                                            "mremap",
                                            "msgctl",
                                            "msgget",
                                            "msgrcv",
                                            "msgsnd",
                                            "msync",
                                            "munlock",
                                            "munlockall",
                                            "munmap",
                                            "name_to_handle_at",
                                            "nanosleep",
                                            "newfstatat",
                                            "open",
                                            "openat",
                                            "openat2",
                                            "pause",
                                            "pidfd_open",
                                            "pidfd_send_signal",
                                            "pipe",
                                            "pipe2",
                                            "pkey_alloc",
                                            "pkey_free",
                                            "pkey_mprotect",
                                            "poll",
                                            "ppoll",
                                            "prctl",
                                            "pread64",
                                            "preadv",
                                            "preadv2",
                                            "prlimit64",
                                            "process_mrelease",
                                            "pselect6",
                                            "pwrite64",
                                            "pwritev",
                                            "pwritev2",
                                            "read",
                                            "readahead",
                                            "readlink",
                                            "readlinkat",
                                            "readv",
                                            "recvfrom",
                                            "recvmmsg",
                                            "recvmsg",
                                            "remap_file_pages",
                                            "removexattr",
                                            "rename",
                                            "renameat",
                                            "renameat2",
                                            "restart_syscall",
                                            "rmdir",
                                            "rseq",
                                            "rt_sigaction",
                                            "rt_sigpending",
                                            "rt_sigprocmask",
                                            "rt_sigqueueinfo",
                                            "rt_sigreturn",
                                            "rt_sigsuspend",
                                            "rt_sigtimedwait",
                                            "rt_tgsigqueueinfo",
                                            "sched_get_priority_max",
                                            "sched_get_priority_min",
                                            "sched_getaffinity",
                                            "sched_getattr",
                                            "sched_getparam",
                                            "sched_getscheduler",
                                            "sched_rr_get_interval",
                                            "sched_setaffinity",
                                            "sched_setattr",
                                            "sched_setparam",
                                            "sched_setscheduler",
                                            "sched_yield",
                                            "seccomp",
                                            "select",
                                            "semctl",
                                            "semget",
                                            "semop",
                                            "semtimedop",
                                            "sendfile",
                                            "sendmmsg",
                                            "sendmsg",
                                            "sendto",
                                            "set_robust_list",
                                            "set_thread_area",
                                            "set_tid_address",
                                            "setfsgid",
                                            "setfsuid",
                                            "setgid",
                                            "setgroups",
                                            "setitimer",
                                            "setpgid",
                                            "setpriority",
                                            "setregid",
                                            "setresgid",
                                            "setresuid",
                                            "setreuid",
                                            "setrlimit",
                                            "setsid",
                                            "setsockopt",
                                            "setuid",
                                            "setxattr",
                                            "shmat",
                                            "shmctl",
                                            "shmdt",
                                            "shmget",
                                            "shutdown",
                                            "sigaltstack",
                                            "signalfd",
                                            "signalfd4",
                                            "socket",
                                            "socketpair",
                                            "splice",
                                            "stat",
                                            "statfs",
                                            "statx",
                                            "symlink",
                                            "symlinkat",
                                            "sync",
                                            "sync_file_range",
                                            "syncfs",
                                            "sysinfo",
                                            "tee",
                                            "tgkill",
                                            "time",
                                            "timer_create",
                                            "timer_delete",
                                            "timer_getoverrun",
                                            "timer_gettime",
                                            "timer_settime",
                                            "timerfd_create",
                                            "timerfd_gettime",
                                            "timerfd_settime",
                                            "times",
                                            "tkill",
                                            "truncate",
                                            "umask",
                                            "uname",
                                            "unlink",
                                            "unlinkat",
                                            "utime",
                                            "utimensat",
                                            "utimes",
                                            "vfork",
                                            "vmsplice",
                                            "wait4",
                                            "waitid",
                                            "waitpid",
                                            "write",
                                            "writev",
                                            NULL};

/* containerd: extra syscalls for capabilities in the bounding set. */
static const struct {
  int cap;
  const char *names[16];
} cap_allow[] = {
    {2 /* DAC_READ_SEARCH */, {"open_by_handle_at"}},
    {21 /* SYS_ADMIN */,
     {"bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
      "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open",
      "quotactl", "quotactl_fd"}},
    {21, {"setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare"}},
    {22 /* SYS_BOOT */, {"reboot"}},
    {18 /* SYS_CHROOT */, {"chroot"}},
    {16 /* SYS_MODULE */, {"delete_module", "init_module", "finit_module"}},
    {20 /* SYS_PACCT */, {"acct"}},
    {19 /* SYS_PTRACE */,
     {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"}},
    {17 /* SYS_RAWIO */, {"iopl", "ioperm"}},
    {25 /* SYS_TIME */, {"settimeofday", "stime", "clock_settime"}},
    {26 /* SYS_TTY_CONFIG */, {"vhangup"}},
    {23 /* SYS_NICE */, {"get_mempolicy", "mbind", "set_mempolicy"}},
    {34 /* SYSLOG */, {"syslog"}},
    {39 /* BPF */, {"bpf"}},
    {38 /* PERFMON */, {"perf_event_open"}},
};

/* Adds an unconditional rule; names this libseccomp does not know are
 * skipped (as runc does), a rule equal to the default action too. */
static int add_rule(scmp_filter_ctx ctx, uint32_t act, const char *name, unsigned n,
                    const struct scmp_arg_cmp *args, q_error **err)
{
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR)
    return 0;
  int r = seccomp_rule_add_array(ctx, act, nr, n, args);
  if (r == -EACCES || r == -EEXIST)
    return 0;
  return r < 0 ? q_error_make(err, -r, "seccomp rule for %s", name) : 0;
}

static int runtime_default(scmp_filter_ctx ctx, uint64_t caps, q_error **err)
{
  int r = 0;
  for (size_t i = 0; !r && default_allow[i]; i++)
    r = add_rule(ctx, SCMP_ACT_ALLOW, default_allow[i], 0, NULL, err);
  /* personality: PER_LINUX, PER_LINUX32, query */
  static const uint64_t pers[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};
  for (size_t i = 0; !r && i < sizeof pers / sizeof pers[0]; i++) {
    struct scmp_arg_cmp a = SCMP_A0(SCMP_CMP_EQ, pers[i]);
    r = add_rule(ctx, SCMP_ACT_ALLOW, "personality", 1, &a, err);
  }
  for (size_t i = 0; !r && i < sizeof cap_allow / sizeof cap_allow[0]; i++)
    if (caps >> cap_allow[i].cap & 1)
      for (size_t j = 0; !r && j < 16 && cap_allow[i].names[j]; j++)
        r = add_rule(ctx, SCMP_ACT_ALLOW, cap_allow[i].names[j], 0, NULL, err);
  if (!r && !(caps >> 21 & 1)) {
    /* clone without new namespaces; clone3 cannot be checked: ENOSYS makes
     * libcs fall back to clone */
    const uint64_t ns = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                        CLONE_NEWNET | CLONE_NEWCGROUP;
    struct scmp_arg_cmp a = SCMP_A0(SCMP_CMP_MASKED_EQ, ns, 0);
    r = add_rule(ctx, SCMP_ACT_ALLOW, "clone", 1, &a, err);
    if (!r)
      r = add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL, err);
  }
  return r;
}

/* ---- OCI JSON (Localhost) ---- */

static int parse_action(json_t *j, json_t *errno_ret, uint32_t def_errno, uint32_t *out,
                        q_error **err)
{
  const char *s = json_string_value(j);
  uint32_t e = def_errno;
  if (json_is_integer(errno_ret)) {
    json_int_t v = json_integer_value(errno_ret);
    if (v < 0 || v > 4095)
      return q_error_make(err, EINVAL, "errnoRet %lld out of range", (long long)v);
    e = (uint32_t)v;
  }
  if (!s)
    return q_error_make(err, EINVAL, "action: a string wanted");
  if (!strcmp(s, "SCMP_ACT_ALLOW"))
    *out = SCMP_ACT_ALLOW;
  else if (!strcmp(s, "SCMP_ACT_ERRNO"))
    *out = SCMP_ACT_ERRNO(e);
  else if (!strcmp(s, "SCMP_ACT_KILL") || !strcmp(s, "SCMP_ACT_KILL_THREAD"))
    *out = SCMP_ACT_KILL;
  else if (!strcmp(s, "SCMP_ACT_KILL_PROCESS"))
    *out = SCMP_ACT_KILL_PROCESS;
  else if (!strcmp(s, "SCMP_ACT_TRAP"))
    *out = SCMP_ACT_TRAP;
  else if (!strcmp(s, "SCMP_ACT_LOG"))
    *out = SCMP_ACT_LOG;
  else if (!strcmp(s, "SCMP_ACT_TRACE"))
    *out = SCMP_ACT_TRACE(e);
  else
    return q_error_make(err, EINVAL, "seccomp action %.40s is not supported", s);
  return 0;
}

static int parse_op(const char *s, enum scmp_compare *op)
{
  static const struct {
    const char *n;
    enum scmp_compare op;
  } ops[] = {{"SCMP_CMP_NE", SCMP_CMP_NE},
             {"SCMP_CMP_LT", SCMP_CMP_LT},
             {"SCMP_CMP_LE", SCMP_CMP_LE},
             {"SCMP_CMP_EQ", SCMP_CMP_EQ},
             {"SCMP_CMP_GE", SCMP_CMP_GE},
             {"SCMP_CMP_GT", SCMP_CMP_GT},
             {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
  for (size_t i = 0; s && i < sizeof ops / sizeof ops[0]; i++)
    if (!strcmp(s, ops[i].n)) {
      *op = ops[i].op;
      return 0;
    }
  return -1;
}

static int add_arch(scmp_filter_ctx ctx, const char *name, q_error **err)
{
  if (!name || strncmp(name, "SCMP_ARCH_", 10))
    return q_error_make(err, EINVAL, "architecture '%.40s'", name ? name : "");
  char low[32];
  size_t i = 0;
  for (const char *p = name + 10; *p && i + 1 < sizeof low; p++)
    low[i++] = (char)tolower((unsigned char)*p);
  low[i] = 0;
  uint32_t a = seccomp_arch_resolve_name(low);
  if (!a)
    return 0; /* an architecture this libseccomp does not know: nothing to add */
  if (a != SCMP_ARCH_X86_64 && a != SCMP_ARCH_X86 && a != SCMP_ARCH_X32)
    return 0; /* the guest runs x86-64 code only */
  int r = seccomp_arch_add(ctx, a);
  return r < 0 && r != -EEXIST ? q_error_make(err, -r, "architecture %s", name) : 0;
}

static int localhost(const char *path, const char *root, scmp_filter_ctx *out, q_error **err)
{
  if (!path || path[0] != '/')
    return q_error_make(err, EINVAL, "Localhost seccomp profile: an absolute path wanted");
  char real[PATH_MAX];
  if (!realpath(path, real))
    return q_error_make(err, errno, "seccomp profile %.200s", path);
  if (root) {
    char rroot[PATH_MAX];
    size_t n;
    if (!realpath(root, rroot) || strncmp(real, rroot, n = strlen(rroot)) ||
        (real[n] != '/' && n > 1))
      return q_error_make(err, EACCES, "seccomp profile %.200s is not under the seccomp root %s",
                          path, root);
  }
  json_error_t je;
  json_t *j = json_load_file(real, JSON_REJECT_DUPLICATES, &je);
  if (!j)
    return q_error_make(err, EINVAL, "seccomp profile %.200s: %s (line %d)", path, je.text,
                        je.line);
  int r = 0;
  scmp_filter_ctx ctx = NULL;
  uint32_t def_errno = EPERM, def;
  json_t *de = json_object_get(j, "defaultErrnoRet");
  if (json_is_integer(de))
    def_errno = (uint32_t)json_integer_value(de);
  if (!json_is_object(j) || def_errno > 4095) {
    r = q_error_make(err, EINVAL, "seccomp profile %.200s: not an OCI seccomp object", path);
    goto out;
  }
  if ((r = parse_action(json_object_get(j, "defaultAction"), NULL, def_errno, &def, err)) < 0)
    goto out;
  if (!(ctx = seccomp_init(def))) {
    r = q_error_make(err, ENOMEM, "seccomp_init");
    goto out;
  }
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(j, "architectures"), i, v)
  {
    if ((r = add_arch(ctx, json_string_value(v), err)) < 0)
      goto out;
  }
  json_array_foreach(json_object_get(j, "archMap"), i, v) /* Docker's format */
  {
    if ((r = add_arch(ctx, json_string_value(json_object_get(v, "architecture")), err)) < 0)
      goto out;
    size_t k;
    json_t *s;
    json_array_foreach(json_object_get(v, "subArchitectures"), k, s)
    {
      if ((r = add_arch(ctx, json_string_value(s), err)) < 0)
        goto out;
    }
  }
  json_t *sys = json_object_get(j, "syscalls");
  if (sys && !json_is_array(sys)) {
    r = q_error_make(err, EINVAL, "seccomp profile: syscalls must be an array");
    goto out;
  }
  json_array_foreach(sys, i, v)
  {
    uint32_t act;
    if ((r = parse_action(json_object_get(v, "action"), json_object_get(v, "errnoRet"), def_errno,
                          &act, err)) < 0)
      goto out;
    json_t *args = json_object_get(v, "args");
    struct scmp_arg_cmp cmp[6];
    unsigned nargs = 0;
    size_t k;
    json_t *a;
    if (args && (!json_is_array(args) || json_array_size(args) > 6)) {
      r = q_error_make(err, EINVAL, "syscalls[%zu].args: at most 6", i);
      goto out;
    }
    json_array_foreach(args, k, a)
    {
      enum scmp_compare op;
      json_int_t idx = json_integer_value(json_object_get(a, "index"));
      if (idx < 0 || idx > 5 || parse_op(json_string_value(json_object_get(a, "op")), &op) < 0) {
        r = q_error_make(err, EINVAL, "syscalls[%zu].args[%zu]: index 0..5 and an op wanted", i, k);
        goto out;
      }
      cmp[nargs++] = (struct scmp_arg_cmp){
          .arg = (unsigned)idx,
          .op = op,
          .datum_a = (scmp_datum_t)json_integer_value(json_object_get(a, "value")),
          .datum_b = (scmp_datum_t)json_integer_value(json_object_get(a, "valueTwo"))};
    }
    json_t *names = json_object_get(v, "names");
    json_t *name1 = json_object_get(v, "name");
    if (json_is_string(name1) &&
        (r = add_rule(ctx, act, json_string_value(name1), nargs, cmp, err)) < 0)
      goto out;
    json_array_foreach(names, k, a)
    {
      if (!json_is_string(a)) {
        r = q_error_make(err, EINVAL, "syscalls[%zu].names: strings wanted", i);
        goto out;
      }
      if ((r = add_rule(ctx, act, json_string_value(a), nargs, cmp, err)) < 0)
        goto out;
    }
  }
out:
  json_decref(j);
  if (r < 0) {
    if (ctx)
      seccomp_release(ctx);
    return r;
  }
  *out = ctx;
  return 0;
}

static int export(scmp_filter_ctx ctx, void **prog, size_t *n, q_error **err)
{
  int fd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
  if (fd < 0)
    return q_error_make(err, errno, "memfd");
  int r = seccomp_export_bpf(ctx, fd);
  if (r < 0) {
    close(fd);
    return q_error_make(err, -r, "seccomp_export_bpf");
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size % 8 || st.st_size > 4096 * 8) {
    close(fd);
    return q_error_make(err, E2BIG, "seccomp program of %lld bytes (at most 4096 instructions)",
                        (long long)st.st_size);
  }
  void *buf = malloc((size_t)st.st_size);
  if (!buf || pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
    free(buf);
    close(fd);
    return q_error_make(err, EIO, "read seccomp program");
  }
  close(fd);
  *prog = buf;
  *n = (size_t)st.st_size / 8;
  return 0;
}

int cri_seccomp_compile(enum cri_seccomp_type type, const char *path, const char *root,
                        uint64_t caps, void **prog, size_t *n, q_error **err)
{
  *prog = NULL;
  *n = 0;
  scmp_filter_ctx ctx = NULL;
  int r;
  switch (type) {
  case CRI_SECCOMP_UNCONFINED:
    return 0;
  case CRI_SECCOMP_RUNTIME_DEFAULT:
    if (!(ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM))))
      return q_error_make(err, ENOMEM, "seccomp_init");
    r = runtime_default(ctx, caps, err);
    break;
  case CRI_SECCOMP_LOCALHOST:
    r = localhost(path, root, &ctx, err);
    break;
  default:
    return q_error_make(err, EINVAL, "seccomp profile type %d", (int)type);
  }
  if (r == 0)
    r = export(ctx, prog, n, err);
  if (ctx)
    seccomp_release(ctx);
  return r;
}

int cri_security_from_cri(const Runtime__V1__LinuxContainerSecurityContext *sc, uint64_t *caps,
                          bool *no_new_privs, void **prog, size_t *n, q_error **err)
{
  *caps = CRI_CAPS_DEFAULT;
  *no_new_privs = sc && sc->no_new_privs;
  *prog = NULL;
  *n = 0;
  if (!sc)
    return 0;
  if (sc->privileged) {
    *caps = CRI_CAPS_ALL; /* inside the VM only: the VMM stays jailed */
    return 0;
  }
  const Runtime__V1__Capability *cp = sc->capabilities;
  int r;
  if (cp && (r = cri_caps_apply(caps, cp->add_capabilities, cp->n_add_capabilities,
                                cp->drop_capabilities, cp->n_drop_capabilities, err)) < 0)
    return r;
  enum cri_seccomp_type type = CRI_SECCOMP_UNCONFINED;
  const char *path = NULL;
  if (sc->seccomp) {
    type = (enum cri_seccomp_type)sc->seccomp->profile_type;
    path = sc->seccomp->localhost_ref;
  } else {
    /* the deprecated field, still sent by older kubelets */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    const char *sp = sc->seccomp_profile_path ? sc->seccomp_profile_path : "";
#pragma GCC diagnostic pop
    if (!strcmp(sp, "runtime/default") || !strcmp(sp, "docker/default"))
      type = CRI_SECCOMP_RUNTIME_DEFAULT;
    else if (!strncmp(sp, "localhost/", 10)) {
      type = CRI_SECCOMP_LOCALHOST;
      path = sp + 9; /* keeps the '/': an absolute path */
    } else if (*sp && strcmp(sp, "unconfined"))
      return q_error_make(err, EINVAL, "seccomp profile path '%.100s' is not supported", sp);
  }
  const char *root = getenv("QUARK_SECCOMP_ROOT");
  return cri_seccomp_compile(type, path, root && *root ? root : "/var/lib/kubelet/seccomp", *caps,
                             prog, n, err);
}
