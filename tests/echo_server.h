/* SPDX-License-Identifier: MIT */
/*
 * Test helper: the echo server a forked child runs (two-process and
 * network-namespace tests). It accepts one peer, posts a receive of up to
 * CHUNK bytes (the including test defines CHUNK), and echoes every message
 * back with tag 2. Static state: include from one test file only.
 */
#ifndef PLX_TEST_ECHO_SERVER_H
#define PLX_TEST_ECHO_SERVER_H

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

#endif /* PLX_TEST_ECHO_SERVER_H */
