/* SPDX-License-Identifier: MIT */
/*
 * Atomics, named for their ordering. The only file that may use the
 * compiler's __atomic builtins; everything else calls these wrappers, so
 * every ordering choice is visible at the call site. Every acquire/release
 * use carries a label comment naming its partner.
 */
#ifndef PLX_REACTOR_ATOMIC_H
#define PLX_REACTOR_ATOMIC_H

#define plx__load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define plx__load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define plx__load_seq_cst(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define plx__store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define plx__store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define plx__store_seq_cst(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define plx__exchange_acq_rel(p, v)                                            \
	__atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)
#define plx__exchange_seq_cst(p, v)                                            \
	__atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
/* Strong CAS; on failure *(expected) is updated with the current value. */
#define plx__cas_seq_cst(p, expected, desired)                                 \
	__atomic_compare_exchange_n((p), (expected), (desired), 0,             \
				    __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)
#define plx__cas_acq_rel(p, expected, desired)                                 \
	__atomic_compare_exchange_n((p), (expected), (desired), 0,             \
				    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
#define plx__fetch_add_relaxed(p, v)                                           \
	__atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define plx__fence_seq_cst() __atomic_thread_fence(__ATOMIC_SEQ_CST)

/* CPU relax hint for spin loops. */
#if defined(__x86_64__) || defined(__i386__)
#define plx__cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define plx__cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define plx__cpu_relax() ((void)0)
#endif

#define PLX__CACHELINE 64

#endif /* PLX_REACTOR_ATOMIC_H */
