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

#include <stdbool.h>
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
	/* plx_mem_deregister(@reg), before anything else: return PLX_EBUSY
	 * to refuse it because the transport itself uses @reg (the CUDA
	 * bounce pool while slots are taken), else 0. May be NULL. */
	int (*region_hold)(struct plx_reactor *r, void *ctx,
			   const struct plx_region *reg);
	/* Owner thread, before every transport's region_add(): say what
	 * kind of memory @reg is (the CUDA transport sets PLX_HINT_CUDA),
	 * so that the others can decide. Cannot fail. May be NULL. */
	void (*region_classify)(struct plx_reactor *r, void *ctx,
				struct plx_region *reg);
};

/*
 * plx__cuda_local_check() - is [@p, @p + @len) in a registered CUDA
 * device region? 1 if so (the CPU must not touch it: stage it), else 0.
 * Owner thread; call only when the reactor's ndevice_regions is not 0.
 * (transport/cuda/.)
 */
int plx__cuda_local_check(struct plx_reactor *r, const void *p, uint64_t len);

/*
 * GPUDirect RDMA, the CUDA side (transport/cuda/gdr.c; a stub in
 * transport/cuda/disabled/), for the RDMA transport's registration of a
 * region classified as device memory (PLX_HINT_CUDA). Owner thread.
 *
 * plx__cuda_gpudirect() - 1 when plx_cuda_config.gpudirect allows an MR
 * on device memory, 0 when it says PLX_CUDA_GPUDIRECT_OFF.
 *
 * plx__cuda_dmabuf() - export @reg's device memory as a dma-buf: *@fd
 * (the caller closes it) covers the page-aligned allocation around it,
 * and @reg starts *@offset bytes into it. The caller's current device is
 * unchanged. Return: 0; PLX_ENOTSUP (the runtime or driver cannot export:
 * no cudaGetDriverEntryPointByVersion before CUDA 12.5, or no
 * cuMemGetHandleForAddressRange); the driver's error mapped to a PLX_E*
 * (the original in plx_cuda_info().last_error). Failures are logged.
 */
int plx__cuda_gpudirect(struct plx_reactor *r);
int plx__cuda_dmabuf(struct plx_reactor *r, const struct plx_region *reg,
		     int *fd, uint64_t *offset);

/*
 * Staging slots (transport/cuda/stage.c): the bounce pool of
 * plx_cuda_config, cut into chunk-sized slots. A transport takes a run of
 * slots, has the CUDA transport copy between it and device memory
 * (asynchronously: @done runs from the reactor's CUDA phase once the
 * copy's event has completed, with 0 or a PLX_E*), and puts the run back.
 * Owner thread only.
 */
struct plx__cslot;
typedef void (*plx__copy_done)(struct plx_reactor *r, struct plx__cslot *s,
			       int status);
struct plx__cslot {
	uint8_t *buf; /* bounce memory: run * chunk bytes */
	uint32_t idx; /* slot index (0 .. slots - 1) */
	uint32_t run; /* slots held from idx */
	plx__copy_done done;
	void *owner; /* the caller's: plx__cuda_forget() matches it */
	uint64_t arg[4];
	/* the CUDA transport's */
	struct plx__cslot *qnext;
	void *ev;
	uint64_t len;
	uint8_t dir;
	uint8_t side;
};

/* The staging set-up: bytes per slot (0: no staging configured), slots,
 * staged ops allowed at once, and the counters plx_cuda_stats() shows. */
struct plx_cuda_stats;
struct plx__cuda_stage_info {
	uint32_t chunk, nslots, max_transfers;
	struct plx_cuda_stats *st;
};
void plx__cuda_stage_info(struct plx_reactor *r,
			  struct plx__cuda_stage_info *out);
/* A run of slots holding @bytes, or NULL when none is free now (a later
 * plx__tcp_stage_kick() says when some are). @side: 0 for ops this
 * reactor started, 1 for a peer's accesses it serves; each side may hold
 * at most half the slots, so that neither can starve the other: a
 * connection waiting for a slot for a peer's write must not wait on the
 * ACKs behind that write, which free this side's own slots. */
struct plx__cslot *plx__cuda_get(struct plx_reactor *r, uint64_t bytes,
				 int side);
void plx__cuda_put(struct plx_reactor *r, struct plx__cslot *s);
/* Copy @n bytes between @s->buf and device address @dev: to the device
 * when @to_device, else from it. Return 0 (@done will run) or a PLX_E*
 * (nothing started). */
int plx__cuda_copy(struct plx_reactor *r, struct plx__cslot *s, bool to_device,
		   void *dev, uint64_t n, plx__copy_done done, void *owner);
/* @owner is going away: its copies still in flight complete without
 * calling back (their slots return to the pool then). */
void plx__cuda_forget(struct plx_reactor *r, const void *owner);
/* Slots came back after a plx__cuda_get() found none (the CUDA phase
 * calls this; transport/tcp/stage.c). */
void plx__tcp_stage_kick(struct plx_reactor *r);

/* Slots of struct plx_region's plx_transport[]. */
#define PLX__TSLOT_RDMA 0 /* struct ibv_mr * */
#define PLX__TSLOT_CUDA 1 /* device ordinal + 1, for device memory */
#define PLX__TSLOT_GDR 2  /* enum plx_cuda_path, set by the RDMA transport */

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
