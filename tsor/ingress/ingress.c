/* The gateway proxy between kernel TCP and TSoR channels, both ways:
 * ingress: connections the sk_lookup program handed to our listener, each
 *   carried on a TSoR channel to the pod whose address the client dialled;
 * egress: pods' connections to addresses no TSoR node owns, which tsord
 *   routes to our egress listener, each carried on a kernel socket.
 * One thread, non-blocking on both sides, a 64 KiB buffer per direction per
 * connection; half-close and reset are passed through. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ingress/ingress.h"
#include "quark/tsor.h"

#define BUF (64 * 1024)

struct pipe_buf {
  char b[BUF];
  size_t off, len;
};

struct pair {
  int kfd; /* kernel side */
  int sd;  /* TSoR side */
  struct pipe_buf up, down; /* up: kernel -> pod, down: pod -> kernel */
  bool k_eof, t_eof, t_shut, k_shut;
  bool connecting; /* egress: kernel connect() in progress */
};

struct tsor_ingress {
  struct tsor_ingress_config cfg;
  char gw_ip[INET_ADDRSTRLEN];
  int lfd, prog_fd, map_fd, link_fd, stop_efd;
  int egress_sd; /* TSoR listener for egress, -1 without */
  pthread_t thread;
  bool running;
  tsor_client *cl;
  struct pair **pairs;
  size_t n, cap;
};

/* Closes the kernel side with a reset (SO_LINGER 0), as a peer reset does. */
static void reset_kernel(int fd)
{
  struct linger l = {.l_onoff = 1, .l_linger = 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

static void pair_free(struct tsor_ingress *ig, size_t i, bool reset)
{
  struct pair *p = ig->pairs[i];
  if (reset) {
    reset_kernel(p->kfd);
    tsor_client_abort(ig->cl, p->sd);
  } else {
    close(p->kfd);
    tsor_client_close(ig->cl, p->sd);
  }
  free(p);
  ig->pairs[i] = ig->pairs[--ig->n];
}

static bool add_pair(struct tsor_ingress *ig, int kfd, int sd, bool connecting)
{
  if (ig->n == ig->cap) {
    size_t nc = ig->cap ? ig->cap * 2 : 16;
    struct pair **v = realloc(ig->pairs, sizeof(*v) * nc);
    if (v == NULL) return false;
    ig->pairs = v;
    ig->cap = nc;
  }
  struct pair *p = calloc(1, sizeof(*p));
  if (p == NULL) return false;
  p->kfd = kfd;
  p->sd = sd;
  p->connecting = connecting;
  ig->pairs[ig->n++] = p;
  return true;
}

static void accept_egress(struct tsor_ingress *ig)
{
  struct sockaddr_in dst;
  int sd;
  while ((sd = tsor_client_accept(ig->cl, ig->egress_sd, &dst, TSOR_NONBLOCK)) >= 0) {
    int kfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (kfd < 0 || (connect(kfd, (struct sockaddr *)&dst, sizeof(dst)) < 0 && errno != EINPROGRESS) ||
        !add_pair(ig, kfd, sd, true)) {
      if (kfd >= 0) close(kfd);
      tsor_client_abort(ig->cl, sd); /* the pod sees a reset, as from a refusing peer */
      continue;
    }
  }
}

static void accept_new(struct tsor_ingress *ig)
{
  for (;;) {
    struct sockaddr_in dst, src;
    socklen_t dl = sizeof(dst), sl = sizeof(src);
    int kfd = accept4(ig->lfd, (struct sockaddr *)&src, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (kfd < 0) return;
    /* sk_lookup keeps the address the client dialled: the pod's. */
    if (getsockname(kfd, (struct sockaddr *)&dst, &dl) < 0) {
      reset_kernel(kfd);
      continue;
    }
    int sd = tsor_client_socket(ig->cl);
    int r = sd < 0 ? sd : tsor_client_connect_from(ig->cl, sd, &dst, &src);
    if (r < 0) {
      char a[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &dst.sin_addr, a, sizeof(a));
      q_debug(NULL, "tsord ingress: %s:%u: %s", a, ntohs(dst.sin_port), strerror(-r));
      if (sd >= 0) tsor_client_close(ig->cl, sd);
      reset_kernel(kfd); /* the nearest a listener can come to a refused SYN */
      continue;
    }
    if (!add_pair(ig, kfd, sd, false)) {
      reset_kernel(kfd);
      tsor_client_close(ig->cl, sd);
    }
  }
}

/* Moves what can move without blocking. Returns >0 on progress, 0 idle,
 * <0 when the pair is finished (-1 cleanly, -2 to reset). */
static int pump(struct tsor_ingress *ig, struct pair *p)
{
  int progress = 0;
  if (p->connecting) {
    struct pollfd pf = {.fd = p->kfd, .events = POLLOUT};
    if (poll(&pf, 1, 0) == 0) return 0;
    int e = 0;
    socklen_t el = sizeof(e);
    getsockopt(p->kfd, SOL_SOCKET, SO_ERROR, &e, &el);
    if (e != 0) return -2; /* refused or unreachable: the pod's channel is reset */
    p->connecting = false;
    progress = 1;
  }
  /* kernel -> pod */
  if (p->up.len == 0 && !p->k_eof) {
    ssize_t r = recv(p->kfd, p->up.b, BUF, 0);
    if (r > 0) {
      p->up.off = 0;
      p->up.len = (size_t)r;
      progress = 1;
    } else if (r == 0) {
      p->k_eof = true;
      progress = 1;
    } else if (errno != EAGAIN && errno != EINTR) {
      return -2;
    }
  }
  if (p->up.len > 0) {
    ssize_t r = tsor_client_send(ig->cl, p->sd, p->up.b + p->up.off, p->up.len, TSOR_NONBLOCK);
    if (r > 0) {
      p->up.off += (size_t)r;
      p->up.len -= (size_t)r;
      progress = 1;
    } else if (r != -EAGAIN) {
      return -2;
    }
  }
  if (p->k_eof && p->up.len == 0 && !p->t_shut) {
    tsor_client_shutdown(ig->cl, p->sd);
    p->t_shut = true;
    progress = 1;
  }
  /* pod -> kernel */
  if (p->down.len == 0 && !p->t_eof) {
    ssize_t r = tsor_client_recv(ig->cl, p->sd, p->down.b, BUF, TSOR_NONBLOCK);
    if (r > 0) {
      p->down.off = 0;
      p->down.len = (size_t)r;
      progress = 1;
    } else if (r == 0) {
      p->t_eof = true;
      progress = 1;
    } else if (r != -EAGAIN) {
      return -2;
    }
  }
  if (p->down.len > 0) {
    ssize_t r = send(p->kfd, p->down.b + p->down.off, p->down.len, MSG_NOSIGNAL);
    if (r > 0) {
      p->down.off += (size_t)r;
      p->down.len -= (size_t)r;
      progress = 1;
    } else if (r < 0 && errno != EAGAIN && errno != EINTR) {
      return -2;
    }
  }
  if (p->t_eof && p->down.len == 0 && !p->k_shut) {
    shutdown(p->kfd, SHUT_WR);
    p->k_shut = true;
    progress = 1;
  }
  if (p->k_shut && p->t_shut) return -1;
  return progress;
}

static int pump_all(struct tsor_ingress *ig)
{
  int any = 0;
  for (size_t i = 0; i < ig->n;) {
    int r = pump(ig, ig->pairs[i]);
    if (r < 0) {
      pair_free(ig, i, r == -2);
      any = 1;
      continue;
    }
    any |= r;
    i++;
  }
  return any;
}

static void *proxy(void *arg)
{
  struct tsor_ingress *ig = arg;
  struct tsor_client_config cc = {.socket_path = ig->cfg.socket_path, .pod_ip = ig->gw_ip, .slots = 1024,
                                  .ring_size = 256 * 1024};
  q_error *err = NULL;
  if (tsor_client_open(&cc, &ig->cl, &err) < 0) {
    q_error_log(NULL, "tsord ingress: %s", q_error_msg(err));
    q_error_free(&err);
    return NULL;
  }
  if (ig->cfg.egress) {
    ig->egress_sd = tsor_client_socket(ig->cl);
    int r = ig->egress_sd < 0 ? ig->egress_sd : tsor_client_listen_egress(ig->cl, ig->egress_sd, 4096);
    if (r < 0) q_error_log(NULL, "tsord egress: listen: %s", strerror(-r));
  }
  struct pollfd *pf = NULL;
  size_t pfcap = 0;
  for (;;) {
    while (pump_all(ig))
      ;
    if (ig->lfd >= 0) accept_new(ig);
    if (ig->egress_sd >= 0) accept_egress(ig);
    tsor_client_sleep_begin(ig->cl);
    tsor_client_process(ig->cl);
    if (pump_all(ig)) {
      tsor_client_sleep_end(ig->cl);
      continue;
    }
    if (pfcap < ig->n + 3) {
      pfcap = (ig->n + 3) * 2;
      struct pollfd *v = realloc(pf, sizeof(*pf) * pfcap);
      if (v == NULL) break;
      pf = v;
    }
    pf[0] = (struct pollfd){.fd = ig->stop_efd, .events = POLLIN};
    pf[1] = (struct pollfd){.fd = ig->lfd, .events = POLLIN}; /* -1 without ingress: ignored */
    pf[2] = (struct pollfd){.fd = tsor_client_event_fd(ig->cl), .events = POLLIN};
    for (size_t i = 0; i < ig->n; i++) {
      struct pair *p = ig->pairs[i];
      short ev = 0;
      if (p->up.len == 0 && !p->k_eof) ev |= POLLIN;
      if (p->down.len > 0 || p->connecting) ev |= POLLOUT;
      pf[3 + i] = (struct pollfd){.fd = p->kfd, .events = ev};
    }
    poll(pf, 3 + ig->n, 1000);
    tsor_client_sleep_end(ig->cl);
    if (pf[0].revents) break;
  }
  free(pf);
  while (ig->n > 0) pair_free(ig, 0, true);
  tsor_client_free(ig->cl);
  ig->cl = NULL;
  return NULL;
}

int tsor_ingress_start(const struct tsor_ingress_config *cfg, struct tsor_ingress **out, q_error **err)
{
  struct tsor_ingress *ig = calloc(1, sizeof(*ig));
  if (ig == NULL) return q_error_make(err, ENOMEM, "ingress");
  ig->cfg = *cfg;
  ig->lfd = ig->prog_fd = ig->map_fd = ig->link_fd = ig->stop_efd = ig->egress_sd = -1;
  inet_ntop(AF_INET, &cfg->cidr_addr, ig->gw_ip, sizeof(ig->gw_ip));
  int r;
  if (cfg->ingress) {
    ig->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* reached through sk_lookup, not by its own address */
    if (ig->lfd < 0 || bind(ig->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ig->lfd, 1024) < 0) {
      r = q_error_make(err, errno, "ingress: listener");
      goto fail;
    }
    r = tsor_sklookup_load(cfg->cidr_addr, cfg->cidr_len, &ig->prog_fd, &ig->map_fd, err);
    if (r < 0) goto fail;
    r = tsor_sklookup_attach(ig->prog_fd, ig->map_fd, ig->lfd, cfg->netns_path, &ig->link_fd, err);
    if (r < 0) goto fail;
  }
  ig->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (ig->stop_efd < 0 || pthread_create(&ig->thread, NULL, proxy, ig) != 0) {
    r = q_error_make(err, errno ? errno : EAGAIN, "ingress: thread");
    goto fail;
  }
  ig->running = true;
  *out = ig;
  return 0;
fail:
  tsor_ingress_stop(ig);
  return r;
}

void tsor_ingress_stop(struct tsor_ingress *ig)
{
  if (ig == NULL) return;
  if (ig->running) {
    uint64_t one = 1;
    ssize_t w = write(ig->stop_efd, &one, sizeof(one));
    (void)w;
    pthread_join(ig->thread, NULL);
  }
  if (ig->link_fd >= 0) close(ig->link_fd);
  if (ig->prog_fd >= 0) close(ig->prog_fd);
  if (ig->map_fd >= 0) close(ig->map_fd);
  if (ig->lfd >= 0) close(ig->lfd);
  if (ig->stop_efd >= 0) close(ig->stop_efd);
  free(ig->pairs);
  free(ig);
}
