/* SPDX-License-Identifier: MIT */
/*
 * Handshake authentication over libsodium. Every primitive is libsodium's:
 * crypto_generichash (BLAKE2b) for key derivation, crypto_auth_hmacsha256
 * for the proof, crypto_verify_32 for the constant-time comparison.
 */
#include <sodium.h>

#include "pollux/status.h"
#include "transport/tcp/auth.h"

/* Domain-separation strings; changing either is a wire version bump. */
static const char plx__auth_kdf_ctx[] = "pollux-tcp-v1-psk";
static const char plx__auth_ready_label[] = "pollux-tcp-v1-ready";

_Static_assert(PLX__AUTH_KEY_BYTES == crypto_auth_hmacsha256_KEYBYTES,
	       "HMAC key size");
_Static_assert(PLX__AUTH_PROOF_BYTES == crypto_auth_hmacsha256_BYTES,
	       "HMAC output size");
_Static_assert(sizeof(plx__auth_kdf_ctx) - 1 >= crypto_generichash_KEYBYTES_MIN,
	       "KDF context too short for a BLAKE2b key");

int plx__auth_init(void)
{
	/* 0: initialised now; 1: already initialised; -1: failure */
	return sodium_init() < 0 ? PLX_EIO : 0;
}

int plx__auth_key_derive(uint8_t key[32], const void *psk, size_t psk_len)
{
	int ret;

	if (!key || !psk || psk_len == 0)
		return PLX_EINVAL;
	ret = plx__auth_init();
	if (ret)
		return ret;
	if (crypto_generichash(key, PLX__AUTH_KEY_BYTES, psk, psk_len,
			       (const unsigned char *)plx__auth_kdf_ctx,
			       sizeof(plx__auth_kdf_ctx) - 1) != 0)
		return PLX_EIO;
	return 0;
}

void plx__auth_proof(uint8_t out[32], const uint8_t key[32],
		     const uint8_t sender_hello[PLX__AUTH_HELLO_BYTES],
		     const uint8_t receiver_hello[PLX__AUTH_HELLO_BYTES])
{
	crypto_auth_hmacsha256_state st;

	/*
	 * Fixed-size fields only, so the concatenation is unambiguous
	 * without length prefixes.
	 */
	crypto_auth_hmacsha256_init(&st, key, PLX__AUTH_KEY_BYTES);
	crypto_auth_hmacsha256_update(
		&st, (const unsigned char *)plx__auth_ready_label,
		sizeof(plx__auth_ready_label) - 1);
	crypto_auth_hmacsha256_update(&st, sender_hello, PLX__AUTH_HELLO_BYTES);
	crypto_auth_hmacsha256_update(&st, receiver_hello,
				      PLX__AUTH_HELLO_BYTES);
	crypto_auth_hmacsha256_final(&st, out);
	/* the state holds key-derived pads */
	sodium_memzero(&st, sizeof(st));
}

int plx__auth_verify(const uint8_t a[32], const uint8_t b[32])
{
	return crypto_verify_32(a, b) == 0 ? 0 : PLX_EAUTH;
}

void plx__auth_wipe(void *p, size_t len)
{
	sodium_memzero(p, len);
}
