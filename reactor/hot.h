/* SPDX-License-Identifier: MIT */
/*
 * PLX__HOT marks a function of the per-message path (receive, parse,
 * complete, submit, send). The linker's default script gathers every
 * .text.hot.* section in one place, so this path's code sits together
 * instead of spread over the library: about 10 ns per message turnaround
 * on the development VM, where a syscall leaves the caches cold
 * (docs/benchmarks.md, stop 11). Placement only; no other code change.
 */
#ifndef PLX_REACTOR_HOT_H
#define PLX_REACTOR_HOT_H

#if defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
#define PLX__HOT __attribute__((section(".text.hot.pollux")))
#else
#define PLX__HOT
#endif

#endif /* PLX_REACTOR_HOT_H */
