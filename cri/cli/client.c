/* One unary CRI call over grpc C core, for the `quark` CLI. A fresh channel
 * per call: the CLI makes one or two calls per run, and a channel that lives
 * no longer than the call leaves nothing to clean up on error paths. */
#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cli.h"

static const char *code_name(grpc_status_code c)
{
  static const char *const names[] = {
      "OK",
      "CANCELLED",
      "UNKNOWN",
      "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED",
      "NOT_FOUND",
      "ALREADY_EXISTS",
      "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED",
      "FAILED_PRECONDITION",
      "ABORTED",
      "OUT_OF_RANGE",
      "UNIMPLEMENTED",
      "INTERNAL",
      "UNAVAILABLE",
      "DATA_LOSS",
      "UNAUTHENTICATED",
  };
  return (unsigned)c < Q_ARRAY_SIZE(names) ? names[c] : "UNKNOWN";
}

int quark_cli_fail(const char *fmt, ...)
{
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  fprintf(stderr, "quark: %s\n", buf);
  return 1;
}

/* grpc would only say UNAVAILABLE after its deadline; a direct connect()
 * tells "not running" from "not allowed" right away. */
static int probe_unix(const char *endpoint, q_error **err)
{
  const char *path = NULL;
  if (strncmp(endpoint, "unix://", 7) == 0)
    path = endpoint + 7;
  else if (strncmp(endpoint, "unix:", 5) == 0)
    path = endpoint + 5;
  if (!path)
    return 0;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sa.sun_path))
    return q_error_make(err, ENAMETOOLONG, "socket path %s too long", path);
  strcpy(sa.sun_path, path);
  q_cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return q_error_make(err, errno, "socket");
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
    return 0;
  int e = errno;
  if (e == ENOENT || e == ECONNREFUSED) {
    q_error_make(err, 0,
                 "cannot reach quarkd at %s (%s): is quarkd running? Start it, or point --endpoint "
                 "or " QUARK_CLI_ENDPOINT_ENV " at its socket",
                 endpoint, e == ENOENT ? "no such socket" : "connection refused");
    return -ECONNREFUSED;
  }
  return q_error_make(err, e, "cannot connect to %s", endpoint);
}

int quark_cli_call(const struct quark_cli *cli, const char *method, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                   q_error **err)
{
  int r = probe_unix(cli->endpoint, err);
  if (r < 0)
    return r;
  size_t len = protobuf_c_message_get_packed_size(req);
  grpc_slice req_slice = grpc_slice_malloc(len);
  protobuf_c_message_pack(req, GRPC_SLICE_START_PTR(req_slice));
  grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&req_slice, 1);
  grpc_slice_unref(req_slice);

  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  grpc_arg arg = {.type = GRPC_ARG_INTEGER,
                  .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                  .value.integer = 64 << 20};
  grpc_channel_args args = {.num_args = 1, .args = &arg};
  grpc_channel *ch = grpc_channel_create(cli->endpoint, creds, &args);
  grpc_channel_credentials_release(creds);
  grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
  gpr_timespec deadline = gpr_time_add(
      gpr_now(GPR_CLOCK_REALTIME),
      gpr_time_from_millis(cli->timeout_ms > 0 ? cli->timeout_ms : 10000, GPR_TIMESPAN));
  grpc_call *call =
      grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                               grpc_slice_from_static_string(method), NULL, deadline, NULL);
  grpc_metadata_array initial_md, trailing_md;
  grpc_metadata_array_init(&initial_md);
  grpc_metadata_array_init(&trailing_md);
  grpc_byte_buffer *recv = NULL;
  grpc_status_code status = GRPC_STATUS_UNKNOWN;
  grpc_slice details = grpc_empty_slice();

  grpc_op ops[6];
  memset(ops, 0, sizeof(ops));
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = send;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &recv;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
  ops[5].data.recv_status_on_client.status = &status;
  ops[5].data.recv_status_on_client.status_details = &details;
  int tag;
  if (grpc_call_start_batch(call, ops, 6, &tag, NULL) != GRPC_CALL_OK) {
    r = q_error_make(err, EIO, "%s: cannot start the call", method);
  } else {
    grpc_event ev;
    do
      ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    while (ev.type != GRPC_OP_COMPLETE || ev.tag != &tag);
    if (status != GRPC_STATUS_OK) {
      char *msg = grpc_slice_to_c_string(details);
      if (status == GRPC_STATUS_UNAVAILABLE)
        r = q_error_make(err, ECONNREFUSED, "cannot reach quarkd at %s: %s", cli->endpoint, msg);
      else
        r = q_error_make(err, EREMOTEIO, "%s: %s", code_name(status), msg);
      gpr_free(msg);
    } else if (!recv) {
      r = q_error_make(err, EPROTO, "%s: no response message", method);
    } else {
      grpc_byte_buffer_reader reader;
      grpc_byte_buffer_reader_init(&reader, recv);
      grpc_slice s = grpc_byte_buffer_reader_readall(&reader);
      grpc_byte_buffer_reader_destroy(&reader);
      *resp =
          protobuf_c_message_unpack(resp_desc, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
      grpc_slice_unref(s);
      if (!*resp)
        r = q_error_make(err, EPROTO, "%s: malformed %s from quarkd", method, resp_desc->name);
    }
  }
  grpc_slice_unref(details);
  grpc_metadata_array_destroy(&initial_md);
  grpc_metadata_array_destroy(&trailing_md);
  if (recv)
    grpc_byte_buffer_destroy(recv);
  grpc_byte_buffer_destroy(send);
  grpc_call_unref(call);
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
         GRPC_QUEUE_SHUTDOWN)
    ;
  grpc_completion_queue_destroy(cq);
  grpc_channel_destroy(ch);
  return r;
}
