/* SPDX-License-Identifier: MIT */
/*
 * RDMA channels: the RC queue pairs of one endpoint, connected over the
 * endpoint's TCP session, and the writes, reads and write_imm ops they
 * carry. docs/rdma.md is the prose version of this file.
 *
 * Connection (messages in transport/rdma/common/cm.h, one RDMA_CM frame
 * each): the initiator creates its QPs (INIT, receives posted) and sends
 * REQ with a fresh generation; the responder creates its QPs, takes them
 * to RTS and answers REP; the initiator takes its QPs to RTS, sends RTU
 * and may post; the responder posts once RTU arrived. Both REQs crossing
 * (simultaneous open): the REQ of the node with the smaller id wins, the
 * other side drops its own attempt and answers. A message whose
 * generation is not the attempt in progress is stale and ignored. The
 * side with the smaller node id connects when the session comes up;
 * either side reconnects on next use after the channel failed.
 *
 * Queue pairs are never reset with work on them: a QP that failed (an
 * error completion, a timed-out op, the session gone) is moved to the
 * error state, every work request on it completes (flushed), and only
 * then is it destroyed. Its ops complete once each, with the status of
 * the completion that failed them.
 *
 * Work requests: every WR takes a slot in its QP's send ring and carries
 * that slot as wr_id. The WRs one poll queues on a QP (a batch, acks
 * owed) are posted as one chain with one ibv_post_send(), and only the
 * chain's last WR is signalled: a completion retires every slot up to its
 * own, in order, since an RC QP completes in order. WRs of at most 64
 * bytes go inline (IBV_SEND_INLINE) where the QP allows, so small writes
 * and sends may come from unregistered memory; without inline data they
 * are copied into their send slot's registered buffer.
 *
 * write_imm = an RDMA write + a SEND "notice" {imm, addr, len, key} on
 * the same QP. The target checks the notice against its registry, calls
 * its notification handler, and answers with a SEND "ack" {status}; the
 * initiator's op completes when its notice completed and the ack arrived,
 * so the op means what it means over TCP: data in place and handler
 * called.
 */
#include <errno.h>
#include <string.h>

#include "reactor/internal.h"
#include "transport/rdma/common/cm.h"
#include "transport/rdma/qp_attr.h"
#include "transport/rdma/rdma_internal.h"
#include "transport/rdma/route.h"
#include "transport/tcp/tcp_internal.h"

/* per QP: send-ring slots, receives (notices, acks; sends come into
 * the receive pool's buffers when there is one), bytes per internal
 * buffer, unregistered writes copied (or sent inline) up to this size,
 * WRs per ibv_post_send(), inline bytes asked for */
#define RQP_SQ 256
#define RQP_RQ 64
#define RQP_MSG 64
#define RQP_SMALL 64
#define RQP_CHAIN 64
#define RQP_INLINE 64
/* longest wait for a retired QP's flush to finish */
#define RQP_DRAIN_NS 2000000000ull

enum rch_state {
	CH_IDLE = 0, /* no QPs: connects on next use */
	CH_REQ_SENT, /* initiator: REQ out, waiting for REP */
	CH_REP_SENT, /* responder: REP out, waiting for RTU */
	CH_READY,
	CH_OFF,	 /* the peer refused: this session's ops go over TCP */
	CH_WAIT, /* new session, larger node id: the peer's REQ is coming */
	/* holding the peer's REQ (responder) or REP (initiator, QPs in
	 * INIT) until the kernel has resolved its GID's neighbour: a modify
	 * to RTR would wait for it inside the verbs call (route.h) */
	CH_RESOLVE,
	CH_REP_RESOLVE,
};

/* longest wait for a peer GID's neighbour (the kernel sends 3 ARP or
 * neighbour-solicitation probes a second apart), and how often it is
 * looked at meanwhile */
#define PLX__GID_WAIT_NS 3000000000ull
#define PLX__GID_LOOK_NS 1000000ull

enum {
	MSG_NOTICE = 1,
	MSG_ACK = 2,
	MSG_SEND = 3
};
/*
 * In-band messages (SENDs on the QPs). Each ends with its type byte, so
 * that a message's kind is at byte_len - 1 whatever its length:
 *   NOTICE (48): imm u32 @0, pad, seq u64 @8, addr @16, len @24, key @32
 *   ACK    (24): status i32 @0, pad, seq u64 @8
 *   SEND   (payload + 24-byte trailer): trailer = seq u64, tag u64, pad
 * Integers little-endian; pads zero.
 */
#define NOTICE_BYTES 48
#define ACK_BYTES 24
#define TRAILER 24

enum {
	SLOT_PLAIN = 0,
	SLOT_MID,
	SLOT_LAST
};

struct plx__rqp;

struct rslot {
	struct plx__rdma_wc_handler h; /* wr_id points here */
	struct plx__rqp *qp;
	struct plx__op *op; /* send slot: NULL for an ack */
	uint8_t kind;	    /* send slot: SLOT_* */
	/* receive slot: its buffer (internal, or from the receive pool;
	 * NULL when the pool had none to replenish it) */
	uint8_t *buf;
	uint32_t cap, lkey;
};

struct plx__rqp {
	struct plx__rdma *d;
	struct plx__rchan *ch; /* NULL once retiring */
	struct plx__rqp *next; /* d's retiring list */
	struct ibv_qp *qp;
	struct ibv_mr *rmr; /* covers rbuf */
	/* RQP_RQ receive buffers, then one RQP_MSG buffer per send slot
	 * (notices, acks, small copied writes), RQP_MSG bytes each */
	uint8_t *rbuf;
	uint32_t psn;
	uint32_t sq_head, sq_tail; /* slots posted / retired (free-running) */
	uint32_t rq_posted;
	uint32_t nrq;	     /* receive slots in use */
	uint32_t max_inline; /* inline bytes per WR the QP takes */
	/* messages received with nowhere to go yet, in arrival order (each
	 * keeps its receive buffer and its ack) */
	uint32_t held_head, nheld;
	struct {
		uint32_t rslot, len;
		uint64_t tag, seq;
	} held[RQP_RQ];
	struct plx_pool *pool; /* receive buffers, or NULL: internal */
	bool err;	       /* moved to the error state: draining */
	bool dead;	       /* destroyed unflushed: completions ignored */
	uint64_t dead_epoch;   /* d->cq_empty when it was destroyed */
	int fail_status;       /* what a flushed op completes with */
	uint64_t drain_deadline;
	uint64_t tx_seq, rx_seq;     /* notices sent / received */
	struct plx__oplist imm_wait; /* write_imm ops waiting for an ack */
	/* acks that found the ring full (FIFO), with the receive slot each
	 * one answers: it is reposted once the ack is out */
	uint32_t ack_head, nack_pending;
	struct {
		int32_t status;
		uint64_t seq;
		uint32_t rslot;
	} ack_pending[RQP_RQ];
	struct rslot sq[RQP_SQ];
	struct rslot rq[RQP_RQ];
	/* WRs gathered for one ibv_post_send() */
	uint32_t cn;
	struct ibv_send_wr cw[RQP_CHAIN];
	struct ibv_sge cs[RQP_CHAIN][2];
};

struct plx__rchan {
	struct plx__rdma *d;
	bool msgs;	   /* our receives use the pool: we take RDMA sends */
	uint32_t peer_msg; /* largest send payload the peer takes, 0: none */
	struct plx_ep *ep;
	struct plx__rchan *next, *prev; /* d->chans */
	uint8_t state;
	uint32_t gen; /* the attempt in progress or connected */
	uint32_t nqp; /* QPs of the current set */
	struct plx__rqp *qp[PLX__CM_MAX_QPS];
	uint32_t rr;		    /* round-robin QP for unsplit ops */
	uint32_t nops;		    /* ops on the channel: backlog + posted */
	struct plx__oplist backlog; /* waiting for READY or ring space */
	uint32_t req_tokens;	    /* REQs we may still answer now */
	bool req_refusing;	    /* the last REQ was refused (logged) */
	uint64_t req_refill;	    /* plx__now_coarse() of the last refill */
	/* CH_RESOLVE, CH_REP_RESOLVE: the message held, and until when */
	struct plx__cm_msg held_cm;
	uint64_t resolve_deadline;
};

/*
 * Connection requests a channel answers: a burst of PLX__CM_REQ_BURST,
 * then one per PLX__CM_REQ_REFILL_NS. Each one answered makes us destroy
 * our QPs and create new ones on the owner thread; a peer that sends
 * more (a legitimate one reconnects only after an error) is refused with
 * REJ (PLX_EAGAIN) and no verbs call, and the channel is off until it
 * asks again within its budget.
 */
#define PLX__CM_REQ_BURST 8
#define PLX__CM_REQ_REFILL_NS 1000000000ull

static void pump(struct plx__rchan *ch);
static void chan_failed(struct plx__rchan *ch, int status);
static void held_retry(struct plx__rqp *q);
static void cm_req_answer(struct plx__rchan *ch, const struct plx__cm_msg *m,
			  int rc);
static void cm_rep_answer(struct plx__rchan *ch, const struct plx__cm_msg *m,
			  int rc);
static void gid_unreachable(struct plx__rchan *ch, const uint8_t gid[16],
			    const char *why);

static struct plx__tcp *ep_tcp(struct plx_ep *ep)
{
	return ep->t;
}

static const uint8_t *self_node(const struct plx__rdma *d)
{
	return d->x->cfg.node_id;
}

/* ---- op completion -------------------------------------------------------- */

static void op_finish(struct plx__op *o)
{
	struct plx__rchan *ch = o->rch;
	int st = o->cancelled ? o->req.status : o->piece_err;

	o->rch = NULL;
	ch->nops--;
	plx__op_done(ep_tcp(o->ep), o, st, st ? 0 : o->len);
}

/* One of @o's outstanding completions arrived, with @status. */
static void op_piece(struct plx__op *o, int status)
{
	if (status && !o->piece_err)
		o->piece_err = status;
	if (--o->pieces_left == 0)
		op_finish(o);
}

int plx__rdma_wc_status(const struct ibv_wc *wc, int flushed_as)
{
	switch (wc->status) {
	case IBV_WC_SUCCESS:
		return 0;
	case IBV_WC_WR_FLUSH_ERR:
		return flushed_as ? flushed_as : PLX_ECONNRESET;
	case IBV_WC_REM_ACCESS_ERR:
		return PLX_EACCES; /* rkey, range or access refused */
	case IBV_WC_LOC_PROT_ERR:
	case IBV_WC_LOC_ACCESS_ERR:
	case IBV_WC_MW_BIND_ERR:
		return PLX_EFAULT; /* our buffer: MR gone or too small */
	case IBV_WC_LOC_LEN_ERR:
	case IBV_WC_REM_INV_REQ_ERR:
		return PLX_EMSGSIZE;
	case IBV_WC_RETRY_EXC_ERR:
	case IBV_WC_RNR_RETRY_EXC_ERR:
		return PLX_ETIMEDOUT; /* the peer stopped answering */
	case IBV_WC_REM_ABORT_ERR:
		return PLX_ECONNABORTED;
	case IBV_WC_REM_OP_ERR:
		return PLX_EREMOTE;
	case IBV_WC_FATAL_ERR:
	case IBV_WC_LOC_QP_OP_ERR:
	case IBV_WC_LOC_EEC_OP_ERR:
		return PLX_EIO;
	default:
		return PLX_EVERBS;
	}
}

/* ---- queue pairs ---------------------------------------------------------- */

static void sq_wc(struct plx_reactor *r, struct plx__rdma_wc_handler *h,
		  const struct ibv_wc *wc);
static void rq_wc(struct plx_reactor *r, struct plx__rdma_wc_handler *h,
		  const struct ibv_wc *wc);

static int post_recv(struct plx__rqp *q, uint32_t i)
{
	struct rslot *s = &q->rq[i];
	struct ibv_sge sge = {
		.addr = (uintptr_t)s->buf,
		.length = s->cap,
		.lkey = s->lkey,
	};
	struct ibv_recv_wr wr =
				   {
					   .wr_id = (uintptr_t)&q->rq[i].h,
					   .sg_list = &sge,
					   .num_sge = 1,
				   },
			   *bad;
	int rc = ibv_post_recv(q->qp, &wr, &bad);

	if (rc)
		return -rc;
	q->rq_posted++;
	return 0;
}

/* Destroy @q's QP and give back what its WRs used; @q itself stays. */
static void qp_destroy(struct plx__rqp *q)
{
	struct plx__rdma *d = q->d;

	if (q->qp && d->ibv->destroy_qp(q->qp))
		plx__log(d->x, PLX_LOG_ERROR, "rdma: ibv_destroy_qp failed");
	if (q->rmr && d->ibv->dereg_mr(q->rmr))
		plx__log(d->x, PLX_LOG_ERROR, "rdma: ibv_dereg_mr failed");
	if (q->qp)
		d->st.qps_destroyed++;
	q->qp = NULL;
	q->rmr = NULL;
	/* receive-pool buffers go back (the QP and its WRs are gone) */
	if (q->pool)
		for (uint32_t i = 0; i < RQP_RQ; i++)
			if (q->rq[i].buf) {
				plx_pool_put(q->pool, q->rq[i].buf);
				q->rq[i].buf = NULL;
			}
	plx__free(d->x, q->rbuf);
	q->rbuf = NULL;
}

static void qp_free(struct plx__rqp *q)
{
	qp_destroy(q);
	plx__free(q->d->x, q);
}

/*
 * Give receive slot @i a buffer: from the receive pool when the channel
 * takes RDMA sends (its memory must lie in a registered region), else
 * the slot's internal RQP_MSG bytes. Return 0, or 1 when the pool is
 * empty (the slot waits; pump() retries).
 */
static int rq_fill(struct plx__rqp *q, uint32_t i)
{
	struct plx__rdma *d = q->d;
	struct rslot *s = &q->rq[i];
	struct ibv_mr *mr;
	uint8_t *b;

	if (!q->pool) {
		s->buf = q->rbuf + (size_t)i * RQP_MSG;
		s->cap = RQP_MSG;
		s->lkey = q->rmr->lkey;
		return 0;
	}
	b = plx_pool_get(q->pool);
	if (!b)
		return 1;
	s->cap = (uint32_t)plx_pool_buf_size(q->pool);
	mr = plx__rdma_mr_find(d, (uintptr_t)b, s->cap);
	if (!mr) {
		plx_pool_put(q->pool, b);
		return PLX_EFAULT; /* checked at channel set-up: not here */
	}
	s->buf = b;
	s->lkey = mr->lkey;
	return 0;
}

/* Post every empty receive slot the pool can fill. */
static int rq_replenish(struct plx__rqp *q)
{
	for (uint32_t i = 0; i < q->nrq; i++) {
		int rc;

		if (q->rq[i].buf)
			continue;
		rc = rq_fill(q, i);
		if (rc == 1)
			return 0;
		if (rc || post_recv(q, i))
			return PLX_EVERBS;
	}
	return 0;
}

/* A QP in RESET -> INIT with every receive posted, or NULL. */
static struct plx__rqp *qp_new(struct plx__rchan *ch)
{
	struct plx__rdma *d = ch->d;
	struct plx__qp_conn c;
	struct ibv_qp_init_attr ia = {
		.send_cq = d->cq,
		.recv_cq = d->cq,
		.cap = {.max_send_wr = RQP_SQ,
			.max_recv_wr = RQP_RQ,
			.max_send_sge = 2,
			.max_recv_sge = 1},
		.qp_type = IBV_QPT_RC,
		.sq_sig_all = 0,
	};
	struct ibv_qp_attr a;
	struct plx__rqp *q = plx__zalloc(d->x, sizeof(*q));
	uint8_t rnd[4];
	const char *step = "allocation";
	int mask;

	if (!q)
		return NULL;
	q->d = d;
	q->ch = ch;
	q->rbuf = plx__alloc_aligned(d->x, (size_t)(RQP_RQ + RQP_SQ) * RQP_MSG,
				     64);
	if (!q->rbuf)
		goto fail;
	step = "ibv_reg_mr";
	q->rmr = d->ibv->reg_mr(d->pd, q->rbuf,
				(size_t)(RQP_RQ + RQP_SQ) * RQP_MSG,
				IBV_ACCESS_LOCAL_WRITE);
	if (!q->rmr)
		goto fail;
	step = "ibv_create_qp";
	ia.cap.max_inline_data = RQP_INLINE;
	q->qp = d->ibv->create_qp(d->qp_pd, &ia);
	if (!q->qp) {
		/* a provider without inline data: small payloads are copied
		 * into the send slots' registered buffers instead */
		ia.cap.max_inline_data = 0;
		q->qp = d->ibv->create_qp(d->qp_pd, &ia);
	}
	if (!q->qp)
		goto fail;
	q->max_inline = ia.cap.max_inline_data;
	d->st.qps_created++;
	if (plx__random(rnd, sizeof(rnd)))
		goto fail;
	q->psn = ((uint32_t)rnd[0] | (uint32_t)rnd[1] << 8 |
		  (uint32_t)rnd[2] << 16) &
		 0xffffffu;
	plx__qp_conn_defaults(&c);
	c.port = (uint8_t)d->info.port;
	c.access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
		   IBV_ACCESS_REMOTE_READ;
	step = "ibv_modify_qp(INIT)";
	if (plx__qp_attr_init(&c, &a, &mask) ||
	    d->ibv->modify_qp(q->qp, &a, mask))
		goto fail;
	step = "ibv_post_recv";
	q->pool = ch->msgs ? d->cfg.recv_pool : NULL;
	q->nrq = q->pool ? d->cfg.recv_depth : RQP_RQ;
	for (uint32_t i = 0; i < q->nrq; i++) {
		q->rq[i].h.fn = rq_wc;
		q->rq[i].qp = q;
		if (rq_fill(q, i) || post_recv(q, i))
			goto fail;
	}
	for (uint32_t i = 0; i < RQP_SQ; i++) {
		q->sq[i].h.fn = sq_wc;
		q->sq[i].qp = q;
	}
	return q;
fail:
	plx__log(d->x, PLX_LOG_ERROR, "rdma: creating a QP failed at %s (%s)",
		 step, strerror(errno));
	/* nothing completed on it yet: receives vanish with the QP */
	qp_free(q);
	return NULL;
}

static int mtu_code(uint32_t bytes)
{
	int code = IBV_MTU_256;

	while (code < IBV_MTU_4096 && (256u << code) <= bytes)
		code++;
	return code;
}

/* INIT -> RTR -> RTS towards the peer's QP @k of @m. */
static int qp_connect(struct plx__rqp *q, const struct plx__cm_msg *m,
		      uint32_t k)
{
	struct plx__rdma *d = q->d;
	struct plx__qp_conn c;
	struct ibv_qp_attr a;
	int mask, rc, mine = mtu_code(d->info.active_mtu);

	plx__qp_conn_defaults(&c);
	c.port = (uint8_t)d->info.port;
	c.access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
		   IBV_ACCESS_REMOTE_READ;
	c.remote_qpn = m->qpn[k];
	c.remote_psn = m->psn[k];
	c.local_psn = q->psn;
	c.path_mtu = m->mtu < mine ? m->mtu : mine;
	if (d->info.link_layer == IBV_LINK_LAYER_INFINIBAND && m->lid) {
		c.global = false;
		c.remote_lid = m->lid;
	} else {
		c.global = true;
		memcpy(c.remote_gid, m->gid, 16);
		c.sgid_index = (uint8_t)d->info.gid_index;
	}
	/* we issue no more reads than the peer serves, and serve ours */
	c.max_rd_atomic = (uint8_t)(m->rd_atom < d->max_rd_atom ?
					    m->rd_atom :
					    d->max_rd_atom);
	c.max_dest_rd_atomic = (uint8_t)d->max_rd_atom;
	rc = plx__qp_attr_rtr(&c, &a, &mask);
	if (rc)
		return rc;
	if (d->ibv->modify_qp(q->qp, &a, mask))
		return PLX_EVERBS;
	rc = plx__qp_attr_rts(&c, &a, &mask);
	if (rc)
		return rc;
	if (d->ibv->modify_qp(q->qp, &a, mask))
		return PLX_EVERBS;
	return 0;
}

static void qp_maybe_free(struct plx__rqp *q)
{
	struct plx__rdma *d = q->d;
	struct plx__rqp **pp;

	if (!q->err || q->ch || q->sq_head != q->sq_tail || q->rq_posted)
		return;
	for (pp = &d->retiring; *pp; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	d->nlive--;
	qp_free(q);
}

/*
 * Retire @q: error state, so that every WR on it completes (flushed ops
 * with @status), acks it owes are dropped, write_imm ops waiting for an
 * ack fail; it is destroyed once its rings are empty.
 */
static void qp_retire(struct plx__rqp *q, int status)
{
	struct plx__rdma *d = q->d;
	struct ibv_qp_attr a = {.qp_state = IBV_QPS_ERR};
	struct plx__op *o;

	if (!q->err) {
		q->err = true;
		q->fail_status = status;
		q->drain_deadline = plx__now_coarse() + RQP_DRAIN_NS;
		if (d->ibv->modify_qp(q->qp, &a, IBV_QP_STATE))
			plx__log(d->x, PLX_LOG_ERROR,
				 "rdma: moving QP %u to the error state failed",
				 q->qp->qp_num);
		q->nack_pending = 0;
		q->nheld = 0; /* their senders' ops fail with the session */
		while ((o = plx__oplist_pop(&q->imm_wait)))
			op_piece(o, status);
	}
	if (q->ch) {
		q->ch = NULL;
		q->next = d->retiring;
		d->retiring = q;
		d->nlive++;
	}
	qp_maybe_free(q);
}

/* Retire the channel's QP set; it connects again on next use. */
static void chan_reset(struct plx__rchan *ch, int status)
{
	for (uint32_t k = 0; k < ch->nqp; k++) {
		struct plx__rqp *q = ch->qp[k];

		ch->qp[k] = NULL;
		if (q)
			qp_retire(q, status);
	}
	ch->nqp = 0;
	ch->state = CH_IDLE;
}

/* ---- posting -------------------------------------------------------------- */

/*
 * Work requests are gathered per QP into a chain (q->cw) and posted with
 * one ibv_post_send() when the poll's work is queued (qp_flush): a batch
 * of ops becomes one chain. Only the chain's last WR is signalled; its
 * completion retires the slots of every WR before it.
 */

/* Append a WR to @q's chain for @o (NULL: an ack), taking the next send
 * slot. Return the WR (its sge is wr->sg_list) and, in *@buf, the slot's
 * RQP_MSG-byte buffer. The caller checked the room (qp_room()). */
static struct ibv_send_wr *wr_add(struct plx__rqp *q, struct plx__op *o,
				  uint8_t kind, uint8_t **buf)
{
	uint32_t i = q->sq_head % RQP_SQ;
	struct rslot *s = &q->sq[i];
	struct ibv_send_wr *wr = &q->cw[q->cn];

	memset(wr, 0, sizeof(*wr));
	memset(q->cs[q->cn], 0, sizeof(q->cs[0]));
	wr->sg_list = q->cs[q->cn];
	wr->num_sge = 1;
	wr->wr_id = (uintptr_t)&s->h;
	q->cn++;
	s->op = o;
	s->kind = kind;
	q->sq_head++;
	*buf = q->rbuf + (size_t)(RQP_RQ + i) * RQP_MSG;
	return wr;
}

/* Send @wr's bytes inline (the CPU copies them into the WQE: no DMA read,
 * no lkey) when they are few enough for the QP. Never for reads. */
static void inline_if_small(struct plx__rqp *q, struct ibv_send_wr *wr)
{
	uint32_t n = 0;

	if (wr->opcode == IBV_WR_RDMA_READ || !q->max_inline)
		return;
	for (int i = 0; i < wr->num_sge; i++)
		n += wr->sg_list[i].length;
	if (n > q->max_inline)
		return;
	wr->send_flags |= IBV_SEND_INLINE;
	q->d->st.inline_wrs++;
}

/* Room for @nwr more WRs (plus one slot kept for an ack we may owe)? */
static bool qp_room(const struct plx__rqp *q, uint32_t nwr)
{
	return q->sq_head - q->sq_tail + nwr + 1 <= RQP_SQ &&
	       q->cn + nwr <= RQP_CHAIN;
}

/*
 * Post @q's chain. On a refusal the WRs from the refused one on never
 * happened: their slots go back, their ops fail, and the channel resets
 * (the QP may be broken; what was posted completes, flushed).
 */
static int qp_flush(struct plx__rqp *q)
{
	struct ibv_send_wr *bad = NULL;
	uint32_t n = q->cn, b;
	int rc;

	if (!n)
		return 0;
	for (uint32_t i = 0; i + 1 < n; i++)
		q->cw[i].next = &q->cw[i + 1];
	q->cw[n - 1].next = NULL;
	q->cw[n - 1].send_flags |= IBV_SEND_SIGNALED;
	q->cn = 0;
	q->d->st.post_calls++;
	rc = ibv_post_send(q->qp, &q->cw[0], &bad);
	if (!rc)
		return 0;
	b = bad ? (uint32_t)(bad - q->cw) : 0;
	if (b > n)
		b = 0;
	plx__log(q->d->x, PLX_LOG_ERROR,
		 "rdma: ibv_post_send refused WR %u of %u (%s)", b, n,
		 strerror(rc));
	for (uint32_t i = b; i < n; i++) {
		struct rslot *s = (struct rslot *)(uintptr_t)q->cw[i].wr_id;
		struct plx__op *o = s->op;

		s->op = NULL;
		if (!o)
			continue;
		if (!o->piece_err)
			o->piece_err = PLX_EVERBS;
		if (s->kind != SLOT_LAST)
			continue;
		if (o->kind == PLX__K_WRITE_IMM) {
			/* its ack will not come either */
			plx__oplist_remove(&q->imm_wait, o);
			o->pieces_left--;
		}
		op_piece(o, PLX_EVERBS);
	}
	q->sq_head -= n - b;
	return PLX_EVERBS;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* Queue an ack on @q's chain; 1 when there is no room now. */
static int add_ack(struct plx__rqp *q, int32_t status, uint64_t seq)
{
	struct ibv_send_wr *wr;
	uint8_t *msg;

	if (!qp_room(q, 1))
		return 1;
	wr = wr_add(q, NULL, SLOT_PLAIN, &msg);
	memset(msg, 0, ACK_BYTES);
	put_u32(msg, (uint32_t)status);
	put_u64(msg + 8, seq);
	msg[ACK_BYTES - 1] = MSG_ACK;
	wr->opcode = IBV_WR_SEND;
	wr->sg_list->addr = (uintptr_t)msg;
	wr->sg_list->length = ACK_BYTES;
	wr->sg_list->lkey = q->rmr->lkey;
	inline_if_small(q, wr);
	return 0;
}

/* The data WR of one piece: local [local, +len) to remote @raddr. A small
 * unregistered source (no @mr) goes from a copy in the slot's buffer. */
static void add_data(struct plx__rqp *q, struct plx__op *o, uint8_t kind,
		     const struct ibv_mr *mr, uint64_t local, uint64_t len,
		     uint64_t raddr)
{
	uint8_t *buf;
	struct ibv_send_wr *wr = wr_add(q, o, kind, &buf);

	wr->opcode = o->kind == PLX__K_READ ? IBV_WR_RDMA_READ :
					      IBV_WR_RDMA_WRITE;
	wr->wr.rdma.remote_addr = raddr;
	wr->wr.rdma.rkey = o->rrkey;
	wr->sg_list->addr = local;
	wr->sg_list->length = (uint32_t)len;
	if (!len) {
		wr->num_sge = 0;
	} else if (mr) {
		wr->sg_list->lkey = mr->lkey;
	} else if (len > q->max_inline) {
		/* small and unregistered, no inline: from a copy */
		memcpy(buf, (const void *)(uintptr_t)local, len);
		wr->sg_list->addr = (uintptr_t)buf;
		wr->sg_list->lkey = q->rmr->lkey;
	}
	if (!o->dev)
		inline_if_small(q, wr);
}

/* The notice SEND that follows a write_imm's data on the same QP. */
static void add_notice(struct plx__rqp *q, struct plx__op *o)
{
	uint8_t *msg;
	struct ibv_send_wr *wr = wr_add(q, o, SLOT_LAST, &msg);

	memset(msg, 0, NOTICE_BYTES);
	msg[NOTICE_BYTES - 1] = MSG_NOTICE;
	put_u32(msg, o->imm);
	o->seq = ++q->tx_seq;
	put_u64(msg + 8, o->seq);
	put_u64(msg + 16, o->raddr);
	put_u64(msg + 24, o->len);
	put_u64(msg + 32, o->rkey);
	wr->opcode = IBV_WR_SEND;
	wr->sg_list->addr = (uintptr_t)msg;
	wr->sg_list->length = NOTICE_BYTES;
	wr->sg_list->lkey = q->rmr->lkey;
	inline_if_small(q, wr);
	plx__oplist_push(&q->imm_wait, o);
}

/* The peer's receive buffers take @o, and our buffer is registered or
 * small enough to go from a copy. */
static bool send_fits(const struct plx__rchan *ch, const struct plx__op *o)
{
	return o->len <= ch->peer_msg &&
	       (o->len <= RQP_MSG - TRAILER ||
		plx__rdma_mr_find(ch->d, (uintptr_t)o->src, o->len));
}

/* A send: one SEND WR, the payload then the trailer {seq, tag} (two
 * SGEs; a small unregistered payload goes from a copy, with the trailer,
 * in the slot's buffer). Completes on the WR and the target's ack. */
static void add_send(struct plx__rqp *q, struct plx__op *o,
		     const struct ibv_mr *mr)
{
	uint8_t *buf;
	struct ibv_send_wr *wr = wr_add(q, o, SLOT_LAST, &buf);
	uint8_t *tr = mr ? buf : buf + o->len;

	memset(tr, 0, TRAILER);
	o->seq = ++q->tx_seq;
	put_u64(tr, o->seq);
	put_u64(tr + 8, o->tag);
	tr[TRAILER - 1] = MSG_SEND;
	wr->opcode = IBV_WR_SEND;
	if (mr && o->len) {
		wr->num_sge = 2;
		wr->sg_list[0].addr = (uintptr_t)o->src;
		wr->sg_list[0].length = (uint32_t)o->len;
		wr->sg_list[0].lkey = mr->lkey;
		wr->sg_list[1].addr = (uintptr_t)tr;
		wr->sg_list[1].length = TRAILER;
		wr->sg_list[1].lkey = q->rmr->lkey;
	} else {
		if (o->len)
			memcpy(buf, o->src, o->len);
		wr->sg_list[0].addr = (uintptr_t)buf;
		wr->sg_list[0].length = (uint32_t)o->len + TRAILER;
		wr->sg_list[0].lkey = q->rmr->lkey;
	}
	inline_if_small(q, wr);
	plx__oplist_push(&q->imm_wait, o);
}

/*
 * Queue @o's WRs on the chains: one QP (round robin), or, from
 * cfg.split_min on, one piece per QP (never a write_imm: its notice must
 * follow all of its data on one QP). Return 0, 1 when the rings or
 * chains lack room (the op waits, in order), or 2 for a send the peer's
 * receive buffers cannot take (it goes over TCP).
 */
static int add_op(struct plx__rchan *ch, struct plx__op *o)
{
	struct plx__rdma *d = ch->d;
	uint64_t local = (uintptr_t)(o->kind == PLX__K_READ ? o->dst : o->src);
	const struct ibv_mr *mr = o->len ? plx__rdma_mr_find(d, local, o->len) :
					   NULL;
	uint32_t n = 1, nwr = o->kind == PLX__K_WRITE_IMM ? 2 : 1;

	if (o->kind == PLX__K_SEND) {
		/* every send on QP 0: messages stay in order, as on one TCP
		 * connection (the receiver holds them in arrival order) */
		struct plx__rqp *q = ch->qp[0];

		if (!send_fits(ch, o))
			return 2; /* queued while connecting: TCP takes it */
		if (!qp_room(q, 1))
			return 1;
		o->pieces_left = 2; /* the WR, the ack */
		o->piece_err = 0;
		add_send(q, o, mr);
		d->st.ops_posted++;
		return 0;
	}
	if (o->kind != PLX__K_WRITE_IMM && ch->nqp > 1 &&
	    o->len >= d->cfg.split_min)
		n = ch->nqp;
	for (uint32_t k = 0; k < n; k++)
		if (!qp_room(ch->qp[n == 1 ? ch->rr % ch->nqp : k], nwr))
			return 1;
	o->pieces_left = n + (o->kind == PLX__K_WRITE_IMM);
	o->piece_err = 0;
	if (n == 1) {
		struct plx__rqp *q = ch->qp[ch->rr++ % ch->nqp];

		add_data(q, o, nwr == 2 ? SLOT_MID : SLOT_LAST, mr, local,
			 o->len, o->raddr);
		if (nwr == 2)
			add_notice(q, o);
	} else {
		/* contiguous pieces, 64-byte aligned, the last one shorter */
		uint64_t chunk = ((o->len + n - 1) / n + 63) & ~63ull;

		for (uint32_t k = 0; k < n; k++) {
			uint64_t off = chunk * k < o->len ? chunk * k : o->len;
			uint64_t len = o->len - off < chunk ? o->len - off :
							      chunk;

			add_data(ch->qp[k], o, SLOT_LAST, mr, local + off, len,
				 o->raddr + off);
		}
	}
	d->st.ops_posted++;
	return 0;
}

/* Queue the acks @q owes that found no room earlier; each one reposts
 * the receive it answers. */
static int acks_owed(struct plx__rqp *q)
{
	while (q->nack_pending) {
		uint32_t i = q->ack_head;

		if (add_ack(q, q->ack_pending[i].status, q->ack_pending[i].seq))
			return 0;
		q->ack_head = (i + 1) % RQP_RQ;
		q->nack_pending--;
		if (q->rq[q->ack_pending[i].rslot].buf &&
		    post_recv(q, q->ack_pending[i].rslot))
			return PLX_EVERBS;
	}
	return 0;
}

/* Post what the backlog holds, in order, while the rings take it: one
 * chain per QP. */
static void pump(struct plx__rchan *ch)
{
	struct plx__op *o;
	int rc = 0;

	if (ch->state != CH_READY)
		return;
	for (uint32_t k = 0; k < ch->nqp && !rc; k++) {
		held_retry(ch->qp[k]);
		if (ch->state != CH_READY)
			return; /* a handler closed the endpoint */
		rc = acks_owed(ch->qp[k]);
		if (!rc && ch->qp[k]->pool)
			rc = rq_replenish(ch->qp[k]);
	}
	/* inside plx_ep_batch_begin() / _end() ops stay queued: _end posts
	 * them as chains */
	while (!rc && !ch->ep->corked && (o = ch->backlog.head)) {
		/* off the backlog first: a write_imm joins a QP's imm_wait
		 * through the same links */
		plx__oplist_remove(&ch->backlog, o);
		rc = add_op(ch, o);
		if (rc == 2) {
			rc = 0;
			o->rch = NULL;
			ch->nops--;
			plx__ep_start_tcp(ch->ep, o);
			continue;
		}
		if (rc == 0)
			continue;
		rc = 0;
		/* chains full: post them, then try once more */
		for (uint32_t k = 0; k < ch->nqp && !rc; k++)
			rc = qp_flush(ch->qp[k]);
		if (rc || add_op(ch, o)) {
			plx__oplist_push_front(&ch->backlog, o);
			break;
		}
	}
	for (uint32_t k = 0; k < ch->nqp; k++)
		if (qp_flush(ch->qp[k]))
			rc = PLX_EVERBS;
	if (rc)
		chan_failed(ch, rc);
}

/* ---- completions ---------------------------------------------------------- */

static void wc_error_log(struct plx__rdma *d, const struct ibv_wc *wc,
			 int status)
{
	d->st.wc_errors++;
	if (wc->status == IBV_WC_WR_FLUSH_ERR)
		return; /* a consequence: the cause was reported */
	d->st.last_wc_status = (int)wc->status;
	d->st.last_vendor_err = wc->vendor_err;
	plx__log(d->x, PLX_LOG_WARN,
		 "rdma: QP %u: work completion status %d (vendor "
		 "error %#x) -> %s",
		 wc->qp_num, (int)wc->status, wc->vendor_err,
		 plx_errname(status));
}

static void sq_wc(struct plx_reactor *r, struct plx__rdma_wc_handler *h,
		  const struct ibv_wc *wc)
{
	struct rslot *slot = (struct rslot *)(void *)h;
	struct plx__rqp *q = slot->qp;
	struct plx__rchan *ch = q->ch;
	int st;

	(void)r;
	if (q->dead) {
		q->d->late_wcs++; /* its ops completed when it was destroyed */
		return;
	}
	st = plx__rdma_wc_status(wc, q->fail_status);
	if (st)
		wc_error_log(q->d, wc, st);
	/* every slot up to this one is done: RC completes in order */
	for (;;) {
		struct rslot *s = &q->sq[q->sq_tail % RQP_SQ];
		bool here = s == slot;
		int sst = here ? st : 0;

		if (q->sq_tail == q->sq_head)
			break; /* a completion for nothing posted: ignore */
		q->sq_tail++;
		if (s->op) {
			struct plx__op *o = s->op;

			s->op = NULL;
			if (sst && !o->piece_err)
				o->piece_err = sst;
			if (s->kind == SLOT_LAST)
				op_piece(o, sst);
		}
		if (here)
			break;
	}
	if (st && !q->err) {
		if (ch)
			chan_failed(ch, PLX_ECONNRESET);
		else
			qp_retire(q, PLX_ECONNRESET);
	}
	if (q->err) {
		qp_maybe_free(q);
		return;
	}
	if (ch)
		pump(ch);
}

/* Acknowledge message @seq with @st and repost receive slot @i (if it
 * still has a buffer); an ack that finds no room waits, in order, and
 * the slot with it. */
static void answer(struct plx__rqp *q, uint32_t i, int st, uint64_t seq)
{
	if (!q->nack_pending && add_ack(q, st, seq) == 0) {
		if (q->rq[i].buf && post_recv(q, i))
			chan_failed(q->ch, PLX_EVERBS);
		return;
	}
	{
		uint32_t j = (q->ack_head + q->nack_pending) % RQP_RQ;

		q->ack_pending[j].status = st;
		q->ack_pending[j].seq = seq;
		q->ack_pending[j].rslot = i;
		q->nack_pending++;
	}
}

/*
 * Deliver the message in receive slot @i (@len bytes, @tag) as TCP does:
 * to the first matching posted receive (copied), else to the
 * message-pool handler (the receive buffer itself when the TCP message
 * pool is the receive pool), else to an unexpected slot (copied).
 * Return the status to acknowledge with (0, PLX_EMSGSIZE), or 1: nowhere
 * to put it yet (held: the sender waits, as over TCP, when the receiver
 * stops reading).
 */
static int deliver(struct plx__rqp *q, uint32_t i, uint32_t len, uint64_t tag)
{
	struct plx_ep *ep = q->ch->ep->canon;
	struct plx__tcp *t = ep_tcp(ep);
	struct rslot *s = &q->rq[i];
	struct plx__op *o = plx__ep_match(ep, tag);
	int slot;

	if (o) {
		if (len > o->len) {
			plx__op_done(
				t, o,
				o->cancelled ? o->req.status : PLX_EMSGSIZE, 0);
			return PLX_EMSGSIZE;
		}
		memcpy(o->dst, s->buf, len);
		plx__op_done(t, o, o->cancelled ? o->req.status : 0,
			     o->cancelled ? 0 : len);
		return 0;
	}
	if (t->cfg.msg_cb && t->cfg.msg_pool) {
		uint8_t *b;

		if (len > plx_pool_buf_size(t->cfg.msg_pool))
			return PLX_EMSGSIZE; /* dropped, as over TCP */
		if (t->cfg.msg_pool == q->pool) {
			b = s->buf; /* handed over as it is */
			s->buf = NULL;
		} else {
			b = plx_pool_get(t->cfg.msg_pool);
			if (!b)
				return 1;
			memcpy(b, s->buf, len);
		}
		t->cfg.msg_cb(t->r, ep, tag, b, len, t->cfg.cb_arg);
		return 0;
	}
	slot = len <= t->cfg.unexpected_size ? plx__slot_get(t) : -1;
	if (slot < 0)
		return 1;
	memcpy(t->slots + (size_t)slot * t->cfg.unexpected_size, s->buf, len);
	plx__unexp_push(ep, tag, len, slot);
	return 0;
}

/* Deliver held messages of @q, in order, while they find a place. */
static void held_retry(struct plx__rqp *q)
{
	while (q->nheld && q->ch && !q->err) {
		uint32_t h = q->held_head;
		int st = deliver(q, q->held[h].rslot, q->held[h].len,
				 q->held[h].tag);

		if (st == 1)
			return;
		q->held_head = (h + 1) % RQP_RQ;
		q->nheld--;
		if (q->ch && !q->err)
			answer(q, q->held[h].rslot, st, q->held[h].seq);
	}
}

/* A message (send) arrived on @q in receive slot @i: delivered, then
 * acknowledged with the outcome; or held, in order, until it can be. */
static void on_send(struct plx__rqp *q, uint32_t i, uint32_t len,
		    const uint8_t *trailer)
{
	uint64_t seq = get_u64(trailer), tag = get_u64(trailer + 8);
	uint32_t h;

	if (seq != ++q->rx_seq) {
		chan_failed(q->ch, PLX_EPROTO);
		return;
	}
	h = (q->held_head + q->nheld) % RQP_RQ;
	q->held[h].rslot = i;
	q->held[h].len = len;
	q->held[h].tag = tag;
	q->held[h].seq = seq;
	q->nheld++;
	held_retry(q);
}

/* A notice arrived on @q (receive slot @i): check, notify, acknowledge. */
static void on_notice(struct plx_reactor *r, struct plx__rqp *q, uint32_t i,
		      const uint8_t *m)
{
	struct plx__rchan *ch = q->ch;
	struct plx__tcp *t = ep_tcp(ch->ep);
	uint64_t seq = get_u64(m + 8), addr = get_u64(m + 16),
		 len = get_u64(m + 24), key = get_u64(m + 32);
	uint32_t imm = get_u32(m);
	int st;

	if (seq != ++q->rx_seq) {
		chan_failed(ch, PLX_EPROTO);
		return;
	}
	/* the NIC checked the rkey; the notice's range and key are the
	 * peer's word, checked here as TCP checks a WRITE_IMM */
	st = plx_mem_lookup(r, addr, len, key, PLX_ACCESS_REMOTE_WRITE, NULL);
	if (!st && t->cfg.imm_cb)
		t->cfg.imm_cb(r, ch->ep->canon, imm, addr, len, t->cfg.cb_arg);
	if (ch != q->ch || q->err)
		return; /* the handler closed the endpoint */
	answer(q, i, st, seq);
}

static void on_ack(struct plx__rqp *q, const uint8_t *m)
{
	struct plx__op *o = q->imm_wait.head;
	uint32_t raw = get_u32(m);
	int32_t st = raw <= 0x7fffffffu ?
			     (int32_t)raw :
			     (int32_t)(raw - 0x80000000u) - 0x7fffffff - 1;

	if (!o || get_u64(m + 8) != o->seq || st > 0) {
		chan_failed(q->ch, PLX_EPROTO);
		return;
	}
	plx__oplist_pop(&q->imm_wait);
	op_piece(o, st);
}

static void rq_wc(struct plx_reactor *r, struct plx__rdma_wc_handler *h,
		  const struct ibv_wc *wc)
{
	struct rslot *slot = (struct rslot *)(void *)h;
	struct plx__rqp *q = slot->qp;
	uint32_t i = (uint32_t)(slot - q->rq);
	const uint8_t *m = slot->buf;
	uint8_t type;

	if (q->dead) {
		q->d->late_wcs++; /* its buffer went back at the destroy */
		return;
	}
	q->rq_posted--;
	if (wc->status != IBV_WC_SUCCESS) {
		int st = plx__rdma_wc_status(wc, q->fail_status);

		wc_error_log(q->d, wc, st);
		if (!q->err && q->ch)
			chan_failed(q->ch, PLX_ECONNRESET);
		qp_maybe_free(q);
		return;
	}
	if (q->err || !q->ch)
		return;
	type = wc->byte_len ? m[wc->byte_len - 1] : 0;
	if (wc->opcode != IBV_WC_RECV ||
	    (type == MSG_NOTICE ? wc->byte_len != NOTICE_BYTES :
	     type == MSG_ACK	? wc->byte_len != ACK_BYTES :
	     type == MSG_SEND	? wc->byte_len < TRAILER || !q->pool :
				  true)) {
		chan_failed(q->ch, PLX_EPROTO);
		return;
	}
	if (type == MSG_NOTICE) {
		on_notice(r, q, i, m);
	} else if (type == MSG_SEND) {
		on_send(q, i, wc->byte_len - TRAILER,
			m + wc->byte_len - TRAILER);
	} else {
		on_ack(q, m);
		if (!q->err && q->ch && post_recv(q, i))
			chan_failed(q->ch, PLX_EVERBS);
	}
	if (!q->ch)
		return;
	pump(q->ch);
	/* an ack queued before the channel is READY (RTU still on its way
	 * over TCP) leaves now */
	if (q->cn && qp_flush(q) && q->ch)
		chan_failed(q->ch, PLX_EVERBS);
}

/* ---- connection ----------------------------------------------------------- */

static uint32_t next_gen(struct plx__rdma *d)
{
	if (++d->gen == 0)
		d->gen = 1;
	return d->gen;
}

static void cm_fill(struct plx__rchan *ch, struct plx__cm_msg *m, uint8_t kind)
{
	struct plx__rdma *d = ch->d;

	memset(m, 0, sizeof(*m));
	m->kind = kind;
	m->gen = ch->gen;
	if (kind != PLX__CM_REQ && kind != PLX__CM_REP)
		return;
	m->nqp = (uint8_t)ch->nqp;
	m->mtu = (uint8_t)mtu_code(d->info.active_mtu);
	m->lid = d->info.lid;
	m->rd_atom = (uint8_t)d->max_rd_atom;
	m->msg_max = ch->msgs ? (uint32_t)plx_pool_buf_size(d->cfg.recv_pool) -
					TRAILER :
				0;
	memcpy(m->gid, d->info.gid, 16);
	for (uint32_t k = 0; k < ch->nqp; k++) {
		m->qpn[k] = ch->qp[k]->qp->qp_num;
		m->psn[k] = ch->qp[k]->psn;
	}
}

static int cm_send(struct plx__rchan *ch, uint8_t kind, int status)
{
	struct plx__cm_msg m;
	uint8_t buf[PLX__CM_MAX];
	int n;

	cm_fill(ch, &m, kind);
	m.status = status;
	n = plx__cm_encode(&m, buf, sizeof(buf));
	if (n < 0)
		return n;
	return plx__ep_send_cm(ch->ep, buf, (uint32_t)n);
}

static int qps_create(struct plx__rchan *ch, uint32_t nqp)
{
	ch->nqp = nqp;
	for (uint32_t k = 0; k < nqp; k++) {
		ch->qp[k] = qp_new(ch);
		if (!ch->qp[k])
			return PLX_EVERBS;
	}
	return 0;
}

/* Start a connection attempt as initiator. */
static void chan_connect(struct plx__rchan *ch)
{
	int rc;

	ch->gen = next_gen(ch->d);
	rc = qps_create(ch, ch->d->cfg.qps_per_ep);
	if (!rc)
		rc = cm_send(ch, PLX__CM_REQ, 0);
	if (rc) {
		chan_reset(ch, rc);
		/* cannot even try: TCP carries the ops, and the peer, who
		 * may be waiting for our REQ, is told */
		cm_send(ch, PLX__CM_REJ, rc);
		ch->state = CH_OFF;
		chan_failed(ch, rc);
		return;
	}
	ch->state = CH_REQ_SENT;
	ch->d->st.connects++;
}

/* The channel lost its QPs (or could not get any): ops still waiting
 * reconnect, or, if RDMA is off for this session, go over TCP. */
static void chan_failed(struct plx__rchan *ch, int status)
{
	struct plx__op *o;

	if (ch->state != CH_OFF) {
		chan_reset(ch, status);
		if (ch->backlog.n && ch->ep && !ch->ep->closing)
			chan_connect(ch);
		return;
	}
	while ((o = plx__oplist_pop(&ch->backlog))) {
		o->rch = NULL;
		ch->nops--;
		plx__ep_start_tcp(ch->ep, o);
	}
}

/* Count and log a peer GID whose neighbour the kernel could not
 * resolve: the connection is refused, and ops go over TCP. */
static void gid_unreachable(struct plx__rchan *ch, const uint8_t gid[16],
			    const char *why)
{
	char a[PLX__GID_STR];

	ch->d->st.gid_unreachable++;
	plx__gid_str(gid, a);
	plx__log(ch->d->x, PLX_LOG_WARN,
		 "rdma: the peer's GID %s %s: no RDMA connection, its ops go "
		 "over TCP",
		 a, why);
}

/* why plx__gid_check() answered PLX_EHOSTUNREACH */
#define GID_NO_ROUTE                                                           \
	"has no route out of our GID's netdev (or is of the other address "    \
	"family)"

static bool resolving(const struct plx__rchan *ch)
{
	return ch->state == CH_RESOLVE || ch->state == CH_REP_RESOLVE;
}

/*
 * Before a modify to RTR towards the peer of REQ or REP @m: 0 (go on),
 * PLX_EHOSTUNREACH (answer with it), or PLX__GID_WAIT: the kernel is
 * resolving the GID's neighbour, and @m is held in state @hold until
 * it has, or until PLX__GID_WAIT_NS have passed (resolve_step()).
 */
static int gid_gate(struct plx__rchan *ch, const struct plx__cm_msg *m,
		    uint8_t hold)
{
	struct plx__rdma *d = ch->d;
	struct plx_reactor *r = ep_tcp(ch->ep)->r;
	int rc;

	if (d->info.link_layer == IBV_LINK_LAYER_INFINIBAND && m->lid)
		return 0; /* routed by LID: nothing to resolve */
	rc = plx__gid_check(d, m->gid, true);
	if (rc == PLX_EHOSTUNREACH)
		gid_unreachable(ch, m->gid, GID_NO_ROUTE);
	if (rc != PLX__GID_WAIT)
		return rc;
	ch->held_cm = *m;
	ch->state = hold;
	ch->resolve_deadline = plx__now_coarse() + PLX__GID_WAIT_NS;
	d->st.gid_waits++;
	if (!plx_timer_armed(&d->resolve_timer) &&
	    plx_timer_start(r, &d->resolve_timer, PLX__GID_LOOK_NS,
			    PLX__GID_LOOK_NS))
		plx__log(d->x, PLX_LOG_WARN,
			 "rdma: no timer for resolving a peer's GID "
			 "(max_timers): looked at on the transport's tick");
	return PLX__GID_WAIT;
}

/*
 * Look at a held REQ or REP again. Return true if it left the state
 * (answered, or refused after PLX__GID_WAIT_NS): that may have run
 * callbacks, which may have closed endpoints.
 */
static bool resolve_step(struct plx__rchan *ch, uint64_t now)
{
	struct plx__cm_msg m = ch->held_cm;
	int rc = plx__gid_check(ch->d, m.gid, false);

	if (rc == PLX__GID_WAIT) {
		if (now < ch->resolve_deadline)
			return false;
		gid_unreachable(ch, m.gid, "got no neighbour in 3 s");
		rc = PLX_EHOSTUNREACH;
	} else if (rc == PLX_EHOSTUNREACH) {
		gid_unreachable(ch, m.gid, GID_NO_ROUTE);
	}
	if (ch->state == CH_RESOLVE) {
		ch->state = CH_IDLE;
		cm_req_answer(ch, &m, rc);
	} else {
		ch->state = CH_REQ_SENT;
		cm_rep_answer(ch, &m, rc);
	}
	return true;
}

void plx__rchan_resolve_fire(struct plx_reactor *r, struct plx_timer *t)
{
	struct plx__rdma *d = t->user;
	uint64_t now = plx__now_coarse();
	struct plx__rchan *ch;

again:
	for (ch = d->chans; ch; ch = ch->next)
		if (resolving(ch) && resolve_step(ch, now))
			goto again; /* the list may have changed */
	for (ch = d->chans; ch; ch = ch->next)
		if (resolving(ch))
			return;
	plx_timer_stop(r, t);
}

/* Take one of @ch's REQ tokens, refilled with time; false: none left. */
static bool req_take(struct plx__rchan *ch)
{
	uint64_t add =
		(plx__now_coarse() - ch->req_refill) / PLX__CM_REQ_REFILL_NS;

	if (add) {
		ch->req_tokens = add >= PLX__CM_REQ_BURST - ch->req_tokens ?
					 PLX__CM_REQ_BURST :
					 ch->req_tokens + (uint32_t)add;
		ch->req_refill += add * PLX__CM_REQ_REFILL_NS;
	}
	if (!ch->req_tokens)
		return false;
	ch->req_tokens--;
	return true;
}

/* A REQ over the budget: whatever we had with the peer is gone (it gave
 * its QPs up), and no new QPs are made for it. */
static void cm_req_refuse(struct plx__rchan *ch, const struct plx__cm_msg *m)
{
	ch->d->st.cm_refused++;
	if (!ch->req_refusing)
		plx__log(ch->d->x, PLX_LOG_WARN,
			 "rdma: the peer sent more than %d connection "
			 "requests (then one a second): refused, its ops go "
			 "over TCP",
			 PLX__CM_REQ_BURST);
	ch->req_refusing = true;
	chan_reset(ch, PLX_ECONNRESET);
	ch->gen = m->gen; /* the REJ answers this REQ */
	cm_send(ch, PLX__CM_REJ, PLX_EAGAIN);
	ch->state = CH_OFF;
	chan_failed(ch, PLX_ECONNREFUSED);
}

static void cm_req(struct plx__rchan *ch, const struct plx__cm_msg *m)
{
	int rc;

	if (ch->state == CH_REQ_SENT) {
		ch->d->st.cm_crossed++;
		if (memcmp(self_node(ch->d), ch->ep->node, 16) < 0)
			return; /* ours wins: the peer answers it */
	}
	if (!req_take(ch)) {
		cm_req_refuse(ch, m);
		return;
	}
	ch->req_refusing = false;
	/* the peer starts over: whatever we had with it is gone */
	chan_reset(ch, PLX_ECONNRESET);
	ch->gen = m->gen;
	ch->peer_msg = m->msg_max;
	rc = gid_gate(ch, m, CH_RESOLVE);
	if (rc != PLX__GID_WAIT)
		cm_req_answer(ch, m, rc);
}

/* Answer the REQ @m: QPs to RTS and REP, or REJ with @rc (or with what
 * failed on the way). */
static void cm_req_answer(struct plx__rchan *ch, const struct plx__cm_msg *m,
			  int rc)
{
	if (!rc)
		rc = qps_create(ch, m->nqp);
	for (uint32_t k = 0; !rc && k < m->nqp; k++)
		rc = qp_connect(ch->qp[k], m, k);
	if (rc) {
		plx__log(ch->d->x, PLX_LOG_WARN,
			 "rdma: cannot answer a connection request (%s)",
			 plx_errname(rc));
		chan_reset(ch, rc);
		cm_send(ch, PLX__CM_REJ, rc);
		ch->state = CH_OFF;
		chan_failed(ch, rc);
		return;
	}
	if (cm_send(ch, PLX__CM_REP, 0)) {
		chan_failed(ch, PLX_ENOTCONN);
		return;
	}
	ch->state = CH_REP_SENT;
}

static void cm_rep(struct plx__rchan *ch, const struct plx__cm_msg *m)
{
	int rc = 0;

	if (ch->state != CH_REQ_SENT || m->gen != ch->gen)
		return; /* stale */
	if (m->nqp != ch->nqp)
		rc = PLX_EPROTO;
	ch->peer_msg = m->msg_max;
	if (!rc) {
		rc = gid_gate(ch, m, CH_REP_RESOLVE);
		if (rc == PLX__GID_WAIT)
			return;
	}
	cm_rep_answer(ch, m, rc);
}

/* Connect our QPs to the REP @m's and send RTU, or REJ with @rc (or with
 * what failed on the way). */
static void cm_rep_answer(struct plx__rchan *ch, const struct plx__cm_msg *m,
			  int rc)
{
	for (uint32_t k = 0; !rc && k < m->nqp; k++)
		rc = qp_connect(ch->qp[k], m, k);
	if (!rc)
		rc = cm_send(ch, PLX__CM_RTU, 0);
	if (rc == PLX_EHOSTUNREACH) {
		/* the peer's GID stays out of reach: another REQ would
		 * meet it again, so this session's ops go over TCP */
		cm_send(ch, PLX__CM_REJ, rc);
		chan_reset(ch, rc);
		ch->state = CH_OFF;
		chan_failed(ch, rc);
		return;
	}
	if (rc) {
		cm_send(ch, PLX__CM_REJ, rc < 0 ? rc : PLX_EPROTO);
		chan_failed(ch, rc);
		return;
	}
	ch->state = CH_READY;
	pump(ch);
}

static void cm_rtu(struct plx__rchan *ch, const struct plx__cm_msg *m)
{
	if (ch->state != CH_REP_SENT || m->gen != ch->gen)
		return;
	ch->state = CH_READY;
	pump(ch);
}

static void cm_rej(struct plx__rchan *ch, const struct plx__cm_msg *m)
{
	if (ch->state != CH_WAIT &&
	    ((ch->state != CH_REQ_SENT && ch->state != CH_REP_SENT &&
	      ch->state != CH_READY && ch->state != CH_RESOLVE &&
	      ch->state != CH_REP_RESOLVE) ||
	     m->gen != ch->gen))
		return;
	plx__log(ch->d->x, PLX_LOG_WARN,
		 "rdma: the peer refused the RDMA connection (%s): its ops go "
		 "over TCP",
		 plx_errname(m->status));
	chan_reset(ch, PLX_ECONNREFUSED);
	ch->state = CH_OFF;
	chan_failed(ch, PLX_ECONNREFUSED);
}

void plx__rdma_cm_input(struct plx_ep *ep, const uint8_t *buf, uint32_t len)
{
	struct plx__rchan *ch = ep->rdma;
	struct plx__cm_msg m;

	if (!ch) {
		/* we offered no RDMA, so no peer of ours sends this */
		plx__log(plx__r(ep->t->r), PLX_LOG_WARN,
			 "rdma: RDMA_CM frame on an endpoint without RDMA");
		return;
	}
	if (plx__cm_parse(&m, buf, len)) {
		plx__log(ch->d->x, PLX_LOG_WARN,
			 "rdma: malformed connection message dropped");
		ch->d->st.cm_bad++;
		return;
	}
	switch (m.kind) {
	case PLX__CM_REQ:
		cm_req(ch, &m);
		break;
	case PLX__CM_REP:
		cm_rep(ch, &m);
		break;
	case PLX__CM_RTU:
		cm_rtu(ch, &m);
		break;
	default:
		cm_rej(ch, &m);
		break;
	}
}

/* ---- endpoint hooks --------------------------------------------------- */

/* The receive pool can back RDMA sends: configured, and all of its memory
 * inside one registered region. */
static bool pool_usable(struct plx__rdma *d)
{
	struct plx_pool *p = d->cfg.recv_pool;
	size_t stride;
	uint8_t *b;
	int64_t idx;
	bool ok;

	if (!p)
		return false;
	b = plx_pool_get(p);
	if (!b) {
		plx__log(d->x, PLX_LOG_WARN,
			 "rdma: receive pool empty: sends go over TCP");
		return false;
	}
	stride = plx_pool_buf_size(p);
	idx = plx_pool_index(p, b);
	ok = idx >= 0 &&
	     plx__rdma_mr_find(d, (uintptr_t)(b - (size_t)idx * stride),
			       (uint64_t)plx_pool_count(p) * stride);
	plx_pool_put(p, b);
	if (!ok)
		plx__log(d->x, PLX_LOG_WARN,
			 "rdma: the receive pool's memory is not registered: "
			 "sends go over TCP");
	return ok;
}

void plx__rdma_ep_up(struct plx_ep *ep)
{
	struct plx__rdma *d = plx__rdma_get(ep->t->r);
	struct plx__rchan *ch = ep->rdma;

	if (!d)
		return;
	if (!ch) {
		ch = plx__zalloc(d->x, sizeof(*ch));
		if (!ch) {
			plx__log(d->x, PLX_LOG_ERROR,
				 "rdma: no memory for a channel: the endpoint "
				 "stays on TCP");
			return;
		}
		ch->d = d;
		ch->ep = ep;
		ch->msgs = pool_usable(d);
		ch->req_tokens = PLX__CM_REQ_BURST;
		ch->req_refill = plx__now_coarse();
		ch->next = d->chans;
		if (d->chans)
			d->chans->prev = ch;
		d->chans = ch;
		d->nlive++;
		ep->rdma = ch;
	}
	if (ch->state == CH_OFF)
		ch->state = CH_IDLE; /* a new session may try again */
	if (ch->state != CH_IDLE)
		return;
	/* the smaller node id connects; the other side waits for its REQ
	 * (or its REJ, should it fail) instead of sending a crossing one */
	if (memcmp(self_node(d), ep->node, 16) < 0)
		chan_connect(ch);
	else
		ch->state = CH_WAIT;
}

void plx__rdma_ep_down(struct plx_ep *ep, int status)
{
	struct plx__rchan *ch = ep->rdma;
	struct plx__op *o;

	if (!ch)
		return;
	while ((o = plx__oplist_pop(&ch->backlog))) {
		o->pieces_left = 1;
		op_piece(o, status);
	}
	chan_reset(ch, status);
}

bool plx__rdma_ep_busy(const struct plx_ep *ep)
{
	return ep->rdma && ep->rdma->nops;
}

void plx__rdma_ep_gone(struct plx_ep *ep)
{
	struct plx__rchan *ch = ep->rdma;
	struct plx__rdma *d;

	if (!ch)
		return;
	d = ch->d;
	chan_reset(ch, PLX_ECANCELED);
	if (ch->prev)
		ch->prev->next = ch->next;
	else
		d->chans = ch->next;
	if (ch->next)
		ch->next->prev = ch->prev;
	d->nlive--;
	ep->rdma = NULL;
	plx__free(d->x, ch);
}

/* ---- ops -------------------------------------------------------------- */

int plx__rdma_submit(struct plx_ep *ep, struct plx__op *o)
{
	struct plx__rchan *ch = ep->rdma;
	struct plx__rdma *d;
	uint64_t local;

	if (!ch || ch->state == CH_OFF)
		return 1;
	d = ch->d;
	/* device memory (o->dev): only by DMA through a GPUDirect MR, never
	 * read or written by the CPU (inline data, copies, receive slots):
	 * everything else is staged (transport/tcp/stage.c) */
	if (o->dev && o->kind == PLX__K_SEND)
		return 1;
	if (o->kind == PLX__K_SEND) {
		/* until the channel is up, sends queue (in order) on it: the
		 * peer's receive buffer size is known only then */
		if (ch->state == CH_READY && !send_fits(ch, o))
			return 1;
		goto take;
	}
	if (!o->rkey_ok)
		return 1;
	if (o->kind != PLX__K_WRITE && o->kind != PLX__K_WRITE_IMM &&
	    o->kind != PLX__K_READ)
		return 1;
	if (o->len > UINT32_MAX)
		return 1; /* one WR moves at most 2^31 bytes on most NICs */
	local = (uintptr_t)(o->kind == PLX__K_READ ? o->dst : o->src);
	/* a registered local buffer, or a write small enough to go inline */
	if (o->len && !plx__rdma_mr_find(d, local, o->len) &&
	    (o->kind == PLX__K_READ || o->len > RQP_SMALL || o->dev))
		return 1;
take:
	o->rch = ch;
	o->state = PLX__S_RDMA;
	o->pieces_left = 0; /* 0 while in the backlog */
	ch->nops++;
	plx__oplist_push(&ch->backlog, o);
	if (ch->state == CH_IDLE)
		chan_connect(ch);
	else if (!ep->corked)
		pump(ch);
	return 0;
}

void plx__rdma_kick(struct plx_ep *ep)
{
	if (ep->rdma)
		pump(ep->rdma);
}

void plx__rdma_flush(struct plx_ep *ep)
{
	if (ep->rdma)
		pump(ep->rdma);
}

void plx__rdma_cancel(struct plx__op *o, int status)
{
	struct plx__rchan *ch = o->rch;

	if (o->cancelled)
		return;
	if (!o->pieces_left) {
		/* still in the backlog: nothing was posted */
		plx__oplist_remove(&ch->backlog, o);
		o->pieces_left = 1;
		op_piece(o, status);
		return;
	}
	/* posted: its buffers belong to the NIC until its WRs complete */
	o->cancelled = 1;
	o->req.status = status;
}

/* The op's WRs are stuck: only flushing the QP gives its buffers back. */
static bool posted_expired(struct plx__rchan *ch, uint64_t now)
{
	bool hit = false;

	for (uint32_t k = 0; k < ch->nqp; k++) {
		struct plx__rqp *q = ch->qp[k];

		for (uint32_t i = q->sq_tail; i != q->sq_head; i++) {
			struct plx__op *o = q->sq[i % RQP_SQ].op;

			if (o && !o->cancelled && o->deadline <= now) {
				o->cancelled = 1;
				o->req.status = PLX_ETIMEDOUT;
				hit = true;
			}
		}
		for (struct plx__op *o = q->imm_wait.head; o; o = o->next)
			if (!o->cancelled && o->deadline <= now) {
				o->cancelled = 1;
				o->req.status = PLX_ETIMEDOUT;
				hit = true;
			}
	}
	return hit;
}

void plx__rdma_expire(struct plx_ep *ep, uint64_t now)
{
	struct plx__rchan *ch = ep->rdma;
	struct plx__op *o, *next;

	if (!ch)
		return;
	for (o = ch->backlog.head; o; o = next) {
		next = o->next;
		if (o->deadline <= now)
			plx__rdma_cancel(o, PLX_ETIMEDOUT);
	}
	/* a held message may have a place now (a slot or pool buffer
	 * came back without a receive being posted) */
	if (ch->state == CH_READY)
		pump(ch);
	if (ch->state == CH_READY && posted_expired(ch, now)) {
		plx__log(ch->d->x, PLX_LOG_WARN,
			 "rdma: an op timed out on its QP: the QPs are "
			 "flushed and reconnect on next use");
		chan_failed(ch, PLX_ECONNRESET);
		return;
	}
	/* no timer could be had for a held REQ or REP: the tick looks */
	if (resolving(ch) && !plx_timer_armed(&ch->d->resolve_timer))
		resolve_step(ch, now);
}

/* ---- teardown ------------------------------------------------------------- */

/* The WRs still on @q will never complete: their ops complete now, as
 * their flush would have made them. */
static void qp_fail_posted(struct plx__rqp *q)
{
	while (q->sq_tail != q->sq_head) {
		struct rslot *s = &q->sq[q->sq_tail++ % RQP_SQ];
		struct plx__op *o = s->op;

		if (!o)
			continue;
		s->op = NULL;
		if (!o->piece_err)
			o->piece_err = q->fail_status;
		if (s->kind == SLOT_LAST)
			op_piece(o, q->fail_status);
	}
	q->rq_posted = 0;
}

/*
 * Destroy retiring QPs whose flush is overdue, and free dead ones. A QP
 * destroyed before its flush finished may still have completions in the
 * CQ (from before, or made by the destroy), and their wr_id names its
 * slots: its memory stays, marked dead, until a poll has found the CQ
 * empty after the destroy (no completion of it can come after that).
 */
void plx__rchan_reap(struct plx__rdma *d, uint64_t now)
{
	struct plx__rqp *q, **pp, *over = NULL;

	for (pp = &d->dead; (q = *pp);) {
		if (q->dead_epoch < d->cq_empty) {
			*pp = q->next;
			d->nlive--;
			plx__free(d->x, q);
		} else {
			pp = &q->next;
		}
	}
	/* the overdue ones leave the list first: completing their ops runs
	 * callbacks, which may retire (and free) other QPs of the list */
	for (pp = &d->retiring; (q = *pp);) {
		if (now < q->drain_deadline) {
			pp = &q->next;
			continue;
		}
		*pp = q->next;
		q->next = over;
		over = q;
	}
	while ((q = over)) {
		over = q->next;
		plx__log(d->x, PLX_LOG_WARN,
			 "rdma: QP %u did not flush in time (%u send, %u "
			 "receive WRs left): destroyed",
			 q->qp->qp_num, q->sq_head - q->sq_tail, q->rq_posted);
		qp_fail_posted(q);
		qp_destroy(q);
		q->dead = true;
		q->dead_epoch = d->cq_empty;
		q->next = d->dead;
		d->dead = q;
	}
}

void plx__rchan_fini_all(struct plx__rdma *d)
{
	/* endpoints are gone (the reactor finishes with live() == 0), so
	 * only QPs can be left, and only if their flush never finished */
	while (d->chans) {
		struct plx__rchan *ch = d->chans;

		chan_reset(ch, PLX_ECANCELED);
		d->chans = ch->next;
		plx__free(d->x, ch);
	}
	while (d->retiring) {
		struct plx__rqp *q = d->retiring;

		d->retiring = q->next;
		qp_free(q);
	}
	/* the CQ goes with the transport: nothing can name these now */
	while (d->dead) {
		struct plx__rqp *q = d->dead;

		d->dead = q->next;
		plx__free(d->x, q);
	}
	d->nlive = 0;
}
