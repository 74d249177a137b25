/* /proc/<pid>/root and /proc/<pid>/cwd as Linux's magic links: a path
 * through one goes on in that process's root from its root or its cwd.
 *
 * Paths are strings that the host resolves beneath the caller's root
 * handle (fs->root_hfd, openat2 RESOLVE_IN_ROOT), so the walk is split at
 * the link (qk_path_proc_link, which the lexical normaliser also stops at)
 * and the rest runs as an ordinary VFS call with the reader's root handle
 * set to the other process's for the length of that call. Following or
 * reading the links takes Linux's ptrace read rule. */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/sec.h>
#include <qk/task.h>

#include "fs_internal.h"
#include "proc_internal.h"

static struct qk_process *reader(void)
{
  return qk_current()->proc;
}

bool proc_may_read_links(const struct qk_process *q)
{
  const struct qk_process *r = reader();
  uint32_t u = r->cred.fsuid, g = r->cred.fsgid;
  if (q == r || (u == q->uid && u == q->euid && u == q->cred.suid && g == q->gid &&
                 g == q->egid && g == q->cred.sgid))
    return true;
  return qk_capable(QK_CAP_SYS_PTRACE);
}

/* Where the link of kind (QK_PATH_LINK_*) ends in p: after the third
 * component (/proc/<pid>/root) or the fifth (/proc/<pid>/task/<tid>/root);
 * 0: p does not walk through one. */
static size_t link_end(const char *p, int *kind)
{
  size_t i = 0;
  for (int comp = 1; comp <= 5 && p[i]; comp++) {
    i++;
    while (p[i] && p[i] != '/')
      i++;
    if ((comp == 3 || comp == 5) && (*kind = qk_path_proc_link(p, i)))
      return i;
  }
  return 0;
}

/* Does the path as the caller wrote it end with the link's name (no "/",
 * "/." or "/.." after it)? Only then does a no-follow call stop at the
 * link itself. */
static bool ends_at_link(const char *abs, int kind)
{
  size_t n = strlen(abs);
  return kind == QK_PATH_LINK_ROOT ? n >= 5 && !strcmp(abs + n - 5, "/root")
                                   : n >= 4 && !strcmp(abs + n - 4, "/cwd");
}

int proc_through_link(const char *abs, bool nofollow, char *buf, struct qk_process **tp)
{
  if (qk_strlcpy(buf, abs, QK_PATH_MAX) >= QK_PATH_MAX)
    return -QK_ENAMETOOLONG;
  qk_path_normalize(buf);
  int kind = 0;
  size_t end = link_end(buf, &kind);
  if (!end || (!buf[end] && nofollow && ends_at_link(abs, kind)))
    return 0;
  char c = buf[end];
  buf[end] = 0;
  struct qk_process *p = proc_link_owner(buf);
  buf[end] = c;
  if (!p || !p->fs || p->zombie || p->exiting)
    return -QK_ENOENT;
  if (!proc_may_read_links(p))
    return -QK_EACCES;
  const char *rest = buf + end, *base = kind == QK_PATH_LINK_ROOT ? "" : p->fs->cwd;
  size_t bl = strlen(base), rl = strlen(rest);
  if (bl + rl + 2 > QK_PATH_MAX)
    return -QK_ENAMETOOLONG;
  memmove(buf + bl, rest, rl + 1);
  memcpy(buf, base, bl);
  if (!buf[0])
    qk_strlcpy(buf, "/", QK_PATH_MAX);
  *tp = p;
  return 1;
}

/* The reader's name for path in tp's root, into out (QK_PATH_MAX): path
 * itself when the roots are the same handle, else /proc/<pid>/root<path>
 * (what a later lookup relative to an fd or the cwd walks through again). */
static int link_name(const struct qk_process *tp, const char *path, char *out)
{
  if (tp->fs->root_hfd == reader()->fs->root_hfd)
    return qk_strlcpy(out, path, QK_PATH_MAX) < QK_PATH_MAX ? 0 : -QK_ENAMETOOLONG;
  int n = qk_snprintf(out, QK_PATH_MAX, "/proc/%d/root%s", tp->pid, path[1] ? path : "");
  return n < QK_PATH_MAX ? 0 : -QK_ENAMETOOLONG;
}

/* Brackets a VFS call made in tp's root: the reader's root handle is tp's
 * meanwhile. No other task sees it: the core runs under the kernel lock,
 * which QCall waits keep, and these calls never park. Nesting counts
 * against /proc's limit of links followed through the VFS. */
struct in_root {
  uint32_t saved;
};

static int root_enter(struct in_root *ir, const struct qk_process *tp)
{
  int r = proc_nest_enter();
  if (r)
    return r;
  ir->saved = reader()->fs->root_hfd;
  reader()->fs->root_hfd = tp->fs->root_hfd;
  return 0;
}

static void root_leave(const struct in_root *ir)
{
  reader()->fs->root_hfd = ir->saved;
  proc_nest_leave();
}

int proc_open_in_root(struct qk_process *tp, const char *path, int flags, uint32_t mode,
                      struct qk_file **out)
{
  struct in_root ir;
  /* a read-only root stays read-only seen from another container */
  if ((flags & (L_O_ACCMODE | L_O_CREAT | L_O_TRUNC)) && !(flags & L_O_PATH) && tp != reader() &&
      (tp->cred.fs_flags & QK_SEC_RO_ROOT))
    return -QK_EROFS;
  char *name = qk_kmalloc(QK_PATH_MAX);
  int r = name ? link_name(tp, path, name) : -QK_ENOMEM;
  if (!r)
    r = root_enter(&ir, tp);
  if (!r) {
    r = qk_vfs_open(path, flags, mode, out);
    root_leave(&ir);
  }
  if (!r && (*out)->path && strcmp((*out)->path, name)) {
    /* relative lookups from this fd walk through the link again */
    size_t n = strlen(name) + 1;
    char *p = qk_kmalloc(n);
    if (p) {
      memcpy(p, name, n);
      qk_kfree((*out)->path);
      (*out)->path = p;
    }
  }
  qk_kfree(name);
  return r;
}

int proc_stat_in_root(struct qk_process *tp, const char *path, int nofollow, uint64_t stat_gpa)
{
  struct in_root ir;
  struct l_stat *st = stat_gpa ? NULL : qk_kmalloc(sizeof(*st));
  int r = stat_gpa || st ? root_enter(&ir, tp) : -QK_ENOMEM;
  if (!r) {
    r = qk_vfs_stat(path, nofollow, stat_gpa ? stat_gpa : qk_va_to_pa(st));
    root_leave(&ir);
  }
  qk_kfree(st);
  return r;
}

int64_t proc_readlink_in_root(struct qk_process *tp, const char *path, char *buf, uint64_t len)
{
  struct in_root ir;
  int64_t r = root_enter(&ir, tp);
  if (!r) {
    r = qk_vfs_readlink(path, buf, len);
    root_leave(&ir);
  }
  return r;
}

int qk_proc_access(const char *abs, int mode, int flags)
{
  char *buf = qk_kmalloc(QK_PATH_MAX);
  struct qk_process *tp;
  struct in_root ir;
  int r = buf ? proc_through_link(abs, flags & L_AT_SYMLINK_NOFOLLOW, buf, &tp) : -QK_ENOMEM;
  if (r > 0 && !(r = root_enter(&ir, tp))) {
    r = qk_vfs_access(buf, mode, flags); /* the other root's file and modes */
    root_leave(&ir);
    qk_kfree(buf);
    return r;
  }
  qk_kfree(buf);
  if (r)
    return r;
  struct l_stat st;
  r = qk_proc_stat(abs, flags & L_AT_SYMLINK_NOFOLLOW, qk_va_to_pa(&st));
  if (r)
    return r;
  /* read-only; search on directories, never execute on files */
  if ((mode & 2) || ((mode & 1) && (st.st_mode & L_S_IFMT) != L_S_IFDIR))
    return -QK_EACCES;
  return 0;
}

void qk_proc_cwd_name(char *abs)
{
  char *buf = qk_kmalloc(QK_PATH_MAX);
  struct qk_process *tp;
  if (buf && proc_through_link(abs, false, buf, &tp) > 0)
    link_name(tp, buf, abs);
  qk_kfree(buf);
}
