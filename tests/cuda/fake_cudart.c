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
 *
 * Streams and events: cudaMemcpyAsync() only queues the copy on its
 * stream; an event recorded after it completes on the Nth cudaEventQuery()
 * (N = fakecuda_set_polls(), default 3), and only then are the stream's
 * copies up to it carried out, in order. fakecuda_fail_copy() makes a
 * chosen later copy fail (its event reports cudaErrorIllegalAddress and
 * the copy is not done). Queries of an event that is not the oldest one
 * still pending on its stream are counted (pollux must never make them).
 * cudaHostRegister()ed memory reports cudaMemoryTypeHost.
 *
 * Any thread may call it, as the real runtime: every call holds one lock
 * (fake_lock.h), and the current device and the last error are per
 * thread.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "fake_lock.h"

#define FAKE_MAX_ALLOCS 64

static pthread_mutex_t fake_lk = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

pthread_mutex_t *fakecuda_lock(void)
{
	pthread_mutex_lock(&fake_lk);
	return &fake_lk;
}

void fakecuda_unlock(pthread_mutex_t **held)
{
	pthread_mutex_unlock(*held);
}

static struct {
	void *p;
	size_t len;
	int device;
} allocs[FAKE_MAX_ALLOCS];
/* per thread, as in the real runtime */
static __thread int current_device;
static __thread cudaError_t last_error;
static unsigned long attr_calls, set_device_calls;

#define FAKE_QMAX 4096

struct fcopy {
	void *dst;
	const void *src;
	size_t n;
	int fail;
};

struct CUstream_st {
	struct fcopy q[FAKE_QMAX];
	unsigned long head, tail; /* copies issued: [head, tail) pending */
	struct CUevent_st *ev[FAKE_QMAX];
	unsigned long ev_head, ev_tail; /* recorded, not yet complete */
	int device;
};

struct CUevent_st {
	struct CUstream_st *s;
	unsigned long upto;
	int polls_left;
	int pending;
	cudaError_t err;
};

static int polls_needed = 3;
static long fail_countdown = -1; /* copies until the one that fails */
static unsigned long copies_issued, copies_done, event_queries,
	nonoldest_queries, max_pending, host_registered;
static struct {
	void *p;
	size_t len;
} pinned[FAKE_MAX_ALLOCS];

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
void fakecuda_set_polls(int n);
void fakecuda_fail_copy(long nth);
unsigned long fakecuda_stat(const char *what);

void *fakecuda_alloc(size_t len)
{
	FAKE_LOCKED;

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
	FAKE_LOCKED;

	for (int i = 0; i < FAKE_MAX_ALLOCS; i++)
		if (allocs[i].p == p) {
			free(p);
			allocs[i].p = NULL;
		}
}

unsigned long fakecuda_attr_calls(void)
{
	FAKE_LOCKED;

	return attr_calls;
}

unsigned long fakecuda_set_device_calls(void)
{
	FAKE_LOCKED;

	return set_device_calls;
}

/* Event queries before an event completes (at least 1; lowers the count
 * of events already pending too). */
void fakecuda_set_polls(int n)
{
	FAKE_LOCKED;

	polls_needed = n < 1 ? 1 : n;
}

/* The @nth copy issued from now on (1: the next) fails; 0: none. */
void fakecuda_fail_copy(long nth)
{
	FAKE_LOCKED;

	fail_countdown = nth > 0 ? nth : -1;
}

/* "issued", "done", "queries", "nonoldest", "max_pending", "pending",
 * "host_registered" */
unsigned long fakecuda_stat(const char *what)
{
	FAKE_LOCKED;

	if (!strcmp(what, "issued"))
		return copies_issued;
	if (!strcmp(what, "done"))
		return copies_done;
	if (!strcmp(what, "queries"))
		return event_queries;
	if (!strcmp(what, "nonoldest"))
		return nonoldest_queries;
	if (!strcmp(what, "max_pending"))
		return max_pending;
	if (!strcmp(what, "pending"))
		return copies_issued - copies_done;
	if (!strcmp(what, "host_registered"))
		return host_registered;
	return 0;
}

/* ---- the runtime calls ------------------------------------------------- */

cudaError_t cudaGetDeviceCount(int *count)
{
	FAKE_LOCKED;

	*count = ndevices();
	if (*count > 0)
		return cudaSuccess;
	*count = 0;
	return last_error = cudaErrorNoDevice;
}

cudaError_t cudaGetDevice(int *device)
{
	FAKE_LOCKED;

	*device = current_device;
	return cudaSuccess;
}

cudaError_t cudaSetDevice(int device)
{
	FAKE_LOCKED;

	set_device_calls++;
	if (device < 0 || device >= ndevices())
		return last_error = cudaErrorInvalidDevice;
	current_device = device;
	return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *a,
				     const void *ptr)
{
	FAKE_LOCKED;
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
		b = pinned[i].p;
		if (b && c >= b && c < b + pinned[i].len) {
			a->type = cudaMemoryTypeHost;
			a->device = current_device;
			a->hostPointer = (void *)(uintptr_t)ptr;
		}
	}
	return cudaSuccess;
}

cudaError_t cudaGetLastError(void)
{
	FAKE_LOCKED;
	cudaError_t e = last_error;

	last_error = cudaSuccess;
	return e;
}

const char *cudaGetErrorName(cudaError_t err)
{
	FAKE_LOCKED;

	switch (err) {
	case cudaSuccess:
		return "cudaSuccess";
	case cudaErrorNoDevice:
		return "cudaErrorNoDevice";
	case cudaErrorInvalidDevice:
		return "cudaErrorInvalidDevice";
	case cudaErrorIllegalAddress:
		return "cudaErrorIllegalAddress";
	case cudaErrorNotReady:
		return "cudaErrorNotReady";
	default:
		return "cudaErrorUnknown";
	}
}

cudaError_t cudaRuntimeGetVersion(int *v)
{
	FAKE_LOCKED;

	*v = 13000;
	return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *v)
{
	FAKE_LOCKED;

	*v = 13000;
	return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags)
{
	FAKE_LOCKED;

	if (!(flags & cudaStreamNonBlocking))
		return last_error = cudaErrorInvalidValue; /* pollux's own */
	*s = calloc(1, sizeof(**s));
	if (!*s)
		return last_error = cudaErrorMemoryAllocation;
	(*s)->device = current_device;
	return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t s)
{
	FAKE_LOCKED;

	free(s);
	return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags)
{
	FAKE_LOCKED;

	(void)flags;
	*e = calloc(1, sizeof(**e));
	return *e ? cudaSuccess : (last_error = cudaErrorMemoryAllocation);
}

cudaError_t cudaEventDestroy(cudaEvent_t e)
{
	FAKE_LOCKED;

	free(e);
	return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n,
			    enum cudaMemcpyKind kind, cudaStream_t s)
{
	FAKE_LOCKED;
	struct fcopy *q;

	(void)kind;
	if (!s || s->tail - s->head == FAKE_QMAX)
		return last_error = cudaErrorInvalidValue;
	q = &s->q[s->tail++ % FAKE_QMAX];
	q->dst = dst;
	q->src = src;
	q->n = n;
	q->fail = fail_countdown > 0 && --fail_countdown == 0;
	copies_issued++;
	if (copies_issued - copies_done > max_pending)
		max_pending = copies_issued - copies_done;
	return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s)
{
	FAKE_LOCKED;

	if (!e || !s || s->ev_tail - s->ev_head == FAKE_QMAX)
		return last_error = cudaErrorInvalidValue;
	e->s = s;
	e->upto = s->tail;
	e->polls_left = polls_needed;
	e->pending = 1;
	e->err = cudaSuccess;
	s->ev[s->ev_tail++ % FAKE_QMAX] = e;
	return cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t e)
{
	FAKE_LOCKED;
	struct CUstream_st *s = e->s;

	event_queries++;
	if (!e->pending)
		return e->err;
	if (s->ev[s->ev_head % FAKE_QMAX] != e)
		nonoldest_queries++;
	if (e->polls_left > polls_needed)
		e->polls_left = polls_needed; /* fakecuda_set_polls() lowered */
	if (--e->polls_left > 0)
		return cudaErrorNotReady;
	/* complete every earlier event of the stream too (stream order) */
	while (s->ev_head != s->ev_tail) {
		struct CUevent_st *x = s->ev[s->ev_head++ % FAKE_QMAX];

		for (; s->head < x->upto; s->head++) {
			struct fcopy *q = &s->q[s->head % FAKE_QMAX];

			if (q->fail)
				x->err = cudaErrorIllegalAddress;
			else
				memcpy(q->dst, q->src, q->n);
			copies_done++;
		}
		x->pending = 0;
		if (x == e)
			break;
	}
	return e->err;
}

cudaError_t cudaHostRegister(void *p, size_t n, unsigned flags)
{
	FAKE_LOCKED;

	(void)flags;
	for (int i = 0; i < FAKE_MAX_ALLOCS; i++)
		if (!pinned[i].p) {
			pinned[i].p = p;
			pinned[i].len = n;
			host_registered++;
			return cudaSuccess;
		}
	return last_error = cudaErrorMemoryAllocation;
}

cudaError_t cudaHostUnregister(void *p)
{
	FAKE_LOCKED;

	for (int i = 0; i < FAKE_MAX_ALLOCS; i++)
		if (pinned[i].p == p) {
			pinned[i].p = NULL;
			host_registered--;
			return cudaSuccess;
		}
	return last_error = cudaErrorHostMemoryNotRegistered;
}
