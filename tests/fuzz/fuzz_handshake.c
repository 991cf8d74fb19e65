/* SPDX-License-Identifier: MIT */
/*
 * fuzz_handshake: the input is a byte stream from a peer. It is cut into
 * frames with plx__wire_parse() (payloads skipped) and fed to a plx__hs
 * in both roles, with and without a key, until the handshake ends or the
 * stream does. Our side's nonce and identity are fixed (fuzz_hs_fixture.h)
 * so seeded transcripts can complete the authenticated handshake.
 *
 * Invariants: results are 0, 1 or negative, and hs->status follows them;
 * our HELLO is the fixture's, byte for byte; what we send is exactly one
 * valid READY (while continuing) or CLOSE carrying the failure; a READY
 * proof is the right HMAC over our HELLO and the peer's HELLO bytes as
 * they appear in the input (zeros without a key); a failure is sticky and
 * silent; established means both READYs; the key never appears in what we
 * send.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz/fuzz_hs_fixture.h"
#include "pollux/status.h"
#include "transport/tcp/auth.h"
#include "transport/tcp/handshake.h"
#include "transport/tcp/wire.h"

#define FUZZ_MAX_PAYLOAD 4096

static uint8_t key[32];

static bool contains(const uint8_t *hay, size_t n, const uint8_t *needle,
		     size_t m)
{
	size_t i;

	for (i = 0; i + m <= n; i++)
		if (memcmp(hay + i, needle, m) == 0)
			return true;
	return false;
}

/*
 * Check what one plx__hs_input() call produced. @in was parsed from the
 * bytes at @raw; @ours is our HELLO as the proof covers it.
 */
static void check_output(const struct plx__hs *hs, const struct plx__frame *in,
			 const uint8_t *raw, const uint8_t *ours, int r,
			 const uint8_t *out, size_t out_len)
{
	static const uint8_t zero[PLX__WIRE_PROOF];
	uint8_t theirs[PLX__AUTH_HELLO_BYTES];
	struct plx__frame o;
	uint8_t want[PLX__WIRE_PROOF];
	const struct plx__hello *p;

	FUZZ_CHECK(r <= 1);
	FUZZ_CHECK(hs->status == r);
	FUZZ_CHECK(out_len <= PLX__WIRE_HDR_MAX);
	if (out_len == 0) {
		/* failures we detect are always announced */
		if (r < 0)
			FUZZ_CHECK(in->opcode == PLX__OP_CLOSE);
		return;
	}
	FUZZ_CHECK(plx__wire_parse(&o, out, out_len, 0) == (int)out_len);
	FUZZ_CHECK(!hs->have_key || !contains(out, out_len, key, 8));
	if (o.opcode == PLX__OP_CLOSE) {
		FUZZ_CHECK(r < 0 && o.status == r);
		return;
	}
	FUZZ_CHECK(o.opcode == PLX__OP_READY && r == 0);
	FUZZ_CHECK(in->opcode == PLX__OP_HELLO);
	FUZZ_CHECK(hs->hello_received && hs->ready_sent);
	p = plx__hs_peer(hs);
	FUZZ_CHECK(p != NULL && p->role == (hs->role ^ 1));
	FUZZ_CHECK(hs->version == PLX__WIRE_VERSION &&
		   p->version >= PLX__WIRE_VERSION_MIN);
	FUZZ_CHECK((hs->caps_common & ~(hs->caps & p->caps)) == 0);
	if (!hs->have_key) {
		FUZZ_CHECK(memcmp(o.proof, zero, sizeof(zero)) == 0);
		return;
	}
	FUZZ_CHECK(memcmp(p->nonce, hs->nonce, sizeof(hs->nonce)) != 0);
	/* the peer's HELLO straight from the input: flags, extension */
	theirs[0] = raw[3];
	memcpy(theirs + 1, raw + PLX__WIRE_BASE, PLX__AUTH_HELLO_BYTES - 1);
	plx__auth_proof(want, key, ours, theirs);
	FUZZ_CHECK(memcmp(o.proof, want, sizeof(want)) == 0);
}

static void run_one(const uint8_t *data, size_t size, uint8_t role,
		    bool with_key)
{
	uint8_t node[16], out[PLX__WIRE_HDR_MAX];
	uint8_t ours[PLX__AUTH_HELLO_BYTES];
	struct plx__frame f, last;
	struct plx__hs hs;
	size_t off = 0, out_len;
	int n, r = 0;
	bool fed = false;

	fuzz_hs_node(node);
	FUZZ_CHECK(plx__hs_init(&hs, node, FUZZ_HS_EPOCH, role, FUZZ_HS_CONN,
				FUZZ_HS_CAPS, with_key ? key : NULL) == 0);
	fuzz_hs_nonce(hs.nonce);
	FUZZ_CHECK(plx__hs_hello(&hs, out) == PLX__WIRE_HDR_MAX);
	fuzz_hs_our_hello(ours, role, with_key);
	FUZZ_CHECK(out[3] == ours[0]);
	FUZZ_CHECK(memcmp(out + PLX__WIRE_BASE, ours + 1, sizeof(ours) - 1) ==
		   0);

	while (r == 0 && off < size) {
		n = plx__wire_parse(&f, data + off, size - off,
				    FUZZ_MAX_PAYLOAD);
		if (n <= 0)
			break; /* the transport closes, or waits for more */
		if (f.payload_len > size - off - (size_t)n)
			break;
		r = plx__hs_input(&hs, &f, out, &out_len);
		check_output(&hs, &f, data + off, ours, r, out, out_len);
		off += (size_t)n + f.payload_len;
		last = f;
		fed = true;
	}
	if (!fed)
		return;
	if (r == 1) {
		FUZZ_CHECK(hs.hello_received && hs.ready_sent);
		FUZZ_CHECK(hs.ready_received && hs.status == 1);
		FUZZ_CHECK(plx__hs_input(&hs, &last, out, &out_len) ==
			   PLX_EINVAL);
		FUZZ_CHECK(out_len == 0 && hs.status == 1);
	} else if (r < 0) {
		FUZZ_CHECK(plx__hs_input(&hs, &last, out, &out_len) == r);
		FUZZ_CHECK(out_len == 0 && hs.status == r);
	} else {
		FUZZ_CHECK(hs.status == 0 && !hs.ready_received);
	}
	plx__hs_wipe(&hs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;

	if (!init) {
		FUZZ_CHECK(plx__auth_key_derive(key, FUZZ_HS_PSK,
						sizeof(FUZZ_HS_PSK) - 1) == 0);
		init = true;
	}
	run_one(data, size, 0, false);
	run_one(data, size, 1, false);
	run_one(data, size, 0, true);
	run_one(data, size, 1, true);
	return 0;
}
