/* SPDX-License-Identifier: MIT */
/*
 * Test helpers: two reactors with the TCP transport, driven alternately by
 * one thread (so neither busy-spins against the other on a shared core).
 */
#ifndef PLX_TEST_TCP_PAIR_H
#define PLX_TEST_TCP_PAIR_H

#include "harness.h"
#include "pollux/pollux.h"
#include "pollux/tcp.h"

#define PAIR_MAX_EV 64

struct side {
	struct plx_reactor r;
	struct plx_tcp_config cfg;
	uint16_t port;
	int nev;
	int ev[PAIR_MAX_EV];
	int ev_status[PAIR_MAX_EV];
	struct plx_ep *ev_ep[PAIR_MAX_EV];
	struct plx_ep *accepted;
	int imm_count;
	uint32_t last_imm;
	uint64_t last_imm_addr, last_imm_len;
	/* set by the test: checked inside the write_imm handler */
	const void *imm_expect;
	const void *imm_at;
	int imm_data_ok;
};

static inline void side_event(struct plx_reactor *r, struct plx_ep *ep,
			      int event, int status, void *arg)
{
	struct side *s = arg;

	(void)r;
	if (s->nev < PAIR_MAX_EV) {
		s->ev[s->nev] = event;
		s->ev_status[s->nev] = status;
		s->ev_ep[s->nev] = ep;
		s->nev++;
	}
	if (event == PLX_EP_ACCEPTED)
		s->accepted = ep;
	if (event == PLX_EP_CLOSED && s->accepted == ep)
		s->accepted = NULL;
}

static inline void side_imm(struct plx_reactor *r, struct plx_ep *ep,
			    uint32_t imm, uint64_t addr, uint64_t len,
			    void *arg)
{
	struct side *s = arg;

	(void)r;
	(void)ep;
	s->imm_count++;
	s->last_imm = imm;
	s->last_imm_addr = addr;
	s->last_imm_len = len;
	/* the data must be in place when the notification runs */
	if (s->imm_expect)
		s->imm_data_ok = !memcmp(s->imm_at, s->imm_expect, len);
}

/* Init a side; psk may be NULL. listen_addr NULL: no listener. @tweak
 * (may be NULL) changes the TCP config before plx_tcp_init(). */
static inline void side_init_with(struct side *s, const char *listen_addr,
				  const char *psk,
				  const struct plx_reactor_config *rcfg,
				  void (*tweak)(struct side *s))
{
	memset(s, 0, sizeof(*s));
	EXPECT_OK(plx_reactor_init(&s->r, rcfg));
	plx_tcp_config_init(&s->cfg);
	s->cfg.event_cb = side_event;
	s->cfg.imm_cb = side_imm;
	s->cfg.cb_arg = s;
	if (psk) {
		s->cfg.psk = psk;
		s->cfg.psk_len = strlen(psk);
	}
	if (tweak)
		tweak(s);
	EXPECT_OK(plx_tcp_init(&s->r, &s->cfg));
	if (listen_addr)
		EXPECT_OK(plx_tcp_listen(&s->r, listen_addr, 0, &s->port));
}

static inline void side_init(struct side *s, const char *listen_addr,
			     const char *psk,
			     const struct plx_reactor_config *rcfg)
{
	side_init_with(s, listen_addr, psk, rcfg, NULL);
}

static inline void pair_poll(struct side *a, struct side *b)
{
	plx_reactor_poll(&a->r);
	if (b)
		plx_reactor_poll(&b->r);
}

/* Poll both until *flag becomes nonzero or @ms pass. Return *flag. */
static inline int pair_until(struct side *a, struct side *b, const int *flag,
			     int ms)
{
	uint64_t end = plx_now_ns() + (uint64_t)ms * 1000000ull;

	while (!*flag && plx_now_ns() < end)
		pair_poll(a, b);
	return *flag;
}

static inline int side_has_event(const struct side *s, int event)
{
	for (int i = 0; i < s->nev; i++)
		if (s->ev[i] == event)
			return 1;
	return 0;
}

static inline int side_event_status(const struct side *s, int event)
{
	for (int i = 0; i < s->nev; i++)
		if (s->ev[i] == event)
			return s->ev_status[i];
	return 1;
}

/* Wait for an event on a side (polling both). */
static inline int pair_wait_event(struct side *a, struct side *b,
				  const struct side *s, int event, int ms)
{
	uint64_t end = plx_now_ns() + (uint64_t)ms * 1000000ull;

	while (!side_has_event(s, event) && plx_now_ns() < end)
		pair_poll(a, b);
	return side_has_event(s, event);
}

/* Completion tracking for ops in callback mode. */
struct tracked {
	struct plx_op op;
	int done;
	int status;
	uint64_t bytes;
};

static inline void tracked_cb(struct plx_reactor *r, struct plx_req *req)
{
	struct tracked *t = (struct tracked *)(void *)req;

	(void)r;
	t->done++;
	t->status = req->status;
	t->bytes = req->bytes;
}

static inline void tracked_init(struct tracked *t)
{
	memset(t, 0, sizeof(*t));
	plx_op_init(&t->op, tracked_cb, NULL);
}

/* Write @msg (a string, at most 63 bytes) through @ep, initiated by
 * @init, into a region of @target; check it completes and lands. */
static inline void pair_write_check(struct side *target, struct side *init,
				    struct plx_ep *ep, const char *msg)
{
	static uint8_t mem[64];
	struct plx_region reg;
	struct plx_desc d;
	struct tracked w;

	memset(mem, 0, sizeof(mem));
	EXPECT_OK(plx_mem_register(&target->r, &reg, mem, sizeof(mem),
				   PLX_ACCESS_ALL));
	EXPECT_OK(plx_mem_desc(&target->r, &reg, &d));
	tracked_init(&w);
	EXPECT_OK(plx_ep_write(ep, &w.op, msg, strlen(msg) + 1, &d, 0));
	EXPECT_TRUE(pair_until(target, init, &w.done, 5000));
	EXPECT_OK(w.status);
	EXPECT_TRUE(!strcmp((char *)mem, msg));
	EXPECT_OK(plx_mem_deregister(&target->r, &reg));
}

/* Shut a side down and check fini succeeds. */
static inline void side_fini(struct side *s, struct side *other)
{
	uint64_t end = plx_now_ns() + 5000000000ull;
	int rc;

	EXPECT_OK(plx_tcp_shutdown(&s->r));
	while ((rc = plx_reactor_fini(&s->r)) == PLX_EBUSY &&
	       plx_now_ns() < end)
		pair_poll(s, other);
	EXPECT_OK(rc);
}

#endif /* PLX_TEST_TCP_PAIR_H */
