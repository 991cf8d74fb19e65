/* SPDX-License-Identifier: MIT */
/*
 * plx_bench: benchmark of the pollux TCP transport in the style of
 * perftest / ucx_perftest, with a raw-socket floor measured in the same
 * run and printed beside every figure.
 *
 *   plx_bench [--ops send,write,read,write_imm] [--sizes 8,4k,1m,64m]
 *             [--window 1,16,256] [--tests lat,bw] [--iters N]
 *             [--rounds R] [--time SECONDS] [--batch auto|always|never]
 *             [--stripes N] [--quick] [--json | --md]
 *             [--floor-only | --no-floor] [--transport tcp|rdma]
 *             [--floor-header BYTES] [--floor-split BYTES | --floor-stage]
 *             [--cc NAME] [--no-headroom]
 *
 * Defaults: every op, sizes 8, 64, 512, 4k, 64k, 1m, 64m, windows 1, 16,
 * 256, 3 rounds, 10000 iterations (fewer for large sizes: at most 512 MiB
 * per round, at least 10), 0.3 s per bandwidth round. --md prints the
 * tables as Markdown for docs/benchmarks.md, followed by the issue's
 * targets where the run measured them (a framed latency floor, and
 * bandwidth at window 1, one op per round trip, are shown there as
 * references: the bandwidth target is for streamed batches); --json one
 * object.
 *
 * Set-up: a server reactor on a thread pinned to CPU 0 and a client
 * reactor on the main thread, pinned to CPU 1, connected over loopback
 * with the library's default TCP configuration (except keepalive_ns, raised
 * so that a long floor phase, when neither reactor is polled, cannot trip
 * it, and max_message, raised to the largest size so sends of every size
 * are possible). Both threads busy-poll.
 *
 * Latency (ping-pong, one op in flight; RTT / 2 reported as one-way):
 *   send       the client posts a receive and sends; the server's posted
 *              receive completes, it reposts and echoes with a send.
 *   write      perftest's ib_write_lat: each side writes into the other's
 *              registered region and the other polls the last byte of
 *              the buffer (and of every stripe_chunk piece, as a striped
 *              write may land out of order) for the new sequence value,
 *              then writes back. The initiator also waits for its own
 *              write's completion before the next one.
 *   write_imm  as write, but the target learns of the data from its
 *              notification handler (imm = sequence number).
 *   read       the round trip of one read, reported as is (not halved).
 * Floor: plain non-blocking TCP (TCP_NODELAY) between the same two
 * threads, busy-polling recv/send: the client sends SIZE bytes, the server
 * receives them all and sends SIZE bytes back (for read: a 32-byte request
 * answered with SIZE bytes, RTT not halved). --floor-header B puts B
 * bytes from a second buffer in front of each of those messages, sent in
 * one sendmsg() of two iovecs as pollux sends a frame: the kernel's cost
 * of that shape, without the library (docs/benchmarks.md, stop 11).
 * --floor-split R makes both floor receivers read the first R bytes of
 * each message by themselves, then the rest, as pollux reads a header
 * before it knows where a large payload goes (stop 12). --floor-stage
 * makes them read each message that fits, with its header, into a 64 KiB
 * staging buffer, asking for the buffer's free room, and copy the SIZE
 * bytes out, as pollux reads a frame below its straight-into-place size
 * (stop 14). With --floor-header, that floor is the kernel's and the
 * copy's share of pollux's cost: what stays between it and pollux is the
 * library's own work. These options shape the latency floor only.
 *
 * Bandwidth (streaming): WINDOW ops in flight, each completion resubmitted
 * at once (--batch auto: the resubmissions of one poll go in one
 * plx_ep_batch when the size is below the stripe threshold; the library
 * does not stripe ops inside a batch); ops completed per second in a timed
 * window that opens and closes at a completion, after a warm-up, and
 * holds at least 8 ops. Writes and reads target offsets that cycle
 * through max(SIZE, 64 KiB) of the peer's region (the floor receiver's
 * buffer size, so that both touch the same amount of memory); sends land
 * in receives the server keeps posted, all in one buffer. The window is
 * capped so that at most 256 MiB are in flight (64 MiB x 4): the
 * effective window is printed, and a capped window equal to one already
 * measured is not measured again.
 * Floor: one socket, one direction (server to client for read), the
 * sender send()s SIZE bytes in a loop, the receiver recv()s the stream
 * into a buffer of max(SIZE, 64 KiB), each read where the previous one
 * ended (wrapping at the end), so that it writes as much memory as
 * pollux's ops do; bytes delivered to the receiver per second.
 * One-op floor (rows at window 1 only): the same socket, one message at a
 * time: the client sends SIZE bytes and waits for a 32-byte reply, which
 * the server sends once it has them all (for read: a 32-byte request
 * answered with SIZE bytes). This is what one op in flight does, and the
 * reference for window 1; the stream floor never waits for its receiver.
 * Before the first bandwidth row, one untimed pass of the stream floor and
 * of pollux at windows 16 and 1 warms the sockets up (the first bulk
 * transfer of a run was measured at half the rate of the later ones).
 *
 * Measurements are repeated in R rounds (default 3) that interleave pollux
 * and the floor (the order alternates per round), so that drift on a
 * shared machine hits both alike. Latency percentiles come from the pooled
 * samples of all rounds, each round dropping its first 10 % as warm-up;
 * bandwidth figures are the median of the rounds.
 *
 * --transport rdma: both reactors also attach the RDMA transport (exit 2
 * when the host has no device), with a receive pool of 64 KiB buffers and
 * every benchmark buffer registered, so writes, reads, write_imm and sends
 * up to 64 KiB go over RC QPs (connected over the TCP session). The
 * raw-socket floor is TCP and is not run in this mode; the last line says
 * how many ops the QPs carried. On soft-RoCE these figures measure
 * correctness, not speed (docs/benchmarks.md).
 *
 * TCP congestion control: the system's default, or --cc NAME for
 * pollux's sockets (plx_tcp_config.congestion) and the floor's alike; the
 * header and the last lines name it. The last lines also give the TCP
 * segments retransmitted during pollux's and during the floor's
 * measurements (RetransSegs of /proc/net/snmp, all sockets of the host):
 * loopback loses nothing, so they count the kernel's spurious
 * retransmissions (BBR, docs/tcp.md "Congestion control").
 *
 * Heap allocations: malloc, calloc, realloc, aligned_alloc,
 * posix_memalign and the mimalloc calls the library uses are wrapped at
 * link time (-Wl,--wrap, see examples/CMakeLists.txt) and counted, on both
 * threads, while pollux ops are being measured.
 *
 * Loop turns: while bandwidth is measured, each turn of the client's loop
 * (its submissions, the flush that ends a batch, and one poll) is timed;
 * the largest 99th percentile of any round and the longest turn are
 * printed: how long a serving loop polling pollux would wait to do its own
 * work (plx_tcp_config.flush_max bounds it; docs/tcp.md).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "pollux/pollux.h"
#include "pollux/rdma.h"
#include "pollux/tcp.h"

/* ---- heap allocation counting ------------------------------------------- */

static int g_count_on;		/* counting enabled (relaxed) */
static uint64_t g_heap_allocs;	/* allocations while enabled */
static uint64_t g_ops_measured; /* pollux ops in the measured intervals */

static void count_alloc(void)
{
	if (__atomic_load_n(&g_count_on, __ATOMIC_RELAXED))
		__atomic_fetch_add(&g_heap_allocs, 1, __ATOMIC_RELAXED);
}

static void counting(int on)
{
	__atomic_store_n(&g_count_on, on, __ATOMIC_RELAXED);
}

#ifdef PLX_BENCH_WRAP
/* Link-time wrappers: every call from this program and from the static
 * pollux library goes through them (-Wl,--wrap=SYMBOL). */
struct mi_heap_s;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
struct mi_heap_s *__real_mi_heap_new(void);
void *__real_mi_heap_malloc(struct mi_heap_s *h, size_t n);
void *__real_mi_heap_zalloc(struct mi_heap_s *h, size_t n);
void *__real_mi_heap_malloc_aligned(struct mi_heap_s *h, size_t n, size_t a);
void *__real_mi_heap_realloc(struct mi_heap_s *h, void *p, size_t n);
void *__real_mi_malloc(size_t n);
void *__real_mi_zalloc(size_t n);
void *__real_mi_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n);
int __wrap_posix_memalign(void **p, size_t a, size_t n);
struct mi_heap_s *__wrap_mi_heap_new(void);
void *__wrap_mi_heap_malloc(struct mi_heap_s *h, size_t n);
void *__wrap_mi_heap_zalloc(struct mi_heap_s *h, size_t n);
void *__wrap_mi_heap_malloc_aligned(struct mi_heap_s *h, size_t n, size_t a);
void *__wrap_mi_heap_realloc(struct mi_heap_s *h, void *p, size_t n);
void *__wrap_mi_malloc(size_t n);
void *__wrap_mi_zalloc(size_t n);
void *__wrap_mi_realloc(void *p, size_t n);

void *__wrap_malloc(size_t n)
{
	count_alloc();
	return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
	count_alloc();
	return __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
	count_alloc();
	return __real_realloc(p, n);
}

void *__wrap_aligned_alloc(size_t a, size_t n)
{
	count_alloc();
	return __real_aligned_alloc(a, n);
}

int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
	count_alloc();
	return __real_posix_memalign(p, a, n);
}

struct mi_heap_s *__wrap_mi_heap_new(void)
{
	count_alloc();
	return __real_mi_heap_new();
}

void *__wrap_mi_heap_malloc(struct mi_heap_s *h, size_t n)
{
	count_alloc();
	return __real_mi_heap_malloc(h, n);
}

void *__wrap_mi_heap_zalloc(struct mi_heap_s *h, size_t n)
{
	count_alloc();
	return __real_mi_heap_zalloc(h, n);
}

void *__wrap_mi_heap_malloc_aligned(struct mi_heap_s *h, size_t n, size_t a)
{
	count_alloc();
	return __real_mi_heap_malloc_aligned(h, n, a);
}

void *__wrap_mi_heap_realloc(struct mi_heap_s *h, void *p, size_t n)
{
	count_alloc();
	return __real_mi_heap_realloc(h, p, n);
}

void *__wrap_mi_malloc(size_t n)
{
	count_alloc();
	return __real_mi_malloc(n);
}

void *__wrap_mi_zalloc(size_t n)
{
	count_alloc();
	return __real_mi_zalloc(n);
}

void *__wrap_mi_realloc(void *p, size_t n)
{
	count_alloc();
	return __real_mi_realloc(p, n);
}
#define HEAP_COUNTED 1
#else
#define HEAP_COUNTED 0
#endif

/* ---- options and results ------------------------------------------------ */

enum {
	OP_SEND,
	OP_WRITE,
	OP_READ,
	OP_WIMM,
	NOPS
};
static const char *const op_names[NOPS] = {"send", "write", "read",
					   "write_imm"};

#define MAX_LIST 32
#define MAX_WINDOW 1024
#define BW_INFLIGHT (256ull << 20) /* bytes in flight at most (window cap) */
#define FLOOR_READ_REQ 32	   /* floor request size for read */
#define FLOOR_ACK 32		   /* one-op floor: acknowledgement size */
#define FLOOR_HDR_MAX 4096	   /* --floor-header at most */
#define FLOOR_STAGE (64u << 10)	   /* --floor-stage: pollux's staging size */
#define OP_TIMEOUT_NS 10000000000ull
#define MIN_OPS 8 /* a bandwidth window holds at least this many ops */

struct opts {
	int ops[NOPS];
	size_t sizes[MAX_LIST];
	int nsizes;
	uint32_t windows[MAX_LIST];
	int nwindows;
	int lat, bw;
	uint64_t iters;
	int rounds;
	double secs; /* measured time per bandwidth round */
	int quick, json, md, floor_only, no_floor;
	size_t floor_hdr;   /* --floor-header: bytes in front of each message */
	size_t floor_split; /* --floor-split: first read of each message */
	int floor_stage;    /* --floor-stage: read through a staging buffer */
	int rdma;	    /* --transport rdma */
	int batch;	    /* BATCH_* */
	int stripes;	    /* -1: the library default */
	const char *cc;	    /* --cc: TCP congestion control, NULL: system */
	int no_headroom;    /* --no-headroom: ping-pongs without it */
};

enum {
	BATCH_AUTO,
	BATCH_ALWAYS,
	BATCH_NEVER
};

static struct opts opt;

struct stat3 {
	double med, p99, p999; /* ns */
};

struct lat_row {
	int op;
	size_t size;
	uint64_t n; /* measured samples per round */
	struct stat3 px, fl;
};

struct bw_row {
	int op;
	size_t size;
	uint32_t window, weff;
	double px_ops, fl_bytes; /* ops/s, floor bytes/s (medians) */
	double px_r[16], fl_r[16];
	/* window 1 only: the one-op floor, bytes/s (median, rounds) */
	double fl1_bytes, fl1_r[16];
};

static struct lat_row lat_rows[NOPS * MAX_LIST];
static struct bw_row bw_rows[NOPS * MAX_LIST * MAX_LIST];
static int nlat, nbw;

/* ---- small helpers ------------------------------------------------------ */

static void die(const char *what, int rc)
{
	fprintf(stderr, "plx_bench: %s: %s\n", what,
		rc < 0 ? plx_strerror(rc) : strerror(errno));
	exit(1);
}

static void *xalloc(size_t n)
{
	void *p = aligned_alloc(4096, (n + 4095) & ~(size_t)4095);

	if (!p)
		die("out of memory", PLX_ENOMEM);
	memset(p, 0, n);
	return p;
}

/*
 * A send buffer, page-aligned as xalloc()'s, with PLX_HEADROOM bytes in
 * front of it that pollux may use (PLX_OP_HEADROOM, set on the ping-pong
 * ops: one op at a time sends from each such buffer). free_room() frees.
 */
static uint8_t *xalloc_room(size_t n)
{
	return (uint8_t *)xalloc(n + 4096) + 4096;
}

static void free_room(uint8_t *p)
{
	free(p - 4096);
}

/* The ping-pongs' send ops: with PLX_OP_HEADROOM unless --no-headroom. */
static void room_op(struct plx_op *op)
{
	op->flags = opt.no_headroom ? 0 : PLX_OP_HEADROOM;
}

/* --transport rdma: a receive pool and registered send buffers per side
 * (0: server, 1: client), then the RDMA transport. */
#define RDMA_POOL_BUF (64u * 1024)
#define RDMA_POOL_N 160
static struct {
	struct plx_pool pool;
	struct plx_region pool_reg, sreg;
	void *pool_mem;
} g_rdma[2];

static void rdma_attach(int side, struct plx_reactor *r, void *sbuf, size_t len)
{
	size_t plen = plx_pool_memsize(RDMA_POOL_BUF + 64, RDMA_POOL_N);
	struct plx_rdma_config rc;
	int err;

	g_rdma[side].pool_mem = xalloc(plen);
	if ((err = plx_pool_init(&g_rdma[side].pool, g_rdma[side].pool_mem,
				 plen, RDMA_POOL_BUF + 64, RDMA_POOL_N)) ||
	    (err = plx_mem_register(r, &g_rdma[side].pool_reg,
				    g_rdma[side].pool_mem, plen, 0)))
		die("receive pool", err);
	plx_rdma_config_init(&rc);
	rc.recv_pool = &g_rdma[side].pool;
	rc.recv_depth = 64;
	err = plx_rdma_init(r, &rc);
	if (err == PLX_EUNAVAIL) {
		fprintf(stderr, "plx_bench: RDMA transport unavailable on this "
				"host (no rdma-core or no active device)\n");
		exit(2);
	}
	if (err || (err = plx_mem_register(r, &g_rdma[side].sreg, sbuf, len,
					   PLX_ACCESS_ALL)))
		die("rdma set-up", err);
}

/* Undo rdma_attach() before the reactor finishes (after the peer left:
 * the QPs give their receive buffers back as they go). */
static void rdma_detach(int side, struct plx_reactor *r)
{
	if (!g_rdma[side].pool_mem)
		return;
	plx_mem_deregister(r, &g_rdma[side].sreg);
	plx_mem_deregister(r, &g_rdma[side].pool_reg);
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median_dbl(const double *v, int n)
{
	double s[16];

	memcpy(s, v, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), cmp_dbl);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static struct stat3 stats(uint64_t *v, uint64_t n, double scale)
{
	struct stat3 s = {0, 0, 0};

	if (!n)
		return s;
	qsort(v, n, sizeof(*v), cmp_u64);
	s.med = (double)v[n / 2] * scale;
	s.p99 = (double)v[n * 99 / 100] * scale;
	s.p999 = (double)v[n * 999 / 1000] * scale;
	return s;
}

/* An op rate with three significant digits: "2.86 M", "75.1 k", "59.6". */
static const char *rate_str(double r, char *buf, size_t cap)
{
	if (r >= 1e6)
		snprintf(buf, cap, "%.3g M", r / 1e6);
	else if (r >= 1e3)
		snprintf(buf, cap, "%.3g k", r / 1e3);
	else
		snprintf(buf, cap, "%.3g", r);
	return buf;
}

static const char *size_str(size_t n, char *buf, size_t cap)
{
	if (n >= (1u << 20) && !(n & ((1u << 20) - 1)))
		snprintf(buf, cap, "%zu MiB", n >> 20);
	else if (n >= 1024 && !(n & 1023))
		snprintf(buf, cap, "%zu KiB", n >> 10);
	else
		snprintf(buf, cap, "%zu B", n);
	return buf;
}

/* ---- shared state between the two threads -------------------------------- */

enum mode {
	M_IDLE,
	M_LAT_SEND,
	M_LAT_WRITE,
	M_LAT_WIMM,
	M_BW_SEND,
	M_FLOOR_PP,  /* latency floor: ping-pong, shaped by --floor-* */
	M_FLOOR_ONE, /* one-op floor: the same, never shaped */
	M_FLOOR_RX,  /* server receives the stream */
	M_FLOOR_TX,  /* server sends the stream */
	M_QUIT,
};

/*
 * Commands: the client writes the fields, then store-releases gen; the
 * server load-acquires gen, leaves its old mode, enters the new one and
 * store-releases ack = gen. Fields the server publishes (tx_total,
 * srv_heap) are written before that release.
 */
struct ctl {
	_Alignas(64) int gen;
	int mode;
	size_t size;	   /* payload size */
	size_t req;	   /* floor ping-pong: request size */
	uint32_t window;   /* receives to keep posted */
	uint64_t tx_total; /* floor stream: bytes the sender sent */
	_Alignas(64) int ack;
	uint64_t srv_heap; /* server reactor heap_allocs at the ack */
	_Alignas(64) uint64_t rx_bytes; /* floor stream: server received */
};

static struct ctl g_ctl;
static size_t g_max;   /* largest size: buffer and region size */
static size_t g_chunk; /* marker spacing for write latency */
static size_t g_stripe_threshold;
static uint32_t g_stripes; /* as configured on the client */
static struct plx_desc g_srv_desc, g_cli_desc;
static uint16_t g_port;
static int g_srv_ready;
static int g_fd_srv = -1, g_fd_cli = -1;
static int g_quit; /* set before M_QUIT: connection loss is expected */

static void tcp_cfg(struct plx_tcp_config *cfg, plx_imm_cb imm, void *arg)
{
	plx_tcp_config_init(cfg);
	cfg->keepalive_ns = 3600ull * 1000000000ull;
	if (g_max > cfg->max_message)
		cfg->max_message = g_max > (1u << 30) ? 1u << 30 :
							(uint32_t)g_max;
	if (opt.stripes >= 0)
		cfg->stripes = (uint32_t)opt.stripes;
	cfg->congestion = opt.cc;
	cfg->imm_cb = imm;
	cfg->cb_arg = arg;
}

/* Last byte of every g_chunk piece of [0, size): a striped write's pieces
 * travel on several connections and may land in any order. */
static void marks_set(uint8_t *buf, size_t size, uint8_t v)
{
	for (size_t end = g_chunk;; end += g_chunk) {
		buf[(end < size ? end : size) - 1] = v;
		if (end >= size)
			break;
	}
}

static int marks_seen(const uint8_t *buf, size_t size, uint8_t v,
		      size_t *cursor)
{
	size_t nk = (size + g_chunk - 1) / g_chunk;

	while (*cursor < nk) {
		size_t end = (*cursor + 1) * g_chunk;

		if (buf[(end < size ? end : size) - 1] != v)
			return 0;
		(*cursor)++;
	}
	return 1;
}

static uint8_t next_seq(uint8_t s)
{
	return s == 255 ? 1 : (uint8_t)(s + 1);
}

/* ---- raw socket helpers (the floor) ------------------------------------- */

/* --cc on a floor socket, before connect() or listen() (the accepted one
 * inherits the listener's): the same algorithm as pollux's sockets */
static void sock_cc(int fd)
{
	if (opt.cc && setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, opt.cc,
				 (socklen_t)strlen(opt.cc)))
		die("floor socket: TCP_CONGESTION", -errno);
}

/* The congestion control of the floor's client socket (as the kernel has
 * it, so the system's default when --cc is not given). */
static const char *floor_cc(void)
{
	static char name[16];
	socklen_t len = sizeof(name) - 1;

	if (getsockopt(g_fd_cli, IPPROTO_TCP, TCP_CONGESTION, name, &len))
		return "?";
	return name;
}

/*
 * The CPU, as /proc/cpuinfo names it: "model name (family F, model M)".
 * Printed with every run: the same VM has run on different hosts
 * (docs/benchmarks.md, stop 13), and figures compare only between runs
 * on the same CPU.
 */
/* Blank what JSON strings and Markdown tables cannot hold as is. */
static void md_safe(char *s)
{
	for (; *s; s++)
		if (*s == '"' || *s == '\\' || *s == '|')
			*s = ' ';
}

static const char *cpu_desc(void)
{
	static char desc[160];
	char line[256], name[96] = "?";
	int family = -1, model = -1;
	FILE *f;

	if (desc[0])
		return desc;
	f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(line, sizeof(line), f) && line[0] != '\n') {
		char *v = strchr(line, ':');

		if (!v)
			continue;
		v += v[1] == ' ' ? 2 : 1;
		v[strcspn(v, "\n")] = 0;
		if (!strncmp(line, "model name", 10))
			snprintf(name, sizeof(name), "%s", v);
		else if (!strncmp(line, "cpu family", 10))
			family = atoi(v);
		else if (!strncmp(line, "model\t", 6))
			model = atoi(v);
	}
	if (f)
		fclose(f);
	md_safe(name);
	snprintf(desc, sizeof(desc), "%s (family %d, model %d)", name, family,
		 model);
	return desc;
}

/*
 * The kernel, and whether it isolates its page tables (Meltdown's
 * mitigation, PTI) and the CPU has PCID: with isolation and no PCID every
 * system call empties the TLB, and each page a message's path touches
 * costs a walk. The latency ratios depended on it (docs/benchmarks.md,
 * stop 20), so the output says which.
 */
static const char *kernel_desc(void)
{
	static char desc[256]; /* 54 bytes + release, pti, melt: <= 187 */
	char line[4096], melt[64] = "?";
	const char *pti = "unknown";
	bool pcid = false;
	struct utsname u;
	FILE *f;

	if (desc[0])
		return desc;
	f = fopen("/sys/devices/system/cpu/vulnerabilities/meltdown", "r");
	if (f && fgets(melt, sizeof(melt), f)) {
		melt[strcspn(melt, "\n")] = 0;
		pti = strstr(melt, "PTI") ? "on" : "off";
	}
	if (f)
		fclose(f);
	f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(line, sizeof(line), f) && line[0] != '\n')
		if (!strncmp(line, "flags", 5) && strstr(line, " pcid"))
			pcid = true;
	if (f)
		fclose(f);
	md_safe(melt);
	snprintf(desc, sizeof(desc),
		 "Linux %s, page-table isolation %s (meltdown: %s), PCID %s",
		 uname(&u) ? "?" : u.release, pti, melt, pcid ? "yes" : "no");
	return desc;
}

/*
 * TCP segments retransmitted, all sockets (RetransSegs of /proc/net/snmp),
 * read before and after every measurement and added up for pollux and the
 * floor apart. On loopback nothing is lost: a retransmission is the
 * kernel taking reordered segments for lost ones, and such a run is slow.
 * Returns 0 when the counter cannot be read.
 */
static uint64_t tcp_retrans(void)
{
	char line[1024], *tok, *save;
	uint64_t v = 0;
	int col = -1, k;
	FILE *f = fopen("/proc/net/snmp", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Tcp:", 4))
			continue;
		tok = strtok_r(line, " \n", &save);
		for (k = 0; tok; k++, tok = strtok_r(NULL, " \n", &save)) {
			if (col < 0 && !strcmp(tok, "RetransSegs"))
				col = k; /* the header line */
			else if (col >= 0 && k == col)
				v = strtoull(tok, NULL, 10);
		}
	}
	fclose(f);
	return v;
}

/* retransmissions during the measurements: [latency, bandwidth][pollux,
 * floor] */
static uint64_t g_retrans[2][2];

static void sock_opts(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* A connected pair of loopback TCP sockets, set up like pollux's. */
static void floor_pair(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l < 0)
		die("floor socket", 1);
	sock_cc(l);
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &len))
		die("floor socket", 1);
	g_fd_cli = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (g_fd_cli < 0)
		die("floor connect", 1);
	sock_cc(g_fd_cli);
	if (connect(g_fd_cli, (struct sockaddr *)&a, sizeof(a)))
		die("floor connect", 1);
	g_fd_srv = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (g_fd_srv < 0)
		die("floor accept", 1);
	close(l);
	sock_opts(g_fd_cli);
	sock_opts(g_fd_srv);
}

static void send_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (k > 0) {
			p += k;
			n -= (size_t)k;
		} else if (k < 0 && errno != EAGAIN && errno != EINTR) {
			die("floor send", 1);
		}
	}
}

static void recv_all(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = recv(fd, p, n, MSG_DONTWAIT);

		if (k > 0) {
			p += k;
			n -= (size_t)k;
		} else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
			die("floor recv", 1);
		}
	}
}

/* recv_all() of @n bytes; with --floor-split R, the first R of them by
 * themselves (as pollux reads a header before it knows where the payload
 * goes), then the rest. */
static void recv_split(int fd, uint8_t *p, size_t n)
{
	size_t r = opt.floor_split;

	if (r && r < n) {
		recv_all(fd, p, r);
		recv_all(fd, p + r, n - r);
	} else {
		recv_all(fd, p, n);
	}
}

/*
 * send_all() of @n bytes behind a header of @h bytes from another
 * buffer, each sendmsg() with two iovecs, as pollux sends a frame
 * (--floor-header; @h 0: send_all()).
 */
static void send_hdr_all(int fd, const uint8_t *p, size_t n, size_t h)
{
	static const uint8_t hdr[FLOOR_HDR_MAX];
	size_t done = 0;

	if (!h) {
		send_all(fd, p, n);
		return;
	}
	while (done < h + n) {
		struct iovec iov[2];
		struct msghdr m = {.msg_iov = iov};
		size_t po = done > h ? done - h : 0;
		ssize_t k;

		if (done < h) {
			iov[m.msg_iovlen].iov_base = (void *)(hdr + done);
			iov[m.msg_iovlen++].iov_len = h - done;
		}
		iov[m.msg_iovlen].iov_base = (void *)(p + po);
		iov[m.msg_iovlen++].iov_len = n - po;
		k = sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (k > 0)
			done += (size_t)k;
		else if (k < 0 && errno != EAGAIN && errno != EINTR)
			die("floor send", 1);
	}
}

/* One non-blocking recv; returns bytes (0 when nothing was there). */
static size_t recv_some(int fd, uint8_t *p, size_t cap)
{
	ssize_t k = recv(fd, p, cap, MSG_DONTWAIT);

	if (k > 0)
		return (size_t)k;
	if (k == 0 || (errno != EAGAIN && errno != EINTR))
		die("floor recv", 1);
	return 0;
}

static size_t send_some(int fd, const uint8_t *p, size_t n)
{
	ssize_t k = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);

	if (k > 0)
		return (size_t)k;
	if (k < 0 && errno != EAGAIN && errno != EINTR)
		die("floor send", 1);
	return 0;
}

/* The staging buffers of --floor-stage: the server's and the client's. */
static _Alignas(64) uint8_t g_floor_stage[2][FLOOR_STAGE];

/* --floor-stage applies to a message of @n bytes with its header */
static int floor_staged(size_t n)
{
	return opt.floor_stage && opt.floor_hdr + n <= FLOOR_STAGE;
}

/* One recv() of a message of @n payload bytes behind opt.floor_hdr
 * header bytes into @stage, asking for its free room (*@got bytes are in
 * already). When the message is whole, its payload is copied to @dst and
 * 1 returned (--floor-stage). One message is in flight. */
static int stage_step(int fd, uint8_t *stage, uint8_t *dst, size_t n,
		      size_t *got)
{
	*got += recv_some(fd, stage + *got, FLOOR_STAGE - *got);
	if (*got > opt.floor_hdr + n)
		die("floor recv: more than one message", 1);
	if (*got < opt.floor_hdr + n)
		return 0;
	memcpy(dst, stage + opt.floor_hdr, n);
	return 1;
}

static size_t stream_cap(size_t size)
{
	size_t cap = size > (64u << 10) ? size : 64u << 10;

	return cap > g_max ? g_max : cap;
}

/* One recv() of a stream into the ring buffer [buf, buf + cap): the bytes
 * go where the next ones belong (*off, wrapping at cap), as a message of
 * SIZE bytes would land in SIZE bytes of memory, so that the floor touches
 * the same memory as pollux's ops, not the first chunk of it again and
 * again. */
static size_t recv_stream(int fd, uint8_t *buf, size_t cap, size_t *off)
{
	size_t k = recv_some(fd, buf + *off, cap - *off);

	*off += k;
	if (*off == cap)
		*off = 0;
	return k;
}

/* ---- server thread ------------------------------------------------------ */

struct srv {
	struct plx_reactor r;
	struct plx_region reg;
	struct plx_ep *ep;
	uint8_t *sbuf, *rbuf;
	int mode;
	size_t size, req;
	/* receives (callback mode): completed indices wait on a stack */
	struct plx_op rop[MAX_WINDOW];
	uint32_t done[MAX_WINDOW];
	uint32_t ndone, nposted, nrop;
	struct plx_op sop; /* echo / write-back (handle mode) */
	int sop_busy;
	uint8_t seq;
	size_t cursor;
	uint32_t nimm, handled, imm_last;
	size_t got;	 /* floor ping-pong: request bytes in */
	size_t tx_off;	 /* floor stream: offset in the current message */
	size_t rx_off;	 /* floor stream: offset in the receive buffer */
	uint64_t rx, tx; /* floor stream counters */
};

static struct srv S;

static void srv_event(struct plx_reactor *r, struct plx_ep *ep, int event,
		      int status, void *arg)
{
	(void)r;
	(void)arg;
	if (event == PLX_EP_ACCEPTED && !S.ep)
		S.ep = ep;
	if ((event == PLX_EP_DOWN || event == PLX_EP_RESTARTED) &&
	    !__atomic_load_n(&g_quit, __ATOMIC_RELAXED)) {
		fprintf(stderr, "plx_bench: server: connection lost: %s\n",
			plx_strerror(status));
		exit(1);
	}
}

static void srv_imm(struct plx_reactor *r, struct plx_ep *ep, uint32_t imm,
		    uint64_t addr, uint64_t len, void *arg)
{
	(void)r;
	(void)ep;
	(void)addr;
	(void)len;
	(void)arg;
	S.imm_last = imm;
	S.nimm++;
}

static void srv_recv_cb(struct plx_reactor *r, struct plx_req *req)
{
	struct plx_op *op = (struct plx_op *)req;

	(void)r;
	S.nposted--;
	if (req->status && req->status != PLX_ECANCELED)
		die("server receive", req->status);
	S.done[S.ndone++] = (uint32_t)(op - S.rop);
}

static void srv_post(uint32_t i)
{
	int rc = plx_ep_recv(S.ep, &S.rop[i], S.rbuf, S.size, 0, 0);

	if (rc)
		die("server plx_ep_recv", rc);
	S.nposted++;
}

/* Wait for the echo / write-back op to be free. */
static void srv_sop_wait(void)
{
	while (S.sop_busy && !plx_req_test_mt(&S.sop.req))
		plx_reactor_poll(&S.r);
	if (S.sop_busy && S.sop.req.status)
		die("server echo", S.sop.req.status);
	S.sop_busy = 0;
}

static void srv_enter(int mode)
{
	struct plx_reactor_stats st;

	S.mode = mode;
	S.size = g_ctl.size;
	S.req = g_ctl.req;
	S.ndone = 0;
	switch (mode) {
	case M_LAT_SEND:
	case M_BW_SEND: {
		uint32_t n = mode == M_LAT_SEND ? 1 : 2 * g_ctl.window;

		if (n > MAX_WINDOW)
			n = MAX_WINDOW;
		for (uint32_t i = 0; i < n; i++) {
			plx_op_init(&S.rop[i], srv_recv_cb, NULL);
			srv_post(i);
		}
		S.nrop = n;
		break;
	}
	case M_LAT_WRITE:
		marks_set(S.rbuf, S.size, 0);
		S.seq = 1;
		S.cursor = 0;
		break;
	case M_LAT_WIMM:
		S.handled = S.nimm;
		break;
	case M_FLOOR_PP:
	case M_FLOOR_ONE:
		S.got = 0;
		break;
	case M_FLOOR_RX:
		S.rx = 0;
		S.rx_off = 0;
		__atomic_store_n(&g_ctl.rx_bytes, 0, __ATOMIC_RELAXED);
		break;
	case M_FLOOR_TX:
		S.tx = 0;
		S.tx_off = 0;
		break;
	default:
		break;
	}
	plx_reactor_stats(&S.r, &st);
	g_ctl.srv_heap = st.heap_allocs;
}

static void srv_leave(void)
{
	switch (S.mode) {
	case M_LAT_SEND:
	case M_BW_SEND:
		for (uint32_t i = 0; i < S.nrop; i++)
			plx_op_cancel(&S.r, &S.rop[i]); /* or PLX_EALREADY */
		while (S.nposted)
			plx_reactor_poll(&S.r);
		break;
	case M_FLOOR_RX: {
		/* T2: pairs with T1 (the client wrote tx_total before its
		 * gen release, which we acquired) */
		uint64_t total = g_ctl.tx_total;

		while (S.rx < total)
			S.rx += recv_stream(g_fd_srv, S.rbuf,
					    stream_cap(S.size), &S.rx_off);
		break;
	}
	case M_FLOOR_TX:
		/* finish the message on the wire; the client drains */
		if (S.tx_off) {
			send_all(g_fd_srv, S.sbuf + S.tx_off,
				 S.size - S.tx_off);
			S.tx += S.size - S.tx_off;
		}
		g_ctl.tx_total = S.tx;
		break;
	default:
		break;
	}
	srv_sop_wait();
}

static void srv_step(void)
{
	int rc;

	switch (S.mode) {
	case M_LAT_SEND:
		plx_reactor_poll(&S.r);
		while (S.ndone) {
			uint32_t i = S.done[--S.ndone];
			uint64_t bytes = S.rop[i].req.bytes;

			/* repost before the echo: the next ping finds it */
			srv_post(i);
			srv_sop_wait();
			rc = plx_ep_send(S.ep, &S.sop, S.sbuf, bytes, 0);
			if (rc)
				die("server plx_ep_send", rc);
			S.sop_busy = 1;
		}
		break;
	case M_BW_SEND:
		plx_reactor_poll(&S.r);
		while (S.ndone)
			srv_post(S.done[--S.ndone]);
		break;
	case M_LAT_WRITE:
		plx_reactor_poll(&S.r);
		if (!marks_seen(S.rbuf, S.size, S.seq, &S.cursor))
			break;
		srv_sop_wait();
		marks_set(S.sbuf, S.size, S.seq);
		rc = plx_ep_write(S.ep, &S.sop, S.sbuf, S.size, &g_cli_desc, 0);
		if (rc)
			die("server plx_ep_write", rc);
		S.sop_busy = 1;
		S.seq = next_seq(S.seq);
		S.cursor = 0;
		break;
	case M_LAT_WIMM:
		plx_reactor_poll(&S.r);
		if (S.handled == S.nimm)
			break;
		S.handled = S.nimm;
		srv_sop_wait();
		rc = plx_ep_write_imm(S.ep, &S.sop, S.sbuf, S.size, &g_cli_desc,
				      0, S.imm_last);
		if (rc)
			die("server plx_ep_write_imm", rc);
		S.sop_busy = 1;
		break;
	case M_FLOOR_PP:
	case M_FLOOR_ONE: {
		/* the --floor-* options shape the latency floor only */
		int shaped = S.mode == M_FLOOR_PP;
		size_t h = shaped ? opt.floor_hdr : 0;
		size_t want = S.req + h - S.got;
		int whole;

		if (shaped && floor_staged(S.req)) {
			whole = stage_step(g_fd_srv, g_floor_stage[0], S.rbuf,
					   S.req, &S.got);
		} else {
			/* --floor-split: the first read of a message takes at
			 * most that many bytes */
			if (shaped && S.got < opt.floor_split &&
			    opt.floor_split - S.got < want)
				want = opt.floor_split - S.got;
			S.got += recv_some(g_fd_srv, S.rbuf + S.got, want);
			whole = S.got == S.req + h;
		}
		if (whole) {
			send_hdr_all(g_fd_srv, S.sbuf, S.size, h);
			S.got = 0;
		}
		break;
	}
	case M_FLOOR_RX: {
		size_t k = recv_stream(g_fd_srv, S.rbuf, stream_cap(S.size),
				       &S.rx_off);

		if (k) {
			S.rx += k;
			__atomic_store_n(&g_ctl.rx_bytes, S.rx,
					 __ATOMIC_RELAXED);
		}
		break;
	}
	case M_FLOOR_TX: {
		size_t k = send_some(g_fd_srv, S.sbuf + S.tx_off,
				     S.size - S.tx_off);

		S.tx += k;
		S.tx_off += k;
		if (S.tx_off == S.size)
			S.tx_off = 0;
		break;
	}
	default: /* idle, read/write/write_imm bandwidth, read latency */
		plx_reactor_poll(&S.r);
		break;
	}
}

static void *server(void *arg)
{
	struct plx_tcp_config cfg;
	int rc, gen = 0;

	(void)arg;
	pin(0);
	S.sbuf = xalloc_room(g_max + FLOOR_HDR_MAX);
	room_op(&S.sop); /* one echo at a time sends from S.sbuf */
	S.rbuf = xalloc(g_max + FLOOR_HDR_MAX);
	tcp_cfg(&cfg, srv_imm, NULL);
	cfg.event_cb = srv_event;
	if ((rc = plx_reactor_init(&S.r, NULL)) ||
	    (rc = plx_tcp_init(&S.r, &cfg)))
		die("server set-up", rc);
	if (opt.rdma)
		rdma_attach(0, &S.r, S.sbuf, g_max);
	if ((rc = plx_tcp_listen(&S.r, "127.0.0.1", 0, &g_port)) ||
	    (rc = plx_mem_register(&S.r, &S.reg, S.rbuf, g_max,
				   PLX_ACCESS_ALL)) ||
	    (rc = plx_mem_desc(&S.r, &S.reg, &g_srv_desc)))
		die("server set-up", rc);
	__atomic_store_n(&g_srv_ready, 1, __ATOMIC_RELEASE);
	for (;;) {
		/* A1: pairs with R1 in cmd() */
		int g = __atomic_load_n(&g_ctl.gen, __ATOMIC_ACQUIRE);

		if (g != gen) {
			srv_leave();
			gen = g;
			srv_enter(g_ctl.mode);
			/* R2: publishes what srv_leave/srv_enter wrote; pairs
			 * with A2 in cmd() */
			__atomic_store_n(&g_ctl.ack, g, __ATOMIC_RELEASE);
			if (S.mode == M_QUIT)
				break;
		}
		srv_step();
	}
	plx_mem_deregister(&S.r, &S.reg);
	rdma_detach(0, &S.r);
	plx_tcp_shutdown(&S.r);
	while ((rc = plx_reactor_fini(&S.r)) == PLX_EBUSY)
		plx_reactor_poll(&S.r);
	if (rc)
		die("server plx_reactor_fini", rc);
	free(g_rdma[0].pool_mem);
	free_room(S.sbuf);
	free(S.rbuf);
	return NULL;
}

/* ---- client ------------------------------------------------------------- */

struct cli {
	struct plx_reactor r;
	struct plx_region reg;
	struct plx_ep *ep;
	uint8_t *sbuf, *rbuf;
	int connected;
	uint32_t nimm, imm_last;
	struct plx_op ops[MAX_WINDOW];
	uint32_t done[MAX_WINDOW];
	uint32_t ndone;
	uint64_t completed;
	int prev_mode;
	uint64_t rx; /* floor stream from the server: bytes received */
};

static struct cli C;

static void cli_event(struct plx_reactor *r, struct plx_ep *ep, int event,
		      int status, void *arg)
{
	(void)r;
	(void)ep;
	(void)arg;
	if (event == PLX_EP_CONNECTED)
		C.connected = 1;
	if ((event == PLX_EP_DOWN || event == PLX_EP_RESTARTED) &&
	    !__atomic_load_n(&g_quit, __ATOMIC_RELAXED)) {
		fprintf(stderr, "plx_bench: client: connection lost: %s\n",
			plx_strerror(status));
		exit(1);
	}
}

static void cli_imm(struct plx_reactor *r, struct plx_ep *ep, uint32_t imm,
		    uint64_t addr, uint64_t len, void *arg)
{
	(void)r;
	(void)ep;
	(void)addr;
	(void)len;
	(void)arg;
	C.imm_last = imm;
	C.nimm++;
}

/* Tell the server to switch to @mode and wait until it has. */
static void cmd(int mode, size_t size, size_t req, uint32_t window)
{
	int g = g_ctl.gen + 1;

	g_ctl.mode = mode;
	g_ctl.size = size;
	g_ctl.req = req;
	g_ctl.window = window;
	/* R1: publishes the fields above (and tx_total, T1); pairs with A1
	 * in server() */
	__atomic_store_n(&g_ctl.gen, g, __ATOMIC_RELEASE);
	/* A2: pairs with R2 in server() */
	while (__atomic_load_n(&g_ctl.ack, __ATOMIC_ACQUIRE) != g) {
		if (C.prev_mode == M_FLOOR_TX)
			C.rx += recv_some(g_fd_cli, C.rbuf, stream_cap(size));
		else
			plx_reactor_poll(&C.r);
	}
	if (C.prev_mode == M_FLOOR_TX) {
		uint64_t total = g_ctl.tx_total;

		while (C.rx < total)
			C.rx += recv_some(g_fd_cli, C.rbuf, g_max);
	}
	C.prev_mode = mode;
}

static void op_done(struct plx_reactor *r, struct plx_req *req)
{
	struct plx_op *op = (struct plx_op *)req;

	(void)r;
	if (req->status)
		die(op_names[(int)(uintptr_t)req->user], req->status);
	C.done[C.ndone++] = (uint32_t)(op - C.ops);
	C.completed++;
}

static void wait_handle(struct plx_op *op, uint64_t t0, const char *what)
{
	while (!plx_req_test_mt(&op->req)) {
		plx_reactor_poll(&C.r);
		if (plx_now_ns() - t0 > OP_TIMEOUT_NS)
			die(what, PLX_ETIMEDOUT);
	}
	if (op->req.status)
		die(what, op->req.status);
}

/* One pollux latency round: @total iterations, the first @warm dropped.
 * Samples (RTT in ns) go to @out. */
static void lat_pollux(int op, size_t size, uint64_t warm, uint64_t total,
		       uint64_t *out)
{
	struct plx_op *a = &C.ops[0], *b = &C.ops[1];
	static const int modes[NOPS] = {M_LAT_SEND, M_LAT_WRITE, M_IDLE,
					M_LAT_WIMM};
	uint8_t seq = 0;
	uint32_t iseq = C.nimm; /* write_imm: last value */
	int rc = 0;

	if (op == OP_WRITE)
		marks_set(C.rbuf, size, 0);
	cmd(modes[op], size, 0, 1);
	plx_op_init(a, NULL, NULL);
	plx_op_init(b, NULL, NULL);
	room_op(a);
	for (uint64_t i = 0; i < total; i++) {
		uint64_t t0, t1;
		size_t cursor = 0;

		if (i == warm)
			counting(1);
		seq = next_seq(seq);
		if (op == OP_WRITE)
			marks_set(C.sbuf, size, seq);
		t0 = plx_now_ns();
		switch (op) {
		case OP_SEND:
			rc = plx_ep_recv(C.ep, b, C.rbuf, size, 0, 0);
			if (!rc)
				rc = plx_ep_send(C.ep, a, C.sbuf, size, 0);
			break;
		case OP_WRITE:
			rc = plx_ep_write(C.ep, a, C.sbuf, size, &g_srv_desc,
					  0);
			break;
		case OP_READ:
			rc = plx_ep_read(C.ep, a, C.rbuf, size, &g_srv_desc, 0);
			break;
		case OP_WIMM:
			iseq++;
			rc = plx_ep_write_imm(C.ep, a, C.sbuf, size,
					      &g_srv_desc, 0, iseq);
			break;
		}
		if (rc)
			die(op_names[op], rc);
		wait_handle(a, t0, op_names[op]);
		if (op == OP_SEND)
			wait_handle(b, t0, "recv");
		else if (op == OP_WRITE)
			while (!marks_seen(C.rbuf, size, seq, &cursor)) {
				plx_reactor_poll(&C.r);
				if (plx_now_ns() - t0 > OP_TIMEOUT_NS)
					die("write-back", PLX_ETIMEDOUT);
			}
		else if (op == OP_WIMM)
			while (C.imm_last != iseq) {
				plx_reactor_poll(&C.r);
				if (plx_now_ns() - t0 > OP_TIMEOUT_NS)
					die("write_imm back", PLX_ETIMEDOUT);
			}
		t1 = plx_now_ns();
		if (i >= warm)
			out[i - warm] = t1 - t0;
	}
	counting(0);
	g_ops_measured += total - warm;
	cmd(M_IDLE, 0, 0, 0);
}

static void lat_floor(int op, size_t size, uint64_t warm, uint64_t total,
		      uint64_t *out)
{
	size_t req = op == OP_READ ? FLOOR_READ_REQ : size;

	cmd(M_FLOOR_PP, size, req, 0);
	for (uint64_t i = 0; i < total; i++) {
		uint64_t t0 = plx_now_ns();

		send_hdr_all(g_fd_cli, C.sbuf, req, opt.floor_hdr);
		if (floor_staged(size)) {
			size_t got = 0;

			while (!stage_step(g_fd_cli, g_floor_stage[1], C.rbuf,
					   size, &got))
				;
		} else {
			recv_split(g_fd_cli, C.rbuf, size + opt.floor_hdr);
		}
		if (i >= warm)
			out[i - warm] = plx_now_ns() - t0;
	}
	cmd(M_IDLE, 0, 0, 0);
}

static int submit(int op, uint32_t i, size_t size, uint32_t slots)
{
	uint64_t off = (uint64_t)(i % slots) * size;
	struct plx_op *p = &C.ops[i];

	switch (op) {
	case OP_SEND:
		return plx_ep_send(C.ep, p, C.sbuf, size, 0);
	case OP_WRITE:
		return plx_ep_write(C.ep, p, C.sbuf, size, &g_srv_desc, off);
	case OP_READ:
		return plx_ep_read(C.ep, p, C.rbuf + off, size, &g_srv_desc,
				   off);
	default:
		return plx_ep_write_imm(C.ep, p, C.sbuf, size, &g_srv_desc, off,
					i);
	}
}

/* The turns of the client's loop (its submissions, with the flush at the
 * end of a batch, and one poll) in measured bandwidth windows: how long a
 * serving loop that polls pollux would wait to do its own work. */
#define TURNS_MAX (1u << 20)
static uint64_t g_turns[TURNS_MAX]; /* one bandwidth round's turns, ns */
static uint32_t g_nturns;
static uint64_t g_turn_max, g_turn_p99; /* the largest of all rounds' */
static int g_turn_op;
static size_t g_turn_size;
static uint32_t g_turn_w;

/* A round's turns: keep its p99 and its longest if larger than so far. */
static void turns_done(int op, size_t size, uint32_t w)
{
	uint64_t p99;

	if (!g_nturns)
		return;
	qsort(g_turns, g_nturns, sizeof(g_turns[0]), cmp_u64);
	p99 = g_turns[(uint64_t)g_nturns * 99 / 100];
	if (p99 > g_turn_p99) {
		g_turn_p99 = p99;
		g_turn_op = op;
		g_turn_size = size;
		g_turn_w = w;
	}
	if (g_turns[g_nturns - 1] > g_turn_max)
		g_turn_max = g_turns[g_nturns - 1];
	g_nturns = 0;
}

/* One pollux bandwidth round; returns ops per second. */
static double bw_pollux(int op, size_t size, uint32_t w)
{
	/* the same memory footprint as the floor's receiver buffer */
	uint32_t slots = (uint32_t)(stream_cap(size) / size);
	/* a batch is sent whole on one connection: the library does not
	 * stripe inside plx_ep_batch_begin/_end, so auto batches only ops
	 * below the stripe threshold */
	int batch = opt.batch == BATCH_AUTO ? size < g_stripe_threshold :
					      opt.batch == BATCH_ALWAYS;
	uint64_t warm_ns = (uint64_t)(opt.secs * 0.25e9),
		 dur = (uint64_t)(opt.secs * 1e9);
	uint64_t start, t0, t1, c0, c1;
	int rc;

	cmd(op == OP_SEND ? M_BW_SEND : M_IDLE, size, 0, w);
	C.ndone = 0;
	C.completed = 0;
	for (uint32_t i = 0; i < w; i++) {
		plx_op_init(&C.ops[i], op_done, (void *)(uintptr_t)op);
		C.done[C.ndone++] = i;
	}
	start = plx_now_ns();
	t0 = t1 = c0 = c1 = 0;
	/* the timed window opens and closes at a completion, so it holds a
	 * whole number of ops; it lasts at least opt.secs and MIN_OPS ops */
	for (int phase = 0; phase < 2;) {
		uint64_t now, before = C.completed, turn = plx_now_ns();

		if (C.ndone) {
			if (batch)
				plx_ep_batch_begin(C.ep);
			while (C.ndone) {
				rc = submit(op, C.done[--C.ndone], size, slots);
				if (rc)
					die(op_names[op], rc);
			}
			if (batch)
				plx_ep_batch_end(C.ep);
		}
		plx_reactor_poll(&C.r);
		now = plx_now_ns();
		if (phase == 1 && g_nturns < TURNS_MAX)
			g_turns[g_nturns++] = now - turn;
		if (C.completed == before)
			continue;
		if (phase == 0 && now - start >= warm_ns) {
			t0 = now;
			c0 = C.completed;
			counting(1);
			phase = 1;
		} else if (phase == 1 && now - t0 >= dur &&
			   C.completed - c0 >= MIN_OPS) {
			t1 = now;
			c1 = C.completed;
			counting(0);
			phase = 2;
		}
	}
	g_ops_measured += c1 - c0;
	turns_done(op, size, w);
	/* drain: every op comes home before the next test */
	start = plx_now_ns();
	while (C.ndone < w) {
		plx_reactor_poll(&C.r);
		if (plx_now_ns() - start > OP_TIMEOUT_NS)
			die("drain", PLX_ETIMEDOUT);
	}
	C.ndone = 0;
	cmd(M_IDLE, 0, 0, 0);
	return (double)(c1 - c0) / ((double)(t1 - t0) / 1e9);
}

/* One floor stream round; returns bytes per second delivered. */
static double bw_floor(int op, size_t size)
{
	uint64_t warm_ns = (uint64_t)(opt.secs * 0.25e9),
		 dur = (uint64_t)(opt.secs * 1e9);
	uint64_t start, t0 = 0, t1 = 0, b0 = 0, b1 = 0, tx = 0, last = 0;
	size_t k, off = 0, rx_off = 0;
	int phase = 0;

	if (op == OP_READ) {
		/* server -> client */
		C.rx = 0;
		cmd(M_FLOOR_TX, size, 0, 0);
		start = plx_now_ns();
		while (phase < 2) {
			uint64_t now;

			k = recv_stream(g_fd_cli, C.rbuf, stream_cap(size),
					&rx_off);
			if (!k)
				continue;
			C.rx += k;
			now = plx_now_ns();
			if (phase == 0 && now - start >= warm_ns) {
				t0 = now;
				b0 = C.rx;
				phase = 1;
			} else if (phase == 1 && now - t0 >= dur &&
				   C.rx - b0 >= MIN_OPS * size) {
				t1 = now;
				b1 = C.rx;
				phase = 2;
			}
		}
		cmd(M_IDLE, 0, 0, 0); /* drains the rest */
		return (double)(b1 - b0) / ((double)(t1 - t0) / 1e9);
	}
	cmd(M_FLOOR_RX, size, 0, 0);
	start = plx_now_ns();
	while (phase < 2) {
		uint64_t now, b;

		/* send() the message in a loop, one call per turn */
		k = send_some(g_fd_cli, C.sbuf + off, size - off);
		tx += k;
		off += k;
		if (off == size)
			off = 0;
		now = plx_now_ns();
		b = __atomic_load_n(&g_ctl.rx_bytes, __ATOMIC_RELAXED);
		if (b == last)
			continue;
		last = b;
		if (phase == 0 && now - start >= warm_ns) {
			t0 = now;
			b0 = b;
			phase = 1;
		} else if (phase == 1 && now - t0 >= dur &&
			   b - b0 >= MIN_OPS * size) {
			t1 = now;
			b1 = b;
			phase = 2;
		}
	}
	if (off) { /* finish the message */
		send_all(g_fd_cli, C.sbuf + off, size - off);
		tx += size - off;
	}
	/* T1: read by the server after the gen release in cmd() */
	g_ctl.tx_total = tx;
	cmd(M_IDLE, 0, 0, 0);
	return (double)(b1 - b0) / ((double)(t1 - t0) / 1e9);
}

/*
 * One round of the one-op floor, the reference for window 1: raw sockets
 * doing what one op in flight at a time does. The client sends SIZE bytes
 * and waits for the server's 32-byte acknowledgement, which the server
 * sends once all SIZE bytes are in (for read: a 32-byte request answered
 * with SIZE bytes); bytes per second over a window like the others'.
 */
static double bw_floor_one(int op, size_t size)
{
	size_t req = op == OP_READ ? FLOOR_READ_REQ : size;
	size_t resp = op == OP_READ ? size : FLOOR_ACK;
	uint64_t warm_ns = (uint64_t)(opt.secs * 0.25e9),
		 dur = (uint64_t)(opt.secs * 1e9);
	uint64_t start, now, t0 = 0, n = 0;

	cmd(M_FLOOR_ONE, resp, req, 0);
	start = plx_now_ns();
	for (;;) {
		send_all(g_fd_cli, C.sbuf, req);
		recv_all(g_fd_cli, C.rbuf, resp);
		now = plx_now_ns();
		if (!t0) {
			if (now - start >= warm_ns)
				t0 = now;
			continue;
		}
		if (++n >= MIN_OPS && now - t0 >= dur)
			break;
	}
	cmd(M_IDLE, 0, 0, 0);
	return (double)n * (double)size / ((double)(now - t0) / 1e9);
}

/* ---- the matrix --------------------------------------------------------- */

static int g_step, g_steps, g_progress;

static void progress(const char *what, int op, size_t size, uint32_t w,
		     int round)
{
	char sz[32];

	g_step++;
	if (!g_progress)
		return;
	fprintf(stderr, "\r\033[K[%d/%d] %s %s %s", g_step, g_steps, what,
		op_names[op], size_str(size, sz, sizeof(sz)));
	if (w)
		fprintf(stderr, " window %u", w);
	fprintf(stderr, " round %d/%d", round + 1, opt.rounds);
}

static uint64_t lat_iters(size_t size)
{
	uint64_t budget = (opt.quick ? 64ull : 512ull) << 20;
	uint64_t n = budget / size;

	if (n > opt.iters)
		n = opt.iters;
	if (n < 10)
		n = opt.iters < 10 ? opt.iters : 10;
	return n;
}

static void run_lat(int op, size_t size, uint64_t *px, uint64_t *fl)
{
	struct lat_row *row = &lat_rows[nlat++];
	uint64_t n = lat_iters(size), warm = n / 10 + 1;
	double scale = op == OP_READ ? 1.0 : 0.5;

	row->op = op;
	row->size = size;
	row->n = n;
	for (int r = 0; r < opt.rounds; r++) {
		int floor_first = r & 1;

		for (int k = 0; k < 2; k++) {
			int is_floor = k == 0 ? floor_first : !floor_first;

			if (is_floor && opt.no_floor)
				continue;
			if (!is_floor && opt.floor_only)
				continue;
			uint64_t rt = tcp_retrans();

			progress(is_floor ? "latency floor" : "latency", op,
				 size, 0, r);
			if (is_floor)
				lat_floor(op, size, warm, warm + n, fl + r * n);
			else
				lat_pollux(op, size, warm, warm + n,
					   px + r * n);
			g_retrans[0][is_floor] += tcp_retrans() - rt;
		}
	}
	if (!opt.floor_only)
		row->px = stats(px, n * (uint64_t)opt.rounds, scale);
	if (!opt.no_floor)
		row->fl = stats(fl, n * (uint64_t)opt.rounds, scale);
}

static uint32_t eff_window(size_t size, uint32_t w)
{
	uint64_t cap = BW_INFLIGHT / size;

	if (cap < 1)
		cap = 1;
	return w > cap ? (uint32_t)cap : w;
}

/* An earlier row of the group with the same effective window, or -1. */
static int same_window(const struct bw_row *first, int i)
{
	for (int j = 0; j < i; j++)
		if (first[j].weff == first[i].weff)
			return j;
	return -1;
}

/* Distinct effective windows for @size (rows that are measured). */
static int distinct_windows(size_t size)
{
	int n = 0;

	for (int i = 0; i < opt.nwindows; i++) {
		int dup = 0;

		for (int j = 0; j < i; j++)
			dup |= eff_window(size, opt.windows[j]) ==
			       eff_window(size, opt.windows[i]);
		n += !dup;
	}
	return n;
}

/* Whether some row of @size runs at window 1 (and so gets the one-op
 * floor). */
static int has_window_one(size_t size)
{
	for (int i = 0; i < opt.nwindows; i++)
		if (eff_window(size, opt.windows[i]) == 1)
			return 1;
	return 0;
}

/* One measured bandwidth round, its retransmissions counted: @what 0 the
 * stream floor, 1 the one-op floor, 2 + W pollux at window W. */
static double bw_counted(int op, size_t size, uint32_t what)
{
	uint64_t rt = tcp_retrans();
	double v = what == 0 ? bw_floor(op, size) :
		   what == 1 ? bw_floor_one(op, size) :
			       bw_pollux(op, size, what - 2);

	g_retrans[1][what < 2] += tcp_retrans() - rt;
	return v;
}

static void run_bw(int op, size_t size)
{
	struct bw_row *first = &bw_rows[nbw];
	int nw = opt.nwindows, one = 0;
	double fl[16], fl1[16];

	for (int i = 0; i < nw; i++) {
		struct bw_row *row = &bw_rows[nbw++];

		row->op = op;
		row->size = size;
		row->window = opt.windows[i];
		row->weff = eff_window(size, opt.windows[i]);
		one |= row->weff == 1;
	}
	for (int r = 0; r < opt.rounds; r++) {
		int floor_first = r & 1;

		if (floor_first && !opt.no_floor) {
			progress("stream floor", op, size, 0, r);
			fl[r] = bw_counted(op, size, 0);
			if (one) {
				progress("one-op floor", op, size, 1, r);
				fl1[r] = bw_counted(op, size, 1);
			}
		}
		for (int i = 0; i < nw && !opt.floor_only; i++) {
			if (same_window(first, i) >= 0)
				continue; /* capped to a window already run */
			progress("bandwidth", op, size, first[i].weff, r);
			first[i].px_r[r] =
				bw_counted(op, size, 2 + first[i].weff);
		}
		if (!floor_first && !opt.no_floor) {
			if (one) {
				progress("one-op floor", op, size, 1, r);
				fl1[r] = bw_counted(op, size, 1);
			}
			progress("stream floor", op, size, 0, r);
			fl[r] = bw_counted(op, size, 0);
		}
	}
	for (int i = 0; i < nw; i++) {
		int j = same_window(first, i);

		if (j >= 0)
			memcpy(first[i].px_r, first[j].px_r,
			       sizeof(first[i].px_r));
		if (!opt.floor_only)
			first[i].px_ops = median_dbl(first[i].px_r, opt.rounds);
		if (!opt.no_floor) {
			memcpy(first[i].fl_r, fl, sizeof(fl));
			first[i].fl_bytes = median_dbl(fl, opt.rounds);
		}
		if (!opt.no_floor && first[i].weff == 1) {
			memcpy(first[i].fl1_r, fl1, sizeof(fl1));
			first[i].fl1_bytes = median_dbl(fl1, opt.rounds);
		}
	}
}

/*
 * One untimed bandwidth pass of pollux and of the floor before the first
 * measured one: the first bulk transfer of a run measured about half the
 * rate of the later ones (1 MiB writes: 1.2-2.2 against 2.5-4.5 GB/s in
 * the same run), which put a slow first round into every median of a
 * short run. Its allocations are counted like the measured ones.
 */
static void bw_warmup(void)
{
	size_t size = 0;
	int op = OP_WRITE;

	for (int i = 0; i < opt.nsizes; i++)
		if (opt.sizes[i] <= (1u << 20) && opt.sizes[i] > size)
			size = opt.sizes[i];
	if (!size)
		size = opt.sizes[0];
	for (int i = 0; i < NOPS && !opt.ops[op]; i++)
		if (opt.ops[i])
			op = i;
	if (!opt.no_floor)
		bw_floor(op, size);
	if (!opt.floor_only) {
		bw_pollux(op, size, eff_window(size, 16));
		bw_pollux(op, size, 1);
	}
}

/* ---- output ------------------------------------------------------------- */

static double ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

static const struct lat_row *find_lat(int op, size_t size)
{
	for (int i = 0; i < nlat; i++)
		if (lat_rows[i].op == op && lat_rows[i].size == size)
			return &lat_rows[i];
	return NULL;
}

static const struct bw_row *find_bw(int op, size_t size, uint32_t w)
{
	for (int i = 0; i < nbw; i++)
		if (bw_rows[i].op == op && bw_rows[i].size == size &&
		    bw_rows[i].window == w)
			return &bw_rows[i];
	return NULL;
}

static void print_text(void)
{
	char sz[32];

	if (nlat) {
		printf("\nlatency, microseconds: one-way = round trip / 2 "
		       "(read: the round trip of one read)\n");
		printf("%-10s %8s %7s | %8s %8s %8s | %8s %8s %8s | %6s\n",
		       "op", "size", "iters", "median", "p99", "p99.9", "floor",
		       "f.p99", "f.p99.9", "ratio");
		for (int i = 0; i < nlat; i++) {
			const struct lat_row *r = &lat_rows[i];

			printf("%-10s %8s %7" PRIu64
			       " | %8.2f %8.2f %8.2f | %8.2f %8.2f %8.2f | "
			       "%6.2f\n",
			       op_names[r->op],
			       size_str(r->size, sz, sizeof(sz)),
			       r->n * (uint64_t)opt.rounds, r->px.med / 1e3,
			       r->px.p99 / 1e3, r->px.p999 / 1e3,
			       r->fl.med / 1e3, r->fl.p99 / 1e3,
			       r->fl.p999 / 1e3, ratio(r->px.med, r->fl.med));
		}
	}
	if (nbw) {
		printf("\nbandwidth: WINDOW ops in flight (effective window "
		       "in parentheses when capped); floor = one raw socket, "
		       "one direction, streaming;\n1-op floor (window 1): the "
		       "same socket, SIZE bytes then a 32-byte reply, one at a "
		       "time\n");
		printf("%-10s %8s %10s | %9s %10s | %10s %10s | %6s | %10s "
		       "%6s\n",
		       "op", "size", "window", "GB/s", "ops/s", "floor GB/s",
		       "msg/s", "ratio", "1-op floor", "ratio");
		for (int i = 0; i < nbw; i++) {
			const struct bw_row *r = &bw_rows[i];
			char win[32], ra[32], rb[32];
			double gbs = r->px_ops * (double)r->size / 1e9;

			if (r->weff != r->window)
				snprintf(win, sizeof(win), "%u (%u)", r->window,
					 r->weff);
			else
				snprintf(win, sizeof(win), "%u", r->window);
			printf("%-10s %8s %10s | %9.3f %10s | %10.3f %10s | "
			       "%6.2f",
			       op_names[r->op],
			       size_str(r->size, sz, sizeof(sz)), win, gbs,
			       rate_str(r->px_ops, ra, sizeof(ra)),
			       r->fl_bytes / 1e9,
			       rate_str(r->fl_bytes / (double)r->size, rb,
					sizeof(rb)),
			       ratio(gbs * 1e9, r->fl_bytes));
			if (r->fl1_bytes > 0)
				printf(" | %10.3f %6.2f\n", r->fl1_bytes / 1e9,
				       ratio(gbs * 1e9, r->fl1_bytes));
			else
				printf(" | %10s %6s\n", "-", "-");
		}
	}
}

static const char *const batch_names[] = {"auto", "always", "never"};

static void print_json(const double *load)
{
	printf("{\"cpus\": %ld, \"cpu\": \"%s\", \"kernel\": \"%s\", "
	       "\"load_start\": %.2f, "
	       "\"load_end\": %.2f, \"rounds\": %d, \"iters\": %" PRIu64
	       ", \"bw_seconds\": %.3f, "
	       "\"batch\": \"%s\", \"stripes\": %u, "
	       "\"heap_counted\": %s, \"heap_allocs\": %" PRIu64
	       ", \"ops_measured\": %" PRIu64 ", \"congestion\": \"%s\", "
	       "\"retransmits\": {\"latency\": [%" PRIu64 ", %" PRIu64
	       "], \"bandwidth\": [%" PRIu64 ", %" PRIu64 "]},\n "
	       "\"floor_header\": %zu, \"floor_split\": %zu, "
	       "\"floor_stage\": %s, \"headroom\": %s,\n \"latency\": [",
	       sysconf(_SC_NPROCESSORS_ONLN), cpu_desc(), kernel_desc(),
	       load[0], load[1], opt.rounds, opt.iters, opt.secs,
	       batch_names[opt.batch], g_stripes,
	       HEAP_COUNTED ? "true" : "false", g_heap_allocs, g_ops_measured,
	       floor_cc(), g_retrans[0][0], g_retrans[0][1], g_retrans[1][0],
	       g_retrans[1][1], opt.floor_hdr, opt.floor_split,
	       opt.floor_stage ? "true" : "false",
	       opt.no_headroom ? "false" : "true");
	for (int i = 0; i < nlat; i++) {
		const struct lat_row *r = &lat_rows[i];

		printf("%s\n  {\"op\": \"%s\", \"size\": %zu, \"samples\": "
		       "%" PRIu64 ", \"one_way\": %s, \"median_ns\": %.0f, "
		       "\"p99_ns\": %.0f, \"p999_ns\": %.0f, "
		       "\"floor_median_ns\": %.0f, \"floor_p99_ns\": %.0f, "
		       "\"floor_p999_ns\": %.0f, \"ratio\": %.3f}",
		       i ? "," : "", op_names[r->op], r->size,
		       r->n * (uint64_t)opt.rounds,
		       r->op == OP_READ ? "false" : "true", r->px.med,
		       r->px.p99, r->px.p999, r->fl.med, r->fl.p99, r->fl.p999,
		       ratio(r->px.med, r->fl.med));
	}
	printf("],\n \"bandwidth\": [");
	for (int i = 0; i < nbw; i++) {
		const struct bw_row *r = &bw_rows[i];
		double bps = r->px_ops * (double)r->size;

		printf("%s\n  {\"op\": \"%s\", \"size\": %zu, \"window\": %u, "
		       "\"window_eff\": %u, \"ops_per_s\": %.0f, "
		       "\"bytes_per_s\": %.0f, \"floor_bytes_per_s\": %.0f, "
		       "\"ratio\": %.3f, \"one_op_floor_bytes_per_s\": %.0f, "
		       "\"one_op_ratio\": %.3f, \"rounds_ops_per_s\": [",
		       i ? "," : "", op_names[r->op], r->size, r->window,
		       r->weff, r->px_ops, bps, r->fl_bytes,
		       ratio(bps, r->fl_bytes), r->fl1_bytes,
		       ratio(bps, r->fl1_bytes));
		for (int k = 0; k < opt.rounds; k++)
			printf("%s%.0f", k ? ", " : "", r->px_r[k]);
		printf("], \"rounds_floor_bytes_per_s\": [");
		for (int k = 0; k < opt.rounds; k++)
			printf("%s%.0f", k ? ", " : "", r->fl_r[k]);
		printf("], \"rounds_one_op_floor_bytes_per_s\": [");
		for (int k = 0; k < opt.rounds && r->fl1_bytes > 0; k++)
			printf("%s%.0f", k ? ", " : "", r->fl1_r[k]);
		printf("]}");
	}
	printf("]}\n");
}

static const char *yes(int ok)
{
	return ok ? "yes" : "**no**";
}

static void print_md(void)
{
	char sz[32];
	const struct lat_row *l;
	const struct bw_row *b, *b1;
	/* the latency floor pays a header or a staged read (or a split one) */
	const int framed = opt.floor_hdr || opt.floor_stage || opt.floor_split;

	if (nlat) {
		printf("| op | size | samples | median | p99 | p99.9 | floor "
		       "median | floor p99 | floor p99.9 | ratio |\n"
		       "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
		for (int i = 0; i < nlat; i++) {
			l = &lat_rows[i];
			printf("| %s | %s | %" PRIu64
			       " | %.2f µs | %.2f µs | %.2f µs | %.2f µs | "
			       "%.2f µs | %.2f µs | %.2f |\n",
			       op_names[l->op],
			       size_str(l->size, sz, sizeof(sz)),
			       l->n * (uint64_t)opt.rounds, l->px.med / 1e3,
			       l->px.p99 / 1e3, l->px.p999 / 1e3,
			       l->fl.med / 1e3, l->fl.p99 / 1e3,
			       l->fl.p999 / 1e3, ratio(l->px.med, l->fl.med));
		}
		printf("\n");
	}
	if (nbw) {
		printf("| op | size | window | GB/s | ops/s | floor GB/s | "
		       "floor msg/s | ratio | 1-op floor GB/s | ratio |\n"
		       "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
		for (int i = 0; i < nbw; i++) {
			char ra[32], rb[32];
			double gbs;

			b = &bw_rows[i];
			gbs = b->px_ops * (double)b->size / 1e9;
			printf("| %s | %s | %u", op_names[b->op],
			       size_str(b->size, sz, sizeof(sz)), b->window);
			if (b->weff != b->window)
				printf(" (%u)", b->weff);
			printf(" | %.3f | %s | %.3f | %s | %.2f |", gbs,
			       rate_str(b->px_ops, ra, sizeof(ra)),
			       b->fl_bytes / 1e9,
			       rate_str(b->fl_bytes / (double)b->size, rb,
					sizeof(rb)),
			       ratio(gbs * 1e9, b->fl_bytes));
			if (b->fl1_bytes > 0)
				printf(" %.3f | %.2f |\n", b->fl1_bytes / 1e9,
				       ratio(gbs * 1e9, b->fl1_bytes));
			else
				printf(" | |\n");
		}
		printf("\n");
	}
	/* the targets, where this run measured them */
	printf("| target | pollux | reference | ratio | goal | met |\n"
	       "|---|---:|---:|---:|---|---|\n");
	for (int op = OP_SEND; op <= OP_WRITE; op++)
		for (size_t s = 8; s <= 4096; s *= 512) {
			l = find_lat(op, s);
			if (!l || !l->fl.med || !l->px.med)
				continue;
			if (framed) {
				/* a floor that pays part of pollux's costs is
				 * no target's reference: it tells them apart */
				printf("| ping-pong %s %s, median one-way | "
				       "%.2f µs | framed floor %.2f µs | %.2f "
				       "| reference | |\n",
				       op_names[op],
				       size_str(s, sz, sizeof(sz)),
				       l->px.med / 1e3, l->fl.med / 1e3,
				       ratio(l->px.med, l->fl.med));
				continue;
			}
			printf("| ping-pong %s %s, median one-way | %.2f µs | "
			       "floor %.2f µs | %.2f | <= 1.10 x floor | %s |\n",
			       op_names[op], size_str(s, sz, sizeof(sz)),
			       l->px.med / 1e3, l->fl.med / 1e3,
			       ratio(l->px.med, l->fl.med),
			       yes(ratio(l->px.med, l->fl.med) <= 1.10));
		}
	for (size_t s = 1u << 20; s <= (64u << 20); s *= 64)
		for (int i = 0; i < nbw; i++) {
			double gbs;

			b = &bw_rows[i];
			if (b->op != OP_WRITE || b->size != s || !b->fl_bytes ||
			    !b->px_ops ||
			    (i && b[-1].op == b->op && b[-1].size == s &&
			     b[-1].weff == b->weff))
				continue;
			gbs = b->px_ops * (double)s / 1e9;
			/* the bandwidth target is for streamed batches; one
			 * op per round trip waits for each op's ACK, and is
			 * shown against both floors (docs/benchmarks.md,
			 * "Stop 17") */
			if (b->weff == 1)
				printf("| write %s, window 1 (one op per round "
				       "trip) | %.2f GB/s | stream floor %.2f "
				       "GB/s | %.2f | reference | |\n",
				       size_str(s, sz, sizeof(sz)), gbs,
				       b->fl_bytes / 1e9,
				       ratio(gbs * 1e9, b->fl_bytes));
			else
				printf("| write %s, window %u | %.2f GB/s | "
				       "stream floor %.2f GB/s | %.2f | >= 0.95 "
				       "x floor | %s |\n",
				       size_str(s, sz, sizeof(sz)), b->weff,
				       gbs, b->fl_bytes / 1e9,
				       ratio(gbs * 1e9, b->fl_bytes),
				       yes(ratio(gbs * 1e9, b->fl_bytes) >=
					   0.95));
			/* not a stream: the same pattern on raw sockets */
			if (b->fl1_bytes > 0)
				printf("| write %s, window 1, against raw sockets "
				       "doing the same (one message, then an "
				       "acknowledgement) | %.2f GB/s | one-op "
				       "floor %.2f GB/s | %.2f | reference | |\n",
				       size_str(s, sz, sizeof(sz)), gbs,
				       b->fl1_bytes / 1e9,
				       ratio(gbs * 1e9, b->fl1_bytes));
		}
	b = find_bw(OP_WRITE, 8, 256);
	b1 = find_bw(OP_WRITE, 8, 1);
	if (b && b1 && b->px_ops && b1->px_ops) {
		char ra[32], rb[32];

		printf("| 8 B writes, window 256 vs 1 (one op per round "
		       "trip) | %s ops/s | %s ops/s | %.2f | >= 2 x | %s |\n",
		       rate_str(b->px_ops, ra, sizeof(ra)),
		       rate_str(b1->px_ops, rb, sizeof(rb)),
		       ratio(b->px_ops, b1->px_ops),
		       yes(ratio(b->px_ops, b1->px_ops) >= 2));
	}
	if (HEAP_COUNTED && g_ops_measured)
		printf("| heap allocations per op (measured ops, both "
		       "threads) | %" PRIu64 " in %" PRIu64
		       " ops | | %.6f | 0 | %s |\n",
		       g_heap_allocs, g_ops_measured,
		       (double)g_heap_allocs / (double)g_ops_measured,
		       yes(g_heap_allocs == 0));
}

/* ---- options ------------------------------------------------------------ */

static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		end++;
		break;
	default:
		break;
	}
	if (end == s || *end || !v || v > (1ull << 30))
		return -1;
	*out = (size_t)v;
	return 0;
}

/* Split a comma-separated list; calls @fn for each item. */
static int parse_list(const char *arg, int (*fn)(const char *item))
{
	char buf[512], *save = NULL, *tok;

	if (strlen(arg) >= sizeof(buf))
		return -1;
	strcpy(buf, arg);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save))
		if (fn(tok))
			return -1;
	return 0;
}

static int add_op(const char *s)
{
	for (int i = 0; i < NOPS; i++)
		if (!strcmp(s, op_names[i])) {
			opt.ops[i] = 1;
			return 0;
		}
	if (!strcmp(s, "all")) {
		for (int i = 0; i < NOPS; i++)
			opt.ops[i] = 1;
		return 0;
	}
	return -1;
}

static int add_size(const char *s)
{
	if (opt.nsizes == MAX_LIST || parse_size(s, &opt.sizes[opt.nsizes]))
		return -1;
	opt.nsizes++;
	return 0;
}

static int add_window(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (opt.nwindows == MAX_LIST || *end || !v || v > MAX_WINDOW / 2)
		return -1;
	opt.windows[opt.nwindows++] = (uint32_t)v;
	return 0;
}

static int add_test(const char *s)
{
	if (!strcmp(s, "lat"))
		opt.lat = 1;
	else if (!strcmp(s, "bw"))
		opt.bw = 1;
	else
		return -1;
	return 0;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [options]\n"
		"  --ops LIST       send,write,read,write_imm (default: all)\n"
		"  --sizes LIST     bytes, k/m/g suffixes (default: "
		"8,64,512,4k,64k,1m,64m)\n"
		"  --window LIST    ops in flight for bandwidth, <= %d "
		"(default: 1,16,256)\n"
		"  --tests LIST     lat,bw (default: both)\n"
		"  --iters N        latency round trips per round, small "
		"sizes (default 10000)\n"
		"  --rounds R       interleaved rounds (default 3, at most "
		"16)\n"
		"  --time S         measured seconds per bandwidth round "
		"(default 0.3)\n"
		"  --batch MODE     resubmit a poll's completions in one "
		"plx_ep_batch:\n"
		"                   auto (below the stripe threshold), "
		"always, never\n"
		"  --stripes N      plx_tcp_config.stripes (default: the "
		"library's)\n"
		"  --cc NAME        TCP congestion control of pollux's and the "
		"floor's\n"
		"                   sockets (plx_tcp_config.congestion; "
		"default: the\n"
		"                   system's, net.ipv4.tcp_congestion_control)\n"
		"  --quick          1 round, 1000 iterations, 0.05 s\n"
		"  --json | --md    machine-readable / docs/benchmarks.md "
		"Markdown\n"
		"  --floor-only     only the raw-socket floor\n"
		"  --no-floor       only pollux\n"
		"  --transport T    tcp (default) or rdma (RC QPs; no floor)\n"
		"  --floor-header B the latency floor sends B bytes (<= 4096) "
		"from\n"
		"                   a second buffer in front of each message, "
		"in one\n"
		"                   sendmsg() of two iovecs, as pollux sends "
		"a frame\n"
		"  --floor-split R  the latency floor's receivers read the "
		"first R bytes\n"
		"                   of each message by themselves, then the "
		"rest\n"
		"  --floor-stage    the latency floor's receivers read each "
		"message\n"
		"                   (up to 64 KiB with its header) into a "
		"staging\n"
		"                   buffer and copy it out, as pollux reads a "
		"frame\n"
		"  --no-headroom    pollux's ping-pongs without "
		"PLX_OP_HEADROOM (each\n"
		"                   frame then leaves as header and payload, "
		"two iovecs)\n",
		prog, MAX_WINDOW / 2);
}

static int parse_args(int argc, char **argv)
{
	int have_ops = 0, rounds = 0;

	opt.stripes = -1;
	uint64_t iters = 0;
	double secs = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = 0;

		if (!strcmp(a, "--quick")) {
			opt.quick = 1;
		} else if (!strcmp(a, "--json")) {
			opt.json = 1;
		} else if (!strcmp(a, "--md")) {
			opt.md = 1;
		} else if (!strcmp(a, "--floor-only")) {
			opt.floor_only = 1;
		} else if (!strcmp(a, "--no-floor")) {
			opt.no_floor = 1;
		} else if (!strcmp(a, "--floor-stage")) {
			opt.floor_stage = 1;
		} else if (!strcmp(a, "--no-headroom")) {
			opt.no_headroom = 1;
		} else if (!v) {
			bad = 1;
		} else if (!strcmp(a, "--ops")) {
			bad = parse_list(v, add_op);
			have_ops = 1;
			i++;
		} else if (!strcmp(a, "--sizes")) {
			bad = parse_list(v, add_size);
			i++;
		} else if (!strcmp(a, "--window")) {
			bad = parse_list(v, add_window);
			i++;
		} else if (!strcmp(a, "--tests")) {
			bad = parse_list(v, add_test);
			i++;
		} else if (!strcmp(a, "--iters")) {
			iters = strtoull(v, NULL, 10);
			bad = !iters;
			i++;
		} else if (!strcmp(a, "--rounds")) {
			rounds = atoi(v);
			bad = rounds < 1 || rounds > 16;
			i++;
		} else if (!strcmp(a, "--batch")) {
			if (!strcmp(v, "auto"))
				opt.batch = BATCH_AUTO;
			else if (!strcmp(v, "always"))
				opt.batch = BATCH_ALWAYS;
			else if (!strcmp(v, "never"))
				opt.batch = BATCH_NEVER;
			else
				bad = 1;
			i++;
		} else if (!strcmp(a, "--floor-header")) {
			char *end;
			unsigned long h = strtoul(v, &end, 10);

			bad = *end || h > FLOOR_HDR_MAX;
			opt.floor_hdr = h;
			i++;
		} else if (!strcmp(a, "--floor-split")) {
			char *end;
			unsigned long r = strtoul(v, &end, 10);

			bad = *end || !r;
			opt.floor_split = r;
			i++;
		} else if (!strcmp(a, "--cc")) {
			opt.cc = v;
			bad = !*v || strlen(v) >= 16;
			i++;
		} else if (!strcmp(a, "--stripes")) {
			opt.stripes = atoi(v);
			bad = opt.stripes < 0 || opt.stripes > 8;
			i++;
		} else if (!strcmp(a, "--transport") && v) {
			opt.rdma = !strcmp(v, "rdma");
			bad = !opt.rdma && strcmp(v, "tcp");
			i++;
		} else if (!strcmp(a, "--time")) {
			secs = atof(v);
			bad = !(secs > 0 && secs <= 60);
			i++;
		} else {
			bad = 1;
		}
		if (bad) {
			usage(argv[0]);
			return -1;
		}
	}
	if (opt.rdma)
		opt.no_floor = 1; /* the floor is a TCP socket */
	/* a staged read has no first part read by itself */
	if ((opt.json && opt.md) || (opt.floor_only && opt.no_floor) ||
	    (opt.floor_stage && opt.floor_split)) {
		usage(argv[0]);
		return -1;
	}
	if (!have_ops)
		add_op("all");
	if (!opt.nsizes)
		parse_list("8,64,512,4k,64k,1m,64m", add_size);
	if (!opt.nwindows)
		parse_list("1,16,256", add_window);
	if (!opt.lat && !opt.bw)
		opt.lat = opt.bw = 1;
	opt.rounds = rounds ? rounds : opt.quick ? 1 : 3;
	opt.iters = iters ? iters : opt.quick ? 1000 : 10000;
	opt.secs = secs > 0 ? secs : opt.quick ? 0.05 : 0.3;
	return 0;
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct plx_tcp_config cfg;
	struct plx_reactor_stats st0, st1;
	uint64_t *px = NULL, *fl = NULL, maxn = 0, end, srv_heap0;
	double load[2] = {0, 0};
	pthread_t th;
	int rc;

	if (parse_args(argc, argv))
		return 2;
	g_max = 0;
	for (int i = 0; i < opt.nsizes; i++) {
		if (opt.sizes[i] > g_max)
			g_max = opt.sizes[i];
		if (lat_iters(opt.sizes[i]) > maxn)
			maxn = lat_iters(opt.sizes[i]);
	}
	g_max = (g_max + 4095) & ~(size_t)4095;
	g_progress = isatty(2);
	getloadavg(load, 1);
	for (int op = 0; op < NOPS; op++) {
		int p = !opt.floor_only, f = !opt.no_floor;

		for (int i = 0; i < opt.nsizes && opt.ops[op]; i++)
			g_steps +=
				opt.rounds *
				((opt.lat ? p + f : 0) +
				 (opt.bw ? p * distinct_windows(opt.sizes[i]) +
						   f * (1 +
							has_window_one(
								opt.sizes[i])) :
					   0));
	}
	plx_tcp_config_init(&cfg);
	g_chunk = cfg.stripe_chunk;
	if (opt.stripes >= 0)
		cfg.stripes = (uint32_t)opt.stripes;
	g_stripes = cfg.stripes;
	g_stripe_threshold = cfg.stripes ? cfg.stripe_threshold : SIZE_MAX;

	/* set-up (allocations here are not counted) */
	px = calloc(maxn * (uint64_t)opt.rounds, sizeof(*px));
	fl = calloc(maxn * (uint64_t)opt.rounds, sizeof(*fl));
	if (!px || !fl)
		die("out of memory", PLX_ENOMEM);
	floor_pair();
	if (pthread_create(&th, NULL, server, NULL))
		die("pthread_create", 1);
	while (!__atomic_load_n(&g_srv_ready, __ATOMIC_ACQUIRE))
		sched_yield();
	pin(1);
	C.sbuf = xalloc_room(g_max + FLOOR_HDR_MAX);
	C.rbuf = xalloc(g_max + FLOOR_HDR_MAX);
	tcp_cfg(&cfg, cli_imm, NULL);
	cfg.event_cb = cli_event;
	if ((rc = plx_reactor_init(&C.r, NULL)) ||
	    (rc = plx_tcp_init(&C.r, &cfg)))
		die("client set-up", rc);
	if (opt.rdma)
		rdma_attach(1, &C.r, C.sbuf, g_max);
	if ((rc = plx_mem_register(&C.r, &C.reg, C.rbuf, g_max,
				   PLX_ACCESS_ALL)) ||
	    (rc = plx_mem_desc(&C.r, &C.reg, &g_cli_desc)) ||
	    (rc = plx_tcp_connect(&C.r, "127.0.0.1", g_port, &C.ep)))
		die("client set-up", rc);
	end = plx_now_ns() + 5000000000ull;
	while (!C.connected && plx_now_ns() < end)
		plx_reactor_poll(&C.r);
	if (!C.connected)
		die("connect", PLX_ETIMEDOUT);
	/* no API says when the striped data connections are up: give them
	 * 300 ms (plx_bench_stripe does the same) */
	end = plx_now_ns() + 300000000ull;
	while (plx_now_ns() < end)
		plx_reactor_poll(&C.r);
	cmd(M_IDLE, 0, 0, 0);
	srv_heap0 = g_ctl.srv_heap;
	plx_reactor_stats(&C.r, &st0);

	if (!opt.json && !opt.md)
		printf("plx_bench: pollux %s over loopback, server CPU 0, "
		       "client CPU 1, busy-polling; %ld CPUs, %s, load "
		       "%.2f, %d round%s; TCP congestion control %s%s\n",
		       opt.rdma ? "RDMA (RC QPs)" : "TCP",
		       sysconf(_SC_NPROCESSORS_ONLN), cpu_desc(), load[0],
		       opt.rounds, opt.rounds > 1 ? "s" : "", floor_cc(),
		       opt.cc ? " (--cc)" : " (system default)");
	if (opt.bw) {
		if (g_progress)
			fprintf(stderr, "\r\033[Kbandwidth warm-up");
		bw_warmup();
	}
	for (int op = 0; op < NOPS; op++) {
		if (!opt.ops[op])
			continue;
		for (int i = 0; i < opt.nsizes && opt.lat; i++)
			run_lat(op, opt.sizes[i], px, fl);
		for (int i = 0; i < opt.nsizes && opt.bw; i++)
			run_bw(op, opt.sizes[i]);
	}
	if (g_progress)
		fprintf(stderr, "\r\033[K");

	cmd(M_IDLE, 0, 0, 0);
	plx_reactor_stats(&C.r, &st1);
	getloadavg(&load[1], 1);
	if (opt.json) {
		print_json(load);
	} else if (opt.md) {
		print_md();
	} else {
		print_text();
		printf("\n");
	}
	if (!opt.json) {
		if (HEAP_COUNTED)
			printf("%sheap allocations during measured ops: %" PRIu64
			       " (%" PRIu64 " ops, both threads)\n",
			       opt.md ? "\n" : "", g_heap_allocs,
			       g_ops_measured);
		else
			printf("heap allocations during measured ops: not "
			       "counted (built without PLX_BENCH_WRAP)\n");
		printf("library heap allocations after set-up "
		       "(plx_reactor_stats): client %" PRIu64
		       ", server %" PRIu64 "\n",
		       st1.heap_allocs - st0.heap_allocs,
		       g_ctl.srv_heap - srv_heap0);
		if (g_turn_max) {
			char sz[32];

			printf("client loop turns (submissions and one poll) "
			       "while bandwidth was measured: p99 up to %.0f us "
			       "(%s %s, window %u), longest %.0f us\n",
			       (double)g_turn_p99 / 1e3, op_names[g_turn_op],
			       size_str(g_turn_size, sz, sizeof(sz)), g_turn_w,
			       (double)g_turn_max / 1e3);
		}
		printf("CPU: %s; kernel: %s\n", cpu_desc(), kernel_desc());
		printf("load average (1 min): %.2f at the start, %.2f at the "
		       "end; stripes %u, batch %s",
		       load[0], load[1], g_stripes, batch_names[opt.batch]);
		printf("; ping-pongs %s PLX_OP_HEADROOM",
		       opt.no_headroom ? "without" : "with");
		if (opt.floor_hdr)
			printf("; latency floor: %zu-byte header in front of "
			       "each message",
			       opt.floor_hdr);
		if (opt.floor_split)
			printf("; latency floor: the first %zu bytes of each "
			       "message read by themselves",
			       opt.floor_split);
		if (opt.floor_stage)
			printf("; latency floor: messages up to 64 KiB read "
			       "into a staging buffer and copied out");
		printf("\nTCP congestion control %s%s; segments "
		       "retransmitted during the measurements (all sockets, "
		       "/proc/net/snmp): latency pollux %" PRIu64
		       ", floor %" PRIu64 "; bandwidth pollux %" PRIu64
		       ", floor %" PRIu64 "\n",
		       floor_cc(), opt.cc ? " (--cc)" : " (system default)",
		       g_retrans[0][0], g_retrans[0][1], g_retrans[1][0],
		       g_retrans[1][1]);
	}
	if (opt.rdma) {
		struct plx_rdma_stats rs;
		struct plx_rdma_info ri;

		if (!plx_rdma_stats(&C.r, &rs) && !plx_rdma_info(&C.r, &ri))
			fprintf(opt.json ? stderr : stdout,
				"RDMA: %s, client ops over the QPs: %" PRIu64
				" (%" PRIu64 " ibv_post_send calls, %" PRIu64
				" WRs inline), work completion errors: %" PRIu64
				"\n",
				ri.device, rs.ops_posted, rs.post_calls,
				rs.inline_wrs, rs.wc_errors);
	}

	__atomic_store_n(&g_quit, 1, __ATOMIC_RELAXED);
	cmd(M_QUIT, 0, 0, 0);
	pthread_join(th, NULL);
	plx_mem_deregister(&C.r, &C.reg);
	rdma_detach(1, &C.r);
	plx_tcp_shutdown(&C.r);
	end = plx_now_ns() + 5000000000ull;
	while ((rc = plx_reactor_fini(&C.r)) == PLX_EBUSY && plx_now_ns() < end)
		plx_reactor_poll(&C.r);
	if (rc)
		die("plx_reactor_fini", rc);
	free(g_rdma[1].pool_mem);
	close(g_fd_cli);
	close(g_fd_srv);
	free_room(C.sbuf);
	free(C.rbuf);
	free(px);
	free(fl);
	return 0;
}
