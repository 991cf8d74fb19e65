/* SPDX-License-Identifier: MIT */
/*
 * Load: 100,000 operations in flight at once on one endpoint.
 *
 * The bound is the endpoint's send_queue (ops queued, sent or awaiting
 * their ACK; default 4096, PLX_EAGAIN beyond it). The first test checks
 * that bound exactly with the defaults: 4096 ops accepted, the next one
 * refused with PLX_EAGAIN and nothing queued for it, accepted again once
 * one op has completed.
 *
 * The second raises send_queue to the count and submits every op before
 * polling either reactor once: a seeded mix of 64-byte writes (60 %),
 * reads (20 %), write_imm (10 %) and sends into the target's message pool
 * (10 %), each to its own offset or with its own tag; then it cancels a
 * seeded 1 % of them, of every kind (most still queued
 * behind a full socket: the receiver must take the ids' gaps in its
 * stride); PLX_LOAD_CANCEL=reads cancels reads only,
 * PLX_LOAD_CANCEL=none cancels nothing. The initiator's reactor must
 * report every op in flight at once (reqs_inflight). Every op must
 * complete exactly once: with 0 and its data verified (writes in the
 * target's memory, reads in their buffers, write_imm in the target's
 * handler, messages in the target's pool handler), or, for a cancelled
 * op only, PLX_ECANCELED.
 * The target's handlers must see each write_imm and each message once.
 *
 * Presets: 100,000 ops (CI); PLX_LOAD=large: 1,000,000. PLX_LOAD_OPS
 * overrides. Prints the time to drain them (not checked).
 */
#include "tcp_pair.h"

#define MS 1000000ull
#define OPLEN 64

enum {
	K_WRITE,
	K_READ,
	K_IMM,
	K_SEND
};

struct item {
	struct plx_op op;
	uint32_t idx;
	uint8_t kind;
	uint8_t cancelled;
	int done;
	int status;
};

static struct side A, B; /* A: target, B: initiator */
static struct item *items;
static uint32_t nops;
static uint64_t completed;
static uint8_t *tmem; /* A's region: writes land at idx * OPLEN */
static uint8_t *tsrc; /* A's region read from: idx * OPLEN */
static uint8_t *bsrc; /* B's sources, idx * OPLEN */
static uint8_t *bdst; /* B's read destinations, idx * OPLEN */
static uint8_t *seen; /* per op: imm / message seen at the target */
static uint64_t imms, msgs;
static struct plx_pool pool;
static void *pool_mem;

static uint8_t pat(uint32_t idx, uint32_t k, uint32_t salt)
{
	uint32_t x = (idx + 1) * 0x9E3779B1u ^ k * 0x85EBCA77u ^ salt;

	x ^= x >> 15;
	x *= 0x2C1B3C6Du;
	x ^= x >> 13;
	return (uint8_t)x;
}

static void item_cb(struct plx_reactor *r, struct plx_req *req)
{
	struct item *it = (struct item *)(void *)req;

	(void)r;
	if (++it->done != 1)
		PLX_FAIL("op %u completed %d times", it->idx, it->done);
	it->status = req->status;
	completed++;
	if (req->status == 0)
		EXPECT_U64_EQ(req->bytes, OPLEN);
}

static void on_imm(struct plx_reactor *r, struct plx_ep *ep, uint32_t imm,
		   uint64_t addr, uint64_t len, void *arg)
{
	(void)r;
	(void)ep;
	(void)arg;
	EXPECT_LT(imm, nops);
	EXPECT_EQ(items[imm].kind, K_IMM);
	EXPECT_U64_EQ(addr, (uintptr_t)(tmem + (size_t)imm * OPLEN));
	EXPECT_U64_EQ(len, OPLEN);
	if (memcmp(tmem + (size_t)imm * OPLEN, bsrc + (size_t)imm * OPLEN,
		   OPLEN))
		PLX_FAIL("write_imm %u: data not in place", imm);
	if (seen[imm]++)
		PLX_FAIL("write_imm %u notified twice", imm);
	imms++;
}

static void on_msg(struct plx_reactor *r, struct plx_ep *ep, uint64_t tag,
		   void *buf, size_t len, void *arg)
{
	(void)r;
	(void)ep;
	(void)arg;
	EXPECT_LT(tag, nops);
	EXPECT_EQ(items[tag].kind, K_SEND);
	EXPECT_U64_EQ(len, OPLEN);
	if (memcmp(buf, bsrc + (size_t)tag * OPLEN, OPLEN))
		PLX_FAIL("message %llu corrupted", (unsigned long long)tag);
	if (seen[tag]++)
		PLX_FAIL("message %llu delivered twice",
			 (unsigned long long)tag);
	msgs++;
	EXPECT_OK(plx_pool_put(&pool, buf));
}

static void target_tweak(struct side *s)
{
	s->cfg.imm_cb = on_imm;
	s->cfg.msg_cb = on_msg;
	s->cfg.msg_pool = &pool;
}

static uint32_t big_queue;

static void initiator_tweak(struct side *s)
{
	if (big_queue)
		s->cfg.send_queue = big_queue;
	/* the deadline below reports a slow drain, not a storm of op
	 * timeouts */
	s->cfg.op_timeout_ns = 600000 * MS;
}

static struct plx_ep *connect_pair(void)
{
	struct plx_ep *ep = NULL;
	size_t psz = plx_pool_memsize(OPLEN, 256);

	pool_mem = aligned_alloc(64, psz);
	EXPECT_TRUE(pool_mem != NULL);
	EXPECT_OK(plx_pool_init(&pool, pool_mem, psz, OPLEN, 256));
	side_init_with(&A, "127.0.0.1", NULL, NULL, target_tweak);
	side_init_with(&B, NULL, NULL, NULL, initiator_tweak);
	EXPECT_OK(plx_tcp_connect(&B.r, "127.0.0.1", A.port, &ep));
	EXPECT_TRUE(pair_wait_event(&A, &B, &B, PLX_EP_CONNECTED, 5000));
	EXPECT_TRUE(pair_wait_event(&A, &B, &A, PLX_EP_ACCEPTED, 5000));
	return ep;
}

static void fini_pair(void)
{
	side_fini(&B, &A);
	side_fini(&A, NULL);
	free(pool_mem);
}

static void test_send_queue_bound_refuses_with_eagain(void)
{
	static uint8_t target[4097 * OPLEN], src[OPLEN];
	struct plx_ep *ep;
	struct plx_region reg;
	struct plx_desc d;
	struct plx_reactor_stats st;
	uint32_t bound = 4096; /* the documented default */
	uint64_t end;
	int rc;

	items = calloc(bound + 1, sizeof(*items));
	EXPECT_TRUE(items != NULL);
	nops = bound + 1;
	big_queue = 0;
	ep = connect_pair();
	EXPECT_U64_EQ(A.cfg.send_queue, bound);
	EXPECT_OK(plx_mem_register(&A.r, &reg, target, sizeof(target),
				   PLX_ACCESS_REMOTE_WRITE));
	EXPECT_OK(plx_mem_desc(&A.r, &reg, &d));
	completed = 0;
	for (uint32_t i = 0; i <= bound; i++) {
		items[i].idx = i;
		plx_op_init(&items[i].op, item_cb, NULL);
		rc = plx_ep_write(ep, &items[i].op, src, OPLEN, &d,
				  (uint64_t)i * OPLEN);
		if (i < bound)
			EXPECT_OK(rc);
		else
			EXPECT_STATUS(rc, PLX_EAGAIN);
	}
	EXPECT_OK(plx_reactor_stats(&B.r, &st));
	EXPECT_U64_EQ(st.reqs_inflight, bound);
	/* once one completes, there is room again */
	end = plx_now_ns() + 10000 * MS;
	while (!completed && plx_now_ns() < end)
		pair_poll(&A, &B);
	EXPECT_TRUE(completed > 0);
	EXPECT_EQ(items[bound].done, 0);
	EXPECT_OK(plx_ep_write(ep, &items[bound].op, src, OPLEN, &d,
			       (uint64_t)bound * OPLEN));
	while (completed < bound + 1 && plx_now_ns() < end)
		pair_poll(&A, &B);
	EXPECT_U64_EQ(completed, bound + 1);
	for (uint32_t i = 0; i <= bound; i++) {
		EXPECT_EQ(items[i].done, 1);
		EXPECT_OK(items[i].status);
	}
	EXPECT_OK(plx_mem_deregister(&A.r, &reg));
	fini_pair();
	free(items);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static void test_ops_in_flight_at_once(void)
{
	const char *load = getenv("PLX_LOAD");
	const char *cancel = getenv("PLX_LOAD_CANCEL");
	int cancel_all = !cancel || strcmp(cancel, "reads");
	uint64_t want_cancel;
	uint64_t seed = plx_test_seed("load_inflight");
	uint64_t s = seed, t0, t_sub, t1, end, ncancel = 0, kinds[4] = {0};
	struct plx_region treg, sreg;
	struct plx_desc td, sd;
	struct plx_reactor_stats st;
	struct plx_ep *ep;
	size_t bytes;
	int rc;

	nops = (uint32_t)env_u64("PLX_LOAD_OPS",
				 load && !strcmp(load, "large") ? 1000000 :
								  100000);
	if (nops < 100 || nops > (1u << 26))
		PLX_FAIL("PLX_LOAD_OPS out of range");
	/* 1 %: taking a queued op out of the transmit queue is O(1) */
	want_cancel = cancel && !strcmp(cancel, "none") ? 0 : nops / 100;
	bytes = (size_t)nops * OPLEN;
	items = calloc(nops, sizeof(*items));
	tmem = calloc(1, bytes);
	tsrc = malloc(bytes);
	bsrc = malloc(bytes);
	bdst = calloc(1, bytes);
	seen = calloc(nops, 1);
	EXPECT_TRUE(items && tmem && tsrc && bsrc && bdst && seen);
	for (size_t i = 0; i < bytes; i++) {
		tsrc[i] = pat((uint32_t)(i / OPLEN), (uint32_t)(i % OPLEN), 1);
		bsrc[i] = pat((uint32_t)(i / OPLEN), (uint32_t)(i % OPLEN), 2);
	}
	big_queue = nops;
	imms = msgs = completed = 0;
	ep = connect_pair();
	EXPECT_OK(plx_mem_register(&A.r, &treg, tmem, bytes,
				   PLX_ACCESS_REMOTE_WRITE));
	EXPECT_OK(plx_mem_register(&A.r, &sreg, tsrc, bytes,
				   PLX_ACCESS_REMOTE_READ));
	EXPECT_OK(plx_mem_desc(&A.r, &treg, &td));
	EXPECT_OK(plx_mem_desc(&A.r, &sreg, &sd));

	/* every op submitted before either reactor polls */
	t0 = plx_now_ns();
	for (uint32_t i = 0; i < nops; i++) {
		struct item *it = &items[i];
		uint32_t k = (uint32_t)(plx_test_rand(&s) % 10);
		uint64_t off = (uint64_t)i * OPLEN;

		it->idx = i;
		it->kind = k < 6 ? K_WRITE :
			   k < 8 ? K_READ :
			   k < 9 ? K_IMM :
				   K_SEND;
		kinds[it->kind]++;
		plx_op_init(&it->op, item_cb, NULL);
		switch (it->kind) {
		case K_WRITE:
			rc = plx_ep_write(ep, &it->op, bsrc + off, OPLEN, &td,
					  off);
			break;
		case K_READ:
			rc = plx_ep_read(ep, &it->op, bdst + off, OPLEN, &sd,
					 off);
			break;
		case K_IMM:
			rc = plx_ep_write_imm(ep, &it->op, bsrc + off, OPLEN,
					      &td, off, i);
			break;
		default:
			rc = plx_ep_send(ep, &it->op, bsrc + off, OPLEN, i);
			break;
		}
		if (rc)
			PLX_FAIL("op %u (kind %d) refused: %s", i, it->kind,
				 plx_errname(rc));
	}
	EXPECT_OK(plx_reactor_stats(&B.r, &st));
	EXPECT_U64_EQ(st.reqs_inflight, nops);
	EXPECT_U64_EQ(completed, 0);
	/* 1 % cancelled, wherever they are (sent, queued, waiting) */
	for (uint32_t i = 0; ncancel < want_cancel && i < nops; i++) {
		struct item *it = &items[plx_test_rand(&s) % nops];

		if (it->cancelled || (it->kind != K_READ && !cancel_all))
			continue;
		EXPECT_OK(plx_op_cancel(&B.r, &it->op));
		it->cancelled = 1;
		ncancel++;
	}
	t1 = plx_now_ns();
	t_sub = t1 - t0;
	end = t1 + 120000 * MS;
	while (completed < nops && plx_now_ns() < end)
		pair_poll(&A, &B);
	if (completed < nops)
		PLX_FAIL("only %llu of %u ops completed",
			 (unsigned long long)completed, nops);
	t1 = plx_now_ns() - t1;

	/* let the target's handlers see what completed sends/imms carried */
	for (int i = 0; i < 1000; i++)
		pair_poll(&A, &B);
	for (uint32_t i = 0; i < nops; i++) {
		struct item *it = &items[i];
		size_t off = (size_t)i * OPLEN;

		EXPECT_EQ(it->done, 1);
		if (it->status) {
			if (!it->cancelled || it->status != PLX_ECANCELED)
				PLX_FAIL("op %u (kind %d%s): %s", i, it->kind,
					 it->cancelled ? ", cancelled" : "",
					 plx_errname(it->status));
			continue;
		}
		switch (it->kind) {
		case K_WRITE:
			if (memcmp(tmem + off, bsrc + off, OPLEN))
				PLX_FAIL("write %u not in place", i);
			break;
		case K_READ:
			if (memcmp(bdst + off, tsrc + off, OPLEN))
				PLX_FAIL("read %u wrong data", i);
			break;
		default:
			/* completion: the target's handler has run */
			if (!seen[i])
				PLX_FAIL("op %u (kind %d) completed but the "
					 "target never saw it",
					 i, it->kind);
			break;
		}
	}
	EXPECT_OK(plx_reactor_stats(&B.r, &st));
	EXPECT_U64_EQ(st.reqs_inflight, 0);
	EXPECT_TRUE(imms <= kinds[K_IMM] && msgs <= kinds[K_SEND]);
	fprintf(stderr,
		"load_inflight: %u ops in flight (%llu write, %llu read, %llu "
		"write_imm, %llu send; %llu cancelled) submitted in %.3f s, "
		"drained in %.3f s (%.0f ops/s)\n",
		nops, (unsigned long long)kinds[K_WRITE],
		(unsigned long long)kinds[K_READ],
		(unsigned long long)kinds[K_IMM],
		(unsigned long long)kinds[K_SEND], (unsigned long long)ncancel,
		(double)t_sub / 1e9, (double)t1 / 1e9,
		(double)nops * 1e9 / (double)t1);
	EXPECT_OK(plx_mem_deregister(&A.r, &treg));
	EXPECT_OK(plx_mem_deregister(&A.r, &sreg));
	fini_pair();
	free(items);
	free(tmem);
	free(tsrc);
	free(bsrc);
	free(bdst);
	free(seen);
}

int main(void)
{
	test_send_queue_bound_refuses_with_eagain();
	test_ops_in_flight_at_once();
	return 0;
}
