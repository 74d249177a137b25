/* Ring and credit arithmetic shared by tsord and the client library.
 * Internal to tsor/ (the unit tests include it too).
 *
 * Byte rings use free-running 64-bit positions: used = tail - head, never
 * more than the ring size; the offset is pos & (size - 1). Queue rings use
 * free-running 32-bit indices the same way. All functions that read an index
 * the other side wrote validate it, because that side may be a hostile
 * guest: a value that breaks the invariant gives -EPROTO. */
#ifndef TSOR_RING_H
#define TSOR_RING_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "quark/tsor.h"

#define tsor_load_acq(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define tsor_store_rel(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define tsor_fence() __atomic_thread_fence(__ATOMIC_SEQ_CST)

static inline bool tsor_is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

/* Bytes readable between head and tail; -EPROTO if the pair is impossible. */
static inline int64_t tsor_bring_used(uint64_t head, uint64_t tail, uint32_t size) {
  if (tail - head > size) return -EPROTO;
  return (int64_t)(tail - head);
}

/* Copies len bytes into the ring at position pos (wrapping). */
static inline void tsor_bring_put(char *ring, uint32_t size, uint64_t pos, const void *src, size_t len) {
  uint32_t off = (uint32_t)(pos & (size - 1));
  size_t first = size - off < len ? size - off : len;
  memcpy(ring + off, src, first);
  if (len > first) memcpy(ring, (const char *)src + first, len - first);
}

static inline void tsor_bring_get(const char *ring, uint32_t size, uint64_t pos, void *dst, size_t len) {
  uint32_t off = (uint32_t)(pos & (size - 1));
  size_t first = size - off < len ? size - off : len;
  memcpy(dst, ring + off, first);
  if (len > first) memcpy((char *)dst + first, ring, len - first);
}

/* Longest run starting at pos that does not wrap. */
static inline uint32_t tsor_bring_contig(uint32_t size, uint64_t pos) {
  return size - (uint32_t)(pos & (size - 1));
}

/* ---- SPSC queue of entries (request and completion rings) ---- */

static inline int tsor_q_used(uint32_t head, uint32_t tail, uint32_t entries) {
  uint32_t used = tail - head;
  return used > entries ? -EPROTO : (int)used;
}

/* ---- byte credits ----
 * The sender may have at most `window` bytes written into the peer's read
 * ring and not yet consumed there. `acked` is the consumer's cumulative
 * count; it only grows and never passes `sent`. */
struct tsor_credit {
  uint64_t sent;   /* bytes written to the peer's ring */
  uint64_t acked;  /* bytes the peer's reader consumed */
  uint32_t window; /* the peer ring's size */
};

static inline uint64_t tsor_credit_avail(const struct tsor_credit *c) {
  return c->window - (c->sent - c->acked);
}

/* Applies a cumulative consumed count from the peer. */
static inline int tsor_credit_ack(struct tsor_credit *c, uint64_t consumed) {
  if (consumed < c->acked || consumed > c->sent) return -EPROTO;
  c->acked = consumed;
  return 0;
}

static inline int tsor_credit_take(struct tsor_credit *c, uint64_t n) {
  if (n > tsor_credit_avail(c)) return -ENOSPC;
  c->sent += n;
  return 0;
}

/* How much a reader should have consumed before it reports credits back:
 * often enough that a sender blocked on a full ring is released (any
 * threshold <= window works because a reader drains what it asked for),
 * rarely enough that small messages do not each cost a control message. */
static inline bool tsor_credit_should_report(uint64_t consumed, uint64_t reported, uint32_t window) {
  return consumed - reported >= window / 4;
}

#endif
