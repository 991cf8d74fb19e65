/* SPDX-License-Identifier: MIT */
/* The documented phase order of plx_reactor_poll(): rings, CQs, sockets,
 * CUDA events, timers, deferred completions; and how transports take part
 * in arm and fini. Transports here are test transports attached through the
 * real internal ops table. */
#include "harness.h"
#include "pollux/pollux.h"
#include "transport/transport.h"

static char g_trace[64];
static int g_ntrace;

static void mark(char c)
{
	if (g_ntrace < (int)sizeof(g_trace) - 1)
		g_trace[g_ntrace++] = c;
}

struct fake {
	char tag;
	int events; /* events the next poll reports */
	int arm_rc; /* what arm() answers */
	uint64_t live;
	int finis;
};

static int fake_poll(struct plx_reactor *r, void *ctx, uint32_t budget)
{
	struct fake *f = ctx;
	int n = f->events;

	(void)r;
	EXPECT_GT(budget, 0);
	mark(f->tag);
	f->events = 0;
	return n;
}

static int fake_arm(struct plx_reactor *r, void *ctx)
{
	(void)r;
	return ((struct fake *)ctx)->arm_rc;
}

static uint64_t fake_live(struct plx_reactor *r, void *ctx)
{
	(void)r;
	return ((struct fake *)ctx)->live;
}

static void fake_fini(struct plx_reactor *r, void *ctx)
{
	(void)r;
	((struct fake *)ctx)->finis++;
}

static const struct plx__transport_ops sock_ops = {
	.name = "sock",
	.phase = PLX__PHASE_SOCKET,
	.poll = fake_poll,
	.arm = fake_arm,
	.live = fake_live,
	.fini = fake_fini,
};
static const struct plx__transport_ops cq_ops = {
	.name = "cq",
	.phase = PLX__PHASE_CQ,
	.poll = fake_poll,
	.arm = fake_arm,
	.live = fake_live,
	.fini = fake_fini,
};
static const struct plx__transport_ops cuda_ops = {
	.name = "cuda",
	.phase = PLX__PHASE_CUDA,
	.poll = fake_poll,
};

static int fn_ring(struct plx_reactor *r, struct plx_req *req)
{
	(void)r;
	(void)req;
	mark('R');
	return 0;
}

static void cb_done(struct plx_reactor *r, struct plx_req *req)
{
	(void)r;
	mark(req->user ? 'D' : 'd');
}

static void on_timer(struct plx_reactor *r, struct plx_timer *t)
{
	(void)r;
	(void)t;
	mark('T');
}

static int fn_deferred(struct plx_reactor *r, struct plx_req *req)
{
	(void)r;
	(void)req;
	mark('F');
	return 0;
}

static void test_phase_order(void)
{
	struct plx_reactor r;
	struct fake sock = {.tag = 'S', .events = 2};
	struct fake cq = {.tag = 'C', .events = 1};
	struct fake cuda = {.tag = 'G', .events = 0};
	struct plx_req ring_req, def_req;
	struct plx_timer t;

	EXPECT_OK(plx_reactor_init(&r, NULL));
	/* attached out of phase order on purpose */
	EXPECT_OK(plx__reactor_add_transport(&r, &cuda_ops, &cuda));
	EXPECT_OK(plx__reactor_add_transport(&r, &sock_ops, &sock));
	EXPECT_OK(plx__reactor_add_transport(&r, &cq_ops, &cq));
	EXPECT_STATUS(plx__reactor_add_transport(&r, &cq_ops, &cq), PLX_EEXIST);

	plx_req_init(&ring_req, cb_done, NULL);
	plx_req_init(&def_req, cb_done, &def_req);
	plx_timer_init(&t, on_timer, NULL);
	EXPECT_OK(plx_submit_call(&r, &def_req, fn_deferred));
	EXPECT_OK(plx_submit_call_mt(&r, &ring_req, fn_ring));
	EXPECT_OK(plx_timer_start(&r, &t, 0, 0));

	/* ring request (runs and completes in phase 1), CQ, sockets, CUDA,
	 * timer, then the deferred call and its completion */
	EXPECT_EQ(plx_reactor_poll(&r), 1 + 1 + 2 + 1 + 1);
	g_trace[g_ntrace] = 0;
	EXPECT_TRUE(!strcmp(g_trace, "RdCSGTFD") ||
		    (fprintf(stderr, "trace %s\n", g_trace), 0));

	/* transports keep fini busy while they report live objects */
	sock.live = 3;
	EXPECT_STATUS(plx_reactor_fini(&r), PLX_EBUSY);
	EXPECT_EQ(sock.finis, 0);
	sock.live = 0;

	/* a transport with pending work refuses the arm */
	sock.arm_rc = PLX_EBUSY;
	EXPECT_STATUS(plx_reactor_arm(&r), PLX_EBUSY);
	sock.arm_rc = 0;
	EXPECT_OK(plx_reactor_arm(&r));
	EXPECT_EQ(plx_reactor_poll(&r), 0);

	EXPECT_OK(plx_reactor_fini(&r));
	EXPECT_EQ(sock.finis, 1);
	EXPECT_EQ(cq.finis, 1);
}

static void test_transport_slots_bounded(void)
{
	struct plx_reactor r;
	struct fake f[5] = {{.tag = 'a'},
			    {.tag = 'b'},
			    {.tag = 'c'},
			    {.tag = 'd'},
			    {.tag = 'e'}};
	struct plx__transport_ops ops[5];

	EXPECT_OK(plx_reactor_init(&r, NULL));
	for (int i = 0; i < 5; i++) {
		ops[i] = sock_ops;
		ops[i].fini = NULL;
	}
	for (int i = 0; i < 4; i++)
		EXPECT_OK(plx__reactor_add_transport(&r, &ops[i], &f[i]));
	EXPECT_STATUS(plx__reactor_add_transport(&r, &ops[4], &f[4]),
		      PLX_ENOSPC);
	EXPECT_OK(plx_reactor_fini(&r));
}

int main(void)
{
	test_phase_order();
	test_transport_slots_bounded();
	return 0;
}
