/* SPDX-License-Identifier: MIT */
/*
 * Request lifecycle, shared by the reactor loop and (later) transports.
 *
 * plx_state (atomic, read by waiting threads):
 *   IDLE    - initialised or completed in callback mode; may be submitted
 *   QUEUED  - submitted, not yet completed: belongs to pollux
 *   DONE    - completed in handle mode; status and bytes are valid
 *   WAITER  - flag bit: a thread sleeps on the futex for this request
 * plx_flags (owner thread only): what a deferred-list entry needs next.
 */
#ifndef PLX_REACTOR_REQ_H
#define PLX_REACTOR_REQ_H

#include "reactor/internal.h"

enum {
	PLX__REQ_IDLE = 0,
	PLX__REQ_QUEUED = 1,
	PLX__REQ_DONE = 2,
	PLX__REQ_STATE_MASK = 0xff,
	PLX__REQ_WAITER = 0x100,
};

enum {
	PLX__RF_CALL = 0x1,	/* on the deferred list: run plx_fn */
	PLX__RF_COMPLETE = 0x2, /* on the deferred list: deliver result */
};

/*
 * Start a request on the owner thread for a transport operation: check it
 * is not in flight, mark it QUEUED and count it as live. It is completed
 * later with plx_req_complete(). Return 0 or PLX_EBUSY / PLX_EINVAL.
 */
int plx__req_begin(struct plx_reactor *r, struct plx_req *req);

/* Run a request drained from the ring (owner thread, inside poll). */
void plx__req_run(struct plx_reactor *r, struct plx_req *req);
/* Run the deferred list as it stood on entry. Return events handled. */
int plx__req_run_deferred(struct plx_reactor *r);

#endif /* PLX_REACTOR_REQ_H */
