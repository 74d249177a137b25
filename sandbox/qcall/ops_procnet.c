/* QK_OP_PROCNET_READ: see ops_procnet.h. */
#include "ops_procnet.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const names[QK_PROCNET_COUNT] = {
    [QK_PROCNET_DEV] = "dev",           [QK_PROCNET_TCP] = "tcp",
    [QK_PROCNET_TCP6] = "tcp6",         [QK_PROCNET_UDP] = "udp",
    [QK_PROCNET_UDP6] = "udp6",         [QK_PROCNET_RAW] = "raw",
    [QK_PROCNET_RAW6] = "raw6",         [QK_PROCNET_ROUTE] = "route",
    [QK_PROCNET_IF_INET6] = "if_inet6", [QK_PROCNET_SNMP] = "snmp",
    [QK_PROCNET_NETSTAT] = "netstat",   [QK_PROCNET_SOCKSTAT] = "sockstat",
    [QK_PROCNET_SOCKSTAT6] = "sockstat6",
};
_Static_assert(QK_PROCNET_COUNT <= 32, "the probe answers a 32-bit mask");

static int open_file(unsigned i)
{
  char path[64] = "/proc/thread-self/net/";
  strcat(path, names[i]);
  int fd = openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  return fd < 0 ? -errno : fd;
}

/* Bitmask of the table's files this host has (a missing IPv6 stack has
 * no tcp6, udp6, raw6, if_inet6, sockstat6). */
static int64_t probe(void)
{
  int64_t mask = 0;
  for (unsigned i = 0; i < QK_PROCNET_COUNT; i++) {
    int fd = open_file(i);
    if (fd >= 0) {
      mask |= 1ll << i;
      close(fd);
    }
  }
  return mask;
}

/* The whole file (up to QK_PROCNET_MAX) into *out (malloc'd): its length or -errno.
 * procfs files are generated per read call, so read until EOF. */
static int64_t slurp(int fd, char **out)
{
  size_t cap = 16384, len = 0;
  char *b = malloc(cap);
  if (!b)
    return -ENOMEM;
  for (;;) {
    if (len == cap) {
      if (cap >= QK_PROCNET_MAX)
        break;
      char *nb = realloc(b, cap * 2);
      if (!nb) {
        free(b);
        return -ENOMEM;
      }
      b = nb;
      cap *= 2;
    }
    ssize_t n = read(fd, b + len, cap - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int e = errno;
      free(b);
      return -e;
    }
    if (n == 0)
      break;
    len += (size_t)n;
  }
  *out = b;
  return (int64_t)len;
}

int64_t sbx_qcall_procnet(struct sbx_mem *mem, const uint64_t *a)
{
  if (a[0] == QK_PROCNET_PROBE)
    return probe();
  if (a[0] >= QK_PROCNET_COUNT || a[2] > QK_PROCNET_MAX)
    return -EINVAL;
  void *dst = NULL;
  if (a[2] && !(dst = sbx_gpa(mem, a[1], a[2])))
    return -EFAULT;
  int fd = open_file((unsigned)a[0]);
  if (fd < 0)
    return fd;
  char *b = NULL;
  int64_t len = slurp(fd, &b);
  close(fd);
  if (len < 0)
    return len;
  if (dst)
    memcpy(dst, b, (uint64_t)len < a[2] ? (size_t)len : (size_t)a[2]);
  free(b);
  return len;
}
