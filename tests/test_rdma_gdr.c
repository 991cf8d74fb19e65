/* SPDX-License-Identifier: MIT */
/*
 * test_rdma_gdr: GPUDirect RDMA registration of device memory, with the
 * CUDA test double (tests/cuda/fake_cudart.c + fake_cudart_gdr.c) and
 * REAL rdma-core: run inside the soft-RoCE guest by tests/rdma/
 * run-rxe-vm.sh (ctest: test_rdma_vm). Without a verbs device it checks
 * what needs none (the path getter and its errors, the knob's
 * validation, device memory staged when RDMA is absent) and exits 77; in
 * the guest (PLX_RXE_VM=1) a missing device is a failure.
 *
 * With RDMA, device memory must be registered in this order: a dma-buf
 * from the driver (the double counts the export calls and checks their
 * arguments as the driver does) for ibv_reg_dmabuf_mr, then ibv_reg_mr on
 * the device pointer, then no MR (staging); the path is reported by
 * plx_cuda_region_path(); the descriptor has an rkey (PLX_HINT_RDMA)
 * exactly when a GPUDirect path was taken, and a peer's RDMA write and
 * read of the region then work (bytes checked) and go over the QPs, as
 * do the owner's own write from it and read into it (no bounce pool);
 * deregistration closes everything (no fd left, the old rkey refused by
 * the NIC, reactors finish). With GPUDirect off, staged ops on device
 * memory send their chunks over the QPs from MR-backed bounce slots, and
 * a device region without an rkey is reached over TCP, staged by its
 * owner.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pollux/cuda.h"
#include "pollux/rdma.h"
#include "tcp_pair.h"

static void *(*f_alloc)(size_t);
static void (*f_free)(void *);
static void (*gdr_set)(int, int);
static unsigned long (*gdr_stat)(const char *);
static int (*cu_malloc)(void **, size_t);
static int (*cu_free)(void *);

static char logs[8192];

static void log_cb(void *arg, int level, const char *msg)
{
	size_t n = strlen(logs);

	(void)arg;
	(void)level;
	fprintf(stderr, "log: %s\n", msg);
	if (n < sizeof(logs) - 2)
		snprintf(logs + n, sizeof(logs) - n, "%s\n", msg);
}

static void load_double(void)
{
	void *h = dlopen(FAKE_CUDART, RTLD_NOW | RTLD_LOCAL);

	EXPECT_TRUE(h != NULL);
	*(void **)&f_alloc = dlsym(h, "fakecuda_alloc");
	*(void **)&f_free = dlsym(h, "fakecuda_free");
	*(void **)&gdr_set = dlsym(h, "fakecuda_gdr_set");
	*(void **)&gdr_stat = dlsym(h, "fakecuda_gdr_stat");
	*(void **)&cu_malloc = dlsym(h, "cudaMalloc");
	*(void **)&cu_free = dlsym(h, "cudaFree");
	EXPECT_TRUE(f_alloc && f_free && gdr_set && gdr_stat && cu_malloc &&
		    cu_free);
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	EXPECT_TRUE(d != NULL);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void reactor_cfg(struct plx_reactor_config *rc, uint8_t id)
{
	plx_reactor_config_init(rc);
	memset(rc->node_id, 0, 16);
	rc->node_id[0] = id;
	rc->log_cb = log_cb;
	rc->log_level = PLX_LOG_INFO;
}

static int cuda_up(struct plx_reactor *r, int gpudirect)
{
	struct plx_cuda_config cc;

	plx_cuda_config_init(&cc);
	EXPECT_EQ(cc.gpudirect, PLX_CUDA_GPUDIRECT_AUTO);
	cc.library = FAKE_CUDART;
	cc.gpudirect = gpudirect;
	return plx_cuda_init(r, &cc);
}

static void *dev_alloc(size_t n)
{
	void *p = NULL;

	EXPECT_EQ(cu_malloc(&p, n), 0);
	return p;
}

/* What needs no verbs device. */
static void test_path_without_rdma(void)
{
	struct plx_reactor_config rc;
	struct plx_reactor r;
	struct plx_region dreg, hreg, never = {0};
	struct plx_desc d;
	static char host[4096];
	void *dev = dev_alloc(1 << 16);
	unsigned long ex0 = gdr_stat("exports");

	reactor_cfg(&rc, 9);
	EXPECT_OK(plx_reactor_init(&r, &rc));
	EXPECT_STATUS(plx_cuda_region_path(&r, &never), PLX_EUNAVAIL);
	EXPECT_STATUS(cuda_up(&r, 2), PLX_EINVAL);
	EXPECT_STATUS(cuda_up(&r, -1), PLX_EINVAL);
	EXPECT_OK(cuda_up(&r, PLX_CUDA_GPUDIRECT_AUTO));
	EXPECT_OK(plx_mem_register(&r, &dreg, dev, 1 << 16, PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_register(&r, &hreg, host, sizeof(host),
				   PLX_ACCESS_ALL));
	/* no RDMA transport: device memory is staged, nothing exported */
	EXPECT_EQ(plx_cuda_region_path(&r, &dreg), PLX_CUDA_PATH_STAGING);
	EXPECT_EQ(plx_cuda_region_path(&r, &hreg), PLX_CUDA_PATH_NONE);
	EXPECT_OK(plx_mem_desc(&r, &dreg, &d));
	EXPECT_EQ(d.hints & PLX_HINT_RDMA, 0);
	EXPECT_EQ(d.rkey, 0);
	EXPECT_EQ(gdr_stat("exports"), ex0);
	memset(&never, 0, sizeof(never));
	EXPECT_STATUS(plx_cuda_region_path(&r, &never), PLX_ENOENT);
	EXPECT_STATUS(plx_cuda_region_path(&r, NULL), PLX_EINVAL);
	EXPECT_OK(plx_mem_deregister(&r, &dreg));
	EXPECT_STATUS(plx_cuda_region_path(&r, &dreg), PLX_ENOENT);
	EXPECT_OK(plx_mem_deregister(&r, &hreg));
	EXPECT_OK(plx_reactor_fini(&r));
	EXPECT_EQ(cu_free(dev), 0);
}

static struct side A, B;  /* A: CUDA + RDMA + TCP; B: RDMA + TCP */
static struct plx_ep *ep; /* B's endpoint to A */
static uint8_t *bbuf;
static struct plx_region breg;
static int in_guest;

static void pair_up(void)
{
	struct plx_reactor_config rc;
	int rc_a;

	reactor_cfg(&rc, 1);
	side_init(&A, "127.0.0.1", NULL, &rc);
	rc_a = plx_rdma_init(&A.r, NULL);
	if (rc_a == PLX_EUNAVAIL) {
		side_fini(&A, NULL);
		if (in_guest)
			PLX_FAIL("no RDMA device inside the soft-RoCE guest");
		PLX_SKIP("no RDMA device on this host (the GPUDirect order "
			 "needs one; the path getter passed)");
	}
	EXPECT_OK(rc_a);
	EXPECT_OK(cuda_up(&A.r, PLX_CUDA_GPUDIRECT_AUTO));
	reactor_cfg(&rc, 2);
	side_init(&B, NULL, NULL, &rc);
	EXPECT_OK(plx_rdma_init(&B.r, NULL));
	EXPECT_OK(plx_tcp_connect(&B.r, "127.0.0.1", A.port, &ep));
	EXPECT_TRUE(pair_wait_event(&A, &B, &B, PLX_EP_CONNECTED, 5000));
	EXPECT_TRUE(pair_wait_event(&A, &B, &A, PLX_EP_ACCEPTED, 5000));
	bbuf = aligned_alloc(4096, 1 << 20);
	EXPECT_TRUE(bbuf != NULL);
	EXPECT_OK(plx_mem_register(&B.r, &breg, bbuf, 1 << 20, PLX_ACCESS_ALL));
}

static void pair_down(void)
{
	EXPECT_OK(plx_mem_deregister(&B.r, &breg));
	free(bbuf);
	side_fini(&B, &A);
	side_fini(&A, NULL);
}

static int op_wait(struct tracked *t)
{
	EXPECT_TRUE(pair_until(&A, &B, &t->done, 10000));
	EXPECT_EQ(t->done, 1);
	return t->status;
}

/* B writes @n bytes into A's region @d and reads them back, over the
 * QPs (the counter says so); the bytes are checked at both ends. */
static void rdma_write_read(const struct plx_desc *d, uint8_t *mem,
			    uint64_t off, size_t n, uint8_t seed)
{
	struct plx_rdma_stats s0, s1;
	struct tracked t;

	for (size_t i = 0; i < n; i++)
		bbuf[i] = (uint8_t)(seed + i * 7);
	EXPECT_OK(plx_rdma_stats(&B.r, &s0));
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(ep, &t.op, bbuf, n, d, off));
	EXPECT_OK(op_wait(&t));
	EXPECT_MEM_EQ(mem + off, bbuf, n);
	memset(bbuf + n, 0, n);
	tracked_init(&t);
	EXPECT_OK(plx_ep_read(ep, &t.op, bbuf + n, n, d, off));
	EXPECT_OK(op_wait(&t));
	EXPECT_MEM_EQ(bbuf + n, mem + off, n);
	EXPECT_OK(plx_rdma_stats(&B.r, &s1));
	EXPECT_GE(s1.ops_posted - s0.ops_posted, 2);
}

/* A's own ops with a local buffer in its GPUDirect region go straight
 * over the QPs (no bounce pool on A): write from it, read into it. */
static void local_ops_from_device(uint8_t *dev, size_t n)
{
	struct plx_rdma_stats s0, s1;
	struct plx_desc bd;
	struct tracked t;

	EXPECT_TRUE(A.accepted != NULL);
	EXPECT_OK(plx_mem_desc(&B.r, &breg, &bd));
	for (size_t i = 0; i < n; i++)
		dev[i] = (uint8_t)(i * 13 + 5);
	EXPECT_OK(plx_rdma_stats(&A.r, &s0));
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(A.accepted, &t.op, dev, n, &bd, 4096));
	EXPECT_OK(op_wait(&t));
	EXPECT_MEM_EQ(bbuf + 4096, dev, n);
	memset(dev, 0, n);
	tracked_init(&t);
	EXPECT_OK(plx_ep_read(A.accepted, &t.op, dev, n, &bd, 4096));
	EXPECT_OK(op_wait(&t));
	EXPECT_MEM_EQ(dev, bbuf + 4096, n);
	EXPECT_OK(plx_rdma_stats(&A.r, &s1));
	EXPECT_GE(s1.ops_posted - s0.ops_posted, 2);
}

static void expect_fd_closed(int fd)
{
	EXPECT_TRUE(fd >= 0);
	errno = 0;
	EXPECT_EQ(fcntl(fd, F_GETFD), -1);
	EXPECT_EQ(errno, EBADF);
}

/* dma-buf first; soft-RoCE refuses it, ibv_reg_mr takes the region. */
static void test_order_dmabuf_then_reg_mr(void)
{
	size_t len = 3 << 16;
	uint8_t *dev = dev_alloc(len + 8192);
	unsigned long ex0 = gdr_stat("exports");
	struct plx_region dreg;
	struct plx_desc d, old;
	struct tracked t;
	int path;

	logs[0] = 0;
	/* starts inside the allocation, not on a page boundary */
	EXPECT_OK(
		plx_mem_register(&A.r, &dreg, dev + 100, len, PLX_ACCESS_ALL));
	EXPECT_EQ(gdr_stat("exports") - ex0, 1);
	EXPECT_EQ(gdr_stat("bad_exports"), 0);
	expect_fd_closed((int)gdr_stat("last_fd"));
	path = plx_cuda_region_path(&A.r, &dreg);
	if (in_guest) {
		/* rxe has no dma-buf MRs: refused, then ibv_reg_mr */
		EXPECT_EQ(path, PLX_CUDA_PATH_PEERMEM);
		EXPECT_TRUE(strstr(logs, "gpudirect: dma-buf refused (") !=
			    NULL);
		EXPECT_TRUE(strstr(logs, "trying ibv_reg_mr") != NULL);
	} else {
		EXPECT_TRUE(path == PLX_CUDA_PATH_PEERMEM ||
			    path == PLX_CUDA_PATH_DMABUF);
	}
	EXPECT_OK(plx_mem_desc(&A.r, &dreg, &d));
	EXPECT_EQ(d.hints & (PLX_HINT_RDMA | PLX_HINT_CUDA),
		  PLX_HINT_RDMA | PLX_HINT_CUDA);
	EXPECT_NE(d.rkey, 0);
	rdma_write_read(&d, dev + 100, 0, 4096, 1);
	rdma_write_read(&d, dev + 100, len - 65536, 65536, 2);
	local_ops_from_device(dev + 100, 8192);
	/* deregistered: the rkey is dead at the NIC */
	old = d;
	EXPECT_OK(plx_mem_deregister(&A.r, &dreg));
	EXPECT_STATUS(plx_cuda_region_path(&A.r, &dreg), PLX_ENOENT);
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(ep, &t.op, bbuf, 64, &old, 0));
	EXPECT_STATUS(op_wait(&t), PLX_EACCES);
	EXPECT_EQ(cu_free(dev), 0);
}

/* The export fails in the driver: its code is kept, ibv_reg_mr next. */
static void test_export_fails(void)
{
	uint8_t *dev = dev_alloc(1 << 16);
	unsigned long ex0 = gdr_stat("exports");
	struct plx_cuda_info in;
	struct plx_region dreg;
	struct plx_desc d;

	logs[0] = 0;
	gdr_set(1, 801); /* CUDA_ERROR_NOT_SUPPORTED */
	EXPECT_OK(plx_mem_register(&A.r, &dreg, dev, 1 << 16, PLX_ACCESS_ALL));
	gdr_set(1, 0);
	EXPECT_EQ(gdr_stat("exports") - ex0, 1);
	EXPECT_EQ(plx_cuda_region_path(&A.r, &dreg), PLX_CUDA_PATH_PEERMEM);
	EXPECT_OK(plx_cuda_info(&A.r, &in));
	EXPECT_EQ(in.last_error, 801);
	EXPECT_TRUE(strstr(logs, "CUresult 801") != NULL);
	EXPECT_OK(plx_mem_desc(&A.r, &dreg, &d));
	EXPECT_NE(d.rkey, 0);
	rdma_write_read(&d, dev, 512, 8192, 3);
	EXPECT_OK(plx_mem_deregister(&A.r, &dreg));
	EXPECT_EQ(cu_free(dev), 0);
}

/* A driver without the export: nothing asked of it, ibv_reg_mr. */
static void test_no_entry_point(void)
{
	uint8_t *dev = dev_alloc(1 << 16);
	unsigned long ex0 = gdr_stat("exports"), lk0 = gdr_stat("lookups");
	struct plx_region dreg;

	logs[0] = 0;
	gdr_set(0, 0);
	EXPECT_OK(plx_mem_register(&A.r, &dreg, dev, 1 << 16, PLX_ACCESS_ALL));
	gdr_set(1, 0);
	EXPECT_GT(gdr_stat("lookups") - lk0, 0);
	EXPECT_EQ(gdr_stat("exports") - ex0, 0);
	EXPECT_EQ(plx_cuda_region_path(&A.r, &dreg), PLX_CUDA_PATH_PEERMEM);
	EXPECT_TRUE(strstr(logs, "cannot export dma-bufs") != NULL);
	EXPECT_OK(plx_mem_deregister(&A.r, &dreg));
	EXPECT_EQ(cu_free(dev), 0);
}

/* Both refused (ibv_reg_mr cannot pin read-only pages for write): no MR,
 * no rkey, staging. */
static void test_both_refused(void)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *dev = dev_alloc(4 * ps);
	unsigned long ex0 = gdr_stat("exports");
	struct plx_region dreg;
	struct plx_desc d;

	logs[0] = 0;
	EXPECT_OK(mprotect(dev + ps, 2 * ps, PROT_READ));
	EXPECT_OK(plx_mem_register(&A.r, &dreg, dev + ps, 2 * ps,
				   PLX_ACCESS_ALL));
	EXPECT_EQ(gdr_stat("exports") - ex0, 1);
	EXPECT_EQ(plx_cuda_region_path(&A.r, &dreg), PLX_CUDA_PATH_STAGING);
	EXPECT_OK(plx_mem_desc(&A.r, &dreg, &d));
	EXPECT_EQ(d.hints & PLX_HINT_RDMA, 0);
	EXPECT_EQ(d.rkey, 0);
	EXPECT_TRUE(d.hints & PLX_HINT_CUDA);
	EXPECT_TRUE(strstr(logs, "ibv_reg_mr of device memory refused") !=
		    NULL);
	EXPECT_OK(plx_mem_deregister(&A.r, &dreg));
	EXPECT_OK(mprotect(dev + ps, 2 * ps, PROT_READ | PROT_WRITE));
	EXPECT_EQ(cu_free(dev), 0);
}

/* Pinned ahead on a thread by plx_mem_register_mt(): the dma-buf is
 * still tried first; the pinned MR is the second choice. */
static void test_register_mt(void)
{
	uint8_t *dev = dev_alloc(1 << 18);
	unsigned long ex0 = gdr_stat("exports");
	struct plx_region dreg;
	struct plx_desc d;
	struct plx_req req;

	plx_req_init(&req, NULL, NULL);
	EXPECT_OK(plx_mem_register_mt(&A.r, &dreg, dev, 1 << 18, PLX_ACCESS_ALL,
				      &req));
	for (int i = 0; i < 1000 && !plx_req_test_mt(&req); i++)
		pair_poll(&A, &B);
	EXPECT_TRUE(plx_req_test_mt(&req));
	EXPECT_OK(req.status);
	EXPECT_EQ(gdr_stat("exports") - ex0, 1);
	expect_fd_closed((int)gdr_stat("last_fd"));
	if (in_guest)
		EXPECT_EQ(plx_cuda_region_path(&A.r, &dreg),
			  PLX_CUDA_PATH_PEERMEM);
	EXPECT_OK(plx_mem_desc(&A.r, &dreg, &d));
	EXPECT_NE(d.rkey, 0);
	rdma_write_read(&d, dev, (1 << 18) - 4096, 4096, 4);
	EXPECT_OK(plx_mem_deregister(&A.r, &dreg));
	EXPECT_EQ(cu_free(dev), 0);
}

/* The knob, and device memory registered before the RDMA transport. */
static void test_knob_and_late_rdma(void)
{
	struct plx_reactor_config rc;
	struct plx_reactor r;
	struct plx_region dreg;
	struct plx_desc d;
	uint8_t *dev = dev_alloc(1 << 16);
	unsigned long ex0 = gdr_stat("exports");

	/* gpudirect OFF: no export, no MR, staging */
	reactor_cfg(&rc, 3);
	EXPECT_OK(plx_reactor_init(&r, &rc));
	EXPECT_OK(plx_rdma_init(&r, NULL));
	EXPECT_OK(cuda_up(&r, PLX_CUDA_GPUDIRECT_OFF));
	EXPECT_OK(plx_mem_register(&r, &dreg, dev, 1 << 16, PLX_ACCESS_ALL));
	EXPECT_EQ(gdr_stat("exports"), ex0);
	EXPECT_EQ(plx_cuda_region_path(&r, &dreg), PLX_CUDA_PATH_STAGING);
	EXPECT_OK(plx_mem_desc(&r, &dreg, &d));
	EXPECT_EQ(d.rkey, 0);
	EXPECT_EQ(d.hints & PLX_HINT_RDMA, 0);
	EXPECT_OK(plx_mem_deregister(&r, &dreg));
	EXPECT_OK(plx_reactor_fini(&r));

	/* CUDA first, region, then RDMA: the region gets its MR then */
	EXPECT_OK(plx_reactor_init(&r, &rc));
	EXPECT_OK(cuda_up(&r, PLX_CUDA_GPUDIRECT_AUTO));
	EXPECT_OK(plx_mem_register(&r, &dreg, dev, 1 << 16, PLX_ACCESS_ALL));
	EXPECT_EQ(plx_cuda_region_path(&r, &dreg), PLX_CUDA_PATH_STAGING);
	EXPECT_OK(plx_rdma_init(&r, NULL));
	EXPECT_EQ(gdr_stat("exports") - ex0, 1);
	EXPECT_TRUE(plx_cuda_region_path(&r, &dreg) >= PLX_CUDA_PATH_DMABUF);
	EXPECT_OK(plx_mem_desc(&r, &dreg, &d));
	EXPECT_NE(d.rkey, 0);
	EXPECT_OK(plx_mem_deregister(&r, &dreg));
	EXPECT_OK(plx_reactor_fini(&r));
	EXPECT_EQ(cu_free(dev), 0);
}

/* GPUDirect off on both sides, bounce pools registered with RDMA: C's
 * ops on its device memory are staged and their chunks go over the QPs
 * (from and into C's bounce slots, which have an MR); D's device region
 * has no rkey, so C's writes and reads of it go over TCP and D stages
 * them. Bytes checked everywhere. */
static void test_staged_over_rdma(void)
{
	enum {
		CH = 64 * 1024,
		NS = 8,
		LEN = 5 * CH + 99
	};
	static struct side C, D;
	static _Alignas(4096) uint8_t cpool[NS * CH], dpool[NS * CH];
	static uint8_t dhost[1 << 20];
	struct plx_region cb, db, cdev_r, ddev_r, dhost_r;
	struct plx_reactor_config rc;
	struct plx_cuda_config cc;
	struct plx_rdma_stats s0, s1;
	struct plx_desc ddev_d, dhost_d;
	struct plx_ep *cep;
	struct tracked t;
	uint8_t *cdev = dev_alloc(1 << 20), *ddev = dev_alloc(1 << 20);

	reactor_cfg(&rc, 5);
	side_init(&C, NULL, NULL, &rc);
	reactor_cfg(&rc, 6);
	side_init(&D, "127.0.0.1", NULL, &rc);
	EXPECT_OK(plx_rdma_init(&C.r, NULL));
	EXPECT_OK(plx_rdma_init(&D.r, NULL));
	EXPECT_OK(plx_mem_register(&C.r, &cb, cpool, sizeof(cpool), 0));
	EXPECT_OK(plx_mem_register(&D.r, &db, dpool, sizeof(dpool), 0));
	plx_cuda_config_init(&cc);
	cc.library = FAKE_CUDART;
	cc.gpudirect = PLX_CUDA_GPUDIRECT_OFF;
	cc.chunk = CH;
	cc.bounce = &cb;
	EXPECT_OK(plx_cuda_init(&C.r, &cc));
	cc.bounce = &db;
	EXPECT_OK(plx_cuda_init(&D.r, &cc));
	EXPECT_OK(
		plx_mem_register(&C.r, &cdev_r, cdev, 1 << 20, PLX_ACCESS_ALL));
	EXPECT_OK(
		plx_mem_register(&D.r, &ddev_r, ddev, 1 << 20, PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_register(&D.r, &dhost_r, dhost, sizeof(dhost),
				   PLX_ACCESS_ALL));
	EXPECT_EQ(plx_cuda_region_path(&C.r, &cdev_r), PLX_CUDA_PATH_STAGING);
	EXPECT_OK(plx_mem_desc(&D.r, &ddev_r, &ddev_d));
	EXPECT_OK(plx_mem_desc(&D.r, &dhost_r, &dhost_d));
	EXPECT_EQ(ddev_d.rkey, 0);
	EXPECT_NE(dhost_d.rkey, 0);
	EXPECT_OK(plx_tcp_connect(&C.r, "127.0.0.1", D.port, &cep));
	EXPECT_TRUE(pair_wait_event(&C, &D, &C, PLX_EP_CONNECTED, 5000));

	/* device memory into remote host memory, and back: chunks on QPs */
	for (size_t i = 0; i < LEN; i++)
		cdev[i] = (uint8_t)(i * 31 + 7);
	EXPECT_OK(plx_rdma_stats(&C.r, &s0));
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(cep, &t.op, cdev, LEN, &dhost_d, 100));
	EXPECT_TRUE(pair_until(&C, &D, &t.done, 10000));
	EXPECT_OK(t.status);
	EXPECT_MEM_EQ(dhost + 100, cdev, LEN);
	memset(cdev + LEN, 0, LEN);
	tracked_init(&t);
	EXPECT_OK(plx_ep_read(cep, &t.op, cdev + LEN, LEN, &dhost_d, 100));
	EXPECT_TRUE(pair_until(&C, &D, &t.done, 10000));
	EXPECT_OK(t.status);
	EXPECT_MEM_EQ(cdev + LEN, cdev, LEN);
	EXPECT_OK(plx_rdma_stats(&C.r, &s1));
	EXPECT_GE(s1.ops_posted - s0.ops_posted, 12); /* 6 chunks each way */

	/* device memory into remote device memory without an rkey: over
	 * TCP, staged at both ends */
	tracked_init(&t);
	EXPECT_OK(plx_ep_write(cep, &t.op, cdev, LEN, &ddev_d, 8));
	EXPECT_TRUE(pair_until(&C, &D, &t.done, 10000));
	EXPECT_OK(t.status);
	EXPECT_MEM_EQ(ddev + 8, cdev, LEN);
	memset(cdev + LEN, 0, LEN);
	tracked_init(&t);
	EXPECT_OK(plx_ep_read(cep, &t.op, cdev + LEN, LEN, &ddev_d, 8));
	EXPECT_TRUE(pair_until(&C, &D, &t.done, 10000));
	EXPECT_OK(t.status);
	EXPECT_MEM_EQ(cdev + LEN, cdev, LEN);

	EXPECT_OK(plx_mem_deregister(&C.r, &cdev_r));
	EXPECT_OK(plx_mem_deregister(&D.r, &ddev_r));
	EXPECT_OK(plx_mem_deregister(&D.r, &dhost_r));
	EXPECT_OK(plx_mem_deregister(&C.r, &cb));
	EXPECT_OK(plx_mem_deregister(&D.r, &db));
	EXPECT_OK(plx_ep_close(cep));
	side_fini(&C, &D);
	side_fini(&D, NULL);
	EXPECT_EQ(cu_free(cdev), 0);
	EXPECT_EQ(cu_free(ddev), 0);
}

int main(void)
{
	int fds0;

	in_guest = getenv("PLX_RXE_VM") != NULL;
	load_double();
	test_path_without_rdma();
	fds0 = open_fds();
	pair_up();
	test_order_dmabuf_then_reg_mr();
	test_export_fails();
	test_no_entry_point();
	test_both_refused();
	test_register_mt();
	test_knob_and_late_rdma();
	test_staged_over_rdma();
	pair_down();
	/* every dma-buf fd closed, every MR gone (the reactors finished) */
	EXPECT_EQ(open_fds(), fds0);
	EXPECT_EQ(gdr_stat("allocs"), 0);
	fprintf(stderr, "test_rdma_gdr: passed\n");
	return 0;
}
