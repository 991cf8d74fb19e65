/* SPDX-License-Identifier: MIT */
/*
 * TCP wire protocol: header encoder and validating parser.
 *
 * Every integer is encoded and decoded little-endian, field by field, so
 * the layout is the same on every host and no struct is ever copied onto
 * the wire. docs/wire-protocol.md is the normative description.
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
#include "reactor/hot.h"
#include "transport/tcp/wire.h"

/* Base header offsets. */
#define OFF_MAGIC0 0
#define OFF_MAGIC1 1
#define OFF_OPCODE 2
#define OFF_FLAGS 3
#define OFF_PAYLOAD_LEN 4
#define OFF_ID 8

/*
 * Extension offsets, relative to the frame start. Every header except
 * HELLO ends with its CRC32C (crc_off()); HELLO carries it in the low half
 * of its id, since its layout is frozen across versions.
 */
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
/* the u32 before the CRC (WRITE_IMM's imm, READ_REQ's len, the pad of
 * SEND and WRITE) and a riding ACK (PLX__F_ACK) sit at fixed distances
 * from the end of the header, whose size depends on that flag */
#define TAIL_U32(hdr) ((hdr)-8)
#define TAIL_ACK(hdr) ((hdr)-16)
/* READ_RESP, NACK, RESOLVE_RESP, CLOSE */
#define OFF_STATUS (EXT + 0)
/* ACK */
#define OFF_ACK_SEQ (EXT + 0)
/* HELLO (version >= 2): the header CRC in id's low half, 0 in the high */
#define OFF_HELLO_CRC OFF_ID
#define OFF_HELLO_ID_HI (OFF_ID + 4)

_Static_assert(OFF_HELLO_NONCE + PLX__WIRE_NONCE == EXT + 64, "HELLO layout");
_Static_assert(EXT + 64 == PLX__WIRE_HDR_MAX, "HELLO is the largest header");

PLX__HOT int plx__wire_ext_size(uint8_t opcode)
{
	switch (opcode) {
	case PLX__OP_HELLO:
		return 64;
	case PLX__OP_READY:
		return PLX__WIRE_PROOF + 8;
	case PLX__OP_SEND:
		return 16;
	case PLX__OP_WRITE:
		return 24;
	case PLX__OP_WRITE_IMM:
		return 24;
	case PLX__OP_READ_REQ:
		return 24;
	case PLX__OP_READ_RESP:
		return 8;
	case PLX__OP_ACK:
		return 16;
	case PLX__OP_NACK:
		return 8;
	case PLX__OP_RESOLVE_REQ:
		return 8;
	case PLX__OP_RESOLVE_RESP:
		return 8;
	case PLX__OP_PING:
		return 8;
	case PLX__OP_PONG:
		return 8;
	case PLX__OP_CLOSE:
		return 8;
	case PLX__OP_RDMA_CM:
		return 8;
	default:
		return -1;
	}
}

PLX__HOT int plx__wire_hdr_size(uint8_t opcode)
{
	int ext = plx__wire_ext_size(opcode);

	return ext < 0 ? -1 : PLX__WIRE_BASE + ext;
}

static uint8_t opcode_flags(uint8_t opcode);

PLX__HOT int plx__wire_hdr_size_flags(uint8_t opcode, uint8_t flags)
{
	int hdr = plx__wire_hdr_size(opcode);

	/* (the flag on an opcode that does not take it is refused) */
	return hdr < 0 || !(flags & opcode_flags(opcode) & PLX__F_ACK) ?
		       hdr :
		       hdr + 8;
}

/*
 * Fields of 2, 4 or 8 bytes (@bytes is one of those), at any alignment.
 * One memcpy() of the width is one unaligned load or store: the byte loop
 * these replaced was not merged by the compiler and cost about 150
 * instructions per message (callgrind, 8 B write ping-pong;
 * docs/benchmarks.md, "Stop 12").
 */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define PLX__LE16(x) __builtin_bswap16(x)
#define PLX__LE32(x) __builtin_bswap32(x)
#define PLX__LE64(x) __builtin_bswap64(x)
#else
#define PLX__LE16(x) (x)
#define PLX__LE32(x) (x)
#define PLX__LE64(x) (x)
#endif

static inline void put_le(uint8_t *p, uint64_t v, unsigned int bytes)
{
	uint16_t v2 = PLX__LE16((uint16_t)v);
	uint32_t v4 = PLX__LE32((uint32_t)v);
	uint64_t v8 = PLX__LE64(v);

	if (bytes == 8)
		memcpy(p, &v8, 8);
	else if (bytes == 4)
		memcpy(p, &v4, 4);
	else
		memcpy(p, &v2, 2);
}

static inline uint64_t get_le(const uint8_t *p, unsigned int bytes)
{
	uint16_t v2;
	uint32_t v4;
	uint64_t v8;

	if (bytes == 8) {
		memcpy(&v8, p, 8);
		return PLX__LE64(v8);
	}
	if (bytes == 4) {
		memcpy(&v4, p, 4);
		return PLX__LE32(v4);
	}
	memcpy(&v2, p, 2);
	return PLX__LE16(v2);
}

/* Two's complement u32 -> i32 without implementation-defined conversion. */
static int32_t get_i32(const uint8_t *p)
{
	uint32_t v = (uint32_t)get_le(p, 4);

	if (v <= (uint32_t)INT32_MAX)
		return (int32_t)v;
	return (int32_t)(v - 0x80000000u) - INT32_MAX - 1;
}

/* ---- CRC32C (Castagnoli) ------------------------------------------------- */

/*
 * Reflected polynomial 0x82f63b78, initial value and final xor ~0: the
 * CRC of iSCSI, ext4 and SSE4.2's crc32 instruction, which is used when
 * the CPU has it. Headers are at most 80 bytes: the byte-wise table is
 * enough for the fallback.
 */
static const uint32_t crc_table[256] = {
#define C1(c) (((c) >> 1) ^ (((c)&1u) ? 0x82f63b78u : 0u))
#define C8(c) C1(C1(C1(C1(C1(C1(C1(C1(c))))))))
#define R4(i) C8((i) + 0u), C8((i) + 1u), C8((i) + 2u), C8((i) + 3u)
#define R16(i) R4(i), R4((i) + 4u), R4((i) + 8u), R4((i) + 12u)
#define R64(i) R16(i), R16((i) + 16u), R16((i) + 32u), R16((i) + 48u)
	R64(0u),
	R64(64u),
	R64(128u),
	R64(192u),
#undef R64
#undef R16
#undef R4
#undef C8
#undef C1
};

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t n)
{
	while (n--)
		crc = (crc >> 8) ^ crc_table[(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>

PLX__HOT __attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t crc, const uint8_t *p, size_t n)
{
	uint64_t c = crc;

	for (; n >= 8; n -= 8, p += 8) {
		uint64_t v;

		memcpy(&v, p, 8); /* x86 is little-endian, as the CRC wants */
		c = _mm_crc32_u64(c, v);
	}
	crc = (uint32_t)c;
	if (n >= 4) {
		uint32_t v;

		memcpy(&v, p, 4);
		crc = _mm_crc32_u32(crc, v);
		n -= 4;
		p += 4;
	}
	while (n--)
		crc = _mm_crc32_u8(crc, *p++);
	return crc;
}

static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n)
{
	/* a load and a test of libgcc's/compiler-rt's CPU model */
	if (__builtin_cpu_supports("sse4.2"))
		return crc_hw(crc, p, n);
	return crc_sw(crc, p, n);
}
#else
static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n)
{
	return crc_sw(crc, p, n);
}
#endif

uint32_t plx__crc32c(uint32_t crc, const void *buf, size_t len)
{
	return ~crc_update(~crc, buf, len);
}

/*
 * Where a header's CRC sits, or -1 when it has none (a HELLO of version
 * 0 or 1: version-1 peers send id 0 there, and the handshake answers them
 * with PLX_EVERSION). @buf holds the whole header.
 */
static int crc_off(uint8_t opcode, const uint8_t *buf, int hdr)
{
	if (opcode != PLX__OP_HELLO)
		return hdr - 4;
	return get_le(buf + OFF_HELLO_VERSION, 2) >= 2 ? OFF_HELLO_CRC : -1;
}

/* The CRC of a header: every byte but the 4 of the CRC field. */
PLX__HOT static uint32_t header_crc(const uint8_t *buf, int hdr, int off)
{
	uint32_t crc = crc_update(~0u, buf, (size_t)off);

	if (off + 4 < hdr) /* a HELLO: more header after the CRC field */
		crc = crc_update(crc, buf + off + 4, (size_t)(hdr - off - 4));
	return ~crc;
}

/* The flags an opcode defines; every other bit must be zero. */
static uint8_t opcode_flags(uint8_t opcode)
{
	switch (opcode) {
	case PLX__OP_HELLO:
		return PLX__HELLO_AUTH;
	case PLX__OP_SEND:
	case PLX__OP_WRITE:
	case PLX__OP_WRITE_IMM:
	case PLX__OP_READ_REQ:
		return PLX__F_ACK;
	default:
		return 0;
	}
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
	/* from version 2 on, id's high half is reserved (its low half is
	 * the CRC); a version-1 HELLO's id is not checked */
	if (h->version >= 2 && get_le(buf + OFF_HELLO_ID_HI, 4) != 0)
		return PLX_EPROTO;
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

/*
 * The pad u32 just before the CRC of SEND, WRITE, ACK, READY and the
 * opcodes without fields of their own: zero, checked once present.
 */
static int check_pad(uint8_t opcode, const uint8_t *buf, size_t len, size_t hdr)
{
	switch (opcode) {
	case PLX__OP_SEND:
	case PLX__OP_WRITE:
	case PLX__OP_ACK:
	case PLX__OP_READY:
	case PLX__OP_RESOLVE_REQ:
	case PLX__OP_PING:
	case PLX__OP_PONG:
	case PLX__OP_RDMA_CM:
		if (len >= hdr - 4 && get_le(buf + TAIL_U32(hdr), 4) != 0)
			return PLX_EPROTO;
		return 0;
	default:
		return 0;
	}
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
		if (len >= hdr) {
			out->addr = get_le(buf + OFF_RMA_ADDR, 8);
			out->key = get_le(buf + OFF_RMA_KEY, 8);
			out->imm = (uint32_t)get_le(buf + TAIL_U32(hdr), 4);
		}
		return 0;
	case PLX__OP_READ_REQ:
		if (len < hdr - 4)
			return 0;
		out->addr = get_le(buf + OFF_RMA_ADDR, 8);
		out->key = get_le(buf + OFF_RMA_KEY, 8);
		out->len = get_le(buf + TAIL_U32(hdr), 4);
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
		/* RESOLVE_REQ, PING, PONG, RDMA_CM: pad (check_pad), CRC */
		return 0;
	}
}

/*
 * The frames of the per-message path - a whole SEND, WRITE, WRITE_IMM
 * (riding ACK or not) or ACK header, every rule kept - decoded in
 * straight-line code. It accepts only what the byte-order parser below
 * accepts and decodes the same frame (test_tcp_wire checks both against
 * its model for every byte of every sample, corrupted or cut); anything
 * else (a prefix, another opcode, any broken rule, a bad CRC) returns 0
 * and goes that way, which reports the error in byte order.
 */
static int parse_fast(struct plx__frame *out, const uint8_t *buf, size_t len,
		      uint32_t max_payload)
{
	uint8_t op, fl;
	uint32_t plen;
	int hdr;

	if (len < PLX__WIRE_BASE + 16 || buf[OFF_MAGIC0] != PLX__WIRE_MAGIC0 ||
	    buf[OFF_MAGIC1] != PLX__WIRE_MAGIC1)
		return 0;
	op = buf[OFF_OPCODE];
	fl = buf[OFF_FLAGS];
	if ((op != PLX__OP_SEND && op != PLX__OP_WRITE &&
	     op != PLX__OP_WRITE_IMM && op != PLX__OP_ACK) ||
	    (fl & ~opcode_flags(op)))
		return 0;
	hdr = plx__wire_hdr_size_flags(op, fl);
	plen = (uint32_t)get_le(buf + OFF_PAYLOAD_LEN, 4);
	if (len < (size_t)hdr || plen > max_payload ||
	    (op == PLX__OP_ACK && (plen || get_le(buf + OFF_ID, 8))) ||
	    (op != PLX__OP_WRITE_IMM && get_le(buf + TAIL_U32(hdr), 4)) ||
	    get_le(buf + hdr - 4, 4) != header_crc(buf, hdr, hdr - 4))
		return 0;
	memset(out, 0, sizeof(*out));
	out->opcode = op;
	out->flags = fl;
	out->payload_len = plen;
	out->id = get_le(buf + OFF_ID, 8);
	switch (op) {
	case PLX__OP_SEND:
		out->tag = get_le(buf + OFF_SEND_TAG, 8);
		break;
	case PLX__OP_ACK:
		out->seq = get_le(buf + OFF_ACK_SEQ, 8);
		break;
	default:
		out->addr = get_le(buf + OFF_RMA_ADDR, 8);
		out->key = get_le(buf + OFF_RMA_KEY, 8);
		if (op == PLX__OP_WRITE_IMM)
			out->imm = (uint32_t)get_le(buf + TAIL_U32(hdr), 4);
		break;
	}
	if (fl)
		out->ack = get_le(buf + TAIL_ACK(hdr), 8);
	return hdr;
}

PLX__HOT int plx__wire_parse(struct plx__frame *out, const uint8_t *buf,
			     size_t len, uint32_t max_payload)
{
	int hdr, ret;

	hdr = parse_fast(out, buf, len, max_payload);
	if (hdr)
		return hdr;
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
	hdr = plx__wire_hdr_size_flags(out->opcode, out->flags);
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
	if (!ret)
		ret = check_pad(out->opcode, buf, len, (size_t)hdr);
	if (ret)
		return ret;
	if (len < (size_t)hdr)
		return 0;
	if (out->flags & PLX__F_ACK)
		out->ack = get_le(buf + TAIL_ACK(hdr), 8);
	/* last, with every byte in: the header arrived as it was sent */
	ret = crc_off(out->opcode, buf, hdr);
	if (ret >= 0) {
		if (get_le(buf + ret, 4) != header_crc(buf, hdr, ret))
			return PLX_EBADMSG;
		if (out->opcode == PLX__OP_HELLO)
			out->id = 0; /* the CRC, not an id */
	}
	return hdr;
}

static void put_status_ext(uint8_t *buf, int32_t status)
{
	put_le(buf + OFF_STATUS, (uint32_t)status, 4);
}

/* The CRC of the complete @hdr-byte header at @buf, in its place. */
static int seal(uint8_t *buf, int hdr)
{
	int off = crc_off(buf[OFF_OPCODE], buf, hdr);

	if (off >= 0)
		put_le(buf + off, header_crc(buf, hdr, off), 4);
	return hdr;
}

int plx__wire_seal(uint8_t *buf)
{
	int hdr = plx__wire_hdr_size_flags(buf[OFF_OPCODE], buf[OFF_FLAGS]);

	return hdr < 0 ? PLX_EINVAL : seal(buf, hdr);
}

PLX__HOT int plx__wire_encode(const struct plx__frame *f, uint8_t *buf)
{
	const struct plx__hello *h = &f->hello;
	int hdr = plx__wire_hdr_size_flags(f->opcode, f->flags);

	if (hdr < 0 || (f->opcode == PLX__OP_READ_REQ && f->len > UINT32_MAX))
		return PLX_EINVAL;
	/* pads and the CRC field start at zero */
	memset(buf, 0, (size_t)hdr);
	buf[OFF_MAGIC0] = PLX__WIRE_MAGIC0;
	buf[OFF_MAGIC1] = PLX__WIRE_MAGIC1;
	buf[OFF_OPCODE] = f->opcode;
	buf[OFF_FLAGS] = f->flags;
	put_le(buf + OFF_PAYLOAD_LEN, f->payload_len, 4);
	put_le(buf + OFF_ID, f->id, 8);

	switch (f->opcode) {
	case PLX__OP_HELLO:
		/* from version 2 on, id holds the CRC (plx__wire_seal) */
		if (h->version >= 2)
			put_le(buf + OFF_ID, 0, 8);
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
		put_le(buf + TAIL_U32(hdr), f->imm, 4);
		break;
	case PLX__OP_READ_REQ:
		put_le(buf + OFF_RMA_ADDR, f->addr, 8);
		put_le(buf + OFF_RMA_KEY, f->key, 8);
		put_le(buf + TAIL_U32(hdr), f->len, 4);
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
		/* RESOLVE_REQ, PING, PONG, RDMA_CM: pad and CRC only */
		break;
	}
	if (f->flags & PLX__F_ACK)
		put_le(buf + TAIL_ACK(hdr), f->ack, 8);
	return seal(buf, hdr);
}
