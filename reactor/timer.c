/* SPDX-License-Identifier: MIT */
/*
 * Timers: a binary min-heap of caller-owned struct plx_timer, ordered by
 * deadline. plx_index is the heap position + 1 (0: not armed), so stop and
 * restart are O(log n) without a search. Capacity is fixed at init
 * (max_timers); the heap array comes from the reactor heap.
 */
#include "reactor/internal.h"

int plx__timers_init(struct plx__reactor *x)
{
	x->timers.n = 0;
	x->timers.cap = x->cfg.max_timers;
	x->timers.v = plx__alloc(x, sizeof(*x->timers.v) * x->timers.cap);
	return x->timers.v ? 0 : PLX_ENOMEM;
}

void plx__timers_fini(struct plx__reactor *x)
{
	plx__free(x, x->timers.v);
	x->timers.v = NULL;
	x->timers.cap = 0;
}

static void heap_set(struct plx__timer_heap *h, uint32_t i, struct plx_timer *t)
{
	h->v[i] = t;
	t->plx_index = i + 1;
}

static void sift_up(struct plx__timer_heap *h, uint32_t i)
{
	struct plx_timer *t = h->v[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (h->v[parent]->plx_deadline <= t->plx_deadline)
			break;
		heap_set(h, i, h->v[parent]);
		i = parent;
	}
	heap_set(h, i, t);
}

static void sift_down(struct plx__timer_heap *h, uint32_t i)
{
	struct plx_timer *t = h->v[i];

	for (;;) {
		uint32_t child = 2 * i + 1;

		if (child >= h->n)
			break;
		if (child + 1 < h->n &&
		    h->v[child + 1]->plx_deadline < h->v[child]->plx_deadline)
			child++;
		if (t->plx_deadline <= h->v[child]->plx_deadline)
			break;
		heap_set(h, i, h->v[child]);
		i = child;
	}
	heap_set(h, i, t);
}

static void heap_remove(struct plx__timer_heap *h, struct plx_timer *t)
{
	uint32_t i = t->plx_index - 1;
	struct plx_timer *last = h->v[--h->n];

	t->plx_index = 0;
	if (t->plx_pad & PLX__TIMER_DAEMON)
		h->daemon--;
	if (last == t)
		return;
	heap_set(h, i, last);
	if (i > 0 && h->v[(i - 1) / 2]->plx_deadline > last->plx_deadline)
		sift_up(h, i);
	else
		sift_down(h, i);
}

static void heap_insert(struct plx__timer_heap *h, struct plx_timer *t)
{
	if (t->plx_pad & PLX__TIMER_DAEMON)
		h->daemon++;
	h->v[h->n] = t;
	sift_up(h, h->n++);
}

PLX_API void plx_timer_init(struct plx_timer *t, plx_timer_cb cb, void *user)
{
	t->cb = cb;
	t->user = user;
	t->plx_deadline = 0;
	t->plx_period = 0;
	t->plx_index = 0;
	t->plx_pad = 0;
}

PLX_API int plx_timer_start(struct plx_reactor *r, struct plx_timer *t,
			    uint64_t delay_ns, uint64_t period_ns)
{
	struct plx__reactor *x = plx__r(r);
	uint64_t now;

	PLX__ASSERT_OWNER(x);
	if (!t || !t->cb)
		return PLX_EINVAL;
	if (t->plx_index)
		heap_remove(&x->timers, t);
	else if (x->timers.n == x->timers.cap)
		return PLX_ENOSPC;
	now = plx_now_ns();
	/* saturate: a huge delay means "never" rather than wrapping */
	t->plx_deadline = delay_ns > UINT64_MAX - now ? UINT64_MAX :
							now + delay_ns;
	t->plx_period = period_ns;
	/* the coarse clock may lag by more than its resolution when the
	 * tick is late (loaded VM): a timer due now must not wait for it */
	if (delay_ns <= x->coarse_res)
		x->timer_soon = true;
	heap_insert(&x->timers, t);
	x->st.timers_armed = x->timers.n;
	return 0;
}

PLX_API int plx_timer_stop(struct plx_reactor *r, struct plx_timer *t)
{
	struct plx__reactor *x = plx__r(r);

	PLX__ASSERT_OWNER(x);
	if (!t || !t->plx_index)
		return PLX_EALREADY;
	heap_remove(&x->timers, t);
	x->st.timers_armed = x->timers.n;
	return 0;
}

PLX_API int plx_timer_armed(const struct plx_timer *t)
{
	return t->plx_index != 0;
}

/*
 * Fire every timer due at @now, at most max_batch of them, so a storm of
 * short periodic timers cannot starve the other phases. A periodic timer is
 * re-armed before its callback runs, so the callback may stop or restart it;
 * ticks missed while the owner was away are skipped, not replayed.
 */
int plx__timers_run(struct plx_reactor *r, uint64_t now)
{
	struct plx__reactor *x = plx__r(r);
	struct plx__timer_heap *h = &x->timers;
	uint32_t budget = x->cfg.max_batch;
	int fired = 0;

	while (h->n && h->v[0]->plx_deadline <= now && budget--) {
		struct plx_timer *t = h->v[0];

		heap_remove(h, t);
		if (t->plx_period) {
			uint64_t next = t->plx_deadline + t->plx_period;

			if (next <= now)
				next = now + t->plx_period;
			t->plx_deadline = next;
			heap_insert(h, t);
		}
		x->st.timers_armed = h->n;
		x->st.timers_fired++;
		fired++;
		t->cb(r, t);
	}
	return fired;
}
