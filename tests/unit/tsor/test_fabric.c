/* The fabrics' write-with-immediate contract, on real memory and (tcp) real
 * loopback sockets; the verbs backend's device-absent path. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "fabric/fabric.h"

/* Polls until a completion of kind arrives (others are kept in *seen). */
static struct tsor_fabric_cqe wait_kind(struct tsor_fabric *f, enum tsor_fc_kind kind, struct tsor_fconn *conn)
{
  for (int i = 0; i < 5000; i++) {
    struct tsor_fabric_cqe e;
    while (f->ops->poll(f, &e, 1) == 1)
      if (e.kind == kind && (conn == NULL || e.conn == conn)) return e;
    usleep(1000);
  }
  cr_assert_fail("no completion of kind %d", kind);
  return (struct tsor_fabric_cqe){0};
}

struct pair {
  struct tsor_fabric *f;
  struct tsor_fconn *a, *b;
};

static void setup_pair(const struct tsor_fabric_ops *ops, struct pair *p)
{
  q_error *err = NULL;
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int r = -1;
  srand((unsigned)time(NULL) ^ (unsigned)getpid());
  for (int tries = 0; tries < 20 && r < 0; tries++) {
    sa.sin_port = htons((uint16_t)(20000 + rand() % 30000));
    q_error_free(&err);
    r = ops->open(&sa, &p->f, &err);
  }
  cr_assert_eq(r, 0, "%s", q_error_msg(err));
  cr_assert_eq(ops->connect(p->f, &sa, (void *)0x1, &p->a), 0);
  /* Both ends come up: ours (ctx set) and the accepted one (ctx NULL). */
  struct tsor_fabric_cqe e1 = wait_kind(p->f, TSOR_FC_UP, NULL);
  struct tsor_fabric_cqe e2 = wait_kind(p->f, TSOR_FC_UP, NULL);
  p->b = e1.conn == p->a ? e2.conn : e1.conn;
  cr_assert(e1.conn == p->a || e2.conn == p->a);
  cr_assert_null(ops->conn_ctx(p->b));
  cr_assert_eq(ops->conn_ctx(p->a), (void *)0x1);
  ops->set_ctx(p->b, (void *)0x2);
}

static void teardown_pair(struct pair *p)
{
  const struct tsor_fabric_ops *ops = p->f->ops;
  ops->disconnect(p->a);
  bool da = false, db = false;
  for (int i = 0; i < 5000 && !(da && db); i++) {
    struct tsor_fabric_cqe e;
    while (p->f->ops->poll(p->f, &e, 1) == 1) {
      if (e.kind != TSOR_FC_DOWN) continue;
      if (e.conn == p->a) da = true;
      if (e.conn == p->b) db = true;
    }
    if (!(da && db)) usleep(1000);
  }
  cr_assert(da && db, "both ends see DOWN");
  ops->release(p->a);
  ops->release(p->b);
  ops->close(p->f);
}

static void write_imm_contract(const struct tsor_fabric_ops *ops)
{
  struct pair p;
  setup_pair(ops, &p);
  static char src_mem[8192], dst_mem[8192];
  struct tsor_region src, dst;
  cr_assert_eq(ops->reg(p.f, src_mem, sizeof(src_mem), &src, NULL), 0);
  cr_assert_eq(ops->reg(p.f, dst_mem, sizeof(dst_mem), &dst, NULL), 0);
  for (int i = 0; i < 8192; i++) src_mem[i] = (char)(i * 7);
  ops->post_recv(p.b, 4);
  ops->post_recv(p.a, 4);
  /* a -> b: 1000 bytes from src+100 into dst+5000, immediate 0x80000007 */
  cr_assert_eq(ops->write_imm(p.a, &src, 100, 1000, dst.addr + 5000, dst.key, 0x80000007u, 42), 0);
  /* Both completions come, in either order across the two ends. */
  struct tsor_fabric_cqe e, got_recv = {0}, got_done = {0};
  for (int i = 0; i < 5000 && !(got_recv.kind && got_done.kind); i++) {
    while (ops->poll(p.f, &e, 1) == 1) {
      if (e.kind == TSOR_FC_RECV_IMM) got_recv = e;
      if (e.kind == TSOR_FC_WRITE_DONE) got_done = e;
    }
    usleep(200);
  }
  cr_assert_eq(got_recv.conn, p.b);
  cr_assert_eq(got_recv.imm, 0x80000007u);
  cr_assert_eq(got_recv.len, 1000);
  cr_assert(memcmp(dst_mem + 5000, src_mem + 100, 1000) == 0, "bytes landed where named");
  cr_assert_eq(got_done.conn, p.a);
  cr_assert_eq(got_done.wr_id, 42);
  /* zero-length write: only the immediate (FIN) */
  cr_assert_eq(ops->write_imm(p.a, &src, 0, 0, 0, 0, 0x80000001u, 43), 0);
  e = wait_kind(p.f, TSOR_FC_RECV_IMM, p.b);
  cr_assert_eq(e.len, 0);
  /* messages both ways */
  cr_assert_eq(ops->send(p.b, "hello", 5, 7), 0);
  e = wait_kind(p.f, TSOR_FC_RECV_MSG, p.a);
  cr_assert_eq(e.len, 5);
  cr_assert(memcmp(e.msg, "hello", 5) == 0);
  cr_assert_eq(ops->send(p.a, "x", TSOR_FMSG_MAX + 1, 8), -EMSGSIZE);
  ops->dereg(p.f, &src);
  ops->dereg(p.f, &dst);
  teardown_pair(&p);
}

Test(fabric, local_write_imm) { write_imm_contract(&tsor_fabric_local); }
Test(fabric, tcp_write_imm) { write_imm_contract(&tsor_fabric_tcp); }

static void bad_rkey_fails_connection(const struct tsor_fabric_ops *ops)
{
  struct pair p;
  setup_pair(ops, &p);
  static char mem[4096];
  struct tsor_region r;
  cr_assert_eq(ops->reg(p.f, mem, sizeof(mem), &r, NULL), 0);
  ops->post_recv(p.b, 4);
  /* beyond the region: the peer must not write outside registered memory */
  ops->write_imm(p.a, &r, 0, 100, r.addr + 4090, r.key, 1, 1);
  /* Both ends go down; the one that saw the bad write says why. */
  bool da = false, db = false, proto = false;
  for (int i = 0; i < 5000 && !(da && db); i++) {
    struct tsor_fabric_cqe x;
    while (ops->poll(p.f, &x, 1) == 1) {
      if (x.kind != TSOR_FC_DOWN) continue;
      da |= x.conn == p.a;
      db |= x.conn == p.b;
      proto |= x.status == -EPROTO;
    }
    if (!(da && db)) usleep(1000);
  }
  cr_assert(da && db);
  cr_assert(proto, "DOWN carries -EPROTO");
  ops->dereg(p.f, &r);
  ops->release(p.a);
  ops->release(p.b);
  ops->close(p.f);
}

Test(fabric, local_rejects_out_of_region_write) { bad_rkey_fails_connection(&tsor_fabric_local); }
Test(fabric, tcp_rejects_out_of_region_write) { bad_rkey_fails_connection(&tsor_fabric_tcp); }

Test(fabric, local_needs_posted_receive)
{
  struct pair p;
  setup_pair(&tsor_fabric_local, &p);
  cr_assert_eq(tsor_fabric_local.send(p.a, "x", 1, 0), -EPROTO, "no receive posted at the peer");
  wait_kind(p.f, TSOR_FC_DOWN, NULL);
  tsor_fabric_local.release(p.a);
  tsor_fabric_local.release(p.b);
  tsor_fabric_local.close(p.f);
}

Test(fabric, verbs_reports_missing_device)
{
  if (access("/sys/class/infiniband", F_OK) == 0) {
    cr_skip_test("this machine has RDMA devices");
  }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(7470)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct tsor_fabric *f = NULL;
  q_error *err = NULL;
  int r = tsor_fabric_verbs.open(&sa, &f, &err);
  cr_assert_eq(r, -ENODEV);
  cr_assert(strstr(q_error_msg(err), "no RDMA device") != NULL, "%s", q_error_msg(err));
  cr_assert_null(f);
  q_error_free(&err);
}

Test(fabric, by_name)
{
  cr_assert_eq(tsor_fabric_by_name("tcp"), &tsor_fabric_tcp);
  cr_assert_eq(tsor_fabric_by_name("verbs"), &tsor_fabric_verbs);
  cr_assert_eq(tsor_fabric_by_name("local"), &tsor_fabric_local);
  cr_assert_null(tsor_fabric_by_name("udp"));
}

Test(fabric, cq_grows_keeps_order_and_drops_a_conn)
{
  struct tsor_cq q;
  cr_assert_eq(tsor_cq_init(&q), 0);
  struct tsor_fconn *a = (struct tsor_fconn *)0x10, *b = (struct tsor_fconn *)0x20;
  for (uint64_t i = 0; i < 1000; i++) {
    struct tsor_fabric_cqe e = {.kind = TSOR_FC_SEND_DONE, .conn = i % 3 == 1 ? b : a, .wr_id = i};
    cr_assert_eq(tsor_cq_push(&q, &e, false), 0);
  }
  tsor_cq_drop_conn(&q, a);
  struct tsor_fabric_cqe out[8];
  uint64_t want = 1;
  int n, total = 0;
  while ((n = tsor_cq_pop(&q, out, 8)) > 0)
    for (int i = 0; i < n; i++, total++, want += 3) {
      cr_assert_eq(out[i].conn, b);
      cr_assert_eq(out[i].wr_id, want, "FIFO order kept");
    }
  cr_assert_eq(total, 333);
  tsor_cq_destroy(&q);
}
