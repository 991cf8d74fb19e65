/* SPDX-License-Identifier: MIT */
/*
 * pingpong: send/recv ping-pong over pollux, TCP or RDMA, with a latency
 * table by message size.
 *
 *   pingpong [--iters N]                     server and client in one
 *                                            process, two threads
 *   pingpong --server [--port P]             echo server (one client, then
 *                                            exit)
 *   pingpong --client HOST --port P [--iters N]
 *   ... [--transport tcp|rdma] [--cc NAME]
 *
 * --cc NAME sets the TCP congestion control of pollux's sockets
 * (plx_tcp_config.congestion). With both sides in one process the default
 * is "cubic": on loopback the system's usual BBR made 1 MiB messages 2.5
 * to 3 times slower, for raw sockets as much as for pollux (docs/tcp.md,
 * "Congestion control"); when the kernel refuses cubic, the
 * system's algorithm is used and the header says so. --server and
 * --client keep the system's unless --cc is given.
 *
 * --transport rdma attaches the RDMA transport to both sides (exit 2 when
 * there is no device: pollux reports PLX_EUNAVAIL), with a receive pool of
 * POOL_N buffers of MAX_MSG + 64 bytes, and registers the message
 * buffers: the sends then go over RC QPs (the TCP session sets them up).
 * The table's last line says how many sends the QPs carried.
 *
 * The server posts a receive, echoes each message back with a send from
 * the buffer it arrived in, and posts the next receive in a second buffer.
 * The client posts its receive, sends, and busy-polls until both have
 * completed: one round trip. Every send sets PLX_OP_HEADROOM (its buffer
 * has 128 bytes in front to itself), so over TCP each message leaves as
 * one buffer with its header. Both sides busy-poll their own reactor. With
 * no arguments the server runs on CPU 0 and the client on CPU 1 (when
 * there are two CPUs or more).
 *
 * Printed per size: median, p99 and p99.9 of the one-way latency (round
 * trip / 2, after 10 % of the iterations as warm-up) and the message rate
 * (messages delivered per second, counting both directions: two per round
 * trip). Every echo is checked (sequence number at both ends of the
 * message, the whole message on the first and last round trip).
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pollux/pollux.h"
#include "pollux/rdma.h"
#include "pollux/tcp.h"

#define MAX_MSG (1u << 20)	 /* largest message: the default max_message */
#define CONNECT_NS 5000000000ull /* connection set-up bound */
#define ROUND_NS 5000000000ull	 /* one round trip must not take longer */
#define DEFAULT_PORT 18515
#define POOL_N 8     /* receive pool buffers (rdma) */
#define POOL_DEPTH 4 /* receives posted per QP (rdma) */

static int use_rdma;
static const char *cc_name; /* --cc, or the one-process default; NULL:
			     * the system's */

static const size_t sizes[] = {8,	  64,	      512,     4096,
			       32u << 10, 256u << 10, 1u << 20};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

/* ---- shared ------------------------------------------------------------- */

struct side {
	struct plx_reactor r;
	/* rdma: the receive pool, in a registered region */
	struct plx_pool pool;
	struct plx_region pool_reg;
	void *pool_mem;
	struct plx_ep *peer; /* server: the accepted client */
	int connected;	     /* client: handshake done */
	int down;	     /* the peer went away (status in down_status) */
	int down_status;
};

static void on_event(struct plx_reactor *r, struct plx_ep *ep, int event,
		     int status, void *arg)
{
	struct side *s = arg;

	(void)r;
	switch (event) {
	case PLX_EP_ACCEPTED:
		if (!s->peer)
			s->peer = ep;
		break;
	case PLX_EP_CONNECTED:
		s->connected = 1;
		break;
	case PLX_EP_RESTARTED:
	case PLX_EP_DOWN:
		s->down = 1;
		s->down_status = status;
		break;
	default:
		break;
	}
}

static int side_fini(struct side *s);

/* Attach RDMA with a receive pool (rdma mode). PLX_EUNAVAIL: no device. */
static int rdma_init(struct side *s)
{
	struct plx_rdma_config rc;
	size_t len = plx_pool_memsize(MAX_MSG + 64, POOL_N);
	int err;

	s->pool_mem = aligned_alloc(4096, (len + 4095) & ~(size_t)4095);
	if (!s->pool_mem)
		return PLX_ENOMEM;
	err = plx_pool_init(&s->pool, s->pool_mem, len, MAX_MSG + 64, POOL_N);
	if (!err)
		err = plx_mem_register(&s->r, &s->pool_reg, s->pool_mem, len,
				       0);
	if (err) {
		free(s->pool_mem);
		s->pool_mem = NULL;
		return err;
	}
	plx_rdma_config_init(&rc);
	rc.recv_pool = &s->pool;
	rc.recv_depth = POOL_DEPTH;
	return plx_rdma_init(&s->r, &rc);
}

/* pollux's warnings and errors go to stderr */
static void log_stderr(void *arg, int level, const char *msg)
{
	(void)arg;
	fprintf(stderr, "pollux[%d]: %s\n", level, msg);
}

static int side_init(struct side *s, const char *listen_addr, uint16_t port,
		     uint16_t *port_out)
{
	struct plx_reactor_config rcfg;
	struct plx_tcp_config cfg;
	int rc;

	memset(s, 0, sizeof(*s));
	plx_reactor_config_init(&rcfg);
	rcfg.log_cb = log_stderr;
	rcfg.log_level = PLX_LOG_WARN;
	rc = plx_reactor_init(&s->r, &rcfg);
	if (rc) {
		fprintf(stderr, "plx_reactor_init: %s\n", plx_strerror(rc));
		return rc;
	}
	plx_tcp_config_init(&cfg);
	cfg.event_cb = on_event;
	cfg.cb_arg = s;
	cfg.congestion = cc_name;
	rc = plx_tcp_init(&s->r, &cfg);
	if (rc && cc_name) {
		fprintf(stderr,
			"plx_tcp_init with congestion control "
			"\"%s\": %s\n",
			cc_name, plx_strerror(rc));
		side_fini(s);
		return rc;
	}
	if (!rc && use_rdma)
		rc = rdma_init(s);
	if (!rc && listen_addr)
		rc = plx_tcp_listen(&s->r, listen_addr, port, port_out);
	if (rc) {
		if (rc == PLX_EUNAVAIL)
			fprintf(stderr, "RDMA transport unavailable on this "
					"host (no rdma-core or no active "
					"device)\n");
		else
			fprintf(stderr, "set-up: %s\n", plx_strerror(rc));
		side_fini(s);
	}
	return rc;
}

/* Close everything and wait (bounded) until the reactor can be released. */
static int side_fini(struct side *s)
{
	uint64_t end = plx_now_ns() + CONNECT_NS;
	int rc;

	if (s->pool_mem)
		plx_mem_deregister(&s->r, &s->pool_reg);
	plx_tcp_shutdown(&s->r);
	while ((rc = plx_reactor_fini(&s->r)) == PLX_EBUSY &&
	       plx_now_ns() < end)
		plx_reactor_poll(&s->r);
	if (rc)
		fprintf(stderr, "plx_reactor_fini: %s\n", plx_strerror(rc));
	free(s->pool_mem);
	s->pool_mem = NULL;
	return rc;
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

static void *xalloc(size_t n)
{
	void *p = aligned_alloc(64, n);

	if (!p) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	memset(p, 0, n);
	return p;
}

/*
 * A send buffer with PLX_HEADROOM bytes in front that belong to it: its
 * sends set PLX_OP_HEADROOM, so each frame's header goes there and header
 * and payload leave as one buffer (docs/tcp.md, "Headroom").
 */
static uint8_t *xalloc_room(size_t n)
{
	return (uint8_t *)xalloc(PLX_HEADROOM + n) + PLX_HEADROOM;
}

static void free_room(uint8_t *p)
{
	free(p - PLX_HEADROOM);
}

/* ---- server ------------------------------------------------------------- */

/*
 * Serve one client: echo every message until it disconnects. Buffers
 * alternate: the echo of buffer k is still in flight (it belongs to
 * pollux until acknowledged) while the next message lands in buffer k^1.
 * Return 0 when the client left cleanly.
 */
static int serve(struct side *s, int *echoes_out)
{
	uint8_t *buf[2] = {xalloc_room(MAX_MSG), xalloc_room(MAX_MSG)};
	struct plx_op rop, sop[2];
	struct plx_region reg[2];
	int posted = 0, busy[2] = {0, 0}, k = 0, rc = 0, echoes = 0;

	/* over RDMA the echoes go from registered memory */
	for (int i = 0; i < 2 && use_rdma; i++)
		if (plx_mem_register(&s->r, &reg[i], buf[i], MAX_MSG, 0))
			return 1;
	plx_op_init(&rop, NULL, NULL);
	plx_op_init(&sop[0], NULL, NULL);
	plx_op_init(&sop[1], NULL, NULL);
	sop[0].flags = sop[1].flags = PLX_OP_HEADROOM; /* one buffer each */
	for (;;) {
		plx_reactor_poll(&s->r);
		for (int i = 0; i < 2; i++)
			if (busy[i] && plx_req_test_mt(&sop[i].req)) {
				busy[i] = 0;
				if (sop[i].req.status && !s->down) {
					fprintf(stderr, "server: echo: %s\n",
						plx_strerror(
							sop[i].req.status));
					rc = 1;
				}
			}
		if (!s->peer)
			continue;
		if (!posted) {
			if (s->down)
				break;
			if (busy[k])
				continue; /* buffer k still being echoed */
			rc = plx_ep_recv(s->peer, &rop, buf[k], MAX_MSG, 0, 0);
			if (rc) {
				fprintf(stderr, "server: recv: %s\n",
					plx_strerror(rc));
				break;
			}
			posted = 1;
		}
		if (!plx_req_test_mt(&rop.req))
			continue;
		posted = 0;
		if (rop.req.status) {
			/* the client closed: the posted receive fails */
			if (!s->down) {
				fprintf(stderr, "server: receive: %s\n",
					plx_strerror(rop.req.status));
				rc = 1;
			}
			break;
		}
		rc = plx_ep_send(s->peer, &sop[k], buf[k], rop.req.bytes, 0);
		if (rc) {
			fprintf(stderr, "server: send: %s\n", plx_strerror(rc));
			break;
		}
		busy[k] = 1;
		echoes++;
		k ^= 1;
	}
	/* let echoes in flight finish or fail before the buffers go */
	while (busy[0] || busy[1]) {
		plx_reactor_poll(&s->r);
		for (int i = 0; i < 2; i++)
			if (busy[i] && plx_req_test_mt(&sop[i].req))
				busy[i] = 0;
	}
	for (int i = 0; i < 2 && use_rdma; i++)
		plx_mem_deregister(&s->r, &reg[i]);
	free_room(buf[0]);
	free_room(buf[1]);
	*echoes_out = echoes;
	if (rc == 0 && s->down && s->down_status != PLX_ESHUTDOWN &&
	    s->down_status != 0) {
		fprintf(stderr, "server: client lost: %s\n",
			plx_strerror(s->down_status));
		rc = 1;
	}
	return rc;
}

/* ---- client ------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void stamp(uint8_t *msg, size_t len, uint64_t seq)
{
	memcpy(msg, &seq, len < 8 ? len : 8);
	if (len >= 16)
		memcpy(msg + len - 8, &seq, 8);
}

static int check(const uint8_t *echo, const uint8_t *sent, size_t len,
		 uint64_t seq, int full)
{
	uint64_t a = 0, b = seq;

	if (full)
		return memcmp(echo, sent, len) ? -1 : 0;
	memcpy(&a, echo, len < 8 ? len : 8);
	memcpy(&b, sent, len < 8 ? len : 8);
	if (a != b)
		return -1;
	if (len >= 16 && memcmp(echo + len - 8, sent + len - 8, 8))
		return -1;
	return 0;
}

/* One round trip of @len bytes. Return the RTT in ns, or 0 on failure. */
static uint64_t round_trip(struct side *s, struct plx_ep *ep,
			   struct plx_op *sop, struct plx_op *rop,
			   const uint8_t *out, uint8_t *in, size_t len)
{
	uint64_t t0 = plx_now_ns(), t1;
	int rc;

	rc = plx_ep_recv(ep, rop, in, len, 0, 0);
	if (!rc)
		rc = plx_ep_send(ep, sop, out, len, 0);
	if (rc) {
		fprintf(stderr, "client: submit: %s\n", plx_strerror(rc));
		return 0;
	}
	while (!plx_req_test_mt(&rop->req) || !plx_req_test_mt(&sop->req)) {
		plx_reactor_poll(&s->r);
		if ((plx_now_ns() - t0) > ROUND_NS) {
			fprintf(stderr, "client: no echo within %llu s\n",
				(unsigned long long)(ROUND_NS / 1000000000ull));
			return 0;
		}
	}
	t1 = plx_now_ns();
	if (rop->req.status || sop->req.status) {
		fprintf(stderr, "client: send %s, recv %s\n",
			plx_strerror(sop->req.status),
			plx_strerror(rop->req.status));
		return 0;
	}
	if (rop->req.bytes != len) {
		fprintf(stderr, "client: echo of %zu bytes has %llu\n", len,
			(unsigned long long)rop->req.bytes);
		return 0;
	}
	return t1 > t0 ? t1 - t0 : 1;
}

static int run_client(struct side *s, struct plx_ep *ep, uint64_t iters)
{
	uint8_t *out = xalloc_room(MAX_MSG), *in = xalloc(MAX_MSG);
	uint64_t *rtt = calloc(iters + iters / 10 + 10, sizeof(uint64_t));
	struct plx_op sop, rop;
	struct plx_region reg;
	struct plx_rdma_stats st0, st1;
	uint64_t end = plx_now_ns() + CONNECT_NS, sends = 0;
	int rc = 0;

	if (!rtt) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	if (use_rdma && (plx_mem_register(&s->r, &reg, out, MAX_MSG, 0) ||
			 plx_rdma_stats(&s->r, &st0))) {
		free(rtt);
		return 1;
	}
	for (size_t i = 0; i < MAX_MSG; i++)
		out[i] = (uint8_t)(i * 131 + 7);
	while (!s->connected && !s->down && plx_now_ns() < end)
		plx_reactor_poll(&s->r);
	if (!s->connected) {
		fprintf(stderr, "client: cannot connect: %s\n",
			s->down ? plx_strerror(s->down_status) : "timed out");
		rc = 1;
		goto out;
	}
	plx_op_init(&sop, NULL, NULL);
	plx_op_init(&rop, NULL, NULL);
	sop.flags = PLX_OP_HEADROOM;
	printf("pollux ping-pong, %s, send/recv, both sides busy-polling\n",
	       use_rdma ? "RDMA (RC QPs set up over TCP)" : "TCP");
	printf("TCP congestion control: %s\n",
	       cc_name ? cc_name :
			 "the system's (net.ipv4.tcp_congestion_control)");
	printf("one-way latency = round trip / 2, in microseconds; msg/s "
	       "counts both directions\n");
	printf("%10s %8s %10s %10s %10s %12s\n", "size", "iters", "median",
	       "p99", "p99.9", "msg/s");
	for (size_t z = 0; z < NSIZES && !rc; z++) {
		size_t len = sizes[z];
		/* large messages: fewer round trips, at least 100 */
		uint64_t n = (256ull << 20) / len;
		uint64_t warm, total, sum = 0;

		if (n > iters)
			n = iters;
		if (n < 100)
			n = iters < 100 ? iters : 100;
		warm = n / 10 + 1;
		total = warm + n;
		for (uint64_t i = 0; i < total; i++) {
			int full = i == 0 || i == total - 1;
			uint64_t t;

			stamp(out, len, i + 1);
			t = round_trip(s, ep, &sop, &rop, out, in, len);
			sends++;
			if (!t) {
				rc = 1;
				break;
			}
			if (check(in, out, len, i + 1, full)) {
				fprintf(stderr,
					"client: echo %llu of %zu bytes differs "
					"from what was sent\n",
					(unsigned long long)i, len);
				rc = 1;
				break;
			}
			if (i >= warm) {
				rtt[i - warm] = t;
				sum += t;
			}
		}
		if (rc)
			break;
		qsort(rtt, n, sizeof(*rtt), cmp_u64);
		printf("%10zu %8llu %10.2f %10.2f %10.2f %12.0f\n", len,
		       (unsigned long long)n, rtt[n / 2] / 2e3,
		       rtt[n * 99 / 100] / 2e3, rtt[n * 999 / 1000] / 2e3,
		       2.0 * (double)n / ((double)sum / 1e9));
		fflush(stdout);
	}
	if (use_rdma && !rc) {
		plx_rdma_stats(&s->r, &st1);
		printf("RDMA: %llu of the client's %llu sends went over the QPs "
		       "(the rest over TCP: larger than the peer's receive "
		       "buffers)\n",
		       (unsigned long long)(st1.ops_posted - st0.ops_posted),
		       (unsigned long long)sends);
		if (st1.ops_posted == st0.ops_posted) {
			fprintf(stderr, "client: no send went over RDMA\n");
			rc = 1;
		}
	}
out:
	if (use_rdma)
		plx_mem_deregister(&s->r, &reg);
	free_room(out);
	free(in);
	free(rtt);
	return rc;
}

/* ---- modes -------------------------------------------------------------- */

struct local {
	struct side srv;
	uint16_t port;
	int ready; /* 1: listening, -1: set-up failed */
	int rc;
};

static void *local_server(void *arg)
{
	struct local *l = arg;
	int echoes = 0;

	pin(0);
	if (side_init(&l->srv, "127.0.0.1", 0, &l->port)) {
		__atomic_store_n(&l->ready, -1, __ATOMIC_RELEASE);
		l->rc = 1;
		return NULL;
	}
	__atomic_store_n(&l->ready, 1, __ATOMIC_RELEASE);
	l->rc = serve(&l->srv, &echoes);
	if (side_fini(&l->srv))
		l->rc = 1;
	return NULL;
}

static int client_session(const char *host, uint16_t port, uint64_t iters)
{
	struct side cli;
	struct plx_ep *ep;
	int rc;

	if (side_init(&cli, NULL, 0, NULL))
		return 1;
	rc = plx_tcp_connect(&cli.r, host, port, &ep);
	if (rc) {
		fprintf(stderr, "plx_tcp_connect %s:%u: %s\n", host, port,
			plx_strerror(rc));
		side_fini(&cli);
		return 1;
	}
	rc = run_client(&cli, ep, iters);
	/* closing the endpoint tells the server we are done */
	plx_ep_close(ep);
	if (side_fini(&cli))
		rc = 1;
	return rc;
}

static int mode_local(uint64_t iters)
{
	static struct local l;
	pthread_t th;
	int rc, ready;

	if (pthread_create(&th, NULL, local_server, &l)) {
		fprintf(stderr, "pthread_create failed\n");
		return 1;
	}
	while (!(ready = __atomic_load_n(&l.ready, __ATOMIC_ACQUIRE)))
		sched_yield();
	if (ready < 0) {
		pthread_join(th, NULL);
		return 1;
	}
	pin(1);
	rc = client_session("127.0.0.1", l.port, iters);
	pthread_join(th, NULL);
	return rc || l.rc;
}

static int mode_server(uint16_t port)
{
	struct side srv;
	uint16_t bound;
	int echoes = 0, rc;

	if (side_init(&srv, "0.0.0.0", port, &bound))
		return 1;
	printf("pingpong server listening on port %u\n", bound);
	fflush(stdout);
	rc = serve(&srv, &echoes);
	printf("client done: %d messages echoed\n", echoes);
	if (side_fini(&srv))
		rc = 1;
	return rc;
}

/* Does this kernel let us set congestion control @name? */
static int cc_allowed(const char *name)
{
	struct plx_reactor r;
	struct plx_tcp_config cfg;
	uint64_t end = plx_now_ns() + CONNECT_NS;
	int rc;

	if (plx_reactor_init(&r, NULL))
		return 0;
	plx_tcp_config_init(&cfg);
	cfg.congestion = name;
	rc = plx_tcp_init(&r, &cfg);
	if (!rc)
		plx_tcp_shutdown(&r);
	while (plx_reactor_fini(&r) == PLX_EBUSY && plx_now_ns() < end)
		plx_reactor_poll(&r);
	return rc == 0;
}

/* Is there an RDMA device? (Said on stderr when not.) */
static int rdma_available(void)
{
	struct plx_reactor r;
	int rc;

	if (plx_reactor_init(&r, NULL))
		return 0;
	rc = plx_rdma_init(&r, NULL);
	plx_reactor_fini(&r);
	if (rc)
		fprintf(stderr, "RDMA transport unavailable: %s\n",
			rc == PLX_EUNAVAIL ?
				"no rdma-core or no active device" :
				plx_strerror(rc));
	return rc == 0;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--iters N] [--transport tcp|rdma] [--cc NAME]\n"
		"       %s --server [--port P] [--transport tcp|rdma] "
		"[--cc NAME]\n"
		"       %s --client HOST --port P [--iters N] "
		"[--transport tcp|rdma] [--cc NAME]\n"
		"--cc: TCP congestion control (one process: cubic by "
		"default)\n",
		prog, prog, prog);
}

int main(int argc, char **argv)
{
	const char *host = NULL, *transport = "tcp";
	uint64_t iters = 10000;
	long port = -1;
	int server = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--server")) {
			server = 1;
		} else if (!strcmp(a, "--client") && v) {
			host = v;
			i++;
		} else if (!strcmp(a, "--port") && v) {
			port = strtol(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--iters") && v) {
			iters = strtoull(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--transport") && v) {
			transport = v;
			i++;
		} else if (!strcmp(a, "--cc") && v) {
			cc_name = v;
			i++;
		} else {
			usage(argv[0]);
			return 2;
		}
	}
	use_rdma = !strcmp(transport, "rdma");
	if ((strcmp(transport, "tcp") && !use_rdma) || (server && host) ||
	    !iters || port > 65535 || (host && port <= 0) ||
	    (!server && !host && port >= 0)) {
		usage(argv[0]);
		return 2;
	}
	if (use_rdma && !rdma_available())
		return 2;
	if (!server && !host && !cc_name) {
		/* both ends on this host */
		cc_name = "cubic";
		if (!cc_allowed(cc_name)) {
			fprintf(stderr, "cubic refused by this kernel: using "
					"the system's congestion control\n");
			cc_name = NULL;
		}
	}
	if (server)
		return mode_server(port < 0 ? DEFAULT_PORT : (uint16_t)port);
	if (host)
		return client_session(host, (uint16_t)port, iters);
	return mode_local(iters);
}
