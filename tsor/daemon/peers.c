/* tsord's peer table: nodes by pod CIDR and name, changed live by the
 * Kubernetes source (a thread lists and watches the nodes and hands each
 * new table to the loop through an eventfd). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"

/* ---- the peer table ---- */

static uint32_t cidr_mask(uint8_t len) { return len == 0 ? 0 : htonl(~0u << (32 - len)); }

struct node *tsor_d_node_by_addr(struct tsor_daemon *d, uint32_t addr)
{
  for (struct node *n = d->nodes; n; n = n->next)
    if (!n->gone && ((addr ^ n->cidr_addr) & cidr_mask(n->cidr_len)) == 0) return n;
  return NULL;
}

struct node *tsor_d_node_by_name(struct tsor_daemon *d, const char *name)
{
  for (struct node *n = d->nodes; n; n = n->next)
    if (!n->gone && strcmp(n->name, name) == 0) return n;
  return NULL;
}

static void node_set(struct node *n, const struct tsor_peer *p)
{
  n->cidr_addr = p->cidr_addr;
  n->cidr_len = p->cidr_len;
  snprintf(n->address, sizeof(n->address), "%s", p->address);
  tsor_parse_hostport(p->address, &n->addr);
}

/* Frees nodes that left the table once no connection refers to them. */
void tsor_d_nodes_reap(struct tsor_daemon *d)
{
  for (struct node **pp = &d->nodes; *pp;) {
    struct node *n = *pp;
    if (n->gone && n->conn == NULL) {
      *pp = n->next;
      free(n);
    } else {
      pp = &n->next;
    }
  }
}

/* Makes the table what p says: new nodes added, changed ones updated (a new
 * address is used from the next connection on), vanished ones dropped with
 * their connection (its channels reset). This node stays whatever p says. */
void tsor_d_apply_peers(struct tsor_daemon *d, const struct tsor_peers *p)
{
  for (size_t i = 0; i < p->n; i++) {
    struct node *n = tsor_d_node_by_name(d, p->v[i].name);
    if (n == NULL) {
      n = calloc(1, sizeof(*n));
      if (n == NULL) continue;
      snprintf(n->name, sizeof(n->name), "%s", p->v[i].name);
      n->next = d->nodes;
      d->nodes = n;
      if (d->self != NULL) q_info(NULL, "tsord: node %s joined (%s)", n->name, p->v[i].address);
    } else if (n->cidr_addr != p->v[i].cidr_addr || n->cidr_len != p->v[i].cidr_len ||
               strcmp(n->address, p->v[i].address) != 0) {
      q_info(NULL, "tsord: node %s changed (%s)", n->name, p->v[i].address);
    }
    node_set(n, &p->v[i]);
  }
  for (struct node *n = d->nodes; n; n = n->next) {
    if (n == d->self || n->gone || tsor_peers_find(p, n->name) != NULL) continue;
    q_info(NULL, "tsord: node %s left", n->name);
    n->gone = true;
    if (n->conn && n->conn->fc) n->conn->fab->ops->disconnect(n->conn->fc);
  }
  tsor_d_nodes_reap(d);
}

/* ---- the Kubernetes peer source ----
 * A thread re-lists the nodes (a slow HTTP request must not stall the data
 * path) and hands each good table to the loop through an eventfd. */

static bool lister_stop(void *arg) { return ((struct tsor_daemon *)arg)->stop != 0; }

static void lister_table(void *arg, struct tsor_peers *p)
{
  struct tsor_daemon *d = arg;
  pthread_mutex_lock(&d->plock);
  if (d->has_pending) tsor_peers_free(&d->pending);
  d->pending = *p;
  d->has_pending = true;
  pthread_mutex_unlock(&d->plock);
  uint64_t one = 1;
  ssize_t w = write(d->peers_efd, &one, sizeof(one));
  (void)w;
}

void *tsor_d_lister(void *arg)
{
  struct tsor_daemon *d = arg;
  tsor_kube_run(&d->kube, d->refresh_s, lister_stop, lister_table, d);
  return NULL;
}

void tsor_d_take_peers(struct tsor_daemon *d)
{
  uint64_t v;
  ssize_t r = read(d->peers_efd, &v, sizeof(v));
  (void)r;
  pthread_mutex_lock(&d->plock);
  struct tsor_peers p = d->pending;
  bool have = d->has_pending;
  d->has_pending = false;
  memset(&d->pending, 0, sizeof(d->pending));
  pthread_mutex_unlock(&d->plock);
  if (!have) return;
  tsor_d_apply_peers(d, &p);
  tsor_peers_free(&p);
}
