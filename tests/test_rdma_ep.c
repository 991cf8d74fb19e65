/* SPDX-License-Identifier: MIT */
/*
 * test_rdma_ep: endpoints over RDMA, two reactors in one process, against
 * real rdma-core and soft-RoCE (run inside the guest by
 * tests/rdma/run-rxe-vm.sh; elsewhere, without a device, it exits 77; in
 * the guest, PLX_RXE_VM=1, a missing device is a failure).
 *
 * Both reactors attach TCP and RDMA; their TCP session connects the QPs
 * (docs/rdma.md). Checked: write, inline write of an unregistered buffer,
 * read, write_imm (handler called with the data in place before the op
 * completes), 1 MiB split over 2 QPs, a batch of 64 writes, the ops really
 * go over the QPs (counters), out-of-range descriptors refused at
 * submission, a forged rkey and a revoked region refused by the NIC with
 * the target untouched and the QPs reconnected on next use, crossing
 * connection requests from both sides (simultaneous open), peer restart
 * (same node id, new epoch), and close + fini with ops in flight: every op
 * completes exactly once. A peer that floods connection requests gets
 * QPs made for 8 of them, then REJ, and one more a second later. A REQ
 * naming a GID whose neighbour is not resolved is held, not answered
 * inside a verbs call that would wait for it: refused after 3 s, or
 * answered once the neighbour appears; over IPv4 and IPv6 GIDs. A storm
 * of connection messages in a random order leaves every op completed
 * once.
 */
#include <net/if.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "pollux/rdma.h"
#include "reactor/internal.h"
#include "tcp_pair.h"
#include "transport/rdma/common/cm.h"
#include "transport/rdma/common/rdma_ep.h"
#include "transport/rdma/rdma_internal.h"

static struct side A, B; /* A: node id 01.., B: node id 02.. (A < B) */
static void pair_down(void);
static char log_buf[256];

static void log_cb(void *arg, int level, const char *msg)
{
	(void)arg;
	if (level <= PLX_LOG_INFO)
		fprintf(stderr, "log[%d]: %s\n", level, msg);
	snprintf(log_buf, sizeof(log_buf), "%s", msg);
}

/* Sends over RDMA (test_send_recv): each side gets a receive pool of
 * POOL_N buffers of POOL_BUF bytes in a registered region; with
 * use_msg_cb, unmatched messages go to the message-pool handler (the same
 * pool: handed over without a copy). */
#define POOL_BUF 4096
#define POOL_N 64
static int use_pool, use_msg_cb;
static int gid_index_cfg = -1; /* rdma_side(): plx_rdma_config.gid_index */
static struct {
	struct plx_pool pool;
	uint8_t *mem;
	size_t len;
	struct plx_region reg;
	int nmsg;
	void *msg_buf;
	uint64_t msg_tag, msg_len;
} P[2];

static void msg_cb(struct plx_reactor *r, struct plx_ep *ep, uint64_t tag,
		   void *buf, uint64_t len, void *arg)
{
	struct side *s = arg;
	int k = s == &A ? 0 : 1;

	(void)r;
	(void)ep;
	P[k].nmsg++;
	P[k].msg_tag = tag;
	P[k].msg_len = len;
	if (P[k].msg_buf)
		plx_pool_put(&P[k].pool, P[k].msg_buf);
	P[k].msg_buf = buf; /* kept until the next one */
}

/* The TCP side of a pool-mode reactor: the message-pool handler on the
 * receive pool (use_msg_cb), small unexpected slots. */
static void pool_tweak(struct side *s)
{
	int k = s == &A ? 0 : 1;

	if (use_msg_cb) {
		s->cfg.msg_cb = msg_cb;
		s->cfg.msg_pool = &P[k].pool;
	}
	s->cfg.unexpected_size = 1024; /* larger messages wait for a recv */
}

static int rdma_side(struct side *s, uint8_t id, const char *listen,
		     uint32_t qps)
{
	struct plx_reactor_config rc;
	struct plx_rdma_config dc;
	int k = id == 1 ? 0 : 1;

	plx_reactor_config_init(&rc);
	memset(rc.node_id, 0, 16);
	rc.node_id[0] = id;
	rc.log_cb = log_cb;
	rc.log_level = PLX_LOG_INFO;
	plx_rdma_config_init(&dc);
	dc.qps_per_ep = qps;
	dc.split_min = 256 * 1024;
	dc.gid_index = gid_index_cfg;
	if (!use_pool) {
		side_init(s, listen, NULL, &rc);
		return plx_rdma_init(&s->r, &dc);
	}
	/* side_init(), with the receive pool wired in */
	P[k].len = plx_pool_memsize(POOL_BUF, POOL_N);
	P[k].mem = aligned_alloc(4096, (P[k].len + 4095) & ~(size_t)4095);
	EXPECT_TRUE(P[k].mem != NULL);
	EXPECT_OK(plx_pool_init(&P[k].pool, P[k].mem, P[k].len, POOL_BUF,
				POOL_N));
	side_init_with(s, listen, NULL, &rc, pool_tweak);
	EXPECT_OK(plx_mem_register(&s->r, &P[k].reg, P[k].mem, P[k].len, 0));
	dc.recv_pool = &P[k].pool;
	dc.recv_depth = 8;
	return plx_rdma_init(&s->r, &dc);
}

/* Both sides down, then the pools (registered regions keep a reactor
 * from finishing; the QPs give their receive buffers back as they go). */
static void pools_down(void)
{
	plx_mem_deregister(&A.r, &P[0].reg);
	plx_mem_deregister(&B.r, &P[1].reg);
	pair_down();
	for (int k = 0; k < 2; k++) {
		free(P[k].mem);
		memset(&P[k], 0, sizeof(P[k]));
	}
	use_pool = use_msg_cb = 0;
}

/* A and B, connected, RDMA attached to both; returns A's endpoint. */
static struct plx_ep *pair_up(uint32_t qps)
{
	struct plx_ep *ep;
	int rc = rdma_side(&A, 1, "127.0.0.1", qps);

	if (rc == PLX_EUNAVAIL) {
		if (getenv("PLX_RXE_VM"))
			PLX_FAIL("no RDMA device inside the soft-RoCE guest");
		PLX_SKIP("no RDMA device on this host");
	}
	EXPECT_OK(rc);
	EXPECT_OK(rdma_side(&B, 2, NULL, qps));
	EXPECT_OK(plx_tcp_connect(&B.r, "127.0.0.1", A.port, &ep));
	EXPECT_TRUE(pair_wait_event(&A, &B, &B, PLX_EP_CONNECTED, 5000));
	EXPECT_TRUE(pair_wait_event(&A, &B, &A, PLX_EP_ACCEPTED, 5000));
	return ep; /* B's endpoint to A */
}

static void pair_down(void)
{
	side_fini(&B, &A);
	side_fini(&A, NULL);
}

static void rstats(struct side *s, struct plx_rdma_stats *st)
{
	EXPECT_OK(plx_rdma_stats(&s->r, st));
}

static void wait_done(struct tracked *t, int n, int ms)
{
	uint64_t end = plx_now_ns() + (uint64_t)ms * 1000000ull;

	for (;;) {
		int all = 1;

		for (int i = 0; i < n; i++)
			if (!t[i].done)
				all = 0;
		if (all || plx_now_ns() > end)
			break;
		pair_poll(&A, &B);
	}
	for (int i = 0; i < n; i++)
		if (t[i].done != 1) {
			struct plx_rdma_stats sa_, sb_;

			for (int j = 0; j < n; j++)
				fprintf(stderr, "%d:%d/%d ", j, t[j].done,
					t[j].status);
			plx_rdma_stats(&A.r, &sa_);
			plx_rdma_stats(&B.r, &sb_);
			fprintf(stderr,
				"\nA posted %llu errors %llu; B posted "
				"%llu errors %llu\n",
				(unsigned long long)sa_.ops_posted,
				(unsigned long long)sa_.wc_errors,
				(unsigned long long)sb_.ops_posted,
				(unsigned long long)sb_.wc_errors);
			PLX_FAIL("op %d completed %d times", i, t[i].done);
		}
}

/* Registered regions on A, described for B. */
static uint8_t *abuf, *bbuf;
#define REG_LEN (2u << 20)
static struct plx_region areg, breg;
static struct plx_desc adesc;

static void regions_up(void)
{
	abuf = aligned_alloc(4096, REG_LEN);
	bbuf = aligned_alloc(4096, REG_LEN);
	EXPECT_TRUE(abuf && bbuf);
	memset(abuf, 0, REG_LEN);
	for (uint32_t i = 0; i < REG_LEN; i++)
		bbuf[i] = (uint8_t)(i * 7 + 3);
	EXPECT_OK(plx_mem_register(&A.r, &areg, abuf, REG_LEN, PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_register(&B.r, &breg, bbuf, REG_LEN, 0));
	EXPECT_OK(plx_mem_desc(&A.r, &areg, &adesc));
	EXPECT_TRUE(adesc.hints & PLX_HINT_RDMA);
	EXPECT_NE(adesc.rkey, 0);
}

static void regions_down(void)
{
	plx_mem_deregister(&A.r, &areg);
	plx_mem_deregister(&B.r, &breg);
	free(abuf);
	free(bbuf);
}

static void test_ops_over_qps(void)
{
	struct plx_ep *ep = pair_up(2);
	struct plx_rdma_stats sa, sb;
	struct tracked t[64];
	char small[40] = "inline write of an unregistered buffer";
	uint8_t *rd;

	regions_up();
	/* write from a registered buffer: 4 KiB */
	tracked_init(&t[0]);
	EXPECT_OK(plx_ep_write(ep, &t[0].op, bbuf, 4096, &adesc, 0));
	wait_done(t, 1, 5000);
	EXPECT_OK(t[0].status);
	EXPECT_U64_EQ(t[0].bytes, 4096);
	EXPECT_MEM_EQ(abuf, bbuf, 4096);
	rstats(&B, &sb);
	rstats(&A, &sa);
	EXPECT_GE(sb.ops_posted, 1);
	EXPECT_EQ(sb.qps_created, 2);
	EXPECT_EQ(sa.qps_created, 2);
	EXPECT_EQ(sa.connects + sb.connects, 1); /* A (smaller id) connected */
	EXPECT_EQ(sa.connects, 1);

	/* inline write from the stack (not registered) */
	tracked_init(&t[0]);
	EXPECT_OK(
		plx_ep_write(ep, &t[0].op, small, sizeof(small), &adesc, 8192));
	wait_done(t, 1, 5000);
	{
		struct plx_rdma_stats sb1;

		rstats(&B, &sb1);
		/* 40 bytes from the stack: inline where the QP allows
		 * (soft-RoCE does; a provider without inline data gets the
		 * copy into a registered slot buffer) */
		if (getenv("PLX_RXE_VM"))
			EXPECT_GT(sb1.inline_wrs, sb.inline_wrs);
	}
	rstats(&B, &sb);
	if (t[0].status)
		fprintf(stderr,
			"inline write: %s; posted %llu wc errors %llu "
			"last %d vendor %u\n",
			plx_errname(t[0].status),
			(unsigned long long)sb.ops_posted,
			(unsigned long long)sb.wc_errors, sb.last_wc_status,
			sb.last_vendor_err);
	EXPECT_OK(t[0].status);
	EXPECT_MEM_EQ(abuf + 8192, small, sizeof(small));

	/* 1 MiB: split over both QPs (split_min 256 KiB) */
	tracked_init(&t[0]);
	EXPECT_OK(plx_ep_write(ep, &t[0].op, bbuf + 4096, 1u << 20, &adesc,
			       65536));
	wait_done(t, 1, 10000);
	EXPECT_OK(t[0].status);
	EXPECT_MEM_EQ(abuf + 65536, bbuf + 4096, 1u << 20);

	/* read back into a registered buffer of B */
	rd = bbuf + (1u << 20) + 65536;
	tracked_init(&t[0]);
	EXPECT_OK(plx_ep_read(ep, &t[0].op, rd, 300000, &adesc, 65536));
	wait_done(t, 1, 10000);
	EXPECT_OK(t[0].status);
	EXPECT_U64_EQ(t[0].bytes, 300000);
	EXPECT_MEM_EQ(rd, abuf + 65536, 300000);

	/* write_imm: data in place when A's handler runs, then completion */
	A.imm_expect = bbuf + 100;
	A.imm_at = abuf + 200000;
	tracked_init(&t[0]);
	EXPECT_OK(plx_ep_write_imm(ep, &t[0].op, bbuf + 100, 5000, &adesc,
				   200000, 0xabcdef01u));
	wait_done(t, 1, 5000);
	EXPECT_OK(t[0].status);
	EXPECT_EQ(A.imm_count, 1);
	EXPECT_EQ(A.imm_data_ok, 1);
	EXPECT_U64_EQ(A.last_imm, 0xabcdef01u);
	EXPECT_U64_EQ(A.last_imm_addr, (uint64_t)(uintptr_t)(abuf + 200000));
	EXPECT_U64_EQ(A.last_imm_len, 5000);
	A.imm_expect = NULL;

	/* a batch of 64 writes and write_imms, posted as chains */
	rstats(&B, &sb);
	EXPECT_OK(plx_ep_batch_begin(ep));
	for (int i = 0; i < 64; i++) {
		tracked_init(&t[i]);
		if (i % 8 == 7)
			EXPECT_OK(plx_ep_write_imm(
				ep, &t[i].op, bbuf + 4096 * i, 4096, &adesc,
				1048576 + 4096 * i, (uint32_t)i));
		else
			EXPECT_OK(plx_ep_write(ep, &t[i].op, bbuf + 4096 * i,
					       4096, &adesc,
					       1048576 + 4096 * i));
	}
	for (int i = 0; i < 4; i++)
		pair_poll(&A, &B);
	for (int i = 0; i < 64; i++)
		EXPECT_EQ(t[i].done, 0); /* nothing leaves before _end */
	EXPECT_OK(plx_ep_batch_end(ep));
	{
		struct plx_rdma_stats sb2;

		rstats(&B, &sb2);
		/* 64 ops, 72 WRs: one ibv_post_send() per QP */
		EXPECT_U64_EQ(sb2.ops_posted - sb.ops_posted, 64);
		EXPECT_U64_EQ(sb2.post_calls - sb.post_calls, 2);
	}
	wait_done(t, 64, 10000);
	for (int i = 0; i < 64; i++)
		EXPECT_OK(t[i].status);
	EXPECT_MEM_EQ(abuf + 1048576, bbuf, 64 * 4096);
	EXPECT_EQ(A.imm_count, 1 + 8);

	/* bounds are checked against the descriptor before anything moves */
	tracked_init(&t[0]);
	EXPECT_STATUS(plx_ep_write(ep, &t[0].op, bbuf, 64, &adesc,
				   REG_LEN - 32),
		      PLX_EINVAL);
	rstats(&B, &sb);
	EXPECT_EQ(sb.wc_errors, 0);
	regions_down();
	pair_down();
}

/* A forged rkey and a revoked region: the NIC refuses, the target is
 * untouched, the op fails with PLX_EACCES, the QPs are flushed and the
 * next op reconnects. */
static void test_key_violations_and_reconnect(void)
{
	struct plx_ep *ep = pair_up(1);
	struct plx_rdma_stats sb0, sb;
	struct plx_desc forged;
	struct tracked t[8];
	uint8_t *snap = malloc(REG_LEN);

	regions_up();
	EXPECT_TRUE(snap != NULL);
	tracked_init(&t[0]);
	EXPECT_OK(plx_ep_write(ep, &t[0].op, bbuf, 64, &adesc, 0));
	wait_done(t, 1, 5000);
	EXPECT_OK(t[0].status);
	memcpy(snap, abuf, REG_LEN);
	rstats(&B, &sb0);

	forged = adesc;
	forged.rkey ^= 0x5a5a00u;
	tracked_init(&t[0]);
	tracked_init(&t[1]);
	EXPECT_OK(plx_ep_write(ep, &t[0].op, bbuf, 4096, &forged, 4096));
	EXPECT_OK(plx_ep_write(ep, &t[1].op, bbuf, 4096, &adesc, 8192));
	wait_done(t, 2, 10000);
	EXPECT_STATUS(t[0].status, PLX_EACCES);
	/* the op behind it on the same QP was flushed */
	EXPECT_TRUE(t[1].status != 0);
	EXPECT_MEM_EQ(abuf, snap, REG_LEN);
	rstats(&B, &sb);
	EXPECT_GT(sb.wc_errors, sb0.wc_errors);
	EXPECT_EQ(sb.last_wc_status, IBV_WC_REM_ACCESS_ERR);

	/* next use reconnects (new QPs) and works */
	tracked_init(&t[0]);
	EXPECT_OK(plx_ep_write(ep, &t[0].op, bbuf, 4096, &adesc, 4096));
	wait_done(t, 1, 10000);
	EXPECT_OK(t[0].status);
	EXPECT_MEM_EQ(abuf + 4096, bbuf, 4096);
	memcpy(snap, abuf, REG_LEN);
	rstats(&B, &sb);
	EXPECT_GT(sb.qps_created, sb0.qps_created);

	/* revoke A's region: its rkey dies with the MR */
	EXPECT_OK(plx_mem_deregister(&A.r, &areg));
	tracked_init(&t[0]);
	EXPECT_OK(plx_ep_write(ep, &t[0].op, bbuf, 4096, &adesc, 0));
	wait_done(t, 1, 10000);
	EXPECT_STATUS(t[0].status, PLX_EACCES);
	EXPECT_MEM_EQ(abuf, snap, REG_LEN);
	EXPECT_OK(plx_mem_register(&A.r, &areg, abuf, REG_LEN, PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&A.r, &areg, &adesc));
	/* and a read-only registration refuses writes */
	{
		struct plx_region ro;
		struct plx_desc rod;

		EXPECT_OK(plx_mem_register(&A.r, &ro, abuf + 4096, 4096,
					   PLX_ACCESS_REMOTE_READ));
		EXPECT_OK(plx_mem_desc(&A.r, &ro, &rod));
		tracked_init(&t[0]);
		EXPECT_OK(plx_ep_write(ep, &t[0].op, bbuf, 64, &rod, 0));
		wait_done(t, 1, 10000);
		EXPECT_STATUS(t[0].status, PLX_EACCES);
		EXPECT_MEM_EQ(abuf, snap, REG_LEN);
		tracked_init(&t[0]);
		EXPECT_OK(plx_ep_read(ep, &t[0].op, bbuf + 8192, 64, &rod, 0));
		wait_done(t, 1, 10000);
		EXPECT_OK(t[0].status);
		EXPECT_MEM_EQ(bbuf + 8192, abuf + 4096, 64);
		EXPECT_OK(plx_mem_deregister(&A.r, &ro));
	}
	free(snap);
	regions_down();
	pair_down();
}

/* Both sides lose their QPs, then both submit before either polls: two
 * REQs cross; the smaller node id's wins, one QP set each side, every op
 * completes. */
static void test_simultaneous_open(void)
{
	struct plx_ep *ep = pair_up(1), *aep;
	struct plx_rdma_stats sa, sb;
	struct plx_desc bdesc, fa, fb;
	struct tracked t[4];

	regions_up();
	aep = A.accepted;
	EXPECT_TRUE(aep != NULL);
	/* B's region must take writes for this one */
	EXPECT_OK(plx_mem_deregister(&B.r, &breg));
	EXPECT_OK(plx_mem_register(&B.r, &breg, bbuf, REG_LEN, PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&B.r, &breg, &bdesc));
	for (int round = 0; round < 3; round++) {
		fa = adesc;
		fa.rkey ^= 0x100u;
		fb = bdesc;
		fb.rkey ^= 0x100u;
		for (int i = 0; i < 4; i++)
			tracked_init(&t[i]);
		EXPECT_OK(plx_ep_write(ep, &t[0].op, bbuf, 64, &fa, 0));
		EXPECT_OK(plx_ep_write(aep, &t[1].op, abuf, 64, &fb, 0));
		wait_done(t, 2, 10000);
		/* whichever error reaches a QP first takes the pair down:
		 * the other op is refused or flushed */
		EXPECT_TRUE(t[0].status == PLX_EACCES ||
			    t[0].status == PLX_ECONNRESET);
		EXPECT_TRUE(t[1].status == PLX_EACCES ||
			    t[1].status == PLX_ECONNRESET);
		EXPECT_TRUE(t[0].status == PLX_EACCES ||
			    t[1].status == PLX_EACCES);
		/* both idle now; both submit before polling: crossing REQs */
		EXPECT_OK(
			plx_ep_write(ep, &t[2].op, bbuf + 64, 64, &adesc, 64));
		EXPECT_OK(plx_ep_write(aep, &t[3].op, abuf + 128, 64, &bdesc,
				       128));
		wait_done(t + 2, 2, 10000);
		EXPECT_OK(t[2].status);
		EXPECT_OK(t[3].status);
		EXPECT_MEM_EQ(abuf + 64, bbuf + 64, 64);
		EXPECT_MEM_EQ(bbuf + 128, abuf + 128, 64);
	}
	rstats(&A, &sa);
	rstats(&B, &sb);
	EXPECT_GE(sa.cm_crossed + sb.cm_crossed, 1);
	/* settled: exactly one live QP set each side */
	for (int i = 0; i < 200; i++)
		pair_poll(&A, &B);
	rstats(&A, &sa);
	rstats(&B, &sb);
	EXPECT_U64_EQ(sa.qps_created - sa.qps_destroyed, 1);
	EXPECT_U64_EQ(sb.qps_created - sb.qps_destroyed, 1);
	regions_down();
	pair_down();
}

/* Close with ops in flight, then fini: each op completes exactly once,
 * PLX_EP_CLOSED comes after the last, and the QPs are gone. */
static void test_close_with_ops_in_flight(void)
{
	struct plx_ep *ep = pair_up(2);
	struct tracked t[64];
	struct plx_rdma_stats sb;

	regions_up();
	for (int i = 0; i < 64; i++) {
		tracked_init(&t[i]);
		EXPECT_OK(plx_ep_write(ep, &t[i].op, bbuf, 65536, &adesc,
				       65536 * (uint32_t)(i % 16)));
	}
	pair_poll(&A, &B);
	EXPECT_OK(plx_ep_close(ep));
	EXPECT_TRUE(pair_wait_event(&A, &B, &B, PLX_EP_CLOSED, 10000));
	for (int i = 0; i < 64; i++) {
		EXPECT_EQ(t[i].done, 1);
		if (t[i].status != 0 && t[i].status != PLX_ECANCELED)
			PLX_FAIL("op %d: %s", i, plx_errname(t[i].status));
	}
	regions_down();
	rstats(&B, &sb);
	pair_down();
	EXPECT_U64_EQ(sb.qps_created - sb.qps_destroyed <= 2, 1);
}

/* The peer restarts (same node id, new epoch): ops in flight fail once,
 * the new session gets new QPs and works. */
static void test_peer_restart(void)
{
	struct plx_ep *ep = pair_up(1);
	struct tracked t[2];

	regions_up();
	tracked_init(&t[0]);
	EXPECT_OK(plx_ep_write(ep, &t[0].op, bbuf, 64, &adesc, 0));
	wait_done(t, 1, 5000);
	EXPECT_OK(t[0].status);
	/* A goes away and comes back with the same node id */
	plx_mem_deregister(&A.r, &areg);
	side_fini(&A, &B);
	EXPECT_OK(rdma_side(&A, 1, "127.0.0.1", 1));
	EXPECT_OK(plx_mem_register(&A.r, &areg, abuf, REG_LEN, PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&A.r, &areg, &adesc));
	B.nev = 0;
	EXPECT_OK(plx_tcp_connect(&B.r, "127.0.0.1", A.port, &ep));
	EXPECT_TRUE(pair_wait_event(&A, &B, &A, PLX_EP_ACCEPTED, 5000));
	tracked_init(&t[1]);
	EXPECT_OK(plx_ep_write(ep, &t[1].op, bbuf + 64, 64, &adesc, 64));
	wait_done(t + 1, 1, 10000);
	EXPECT_OK(t[1].status);
	EXPECT_MEM_EQ(abuf + 64, bbuf + 64, 64);
	regions_down();
	pair_down();
}

/* Timeout: a write_imm whose target does not poll gets no ack; at its
 * deadline the QPs are flushed and it completes once, PLX_ETIMEDOUT; the
 * next op reconnects. Cancel: a posted op completes once with
 * PLX_ECANCELED when its WR completes; one waiting for the connection
 * completes at once. */
static void test_timeout_and_cancel(void)
{
	struct plx_ep *ep = pair_up(1);
	struct tracked t[4];
	uint64_t end;
	int rc;

	regions_up();
	tracked_init(&t[0]);
	EXPECT_OK(plx_ep_write(ep, &t[0].op, bbuf, 64, &adesc, 0));
	wait_done(t, 1, 5000);
	EXPECT_OK(t[0].status);

	tracked_init(&t[0]);
	t[0].op.timeout_ns = 50 * 1000000ull;
	EXPECT_OK(plx_ep_write_imm(ep, &t[0].op, bbuf, 64, &adesc, 64, 1));
	end = plx_now_ns() + 3000000000ull;
	while (!t[0].done && plx_now_ns() < end)
		plx_reactor_poll(&B.r); /* A is not polled: no ack */
	EXPECT_EQ(t[0].done, 1);
	EXPECT_STATUS(t[0].status, PLX_ETIMEDOUT);
	for (int i = 0; i < 100; i++)
		pair_poll(&A, &B);
	EXPECT_EQ(t[0].done, 1);

	/* the next op reconnects */
	tracked_init(&t[1]);
	EXPECT_OK(plx_ep_write(ep, &t[1].op, bbuf + 128, 64, &adesc, 128));
	wait_done(t + 1, 1, 10000);
	EXPECT_OK(t[1].status);
	EXPECT_MEM_EQ(abuf + 128, bbuf + 128, 64);

	/* cancel a posted write: it completes once, when its WR does */
	tracked_init(&t[2]);
	EXPECT_OK(plx_ep_write(ep, &t[2].op, bbuf, 4096, &adesc, 4096));
	EXPECT_OK(plx_op_cancel(&B.r, &t[2].op));
	EXPECT_STATUS(plx_op_cancel(&B.r, &t[2].op), PLX_EALREADY);
	wait_done(t + 2, 1, 5000);
	EXPECT_STATUS(t[2].status, PLX_ECANCELED);

	/* cancel an op waiting for the connection: a forged rkey drops
	 * the QPs, the next op waits for the reconnect */
	{
		struct plx_desc forged = adesc;

		forged.rkey ^= 0x300u;
		tracked_init(&t[3]);
		EXPECT_OK(plx_ep_write(ep, &t[3].op, bbuf, 64, &forged, 0));
		wait_done(t + 3, 1, 5000);
		EXPECT_STATUS(t[3].status, PLX_EACCES);
	}
	tracked_init(&t[3]);
	EXPECT_OK(plx_ep_write(ep, &t[3].op, bbuf, 64, &adesc, 0));
	rc = plx_op_cancel(&B.r, &t[3].op);
	EXPECT_OK(rc);
	EXPECT_EQ(t[3].done, 0); /* never inside the call */
	pair_poll(&A, &B);
	EXPECT_EQ(t[3].done, 1);
	EXPECT_STATUS(t[3].status, PLX_ECANCELED);
	for (int i = 0; i < 200; i++)
		pair_poll(&A, &B);
	EXPECT_EQ(t[3].done, 1);
	regions_down();
	pair_down();
}

/* plx_mem_register_mt(): a 64 MiB region pinned on another thread while
 * the owner keeps polling; then written over RDMA. */
struct mt_reg {
	struct plx_reactor *r;
	struct plx_region *reg;
	uint8_t *mem;
	struct plx_req req;
	int rc;
	int done;
};

static void *mt_reg_thread(void *arg)
{
	struct mt_reg *m = arg;
	int rc;

	plx_req_init(&m->req, NULL, NULL);
	rc = plx_mem_register_mt(m->r, m->reg, m->mem, 64u << 20,
				 PLX_ACCESS_ALL, &m->req);
	if (!rc)
		rc = plx_req_wait_mt(&m->req, 30000000000ull);
	m->rc = rc;
	__atomic_store_n(&m->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void test_register_mt_big_region(void)
{
	struct plx_ep *ep = pair_up(1);
	static struct plx_region big;
	struct mt_reg m = {0};
	struct plx_desc bd;
	struct tracked t;
	pthread_t th;
	uint64_t polls = 0, worst = 0, t0, t1;
	struct plx_region plain;
	uint8_t *other;

	regions_up();
	m.r = &A.r;
	m.reg = &big;
	m.mem = aligned_alloc(4096, 64u << 20);
	other = aligned_alloc(4096, 64u << 20);
	EXPECT_TRUE(m.mem != NULL && other != NULL);
	memset(m.mem, 0, 64u << 20);
	memset(other, 0, 64u << 20);
	/* first the blocking way, on the owner, for comparison */
	t0 = plx_now_ns();
	EXPECT_OK(plx_mem_register(&A.r, &plain, other, 64u << 20,
				   PLX_ACCESS_ALL));
	t1 = plx_now_ns();
	EXPECT_OK(plx_mem_deregister(&A.r, &plain));
	EXPECT_OK(pthread_create(&th, NULL, mt_reg_thread, &m));
	while (!__atomic_load_n(&m.done, __ATOMIC_ACQUIRE)) {
		uint64_t a = plx_now_ns(), b;

		pair_poll(&A, &B);
		b = plx_now_ns();
		if (b - a > worst)
			worst = b - a;
		polls++;
	}
	EXPECT_OK(pthread_join(th, NULL));
	EXPECT_OK(m.rc);
	EXPECT_OK(m.req.status);
	EXPECT_OK(plx_mem_desc(&A.r, &big, &bd));
	EXPECT_TRUE(bd.hints & PLX_HINT_RDMA);
	fprintf(stderr,
		"64 MiB: plx_mem_register on the owner blocked it %.2f ms; "
		"plx_mem_register_mt: the owner polled %llu times meanwhile, "
		"its longest poll %.2f ms\n",
		(double)(t1 - t0) / 1e6, (unsigned long long)polls,
		(double)worst / 1e6);
	/* the owner kept polling: the registration completed in its ring
	 * phase (soft-RoCE pins fast, so the figures above say little) */
	EXPECT_GE(polls, 1);

	tracked_init(&t);
	EXPECT_OK(plx_ep_write(ep, &t.op, bbuf, 1u << 20, &bd, 63u << 20));
	wait_done(&t, 1, 10000);
	EXPECT_OK(t.status);
	EXPECT_MEM_EQ(m.mem + (63u << 20), bbuf, 1u << 20);
	EXPECT_OK(plx_mem_deregister(&A.r, &big));
	free(m.mem);
	free(other);
	regions_down();
	pair_down();
}

/* Sends and receives over the QPs: matched, unexpected, too long for
 * the receive, from a small unregistered buffer, larger than the peer's
 * receive buffers (TCP then), a batch, and the message-pool handler
 * getting the pool buffer itself. */
static void test_send_recv(void)
{
	struct plx_ep *ep, *aep;
	struct plx_rdma_stats sa, sb, sb2;
	struct tracked s[40], r[40];
	char small[30] = "small, from the stack";
	char got[64];
	uint8_t *rbuf;

	use_pool = 1;
	ep = pair_up(2);
	regions_up();
	aep = A.accepted;
	EXPECT_TRUE(aep != NULL);
	rbuf = abuf + (1u << 20);
	/* the QPs come up with the first op */
	tracked_init(&s[0]);
	EXPECT_OK(plx_ep_write(ep, &s[0].op, bbuf, 64, &adesc, 0));
	wait_done(s, 1, 10000);
	rstats(&B, &sb);

	/* matched: A posted the receive first; B sends from registered mem */
	tracked_init(&r[0]);
	tracked_init(&s[0]);
	EXPECT_OK(plx_ep_recv(aep, &r[0].op, rbuf, 8192, 5, ~0ull));
	EXPECT_OK(plx_ep_send(ep, &s[0].op, bbuf + 100, 3000, 5));
	wait_done(s, 1, 10000);
	wait_done(r, 1, 10000);
	EXPECT_OK(s[0].status);
	EXPECT_OK(r[0].status);
	EXPECT_U64_EQ(r[0].bytes, 3000);
	EXPECT_MEM_EQ(rbuf, bbuf + 100, 3000);
	rstats(&B, &sb2);
	EXPECT_U64_EQ(sb2.ops_posted - sb.ops_posted, 1); /* over RDMA */

	/* unexpected, from the stack (copied into a send slot) */
	tracked_init(&s[0]);
	EXPECT_OK(plx_ep_send(ep, &s[0].op, small, sizeof(small), 9));
	wait_done(s, 1, 10000);
	EXPECT_OK(s[0].status); /* in A's unexpected queue */
	tracked_init(&r[0]);
	EXPECT_OK(plx_ep_recv(aep, &r[0].op, got, sizeof(got), 9, ~0ull));
	wait_done(r, 1, 10000);
	EXPECT_OK(r[0].status);
	EXPECT_U64_EQ(r[0].bytes, sizeof(small));
	EXPECT_MEM_EQ(got, small, sizeof(small));

	/* nowhere to put it (larger than an unexpected slot, no receive):
	 * held, and the next message behind it too, as TCP stops reading;
	 * the sends complete once receives take them */
	tracked_init(&s[0]);
	tracked_init(&s[1]);
	EXPECT_OK(plx_ep_send(ep, &s[0].op, bbuf, 3000, 51));
	EXPECT_OK(plx_ep_send(ep, &s[1].op, small, 20, 52));
	for (int i = 0; i < 300; i++)
		pair_poll(&A, &B);
	EXPECT_EQ(s[0].done + s[1].done, 0);
	tracked_init(&r[1]);
	EXPECT_OK(plx_ep_recv(aep, &r[1].op, got, sizeof(got), 52, ~0ull));
	for (int i = 0; i < 300; i++)
		pair_poll(&A, &B);
	EXPECT_EQ(r[1].done + s[1].done, 0); /* still behind the first */
	tracked_init(&r[0]);
	EXPECT_OK(plx_ep_recv(aep, &r[0].op, rbuf, 4096, 51, ~0ull));
	wait_done(s, 2, 10000);
	wait_done(r, 2, 10000);
	EXPECT_OK(s[0].status);
	EXPECT_OK(s[1].status);
	EXPECT_U64_EQ(r[0].bytes, 3000);
	EXPECT_MEM_EQ(rbuf, bbuf, 3000);
	EXPECT_U64_EQ(r[1].bytes, 20);
	EXPECT_MEM_EQ(got, small, 20);

	/* too long for the posted receive: both sides learn it */
	tracked_init(&r[0]);
	tracked_init(&s[0]);
	EXPECT_OK(plx_ep_recv(aep, &r[0].op, rbuf, 100, 6, ~0ull));
	EXPECT_OK(plx_ep_send(ep, &s[0].op, bbuf, 200, 6));
	wait_done(s, 1, 10000);
	wait_done(r, 1, 10000);
	EXPECT_STATUS(r[0].status, PLX_EMSGSIZE);
	EXPECT_STATUS(s[0].status, PLX_EMSGSIZE);

	/* larger than A's receive buffers: over TCP, same result */
	rstats(&B, &sb);
	tracked_init(&r[0]);
	tracked_init(&s[0]);
	EXPECT_OK(plx_ep_recv(aep, &r[0].op, rbuf, 100000, 7, ~0ull));
	EXPECT_OK(plx_ep_send(ep, &s[0].op, bbuf, 100000, 7));
	wait_done(s, 1, 10000);
	wait_done(r, 1, 10000);
	EXPECT_OK(r[0].status);
	EXPECT_MEM_EQ(rbuf, bbuf, 100000);
	rstats(&B, &sb2);
	EXPECT_U64_EQ(sb2.ops_posted, sb.ops_posted);

	/* a batch of 40 sends to 40 posted receives (8 receive buffers per
	 * QP on A: they are reposted as the messages are taken) */
	for (int i = 0; i < 40; i++) {
		tracked_init(&r[i]);
		EXPECT_OK(plx_ep_recv(aep, &r[i].op, rbuf + 4096 * i, 4096,
				      100 + (uint64_t)i, ~0ull));
	}
	EXPECT_OK(plx_ep_batch_begin(ep));
	for (int i = 0; i < 40; i++) {
		tracked_init(&s[i]);
		EXPECT_OK(plx_ep_send(ep, &s[i].op, bbuf + 4096 * i,
				      1000 + (size_t)i, 100 + (uint64_t)i));
	}
	EXPECT_OK(plx_ep_batch_end(ep));
	wait_done(s, 40, 10000);
	wait_done(r, 40, 10000);
	for (int i = 0; i < 40; i++) {
		EXPECT_OK(s[i].status);
		EXPECT_OK(r[i].status);
		EXPECT_U64_EQ(r[i].bytes, 1000 + (uint64_t)i);
		EXPECT_MEM_EQ(rbuf + 4096 * i, bbuf + 4096 * i, 1000 + i);
	}
	rstats(&A, &sa);
	EXPECT_EQ(sa.wc_errors, 0);
	regions_down();
	pools_down();

	/* the message-pool handler gets the receive buffer itself */
	use_pool = use_msg_cb = 1;
	ep = pair_up(1);
	regions_up();
	tracked_init(&s[0]);
	EXPECT_OK(plx_ep_send(ep, &s[0].op, bbuf + 7, 2500, 77));
	wait_done(s, 1, 10000);
	EXPECT_OK(s[0].status);
	EXPECT_EQ(P[0].nmsg, 1);
	EXPECT_U64_EQ(P[0].msg_tag, 77);
	EXPECT_U64_EQ(P[0].msg_len, 2500);
	EXPECT_TRUE(plx_pool_index(&P[0].pool, P[0].msg_buf) >= 0);
	EXPECT_MEM_EQ(P[0].msg_buf, bbuf + 7, 2500);
	plx_pool_put(&P[0].pool, P[0].msg_buf);
	P[0].msg_buf = NULL;
	/* more messages than receive buffers, each handed over and
	 * returned: the receives are replenished from the pool */
	for (int i = 0; i < 20; i++) {
		tracked_init(&s[0]);
		EXPECT_OK(plx_ep_send(ep, &s[0].op, bbuf, 64, 78));
		wait_done(s, 1, 10000);
		EXPECT_OK(s[0].status);
	}
	EXPECT_EQ(P[0].nmsg, 21);
	regions_down();
	if (P[0].msg_buf)
		plx_pool_put(&P[0].pool, P[0].msg_buf);
	pools_down();
}

/* B queues one connection message of @kind (REQ: as a peer that gave up
 * its QPs sends it) to A on the session, naming a QP at @gid. */
static void queue_cm_n(struct plx_ep *ep, uint8_t kind, uint32_t gen,
		       const uint8_t *gid, uint8_t nqp)
{
	struct plx__cm_msg m;
	uint8_t buf[PLX__CM_MAX];
	int n;

	memset(&m, 0, sizeof(m));
	m.kind = kind;
	m.gen = gen;
	if (kind == PLX__CM_REJ)
		m.status = PLX_EAGAIN;
	if (kind == PLX__CM_REQ || kind == PLX__CM_REP) {
		m.nqp = nqp;
		m.mtu = 3; /* IBV_MTU_1024 */
		m.rd_atom = 1;
		for (uint32_t k = 0; k < nqp; k++) {
			m.qpn[k] = 0x100 + (gen + k) % 0x1000;
			m.psn[k] = 1;
		}
		memcpy(m.gid, gid, 16);
	}
	n = plx__cm_encode(&m, buf, sizeof(buf));
	EXPECT_GE(n, 1);
	EXPECT_OK(plx__ep_send_cm(ep, buf, (uint32_t)n));
}

static void queue_cm(struct plx_ep *ep, uint8_t kind, uint32_t gen,
		     const uint8_t *gid)
{
	queue_cm_n(ep, kind, gen, gid, 1);
}

static void queue_req(struct plx_ep *ep, uint32_t gen, const uint8_t *gid)
{
	queue_cm(ep, PLX__CM_REQ, gen, gid);
}

/* Poll both until A has taken @n REQs since @s0 (answered or refused);
 * A is not polled again once it has. */
static void reqs_taken(const struct plx_rdma_stats *s0, uint64_t n,
		       struct plx_rdma_stats *s1)
{
	uint64_t end = plx_now_ns() + 60000000000ull;

	do {
		plx_reactor_poll(&B.r);
		plx_reactor_poll(&A.r);
		rstats(&A, s1);
	} while (s1->qps_created - s0->qps_created + s1->cm_refused -
				 s0->cm_refused <
			 n &&
		 plx_now_ns() < end);
}

/*
 * A peer floods connection requests; each one answered makes the target
 * destroy its QPs and create new ones. After 8 (and one more per second
 * the flood lasts), the target refuses them (REJ, no QP made) and its
 * TCP path goes on working. Then a QP destroyed before its flush was
 * read: its completions, still in the CQ, must find its memory (kept,
 * dead, and ignored) and not freed memory.
 */
static void test_req_flood(void)
{
	struct plx_ep *ep = pair_up(1);
	struct plx_rdma_stats s0, s1;
	struct plx_rdma_info info;
	struct plx_desc tdesc;
	struct tracked t[2];
	struct plx__rdma *d;
	uint64_t t0, made, secs, late, end;

	regions_up();
	/* the REQs name a QP on our own device: the target's modify to RTR
	 * resolves it at once (an unreachable GID holds the owner thread
	 * about a second there, docs/rdma.md) */
	EXPECT_OK(plx_rdma_info(&A.r, &info));
	/* the channel A opened at session start carries a write */
	tracked_init(&t[0]);
	EXPECT_OK(plx_ep_write(ep, &t[0].op, bbuf, 64, &adesc, 0));
	wait_done(t, 1, 10000);
	EXPECT_OK(t[0].status);
	rstats(&A, &s0);
	EXPECT_U64_EQ(s0.cm_refused, 0);
	t0 = plx_now_ns();
	for (uint32_t i = 0; i < 40; i++)
		queue_req(ep, 0x5000 + i, info.gid);
	reqs_taken(&s0, 40, &s1);
	made = s1.qps_created - s0.qps_created;
	t0 = plx_now_ns() - t0;
	/* whole seconds the flood lasted, rounded up: tokens it refilled */
	secs = (t0 + 999999999ull) / 1000000000ull;
	fprintf(stderr,
		"flood of 40 REQs taken in %.1f ms: %llu QPs made, %llu "
		"refused\n",
		(double)t0 / 1e6, (unsigned long long)made,
		(unsigned long long)s1.cm_refused);
	EXPECT_U64_EQ(made + s1.cm_refused, 40);
	EXPECT_TRUE(made >= 8 && made <= 8 + secs);
	EXPECT_GE(s1.cm_refused, 1);
	/* the session is up: a write without the RDMA hint goes over TCP */
	tdesc = adesc;
	tdesc.hints &= ~PLX_HINT_RDMA;
	tracked_init(&t[1]);
	EXPECT_OK(plx_ep_write(ep, &t[1].op, bbuf + 256, 64, &tdesc, 256));
	wait_done(t + 1, 1, 10000);
	EXPECT_OK(t[1].status);
	EXPECT_MEM_EQ(abuf + 256, bbuf + 256, 64);

	/* a token back: one REQ answered (a QP in RTS, receives posted) */
	end = plx_now_ns() + 1100000000ull;
	while (plx_now_ns() < end)
		pair_poll(&A, &B);
	d = plx__rdma_get(&A.r);
	EXPECT_TRUE(d->retiring == NULL && d->dead == NULL);
	rstats(&A, &s0);
	queue_req(ep, 0x6000, info.gid);
	reqs_taken(&s0, 1, &s1);
	EXPECT_U64_EQ(s1.qps_created - s0.qps_created, 1);
	EXPECT_U64_EQ(s1.cm_refused, s0.cm_refused);
	/* the next one is refused, which retires that QP; A is then not
	 * polled for longer than the 2 s drain deadline, so at its next poll
	 * the QP is overdue before its flush completions are read: it is
	 * destroyed unflushed and they come after */
	queue_req(ep, 0x6001, info.gid);
	reqs_taken(&s1, 1, &s0);
	EXPECT_U64_EQ(s0.cm_refused, s1.cm_refused + 1);
	EXPECT_TRUE(d->retiring != NULL);
	late = d->late_wcs;
	end = plx_now_ns() + 2100000000ull;
	while (plx_now_ns() < end)
		plx_reactor_poll(&B.r);
	for (int i = 0; i < 10; i++)
		pair_poll(&A, &B);
	rstats(&A, &s1);
	fprintf(stderr,
		"QP destroyed unflushed: %llu late completions ignored, "
		"%llu QPs live on A\n",
		(unsigned long long)(d->late_wcs - late),
		(unsigned long long)(s1.qps_created - s1.qps_destroyed));
	EXPECT_GE(d->late_wcs - late, 1);
	EXPECT_TRUE(d->retiring == NULL && d->dead == NULL);
	regions_down();
	pair_down();
}

/* Run `ip ARGS` (the guest has it at /t/ip); 0 on success. */
static int ip_cmd(const char *args)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "%s %s >/dev/null 2>&1",
		 access("/t/ip", X_OK) == 0 ? "/t/ip" : "ip", args);
	return system(cmd);
}

/* Does `ip neigh show ARGS` list an entry in resolution (the kick made
 * the kernel ask for its MAC address)? */
static bool neigh_probed(const char *args)
{
	char cmd[256], line[256];
	bool hit = false;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "%s neigh show %s 2>&1",
		 access("/t/ip", X_OK) == 0 ? "/t/ip" : "ip", args);
	f = popen(cmd, "r");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "INCOMPLETE") || strstr(line, "FAILED"))
			hit = true;
	pclose(f);
	return hit;
}

/* A's counter at byte offset @off of struct plx_rdma_stats. */
static uint64_t stat_at(const struct plx_rdma_stats *st, size_t off)
{
	uint64_t v;

	memcpy(&v, (const uint8_t *)st + off, sizeof(v));
	return v;
}

/* Poll B, then A, until A's counter at @off moved from *@s0 by @n or @ms
 * passed (*@s1: A's counters then); A's longest poll goes into *@worst. */
static void poll_until(const struct plx_rdma_stats *s0,
		       struct plx_rdma_stats *s1, size_t off, uint64_t n,
		       uint64_t ms, uint64_t *worst)
{
	uint64_t end = plx_now_ns() + ms * 1000000ull, t;

	do {
		plx_reactor_poll(&B.r);
		t = plx_now_ns();
		plx_reactor_poll(&A.r);
		t = plx_now_ns() - t;
		if (t > *worst)
			*worst = t;
		rstats(&A, s1);
	} while (stat_at(s1, off) - stat_at(s0, off) < n && plx_now_ns() < end);
}

#define POLL_UNTIL(s0, s1, field, n, ms, worst)                                \
	poll_until(&(s0), &(s1), offsetof(struct plx_rdma_stats, field), n,    \
		   ms, worst)

/*
 * A REQ whose GID the kernel has no neighbour for. On RoCE a modify to
 * RTR resolves it inside the verbs call and waits up to a second for it
 * (measured: 1.02-1.03 s in the guest, then failed), on the owner
 * thread. The target holds such a REQ instead, looks at the neighbour
 * every millisecond, and answers once it is there, or refuses after 3 s.
 * The addresses are from TEST-NET-2: nobody answers for them, and the
 * route out of our GID's netdev makes them on-link there.
 */
static void test_gid_resolve(void)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0,    0,
					     0, 0, 0, 0, 0xff, 0xff};
	uint8_t g[16] = {0, 0, 0,    0,	   0,	0,  0,	 0,
			 0, 0, 0xff, 0xff, 198, 51, 100, 7};
	uint8_t g6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 5};
	struct plx_ep *ep = pair_up(1);
	struct plx_rdma_stats s0, s1;
	struct plx_rdma_info info;
	struct plx_desc tdesc;
	struct tracked t;
	struct plx__rdma *d;
	char dev[IF_NAMESIZE], args[160];
	uint64_t worst = 0, t0;

	regions_up();
	EXPECT_OK(plx_rdma_info(&A.r, &info));
	d = plx__rdma_get(&A.r);
	if (memcmp(info.gid, v4mapped, 12) || info.link_layer != 2) {
		if (getenv("PLX_RXE_VM"))
			PLX_FAIL("the guest's rxe0 has no IPv4 RoCE GID");
		fprintf(stderr, "gid resolve: not an IPv4 RoCE GID, skipped\n");
		goto out;
	}
	EXPECT_TRUE(d->ifindex != 0);
	EXPECT_TRUE(if_indextoname(d->ifindex, dev) != NULL);
	/* the channel A opened at session start carries a write (a REQ
	 * crossing A's own would lose to it) */
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(ep, &t.op, bbuf, 64, &adesc, 0));
	wait_done(&t, 1, 10000);
	EXPECT_OK(t.status);

	/* 1: the initiator's side. A's QPs fail (a forged rkey), so its
	 * next op connects: its REQ meets a REP (queued by B before B's
	 * own) naming an unresolved GID. A holds it with its QPs in INIT,
	 * ignores B's real REP, refuses after 3 s, and the op goes over
	 * TCP. */
	{
		struct plx_region creg;
		struct plx_desc cdesc, forged;
		struct plx_ep *aep = A.accepted;
		uint8_t *cbuf = aligned_alloc(4096, 8192);
		uint32_t gen;

		EXPECT_TRUE(cbuf != NULL);
		memset(cbuf, 0, 8192);
		EXPECT_OK(plx_mem_register(&B.r, &creg, cbuf, 8192,
					   PLX_ACCESS_ALL));
		EXPECT_OK(plx_mem_desc(&B.r, &creg, &cdesc));
		forged = cdesc;
		forged.rkey ^= 0x5a5a00u;
		tracked_init(&t);
		EXPECT_OK(plx_ep_write(aep, &t.op, abuf, 64, &forged, 0));
		wait_done(&t, 1, 10000);
		EXPECT_STATUS(t.status, PLX_EACCES);
		for (uint64_t e = plx_now_ns() + 100000000ull;
		     plx_now_ns() < e;)
			pair_poll(&A, &B);
		g[15] = 9;
		rstats(&A, &s0);
		tracked_init(&t);
		EXPECT_OK(plx_ep_write(aep, &t.op, abuf + 64, 64, &cdesc, 64));
		rstats(&A, &s1);
		EXPECT_U64_EQ(s1.connects, s0.connects + 1);
		gen = d->gen;
		queue_cm(ep, PLX__CM_REP, gen, g);
		POLL_UNTIL(s0, s1, gid_waits, 1, 10000, &worst);
		EXPECT_U64_EQ(s1.gid_waits, s0.gid_waits + 1);
		EXPECT_TRUE(!t.done);
		POLL_UNTIL(s0, s1, gid_unreachable, 1, 10000, &worst);
		EXPECT_U64_EQ(s1.gid_unreachable, s0.gid_unreachable + 1);
		wait_done(&t, 1, 10000);
		EXPECT_OK(t.status);
		EXPECT_MEM_EQ(cbuf + 64, abuf + 64, 64);
		EXPECT_TRUE(worst < 500000000ull);
		fprintf(stderr,
			"initiator: REP with an unresolved GID refused, the "
			"op went over TCP; longest poll of A %.1f ms\n",
			(double)worst / 1e6);
		plx_mem_deregister(&B.r, &creg);
		free(cbuf);
	}

	/* 2: the neighbour never comes. The first poll that reads the REQ
	 * holds it: no QP made, nothing refused, the poll returned. */
	g[15] = 7;
	worst = 0;
	rstats(&A, &s0);
	queue_req(ep, 0x7100, g);
	POLL_UNTIL(s0, s1, gid_waits, 1, 10000, &worst);
	EXPECT_U64_EQ(s1.gid_waits, s0.gid_waits + 1);
	EXPECT_U64_EQ(s1.qps_created, s0.qps_created);
	EXPECT_U64_EQ(s1.gid_unreachable, s0.gid_unreachable);
	/* its timer is armed, and internal: it does not keep
	 * plx_reactor_fini() busy */
	EXPECT_TRUE(plx_timer_armed(&d->resolve_timer));
	EXPECT_TRUE(d->resolve_timer.plx_pad & PLX__TIMER_DAEMON);
	/* the kick: the kernel is asking for the address's MAC */
	snprintf(args, sizeof(args), "198.51.100.7 dev %s", dev);
	EXPECT_TRUE(neigh_probed(args));
	t0 = plx_now_ns();
	POLL_UNTIL(s0, s1, gid_unreachable, 1, 10000, &worst);
	t0 = plx_now_ns() - t0;
	fprintf(stderr,
		"unresolved GID: refused after %.0f ms held, longest poll of "
		"the target %.1f ms\n",
		(double)t0 / 1e6, (double)worst / 1e6);
	EXPECT_U64_EQ(s1.gid_unreachable, s0.gid_unreachable + 1);
	EXPECT_U64_EQ(s1.qps_created, s0.qps_created);
	EXPECT_TRUE(t0 >= 2000000000ull);
	/* the kernel's wait was 1 s; a poll of this target ran 1-6 ms in
	 * the guest */
	EXPECT_TRUE(worst < 500000000ull);
	/* the session goes on: a write without the RDMA hint, over TCP */
	tdesc = adesc;
	tdesc.hints &= ~PLX_HINT_RDMA;
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(ep, &t.op, bbuf + 512, 64, &tdesc, 512));
	wait_done(&t, 1, 10000);
	EXPECT_OK(t.status);
	EXPECT_MEM_EQ(abuf + 512, bbuf + 512, 64);

	/* 3: the neighbour appears while the REQ is held: answered */
	g[15] = 8;
	rstats(&A, &s0);
	queue_req(ep, 0x7101, g);
	POLL_UNTIL(s0, s1, gid_waits, 1, 10000, &worst);
	EXPECT_U64_EQ(s1.qps_created, s0.qps_created);
	snprintf(args, sizeof(args),
		 "neigh replace 198.51.100.8 lladdr 02:00:5e:00:53:08 dev %s "
		 "nud permanent",
		 dev);
	if (ip_cmd(args)) {
		if (getenv("PLX_RXE_VM"))
			PLX_FAIL("ip %s failed", args);
		fprintf(stderr, "gid resolve: cannot add a neighbour (not "
				"root?), case 3 skipped\n");
	} else {
		POLL_UNTIL(s0, s1, qps_created, 1, 5000, &worst);
		EXPECT_U64_EQ(s1.qps_created, s0.qps_created + 1);
		EXPECT_U64_EQ(s1.gid_unreachable, s0.gid_unreachable);
		snprintf(args, sizeof(args), "neigh del 198.51.100.8 dev %s",
			 dev);
		EXPECT_TRUE(ip_cmd(args) == 0);
	}

	/* 4: an IPv6 GID against our IPv4 one: refused at once */
	rstats(&A, &s0);
	queue_req(ep, 0x7102, g6);
	POLL_UNTIL(s0, s1, gid_unreachable, 1, 10000, &worst);
	EXPECT_U64_EQ(s1.gid_unreachable, s0.gid_unreachable + 1);
	EXPECT_U64_EQ(s1.gid_waits, s0.gid_waits);
	EXPECT_U64_EQ(s1.qps_created, s0.qps_created);

out:
	regions_down();
	pair_down();
}

/*
 * The same over IPv6: both sides on an IPv6 RoCE v2 GID (added to the
 * guest's veth0 for this case). The session's own connection resolves a
 * local IPv6 address; a REQ naming an on-link IPv6 address with no
 * neighbour is held, its neighbour solicited, and answered once the
 * neighbour appears. Guest only: it changes the host's addresses.
 */
static void test_gid_resolve_v6(void)
{
	static const uint8_t mine[16] = {0x20, 0x01, 0x0d,    0xb8,
					 0,    0x77, [15] = 1};
	uint8_t g[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x77, [15] = 0x99};
	struct plx_rdma_stats s0, s1;
	struct plx_rdma_info info;
	struct plx__rdma *d;
	struct tracked t;
	struct plx_ep *ep;
	char dev[IF_NAMESIZE], args[160];
	uint64_t worst = 0, end;
	int idx = -1;

	if (!getenv("PLX_RXE_VM")) {
		fprintf(stderr, "IPv6 GID: guest only (adds an address), "
				"skipped\n");
		return;
	}
	ep = pair_up(1);
	d = plx__rdma_get(&A.r);
	EXPECT_TRUE(if_indextoname(d->ifindex, dev) != NULL);
	snprintf(args, sizeof(args),
		 "-6 addr add 2001:db8:77::1/64 dev %s "
		 "nodad",
		 dev);
	EXPECT_TRUE(ip_cmd(args) == 0);
	/* the GID table follows the netdev's addresses */
	for (end = plx_now_ns() + 5000000000ull; idx < 0 && plx_now_ns() < end;)
		for (int i = 0; i < 256 && idx < 0; i++) {
			union ibv_gid gid;

			if (!d->ibv->query_gid(d->ctx, (uint8_t)d->info.port, i,
					       &gid) &&
			    !memcmp(gid.raw, mine, 16))
				idx = i;
		}
	EXPECT_GE(idx, 0);
	pair_down();

	gid_index_cfg = idx;
	ep = pair_up(1);
	gid_index_cfg = -1;
	regions_up();
	EXPECT_OK(plx_rdma_info(&A.r, &info));
	EXPECT_MEM_EQ(info.gid, mine, 16);
	d = plx__rdma_get(&A.r);
	/* the session's connection: each side's GID is a local address */
	rstats(&A, &s0);
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(ep, &t.op, bbuf, 64, &adesc, 0));
	wait_done(&t, 1, 10000);
	EXPECT_OK(t.status);
	EXPECT_MEM_EQ(abuf, bbuf, 64);
	rstats(&A, &s1);
	EXPECT_U64_EQ(s1.gid_unreachable, s0.gid_unreachable);
	EXPECT_U64_EQ(s1.gid_waits, s0.gid_waits);
	rstats(&B, &s1);
	EXPECT_GE(s1.ops_posted, 1);

	rstats(&A, &s0);
	queue_req(ep, 0x7200, g);
	POLL_UNTIL(s0, s1, gid_waits, 1, 10000, &worst);
	EXPECT_U64_EQ(s1.gid_waits, s0.gid_waits + 1);
	EXPECT_U64_EQ(s1.qps_created, s0.qps_created);
	snprintf(args, sizeof(args), "2001:db8:77::99 dev %s", dev);
	EXPECT_TRUE(neigh_probed(args));
	snprintf(args, sizeof(args),
		 "-6 neigh replace 2001:db8:77::99 lladdr 02:00:5e:00:53:99 "
		 "dev %s nud permanent",
		 dev);
	EXPECT_TRUE(ip_cmd(args) == 0);
	POLL_UNTIL(s0, s1, qps_created, 1, 5000, &worst);
	EXPECT_U64_EQ(s1.qps_created, s0.qps_created + 1);
	EXPECT_U64_EQ(s1.gid_unreachable, s0.gid_unreachable);
	fprintf(stderr,
		"IPv6 GID (index %d): connected, and a held REQ answered once "
		"its neighbour appeared; longest poll of A %.1f ms\n",
		idx, (double)worst / 1e6);
	EXPECT_TRUE(worst < 500000000ull);
	regions_down();
	pair_down();
	snprintf(args, sizeof(args), "-6 neigh del 2001:db8:77::99 dev %s",
		 dev);
	EXPECT_TRUE(ip_cmd(args) == 0);
	snprintf(args, sizeof(args), "-6 addr del 2001:db8:77::1/64 dev %s",
		 dev);
	EXPECT_TRUE(ip_cmd(args) == 0);
}

/*
 * Connection messages in a random order, as a confused or hostile peer
 * sends them: REQ, REP, RTU and REJ with A's generation, the last one
 * forged or a random one, naming our own GID (answered at once), an
 * address nobody answers for (held), or an IPv6 one (refused), with 1
 * or 2 QPs, while B keeps writes in flight to A over RDMA. Every write
 * completes exactly once, the successful ones with their bytes in place,
 * the process stays clean under ASan and UBSan (./build.sh rdma), and
 * afterwards the session still carries a write. Seeded: PLX_SEED=...
 * replays a run.
 */
static void test_cm_storm(void)
{
	static const uint8_t none[16] = {0, 0, 0,    0,	   0,	0,  0,	 0,
					 0, 0, 0xff, 0xff, 198, 51, 100, 17};
	static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 5};
	uint64_t seed = plx_test_seed("rdma_cm_storm");
	struct plx_ep *ep = pair_up(1);
	struct plx_rdma_stats sa, sb;
	struct plx_rdma_info info;
	struct plx__rdma *d;
	struct plx_desc tdesc;
	struct tracked t[48];
	uint32_t last = 0x9000, nt = 0, ok = 0;

	regions_up();
	EXPECT_OK(plx_rdma_info(&A.r, &info));
	d = plx__rdma_get(&A.r);
	tracked_init(&t[0]);
	EXPECT_OK(plx_ep_write(ep, &t[0].op, bbuf, 64, &adesc, 0));
	wait_done(t, 1, 10000);
	EXPECT_OK(t[0].status);
	for (int i = 0; i < 240; i++) {
		uint64_t r = plx_test_rand(&seed);
		uint8_t kind = (uint8_t)(1 + r % 4);
		const uint8_t *gid = (r >> 8) % 3 == 0 ? info.gid :
				     (r >> 8) % 3 == 1 ? none :
							 v6;
		uint32_t gen = (r >> 16) % 3 == 0 ? d->gen :
			       (r >> 16) % 3 == 1 ? last :
						    (uint32_t)(r >> 32) | 1;

		if (kind == PLX__CM_REQ && (r >> 24) % 2)
			gen = last = 0x9000 + (uint32_t)i;
		queue_cm_n(ep, kind, gen, gid, (uint8_t)(1 + (r >> 28) % 2));
		if (i % 5 == 0 && nt < 48) {
			uint32_t off = 4096 * nt;

			tracked_init(&t[nt]);
			EXPECT_OK(plx_ep_write(ep, &t[nt].op, bbuf + off, 4096,
					       &adesc, off));
			nt++;
		}
		for (uint64_t e = plx_now_ns() + (r >> 40) % 3 * 1000000ull;
		     plx_now_ns() <= e;)
			pair_poll(&A, &B);
	}
	/* held REQs wait 3 s, QPs towards QPs that do not exist time out */
	wait_done(t, (int)nt, 60000);
	for (uint32_t k = 0; k < nt; k++)
		if (t[k].status == 0) {
			EXPECT_MEM_EQ(abuf + 4096 * k, bbuf + 4096 * k, 4096);
			ok++;
		}
	rstats(&A, &sa);
	rstats(&B, &sb);
	fprintf(stderr,
		"cm storm: %u writes, %u succeeded; A: %llu QPs made, %llu "
		"REQs refused, %llu held, %llu unreachable, %llu malformed\n",
		nt, ok, (unsigned long long)sa.qps_created,
		(unsigned long long)sa.cm_refused,
		(unsigned long long)sa.gid_waits,
		(unsigned long long)sa.gid_unreachable,
		(unsigned long long)sa.cm_bad);
	EXPECT_U64_EQ(sa.cm_bad, 0);
	/* the session goes on */
	tdesc = adesc;
	tdesc.hints &= ~PLX_HINT_RDMA;
	tracked_init(&t[0]);
	EXPECT_OK(plx_ep_write(ep, &t[0].op, bbuf, 64, &tdesc, 0));
	wait_done(t, 1, 10000);
	EXPECT_OK(t[0].status);
	EXPECT_MEM_EQ(abuf, bbuf, 64);
	regions_down();
	pair_down();
}

int main(void)
{
	test_ops_over_qps();
	test_key_violations_and_reconnect();
	test_simultaneous_open();
	test_close_with_ops_in_flight();
	test_peer_restart();
	test_timeout_and_cancel();
	test_register_mt_big_region();
	test_send_recv();
	test_req_flood();
	test_gid_resolve();
	test_gid_resolve_v6();
	test_cm_storm();
	return 0;
}
