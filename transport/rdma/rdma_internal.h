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
#include "transport/rdma/common/rdma_ep.h"
#include "transport/rdma/loader.h"

struct plx__reactor;
struct plx__rchan;

/* An MR of a registered region, in the address-sorted table. */
struct plx__rmr {
	uint64_t addr, end; /* [addr, end) */
	struct ibv_mr *mr;
};

/* Completions polled by arm() and not yet delivered; at most this many. */
#define PLX__RDMA_STASH 16

struct plx__rdma {
	struct plx__reactor *x;
	const struct plx__ibv *ibv;
	struct ibv_context *ctx;
	struct ibv_pd *pd;    /* MRs */
	struct ibv_td *td;    /* thread domain, or NULL */
	struct ibv_pd *qp_pd; /* QPs: a parent domain over pd and td, or pd */
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
	/* device limits the channels use */
	uint32_t max_qp_wr;
	uint32_t max_rd_atom; /* reads in flight per QP, each way */
	/* MRs of registered regions, sorted by addr */
	struct plx__rmr *mrs;
	uint32_t nmrs, cap_mrs;
	/* channels (one per endpoint with RDMA) and QPs still flushing */
	struct plx__rchan *chans;
	struct plx__rqp *retiring;
	/* QPs destroyed before their flush finished: their completions may
	 * still be in the CQ, naming their slots, so their memory stays
	 * until a poll has seen the CQ empty after the destroy */
	struct plx__rqp *dead;
	uint64_t cq_empty; /* polls that found the CQ (and stash) empty */
	uint64_t late_wcs; /* completions of dead QPs, ignored */
	uint32_t nlive;	   /* channels + retiring and dead QPs: keep the
			 * reactor alive */
	uint32_t gen;	   /* last connection generation drawn */
	struct plx_rdma_stats st;
	/* the peer GIDs' routes and neighbours (transport/rdma/route.c) */
	uint32_t ifindex; /* netdev behind our GID, 0: unknown (IB too) */
	int nl_fd;	  /* NETLINK_ROUTE socket, -1: not open */
	bool nl_failed;	  /* could not be opened: not asked again */
	uint32_t nl_seq;  /* last request's sequence number */
	/* looks again at channels holding a REQ or REP until the peer
	 * GID's neighbour is resolved; armed while there are any */
	struct plx_timer resolve_timer;
};

/*
 * plx__rdma_mr_find() - the MR of a registered region containing
 * [@addr, @addr + @len), or NULL (an overlap of regions is searched a few
 * entries deep). Owner thread.
 */
struct ibv_mr *plx__rdma_mr_find(const struct plx__rdma *d, uint64_t addr,
				 uint64_t len);

/* chan.c: */
/* plx__rdma_wc_status() - the PLX_E* for @wc's status (@flushed_as for a
 * flushed WR, or PLX_ECONNRESET when 0). */
int plx__rdma_wc_status(const struct ibv_wc *wc, int flushed_as);
/* Destroy retiring QPs whose flush did not finish by their deadline;
 * free dead ones the CQ has been seen empty since. */
void plx__rchan_reap(struct plx__rdma *d, uint64_t now);
/* Free every channel and QP at teardown. */
void plx__rchan_fini_all(struct plx__rdma *d);

/* d->resolve_timer's callback: channels holding a REQ or REP look at the
 * peer GID's neighbour again (transport/rdma/chan.c). */
void plx__rchan_resolve_fire(struct plx_reactor *r, struct plx_timer *t);

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
