/* SPDX-License-Identifier: MIT */
/*
 * fuzz_conn: a whole TCP connection's receive path fed a hostile peer's
 * byte stream. The codec targets (fuzz_wire, fuzz_handshake, fuzz_desc,
 * fuzz_rdma_cm) stop at the parsers; this one drives what the transport
 * does with parsed frames (transport/tcp/conn.c): writes into registered
 * memory, READ_REQ, RESOLVE_REQ, SEND into posted receives, the message
 * pool and the unexpected slots, ACK / NACK / READ_RESP / RESOLVE_RESP for
 * the victim's own ops, PING, CLOSE, RDMA_CM, and frames split anywhere.
 *
 * Per input: a fresh reactor (the victim) with the TCP transport, four
 * registered regions in a page arena fenced by PROT_NONE guard pages, and
 * one end of a socketpair attached as an accepted connection. The harness
 * plays the peer on the other end: a valid HELLO and READY (no key), then,
 * once the endpoint is up and the victim has read, resolve, send, write
 * and write_imm ops outstanding towards it, the input.
 *
 * Input: byte 0 is options, the rest the peer's stream.
 *   bit 0  raw: the input carries the handshake too (nothing is prepended)
 *   bit 1  message-pool receive mode (msg_cb) instead of unexpected slots
 *   bit 2  with bit 1: the handler keeps its buffers (pool runs dry)
 *   bit 3  post two receives before the stream
 *   bits 4-6  write the stream in chunks of chunks[bits] bytes
 *   bit 7  keep the input's header CRCs (otherwise the harness fixes them)
 * Keys and addresses: the harness cannot know the victim's random keys, so
 * in each WRITE, WRITE_IMM and READ_REQ header it can frame, key 1..4 is
 * replaced by region 0..3's key and an address below the arena size by
 * arena + address; other values go through as they are (wrong keys, wild
 * addresses). The header is re-encoded, so its CRC matches. Mutations
 * rarely keep a CRC right, so unless bit 7 is set each header's CRC is
 * recomputed (plx__wire_seal) before it is framed: the fuzzer then reaches
 * what comes after the CRC check.
 *
 * Invariants, against an independent model of the registry (key, range,
 * access, in plx_mem_lookup's order):
 *  - memory: a byte of the arena changes only inside a write the model
 *    allows, to a value such a write carried (read-only, write-less,
 *    unregistered and guard memory never change);
 *  - every frame the victim sends parses; each READ_RESP answers the next
 *    READ_REQ with its id, the model's status and, on success, bytes the
 *    region held; each RESOLVE_RESP the next RESOLVE_REQ (the registered
 *    descriptor, or PLX_ENOENT); each PONG the next PING; a NACK names a
 *    refused write with the model's status (or a SEND too big for its
 *    buffer); an ACK never covers a refused write not NACKed before it,
 *    nor more frames than were sent; no HELLO, READY or RDMA_CM later;
 *  - write_imm notifications: the allowed WRITE_IMMs in order, data in
 *    place when the handler runs;
 *  - the victim's ops complete exactly once; a success is backed by the
 *    peer's frames (the READ_RESP / RESOLVE_RESP / ACK / SEND it claims);
 *  - received messages carry a SEND's tag and bytes;
 *  - after plx_tcp_shutdown() and deregistration, plx_reactor_fini()
 *    returns 0 within a bounded number of polls (nothing leaks, no hang).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "fuzz/wire_check.h"
#include "pollux/pollux.h"
#include "pollux/tcp.h"
#include "transport/tcp/tcp_internal.h"
#include "transport/tcp/wire.h"

#define PAGE 4096u
#define ARENA_PAGES 7u
#define ARENA_SIZE (ARENA_PAGES * PAGE)
#define NREG 4
#define MAX_FRAMES (65536 / PLX__WIRE_BASE + 1)
#define OUT_MAX (8u << 20)
#define POOL_BUFS 2
#define POOL_BUF 128

/* ---- the victim's registry, as the model sees it ---------------------- */

struct mreg {
	uint32_t off, len, access;
	const char *name;
	uint64_t key;
	struct plx_region reg;
};

/* page 0 and 6: guards; page 4 and the second half of page 5: mapped but
 * never registered */
static struct mreg regs[NREG] = {
	{1 * PAGE, PAGE, PLX_ACCESS_ALL, "rw", 0, {0}},
	{2 * PAGE, PAGE, PLX_ACCESS_REMOTE_READ, "ro", 0, {0}},
	{3 * PAGE, PAGE, PLX_ACCESS_REMOTE_WRITE, "wo", 0, {0}},
	{5 * PAGE, PAGE / 2, PLX_ACCESS_ALL, "half", 0, {0}},
};

static uint8_t *arena;
static uint8_t orig[ARENA_SIZE];

static int model_lookup(uint64_t addr, uint64_t len, uint64_t key,
			uint32_t access)
{
	uint64_t base;
	int i;

	for (i = 0; i < NREG; i++)
		if (key && regs[i].key == key)
			break;
	if (i == NREG)
		return PLX_EKEYREJECTED;
	base = (uint64_t)(uintptr_t)(arena + regs[i].off);
	if (addr < base || len > regs[i].len || addr - base > regs[i].len - len)
		return PLX_EFAULT;
	if (access & ~regs[i].access)
		return PLX_EACCES;
	return 0;
}

/* ---- the peer's stream, framed by the harness ------------------------- */

struct mframe {
	struct plx__frame f;
	const uint8_t *payload; /* in tx[] */
	uint32_t avail;		/* payload bytes present in the stream */
	uint32_t seq;		/* SEND/WRITE/WRITE_IMM: the victim's count */
	int model;		/* WRITE*, READ_REQ: model_lookup() */
};

static uint8_t *tx;
static size_t txn;
static struct mframe frames[MAX_FRAMES];
static uint32_t nframes, first_data, nseq;

static bool full(const struct mframe *m)
{
	return m->avail == m->f.payload_len;
}

static bool data_frame(uint32_t i)
{
	return i >= first_data;
}

/* Does some allowed write put @v at @addr? */
static bool written(uint64_t addr, uint8_t v)
{
	uint32_t i;

	for (i = first_data; i < nframes; i++) {
		const struct mframe *m = &frames[i];

		if ((m->f.opcode != PLX__OP_WRITE &&
		     m->f.opcode != PLX__OP_WRITE_IMM) ||
		    m->model != 0)
			continue;
		if (addr >= m->f.addr && addr - m->f.addr < m->avail &&
		    m->payload[addr - m->f.addr] == v)
			return true;
	}
	return false;
}

/* A byte of the arena holds what it held, or what an allowed write put. */
static bool arena_byte_ok(uint32_t off, uint8_t v)
{
	return v == orig[off] || written((uint64_t)(uintptr_t)(arena + off), v);
}

/*
 * Frame the input, translating keys and addresses (see the top), into tx[]
 * after @prefix bytes already there, and record the model of each frame.
 */
static void frame_input(const uint8_t *in, size_t n, size_t prefix, bool raw,
			bool seal)
{
	uint8_t hdr[PLX__WIRE_HDR_MAX];
	size_t off = 0;
	uint64_t ids = 0;

	txn = prefix;
	nframes = 0;
	nseq = 0;
	while (off < n && nframes < MAX_FRAMES) {
		struct mframe *m = &frames[nframes];
		struct plx__frame *f = &m->f;
		int hs = n - off >= 4 ? plx__wire_hdr_size_flags(in[off + 2],
								 in[off + 3]) :
					-1;
		size_t rest;
		int hl;

		if (hs <= 0 || n - off < (size_t)hs)
			break;
		memcpy(hdr, in + off, (size_t)hs);
		if (seal)
			plx__wire_seal(hdr);
		hl = plx__wire_parse(f, hdr, (size_t)hs, UINT32_MAX);
		if (hl <= 0)
			break;
		/* a well-behaved sender's ids: 1, 2, 3, ... (an id not above
		 * the last one closes the connection: test_tcp_misbehaving_peer) */
		if (f->opcode == PLX__OP_SEND || f->opcode == PLX__OP_WRITE ||
		    f->opcode == PLX__OP_WRITE_IMM)
			f->id = ++ids;
		if (f->opcode == PLX__OP_WRITE ||
		    f->opcode == PLX__OP_WRITE_IMM ||
		    f->opcode == PLX__OP_READ_REQ) {
			if (f->key >= 1 && f->key <= NREG)
				f->key = regs[f->key - 1].key;
			if (f->addr < ARENA_SIZE)
				f->addr += (uint64_t)(uintptr_t)arena;
		}
		FUZZ_CHECK(plx__wire_encode(f, tx + txn) == hl);
		txn += (size_t)hl;
		off += (size_t)hl;
		rest = n - off;
		m->avail = rest < f->payload_len ? (uint32_t)rest :
						   f->payload_len;
		m->payload = tx + txn;
		memcpy(tx + txn, in + off, m->avail);
		txn += m->avail;
		off += m->avail;
		m->seq = 0;
		m->model = 0;
		nframes++;
	}
	memcpy(tx + txn, in + off, n - off); /* what did not frame: as is */
	txn += n - off;

	/* raw: the victim's handshake takes the first two frames, and only
	 * a HELLO then a READY lets anything after them through */
	first_data = 0;
	if (raw)
		first_data =
			nframes >= 2 && frames[0].f.opcode == PLX__OP_HELLO &&
					frames[1].f.opcode == PLX__OP_READY ?
				2 :
				MAX_FRAMES;
	for (uint32_t i = first_data; i < nframes; i++) {
		struct mframe *m = &frames[i];
		uint8_t op = m->f.opcode;

		if (op == PLX__OP_SEND || op == PLX__OP_WRITE ||
		    op == PLX__OP_WRITE_IMM)
			m->seq = ++nseq;
		if (op == PLX__OP_WRITE || op == PLX__OP_WRITE_IMM)
			m->model = model_lookup(m->f.addr, m->f.payload_len,
						m->f.key,
						PLX_ACCESS_REMOTE_WRITE);
		else if (op == PLX__OP_READ_REQ)
			m->model = model_lookup(m->f.addr, m->f.len, m->f.key,
						PLX_ACCESS_REMOTE_READ);
	}
}

/* Next data frame from index *@i with opcode @op, or NULL. */
static const struct mframe *next_of(uint32_t *i, uint8_t op)
{
	for (; *i < nframes; (*i)++)
		if (data_frame(*i) && frames[*i].f.opcode == op)
			return &frames[(*i)++];
	return NULL;
}

/* ---- the victim ------------------------------------------------------- */

enum {
	OP_R1,
	OP_R2,
	OP_RESOLVE,
	OP_R3,
	OP_SEND,
	OP_WRITE,
	OP_WIMM,
	OP_P1,
	OP_P2,
	OP_P3,
	NOPS
};

struct vop {
	struct plx_op op;
	int done; /* completions seen */
	bool submitted;
	uint32_t len; /* buffer / message length */
	uint8_t *buf; /* heap, exactly len bytes (ASan sees overruns) */
	uint32_t id;  /* read id or ACK sequence it goes out with */
};

static struct plx_reactor r;
static struct plx_ep *ep;
static struct vop ops[NOPS];
static struct plx_desc peer_desc, resolved;
static struct plx_pool pool;
static void *pool_mem;
static void *held[POOL_BUFS + 1];
static int nheld;
static bool hold_bufs, ops_tried;
static uint32_t imm_next, msg_next;
static int sv[2] = {-1, -1};
static uint8_t *out;
static size_t outn;
static bool out_eof;

static void on_done(struct plx_reactor *rr, struct plx_req *req)
{
	struct vop *v = req->user;

	(void)rr;
	v->done++;
}

static void on_event(struct plx_reactor *rr, struct plx_ep *e, int event,
		     int status, void *arg)
{
	(void)rr;
	(void)arg;
	FUZZ_CHECK(status <= 0);
	if (event == PLX_EP_ACCEPTED && !ep)
		ep = e;
	if (event == PLX_EP_CLOSED && e == ep)
		ep = NULL;
}

/* write_imm notifications: the allowed WRITE_IMMs, in order, in place */
static void on_imm(struct plx_reactor *rr, struct plx_ep *e, uint32_t imm,
		   uint64_t addr, uint64_t len, void *arg)
{
	const struct mframe *m = NULL;

	(void)rr;
	(void)e;
	(void)arg;
	while (imm_next < nframes) {
		const struct mframe *c = &frames[imm_next++];

		if (c->f.opcode == PLX__OP_WRITE_IMM && c->model == 0 &&
		    full(c) && data_frame((uint32_t)(c - frames))) {
			m = c;
			break;
		}
	}
	FUZZ_CHECK(m != NULL);
	FUZZ_CHECK(m->f.imm == imm && m->f.addr == addr &&
		   m->f.payload_len == len);
	FUZZ_CHECK(memcmp((const void *)(uintptr_t)addr, m->payload, len) == 0);
}

/* A message with @tag and @len bytes at @buf is one of the SENDs, in
 * order from *@from. */
static bool is_sent(uint32_t *from, uint64_t tag, const void *buf, uint64_t len)
{
	for (uint32_t i = *from; i < nframes; i++) {
		const struct mframe *m = &frames[i];

		if (data_frame(i) && m->f.opcode == PLX__OP_SEND && full(m) &&
		    m->f.tag == tag && m->f.payload_len == len &&
		    memcmp(m->payload, buf, len) == 0) {
			*from = i + 1;
			return true;
		}
	}
	return false;
}

static void on_msg(struct plx_reactor *rr, struct plx_ep *e, uint64_t tag,
		   void *buf, size_t len, void *arg)
{
	(void)rr;
	(void)e;
	(void)arg;
	FUZZ_CHECK(len <= plx_pool_buf_size(&pool));
	FUZZ_CHECK(is_sent(&msg_next, tag, buf, len));
	if (hold_bufs && nheld < POOL_BUFS)
		held[nheld++] = buf;
	else
		FUZZ_CHECK(plx_pool_put(&pool, buf) == 0);
}

static void drain_out(void)
{
	for (;;) {
		ssize_t k;

		if (outn == OUT_MAX) {
			uint8_t sink[4096];

			k = recv(sv[1], sink, sizeof(sink), MSG_DONTWAIT);
		} else {
			k = recv(sv[1], out + outn, OUT_MAX - outn,
				 MSG_DONTWAIT);
			if (k > 0)
				outn += (size_t)k;
		}
		if (k == 0)
			out_eof = true;
		if (k <= 0)
			return;
	}
}

static int pump(void)
{
	int n = plx_reactor_poll(&r);

	drain_out();
	return n;
}

/* Poll until @quiet polls in a row found nothing (at most @max polls). */
static void settle(int quiet, int max)
{
	int idle = 0;

	for (int i = 0; i < max && idle < quiet; i++)
		idle = pump() ? 0 : idle + 1;
}

static void vop_init(struct vop *v, uint32_t len)
{
	memset(v, 0, sizeof(*v));
	plx_op_init(&v->op, on_done, v);
	v->len = len;
	v->buf = malloc(len ? len : 1);
	FUZZ_CHECK(v->buf != NULL);
	memset(v->buf, 0xee, len);
}

static void post_recv(int k, uint64_t tag, uint64_t mask)
{
	if (plx_ep_recv(ep, &ops[k].op, ops[k].buf, ops[k].len, tag, mask) == 0)
		ops[k].submitted = true;
}

/* The victim's own ops towards the peer: ids in submission order. */
static void submit_ops(void)
{
	static const char peer_name[] = "peer-region";

	ops_tried = true;
	if (plx_ep_read(ep, &ops[OP_R1].op, ops[OP_R1].buf, ops[OP_R1].len,
			&peer_desc, 0) == 0)
		ops[OP_R1].submitted = true;
	if (plx_ep_read(ep, &ops[OP_R2].op, ops[OP_R2].buf, ops[OP_R2].len,
			&peer_desc, 64) == 0)
		ops[OP_R2].submitted = true;
	if (plx_ep_resolve(ep, &ops[OP_RESOLVE].op, peer_name, &resolved) == 0)
		ops[OP_RESOLVE].submitted = true;
	if (plx_ep_read(ep, &ops[OP_R3].op, ops[OP_R3].buf, ops[OP_R3].len,
			&peer_desc, 8) == 0) {
		ops[OP_R3].submitted = true;
		FUZZ_CHECK(plx_op_cancel(&r, &ops[OP_R3].op) == 0);
	}
	if (plx_ep_send(ep, &ops[OP_SEND].op, ops[OP_SEND].buf,
			ops[OP_SEND].len, 5) == 0)
		ops[OP_SEND].submitted = true;
	if (plx_ep_write(ep, &ops[OP_WRITE].op, ops[OP_WRITE].buf,
			 ops[OP_WRITE].len, &peer_desc, 128) == 0)
		ops[OP_WRITE].submitted = true;
	if (plx_ep_write_imm(ep, &ops[OP_WIMM].op, ops[OP_WIMM].buf,
			     ops[OP_WIMM].len, &peer_desc, 256, 0xabcd) == 0)
		ops[OP_WIMM].submitted = true;
}

/* ---- checks ----------------------------------------------------------- */

/* The peer's frame that backs a successful read of @len bytes with @id. */
static bool read_backed(uint64_t id, const uint8_t *buf, uint32_t len)
{
	for (uint32_t i = first_data; i < nframes; i++) {
		const struct mframe *m = &frames[i];

		if (m->f.opcode == PLX__OP_READ_RESP && m->f.id == id)
			/* the first response for the id settles the read */
			return m->f.status == 0 && m->f.payload_len == len &&
			       full(m) && memcmp(m->payload, buf, len) == 0;
	}
	return false;
}

static bool acked(uint64_t seq)
{
	for (uint32_t i = first_data; i < nframes; i++)
		if ((frames[i].f.opcode == PLX__OP_ACK &&
		     frames[i].f.seq >= seq) ||
		    ((frames[i].f.flags & PLX__F_ACK) &&
		     frames[i].f.ack >= seq))
			return true;
	return false;
}

static void check_ops(void)
{
	for (int k = 0; k < NOPS; k++) {
		struct vop *v = &ops[k];
		struct plx_req *q = &v->op.req;

		FUZZ_CHECK(v->done == (v->submitted ? 1 : 0));
		if (!v->submitted)
			continue;
		FUZZ_CHECK(q->status <= 0);
		if (q->status < 0) {
			FUZZ_CHECK(q->bytes == 0);
			continue;
		}
		switch (k) {
		case OP_R1:
			FUZZ_CHECK(q->bytes == v->len);
			FUZZ_CHECK(read_backed(1, v->buf, v->len));
			break;
		case OP_R2:
			FUZZ_CHECK(q->bytes == v->len);
			FUZZ_CHECK(read_backed(2, v->buf, v->len));
			break;
		case OP_RESOLVE: {
			uint32_t i = first_data;
			const struct mframe *m;
			struct plx_desc d;

			while ((m = next_of(&i, PLX__OP_RESOLVE_RESP)) &&
			       m->f.id != 3)
				;
			FUZZ_CHECK(m && m->f.status == 0 && full(m));
			FUZZ_CHECK(plx_desc_parse(&d, m->payload, m->avail) ==
				   PLX_DESC_BYTES);
			FUZZ_CHECK(memcmp(&d, &resolved, sizeof(d)) == 0);
			break;
		}
		case OP_R3:
			FUZZ_CHECK(0); /* cancelled before any poll */
			break;
		case OP_SEND:
		case OP_WRITE:
		case OP_WIMM:
			FUZZ_CHECK(q->bytes == v->len);
			FUZZ_CHECK(acked(k - OP_SEND + 1));
			break;
		default: /* receives: check_recv() */
			FUZZ_CHECK(q->bytes <= v->len);
			break;
		}
	}
	FUZZ_CHECK(!ops[OP_R3].submitted ||
		   ops[OP_R3].op.req.status == PLX_ECANCELED);
}

/* A received message: some SEND with a matching tag carried these bytes.
 * (Receives complete in their own order, so each is searched alone.) */
static void check_recv(int k, uint64_t tag, uint64_t mask)
{
	struct vop *v = &ops[k];
	bool found = false;

	if (!v->submitted || v->op.req.status != 0)
		return;
	for (uint32_t i = first_data; i < nframes && !found; i++) {
		const struct mframe *m = &frames[i];

		found = m->f.opcode == PLX__OP_SEND && full(m) &&
			(m->f.tag & mask) == (tag & mask) &&
			m->f.payload_len == v->op.req.bytes &&
			memcmp(m->payload, v->buf, m->avail) == 0;
	}
	FUZZ_CHECK(found);
}

/* The victim's output: every frame valid and answering the model. */
static void check_output(void)
{
	uint32_t rd = 0, rs = 0, pg = 0, last_nack = 0;
	uint64_t last_ack = 0;
	uint32_t nack_seen[MAX_FRAMES / 8 + 1], seen[256] = {0};
	size_t off = 0;
	int idx = 0;

	memset(nack_seen, 0, sizeof(nack_seen));
	while (off < outn) {
		struct plx__frame f;
		const uint8_t *p;
		const struct mframe *m;
		int hl = plx__wire_parse(&f, out + off, outn - off, UINT32_MAX);

		if (hl == 0)
			break; /* cut off when the connection died */
		FUZZ_CHECK(hl > 0);
		FUZZ_CHECK(plx_test_frame_valid(&f, UINT32_MAX));
		if (outn - off - (size_t)hl < f.payload_len)
			break;
		p = out + off + hl;
		off += (size_t)hl + f.payload_len;
		seen[f.opcode]++;
		if (idx++ == 0) {
			FUZZ_CHECK(f.opcode == PLX__OP_HELLO);
			continue;
		}
		switch (f.opcode) {
		case PLX__OP_HELLO:
		case PLX__OP_RDMA_CM:
			FUZZ_CHECK(0);
			break;
		case PLX__OP_READY:
			FUZZ_CHECK(idx == 2);
			break;
		case PLX__OP_READ_RESP:
			m = next_of(&rd, PLX__OP_READ_REQ);
			FUZZ_CHECK(m != NULL && m->f.id == f.id);
			FUZZ_CHECK(f.status == m->model);
			if (f.status)
				break;
			FUZZ_CHECK(f.payload_len == m->f.len);
			for (uint32_t j = 0; j < f.payload_len; j++)
				FUZZ_CHECK(arena_byte_ok(
					(uint32_t)(m->f.addr + j -
						   (uint64_t)(uintptr_t)arena),
					p[j]));
			break;
		case PLX__OP_RESOLVE_RESP: {
			char name[PLX__WIRE_NAME_MAX + 1];
			struct plx_desc d;
			int i;

			m = next_of(&rs, PLX__OP_RESOLVE_REQ);
			FUZZ_CHECK(m != NULL && full(m) && m->f.id == f.id);
			memcpy(name, m->payload, m->avail);
			name[m->avail] = 0;
			for (i = 0; i < NREG; i++)
				if (strlen(name) == m->avail &&
				    strcmp(name, regs[i].name) == 0)
					break;
			if (i == NREG) {
				FUZZ_CHECK(f.status == PLX_ENOENT);
				break;
			}
			FUZZ_CHECK(f.status == 0);
			FUZZ_CHECK(plx_desc_parse(&d, p, f.payload_len) ==
				   PLX_DESC_BYTES);
			FUZZ_CHECK(d.key == regs[i].key &&
				   d.addr ==
					   (uint64_t)(uintptr_t)(arena +
								 regs[i].off) &&
				   d.len == regs[i].len &&
				   d.access == regs[i].access);
			break;
		}
		case PLX__OP_PONG:
			m = next_of(&pg, PLX__OP_PING);
			FUZZ_CHECK(m != NULL && m->f.id == f.id);
			break;
		case PLX__OP_NACK: {
			uint32_t i;

			FUZZ_CHECK(f.id > last_nack && f.id <= nseq);
			last_nack = (uint32_t)f.id;
			for (i = first_data; frames[i].seq != f.id; i++)
				;
			m = &frames[i];
			if (m->f.opcode == PLX__OP_SEND)
				FUZZ_CHECK(f.status == PLX_EMSGSIZE ||
					   f.status == PLX_ECANCELED);
			else
				FUZZ_CHECK(m->model != 0 &&
					   f.status == m->model);
			nack_seen[f.id / 32] |= 1u << (f.id % 32);
			break;
		}
		case PLX__OP_ACK:
			FUZZ_CHECK(f.seq > last_ack && f.seq <= nseq);
			for (uint32_t i = first_data; i < nframes; i++) {
				m = &frames[i];
				if (!m->seq || m->seq <= last_ack ||
				    m->seq > f.seq ||
				    m->f.opcode == PLX__OP_SEND)
					continue;
				if (m->model)
					FUZZ_CHECK(nack_seen[m->seq / 32] &
						   (1u << (m->seq % 32)));
			}
			last_ack = f.seq;
			break;
		default:
			/* the victim's own ops, CLOSE */
			break;
		}
	}
	if (getenv("FUZZ_CONN_TRACE")) {
		fprintf(stderr,
			"fuzz_conn: %u peer frames (%u data), victim "
			"sent:",
			nframes,
			nframes > first_data ? nframes - first_data : 0);
		for (int i = 0; i < 256; i++)
			if (seen[i])
				fprintf(stderr, " op%02x=%u", i, seen[i]);
		fprintf(stderr, "; ops:");
		for (int k = 0; k < NOPS; k++)
			if (ops[k].submitted)
				fprintf(stderr, " %d:%s", k,
					plx_errname(ops[k].op.req.status));
		fprintf(stderr, "\n");
	}
}

static void check_memory(void)
{
	for (uint32_t o = 0; o < ARENA_SIZE; o++) {
		if (o < PAGE || o >= (ARENA_PAGES - 1) * PAGE)
			continue; /* guard pages: PROT_NONE */
		if (arena[o] != orig[o])
			FUZZ_CHECK(arena_byte_ok(o, arena[o]));
	}
}

/* ---- one input -------------------------------------------------------- */

static void setup_once(void)
{
	arena = mmap(NULL, ARENA_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		     -1, 0);
	FUZZ_CHECK(arena != MAP_FAILED);
	FUZZ_CHECK(mprotect(arena + PAGE, (ARENA_PAGES - 2) * PAGE,
			    PROT_READ | PROT_WRITE) == 0);
	for (uint32_t i = 0; i < ARENA_SIZE; i++)
		orig[i] = (uint8_t)(i * 131u + (i >> 12) * 17u + 1u);
	tx = malloc(2 * PLX__WIRE_HDR_MAX + 65536 + 4096);
	out = malloc(OUT_MAX);
	pool_mem = aligned_alloc(
		64, (plx_pool_memsize(POOL_BUF, POOL_BUFS) + 63) & ~(size_t)63);
	FUZZ_CHECK(tx && out && pool_mem);
}

/* Our HELLO (the connecting side) and a READY without a key. */
static size_t peer_handshake(uint8_t *b)
{
	struct plx__frame f;
	int n, m;

	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_HELLO;
	f.hello.version = PLX__WIRE_VERSION;
	f.hello.role = 0;
	f.hello.caps = PLX__CAP_ALL;
	memcpy(f.hello.node_id, "fuzz-conn-peer!!", 16);
	f.hello.epoch = 0x77;
	memset(f.hello.nonce, 0x3c, sizeof(f.hello.nonce));
	n = plx__wire_encode(&f, b);
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_READY;
	m = plx__wire_encode(&f, b + n);
	FUZZ_CHECK(n > 0 && m > 0);
	return (size_t)(n + m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t chunks[8] = {65536, 1, 2, 3, 7, 100, 509, 4096};
	static bool once;
	struct plx_reactor_config rcfg;
	struct plx_tcp_config cfg;
	struct plx__conn *c;
	uint8_t opt;
	bool raw;
	size_t prefix, sent;
	uint32_t chunk;
	int stall, i, rc;

	if (size < 1 || size > 65536)
		return 0;
	if (!once) {
		setup_once();
		once = true;
	}
	opt = data[0];
	raw = opt & 1;
	hold_bufs = (opt & 6) == 6;
	chunk = chunks[(opt >> 4) & 7];
	memcpy(arena + PAGE, orig + PAGE, (ARENA_PAGES - 2) * PAGE);
	ep = NULL;
	outn = 0;
	out_eof = false;
	nheld = 0;
	ops_tried = false;
	imm_next = msg_next = 0;

	plx_reactor_config_init(&rcfg);
	memcpy(rcfg.node_id, "fuzz-conn-victim", 16);
	FUZZ_CHECK(plx_reactor_init(&r, &rcfg) == 0);
	plx_tcp_config_init(&cfg);
	cfg.max_message = 4096;
	cfg.max_frame = 65536;
	cfg.send_queue = 16;
	cfg.max_recvs = 4;
	cfg.unexpected_count = 3;
	cfg.unexpected_size = 64;
	cfg.event_cb = on_event;
	cfg.imm_cb = on_imm;
	if (opt & 2) {
		FUZZ_CHECK(plx_pool_init(&pool, pool_mem,
					 plx_pool_memsize(POOL_BUF, POOL_BUFS),
					 POOL_BUF, POOL_BUFS) == 0);
		cfg.msg_cb = on_msg;
		cfg.msg_pool = &pool;
	}
	FUZZ_CHECK(plx_tcp_init(&r, &cfg) == 0);
	for (i = 0; i < NREG; i++) {
		FUZZ_CHECK(plx_mem_register(&r, &regs[i].reg,
					    arena + regs[i].off, regs[i].len,
					    regs[i].access) == 0);
		FUZZ_CHECK(plx_mem_name(&r, &regs[i].reg, regs[i].name) == 0);
		regs[i].key = regs[i].reg.plx_key;
	}
	memset(&peer_desc, 0, sizeof(peer_desc));
	peer_desc.addr = 0x100000;
	peer_desc.len = 1 << 20;
	peer_desc.key = 0x7777;
	peer_desc.access = PLX_ACCESS_ALL;
	peer_desc.hints = PLX_HINT_TCP;
	memset(&resolved, 0, sizeof(resolved));
	vop_init(&ops[OP_R1], 16);
	vop_init(&ops[OP_R2], 300);
	vop_init(&ops[OP_RESOLVE], 0);
	vop_init(&ops[OP_R3], 8);
	vop_init(&ops[OP_SEND], 16);
	vop_init(&ops[OP_WRITE], 32);
	vop_init(&ops[OP_WIMM], 8);
	vop_init(&ops[OP_P1], 64);
	vop_init(&ops[OP_P2], 16);
	vop_init(&ops[OP_P3], 256);

	FUZZ_CHECK(socketpair(AF_UNIX,
			      SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
			      sv) == 0);
	c = plx__conn_new(plx__tcp_get(&r), sv[0], 1, PLX__C_HANDSHAKE);
	FUZZ_CHECK(c != NULL);
	plx__conn_start_handshake(c);

	prefix = raw ? 0 : peer_handshake(tx);
	frame_input(data + 1, size - 1, prefix, raw, !(opt & 0x80));
	if (!raw) {
		/* the handshake first, so the victim's ops are out before
		 * any of the peer's frames arrive */
		FUZZ_CHECK(send(sv[1], tx, prefix, MSG_NOSIGNAL) ==
			   (ssize_t)prefix);
		for (i = 0; i < 64 && !ep; i++)
			pump();
		FUZZ_CHECK(ep != NULL);
	}

	sent = prefix;
	stall = 0;
	while (sent < txn && stall < 64) {
		size_t want = txn - sent < chunk ? txn - sent : chunk;
		ssize_t k = send(sv[1], tx + sent, want,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (k > 0) {
			sent += (size_t)k;
			stall = 0;
		} else if (k < 0 && errno == EAGAIN) {
			stall++; /* the victim stopped reading */
		} else {
			break; /* it closed the connection */
		}
		if (ep && !ops_tried) {
			submit_ops();
			if (opt & 8) {
				post_recv(OP_P1, 1, ~0ull);
				post_recv(OP_P2, 0, 0);
			}
		}
		settle(2, 8);
	}
	if (ep && !ops_tried)
		submit_ops();
	shutdown(sv[1], SHUT_WR);
	settle(16, 2000);
	/* one more receive: takes a message parked in an unexpected slot */
	if (ep)
		post_recv(OP_P3, 0, 0);
	settle(16, 2000);

	FUZZ_CHECK(plx_tcp_shutdown(&r) == 0);
	settle(16, 2000);
	while (nheld)
		FUZZ_CHECK(plx_pool_put(&pool, held[--nheld]) == 0);
	settle(16, 2000);
	for (i = 0; i < NREG; i++)
		FUZZ_CHECK(plx_mem_deregister(&r, &regs[i].reg) == 0);
	for (i = 0, rc = PLX_EBUSY; i < 2000 && rc; i++) {
		pump();
		rc = plx_reactor_fini(&r);
	}
	FUZZ_CHECK(rc == 0);
	drain_out();
	close(sv[1]);
	sv[1] = -1;

	check_ops();
	check_recv(OP_P1, 1, ~0ull);
	check_recv(OP_P2, 0, 0);
	check_recv(OP_P3, 0, 0);
	check_output();
	check_memory();
	for (i = 0; i < NOPS; i++)
		free(ops[i].buf);
	return 0;
}
