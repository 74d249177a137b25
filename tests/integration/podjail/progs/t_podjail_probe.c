/* Guest side of the pod jail's blocked-syscall check: a route netlink
 * socket of type SOCK_DGRAM is a legal request the guest kernel forwards
 * (QK_OP_SOCKET), but the pod allowlist admits route netlink only as
 * SOCK_RAW, so the sandbox's host socket(2) traps: that call alone fails
 * (EPERM on the host, which the guest kernel answers as EAFNOSUPPORT for
 * netlink), and the SOCK_RAW one and everything after it still work. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef AF_NETLINK
#define AF_NETLINK 16
#endif

int main(void)
{
  int d = socket(AF_NETLINK, SOCK_DGRAM, 0);
  int e = errno;
  printf("dgram: %s\n", d < 0 ? strerror(e) : "ok");
  int r = socket(AF_NETLINK, SOCK_RAW, 0);
  printf("raw: %s\n", r < 0 ? strerror(errno) : "ok");
  if (r >= 0)
    close(r);
  return d < 0 && r >= 0 ? 0 : 3;
}
