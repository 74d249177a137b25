/* tsor_hostile: a client that speaks the arena ABI from tsor.h by hand
 * (as a VMM or guest kernel would, without the client library) and breaks
 * it on purpose. tsord must refuse or detach it and keep serving others.
 *   tsor_hostile SOCKET POD_IP OTHER_IP ECHO_IP ECHO_PORT
 * POD_IP: a pod IP of the node; OTHER_IP: one outside its pod CIDR; an echo
 * server listens at ECHO_IP:ECHO_PORT.
 * Exit 0 when every case was handled as expected. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "quark/tsor.h"

#define DIE(...) do { fprintf(stderr, "tsor_hostile: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

struct att {
  int fd, kick_daemon, kick_client;
  void *base;
  struct tsor_shm_hdr *h;
  struct tsor_hello_reply rep;
};

/* Attaches; seal=false leaves the memfd unsealed. Returns rep.status. */
static int attach(const char *sock, const char *ip, bool seal, struct att *a)
{
  struct tsor_shm_hdr lay;
  tsor_shm_layout(4, TSOR_MIN_RING, &lay);
  int memfd = memfd_create("hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (memfd < 0 || ftruncate(memfd, (off_t)lay.size) < 0) DIE("memfd: %s", strerror(errno));
  if (seal && fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) DIE("seal: %s", strerror(errno));
  a->base = mmap(NULL, lay.size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (a->base == MAP_FAILED) DIE("mmap");
  memcpy(a->base, &lay, sizeof(lay));
  a->h = a->base;
  a->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
  if (connect(a->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) DIE("connect %s: %s", sock, strerror(errno));
  struct tsor_hello hello = {.magic = TSOR_SHM_MAGIC, .version = TSOR_SHM_VERSION, .size = lay.size};
  inet_pton(AF_INET, ip, &hello.pod_ip);
  struct iovec iov = {&hello, sizeof(hello)};
  union {
    char buf[CMSG_SPACE(2 * sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof(u));
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = CMSG_SPACE(sizeof(int))};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &memfd, sizeof(int));
  if (sendmsg(a->fd, &mh, 0) != (ssize_t)sizeof(hello)) DIE("sendmsg");
  close(memfd);
  iov = (struct iovec){&a->rep, sizeof(a->rep)};
  mh = (struct msghdr){.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
  if (recvmsg(a->fd, &mh, 0) != (ssize_t)sizeof(a->rep)) DIE("reply");
  a->kick_daemon = a->kick_client = -1;
  for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
    int fds[2];
    memcpy(fds, CMSG_DATA(cm), sizeof(fds));
    a->kick_daemon = fds[0];
    a->kick_client = fds[1];
  }
  return a->rep.status;
}

static void submit(struct att *a, uint32_t op, uint32_t sd)
{
  struct tsor_shm_req *req = (struct tsor_shm_req *)((char *)a->base + a->h->req_off);
  uint32_t t = a->h->req.tail;
  req[t % a->h->qentries] = (struct tsor_shm_req){.op = op, .sd = sd};
  __atomic_store_n(&a->h->req.tail, t + 1, __ATOMIC_RELEASE);
  uint64_t one = 1;
  if (write(a->kick_daemon, &one, sizeof(one)) < 0) DIE("kick");
}

/* tsord detaches a client by closing its unix socket: wait for EOF. */
static void expect_detached(struct att *a, const char *what)
{
  struct pollfd p = {.fd = a->fd, .events = POLLIN};
  if (poll(&p, 1, 5000) != 1) DIE("%s: tsord did not detach the client", what);
  char b;
  if (recv(a->fd, &b, 1, 0) != 0) DIE("%s: expected EOF", what);
  printf("  %-34s detached\n", what);
  close(a->fd);
}

static int wait_cqe(struct att *a, uint32_t op)
{
  struct tsor_shm_cqe *cq = (struct tsor_shm_cqe *)((char *)a->base + a->h->cq_off);
  for (int i = 0; i < 5000; i++) {
    if (__atomic_load_n(&a->h->cq.tail, __ATOMIC_ACQUIRE) != a->h->cq.head) {
      struct tsor_shm_cqe e = cq[a->h->cq.head % a->h->qentries];
      a->h->cq.head++;
      if (e.op == op) return e.res;
    }
    usleep(1000);
  }
  DIE("no completion %u", op);
}

int main(int argc, char **argv)
{
  if (argc != 6) DIE("usage: tsor_hostile SOCKET POD_IP OTHER_IP ECHO_IP ECHO_PORT");
  struct att a;
  int r = attach(argv[1], argv[2], false, &a);
  if (r >= 0 || strstr(a.rep.msg, "sealed") == NULL) DIE("unsealed arena accepted (%d %s)", r, a.rep.msg);
  printf("  %-34s refused: %s\n", "unsealed memfd", a.rep.msg);
  close(a.fd);

  r = attach(argv[1], argv[3], true, &a);
  if (r != -EADDRNOTAVAIL) DIE("foreign pod IP gave %d (%s)", r, a.rep.msg);
  printf("  %-34s refused: %s\n", "pod IP of another node", a.rep.msg);
  close(a.fd);

  r = attach(argv[1], argv[2], true, &a);
  if (r < 0) DIE("attach: %s", a.rep.msg);
  struct att b;
  if (attach(argv[1], argv[2], true, &b) != -EADDRINUSE) DIE("second attach of one pod IP accepted");
  printf("  %-34s refused: %s\n", "pod IP attached twice", b.rep.msg);
  close(b.fd);
  a.h->req.tail = a.h->req.head + 100000; /* more requests than the ring holds */
  uint64_t one = 1;
  if (write(a.kick_daemon, &one, sizeof(one)) < 0) DIE("kick");
  expect_detached(&a, "request ring index out of range");

  r = attach(argv[1], argv[2], true, &a);
  if (r < 0) DIE("attach: %s", a.rep.msg);
  submit(&a, TSOR_REQ_SOCKET, 0);
  int sd = wait_cqe(&a, TSOR_CQE_SOCKET);
  if (sd < 0) DIE("socket: %d", sd);
  submit(&a, 99, (uint32_t)sd);
  expect_detached(&a, "unknown request");

  /* An open channel, then a write ring that claims more than it holds. */
  r = attach(argv[1], argv[2], true, &a);
  if (r < 0) DIE("attach: %s", a.rep.msg);
  submit(&a, TSOR_REQ_SOCKET, 0);
  sd = wait_cqe(&a, TSOR_CQE_SOCKET);
  struct tsor_shm_req *req = (struct tsor_shm_req *)((char *)a.base + a.h->req_off);
  uint32_t t = a.h->req.tail;
  req[t % a.h->qentries] = (struct tsor_shm_req){.op = TSOR_REQ_CONNECT, .sd = (uint32_t)sd,
                                                 .port = (uint16_t)atoi(argv[5])};
  inet_pton(AF_INET, argv[4], &req[t % a.h->qentries].addr);
  __atomic_store_n(&a.h->req.tail, t + 1, __ATOMIC_RELEASE);
  if (write(a.kick_daemon, &one, sizeof(one)) < 0) DIE("kick");
  if ((r = wait_cqe(&a, TSOR_CQE_CONNECTED)) != 0) DIE("connect: %s", strerror(-r));
  struct tsor_shm_slot *sl = tsor_shm_slot(a.base, a.h, (uint32_t)sd);
  sl->tx_tail = 1ull << 40; /* a terabyte in a 4 KiB ring */
  submit(&a, TSOR_REQ_TX, (uint32_t)sd);
  expect_detached(&a, "write ring index out of range");

  /* ... and a read ring consumed beyond what arrived. */
  r = attach(argv[1], argv[2], true, &a);
  if (r < 0) DIE("attach: %s", a.rep.msg);
  submit(&a, TSOR_REQ_SOCKET, 0);
  sd = wait_cqe(&a, TSOR_CQE_SOCKET);
  req = (struct tsor_shm_req *)((char *)a.base + a.h->req_off);
  t = a.h->req.tail;
  req[t % a.h->qentries] = (struct tsor_shm_req){.op = TSOR_REQ_CONNECT, .sd = (uint32_t)sd,
                                                 .port = (uint16_t)atoi(argv[5])};
  inet_pton(AF_INET, argv[4], &req[t % a.h->qentries].addr);
  __atomic_store_n(&a.h->req.tail, t + 1, __ATOMIC_RELEASE);
  if (write(a.kick_daemon, &one, sizeof(one)) < 0) DIE("kick");
  if ((r = wait_cqe(&a, TSOR_CQE_CONNECTED)) != 0) DIE("connect: %s", strerror(-r));
  sl = tsor_shm_slot(a.base, a.h, (uint32_t)sd);
  sl->rx_head = 12345;
  submit(&a, TSOR_REQ_RXDONE, (uint32_t)sd);
  expect_detached(&a, "read ring index out of range");
  /* Random requests and scribbles over every client-writable word, with a
   * listener and connections around: tsord must survive (ASan build in the
   * tests) whatever comes. */
  unsigned seed = (unsigned)getpid();
  for (int round = 0; round < 20; round++) {
    r = attach(argv[1], argv[2], true, &a);
    if (r < 0) DIE("attach: %s", a.rep.msg);
    req = (struct tsor_shm_req *)((char *)a.base + a.h->req_off);
    for (int i = 0; i < 400; i++) {
      uint32_t x = (uint32_t)rand_r(&seed);
      if (x % 7 == 0) {
        uint32_t slotn = (uint32_t)rand_r(&seed) % a.h->nslots;
        sl = tsor_shm_slot(a.base, a.h, slotn);
        switch ((uint32_t)rand_r(&seed) % 4) {
        case 0: sl->tx_tail += (uint64_t)rand_r(&seed) % 8192; break;
        case 1: sl->rx_head += (uint64_t)rand_r(&seed) % 64; break;
        case 2: sl->accepted = (uint32_t)rand_r(&seed); break;
        default: sl->tx_armed = (uint32_t)rand_r(&seed) & 1; break;
        }
        continue;
      }
      t = a.h->req.tail;
      struct tsor_shm_req q = {.op = 1 + (uint32_t)rand_r(&seed) % 9, .sd = (uint32_t)rand_r(&seed) % 6,
                               .port = (uint16_t)(rand_r(&seed) % 3 == 0 ? 7 : 1 + rand_r(&seed) % 20),
                               .arg = (uint32_t)rand_r(&seed) % 4};
      inet_pton(AF_INET, rand_r(&seed) % 2 ? argv[4] : argv[2], &q.addr);
      req[t % a.h->qentries] = q;
      __atomic_store_n(&a.h->req.tail, t + 1, __ATOMIC_RELEASE);
      /* keep completions drained now and then, as a sloppy client might */
      if (x % 5 == 0) a.h->cq.head = __atomic_load_n(&a.h->cq.tail, __ATOMIC_ACQUIRE);
      if (x % 11 == 0) {
        if (write(a.kick_daemon, &one, sizeof(one)) < 0) break;
        usleep(100);
      }
    }
    if (write(a.kick_daemon, &one, sizeof(one)) < 0) DIE("kick");
    usleep(20000);
    close(a.fd); /* whatever state it reached, the pod goes away */
    close(a.kick_daemon);
    close(a.kick_client);
    munmap(a.base, a.h->size);
  }
  printf("  %-34s survived\n", "20 x 400 random requests");
  printf("ok\n");
  return 0;
}
