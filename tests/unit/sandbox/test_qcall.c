/* Unit tests: the QCall ring (a guest thread and the host worker on two
 * threads), argument validation of every opcode family, and rootfs
 * confinement of the host side. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "qcall/qcall_host.h"

#define MEM (16ull << 20)
#define RINGS_GPA (1ull << 20)
#define BUF_GPA (4ull << 20)

static struct sbx_mem mem;
static struct sbx_qcall *qc;
static char root[64];
static int rootfd = -1, out_pipe[2];
static int exit_status = -1;

static void on_exit_cb(void *ctx, int status)
{
  (void)ctx;
  exit_status = status;
}

static void setup(void)
{
  mem.size = MEM;
  mem.base = aligned_alloc(4096, MEM);
  memset(mem.base, 0, MEM);
  snprintf(root, sizeof root, "/tmp/sbx-qcall-XXXXXX");
  cr_assert_not_null(mkdtemp(root));
  char p[256];
  snprintf(p, sizeof p, "%s/hello.txt", root);
  FILE *f = fopen(p, "w");
  fputs("hello world\n", f);
  fclose(f);
  snprintf(p, sizeof p, "%s/etc-link", root);
  cr_assert_eq(symlink("/etc/passwd", p), 0);
  rootfd = open(root, O_PATH | O_DIRECTORY);
  cr_assert_eq(pipe(out_pipe), 0);
  struct sbx_qcall_config cfg = {
      .mem = &mem, .rings_gpa = RINGS_GPA, .ring_count = 1, .root_fd = rootfd,
      .stdio = {-1, out_pipe[1], -1}, .on_exit = on_exit_cb,
  };
  q_error *err = NULL;
  cr_assert_eq(sbx_qcall_create(&qc, &cfg, &err), 0, "%s", q_error_msg(err));
  cr_assert_eq(sbx_qcall_start(qc, &err), 0);
}

static void teardown(void)
{
  sbx_qcall_destroy(qc);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  if (system(cmd) != 0)
    fprintf(stderr, "cleanup failed\n");
  close(rootfd);
  close(out_pipe[0]);
  close(out_pipe[1]);
  free(mem.base);
}

TestSuite(qcall, .init = setup, .fini = teardown, .timeout = 60);

static struct qk_qcall_ring *ring(void) { return (struct qk_qcall_ring *)(mem.base + RINGS_GPA); }

/* What the guest does (guestkernel/qcall/qcall.c), on a host thread. */
static int64_t gcall(uint32_t op, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4)
{
  struct qk_qcall_ring *r = ring();
  uint32_t tail = r->req_tail;
  struct qk_qcall_req *q = &r->req[tail & (QK_QCALL_ENTRIES - 1)];
  *q = (struct qk_qcall_req){.tag = tail, .op = op, .a = {a0, a1, a2, a3, a4, 0}};
  __atomic_store_n(&r->req_tail, tail + 1, __ATOMIC_RELEASE);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (__atomic_load_n(&r->host_sleeping, __ATOMIC_RELAXED)) {
    uint64_t one = 1;
    cr_assert_eq(write(sbx_qcall_kick_fd(qc, 0), &one, 8), 8);
  }
  uint32_t head = r->cpl_head;
  for (long spins = 0; __atomic_load_n(&r->cpl_tail, __ATOMIC_ACQUIRE) == head; spins++)
    if (spins > 100000)
      usleep(10);
  struct qk_qcall_cpl c = r->cpl[head & (QK_QCALL_ENTRIES - 1)];
  __atomic_store_n(&r->cpl_head, head + 1, __ATOMIC_RELEASE);
  cr_assert_eq(c.tag, tail);
  return c.result;
}

static uint64_t put(uint64_t gpa, const void *data, size_t len)
{
  memcpy(mem.base + gpa, data, len);
  return gpa;
}

Test(qcall, basics_and_bad_addresses)
{
  cr_assert_eq(gcall(QK_OP_NOP, 0, 0, 0, 0, 0), 0);
  cr_assert_eq(gcall(999, 0, 0, 0, 0, 0), -ENOSYS);
  cr_assert_eq(gcall(QK_OP_GETRANDOM, BUF_GPA, 64, 0, 0, 0), 64);
  cr_assert_eq(gcall(QK_OP_GETRANDOM, MEM - 8, 64, 0, 0, 0), -EFAULT);
  cr_assert_eq(gcall(QK_OP_GETRANDOM, UINT64_MAX - 7, 16, 0, 0, 0), -EFAULT);
  cr_assert_eq(gcall(QK_OP_GETRANDOM, BUF_GPA, QK_QCALL_MAX_IO + 1, 0, 0, 0), -EINVAL);
  cr_assert_eq(gcall(QK_OP_COPY, BUF_GPA, MEM - 4, 8, 0, 0), -EFAULT);
  cr_assert_gt(gcall(QK_OP_CLOCK, CLOCK_MONOTONIC, 0, 0, 0, 0), 0);
  cr_assert_eq(gcall(QK_OP_CLOCK, 1234, 0, 0, 0, 0), -EINVAL);
  cr_assert_eq(gcall(QK_OP_LOG, 9, BUF_GPA, 4, 0, 0), -EINVAL);
  cr_assert_eq(gcall(QK_OP_LOG, QK_LOG_DEBUG, MEM, 4, 0, 0), -EFAULT);
  cr_assert_eq(gcall(QK_OP_FSTAT, 4000, BUF_GPA, 0, 0, 0), -EBADF);
  cr_assert_eq(gcall(QK_OP_FSTAT, UINT64_MAX, BUF_GPA, 0, 0, 0), -EBADF);
  cr_assert_eq(gcall(QK_OP_CLOSE, QK_HFD_ROOT, 0, 0, 0, 0), -EPERM);
  cr_assert_eq(gcall(QK_OP_EXIT, 0x1234, 0, 0, 0, 0), 0);
  cr_assert_eq(exit_status, 0x34);
}

Test(qcall, write_to_stdout_through_iovecs)
{
  put(BUF_GPA, "hello ", 6);
  put(BUF_GPA + 8192, "world\n", 6);
  struct qk_iov iov[2] = {{BUF_GPA, 6}, {BUF_GPA + 8192, 6}};
  uint64_t iov_gpa = put(BUF_GPA + 65536, iov, sizeof iov);
  cr_assert_eq(gcall(QK_OP_PWRITEV, QK_HFD_STDOUT, iov_gpa, 2, (uint64_t)-1, 0), 12);
  char got[13] = {0};
  cr_assert_eq(read(out_pipe[0], got, 12), 12);
  cr_assert_str_eq(got, "hello world\n");
  struct qk_iov bad[2] = {{BUF_GPA, 6}, {MEM - 2, 6}};
  iov_gpa = put(BUF_GPA + 65536, bad, sizeof bad);
  cr_assert_eq(gcall(QK_OP_PWRITEV, QK_HFD_STDOUT, iov_gpa, 2, (uint64_t)-1, 0), -EFAULT);
  cr_assert_eq(gcall(QK_OP_PWRITEV, QK_HFD_STDOUT, iov_gpa, QK_QCALL_MAX_IOV + 1, (uint64_t)-1, 0), -EINVAL);
  cr_assert_eq(gcall(QK_OP_PWRITEV, QK_HFD_STDOUT, MEM - 8, 1, (uint64_t)-1, 0), -EFAULT);
  cr_assert_eq(gcall(QK_OP_PWRITEV, QK_HFD_STDOUT, iov_gpa, 1, (uint64_t)-7, 0), -EINVAL);
}

static int64_t open_path(const char *p, uint64_t flags, uint64_t mode)
{
  uint64_t g = put(BUF_GPA, p, strlen(p));
  return gcall(QK_OP_OPENAT, QK_HFD_ROOT, g, strlen(p), flags, mode);
}

Test(qcall, files_in_the_rootfs)
{
  int64_t h = open_path("/hello.txt", O_RDONLY, 0);
  cr_assert_geq(h, 4);
  struct qk_iov iov = {BUF_GPA + 4096, 5};
  uint64_t iov_gpa = put(BUF_GPA + 65536, &iov, sizeof iov);
  cr_assert_eq(gcall(QK_OP_PREADV, h, iov_gpa, 1, 6, 0), 5);
  cr_assert_eq(memcmp(mem.base + BUF_GPA + 4096, "world", 5), 0);
  cr_assert_eq(gcall(QK_OP_FSTAT, h, BUF_GPA + 8192, 0, 0, 0), 0);
  cr_assert_eq(((struct stat *)(mem.base + BUF_GPA + 8192))->st_size, 12);
  cr_assert_eq(gcall(QK_OP_LSEEK, h, 0, SEEK_END, 0, 0), 12);
  cr_assert_eq(gcall(QK_OP_LSEEK, h, 0, 77, 0, 0), -EINVAL);
  cr_assert_eq(gcall(QK_OP_CLOSE, h, 0, 0, 0, 0), 0);
  cr_assert_eq(gcall(QK_OP_CLOSE, h, 0, 0, 0, 0), -EBADF);
  cr_assert_eq(open_path("/hello.txt", 0x80000000u, 0), -EINVAL, "unknown open flags");

  /* mkdir, getdents, faccessat, unlink */
  put(BUF_GPA, "/d1", 3);
  cr_assert_eq(gcall(QK_OP_MKDIRAT, QK_HFD_ROOT, BUF_GPA, 3, 0755, 0), 0);
  cr_assert_eq(gcall(QK_OP_MKDIRAT, QK_HFD_ROOT, BUF_GPA, 3, 0755, 0), -EEXIST);
  cr_assert_eq(gcall(QK_OP_FACCESSAT, QK_HFD_ROOT, BUF_GPA, 3, 0, 0), 0);
  cr_assert_eq(gcall(QK_OP_FACCESSAT, QK_HFD_ROOT, BUF_GPA, 3, 99, 0), -EINVAL);
  h = open_path("/", O_RDONLY | O_DIRECTORY, 0);
  cr_assert_geq(h, 4);
  int64_t n = gcall(QK_OP_GETDENTS64, h, BUF_GPA + 4096, 4096, 0, 0);
  cr_assert_gt(n, 0);
  cr_assert_eq(gcall(QK_OP_GETDENTS64, h, MEM - 100, 4096, 0, 0), -EFAULT);
  put(BUF_GPA, "/d1", 3);
  cr_assert_eq(gcall(QK_OP_UNLINKAT, QK_HFD_ROOT, BUF_GPA, 3, QK_AT_REMOVEDIR, 0), 0);
  cr_assert_eq(gcall(QK_OP_FSTATAT, QK_HFD_ROOT, BUF_GPA, 3, BUF_GPA + 8192, 0), -ENOENT);

  /* readlink of a symlink; stat of it without following */
  put(BUF_GPA, "/etc-link", 9);
  cr_assert_eq(gcall(QK_OP_READLINKAT, QK_HFD_ROOT, BUF_GPA, 9, BUF_GPA + 4096, 64), 11);
  cr_assert_eq(memcmp(mem.base + BUF_GPA + 4096, "/etc/passwd", 11), 0);
  cr_assert_eq(gcall(QK_OP_FSTATAT, QK_HFD_ROOT, BUF_GPA, 9, BUF_GPA + 8192, QK_AT_SYMLINK_NOFOLLOW), 0);
  cr_assert(S_ISLNK(((struct stat *)(mem.base + BUF_GPA + 8192))->st_mode));
}

Test(qcall, confinement)
{
  /* Neither .. nor absolute symlinks leave the rootfs: there is no /etc there. */
  cr_assert_eq(open_path("../../../../etc/passwd", O_RDONLY, 0), -ENOENT);
  cr_assert_eq(open_path("/etc-link", O_RDONLY, 0), -ENOENT);
  cr_assert_eq(open_path("/proc/self/root/etc/passwd", O_RDONLY, 0), -ENOENT);
  put(BUF_GPA, "/etc-link", 9);
  cr_assert_eq(gcall(QK_OP_FSTATAT, QK_HFD_ROOT, BUF_GPA, 9, BUF_GPA + 8192, 0), -ENOENT);
  /* Creation lands inside the rootfs, and .. cannot climb out of it. */
  int64_t h = open_path("../../created", O_WRONLY | O_CREAT | O_EXCL, 0600);
  cr_assert_geq(h, 4);
  char p[256];
  snprintf(p, sizeof p, "%s/created", root);
  cr_assert_eq(access(p, F_OK), 0);
  put(BUF_GPA, "a\0b", 3);
  cr_assert_eq(gcall(QK_OP_OPENAT, QK_HFD_ROOT, BUF_GPA, 3, O_RDONLY, 0), -EINVAL, "embedded NUL");
  cr_assert_eq(gcall(QK_OP_OPENAT, QK_HFD_ROOT, BUF_GPA, QK_QCALL_MAX_PATH + 1, O_RDONLY, 0), -ENAMETOOLONG);
  cr_assert_eq(gcall(QK_OP_OPENAT, QK_HFD_ROOT, BUF_GPA, 0, O_RDONLY, 0), -ENOENT);
  cr_assert_eq(gcall(QK_OP_OPENAT, 77, BUF_GPA, 1, O_RDONLY, 0), -EBADF);
}

Test(qcall, many_requests_in_order)
{
  for (int i = 0; i < 20000; i++)
    cr_assert_eq(gcall(QK_OP_CLOCK, CLOCK_MONOTONIC, 0, 0, 0, 0) > 0, 1);
  cr_assert_geq(sbx_qcall_served(qc), 20000);
}

Test(qcall, sleeping_worker_is_kicked)
{
  usleep(200 * 1000); /* far beyond the worker's spin */
  cr_assert_eq(__atomic_load_n(&ring()->host_sleeping, __ATOMIC_ACQUIRE), 1);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  cr_assert_eq(gcall(QK_OP_NOP, 0, 0, 0, 0, 0), 0);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
  cr_assert_lt(ms, 500, "a kicked worker answers at once, not after its poll timeout (%.1f ms)", ms);
}

static void *halted_vcpu(void *arg)
{
  (void)arg;
  sbx_qcall_wait(qc, 0, -1);
  return NULL;
}

Test(qcall, halted_vcpu_wakes_on_completion)
{
  struct qk_qcall_ring *r = ring();
  /* Post without waiting, mark the guest asleep, and halt "the vCPU". */
  uint32_t tail = r->req_tail;
  r->req[tail & (QK_QCALL_ENTRIES - 1)] = (struct qk_qcall_req){.tag = tail, .op = QK_OP_SLEEP, .a = {50000000}};
  __atomic_store_n(&r->guest_sleeping, 1, __ATOMIC_SEQ_CST);
  __atomic_store_n(&r->req_tail, tail + 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&r->host_sleeping, __ATOMIC_SEQ_CST)) {
    uint64_t one = 1;
    cr_assert_eq(write(sbx_qcall_kick_fd(qc, 0), &one, 8), 8);
  }
  pthread_t t;
  pthread_create(&t, NULL, halted_vcpu, NULL);
  pthread_join(t, NULL);
  cr_assert_neq(__atomic_load_n(&r->cpl_tail, __ATOMIC_ACQUIRE), r->cpl_head);
  cr_assert_eq(r->cpl[r->cpl_head & (QK_QCALL_ENTRIES - 1)].result, 0);
  r->cpl_head++;
}

Test(qcall, corrupt_indices_do_not_hurt_the_host)
{
  struct qk_qcall_ring *r = ring();
  __atomic_store_n(&r->req_tail, r->req_head + 100000, __ATOMIC_RELEASE);
  uint64_t one = 1;
  cr_assert_eq(write(sbx_qcall_kick_fd(qc, 0), &one, 8), 8);
  for (int i = 0; i < 2000 && __atomic_load_n(&r->req_head, __ATOMIC_ACQUIRE) != r->req_tail; i++)
    usleep(1000);
  uint32_t head = __atomic_load_n(&r->req_head, __ATOMIC_ACQUIRE);
  cr_assert_eq(head, r->req_tail, "dropped, not served (head %u tail %u)", head, r->req_tail);
  cr_assert_eq(gcall(QK_OP_NOP, 0, 0, 0, 0, 0), 0);
}

/* QK_OP_PROCNET_READ: a file of this process's /proc/thread-self/net by
 * index only, the whole length returned, at most the buffer copied. */
Test(qcall, procnet_read_by_index)
{
  int64_t mask = gcall(QK_OP_PROCNET_READ, QK_PROCNET_PROBE, 0, 0, 0, 0);
  cr_assert_gt(mask, 0);
  cr_assert(mask & (1 << QK_PROCNET_DEV));
  memset(mem.base + BUF_GPA, 0, 64);
  int64_t len = gcall(QK_OP_PROCNET_READ, QK_PROCNET_DEV, BUF_GPA, 16, 0, 0);
  cr_assert_gt(len, 16);
  cr_assert_eq(memcmp(mem.base + BUF_GPA, "Inter-|   Receiv", 16), 0);
  cr_assert_eq(mem.base[BUF_GPA + 16], 0, "nothing past the buffer");
  cr_assert_eq(gcall(QK_OP_PROCNET_READ, QK_PROCNET_DEV, 0, 0, 0, 0), len, "length probe");
  cr_assert_eq(gcall(QK_OP_PROCNET_READ, QK_PROCNET_COUNT, BUF_GPA, 16, 0, 0), -EINVAL);
  cr_assert_eq(gcall(QK_OP_PROCNET_READ, UINT64_MAX, BUF_GPA, 16, 0, 0), -EINVAL);
  cr_assert_eq(gcall(QK_OP_PROCNET_READ, QK_PROCNET_DEV, BUF_GPA, QK_PROCNET_MAX + 1, 0, 0), -EINVAL);
  cr_assert_eq(gcall(QK_OP_PROCNET_READ, QK_PROCNET_DEV, MEM - 8, 64, 0, 0), -EFAULT);
}
