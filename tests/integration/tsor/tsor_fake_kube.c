/* tsor_fake_kube: the smallest Kubernetes API server tsord's peer source
 * needs: GET /api/v1/nodes answers the NodeList in FILE (re-read on every
 * request, so a test changes the cluster by rewriting it), only with
 * "Authorization: Bearer TOKEN"; 401 otherwise, 404 for other paths.
 *   tsor_fake_kube PORT TOKEN FILE     (listens on 127.0.0.1; prints "ready") */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "quark/common.h"

static void answer(int fd, int code, const char *reason, const char *body)
{
  char head[256];
  int n = snprintf(head, sizeof(head),
                   "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n",
                   code, reason, strlen(body));
  q_write_all(fd, head, (size_t)n);
  q_write_all(fd, body, strlen(body));
}

int main(int argc, char **argv)
{
  if (argc != 4) {
    fprintf(stderr, "usage: tsor_fake_kube PORT TOKEN FILE\n");
    return 2;
  }
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 16) < 0) {
    perror("tsor_fake_kube: listen");
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  char want[512];
  snprintf(want, sizeof(want), "Authorization: Bearer %s\r\n", argv[2]);
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) continue;
    char req[8192];
    size_t got = 0;
    while (got < sizeof(req) - 1 && (got < 4 || memcmp(req + got - 4, "\r\n\r\n", 4) != 0)) {
      ssize_t r = read(fd, req + got, 1);
      if (r <= 0) break;
      got += (size_t)r;
    }
    req[got] = '\0';
    if (strstr(req, want) == NULL) {
      answer(fd, 401, "Unauthorized", "{\"kind\":\"Status\",\"code\":401}");
    } else if (strncmp(req, "GET /api/v1/nodes ", 18) != 0) {
      answer(fd, 404, "Not Found", "{\"kind\":\"Status\",\"code\":404}");
    } else {
      char *body = NULL;
      size_t len;
      if (q_read_file(argv[3], 1 << 20, &body, &len, NULL) < 0)
        answer(fd, 500, "Internal Server Error", "{}");
      else
        answer(fd, 200, "OK", body);
      free(body);
    }
    close(fd);
  }
}
