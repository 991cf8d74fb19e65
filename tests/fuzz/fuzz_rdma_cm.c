/* SPDX-License-Identifier: MIT */
/*
 * fuzz_rdma_cm: plx__cm_parse() (RDMA connection messages a peer sends
 * over TCP) on arbitrary bytes. Invariants: only PLX_EPROTO; a parsed
 * message encodes back to exactly the bytes it came from.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "pollux/status.h"
#include "transport/rdma/common/cm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct plx__cm_msg m;
	uint8_t out[PLX__CM_MAX];
	int r = plx__cm_parse(&m, data, size);

	if (r) {
		FUZZ_CHECK(r == PLX_EPROTO);
		return 0;
	}
	FUZZ_CHECK(size >= PLX__CM_MIN && size <= PLX__CM_MAX);
	FUZZ_CHECK(plx__cm_encode(&m, out, sizeof(out)) == (int)size);
	FUZZ_CHECK(memcmp(out, data, size) == 0);
	return 0;
}
