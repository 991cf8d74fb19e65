/* SPDX-License-Identifier: MIT */
/*
 * plx_soak - mixed traffic with random faults for a given time, with the
 * process's resident memory and open descriptors sampled every second and
 * required flat after warm-up.
 *
 *   plx_soak [SECONDS]      (default 60; PLX_SEED=N reruns a seed)
 *
 * One thread drives everything, alternately: a server reactor (listener,
 * a named region, an echo for messages, a region registered and
 * deregistered every 100 ms) and CLIENTS client reactors. Half the
 * clients reach the server through the fault-injecting proxy of
 * tests/fault/, which gives a random share of its connections a reset or
 * a close at a random byte, a stall or a delay, and drops every open
 * connection now and then; the other half connect directly.
 *
 * Each client lives a random time (0.2 to 2 s), keeping WINDOW ops in
 * flight, each a random one of: a write (1 B to 64 KiB), a write_imm, a
 * read, a message with its echo, a batch of four writes, a receive that
 * times out, a receive or a read that is cancelled. Half the writes,
 * write_imms and messages set PLX_OP_HEADROOM (each op's source has the
 * 128 bytes in front to itself). Then it closes its
 * endpoint and connects again (through the proxy or directly, at
 * random, the same epoch either way), or restarts: plx_tcp_shutdown(),
 * plx_reactor_fini() and plx_reactor_init() again with the same node id
 * (a new epoch, so the server sees a peer restart). A client whose
 * connection went down restarts. Every client registers and deregisters a
 * region of its own each lifetime.
 *
 * Checked all along: every op completes exactly once; a successful op's
 * data is right (writes in the server's memory at completion, write_imm
 * in the server's handler, reads against the server's pattern, messages
 * at the server and their echoes); a direct client's ops fail only when
 * they should (timeouts, cancels, its own teardown); a proxied client's
 * only with a connection-loss status. Every reactor finalises.
 *
 * Flat, after warm-up (the first fifth of the run, at least 5 s): split
 * the later samples into two halves; the second half's largest RSS may
 * exceed the first half's by at most 10 % or 4 MiB (whichever is more),
 * its largest descriptor count by at most 2 per client. At the end, with
 * everything shut down, the process must hold exactly the descriptors it
 * held at the start. Exit 0 pass, 1 fail.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>

#include "fault/proxy.h"
#include "harness.h"
#include "pollux/pollux.h"
#include "pollux/tcp.h"
#include "soak/proc_stats.h"

#define MS 1000000ull
#define CLIENTS 6
#define WINDOW 8
#define GENS 4		   /* write areas per client, by lifetime */
#define AREA (256u << 10)  /* bytes per (client, generation) */
#define WMAX (64u << 10)   /* largest write */
#define RAREA (256u << 10) /* the server's read-only pattern */
#define MSG 1024	   /* message bytes */
#define MAX_SAMPLES 100000

/*
 * Under AddressSanitizer, freed memory waits in ASan's quarantine (256 MiB
 * by default) before it is reused, and counts in the RSS: a 20-second run
 * grew by 4-6 MiB after warm-up whatever pollux did (flat with a 1 MiB
 * quarantine, and flat without ASan over 120 s). The soak therefore asks
 * for a 1 MiB quarantine (ASAN_OPTIONS may still set another); leaks are
 * LeakSanitizer's to find at exit, and the other tests keep the full
 * quarantine for use-after-free.
 */
#if PLX_TEST_ASAN
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=1";
}
#endif

enum kind {
	K_WRITE,
	K_IMM,
	K_READ,
	K_MSG, /* a send and the receive of its echo */
	K_BATCH,
	K_TIMEOUT,
	K_CANCEL_RECV,
	K_CANCEL_READ,
	K_NKINDS
};

static const char *kind_name[K_NKINDS] = {"write",	 "write_imm",
					  "read",	 "message",
					  "batch",	 "timeout",
					  "cancel recv", "cancel read"};

static uint64_t seed_state;
static uint64_t rnd(uint64_t n)
{
	return plx_test_rand(&seed_state) % n;
}

static uint8_t pat(uint64_t a, uint64_t b, uint64_t k)
{
	uint64_t x = (a + 1) * 0x9E3779B97F4A7C15ull ^ (b + 1) * 0xC2B2AE3Dull ^
		     k * 0x165667B19E3779F9ull;

	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ull;
	return (uint8_t)(x >> 40);
}

/* ---- the server ----------------------------------------------------------- */

struct sconn {
	struct plx_ep *ep;
	struct plx_op rcv, echo;
	int inflight;
	int used;
	int closed;
	uint8_t buf[MSG];
};

static int now_ending; /* the whole soak is shutting down */

static struct {
	struct plx_reactor r;
	struct plx_tcp_config cfg;
	struct plx_region reg, rreg, scratch;
	uint8_t *mem;  /* CLIENTS * GENS * AREA: writes land here */
	uint8_t *rmem; /* RAREA: read from */
	uint8_t *smem; /* the scratch region's memory */
	uint16_t port;
	struct sconn sc[CLIENTS * 8];
	struct plx_timer churn;
	uint64_t msgs, imms, accepted, restarted, reconnected, downs;
} S;

static void s_post(struct sconn *sc);

static void s_op_done(struct plx_reactor *r, struct plx_req *req)
{
	struct sconn *sc = req->user;
	struct plx_op *op = (struct plx_op *)(void *)req;
	uint64_t cid, slot, seq;
	int rc;

	(void)r;
	sc->inflight--;
	if (sc->closed) {
		if (!req->status)
			PLX_FAIL("server: op completed with 0 after close");
		if (!sc->inflight)
			sc->used = 0;
		return;
	}
	if (req->status) {
		/* a restarted peer: the endpoint carries on, receive again;
		 * a lost one: again when it is back (s_event) */
		if (plx_ep_is_up(sc->ep))
			s_post(sc);
		return;
	}
	if (op == &sc->echo) {
		s_post(sc);
		return;
	}
	/* a message: (client, lifetime, seq) then the pattern */
	if (req->bytes < 24)
		PLX_FAIL("server: message of %llu bytes",
			 (unsigned long long)req->bytes);
	memcpy(&cid, sc->buf, 8);
	memcpy(&slot, sc->buf + 8, 8);
	memcpy(&seq, sc->buf + 16, 8);
	for (uint64_t k = 24; k < req->bytes; k++)
		if (sc->buf[k] != pat(cid, seq, k))
			PLX_FAIL("server: message corrupted at byte %llu",
				 (unsigned long long)k);
	S.msgs++;
	/* the echo goes to the client's receive for that op slot */
	plx_op_init(&sc->echo, s_op_done, sc);
	rc = plx_ep_send(sc->ep, &sc->echo, sc->buf, req->bytes,
			 (uint64_t)7 << 32 | slot);
	if (rc == 0)
		sc->inflight++;
}

static void s_post(struct sconn *sc)
{
	if (sc->inflight)
		return; /* a receive or its echo is out already */
	plx_op_init(&sc->rcv, s_op_done, sc);
	if (plx_ep_recv(sc->ep, &sc->rcv, sc->buf, MSG, 0, 0) == 0)
		sc->inflight++;
}

static void s_event(struct plx_reactor *r, struct plx_ep *ep, int event,
		    int status, void *arg)
{
	struct sconn *sc = plx_ep_user(ep);

	(void)r;
	(void)arg;
	(void)status;
	switch (event) {
	case PLX_EP_ACCEPTED:
		sc = NULL;
		for (size_t i = 0; i < sizeof(S.sc) / sizeof(S.sc[0]); i++)
			if (!S.sc[i].used) {
				sc = &S.sc[i];
				break;
			}
		if (!sc)
			PLX_FAIL("server: more than %zu peers at once",
				 sizeof(S.sc) / sizeof(S.sc[0]));
		memset(sc, 0, sizeof(*sc));
		sc->used = 1;
		sc->ep = ep;
		plx_ep_set_user(ep, sc);
		S.accepted++;
		s_post(sc);
		break;
	case PLX_EP_RESTARTED:
		/* its ops fail (and receive again, s_op_done); it carries on
		 * with the new connection */
		S.restarted++;
		break;
	case PLX_EP_CONNECTED:
		/* a peer back on its endpoint (same node, same epoch) */
		S.reconnected++;
		if (sc)
			s_post(sc);
		break;
	case PLX_EP_DOWN:
		/* kept: the peer comes back on it (a reconnect, or a restart
		 * with the same node id), so there is one per client */
		S.downs++;
		break;
	case PLX_EP_CLOSED:
		/* ep.h: every op's completion comes before PLX_EP_CLOSED */
		if (sc) {
			if (sc->inflight)
				PLX_FAIL("server: PLX_EP_CLOSED with %d ops "
					 "not yet completed",
					 sc->inflight);
			sc->closed = 1;
			sc->ep = NULL;
			sc->used = 0;
		}
		break;
	default:
		PLX_FAIL("server: unexpected event %d", event);
	}
}

static void s_imm(struct plx_reactor *r, struct plx_ep *ep, uint32_t imm,
		  uint64_t addr, uint64_t len, void *arg)
{
	const uint8_t *at = (const uint8_t *)(uintptr_t)addr;

	(void)r;
	(void)ep;
	(void)arg;
	if (at < S.mem || at + len > S.mem + (size_t)CLIENTS * GENS * AREA)
		PLX_FAIL("server: write_imm outside the region");
	for (uint64_t k = 0; k < len; k++)
		if (at[k] != pat(imm, 0, k))
			PLX_FAIL("server: write_imm %08x not in place", imm);
	S.imms++;
}

/* Region churn: a region registered, named and deregistered again. */
static void s_churn(struct plx_reactor *r, struct plx_timer *t)
{
	(void)t;
	if (S.scratch.plx_name[0] || plx_mem_find(r, "scratch")) {
		if (plx_mem_deregister(r, &S.scratch))
			PLX_FAIL("server: deregister");
		memset(&S.scratch, 0, sizeof(S.scratch));
		return;
	}
	if (plx_mem_register(r, &S.scratch, S.smem, 65536,
			     PLX_ACCESS_REMOTE_READ) ||
	    plx_mem_name(r, &S.scratch, "scratch"))
		PLX_FAIL("server: register");
}

/* ---- the clients ---------------------------------------------------------- */

struct cop {
	struct plx_op op;
	struct client *c;
	int kind;
	int done;    /* completions of the current submission */
	int pending; /* ops of this slot still in flight (batch: 4) */
	uint64_t seq;
	uint64_t off, len;
	struct plx_op extra[4]; /* batch writes, the echo receive */
	uint8_t *src;		/* WMAX bytes */
	uint8_t *dst;		/* WMAX bytes */
};

struct client {
	int id;
	int proxied;
	int live;      /* reactor initialised */
	int up, down;  /* events this lifetime */
	int ending;    /* teardown of this lifetime started */
	int failed_ok; /* connection-loss failures allowed */
	uint64_t lifetime;
	uint64_t end_ns;
	uint8_t node[16];
	struct plx_reactor r;
	struct plx_tcp_config cfg;
	struct plx_ep *ep;
	struct plx_desc desc, rdesc;
	struct plx_op resolve[2];
	int resolved, resolving;
	int reg_live;
	const char *last_how; /* how the previous lifetime ended */
	struct plx_region reg;
	uint8_t *regmem;
	struct cop ops[WINDOW];
	uint64_t seq;
};

static struct client Cl[CLIENTS];
static struct fproxy *proxy;
static uint16_t proxy_port;
static uint64_t stat_kind[K_NKINDS], stat_ok, stat_fail, stat_lifetimes,
	stat_restarts, stat_reconnects, stat_faults, stat_stale, stat_room;

/* Half the ops that may: with the header in the source's headroom. */
static void maybe_room(struct plx_op *op)
{
	if (rnd(2)) {
		op->flags = PLX_OP_HEADROOM;
		stat_room++;
	}
}

static int loss_status(int st)
{
	return st == PLX_ECONNRESET || st == PLX_ECONNABORTED ||
	       st == PLX_ETIMEDOUT || st == PLX_ESHUTDOWN ||
	       st == PLX_ECANCELED || st == PLX_ENOTCONN || st == PLX_EPROTO ||
	       st == PLX_ECONNREFUSED;
}

static void c_start_op(struct client *c, struct cop *o);

static void c_check(struct client *c, struct cop *o, struct plx_req *req)
{
	int st = req->status;
	int expected_fail =
		(o->kind == K_TIMEOUT && st == PLX_ETIMEDOUT) ||
		((o->kind == K_CANCEL_RECV || o->kind == K_CANCEL_READ) &&
		 st == PLX_ECANCELED);

	if (st && !expected_fail) {
		if (!(c->ending || c->failed_ok || c->down) || !loss_status(st))
			PLX_FAIL("client %d (%s) lifetime %llu: %s failed: %s",
				 c->id, c->proxied ? "proxied" : "direct",
				 (unsigned long long)c->lifetime,
				 kind_name[o->kind], plx_errname(st));
		stat_fail++;
		return;
	}
	if (st) {
		stat_ok++;
		return;
	}
	if (o->kind == K_TIMEOUT)
		PLX_FAIL("client %d: a receive for a tag never sent completed",
			 c->id);
	stat_ok++;
}

static void c_done(struct plx_reactor *r, struct plx_req *req);
static int c_submit(struct client *c, struct cop *o, struct plx_op *op, int rc);

/*
 * The echo of an earlier message of the same op slot, intact: the client's
 * send and receive of it failed when its connection was lost, but the
 * server had the message and echoed it once the endpoint was back (an op
 * that fails with PLX_ECONNRESET may still have reached the peer, as over
 * TCP). Anything else in the slot's receive is an error.
 */
static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static bool stale_echo(const struct client *c, const struct cop *o,
		       const struct plx_req *req)
{
	uint64_t cid = get64(o->dst), slotno = get64(o->dst + 8),
		 seq = get64(o->dst + 16);

	if (req->bytes < 24 || req->bytes > MSG)
		return false;
	if (cid != (uint64_t)c->id || slotno != (uint64_t)(o - c->ops) ||
	    seq >= o->seq)
		return false;
	for (uint64_t k = 24; k < req->bytes; k++)
		if (o->dst[k] != pat(cid, seq, k))
			return false;
	return true;
}

static uint64_t area_off(struct client *c)
{
	return ((uint64_t)c->id * GENS + c->lifetime % GENS) * AREA;
}

static void c_done(struct plx_reactor *r, struct plx_req *req)
{
	struct cop *o = req->user;
	struct client *c = o->c;
	struct plx_op *op = (struct plx_op *)(void *)req;

	(void)r;
	c_check(c, o, req);
	if (req->status == 0) {
		if (o->kind == K_WRITE && op == &o->op) {
			if (memcmp(S.mem + area_off(c) + o->off, o->src,
				   o->len))
				PLX_FAIL("client %d: write not in place",
					 c->id);
		} else if (o->kind == K_BATCH) {
			size_t i = op == &o->op ? 0 :
						  (size_t)(op - o->extra) + 1;

			if (memcmp(S.mem + area_off(c) + o->off + i * 512,
				   o->src + i * 512, 512))
				PLX_FAIL(
					"client %d: batched write not in place",
					c->id);
		} else if (o->kind == K_READ) {
			if (memcmp(o->dst, S.rmem + o->off, o->len))
				PLX_FAIL("client %d: read returned wrong data",
					 c->id);
		} else if (o->kind == K_MSG && op == &o->extra[0]) {
			if (stale_echo(c, o, req)) {
				/* keep waiting for this message's echo */
				stat_stale++;
				c_submit(c, o, &o->extra[0],
					 plx_ep_recv(
						 c->ep, &o->extra[0], o->dst,
						 MSG,
						 (uint64_t)7 << 32 |
							 (uint64_t)(o - c->ops),
						 ~0ull));
			} else if (req->bytes != o->len ||
				   memcmp(o->dst, o->src, o->len)) {
				PLX_FAIL("client %d: echo differs (%llu bytes "
					 "for %u, header %016llx %016llx "
					 "%016llx, sent seq %llu)",
					 c->id, (unsigned long long)req->bytes,
					 (unsigned)o->len,
					 (unsigned long long)get64(o->dst),
					 (unsigned long long)get64(o->dst + 8),
					 (unsigned long long)get64(o->dst + 16),
					 (unsigned long long)o->seq);
			}
		}
	}
	if (--o->pending)
		return;
	if (!c->ending && c->up && !c->down)
		c_start_op(c, o);
}

static int c_submit(struct client *c, struct cop *o, struct plx_op *op, int rc)
{
	(void)op;
	if (rc == 0) {
		o->pending++;
		return 0;
	}
	if (rc == PLX_ENOTCONN || rc == PLX_ESHUTDOWN)
		return rc; /* the connection just went */
	PLX_FAIL("client %d: %s refused: %s", c->id, kind_name[o->kind],
		 plx_errname(rc));
	return rc;
}

static void c_start_op(struct client *c, struct cop *o)
{
	uint64_t base = area_off(c) + (uint64_t)(o - c->ops) * (AREA / WINDOW);
	uint64_t slot = AREA / WINDOW;

	o->kind = (int)rnd(K_NKINDS);
	o->seq = ++c->seq;
	o->pending = 0;
	stat_kind[o->kind]++;
	plx_op_init(&o->op, c_done, o);
	for (int i = 0; i < 4; i++)
		plx_op_init(&o->extra[i], c_done, o);
	switch (o->kind) {
	case K_WRITE:
		o->len = 1 + rnd(slot < WMAX ? slot : WMAX);
		o->off = (uint64_t)(o - c->ops) * slot;
		for (uint64_t k = 0; k < o->len; k++)
			o->src[k] = pat(c->id, o->seq, k);
		maybe_room(&o->op);
		c_submit(c, o, &o->op,
			 plx_ep_write(c->ep, &o->op, o->src, o->len, &c->desc,
				      base));
		break;
	case K_IMM: {
		uint32_t imm = (uint32_t)(c->id << 24 | (o->seq & 0xffffff));

		o->len = 1 + rnd(4096);
		for (uint64_t k = 0; k < o->len; k++)
			o->src[k] = pat(imm, 0, k);
		maybe_room(&o->op);
		c_submit(c, o, &o->op,
			 plx_ep_write_imm(c->ep, &o->op, o->src, o->len,
					  &c->desc, base, imm));
		break;
	}
	case K_READ:
	case K_CANCEL_READ:
		o->len = 1 + rnd(WMAX);
		o->off = rnd(RAREA - o->len + 1);
		if (c_submit(c, o, &o->op,
			     plx_ep_read(c->ep, &o->op, o->dst, o->len,
					 &c->rdesc, o->off)) == 0 &&
		    o->kind == K_CANCEL_READ)
			plx_op_cancel(&c->r, &o->op);
		break;
	case K_MSG: {
		uint64_t cid = (uint64_t)c->id, slotno = (uint64_t)(o - c->ops);

		o->len = 24 + rnd(MSG - 24 + 1);
		memcpy(o->src, &cid, 8);
		memcpy(o->src + 8, &slotno, 8);
		memcpy(o->src + 16, &o->seq, 8);
		for (uint64_t k = 24; k < o->len; k++)
			o->src[k] = pat(cid, o->seq, k);
		/* the server echoes with tag 7:slot */
		maybe_room(&o->op);
		if (c_submit(c, o, &o->extra[0],
			     plx_ep_recv(c->ep, &o->extra[0], o->dst, MSG,
					 (uint64_t)7 << 32 | slotno, ~0ull)) ==
		    0)
			c_submit(c, o, &o->op,
				 plx_ep_send(c->ep, &o->op, o->src, o->len,
					     slotno));
		break;
	}
	case K_BATCH:
		o->off = (uint64_t)(o - c->ops) * slot;
		plx_ep_batch_begin(c->ep);
		for (int i = 0; i < 4; i++) {
			struct plx_op *op = i ? &o->extra[i - 1] : &o->op;

			o->len = 512;
			for (uint64_t k = 0; k < 512; k++)
				o->src[i * 512 + k] = pat(c->id, o->seq + i, k);
			if (c_submit(c, o, op,
				     plx_ep_write(c->ep, op, o->src + i * 512,
						  512, &c->desc,
						  base + (uint64_t)i * 512)))
				break;
		}
		plx_ep_batch_end(c->ep);
		break;
	case K_TIMEOUT:
		o->op.timeout_ns = (20 + rnd(40)) * MS;
		c_submit(c, o, &o->op,
			 plx_ep_recv(c->ep, &o->op, o->dst, 64, 0xdead0000,
				     ~0ull));
		break;
	case K_CANCEL_RECV:
		if (c_submit(c, o, &o->op,
			     plx_ep_recv(c->ep, &o->op, o->dst, 64, 0xcafe0000,
					 ~0ull)) == 0)
			EXPECT_OK(plx_op_cancel(&c->r, &o->op));
		break;
	}
}

static void c_resolved(struct plx_reactor *r, struct plx_req *req)
{
	struct client *c = req->user;

	(void)r;
	c->resolving--;
	if (req->status) {
		if (!loss_status(req->status) ||
		    !(c->failed_ok || c->down || c->ending))
			PLX_FAIL("client %d: resolve: %s", c->id,
				 plx_errname(req->status));
		c->resolved = -1;
		return;
	}
	if (++c->resolved == 2 && !c->ending && !c->down)
		for (int i = 0; i < WINDOW; i++)
			c_start_op(c, &c->ops[i]);
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
	case PLX_EP_RESTARTED:
		if (!c->proxied && !c->ending && !now_ending)
			PLX_FAIL("direct client %d lifetime %llu (%s): "
				 "endpoint %s: %s",
				 c->id, (unsigned long long)c->lifetime,
				 c->last_how,
				 event == PLX_EP_DOWN ? "down" : "restarted",
				 plx_errname(status));
		c->down++;
		break;
	case PLX_EP_CLOSED:
		c->ep = NULL;
		break;
	default:
		PLX_FAIL("client %d: unexpected event %d", c->id, event);
	}
}

/* A new connection (and endpoint) for @c: resolve both regions, then
 * WINDOW ops. */
static void c_connect(struct client *c)
{
	int rc;

	c->up = c->down = c->ending = 0;
	c->resolved = 0;
	c->failed_ok = c->proxied;
	c->lifetime++;
	stat_lifetimes++;
	c->end_ns = plx_now_ns() + (200 + rnd(1800)) * MS;
	rc = plx_tcp_connect(&c->r, "127.0.0.1",
			     c->proxied ? proxy_port : S.port, &c->ep);
	if (rc)
		PLX_FAIL("client %d: connect: %s", c->id, plx_errname(rc));
	plx_op_init(&c->resolve[0], c_resolved, c);
	plx_op_init(&c->resolve[1], c_resolved, c);
	if (plx_ep_resolve(c->ep, &c->resolve[0], "soak", &c->desc) ||
	    plx_ep_resolve(c->ep, &c->resolve[1], "soak-read", &c->rdesc))
		PLX_FAIL("client %d: resolve refused", c->id);
	c->resolving = 2;
	if (plx_mem_register(&c->r, &c->reg, c->regmem, 4096,
			     PLX_ACCESS_REMOTE_READ))
		PLX_FAIL("client %d: register", c->id);
	c->reg_live = 1;
}

static void c_init(struct client *c)
{
	struct plx_reactor_config rc;

	plx_reactor_config_init(&rc);
	memcpy(rc.node_id, c->node, 16);
	EXPECT_OK(plx_reactor_init(&c->r, &rc));
	plx_tcp_config_init(&c->cfg);
	c->cfg.event_cb = c_event;
	c->cfg.cb_arg = c;
	/* a stalled proxy is noticed in about 1 s */
	c->cfg.keepalive_ns = 250 * MS;
	c->cfg.handshake_timeout_ns = 2000 * MS;
	EXPECT_OK(plx_tcp_init(&c->r, &c->cfg));
	c->live = 1;
}

static int c_ops_pending(const struct client *c)
{
	for (int i = 0; i < WINDOW; i++)
		if (c->ops[i].pending)
			return 1;
	return 0;
}

/* Drive one client's lifetime forward. */
static void c_step(struct client *c)
{
	int rc;

	plx_reactor_poll(&c->r);
	if (!c->ending && (plx_now_ns() > c->end_ns || c->down || now_ending ||
			   c->resolved < 0)) {
		c->ending = 1;
		if (c->ep)
			plx_ep_close(c->ep);
	}
	if (!c->ending || c->ep || c_ops_pending(c) || c->resolving)
		return;
	/* the endpoint is closed and every op completed */
	if (c->reg_live && plx_mem_deregister(&c->r, &c->reg))
		PLX_FAIL("client %d: deregister", c->id);
	c->reg_live = 0;
	if (now_ending)
		return;
	/* a reconnect keeps the epoch, also after a proxied lifetime whose
	 * connection a fault left half-open at the server: the server then
	 * holds two connections of this session, and must carry on over the
	 * new one (tests/test_fault_stale_conn.c) */
	if (c->down || rnd(2)) {
		/* restart: a new epoch under the same node id */
		EXPECT_OK(plx_tcp_shutdown(&c->r));
		for (int i = 0;
		     i < 100 && (rc = plx_reactor_fini(&c->r)) == PLX_EBUSY;
		     i++)
			plx_reactor_poll(&c->r);
		if (rc)
			PLX_FAIL("client %d: fini: %s", c->id, plx_errname(rc));
		c->live = 0;
		stat_restarts++;
		c->last_how = c->proxied ? "restart after proxied" :
					   "restart after direct";
		c_init(c);
		c->proxied = (int)rnd(2);
	} else {
		stat_reconnects++;
		c->last_how = c->proxied ? "reconnect after proxied" :
					   "reconnect after direct";
		c->proxied = (int)rnd(2);
	}
	c_connect(c);
}

/* ---- faults --------------------------------------------------------------- */

static void set_random_faults(void)
{
	struct fproxy_faults f;
	int dir = (int)rnd(2);

	memset(&f, 0, sizeof(f));
	switch (rnd(6)) {
	case 0:
		f.dir[dir].kind = FPROXY_RST;
		f.dir[dir].at = rnd(1 << 20);
		break;
	case 1:
		f.dir[dir].kind = FPROXY_CLOSE;
		f.dir[dir].at = rnd(1 << 20);
		break;
	case 2:
		f.dir[dir].kind = FPROXY_STALL;
		f.dir[dir].at = rnd(1 << 18);
		f.dir[dir].ns = (50 + rnd(1500)) * MS;
		break;
	case 3:
		f.dir[dir].kind = FPROXY_DELAY;
		f.dir[dir].at = rnd(1 << 16);
		f.dir[dir].len = 1 << 16;
		f.dir[dir].ns = rnd(5) * MS;
		break;
	default:
		break; /* a clean connection */
	}
	fproxy_set_faults(proxy, &f);
}

/* ---- main ----------------------------------------------------------------- */

struct sample {
	double t;
	long rss;
	int fds;
};

static struct sample samples[MAX_SAMPLES];

int main(int argc, char **argv)
{
	uint64_t secs = argc > 1 ? strtoull(argv[1], NULL, 0) : 60;
	uint64_t seed = plx_test_seed("plx_soak");
	uint64_t t0, end, next_sample, next_fault, warm;
	size_t nsamples = 0, w0, half;
	long rss_a = 0, rss_b = 0, rss_tol;
	int fds_a = 0, fds_b = 0, fds0, rc;
	size_t mlen = (size_t)CLIENTS * GENS * AREA;

	if (secs < 5 || secs > 7 * 24 * 3600) {
		fprintf(stderr, "usage: plx_soak [SECONDS >= 5]\n");
		return 2;
	}
	seed_state = seed;
	fds0 = proc_fd_count();

	memset(&S, 0, sizeof(S));
	S.mem = aligned_alloc(4096, mlen);
	S.rmem = aligned_alloc(4096, RAREA);
	S.smem = aligned_alloc(4096, 65536);
	EXPECT_TRUE(S.mem && S.rmem && S.smem);
	memset(S.mem, 0, mlen);
	for (size_t k = 0; k < RAREA; k++)
		S.rmem[k] = pat(0xfeed, 0, k);
	EXPECT_OK(plx_reactor_init(&S.r, NULL));
	plx_tcp_config_init(&S.cfg);
	S.cfg.event_cb = s_event;
	S.cfg.imm_cb = s_imm;
	S.cfg.keepalive_ns = 250 * MS;
	S.cfg.handshake_timeout_ns = 2000 * MS;
	EXPECT_OK(plx_tcp_init(&S.r, &S.cfg));
	EXPECT_OK(plx_tcp_listen(&S.r, "127.0.0.1", 0, &S.port));
	EXPECT_OK(plx_mem_register(&S.r, &S.reg, S.mem, mlen,
				   PLX_ACCESS_REMOTE_WRITE));
	EXPECT_OK(plx_mem_name(&S.r, &S.reg, "soak"));
	EXPECT_OK(plx_mem_register(&S.r, &S.rreg, S.rmem, RAREA,
				   PLX_ACCESS_REMOTE_READ));
	EXPECT_OK(plx_mem_name(&S.r, &S.rreg, "soak-read"));
	plx_timer_init(&S.churn, s_churn, NULL);
	EXPECT_OK(plx_timer_start(&S.r, &S.churn, 100 * MS, 100 * MS));
	rc = fproxy_create(&proxy, S.port, &proxy_port);
	if (rc)
		PLX_FAIL("fproxy_create: %s", strerror(-rc));

	for (int i = 0; i < CLIENTS; i++) {
		struct client *c = &Cl[i];

		c->id = i;
		for (int k = 0; k < 16; k++)
			c->node[k] = (uint8_t)(0x50 + i * 16 + k);
		c->regmem = aligned_alloc(4096, 4096);
		EXPECT_TRUE(c->regmem != NULL);
		for (int k = 0; k < WINDOW; k++) {
			c->ops[k].c = c;
			/* PLX_HEADROOM bytes in front of each source */
			c->ops[k].src = malloc(PLX_HEADROOM + WMAX);
			if (c->ops[k].src)
				c->ops[k].src += PLX_HEADROOM;
			c->ops[k].dst = malloc(WMAX);
			EXPECT_TRUE(c->ops[k].src && c->ops[k].dst);
		}
		c->proxied = i & 1;
		c->last_how = "first";
		c_init(c);
		set_random_faults();
		c_connect(c);
	}

	t0 = plx_now_ns();
	end = t0 + secs * 1000 * MS;
	warm = secs / 5 < 5 ? 5 : secs / 5;
	next_sample = t0;
	next_fault = t0 + 500 * MS;
	while (plx_now_ns() < end) {
		uint64_t now;

		for (int i = 0; i < CLIENTS; i++) {
			c_step(&Cl[i]);
			plx_reactor_poll(&S.r);
			fproxy_step(proxy, 0);
		}
		now = plx_now_ns();
		if (now >= next_fault) {
			/* faults for the next connections; now and then a
			 * drop of every proxied connection at once */
			set_random_faults();
			if (rnd(8) == 0) {
				fproxy_drop_all(proxy, (int)rnd(2));
				stat_faults++;
			}
			next_fault = now + (100 + rnd(400)) * MS;
		}
		if (now >= next_sample && nsamples < MAX_SAMPLES) {
			struct sample *s = &samples[nsamples++];

			s->t = (double)(now - t0) / 1e9;
			s->rss = proc_rss_kib();
			s->fds = proc_fd_count();
			fprintf(stderr,
				"plx_soak: t=%5.1f s rss=%ld KiB fds=%d ops "
				"ok=%llu failed=%llu lifetimes=%llu\n",
				s->t, s->rss, s->fds,
				(unsigned long long)stat_ok,
				(unsigned long long)stat_fail,
				(unsigned long long)stat_lifetimes);
			next_sample += 1000 * MS;
		}
	}

	/* shut everything down: every op completes, every reactor ends */
	now_ending = 1;
	end = plx_now_ns() + 10000 * MS;
	for (;;) {
		int busy = 0;

		for (int i = 0; i < CLIENTS; i++) {
			struct client *c = &Cl[i];

			if (!c->live)
				continue;
			c_step(c);
			if (c->ep || c_ops_pending(c) || c->resolving ||
			    c->reg_live) {
				busy = 1;
				continue;
			}
			plx_tcp_shutdown(&c->r);
			rc = plx_reactor_fini(&c->r);
			if (rc == 0)
				c->live = 0;
			else
				busy = 1;
		}
		plx_reactor_poll(&S.r);
		fproxy_step(proxy, 0);
		if (!busy)
			break;
		if (plx_now_ns() > end)
			PLX_FAIL("shutdown: clients still busy after 10 s");
	}
	fproxy_destroy(proxy);
	plx_timer_stop(&S.r, &S.churn);
	if (S.scratch.plx_name[0])
		EXPECT_OK(plx_mem_deregister(&S.r, &S.scratch));
	EXPECT_OK(plx_mem_deregister(&S.r, &S.reg));
	EXPECT_OK(plx_mem_deregister(&S.r, &S.rreg));
	EXPECT_OK(plx_tcp_shutdown(&S.r));
	end = plx_now_ns() + 5000 * MS;
	while ((rc = plx_reactor_fini(&S.r)) == PLX_EBUSY && plx_now_ns() < end)
		plx_reactor_poll(&S.r);
	EXPECT_OK(rc);
	for (size_t i = 0; i < sizeof(S.sc) / sizeof(S.sc[0]); i++)
		if (S.sc[i].used || S.sc[i].inflight)
			PLX_FAIL("server: op of a closed endpoint never "
				 "completed");

	/* flat after warm-up */
	for (w0 = 0; w0 < nsamples && samples[w0].t < (double)warm; w0++)
		;
	if (nsamples - w0 < 2)
		PLX_FAIL("too few samples after warm-up (%zu)", nsamples - w0);
	half = w0 + (nsamples - w0) / 2;
	for (size_t i = w0; i < nsamples; i++) {
		long *rss = i < half ? &rss_a : &rss_b;
		int *fds = i < half ? &fds_a : &fds_b;

		if (samples[i].rss > *rss)
			*rss = samples[i].rss;
		if (samples[i].fds > *fds)
			*fds = samples[i].fds;
	}
	rss_tol = rss_a / 10 > 4096 ? rss_a / 10 : 4096;
	fprintf(stderr,
		"plx_soak: %llu s, seed %llu: %llu ops ok, %llu failed by "
		"faults; %llu lifetimes (%llu restarts, %llu reconnects), %llu "
		"drops of every proxied connection; server: %llu accepted, "
		"%llu down, %llu restarts seen, %llu messages, %llu write_imm; "
		"%llu echoes of messages whose send had failed; %llu ops with "
		"PLX_OP_HEADROOM\n",
		(unsigned long long)secs, (unsigned long long)seed,
		(unsigned long long)stat_ok, (unsigned long long)stat_fail,
		(unsigned long long)stat_lifetimes,
		(unsigned long long)stat_restarts,
		(unsigned long long)stat_reconnects,
		(unsigned long long)stat_faults, (unsigned long long)S.accepted,
		(unsigned long long)S.downs, (unsigned long long)S.restarted,
		(unsigned long long)S.msgs, (unsigned long long)S.imms,
		(unsigned long long)stat_stale, (unsigned long long)stat_room);
	fprintf(stderr,
		"plx_soak: after warm-up (%llu s): max RSS %ld then %ld KiB "
		"(tolerance %ld), max fds %d then %d (tolerance %d); fds %d at "
		"start, %d at the end\n",
		(unsigned long long)warm, rss_a, rss_b, rss_tol, fds_a, fds_b,
		2 * CLIENTS, fds0, proc_fd_count());
	if (rss_b > rss_a + rss_tol)
		PLX_FAIL("RSS grew after warm-up: %ld -> %ld KiB", rss_a,
			 rss_b);
	if (fds_b > fds_a + 2 * CLIENTS)
		PLX_FAIL("descriptors grew after warm-up: %d -> %d", fds_a,
			 fds_b);
	EXPECT_EQ(proc_fd_count(), fds0);
	for (int k = 0; k < K_NKINDS; k++)
		if (!stat_kind[k])
			PLX_FAIL("no %s op ran", kind_name[k]);
	if (!stat_room)
		PLX_FAIL("no op set PLX_OP_HEADROOM");
	fprintf(stderr, "plx_soak: passed\n");
	return 0;
}
