/* SPDX-License-Identifier: MIT */
/*
 * GPUDirect RDMA, the CUDA side: device memory exported as a dma-buf by
 * the CUDA driver (cuMemGetHandleForAddressRange, reached through the
 * runtime's cudaGetDriverEntryPointByVersion, CUDA 12.5 and later) for the
 * RDMA transport's ibv_reg_dmabuf_mr(), the plx_cuda_config.gpudirect
 * knob, and the path each device region took. The order (dma-buf, then
 * ibv_reg_mr, then staging) is the RDMA transport's: rdma_region_add() in
 * transport/rdma/rdma.c. docs/cuda.md, "GPUDirect RDMA".
 */
#include <stdint.h>
#include <unistd.h>

#include <cuda.h>

#include "reactor/internal.h"
#include "transport/cuda/cuda_internal.h"
#include "transport/transport.h"

/* The two driver calls, as the runtime hands them out: cuda.h's
 * prototypes (checked below), cuMemGetAddressRange being its _v2. */
typedef CUresult (*plx__cu_range_fn)(CUdeviceptr *base, size_t *size,
				     CUdeviceptr dptr);
typedef CUresult (*plx__cu_handle_fn)(void *handle, CUdeviceptr dptr,
				      size_t size, CUmemRangeHandleType type,
				      unsigned long long flags);
_Static_assert(__builtin_types_compatible_p(
		       __typeof__(&cuMemGetAddressRange_v2), plx__cu_range_fn),
	       "cuMemGetAddressRange_v2 prototype");
_Static_assert(
	__builtin_types_compatible_p(__typeof__(&cuMemGetHandleForAddressRange),
				     plx__cu_handle_fn),
	"cuMemGetHandleForAddressRange prototype");

/* The ABI version the symbols are asked for: CUDA 12.0 (the dma-buf
 * export exists since 11.7; a driver older than 12.0 says
 * cudaErrorInvalidValue). */
#define PLX__CU_ABI 12000

/* A driver entry point, or NULL (old runtime, old driver, no symbol). */
static void *entry(struct plx__cuda *c, const char *symbol)
{
	enum cudaDriverEntryPointQueryResult q =
		cudaDriverEntryPointSymbolNotFound;
	void *fn = NULL;
	cudaError_t e;

	if (!c->rt->GetDriverEntryPointByVersion)
		return NULL;
	e = c->rt->GetDriverEntryPointByVersion(symbol, &fn, PLX__CU_ABI,
						cudaEnableDefault, &q);
	if (e != cudaSuccess) {
		c->rt->GetLastError(); /* not sticky: clear it */
		plx__cuda_err(c, e);
		return NULL;
	}
	return q == cudaDriverEntryPointSuccess ? fn : NULL;
}

int plx__cuda_gpudirect(struct plx_reactor *r)
{
	struct plx__cuda *c = plx__cuda_of(r);

	return c && c->cfg.gpudirect != PLX_CUDA_GPUDIRECT_OFF;
}

int plx__cuda_dmabuf(struct plx_reactor *r, const struct plx_region *reg,
		     int *fd, uint64_t *offset)
{
	struct plx__cuda *c = plx__cuda_of(r);
	uint64_t ps = (uint64_t)sysconf(_SC_PAGESIZE), base, end;
	int dev = (int)(uintptr_t)reg->plx_transport[PLX__TSLOT_CUDA] - 1;
	plx__cu_handle_fn get_handle;
	plx__cu_range_fn get_range;
	CUdeviceptr b = 0;
	size_t sz = 0;
	int cur = -1, h = -1;
	CUresult res;

	if (!c)
		return PLX_EUNAVAIL;
	*(void **)&get_handle = entry(c, "cuMemGetHandleForAddressRange");
	if (!get_handle) {
		plx__log(c->x, PLX_LOG_INFO,
			 "gpudirect: the CUDA runtime cannot export dma-bufs "
			 "(needs CUDA 12.5 and a driver with "
			 "cuMemGetHandleForAddressRange), trying ibv_reg_mr");
		return PLX_ENOTSUP;
	}
	*(void **)&get_range = entry(c, "cuMemGetAddressRange");
	/* The driver calls act on the current context: the memory's device
	 * for their length, the caller's again after. */
	if (c->rt->GetDevice(&cur) != cudaSuccess)
		cur = -1;
	if (dev >= 0 && c->rt->SetDevice(dev) != cudaSuccess)
		c->rt->GetLastError();
	/* The page-aligned allocation around the region, as NCCL and UCX
	 * export it (the driver wants page-aligned ranges); without the
	 * range call, the region itself, page-aligned. */
	base = reg->plx_addr;
	end = reg->plx_addr + reg->plx_len;
	if (get_range &&
	    get_range(&b, &sz, (CUdeviceptr)reg->plx_addr) == CUDA_SUCCESS &&
	    b <= base && end - b <= sz) {
		base = b;
		end = b + sz;
	}
	base &= ~(ps - 1);
	end = (end + ps - 1) & ~(ps - 1);
	res = get_handle(&h, (CUdeviceptr)base, (size_t)(end - base),
			 CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, 0);
	if (cur >= 0 && cur != dev && c->rt->SetDevice(cur) != cudaSuccess)
		c->rt->GetLastError();
	if (res != CUDA_SUCCESS || h < 0) {
		/* driver codes: the runtime's numbers for these */
		int rc = plx__cuda_err(c, res != CUDA_SUCCESS ?
						  (cudaError_t)res :
						  cudaErrorUnknown);

		plx__log(c->x, PLX_LOG_INFO,
			 "gpudirect: no dma-buf for device memory at %#llx "
			 "(cuMemGetHandleForAddressRange: CUresult %d), trying "
			 "ibv_reg_mr",
			 (unsigned long long)reg->plx_addr, (int)res);
		return rc;
	}
	*fd = h;
	*offset = reg->plx_addr - base;
	return 0;
}

int plx_cuda_region_path(struct plx_reactor *r, const struct plx_region *reg)
{
	struct plx_desc d;
	uintptr_t p;
	int rc;

	if (!r || !reg)
		return PLX_EINVAL;
	PLX__ASSERT_OWNER(plx__r(r));
	if (!plx__cuda_of(r))
		return PLX_EUNAVAIL;
	rc = plx_mem_desc(r, reg, &d);
	if (rc)
		return rc;
	if (!(d.hints & PLX_HINT_CUDA))
		return PLX_CUDA_PATH_NONE;
	p = (uintptr_t)reg->plx_transport[PLX__TSLOT_GDR];
	return p ? (int)p : PLX_CUDA_PATH_STAGING;
}
