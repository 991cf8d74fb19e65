/* SPDX-License-Identifier: MIT */
#include "reactor/ring.h"

void plx__ring_init(struct plx__ring *ring, struct plx__ring_cell *cells,
		    uint32_t cap)
{
	ring->tail = 0;
	ring->head = 0;
	ring->mask = cap - 1;
	ring->cells = cells;
	for (uint32_t i = 0; i < cap; i++) {
		cells[i].seq = i;
		cells[i].data = (void *)0;
	}
}
