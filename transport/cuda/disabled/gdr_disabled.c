/* SPDX-License-Identifier: MIT */
/*
 * GPUDirect RDMA's CUDA side in a build without the CUDA support: no
 * region is ever device memory, so nothing gets here but the public
 * getter, which finds no CUDA transport.
 */
#include "pollux/cuda.h"
#include "transport/transport.h"

int plx__cuda_gpudirect(struct plx_reactor *r)
{
	(void)r;
	return 0;
}

int plx__cuda_dmabuf(struct plx_reactor *r, const struct plx_region *reg,
		     int *fd, uint64_t *offset)
{
	(void)r;
	(void)reg;
	(void)fd;
	(void)offset;
	return PLX_ENOTSUP;
}

int plx_cuda_region_path(struct plx_reactor *r, const struct plx_region *reg)
{
	if (!r || !reg)
		return PLX_EINVAL;
	return PLX_EUNAVAIL;
}
