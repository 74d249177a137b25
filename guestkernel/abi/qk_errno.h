/* Linux x86-64 errno values, as the guest ABI uses them (results are
 * negated). The host's <errno.h> has the same numbers; the static asserts in
 * sandbox/qcall check that. */
#ifndef QK_ERRNO_H
#define QK_ERRNO_H

#define QK_EPERM 1
#define QK_ENOENT 2
#define QK_ESRCH 3
#define QK_EINTR 4
#define QK_EIO 5
#define QK_ENXIO 6
#define QK_E2BIG 7
#define QK_ENOEXEC 8
#define QK_EBADF 9
#define QK_ECHILD 10
#define QK_EAGAIN 11
#define QK_ENOMEM 12
#define QK_EACCES 13
#define QK_EFAULT 14
#define QK_ENOTBLK 15
#define QK_EBUSY 16
#define QK_EEXIST 17
#define QK_EXDEV 18
#define QK_ENODEV 19
#define QK_ENOTDIR 20
#define QK_EISDIR 21
#define QK_EINVAL 22
#define QK_ENFILE 23
#define QK_EMFILE 24
#define QK_ENOTTY 25
#define QK_ETXTBSY 26
#define QK_EFBIG 27
#define QK_ENOSPC 28
#define QK_ESPIPE 29
#define QK_EROFS 30
#define QK_EMLINK 31
#define QK_EPIPE 32
#define QK_EDOM 33
#define QK_ERANGE 34
#define QK_EDEADLK 35
#define QK_ENAMETOOLONG 36
#define QK_ENOLCK 37
#define QK_ENOSYS 38
#define QK_ENOTEMPTY 39
#define QK_ELOOP 40
#define QK_ENOMSG 42
#define QK_EIDRM 43
#define QK_ENODATA 61
#define QK_ETIME 62
#define QK_EOVERFLOW 75
#define QK_EILSEQ 84
#define QK_ENOTSOCK 88
#define QK_EDESTADDRREQ 89
#define QK_EMSGSIZE 90
#define QK_EPROTOTYPE 91
#define QK_ENOPROTOOPT 92
#define QK_EPROTONOSUPPORT 93
#define QK_EOPNOTSUPP 95
#define QK_EAFNOSUPPORT 97
#define QK_EADDRINUSE 98
#define QK_EADDRNOTAVAIL 99
#define QK_ENETDOWN 100
#define QK_ENETUNREACH 101
#define QK_ECONNABORTED 103
#define QK_ECONNRESET 104
#define QK_ENOBUFS 105
#define QK_EISCONN 106
#define QK_ENOTCONN 107
#define QK_ETIMEDOUT 110
#define QK_ECONNREFUSED 111
#define QK_EHOSTUNREACH 113
#define QK_EALREADY 114
#define QK_EINPROGRESS 115
#define QK_ECANCELED 125
#define QK_EOWNERDEAD 130
#define QK_ENOTRECOVERABLE 131
#define QK_EWOULDBLOCK QK_EAGAIN
#define QK_ERESTARTSYS 512 /* kernel-internal: restart after a signal */

#endif
