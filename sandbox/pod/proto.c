/* Framing of the pod control protocol (see proto.h). */
#include "proto.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <quark/common.h>

static int wait_readable(int fd, int64_t deadline)
{
  for (;;) {
    int ms = -1;
    if (deadline >= 0) {
      int64_t left = deadline - q_mono_ns();
      if (left <= 0)
        return -ETIMEDOUT;
      ms = (int)((left + 999999) / 1000000);
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, ms);
    if (r > 0)
      return 0;
    if (r < 0 && errno != EINTR)
      return -errno;
  }
}

static int recv_exact(int fd, void *buf, size_t len, int64_t deadline, int *fds, int *nfds)
{
  size_t got = 0;
  while (got < len) {
    int r = wait_readable(fd, deadline);
    if (r < 0)
      return r;
    struct iovec iov = {(char *)buf + got, len - got};
    union {
      char b[CMSG_SPACE(sizeof(int) * SBX_PROTO_MAX_FDS)];
      struct cmsghdr align;
    } cbuf;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b, .msg_controllen = sizeof cbuf.b};
    ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      return -errno;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
        continue;
      size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      int *in = (int *)CMSG_DATA(c);
      for (size_t i = 0; i < k; i++) {
        int f;
        memcpy(&f, &in[i], sizeof f);
        if (fds && nfds && *nfds < SBX_PROTO_MAX_FDS)
          fds[(*nfds)++] = f;
        else
          close(f);
      }
    }
    if (n == 0)
      return got == 0 ? -EPIPE : -EPROTO;
    got += (size_t)n;
  }
  return 0;
}

int sbx_proto_recv(int fd, json_t **msg, char **blob, size_t *blob_len, int *fds, int *nfds,
                   int timeout_ms)
{
  *msg = NULL;
  if (blob)
    *blob = NULL;
  if (blob_len)
    *blob_len = 0;
  if (nfds)
    *nfds = 0;
  int64_t deadline = timeout_ms < 0 ? -1 : q_mono_ns() + (int64_t)timeout_ms * 1000000;
  uint8_t h[8];
  int r = recv_exact(fd, h, sizeof h, deadline, fds, nfds);
  if (r < 0)
    goto fail;
  uint32_t jl = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
  uint32_t bl = (uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 24;
  if (jl == 0 || jl > SBX_PROTO_MAX_JSON || bl > SBX_PROTO_MAX_BLOB || (bl && !blob)) {
    r = -EPROTO;
    goto fail;
  }
  char *j = malloc(jl);
  char *b = bl ? malloc(bl) : NULL;
  if (!j || (bl && !b)) {
    free(j);
    free(b);
    r = -ENOMEM;
    goto fail;
  }
  if ((r = recv_exact(fd, j, jl, deadline, NULL, NULL)) < 0 ||
      (bl && (r = recv_exact(fd, b, bl, deadline, NULL, NULL)) < 0)) {
    free(j);
    free(b);
    if (r == -EPIPE)
      r = -EPROTO;
    goto fail;
  }
  json_error_t je;
  json_t *m = json_loadb(j, jl, JSON_REJECT_DUPLICATES, &je);
  free(j);
  if (!m || !json_is_object(m)) {
    json_decref(m);
    free(b);
    r = -EPROTO;
    goto fail;
  }
  *msg = m;
  if (blob) {
    *blob = b;
    *blob_len = bl;
  }
  return 0;
fail:
  for (int i = 0; nfds && i < *nfds; i++)
    close(fds[i]);
  if (nfds)
    *nfds = 0;
  return r;
}

int sbx_proto_send(int fd, json_t *msg, const void *blob, size_t blob_len, const int *fds, int nfds)
{
  char *j = json_dumps(msg, JSON_COMPACT);
  if (!j)
    return -ENOMEM;
  size_t jl = strlen(j);
  if (jl > SBX_PROTO_MAX_JSON || blob_len > SBX_PROTO_MAX_BLOB || nfds > SBX_PROTO_MAX_FDS) {
    free(j);
    return -E2BIG;
  }
  uint8_t h[8];
  for (int i = 0; i < 4; i++) {
    h[i] = (uint8_t)(jl >> (8 * i));
    h[4 + i] = (uint8_t)(blob_len >> (8 * i));
  }
  struct iovec iov[3] = {{h, sizeof h}, {j, jl}, {(void *)blob, blob_len}};
  int niov = blob_len ? 3 : 2;
  union {
    char b[CMSG_SPACE(sizeof(int) * SBX_PROTO_MAX_FDS)];
    struct cmsghdr align;
  } cbuf;
  struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
  if (nfds > 0) {
    memset(&cbuf, 0, sizeof cbuf);
    mh.msg_control = cbuf.b;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
  }
  int r = 0;
  size_t total = sizeof h + jl + (blob_len ? blob_len : 0);
  while (total > 0) {
    ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      r = -errno;
      break;
    }
    /* Fds go with the first bytes only. */
    mh.msg_control = NULL;
    mh.msg_controllen = 0;
    total -= (size_t)n;
    while (n > 0 && mh.msg_iovlen > 0) {
      if ((size_t)n >= mh.msg_iov->iov_len) {
        n -= (ssize_t)mh.msg_iov->iov_len;
        mh.msg_iov++;
        mh.msg_iovlen--;
      } else {
        mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + n;
        mh.msg_iov->iov_len -= (size_t)n;
        n = 0;
      }
    }
  }
  free(j);
  return r;
}
