/* SPDX-License-Identifier: MIT */
/*
 * Two orderings that cancellation must not break.
 *
 * 1. A write cancelled while still in the transmit queue never reaches
 *    the wire, but it had a sequence number: the receiver takes each
 *    frame's id (ids increase; a gap is such an op), so later ACKs and
 *    NACKs still name the right ops. 50,000 writes of 64 B fill the
 *    socket buffers, the last is cancelled, then a good write, a write
 *    with a wrong key and another good write follow: the cancelled one
 *    completes with PLX_ECANCELED, the wrong key with PLX_EKEYREJECTED,
 *    every other with success (before the fix the refusal was reported
 *    on the write before it, and the bad write "succeeded").
 * 2. PLX_EP_CLOSED is the last thing heard of an endpoint: the
 *    completions of its ops failed by plx_ep_close() / plx_tcp_shutdown()
 *    (called outside poll) come before it.
 */
#include "tcp_pair.h"

#define N 50000

static struct side A, B;
static struct tracked ops[N + 3];
static uint8_t tmem[(size_t)N * 64], src[64];

static void big_queue(struct side *s)
{
	s->cfg.send_queue = N + 16;
}

static void test_cancel_queued_keeps_acks(void)
{
	struct plx_ep *ep;
	struct plx_region reg;
	struct plx_desc d, bad;
	int done = 0;

	side_init(&A, "127.0.0.1", NULL, NULL);
	side_init_with(&B, NULL, NULL, NULL, big_queue);
	EXPECT_OK(plx_tcp_connect(&B.r, "127.0.0.1", A.port, &ep));
	EXPECT_TRUE(pair_wait_event(&A, &B, &B, PLX_EP_CONNECTED, 5000));
	EXPECT_OK(plx_mem_register(&A.r, &reg, tmem, sizeof(tmem),
				   PLX_ACCESS_REMOTE_WRITE));
	EXPECT_OK(plx_mem_desc(&A.r, &reg, &d));
	bad = d;
	bad.key ^= 1;
	memset(src, 0x3c, sizeof(src));
	for (int i = 0; i < N; i++) {
		tracked_init(&ops[i]);
		EXPECT_OK(plx_ep_write(ep, &ops[i].op, src, 64, &d,
				       (uint64_t)i * 64));
	}
	/* the last is still queued: nothing was polled yet */
	EXPECT_OK(plx_op_cancel(&B.r, &ops[N - 1].op));
	tracked_init(&ops[N]);
	EXPECT_OK(plx_ep_write(ep, &ops[N].op, src, 64, &d, 0));
	tracked_init(&ops[N + 1]);
	EXPECT_OK(plx_ep_write(ep, &ops[N + 1].op, src, 64, &bad, 0));
	tracked_init(&ops[N + 2]);
	EXPECT_OK(plx_ep_write(ep, &ops[N + 2].op, src, 64, &d, 64));
	for (uint64_t end = plx_now_ns() + 30000000000ull;
	     plx_now_ns() < end && done < N + 3;) {
		pair_poll(&A, &B);
		done = 0;
		for (int i = 0; i < N + 3; i++)
			done += ops[i].done;
	}
	EXPECT_EQ(done, N + 3);
	for (int i = 0; i < N + 3; i++) {
		EXPECT_EQ(ops[i].done, 1);
		if (i == N - 1)
			EXPECT_STATUS(ops[i].status, PLX_ECANCELED);
		else if (i == N + 1)
			EXPECT_STATUS(ops[i].status, PLX_EKEYREJECTED);
		else
			EXPECT_OK(ops[i].status);
	}
	EXPECT_OK(plx_mem_deregister(&A.r, &reg));
	EXPECT_OK(plx_ep_close(ep));
	side_fini(&B, &A);
	side_fini(&A, NULL);
}

static int order[8], norder;

static void order_ev(struct plx_reactor *r, struct plx_ep *ep, int event,
		     int status, void *arg)
{
	side_event(r, ep, event, status, arg);
	if (event == PLX_EP_CLOSED && arg == &A && norder < 8)
		order[norder++] = 1;
}

static void order_tw(struct side *s)
{
	s->cfg.event_cb = order_ev;
}

static void order_cb(struct plx_reactor *r, struct plx_req *req)
{
	(void)r;
	(void)req;
	if (norder < 8)
		order[norder++] = 2;
}

static void test_closed_after_completions(int shutdown)
{
	struct plx_ep *ep;
	struct plx_op op1, op2;
	char buf[64];

	norder = 0;
	side_init_with(&A, "127.0.0.1", NULL, NULL, order_tw);
	side_init_with(&B, NULL, NULL, NULL, order_tw);
	EXPECT_OK(plx_tcp_connect(&B.r, "127.0.0.1", A.port, &ep));
	EXPECT_TRUE(pair_wait_event(&A, &B, &A, PLX_EP_ACCEPTED, 5000));
	plx_op_init(&op1, order_cb, NULL);
	plx_op_init(&op2, order_cb, NULL);
	EXPECT_OK(plx_ep_recv(A.accepted, &op1, buf, sizeof(buf), 0, 0));
	EXPECT_OK(plx_ep_recv(A.accepted, &op2, buf, sizeof(buf), 0, 0));
	if (shutdown)
		EXPECT_OK(plx_tcp_shutdown(&A.r));
	else
		EXPECT_OK(plx_ep_close(A.accepted));
	for (int i = 0; i < 100; i++)
		pair_poll(&A, &B);
	EXPECT_EQ(norder, 3);
	EXPECT_EQ(order[0], 2);
	EXPECT_EQ(order[1], 2);
	EXPECT_EQ(order[2], 1); /* CLOSED last */
	EXPECT_OK(plx_ep_close(ep));
	side_fini(&B, &A);
	if (!shutdown)
		side_fini(&A, NULL);
	else
		EXPECT_OK(plx_reactor_fini(&A.r));
}

int main(void)
{
	test_cancel_queued_keeps_acks();
	test_closed_after_completions(0);
	test_closed_after_completions(1);
	return 0;
}
