/* SPDX-License-Identifier: MIT */
/* Timers: one-shot, periodic, stop (also from callbacks), restart, order of
 * many random deadlines, the bound on armed timers. Bounded poll loops with
 * deadlines; no sleep. */
#include "harness.h"
#include "pollux/pollux.h"

#define MS 1000000ull

struct tctx {
	int fired;
	uint64_t last_ns;
	int stop_after; /* periodic: stop itself after this many */
};

static void on_fire(struct plx_reactor *r, struct plx_timer *t)
{
	struct tctx *c = t->user;

	c->fired++;
	c->last_ns = plx_now_ns();
	if (c->stop_after && c->fired == c->stop_after)
		EXPECT_OK(plx_timer_stop(r, t));
}

static void poll_until(struct plx_reactor *r, const int *flag, int want,
		       uint64_t budget_ns)
{
	uint64_t end = plx_now_ns() + budget_ns;

	while (*flag < want && plx_now_ns() < end)
		plx_reactor_poll(r);
}

static void test_one_shot_fires_once_after_delay(void)
{
	struct plx_reactor r;
	struct plx_timer t;
	struct tctx c = {0};
	uint64_t start;

	EXPECT_OK(plx_reactor_init(&r, NULL));
	plx_timer_init(&t, on_fire, &c);
	start = plx_now_ns();
	EXPECT_OK(plx_timer_start(&r, &t, 5 * MS, 0));
	EXPECT_TRUE(plx_timer_armed(&t));
	poll_until(&r, &c.fired, 1, 5000 * MS);
	EXPECT_EQ(c.fired, 1);
	EXPECT_GE(c.last_ns - start, 5 * MS);
	EXPECT_TRUE(!plx_timer_armed(&t));
	/* nothing more, however long we poll */
	poll_until(&r, &c.fired, 2, 20 * MS);
	EXPECT_EQ(c.fired, 1);
	EXPECT_STATUS(plx_timer_stop(&r, &t), PLX_EALREADY);
	EXPECT_OK(plx_reactor_fini(&r));
}

static void test_periodic_fires_until_stopped_from_callback(void)
{
	struct plx_reactor r;
	struct plx_timer t;
	struct tctx c = {.stop_after = 5};

	EXPECT_OK(plx_reactor_init(&r, NULL));
	plx_timer_init(&t, on_fire, &c);
	EXPECT_OK(plx_timer_start(&r, &t, 1 * MS, 1 * MS));
	poll_until(&r, &c.fired, 5, 5000 * MS);
	EXPECT_EQ(c.fired, 5);
	EXPECT_TRUE(!plx_timer_armed(&t));
	poll_until(&r, &c.fired, 6, 20 * MS);
	EXPECT_EQ(c.fired, 5);
	EXPECT_OK(plx_reactor_fini(&r));
}

static void test_stopped_timer_never_fires(void)
{
	struct plx_reactor r;
	struct plx_timer t;
	struct tctx c = {0};

	EXPECT_OK(plx_reactor_init(&r, NULL));
	plx_timer_init(&t, on_fire, &c);
	EXPECT_OK(plx_timer_start(&r, &t, 1 * MS, 0));
	EXPECT_OK(plx_timer_stop(&r, &t));
	poll_until(&r, &c.fired, 1, 20 * MS);
	EXPECT_EQ(c.fired, 0);
	EXPECT_OK(plx_reactor_fini(&r));
}

static void test_restart_moves_deadline(void)
{
	struct plx_reactor r;
	struct plx_timer t;
	struct tctx c = {0};
	uint64_t start;

	EXPECT_OK(plx_reactor_init(&r, NULL));
	plx_timer_init(&t, on_fire, &c);
	EXPECT_OK(plx_timer_start(&r, &t, 1 * MS, 0));
	start = plx_now_ns();
	EXPECT_OK(plx_timer_start(&r, &t, 30 * MS, 0));
	poll_until(&r, &c.fired, 1, 5000 * MS);
	EXPECT_EQ(c.fired, 1);
	EXPECT_GE(c.last_ns - start, 30 * MS);
	EXPECT_OK(plx_reactor_fini(&r));
}

/* many timers with random deadlines fire in deadline order, each once,
 * including ones stopped and restarted at random along the way */
#define NT 2000
static struct plx_timer g_t[NT];
static uint64_t g_prev_deadline;
static int g_order_ok = 1, g_fired;
static int g_count[NT];

static void on_order(struct plx_reactor *r, struct plx_timer *t)
{
	(void)r;
	if (t->plx_deadline < g_prev_deadline)
		g_order_ok = 0;
	g_prev_deadline = t->plx_deadline;
	g_count[(struct plx_timer *)t - g_t]++;
	g_fired++;
}

static void test_many_timers_fire_in_order(void)
{
	struct plx_reactor r;
	uint64_t seed = plx_test_seed("many_timers");
	int armed = 0;

	EXPECT_OK(plx_reactor_init(&r, NULL));
	for (int i = 0; i < NT; i++) {
		plx_timer_init(&g_t[i], on_order, NULL);
		EXPECT_OK(plx_timer_start(
			&r, &g_t[i], (plx_test_rand(&seed) % 50) * MS / 2, 0));
	}
	for (int i = 0; i < NT / 4; i++) {
		int k = (int)(plx_test_rand(&seed) % NT);

		if (plx_timer_armed(&g_t[k]) && (plx_test_rand(&seed) & 1)) {
			EXPECT_OK(plx_timer_stop(&r, &g_t[k]));
		} else {
			EXPECT_OK(plx_timer_start(
				&r, &g_t[k],
				(plx_test_rand(&seed) % 50) * MS / 2, 0));
		}
	}
	for (int i = 0; i < NT; i++)
		armed += plx_timer_armed(&g_t[i]);
	poll_until(&r, &g_fired, armed, 10000 * MS);
	EXPECT_EQ(g_fired, armed);
	EXPECT_TRUE(g_order_ok);
	for (int i = 0; i < NT; i++)
		EXPECT_LE(g_count[i], 1);
	EXPECT_OK(plx_reactor_fini(&r));
}

static void test_capacity_bound(void)
{
	struct plx_reactor r;
	struct plx_reactor_config cfg;
	struct plx_timer t[5];
	struct tctx c = {0};

	plx_reactor_config_init(&cfg);
	cfg.max_timers = 4;
	EXPECT_OK(plx_reactor_init(&r, &cfg));
	for (int i = 0; i < 5; i++)
		plx_timer_init(&t[i], on_fire, &c);
	for (int i = 0; i < 4; i++)
		EXPECT_OK(plx_timer_start(&r, &t[i], 1000 * MS, 0));
	EXPECT_STATUS(plx_timer_start(&r, &t[4], 1000 * MS, 0), PLX_ENOSPC);
	/* restarting an armed timer needs no new slot */
	EXPECT_OK(plx_timer_start(&r, &t[0], 2000 * MS, 0));
	EXPECT_OK(plx_timer_stop(&r, &t[1]));
	EXPECT_OK(plx_timer_start(&r, &t[4], 1000 * MS, 0));
	for (int i = 0; i < 5; i++)
		if (i != 1)
			EXPECT_OK(plx_timer_stop(&r, &t[i]));
	struct plx_timer nocb;
	plx_timer_init(&nocb, NULL, NULL);
	EXPECT_STATUS(plx_timer_start(&r, &nocb, 0, 0), PLX_EINVAL);
	EXPECT_OK(plx_reactor_fini(&r));
}

int main(void)
{
	test_one_shot_fires_once_after_delay();
	test_periodic_fires_until_stopped_from_callback();
	test_stopped_timer_never_fires();
	test_restart_moves_deadline();
	test_many_timers_fire_in_order();
	test_capacity_bound();
	return 0;
}
