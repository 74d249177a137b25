/* The initial process. */
#include <qk/kernel.h>
#include <qk/qcall.h>
#include <qk/task.h>

#define NOFILE_DEFAULT 1024

static void default_rlimits(struct l_rlimit *r)
{
  for (int i = 0; i < L_RLIM_NLIMITS; i++)
    r[i].cur = r[i].max = L_RLIM_INFINITY;
  r[L_RLIMIT_STACK].cur = 8ull << 20;
  r[L_RLIMIT_CORE].cur = 0;
  r[L_RLIMIT_NOFILE].cur = NOFILE_DEFAULT;
  r[L_RLIMIT_NOFILE].max = QK_FD_MAX;
  r[L_RLIMIT_MEMLOCK].cur = r[L_RLIMIT_MEMLOCK].max = 8ull << 20;
  r[L_RLIMIT_NPROC].cur = r[L_RLIMIT_NPROC].max = 4096;
  r[11].cur = r[11].max = 4096;   /* RLIMIT_SIGPENDING */
  r[12].cur = r[12].max = 819200; /* RLIMIT_MSGQUEUE */
  r[13].cur = r[13].max = 0;      /* RLIMIT_NICE */
  r[14].cur = r[14].max = 0;      /* RLIMIT_RTPRIO */
}

struct qk_task *qk_task_create_init(const struct qk_boot_info *bi)
{
  struct qk_process *p = qk_kzalloc(sizeof(*p));
  struct qk_task *t = qk_kzalloc(sizeof(*t));
  struct qk_fs_ctx *fs = qk_kzalloc(sizeof(*fs));
  if (!p || !t || !fs)
    return NULL;
  p->pid = p->pgid = p->sid = 1;
  p->ppid = 0;
  p->uid = p->euid = bi->init_uid;
  p->gid = p->egid = bi->init_gid;
  default_rlimits(p->rlim);
  p->start_ns = qk_time_monotonic_ns();
  qk_strlcpy(p->exe, bi->init_exe, sizeof(p->exe));

  p->mm = qk_mm_from_boot(bi);
  if (!p->mm)
    return NULL;

  fs->refs = 1;
  fs->umask = 022;
  char cwd[sizeof(bi->init_cwd) + 1];
  memcpy(cwd, bi->init_cwd, sizeof(bi->init_cwd));
  cwd[sizeof(bi->init_cwd)] = 0;
  if (cwd[0] != '/')
    qk_strlcpy(cwd, "/", sizeof(cwd));
  qk_strlcpy(fs->cwd, cwd, sizeof(fs->cwd));
  qk_path_normalize(fs->cwd);
  p->fs = fs;

  p->files = qk_fdtable_new(NOFILE_DEFAULT);
  if (!p->files)
    return NULL;
  for (int fd = 0; fd < 3; fd++) {
    struct qk_file *f = qk_hostfs_stdio(fd);
    if (!f || qk_fd_install(p->files, f, fd, false) != fd)
      return NULL;
  }

  t->tid = 1;
  t->proc = p;
  p->threads = t;
  p->nr_threads = 1;
  t->regs.rip = bi->init_entry;
  t->regs.rsp = bi->init_sp;
  t->regs.cs = QK_SEL_UCODE;
  t->regs.ss = QK_SEL_UDATA;
  t->regs.rflags = 0x202;
  t->altstack_flags = 2; /* SS_DISABLE */
  p->exit_signal = 17;
  p->ns = &qk_boot_pidns;
  qk_boot_pidns.init = p;
  fs->root_hfd = QK_HFD_ROOT;
  if (qk_sec_boot(p, t, bi) < 0) /* groups, capabilities, seccomp (task/cred.c) */
    return NULL;
  p->next_all = qk_all_procs;
  qk_all_procs = p;
  qk_sched_add(t);
  return t;
}
