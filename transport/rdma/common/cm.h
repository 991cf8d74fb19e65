/* SPDX-License-Identifier: MIT */
/*
 * RDMA connection messages: what two reactors exchange over their TCP
 * session (frame PLX__OP_RDMA_CM, docs/wire-protocol.md) to connect RC
 * queue pairs. Pure encoder and validating parser over byte buffers; no
 * verbs types, so it builds (and is tested and fuzzed) everywhere.
 *
 * Message layout (little-endian), 32 bytes + 8 per QP:
 *
 *   off size field
 *     0    1 version   PLX__CM_VERSION
 *     1    1 kind      PLX__CM_REQ / _REP / _RTU / _REJ
 *     2    1 nqp       REQ, REP: 1..PLX__CM_MAX_QPS; RTU, REJ: 0
 *     3    1 mtu       REQ, REP: ibv_mtu code 1..5 (256..4096); else 0
 *     4    4 gen       attempt generation, never 0
 *     8    2 lid       port LID (InfiniBand; 0 on RoCE)
 *    10    1 rd_atom   REQ, REP: RDMA reads the sender serves at once per
 *                      QP, 1..16; else 0
 *    11    1 pad       0
 *    12    4 arg       REJ: status, a PLX_E* code < 0; REQ, REP: msg_max,
 *                      the largest RDMA send payload the sender takes
 *                      (0: none, sends to it go over TCP); RTU: 0
 *    16   16 gid       REQ, REP: the sender's GID; else all zero
 *    32  8*n qpn u32, psn u32 per QP (both 24-bit values)
 *
 * REQ (initiator: my QPs, in INIT) -> REP (responder: my QPs, already in
 * RTS, receives posted) -> RTU (initiator: my QPs are in RTS too). A REJ
 * answers a REQ the responder cannot take. Stale messages are told apart
 * by gen, which the initiator draws fresh for every attempt.
 */
#ifndef PLX_RDMA_CM_H
#define PLX_RDMA_CM_H

#include <stddef.h>
#include <stdint.h>

#define PLX__CM_VERSION 1
#define PLX__CM_MAX_QPS 4
#define PLX__CM_MIN 32
#define PLX__CM_MAX (PLX__CM_MIN + 8 * PLX__CM_MAX_QPS)

enum plx__cm_kind {
	PLX__CM_REQ = 1,
	PLX__CM_REP = 2,
	PLX__CM_RTU = 3,
	PLX__CM_REJ = 4,
};

struct plx__cm_msg {
	uint8_t kind;
	uint8_t nqp;
	uint8_t mtu;
	uint32_t gen;
	uint16_t lid;
	uint8_t rd_atom;
	int32_t status;	  /* REJ */
	uint32_t msg_max; /* REQ, REP */
	uint8_t gid[16];
	uint32_t qpn[PLX__CM_MAX_QPS];
	uint32_t psn[PLX__CM_MAX_QPS];
};

/*
 * plx__cm_encode() - write @m into @out (@cap bytes).
 * Return: bytes written (PLX__CM_MIN + 8 * nqp); PLX_EINVAL when @m breaks
 * a rule the parser checks (so every encoded message parses);
 * PLX_ENOSPC when @cap is too small.
 */
int plx__cm_encode(const struct plx__cm_msg *m, uint8_t *out, size_t cap);

/*
 * plx__cm_parse() - validate and decode @len bytes at @buf into @out.
 * Checks: length exactly PLX__CM_MIN + 8 * nqp; version; kind known;
 * nqp, mtu, rd_atom, gid and status as the layout above says for the kind;
 * a REQ or REP has a GID or a LID; gen not
 * 0; pad 0; every QPN and PSN below 2^24 and QPN not 0 or 1.
 * Return: 0; PLX_EPROTO (any check failed; @out unspecified).
 */
int plx__cm_parse(struct plx__cm_msg *out, const uint8_t *buf, size_t len);

#endif /* PLX_RDMA_CM_H */
