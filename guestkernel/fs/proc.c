/* /proc and a minimal /sys, generated from kernel state.
 *
 * A path under /proc or /sys names a node: a directory, a file or a
 * symbolic link. Files are rendered whole into a kernel buffer when they
 * are opened (a snapshot, like Linux's seq_file on the first read) in
 * Linux's exact formats, so that ps, top, free, pgrep and language
 * runtimes parse them. Directories are listed into a buffer at open too.
 * Pid directories exist only for the processes of the reader's pid
 * namespace (one per container), under their numbers there.
 *
 * Nothing here is writable: opening for writing answers EACCES.
 * Symbolic links (self, thread-self, mounts, <pid>/exe, cwd, root, fd/N)
 * are followed here when an open or stat asks for it. <pid>/root and
 * <pid>/cwd are Linux's magic links: a path through them goes on in that
 * process's root (its host root handle) from its root or cwd (proc_root.c). */
#include <qk/arch.h>
#include <qk/cputime.h>
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/task.h>

#include "fs_internal.h"
#include "proc_internal.h"

#define PROC_DEV 0x16ull /* st_dev of every /proc node (a small anonymous dev) */
#define SYS_DEV 0x15ull
#define HZ 100
#define L_DT_DIR 4
#define L_DT_REG 8
#define L_DT_LNK 10

/* Output buffer and system-wide files: proc_internal.h, proc_sys.c. */

/* ---- nodes ---- */

enum ntype { N_DIR, N_FILE, N_LINK };

/* What a path resolved to. */
struct node {
  enum ntype type;
  bool sys; /* under /sys */
  int id;   /* entry of the tables below */
  struct qk_process *p;
  struct qk_task *t; /* task/<tid>, else the process's first thread */
  int fd;            /* fd/<n> */
  uint64_t ino;
};

enum {
  /* top-level /proc */
  T_ROOT,
  T_SELF,
  T_THREAD_SELF,
  T_MOUNTS,
  T_MEMINFO,
  T_CPUINFO,
  T_UPTIME,
  T_LOADAVG,
  T_STAT,
  T_VERSION,
  T_FILESYSTEMS,
  T_SYSDIR, /* /proc/sys/... directory, see sysents */
  T_SYSFILE,
  T_NET, /* link to self/net */
  /* per process */
  T_PID,
  T_P_STAT,
  T_P_STATUS,
  T_P_STATM,
  T_P_CMDLINE,
  T_P_ENVIRON,
  T_P_MAPS,
  T_P_COMM,
  T_P_LIMITS,
  T_P_MOUNTS,
  T_P_CGROUP,
  T_P_MOUNTINFO,
  T_P_OOM_ADJ,
  T_P_EXE,
  T_P_CWD,
  T_P_ROOT,
  T_P_FDDIR,
  T_P_FD,
  T_P_TASKDIR,
  T_P_TID, /* task/<tid>: a directory like <pid> */
  T_P_NETDIR,
  T_P_NETFILE, /* fd: the index of proc_net.c's files */
  /* /sys */
  T_S_DIR,
  T_S_FILE,
  /* /dev/pts: the directory only (terminals are the tty code's) */
  T_PTS,
};

struct ent {
  const char *name;
  int id;
  enum ntype type;
};

static const struct ent top_ents[] = {
    {"self", T_SELF, N_LINK},       {"thread-self", T_THREAD_SELF, N_LINK},
    {"mounts", T_MOUNTS, N_LINK},   {"meminfo", T_MEMINFO, N_FILE},
    {"cpuinfo", T_CPUINFO, N_FILE}, {"uptime", T_UPTIME, N_FILE},
    {"loadavg", T_LOADAVG, N_FILE}, {"stat", T_STAT, N_FILE},
    {"version", T_VERSION, N_FILE}, {"filesystems", T_FILESYSTEMS, N_FILE},
    {"sys", T_SYSDIR, N_DIR},       {"net", T_NET, N_LINK},
};

static const struct ent pid_ents[] = {
    {"stat", T_P_STAT, N_FILE},
    {"status", T_P_STATUS, N_FILE},
    {"statm", T_P_STATM, N_FILE},
    {"cmdline", T_P_CMDLINE, N_FILE},
    {"environ", T_P_ENVIRON, N_FILE},
    {"maps", T_P_MAPS, N_FILE},
    {"comm", T_P_COMM, N_FILE},
    {"limits", T_P_LIMITS, N_FILE},
    {"mounts", T_P_MOUNTS, N_FILE},
    {"cgroup", T_P_CGROUP, N_FILE},
    {"exe", T_P_EXE, N_LINK},
    {"cwd", T_P_CWD, N_LINK},
    {"root", T_P_ROOT, N_LINK},
    {"fd", T_P_FDDIR, N_DIR},
    {"task", T_P_TASKDIR, N_DIR},
    {"mountinfo", T_P_MOUNTINFO, N_FILE},
    {"oom_score_adj", T_P_OOM_ADJ, N_FILE},
    {"net", T_P_NETDIR, N_DIR},
};

/* Static trees (/proc/sys and /sys): full paths below their root; a
 * directory is an entry with no content. */
enum {
  S_HOSTNAME = 1,
  S_OSTYPE,
  S_OSRELEASE,
  S_PIDMAX,
  S_OVERCOMMIT,
  S_SOMAXCONN,
  S_CPU_ONLINE,
  S_CPU_POSSIBLE,
  S_CPU_PRESENT,
  S_NGROUPS
};
struct sent {
  const char *path;
  int gen; /* 0: a directory */
};
static const struct sent proc_sys[] = {
    {"kernel", 0},
    {"kernel/hostname", S_HOSTNAME},
    {"kernel/ostype", S_OSTYPE},
    {"kernel/osrelease", S_OSRELEASE},
    {"kernel/pid_max", S_PIDMAX},
    {"kernel/ngroups_max", S_NGROUPS},
    {"vm", 0},
    {"vm/overcommit_memory", S_OVERCOMMIT},
    {"net", 0},
    {"net/core", 0},
    {"net/core/somaxconn", S_SOMAXCONN},
};
static const struct sent sys_tree[] = {
    {"devices", 0},
    {"devices/system", 0},
    {"devices/system/cpu", 0},
    {"devices/system/cpu/online", S_CPU_ONLINE},
    {"devices/system/cpu/possible", S_CPU_POSSIBLE},
    {"devices/system/cpu/present", S_CPU_PRESENT},
    {"fs", 0},
    {"fs/cgroup", 0},
};

static uint64_t hash(const char *s, uint64_t h)
{
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
  return h;
}

static struct qk_process *reader(void)
{
  return qk_current()->proc;
}

static bool is_num(const char *s, size_t n, int *out)
{
  if (!n || n > 9)
    return false;
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (s[i] - '0');
  }
  if (n > 1 && s[0] == '0')
    return false;
  *out = v;
  return true;
}

static struct qk_task *task_of(struct qk_process *p, int tid)
{
  for (struct qk_task *t = p->threads; t; t = t->next_in_proc)
    if (tid < 0 || t->tid == tid)
      return t;
  return NULL;
}

/* A static tree entry whose path is rest (len n), or -1. */
static int sent_find(const struct sent *tab, size_t cnt, const char *rest, size_t n)
{
  for (size_t i = 0; i < cnt; i++)
    if (strlen(tab[i].path) == n && !strncmp(tab[i].path, rest, n))
      return (int)i;
  return -1;
}

bool qk_proc_path(const char *abs)
{
  if (abs[0] == '/' && abs[1] == 'd')
    return !strcmp(abs, "/dev/pts") || !strcmp(abs, "/dev/pts/");
  return abs[0] == '/' && ((!strncmp(abs + 1, "proc", 4) && (abs[5] == 0 || abs[5] == '/')) ||
                           (!strncmp(abs + 1, "sys", 3) && (abs[4] == 0 || abs[4] == '/')));
}

/* Resolves a normalised path (no symlink following). 0 or -QK_ENOENT. */
static int resolve(const char *abs, struct node *nd)
{
  memset(nd, 0, sizeof(*nd));
  nd->ino = hash(abs, 0xcbf29ce484222325ull) | 1;
  nd->fd = -1;
  if (!strcmp(abs, "/dev/pts")) {
    nd->type = N_DIR;
    nd->id = T_PTS;
    return 0;
  }
  if (!strncmp(abs, "/sys", 4)) {
    nd->sys = true;
    const char *rest = abs[4] ? abs + 5 : "";
    if (!*rest) {
      nd->type = N_DIR;
      nd->id = T_S_DIR;
      nd->fd = -1; /* the root */
      return 0;
    }
    int i = sent_find(sys_tree, QK_ARRAY_SIZE(sys_tree), rest, strlen(rest));
    if (i < 0)
      return -QK_ENOENT;
    nd->type = sys_tree[i].gen ? N_FILE : N_DIR;
    nd->id = sys_tree[i].gen ? T_S_FILE : T_S_DIR;
    nd->fd = i;
    return 0;
  }
  const char *r = abs[5] ? abs + 6 : ""; /* after "/proc/" */
  if (!*r) {
    nd->type = N_DIR;
    nd->id = T_ROOT;
    return 0;
  }
  const char *c = r;
  while (*r && *r != '/')
    r++;
  size_t n = (size_t)(r - c);
  if (*r)
    r++;
  int pid;
  bool self = *r && n == 4 && !strncmp(c, "self", 4);
  bool tself = *r && n == 11 && !strncmp(c, "thread-self", 11);
  bool net = *r && n == 3 && !strncmp(c, "net", 3); /* net/...: self/net/... */
  if (self || tself || net || is_num(c, n, &pid)) {
    /* self and thread-self inside a path: followed like the links they are */
    nd->p = self || tself || net ? reader() : qk_proc_find(pid);
    if (!nd->p)
      return -QK_ENOENT;
    nd->t = tself ? qk_current() : task_of(nd->p, -1);
    nd->type = N_DIR;
    nd->id = tself ? T_P_TID : net ? T_P_NETDIR : T_PID;
    for (int depth = 0; *r; depth++) {
      c = r;
      while (*r && *r != '/')
        r++;
      n = (size_t)(r - c);
      if (*r)
        r++;
      if (nd->id == T_P_FDDIR) {
        int fd;
        struct qk_file *f = is_num(c, n, &fd) && nd->p->files ? qk_fget_in(nd->p->files, fd) : NULL;
        if (!f || *r)
          return f ? (qk_fput(f), -QK_ENOTDIR) : -QK_ENOENT;
        qk_fput(f);
        nd->fd = fd;
        nd->id = T_P_FD;
        nd->type = N_LINK;
        return 0;
      }
      if (nd->id == T_P_TASKDIR) {
        int tid;
        struct qk_task *t = is_num(c, n, &tid) ? task_of(nd->p, tid) : NULL;
        if (!t)
          return -QK_ENOENT;
        nd->t = t;
        nd->id = T_P_TID;
        nd->type = N_DIR;
        continue;
      }
      if (nd->id == T_P_NETDIR) {
        int i = qk_proc_net_find(c, n);
        if (i < 0 || *r)
          return i < 0 ? -QK_ENOENT : -QK_ENOTDIR;
        nd->fd = i;
        nd->id = T_P_NETFILE;
        nd->type = N_FILE;
        return 0;
      }
      if (nd->id != T_PID && nd->id != T_P_TID)
        return -QK_ENOTDIR;
      const struct ent *e = NULL;
      for (size_t i = 0; i < QK_ARRAY_SIZE(pid_ents); i++)
        if (strlen(pid_ents[i].name) == n && !strncmp(pid_ents[i].name, c, n))
          e = &pid_ents[i];
      if (!e || (nd->id == T_P_TID && e->id == T_P_TASKDIR))
        return -QK_ENOENT;
      nd->id = e->id;
      nd->type = e->type;
      if (e->type != N_DIR && *r)
        return -QK_ENOTDIR;
    }
    return 0;
  }
  if (n == 3 && !strncmp(c, "sys", 3)) {
    nd->id = T_SYSDIR;
    nd->type = N_DIR;
    nd->fd = -1;
    if (!*r)
      return 0;
    int i = sent_find(proc_sys, QK_ARRAY_SIZE(proc_sys), r, strlen(r));
    if (i < 0)
      return -QK_ENOENT;
    nd->fd = i;
    if (proc_sys[i].gen) {
      nd->id = T_SYSFILE;
      nd->type = N_FILE;
    }
    return 0;
  }
  for (size_t i = 0; i < QK_ARRAY_SIZE(top_ents); i++) {
    if (strlen(top_ents[i].name) == n && !strncmp(top_ents[i].name, c, n)) {
      if (*r)
        return -QK_ENOTDIR;
      nd->id = top_ents[i].id;
      nd->type = top_ents[i].type;
      return 0;
    }
  }
  return -QK_ENOENT;
}

/* ---- reading another process's memory (argv, environment) ---- */

/* Copies up to n bytes at user va of mm into buf; returns bytes copied
 * (stops at the first page that is not present). */
static size_t mm_read(struct qk_mm *mm, uint64_t va, void *buf, size_t n)
{
  size_t done = 0;
  while (done < n) {
    volatile uint64_t *huge = NULL;
    volatile uint64_t *pte = qk_pt_lookup(mm->cr3, va, false, &huge);
    uint64_t pa;
    if (huge && (*huge & QK_PTE_P))
      pa = (*huge & QK_PTE_ADDR & ~0x1fffffull) + (va & 0x1fffff);
    else if (pte && (*pte & QK_PTE_P))
      pa = (*pte & QK_PTE_ADDR) + (va & 4095);
    else
      break;
    size_t chunk = QK_PAGE_SIZE - (va & 4095);
    if (chunk > n - done)
      chunk = n - done;
    memcpy((char *)buf + done, qk_pa_to_va(pa), chunk);
    done += chunk;
    va += chunk;
  }
  return done;
}

static bool mm_word(struct qk_mm *mm, uint64_t va, uint64_t *w)
{
  return mm_read(mm, va, w, 8) == 8;
}

/* The initial stack's argument and environment areas: Linux records them
 * at exec (arg_start..env_end); here they are found from the stack itself.
 * Both the guest's exec and the host's loader end the auxiliary vector
 * with AT_EXECFN then AT_NULL, and put argc, argv[], NULL, envp[], NULL
 * right below it; the strings are contiguous (argv's, then envp's). */
struct args {
  uint64_t arg_start, arg_end, env_start, env_end;
};

static bool find_args(struct qk_process *p, struct args *a)
{
  struct qk_mm *mm = p->mm;
  if (!mm || p->zombie)
    return false;
  struct qk_vma *stack = NULL;
  for (struct qk_vma *v = mm->vmas.head; v; v = v->next)
    if (v->flags & QK_VMF_GROWSDOWN)
      stack = v;
  if (!stack) /* the boot process's stack: the highest area */
    for (struct qk_vma *v = mm->vmas.head; v; v = v->next)
      stack = v;
  if (!stack)
    return false;
  /* Scan down from the top for {AT_EXECFN, ptr into the stack} followed by
   * at most 4 more auxv pairs (AT_SYSINFO_EHDR...) and {AT_NULL, 0}. */
  uint64_t lo = stack->end - 64 * 1024 > stack->start ? stack->end - 64 * 1024 : stack->start;
  uint64_t buf[512];
  uint64_t aux_end = 0;
  for (uint64_t top = stack->end; top > lo && !aux_end;) {
    uint64_t base = top - sizeof(buf) > lo ? top - sizeof(buf) : lo;
    size_t got = mm_read(mm, base, buf, (size_t)(top - base));
    if (got != top - base)
      return false;
    size_t words = got / 8;
    for (size_t i = words; i-- > 1 && !aux_end;) {
      if (buf[i - 1] != 31 || buf[i] < stack->start || buf[i] >= stack->end)
        continue;
      uint64_t at = base + (i - 1) * 8, k, v;
      for (int pairs = 0; pairs < 5; pairs++) {
        at += 16;
        if (!mm_word(mm, at, &k) || !mm_word(mm, at + 8, &v) || k >= 64)
          break;
        if (k == 0) {
          if (v == 0)
            aux_end = base + (i - 1) * 8; /* address of the AT_EXECFN pair */
          break;
        }
      }
    }
    top = base + 8; /* overlap: a pair across the boundary */
    if (base == lo)
      break;
  }
  if (!aux_end)
    return false;
  /* Back over the auxv pairs (types 1..63). */
  uint64_t at = aux_end, w;
  while (at - 16 >= stack->start && mm_word(mm, at - 16, &w) && w >= 1 && w < 64)
    at -= 16;
  /* at: the auxv's first pair; envp's NULL at at - 8. */
  uint64_t q = at - 8, envc = 0, argc = 0, first_env = 0, first_arg = 0;
  if (!mm_word(mm, q, &w) || w)
    return false;
  while (q - 8 >= stack->start && mm_word(mm, q - 8, &w) && w) {
    q -= 8;
    first_env = w;
    if (++envc > 65536)
      return false;
  }
  q -= 8; /* argv's NULL */
  while (q - 8 >= stack->start && mm_word(mm, q - 8, &w)) {
    if (w == argc)
      break; /* argc itself */
    q -= 8;
    first_arg = w;
    if (++argc > 65536)
      return false;
  }
  uint64_t last;
  char tmp[256];
  /* The end of the last string of a list: walk its bytes to the NUL. */
  if (envc) {
    if (!mm_word(mm, at - 16, &last))
      return false;
    a->env_start = first_env;
  } else {
    a->env_start = 0;
    last = 0;
  }
  uint64_t end = 0;
  if (envc) {
    for (uint64_t va = last; va < stack->end;) {
      size_t got = mm_read(mm, va, tmp, sizeof(tmp));
      if (!got)
        break;
      size_t k = strnlen(tmp, got);
      if (k < got) {
        end = va + k + 1;
        break;
      }
      va += got;
    }
    a->env_end = end;
  }
  a->arg_start = argc ? first_arg : 0;
  if (argc && envc) {
    a->arg_end = first_env;
  } else if (argc) {
    uint64_t la;
    if (!mm_word(mm, q + 8 * argc - 8 + 0, &la))
      return false;
    end = 0;
    for (uint64_t va = la; va < stack->end;) {
      size_t got = mm_read(mm, va, tmp, sizeof(tmp));
      if (!got)
        break;
      size_t k = strnlen(tmp, got);
      if (k < got) {
        end = va + k + 1;
        break;
      }
      va += got;
    }
    a->arg_end = end;
  } else {
    a->arg_end = 0;
  }
  if (!envc)
    a->env_start = a->env_end = a->arg_end;
  return a->arg_start <= a->arg_end && a->env_start <= a->env_end;
}

static void gen_mem_range(struct pbuf *o, struct qk_process *p, uint64_t s, uint64_t e)
{
  if (!s || e <= s || e - s > BUF_MAX)
    return;
  pb_grow(o, (size_t)(e - s));
  if (o->oom)
    return;
  size_t got = mm_read(p->mm, s, o->b + o->len, (size_t)(e - s));
  o->len += got;
  o->b[o->len] = 0;
}

/* ---- process attributes ---- */

static void comm_of(struct qk_process *p, struct qk_task *t, char out[16])
{
  if (t && t->comm[0]) {
    qk_strlcpy(out, t->comm, 16);
    return;
  }
  const char *b = strrchr(p->exe, '/');
  qk_strlcpy(out, b ? b + 1 : p->exe, 16);
}

static char state_of(struct qk_process *p, struct qk_task *only)
{
  if (p->zombie)
    return 'Z';
  if (p->jobctl & QK_JOB_STOPPED)
    return 'T'; /* job control: stopped (task/signal.c) */
  for (struct qk_task *t = p->threads; t; t = t->next_in_proc)
    if ((!only || t == only) && t->state == QK_TASK_RUNNING)
      return 'R';
  return 'S';
}

struct memstat {
  uint64_t vsize, rss_pages, stack, data, exe;
};

static uint64_t present_pages(struct qk_mm *mm, uint64_t s, uint64_t e)
{
  uint64_t n = 0;
  for (uint64_t va = s; va < e;) {
    uint64_t next2m = (va | 0x1fffffull) + 1;
    uint64_t lim = next2m < e ? next2m : e;
    volatile uint64_t *pde = qk_pt_pde(mm->cr3, va, false);
    if (!pde || !(*pde & QK_PTE_P)) {
      va = lim;
      continue;
    }
    if (*pde & QK_PTE_PS) {
      n += (lim - va) / QK_PAGE_SIZE;
      va = lim;
      continue;
    }
    volatile uint64_t *pt = qk_pa_to_va(*pde & QK_PTE_ADDR);
    for (; va < lim; va += QK_PAGE_SIZE)
      n += pt[(va >> 12) & 511] & QK_PTE_P;
  }
  return n;
}

static void mem_of(struct qk_process *p, struct memstat *m)
{
  memset(m, 0, sizeof(*m));
  if (!p->mm || p->zombie)
    return;
  for (struct qk_vma *v = p->mm->vmas.head; v; v = v->next) {
    uint64_t len = v->end - v->start;
    m->vsize += len;
    m->rss_pages += present_pages(p->mm, v->start, v->end);
    if (v->flags & QK_VMF_GROWSDOWN)
      m->stack += len;
    else if ((v->prot & L_PROT_EXEC) && (v->flags & QK_VMF_FILE))
      m->exe += len;
    else if (v->prot & L_PROT_WRITE)
      m->data += len;
  }
}

static uint64_t ticks(uint64_t ns)
{
  return ns / (1000000000ull / HZ);
}

static uint64_t boot_mono(void)
{
  return qk_boot->boot_monotonic_ns;
}

static uint64_t proc_cpu_ns(struct qk_process *p)
{
  uint64_t u, s;
  qk_cputime_proc(p, &u, &s);
  return u + s;
}

static void gen_stat(struct pbuf *o, struct qk_process *p, struct qk_task *t)
{
  char comm[16];
  comm_of(p, t, comm);
  struct memstat m;
  mem_of(p, &m);
  struct args a = {0, 0, 0, 0};
  if (!find_args(p, &a))
    memset(&a, 0, sizeof(a));
  uint64_t ut, st, cut, cst; /* task/cputime.c */
  if (t && t != p->threads)
    qk_cputime_task(t, &ut, &st);
  else
    qk_cputime_proc(p, &ut, &st);
  qk_cputime_children(p, &cut, &cst);
  uint64_t start = p->start_ns > boot_mono() ? ticks(p->start_ns - boot_mono()) : 0;
  uint64_t sigign = 0, sigcatch = 0;
  for (int s = 1; s <= L_NSIG; s++) {
    uint64_t h = p->sigactions[s - 1].handler;
    if (h == 1)
      sigign |= 1ull << (s - 1);
    else if (h > 1)
      sigcatch |= 1ull << (s - 1);
  }
  struct qk_task *mt = t ? t : p->threads;
  pb_printf(o, "%d (%s) %c %d %d %d 0 -1 %u 0 0 0 0 %lu %lu %lu %lu 20 0 %u 0 %lu %lu %lu %lu",
            t && t != p->threads ? t->tid : p->pid, comm,
            state_of(p, t && t != p->threads ? t : NULL), p->ppid, p->pgid, p->sid,
            0x400000u /* PF_RANDOMIZE-ish flags: tools only print them */, ticks(ut),
            ticks(st), ticks(cut), ticks(cst), p->nr_threads, start, m.vsize, m.rss_pages,
            (uint64_t)p->rlim[L_RLIMIT_RSS].cur);
  pb_printf(o, " 0 0 %lu 0 0 %lu %lu %lu %lu 0 0 0 %d 0 0 0 0 0 0 0 0 %lu %lu %lu %lu %lu %d\n",
            a.arg_start ? a.arg_start & ~(uint64_t)4095 : 0,
            p->sigpending | (mt ? mt->sigpending : 0), mt ? mt->sigmask : 0, sigign, sigcatch,
            p->exit_signal, p->mm ? p->mm->brk_start : 0, a.arg_start, a.arg_end, a.env_start,
            a.env_end, p->zombie ? p->wstatus : 0);
}

static void gen_status(struct pbuf *o, struct qk_process *p, struct qk_task *t)
{
  char comm[16];
  comm_of(p, t, comm);
  static const char *const states[] = {"R (running)", "S (sleeping)", "Z (zombie)", "T (stopped)"};
  char st = state_of(p, t && t != p->threads ? t : NULL);
  struct memstat m;
  mem_of(p, &m);
  int tid = t ? t->tid : p->pid;
  struct qk_task *mt = t ? t : p->threads;
  uint64_t sigign = 0, sigcatch = 0;
  for (int s = 1; s <= L_NSIG; s++) {
    uint64_t h = p->sigactions[s - 1].handler;
    if (h == 1)
      sigign |= 1ull << (s - 1);
    else if (h > 1)
      sigcatch |= 1ull << (s - 1);
  }
  uint32_t um = p->fs ? p->fs->umask : 022;
  pb_printf(o,
            "Name:\t%s\nUmask:\t0%u%u%u\nState:\t%s\nTgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t%d\n"
            "TracerPid:\t0\n",
            comm, (um >> 6) & 7, (um >> 3) & 7, um & 7,
            states[st == 'R'   ? 0
                   : st == 'S' ? 1
                   : st == 'T' ? 3
                               : 2],
            p->pid, tid, p->ppid);
  pb_printf(o, "Uid:\t%u\t%u\t%u\t%u\nGid:\t%u\t%u\t%u\t%u\nFDSize:\t%d\nGroups:\t\n", p->uid,
            p->euid, p->euid, p->euid, p->gid, p->egid, p->egid, p->egid,
            p->files ? p->files->size : 0);
  pb_printf(o, "NStgid:\t%d\nNSpid:\t%d\nNSpgid:\t%d\nNSsid:\t%d\n", p->pid, tid, p->pgid, p->sid);
  if (p->mm && !p->zombie) {
    uint64_t kb = 1024;
    pb_printf(o,
              "VmPeak:\t%8lu kB\nVmSize:\t%8lu kB\nVmLck:\t%8lu kB\nVmPin:\t%8lu kB\n"
              "VmHWM:\t%8lu kB\nVmRSS:\t%8lu kB\nRssAnon:\t%8lu kB\nRssFile:\t%8lu kB\n"
              "RssShmem:\t%8lu kB\n",
              m.vsize / kb, m.vsize / kb, 0ul, 0ul, m.rss_pages * 4, m.rss_pages * 4,
              m.rss_pages * 4, 0ul, 0ul);
    pb_printf(o,
              "VmData:\t%8lu kB\nVmStk:\t%8lu kB\nVmExe:\t%8lu kB\nVmLib:\t%8lu kB\n"
              "VmPTE:\t%8lu kB\nVmSwap:\t%8lu kB\n",
              m.data / kb, m.stack / kb, m.exe / kb, 0ul, 0ul, 0ul);
  }
  pb_printf(o,
            "Threads:\t%u\nSigQ:\t0/%lu\nSigPnd:\t%016lx\nShdPnd:\t%016lx\nSigBlk:\t%016lx\n"
            "SigIgn:\t%016lx\nSigCgt:\t%016lx\n",
            p->nr_threads, (uint64_t)p->rlim[L_RLIMIT_NPROC].cur, mt ? mt->sigpending : 0,
            p->sigpending, mt ? mt->sigmask : 0, sigign, sigcatch);
  uint64_t caps = p->euid == 0 ? (uint64_t)0x1ffffffffffull : 0;
  pb_printf(o,
            "CapInh:\t%016lx\nCapPrm:\t%016lx\nCapEff:\t%016lx\nCapBnd:\t%016lx\n"
            "CapAmb:\t%016lx\nNoNewPrivs:\t0\nSeccomp:\t0\n",
            0ul, caps, caps, (uint64_t)0x1ffffffffffull, 0ul);
  uint32_t n = qk_boot->vcpu_count ? qk_boot->vcpu_count : 1;
  pb_printf(o, "Cpus_allowed:\t%lx\nCpus_allowed_list:\t0",
            n >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1);
  if (n > 1)
    pb_printf(o, "-%u", n - 1);
  pb_printf(o, "\nvoluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n");
}

static void gen_maps(struct pbuf *o, struct qk_process *p)
{
  if (!p->mm || p->zombie)
    return;
  for (struct qk_vma *v = p->mm->vmas.head; v; v = v->next) {
    int start = (int)o->len;
    pb_printf(o, "%08lx-%08lx %c%c%c%c %08lx 00:00 0", v->start, v->end,
              v->prot & L_PROT_READ ? 'r' : '-', v->prot & L_PROT_WRITE ? 'w' : '-',
              v->prot & L_PROT_EXEC ? 'x' : '-', v->flags & QK_VMF_SHARED ? 's' : 'p', 0ul);
    const char *name = (v->flags & QK_VMF_GROWSDOWN) ? "[stack]"
                       : (v->flags & QK_VMF_HEAP)    ? "[heap]"
                                                     : NULL;
    if (name) {
      int w = (int)o->len - start;
      for (; w < 73; w++)
        pb_puts(o, " ");
      pb_puts(o, name);
    }
    pb_puts(o, "\n");
  }
}

static void gen_limits(struct pbuf *o, struct qk_process *p)
{
  static const char *const names[][2] = {
      {"Max cpu time", "seconds"},     {"Max file size", "bytes"},
      {"Max data size", "bytes"},      {"Max stack size", "bytes"},
      {"Max core file size", "bytes"}, {"Max resident set", "bytes"},
      {"Max processes", "processes"},  {"Max open files", "files"},
      {"Max locked memory", "bytes"},  {"Max address space", "bytes"},
      {"Max file locks", "locks"},     {"Max pending signals", "signals"},
      {"Max msgqueue size", "bytes"},  {"Max nice priority", ""},
      {"Max realtime priority", ""},   {"Max realtime timeout", "us"},
  };
  pb_printf(o, "%-25s %-20s %-20s %-10s\n", "Limit", "Soft Limit", "Hard Limit", "Units");
  for (int i = 0; i < L_RLIM_NLIMITS; i++) {
    char s[24], h[24];
    uint64_t c = p->rlim[i].cur, m = p->rlim[i].max;
    if (c == ~0ull)
      qk_strlcpy(s, "unlimited", sizeof(s));
    else
      qk_snprintf(s, sizeof(s), "%lu", c);
    if (m == ~0ull)
      qk_strlcpy(h, "unlimited", sizeof(h));
    else
      qk_snprintf(h, sizeof(h), "%lu", m);
    if (names[i][1][0])
      pb_printf(o, "%-25s %-20s %-20s %-10s\n", names[i][0], s, h, names[i][1]);
    else
      pb_printf(o, "%-25s %-20s %-20s \n", names[i][0], s, h);
  }
}

static uint64_t uptime_ns(void)
{
  uint64_t now = qk_time_monotonic_ns();
  return now > boot_mono() ? now - boot_mono() : 0;
}

static uint64_t all_cpu_ns(void)
{
  uint64_t ns = 0;
  for (struct qk_process *p = qk_all_procs; p; p = p->next_all) {
    uint64_t cu, cs; /* reaped children live on in their parent's cutime */
    qk_cputime_children(p, &cu, &cs);
    ns += proc_cpu_ns(p) + cu + cs;
  }
  return ns;
}

static void gen_uptime(struct pbuf *o)
{
  uint64_t up = uptime_ns() / 10000000ull; /* centiseconds */
  uint32_t n = qk_boot->vcpu_count ? qk_boot->vcpu_count : 1;
  uint64_t busy = all_cpu_ns() / 10000000ull, idle = up * n > busy ? up * n - busy : 0;
  pb_printf(o, "%lu.%02lu %lu.%02lu\n", up / 100, up % 100, idle / 100, idle % 100);
}

static void gen_loadavg(struct pbuf *o)
{
  struct qk_pidns *ns = reader()->ns;
  unsigned running = 0, total = 0;
  for (struct qk_task *t = qk_all_tasks; t; t = t->next_all) {
    if (t->state == QK_TASK_DEAD || !t->proc || t->proc->ns != ns)
      continue;
    total++;
    running += t->state == QK_TASK_RUNNING;
  }
  pb_printf(o, "0.00 0.00 0.00 %u/%u %d\n", running, total, ns->last_pid);
}

static void gen_stat_sys(struct pbuf *o)
{
  uint32_t n = qk_boot->vcpu_count ? qk_boot->vcpu_count : 1;
  uint64_t up = ticks(uptime_ns()), user = ticks(all_cpu_ns());
  uint64_t idle = up * n > user ? up * n - user : 0;
  pb_printf(o, "cpu  %lu 0 0 %lu 0 0 0 0 0 0\n", user, idle);
  for (uint32_t c = 0; c < n; c++)
    pb_printf(o, "cpu%u %lu 0 0 %lu 0 0 0 0 0 0\n", c, user / n, idle / n);
  unsigned procs = 0, running = 0;
  for (struct qk_process *p = qk_all_procs; p; p = p->next_all)
    procs++;
  for (struct qk_task *t = qk_all_tasks; t; t = t->next_all)
    running += t->state == QK_TASK_RUNNING;
  pb_printf(o,
            "intr 0\nctxt 0\nbtime %lu\nprocesses %u\nprocs_running %u\nprocs_blocked 0\n"
            "softirq 0 0 0 0 0 0 0 0 0 0 0\n",
            (uint64_t)(qk_boot->boot_realtime_ns / 1000000000ull), procs, running);
}

static void hostname(char out[65])
{
  memcpy(out, qk_boot->hostname, sizeof(qk_boot->hostname));
  out[sizeof(qk_boot->hostname)] = 0;
  if (!out[0])
    qk_strlcpy(out, "quark", 65);
}

static void gen_tree(struct pbuf *o, int gen)
{
  uint32_t n = qk_boot->vcpu_count ? qk_boot->vcpu_count : 1;
  char h[65];
  switch (gen) {
  case S_HOSTNAME:
    hostname(h);
    pb_printf(o, "%s\n", h);
    break;
  case S_OSTYPE:
    pb_puts(o, "Linux\n");
    break;
  case S_OSRELEASE:
    pb_puts(o, "6.1.0-quark\n"); /* as uname(2) says */
    break;
  case S_PIDMAX:
    pb_puts(o, "4194304\n");
    break;
  case S_NGROUPS:
    pb_puts(o, "65536\n");
    break;
  case S_OVERCOMMIT:
    pb_puts(o, "0\n");
    break;
  case S_SOMAXCONN:
    pb_puts(o, "4096\n");
    break;
  default: /* cpu online/possible/present */
    if (n > 1)
      pb_printf(o, "0-%u\n", n - 1);
    else
      pb_puts(o, "0\n");
    break;
  }
}

/* ---- links ---- */

/* The target of a link node into buf (QK_PATH_MAX). */
static int link_target(const struct node *nd, char *buf)
{
  struct qk_process *r = reader();
  switch (nd->id) {
  case T_SELF:
    qk_snprintf(buf, QK_PATH_MAX, "%d", r->pid);
    return 0;
  case T_THREAD_SELF:
    qk_snprintf(buf, QK_PATH_MAX, "%d/task/%d", r->pid, qk_current()->tid);
    return 0;
  case T_MOUNTS:
    qk_strlcpy(buf, "self/mounts", QK_PATH_MAX);
    return 0;
  case T_NET:
    qk_strlcpy(buf, "self/net", QK_PATH_MAX);
    return 0;
  case T_P_EXE:
    if (nd->p->zombie)
      return -QK_ENOENT;
    qk_strlcpy(buf, nd->p->exe, QK_PATH_MAX);
    return 0;
  case T_P_CWD:
  case T_P_ROOT:
    if (!nd->p->fs || nd->p->zombie)
      return -QK_ENOENT;
    if (!proc_may_read_links(nd->p))
      return -QK_EACCES;
    qk_strlcpy(buf, nd->id == T_P_ROOT ? "/" : nd->p->fs->cwd, QK_PATH_MAX);
    return 0;
  case T_P_FD: {
    struct qk_file *f = nd->p->files ? qk_fget_in(nd->p->files, nd->fd) : NULL;
    if (!f)
      return -QK_ENOENT;
    uint32_t id = (uint32_t)((uint64_t)(uintptr_t)f >> 4);
    if (f->path)
      qk_strlcpy(buf, f->path, QK_PATH_MAX);
    else if (qk_proc_net_sock_link(f, buf, QK_PATH_MAX) > 0) {
      /* socket:[inode] */
    }
    else if (f->ops->poll)
      qk_snprintf(buf, QK_PATH_MAX, "pipe:[%u]", id);
    else
      qk_snprintf(buf, QK_PATH_MAX, "anon_inode:[%u]", id);
    qk_fput(f);
    return 0;
  }
  default:
    return -QK_EINVAL;
  }
}

/* Follows a link node to where it leads: another /proc node (*nd updated,
 * returns 0), a file (*file set, returns 1), or a rootfs path (copied into
 * buf, returns 2). */
static int follow(struct node *nd, char *buf, struct qk_file **file)
{
  int r;
  switch (nd->id) {
  case T_SELF:
  case T_THREAD_SELF:
  case T_MOUNTS:
  case T_NET: {
    char *t = qk_kmalloc(QK_PATH_MAX);
    if (!t)
      return -QK_ENOMEM;
    link_target(nd, t);
    qk_snprintf(buf, QK_PATH_MAX, "/proc/%s", t);
    qk_kfree(t);
    return resolve(buf, nd);
  }
  case T_P_FD:
    *file = nd->p->files ? qk_fget_in(nd->p->files, nd->fd) : NULL;
    return *file ? 1 : -QK_ENOENT;
  default:
    r = link_target(nd, buf);
    return r ? r : 2;
  }
}

/* ---- files ---- */

struct pfile {
  struct pbuf data; /* file contents, or packed dirent64 records */
  struct node nd;
};

static void fill_stat(const struct node *nd, struct l_stat *st)
{
  memset(st, 0, sizeof(*st));
  st->st_dev = nd->sys ? SYS_DEV : PROC_DEV;
  st->st_ino = nd->ino;
  st->st_nlink = nd->type == N_DIR ? 2 : 1;
  st->st_mode = nd->type == N_DIR                             ? (L_S_IFDIR | 0555)
                : nd->type == N_LINK                          ? (L_S_IFLNK | 0777)
                : (nd->id == T_SYSFILE || nd->id == T_S_FILE) ? (L_S_IFREG | 0644)
                : (nd->id == T_P_ENVIRON)                     ? (L_S_IFREG | 0400)
                                                              : (L_S_IFREG | 0444);
  if (nd->p) {
    st->st_uid = nd->p->euid;
    st->st_gid = nd->p->egid;
  }
  st->st_blksize = 1024;
  uint64_t t = nd->p && nd->p->start_ns > boot_mono() ? nd->p->start_ns - boot_mono() : 0;
  t += qk_boot->boot_realtime_ns;
  st->st_atime_sec = st->st_mtime_sec = st->st_ctime_sec = (int64_t)(t / 1000000000ull);
  st->st_atime_nsec = st->st_mtime_nsec = st->st_ctime_nsec = (int64_t)(t % 1000000000ull);
}

static void add_dirent(struct pbuf *o, uint64_t ino, uint8_t type, const char *name)
{
  size_t n = strlen(name);
  size_t rec = (19 + n + 1 + 7) & ~7ull;
  pb_grow(o, rec);
  if (o->oom)
    return;
  char *d = o->b + o->len;
  memset(d, 0, rec);
  memcpy(d, &ino, 8);
  int64_t off = (int64_t)(o->len + rec);
  memcpy(d + 8, &off, 8);
  uint16_t rl = (uint16_t)rec;
  memcpy(d + 16, &rl, 2);
  d[18] = (char)type;
  memcpy(d + 19, name, n);
  o->len += rec;
}

static uint8_t dtype(enum ntype t)
{
  return t == N_DIR ? L_DT_DIR : t == N_LINK ? L_DT_LNK : L_DT_REG;
}

static void list_tree(struct pbuf *o, const struct sent *tab, size_t cnt, int dir, uint64_t ino)
{
  const char *prefix = dir >= 0 ? tab[dir].path : "";
  size_t pl = strlen(prefix);
  for (size_t i = 0; i < cnt; i++) {
    const char *p = tab[i].path;
    if (pl && (strncmp(p, prefix, pl) || p[pl] != '/'))
      continue;
    const char *rest = pl ? p + pl + 1 : p;
    if (!*rest || strchr(rest, '/'))
      continue;
    add_dirent(o, hash(p, ino) | 1, tab[i].gen ? L_DT_REG : L_DT_DIR, rest);
  }
}

static void gen_dir(struct pbuf *o, const struct node *nd)
{
  add_dirent(o, nd->ino, L_DT_DIR, ".");
  add_dirent(o, 1, L_DT_DIR, "..");
  char name[24];
  switch (nd->id) {
  case T_ROOT: {
    for (size_t i = 0; i < QK_ARRAY_SIZE(top_ents); i++)
      add_dirent(o, hash(top_ents[i].name, 7) | 1, dtype(top_ents[i].type), top_ents[i].name);
    struct qk_pidns *ns = reader()->ns;
    /* Increasing pids, as Linux lists them. */
    int last = 0;
    for (;;) {
      int next = 0;
      for (struct qk_process *p = qk_all_procs; p; p = p->next_all)
        if (p->ns == ns && p->pid > last && (!next || p->pid < next))
          next = p->pid;
      if (!next)
        break;
      qk_snprintf(name, sizeof(name), "%d", next);
      add_dirent(o, (uint64_t)next << 16, L_DT_DIR, name);
      last = next;
    }
    break;
  }
  case T_PID:
  case T_P_TID:
    for (size_t i = 0; i < QK_ARRAY_SIZE(pid_ents); i++)
      if (!(nd->id == T_P_TID && pid_ents[i].id == T_P_TASKDIR))
        add_dirent(o, hash(pid_ents[i].name, nd->ino) | 1, dtype(pid_ents[i].type),
                   pid_ents[i].name);
    break;
  case T_P_FDDIR:
    if (nd->p->files)
      for (int fd = 0; fd < nd->p->files->size; fd++)
        if (nd->p->files->files[fd]) {
          qk_snprintf(name, sizeof(name), "%d", fd);
          add_dirent(o, nd->ino + 1 + (uint64_t)fd, L_DT_LNK, name);
        }
    break;
  case T_P_TASKDIR:
    for (struct qk_task *t = nd->p->threads; t; t = t->next_in_proc) {
      qk_snprintf(name, sizeof(name), "%d", t->tid);
      add_dirent(o, nd->ino + (uint64_t)t->tid, L_DT_DIR, name);
    }
    break;
  case T_SYSDIR:
    list_tree(o, proc_sys, QK_ARRAY_SIZE(proc_sys), nd->fd, nd->ino);
    break;
  case T_S_DIR:
    list_tree(o, sys_tree, QK_ARRAY_SIZE(sys_tree), nd->fd, nd->ino);
    break;
  case T_P_NETDIR:
    for (int i = 0; i < qk_proc_net_count(); i++)
      if (qk_proc_net_name(i))
        add_dirent(o, hash(qk_proc_net_name(i), nd->ino) | 1, L_DT_REG, qk_proc_net_name(i));
    break;
  }
}

static void gen_file(struct pbuf *o, const struct node *nd)
{
  struct qk_process *p = nd->p;
  struct args a;
  char comm[16];
  switch (nd->id) {
  case T_MEMINFO:
    gen_meminfo(o);
    break;
  case T_CPUINFO:
    gen_cpuinfo(o);
    break;
  case T_UPTIME:
    gen_uptime(o);
    break;
  case T_LOADAVG:
    gen_loadavg(o);
    break;
  case T_STAT:
    gen_stat_sys(o);
    break;
  case T_VERSION:
    pb_puts(o, "Linux version 6.1.0-quark (quark@quark) (gcc) #1 SMP Quark\n");
    break;
  case T_FILESYSTEMS:
    pb_puts(o, "nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tdevpts\nnodev\tmqueue\n"
               "nodev\tquarkfs\n");
    break;
  case T_SYSFILE:
    gen_tree(o, proc_sys[nd->fd].gen);
    break;
  case T_S_FILE:
    gen_tree(o, sys_tree[nd->fd].gen);
    break;
  case T_P_STAT:
    gen_stat(o, p, nd->t);
    break;
  case T_P_STATUS:
    gen_status(o, p, nd->t);
    break;
  case T_P_STATM: {
    struct memstat m;
    mem_of(p, &m);
    pb_printf(o, "%lu %lu 0 %lu 0 %lu 0\n", m.vsize / 4096, m.rss_pages, m.exe / 4096,
              (m.data + m.stack) / 4096);
    break;
  }
  case T_P_CMDLINE:
    if (find_args(p, &a))
      gen_mem_range(o, p, a.arg_start, a.arg_end);
    break;
  case T_P_ENVIRON:
    if (find_args(p, &a))
      gen_mem_range(o, p, a.env_start, a.env_end);
    break;
  case T_P_MAPS:
    gen_maps(o, p);
    break;
  case T_P_COMM:
    comm_of(p, nd->t, comm);
    pb_printf(o, "%s\n", comm);
    break;
  case T_P_LIMITS:
    gen_limits(o, p);
    break;
  case T_P_MOUNTS:
    gen_mounts(o);
    break;
  case T_P_CGROUP:
    pb_puts(o, "0::/\n");
    break;
  case T_P_MOUNTINFO:
    gen_mountinfo(o);
    break;
  case T_P_OOM_ADJ:
    pb_puts(o, "0\n");
    break;
  case T_P_NETFILE:
    gen_net(o, nd->fd);
    break;
  }
}

static struct pfile *pf(struct qk_file *f)
{
  return f->priv;
}

static int64_t proc_rw(struct qk_file *f, const struct qk_uio *u, int64_t off, bool write)
{
  struct pfile *p = pf(f);
  if (write)
    return -QK_EBADF;
  if (p->nd.type == N_DIR)
    return -QK_EISDIR;
  int64_t pos = off < 0 ? (int64_t)f->kind : off;
  int64_t done = 0;
  for (unsigned i = 0; i < u->cnt && pos < (int64_t)p->data.len; i++) {
    uint64_t n = u->iov[i].len;
    if (n > p->data.len - (uint64_t)pos)
      n = p->data.len - (uint64_t)pos;
    if (qk_copy_to_user(u->iov[i].base, p->data.b + pos, n))
      return done ? done : -QK_EFAULT;
    pos += (int64_t)n;
    done += (int64_t)n;
  }
  if (off < 0)
    f->kind = (uint32_t)pos;
  return done;
}

static int64_t proc_lseek(struct qk_file *f, int64_t off, int whence)
{
  struct pfile *p = pf(f);
  int64_t base = whence == 0 ? 0 : whence == 1 ? (int64_t)f->kind : (int64_t)p->data.len;
  if (whence > 2)
    return -QK_EINVAL;
  if (base + off < 0)
    return -QK_EINVAL;
  f->kind = (uint32_t)(base + off);
  return base + off;
}

static int proc_fstat(struct qk_file *f, uint64_t gpa)
{
  fill_stat(&pf(f)->nd, qk_pa_to_va(gpa));
  return 0;
}

static int64_t proc_getdents(struct qk_file *f, uint64_t uva, uint64_t len)
{
  struct pfile *p = pf(f);
  if (p->nd.type != N_DIR)
    return -QK_ENOTDIR;
  uint64_t pos = f->kind, out = 0;
  while (pos < p->data.len) {
    uint16_t rec;
    memcpy(&rec, p->data.b + pos + 16, 2);
    if (out + rec > len)
      break;
    pos += rec;
    out += rec;
  }
  if (!out && pos < p->data.len)
    return -QK_EINVAL; /* buffer too small for one record */
  if (out && qk_copy_to_user(uva, p->data.b + f->kind, out))
    return -QK_EFAULT;
  f->kind = (uint32_t)pos;
  return (int64_t)out;
}

static int64_t proc_ioctl(struct qk_file *f, uint64_t cmd, uint64_t arg)
{
  (void)f;
  (void)cmd;
  (void)arg;
  return -QK_ENOTTY;
}

static int proc_mmap_hfd(struct qk_file *f)
{
  (void)f;
  return -QK_ENODEV;
}

static void proc_release(struct qk_file *f)
{
  struct pfile *p = pf(f);
  qk_kfree(p->data.b);
  qk_kfree(p);
}

static const struct qk_file_ops proc_ops = {
    .rw = proc_rw,
    .lseek = proc_lseek,
    .fstat = proc_fstat,
    .getdents = proc_getdents,
    .ioctl = proc_ioctl,
    .mmap_hfd = proc_mmap_hfd,
    .release = proc_release,
};

/* ---- entry points ---- */

/* After through_link (below) answered 0, *buf holds the path normalised:
 * it becomes the path to look up, a new scratch buffer (QK_PATH_MAX; NULL
 * without memory) takes its place. */
static char *take_norm(char **buf)
{
  char *p = *buf;
  *buf = qk_kmalloc(QK_PATH_MAX);
  return p;
}

/* Resolves abs following links (at most 8 hops) unless nofollow. Returns
 * 0 (a /proc node in *nd), 1 (an open file in *file), 2 (a rootfs path in
 * buf) or -errno. */
static int lookup(const char *abs, bool nofollow, struct node *nd, char *buf, struct qk_file **file)
{
  int r = resolve(abs, nd);
  for (int hops = 0; r == 0 && nd->type == N_LINK && !nofollow; hops++) {
    if (hops == 8)
      return -QK_ELOOP;
    r = follow(nd, buf, file);
  }
  return r;
}

/* A link's rootfs target goes back through the VFS, which sends /proc
 * paths (and host symlinks into /proc) here again: cwd "/proc/self/cwd"
 * or a host link /l -> /proc/self/root/l would recurse until the worker's
 * stack ran into the per-vCPU block. Nesting is counted across those
 * calls (the core runs under the kernel lock and never parks mid-call). */
#define PROC_MAX_NEST 8
static int proc_nest;

static int vfs_open_nested(const char *path, int flags, struct qk_file **out)
{
  if (proc_nest >= PROC_MAX_NEST)
    return -QK_ELOOP;
  proc_nest++;
  int r = qk_vfs_open(path, flags, 0, out);
  proc_nest--;
  return r;
}

static int vfs_stat_nested(const char *path, uint64_t stat_gpa)
{
  if (proc_nest >= PROC_MAX_NEST)
    return -QK_ELOOP;
  proc_nest++;
  int r = qk_vfs_stat(path, 0, stat_gpa);
  proc_nest--;
  return r;
}

/* ---- helpers of proc_root.c ---- */

struct qk_process *proc_link_owner(const char *link)
{
  struct node nd;
  return resolve(link, &nd) ? NULL : nd.p;
}

int proc_nest_enter(void)
{
  if (proc_nest >= PROC_MAX_NEST)
    return -QK_ELOOP;
  proc_nest++;
  return 0;
}

void proc_nest_leave(void)
{
  proc_nest--;
}

int qk_proc_open(const char *abs, int flags, uint32_t mode, struct qk_file **out)
{
  char *path = NULL, *buf = qk_kmalloc(QK_PATH_MAX);
  struct qk_process *tp;
  int r = buf ? proc_through_link(abs, flags & L_O_NOFOLLOW, buf, &tp) : -QK_ENOMEM;
  if (r) {
    r = r < 0 ? r : proc_open_in_root(tp, buf, flags, mode, out);
    qk_kfree(buf);
    return r;
  }
  path = take_norm(&buf);
  r = buf ? 0 : -QK_ENOMEM;
  struct node nd;
  struct qk_file *file = NULL;
  if (!r)
    r = lookup(path, flags & L_O_NOFOLLOW, &nd, buf, &file);
  if (r == 2) {
    r = vfs_open_nested(buf, flags, out); /* exe: the rootfs object */
  } else if (r == 1) {
    *out = file; /* fd/N: the open file itself */
    r = 0;
  } else if (r == 0) {
    uint32_t acc = (uint32_t)flags & L_O_ACCMODE;
    if (nd.type == N_LINK)
      r = (flags & L_O_PATH) ? 0 : -QK_ELOOP;
    else if (acc != L_O_RDONLY || (flags & (L_O_CREAT | L_O_TRUNC)))
      r = nd.type == N_DIR ? -QK_EISDIR : -QK_EACCES;
    else if ((flags & L_O_DIRECTORY) && nd.type != N_DIR)
      r = -QK_ENOTDIR;
    struct pfile *p = r ? NULL : qk_kzalloc(sizeof(*p));
    if (!r && !p)
      r = -QK_ENOMEM;
    if (!r) {
      p->nd = nd;
      if (nd.type == N_DIR)
        gen_dir(&p->data, &nd);
      else if (nd.type == N_FILE)
        gen_file(&p->data, &nd);
      struct qk_file *f =
          p->data.oom ? NULL
                      : qk_file_new(&proc_ops, (uint32_t)flags & ~(uint32_t)L_O_CLOEXEC, path);
      if (!f) {
        qk_kfree(p->data.b);
        qk_kfree(p);
        r = -QK_ENOMEM;
      } else {
        f->priv = p;
        f->kind = 0; /* the position */
        *out = f;
      }
    }
  }
  qk_kfree(path);
  qk_kfree(buf);
  return r;
}

int qk_proc_stat(const char *abs, int nofollow, uint64_t stat_gpa)
{
  char *path = NULL, *buf = qk_kmalloc(QK_PATH_MAX);
  struct qk_process *tp;
  int r = buf ? proc_through_link(abs, nofollow, buf, &tp) : -QK_ENOMEM;
  if (r) {
    r = r < 0 ? r : proc_stat_in_root(tp, buf, nofollow, stat_gpa);
    qk_kfree(buf);
    return r;
  }
  path = take_norm(&buf);
  r = buf ? 0 : -QK_ENOMEM;
  struct node nd;
  struct qk_file *file = NULL;
  if (!r)
    r = lookup(path, nofollow, &nd, buf, &file);
  if (r == 2) {
    r = stat_gpa ? vfs_stat_nested(buf, stat_gpa) : 0;
  } else if (r == 1) {
    r = stat_gpa ? file->ops->fstat(file, stat_gpa) : 0;
    qk_fput(file);
  } else if (r == 0 && stat_gpa) {
    fill_stat(&nd, qk_pa_to_va(stat_gpa));
  }
  qk_kfree(path);
  qk_kfree(buf);
  return r;
}

int64_t qk_proc_readlink(const char *abs, char *buf, uint64_t len)
{
  char *path = NULL, *t = qk_kmalloc(QK_PATH_MAX);
  struct qk_process *tp;
  int64_t r = t ? proc_through_link(abs, true, t, &tp) : -QK_ENOMEM;
  if (r > 0)
    r = proc_readlink_in_root(tp, t, buf, len); /* a link in the other root */
  if (r) {
    qk_kfree(t);
    return r;
  }
  path = take_norm(&t);
  r = t ? 0 : -QK_ENOMEM;
  struct node nd;
  if (!r)
    r = resolve(path, &nd);
  if (!r)
    r = nd.type == N_LINK ? link_target(&nd, t) : -QK_EINVAL;
  if (!r) {
    size_t n = strlen(t);
    r = (int64_t)(n < len ? n : len);
    memcpy(buf, t, (size_t)r);
  }
  qk_kfree(path);
  qk_kfree(t);
  return r;
}

