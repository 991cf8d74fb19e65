/* SPDX-License-Identifier: MIT */
/*
 * TCP wire codec: round trips of every opcode, golden bytes, every prefix
 * and every split of every header, every single-byte corruption checked
 * against a byte-level model of the rules (with a CRC32C of its own), the
 * limits, and the CRC32C itself.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz/wire_check.h"
#include "harness.h"
#include "pollux/mem.h"
#include "transport/tcp/wire.h"

#define MAXP (1u << 20)
#define HMAX PLX__WIRE_HDR_MAX

/* ----------------------------------------------------------------------
 * Sample frames: every opcode, every field set to something distinctive.
 */

static struct plx__frame base(uint8_t opcode, uint64_t id, uint32_t plen)
{
	struct plx__frame f;

	memset(&f, 0, sizeof(f));
	f.opcode = opcode;
	f.id = id;
	f.payload_len = plen;
	return f;
}

static struct plx__frame sample_hello(uint8_t flags)
{
	struct plx__frame f = base(PLX__OP_HELLO, 0, 0);
	int i;

	f.flags = flags;
	f.hello.version = PLX__WIRE_VERSION;
	f.hello.role = 0;
	f.hello.conn_index = 2;
	f.hello.caps = PLX__CAP_WRITE_IMM | PLX__CAP_STRIPE;
	for (i = 0; i < 16; i++)
		f.hello.node_id[i] = (uint8_t)(0x10 + i);
	f.hello.epoch = 0x0102030405060708ull;
	for (i = 0; i < PLX__WIRE_NONCE; i++)
		f.hello.nonce[i] = (uint8_t)(0xa0 + i);
	return f;
}

static int make_samples(struct plx__frame *v)
{
	struct plx__frame f;
	int n = 0, i, k;

	v[n++] = sample_hello(PLX__HELLO_AUTH);
	f = sample_hello(0);
	f.hello.role = 1;
	f.hello.conn_index = 0;
	f.hello.caps = 0xfffffff0u; /* unknown bits from a newer peer */
	f.hello.version = 7;
	v[n++] = f;
	/* a version-1 peer's HELLO: no CRC (the handshake refuses it) */
	f = sample_hello(0);
	f.hello.version = 1;
	v[n++] = f;

	f = base(PLX__OP_READY, 0, 0);
	for (i = 0; i < PLX__WIRE_PROOF; i++)
		f.proof[i] = (uint8_t)(0xff - i);
	v[n++] = f;

	f = base(PLX__OP_SEND, 17, 1000);
	f.tag = 0xfeedfacecafebeefull;
	v[n++] = f;
	v[n++] = base(PLX__OP_SEND, 18, 0);

	f = base(PLX__OP_WRITE, 19, 4096);
	f.addr = 0x00007f0012345000ull;
	f.key = 0x0123456789abcdefull;
	v[n++] = f;

	f = base(PLX__OP_WRITE_IMM, 0x1122334455667788ull, 4096);
	f.addr = 0x00007f0012345000ull;
	f.key = 0x0123456789abcdefull;
	f.imm = 0xdeadbeef;
	v[n++] = f;

	f = base(PLX__OP_READ_REQ, 21, 0);
	f.addr = 0xffffffff00000000ull;
	f.key = 0x8000000000000001ull;
	f.len = 65536;
	v[n++] = f;

	/* the four data opcodes with a riding ACK */
	for (i = 0, k = n - 4; i < 4; i++) {
		f = v[k + i];
		f.flags = PLX__F_ACK;
		f.ack = 0x0000000200000003ull + (uint64_t)i;
		v[n++] = f;
	}

	v[n++] = base(PLX__OP_READ_RESP, 21, 65536);
	f = base(PLX__OP_READ_RESP, 22, 0);
	f.status = PLX_EKEYREJECTED;
	v[n++] = f;

	f = base(PLX__OP_ACK, 0, 0);
	f.seq = 0x0000000100000002ull;
	v[n++] = f;

	f = base(PLX__OP_NACK, 23, 0);
	f.status = PLX_EFAULT;
	v[n++] = f;

	v[n++] = base(PLX__OP_RESOLVE_REQ, 24, 5);
	v[n++] = base(PLX__OP_RESOLVE_REQ, 25, PLX__WIRE_NAME_MAX);
	v[n++] = base(PLX__OP_RESOLVE_RESP, 24, PLX_DESC_BYTES);
	f = base(PLX__OP_RESOLVE_RESP, 25, 0);
	f.status = PLX_ENOENT;
	v[n++] = f;

	v[n++] = base(PLX__OP_RDMA_CM, 0, PLX__WIRE_CM_MIN);
	v[n++] = base(PLX__OP_RDMA_CM, 7, PLX__WIRE_CM_MAX);

	v[n++] = base(PLX__OP_PING, 0xabcdef, 0);
	v[n++] = base(PLX__OP_PONG, 0xabcdef, 0);
	v[n++] = base(PLX__OP_CLOSE, 0, 0);
	f = base(PLX__OP_CLOSE, 0, 0);
	f.status = INT32_MIN;
	v[n++] = f;
	return n;
}

#define NSAMPLES 32

static int encode_ok(const struct plx__frame *f, uint8_t *buf)
{
	int hdr = plx__wire_encode(f, buf);

	EXPECT_EQ(hdr, plx__wire_hdr_size_flags(f->opcode, f->flags));
	return hdr;
}

/* ----------------------------------------------------------------------
 * A byte-level model of the parser: the rules as a list of (bytes needed
 * to decide, error if violated), in byte order. The verdict for @n bytes
 * is the first violated rule decidable within @n, else need-more or the
 * header size.
 */

struct model_rule {
	size_t need;
	int err;
};

static int model_ext_size(uint8_t op)
{
	static const struct {
		uint8_t op;
		int ext;
	} t[] = {
		{PLX__OP_HELLO, 64},	   {PLX__OP_READY, 40},
		{PLX__OP_SEND, 16},	   {PLX__OP_WRITE, 24},
		{PLX__OP_WRITE_IMM, 24},   {PLX__OP_READ_REQ, 24},
		{PLX__OP_READ_RESP, 8},	   {PLX__OP_ACK, 16},
		{PLX__OP_NACK, 8},	   {PLX__OP_RESOLVE_REQ, 8},
		{PLX__OP_RESOLVE_RESP, 8}, {PLX__OP_PING, 8},
		{PLX__OP_PONG, 8},	   {PLX__OP_CLOSE, 8},
		{PLX__OP_RDMA_CM, 8},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].op == op)
			return t[i].ext;
	return -1;
}

static uint64_t le(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	int i;

	for (i = bytes - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* CRC32C bit by bit (reflected 0x82f63b78, ~0 in and out). */
static uint32_t model_crc(const uint8_t *p, size_t n, size_t skip)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		if (i >= skip && i < skip + 4)
			continue; /* the CRC field itself */
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
	}
	return ~c;
}

static int model_parse(const uint8_t *in, size_t n, uint32_t max)
{
	uint8_t b[HMAX];
	struct model_rule v[16];
	int nv = 0, ext, i;
	uint8_t op;
	uint32_t pl;
	int64_t st;
	bool no_payload, rides;
	size_t hdr = 0, crc_at;

#define VIOL(need_, err_)                                                      \
	do {                                                                   \
		v[nv].need = (need_);                                          \
		v[nv].err = (err_);                                            \
		nv++;                                                          \
	} while (0)

	memset(b, 0, sizeof(b));
	memcpy(b, in, n < sizeof(b) ? n : sizeof(b));
	op = b[2];
	ext = model_ext_size(op);
	pl = (uint32_t)le(b + 4, 4);
	st = (int64_t)(int32_t)(uint32_t)le(b + 16, 4);

	if (b[0] != 'P')
		VIOL(1, PLX_EPROTO);
	if (b[1] != 'X')
		VIOL(2, PLX_EPROTO);
	if (ext < 0) {
		VIOL(3, PLX_EPROTO);
		goto verdict;
	}
	/* flags: HELLO's AUTH; a riding ACK on the four data opcodes, which
	 * makes the header 8 bytes longer */
	rides = op == PLX__OP_SEND || op == PLX__OP_WRITE ||
		op == PLX__OP_WRITE_IMM || op == PLX__OP_READ_REQ;
	if (b[3] != 0 && !(op == PLX__OP_HELLO && b[3] == PLX__HELLO_AUTH) &&
	    !(rides && b[3] == PLX__F_ACK))
		VIOL(4, PLX_EPROTO);
	no_payload = op == PLX__OP_HELLO || op == PLX__OP_READY ||
		     op == PLX__OP_READ_REQ || op == PLX__OP_ACK ||
		     op == PLX__OP_NACK || op == PLX__OP_PING ||
		     op == PLX__OP_PONG || op == PLX__OP_CLOSE;
	if ((no_payload && pl != 0) ||
	    (op == PLX__OP_RESOLVE_REQ && (pl == 0 || pl > 64)) ||
	    (op == PLX__OP_RESOLVE_RESP && pl != 0 && pl != 64) ||
	    (op == PLX__OP_RDMA_CM && (pl < 32 || pl > 64)))
		VIOL(8, PLX_EPROTO);
	else if (pl > max)
		VIOL(8, PLX_EMSGSIZE);
	hdr = 16 + (size_t)ext + (rides && b[3] == PLX__F_ACK ? 8 : 0);
	if (op == PLX__OP_ACK && le(b + 8, 8) != 0)
		VIOL(16, PLX_EPROTO);
	/* HELLO from version 2: id = CRC in the low half, 0 in the high */
	if (op == PLX__OP_HELLO && le(b + 16, 2) >= 2 && le(b + 12, 4) != 0)
		VIOL(18, PLX_EPROTO);
	if (op == PLX__OP_HELLO && b[18] > 1)
		VIOL(19, PLX_EPROTO);
	if (op == PLX__OP_READ_RESP || op == PLX__OP_NACK ||
	    op == PLX__OP_RESOLVE_RESP || op == PLX__OP_CLOSE) {
		if (st > 0 || (op == PLX__OP_NACK && st == 0) ||
		    (op == PLX__OP_READ_RESP && st < 0 && pl != 0) ||
		    (op == PLX__OP_RESOLVE_RESP && (st < 0) != (pl == 0)))
			VIOL(20, PLX_EPROTO);
	}
	/* READ_REQ's len is the u32 before the CRC */
	if (op == PLX__OP_READ_REQ && le(b + hdr - 8, 4) == 0)
		VIOL(hdr - 4, PLX_EPROTO);
	if (op == PLX__OP_READ_REQ && le(b + hdr - 8, 4) > max)
		VIOL(hdr - 4, PLX_EMSGSIZE);
	/* pad before the CRC */
	if ((op == PLX__OP_SEND || op == PLX__OP_WRITE || op == PLX__OP_ACK ||
	     op == PLX__OP_READY || op == PLX__OP_RESOLVE_REQ ||
	     op == PLX__OP_PING || op == PLX__OP_PONG ||
	     op == PLX__OP_RDMA_CM) &&
	    le(b + hdr - 8, 4) != 0)
		VIOL(hdr - 4, PLX_EPROTO);
	/* the CRC, once the whole header is in (none in a v0/v1 HELLO) */
	crc_at = op != PLX__OP_HELLO ? hdr - 4 : le(b + 16, 2) >= 2 ? 8 : 0;
	if (crc_at && n >= hdr &&
	    le(b + crc_at, 4) != model_crc(b, hdr, crc_at))
		VIOL(hdr, PLX_EBADMSG);
verdict:
#undef VIOL
	for (i = 0; i < nv; i++) {
		if (i > 0 && v[i].need < v[i - 1].need)
			PLX_FAIL("model rules out of byte order");
		if (v[i].need <= n)
			return v[i].err;
	}
	return n >= hdr ? (int)hdr : 0;
}

/* ----------------------------------------------------------------------
 * Tests
 */

static void test_every_opcode_round_trips(void)
{
	struct plx__frame v[NSAMPLES], out;
	uint8_t buf[HMAX + 16];
	int n = make_samples(v), i, hdr;
	int seen[256] = {0};

	for (i = 0; i < n; i++) {
		memset(buf, 0xee, sizeof(buf));
		hdr = encode_ok(&v[i], buf);
		/* the encoder writes the header and nothing after it */
		EXPECT_EQ(buf[hdr], 0xee);
		EXPECT_EQ(plx__wire_parse(&out, buf, (size_t)hdr, MAXP), hdr);
		if (!plx_test_frame_eq(&out, &v[i]))
			PLX_FAIL("sample %d (opcode 0x%02x) changed", i,
				 v[i].opcode);
		EXPECT_TRUE(plx_test_frame_valid(&out, MAXP));
		/* bytes after the header are not the parser's business */
		EXPECT_EQ(plx__wire_parse(&out, buf, sizeof(buf), MAXP), hdr);
		seen[v[i].opcode] = 1;
	}
	for (i = 0; i < 256; i++)
		EXPECT_EQ(seen[i], plx__wire_ext_size((uint8_t)i) >= 0);
}

static void test_unknown_opcode_is_rejected_by_encoder(void)
{
	struct plx__frame f = base(0x7f, 0, 0);
	uint8_t buf[HMAX];

	EXPECT_STATUS(plx__wire_encode(&f, buf), PLX_EINVAL);
	EXPECT_EQ(plx__wire_ext_size(0x7f), -1);
	EXPECT_EQ(plx__wire_hdr_size(0x00), -1);
	EXPECT_EQ(plx__wire_hdr_size(PLX__OP_HELLO), HMAX);
}

static void test_golden_bytes(void)
{
	/* clang-format off */
	static const uint8_t hello[HMAX] = {
		'P', 'X', 0x01, 0x01, 0, 0, 0, 0,
		0x53, 0x00, 0xd6, 0xd5, 0, 0, 0, 0, /* CRC32C 0xd5d60053 */
		0x02, 0x00, 0x00, 0x02, 0x03, 0x00, 0x00, 0x00,
		0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
		0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
		0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
		0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
		0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
		0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,
	};
	static const uint8_t write_imm[40] = {
		'P', 'X', 0x12, 0x00, 0x00, 0x10, 0x00, 0x00,
		0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
		0x00, 0x50, 0x34, 0x12, 0x00, 0x7f, 0x00, 0x00,
		0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01,
		0xef, 0xbe, 0xad, 0xde, 0xc6, 0xef, 0x82, 0x01,
	};
	static const uint8_t close_auth[24] = {
		'P', 'X', 0x42, 0x00, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xef, 0xff, 0xff, 0x9f, 0xd1, 0xa2, 0x8f,
	};
	/* clang-format on */
	struct plx__frame f, out;
	uint8_t buf[HMAX];

	f = sample_hello(PLX__HELLO_AUTH);
	EXPECT_EQ(encode_ok(&f, buf), HMAX);
	EXPECT_MEM_EQ(buf, hello, sizeof(hello));
	EXPECT_EQ(plx__wire_parse(&out, hello, sizeof(hello), 0), HMAX);
	EXPECT_TRUE(plx_test_frame_eq(&out, &f));

	f = base(PLX__OP_WRITE_IMM, 0x1122334455667788ull, 4096);
	f.addr = 0x00007f0012345000ull;
	f.key = 0x0123456789abcdefull;
	f.imm = 0xdeadbeef;
	EXPECT_EQ(encode_ok(&f, buf), 40);
	EXPECT_MEM_EQ(buf, write_imm, sizeof(write_imm));
	EXPECT_EQ(plx__wire_parse(&out, write_imm, 40, MAXP), 40);
	EXPECT_TRUE(plx_test_frame_eq(&out, &f));

	f = base(PLX__OP_CLOSE, 0, 0);
	f.status = PLX_EAUTH;
	EXPECT_EQ(encode_ok(&f, buf), 24);
	EXPECT_MEM_EQ(buf, close_auth, sizeof(close_auth));
	EXPECT_EQ(plx__wire_parse(&out, close_auth, 24, 0), 24);
	EXPECT_STATUS(out.status, PLX_EAUTH);
}

/*
 * Every strict prefix needs more bytes. Each prefix is copied into a
 * buffer of exactly its length, so a read past it trips ASan.
 */
static void test_every_prefix_needs_more(void)
{
	struct plx__frame v[NSAMPLES], out;
	uint8_t buf[HMAX];
	int n = make_samples(v), i, hdr, k;

	for (i = 0; i < n; i++) {
		hdr = encode_ok(&v[i], buf);
		for (k = 0; k <= hdr; k++) {
			uint8_t *p = malloc(k ? (size_t)k : 1);

			EXPECT_TRUE(p != NULL);
			memcpy(p, buf, (size_t)k);
			EXPECT_EQ(plx__wire_parse(&out, p, (size_t)k, MAXP),
				  k == hdr ? hdr : 0);
			free(p);
		}
	}
}

/*
 * A transport-like reader: headers collect in a small buffer, payload
 * bytes are counted off as they come. Frames are recorded in order.
 */
struct reader {
	uint8_t acc[HMAX];
	size_t n;
	uint64_t payload_left;
	uint64_t payload_total;
	struct plx__frame frames[NSAMPLES];
	int nframes;
	int err;
};

static void reader_feed(struct reader *r, const uint8_t *p, size_t len)
{
	uint8_t rest[HMAX];
	size_t take, nrest;
	int ret;

	while (len > 0 && !r->err) {
		if (r->payload_left) {
			take = len < r->payload_left ? len : r->payload_left;
			r->payload_left -= take;
			r->payload_total += take;
			p += take;
			len -= take;
			continue;
		}
		take = sizeof(r->acc) - r->n;
		if (take > len)
			take = len;
		memcpy(r->acc + r->n, p, take);
		r->n += take;
		p += take;
		len -= take;
		ret = plx__wire_parse(&r->frames[r->nframes], r->acc, r->n,
				      MAXP);
		if (ret < 0) {
			r->err = ret;
			return;
		}
		if (ret == 0) {
			/* a full buffer always holds a whole header */
			EXPECT_LT(r->n, sizeof(r->acc));
			continue;
		}
		r->payload_left = r->frames[r->nframes].payload_len;
		r->nframes++;
		/* bytes after the header: payload or the next frame */
		nrest = r->n - (size_t)ret;
		memcpy(rest, r->acc + ret, nrest);
		r->n = 0;
		reader_feed(r, rest, nrest);
	}
}

static size_t build_stream(const struct plx__frame *v, int n, uint8_t *s,
			   uint64_t *payload)
{
	size_t len = 0;
	int i;

	*payload = 0;
	for (i = 0; i < n; i++) {
		len += (size_t)encode_ok(&v[i], s + len);
		memset(s + len, 0x50 + i, v[i].payload_len);
		len += v[i].payload_len;
		*payload += v[i].payload_len;
	}
	return len;
}

static void reader_check(const struct reader *r, const struct plx__frame *v,
			 int n, uint64_t payload)
{
	int i;

	EXPECT_OK(r->err);
	EXPECT_EQ(r->nframes, n);
	for (i = 0; i < n; i++)
		if (!plx_test_frame_eq(&r->frames[i], &v[i]))
			PLX_FAIL("frame %d (opcode 0x%02x) differs", i,
				 v[i].opcode);
	EXPECT_U64_EQ(r->payload_total, payload);
	EXPECT_U64_EQ(r->payload_left, 0);
	EXPECT_EQ(r->n, 0);
}

static void test_stream_split_at_every_byte_boundary(uint64_t seed)
{
	static uint8_t s[256 * 1024];
	struct plx__frame v[NSAMPLES];
	struct reader *r = malloc(sizeof(*r));
	uint64_t payload;
	size_t len, hdrs = 0, k, off, chunk;
	int n = make_samples(v), i;

	EXPECT_TRUE(r != NULL);
	len = build_stream(v, n, s, &payload);
	EXPECT_LE(len, sizeof(s));
	for (i = 0; i < n; i++)
		hdrs += (size_t)plx__wire_hdr_size_flags(v[i].opcode,
							 v[i].flags);

	/* whole */
	memset(r, 0, sizeof(*r));
	reader_feed(r, s, len);
	reader_check(r, v, n, payload);

	/* one split, at every byte boundary */
	for (k = 1; k < len; k += (k < hdrs + 2048 ? 1 : 97)) {
		memset(r, 0, sizeof(*r));
		reader_feed(r, s, k);
		reader_feed(r, s + k, len - k);
		reader_check(r, v, n, payload);
	}

	/* byte by byte */
	memset(r, 0, sizeof(*r));
	for (k = 0; k < len; k++)
		reader_feed(r, s + k, 1);
	reader_check(r, v, n, payload);

	/* random chunks */
	for (i = 0; i < 200; i++) {
		memset(r, 0, sizeof(*r));
		for (off = 0; off < len; off += chunk) {
			chunk = 1 + plx_test_rand(&seed) % 200;
			if (chunk > len - off)
				chunk = len - off;
			reader_feed(r, s + off, chunk);
		}
		reader_check(r, v, n, payload);
	}
	free(r);
}

static void check_against_model(const uint8_t *c, size_t len, uint32_t max)
{
	struct plx__frame out;
	uint8_t re[HMAX];
	int got = plx__wire_parse(&out, c, len, max);
	int want = model_parse(c, len, max);

	if (got != want)
		PLX_FAIL(
			"parse %d (%s) vs model %d (%s), len %zu, opcode 0x%02x",
			got, plx_errname(got), want, plx_errname(want), len,
			len > 2 ? c[2] : 0);
	if (got < 0) {
		EXPECT_TRUE(got == PLX_EPROTO || got == PLX_EMSGSIZE ||
			    got == PLX_EBADMSG);
		return;
	}
	if (got == 0)
		return;
	/* a different but valid frame: it re-encodes to the same bytes */
	EXPECT_TRUE(plx_test_frame_valid(&out, max));
	EXPECT_EQ(plx__wire_encode(&out, re), got);
	EXPECT_MEM_EQ(re, c, (size_t)got);
}

static void test_every_single_byte_corruption(void)
{
	struct plx__frame v[NSAMPLES];
	uint8_t buf[HMAX], c[HMAX];
	int n = make_samples(v), i, hdr, pos, val, k;
	uint32_t maxes[] = {MAXP, 4096, 64, 0};
	unsigned int m;
	long checks = 0;

	for (i = 0; i < n; i++) {
		hdr = encode_ok(&v[i], buf);
		for (pos = 0; pos < hdr; pos++) {
			for (val = 0; val < 256; val++) {
				if (val == buf[pos])
					continue;
				memcpy(c, buf, (size_t)hdr);
				c[pos] = (uint8_t)val;
				for (m = 0; m < 4; m++) {
					check_against_model(c, (size_t)hdr,
							    maxes[m]);
					checks++;
				}
				for (k = 0; k < hdr; k++)
					check_against_model(c, (size_t)k, MAXP);
				checks += hdr;
			}
		}
	}
	fprintf(stderr, "corruption: %ld parses checked against the model\n",
		checks);
}

static void expect_parse(const struct plx__frame *f, uint32_t max, int want)
{
	struct plx__frame out;
	uint8_t buf[HMAX];
	int hdr = encode_ok(f, buf);

	EXPECT_STATUS(plx__wire_parse(&out, buf, (size_t)hdr, max),
		      want > 0 ? hdr : want);
	EXPECT_STATUS(model_parse(buf, (size_t)hdr, max),
		      want > 0 ? hdr : want);
}

static void test_payload_limits(void)
{
	struct plx__frame f;

	f = base(PLX__OP_SEND, 1, 1000);
	expect_parse(&f, 1000, 1);
	expect_parse(&f, 999, PLX_EMSGSIZE);
	f.payload_len = UINT32_MAX;
	expect_parse(&f, UINT32_MAX, 1);
	expect_parse(&f, UINT32_MAX - 1, PLX_EMSGSIZE);
	f = base(PLX__OP_WRITE, 1, 0);
	expect_parse(&f, 0, 1);
	f.payload_len = 1;
	expect_parse(&f, 0, PLX_EMSGSIZE);

	/* READ_REQ len: 1..max */
	f = base(PLX__OP_READ_REQ, 1, 0);
	f.len = 4096;
	expect_parse(&f, 4096, 1);
	expect_parse(&f, 4095, PLX_EMSGSIZE);
	f.len = UINT32_MAX;
	expect_parse(&f, UINT32_MAX - 1, PLX_EMSGSIZE);
	expect_parse(&f, UINT32_MAX, 1);
	{
		uint8_t b[HMAX];

		/* the field is a u32 on the wire: the encoder refuses more */
		f.len = (uint64_t)UINT32_MAX + 1;
		EXPECT_STATUS(plx__wire_encode(&f, b), PLX_EINVAL);
	}
	f.len = 0;
	expect_parse(&f, 4096, PLX_EPROTO);

	/* RDMA_CM carries 32..64 bytes: the connection message */
	f = base(PLX__OP_RDMA_CM, 1, PLX__WIRE_CM_MIN - 1);
	expect_parse(&f, MAXP, PLX_EPROTO);
	f.payload_len = PLX__WIRE_CM_MAX + 1;
	expect_parse(&f, MAXP, PLX_EPROTO);
	f.payload_len = 40;
	expect_parse(&f, MAXP, 1);

	/* a shape violation is a protocol error, whatever the limit */
	f = base(PLX__OP_RESOLVE_REQ, 1, PLX__WIRE_NAME_MAX + 1);
	expect_parse(&f, MAXP, PLX_EPROTO);
	f.payload_len = 0;
	expect_parse(&f, MAXP, PLX_EPROTO);
	f.payload_len = PLX__WIRE_NAME_MAX;
	expect_parse(&f, PLX__WIRE_NAME_MAX, 1);
	expect_parse(&f, PLX__WIRE_NAME_MAX - 1, PLX_EMSGSIZE);
	f = base(PLX__OP_PING, 1, 1);
	expect_parse(&f, MAXP, PLX_EPROTO);
}

static void test_field_rules(void)
{
	struct plx__frame f;

	/* flags: only AUTH, only on HELLO */
	f = sample_hello(0x02);
	expect_parse(&f, MAXP, PLX_EPROTO);
	f = base(PLX__OP_PING, 1, 0);
	f.flags = PLX__HELLO_AUTH;
	expect_parse(&f, MAXP, PLX_EPROTO);

	/* HELLO: role 0/1; any version parses (the handshake judges) */
	f = sample_hello(0);
	f.hello.role = 2;
	expect_parse(&f, MAXP, PLX_EPROTO);
	f = sample_hello(0);
	f.hello.version = 0;
	expect_parse(&f, MAXP, 1);
	f.hello.version = UINT16_MAX;
	f.hello.caps = UINT32_MAX;
	expect_parse(&f, MAXP, 1);

	/* ACK id reserved */
	f = base(PLX__OP_ACK, 1, 0);
	expect_parse(&f, MAXP, PLX_EPROTO);

	/* statuses */
	f = base(PLX__OP_NACK, 1, 0);
	expect_parse(&f, MAXP, PLX_EPROTO);
	f.status = 1;
	expect_parse(&f, MAXP, PLX_EPROTO);
	f.status = PLX_EIO;
	expect_parse(&f, MAXP, 1);
	f = base(PLX__OP_CLOSE, 0, 0);
	f.status = 5;
	expect_parse(&f, MAXP, PLX_EPROTO);
	f = base(PLX__OP_READ_RESP, 1, 10);
	f.status = PLX_EFAULT;
	expect_parse(&f, MAXP, PLX_EPROTO);
	f = base(PLX__OP_READ_RESP, 1, 0);
	expect_parse(&f, MAXP, 1);
	f = base(PLX__OP_RESOLVE_RESP, 1, 0);
	expect_parse(&f, MAXP, PLX_EPROTO);
	f.payload_len = PLX_DESC_BYTES;
	f.status = PLX_ENOENT;
	expect_parse(&f, MAXP, PLX_EPROTO);
	f.payload_len = 10;
	f.status = 0;
	expect_parse(&f, MAXP, PLX_EPROTO);
}

static void test_errors_reported_as_soon_as_visible(void)
{
	struct plx__frame out;
	uint8_t b[HMAX];

	memset(b, 0, sizeof(b));
	b[0] = 'Q';
	EXPECT_STATUS(plx__wire_parse(&out, b, 1, MAXP), PLX_EPROTO);
	b[0] = 'P';
	EXPECT_EQ(plx__wire_parse(&out, b, 1, MAXP), 0);
	b[1] = 'Y';
	EXPECT_STATUS(plx__wire_parse(&out, b, 2, MAXP), PLX_EPROTO);
	b[1] = 'X';
	b[2] = 0x03;
	EXPECT_STATUS(plx__wire_parse(&out, b, 3, MAXP), PLX_EPROTO);
	b[2] = PLX__OP_SEND;
	b[3] = 0x40; /* 0x80 is a riding ACK */
	EXPECT_STATUS(plx__wire_parse(&out, b, 4, MAXP), PLX_EPROTO);
	b[3] = PLX__F_ACK | 0x01;
	EXPECT_STATUS(plx__wire_parse(&out, b, 4, MAXP), PLX_EPROTO);
	b[3] = 0;
	b[7] = 0x01; /* payload_len 16 MiB */
	EXPECT_EQ(plx__wire_parse(&out, b, 7, MAXP), 0);
	EXPECT_STATUS(plx__wire_parse(&out, b, 8, MAXP), PLX_EMSGSIZE);
	b[7] = 0;
	/* the CRC is judged last, with the whole header in */
	EXPECT_EQ(plx__wire_parse(&out, b, 31, MAXP), 0);
	EXPECT_STATUS(plx__wire_parse(&out, b, 32, MAXP), PLX_EBADMSG);
	EXPECT_EQ(plx__wire_seal(b), 32);
	EXPECT_EQ(plx__wire_parse(&out, b, 32, MAXP), 32);
}

/*
 * A riding ACK (PLX__F_ACK): the header grows by 8 bytes, the ACK sits at
 * size - 16, the opcode's last u32 (pad, imm, len) and the CRC stay the
 * last eight bytes; only SEND, WRITE, WRITE_IMM and READ_REQ take it.
 */
static void test_riding_ack(void)
{
	static const uint8_t ops[] = {PLX__OP_SEND, PLX__OP_WRITE,
				      PLX__OP_WRITE_IMM, PLX__OP_READ_REQ};
	struct plx__frame v[NSAMPLES], f, out;
	uint8_t buf[HMAX];
	int n, hdr;

	for (size_t i = 0; i < sizeof(ops); i++) {
		f = base(ops[i], 5, ops[i] == PLX__OP_READ_REQ ? 0 : 100);
		if (ops[i] == PLX__OP_SEND) {
			f.tag = 0x1111111111111111ull;
		} else {
			f.addr = 0x2222222222222222ull;
			f.key = 0x3333333333333333ull;
		}
		if (ops[i] == PLX__OP_WRITE_IMM)
			f.imm = 0x44444444u;
		if (ops[i] == PLX__OP_READ_REQ)
			f.len = 0x4444u;
		f.flags = PLX__F_ACK;
		f.ack = 0x0102030405060708ull;
		hdr = encode_ok(&f, buf);
		EXPECT_EQ(hdr, plx__wire_hdr_size(ops[i]) + 8);
		EXPECT_U64_EQ(le(buf + hdr - 16, 8), f.ack);
		EXPECT_U64_EQ(le(buf + hdr - 8, 4),
			      ops[i] == PLX__OP_WRITE_IMM ? f.imm :
			      ops[i] == PLX__OP_READ_REQ  ? f.len :
							    0);
		EXPECT_U64_EQ(le(buf + hdr - 4, 4),
			      model_crc(buf, (size_t)hdr, (size_t)hdr - 4));
		/* the fields before the ACK are where they always are */
		EXPECT_U64_EQ(le(buf + 16, 8),
			      ops[i] == PLX__OP_SEND ? f.tag : f.addr);
		EXPECT_EQ(plx__wire_parse(&out, buf, (size_t)hdr, MAXP), hdr);
		EXPECT_TRUE(plx_test_frame_eq(&out, &f));
		EXPECT_TRUE(plx_test_frame_valid(&out, MAXP));
		/* one byte short is a prefix; a flipped ACK byte is caught */
		EXPECT_EQ(plx__wire_parse(&out, buf, (size_t)hdr - 1, MAXP), 0);
		buf[hdr - 16] ^= 0x01;
		EXPECT_STATUS(plx__wire_parse(&out, buf, (size_t)hdr, MAXP),
			      PLX_EBADMSG);
	}
	/* on every other opcode the flag is refused once byte 4 is in */
	n = make_samples(v);
	for (int i = 0; i < n; i++) {
		uint8_t op = v[i].opcode;

		if (memchr(ops, op, sizeof(ops)))
			continue;
		hdr = encode_ok(&v[i], buf);
		buf[3] |= PLX__F_ACK;
		EXPECT_STATUS(plx__wire_parse(&out, buf, 4, MAXP), PLX_EPROTO);
	}
}

/* CRC32C: the standard check value, in pieces, and what it guards. */
static void test_crc32c(void)
{
	static const char check[] = "123456789";
	struct plx__frame f, out;
	uint8_t b[HMAX];
	uint32_t c;
	int hdr;

	EXPECT_U64_EQ(plx__crc32c(0, check, 9), 0xe3069283u);
	c = plx__crc32c(0, check, 4);
	EXPECT_U64_EQ(plx__crc32c(c, check + 4, 5), 0xe3069283u);
	EXPECT_U64_EQ(plx__crc32c(0, check, 0), 0);
	EXPECT_U64_EQ(model_crc((const uint8_t *)check, 9, 9), 0xe3069283u);

	/* a WRITE redirected by one flipped address bit is refused */
	f = base(PLX__OP_WRITE, 5, 4096);
	f.addr = 0x00007f0012345000ull;
	f.key = 0x0123456789abcdefull;
	hdr = encode_ok(&f, b);
	EXPECT_EQ(plx__wire_parse(&out, b, (size_t)hdr, MAXP), hdr);
	b[17] ^= 0x10;
	EXPECT_STATUS(plx__wire_parse(&out, b, (size_t)hdr, MAXP), PLX_EBADMSG);

	/* HELLO v2: id's high half is reserved, its low half the CRC */
	f = sample_hello(0);
	hdr = encode_ok(&f, b);
	EXPECT_U64_EQ(le(b + 8, 4), model_crc(b, (size_t)hdr, 8));
	EXPECT_EQ(le(b + 12, 4), 0);
	b[12] = 1;
	EXPECT_EQ(plx__wire_seal(b), hdr);
	EXPECT_STATUS(plx__wire_parse(&out, b, (size_t)hdr, MAXP), PLX_EPROTO);
	/* a version-1 HELLO is not checked: the handshake refuses it */
	f.hello.version = 1;
	f.id = 0x1234;
	hdr = encode_ok(&f, b);
	EXPECT_U64_EQ(le(b + 8, 8), 0x1234);
	EXPECT_EQ(plx__wire_parse(&out, b, (size_t)hdr, MAXP), hdr);
}

int main(void)
{
	uint64_t seed = plx_test_seed("test_tcp_wire");

	test_every_opcode_round_trips();
	test_unknown_opcode_is_rejected_by_encoder();
	test_golden_bytes();
	test_every_prefix_needs_more();
	test_stream_split_at_every_byte_boundary(seed);
	test_every_single_byte_corruption();
	test_payload_limits();
	test_field_rules();
	test_errors_reported_as_soon_as_visible();
	test_riding_ack();
	test_crc32c();
	fprintf(stderr, "test_tcp_wire: all passed\n");
	return 0;
}
