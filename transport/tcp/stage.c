/* SPDX-License-Identifier: MIT */
/*
 * Ops on CUDA device memory, staged through the bounce slots of the CUDA
 * transport (transport/cuda/stage.c; docs/cuda.md).
 *
 * Initiator: an op whose local buffer is device memory becomes a transfer
 * (struct plx__xfer) of chunk-sized pieces. A write copies each chunk
 * device-to-host into a slot and writes it from there with an ordinary
 * op on the same endpoint (TCP, or RDMA where the slot has an MR); a read
 * reads each chunk into a slot and copies it host-to-device. Chunks
 * pipeline: while one is on the network the next is being copied. A
 * transfer holds at most half the slots, so others progress. A send, a
 * receive and a write_imm move one frame (a message; data whose
 * notification names the whole range), so each takes one run of slots
 * for all its bytes: at most half the pool.
 * Transfers that find no slot wait in FIFO order and are resumed when
 * slots come back (plx__tcp_stage_kick()).
 *
 * Target: a WRITE whose destination is a registered device region lands
 * in slots chunk by chunk and each chunk is copied to the device; the
 * frame is acknowledged (and a write_imm's handler runs) only once its
 * last copy has completed, so the ACK keeps meaning "the data is in the
 * target's memory". A READ_REQ from device memory is copied into a run of
 * slots and answered from there.
 */
#include <string.h>

#include "pollux/cuda.h"
#include "reactor/internal.h"
#include "transport/tcp/tcp_internal.h"
#include "transport/transport.h"

struct plx__xfer {
	struct plx__op *o;	/* the caller's op (PLX__S_STAGED) */
	struct plx__xfer *next; /* free list, or the wait queue */
	uint64_t off;		/* bytes handed to chunks so far */
	uint64_t done;		/* bytes finished */
	uint32_t out;		/* chunks copying or on the network */
	uint32_t net;		/* of those, on the network */
	int err;		/* first failure */
	bool queued;		/* waiting for slots */
};

struct plx__stage {
	struct plx__cuda_stage_info info;
	struct plx__xfer *xfers, *free;
	struct plx__xfer *wait_head, *wait_tail;
	struct plx_op *subs; /* the network op of each slot's chunk */
};

/* The staging state, set up at first use; its view of the CUDA
 * transport's pool is refreshed each time (deregistering the bounce
 * region ends staging). */
static struct plx__stage *stage_get(struct plx__tcp *t)
{
	struct plx__stage *g = t->stage;

	if (g) {
		plx__cuda_stage_info(t->r, &g->info);
		return g;
	}
	g = plx__zalloc(plx__r(t->r), sizeof(*g));
	if (!g)
		return NULL;
	plx__cuda_stage_info(t->r, &g->info);
	t->stage = g;
	if (!g->info.chunk)
		return g; /* no bounce pool: every staged op is refused */
	g->xfers = plx__zalloc(plx__r(t->r),
			       g->info.max_transfers * sizeof(*g->xfers));
	g->subs = plx__zalloc(plx__r(t->r), g->info.nslots * sizeof(*g->subs));
	if (!g->xfers || !g->subs) {
		plx__free(plx__r(t->r), g->xfers);
		plx__free(plx__r(t->r), g->subs);
		plx__free(plx__r(t->r), g);
		t->stage = NULL;
		return NULL;
	}
	for (uint32_t i = g->info.max_transfers; i-- > 0;) {
		g->xfers[i].next = g->free;
		g->free = &g->xfers[i];
	}
	return g;
}

void plx__stage_fini(struct plx__tcp *t)
{
	struct plx__stage *g = t->stage;

	if (!g)
		return;
	plx__free(plx__r(t->r), g->xfers);
	plx__free(plx__r(t->r), g->subs);
	plx__free(plx__r(t->r), g);
	t->stage = NULL;
}

/* Bytes a single run of slots may hold (half the pool). */
static uint64_t run_max(const struct plx__stage *g)
{
	return (uint64_t)(g->info.nslots / 2) * g->info.chunk;
}

/* Ops moved as one frame, from one run of slots. */
static bool whole(const struct plx__op *o)
{
	return o->kind == PLX__K_SEND || o->kind == PLX__K_RECV ||
	       o->kind == PLX__K_WRITE_IMM;
}

int plx__stage_check(struct plx__tcp *t, const struct plx__op *o,
		     bool gpudirect_may)
{
	struct plx__stage *g = stage_get(t);

	if (!g)
		return PLX_ENOMEM;
	if (!g->info.chunk)
		return gpudirect_may ? 0 : PLX_ENOTSUP;
	if (!g->free)
		return PLX_EAGAIN;
	if (whole(o) && o->len > run_max(g))
		return PLX_EMSGSIZE;
	return 0;
}

/* ---- initiator ---------------------------------------------------------- */

static void pump(struct plx__tcp *t, struct plx__xfer *x);
static void finish(struct plx__tcp *t, struct plx__xfer *x);
static void sub_cb(struct plx_reactor *r, struct plx_req *req);

static void fail(struct plx__xfer *x, int status)
{
	if (!x->err)
		x->err = status;
}

static void chunk_end(struct plx__tcp *t, struct plx__xfer *x,
		      struct plx__cslot *s)
{
	plx__cuda_put(t->r, s);
	x->out--;
}

/* The network part of a chunk: an ordinary op on the slot. */
static void submit_sub(struct plx__tcp *t, struct plx__xfer *x,
		       struct plx__cslot *s)
{
	struct plx__stage *g = t->stage;
	struct plx__op *o = x->o;
	struct plx_op *sub = &g->subs[s->idx];
	struct plx_desc d;
	uint64_t off = s->arg[0], n = s->arg[1];
	int rc;

	memset(&d, 0, sizeof(d));
	d.addr = o->raddr;
	d.len = o->len;
	d.key = o->rkey;
	d.rkey = o->rrkey;
	d.hints = o->rkey_ok ? PLX_HINT_RDMA : 0;
	plx_op_init(sub, sub_cb, s);
	sub->timeout_ns = o->timeout_ns;
	switch (o->kind) {
	case PLX__K_WRITE:
		rc = plx_ep_write(o->ep, sub, s->buf, n, &d, off);
		break;
	case PLX__K_WRITE_IMM:
		rc = plx_ep_write_imm(o->ep, sub, s->buf, n, &d, off, o->imm);
		break;
	case PLX__K_READ:
		rc = plx_ep_read(o->ep, sub, s->buf, n, &d, off);
		break;
	case PLX__K_SEND:
		rc = plx_ep_send(o->ep, sub, s->buf, n, o->tag);
		break;
	default: /* PLX__K_RECV */
		rc = plx_ep_recv(o->ep, sub, s->buf, n, o->tag, o->mask);
		break;
	}
	if (rc) {
		fail(x, rc);
		chunk_end(t, x, s);
		return;
	}
	x->net++;
}

/* A copy finished: device-to-host (then the chunk goes on the network) or
 * host-to-device (then the chunk is done). */
static void copied(struct plx_reactor *r, struct plx__cslot *s, int status)
{
	struct plx__tcp *t = plx__tcp_get(r);
	struct plx__xfer *x = s->owner;
	struct plx__op *o = x->o;
	bool to_net = o->kind == PLX__K_WRITE || o->kind == PLX__K_WRITE_IMM ||
		      o->kind == PLX__K_SEND;

	if (status)
		fail(x, status);
	if (status || !to_net || x->err || o->cancelled) {
		if (!status && !to_net)
			x->done += s->len;
		chunk_end(t, x, s);
	} else {
		submit_sub(t, x, s);
	}
	pump(t, x);
	finish(t, x);
}

static int copy(struct plx__tcp *t, struct plx__xfer *x, struct plx__cslot *s,
		bool to_device, uint64_t off, uint64_t n)
{
	struct plx__op *o = x->o;
	uint8_t *dev =
		(uint8_t *)(to_device ? o->dst : (void *)(uintptr_t)o->src);

	if (x->net && t->stage->info.st)
		t->stage->info.st->overlapped++;
	return plx__cuda_copy(t->r, s, to_device, dev + off, n, copied, x);
}

/* The network part of a chunk finished. */
static void sub_cb(struct plx_reactor *r, struct plx_req *req)
{
	struct plx__tcp *t = plx__tcp_get(r);
	struct plx__cslot *s = req->user;
	struct plx__xfer *x = s->owner;
	struct plx__op *o = x->o;
	int rc;

	x->net--;
	if (req->status)
		fail(x, req->status);
	if (req->status || x->err || o->cancelled ||
	    (o->kind != PLX__K_READ && o->kind != PLX__K_RECV)) {
		if (!req->status && o->kind != PLX__K_READ &&
		    o->kind != PLX__K_RECV)
			x->done += s->arg[1];
		chunk_end(t, x, s);
	} else if (o->kind == PLX__K_RECV && !req->bytes) {
		chunk_end(t, x, s); /* an empty message: nothing to copy */
	} else {
		uint64_t n = o->kind == PLX__K_RECV ? req->bytes : s->arg[1];

		rc = copy(t, x, s, true, s->arg[0], n);
		if (rc) {
			fail(x, rc);
			chunk_end(t, x, s);
		}
	}
	pump(t, x);
	finish(t, x);
}

static void enqueue(struct plx__stage *g, struct plx__xfer *x)
{
	x->queued = true;
	x->next = NULL;
	if (g->wait_tail)
		g->wait_tail->next = x;
	else
		g->wait_head = x;
	g->wait_tail = x;
}

static void dequeue(struct plx__stage *g, struct plx__xfer *x)
{
	struct plx__xfer **pp = &g->wait_head, *prev = NULL;

	for (; *pp && *pp != x; pp = &(*pp)->next)
		prev = *pp;
	if (!*pp)
		return;
	*pp = x->next;
	if (g->wait_tail == x)
		g->wait_tail = prev;
	x->queued = false;
}

/* Start as many chunks as the slots and the half-pool bound allow. */
static void pump(struct plx__tcp *t, struct plx__xfer *x)
{
	struct plx__stage *g = t->stage;
	struct plx__op *o = x->o;
	bool one = whole(o);

	while (!x->queued && !x->err && !o->cancelled &&
	       (one ? x->off == 0 && !x->out : x->off < o->len) &&
	       x->out < g->info.nslots / 2) {
		uint64_t n = one ? o->len : o->len - x->off;
		struct plx__cslot *s;
		int rc = 0;

		if (!one && n > g->info.chunk)
			n = g->info.chunk;
		s = plx__cuda_get(t->r, n, 0);
		if (!s) {
			if (!x->out)
				enqueue(g, x); /* nothing out will wake us */
			return;
		}
		s->owner = x;
		s->arg[0] = x->off;
		s->arg[1] = n;
		x->off += n;
		if (one)
			x->off = 1; /* started */
		x->out++;
		if (o->kind == PLX__K_READ || o->kind == PLX__K_RECV)
			submit_sub(t, x, s);
		else
			rc = copy(t, x, s, false, s->arg[0], n);
		if (rc) {
			fail(x, rc);
			chunk_end(t, x, s);
		}
	}
}

/* Complete the caller's op once nothing of it is out. */
static void finish(struct plx__tcp *t, struct plx__xfer *x)
{
	struct plx__op *o = x->o;
	int status;
	uint64_t bytes;

	if (x->out || x->queued)
		return;
	if (!x->err && !o->cancelled && (whole(o) ? !x->off : x->off < o->len))
		return; /* not started (a zero-length write is done at once) */
	status = o->cancelled ? o->req.status : x->err;
	bytes = status ? 0 : o->kind == PLX__K_RECV ? x->done : o->len;
	o->xfer = NULL;
	x->o = NULL;
	x->next = t->stage->free;
	t->stage->free = x;
	plx__op_done(t, o, status, bytes);
}

void plx__stage_start(struct plx_ep *ep, struct plx__op *o)
{
	struct plx__tcp *t = ep->t;
	struct plx__stage *g = t->stage;
	struct plx__xfer *x = g ? g->free : NULL;

	o->state = PLX__S_STAGED;
	if (!x) {
		/* no bounce pool, and GPUDirect RDMA did not take it either */
		plx__op_done(t, o,
			     g && g->info.chunk ? PLX_EAGAIN : PLX_ENOTSUP, 0);
		return;
	}
	g->free = x->next;
	memset(x, 0, sizeof(*x));
	x->o = o;
	o->xfer = x;
	if (g->info.st)
		g->info.st->staged_ops++;
	if (o->len == 0 && !whole(o)) {
		finish(t, x); /* nothing to move */
		return;
	}
	if (g->wait_head)
		enqueue(g, x); /* keep submission order behind waiters */
	else
		pump(t, x);
	finish(t, x);
}

/* Slots came back: resume the waiting transfers in order, and the
 * connections paused for a slot. */
void plx__tcp_stage_kick(struct plx_reactor *r)
{
	struct plx__tcp *t = plx__tcp_get(r);
	struct plx__stage *g = t ? t->stage : NULL;
	struct plx__xfer *x;

	if (!t)
		return;
	if (t->paused)
		t->kick = true;
	while (g && (x = g->wait_head)) {
		dequeue(g, x);
		pump(t, x);
		if (x->queued) {
			/* still no room: back to the head of the queue */
			dequeue(g, x);
			x->queued = true;
			x->next = g->wait_head;
			g->wait_head = x;
			if (!g->wait_tail)
				g->wait_tail = x;
			return;
		}
		finish(t, x);
	}
}

void plx__stage_cancel(struct plx__op *o, int status)
{
	struct plx__tcp *t = o->ep->t;
	struct plx__stage *g = t->stage;
	struct plx__xfer *x = o->xfer;

	o->cancelled = 1;
	o->req.status = status;
	if (x->queued)
		dequeue(g, x);
	/* the chunks on the network: cancelled (their callbacks end them);
	 * copies in flight cannot be, and end when their events complete */
	for (uint32_t i = 0; i < g->info.nslots; i++) {
		struct plx__op *sub = plx__op(&g->subs[i]);

		if (sub->state != PLX__S_IDLE && sub->req.user &&
		    ((struct plx__cslot *)sub->req.user)->owner == x)
			plx_op_cancel(t->r, &g->subs[i]);
	}
	finish(t, x);
}

/* A transfer still waiting for slots at its deadline times out (once
 * started, its chunks carry the timeout). */
void plx__stage_expire(struct plx__tcp *t, uint64_t now)
{
	for (struct plx__xfer *x = t->stage->wait_head, *next; x; x = next) {
		next = x->next;
		if (x->o->deadline <= now)
			plx__stage_cancel(x->o, PLX_ETIMEDOUT);
	}
}

void plx__stage_ep_down(struct plx_ep *ep, int status)
{
	struct plx__stage *g = ep->t->stage;

	if (!g)
		return;
	for (struct plx__xfer *x = g->wait_head, *next; x; x = next) {
		next = x->next;
		if (x->o->ep == ep)
			plx__stage_cancel(x->o, status);
	}
}

/* ---- target ------------------------------------------------------------- */

/* A slot for the next (at most chunk) bytes of the payload arriving. */
static bool rx_slot(struct plx__conn *c, uint64_t left)
{
	uint32_t chunk = c->t->stage->info.chunk;
	uint64_t n = left < chunk ? left : chunk;
	struct plx__cslot *s = plx__cuda_get(c->t->r, n, 1);

	if (!s)
		return false;
	c->rx_cs = s;
	c->rx_room = n;
	c->rx_fill = 0;
	c->rx_dst = s->buf;
	return true;
}

int plx__stage_rx_begin(struct plx__conn *c, uint64_t addr)
{
	struct plx__stage *g = stage_get(c->t);

	if (!g || !g->info.chunk) {
		c->rx_status = g ? PLX_ENOTSUP : PLX_ENOMEM;
		return 0; /* refused (NACK), the payload dropped */
	}
	if (!c->cur.payload_len) {
		c->rx_dst = NULL; /* nothing lands anywhere */
		return 0;
	}
	if (!rx_slot(c, c->cur.payload_len))
		return 1;
	c->rx_cuda = true;
	c->rx_dev = addr;
	return 0;
}

bool plx__stage_rx_slot(struct plx__conn *c)
{
	return rx_slot(c, c->rx_left);
}

static void rx_copied(struct plx_reactor *r, struct plx__cslot *s, int status)
{
	struct plx__conn *c = s->owner;
	struct plx__tcp *t = c->t;
	uint64_t seq = s->arg[0], flags = s->arg[1], addr = s->arg[2],
		 info = s->arg[3];

	plx__cuda_put(r, s);
	if (status) {
		c->stg_err = status;
		c->stg_err_seq = seq;
	}
	if (!(flags & 1))
		return; /* not the frame's last chunk */
	status = c->stg_err_seq == seq ? c->stg_err : 0;
	c->stg_err = 0;
	c->stg_err_seq = 0;
	/* copies complete in order: every staged frame up to @seq is done */
	c->stg_frames--;
	c->stg_ack = c->stg_frames ? seq : 0;
	if (c->state == PLX__C_DEAD)
		return;
	if (status) {
		struct plx__frame f = {
			.opcode = PLX__OP_NACK, .id = seq, .status = status};

		if (plx__conn_send_ctrl(c, &f, NULL, 0)) {
			plx__conn_fail(c, PLX_ENOBUFS);
			return;
		}
	} else if ((flags & 2) && t->cfg.imm_cb && c->ep) {
		t->cfg.imm_cb(r, c->ep->canon, (uint32_t)(info >> 32), addr,
			      (uint32_t)info, t->cfg.cb_arg);
	}
	plx__conn_ack_soon(c);
}

void plx__stage_rx_landed(struct plx__conn *c, uint64_t n)
{
	struct plx__cslot *s = c->rx_cs;
	const struct plx__frame *f = &c->cur;
	uint64_t fill;
	int rc;

	c->rx_fill += n;
	c->rx_room -= n;
	if (c->rx_room && c->rx_left)
		return;
	/* the slot is full, or the payload ends: to the device */
	fill = c->rx_fill;
	s->arg[0] = f->id; /* the frame's sequence number */
	s->arg[1] = (c->rx_left ? 0 : 1) |
		    (f->opcode == PLX__OP_WRITE_IMM ? 2 : 0);
	s->arg[2] = f->addr;
	s->arg[3] = (uint64_t)f->imm << 32 | f->payload_len;
	c->rx_cs = NULL;
	c->rx_dst = NULL;
	rc = plx__cuda_copy(c->t->r, s, true, (void *)(uintptr_t)c->rx_dev,
			    fill, rx_copied, c);
	c->rx_dev += fill;
	if (rc) {
		/* refuse the frame (NACK at its end), drop the rest */
		plx__cuda_put(c->t->r, s);
		c->rx_status = rc;
		c->rx_cuda = false;
	}
}

void plx__stage_rx_frame(struct plx__conn *c, uint64_t prev)
{
	c->rx_cuda = false;
	/* hold the cumulative ACK below this frame (at @prev, the frame
	 * before it) until its last copy */
	if (!c->stg_frames++)
		c->stg_ack = prev;
}

void plx__stage_rx_drop(struct plx__conn *c, int status)
{
	if (c->rx_cs)
		plx__cuda_put(c->t->r, c->rx_cs);
	c->rx_cs = NULL;
	c->rx_dst = NULL;
	c->rx_cuda = false;
	c->rx_status = status;
}

static void rd_copied(struct plx_reactor *r, struct plx__cslot *s, int status)
{
	struct plx__conn *c = s->owner;
	struct plx__ctrl *e = (struct plx__ctrl *)(uintptr_t)s->arg[1];
	struct plx__frame f = {.opcode = PLX__OP_READ_RESP, .id = s->arg[0]};

	if (status) {
		plx__cuda_put(r, s);
		f.status = status;
	} else {
		f.payload_len = (uint32_t)s->len;
		e->cs = s; /* back to the pool once the frame has left */
	}
	e->tx.hdr_len = (uint32_t)plx__wire_encode(&f, e->hdr);
	e->tx.payload = status ? NULL : s->buf;
	e->tx.payload_len = status ? 0 : f.payload_len;
	plx__conn_queue(c, &e->tx);
	plx__conn_ack_soon(c);
}

int plx__stage_read_req(struct plx__conn *c, const struct plx__frame *f)
{
	struct plx__stage *g = stage_get(c->t);
	struct plx__frame r = {.opcode = PLX__OP_READ_RESP, .id = f->id};
	struct plx__cslot *s;
	struct plx__ctrl *e;
	int rc;

	if (!g || !g->info.chunk)
		r.status = g ? PLX_ENOTSUP : PLX_ENOMEM;
	else if (f->len > run_max(g))
		r.status = PLX_EMSGSIZE; /* one response, from one run */
	if (r.status) {
		plx__conn_send_ctrl(c, &r, NULL, 0);
		return 0;
	}
	s = plx__cuda_get(c->t->r, f->len, 1);
	if (!s)
		return 1;      /* retried when slots come back */
	e = plx__conn_ctrl(c); /* reserved before the frame was taken */
	s->arg[0] = f->id;
	s->arg[1] = (uintptr_t)e;
	rc = plx__cuda_copy(c->t->r, s, false, (void *)(uintptr_t)f->addr,
			    f->len, rd_copied, c);
	if (rc) {
		s->owner = c;
		rd_copied(c->t->r, s, rc);
	}
	return 0;
}

void plx__stage_conn_gone(struct plx__conn *c)
{
	plx__cuda_forget(c->t->r, c);
	if (c->rx_cs)
		plx__cuda_put(c->t->r, c->rx_cs);
	c->rx_cs = NULL;
	for (uint32_t i = 0; i < PLX__TCP_CTRL; i++)
		if (c->ctrl[i].cs) {
			plx__cuda_put(c->t->r, c->ctrl[i].cs);
			c->ctrl[i].cs = NULL;
		}
}
