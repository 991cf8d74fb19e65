/* SPDX-License-Identifier: MIT */
/*
 * fuzz_desc: plx_desc_parse() on arbitrary bytes. Invariants: only the
 * documented errors; the output is untouched on failure; a parsed
 * descriptor serialises back to exactly the bytes it came from.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "pollux/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct plx_desc d, before;
	uint8_t out[PLX_DESC_BYTES];
	int r;

	memset(&d, 0x5a, sizeof(d));
	before = d;
	r = plx_desc_parse(&d, data, size);
	if (r < 0) {
		FUZZ_CHECK(r == PLX_EBADMSG || r == PLX_EPROTONOSUPPORT ||
			   r == PLX_EMSGSIZE);
		FUZZ_CHECK(memcmp(&d, &before, sizeof(d)) == 0);
		return 0;
	}
	FUZZ_CHECK(r == PLX_DESC_BYTES);
	FUZZ_CHECK(size >= PLX_DESC_BYTES);
	FUZZ_CHECK(plx_desc_serialize(&d, out, sizeof(out)) == PLX_DESC_BYTES);
	FUZZ_CHECK(memcmp(out, data, PLX_DESC_BYTES) == 0);
	return 0;
}
