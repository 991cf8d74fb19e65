/* SPDX-License-Identifier: MIT */
/*
 * RDMA transport internals shared by transport/rdma/ files (and tests that
 * drive verbs directly).
 */
#ifndef PLX_RDMA_INTERNAL_H
#define PLX_RDMA_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <infiniband/verbs.h>

#include "pollux/rdma.h"
#include "transport/rdma/loader.h"

struct plx__reactor;

/*
 * A work request's wr_id points at one of these (embedded in whatever
 * posted it); the CQ phase calls @fn with the completion. wr_id 0 marks
 * an unsignalled request that failed (only error completions carry it):
 * logged, nothing else to tell.
 */
struct plx__rdma_wc_handler {
	void (*fn)(struct plx_reactor *r, struct plx__rdma_wc_handler *h,
		   const struct ibv_wc *wc);
};

/* Completions polled by arm() and not yet delivered; at most this many. */
#define PLX__RDMA_STASH 16

struct plx__rdma {
	struct plx__reactor *x;
	const struct plx__ibv *ibv;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq;
	bool notify_armed; /* ibv_req_notify_cq done, no event seen since */
	bool drain;	   /* armed since the last poll: drain the channel */
	uint32_t unacked;  /* CQ events got, not yet acknowledged */
	uint32_t nstash;
	struct ibv_wc stash[PLX__RDMA_STASH];
	struct plx_rdma_info info;
	struct plx_rdma_config cfg;
	uint64_t completions; /* delivered to handlers */
	uint64_t cq_events;   /* completion-channel events drained */
};

/* The transport attached to @r, or NULL. Owner thread. */
struct plx__rdma *plx__rdma_get(struct plx_reactor *r);

/* gid.c: the GID rule of docs/rdma.md. */
/*
 * plx__rdma_gid_rank() - how much the auto rule likes a GID of @type
 * (IBV_GID_TYPE_*) and value @gid: 0 never (all-zero GID), 1 any other,
 * 2 RoCE v2, 3 RoCE v2 with a global IPv6 address, 4 RoCE v2 with an
 * IPv4-mapped address. Pure.
 */
int plx__rdma_gid_rank(int type, const uint8_t gid[16]);

#endif /* PLX_RDMA_INTERNAL_H */
