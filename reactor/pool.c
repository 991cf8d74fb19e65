/* SPDX-License-Identifier: MIT */
/*
 * Fixed-size buffer pools in caller memory.
 *
 * Layout of the caller's memory (@mem, 8-byte aligned):
 *
 *   [0, count * stride)                 buffers, stride = buf_size up to 64
 *   [count * stride, + count * 4)       uint32_t stack of free indices
 *
 * Buffers come first so that the buffer area can be registered as one
 * region. plx_pool_init_split() takes the stack from separate caller
 * memory instead, and never touches the buffers (device memory). The
 * stack holds plx_top free indices; get pops, put pushes, both
 * O(1). Nothing here allocates or frees. A pool is single-threaded.
 *
 * Double-put detection is partial by design: O(1) puts cannot remember
 * which buffers are out without a bitmap, so only a put into a full pool
 * (which must be a double put) is caught.
 */
#include <stdint.h>
#include <string.h>

#include "pollux/mem.h"

#define PLX__POOL_ALIGN 64u
#define PLX__POOL_MEM_ALIGN 8u

/* Stride for @buf_size, or 0 on overflow. */
static size_t pool_stride(size_t buf_size)
{
	if (buf_size > SIZE_MAX - (PLX__POOL_ALIGN - 1))
		return 0;
	return (buf_size + PLX__POOL_ALIGN - 1) &
	       ~(size_t)(PLX__POOL_ALIGN - 1);
}

size_t plx_pool_bufs_memsize(size_t buf_size, uint32_t count)
{
	size_t stride, bufs;

	if (buf_size == 0 || count == 0)
		return 0;
	stride = pool_stride(buf_size);
	if (stride == 0 || __builtin_mul_overflow(stride, (size_t)count, &bufs))
		return 0;
	return bufs;
}

size_t plx_pool_memsize(size_t buf_size, uint32_t count)
{
	size_t bufs = plx_pool_bufs_memsize(buf_size, count), stack, total;

	if (bufs == 0 ||
	    __builtin_mul_overflow((size_t)count, sizeof(uint32_t), &stack) ||
	    __builtin_add_overflow(bufs, stack, &total))
		return 0;
	return total;
}

/* Fill in @pool: buffers at @bufs, free stack at @stack (all free). */
static void pool_format(struct plx_pool *pool, void *bufs, size_t len,
			size_t buf_size, uint32_t count, uint32_t *stack)
{
	pool->plx_base = bufs;
	pool->plx_free = stack;
	pool->plx_buf_size = pool_stride(buf_size);
	pool->plx_count = count;
	pool->plx_mem_len = len;
	pool->plx_mem = bufs;
	/* Stack top holds index 0, so a fresh pool hands out buffers in order. */
	for (uint32_t i = 0; i < count; i++)
		pool->plx_free[i] = count - 1 - i;
	pool->plx_top = count;
}

int plx_pool_init(struct plx_pool *pool, void *mem, size_t len, size_t buf_size,
		  uint32_t count)
{
	size_t need;

	if (!pool || !mem || buf_size == 0 || count == 0)
		return PLX_EINVAL;
	if ((uintptr_t)mem % PLX__POOL_MEM_ALIGN)
		return PLX_EINVAL;
	/* An overflowing size (0 here) is larger than any @len can be. */
	need = plx_pool_memsize(buf_size, count);
	if (need == 0 || len < need)
		return PLX_ENOSPC;
	pool_format(pool, mem, len, buf_size, count,
		    (uint32_t *)(void *)((unsigned char *)mem +
					 pool_stride(buf_size) * count));
	return 0;
}

int plx_pool_init_split(struct plx_pool *pool, void *bufs, size_t bufs_len,
			size_t buf_size, uint32_t count, uint32_t *stack)
{
	size_t need;

	if (!pool || !bufs || !stack || buf_size == 0 || count == 0)
		return PLX_EINVAL;
	need = plx_pool_bufs_memsize(buf_size, count);
	if (need == 0 || bufs_len < need)
		return PLX_ENOSPC;
	pool_format(pool, bufs, bufs_len, buf_size, count, stack);
	return 0;
}

void *plx_pool_get(struct plx_pool *pool)
{
	uint32_t idx;

	if (!pool || pool->plx_top == 0)
		return NULL;
	idx = pool->plx_free[--pool->plx_top];
	return pool->plx_base + (size_t)idx * pool->plx_buf_size;
}

int plx_pool_put(struct plx_pool *pool, void *buf)
{
	int64_t idx;

	if (!pool || !buf)
		return PLX_EINVAL;
	idx = plx_pool_index(pool, buf);
	if (idx < 0)
		return PLX_EINVAL;
	if (pool->plx_top >= pool->plx_count)
		return PLX_EALREADY;
	pool->plx_free[pool->plx_top++] = (uint32_t)idx;
	return 0;
}

size_t plx_pool_buf_size(const struct plx_pool *pool)
{
	return pool->plx_buf_size;
}

uint32_t plx_pool_avail(const struct plx_pool *pool)
{
	return pool->plx_top;
}

uint32_t plx_pool_count(const struct plx_pool *pool)
{
	return pool->plx_count;
}

int64_t plx_pool_index(const struct plx_pool *pool, const void *buf)
{
	uintptr_t base, p, off;

	if (!pool || !buf)
		return -1;
	/*
	 * Integer arithmetic: comparing pointers into different objects is
	 * undefined, and @buf may point anywhere.
	 */
	base = (uintptr_t)pool->plx_base;
	p = (uintptr_t)buf;
	if (p < base)
		return -1;
	off = p - base;
	if (off / pool->plx_buf_size >= pool->plx_count)
		return -1;
	if (off % pool->plx_buf_size)
		return -1;
	return (int64_t)(off / pool->plx_buf_size);
}
