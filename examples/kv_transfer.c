/* SPDX-License-Identifier: MIT */
/*
 * kv_transfer: KV-cache blocks from a "prefill" process into a "decode"
 * process's memory, with a per-block "ready" notification.
 *
 * decode   formats caller memory as a pool of KV blocks (plx_pool_*),
 *          registers it for remote writes (plx_mem_register) and
 *          publishes it under a name (plx_mem_name). When prefill
 *          connects, it takes a buffer from the pool for every block of
 *          the request and sends prefill the table of their offsets.
 *          Each block's arrival is announced by the write_imm
 *          notification (plx_tcp_config.imm_cb, imm = block id); the loop
 *          then checks the block's contents and returns it to the pool.
 * prefill  fills its own registered pool with the blocks (a pattern
 *          derived from the block id and a seed), finds decode's pool by
 *          name (plx_ep_resolve), receives the offset table, and writes
 *          every block with plx_ep_write_imm (imm = block id), keeping a
 *          window of writes in flight.
 *
 * --memory cuda puts both pools in CUDA device memory (cudaMalloc), as a
 * KV cache on a GPU is: the pool's free stack stays in host memory
 * (plx_pool_init_split), each side attaches the CUDA transport with a
 * bounce pool, prefill fills its blocks with cudaMemcpy and decode copies
 * each block back to check it. The writes are staged through the bounce
 * buffers on both sides (docs/cuda.md). Without a CUDA device it exits 77;
 * --cuda-library (or PLX_CUDA_LIBRARY) names the runtime (default:
 * libcudart.so.13, .12, .so).
 *
 *   kv_transfer [--blocks N] [--block-size BYTES] [--window W] [--seed S]
 *               [--memory host|cuda] [--cuda-library PATH]
 *          one command: decode here (CPU 0), prefill in a forked child
 *          (CPU 1)
 *   kv_transfer --role decode [--port P] [options]
 *   kv_transfer --role prefill --host ADDR --port P [options]
 *          two processes (both must be given the same options)
 *
 * Prints blocks/s and GB/s on each side and "all N blocks verified".
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pollux/cuda.h"
#include "pollux/pollux.h"
#include "pollux/tcp.h"

#define POOL_NAME "kv/decode/pool0"
#define TAG_TABLE 0x7ab1eull
#define RUN_NS 60000000000ull	  /* a transfer must finish within 60 s */
#define CONNECT_NS 10000000000ull /* decode waits this long for prefill */
#define MAX_WINDOW 256
#define DEFAULT_PORT 18516
#define BOUNCE_BYTES (64u << 20) /* --memory cuda: bounce pool per side */

struct params {
	uint32_t blocks;
	size_t block_size;
	uint32_t window;
	uint64_t seed;
	int cuda;	      /* --memory cuda */
	const char *cuda_lib; /* --cuda-library, or NULL */
};

/* The contents of block @id: one 64-bit word per 8 bytes. */
static uint64_t pattern(const struct params *p, uint32_t id, size_t word)
{
	uint64_t x = p->seed ^ ((uint64_t)id << 32) ^ word;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static void fill(const struct params *p, uint8_t *blk, uint32_t id)
{
	for (size_t w = 0; w < p->block_size / 8; w++) {
		uint64_t v = pattern(p, id, w);

		memcpy(blk + w * 8, &v, 8);
	}
}

static int check(const struct params *p, const uint8_t *blk, uint32_t id)
{
	for (size_t w = 0; w < p->block_size / 8; w++) {
		uint64_t v = pattern(p, id, w), got;

		memcpy(&got, blk + w * 8, 8);
		if (got != v)
			return -1;
	}
	return 0;
}

/*
 * Zero @len bytes at @mem twice: through the kernel (read() from
 * /dev/zero), then from user space. Both fault every page in; under some
 * hypervisors the first access to a page from kernel mode and the first
 * from user mode each trap on their own. On the development VM a first
 * pass of TCP over a fresh 128 MiB buffer that only user space had
 * written ran at 0.2-0.5 GB/s and later passes at 2.1-4.3 GB/s, for raw
 * sockets as for pollux (docs/benchmarks.md, "Examples").
 */
static void prefault(uint8_t *mem, size_t len)
{
	int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	size_t off = 0;

	while (fd >= 0 && off < len) {
		size_t n = len - off < (1u << 20) ? len - off : 1u << 20;
		ssize_t k = read(fd, mem + off, n);

		if (k <= 0)
			break;
		off += (size_t)k;
	}
	if (fd >= 0)
		close(fd);
	memset(mem, 0, len);
}

/* ---- the block pool: host or CUDA device memory ------------------------ */

/* The runtime calls the example makes itself (not through pollux),
 * declared here so that it builds without the CUDA headers: cudaError_t is
 * an int-sized enum, 0 on success; cudaMemcpyKind 1 = host to device,
 * 2 = device to host. */
typedef int (*cu_malloc_fn)(void **p, size_t n);
typedef int (*cu_free_fn)(void *p);
typedef int (*cu_memcpy_fn)(void *dst, const void *src, size_t n, int kind);
typedef int (*cu_host_register_fn)(void *p, size_t n, unsigned int flags);
typedef int (*cu_host_unregister_fn)(void *p);
#define CU_H2D 1
#define CU_D2H 2

static cu_malloc_fn cu_malloc;
static cu_free_fn cu_free;
static cu_memcpy_fn cu_memcpy;
static cu_host_register_fn cu_host_register;
static cu_host_unregister_fn cu_host_unregister;

/* The runtime pollux is given too (plx_cuda_config.library): @lib, else
 * the default names. */
static int load_runtime(const char *lib)
{
	static const char *const names[] = {"libcudart.so.13",
					    "libcudart.so.12", "libcudart.so"};
	void *h = lib ? dlopen(lib, RTLD_NOW | RTLD_LOCAL) : NULL;

	for (size_t i = 0; !lib && !h && i < 3; i++)
		h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return -1;
	}
	*(void **)&cu_malloc = dlsym(h, "cudaMalloc");
	*(void **)&cu_free = dlsym(h, "cudaFree");
	*(void **)&cu_memcpy = dlsym(h, "cudaMemcpy");
	*(void **)&cu_host_register = dlsym(h, "cudaHostRegister");
	*(void **)&cu_host_unregister = dlsym(h, "cudaHostUnregister");
	if (!cu_malloc || !cu_free || !cu_memcpy || !cu_host_register ||
	    !cu_host_unregister) {
		fprintf(stderr, "cudaMalloc, cudaFree, cudaMemcpy or "
				"cudaHostRegister missing\n");
		return -1;
	}
	return 0;
}

struct kvmem {
	struct plx_pool pool;
	uint8_t *bufs;	 /* the blocks: host or device memory */
	size_t len;	 /* bytes at bufs, registered as one region */
	int cuda;	 /* bufs is device memory */
	uint32_t *stack; /* device pool: its free stack, in host memory */
	uint8_t *host;	 /* device pool: one block's bytes in host memory,
			  * pinned (a copy from the device into pageable
			  * memory goes through the driver's own buffer, and
			  * decode's checks then slowed the transfer) */
	int host_pinned;
	uint8_t *bounce; /* device pool: the CUDA transport's bounce pool */
	struct plx_region breg;
};

/* Caller memory for a pool of p->blocks blocks, formatted. */
static int pool_make(struct kvmem *m, const struct params *p)
{
	size_t hlen = (p->block_size + 4095) & ~(size_t)4095;
	int rc;

	memset(m, 0, sizeof(*m));
	m->cuda = p->cuda;
	if (!m->cuda) {
		m->len = plx_pool_memsize(p->block_size, p->blocks);
		m->bufs = m->len ? aligned_alloc(4096,
						 (m->len + 4095) & ~4095ul) :
				   NULL;
		if (!m->bufs) {
			fprintf(stderr, "out of memory for the pool\n");
			return -1;
		}
		/* touch every page now: a page fault on the data path costs
		 * more than the copy (huge pages would do as well) */
		prefault(m->bufs, m->len);
		rc = plx_pool_init(&m->pool, m->bufs, m->len, p->block_size,
				   p->blocks);
	} else {
		/* the blocks on the GPU, the pool's bookkeeping on the host:
		 * pollux never touches the buffers of a split pool */
		m->len = plx_pool_bufs_memsize(p->block_size, p->blocks);
		m->stack = calloc(p->blocks, sizeof(*m->stack));
		m->host = aligned_alloc(4096, hlen);
		m->bounce = aligned_alloc(4096, BOUNCE_BYTES);
		if (!m->len || !m->stack || !m->host || !m->bounce ||
		    cu_malloc((void **)&m->bufs, m->len) || !m->bufs) {
			fprintf(stderr, "out of memory for the pool\n");
			return -1;
		}
		prefault(m->bounce, BOUNCE_BYTES);
		prefault(m->host, hlen);
		m->host_pinned = !cu_host_register(m->host, hlen, 0);
		rc = plx_pool_init_split(&m->pool, m->bufs, m->len,
					 p->block_size, p->blocks, m->stack);
	}
	if (rc) {
		fprintf(stderr, "plx_pool_init: %s\n", plx_strerror(rc));
		return -1;
	}
	return 0;
}

/* Device pool: attach the CUDA transport (after TCP, before the pool is
 * registered, so that the registration sees device memory). */
static int pool_attach(struct kvmem *m, struct plx_reactor *r,
		       const struct params *p)
{
	struct plx_cuda_config cc;
	int rc;

	if (!m->cuda)
		return 0;
	rc = plx_mem_register(r, &m->breg, m->bounce, BOUNCE_BYTES, 0);
	if (!rc) {
		plx_cuda_config_init(&cc);
		cc.library = p->cuda_lib;
		cc.bounce = &m->breg;
		rc = plx_cuda_init(r, &cc);
	}
	return rc;
}

/* Device pool: give the bounce region back (refused while staging is in
 * use), before plx_reactor_fini(). */
static void pool_detach(struct kvmem *m, struct plx_reactor *r)
{
	uint64_t end = plx_now_ns() + 5000000000ull;

	while (m->breg.plx_key &&
	       plx_mem_deregister(r, &m->breg) == PLX_EBUSY &&
	       plx_now_ns() < end)
		plx_reactor_poll(r);
}

/* Device pool: the registered pool must be known as device memory. */
static int pool_registered(struct kvmem *m, struct plx_reactor *r,
			   struct plx_region *reg)
{
	if (m->cuda && plx_cuda_region_path(r, reg) != PLX_CUDA_PATH_STAGING) {
		fprintf(stderr, "the pool is not known as device memory\n");
		return PLX_EINVAL;
	}
	return 0;
}

/* Device pool: what went through the bounce buffers. Every block must
 * have been copied @dir (CU_D2H: out of the pool, CU_H2D: into it). */
static int pool_staged(struct kvmem *m, struct plx_reactor *r, const char *who,
		       uint32_t blocks, int dir)
{
	struct plx_cuda_stats st;
	uint64_t copies, bytes;

	if (!m->cuda)
		return 0;
	if (plx_cuda_stats(r, &st))
		return -1;
	copies = dir == CU_D2H ? st.copies_d2h : st.copies_h2d;
	bytes = dir == CU_D2H ? st.bytes_d2h : st.bytes_h2d;
	printf("%s: through the bounce buffers, %" PRIu64
	       " %s copies of %" PRIu64 " bytes in all, %" PRIu64
	       " waits for a slot, %" PRIu64 " copy errors\n",
	       who, copies, dir == CU_D2H ? "device-to-host" : "host-to-device",
	       bytes, st.slot_waits, st.copy_errors);
	if (copies < blocks || st.copy_errors) {
		fprintf(stderr, "%s: the blocks were not staged\n", who);
		return -1;
	}
	return 0;
}

/* Write block @id's contents into @blk (in the pool's memory). */
static int block_fill(struct kvmem *m, const struct params *p, uint8_t *blk,
		      uint32_t id)
{
	if (!m->cuda) {
		fill(p, blk, id);
		return 0;
	}
	fill(p, m->host, id);
	return cu_memcpy(blk, m->host, p->block_size, CU_H2D) ? -1 : 0;
}

/* 0 when @blk (in the pool's memory) holds block @id's contents. */
static int block_check(struct kvmem *m, const struct params *p,
		       const uint8_t *blk, uint32_t id)
{
	if (!m->cuda)
		return check(p, blk, id);
	if (cu_memcpy(m->host, blk, p->block_size, CU_D2H))
		return -1;
	return check(p, m->host, id);
}

/* After plx_reactor_fini(): nothing of it is registered any more. */
static void pool_free(struct kvmem *m)
{
	if (m->cuda) {
		if (m->bufs)
			cu_free(m->bufs);
		if (m->host_pinned)
			cu_host_unregister(m->host);
	} else {
		free(m->bufs);
	}
	free(m->stack);
	free(m->host);
	free(m->bounce);
}

/* One busy-polling process per CPU, when there are two. */
static void pin(int cpu)
{
	cpu_set_t set;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static int reactor_done(struct plx_reactor *r)
{
	uint64_t end = plx_now_ns() + 5000000000ull;
	int rc;

	plx_tcp_shutdown(r);
	while ((rc = plx_reactor_fini(r)) == PLX_EBUSY && plx_now_ns() < end)
		plx_reactor_poll(r);
	if (rc)
		fprintf(stderr, "plx_reactor_fini: %s\n", plx_strerror(rc));
	return rc ? 1 : 0;
}

/* ---- decode ------------------------------------------------------------- */

struct decode {
	struct plx_reactor r;
	const struct params *p;
	struct kvmem m;
	struct plx_ep *ep; /* prefill */
	int down;
	uint8_t **slot;	 /* block id -> its buffer */
	uint32_t *ready; /* ids announced, not yet checked */
	uint32_t nready;
	uint32_t arrived, verified, bad;
	uint64_t first_ns, last_ns;
};

static void decode_event(struct plx_reactor *r, struct plx_ep *ep, int event,
			 int status, void *arg)
{
	struct decode *d = arg;

	(void)r;
	if (event == PLX_EP_ACCEPTED && !d->ep)
		d->ep = ep;
	if (event == PLX_EP_DOWN && ep == d->ep) {
		d->down = 1;
		if (d->verified < d->p->blocks)
			fprintf(stderr, "decode: prefill went away: %s\n",
				plx_strerror(status));
	}
}

/* "Block ready": the data is in place. Only note it here; the loop does
 * the checking, so the notification handler stays short. */
static void block_ready(struct plx_reactor *r, struct plx_ep *ep, uint32_t imm,
			uint64_t addr, uint64_t len, void *arg)
{
	struct decode *d = arg;
	uint64_t now = plx_now_ns();

	(void)r;
	(void)ep;
	if (imm >= d->p->blocks || !d->slot[imm] ||
	    addr != (uint64_t)(uintptr_t)d->slot[imm] ||
	    len != d->p->block_size) {
		fprintf(stderr,
			"decode: unexpected block %u (%" PRIu64 " bytes)\n",
			imm, len);
		d->bad++;
		return;
	}
	if (!d->arrived++)
		d->first_ns = now;
	d->last_ns = now;
	d->ready[d->nready++] = imm;
}

static int run_decode(const struct params *p, const char *addr, uint16_t port,
		      int port_fd)
{
	static struct decode d;
	struct plx_tcp_config cfg;
	struct plx_region reg;
	struct plx_op op;
	uint64_t *table = calloc(p->blocks, sizeof(*table));
	uint64_t end;
	uint16_t bound = 0;
	int rc, sent = 0, status = 1, registered = 0;

	memset(&d, 0, sizeof(d));
	d.p = p;
	d.slot = calloc(p->blocks, sizeof(*d.slot));
	d.ready = calloc(p->blocks, sizeof(*d.ready));
	if (!table || !d.slot || !d.ready || pool_make(&d.m, p))
		goto out_free;
	rc = plx_reactor_init(&d.r, NULL);
	if (rc) {
		fprintf(stderr, "plx_reactor_init: %s\n", plx_strerror(rc));
		goto out_free;
	}
	plx_tcp_config_init(&cfg);
	cfg.event_cb = decode_event;
	cfg.imm_cb = block_ready;
	cfg.cb_arg = &d;
	rc = plx_tcp_init(&d.r, &cfg);
	if (!rc)
		rc = pool_attach(&d.m, &d.r, p);
	/* the whole pool memory is one region; peers may only write it */
	if (!rc)
		rc = plx_mem_register(&d.r, &reg, d.m.bufs, d.m.len,
				      PLX_ACCESS_REMOTE_WRITE);
	registered = !rc;
	if (!rc)
		rc = pool_registered(&d.m, &d.r, &reg);
	if (!rc)
		rc = plx_mem_name(&d.r, &reg, POOL_NAME);
	if (!rc)
		rc = plx_tcp_listen(&d.r, addr, port, &bound);
	if (rc) {
		fprintf(stderr, "decode set-up: %s\n", plx_strerror(rc));
		goto out_reactor;
	}
	if (port_fd >= 0) {
		/* tell the forked prefill where to connect */
		if (write(port_fd, &bound, sizeof(bound)) != sizeof(bound))
			goto out_reactor;
		close(port_fd);
		port_fd = -1;
	} else {
		printf("decode: pool \"%s\" (%u blocks of %zu bytes in %s "
		       "memory), listening on port %u\n",
		       POOL_NAME, p->blocks, p->block_size,
		       p->cuda ? "device" : "host", bound);
		fflush(stdout);
	}

	/* the request's blocks: one pool buffer each */
	for (uint32_t i = 0; i < p->blocks; i++) {
		d.slot[i] = plx_pool_get(&d.m.pool);
		if (!d.slot[i])
			goto out_reactor;
		table[i] = (uint64_t)(d.slot[i] - d.m.bufs);
	}
	plx_op_init(&op, NULL, NULL);
	end = plx_now_ns() + CONNECT_NS;
	while (!d.ep && plx_now_ns() < end)
		plx_reactor_poll(&d.r);
	if (!d.ep) {
		fprintf(stderr, "decode: no prefill connected\n");
		goto out_reactor;
	}
	rc = plx_ep_send(d.ep, &op, table, p->blocks * sizeof(*table),
			 TAG_TABLE);
	if (rc) {
		fprintf(stderr, "decode: send table: %s\n", plx_strerror(rc));
		goto out_reactor;
	}
	sent = 1;
	end = plx_now_ns() + RUN_NS;
	while (d.verified + d.bad < p->blocks && !d.down &&
	       plx_now_ns() < end) {
		plx_reactor_poll(&d.r);
		while (d.nready) {
			uint32_t id = d.ready[--d.nready];

			if (block_check(&d.m, p, d.slot[id], id)) {
				fprintf(stderr, "decode: block %u corrupt\n",
					id);
				d.bad++;
			} else {
				d.verified++;
			}
			/* consumed: the buffer goes back to the pool */
			plx_pool_put(&d.m.pool, d.slot[id]);
			d.slot[id] = NULL;
		}
	}
	if (d.verified == p->blocks && !d.bad) {
		double s = (double)(d.last_ns - d.first_ns) / 1e9;

		printf("decode: all %u blocks verified; first to last "
		       "notification %.3f ms",
		       p->blocks, s * 1e3);
		if (s > 0)
			printf(" (%.0f blocks/s, %.2f GB/s)",
			       (double)(p->blocks - 1) / s,
			       (double)(p->blocks - 1) * (double)p->block_size /
				       s / 1e9);
		printf("\n");
		status = pool_staged(&d.m, &d.r, "decode", p->blocks, CU_H2D) ?
				 1 :
				 0;
	} else {
		fprintf(stderr, "decode: %u of %u blocks verified, %u bad\n",
			d.verified, p->blocks, d.bad);
	}
	/* let prefill see its last completions before we go */
	end = plx_now_ns() + 2000000000ull;
	while (!d.down && plx_now_ns() < end)
		plx_reactor_poll(&d.r);
out_reactor:
	while (sent && !plx_req_test_mt(&op.req))
		plx_reactor_poll(&d.r);
	if (registered)
		plx_mem_deregister(&d.r, &reg);
	pool_detach(&d.m, &d.r);
	if (reactor_done(&d.r))
		status = 1;
out_free:
	if (port_fd >= 0)
		close(port_fd);
	pool_free(&d.m);
	free(d.slot);
	free(d.ready);
	free(table);
	return status;
}

/* ---- prefill ------------------------------------------------------------ */

struct prefill {
	struct plx_reactor r;
	int connected, down;
	struct plx_op ops[MAX_WINDOW];
	uint32_t free_ops[MAX_WINDOW];
	uint32_t nfree;
	uint32_t completed, failed;
	int finished; /* every block written: a close is expected */
};

static void prefill_event(struct plx_reactor *r, struct plx_ep *ep, int event,
			  int status, void *arg)
{
	struct prefill *f = arg;

	(void)r;
	(void)ep;
	if (event == PLX_EP_CONNECTED)
		f->connected = 1;
	if (event == PLX_EP_DOWN && !f->down) {
		f->down = 1;
		if (!f->finished)
			fprintf(stderr, "prefill: decode went away: %s\n",
				plx_strerror(status));
	}
}

static void write_done(struct plx_reactor *r, struct plx_req *req)
{
	struct prefill *f = req->user;
	struct plx_op *op = (struct plx_op *)req;

	(void)r;
	if (req->status) {
		fprintf(stderr, "prefill: write_imm: %s\n",
			plx_strerror(req->status));
		f->failed++;
	}
	f->completed++;
	f->free_ops[f->nfree++] = (uint32_t)(op - f->ops);
}

/* Wait (polling) for a handle-mode op. */
static int wait_op(struct plx_reactor *r, struct plx_op *op, uint64_t ns)
{
	uint64_t end = plx_now_ns() + ns;

	while (!plx_req_test_mt(&op->req) && plx_now_ns() < end)
		plx_reactor_poll(r);
	if (plx_req_test_mt(&op->req))
		return op->req.status;
	plx_op_cancel(r, op);
	while (!plx_req_test_mt(&op->req))
		plx_reactor_poll(r);
	return PLX_ETIMEDOUT;
}

static int run_prefill(const struct params *p, const char *host, uint16_t port)
{
	static struct prefill f;
	struct plx_tcp_config cfg;
	struct kvmem m;
	struct plx_region reg;
	struct plx_desc dst;
	struct plx_ep *ep;
	struct plx_op rop, nop;
	uint64_t *table = calloc(p->blocks, sizeof(*table));
	uint8_t **blk = calloc(p->blocks, sizeof(*blk));
	uint64_t t0, t1, end;
	uint32_t next = 0;
	int rc, status = 1, registered = 0;

	memset(&f, 0, sizeof(f));
	memset(&m, 0, sizeof(m));
	if (!table || !blk || pool_make(&m, p))
		goto out_free;
	/* the blocks this prefill produced */
	for (uint32_t i = 0; i < p->blocks; i++) {
		blk[i] = plx_pool_get(&m.pool);
		if (block_fill(&m, p, blk[i], i)) {
			fprintf(stderr, "prefill: cudaMemcpy failed\n");
			goto out_free;
		}
	}
	rc = plx_reactor_init(&f.r, NULL);
	if (rc) {
		fprintf(stderr, "plx_reactor_init: %s\n", plx_strerror(rc));
		goto out_free;
	}
	plx_tcp_config_init(&cfg);
	cfg.event_cb = prefill_event;
	cfg.cb_arg = &f;
	rc = plx_tcp_init(&f.r, &cfg);
	if (!rc)
		rc = pool_attach(&m, &f.r, p);
	/* registered like decode's: an RDMA transport would need it, and
	 * device memory is known as such from its registration */
	if (!rc)
		rc = plx_mem_register(&f.r, &reg, m.bufs, m.len,
				      PLX_ACCESS_REMOTE_READ);
	registered = !rc;
	if (!rc)
		rc = pool_registered(&m, &f.r, &reg);
	if (!rc)
		rc = plx_tcp_connect(&f.r, host, port, &ep);
	if (rc) {
		fprintf(stderr, "prefill set-up: %s\n", plx_strerror(rc));
		goto out_reactor;
	}
	/* both may be submitted before the connection is up */
	plx_op_init(&rop, NULL, NULL);
	plx_op_init(&nop, NULL, NULL);
	rc = plx_ep_recv(ep, &rop, table, p->blocks * sizeof(*table), TAG_TABLE,
			 ~0ull);
	if (!rc)
		rc = plx_ep_resolve(ep, &nop, POOL_NAME, &dst);
	if (rc) {
		fprintf(stderr, "prefill: %s\n", plx_strerror(rc));
		goto out_reactor;
	}
	rc = wait_op(&f.r, &nop, CONNECT_NS);
	if (rc) {
		fprintf(stderr, "prefill: resolve \"%s\": %s\n", POOL_NAME,
			plx_strerror(rc));
		wait_op(&f.r, &rop, 0);
		goto out_reactor;
	}
	rc = wait_op(&f.r, &rop, CONNECT_NS);
	if (rc || rop.req.bytes != p->blocks * sizeof(*table)) {
		fprintf(stderr, "prefill: block table: %s\n",
			rc ? plx_strerror(rc) : "wrong size");
		goto out_reactor;
	}
	for (uint32_t i = 0; i < p->window; i++) {
		plx_op_init(&f.ops[i], write_done, &f);
		f.free_ops[f.nfree++] = i;
	}
	t0 = plx_now_ns();
	end = t0 + RUN_NS;
	while (f.completed < p->blocks && !f.down && plx_now_ns() < end) {
		if (f.nfree && next < p->blocks) {
			/* one batch: one sendmsg for all we can start */
			plx_ep_batch_begin(ep);
			while (f.nfree && next < p->blocks) {
				uint32_t k = f.free_ops[--f.nfree];

				rc = plx_ep_write_imm(ep, &f.ops[k], blk[next],
						      p->block_size, &dst,
						      table[next], next);
				if (rc) {
					fprintf(stderr,
						"prefill: write_imm: %s\n",
						plx_strerror(rc));
					f.free_ops[f.nfree++] = k;
					f.down = 1;
					break;
				}
				next++;
			}
			plx_ep_batch_end(ep);
		}
		plx_reactor_poll(&f.r);
	}
	t1 = plx_now_ns();
	/* every write in flight completes (or fails) before the blocks go */
	while (f.nfree < p->window)
		plx_reactor_poll(&f.r);
	if (f.completed == p->blocks && !f.failed) {
		double s = (double)(t1 - t0) / 1e9;

		printf("prefill: %u blocks of %zu bytes written in %.3f ms: "
		       "%.0f blocks/s, %.2f GB/s (window %u)\n",
		       p->blocks, p->block_size, s * 1e3, (double)p->blocks / s,
		       (double)p->blocks * (double)p->block_size / s / 1e9,
		       p->window);
		status = pool_staged(&m, &f.r, "prefill", p->blocks, CU_D2H) ?
				 1 :
				 0;
		f.finished = 1;
	} else {
		fprintf(stderr, "prefill: %u of %u blocks written, %u failed\n",
			f.completed, p->blocks, f.failed);
	}
	plx_ep_close(ep);
out_reactor:
	if (registered)
		plx_mem_deregister(&f.r, &reg);
	pool_detach(&m, &f.r);
	if (reactor_done(&f.r))
		status = 1;
out_free:
	pool_free(&m);
	free(table);
	free(blk);
	return status;
}

/* ---- main --------------------------------------------------------------- */

/*
 * --memory cuda: 0 when a CUDA device can be used, 77 (skip) when there is
 * none, 1 when the runtime lacks what this example calls. The probe runs
 * in a child process: a process that initialised CUDA must not fork a
 * child that uses it, and the one-command mode forks the prefill later.
 */
static int cuda_usable(const char *lib)
{
	const char *why = NULL;
	pid_t child = fork();
	int st;

	if (child < 0)
		return 1;
	if (child == 0)
		_exit(plx_cuda_probe(lib, &why) ? 77 : 0);
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st))
		return 1;
	if (WEXITSTATUS(st) == 77) {
		plx_cuda_probe(lib, &why); /* again here, only to say why */
		fprintf(stderr, "kv_transfer: no CUDA device (%s)\n",
			why ? why : "?");
		return 77;
	}
	return WEXITSTATUS(st) || load_runtime(lib) ? 1 : 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	if (*end)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	struct params p = {.blocks = 512,
			   .block_size = 128u << 10,
			   .window = 32,
			   .seed = 0x5eed};
	const char *role = NULL, *host = NULL;
	uint64_t v, port = 0;
	int have_port = 0, fds[2], st, rc;
	pid_t child;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : "";

		if (i + 1 >= argc)
			goto usage;
		i++;
		if (!strcmp(a, "--role")) {
			role = val;
		} else if (!strcmp(a, "--memory") &&
			   (!strcmp(val, "host") || !strcmp(val, "cuda"))) {
			p.cuda = !strcmp(val, "cuda");
		} else if (!strcmp(a, "--cuda-library")) {
			p.cuda_lib = val;
		} else if (!strcmp(a, "--host")) {
			host = val;
		} else if (parse_u64(val, &v)) {
			goto usage;
		} else if (!strcmp(a, "--port") && v <= 65535) {
			port = v;
			have_port = 1;
		} else if (!strcmp(a, "--blocks") && v && v <= 65536) {
			p.blocks = (uint32_t)v;
		} else if (!strcmp(a, "--block-size") && v >= 8 &&
			   v <= (64u << 20) && !(v % 8)) {
			p.block_size = v;
		} else if (!strcmp(a, "--window") && v && v <= MAX_WINDOW) {
			p.window = (uint32_t)v;
		} else if (!strcmp(a, "--seed")) {
			p.seed = v;
		} else {
			goto usage;
		}
	}
	if (!p.cuda_lib && getenv("PLX_CUDA_LIBRARY") &&
	    *getenv("PLX_CUDA_LIBRARY"))
		p.cuda_lib = getenv("PLX_CUDA_LIBRARY");
	if (p.cuda && p.block_size > BOUNCE_BYTES / 2) {
		/* a write_imm from or into device memory is staged in one
		 * run of bounce slots, at most half the pool (docs/cuda.md) */
		fprintf(stderr, "--memory cuda: blocks of at most %u MiB\n",
			BOUNCE_BYTES >> 21);
		goto usage;
	}
	if (p.cuda) {
		rc = cuda_usable(p.cuda_lib);
		if (rc)
			return rc;
	}
	if (role && !strcmp(role, "decode") && !host)
		return run_decode(&p, "0.0.0.0",
				  have_port ? (uint16_t)port : DEFAULT_PORT,
				  -1);
	if (role && !strcmp(role, "prefill") && host && have_port)
		return run_prefill(&p, host, (uint16_t)port);
	if (role || host || have_port)
		goto usage;

	/* one command: fork the prefill; it learns the port through a pipe.
	 * Each process creates its reactor after the fork. */
	printf("kv_transfer: %u blocks of %zu bytes in %s memory, window %u, "
	       "seed %#llx\n",
	       p.blocks, p.block_size, p.cuda ? "device" : "host", p.window,
	       (unsigned long long)p.seed);
	fflush(stdout);
	if (pipe(fds))
		return 1;
	child = fork();
	if (child < 0)
		return 1;
	if (child == 0) {
		uint16_t bound;

		close(fds[1]);
		if (read(fds[0], &bound, sizeof(bound)) != sizeof(bound))
			_exit(1);
		close(fds[0]);
		pin(1);
		rc = run_prefill(&p, "127.0.0.1", bound);
		fflush(stdout);
		_exit(rc);
	}
	close(fds[0]);
	pin(0);
	rc = run_decode(&p, "127.0.0.1", 0, fds[1]);
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st) ||
	    WEXITSTATUS(st))
		rc = 1;
	return rc;
usage:
	fprintf(stderr,
		"usage: %s [--blocks N] [--block-size BYTES] [--window W] "
		"[--seed S]\n"
		"          [--memory host|cuda] [--cuda-library PATH]\n"
		"       %s --role decode [--port P] [options]\n"
		"       %s --role prefill --host ADDR --port P [options]\n",
		argv[0], argv[0], argv[0]);
	return 2;
}
