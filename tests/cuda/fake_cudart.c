/* SPDX-License-Identifier: MIT */
/*
 * A test double of the CUDA runtime: the calls pollux loads from
 * libcudart, with the toolkit's prototypes, behaving like the runtime over
 * host memory. Loaded by tests through plx_cuda_config.library, i.e. the
 * same run-time loading path as the real runtime.
 *
 * "Device memory" is memory allocated with fakecuda_alloc(): the double
 * reports it as cudaMemoryTypeDevice on the current device; anything else
 * is cudaMemoryTypeUnregistered. PLX_FAKE_CUDA_DEVICES (default 1) sets
 * the device count (0: cudaErrorNoDevice). Counters let tests check what
 * pollux called.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#define FAKE_MAX_ALLOCS 64

static struct {
	void *p;
	size_t len;
	int device;
} allocs[FAKE_MAX_ALLOCS];
static int current_device;
static cudaError_t last_error;
static unsigned long attr_calls, set_device_calls;

static int ndevices(void)
{
	const char *s = getenv("PLX_FAKE_CUDA_DEVICES");

	return s ? atoi(s) : 1;
}

/* ---- test helpers (not CUDA) ------------------------------------------- */

void *fakecuda_alloc(size_t len);
void fakecuda_free(void *p);
unsigned long fakecuda_attr_calls(void);
unsigned long fakecuda_set_device_calls(void);

void *fakecuda_alloc(size_t len)
{
	for (int i = 0; i < FAKE_MAX_ALLOCS; i++)
		if (!allocs[i].p) {
			allocs[i].p = calloc(1, len);
			allocs[i].len = len;
			allocs[i].device = current_device;
			return allocs[i].p;
		}
	return NULL;
}

void fakecuda_free(void *p)
{
	for (int i = 0; i < FAKE_MAX_ALLOCS; i++)
		if (allocs[i].p == p) {
			free(p);
			allocs[i].p = NULL;
		}
}

unsigned long fakecuda_attr_calls(void)
{
	return attr_calls;
}

unsigned long fakecuda_set_device_calls(void)
{
	return set_device_calls;
}

/* ---- the runtime calls ------------------------------------------------- */

cudaError_t cudaGetDeviceCount(int *count)
{
	*count = ndevices();
	if (*count > 0)
		return cudaSuccess;
	*count = 0;
	return last_error = cudaErrorNoDevice;
}

cudaError_t cudaGetDevice(int *device)
{
	*device = current_device;
	return cudaSuccess;
}

cudaError_t cudaSetDevice(int device)
{
	set_device_calls++;
	if (device < 0 || device >= ndevices())
		return last_error = cudaErrorInvalidDevice;
	current_device = device;
	return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *a,
				     const void *ptr)
{
	const char *c = ptr;

	attr_calls++;
	memset(a, 0, sizeof(*a));
	a->type = cudaMemoryTypeUnregistered;
	a->device = -2;
	for (int i = 0; i < FAKE_MAX_ALLOCS; i++) {
		const char *b = allocs[i].p;

		if (b && c >= b && c < b + allocs[i].len) {
			a->type = cudaMemoryTypeDevice;
			a->device = allocs[i].device;
			a->devicePointer = (void *)(uintptr_t)ptr;
		}
	}
	return cudaSuccess;
}

cudaError_t cudaGetLastError(void)
{
	cudaError_t e = last_error;

	last_error = cudaSuccess;
	return e;
}

const char *cudaGetErrorName(cudaError_t err)
{
	switch (err) {
	case cudaSuccess:
		return "cudaSuccess";
	case cudaErrorNoDevice:
		return "cudaErrorNoDevice";
	case cudaErrorInvalidDevice:
		return "cudaErrorInvalidDevice";
	default:
		return "cudaErrorUnknown";
	}
}

cudaError_t cudaRuntimeGetVersion(int *v)
{
	*v = 13000;
	return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *v)
{
	*v = 13000;
	return cudaSuccess;
}
