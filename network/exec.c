/* Running one CNI plugin: environment, config on stdin, stdout/stderr
 * captured, a deadline, and the plugin's JSON error turned into our error.
 *
 * posix_spawn (vfork-like in glibc) keeps this safe in a multithreaded
 * daemon: no code of ours runs in the child between fork and exec. */
#include "net_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static char *env_entry(const char *fmt, ...) Q_PRINTF(1, 2);
static char *env_entry(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0)
    s = NULL;
  va_end(ap);
  return s;
}

/* The caller's environment minus what we set, plus the CNI variables. Plugins
 * such as portmap run iptables through PATH, so PATH is always present. */
static char **build_env(const net_cni *c, const char *command, const net_runtime *rt)
{
  static const char *const ours[] = {
      "CNI_COMMAND=", "CNI_CONTAINERID=", "CNI_NETNS=", "CNI_IFNAME=", "CNI_ARGS=", "CNI_PATH="};
  size_t n = 0;
  for (char **e = environ; e && *e; e++)
    n++;
  char **env = calloc(n + 8, sizeof(char *));
  if (env == NULL)
    return NULL;
  size_t k = 0;
  bool have_path = false;
  /* Declared before the first goto: a jump may not enter the scope of a
   * cleanup variable. */
  q_cleanup_free char *cni_path = NULL;
  q_cleanup_free char *args = NULL;
  for (char **e = environ; e && *e; e++) {
    bool skip = false;
    for (size_t i = 0; i < Q_ARRAY_SIZE(ours); i++)
      if (strncmp(*e, ours[i], strlen(ours[i])) == 0)
        skip = true;
    if (skip)
      continue;
    if (strncmp(*e, "PATH=", 5) == 0)
      have_path = true;
    if ((env[k++] = strdup(*e)) == NULL)
      goto fail;
  }
  size_t plen = 1;
  for (size_t i = 0; i < c->n_plugin_dirs; i++)
    plen += strlen(c->plugin_dirs[i]) + 1;
  cni_path = malloc(plen);
  args = rt ? net_cni_args_string(rt) : NULL;
  if (cni_path == NULL)
    goto fail;
  char *p = cni_path;
  *p = '\0';
  for (size_t i = 0; i < c->n_plugin_dirs; i++)
    p += sprintf(p, "%s%s", i ? ":" : "", c->plugin_dirs[i]);
  if ((env[k++] = env_entry("CNI_COMMAND=%s", command)) == NULL ||
      (env[k++] = env_entry("CNI_PATH=%s", cni_path)) == NULL)
    goto fail;
  if (rt != NULL) {
    if ((env[k++] = env_entry("CNI_CONTAINERID=%s", rt->container_id ? rt->container_id : "")) ==
            NULL ||
        (env[k++] = env_entry("CNI_NETNS=%s", rt->netns ? rt->netns : "")) == NULL ||
        (env[k++] = env_entry("CNI_IFNAME=%s", rt->ifname ? rt->ifname : "")) == NULL ||
        (env[k++] = env_entry("CNI_ARGS=%s", args ? args : "")) == NULL)
      goto fail;
  }
  if (!have_path && (env[k++] = strdup("PATH=" DEFAULT_PATH)) == NULL)
    goto fail;
  return env;
fail:
  for (size_t i = 0; i < n + 8; i++)
    free(env[i]);
  free(env);
  return NULL;
}

static void free_env(char **env)
{
  for (char **e = env; e && *e; e++)
    free(*e);
  free(env);
}

struct buf {
  char *data;
  size_t len, cap;
};

/* One read into b: 1 data (or EINTR), 0 EOF, 2 nothing yet (EAGAIN), or a
 * negative errno. */
static int buf_read(struct buf *b, int fd)
{
  if (b->cap - b->len < 4096) {
    size_t cap = b->cap ? b->cap * 2 : 8192;
    if (cap > NET_PLUGIN_OUTPUT_MAX + 4096)
      return -EFBIG;
    char *d = realloc(b->data, cap);
    if (d == NULL)
      return -ENOMEM;
    b->data = d;
    b->cap = cap;
  }
  ssize_t r = read(fd, b->data + b->len, b->cap - b->len - 1);
  if (r < 0)
    return errno == EAGAIN ? 2 : errno == EINTR ? 1 : -errno;
  b->len += (size_t)r;
  b->data[b->len] = '\0';
  return r == 0 ? 0 : 1;
}

/* The message of a failed plugin: its JSON error object when stdout holds
 * one (spec: {"cniVersion", "code", "msg", "details"}), else its stderr. */
static int plugin_error(q_error **err, int status, const struct buf *out, const struct buf *errb)
{
  json_t *j = out->len ? json_loadb(out->data, out->len, 0, NULL) : NULL;
  const char *msg = j ? json_string_value(json_object_get(j, "msg")) : NULL;
  const char *details = j ? json_string_value(json_object_get(j, "details")) : NULL;
  int r;
  if (msg != NULL) {
    r = q_error_make(err, 0, "%s%s%s", msg, details && *details ? ": " : "",
                     details ? details : "");
  } else {
    /* Trim the trailing newline of stderr so the message stays one line. */
    size_t n = errb->len;
    while (n > 0 && (errb->data[n - 1] == '\n' || errb->data[n - 1] == '\r'))
      n--;
    const char *text = n ? errb->data : (out->len ? out->data : "no output");
    if (n == 0)
      n = out->len ? out->len : strlen(text);
    if (WIFSIGNALED(status))
      r = q_error_make(err, 0, "killed by signal %d: %.*s", WTERMSIG(status), (int)n, text);
    else
      r = q_error_make(err, 0, "exit status %d: %.*s", WEXITSTATUS(status), (int)n, text);
  }
  json_decref(j);
  return r;
}

/* Writes to the plugin's stdin without SIGPIPE: a plugin that exits before
 * reading its config must not kill the daemon. SIGPIPE for a pipe write is
 * thread-directed, so blocking it on this thread and consuming a pending
 * one is enough, whatever the process's disposition. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t len)
{
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  sigset_t pending;
  sigpending(&pending);
  bool was_pending = sigismember(&pending, SIGPIPE);
  ssize_t w = write(fd, buf, len);
  int e = errno;
  if (w < 0 && e == EPIPE && !was_pending) {
    struct timespec zero = {0, 0};
    sigtimedwait(&pipe_set, NULL, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = e;
  return w;
}

static int64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int net_exec_plugin(const net_cni *c, const char *path, const char *type, const char *command,
                    const net_runtime *rt, const char *config, size_t config_len, char **out,
                    q_error **err)
{
  int in[2] = {-1, -1}, po[2] = {-1, -1}, pe[2] = {-1, -1};
  struct buf bo = {0}, be = {0};
  char **env = NULL;
  pid_t pid = -1;
  int r = 0, status = 0;
  bool file_actions_init = false, attr_init = false;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;

  if (pipe2(in, O_CLOEXEC) < 0 || pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
    r = q_error_make(err, errno, "pipes for plugin %s", type);
    goto out;
  }
  env = build_env(c, command, rt);
  if (env == NULL) {
    r = q_error_make(err, ENOMEM, "environment for plugin %s", type);
    goto out;
  }
  if ((r = -posix_spawn_file_actions_init(&fa)) < 0)
    goto spawn_fail;
  file_actions_init = true;
  if ((r = -posix_spawnattr_init(&attr)) < 0)
    goto spawn_fail;
  attr_init = true;
  /* dup2 clears O_CLOEXEC on 0/1/2; every other fd of ours is O_CLOEXEC. */
  if ((r = -posix_spawn_file_actions_adddup2(&fa, in[0], 0)) < 0 ||
      (r = -posix_spawn_file_actions_adddup2(&fa, po[1], 1)) < 0 ||
      (r = -posix_spawn_file_actions_adddup2(&fa, pe[1], 2)) < 0)
    goto spawn_fail;
  /* Threads of the daemon may block signals or catch them: the plugin starts
   * with an empty mask and default dispositions. */
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  /* Its own process group, so a timeout kills what it started too
   * (iptables, ip, an IPAM plugin it delegated to). */
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  char *argv[] = {(char *)type, NULL};
  r = -posix_spawn(&pid, path, &fa, &attr, argv, env);
  if (r < 0) {
    pid = -1;
    goto spawn_fail;
  }
  close(in[0]);
  close(po[1]);
  close(pe[1]);
  in[0] = po[1] = pe[1] = -1;
  fcntl(in[1], F_SETFL, O_NONBLOCK);

  size_t written = 0;
  if (config_len == 0) {
    close(in[1]);
    in[1] = -1;
  }
  int64_t deadline = now_ms() + c->plugin_timeout_ms;
  bool out_open = true, err_open = true, reaped = false;
  while (out_open || err_open) {
    struct pollfd fds[3];
    int nf = 0, io = -1, iout = -1, ierr = -1;
    if (in[1] >= 0) {
      io = nf;
      fds[nf++] = (struct pollfd){.fd = in[1], .events = POLLOUT};
    }
    if (out_open) {
      iout = nf;
      fds[nf++] = (struct pollfd){.fd = po[0], .events = POLLIN};
    }
    if (err_open) {
      ierr = nf;
      fds[nf++] = (struct pollfd){.fd = pe[0], .events = POLLIN};
    }
    int64_t left = deadline - now_ms();
    if (left <= 0) {
      kill(-pid, SIGKILL);
      waitpid(pid, NULL, 0);
      pid = -1;
      r = q_error_make(err, 0, "timed out after %d ms", c->plugin_timeout_ms);
      r = -ETIMEDOUT;
      goto out;
    }
    int pr = poll(fds, (nfds_t)nf, (int)(left > 1000 ? 1000 : left));
    if (pr < 0) {
      if (errno == EINTR)
        continue;
      r = q_error_make(err, errno, "poll plugin %s", type);
      goto kill_out;
    }
    /* A plugin that exited while something it started still holds its
     * stdout open (a daemon it spawned) is done: stop waiting for EOF. */
    if (pr == 0 && waitpid(pid, &status, WNOHANG) == pid) {
      reaped = true;
      /* Keep what it wrote before it exited. */
      for (int k = 0; k < 2; k++) {
        int fd = k ? pe[0] : po[0];
        struct buf *b = k ? &be : &bo;
        if (!(k ? err_open : out_open))
          continue;
        fcntl(fd, F_SETFL, O_NONBLOCK);
        while (buf_read(b, fd) == 1)
          ;
      }
      break;
    }
    if (io >= 0 && fds[io].revents) {
      ssize_t w = write_nosigpipe(in[1], config + written, config_len - written);
      if (w > 0)
        written += (size_t)w;
      /* A plugin that exits without reading its stdin is not our error. */
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == config_len) {
        close(in[1]);
        in[1] = -1;
      }
    }
    if (iout >= 0 && fds[iout].revents) {
      int br = buf_read(&bo, po[0]);
      if (br < 0) {
        r = q_error_make(err, -br, "output of plugin %s", type);
        goto kill_out;
      }
      out_open = br > 0;
    }
    if (ierr >= 0 && fds[ierr].revents) {
      int br = buf_read(&be, pe[0]);
      if (br < 0) {
        r = q_error_make(err, -br, "stderr of plugin %s", type);
        goto kill_out;
      }
      err_open = br > 0;
    }
  }
  /* Both pipes closed: the plugin (and whatever it spawned) is done with
   * them; the exit status follows at once. */
  while (!reaped && waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      r = q_error_make(err, errno, "wait for plugin %s", type);
      pid = -1;
      goto out;
    }
  }
  pid = -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    r = plugin_error(err, status, &bo, &be);
    goto out;
  }
  if (out != NULL) {
    *out = bo.data ? bo.data : strdup("");
    bo.data = NULL;
    if (*out == NULL)
      r = q_error_make(err, ENOMEM, "plugin output");
  }
  goto out;

spawn_fail:
  r = q_error_make(err, -r, "exec plugin %s", path);
  goto out;
kill_out:
  kill(-pid, SIGKILL);
  waitpid(pid, NULL, 0);
  pid = -1;
out:
  if (file_actions_init)
    posix_spawn_file_actions_destroy(&fa);
  if (attr_init)
    posix_spawnattr_destroy(&attr);
  for (int i = 0; i < 2; i++) {
    if (in[i] >= 0)
      close(in[i]);
    if (po[i] >= 0)
      close(po[i]);
    if (pe[i] >= 0)
      close(pe[i]);
  }
  free_env(env);
  free(bo.data);
  free(be.data);
  return r;
}
