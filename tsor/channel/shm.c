/* Arena layout shared by tsord and its clients (see tsor.h). */
#include <errno.h>
#include <string.h>

#include "channel/ring.h"
#include "quark/tsor.h"

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

int tsor_shm_layout(uint32_t nslots, uint32_t ring_size, struct tsor_shm_hdr *h)
{
  if (nslots == 0 || nslots > TSOR_MAX_SLOTS || !tsor_is_pow2(ring_size) || ring_size < TSOR_MIN_RING ||
      ring_size > TSOR_MAX_RING)
    return -EINVAL;
  memset(h, 0, sizeof(*h));
  h->magic = TSOR_SHM_MAGIC;
  h->version = TSOR_SHM_VERSION;
  h->nslots = nslots;
  h->ring_size = ring_size;
  h->qentries = TSOR_QRING_ENTRIES;
  uint64_t off = align_up(sizeof(*h), 4096);
  h->req_off = off;
  off = align_up(off + (uint64_t)h->qentries * sizeof(struct tsor_shm_req), 4096);
  h->cq_off = off;
  off = align_up(off + (uint64_t)h->qentries * sizeof(struct tsor_shm_cqe), 4096);
  h->slots_off = off;
  off = align_up(off + (uint64_t)nslots * sizeof(struct tsor_shm_slot), 4096);
  h->data_off = off;
  h->size = off + (uint64_t)nslots * 2u * ring_size;
  return 0;
}

int tsor_shm_check(const struct tsor_shm_hdr *h, uint64_t size)
{
  struct tsor_shm_hdr want;
  if (h->magic != TSOR_SHM_MAGIC || h->version != TSOR_SHM_VERSION) return -EPROTO;
  if (tsor_shm_layout(h->nslots, h->ring_size, &want) < 0) return -EINVAL;
  if (h->qentries != want.qentries || h->req_off != want.req_off || h->cq_off != want.cq_off ||
      h->slots_off != want.slots_off || h->data_off != want.data_off || h->size != want.size)
    return -EINVAL;
  if (size < want.size) return -EINVAL;
  return 0;
}

uint64_t tsor_shm_arena_size(uint32_t slots, uint32_t ring_size)
{
  struct tsor_shm_hdr h;
  if (tsor_shm_layout(slots ? slots : TSOR_DEFAULT_SLOTS, ring_size ? ring_size : TSOR_DEFAULT_RING, &h) < 0) return 0;
  return h.size;
}
