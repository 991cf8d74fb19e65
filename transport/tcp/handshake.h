/* SPDX-License-Identifier: MIT */
/*
 * TCP handshake state machine for one connection. Pure: no sockets, no
 * timers, no allocation. The transport parses frames with plx__wire_parse()
 * and feeds those that arrive before the connection is established to
 * plx__hs_input(); it sends what the machine asks it to send, and enforces
 * the handshake timeout itself.
 *
 * Sequence (docs/wire-protocol.md, "Handshake"): both sides send HELLO as
 * soon as the TCP connection is up; each validates the peer's HELLO and
 * answers READY with its proof; a side is established once it has sent
 * READY and received a valid READY. Any failure is answered with
 * CLOSE(status), after which the transport closes the socket.
 */
#ifndef PLX_TCP_HANDSHAKE_H
#define PLX_TCP_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/tcp/auth.h"
#include "transport/tcp/wire.h"

/* Read fields, but let only handshake.c write them. */
struct plx__hs {
	/* configuration (plx__hs_init) */
	uint8_t node_id[16];
	uint64_t epoch;
	uint8_t role; /* 0: connecting side, 1: accepting side */
	uint8_t conn_index;
	uint32_t caps; /* our PLX__CAP_* */
	bool have_key;
	uint8_t key[32]; /* derived MAC key (plx__auth_key_derive) */

	/* state */
	uint8_t nonce[PLX__WIRE_NONCE]; /* our challenge, from plx__random */
	struct plx__hello peer;		/* the peer's HELLO, once received */
	/*
	 * Both HELLOs as the READY proofs cover them (flags byte, then the
	 * 64-byte extension; auth.h): ours as sent, set by plx__hs_hello();
	 * the peer's as received, set with hello_received.
	 */
	uint8_t hello_ours[PLX__AUTH_HELLO_BYTES];
	uint8_t hello_peer[PLX__AUTH_HELLO_BYTES];
	bool hello_sent;
	bool hello_received;
	bool ready_sent;
	bool ready_received;
	/* valid once hello_received: */
	uint16_t version;     /* min(ours, peer's) */
	uint32_t caps_common; /* ours & peer's & PLX__CAP_ALL */
	int status;	      /* 0: in progress; 1: established; < 0: failed */
};

/*
 * plx__hs_init() - set up @hs for one connection and draw its nonce.
 * @key: the 32-byte derived key (copied), or NULL for no authentication.
 * Return: 0; PLX_EINVAL (NULL, role not 0/1); PLX_EIO (no randomness, or
 * libsodium failed to initialise). Thread context: any thread.
 */
int plx__hs_init(struct plx__hs *hs, const uint8_t node_id[16], uint64_t epoch,
		 uint8_t role, uint8_t conn_index, uint32_t caps,
		 const uint8_t *key);

/*
 * plx__hs_hello() - encode our HELLO (PLX__HELLO_AUTH set when we have a
 * key) into @out, which holds PLX__WIRE_HDR_MAX bytes, and keep it for
 * the READY proofs: send it unchanged. Call once, as soon as the TCP
 * connection is up, before any plx__hs_input().
 * Return: the frame size (> 0); PLX_EALREADY (already called).
 */
int plx__hs_hello(struct plx__hs *hs, uint8_t *out);

/*
 * plx__hs_input() - feed one frame @f received before establishment.
 * @out: PLX__WIRE_HDR_MAX bytes; @out_len: set to the number of bytes to
 * send (0: nothing). Send them before closing, also on failure.
 *
 * Return: 0, continue (send @out if *@out_len > 0); 1, established (we
 * have sent READY and received a valid one; frames after it belong to
 * the transport); < 0, the handshake failed: send @out (a CLOSE carrying
 * the status) if *@out_len > 0, then close. Failures: PLX_EPROTO (frame
 * out of order, wrong role, nonzero proof without a key); PLX_EVERSION (no
 * common version); PLX_EAUTH (one side has a key and the other not, proof
 * mismatch, our own nonce reflected); a peer's CLOSE gives its status, or
 * PLX_ECONNREFUSED for CLOSE(0), and nothing to send. A failure is
 * sticky: later calls return it again with nothing to send. PLX_EINVAL:
 * called before plx__hs_hello() or after establishment (nothing changes).
 */
int plx__hs_input(struct plx__hs *hs, const struct plx__frame *f, uint8_t *out,
		  size_t *out_len);

/* plx__hs_peer() - the peer's HELLO, or NULL before it has arrived. */
const struct plx__hello *plx__hs_peer(const struct plx__hs *hs);

/*
 * plx__hs_wipe() - zero @hs, key included (sodium_memzero). Call once the
 * handshake is over and its results have been copied out.
 */
void plx__hs_wipe(struct plx__hs *hs);

#endif /* PLX_TCP_HANDSHAKE_H */
