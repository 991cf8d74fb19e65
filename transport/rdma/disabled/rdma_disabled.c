/* SPDX-License-Identifier: MIT */
/*
 * The public RDMA calls in a build without the RDMA transport
 * (PLX_WITH_RDMA=OFF, or no <infiniband/verbs.h> at build time): the
 * transport is unavailable, exactly as on a host without rdma-core.
 */
#include <string.h>

#include "pollux/rdma.h"
#include "reactor/internal.h"

void plx_rdma_config_init(struct plx_rdma_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->gid_index = -1;
	cfg->cq_size = 4096;
}

int plx_rdma_init(struct plx_reactor *r, const struct plx_rdma_config *cfg)
{
	(void)cfg;
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
