/* SPDX-License-Identifier: MIT */
/*
 * test_cuda_staging: ops on CUDA device memory through bounce buffers,
 * against the CUDA runtime's test double (tests/cuda/fake_cudart.c, loaded
 * through plx_cuda_config.library like the real runtime). The double's
 * copies only happen when their event has been polled several times, so
 * a transfer that completed before its copies ran would read or deliver
 * stale bytes: every case checks the data.
 *
 * Two reactors over loopback TCP, both with the CUDA transport and a
 * bounce pool of 8 slots of 64 KiB. Cases: device-to-remote-device write
 * (chunked: one copy per chunk on each side, pipelined with the network),
 * read of remote device memory into local device memory, write_imm (one
 * frame: the handler sees all the data in place), send/recv between every mix of
 * device and host buffers, a message larger than half the pool refused
 * at submission, many transfers at once (slots reused, FIFO order of
 * staged sends kept, every slot back afterwards), both reactors writing
 * into each other's device memory at once, 150 reads of remote device
 * memory in flight (more than a connection's control entries), copy
 * errors on the
 * initiator and on the target (PLX_ECUDA with the original code kept, the
 * connection still usable), cancel in the middle of a transfer, and that
 * pollux never asked about an event other than the oldest in flight on
 * its stream nor changed the caller's current device.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "pollux/cuda.h"
#include "tcp_pair.h"

#define CHUNK (64u * 1024)
#define NSLOTS 8
#define DEVLEN (4u << 20)

static struct {
	void *(*alloc)(size_t);
	void (*free)(void *);
	void (*set_polls)(int);
	void (*fail_copy)(long);
	unsigned long (*stat)(const char *);
	unsigned long (*set_device_calls)(void);
} fk;

static struct side A, B;
static struct plx_region a_bounce, b_bounce, a_dreg, b_dreg, a_hreg, b_hreg;
static struct plx_desc b_ddesc, b_hdesc;
static uint8_t *a_dev, *b_dev;
static uint8_t a_host[DEVLEN], b_host[DEVLEN];
static _Alignas(4096) uint8_t a_pool[NSLOTS * CHUNK], b_pool[NSLOTS * CHUNK];
static struct plx_ep *ep; /* A's endpoint to B */

static void load_fake(void)
{
	void *h = dlopen(FAKE_CUDART, RTLD_NOW | RTLD_LOCAL);

	EXPECT_TRUE(h != NULL);
	*(void **)&fk.alloc = dlsym(h, "fakecuda_alloc");
	*(void **)&fk.free = dlsym(h, "fakecuda_free");
	*(void **)&fk.set_polls = dlsym(h, "fakecuda_set_polls");
	*(void **)&fk.fail_copy = dlsym(h, "fakecuda_fail_copy");
	*(void **)&fk.stat = dlsym(h, "fakecuda_stat");
	*(void **)&fk.set_device_calls = dlsym(h, "fakecuda_set_device_calls");
	EXPECT_TRUE(fk.alloc && fk.free && fk.set_polls && fk.fail_copy &&
		    fk.stat && fk.set_device_calls);
}

static void cuda_up(struct side *s, struct plx_region *bounce, uint8_t *pool)
{
	struct plx_cuda_config cfg;

	EXPECT_OK(plx_mem_register(
		&s->r, bounce, pool, NSLOTS * CHUNK,
		0 /* no remote access: local bounce memory */));
	plx_cuda_config_init(&cfg);
	cfg.library = FAKE_CUDART;
	cfg.bounce = bounce;
	cfg.chunk = CHUNK;
	EXPECT_OK(plx_cuda_init(&s->r, &cfg));
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (uint8_t)(seed >> 56);
	}
}

static void run(struct tracked *t)
{
	EXPECT_TRUE(pair_until(&A, &B, &t->done, 10000));
}

static struct plx_cuda_stats stats(struct side *s)
{
	struct plx_cuda_stats st;

	EXPECT_OK(plx_cuda_stats(&s->r, &st));
	return st;
}

/* Every slot back in the pool, nothing copying. */
static void all_back(void)
{
	for (int i = 0; i < 100 && (stats(&A).slots_free != NSLOTS ||
				    stats(&B).slots_free != NSLOTS);
	     i++)
		pair_poll(&A, &B);
	EXPECT_EQ(stats(&A).slots_free, NSLOTS);
	EXPECT_EQ(stats(&B).slots_free, NSLOTS);
	EXPECT_EQ(fk.stat("pending"), 0);
}

static void setup(void)
{
	load_fake();
	side_init(&A, NULL, NULL, NULL);
	side_init(&B, "127.0.0.1", NULL, NULL);
	cuda_up(&A, &a_bounce, a_pool);
	cuda_up(&B, &b_bounce, b_pool);
	a_dev = fk.alloc(DEVLEN);
	b_dev = fk.alloc(DEVLEN);
	EXPECT_TRUE(a_dev && b_dev);
	EXPECT_OK(
		plx_mem_register(&A.r, &a_dreg, a_dev, DEVLEN, PLX_ACCESS_ALL));
	EXPECT_OK(
		plx_mem_register(&B.r, &b_dreg, b_dev, DEVLEN, PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_register(&A.r, &a_hreg, a_host, DEVLEN,
				   PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_register(&B.r, &b_hreg, b_host, DEVLEN,
				   PLX_ACCESS_ALL));
	EXPECT_TRUE(b_dreg.plx_hints & PLX_HINT_CUDA);
	EXPECT_OK(plx_mem_desc(&B.r, &b_dreg, &b_ddesc));
	EXPECT_OK(plx_mem_desc(&B.r, &b_hreg, &b_hdesc));
	EXPECT_OK(plx_tcp_connect(&A.r, "127.0.0.1", B.port, &ep));
	EXPECT_TRUE(pair_wait_event(&A, &B, &A, PLX_EP_CONNECTED, 5000));
	EXPECT_TRUE(pair_wait_event(&A, &B, &B, PLX_EP_ACCEPTED, 5000));
}

/* Device to remote device, and back. */
static void test_write_read(void)
{
	const size_t len = 5 * CHUNK + 777; /* six chunks, the last short */
	struct plx_cuda_stats a0 = stats(&A), b0 = stats(&B), a1, b1;
	struct tracked t;

	fill(a_dev, len, 1);
	memset(b_dev, 0, len + 64);
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(ep, &t.op, a_dev, len, &b_ddesc, 32));
	run(&t);
	EXPECT_OK(t.status);
	EXPECT_EQ(t.bytes, len);
	EXPECT_MEM_EQ(b_dev + 32, a_dev, len);
	a1 = stats(&A);
	b1 = stats(&B);
	EXPECT_EQ(a1.copies_d2h - a0.copies_d2h, 6); /* one per chunk */
	EXPECT_EQ(a1.bytes_d2h - a0.bytes_d2h, len);
	EXPECT_GE(b1.copies_h2d - b0.copies_h2d, 6); /* chunk-sized or less */
	EXPECT_EQ(b1.bytes_h2d - b0.bytes_h2d, len);
	EXPECT_EQ(a1.staged_ops - a0.staged_ops, 1);
	/* copy and network overlapped: chunks were copied while earlier
	 * ones were on the wire, and several copies were in flight */
	EXPECT_GT(a1.overlapped, a0.overlapped);
	EXPECT_GE(a1.max_copies_inflight, 2);

	/* read it back into another part of local device memory */
	memset(a_dev + DEVLEN / 2, 0, len);
	tracked_init(&t);
	EXPECT_OK(
		plx_ep_read(ep, &t.op, a_dev + DEVLEN / 2, len, &b_ddesc, 32));
	run(&t);
	EXPECT_OK(t.status);
	EXPECT_EQ(t.bytes, len);
	EXPECT_MEM_EQ(a_dev + DEVLEN / 2, a_dev, len);

	/* host source into remote device memory, remote device memory into
	 * a host buffer: only the target side stages */
	fill(a_host, len, 2);
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(ep, &t.op, a_host, len, &b_ddesc, 0));
	run(&t);
	EXPECT_OK(t.status);
	EXPECT_MEM_EQ(b_dev, a_host, len);
	memset(a_host + len, 0, CHUNK);
	tracked_init(&t);
	EXPECT_OK(plx_ep_read(ep, &t.op, a_host + len, CHUNK, &b_ddesc, 5));
	run(&t);
	EXPECT_OK(t.status);
	EXPECT_MEM_EQ(a_host + len, a_host + 5, CHUNK);
	/* device source into remote host memory */
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(ep, &t.op, a_dev, len, &b_hdesc, 0));
	run(&t);
	EXPECT_OK(t.status);
	EXPECT_MEM_EQ(b_host, a_dev, len);
	/* a read of remote device memory larger than half its pool, from a
	 * host buffer (no local staging to split it): refused by the
	 * target, nothing lost */
	tracked_init(&t);
	EXPECT_OK(plx_ep_read(ep, &t.op, a_host, (NSLOTS / 2) * CHUNK + 1,
			      &b_ddesc, 0));
	run(&t);
	EXPECT_STATUS(t.status, PLX_EMSGSIZE);
	all_back();
}

static void test_write_imm(void)
{
	const size_t len = 3 * CHUNK + 100;
	struct tracked t;
	int imms = B.imm_count;

	fill(a_dev + 4096, len, 3);
	B.imm_expect = a_dev + 4096;
	B.imm_at = b_dev + 8192;
	B.imm_data_ok = 0;
	tracked_init(&t);
	EXPECT_OK(plx_ep_write_imm(ep, &t.op, a_dev + 4096, len, &b_ddesc, 8192,
				   0xfeed));
	run(&t);
	EXPECT_OK(t.status);
	EXPECT_EQ(B.imm_count, imms + 1);
	EXPECT_EQ(B.last_imm, 0xfeed);
	EXPECT_EQ(B.last_imm_len, len);
	EXPECT_TRUE(B.imm_data_ok); /* all in place when the handler ran */
	B.imm_expect = NULL;
	/* from device memory, one frame from one run: half the pool at most */
	tracked_init(&t);
	EXPECT_STATUS(plx_ep_write_imm(ep, &t.op, a_dev, NSLOTS / 2 * CHUNK + 1,
				       &b_ddesc, 0, 1),
		      PLX_EMSGSIZE);
	all_back();
}

/* One message from @src on A into @dst on B. */
static void send_one(const uint8_t *src, uint8_t *dst, size_t len, uint64_t tag)
{
	struct tracked s, r;
	struct plx_ep *bep = B.accepted;

	tracked_init(&s);
	tracked_init(&r);
	EXPECT_OK(plx_ep_recv(bep, &r.op, dst, len + 100, tag, ~0ull));
	EXPECT_OK(plx_ep_send(ep, &s.op, src, len, tag));
	run(&s);
	run(&r);
	EXPECT_OK(s.status);
	EXPECT_OK(r.status);
	EXPECT_EQ(r.bytes, len);
	EXPECT_MEM_EQ(dst, src, len);
}

static void test_send_recv(void)
{
	const size_t len = 2 * CHUNK + 11;
	struct tracked t;

	fill(a_dev, len, 4);
	fill(a_host, len, 5);
	send_one(a_dev, b_dev + 4096, len, 1);	     /* device to device */
	send_one(a_dev + 1, b_host, len, 2);	     /* device to host */
	send_one(a_host, b_dev + 3 * CHUNK, len, 3); /* host to device */
	send_one(a_dev, b_dev, 0, 4);		     /* empty */
	/* a message must fit one run of at most half the pool */
	tracked_init(&t);
	EXPECT_STATUS(plx_ep_send(ep, &t.op, a_dev, NSLOTS / 2 * CHUNK + 1, 9),
		      PLX_EMSGSIZE);
	EXPECT_STATUS(plx_ep_recv(ep, &t.op, a_dev, NSLOTS / 2 * CHUNK + 1, 9,
				  ~0ull),
		      PLX_EMSGSIZE);
	EXPECT_EQ(t.done, 0);
	all_back();
}

/* More transfers than slots: they wait for slots and all complete; staged
 * sends keep their order. */
static void test_many(void)
{
	enum {
		NW = 12,
		NS = 6
	};
	static struct tracked w[NW], s[NS], r[NS];
	const size_t wl = 3 * CHUNK, sl = CHUNK + 5;
	struct plx_ep *bep = B.accepted;
	uint64_t waits0 = stats(&A).slot_waits;
	int done;

	for (int i = 0; i < NW; i++) {
		fill(a_dev + (size_t)i * wl, wl, 100 + (uint64_t)i);
		tracked_init(&w[i]);
		EXPECT_OK(plx_ep_write(ep, &w[i].op, a_dev + (size_t)i * wl, wl,
				       &b_ddesc, (uint64_t)i * wl));
	}
	for (int i = 0; i < NS; i++) {
		fill(a_host + (size_t)i * sl, sl, 200 + (uint64_t)i);
		memcpy(a_dev + 3 * DEVLEN / 4 + (size_t)i * sl,
		       a_host + (size_t)i * sl, sl);
		tracked_init(&r[i]);
		tracked_init(&s[i]);
		/* any tag: the order of arrival decides which receive */
		EXPECT_OK(plx_ep_recv(bep, &r[i].op,
				      b_host + (size_t)i * (sl + 100), sl + 100,
				      0, 0));
		EXPECT_OK(plx_ep_send(ep, &s[i].op,
				      a_dev + 3 * DEVLEN / 4 + (size_t)i * sl,
				      sl, (uint64_t)i));
	}
	for (uint64_t end = plx_now_ns() + 20000000000ull;
	     plx_now_ns() < end;) {
		done = 0;
		for (int i = 0; i < NW; i++)
			done += w[i].done;
		for (int i = 0; i < NS; i++)
			done += s[i].done + r[i].done;
		if (done == NW + 2 * NS)
			break;
		pair_poll(&A, &B);
	}
	for (int i = 0; i < NW; i++) {
		EXPECT_EQ(w[i].done, 1);
		EXPECT_OK(w[i].status);
		EXPECT_MEM_EQ(b_dev + (size_t)i * wl, a_dev + (size_t)i * wl,
			      wl);
	}
	for (int i = 0; i < NS; i++) {
		EXPECT_EQ(s[i].done, 1);
		EXPECT_OK(s[i].status);
		EXPECT_OK(r[i].status);
		EXPECT_EQ(r[i].bytes, sl);
		/* receive i got message i */
		EXPECT_MEM_EQ(b_host + (size_t)i * (sl + 100),
			      a_host + (size_t)i * sl, sl);
	}
	EXPECT_GT(stats(&A).slot_waits, waits0);
	all_back();
}

/* Both reactors write into each other's device memory at once, more
 * than either pool holds: each serves the other's writes from the half of
 * its pool kept for peers, so neither waits for ACKs it cannot read. */
static void test_both_ways(void)
{
	enum {
		N = 8
	};
	static struct tracked ab[N], ba[N];
	const size_t wl = 3 * CHUNK + 9;
	struct plx_desc a_ddesc;
	struct plx_ep *bep = B.accepted;
	int done;

	EXPECT_OK(plx_mem_desc(&A.r, &a_dreg, &a_ddesc));
	for (int i = 0; i < N; i++) {
		fill(a_dev + (size_t)i * wl, wl, 300 + (uint64_t)i);
		fill(b_dev + DEVLEN / 2 + (size_t)i * wl, wl,
		     400 + (uint64_t)i);
	}
	for (int i = 0; i < N; i++) {
		tracked_init(&ab[i]);
		tracked_init(&ba[i]);
		EXPECT_OK(plx_ep_write(ep, &ab[i].op, a_dev + (size_t)i * wl,
				       wl, &b_ddesc, (uint64_t)i * wl));
		EXPECT_OK(plx_ep_write(
			bep, &ba[i].op, b_dev + DEVLEN / 2 + (size_t)i * wl, wl,
			&a_ddesc, DEVLEN / 2 + (uint64_t)i * wl));
	}
	for (uint64_t end = plx_now_ns() + 20000000000ull;
	     plx_now_ns() < end;) {
		done = 0;
		for (int i = 0; i < N; i++)
			done += ab[i].done + ba[i].done;
		if (done == 2 * N)
			break;
		pair_poll(&A, &B);
	}
	for (int i = 0; i < N; i++) {
		EXPECT_EQ(ab[i].done, 1);
		EXPECT_EQ(ba[i].done, 1);
		EXPECT_OK(ab[i].status);
		EXPECT_OK(ba[i].status);
		EXPECT_MEM_EQ(b_dev + (size_t)i * wl, a_dev + (size_t)i * wl,
			      wl);
		EXPECT_MEM_EQ(a_dev + DEVLEN / 2 + (size_t)i * wl,
			      b_dev + DEVLEN / 2 + (size_t)i * wl, wl);
	}
	all_back();
}

/* Submitted from another thread's point of view: through the ring. */
static void test_mt(void)
{
	struct plx_op op;
	const size_t len = 2 * CHUNK + 3;

	fill(a_dev + 64, len, 9);
	plx_op_init(&op, NULL, NULL);
	EXPECT_OK(plx_ep_write_mt(ep, &op, a_dev + 64, len, &b_ddesc, 128));
	for (int i = 0; i < 1000 && !plx_req_test_mt(&op.req); i++)
		pair_poll(&A, &B);
	EXPECT_TRUE(plx_req_test_mt(&op.req));
	EXPECT_OK(op.req.status);
	EXPECT_MEM_EQ(b_dev + 128, a_dev + 64, len);
	all_back();
}

/* A transfer that waits for slots past its deadline times out. */
static void test_wait_timeout(void)
{
	struct tracked big, late;

	fk.set_polls(1000000); /* copies that do not finish */
	tracked_init(&big);
	tracked_init(&late);
	EXPECT_OK(plx_ep_write(ep, &big.op, a_dev, NSLOTS / 2 * CHUNK, &b_ddesc,
			       0));
	EXPECT_OK(plx_ep_write(ep, &late.op, a_dev, NSLOTS / 2 * CHUNK,
			       &b_ddesc, 0));
	/* the half of the pool for this reactor's own ops is taken (the
	 * other half serves peers); further transfers wait, this one with
	 * a short timeout */
	{
		struct tracked w;

		tracked_init(&w);
		w.op.timeout_ns = 50000000; /* 50 ms */
		EXPECT_OK(plx_ep_write(ep, &w.op, a_dev, CHUNK, &b_ddesc, 0));
		EXPECT_TRUE(pair_until(&A, &B, &w.done, 5000));
		EXPECT_STATUS(w.status, PLX_ETIMEDOUT);
		EXPECT_EQ(big.done + late.done, 0);
	}
	fk.set_polls(3); /* pending events too */
	run(&big);
	run(&late);
	EXPECT_OK(big.status);
	EXPECT_OK(late.status);
	all_back();
}

static void test_errors(void)
{
	const size_t len = 4 * CHUNK;
	struct plx_cuda_info in;
	struct tracked t;

	/* the initiator's second device-to-host copy fails */
	fill(a_dev, len, 6);
	tracked_init(&t);
	fk.fail_copy(2);
	EXPECT_OK(plx_ep_write(ep, &t.op, a_dev, len, &b_ddesc, 0));
	run(&t);
	EXPECT_STATUS(t.status, PLX_ECUDA);
	EXPECT_EQ(t.done, 1);
	EXPECT_OK(plx_cuda_info(&A.r, &in));
	EXPECT_EQ(in.last_error, (int)cudaErrorIllegalAddress);
	all_back();
	/* the target's first host-to-device copy fails: the write is
	 * refused (NACK), and the connection goes on */
	tracked_init(&t);
	fk.fail_copy(1);
	EXPECT_OK(plx_ep_write(ep, &t.op, a_host, len, &b_ddesc, 0));
	run(&t);
	EXPECT_STATUS(t.status, PLX_ECUDA);
	EXPECT_OK(plx_cuda_info(&B.r, &in));
	EXPECT_EQ(in.last_error, (int)cudaErrorIllegalAddress);
	all_back();
	/* and a read whose target copy fails */
	tracked_init(&t);
	fk.fail_copy(1);
	EXPECT_OK(plx_ep_read(ep, &t.op, a_host, CHUNK, &b_ddesc, 0));
	run(&t);
	EXPECT_STATUS(t.status, PLX_ECUDA);
	all_back();
	fk.fail_copy(0);
	fill(a_dev, len, 7);
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(ep, &t.op, a_dev, len, &b_ddesc, 0));
	run(&t);
	EXPECT_OK(t.status);
	EXPECT_MEM_EQ(b_dev, a_dev, len);
	all_back();
}

static void test_cancel(void)
{
	const size_t len = DEVLEN / 2;
	struct tracked t;

	fill(a_dev, len, 8);
	fk.set_polls(20); /* slow copies: the transfer is surely mid-way */
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(ep, &t.op, a_dev, len, &b_ddesc, 0));
	for (int i = 0; i < 60; i++)
		pair_poll(&A, &B);
	EXPECT_EQ(t.done, 0);
	EXPECT_OK(plx_op_cancel(&A.r, &t.op));
	EXPECT_STATUS(plx_op_cancel(&A.r, &t.op), PLX_EALREADY);
	run(&t);
	for (int i = 0; i < 200; i++)
		pair_poll(&A, &B);
	EXPECT_EQ(t.done, 1);
	EXPECT_STATUS(t.status, PLX_ECANCELED);
	fk.set_polls(3);
	all_back();
	/* the endpoint still works */
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(ep, &t.op, a_dev, 2 * CHUNK, &b_ddesc, 0));
	run(&t);
	EXPECT_OK(t.status);
	EXPECT_MEM_EQ(b_dev, a_dev, 2 * CHUNK);
}

/* Many staged READ_REQs at once on a target with a big pool: more
 * responses wait for their copies than the connection has control
 * entries; the connection pauses and resumes as responses leave. */
/* A second pair of sides, C (client) and D (listening), each with CUDA
 * staging over its own bounce pool of @pool_len bytes in @chunk slots. */
static void cuda_pair_up(struct side *c, struct side *d,
			 struct plx_region *c_bounce,
			 struct plx_region *d_bounce, uint8_t *cpool,
			 uint8_t *dpool, size_t pool_len, uint32_t chunk)
{
	struct plx_cuda_config cfg;

	side_init(c, NULL, NULL, NULL);
	side_init(d, "127.0.0.1", NULL, NULL);
	EXPECT_OK(plx_mem_register(&c->r, c_bounce, cpool, pool_len, 0));
	EXPECT_OK(plx_mem_register(&d->r, d_bounce, dpool, pool_len, 0));
	plx_cuda_config_init(&cfg);
	cfg.library = FAKE_CUDART;
	cfg.chunk = chunk;
	cfg.bounce = c_bounce;
	EXPECT_OK(plx_cuda_init(&c->r, &cfg));
	cfg.bounce = d_bounce;
	EXPECT_OK(plx_cuda_init(&d->r, &cfg));
}

/* cuda_pair_up()'s undoing, with @cep (C's endpoint to D) closed. */
static void cuda_pair_down(struct side *c, struct side *d,
			   struct plx_region *c_bounce,
			   struct plx_region *d_bounce, struct plx_ep *cep)
{
	EXPECT_OK(plx_mem_deregister(&c->r, c_bounce));
	EXPECT_OK(plx_mem_deregister(&d->r, d_bounce));
	EXPECT_OK(plx_ep_close(cep));
	side_fini(c, d);
	side_fini(d, NULL);
}

static void test_many_reads(void)
{
	enum {
		NR = 150,
		BIG = 200
	};
	static struct side C, D;
	static struct tracked r[NR];
	struct plx_region c_bounce, d_bounce, d_dreg, c_hreg;
	struct plx_desc dd;
	struct plx_ep *cep;
	uint8_t *cpool = aligned_alloc(4096, (size_t)BIG * CHUNK);
	uint8_t *dpool = aligned_alloc(4096, (size_t)BIG * CHUNK);
	uint8_t *dmem = fk.alloc((size_t)NR * 4096);
	uint8_t *host = malloc((size_t)NR * 4096);
	int done;

	EXPECT_TRUE(cpool && dpool && dmem && host);
	cuda_pair_up(&C, &D, &c_bounce, &d_bounce, cpool, dpool,
		     (size_t)BIG * CHUNK, CHUNK);
	fill(dmem, (size_t)NR * 4096, 500);
	EXPECT_OK(plx_mem_register(&D.r, &d_dreg, dmem, (size_t)NR * 4096,
				   PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_register(&C.r, &c_hreg, host, (size_t)NR * 4096,
				   PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&D.r, &d_dreg, &dd));
	EXPECT_OK(plx_tcp_connect(&C.r, "127.0.0.1", D.port, &cep));
	EXPECT_TRUE(pair_wait_event(&C, &D, &C, PLX_EP_CONNECTED, 5000));
	fk.set_polls(50); /* responses wait for their copies a while */
	for (int i = 0; i < NR; i++) {
		tracked_init(&r[i]);
		EXPECT_OK(plx_ep_read(cep, &r[i].op, host + (size_t)i * 4096,
				      4096, &dd, (uint64_t)i * 4096));
	}
	for (uint64_t end = plx_now_ns() + 20000000000ull;
	     plx_now_ns() < end;) {
		done = 0;
		for (int i = 0; i < NR; i++)
			done += r[i].done;
		if (done == NR)
			break;
		pair_poll(&C, &D);
	}
	fk.set_polls(3);
	for (int i = 0; i < NR; i++) {
		EXPECT_EQ(r[i].done, 1);
		EXPECT_OK(r[i].status);
	}
	EXPECT_MEM_EQ(host, dmem, (size_t)NR * 4096);
	EXPECT_OK(plx_mem_deregister(&D.r, &d_dreg));
	EXPECT_OK(plx_mem_deregister(&C.r, &c_hreg));
	cuda_pair_down(&C, &D, &c_bounce, &d_bounce, cep);
	fk.free(dmem);
	free(cpool);
	free(dpool);
	free(host);
}

/*
 * Bounce slots smaller than the TCP staging buffer: a write from host
 * memory into remote device memory arrives with most of its payload in
 * the same read as its header; the target must spread it over several
 * 4 KiB slots, not copy it all into the first (ASan builds catch such an
 * overflow; the data check catches a lost or reordered piece).
 */
static void test_small_slots(void)
{
	enum {
		SMALL = 4096,
		SLOTS = 8,
		LEN = 60 * 1024 + 123
	};
	static struct side C, D;
	static _Alignas(4096) uint8_t cpool[SLOTS * SMALL],
		dpool[SLOTS * SMALL];
	static uint8_t host[2 * LEN];
	struct plx_region c_bounce, d_bounce, d_dreg;
	struct plx_desc dd;
	struct tracked t;
	struct plx_ep *cep;
	uint8_t *dmem = fk.alloc(2 * LEN);

	EXPECT_TRUE(dmem != NULL);
	cuda_pair_up(&C, &D, &c_bounce, &d_bounce, cpool, dpool, sizeof(cpool),
		     SMALL);
	memset(dmem, 0, 2 * LEN);
	EXPECT_OK(
		plx_mem_register(&D.r, &d_dreg, dmem, 2 * LEN, PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&D.r, &d_dreg, &dd));
	EXPECT_OK(plx_tcp_connect(&C.r, "127.0.0.1", D.port, &cep));
	EXPECT_TRUE(pair_wait_event(&C, &D, &C, PLX_EP_CONNECTED, 5000));
	fill(host, sizeof(host), 77);
	for (int i = 0; i < 2; i++) {
		tracked_init(&t);
		EXPECT_OK(plx_ep_write(cep, &t.op, host + (size_t)i * LEN, LEN,
				       &dd, (uint64_t)i * LEN));
		EXPECT_TRUE(pair_until(&C, &D, &t.done, 10000));
		EXPECT_OK(t.status);
	}
	EXPECT_MEM_EQ(dmem, host, 2 * LEN);
	EXPECT_OK(plx_mem_deregister(&D.r, &d_dreg));
	cuda_pair_down(&C, &D, &c_bounce, &d_bounce, cep);
	fk.free(dmem);
}

int main(void)
{
	unsigned long setdev;

	setup();
	setdev = fk.set_device_calls();
	test_write_read();
	test_write_imm();
	test_send_recv();
	test_many();
	test_both_ways();
	test_mt();
	test_wait_timeout();
	test_errors();
	test_cancel();
	test_many_reads();
	test_small_slots();
	/* only the oldest copy of a stream was ever asked about, and the
	 * caller's current device was never switched while ops ran */
	EXPECT_EQ(fk.stat("nonoldest"), 0);
	EXPECT_GT(fk.stat("queries"), 0);
	EXPECT_EQ(fk.set_device_calls(), setdev);
	/* the bounce pool is refused while in use; once idle, deregistering
	 * it ends staging */
	{
		struct tracked t;

		tracked_init(&t);
		EXPECT_OK(
			plx_ep_write(ep, &t.op, a_dev, 2 * CHUNK, &b_ddesc, 0));
		EXPECT_STATUS(plx_mem_deregister(&A.r, &a_bounce), PLX_EBUSY);
		run(&t);
		EXPECT_OK(t.status);
		all_back();
		EXPECT_OK(plx_mem_deregister(&A.r, &a_bounce));
		EXPECT_OK(plx_mem_deregister(&B.r, &b_bounce));
		EXPECT_EQ(stats(&A).slots, 0);
		/* staged ops are refused from now on */
		EXPECT_STATUS(plx_ep_write(ep, &t.op, a_dev, 64, &b_ddesc, 0),
			      PLX_ENOTSUP);
	}
	EXPECT_OK(plx_mem_deregister(&A.r, &a_dreg));
	EXPECT_OK(plx_mem_deregister(&B.r, &b_dreg));
	EXPECT_OK(plx_mem_deregister(&A.r, &a_hreg));
	EXPECT_OK(plx_mem_deregister(&B.r, &b_hreg));
	EXPECT_OK(plx_ep_close(ep));
	side_fini(&A, &B);
	side_fini(&B, NULL);
	EXPECT_EQ(fk.stat("host_registered"), 0); /* the pools unpinned */
	fk.free(a_dev);
	fk.free(b_dev);
	return 0;
}
