/* SPDX-License-Identifier: MIT */
/*
 * test_cuda_gpu: ops on real device memory, device to remote device over
 * TCP within one process. It loads the CUDA runtime (the default names,
 * or the library named by PLX_CUDA_LIBRARY: ctest runs it a second time
 * over the test double) and exits 77 when plx_cuda_probe() finds no
 * device. With one: two reactors, each with the CUDA transport and a
 * bounce pool, connected over loopback TCP and driven alternately from
 * this thread; cudaMalloc()ed buffers registered on both; write, read,
 * and send into a receive posted on device memory, at 64 MiB and at odd
 * sizes and offsets across chunk boundaries; every byte checked by
 * copying back with cudaMemcpy(). It prints the bandwidth of the 64 MiB
 * transfers, and of the same writes and reads between host regions in
 * the same run, alternated, with the ratio (figures, not checks).
 */
#include <dlfcn.h>

#include <cuda_runtime_api.h>

#include "pollux/cuda.h"
#include "tcp_pair.h"

#define BIG (64u << 20)	 /* the measured transfers */
#define POOL (32u << 20) /* bounce pool per reactor */
#define CHUNK (1u << 20)
#define SEND_MAX (POOL / 2) /* a send or receive takes at most half */

static cudaError_t (*cu_malloc)(void **, size_t);
static cudaError_t (*cu_free)(void *);
static cudaError_t (*cu_memcpy)(void *, const void *, size_t,
				enum cudaMemcpyKind);

static void log_cb(void *arg, int level, const char *msg)
{
	(void)arg;
	if (level <= PLX_LOG_WARN)
		fprintf(stderr, "log: %s\n", msg);
}

static void load_runtime(const char *lib)
{
	static const char *const names[] = {"libcudart.so.13",
					    "libcudart.so.12", "libcudart.so"};
	void *h = NULL;

	if (lib)
		h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	for (size_t i = 0; !lib && !h && i < 3; i++)
		h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!h)
		PLX_FAIL("plx_cuda_probe() found a device, but dlopen() of "
			 "the runtime failed: %s",
			 dlerror());
	*(void **)&cu_malloc = dlsym(h, "cudaMalloc");
	*(void **)&cu_free = dlsym(h, "cudaFree");
	*(void **)&cu_memcpy = dlsym(h, "cudaMemcpy");
	EXPECT_TRUE(cu_malloc && cu_free && cu_memcpy);
}

struct gside {
	struct side s;
	uint8_t *bounce;
	struct plx_region breg, dreg, dreg2, hreg;
	uint8_t *dev, *dev2; /* BIG bytes each */
	uint8_t *host;	     /* BIG bytes: the host baseline */
};

static struct gside A, B;
static const char *lib;

static void *dmalloc(size_t n)
{
	void *p = NULL;

	EXPECT_EQ(cu_malloc(&p, n), cudaSuccess);
	EXPECT_TRUE(p != NULL);
	return p;
}

/* messages as large as a staged send may be (half the bounce pool) */
static void big_messages(struct side *s)
{
	s->cfg.max_message = SEND_MAX;
}

static void gside_up(struct gside *g, uint8_t id, const char *listen)
{
	struct plx_reactor_config rc;
	struct plx_cuda_config cc;

	plx_reactor_config_init(&rc);
	memset(rc.node_id, 0, 16);
	rc.node_id[0] = id;
	rc.log_cb = log_cb;
	rc.log_level = PLX_LOG_INFO;
	side_init_with(&g->s, listen, NULL, &rc, big_messages);
	g->bounce = aligned_alloc(4096, POOL);
	EXPECT_TRUE(g->bounce != NULL);
	EXPECT_OK(plx_mem_register(&g->s.r, &g->breg, g->bounce, POOL, 0));
	plx_cuda_config_init(&cc);
	cc.library = lib;
	cc.bounce = &g->breg;
	cc.chunk = CHUNK;
	EXPECT_OK(plx_cuda_init(&g->s.r, &cc));
	g->dev = dmalloc(BIG);
	g->dev2 = dmalloc(BIG);
	EXPECT_OK(plx_mem_register(&g->s.r, &g->dreg, g->dev, BIG,
				   PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_register(&g->s.r, &g->dreg2, g->dev2, BIG,
				   PLX_ACCESS_ALL));
	EXPECT_EQ(plx_cuda_region_path(&g->s.r, &g->dreg),
		  PLX_CUDA_PATH_STAGING);
	g->host = aligned_alloc(4096, BIG);
	EXPECT_TRUE(g->host != NULL);
	memset(g->host, 0, BIG); /* faulted in before it is measured */
	EXPECT_OK(plx_mem_register(&g->s.r, &g->hreg, g->host, BIG,
				   PLX_ACCESS_ALL));
}

static void gside_down(struct gside *g, struct gside *other)
{
	EXPECT_OK(plx_mem_deregister(&g->s.r, &g->dreg));
	EXPECT_OK(plx_mem_deregister(&g->s.r, &g->dreg2));
	EXPECT_OK(plx_mem_deregister(&g->s.r, &g->hreg));
	EXPECT_OK(plx_tcp_shutdown(&g->s.r));
	{
		uint64_t end = plx_now_ns() + 10000000000ull;
		int rc;

		/* the bounce region stays registered until the transport
		 * is gone: fini first refuses, then succeeds */
		while ((rc = plx_reactor_fini(&g->s.r)) == PLX_EBUSY &&
		       plx_now_ns() < end) {
			pair_poll(&g->s, other ? &other->s : NULL);
			if (g->breg.plx_key)
				plx_mem_deregister(&g->s.r, &g->breg);
		}
		EXPECT_OK(rc);
	}
	free(g->bounce);
	free(g->host);
	EXPECT_EQ(cu_free(g->dev), cudaSuccess);
	EXPECT_EQ(cu_free(g->dev2), cudaSuccess);
}

/* Device bytes [@d, @d + @n) equal @want? (copied back to the host) */
static void expect_dev(const uint8_t *d, const uint8_t *want, size_t n,
		       uint8_t *scratch)
{
	EXPECT_EQ(cu_memcpy(scratch, d, n, cudaMemcpyDeviceToHost),
		  cudaSuccess);
	for (size_t i = 0; i < n; i++)
		if (scratch[i] != want[i])
			PLX_FAIL("byte %zu of %zu: %u, want %u", i, n,
				 scratch[i], want[i]);
}

static uint64_t wait_op(struct tracked *t)
{
	uint64_t t0 = plx_now_ns();

	if (!pair_until(&A.s, &B.s, &t->done, 120000))
		PLX_FAIL("op not complete after 120 s");
	EXPECT_EQ(t->done, 1);
	EXPECT_OK(t->status);
	return plx_now_ns() - t0;
}

static double gbps(uint64_t bytes, uint64_t ns)
{
	return ns ? (double)bytes / (double)ns : 0.0; /* bytes/ns = GB/s */
}

/* One BIG write (or read) between @local and B's region @d; its time. */
static uint64_t timed_op(struct plx_ep *ep, int read, void *local,
			 const struct plx_desc *d)
{
	struct tracked t;

	tracked_init(&t);
	if (read)
		EXPECT_OK(plx_ep_read(ep, &t.op, local, BIG, d, 0));
	else
		EXPECT_OK(plx_ep_write(ep, &t.op, local, BIG, d, 0));
	return wait_op(&t);
}

#define REPS 5

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Staged (device to remote device) against host to remote host, the same
 * size and the same one thread, alternated REPS times: median figures. */
static void compare_host(struct plx_ep *ep, const struct plx_desc *bd,
			 const struct plx_desc *hd)
{
	for (int read = 0; read < 2; read++) {
		uint64_t dev_ns[REPS], host_ns[REPS];
		double dev, host;

		for (int i = 0; i < REPS; i++) {
			dev_ns[i] = timed_op(ep, read, A.dev, bd);
			host_ns[i] = timed_op(ep, read, A.host, hd);
		}
		qsort(dev_ns, REPS, sizeof(dev_ns[0]), cmp_u64);
		qsort(host_ns, REPS, sizeof(host_ns[0]), cmp_u64);
		dev = gbps(BIG, dev_ns[REPS / 2]);
		host = gbps(BIG, host_ns[REPS / 2]);
		fprintf(stderr,
			"%s 64 MiB, median of %d alternated: device %.3f GB/s, "
			"host %.3f GB/s, device/host %.2f\n",
			read ? "read" : "write", REPS, dev, host,
			host > 0 ? dev / host : 0.0);
	}
}

int main(void)
{
	const char *why = NULL;
	struct plx_desc bd, bd2, hd;
	struct plx_ep *ep;
	struct tracked t, r;
	uint8_t *want, *scratch;
	uint64_t t0, ns;
	/* odd sizes and offsets: around chunk and page boundaries */
	static const struct {
		uint64_t off, len;
	} odd[] = {{0, 1},
		   {123, 4097},
		   {CHUNK - 5, 10},
		   {777, 3 * CHUNK + 17},
		   {BIG - CHUNK - 1, CHUNK + 1}};

	lib = getenv("PLX_CUDA_LIBRARY");
	if (plx_cuda_probe(lib, &why))
		PLX_SKIP("no CUDA device (%s): the real-GPU test could not run",
			 why ? why : "?");
	load_runtime(lib);
	fprintf(stderr, "test_cuda_gpu: runtime %s\n", lib ? lib : "default");
	gside_up(&A, 1, "127.0.0.1");
	gside_up(&B, 2, NULL);
	EXPECT_OK(plx_tcp_connect(&B.s.r, "127.0.0.1", A.s.port, &ep));
	EXPECT_TRUE(pair_wait_event(&A.s, &B.s, &B.s, PLX_EP_CONNECTED, 5000));
	EXPECT_TRUE(pair_wait_event(&A.s, &B.s, &A.s, PLX_EP_ACCEPTED, 5000));
	ep = A.s.accepted; /* A's endpoint to B */
	EXPECT_OK(plx_mem_desc(&B.s.r, &B.dreg, &bd));
	EXPECT_OK(plx_mem_desc(&B.s.r, &B.dreg2, &bd2));
	EXPECT_OK(plx_mem_desc(&B.s.r, &B.hreg, &hd));
	EXPECT_TRUE(bd.hints & PLX_HINT_CUDA);
	EXPECT_TRUE(!(hd.hints & PLX_HINT_CUDA));
	want = malloc(BIG);
	scratch = malloc(BIG);
	EXPECT_TRUE(want && scratch);

	/* write: A's device memory into B's, 64 MiB */
	plx_test_fill(want, BIG, 1);
	EXPECT_EQ(cu_memcpy(A.dev, want, BIG, cudaMemcpyHostToDevice),
		  cudaSuccess);
	tracked_init(&t);
	t0 = plx_now_ns();
	EXPECT_OK(plx_ep_write(ep, &t.op, A.dev, BIG, &bd, 0));
	wait_op(&t);
	ns = plx_now_ns() - t0;
	expect_dev(B.dev, want, BIG, scratch);
	fprintf(stderr,
		"write 64 MiB device -> remote device: %.3f GB/s "
		"(%.1f ms)\n",
		gbps(BIG, ns), (double)ns / 1e6);

	/* read: B's device memory into A's other buffer, 64 MiB */
	tracked_init(&t);
	t0 = plx_now_ns();
	EXPECT_OK(plx_ep_read(ep, &t.op, A.dev2, BIG, &bd, 0));
	wait_op(&t);
	ns = plx_now_ns() - t0;
	expect_dev(A.dev2, want, BIG, scratch);
	fprintf(stderr,
		"read 64 MiB remote device -> device: %.3f GB/s "
		"(%.1f ms)\n",
		gbps(BIG, ns), (double)ns / 1e6);

	/* the staged path against the host path, alternated */
	compare_host(ep, &bd, &hd);

	/* odd sizes and offsets, both ways */
	for (size_t k = 0; k < sizeof(odd) / sizeof(odd[0]); k++) {
		uint64_t off = odd[k].off, len = odd[k].len;

		plx_test_fill(want, len, 10 + (uint32_t)k);
		EXPECT_EQ(cu_memcpy(A.dev + off, want, len,
				    cudaMemcpyHostToDevice),
			  cudaSuccess);
		tracked_init(&t);
		EXPECT_OK(plx_ep_write(ep, &t.op, A.dev + off, len, &bd2,
				       BIG - off - len));
		wait_op(&t);
		expect_dev(B.dev2 + BIG - off - len, want, len, scratch);
		tracked_init(&t);
		EXPECT_OK(plx_ep_read(ep, &t.op, A.dev2 + off, len, &bd2,
				      BIG - off - len));
		wait_op(&t);
		expect_dev(A.dev2 + off, want, len, scratch);
	}

	/* send from A's device memory into a receive posted on B's */
	{
		struct plx_ep *bep = NULL;

		for (int i = 0; i < B.s.nev; i++)
			if (B.s.ev[i] == PLX_EP_CONNECTED)
				bep = B.s.ev_ep[i];
		EXPECT_TRUE(bep != NULL);
		plx_test_fill(want, SEND_MAX, 99);
		EXPECT_EQ(cu_memcpy(A.dev, want, SEND_MAX,
				    cudaMemcpyHostToDevice),
			  cudaSuccess);
		tracked_init(&r);
		EXPECT_OK(plx_ep_recv(bep, &r.op, B.dev + 64, SEND_MAX, 7,
				      ~0ull));
		tracked_init(&t);
		t0 = plx_now_ns();
		EXPECT_OK(plx_ep_send(ep, &t.op, A.dev, SEND_MAX, 7));
		wait_op(&t);
		if (!pair_until(&A.s, &B.s, &r.done, 120000))
			PLX_FAIL("recv not complete after 120 s");
		ns = plx_now_ns() - t0;
		EXPECT_OK(r.status);
		EXPECT_EQ(r.bytes, SEND_MAX);
		expect_dev(B.dev + 64, want, SEND_MAX, scratch);
		fprintf(stderr,
			"send %u MiB device -> remote device recv: "
			"%.3f GB/s\n",
			SEND_MAX >> 20, gbps(SEND_MAX, ns));
	}

	free(want);
	free(scratch);
	gside_down(&B, &A);
	gside_down(&A, NULL);
	fprintf(stderr, "test_cuda_gpu: passed\n");
	return 0;
}
