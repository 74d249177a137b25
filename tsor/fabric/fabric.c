/* Fabric helpers shared by the backends: lookup by name and the completion
 * queue that the local and tcp backends fill. */
#include "fabric/fabric.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

const struct tsor_fabric_ops *tsor_fabric_by_name(const char *name)
{
  if (name == NULL) return NULL;
  if (strcmp(name, "local") == 0) return &tsor_fabric_local;
  if (strcmp(name, "tcp") == 0) return &tsor_fabric_tcp;
  if (strcmp(name, "verbs") == 0) return &tsor_fabric_verbs;
  return NULL;
}

int tsor_cq_init(struct tsor_cq *q)
{
  memset(q, 0, sizeof(*q));
  q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (q->efd < 0) return -errno;
  pthread_mutex_init(&q->lock, NULL);
  return 0;
}

void tsor_cq_destroy(struct tsor_cq *q)
{
  if (q->efd >= 0) close(q->efd);
  q->efd = -1;
  free(q->v);
  q->v = NULL;
  pthread_mutex_destroy(&q->lock);
}

int tsor_cq_push(struct tsor_cq *q, const struct tsor_fabric_cqe *e, bool signal)
{
  pthread_mutex_lock(&q->lock);
  if (q->count == q->cap) {
    /* Grows instead of dropping: completions are bounded by the posted
     * receives and outstanding writes, which the protocol limits. */
    uint32_t ncap = q->cap ? q->cap * 2 : 256;
    struct tsor_fabric_cqe *nv = malloc(sizeof(*nv) * ncap);
    if (nv == NULL) {
      pthread_mutex_unlock(&q->lock);
      return -ENOMEM;
    }
    for (uint32_t i = 0; i < q->count; i++) nv[i] = q->v[(q->head + i) % q->cap];
    free(q->v);
    q->v = nv;
    q->cap = ncap;
    q->head = 0;
  }
  bool was_empty = q->count == 0;
  q->v[(q->head + q->count) % q->cap] = *e;
  __atomic_store_n(&q->count, q->count + 1, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&q->lock);
  if (signal && was_empty) {
    uint64_t one = 1;
    ssize_t r = write(q->efd, &one, sizeof(one));
    (void)r; /* EAGAIN means the counter is already non-zero: still readable */
  }
  return 0;
}

int tsor_cq_pop(struct tsor_cq *q, struct tsor_fabric_cqe *out, int max)
{
  if (__atomic_load_n(&q->count, __ATOMIC_ACQUIRE) == 0) return 0;
  pthread_mutex_lock(&q->lock);
  int n = 0;
  while (n < max && q->count > 0) {
    out[n++] = q->v[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
  }
  pthread_mutex_unlock(&q->lock);
  return n;
}

int tsor_cq_arm(struct tsor_cq *q)
{
  uint64_t v;
  ssize_t r = read(q->efd, &v, sizeof(v));
  (void)r; /* EAGAIN: nothing was signalled */
  /* A push between the caller's last poll and this read left its signal in
   * the counter we just cleared: report it instead of sleeping past it. */
  return __atomic_load_n(&q->count, __ATOMIC_ACQUIRE) != 0;
}

void tsor_cq_drop_conn(struct tsor_cq *q, const struct tsor_fconn *c)
{
  pthread_mutex_lock(&q->lock);
  uint32_t kept = 0;
  for (uint32_t i = 0; i < q->count; i++) {
    struct tsor_fabric_cqe e = q->v[(q->head + i) % q->cap];
    if (e.conn != c) q->v[(q->head + kept++) % q->cap] = e;
  }
  __atomic_store_n(&q->count, kept, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&q->lock);
}
