/* Error objects: a status plus a message that gathers context as it climbs. */
#include "quark/common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static char *vformat(const char *fmt, va_list ap)
{
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0)
    return NULL;
  return s;
}

int q_error_make(q_error **err, int status, const char *fmt, ...)
{
  int ret = status > 0 ? -status : -EIO;
  if (err == NULL)
    return ret;
  va_list ap;
  va_start(ap, fmt);
  char *what = vformat(fmt, ap);
  va_end(ap);
  q_error *e = calloc(1, sizeof(*e));
  if (e == NULL) {
    free(what);
    return ret;
  }
  e->status = status;
  if (status > 0 && what != NULL) {
    if (asprintf(&e->msg, "%s: %s", what, strerror(status)) < 0)
      e->msg = NULL;
    free(what);
  } else {
    e->msg = what;
  }
  q_error_free(err);
  *err = e;
  return ret;
}

int q_error_wrap(q_error **err, const char *fmt, ...)
{
  if (err == NULL || *err == NULL)
    return -EIO;
  q_error *e = *err;
  int ret = e->status > 0 ? -e->status : -EIO;
  va_list ap;
  va_start(ap, fmt);
  char *what = vformat(fmt, ap);
  va_end(ap);
  if (what == NULL)
    return ret;
  char *joined = NULL;
  if (asprintf(&joined, "%s: %s", what, e->msg ? e->msg : "unknown error") >= 0) {
    free(e->msg);
    e->msg = joined;
  }
  free(what);
  return ret;
}

void q_error_free(q_error **err)
{
  if (err == NULL || *err == NULL)
    return;
  free((*err)->msg);
  free(*err);
  *err = NULL;
}

const char *q_error_msg(const q_error *err)
{
  if (err == NULL || err->msg == NULL)
    return "unknown error";
  return err->msg;
}

void q_freep(void *p)
{
  void **pp = p;
  free(*pp);
  *pp = NULL;
}

void q_closep(int *fd)
{
  if (*fd >= 0) {
    int saved = errno;
    close(*fd);
    errno = saved;
  }
  *fd = -1;
}
