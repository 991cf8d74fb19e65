/* SPDX-License-Identifier: MIT */
/*
 * Striping: with stripes configured, the connecting side opens extra data
 * connections to the peer, and writes/reads above the threshold are split
 * into pieces over all of them. Data is verified; a cancelled or broken
 * split op completes exactly once with an error.
 */
#include <sys/socket.h>

#include "tcp_pair.h"
#include "transport/tcp/tcp_internal.h"

static struct side A, B;

static int up_conns(struct side *s)
{
	int n = 0;

	for (struct plx__conn *c = plx__tcp_get(&s->r)->conns; c; c = c->next)
		n += c->state == PLX__C_UP;
	return n;
}

static struct plx_ep *connect_striped(uint32_t stripes)
{
	struct plx_ep *ep;

	side_init(&A, "127.0.0.1", NULL, NULL);
	memset(&B, 0, sizeof(B));
	EXPECT_OK(plx_reactor_init(&B.r, NULL));
	plx_tcp_config_init(&B.cfg);
	B.cfg.event_cb = side_event;
	B.cfg.cb_arg = &B;
	B.cfg.stripes = stripes;
	B.cfg.stripe_threshold = 64 * 1024;
	B.cfg.stripe_chunk = 16 * 1024;
	EXPECT_OK(plx_tcp_init(&B.r, &B.cfg));
	EXPECT_OK(plx_tcp_connect(&B.r, "127.0.0.1", A.port, &ep));
	EXPECT_TRUE(pair_wait_event(&A, &B, &B, PLX_EP_CONNECTED, 5000));
	uint64_t end = plx_now_ns() + 5000000000ull;

	while ((up_conns(&A) < (int)stripes + 1 ||
		up_conns(&B) < (int)stripes + 1) &&
	       plx_now_ns() < end)
		pair_poll(&A, &B);
	EXPECT_EQ(up_conns(&A), stripes + 1);
	EXPECT_EQ(up_conns(&B), stripes + 1);
	EXPECT_EQ(plx_ep_conn_count(ep), stripes + 1);
	/* one endpoint each side, however many connections */
	EXPECT_EQ(plx__tcp_get(&A.r)->neps, 1);
	EXPECT_EQ(plx__tcp_get(&B.r)->neps, 1);
	return ep;
}

static void test_split_write_and_read_verified(void)
{
	struct plx_ep *ep = connect_striped(3);
	size_t n = 1u << 20;
	uint8_t *target = calloc(1, n), *src = malloc(n), *back = malloc(n);
	struct plx_region reg;
	struct plx_desc d;
	struct tracked w, r, small;
	uint64_t seed = plx_test_seed("stripe");
	uint64_t sent_before[8] = {0};
	int k = 0;

	for (size_t i = 0; i < n; i++)
		src[i] = (uint8_t)plx_test_rand(&seed);
	EXPECT_OK(plx_mem_register(&A.r, &reg, target, n, PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&A.r, &reg, &d));
	for (struct plx__conn *c = plx__tcp_get(&B.r)->conns; c && k < 8;
	     c = c->next)
		sent_before[k++] = c->tx_seq;
	tracked_init(&w);
	EXPECT_OK(plx_ep_write(ep, &w.op, src, n, &d, 0));
	EXPECT_TRUE(pair_until(&A, &B, &w.done, 10000));
	EXPECT_OK(w.status);
	EXPECT_U64_EQ(w.bytes, n);
	EXPECT_MEM_EQ(target, src, n);
	/* every data connection carried pieces */
	k = 0;
	for (struct plx__conn *c = plx__tcp_get(&B.r)->conns; c && k < 8;
	     c = c->next, k++)
		EXPECT_GT(c->tx_seq, sent_before[k]);
	tracked_init(&r);
	EXPECT_OK(plx_ep_read(ep, &r.op, back, n, &d, 0));
	EXPECT_TRUE(pair_until(&A, &B, &r.done, 10000));
	EXPECT_OK(r.status);
	EXPECT_MEM_EQ(back, src, n);
	/* below the threshold: one frame */
	tracked_init(&small);
	EXPECT_OK(plx_ep_write(ep, &small.op, src, 1000, &d, 5));
	EXPECT_TRUE(pair_until(&A, &B, &small.done, 2000));
	EXPECT_OK(small.status);
	EXPECT_OK(plx_mem_deregister(&A.r, &reg));
	free(target);
	free(src);
	free(back);
	side_fini(&B, &A);
	side_fini(&A, NULL);
}

static void test_split_op_cancel_and_broken_stripe(void)
{
	struct plx_ep *ep = connect_striped(2);
	size_t n = 4u << 20;
	uint8_t *target = calloc(1, n), *src = malloc(n);
	struct plx_region reg;
	struct plx_desc d;
	struct tracked w, c2;

	memset(src, 7, n);
	EXPECT_OK(plx_mem_register(&A.r, &reg, target, n, PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&A.r, &reg, &d));
	tracked_init(&w);
	EXPECT_OK(plx_ep_write(ep, &w.op, src, n, &d, 0));
	EXPECT_OK(plx_op_cancel(&B.r, &w.op));
	EXPECT_TRUE(pair_until(&A, &B, &w.done, 5000));
	EXPECT_STATUS(w.status, PLX_ECANCELED);
	for (int i = 0; i < 50; i++)
		pair_poll(&A, &B);
	EXPECT_EQ(w.done, 1);

	/* a data connection breaks while pieces are in flight */
	tracked_init(&c2);
	EXPECT_OK(plx_ep_write(ep, &c2.op, src, n, &d, 0));
	for (struct plx__conn *c = plx__tcp_get(&B.r)->conns; c; c = c->next)
		if (c->index == 1) {
			shutdown(c->fd, SHUT_RDWR);
			break;
		}
	EXPECT_TRUE(pair_until(&A, &B, &c2.done, 5000));
	EXPECT_EQ(c2.done, 1);
	EXPECT_TRUE(c2.status < 0);
	fprintf(stderr, "broken stripe: %s\n", plx_errname(c2.status));
	for (int i = 0; i < 50; i++)
		pair_poll(&A, &B);
	EXPECT_EQ(c2.done, 1);
	/* the endpoint still works on the connections left */
	tracked_init(&w);
	EXPECT_OK(plx_ep_write(ep, &w.op, src, n, &d, 0));
	EXPECT_TRUE(pair_until(&A, &B, &w.done, 5000));
	EXPECT_OK(w.status);
	EXPECT_MEM_EQ(target, src, n);
	EXPECT_OK(plx_mem_deregister(&A.r, &reg));
	free(target);
	free(src);
	side_fini(&B, &A);
	side_fini(&A, NULL);
}

/* Split ops inside a batch are still split, and leave at batch end. */
static void test_split_inside_batch(void)
{
	struct plx_ep *ep = connect_striped(2);
	size_t n = 1u << 20;
	uint8_t *target = calloc(1, n), *src = malloc(n);
	struct plx_region reg;
	struct plx_desc d;
	struct tracked w, s;
	uint64_t before[8] = {0};
	int k = 0;

	memset(src, 0x3c, n);
	EXPECT_OK(plx_mem_register(&A.r, &reg, target, n, PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&A.r, &reg, &d));
	for (struct plx__conn *c = plx__tcp_get(&B.r)->conns; c && k < 8;
	     c = c->next)
		before[k++] = c->tx_seq;
	EXPECT_OK(plx_ep_batch_begin(ep));
	tracked_init(&w);
	tracked_init(&s);
	EXPECT_OK(plx_ep_write(ep, &w.op, src, n, &d, 0));
	EXPECT_OK(plx_ep_send(ep, &s.op, "tail", 5, 1));
	for (int i = 0; i < 10; i++)
		plx_reactor_poll(&A.r);
	EXPECT_EQ(target[0], 0); /* nothing left before the batch ended */
	EXPECT_OK(plx_ep_batch_end(ep));
	EXPECT_TRUE(pair_until(&A, &B, &w.done, 5000));
	EXPECT_OK(w.status);
	EXPECT_MEM_EQ(target, src, n);
	k = 0;
	for (struct plx__conn *c = plx__tcp_get(&B.r)->conns; c && k < 8;
	     c = c->next, k++)
		EXPECT_GT(c->tx_seq, before[k]);
	EXPECT_TRUE(pair_until(&A, &B, &s.done, 2000));
	EXPECT_OK(plx_mem_deregister(&A.r, &reg));
	free(target);
	free(src);
	side_fini(&B, &A);
	side_fini(&A, NULL);
}

int main(void)
{
	test_split_write_and_read_verified();
	test_split_op_cancel_and_broken_stripe();
	test_split_inside_batch();
	return 0;
}
