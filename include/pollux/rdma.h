/* SPDX-License-Identifier: MIT */
/*
 * pollux RDMA transport (libibverbs, loaded at run time).
 *
 * plx_rdma_init() attaches one verbs device to a reactor: device, port and
 * GID chosen by the rule in docs/rdma.md, one protection domain, one
 * completion queue polled in the CQ phase of plx_reactor_poll(), and a
 * completion channel whose fd joins the reactor fd for event-driven use.
 * From then on registered regions get MRs (their descriptors an rkey), and
 * every endpoint whose peer has RDMA attached too gets RC queue pairs,
 * connected over the endpoint's TCP session: plx_ep_write(),
 * plx_ep_write_imm(), plx_ep_read() and (to a peer with a receive pool)
 * plx_ep_send() (include/pollux/ep.h) then go over RDMA where their
 * buffers allow, with the same semantics (docs/rdma.md).
 * Attach before connecting or listening: a connection whose handshake
 * started earlier did not offer RDMA and stays TCP-only.
 *
 * Where rdma-core is not installed, or no device has an active port,
 * plx_rdma_init() returns PLX_EUNAVAIL and the reactor (and its TCP
 * transport) keeps working.
 */
#ifndef POLLUX_RDMA_H
#define POLLUX_RDMA_H

#include <stdint.h>

#include "pollux/export.h"
#include "pollux/mem.h"
#include "pollux/reactor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* RDMA transport configuration. Fill with plx_rdma_config_init() first. */
struct plx_rdma_config {
	const char *device;  /* verbs device name ("mlx5_0", "rxe0"), or
			     * NULL: the first device with an active port;
			     * read only during plx_rdma_init() */
	uint32_t port;	     /* port number (1-based), or 0: the first
			     * active port; 0 */
	int gid_index;	     /* GID table index, or -1: chosen by the rule
			     * in docs/rdma.md (RoCE v2 preferred); -1 */
	uint32_t cq_size;    /* completion queue entries; 4096 (clamped to
			     * the device's maximum) */
	uint32_t qps_per_ep; /* RC queue pairs per endpoint,
			      * 1..PLX_RDMA_MAX_QPS; 1 */
	uint64_t split_min;  /* writes and reads of at least this many bytes
			      * are split over the endpoint's QPs (when it
			      * has more than one); 1 MiB */
	struct plx_pool *recv_pool; /* receive buffers for sends over RDMA:
				     * the caller's pool, all of its memory
				     * in one region registered with this
				     * reactor; buffers hold a message plus
				     * 24 bytes. NULL: sends stay on TCP.
				     * Must outlive the reactor's use of it
				     * (until plx_reactor_fini()); NULL */
	uint32_t recv_depth;	    /* receives posted per QP from
				     * recv_pool, 1..64; 16 */
};

/* Most QPs one endpoint uses. */
#define PLX_RDMA_MAX_QPS 4

/* plx_rdma_config_init() - defaults (documented per field). Any thread. */
PLX_API void plx_rdma_config_init(struct plx_rdma_config *cfg);

/*
 * plx_rdma_init() - attach the RDMA transport to @r: load libibverbs,
 * choose device, port and GID, open the device, allocate a PD, a
 * completion channel and one CQ, and watch the channel's fd from the
 * reactor fd. @cfg may be NULL (defaults); it is copied.
 *
 * Return: 0; PLX_EUNAVAIL (libibverbs or one of its symbols missing, no
 * verbs device, or no device with an active port: the reason goes to the
 * log callback; the reactor is unchanged and its other transports keep
 * working); PLX_ENODEV (@cfg->device names no device); PLX_ENETDOWN (the
 * named device/port is not active); PLX_ENOENT (@cfg->gid_index is not a
 * valid, non-zero GID of the port); PLX_EINVAL (bad config); PLX_EEXIST
 * (already attached); PLX_ENOMEM; PLX_EVERBS or -errno (a verbs call
 * failed). On failure nothing is left allocated.
 * Thread context: owner thread. Detached by plx_reactor_fini().
 */
PLX_API int plx_rdma_init(struct plx_reactor *r,
			  const struct plx_rdma_config *cfg);

/* What plx_rdma_init() chose. */
struct plx_rdma_info {
	char device[64];     /* verbs device name, NUL-terminated */
	uint32_t port;	     /* port number, 1-based */
	int gid_index;	     /* GID table index in use */
	uint8_t gid[16];     /* that GID, network byte order */
	int roce_version;    /* 2: RoCE v2, 1: RoCE v1, 0: InfiniBand
			       * (or a GID type the library cannot tell) */
	int link_layer;	     /* 1: InfiniBand, 2: Ethernet (IBV_LINK_LAYER_*) */
	uint16_t lid;	     /* port LID (InfiniBand; 0 on RoCE) */
	uint32_t active_mtu; /* active path MTU of the port, bytes */
	uint32_t cq_size;    /* CQ entries actually created */
	int cq_single_threaded; /* 1: the CQ was created single-threaded
				 * (no provider locks); 0: a plain CQ */
	int thread_domain;	/* 1: QPs live in a thread domain (parent
				 * domain); 0: the provider has none */
};

/* Counters of the RDMA transport (plx_rdma_stats()). */
struct plx_rdma_stats {
	uint64_t connects;	  /* connection attempts this side started */
	uint64_t qps_created;	  /* RC QPs created */
	uint64_t qps_destroyed;	  /* RC QPs destroyed (after their flush) */
	uint64_t ops_posted;	  /* ops handed to the NIC */
	uint64_t inline_wrs;	  /* WRs whose bytes went inline (small
				  * writes, sends, notices, acks) */
	uint64_t post_calls;	  /* ibv_post_send() calls: a batch of ops
				  * goes out as one chain per QP */
	uint64_t wc_errors;	  /* work completions with an error status
				  * (flushes included) */
	int last_wc_status;	  /* enum ibv_wc_status of the last error
				  * that was not a flush (the cause) */
	uint32_t last_vendor_err; /* and its vendor error code */
	uint64_t cm_bad;	  /* malformed connection messages dropped */
	uint64_t cm_crossed;	  /* connection requests that crossed ours
				  * (simultaneous open) */
	uint64_t cm_refused;	  /* connection requests refused: the peer
				  * sent more than 8, then one a second */
	uint64_t gid_waits;	  /* connection messages (REQ, REP) held
				  * until the kernel had resolved the peer
				  * GID's neighbour (docs/rdma.md) */
	uint64_t gid_unreachable; /* connection messages refused: the
				  * peer's GID had no route out of our
				  * port's netdev, or no neighbour in 3 s */
};

/*
 * plx_rdma_stats() - copy the counters into @out.
 * Return: 0; PLX_EUNAVAIL (the RDMA transport is not attached to @r).
 * Thread context: owner thread.
 */
PLX_API int plx_rdma_stats(struct plx_reactor *r, struct plx_rdma_stats *out);

/*
 * plx_rdma_info() - copy what plx_rdma_init() chose into @out.
 * Return: 0; PLX_EUNAVAIL (the RDMA transport is not attached to @r).
 * Thread context: owner thread.
 */
PLX_API int plx_rdma_info(struct plx_reactor *r, struct plx_rdma_info *out);

#ifdef __cplusplus
}
#endif

#endif /* POLLUX_RDMA_H */
