/* SPDX-License-Identifier: MIT */
/*
 * The endpoint hooks of transport/rdma/common/rdma_ep.h in a build without
 * the RDMA transport: no reactor ever has it attached, so no endpoint gets
 * a channel and every op goes over TCP.
 */
#include <stddef.h>

#include "transport/tcp/tcp_internal.h"

bool plx__rdma_attached(struct plx_reactor *r)
{
	(void)r;
	return false;
}

void plx__rdma_ep_up(struct plx_ep *ep)
{
	(void)ep;
}

void plx__rdma_ep_down(struct plx_ep *ep, int status)
{
	(void)ep;
	(void)status;
}

void plx__rdma_cm_input(struct plx_ep *ep, const uint8_t *buf, uint32_t len)
{
	(void)buf;
	(void)len;
	plx__log(plx__r(ep->t->r), PLX_LOG_WARN,
		 "rdma: RDMA_CM frame on an endpoint without RDMA");
}

int plx__rdma_submit(struct plx_ep *ep, struct plx__op *o)
{
	(void)ep;
	(void)o;
	return 1;
}

void plx__rdma_kick(struct plx_ep *ep)
{
	(void)ep;
}

void plx__rdma_flush(struct plx_ep *ep)
{
	(void)ep;
}

void plx__rdma_cancel(struct plx__op *o, int status)
{
	(void)o;
	(void)status;
}

void plx__rdma_expire(struct plx_ep *ep, uint64_t now)
{
	(void)ep;
	(void)now;
}

bool plx__rdma_ep_busy(const struct plx_ep *ep)
{
	(void)ep;
	return false;
}

void plx__rdma_ep_gone(struct plx_ep *ep)
{
	(void)ep;
}
