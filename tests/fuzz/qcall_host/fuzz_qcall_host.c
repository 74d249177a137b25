/* Fuzzer: the host side of the QCall interface, as a hostile guest kernel
 * would drive it. Everything a guest sends the sandbox arrives as QCall
 * requests (opcode + six 64-bit arguments naming guest addresses, lengths,
 * handles and flags), so this is the VM's main way out: every pointer and
 * length must be checked against guest memory, every path must stay in the
 * container's root, every handle must be one of the VM's own.
 *
 * Input: a 2-byte little-endian blob length L, L bytes copied into guest
 * memory at BLOB (paths, iovecs, sockaddrs, pollfds, ...), then requests of
 * 31 bytes each (at most 64): the opcode byte (0..127: known and unknown
 * ones), then per argument a kind byte and 4 value bytes v:
 *   kind % 4 == 0  v itself (small numbers, flags)
 *              1  BLOB + v % (L + 1): an address inside the blob
 *              2  a handle: one of the handles earlier requests of this
 *                 input got back, or a standing one (stdin/out/err, root)
 *              3  v shifted left by kind / 4 (wild values, huge lengths,
 *                 addresses past guest memory)
 * served one by one through sbx_qcall_handle (the workers' core) on a VM
 * whose stop eventfd is readable, so no request waits.
 *
 * Checks beyond the sanitizers: nothing outside the root changes (a victim
 * file and its directory beside the root, and the host's /etc/passwd,
 * which a link in the root points at); no file descriptor stays open once
 * the input's handles are closed; guest memory outside the buffer stays
 * put except where a request may write. Sockets live in a network namespace
 * of the fuzzer's own (loopback only), or the socket family of opcodes is
 * skipped where one cannot be made.
 */
#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "fuzz_util.h"
#include "qcall/qcall_host.h"

#define MEM (2ull << 20)
#define RINGS_GPA 0x1000ull
#define BLOB 0x10000ull
#define MAX_BLOB 8192u
#define REQ_BYTES 31
#define MAX_REQS 64
#define MAX_HANDLES 32

static struct sbx_mem mem;
static struct sbx_qcall *qc;
static const char *scratch;
static char root[512], victim[512];
static int rootfd = -1, stopfd = -1;
static bool have_netns;
static struct stat passwd_st;

static int count_fds(void)
{
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  FUZZ_CHECK(d != NULL, "opendir /proc/self/fd");
  while (readdir(d))
    n++;
  closedir(d);
  return n;
}

/* Prints the open fds (for a failing fd check). */
static void list_fds(void)
{
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  char p[300], t[300];
  while (d && (e = readdir(d))) {
    snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(p, t, sizeof t - 1);
    t[n > 0 ? n : 0] = 0;
    fprintf(stderr, "  fd %s -> %s\n", e->d_name, t);
  }
  if (d)
    closedir(d);
}

static void fill_root(void)
{
  int dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  FUZZ_CHECK(dfd >= 0, "open root");
  fuzz_write_file(dfd, "hello.txt", "hello world\n", 12, 0644);
  FUZZ_CHECK(mkdirat(dfd, "dir", 0755) == 0 || errno == EEXIST, "mkdir");
  fuzz_write_file(dfd, "dir/a", "a\n", 2, 0600);
  (void)symlinkat("/etc/passwd", dfd, "passwd-link");
  (void)symlinkat("../outside/victim", dfd, "victim-link");
  (void)symlinkat("/proc/self/root", dfd, "proc-root");
  close(dfd);
}

static void net_up(void)
{
  if (unshare(CLONE_NEWNET) != 0)
    return;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = {0};
  strcpy(ifr.ifr_name, "lo");
  if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags |= IFF_UP;
    (void)ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  if (s >= 0)
    close(s);
  have_netns = true;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  q_log_set_level(Q_LOG_OFF);
  net_up();
  scratch = fuzz_tmpdir("qcall");
  snprintf(root, sizeof root, "%s/root", scratch);
  snprintf(victim, sizeof victim, "%s/outside", scratch);
  FUZZ_CHECK(mkdir(root, 0755) == 0 && mkdir(victim, 0755) == 0, "mkdir");
  int vfd = open(victim, O_PATH | O_DIRECTORY | O_CLOEXEC);
  fuzz_write_file(vfd, "victim", "host secret\n", 12, 0600);
  close(vfd);
  fill_root();
  FUZZ_CHECK(stat("/etc/passwd", &passwd_st) == 0, "stat /etc/passwd");
  rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  mem.size = MEM;
  mem.base = aligned_alloc(4096, MEM);
  FUZZ_CHECK(mem.base && rootfd >= 0, "setup");
  memset(mem.base, 0, MEM);
  struct sbx_qcall_config cfg = {
      .mem = &mem, .rings_gpa = RINGS_GPA, .ring_count = 1, .root_fd = rootfd, .stdio = {-1, -1, -1}};
  q_error *err = NULL;
  FUZZ_CHECK(sbx_qcall_create(&qc, &cfg, &err) == 0, "qcall: %s", q_error_msg(err));
  /* A stop eventfd that stays readable: every host wait ends at once. */
  stopfd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
  FUZZ_CHECK(stopfd >= 0 && sbx_qcall_bind_stop(qc, stopfd) == 0, "stop fd");
  return 0;
}

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* What the fuzzer keeps out of a request: waits and sizes that would only
 * make it slow or fill the disk, never checks of the host side. */
static bool tame(struct qk_qcall_req *r)
{
  if (r->op >= QK_OP_SOCKET && r->op <= QK_OP_SENDFILE && !have_netns)
    return false;
  switch (r->op) {
  case QK_OP_SLEEP:
    r->a[0] %= 1000000;
    break;
  case QK_OP_MKNODAT: /* a FIFO opened O_RDWR and written past its buffer blocks its writer */
    if ((r->a[3] & S_IFMT) == S_IFIFO)
      r->a[3] = (r->a[3] & ~(uint64_t)S_IFMT) | S_IFREG;
    break;
  case QK_OP_FALLOCATE:
    r->a[3] %= 1u << 20;
    break;
  case QK_OP_EXIT: /* no VM to stop here */
    return false;
  case QK_OP_CLOSE: /* the guest may close its stdio; the next input needs them */
    return r->a[0] > QK_HFD_STDERR;
  }
  return true;
}

static void check_outside(void)
{
  char p[600], buf[64];
  snprintf(p, sizeof p, "%s/victim", victim);
  int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  FUZZ_CHECK(fd >= 0, "victim gone: %s", strerror(errno));
  ssize_t n = read(fd, buf, sizeof buf);
  struct stat st;
  FUZZ_CHECK(fstat(fd, &st) == 0 && (st.st_mode & 07777) == 0600 && st.st_nlink == 1, "victim changed");
  close(fd);
  FUZZ_CHECK(n == 12 && memcmp(buf, "host secret\n", 12) == 0, "victim content changed");
  DIR *d = opendir(victim);
  FUZZ_CHECK(d != NULL, "outside dir");
  struct dirent *e;
  int entries = 0;
  while ((e = readdir(d)))
    entries++;
  closedir(d);
  FUZZ_CHECK(entries == 3, "outside dir has %d entries", entries);
  struct stat now;
  FUZZ_CHECK(stat("/etc/passwd", &now) == 0 && now.st_size == passwd_st.st_size &&
                 now.st_mtim.tv_sec == passwd_st.st_mtim.tv_sec &&
                 now.st_mtim.tv_nsec == passwd_st.st_mtim.tv_nsec && now.st_mode == passwd_st.st_mode &&
                 now.st_uid == passwd_st.st_uid,
             "host /etc/passwd changed");
}

/* Empties the root (the VM's root handle keeps naming the same directory)
 * and fills it again. */
static void reset_root(void)
{
  DIR *d = opendir(root);
  FUZZ_CHECK(d != NULL, "opendir root");
  struct dirent *e;
  char p[1024];
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    snprintf(p, sizeof p, "%s/%s", root, e->d_name);
    FUZZ_CHECK(q_rm_rf(p, NULL) == 0, "reset root: %s", p);
  }
  closedir(d);
  FUZZ_CHECK(chmod(root, 0755) == 0, "chmod root");
  fill_root();
}

static unsigned inputs;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 2)
    return 0;
  int base_fds = count_fds(); /* libFuzzer opens files between inputs */
  if (getenv("QCALL_FUZZ_DEBUG"))
    list_fds();
  size_t blob = (size_t)(data[0] | data[1] << 8) % (MAX_BLOB + 1);
  if (blob > size - 2)
    blob = size - 2;
  memset(mem.base + BLOB, 0, MAX_BLOB + 64);
  memcpy(mem.base + BLOB, data + 2, blob);
  const uint8_t *p = data + 2 + blob, *end = data + size;
  uint64_t handles[MAX_HANDLES] = {QK_HFD_STDIN, QK_HFD_STDOUT, QK_HFD_STDERR, QK_HFD_ROOT};
  size_t nh = 4;
  for (int i = 0; i < MAX_REQS && end - p >= REQ_BYTES; i++, p += REQ_BYTES) {
    struct qk_qcall_req r = {.op = p[0] & 127};
    for (int k = 0; k < 6; k++) {
      uint8_t kind = p[1 + 5 * k];
      uint32_t v = rd32(p + 2 + 5 * k);
      switch (kind % 4) {
      case 0:
        r.a[k] = v;
        break;
      case 1:
        r.a[k] = BLOB + v % (blob + 1);
        break;
      case 2:
        r.a[k] = handles[v % nh];
        break;
      default:
        r.a[k] = (uint64_t)v << (kind / 4 % 64) | (kind & 0x80 ? 0xffffffff00000000ull : 0);
        break;
      }
    }
    if (!tame(&r))
      continue;
    int64_t res = sbx_qcall_handle(qc, 0, &r);
    if (getenv("QCALL_FUZZ_DEBUG"))
      fprintf(stderr, "op %u a %llx %llx %llx %llx %llx %llx -> %lld (fds %d)\n", r.op,
              (unsigned long long)r.a[0], (unsigned long long)r.a[1], (unsigned long long)r.a[2],
              (unsigned long long)r.a[3], (unsigned long long)r.a[4], (unsigned long long)r.a[5],
              (long long)res, count_fds());
    if ((r.op == QK_OP_OPENAT || r.op == QK_OP_SOCKET || r.op == QK_OP_ACCEPT) && res >= 0) {
      FUZZ_CHECK(res > QK_HFD_ROOT && res < SBX_HFD_MAX, "handle %lld", (long long)res);
      if (nh < MAX_HANDLES)
        handles[nh++] = (uint64_t)res;
    }
    FUZZ_CHECK(res >= -4095, "op %u answered %lld", r.op, (long long)res);
  }
  /* The guest's handles end with the input (the VM would close them at exit). */
  for (uint64_t h = QK_HFD_ROOT + 1; h < SBX_HFD_MAX; h++)
    (void)sbx_qcall_hfd_close(qc, h);
  int fds = count_fds();
  if (fds != base_fds)
    list_fds();
  FUZZ_CHECK(fds == base_fds, "%d open fds, %d before the input", fds, base_fds);
  check_outside();
  /* The root fills up with what inputs create: start again now and then. */
  if (++inputs % 512 == 0) {
    reset_root();
  }
  return 0;
}
