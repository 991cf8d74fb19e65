/* SPDX-License-Identifier: MIT */
/*
 * The reactor's internal allocator: a private mimalloc heap per reactor.
 * The only file that allocates. Used on setup paths only (init, region and
 * transport set-up), always on the owner thread: mimalloc heaps belong to
 * the thread that created them.
 */
#include <mimalloc.h>
#include <string.h>

#include "reactor/internal.h"

int plx__heap_create(struct plx__reactor *x)
{
	x->heap = mi_heap_new();
	return x->heap ? 0 : PLX_ENOMEM;
}

void plx__heap_destroy(struct plx__reactor *x)
{
	if (!x->heap)
		return;
	if (x->st.heap_live)
		plx__log(x, PLX_LOG_ERROR,
			 "internal leak: %llu allocations live at fini",
			 (unsigned long long)x->st.heap_live);
	/* frees anything still live: a leak costs nothing after fini */
	mi_heap_destroy(x->heap);
	x->heap = NULL;
}

void *plx__alloc_aligned(struct plx__reactor *x, size_t size, size_t align)
{
	void *p;

	PLX__ASSERT_OWNER(x);
	p = mi_heap_malloc_aligned(x->heap, size ? size : 1, align);
	if (p) {
		x->st.heap_allocs++;
		x->st.heap_live++;
	}
	return p;
}

void *plx__alloc(struct plx__reactor *x, size_t size)
{
	return plx__alloc_aligned(x, size, sizeof(void *) * 2);
}

void *plx__zalloc(struct plx__reactor *x, size_t size)
{
	void *p = plx__alloc(x, size);

	if (p)
		memset(p, 0, size);
	return p;
}

void plx__free(struct plx__reactor *x, void *p)
{
	if (!p)
		return;
	PLX__ASSERT_OWNER(x);
	x->st.heap_live--;
	mi_free(p);
}
