/* SPDX-License-Identifier: MIT */
/*
 * Bounded lock-free multi-producer / single-consumer request ring.
 *
 * Producers: any thread, through plx__ring_push(). Consumer: the reactor's
 * owner thread only, through plx__ring_pop().
 *
 * Design: a power-of-two array of cells, each with a sequence number
 * (D. Vyukov's bounded queue, specialised to one consumer). Cell i of lap L
 * is free for the producer that claims position p = L*cap + i when
 * seq == p, and holds a published item when seq == p + 1. The consumer
 * frees it for the next lap by storing seq = p + cap.
 *
 * Invariants:
 *  - tail counts claimed positions, head consumed ones; head <= tail <=
 *    head + cap. tail is written only by producer CAS, head only by the
 *    consumer.
 *  - a cell's data is written only by the producer that claimed its
 *    position, read only by the consumer after it saw seq == p + 1.
 *
 * Ordering edges:
 *  R1 (push, store_release of seq = p + 1) publishes the data written
 *     before it; pairs with A1 (pop, load_acquire of seq).
 *  R2 (pop, store_release of seq = p + cap) hands the cell back after the
 *     data was read; pairs with A2 (push, load_acquire of seq), so a
 *     producer never overwrites data the consumer is still reading.
 *  S1 (push, seq_cst CAS on tail) and S2 (arm, seq_cst load of tail) are in
 *     one total order with the reactor's sleep flag (see reactor.c,
 *     "doorbell"): either the consumer sees the claimed position, or the
 *     producer sees the sleep flag and rings the doorbell.
 *
 * Progress: producers are lock-free (a CAS fails only because another
 * producer claimed the position). A producer that stalls between its CAS
 * and R1 holds back the consumer at that cell (later items wait behind it);
 * nothing is lost, and plx__ring_pending() keeps reporting work so the
 * reactor does not sleep on it.
 *
 * Full: push returns PLX_EAGAIN without touching the ring; nothing blocks
 * or allocates.
 */
#ifndef PLX_REACTOR_RING_H
#define PLX_REACTOR_RING_H

#include <stdint.h>

#include "pollux/status.h"
#include "reactor/atomic.h"

struct plx__ring_cell {
	uint64_t seq;
	void *data;
};

struct plx__ring {
	/* read-only after init, shared by everyone */
	PLX_ALIGNAS(PLX__CACHELINE) uint64_t mask;
	struct plx__ring_cell *cells;
	/* producer side: claimed positions */
	PLX_ALIGNAS(PLX__CACHELINE) uint64_t tail;
	/* consumer side: next position to consume (owner thread only) */
	PLX_ALIGNAS(PLX__CACHELINE) uint64_t head;
};

_Static_assert(__builtin_offsetof(struct plx__ring, head) -
			       __builtin_offsetof(struct plx__ring, tail) >=
		       PLX__CACHELINE,
	       "ring head and tail must sit on separate cache lines");

/* Bytes plx__ring_init() needs for @cap cells (cap: power of two). */
static inline uint64_t plx__ring_cells_size(uint32_t cap)
{
	return (uint64_t)cap * sizeof(struct plx__ring_cell);
}

/* Format @ring over @cells (cap entries). cap must be a power of two. */
void plx__ring_init(struct plx__ring *ring, struct plx__ring_cell *cells,
		    uint32_t cap);

/* Any thread. Return 0 or PLX_EAGAIN (full). */
static inline int plx__ring_push(struct plx__ring *ring, void *data)
{
	uint64_t pos = plx__load_relaxed(&ring->tail);
	struct plx__ring_cell *c;

	for (;;) {
		c = &ring->cells[pos & ring->mask];
		/* A2: the cell is free only once the consumer released it;
		 * pairs with R2 in plx__ring_pop(). */
		uint64_t seq = plx__load_acquire(&c->seq);
		int64_t diff = (int64_t)(seq - pos);

		if (diff == 0) {
			/* S1: claim the position; seq_cst so it is ordered
			 * against the sleep flag read that follows in the
			 * caller (see reactor.c, doorbell). */
			if (plx__cas_seq_cst(&ring->tail, &pos, pos + 1))
				break;
			/* pos was reloaded by the failed CAS */
		} else if (diff < 0) {
			/* the cell still holds last lap's item: full */
			return PLX_EAGAIN;
		} else {
			pos = plx__load_relaxed(&ring->tail);
		}
	}
	c->data = data;
	/* R1: publish data; pairs with A1 in plx__ring_pop(). */
	plx__store_release(&c->seq, pos + 1);
	return 0;
}

/* Owner thread. Return the oldest published item, or NULL. */
static inline void *plx__ring_pop(struct plx__ring *ring)
{
	uint64_t pos = ring->head;
	struct plx__ring_cell *c = &ring->cells[pos & ring->mask];
	void *data;

	/* A1: pairs with R1 in plx__ring_push(). */
	if (plx__load_acquire(&c->seq) != pos + 1)
		return (void *)0;
	data = c->data;
	/* R2: hand the cell to the producer of the next lap; pairs with A2. */
	plx__store_release(&c->seq, pos + ring->mask + 1);
	ring->head = pos + 1;
	return data;
}

/* Owner thread. Nonzero when a position was claimed but not consumed. */
static inline int plx__ring_pending_seq_cst(struct plx__ring *ring)
{
	/* S2: pairs with S1; see reactor.c, doorbell. */
	return plx__load_seq_cst(&ring->tail) != ring->head;
}

#endif /* PLX_REACTOR_RING_H */
