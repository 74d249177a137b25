/* The `quark` command-line client: shared pieces for the subcommand files
 * (quark.c: version/info/pods/ps; image_cmds.c: pull/images/rmi/import;
 * run_cmds.c: run/logs/exec).
 * Prefix: quark_cli_.
 *
 * Contract:
 * - A subcommand gets argv after the global options, argv[0] being its own
 *   name, and returns the process exit status (0 ok, 1 failure, 2 usage).
 * - quark_cli_call does one unary CRI call over grpc C core to cli->endpoint
 *   and prints nothing; on failure it returns a negative errno and fills
 *   *err (a daemon that is not running gives -ECONNREFUSED with a message
 *   that says so; a gRPC error status is -EREMOTEIO with the code's name and
 *   the server's message).
 */
#ifndef QUARK_CLI_H
#define QUARK_CLI_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#include "cri_proto.h"
#include "quark/common.h"

#define QUARK_CLI_DEFAULT_ENDPOINT "unix:///run/quark/quark.sock"
#define QUARK_CLI_ENDPOINT_ENV "QUARK_ENDPOINT"

struct quark_cli {
  const char *endpoint; /* "unix:///path" */
  bool json;            /* --json: machine-readable output */
  int timeout_ms;       /* per call; --timeout */
  bool timeout_set;     /* --timeout given (quark exec: the command's timeout) */
};

/* method: "/runtime.v1.ImageService/PullImage". *resp is freed by the caller
 * with protobuf_c_message_free_unpacked(*resp, NULL). */
int quark_cli_call(const struct quark_cli *cli, const char *method, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                   q_error **err);

/* Prints "quark: <msg>" to stderr and returns 1. */
int quark_cli_fail(const char *fmt, ...) Q_PRINTF(1, 2);

/* Image subcommands (image_cmds.c). */
int quark_cmd_pull(struct quark_cli *cli, int argc, char **argv);
int quark_cmd_images(struct quark_cli *cli, int argc, char **argv);
int quark_cmd_rmi(struct quark_cli *cli, int argc, char **argv);
int quark_cmd_import(struct quark_cli *cli, int argc, char **argv);

/* Pod subcommands (run_cmds.c). */
int quark_cmd_run(struct quark_cli *cli, int argc, char **argv);
int quark_cmd_logs(struct quark_cli *cli, int argc, char **argv);
int quark_cmd_exec(struct quark_cli *cli, int argc, char **argv);

/* Streaming subcommands (stream_cmds.c): exec -i/-t/--url, attach,
 * port-forward. */
int quark_cmd_exec_stream(struct quark_cli *cli, int argc, char **argv);
int quark_cmd_attach(struct quark_cli *cli, int argc, char **argv);
int quark_cmd_port_forward(struct quark_cli *cli, int argc, char **argv);

#endif
