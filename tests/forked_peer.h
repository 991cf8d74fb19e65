/* SPDX-License-Identifier: MIT */
/*
 * Test helper for the tests with a forked server (two-process and
 * network-namespace): the echo server the child runs (it accepts one
 * peer, posts a receive of up to CHUNK bytes and echoes every message back
 * with tag 2), and the parent's reactor state, event handler and bounded
 * wait PWAIT. The including test defines CHUNK and MS. Static state:
 * include from one test file only.
 */
#ifndef PLX_TEST_FORKED_PEER_H
#define PLX_TEST_FORKED_PEER_H

#include "pollux/pollux.h"

static struct {
	struct plx_reactor r;
	struct plx_tcp_config cfg;
	struct plx_region reg;
	struct plx_ep *ep;
	struct plx_op rv, echo;
	uint8_t *buf;
	uint8_t *mem;
} S;

static void srv_post_recv(void);

static void srv_echo_cb(struct plx_reactor *r, struct plx_req *req)
{
	(void)r;
	if (req->status == 0)
		srv_post_recv();
}

/* Echo every message back with tag 2. */
static void srv_recv_cb(struct plx_reactor *r, struct plx_req *req)
{
	(void)r;
	if (req->status)
		return; /* the connection is gone */
	plx_op_init(&S.echo, srv_echo_cb, NULL);
	plx_ep_send(S.ep, &S.echo, S.buf, req->bytes, 2);
}

static void srv_post_recv(void)
{
	plx_op_init(&S.rv, srv_recv_cb, NULL);
	plx_ep_recv(S.ep, &S.rv, S.buf, CHUNK, 0, 0);
}

static void srv_event(struct plx_reactor *r, struct plx_ep *ep, int event,
		      int status, void *arg)
{
	(void)r;
	(void)status;
	(void)arg;
	if (event == PLX_EP_ACCEPTED) {
		S.ep = ep;
		srv_post_recv();
	} else if (event == PLX_EP_CLOSED && ep == S.ep) {
		S.ep = NULL;
	}
}

/* ---- the parent: its reactor and the events it saw ---------------- */

static struct {
	struct plx_reactor r;
	struct plx_tcp_config cfg;
	int connected, down, down_status, closed, unexpected;
	uint64_t t_down; /* when the first PLX_EP_DOWN arrived */
} P;

static void parent_event(struct plx_reactor *r, struct plx_ep *ep, int event,
			 int status, void *arg)
{
	(void)r;
	(void)ep;
	(void)arg;
	switch (event) {
	case PLX_EP_CONNECTED:
		P.connected++;
		break;
	case PLX_EP_DOWN:
		if (!P.down++)
			P.t_down = plx_now_ns();
		P.down_status = status;
		break;
	case PLX_EP_CLOSED:
		P.closed++;
		break;
	default:
		P.unexpected++;
		break;
	}
}

/* The parent sleeps on its reactor fd when idle (the child needs the
 * other core). */
#define PWAIT(cond, ms)                                                        \
	do {                                                                   \
		uint64_t end_ = plx_now_ns() + (uint64_t)(ms)*MS;              \
		while (!(cond) && plx_now_ns() < end_)                         \
			plx_reactor_wait(&P.r, 1);                             \
		if (!(cond))                                                   \
			PLX_FAIL("timed out after %d ms waiting for %s",       \
				 (int)(ms), #cond);                            \
	} while (0)

#endif /* PLX_TEST_FORKED_PEER_H */
