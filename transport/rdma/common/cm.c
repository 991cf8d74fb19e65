/* SPDX-License-Identifier: MIT */
/* RDMA connection messages: encoder and parser (cm.h has the layout). */
#include <stdbool.h>
#include <string.h>

#include "pollux/status.h"
#include "transport/rdma/common/cm.h"

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

/* The rules of cm.h, shared by encoder and parser. */
static int check(const struct plx__cm_msg *m)
{
	static const uint8_t zero[16];
	bool has_qps;

	if (m->kind < PLX__CM_REQ || m->kind > PLX__CM_REJ || m->gen == 0)
		return PLX_EPROTO;
	has_qps = m->kind == PLX__CM_REQ || m->kind == PLX__CM_REP;
	if (has_qps) {
		if (m->nqp < 1 || m->nqp > PLX__CM_MAX_QPS || m->mtu < 1 ||
		    m->mtu > 5 || m->rd_atom < 1 || m->rd_atom > 16 ||
		    (!memcmp(m->gid, zero, 16) && m->lid == 0))
			return PLX_EPROTO;
	} else if (m->nqp || m->mtu || m->rd_atom || m->lid ||
		   memcmp(m->gid, zero, 16)) {
		return PLX_EPROTO;
	}
	if (m->kind == PLX__CM_REJ ? m->status >= 0 : m->status != 0)
		return PLX_EPROTO;
	if (!has_qps && m->msg_max)
		return PLX_EPROTO;
	for (uint32_t i = 0; i < m->nqp; i++)
		if (m->qpn[i] < 2 || m->qpn[i] >= (1u << 24) ||
		    m->psn[i] >= (1u << 24))
			return PLX_EPROTO;
	return 0;
}

int plx__cm_encode(const struct plx__cm_msg *m, uint8_t *out, size_t cap)
{
	size_t len;

	if (!m || !out || check(m))
		return PLX_EINVAL;
	len = PLX__CM_MIN + 8u * m->nqp;
	if (cap < len)
		return PLX_ENOSPC;
	memset(out, 0, len);
	out[0] = PLX__CM_VERSION;
	out[1] = m->kind;
	out[2] = m->nqp;
	out[3] = m->mtu;
	put32(out + 4, m->gen);
	put16(out + 8, m->lid);
	out[10] = m->rd_atom;
	put32(out + 12,
	      m->kind == PLX__CM_REJ ? (uint32_t)m->status : m->msg_max);
	memcpy(out + 16, m->gid, 16);
	for (uint32_t i = 0; i < m->nqp; i++) {
		put32(out + 32 + 8 * i, m->qpn[i]);
		put32(out + 36 + 8 * i, m->psn[i]);
	}
	return (int)len;
}

int plx__cm_parse(struct plx__cm_msg *out, const uint8_t *buf, size_t len)
{
	if (!out || !buf || len < PLX__CM_MIN || len > PLX__CM_MAX)
		return PLX_EPROTO;
	memset(out, 0, sizeof(*out));
	if (buf[0] != PLX__CM_VERSION || buf[11] != 0)
		return PLX_EPROTO;
	out->kind = buf[1];
	out->nqp = buf[2];
	out->mtu = buf[3];
	out->gen = get32(buf + 4);
	out->lid = get16(buf + 8);
	out->rd_atom = buf[10];
	if (out->kind == PLX__CM_REJ)
		out->status = (int32_t)get32(buf + 12);
	else
		out->msg_max = get32(buf + 12);
	memcpy(out->gid, buf + 16, 16);
	if (out->nqp > PLX__CM_MAX_QPS || len != PLX__CM_MIN + 8u * out->nqp)
		return PLX_EPROTO;
	for (uint32_t i = 0; i < out->nqp; i++) {
		out->qpn[i] = get32(buf + 32 + 8 * i);
		out->psn[i] = get32(buf + 36 + 8 * i);
	}
	return check(out);
}
