/* SPDX-License-Identifier: MIT */
/*
 * The test double's one lock (fake_cudart.c): every call of the double
 * holds it, as the real runtime may be called from any thread. Two
 * reactors on two threads share the double's tables and counters
 * (examples/plx_bench_cuda), and the lock also orders a copy carried out
 * on one thread before a cudaMemcpy() of its bytes on another. It is
 * recursive: cudaMalloc() calls fakecuda_alloc().
 */
#ifndef PLX_FAKE_LOCK_H
#define PLX_FAKE_LOCK_H

#include <pthread.h>

pthread_mutex_t *fakecuda_lock(void);
void fakecuda_unlock(pthread_mutex_t **held);

/* Held from here to the end of the enclosing block, returns included. */
#define FAKE_LOCKED                                                            \
	pthread_mutex_t *fake_held_                                            \
		__attribute__((cleanup(fakecuda_unlock), unused)) =            \
			fakecuda_lock()

#endif /* PLX_FAKE_LOCK_H */
