/* SPDX-License-Identifier: MIT */
/* The CUDA runtime, loaded at run time (loader.h). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "pollux/status.h"
#include "transport/cuda/loader.h"

/* Tables of the libraries loaded so far: the default name and a few
 * explicit paths (test doubles); a process loads one or two. */
#define PLX__CUDART_MAX 4

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char path[256];
	struct plx__cudart t;
} loaded[PLX__CUDART_MAX];
static int nloaded;

#define SYM(field, name)                                                       \
	do {                                                                   \
		*(void **)(&t->field) = dlsym(h, name);                        \
		if (!t->field) {                                               \
			*why = "the CUDA runtime lacks " name;                 \
			return PLX_EUNAVAIL;                                   \
		}                                                              \
	} while (0)

static int resolve(void *h, struct plx__cudart *t, const char **why)
{
	SYM(GetDeviceCount, "cudaGetDeviceCount");
	SYM(GetDevice, "cudaGetDevice");
	SYM(SetDevice, "cudaSetDevice");
	SYM(PointerGetAttributes, "cudaPointerGetAttributes");
	SYM(GetLastError, "cudaGetLastError");
	SYM(GetErrorName, "cudaGetErrorName");
	SYM(RuntimeGetVersion, "cudaRuntimeGetVersion");
	SYM(DriverGetVersion, "cudaDriverGetVersion");
	SYM(StreamCreateWithFlags, "cudaStreamCreateWithFlags");
	SYM(StreamDestroy, "cudaStreamDestroy");
	SYM(EventCreateWithFlags, "cudaEventCreateWithFlags");
	SYM(EventDestroy, "cudaEventDestroy");
	SYM(EventRecord, "cudaEventRecord");
	SYM(EventQuery, "cudaEventQuery");
	SYM(MemcpyAsync, "cudaMemcpyAsync");
	SYM(HostRegister, "cudaHostRegister");
	SYM(HostUnregister, "cudaHostUnregister");
	*(void **)(&t->GetDriverEntryPointByVersion) =
		dlsym(h, "cudaGetDriverEntryPointByVersion");
	return 0;
}

int plx__cudart_load(const char *library, const struct plx__cudart **out,
		     const char **why_out)
{
	static const char *const names[] = {"libcudart.so.13",
					    "libcudart.so.12", "libcudart.so"};
	const char *key = library ? library : "";
	const char *why = "cannot load the CUDA runtime (libcudart.so.13, "
			  ".12 or libcudart.so)";
	int rc = PLX_EUNAVAIL;
	void *h = NULL;

	if (strlen(key) >= sizeof(loaded[0].path)) {
		*why_out = "CUDA runtime path too long";
		return PLX_EUNAVAIL;
	}
	pthread_mutex_lock(&lock);
	for (int i = 0; i < nloaded; i++)
		if (!strcmp(loaded[i].path, key)) {
			*out = &loaded[i].t;
			pthread_mutex_unlock(&lock);
			return 0;
		}
	if (nloaded == PLX__CUDART_MAX) {
		why = "too many CUDA runtime libraries loaded";
		goto out;
	}
	if (library) {
		h = dlopen(library, RTLD_NOW | RTLD_LOCAL);
		snprintf(loaded[nloaded].t.name, sizeof(loaded[0].t.name), "%s",
			 strrchr(library, '/') ? strrchr(library, '/') + 1 :
						 library);
		if (!h)
			why = "cannot load the CUDA runtime named in "
			      "plx_cuda_config.library";
	} else {
		for (size_t i = 0; !h && i < sizeof(names) / sizeof(names[0]);
		     i++) {
			h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
			snprintf(loaded[nloaded].t.name,
				 sizeof(loaded[0].t.name), "%s", names[i]);
		}
	}
	if (!h)
		goto out;
	/* never dlclose()d: the runtime keeps global state */
	rc = resolve(h, &loaded[nloaded].t, &why);
	if (rc)
		goto out;
	snprintf(loaded[nloaded].path, sizeof(loaded[0].path), "%s", key);
	*out = &loaded[nloaded++].t;
out:
	pthread_mutex_unlock(&lock);
	if (rc)
		*why_out = why;
	return rc;
}

int plx__cuda_status(cudaError_t err)
{
	switch (err) {
	case cudaSuccess:
		return 0;
	case cudaErrorInsufficientDriver:
	case cudaErrorNoDevice:
	case cudaErrorInitializationError:
		return PLX_EUNAVAIL;
	case cudaErrorInvalidDevice:
		return PLX_ENODEV;
	case cudaErrorMemoryAllocation:
		return PLX_ENOMEM;
	case cudaErrorInvalidValue:
		return PLX_EINVAL;
	case cudaErrorNotReady:
		return PLX_EAGAIN;
	default:
		return PLX_ECUDA;
	}
}
