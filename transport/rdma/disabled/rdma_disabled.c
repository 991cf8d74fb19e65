/* SPDX-License-Identifier: MIT */
/*
 * The public RDMA calls in a build without the RDMA transport
 * (PLX_WITH_RDMA=OFF, or no <infiniband/verbs.h> at build time): the
 * transport is unavailable, exactly as on a host without rdma-core.
 */
#include <string.h>

#include "pollux/rdma.h"
#include "reactor/internal.h"
#include "transport/rdma/common/rdma_ep.h"

int plx_rdma_init(struct plx_reactor *r, const struct plx_rdma_config *cfg)
{
	/* the same argument checks as the real transport, first */
	if (plx__rdma_config_check(cfg))
		return PLX_EINVAL;
	plx__log(plx__r(r), PLX_LOG_WARN,
		 "rdma: unavailable: pollux was built without the RDMA "
		 "transport");
	return PLX_EUNAVAIL;
}

int plx_rdma_info(struct plx_reactor *r, struct plx_rdma_info *out)
{
	(void)r;
	(void)out;
	return PLX_EUNAVAIL;
}

int plx_rdma_stats(struct plx_reactor *r, struct plx_rdma_stats *out)
{
	(void)r;
	(void)out;
	return PLX_EUNAVAIL;
}
