/* SPDX-License-Identifier: MIT */
/*
 * TCP endpoints: one per peer node. Operation submission, receive
 * matching, the unexpected queue, completion, timeouts and cancel,
 * attaching connections after their handshake (simultaneous open, peer
 * restart), endpoint events and close.
 */
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "reactor/hot.h"
#include "transport/tcp/tcp_internal.h"

/* ---- op lists ----------------------------------------------------------- */

PLX__HOT void plx__oplist_push(struct plx__oplist *l, struct plx__op *o)
{
	o->next = NULL;
	o->prev = l->tail;
	if (l->tail)
		l->tail->next = o;
	else
		l->head = o;
	l->tail = o;
	l->n++;
}

void plx__oplist_push_front(struct plx__oplist *l, struct plx__op *o)
{
	o->prev = NULL;
	o->next = l->head;
	if (l->head)
		l->head->prev = o;
	else
		l->tail = o;
	l->head = o;
	l->n++;
}

PLX__HOT void plx__oplist_remove(struct plx__oplist *l, struct plx__op *o)
{
	if (o->prev)
		o->prev->next = o->next;
	else
		l->head = o->next;
	if (o->next)
		o->next->prev = o->prev;
	else
		l->tail = o->prev;
	o->next = o->prev = NULL;
	l->n--;
}

PLX__HOT struct plx__op *plx__oplist_pop(struct plx__oplist *l)
{
	struct plx__op *o = l->head;

	if (o)
		plx__oplist_remove(l, o);
	return o;
}

/* ---- endpoints ---------------------------------------------------------- */

static void ev_set(struct plx_ep *ep, int event, int status)
{
	ep->ev |= 1u << event;
	if (event == PLX_EP_DOWN)
		ep->ev_status = status;
	ep->t->ev_pending = true;
}

struct plx_ep *plx__ep_new(struct plx__tcp *t)
{
	struct plx_ep *ep = plx__zalloc(plx__r(t->r), sizeof(*ep));

	if (!ep)
		return NULL;
	ep->t = t;
	ep->canon = ep;
	ep->next = t->eps;
	if (t->eps)
		t->eps->prev = ep;
	t->eps = ep;
	t->neps++;
	if (!plx_timer_armed(&t->tick))
		plx_timer_start(t->r, &t->tick, t->tick_ns, t->tick_ns);
	return ep;
}

void plx__ep_maybe_free(struct plx_ep *ep)
{
	struct plx__tcp *t = ep->t;

	plx__rdma_ep_gone(ep);
	if (ep->prev)
		ep->prev->next = ep->next;
	else
		t->eps = ep->next;
	if (ep->next)
		ep->next->prev = ep->prev;
	t->neps--;
	plx__free(plx__r(t->r), ep);
	if (!t->nconns && !t->neps && plx_timer_armed(&t->tick))
		plx_timer_stop(t->r, &t->tick);
}

static void piece_done(struct plx__tcp *t, struct plx__op *p, int status);

PLX__HOT void plx__op_done(struct plx__tcp *t, struct plx__op *o, int status,
			   uint64_t bytes)
{
	if (o->parent) {
		piece_done(t, o, status);
		return;
	}
	o->state = PLX__S_IDLE;
	o->conn = NULL;
	o->cancelled = 0;
	if (o->ep)
		o->ep->inflight--;
	o->ep = NULL;
	plx_req_complete(t->r, &o->req, status, bytes);
}

int plx__slot_get(struct plx__tcp *t)
{
	return t->nslot_free ? (int)t->slot_free[--t->nslot_free] : -1;
}

static void slot_put(struct plx__tcp *t, uint32_t slot)
{
	t->slot_free[t->nslot_free++] = slot;
	if (t->paused)
		t->kick = true;
}

void plx__unexp_push(struct plx_ep *ep, uint64_t tag, uint32_t len, int slot)
{
	struct plx__unexp *u = &ep->t->unexp[slot];

	ep = ep->canon;
	u->next = NULL;
	u->ep = ep;
	u->tag = tag;
	u->len = len;
	u->slot = (uint32_t)slot;
	if (ep->unexp_tail)
		ep->unexp_tail->next = u;
	else
		ep->unexp_head = u;
	ep->unexp_tail = u;
	ep->nunexp++;
}

static void unexp_free_all(struct plx_ep *ep)
{
	while (ep->unexp_head) {
		struct plx__unexp *u = ep->unexp_head;

		ep->unexp_head = u->next;
		slot_put(ep->t, u->slot);
	}
	ep->unexp_tail = NULL;
	ep->nunexp = 0;
}

PLX__HOT struct plx__op *plx__ep_match(struct plx_ep *ep, uint64_t tag)
{
	for (struct plx__op *o = ep->posted.head; o; o = o->next) {
		if ((o->tag & o->mask) == (tag & o->mask)) {
			plx__oplist_remove(&ep->posted, o);
			return o;
		}
	}
	return NULL;
}

/* Queue @o on connection @c (up). */
PLX__HOT static void conn_submit(struct plx__conn *c, struct plx__op *o)
{
	struct plx__frame f;
	int rc;

	/* the data-path fields; hello and proof are read for HELLO and
	 * READY only, and the whole struct is over 200 bytes */
	memset(&f, 0, offsetof(struct plx__frame, hello));
	o->conn = c;
	o->state = PLX__S_TX;
	switch (o->kind) {
	case PLX__K_SEND:
		f.opcode = PLX__OP_SEND;
		f.tag = o->tag;
		break;
	case PLX__K_WRITE:
		f.opcode = PLX__OP_WRITE;
		break;
	case PLX__K_WRITE_IMM:
		f.opcode = PLX__OP_WRITE_IMM;
		f.imm = o->imm;
		break;
	case PLX__K_READ:
		f.opcode = PLX__OP_READ_REQ;
		f.len = o->len;
		break;
	case PLX__K_RESOLVE:
		f.opcode = PLX__OP_RESOLVE_REQ;
		f.payload_len = (uint32_t)o->len;
		break;
	}
	f.addr = o->raddr;
	f.key = o->rkey;
	if (plx__op_has_response(o)) {
		f.id = ++c->tx_rid;
		plx__oplist_push(&c->wait_read, o);
	} else {
		f.id = ++c->tx_seq;
		f.payload_len = (uint32_t)o->len;
		plx__oplist_push(&c->wait_ack, o);
	}
	/* the ACK this side owes goes first: riding on a small frame
	 * (RESOLVE_REQ takes none), as an ACK frame ahead of a large one */
	if (f.payload_len >= PLX__TCP_RIDE_MAX)
		plx__conn_ack_ahead(c);
	else if (o->kind != PLX__K_RESOLVE && (f.ack = plx__conn_ride_ack(c)))
		f.flags = PLX__F_ACK;
	o->seq = f.id;
	memset(&o->tx, 0, sizeof(o->tx));
	o->tx.hdr = o->hdr;
	o->tx.hdr_len = (uint32_t)plx__wire_encode(&f, o->hdr);
	o->tx.is_op = 1;
	if (o->kind != PLX__K_READ) {
		o->tx.payload = o->src;
		o->tx.payload_len = f.payload_len;
		/* a piece of a split op has no flags (try_split() zeroes it):
		 * the bytes before a piece are the payload of the one
		 * before. A resolve's payload is its name: not a source. */
		o->tx.room = (o->flags & PLX_OP_HEADROOM) && f.payload_len &&
			     !o->dev && o->kind != PLX__K_RESOLVE;
	}
	/* eager: sent at once unless in a batch or behind a full socket */
	rc = plx__conn_submit(c, &o->tx, o->ep->corked);
	if (rc)
		plx__conn_fail(c, rc);
}

/* ---- striping ------------------------------------------------------------ */

/* A piece finished. The parent completes when its last piece does; the
 * pieces go back to the pool only then, so the parent's chain stays valid
 * for cancel. */
static void piece_done(struct plx__tcp *t, struct plx__op *p, int status)
{
	struct plx__op *o = p->parent;

	p->state = PLX__S_IDLE;
	p->conn = NULL;
	if (status < 0 && !o->piece_err)
		o->piece_err = status;
	if (--o->pieces_left)
		return;
	while (o->sibling) {
		struct plx__op *q = o->sibling;

		o->sibling = q->sibling;
		t->piece_free[t->npiece_free++] = (uint32_t)(q - t->pieces);
	}
	plx__op_done(t, o, o->cancelled ? o->req.status : o->piece_err,
		     o->cancelled || o->piece_err ? 0 : o->len);
}

/* Split a large write or read over the endpoint's up connections. Return
 * false to send it whole instead. */
static bool try_split(struct plx_ep *ep, struct plx__op *o)
{
	struct plx__tcp *t = ep->t;
	struct plx__conn *cs[9];
	uint64_t chunk = t->cfg.stripe_chunk, npieces;
	uint32_t n = 0;

	if (!t->cfg.stripes ||
	    (o->kind != PLX__K_WRITE && o->kind != PLX__K_READ) ||
	    o->len < t->cfg.stripe_threshold)
		return false;
	for (struct plx__conn *c = ep->conns; c && n < 9; c = c->ep_next)
		if (c->state == PLX__C_UP)
			cs[n++] = c;
	npieces = (o->len + chunk - 1) / chunk;
	if (n < 2 || npieces > t->npiece_free)
		return false;
	o->state = PLX__S_SPLIT;
	o->pieces_left = (uint32_t)npieces;
	o->piece_err = 0;
	o->sibling = NULL;
	for (uint64_t i = 0; i < npieces; i++) {
		struct plx__op *p = &t->pieces[t->piece_free[--t->npiece_free]];
		struct plx__conn *c = cs[(ep->rr + i) % n];
		uint64_t off = i * chunk;

		memset(p, 0, sizeof(*p));
		p->parent = o;
		p->sibling = o->sibling;
		o->sibling = p;
		p->kind = o->kind;
		p->ep = ep;
		p->deadline = o->deadline;
		p->len = o->len - off < chunk ? o->len - off : chunk;
		p->src = o->src ? (const uint8_t *)o->src + off : NULL;
		p->dst = o->dst ? (uint8_t *)o->dst + off : NULL;
		p->raddr = o->raddr + off;
		p->rkey = o->rkey;
		if (c->state == PLX__C_UP)
			conn_submit(c, p);
		else
			piece_done(t, p, PLX_ECONNRESET); /* died meanwhile */
	}
	ep->rr++;
	return true;
}

/* Send the backlog on the endpoint's connection. */
void plx__ep_kick(struct plx_ep *ep)
{
	struct plx__op *o;

	while (ep->conn && ep->conn->state == PLX__C_UP &&
	       (o = plx__oplist_pop(&ep->backlog)))
		conn_submit(ep->conn, o);
}

static void fail_list(struct plx__tcp *t, struct plx__oplist *l, int status)
{
	struct plx__op *o;

	while ((o = plx__oplist_pop(l)))
		plx__op_done(t, o, status, 0);
}

/* Fail every op carried by connection @c. */
static void conn_fail_ops(struct plx__conn *c, int status)
{
	struct plx__tcp *t = c->t;

	fail_list(t, &c->wait_ack, status);
	fail_list(t, &c->wait_read, status);
	if (c->rx_op) {
		struct plx__op *o = c->rx_op;

		c->rx_op = NULL;
		plx__op_done(t, o, o->cancelled ? o->req.status : status, 0);
	}
	c->txq_head = c->txq_tail = NULL;
	c->txq_n = 0;
}

static bool ep_connecting(const struct plx_ep *ep)
{
	for (struct plx__conn *c = ep->conns; c; c = c->ep_next)
		if (c->state == PLX__C_CONNECTING ||
		    c->state == PLX__C_HANDSHAKE || c->state == PLX__C_UP)
			return true;
	return false;
}

static void detach(struct plx_ep *ep, struct plx__conn *c)
{
	struct plx__conn **pp;

	for (pp = &ep->conns; *pp; pp = &(*pp)->ep_next)
		if (*pp == c) {
			*pp = c->ep_next;
			break;
		}
	c->ep_next = NULL;
	if (ep->conn == c) {
		ep->conn = NULL;
		for (struct plx__conn *o = ep->conns; o; o = o->ep_next)
			if (o->state == PLX__C_UP) {
				ep->conn = o;
				break;
			}
	}
}

/* @c stops carrying new ops (it drains); pick another connection. */
void plx__ep_retire(struct plx_ep *ep, struct plx__conn *c)
{
	ep = ep->canon;
	if (ep->conn != c)
		return;
	ep->conn = NULL;
	for (struct plx__conn *o = ep->conns; o; o = o->ep_next)
		if (o != c && o->state == PLX__C_UP) {
			ep->conn = o;
			break;
		}
	plx__ep_kick(ep);
}

void plx__ep_conn_lost(struct plx_ep *ep, struct plx__conn *c, int status)
{
	struct plx__tcp *t = c->t;
	int st = status ? status : PLX_ECONNRESET;

	conn_fail_ops(c, st);
	detach(ep, c);
	c->ep = NULL;
	plx__conn_reap(c);
	ep = ep->canon;
	if (!ep->conn && !ep_connecting(ep) && !ep->closing) {
		/* nothing left to carry the ops: fail them now rather than
		 * at their timeout */
		plx__rdma_ep_down(ep, st);
		fail_list(t, &ep->backlog, st);
		fail_list(t, &ep->posted, st);
		if (status || ep->up_reported)
			ev_set(ep, PLX_EP_DOWN, st);
		ep->up_reported = false;
	}
	plx__ep_kick(ep);
}

/* Fail everything in flight on @ep (peer restart or close). */
static void ep_fail_all(struct plx_ep *ep, int status, bool close_conns)
{
	struct plx__tcp *t = ep->t;

	plx__rdma_ep_down(ep, status);
	plx__stage_ep_down(ep, status);
	fail_list(t, &ep->backlog, status);
	fail_list(t, &ep->posted, status);
	unexp_free_all(ep);
	if (!close_conns)
		return;
	while (ep->conns) {
		struct plx__conn *c = ep->conns;
		struct plx__frame f = {.opcode = PLX__OP_CLOSE};

		if (c->state == PLX__C_UP || c->state == PLX__C_DRAIN) {
			/* CLOSE(0) would mean "retire a duplicate" */
			f.status = status == PLX_ECANCELED ? PLX_ESHUTDOWN :
							     status;
			if (!plx__conn_send_ctrl(c, &f, NULL, 0))
				plx__conn_flush(c);
		}
		conn_fail_ops(c, status);
		detach(ep, c);
		c->ep = NULL;
		c->state = PLX__C_DEAD;
		plx__conn_reap(c);
	}
}

static struct plx_ep *find_peer(struct plx__tcp *t, const uint8_t *node,
				const struct plx_ep *skip)
{
	for (struct plx_ep *ep = t->eps; ep; ep = ep->next)
		if (ep != skip && ep->canon == ep && ep->known &&
		    !ep->closing && !memcmp(ep->node, node, 16))
			return ep;
	return NULL;
}

/* Which of two connections to the same peer survives a simultaneous open:
 * the one opened by the node with the smaller id. Both sides compute the
 * same answer for the same TCP connection. */
static bool conn_wins(const struct plx__conn *c, const uint8_t *self,
		      const uint8_t *peer)
{
	const uint8_t *opener = c->role == 0 ? self : peer;
	const uint8_t *other = c->role == 0 ? peer : self;

	return memcmp(opener, other, 16) < 0;
}

static struct plx__unexp **unexp_find(struct plx_ep *ep, uint64_t tag,
				      uint64_t mask);
static void recv_unexpected(struct plx_ep *ep, struct plx__op *o,
			    struct plx__unexp **pp);

/* Give waiting unexpected messages to posted receives, in posting order
 * (after a merge brought receives and messages together). */
static void match_unexpected(struct plx_ep *ep)
{
	struct plx__op *o, *next;

	for (o = ep->posted.head; o && ep->unexp_head; o = next) {
		struct plx__unexp **pp = unexp_find(ep, o->tag, o->mask);

		next = o->next;
		if (!pp)
			continue;
		plx__oplist_remove(&ep->posted, o);
		recv_unexpected(ep, o, pp);
	}
}

static void merge(struct plx_ep *from, struct plx_ep *into)
{
	struct plx__op *o;

	from->canon = into;
	while ((o = plx__oplist_pop(&from->backlog))) {
		o->ep = into;
		from->inflight--;
		into->inflight++;
		plx__oplist_push(&into->backlog, o);
	}
	while ((o = plx__oplist_pop(&from->posted))) {
		o->ep = into;
		from->inflight--;
		into->inflight++;
		plx__oplist_push(&into->posted, o);
	}
	while (from->conns) {
		struct plx__conn *c = from->conns;

		from->conns = c->ep_next;
		c->ep = into;
		c->ep_next = into->conns;
		into->conns = c;
	}
	from->conn = NULL;
	while (from->unexp_head) {
		struct plx__unexp *u = from->unexp_head;

		from->unexp_head = u->next;
		from->nunexp--;
		plx__unexp_push(into, u->tag, u->len, (int)u->slot);
	}
	from->unexp_tail = NULL;
	/* messages may have reached @into before these receives joined it */
	match_unexpected(into);
}

/* A striped data connection joins the session it belongs to: same node,
 * same epoch, session already up. It carries pieces of split ops (and, if
 * the primary connection is lost, everything). */
static void attach_stripe(struct plx__conn *c, const struct plx__hello *h)
{
	struct plx_ep *ep = c->ep ? c->ep->canon :
				    find_peer(c->t, h->node_id, NULL);

	if (!ep || !ep->known || ep->epoch != h->epoch ||
	    memcmp(ep->node, h->node_id, 16)) {
		plx__conn_fail(c, PLX_EPROTO);
		return;
	}
	if (!c->ep) {
		c->ep = ep;
		c->ep_next = ep->conns;
		ep->conns = c;
	}
	if (!ep->conn)
		ep->conn = c;
	plx__ep_kick(ep);
}

void plx__ep_attach(struct plx__conn *c)
{
	struct plx__tcp *t = c->t;
	struct plx__reactor *x = plx__r(t->r);
	const struct plx__hello *h = plx__hs_peer(&c->hs);
	struct plx_ep *mine = c->ep, *ep;

	if (!memcmp(h->node_id, x->cfg.node_id, 16)) {
		plx__conn_fail(c, PLX_EPROTO); /* connected to ourselves */
		return;
	}
	if (c->role == 1)
		c->index = h->conn_index;
	if (c->index) {
		attach_stripe(c, h);
		return;
	}
	ep = find_peer(t, h->node_id, mine);
	if (ep && mine)
		merge(mine, ep); /* a second handle for a known peer */
	if (!ep)
		ep = mine;
	if (!ep) {
		if (t->neps >= t->cfg.max_endpoints) {
			plx__conn_fail(c, PLX_ENOSPC);
			return;
		}
		ep = plx__ep_new(t);
		if (!ep) {
			plx__conn_fail(c, PLX_ENOMEM);
			return;
		}
		ev_set(ep, PLX_EP_ACCEPTED, 0);
	}
	if (!c->ep) {
		c->ep = ep;
		c->ep_next = ep->conns;
		ep->conns = c;
	}
	if (ep->known && ep->epoch != h->epoch) {
		/* the peer restarted: everything in flight is lost */
		for (struct plx__conn *o = ep->conns; o; o = o->ep_next)
			if (o != c)
				o->state = PLX__C_DRAIN; /* closed below */
		ep_fail_all(ep, PLX_ECONNRESET, false);
		for (struct plx__conn *o = ep->conns, *n; o; o = n) {
			n = o->ep_next;
			if (o != c)
				plx__conn_fail(o, PLX_ECONNRESET);
		}
		ep->conn = NULL;
		ev_set(ep, PLX_EP_RESTARTED, 0);
	}
	memcpy(ep->node, h->node_id, 16);
	ep->epoch = h->epoch;
	ep->known = true;
	if (ep->conn && ep->conn != c && ep->conn->state == PLX__C_UP &&
	    ep->conn->role == 1 && c->role == 1) {
		/* Both opened by the peer: not a simultaneous open (there each
		 * side opens one). The peer opens another primary connection
		 * when it gave the first up (its endpoint closed while the
		 * path was stalled: that one is dead and we do not know it
		 * yet), or when it holds both and chooses; its CLOSE(0) then
		 * retires the one it drops. Either way the newer one carries
		 * our ops from now on; the older finishes what it carries, and
		 * goes when it fails or is retired, without an event. */
		ep->conn = c;
	} else if (ep->conn && ep->conn != c && ep->conn->state == PLX__C_UP) {
		/* simultaneous open: keep one connection, drain the other */
		struct plx__conn *old = ep->conn;

		if (conn_wins(c, x->cfg.node_id, h->node_id)) {
			old->state = PLX__C_DRAIN;
			ep->conn = c;
			plx__conn_drain(old);
		} else {
			c->state = PLX__C_DRAIN;
			plx__conn_drain(c);
			return;
		}
	} else {
		bool was_up = ep->up_reported;

		ep->conn = c;
		ep->up_reported = true;
		/* a switch to another connection of a live session (after a
		 * retired duplicate) is not a new event */
		if (!was_up && !(ep->ev & (1u << PLX_EP_ACCEPTED)))
			ev_set(ep, PLX_EP_CONNECTED, 0);
	}
	if (c->role == 0 && t->cfg.stripes && ep->addrlen &&
	    !ep->stripes_opened)
		plx__tcp_open_stripes(ep);
	if (ep->conn == c && (c->hs.caps_common & PLX__CAP_RDMA))
		plx__rdma_ep_up(ep);
	plx__ep_kick(ep);
}

/* ---- events and reaping ------------------------------------------------- */

static void ep_report(struct plx__tcp *t, struct plx_ep *ep)
{
	uint32_t ev = ep->ev;
	plx_ep_event_cb cb = t->cfg.event_cb;
	void *arg = t->cfg.cb_arg;

	ep->ev = 0;
	if (!cb)
		return;
	if (ev & (1u << PLX_EP_ACCEPTED))
		cb(t->r, ep, PLX_EP_ACCEPTED, 0, arg);
	if (ev & (1u << PLX_EP_RESTARTED))
		cb(t->r, ep, PLX_EP_RESTARTED, 0, arg);
	if ((ev & (1u << PLX_EP_DOWN)) && (ev & (1u << PLX_EP_CONNECTED)) &&
	    ep->canon->conn) {
		cb(t->r, ep, PLX_EP_DOWN, ep->ev_status, arg);
		cb(t->r, ep, PLX_EP_CONNECTED, 0, arg);
	} else {
		if (ev & (1u << PLX_EP_CONNECTED))
			cb(t->r, ep, PLX_EP_CONNECTED, 0, arg);
		if (ev & (1u << PLX_EP_DOWN))
			cb(t->r, ep, PLX_EP_DOWN, ep->ev_status, arg);
	}
}

/* PLX_EP_CLOSED: the last thing the caller hears of @ep; then it goes. */
static void closed_cb(struct plx_reactor *r, struct plx_req *req)
{
	struct plx_ep *ep = req->user;
	struct plx__tcp *t = ep->t;

	if (t->cfg.event_cb)
		t->cfg.event_cb(r, ep, PLX_EP_CLOSED, 0, t->cfg.cb_arg);
	/* the callback may not touch ep after this */
	plx__ep_maybe_free(ep);
}

/* Report pending endpoint events and free closed endpoints. Runs at the
 * end of the socket phase, so no event fires inside a submitting call. */
PLX__HOT int plx__tcp_events(struct plx__tcp *t)
{
	struct plx_ep *ep, *next;
	int n = 0;

	if (!t->ev_pending)
		return 0;
	t->ev_pending = false;
	for (ep = t->eps; ep; ep = next) {
		next = ep->next;
		if (!ep->ev)
			continue;
		n++;
		if (ep->ev & (1u << PLX_EP_CLOSED)) {
			/* after every op of the endpoint: RDMA ops still
			 * being flushed and staged ops still copying finish
			 * first */
			if (plx__rdma_ep_busy(ep->canon) ||
			    ep->canon->inflight) {
				t->ev_pending = true;
				continue;
			}
			ep->ev = 0;
			/* delivered in the completion phase, behind the
			 * completions of its ops already queued there */
			plx_req_init(&ep->closed_req, closed_cb, ep);
			if (plx__req_begin(t->r, &ep->closed_req) ||
			    plx_req_complete(t->r, &ep->closed_req, 0, 0))
				closed_cb(t->r, &ep->closed_req);
			continue;
		}
		ep_report(t, ep);
	}
	return n;
}

/* ---- timeouts and keepalive -------------------------------------------- */

static void expire_list(struct plx__tcp *t, struct plx__oplist *l, uint64_t now)
{
	struct plx__op *o, *next;

	for (o = l->head; o; o = next) {
		next = o->next;
		if (o->deadline > now || o->cancelled)
			continue;
		if (o->state == PLX__S_TX && o->tx.sent) {
			/* bytes are leaving from its buffer: finish first */
			o->cancelled = 1;
			o->req.status = PLX_ETIMEDOUT;
			continue;
		}
		if (o->state == PLX__S_TX)
			plx__conn_unqueue(o->conn, &o->tx);
		plx__oplist_remove(l, o);
		plx__op_done(t, o, PLX_ETIMEDOUT, 0);
	}
}

static void conn_tick(struct plx__conn *c, uint64_t now)
{
	struct plx__tcp *t = c->t;

	if (c->state == PLX__C_CONNECTING || c->state == PLX__C_HANDSHAKE) {
		if (now >= c->hs_deadline)
			plx__conn_fail(c, PLX_ETIMEDOUT);
		return;
	}
	if (c->state != PLX__C_UP && c->state != PLX__C_DRAIN)
		return;
	expire_list(t, &c->wait_ack, now);
	expire_list(t, &c->wait_read, now);
	/* bytes arrived since the last tick (rx_seen() stamps no time), or
	 * we are the ones not reading: the peer's pongs wait unread in the
	 * socket, so silence proves nothing */
	if (c->rx_fresh || c->rx_paused) {
		c->rx_fresh = false;
		c->last_rx_ns = now;
		c->pings_out = 0;
	}
	if (c->rx_op && c->rx_op->deadline <= now && !c->rx_op->cancelled) {
		c->rx_op->cancelled = 1;
		c->rx_op->req.status = PLX_ETIMEDOUT;
	}
	if (now - c->last_rx_ns >= t->cfg.keepalive_ns * (c->pings_out + 1)) {
		struct plx__frame f = {.opcode = PLX__OP_PING, .id = now};

		if (c->pings_out >= t->cfg.keepalive_probes) {
			plx__conn_fail(c, PLX_ETIMEDOUT);
			return;
		}
		if (!plx__conn_send_ctrl(c, &f, NULL, 0)) {
			c->pings_out++;
			if (plx__conn_flush(c))
				plx__conn_fail(c, PLX_ECONNRESET);
		}
	}
}

void plx__tcp_expire(struct plx__tcp *t, uint64_t now)
{
	struct plx__conn *c, *cn;

	if (t->paused)
		t->kick = true; /* pool buffers may have come back */

	for (c = t->conns; c; c = cn) {
		cn = c->next;
		conn_tick(c, now);
	}
	for (struct plx_ep *ep = t->eps; ep; ep = ep->next) {
		expire_list(t, &ep->backlog, now);
		expire_list(t, &ep->posted, now);
		plx__rdma_expire(ep, now);
	}
	if (t->stage)
		plx__stage_expire(t, now);
}

/* ---- public operations --------------------------------------------------- */

PLX_API void plx_op_init(struct plx_op *op, plx_req_cb cb, void *user)
{
	memset(op, 0, sizeof(*op));
	plx_req_init(&op->req, cb, user);
}

static int op_start(struct plx_ep *ep, struct plx__op *o);

/* An op in flight belongs to pollux: every submission refuses it before
 * touching any of its fields. */
static int op_busy(const struct plx_op *op)
{
	return (plx__load_acquire(&op->req.plx_state) & PLX__REQ_STATE_MASK) ==
	       PLX__REQ_QUEUED;
}

static int op_begin(struct plx_ep **epp, struct plx_op *op)
{
	struct plx_ep *ep;
	struct plx__tcp *t;

	if (!*epp || !op)
		return PLX_EINVAL;
	ep = (*epp)->canon;
	t = ep->t;
	PLX__ASSERT_OWNER(plx__r(t->r));
	if (op_busy(op))
		return PLX_EBUSY;
	if (op->flags & ~PLX__OP_FLAGS)
		return PLX_EINVAL;
	if (ep->closing)
		return PLX_ESHUTDOWN;
	if (!ep->conn && !ep_connecting(ep))
		return PLX_ENOTCONN;
	if (ep->inflight >= t->cfg.send_queue)
		return PLX_EAGAIN;
	*epp = ep;
	return 0;
}

/* Is the op's local buffer CUDA device memory (a registered device
 * region)? Then the CPU must not touch it: it is staged (stage.c), or
 * moved by RDMA through a GPUDirect MR. Free unless such regions exist. */
static bool local_dev(const struct plx__tcp *t, const struct plx__op *o)
{
	const void *p;

	if (PLX__LIKELY(!plx__r(t->r)->ndevice_regions))
		return false;
	p = o->kind == PLX__K_RECV || o->kind == PLX__K_READ ? o->dst : o->src;
	return plx__cuda_local_check(t->r, p, o->len) != 0;
}

/* Start @o on @ep. @begun: the request was already marked in flight (an
 * _mt submission drained from the ring). */
PLX__HOT static int op_start_as(struct plx_ep *ep, struct plx__op *o,
				bool begun)
{
	struct plx__tcp *t = ep->t;
	int rc = 0;

	o->dev = local_dev(t, o);
	if (o->dev)
		rc = plx__stage_check(t, o, ep->rdma != NULL);
	if (!rc && !begun)
		rc = plx__req_begin(t->r, &o->req);
	if (rc)
		return rc;
	o->ep = ep;
	o->cancelled = 0;
	/* the coarse clock (a few ms resolution) is plenty for timeouts and
	 * costs a fraction of the precise one on the submission path */
	o->deadline = plx__now_coarse() +
		      (o->timeout_ns ? o->timeout_ns : t->cfg.op_timeout_ns);
	ep->inflight++;
	if (PLX__UNLIKELY(o->dev)) {
		/* writes and reads go by RDMA where a GPUDirect MR covers the
		 * buffer; everything else through bounce buffers */
		if (ep->rdma && o->kind >= PLX__K_WRITE &&
		    o->kind <= PLX__K_READ && plx__rdma_submit(ep, o) == 0)
			return 0;
		plx__stage_start(ep, o);
		return 0;
	}
	if (o->kind == PLX__K_RECV) {
		o->state = PLX__S_POSTED;
		plx__oplist_push(&ep->posted, o);
		if (t->paused)
			t->kick = true;
		if (ep->rdma)
			plx__rdma_kick(ep); /* a held message may match */
		return 0;
	}
	/* sends, writes, reads and write_imm take the RDMA channel when it
	 * can carry them (transport/rdma/chan.c) */
	if (ep->rdma &&
	    (o->kind == PLX__K_SEND ||
	     (o->kind >= PLX__K_WRITE && o->kind <= PLX__K_READ)) &&
	    plx__rdma_submit(ep, o) == 0)
		return 0;
	plx__ep_start_tcp(ep, o);
	return 0;
}

PLX__HOT void plx__ep_start_tcp(struct plx_ep *ep, struct plx__op *o)
{
	if (PLX__UNLIKELY(o->dev)) {
		/* a GPUDirect op the RDMA channel gave back: staged */
		plx__stage_start(ep, o);
		return;
	}
	if (ep->conn && ep->conn->state == PLX__C_UP && !ep->backlog.n) {
		if (!try_split(ep, o))
			conn_submit(ep->conn, o);
	} else {
		o->state = PLX__S_BACKLOG;
		plx__oplist_push(&ep->backlog, o);
	}
}

int plx__ep_send_cm(struct plx_ep *ep, const uint8_t *buf, uint32_t len)
{
	struct plx__frame f = {.opcode = PLX__OP_RDMA_CM, .payload_len = len};
	struct plx__conn *c = ep->conn;
	struct plx__ctrl *e;
	int n;

	if (!c || c->state != PLX__C_UP)
		return PLX_ENOTCONN;
	if (len > sizeof(e->body))
		return PLX_EINVAL;
	e = plx__conn_ctrl(c);
	if (!e)
		return PLX_ENOBUFS;
	memcpy(e->body, buf, len);
	n = plx__wire_encode(&f, e->hdr);
	if (n < 0)
		return n; /* cannot happen: the frame is well-formed */
	e->tx.hdr_len = (uint32_t)n;
	e->tx.payload = e->body;
	e->tx.payload_len = len;
	plx__conn_queue(c, &e->tx);
	plx__conn_mark_dirty(c);
	return 0;
}

PLX__HOT PLX_API int plx_ep_send(struct plx_ep *ep, struct plx_op *op,
				 const void *buf, size_t len, uint64_t tag)
{
	struct plx__op *o = plx__op(op);
	int rc = op_begin(&ep, op);

	if (rc)
		return rc;
	if (!buf && len)
		return PLX_EINVAL;
	if (len > ep->t->cfg.max_message)
		return PLX_EMSGSIZE;
	o->kind = PLX__K_SEND;
	o->src = buf;
	o->len = len;
	o->tag = tag;
	return op_start(ep, o);
}

/* The first unexpected message matching (@tag, @mask), or NULL. */
static struct plx__unexp **unexp_find(struct plx_ep *ep, uint64_t tag,
				      uint64_t mask)
{
	struct plx__unexp **pp;

	for (pp = &ep->unexp_head; *pp; pp = &(*pp)->next)
		if (((*pp)->tag & mask) == (tag & mask))
			return pp;
	return NULL;
}

/* Complete receive @o from the unexpected message at *@pp (a copy out of
 * the slot: the message arrived before there was anywhere else to put
 * it). */
static void recv_unexpected(struct plx_ep *ep, struct plx__op *o,
			    struct plx__unexp **pp)
{
	struct plx__tcp *t = ep->t;
	struct plx__unexp *u = *pp;

	*pp = u->next;
	ep->unexp_tail = NULL;
	for (struct plx__unexp *v = ep->unexp_head; v; v = v->next)
		ep->unexp_tail = v;
	ep->nunexp--;
	if (u->len <= o->len) {
		memcpy(o->dst,
		       t->slots + (size_t)u->slot * t->cfg.unexpected_size,
		       u->len);
		plx__op_done(t, o, 0, u->len);
	} else {
		plx__op_done(t, o, PLX_EMSGSIZE, 0);
	}
	slot_put(t, u->slot);
}

PLX__HOT PLX_API int plx_ep_recv(struct plx_ep *ep, struct plx_op *op,
				 void *buf, size_t cap, uint64_t tag,
				 uint64_t mask)
{
	struct plx__op *o = plx__op(op);
	struct plx__unexp **pp;
	int rc;

	if (!ep || !op || (!buf && cap))
		return PLX_EINVAL;
	ep = ep->canon;
	PLX__ASSERT_OWNER(plx__r(ep->t->r));
	if (op_busy(op))
		return PLX_EBUSY;
	if (ep->closing)
		return PLX_ESHUTDOWN;
	if (ep->posted.n >= ep->t->cfg.max_recvs)
		return PLX_EAGAIN;
	pp = ep->posted.n ? NULL : unexp_find(ep, tag, mask);
	if (!pp && !ep->conn && !ep_connecting(ep))
		return PLX_ENOTCONN;
	o->kind = PLX__K_RECV;
	o->dst = buf;
	o->len = cap;
	o->tag = tag;
	o->mask = mask;
	if (!pp || local_dev(ep->t, o))
		return op_start(ep, o);
	rc = plx__req_begin(ep->t->r, &o->req);
	if (rc)
		return rc;
	o->ep = ep;
	o->cancelled = 0;
	ep->inflight++;
	recv_unexpected(ep, o, pp);
	return 0;
}

PLX__HOT static int op_start(struct plx_ep *ep, struct plx__op *o)
{
	return op_start_as(ep, o, false);
}

/* Check a remote access and record it in @o (both submission paths). */
static int rma_fill(const struct plx_ep *ep, struct plx__op *o, uint8_t kind,
		    const void *src, void *dst, size_t len,
		    const struct plx_desc *d, uint64_t off, uint32_t imm)
{
	if (!d || (!src && !dst && len) || off > d->len || len > d->len - off ||
	    (kind == PLX__K_READ && (!len || !dst)))
		return PLX_EINVAL;
	if (len > ep->t->cfg.max_frame)
		return PLX_EMSGSIZE;
	o->kind = kind;
	o->src = src;
	o->dst = dst;
	o->len = len;
	o->raddr = d->addr + off;
	o->rkey = d->key;
	o->rrkey = d->rkey;
	o->rkey_ok = (d->hints & PLX_HINT_RDMA) != 0;
	o->imm = imm;
	return 0;
}

PLX__HOT static int rma(struct plx_ep *ep, struct plx_op *op, uint8_t kind,
			const void *src, void *dst, size_t len,
			const struct plx_desc *d, uint64_t off, uint32_t imm)
{
	int rc = op_begin(&ep, op);

	if (!rc)
		rc = rma_fill(ep, plx__op(op), kind, src, dst, len, d, off,
			      imm);
	return rc ? rc : op_start(ep, plx__op(op));
}

PLX__HOT PLX_API int plx_ep_write(struct plx_ep *ep, struct plx_op *op,
				  const void *src, size_t len,
				  const struct plx_desc *dst, uint64_t off)
{
	return rma(ep, op, PLX__K_WRITE, src, NULL, len, dst, off, 0);
}

PLX__HOT PLX_API int plx_ep_write_imm(struct plx_ep *ep, struct plx_op *op,
				      const void *src, size_t len,
				      const struct plx_desc *dst, uint64_t off,
				      uint32_t imm)
{
	return rma(ep, op, PLX__K_WRITE_IMM, src, NULL, len, dst, off, imm);
}

PLX__HOT PLX_API int plx_ep_read(struct plx_ep *ep, struct plx_op *op,
				 void *dst, size_t len,
				 const struct plx_desc *src, uint64_t off)
{
	return rma(ep, op, PLX__K_READ, NULL, dst, len, src, off, 0);
}

/* Cancel one piece of a split op (its parent is being cancelled). */
static void cancel_piece(struct plx__tcp *t, struct plx__op *p)
{
	struct plx__conn *c = p->conn;

	if (p->state == PLX__S_TX && p->tx.sent) {
		p->cancelled = 1; /* completes once its bytes have left */
		p->req.status = PLX_ECANCELED;
		return;
	}
	if (p->state == PLX__S_RXING) {
		p->cancelled = 1;
		p->req.status = PLX_ECANCELED;
		return;
	}
	if (p->state == PLX__S_TX)
		plx__conn_unqueue(c, &p->tx);
	plx__oplist_remove(
		plx__op_has_response(p) ? &c->wait_read : &c->wait_ack, p);
	piece_done(t, p, PLX_ECANCELED);
}

/* Drop the extra hold taken while cancelling a split op. */
static void piece_done_hold(struct plx__tcp *t, struct plx__op *o)
{
	struct plx__op fake = {.parent = o};

	piece_done(t, &fake, 0);
}

PLX_API int plx_op_cancel(struct plx_reactor *r, struct plx_op *op)
{
	struct plx__op *o = plx__op(op);
	struct plx__tcp *t;
	struct plx__conn *c;

	PLX__ASSERT_OWNER(plx__r(r));
	if (!o || o->state == PLX__S_IDLE || !o->ep || o->cancelled)
		return PLX_EALREADY;
	t = o->ep->t;
	c = o->conn;
	switch (o->state) {
	case PLX__S_BACKLOG:
		plx__oplist_remove(&o->ep->backlog, o);
		break;
	case PLX__S_POSTED:
		plx__oplist_remove(&o->ep->posted, o);
		break;
	case PLX__S_TX:
		if (o->tx.sent) {
			o->cancelled = 1;
			o->req.status = PLX_ECANCELED;
			return 0;
		}
		plx__conn_unqueue(c, &o->tx);
		/* fall through */
	case PLX__S_WAIT:
		plx__oplist_remove(plx__op_has_response(o) ? &c->wait_read :
							     &c->wait_ack,
				   o);
		break;
	case PLX__S_RXING:
		o->cancelled = 1;
		o->req.status = PLX_ECANCELED;
		return 0;
	case PLX__S_RDMA:
		plx__rdma_cancel(o, PLX_ECANCELED);
		return 0;
	case PLX__S_STAGED:
		plx__stage_cancel(o, PLX_ECANCELED);
		return 0;
	case PLX__S_SPLIT:
		/* cancel every piece still out; the last one completes it */
		o->cancelled = 1;
		o->req.status = PLX_ECANCELED;
		o->pieces_left++; /* hold it open while walking the chain */
		for (struct plx__op *p = o->sibling; p; p = p->sibling)
			if (p->state != PLX__S_IDLE && !p->cancelled)
				cancel_piece(t, p);
		piece_done_hold(t, o);
		return 0;
	default:
		return PLX_EALREADY;
	}
	plx__op_done(t, o, PLX_ECANCELED, 0);
	return 0;
}

PLX_API int plx_ep_close(struct plx_ep *ep)
{
	struct plx__tcp *t;
	struct plx_ep *canon;

	if (!ep)
		return PLX_EINVAL;
	canon = ep->canon;
	t = canon->t;
	PLX__ASSERT_OWNER(plx__r(t->r));
	if (canon->closing)
		return PLX_EALREADY;
	canon->closing = true;
	ep_fail_all(canon, PLX_ECANCELED, true);
	for (struct plx_ep *e = t->eps; e; e = e->next)
		if (e->canon == canon)
			ev_set(e, PLX_EP_CLOSED, 0);
	return 0;
}

PLX_API void plx_ep_peer(const struct plx_ep *ep, uint8_t *node_out,
			 uint64_t *epoch_out)
{
	ep = ep->canon;
	if (node_out)
		memcpy(node_out, ep->node, 16);
	if (epoch_out)
		*epoch_out = ep->epoch;
}

PLX_API void plx_ep_set_user(struct plx_ep *ep, void *user)
{
	ep->user = user;
}

PLX_API void *plx_ep_user(const struct plx_ep *ep)
{
	return ep->user;
}

PLX_API int plx_ep_is_up(const struct plx_ep *ep)
{
	ep = ep->canon;
	return ep->conn && ep->conn->state == PLX__C_UP && !ep->closing;
}

PLX_API int plx_tcp_shutdown(struct plx_reactor *r)
{
	struct plx__tcp *t = plx__tcp_get(r);

	PLX__ASSERT_OWNER(plx__r(r));
	if (!t)
		return PLX_EUNAVAIL;
	for (struct plx_ep *ep = t->eps; ep; ep = ep->next)
		if (ep->canon == ep && !ep->closing)
			plx_ep_close(ep);
	for (struct plx__conn *c = t->conns; c; c = c->next)
		if (!c->ep && c->state != PLX__C_DEAD) {
			c->state = PLX__C_DEAD;
			plx__conn_reap(c);
		}
	for (uint32_t i = 0; i < t->nlisten; i++)
		close(t->lfd[i]);
	t->nlisten = 0;
	return 0;
}

PLX_API int plx_ep_resolve(struct plx_ep *ep, struct plx_op *op,
			   const char *name, struct plx_desc *out)
{
	struct plx__op *o = plx__op(op);
	size_t len;
	int rc = op_begin(&ep, op);

	if (rc)
		return rc;
	if (!name || !out)
		return PLX_EINVAL;
	len = strnlen(name, PLX_NAME_MAX + 1);
	if (!len || len > PLX_NAME_MAX)
		return PLX_EINVAL;
	o->kind = PLX__K_RESOLVE;
	o->src = name;
	o->dst = out;
	o->len = len;
	o->raddr = o->rkey = 0;
	return op_start(ep, o);
}

PLX_API int plx_ep_batch_begin(struct plx_ep *ep)
{
	if (!ep)
		return PLX_EINVAL;
	ep = ep->canon;
	PLX__ASSERT_OWNER(plx__r(ep->t->r));
	ep->corked++;
	return 0;
}

PLX_API int plx_ep_batch_end(struct plx_ep *ep)
{
	struct plx__conn *c;
	int rc;

	if (!ep)
		return PLX_EINVAL;
	ep = ep->canon;
	PLX__ASSERT_OWNER(plx__r(ep->t->r));
	if (!ep->corked)
		return PLX_EINVAL;
	if (--ep->corked)
		return 0;
	plx__rdma_flush(ep);
	/* pieces of split ops may sit on every data connection */
	for (c = ep->conns; c; c = c->ep_next) {
		if (c->state != PLX__C_UP || !c->txq_head || c->want_out)
			continue;
		rc = plx__conn_flush(c);
		if (rc)
			plx__conn_fail(c, rc);
	}
	return 0;
}

PLX_API int plx_ep_conn_count(const struct plx_ep *ep)
{
	int n = 0;

	if (!ep)
		return PLX_EINVAL;
	ep = ep->canon;
	for (const struct plx__conn *c = ep->conns; c; c = c->ep_next)
		n += c->state == PLX__C_UP;
	return n;
}

/* ---- any-thread submission ---------------------------------------------- */

/* Runs on the owner thread, in the ring phase: start the op prepared by an
 * _mt call. Its request is already in flight; any failure completes it. */
static int mt_start(struct plx_reactor *r, struct plx_req *req)
{
	struct plx__op *o = (struct plx__op *)(void *)req;
	struct plx_ep *ep = o->ep->canon;
	struct plx__unexp **pp;
	int rc;

	(void)r;
	o->ep = NULL;
	if (ep->closing)
		return PLX_ESHUTDOWN;
	if (o->kind == PLX__K_RECV) {
		if (ep->posted.n >= ep->t->cfg.max_recvs)
			return PLX_EAGAIN;
		pp = ep->posted.n || local_dev(ep->t, o) ?
			     NULL :
			     unexp_find(ep, o->tag, o->mask);
		if (pp) {
			o->ep = ep;
			o->cancelled = 0;
			ep->inflight++;
			recv_unexpected(ep, o, pp);
			return PLX_EINPROGRESS;
		}
	} else if (ep->inflight >= ep->t->cfg.send_queue) {
		return PLX_EAGAIN;
	}
	if (!ep->conn && !ep_connecting(ep))
		return PLX_ENOTCONN;
	rc = op_start_as(ep, o, true);
	return rc ? rc : PLX_EINPROGRESS;
}

static int mt_submit(struct plx_ep *ep, struct plx_op *op, uint8_t kind)
{
	struct plx__op *o = plx__op(op);

	if (op->flags & ~PLX__OP_FLAGS)
		return PLX_EINVAL;
	o->kind = kind;
	o->ep = ep;
	return plx_submit_call_mt(ep->t->r, &o->req, mt_start);
}

PLX_API int plx_ep_send_mt(struct plx_ep *ep, struct plx_op *op,
			   const void *buf, size_t len, uint64_t tag)
{
	struct plx__op *o = plx__op(op);

	if (!ep || !op || (!buf && len))
		return PLX_EINVAL;
	if (op_busy(op))
		return PLX_EBUSY;
	if (len > ep->t->cfg.max_message)
		return PLX_EMSGSIZE;
	o->src = buf;
	o->len = len;
	o->tag = tag;
	return mt_submit(ep, op, PLX__K_SEND);
}

PLX_API int plx_ep_recv_mt(struct plx_ep *ep, struct plx_op *op, void *buf,
			   size_t cap, uint64_t tag, uint64_t mask)
{
	struct plx__op *o = plx__op(op);

	if (!ep || !op || (!buf && cap))
		return PLX_EINVAL;
	if (op_busy(op))
		return PLX_EBUSY;
	o->dst = buf;
	o->len = cap;
	o->tag = tag;
	o->mask = mask;
	return mt_submit(ep, op, PLX__K_RECV);
}

static int rma_mt(struct plx_ep *ep, struct plx_op *op, uint8_t kind,
		  const void *src, void *dst, size_t len,
		  const struct plx_desc *d, uint64_t off, uint32_t imm)
{
	int rc;

	if (!ep || !op)
		return PLX_EINVAL;
	if (op_busy(op))
		return PLX_EBUSY;
	rc = rma_fill(ep, plx__op(op), kind, src, dst, len, d, off, imm);
	return rc ? rc : mt_submit(ep, op, kind);
}

PLX_API int plx_ep_write_mt(struct plx_ep *ep, struct plx_op *op,
			    const void *src, size_t len,
			    const struct plx_desc *dst, uint64_t off)
{
	return rma_mt(ep, op, PLX__K_WRITE, src, NULL, len, dst, off, 0);
}

PLX_API int plx_ep_write_imm_mt(struct plx_ep *ep, struct plx_op *op,
				const void *src, size_t len,
				const struct plx_desc *dst, uint64_t off,
				uint32_t imm)
{
	return rma_mt(ep, op, PLX__K_WRITE_IMM, src, NULL, len, dst, off, imm);
}

PLX_API int plx_ep_read_mt(struct plx_ep *ep, struct plx_op *op, void *dst,
			   size_t len, const struct plx_desc *src, uint64_t off)
{
	return rma_mt(ep, op, PLX__K_READ, NULL, dst, len, src, off, 0);
}
