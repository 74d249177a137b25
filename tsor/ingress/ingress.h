/* Ingress: connections from outside TSoR (the node, other hosts, pods on
 * host networking) to a TSoR pod's IP. With a local route for the pod CIDR
 * in the node's network namespace, an sk_lookup program hands every TCP
 * connection to a pod address to one listener in tsord, which carries it on
 * a TSoR channel to the pod (getsockname on the accepted socket gives the
 * pod address and port the client asked for). Internal to tsor/. */
#ifndef TSOR_INGRESS_H
#define TSOR_INGRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "quark/common.h"

/* Loads the program for one pod CIDR (network order) with an empty
 * one-slot sockmap. */
int tsor_sklookup_load(uint32_t cidr_addr, uint8_t cidr_len, int *prog_fd, int *map_fd, q_error **err);
/* Puts listen_fd in the sockmap and attaches the program to a network
 * namespace (NULL: our own); detached when *link_fd is closed. */
int tsor_sklookup_attach(int prog_fd, int map_fd, int listen_fd, const char *netns_path, int *link_fd, q_error **err);

struct tsor_ingress;
struct tsor_ingress_config {
  const char *socket_path; /* tsord's unix socket: the proxy attaches as a client */
  bool ingress;            /* attach the sk_lookup program and carry connections in */
  bool egress;             /* carry pods' connections to non-TSoR addresses out */
  uint32_t cidr_addr;      /* the node's pod CIDR, network order */
  uint8_t cidr_len;
  const char *netns_path;  /* where to attach; NULL: tsord's own namespace */
};
/* Starts the gateway: the proxy thread, and for ingress the sk_lookup
 * program. The proxy attaches as a client with the CIDR's network address
 * (which no pod gets) and connects to pods on behalf of the outside client,
 * whose address the pod's accept() then shows. Egress:
 * a pod's connect() to an address no TSoR node owns reaches the proxy,
 * which connects a kernel socket there from tsord's network namespace (the
 * pod sees the connection established first, then a reset if the
 * destination refuses). */
int tsor_ingress_start(const struct tsor_ingress_config *cfg, struct tsor_ingress **out, q_error **err);
/* Stops the proxy (open connections are reset) and detaches the program. */
void tsor_ingress_stop(struct tsor_ingress *ig);

#endif
