/* SPDX-License-Identifier: MIT */
/*
 * Tiny header-only test harness. Typed asserts print both values and the
 * location, then exit 1. PLX_SKIP() exits 77. Tests are plain programs.
 */
#ifndef PLX_TEST_HARNESS_H
#define PLX_TEST_HARNESS_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pollux/status.h"

/* PLX_TEST_ASAN / PLX_TEST_TSAN: 1 in a build under AddressSanitizer /
 * ThreadSanitizer (GCC's __SANITIZE_*__ or clang's __has_feature), else 0. */
#if defined(__SANITIZE_ADDRESS__)
#define PLX_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PLX_TEST_ASAN 1
#endif
#endif
#ifndef PLX_TEST_ASAN
#define PLX_TEST_ASAN 0
#endif
#if defined(__SANITIZE_THREAD__)
#define PLX_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PLX_TEST_TSAN 1
#endif
#endif
#ifndef PLX_TEST_TSAN
#define PLX_TEST_TSAN 0
#endif

#define PLX_FAIL(...)                                                          \
	do {                                                                   \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);           \
		fprintf(stderr, __VA_ARGS__);                                  \
		fprintf(stderr, "\n");                                         \
		exit(1);                                                       \
	} while (0)

#define PLX_SKIP(...)                                                          \
	do {                                                                   \
		fprintf(stderr, "SKIP: ");                                     \
		fprintf(stderr, __VA_ARGS__);                                  \
		fprintf(stderr, "\n");                                         \
		exit(77);                                                      \
	} while (0)

#define EXPECT_TRUE(c)                                                         \
	do {                                                                   \
		if (!(c))                                                      \
			PLX_FAIL("expected true: %s", #c);                     \
	} while (0)

#define EXPECT_INT_OP(a, op, b)                                                \
	do {                                                                   \
		long long va_ = (long long)(a), vb_ = (long long)(b);          \
		if (!(va_ op vb_))                                             \
			PLX_FAIL("%s %s %s: %lld vs %lld", #a, #op, #b, va_,   \
				 vb_);                                         \
	} while (0)
#define EXPECT_EQ(a, b) EXPECT_INT_OP(a, ==, b)
#define EXPECT_NE(a, b) EXPECT_INT_OP(a, !=, b)
#define EXPECT_LT(a, b) EXPECT_INT_OP(a, <, b)
#define EXPECT_LE(a, b) EXPECT_INT_OP(a, <=, b)
#define EXPECT_GT(a, b) EXPECT_INT_OP(a, >, b)
#define EXPECT_GE(a, b) EXPECT_INT_OP(a, >=, b)

#define EXPECT_U64_EQ(a, b)                                                    \
	do {                                                                   \
		uint64_t va_ = (uint64_t)(a), vb_ = (uint64_t)(b);             \
		if (va_ != vb_)                                                \
			PLX_FAIL("%s == %s: %" PRIu64 " vs %" PRIu64, #a, #b,  \
				 va_, vb_);                                    \
	} while (0)

#define EXPECT_PTR_EQ(a, b)                                                    \
	do {                                                                   \
		const void *va_ = (a), *vb_ = (b);                             \
		if (va_ != vb_)                                                \
			PLX_FAIL("%s == %s: %p vs %p", #a, #b, va_, vb_);      \
	} while (0)

/* Status checks print the symbolic names of both codes. */
#define EXPECT_STATUS(a, b)                                                    \
	do {                                                                   \
		int va_ = (int)(a), vb_ = (int)(b);                            \
		if (va_ != vb_)                                                \
			PLX_FAIL("%s == %s: %d (%s) vs %d (%s)", #a, #b, va_,  \
				 plx_errname(va_), vb_, plx_errname(vb_));     \
	} while (0)
#define EXPECT_OK(a) EXPECT_STATUS(a, 0)

#define EXPECT_MEM_EQ(a, b, n)                                                 \
	do {                                                                   \
		if (memcmp((a), (b), (n)) != 0)                                \
			PLX_FAIL("memory %s != %s (%zu bytes)", #a, #b,        \
				 (size_t)(n));                                 \
	} while (0)

static inline uint64_t plx_test_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Seed from PLX_SEED in the environment, else the clock; always printed. */
static inline uint64_t plx_test_seed(const char *name)
{
	const char *s = getenv("PLX_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0) : plx_test_now_ns();
	fprintf(stderr,
		"%s: seed %" PRIu64 " (rerun with PLX_SEED=%" PRIu64 ")\n",
		name, seed, seed);
	return seed;
}

/* xorshift64*: deterministic per seed. */
static inline uint64_t plx_test_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* @n bytes of a pattern that depends on @seed and on each byte's place
 * (a misplaced or stale byte shows): xorshift32. */
static inline void plx_test_fill(uint8_t *p, size_t n, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

/* CI=true selects the smaller preset of stress tests. */
static inline int plx_test_ci(void)
{
	const char *ci = getenv("CI");
	return ci && *ci && strcmp(ci, "0") != 0 && strcmp(ci, "false") != 0;
}

#endif /* PLX_TEST_HARNESS_H */
