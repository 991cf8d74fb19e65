/* SPDX-License-Identifier: MIT */
/* CUDA transport internals shared by transport/cuda/ files. */
#ifndef PLX_CUDA_INTERNAL_H
#define PLX_CUDA_INTERNAL_H

#include "pollux/cuda.h"
#include "transport/cuda/loader.h"

struct plx__reactor;

struct plx__cuda {
	struct plx__reactor *x;
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
};

#endif /* PLX_CUDA_INTERNAL_H */
