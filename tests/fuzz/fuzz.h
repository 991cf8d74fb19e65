/* SPDX-License-Identifier: MIT */
/*
 * Common bits of the libFuzzer targets in tests/fuzz/. Each target defines
 * LLVMFuzzerTestOneInput(); it is linked either with libFuzzer
 * (-fsanitize=fuzzer, PLX_FUZZ=ON) or with replay_main.c, which runs it
 * over the committed corpus in every ctest run.
 *
 * A target reports a broken invariant with FUZZ_CHECK(), which prints the
 * condition and aborts: libFuzzer saves the input, ctest sees a failure.
 */
#ifndef PLX_FUZZ_H
#define PLX_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(c)                                                          \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "%s:%d: invariant broken: %s\n",       \
				__FILE__, __LINE__, #c);                       \
			abort();                                               \
		}                                                              \
	} while (0)

#endif /* PLX_FUZZ_H */
