/* The pod's name files: resolv.conf from the CRI DNSConfig, hosts with the
 * pod's hostname and IPs, hostname. */
#include "net_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* One word of a resolv.conf line: no whitespace, so nothing can inject a
 * line of its own. */
static bool plain_word(const char *s)
{
  if (s == NULL || *s == '\0')
    return false;
  for (; *s; s++)
    if (isspace((unsigned char)*s) || !isprint((unsigned char)*s))
      return false;
  return true;
}

static int append(char **buf, size_t *len, const char *fmt, ...) Q_PRINTF(3, 4);
static int append(char **buf, size_t *len, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0)
    return -ENOMEM;
  char *nb = realloc(*buf, *len + (size_t)n + 1);
  if (nb == NULL) {
    free(s);
    return -ENOMEM;
  }
  memcpy(nb + *len, s, (size_t)n + 1);
  *len += (size_t)n;
  *buf = nb;
  free(s);
  return 0;
}

static int append_words(char **buf, size_t *len, const char *head, const char *const *v, size_t n,
                        const char *sep)
{
  if (n == 0)
    return 0;
  int r = append(buf, len, "%s", head);
  for (size_t i = 0; r == 0 && i < n; i++)
    r = append(buf, len, "%s%s", i ? sep : "", v[i]);
  if (r == 0)
    r = append(buf, len, "\n");
  return r;
}

int net_render_resolv_conf(const net_dns_config *dns, char **out, q_error **err)
{
  net_dns_config none = {0};
  if (dns == NULL)
    dns = &none;
  for (size_t i = 0; i < dns->n_servers; i++) {
    unsigned char b[16];
    if (!plain_word(dns->servers[i]) || (inet_pton(AF_INET, dns->servers[i], b) != 1 &&
                                         inet_pton(AF_INET6, dns->servers[i], b) != 1))
      return q_error_make(err, EINVAL, "DNS server \"%s\" is not an IP address",
                          dns->servers[i] ? dns->servers[i] : "");
  }
  for (size_t i = 0; i < dns->n_searches; i++)
    if (!plain_word(dns->searches[i]))
      return q_error_make(err, EINVAL, "DNS search domain \"%s\"",
                          dns->searches[i] ? dns->searches[i] : "");
  for (size_t i = 0; i < dns->n_options; i++)
    if (!plain_word(dns->options[i]))
      return q_error_make(err, EINVAL, "DNS option \"%s\"", dns->options[i] ? dns->options[i] : "");
  /* containerd's order: search, nameserver (one line each), options. */
  char *buf = strdup("");
  size_t len = 0;
  int r = buf ? 0 : -ENOMEM;
  if (r == 0)
    r = append_words(&buf, &len, "search ", dns->searches, dns->n_searches, " ");
  if (r == 0)
    r = append_words(&buf, &len, "nameserver ", dns->servers, dns->n_servers, "\nnameserver ");
  if (r == 0)
    r = append_words(&buf, &len, "options ", dns->options, dns->n_options, " ");
  if (r < 0) {
    free(buf);
    return q_error_make(err, ENOMEM, "resolv.conf");
  }
  *out = buf;
  return 0;
}

static bool valid_hostname(const char *s)
{
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > 253)
    return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.' && *s != '_')
      return false;
  return true;
}

int net_render_hosts(const char *hostname, const char *fqdn, const char *const *ips, size_t n_ips,
                     char **out, q_error **err)
{
  if (!valid_hostname(hostname) || strlen(hostname) > 64)
    return q_error_make(err, EINVAL, "hostname \"%s\"", hostname ? hostname : "");
  if (fqdn != NULL && *fqdn && !valid_hostname(fqdn))
    return q_error_make(err, EINVAL, "host domain name \"%s\"", fqdn);
  for (size_t i = 0; i < n_ips; i++) {
    unsigned char b[16];
    if (ips[i] == NULL ||
        (inet_pton(AF_INET, ips[i], b) != 1 && inet_pton(AF_INET6, ips[i], b) != 1))
      return q_error_make(err, EINVAL, "pod IP \"%s\"", ips[i] ? ips[i] : "");
  }
  /* kubelet's managed hosts file, so tools that parse it see the usual. */
  char *buf = strdup("# Kubernetes-managed hosts file.\n"
                     "127.0.0.1\tlocalhost\n"
                     "::1\tlocalhost ip6-localhost ip6-loopback\n"
                     "fe00::0\tip6-localnet\n"
                     "fe00::0\tip6-mcastprefix\n"
                     "fe00::1\tip6-allnodes\n"
                     "fe00::2\tip6-allrouters\n");
  size_t len = buf ? strlen(buf) : 0;
  int r = buf ? 0 : -ENOMEM;
  for (size_t i = 0; r == 0 && i < n_ips; i++) {
    if (fqdn != NULL && *fqdn && strcmp(fqdn, hostname) != 0)
      r = append(&buf, &len, "%s\t%s\t%s\n", ips[i], fqdn, hostname);
    else
      r = append(&buf, &len, "%s\t%s\n", ips[i], hostname);
  }
  if (r < 0) {
    free(buf);
    return q_error_make(err, ENOMEM, "hosts");
  }
  *out = buf;
  return 0;
}

int net_write_pod_files(const char *dir, const net_dns_config *dns, const char *host_resolv,
                        const char *hostname, const char *fqdn, const char *const *ips,
                        size_t n_ips, q_error **err)
{
  q_cleanup_free char *resolv = NULL;
  q_cleanup_free char *hosts = NULL;
  q_cleanup_free char *name = NULL;
  q_cleanup_free char *path = NULL;
  size_t rlen = 0;
  int r;
  bool empty = dns == NULL || (dns->n_servers == 0 && dns->n_searches == 0 && dns->n_options == 0);
  if (empty) {
    const char *src = host_resolv ? host_resolv : "/etc/resolv.conf";
    if ((r = q_read_file(src, 1 << 20, &resolv, &rlen, err)) < 0)
      return r;
  } else {
    if ((r = net_render_resolv_conf(dns, &resolv, err)) < 0)
      return r;
    rlen = strlen(resolv);
  }
  if ((r = net_render_hosts(hostname, fqdn, ips, n_ips, &hosts, err)) < 0)
    return r;
  if (asprintf(&name, "%s\n", hostname) < 0)
    return q_error_make(err, ENOMEM, "hostname");
  if ((r = q_mkdir_p(dir, 0755, err)) < 0)
    return r;
  static const char *const files[] = {"resolv.conf", "hosts", "hostname"};
  const char *data[] = {resolv, hosts, name};
  size_t lens[] = {rlen, strlen(hosts), strlen(name)};
  for (size_t i = 0; i < 3; i++) {
    free(path);
    path = NULL;
    if (asprintf(&path, "%s/%s", dir, files[i]) < 0)
      return q_error_make(err, ENOMEM, "pod file path");
    /* Not synced: they live in the pod's run dir (/run, gone after a power
     * loss with the pod's sandbox) and cost 6 fsyncs per RunPodSandbox,
     * 10-35 ms at load 14 (ARCHITECTURE.md "Pods"). */
    if ((r = q_write_file_replace(path, data[i], lens[i], 0644, err)) < 0)
      return r;
  }
  return 0;
}
