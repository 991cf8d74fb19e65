/* SPDX-License-Identifier: MIT */
/*
 * test_rdma_device: the RDMA transport against a real verbs device. Run
 * inside the soft-RoCE guest by tests/rdma/run-rxe-vm.sh (ctest:
 * test_rdma_vm); elsewhere, with no device, it exits 77. In the guest
 * (PLX_RXE_VM=1) an unavailable transport is a failure, not a skip.
 *
 * It attaches the transport, checks the chosen device/port/GID, creates an
 * RC QP through the loaded verbs table, connects it to itself
 * (RESET->INIT->RTR->RTS with qp_attr.c, remote QPN and GID its own), posts
 * RDMA WRITEs from one registered buffer to another and takes the
 * completions from plx_reactor_poll(), busy-polling and then sleeping on
 * the reactor fd (completion channel), and checks the bytes landed.
 */
#include <poll.h>

#include "harness.h"
#include "pollux/pollux.h"
#include "transport/rdma/qp_attr.h"
#include "transport/rdma/rdma_internal.h"

struct wc_seen {
	struct plx__rdma_wc_handler h;
	int done;
	struct ibv_wc wc;
};

static void wc_seen_fn(struct plx_reactor *r, struct plx__rdma_wc_handler *h,
		       const struct ibv_wc *wc)
{
	struct wc_seen *s = (struct wc_seen *)(void *)h;

	(void)r;
	s->done++;
	s->wc = *wc;
}

static void log_cb(void *arg, int level, const char *msg)
{
	(void)arg;
	fprintf(stderr, "log[%d]: %s\n", level, msg);
}

struct loop {
	struct plx_reactor r;
	struct plx__rdma *d;
	const struct plx__ibv *t;
	struct ibv_qp *qp;
	struct ibv_mr *src_mr, *dst_mr;
	char src[256], dst[256];
};

static void post_write(struct loop *L, struct wc_seen *s, uint32_t off,
		       uint32_t len)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(L->src + off),
		.length = len,
		.lkey = L->src_mr->lkey,
	};
	struct ibv_send_wr wr = {0}, *bad = NULL;

	memset(s, 0, sizeof(*s));
	s->h.fn = wc_seen_fn;
	wr.wr_id = (uintptr_t)&s->h;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.wr.rdma.remote_addr = (uintptr_t)(L->dst + off);
	wr.wr.rdma.rkey = L->dst_mr->rkey;
	EXPECT_OK(ibv_post_send(L->qp, &wr, &bad));
}

static void expect_write_ok(const struct wc_seen *s, const struct loop *L,
			    uint32_t off, uint32_t len)
{
	EXPECT_EQ(s->done, 1);
	if (s->wc.status != IBV_WC_SUCCESS)
		PLX_FAIL("wc status %d (vendor_err %u)", (int)s->wc.status,
			 s->wc.vendor_err);
	EXPECT_EQ(s->wc.opcode, IBV_WC_RDMA_WRITE);
	EXPECT_EQ(s->wc.qp_num, L->qp->qp_num);
	EXPECT_MEM_EQ(L->dst + off, L->src + off, len);
}

static void qp_connect_to_self(struct loop *L, const struct plx_rdma_info *in)
{
	struct plx__qp_conn c;
	struct ibv_qp_attr a;
	struct ibv_qp_init_attr qa = {0};
	int mask;

	qa.send_cq = L->d->cq;
	qa.recv_cq = L->d->cq;
	qa.qp_type = IBV_QPT_RC;
	qa.cap.max_send_wr = 16;
	qa.cap.max_recv_wr = 16;
	qa.cap.max_send_sge = 1;
	qa.cap.max_recv_sge = 1;
	L->qp = L->t->create_qp(L->d->pd, &qa);
	EXPECT_TRUE(L->qp != NULL);
	EXPECT_GE(L->qp->qp_num, 2);

	plx__qp_conn_defaults(&c);
	c.port = (uint8_t)in->port;
	c.remote_qpn = L->qp->qp_num; /* looped back to itself */
	c.remote_psn = 0x1234;
	c.local_psn = 0x1234;
	c.global = in->link_layer == IBV_LINK_LAYER_ETHERNET;
	memcpy(c.remote_gid, in->gid, 16);
	c.sgid_index = (uint8_t)in->gid_index;
	c.remote_lid = in->lid;
	c.path_mtu = IBV_MTU_1024;
	EXPECT_OK(plx__qp_attr_init(&c, &a, &mask));
	EXPECT_OK(L->t->modify_qp(L->qp, &a, mask));
	EXPECT_OK(plx__qp_attr_rtr(&c, &a, &mask));
	EXPECT_OK(L->t->modify_qp(L->qp, &a, mask));
	EXPECT_OK(plx__qp_attr_rts(&c, &a, &mask));
	EXPECT_OK(L->t->modify_qp(L->qp, &a, mask));
}

static void test_rdma_write_loopback_completes_in_poll(void)
{
	static struct loop L;
	struct plx_reactor_config rcfg;
	struct plx_rdma_info in;
	struct plx_reactor_stats st;
	struct wc_seen s;
	uint64_t end;
	int rc, access, n;

	plx_reactor_config_init(&rcfg);
	rcfg.log_cb = log_cb;
	rcfg.log_level = PLX_LOG_INFO;
	EXPECT_OK(plx_reactor_init(&L.r, &rcfg));
	rc = plx_rdma_init(&L.r, NULL);
	if (rc == PLX_EUNAVAIL) {
		EXPECT_OK(plx_reactor_fini(&L.r));
		if (getenv("PLX_RXE_VM"))
			PLX_FAIL("no RDMA device inside the soft-RoCE guest");
		PLX_SKIP("no RDMA device on this host");
	}
	EXPECT_OK(rc);
	EXPECT_STATUS(plx_rdma_init(&L.r, NULL), PLX_EEXIST);
	EXPECT_OK(plx_rdma_info(&L.r, &in));
	fprintf(stderr,
		"rdma device %s port %u gid_index %d roce v%d link_layer %d "
		"mtu %u cq %u (single-threaded %d, thread domain %d) gid",
		in.device, in.port, in.gid_index, in.roce_version,
		in.link_layer, in.active_mtu, in.cq_size, in.cq_single_threaded,
		in.thread_domain);
	for (int i = 0; i < 16; i++)
		fprintf(stderr, "%s%02x",
			!i    ? " " :
			i % 2 ? "" :
				":",
			in.gid[i]);
	fprintf(stderr, "\n");
	EXPECT_GE(in.port, 1);
	EXPECT_GE(in.gid_index, 0);
	EXPECT_GE(in.active_mtu, 256);
	EXPECT_GE(in.cq_size, 1);
	if (getenv("PLX_RXE_VM")) {
		/* the guest's rxe0 sits on veth0 = 10.77.0.1: the rule must
		 * pick its RoCE v2 IPv4-mapped GID */
		static const uint8_t want[16] = {
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 77, 0, 1};

		EXPECT_TRUE(!strcmp(in.device, "rxe0"));
		EXPECT_EQ(in.roce_version, 2);
		EXPECT_EQ(in.link_layer, IBV_LINK_LAYER_ETHERNET);
		EXPECT_MEM_EQ(in.gid, want, 16);
	}

	L.d = plx__rdma_get(&L.r);
	EXPECT_TRUE(L.d != NULL);
	L.t = L.d->ibv;
	/* idle: the CQ phase runs, finds nothing */
	EXPECT_EQ(plx_reactor_poll(&L.r), 0);

	/* create and destroy one QP, then the one we use */
	qp_connect_to_self(&L, &in);
	EXPECT_OK(L.t->destroy_qp(L.qp));
	qp_connect_to_self(&L, &in);

	access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE;
	L.src_mr = L.t->reg_mr(L.d->pd, L.src, sizeof(L.src), access);
	L.dst_mr = L.t->reg_mr(L.d->pd, L.dst, sizeof(L.dst), access);
	EXPECT_TRUE(L.src_mr && L.dst_mr);
	for (size_t i = 0; i < sizeof(L.src); i++)
		L.src[i] = (char)(i * 7 + 1);
	memset(L.dst, 0, sizeof(L.dst));

	/* 1: busy polling */
	post_write(&L, &s, 0, 13);
	end = plx_now_ns() + 5000000000ull;
	while (!s.done && plx_now_ns() < end)
		plx_reactor_poll(&L.r);
	expect_write_ok(&s, &L, 0, 13);
	EXPECT_EQ(L.dst[13], 0); /* not a byte more */

	/* 2: event-driven: arm while idle (CQ notification requested), post,
	 * sleep on the reactor fd: the completion channel must wake it */
	EXPECT_OK(plx_reactor_arm(&L.r));
	post_write(&L, &s, 64, 100);
	{
		struct pollfd pfd = {.fd = plx_reactor_fd(&L.r),
				     .events = POLLIN};

		n = poll(&pfd, 1, 5000);
		EXPECT_EQ(n, 1); /* woken, not timed out */
	}
	end = plx_now_ns() + 5000000000ull;
	while (!s.done && plx_now_ns() < end)
		plx_reactor_poll(&L.r);
	expect_write_ok(&s, &L, 64, 100);
	EXPECT_GE(L.d->cq_events, 1); /* the wake-up came from the channel */
	fprintf(stderr, "rdma: completion channel events drained: %llu\n",
		(unsigned long long)L.d->cq_events);

	/* 3: many writes in flight, each completing once */
	{
		static struct wc_seen m[8];
		int total;

		for (int i = 0; i < 8; i++)
			post_write(&L, &m[i], 128 + (uint32_t)i * 16, 16);
		end = plx_now_ns() + 5000000000ull;
		do {
			plx_reactor_poll(&L.r);
			total = 0;
			for (int i = 0; i < 8; i++)
				total += m[i].done;
		} while (total < 8 && plx_now_ns() < end);
		for (int i = 0; i < 8; i++)
			expect_write_ok(&m[i], &L, 128 + (uint32_t)i * 16, 16);
	}
	EXPECT_OK(plx_reactor_stats(&L.r, &st));
	EXPECT_GE(L.d->completions, 10);

	EXPECT_OK(L.t->destroy_qp(L.qp));
	EXPECT_OK(L.t->dereg_mr(L.src_mr));
	EXPECT_OK(L.t->dereg_mr(L.dst_mr));
	EXPECT_OK(plx_reactor_fini(&L.r));
}

int main(void)
{
	test_rdma_write_loopback_completes_in_poll();
	fprintf(stderr, "test_rdma_device: passed\n");
	return 0;
}
