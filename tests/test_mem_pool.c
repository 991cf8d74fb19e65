/* SPDX-License-Identifier: MIT */
/* Buffer pools: sizing, formatting, get/put, pointer validation. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "harness.h"
#include "pollux/mem.h"

#define NBUF 37
#define BUFSZ 100 /* stride 128 */

static void *alloc_pool_mem(size_t buf_size, uint32_t count, size_t *len_out)
{
	size_t len = plx_pool_memsize(buf_size, count);
	void *mem;

	EXPECT_GT(len, 0);
	mem = aligned_alloc(64, (len + 63) & ~(size_t)63);
	EXPECT_TRUE(mem != NULL);
	*len_out = len;
	return mem;
}

static void test_memsize_rounds_stride_to_64(void)
{
	EXPECT_U64_EQ(plx_pool_memsize(1, 1), 64 + 4);
	EXPECT_U64_EQ(plx_pool_memsize(64, 1), 64 + 4);
	EXPECT_U64_EQ(plx_pool_memsize(65, 1), 128 + 4);
	EXPECT_U64_EQ(plx_pool_memsize(100, 10), 10 * 128 + 10 * 4);
	EXPECT_U64_EQ(plx_pool_memsize(4096, 3), 3 * 4096 + 3 * 4);
}

static void test_memsize_zero_and_overflow_return_0(void)
{
	EXPECT_U64_EQ(plx_pool_memsize(0, 10), 0);
	EXPECT_U64_EQ(plx_pool_memsize(64, 0), 0);
	EXPECT_U64_EQ(plx_pool_memsize(SIZE_MAX, 1), 0);
	EXPECT_U64_EQ(plx_pool_memsize(SIZE_MAX - 62, 1), 0);
	EXPECT_U64_EQ(plx_pool_memsize(SIZE_MAX / 2, 3), 0);
	EXPECT_U64_EQ(plx_pool_memsize(SIZE_MAX / UINT32_MAX, UINT32_MAX), 0);
#if SIZE_MAX > UINT32_MAX
	/* the buffers fit in size_t, buffers plus the index stack do not */
	EXPECT_U64_EQ(plx_pool_memsize((size_t)1 << 32, UINT32_MAX), 0);
	EXPECT_U64_EQ(plx_pool_memsize(((size_t)1 << 32) - 64, UINT32_MAX),
		      (((size_t)1 << 32) - 64) * UINT32_MAX +
			      (size_t)4 * UINT32_MAX);
#endif
}

static void test_init_rejects_bad_arguments(void)
{
	struct plx_pool pool;
	size_t len;
	unsigned char *mem = alloc_pool_mem(BUFSZ, NBUF, &len);

	EXPECT_STATUS(plx_pool_init(NULL, mem, len, BUFSZ, NBUF), PLX_EINVAL);
	EXPECT_STATUS(plx_pool_init(&pool, NULL, len, BUFSZ, NBUF), PLX_EINVAL);
	EXPECT_STATUS(plx_pool_init(&pool, mem, len, 0, NBUF), PLX_EINVAL);
	EXPECT_STATUS(plx_pool_init(&pool, mem, len, BUFSZ, 0), PLX_EINVAL);
	EXPECT_STATUS(plx_pool_init(&pool, mem + 4, len - 4, BUFSZ, NBUF),
		      PLX_EINVAL);
	EXPECT_STATUS(plx_pool_init(&pool, mem, len - 1, BUFSZ, NBUF),
		      PLX_ENOSPC);
	EXPECT_STATUS(plx_pool_init(&pool, mem, 0, BUFSZ, NBUF), PLX_ENOSPC);
	EXPECT_STATUS(plx_pool_init(&pool, mem, len, SIZE_MAX, NBUF),
		      PLX_ENOSPC);
	EXPECT_OK(plx_pool_init(&pool, mem, len, BUFSZ, NBUF));
	EXPECT_OK(plx_pool_init(&pool, mem + 8, len - 8, BUFSZ, NBUF - 1));
	free(mem);
}

static void test_get_all_buffers_distinct_aligned_disjoint(void)
{
	struct plx_pool pool;
	unsigned char *bufs[NBUF];
	size_t len, stride;
	uint32_t i, j;
	unsigned char *mem = alloc_pool_mem(BUFSZ, NBUF, &len);

	EXPECT_OK(plx_pool_init(&pool, mem, len, BUFSZ, NBUF));
	stride = plx_pool_buf_size(&pool);
	EXPECT_U64_EQ(stride, 128);
	EXPECT_EQ(plx_pool_count(&pool), NBUF);
	EXPECT_EQ(plx_pool_avail(&pool), NBUF);

	for (i = 0; i < NBUF; i++) {
		bufs[i] = plx_pool_get(&pool);
		EXPECT_TRUE(bufs[i] != NULL);
		EXPECT_EQ(plx_pool_avail(&pool), NBUF - 1 - i);
		EXPECT_TRUE((uintptr_t)bufs[i] >= (uintptr_t)mem);
		EXPECT_TRUE((uintptr_t)bufs[i] + stride <=
			    (uintptr_t)mem + len);
		EXPECT_EQ(((uintptr_t)bufs[i] - (uintptr_t)mem) % stride, 0);
		EXPECT_EQ((uintptr_t)bufs[i] % 64, 0);
		EXPECT_EQ(plx_pool_index(&pool, bufs[i]),
			  ((uintptr_t)bufs[i] - (uintptr_t)mem) / stride);
		for (j = 0; j < i; j++)
			EXPECT_TRUE(bufs[i] != bufs[j]);
	}
	EXPECT_TRUE(plx_pool_get(&pool) == NULL);
	EXPECT_EQ(plx_pool_avail(&pool), 0);

	/* Fill every byte of every buffer, then check none was overwritten. */
	for (i = 0; i < NBUF; i++)
		memset(bufs[i], (int)i + 1, stride);
	for (i = 0; i < NBUF; i++)
		for (j = 0; j < stride; j++)
			EXPECT_EQ(bufs[i][j], i + 1);

	for (i = 0; i < NBUF; i++)
		EXPECT_OK(plx_pool_put(&pool, bufs[i]));
	EXPECT_EQ(plx_pool_avail(&pool), NBUF);
	free(mem);
}

static void test_put_rejects_foreign_and_misaligned_pointers(void)
{
	struct plx_pool pool;
	size_t len, stride;
	unsigned char *b;
	unsigned char *mem = alloc_pool_mem(BUFSZ, NBUF, &len);
	unsigned char outside[64];

	EXPECT_OK(plx_pool_init(&pool, mem, len, BUFSZ, NBUF));
	stride = plx_pool_buf_size(&pool);
	b = plx_pool_get(&pool);
	EXPECT_TRUE(b != NULL);

	EXPECT_STATUS(plx_pool_put(&pool, NULL), PLX_EINVAL);
	EXPECT_STATUS(plx_pool_put(NULL, b), PLX_EINVAL);
	EXPECT_STATUS(plx_pool_put(&pool, outside), PLX_EINVAL);
	EXPECT_STATUS(plx_pool_put(&pool, b + 1), PLX_EINVAL);
	EXPECT_STATUS(plx_pool_put(&pool, b + stride / 2), PLX_EINVAL);
	EXPECT_STATUS(plx_pool_put(&pool, mem - stride), PLX_EINVAL);
	/* one past the last buffer: the index stack, not a buffer */
	EXPECT_STATUS(plx_pool_put(&pool, mem + NBUF * stride), PLX_EINVAL);
	EXPECT_STATUS(plx_pool_put(&pool, mem + len), PLX_EINVAL);
	EXPECT_EQ(plx_pool_index(&pool, b + 1), -1);
	EXPECT_EQ(plx_pool_index(&pool, mem + NBUF * stride), -1);
	EXPECT_EQ(plx_pool_index(&pool, outside), -1);
	EXPECT_EQ(plx_pool_index(&pool, NULL), -1);
	EXPECT_EQ(plx_pool_avail(&pool), NBUF - 1);

	EXPECT_OK(plx_pool_put(&pool, b));
	EXPECT_EQ(plx_pool_avail(&pool), NBUF);
	free(mem);
}

static void test_put_into_full_pool_is_ealready(void)
{
	struct plx_pool pool;
	size_t len;
	unsigned char *b;
	unsigned char *mem = alloc_pool_mem(BUFSZ, NBUF, &len);

	EXPECT_OK(plx_pool_init(&pool, mem, len, BUFSZ, NBUF));
	/* never taken */
	EXPECT_STATUS(plx_pool_put(&pool, mem), PLX_EALREADY);
	b = plx_pool_get(&pool);
	EXPECT_OK(plx_pool_put(&pool, b));
	/* double put */
	EXPECT_STATUS(plx_pool_put(&pool, b), PLX_EALREADY);
	EXPECT_EQ(plx_pool_avail(&pool), NBUF);
	free(mem);
}

static void test_single_buffer_pool(void)
{
	struct plx_pool pool;
	size_t len;
	void *b;
	unsigned char *mem = alloc_pool_mem(1, 1, &len);

	EXPECT_OK(plx_pool_init(&pool, mem, len, 1, 1));
	b = plx_pool_get(&pool);
	EXPECT_PTR_EQ(b, mem);
	EXPECT_TRUE(plx_pool_get(&pool) == NULL);
	EXPECT_OK(plx_pool_put(&pool, b));
	EXPECT_STATUS(plx_pool_put(&pool, b), PLX_EALREADY);
	free(mem);
}

/* Per-buffer fill byte, distinct for the first 255 buffers, never 0. */
#define TAG(idx) ((unsigned char)((idx) % 255 + 1))

/* Random get/put against a model of which buffers are out. */
static void test_random_get_put_matches_model(void)
{
	enum {
		N = 200
	};
	struct plx_pool pool;
	unsigned char *out[N]; /* buffers held, in no order */
	uint32_t nout = 0, i, k, idx, steps;
	bool taken[N] = {false};
	size_t len, stride;
	uint64_t seed = plx_test_seed("test_random_get_put_matches_model");
	unsigned char *mem = alloc_pool_mem(72, N, &len);
	unsigned char *b;

	memset(mem, 0, len);
	EXPECT_OK(plx_pool_init(&pool, mem, len, 72, N));
	stride = plx_pool_buf_size(&pool);
	steps = plx_test_ci() ? 20000 : 200000;
	for (i = 0; i < steps; i++) {
		if (plx_test_rand(&seed) % 2 == 0) {
			b = plx_pool_get(&pool);
			if (nout == N) {
				EXPECT_TRUE(b == NULL);
				continue;
			}
			EXPECT_TRUE(b != NULL);
			idx = (uint32_t)(((uintptr_t)b - (uintptr_t)mem) /
					 stride);
			EXPECT_LT(idx, N);
			EXPECT_EQ(plx_pool_index(&pool, b), idx);
			EXPECT_TRUE(!taken[idx]);
			/* untouched, or the last holder's tag survived */
			if (b[0] != 0)
				EXPECT_EQ(b[0], TAG(idx));
			taken[idx] = true;
			memset(b, TAG(idx), stride);
			out[nout++] = b;
		} else {
			if (nout == 0) {
				EXPECT_STATUS(plx_pool_put(&pool, mem),
					      PLX_EALREADY);
				continue;
			}
			k = (uint32_t)(plx_test_rand(&seed) % nout);
			b = out[k];
			idx = (uint32_t)plx_pool_index(&pool, b);
			for (size_t j = 0; j < stride; j++)
				EXPECT_EQ(b[j], TAG(idx));
			EXPECT_OK(plx_pool_put(&pool, b));
			taken[idx] = false;
			out[k] = out[--nout];
		}
		EXPECT_EQ(plx_pool_avail(&pool), N - nout);
	}
	while (nout)
		EXPECT_OK(plx_pool_put(&pool, out[--nout]));
	EXPECT_EQ(plx_pool_avail(&pool), N);
	free(mem);
}

/*
 * A split pool never touches its buffers: here they are a PROT_NONE
 * mapping (any access faults), as device memory would be to the CPU.
 * Every buffer is handed out once, in order, 128 bytes apart (100 rounded
 * up to a multiple of 64), index and put work, and sizes are checked.
 */
static void test_split_pool_never_touches_buffers(void)
{
	enum {
		N = 19
	};
	size_t len = plx_pool_bufs_memsize(BUFSZ, N);
	uint32_t stack[N];
	struct plx_pool pool;
	void *out[N];
	unsigned char *bufs;

	EXPECT_U64_EQ(len, (size_t)N * 128);
	EXPECT_U64_EQ(plx_pool_bufs_memsize(4096, 3), 3 * 4096);
	EXPECT_U64_EQ(plx_pool_bufs_memsize(0, 3), 0);
	EXPECT_U64_EQ(plx_pool_bufs_memsize(64, 0), 0);
	EXPECT_U64_EQ(plx_pool_bufs_memsize(SIZE_MAX - 62, 1), 0);
	EXPECT_U64_EQ(plx_pool_bufs_memsize(SIZE_MAX / 2, 3), 0);
	bufs = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	EXPECT_TRUE(bufs != MAP_FAILED);

	EXPECT_STATUS(plx_pool_init_split(NULL, bufs, len, BUFSZ, N, stack),
		      PLX_EINVAL);
	EXPECT_STATUS(plx_pool_init_split(&pool, NULL, len, BUFSZ, N, stack),
		      PLX_EINVAL);
	EXPECT_STATUS(plx_pool_init_split(&pool, bufs, len, BUFSZ, N, NULL),
		      PLX_EINVAL);
	EXPECT_STATUS(plx_pool_init_split(&pool, bufs, len, 0, N, stack),
		      PLX_EINVAL);
	EXPECT_STATUS(plx_pool_init_split(&pool, bufs, len, BUFSZ, 0, stack),
		      PLX_EINVAL);
	EXPECT_STATUS(plx_pool_init_split(&pool, bufs, len - 1, BUFSZ, N,
					  stack),
		      PLX_ENOSPC);
	EXPECT_STATUS(plx_pool_init_split(&pool, bufs, len, SIZE_MAX / 2, 3,
					  stack),
		      PLX_ENOSPC);

	EXPECT_OK(plx_pool_init_split(&pool, bufs, len, BUFSZ, N, stack));
	EXPECT_U64_EQ(plx_pool_buf_size(&pool), 128);
	EXPECT_EQ(plx_pool_count(&pool), N);
	for (int round = 0; round < 2; round++) {
		for (uint32_t i = 0; i < N; i++) {
			out[i] = plx_pool_get(&pool);
			EXPECT_TRUE(out[i] == bufs + (size_t)i * 128);
			EXPECT_EQ(plx_pool_index(&pool, out[i]), (int64_t)i);
		}
		EXPECT_TRUE(plx_pool_get(&pool) == NULL);
		EXPECT_EQ(plx_pool_avail(&pool), 0);
		EXPECT_STATUS(plx_pool_put(&pool, bufs + 1), PLX_EINVAL);
		EXPECT_STATUS(plx_pool_put(&pool, bufs + len), PLX_EINVAL);
		/* back in reverse, so the next round hands them out in order */
		for (uint32_t i = N; i-- > 0;)
			EXPECT_OK(plx_pool_put(&pool, out[i]));
		EXPECT_EQ(plx_pool_avail(&pool), N);
		EXPECT_STATUS(plx_pool_put(&pool, out[0]), PLX_EALREADY);
	}
	munmap(bufs, len);
}

int main(void)
{
	test_memsize_rounds_stride_to_64();
	test_memsize_zero_and_overflow_return_0();
	test_init_rejects_bad_arguments();
	test_get_all_buffers_distinct_aligned_disjoint();
	test_put_rejects_foreign_and_misaligned_pointers();
	test_put_into_full_pool_is_ealready();
	test_single_buffer_pool();
	test_random_get_put_matches_model();
	test_split_pool_never_touches_buffers();
	return 0;
}
