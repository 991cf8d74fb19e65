/* SPDX-License-Identifier: MIT */
/*
 * plx_bench_cuda: bandwidth of writes and reads between CUDA device memory
 * on two reactors (staged through pinned bounce slots, docs/cuda.md),
 * beside the same ops between host memory, in one run.
 *
 * A server reactor on CPU 0 and a client reactor on CPU 1, each busy-polled
 * by its own thread, connected over loopback TCP; each has the CUDA
 * transport with a bounce pool (--pool, --chunk). Each side registers a
 * cudaMalloc()ed buffer and a host buffer of the largest size. For every
 * op, size and window the client keeps WINDOW ops in flight for --time
 * seconds: device to remote device, then host to remote host, alternated
 * for --rounds rounds; the median of each and their ratio are printed.
 * Before it is measured, one transfer of each size is checked byte for byte
 * (device memory copied back with cudaMemcpy()). The staging counters
 * (plx_cuda_stats) show that the device ops were staged.
 *
 * Without a device (plx_cuda_probe()) it says why and exits 77. The CUDA
 * runtime is the default (libcudart.so.13, .12, libcudart.so) or the one
 * named by --cuda-library or PLX_CUDA_LIBRARY (ctest runs it over the test
 * double, whose figures mean nothing).
 *
 *   plx_bench_cuda [--ops write,read] [--sizes LIST] [--window LIST]
 *                  [--time S] [--rounds R] [--chunk BYTES] [--pool BYTES]
 *                  [--cc NAME] [--cuda-library PATH] [--quick]
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pollux/pollux.h"

#define MAX_LIST 16
#define MAX_WINDOW 64
#define MAX_INFLIGHT_BYTES (256ull << 20) /* window capped to this */
#define MAX_ROUNDS 16

/* The three runtime calls the tool makes itself (not through pollux),
 * declared here so that it builds without the CUDA headers: cudaError_t
 * is an int-sized enum, 0 on success; cudaMemcpyKind 1 = host to device,
 * 2 = device to host. */
typedef int (*cu_malloc_fn)(void **p, size_t n);
typedef int (*cu_free_fn)(void *p);
typedef int (*cu_memcpy_fn)(void *dst, const void *src, size_t n, int kind);
#define CU_H2D 1
#define CU_D2H 2

static cu_malloc_fn cu_malloc;
static cu_free_fn cu_free;
static cu_memcpy_fn cu_memcpy;

enum {
	MEM_DEV,
	MEM_HOST
};
enum {
	OP_WRITE,
	OP_READ
};

static struct {
	size_t sizes[MAX_LIST];
	int nsizes;
	unsigned windows[MAX_LIST];
	int nwindows;
	int ops; /* bit per OP_ */
	double time;
	int rounds;
	uint32_t chunk;
	size_t pool;
	const char *cc, *lib;
} opt = {.time = 0.3, .rounds = 3, .chunk = 1u << 20, .pool = 64u << 20};

static size_t g_max; /* largest size: each buffer's length */

/* One reactor with TCP, CUDA staging, a device and a host buffer. */
struct side {
	struct plx_reactor r;
	uint8_t *bounce, *host, *dev;
	struct plx_region breg, hreg, dreg;
};

static struct side S, C;
static struct plx_desc g_desc[2]; /* the server's, by MEM_ */
static uint16_t g_port;
static int g_ready, g_stop, g_connected;
static struct plx_cuda_stats g_srv_stats; /* the server's, at its end */

static void die(const char *what, int rc)
{
	fprintf(stderr, "plx_bench_cuda: %s: %s\n", what,
		rc ? plx_strerror(rc) : "failed");
	exit(1);
}

static void log_cb(void *arg, int level, const char *msg)
{
	(void)arg;
	if (level <= PLX_LOG_WARN)
		fprintf(stderr, "plx_bench_cuda: pollux: %s\n", msg);
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void load_runtime(void)
{
	static const char *const names[] = {"libcudart.so.13",
					    "libcudart.so.12", "libcudart.so"};
	void *h = opt.lib ? dlopen(opt.lib, RTLD_NOW | RTLD_LOCAL) : NULL;

	for (size_t i = 0; !opt.lib && !h && i < 3; i++)
		h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "plx_bench_cuda: dlopen: %s\n", dlerror());
		exit(1);
	}
	*(void **)&cu_malloc = dlsym(h, "cudaMalloc");
	*(void **)&cu_free = dlsym(h, "cudaFree");
	*(void **)&cu_memcpy = dlsym(h, "cudaMemcpy");
	if (!cu_malloc || !cu_free || !cu_memcpy)
		die("cudaMalloc, cudaFree or cudaMemcpy missing", 0);
}

static void ep_event(struct plx_reactor *r, struct plx_ep *ep, int event,
		     int status, void *arg)
{
	(void)r;
	(void)ep;
	(void)arg;
	if (event == PLX_EP_CONNECTED)
		g_connected = 1;
	else if ((event == PLX_EP_DOWN || event == PLX_EP_CLOSED) &&
		 !__atomic_load_n(&g_stop, __ATOMIC_ACQUIRE))
		die("the connection went down", status);
}

/* Reactor, TCP, CUDA with its bounce pool, and the two buffers. */
static void side_up(struct side *s, int listen)
{
	struct plx_reactor_config rc;
	struct plx_tcp_config tc;
	struct plx_cuda_config cc;
	int err;

	plx_reactor_config_init(&rc);
	rc.log_cb = log_cb;
	rc.log_level = PLX_LOG_WARN;
	if ((err = plx_reactor_init(&s->r, &rc)))
		die("plx_reactor_init", err);
	plx_tcp_config_init(&tc);
	tc.event_cb = ep_event;
	tc.congestion = opt.cc;
	if ((err = plx_tcp_init(&s->r, &tc)))
		die("plx_tcp_init", err);
	if (listen && (err = plx_tcp_listen(&s->r, "127.0.0.1", 0, &g_port)))
		die("plx_tcp_listen", err);
	s->bounce = aligned_alloc(4096, opt.pool);
	s->host = aligned_alloc(4096, g_max);
	if (!s->bounce || !s->host)
		die("out of memory", 0);
	memset(s->host, 0, g_max); /* faulted in before it is measured */
	if ((err = plx_mem_register(&s->r, &s->breg, s->bounce, opt.pool, 0)))
		die("plx_mem_register (bounce pool)", err);
	plx_cuda_config_init(&cc);
	cc.library = opt.lib;
	cc.bounce = &s->breg;
	cc.chunk = opt.chunk;
	if ((err = plx_cuda_init(&s->r, &cc)))
		die("plx_cuda_init", err);
	if (cu_malloc((void **)&s->dev, g_max) || !s->dev)
		die("cudaMalloc", 0);
	if ((err = plx_mem_register(&s->r, &s->dreg, s->dev, g_max,
				    PLX_ACCESS_ALL)) ||
	    (err = plx_mem_register(&s->r, &s->hreg, s->host, g_max,
				    PLX_ACCESS_ALL)))
		die("plx_mem_register", err);
	if (plx_cuda_region_path(&s->r, &s->dreg) != PLX_CUDA_PATH_STAGING)
		die("the device buffer is not staged", 0);
}

static void side_down(struct side *s)
{
	plx_mem_deregister(&s->r, &s->dreg);
	plx_mem_deregister(&s->r, &s->hreg);
	plx_tcp_shutdown(&s->r);
	while (plx_reactor_fini(&s->r) == PLX_EBUSY) {
		plx_reactor_poll(&s->r);
		if (s->breg.plx_key)
			plx_mem_deregister(&s->r, &s->breg);
	}
	cu_free(s->dev);
	free(s->host);
	free(s->bounce);
}

static void *server(void *arg)
{
	(void)arg;
	pin(0);
	side_up(&S, 1);
	if (plx_mem_desc(&S.r, &S.dreg, &g_desc[MEM_DEV]) ||
	    plx_mem_desc(&S.r, &S.hreg, &g_desc[MEM_HOST]))
		die("plx_mem_desc", 0);
	__atomic_store_n(&g_ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&g_stop, __ATOMIC_ACQUIRE))
		plx_reactor_poll(&S.r);
	plx_cuda_stats(&S.r, &g_srv_stats);
	side_down(&S);
	return NULL;
}

/* ---- the measured loop (client thread) ---------------------------------- */

static struct {
	struct plx_ep *ep;
	int op, mem;
	size_t size;
	int stopping, inflight, err;
	uint64_t bytes; /* completed while measuring */
	struct plx_op ops[MAX_WINDOW];
} M;

static int submit(struct plx_op *op);

static void op_done(struct plx_reactor *r, struct plx_req *req)
{
	(void)r;
	if (req->status < 0) {
		M.err = req->status;
		M.inflight--;
		return;
	}
	M.bytes += M.size;
	if (M.stopping || submit((struct plx_op *)(void *)req))
		M.inflight--;
}

static int submit(struct plx_op *op)
{
	void *local = M.mem == MEM_DEV ? (void *)C.dev : (void *)C.host;
	int rc;

	plx_op_init(op, op_done, NULL);
	if (M.op == OP_WRITE)
		rc = plx_ep_write(M.ep, op, local, M.size, &g_desc[M.mem], 0);
	else
		rc = plx_ep_read(M.ep, op, local, M.size, &g_desc[M.mem], 0);
	if (rc)
		M.err = rc;
	return rc;
}

/* GB/s of @op at @size, @window in flight, between @mem buffers. */
static double measure(int op, int mem, size_t size, unsigned window)
{
	uint64_t t0, t1, b0;

	M.op = op;
	M.mem = mem;
	M.size = size;
	M.stopping = 0;
	M.err = 0;
	M.bytes = 0;
	M.inflight = 0;
	for (unsigned i = 0; i < window; i++) {
		if (submit(&M.ops[i]))
			die("submit", M.err);
		M.inflight++;
	}
	/* the first completions are not measured: the pipeline fills */
	while (M.bytes < (uint64_t)window * size && !M.err)
		plx_reactor_poll(&C.r);
	b0 = M.bytes;
	t0 = plx_now_ns();
	do
		plx_reactor_poll(&C.r);
	while (!M.err && plx_now_ns() - t0 < (uint64_t)(opt.time * 1e9));
	t1 = plx_now_ns();
	b0 = M.bytes - b0;
	M.stopping = 1;
	while (M.inflight > 0)
		plx_reactor_poll(&C.r);
	if (M.err)
		die(op == OP_WRITE ? "plx_ep_write" : "plx_ep_read", M.err);
	return (double)b0 / (double)(t1 - t0); /* bytes/ns = GB/s */
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

/* One op of @size between the device buffers, waited for. */
static void one_op(int op, size_t size)
{
	struct plx_op o;
	int rc;

	plx_op_init(&o, NULL, NULL);
	if (op == OP_WRITE)
		rc = plx_ep_write(M.ep, &o, C.dev, size, &g_desc[MEM_DEV], 0);
	else
		rc = plx_ep_read(M.ep, &o, C.dev, size, &g_desc[MEM_DEV], 0);
	if (rc)
		die("submit", rc);
	while (!plx_req_test_mt(&o.req))
		plx_reactor_poll(&C.r);
	if (o.req.status < 0)
		die(op == OP_WRITE ? "plx_ep_write" : "plx_ep_read",
		    o.req.status);
}

/* One checked transfer of @size each way between the device buffers: a
 * fresh pattern written to the server's, then read back into the
 * client's after that is cleared. The server's buffer is copied with
 * cudaMemcpy() from this thread while no op touches it. */
static void check(size_t size, uint32_t seed)
{
	uint8_t *want = malloc(size), *got = calloc(1, size);

	if (!want || !got)
		die("out of memory", 0);
	fill(want, size, seed);
	for (int op = OP_WRITE; op <= OP_READ; op++) {
		/* the client's buffer holds the pattern for the write and
		 * zeroes (@got, cleared) before the read brings it back */
		if (cu_memcpy(C.dev, op == OP_WRITE ? want : got, size, CU_H2D))
			die("cudaMemcpy to the device", 0);
		one_op(op, size);
		if (cu_memcpy(got, op == OP_WRITE ? S.dev : C.dev, size,
			      CU_D2H))
			die("cudaMemcpy from the device", 0);
		if (memcmp(got, want, size))
			die(op == OP_WRITE ?
				    "a staged write landed wrong bytes" :
				    "a staged read landed wrong bytes",
			    0);
		memset(got, 0, size);
	}
	free(want);
	free(got);
}

/* ---- options ------------------------------------------------------------ */

static int parse_bytes(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'k':
		v <<= 10;
		end++;
		break;
	case 'm':
		v <<= 20;
		end++;
		break;
	case 'g':
		v <<= 30;
		end++;
		break;
	}
	if (*end || !v || v > (1ull << 32))
		return -1;
	*out = v;
	return 0;
}

/* Comma-separated @arg into @out (at most MAX_LIST), each 1..@max. */
static int parse_list(const char *arg, uint64_t max, uint64_t *out)
{
	char buf[256], *save = NULL;
	int n = 0;

	if (strlen(arg) >= sizeof(buf))
		return -1;
	strcpy(buf, arg);
	for (char *t = strtok_r(buf, ",", &save); t;
	     t = strtok_r(NULL, ",", &save))
		if (n == MAX_LIST || parse_bytes(t, &out[n]) || out[n] > max)
			return -1;
		else
			n++;
	return n ? n : -1;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [options]\n"
		"  --ops LIST          write,read (default: both)\n"
		"  --sizes LIST        bytes, k/m/g suffixes (default: "
		"64k,1m,16m,64m)\n"
		"  --window LIST       ops in flight, <= %d (default: 1,16)\n"
		"  --time S            measured seconds per figure (0.3)\n"
		"  --rounds R          alternated rounds, <= %d (3)\n"
		"  --chunk BYTES       plx_cuda_config.chunk (1m)\n"
		"  --pool BYTES        bounce pool per side (64m)\n"
		"  --cc NAME           TCP congestion control (default: the "
		"system's)\n"
		"  --cuda-library P    the CUDA runtime (default: "
		"PLX_CUDA_LIBRARY, else the usual names)\n"
		"  --quick             64k,1m; windows 1,4; 1 round of "
		"0.05 s\n",
		argv0, MAX_WINDOW, MAX_ROUNDS);
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	uint64_t v[MAX_LIST];
	int n;

	opt.lib = getenv("PLX_CUDA_LIBRARY");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : "";
		int takes = 1;

		if (!strcmp(a, "--quick")) {
			opt.time = 0.05;
			opt.rounds = 1;
			opt.nsizes = 2;
			opt.sizes[0] = 64u << 10;
			opt.sizes[1] = 1u << 20;
			opt.nwindows = 2;
			opt.windows[0] = 1;
			opt.windows[1] = 4;
			takes = 0;
		} else if (!strcmp(a, "--ops")) {
			opt.ops = 0;
			if (!strcmp(val, "write") || !strcmp(val, "read") ||
			    !strcmp(val, "write,read") ||
			    !strcmp(val, "read,write"))
				opt.ops = (strstr(val, "write") ? 1 : 0) |
					  (strstr(val, "read") ? 2 : 0);
			else
				usage(argv[0]);
		} else if (!strcmp(a, "--sizes")) {
			if ((n = parse_list(val, 1ull << 30, v)) < 0)
				usage(argv[0]);
			for (opt.nsizes = 0; opt.nsizes < n; opt.nsizes++)
				opt.sizes[opt.nsizes] = v[opt.nsizes];
		} else if (!strcmp(a, "--window")) {
			if ((n = parse_list(val, MAX_WINDOW, v)) < 0)
				usage(argv[0]);
			for (opt.nwindows = 0; opt.nwindows < n; opt.nwindows++)
				opt.windows[opt.nwindows] =
					(unsigned)v[opt.nwindows];
		} else if (!strcmp(a, "--time")) {
			opt.time = atof(val);
			if (!(opt.time > 0 && opt.time <= 60))
				usage(argv[0]);
		} else if (!strcmp(a, "--rounds")) {
			opt.rounds = atoi(val);
			if (opt.rounds < 1 || opt.rounds > MAX_ROUNDS)
				usage(argv[0]);
		} else if (!strcmp(a, "--chunk")) {
			if (parse_bytes(val, v) || v[0] > (256u << 20))
				usage(argv[0]);
			opt.chunk = (uint32_t)v[0];
		} else if (!strcmp(a, "--pool")) {
			if (parse_bytes(val, v))
				usage(argv[0]);
			opt.pool = (size_t)v[0];
		} else if (!strcmp(a, "--cc")) {
			opt.cc = val;
		} else if (!strcmp(a, "--cuda-library")) {
			opt.lib = val;
		} else {
			usage(argv[0]);
		}
		if (takes && i + 1 >= argc)
			usage(argv[0]);
		i += takes;
	}
	if (!opt.ops)
		opt.ops = 3;
	if (!opt.nsizes) {
		static const size_t def[] = {64u << 10, 1u << 20, 16u << 20,
					     64u << 20};

		opt.nsizes = 4;
		memcpy(opt.sizes, def, sizeof(def));
	}
	if (!opt.nwindows) {
		opt.nwindows = 2;
		opt.windows[0] = 1;
		opt.windows[1] = 16;
	}
	for (int i = 0; i < opt.nsizes; i++)
		if (opt.sizes[i] > g_max)
			g_max = opt.sizes[i];
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void print_size(size_t n)
{
	char b[32];

	if (n >= (1u << 20) && !(n & ((1u << 20) - 1)))
		snprintf(b, sizeof(b), "%zu MiB", n >> 20);
	else if (n >= 1024 && !(n & 1023))
		snprintf(b, sizeof(b), "%zu KiB", n >> 10);
	else
		snprintf(b, sizeof(b), "%zu B", n);
	printf("%-6s %10s", M.op == OP_WRITE ? "write" : "read", b);
}

static void print_stats(const char *who, const struct plx_cuda_stats *st)
{
	printf("%s staging: %llu ops staged, %llu device-to-host and %llu "
	       "host-to-device copies, %llu slot waits, %llu chunks "
	       "overlapped with the network, at most %u copies in flight, "
	       "%llu copy errors\n",
	       who, (unsigned long long)st->staged_ops,
	       (unsigned long long)st->copies_d2h,
	       (unsigned long long)st->copies_h2d,
	       (unsigned long long)st->slot_waits,
	       (unsigned long long)st->overlapped, st->max_copies_inflight,
	       (unsigned long long)st->copy_errors);
}

int main(int argc, char **argv)
{
	const char *why = NULL;
	struct plx_cuda_info info;
	struct plx_cuda_stats cs;
	pthread_t th;
	int err;

	parse_args(argc, argv);
	if (plx_cuda_probe(opt.lib, &why)) {
		fprintf(stderr,
			"plx_bench_cuda: no CUDA device (%s): nothing "
			"measured\n",
			why ? why : "?");
		return 77;
	}
	load_runtime();
	pthread_create(&th, NULL, server, NULL);
	while (!__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE))
		sched_yield();
	pin(1);
	side_up(&C, 0);
	if ((err = plx_tcp_connect(&C.r, "127.0.0.1", g_port, &M.ep)))
		die("plx_tcp_connect", err);
	while (!g_connected)
		plx_reactor_poll(&C.r);
	if ((err = plx_cuda_info(&C.r, &info)))
		die("plx_cuda_info", err);
	printf("plx_bench_cuda: device memory to remote device memory over "
	       "loopback TCP (staged), beside host to remote host; server "
	       "CPU 0, client CPU 1, busy-polling; %s, runtime %d, driver "
	       "%d; bounce pool %zu MiB per side, chunk %u KiB; median of "
	       "%d alternated rounds of %.2f s\n\n",
	       info.library, info.runtime_version, info.driver_version,
	       opt.pool >> 20, opt.chunk >> 10, opt.rounds, opt.time);
	printf("op           size  window | device GB/s | host GB/s | "
	       "device/host\n");
	for (int i = 0; i < opt.nsizes; i++) {
		size_t size = opt.sizes[i];

		check(size, (uint32_t)i + 1);
		for (int op = OP_WRITE; op <= OP_READ; op++) {
			if (!(opt.ops & (1 << op)))
				continue;
			for (int w = 0; w < opt.nwindows; w++) {
				unsigned win = opt.windows[w];
				double g[2][MAX_ROUNDS];

				/* the bytes in flight are capped */
				while (win > 1 && (uint64_t)win * size >
							  MAX_INFLIGHT_BYTES)
					win--;
				for (int k = 0; k < opt.rounds; k++)
					for (int mem = MEM_DEV; mem <= MEM_HOST;
					     mem++)
						g[mem][k] = measure(op, mem,
								    size, win);
				for (int mem = MEM_DEV; mem <= MEM_HOST; mem++)
					qsort(g[mem], (size_t)opt.rounds,
					      sizeof(double), cmp_double);
				print_size(size);
				printf("  %6u |  %10.3f | %9.3f | %11.2f\n",
				       win, g[MEM_DEV][opt.rounds / 2],
				       g[MEM_HOST][opt.rounds / 2],
				       g[MEM_DEV][opt.rounds / 2] /
					       g[MEM_HOST][opt.rounds / 2]);
				fflush(stdout);
			}
		}
	}
	if (plx_cuda_stats(&C.r, &cs))
		die("plx_cuda_stats", 0);
	__atomic_store_n(&g_stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	printf("\n");
	print_stats("client", &cs);
	print_stats("server", &g_srv_stats);
	side_down(&C);
	return 0;
}
