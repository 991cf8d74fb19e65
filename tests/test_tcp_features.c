/* SPDX-License-Identifier: MIT */
/*
 * TCP transport features: named regions resolved over the connection
 * (including regions registered after it was made), the pool receive mode
 * for messages of unknown size with back-pressure, batches sent together,
 * large writes read straight into place (one left in the socket reaches an
 * owner that sleeps; the next header comes with a payload's tail), and
 * any-thread (_mt) submission with completion handles.
 */
#include <pthread.h>
#include <sched.h>

#include "tcp_pair.h"

static struct side A, B;

static struct plx_ep *connect_pair(void)
{
	struct plx_ep *ep = NULL;

	EXPECT_OK(plx_tcp_connect(&B.r, "127.0.0.1", A.port, &ep));
	EXPECT_TRUE(pair_wait_event(&A, &B, &B, PLX_EP_CONNECTED, 5000));
	EXPECT_TRUE(pair_wait_event(&A, &B, &A, PLX_EP_ACCEPTED, 5000));
	return ep;
}

static void test_resolve_named_region_registered_later(void)
{
	static uint8_t kv[4096];
	struct plx_region reg, other;
	struct plx_desc d;
	struct tracked t, w;
	struct plx_ep *ep;

	side_init(&A, "127.0.0.1", NULL, NULL);
	side_init(&B, NULL, NULL, NULL);
	ep = connect_pair();
	/* registered and named after the connection exists */
	EXPECT_OK(plx_mem_register(&A.r, &reg, kv, sizeof(kv), PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_name(&A.r, &reg, "kv-cache"));
	EXPECT_OK(plx_mem_register(&A.r, &other, kv, 16, PLX_ACCESS_ALL));
	EXPECT_STATUS(plx_mem_name(&A.r, &other, "kv-cache"), PLX_EEXIST);
	EXPECT_STATUS(plx_mem_name(&A.r, &other, ""), PLX_EINVAL);
	EXPECT_OK(plx_mem_deregister(&A.r, &other));

	tracked_init(&t);
	EXPECT_OK(plx_ep_resolve(ep, &t.op, "kv-cache", &d));
	EXPECT_TRUE(pair_until(&A, &B, &t.done, 2000));
	EXPECT_OK(t.status);
	EXPECT_U64_EQ(d.addr, (uint64_t)(uintptr_t)kv);
	EXPECT_U64_EQ(d.len, sizeof(kv));
	tracked_init(&w);
	EXPECT_OK(plx_ep_write(ep, &w.op, "resolved", 9, &d, 100));
	EXPECT_TRUE(pair_until(&A, &B, &w.done, 2000));
	EXPECT_OK(w.status);
	EXPECT_TRUE(!strcmp((char *)kv + 100, "resolved"));

	tracked_init(&t);
	EXPECT_OK(plx_ep_resolve(ep, &t.op, "no-such-region", &d));
	EXPECT_TRUE(pair_until(&A, &B, &t.done, 2000));
	EXPECT_STATUS(t.status, PLX_ENOENT);
	/* deregistering drops the name at once */
	EXPECT_OK(plx_mem_deregister(&A.r, &reg));
	tracked_init(&t);
	EXPECT_OK(plx_ep_resolve(ep, &t.op, "kv-cache", &d));
	EXPECT_TRUE(pair_until(&A, &B, &t.done, 2000));
	EXPECT_STATUS(t.status, PLX_ENOENT);
	side_fini(&B, &A);
	side_fini(&A, NULL);
}

/* pool receive mode */
static void *g_held[16];
static size_t g_len[16];
static uint64_t g_tag[16];
static int g_nmsg;

static void on_msg(struct plx_reactor *r, struct plx_ep *ep, uint64_t tag,
		   void *buf, size_t len, void *arg)
{
	(void)r;
	(void)ep;
	(void)arg;
	if (g_nmsg < 16) {
		g_held[g_nmsg] = buf;
		g_len[g_nmsg] = len;
		g_tag[g_nmsg] = tag;
	}
	g_nmsg++;
}

static void test_pool_receive_mode_backpressure(void)
{
	static uint8_t poolmem[1 << 16] __attribute__((aligned(64)));
	struct plx_pool pool;
	struct tracked s[8], big;
	static char msg[8][4096], huge[5000];
	struct plx_ep *ep;

	EXPECT_OK(plx_pool_init(&pool, poolmem, sizeof(poolmem), 4096, 4));
	memset(&A, 0, sizeof(A));
	EXPECT_OK(plx_reactor_init(&A.r, NULL));
	plx_tcp_config_init(&A.cfg);
	A.cfg.event_cb = side_event;
	A.cfg.cb_arg = &A;
	A.cfg.msg_cb = on_msg;
	A.cfg.msg_pool = &pool;
	EXPECT_OK(plx_tcp_init(&A.r, &A.cfg));
	EXPECT_OK(plx_tcp_listen(&A.r, "127.0.0.1", 0, &A.port));
	side_init(&B, NULL, NULL, NULL);
	ep = connect_pair();

	g_nmsg = 0;
	for (int i = 0; i < 8; i++) {
		memset(msg[i], 'a' + i, sizeof(msg[i]));
		tracked_init(&s[i]);
		EXPECT_OK(plx_ep_send(ep, &s[i].op, msg[i], 1000 + 400 * i,
				      (uint64_t)i));
	}
	/* four buffers: four messages land, then the peer is held back */
	uint64_t end = plx_now_ns() + 300000000ull;

	while (plx_now_ns() < end)
		pair_poll(&A, &B);
	EXPECT_EQ(g_nmsg, 4);
	EXPECT_EQ(s[4].done, 0);
	for (int i = 0; i < 4; i++) {
		EXPECT_U64_EQ(g_tag[i], i);
		EXPECT_U64_EQ(g_len[i], 1000 + 400 * i);
		EXPECT_MEM_EQ(g_held[i], msg[i], g_len[i]);
		EXPECT_GE(plx_pool_index(&pool, g_held[i]), 0);
		EXPECT_OK(plx_pool_put(&pool, g_held[i]));
	}
	EXPECT_TRUE(pair_until(&A, &B, &s[7].done, 3000));
	EXPECT_EQ(g_nmsg, 8);
	for (int i = 4; i < 8; i++) {
		EXPECT_OK(s[i].status);
		EXPECT_MEM_EQ(g_held[i], msg[i], g_len[i]);
		EXPECT_OK(plx_pool_put(&pool, g_held[i]));
	}
	/* larger than a pool buffer: refused at both ends */
	tracked_init(&big);
	EXPECT_OK(plx_ep_send(ep, &big.op, huge, sizeof(huge), 99));
	EXPECT_TRUE(pair_until(&A, &B, &big.done, 2000));
	EXPECT_STATUS(big.status, PLX_EMSGSIZE);
	EXPECT_EQ(g_nmsg, 8);
	EXPECT_EQ(plx_pool_avail(&pool), 4);
	side_fini(&B, &A);
	side_fini(&A, NULL);
}

static void test_batch_leaves_together(void)
{
	static uint8_t target[16 * 256], src[16 * 256];
	struct plx_region reg;
	struct plx_desc d;
	struct tracked w[16];
	struct plx_ep *ep;

	side_init(&A, "127.0.0.1", NULL, NULL);
	side_init(&B, NULL, NULL, NULL);
	ep = connect_pair();
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 7);
	EXPECT_OK(plx_mem_register(&A.r, &reg, target, sizeof(target),
				   PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&A.r, &reg, &d));
	EXPECT_OK(plx_ep_batch_begin(ep));
	for (int i = 0; i < 16; i++) {
		tracked_init(&w[i]);
		EXPECT_OK(plx_ep_write(ep, &w[i].op, src + i * 256, 256, &d,
				       (uint64_t)i * 256));
	}
	/* nothing has left yet */
	for (int i = 0; i < 20; i++)
		plx_reactor_poll(&A.r);
	for (size_t i = 0; i < sizeof(target); i++)
		if (target[i])
			PLX_FAIL("byte %zu arrived before the batch ended", i);
	EXPECT_OK(plx_ep_batch_end(ep));
	EXPECT_STATUS(plx_ep_batch_end(ep), PLX_EINVAL);
	EXPECT_TRUE(pair_until(&A, &B, &w[15].done, 2000));
	for (int i = 0; i < 16; i++) {
		EXPECT_EQ(w[i].done, 1);
		EXPECT_OK(w[i].status);
	}
	EXPECT_MEM_EQ(target, src, sizeof(src));
	EXPECT_OK(plx_mem_deregister(&A.r, &reg));
	side_fini(&B, &A);
	side_fini(&A, NULL);
}

static void big_bufs(struct side *s)
{
	/* two large writes fit the socket buffers at once */
	s->cfg.rcvbuf = 1 << 20;
	s->cfg.sndbuf = 1 << 20;
}

/* Poll @a (only) until @p holds @v or @ms pass; true when it does. */
static int poll_until_byte(struct side *a, const uint8_t *p, uint8_t v, int ms)
{
	uint64_t t0 = plx_now_ns();

	while (*(volatile const uint8_t *)p != v &&
	       plx_now_ns() - t0 < (uint64_t)ms * 1000000ull)
		plx_reactor_poll(&a->r);
	return *(volatile const uint8_t *)p == v;
}

/*
 * Writes too large for the staging buffer, read straight into place
 * (conn.c, rx_payload() and big_done):
 *  - one that ends with the socket empty: the target returns to its owner
 *    without reading on. The next write, already in the socket when the
 *    owner goes to sleep in plx_reactor_wait(), must wake it at once, not
 *    after the 3 s timeout. The target polls busily first, as a serving
 *    loop does, which takes a hot connection off the epoll set until
 *    plx_reactor_wait() puts it back.
 *  - two that arrive together: the read that ends the first brings the
 *    second's header, so the poll that lands the first lands the second.
 */
static void test_big_frames_read_into_place(void)
{
	enum {
		BIG = 96 * 1024
	};
	static uint8_t target[4 * BIG], src[4 * BIG];
	struct plx_region reg;
	struct plx_desc d;
	struct tracked w[4];
	struct plx_ep *ep;
	uint64_t t0;

	side_init_with(&A, "127.0.0.1", NULL, NULL, big_bufs);
	side_init_with(&B, NULL, NULL, NULL, big_bufs);
	ep = connect_pair();
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 13 + 1);
	for (int i = 0; i < 4; i++)
		src[(size_t)(i + 1) * BIG - 1] = 0xa5;
	EXPECT_OK(plx_mem_register(&A.r, &reg, target, sizeof(target),
				   PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&A.r, &reg, &d));
	for (int i = 0; i < 4096; i++)
		plx_reactor_poll(&A.r);
	for (int i = 0; i < 4; i++)
		tracked_init(&w[i]);

	/* one write, then one that arrives while the owner sleeps */
	EXPECT_OK(plx_ep_write(ep, &w[0].op, src, BIG, &d, 0));
	EXPECT_TRUE(poll_until_byte(&A, &target[BIG - 1], 0xa5, 2000));
	EXPECT_OK(plx_ep_write(ep, &w[1].op, src + BIG, BIG, &d, BIG));
	t0 = plx_now_ns();
	while (*(volatile uint8_t *)&target[2 * BIG - 1] != 0xa5 &&
	       plx_now_ns() - t0 < 6000000000ull)
		plx_reactor_wait(&A.r, 3000);
	EXPECT_LT(plx_now_ns() - t0, 1000000000ull);

	/* two together, in one sendmsg() */
	EXPECT_OK(plx_ep_batch_begin(ep));
	for (int i = 2; i < 4; i++)
		EXPECT_OK(plx_ep_write(ep, &w[i].op, src + (size_t)i * BIG, BIG,
				       &d, (uint64_t)i * BIG));
	EXPECT_OK(plx_ep_batch_end(ep));
	EXPECT_TRUE(poll_until_byte(&A, &target[3 * BIG - 1], 0xa5, 2000));
	EXPECT_EQ(*(volatile uint8_t *)&target[4 * BIG - 1], 0xa5);

	EXPECT_MEM_EQ(target, src, sizeof(src));
	EXPECT_TRUE(pair_until(&A, &B, &w[3].done, 2000));
	for (int i = 0; i < 4; i++) {
		EXPECT_EQ(w[i].done, 1);
		EXPECT_OK(w[i].status);
	}
	EXPECT_OK(plx_mem_deregister(&A.r, &reg));
	side_fini(&B, &A);
	side_fini(&A, NULL);
}

struct mt_arg {
	struct plx_ep *ep;
	struct plx_desc d;
	int n;
	int stop;
	int failures;
	uint8_t src[64][128];
};

static void *mt_producer(void *p)
{
	struct mt_arg *a = p;
	static struct plx_op ops[64];

	for (int i = 0; i < a->n; i++) {
		memset(a->src[i], i + 1, sizeof(a->src[i]));
		plx_op_init(&ops[i], NULL, NULL); /* completion handle */
		int rc;

		while ((rc = plx_ep_write_mt(a->ep, &ops[i], a->src[i], 128,
					     &a->d, (uint64_t)i * 128)) ==
		       PLX_EAGAIN)
			sched_yield();
		if (rc)
			a->failures++;
	}
	for (int i = 0; i < a->n; i++)
		if (plx_req_wait_mt(&ops[i].req, 5000000000ull) ||
		    ops[i].req.status)
			a->failures++;
	__atomic_store_n(&a->stop, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void test_any_thread_submission(void)
{
	static uint8_t target[64 * 128];
	static struct mt_arg a;
	struct plx_region reg;
	pthread_t th;

	side_init(&A, "127.0.0.1", NULL, NULL);
	side_init(&B, NULL, NULL, NULL);
	a.ep = connect_pair();
	a.n = 64;
	EXPECT_OK(plx_mem_register(&A.r, &reg, target, sizeof(target),
				   PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&A.r, &reg, &a.d));
	pthread_create(&th, NULL, mt_producer, &a);
	uint64_t end = plx_now_ns() + 10000000000ull;

	while (!__atomic_load_n(&a.stop, __ATOMIC_ACQUIRE) &&
	       plx_now_ns() < end) {
		pair_poll(&A, &B);
		sched_yield(); /* the producer shares these two cores */
	}
	pthread_join(th, NULL);
	EXPECT_EQ(a.failures, 0);
	for (int i = 0; i < 64; i++)
		EXPECT_MEM_EQ(target + i * 128, a.src[i], 128);
	/* an _mt op the owner cannot start completes with the reason */
	struct plx_op bad;

	plx_op_init(&bad, NULL, NULL);
	EXPECT_OK(plx_ep_close(a.ep));
	EXPECT_OK(plx_ep_write_mt(a.ep, &bad, a.src[0], 8, &a.d, 0));
	plx_reactor_poll(&B.r);
	EXPECT_OK(plx_req_wait_mt(&bad.req, 0) == 0 ? 0 : 1);
	EXPECT_STATUS(bad.req.status, PLX_ESHUTDOWN);
	EXPECT_OK(plx_mem_deregister(&A.r, &reg));
	side_fini(&B, &A);
	side_fini(&A, NULL);
}

/* Many reads in flight: the target runs out of control entries for its
 * responses, flushes them and carries on in the same poll; before the fix
 * it paused until the transport tick (100 ms here). Bounded in polls, so a
 * regression shows as a failure, never as a slow pass. */
static void test_many_reads_in_flight_do_not_stall(void)
{
	static uint8_t mem[256 * 64], back[256 * 64];
	static struct tracked r[256];
	struct plx_region reg;
	struct plx_desc d;
	struct plx_ep *ep;
	int polls = 0, done;

	side_init(&A, "127.0.0.1", NULL, NULL);
	side_init(&B, NULL, NULL, NULL);
	ep = connect_pair();
	for (size_t i = 0; i < sizeof(mem); i++)
		mem[i] = (uint8_t)(i * 13);
	EXPECT_OK(
		plx_mem_register(&A.r, &reg, mem, sizeof(mem), PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&A.r, &reg, &d));
	for (int i = 0; i < 256; i++) {
		tracked_init(&r[i]);
		EXPECT_OK(plx_ep_read(ep, &r[i].op, back + i * 64, 64, &d,
				      (uint64_t)i * 64));
	}
	do {
		pair_poll(&A, &B);
		done = 0;
		for (int i = 0; i < 256; i++)
			done += r[i].done;
	} while (done < 256 && ++polls < 2000);
	if (done < 256)
		PLX_FAIL("%d of 256 reads done after %d polls: stalled", done,
			 polls);
	EXPECT_MEM_EQ(back, mem, sizeof(mem));
	EXPECT_OK(plx_mem_deregister(&A.r, &reg));
	side_fini(&B, &A);
	side_fini(&A, NULL);
}

/* A submission of an op still in flight is refused without touching it. */
static void test_mt_refuses_op_in_flight(void)
{
	static uint8_t mem[128];
	struct plx_region reg;
	struct plx_desc d;
	struct plx_op op;
	struct plx_ep *ep;

	side_init(&A, "127.0.0.1", NULL, NULL);
	side_init(&B, NULL, NULL, NULL);
	ep = connect_pair();
	EXPECT_OK(
		plx_mem_register(&A.r, &reg, mem, sizeof(mem), PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&A.r, &reg, &d));
	plx_op_init(&op, NULL, NULL);
	EXPECT_OK(plx_ep_write_mt(ep, &op, "first", 6, &d, 0));
	EXPECT_STATUS(plx_ep_write_mt(ep, &op, "second", 7, &d, 64), PLX_EBUSY);
	EXPECT_STATUS(plx_ep_send_mt(ep, &op, "x", 1, 0), PLX_EBUSY);
	EXPECT_STATUS(plx_ep_recv_mt(ep, &op, mem, 1, 0, 0), PLX_EBUSY);
	/* the owner-thread calls refuse it the same way */
	EXPECT_STATUS(plx_ep_write(ep, &op, "third", 6, &d, 32), PLX_EBUSY);
	EXPECT_STATUS(plx_ep_read(ep, &op, mem + 96, 8, &d, 0), PLX_EBUSY);
	EXPECT_STATUS(plx_ep_send(ep, &op, "y", 1, 0), PLX_EBUSY);
	EXPECT_STATUS(plx_ep_recv(ep, &op, mem, 1, 0, 0), PLX_EBUSY);
	uint64_t end = plx_now_ns() + 2000000000ull;

	while (!plx_req_test_mt(&op.req) && plx_now_ns() < end)
		pair_poll(&A, &B);
	EXPECT_OK(op.req.status);
	EXPECT_TRUE(!strcmp((char *)mem, "first"));
	EXPECT_EQ(mem[32], 0);
	EXPECT_EQ(mem[64], 0);
	EXPECT_OK(plx_mem_deregister(&A.r, &reg));
	side_fini(&B, &A);
	side_fini(&A, NULL);
}

int main(void)
{
	test_resolve_named_region_registered_later();
	test_pool_receive_mode_backpressure();
	test_batch_leaves_together();
	test_big_frames_read_into_place();
	test_any_thread_submission();
	test_many_reads_in_flight_do_not_stall();
	test_mt_refuses_op_in_flight();
	return 0;
}
