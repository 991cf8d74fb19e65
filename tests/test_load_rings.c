/* SPDX-License-Identifier: MIT */
/*
 * Load: the request ring full, from 4 producer threads.
 *
 * 1. Full means full: with the owner not polling, 4 threads submit until
 *    each has seen PLX_EAGAIN 1000 times in a row. Exactly ring_capacity
 *    submissions are accepted, every refusal is counted in the reactor's
 *    ring_full, and a refused request is never run nor completed. Then the
 *    owner drains: each accepted request runs once and completes once.
 *
 * 2. Transport ops through a full ring under contention: 4 threads each
 *    push N ops through a 64-slot ring (alternately plx_ep_write_mt of 64
 *    bytes to their own offset of the target's region and
 *    plx_submit_call_mt), keeping 32 each in flight and retrying on
 *    PLX_EAGAIN with sched_yield(). One owner thread drives both reactors
 *    (initiator and target) alternately. Every op must complete exactly
 *    once with success; every call must run exactly once; every write's
 *    bytes must be in place at the end. Prints the rate and the number of
 *    refusals (not checked).
 *
 * Presets: N = 50,000 per thread (CI); PLX_LOAD=large: 1,000,000.
 * PLX_LOAD_RING_N overrides. Seeded (the threads' yield pattern).
 */
#include <pthread.h>
#include <sched.h>

#include "tcp_pair.h"

#define MS 1000000ull
#define NPROD 4
#define WINDOW 32
#define OPLEN 64

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static void start_line(int *go)
{
	while (!__atomic_load_n(go, __ATOMIC_ACQUIRE))
		sched_yield();
}

/* ---- 1: the ring fills, refuses, and loses nothing ------------------------ */

#define FILL_CAP 256
#define FILL_PER (FILL_CAP * 2) /* each thread has enough to fill it alone */

struct fill_item {
	struct plx_req req;
	int accepted; /* set by the producer when submit returned 0 */
	int ran;      /* owner thread */
	int done;     /* owner thread */
};

static struct {
	struct plx_reactor r;
	struct fill_item items[NPROD][FILL_PER];
	uint64_t refused[NPROD];
	int go;
} F;

static int fill_fn(struct plx_reactor *r, struct plx_req *req)
{
	struct fill_item *it = (struct fill_item *)(void *)req;

	(void)r;
	it->ran++;
	return 7;
}

static void fill_cb(struct plx_reactor *r, struct plx_req *req)
{
	struct fill_item *it = (struct fill_item *)(void *)req;

	(void)r;
	EXPECT_EQ(req->status, 7);
	it->done++;
}

static void *fill_producer(void *arg)
{
	int p = (int)(intptr_t)arg, misses = 0;

	start_line(&F.go);
	for (int i = 0; i < FILL_PER && misses < 1000;) {
		struct fill_item *it = &F.items[p][i];
		int rc = plx_submit_call_mt(&F.r, &it->req, fill_fn);

		if (rc == 0) {
			it->accepted = 1;
			misses = 0;
			i++;
		} else if (rc == PLX_EAGAIN) {
			F.refused[p]++;
			misses++;
		} else {
			PLX_FAIL("producer %d: %s", p, plx_errname(rc));
		}
	}
	return NULL;
}

static void test_full_ring_refuses_and_loses_nothing(void)
{
	struct plx_reactor_config cfg;
	struct plx_reactor_stats st;
	pthread_t th[NPROD];
	uint64_t accepted = 0, refused = 0, end;
	int rc;

	plx_reactor_config_init(&cfg);
	cfg.ring_capacity = FILL_CAP;
	EXPECT_OK(plx_reactor_init(&F.r, &cfg));
	for (int p = 0; p < NPROD; p++)
		for (int i = 0; i < FILL_PER; i++)
			plx_req_init(&F.items[p][i].req, fill_cb, NULL);
	for (int p = 0; p < NPROD; p++)
		EXPECT_OK(pthread_create(&th[p], NULL, fill_producer,
					 (void *)(intptr_t)p));
	__atomic_store_n(&F.go, 1, __ATOMIC_RELEASE);
	for (int p = 0; p < NPROD; p++)
		EXPECT_OK(pthread_join(th[p], NULL));

	for (int p = 0; p < NPROD; p++) {
		refused += F.refused[p];
		for (int i = 0; i < FILL_PER; i++) {
			accepted += F.items[p][i].accepted;
			EXPECT_EQ(F.items[p][i].ran, 0);
		}
	}
	EXPECT_U64_EQ(accepted, FILL_CAP);
	EXPECT_OK(plx_reactor_stats(&F.r, &st));
	EXPECT_U64_EQ(st.ring_full, refused);
	EXPECT_TRUE(refused >= NPROD * 1000);

	end = plx_now_ns() + 10000 * MS;
	while ((rc = plx_reactor_fini(&F.r)) == PLX_EBUSY && plx_now_ns() < end)
		plx_reactor_poll(&F.r);
	EXPECT_OK(rc);
	for (int p = 0; p < NPROD; p++)
		for (int i = 0; i < FILL_PER; i++) {
			struct fill_item *it = &F.items[p][i];

			EXPECT_EQ(it->ran, it->accepted);
			EXPECT_EQ(it->done, it->accepted);
		}
	fprintf(stderr,
		"load_rings: %d-slot ring filled by %d threads: %llu "
		"accepted, %llu refused with PLX_EAGAIN\n",
		FILL_CAP, NPROD, (unsigned long long)accepted,
		(unsigned long long)refused);
}

/* ---- 2: transport ops and calls through a contended full ring ------------ */

struct citem {
	struct plx_op op; /* req.user: the producer */
	uint64_t seq;
	int free_; /* 1: may be reused (release-stored by the owner) */
};

struct cprod {
	int id;
	uint64_t seed;
	uint64_t refused;
	struct citem items[WINDOW];
};

static struct {
	struct side A, B; /* A: target, B: initiator (its ring) */
	struct plx_ep *ep;
	struct plx_desc d;
	uint8_t *tmem;
	uint64_t n;
	uint8_t *seen[NPROD]; /* owner thread: completions per seq */
	uint8_t *ran[NPROD];  /* owner thread: call runs per seq */
	uint64_t completed;   /* owner thread */
	int go;
	int producers_done;
	struct cprod prods[NPROD];
} G;

static uint8_t pat(int p, uint64_t seq, uint32_t k)
{
	uint64_t x = (seq + 1) * 0x9E3779B97F4A7C15ull ^
		     (uint64_t)(p + 1) * 0xC2B2AE3D27D4EB4Full ^ k;

	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	return (uint8_t)(x >> 32);
}

static void citem_cb(struct plx_reactor *r, struct plx_req *req)
{
	struct citem *it = (struct citem *)(void *)req;
	struct cprod *pr = req->user;

	(void)r;
	if (req->status < 0)
		PLX_FAIL("producer %d op %llu: %s", pr->id,
			 (unsigned long long)it->seq, plx_errname(req->status));
	if (G.seen[pr->id][it->seq]++)
		PLX_FAIL("producer %d op %llu completed twice", pr->id,
			 (unsigned long long)it->seq);
	if (it->seq & 1) {
		EXPECT_EQ(req->status, (int)(it->seq & 0xffff));
		EXPECT_EQ(G.ran[pr->id][it->seq], 1);
	} else {
		EXPECT_U64_EQ(req->bytes, OPLEN);
	}
	G.completed++;
	__atomic_store_n(&it->free_, 1, __ATOMIC_RELEASE);
}

static int call_fn(struct plx_reactor *r, struct plx_req *req)
{
	struct citem *it = (struct citem *)(void *)req;
	struct cprod *pr = req->user;

	(void)r;
	if (G.ran[pr->id][it->seq]++)
		PLX_FAIL("producer %d call %llu ran twice", pr->id,
			 (unsigned long long)it->seq);
	return (int)(it->seq & 0xffff);
}

static void *cprod_main(void *arg)
{
	struct cprod *pr = arg;
	static __thread uint8_t src[WINDOW][OPLEN];

	for (int i = 0; i < WINDOW; i++)
		pr->items[i].free_ = 1;
	start_line(&G.go);
	for (uint64_t seq = 0; seq < G.n; seq++) {
		int slot = (int)(seq % WINDOW);
		struct citem *it = &pr->items[slot];
		uint64_t off = ((uint64_t)pr->id * G.n + seq) * OPLEN;
		int rc;

		while (!__atomic_load_n(&it->free_, __ATOMIC_ACQUIRE))
			sched_yield();
		it->free_ = 0;
		it->seq = seq;
		plx_op_init(&it->op, citem_cb, pr);
		for (;;) {
			if (seq & 1) {
				rc = plx_submit_call_mt(&G.B.r, &it->op.req,
							call_fn);
			} else {
				for (uint32_t k = 0; k < OPLEN; k++)
					src[slot][k] = pat(pr->id, seq, k);
				rc = plx_ep_write_mt(G.ep, &it->op, src[slot],
						     OPLEN, &G.d, off);
			}
			if (rc != PLX_EAGAIN)
				break;
			pr->refused++;
			if (plx_test_rand(&pr->seed) & 1)
				sched_yield();
		}
		if (rc)
			PLX_FAIL("producer %d: %s", pr->id, plx_errname(rc));
	}
	for (int i = 0; i < WINDOW; i++)
		while (!__atomic_load_n(&pr->items[i].free_, __ATOMIC_ACQUIRE))
			sched_yield();
	__atomic_fetch_add(&G.producers_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void test_ops_through_contended_full_ring(void)
{
	const char *load = getenv("PLX_LOAD");
	struct plx_reactor_config rcfg;
	struct plx_reactor_stats st;
	struct plx_region reg;
	pthread_t th[NPROD];
	uint64_t seed = plx_test_seed("load_rings"), t0, dt, refused = 0;
	uint64_t total, end;
	size_t bytes;

	G.n = env_u64("PLX_LOAD_RING_N",
		      load && !strcmp(load, "large") ? 1000000 : 50000);
	if (G.n < WINDOW || G.n > (1ull << 26))
		PLX_FAIL("PLX_LOAD_RING_N out of range");
	total = G.n * NPROD;
	bytes = (size_t)total * OPLEN;
	G.tmem = calloc(1, bytes);
	EXPECT_TRUE(G.tmem != NULL);
	for (int p = 0; p < NPROD; p++) {
		G.seen[p] = calloc(G.n, 1);
		G.ran[p] = calloc(G.n, 1);
		EXPECT_TRUE(G.seen[p] && G.ran[p]);
	}
	plx_reactor_config_init(&rcfg);
	rcfg.ring_capacity = 64; /* small: the threads hit the full ring */
	rcfg.max_batch = 32;
	side_init(&G.A, "127.0.0.1", NULL, NULL);
	side_init(&G.B, NULL, NULL, &rcfg);
	EXPECT_OK(plx_tcp_connect(&G.B.r, "127.0.0.1", G.A.port, &G.ep));
	EXPECT_TRUE(pair_wait_event(&G.A, &G.B, &G.B, PLX_EP_CONNECTED, 5000));
	EXPECT_OK(plx_mem_register(&G.A.r, &reg, G.tmem, bytes,
				   PLX_ACCESS_REMOTE_WRITE));
	EXPECT_OK(plx_mem_desc(&G.A.r, &reg, &G.d));

	for (int p = 0; p < NPROD; p++) {
		G.prods[p].id = p;
		G.prods[p].seed = seed + (uint64_t)p * 7919;
		EXPECT_OK(
			pthread_create(&th[p], NULL, cprod_main, &G.prods[p]));
	}
	t0 = plx_now_ns();
	__atomic_store_n(&G.go, 1, __ATOMIC_RELEASE);
	end = t0 + 300000 * MS;
	while (__atomic_load_n(&G.producers_done, __ATOMIC_ACQUIRE) < NPROD) {
		/* both reactors from this one thread, alternately */
		if (plx_reactor_poll(&G.B.r) + plx_reactor_poll(&G.A.r) == 0)
			sched_yield();
		if (plx_now_ns() > end)
			PLX_FAIL("timed out: %llu of %llu completed",
				 (unsigned long long)G.completed,
				 (unsigned long long)total);
	}
	dt = plx_now_ns() - t0;
	for (int p = 0; p < NPROD; p++) {
		EXPECT_OK(pthread_join(th[p], NULL));
		refused += G.prods[p].refused;
	}
	EXPECT_U64_EQ(G.completed, total);
	for (int p = 0; p < NPROD; p++)
		for (uint64_t seq = 0; seq < G.n; seq++) {
			EXPECT_EQ(G.seen[p][seq], 1);
			EXPECT_EQ(G.ran[p][seq], seq & 1);
			if (seq & 1)
				continue;
			for (uint32_t k = 0; k < OPLEN; k++)
				if (G.tmem[((uint64_t)p * G.n + seq) * OPLEN +
					   k] != pat(p, seq, k))
					PLX_FAIL("producer %d write %llu not "
						 "in place",
						 p, (unsigned long long)seq);
		}
	EXPECT_OK(plx_reactor_stats(&G.B.r, &st));
	EXPECT_U64_EQ(st.ring_full, refused);
	EXPECT_U64_EQ(st.ring_drained, total);
	fprintf(stderr,
		"load_rings: %d threads x %llu ops (writes and calls) through "
		"a 64-slot ring in %.2f s: %.0f ops/s, %llu refused with "
		"PLX_EAGAIN\n",
		NPROD, (unsigned long long)G.n, (double)dt / 1e9,
		(double)total * 1e9 / (double)dt, (unsigned long long)refused);
	EXPECT_OK(plx_mem_deregister(&G.A.r, &reg));
	side_fini(&G.B, &G.A);
	side_fini(&G.A, NULL);
	for (int p = 0; p < NPROD; p++) {
		free(G.seen[p]);
		free(G.ran[p]);
	}
	free(G.tmem);
}

int main(void)
{
	test_full_ring_refuses_and_loses_nothing();
	test_ops_through_contended_full_ring();
	return 0;
}
