/* SPDX-License-Identifier: MIT */
/*
 * TCP wire protocol: header encoder and validating parser.
 *
 * Every integer is encoded and decoded byte by byte, little-endian, so the
 * layout is the same on every host and no struct is ever copied onto the
 * wire. docs/wire-protocol.md is the normative description.
 *
 * The parser is written as one pass over the header in byte order. Each
 * check runs as soon as the bytes it looks at are present, and before any
 * check that needs a later byte. So for a given byte string the verdict
 * only ever moves from "need more" (0) to one fixed error or to success as
 * bytes are appended: a transport may call it after every read and get
 * the same answer it would get on the whole header, only sooner. A strict
 * prefix of a valid header passes every check it can see and returns 0.
 */
#include <stdbool.h>
#include <string.h>

#include "pollux/mem.h"
#include "pollux/status.h"
#include "transport/tcp/wire.h"

/* Base header offsets. */
#define OFF_MAGIC0 0
#define OFF_MAGIC1 1
#define OFF_OPCODE 2
#define OFF_FLAGS 3
#define OFF_PAYLOAD_LEN 4
#define OFF_ID 8

/* Extension offsets, relative to the frame start. */
#define EXT PLX__WIRE_BASE
/* HELLO */
#define OFF_HELLO_VERSION (EXT + 0)
#define OFF_HELLO_ROLE (EXT + 2)
#define OFF_HELLO_CONN (EXT + 3)
#define OFF_HELLO_CAPS (EXT + 4)
#define OFF_HELLO_NODE (EXT + 8)
#define OFF_HELLO_EPOCH (EXT + 24)
#define OFF_HELLO_NONCE (EXT + 32)
/* READY */
#define OFF_READY_PROOF (EXT + 0)
/* SEND */
#define OFF_SEND_TAG (EXT + 0)
/* WRITE, WRITE_IMM, READ_REQ */
#define OFF_RMA_ADDR (EXT + 0)
#define OFF_RMA_KEY (EXT + 8)
#define OFF_WIMM_IMM (EXT + 16)
#define OFF_WIMM_PAD (EXT + 20)
#define OFF_READ_LEN (EXT + 16)
/* READ_RESP, NACK, RESOLVE_RESP, CLOSE */
#define OFF_STATUS (EXT + 0)
#define OFF_STATUS_PAD (EXT + 4)
/* ACK */
#define OFF_ACK_SEQ (EXT + 0)

_Static_assert(OFF_HELLO_NONCE + PLX__WIRE_NONCE == EXT + 64, "HELLO layout");
_Static_assert(EXT + 64 == PLX__WIRE_HDR_MAX, "HELLO is the largest header");

int plx__wire_ext_size(uint8_t opcode)
{
	switch (opcode) {
	case PLX__OP_HELLO:
		return 64;
	case PLX__OP_READY:
		return PLX__WIRE_PROOF;
	case PLX__OP_SEND:
		return 8;
	case PLX__OP_WRITE:
		return 16;
	case PLX__OP_WRITE_IMM:
		return 24;
	case PLX__OP_READ_REQ:
		return 24;
	case PLX__OP_READ_RESP:
		return 8;
	case PLX__OP_ACK:
		return 8;
	case PLX__OP_NACK:
		return 8;
	case PLX__OP_RESOLVE_REQ:
		return 0;
	case PLX__OP_RESOLVE_RESP:
		return 8;
	case PLX__OP_PING:
		return 0;
	case PLX__OP_PONG:
		return 0;
	case PLX__OP_CLOSE:
		return 8;
	case PLX__OP_RDMA_CM:
		return 0;
	default:
		return -1;
	}
}

int plx__wire_hdr_size(uint8_t opcode)
{
	int ext = plx__wire_ext_size(opcode);

	return ext < 0 ? -1 : PLX__WIRE_BASE + ext;
}

static void put_le(uint8_t *p, uint64_t v, unsigned int bytes)
{
	unsigned int i;

	for (i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned int bytes)
{
	uint64_t v = 0;
	unsigned int i;

	for (i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Two's complement u32 -> i32 without implementation-defined conversion. */
static int32_t get_i32(const uint8_t *p)
{
	uint32_t v = (uint32_t)get_le(p, 4);

	if (v <= (uint32_t)INT32_MAX)
		return (int32_t)v;
	return (int32_t)(v - 0x80000000u) - INT32_MAX - 1;
}

/* The flags an opcode defines; every other bit must be zero. */
static uint8_t opcode_flags(uint8_t opcode)
{
	return opcode == PLX__OP_HELLO ? PLX__HELLO_AUTH : 0;
}

/*
 * The payload_len rule of each opcode, checked as soon as payload_len is
 * complete (byte 8). Shape violations are PLX_EPROTO; a length the opcode
 * allows but the receiver's limit does not is PLX_EMSGSIZE.
 */
static int check_payload_len(uint8_t opcode, uint32_t plen, uint32_t max)
{
	switch (opcode) {
	case PLX__OP_HELLO:
	case PLX__OP_READY:
	case PLX__OP_READ_REQ:
	case PLX__OP_ACK:
	case PLX__OP_NACK:
	case PLX__OP_PING:
	case PLX__OP_PONG:
	case PLX__OP_CLOSE:
		if (plen != 0)
			return PLX_EPROTO;
		break;
	case PLX__OP_RESOLVE_REQ:
		if (plen < 1 || plen > PLX__WIRE_NAME_MAX)
			return PLX_EPROTO;
		break;
	case PLX__OP_RESOLVE_RESP:
		if (plen != 0 && plen != PLX_DESC_BYTES)
			return PLX_EPROTO;
		break;
	case PLX__OP_RDMA_CM:
		if (plen < PLX__WIRE_CM_MIN || plen > PLX__WIRE_CM_MAX)
			return PLX_EPROTO;
		break;
	default:
		/* SEND, WRITE, WRITE_IMM, READ_RESP: any length up to max */
		break;
	}
	if (plen > max)
		return PLX_EMSGSIZE;
	return 0;
}

/*
 * Extension of a status-carrying frame (READ_RESP, NACK, RESOLVE_RESP,
 * CLOSE): status i32 @0, pad u32 @4. @len counts bytes from the frame
 * start. Returns 0 (valid so far, or need more) or PLX_EPROTO.
 */
static int parse_status_ext(struct plx__frame *out, const uint8_t *buf,
			    size_t len)
{
	int32_t st;

	if (len < OFF_STATUS + 4)
		return 0;
	st = get_i32(buf + OFF_STATUS);
	/* Statuses on the wire are failures or 0, never counts. */
	if (st > 0)
		return PLX_EPROTO;
	switch (out->opcode) {
	case PLX__OP_NACK:
		if (st == 0)
			return PLX_EPROTO;
		break;
	case PLX__OP_READ_RESP:
		/* a failed read carries no data */
		if (st < 0 && out->payload_len != 0)
			return PLX_EPROTO;
		break;
	case PLX__OP_RESOLVE_RESP:
		/* a descriptor exactly when the lookup succeeded */
		if ((st < 0) != (out->payload_len == 0))
			return PLX_EPROTO;
		break;
	default:
		/* CLOSE: 0 is a normal close */
		break;
	}
	out->status = st;
	if (len < OFF_STATUS_PAD + 4)
		return 0;
	if (get_le(buf + OFF_STATUS_PAD, 4) != 0)
		return PLX_EPROTO;
	return 0;
}

static int parse_hello_ext(struct plx__frame *out, const uint8_t *buf,
			   size_t len)
{
	struct plx__hello *h = &out->hello;

	/*
	 * The version is not judged here: any value parses, and the handshake
	 * answers an unusable one with CLOSE(PLX_EVERSION).
	 */
	if (len < OFF_HELLO_VERSION + 2)
		return 0;
	h->version = (uint16_t)get_le(buf + OFF_HELLO_VERSION, 2);
	if (len < OFF_HELLO_ROLE + 1)
		return 0;
	h->role = buf[OFF_HELLO_ROLE];
	if (h->role > 1)
		return PLX_EPROTO;
	if (len < PLX__WIRE_HDR_MAX)
		return 0;
	h->conn_index = buf[OFF_HELLO_CONN];
	/* Unknown caps bits (from a newer peer) are kept, and ignored. */
	h->caps = (uint32_t)get_le(buf + OFF_HELLO_CAPS, 4);
	memcpy(h->node_id, buf + OFF_HELLO_NODE, sizeof(h->node_id));
	h->epoch = get_le(buf + OFF_HELLO_EPOCH, 8);
	memcpy(h->nonce, buf + OFF_HELLO_NONCE, sizeof(h->nonce));
	return 0;
}

/* Opcode-specific extension checks and decoding; 0 or an error. */
static int parse_ext(struct plx__frame *out, const uint8_t *buf, size_t len,
		     size_t hdr, uint32_t max)
{
	switch (out->opcode) {
	case PLX__OP_HELLO:
		return parse_hello_ext(out, buf, len);
	case PLX__OP_READY:
		if (len >= hdr)
			memcpy(out->proof, buf + OFF_READY_PROOF,
			       sizeof(out->proof));
		return 0;
	case PLX__OP_SEND:
		if (len >= hdr)
			out->tag = get_le(buf + OFF_SEND_TAG, 8);
		return 0;
	case PLX__OP_WRITE:
		if (len >= hdr) {
			out->addr = get_le(buf + OFF_RMA_ADDR, 8);
			out->key = get_le(buf + OFF_RMA_KEY, 8);
		}
		return 0;
	case PLX__OP_WRITE_IMM:
		if (len < hdr)
			return 0;
		if (get_le(buf + OFF_WIMM_PAD, 4) != 0)
			return PLX_EPROTO;
		out->addr = get_le(buf + OFF_RMA_ADDR, 8);
		out->key = get_le(buf + OFF_RMA_KEY, 8);
		out->imm = (uint32_t)get_le(buf + OFF_WIMM_IMM, 4);
		return 0;
	case PLX__OP_READ_REQ:
		if (len < hdr)
			return 0;
		out->addr = get_le(buf + OFF_RMA_ADDR, 8);
		out->key = get_le(buf + OFF_RMA_KEY, 8);
		out->len = get_le(buf + OFF_READ_LEN, 8);
		if (out->len == 0)
			return PLX_EPROTO;
		if (out->len > max)
			return PLX_EMSGSIZE;
		return 0;
	case PLX__OP_ACK:
		if (len >= hdr)
			out->seq = get_le(buf + OFF_ACK_SEQ, 8);
		return 0;
	case PLX__OP_READ_RESP:
	case PLX__OP_NACK:
	case PLX__OP_RESOLVE_RESP:
	case PLX__OP_CLOSE:
		return parse_status_ext(out, buf, len);
	default:
		/* RESOLVE_REQ, PING, PONG, RDMA_CM: no extension */
		return 0;
	}
}

int plx__wire_parse(struct plx__frame *out, const uint8_t *buf, size_t len,
		    uint32_t max_payload)
{
	int hdr, ret;

	memset(out, 0, sizeof(*out));
	if (len < OFF_MAGIC0 + 1)
		return 0;
	if (buf[OFF_MAGIC0] != PLX__WIRE_MAGIC0)
		return PLX_EPROTO;
	if (len < OFF_MAGIC1 + 1)
		return 0;
	if (buf[OFF_MAGIC1] != PLX__WIRE_MAGIC1)
		return PLX_EPROTO;
	if (len < OFF_OPCODE + 1)
		return 0;
	out->opcode = buf[OFF_OPCODE];
	hdr = plx__wire_hdr_size(out->opcode);
	if (hdr < 0)
		return PLX_EPROTO;
	if (len < OFF_FLAGS + 1)
		return 0;
	out->flags = buf[OFF_FLAGS];
	if (out->flags & ~opcode_flags(out->opcode))
		return PLX_EPROTO;
	if (len < OFF_PAYLOAD_LEN + 4)
		return 0;
	out->payload_len = (uint32_t)get_le(buf + OFF_PAYLOAD_LEN, 4);
	ret = check_payload_len(out->opcode, out->payload_len, max_payload);
	if (ret)
		return ret;
	if (len < OFF_ID + 8)
		return 0;
	out->id = get_le(buf + OFF_ID, 8);
	/* ACK's sequence lives in the extension; its id is reserved. */
	if (out->opcode == PLX__OP_ACK && out->id != 0)
		return PLX_EPROTO;
	ret = parse_ext(out, buf, len, (size_t)hdr, max_payload);
	if (ret)
		return ret;
	if (len < (size_t)hdr)
		return 0;
	return hdr;
}

static void put_status_ext(uint8_t *buf, int32_t status)
{
	put_le(buf + OFF_STATUS, (uint32_t)status, 4);
	put_le(buf + OFF_STATUS_PAD, 0, 4);
}

int plx__wire_encode(const struct plx__frame *f, uint8_t *buf)
{
	const struct plx__hello *h = &f->hello;
	int hdr = plx__wire_hdr_size(f->opcode);

	if (hdr < 0)
		return PLX_EINVAL;
	buf[OFF_MAGIC0] = PLX__WIRE_MAGIC0;
	buf[OFF_MAGIC1] = PLX__WIRE_MAGIC1;
	buf[OFF_OPCODE] = f->opcode;
	buf[OFF_FLAGS] = f->flags;
	put_le(buf + OFF_PAYLOAD_LEN, f->payload_len, 4);
	put_le(buf + OFF_ID, f->id, 8);

	switch (f->opcode) {
	case PLX__OP_HELLO:
		put_le(buf + OFF_HELLO_VERSION, h->version, 2);
		buf[OFF_HELLO_ROLE] = h->role;
		buf[OFF_HELLO_CONN] = h->conn_index;
		put_le(buf + OFF_HELLO_CAPS, h->caps, 4);
		memcpy(buf + OFF_HELLO_NODE, h->node_id, sizeof(h->node_id));
		put_le(buf + OFF_HELLO_EPOCH, h->epoch, 8);
		memcpy(buf + OFF_HELLO_NONCE, h->nonce, sizeof(h->nonce));
		break;
	case PLX__OP_READY:
		memcpy(buf + OFF_READY_PROOF, f->proof, sizeof(f->proof));
		break;
	case PLX__OP_SEND:
		put_le(buf + OFF_SEND_TAG, f->tag, 8);
		break;
	case PLX__OP_WRITE:
		put_le(buf + OFF_RMA_ADDR, f->addr, 8);
		put_le(buf + OFF_RMA_KEY, f->key, 8);
		break;
	case PLX__OP_WRITE_IMM:
		put_le(buf + OFF_RMA_ADDR, f->addr, 8);
		put_le(buf + OFF_RMA_KEY, f->key, 8);
		put_le(buf + OFF_WIMM_IMM, f->imm, 4);
		put_le(buf + OFF_WIMM_PAD, 0, 4);
		break;
	case PLX__OP_READ_REQ:
		put_le(buf + OFF_RMA_ADDR, f->addr, 8);
		put_le(buf + OFF_RMA_KEY, f->key, 8);
		put_le(buf + OFF_READ_LEN, f->len, 8);
		break;
	case PLX__OP_ACK:
		put_le(buf + OFF_ACK_SEQ, f->seq, 8);
		break;
	case PLX__OP_READ_RESP:
	case PLX__OP_NACK:
	case PLX__OP_RESOLVE_RESP:
	case PLX__OP_CLOSE:
		put_status_ext(buf, f->status);
		break;
	default:
		/* RESOLVE_REQ, PING, PONG, RDMA_CM: no extension */
		break;
	}
	return hdr;
}
