/* SPDX-License-Identifier: MIT */
/*
 * TCP handshake authentication: key derivation from a pre-shared key and
 * the READY proof. Thin wrappers over libsodium; no hand-written crypto.
 *
 * The PSK never serves as a MAC key and never crosses the wire: the MAC key
 * is BLAKE2b-256 of the PSK, keyed with a fixed context string, and only
 * HMAC-SHA-256 outputs under that key are sent (docs/wire-protocol.md,
 * "Authentication").
 */
#ifndef PLX_TCP_AUTH_H
#define PLX_TCP_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define PLX__AUTH_KEY_BYTES 32
#define PLX__AUTH_PROOF_BYTES 32

/*
 * plx__auth_init() - initialise libsodium (sodium_init(); thread-safe and
 * idempotent). plx__auth_key_derive() calls it; so does plx__hs_init()
 * when it is given a key.
 * Return: 0; PLX_EIO when libsodium cannot initialise.
 * Thread context: any thread.
 */
int plx__auth_init(void);

/*
 * plx__auth_key_derive() - derive the 32-byte MAC key from @psk:
 * BLAKE2b-256(message = @psk, key = "pollux-tcp-v1-psk").
 * Return: 0; PLX_EINVAL (@key or @psk NULL, @psk_len 0); PLX_EIO (libsodium
 * failed to initialise). Thread context: any thread.
 */
int plx__auth_key_derive(uint8_t key[32], const void *psk, size_t psk_len);

/*
 * A HELLO as the proof covers it: the frame's flags byte (offset 3)
 * followed by its 64-byte extension (offsets 16..79), exactly as on the
 * wire (wire.h). The base header's other fields are fixed (magic, opcode)
 * or carry nothing in a HELLO (payload_len 0, id unused).
 */
#define PLX__AUTH_HELLO_BYTES 65

/*
 * plx__auth_proof() - the READY proof a sender computes: HMAC-SHA-256
 * under @key over "pollux-tcp-v1-ready" (19 bytes, no NUL) ||
 * @sender_hello (65) || @receiver_hello (65), each a HELLO as above. The
 * sender's own HELLO as it sent it comes first, the receiver's as the
 * sender received it second; the receiver verifies with the same two
 * HELLOs from its side, so any change to either HELLO in transit (version,
 * role, conn_index, caps, node id, epoch, nonce, flags) fails the proof.
 * Thread context: any thread.
 */
void plx__auth_proof(uint8_t out[32], const uint8_t key[32],
		     const uint8_t sender_hello[PLX__AUTH_HELLO_BYTES],
		     const uint8_t receiver_hello[PLX__AUTH_HELLO_BYTES]);

/*
 * plx__auth_verify() - compare two proofs in constant time.
 * Return: 0 when equal; PLX_EAUTH otherwise. Thread context: any thread.
 */
int plx__auth_verify(const uint8_t a[32], const uint8_t b[32]);

/*
 * plx__auth_wipe() - zero @len bytes at @p in a way the compiler cannot
 * drop (sodium_memzero). For keys and key-derived state.
 */
void plx__auth_wipe(void *p, size_t len);

#endif /* PLX_TCP_AUTH_H */
