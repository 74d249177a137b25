/* The peers file: pod CIDR -> node. */
#include <arpa/inet.h>
#include <errno.h>
#include <criterion/criterion.h>

#include "quark/tsor.h"

static uint32_t ip(const char *s)
{
  struct in_addr a;
  inet_pton(AF_INET, s, &a);
  return a.s_addr;
}

Test(peers, parse_and_lookup)
{
  struct tsor_peers p;
  q_error *err = NULL;
  int r = tsor_peers_parse("{\"Nodes\":[{\"Name\":\"a\",\"PodCIDR\":\"10.1.0.0/24\",\"Address\":\"10.0.0.1:7470\"},"
                           "{\"Name\":\"b\",\"PodCIDR\":\"10.1.1.0/24\",\"Address\":\"10.0.0.2:7470\"}]}",
                           &p, &err);
  cr_assert_eq(r, 0, "%s", q_error_msg(err));
  cr_assert_eq(p.n, 2);
  cr_assert_str_eq(tsor_peers_lookup(&p, ip("10.1.1.77"))->name, "b");
  cr_assert_str_eq(tsor_peers_lookup(&p, ip("10.1.0.0"))->name, "a");
  cr_assert_null(tsor_peers_lookup(&p, ip("10.1.2.1")));
  cr_assert_str_eq(tsor_peers_find(&p, "a")->address, "10.0.0.1:7470");
  cr_assert_null(tsor_peers_find(&p, "c"));
  tsor_peers_free(&p);
}

static void expect_error(const char *json, const char *needle)
{
  struct tsor_peers p;
  q_error *err = NULL;
  cr_assert_lt(tsor_peers_parse(json, &p, &err), 0, "%s should fail", json);
  cr_assert(strstr(q_error_msg(err), needle) != NULL, "message \"%s\" lacks \"%s\"", q_error_msg(err), needle);
  q_error_free(&err);
}

Test(peers, rejects_bad_files)
{
  expect_error("{", "peers: line");
  expect_error("{\"Nodes\":{}}", "must be an array");
  expect_error("{\"Nodes\":[{\"Name\":\"a\",\"PodCIDR\":\"10.1.0.0/24\"}]}", "needs string");
  expect_error("{\"Nodes\":[{\"Name\":\"a\",\"PodCIDR\":\"10.1.0.1/24\",\"Address\":\"1.2.3.4:1\"}]}", "bad PodCIDR");
  expect_error("{\"Nodes\":[{\"Name\":\"a\",\"PodCIDR\":\"10.1.0.0/33\",\"Address\":\"1.2.3.4:1\"}]}", "bad PodCIDR");
  expect_error("{\"Nodes\":[{\"Name\":\"a\",\"PodCIDR\":\"10.1.0.0/24\",\"Address\":\"1.2.3.4\"}]}", "bad Address");
  expect_error("{\"Nodes\":[{\"Name\":\"a\",\"PodCIDR\":\"10.1.0.0/24\",\"Address\":\"1.2.3.4:70000\"}]}", "bad Address");
  expect_error("{\"Nodes\":[{\"Name\":\"a\",\"PodCIDR\":\"10.1.0.0/24\",\"Address\":\"1.2.3.4:1\"},"
               "{\"Name\":\"a\",\"PodCIDR\":\"10.2.0.0/24\",\"Address\":\"1.2.3.5:1\"}]}",
               "listed twice");
  expect_error("{\"Nodes\":[{\"Name\":\"a\",\"PodCIDR\":\"10.1.0.0/16\",\"Address\":\"1.2.3.4:1\"},"
               "{\"Name\":\"b\",\"PodCIDR\":\"10.1.5.0/24\",\"Address\":\"1.2.3.5:1\"}]}",
               "overlaps");
}

Test(peers, cidr_and_hostport)
{
  uint32_t a;
  uint8_t l;
  cr_assert_eq(tsor_parse_cidr("0.0.0.0/0", &a, &l), 0);
  cr_assert_eq(l, 0);
  cr_assert_eq(tsor_parse_cidr("10.0.0.5/32", &a, &l), 0);
  cr_assert_eq(tsor_parse_cidr("10.0.0.5", &a, &l), -EINVAL);
  cr_assert_eq(tsor_parse_cidr("10.0.0.0/x", &a, &l), -EINVAL);
  struct sockaddr_in sa;
  cr_assert_eq(tsor_parse_hostport("127.0.0.1:80", &sa), 0);
  cr_assert_eq(ntohs(sa.sin_port), 80);
  cr_assert_eq(tsor_parse_hostport("127.0.0.1:0", &sa), -EINVAL);
  cr_assert_eq(tsor_parse_hostport("host:80", &sa), -EINVAL);
}

Test(peers, load_missing_file)
{
  struct tsor_peers p;
  q_error *err = NULL;
  cr_assert_lt(tsor_peers_load("/nonexistent/peers.json", &p, &err), 0);
  cr_assert(strstr(q_error_msg(err), "/nonexistent/peers.json") != NULL);
  q_error_free(&err);
}

Test(kube, nodelist_to_peers)
{
  const char *list =
      "{\"kind\":\"NodeList\",\"items\":["
      "{\"metadata\":{\"name\":\"n1\",\"annotations\":{\"" TSOR_KUBE_ANNOTATION "\":\"10.0.0.1:7470\"}},"
      "\"spec\":{\"podCIDR\":\"10.244.1.0/24\"}},"
      "{\"metadata\":{\"name\":\"plain\"},\"spec\":{\"podCIDR\":\"10.244.2.0/24\"}},"
      "{\"metadata\":{\"name\":\"new\",\"annotations\":{\"" TSOR_KUBE_ANNOTATION "\":\"10.0.0.3:7470\"}},\"spec\":{}},"
      "{\"metadata\":{\"name\":\"n4\",\"annotations\":{\"" TSOR_KUBE_ANNOTATION "\":\"10.0.0.4:7470\"}},"
      "\"spec\":{\"podCIDR\":\"10.244.4.0/24\"}}]}";
  struct tsor_peers p;
  q_error *err = NULL;
  cr_assert_eq(tsor_peers_from_nodelist(list, &p, &err), 0, "%s", q_error_msg(err));
  cr_assert_eq(p.n, 2, "nodes without the annotation or a pod CIDR are not TSoR nodes");
  cr_assert_str_eq(tsor_peers_lookup(&p, ip("10.244.4.9"))->name, "n4");
  cr_assert_null(tsor_peers_lookup(&p, ip("10.244.2.9")));
  tsor_peers_free(&p);
}

Test(kube, nodelist_errors)
{
  struct tsor_peers p;
  q_error *err = NULL;
  cr_assert_lt(tsor_peers_from_nodelist("{\"kind\":\"Status\"}", &p, &err), 0);
  cr_assert(strstr(q_error_msg(err), "items") != NULL);
  q_error_free(&err);
  const char *bad =
      "{\"items\":[{\"metadata\":{\"name\":\"x\",\"annotations\":{\"" TSOR_KUBE_ANNOTATION "\":\"nope\"}},"
      "\"spec\":{\"podCIDR\":\"10.244.1.0/24\"}}]}";
  cr_assert_lt(tsor_peers_from_nodelist(bad, &p, &err), 0);
  cr_assert(strstr(q_error_msg(err), "bad Address") != NULL, "%s", q_error_msg(err));
  q_error_free(&err);
}

Test(kube, no_cluster)
{
  unsetenv("KUBERNETES_SERVICE_HOST");
  struct tsor_kube_config cfg = {0};
  struct tsor_peers p;
  q_error *err = NULL;
  cr_assert_eq(tsor_kube_list_peers(&cfg, &p, &err), -ENOENT);
  cr_assert(strstr(q_error_msg(err), "not in a cluster") != NULL);
  q_error_free(&err);
}
