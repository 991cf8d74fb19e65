/* SPDX-License-Identifier: MIT */
/*
 * CUDA staging, the copy side: the caller's bounce pool cut into slots,
 * two non-blocking streams of our own (device-to-host and host-to-device,
 * so the two directions overlap), one event per slot, and the CUDA phase
 * that asks only the oldest copy in flight on each stream whether it is
 * done (copies on a stream complete in order). Nothing here waits for the
 * GPU: cudaMemcpyAsync, cudaEventRecord and cudaEventQuery are the only
 * calls made after plx_cuda_init(). transport/tcp/stage.c drives ops
 * through it (docs/cuda.md).
 */
#include <string.h>

#include "reactor/internal.h"
#include "transport/cuda/cuda_internal.h"

int plx__cuda_err(struct plx__cuda *c, cudaError_t e)
{
	if (e != cudaSuccess)
		c->info.last_error = (int)e;
	return plx__cuda_status(e);
}

/* Create the streams and events on the configured device, leaving the
 * caller's current device as it was. */
static int make_streams(struct plx__cuda *c)
{
	const struct plx__cudart *rt = c->rt;
	cudaError_t e = cudaSuccess;
	int cur = -1;

	if (rt->GetDevice(&cur) != cudaSuccess)
		cur = -1;
	if (cur != c->cfg.device)
		e = rt->SetDevice(c->cfg.device);
	for (int i = 0; i < 2 && e == cudaSuccess; i++)
		e = rt->StreamCreateWithFlags(&c->stream[i],
					      cudaStreamNonBlocking);
	for (uint32_t i = 0; i < c->nslots && e == cudaSuccess; i++) {
		cudaEvent_t ev = NULL;

		e = rt->EventCreateWithFlags(&ev, cudaEventDisableTiming);
		c->slots[i].ev = ev;
	}
	if (cur >= 0 && cur != c->cfg.device)
		rt->SetDevice(cur);
	return plx__cuda_err(c, e);
}

int plx__cuda_stage_init(struct plx__cuda *c)
{
	const struct plx_region *b = c->cfg.bounce;
	struct cudaPointerAttributes a;
	uint64_t chunk = c->cfg.chunk ? c->cfg.chunk : 1u << 20;
	int rc;

	if (!b)
		return 0;
	if (chunk < 4096 || chunk > (256u << 20) || b->plx_len / chunk < 2 ||
	    (b->plx_hints & PLX_HINT_CUDA))
		return PLX_EINVAL;
	c->chunk = (uint32_t)chunk;
	c->nslots = (uint32_t)(b->plx_len / chunk);
	c->nfree = c->nslots;
	c->pool = (uint8_t *)(uintptr_t)b->plx_addr;
	c->pool_len = (uint64_t)c->nslots * chunk;
	c->slots = plx__zalloc(c->x, c->nslots * sizeof(*c->slots));
	c->used = plx__zalloc(c->x, c->nslots);
	if (!c->slots || !c->used)
		return PLX_ENOMEM;
	for (uint32_t i = 0; i < c->nslots; i++) {
		c->slots[i].idx = i;
		c->slots[i].buf = c->pool + (uint64_t)i * chunk;
	}
	/* pinned already (cudaHostAlloc, or registered by the caller)? */
	memset(&a, 0, sizeof(a));
	if (c->rt->PointerGetAttributes(&a, c->pool) != cudaSuccess)
		c->rt->GetLastError();
	if (a.type != cudaMemoryTypeHost) {
		rc = plx__cuda_err(
			c, c->rt->HostRegister(c->pool, c->pool_len,
					       cudaHostRegisterPortable));
		if (rc)
			return rc;
		c->pool_pinned = true;
	}
	rc = make_streams(c);
	if (rc)
		return rc;
	c->st.slots = c->st.slots_free = c->nslots;
	return 0;
}

/* Give the pool back: events, slot tables, the pinning. */
static void pool_release(struct plx__cuda *c)
{
	for (uint32_t i = 0; c->slots && i < c->nslots; i++)
		if (c->slots[i].ev)
			c->rt->EventDestroy(c->slots[i].ev);
	if (c->pool_pinned)
		c->rt->HostUnregister(c->pool);
	c->pool_pinned = false;
	plx__free(c->x, c->slots);
	plx__free(c->x, c->used);
	c->slots = NULL;
	c->used = NULL;
	c->nslots = c->nfree = 0;
	c->st.slots = c->st.slots_free = 0;
	c->cfg.bounce = NULL;
}

/* The bounce region is being deregistered: refused while any slot is
 * taken; otherwise staging ends here (staged ops fail with PLX_ENOTSUP
 * from now on). */
int plx__cuda_bounce_release(struct plx__cuda *c, const struct plx_region *reg)
{
	if (reg != c->cfg.bounce || !c->nslots)
		return 0;
	if (c->nfree != c->nslots || c->copies || c->want_slots)
		return PLX_EBUSY; /* in use, or transfers wait for slots */
	pool_release(c);
	return 0;
}

void plx__cuda_stage_fini(struct plx__cuda *c)
{
	pool_release(c);
	for (int i = 0; i < 2; i++)
		if (c->stream[i])
			c->rt->StreamDestroy(c->stream[i]);
}

/* ---- slots -------------------------------------------------------------- */

void plx__cuda_stage_info(struct plx_reactor *r,
			  struct plx__cuda_stage_info *out)
{
	struct plx__cuda *c = plx__cuda_of(r);

	memset(out, 0, sizeof(*out));
	if (!c || !c->nslots)
		return;
	out->chunk = c->chunk;
	out->nslots = c->nslots;
	out->max_transfers = c->cfg.max_transfers;
	out->st = &c->st;
}

struct plx__cslot *plx__cuda_get(struct plx_reactor *r, uint64_t bytes,
				 int side)
{
	struct plx__cuda *c = plx__cuda_of(r);
	uint64_t n;
	uint32_t run = 0;

	if (!c || !c->nslots)
		return NULL;
	n = bytes ? (bytes + c->chunk - 1) / c->chunk : 1;
	if (c->held[side] + n > c->nslots / 2 || n > c->nfree)
		goto none;
	/* first fit: pools are tens of slots */
	for (uint32_t i = 0; i < c->nslots; i++) {
		run = c->used[i] ? 0 : run + 1;
		if (run == n) {
			struct plx__cslot *s = &c->slots[i + 1 - n];

			memset(c->used + s->idx, 1, n);
			c->nfree -= (uint32_t)n;
			c->held[side] += (uint32_t)n;
			c->st.slots_free = c->nfree;
			s->run = (uint32_t)n;
			s->side = (uint8_t)side;
			s->done = NULL;
			s->owner = NULL;
			return s;
		}
	}
none:
	c->want_slots = true;
	c->st.slot_waits++;
	return NULL;
}

void plx__cuda_put(struct plx_reactor *r, struct plx__cslot *s)
{
	struct plx__cuda *c = plx__cuda_of(r);

	memset(c->used + s->idx, 0, s->run);
	c->nfree += s->run;
	c->held[s->side] -= s->run;
	c->st.slots_free = c->nfree;
	s->run = 0;
	s->owner = NULL;
	if (c->want_slots)
		c->slots_back = true;
}

/* ---- copies ------------------------------------------------------------- */

int plx__cuda_copy(struct plx_reactor *r, struct plx__cslot *s, bool to_device,
		   void *dev, uint64_t n, plx__copy_done done, void *owner)
{
	struct plx__cuda *c = plx__cuda_of(r);
	int d = to_device ? 1 : 0;
	cudaError_t e;

	e = c->rt->MemcpyAsync(
		to_device ? dev : s->buf, to_device ? s->buf : dev, n,
		to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost,
		c->stream[d]);
	if (e == cudaSuccess)
		e = c->rt->EventRecord(s->ev, c->stream[d]);
	if (e != cudaSuccess) {
		/* a failed enqueue leaves no copy behind that the event would
		 * still have to cover (the runtime reports it to the caller) */
		c->rt->GetLastError();
		c->st.copy_errors++;
		return plx__cuda_err(c, e);
	}
	s->done = done;
	s->owner = owner;
	s->len = n;
	s->dir = (uint8_t)d;
	s->qnext = NULL;
	if (c->qtail[d])
		c->qtail[d]->qnext = s;
	else
		c->qhead[d] = s;
	c->qtail[d] = s;
	if (++c->copies > c->st.max_copies_inflight)
		c->st.max_copies_inflight = c->copies;
	if (d) {
		c->st.copies_h2d++;
		c->st.bytes_h2d += n;
	} else {
		c->st.copies_d2h++;
		c->st.bytes_d2h += n;
	}
	return 0;
}

static void forget_done(struct plx_reactor *r, struct plx__cslot *s, int status)
{
	(void)status;
	plx__cuda_put(r, s);
}

void plx__cuda_forget(struct plx_reactor *r, const void *owner)
{
	struct plx__cuda *c = plx__cuda_of(r);

	for (int d = 0; c && d < 2; d++)
		for (struct plx__cslot *s = c->qhead[d]; s; s = s->qnext)
			if (s->owner == owner) {
				s->done = forget_done;
				s->owner = NULL;
			}
}

/* The CUDA phase: per stream, the oldest copy in flight, then the next
 * while they are done. */
int plx__cuda_stage_poll(struct plx__cuda *c, uint32_t budget)
{
	struct plx_reactor *r = c->r;
	int n = 0;

	for (int d = 0; d < 2; d++) {
		struct plx__cslot *s;

		while ((s = c->qhead[d]) && (uint32_t)n < budget) {
			cudaError_t e = c->rt->EventQuery(s->ev);
			int status = 0;

			if (e == cudaErrorNotReady)
				break;
			c->qhead[d] = s->qnext;
			if (!c->qhead[d])
				c->qtail[d] = NULL;
			c->copies--;
			if (e != cudaSuccess) {
				c->rt->GetLastError();
				c->st.copy_errors++;
				status = plx__cuda_err(c, e);
			}
			s->done(r, s, status);
			n++;
		}
	}
	if (c->slots_back) {
		c->slots_back = false;
		c->want_slots = false;
		plx__tcp_stage_kick(r);
		n++;
	}
	return n;
}
