/* SPDX-License-Identifier: MIT */
/*
 * fuzz_wire: plx__wire_parse() on arbitrary bytes, at several receiver
 * limits, as they are and with the header's CRC recomputed (so mutated
 * fields reach the rules behind the CRC check). Invariants: only
 * PLX_EPROTO / PLX_EMSGSIZE / PLX_EBADMSG as errors; a parsed
 * header obeys every rule, re-encodes to exactly the input bytes and
 * parses back identically; the verdict over growing prefixes goes from
 * "need more" to one fixed result and never reads past the prefix.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz/wire_check.h"
#include "pollux/status.h"
#include "transport/tcp/wire.h"

/*
 * Verdicts over every prefix. Each prefix is placed so that it ends where
 * the heap block ends, so a read past it trips ASan.
 */
static void check_prefixes(const uint8_t *data, size_t size, uint32_t max,
			   int full)
{
	size_t lim = size < PLX__WIRE_HDR_MAX ? size : PLX__WIRE_HDR_MAX;
	uint8_t *buf = malloc(lim ? lim : 1);
	struct plx__frame f;
	int prev = 0, r;
	size_t n;

	FUZZ_CHECK(buf != NULL);
	for (n = 0; n <= lim; n++) {
		memcpy(buf + lim - n, data, n);
		r = plx__wire_parse(&f, buf + lim - n, n, max);
		/* once decided, more bytes change nothing */
		if (prev != 0)
			FUZZ_CHECK(r == prev);
		if (r > 0 && prev == 0)
			FUZZ_CHECK((size_t)r == n);
		prev = r;
	}
	free(buf);
	FUZZ_CHECK(prev == full);
}

static void check_one(const uint8_t *data, size_t size, uint32_t max)
{
	struct plx__frame f, g;
	uint8_t enc[PLX__WIRE_HDR_MAX];
	int r = plx__wire_parse(&f, data, size, max);

	if (r < 0) {
		FUZZ_CHECK(r == PLX_EPROTO || r == PLX_EMSGSIZE ||
			   r == PLX_EBADMSG);
	} else if (r > 0) {
		FUZZ_CHECK((size_t)r <= size);
		FUZZ_CHECK(r == plx__wire_hdr_size_flags(f.opcode, f.flags));
		FUZZ_CHECK(plx_test_frame_valid(&f, max));
		FUZZ_CHECK(plx__wire_encode(&f, enc) == r);
		FUZZ_CHECK(memcmp(enc, data, (size_t)r) == 0);
		FUZZ_CHECK(plx__wire_parse(&g, enc, (size_t)r, max) == r);
		FUZZ_CHECK(plx_test_frame_eq(&f, &g));
	} else {
		FUZZ_CHECK(size < PLX__WIRE_HDR_MAX);
	}
	check_prefixes(data, size, max, r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t maxes[] = {0, 64, 65536, UINT32_MAX};
	size_t i;

	uint8_t *sealed;
	int hdr;

	for (i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++)
		check_one(data, size, maxes[i]);
	hdr = size > 3 ? plx__wire_hdr_size_flags(data[2], data[3]) : -1;
	if (hdr < 0 || size < (size_t)hdr)
		return 0;
	sealed = malloc(size);
	FUZZ_CHECK(sealed != NULL);
	memcpy(sealed, data, size);
	FUZZ_CHECK(plx__wire_seal(sealed) == hdr);
	for (i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++)
		check_one(sealed, size, maxes[i]);
	free(sealed);
	return 0;
}
