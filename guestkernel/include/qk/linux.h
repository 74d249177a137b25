/* Linux x86-64 user ABI: the constants and structures the syscall layer
 * reads from and writes to user memory. Values are the kernel's (not any
 * libc's); layouts are pinned with _Static_assert. */
#ifndef QK_LINUX_H
#define QK_LINUX_H

#include <stdint.h>

/* open(2) flags */
#define L_O_ACCMODE 03
#define L_O_RDONLY 00
#define L_O_WRONLY 01
#define L_O_RDWR 02
#define L_O_CREAT 0100
#define L_O_EXCL 0200
#define L_O_NOCTTY 0400
#define L_O_TRUNC 01000
#define L_O_APPEND 02000
#define L_O_NONBLOCK 04000
#define L_O_DSYNC 010000
#define L_O_ASYNC 020000
#define L_O_DIRECT 040000
#define L_O_LARGEFILE 0100000
#define L_O_DIRECTORY 0200000
#define L_O_NOFOLLOW 0400000
#define L_O_NOATIME 01000000
#define L_O_CLOEXEC 02000000
#define L_O_PATH 010000000
#define L_O_TMPFILE 020200000
#define L_O_SYNC 04010000

#define L_AT_FDCWD (-100)
#define L_AT_SYMLINK_NOFOLLOW 0x100
#define L_AT_EACCESS 0x200
#define L_AT_REMOVEDIR 0x200
#define L_AT_SYMLINK_FOLLOW 0x400
#define L_AT_NO_AUTOMOUNT 0x800
#define L_AT_EMPTY_PATH 0x1000
#define L_AT_STATX_SYNC_TYPE 0x6000

#define L_S_IFMT 0170000
#define L_S_IFDIR 0040000
#define L_S_IFCHR 0020000
#define L_S_IFREG 0100000
#define L_S_IFLNK 0120000

#define L_SEEK_SET 0
#define L_SEEK_CUR 1
#define L_SEEK_END 2
#define L_SEEK_DATA 3
#define L_SEEK_HOLE 4

/* fcntl */
#define L_F_DUPFD 0
#define L_F_GETFD 1
#define L_F_SETFD 2
#define L_F_GETFL 3
#define L_F_SETFL 4
#define L_F_GETLK 5
#define L_F_SETLK 6
#define L_F_SETLKW 7
#define L_F_OFD_GETLK 36
#define L_F_OFD_SETLK 37
#define L_F_OFD_SETLKW 38
#define L_F_DUPFD_CLOEXEC 1030
#define L_FD_CLOEXEC 1
#define L_F_UNLCK 2

/* ioctl */
#define L_TCGETS 0x5401
#define L_TIOCGWINSZ 0x5413
#define L_FIONCLEX 0x5450
#define L_FIOCLEX 0x5451

/* mmap */
#define L_PROT_NONE 0
#define L_PROT_READ 1
#define L_PROT_WRITE 2
#define L_PROT_EXEC 4
#define L_PROT_GROWSDOWN 0x01000000
#define L_PROT_GROWSUP 0x02000000
#define L_MAP_SHARED 0x01
#define L_MAP_PRIVATE 0x02
#define L_MAP_SHARED_VALIDATE 0x03
#define L_MAP_TYPE 0x0f
#define L_MAP_FIXED 0x10
#define L_MAP_ANONYMOUS 0x20
#define L_MAP_32BIT 0x40
#define L_MAP_GROWSDOWN 0x100
#define L_MAP_DENYWRITE 0x800
#define L_MAP_EXECUTABLE 0x1000
#define L_MAP_LOCKED 0x2000
#define L_MAP_NORESERVE 0x4000
#define L_MAP_POPULATE 0x8000
#define L_MAP_NONBLOCK 0x10000
#define L_MAP_STACK 0x20000
#define L_MAP_HUGETLB 0x40000
#define L_MAP_SYNC 0x80000
#define L_MAP_FIXED_NOREPLACE 0x100000

#define L_MADV_NORMAL 0
#define L_MADV_RANDOM 1
#define L_MADV_SEQUENTIAL 2
#define L_MADV_WILLNEED 3
#define L_MADV_DONTNEED 4
#define L_MADV_FREE 8

/* arch_prctl */
#define L_ARCH_SET_GS 0x1001
#define L_ARCH_SET_FS 0x1002
#define L_ARCH_GET_FS 0x1003
#define L_ARCH_GET_GS 0x1004

/* futex */
#define L_FUTEX_WAIT 0
#define L_FUTEX_WAKE 1
#define L_FUTEX_WAIT_BITSET 9
#define L_FUTEX_WAKE_BITSET 10
#define L_FUTEX_PRIVATE_FLAG 128
#define L_FUTEX_CLOCK_REALTIME 256

/* clocks */
#define L_CLOCK_REALTIME 0
#define L_CLOCK_MONOTONIC 1
#define L_CLOCK_PROCESS_CPUTIME_ID 2
#define L_CLOCK_THREAD_CPUTIME_ID 3
#define L_CLOCK_MONOTONIC_RAW 4
#define L_CLOCK_REALTIME_COARSE 5
#define L_CLOCK_MONOTONIC_COARSE 6
#define L_CLOCK_BOOTTIME 7
#define L_CLOCK_REALTIME_ALARM 8
#define L_CLOCK_BOOTTIME_ALARM 9
#define L_CLOCK_TAI 11

#define L_GRND_NONBLOCK 1
#define L_GRND_RANDOM 2
#define L_GRND_INSECURE 4

/* rlimits */
#define L_RLIMIT_CPU 0
#define L_RLIMIT_FSIZE 1
#define L_RLIMIT_DATA 2
#define L_RLIMIT_STACK 3
#define L_RLIMIT_CORE 4
#define L_RLIMIT_RSS 5
#define L_RLIMIT_NPROC 6
#define L_RLIMIT_NOFILE 7
#define L_RLIMIT_MEMLOCK 8
#define L_RLIMIT_AS 9
#define L_RLIM_NLIMITS 16
#define L_RLIM_INFINITY (~0ull)

struct l_timespec {
  int64_t tv_sec;
  int64_t tv_nsec;
};
struct l_timeval {
  int64_t tv_sec;
  int64_t tv_usec;
};
struct l_iovec {
  uint64_t base;
  uint64_t len;
};
struct l_rlimit {
  uint64_t cur, max;
};
_Static_assert(sizeof(struct l_timespec) == 16, "timespec");
_Static_assert(sizeof(struct l_iovec) == 16, "iovec");

struct l_stat {
  uint64_t st_dev;
  uint64_t st_ino;
  uint64_t st_nlink;
  uint32_t st_mode;
  uint32_t st_uid;
  uint32_t st_gid;
  uint32_t pad0;
  uint64_t st_rdev;
  int64_t st_size;
  int64_t st_blksize;
  int64_t st_blocks;
  int64_t st_atime_sec, st_atime_nsec;
  int64_t st_mtime_sec, st_mtime_nsec;
  int64_t st_ctime_sec, st_ctime_nsec;
  int64_t reserved[3];
};
_Static_assert(sizeof(struct l_stat) == 144, "struct stat");

struct l_statx_ts {
  int64_t tv_sec;
  uint32_t tv_nsec;
  int32_t reserved;
};
struct l_statx {
  uint32_t stx_mask;
  uint32_t stx_blksize;
  uint64_t stx_attributes;
  uint32_t stx_nlink;
  uint32_t stx_uid;
  uint32_t stx_gid;
  uint16_t stx_mode;
  uint16_t spare0;
  uint64_t stx_ino;
  uint64_t stx_size;
  uint64_t stx_blocks;
  uint64_t stx_attributes_mask;
  struct l_statx_ts stx_atime, stx_btime, stx_ctime, stx_mtime;
  uint32_t stx_rdev_major, stx_rdev_minor;
  uint32_t stx_dev_major, stx_dev_minor;
  uint64_t spare[14];
};
_Static_assert(sizeof(struct l_statx) == 256, "struct statx");
#define L_STATX_BASIC_STATS 0x7ffu

struct l_utsname {
  char sysname[65], nodename[65], release[65], version[65], machine[65], domainname[65];
};

struct l_sysinfo {
  int64_t uptime;
  uint64_t loads[3];
  uint64_t totalram, freeram, sharedram, bufferram, totalswap, freeswap;
  uint16_t procs, pad;
  uint32_t pad2;
  uint64_t totalhigh, freehigh;
  uint32_t mem_unit;
  char f[4];
};
_Static_assert(sizeof(struct l_sysinfo) == 112, "struct sysinfo");

/* The kernel's struct sigaction (rt_sigaction), 8-byte sigset. */
struct l_sigaction {
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};
#define L_NSIG 64
#define L_SIGKILL 9
#define L_SIGSTOP 19

struct l_flock {
  int16_t l_type, l_whence;
  int64_t l_start, l_len;
  int32_t l_pid;
};

#endif
