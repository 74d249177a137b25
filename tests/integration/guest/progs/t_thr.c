/* Threads in the guest: 8 pthreads over a mutex-protected counter and a
 * condition-variable queue (a checked result), thread-local storage,
 * join and detach, and a thread create/join figure with "bench". */
#define _GNU_SOURCE
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "t.h"

enum { NTHREADS = 8, ITERS = 20000, ITEMS = 4000 };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv_put = PTHREAD_COND_INITIALIZER, cv_get = PTHREAD_COND_INITIALIZER;
static long counter;
static int queue[16], qhead, qlen, produced_done;
static long consumed_sum, consumed_n;
static __thread int tls_value;

static void *adder(void *arg)
{
  tls_value = (int)(long)arg;
  for (int i = 0; i < ITERS; i++) {
    pthread_mutex_lock(&mu);
    counter++;
    pthread_mutex_unlock(&mu);
    if (i % 1000 == 0)
      sched_yield();
  }
  return (void *)(long)(tls_value * 10);
}

static void *producer(void *arg)
{
  (void)arg;
  for (int i = 1; i <= ITEMS; i++) {
    pthread_mutex_lock(&mu);
    while (qlen == 16)
      pthread_cond_wait(&cv_put, &mu);
    queue[(qhead + qlen++) % 16] = i;
    pthread_cond_signal(&cv_get);
    pthread_mutex_unlock(&mu);
  }
  pthread_mutex_lock(&mu);
  produced_done = 1;
  pthread_cond_broadcast(&cv_get);
  pthread_mutex_unlock(&mu);
  return NULL;
}

static void *consumer(void *arg)
{
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&mu);
    while (!qlen && !produced_done)
      pthread_cond_wait(&cv_get, &mu);
    if (!qlen && produced_done) {
      pthread_mutex_unlock(&mu);
      return NULL;
    }
    int v = queue[qhead];
    qhead = (qhead + 1) % 16;
    qlen--;
    consumed_sum += v;
    consumed_n++;
    pthread_cond_signal(&cv_put);
    pthread_mutex_unlock(&mu);
  }
}

static void *nothing(void *arg)
{
  return arg;
}

static double now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc > 1 && !strcmp(argv[1], "bench")) {
    int n = 200;
    double t0 = now_us();
    for (int i = 0; i < n; i++) {
      pthread_t t;
      pthread_create(&t, NULL, nothing, NULL);
      pthread_join(t, NULL);
    }
    printf("bench: thread create+join: %.0f us\n", (now_us() - t0) / n);
    return 0;
  }
  pthread_t th[NTHREADS];
  tls_value = 99;
  for (long i = 0; i < NTHREADS; i++)
    CHECK_EQ(pthread_create(&th[i], NULL, adder, (void *)(i + 1)), 0);
  long rsum = 0;
  for (int i = 0; i < NTHREADS; i++) {
    void *rv;
    CHECK_EQ(pthread_join(th[i], &rv), 0);
    rsum += (long)rv;
  }
  CHECK_EQ(counter, (long)NTHREADS * ITERS);
  CHECK_EQ(rsum, 360);
  CHECK_EQ(tls_value, 99);
  pthread_t p, c[4];
  CHECK_EQ(pthread_create(&p, NULL, producer, NULL), 0);
  for (int i = 0; i < 4; i++)
    CHECK_EQ(pthread_create(&c[i], NULL, consumer, NULL), 0);
  pthread_join(p, NULL);
  for (int i = 0; i < 4; i++)
    pthread_join(c[i], NULL);
  CHECK_EQ(consumed_n, ITEMS);
  CHECK_EQ(consumed_sum, (long)ITEMS * (ITEMS + 1) / 2);
  /* A detached thread that exits while main waits on a condition. */
  pthread_t d;
  CHECK_EQ(pthread_create(&d, NULL, nothing, NULL), 0);
  CHECK_EQ(pthread_detach(d), 0);
  usleep(1000);
  return t_done("t_thr");
}
