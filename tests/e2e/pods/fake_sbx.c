/* A stand-in for the sandbox client (quark/sbx_client.h) that runs no VM,
 * linked into quarkd-fakesbx only, so that quarkd's pod and container code
 * (state machine, roll-backs, logs, exec, stats, recovery) is tested end to
 * end before the real sandbox exists and without KVM.
 *
 * Behaviour, per pod (in quarkd's memory, shared by the connections to one
 * "control socket", a plain file in the run dir so that reconnecting after a
 * restart works while the file exists; containers are forgotten across
 * restarts, as if the VM had lost them):
 * - start writes "<argv joined>" to stdout and "started" to stderr in the
 *   CRI log format, plus a 20000-byte line as P records; argv "exit N"
 *   exits at once with N;
 * - a signal ends a running container with 128 + signo;
 * - exec: "sleep N" with a shorter timeout is -ETIMEDOUT, "exit N" gives N,
 *   anything else prints its words on stdout and "e" on stderr;
 * - stats are fixed non-zero numbers. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "quark/sbx_client.h"

struct fake_ctr {
  char id[65];
  char *log_path;
  char **argv;
  struct sbx_container_status st;
};

/* One per control socket, shared by every client connected to it (quarkd
 * opens a second connection for exec). */
struct fake_pod {
  struct fake_pod *next;
  char *socket;
  unsigned refs;
  pthread_mutex_t lock;
  struct fake_ctr *ctrs;
  size_t n;
};

static pthread_mutex_t pods_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fake_pod *pods;

struct sbx_client {
  struct fake_pod *pod;
};

void sbx_exec_result_clear(struct sbx_exec_result *r)
{
  free(r->out);
  free(r->err);
  r->out = r->err = NULL;
  r->out_len = r->err_len = 0;
}

static struct sbx_client *client_new(const char *sock)
{
  struct sbx_client *c = calloc(1, sizeof(*c));
  if (!c)
    return NULL;
  pthread_mutex_lock(&pods_lock);
  struct fake_pod *fp = pods;
  while (fp && strcmp(fp->socket, sock))
    fp = fp->next;
  if (!fp && (fp = calloc(1, sizeof(*fp)))) {
    if (!(fp->socket = strdup(sock))) {
      free(fp);
      fp = NULL;
    } else {
      pthread_mutex_init(&fp->lock, NULL);
      fp->next = pods;
      pods = fp;
    }
  }
  if (fp)
    fp->refs++;
  pthread_mutex_unlock(&pods_lock);
  if (!fp) {
    free(c);
    return NULL;
  }
  c->pod = fp;
  return c;
}

int sbx_client_create(const struct sbx_pod_spec *spec, struct sbx_client **out, q_error **err)
{
  if (access(spec->sandbox_binary, X_OK) < 0)
    return q_error_make(err, errno, "sandbox binary %s", spec->sandbox_binary);
  char *sock = NULL;
  if (asprintf(&sock, "%s/fake.sock", spec->run_dir) < 0)
    return q_error_make(err, ENOMEM, "socket");
  int r = q_write_file_atomic(sock, spec->pod_id, strlen(spec->pod_id), 0600, err);
  if (r == 0 && !(*out = client_new(sock)))
    r = q_error_make(err, ENOMEM, "client");
  free(sock);
  return r;
}

int sbx_client_connect(const char *control_socket, struct sbx_client **out, q_error **err)
{
  if (access(control_socket, F_OK) < 0)
    return q_error_make(err, ESRCH, "sandbox at %s is gone", control_socket);
  if (!(*out = client_new(control_socket)))
    return q_error_make(err, ENOMEM, "client");
  return 0;
}

const char *sbx_client_socket(const struct sbx_client *c)
{
  return c->pod->socket;
}

static void ctr_free(struct fake_ctr *f);

static void ctr_free(struct fake_ctr *f)
{
  free(f->log_path);
  for (size_t i = 0; f->argv && f->argv[i]; i++)
    free(f->argv[i]);
  free(f->argv);
}

void sbx_client_close(struct sbx_client *c)
{
  if (!c)
    return;
  struct fake_pod *fp = c->pod;
  free(c);
  pthread_mutex_lock(&pods_lock);
  bool last = --fp->refs == 0;
  if (last)
    for (struct fake_pod **pp = &pods; *pp; pp = &(*pp)->next)
      if (*pp == fp) {
        *pp = fp->next;
        break;
      }
  pthread_mutex_unlock(&pods_lock);
  if (!last)
    return;
  for (size_t i = 0; i < fp->n; i++)
    ctr_free(&fp->ctrs[i]);
  free(fp->ctrs);
  free(fp->socket);
  pthread_mutex_destroy(&fp->lock);
  free(fp);
}

int sbx_client_stop(struct sbx_client *c, int timeout_ms, q_error **err)
{
  pthread_mutex_lock(&c->pod->lock);
  for (size_t i = 0; i < c->pod->n; i++)
    if (c->pod->ctrs[i].st.state != SBX_PROC_EXITED) {
      c->pod->ctrs[i].st.state = SBX_PROC_EXITED;
      c->pod->ctrs[i].st.exit_code = 137;
      c->pod->ctrs[i].st.finished_at = q_now_ns();
    }
  pthread_mutex_unlock(&c->pod->lock);
  unlink(c->pod->socket);
  return 0;
}

static struct fake_ctr *find(struct sbx_client *c, const char *id)
{
  for (size_t i = 0; i < c->pod->n; i++)
    if (!strcmp(c->pod->ctrs[i].id, id))
      return &c->pod->ctrs[i];
  return NULL;
}

static int gone(struct sbx_client *c, q_error **err)
{
  if (access(c->pod->socket, F_OK) < 0)
    return q_error_make(err, ESRCH, "sandbox is gone");
  return 0;
}

int sbx_container_create(struct sbx_client *c, const struct sbx_container_spec *spec, q_error **err)
{
  int r = gone(c, err);
  if (r < 0)
    return r;
  struct stat sb;
  if (stat(spec->rootfs, &sb) < 0 || !S_ISDIR(sb.st_mode))
    return q_error_make(err, ENOENT, "rootfs %s", spec->rootfs);
  for (size_t i = 0; i < spec->n_mounts; i++)
    if (stat(spec->mounts[i].source, &sb) < 0)
      return q_error_make(err, errno, "mount source %s", spec->mounts[i].source);
  pthread_mutex_lock(&c->pod->lock);
  struct fake_ctr *nv = realloc(c->pod->ctrs, (c->pod->n + 1) * sizeof(*nv));
  if (!nv) {
    pthread_mutex_unlock(&c->pod->lock);
    return q_error_make(err, ENOMEM, "container");
  }
  c->pod->ctrs = nv;
  struct fake_ctr *f = &nv[c->pod->n++];
  memset(f, 0, sizeof(*f));
  snprintf(f->id, sizeof(f->id), "%s", spec->container_id);
  f->log_path = spec->log_path ? strdup(spec->log_path) : NULL;
  size_t n = 0;
  while (spec->argv[n])
    n++;
  f->argv = calloc(n + 1, sizeof(char *));
  for (size_t i = 0; f->argv && i < n; i++)
    f->argv[i] = strdup(spec->argv[i]);
  pthread_mutex_unlock(&c->pod->lock);
  return 0;
}

static void log_line(FILE *f, const char *stream, const char *tag, const char *msg)
{
  char ts[40];
  q_format_rfc3339nano(q_now_ns(), ts);
  fprintf(f, "%s %s %s %s\n", ts, stream, tag, msg);
}

int sbx_container_start(struct sbx_client *c, const char *id, q_error **err)
{
  int r = gone(c, err);
  if (r < 0)
    return r;
  pthread_mutex_lock(&c->pod->lock);
  struct fake_ctr *f = find(c, id);
  if (!f) {
    pthread_mutex_unlock(&c->pod->lock);
    return q_error_make(err, ENOENT, "container %s", id);
  }
  f->st.state = SBX_PROC_RUNNING;
  f->st.started_at = q_now_ns();
  char words[4096] = "";
  for (size_t i = 0; f->argv[i]; i++)
    snprintf(words + strlen(words), sizeof(words) - strlen(words), "%s%s", i ? " " : "",
             f->argv[i]);
  FILE *lf = f->log_path ? fopen(f->log_path, "ae") : NULL;
  if (lf) {
    log_line(lf, "stdout", "F", words);
    log_line(lf, "stderr", "F", "started");
    static char chunk[10001];
    memset(chunk, 'y', 10000);
    log_line(lf, "stdout", "P", chunk);
    log_line(lf, "stdout", "F", chunk);
    fclose(lf);
  }
  if (f->argv[0] && !strcmp(f->argv[0], "exit")) {
    f->st.state = SBX_PROC_EXITED;
    f->st.exit_code = f->argv[1] ? atoi(f->argv[1]) : 0;
    f->st.finished_at = q_now_ns();
  }
  pthread_mutex_unlock(&c->pod->lock);
  return 0;
}

int sbx_container_signal(struct sbx_client *c, const char *id, int signo, q_error **err)
{
  int r = gone(c, err);
  if (r < 0)
    return r;
  pthread_mutex_lock(&c->pod->lock);
  struct fake_ctr *f = find(c, id);
  if (f && f->st.state == SBX_PROC_RUNNING) {
    f->st.state = SBX_PROC_EXITED;
    f->st.exit_code = 128 + signo;
    f->st.finished_at = q_now_ns();
  }
  pthread_mutex_unlock(&c->pod->lock);
  return f ? 0 : q_error_make(err, ENOENT, "container %s", id);
}

int sbx_container_status(struct sbx_client *c, const char *id, struct sbx_container_status *out,
                         q_error **err)
{
  int r = gone(c, err);
  if (r < 0)
    return r;
  pthread_mutex_lock(&c->pod->lock);
  struct fake_ctr *f = find(c, id);
  if (f)
    *out = f->st;
  pthread_mutex_unlock(&c->pod->lock);
  return f ? 0 : q_error_make(err, ENOENT, "container %s", id);
}

int sbx_container_wait(struct sbx_client *c, const char *id, int timeout_ms,
                       struct sbx_container_status *out, q_error **err)
{
  return sbx_container_status(c, id, out, err);
}

int sbx_container_delete(struct sbx_client *c, const char *id, q_error **err)
{
  pthread_mutex_lock(&c->pod->lock);
  struct fake_ctr *f = find(c, id);
  if (f) {
    ctr_free(f);
    *f = c->pod->ctrs[--c->pod->n];
  }
  pthread_mutex_unlock(&c->pod->lock);
  return f ? 0 : q_error_make(err, ENOENT, "container %s", id);
}

int sbx_container_exec(struct sbx_client *c, const char *id, const char *const *argv,
                       int timeout_ms, size_t out_cap, struct sbx_exec_result *out, q_error **err)
{
  struct sbx_container_status st;
  int r = sbx_container_status(c, id, &st, err);
  if (r < 0)
    return r;
  if (!strcmp(argv[0], "sleep") && argv[1] && timeout_ms >= 0 &&
      atoi(argv[1]) * 1000 > timeout_ms) {
    usleep((useconds_t)timeout_ms * 1000);
    return q_error_make(err, ETIMEDOUT, "exec timed out");
  }
  memset(out, 0, sizeof(*out));
  if (!strcmp(argv[0], "exit")) {
    out->exit_code = argv[1] ? atoi(argv[1]) : 0;
  }
  char words[4096] = "";
  for (size_t i = 0; argv[i]; i++)
    snprintf(words + strlen(words), sizeof(words) - strlen(words), "%s%s", i ? " " : "", argv[i]);
  if (asprintf(&out->out, "%s\n", words) < 0 || !(out->err = strdup("e"))) {
    sbx_exec_result_clear(out);
    return q_error_make(err, ENOMEM, "exec");
  }
  out->out_len = strlen(out->out);
  out->err_len = 1;
  return 0;
}

static int stats(struct sbx_stats *out)
{
  out->timestamp = q_now_ns();
  out->cpu_usage_ns = 1234567;
  out->memory_working_set_bytes = 1 << 20;
  out->memory_usage_bytes = 2 << 20;
  out->memory_rss_bytes = 1 << 19;
  return 0;
}

int sbx_container_stats(struct sbx_client *c, const char *id, struct sbx_stats *out, q_error **err)
{
  struct sbx_container_status st;
  int r = sbx_container_status(c, id, &st, err);
  return r < 0 ? r : stats(out);
}

int sbx_pod_stats(struct sbx_client *c, struct sbx_stats *out, q_error **err)
{
  int r = gone(c, err);
  return r < 0 ? r : stats(out);
}
