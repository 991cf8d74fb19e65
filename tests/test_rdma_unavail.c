/* SPDX-License-Identifier: MIT */
/*
 * test_rdma_unavail: on a host without a verbs device (or without
 * rdma-core, or in a build without the RDMA transport) plx_rdma_init()
 * returns PLX_EUNAVAIL cleanly, says why through the log callback, leaves
 * the reactor unchanged, and the TCP transport on the same reactor still
 * works. On a host that has a device it checks plx_rdma_info() instead and
 * then runs the same TCP traffic next to the RDMA transport.
 */
#include "tcp_pair.h"

static char last_log[512];
static int nlogs;

static void log_cb(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	nlogs++;
	snprintf(last_log, sizeof(last_log), "%s", msg);
}

static void test_rdma_absent_keeps_tcp(void)
{
	struct plx_reactor_config rcfg;
	struct plx_rdma_config cfg;
	struct plx_rdma_info info;
	struct side A, B;
	struct plx_ep *ep;
	struct tracked s, rv;
	char in[32] = {0};
	int rc;

	plx_reactor_config_init(&rcfg);
	rcfg.log_cb = log_cb;
	rcfg.log_level = PLX_LOG_DEBUG;
	side_init(&A, "127.0.0.1", NULL, &rcfg);
	side_init(&B, NULL, NULL, NULL);

	plx_rdma_config_init(&cfg);
	EXPECT_EQ(cfg.gid_index, -1);
	EXPECT_EQ(cfg.port, 0);
	EXPECT_TRUE(cfg.device == NULL);
	cfg.cq_size = 0;
	EXPECT_STATUS(plx_rdma_init(&A.r, &cfg), PLX_EINVAL);
	plx_rdma_config_init(&cfg);

	nlogs = 0;
	rc = plx_rdma_init(&A.r, &cfg);
	if (rc == PLX_EUNAVAIL) {
		EXPECT_GT(nlogs, 0);
		fprintf(stderr, "plx_rdma_init: PLX_EUNAVAIL, log: %s\n",
			last_log);
		EXPECT_TRUE(strstr(last_log, "rdma") != NULL);
		EXPECT_STATUS(plx_rdma_info(&A.r, &info), PLX_EUNAVAIL);
		/* stays unavailable, no state left behind */
		EXPECT_STATUS(plx_rdma_init(&A.r, NULL), PLX_EUNAVAIL);
	} else {
		/* a host with a verbs device */
		EXPECT_OK(rc);
		EXPECT_OK(plx_rdma_info(&A.r, &info));
		fprintf(stderr, "rdma device %s port %u gid %d\n", info.device,
			info.port, info.gid_index);
		EXPECT_GE(info.port, 1);
		EXPECT_STATUS(plx_rdma_init(&A.r, NULL), PLX_EEXIST);
	}
	/* a named device that does not exist is never found */
	cfg.device = "plx-no-such-device";
	rc = plx_rdma_init(&A.r, &cfg);
	EXPECT_TRUE(rc == PLX_EUNAVAIL || rc == PLX_EEXIST || rc == PLX_ENODEV);

	/* TCP on the same reactor */
	EXPECT_OK(plx_tcp_connect(&B.r, "127.0.0.1", A.port, &ep));
	EXPECT_TRUE(pair_wait_event(&A, &B, &B, PLX_EP_CONNECTED, 5000));
	EXPECT_TRUE(pair_wait_event(&A, &B, &A, PLX_EP_ACCEPTED, 5000));
	tracked_init(&s);
	tracked_init(&rv);
	EXPECT_OK(plx_ep_recv(A.accepted, &rv.op, in, sizeof(in), 0, 0));
	EXPECT_OK(plx_ep_send(ep, &s.op, "over tcp", 9, 1));
	EXPECT_TRUE(pair_until(&A, &B, &rv.done, 5000));
	EXPECT_TRUE(pair_until(&A, &B, &s.done, 5000));
	EXPECT_OK(rv.status);
	EXPECT_OK(s.status);
	EXPECT_U64_EQ(rv.bytes, 9);
	EXPECT_TRUE(!strcmp(in, "over tcp"));
	side_fini(&B, &A);
	side_fini(&A, NULL);
}

int main(void)
{
	test_rdma_absent_keeps_tcp();
	fprintf(stderr, "test_rdma_unavail: passed\n");
	return 0;
}
