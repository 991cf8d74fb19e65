/* SPDX-License-Identifier: MIT */
/*
 * A peer reconnects in the same session while this side still holds its
 * old connection, which the peer has given up (its endpoint closed while
 * the path was stalled, so the CLOSE never arrived).
 *
 * The client (node id 0xff..) reaches the server (node id 0x00..) through
 * the fault proxy of tests/fault/; the proxy then stops forwarding; the
 * client closes its endpoint and connects again, directly, from the same
 * reactor (same node, same epoch). The server now has two primary
 * connections from that session, both opened by the client.
 *
 * That is not a simultaneous open (there, each side opens one), so the
 * tie-break by node id must not apply: with these ids it kept the stale
 * connection and retired the new one, and the client got PLX_EP_DOWN a
 * moment after PLX_EP_CONNECTED, with no event at the server (seen in the
 * soak before it stopped reconnecting after proxied lifetimes). The side
 * that did not open them now uses the newer one and leaves the choice to
 * the opener, which retires what it no longer wants with CLOSE(0); the
 * stale one goes when it fails.
 *
 * Checked: the new connection stays up (no PLX_EP_DOWN at the client for
 * a second of traffic), writes both ways succeed over it, the server saw
 * no PLX_EP_DOWN either; when the proxy finally drops the stale
 * connection, nothing is reported and traffic goes on.
 */
#include <string.h>

#include "fault/proxy.h"
#include "tcp_pair.h"

static struct side S, C;
static uint8_t smem[4096], cmem[4096], src[64];

static void poll_all(struct fproxy *px, int step)
{
	plx_reactor_poll(&S.r);
	if (px && step)
		fproxy_step(px, 0);
	plx_reactor_poll(&C.r);
	if (px && step)
		fproxy_step(px, 0);
}

static int count_events(const struct side *s, int event)
{
	int n = 0;

	for (int i = 0; i < s->nev; i++)
		n += s->ev[i] == event;
	return n;
}

static void write_and_wait(struct plx_ep *ep, const struct plx_desc *d,
			   uint8_t v, struct fproxy *px, int step)
{
	struct tracked w;

	memset(src, v, sizeof(src));
	tracked_init(&w);
	EXPECT_OK(plx_ep_write(ep, &w.op, src, sizeof(src), d, 0));
	for (uint64_t end = plx_now_ns() + 2000000000ull;
	     !w.done && plx_now_ns() < end;)
		poll_all(px, step);
	EXPECT_EQ(w.done, 1);
	EXPECT_OK(w.status);
}

int main(void)
{
	struct plx_reactor_config scfg, ccfg;
	struct plx_region sr, cr;
	struct plx_desc sd, cd;
	struct plx_ep *old_ep, *ep;
	struct fproxy *px;
	uint16_t port;
	int down_s;

	plx_reactor_config_init(&scfg);
	plx_reactor_config_init(&ccfg);
	memset(scfg.node_id, 0x00, 16);
	scfg.node_id[15] = 1; /* all zero would mean "random" */
	memset(ccfg.node_id, 0xff, 16);
	side_init(&S, "127.0.0.1", NULL, &scfg);
	side_init(&C, NULL, NULL, &ccfg);
	EXPECT_OK(plx_mem_register(&S.r, &sr, smem, sizeof(smem),
				   PLX_ACCESS_REMOTE_WRITE));
	EXPECT_OK(plx_mem_register(&C.r, &cr, cmem, sizeof(cmem),
				   PLX_ACCESS_REMOTE_WRITE));
	EXPECT_OK(plx_mem_desc(&S.r, &sr, &sd));
	EXPECT_OK(plx_mem_desc(&C.r, &cr, &cd));
	EXPECT_EQ(fproxy_create(&px, S.port, &port), 0);

	/* 1. through the proxy: up, one write each way */
	EXPECT_OK(plx_tcp_connect(&C.r, "127.0.0.1", port, &old_ep));
	for (uint64_t end = plx_now_ns() + 5000000000ull;
	     plx_now_ns() < end &&
	     !(side_has_event(&C, PLX_EP_CONNECTED) && S.accepted);)
		poll_all(px, 1);
	EXPECT_TRUE(side_has_event(&C, PLX_EP_CONNECTED) && S.accepted);
	write_and_wait(old_ep, &sd, 1, px, 1);

	/* 2. the path stalls (the proxy is no longer stepped); the client
	 * gives its endpoint up: the CLOSE stays in the proxy */
	EXPECT_OK(plx_ep_close(old_ep));
	for (uint64_t end = plx_now_ns() + 5000000000ull;
	     plx_now_ns() < end && !side_has_event(&C, PLX_EP_CLOSED);)
		poll_all(px, 0);
	EXPECT_TRUE(side_has_event(&C, PLX_EP_CLOSED));
	EXPECT_EQ(count_events(&S, PLX_EP_DOWN),
		  0); /* the server knows nothing */

	/* 3. the same session connects again, directly */
	C.nev = 0;
	EXPECT_OK(plx_tcp_connect(&C.r, "127.0.0.1", S.port, &ep));
	for (uint64_t end = plx_now_ns() + 5000000000ull;
	     plx_now_ns() < end && !side_has_event(&C, PLX_EP_CONNECTED);)
		poll_all(px, 0);
	EXPECT_TRUE(side_has_event(&C, PLX_EP_CONNECTED));
	EXPECT_TRUE(S.accepted != NULL);
	/* a second of traffic both ways: the new connection stays */
	for (uint64_t end = plx_now_ns() + 1000000000ull; plx_now_ns() < end;) {
		write_and_wait(ep, &sd, 2, px, 0);
		write_and_wait(S.accepted, &cd, 3, px, 0);
	}
	EXPECT_EQ(count_events(&C, PLX_EP_DOWN), 0);
	down_s = count_events(&S, PLX_EP_DOWN);
	EXPECT_EQ(down_s, 0);

	/* 4. the stale connection is dropped at last: nothing is reported,
	 * and traffic goes on */
	fproxy_drop_all(px, 1);
	for (int i = 0; i < 100; i++)
		poll_all(px, 1);
	write_and_wait(ep, &sd, 4, px, 1);
	write_and_wait(S.accepted, &cd, 5, px, 1);
	EXPECT_EQ(count_events(&C, PLX_EP_DOWN), 0);
	EXPECT_EQ(count_events(&S, PLX_EP_DOWN), 0);

	EXPECT_OK(plx_mem_deregister(&S.r, &sr));
	EXPECT_OK(plx_mem_deregister(&C.r, &cr));
	EXPECT_OK(plx_ep_close(ep));
	for (uint64_t end = plx_now_ns() + 2000000000ull;
	     plx_now_ns() < end && !side_has_event(&C, PLX_EP_CLOSED);)
		poll_all(px, 1);
	EXPECT_OK(fproxy_start_thread(px));
	side_fini(&C, &S);
	side_fini(&S, NULL);
	fproxy_destroy(px);
	fprintf(stderr, "test_fault_stale_conn: all passed\n");
	return 0;
}
