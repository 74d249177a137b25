/* Files on the rootfs fixture (see ../guest_test.sh for its contents):
 * open/read/write/lseek/pread/pwrite/readv/writev, stat family, getdents64,
 * readlink, access, cwd, fcntl/dup, ioctl, devices, and the errors. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#include "t.h"

struct k_dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

struct k_statx {
  uint32_t mask, blksize;
  uint64_t attributes;
  uint32_t nlink, uid, gid;
  uint16_t mode, spare0;
  uint64_t ino, size, blocks, attributes_mask;
  struct {
    int64_t sec;
    uint32_t nsec;
    int32_t r;
  } atime, btime, ctime, mtime;
  uint32_t rdev_major, rdev_minor, dev_major, dev_minor;
  uint64_t spare[14];
};

static void test_read_write(void)
{
  char buf[64];
  int fd = open("/data/hello.txt", O_RDONLY);
  CHECK(fd >= 3);
  CHECK_EQ(read(fd, buf, sizeof(buf)), 12);
  CHECK(!memcmp(buf, "hello quark\n", 12));
  CHECK_EQ(read(fd, buf, sizeof(buf)), 0); /* EOF */
  CHECK_EQ(lseek(fd, 6, SEEK_SET), 6);
  CHECK_EQ(read(fd, buf, 5), 5);
  CHECK(!memcmp(buf, "quark", 5));
  CHECK_EQ(lseek(fd, -2, SEEK_END), 10);
  CHECK_EQ(lseek(fd, 0, SEEK_CUR), 10);
  CHECK_EQ(pread(fd, buf, 4, 1), 4);
  CHECK(!memcmp(buf, "ello", 4));
  CHECK_EQ(lseek(fd, 0, SEEK_CUR), 10); /* pread leaves the position */
  CHECK_EQ(RS3(SYS_lseek, fd, 0, 99), -EINVAL);
  CHECK_EQ(RS3(SYS_write, fd, "x", 1), -EBADF); /* read-only */
  /* readv across two buffers */
  char a[5], b[7];
  struct iovec iov[2] = { { a, 5 }, { b, 7 } };
  CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
  CHECK_EQ(readv(fd, iov, 2), 12);
  CHECK(!memcmp(a, "hello", 5) && !memcmp(b, " quark\n", 7));
  CHECK_EQ(close(fd), 0);
  CHECK_EQ(RS1(SYS_close, fd), -EBADF);

  /* create, write, read back, truncate */
  fd = open("/tmp/out.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
  CHECK(fd >= 0);
  CHECK_EQ(write(fd, "abcdef", 6), 6);
  struct iovec w[2] = { { "12", 2 }, { "345", 3 } };
  CHECK_EQ(writev(fd, w, 2), 5);
  CHECK_EQ(pwrite(fd, "ZZ", 2, 1), 2);
  CHECK_EQ(pread(fd, buf, 64, 0), 11);
  CHECK(!memcmp(buf, "aZZdef12345", 11));
  CHECK_EQ(ftruncate(fd, 3), 0);
  struct stat st;
  CHECK_EQ(fstat(fd, &st), 0);
  CHECK_EQ(st.st_size, 3);
  CHECK(S_ISREG(st.st_mode));
  CHECK_EQ(st.st_mode & 0777, 0644);
  CHECK_EQ(close(fd), 0);
  /* O_EXCL on an existing file */
  CHECK_EQ(RS3(SYS_open, "/tmp/out.txt", O_CREAT | O_EXCL | O_WRONLY, 0600), -EEXIST);
  CHECK_EQ(unlink("/tmp/out.txt"), 0);
  CHECK_EQ(RS1(SYS_unlink, "/tmp/out.txt"), -ENOENT);
  /* a large read: 1 MiB file through many pages */
  fd = open("/data/big.bin", O_RDONLY);
  CHECK(fd >= 0);
  char *big = malloc(1 << 20);
  ssize_t got = 0, r;
  while ((r = read(fd, big + got, (1 << 20) - got)) > 0)
    got += r;
  CHECK_EQ(got, 1 << 20);
  int okpat = 1;
  for (int i = 0; i < (1 << 20); i += 4093)
    if ((unsigned char)big[i] != (unsigned char)(i * 131 >> 8))
      okpat = 0;
  CHECK(okpat);
  free(big);
  close(fd);
}

static void test_stat(void)
{
  struct stat st, lst;
  CHECK_EQ(stat("/data/hello.txt", &st), 0);
  CHECK_EQ(st.st_size, 12);
  CHECK_EQ(lstat("/data/link", &lst), 0);
  CHECK(S_ISLNK(lst.st_mode));
  CHECK_EQ(stat("/data/link", &st), 0);
  CHECK(S_ISREG(st.st_mode));
  CHECK_EQ(st.st_size, 12);
  CHECK_EQ(RS2(SYS_stat, "/data/missing", &st), -ENOENT);
  CHECK_EQ(RS2(SYS_stat, "/data/hello.txt/x", &st), -ENOTDIR);
  CHECK_EQ(RS2(SYS_stat, "", &st), -ENOENT);
  CHECK_EQ(RS2(SYS_stat, "/data/hello.txt", 0), -EFAULT);
  CHECK_EQ(RS2(SYS_stat, 0, &st), -EFAULT);
  CHECK_EQ(RS2(SYS_stat, (void *)0xffff888000001000ull, &st), -EFAULT);
  CHECK_EQ(RS2(SYS_stat, "/data/hello.txt", (void *)0xffffffff80000000ull), -EFAULT);
  /* newfstatat: dirfd-relative and AT_EMPTY_PATH */
  int dfd = open("/data", O_RDONLY | O_DIRECTORY);
  CHECK(dfd >= 0);
  CHECK_EQ(fstatat(dfd, "hello.txt", &st, 0), 0);
  CHECK_EQ(st.st_size, 12);
  CHECK_EQ(fstatat(dfd, "", &st, AT_EMPTY_PATH), 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK_EQ(RS4(SYS_newfstatat, dfd, "", &st, 0), -ENOENT);
  CHECK_EQ(RS4(SYS_newfstatat, 9999, "x", &st, 0), -EBADF);
  CHECK_EQ(RS4(SYS_newfstatat, dfd, "x", &st, 0x80000), -EINVAL);
  /* statx */
  struct k_statx sx;
  memset(&sx, 0xff, sizeof(sx));
  CHECK_EQ(RS5(SYS_statx, dfd, "hello.txt", 0, 0x7ff, &sx), 0);
  CHECK_EQ(sx.size, 12);
  CHECK(sx.mode & S_IFREG);
  CHECK(sx.mask & 0x200); /* STATX_SIZE */
  CHECK_EQ(RS5(SYS_statx, AT_FDCWD, "/data/link", AT_SYMLINK_NOFOLLOW, 0x7ff, &sx), 0);
  CHECK_EQ(sx.mode & S_IFMT, S_IFLNK);
  /* getdents64 */
  char dbuf[1024];
  long n = RS3(SYS_getdents64, dfd, dbuf, sizeof(dbuf));
  CHECK(n > 0);
  int seen = 0;
  for (long off = 0; off < n;) {
    struct k_dirent64 *d = (struct k_dirent64 *)(dbuf + off);
    if (!strcmp(d->d_name, "hello.txt") || !strcmp(d->d_name, "dir") || !strcmp(d->d_name, "link"))
      seen++;
    off += d->d_reclen;
  }
  CHECK_EQ(seen, 3);
  CHECK_EQ(RS3(SYS_getdents64, dfd, dbuf, sizeof(dbuf)), 0);
  CHECK_EQ(lseek(dfd, 0, SEEK_SET), 0);
  CHECK_EQ(RS3(SYS_getdents64, dfd, 0, sizeof(dbuf)), -EFAULT);
  CHECK_EQ(lseek(dfd, 0, SEEK_SET), 0);
  CHECK(RS3(SYS_getdents64, dfd, dbuf, sizeof(dbuf)) > 0);
  int ffd = open("/data/hello.txt", O_RDONLY);
  CHECK_EQ(RS3(SYS_getdents64, ffd, dbuf, sizeof(dbuf)), -ENOTDIR);
  close(ffd);
  /* opendir/readdir through libc: the dir has exactly a, b, c */
  DIR *dir = opendir("/data/dir");
  CHECK(dir != NULL);
  int files = 0;
  struct dirent *de;
  while (dir && (de = readdir(dir)))
    if (de->d_name[0] != '.')
      files++;
  CHECK_EQ(files, 3);
  if (dir)
    closedir(dir);
  /* readlink */
  char lb[64];
  CHECK_EQ(readlink("/data/link", lb, sizeof(lb)), 9);
  CHECK(!memcmp(lb, "hello.txt", 9));
  CHECK_EQ(readlinkat(dfd, "link", lb, 4), 4);
  CHECK_EQ(RS3(SYS_readlink, "/data/hello.txt", lb, sizeof(lb)), -EINVAL);
  CHECK_EQ(RS3(SYS_readlink, "/data/link", lb, 0), -EINVAL);
  CHECK_EQ(RS3(SYS_readlink, "/data/link", 0, 10), -EFAULT);
  /* access */
  CHECK_EQ(access("/data/hello.txt", R_OK), 0);
  CHECK_EQ(RS2(SYS_access, "/data/nope", F_OK), -ENOENT);
  CHECK_EQ(RS2(SYS_access, "/data/hello.txt", 0x40), -EINVAL);
  CHECK_EQ(faccessat(dfd, "hello.txt", R_OK, 0), 0);
  CHECK_EQ(RS4(SYS_faccessat2, dfd, "hello.txt", R_OK, AT_EACCESS), 0);
  close(dfd);
}

static void test_cwd_fd(void)
{
  char cwd[256];
  CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
  CHECK(!strcmp(cwd, "/"));
  CHECK_EQ(chdir("/data/dir"), 0);
  CHECK(getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, "/data/dir"));
  CHECK_EQ(access("a", F_OK), 0); /* relative to the new cwd */
  CHECK_EQ(chdir(".."), 0);
  CHECK(getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, "/data"));
  CHECK_EQ(RS1(SYS_chdir, "hello.txt"), -ENOTDIR);
  CHECK_EQ(RS1(SYS_chdir, "/nonexistent"), -ENOENT);
  CHECK_EQ(RS2(SYS_getcwd, cwd, 3), -ERANGE);
  int d = open("dir", O_RDONLY | O_DIRECTORY);
  CHECK(d >= 0);
  CHECK_EQ(fchdir(d), 0);
  CHECK(getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, "/data/dir"));
  int f = openat(d, "b", O_RDONLY);
  CHECK(f >= 0);
  char c;
  CHECK_EQ(read(f, &c, 1), 1);
  CHECK_EQ(c, 'B');
  CHECK_EQ(RS4(SYS_openat, f, "x", O_RDONLY, 0), -ENOTDIR);
  CHECK_EQ(RS4(SYS_openat, 12345, "x", O_RDONLY, 0), -EBADF);
  CHECK_EQ(RS4(SYS_openat, -1, "x", O_RDONLY, 0), -EBADF);
  CHECK_EQ(chdir("/"), 0);

  /* dup family and fcntl */
  int g = dup(f);
  CHECK(g > f);
  CHECK_EQ(lseek(g, 0, SEEK_CUR), 1); /* shared position */
  CHECK_EQ(dup2(f, 50), 50);
  CHECK_EQ(dup2(50, 50), 50);
  CHECK_EQ(RS3(SYS_dup3, 50, 50, 0), -EINVAL);
  CHECK_EQ(RS3(SYS_dup3, f, 51, 0x1), -EINVAL);
  CHECK_EQ(dup3(f, 51, O_CLOEXEC), 51);
  CHECK_EQ(fcntl(51, F_GETFD), FD_CLOEXEC);
  CHECK_EQ(fcntl(50, F_GETFD), 0);
  CHECK_EQ(fcntl(50, F_SETFD, FD_CLOEXEC), 0);
  CHECK_EQ(fcntl(50, F_GETFD), FD_CLOEXEC);
  CHECK_EQ(fcntl(f, F_DUPFD, 60), 60);
  CHECK_EQ(fcntl(f, F_DUPFD_CLOEXEC, 60), 61);
  CHECK_EQ(fcntl(f, F_GETFL) & O_ACCMODE, O_RDONLY);
  CHECK_EQ(RS1(SYS_dup, -1), -EBADF);
  CHECK_EQ(RS2(SYS_dup2, 1000000, 3), -EBADF);
  CHECK_EQ(RS2(SYS_dup2, f, -1), -EBADF);
  CHECK_EQ(RS3(SYS_fcntl, f, 9999, 0), -EINVAL);
  CHECK_EQ(RS3(SYS_fcntl, 777, F_GETFD, 0), -EBADF);
  for (int i = 50; i < 62; i++)
    close(i);
  close(g);
  /* ioctl: TCGETS on a regular file is ENOTTY */
  struct termios tio;
  CHECK_EQ(RS3(SYS_ioctl, f, TCGETS, &tio), -ENOTTY);
  CHECK_EQ(RS3(SYS_ioctl, f, TIOCGWINSZ, &tio), -ENOTTY);
  CHECK_EQ(RS3(SYS_ioctl, 999, TCGETS, &tio), -EBADF);
  close(f);
  /* lowest free descriptor */
  int x = open("/data/hello.txt", O_RDONLY);
  close(x);
  CHECK_EQ(open("/data/hello.txt", O_RDONLY), x);
  close(x);
  /* mkdir/rmdir */
  CHECK_EQ(mkdir("/tmp/newdir", 0755), 0);
  CHECK_EQ(RS2(SYS_mkdir, "/tmp/newdir", 0755), -EEXIST);
  CHECK_EQ(rmdir("/tmp/newdir"), 0);
}

static void test_devices_and_errors(void)
{
  char buf[32];
  int n = open("/dev/null", O_RDWR);
  CHECK(n >= 0);
  CHECK_EQ(write(n, "abc", 3), 3);
  CHECK_EQ(read(n, buf, sizeof(buf)), 0);
  close(n);
  int z = open("/dev/zero", O_RDONLY);
  memset(buf, 7, sizeof(buf));
  CHECK_EQ(read(z, buf, sizeof(buf)), 32);
  CHECK(buf[0] == 0 && buf[31] == 0);
  close(z);
  int u = open("/dev/urandom", O_RDONLY);
  memset(buf, 0, sizeof(buf));
  CHECK_EQ(read(u, buf, sizeof(buf)), 32);
  int nz = 0;
  for (int i = 0; i < 32; i++)
    nz += buf[i] != 0;
  CHECK(nz > 16);
  close(u);
  /* bad pointers and descriptors: errors, never a crash */
  CHECK_EQ(RS3(SYS_read, 0x7fff0000, buf, 1), -EBADF);
  CHECK_EQ(RS3(SYS_read, -1, buf, 1), -EBADF);
  int f = open("/data/hello.txt", O_RDONLY);
  CHECK_EQ(RS3(SYS_read, f, 0, 10), -EFAULT);
  CHECK_EQ(RS3(SYS_read, f, 0xffff888000000000ull, 10), -EFAULT);
  CHECK_EQ(RS3(SYS_read, f, 0x800000000000ull, 10), -EFAULT);
  CHECK_EQ(RS3(SYS_read, f, "rodata string", 3), -EFAULT); /* read-only page */
  CHECK_EQ(RS3(SYS_read, f, buf, 0), 0);
  CHECK_EQ(RS3(SYS_write, 1, 0, 5), -EFAULT);
  CHECK_EQ(RS3(SYS_write, 1, buf, 0), 0);
  CHECK_EQ(RS3(SYS_readv, f, 0, 1), -EFAULT);
  CHECK_EQ(RS3(SYS_readv, f, buf, -1), -EINVAL);
  CHECK_EQ(RS3(SYS_readv, f, buf, 1025), -EINVAL);
  CHECK_EQ(RS4(SYS_pread64, f, buf, 1, -1), -EINVAL);
  CHECK_EQ(RS3(SYS_open, 0, O_RDONLY, 0), -EFAULT);
  CHECK_EQ(RS3(SYS_open, "/data/nope", O_RDONLY, 0), -ENOENT);
  char longp[5000];
  memset(longp, 'a', sizeof(longp));
  longp[0] = '/';
  longp[4999] = 0;
  CHECK_EQ(RS3(SYS_open, longp, O_RDONLY, 0), -ENAMETOOLONG);
  CHECK_EQ(RS3(SYS_open, "/data/hello.txt", O_RDONLY | O_DIRECTORY, 0), -ENOTDIR);
  CHECK_EQ(RS3(SYS_open, "/data", O_WRONLY, 0), -EISDIR);
  close(f);
  /* a read that ends in an unmapped page: partial, then EFAULT */
  f = open("/data/big.bin", O_RDONLY);
  char *two = (char *)RS6(SYS_mmap, 0, 8192, 3, 0x22, -1, 0);
  CHECK_EQ(RS2(SYS_munmap, two + 4096, 4096), 0);
  CHECK_EQ(RS3(SYS_read, f, two + 4000, 200), 96);
  CHECK_EQ(RS3(SYS_read, f, two + 4096, 200), -EFAULT);
  close(f);
}

int main(void)
{
  test_read_write();
  test_stat();
  test_cwd_fd();
  test_devices_and_errors();
  return t_done("t_files");
}
