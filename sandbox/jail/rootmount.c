/* A container's root filesystem with its bind mounts, OCI read-only and
 * masked paths (see rootmount.h). Moved here from sandbox/pod/pod_ctr.c so
 * that the pod daemon's client (quarkd) builds roots outside the jailed
 * daemon and passes the result as fds. */
#include "rootmount.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

int sbx_openat2_in_root(int root, const char *path, int flags, mode_t mode)
{
  struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC,
                         .mode = (flags & O_CREAT) ? mode : 0,
                         .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  int fd = (int)syscall(SYS_openat2, root, path, &how, sizeof how);
  return fd < 0 ? -errno : fd;
}

/* ---- root filesystem and bind mounts ---- */

/* Creates the mount point dst inside root (directories on the way, then a
 * directory or an empty file like the source). Child process only. */
static int make_mountpoint(int root, const char *dst, bool dir)
{
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s", dst) >= (int)sizeof path)
    return -ENAMETOOLONG;
  for (char *s = path + 1;; s++) {
    if (*s != '/' && *s)
      continue;
    char keep = *s;
    *s = 0;
    bool last = !keep || !s[1];
    int fd = sbx_openat2_in_root(root, path, O_PATH, 0);
    if (fd == -ENOENT) {
      char *slash = strrchr(path, '/');
      *slash = 0;
      int parent = sbx_openat2_in_root(root, path[0] ? path : "/", O_PATH | O_DIRECTORY, 0);
      *slash = '/';
      if (parent < 0)
        return parent;
      int r = 0;
      if (!last || dir) {
        r = mkdirat(parent, slash + 1, 0755) < 0 && errno != EEXIST ? -errno : 0;
      } else {
        int f = openat(parent, slash + 1, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
        r = f < 0 ? -errno : 0;
        if (f >= 0)
          close(f);
      }
      close(parent);
      if (r < 0)
        return r;
    } else if (fd < 0) {
      return fd;
    } else {
      close(fd);
    }
    if (last)
      return 0;
    *s = keep;
  }
}

static int bind_one(int root, const char *src, const char *dst, bool ro)
{
  struct stat st;
  if (stat(src, &st) < 0)
    return -errno;
  int r = make_mountpoint(root, dst, S_ISDIR(st.st_mode));
  if (r < 0)
    return r;
  char proc[64];
  int t = sbx_openat2_in_root(root, dst, O_PATH, 0);
  if (t < 0)
    return t;
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", t);
  r = mount(src, proc, NULL, MS_BIND | MS_REC, NULL) < 0 ? -errno : 0;
  close(t);
  if (r < 0 || !ro)
    return r;
  /* The remount must name the new mount: resolve the path again. */
  if ((t = sbx_openat2_in_root(root, dst, O_PATH, 0)) < 0)
    return t;
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", t);
  r = mount(NULL, proc, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0 ? -errno : 0;
  close(t);
  return r;
}

/* Paths the guest kernel serves itself (/proc, /sys, /dev): masked and
 * read-only paths there are the guest's (its /proc and /sys are read-only
 * and have none of the OCI default masked entries). */
static bool guest_path(const char *p)
{
  static const char *const pre[] = {"/proc", "/sys", "/dev"};
  for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++) {
    size_t n = strlen(pre[i]);
    if (!strncmp(p, pre[i], n) && (p[n] == 0 || p[n] == '/'))
      return true;
  }
  return false;
}

/* OCI read-only path: bound on itself, then remounted read-only (the host
 * kernel answers EROFS). A path that does not exist is skipped. */
static int ro_one(int root, const char *dst)
{
  char proc[64];
  int t = sbx_openat2_in_root(root, dst, O_PATH, 0);
  if (t == -ENOENT)
    return 0;
  if (t < 0)
    return t;
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", t);
  int r = mount(proc, proc, NULL, MS_BIND | MS_REC, NULL) < 0 ? -errno : 0;
  close(t);
  if (r < 0)
    return r;
  if ((t = sbx_openat2_in_root(root, dst, O_PATH, 0)) < 0) /* the new mount */
    return t;
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", t);
  r = mount(NULL, proc, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0 ? -errno : 0;
  close(t);
  return r;
}

/* OCI masked path: a file gets a bind of an empty file, a directory of an
 * empty directory, both read-only (runc uses /dev/null and a tmpfs: the
 * jail's seccomp allows no new filesystem, and the host refuses to open a
 * device node for the guest). The empty file is made in the root and
 * unlinked once bound (the binds keep it); the empty directory
 * ".quark-masked" is made inside the first masked directory, which the
 * bind then covers: nothing shows in the container. A path that does not
 * exist is skipped. Child process only. */
static int mask_one(int root, const char *dst, int empty_file, int *empty_dir)
{
  int t = sbx_openat2_in_root(root, dst, O_PATH | O_NOFOLLOW, 0);
  if (t == -ENOENT)
    return 0;
  if (t < 0)
    return t;
  struct stat st;
  char proc[64], src[64];
  int r = fstat(t, &st) < 0 ? -errno : 0;
  if (!r && S_ISDIR(st.st_mode) && *empty_dir < 0) {
    if (mkdirat(t, ".quark-masked", 0555) < 0 && errno != EEXIST)
      r = -errno;
    else {
      char sub[PATH_MAX];
      snprintf(sub, sizeof sub, "%s/.quark-masked", dst);
      *empty_dir = sbx_openat2_in_root(root, sub, O_PATH | O_DIRECTORY, 0);
      r = *empty_dir < 0 ? *empty_dir : 0;
    }
  }
  if (r || S_ISLNK(st.st_mode)) {
    close(t);
    return r;
  }
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", t);
  snprintf(src, sizeof src, "/proc/self/fd/%d", S_ISDIR(st.st_mode) ? *empty_dir : empty_file);
  r = mount(src, proc, NULL, MS_BIND | MS_REC, NULL) < 0 ? -errno : 0;
  close(t);
  if (r < 0)
    return r;
  if ((t = sbx_openat2_in_root(root, dst, O_PATH | O_NOFOLLOW, 0)) < 0) /* the new mount */
    return t;
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", t);
  r = mount(NULL, proc, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0 ? -errno : 0;
  close(t);
  return r;
}

/* The empty file of mask_one, made in the root under name (unlinked by
 * the caller after the binds). Child process only. */
static int mask_file(int root, const char *name)
{
  /* the flags make_mountpoint uses (the jail's seccomp allows those) */
  int f = openat(root, name, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0444);
  if (f < 0)
    return -errno;
  struct stat st;
  if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size != 0) { /* the image's own */
    close(f);
    return -EEXIST;
  }
  return f;
}

static void send_fds(int sock, int status, const int *fds, int n)
{
  union {
    char b[CMSG_SPACE(2 * sizeof(int))];
    struct cmsghdr align;
  } cb;
  struct iovec iov = {&status, sizeof status};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  if (n > 0) {
    memset(&cb, 0, sizeof cb);
    mh.msg_control = cb.b;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
  }
  if (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
    _exit(1);
}

struct root_job {
  const char *rootfs;
  json_t *mounts, *masked, *ropaths;
  bool ro;
  int sock;
};

/* The helper child: mounts in a private mount namespace and sends back the
 * root and the namespace fds (or a status). Only system calls, its own
 * stack and reads of the job's JSON: it may share the caller's memory
 * (sbx_vfork_run). */
static int root_child(void *arg)
{
  const struct root_job *j = arg;
  const char *rootfs = j->rootfs;
  bool ro = j->ro;
  int sock = j->sock, st = 0;
  size_t i;
  json_t *m;
  if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
    st = -errno;
    send_fds(sock, st, NULL, 0);
    return 1;
  }
  /* readOnlyRootFilesystem: the root becomes a mount of its own (bind on
   * itself) made read-only after the bind mounts went in: the host kernel
   * answers EROFS beneath it, its writable bind mounts stay writable. */
  if (ro && mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) {
    send_fds(sock, -errno, NULL, 0);
    return 1;
  }
  int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) {
    send_fds(sock, -errno, NULL, 0);
    return 1;
  }
  json_array_foreach(j->mounts, i, m)
  {
    st = bind_one(root, json_string_value(json_object_get(m, "src")),
                  json_string_value(json_object_get(m, "dst")),
                  json_is_true(json_object_get(m, "ro")));
    if (st < 0) {
      send_fds(sock, st * 1000 - (int)i, NULL, 0); /* errno and which mount */
      return 1;
    }
  }
  /* OCI readonly paths, then masked paths (after the bind mounts, so
   * they apply inside them too); paths the guest serves are its own. */
  json_array_foreach(j->ropaths, i, m)
  {
    const char *dst = json_string_value(m);
    if (guest_path(dst))
      continue;
    if ((st = ro_one(root, dst)) < 0) {
      send_fds(sock, st * 1000 - 900, NULL, 0);
      return 1;
    }
  }
  int mfile = -1, mdir = -1;
  char mname[64];
  snprintf(mname, sizeof mname, ".quark-mask-%d", (int)getpid());
  json_array_foreach(j->masked, i, m)
  {
    const char *dst = json_string_value(m);
    if (guest_path(dst))
      continue;
    if (mfile < 0 && (mfile = mask_file(root, mname)) < 0) {
      send_fds(sock, mfile * 1000 - 902, NULL, 0);
      return 1;
    }
    if ((st = mask_one(root, dst, mfile, &mdir)) < 0) {
      send_fds(sock, st * 1000 - 901, NULL, 0);
      return 1;
    }
  }
  if (mfile >= 0) { /* the binds keep it */
    unlinkat(root, mname, 0);
    close(mfile);
  }
  if (mdir >= 0)
    close(mdir);
  close(root);
  if (ro && mount(NULL, rootfs, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
    send_fds(sock, -errno, NULL, 0);
    return 1;
  }
  int fds[2] = {open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC),
                open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC)};
  if (fds[0] < 0 || fds[1] < 0) {
    send_fds(sock, -errno * 1000, NULL, 0);
    return 1;
  }
  send_fds(sock, 0, fds, 2);
  return 0;
}

#define VFORK_STACK (256u << 10)

void *sbx_child_stack(size_t size)
{
  void *stack =
      mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED)
    return NULL;
#if defined(__SANITIZE_ADDRESS__)
  /* An earlier child's frames, left by its _exit, may still be poisoned
   * in the (shared) shadow memory of these addresses. */
  __asan_unpoison_memory_region(stack, size);
#endif
  return stack;
}

pid_t sbx_vfork_run(int (*fn)(void *), void *arg)
{
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  void *stack = sbx_child_stack(VFORK_STACK);
  pid_t pid = -1;
  int e = ENOMEM;
  if (stack) {
    pid = clone(fn, (char *)stack + VFORK_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, arg);
    e = errno;
    munmap(stack, VFORK_STACK); /* the child has exited or exec'd */
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return pid < 0 ? -e : pid;
}

/* The container's root with its bind mounts: a child process makes a
 * private mount namespace (nothing shows in the node's mount table, and
 * it all goes away with the last fd), mounts, and hands back the root and
 * the namespace. This process keeps both fds: the guest resolves paths
 * beneath the root, across the mounts. */
static int root_open(const char *rootfs, json_t *mounts, bool ro, json_t *masked, json_t *ropaths,
                     bool share_vm, int *rootfd, int *nsfd, q_error **err)
{
  *rootfd = *nsfd = -1;
  if (!ro && json_array_size(mounts) == 0 && json_array_size(masked) == 0 &&
      json_array_size(ropaths) == 0) {
    *rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return *rootfd < 0 ? q_error_make(err, errno, "open rootfs %s", rootfs) : 0;
  }
  size_t i;
  json_t *m;
  json_array_foreach(mounts, i, m)
  {
    if (!json_is_string(json_object_get(m, "src")) || !json_is_string(json_object_get(m, "dst")) ||
        json_string_value(json_object_get(m, "dst"))[0] != '/')
      return q_error_make(err, EINVAL, "mount %zu: src and absolute dst wanted", i);
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
    return q_error_make(err, errno, "socketpair");
  struct root_job job = {rootfs, mounts, masked, ropaths, ro, sv[1]};
  pid_t pid;
  if (share_vm) {
    pid = sbx_vfork_run(root_child, &job);
    if (pid < 0)
      errno = -pid;
  } else if ((pid = fork()) == 0) {
    close(sv[0]);
    _exit(root_child(&job));
  }
  if (pid < 0) {
    int e = errno;
    close(sv[0]);
    close(sv[1]);
    return q_error_make(err, e, "fork");
  }
  close(sv[1]);
  int st = -EPROTO;
  union {
    char b[CMSG_SPACE(2 * sizeof(int))];
    struct cmsghdr align;
  } cb;
  struct iovec iov = {&st, sizeof st};
  struct msghdr mh = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b, .msg_controllen = sizeof cb.b};
  ssize_t n;
  do
    n = recvmsg(sv[0], &mh, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  close(sv[0]);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
  struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
  if (n > 0 && st == 0 && c && c->cmsg_type == SCM_RIGHTS &&
      c->cmsg_len == CMSG_LEN(2 * sizeof(int))) {
    int fds[2];
    memcpy(fds, CMSG_DATA(c), sizeof fds);
    *rootfd = fds[0];
    *nsfd = fds[1];
    return 0;
  }
  if (st >= 0)
    return q_error_make(err, EPROTO, "mount helper for %s failed", rootfs);
  int e = -st / 1000, idx = -st % 1000;
  if (e == 0)
    return q_error_make(err, -st, "private mount namespace for %s", rootfs);
  if (idx >= 900 && idx <= 902)
    return q_error_make(err, e, "%s path of %s",
                        idx == 900   ? "read-only"
                        : idx == 901 ? "masked"
                                     : "masked (an empty file for)",
                        rootfs);
  m = json_array_get(mounts, (size_t)idx);
  return q_error_make(err, e, "bind mount %s on %s",
                      m ? json_string_value(json_object_get(m, "src")) : "?",
                      m ? json_string_value(json_object_get(m, "dst")) : "?");
}

int sbx_root_open(const char *rootfs, json_t *mounts, bool ro, json_t *masked, json_t *ropaths,
                  int *rootfd, int *nsfd, q_error **err)
{
  return root_open(rootfs, mounts, ro, masked, ropaths, false, rootfd, nsfd, err);
}

int sbx_root_open_shared(const char *rootfs, json_t *mounts, bool ro, json_t *masked,
                         json_t *ropaths, int *rootfd, int *nsfd, q_error **err)
{
  return root_open(rootfs, mounts, ro, masked, ropaths, true, rootfd, nsfd, err);
}
