/* Descriptor tables: an array of file pointers plus close-on-exec bits,
 * grown by doubling up to the RLIMIT_NOFILE limit. Pure C (unit-tested on
 * the host). */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/mm.h>

#define INITIAL 64

struct qk_fdtable *qk_fdtable_new(int limit)
{
  struct qk_fdtable *t = qk_kzalloc(sizeof(*t));
  if (!t)
    return NULL;
  t->files = qk_kzalloc(INITIAL * sizeof(*t->files));
  t->cloexec = qk_kzalloc(INITIAL);
  if (!t->files || !t->cloexec) {
    qk_kfree(t->files);
    qk_kfree(t->cloexec);
    qk_kfree(t);
    return NULL;
  }
  t->size = INITIAL;
  t->limit = limit > QK_FD_MAX ? QK_FD_MAX : limit;
  t->refs = 1;
  return t;
}

void qk_fdtable_free(struct qk_fdtable *t)
{
  for (int i = 0; i < t->size; i++)
    if (t->files[i])
      qk_fput(t->files[i]);
  qk_kfree(t->files);
  qk_kfree(t->cloexec);
  qk_kfree(t);
}

static int grow(struct qk_fdtable *t, int need)
{
  if (need < t->size)
    return 0;
  int n = t->size;
  while (n <= need)
    n *= 2;
  if (n > QK_FD_MAX)
    n = QK_FD_MAX;
  struct qk_file **f = qk_kzalloc((size_t)n * sizeof(*f));
  uint8_t *c = qk_kzalloc((size_t)n);
  if (!f || !c) {
    qk_kfree(f);
    qk_kfree(c);
    return -QK_ENOMEM;
  }
  memcpy(f, t->files, (size_t)t->size * sizeof(*f));
  memcpy(c, t->cloexec, (size_t)t->size);
  qk_kfree(t->files);
  qk_kfree(t->cloexec);
  t->files = f;
  t->cloexec = c;
  t->size = n;
  return 0;
}

int qk_fd_install(struct qk_fdtable *t, struct qk_file *f, int min, bool cloexec)
{
  if (min < 0)
    return -QK_EINVAL;
  if (min >= t->limit)
    return -QK_EMFILE; /* e.g. RLIMIT_NOFILE lowered to 0 */
  int fd = min > t->lowest_free ? min : t->lowest_free;
  while (fd < t->size && t->files[fd])
    fd++;
  if (fd >= t->limit)
    return -QK_EMFILE;
  if (grow(t, fd))
    return -QK_ENOMEM;
  t->files[fd] = f;
  t->cloexec[fd] = cloexec;
  if (min <= t->lowest_free)
    t->lowest_free = fd + 1;
  return fd;
}

int qk_fd_install_at(struct qk_fdtable *t, struct qk_file *f, int fd, bool cloexec)
{
  if (fd < 0 || fd >= t->limit)
    return -QK_EBADF;
  if (grow(t, fd))
    return -QK_ENOMEM;
  struct qk_file *old = t->files[fd];
  t->files[fd] = f;
  t->cloexec[fd] = cloexec;
  if (old)
    qk_fput(old);
  return fd;
}

struct qk_file *qk_fget_in(struct qk_fdtable *t, int fd)
{
  if ((unsigned)fd >= (unsigned)t->size || !t->files[fd])
    return NULL;
  t->files[fd]->io_seq++; /* epoll: I/O may have consumed an edge (fs/epoll.c) */
  return qk_file_ref(t->files[fd]);
}

int qk_fd_close(struct qk_fdtable *t, int fd)
{
  if ((unsigned)fd >= (unsigned)t->size || !t->files[fd])
    return -QK_EBADF;
  struct qk_file *f = t->files[fd];
  t->files[fd] = NULL;
  t->cloexec[fd] = 0;
  if (fd < t->lowest_free)
    t->lowest_free = fd;
  qk_fput(f);
  return 0;
}

int qk_fd_get_cloexec(struct qk_fdtable *t, int fd)
{
  if ((unsigned)fd >= (unsigned)t->size || !t->files[fd])
    return -QK_EBADF;
  return t->cloexec[fd];
}

int qk_fd_set_cloexec(struct qk_fdtable *t, int fd, bool on)
{
  if ((unsigned)fd >= (unsigned)t->size || !t->files[fd])
    return -QK_EBADF;
  t->cloexec[fd] = on;
  return 0;
}

struct qk_fdtable *qk_fdtable_dup(struct qk_fdtable *src)
{
  struct qk_fdtable *t = qk_fdtable_new(src->limit);
  if (!t)
    return NULL;
  if (grow(t, src->size - 1)) {
    qk_fdtable_free(t);
    return NULL;
  }
  for (int i = 0; i < src->size; i++) {
    if (src->files[i])
      t->files[i] = qk_file_ref(src->files[i]);
    t->cloexec[i] = src->cloexec[i];
  }
  t->lowest_free = src->lowest_free;
  return t;
}

void qk_fdtable_close_on_exec(struct qk_fdtable *t)
{
  for (int i = 0; i < t->size; i++)
    if (t->files[i] && t->cloexec[i])
      qk_fd_close(t, i);
}
