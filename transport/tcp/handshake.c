/* SPDX-License-Identifier: MIT */
/*
 * TCP handshake state machine (see handshake.h for the contract and
 * docs/wire-protocol.md, "Handshake", for the sequence).
 *
 * Peer frames arrive in the order HELLO, READY; anything else before
 * establishment is a protocol error, except CLOSE, which ends the
 * handshake with the peer's status. Every locally detected failure is
 * answered with CLOSE(status), so the peer learns why (PLX_EAUTH,
 * PLX_EVERSION, PLX_EPROTO) instead of seeing a bare reset.
 *
 * Authentication: a side with a key sets PLX__HELLO_AUTH and requires the
 * peer to set it too; both sides then prove knowledge of the key in READY
 * with an HMAC over both complete HELLOs, the sender's first (auth.h).
 * Each side uses its own HELLO as it sent it and the peer's as it received
 * it, so a HELLO altered in transit (caps stripped, version or conn_index
 * changed, flags flipped) makes both proofs fail: PLX_EAUTH on both sides.
 * The HELLOs carry the roles, nonces, node ids and epochs, so the proof is
 * fresh and cannot be reflected back to its sender; a peer that echoes our
 * own nonce is refused outright.
 */
#include <string.h>

#include "pollux/status.h"
#include "reactor/internal.h"
#include "transport/tcp/auth.h"
#include "transport/tcp/handshake.h"

/* The flags byte's offset in every frame (wire.h, base header). */
#define HS_OFF_FLAGS 3

/* flags || HELLO extension, and the extension is the largest one (wire.c) */
_Static_assert(PLX__AUTH_HELLO_BYTES == 1 + PLX__WIRE_HDR_MAX - PLX__WIRE_BASE,
	       "HELLO proof bytes");

/*
 * Copy the HELLO frame encoded at @frame (PLX__WIRE_HDR_MAX bytes) into
 * @out in the form the proof covers.
 */
static void hs_hello_bytes(uint8_t out[PLX__AUTH_HELLO_BYTES],
			   const uint8_t *frame)
{
	out[0] = frame[HS_OFF_FLAGS];
	memcpy(out + 1, frame + PLX__WIRE_BASE, PLX__AUTH_HELLO_BYTES - 1);
}

int plx__hs_init(struct plx__hs *hs, const uint8_t node_id[16], uint64_t epoch,
		 uint8_t role, uint8_t conn_index, uint32_t caps,
		 const uint8_t *key)
{
	int ret;

	if (!hs || !node_id || role > 1)
		return PLX_EINVAL;
	memset(hs, 0, sizeof(*hs));
	memcpy(hs->node_id, node_id, sizeof(hs->node_id));
	hs->epoch = epoch;
	hs->role = role;
	hs->conn_index = conn_index;
	hs->caps = caps;
	if (key) {
		ret = plx__auth_init();
		if (ret)
			return ret;
		hs->have_key = true;
		memcpy(hs->key, key, sizeof(hs->key));
	}
	ret = plx__random(hs->nonce, sizeof(hs->nonce));
	if (ret) {
		plx__hs_wipe(hs);
		return ret;
	}
	return 0;
}

int plx__hs_hello(struct plx__hs *hs, uint8_t *out)
{
	struct plx__frame f;
	int n;

	if (hs->hello_sent)
		return PLX_EALREADY;
	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_HELLO;
	f.flags = hs->have_key ? PLX__HELLO_AUTH : 0;
	f.hello.version = PLX__WIRE_VERSION;
	f.hello.role = hs->role;
	f.hello.conn_index = hs->conn_index;
	f.hello.caps = hs->caps;
	memcpy(f.hello.node_id, hs->node_id, sizeof(f.hello.node_id));
	f.hello.epoch = hs->epoch;
	memcpy(f.hello.nonce, hs->nonce, sizeof(f.hello.nonce));
	n = plx__wire_encode(&f, out);
	/* keep exactly what goes on the wire: our proofs cover it */
	hs_hello_bytes(hs->hello_ours, out);
	hs->hello_sent = true;
	return n;
}

const struct plx__hello *plx__hs_peer(const struct plx__hs *hs)
{
	return hs->hello_received ? &hs->peer : NULL;
}

void plx__hs_wipe(struct plx__hs *hs)
{
	plx__auth_wipe(hs, sizeof(*hs));
}

/* Record failure @status and queue CLOSE(@status) for the peer. */
static int hs_fail(struct plx__hs *hs, int status, uint8_t *out,
		   size_t *out_len)
{
	struct plx__frame f;

	memset(&f, 0, sizeof(f));
	f.opcode = PLX__OP_CLOSE;
	f.status = status;
	*out_len = (size_t)plx__wire_encode(&f, out);
	hs->status = status;
	return status;
}

/* The READY proof we send (@ours) or expect from the peer (!@ours). */
static void hs_proof(const struct plx__hs *hs, bool ours, uint8_t out[32])
{
	if (ours)
		plx__auth_proof(out, hs->key, hs->hello_ours, hs->hello_peer);
	else
		plx__auth_proof(out, hs->key, hs->hello_peer, hs->hello_ours);
}

static int hs_on_hello(struct plx__hs *hs, const struct plx__frame *f,
		       uint8_t *out, size_t *out_len)
{
	const struct plx__hello *h = &f->hello;
	bool peer_auth = f->flags & PLX__HELLO_AUTH;
	uint8_t enc[PLX__WIRE_HDR_MAX];
	struct plx__frame r;
	uint16_t version;

	if (hs->hello_received)
		return hs_fail(hs, PLX_EPROTO, out, out_len);
	version = h->version < PLX__WIRE_VERSION ? h->version :
						   PLX__WIRE_VERSION;
	if (version < PLX__WIRE_VERSION_MIN)
		return hs_fail(hs, PLX_EVERSION, out, out_len);
	/*
	 * Both sides need a key, or neither: a keyless side cannot prove
	 * anything, and a keyed side must not talk to an unproven peer.
	 */
	if (peer_auth != hs->have_key)
		return hs_fail(hs, PLX_EAUTH, out, out_len);
	/*
	 * Our nonce coming back is a reflection (or a loop to ourselves):
	 * checked before the role, so an authenticating side reports it as
	 * the authentication failure it is.
	 */
	if (hs->have_key && memcmp(h->nonce, hs->nonce, sizeof(hs->nonce)) == 0)
		return hs_fail(hs, PLX_EAUTH, out, out_len);
	if (h->role != (hs->role ^ 1))
		return hs_fail(hs, PLX_EPROTO, out, out_len);

	/*
	 * The transport hands us the decoded frame, not its bytes; encoding
	 * it again gives the bytes received, since every bit of a HELLO's
	 * flags byte and extension is decoded into @f (the parser has no
	 * padding or ignored bits to lose there).
	 */
	(void)plx__wire_encode(f, enc); /* a HELLO: cannot fail */
	hs_hello_bytes(hs->hello_peer, enc);
	hs->peer = *h;
	hs->hello_received = true;
	hs->version = version;
	hs->caps_common = hs->caps & h->caps & PLX__CAP_ALL;

	memset(&r, 0, sizeof(r));
	r.opcode = PLX__OP_READY;
	if (hs->have_key)
		hs_proof(hs, true, r.proof);
	*out_len = (size_t)plx__wire_encode(&r, out);
	plx__auth_wipe(&r, sizeof(r));
	hs->ready_sent = true;
	return 0;
}

static int hs_on_ready(struct plx__hs *hs, const struct plx__frame *f,
		       uint8_t *out, size_t *out_len)
{
	static const uint8_t zero[PLX__WIRE_PROOF];
	uint8_t want[PLX__WIRE_PROOF];
	int ret;

	/* READY answers our HELLO after the peer's: never first, never twice */
	if (!hs->hello_received || hs->ready_received)
		return hs_fail(hs, PLX_EPROTO, out, out_len);
	if (hs->have_key) {
		hs_proof(hs, false, want);
		ret = plx__auth_verify(want, f->proof);
		plx__auth_wipe(want, sizeof(want));
		if (ret)
			return hs_fail(hs, PLX_EAUTH, out, out_len);
	} else if (memcmp(f->proof, zero, sizeof(zero)) != 0) {
		/* a keyed peer would have set PLX__HELLO_AUTH */
		return hs_fail(hs, PLX_EPROTO, out, out_len);
	}
	hs->ready_received = true;
	/* ready_sent holds: it was set with hello_received */
	hs->status = 1;
	return 1;
}

int plx__hs_input(struct plx__hs *hs, const struct plx__frame *f, uint8_t *out,
		  size_t *out_len)
{
	*out_len = 0;
	if (hs->status < 0)
		return hs->status;
	if (hs->status > 0 || !hs->hello_sent)
		return PLX_EINVAL;

	switch (f->opcode) {
	case PLX__OP_HELLO:
		return hs_on_hello(hs, f, out, out_len);
	case PLX__OP_READY:
		return hs_on_ready(hs, f, out, out_len);
	case PLX__OP_CLOSE:
		/* the peer closes: nothing to answer */
		hs->status = f->status < 0 ? f->status : PLX_ECONNREFUSED;
		return hs->status;
	default:
		return hs_fail(hs, PLX_EPROTO, out, out_len);
	}
}
