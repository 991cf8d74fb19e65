/* SPDX-License-Identifier: MIT */
/*
 * TCP handshake state machine: two plx__hs instances talking through the
 * wire encoder and parser, no sockets. Success with and without keys,
 * every failure path and its CLOSE, and the key never on the wire.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "transport/tcp/auth.h"
#include "transport/tcp/handshake.h"
#include "transport/tcp/wire.h"

#define QCAP 4096

struct side {
	struct plx__hs hs;
	uint8_t q[QCAP]; /* every byte this side sent, in order */
	size_t qlen;
	size_t qoff; /* bytes delivered to the peer */
	int result;  /* last non-zero plx__hs_input() result */
	int closes_sent;
	int close_status;
	struct plx__frame post[8]; /* frames after establishment */
	int npost;
};

static const uint8_t node_a[16] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5,
				   0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab,
				   0xac, 0xad, 0xae, 0xaf};
static const uint8_t node_b[16] = {0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5,
				   0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb,
				   0xbc, 0xbd, 0xbe, 0xbf};

static uint8_t key1[32], key2[32];
static const char psk1[] = "correct horse battery staple";
static const char psk2[] = "correct horse battery stapler";

static void side_init(struct side *s, uint8_t role, const uint8_t *key,
		      uint32_t caps)
{
	memset(s, 0, sizeof(*s));
	EXPECT_OK(plx__hs_init(&s->hs, role ? node_b : node_a,
			       role ? 0x2222 : 0x1111, role, 3, caps, key));
}

static void side_send(struct side *s, const uint8_t *p, size_t len)
{
	struct plx__frame f;

	EXPECT_LE(s->qlen + len, QCAP);
	memcpy(s->q + s->qlen, p, len);
	s->qlen += len;
	/* what a side sends is always one valid frame */
	EXPECT_EQ(plx__wire_parse(&f, p, len, 0), (int)len);
	if (f.opcode == PLX__OP_CLOSE) {
		s->closes_sent++;
		s->close_status = f.status;
	}
}

static void side_hello(struct side *s)
{
	uint8_t out[PLX__WIRE_HDR_MAX];
	int n = plx__hs_hello(&s->hs, out);

	EXPECT_EQ(n, PLX__WIRE_HDR_MAX);
	side_send(s, out, (size_t)n);
	EXPECT_STATUS(plx__hs_hello(&s->hs, out), PLX_EALREADY);
}

/* Feed @to one frame; returns plx__hs_input()'s result. */
static int side_input(struct side *to, const struct plx__frame *f)
{
	uint8_t out[PLX__WIRE_HDR_MAX];
	size_t out_len = 123;
	int ret;

	if (to->result == 1) {
		/* established: the transport's business from here on */
		EXPECT_LT(to->npost, 8);
		to->post[to->npost++] = *f;
		return 1;
	}
	ret = plx__hs_input(&to->hs, f, out, &out_len);
	EXPECT_LE(out_len, sizeof(out));
	if (out_len)
		side_send(to, out, out_len);
	if (ret < 0 && to->result < 0) {
		/* failure is sticky and silent the second time */
		EXPECT_STATUS(ret, to->result);
		EXPECT_EQ(out_len, 0);
	}
	if (ret != 0)
		to->result = ret;
	EXPECT_EQ(to->hs.status, to->result);
	return ret;
}

/* Deliver every complete frame @from has sent and @to has not seen. */
static bool deliver(struct side *from, struct side *to)
{
	struct plx__frame f;
	bool any = false;
	int n;

	while (from->qoff < from->qlen) {
		n = plx__wire_parse(&f, from->q + from->qoff,
				    from->qlen - from->qoff, 1 << 20);
		EXPECT_GT(n, 0);
		from->qoff += (size_t)n + f.payload_len;
		side_input(to, &f);
		any = true;
	}
	return any;
}

static void pump(struct side *a, struct side *b)
{
	bool more = true;

	while (more) {
		more = deliver(a, b);
		more = deliver(b, a) || more;
	}
}

static void expect_key_never_sent(const struct side *s)
{
	size_t i;

	for (i = 0; i + 32 <= s->qlen; i++) {
		if (memcmp(s->q + i, key1, 32) == 0 ||
		    memcmp(s->q + i, key2, 32) == 0)
			PLX_FAIL("a derived key appears at byte %zu", i);
		if (i + sizeof(psk1) - 1 <= s->qlen &&
		    memcmp(s->q + i, psk1, sizeof(psk1) - 1) == 0)
			PLX_FAIL("the PSK appears at byte %zu", i);
	}
}

/* Run a whole handshake between a (connect) and b (accept). */
static void run(struct side *a, struct side *b)
{
	side_hello(a);
	side_hello(b);
	pump(a, b);
	expect_key_never_sent(a);
	expect_key_never_sent(b);
}

static void expect_established(const struct side *s, const struct side *peer)
{
	const struct plx__hello *p = plx__hs_peer(&s->hs);

	EXPECT_EQ(s->result, 1);
	EXPECT_EQ(s->hs.status, 1);
	EXPECT_TRUE(s->hs.hello_sent && s->hs.hello_received);
	EXPECT_TRUE(s->hs.ready_sent && s->hs.ready_received);
	EXPECT_EQ(s->closes_sent, 0);
	EXPECT_TRUE(p != NULL);
	EXPECT_EQ(p->role, peer->hs.role);
	EXPECT_EQ(p->conn_index, 3);
	EXPECT_MEM_EQ(p->node_id, peer->hs.node_id, 16);
	EXPECT_U64_EQ(p->epoch, peer->hs.epoch);
	EXPECT_MEM_EQ(p->nonce, peer->hs.nonce, PLX__WIRE_NONCE);
	EXPECT_EQ(s->hs.version, 1);
}

static void test_success_without_keys(void)
{
	struct side a, b;

	side_init(&a, 0, NULL, PLX__CAP_ALL);
	side_init(&b, 1, NULL, PLX__CAP_WRITE_IMM | 0x80000000u);
	EXPECT_TRUE(plx__hs_peer(&a.hs) == NULL);
	run(&a, &b);
	expect_established(&a, &b);
	expect_established(&b, &a);
	/* unknown caps bits are ignored; the common set is used */
	EXPECT_U64_EQ(a.hs.caps_common, PLX__CAP_WRITE_IMM);
	EXPECT_U64_EQ(b.hs.caps_common, PLX__CAP_WRITE_IMM);
	EXPECT_EQ(a.npost, 0);
	EXPECT_EQ(b.npost, 0);
	/* nonces are fresh */
	EXPECT_TRUE(memcmp(a.hs.nonce, b.hs.nonce, PLX__WIRE_NONCE) != 0);
}

static void test_success_with_equal_keys(void)
{
	struct side a, b;

	side_init(&a, 0, key1, 0);
	side_init(&b, 1, key1, 0);
	run(&a, &b);
	expect_established(&a, &b);
	expect_established(&b, &a);
	EXPECT_U64_EQ(a.hs.caps_common, 0);
}

static void test_wrong_key_fails_both_sides(void)
{
	struct side a, b;

	side_init(&a, 0, key1, 0);
	side_init(&b, 1, key2, 0);
	run(&a, &b);
	EXPECT_STATUS(a.result, PLX_EAUTH);
	EXPECT_STATUS(b.result, PLX_EAUTH);
	/* each side detects the bad proof and says so */
	EXPECT_EQ(a.closes_sent, 1);
	EXPECT_STATUS(a.close_status, PLX_EAUTH);
	EXPECT_EQ(b.closes_sent, 1);
	EXPECT_STATUS(b.close_status, PLX_EAUTH);
}

static void test_key_on_one_side_only_fails_both(void)
{
	struct side a, b;
	int i;

	for (i = 0; i < 2; i++) {
		side_init(&a, 0, i ? key1 : NULL, 0);
		side_init(&b, 1, i ? NULL : key1, 0);
		run(&a, &b);
		EXPECT_STATUS(a.result, PLX_EAUTH);
		EXPECT_STATUS(b.result, PLX_EAUTH);
		EXPECT_EQ(a.closes_sent, 1);
		EXPECT_EQ(b.closes_sent, 1);
		/* refused at HELLO: nobody sent READY */
		EXPECT_TRUE(!a.hs.ready_sent && !b.hs.ready_sent);
	}
}

/* Set the version field of @s's HELLO (the first frame it sent). */
static void patch_hello_version(struct side *s, uint16_t version)
{
	EXPECT_EQ(s->q[2], PLX__OP_HELLO);
	s->q[PLX__WIRE_BASE] = (uint8_t)version;
	s->q[PLX__WIRE_BASE + 1] = (uint8_t)(version >> 8);
}

static void test_version_zero_fails_with_eversion(void)
{
	struct side a, b;

	side_init(&a, 0, NULL, 0);
	side_init(&b, 1, NULL, 0);
	side_hello(&a);
	side_hello(&b);
	patch_hello_version(&a, 0);
	pump(&a, &b);
	/* b refuses and says why; a learns it from b's CLOSE */
	EXPECT_STATUS(b.result, PLX_EVERSION);
	EXPECT_EQ(b.closes_sent, 1);
	EXPECT_STATUS(b.close_status, PLX_EVERSION);
	EXPECT_STATUS(a.result, PLX_EVERSION);
	EXPECT_EQ(a.closes_sent, 0);
}

static void test_newer_peer_version_negotiates_down(void)
{
	struct side a, b;

	side_init(&a, 0, key1, 0);
	side_init(&b, 1, key1, 0);
	side_hello(&a);
	side_hello(&b);
	patch_hello_version(&a, 9);
	pump(&a, &b);
	EXPECT_EQ(a.result, 1);
	EXPECT_EQ(b.result, 1);
	EXPECT_EQ(b.hs.version, 1);
	EXPECT_EQ(plx__hs_peer(&b.hs)->version, 9);
}

/* Parse @s's first sent frame (its HELLO) into @f. */
static void first_frame(const struct side *s, struct plx__frame *f)
{
	EXPECT_EQ(plx__wire_parse(f, s->q, s->qlen, 0), PLX__WIRE_HDR_MAX);
}

static void test_reflected_hello_fails(void)
{
	struct plx__frame f;
	struct side a;

	/* without a key: our own role comes back */
	side_init(&a, 0, NULL, 0);
	side_hello(&a);
	first_frame(&a, &f);
	EXPECT_STATUS(side_input(&a, &f), PLX_EPROTO);
	EXPECT_STATUS(a.close_status, PLX_EPROTO);

	/* with a key: our own nonce comes back */
	side_init(&a, 1, key1, 0);
	side_hello(&a);
	first_frame(&a, &f);
	EXPECT_STATUS(side_input(&a, &f), PLX_EAUTH);
	EXPECT_STATUS(a.close_status, PLX_EAUTH);
	/* even with the role flipped */
	side_init(&a, 1, key1, 0);
	side_hello(&a);
	first_frame(&a, &f);
	f.hello.role = 0;
	EXPECT_STATUS(side_input(&a, &f), PLX_EAUTH);
	expect_key_never_sent(&a);
}

static void test_ready_before_hello_is_eproto(void)
{
	struct plx__frame f;
	struct side a;

	side_init(&a, 0, NULL, 0);
	side_hello(&a);
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_READY;
	EXPECT_STATUS(side_input(&a, &f), PLX_EPROTO);
	EXPECT_EQ(a.closes_sent, 1);
	EXPECT_STATUS(a.close_status, PLX_EPROTO);
	/* sticky, and silent */
	EXPECT_STATUS(side_input(&a, &f), PLX_EPROTO);
	EXPECT_EQ(a.closes_sent, 1);
}

static void test_out_of_order_frames_are_eproto(void)
{
	struct plx__frame hb, f;
	struct side a, b;

	/* a data frame during the handshake */
	side_init(&a, 0, NULL, 0);
	side_hello(&a);
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_PING;
	EXPECT_STATUS(side_input(&a, &f), PLX_EPROTO);

	/* a second HELLO */
	side_init(&a, 0, NULL, 0);
	side_init(&b, 1, NULL, 0);
	side_hello(&a);
	side_hello(&b);
	first_frame(&b, &hb);
	EXPECT_EQ(side_input(&a, &hb), 0);
	EXPECT_STATUS(side_input(&a, &hb), PLX_EPROTO);

	/* a nonzero proof from a peer that announced no key */
	side_init(&a, 0, NULL, 0);
	side_hello(&a);
	EXPECT_EQ(side_input(&a, &hb), 0);
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_READY;
	f.proof[31] = 1;
	EXPECT_STATUS(side_input(&a, &f), PLX_EPROTO);
}

static void test_misuse_is_einval(void)
{
	uint8_t out[PLX__WIRE_HDR_MAX];
	struct plx__frame hb, f;
	struct side a, b;
	size_t out_len;

	/* input before our HELLO went out */
	side_init(&a, 0, NULL, 0);
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_HELLO;
	EXPECT_STATUS(plx__hs_input(&a.hs, &f, out, &out_len), PLX_EINVAL);
	EXPECT_EQ(out_len, 0);
	EXPECT_EQ(a.hs.status, 0);

	/* input after establishment */
	side_init(&a, 0, NULL, 0);
	side_init(&b, 1, NULL, 0);
	run(&a, &b);
	EXPECT_EQ(a.result, 1);
	first_frame(&b, &hb);
	EXPECT_STATUS(plx__hs_input(&a.hs, &hb, out, &out_len), PLX_EINVAL);
	EXPECT_EQ(out_len, 0);
	EXPECT_EQ(a.hs.status, 1);

	EXPECT_STATUS(plx__hs_init(&a.hs, node_a, 1, 2, 0, 0, NULL),
		      PLX_EINVAL);
}

static void test_tampered_proof_is_eauth(void)
{
	struct side a, b;
	size_t ready_off = PLX__WIRE_HDR_MAX; /* a: HELLO, then READY */
	int byte;

	for (byte = 0; byte < PLX__WIRE_PROOF; byte += 7) {
		side_init(&a, 0, key1, 0);
		side_init(&b, 1, key1, 0);
		side_hello(&a);
		side_hello(&b);
		/* b's HELLO reaches a, which answers READY */
		EXPECT_TRUE(deliver(&b, &a));
		EXPECT_EQ(a.qlen, ready_off + PLX__WIRE_BASE + PLX__WIRE_PROOF);
		EXPECT_EQ(a.q[ready_off + 2], PLX__OP_READY);
		a.q[ready_off + PLX__WIRE_BASE + byte] ^= 0x01;
		pump(&a, &b);
		EXPECT_STATUS(b.result, PLX_EAUTH);
		EXPECT_EQ(b.closes_sent, 1);
		EXPECT_STATUS(b.close_status, PLX_EAUTH);
		/*
		 * a verified b's good proof before b's verdict arrived: it
		 * is established, and the first frame its transport sees
		 * is b's CLOSE(PLX_EAUTH).
		 */
		EXPECT_EQ(a.result, 1);
		EXPECT_EQ(a.npost, 1);
		EXPECT_EQ(a.post[0].opcode, PLX__OP_CLOSE);
		EXPECT_STATUS(a.post[0].status, PLX_EAUTH);
	}
}

static void test_close_during_handshake_reports_peer_status(void)
{
	struct plx__frame f;
	struct side a;

	side_init(&a, 0, key1, 0);
	side_hello(&a);
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_CLOSE;
	f.status = PLX_EAUTH;
	EXPECT_STATUS(side_input(&a, &f), PLX_EAUTH);
	EXPECT_EQ(a.closes_sent, 0);

	side_init(&a, 1, NULL, 0);
	side_hello(&a);
	f.status = 0;
	EXPECT_STATUS(side_input(&a, &f), PLX_ECONNREFUSED);
	EXPECT_EQ(a.closes_sent, 0);
}

static void test_proof_binds_role_and_direction(void)
{
	uint8_t n1[32], n2[32], p[4][32];

	memset(n1, 1, sizeof(n1));
	memset(n2, 2, sizeof(n2));
	plx__auth_proof(p[0], key1, 0, n1, n2, node_a, 1, node_b, 2);
	plx__auth_proof(p[1], key1, 1, n1, n2, node_a, 1, node_b, 2);
	plx__auth_proof(p[2], key1, 0, n2, n1, node_a, 1, node_b, 2);
	plx__auth_proof(p[3], key2, 0, n1, n2, node_a, 1, node_b, 2);
	EXPECT_STATUS(plx__auth_verify(p[0], p[1]), PLX_EAUTH);
	EXPECT_STATUS(plx__auth_verify(p[0], p[2]), PLX_EAUTH);
	EXPECT_STATUS(plx__auth_verify(p[0], p[3]), PLX_EAUTH);
	plx__auth_proof(p[1], key1, 0, n1, n2, node_a, 1, node_b, 2);
	EXPECT_OK(plx__auth_verify(p[0], p[1]));
}

static void test_key_derivation(void)
{
	uint8_t k[32], k2[32];
	uint8_t psk[32];

	EXPECT_STATUS(plx__auth_key_derive(k, psk1, 0), PLX_EINVAL);
	EXPECT_STATUS(plx__auth_key_derive(k, NULL, 4), PLX_EINVAL);
	/* deterministic, PSK-dependent */
	EXPECT_OK(plx__auth_key_derive(k, psk1, sizeof(psk1) - 1));
	EXPECT_MEM_EQ(k, key1, 32);
	EXPECT_TRUE(memcmp(key1, key2, 32) != 0);
	/* a 32-byte PSK is not used as the key itself */
	memset(psk, 0x42, sizeof(psk));
	EXPECT_OK(plx__auth_key_derive(k2, psk, sizeof(psk)));
	EXPECT_TRUE(memcmp(k2, psk, sizeof(psk)) != 0);
	EXPECT_TRUE(memcmp(key1, psk1, sizeof(psk1) - 1) != 0);
}

int main(void)
{
	EXPECT_OK(plx__auth_key_derive(key1, psk1, sizeof(psk1) - 1));
	EXPECT_OK(plx__auth_key_derive(key2, psk2, sizeof(psk2) - 1));

	test_key_derivation();
	test_proof_binds_role_and_direction();
	test_success_without_keys();
	test_success_with_equal_keys();
	test_wrong_key_fails_both_sides();
	test_key_on_one_side_only_fails_both();
	test_version_zero_fails_with_eversion();
	test_newer_peer_version_negotiates_down();
	test_reflected_hello_fails();
	test_ready_before_hello_is_eproto();
	test_out_of_order_frames_are_eproto();
	test_misuse_is_einval();
	test_tampered_proof_is_eauth();
	test_close_during_handshake_reports_peer_status();
	fprintf(stderr, "test_tcp_handshake: all passed\n");
	return 0;
}
