/* Test helper: writes the classic-BPF program of a seccomp profile as
 * quarkd compiles it (cri/seccomp.c), for quark-sandbox run --seccomp-bpf.
 * Usage: seccomp_tool runtimedefault|unconfined|localhost:FILE CAPS_HEX OUT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seccomp_profile.h"

int main(int argc, char **argv)
{
  if (argc != 4) {
    fprintf(stderr, "usage: seccomp_tool runtimedefault|unconfined|localhost:FILE CAPS_HEX OUT\n");
    return 2;
  }
  enum cri_seccomp_type t = CRI_SECCOMP_RUNTIME_DEFAULT;
  const char *path = NULL;
  if (!strcmp(argv[1], "unconfined"))
    t = CRI_SECCOMP_UNCONFINED;
  else if (!strncmp(argv[1], "localhost:", 10)) {
    t = CRI_SECCOMP_LOCALHOST;
    path = argv[1] + 10;
  } else if (strcmp(argv[1], "runtimedefault")) {
    fprintf(stderr, "seccomp_tool: unknown profile %s\n", argv[1]);
    return 2;
  }
  q_error *err = NULL;
  void *prog;
  size_t n;
  if (cri_seccomp_compile(t, path, NULL, strtoull(argv[2], NULL, 16), &prog, &n, &err) < 0) {
    fprintf(stderr, "seccomp_tool: %s\n", q_error_msg(err));
    q_error_free(&err);
    return 1;
  }
  FILE *f = fopen(argv[3], "wb");
  if (!f || (n && fwrite(prog, 8, n, f) != n) || fclose(f)) {
    perror(argv[3]);
    return 1;
  }
  printf("%zu instructions\n", n);
  free(prog);
  return 0;
}
