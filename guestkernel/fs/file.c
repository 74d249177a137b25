/* Open file objects and their reference counts. */
#include <qk/fs.h>
#include <qk/kernel.h>
#include <qk/mm.h>

struct qk_file *qk_file_new(const struct qk_file_ops *ops, uint32_t flags, const char *path)
{
  struct qk_file *f = qk_kmalloc(sizeof(*f));
  if (!f)
    return NULL;
  f->ops = ops;
  f->refs = 1;
  f->flags = flags;
  f->hfd = -1;
  f->kind = 0;
  f->priv = NULL;
  f->path = NULL;
  f->ep_items = NULL;
  f->io_seq = 0;
  if (path) {
    size_t n = strlen(path) + 1;
    f->path = qk_kmalloc(n);
    if (!f->path) {
      qk_kfree(f);
      return NULL;
    }
    memcpy(f->path, path, n);
  }
  return f;
}

void (*qk_epoll_file_gone)(struct qk_file *f);

void (*qk_unix_file_kept)(struct qk_file *f);

void qk_fput(struct qk_file *f)
{
  if (--f->refs) {
    if (qk_unix_file_kept)
      qk_unix_file_kept(f);
    return;
  }
  if (f->ep_items && qk_epoll_file_gone)
    qk_epoll_file_gone(f);
  if (f->ops->release)
    f->ops->release(f);
  qk_kfree(f->path);
  qk_kfree(f);
}
