/* SPDX-License-Identifier: MIT */
/* Region descriptors: wire format, round trips and validation. */
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "pollux/mem.h"

#define B PLX_DESC_BYTES

static struct plx_desc sample_desc(void)
{
	struct plx_desc d;
	int i;

	memset(&d, 0, sizeof(d));
	d.addr = 0x00007f0012345000ull;
	d.len = 0x10000;
	d.key = 0x0123456789abcdefull;
	for (i = 0; i < 16; i++)
		d.owner[i] = (uint8_t)(0xa0 + i);
	d.access = PLX_ACCESS_ALL;
	d.hints = PLX_HINT_TCP | PLX_HINT_RDMA;
	d.rkey = 0xdeadbeef;
	return d;
}

static void expect_desc_eq(const struct plx_desc *a, const struct plx_desc *b)
{
	EXPECT_U64_EQ(a->addr, b->addr);
	EXPECT_U64_EQ(a->len, b->len);
	EXPECT_U64_EQ(a->key, b->key);
	EXPECT_MEM_EQ(a->owner, b->owner, sizeof(a->owner));
	EXPECT_U64_EQ(a->access, b->access);
	EXPECT_U64_EQ(a->hints, b->hints);
	EXPECT_U64_EQ(a->rkey, b->rkey);
}

/* Parse @buf expecting failure @want, and check @out was not written. */
static void expect_parse_fails(const unsigned char *buf, size_t len, int want)
{
	struct plx_desc out, before;

	memset(&out, 0x5a, sizeof(out));
	before = out;
	EXPECT_STATUS(plx_desc_parse(&out, buf, len), want);
	EXPECT_MEM_EQ(&out, &before, sizeof(out));
}

static void serialize_ok(const struct plx_desc *d, unsigned char *buf)
{
	EXPECT_EQ(plx_desc_serialize(d, buf, B), B);
}

static void test_serialize_matches_golden_bytes(void)
{
	/* clang-format off */
	static const unsigned char want[B] = {
		'P', 'D', 1, 0x01, 64, 0, 0x03, 0x00,
		0x00, 0x50, 0x34, 0x12, 0x00, 0x7f, 0x00, 0x00,
		0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
		0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01,
		0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
		0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
		0x03, 0x00, 0x00, 0x00, 0xef, 0xbe, 0xad, 0xde,
		0, 0, 0, 0, 0, 0, 0, 0,
	};
	/* clang-format on */
	struct plx_desc d = sample_desc(), out;
	unsigned char buf[B];

	serialize_ok(&d, buf);
	EXPECT_MEM_EQ(buf, want, B);
	EXPECT_EQ(plx_desc_parse(&out, want, B), B);
	expect_desc_eq(&out, &d);
}

static void test_round_trip_preserves_every_field(void)
{
	struct plx_desc cases[5], out;
	unsigned char buf[B + 16];
	int i;

	cases[0] = sample_desc();
	cases[1] = sample_desc();
	cases[1].hints = PLX_HINT_TCP; /* no rkey flag */
	cases[1].rkey = 0;
	cases[1].access = 0;
	cases[2] = sample_desc();
	cases[2].addr = 0;
	cases[2].len = UINT64_MAX;
	cases[2].key = UINT64_MAX;
	cases[2].hints = PLX_HINT_TCP | PLX_HINT_RDMA | PLX_HINT_CUDA;
	cases[2].access = PLX_ACCESS_REMOTE_READ;
	memset(cases[2].owner, 0xff, sizeof(cases[2].owner));
	cases[3] = sample_desc();
	cases[3].addr = UINT64_MAX - 1;
	cases[3].len = 1;
	cases[3].hints = 0;
	cases[3].access = PLX_ACCESS_REMOTE_WRITE;
	cases[4] = sample_desc();
	cases[4].hints = PLX_HINT_CUDA;
	cases[4].rkey = 0x12345678; /* carried even without the RDMA hint */

	for (i = 0; i < 5; i++) {
		memset(buf, 0xee, sizeof(buf));
		EXPECT_EQ(plx_desc_serialize(&cases[i], buf, sizeof(buf)), B);
		/* nothing written past the descriptor */
		EXPECT_EQ(buf[B], 0xee);
		memset(&out, 0, sizeof(out));
		/* trailing bytes are not consumed */
		EXPECT_EQ(plx_desc_parse(&out, buf, sizeof(buf)), B);
		expect_desc_eq(&out, &cases[i]);
	}
}

static void test_serialize_small_buffer_is_enospc(void)
{
	struct plx_desc d = sample_desc();
	unsigned char buf[B];
	size_t cap;

	for (cap = 0; cap < B; cap++) {
		memset(buf, 0xee, sizeof(buf));
		EXPECT_STATUS(plx_desc_serialize(&d, buf, cap), PLX_ENOSPC);
		EXPECT_EQ(buf[0], 0xee);
	}
}

static void test_serialize_rejects_invalid_desc(void)
{
	struct plx_desc d;
	unsigned char buf[B];

	EXPECT_STATUS(plx_desc_serialize(NULL, buf, B), PLX_EINVAL);
	d = sample_desc();
	EXPECT_STATUS(plx_desc_serialize(&d, NULL, B), PLX_EINVAL);
	d.access = 0x4;
	EXPECT_STATUS(plx_desc_serialize(&d, buf, B), PLX_EINVAL);
	d = sample_desc();
	d.hints = 0x8;
	EXPECT_STATUS(plx_desc_serialize(&d, buf, B), PLX_EINVAL);
	d = sample_desc();
	d.len = 0;
	EXPECT_STATUS(plx_desc_serialize(&d, buf, B), PLX_EINVAL);
	d = sample_desc();
	d.addr = UINT64_MAX;
	d.len = 2;
	EXPECT_STATUS(plx_desc_serialize(&d, buf, B), PLX_EINVAL);
}

static void test_parse_truncated_is_emsgsize(void)
{
	struct plx_desc d = sample_desc(), out;
	unsigned char buf[B];
	size_t len;

	serialize_ok(&d, buf);
	for (len = 0; len < B; len++)
		expect_parse_fails(buf, len, PLX_EMSGSIZE);
	EXPECT_STATUS(plx_desc_parse(NULL, buf, B), PLX_EINVAL);
	EXPECT_STATUS(plx_desc_parse(&out, NULL, B), PLX_EINVAL);
}

/* One byte of the sample descriptor set to @val must fail with @want. */
struct bad_byte {
	unsigned int off;
	uint8_t val;
	int want;
	const char *what;
};

/* clang-format off */
static const struct bad_byte bad_bytes[] = {
	{ 0, 'X', PLX_EBADMSG, "magic byte 0" },
	{ 1, 'P', PLX_EBADMSG, "magic byte 1" },
	{ 0, 'D', PLX_EBADMSG, "magic 'DD'" },
	{ 2, 0, PLX_EPROTONOSUPPORT, "version 0" },
	{ 2, 2, PLX_EPROTONOSUPPORT, "version 2" },
	{ 2, 0xff, PLX_EPROTONOSUPPORT, "version 255" },
	{ 3, 0x03, PLX_EBADMSG, "unknown flag" },
	{ 3, 0x80, PLX_EBADMSG, "unknown high flag" },
	{ 3, 0x00, PLX_EBADMSG, "RDMA hint without rkey flag" },
	{ 48, 0x01, PLX_EBADMSG, "rkey flag without RDMA hint" },
	{ 48, 0x0b, PLX_EBADMSG, "unknown hint" },
	{ 51, 0x80, PLX_EBADMSG, "unknown high hint" },
	{ 4, 63, PLX_EBADMSG, "length field 63" },
	{ 4, 65, PLX_EBADMSG, "length field 65" },
	{ 5, 1, PLX_EBADMSG, "length field high byte" },
	{ 6, 0x07, PLX_EBADMSG, "unknown access bit" },
	{ 7, 0x01, PLX_EBADMSG, "unknown high access bit" },
	{ 18, 0x00, PLX_EBADMSG, "zero length" },
	{ 56, 0x01, PLX_EBADMSG, "reserved first byte" },
	{ 63, 0x80, PLX_EBADMSG, "reserved last byte" },
};
/* clang-format on */

static void test_parse_rejects_bad_header_and_fields(void)
{
	struct plx_desc d = sample_desc();
	unsigned char good[B], buf[B];
	size_t i;

	serialize_ok(&d, good);
	for (i = 0; i < sizeof(bad_bytes) / sizeof(bad_bytes[0]); i++) {
		memcpy(buf, good, B);
		buf[bad_bytes[i].off] = bad_bytes[i].val;
		if (plx_desc_parse(&d, buf, B) != bad_bytes[i].want)
			PLX_FAIL("%s: not %s", bad_bytes[i].what,
				 plx_errname(bad_bytes[i].want));
		expect_parse_fails(buf, B, bad_bytes[i].want);
	}
}

static void test_parse_rejects_wrapping_range(void)
{
	struct plx_desc d = sample_desc();
	unsigned char buf[B];

	/* last byte at 2^64 - 2: valid (the end, addr + len, must fit) */
	d.addr = UINT64_MAX - 16;
	d.len = 16;
	serialize_ok(&d, buf);
	EXPECT_EQ(plx_desc_parse(&d, buf, B), B);
	buf[16] = 17; /* addr + len == 2^64: wraps to 0 */
	expect_parse_fails(buf, B, PLX_EBADMSG);
	memset(buf + 16, 0xff, 8); /* len 2^64 - 1 */
	expect_parse_fails(buf, B, PLX_EBADMSG);
}

/*
 * Model of one changed byte: apply @x (xor mask) at byte @off to the
 * struct, field by field, and say what parse must return.
 */
static int model_flip(struct plx_desc *d, unsigned int off, uint8_t x)
{
	uint32_t flags_rkey = (d->hints & PLX_HINT_RDMA) ? 1 : 0;

	if (off < 2)
		return PLX_EBADMSG; /* magic */
	if (off == 2)
		return PLX_EPROTONOSUPPORT;
	if (off == 3 || off == 4 || off == 5 || off >= 56)
		return PLX_EBADMSG; /* flags, length, reserved */
	if (off < 8) {
		d->access ^= (uint32_t)x << (8 * (off - 6));
		return (d->access & ~PLX_ACCESS_ALL) ? PLX_EBADMSG : B;
	}
	if (off < 16) {
		d->addr ^= (uint64_t)x << (8 * (off - 8));
	} else if (off < 24) {
		d->len ^= (uint64_t)x << (8 * (off - 16));
	} else if (off < 32) {
		d->key ^= (uint64_t)x << (8 * (off - 24));
		return B;
	} else if (off < 48) {
		d->owner[off - 32] ^= x;
		return B;
	} else if (off < 52) {
		d->hints ^= (uint32_t)x << (8 * (off - 48));
		if (d->hints &
		    ~(uint32_t)(PLX_HINT_TCP | PLX_HINT_RDMA | PLX_HINT_CUDA))
			return PLX_EBADMSG;
		/* the flags byte no longer matches the RDMA hint */
		return ((d->hints & PLX_HINT_RDMA) ? 1u : 0u) != flags_rkey ?
			       PLX_EBADMSG :
			       B;
	} else {
		d->rkey ^= (uint32_t)x << (8 * (off - 52));
		return B;
	}
	if (d->len == 0 || d->len > UINT64_MAX - d->addr)
		return PLX_EBADMSG;
	return B;
}

static void check_flips(const struct plx_desc *base)
{
	static const uint8_t masks[] = {0x01, 0x02, 0x04, 0x08, 0x10,
					0x20, 0x40, 0x80, 0xff, 0x5a};
	unsigned char good[B], buf[B];
	struct plx_desc want, out;
	unsigned int off, m;
	int expect;

	serialize_ok(base, good);
	for (off = 0; off < B; off++) {
		for (m = 0; m < sizeof(masks); m++) {
			memcpy(buf, good, B);
			buf[off] ^= masks[m];
			want = *base;
			expect = model_flip(&want, off, masks[m]);
			if (expect < 0) {
				expect_parse_fails(buf, B, expect);
				continue;
			}
			memset(&out, 0, sizeof(out));
			EXPECT_EQ(plx_desc_parse(&out, buf, B), B);
			expect_desc_eq(&out, &want);
		}
	}
}

static void test_every_byte_flip_fails_cleanly_or_changes_one_field(void)
{
	struct plx_desc d = sample_desc();

	check_flips(&d);
	/* a range close to the top, so addr and len flips can wrap */
	d.addr = 0xfffffffffff00000ull;
	d.len = 0x80000;
	d.hints = PLX_HINT_TCP;
	d.rkey = 0;
	d.access = PLX_ACCESS_REMOTE_READ;
	check_flips(&d);
}

int main(void)
{
	test_serialize_matches_golden_bytes();
	test_round_trip_preserves_every_field();
	test_serialize_small_buffer_is_enospc();
	test_serialize_rejects_invalid_desc();
	test_parse_truncated_is_emsgsize();
	test_parse_rejects_bad_header_and_fields();
	test_parse_rejects_wrapping_range();
	test_every_byte_flip_fails_cleanly_or_changes_one_field();
	return 0;
}
