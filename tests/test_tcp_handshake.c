/* SPDX-License-Identifier: MIT */
/*
 * TCP handshake state machine: two plx__hs instances talking through the
 * wire encoder and parser, no sockets. Success with and without keys,
 * every failure path and its CLOSE, the key never on the wire, and READY
 * proofs that cover both HELLOs byte for byte (a man in the middle who
 * alters either HELLO fails both sides with PLX_EAUTH).
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

/* The proof's view of the HELLO frame at @frame: flags || extension. */
static void wire_hello(const uint8_t *frame, uint8_t out[PLX__AUTH_HELLO_BYTES])
{
	EXPECT_EQ(frame[2], PLX__OP_HELLO);
	out[0] = frame[3];
	memcpy(out + 1, frame + PLX__WIRE_BASE, PLX__AUTH_HELLO_BYTES - 1);
}

/* Parse the frame @s sent at byte @off into @f (a READY or a HELLO). */
static void frame_at(const struct side *s, size_t off, struct plx__frame *f)
{
	EXPECT_GT(plx__wire_parse(f, s->q + off, s->qlen - off, 0), 0);
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
	EXPECT_EQ(s->hs.version, PLX__WIRE_VERSION);
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
	uint8_t ha[PLX__AUTH_HELLO_BYTES], hb[PLX__AUTH_HELLO_BYTES];
	uint8_t want[PLX__WIRE_PROOF];
	struct plx__frame f;
	struct side a, b;

	side_init(&a, 0, key1, 0);
	side_init(&b, 1, key1, 0);
	run(&a, &b);
	expect_established(&a, &b);
	expect_established(&b, &a);
	EXPECT_U64_EQ(a.hs.caps_common, 0);
	/* each READY proves over its sender's HELLO, then the receiver's */
	wire_hello(a.q, ha);
	wire_hello(b.q, hb);
	EXPECT_EQ(ha[0], PLX__HELLO_AUTH);
	frame_at(&a, PLX__WIRE_HDR_MAX, &f);
	EXPECT_EQ(f.opcode, PLX__OP_READY);
	plx__auth_proof(want, key1, ha, hb);
	EXPECT_MEM_EQ(f.proof, want, sizeof(want));
	frame_at(&b, PLX__WIRE_HDR_MAX, &f);
	EXPECT_EQ(f.opcode, PLX__OP_READY);
	plx__auth_proof(want, key1, hb, ha);
	EXPECT_MEM_EQ(f.proof, want, sizeof(want));
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

/* Set the version field of @s's HELLO (the first frame it sent), and its
 * CRC to match. */
static void patch_hello_version(struct side *s, uint16_t version)
{
	EXPECT_EQ(s->q[2], PLX__OP_HELLO);
	s->q[PLX__WIRE_BASE] = (uint8_t)version;
	s->q[PLX__WIRE_BASE + 1] = (uint8_t)(version >> 8);
	EXPECT_EQ(plx__wire_seal(s->q), PLX__WIRE_HDR_MAX);
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

	/* without keys nothing covers the HELLO: rewriting it is enough */
	side_init(&a, 0, NULL, 0);
	side_init(&b, 1, NULL, 0);
	side_hello(&a);
	side_hello(&b);
	patch_hello_version(&a, 9);
	pump(&a, &b);
	EXPECT_EQ(a.result, 1);
	EXPECT_EQ(b.result, 1);
	EXPECT_EQ(b.hs.version, PLX__WIRE_VERSION);
	EXPECT_EQ(plx__hs_peer(&b.hs)->version, 9);
}

/*
 * A keyed peer that speaks version 9 announces 9 in a HELLO it sent that
 * way, and proves over that HELLO: b negotiates down to 1 and accepts.
 * The peer here is the test itself, computing its proof from the bytes
 * on the wire, so this also pins what the proof covers.
 */
static void test_newer_keyed_peer_negotiates_down(void)
{
	uint8_t ha[PLX__AUTH_HELLO_BYTES], hb[PLX__AUTH_HELLO_BYTES];
	uint8_t want[PLX__WIRE_PROOF];
	struct plx__frame f;
	struct side a, b;

	side_init(&a, 0, key1, PLX__CAP_ALL);
	side_init(&b, 1, key1, PLX__CAP_ALL);
	side_hello(&a);
	side_hello(&b);
	patch_hello_version(&a, 9); /* a stands in for the newer peer */
	wire_hello(a.q, ha);
	wire_hello(b.q, hb);
	frame_at(&a, 0, &f);
	EXPECT_EQ(side_input(&b, &f), 0);
	/* b's READY: its HELLO as sent, then a's as received */
	EXPECT_EQ(b.qlen,
		  PLX__WIRE_HDR_MAX + plx__wire_hdr_size(PLX__OP_READY));
	frame_at(&b, PLX__WIRE_HDR_MAX, &f);
	EXPECT_EQ(f.opcode, PLX__OP_READY);
	plx__auth_proof(want, key1, hb, ha);
	EXPECT_MEM_EQ(f.proof, want, sizeof(want));
	/* the newer peer's READY over the HELLO it really sent */
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_READY;
	plx__auth_proof(f.proof, key1, ha, hb);
	EXPECT_EQ(side_input(&b, &f), 1);
	EXPECT_EQ(b.hs.version, PLX__WIRE_VERSION);
	EXPECT_EQ(plx__hs_peer(&b.hs)->version, 9);
	EXPECT_U64_EQ(b.hs.caps_common, PLX__CAP_ALL);
	EXPECT_EQ(b.closes_sent, 0);
}

/*
 * A man in the middle who knows no key rewrites one byte of one side's
 * HELLO in transit (@from's HELLO, byte @off of the frame, XOR @mask):
 * both sides must fail with PLX_EAUTH and neither may be established.
 */
static void mitm_hello(bool a_to_b, size_t off, uint8_t mask)
{
	struct side a, b;
	struct side *from, *to;

	side_init(&a, 0, key1, PLX__CAP_ALL);
	side_init(&b, 1, key1, PLX__CAP_ALL);
	side_hello(&a);
	side_hello(&b);
	from = a_to_b ? &a : &b;
	to = a_to_b ? &b : &a;
	/*
	 * What the sender queued is what it sent; the receiver sees this.
	 * The CRC is no MAC: the man in the middle recomputes it.
	 */
	from->q[off] ^= mask;
	EXPECT_EQ(plx__wire_seal(from->q), PLX__WIRE_HDR_MAX);
	pump(&a, &b);
	EXPECT_STATUS(a.result, PLX_EAUTH);
	EXPECT_STATUS(b.result, PLX_EAUTH);
	EXPECT_TRUE(!a.hs.ready_received && !b.hs.ready_received);
	EXPECT_EQ(a.npost + b.npost, 0);
	if (off == 3) {
		/* PLX__HELLO_AUTH stripped: refused at HELLO, by the receiver */
		EXPECT_EQ(to->closes_sent, 1);
		EXPECT_EQ(from->closes_sent, 0);
	} else {
		/* both proofs fail: each side rejects the other's */
		EXPECT_EQ(a.closes_sent, 1);
		EXPECT_EQ(b.closes_sent, 1);
	}
	EXPECT_STATUS(to->close_status, PLX_EAUTH);
	expect_key_never_sent(&a);
	expect_key_never_sent(&b);
}

static void test_mitm_altering_a_hello_is_eauth(void)
{
	size_t off;
	int dir;

	for (dir = 0; dir < 2; dir++) {
		/* the flags byte: PLX__HELLO_AUTH (no other bit parses) */
		mitm_hello(dir, 3, PLX__HELLO_AUTH);
		/* version 2 -> 3 and 2 -> 258: still >= 2, so not EVERSION */
		mitm_hello(dir, PLX__WIRE_BASE + 0, 0x01);
		mitm_hello(dir, PLX__WIRE_BASE + 1, 0x01);
		/* conn_index */
		mitm_hello(dir, PLX__WIRE_BASE + 3, 0x01);
		mitm_hello(dir, PLX__WIRE_BASE + 3, 0x80);
		/* caps: strip each known bit (a downgrade), add unknown ones */
		mitm_hello(dir, PLX__WIRE_BASE + 4, PLX__CAP_WRITE_IMM);
		mitm_hello(dir, PLX__WIRE_BASE + 4, PLX__CAP_STRIPE);
		mitm_hello(dir, PLX__WIRE_BASE + 4, PLX__CAP_ALL);
		mitm_hello(dir, PLX__WIRE_BASE + 7, 0x80);
		/*
		 * node_id, epoch, nonce: every byte. The role byte (offset
		 * 18) is left out: any change to it is PLX_EPROTO at HELLO.
		 */
		for (off = PLX__WIRE_BASE + 8; off < PLX__WIRE_HDR_MAX; off++)
			mitm_hello(dir, off, 0x01);
	}
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
		EXPECT_EQ(a.qlen,
			  ready_off + plx__wire_hdr_size(PLX__OP_READY));
		EXPECT_EQ(a.q[ready_off + 2], PLX__OP_READY);
		a.q[ready_off + PLX__WIRE_BASE + byte] ^= 0x01;
		/* past the CRC, which is no MAC, to the proof */
		EXPECT_GT(plx__wire_seal(a.q + ready_off), 0);
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

/*
 * The proof is HMAC-SHA-256(key, label || sender's HELLO || receiver's
 * HELLO) and changes with every single byte of either HELLO, with their
 * order and with the key.
 */
static void test_proof_covers_both_hellos(void)
{
	/* computed independently (Python hmac, hashlib.blake2b) */
	static const uint8_t kat[32] = {0x74, 0x38, 0x1c, 0x9a, 0xb5, 0xa8,
					0xfa, 0x74, 0x2f, 0x21, 0x4a, 0x00,
					0xea, 0x95, 0x04, 0x2d, 0x4b, 0x3d,
					0x8f, 0x3b, 0x90, 0x01, 0x27, 0xbe,
					0x5f, 0xf6, 0xd5, 0x27, 0xa5, 0xdb,
					0x44, 0x6c};
	uint8_t h1[PLX__AUTH_HELLO_BYTES], h2[PLX__AUTH_HELLO_BYTES];
	uint8_t p0[32], p[32];
	int i, side;

	for (i = 0; i < PLX__AUTH_HELLO_BYTES; i++) {
		h1[i] = (uint8_t)i;
		h2[i] = (uint8_t)(0x80 + i);
	}
	plx__auth_proof(p0, key1, h1, h2);
	EXPECT_MEM_EQ(p0, kat, sizeof(kat));
	plx__auth_proof(p, key1, h1, h2);
	EXPECT_OK(plx__auth_verify(p0, p));
	/* direction: a proof cannot be reflected back to its sender */
	plx__auth_proof(p, key1, h2, h1);
	EXPECT_STATUS(plx__auth_verify(p0, p), PLX_EAUTH);
	plx__auth_proof(p, key2, h1, h2);
	EXPECT_STATUS(plx__auth_verify(p0, p), PLX_EAUTH);
	/* every byte of either HELLO, flags byte included */
	for (side = 0; side < 2; side++) {
		uint8_t *h = side ? h2 : h1;

		for (i = 0; i < PLX__AUTH_HELLO_BYTES; i++) {
			h[i] ^= 0x01;
			plx__auth_proof(p, key1, h1, h2);
			if (plx__auth_verify(p0, p) != PLX_EAUTH)
				PLX_FAIL("proof ignores byte %d of HELLO %d", i,
					 side);
			h[i] ^= 0x01;
		}
	}
	plx__auth_proof(p, key1, h1, h2);
	EXPECT_OK(plx__auth_verify(p0, p));
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
	test_proof_covers_both_hellos();
	test_success_without_keys();
	test_success_with_equal_keys();
	test_wrong_key_fails_both_sides();
	test_key_on_one_side_only_fails_both();
	test_version_zero_fails_with_eversion();
	test_newer_peer_version_negotiates_down();
	test_newer_keyed_peer_negotiates_down();
	test_reflected_hello_fails();
	test_ready_before_hello_is_eproto();
	test_out_of_order_frames_are_eproto();
	test_misuse_is_einval();
	test_tampered_proof_is_eauth();
	test_mitm_altering_a_hello_is_eauth();
	test_close_during_handshake_reports_peer_status();
	fprintf(stderr, "test_tcp_handshake: all passed\n");
	return 0;
}
