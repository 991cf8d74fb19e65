/* SPDX-License-Identifier: MIT */
/*
 * test_rdma_cm: the RDMA connection messages (transport/rdma/common/cm.c)
 * that two reactors exchange over TCP: the byte layout, every rule the
 * parser enforces, encode/parse round trips, and that every single-byte
 * change of a valid message either still parses to a message that encodes
 * back to the same bytes or is refused. Needs no RDMA device; runs in
 * every build.
 */
#include <string.h>

#include "harness.h"
#include "transport/rdma/common/cm.h"

static struct plx__cm_msg req(uint8_t nqp)
{
	struct plx__cm_msg m;

	memset(&m, 0, sizeof(m));
	m.kind = PLX__CM_REQ;
	m.nqp = nqp;
	m.mtu = 3; /* IBV_MTU_1024 */
	m.gen = 0x01020304;
	m.rd_atom = 16;
	m.msg_max = 0x1000;
	for (int i = 0; i < 16; i++)
		m.gid[i] = (uint8_t)(0xa0 + i);
	for (uint32_t k = 0; k < nqp; k++) {
		m.qpn[k] = 0x11 + k;
		m.psn[k] = 0xabcdef - k;
	}
	return m;
}

static void test_layout(void)
{
	/* clang-format off */
	static const uint8_t want[40] = {
		0x01, 0x01, 0x01, 0x03, 0x04, 0x03, 0x02, 0x01,
		0x00, 0x00, 0x10, 0x00, 0x00, 0x10, 0x00, 0x00,
		0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
		0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
		0x11, 0x00, 0x00, 0x00, 0xef, 0xcd, 0xab, 0x00,
	};
	/* clang-format on */
	struct plx__cm_msg m = req(1), out;
	uint8_t buf[PLX__CM_MAX];

	EXPECT_EQ(plx__cm_encode(&m, buf, sizeof(buf)), 40);
	EXPECT_MEM_EQ(buf, want, sizeof(want));
	EXPECT_OK(plx__cm_parse(&out, want, sizeof(want)));
	EXPECT_MEM_EQ(&out, &m, sizeof(m));
	EXPECT_STATUS(plx__cm_encode(&m, buf, 39), PLX_ENOSPC);
}

static void roundtrip(const struct plx__cm_msg *m, int len)
{
	struct plx__cm_msg out;
	uint8_t buf[PLX__CM_MAX];

	EXPECT_EQ(plx__cm_encode(m, buf, sizeof(buf)), len);
	EXPECT_OK(plx__cm_parse(&out, buf, (size_t)len));
	EXPECT_MEM_EQ(&out, m, sizeof(*m));
}

static void test_kinds(void)
{
	struct plx__cm_msg m = req(PLX__CM_MAX_QPS);

	roundtrip(&m, PLX__CM_MAX);
	m.kind = PLX__CM_REP;
	roundtrip(&m, PLX__CM_MAX);
	/* InfiniBand: a LID and no GID */
	memset(m.gid, 0, 16);
	m.lid = 7;
	roundtrip(&m, PLX__CM_MAX);
	memset(&m, 0, sizeof(m));
	m.kind = PLX__CM_RTU;
	m.gen = 9;
	roundtrip(&m, PLX__CM_MIN);
	m.kind = PLX__CM_REJ;
	m.status = PLX_EVERBS;
	roundtrip(&m, PLX__CM_MIN);
}

#define BAD(field, value)                                                      \
	do {                                                                   \
		struct plx__cm_msg m_ = req(2);                                \
		uint8_t b_[PLX__CM_MAX];                                       \
		m_.field = value;                                              \
		EXPECT_STATUS(plx__cm_encode(&m_, b_, sizeof(b_)),             \
			      PLX_EINVAL);                                     \
	} while (0)

static void test_rules(void)
{
	struct plx__cm_msg m = req(2), out;
	uint8_t buf[PLX__CM_MAX];
	int n;

	BAD(kind, 0);
	BAD(kind, 5);
	BAD(gen, 0);
	BAD(nqp, 0);
	BAD(nqp, PLX__CM_MAX_QPS + 1);
	BAD(mtu, 0);
	BAD(mtu, 6);
	BAD(rd_atom, 0);
	BAD(rd_atom, 17);
	BAD(status, PLX_EVERBS); /* only a REJ carries a status */
	BAD(qpn[1], 0);		 /* QP0 and QP1 are special */
	BAD(qpn[1], 1);
	BAD(qpn[0], 1u << 24);
	BAD(psn[0], 1u << 24);
	/* neither GID nor LID */
	memset(m.gid, 0, 16);
	EXPECT_STATUS(plx__cm_encode(&m, buf, sizeof(buf)), PLX_EINVAL);
	/* RTU / REJ carry no addressing; REJ needs a failure status */
	memset(&m, 0, sizeof(m));
	m.kind = PLX__CM_RTU;
	m.gen = 1;
	m.msg_max = 64; /* only REQ and REP carry it */
	EXPECT_STATUS(plx__cm_encode(&m, buf, sizeof(buf)), PLX_EINVAL);
	m.msg_max = 0;
	m.nqp = 1;
	EXPECT_STATUS(plx__cm_encode(&m, buf, sizeof(buf)), PLX_EINVAL);
	m.nqp = 0;
	m.lid = 1;
	EXPECT_STATUS(plx__cm_encode(&m, buf, sizeof(buf)), PLX_EINVAL);
	m.lid = 0;
	m.kind = PLX__CM_REJ;
	EXPECT_STATUS(plx__cm_encode(&m, buf, sizeof(buf)), PLX_EINVAL);

	/* the parser: version, pad, length against nqp */
	m = req(2);
	n = plx__cm_encode(&m, buf, sizeof(buf));
	EXPECT_EQ(n, 48);
	EXPECT_OK(plx__cm_parse(&out, buf, 48));
	EXPECT_STATUS(plx__cm_parse(&out, buf, 47), PLX_EPROTO);
	EXPECT_STATUS(plx__cm_parse(&out, buf, 40), PLX_EPROTO);
	EXPECT_STATUS(plx__cm_parse(&out, buf, 0), PLX_EPROTO);
	EXPECT_STATUS(plx__cm_parse(&out, NULL, 48), PLX_EPROTO);
	buf[0] = 2;
	EXPECT_STATUS(plx__cm_parse(&out, buf, 48), PLX_EPROTO);
	buf[0] = 1;
	buf[11] = 1;
	EXPECT_STATUS(plx__cm_parse(&out, buf, 48), PLX_EPROTO);
}

/* Every single-byte change of valid messages: refused, or a message
 * that encodes back to exactly the changed bytes. */
static void test_mutations(void)
{
	struct plx__cm_msg msgs[3] = {req(1), req(PLX__CM_MAX_QPS), {0}};
	uint64_t checked = 0;

	msgs[2].kind = PLX__CM_REJ;
	msgs[2].gen = 77;
	msgs[2].status = PLX_ECONNREFUSED;
	for (int k = 0; k < 3; k++) {
		uint8_t buf[PLX__CM_MAX], back[PLX__CM_MAX];
		int n = plx__cm_encode(&msgs[k], buf, sizeof(buf));

		EXPECT_GT(n, 0);
		for (int i = 0; i < n; i++)
			for (int v = 0; v < 256; v++) {
				uint8_t c[PLX__CM_MAX];
				struct plx__cm_msg out;

				memcpy(c, buf, (size_t)n);
				c[i] = (uint8_t)v;
				if (plx__cm_parse(&out, c, (size_t)n))
					continue;
				EXPECT_EQ(plx__cm_encode(&out, back,
							 sizeof(back)),
					  n);
				EXPECT_MEM_EQ(back, c, (size_t)n);
				checked++;
			}
	}
	EXPECT_GT(checked, 1000);
}

int main(void)
{
	test_layout();
	test_kinds();
	test_rules();
	test_mutations();
	return 0;
}
