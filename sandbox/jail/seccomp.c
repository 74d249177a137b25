/* The seccomp allowlist of quark-sandbox (see jail.h and the README's "The
 * sandbox jail" for why each entry is there).
 *
 * Default action: SECCOMP_RET_TRAP with a SIGSYS handler that answers the
 * call with -EPERM and logs its number once. For the caller this is exactly
 * SCMP_ACT_ERRNO(EPERM) (the blocked call fails, nothing else happens),
 * and unlike ERRNO it tells us in our own log which syscall was refused,
 * which is how a missing entry is found; SECCOMP_RET_LOG would allow the
 * call, and the audit log is not ours to read.
 *
 * This file includes <linux/kvm.h> for the ioctl numbers the filter admits
 * (the KVM layer's own include rule is about code that drives KVM).
 */
#include "jail.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/sockios.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452 /* ops_fs.c: Linux 6.6, newer than these headers */
#endif

#include <sched.h>

/* Admitted with any arguments. The run-mode entries are the ones strace
 * showed after set-up over the guest test programs, busybox applets and
 * the hostile program (tests/integration/guest), plus the fallbacks the
 * same code paths take (see README, "The sandbox jail"). */
static const int plain[] = {
    /* memory: guest memory advice, thread stacks, malloc (brk and mremap in
     * glibc's allocator) */
    SCMP_SYS(munmap),
    SCMP_SYS(madvise),
    SCMP_SYS(brk),
    SCMP_SYS(mremap),
    /* threads: QCall workers and vCPU threads start after the jail */
    SCMP_SYS(set_robust_list),
    SCMP_SYS(rseq),
    SCMP_SYS(futex),
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
    SCMP_SYS(sched_getaffinity),
    SCMP_SYS(gettid),
    SCMP_SYS(getpid),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(sigaltstack),
    /* QCall: the guest's files beneath its root, its stdio, host services */
    SCMP_SYS(openat2),
    SCMP_SYS(close),
    SCMP_SYS(read),
    SCMP_SYS(write),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(pread64),
    SCMP_SYS(preadv),
    SCMP_SYS(pwritev),
    SCMP_SYS(lseek),
    SCMP_SYS(newfstatat),
    SCMP_SYS(getdents64),
    SCMP_SYS(readlinkat),
    SCMP_SYS(faccessat2),
    SCMP_SYS(mkdirat),
    SCMP_SYS(unlinkat),
    SCMP_SYS(fsync),
    SCMP_SYS(ftruncate),
    /* QCall filesystem writes (ops_fs.c) */
    SCMP_SYS(renameat2),
    SCMP_SYS(linkat),
    SCMP_SYS(symlinkat),
    SCMP_SYS(fchmodat2),
    SCMP_SYS(fchownat),
    SCMP_SYS(utimensat),
    SCMP_SYS(syncfs),
    SCMP_SYS(fstatfs),
    SCMP_SYS(mknodat),
    SCMP_SYS(fallocate),
    SCMP_SYS(getrandom),
    SCMP_SYS(io_uring_enter),
    /* waits: QCall workers, vCPU halts, guest sleeps */
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),
    SCMP_SYS(clock_gettime),
    SCMP_SYS(clock_nanosleep),
    /* the guest's TCP/UDP sockets, host sockets in the pod's netns
     * (qcall/ops_net.c; socket itself is filtered below) */
    SCMP_SYS(connect),
    SCMP_SYS(bind),
    SCMP_SYS(listen),
    SCMP_SYS(accept4),
    SCMP_SYS(sendmsg),
    SCMP_SYS(recvmsg),
    SCMP_SYS(getsockname),
    SCMP_SYS(getpeername),
    SCMP_SYS(setsockopt),
    SCMP_SYS(getsockopt),
    SCMP_SYS(shutdown),
    /* The TSoR client (qcall/ops_tsor.c) yields while it waits for tsord. */
    SCMP_SYS(sched_yield),
};

/* Pod mode (SBX_JAIL_POD): guests are created after set-up (one per
 * container and exec) and the control socket is served (its accept4,
 * recvmsg, sendmsg are the guest sockets' too). From the code of
 * sbx_vm_create, sbx_qcall_create and the control server. */
static const int pod_plain[] = {
    SCMP_SYS(eventfd2),
    SCMP_SYS(io_uring_setup),
    SCMP_SYS(io_uring_register),
    /* stdin/exec socket pairs of containers and execs (pod_ctr.c; unix
     * only, filtered below), the shared VM's pipes (pod_vm.c) */
    SCMP_SYS(pipe2),
    /* the bind-mount helper's child is reaped (fork and mount are filtered
     * below) */
    SCMP_SYS(wait4),
    /* glibc's unlink(2) of the control socket at exit */
    SCMP_SYS(unlink),
    /* QCall stdio on the containers' socket pairs: RWF_NOWAIT reads and
     * writes (qcall_host.c) */
    SCMP_SYS(preadv2),
    SCMP_SYS(pwritev2),
    /* kvm/vm.c probes /sys/module/kvm_pvm when it creates a later VM */
    SCMP_SYS(access),
    /* the kernel's restart of a sleep a signal (vCPU kick) interrupted */
    SCMP_SYS(restart_syscall),
    /* send(2) on the control connection and guest sockets (glibc: sendto) */
    SCMP_SYS(sendto),
    /* container stats: resident pages of the guest's memory (ours) */
    SCMP_SYS(mincore),
    /* the guest's sendfile to a socket (ops_net.c; between fds of its
     * QCall table; run mode takes the copy fallback) */
    SCMP_SYS(sendfile),
};

#if defined(__SANITIZE_ADDRESS__)
/* Sanitizer builds only (the test build): LeakSanitizer's exit-time check
 * stops the threads with a helper that shares our memory (clone with
 * CLONE_VM | CLONE_UNTRACED, no CLONE_THREAD) and ptrace-attaches them,
 * reading /proc/self/task and /proc/self/maps with the legacy x86-64
 * syscalls of its own raw wrappers (open, getdents, readlink, stat).
 * Release builds load the filter without these. */
static const int sanitizer_plain[] = {
    SCMP_SYS(prctl),       SCMP_SYS(ptrace), SCMP_SYS(wait4),    SCMP_SYS(getppid),
    SCMP_SYS(sched_yield), SCMP_SYS(open),   SCMP_SYS(getdents), SCMP_SYS(readlink),
    SCMP_SYS(stat),        SCMP_SYS(lstat),  SCMP_SYS(fstat),
};
#define SANITIZER_EXTRA (Q_ARRAY_SIZE(sanitizer_plain))
#else
#define SANITIZER_EXTRA 0
#endif

/* ioctl requests: running and inspecting the VM (stats at exit, register
 * dump on a guest failure) and the two terminal queries QCall forwards for
 * the guest's stdio. */
static const unsigned long ioctls[] = {
    KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS, KVM_GET_STATS_FD,
    TCGETS,  TIOCGWINSZ,   SIOCINQ,       SIOCOUTQ, /* queued bytes of a guest socket */
};

/* Pod mode: creating and programming later guests. */
static const unsigned long pod_ioctls[] = {
    KVM_GET_API_VERSION,
    KVM_CREATE_VM,
    KVM_CHECK_EXTENSION,
    KVM_GET_VCPU_MMAP_SIZE,
    KVM_GET_SUPPORTED_CPUID,
    KVM_SET_TSS_ADDR,
    KVM_SET_USER_MEMORY_REGION,
    KVM_CREATE_VCPU,
    KVM_IOEVENTFD,
    KVM_SET_REGS,
    KVM_SET_SREGS,
    KVM_SET_CPUID2,
    KVM_SET_FPU,
    KVM_SET_MSRS,
    KVM_SET_XCRS,
    KVM_GET_TSC_KHZ,
    /* interrupts of later guests (kvm/: in-kernel irqchip, MSI routes
     * and irqfds for the vCPU kicks) */
    KVM_CREATE_IRQCHIP,
    KVM_SET_GSI_ROUTING,
    KVM_IRQFD,
    KVM_SET_MP_STATE,
};

/* Pod mode: the read-only interface queries ops_net.c forwards. */
static const unsigned long pod_net_ioctls[] = {
    SIOCGIFNAME,    SIOCGIFFLAGS, SIOCGIFADDR,   SIOCGIFDSTADDR, SIOCGIFBRDADDR,
    SIOCGIFNETMASK, SIOCGIFMTU,   SIOCGIFHWADDR, SIOCGIFINDEX,   SIOCGIFTXQLEN,
    SIOCGIFCONF,
};

static atomic_uint blocked_count;
static atomic_ulong blocked_seen[8]; /* one bit per syscall number < 512 */

static void put_dec(char *p, unsigned v, size_t *n)
{
  char tmp[12];
  size_t k = 0;
  do
    tmp[k++] = (char)('0' + v % 10);
  while ((v /= 10) && k < sizeof tmp);
  while (k)
    p[(*n)++] = tmp[--k];
}

/* SIGSYS from SECCOMP_RET_TRAP: the call's result becomes -EPERM. Only
 * async-signal-safe work: an atomic bitmap and one write(2). */
static void on_sigsys(int sig, siginfo_t *si, void *uctx)
{
  (void)sig;
  ucontext_t *uc = uctx;
  uc->uc_mcontext.gregs[REG_RAX] = -EPERM;
  unsigned nr = (unsigned)si->si_syscall;
  unsigned long bit = 1ul << (nr % 64);
  if (nr >= 512 || (atomic_fetch_or(&blocked_seen[nr / 64], bit) & bit))
    return;
  atomic_fetch_add(&blocked_count, 1);
  char line[96] = "quark-sandbox: jail: blocked host syscall ";
  size_t n = strlen(line);
  put_dec(line, nr, &n);
  if (nr == SCMP_SYS(ioctl)) { /* which request: the one entry that is by argument */
    static const char hex[] = "0123456789abcdef";
    unsigned long req = (unsigned long)uc->uc_mcontext.gregs[REG_RSI];
    memcpy(line + n, " ioctl 0x", 9);
    n += 9;
    for (int sh = 28; sh >= 0; sh -= 4)
      line[n++] = hex[(req >> sh) & 0xf];
  }
  memcpy(line + n, " (EPERM; logged once)\n", 23);
  n += 22;
  ssize_t w = write(STDERR_FILENO, line, n);
  (void)w;
}

unsigned sbx_jail_seccomp_blocked(void)
{
  return atomic_load(&blocked_count);
}

size_t sbx_jail_seccomp_count(bool pod)
{
  return sbx_jail_seccomp_count_helper(pod, pod);
}

size_t sbx_jail_seccomp_count_helper(bool pod, bool helper)
{
  /* plain entries, then ioctl, mmap, mprotect, clone, openat, tgkill,
   * socket, fcntl; clone3 is answered, not admitted; pod mode adds
   * socketpair, unshare, mount (clone is counted already) */
  return Q_ARRAY_SIZE(plain) + 8 + SANITIZER_EXTRA + (pod ? Q_ARRAY_SIZE(pod_plain) + 3 : 0) -
         (pod && !helper ? 3 : 0); /* wait4, unshare, mount */
}

static int rule(scmp_filter_ctx ctx, uint32_t action, int nr, unsigned cnt,
                const struct scmp_arg_cmp *args)
{
  return seccomp_rule_add_array(ctx, action, nr, cnt, args);
}

/* Pod mode: the container bind-mount helper (pod_ctr.c open_root) is a
 * fork()ed child that unshares a mount namespace, makes it private, binds
 * the container's mounts (recursively, then a read-only remount) and sends
 * back the root and namespace fds. Only glibc's fork (exact clone flags,
 * no shared memory, no new namespace), only CLONE_NEWNS, and only the
 * three mount flag sets it uses: never a new filesystem, a move or an
 * unmount. */
static int pod_mount_rules(scmp_filter_ctx ctx)
{
  int r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
               &SCMP_A0_64(SCMP_CMP_EQ, CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD));
  if (!r)
    r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(unshare), 1, &SCMP_A0_64(SCMP_CMP_EQ, CLONE_NEWNS));
  static const unsigned long flags[] = {MS_REC | MS_PRIVATE, MS_BIND | MS_REC,
                                        MS_REMOUNT | MS_BIND | MS_RDONLY};
  for (size_t i = 0; i < Q_ARRAY_SIZE(flags) && !r; i++)
    r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mount), 1, &SCMP_A3_64(SCMP_CMP_EQ, flags[i]));
  return r;
}

static int build(scmp_filter_ctx ctx, bool pod, bool helper)
{
  int r = 0;
  for (size_t i = 0; i < Q_ARRAY_SIZE(plain) && r == 0; i++)
    r = rule(ctx, SCMP_ACT_ALLOW, plain[i], 0, NULL);
  for (size_t i = 0; i < Q_ARRAY_SIZE(ioctls) && r == 0; i++)
    r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, &SCMP_A1_64(SCMP_CMP_EQ, ioctls[i]));
  for (size_t i = 0; pod && i < Q_ARRAY_SIZE(pod_plain) && r == 0; i++)
    if (helper || pod_plain[i] != SCMP_SYS(wait4))
      r = rule(ctx, SCMP_ACT_ALLOW, pod_plain[i], 0, NULL);
  for (size_t i = 0; pod && i < Q_ARRAY_SIZE(pod_ioctls) && r == 0; i++)
    r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, &SCMP_A1_64(SCMP_CMP_EQ, pod_ioctls[i]));
#if defined(__SANITIZE_ADDRESS__)
  for (size_t i = 0; i < Q_ARRAY_SIZE(sanitizer_plain) && r == 0; i++)
    r = rule(ctx, SCMP_ACT_ALLOW, sanitizer_plain[i], 0, NULL);
  if (!r)
    r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
             &SCMP_A0_64(SCMP_CMP_MASKED_EQ, CLONE_VM | CLONE_UNTRACED | CLONE_THREAD,
                         CLONE_VM | CLONE_UNTRACED));
#endif
  if (r)
    return r;
  /* No new executable memory after set-up: the VMM's code is all loaded. */
  r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1, &SCMP_A2_64(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
  if (!r)
    r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
             &SCMP_A2_64(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
  /* Threads only, never a new process. glibc creates threads with clone3,
   * whose flags sit behind a pointer the filter cannot read: clone3 answers
   * ENOSYS and glibc falls back to clone, whose flags it can. */
  if (!r)
    r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
             &SCMP_A0_64(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
  if (!r)
    r = rule(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0, NULL);
  /* Paths only relative to the jail's cwd or root: never beneath a held
   * directory fd (a container root opened before the jail), where ".."
   * would climb; guest paths go through openat2 RESOLVE_IN_ROOT. */
  if (!r)
    r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
             &SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)AT_FDCWD));
  /* Sockets: the guest's TCP and UDP (IPv4, IPv6; never raw or packet
   * sockets), and in pod mode unix sockets (the control socket). */
  static const int families[] = {AF_INET, AF_INET6};
  static const int types[] = {SOCK_STREAM, SOCK_DGRAM};
  for (size_t f = 0; f < Q_ARRAY_SIZE(families) && !r; f++)
    for (size_t t = 0; t < Q_ARRAY_SIZE(types) && !r; t++) {
      struct scmp_arg_cmp args[2] = {SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)families[f]),
                                     SCMP_A1_32(SCMP_CMP_MASKED_EQ, 0xf, (uint32_t)types[t])};
      r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2, args);
    }
  if (!r && pod)
    r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, &SCMP_A0_32(SCMP_CMP_EQ, AF_UNIX));
  if (!r && pod)
    r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1, &SCMP_A0_32(SCMP_CMP_EQ, AF_UNIX));
  /* Pod mode: the guest's route netlink (ip, getifaddrs; ops_net.c checks
   * every request: reads only), SOCK_RAW as iproute2, busybox and glibc
   * open it; and the read-only interface ioctls (ifconfig). */
  if (!r && pod) {
    struct scmp_arg_cmp args[3] = {SCMP_A0_32(SCMP_CMP_EQ, AF_NETLINK),
                                   SCMP_A1_32(SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW),
                                   SCMP_A2_32(SCMP_CMP_EQ, 0 /* NETLINK_ROUTE */)};
    r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 3, args);
  }
  for (size_t i = 0; pod && i < Q_ARRAY_SIZE(pod_net_ioctls) && !r; i++)
    r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, &SCMP_A1_64(SCMP_CMP_EQ, pod_net_ioctls[i]));
  if (!r && pod && helper)
    r = pod_mount_rules(ctx);
  /* Pod mode: the bind-mount helper creates a file mount point (e.g.
   * /etc/hosts) beneath a parent it resolved in the container root: these
   * exact flags only. */
  if (!r && pod && helper)
    r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
             &SCMP_A2_32(SCMP_CMP_EQ, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
  /* Signals only to our own threads (kicking a vCPU out of KVM_RUN). */
  if (!r)
    r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
             &SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)getpid()));
  /* fcntl for fd flags (QCall openat clears O_NONBLOCK with F_GETFL and
   * F_SETFL) and, in pod mode, the stdio dups of a new guest: F_DUPFD..
   * F_SETFL and F_DUPFD_CLOEXEC only (no locks, leases, pipe sizes). */
  if (!r)
    r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1, &SCMP_A1_32(SCMP_CMP_LE, F_SETFL));
  if (!r)
    r = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1, &SCMP_A1_32(SCMP_CMP_EQ, F_DUPFD_CLOEXEC));
  return r;
}

int sbx_jail_seccomp_load(bool pod, q_error **err)
{
  return sbx_jail_seccomp_load_helper(pod, pod, err);
}

int sbx_jail_seccomp_load_helper(bool pod, bool helper, q_error **err)
{
  struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO | SA_NODEFER};
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSYS, &sa, NULL) < 0)
    return q_error_make(err, errno, "jail: SIGSYS handler");
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
  if (!ctx)
    return q_error_make(err, ENOMEM, "jail: seccomp_init");
  int r = build(ctx, pod, helper);
  if (r) {
    seccomp_release(ctx);
    return q_error_make(err, -r, "jail: build seccomp filter");
  }
  r = seccomp_load(ctx);
  seccomp_release(ctx);
  if (r)
    return q_error_make(err, -r, "jail: load seccomp filter");
  return 0;
}
