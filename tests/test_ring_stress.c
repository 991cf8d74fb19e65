/* SPDX-License-Identifier: MIT */
/*
 * Cross-thread request ring under stress: P producer threads each submit N
 * requests through plx_submit_call_mt() into a deliberately small ring; the
 * owner thread drains, sleeping on the reactor fd whenever it runs dry.
 * Every request carries (producer, sequence); the owner checks per-producer
 * order, so a lost or duplicated request fails the test at once, and the
 * final counts are checked too. Full-ring refusals are retried.
 *
 * Presets: CI=true: 4 x 200k; otherwise 4 x 1M (the local preset).
 * PLX_STRESS_N and PLX_STRESS_P override. Seed printed (PLX_SEED reruns).
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>

#include "harness.h"
#include "pollux/pollux.h"

#define MAXP 16
#define WINDOW 64 /* requests each producer keeps in flight */

struct item {
	struct plx_req req;
	uint32_t producer;
	uint64_t seq;
};

struct stress {
	struct plx_reactor r;
	int nprod;
	uint64_t n;
	uint64_t seed;
	uint64_t expected[MAXP]; /* owner thread: next seq per producer */
	uint64_t got;		 /* owner thread */
	uint64_t retries[MAXP];	 /* producer-local */
	int ready;
	int producers_done;
};

static int on_item(struct plx_reactor *r, struct plx_req *req)
{
	struct stress *s = req->user;
	struct item *it = (struct item *)req;

	(void)r;
	if (it->producer >= (uint32_t)s->nprod)
		PLX_FAIL("bad producer id %u", it->producer);
	if (it->seq != s->expected[it->producer])
		PLX_FAIL("producer %u: got seq %llu, expected %llu (%s)",
			 it->producer, (unsigned long long)it->seq,
			 (unsigned long long)s->expected[it->producer],
			 it->seq < s->expected[it->producer] ?
				 "duplicate" :
				 "lost or reordered");
	s->expected[it->producer]++;
	s->got++;
	return (int)(it->seq & 0x7fff);
}

struct prod {
	struct stress *s;
	uint32_t id;
	uint64_t seed;
	uint64_t retries;
	struct item items[WINDOW];
};

static void *producer_main(void *arg)
{
	struct prod *p = arg;
	struct stress *s = p->s;

	for (int i = 0; i < WINDOW; i++)
		plx_req_init(&p->items[i].req, NULL, s);
	for (uint64_t seq = 0; seq < s->n; seq++) {
		struct item *it = &p->items[seq % WINDOW];

		/* reuse a slot only after its previous request completed */
		if (seq >= WINDOW) {
			if (plx_req_wait_mt(&it->req, 30ull * 1000000000ull))
				PLX_FAIL("producer %u: request %llu never "
					 "completed",
					 p->id,
					 (unsigned long long)(seq - WINDOW));
			if (it->req.status != (int)((seq - WINDOW) & 0x7fff))
				PLX_FAIL("producer %u: wrong status %d", p->id,
					 it->req.status);
		}
		it->producer = p->id;
		it->seq = seq;
		while (plx_submit_call_mt(&s->r, &it->req, on_item) ==
		       PLX_EAGAIN) {
			p->retries++;
			if (plx_test_rand(&p->seed) & 1)
				sched_yield();
		}
	}
	for (int i = 0; i < WINDOW; i++)
		if (plx_req_wait_mt(&p->items[i].req, 30ull * 1000000000ull))
			PLX_FAIL("producer %u: tail request never completed",
				 p->id);
	s->retries[p->id] = p->retries;
	__atomic_fetch_add(&s->producers_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v ? strtoull(v, NULL, 0) : dflt;
}

static void test_ring_mpsc_no_loss_no_dup_in_order(void)
{
	static struct stress s;
	static struct prod prods[MAXP];
	struct plx_reactor_config cfg;
	struct plx_reactor_stats st;
	pthread_t th[MAXP];
	uint64_t total, start, sleeps = 0, retries = 0;

	s.nprod = (int)env_u64("PLX_STRESS_P", 4);
	s.n = env_u64("PLX_STRESS_N", plx_test_ci() ? 200000 : 1000000);
	if (s.nprod < 1 || s.nprod > MAXP)
		PLX_FAIL("PLX_STRESS_P out of range");
	s.seed = plx_test_seed("ring_stress");
	total = s.n * (uint64_t)s.nprod;

	plx_reactor_config_init(&cfg);
	cfg.ring_capacity = 64; /* small: producers hit the full ring */
	cfg.max_batch = 32;
	EXPECT_OK(plx_reactor_init(&s.r, &cfg));
	for (int i = 0; i < s.nprod; i++) {
		prods[i].s = &s;
		prods[i].id = (uint32_t)i;
		prods[i].seed = s.seed + (uint64_t)i * 7919;
		pthread_create(&th[i], NULL, producer_main, &prods[i]);
	}
	start = plx_now_ns();
	while (s.got < total) {
		if (plx_reactor_poll(&s.r))
			continue;
		if (plx_reactor_arm(&s.r))
			continue;
		struct pollfd pfd = {.fd = plx_reactor_fd(&s.r),
				     .events = POLLIN};
		sleeps++;
		if (poll(&pfd, 1, 10000) != 1)
			PLX_FAIL("owner slept 10 s at %llu of %llu: lost "
				 "wake-up",
				 (unsigned long long)s.got,
				 (unsigned long long)total);
	}
	while (__atomic_load_n(&s.producers_done, __ATOMIC_ACQUIRE) < s.nprod)
		plx_reactor_poll(&s.r);
	for (int i = 0; i < s.nprod; i++) {
		pthread_join(th[i], NULL);
		EXPECT_U64_EQ(s.expected[i], s.n);
		retries += s.retries[i];
	}
	EXPECT_U64_EQ(s.got, total);
	EXPECT_OK(plx_reactor_stats(&s.r, &st));
	EXPECT_U64_EQ(st.ring_drained, total);
	EXPECT_U64_EQ(st.completions, total);
	EXPECT_U64_EQ(st.ring_full, retries);
	fprintf(stderr,
		"%d producers x %llu requests: all in order, %.2f s, %llu "
		"full-ring retries, owner slept %llu times\n",
		s.nprod, (unsigned long long)s.n,
		(double)(plx_now_ns() - start) / 1e9,
		(unsigned long long)retries, (unsigned long long)sleeps);
	EXPECT_OK(plx_reactor_fini(&s.r));
}

int main(void)
{
	test_ring_mpsc_no_loss_no_dup_in_order();
	return 0;
}
