/* SPDX-License-Identifier: MIT */
/*
 * The fixed identity fuzz_handshake gives its own side, shared with
 * gen_corpus.c so that seeded transcripts carry READY proofs the target
 * accepts (and the fuzzer starts from established handshakes).
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

#endif /* PLX_FUZZ_HS_FIXTURE_H */
