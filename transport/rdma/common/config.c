/* SPDX-License-Identifier: MIT */
/*
 * struct plx_rdma_config defaults and checks, shared by the RDMA transport
 * and its stand-in in builds without it (transport/rdma/disabled/), so
 * that both answer bad arguments alike.
 */
#include <string.h>

#include "pollux/rdma.h"
#include "pollux/status.h"
#include "transport/rdma/common/rdma_ep.h"

void plx_rdma_config_init(struct plx_rdma_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->device = NULL;
	cfg->port = 0;
	cfg->gid_index = -1;
	cfg->cq_size = 4096;
	cfg->qps_per_ep = 1;
	cfg->split_min = 1u << 20;
	cfg->recv_pool = NULL;
	cfg->recv_depth = 16;
}

int plx__rdma_config_check(const struct plx_rdma_config *cfg)
{
	if (cfg &&
	    (!cfg->cq_size || cfg->gid_index < -1 || cfg->gid_index > 255 ||
	     cfg->port > 255 || cfg->qps_per_ep < 1 ||
	     cfg->qps_per_ep > PLX_RDMA_MAX_QPS || !cfg->split_min ||
	     cfg->recv_depth < 1 || cfg->recv_depth > 64 ||
	     (cfg->recv_pool && plx_pool_buf_size(cfg->recv_pool) < 64)))
		return PLX_EINVAL;
	return 0;
}
