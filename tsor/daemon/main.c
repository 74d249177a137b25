/* tsord: the TSoR node service. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingress/ingress.h"
#include "quark/tsor.h"

static tsor_daemon *the_daemon;

static void on_signal(int sig)
{
  (void)sig;
  if (the_daemon) tsor_daemon_stop(the_daemon);
}

static void usage(FILE *f)
{
  fprintf(f,
          "usage: tsord --node NAME (--peers FILE | --kube [--kube-server URL] [--kube-token-file F]\n"
          "             [--kube-ca-file F] [--peers-refresh SECONDS]) [--socket PATH]\n"
          "             [--fabric auto|verbs|tcp] [--ingress] [--egress] [--log FILE] [--log-level Off|Error|Warn|Info|Debug|Trace]\n"
          "  --node     this node's name in the peer table\n"
          "  --peers    JSON peers file: {\"Nodes\":[{\"Name\",\"PodCIDR\",\"Address\"}]}\n"
          "  --kube     peers from the Kubernetes API: nodes with spec.podCIDR and the\n"
          "             annotation " TSOR_KUBE_ANNOTATION " (in-cluster credentials by default),\n"
          "             watched, and listed again every --peers-refresh seconds (300)\n"
          "  --socket   unix socket sandboxes attach to (default /run/quark/tsord.sock)\n"
          "  --fabric   node-to-node fabric; auto = verbs if an RDMA device exists, else tcp\n"
          "  --ingress  take TCP connections to pod IPs arriving in this network namespace\n"
          "             (sk_lookup; needs a local route for the pod CIDR) to the pods over TSoR\n"
          "  --egress   carry pods' connections to addresses no TSoR node owns out through\n"
          "             kernel sockets in this network namespace\n");
}

int main(int argc, char **argv)
{
  struct tsor_daemon_config cfg = {.socket_path = "/run/quark/tsord.sock", .fabric = "auto"};
  const char *log_path = NULL, *level = "Info";
  static const struct option opts[] = {
      {"node", required_argument, NULL, 'n'},   {"peers", required_argument, NULL, 'p'},
      {"socket", required_argument, NULL, 's'}, {"fabric", required_argument, NULL, 'f'},
      {"log", required_argument, NULL, 'l'},    {"log-level", required_argument, NULL, 'L'},
      {"help", no_argument, NULL, 'h'},         {"kube", no_argument, NULL, 'k'},
      {"kube-server", required_argument, NULL, 'S'}, {"kube-token-file", required_argument, NULL, 'T'},
      {"kube-ca-file", required_argument, NULL, 'C'}, {"peers-refresh", required_argument, NULL, 'r'},
      {"ingress", no_argument, NULL, 'i'},     {"egress", no_argument, NULL, 'e'},
      {NULL, 0, NULL, 0},
  };
  int o;
  bool kube = false, ingress = false, egress = false;
  while ((o = getopt_long(argc, argv, "n:p:s:f:l:L:hkS:T:C:r:ie", opts, NULL)) != -1) {
    switch (o) {
    case 'n': cfg.node = optarg; break;
    case 'p': cfg.peers_path = optarg; break;
    case 's': cfg.socket_path = optarg; break;
    case 'f': cfg.fabric = optarg; break;
    case 'l': log_path = optarg; break;
    case 'L': level = optarg; break;
    case 'k': kube = true; break;
    case 'i': ingress = true; break;
    case 'e': egress = true; break;
    case 'S': cfg.kube.server = optarg; break;
    case 'T': cfg.kube.token_file = optarg; break;
    case 'C': cfg.kube.ca_file = optarg; break;
    case 'r': cfg.refresh_s = atoi(optarg); break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (cfg.node == NULL || (cfg.peers_path == NULL) == !kube || (kube && cfg.refresh_s < 0)) {
    usage(stderr);
    return 2;
  }
  q_log_level lv;
  if (q_log_level_parse(level, &lv) < 0) {
    fprintf(stderr, "tsord: bad log level %s\n", level);
    return 2;
  }
  q_cleanup_error q_error *err = NULL;
  if (q_log_init(log_path, lv, "tsord", &err) < 0) {
    fprintf(stderr, "tsord: %s\n", q_error_msg(err));
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  if (tsor_daemon_new(&cfg, &the_daemon, &err) < 0) {
    q_error_log(NULL, "tsord: %s", q_error_msg(err));
    fprintf(stderr, "tsord: %s\n", q_error_msg(err));
    return 1;
  }
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  struct tsor_ingress *ig = NULL;
  if (ingress || egress) {
    struct tsor_ingress_config ic = {.socket_path = cfg.socket_path, .ingress = ingress, .egress = egress};
    tsor_daemon_pod_cidr(the_daemon, &ic.cidr_addr, &ic.cidr_len);
    if (tsor_ingress_start(&ic, &ig, &err) < 0) {
      q_error_log(NULL, "tsord: ingress: %s", q_error_msg(err));
      fprintf(stderr, "tsord: ingress: %s\n", q_error_msg(err)); /* tests look for "tsord: ingress:" */
      tsor_daemon_free(the_daemon);
      return 1;
    }
    q_info(NULL, "tsord: gateway started:%s%s", ingress ? " ingress attached (sk_lookup) for this node's pod CIDR" : "",
           egress ? " egress" : "");
  }
  int r = tsor_daemon_run(the_daemon, &err);
  /* tsord first: its end of the proxy's unix socket closes, so a proxy call
   * waiting on tsord returns (ECONNRESET) and the proxy can see the stop. */
  tsor_daemon_free(the_daemon);
  the_daemon = NULL;
  tsor_ingress_stop(ig);
  return r < 0 ? 1 : 0;
}
