/* SPDX-License-Identifier: MIT */
/*
 * The flush budget (plx_tcp_config.flush_max; conn.c, plx__conn_flush()):
 * one flush hands the socket at most that many bytes; the rest leaves at
 * the next poll. The sides here use 1 MiB.
 *
 * 1. Two writes in one batch, the first ending just below the budget, so
 *    that the second one's header crosses it (ends 8 to 256 bytes below
 *    the budget, in steps of 8): both complete and land. The first
 *    version of the budget computed the cut of the second payload from a
 *    total already past the budget, and its sendmsg() failed with
 *    EINVAL, which took the connection down (found on a GPU machine).
 * 2. With the target polled on a thread of its own, so that the socket
 *    takes whatever it is offered, a batch of 16 writes of 1 MiB: the
 *    flush at the end of the batch sends at most the budget, and every
 *    write then completes and lands. Without the budget, that flush kept
 *    the thread in sendmsg() until most of the 16 MiB had left.
 * 3. The default is 8 MiB; below 64 KiB or above 1 GiB, plx_tcp_init()
 *    refuses the configuration.
 * 4. The eager send's full socket: 1 KiB writes, one at a time, into a
 *    peer that does not read (small socket buffers). Each leaves whole,
 *    with nothing queued, until one finds the socket full: it is queued
 *    (here the kernel took part of it) with EPOLLOUT armed, later writes
 *    queue behind it, and all land once the peer reads.
 */
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "tcp_pair.h"
#include "transport/tcp/tcp_internal.h"

#define MIB (1u << 20)
#define BUDGET MIB
#define NBIG 16
#define REGION ((NBIG + 1) * MIB)

static struct side A, B;
static uint8_t *src, *dst;

static void no_stripes(struct side *s)
{
	s->cfg.stripes = 0; /* every frame on the one connection */
	s->cfg.max_message = 2 * MIB;
	s->cfg.flush_max = BUDGET;
}

/* A's endpoint to B (A connects), B's region described to A. */
static struct plx_ep *connect_pair(struct plx_region *br, struct plx_desc *bd)
{
	struct plx_ep *ep;

	side_init_with(&B, "127.0.0.1", NULL, NULL, no_stripes);
	side_init_with(&A, NULL, NULL, NULL, no_stripes);
	EXPECT_OK(plx_mem_register(&B.r, br, dst, REGION,
				   PLX_ACCESS_REMOTE_WRITE));
	EXPECT_OK(plx_mem_desc(&B.r, br, bd));
	EXPECT_OK(plx_tcp_connect(&A.r, "127.0.0.1", B.port, &ep));
	EXPECT_TRUE(pair_wait_event(&A, &B, &A, PLX_EP_CONNECTED, 5000));
	EXPECT_TRUE(pair_wait_event(&A, &B, &B, PLX_EP_ACCEPTED, 5000));
	return ep;
}

static void teardown(struct plx_region *br)
{
	EXPECT_OK(plx_mem_deregister(&B.r, br));
	side_fini(&A, &B);
	side_fini(&B, NULL);
}

static void test_header_across_the_budget(void)
{
	struct plx_region br;
	struct plx_desc bd;
	struct plx_ep *ep = connect_pair(&br, &bd);

	for (uint64_t below = 256; below > 0; below -= 8) {
		/* a write's header is 48 bytes */
		uint64_t len1 = BUDGET - 48 - below, len2 = 64 * 1024;
		struct tracked w1, w2;

		plx_test_fill(src, len1 + len2, (uint32_t)below);
		tracked_init(&w1);
		tracked_init(&w2);
		EXPECT_OK(plx_ep_batch_begin(ep));
		EXPECT_OK(plx_ep_write(ep, &w1.op, src, len1, &bd, 0));
		EXPECT_OK(
			plx_ep_write(ep, &w2.op, src + len1, len2, &bd, len1));
		EXPECT_OK(plx_ep_batch_end(ep));
		EXPECT_TRUE(pair_until(&A, &B, &w2.done, 10000));
		EXPECT_TRUE(pair_until(&A, &B, &w1.done, 10000));
		EXPECT_OK(w1.status);
		EXPECT_OK(w2.status);
		EXPECT_TRUE(!memcmp(dst, src, len1 + len2));
	}
	teardown(&br);
}

static int b_stop, b_ready;
static struct plx_desc b_desc;

/* B on a thread of its own (a reactor belongs to the thread that made
 * it): set up, then polled until told to stop, then torn down. */
static void *b_thread(void *arg)
{
	struct plx_region br;

	(void)arg;
	side_init_with(&B, "127.0.0.1", NULL, NULL, no_stripes);
	EXPECT_OK(plx_mem_register(&B.r, &br, dst, REGION,
				   PLX_ACCESS_REMOTE_WRITE));
	EXPECT_OK(plx_mem_desc(&B.r, &br, &b_desc));
	__atomic_store_n(&b_ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&b_stop, __ATOMIC_ACQUIRE)) {
		plx_reactor_poll(&B.r);
		sched_yield();
	}
	EXPECT_OK(plx_mem_deregister(&B.r, &br));
	side_fini(&B, NULL);
	return NULL;
}

/* Every one of @w[0..n) completed. */
static int all_done(const struct tracked *w, int n)
{
	for (int i = 0; i < n; i++)
		if (!w[i].done)
			return 0;
	return 1;
}

/* Bytes of @t's frame that have left A's queue. */
static uint64_t left_queue(struct tracked *t)
{
	struct plx__op *o = plx__op(&t->op);

	if (t->done || o->state != PLX__S_TX)
		return o->tx.hdr_len + o->tx.payload_len;
	return o->tx.sent;
}

static void test_flush_bounded(void)
{
	static struct tracked w[NBIG];
	struct plx_ep *ep;
	pthread_t th;
	uint64_t sent = 0, end;

	plx_test_fill(src, NBIG * MIB, 7);
	memset(dst, 0, REGION);
	EXPECT_EQ(pthread_create(&th, NULL, b_thread, NULL), 0);
	while (!__atomic_load_n(&b_ready, __ATOMIC_ACQUIRE))
		sched_yield();
	side_init_with(&A, NULL, NULL, NULL, no_stripes);
	EXPECT_OK(plx_tcp_connect(&A.r, "127.0.0.1", B.port, &ep));
	end = plx_now_ns() + 5000000000ull;
	while (!side_has_event(&A, PLX_EP_CONNECTED) && plx_now_ns() < end) {
		plx_reactor_poll(&A.r);
		sched_yield();
	}
	EXPECT_TRUE(side_has_event(&A, PLX_EP_CONNECTED));
	EXPECT_OK(plx_ep_batch_begin(ep));
	for (int i = 0; i < NBIG; i++) {
		tracked_init(&w[i]);
		EXPECT_OK(plx_ep_write(ep, &w[i].op, src + (size_t)i * MIB, MIB,
				       &b_desc, (uint64_t)i * MIB));
	}
	EXPECT_OK(plx_ep_batch_end(ep)); /* one flush */
	for (int i = 0; i < NBIG; i++)
		sent += left_queue(&w[i]);
	fprintf(stderr, "one flush of a 16 MiB queue sent %llu bytes\n",
		(unsigned long long)sent);
	EXPECT_TRUE(sent > 0);
	EXPECT_TRUE(sent <= BUDGET);
	/* the rest leaves at the next polls */
	end = plx_now_ns() + 30000000000ull;
	do {
		plx_reactor_poll(&A.r);
		sched_yield();
	} while (!all_done(w, NBIG) && plx_now_ns() < end);
	EXPECT_TRUE(all_done(w, NBIG));
	for (int i = 0; i < NBIG; i++)
		EXPECT_OK(w[i].status);
	EXPECT_TRUE(!memcmp(dst, src, NBIG * MIB));
	side_fini(&A, NULL); /* B's thread answers the close */
	__atomic_store_n(&b_stop, 1, __ATOMIC_RELEASE);
	EXPECT_EQ(pthread_join(th, NULL), 0);
}

static void test_config(void)
{
	static const uint32_t bad[] = {0, (64u << 10) - 1, (1u << 30) + 1};
	struct plx_tcp_config cfg;
	struct plx_reactor r;

	plx_tcp_config_init(&cfg);
	EXPECT_EQ(cfg.flush_max, 8u << 20);
	EXPECT_OK(plx_reactor_init(&r, NULL));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		plx_tcp_config_init(&cfg);
		cfg.flush_max = bad[i];
		EXPECT_STATUS(plx_tcp_init(&r, &cfg), PLX_EINVAL);
	}
	plx_tcp_config_init(&cfg);
	cfg.flush_max = 64u << 10;
	EXPECT_OK(plx_tcp_init(&r, &cfg));
	EXPECT_OK(plx_tcp_shutdown(&r));
	EXPECT_OK(plx_reactor_fini(&r));
}

static void small_buffers(struct side *s)
{
	no_stripes(s);
	s->cfg.sndbuf = 64 * 1024;
	s->cfg.rcvbuf = 64 * 1024;
}

static void test_eager_send_full_socket(void)
{
	enum {
		MSG = 1024,
		MAX_OPS = 4000,
		MORE = 8
	};
	static struct tracked w[MAX_OPS + MORE];
	struct plx_region br;
	struct plx_desc bd;
	struct plx_ep *ep;
	struct plx__conn *c;
	int n = 0;
	uint64_t end;

	side_init_with(&B, "127.0.0.1", NULL, NULL, small_buffers);
	side_init_with(&A, NULL, NULL, NULL, small_buffers);
	EXPECT_OK(plx_mem_register(&B.r, &br, dst, REGION,
				   PLX_ACCESS_REMOTE_WRITE));
	EXPECT_OK(plx_mem_desc(&B.r, &br, &bd));
	EXPECT_OK(plx_tcp_connect(&A.r, "127.0.0.1", B.port, &ep));
	EXPECT_TRUE(pair_wait_event(&A, &B, &A, PLX_EP_CONNECTED, 5000));
	EXPECT_TRUE(pair_wait_event(&A, &B, &B, PLX_EP_ACCEPTED, 5000));
	c = ep->conns;
	EXPECT_TRUE(c && !c->txq_head && !c->want_out);
	plx_test_fill(src, (size_t)(MAX_OPS + MORE) * MSG, 4);
	/* B is not polled: nothing is read, no ACK comes back */
	while (!c->want_out && n < MAX_OPS) {
		EXPECT_TRUE(!c->txq_head); /* the last one left whole */
		tracked_init(&w[n]);
		EXPECT_OK(plx_ep_write(ep, &w[n].op, src + (size_t)n * MSG, MSG,
				       &bd, (uint64_t)n * MSG));
		n++;
	}
	fprintf(stderr, "the socket was full at write %d\n", n);
	EXPECT_TRUE(c->want_out);
	EXPECT_EQ(c->txq_n, 1);
	EXPECT_TRUE(c->txq_head ==
		    &plx__op(&w[n - 1].op)->tx); /* the last one */
	for (int i = 0; i < MORE; i++, n++) {
		tracked_init(&w[n]);
		EXPECT_OK(plx_ep_write(ep, &w[n].op, src + (size_t)n * MSG, MSG,
				       &bd, (uint64_t)n * MSG));
	}
	EXPECT_EQ(c->txq_n, 1 + MORE);
	end = plx_now_ns() + 10000000000ull;
	do
		pair_poll(&A, &B);
	while (!all_done(w, n) && plx_now_ns() < end);
	EXPECT_TRUE(all_done(w, n));
	for (int i = 0; i < n; i++)
		EXPECT_OK(w[i].status);
	EXPECT_TRUE(!memcmp(dst, src, (size_t)n * MSG));
	teardown(&br);
}

int main(void)
{
	src = malloc(REGION);
	dst = calloc(1, REGION);
	EXPECT_TRUE(src && dst);
	test_header_across_the_budget();
	test_flush_bounded();
	test_config();
	test_eager_send_full_socket();
	free(src);
	free(dst);
	fprintf(stderr, "test_tcp_flush_budget: passed\n");
	return 0;
}
