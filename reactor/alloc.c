/* SPDX-License-Identifier: MIT */
/*
 * The reactor's internal allocator: a private mimalloc heap per reactor.
 * The only file that allocates. Used on setup paths only (init, region and
 * transport set-up), always on the owner thread: mimalloc heaps belong to
 * the thread that created them.
 */
#include <mimalloc.h>
#include <stdlib.h>
#include <string.h>

#include "reactor/internal.h"

/*
 * PLX_ALLOC_LIBC (CMake option, ./build.sh valgrind): libc's allocator
 * instead of the heap. Valgrind does not see into mimalloc's pages, so an
 * overrun, a use after free or a leak inside pollux would go unnoticed;
 * through malloc it is reported. Nothing is freed at fini then: a leak
 * stays a leak.
 */
#ifdef PLX_ALLOC_LIBC
#define HEAP_NEW() ((void *)1)
#define HEAP_DESTROY(h) ((void)(h))
static void *heap_malloc_aligned(void *h, size_t size, size_t align)
{
	void *p;

	(void)h;
	return posix_memalign(&p, align, size) ? NULL : p;
}
#define HEAP_FREE(p) free(p)
#else
#define HEAP_NEW() ((void *)mi_heap_new())
#define HEAP_DESTROY(h) mi_heap_destroy(h)
#define heap_malloc_aligned(h, size, align)                                    \
	mi_heap_malloc_aligned(h, size, align)
#define HEAP_FREE(p) mi_free(p)
#endif

int plx__heap_create(struct plx__reactor *x)
{
	x->heap = HEAP_NEW();
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
	HEAP_DESTROY(x->heap);
	x->heap = NULL;
}

void *plx__alloc_aligned(struct plx__reactor *x, size_t size, size_t align)
{
	void *p;

	PLX__ASSERT_OWNER(x);
	p = heap_malloc_aligned(x->heap, size ? size : 1, align);
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
	HEAP_FREE(p);
}
