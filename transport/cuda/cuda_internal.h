/* SPDX-License-Identifier: MIT */
/* CUDA transport internals shared by transport/cuda/ files. */
#ifndef PLX_CUDA_INTERNAL_H
#define PLX_CUDA_INTERNAL_H

#include <stdbool.h>

#include "pollux/cuda.h"
#include "transport/cuda/loader.h"
#include "transport/transport.h"

struct plx__reactor;

struct plx__cuda {
	struct plx__reactor *x;
	struct plx_reactor *r;
	const struct plx__cudart *rt;
	struct plx_cuda_config cfg;
	struct plx_cuda_info info;
	uint64_t attr_calls; /* cudaPointerGetAttributes() calls made */
	/* registered device regions, [addr, end), sorted by addr */
	struct plx__dreg {
		uint64_t addr, end;
		const struct plx_region *reg;
	} * dregs;
	uint32_t ndregs, cap_dregs;

	/* staging (stage.c) */
	struct plx_cuda_stats st;
	uint8_t *pool;
	uint64_t pool_len;
	bool pool_pinned; /* we cudaHostRegister()ed it */
	uint32_t chunk, nslots, nfree;
	uint32_t held[2]; /* slots taken by each side (plx__cuda_get) */
	struct plx__cslot *slots;
	uint8_t *used;		/* per slot: 1 while part of a taken run */
	cudaStream_t stream[2]; /* [0] device to host, [1] host to device */
	struct plx__cslot *qhead[2], *qtail[2];
	uint32_t copies; /* copies in flight */
	bool want_slots; /* a get found none: kick when some come back */
	bool slots_back; /* some came back since */
};

/* cuda.c: the transport attached to @r, or NULL */
struct plx__cuda *plx__cuda_of(struct plx_reactor *r);

/* stage.c */
int plx__cuda_stage_init(struct plx__cuda *c);
void plx__cuda_stage_fini(struct plx__cuda *c);
int plx__cuda_bounce_release(struct plx__cuda *c, const struct plx_region *reg);
int plx__cuda_stage_poll(struct plx__cuda *c, uint32_t budget);
int plx__cuda_err(struct plx__cuda *c, cudaError_t e);

#endif /* PLX_CUDA_INTERNAL_H */
