/* SPDX-License-Identifier: MIT */
/* Symbol visibility for the pollux library. */
#ifndef POLLUX_EXPORT_H
#define POLLUX_EXPORT_H

#if defined(PLX_STATIC_DEFINE)
#define PLX_API
#elif defined(__GNUC__)
#define PLX_API __attribute__((visibility("default")))
#else
#define PLX_API
#endif

/* Alignment of caller-owned storage, valid in C11 and C++11. */
#ifdef __cplusplus
#define PLX_ALIGNAS(n) alignas(n)
#else
#define PLX_ALIGNAS(n) _Alignas(n)
#endif

#endif /* POLLUX_EXPORT_H */
