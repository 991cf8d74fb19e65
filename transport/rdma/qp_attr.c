/* SPDX-License-Identifier: MIT */
/*
 * RC QP state-transition attributes. The limits are the widths of the
 * fields in the InfiniBand spec (vol. 1, ch. 9 and 11), which providers
 * otherwise truncate silently or refuse with a bare EINVAL: min_rnr_timer
 * and the ACK timeout are 5-bit codes, retry counts 3 bits, PSNs and QPNs
 * 24 bits, the GRH flow label 20 bits, the SL 4 bits.
 */
#include <string.h>

#include "pollux/status.h"
#include "transport/rdma/qp_attr.h"

#define U24_MAX 0xffffffu

void plx__qp_conn_defaults(struct plx__qp_conn *c)
{
	memset(c, 0, sizeof(*c));
	c->port = 1;
	c->access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
		    IBV_ACCESS_REMOTE_READ;
	c->path_mtu = IBV_MTU_1024;
	c->global = true;
	c->hop_limit = 64;
	c->min_rnr_timer = 12;
	c->timeout = 14;
	c->retry_cnt = 7;
	c->rnr_retry = 7;
	c->max_rd_atomic = 1;
	c->max_dest_rd_atomic = 1;
}

int plx__qp_conn_check(const struct plx__qp_conn *c)
{
	static const uint8_t zero[16];

	if (c->remote_qpn > U24_MAX || c->remote_psn > U24_MAX ||
	    c->local_psn > U24_MAX || c->min_rnr_timer > 31 ||
	    c->timeout > 31 || c->retry_cnt > 7 || c->rnr_retry > 7 ||
	    c->sl > 15 || c->flow_label > 0xfffffu)
		return PLX_ERANGE;
	if (c->port == 0 || c->remote_qpn < 2 || c->path_mtu < IBV_MTU_256 ||
	    c->path_mtu > IBV_MTU_4096 || c->max_rd_atomic == 0 ||
	    c->max_dest_rd_atomic == 0)
		return PLX_EINVAL;
	if (c->access &
	    ~(uint32_t)(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
			IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC))
		return PLX_EINVAL;
	if (c->global) {
		if (c->hop_limit == 0 || !memcmp(c->remote_gid, zero, 16))
			return PLX_EINVAL;
	} else if (c->remote_lid == 0) {
		return PLX_EINVAL;
	}
	return 0;
}

int plx__qp_attr_init(const struct plx__qp_conn *c, struct ibv_qp_attr *attr,
		      int *mask)
{
	/* only what INIT uses: the peer is not known yet */
	if (c->port == 0 ||
	    (c->access &
	     ~(uint32_t)(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
			 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC)))
		return PLX_EINVAL;
	memset(attr, 0, sizeof(*attr));
	attr->qp_state = IBV_QPS_INIT;
	attr->pkey_index = c->pkey_index;
	attr->port_num = c->port;
	attr->qp_access_flags = c->access;
	*mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
		IBV_QP_ACCESS_FLAGS;
	return 0;
}

int plx__qp_attr_rtr(const struct plx__qp_conn *c, struct ibv_qp_attr *attr,
		     int *mask)
{
	int rc = plx__qp_conn_check(c);

	if (rc)
		return rc;
	memset(attr, 0, sizeof(*attr));
	attr->qp_state = IBV_QPS_RTR;
	attr->path_mtu = (enum ibv_mtu)c->path_mtu;
	attr->dest_qp_num = c->remote_qpn;
	attr->rq_psn = c->remote_psn;
	attr->max_dest_rd_atomic = c->max_dest_rd_atomic;
	attr->min_rnr_timer = c->min_rnr_timer;
	attr->ah_attr.port_num = c->port;
	attr->ah_attr.sl = c->sl;
	if (c->global) {
		attr->ah_attr.is_global = 1;
		memcpy(attr->ah_attr.grh.dgid.raw, c->remote_gid, 16);
		attr->ah_attr.grh.sgid_index = c->sgid_index;
		attr->ah_attr.grh.hop_limit = c->hop_limit;
		attr->ah_attr.grh.traffic_class = c->traffic_class;
		attr->ah_attr.grh.flow_label = c->flow_label;
	} else {
		attr->ah_attr.dlid = c->remote_lid;
	}
	*mask = IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
		IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
		IBV_QP_MIN_RNR_TIMER;
	return 0;
}

int plx__qp_attr_rts(const struct plx__qp_conn *c, struct ibv_qp_attr *attr,
		     int *mask)
{
	int rc = plx__qp_conn_check(c);

	if (rc)
		return rc;
	memset(attr, 0, sizeof(*attr));
	attr->qp_state = IBV_QPS_RTS;
	attr->sq_psn = c->local_psn;
	attr->timeout = c->timeout;
	attr->retry_cnt = c->retry_cnt;
	attr->rnr_retry = c->rnr_retry;
	attr->max_rd_atomic = c->max_rd_atomic;
	*mask = IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
		IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC;
	return 0;
}
