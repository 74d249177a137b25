/* tsord: attaching a sandbox (the unix-socket handshake, the arena checks)
 * and freeing a detached one. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon.h"

void tsor_d_client_destroy(struct client *cl)
{
  struct tsor_daemon *d = cl->d;
  for (struct client **pp = &d->clients; *pp; pp = &(*pp)->next)
    if (*pp == cl) {
      *pp = cl->next;
      break;
    }
  if (cl->has_local) d->local->ops->dereg(d->local, &cl->reg_local);
  if (cl->has_net) d->net->ops->dereg(d->net, &cl->reg_net);
  if (cl->base) munmap(cl->base, cl->size);
  if (cl->fd >= 0) close(cl->fd);
  if (cl->kick_in >= 0) close(cl->kick_in);
  if (cl->kick_out >= 0) close(cl->kick_out);
  free(cl->socks);
  free(cl->freeslots);
  free(cl->ovf);
  free(cl);
}

static int send_reply(int fd, int status, const char *msg, int fds[2])
{
  struct tsor_hello_reply rep = {.status = status};
  snprintf(rep.msg, sizeof(rep.msg), "%s", msg ? msg : "");
  struct iovec iov = {&rep, sizeof(rep)};
  union {
    char buf[CMSG_SPACE(2 * sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  if (fds) {
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof(u.buf);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, 2 * sizeof(int));
  }
  return sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)sizeof(rep) ? 0 : -errno;
}

static bool pod_ip_taken(struct tsor_daemon *d, uint32_t ip)
{
  for (struct client *x = d->clients; x; x = x->next)
    if (!x->dead && x->pod_ip == ip) return true;
  return false;
}

void tsor_d_client_attach(struct tsor_daemon *d)
{
  int fd = accept4(d->ufd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0) return;
  /* The hello comes right after connect; a client that stalls here costs
   * at most this long. */
  struct timeval tv = {.tv_sec = 2};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct tsor_hello hello;
  struct iovec iov = {&hello, sizeof(hello)};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
  ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
  int memfd = -1;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); n > 0 && cm; cm = CMSG_NXTHDR(&mh, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(sizeof(int)))
      memcpy(&memfd, CMSG_DATA(cm), sizeof(int));
  const char *why = NULL;
  int status = -EPROTO;
  struct client *cl = NULL;
  struct stat st;
  struct tsor_shm_hdr h;
  if (n != (ssize_t)sizeof(hello) || memfd < 0 || hello.magic != TSOR_SHM_MAGIC || hello.version != TSOR_SHM_VERSION) {
    why = "bad hello";
    goto fail;
  }
  if (hello.offset % (uint64_t)sysconf(_SC_PAGESIZE) != 0 || hello.offset > UINT64_MAX - hello.size) {
    why = "arena offset must be page-aligned";
    goto fail;
  }
  if (fstat(memfd, &st) < 0 || (uint64_t)st.st_size < hello.offset + hello.size ||
      !(fcntl(memfd, F_GET_SEALS) & F_SEAL_SHRINK)) {
    /* Without the seal the client could shrink the file under our mapping
     * and crash tsord with SIGBUS. */
    why = "arena must be a memfd sealed against shrinking";
    goto fail;
  }
  if (tsor_d_node_by_addr(d, hello.pod_ip) != d->self) {
    status = -EADDRNOTAVAIL;
    why = "pod IP is not in this node's pod CIDR";
    goto fail;
  }
  /* tsord's own gateway (ingress/egress proxy) attaches from this process;
   * only it may use the CIDR's network address or run the egress. */
  struct ucred cred;
  socklen_t credlen = sizeof(cred);
  bool internal = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) == 0 && cred.pid == getpid();
  if (hello.pod_ip == d->self->cidr_addr && !internal) {
    status = -EADDRNOTAVAIL;
    why = "the pod CIDR's network address is tsord's own";
    goto fail;
  }
  if (pod_ip_taken(d, hello.pod_ip)) {
    status = -EADDRINUSE;
    why = "pod IP already attached";
    goto fail;
  }
  cl = calloc(1, sizeof(*cl));
  if (cl == NULL) {
    status = -ENOMEM;
    why = "out of memory";
    goto fail;
  }
  cl->d = d;
  cl->fd = fd;
  cl->kick_in = cl->kick_out = -1;
  cl->size = hello.size;
  cl->base = mmap(NULL, cl->size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, (off_t)hello.offset);
  if (cl->base == MAP_FAILED) {
    cl->base = NULL;
    status = -errno;
    why = "cannot map the arena";
    goto fail;
  }
  memcpy(&h, cl->base, sizeof(h));
  if (tsor_shm_check(&h, cl->size) < 0) {
    why = "arena layout";
    goto fail;
  }
  cl->h = h;
  cl->sh = cl->base;
  cl->req = (struct tsor_shm_req *)((char *)cl->base + h.req_off);
  cl->cqr = (struct tsor_shm_cqe *)((char *)cl->base + h.cq_off);
  cl->pod_ip = hello.pod_ip;
  cl->internal = internal;
  cl->socks = calloc(h.nslots, sizeof(*cl->socks));
  cl->freeslots = malloc(sizeof(uint32_t) * h.nslots);
  cl->kick_in = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  cl->kick_out = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (cl->socks == NULL || cl->freeslots == NULL || cl->kick_in < 0 || cl->kick_out < 0) {
    status = -ENOMEM;
    why = "out of memory";
    goto fail;
  }
  for (uint32_t i = 0; i < h.nslots; i++) cl->freeslots[i] = h.nslots - 1 - i;
  cl->nfree = h.nslots;
  q_error *err = NULL;
  if (d->local->ops->reg(d->local, cl->base, cl->size, &cl->reg_local, &err) < 0) {
    q_error_free(&err);
    status = -EIO;
    why = "cannot register the arena";
    goto fail;
  }
  cl->has_local = true;
  if (d->net) {
    if (d->net->ops->reg(d->net, cl->base, cl->size, &cl->reg_net, &err) < 0) {
      q_warn(NULL, "tsord: %s", q_error_msg(err));
      q_error_free(&err);
      status = -EIO;
      why = "cannot register the arena with the node fabric";
      goto fail;
    }
    cl->has_net = true;
  }
  int fds[2] = {cl->kick_in, cl->kick_out};
  if (send_reply(fd, 0, NULL, fds) < 0) {
    why = "reply";
    goto fail;
  }
  close(memfd);
  cl->id = d->next_client++;
  cl->ev_fd = (struct evsrc){SRC_CLIENT, cl};
  cl->ev_kick = (struct evsrc){SRC_KICK, cl};
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = &cl->ev_fd};
  epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev);
  ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &cl->ev_kick};
  epoll_ctl(d->epfd, EPOLL_CTL_ADD, cl->kick_in, &ev);
  cl->next = d->clients;
  d->clients = cl;
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &cl->pod_ip, ip, sizeof(ip));
  q_info(NULL, "tsord: pod %s attached (%u slots, %u-byte rings)", ip, h.nslots, h.ring_size);
  return;
fail:
  send_reply(fd, status, why, NULL);
  q_warn(NULL, "tsord: client refused: %s", why);
  if (memfd >= 0) close(memfd);
  if (cl) {
    cl->fd = -1;
    if (cl->has_local) d->local->ops->dereg(d->local, &cl->reg_local);
    if (cl->has_net) d->net->ops->dereg(d->net, &cl->reg_net);
    cl->has_local = cl->has_net = false;
    cl->d = d;
    tsor_d_client_destroy(cl);
  }
  close(fd);
}
