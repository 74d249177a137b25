/* The pod control protocol between quarkd (sbx_client.c) and
 * `quark-sandbox pod` (pod.c), on a unix stream socket (mode 0600).
 *
 * Framing: every message is an 8-byte header (u32 little-endian JSON
 * length, u32 little-endian blob length), then a JSON object (jansson),
 * then the blob (raw bytes: exec output). File descriptors (SCM_RIGHTS) may
 * ride on the header's bytes. Limits: JSON 8 MiB, blob 64 MiB, 3 fds; a
 * message over a limit, malformed JSON or a non-object closes the
 * connection (the sandbox itself goes on).
 *
 * Requests: {"op": NAME, ...}; one response per request, in order:
 * {"ok": true, ...} or {"errno": N (positive), "error": "text"}.
 * Ops (fields): hello; create (id rootfs argv envp cwd uid gid mounts
 * [{src,dst,ro}] log tty stdin); start (id); signal (id signo); wait (id
 * timeout_ms); status (id); delete (id); exec (id argv timeout_ms out_cap
 * -> exit_code out_len err_len, blob = out then err); stats (id or absent
 * for the pod); reopen_log (id); shutdown (timeout_ms); exec_start (id argv
 * stdin tty -> exec_id, fds [indices of stdin/stdout/stderr sent, in
 * order, as SCM_RIGHTS on the response]); exec_wait (exec_id timeout_ms ->
 * exit_code; the first success forgets the exec); exec_kill (exec_id
 * signo); attach (id stdin -> fds as for exec_start: a dup of the
 * container's stdin when it has one, its stdout/stderr from now on, EOF
 * at its exit). Unknown ops answer
 * ENOSYS. Container status fields: state ("created" "running" "exited"),
 * started_at, finished_at, exit_code, oom.
 */
#ifndef SBX_POD_PROTO_H
#define SBX_POD_PROTO_H

#include <jansson.h>
#include <stddef.h>

#define SBX_PROTO_VERSION 1
#define SBX_PROTO_MAX_JSON (8u << 20)
#define SBX_PROTO_MAX_BLOB (64u << 20)
#define SBX_PROTO_MAX_FDS 3
/* The control socket's name inside the pod's run dir. */
#define SBX_POD_SOCKET_NAME "sandbox.sock"

/* Sends one message; returns 0 or -errno. */
int sbx_proto_send(int fd, json_t *msg, const void *blob, size_t blob_len, const int *fds,
                   int nfds);
/* Receives one message (timeout_ms -1: wait forever). *msg gets a new
 * reference, *blob a malloc'd buffer (NULL when empty). fds may be NULL
 * when none are expected (any that arrive are closed). Returns 0, -EPIPE
 * at a clean end of stream, -ETIMEDOUT, -EPROTO for bad framing, or
 * -errno. */
int sbx_proto_recv(int fd, json_t **msg, char **blob, size_t *blob_len, int *fds, int *nfds,
                   int timeout_ms);

#endif
