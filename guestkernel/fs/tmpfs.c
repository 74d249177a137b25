/* tmpfs: a memory filesystem in the guest, mounted on /dev/shm whatever
 * the image holds there (as container runtimes mount one). Directories,
 * regular files (data in guest pages, allocated on write), symbolic links
 * and hard links; names, modes, owners and times as Linux keeps them.
 * Symbolic links are followed here while they stay in the tmpfs; a link
 * that leads elsewhere hands the rest of the path back to the caller
 * (QK_TMPFS_REDIRECT), which resolves it like any other path.
 *
 * mmap maps a file's own pages (MAP_SHARED: every process sees the
 * others' writes, fork shares them) or copies them (MAP_PRIVATE), through
 * qk_mm_map_pages. A MAP_SHARED area keeps the node (tnode.maps) and finds
 * its pages by offset on each fault, so it follows ftruncate: pages past the
 * end are SIGBUS, a shrink removes them from every mapping
 * (qk_mm_obj_truncate) and a grow makes them reachable (zero). memfd files
 * are unnamed nodes of this filesystem with Linux's seals; so is the object
 * of a MAP_SHARED|MAP_ANONYMOUS mapping (qk_tmpfs_anon_obj).
 *
 * Not done: FIFOs and sockets in it, a size limit beyond the guest's free
 * memory (statfs reports the guest's memory). */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/linux.h>
#include <qk/mm.h>
#include <qk/qcall.h>
#include <qk/task.h>

#include "fs_internal.h"

#define MOUNT "/dev/shm"
#define MOUNT_LEN 8
#define NAME_MAX_ 255
#define HOPS 40
#define L_S_IFIFO 0010000
#define TMPFS_DEV 0x17ull
#define L_DT_DIR 4
#define L_DT_REG 8
#define L_DT_LNK 10

struct tdent;

struct tnode {
  uint32_t mode, uid, gid, nlink;
  uint32_t opens; /* open files holding it */
  uint32_t maps;  /* MAP_SHARED areas holding it */
  uint64_t ino;
  int64_t atime, mtime, ctime; /* ns */
  struct tnode *parent;        /* directories */
  struct tdent *children;      /* directories */
  uint64_t size;               /* files: bytes; symlinks: target length */
  uint64_t *pages;             /* files: guest-physical pages, 0 = hole */
  uint64_t npages;             /* slots in pages[] */
  char *target;                /* symlinks */
  uint32_t seals;              /* F_SEAL_* (memfd; F_SEAL_SEAL for other files) */
};

#define F_SEAL_SEAL 0x1u
#define F_SEAL_SHRINK 0x2u
#define F_SEAL_GROW 0x4u
#define F_SEAL_WRITE 0x8u
#define F_SEAL_FUTURE_WRITE 0x10u
#define F_SEAL_EXEC 0x20u

struct tdent {
  char *name;
  struct tnode *node;
  struct tdent *next;
};

static struct tnode *root;
static uint64_t next_ino = 2;

static int64_t now_ns(void)
{
  return (int64_t)qk_time_realtime_ns();
}

static struct qk_process *proc(void)
{
  return qk_current()->proc;
}

static struct tnode *node_new(uint32_t mode)
{
  struct tnode *n = qk_kzalloc(sizeof(*n));
  if (!n)
    return NULL;
  n->mode = mode;
  n->uid = proc()->euid;
  n->gid = proc()->egid;
  n->ino = next_ino++;
  n->atime = n->mtime = n->ctime = now_ns();
  n->seals = F_SEAL_SEAL;
  return n;
}

static void node_free_data(struct tnode *n, uint64_t from_page)
{
  for (uint64_t i = from_page; i < n->npages; i++)
    if (n->pages[i]) {
      qk_page_free(n->pages[i]);
      n->pages[i] = 0;
    }
}

/* Drops the node once it has no name and no opener. */
static void node_put(struct tnode *n)
{
  if (n->nlink || n->opens || n->maps)
    return;
  node_free_data(n, 0);
  qk_kfree(n->pages);
  qk_kfree(n->target);
  qk_kfree(n);
}

static bool is_dir(const struct tnode *n)
{
  return (n->mode & L_S_IFMT) == L_S_IFDIR;
}

static bool is_lnk(const struct tnode *n)
{
  return (n->mode & L_S_IFMT) == L_S_IFLNK;
}

static int ensure_root(void)
{
  if (root)
    return 0;
  root = node_new(L_S_IFDIR | 01777);
  if (!root)
    return -QK_ENOMEM;
  root->uid = root->gid = 0;
  root->nlink = 2;
  root->parent = root;
  return 0;
}

bool qk_tmpfs_path(const char *abs)
{
  return abs[0] == '/' && abs[1] == 'd' && !strncmp(abs, MOUNT, MOUNT_LEN) &&
         (abs[MOUNT_LEN] == 0 || abs[MOUNT_LEN] == '/');
}

static struct tdent *find(struct tnode *dir, const char *name, size_t n)
{
  for (struct tdent *d = dir->children; d; d = d->next)
    if (strlen(d->name) == n && !strncmp(d->name, name, n))
      return d;
  return NULL;
}

/* Where a path led. */
struct walk {
  struct tnode *dir;  /* the parent of the last component */
  struct tnode *node; /* the object, or NULL (dir holds where it would go) */
  char last[NAME_MAX_ + 1];
};

/* Resolves a normalised path under /dev/shm: 0 (w filled), QK_TMPFS_REDIRECT
 * (a link led out of the tmpfs: the path to resolve instead is in buf,
 * QK_PATH_MAX bytes), or -errno. follow: the last component's link too. */
static int walk(const char *abs, bool follow, struct walk *w, char *buf)
{
  int r = ensure_root();
  if (r)
    return r;
  char *path = qk_kmalloc(QK_PATH_MAX), *tmp = qk_kmalloc(QK_PATH_MAX);
  if (!path || !tmp) {
    qk_kfree(path);
    qk_kfree(tmp);
    return -QK_ENOMEM;
  }
  qk_strlcpy(path, abs, QK_PATH_MAX);
  qk_path_normalize(path);
  int hops = 0;
restart:
  if (!qk_tmpfs_path(path)) {
    qk_strlcpy(buf, path, QK_PATH_MAX);
    r = QK_TMPFS_REDIRECT;
    goto out;
  }
  struct tnode *cur = root;
  w->dir = root;
  w->node = root;
  qk_strlcpy(w->last, ".", sizeof(w->last));
  const char *c = path + MOUNT_LEN;
  while (*c == '/')
    c++;
  while (*c) {
    const char *e = c;
    while (*e && *e != '/')
      e++;
    size_t n = (size_t)(e - c);
    const char *rest = e;
    while (*rest == '/')
      rest++;
    if (n > NAME_MAX_) {
      r = -QK_ENAMETOOLONG;
      goto out;
    }
    if (!is_dir(cur)) {
      r = -QK_ENOTDIR;
      goto out;
    }
    struct tdent *d = find(cur, c, n);
    w->dir = cur;
    memcpy(w->last, c, n);
    w->last[n] = 0;
    w->node = d ? d->node : NULL;
    if (!d) {
      r = *rest ? -QK_ENOENT : 0;
      goto out;
    }
    if (is_lnk(d->node) && (*rest || follow)) {
      if (++hops > HOPS) {
        r = -QK_ELOOP;
        goto out;
      }
      /* new path: the directory so far + target + rest */
      size_t dl = (size_t)(c - path);
      const char *t = d->node->target;
      size_t tl = strlen(t), rl = strlen(rest);
      if (t[0] == '/')
        dl = 0;
      if (dl + tl + 1 + rl + 1 > QK_PATH_MAX) {
        r = -QK_ENAMETOOLONG;
        goto out;
      }
      memcpy(tmp, path, dl);
      memcpy(tmp + dl, t, tl);
      tmp[dl + tl] = '/';
      memcpy(tmp + dl + tl + 1, rest, rl + 1);
      qk_strlcpy(path, tmp, QK_PATH_MAX);
      qk_path_normalize(path);
      goto restart;
    }
    cur = d->node;
    c = rest;
  }
  r = 0;
out:
  qk_kfree(path);
  qk_kfree(tmp);
  return r;
}

/* ---- permission (the guest's users; root passes) ---- */

static int may(const struct tnode *n, int want /* 4 r, 2 w, 1 x */)
{
  struct qk_process *p = proc();
  if (p->euid == 0)
    return 0;
  uint32_t m = n->mode;
  uint32_t bits = n->uid == p->euid ? (m >> 6) : n->gid == p->egid ? (m >> 3) : m;
  return ((bits & 7) & (uint32_t)want) == (uint32_t)want ? 0 : -QK_EACCES;
}

/* ---- open files ---- */

struct tpos {
  struct tnode *n;
  uint64_t pos; /* file offset, or the directory listing's next index */
};

static struct tnode *fnode(struct qk_file *f)
{
  return ((struct tpos *)f->priv)->n;
}

static const uint8_t zero_page[4096];

static int grow_pages(struct tnode *n, uint64_t pg)
{
  if (pg < n->npages)
    return 0;
  uint64_t cap = n->npages ? n->npages : 4;
  while (cap <= pg)
    cap *= 2;
  /* one page of slots per 2 MiB of file: at most 512 MiB per file */
  uint64_t *np = cap <= 65536 ? qk_kzalloc(cap * 8) : NULL;
  if (!np)
    return -QK_EFBIG;
  if (n->npages)
    memcpy(np, n->pages, n->npages * 8);
  qk_kfree(n->pages);
  n->pages = np;
  n->npages = cap;
  return 0;
}

static int64_t t_rw(struct qk_file *f, const struct qk_uio *u, int64_t off, bool write)
{
  struct tpos *tp = f->priv;
  struct tnode *n = tp->n;
  if (is_dir(n))
    return -QK_EISDIR;
  uint64_t pos = off < 0 ? tp->pos : (uint64_t)off;
  if (write && (f->flags & L_O_APPEND))
    pos = n->size;
  if (write && (n->seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)))
    return -QK_EPERM;
  if (write && (n->seals & F_SEAL_GROW) && pos + u->total > n->size)
    return -QK_EPERM;
  int64_t done = 0, err = 0;
  for (unsigned i = 0; i < u->cnt && !err; i++) {
    uint64_t uva = u->iov[i].base, left = u->iov[i].len;
    while (left) {
      if (!write && pos >= n->size)
        break;
      uint64_t pg = pos / QK_PAGE_SIZE, in = pos % QK_PAGE_SIZE;
      uint64_t chunk = QK_PAGE_SIZE - in;
      if (chunk > left)
        chunk = left;
      if (!write && chunk > n->size - pos)
        chunk = n->size - pos;
      if (write) {
        if ((err = grow_pages(n, pg)))
          break;
        if (!n->pages[pg] && !(n->pages[pg] = qk_page_alloc(true))) {
          err = -QK_ENOSPC;
          break;
        }
        if (qk_copy_from_user((char *)qk_pa_to_va(n->pages[pg]) + in, uva, chunk)) {
          err = -QK_EFAULT;
          break;
        }
        if (pos + chunk > n->size)
          n->size = pos + chunk;
      } else {
        const void *src = pg < n->npages && n->pages[pg]
                              ? (const void *)((const char *)qk_pa_to_va(n->pages[pg]) + in)
                              : (const void *)zero_page;
        if (qk_copy_to_user(uva, src, chunk)) {
          err = -QK_EFAULT;
          break;
        }
      }
      pos += chunk;
      uva += chunk;
      left -= chunk;
      done += (int64_t)chunk;
    }
    if (!write && pos >= n->size)
      break;
  }
  if (off < 0)
    tp->pos = pos;
  if (write && done)
    n->mtime = n->ctime = now_ns();
  return done ? done : err;
}

static int64_t t_lseek(struct qk_file *f, int64_t off, int whence)
{
  struct tpos *tp = f->priv;
  int64_t base;
  switch (whence) {
  case 0:
    base = 0;
    break;
  case 1:
    base = (int64_t)tp->pos;
    break;
  case 2:
    base = (int64_t)tp->n->size;
    break;
  case 3: /* SEEK_DATA */
  case 4: /* SEEK_HOLE: the whole file is data */
    if (off < 0 || (uint64_t)off >= tp->n->size)
      return -QK_ENXIO;
    tp->pos = whence == 3 ? (uint64_t)off : tp->n->size;
    return (int64_t)tp->pos;
  default:
    return -QK_EINVAL;
  }
  if (base + off < 0)
    return -QK_EINVAL;
  tp->pos = (uint64_t)(base + off);
  return base + off;
}

static void fill_stat(const struct tnode *n, struct l_stat *st)
{
  memset(st, 0, sizeof(*st));
  st->st_dev = TMPFS_DEV;
  st->st_ino = n->ino;
  st->st_nlink = n->nlink;
  st->st_mode = n->mode;
  st->st_uid = n->uid;
  st->st_gid = n->gid;
  st->st_size = is_dir(n) ? 40 : (int64_t)n->size;
  st->st_blksize = 4096;
  uint64_t blocks = 0;
  for (uint64_t i = 0; i < n->npages; i++)
    blocks += n->pages[i] != 0;
  st->st_blocks = (int64_t)blocks * 8;
  st->st_atime_sec = n->atime / 1000000000;
  st->st_atime_nsec = n->atime % 1000000000;
  st->st_mtime_sec = n->mtime / 1000000000;
  st->st_mtime_nsec = n->mtime % 1000000000;
  st->st_ctime_sec = n->ctime / 1000000000;
  st->st_ctime_nsec = n->ctime % 1000000000;
}

static int t_fstat(struct qk_file *f, uint64_t gpa)
{
  fill_stat(fnode(f), qk_pa_to_va(gpa));
  return 0;
}

static int64_t t_getdents(struct qk_file *f, uint64_t uva, uint64_t len)
{
  struct tpos *tp = f->priv;
  struct tnode *n = tp->n;
  if (!is_dir(n))
    return -QK_ENOTDIR;
  char rec[8 + 8 + 2 + 1 + NAME_MAX_ + 1 + 8];
  uint64_t out = 0, idx = 0;
  /* ".", "..", then the entries: the index is the position */
  for (struct tdent *d = NULL;; idx++) {
    const char *name;
    uint64_t ino;
    uint8_t type;
    if (idx == 0) {
      name = ".";
      ino = n->ino;
      type = L_DT_DIR;
    } else if (idx == 1) {
      name = "..";
      ino = n->parent ? n->parent->ino : n->ino;
      type = L_DT_DIR;
    } else {
      d = d ? d->next : n->children;
      if (!d)
        break;
      name = d->name;
      ino = d->node->ino;
      type = is_dir(d->node) ? L_DT_DIR : is_lnk(d->node) ? L_DT_LNK : L_DT_REG;
    }
    if (idx < tp->pos)
      continue;
    size_t nl = strlen(name), rl = (19 + nl + 1 + 7) & ~(size_t)7;
    if (out + rl > len)
      break;
    memset(rec, 0, rl);
    memcpy(rec, &ino, 8);
    int64_t next = (int64_t)idx + 1;
    memcpy(rec + 8, &next, 8);
    uint16_t r16 = (uint16_t)rl;
    memcpy(rec + 16, &r16, 2);
    rec[18] = (char)type;
    memcpy(rec + 19, name, nl);
    if (qk_copy_to_user(uva + out, rec, rl))
      return out ? (int64_t)out : -QK_EFAULT;
    out += rl;
    tp->pos = idx + 1;
  }
  if (!out && idx >= tp->pos && len < 32)
    return -QK_EINVAL;
  return (int64_t)out;
}

static int64_t t_ioctl(struct qk_file *f, uint64_t cmd, uint64_t arg)
{
  (void)f;
  (void)cmd;
  (void)arg;
  return -QK_ENOTTY;
}

static int t_mmap_hfd(struct qk_file *f)
{
  (void)f;
  return -QK_ENODEV;
}

/* The mm's view of a file (struct qk_vmobj_ops): its frame of page pg. */
static uint64_t t_page(void *arg, uint64_t pg, bool alloc)
{
  struct tnode *n = arg;
  if (pg >= (n->size + QK_PAGE_SIZE - 1) / QK_PAGE_SIZE)
    return QK_MM_PAGE_EOF;
  if (pg < n->npages && n->pages[pg])
    return n->pages[pg];
  if (!alloc)
    return QK_MM_PAGE_HOLE;
  if (grow_pages(n, pg))
    return 0;
  n->pages[pg] = qk_page_alloc(true);
  return n->pages[pg];
}

static void t_map_get(void *arg)
{
  ((struct tnode *)arg)->maps++;
}

static void t_map_put(void *arg)
{
  struct tnode *n = arg;
  n->maps--;
  node_put(n);
}

static const struct qk_vmobj_ops tnode_vmops = {.page = t_page, .get = t_map_get, .put = t_map_put};

void *qk_tmpfs_anon_obj(uint64_t size, const struct qk_vmobj_ops **ops)
{
  struct tnode *n = node_new(L_S_IFREG | 0600);
  if (!n)
    return NULL;
  n->size = size;
  n->maps = 1;
  *ops = &tnode_vmops;
  return n;
}

static int64_t t_mmap(struct qk_file *f, uint64_t addr, uint64_t len, uint32_t prot,
                      uint32_t mflags, uint64_t off)
{
  struct tnode *n = fnode(f);
  if ((n->mode & L_S_IFMT) != L_S_IFREG)
    return -QK_ENODEV;
  if ((mflags & L_MAP_TYPE) != L_MAP_PRIVATE && (prot & L_PROT_WRITE) &&
      (n->seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)))
    return -QK_EPERM;
  n->atime = now_ns();
  return qk_mm_map_pages(proc()->mm, addr, len, prot, mflags & ~(uint32_t)L_MAP_ANONYMOUS,
                         &tnode_vmops, n, off / QK_PAGE_SIZE);
}

static void t_release(struct qk_file *f)
{
  struct tpos *tp = f->priv;
  tp->n->opens--;
  node_put(tp->n);
  qk_kfree(tp);
}

static const struct qk_file_ops tmpfs_ops = {
    .rw = t_rw,
    .lseek = t_lseek,
    .fstat = t_fstat,
    .getdents = t_getdents,
    .ioctl = t_ioctl,
    .mmap_hfd = t_mmap_hfd,
    .mmap = t_mmap,
    .release = t_release,
};

/* ---- namespace ---- */

static int link_in(struct tnode *dir, const char *name, struct tnode *n)
{
  struct tdent *d = qk_kmalloc(sizeof(*d));
  size_t len = strlen(name) + 1;
  char *nm = d ? qk_kmalloc(len) : NULL;
  if (!nm) {
    qk_kfree(d);
    return -QK_ENOSPC;
  }
  memcpy(nm, name, len);
  d->name = nm;
  d->node = n;
  d->next = dir->children;
  dir->children = d;
  n->nlink++;
  if (is_dir(n)) {
    n->parent = dir;
    n->nlink++; /* its "." */
    dir->nlink++;
  }
  dir->mtime = dir->ctime = now_ns();
  return 0;
}

/* Removes name from dir (it must be there); the node goes with its last
 * name and opener. */
static void unlink_from(struct tnode *dir, const char *name)
{
  for (struct tdent **pp = &dir->children; *pp; pp = &(*pp)->next) {
    struct tdent *d = *pp;
    if (strcmp(d->name, name))
      continue;
    *pp = d->next;
    struct tnode *n = d->node;
    if (is_dir(n)) {
      n->nlink = 0;
      dir->nlink--;
    } else {
      n->nlink--;
    }
    n->ctime = dir->mtime = dir->ctime = now_ns();
    qk_kfree(d->name);
    qk_kfree(d);
    node_put(n);
    return;
  }
}

static bool dots(const char *name)
{
  return !strcmp(name, ".") || !strcmp(name, "..");
}

static int create_node(struct walk *w, uint32_t mode, struct tnode **out)
{
  if (dots(w->last) || w->dir == w->node)
    return -QK_EEXIST;
  int r = may(w->dir, 3);
  if (r)
    return r;
  struct tnode *n = node_new(mode);
  if (!n)
    return -QK_ENOSPC;
  if (w->dir->mode & 02000) /* setgid directory */
    n->gid = w->dir->gid;
  r = link_in(w->dir, w->last, n);
  if (r) {
    qk_kfree(n);
    return r;
  }
  *out = n;
  return 0;
}

static int truncate_node(struct tnode *n, uint64_t len)
{
  if (is_dir(n))
    return -QK_EISDIR;
  if ((n->mode & L_S_IFMT) != L_S_IFREG)
    return -QK_EINVAL;
  if ((len < n->size && (n->seals & F_SEAL_SHRINK)) || (len > n->size && (n->seals & F_SEAL_GROW)))
    return -QK_EPERM;
  if (len < n->size) {
    uint64_t keep = (len + QK_PAGE_SIZE - 1) / QK_PAGE_SIZE;
    qk_mm_obj_truncate(n, keep);
    node_free_data(n, keep);
    if (len % QK_PAGE_SIZE && keep - 1 < n->npages && n->pages[keep - 1])
      memset((char *)qk_pa_to_va(n->pages[keep - 1]) + len % QK_PAGE_SIZE, 0,
             QK_PAGE_SIZE - len % QK_PAGE_SIZE);
  } else if (len / QK_PAGE_SIZE > 65536ull * 4096 / 8) {
    return -QK_EFBIG;
  }
  n->size = len;
  n->mtime = n->ctime = now_ns();
  return 0;
}

/* ---- entry points (absolute paths under /dev/shm) ---- */

int qk_tmpfs_open(const char *abs, int flags, uint32_t mode, struct qk_file **out, char *redirect)
{
  struct walk w;
  int r = walk(abs, !(flags & L_O_NOFOLLOW) || (flags & L_O_PATH), &w, redirect);
  if (r)
    return r;
  struct tnode *n = w.node;
  bool created = false;
  if (!n) {
    if (!(flags & L_O_CREAT))
      return -QK_ENOENT;
    if ((flags & L_O_DIRECTORY) || abs[strlen(abs) - 1] == '/')
      return -QK_EISDIR;
    r = create_node(&w, L_S_IFREG | (mode & 07777), &n);
    if (r)
      return r;
    created = true;
  } else if ((flags & (L_O_CREAT | L_O_EXCL)) == (L_O_CREAT | L_O_EXCL)) {
    return -QK_EEXIST;
  }
  uint32_t acc = (uint32_t)flags & L_O_ACCMODE;
  if (is_lnk(n) && !(flags & L_O_PATH))
    return -QK_ELOOP; /* O_NOFOLLOW on a link */
  if ((flags & L_O_DIRECTORY) && !is_dir(n))
    return -QK_ENOTDIR;
  if (is_dir(n) && (acc != L_O_RDONLY || (flags & L_O_CREAT)))
    return -QK_EISDIR;
  if ((n->mode & L_S_IFMT) == L_S_IFIFO && !(flags & L_O_PATH))
    return -QK_ENXIO;
  if (!created && !(flags & L_O_PATH)) {
    int want = (acc != L_O_WRONLY ? 4 : 0) | (acc != L_O_RDONLY ? 2 : 0);
    if ((r = may(n, want)))
      return r;
  }
  if ((flags & L_O_TRUNC) && acc != L_O_RDONLY && !(flags & L_O_PATH))
    truncate_node(n, 0);
  struct tpos *tp = qk_kzalloc(sizeof(*tp));
  struct qk_file *f =
      tp ? qk_file_new(&tmpfs_ops, (uint32_t)flags & ~(uint32_t)L_O_CLOEXEC, abs) : NULL;
  if (!f) {
    qk_kfree(tp);
    return -QK_ENOMEM;
  }
  tp->n = n;
  n->opens++;
  f->priv = tp;
  *out = f;
  return 0;
}

int qk_tmpfs_stat(const char *abs, int nofollow, uint64_t stat_gpa, char *redirect)
{
  struct walk w;
  int r = walk(abs, !nofollow, &w, redirect);
  if (r)
    return r;
  if (!w.node)
    return -QK_ENOENT;
  if (stat_gpa)
    fill_stat(w.node, qk_pa_to_va(stat_gpa));
  return 0;
}

int qk_tmpfs_access(const char *abs, int mode, int flags, char *redirect)
{
  struct walk w;
  int r = walk(abs, !(flags & L_AT_SYMLINK_NOFOLLOW), &w, redirect);
  if (r)
    return r;
  if (!w.node)
    return -QK_ENOENT;
  if ((mode & 1) && proc()->euid == 0 && !is_dir(w.node) && !(w.node->mode & 0111))
    return -QK_EACCES;
  return may(w.node, mode & 7);
}

int64_t qk_tmpfs_readlink(const char *abs, char *buf, uint64_t len, char *redirect)
{
  struct walk w;
  int r = walk(abs, false, &w, redirect);
  if (r)
    return r;
  if (!w.node)
    return -QK_ENOENT;
  if (!is_lnk(w.node))
    return -QK_EINVAL;
  uint64_t n = w.node->size < len ? w.node->size : len;
  memcpy(buf, w.node->target, n);
  return (int64_t)n;
}

int qk_tmpfs_mkdir(const char *abs, uint32_t mode, char *redirect)
{
  struct walk w;
  int r = walk(abs, false, &w, redirect);
  if (r)
    return r;
  if (w.node)
    return -QK_EEXIST;
  struct tnode *n;
  return create_node(&w, L_S_IFDIR | (mode & 07777), &n);
}

int qk_tmpfs_mknod(const char *abs, uint32_t mode, char *redirect)
{
  struct walk w;
  int r = walk(abs, false, &w, redirect);
  if (r)
    return r;
  if (w.node)
    return -QK_EEXIST;
  struct tnode *n;
  return create_node(&w, mode, &n);
}

int qk_tmpfs_symlink(const char *target, const char *abs, char *redirect)
{
  struct walk w;
  int r = walk(abs, false, &w, redirect);
  if (r)
    return r;
  if (w.node)
    return -QK_EEXIST;
  size_t tl = strlen(target);
  char *t = qk_kmalloc(tl + 1);
  if (!t)
    return -QK_ENOSPC;
  memcpy(t, target, tl + 1);
  struct tnode *n;
  r = create_node(&w, L_S_IFLNK | 0777, &n);
  if (r) {
    qk_kfree(t);
    return r;
  }
  n->target = t;
  n->size = tl;
  return 0;
}

int qk_tmpfs_unlink(const char *abs, bool rmdir, char *redirect)
{
  struct walk w;
  int r = walk(abs, false, &w, redirect);
  if (r)
    return r;
  if (!w.node)
    return -QK_ENOENT;
  if (w.node == root)
    return -QK_EBUSY;
  if (dots(w.last))
    return rmdir ? (!strcmp(w.last, ".") ? -QK_EINVAL : -QK_ENOTEMPTY) : -QK_EISDIR;
  if (rmdir && !is_dir(w.node))
    return -QK_ENOTDIR;
  if (!rmdir && is_dir(w.node))
    return -QK_EISDIR;
  if (rmdir && w.node->children)
    return -QK_ENOTEMPTY;
  if ((r = may(w.dir, 3)))
    return r;
  if ((w.dir->mode & 01000) && proc()->euid && w.node->uid != proc()->euid &&
      w.dir->uid != proc()->euid)
    return -QK_EPERM; /* sticky directory */
  unlink_from(w.dir, w.last);
  return 0;
}

/* Both paths in the tmpfs (the caller answers EXDEV otherwise). */
int qk_tmpfs_rename(const char *from, const char *to, uint32_t flags, char *redirect)
{
  struct walk a, b;
  int r = walk(from, false, &a, redirect);
  if (r)
    return r == QK_TMPFS_REDIRECT ? -QK_EXDEV : r;
  r = walk(to, false, &b, redirect);
  if (r)
    return r == QK_TMPFS_REDIRECT ? -QK_EXDEV : r;
  if (!a.node)
    return -QK_ENOENT;
  if (a.node == root || b.dir == b.node || dots(a.last) || dots(b.last))
    return -QK_EBUSY;
  if ((r = may(a.dir, 3)) || (r = may(b.dir, 3)))
    return r;
  /* a directory may not move beneath itself */
  for (struct tnode *d = b.dir; is_dir(a.node); d = d->parent) {
    if (d == a.node)
      return -QK_EINVAL;
    if (d == root)
      break;
  }
  if (b.node && (flags & QK_RENAME_NOREPLACE))
    return -QK_EEXIST;
  if (b.node == a.node)
    return 0; /* two names of one file: nothing to do (Linux) */
  if (flags & QK_RENAME_EXCHANGE) {
    if (!b.node)
      return -QK_ENOENT;
    struct tdent *da = find(a.dir, a.last, strlen(a.last)),
                 *db = find(b.dir, b.last, strlen(b.last));
    struct tnode *na = a.node, *nb = b.node;
    da->node = nb;
    db->node = na;
    if (is_dir(na) && a.dir != b.dir) {
      na->parent = b.dir;
      a.dir->nlink--;
      b.dir->nlink++;
    }
    if (is_dir(nb) && a.dir != b.dir) {
      nb->parent = a.dir;
      b.dir->nlink--;
      a.dir->nlink++;
    }
    na->ctime = nb->ctime = now_ns();
    return 0;
  }
  if (b.node) {
    if (flags & QK_RENAME_NOREPLACE)
      return -QK_EEXIST;
    if (is_dir(a.node) && !is_dir(b.node))
      return -QK_ENOTDIR;
    if (!is_dir(a.node) && is_dir(b.node))
      return -QK_EISDIR;
    if (is_dir(b.node) && b.node->children)
      return -QK_ENOTEMPTY;
  }
  struct tnode *n = a.node;
  n->opens++; /* keep it while its name moves */
  unlink_from(a.dir, a.last);
  if (b.node)
    unlink_from(b.dir, b.last);
  r = link_in(b.dir, b.last, n);
  n->opens--;
  if (r) /* out of memory for the name: the node is lost with its data */
    node_put(n);
  else
    n->ctime = now_ns();
  return r;
}

int qk_tmpfs_link(const char *from, const char *to, char *redirect)
{
  struct walk a, b;
  int r = walk(from, false, &a, redirect);
  if (r)
    return r == QK_TMPFS_REDIRECT ? -QK_EXDEV : r;
  r = walk(to, false, &b, redirect);
  if (r)
    return r == QK_TMPFS_REDIRECT ? -QK_EXDEV : r;
  if (!a.node)
    return -QK_ENOENT;
  if (is_dir(a.node))
    return -QK_EPERM;
  if (b.node || dots(b.last) || b.dir == b.node)
    return -QK_EEXIST;
  if ((r = may(b.dir, 3)))
    return r;
  r = link_in(b.dir, b.last, a.node);
  if (!r)
    a.node->ctime = now_ns();
  return r;
}

/* chmod (x: mode), chown (x: uid, y: gid; ~0u keeps), utimes (x: kernel
 * address of two timespecs or 0 for now), truncate (x: length) on a path
 * or, with abs NULL, on the open file f. */
int qk_tmpfs_setattr(int what, const char *abs, struct qk_file *f, uint64_t x, uint64_t y,
                     int nofollow, char *redirect)
{
  struct tnode *n;
  if (abs) {
    struct walk w;
    int r = walk(abs, !nofollow, &w, redirect);
    if (r)
      return r;
    if (!w.node)
      return -QK_ENOENT;
    n = w.node;
  } else {
    n = fnode(f);
  }
  struct qk_process *p = proc();
  bool owner = p->euid == 0 || p->euid == n->uid;
  switch (what) {
  case QK_TMPFS_CHMOD:
    if (!owner)
      return -QK_EPERM;
    if (is_lnk(n))
      return -QK_EOPNOTSUPP;
    n->mode = (n->mode & L_S_IFMT) | ((uint32_t)x & 07777);
    break;
  case QK_TMPFS_CHOWN:
    if (p->euid != 0 &&
        (((uint32_t)x != ~0u && (uint32_t)x != n->uid) ||
         ((uint32_t)y != ~0u && (uint32_t)y != n->gid && !(owner && (uint32_t)y == p->egid))))
      return -QK_EPERM;
    if ((uint32_t)x != ~0u)
      n->uid = (uint32_t)x;
    if ((uint32_t)y != ~0u)
      n->gid = (uint32_t)y;
    break;
  case QK_TMPFS_UTIMES: {
    const struct l_timespec *ts = x ? (const struct l_timespec *)x : NULL;
    int64_t now = now_ns();
    if (ts && !owner)
      return -QK_EPERM;
    if (!ts && !owner && may(n, 2))
      return -QK_EACCES;
    for (int i = 0; i < 2; i++) {
      int64_t v = !ts || ts[i].tv_nsec == (1l << 30) - 1 ? now
                  : ts[i].tv_nsec == (1l << 30) - 2      ? -1
                                                    : ts[i].tv_sec * 1000000000 + ts[i].tv_nsec;
      if (v >= 0)
        *(i ? &n->mtime : &n->atime) = v;
    }
    break;
  }
  case QK_TMPFS_TRUNCATE:
    if (abs && may(n, 2))
      return -QK_EACCES;
    return truncate_node(n, x);
  default:
    return -QK_EINVAL;
  }
  n->ctime = now_ns();
  return 0;
}

bool qk_tmpfs_file(struct qk_file *f)
{
  return f->ops == &tmpfs_ops;
}

/* ---- memfd ---- */

#define MFD_CLOEXEC 0x1u
#define MFD_ALLOW_SEALING 0x2u
#define MFD_HUGETLB 0x4u
#define MFD_NOEXEC_SEAL 0x8u
#define MFD_EXEC 0x10u

/* memfd_create(name, flags): an unnamed tmpfs file, open for reading and
 * writing. MFD_HUGETLB is EINVAL (no hugetlbfs pool). */
int64_t sys_memfd_create(uint64_t uname, uint64_t flags, uint64_t a2, uint64_t a3, uint64_t a4,
                         uint64_t a5)
{
  (void)a2, (void)a3, (void)a4, (void)a5;
  if (flags & ~(uint64_t)(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC))
    return -QK_EINVAL;
  if ((flags & MFD_NOEXEC_SEAL) && (flags & MFD_EXEC))
    return -QK_EINVAL;
  char path[8 + 250 + 11] = "/memfd:";
  int64_t len = qk_strncpy_from_user(path + 7, uname, 250);
  if (len < 0)
    return len == -QK_ENAMETOOLONG ? -QK_EINVAL : len;
  memcpy(path + 7 + len, " (deleted)", 11);
  int r = ensure_root();
  if (r)
    return r;
  struct tnode *n = node_new(L_S_IFREG | ((flags & MFD_NOEXEC_SEAL) ? 0666 : 0777));
  if (!n)
    return -QK_ENOMEM;
  n->seals = (flags & MFD_ALLOW_SEALING) || (flags & MFD_NOEXEC_SEAL) ? 0 : F_SEAL_SEAL;
  if (flags & MFD_NOEXEC_SEAL)
    n->seals |= F_SEAL_EXEC;
  struct tpos *tp = qk_kzalloc(sizeof(*tp));
  struct qk_file *f = tp ? qk_file_new(&tmpfs_ops, L_O_RDWR | L_O_LARGEFILE, path) : NULL;
  if (!f) {
    qk_kfree(tp);
    node_put(n);
    return -QK_ENOMEM;
  }
  tp->n = n;
  n->opens++;
  f->priv = tp;
  int fd = qk_fd_install(proc()->files, f, 0, flags & MFD_CLOEXEC);
  if (fd < 0)
    qk_fput(f);
  return fd;
}

/* fcntl F_ADD_SEALS (1033) / F_GET_SEALS (1034) on a tmpfs file. */
int64_t qk_tmpfs_seals(struct qk_file *f, int cmd, uint64_t arg)
{
  struct tnode *n = fnode(f);
  if (cmd == 1034)
    return n->seals;
  uint32_t add = (uint32_t)arg;
  if (arg & ~(uint64_t)(F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE |
                        F_SEAL_FUTURE_WRITE | F_SEAL_EXEC))
    return -QK_EINVAL;
  if ((f->flags & L_O_ACCMODE) == L_O_RDONLY)
    return -QK_EPERM;
  if (n->seals & F_SEAL_SEAL)
    return -QK_EPERM;
  if ((add & F_SEAL_WRITE) && !(n->seals & F_SEAL_WRITE)) {
    /* Linux refuses it while writable shared mappings exist; here any
     * shared mapping counts (EBUSY), read-only ones too. */
    if (n->maps)
      return -QK_EBUSY;
  }
  n->seals |= add;
  return 0;
}

/* statfs: the guest's memory is the limit. */
void qk_tmpfs_statfs(void *statfs120)
{
  int64_t *s = statfs120;
  memset(s, 0, 120);
  s[0] = 0x01021994; /* TMPFS_MAGIC */
  s[1] = 4096;
  s[2] = (int64_t)qk_page_total_count();
  s[3] = s[4] = (int64_t)qk_page_free_count();
  s[5] = 1 << 20;
  s[6] = 1 << 20;
  s[8] = 255;  /* f_namelen */
  s[9] = 4096; /* f_frsize */
}
