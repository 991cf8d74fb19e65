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
 * runtime again); the caller's current device untouched.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "harness.h"
#include "pollux/cuda.h"
#include "pollux/pollux.h"

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

int main(void)
{
	test_real_runtime();
	test_fake_runtime();
	return 0;
}
