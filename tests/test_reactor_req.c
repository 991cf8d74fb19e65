/* SPDX-License-Identifier: MIT */
/* Requests: owner-thread submission is deferred (never completes inside the
 * submitting call), completion exactly once, async completion with
 * plx_req_complete(), misuse refused, handle-mode waits from another thread
 * (spin and futex paths), ring-full back-pressure. */
#include <pthread.h>
#include <sched.h>

#include "harness.h"
#include "pollux/pollux.h"

static int g_calls, g_cbs;
static int g_in_submit;

static int fn_count(struct plx_reactor *r, struct plx_req *req)
{
	(void)r;
	EXPECT_EQ(g_in_submit, 0);
	g_calls++;
	req->bytes = 0;
	return 42;
}

static void cb_count(struct plx_reactor *r, struct plx_req *req)
{
	(void)r;
	EXPECT_EQ(g_in_submit, 0);
	EXPECT_EQ(req->status, 42);
	g_cbs++;
}

static void test_owner_submit_is_deferred_and_exactly_once(void)
{
	struct plx_reactor r;
	struct plx_req req;

	EXPECT_OK(plx_reactor_init(&r, NULL));
	plx_req_init(&req, cb_count, NULL);
	g_in_submit = 1;
	EXPECT_OK(plx_submit_call(&r, &req, fn_count));
	g_in_submit = 0;
	EXPECT_EQ(g_calls, 0);
	EXPECT_STATUS(plx_submit_call(&r, &req, fn_count), PLX_EBUSY);
	EXPECT_STATUS(plx_submit_call_mt(&r, &req, fn_count), PLX_EBUSY);
	EXPECT_EQ(plx_reactor_poll(&r), 1);
	EXPECT_EQ(g_calls, 1);
	EXPECT_EQ(g_cbs, 1);
	for (int i = 0; i < 10; i++)
		EXPECT_EQ(plx_reactor_poll(&r), 0);
	EXPECT_EQ(g_cbs, 1);
	/* completed in callback mode: reusable at once */
	EXPECT_OK(plx_submit_call(&r, &req, fn_count));
	EXPECT_EQ(plx_reactor_poll(&r), 1);
	EXPECT_EQ(g_cbs, 2);
	EXPECT_STATUS(plx_submit_call(&r, &req, NULL), PLX_EINVAL);
	EXPECT_OK(plx_reactor_fini(&r));
}

static struct plx_req *g_later;

static int fn_later(struct plx_reactor *r, struct plx_req *req)
{
	(void)r;
	g_later = req;
	return PLX_EINPROGRESS;
}

static void test_async_completion_exactly_once(void)
{
	struct plx_reactor r;
	struct plx_req req;

	g_cbs = 0;
	EXPECT_OK(plx_reactor_init(&r, NULL));
	plx_req_init(&req, cb_count, NULL);
	EXPECT_OK(plx_submit_call_mt(&r, &req, fn_later));
	EXPECT_EQ(plx_reactor_poll(&r), 1);
	EXPECT_PTR_EQ(g_later, &req);
	EXPECT_EQ(g_cbs, 0);
	EXPECT_OK(plx_req_complete(&r, &req, 42, 4096));
	/* a second completion of the same request is refused */
	EXPECT_STATUS(plx_req_complete(&r, &req, 42, 0), PLX_EINVAL);
	EXPECT_EQ(g_cbs, 0); /* never inside plx_req_complete() */
	EXPECT_EQ(plx_reactor_poll(&r), 1);
	EXPECT_EQ(g_cbs, 1);
	EXPECT_U64_EQ(req.bytes, 4096);
	/* completed: completing again is refused */
	EXPECT_STATUS(plx_req_complete(&r, &req, 0, 0), PLX_EINVAL);
	EXPECT_OK(plx_reactor_fini(&r));
}

/* callbacks that resubmit run in the next poll, keeping each poll bounded */
static int g_chain;

static int fn_zero(struct plx_reactor *r, struct plx_req *req)
{
	(void)r;
	(void)req;
	return 0;
}

static void cb_resubmit(struct plx_reactor *r, struct plx_req *req)
{
	if (++g_chain < 5)
		EXPECT_OK(plx_submit_call(r, req, fn_zero));
}

static void test_resubmit_from_callback_runs_next_poll(void)
{
	struct plx_reactor r;
	struct plx_req req;

	EXPECT_OK(plx_reactor_init(&r, NULL));
	plx_req_init(&req, cb_resubmit, NULL);
	EXPECT_OK(plx_submit_call(&r, &req, fn_zero));
	for (int i = 1; i <= 5; i++) {
		EXPECT_EQ(plx_reactor_poll(&r), 1);
		EXPECT_EQ(g_chain, i);
	}
	EXPECT_EQ(plx_reactor_poll(&r), 0);
	EXPECT_OK(plx_reactor_fini(&r));
}

struct waiter {
	struct plx_req *req;
	uint64_t timeout_ns;
	int rc;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;

	w->rc = plx_req_wait_mt(w->req, w->timeout_ns);
	return NULL;
}

static void test_handle_wait_times_out_then_completes(void)
{
	struct plx_reactor r;
	struct plx_req req;
	struct waiter w = {.req = &req, .timeout_ns = 2000000};
	pthread_t th;

	EXPECT_OK(plx_reactor_init(&r, NULL));
	plx_req_init(&req, NULL, NULL);
	EXPECT_STATUS(plx_req_wait_mt(&req, 1000), PLX_EINVAL); /* idle */
	EXPECT_OK(plx_submit_call_mt(&r, &req, fn_count));
	EXPECT_EQ(plx_req_test_mt(&req), 0);
	/* nobody polls: the wait must give up after its bound */
	pthread_create(&th, NULL, wait_thread, &w);
	pthread_join(th, NULL);
	EXPECT_STATUS(w.rc, PLX_ETIMEDOUT);
	EXPECT_STATUS(plx_req_wait_mt(&req, 0), PLX_ETIMEDOUT);

	/* a long wait sleeps on the futex (past the spin) and is woken */
	w.timeout_ns = 10ull * 1000000000ull;
	w.rc = 1;
	pthread_create(&th, NULL, wait_thread, &w);
	uint64_t until = plx_now_ns() + 50000000; /* let it reach the futex */
	while (plx_now_ns() < until)
		sched_yield();
	EXPECT_EQ(plx_reactor_poll(&r), 1);
	pthread_join(th, NULL);
	EXPECT_OK(w.rc);
	EXPECT_EQ(req.status, 42);
	EXPECT_TRUE(plx_req_test_mt(&req));

	/* callback-mode requests are not handles */
	plx_req_init(&req, cb_count, NULL);
	EXPECT_STATUS(plx_req_wait_mt(&req, 1000), PLX_EINVAL);
	EXPECT_OK(plx_reactor_fini(&r));
}

static void test_full_ring_refuses_and_loses_nothing(void)
{
	struct plx_reactor r;
	struct plx_reactor_config cfg;
	struct plx_req req[9];
	struct plx_reactor_stats st;

	plx_reactor_config_init(&cfg);
	cfg.ring_capacity = 8;
	EXPECT_OK(plx_reactor_init(&r, &cfg));
	g_calls = 0;
	for (int i = 0; i < 9; i++)
		plx_req_init(&req[i], NULL, NULL);
	for (int i = 0; i < 8; i++)
		EXPECT_OK(plx_submit_call_mt(&r, &req[i], fn_count));
	EXPECT_STATUS(plx_submit_call_mt(&r, &req[8], fn_count), PLX_EAGAIN);
	/* the refused request is not in flight and may be resubmitted */
	EXPECT_STATUS(plx_req_wait_mt(&req[8], 1000), PLX_EINVAL);
	EXPECT_EQ(plx_reactor_poll(&r), 8);
	EXPECT_EQ(g_calls, 8);
	EXPECT_OK(plx_submit_call_mt(&r, &req[8], fn_count));
	EXPECT_EQ(plx_reactor_poll(&r), 1);
	for (int i = 0; i < 9; i++) {
		EXPECT_TRUE(plx_req_test_mt(&req[i]));
		EXPECT_EQ(req[i].status, 42);
	}
	EXPECT_OK(plx_reactor_stats(&r, &st));
	EXPECT_U64_EQ(st.ring_full, 1);
	EXPECT_U64_EQ(st.ring_drained, 9);
	EXPECT_U64_EQ(st.completions, 9);
	EXPECT_U64_EQ(st.reqs_inflight, 0);
	EXPECT_OK(plx_reactor_fini(&r));
}

static void test_poll_drains_at_most_max_batch(void)
{
	struct plx_reactor r;
	struct plx_reactor_config cfg;
	struct plx_req req[20];

	plx_reactor_config_init(&cfg);
	cfg.max_batch = 8;
	EXPECT_OK(plx_reactor_init(&r, &cfg));
	for (int i = 0; i < 20; i++) {
		plx_req_init(&req[i], NULL, NULL);
		EXPECT_OK(plx_submit_call_mt(&r, &req[i], fn_count));
	}
	EXPECT_EQ(plx_reactor_poll(&r), 8);
	EXPECT_EQ(plx_reactor_poll(&r), 8);
	EXPECT_EQ(plx_reactor_poll(&r), 4);
	EXPECT_EQ(plx_reactor_poll(&r), 0);
	EXPECT_OK(plx_reactor_fini(&r));
}

int main(void)
{
	test_owner_submit_is_deferred_and_exactly_once();
	test_async_completion_exactly_once();
	test_resubmit_from_callback_runs_next_poll();
	test_handle_wait_times_out_then_completes();
	test_full_ring_refuses_and_loses_nothing();
	test_poll_drains_at_most_max_batch();
	return 0;
}
