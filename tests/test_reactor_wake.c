/* SPDX-License-Identifier: MIT */
/* Event-driven use: a thread sleeping in poll()/epoll on plx_reactor_fd() is
 * woken by submissions from other threads and by timers; arm refuses with
 * PLX_EBUSY when work is pending, so a wake-up is never lost. Every sleep is
 * bounded: a lost wake-up shows as a FAIL, not a hang. */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "harness.h"
#include "pollux/pollux.h"

#define MS 1000000ull
#define SLEEP_BOUND_MS 10000 /* a sleep this long means a lost wake-up */

static int fn_ok(struct plx_reactor *r, struct plx_req *req)
{
	(void)r;
	return (int)req->plx_arg[0];
}

static int fd_readable(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, timeout_ms);
}

static int g_timer_fired;

static void on_timer(struct plx_reactor *r, struct plx_timer *t)
{
	(void)r;
	(void)t;
	g_timer_fired++;
}

static void test_arm_busy_when_work_pending(void)
{
	struct plx_reactor r;
	struct plx_req req;
	struct plx_timer t;

	EXPECT_OK(plx_reactor_init(&r, NULL));
	/* idle: arms, and the fd stays quiet */
	EXPECT_OK(plx_reactor_arm(&r));
	EXPECT_EQ(fd_readable(plx_reactor_fd(&r), 0), 0);
	EXPECT_EQ(plx_reactor_poll(&r), 0);

	/* a request in the ring */
	plx_req_init(&req, NULL, NULL);
	EXPECT_OK(plx_submit_call_mt(&r, &req, fn_ok));
	EXPECT_STATUS(plx_reactor_arm(&r), PLX_EBUSY);
	EXPECT_EQ(plx_reactor_poll(&r), 1);

	/* a deferred owner-thread submission */
	EXPECT_OK(plx_submit_call(&r, &req, fn_ok));
	EXPECT_STATUS(plx_reactor_arm(&r), PLX_EBUSY);
	EXPECT_EQ(plx_reactor_poll(&r), 1);

	/* a stopped timer leaves the timer fd disarmed */
	plx_timer_init(&t, on_timer, NULL);
	EXPECT_OK(plx_timer_start(&r, &t, 0, 0));
	EXPECT_OK(plx_timer_stop(&r, &t));
	EXPECT_OK(plx_reactor_arm(&r));
	EXPECT_EQ(plx_reactor_poll(&r), 0);
	EXPECT_OK(plx_reactor_fini(&r));
}

static void test_timer_wakes_sleeper(void)
{
	struct plx_reactor r;
	struct plx_timer t;
	struct plx_reactor_stats st;
	uint64_t start;

	EXPECT_OK(plx_reactor_init(&r, NULL));
	plx_timer_init(&t, on_timer, NULL);
	/* the clock is read before the timer starts: the deadline is absolute,
	 * so a preempted arm must not shorten the sleep we measure (CI once
	 * saw 15.9 ms when start was read after the arm) */
	start = plx_now_ns();
	EXPECT_OK(plx_timer_start(&r, &t, 20 * MS, 0));
	EXPECT_OK(plx_reactor_arm(&r));
	EXPECT_EQ(fd_readable(plx_reactor_fd(&r), SLEEP_BOUND_MS), 1);
	EXPECT_GE(plx_now_ns() - start, 20 * MS);
	EXPECT_EQ(plx_reactor_poll(&r), 1);
	EXPECT_EQ(g_timer_fired, 1);
	/* the timer fd was drained: the reactor fd is quiet again */
	EXPECT_OK(plx_reactor_arm(&r));
	EXPECT_EQ(fd_readable(plx_reactor_fd(&r), 30), 0);
	EXPECT_EQ(plx_reactor_poll(&r), 0);

	/* an expired timer refuses the arm */
	EXPECT_OK(plx_timer_start(&r, &t, 0, 0));
	uint64_t until = plx_now_ns() + 1000;
	while (plx_now_ns() < until)
		;
	EXPECT_STATUS(plx_reactor_arm(&r), PLX_EBUSY);
	EXPECT_EQ(plx_reactor_poll(&r), 1);
	EXPECT_EQ(g_timer_fired, 2);

	/* plx_reactor_wait sleeps until the timer */
	start = plx_now_ns();
	EXPECT_OK(plx_timer_start(&r, &t, 10 * MS, 0));
	EXPECT_EQ(plx_reactor_wait(&r, SLEEP_BOUND_MS), 1);
	EXPECT_GE(plx_now_ns() - start, 10 * MS);
	EXPECT_EQ(g_timer_fired, 3);
	/* and gives up after its timeout when nothing happens */
	start = plx_now_ns();
	EXPECT_EQ(plx_reactor_wait(&r, 20), 0);
	EXPECT_GE(plx_now_ns() - start, 19 * MS);
	EXPECT_OK(plx_reactor_stats(&r, &st));
	EXPECT_GE(st.arms, 3);
	EXPECT_OK(plx_reactor_fini(&r));
}

/* The owner sleeps in its own poll() whenever idle; a producer thread
 * submits one request at a time at random moments and waits for it. */
struct pingctx {
	struct plx_reactor r;
	int ready;
	int done;
	int rounds;
	uint64_t seed;
	int use_epoll;
	uint64_t sleeps;
};

static void *owner_main(void *arg)
{
	struct pingctx *c = arg;
	int handled = 0, ep = -1;
	struct epoll_event ev = {.events = EPOLLIN};

	EXPECT_OK(plx_reactor_init(&c->r, NULL));
	if (c->use_epoll) {
		/* the caller's own epoll instance, with the reactor fd in it */
		ep = epoll_create1(0);
		EXPECT_GE(ep, 0);
		EXPECT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, plx_reactor_fd(&c->r),
				    &ev));
	}
	__atomic_store_n(&c->ready, 1, __ATOMIC_RELEASE);
	while (handled < c->rounds) {
		int n = plx_reactor_poll(&c->r);

		if (n > 0) {
			handled += n;
			continue;
		}
		if (plx_reactor_arm(&c->r) == PLX_EBUSY)
			continue;
		c->sleeps++;
		int woke = c->use_epoll ?
				   epoll_wait(ep, &ev, 1, SLEEP_BOUND_MS) :
				   fd_readable(plx_reactor_fd(&c->r),
					       SLEEP_BOUND_MS);
		if (woke <= 0)
			PLX_FAIL("owner slept %d ms with %d of %d requests "
				 "handled: lost wake-up",
				 SLEEP_BOUND_MS, handled, c->rounds);
	}
	if (ep >= 0)
		close(ep);
	while (!__atomic_load_n(&c->done, __ATOMIC_ACQUIRE))
		plx_reactor_poll(&c->r);
	EXPECT_OK(plx_reactor_fini(&c->r));
	return NULL;
}

static void run_sleeper(int use_epoll, int rounds)
{
	struct pingctx c = {.rounds = rounds, .use_epoll = use_epoll};
	struct plx_req req;
	pthread_t th;

	c.seed = plx_test_seed(use_epoll ? "wake_epoll" : "wake_poll");
	pthread_create(&th, NULL, owner_main, &c);
	while (!__atomic_load_n(&c.ready, __ATOMIC_ACQUIRE))
		sched_yield();
	for (int i = 0; i < rounds; i++) {
		/* random pause: sometimes the owner is asleep, sometimes not */
		uint64_t pause = plx_test_rand(&c.seed) % 200000;
		uint64_t until = plx_now_ns() + pause;

		if (pause > 100000)
			sched_yield();
		while (plx_now_ns() < until)
			;
		plx_req_init(&req, NULL, NULL);
		req.plx_arg[0] = (uint64_t)i;
		EXPECT_OK(plx_submit_call_mt(&c.r, &req, fn_ok));
		EXPECT_OK(plx_req_wait_mt(&req, SLEEP_BOUND_MS * MS));
		EXPECT_EQ(req.status, i);
	}
	__atomic_store_n(&c.done, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	fprintf(stderr, "%d rounds, owner slept %llu times\n", rounds,
		(unsigned long long)c.sleeps);
	EXPECT_GT(c.sleeps, 0);
}

static void test_submission_wakes_sleeper_in_poll(void)
{
	run_sleeper(0, plx_test_ci() ? 2000 : 20000);
}

static void test_submission_wakes_sleeper_in_callers_epoll(void)
{
	run_sleeper(1, plx_test_ci() ? 2000 : 20000);
}

int main(void)
{
	test_arm_busy_when_work_pending();
	test_timer_wakes_sleeper();
	test_submission_wakes_sleeper_in_poll();
	test_submission_wakes_sleeper_in_callers_epoll();
	return 0;
}
