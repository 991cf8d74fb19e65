/* SPDX-License-Identifier: MIT */
/*
 * Shared by tests/test_tcp_wire.c and the fuzz targets: field-by-field
 * frame comparison and a model of the header rules over a decoded frame,
 * written independently of transport/tcp/wire.c.
 */
#ifndef PLX_TEST_WIRE_CHECK_H
#define PLX_TEST_WIRE_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "pollux/mem.h"
#include "transport/tcp/wire.h"

static inline bool plx_test_hello_eq(const struct plx__hello *a,
				     const struct plx__hello *b)
{
	return a->version == b->version && a->role == b->role &&
	       a->conn_index == b->conn_index && a->caps == b->caps &&
	       memcmp(a->node_id, b->node_id, sizeof(a->node_id)) == 0 &&
	       a->epoch == b->epoch &&
	       memcmp(a->nonce, b->nonce, sizeof(a->nonce)) == 0;
}

/* Every field of struct plx__frame, padding ignored. */
static inline bool plx_test_frame_eq(const struct plx__frame *a,
				     const struct plx__frame *b)
{
	return a->opcode == b->opcode && a->flags == b->flags &&
	       a->payload_len == b->payload_len && a->id == b->id &&
	       a->addr == b->addr && a->key == b->key && a->len == b->len &&
	       a->tag == b->tag && a->seq == b->seq && a->ack == b->ack &&
	       a->imm == b->imm && a->status == b->status &&
	       plx_test_hello_eq(&a->hello, &b->hello) &&
	       memcmp(a->proof, b->proof, sizeof(a->proof)) == 0;
}

/*
 * The rules of docs/wire-protocol.md over a decoded frame: true when a
 * receiver with limit @max must accept @f (and fields the opcode does not
 * use are zero, as the parser leaves them).
 */
static inline bool plx_test_frame_valid(const struct plx__frame *f,
					uint32_t max)
{
	static const struct plx__hello zero_hello;
	static const uint8_t zero_proof[PLX__WIRE_PROOF];
	bool uses_rma = false, uses_status = false;
	uint32_t pl = f->payload_len;
	int32_t st = f->status;

	if (pl > max)
		return false;
	switch (f->opcode) {
	case PLX__OP_HELLO:
		if ((f->flags & ~PLX__HELLO_AUTH) || pl || f->hello.role > 1)
			return false;
		break;
	case PLX__OP_READY:
	case PLX__OP_PING:
	case PLX__OP_PONG:
		if (f->flags || pl)
			return false;
		break;
	/* the data opcodes may carry a riding ACK (PLX__F_ACK) */
	case PLX__OP_SEND:
	case PLX__OP_WRITE:
	case PLX__OP_WRITE_IMM:
		if (f->flags & ~PLX__F_ACK)
			return false;
		uses_rma = f->opcode != PLX__OP_SEND;
		break;
	case PLX__OP_READ_REQ:
		if ((f->flags & ~PLX__F_ACK) || pl || f->len == 0 ||
		    f->len > max)
			return false;
		uses_rma = true;
		break;
	case PLX__OP_READ_RESP:
		if (f->flags || st > 0 || (st < 0 && pl))
			return false;
		uses_status = true;
		break;
	case PLX__OP_ACK:
		if (f->flags || pl || f->id)
			return false;
		break;
	case PLX__OP_NACK:
		if (f->flags || pl || st >= 0)
			return false;
		uses_status = true;
		break;
	case PLX__OP_RESOLVE_REQ:
		if (f->flags || pl < 1 || pl > PLX__WIRE_NAME_MAX)
			return false;
		break;
	case PLX__OP_RESOLVE_RESP:
		if (f->flags || st > 0 || (pl != 0 && pl != PLX_DESC_BYTES) ||
		    (st < 0) != (pl == 0))
			return false;
		uses_status = true;
		break;
	case PLX__OP_CLOSE:
		if (f->flags || pl || st > 0)
			return false;
		uses_status = true;
		break;
	case PLX__OP_RDMA_CM:
		if (f->flags || pl < PLX__WIRE_CM_MIN || pl > PLX__WIRE_CM_MAX)
			return false;
		break;
	default:
		return false;
	}
	/* unused fields are zero */
	if (!uses_rma && (f->addr || f->key))
		return false;
	if (f->opcode != PLX__OP_READ_REQ && f->len)
		return false;
	if (f->opcode != PLX__OP_WRITE_IMM && f->imm)
		return false;
	if (f->opcode != PLX__OP_SEND && f->tag)
		return false;
	if (f->opcode != PLX__OP_ACK && f->seq)
		return false;
	if (!(f->flags & PLX__F_ACK) && f->ack)
		return false;
	if (!uses_status && st)
		return false;
	if (f->opcode != PLX__OP_HELLO &&
	    !plx_test_hello_eq(&f->hello, &zero_hello))
		return false;
	if (f->opcode != PLX__OP_READY &&
	    memcmp(f->proof, zero_proof, sizeof(zero_proof)) != 0)
		return false;
	return true;
}

#endif /* PLX_TEST_WIRE_CHECK_H */
