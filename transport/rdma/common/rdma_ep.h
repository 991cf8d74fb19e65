/* SPDX-License-Identifier: MIT */
/*
 * The interface between pollux endpoints (transport/tcp/ep.c) and the
 * RDMA channel an endpoint may own (transport/rdma/chan.c). No verbs
 * types: ep.c builds the same with or without the RDMA transport
 * (transport/rdma/disabled/ implements these as "never available").
 *
 * An endpoint's TCP session is its control path: when both sides have the
 * RDMA transport attached (HELLO capability PLX__CAP_RDMA), the endpoint
 * gets an RDMA channel whose queue pairs are connected by RDMA_CM frames
 * over the session (docs/rdma.md, "Connection set-up"). Writes, reads
 * and write_imm then go over the channel when their buffers allow it.
 */
#ifndef PLX_RDMA_EP_H
#define PLX_RDMA_EP_H

#include <stdbool.h>
#include <stdint.h>

struct plx_reactor;
struct plx_ep;
struct plx__op;
struct ibv_wc;

/*
 * A work request's wr_id points at one of these (embedded in whatever
 * posted it); the CQ phase calls @fn with the completion.
 */
struct plx__rdma_wc_handler {
	void (*fn)(struct plx_reactor *r, struct plx__rdma_wc_handler *h,
		   const struct ibv_wc *wc);
};

struct plx_rdma_config;

/* plx__rdma_config_check() - 0, or PLX_EINVAL for a bad @cfg (NULL: the
 * defaults, fine). common/config.c. */
int plx__rdma_config_check(const struct plx_rdma_config *cfg);

/* The RDMA transport is attached to @r (owner thread). */
bool plx__rdma_attached(struct plx_reactor *r);

/*
 * plx__rdma_ep_up() - @ep's session is established and both sides offered
 * PLX__CAP_RDMA: set up its channel (the side with the smaller node id
 * starts the connection at once; the other waits for its request).
 */
void plx__rdma_ep_up(struct plx_ep *ep);

/*
 * plx__rdma_ep_down() - @ep's session is gone (lost, peer restarted, or
 * @ep closing): every op on the channel fails with @status, exactly once,
 * and the channel is retired (its QPs flushed, then destroyed).
 */
void plx__rdma_ep_down(struct plx_ep *ep, int status);

/* plx__rdma_cm_input() - an RDMA_CM frame's payload arrived for @ep. */
void plx__rdma_cm_input(struct plx_ep *ep, const uint8_t *buf, uint32_t len);

/*
 * plx__rdma_submit() - start write / write_imm / read @o over @ep's
 * channel if it can carry it (channel up or connecting; the local buffer
 * registered, or small enough to go inline; the descriptor has an rkey).
 * Return: 1, not taken (the caller sends it over TCP); 0, started (it
 * completes through plx__op_done()); < 0, refused with that status.
 */
int plx__rdma_submit(struct plx_ep *ep, struct plx__op *o);

/* plx__rdma_kick() - a receive was posted on @ep (or room freed): retry
 * messages the channel holds for lack of a place. */
void plx__rdma_kick(struct plx_ep *ep);

/* plx__rdma_flush() - post what a batch queued on @ep's channel. */
void plx__rdma_flush(struct plx_ep *ep);

/* plx__rdma_cancel() - cancel @o, which is on an RDMA channel. */
void plx__rdma_cancel(struct plx__op *o, int status);

/* plx__rdma_expire() - fail @ep's RDMA ops whose deadline passed. */
void plx__rdma_expire(struct plx_ep *ep, uint64_t now);

/* plx__rdma_ep_busy() - ops are still on @ep's channel (@ep may not be
 * freed yet: a closing endpoint reports PLX_EP_CLOSED once this is false). */
bool plx__rdma_ep_busy(const struct plx_ep *ep);

/* plx__rdma_ep_gone() - @ep is being freed: release its channel. */
void plx__rdma_ep_gone(struct plx_ep *ep);

/* ep.c, for the channel: */
/*
 * plx__ep_send_cm() - queue an RDMA_CM frame with @len bytes (at most
 * PLX__WIRE_CM_MAX) on @ep's session. Return: 0; PLX_ENOTCONN (no
 * connection up); PLX_ENOBUFS (control entries exhausted).
 */
int plx__ep_send_cm(struct plx_ep *ep, const uint8_t *buf, uint32_t len);

/* plx__ep_start_tcp() - start @o (begun, counted in @ep's inflight) over
 * TCP instead: the channel gave up on it before posting anything. */
void plx__ep_start_tcp(struct plx_ep *ep, struct plx__op *o);

#endif /* PLX_RDMA_EP_H */
