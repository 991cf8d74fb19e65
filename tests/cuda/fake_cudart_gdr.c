/* SPDX-License-Identifier: MIT */
/*
 * The test double's GPUDirect side and plain allocation calls, built into
 * libplx_fake_cudart.so with fake_cudart.c:
 *
 *  - cudaGetDriverEntryPointByVersion() hands out fake driver calls
 *    cuMemGetAddressRange (the _v2) and cuMemGetHandleForAddressRange.
 *    The export checks what the real one requires (a dma-buf handle type,
 *    no flags, a page-aligned range inside one cudaMalloc() allocation)
 *    and returns a fresh memfd as the "dma-buf" fd: a NIC driver that
 *    supports dma-buf MRs refuses it when it looks; soft-RoCE's provider
 *    refuses every dma-buf before looking (EOPNOTSUPP).
 *  - cudaMalloc() / cudaFree() / cudaMemcpy(): device memory from
 *    fakecuda_alloc() (so it classifies as device memory), page-aligned
 *    like the driver's; cudaMemcpy() copies at once (host memory).
 *
 * fakecuda_gdr_set(entry_points, export_result): entry_points 0 makes the
 * runtime report the driver symbols missing (as a driver older than the
 * dma-buf export); export_result != 0 is the CUresult every export
 * returns. fakecuda_gdr_stat(): "lookups" (entry points asked for),
 * "exports" (export calls), "bad_exports" (of those, arguments the real
 * driver refuses), "last_fd" (the fd of the last successful export),
 * "allocs" (cudaMalloc()ed blocks live).
 */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cuda.h>
#include <cuda_runtime_api.h>

#include "fake_lock.h"

void *fakecuda_alloc(size_t len);
void fakecuda_free(void *p);
void fakecuda_gdr_set(int entry_points, int export_result);
unsigned long fakecuda_gdr_stat(const char *what);

#define GDR_MAX 64

static struct {
	uintptr_t base; /* page-aligned, what cudaMalloc() returned */
	size_t len;	/* rounded up to pages */
	void *raw;	/* from fakecuda_alloc() */
} blocks[GDR_MAX];
static int entry_points = 1;
static CUresult export_result = CUDA_SUCCESS;
static unsigned long lookups, exports, bad_exports, nblocks;
static int last_fd = -1;

static uintptr_t page(void)
{
	return (uintptr_t)sysconf(_SC_PAGESIZE);
}

void fakecuda_gdr_set(int ep, int res)
{
	FAKE_LOCKED;

	entry_points = ep;
	export_result = (CUresult)res;
}

unsigned long fakecuda_gdr_stat(const char *what)
{
	FAKE_LOCKED;

	if (!strcmp(what, "lookups"))
		return lookups;
	if (!strcmp(what, "exports"))
		return exports;
	if (!strcmp(what, "bad_exports"))
		return bad_exports;
	if (!strcmp(what, "last_fd"))
		return (unsigned long)last_fd;
	if (!strcmp(what, "allocs"))
		return nblocks;
	return 0;
}

static int block_of(uintptr_t p)
{
	for (int i = 0; i < GDR_MAX; i++)
		if (blocks[i].base && p >= blocks[i].base &&
		    p - blocks[i].base < blocks[i].len)
			return i;
	return -1;
}

/* ---- driver calls, handed out by the runtime ---------------------------- */

static CUresult fake_get_range(CUdeviceptr *base, size_t *size,
			       CUdeviceptr dptr)
{
	FAKE_LOCKED;
	int i = block_of((uintptr_t)dptr);

	if (i < 0)
		return CUDA_ERROR_NOT_FOUND;
	if (base)
		*base = (CUdeviceptr)blocks[i].base;
	if (size)
		*size = blocks[i].len;
	return CUDA_SUCCESS;
}

static CUresult fake_get_handle(void *handle, CUdeviceptr dptr, size_t size,
				CUmemRangeHandleType type,
				unsigned long long flags)
{
	FAKE_LOCKED;
	uintptr_t p = (uintptr_t)dptr, ps = page();
	int i = block_of(p), fd;

	exports++;
	if (type != CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD || flags || !handle ||
	    !size || p % ps || size % ps || i < 0 ||
	    size > blocks[i].len - (p - blocks[i].base)) {
		bad_exports++;
		return CUDA_ERROR_INVALID_VALUE;
	}
	if (export_result != CUDA_SUCCESS)
		return export_result;
	fd = memfd_create("fake-dmabuf", MFD_CLOEXEC);
	if (fd < 0)
		return CUDA_ERROR_OUT_OF_MEMORY;
	*(int *)handle = fd;
	last_fd = fd;
	return CUDA_SUCCESS;
}

/* ---- runtime calls ------------------------------------------------------ */

cudaError_t
cudaGetDriverEntryPointByVersion(const char *symbol, void **fn,
				 unsigned int version, unsigned long long flags,
				 enum cudaDriverEntryPointQueryResult *status)
{
	FAKE_LOCKED;
	void *f = NULL;

	(void)flags;
	lookups++;
	if (!symbol || !fn)
		return cudaErrorInvalidValue;
	if (entry_points && version >= 11070) {
		if (!strcmp(symbol, "cuMemGetHandleForAddressRange"))
			*(CUresult(**)(void *, CUdeviceptr, size_t,
				       CUmemRangeHandleType,
				       unsigned long long)) &
				f = fake_get_handle;
		else if (!strcmp(symbol, "cuMemGetAddressRange"))
			*(CUresult(**)(CUdeviceptr *, size_t *, CUdeviceptr)) &
				f = fake_get_range;
	}
	*fn = f;
	if (status)
		*status = f ? cudaDriverEntryPointSuccess :
			      cudaDriverEntryPointSymbolNotFound;
	return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t n)
{
	FAKE_LOCKED;
	uintptr_t ps = page(), len = (n + ps - 1) & ~(ps - 1), raw;

	if (!p || !n)
		return cudaErrorInvalidValue;
	for (int i = 0; i < GDR_MAX; i++) {
		if (blocks[i].base)
			continue;
		blocks[i].raw = fakecuda_alloc(len + ps);
		if (!blocks[i].raw)
			return cudaErrorMemoryAllocation;
		raw = (uintptr_t)blocks[i].raw;
		blocks[i].base = (raw + ps - 1) & ~(ps - 1);
		blocks[i].len = len;
		nblocks++;
		*p = (void *)blocks[i].base;
		return cudaSuccess;
	}
	return cudaErrorMemoryAllocation;
}

cudaError_t cudaFree(void *p)
{
	FAKE_LOCKED;

	if (!p)
		return cudaSuccess;
	for (int i = 0; i < GDR_MAX; i++)
		if (blocks[i].base == (uintptr_t)p) {
			fakecuda_free(blocks[i].raw);
			memset(&blocks[i], 0, sizeof(blocks[i]));
			nblocks--;
			return cudaSuccess;
		}
	return cudaErrorInvalidValue;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n,
		       enum cudaMemcpyKind kind)
{
	FAKE_LOCKED;

	(void)kind;
	if ((!dst || !src) && n)
		return cudaErrorInvalidValue;
	memmove(dst, src, n);
	return cudaSuccess;
}
