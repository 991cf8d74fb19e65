/* SPDX-License-Identifier: MIT */
/*
 * test_cuda_detect: the CUDA transport's first step. With the real
 * runtime: on this host without a driver, plx_cuda_init() is
 * PLX_EUNAVAIL and says why (with a GPU it attaches and reports the
 * devices). With the test double (tests/cuda/fake_cudart.c, loaded through
 * plx_cuda_config.library, the same run-time loading path): attach,
 * versions, device count, a bad ordinal, no device, a missing library;
 * registered regions classified once each (device memory gets
 * PLX_HINT_CUDA, host memory not; descriptors and lookups never ask the
 * runtime again); the caller's current device untouched; ops whose
 * local buffer is device memory refused with PLX_ENOTSUP when the CUDA
 * transport has no bounce pool (test_cuda_staging covers staging), from
 * the owner thread and through the request ring, while host buffers
 * work.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "pollux/cuda.h"
#include "tcp_pair.h"

static char last_log[256];

static void log_cb(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	snprintf(last_log, sizeof(last_log), "%s", msg);
}

static void reactor_up(struct plx_reactor *r)
{
	struct plx_reactor_config rc;

	plx_reactor_config_init(&rc);
	rc.log_cb = log_cb;
	rc.log_level = PLX_LOG_INFO;
	EXPECT_OK(plx_reactor_init(r, &rc));
}

static void test_real_runtime(void)
{
	struct plx_reactor r;
	struct plx_cuda_info in;
	const char *why = NULL;
	int rc, prc;

	reactor_up(&r);
	prc = plx_cuda_probe(NULL, &why);
	rc = plx_cuda_init(&r, NULL);
	EXPECT_EQ(rc, prc);
	if (rc == 0) {
		EXPECT_OK(plx_cuda_info(&r, &in));
		EXPECT_GT(in.device_count, 0);
		fprintf(stderr, "CUDA: %s, %d device(s)\n", in.library,
			in.device_count);
	} else {
		EXPECT_STATUS(rc, PLX_EUNAVAIL);
		EXPECT_TRUE(why != NULL);
		EXPECT_TRUE(strstr(last_log, why) != NULL);
		fprintf(stderr, "no CUDA here: %s\n", last_log);
		EXPECT_STATUS(plx_cuda_info(&r, &in), PLX_EUNAVAIL);
	}
	EXPECT_OK(plx_reactor_fini(&r));
}

static void test_fake_runtime(void)
{
	struct plx_reactor r;
	struct plx_cuda_config cfg;
	struct plx_cuda_info in;
	struct plx_region dreg, hreg;
	struct plx_desc d;
	void *h = dlopen(FAKE_CUDART, RTLD_NOW | RTLD_LOCAL);
	void *(*fake_alloc)(size_t);
	void (*fake_free)(void *);
	unsigned long (*attr_calls)(void);
	unsigned long (*set_calls)(void);
	cudaError_t (*set_device)(int);
	cudaError_t (*get_device)(int *);
	static char host[4096];
	void *dev;
	int cur = -1;

	EXPECT_TRUE(h != NULL);
	*(void **)&fake_alloc = dlsym(h, "fakecuda_alloc");
	*(void **)&fake_free = dlsym(h, "fakecuda_free");
	*(void **)&attr_calls = dlsym(h, "fakecuda_attr_calls");
	*(void **)&set_calls = dlsym(h, "fakecuda_set_device_calls");
	*(void **)&set_device = dlsym(h, "cudaSetDevice");
	*(void **)&get_device = dlsym(h, "cudaGetDevice");
	EXPECT_TRUE(fake_alloc && fake_free && attr_calls && set_calls &&
		    set_device && get_device);

	/* the caller uses device 1 of 2 */
	setenv("PLX_FAKE_CUDA_DEVICES", "2", 1);
	EXPECT_EQ(set_device(1), 0);
	reactor_up(&r);
	plx_cuda_config_init(&cfg);
	cfg.library = FAKE_CUDART;
	cfg.device = 2;
	EXPECT_STATUS(plx_cuda_init(&r, &cfg), PLX_ENODEV);
	cfg.device = -1;
	EXPECT_STATUS(plx_cuda_init(&r, &cfg), PLX_EINVAL);
	cfg.device = 0;
	EXPECT_OK(plx_cuda_init(&r, &cfg));
	EXPECT_STATUS(plx_cuda_init(&r, &cfg), PLX_EEXIST);
	EXPECT_OK(plx_cuda_info(&r, &in));
	EXPECT_TRUE(strstr(in.library, "fake_cudart") != NULL);
	EXPECT_EQ(in.runtime_version, 13000);
	EXPECT_EQ(in.driver_version, 13000);
	EXPECT_EQ(in.device_count, 2);
	EXPECT_EQ(in.device, 0);
	EXPECT_EQ(in.last_error, 0);

	/* classified once, at registration */
	dev = fake_alloc(1 << 20);
	EXPECT_TRUE(dev != NULL);
	{
		unsigned long a0 = attr_calls();

		EXPECT_OK(plx_mem_register(&r, &dreg, dev, 1 << 20,
					   PLX_ACCESS_ALL));
		EXPECT_OK(plx_mem_register(&r, &hreg, host, sizeof(host),
					   PLX_ACCESS_ALL));
		EXPECT_EQ(attr_calls() - a0, 2);
		EXPECT_OK(plx_mem_desc(&r, &dreg, &d));
		EXPECT_TRUE(d.hints & PLX_HINT_CUDA);
		EXPECT_OK(plx_mem_desc(&r, &hreg, &d));
		EXPECT_EQ(d.hints & PLX_HINT_CUDA, 0);
		for (int i = 0; i < 1000; i++) {
			EXPECT_OK(plx_mem_desc(&r, &dreg, &d));
			EXPECT_OK(plx_mem_lookup(&r, d.addr + 64, 64, d.key,
						 PLX_ACCESS_REMOTE_READ, NULL));
		}
		EXPECT_EQ(attr_calls() - a0, 2); /* never per op */
	}
	/* the caller's current device is untouched */
	EXPECT_EQ(set_calls(), 1); /* the test's own */
	EXPECT_EQ(get_device(&cur), 0);
	EXPECT_EQ(cur, 1);
	EXPECT_OK(plx_mem_deregister(&r, &dreg));
	EXPECT_OK(plx_mem_deregister(&r, &hreg));
	EXPECT_OK(plx_reactor_fini(&r));
	fake_free(dev);

	/* no device */
	setenv("PLX_FAKE_CUDA_DEVICES", "0", 1);
	reactor_up(&r);
	EXPECT_STATUS(plx_cuda_init(&r, &cfg), PLX_EUNAVAIL);
	EXPECT_TRUE(strstr(last_log, "no CUDA device") != NULL);
	/* a runtime that does not load */
	cfg.library = "/nonexistent/libcudart.so";
	EXPECT_STATUS(plx_cuda_init(&r, &cfg), PLX_EUNAVAIL);
	EXPECT_TRUE(strstr(last_log, "cannot load") != NULL);
	EXPECT_OK(plx_reactor_fini(&r));
	unsetenv("PLX_FAKE_CUDA_DEVICES");
}

/* Without a bounce pool, no op may hand device memory to the CPU. */
static void test_ops_refuse_device_memory(void)
{
	static struct side A, B;
	struct plx_cuda_config cfg;
	struct plx_region dreg, hreg, preg;
	struct plx_desc bd;
	struct plx_ep *ep;
	struct tracked t;
	void *h = dlopen(FAKE_CUDART, RTLD_NOW | RTLD_LOCAL);
	void *(*fake_alloc)(size_t);
	void (*fake_free)(void *);
	static char host[8192], peer[8192];
	uint8_t *dev;

	EXPECT_TRUE(h != NULL);
	*(void **)&fake_alloc = dlsym(h, "fakecuda_alloc");
	*(void **)&fake_free = dlsym(h, "fakecuda_free");
	side_init(&A, "127.0.0.1", NULL, NULL);
	side_init(&B, NULL, NULL, NULL);
	plx_cuda_config_init(&cfg);
	cfg.library = FAKE_CUDART;
	EXPECT_OK(plx_cuda_init(&A.r, &cfg));
	dev = fake_alloc(8192);
	EXPECT_TRUE(dev != NULL);
	EXPECT_OK(plx_mem_register(&A.r, &dreg, dev, 8192, PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_register(&A.r, &hreg, host, sizeof(host),
				   PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_register(&B.r, &preg, peer, sizeof(peer),
				   PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&B.r, &preg, &bd));
	EXPECT_OK(plx_tcp_connect(&B.r, "127.0.0.1", A.port, &ep));
	EXPECT_TRUE(pair_wait_event(&A, &B, &A, PLX_EP_ACCEPTED, 5000));
	ep = A.accepted;

	tracked_init(&t);
	EXPECT_STATUS(plx_ep_write(ep, &t.op, dev + 100, 64, &bd, 0),
		      PLX_ENOTSUP);
	EXPECT_STATUS(plx_ep_send(ep, &t.op, dev, 16, 1), PLX_ENOTSUP);
	EXPECT_STATUS(plx_ep_recv(ep, &t.op, dev + 4000, 100, 0, 0),
		      PLX_ENOTSUP);
	EXPECT_STATUS(plx_ep_read(ep, &t.op, dev, 64, &bd, 0), PLX_ENOTSUP);
	/* a buffer that only overlaps the device region's start */
	EXPECT_STATUS(plx_ep_write(ep, &t.op, dev - 32, 64, &bd, 0),
		      PLX_ENOTSUP);
	EXPECT_EQ(t.done, 0);
	/* the request-ring path completes the op with it */
	plx_op_init(&t.op, NULL, NULL);
	EXPECT_OK(plx_ep_write_mt(ep, &t.op, dev, 64, &bd, 0));
	for (int i = 0; i < 10 && !plx_req_test_mt(&t.op.req); i++)
		pair_poll(&A, &B);
	EXPECT_TRUE(plx_req_test_mt(&t.op.req));
	EXPECT_STATUS(t.op.req.status, PLX_ENOTSUP);
	/* host memory works */
	memset(host, 0x5c, 64);
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(ep, &t.op, host, 64, &bd, 128));
	pair_until(&A, &B, &t.done, 5000);
	EXPECT_OK(t.status);
	EXPECT_MEM_EQ(peer + 128, host, 64);
	/* deregistered: no longer known as device memory (the double's
	 * "device memory" is host memory, so the write goes through) */
	EXPECT_OK(plx_mem_deregister(&A.r, &dreg));
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(ep, &t.op, dev, 64, &bd, 0));
	pair_until(&A, &B, &t.done, 5000);
	EXPECT_OK(t.status);
	EXPECT_OK(plx_mem_deregister(&A.r, &hreg));
	EXPECT_OK(plx_mem_deregister(&B.r, &preg));
	side_fini(&B, &A);
	side_fini(&A, NULL);
	fake_free(dev);
}

int main(void)
{
	test_real_runtime();
	test_fake_runtime();
	test_ops_refuse_device_memory();
	return 0;
}
