/* SPDX-License-Identifier: MIT */
/*
 * TCP transport internals: the transport, its connections and endpoints,
 * and the private layout of struct plx_op.
 *
 * Objects:
 *  - struct plx__tcp: one per reactor; its own epoll set (watched by the
 *    reactor fd), listeners, connections, endpoints, the unexpected-message
 *    slots, a discard buffer, and a periodic tick for deadlines.
 *  - struct plx__conn: one TCP connection: socket, handshake, receive state
 *    machine over a staging buffer, transmit queue, and the ops it carries
 *    that wait for an ACK or a response.
 *  - struct plx_ep: one peer (node id). Ops submitted before a connection
 *    is up wait on the endpoint's backlog. Handles merged after a
 *    simultaneous open forward to one canonical endpoint.
 */
#ifndef PLX_TCP_INTERNAL_H
#define PLX_TCP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "pollux/ep.h"
#include "pollux/tcp.h"
#include "reactor/internal.h"
#include "reactor/req.h"
#include "transport/rdma/common/rdma_ep.h"
#include "transport/tcp/handshake.h"
#include "transport/tcp/wire.h"
#include "transport/transport.h"

/*
 * Receive staging buffer per connection: a frame that fits (header and
 * payload up to 64 KiB) is read with one recv() and its payload copied out;
 * a second recv() for the rest of a frame cost about 1.4 us one-way on
 * loopback, more than copying 48 KiB (docs/benchmarks.md, "Stop 12"). A
 * connection in its handshake holds a small one until it is up.
 */
#define PLX__TCP_STAGE (64 * 1024)
#define PLX__TCP_STAGE_HS (4 * 1024)
/* payloads from here on do not fit the staging buffer with their header:
 * such a payload is read straight into place, with at most a header's
 * worth of what follows it (conn.c, rx_payload()), so that the next large
 * payload goes straight into place too */
#define PLX__TCP_BIG (PLX__TCP_STAGE - PLX__WIRE_HDR_MAX)
#define PLX__TCP_CTRL 64	      /* control frames queued per conn */
#define PLX__TCP_ACK_FRAMES 32	      /* a held-back ACK leaves after ... */
#define PLX__TCP_ACK_BYTES (4u << 20) /* ... this many frames or bytes */
/* an owed ACK rides on data frames with less payload than this; larger
 * ones get an ACK frame queued ahead of them, so that 64 or more header
 * bytes precede the payload in the send: the kernel's copy of a payload
 * that lands 1-63 bytes past its source address (mod 4096) took twice as
 * long on the hosts of stops 11 and 12, though not on stop 13's
 * (docs/benchmarks.md) */
#define PLX__TCP_RIDE_MAX (32 * 1024)
#define PLX__TCP_MAX_LISTEN 4
#define PLX__TCP_IOV 64 /* iovecs per writev */

struct plx__tcp;
struct plx__conn;

/* One queued outgoing frame: header bytes plus an optional payload. */
struct plx__txe {
	struct plx__txe *next, *prev; /* the connection's transmit queue */
	const uint8_t *hdr;
	const uint8_t *payload;
	uint64_t payload_len;
	uint64_t sent; /* bytes of header + payload already written */
	uint32_t hdr_len;
	uint8_t is_op; /* 1: embedded in a struct plx__op */
	/* 1: the PLX_HEADROOM bytes before payload are ours
	 * (PLX_OP_HEADROOM): the header is copied there when the frame
	 * starts to leave, and header and payload go as one buffer */
	uint8_t room;
};

enum plx__op_kind {
	PLX__K_SEND = 1,
	PLX__K_RECV,
	PLX__K_WRITE,
	PLX__K_WRITE_IMM,
	PLX__K_READ,
	PLX__K_RESOLVE,
};

enum plx__op_state {
	PLX__S_IDLE = 0,
	PLX__S_BACKLOG, /* on the endpoint, no connection yet */
	PLX__S_TX,	/* in a connection's transmit queue */
	PLX__S_WAIT,	/* sent; waiting for ACK / response */
	PLX__S_POSTED,	/* a receive waiting for a message */
	PLX__S_RXING,	/* a receive whose message is arriving */
	PLX__S_SPLIT,	/* split into pieces on several connections */
	PLX__S_RDMA,	/* on an RDMA channel (transport/rdma/chan.c) */
	PLX__S_STAGED,	/* device memory through bounce buffers (stage.c) */
};

/* Private layout of struct plx_op (checked against its size). */
struct plx__op {
	struct plx_req req;
	uint64_t timeout_ns;
	uint32_t flags; /* PLX_OP_* */
	uint32_t pad;
	/* private */
	struct plx__txe tx;
	struct plx__op *next; /* backlog / wait list / posted list */
	struct plx__op *prev;
	struct plx_ep *ep;
	struct plx__conn *conn;
	const void *src;
	void *dst;
	uint64_t len;
	uint64_t seq; /* ACK sequence (send/write) or read id */
	uint64_t deadline;
	uint64_t tag;
	uint64_t mask;
	uint64_t raddr;
	uint64_t rkey;
	uint32_t imm;
	uint32_t rrkey; /* RDMA: the descriptor's rkey (here for packing) */
	uint8_t kind;
	uint8_t state;
	uint8_t cancelled;
	uint8_t rkey_ok; /* the descriptor has an RDMA rkey (rrkey) */
	uint8_t dev;	 /* the local buffer is CUDA device memory */
	uint8_t hdr[48]; /* a data frame header, with a riding ACK */
	/* striping: a split op (parent) and its pieces (children) */
	struct plx__op *parent;	 /* set in a piece */
	struct plx__op *sibling; /* next piece of the same parent */
	uint32_t pieces_left;	 /* parent: pieces not yet complete */
	int piece_err;		 /* parent: first failure of a piece */
	/* RDMA (state PLX__S_RDMA): the channel (the descriptor's rkey is
	 * rrkey, above); pieces_left / piece_err count the op's outstanding
	 * completions */
	struct plx__rchan *rch;
	/* staging (state PLX__S_STAGED, transport/tcp/stage.c) */
	struct plx__xfer *xfer;
};

_Static_assert(sizeof(struct plx__op) <= sizeof(struct plx_op),
	       "struct plx_op private area too small");
_Static_assert(offsetof(struct plx__op, flags) ==
			       offsetof(struct plx_op, flags) &&
		       offsetof(struct plx__op, timeout_ns) ==
			       offsetof(struct plx_op, timeout_ns),
	       "struct plx_op public fields");
_Static_assert(PLX__WIRE_HDR_MAX <= PLX_HEADROOM,
	       "a frame header fits the headroom");

/* Every flag an op may carry (plx_op.flags); submitting any other bit is
 * PLX_EINVAL, on the owner and the _mt paths alike. */
#define PLX__OP_FLAGS PLX_OP_HEADROOM

/* Ops answered by a response (read, resolve) rather than an ACK. */
static inline int plx__op_has_response(const struct plx__op *o)
{
	return o->kind == PLX__K_READ || o->kind == PLX__K_RESOLVE;
}

static inline struct plx__op *plx__op(struct plx_op *op)
{
	return (struct plx__op *)(void *)op;
}

/* Doubly linked FIFO of ops. */
struct plx__oplist {
	struct plx__op *head;
	struct plx__op *tail;
	uint32_t n;
};

/* A control frame (ACK, NACK, READ_RESP, PONG, handshake...). */
struct plx__ctrl {
	struct plx__txe tx;
	uint8_t hdr[PLX__WIRE_HDR_MAX];
	uint8_t body[PLX_DESC_BYTES]; /* small payloads (RESOLVE_RESP) */
	struct plx__ctrl *free_next;
	struct plx__cslot *cs; /* bounce slots the payload is in (stage.c) */
};

enum plx__conn_state {
	PLX__C_CONNECTING = 1,
	PLX__C_HANDSHAKE,
	PLX__C_UP,
	PLX__C_DRAIN, /* lost a simultaneous open: finishing in-flight ops */
	PLX__C_DEAD,
};

enum plx__rx_state {
	PLX__RX_HDR = 0,
	PLX__RX_PAYLOAD,
};

struct plx__conn {
	struct plx__tcp *t;
	struct plx_ep *ep;	       /* NULL until attached */
	struct plx__conn *next, *prev; /* all conns of the transport */
	struct plx__conn *ep_next;     /* conns of the same endpoint */
	int fd;
	uint8_t state;
	uint8_t role;	/* 0: we connected, 1: we accepted */
	uint8_t index;	/* 0: primary; 1..: striped data connection */
	bool want_out;	/* EPOLLOUT armed */
	bool rx_paused; /* waiting for a receive or a slot */
	bool close_sent;
	bool close_rcvd;
	bool reap;	    /* dead: freed at the end of the socket phase */
	bool tx_dirty;	    /* frames queued, to flush at the next poll */
	bool rx_big;	    /* the last payload was large: read a header's worth
			     * between frames (conn.c, rx_payload()) */
	uint32_t stage_cap; /* bytes at stage: PLX__TCP_STAGE_HS, then _STAGE */
	bool unwatched;	    /* out of the epoll set: polled directly */
	bool hs_counted;    /* in t->nhandshakes */
	uint32_t hot_until; /* read directly until this socket-phase count */
	uint64_t hs_deadline;
	struct plx__hs hs;

	/* receive */
	uint8_t *stage;
	uint32_t rx_start, rx_end;
	uint8_t rx_state;
	struct plx__frame cur;
	uint8_t *rx_dst; /* NULL: discard */
	uint64_t rx_left;
	int rx_status;	       /* status to report when the frame ends */
	struct plx__op *rx_op; /* recv / read op the payload lands in */
	int rx_slot;	       /* unexpected slot, or -1 */
	uint8_t name[PLX__WIRE_NAME_MAX]; /* incoming RESOLVE_REQ */
	uint8_t descbuf[PLX_DESC_BYTES];  /* incoming RESOLVE_RESP */
	void *rx_poolbuf;		  /* msg_pool buffer being filled */
	uint64_t rx_seq;     /* id of the last sequenced frame processed */
	uint64_t ack_sent;   /* highest cumulative ACK sent (or queued) */
	uint64_t rx_unacked; /* payload bytes received since that ACK */
	bool ack_due;	     /* an ACK must leave at the next flush, on a
			      * data frame queued before it or on its own */
	bool rx_fresh;	     /* bytes arrived since the last tick */
	uint64_t last_rx_ns; /* the tick that saw bytes last (keepalive) */
	uint32_t pings_out;
	/* a WRITE landing in device memory through bounce slots (stage.c) */
	bool rx_cuda;
	struct plx__cslot *rx_cs;  /* the slot being filled, or NULL */
	uint64_t rx_room, rx_fill; /* bytes still fitting in it, in it */
	uint64_t rx_dev;	   /* device address of rx_cs's first byte */
	uint32_t stg_frames;	   /* staged frames whose copies are out */
	uint64_t stg_ack;	   /* while stg_frames: ACK at most this */
	int stg_err;		   /* a copy of frame stg_err_seq failed */
	uint64_t stg_err_seq;

	/* transmit */
	struct plx__txe *txq_head, *txq_tail;
	uint32_t txq_n;
	uint64_t tx_seq;	      /* last ACK sequence assigned */
	uint64_t tx_rid;	      /* last read id assigned */
	struct plx__oplist wait_ack;  /* send/write ops, by seq */
	struct plx__oplist wait_read; /* read ops, by id */
	struct plx__ctrl ctrl[PLX__TCP_CTRL];
	struct plx__ctrl *ctrl_free;
	uint32_t ctrl_used;
};

/* A message that arrived before a matching receive was posted. */
struct plx__unexp {
	struct plx__unexp *next;
	struct plx_ep *ep;
	uint64_t tag;
	uint32_t len;
	uint32_t slot;
};

struct plx_ep {
	struct plx__tcp *t;
	struct plx_ep *next, *prev; /* all endpoints */
	struct plx_ep *canon;	    /* self, or the endpoint merged into */
	struct plx__conn *conn;	    /* the connection ops go to, or NULL */
	struct plx__conn *conns;    /* every connection attached */
	uint8_t node[16];
	uint64_t epoch;
	bool known;    /* node/epoch learned from a handshake */
	uint32_t ev;   /* pending events, bit (1 << PLX_EP_*) */
	int ev_status; /* status for PLX_EP_DOWN */
	bool closing;
	bool up_reported; /* PLX_EP_CONNECTED/ACCEPTED given for this session */
	void *user;
	struct plx__oplist backlog; /* ops waiting for a connection */
	struct plx__oplist posted;  /* posted receives, in order */
	uint32_t inflight;	    /* ops queued, sent or awaiting acks */
	uint32_t corked;	    /* plx_ep_batch_begin() depth */
	struct plx__unexp *unexp_head, *unexp_tail;
	uint32_t nunexp;
	struct plx_req closed_req; /* delivers PLX_EP_CLOSED (ep.c) */
	/* where we connected to (to open striped data connections) */
	struct sockaddr_storage addr;
	uint32_t addrlen;
	bool stripes_opened;
	uint32_t rr;		 /* round-robin start for pieces */
	struct plx__rchan *rdma; /* RDMA channel, or NULL */
};

struct plx__tcp {
	struct plx_reactor *r;
	struct plx_tcp_config cfg;
	char cc[16]; /* cfg.congestion (TCP_CA_NAME_MAX), "" for none */
	bool have_key;
	uint8_t key[32];
	int epfd;
	int lfd[PLX__TCP_MAX_LISTEN];
	uint32_t nlisten;
	struct plx__conn *conns;
	uint32_t nconns;
	uint32_t nhandshakes; /* accepted conns still in their handshake */
	uint64_t hs_refused;  /* accepted and closed: max_handshakes */
	struct plx_ep *eps;
	uint32_t neps;
	struct plx_timer tick;
	uint64_t tick_ns;
	uint8_t *discard; /* PLX__TCP_STAGE bytes for dropped payloads */
	/* unexpected-message slots */
	uint8_t *slots;
	struct plx__unexp *unexp;
	uint32_t *slot_free;
	uint32_t nslot_free;
	uint32_t paused;     /* conns waiting for a receive or a slot */
	bool kick;	     /* retry paused conns in the next poll */
	bool ev_pending;     /* some endpoint has events to report */
	uint32_t nreap;	     /* dead conns awaiting free */
	uint32_t ndirty;     /* conns with tx_dirty */
	uint32_t npolls;     /* socket-phase count (direct polling cadence) */
	uint32_t arm_poll;   /* npolls at the last plx_reactor_arm() */
	uint32_t nunwatched; /* conns out of the epoll set */
	/* pieces of split ops */
	struct plx__op *pieces;
	uint32_t *piece_free;
	uint32_t npiece_free;
	/* ops on CUDA device memory (stage.c), set up at first use */
	struct plx__stage *stage;
	/* accept4() out of descriptors: listeners out of the epoll set
	 * until this timer fires (tcp.c, accept_all) */
	struct plx_timer accept_retry;
	bool accept_paused;
};

/* tcp.c */
struct plx__tcp *plx__tcp_get(struct plx_reactor *r);
void plx__tcp_watch(struct plx__conn *c, bool want_out);
void plx__tcp_rewatch(struct plx__conn *c);
void plx__tcp_open_stripes(struct plx_ep *ep);

/* conn.c */
struct plx__conn *plx__conn_new(struct plx__tcp *t, int fd, uint8_t role,
				uint8_t state);
void plx__conn_fail(struct plx__conn *c, int status);
void plx__conn_free(struct plx__conn *c);
void plx__conn_hs_done(struct plx__conn *c);
void plx__conn_reap(struct plx__conn *c);
void plx__conn_unqueue(struct plx__conn *c, struct plx__txe *e);
int plx__tcp_resume_all(struct plx__tcp *t);
void plx__tcp_reap(struct plx__tcp *t);
int plx__conn_on_event(struct plx__conn *c, uint32_t events);
int plx__conn_flush(struct plx__conn *c);
/* plx__conn_submit() - queue frame @e on @c and send it now (straight
 * out when it is the connection's only frame), unless @hold (a batch) or
 * a full socket keeps it queued. Return: 0, or the connection's failure. */
int plx__conn_submit(struct plx__conn *c, struct plx__txe *e, bool hold);
void plx__conn_drain(struct plx__conn *c);
void plx__conn_queue(struct plx__conn *c, struct plx__txe *e);
struct plx__ctrl *plx__conn_ctrl(struct plx__conn *c);
int plx__conn_send_ctrl(struct plx__conn *c, const struct plx__frame *f,
			const void *payload, uint64_t len);
int plx__conn_rx(struct plx__conn *c);
int plx__conn_resume(struct plx__conn *c);
void plx__conn_mark_dirty(struct plx__conn *c);
void plx__conn_ack_now(struct plx__conn *c);

/*
 * plx__conn_ride_ack() - the cumulative ACK a data frame being queued on
 * @c now should carry (PLX__F_ACK), or 0 for none: the peer takes riding
 * ACKs and one is held back or due. Counted as sent.
 */
uint64_t plx__conn_ride_ack(struct plx__conn *c);

/* plx__conn_ack_ahead() - queue the ACK @c owes, if any, as an ACK frame
 * now (ahead of a large data frame about to be queued). */
void plx__conn_ack_ahead(struct plx__conn *c);
void plx__tcp_region_gone(struct plx__tcp *t, uint64_t addr, uint64_t len);
void plx__tcp_flush_dirty(struct plx__tcp *t);
void plx__conn_start_handshake(struct plx__conn *c);

void plx__conn_ack_soon(struct plx__conn *c);

/* stage.c: ops on CUDA device memory through bounce slots */
int plx__stage_check(struct plx__tcp *t, const struct plx__op *o,
		     bool gpudirect_may);
void plx__stage_start(struct plx_ep *ep, struct plx__op *o);
void plx__stage_cancel(struct plx__op *o, int status);
void plx__stage_ep_down(struct plx_ep *ep, int status);
void plx__stage_expire(struct plx__tcp *t, uint64_t now);
void plx__stage_fini(struct plx__tcp *t);
int plx__stage_rx_begin(struct plx__conn *c, uint64_t addr);
bool plx__stage_rx_slot(struct plx__conn *c);
void plx__stage_rx_landed(struct plx__conn *c, uint64_t n);
void plx__stage_rx_frame(struct plx__conn *c, uint64_t prev);
void plx__stage_rx_drop(struct plx__conn *c, int status);
int plx__stage_read_req(struct plx__conn *c, const struct plx__frame *f);
void plx__stage_conn_gone(struct plx__conn *c);

/* ep.c */
struct plx_ep *plx__ep_new(struct plx__tcp *t);
void plx__ep_attach(struct plx__conn *c);
void plx__ep_conn_lost(struct plx_ep *ep, struct plx__conn *c, int status);
void plx__ep_kick(struct plx_ep *ep);
void plx__ep_retire(struct plx_ep *ep, struct plx__conn *c);
void plx__op_done(struct plx__tcp *t, struct plx__op *o, int status,
		  uint64_t bytes);
void plx__oplist_push(struct plx__oplist *l, struct plx__op *o);
void plx__oplist_push_front(struct plx__oplist *l, struct plx__op *o);
void plx__oplist_remove(struct plx__oplist *l, struct plx__op *o);
struct plx__op *plx__oplist_pop(struct plx__oplist *l);
struct plx__op *plx__ep_match(struct plx_ep *ep, uint64_t tag);
void plx__tcp_expire(struct plx__tcp *t, uint64_t now);
int plx__tcp_events(struct plx__tcp *t);
void plx__ep_maybe_free(struct plx_ep *ep);
int plx__slot_get(struct plx__tcp *t);
void plx__unexp_push(struct plx_ep *ep, uint64_t tag, uint32_t len, int slot);

#endif /* PLX_TCP_INTERNAL_H */
