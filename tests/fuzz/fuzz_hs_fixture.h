/* SPDX-License-Identifier: MIT */
/*
 * The fixed identity fuzz_handshake gives its own side, shared with
 * gen_corpus.c so that seeded transcripts carry READY proofs the target
 * accepts (and the fuzzer starts from established handshakes). A proof
 * covers both HELLOs, so the generator needs ours byte for byte.
 */
#ifndef PLX_FUZZ_HS_FIXTURE_H
#define PLX_FUZZ_HS_FIXTURE_H

#include <stdint.h>
#include <string.h>

#define FUZZ_HS_PSK "pollux fuzz psk"
#define FUZZ_HS_EPOCH 0x0f0e0d0c0b0a0908ull
#define FUZZ_HS_CONN 0
#define FUZZ_HS_CAPS 0x3u

static inline void fuzz_hs_node(uint8_t node[16])
{
	memcpy(node, "fuzz-node-ours!!", 16);
}

/* Our nonce, replacing the random one so runs are reproducible. */
static inline void fuzz_hs_nonce(uint8_t nonce[32])
{
	int i;

	for (i = 0; i < 32; i++)
		nonce[i] = (uint8_t)(0x5a ^ i);
}

/*
 * Our HELLO as the READY proofs cover it (flags byte, then the 64-byte
 * extension; transport/tcp/auth.h), written out field by field from the
 * layout in transport/tcp/wire.h rather than through the encoder, so the
 * harness checks the encoder against it.
 */
static inline void fuzz_hs_our_hello(uint8_t out[65], uint8_t role, int auth)
{
	uint64_t epoch = FUZZ_HS_EPOCH;
	uint32_t caps = FUZZ_HS_CAPS;
	int i;

	out[0] = auth ? 0x01 : 0x00; /* PLX__HELLO_AUTH */
	out[1] = 2;		     /* version u16 LE */
	out[2] = 0;
	out[3] = role;
	out[4] = FUZZ_HS_CONN;
	for (i = 0; i < 4; i++)
		out[5 + i] = (uint8_t)(caps >> (8 * i));
	fuzz_hs_node(out + 9);
	for (i = 0; i < 8; i++)
		out[25 + i] = (uint8_t)(epoch >> (8 * i));
	fuzz_hs_nonce(out + 33);
}

#endif /* PLX_FUZZ_HS_FIXTURE_H */
