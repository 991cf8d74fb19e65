/* SPDX-License-Identifier: MIT */
/*
 * test_rdma_qp_attr: the RC QP transition attributes (transport/rdma/
 * qp_attr.c) and the GID preference rule, with no device: masks, fields,
 * defaults, and every spec field-width limit rejected with nothing
 * written.
 */
#include <stdbool.h>

#include "harness.h"
#include "transport/rdma/qp_attr.h"
#include "transport/rdma/rdma_internal.h"

static const uint8_t gid_v4[16] = {0, 0, 0,    0,    0,	 0,  0, 0,
				   0, 0, 0xff, 0xff, 10, 77, 0, 1};
static const uint8_t gid_ll[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0,
				   1,	 2,    3, 4, 5, 6, 7, 8};
static const uint8_t gid_v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
				   0,	 0,    0,    0,	   0, 0, 0, 1};
static const uint8_t gid_zero[16];

static void conn_valid(struct plx__qp_conn *c)
{
	plx__qp_conn_defaults(c);
	c->port = 1;
	c->remote_qpn = 0x123456;
	c->remote_psn = 0xabcdef;
	c->local_psn = 0x000042;
	c->sgid_index = 3;
	memcpy(c->remote_gid, gid_v4, 16);
}

static void test_defaults_route_and_retry(void)
{
	struct plx__qp_conn c;

	plx__qp_conn_defaults(&c);
	EXPECT_EQ(c.hop_limit, 64); /* routed RoCE v2 works */
	EXPECT_TRUE(c.global);
	EXPECT_EQ(c.min_rnr_timer, 12);
	EXPECT_EQ(c.timeout, 14);
	EXPECT_EQ(c.retry_cnt, 7);
	EXPECT_EQ(c.rnr_retry, 7);
	EXPECT_EQ(c.path_mtu, IBV_MTU_1024);
	EXPECT_EQ(c.max_rd_atomic, 1);
	EXPECT_EQ(c.max_dest_rd_atomic, 1);
	/* no peer yet: not connectable */
	EXPECT_STATUS(plx__qp_conn_check(&c), PLX_EINVAL);
	conn_valid(&c);
	EXPECT_OK(plx__qp_conn_check(&c));
}

static void test_transition_masks_and_fields(void)
{
	struct plx__qp_conn c;
	struct ibv_qp_attr a;
	int mask = 0;

	conn_valid(&c);
	memset(&a, 0xa5, sizeof(a));
	EXPECT_OK(plx__qp_attr_init(&c, &a, &mask));
	EXPECT_EQ(mask, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
				IBV_QP_ACCESS_FLAGS);
	EXPECT_EQ(a.qp_state, IBV_QPS_INIT);
	EXPECT_EQ(a.port_num, 1);
	EXPECT_EQ(a.pkey_index, 0);
	EXPECT_EQ(a.qp_access_flags, IBV_ACCESS_LOCAL_WRITE |
					     IBV_ACCESS_REMOTE_WRITE |
					     IBV_ACCESS_REMOTE_READ);
	EXPECT_EQ(a.sq_psn, 0); /* zeroed elsewhere */

	memset(&a, 0xa5, sizeof(a));
	EXPECT_OK(plx__qp_attr_rtr(&c, &a, &mask));
	EXPECT_EQ(mask, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
				IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
				IBV_QP_MAX_DEST_RD_ATOMIC |
				IBV_QP_MIN_RNR_TIMER);
	EXPECT_EQ(a.qp_state, IBV_QPS_RTR);
	EXPECT_EQ(a.dest_qp_num, 0x123456);
	EXPECT_EQ(a.rq_psn, 0xabcdef);
	EXPECT_EQ(a.path_mtu, IBV_MTU_1024);
	EXPECT_EQ(a.min_rnr_timer, 12);
	EXPECT_EQ(a.max_dest_rd_atomic, 1);
	EXPECT_EQ(a.ah_attr.is_global, 1);
	EXPECT_EQ(a.ah_attr.port_num, 1);
	EXPECT_EQ(a.ah_attr.grh.hop_limit, 64);
	EXPECT_EQ(a.ah_attr.grh.sgid_index, 3);
	EXPECT_EQ(a.ah_attr.dlid, 0);
	EXPECT_MEM_EQ(a.ah_attr.grh.dgid.raw, gid_v4, 16);

	memset(&a, 0xa5, sizeof(a));
	EXPECT_OK(plx__qp_attr_rts(&c, &a, &mask));
	EXPECT_EQ(mask, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
				IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
				IBV_QP_MAX_QP_RD_ATOMIC);
	EXPECT_EQ(a.qp_state, IBV_QPS_RTS);
	EXPECT_EQ(a.sq_psn, 0x42);
	EXPECT_EQ(a.timeout, 14);
	EXPECT_EQ(a.retry_cnt, 7);
	EXPECT_EQ(a.rnr_retry, 7);
	EXPECT_EQ(a.max_rd_atomic, 1);
	EXPECT_EQ(a.dest_qp_num, 0);

	/* InfiniBand, no GRH: addressed by LID */
	c.global = false;
	c.remote_lid = 7;
	EXPECT_OK(plx__qp_attr_rtr(&c, &a, &mask));
	EXPECT_EQ(a.ah_attr.is_global, 0);
	EXPECT_EQ(a.ah_attr.dlid, 7);
}

/* Every builder that uses the bad field (INIT: only port and access)
 * refuses @c with @want and leaves attr and mask alone; INIT accepts the
 * rest, as the peer's details are unknown when it runs. */
static void expect_rejected(const struct plx__qp_conn *c, int want,
			    const char *what)
{
	int (*fn[3])(const struct plx__qp_conn *, struct ibv_qp_attr *,
		     int *) = {plx__qp_attr_init, plx__qp_attr_rtr,
			       plx__qp_attr_rts};
	bool init_field = c->port == 0 || (c->access & IBV_ACCESS_MW_BIND) != 0;

	if (!init_field) {
		struct ibv_qp_attr a;
		int mask;

		EXPECT_OK(plx__qp_attr_init(c, &a, &mask));
	}
	for (int i = init_field ? 0 : 1; i < 3; i++) {
		struct ibv_qp_attr a, before;
		int mask = -7;

		memset(&a, 0x5a, sizeof(a));
		before = a;
		if (fn[i](c, &a, &mask) != want)
			PLX_FAIL("%s: builder %d: got %s, want %s", what, i,
				 plx_errname(fn[i](c, &a, &mask)),
				 plx_errname(want));
		EXPECT_EQ(mask, -7);
		EXPECT_MEM_EQ(&a, &before, sizeof(a));
	}
	EXPECT_STATUS(plx__qp_conn_check(c), want);
}

#define REJECT(field, value, want)                                             \
	do {                                                                   \
		struct plx__qp_conn c_;                                        \
		conn_valid(&c_);                                               \
		c_.field = value;                                              \
		expect_rejected(&c_, want, #field " = " #value);               \
	} while (0)

#define ACCEPT(field, value)                                                   \
	do {                                                                   \
		struct plx__qp_conn c_;                                        \
		conn_valid(&c_);                                               \
		c_.field = value;                                              \
		EXPECT_OK(plx__qp_conn_check(&c_));                            \
	} while (0)

static void test_spec_field_widths(void)
{
	struct plx__qp_conn c;

	/* min_rnr_timer: a 5-bit code */
	ACCEPT(min_rnr_timer, 31);
	REJECT(min_rnr_timer, 32, PLX_ERANGE);
	REJECT(min_rnr_timer, 255, PLX_ERANGE);
	ACCEPT(timeout, 31);
	REJECT(timeout, 32, PLX_ERANGE);
	ACCEPT(retry_cnt, 7);
	REJECT(retry_cnt, 8, PLX_ERANGE);
	ACCEPT(rnr_retry, 7);
	REJECT(rnr_retry, 8, PLX_ERANGE);
	ACCEPT(sl, 15);
	REJECT(sl, 16, PLX_ERANGE);
	/* 24-bit PSNs and QPNs */
	ACCEPT(remote_psn, 0xffffff);
	REJECT(remote_psn, 0x1000000, PLX_ERANGE);
	ACCEPT(local_psn, 0xffffff);
	REJECT(local_psn, 0x1000000, PLX_ERANGE);
	ACCEPT(remote_qpn, 0xffffff);
	REJECT(remote_qpn, 0x1000000, PLX_ERANGE);
	REJECT(remote_qpn, 0, PLX_EINVAL); /* QP0: SMI */
	REJECT(remote_qpn, 1, PLX_EINVAL); /* QP1: GSI */
	ACCEPT(remote_qpn, 2);
	ACCEPT(flow_label, 0xfffff);
	REJECT(flow_label, 0x100000, PLX_ERANGE);
	/* MTU: the ibv_mtu enum only */
	ACCEPT(path_mtu, IBV_MTU_256);
	ACCEPT(path_mtu, IBV_MTU_4096);
	REJECT(path_mtu, 0, PLX_EINVAL);
	REJECT(path_mtu, IBV_MTU_4096 + 1, PLX_EINVAL);
	REJECT(path_mtu, 1024, PLX_EINVAL); /* bytes, not the enum */
	REJECT(port, 0, PLX_EINVAL);
	REJECT(hop_limit, 0, PLX_EINVAL);
	ACCEPT(hop_limit, 255);
	REJECT(max_rd_atomic, 0, PLX_EINVAL);
	REJECT(max_dest_rd_atomic, 0, PLX_EINVAL);
	REJECT(access, IBV_ACCESS_MW_BIND, PLX_EINVAL);
	/* global needs a GID; non-global needs a LID */
	conn_valid(&c);
	memcpy(c.remote_gid, gid_zero, 16);
	expect_rejected(&c, PLX_EINVAL, "zero remote GID");
	conn_valid(&c);
	c.global = false;
	expect_rejected(&c, PLX_EINVAL, "no GRH, LID 0");
	c.remote_lid = 1;
	EXPECT_OK(plx__qp_conn_check(&c));
}

static void test_gid_rank_prefers_roce_v2_ipv4(void)
{
	/* RoCE v2 IPv4-mapped > RoCE v2 global IPv6 > RoCE v2 link-local >
	 * anything else non-zero > zero */
	EXPECT_EQ(plx__rdma_gid_rank(IBV_GID_TYPE_ROCE_V2, gid_v4), 4);
	EXPECT_EQ(plx__rdma_gid_rank(IBV_GID_TYPE_ROCE_V2, gid_v6), 3);
	EXPECT_EQ(plx__rdma_gid_rank(IBV_GID_TYPE_ROCE_V2, gid_ll), 2);
	EXPECT_EQ(plx__rdma_gid_rank(IBV_GID_TYPE_ROCE_V1, gid_v4), 1);
	EXPECT_EQ(plx__rdma_gid_rank(IBV_GID_TYPE_IB, gid_ll), 1);
	EXPECT_EQ(plx__rdma_gid_rank(-1, gid_v6), 1); /* type unknown */
	EXPECT_EQ(plx__rdma_gid_rank(IBV_GID_TYPE_ROCE_V2, gid_zero), 0);
	EXPECT_EQ(plx__rdma_gid_rank(IBV_GID_TYPE_IB, gid_zero), 0);
}

int main(void)
{
	test_defaults_route_and_retry();
	test_transition_masks_and_fields();
	test_spec_field_widths();
	test_gid_rank_prefers_roce_v2_ipv4();
	fprintf(stderr, "test_rdma_qp_attr: passed\n");
	return 0;
}
