/* SPDX-License-Identifier: MIT */
/*
 * The one internal interface between the reactor and its transports.
 *
 * A transport (TCP, RDMA, CUDA staging) registers an ops table and a
 * context with plx__reactor_add_transport(). The reactor then calls:
 *  - poll() in the transport's phase of every plx_reactor_poll();
 *  - arm() from plx_reactor_arm(): the transport makes sure its events will
 *    wake the reactor fd (e.g. ibv_req_notify_cq) and returns PLX_EBUSY if
 *    it already has work pending;
 *  - live() from plx_reactor_fini(): the number of live objects (endpoints,
 *    ops in flight) that keep fini from succeeding;
 *  - fini() when the reactor finishes with live() == 0;
 *  - region_gone() from plx_mem_deregister(), before it returns;
 *  - region_add() from plx_mem_register() once the region is in the
 *    registry (the RDMA transport registers an MR), and region_del() from
 *    plx_mem_deregister() after region_gone() (and for a registration
 *    that another transport's region_add() refused).
 * Dependencies point one way: transports include reactor/internal.h; the
 * reactor includes only this header.
 */
#ifndef PLX_TRANSPORT_H
#define PLX_TRANSPORT_H

#include <stdint.h>

struct plx_reactor;
struct plx_region;

/* Poll phases, in the order plx_reactor_poll() runs them. */
enum plx__phase {
	PLX__PHASE_CQ = 0,     /* RDMA completion queues */
	PLX__PHASE_SOCKET = 1, /* sockets */
	PLX__PHASE_CUDA = 2,   /* CUDA copy events */
	PLX__PHASE_COUNT
};

struct plx__transport_ops {
	const char *name;
	enum plx__phase phase;
	/* Handle at most @budget events; return how many (>= 0). May be
	 * NULL: nothing to poll (the transport only has hooks). */
	int (*poll)(struct plx_reactor *r, void *ctx, uint32_t budget);
	/* Return 0 when armed, PLX_EBUSY when work is pending. May be NULL. */
	int (*arm)(struct plx_reactor *r, void *ctx);
	/* Live objects preventing reactor fini. May be NULL (none). */
	uint64_t (*live)(struct plx_reactor *r, void *ctx);
	/* Release everything; called once, with live() == 0. May be NULL. */
	void (*fini)(struct plx_reactor *r, void *ctx);
	/* A registration of [addr, addr + len) was revoked: stop every
	 * access to it now (an incoming payload still landing there, an
	 * outgoing response still being read from it). May be NULL. */
	void (*region_gone)(struct plx_reactor *r, void *ctx, uint64_t addr,
			    uint64_t len);
	/* @reg was registered: set up per-transport state (in
	 * reg->plx_transport[slot], rkey and hints). Return 0 or a status,
	 * which fails the registration. May be NULL. */
	int (*region_add)(struct plx_reactor *r, void *ctx,
			  struct plx_region *reg);
	/* Undo region_add() for @reg (only called after it succeeded). */
	void (*region_del)(struct plx_reactor *r, void *ctx,
			   struct plx_region *reg);
	/* ANY thread (plx_mem_register_mt): the expensive part of a
	 * registration of [addr, addr + len) with PLX_ACCESS_* @access, done
	 * ahead; *@state receives it. The owner then puts @state into
	 * reg->plx_transport[PLX__TSLOT_RDMA] before region_add(), which
	 * adopts it (and frees it if it fails). Only the transport owning
	 * that slot may have this. May be NULL. */
	int (*region_pin)(void *ctx, uint64_t addr, uint64_t len,
			  uint32_t access, void **state);
	/* Any thread: free a region_pin() state nobody adopted. */
	void (*region_unpin)(void *ctx, void *state);
	/* Owner thread, before every transport's region_add(): say what
	 * kind of memory @reg is (the CUDA transport sets PLX_HINT_CUDA),
	 * so that the others can decide. Cannot fail. May be NULL. */
	void (*region_classify)(struct plx_reactor *r, void *ctx,
				struct plx_region *reg);
};

/*
 * plx__cuda_local_check() - ops must not hand CUDA device memory to the
 * CPU (no staging yet): PLX_ENOTSUP when [@p, @p + @len) overlaps a
 * registered device region, else 0. Owner thread; call only when the
 * reactor's ndevice_regions is not 0. (transport/cuda/.)
 */
int plx__cuda_local_check(struct plx_reactor *r, const void *p, uint64_t len);

/* Slots of struct plx_region's plx_transport[]. */
#define PLX__TSLOT_RDMA 0 /* struct ibv_mr * */
#define PLX__TSLOT_CUDA 1 /* device ordinal + 1, for device memory */

/*
 * plx__reactor_add_transport() - attach @ops/@ctx to @r (owner thread).
 * Return: 0; PLX_ENOSPC (all transport slots used); PLX_EEXIST (@ops is
 * already attached).
 */
int plx__reactor_add_transport(struct plx_reactor *r,
			       const struct plx__transport_ops *ops, void *ctx);

/*
 * plx__reactor_transport() - the context @ops was attached with to @r, or
 * NULL when that transport is not attached. Owner thread.
 */
void *plx__reactor_transport(struct plx_reactor *r,
			     const struct plx__transport_ops *ops);

/*
 * plx__reactor_watch_fd() - add @fd to the reactor fd's epoll set with
 * @events (EPOLLIN...), so it wakes a sleeping owner. The transport polls
 * its own fds; the reactor only sleeps on them. Return 0 or -errno.
 */
int plx__reactor_watch_fd(struct plx_reactor *r, int fd, uint32_t events);
int plx__reactor_unwatch_fd(struct plx_reactor *r, int fd);

#endif /* PLX_TRANSPORT_H */
