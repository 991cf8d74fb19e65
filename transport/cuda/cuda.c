/* SPDX-License-Identifier: MIT */
/*
 * CUDA transport: the runtime loaded at run time, the device checked,
 * registered regions classified as CUDA device memory once, at
 * registration, and the CUDA phase of the reactor, which polls the
 * staging copies (stage.c; docs/cuda.md).
 */
#include <stdio.h>
#include <string.h>

#include "reactor/internal.h"
#include "transport/cuda/cuda_internal.h"
#include "transport/transport.h"

static const struct plx__transport_ops cuda_ops;

struct plx__cuda *plx__cuda_of(struct plx_reactor *r)
{
	return plx__reactor_transport(r, &cuda_ops);
}

void plx_cuda_config_init(struct plx_cuda_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->library = NULL;
	cfg->device = 0;
	cfg->bounce = NULL;
	cfg->chunk = 1u << 20;
	cfg->max_transfers = 256;
	cfg->gpudirect = PLX_CUDA_GPUDIRECT_AUTO;
}

/*
 * Is @reg device memory? Asked once, here, and kept in the region (its
 * hint and transport slot), so that no op ever asks again. Host memory
 * the runtime does not know answers cudaMemoryTypeUnregistered (or, from
 * older runtimes, cudaErrorInvalidValue, which is cleared).
 */
static void cuda_region_classify(struct plx_reactor *r, void *ctx,
				 struct plx_region *reg)
{
	struct plx__cuda *c = ctx;
	struct cudaPointerAttributes a;
	cudaError_t e;

	(void)r;
	memset(&a, 0, sizeof(a));
	c->attr_calls++;
	e = c->rt->PointerGetAttributes(&a,
					(const void *)(uintptr_t)reg->plx_addr);
	if (e != cudaSuccess) {
		c->rt->GetLastError(); /* not sticky: clear it */
		return;
	}
	if (a.type == cudaMemoryTypeDevice) {
		reg->plx_hints |= PLX_HINT_CUDA;
		reg->plx_transport[PLX__TSLOT_CUDA] =
			(void *)(uintptr_t)(a.device + 1);
	}
}

/* Keep device regions in an address-sorted table, so that an op can be
 * told its buffer is device memory in O(log n). */
static int cuda_region_add(struct plx_reactor *r, void *ctx,
			   struct plx_region *reg)
{
	struct plx__cuda *c = ctx;
	uint32_t i = 0;

	(void)r;
	if (!(reg->plx_hints & PLX_HINT_CUDA))
		return 0;
	if (c->ndregs == c->cap_dregs) {
		uint32_t cap = c->cap_dregs ? 2 * c->cap_dregs : 16;
		struct plx__dreg *v = plx__alloc(c->x, cap * sizeof(*v));

		if (!v)
			return PLX_ENOMEM;
		if (c->ndregs)
			memcpy(v, c->dregs, c->ndregs * sizeof(*v));
		plx__free(c->x, c->dregs);
		c->dregs = v;
		c->cap_dregs = cap;
	}
	while (i < c->ndregs && c->dregs[i].addr <= reg->plx_addr)
		i++;
	memmove(&c->dregs[i + 1], &c->dregs[i],
		(c->ndregs - i) * sizeof(c->dregs[0]));
	c->dregs[i].addr = reg->plx_addr;
	c->dregs[i].end = reg->plx_addr + reg->plx_len;
	c->dregs[i].reg = reg;
	c->ndregs++;
	c->x->ndevice_regions = c->ndregs;
	return 0;
}

static void cuda_region_del(struct plx_reactor *r, void *ctx,
			    struct plx_region *reg)
{
	struct plx__cuda *c = ctx;

	(void)r;
	for (uint32_t i = 0; i < c->ndregs; i++)
		if (c->dregs[i].reg == reg) {
			memmove(&c->dregs[i], &c->dregs[i + 1],
				(c->ndregs - i - 1) * sizeof(c->dregs[0]));
			c->ndregs--;
			break;
		}
	c->x->ndevice_regions = c->ndregs;
}

int plx__cuda_local_check(struct plx_reactor *r, const void *p, uint64_t len)
{
	struct plx__cuda *c = plx__cuda_of(r);
	uint64_t a = (uint64_t)(uintptr_t)p, e = a + (len ? len : 1);

	uint32_t lo = 0, hi;

	if (!c || !p)
		return 0;
	/* the regions starting below @e, nearest first (binary search);
	 * overlapping device registrations are rare: a few deep */
	hi = c->ndregs;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (c->dregs[mid].addr < e)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (uint32_t k = 0; k < 8 && lo > 0; k++)
		if (a < c->dregs[--lo].end)
			return 1;
	return 0;
}

static int cuda_region_hold(struct plx_reactor *r, void *ctx,
			    const struct plx_region *reg)
{
	(void)r;
	return plx__cuda_bounce_release(ctx, reg);
}

static int cuda_poll(struct plx_reactor *r, void *ctx, uint32_t budget)
{
	struct plx__cuda *c = ctx;

	(void)r;
	if (!c->copies && !c->slots_back)
		return 0;
	return plx__cuda_stage_poll(c, budget);
}

/* Copies have no fd to wake the reactor: while any is in flight the
 * reactor must keep polling. */
static int cuda_arm(struct plx_reactor *r, void *ctx)
{
	struct plx__cuda *c = ctx;

	(void)r;
	return c->copies || c->slots_back ? PLX_EBUSY : 0;
}

static uint64_t cuda_live(struct plx_reactor *r, void *ctx)
{
	struct plx__cuda *c = ctx;

	(void)r;
	return c->copies;
}

static void cuda_fini(struct plx_reactor *r, void *ctx)
{
	struct plx__cuda *c = ctx;

	(void)r;
	plx__cuda_stage_fini(c);
	c->x->ndevice_regions = 0;
	plx__free(c->x, c->dregs);
	plx__free(c->x, c);
}

static const struct plx__transport_ops cuda_ops = {
	.name = "cuda",
	.phase = PLX__PHASE_CUDA,
	.poll = cuda_poll,
	.arm = cuda_arm,
	.live = cuda_live,
	.fini = cuda_fini,
	.region_classify = cuda_region_classify,
	.region_hold = cuda_region_hold,
	.region_add = cuda_region_add,
	.region_del = cuda_region_del,
};

/* Load the runtime and count devices. */
static int probe(const char *library, const struct plx__cudart **rt, int *count,
		 cudaError_t *err, const char **why)
{
	int rc = plx__cudart_load(library, rt, why);

	if (rc)
		return rc;
	*count = 0;
	*err = (*rt)->GetDeviceCount(count);
	if (*err != cudaSuccess || *count <= 0) {
		(*rt)->GetLastError();
		*why = *err == cudaErrorInsufficientDriver ?
			       "no CUDA driver (or one older than the runtime)" :
		       *err == cudaErrorNoDevice || *count <= 0 ?
			       "no CUDA device" :
			       "the CUDA runtime failed to initialise";
		return PLX_EUNAVAIL;
	}
	return 0;
}

int plx_cuda_probe(const char *library, const char **why_out)
{
	const struct plx__cudart *rt;
	const char *why = NULL;
	cudaError_t err = cudaSuccess;
	int n, rc = probe(library, &rt, &n, &err, &why);

	if (why_out)
		*why_out = rc ? why : NULL;
	return rc;
}

int plx_cuda_init(struct plx_reactor *r, const struct plx_cuda_config *cfg)
{
	struct plx__reactor *x = plx__r(r);
	const struct plx__cudart *rt;
	const char *why = NULL;
	cudaError_t err = cudaSuccess;
	struct plx__cuda *c;
	int rc, n;

	PLX__ASSERT_OWNER(x);
	if (plx__cuda_of(r))
		return PLX_EEXIST;
	if (cfg && (cfg->device < 0 ||
		    (unsigned)cfg->gpudirect > PLX_CUDA_GPUDIRECT_OFF))
		return PLX_EINVAL;
	rc = probe(cfg ? cfg->library : NULL, &rt, &n, &err, &why);
	if (rc) {
		plx__log(x, PLX_LOG_WARN, "cuda: unavailable: %s%s%s", why,
			 err != cudaSuccess && rt ? " : " : "",
			 err != cudaSuccess && rt ? rt->GetErrorName(err) : "");
		return rc;
	}
	if (cfg && cfg->device >= n)
		return PLX_ENODEV;
	c = plx__zalloc(x, sizeof(*c));
	if (!c)
		return PLX_ENOMEM;
	c->x = x;
	c->r = r;
	c->rt = rt;
	if (cfg)
		c->cfg = *cfg;
	else
		plx_cuda_config_init(&c->cfg);
	c->cfg.library = NULL; /* the caller's string is not kept */
	if (!c->cfg.max_transfers)
		c->cfg.max_transfers = 256;
	rc = plx__cuda_stage_init(c);
	if (rc) {
		plx__cuda_stage_fini(c);
		plx__free(x, c);
		return rc;
	}
	snprintf(c->info.library, sizeof(c->info.library), "%s", rt->name);
	c->info.device_count = n;
	c->info.device = c->cfg.device;
	plx__cuda_err(c, rt->RuntimeGetVersion(&c->info.runtime_version));
	plx__cuda_err(c, rt->DriverGetVersion(&c->info.driver_version));
	rc = plx__reactor_add_transport(r, &cuda_ops, c);
	if (rc) {
		plx__cuda_stage_fini(c);
		plx__free(x, c);
		return rc;
	}
	plx__log(x, PLX_LOG_INFO,
		 "cuda: %s, runtime %d, driver %d, %d device(s), using %d",
		 c->info.library, c->info.runtime_version,
		 c->info.driver_version, n, c->info.device);
	return 0;
}

int plx_cuda_info(struct plx_reactor *r, struct plx_cuda_info *out)
{
	struct plx__cuda *c;

	PLX__ASSERT_OWNER(plx__r(r));
	c = plx__cuda_of(r);
	if (!c)
		return PLX_EUNAVAIL;
	*out = c->info;
	return 0;
}

int plx_cuda_stats(struct plx_reactor *r, struct plx_cuda_stats *out)
{
	struct plx__cuda *c;

	PLX__ASSERT_OWNER(plx__r(r));
	c = plx__cuda_of(r);
	if (!c)
		return PLX_EUNAVAIL;
	*out = c->st;
	return 0;
}
