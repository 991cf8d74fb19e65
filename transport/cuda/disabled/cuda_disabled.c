/* SPDX-License-Identifier: MIT */
/*
 * The public CUDA calls in a build without the CUDA support
 * (PLX_WITH_CUDA=OFF, or no toolkit headers at build time): unavailable,
 * exactly as on a host without the CUDA runtime.
 */
#include <string.h>

#include "pollux/cuda.h"
#include "reactor/internal.h"
#include "transport/transport.h"

void plx_cuda_config_init(struct plx_cuda_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
}

int plx_cuda_probe(const char *library, const char **why_out)
{
	(void)library;
	if (why_out)
		*why_out = "pollux was built without CUDA support";
	return PLX_EUNAVAIL;
}

int plx_cuda_init(struct plx_reactor *r, const struct plx_cuda_config *cfg)
{
	if (cfg && cfg->device < 0)
		return PLX_EINVAL;
	plx__log(plx__r(r), PLX_LOG_WARN,
		 "cuda: unavailable: pollux was built without CUDA support");
	return PLX_EUNAVAIL;
}

int plx_cuda_info(struct plx_reactor *r, struct plx_cuda_info *out)
{
	(void)r;
	(void)out;
	return PLX_EUNAVAIL;
}

int plx__cuda_local_check(struct plx_reactor *r, const void *p, uint64_t len)
{
	(void)r;
	(void)p;
	(void)len;
	return 0; /* no CUDA transport: no device regions */
}

int plx_cuda_stats(struct plx_reactor *r, struct plx_cuda_stats *out)
{
	(void)r;
	(void)out;
	return PLX_EUNAVAIL;
}

/* No CUDA transport: no staging; nothing ever holds a slot. */
void plx__cuda_stage_info(struct plx_reactor *r,
			  struct plx__cuda_stage_info *out)
{
	(void)r;
	memset(out, 0, sizeof(*out));
}

struct plx__cslot *plx__cuda_get(struct plx_reactor *r, uint64_t bytes,
				 int side)
{
	(void)r;
	(void)bytes;
	(void)side;
	return NULL;
}

void plx__cuda_put(struct plx_reactor *r, struct plx__cslot *s)
{
	(void)r;
	(void)s;
}

int plx__cuda_copy(struct plx_reactor *r, struct plx__cslot *s, bool to_device,
		   void *dev, uint64_t n, plx__copy_done done, void *owner)
{
	(void)r;
	(void)s;
	(void)to_device;
	(void)dev;
	(void)n;
	(void)done;
	(void)owner;
	return PLX_EUNAVAIL;
}

void plx__cuda_forget(struct plx_reactor *r, const void *owner)
{
	(void)r;
	(void)owner;
}
