/* SPDX-License-Identifier: MIT */
/*
 * The CUDA runtime, loaded at run time: dlopen() of libcudart and dlsym()
 * of the calls pollux makes, into one table per library path. pollux
 * links nothing from CUDA and runs where it is absent. Types come from
 * the toolkit's <cuda_runtime_api.h>, so every call is checked against
 * the real prototypes at build time.
 */
#ifndef PLX_CUDA_LOADER_H
#define PLX_CUDA_LOADER_H

#include <cuda_runtime_api.h>

struct plx__cudart {
	char name[64]; /* the file name that loaded */
	cudaError_t (*GetDeviceCount)(int *count);
	cudaError_t (*GetDevice)(int *device);
	cudaError_t (*SetDevice)(int device);
	cudaError_t (*PointerGetAttributes)(struct cudaPointerAttributes *a,
					    const void *ptr);
	cudaError_t (*GetLastError)(void);
	const char *(*GetErrorName)(cudaError_t err);
	cudaError_t (*RuntimeGetVersion)(int *v);
	cudaError_t (*DriverGetVersion)(int *v);
	/* staging (transport/cuda/stage.c): asynchronous calls only */
	cudaError_t (*StreamCreateWithFlags)(cudaStream_t *s, unsigned flags);
	cudaError_t (*StreamDestroy)(cudaStream_t s);
	cudaError_t (*EventCreateWithFlags)(cudaEvent_t *e, unsigned flags);
	cudaError_t (*EventDestroy)(cudaEvent_t e);
	cudaError_t (*EventRecord)(cudaEvent_t e, cudaStream_t s);
	cudaError_t (*EventQuery)(cudaEvent_t e);
	cudaError_t (*MemcpyAsync)(void *dst, const void *src, size_t n,
				   enum cudaMemcpyKind kind, cudaStream_t s);
	cudaError_t (*HostRegister)(void *p, size_t n, unsigned flags);
	cudaError_t (*HostUnregister)(void *p);
	/* optional (NULL before CUDA 12.5): the driver API, for GPUDirect
	 * RDMA's dma-buf export */
	cudaError_t (*GetDriverEntryPointByVersion)(
		const char *symbol, void **fn, unsigned version,
		unsigned long long flags,
		enum cudaDriverEntryPointQueryResult *status);
};

/*
 * plx__cudart_load() - load @library (NULL: libcudart.so.13, .12, then
 * libcudart.so) once per process and path (thread-safe; never unloaded).
 * @why_out: on failure, a static text saying what is missing.
 * Return: 0; PLX_EUNAVAIL.
 */
int plx__cudart_load(const char *library, const struct plx__cudart **out,
		     const char **why_out);

/* plx__cuda_status() - the PLX_E* for a cudaError_t (0 for success). */
int plx__cuda_status(cudaError_t err);

#endif /* PLX_CUDA_LOADER_H */
