/* SPDX-License-Identifier: MIT */
/*
 * Reactor internals shared by reactor/ and transport/ files. Transports may
 * include this; the reactor never includes a transport header except
 * transport/transport.h (the ops table).
 */
#ifndef PLX_REACTOR_INTERNAL_H
#define PLX_REACTOR_INTERNAL_H

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "pollux/mem.h"
#include "pollux/reactor.h"
#include "reactor/atomic.h"
#include "reactor/ring.h"

#define PLX__MAX_TRANSPORTS 4

struct plx__transport_ops;

/* One entry of the region registry, kept sorted by key. */
struct plx__reg_entry {
	uint64_t key;
	struct plx_region *reg;
};

/* Region registry: a sorted array, binary search on key (O(log n)). */
struct plx__registry {
	struct plx__reg_entry *v;
	uint32_t n;
	uint32_t cap;
	/* the region plx_mem_lookup() found last (a peer's frames name the
	 * same region again and again): found without the sorted array's
	 * binary search and cache lines; NULL once it leaves the registry */
	struct plx_region *last;
};

/* Binary min-heap of armed timers, ordered by deadline. */
struct plx__timer_heap {
	struct plx_timer **v;
	uint32_t n;
	uint32_t cap;
	uint32_t daemon; /* armed timers that do not keep fini busy */
};

/* plx_timer.plx_pad bit: an internal timer (e.g. a transport's tick) that
 * does not count as live work for plx_reactor_fini(). */
#define PLX__TIMER_DAEMON 0x1u

struct plx__transport_slot {
	const struct plx__transport_ops *ops;
	void *ctx;
};

/* Intrusive FIFO of requests awaiting their deferred phase. */
struct plx__req_list {
	struct plx_req *head;
	struct plx_req *tail;
};

struct plx__reactor {
	/* --- read by producers (other threads) --- */
	struct plx__ring *ring;
	/* 1 while the owner sleeps on the fd; producers ring the doorbell */
	PLX_ALIGNAS(PLX__CACHELINE) uint32_t sleeping;
	int evfd;
	uint64_t ring_full; /* producer-side counter, relaxed atomics */

	/* --- owner thread only below --- */
	PLX_ALIGNAS(PLX__CACHELINE) pthread_t owner;
	int epfd;
	int tfd;
	bool armed;
	bool in_poll;
	uint64_t tfd_deadline; /* deadline programmed into tfd, 0: none */
	uint64_t coarse_res;   /* resolution of plx__now_coarse() */
	bool timer_soon;       /* a timer due within coarse_res was started,
				* or the owner slept: the next poll's timer
				* phase reads the precise clock */
	struct plx_reactor_config cfg;
	uint64_t epoch;
	void *heap; /* mi_heap_t */

	struct plx__req_list deferred;
	struct plx__timer_heap timers;
	struct plx__registry regs;
	struct plx__transport_slot transports[PLX__MAX_TRANSPORTS];
	uint32_t ntransports;
	uint32_t npolled; /* the first npolled slots have a poll() */
	/* registered regions that are CUDA device memory (the CUDA
	 * transport keeps them): ops check their buffers only when > 0 */
	uint32_t ndevice_regions;

	struct plx_reactor_stats st;
};

_Static_assert(sizeof(struct plx__reactor) <= sizeof(struct plx_reactor),
	       "struct plx_reactor opaque storage too small");
_Static_assert(_Alignof(struct plx__reactor) <= _Alignof(struct plx_reactor),
	       "struct plx_reactor alignment too small");

static inline struct plx__reactor *plx__r(struct plx_reactor *r)
{
	return (struct plx__reactor *)(void *)r->plx_opaque;
}

static inline const struct plx__reactor *plx__rc(const struct plx_reactor *r)
{
	return (const struct plx__reactor *)(const void *)r->plx_opaque;
}

/* Owner-thread check: active in debug builds, free in release builds. */
#ifndef NDEBUG
void plx__assert_owner_fail(const struct plx__reactor *x, const char *fn);
#define PLX__ASSERT_OWNER(x)                                                   \
	do {                                                                   \
		if (!pthread_equal((x)->owner, pthread_self()))                \
			plx__assert_owner_fail((x), __func__);                 \
	} while (0)
#else
#define PLX__ASSERT_OWNER(x) ((void)(x))
#endif

#define PLX__LIKELY(x) __builtin_expect(!!(x), 1)
#define PLX__UNLIKELY(x) __builtin_expect(!!(x), 0)

/*
 * CLOCK_MONOTONIC_COARSE in nanoseconds: a few ns to read, a few ms of
 * resolution (the kernel tick). It never runs ahead of plx_now_ns() and
 * lags it by at most plx__coarse_res(). For deadlines measured in
 * milliseconds (op timeouts, keepalive) on hot paths.
 */
static inline uint64_t plx__now_coarse(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Resolution of plx__now_coarse(), read once. */
uint64_t plx__coarse_res(void);

/* alloc.c: the reactor's mimalloc heap. Setup paths only, owner thread. */
int plx__heap_create(struct plx__reactor *x);
void plx__heap_destroy(struct plx__reactor *x);
void *plx__alloc(struct plx__reactor *x, size_t size);
void *plx__zalloc(struct plx__reactor *x, size_t size);
void *plx__alloc_aligned(struct plx__reactor *x, size_t size, size_t align);
void plx__free(struct plx__reactor *x, void *p);

/* log.c */
void plx__log(struct plx__reactor *x, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* region.c: registry lifecycle, called by reactor init/fini. */
int plx__registry_init(struct plx__reactor *x);
void plx__registry_fini(struct plx__reactor *x);
/* Random bytes from the kernel CSPRNG. Return 0 or PLX_EIO. */
int plx__random(void *buf, size_t len);

/* timer.c */
int plx__timers_init(struct plx__reactor *x);
void plx__timers_fini(struct plx__reactor *x);
int plx__timers_run(struct plx_reactor *r, uint64_t now);
/* Deadline of the earliest armed timer, or 0 when none is armed. */
static inline uint64_t plx__timers_next(const struct plx__reactor *x)
{
	return x->timers.n ? x->timers.v[0]->plx_deadline : 0;
}

#endif /* PLX_REACTOR_INTERNAL_H */
