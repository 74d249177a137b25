/* Credentials and capabilities of guest processes (include/qk/sec.h):
 * get/set*id, setgroups/getgroups, setfs*id, capget/capset, the capability
 * prctls and no_new_privs, Linux's capability rules on uid changes and
 * exec, and the guest's privileged operations that it does not implement
 * (mount, unshare, setns, reboot, kexec, modules, sethostname, ...): EPERM
 * without the capability Linux asks for, ENOSYS with it. */
#include <qk/arch.h>
#include <qk/kernel.h>
#include <qk/lib.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/sec.h>
#include <qk/syscall.h>
#include <qk/task.h>

#define ARGS uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5
#define UNUSED_ARGS (void)a0, (void)a1, (void)a2, (void)a3, (void)a4, (void)a5

/* CAP_CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID, LINUX_IMMUTABLE,
 * MKNOD, MAC_OVERRIDE: the sets that follow fsuid 0 (Linux CAP_FS_MASK). */
#define CAP_FS_MASK (0x1full | (1ull << 9) | (1ull << 27) | (1ull << 32))

static inline struct qk_task *cur(void)
{
  return qk_current();
}
static inline struct qk_process *proc(void)
{
  return qk_current()->proc;
}

bool qk_capable(int cap)
{
  return (proc()->cred.cap_eff >> cap) & 1;
}

int qk_sec_init(struct qk_process *p, struct qk_task *t, const struct qk_sec_spec *s)
{
  struct qk_cred *c = &p->cred;
  c->suid = c->fsuid = p->euid;
  c->sgid = c->fsgid = p->egid;
  uint64_t caps = (s->flags & QK_SEC_CAPS) ? (s->caps & QK_CAP_ALL) : QK_CAP_ALL;
  c->cap_bnd = caps;
  c->cap_prm = c->cap_eff = p->euid == 0 ? caps : 0;
  c->cap_inh = c->cap_amb = 0;
  c->ngroups = 0;
  if (s->flags & QK_SEC_GROUPS) {
    if (s->ngroups > QK_NGROUPS_MAX)
      return -QK_EINVAL;
    c->ngroups = s->ngroups;
    memcpy(c->groups, s->groups, s->ngroups * sizeof(uint32_t));
  }
  t->no_new_privs = (s->flags & QK_SEC_NO_NEW_PRIVS) != 0;
  c->fs_flags = s->flags & (QK_SEC_RO_ROOT | QK_SEC_RO_ROOT_HOST);
  if (s->filter_len) {
    int r = qk_seccomp_install_kernel(t, s->filter, s->filter_len);
    if (r < 0)
      return r;
  }
  return 0;
}

int qk_sec_fs_write(const char *abs)
{
  (void)abs;
  return (proc()->cred.fs_flags & QK_SEC_RO_ROOT) ? -QK_EROFS : 0;
}

bool qk_sec_ro_root(void)
{
  return (proc()->cred.fs_flags & (QK_SEC_RO_ROOT | QK_SEC_RO_ROOT_HOST)) != 0;
}

int qk_sec_boot(struct qk_process *p, struct qk_task *t, const struct qk_boot_info *bi)
{
  struct qk_sec_spec s = {.flags = bi->sec_flags,
                          .caps = bi->sec_caps,
                          .ngroups = bi->sec_ngroups,
                          .groups = bi->sec_groups};
  if (bi->sec_ngroups > QK_SEC_MAX_GROUPS)
    return -QK_EINVAL;
  if (bi->sec_filter_gpa) {
    uint64_t bytes = (uint64_t)bi->sec_filter_len * 8;
    if (bi->sec_filter_len == 0 || bi->sec_filter_len > QK_SEC_MAX_FILTER ||
        bi->sec_filter_gpa + bytes > bi->mem_size || bi->sec_filter_gpa + bytes < bytes)
      return -QK_EINVAL;
    s.filter = qk_pa_to_va(bi->sec_filter_gpa);
    s.filter_len = bi->sec_filter_len;
  }
  return qk_sec_init(p, t, &s);
}

void qk_sec_fork(struct qk_task *t, struct qk_task *pt)
{
  if (t->proc != pt->proc)
    t->proc->cred = pt->proc->cred;
  qk_seccomp_fork(t, pt);
}

void qk_sec_exec(struct qk_process *p)
{
  struct qk_cred *c = &p->cred;
  /* No file capabilities and no set-id files: root gets its bounding set
   * (Linux's "root is all-capable" emulation), others their ambient set. */
  if (p->euid == 0 || p->uid == 0) {
    c->cap_prm = (c->cap_bnd | c->cap_inh) & QK_CAP_ALL;
    c->cap_amb = 0;
    c->cap_eff = p->euid == 0 ? c->cap_prm : 0;
  } else {
    c->cap_prm = c->cap_eff = c->cap_amb;
  }
  c->suid = c->fsuid = p->euid;
  c->sgid = c->fsgid = p->egid;
  c->keepcaps = false;
}

bool qk_sec_may_signal(const struct qk_process *q)
{
  const struct qk_process *p = proc();
  if (p == q || qk_capable(QK_CAP_KILL))
    return true;
  return p->euid == q->uid || p->euid == q->cred.suid || p->uid == q->uid || p->uid == q->cred.suid;
}

/* ---- uids and gids ---- */

/* Linux cap_emulate_setxuid + the fsuid rule after a uid change. */
static void fix_caps(struct qk_process *p, uint32_t oruid, uint32_t oeuid, uint32_t osuid,
                     uint32_t ofsuid)
{
  struct qk_cred *c = &p->cred;
  if ((oruid == 0 || oeuid == 0 || osuid == 0) && p->uid != 0 && p->euid != 0 && c->suid != 0) {
    if (!c->keepcaps)
      c->cap_prm = c->cap_eff = 0;
    c->cap_amb = 0;
  }
  if (oeuid == 0 && p->euid != 0)
    c->cap_eff = 0;
  if (oeuid != 0 && p->euid == 0)
    c->cap_eff = c->cap_prm;
  if (ofsuid == 0 && c->fsuid != 0)
    c->cap_eff &= ~CAP_FS_MASK;
  else if (ofsuid != 0 && c->fsuid == 0)
    c->cap_eff |= c->cap_prm & CAP_FS_MASK;
}

static bool one_of(uint32_t v, uint32_t a, uint32_t b, uint32_t c)
{
  return v == a || v == b || v == c;
}

static int64_t set_resuid(struct qk_process *p, uint32_t r, uint32_t e, uint32_t s, bool setuid)
{
  struct qk_cred *c = &p->cred;
  uint32_t oruid = p->uid, oeuid = p->euid, osuid = c->suid, ofsuid = c->fsuid;
  if (r != ~0u)
    p->uid = r;
  if (e != ~0u)
    p->euid = e;
  if (s != ~0u)
    c->suid = s;
  c->fsuid = p->euid;
  if (setuid)
    fix_caps(p, oruid, oeuid, osuid, ofsuid);
  return 0;
}

int64_t sys_getuid(ARGS)
{
  UNUSED_ARGS;
  return proc()->uid;
}
int64_t sys_geteuid(ARGS)
{
  UNUSED_ARGS;
  return proc()->euid;
}
int64_t sys_getgid(ARGS)
{
  UNUSED_ARGS;
  return proc()->gid;
}
int64_t sys_getegid(ARGS)
{
  UNUSED_ARGS;
  return proc()->egid;
}

static int64_t put3(uint64_t a, uint64_t b, uint64_t c, uint32_t x, uint32_t y, uint32_t z)
{
  if (qk_copy_to_user(a, &x, 4) || qk_copy_to_user(b, &y, 4) || qk_copy_to_user(c, &z, 4))
    return -QK_EFAULT;
  return 0;
}

int64_t sys_getresuid(ARGS)
{
  (void)a3, (void)a4, (void)a5;
  struct qk_process *p = proc();
  return put3(a0, a1, a2, p->uid, p->euid, p->cred.suid);
}

int64_t sys_getresgid(ARGS)
{
  (void)a3, (void)a4, (void)a5;
  struct qk_process *p = proc();
  return put3(a0, a1, a2, p->gid, p->egid, p->cred.sgid);
}

int64_t sys_setuid(ARGS)
{
  (void)a1, (void)a2, (void)a3, (void)a4, (void)a5;
  struct qk_process *p = proc();
  uint32_t u = (uint32_t)a0;
  if (u == ~0u)
    return -QK_EINVAL;
  if (qk_capable(QK_CAP_SETUID))
    return set_resuid(p, u, u, u, true);
  if (u == p->uid || u == p->cred.suid)
    return set_resuid(p, ~0u, u, ~0u, true);
  return -QK_EPERM;
}

int64_t sys_setreuid(ARGS)
{
  (void)a2, (void)a3, (void)a4, (void)a5;
  struct qk_process *p = proc();
  uint32_t r = (uint32_t)a0, e = (uint32_t)a1;
  bool cap = qk_capable(QK_CAP_SETUID);
  if (!cap && ((r != ~0u && r != p->uid && r != p->euid) ||
               (e != ~0u && !one_of(e, p->uid, p->euid, p->cred.suid))))
    return -QK_EPERM;
  uint32_t olduid = p->uid;
  uint32_t ne = e != ~0u ? e : p->euid;
  uint32_t s = (r != ~0u || (e != ~0u && e != olduid)) ? ne : ~0u;
  return set_resuid(p, r, e, s, true);
}

int64_t sys_setresuid(ARGS)
{
  (void)a3, (void)a4, (void)a5;
  struct qk_process *p = proc();
  uint32_t r = (uint32_t)a0, e = (uint32_t)a1, s = (uint32_t)a2;
  if (!qk_capable(QK_CAP_SETUID)) {
    uint32_t ru = p->uid, eu = p->euid, su = p->cred.suid;
    if ((r != ~0u && !one_of(r, ru, eu, su)) || (e != ~0u && !one_of(e, ru, eu, su)) ||
        (s != ~0u && !one_of(s, ru, eu, su)))
      return -QK_EPERM;
  }
  return set_resuid(p, r, e, s, true);
}

int64_t sys_setfsuid(ARGS)
{
  (void)a1, (void)a2, (void)a3, (void)a4, (void)a5;
  struct qk_process *p = proc();
  uint32_t old = p->cred.fsuid, f = (uint32_t)a0;
  if (f != ~0u &&
      (qk_capable(QK_CAP_SETUID) || one_of(f, p->uid, p->euid, p->cred.suid) || f == old)) {
    p->cred.fsuid = f;
    fix_caps(p, p->uid, p->euid, p->cred.suid, old);
  }
  return old;
}

static int64_t set_resgid(struct qk_process *p, uint32_t r, uint32_t e, uint32_t s)
{
  if (r != ~0u)
    p->gid = r;
  if (e != ~0u)
    p->egid = e;
  if (s != ~0u)
    p->cred.sgid = s;
  p->cred.fsgid = p->egid;
  return 0;
}

int64_t sys_setgid(ARGS)
{
  (void)a1, (void)a2, (void)a3, (void)a4, (void)a5;
  struct qk_process *p = proc();
  uint32_t g = (uint32_t)a0;
  if (g == ~0u)
    return -QK_EINVAL;
  if (qk_capable(QK_CAP_SETGID))
    return set_resgid(p, g, g, g);
  if (g == p->gid || g == p->cred.sgid)
    return set_resgid(p, ~0u, g, ~0u);
  return -QK_EPERM;
}

int64_t sys_setregid(ARGS)
{
  (void)a2, (void)a3, (void)a4, (void)a5;
  struct qk_process *p = proc();
  uint32_t r = (uint32_t)a0, e = (uint32_t)a1;
  if (!qk_capable(QK_CAP_SETGID) && ((r != ~0u && r != p->gid && r != p->egid) ||
                                     (e != ~0u && !one_of(e, p->gid, p->egid, p->cred.sgid))))
    return -QK_EPERM;
  uint32_t oldgid = p->gid;
  uint32_t ne = e != ~0u ? e : p->egid;
  uint32_t s = (r != ~0u || (e != ~0u && e != oldgid)) ? ne : ~0u;
  return set_resgid(p, r, e, s);
}

int64_t sys_setresgid(ARGS)
{
  (void)a3, (void)a4, (void)a5;
  struct qk_process *p = proc();
  uint32_t r = (uint32_t)a0, e = (uint32_t)a1, s = (uint32_t)a2;
  if (!qk_capable(QK_CAP_SETGID)) {
    uint32_t rg = p->gid, eg = p->egid, sg = p->cred.sgid;
    if ((r != ~0u && !one_of(r, rg, eg, sg)) || (e != ~0u && !one_of(e, rg, eg, sg)) ||
        (s != ~0u && !one_of(s, rg, eg, sg)))
      return -QK_EPERM;
  }
  return set_resgid(p, r, e, s);
}

int64_t sys_setfsgid(ARGS)
{
  (void)a1, (void)a2, (void)a3, (void)a4, (void)a5;
  struct qk_process *p = proc();
  uint32_t old = p->cred.fsgid, f = (uint32_t)a0;
  if (f != ~0u &&
      (qk_capable(QK_CAP_SETGID) || one_of(f, p->gid, p->egid, p->cred.sgid) || f == old))
    p->cred.fsgid = f;
  return old;
}

int64_t sys_getgroups(ARGS)
{
  (void)a2, (void)a3, (void)a4, (void)a5;
  struct qk_cred *c = &proc()->cred;
  int size = (int)a0;
  if (size < 0)
    return -QK_EINVAL;
  if (size == 0)
    return c->ngroups;
  if ((uint32_t)size < c->ngroups)
    return -QK_EINVAL;
  if (c->ngroups && qk_copy_to_user(a1, c->groups, c->ngroups * 4))
    return -QK_EFAULT;
  return c->ngroups;
}

int64_t sys_setgroups(ARGS)
{
  (void)a2, (void)a3, (void)a4, (void)a5;
  int n = (int)a0;
  if (!qk_capable(QK_CAP_SETGID))
    return -QK_EPERM;
  if (n < 0 || n > 65536)
    return -QK_EINVAL;
  if (n > QK_NGROUPS_MAX)
    return -QK_EINVAL; /* this kernel keeps at most QK_NGROUPS_MAX (README) */
  uint32_t g[QK_NGROUPS_MAX];
  if (n && qk_copy_from_user(g, a1, (size_t)n * 4))
    return -QK_EFAULT;
  struct qk_cred *c = &proc()->cred;
  memcpy(c->groups, g, (size_t)n * 4);
  c->ngroups = (uint32_t)n;
  return 0;
}

/* ---- capabilities ---- */

#define CAPV1 0x19980330u
#define CAPV2 0x20071026u
#define CAPV3 0x20080522u

struct cap_data {
  uint32_t effective, permitted, inheritable;
};

static int cap_header(uint64_t uhdr, int *words, int *pid)
{
  struct {
    uint32_t version;
    int32_t pid;
  } h;
  if (qk_copy_from_user(&h, uhdr, sizeof(h)))
    return -QK_EFAULT;
  if (h.version == CAPV1)
    *words = 1;
  else if (h.version == CAPV2 || h.version == CAPV3)
    *words = 2;
  else {
    uint32_t v = CAPV3;
    if (qk_copy_to_user(uhdr, &v, 4))
      return -QK_EFAULT;
    return -QK_EINVAL;
  }
  *pid = h.pid;
  return 0;
}

int64_t sys_capget(ARGS)
{
  (void)a2, (void)a3, (void)a4, (void)a5;
  int words, pid;
  int r = cap_header(a0, &words, &pid);
  if (r < 0)
    return r;
  if (!a1)
    return 0;
  if (pid < 0)
    return -QK_EINVAL;
  const struct qk_process *p = pid == 0 ? proc() : qk_proc_find(pid);
  if (!p || p->zombie)
    return -QK_ESRCH;
  const struct qk_cred *c = &p->cred;
  struct cap_data d[2];
  for (int i = 0; i < 2; i++) {
    d[i].effective = (uint32_t)(c->cap_eff >> (32 * i));
    d[i].permitted = (uint32_t)(c->cap_prm >> (32 * i));
    d[i].inheritable = (uint32_t)(c->cap_inh >> (32 * i));
  }
  return qk_copy_to_user(a1, d, (size_t)words * sizeof(d[0])) ? -QK_EFAULT : 0;
}

int64_t sys_capset(ARGS)
{
  (void)a2, (void)a3, (void)a4, (void)a5;
  int words, pid;
  int r = cap_header(a0, &words, &pid);
  if (r < 0)
    return r;
  if (pid != 0 && pid != proc()->pid)
    return -QK_EPERM;
  struct cap_data d[2] = {{0, 0, 0}, {0, 0, 0}};
  if (qk_copy_from_user(d, a1, (size_t)words * sizeof(d[0])))
    return -QK_EFAULT;
  uint64_t eff = d[0].effective | ((uint64_t)d[1].effective << 32);
  uint64_t prm = d[0].permitted | ((uint64_t)d[1].permitted << 32);
  uint64_t inh = d[0].inheritable | ((uint64_t)d[1].inheritable << 32);
  eff &= QK_CAP_ALL, prm &= QK_CAP_ALL, inh &= QK_CAP_ALL;
  struct qk_cred *c = &proc()->cred;
  if (!qk_capable(QK_CAP_SETPCAP) && (inh & ~(c->cap_inh | c->cap_prm)))
    return -QK_EPERM;
  if (inh & ~(c->cap_inh | c->cap_bnd))
    return -QK_EPERM;
  if (prm & ~c->cap_prm)
    return -QK_EPERM;
  if (eff & ~prm)
    return -QK_EPERM;
  c->cap_eff = eff;
  c->cap_prm = prm;
  c->cap_inh = inh;
  c->cap_amb &= prm & inh;
  return 0;
}

int64_t qk_sec_prctl(int option, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, bool *handled)
{
  struct qk_cred *c = &proc()->cred;
  *handled = true;
  switch (option) {
  case 7: /* PR_GET_KEEPCAPS */
    return c->keepcaps;
  case 8: /* PR_SET_KEEPCAPS */
    if (a1 > 1)
      return -QK_EINVAL;
    c->keepcaps = a1 == 1;
    return 0;
  case 21: /* PR_GET_SECCOMP */
  case 22: /* PR_SET_SECCOMP */
    return qk_seccomp_prctl(option, a1, a2);
  case 23: /* PR_CAPBSET_READ */
    return a1 <= QK_CAP_LAST ? (int64_t)((c->cap_bnd >> a1) & 1) : -QK_EINVAL;
  case 24: /* PR_CAPBSET_DROP */
    if (a1 > QK_CAP_LAST)
      return -QK_EINVAL;
    if (!qk_capable(QK_CAP_SETPCAP))
      return -QK_EPERM;
    c->cap_bnd &= ~(1ull << a1);
    return 0;
  case 38: /* PR_SET_NO_NEW_PRIVS: once set, never cleared */
    if (a1 != 1 || a2 || a3 || a4)
      return -QK_EINVAL;
    cur()->no_new_privs = true;
    return 0;
  case 39: /* PR_GET_NO_NEW_PRIVS */
    if (a1 || a2 || a3 || a4)
      return -QK_EINVAL;
    return cur()->no_new_privs;
  case 47: /* PR_CAP_AMBIENT */
    if (a3 || a4)
      return -QK_EINVAL;
    if (a1 == 4) /* CLEAR_ALL */ {
      if (a2)
        return -QK_EINVAL;
      c->cap_amb = 0;
      return 0;
    }
    if (a2 > QK_CAP_LAST)
      return -QK_EINVAL;
    uint64_t bit = 1ull << a2;
    switch (a1) {
    case 1: /* IS_SET */
      return (c->cap_amb & bit) != 0;
    case 2: /* RAISE */
      if (!(c->cap_prm & bit) || !(c->cap_inh & bit))
        return -QK_EPERM;
      c->cap_amb |= bit;
      return 0;
    case 3: /* LOWER */
      c->cap_amb &= ~bit;
      return 0;
    default:
      return -QK_EINVAL;
    }
  default:
    *handled = false;
    return -QK_EINVAL;
  }
}

/* Privileged operations the guest does not implement: a container without
 * the capability gets EPERM, as on Linux; with it, ENOSYS (unimplemented). */
#define PRIV(name, cap)                                                                            \
  int64_t sys_##name(ARGS)                                                                         \
  {                                                                                                \
    UNUSED_ARGS;                                                                                   \
    return qk_capable(cap) ? -QK_ENOSYS : -QK_EPERM;                                               \
  }
PRIV(mount, QK_CAP_SYS_ADMIN)
PRIV(umount2, QK_CAP_SYS_ADMIN)
PRIV(pivot_root, QK_CAP_SYS_ADMIN)
PRIV(unshare, QK_CAP_SYS_ADMIN)
PRIV(setns, QK_CAP_SYS_ADMIN)
PRIV(reboot, QK_CAP_SYS_BOOT)
PRIV(kexec_load, QK_CAP_SYS_BOOT)
PRIV(kexec_file_load, QK_CAP_SYS_BOOT)
PRIV(init_module, QK_CAP_SYS_MODULE)
PRIV(finit_module, QK_CAP_SYS_MODULE)
PRIV(delete_module, QK_CAP_SYS_MODULE)
PRIV(sethostname, QK_CAP_SYS_ADMIN)
PRIV(setdomainname, QK_CAP_SYS_ADMIN)
PRIV(swapon, QK_CAP_SYS_ADMIN)
PRIV(swapoff, QK_CAP_SYS_ADMIN)
PRIV(acct, QK_CAP_SYS_PACCT)
PRIV(settimeofday, QK_CAP_SYS_TIME)
PRIV(clock_settime, QK_CAP_SYS_TIME)
PRIV(iopl, QK_CAP_SYS_RAWIO)
PRIV(ioperm, QK_CAP_SYS_RAWIO)
