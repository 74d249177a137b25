/* Guest side of the jail's blocked-syscall check: a getrandom of exactly
 * 4093 bytes into one page is one QCall of that length, which jail_run's
 * test hook answers by attempting host syscalls outside the allowlist. The
 * call must fail (EPERM under the jail) and everything after it must work:
 * the VM and this program keep running. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static char page[8192] __attribute__((aligned(4096)));

int main(void)
{
  ssize_t r = getrandom(page, 4093, 0);
  int e = errno;
  printf("probe: %s\n", r < 0 ? strerror(e) : "ok");
  /* More host work after the refused call: file reads and another
   * (ordinary) getrandom. */
  ssize_t g = getrandom(page, 16, 0);
  FILE *f = fopen("/bin/busybox", "rb");
  size_t n = f ? fread(page, 1, sizeof page, f) : 0;
  if (f)
    fclose(f);
  printf("after: getrandom %zd, read %zu\n", g, n);
  return r < 0 ? 3 : 0;
}
