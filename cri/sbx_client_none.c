/* The sandbox client until the sandbox work provides the real one (it then
 * replaces this file's role with a library from sandbox/): every operation
 * answers -ENOSYS so the CRI handlers report UNIMPLEMENTED honestly. */
#include <errno.h>
#include <stdlib.h>

#include "quark/sbx_client.h"

#define NOSYS(err, what) q_error_make(err, ENOSYS, "sandbox: %s is not implemented yet", what)

void sbx_exec_result_clear(struct sbx_exec_result *r)
{
  free(r->out);
  free(r->err);
  r->out = r->err = NULL;
  r->out_len = r->err_len = 0;
}

int sbx_client_create(const struct sbx_pod_spec *spec, struct sbx_client **out, q_error **err)
{
  return NOSYS(err, "create");
}

int sbx_client_connect(const char *control_socket, struct sbx_client **out, q_error **err)
{
  return NOSYS(err, "connect");
}

const char *sbx_client_socket(const struct sbx_client *c)
{
  return "";
}
void sbx_client_close(struct sbx_client *c) {}
int sbx_client_stop(struct sbx_client *c, int timeout_ms, q_error **err)
{
  return NOSYS(err, "stop");
}

int sbx_container_create(struct sbx_client *c, const struct sbx_container_spec *spec, q_error **err)
{
  return NOSYS(err, "container create");
}

int sbx_container_start(struct sbx_client *c, const char *id, q_error **err)
{
  return NOSYS(err, "container start");
}

int sbx_container_signal(struct sbx_client *c, const char *id, int signo, q_error **err)
{
  return NOSYS(err, "container signal");
}

int sbx_container_wait(struct sbx_client *c, const char *id, int timeout_ms,
                       struct sbx_container_status *out, q_error **err)
{
  return NOSYS(err, "container wait");
}

int sbx_container_status(struct sbx_client *c, const char *id, struct sbx_container_status *out,
                         q_error **err)
{
  return NOSYS(err, "container status");
}

int sbx_container_delete(struct sbx_client *c, const char *id, q_error **err)
{
  return NOSYS(err, "container delete");
}

int sbx_container_exec(struct sbx_client *c, const char *id, const char *const *argv,
                       int timeout_ms, size_t out_cap, struct sbx_exec_result *out, q_error **err)
{
  return NOSYS(err, "exec");
}

int sbx_container_stats(struct sbx_client *c, const char *id, struct sbx_stats *out, q_error **err)
{
  return NOSYS(err, "container stats");
}

int sbx_pod_stats(struct sbx_client *c, struct sbx_stats *out, q_error **err)
{
  return NOSYS(err, "pod stats");
}
