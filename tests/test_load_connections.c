/* SPDX-License-Identifier: MIT */
/*
 * Load: N concurrent connections (endpoints) to one target reactor, with
 * traffic on every one of them at once.
 *
 * N client reactors (each its own node, so each is its own endpoint at the
 * target) live in this process and are driven from this one thread with
 * the target, which is polled after every 64 clients. Each client
 * connects, resolves the target's named region, then runs ROUNDS rounds of
 * four ops in flight together: a 4 KiB write into its own slot of the
 * region, a 256-byte write_imm next to it, a 512-byte message, and a
 * posted receive for the target's echo of that message. Every byte is
 * checked: the write at its completion (in the target's memory), the
 * write_imm in the target's notification handler, the message at the
 * target and its echo back at the client. Each target endpoint must carry
 * one client's traffic only. At the end all N endpoints are up at the
 * target at once with one connection each; then every client shuts down,
 * the target sees N PLX_EP_DOWN, every reactor finalises and the process
 * holds exactly the descriptors it held before.
 *
 * Presets: N = 1000, 4 rounds (the CI preset, also without CI=true);
 * PLX_LOAD=large: N = 3000, 16 rounds. PLX_LOAD_CONNS and PLX_LOAD_ROUNDS
 * override. Needs about 6 descriptors per connection (RLIMIT_NOFILE is
 * raised; skipped if it cannot be). Prints the connect and traffic
 * rates (not checked: the machine is shared).
 */
#include "harness.h"
#include "pollux/pollux.h"
#include "pollux/tcp.h"
#include "soak/proc_stats.h"

#define MS 1000000ull
#define SLOT 8192	   /* bytes of the target region per client */
#define WLEN 4096	   /* the write, at the start of the slot */
#define ILEN 256	   /* the write_imm, at IOFF */
#define IOFF 4096	   /* offset of the write_imm in the slot */
#define MSG 512		   /* message bytes (8-byte header + pattern) */
#define POLL_EVERY 64	   /* the target is polled after every 64 clients */
#define MAX_CONNECTING 128 /* below the target's max_handshakes (256) */

static uint8_t pattern_byte(uint32_t id, uint32_t round, uint32_t k,
			    uint32_t kind)
{
	uint32_t x = id * 0x9E3779B1u ^ (round + 1) * 0x85EBCA77u ^
		     k * 0xC2B2AE3Du ^ kind * 0x27D4EB2Fu;

	x ^= x >> 15;
	x *= 0x2C1B3C6Du;
	x ^= x >> 13;
	return (uint8_t)x;
}

static void fill(uint8_t *p, size_t n, uint32_t id, uint32_t round,
		 uint32_t kind)
{
	for (size_t k = 0; k < n; k++)
		p[k] = pattern_byte(id, round, (uint32_t)k, kind);
}

static int check(const uint8_t *p, size_t n, uint32_t id, uint32_t round,
		 uint32_t kind)
{
	for (size_t k = 0; k < n; k++)
		if (p[k] != pattern_byte(id, round, (uint32_t)k, kind))
			return 0;
	return 1;
}

/* ---- the target ---------------------------------------------------------- */

struct tconn {
	struct plx_ep *ep;
	struct plx_op rcv, echo;
	int64_t client; /* learnt from the first traffic; -1 before */
	uint32_t msgs, imms, posts;
	int rcv_failed; /* the last posted receive failed (at teardown) */
	uint8_t buf[MSG];
};

static struct {
	struct plx_reactor r;
	struct plx_tcp_config cfg;
	struct plx_region reg;
	uint8_t *mem;
	uint16_t port;
	struct tconn *tc;
	uint32_t n;
	uint32_t accepted, live, peak, down, down_shutdown;
	int teardown;
} T;

static void t_claim(struct tconn *tc, uint32_t id)
{
	if (tc->client < 0)
		tc->client = id;
	else if (tc->client != (int64_t)id)
		PLX_FAIL("target endpoint of client %lld carried traffic of "
			 "client %u",
			 (long long)tc->client, id);
}

static void t_post_recv(struct tconn *tc);

static void t_echo_done(struct plx_reactor *r, struct plx_req *req)
{
	struct tconn *tc = req->user;

	(void)r;
	if (req->status) {
		if (!T.teardown)
			PLX_FAIL("echo to client %lld: %s",
				 (long long)tc->client,
				 plx_errname(req->status));
		return;
	}
	t_post_recv(tc);
}

static void t_recv_done(struct plx_reactor *r, struct plx_req *req)
{
	struct tconn *tc = req->user;
	uint32_t id, round;
	int rc;

	(void)r;
	if (req->status) {
		if (!T.teardown)
			PLX_FAIL("target receive: %s",
				 plx_errname(req->status));
		tc->rcv_failed = 1;
		return;
	}
	EXPECT_U64_EQ(req->bytes, MSG);
	memcpy(&id, tc->buf, 4);
	memcpy(&round, tc->buf + 4, 4);
	EXPECT_LT(id, T.n);
	t_claim(tc, id);
	if (!check(tc->buf + 8, MSG - 8, id, round, 2))
		PLX_FAIL("message of client %u round %u corrupted", id, round);
	tc->msgs++;
	plx_op_init(&tc->echo, t_echo_done, tc);
	rc = plx_ep_send(tc->ep, &tc->echo, tc->buf, MSG, 2);
	if (rc)
		PLX_FAIL("echo send: %s", plx_errname(rc));
}

static void t_post_recv(struct tconn *tc)
{
	int rc;

	plx_op_init(&tc->rcv, t_recv_done, tc);
	rc = plx_ep_recv(tc->ep, &tc->rcv, tc->buf, MSG, 0, 0);
	if (rc)
		PLX_FAIL("target recv: %s", plx_errname(rc));
	tc->posts++;
}

static void t_event(struct plx_reactor *r, struct plx_ep *ep, int event,
		    int status, void *arg)
{
	struct tconn *tc;

	(void)r;
	(void)arg;
	switch (event) {
	case PLX_EP_ACCEPTED:
		if (T.accepted >= T.n)
			PLX_FAIL("more than %u peers accepted", T.n);
		tc = &T.tc[T.accepted++];
		tc->ep = ep;
		tc->client = -1;
		plx_ep_set_user(ep, tc);
		if (++T.live > T.peak)
			T.peak = T.live;
		t_post_recv(tc);
		break;
	case PLX_EP_DOWN:
		if (!T.teardown)
			PLX_FAIL("target: endpoint down before teardown: %s",
				 plx_errname(status));
		T.live--;
		T.down++;
		T.down_shutdown += status == PLX_ESHUTDOWN;
		break;
	case PLX_EP_CLOSED:
		break;
	default:
		PLX_FAIL("target: unexpected event %d (%s)", event,
			 plx_errname(status));
	}
}

static void t_imm(struct plx_reactor *r, struct plx_ep *ep, uint32_t imm,
		  uint64_t addr, uint64_t len, void *arg)
{
	struct tconn *tc = plx_ep_user(ep);
	uint32_t id = imm >> 16, round = imm & 0xffff;
	const uint8_t *at = T.mem + (size_t)id * SLOT + IOFF;

	(void)r;
	(void)arg;
	EXPECT_LT(id, T.n);
	t_claim(tc, id);
	EXPECT_U64_EQ(addr, (uintptr_t)at);
	EXPECT_U64_EQ(len, ILEN);
	/* the data is in place when the notification runs */
	if (!check(at, ILEN, id, round, 1))
		PLX_FAIL("write_imm of client %u round %u not in place", id,
			 round);
	tc->imms++;
}

/* ---- the clients --------------------------------------------------------- */

struct client {
	struct plx_reactor r;
	struct plx_tcp_config cfg;
	struct plx_ep *ep;
	uint32_t id;
	uint32_t round;
	int left; /* ops of this round not yet complete */
	int up, down, down_status, closed, done, fini, gone;
	struct plx_op resolve, wr, wi, snd, rcv;
	struct plx_desc desc;
	uint8_t wbuf[WLEN];
	uint8_t ibuf[ILEN];
	uint8_t out[MSG];
	uint8_t in[MSG];
};

static struct client *C;
static uint32_t rounds;
static uint32_t clients_done;
static uint64_t ops_done;

static void c_start_round(struct client *c);

static void c_op_done(struct plx_reactor *r, struct plx_req *req)
{
	struct client *c = req->user;
	struct plx_op *op = (struct plx_op *)(void *)req;

	(void)r;
	if (req->status)
		PLX_FAIL("client %u round %u: op %s failed: %s", c->id,
			 c->round,
			 op == &c->wr  ? "write" :
			 op == &c->wi  ? "write_imm" :
			 op == &c->snd ? "send" :
			 op == &c->rcv ? "recv" :
					 "resolve",
			 plx_errname(req->status));
	ops_done++;
	if (op == &c->resolve) {
		EXPECT_U64_EQ(c->desc.addr, (uintptr_t)T.mem);
		c_start_round(c);
		return;
	}
	if (op == &c->wr) {
		/* completion means the data is in the target's memory */
		EXPECT_U64_EQ(req->bytes, WLEN);
		EXPECT_MEM_EQ(T.mem + (size_t)c->id * SLOT, c->wbuf, WLEN);
	} else if (op == &c->rcv) {
		EXPECT_U64_EQ(req->bytes, MSG);
		EXPECT_MEM_EQ(c->in, c->out, MSG);
	}
	if (--c->left)
		return;
	if (++c->round < rounds) {
		c_start_round(c);
	} else {
		c->done = 1;
		clients_done++;
	}
}

static void c_submit(int rc, const char *what, struct client *c)
{
	if (rc)
		PLX_FAIL("client %u: %s: %s", c->id, what, plx_errname(rc));
}

static void c_start_round(struct client *c)
{
	uint32_t imm = c->id << 16 | c->round;
	uint64_t slot = (uint64_t)c->id * SLOT;

	fill(c->wbuf, WLEN, c->id, c->round, 0);
	fill(c->ibuf, ILEN, c->id, c->round, 1);
	memcpy(c->out, &c->id, 4);
	memcpy(c->out + 4, &c->round, 4);
	fill(c->out + 8, MSG - 8, c->id, c->round, 2);
	memset(c->in, 0, MSG);
	c->left = 4;
	plx_op_init(&c->rcv, c_op_done, c);
	plx_op_init(&c->wr, c_op_done, c);
	plx_op_init(&c->wi, c_op_done, c);
	plx_op_init(&c->snd, c_op_done, c);
	c_submit(plx_ep_recv(c->ep, &c->rcv, c->in, MSG, 2, ~0ull), "recv", c);
	c_submit(plx_ep_write(c->ep, &c->wr, c->wbuf, WLEN, &c->desc, slot),
		 "write", c);
	c_submit(plx_ep_write_imm(c->ep, &c->wi, c->ibuf, ILEN, &c->desc,
				  slot + IOFF, imm),
		 "write_imm", c);
	c_submit(plx_ep_send(c->ep, &c->snd, c->out, MSG, 1), "send", c);
}

static void c_event(struct plx_reactor *r, struct plx_ep *ep, int event,
		    int status, void *arg)
{
	struct client *c = arg;

	(void)r;
	(void)ep;
	switch (event) {
	case PLX_EP_CONNECTED:
		c->up++;
		break;
	case PLX_EP_DOWN:
		c->down++;
		c->down_status = status;
		if (!c->fini)
			PLX_FAIL("client %u: endpoint down: %s", c->id,
				 plx_errname(status));
		break;
	case PLX_EP_CLOSED:
		c->closed++;
		break;
	default:
		PLX_FAIL("client %u: unexpected event %d", c->id, event);
	}
}

static void client_start(struct client *c, uint32_t id)
{
	struct plx_reactor_config rc;

	memset(c, 0, sizeof(*c));
	c->id = id;
	/* small tables: a thousand of these share the process */
	plx_reactor_config_init(&rc);
	rc.ring_capacity = 16;
	rc.max_timers = 16;
	rc.max_regions = 16;
	EXPECT_OK(plx_reactor_init(&c->r, &rc));
	plx_tcp_config_init(&c->cfg);
	c->cfg.max_endpoints = 4;
	c->cfg.send_queue = 64;
	c->cfg.max_recvs = 16;
	c->cfg.max_message = 4096;
	c->cfg.unexpected_count = 4;
	c->cfg.unexpected_size = 1024;
	c->cfg.event_cb = c_event;
	c->cfg.cb_arg = c;
	EXPECT_OK(plx_tcp_init(&c->r, &c->cfg));
	EXPECT_OK(plx_tcp_connect(&c->r, "127.0.0.1", T.port, &c->ep));
	/* submitted before the handshake: waits in the endpoint's backlog */
	plx_op_init(&c->resolve, c_op_done, c);
	c_submit(plx_ep_resolve(c->ep, &c->resolve, "load", &c->desc),
		 "resolve", c);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static int large(void)
{
	const char *v = getenv("PLX_LOAD");

	return v && !strcmp(v, "large");
}

/* One pass over every started client, the target polled between them. */
static void poll_all(uint32_t started)
{
	for (uint32_t i = 0; i < started; i++) {
		if (!C[i].gone)
			plx_reactor_poll(&C[i].r);
		if (i % POLL_EVERY == 0)
			plx_reactor_poll(&T.r);
	}
	plx_reactor_poll(&T.r);
}

/* Every target endpoint has re-posted its receive after the last echo
 * (so the echoes' completions are in). */
static int target_quiet(void)
{
	for (uint32_t i = 0; i < T.accepted; i++)
		if (T.tc[i].posts != rounds + 1)
			return 0;
	return 1;
}

static void test_load_many_connections_traffic_on_all(void)
{
	uint32_t n = (uint32_t)env_u64("PLX_LOAD_CONNS", large() ? 3000 : 1000);
	uint64_t t0, t_up, t_traffic, deadline;
	uint32_t started = 0, up = 0, finished = 0;
	int fds0, rc;
	long rss0, rss_peak;

	rounds = (uint32_t)env_u64("PLX_LOAD_ROUNDS", large() ? 16 : 4);
	if (n < 1 || n > 60000 || rounds < 1 || rounds > 65535)
		PLX_FAIL("PLX_LOAD_CONNS / PLX_LOAD_ROUNDS out of range");
	/* 4 per client reactor (epoll, eventfd, timerfd, TCP epoll set),
	 * the client's socket and the accepted one */
	rc = proc_nofile_at_least((rlim_t)n * 6 + 256);
	if (rc)
		PLX_SKIP("need %u descriptors: %s", n * 6 + 256,
			 plx_errname(rc));
	fds0 = proc_fd_count();
	rss0 = proc_rss_kib();

	memset(&T, 0, sizeof(T));
	T.n = n;
	T.mem = aligned_alloc(4096, (size_t)n * SLOT);
	T.tc = calloc(n, sizeof(*T.tc));
	C = aligned_alloc(64, (size_t)n * sizeof(*C));
	EXPECT_TRUE(T.mem && T.tc && C);
	memset(T.mem, 0, (size_t)n * SLOT);
	EXPECT_OK(plx_reactor_init(&T.r, NULL));
	plx_tcp_config_init(&T.cfg);
	T.cfg.max_endpoints = n + 16;
	T.cfg.event_cb = t_event;
	T.cfg.imm_cb = t_imm;
	EXPECT_OK(plx_tcp_init(&T.r, &T.cfg));
	EXPECT_OK(plx_tcp_listen(&T.r, "127.0.0.1", 0, &T.port));
	EXPECT_OK(plx_mem_register(&T.r, &T.reg, T.mem, (size_t)n * SLOT,
				   PLX_ACCESS_REMOTE_WRITE |
					   PLX_ACCESS_REMOTE_READ));
	EXPECT_OK(plx_mem_name(&T.r, &T.reg, "load"));

	/* connect: at most MAX_CONNECTING handshakes at a time, within the
	 * listen backlog */
	t0 = plx_now_ns();
	deadline = t0 + 300000 * MS;
	t_up = 0;
	while (clients_done < n) {
		while (started < n && started - T.accepted < MAX_CONNECTING)
			client_start(&C[started], started), started++;
		poll_all(started);
		if (!t_up && T.accepted == n)
			t_up = plx_now_ns();
		if (plx_now_ns() > deadline)
			PLX_FAIL("timed out: %u started, %u accepted, %u of %u "
				 "clients done",
				 started, T.accepted, clients_done, n);
	}
	t_traffic = plx_now_ns();
	rss_peak = proc_rss_kib();
	while (!target_quiet()) {
		poll_all(n);
		if (plx_now_ns() > deadline)
			PLX_FAIL("timed out waiting for the target's echoes");
	}

	/* all N at once: every endpoint up, one connection each */
	EXPECT_EQ(T.accepted, n);
	EXPECT_EQ(T.live, n);
	EXPECT_EQ(T.peak, n);
	for (uint32_t i = 0; i < n; i++) {
		struct client *c = &C[i];
		struct tconn *tc = &T.tc[i];

		EXPECT_EQ(c->up, 1);
		EXPECT_EQ(c->round, rounds);
		EXPECT_EQ(plx_ep_conn_count(c->ep), 1);
		EXPECT_TRUE(plx_ep_is_up(tc->ep));
		EXPECT_EQ(plx_ep_conn_count(tc->ep), 1);
		EXPECT_TRUE(tc->client >= 0);
		EXPECT_EQ(tc->msgs, rounds);
		EXPECT_EQ(tc->imms, rounds);
		EXPECT_EQ(tc->posts, rounds + 1);
		up++;
	}
	EXPECT_EQ(up, n);
	EXPECT_U64_EQ(ops_done, (uint64_t)n * (1 + 4 * rounds));
	fprintf(stderr,
		"load_connections: %u connections up in %.2f s; %u rounds of "
		"4 ops on each (%llu ops) in %.2f s (%.0f ops/s); RSS %ld -> "
		"%ld KiB, %d fds before\n",
		n, (double)(t_up - t0) / 1e9, rounds,
		(unsigned long long)ops_done, (double)(t_traffic - t0) / 1e9,
		(double)ops_done * 1e9 / (double)(t_traffic - t0), rss0,
		rss_peak, fds0);

	/* teardown: every client shuts down; the target sees each go */
	T.teardown = 1;
	for (uint32_t i = 0; i < n; i++) {
		C[i].fini = 1;
		EXPECT_OK(plx_tcp_shutdown(&C[i].r));
	}
	deadline = plx_now_ns() + 60000 * MS;
	while (finished < n || T.down < n) {
		poll_all(n);
		for (uint32_t i = 0; i < n; i++) {
			if (C[i].gone || C[i].closed != 1)
				continue;
			rc = plx_reactor_fini(&C[i].r);
			if (rc != PLX_EBUSY) {
				EXPECT_OK(rc);
				C[i].gone = 1;
				finished++;
			}
		}
		if (plx_now_ns() > deadline)
			PLX_FAIL("teardown timed out: %u clients finalised, %u "
				 "down at the target",
				 finished, T.down);
	}
	EXPECT_EQ(T.down, n);
	EXPECT_EQ(T.down_shutdown, n);
	EXPECT_EQ(T.live, 0);
	for (uint32_t i = 0; i < n; i++)
		EXPECT_TRUE(T.tc[i].rcv_failed);
	EXPECT_OK(plx_mem_deregister(&T.r, &T.reg));
	EXPECT_OK(plx_tcp_shutdown(&T.r));
	deadline = plx_now_ns() + 5000 * MS;
	while ((rc = plx_reactor_fini(&T.r)) == PLX_EBUSY &&
	       plx_now_ns() < deadline)
		plx_reactor_poll(&T.r);
	EXPECT_OK(rc);
	EXPECT_EQ(proc_fd_count(), fds0);
	free(C);
	free(T.tc);
	free(T.mem);
}

int main(void)
{
	test_load_many_connections_traffic_on_all();
	return 0;
}
