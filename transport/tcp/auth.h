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
 * plx__auth_proof() - the READY proof a sender computes: HMAC-SHA-256 under
 * @key over "pollux-tcp-v1-ready" (19 bytes, no NUL) || sender_role (1) ||
 * sender_nonce (32) || receiver_nonce (32) || sender_node (16) ||
 * sender_epoch (8, LE) || receiver_node (16) || receiver_epoch (8, LE).
 * Thread context: any thread.
 */
void plx__auth_proof(uint8_t out[32], const uint8_t key[32],
		     uint8_t sender_role, const uint8_t sender_nonce[32],
		     const uint8_t receiver_nonce[32],
		     const uint8_t sender_node[16], uint64_t sender_epoch,
		     const uint8_t receiver_node[16], uint64_t receiver_epoch);

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
