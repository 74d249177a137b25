/* tsor_fake_kube: the smallest Kubernetes API server tsord's peer source
 * needs, only with "Authorization: Bearer TOKEN" (401 otherwise):
 *   GET /api/v1/nodes              the NodeList in DIR/nodes.json (re-read on
 *                                  every request); its resourceVersion is the
 *                                  number of lines in DIR/events.jsonl
 *   GET /api/v1/nodes?watch=1&resourceVersion=N&timeoutSeconds=T
 *                                  streams the lines of DIR/events.jsonl after
 *                                  line N as they are appended, for T seconds
 * A test changes the cluster by rewriting nodes.json and appending the
 * matching event. One process per request (fork), so watches run side by
 * side.  Usage: tsor_fake_kube PORT TOKEN DIR  (127.0.0.1; prints "ready") */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "quark/common.h"

static const char *dir;

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

static char *read_rel(const char *name)
{
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  char *body = NULL;
  size_t len;
  if (q_read_file(path, 1 << 20, &body, &len, NULL) < 0) return strdup("");
  return body;
}

static long count_lines(const char *s)
{
  long n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

static void list(int fd)
{
  char *nodes = read_rel("nodes.json"), *events = read_rel("events.jsonl");
  char rv[32];
  snprintf(rv, sizeof(rv), "%ld", count_lines(events));
  /* "RV" in the file stands for the current resourceVersion */
  char *at = strstr(nodes, "\"RV\"");
  char *body = NULL;
  if (at) {
    *at = '\0';
    if (asprintf(&body, "%s\"%s\"%s", nodes, rv, at + 4) < 0) body = NULL;
  }
  answer(fd, 200, "OK", body ? body : nodes);
  free(body);
  free(nodes);
  free(events);
}

static void watch(int fd, long from, long seconds)
{
  const char *head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
  q_write_all(fd, head, strlen(head));
  time_t end = time(NULL) + seconds;
  long sent = from;
  while (time(NULL) < end) {
    char *events = read_rel("events.jsonl");
    long line = 0;
    for (char *p = events, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
      if (++line <= sent) continue;
      if (q_write_all(fd, p, (size_t)(nl - p + 1)) < 0) {
        free(events);
        return;
      }
      sent = line;
    }
    free(events);
    usleep(50000);
  }
}

static void serve(int fd, const char *want)
{
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
  } else if (strncmp(req, "GET /api/v1/nodes?", 18) == 0 && strstr(req, "watch=1") != NULL) {
    const char *rv = strstr(req, "resourceVersion="), *ts = strstr(req, "timeoutSeconds=");
    watch(fd, rv ? atol(rv + 16) : 0, ts ? atol(ts + 15) : 5);
  } else if (strncmp(req, "GET /api/v1/nodes ", 18) == 0) {
    list(fd);
  } else {
    answer(fd, 404, "Not Found", "{\"kind\":\"Status\",\"code\":404}");
  }
}

int main(int argc, char **argv)
{
  if (argc != 4) {
    fprintf(stderr, "usage: tsor_fake_kube PORT TOKEN DIR\n");
    return 2;
  }
  dir = argv[3];
  signal(SIGCHLD, SIG_IGN); /* children reaped by the kernel */
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
    pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL); /* watches end with the server */
      close(lfd);
      serve(fd, want);
      close(fd);
      _exit(0);
    }
    close(fd);
  }
}
