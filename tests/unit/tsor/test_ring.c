/* Rings, credits, immediates and the arena layout. */
#include <criterion/criterion.h>

#include "channel/ring.h"

Test(ring, put_get_wraps)
{
  char ring[16], out[16];
  const char *msg = "0123456789";
  tsor_bring_put(ring, sizeof(ring), 12, msg, 10); /* 4 at the end, 6 at the start */
  cr_assert(memcmp(ring + 12, "0123", 4) == 0);
  cr_assert(memcmp(ring, "456789", 6) == 0);
  tsor_bring_get(ring, sizeof(ring), 12 + 16 * 3, out, 10); /* positions are free-running */
  cr_assert(memcmp(out, msg, 10) == 0);
}

Test(ring, used_rejects_impossible_indices)
{
  cr_assert_eq(tsor_bring_used(100, 100, 64), 0);
  cr_assert_eq(tsor_bring_used(100, 164, 64), 64);
  cr_assert_eq(tsor_bring_used(100, 165, 64), -EPROTO); /* more than the ring holds */
  cr_assert_eq(tsor_bring_used(100, 99, 64), -EPROTO);  /* tail behind head */
  cr_assert_eq(tsor_bring_used(UINT64_MAX - 3, 4, 64), 8); /* 64-bit wrap */
}

Test(ring, contig)
{
  cr_assert_eq(tsor_bring_contig(4096, 0), 4096);
  cr_assert_eq(tsor_bring_contig(4096, 4095), 1);
  cr_assert_eq(tsor_bring_contig(4096, 4096 * 7 + 100), 3996);
}

Test(ring, queue_indices)
{
  cr_assert_eq(tsor_q_used(5, 5, 8), 0);
  cr_assert_eq(tsor_q_used(UINT32_MAX, 3, 8), 4);
  cr_assert_eq(tsor_q_used(0, 9, 8), -EPROTO);
}

Test(credit, window_and_acks)
{
  struct tsor_credit c = {.window = 1000};
  cr_assert_eq(tsor_credit_avail(&c), 1000);
  cr_assert_eq(tsor_credit_take(&c, 600), 0);
  cr_assert_eq(tsor_credit_avail(&c), 400);
  cr_assert_eq(tsor_credit_take(&c, 401), -ENOSPC, "a sender never overruns the peer ring");
  cr_assert_eq(tsor_credit_ack(&c, 601), -EPROTO, "cannot consume what was not sent");
  cr_assert_eq(tsor_credit_ack(&c, 500), 0);
  cr_assert_eq(tsor_credit_avail(&c), 900);
  cr_assert_eq(tsor_credit_ack(&c, 400), -EPROTO, "consumed count only grows");
  cr_assert_eq(tsor_credit_take(&c, 900), 0);
  cr_assert_eq(tsor_credit_avail(&c), 0);
}

Test(credit, report_threshold)
{
  cr_assert(!tsor_credit_should_report(100, 0, 1024));
  cr_assert(tsor_credit_should_report(256, 0, 1024));
  cr_assert(tsor_credit_should_report(1024 + 300, 1024, 1024));
}

Test(imm, encoding)
{
  uint32_t i = tsor_imm_make(12345, false);
  cr_assert_eq(tsor_imm_chan(i), 12345);
  cr_assert(!tsor_imm_fin(i));
  i = tsor_imm_make(TSOR_CHAN_MAX, true);
  cr_assert_eq(tsor_imm_chan(i), TSOR_CHAN_MAX);
  cr_assert(tsor_imm_fin(i));
  cr_assert_eq(tsor_imm_chan(tsor_imm_make(0, true)), 0);
}

Test(shm, layout_and_check)
{
  struct tsor_shm_hdr h;
  cr_assert_eq(tsor_shm_layout(64, 65536, &h), 0);
  cr_assert_eq(h.req_off % 4096, 0);
  cr_assert_eq(h.data_off % 4096, 0);
  cr_assert(h.cq_off >= h.req_off + h.qentries * sizeof(struct tsor_shm_req));
  cr_assert(h.slots_off >= h.cq_off + h.qentries * sizeof(struct tsor_shm_cqe));
  cr_assert(h.data_off >= h.slots_off + 64 * sizeof(struct tsor_shm_slot));
  cr_assert_eq(h.size, h.data_off + 64ull * 2 * 65536);
  cr_assert_eq(tsor_shm_tx_off(&h, 1), tsor_shm_rx_off(&h, 1) + 65536);
  cr_assert_eq(tsor_shm_rx_off(&h, 2), tsor_shm_tx_off(&h, 1) + 65536);
  cr_assert_eq(tsor_shm_check(&h, h.size), 0);
  cr_assert_eq(tsor_shm_check(&h, h.size - 1), -EINVAL, "arena smaller than its layout");
  struct tsor_shm_hdr bad = h;
  bad.data_off -= 4096;
  cr_assert_eq(tsor_shm_check(&bad, h.size), -EINVAL);
  bad = h;
  bad.magic = 0;
  cr_assert_eq(tsor_shm_check(&bad, h.size), -EPROTO);
  cr_assert_eq(tsor_shm_layout(64, 65535, &h), -EINVAL, "ring size must be a power of two");
  cr_assert_eq(tsor_shm_layout(0, 65536, &h), -EINVAL);
  cr_assert_eq(tsor_shm_layout(64, TSOR_MAX_RING * 2, &h), -EINVAL);
}

Test(shm, slot_indices_on_separate_lines)
{
  cr_assert_eq(offsetof(struct tsor_shm_slot, rx_head) % TSOR_CACHELINE, 0);
  cr_assert_neq(offsetof(struct tsor_shm_slot, rx_head) / TSOR_CACHELINE,
                offsetof(struct tsor_shm_slot, rx_tail) / TSOR_CACHELINE);
  cr_assert_neq(offsetof(struct tsor_shm_qidx, head) / TSOR_CACHELINE,
                offsetof(struct tsor_shm_qidx, tail) / TSOR_CACHELINE);
}
